//! Fixtures shared by the unit tests of several modules.

use crate::crd::{ModelSpec, ModelValidationSpec, PublicKeyConfig, ValidationConfig};

/// A valid public-key spec: model `/data/model`, signature `/data/model.sig`, key
/// `/keys/pub.pem`.
pub fn key_spec() -> ModelValidationSpec {
    ModelValidationSpec {
        model: Some(ModelSpec {
            path: "/data/model".into(),
            signature_path: "/data/model.sig".into(),
            ..Default::default()
        }),
        config: ValidationConfig {
            public_key_config: Some(PublicKeyConfig {
                key_path: Some("/keys/pub.pem".into()),
                ..Default::default()
            }),
            ..Default::default()
        },
        ..Default::default()
    }
}

/// The webhook's settings in unit tests: agent image `agent:test`, operator namespace
/// `mvo-system`, every namespace governable.
pub fn admit_config() -> crate::webhook::AdmitConfig {
    crate::webhook::AdmitConfig {
        inject: crate::webhook::inject::InjectConfig {
            agent_image: "agent:test".into(),
            default_pull_policy: "IfNotPresent".into(),
            ..Default::default()
        },
        operator_namespace: "mvo-system".into(),
        require_policy_trust: false,
        governable_namespaces: Default::default(),
    }
}

/// An operator namespace (`mvo-system`) without Secrets or ConfigMaps.
pub struct NoTrustObjects;

impl crate::authorities::TrustObjects for NoTrustObjects {
    fn namespace(&self) -> &str {
        "mvo-system"
    }
    fn secret(&self, _: &str, _: &str) -> Result<String, crate::authorities::Missing> {
        Err(crate::authorities::Missing::Object)
    }
    fn config_map(&self, _: &str, _: &str) -> Result<String, crate::authorities::Missing> {
        Err(crate::authorities::Missing::Object)
    }
}

/// A placeholder P-256 public key PEM (it is never parsed by the operator).
pub const KEY_PEM: &str = "-----BEGIN PUBLIC KEY-----\nMFk=\n-----END PUBLIC KEY-----\n";

/// The cluster policy `name` with one key authority `release`, `spec` fields overriding
/// (namespaceSelector `{}` and the model at `/data/model` by default).
pub fn cluster_policy(name: &str, spec: serde_json::Value) -> crate::cluster_policy::ClusterPolicy {
    let mut full = serde_json::json!({
        "namespaceSelector": {},
        "model": {"path": "/data/model", "signaturePath": "/data/model.sig"},
        "authorities": [{"name": "release", "key": {"pem": KEY_PEM}}],
    });
    for (k, v) in spec.as_object().into_iter().flatten() {
        full[k] = v.clone();
    }
    let spec: crate::crd::cluster::ClusterModelValidationSpec =
        serde_json::from_value(full).expect("a valid cluster policy spec");
    crate::cluster_policy::ClusterPolicy::new(name, &spec, &NoTrustObjects)
        .expect("valid selectors")
}
