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

    #[test]
    fn garbage_certificate_is_an_error_not_a_panic() {
        assert!(cert_identity(b"").is_err());
        assert!(cert_identity(&[0x30, 0x82, 0xff, 0xff, 0x00]).is_err());
    }
}
