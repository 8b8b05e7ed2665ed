//! The status controller on a real local control plane, with the operator running as processes
//! and the pod runner standing in for a kubelet: ModelValidation status after a verified and a
//! failed pod, Events on the pod and the ModelValidation, metrics, spec drift, and leader
//! fail-over (the leader killed, the other replica takes over, no status update lost).

mod support;

use std::time::{Duration, Instant};

use k8s_openapi::api::admissionregistration::v1::MutatingWebhookConfiguration;
use kube::api::{Api, DeleteParams, Patch, PatchParams, PostParams};
use model_validation_operator::controller::lease::LEASE_DURATION;
use model_validation_operator::crd::{ModelValidation, ModelValidationStatus};
use model_validation_operator::events::{EventSink, Limits, mv_reference, pod_denied};
use model_validation_operator::names::LABEL;
use serde_json::json;
use support::{
    Operator, OperatorOptions, agent_binary, create_and_run, events, find_event, metric, pod,
    signed_model_and_key, wait_dry_run_admits, wait_for,
};

const RECONCILES: &str = "model_validation_reconciles_total{result=\"success\"}";

async fn status(api: &Api<ModelValidation>, name: &str) -> (Option<i64>, ModelValidationStatus) {
    let mv = api.get(name).await.unwrap();
    (mv.metadata.generation, mv.status.unwrap_or_default())
}

/// A replica of the operator with its own webhook configuration, in the shared operator
/// namespace (one Lease for both).
async fn replica(cp: &test_cluster::ControlPlane, webhook_config: &str, id: &str) -> Operator {
    let mut opts = OperatorOptions::new(webhook_config);
    opts.namespace = Some("mvo-ctl-system".into());
    opts.pod_name = Some(id.into());
    Operator::start(cp.kubeconfig_path(), opts).await
}

/// Makes `leader` reconcile `name` once more (an annotation change is a watch event but no
/// spec change) and waits until its reconcile counter has grown.
async fn force_reconcile(leader: &Operator, mvs: &Api<ModelValidation>, name: &str, round: u32) {
    let before = leader
        .metric(RECONCILES)
        .expect("the leader exposes its reconciles");
    mvs.patch(
        name,
        &PatchParams::default(),
        &Patch::Merge(
            json!({"metadata": {"annotations": {"test.mvo.dev/poke": round.to_string()}}}),
        ),
    )
    .await
    .unwrap();
    wait_for(
        "a reconcile after the poke",
        Duration::from_secs(30),
        || async move { (leader.metric(RECONCILES)? > before).then_some(()) },
    )
    .await;
}

fn failed_events(evs: &[k8s_openapi::api::events::v1::Event]) -> usize {
    evs.iter()
        .filter(|e| e.reason.as_deref() == Some("ModelVerificationFailed"))
        .count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_events_metrics_and_failover() {
    test_cluster::install_crypto_provider();
    agent_binary();
    let cp = test_cluster::shared().await.unwrap();
    let client = cp.client().unwrap();
    let a = replica(cp, "mvo-ctl-a", "replica-a").await;
    let leader_a = &a;
    wait_for("replica a leads", Duration::from_secs(30), || async move {
        (leader_a.metric("model_validation_leader") == Some(1.0)).then_some(())
    })
    .await;

    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let keys = tmp.path().join("keys");
    signed_model_and_key(&data.join("model"), &keys);
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
    let labels = json!({LABEL: "key-mv"});
    let (code, _) = create_and_run(&client, &ns, pod("good", labels.clone(), &data, &keys)).await;
    assert_eq!(code, 0);
    std::fs::write(data.join("model/weights.bin"), vec![8u8; 100_000]).unwrap();
    let (code, _) = create_and_run(&client, &ns, pod("bad", labels.clone(), &data, &keys)).await;
    assert_eq!(code, 1);
    let mvs_ref = &mvs;
    let (generation, st) = wait_for(
        "status counts both pods",
        Duration::from_secs(30),
        || async move {
            let (g, st) = status(mvs_ref, "key-mv").await;
            (st.verified_count == 1 && st.failed_count == 1).then_some((g, st))
        },
    )
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

    // --- (b) Events on the failed pod and on the ModelValidation, with the verifier's message ---
    let (client_ref, ns_ref) = (&client, ns.as_str());
    let evs = wait_for(
        "verification events",
        Duration::from_secs(30),
        || async move {
            let evs = events(client_ref, ns_ref).await;
            (find_event(&evs, "ModelVerificationFailed", "Pod", "bad").is_some()
                && find_event(&evs, "ModelVerificationFailed", "ModelValidation", "key-mv")
                    .is_some()
                && find_event(&evs, "ModelVerified", "Pod", "good").is_some())
            .then_some(evs)
        },
    )
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
    assert_eq!(failed_events(&evs), 2, "{evs:?}");

    // Idempotent: a reconcile with nothing changed rewrites no status and records no Event.
    force_reconcile(&a, &mvs, "key-mv", 1).await;
    let (_, again) = status(&mvs, "key-mv").await;
    assert_eq!(
        again.last_updated, st.last_updated,
        "the status is not rewritten"
    );
    assert_eq!(again, st, "nothing in the status changed");
    let evs = events(&client, &ns).await;
    assert_eq!(
        failed_events(&evs),
        2,
        "no new Event per reconcile: {evs:?}"
    );
    // The webhook's helper for refused pods: repeats of one refusal form one Event series on
    // the real API server, whichever pod was refused; another reason is another Event.
    let sink = EventSink::start(client.clone(), None, Limits::default());
    let reason = "the pod already has a container named \"model-validation\"";
    for pod in ["lookalike", "lookalike-2", "lookalike-3"] {
        pod_denied(&sink, mv_reference(&ns, "key-mv", None), pod, reason);
    }
    pod_denied(
        &sink,
        mv_reference(&ns, "key-mv", None),
        "other",
        "no signature",
    );
    let (client_ref, ns_ref) = (&client, &ns);
    let evs = wait_for(
        "a PodDenied series of 3 and the other refusal's Event",
        Duration::from_secs(30),
        || async move {
            let evs = events(client_ref, ns_ref).await;
            let denied =
                |e: &&k8s_openapi::api::events::v1::Event| e.reason.as_deref() == Some("PodDenied");
            let repeated = evs
                .iter()
                .filter(denied)
                .any(|e| e.series.as_ref().is_some_and(|s| s.count == 3));
            let other = evs.iter().filter(denied).any(|e| {
                e.note
                    .as_deref()
                    .is_some_and(|n| n.contains("no signature"))
            });
            (repeated && other).then_some(evs)
        },
    )
    .await;
    let denied: Vec<_> = evs
        .iter()
        .filter(|e| e.reason.as_deref() == Some("PodDenied"))
        .collect();
    assert_eq!(denied.len(), 2, "one Event per reason: {denied:?}");
    let first = denied
        .iter()
        .find(|e| e.series.is_some())
        .expect("the repeated refusal");
    assert!(
        first.note.as_deref().unwrap_or("").contains("lookalike"),
        "{first:?}"
    );
    assert_eq!(
        first.regarding.as_ref().and_then(|r| r.name.as_deref()),
        Some("key-mv")
    );

    // --- (c) metrics: reconciles, verification outcomes counted once, leadership ---
    let text = a.metrics();
    assert!(metric(&text, RECONCILES) >= Some(1.0), "{text}");
    assert!(
        metric(&text, "model_validation_reconcile_duration_seconds_count") >= Some(1.0),
        "{text}"
    );
    assert_eq!(
        metric(
            &text,
            "model_validation_verifications_total{method=\"public-key\",result=\"failed\"}"
        ),
        Some(1.0),
        "{text}"
    );
    assert_eq!(
        metric(
            &text,
            "model_validation_verifications_total{method=\"public-key\",result=\"verified\"}"
        ),
        Some(1.0),
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
    let (g2, st) = wait_for(
        "orphaned after a spec change",
        Duration::from_secs(30),
        || async move {
            let (g, st) = status(mvs_ref, "key-mv").await;
            (st.orphaned_pod_count == 2 && st.observed_generation == g).then_some((g, st))
        },
    )
    .await;
    assert!(g2 > generation);
    assert_eq!(st.injected_pod_count, 0);
    assert!(st.injected_pods.is_empty(), "a removed list is removed");

    // --- (d) a second replica; the leader is killed; a change made meanwhile still lands ---
    let b = replica(cp, "mvo-ctl-b", "replica-b").await;
    // One leader at a time: b is scraped and does not lead for a whole lease period (if a's
    // lease were not renewed, b would take it within that time).
    let lease_period = Instant::now() + Duration::from_secs(LEASE_DURATION + 1);
    while Instant::now() < lease_period {
        assert_eq!(
            b.metric("model_validation_leader"),
            Some(0.0),
            "one leader at a time"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    assert_eq!(
        a.metric("model_validation_leader"),
        Some(1.0),
        "a still leads"
    );
    a.kill();
    // A's webhook is gone with it (in a cluster the Service routes to live replicas).
    Api::<MutatingWebhookConfiguration>::all(client.clone())
        .delete("mvo-ctl-a", &DeleteParams::default())
        .await
        .unwrap();
    let killed = Instant::now();
    // The API server drops a deleted webhook configuration from its cache a moment later
    // (asynchronously; seconds on a loaded machine): until then it still calls the dead
    // replica, and fails closed. A dry run tells when it no longer does.
    let after = pod("after", labels, &data, &keys);
    wait_dry_run_admits(
        &Api::namespaced(client.clone(), &ns),
        &after,
        "the API server to stop calling the deleted webhook configuration",
        Duration::from_secs(30),
        |_| true,
    )
    .await;
    let (code, _) = create_and_run(&client, &ns, after).await;
    assert_eq!(code, 1);
    let replica_b = &b;
    wait_for(
        "replica b takes over",
        Duration::from_secs(60),
        || async move { (replica_b.metric("model_validation_leader") == Some(1.0)).then_some(()) },
    )
    .await;
    let took_over = killed.elapsed();
    let st = wait_for(
        "the change made during the fail-over lands",
        Duration::from_secs(30),
        || async move {
            let (_, st) = status(mvs_ref, "key-mv").await;
            (st.failed_count == 2).then_some(st)
        },
    )
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
    // The Event is written after the status, through the rate-limited sink: wait for it.
    let (client_ref, ns_ref) = (&client, &ns);
    wait_for(
        "the ModelVerificationFailed Event of pod after",
        Duration::from_secs(30),
        || async move {
            let evs = events(client_ref, ns_ref).await;
            find_event(&evs, "ModelVerificationFailed", "Pod", "after").map(|_| ())
        },
    )
    .await;
    let text = b.metrics();
    assert!(
        metric(
            &text,
            "model_validation_verifications_total{method=\"public-key\",result=\"failed\"}"
        ) >= Some(1.0),
        "{text}"
    );
}
