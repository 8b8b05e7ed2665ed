//! A second, real mutating webhook registered on the API server appends an init container
//! after ours (as KServe's storage-initializer webhook does). Our webhook is re-invoked
//! (`reinvocationPolicy: IfNeeded`) and moves the verifier last again, so what the appended
//! container writes is verified too.

mod support;

use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, PostParams};
use model_validation_operator::names::LABEL;
use serde_json::{Value, json};
use support::{
    SecondWebhook, append_op, create_mv, key_in_policy_mv, run_verifier, shared_operator,
    signed_model_and_key,
};

/// The appending webhook's patch: `storage-initializer` (which appends a byte to the model's
/// config.json) added at the end of the init containers, once.
fn append(pod: &Value) -> Vec<Value> {
    let inits = pod["spec"]["initContainers"].as_array();
    if inits.is_some_and(|l| l.iter().any(|c| c["name"] == "storage-initializer")) {
        return vec![];
    }
    let container = json!({"name": "storage-initializer", "image": "initializer",
        "command": ["sh", "-c", "printf ' ' >> /data/model/config.json"],
        "volumeMounts": [{"name": "data", "mountPath": "/data"}]});
    vec![append_op(pod, "/spec/initContainers", container)]
}

/// [`append`] registered as `zz-appender` (called after ours, by name), for pods labelled
/// `append: "yes"`.
async fn register_appender(client: &kube::Client) {
    SecondWebhook {
        config_name: "zz-appender".into(),
        reinvocation: "Never",
        object_selector: json!({"matchLabels": {"append": "yes"}}),
        namespace_selector: None,
    }
    .register(client, append)
    .await;
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
