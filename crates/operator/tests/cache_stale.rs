//! Fail closed but never stale: an operator whose watches have been broken for longer than
//! `--cache-stale-after` reports not ready and refuses labelled pods saying to retry; it
//! recovers by itself and then decides on what changed meanwhile. A break shorter than the bound
//! changes nothing (passing twins).
//!
//! - `restart_beyond_the_bound...`: kube-apiserver is stopped on a control plane of its own,
//!   for longer than one operator's bound and shorter than another's.
//! - `partition_beyond_the_bound...`: the operator reaches the API server through a loopback
//!   balancer that is cut, while the API server can still call the webhook, so the refusal
//!   itself is seen.

mod support;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, Patch, PatchParams, PostParams};
use model_validation_operator::names::LABEL;
use serde_json::json;
use support::{
    Backend, Balancer, Operator, OperatorOptions, api_message, create_mv, fresh_key_signer,
    has_verifier, http_get, key_in_policy_mv, kubeconfig_via, mv_api, pod, verifier_key, wait_for,
};
use test_cluster::ControlPlane;

/// The bound of the operators expected to go unsynced, seconds.
const SHORT: u64 = 2;
const RETRY: &str = "retry in a few seconds";

fn ready(op: &Operator) -> bool {
    http_get(op.health, "/readyz").is_some_and(|r| r.status == 200)
}

/// Polls `/readyz` of `op` every 100 ms until `stop`; counts (polls, not-ready answers).
fn watch_readiness(
    op: &Operator,
    stop: Arc<AtomicBool>,
) -> tokio::task::JoinHandle<(usize, usize)> {
    let port = op.health;
    tokio::task::spawn_blocking(move || {
        let (mut polls, mut not_ready) = (0, 0);
        while !stop.load(Ordering::SeqCst) {
            polls += 1;
            if http_get(port, "/readyz").is_none_or(|r| r.status != 200) {
                not_ready += 1;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        (polls, not_ready)
    })
}

/// Creates labelled pod `name` naming ModelValidation `mv`; the created pod or the refusal.
async fn create_labelled(pods: &Api<Pod>, name: &str, mv: &str) -> Result<Pod, String> {
    let dir = std::env::temp_dir();
    pods.create(
        &PostParams::default(),
        &pod(name, json!({LABEL: mv}), &dir, &dir),
    )
    .await
    .map_err(api_message)
}

/// Retries creating labelled pod `name` until it is admitted; how many refusals said to retry.
async fn admitted_after_retries(pods: &Api<Pod>, name: &str, mv: &str) -> (Pod, usize) {
    let retries = AtomicUsize::new(0);
    let (pods, retries_ref) = (pods, &retries);
    let admitted = wait_for(
        "a labelled pod admitted after recovery",
        Duration::from_secs(90),
        || async move {
            match create_labelled(pods, name, mv).await {
                Ok(p) => Some(p),
                Err(msg) => {
                    if msg.contains(RETRY) {
                        retries_ref.fetch_add(1, Ordering::SeqCst);
                    }
                    None
                }
            }
        },
    )
    .await;
    (admitted, retries.load(Ordering::SeqCst))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restart_beyond_the_bound_goes_unready_and_recovers_with_new_policies() {
    test_cluster::install_crypto_provider();
    let cp = ControlPlane::start().await.unwrap();
    let client = cp.client().unwrap();
    let mut opts = OperatorOptions::new("mvo-stale-short");
    opts.namespace = Some("mvo-system".into());
    opts.cache_stale_after = Some(SHORT);
    let short = Operator::start(cp.kubeconfig_path(), opts).await;
    // Twin: the same outage is shorter than this one's bound.
    let mut opts = OperatorOptions::new("mvo-stale-long");
    opts.namespace = Some("mvo-system".into());
    opts.cache_stale_after = Some(600);
    let long = Operator::start(cp.kubeconfig_path(), opts).await;

    let ns = cp.create_namespace("stale").await.unwrap();
    let pods: Api<Pod> = Api::namespaced(client.clone(), &ns);
    let (_, old_pem) = fresh_key_signer();
    create_mv(&client, &ns, key_in_policy_mv("before", &old_pem))
        .await
        .unwrap();
    let (first, _) = admitted_after_retries(&pods, "first", "before").await;
    assert_eq!(verifier_key(&first).as_deref(), Some(old_pem.as_str()));
    assert_eq!(short.metric("model_validation_cache_synced"), Some(1.0));

    let stop = Arc::new(AtomicBool::new(false));
    let long_polls = watch_readiness(&long, stop.clone());
    let down = std::time::Instant::now();
    cp.stop_apiserver(Duration::from_secs(5));
    let short_ref = &short;
    let why = wait_for(
        "the short-bound operator to report not ready while kube-apiserver is down",
        Duration::from_secs(30),
        || async move {
            http_get(short_ref.health, "/readyz")
                .filter(|r| r.status == 503)
                .map(|r| r.body)
        },
    )
    .await;
    let unready_after = down.elapsed();
    assert_eq!(why, "caches not synced");
    assert_eq!(short.metric("model_validation_cache_synced"), Some(0.0));
    // Still down a while longer: it stays not ready (no flapping while nothing answers).
    tokio::time::sleep(Duration::from_secs(2 * SHORT)).await;
    assert!(!ready(&short));
    cp.start_apiserver(Duration::from_secs(90)).await.unwrap();
    let outage = down.elapsed();

    // A policy made after the restart is what the next admission uses.
    let (_, new_pem) = fresh_key_signer();
    create_mv(&client, &ns, key_in_policy_mv("after", &new_pem))
        .await
        .unwrap();
    let (second, retried) = admitted_after_retries(&pods, "second", "after").await;
    assert!(has_verifier(&second));
    assert_eq!(verifier_key(&second).as_deref(), Some(new_pem.as_str()));
    wait_for(
        "the short-bound operator to be ready again",
        Duration::from_secs(60),
        || async { ready(&short).then_some(()) },
    )
    .await;
    assert_eq!(short.metric("model_validation_cache_synced"), Some(1.0));

    stop.store(true, Ordering::SeqCst);
    let (polls, long_not_ready) = long_polls.await.unwrap();
    assert!(polls >= 10, "the twin was polled only {polls} times");
    assert_eq!(
        long_not_ready, 0,
        "an outage of {outage:?}, below the 600 s bound, must not make the cache unsynced"
    );
    assert!(ready(&long));
    eprintln!(
        "restart: not ready {unready_after:?} after the stop (bound {SHORT} s), outage {outage:?}, {retried} refusals saying to retry after it, twin ready in {polls} polls"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn partition_beyond_the_bound_refuses_labelled_pods_with_retry_then_recovers() {
    test_cluster::install_crypto_provider();
    let cp = test_cluster::shared().await.unwrap();
    let client = cp.client().unwrap();
    let server: std::net::SocketAddr = cp
        .server_url()
        .trim_start_matches("https://")
        .parse()
        .unwrap();
    let link = Balancer::start(vec![Backend {
        addr: server,
        health: None,
    }])
    .await;
    let tmp = tempfile::tempdir().unwrap();
    let kubeconfig = kubeconfig_via(
        cp.kubeconfig_path(),
        cp.server_url(),
        &link.url(),
        tmp.path(),
    );
    let mut opts = OperatorOptions::new("mvo-stale-cut");
    opts.namespace = Some("mvo-cut-system".into());
    opts.cache_stale_after = Some(SHORT);
    let op = Operator::start(&kubeconfig, opts).await;
    let ns = cp.create_namespace("cut").await.unwrap();
    let pods: Api<Pod> = Api::namespaced(client.clone(), &ns);
    let (_, old_pem) = fresh_key_signer();
    create_mv(&client, &ns, key_in_policy_mv("mv", &old_pem))
        .await
        .unwrap();
    let (p0, _) = admitted_after_retries(&pods, "p0", "mv").await;
    assert_eq!(verifier_key(&p0).as_deref(), Some(old_pem.as_str()));

    // --- twin: a cut shorter than the bound, healed at once, leaves it ready throughout ---
    let stop = Arc::new(AtomicBool::new(false));
    let polls = watch_readiness(&op, stop.clone());
    link.cut();
    tokio::time::sleep(Duration::from_millis(500)).await;
    link.heal();
    // Past the bound: a probe finds the API server and the watches list afresh, still synced.
    tokio::time::sleep(Duration::from_secs(3 * SHORT)).await;
    stop.store(true, Ordering::SeqCst);
    let (n, not_ready) = polls.await.unwrap();
    assert!(n >= 10, "polled only {n} times");
    assert_eq!(not_ready, 0, "a healed 0.5 s break made the cache unsynced");

    // --- cut beyond the bound: not ready, and labelled pods are refused saying to retry ---
    link.cut();
    let op_ref = &op;
    wait_for(
        "the partitioned operator to report not ready",
        Duration::from_secs(30),
        || async move { (!ready(op_ref)).then_some(()) },
    )
    .await;
    // The key changes while the operator cannot see it.
    let (_, new_pem) = fresh_key_signer();
    mv_api(&client, &ns, "ml.sigstore.dev")
        .patch(
            "mv",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"config": {"publicKeyConfig": {"keyPem": new_pem}}}})),
        )
        .await
        .unwrap();
    let refused = create_labelled(&pods, "p1", "mv").await.unwrap_err();
    assert!(refused.contains(RETRY), "{refused}");
    assert!(refused.contains("watch"), "{refused}");
    // Twin: unlabelled pods are never sent to the webhook.
    let dir = std::env::temp_dir();
    pods.create(
        &PostParams::default(),
        &pod("plain", json!({"app": "x"}), &dir, &dir),
    )
    .await
    .unwrap();

    // --- healed: ready again by itself, and the key changed meanwhile is the one used ---
    link.heal();
    wait_for(
        "the operator to be ready again after the partition",
        Duration::from_secs(60),
        || async move { ready(op_ref).then_some(()) },
    )
    .await;
    let (p2, _) = admitted_after_retries(&pods, "p2", "mv").await;
    assert_eq!(
        verifier_key(&p2).as_deref(),
        Some(new_pem.as_str()),
        "the key changed during the partition must be used after it"
    );
    assert!(link.connections() > 0);
}
