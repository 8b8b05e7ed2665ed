use std::collections::BTreeMap;

use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use model_signing::authorities::Required;
use model_signing::authorities::document::AuthoritiesDocument;

use super::*;
use crate::crd::cluster::KeylessAuthority;

const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../../shared/fixtures");

fn fixture(path: &str) -> String {
    std::fs::read_to_string(format!("{FIXTURES}/{path}")).unwrap()
}

/// Secrets and ConfigMaps of namespace `ops`, as `(kind, name) -> data`.
#[derive(Default)]
struct Objects(BTreeMap<(&'static str, String), BTreeMap<String, String>>);

impl Objects {
    fn with(mut self, kind: &'static str, name: &str, key: &str, value: &str) -> Self {
        self.0
            .entry((kind, name.to_string()))
            .or_default()
            .insert(key.into(), value.into());
        self
    }
    fn get(&self, kind: &'static str, name: &str, key: &str) -> Result<String, Missing> {
        let data = self
            .0
            .get(&(kind, name.to_string()))
            .ok_or(Missing::Object)?;
        data.get(key).cloned().ok_or(Missing::Key)
    }
}

impl TrustObjects for Objects {
    fn namespace(&self) -> &str {
        "ops"
    }
    fn secret(&self, name: &str, key: &str) -> Result<String, Missing> {
        self.get("Secret", name, key)
    }
    fn config_map(&self, name: &str, key: &str) -> Result<String, Missing> {
        self.get("ConfigMap", name, key)
    }
}

fn key_authority(name: &str, source: PemSource) -> Authority {
    Authority {
        name: name.into(),
        key: Some(source),
        ..Default::default()
    }
}

fn spec(authorities: Vec<Authority>, required: Option<IntOrString>) -> ClusterModelValidationSpec {
    ClusterModelValidationSpec {
        namespace_selector: Default::default(),
        pod_selector: None,
        model: Some(Default::default()),
        images: None,
        authorities,
        required_authorities: required,
        mode: None,
        image_pull_policy: None,
        continuous_validation: None,
        resources: None,
    }
}

/// The engine's own parser accepts the rendering and builds every authority.
fn engine_document(json: &str) -> AuthoritiesDocument {
    let doc = AuthoritiesDocument::from_json("rendered", json.as_bytes()).unwrap();
    doc.build(std::time::SystemTime::now()).unwrap();
    doc
}

#[test]
fn inline_secret_and_config_map_material_render_to_what_the_engine_reads() {
    let key = fixture("peer-samples/ec-p256.pub.pem");
    let objects = Objects::default()
        .with("Secret", "llm-keys", "cosign.pub", &key)
        .with("ConfigMap", "llm-roots", "key.pem", &key);
    let mut keyless = Authority {
        name: "ci".into(),
        keyless: Some(KeylessAuthority {
            identity_regexp: Some(".*@example\\.com".into()),
            issuer: Some("https://accounts.google.com".into()),
            ..Default::default()
        }),
        ..Default::default()
    };
    keyless.signature_path = Some("/models/ci.sig".into());
    let s = spec(
        vec![
            key_authority(
                "inline",
                PemSource {
                    pem: Some(key.clone()),
                    ..Default::default()
                },
            ),
            key_authority(
                "from-secret",
                PemSource {
                    secret_ref: Some(KeyRef {
                        name: "llm-keys".into(),
                        key: "cosign.pub".into(),
                    }),
                    ..Default::default()
                },
            ),
            key_authority(
                "from-config-map",
                PemSource {
                    config_map_ref: Some(KeyRef {
                        name: "llm-roots".into(),
                        key: "key.pem".into(),
                    }),
                    ..Default::default()
                },
            ),
            keyless,
        ],
        Some(IntOrString::String("all".into())),
    );
    let doc = engine_document(&render(&s, &objects).unwrap());
    assert_eq!(doc.required, Required::All);
    let names: Vec<_> = doc
        .authorities
        .iter()
        .map(|a| a.name.clone().unwrap())
        .collect();
    assert_eq!(names, ["inline", "from-secret", "from-config-map", "ci"]);
    for a in &doc.authorities[..3] {
        assert_eq!(a.key.as_ref().unwrap().pem, key, "{:?}", a.name);
    }
    let ci = &doc.authorities[3];
    assert_eq!(
        ci.signature.as_deref(),
        Some(std::path::Path::new("/models/ci.sig"))
    );
    let k = ci.keyless.as_ref().unwrap();
    assert_eq!(k.identity_regexp.as_deref(), Some(".*@example\\.com"));
    assert_eq!(k.issuer.as_deref(), Some("https://accounts.google.com"));
}

#[test]
fn required_defaults_to_any_and_counts_render_as_numbers() {
    let key = fixture("peer-samples/ec-p256.pub.pem");
    let two = |required| {
        spec(
            vec![
                key_authority(
                    "a",
                    PemSource {
                        pem: Some(key.clone()),
                        ..Default::default()
                    },
                ),
                key_authority(
                    "b",
                    PemSource {
                        pem: Some(key.clone()),
                        ..Default::default()
                    },
                ),
            ],
            required,
        )
    };
    let objects = Objects::default();
    for (required, want) in [
        (None, Required::Any),
        (Some(IntOrString::Int(2)), Required::AtLeast(2)),
        (Some(IntOrString::String("2".into())), Required::AtLeast(2)),
        (Some(IntOrString::String("any".into())), Required::Any),
    ] {
        let doc = engine_document(&render(&two(required.clone()), &objects).unwrap());
        assert_eq!(doc.required, want, "{required:?}");
    }
}

#[test]
fn unresolved_references_name_the_field_the_object_and_the_fix() {
    let key = fixture("peer-samples/ec-p256.pub.pem");
    let objects = Objects::default().with("Secret", "llm-keys", "other", &key);
    let by_ref = |secret: bool, name: &str, k: &str| {
        let r = Some(KeyRef {
            name: name.into(),
            key: k.into(),
        });
        let source = if secret {
            PemSource {
                secret_ref: r,
                ..Default::default()
            }
        } else {
            PemSource {
                config_map_ref: r,
                ..Default::default()
            }
        };
        spec(
            vec![
                key_authority(
                    "ok",
                    PemSource {
                        pem: Some(key.clone()),
                        ..Default::default()
                    },
                ),
                key_authority("ref", source),
            ],
            None,
        )
    };
    let e = render(&by_ref(true, "absent", "cosign.pub"), &objects).unwrap_err();
    assert_eq!(e.field, "spec.authorities[1].key.secretRef");
    assert_eq!(e.what, "Secret ops/absent key cosign.pub");
    assert!(
        e.to_string()
            .contains("does not exist in the operator's namespace ops"),
        "{e}"
    );
    let e = render(&by_ref(true, "llm-keys", "cosign.pub"), &objects).unwrap_err();
    assert!(e.to_string().contains("has no such key"), "{e}");
    let e = render(&by_ref(false, "llm-keys", "other"), &objects).unwrap_err();
    assert_eq!(e.field, "spec.authorities[1].key.configMapRef");
    assert_eq!(e.what, "ConfigMap ops/llm-keys key other");
    // The twin: the same reference to an existing key resolves.
    assert!(render(&by_ref(true, "llm-keys", "other"), &objects).is_ok());
}

#[test]
fn a_source_with_two_settings_is_refused_naming_its_field() {
    let key = fixture("peer-samples/ec-p256.pub.pem");
    let source = PemSource {
        pem: Some(key),
        secret_ref: Some(KeyRef {
            name: "x".into(),
            key: "y".into(),
        }),
        ..Default::default()
    };
    let e = render(
        &spec(vec![key_authority("a", source)], None),
        &Objects::default(),
    )
    .unwrap_err();
    assert_eq!(e.field, "spec.authorities[0].key");
    assert!(
        e.problem
            .contains("exactly one of pem, secretRef and configMapRef")
    );
}
