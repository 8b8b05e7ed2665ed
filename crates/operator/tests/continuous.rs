//! Continuous validation on the real control plane: the injected native sidecar, run by the pod
//! runner, turns not-ready when a model file changes and ready again when it is restored.
//! (The CRD allows intervals of at least 1m, so each flip takes up to a minute.)

mod support;

use std::time::Duration;

use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, PostParams};
use model_validation_operator::names::{LABEL, VERIFY_CONTAINER, WATCH_CONTAINER};
use serde_json::json;
use support::{
    HttpResponse, Operator, OperatorOptions, agent_binary, create_mv, ec_key_signer, fixture,
    free_port, http_get, sign, wait_for,
};
use test_cluster::pod_runner::{PodRunner, RunnerConfig};

/// Waits until `path` on `port` answers `status`; returns the body.
async fn wait_for_status(port: u16, path: &str, status: u16, within: Duration) -> String {
    let what = format!("{path} on port {port} to answer {status}");
    wait_for(&what, within, || async move {
        http_get(port, path)
            .filter(|r| r.status == status)
            .map(|r: HttpResponse| r.body)
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sidecar_readiness_follows_the_model() {
    test_cluster::install_crypto_provider();
    agent_binary();
    let cp = test_cluster::shared().await.unwrap();
    let client = cp.client().unwrap();
    let watch = free_port();
    let mut opts = OperatorOptions::new("mvo-continuous");
    opts.watch_port = Some(watch);
    let _op = Operator::start(cp.kubeconfig_path(), opts).await;

    let tmp = tempfile::tempdir().unwrap();
    let model = tmp.path().join("data/model");
    std::fs::create_dir_all(&model).unwrap();
    std::fs::write(model.join("weights.bin"), vec![1u8; 50_000]).unwrap();
    std::fs::write(model.join("config.json"), "{}").unwrap();
    std::fs::copy(
        fixture("peer-samples/ec-p256.pub.pem"),
        tmp.path().join("data/pub.pem"),
    )
    .unwrap();
    sign(&model, &ec_key_signer(), &model.join("model.sig"));

    let ns = cp.create_namespace("continuous").await.unwrap();
    create_mv(&client, &ns, json!({
        "apiVersion": "ml.sigstore.dev/v1alpha1", "kind": "ModelValidation", "metadata": {"name": "cv"},
        "spec": {"model": {"path": "/data/model", "signaturePath": "/data/model/model.sig"},
                 "config": {"publicKeyConfig": {"keyPath": "/data/pub.pem"}},
                 "continuousValidation": {"enabled": true, "interval": "1m"}}
    }))
    .await
    .unwrap();
    let pod: Pod = serde_json::from_value(json!({
        "metadata": {"name": "served", "labels": {LABEL: "cv"}},
        "spec": {"containers": [{"name": "app", "image": "app", "command": ["sleep", "600"], "volumeMounts": [{"name": "data", "mountPath": "/data"}]}],
                 "volumes": [{"name": "data", "hostPath": {"path": tmp.path().join("data").to_str().unwrap()}}]}
    }))
    .unwrap();
    let created = Api::<Pod>::namespaced(client.clone(), &ns)
        .create(&PostParams::default(), &pod)
        .await
        .unwrap();
    let inits = created.spec.unwrap().init_containers.unwrap();
    assert_eq!(inits[1].name, WATCH_CONTAINER);
    assert_eq!(inits[1].restart_policy.as_deref(), Some("Always"));

    let runner = PodRunner::new(client.clone(), RunnerConfig::default()).unwrap();
    let mut run = runner.run(&ns, "served").await.unwrap();
    let outcome = run
        .init_outcomes()
        .first()
        .map(|(n, t)| (n.clone(), t.exit_code));
    assert_eq!(
        outcome,
        Some((VERIFY_CONTAINER.to_string(), 0)),
        "the one-shot check passes first"
    );

    let ready = wait_for_status(watch, "/readyz", 200, Duration::from_secs(30)).await;
    assert!(ready.contains("verified"), "{ready}");
    std::fs::write(model.join("weights.bin"), vec![2u8; 50_000]).unwrap();
    let not_ready = wait_for_status(watch, "/readyz", 503, Duration::from_secs(90)).await;
    assert!(not_ready.contains("weights.bin"), "{not_ready}");
    assert_eq!(
        http_get(watch, "/healthz").map(|r| r.status),
        Some(200),
        "alive while not ready"
    );
    std::fs::write(model.join("weights.bin"), vec![1u8; 50_000]).unwrap();
    wait_for_status(watch, "/readyz", 200, Duration::from_secs(90)).await;
    run.stop_all();
}
