//! The authorities document: several authorities and the rule on how many must vouch, as JSON.
//! `model-signing verify authorities --policy FILE` reads it, and the operator renders it for
//! its agent from a policy's `authorities` (the trust material inline, so a pod cannot swap it).
//!
//! ```json
//! {"required": "any",
//!  "authorities": [
//!    {"name": "release-2026", "key": {"pem": "-----BEGIN PUBLIC KEY-----..."}},
//!    {"name": "release-2027", "key": {"pem": "..."}, "signature": "/models/llm/model-2027.sig"},
//!    {"certificateAuthority": {"pem": "-----BEGIN CERTIFICATE-----..."}},
//!    {"keyless": {"identityRegexp": ".*@example\\.com", "issuer": "https://accounts.google.com"}}]}
//! ```
//!
//! `required` is `"any"` (the default), `"all"` or a count. An authority without `signature`
//! reads the signature the command names. Every field is checked when the document is loaded,
//! and errors name the field (`authorities[2].keyless: ...`).

use std::path::PathBuf;
use std::time::SystemTime;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::Required;
use crate::keys::PublicKey;
use crate::sigstore::{Matcher, SigstorePolicy, SigstoreTrust, SigstoreVerifier};
use crate::verify::{CertificateVerifier, EnvelopeVerifier, KeyVerifier};
use crate::x509::Certificate;

/// More authorities than this are refused: a real policy lists a handful, and each one costs
/// an envelope check (and possibly a pass over the model) per verification.
pub const MAX_AUTHORITIES: usize = 32;

/// The whole document.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct AuthoritiesDocument {
    /// How many must vouch (`"any"`, `"all"` or a count; default any).
    #[serde(default = "any")]
    pub required: Required,
    /// The authorities, in the order messages list them.
    pub authorities: Vec<AuthoritySpec>,
}

fn any() -> Required {
    Required::Any
}

/// One authority: exactly one of `key`, `certificateAuthority` and `keyless`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct AuthoritySpec {
    /// How messages name it (default `authorities[i]`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// The signature file it reads (default: the one the command names).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signature: Option<PathBuf>,
    /// An EC public key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key: Option<Pem>,
    /// CA certificates the signing certificate must chain to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub certificate_authority: Option<Pem>,
    /// A keyless (Sigstore) identity.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub keyless: Option<Keyless>,
}

/// PEM text.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Pem {
    /// The PEM block(s).
    pub pem: String,
}

/// Who may have signed keyless: identity and issuer, each exact or a regular expression (full
/// match), and the trust root (default: Sigstore's public-good root, embedded).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Keyless {
    /// The certificate's identity (a SAN), exactly.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub identity: Option<String>,
    /// Or a regular expression it must match in full.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub identity_regexp: Option<String>,
    /// The OIDC issuer, exactly.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub issuer: Option<String>,
    /// Or a regular expression it must match in full.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub issuer_regexp: Option<String>,
    /// A Sigstore trusted root (JSON text) instead of the embedded public-good root.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trusted_root: Option<String>,
}

/// An authority ready to verify.
pub struct BuiltAuthority {
    /// Its name for messages.
    pub name: String,
    /// Its own signature file, if it names one.
    pub signature: Option<PathBuf>,
    /// Its verifier.
    pub verifier: Box<dyn EnvelopeVerifier + Send + Sync>,
    /// Where its trust comes from, for reports (`public key <hint>`, CA subjects, root name).
    pub trust: String,
}

/// A document that cannot be used, naming the field.
#[derive(Debug, thiserror::Error)]
#[error("{field}: {problem}")]
pub struct DocumentError {
    /// E.g. `authorities[1].keyless.identityRegexp`.
    pub field: String,
    /// What is wrong and what to write instead.
    pub problem: String,
}

fn wrong(field: impl Into<String>, problem: impl Into<String>) -> DocumentError {
    DocumentError {
        field: field.into(),
        problem: problem.into(),
    }
}

impl AuthoritiesDocument {
    /// Parses the JSON text; `name` says where it came from (a path, `environment variable X`).
    pub fn from_json(name: &str, text: &[u8]) -> Result<Self, DocumentError> {
        serde_json::from_slice(text)
            .map_err(|e| wrong(name, format!("not an authorities document: {e}")))
    }

    /// Checks every authority and builds its verifier; certificate chains are checked at `now`.
    pub fn build(&self, now: SystemTime) -> Result<Vec<BuiltAuthority>, DocumentError> {
        let total = self.authorities.len();
        if total == 0 {
            return Err(wrong(
                "authorities",
                "empty: name at least one key, certificateAuthority or keyless identity",
            ));
        }
        if total > MAX_AUTHORITIES {
            return Err(wrong(
                "authorities",
                format!("{total} given, at most {MAX_AUTHORITIES} are allowed"),
            ));
        }
        if self.required.need(total).is_none() {
            let need = self.required.of(total);
            return Err(wrong(
                "required",
                format!(
                    "asks for {need} of {total} authorities: use \"any\", \"all\" or a count from 1 to {total}"
                ),
            ));
        }
        self.authorities
            .iter()
            .enumerate()
            .map(|(i, spec)| spec.build(&format!("authorities[{i}]"), now))
            .collect()
    }
}

impl AuthoritySpec {
    fn build(&self, field: &str, now: SystemTime) -> Result<BuiltAuthority, DocumentError> {
        let name = self.name.clone().unwrap_or_else(|| field.to_string());
        let (verifier, trust): (Box<dyn EnvelopeVerifier + Send + Sync>, String) =
            match (&self.key, &self.certificate_authority, &self.keyless) {
                (Some(key), None, None) => {
                    let at = format!("{field}.key.pem");
                    let key = PublicKey::from_pem(&at, key.pem.as_bytes())
                        .map_err(|e| wrong(&at, e.to_string()))?;
                    let trust = format!("public key {}", key.hint());
                    let key_name = format!("the key of {name}");
                    (Box::new(KeyVerifier::new(key, key_name)), trust)
                }
                (None, Some(ca), None) => {
                    let at = format!("{field}.certificateAuthority.pem");
                    let anchors = Certificate::all_from_pem(&at, ca.pem.as_bytes())
                        .map_err(|e| wrong(&at, e.to_string()))?;
                    let subjects: Vec<String> = anchors.iter().map(|c| c.subject()).collect();
                    let verifier = CertificateVerifier::new(anchors, now)
                        .map_err(|e| wrong(&at, e.to_string()))?;
                    (Box::new(verifier), format!("CA {}", subjects.join(", ")))
                }
                (None, None, Some(k)) => {
                    let verifier = k.build(&format!("{field}.keyless"))?;
                    let trust = verifier.trust().name().to_string();
                    (Box::new(verifier), trust)
                }
                _ => {
                    return Err(wrong(
                        field,
                        "give exactly one of key, certificateAuthority and keyless",
                    ));
                }
            };
        Ok(BuiltAuthority {
            name,
            signature: self.signature.clone(),
            verifier,
            trust,
        })
    }
}

impl Keyless {
    fn build(&self, field: &str) -> Result<SigstoreVerifier, DocumentError> {
        let matcher =
            |exact: &Option<String>, regexp: &Option<String>, what: &str| match (exact, regexp) {
                (Some(v), None) => Ok(Matcher::exact(v.as_str())),
                (None, Some(re)) => {
                    let at = format!("{field}.{what}Regexp");
                    Matcher::regex(&at, re).map_err(|e| wrong(&at, e))
                }
                _ => Err(wrong(
                    field,
                    format!("give exactly one of {what} and {what}Regexp"),
                )),
            };
        let identity = matcher(&self.identity, &self.identity_regexp, "identity")?;
        let issuer = matcher(&self.issuer, &self.issuer_regexp, "issuer")?;
        let trust = match &self.trusted_root {
            Some(json) => {
                let at = format!("{field}.trustedRoot");
                SigstoreTrust::from_trusted_root_json(&at, json)
                    .map_err(|e| wrong(&at, e.to_string()))?
            }
            None => SigstoreTrust::production().map_err(|e| wrong(field, e.to_string()))?,
        };
        SigstoreVerifier::new(trust, SigstorePolicy { identity, issuer })
            .map_err(|e| wrong(field, e.to_string()))
    }
}

impl Serialize for Required {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Required::Any => s.serialize_str("any"),
            Required::All => s.serialize_str("all"),
            Required::AtLeast(n) => s.serialize_u64(*n as u64),
        }
    }
}

impl<'de> Deserialize<'de> for Required {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            Word(String),
            Count(u64),
        }
        match Raw::deserialize(d)? {
            Raw::Word(w) if w == "any" => Ok(Required::Any),
            Raw::Word(w) if w == "all" => Ok(Required::All),
            Raw::Word(w) => Err(serde::de::Error::custom(format!(
                "required is {w:?}: use \"any\", \"all\" or a count"
            ))),
            Raw::Count(n) => usize::try_from(n)
                .map(Required::AtLeast)
                .map_err(|_| serde::de::Error::custom("required is too large")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keys::{PrivateKey, fresh_p256_private_pem, to_pem};

    /// A new P-256 public key, as PEM.
    fn public_pem() -> String {
        let key = PrivateKey::from_pem("k", fresh_p256_private_pem().as_bytes(), None).unwrap();
        to_pem("PUBLIC KEY", key.public_key().spki_der())
    }

    fn parse(json: serde_json::Value) -> Result<AuthoritiesDocument, DocumentError> {
        AuthoritiesDocument::from_json("policy.json", json.to_string().as_bytes())
    }

    fn build_error(json: serde_json::Value) -> String {
        match parse(json).and_then(|d| d.build(SystemTime::now())) {
            Ok(_) => panic!("built"),
            Err(e) => e.to_string(),
        }
    }

    #[test]
    fn two_keys_and_a_keyless_identity_build_in_order_with_their_names() {
        let doc = parse(serde_json::json!({
            "required": 2,
            "authorities": [
                {"name": "release-2026", "key": {"pem": public_pem()}},
                {"key": {"pem": public_pem()}, "signature": "/m/model-2027.sig"},
                {"keyless": {"identityRegexp": ".*@example\\.com", "issuer": "https://accounts.google.com"}}]
        }))
        .unwrap();
        assert_eq!(doc.required, Required::AtLeast(2));
        let built = doc.build(SystemTime::now()).unwrap();
        let names: Vec<&str> = built.iter().map(|b| b.name.as_str()).collect();
        assert_eq!(names, ["release-2026", "authorities[1]", "authorities[2]"]);
        assert_eq!(built[1].signature, Some(PathBuf::from("/m/model-2027.sig")));
        assert!(
            built[0].trust.starts_with("public key "),
            "{}",
            built[0].trust
        );
        // The document survives a round trip (the operator renders it, the agent reads it).
        let again = parse(serde_json::to_value(&doc).unwrap()).unwrap();
        assert_eq!(again, doc);
    }

    #[test]
    fn required_defaults_to_any_and_takes_all_or_a_count() {
        let key = || serde_json::json!([{"key": {"pem": public_pem()}}]);
        assert_eq!(
            parse(serde_json::json!({"authorities": key()}))
                .unwrap()
                .required,
            Required::Any
        );
        assert_eq!(
            parse(serde_json::json!({"required": "all", "authorities": key()}))
                .unwrap()
                .required,
            Required::All
        );
        let msg = parse(serde_json::json!({"required": "most", "authorities": key()}))
            .unwrap_err()
            .to_string();
        assert!(msg.contains("use \"any\", \"all\" or a count"), "{msg}");
    }

    #[test]
    fn every_mistake_names_its_field_and_the_fix() {
        let pem = public_pem();
        for (json, wanted) in [
            (
                serde_json::json!({"authorities": []}),
                "authorities: empty: name at least one key",
            ),
            (
                serde_json::json!({"required": 3, "authorities": [{"key": {"pem": pem}}]}),
                "required: asks for 3 of 1 authorities",
            ),
            (
                serde_json::json!({"authorities": [{"key": {"pem": pem}, "keyless": {"identity": "a", "issuer": "b"}}]}),
                "authorities[0]: give exactly one of key, certificateAuthority and keyless",
            ),
            (
                serde_json::json!({"authorities": [{}]}),
                "authorities[0]: give exactly one of",
            ),
            (
                serde_json::json!({"authorities": [{"key": {"pem": pem}}, {"key": {"pem": "not a key"}}]}),
                "authorities[1].key.pem",
            ),
            (
                serde_json::json!({"authorities": [{"keyless": {"identity": "a"}}]}),
                "authorities[0].keyless: give exactly one of issuer and issuerRegexp",
            ),
            (
                serde_json::json!({"authorities": [{"keyless": {"identityRegexp": "(", "issuer": "b"}}]}),
                "authorities[0].keyless.identityRegexp",
            ),
            (
                serde_json::json!({"authorities": [{"certificateAuthority": {"pem": ""}}]}),
                "authorities[0].certificateAuthority.pem",
            ),
            (
                serde_json::json!({"authorities": [{"keyless": {"identity": "a", "issuer": "b", "trustedRoot": "{}"}}]}),
                "authorities[0].keyless.trustedRoot",
            ),
            (
                serde_json::json!({"authorities": [{"kye": {"pem": pem}}]}),
                "policy.json: not an authorities document: unknown field `kye`",
            ),
        ] {
            let msg = build_error(json);
            assert!(msg.contains(wanted), "wanted {wanted:?} in {msg}");
        }
        let many: Vec<_> = (0..=MAX_AUTHORITIES)
            .map(|_| serde_json::json!({"key": {"pem": pem}}))
            .collect();
        let msg = build_error(serde_json::json!({"authorities": many}));
        assert!(msg.contains("at most 32 are allowed"), "{msg}");
    }
}
