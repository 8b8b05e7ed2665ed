//! A cluster policy's authorities, rendered as the engine's authorities document
//! (`model_signing::authorities::document`): the JSON that `model-signing verify authorities
//! --policy-env` reads in the injected verifier. References to Secrets and ConfigMaps in the
//! operator's namespace are resolved here, from the operator's cache, so the verifier receives
//! the material itself in its environment and the pod's volumes never supply trust.
//!
//! Pure: the objects come through [`TrustObjects`]. A unit test parses every rendering with the
//! engine's own document parser, so the two sides cannot drift apart.

use serde_json::{Map, Value, json};

use crate::crd::cluster::{Authority, ClusterModelValidationSpec, JsonSource, KeyRef, PemSource};
use crate::crd::{Method, SigstoreTrust, Trust};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

/// Where referenced trust material lives: Secrets and ConfigMaps of the operator's namespace.
pub trait TrustObjects {
    /// The operator's namespace, for messages.
    fn namespace(&self) -> &str;
    /// `data[key]` of Secret `name` (decoded), `Err` saying what is missing.
    fn secret(&self, name: &str, key: &str) -> Result<String, Missing>;
    /// `data[key]` of ConfigMap `name`, `Err` saying what is missing.
    fn config_map(&self, name: &str, key: &str) -> Result<String, Missing>;
}

/// Why a reference does not resolve.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Missing {
    /// No such object (or not yet in the cache).
    Object,
    /// The object has no such key.
    Key,
    /// The value is not UTF-8 text.
    NotText,
}

/// A reference that does not resolve, naming the policy field and the object.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{field} names {what}: {problem}")]
pub struct ReferenceError {
    /// E.g. `spec.authorities[1].key.secretRef`.
    pub field: String,
    /// E.g. `Secret model-validation-operator-system/llm-keys key cosign.pub`.
    pub what: String,
    /// What is wrong and what to do.
    pub problem: String,
}

/// The policy's authorities document (compact JSON), or the first reference that does not
/// resolve.
pub fn render(
    spec: &ClusterModelValidationSpec,
    objects: &dyn TrustObjects,
) -> Result<String, ReferenceError> {
    let authorities = spec
        .authorities
        .iter()
        .enumerate()
        .map(|(i, a)| authority(a, &format!("spec.authorities[{i}]"), objects))
        .collect::<Result<Vec<_>, _>>()?;
    let required = match &spec.required_authorities {
        None => json!("any"),
        Some(IntOrString::Int(n)) => json!(n),
        Some(IntOrString::String(s)) => match s.parse::<u64>() {
            Ok(n) => json!(n),
            Err(_) => json!(s),
        },
    };
    Ok(json!({"required": required, "authorities": authorities}).to_string())
}

/// A ModelValidation's one method as an authorities document, for verifying images in the
/// operator (which cannot read the pod's files): trust given by a path in the pod is refused,
/// naming the field that carries it in the policy instead.
pub fn render_method(method: Method<'_>) -> Result<String, String> {
    if let Some(t) = method.trust_path() {
        return Err(format!(
            "{} is a path in the pod, which the operator cannot read when it verifies images at admission: carry the material in the policy with {} instead",
            t.anchor.field, t.instead
        ));
    }
    let authority = match method {
        Method::PublicKey {
            key: Trust::Inline(pem),
        } => json!({"name": "spec.config.publicKeyConfig", "key": {"pem": pem}}),
        Method::Certificate {
            ca: Trust::Inline(pem),
        } => json!({"name": "spec.config.pkiConfig", "certificateAuthority": {"pem": pem}}),
        Method::Sigstore {
            identity,
            issuer,
            trust,
        } => {
            let mut keyless = json!({"identity": identity, "issuer": issuer});
            let root = match trust {
                None => None,
                Some(SigstoreTrust::TrustedRoot(root)) => Some(root.to_string()),
                Some(SigstoreTrust::Config(Trust::Inline(config))) => {
                    // A ClientTrustConfig carries the trusted root under `trustedRoot`.
                    let root = serde_json::from_str::<Value>(config)
                        .ok()
                        .and_then(|v| v.get("trustedRoot").cloned())
                        .ok_or("spec.config.clientTrustConfig.trustConfigJson has no trustedRoot: give the trusted root with clientTrustConfig.trustedRootJson")?;
                    Some(root.to_string())
                }
                Some(SigstoreTrust::Config(Trust::Path(_))) => None,
            };
            if let Some(root) = root {
                keyless["trustedRoot"] = json!(root);
            }
            json!({"name": "spec.config.sigstoreConfig", "keyless": keyless})
        }
        Method::Authorities { document } => return Ok(document.to_string()),
        // Paths were refused above.
        Method::PublicKey { .. } | Method::Certificate { .. } => {
            return Err("the policy's trust anchor is a path in the pod".into());
        }
    };
    Ok(json!({"required": "any", "authorities": [authority]}).to_string())
}

fn authority(
    a: &Authority,
    field: &str,
    objects: &dyn TrustObjects,
) -> Result<Value, ReferenceError> {
    let mut out = Map::new();
    out.insert("name".into(), json!(a.name));
    if let Some(s) = &a.signature_path {
        out.insert("signature".into(), json!(s));
    }
    if let Some(k) = &a.key {
        let pem = pem(k, &format!("{field}.key"), objects)?;
        out.insert("key".into(), json!({ "pem": pem }));
    }
    if let Some(ca) = &a.certificate_authority {
        let pem = pem(ca, &format!("{field}.certificateAuthority"), objects)?;
        out.insert("certificateAuthority".into(), json!({ "pem": pem }));
    }
    if let Some(k) = &a.keyless {
        let mut keyless = Map::new();
        for (name, value) in [
            ("identity", &k.identity),
            ("identityRegexp", &k.identity_regexp),
            ("issuer", &k.issuer),
            ("issuerRegexp", &k.issuer_regexp),
        ] {
            if let Some(v) = value {
                keyless.insert(name.into(), json!(v));
            }
        }
        if let Some(root) = &k.trusted_root {
            let text = json_text(root, &format!("{field}.keyless.trustedRoot"), objects)?;
            keyless.insert("trustedRoot".into(), json!(text));
        }
        out.insert("keyless".into(), Value::Object(keyless));
    }
    Ok(Value::Object(out))
}

fn pem(
    source: &PemSource,
    field: &str,
    objects: &dyn TrustObjects,
) -> Result<String, ReferenceError> {
    resolve(
        source.pem.as_deref(),
        source.secret_ref.as_ref(),
        source.config_map_ref.as_ref(),
        field,
        "pem",
        objects,
    )
}

fn json_text(
    source: &JsonSource,
    field: &str,
    objects: &dyn TrustObjects,
) -> Result<String, ReferenceError> {
    resolve(
        source.json.as_deref(),
        source.secret_ref.as_ref(),
        source.config_map_ref.as_ref(),
        field,
        "json",
        objects,
    )
}

/// The one source that is set; the CRD's rules guarantee exactly one, and a spec written
/// around them (an older CRD) gets a message naming the field.
fn resolve(
    inline: Option<&str>,
    secret: Option<&KeyRef>,
    config_map: Option<&KeyRef>,
    field: &str,
    inline_name: &str,
    objects: &dyn TrustObjects,
) -> Result<String, ReferenceError> {
    let ns = objects.namespace();
    let fail = |sub: &str, what: String, m: Missing| ReferenceError {
        field: format!("{field}.{sub}"),
        problem: match m {
            Missing::Object => format!(
                "it does not exist in the operator's namespace {ns}: create it there (only that namespace is read, so tenants cannot supply trust)"
            ),
            Missing::Key => "it has no such key: add the key, or fix the reference's key".into(),
            Missing::NotText => {
                "its value is not UTF-8 text: store the PEM or JSON text itself".into()
            }
        },
        what,
    };
    match (inline, secret, config_map) {
        (Some(text), None, None) => Ok(text.to_string()),
        (None, Some(r), None) => objects.secret(&r.name, &r.key).map_err(|m| {
            fail(
                "secretRef",
                format!("Secret {ns}/{} key {}", r.name, r.key),
                m,
            )
        }),
        (None, None, Some(r)) => objects.config_map(&r.name, &r.key).map_err(|m| {
            fail(
                "configMapRef",
                format!("ConfigMap {ns}/{} key {}", r.name, r.key),
                m,
            )
        }),
        _ => Err(ReferenceError {
            field: field.to_string(),
            what: "no single source".into(),
            problem: format!("set exactly one of {inline_name}, secretRef and configMapRef"),
        }),
    }
}

#[cfg(test)]
mod tests;
