//! Who a Fulcio certificate was issued to: its SAN values and its OIDC issuer extension, and the
//! exact / full-match regular-expression matchers the policy compares them with.
//!
//! This is done here rather than by `sigstore-verify`, whose policy looks only at the first email
//! or URI SAN and has no regular expressions.

use const_oid::ObjectIdentifier;
use der::Decode;
use x509_cert::ext::pkix::SubjectAltName;
use x509_cert::ext::pkix::name::GeneralName;

/// Fulcio's current OIDC issuer extension (a DER UTF8String).
pub const OIDC_ISSUER_V2: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.6.1.4.1.57264.1.8");
/// Fulcio's legacy OIDC issuer extension (the raw string).
pub const OIDC_ISSUER_V1: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.6.1.4.1.57264.1.1");
/// Fulcio's otherName SAN type for usernames.
pub const OTHERNAME_USERNAME: ObjectIdentifier =
    ObjectIdentifier::new_unwrap("1.3.6.1.4.1.57264.1.7");
const SUBJECT_ALT_NAME: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.5.29.17");

/// One identity a certificate asserts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum San {
    /// An rfc822Name (people).
    Email(String),
    /// A URI (workloads, e.g. a GitHub Actions workflow).
    Uri(String),
    /// An otherName of type 1.3.6.1.4.1.57264.1.7 (a username).
    OtherName(String),
}

impl San {
    /// The value, whatever its kind.
    pub fn value(&self) -> &str {
        match self {
            San::Email(s) | San::Uri(s) | San::OtherName(s) => s,
        }
    }
}

impl std::fmt::Display for San {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            San::Email(s) => write!(f, "email:{s}"),
            San::Uri(s) => write!(f, "URI:{s}"),
            San::OtherName(s) => write!(f, "otherName:{s}"),
        }
    }
}

/// The identity claims of a signing certificate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CertIdentity {
    /// Every email, URI and Fulcio otherName SAN, in certificate order.
    pub sans: Vec<San>,
    /// The OIDC issuer: extension .1.8, or the legacy .1.1 when .1.8 is absent.
    pub issuer: Option<String>,
}

/// Reads the identity claims of a DER certificate. Fails only on a certificate that cannot be
/// parsed or whose SAN / issuer extension is malformed (a forged or broken certificate).
pub fn cert_identity(der: &[u8]) -> Result<CertIdentity, String> {
    let cert = x509_cert::Certificate::from_der(der)
        .map_err(|e| format!("the signing certificate cannot be parsed ({e})"))?;
    let exts = cert
        .tbs_certificate
        .extensions
        .as_deref()
        .unwrap_or_default();
    let mut sans = Vec::new();
    if let Some(ext) = exts.iter().find(|e| e.extn_id == SUBJECT_ALT_NAME) {
        let san = SubjectAltName::from_der(ext.extn_value.as_bytes()).map_err(|e| {
            format!("the signing certificate's subjectAltName extension is malformed ({e})")
        })?;
        for name in san.0 {
            match name {
                GeneralName::Rfc822Name(s) => sans.push(San::Email(s.as_str().to_string())),
                GeneralName::UniformResourceIdentifier(s) => {
                    sans.push(San::Uri(s.as_str().to_string()))
                }
                GeneralName::OtherName(o) if o.type_id == OTHERNAME_USERNAME => {
                    let s = der::asn1::Utf8StringRef::try_from(&o.value).map_err(|e| {
                        format!("the signing certificate's otherName SAN is not a UTF8String ({e})")
                    })?;
                    sans.push(San::OtherName(s.as_str().to_string()));
                }
                _ => {}
            }
        }
    }
    let issuer = if let Some(ext) = exts.iter().find(|e| e.extn_id == OIDC_ISSUER_V2) {
        let s = der::asn1::Utf8StringRef::from_der(ext.extn_value.as_bytes()).map_err(|e| {
            format!(
                "the signing certificate's OIDC issuer extension {OIDC_ISSUER_V2} is malformed ({e})"
            )
        })?;
        Some(s.as_str().to_string())
    } else if let Some(ext) = exts.iter().find(|e| e.extn_id == OIDC_ISSUER_V1) {
        let bytes = ext.extn_value.as_bytes();
        // Fulcio writes the raw string; accept a DER UTF8String too, as sigstore clients do.
        let s = match der::asn1::Utf8StringRef::from_der(bytes) {
            Ok(s) => s.as_str().to_string(),
            Err(_) => std::str::from_utf8(bytes)
                .map_err(|_| {
                    format!(
                        "the signing certificate's OIDC issuer extension {OIDC_ISSUER_V1} is not UTF-8"
                    )
                })?
                .to_string(),
        };
        Some(s)
    } else {
        None
    };
    Ok(CertIdentity { sans, issuer })
}

/// How an expected value is compared.
#[derive(Debug, Clone)]
pub enum Matcher {
    /// Byte-for-byte equality.
    Exact(String),
    /// A regular expression that must match the whole value.
    Regex {
        /// As the user wrote it.
        pattern: String,
        /// Compiled as `^(?:pattern)$`.
        re: regex::Regex,
    },
}

impl Matcher {
    /// Exact match.
    pub fn exact(s: impl Into<String>) -> Self {
        Matcher::Exact(s.into())
    }

    /// Full-match regular expression; `what` names the flag in the error.
    pub fn regex(what: &str, pattern: &str) -> Result<Self, String> {
        let re = regex::RegexBuilder::new(&format!("^(?:{pattern})$"))
            .size_limit(1 << 20)
            .build()
            .map_err(|e| format!("{what} {pattern:?} is not a valid regular expression: {e}"))?;
        Ok(Matcher::Regex {
            pattern: pattern.to_string(),
            re,
        })
    }

    /// Whether `value` satisfies this matcher.
    pub fn matches(&self, value: &str) -> bool {
        match self {
            Matcher::Exact(s) => s == value,
            Matcher::Regex { re, .. } => re.is_match(value),
        }
    }
}

impl std::fmt::Display for Matcher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Matcher::Exact(s) => write!(f, "exactly {s:?}"),
            Matcher::Regex { pattern, .. } => {
                write!(
                    f,
                    "the whole value matching the regular expression {pattern:?}"
                )
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn regex_is_full_match() {
        let m = Matcher::regex("--identity-regexp", "stefanb@.*").unwrap();
        assert!(m.matches("stefanb@us.ibm.com"));
        assert!(!m.matches("xstefanb@us.ibm.com"));
        let m = Matcher::regex("--identity-regexp", "stefanb@us").unwrap();
        assert!(
            !m.matches("stefanb@us.ibm.com"),
            "a partial match must not pass"
        );
        // Alternation must not escape the anchors.
        let m = Matcher::regex("--identity-regexp", "a|stefanb@us").unwrap();
        assert!(!m.matches("stefanb@us.ibm.com"));
        assert!(!m.matches("ab"));
        assert!(m.matches("a"));
    }

    #[test]
    fn bad_regex_is_a_clear_error() {
        let e = Matcher::regex("--identity-regexp", "(").unwrap_err();
        assert!(
            e.contains("--identity-regexp \"(\" is not a valid regular expression"),
            "{e}"
        );
    }

    #[test]
    fn exact_is_byte_equality() {
        let m = Matcher::exact("https://issuer/oauth2");
        assert!(m.matches("https://issuer/oauth2"));
        assert!(!m.matches("https://issuer/oauth2/"));
        assert!(!m.matches("HTTPS://issuer/oauth2"));
    }

    fn utf8_der(s: &str) -> Vec<u8> {
        let mut v = vec![0x0c, s.len() as u8];
        v.extend_from_slice(s.as_bytes());
        v
    }

    const V2: [u64; 9] = [1, 3, 6, 1, 4, 1, 57264, 1, 8];
    const V1: [u64; 9] = [1, 3, 6, 1, 4, 1, 57264, 1, 1];

    /// A self-signed certificate with these SANs and extensions (as Fulcio would put them).
    fn cert(sans: Vec<rcgen::SanType>, exts: Vec<rcgen::CustomExtension>) -> Vec<u8> {
        let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
        let mut p = rcgen::CertificateParams::default();
        p.subject_alt_names = sans;
        p.custom_extensions = exts;
        p.self_signed(&key).unwrap().der().to_vec()
    }

    fn ia5(s: &str) -> rcgen::string::Ia5String {
        rcgen::string::Ia5String::try_from(s).unwrap()
    }

    #[test]
    fn every_san_kind_is_read_including_the_fulcio_username() {
        let der = cert(
            vec![
                rcgen::SanType::Rfc822Name(ia5("alice@example.com")),
                rcgen::SanType::URI(ia5("https://ci.example.com/wf@refs/heads/main")),
                rcgen::SanType::OtherName((vec![1, 3, 6, 1, 4, 1, 57264, 1, 7], "alice".into())),
                // Another otherName type is not an identity Fulcio issues: ignored.
                rcgen::SanType::OtherName((vec![1, 2, 3, 4], "other".into())),
                rcgen::SanType::DnsName(ia5("example.com")),
            ],
            vec![rcgen::CustomExtension::from_oid_content(
                &V2,
                utf8_der("https://issuer.example.com"),
            )],
        );
        let id = cert_identity(&der).unwrap();
        assert_eq!(
            id.sans,
            vec![
                San::Email("alice@example.com".into()),
                San::Uri("https://ci.example.com/wf@refs/heads/main".into()),
                San::OtherName("alice".into()),
            ]
        );
        assert_eq!(id.issuer.as_deref(), Some("https://issuer.example.com"));
        // The policy looks at every SAN, not only the first.
        let m = Matcher::exact("alice");
        assert!(id.sans.iter().any(|s| m.matches(s.value())));
    }

    #[test]
    fn issuer_prefers_1_8_and_falls_back_to_legacy_1_1() {
        let both = cert(
            Vec::new(),
            vec![
                rcgen::CustomExtension::from_oid_content(&V1, b"https://legacy".to_vec()),
                rcgen::CustomExtension::from_oid_content(&V2, utf8_der("https://current")),
            ],
        );
        assert_eq!(
            cert_identity(&both).unwrap().issuer.as_deref(),
            Some("https://current")
        );
        // Legacy only: Fulcio wrote the raw string.
        let legacy_raw = cert(
            Vec::new(),
            vec![rcgen::CustomExtension::from_oid_content(
                &V1,
                b"https://legacy".to_vec(),
            )],
        );
        assert_eq!(
            cert_identity(&legacy_raw).unwrap().issuer.as_deref(),
            Some("https://legacy")
        );
        // Legacy only, DER-encoded.
        let legacy_der = cert(
            Vec::new(),
            vec![rcgen::CustomExtension::from_oid_content(
                &V1,
                utf8_der("https://legacy-der"),
            )],
        );
        assert_eq!(
            cert_identity(&legacy_der).unwrap().issuer.as_deref(),
            Some("https://legacy-der")
        );
        let none = cert(Vec::new(), Vec::new());
        assert_eq!(cert_identity(&none).unwrap().issuer, None);
        // A malformed current extension is an error, not a fallback to .1.1.
        let bad = cert(
            Vec::new(),
            vec![
                rcgen::CustomExtension::from_oid_content(&V2, b"not DER".to_vec()),
                rcgen::CustomExtension::from_oid_content(&V1, b"https://legacy".to_vec()),
            ],
        );
        let e = cert_identity(&bad).unwrap_err();
        assert!(e.contains("1.3.6.1.4.1.57264.1.8 is malformed"), "{e}");
    }

    #[test]
    fn garbage_certificate_is_an_error_not_a_panic() {
        assert!(cert_identity(b"").is_err());
        assert!(cert_identity(&[0x30, 0x82, 0xff, 0xff, 0x00]).is_err());
    }
}
