//! A second, real mutating webhook on the test control plane's API server, next to the
//! operator's: served over TLS from the test process, its answer a JSON patch that a closure
//! computes from the pod. tests/reinvocation.rs registers one that appends an init container
//! after ours; tests/kserve.rs one that does what KServe's pod mutator does to a predictor pod.

use std::sync::Arc;

use axum::Json;
use axum::routing::post;
use k8s_openapi::api::admissionregistration::v1::MutatingWebhookConfiguration;
use kube::api::{Api, Patch, PatchParams};
use model_validation_operator::tls::{self, Ca, Resolver};
use model_validation_operator::webhook::server::serve_tls;
use serde_json::{Value, json};

/// How the second webhook is registered.
#[derive(Debug, Clone)]
pub struct SecondWebhook {
    /// The MutatingWebhookConfiguration's name. The API server calls configurations in the
    /// order of their names, so this puts the webhook before or after the operator's
    /// (`mvo-shared` for [`super::shared_operator`]).
    pub config_name: String,
    /// `reinvocationPolicy`: `Never` or `IfNeeded`.
    pub reinvocation: &'static str,
    /// `objectSelector`: which pods it sees.
    pub object_selector: Value,
    /// `namespaceSelector`, when it must see only some namespaces (a configuration outlives the
    /// test that registered it, until the control plane stops).
    pub namespace_selector: Option<Value>,
}

impl SecondWebhook {
    /// Only the namespace `ns`, by its `kubernetes.io/metadata.name` label.
    pub fn only_namespace(ns: &str) -> Value {
        json!({"matchLabels": {"kubernetes.io/metadata.name": ns}})
    }

    /// Serves `mutate` over TLS on a loopback port and registers it for pod CREATE
    /// (`failurePolicy: Fail`). `mutate` gets the pod of the AdmissionReview's request and
    /// returns the JSON patch operations to apply (none: the pod is admitted unchanged).
    pub async fn register<F>(&self, client: &kube::Client, mutate: F)
    where
        F: Fn(&Value) -> Vec<Value> + Send + Sync + 'static,
    {
        let ca = Ca::generate().unwrap();
        let serving = ca
            .issue(
                &["localhost".into()],
                &["127.0.0.1".parse().unwrap()],
                tls::SERVING_LIFETIME,
            )
            .unwrap();
        let resolver =
            Resolver::new(tls::certified_key(&serving.cert_pem, &serving.key_pem).unwrap());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let mutate = Arc::new(mutate);
        let app = axum::Router::new().route(
            "/mutate",
            post(move |Json(review): Json<Value>| {
                let mutate = mutate.clone();
                async move { Json(answer(&review, mutate(&review["request"]["object"]))) }
            }),
        );
        tokio::spawn(serve_tls(
            listener,
            Arc::new(tls::server_config(resolver).unwrap()),
            app,
            std::future::pending::<()>(),
        ));
        let mut webhook = json!({
            "name": "second.webhook.example.com", "admissionReviewVersions": ["v1"],
            "sideEffects": "None", "failurePolicy": "Fail",
            "reinvocationPolicy": self.reinvocation, "timeoutSeconds": 10,
            "clientConfig": {"url": format!("https://127.0.0.1:{port}/mutate"),
                "caBundle": base64(&ca.cert_pem)},
            "objectSelector": self.object_selector,
            "rules": [{"apiGroups": [""], "apiVersions": ["v1"], "operations": ["CREATE"], "resources": ["pods"]}]
        });
        if let Some(selector) = &self.namespace_selector {
            webhook["namespaceSelector"] = selector.clone();
        }
        let config: MutatingWebhookConfiguration = serde_json::from_value(json!({
            "apiVersion": "admissionregistration.k8s.io/v1", "kind": "MutatingWebhookConfiguration",
            "metadata": {"name": self.config_name},
            "webhooks": [webhook]
        }))
        .unwrap();
        Api::<MutatingWebhookConfiguration>::all(client.clone())
            .patch(
                &self.config_name,
                &PatchParams::apply("second-webhook-test").force(),
                &Patch::Apply(&config),
            )
            .await
            .unwrap();
    }
}

/// The AdmissionReview answering `review`: allowed, with `patch` when it has operations.
fn answer(review: &Value, patch: Vec<Value>) -> Value {
    let mut response = json!({"uid": review["request"]["uid"], "allowed": true});
    if !patch.is_empty() {
        response["patchType"] = json!("JSONPatch");
        response["patch"] = json!(base64(&Value::Array(patch).to_string()));
    }
    json!({"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "response": response})
}

fn base64(s: &str) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(s)
}

/// The JSON patch operation appending `value` to the list at `path` (e.g.
/// `/spec/initContainers`) of `object`, creating the list when `object` has none there.
pub fn append_op(object: &Value, path: &str, value: Value) -> Value {
    if object.pointer(path).is_some_and(Value::is_array) {
        json!({"op": "add", "path": format!("{path}/-"), "value": value})
    } else {
        json!({"op": "add", "path": path, "value": [value]})
    }
}
