//! A second, real mutating webhook registered on the API server appends an init container
//! after ours (as KServe's storage-initializer webhook does). Our webhook is re-invoked
//! (`reinvocationPolicy: IfNeeded`) and moves the verifier last again, so what the appended
//! container writes is verified too.

mod support;

use std::sync::Arc;

use axum::Json;
use axum::routing::post;
use k8s_openapi::api::admissionregistration::v1::MutatingWebhookConfiguration;
use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, Patch, PatchParams, PostParams};
use model_validation_operator::names::LABEL;
use model_validation_operator::tls::{self, Ca, Resolver};
use model_validation_operator::webhook::server::serve_tls;
use serde_json::{Value, json};
use support::{create_mv, key_in_policy_mv, run_verifier, shared_operator, signed_model_and_key};

/// The appending webhook's answer: a JSON patch adding `storage-initializer` (which appends a
/// byte to the model's config.json) at the end of the init containers, once.
async fn append(Json(review): Json<Value>) -> Json<Value> {
    use base64::Engine as _;
    let req = &review["request"];
    let inits = req["object"]["spec"]["initContainers"].as_array();
    let present = inits.is_some_and(|l| l.iter().any(|c| c["name"] == "storage-initializer"));
    let container = json!({"name": "storage-initializer", "image": "initializer",
        "command": ["sh", "-c", "printf ' ' >> /data/model/config.json"],
        "volumeMounts": [{"name": "data", "mountPath": "/data"}]});
    let mut response = json!({"uid": req["uid"], "allowed": true});
    if !present {
        let patch = match inits {
            Some(_) => json!([{"op": "add", "path": "/spec/initContainers/-", "value": container}]),
            None => json!([{"op": "add", "path": "/spec/initContainers", "value": [container]}]),
        };
        response["patchType"] = json!("JSONPatch");
        response["patch"] =
            json!(base64::engine::general_purpose::STANDARD.encode(patch.to_string()));
    }
    Json(
        json!({"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "response": response}),
    )
}

/// Serves [`append`] over TLS and registers it as `zz-appender` (called after ours, by name),
/// for pods labelled `append: "yes"`.
async fn register_appender(client: &kube::Client) {
    let ca = Ca::generate().unwrap();
    let serving = ca
        .issue(
            &["localhost".into()],
            &["127.0.0.1".parse().unwrap()],
            tls::SERVING_LIFETIME,
        )
        .unwrap();
    let resolver = Resolver::new(tls::certified_key(&serving.cert_pem, &serving.key_pem).unwrap());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let app = axum::Router::new().route("/append", post(append));
    tokio::spawn(serve_tls(
        listener,
        Arc::new(tls::server_config(resolver).unwrap()),
        app,
        std::future::pending::<()>(),
    ));
    let config: MutatingWebhookConfiguration = serde_json::from_value(json!({
        "apiVersion": "admissionregistration.k8s.io/v1", "kind": "MutatingWebhookConfiguration",
        "metadata": {"name": "zz-appender"},
        "webhooks": [{
            "name": "append.example.com", "admissionReviewVersions": ["v1"], "sideEffects": "None",
            "failurePolicy": "Fail", "reinvocationPolicy": "Never", "timeoutSeconds": 10,
            "clientConfig": {"url": format!("https://127.0.0.1:{port}/append"),
                "caBundle": base64_of(&ca.cert_pem)},
            "objectSelector": {"matchLabels": {"append": "yes"}},
            "rules": [{"apiGroups": [""], "apiVersions": ["v1"], "operations": ["CREATE"], "resources": ["pods"]}]
        }]
    }))
    .unwrap();
    Api::<MutatingWebhookConfiguration>::all(client.clone())
        .patch(
            "zz-appender",
            &PatchParams::apply("reinvocation-test").force(),
            &Patch::Apply(&config),
        )
        .await
        .unwrap();
}

fn base64_of(s: &str) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(s)
}

fn pod(name: &str, labels: Value, data: &str) -> Pod {
    serde_json::from_value(json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": name, "labels": labels},
        "spec": {
            "restartPolicy": "Never",
            "containers": [{"name": "app", "image": "app", "command": ["true"],
                "volumeMounts": [{"name": "data", "mountPath": "/data"}]}],
            "volumes": [{"name": "data", "hostPath": {"path": data}}]
        }
    }))
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_init_container_appended_by_a_later_webhook_runs_before_the_verifier() {
    test_cluster::install_crypto_provider();
    shared_operator().await;
    let cp = test_cluster::shared().await.unwrap();
    let client = cp.client().unwrap();
    let ns = cp.create_namespace("reinvoke").await.unwrap();
    register_appender(&client).await;
    let tmp = tempfile::tempdir().unwrap();
    let keys = tmp.path().join("keys");
    signed_model_and_key(&tmp.path().join("data/model"), &keys);
    let pem = std::fs::read_to_string(keys.join("pub.pem")).unwrap();
    create_mv(&client, &ns, key_in_policy_mv("mv", &pem))
        .await
        .unwrap();
    let data = tmp.path().join("data");
    let data = data.to_str().unwrap();
    let pods = Api::<Pod>::namespaced(client.clone(), &ns);

    // Passing twin first (the appender would change the model): without it, the model verifies.
    pods.create(
        &PostParams::default(),
        &pod("plain", json!({LABEL: "mv"}), data),
    )
    .await
    .unwrap();
    let (code, message) = run_verifier(&client, &ns, "plain").await;
    assert_eq!(code, 0, "{message}");

    let created = pods
        .create(
            &PostParams::default(),
            &pod("appended", json!({LABEL: "mv", "append": "yes"}), data),
        )
        .await
        .unwrap();
    let names: Vec<String> = created
        .spec
        .unwrap()
        .init_containers
        .unwrap()
        .into_iter()
        .map(|c| c.name)
        .collect();
    assert_eq!(
        names,
        ["storage-initializer", "model-validation"],
        "the verifier runs after the appended container"
    );
    // The appended container changes config.json before the verifier runs: it is caught.
    let (code, message) = run_verifier(&client, &ns, "appended").await;
    assert_eq!(code, 1, "{message}");
    assert!(message.contains("config.json"), "{message}");
}
