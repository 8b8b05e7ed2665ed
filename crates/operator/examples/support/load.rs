//! What the load examples (`admission_load`, `oci_admission`) share: the namespace and
//! ModelValidation their reviews name, the webhook's CA, and a multi-consumer channel for their
//! connection tasks. Included with
//! `#[path = "support/load.rs"] mod load;` (examples are separate crates).

use anyhow::{Context, Result};

/// Creates (server-side apply) namespace `ns` and the ModelValidation `mv` with `spec`.
pub async fn apply_model_validation(ns: &str, mv: &str, spec: serde_json::Value) -> Result<()> {
    use kube::api::{Api, DynamicObject, Patch, PatchParams};
    use kube::core::{ApiResource, GroupVersionKind};
    use serde_json::json;
    let client = kube::Client::try_default().await?;
    let pp = PatchParams::apply("bench").force();
    let namespaces: Api<k8s_openapi::api::core::v1::Namespace> = Api::all(client.clone());
    let namespace = json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}});
    namespaces.patch(ns, &pp, &Patch::Apply(namespace)).await?;
    let gvk = GroupVersionKind::gvk("ml.sigstore.dev", "v1alpha1", "ModelValidation");
    let mvs: Api<DynamicObject> = Api::namespaced_with(client, ns, &ApiResource::from_gvk(&gvk));
    let obj = json!({"apiVersion": "ml.sigstore.dev/v1alpha1", "kind": "ModelValidation",
        "metadata": {"name": mv}, "spec": spec});
    mvs.patch(mv, &pp, &Patch::Apply(obj)).await?;
    Ok(())
}

/// The webhook's CA certificate (PEM), from the operator's Secret.
pub async fn webhook_ca() -> Result<String> {
    let client = kube::Client::try_default().await?;
    let secrets: kube::Api<k8s_openapi::api::core::v1::Secret> =
        kube::Api::namespaced(client, "model-validation-operator-system");
    let s = secrets.get("model-validation-operator-webhook-ca").await?;
    let ca = s
        .data
        .and_then(|d| d.get("ca.crt").cloned())
        .context("no ca.crt in the webhook CA Secret")?;
    Ok(String::from_utf8(ca.0)?)
}

/// A multi-consumer channel from tokio's primitives (tokio has no MPMC channel).
pub mod async_channel_shim {
    use std::sync::Arc;
    use tokio::sync::{Mutex, mpsc};

    pub struct Receiver<T>(Arc<Mutex<mpsc::Receiver<T>>>);

    impl<T> Clone for Receiver<T> {
        fn clone(&self) -> Self {
            Receiver(self.0.clone())
        }
    }

    impl<T> Receiver<T> {
        pub async fn recv(&self) -> Result<T, ()> {
            self.0.lock().await.recv().await.ok_or(())
        }
    }

    pub fn channel<T>(n: usize) -> (mpsc::Sender<T>, Receiver<T>) {
        let (tx, rx) = mpsc::channel(n);
        (tx, Receiver(Arc::new(Mutex::new(rx))))
    }
}
