//! An operator of its own on its own control plane: it counts each admission once in its
//! metrics, and once it is stopped, labelled pods cannot be created at all (fail closed) while
//! other pods are not affected.
//!
//! Not in `e2e.rs`: exact counts need an operator no other test talks to, and a stopped
//! operator's webhook refuses every labelled pod of the control plane.

mod support;

use std::path::Path;

use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, PostParams};
use model_validation_operator::names::LABEL;
use serde_json::{Value, json};
use support::{Operator, OperatorOptions, api_message, create_mv, metric, pod};

/// A ModelValidation `name` with `config` (the method); no file is read at admission.
fn mv(name: &str, config: Value) -> Value {
    json!({
        "apiVersion": "ml.sigstore.dev/v1alpha1", "kind": "ModelValidation", "metadata": {"name": name},
        "spec": {"model": {"path": "/data/model", "signaturePath": "/data/model/model.sig"}, "config": config}
    })
}

async fn create(
    pods: &Api<Pod>,
    name: &str,
    labels: Value,
    dir: &Path,
) -> Result<Pod, kube::Error> {
    pods.create(&PostParams::default(), &pod(name, labels, dir, dir))
        .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stopped_operator_fails_closed_after_counting_each_admission_once() {
    test_cluster::install_crypto_provider();
    let cp = test_cluster::shared().await.unwrap();
    let client = cp.client().unwrap();
    let mut opts = OperatorOptions::new("mvo-fail-closed");
    opts.namespace = Some("mvo-system".into());
    let operator = Operator::start(cp.kubeconfig_path(), opts).await;
    let ns = cp.create_namespace("fail-closed").await.unwrap();
    let pods: Api<Pod> = Api::namespaced(client.clone(), &ns);
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();

    // Six injected pods of the three methods, and one refused.
    let methods = [
        (
            "key-mv",
            json!({"publicKeyConfig": {"keyPath": "/keys/pub.pem"}}),
            3,
        ),
        (
            "upstream-pki",
            json!({"pkiConfig": {"certificateAuthority": "/keys/ca.pem"}}),
            1,
        ),
        (
            "keyless",
            json!({"sigstoreConfig": {"certificateIdentity": "stefanb@us.ibm.com", "certificateOidcIssuer": "https://sigstore.verify.ibm.com/oauth2"}}),
            2,
        ),
    ];
    for (name, config, count) in &methods {
        create_mv(&client, &ns, mv(name, config.clone()))
            .await
            .unwrap();
        for i in 0..*count {
            let created = create(&pods, &format!("{name}-{i}"), json!({LABEL: name}), dir)
                .await
                .unwrap();
            assert_eq!(
                created.spec.unwrap().init_containers.map(|c| c.len()),
                Some(1),
                "{name}-{i} is injected"
            );
        }
    }
    let err = create(&pods, "orphan", json!({LABEL: "nope"}), dir)
        .await
        .unwrap_err();
    assert!(api_message(err).contains("\"nope\" not found"));

    // --- the operator's metrics count what happened ---
    let text = operator.metrics();
    assert_eq!(
        metric(
            &text,
            "model_validation_admission_requests_total{result=\"injected\"}"
        ),
        Some(6.0),
        "{text}"
    );
    assert!(
        metric(
            &text,
            "model_validation_admission_requests_total{result=\"denied\"}"
        ) >= Some(1.0),
        "{text}"
    );
    assert!(
        metric(
            &text,
            "model_validation_injections_total{method=\"public-key\"}"
        ) >= Some(3.0),
        "{text}"
    );
    assert!(
        metric(&text, "model_validation_injections_total{method=\"pki\"}") >= Some(1.0),
        "{text}"
    );
    assert!(
        metric(
            &text,
            "model_validation_injections_total{method=\"sigstore\"}"
        ) >= Some(2.0),
        "{text}"
    );
    let expiry = metric(
        &text,
        "model_validation_serving_certificate_expiry_timestamp_seconds",
    )
    .expect("the serving certificate's expiry is exposed");
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs_f64();
    assert!(
        expiry > now + 80.0 * 86400.0,
        "serving certificate expiry {expiry}"
    );

    // --- with the operator stopped, a labelled pod cannot be created (fail closed) ---
    operator.kill();
    let err = create(&pods, "unguarded", json!({LABEL: "upstream-pki"}), dir)
        .await
        .unwrap_err();
    let msg = api_message(err);
    assert!(msg.contains("failed calling webhook"), "{msg}");
    // Unlabelled pods are not affected.
    create(&pods, "plain", json!({"app": "x"}), dir)
        .await
        .unwrap();
}
