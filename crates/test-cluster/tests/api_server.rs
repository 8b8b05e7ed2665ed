//! The API server behaves like a real one: CRD CEL validation, and mutating
//! webhooks called over TLS with a caBundle. All tests share one control
//! plane and keep to their own namespaces.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use k8s_openapi::api::admissionregistration::v1::MutatingWebhookConfiguration;
use k8s_openapi::api::core::v1::ConfigMap;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{Api, ApiResource, DeleteParams, DynamicObject, GroupVersionKind, PostParams};
use kube::core::admission::{AdmissionRequest, AdmissionResponse, AdmissionReview};
use serde_json::json;

const CEL_MESSAGE: &str = "minReplicas must not exceed maxReplicas";

#[tokio::test]
async fn crd_cel_rule_accepts_valid_and_rejects_invalid_objects() {
    let cp = test_cluster::shared().await.unwrap();
    let client = cp.client().unwrap();
    let ns = cp.create_namespace("cel").await.unwrap();

    let crd: CustomResourceDefinition = serde_json::from_value(json!({
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": { "name": "scalers.test.mvo.dev" },
        "spec": {
            "group": "test.mvo.dev",
            "names": { "kind": "Scaler", "plural": "scalers", "singular": "scaler" },
            "scope": "Namespaced",
            "versions": [{
                "name": "v1", "served": true, "storage": true,
                "schema": { "openAPIV3Schema": {
                    "type": "object",
                    "properties": { "spec": {
                        "type": "object",
                        "required": ["minReplicas", "maxReplicas"],
                        "properties": {
                            "minReplicas": { "type": "integer" },
                            "maxReplicas": { "type": "integer" }
                        },
                        "x-kubernetes-validations": [{
                            "rule": "self.minReplicas <= self.maxReplicas",
                            "message": CEL_MESSAGE
                        }]
                    }}
                }}
            }]
        }
    }))
    .unwrap();
    let crds = Api::<CustomResourceDefinition>::all(client.clone());
    crds.create(&PostParams::default(), &crd).await.unwrap();
    wait_established(&crds, "scalers.test.mvo.dev").await;

    let gvk = GroupVersionKind::gvk("test.mvo.dev", "v1", "Scaler");
    let ar = ApiResource::from_gvk_with_plural(&gvk, "scalers");
    let api = Api::<DynamicObject>::namespaced_with(client, &ns, &ar);
    let obj = |name: &str, min: i64, max: i64| -> DynamicObject {
        serde_json::from_value(json!({
            "apiVersion": "test.mvo.dev/v1", "kind": "Scaler",
            "metadata": { "name": name },
            "spec": { "minReplicas": min, "maxReplicas": max }
        }))
        .unwrap()
    };

    // Discovery of a new CRD can lag its Established condition by a moment.
    let mut created = None;
    for _ in 0..50 {
        match api
            .create(&PostParams::default(), &obj("valid", 1, 3))
            .await
        {
            Ok(o) => {
                created = Some(o);
                break;
            }
            Err(kube::Error::Api(e)) if e.code == 404 => {
                tokio::time::sleep(Duration::from_millis(100)).await
            }
            Err(e) => panic!("creating a valid Scaler failed: {e}"),
        }
    }
    let created = created.expect("the Scaler resource never became available");
    assert_eq!(created.data["spec"]["maxReplicas"], 3);

    let err = api
        .create(&PostParams::default(), &obj("invalid", 5, 2))
        .await
        .expect_err("the CEL rule must reject minReplicas > maxReplicas");
    match err {
        kube::Error::Api(e) => {
            assert_eq!(e.code, 422, "{e:?}");
            assert!(e.message.contains(CEL_MESSAGE), "{}", e.message);
        }
        other => panic!("expected a 422 from the API server, got {other}"),
    }
}

async fn wait_established(crds: &Api<CustomResourceDefinition>, name: &str) {
    for _ in 0..100 {
        let crd = crds.get(name).await.unwrap();
        let established = crd
            .status
            .and_then(|s| s.conditions)
            .unwrap_or_default()
            .iter()
            .any(|c| c.type_ == "Established" && c.status == "True");
        if established {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("CRD {name} never became Established");
}

#[tokio::test]
async fn mutating_webhook_with_ca_bundle_is_called_and_its_patch_applied() {
    let cp = test_cluster::shared().await.unwrap();
    let client = cp.client().unwrap();
    let ns = cp.create_namespace("webhook").await.unwrap();

    let server = webhook::serve().await;
    let name = format!("mvo-test-{ns}");
    let config: MutatingWebhookConfiguration = serde_json::from_value(json!({
        "metadata": { "name": name },
        "webhooks": [{
            "name": "configmaps.test.mvo.dev",
            "clientConfig": {
                "url": format!("https://127.0.0.1:{}/mutate", server.port),
                "caBundle": base64_encode(&server.ca_pem),
            },
            "rules": [{
                "operations": ["CREATE"], "apiGroups": [""], "apiVersions": ["v1"],
                "resources": ["configmaps"]
            }],
            // Only this test's namespace: the control plane is shared.
            "namespaceSelector": { "matchLabels": { "kubernetes.io/metadata.name": ns } },
            "sideEffects": "None",
            "admissionReviewVersions": ["v1"],
            "failurePolicy": "Fail",
            "timeoutSeconds": 10
        }]
    }))
    .unwrap();
    let configs = Api::<MutatingWebhookConfiguration>::all(client.clone());
    configs
        .create(&PostParams::default(), &config)
        .await
        .unwrap();

    // The API server picks up new webhook configurations asynchronously;
    // create ConfigMaps until one comes back mutated.
    let cms = Api::<ConfigMap>::namespaced(client, &ns);
    let mut mutated = None;
    for _ in 0..100 {
        let cm: ConfigMap = serde_json::from_value(json!({
            "metadata": { "generateName": "cm-", "labels": { "app": "demo" } },
            "data": { "k": "v" }
        }))
        .unwrap();
        let cm = cms.create(&PostParams::default(), &cm).await.unwrap();
        let labels = cm.metadata.labels.clone().unwrap_or_default();
        if labels.get("mutated-by").map(String::as_str) == Some("test-webhook") {
            mutated = Some(cm);
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let cm = mutated.expect("the webhook's patch was never applied");
    assert_eq!(cm.metadata.labels.unwrap()["app"], "demo");
    assert!(server.calls.load(Ordering::SeqCst) >= 1);

    // Stored, not just echoed: read it back.
    let stored = cms.get(cm.metadata.name.as_deref().unwrap()).await.unwrap();
    assert_eq!(
        stored.metadata.labels.unwrap()["mutated-by"],
        "test-webhook"
    );

    configs
        .delete(&name, &DeleteParams::default())
        .await
        .unwrap();
}

fn base64_encode(data: &str) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(data)
}

/// A tiny HTTPS admission webhook (axum on tokio-rustls, rcgen certs).
mod webhook {
    use super::*;
    use axum::{Json, Router, extract::State, routing::post};
    use hyper_util::rt::{TokioExecutor, TokioIo};
    use hyper_util::service::TowerToHyperService;
    use rcgen::{
        BasicConstraints, CertificateParams, CertifiedIssuer, IsCa, KeyPair, PKCS_ECDSA_P256_SHA256,
    };
    use rustls::pki_types::{CertificateDer, PrivateKeyDer, pem::PemObject};

    pub struct Server {
        pub port: u16,
        pub ca_pem: String,
        pub calls: Arc<AtomicUsize>,
    }

    pub async fn serve() -> Server {
        test_cluster::install_crypto_provider();
        let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        let ca = CertifiedIssuer::self_signed(
            ca_params,
            KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256).unwrap(),
        )
        .unwrap();
        let leaf_key = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256).unwrap();
        let leaf = CertificateParams::new(vec!["127.0.0.1".to_string()])
            .unwrap()
            .signed_by(&leaf_key, &ca)
            .unwrap();

        let mut tls = rustls::ServerConfig::builder()
            .with_no_client_auth()
            .with_single_cert(
                vec![CertificateDer::from(leaf.der().to_vec())],
                PrivateKeyDer::from_pem_slice(leaf_key.serialize_pem().as_bytes()).unwrap(),
            )
            .unwrap();
        tls.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
        let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(tls));

        let calls = Arc::new(AtomicUsize::new(0));
        let app = Router::new()
            .route("/mutate", post(mutate))
            .with_state(calls.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        tokio::spawn(async move {
            loop {
                let Ok((tcp, _)) = listener.accept().await else {
                    return;
                };
                let (acceptor, app) = (acceptor.clone(), app.clone());
                tokio::spawn(async move {
                    let Ok(stream) = acceptor.accept(tcp).await else {
                        return;
                    };
                    let _ = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new())
                        .serve_connection(TokioIo::new(stream), TowerToHyperService::new(app))
                        .await;
                });
            }
        });
        Server {
            port,
            ca_pem: ca.pem(),
            calls,
        }
    }

    async fn mutate(
        State(calls): State<Arc<AtomicUsize>>,
        Json(review): Json<AdmissionReview<DynamicObject>>,
    ) -> Json<AdmissionReview<DynamicObject>> {
        calls.fetch_add(1, Ordering::SeqCst);
        let req: AdmissionRequest<DynamicObject> = match review.try_into() {
            Ok(req) => req,
            Err(e) => return Json(AdmissionResponse::invalid(e.to_string()).into_review()),
        };
        let patch: json_patch::Patch = serde_json::from_value(json!([
            { "op": "add", "path": "/metadata/labels/mutated-by", "value": "test-webhook" }
        ]))
        .unwrap();
        let resp = AdmissionResponse::from(&req).with_patch(patch).unwrap();
        Json(resp.into_review())
    }
}
