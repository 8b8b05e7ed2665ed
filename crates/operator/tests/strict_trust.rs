//! An operator started with `--require-policy-trust`: a pod that brings its own key (a
//! ConfigMap mounted where the ModelValidation's `keyPath` points) is refused at admission,
//! and the same pod under a ModelValidation that carries the key verifies.

mod support;

use k8s_openapi::api::core::v1::{ConfigMap, Pod};
use kube::api::{Api, PostParams};
use model_validation_operator::names::LABEL;
use serde_json::json;
use support::{
    Operator, OperatorOptions, api_message, create_mv, fixture, key_in_policy_mv, run_verifier,
    signed_model_and_key,
};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn own_config_map_trust_anchor_is_refused_under_require_policy_trust() {
    test_cluster::install_crypto_provider();
    let cp = test_cluster::shared().await.unwrap();
    let mut opts = OperatorOptions::new("mvo-strict");
    opts.require_policy_trust = true;
    let _operator = Operator::start(cp.kubeconfig_path(), opts).await;
    let client = cp.client().unwrap();
    let ns = cp.create_namespace("strict").await.unwrap();
    let tmp = tempfile::tempdir().unwrap();
    signed_model_and_key(&tmp.path().join("data/model"), &tmp.path().join("keys"));
    let pem = std::fs::read_to_string(fixture("peer-samples/ec-p256.pub.pem")).unwrap();
    let model = json!({"path": "/data/model", "signaturePath": "/data/model/model.sig"});
    create_mv(&client, &ns, json!({"apiVersion": "ml.sigstore.dev/v1alpha1", "kind": "ModelValidation",
        "metadata": {"name": "by-path"}, "spec": {"model": model, "config": {"publicKeyConfig": {"keyPath": "/keys/pub.pem"}}}}))
        .await
        .unwrap();
    create_mv(&client, &ns, key_in_policy_mv("in-policy", &pem))
        .await
        .unwrap();
    let cm: ConfigMap = serde_json::from_value(
        json!({"metadata": {"name": "my-key"}, "data": {"pub.pem": "attacker key"}}),
    )
    .unwrap();
    Api::<ConfigMap>::namespaced(client.clone(), &ns)
        .create(&PostParams::default(), &cm)
        .await
        .unwrap();
    let data = tmp.path().join("data");
    let pod = |name: &str, mv: &str| -> Pod {
        serde_json::from_value(json!({
            "apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": name, "labels": {LABEL: mv}},
            "spec": {"restartPolicy": "Never",
                "containers": [{"name": "app", "image": "app", "command": ["true"], "volumeMounts": [
                    {"name": "data", "mountPath": "/data"}, {"name": "key", "mountPath": "/keys"}]}],
                "volumes": [{"name": "data", "hostPath": {"path": data.to_str().unwrap()}},
                    {"name": "key", "configMap": {"name": "my-key"}}]}
        }))
        .unwrap()
    };
    let pods = Api::<Pod>::namespaced(client.clone(), &ns);
    let msg = api_message(
        pods.create(&PostParams::default(), &pod("own-key", "by-path"))
            .await
            .unwrap_err(),
    );
    assert!(
        msg.contains("reads its trust anchor spec.config.publicKeyConfig.keyPath from the pod's own volume at /keys/pub.pem")
            && msg.contains("--require-policy-trust"),
        "{msg}"
    );
    // Twin: the same pod under the policy that carries the key is admitted and verifies.
    pods.create(&PostParams::default(), &pod("policy-key", "in-policy"))
        .await
        .unwrap();
    let (code, message) = run_verifier(&client, &ns, "policy-key").await;
    assert_eq!(code, 0, "{message}");
}
