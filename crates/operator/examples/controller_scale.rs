//! Load for bench/controller-scale.sh: against the cluster in KUBECONFIG (with the operator
//! running), creates MVS ModelValidations and PODS labelled pods (through the webhook), then
//! plays the kubelet by writing each pod's verifier outcome to its status (one in ten of each ModelValidation's fails),
//! and measures how long after the last write every ModelValidation's status is right. A second
//! round adds one pod per ModelValidation whose verifier fails, and measures again. Prints one JSON line.
//!
//!   controller_scale [MVS=100] [PODS=2000]

use std::collections::HashMap;
use std::time::{Duration, Instant};

use futures::{StreamExt, TryStreamExt};
use k8s_openapi::api::core::v1::{Namespace, Pod};
use kube::api::{Api, ListParams, Patch, PatchParams, PostParams};
use kube::{Client, ResourceExt};
use model_validation_operator::crd::ModelValidation;
use serde_json::json;

const NAMESPACES: usize = 10;
const CONCURRENCY: usize = 64;

/// Give up after this many seconds (env CONVERGE_LIMIT, default 120).
fn limit() -> u64 {
    std::env::var("CONVERGE_LIMIT")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(120)
}

fn ns_of(mv: usize) -> String {
    format!("scale-{}", mv % NAMESPACES)
}

/// Every tenth pod of each ModelValidation fails.
fn fails(pod: usize, mvs: usize) -> bool {
    (pod / mvs) % 10 == 9
}

fn verifier_status(code: i32, attempt: i32) -> serde_json::Value {
    let message = if code == 0 {
        "verified: 3 files, key".to_string()
    } else {
        format!("verification failed: 1 file changed: weights.bin (attempt {attempt})")
    };
    json!({"status": {"phase": "Pending", "initContainerStatuses": [{
        "name": "model-validation", "image": "agent", "imageID": "", "ready": false,
        "restartCount": attempt,
        "state": {"terminated": {"exitCode": code, "reason": if code == 0 {"Completed"} else {"Error"},
                  "message": message, "finishedAt": k8s_openapi::jiff::Timestamp::now().to_string()}}}]}})
}

/// Seconds until every ModelValidation's status shows `want[(ns, name)] = (verified, failed)`.
async fn converge(
    client: &Client,
    want: &HashMap<(String, String), (i32, i32)>,
    pods_per: i32,
) -> f64 {
    let start = Instant::now();
    let api: Api<ModelValidation> = Api::all(client.clone());
    loop {
        let list = api.list(&ListParams::default()).await.expect("list");
        let ok = list
            .items
            .iter()
            .filter(|m| want.contains_key(&(m.namespace().unwrap_or_default(), m.name_any())))
            .filter(|m| {
                let s = m.status.clone().unwrap_or_default();
                let w = want[&(m.namespace().unwrap_or_default(), m.name_any())];
                (s.verified_count, s.failed_count) == w && s.injected_pod_count == pods_per
            })
            .count();
        if ok == want.len() {
            return start.elapsed().as_secs_f64();
        }
        if start.elapsed() > Duration::from_secs(limit()) {
            let wrong: Vec<String> = list
                .items
                .iter()
                .filter_map(|m| {
                    let s = m.status.clone().unwrap_or_default();
                    let w = want.get(&(m.namespace().unwrap_or_default(), m.name_any()))?;
                    ((s.verified_count, s.failed_count) != *w || s.injected_pod_count != pods_per)
                        .then(|| {
                            format!(
                                "{}: want {w:?}/{pods_per}, have ({}, {})/{}",
                                m.name_any(),
                                s.verified_count,
                                s.failed_count,
                                s.injected_pod_count
                            )
                        })
                })
                .take(5)
                .collect();
            eprintln!(
                "not converged in time: {ok}/{} right; e.g. {wrong:?}",
                want.len()
            );
            std::process::exit(1);
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn create_pods(client: &Client, ids: Vec<usize>, mvs: usize) {
    futures::stream::iter(ids)
        .map(|i| {
            let client = client.clone();
            async move {
                let m = i % mvs;
                let pod: Pod = serde_json::from_value(json!({
                    "metadata": {"name": format!("p-{i}"), "labels": {"validation.ml.sigstore.dev/ml": format!("mv-{m}")}},
                    "spec": {"containers": [{"name": "app", "image": "app",
                             "volumeMounts": [{"name": "data", "mountPath": "/data"}]}],
                             "volumes": [{"name": "data", "emptyDir": {}}]}
                }))
                .unwrap();
                Api::<Pod>::namespaced(client, &ns_of(m))
                    .create(&PostParams::default(), &pod)
                    .await
                    .map(|_| ())
            }
        })
        .buffer_unordered(CONCURRENCY)
        .try_collect::<Vec<()>>()
        .await
        .expect("create pods");
}

#[tokio::main]
async fn main() {
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    let args: Vec<usize> = std::env::args()
        .skip(1)
        .map(|a| a.parse().expect("numbers"))
        .collect();
    let mvs = *args.first().unwrap_or(&100);
    let pods = *args.get(1).unwrap_or(&2000);
    let client = Client::try_default().await.expect("KUBECONFIG");

    for i in 0..NAMESPACES {
        let ns: Namespace =
            serde_json::from_value(json!({"metadata": {"name": format!("scale-{i}")}})).unwrap();
        let _ = Api::<Namespace>::all(client.clone())
            .create(&PostParams::default(), &ns)
            .await;
    }
    for m in 0..mvs {
        let mv: ModelValidation = serde_json::from_value(json!({
            "apiVersion": "ml.sigstore.dev/v1alpha1", "kind": "ModelValidation",
            "metadata": {"name": format!("mv-{m}")},
            "spec": {"model": {"path": "/data/model", "signaturePath": "/data/model.sig"},
                     "config": {"publicKeyConfig": {"keyPath": "/data/pub.pem"}}}
        }))
        .unwrap();
        Api::<ModelValidation>::namespaced(client.clone(), &ns_of(m))
            .create(&PostParams::default(), &mv)
            .await
            .expect("create ModelValidation");
    }

    let t0 = Instant::now();
    create_pods(&client, (0..pods).collect(), mvs).await;
    let created = t0.elapsed().as_secs_f64();

    // Round 1: every pod's verifier ends; one in ten fails.
    let mut want: HashMap<(String, String), (i32, i32)> = HashMap::new();
    for i in 0..pods {
        let m = i % mvs;
        let e = want.entry((ns_of(m), format!("mv-{m}"))).or_default();
        if fails(i, mvs) { e.1 += 1 } else { e.0 += 1 }
    }
    let patch_all = |ids: Vec<(usize, i32, i32)>| {
        let client = client.clone();
        async move {
            futures::stream::iter(ids)
                .map(|(i, code, attempt)| {
                    let client = client.clone();
                    async move {
                        Api::<Pod>::namespaced(client, &ns_of(i % mvs))
                            .patch_status(
                                &format!("p-{i}"),
                                &PatchParams::default(),
                                &Patch::Merge(verifier_status(code, attempt)),
                            )
                            .await
                            .map(|_| ())
                    }
                })
                .buffer_unordered(CONCURRENCY)
                .try_collect::<Vec<()>>()
                .await
                .expect("patch pod status");
        }
    };
    let t1 = Instant::now();
    patch_all(
        (0..pods)
            .map(|i| (i, if fails(i, mvs) { 1 } else { 0 }, 0))
            .collect(),
    )
    .await;
    let written = t1.elapsed().as_secs_f64();
    let per = (pods / mvs) as i32;
    let bulk = converge(&client, &want, per).await;

    // Round 2: one more pod per ModelValidation, whose verifier fails.
    let extra: Vec<usize> = (pods..pods + mvs).collect();
    create_pods(&client, extra.clone(), mvs).await;
    for i in &extra {
        let m = i % mvs;
        want.get_mut(&(ns_of(m), format!("mv-{m}"))).unwrap().1 += 1;
    }
    patch_all(extra.iter().map(|i| (*i, 1, 0)).collect()).await;
    let change = converge(&client, &want, per + 1).await;

    println!(
        "{}",
        json!({"modelvalidations": mvs, "pods": pods, "create_pods_s": created,
               "write_statuses_s": written, "converge_after_bulk_s": bulk,
               "converge_after_change_s": change})
    );
}
