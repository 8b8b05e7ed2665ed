//! The Sigstore bundle (JSON) that a signature file holds, and the DSSE envelope inside it.
//!
//! Parsing is bounded ([`MAX_BUNDLE_BYTES`]) and lenient only where released writers differ:
//! `keyid` may be absent, null or empty; key bundles before 1.1 carry `publicKey.rawBytes`;
//! `tlogEntries` may be absent.

use std::io::Read;
use std::path::Path;

use base64::Engine as _;
use serde::{Deserialize, Serialize};

/// The media type every model-signing method writes.
pub const BUNDLE_V03_MEDIA_TYPE: &str = "application/vnd.dev.sigstore.bundle.v0.3+json";

/// Signature files larger than this are refused before parsing (a 100,000-file model's bundle
/// is about 20 MB).
pub const MAX_BUNDLE_BYTES: u64 = 64 * 1024 * 1024;

/// Why a signature file cannot be read.
#[derive(Debug, thiserror::Error)]
pub enum BundleError {
    /// The file could not be read.
    #[error("cannot read signature {path}: {source}")]
    Io {
        /// The signature path.
        path: String,
        /// The cause.
        source: std::io::Error,
    },
    /// The file is larger than [`MAX_BUNDLE_BYTES`].
    #[error("signature {0} is larger than {MAX_BUNDLE_BYTES} bytes; this is not a model signature")]
    TooLarge(String),
    /// Not valid bundle JSON.
    #[error("signature is not a valid Sigstore bundle: {0}")]
    Json(String),
    /// A required part is missing or has the wrong form.
    #[error("signature is not a valid model signature: {0}")]
    Invalid(String),
}

/// A Sigstore bundle as model-signing writes it.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Bundle {
    /// `application/vnd.dev.sigstore.bundle.v0.3+json` (older Sigstore bundles use others).
    pub media_type: String,
    /// Keys, certificates and transparency-log material.
    pub verification_material: VerificationMaterial,
    /// The signed envelope. Bundles carrying a `messageSignature` instead are not model signatures.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dsse_envelope: Option<Envelope>,
}

/// `verificationMaterial`: exactly one of a public key, a certificate chain or a certificate.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct VerificationMaterial {
    /// Key method: the key's hint (or, before 1.1, its raw PEM bytes).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub public_key: Option<PublicKeyIdentifier>,
    /// Certificate method: leaf first, then intermediates.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub x509_certificate_chain: Option<CertificateChain>,
    /// Sigstore method: the Fulcio leaf.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub certificate: Option<RawCertificate>,
    /// Transparency log entries (empty for key and certificate bundles).
    #[serde(default)]
    pub tlog_entries: Vec<serde_json::Value>,
    /// RFC 3161 timestamps (Sigstore method).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub timestamp_verification_data: Option<serde_json::Value>,
}

/// `publicKey`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PublicKeyIdentifier {
    /// `hex(sha256(PEM SubjectPublicKeyInfo))` since 1.1.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hint: Option<String>,
    /// Before 1.1: base64 of the PEM text. Never trusted; the user's key is used.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub raw_bytes: Option<String>,
    /// Before 1.1, e.g. `PKIX_ECDSA_P384_SHA_384`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub key_details: Option<String>,
}

/// `x509CertificateChain`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CertificateChain {
    /// Leaf first.
    pub certificates: Vec<RawCertificate>,
}

/// A DER certificate, base64 in JSON.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RawCertificate {
    /// Base64 of the DER encoding.
    pub raw_bytes: String,
}

/// A DSSE envelope.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Envelope {
    /// Base64 of the statement bytes.
    pub payload: String,
    /// `application/vnd.in-toto+json`.
    pub payload_type: String,
    /// The signatures (model-signing writes exactly one).
    pub signatures: Vec<EnvelopeSignature>,
}

/// One DSSE signature.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct EnvelopeSignature {
    /// Base64 of the DER ECDSA signature.
    pub sig: String,
    /// Unused by verification; `""` (1.1+), null (older) or absent (Sigstore).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub keyid: Option<String>,
}

/// Decodes standard base64, padded or not, as protobuf JSON writers produce it.
pub fn decode_base64(what: &str, s: &str) -> Result<Vec<u8>, BundleError> {
    let engine = base64::engine::GeneralPurpose::new(
        &base64::alphabet::STANDARD,
        base64::engine::GeneralPurposeConfig::new()
            .with_decode_padding_mode(base64::engine::DecodePaddingMode::Indifferent),
    );
    engine
        .decode(s.trim())
        .map_err(|e| BundleError::Invalid(format!("{what} is not valid base64 ({e})")))
}

/// Standard padded base64.
pub fn encode_base64(data: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(data)
}

impl Bundle {
    /// Parses bundle JSON.
    pub fn from_slice(bytes: &[u8]) -> Result<Self, BundleError> {
        if bytes.len() as u64 > MAX_BUNDLE_BYTES {
            return Err(BundleError::TooLarge(format!("of {} bytes", bytes.len())));
        }
        serde_json::from_slice(bytes).map_err(|e| BundleError::Json(e.to_string()))
    }

    /// The envelope, or an error saying this is not a DSSE bundle.
    pub fn envelope(&self) -> Result<&Envelope, BundleError> {
        self.dsse_envelope.as_ref().ok_or_else(|| {
            BundleError::Invalid(
                "the bundle has no dsseEnvelope (model signatures are DSSE envelopes)".into(),
            )
        })
    }

    /// Compact JSON, key order `mediaType`, `verificationMaterial`, `dsseEnvelope`, no trailing
    /// newline: what the peer writes.
    // serde_json fails only on a map with non-string keys or a failing `Serialize` impl; a
    // bundle is derived structs of strings and vectors, so this cannot fail.
    #[allow(clippy::expect_used)]
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).expect("bundle serialization cannot fail")
    }
}

impl Envelope {
    /// The decoded statement bytes.
    pub fn payload_bytes(&self) -> Result<Vec<u8>, BundleError> {
        decode_base64("dsseEnvelope.payload", &self.payload)
    }

    /// The one signature, decoded. More than one is refused: which one would be trusted?
    pub fn single_signature(&self) -> Result<Vec<u8>, BundleError> {
        match self.signatures.as_slice() {
            [one] => decode_base64("dsseEnvelope.signatures[0].sig", &one.sig),
            [] => Err(BundleError::Invalid("the envelope has no signature".into())),
            many => Err(BundleError::Invalid(format!(
                "the envelope has {} signatures; model signatures have exactly one",
                many.len()
            ))),
        }
    }
}

/// How a signature was made, as its verification material shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SignatureMethod {
    /// A bare public key.
    Key,
    /// A private key with its X.509 certificate chain.
    Certificate,
    /// Keyless Sigstore (a Fulcio certificate).
    Sigstore,
}

impl SignatureMethod {
    /// The method the verification material shows, if any.
    pub fn of(vm: &VerificationMaterial) -> Option<Self> {
        if vm.public_key.is_some() {
            Some(SignatureMethod::Key)
        } else if vm.x509_certificate_chain.is_some() {
            Some(SignatureMethod::Certificate)
        } else if vm.certificate.is_some() {
            Some(SignatureMethod::Sigstore)
        } else {
            None
        }
    }
}

impl std::fmt::Display for SignatureMethod {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            SignatureMethod::Key => "a public key",
            SignatureMethod::Certificate => "a certificate chain",
            SignatureMethod::Sigstore => "Sigstore",
        })
    }
}

/// Reads a signature file, refusing anything larger than [`MAX_BUNDLE_BYTES`] without reading it.
pub fn read_signature_file(path: &Path) -> Result<Vec<u8>, BundleError> {
    let io = |source| BundleError::Io {
        path: path.display().to_string(),
        source,
    };
    let file = std::fs::File::open(path).map_err(io)?;
    let mut bytes = Vec::new();
    file.take(MAX_BUNDLE_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(io)?;
    if bytes.len() as u64 > MAX_BUNDLE_BYTES {
        return Err(BundleError::TooLarge(path.display().to_string()));
    }
    Ok(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_accepts_unpadded_and_rejects_truncated() {
        assert_eq!(decode_base64("x", "aGk=").unwrap(), b"hi");
        assert_eq!(decode_base64("x", "aGk").unwrap(), b"hi");
        let err = decode_base64("payload", "aGk=a").unwrap_err();
        assert!(
            err.to_string().contains("payload is not valid base64"),
            "{err}"
        );
    }

    #[test]
    fn oversized_files_are_refused_unread() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("big.sig");
        let f = std::fs::File::create(&p).unwrap();
        f.set_len(MAX_BUNDLE_BYTES + 10).unwrap();
        assert!(matches!(
            read_signature_file(&p),
            Err(BundleError::TooLarge(_))
        ));
    }

    #[test]
    fn malformed_json_is_a_clear_error() {
        let err = Bundle::from_slice(b"{\"mediaType\": 1").unwrap_err();
        assert!(
            err.to_string()
                .starts_with("signature is not a valid Sigstore bundle"),
            "{err}"
        );
        let err = Bundle::from_slice(b"[]").unwrap_err();
        assert!(matches!(err, BundleError::Json(_)));
    }
}
