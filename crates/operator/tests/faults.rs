//! Fault injection under admission load, on a control plane of its own: two operator replicas
//! behind a loopback balancer (the Service), the pod runner running every pod (a kubelet), and a
//! steady stream of labelled and unlabelled pod creates. Meanwhile, one after another: the
//! leader is killed, a webhook replica is killed and restarted, kube-apiserver is restarted,
//! the serving certificates rotate, the CA rotates, and the ModelValidation's key changes.
//!
//! Measured per fault: labelled pods admitted without the verifier (must be 0: the critical
//! assertion), labelled pods admitted with it and unlabelled pods admitted (the passing twins:
//! load was held), failed admissions by cause, and the time to recover; afterwards the
//! ModelValidation status must converge to what the pods say. A table is printed.
//!
//! `MVO_FAULTS_SCALE` (default 1) scales the rate (2 pods/s per unit) and every observation
//! window (6 s per unit); `bench/faults.sh` runs it at a larger scale.

mod support;

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use k8s_openapi::api::admissionregistration::v1::MutatingWebhookConfiguration;
use k8s_openapi::api::core::v1::{Pod, Secret};
use kube::api::{Api, ListParams, Patch, PatchParams, PostParams};
use model_validation_operator::certs::CA_CERT;
use model_validation_operator::crd::ModelValidation;
use model_validation_operator::names::{LABEL, VERIFY_CONTAINER};
use serde_json::json;
use support::{
    Backend, Balancer, Operator, OperatorOptions, agent_binary, create_mv, fresh_key_signer,
    has_verifier, pod, remove_ca_key, sign, verifier_key, wait_dry_run_admits, wait_for,
    write_model,
};
use test_cluster::ControlPlane;
use test_cluster::pod_runner::{PodRunner, RunnerConfig};

const OPERATOR_NS: &str = "mvo-faults-system";
const WEBHOOK_CONFIG: &str = "mvo-faults";
const CA_SECRET: &str = "model-validation-operator-webhook-ca";
const INJECTED: &str = "model_validation_admission_requests_total{result=\"injected\"}";

/// How one pod create ended.
#[derive(Clone, Debug, PartialEq)]
enum Outcome {
    /// Admitted with the verifier; the public key it was given.
    Verified(Option<String>),
    /// Admitted without the verifier (for a labelled pod: the failure this test exists for).
    Unverified,
    /// The webhook answered and refused.
    Refused(String),
    /// The API server could not call the webhook (failurePolicy Fail).
    WebhookUnreachable(String),
    /// The API server itself did not answer, or answered another error.
    ApiUnavailable(String),
}

struct Sample {
    /// When the create was sent, from the start of the load.
    at: Duration,
    /// When its answer (or error) came. A create still in flight when a fault is injected is
    /// that fault's: it counts in the window where it ended, not where it was sent.
    done: Duration,
    labelled: bool,
    outcome: Outcome,
}

fn classify(result: Result<Pod, kube::Error>) -> Outcome {
    match result {
        Ok(p) if has_verifier(&p) => Outcome::Verified(verifier_key(&p)),
        Ok(_) => Outcome::Unverified,
        Err(kube::Error::Api(s)) if s.message.contains("denied the request") => {
            Outcome::Refused(s.message)
        }
        Err(kube::Error::Api(s)) if s.message.contains("failed calling webhook") => {
            Outcome::WebhookUnreachable(s.message)
        }
        Err(e) => Outcome::ApiUnavailable(e.to_string()),
    }
}

/// Scale of the run: `MVO_FAULTS_SCALE`.
fn scale() -> f64 {
    std::env::var("MVO_FAULTS_SCALE")
        .ok()
        .and_then(|s| s.parse().ok())
        .filter(|s: &f64| *s > 0.0)
        .unwrap_or(1.0)
}

/// A replica behind the balancer, restartable under a new identity (a new pod).
struct Replicas {
    kubeconfig: std::path::PathBuf,
    url: String,
    ops: Vec<Operator>,
    started: usize,
}

impl Replicas {
    async fn start_one(&mut self) -> Operator {
        self.started += 1;
        let mut opts = OperatorOptions::new(WEBHOOK_CONFIG);
        opts.namespace = Some(OPERATOR_NS.into());
        opts.pod_name = Some(format!("replica-{}", self.started));
        opts.webhook_url = Some(self.url.clone());
        opts.extra_args = [
            "--cert-check-interval",
            "1",
            "--ca-overlap",
            "10",
            // Back-dated 5 minutes, a 180 s certificate is re-issued 20 s after issue.
            "--serving-cert-lifetime",
            "180",
        ]
        .map(String::from)
        .to_vec();
        Operator::start(&self.kubeconfig, opts).await
    }

    fn backends(&self) -> Vec<Backend> {
        self.ops
            .iter()
            .map(|o| Backend {
                addr: ([127, 0, 0, 1], o.webhook).into(),
                health: Some(o.health),
            })
            .collect()
    }

    fn leader(&self) -> Option<usize> {
        self.ops
            .iter()
            .position(|o| o.metric("model_validation_leader") == Some(1.0))
    }

    /// Waits until both replicas have logged `line` more often than the counts `before`.
    async fn wait_logged_by_both(&self, line: &str, before: &[usize], what: &str) {
        wait_for(
            &format!("both replicas to {what} (log: {line:?})"),
            Duration::from_secs(90),
            || async move {
                (0..2)
                    .all(|i| self.log_lines(i, line) > before[i])
                    .then_some(())
            },
        )
        .await;
    }

    fn log_lines(&self, i: usize, what: &str) -> usize {
        std::fs::read_to_string(&self.ops[i].log)
            .unwrap_or_default()
            .matches(what)
            .count()
    }
}

/// One fault: its name, when it was injected, and until when its window lasts.
struct Phase {
    name: &'static str,
    fault: Duration,
    end: Duration,
    note: String,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn faults_under_admission_load_never_admit_an_unverified_pod() {
    test_cluster::install_crypto_provider();
    agent_binary();
    let scale = scale();
    let window = Duration::from_secs_f64(6.0 * scale);
    let interval = Duration::from_secs_f64(1.0 / (2.0 * scale));
    let cp = ControlPlane::start().await.unwrap();
    let client = cp.client().unwrap();

    // --- two replicas behind the balancer, one webhook configuration pointing at it ---
    let balancer = Balancer::start(Vec::new()).await;
    let mut replicas = Replicas {
        kubeconfig: cp.kubeconfig_path().to_path_buf(),
        url: balancer.url(),
        ops: Vec::new(),
        started: 0,
    };
    for _ in 0..2 {
        let op = replicas.start_one().await;
        replicas.ops.push(op);
    }
    balancer.set_backends(replicas.backends());
    let reps = &replicas;
    wait_for("a leader", Duration::from_secs(60), || async move {
        reps.leader()
    })
    .await;

    // --- a model signed by two keys (signatures outside the model), the policy on key A ---
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    write_model(&data.join("model"));
    let (signer_a, pem_a) = fresh_key_signer();
    let (signer_b, pem_b) = fresh_key_signer();
    sign(&data.join("model"), &signer_a, &data.join("sig-a"));
    sign(&data.join("model"), &signer_b, &data.join("sig-b"));
    let ns = cp.create_namespace("faults").await.unwrap();
    create_mv(
        &client,
        &ns,
        json!({
            "apiVersion": "ml.sigstore.dev/v1alpha1", "kind": "ModelValidation", "metadata": {"name": "mv"},
            "spec": {"model": {"path": "/data/model", "signaturePath": "/data/sig-a"},
                     "config": {"publicKeyConfig": {"keyPem": pem_a}}}
        }),
    )
    .await
    .unwrap();
    let runner = PodRunner::new(client.clone(), RunnerConfig::default()).unwrap();
    let runner_ns = ns.clone();
    let runner_task = tokio::spawn(async move { runner.serve(Some(&runner_ns)).await });

    // The baseline measures a serving webhook, not the install: until the leader has written the
    // webhook configuration and its caBundle, a labelled create fails closed ("failed calling
    // webhook"), which is expected at install and not a fault. A dry run reaches the webhook
    // (sideEffects: NoneOnDryRun) without creating a pod.
    let probe = pod("probe", json!({LABEL: "mv"}), &data, &data);
    wait_dry_run_admits(
        &Api::namespaced(client.clone(), &ns),
        &probe,
        "the webhook to inject the verifier into a dry-run labelled pod",
        Duration::from_secs(60),
        has_verifier,
    )
    .await;

    // --- the load: one create every `interval`, alternately labelled and unlabelled ---
    let samples: Arc<Mutex<Vec<Sample>>> = Arc::default();
    let started = Instant::now();
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let load = {
        let (client, ns, data, samples, stop) = (
            client.clone(),
            ns.clone(),
            data.clone(),
            samples.clone(),
            stop.clone(),
        );
        tokio::spawn(async move {
            let pods: Api<Pod> = Api::namespaced(client, &ns);
            let mut tick = tokio::time::interval(interval);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            let mut inflight = Vec::new();
            let mut i = 0u64;
            while !stop.load(std::sync::atomic::Ordering::SeqCst) {
                tick.tick().await;
                let labelled = i.is_multiple_of(2);
                let labels = if labelled {
                    json!({LABEL: "mv"})
                } else {
                    json!({"app": "plain"})
                };
                let mut p = pod(&format!("p{i}"), labels, &data, &data);
                p.spec.as_mut().unwrap().containers[0].command = Some(vec!["true".into()]);
                let (pods, samples) = (pods.clone(), samples.clone());
                let at = started.elapsed();
                inflight.push(tokio::spawn(async move {
                    let result = tokio::time::timeout(
                        Duration::from_secs(30),
                        pods.create(&PostParams::default(), &p),
                    )
                    .await
                    .unwrap_or_else(|_| Err(kube::Error::Service("no answer within 30 s".into())));
                    let outcome = classify(result);
                    let done = started.elapsed();
                    samples.lock().unwrap().push(Sample {
                        at,
                        done,
                        labelled,
                        outcome,
                    });
                }));
                i += 1;
            }
            for t in inflight {
                let _ = t.await;
            }
        })
    };

    let mut phases: Vec<Phase> = Vec::new();
    let now = || started.elapsed();
    tokio::time::sleep(window).await;
    phases.push(Phase {
        name: "none (baseline)",
        fault: Duration::ZERO,
        end: now(),
        note: String::new(),
    });

    // --- 1. the leader is killed (SIGKILL: its lease is not released) ---
    let leader = replicas.leader().expect("a leader");
    let fault = now();
    replicas.ops[leader].kill();
    let other = 1 - leader;
    let reps = &replicas;
    wait_for(
        "the other replica to take the lease",
        Duration::from_secs(90),
        || async move { (reps.ops[other].metric("model_validation_leader") == Some(1.0)).then_some(()) },
    )
    .await;
    let failover = now() - fault;
    let fresh = replicas.start_one().await;
    replicas.ops[leader] = fresh;
    balancer.set_backends(replicas.backends());
    tokio::time::sleep(window).await;
    phases.push(Phase {
        name: "leader killed (SIGKILL), replaced",
        fault,
        end: now(),
        note: format!("lease taken over after {:.1} s", failover.as_secs_f64()),
    });

    // --- 2. the webhook replica serving admissions is killed, then restarted ---
    // The API server keeps its connections, so the one that served the last admissions is the
    // one whose loss can fail them.
    let served = |r: &Replicas| -> Vec<f64> {
        r.ops
            .iter()
            .map(|o| o.metric(INJECTED).unwrap_or(0.0))
            .collect()
    };
    let before = served(&replicas);
    tokio::time::sleep(Duration::from_secs(3)).await;
    let after = served(&replicas);
    let victim = if after[1] - before[1] > after[0] - before[0] {
        1
    } else {
        0
    };
    let victim_served = after[victim] - before[victim];
    let fault = now();
    replicas.ops[victim].kill();
    tokio::time::sleep(Duration::from_secs(2)).await;
    let fresh = replicas.start_one().await;
    replicas.ops[victim] = fresh;
    balancer.set_backends(replicas.backends());
    let back = now() - fault;
    tokio::time::sleep(window).await;
    phases.push(Phase {
        name: "webhook replica killed, restarted",
        fault,
        end: now(),
        note: format!(
            "killed the replica serving admissions ({victim_served} in the 3 s before); replacement ready after {:.1} s",
            back.as_secs_f64()
        ),
    });

    // --- 3. kube-apiserver restarted ---
    let fault = now();
    let outage = cp
        .restart_apiserver(
            Duration::from_secs(5),
            Duration::from_secs(2),
            Duration::from_secs(120),
        )
        .await
        .unwrap();
    tokio::time::sleep(window).await;
    phases.push(Phase {
        name: "kube-apiserver restarted",
        fault,
        end: now(),
        note: format!("API server unavailable {:.1} s", outage.as_secs_f64()),
    });

    // --- 4. serving certificates rotate (each replica re-issues its own) ---
    const ROTATED: &str = "webhook serving certificate rotated";
    let before: Vec<usize> = (0..2).map(|i| replicas.log_lines(i, ROTATED)).collect();
    let fault = now();
    replicas
        .wait_logged_by_both(ROTATED, &before, "rotate their serving certificate")
        .await;
    let rotated_in = now() - fault;
    tokio::time::sleep(window).await;
    let rotations: usize = (0..2)
        .map(|i| replicas.log_lines(i, ROTATED) - before[i])
        .sum();
    phases.push(Phase {
        name: "serving certificates rotated",
        fault,
        end: now(),
        note: format!(
            "both rotated within {:.1} s ({rotations} rotations in the window)",
            rotated_in.as_secs_f64()
        ),
    });

    // --- 5. the CA rotates: ca.key removed from the Secret (the documented trigger) ---
    let secrets: Api<Secret> = Api::namespaced(client.clone(), OPERATOR_NS);
    let old_ca = secrets.get(CA_SECRET).await.unwrap().data.unwrap()[CA_CERT]
        .0
        .clone();
    const MOVED: &str = "webhook serving certificate moved to the new CA";
    let before: Vec<usize> = (0..2).map(|i| replicas.log_lines(i, MOVED)).collect();
    let fault = now();
    remove_ca_key(&secrets, CA_SECRET).await;
    replicas
        .wait_logged_by_both(MOVED, &before, "serve from the new CA")
        .await;
    let moved_in = now() - fault;
    let configs: Api<MutatingWebhookConfiguration> = Api::all(client.clone());
    let (configs_ref, old_ca_ref) = (&configs, &old_ca);
    wait_for(
        "the caBundle to drop the old CA after the overlap",
        Duration::from_secs(90),
        || async move {
            let c = configs_ref.get(WEBHOOK_CONFIG).await.ok()?;
            let bundle = &c.webhooks?.first()?.client_config.ca_bundle.clone()?.0;
            let text = String::from_utf8_lossy(bundle);
            (text.matches("BEGIN CERTIFICATE").count() == 1
                && !text.contains(String::from_utf8_lossy(old_ca_ref).trim()))
            .then_some(())
        },
    )
    .await;
    let dropped_in = now() - fault;
    tokio::time::sleep(window).await;
    phases.push(Phase {
        name: "CA rotated (overlap 10 s)",
        fault,
        end: now(),
        note: format!(
            "both on the new CA after {:.1} s, old CA out of the caBundle after {:.1} s",
            moved_in.as_secs_f64(),
            dropped_in.as_secs_f64()
        ),
    });

    // --- 6. the ModelValidation's key changes (with the signature it verifies) ---
    let mvs: Api<ModelValidation> = Api::namespaced(client.clone(), &ns);
    let fault = now();
    mvs.patch(
        "mv",
        &PatchParams::default(),
        &Patch::Merge(json!({"spec": {"model": {"signaturePath": "/data/sig-b"},
            "config": {"publicKeyConfig": {"keyPem": pem_b}}}})),
    )
    .await
    .unwrap();
    tokio::time::sleep(window * 2).await;
    phases.push(Phase {
        name: "ModelValidation key changed",
        fault,
        end: now(),
        note: String::new(),
    });

    stop.store(true, std::sync::atomic::Ordering::SeqCst);
    load.await.unwrap();
    let samples = std::mem::take(&mut *samples.lock().unwrap());
    let key_change = phases.last().map(|p| p.fault).unwrap_or_default();
    let key_note = key_change_note(&samples, key_change, &pem_a, &pem_b);
    if let Some(p) = phases.last_mut() {
        p.note = key_note;
    }

    // --- the table, and the assertions ---
    let rows: Vec<Row> = phases
        .iter()
        .enumerate()
        .map(|(i, p)| {
            let from = if i == 0 {
                Duration::ZERO
            } else {
                phases[i - 1].end
            };
            // The last window also takes the creates answered after it closed.
            let to = if i + 1 == phases.len() {
                Duration::MAX
            } else {
                p.end
            };
            row(p, &samples, from, to)
        })
        .collect();
    print_table(&phases, &rows, scale, interval);
    let unverified: usize = rows.iter().map(|r| r.unverified).sum();
    assert_eq!(
        unverified, 0,
        "labelled pods were admitted without the verifier"
    );
    for (p, r) in phases.iter().zip(&rows) {
        assert!(
            r.unlabelled_ok > 0,
            "no unlabelled pod admitted during {}",
            p.name
        );
    }
    let baseline_failures: Vec<(Duration, &Outcome)> = samples
        .iter()
        .filter(|s| s.done < phases[0].end)
        .filter(|s| !matches!(s.outcome, Outcome::Verified(_) | Outcome::Unverified))
        .map(|s| (s.at, &s.outcome))
        .collect();
    assert!(
        rows[0].verified > 0 && rows[0].failed == 0,
        "the baseline must admit every labelled pod; it failed: {baseline_failures:?}"
    );
    assert!(
        rows.last().unwrap().verified > 0,
        "labelled pods are admitted again after the faults"
    );
    // Unlabelled pods never reach the webhook: admitted as sent, or refused by the API server
    // itself while it is down.
    for s in samples.iter().filter(|s| !s.labelled) {
        assert!(
            matches!(s.outcome, Outcome::Unverified | Outcome::ApiUnavailable(_)),
            "an unlabelled pod went to the webhook: {:?}",
            s.outcome
        );
    }
    // After the key change has been seen, no admission uses the old key.
    let last_old = samples
        .iter()
        .filter(|s| s.labelled && s.outcome == Outcome::Verified(Some(pem_a.clone())))
        .map(|s| s.at)
        .max();
    let first_new = samples
        .iter()
        .filter(|s| s.labelled && s.outcome == Outcome::Verified(Some(pem_b.clone())))
        .map(|s| s.at)
        .min()
        .expect("admissions with the new key");
    assert!(
        last_old.is_none_or(|t| t <= first_new + Duration::from_secs(1)),
        "old-key admissions went on after the new key was in use ({last_old:?} vs {first_new:?})"
    );

    // --- status converges to what the pods say ---
    let pods: Api<Pod> = Api::namespaced(client.clone(), &ns);
    // Pods the runner could not start while the API server was down stay unrun (this runner,
    // unlike a kubelet, does not retry); the status counts them as injected and not verified,
    // as it must.
    let deadline = Instant::now() + Duration::from_secs(180);
    let mut last = None;
    let (status, expected) = loop {
        let list = pods.list(&ListParams::default().labels(LABEL)).await;
        let st = mvs.get("mv").await.ok().and_then(|m| m.status);
        if let (Ok(list), Some(st)) = (list, st) {
            let expected = expected_counts(&list.items);
            let got = (
                st.injected_pod_count + st.orphaned_pod_count,
                st.uninjected_pod_count,
                st.verified_count,
                st.failed_count,
            );
            if got == (expected.0, expected.1, expected.2, expected.3) {
                break (got, expected);
            }
            last = Some((got, expected));
        }
        assert!(
            Instant::now() < deadline,
            "the ModelValidation status did not converge within 180 s: last (status, pods) {last:?}"
        );
        tokio::time::sleep(Duration::from_secs(1)).await;
    };
    eprintln!(
        "status converged: {} injected (current + orphaned by the key change), {} uninjected, {} verified, {} failed; pods: {} with the verifier, {} without, {} verified, {} failed, {} not run (the runner gave up while the API server was down)",
        status.0,
        status.1,
        status.2,
        status.3,
        expected.0,
        expected.1,
        expected.2,
        expected.3,
        expected.4
    );
    assert_eq!(status.1, 0);
    runner_task.abort();
}

/// Labelled pods by (with verifier, without, verifier exited 0, exited non-zero, not run yet).
fn expected_counts(pods: &[Pod]) -> (i32, i32, i32, i32, i32) {
    let mut c = (0, 0, 0, 0, 0);
    for p in pods {
        if !has_verifier(p) {
            c.1 += 1;
            continue;
        }
        c.0 += 1;
        let exit = p
            .status
            .as_ref()
            .and_then(|s| s.init_container_statuses.as_ref())
            .and_then(|s| s.iter().find(|s| s.name == VERIFY_CONTAINER))
            .and_then(|s| s.state.as_ref()?.terminated.as_ref())
            .map(|t| t.exit_code);
        match exit {
            Some(0) => c.2 += 1,
            Some(_) => c.3 += 1,
            None => c.4 += 1,
        }
    }
    c
}

/// What one phase saw.
struct Row {
    labelled: usize,
    verified: usize,
    unverified: usize,
    failed: usize,
    refused: usize,
    unreachable: usize,
    api_down: usize,
    unlabelled: usize,
    unlabelled_ok: usize,
    recovery: Option<Duration>,
}

fn row(p: &Phase, samples: &[Sample], from: Duration, to: Duration) -> Row {
    let inside: Vec<&Sample> = samples
        .iter()
        .filter(|s| s.done >= from && s.done < to)
        .collect();
    let labelled: Vec<&&Sample> = inside.iter().filter(|s| s.labelled).collect();
    let count = |f: &dyn Fn(&Outcome) -> bool| labelled.iter().filter(|s| f(&s.outcome)).count();
    let failed_at: Vec<Duration> = labelled
        .iter()
        .filter(|s| !matches!(s.outcome, Outcome::Verified(_) | Outcome::Unverified))
        .map(|s| s.at)
        .collect();
    // Recovery: from the fault to the first admission after the last failure of the window (or
    // after the fault, when nothing failed).
    let after = failed_at
        .iter()
        .copied()
        .max()
        .unwrap_or(p.fault)
        .max(p.fault);
    let recovery = labelled
        .iter()
        .filter(|s| s.at >= after && matches!(s.outcome, Outcome::Verified(_)))
        .map(|s| s.at)
        .min()
        .map(|t| t.saturating_sub(p.fault));
    let unlabelled: Vec<&&Sample> = inside.iter().filter(|s| !s.labelled).collect();
    Row {
        labelled: labelled.len(),
        verified: count(&|o| matches!(o, Outcome::Verified(_))),
        unverified: count(&|o| *o == Outcome::Unverified),
        failed: failed_at.len(),
        refused: count(&|o| matches!(o, Outcome::Refused(_))),
        unreachable: count(&|o| matches!(o, Outcome::WebhookUnreachable(_))),
        api_down: count(&|o| matches!(o, Outcome::ApiUnavailable(_))),
        unlabelled: unlabelled.len(),
        unlabelled_ok: unlabelled
            .iter()
            .filter(|s| matches!(s.outcome, Outcome::Unverified | Outcome::Verified(_)))
            .count(),
        recovery,
    }
}

/// After the key change: admissions with the old key and when the new one was first used.
fn key_change_note(samples: &[Sample], at: Duration, old: &str, new: &str) -> String {
    let after: Vec<&Sample> = samples
        .iter()
        .filter(|s| s.labelled && s.at >= at)
        .collect();
    let old_after = after
        .iter()
        .filter(|s| s.outcome == Outcome::Verified(Some(old.to_string())))
        .count();
    let first_new = after
        .iter()
        .filter(|s| s.outcome == Outcome::Verified(Some(new.to_string())))
        .map(|s| s.at.saturating_sub(at))
        .min();
    format!(
        "new key first used {} after the change; {old_after} admissions with the old key after it",
        first_new.map_or("never".into(), |d| format!("{:.2} s", d.as_secs_f64()))
    )
}

fn print_table(phases: &[Phase], rows: &[Row], scale: f64, interval: Duration) {
    eprintln!(
        "\nfaults under load: scale {scale}, one create every {} ms (labelled and unlabelled alternate)\n",
        interval.as_millis()
    );
    eprintln!(
        "| fault | load held (labelled admitted / sent; unlabelled admitted / sent) | unverified admissions | failed admissions (refused / webhook unreachable / API down) | recovery time | notes |"
    );
    eprintln!("|---|---|---|---|---|---|");
    for (i, (p, r)) in phases.iter().zip(rows).enumerate() {
        eprintln!(
            "| {} | {}/{}; {}/{} | {} | {} ({} / {} / {}) | {} | {} |",
            p.name,
            r.verified,
            r.labelled,
            r.unlabelled_ok,
            r.unlabelled,
            r.unverified,
            r.failed,
            r.refused,
            r.unreachable,
            r.api_down,
            match (i, r.failed, r.recovery) {
                (0, _, _) => "n/a".to_string(),
                (_, _, None) => "not recovered in the window".to_string(),
                (_, 0, Some(d)) =>
                    format!("no interruption (next admission {:.2} s)", d.as_secs_f64()),
                (_, _, Some(d)) => format!("{:.2} s", d.as_secs_f64()),
            },
            p.note
        );
    }
    eprintln!();
}
