//! Fixtures shared by the unit tests of several modules.

use crate::crd::{ModelSpec, ModelValidationSpec, PublicKeyConfig, ValidationConfig};

/// A valid public-key spec: model `/data/model`, signature `/data/model.sig`, key
/// `/keys/pub.pem`.
pub fn key_spec() -> ModelValidationSpec {
    ModelValidationSpec {
        model: ModelSpec {
            path: "/data/model".into(),
            signature_path: "/data/model.sig".into(),
            ..Default::default()
        },
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
