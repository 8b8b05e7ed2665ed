//! The status controller on a real local control plane, with the operator running as processes
//! and the pod runner standing in for a kubelet: ModelValidation status after a verified and a
//! failed pod, Events on the pod and the ModelValidation, metrics, spec drift, and leader
//! fail-over (the leader killed, the other replica takes over, no status update lost).

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use k8s_openapi::api::admissionregistration::v1::MutatingWebhookConfiguration;
use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::api::events::v1::Event;
use kube::Client;
use kube::api::{Api, DeleteParams, ListParams, Patch, PatchParams, PostParams};
use model_signing::hashing::HashAlgorithm;
use model_signing::keys::PrivateKey;
use model_signing::manifest::Method;
use model_signing::name::ModelPath;
use model_signing::serialize::HashOptions;
use model_signing::sign::{KeySigner, sign_model};
use model_signing::walk::Selection;
use model_validation_operator::controller::events::{mv_reference, pod_denied};
use model_validation_operator::crd::{ModelValidation, ModelValidationStatus};
use serde_json::json;
use test_cluster::pod_runner::{PodRunner, RunnerConfig};

const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../../shared/fixtures");
const AGENT_IMAGE: &str = "ghcr.io/model-validation-operator/model-signing:v0.1.0";
const LABEL: &str = "validation.ml.sigstore.dev/ml";

fn fixture(rel: &str) -> PathBuf {
    Path::new(FIXTURES).join(rel)
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn http_get(port: u16, path: &str) -> Option<String> {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).ok()?;
    s.write_all(format!("GET {path} HTTP/1.0\r\n\r\n").as_bytes())
        .ok()?;
    let mut out = String::new();
    s.read_to_string(&mut out).ok()?;
    Some(out)
}

/// The value of one sample line of the operator's /metrics.
fn metric(text: &str, sample: &str) -> f64 {
    text.lines()
        .find_map(|l| l.strip_prefix(sample).and_then(|v| v.trim().parse().ok()))
        .unwrap_or(0.0)
}

/// The operator binary running against the test control plane.
struct Operator {
    child: Child,
    health: u16,
    log: PathBuf,
}

impl Operator {
    async fn start(kubeconfig: &Path, namespace: &str, config_name: &str, id: &str) -> Operator {
        let port = free_port();
        let health = free_port();
        let log = std::env::temp_dir().join(format!("mvo-controller-{config_name}.log"));
        let child = Command::new(env!("CARGO_BIN_EXE_model-validation-operator"))
            .env("KUBECONFIG", kubeconfig)
            .env("POD_NAME", id)
            .env("RUST_LOG", "info,model_validation_operator=debug")
            .args(["--install-crds", "--log-format", "text"])
            .args(["--namespace", namespace, "--webhook-config", config_name])
            .args(["--webhook-addr", &format!("127.0.0.1:{port}")])
            .args(["--health-addr", &format!("127.0.0.1:{health}")])
            .args(["--webhook-url", &format!("https://127.0.0.1:{port}")])
            .args(["--agent-image", AGENT_IMAGE])
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .unwrap();
        let op = Operator { child, health, log };
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if http_get(health, "/readyz").is_some_and(|out| {
                out.starts_with("HTTP/1.0 200") || out.starts_with("HTTP/1.1 200")
            }) {
                return op;
            }
            assert!(
                Instant::now() < deadline,
                "operator not ready within 30 s; see {}",
                op.log.display()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    fn metrics(&self) -> String {
        http_get(self.health, "/metrics").unwrap_or_default()
    }

    fn kill(&mut self) {
        let _ = self.child.kill(); // SIGKILL: no lease release
        let _ = self.child.wait();
    }
}

impl Drop for Operator {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Polls `f` every 200 ms until it returns Some, at most `secs` seconds.
async fn wait_for<T, F, Fut>(secs: u64, what: &str, mut f: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = Instant::now() + Duration::from_secs(secs);
    loop {
        if let Some(v) = f().await {
            return v;
        }
        assert!(
            Instant::now() < deadline,
            "timed out after {secs} s: {what}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

fn write_signed_model(dir: &Path) {
    std::fs::create_dir_all(dir.join("sub")).unwrap();
    std::fs::write(dir.join("weights.bin"), vec![7u8; 100_000]).unwrap();
    std::fs::write(dir.join("config.json"), "{\"layers\": 2}").unwrap();
    std::fs::write(dir.join("sub/tokenizer.json"), "[]").unwrap();
    let key = PrivateKey::from_pem(
        "key",
        &std::fs::read(fixture("peer-samples/ec-p256.priv.pem")).unwrap(),
        None,
    )
    .unwrap();
    let sel = Selection {
        ignore_paths: vec![ModelPath::parse("model.sig").unwrap()],
        ignore_git_paths: true,
        allow_symlinks: false,
    };
    let (bundle, _) = sign_model(
        dir,
        &sel,
        Method::Files,
        HashAlgorithm::Sha256,
        &KeySigner::new(key),
        &HashOptions::default(),
    )
    .unwrap();
    std::fs::write(dir.join("model.sig"), bundle.to_json()).unwrap();
}

/// A pod whose app container mounts `/data` and `/keys` from the host.
fn pod(name: &str, mv: &str, data: &Path, keys: &Path) -> Pod {
    serde_json::from_value(json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": name, "labels": {LABEL: mv}},
        "spec": {
            "restartPolicy": "Never",
            "containers": [{"name": "app", "image": "app", "command": ["sleep", "30"], "volumeMounts": [
                {"name": "data", "mountPath": "/data"}, {"name": "keys", "mountPath": "/keys"}]}],
            "volumes": [
                {"name": "data", "hostPath": {"path": data.to_str().unwrap()}},
                {"name": "keys", "hostPath": {"path": keys.to_str().unwrap()}}]
        }
    }))
    .unwrap()
}

/// Creates the pod (through the webhook) and runs it like a kubelet; returns the verifier's
/// exit code.
async fn create_and_run(client: &Client, ns: &str, p: Pod) -> i32 {
    let name = p.metadata.name.clone().unwrap();
    Api::<Pod>::namespaced(client.clone(), ns)
        .create(&PostParams::default(), &p)
        .await
        .unwrap();
    let runner = PodRunner::new(client.clone(), RunnerConfig::default()).unwrap();
    let mut run = runner.run(ns, &name).await.unwrap();
    run.stop_all();
    let pod = Api::<Pod>::namespaced(client.clone(), ns)
        .get(&name)
        .await
        .unwrap();
    pod.status
        .unwrap()
        .init_container_statuses
        .unwrap()
        .into_iter()
        .find(|s| s.name == "model-validation")
        .and_then(|s| s.state?.terminated)
        .expect("verifier terminated")
        .exit_code
}

async fn status(api: &Api<ModelValidation>, name: &str) -> (Option<i64>, ModelValidationStatus) {
    let mv = api.get(name).await.unwrap();
    (mv.metadata.generation, mv.status.unwrap_or_default())
}

async fn events(client: &Client, ns: &str) -> Vec<Event> {
    Api::<Event>::namespaced(client.clone(), ns)
        .list(&ListParams::default())
        .await
        .unwrap()
        .items
}

fn find_event<'a>(evs: &'a [Event], reason: &str, kind: &str, name: &str) -> Option<&'a Event> {
    evs.iter().find(|e| {
        e.reason.as_deref() == Some(reason)
            && e.regarding
                .as_ref()
                .is_some_and(|r| r.kind.as_deref() == Some(kind) && r.name.as_deref() == Some(name))
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_events_metrics_and_failover() {
    test_cluster::install_crypto_provider();
    let agent = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target/release/model-signing");
    assert!(
        agent.exists(),
        "{} is missing: run `cargo build --release -p model-signing-cli` (make test does)",
        agent.display()
    );
    let cp = test_cluster::shared().await.unwrap();
    let client = cp.client().unwrap();
    let op_ns = "mvo-ctl-system";
    let mut a = Operator::start(cp.kubeconfig_path(), op_ns, "mvo-ctl-a", "replica-a").await;
    wait_for(30, "replica a leads", || async {
        (metric(&a.metrics(), "model_validation_leader") == 1.0).then_some(())
    })
    .await;

    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let keys = tmp.path().join("keys");
    write_signed_model(&data.join("model"));
    std::fs::create_dir_all(&keys).unwrap();
    std::fs::copy(
        fixture("peer-samples/ec-p256.pub.pem"),
        keys.join("pub.pem"),
    )
    .unwrap();
    let ns = cp.create_namespace("ctl").await.unwrap();
    let mvs: Api<ModelValidation> = Api::namespaced(client.clone(), &ns);
    mvs.create(
        &PostParams::default(),
        &serde_json::from_value(json!({
            "apiVersion": "ml.sigstore.dev/v1alpha1", "kind": "ModelValidation", "metadata": {"name": "key-mv"},
            "spec": {"model": {"path": "/data/model", "signaturePath": "/data/model/model.sig"},
                     "config": {"publicKeyConfig": {"keyPath": "/keys/pub.pem"}}}
        }))
        .unwrap(),
    )
    .await
    .unwrap();

    // --- (a) a verified and a failed pod: counts, outcomes, last failure, Ready ---
    let code = create_and_run(&client, &ns, pod("good", "key-mv", &data, &keys)).await;
    assert_eq!(code, 0);
    std::fs::write(data.join("model/weights.bin"), vec![8u8; 100_000]).unwrap();
    let code = create_and_run(&client, &ns, pod("bad", "key-mv", &data, &keys)).await;
    assert_eq!(code, 1);
    let (generation, st) = wait_for(30, "status counts both pods", || async {
        let (g, st) = status(&mvs, "key-mv").await;
        (st.verified_count == 1 && st.failed_count == 1).then_some((g, st))
    })
    .await;
    assert_eq!(st.injected_pod_count, 2, "{st:?}");
    assert_eq!((st.uninjected_pod_count, st.orphaned_pod_count), (0, 0));
    let mut names: Vec<_> = st.injected_pods.iter().map(|p| p.name.clone()).collect();
    names.sort();
    assert_eq!(names, ["bad", "good"]);
    let failure = st.last_failure.clone().expect("lastFailure");
    assert_eq!(failure.pod, "bad");
    assert!(
        failure.message.contains("weights.bin"),
        "{}",
        failure.message
    );
    assert!(failure.time.is_some());
    assert_eq!(st.auth_method.as_deref(), Some("public-key"));
    assert_eq!(st.observed_generation, generation);
    let ready = st.conditions.iter().find(|c| c.type_ == "Ready").unwrap();
    assert_eq!(
        (ready.status.as_str(), ready.reason.as_str()),
        ("True", "Valid")
    );
    assert!(st.last_updated.is_some());

    // Idempotent: with nothing changing, the status is not rewritten.
    let before = st.last_updated.clone();
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(status(&mvs, "key-mv").await.1.last_updated, before);

    // --- (b) Events on the failed pod and on the ModelValidation, with the verifier's message ---
    let evs = wait_for(30, "verification events", || async {
        let evs = events(&client, &ns).await;
        (find_event(&evs, "ModelVerificationFailed", "Pod", "bad").is_some()
            && find_event(&evs, "ModelVerificationFailed", "ModelValidation", "key-mv").is_some()
            && find_event(&evs, "ModelVerified", "Pod", "good").is_some())
        .then_some(evs)
    })
    .await;
    let on_pod = find_event(&evs, "ModelVerificationFailed", "Pod", "bad").unwrap();
    assert_eq!(on_pod.type_.as_deref(), Some("Warning"));
    assert_eq!(
        on_pod.reporting_controller.as_deref(),
        Some("model-validation-operator")
    );
    let note = on_pod.note.clone().unwrap_or_default();
    assert!(note.contains("weights.bin"), "{note}");
    let on_mv = find_event(&evs, "ModelVerificationFailed", "ModelValidation", "key-mv").unwrap();
    let note = on_mv.note.clone().unwrap_or_default();
    assert!(
        note.contains("pod bad") && note.contains("weights.bin"),
        "{note}"
    );
    // Once per failure, not per reconcile.
    let failed_events = evs
        .iter()
        .filter(|e| e.reason.as_deref() == Some("ModelVerificationFailed"))
        .count();
    assert_eq!(failed_events, 2, "{evs:?}");
    // The webhook's helper for refused pods.
    pod_denied(
        client.clone(),
        mv_reference(&ns, "key-mv", None),
        "lookalike",
        "the pod already has a container named \"model-validation\"",
    )
    .await
    .unwrap();
    let evs = events(&client, &ns).await;
    let denied = find_event(&evs, "PodDenied", "ModelValidation", "key-mv").expect("PodDenied");
    assert!(
        denied.note.as_deref().unwrap_or("").contains("lookalike"),
        "{denied:?}"
    );

    // --- (c) metrics: reconciles, verification outcomes counted once, leadership ---
    let text = a.metrics();
    assert!(
        metric(
            &text,
            "model_validation_reconciles_total{result=\"success\"}"
        ) >= 1.0,
        "{text}"
    );
    assert!(
        metric(&text, "model_validation_reconcile_duration_seconds_count") >= 1.0,
        "{text}"
    );
    assert_eq!(
        metric(
            &text,
            "model_validation_verifications_total{method=\"public-key\",result=\"failed\"}"
        ),
        1.0,
        "{text}"
    );
    assert_eq!(
        metric(
            &text,
            "model_validation_verifications_total{method=\"public-key\",result=\"verified\"}"
        ),
        1.0,
        "{text}"
    );

    // --- spec drift: pods injected under the old spec become orphaned ---
    mvs.patch(
        "key-mv",
        &PatchParams::default(),
        &Patch::Merge(json!({"spec": {"model": {"ignoreUnsignedFiles": true}}})),
    )
    .await
    .unwrap();
    let (g2, st) = wait_for(30, "orphaned after a spec change", || async {
        let (g, st) = status(&mvs, "key-mv").await;
        (st.orphaned_pod_count == 2 && st.observed_generation == g).then_some((g, st))
    })
    .await;
    assert!(g2 > generation);
    assert_eq!(st.injected_pod_count, 0);
    assert!(st.injected_pods.is_empty(), "a removed list is removed");

    // --- (d) a second replica; the leader is killed; a change made meanwhile still lands ---
    let b = Operator::start(cp.kubeconfig_path(), op_ns, "mvo-ctl-b", "replica-b").await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(
        metric(&b.metrics(), "model_validation_leader"),
        0.0,
        "one leader at a time"
    );
    a.kill();
    // A's webhook is gone with it (in a cluster the Service routes to live replicas).
    Api::<MutatingWebhookConfiguration>::all(client.clone())
        .delete("mvo-ctl-a", &DeleteParams::default())
        .await
        .unwrap();
    let killed = Instant::now();
    let code = create_and_run(&client, &ns, pod("after", "key-mv", &data, &keys)).await;
    assert_eq!(code, 1);
    wait_for(60, "replica b takes over", || async {
        (metric(&b.metrics(), "model_validation_leader") == 1.0).then_some(())
    })
    .await;
    let took_over = killed.elapsed();
    let st = wait_for(30, "the change made during the fail-over lands", || async {
        let (_, st) = status(&mvs, "key-mv").await;
        (st.failed_count == 2).then_some(st)
    })
    .await;
    assert_eq!(st.last_failure.unwrap().pod, "after");
    assert_eq!(st.injected_pod_count, 1, "{:?}", st.injected_pods);
    assert_eq!(st.orphaned_pod_count, 2);
    eprintln!(
        "fail-over: replica b leads {:.1} s after the leader was killed",
        took_over.as_secs_f64()
    );
    assert!(
        took_over < Duration::from_secs(40),
        "took over after {took_over:?}"
    );
    let evs = events(&client, &ns).await;
    assert!(find_event(&evs, "ModelVerificationFailed", "Pod", "after").is_some());
    let text = b.metrics();
    assert!(
        metric(
            &text,
            "model_validation_verifications_total{method=\"public-key\",result=\"failed\"}"
        ) >= 1.0,
        "{text}"
    );
}
