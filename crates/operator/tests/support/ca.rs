//! The webhook CA's manual rotation trigger.

use k8s_openapi::api::core::v1::Secret;
use kube::api::{Api, Patch, PatchParams};
use serde_json::json;

/// Removes `ca.key` from the CA Secret `name`: the documented manual trigger of a CA rotation
/// (the old `ca.crt` becomes `previous-ca.crt` and stays trusted during the overlap).
pub async fn remove_ca_key(secrets: &Api<Secret>, name: &str) {
    secrets
        .patch(
            name,
            &PatchParams::default(),
            &Patch::<()>::Json(
                serde_json::from_value(json!([{"op": "remove", "path": "/data/ca.key"}])).unwrap(),
            ),
        )
        .await
        .unwrap();
}
