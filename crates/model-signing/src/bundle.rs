//! The Sigstore bundle (JSON) that a signature file holds, and the DSSE envelope inside it.
//!
//! Parsing follows the protobuf JSON mapping's default: every object is a message whose fields
//! are known, spelled with their JSON (lowerCamelCase) or proto (snake_case) names; an unknown
//! field anywhere is refused, naming it and where it is. It is bounded ([`MAX_BUNDLE_BYTES`],
//! and every repeated field, see [`crate::limits`]) and lenient only where released writers
//! differ: `keyid` may be absent, null or empty; key bundles before 1.1 carry
//! `publicKey.rawBytes` and `keyDetails`; `tlogEntries` may be absent.

use std::io::Read;
use std::path::Path;

use base64::Engine as _;
use serde::Serialize;

mod locate;
pub(crate) mod message;
mod tlog;

use crate::limits::{MAX_CHAIN_CERTIFICATES, MAX_ENVELOPE_SIGNATURES, MAX_TLOG_ENTRIES};
pub use message::Int64;
use message::{Bounded, proto_message};
pub use tlog::{
    Checkpoint, HashOutput, InclusionPromise, InclusionProof, KindVersion, LogId, MessageSignature,
    Rfc3161Timestamp, TimestampVerificationData, TlogEntry,
};

/// The media type every model-signing method writes.
pub const BUNDLE_V03_MEDIA_TYPE: &str = "application/vnd.dev.sigstore.bundle.v0.3+json";

pub use crate::limits::MAX_BUNDLE_BYTES;

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
    #[error(
        "signature {0} is larger than the verifier's limit of {MAX_BUNDLE_BYTES} bytes (MAX_BUNDLE_BYTES); genuine model signatures are far smaller: check that this is the model's signature"
    )]
    TooLarge(String),
    /// A part of the bundle exceeds one of the verifier's limits.
    #[error(transparent)]
    Limit(#[from] crate::limits::LimitExceeded),
    /// Not valid bundle JSON.
    #[error("signature is not a valid Sigstore bundle: {0}")]
    Json(String),
    /// A required part is missing or has the wrong form.
    #[error("signature is not a valid model signature: {0}")]
    Invalid(String),
}

proto_message! {
    /// A Sigstore bundle (`dev.sigstore.bundle.v1.Bundle`) as model-signing writes it.
    #[derive(Debug, Clone, Serialize)]
    pub struct Bundle {
        /// `application/vnd.dev.sigstore.bundle.v0.3+json` (older Sigstore bundles use others).
        required pub media_type: String = "mediaType" | "media_type",
        /// Keys, certificates and transparency-log material.
        required pub verification_material: VerificationMaterial =
            "verificationMaterial" | "verification_material",
        /// The signed envelope. Bundles carrying a `messageSignature` instead are not model
        /// signatures.
        #[serde(skip_serializing_if = "Option::is_none")]
        optional pub dsse_envelope: Option<Envelope> = "dsseEnvelope" | "dsse_envelope",
        /// The other content a Sigstore bundle may carry (a signature over a digest): parsed
        /// so that such a bundle is refused as "not a DSSE envelope", never as malformed.
        #[serde(skip_serializing_if = "Option::is_none")]
        optional pub message_signature: Option<MessageSignature> =
            "messageSignature" | "message_signature",
    }
}

proto_message! {
    /// `verificationMaterial`: exactly one of a public key, a certificate chain or a certificate.
    #[derive(Debug, Clone, Default, Serialize)]
    pub struct VerificationMaterial {
        /// Key method: the key's hint (or, before 1.1, its raw PEM bytes).
        #[serde(skip_serializing_if = "Option::is_none")]
        optional pub public_key: Option<PublicKeyIdentifier> = "publicKey" | "public_key",
        /// Certificate method: leaf first, then intermediates.
        #[serde(skip_serializing_if = "Option::is_none")]
        optional pub x509_certificate_chain: Option<CertificateChain> =
            "x509CertificateChain" | "x509_certificate_chain",
        /// Sigstore method: the Fulcio leaf.
        #[serde(skip_serializing_if = "Option::is_none")]
        optional pub certificate: Option<RawCertificate> = "certificate",
        /// Transparency log entries (empty for key and certificate bundles).
        optional pub tlog_entries: Vec<TlogEntry> = "tlogEntries" | "tlog_entries"
            as Bounded<TlogEntry, MAX_TLOG_ENTRIES>,
        /// RFC 3161 timestamps (Sigstore method).
        #[serde(skip_serializing_if = "Option::is_none")]
        optional pub timestamp_verification_data: Option<TimestampVerificationData> =
            "timestampVerificationData" | "timestamp_verification_data",
    }
}

proto_message! {
    /// `publicKey`: a `PublicKeyIdentifier`. `rawBytes` and `keyDetails` are not fields of
    /// that message but of `PublicKey`; model-signing 0.3.1 to 1.0.1 wrote them here, so they
    /// are the two fields tolerated beyond the protobuf schema (docs/security.md).
    #[derive(Debug, Clone, Default, Serialize)]
    pub struct PublicKeyIdentifier {
        /// `hex(sha256(PEM SubjectPublicKeyInfo))` since 1.1.
        #[serde(skip_serializing_if = "Option::is_none")]
        optional pub hint: Option<String> = "hint",
        /// Before 1.1: base64 of the PEM text. Never trusted; the user's key is used.
        #[serde(skip_serializing_if = "Option::is_none")]
        optional pub raw_bytes: Option<String> = "rawBytes" | "raw_bytes",
        /// Before 1.1, e.g. `PKIX_ECDSA_P384_SHA_384`.
        #[serde(skip_serializing_if = "Option::is_none")]
        optional pub key_details: Option<String> = "keyDetails" | "key_details",
    }
}

proto_message! {
    /// `x509CertificateChain`.
    #[derive(Debug, Clone, Serialize)]
    pub struct CertificateChain {
        /// Leaf first; at most [`MAX_CHAIN_CERTIFICATES`].
        required pub certificates: Vec<RawCertificate> = "certificates"
            as Bounded<RawCertificate, MAX_CHAIN_CERTIFICATES>,
    }
}

proto_message! {
    /// A DER certificate, base64 in JSON.
    #[derive(Debug, Clone, Serialize)]
    pub struct RawCertificate {
        /// Base64 of the DER encoding.
        required pub raw_bytes: String = "rawBytes" | "raw_bytes",
    }
}

proto_message! {
    /// A DSSE envelope (`io.intoto.Envelope`). Inside a bundle it is a protobuf message, so the
    /// bundle's rule applies: unknown fields are refused (docs/security.md).
    #[derive(Debug, Clone, Serialize)]
    pub struct Envelope {
        /// Base64 of the statement bytes.
        required pub payload: String = "payload",
        /// `application/vnd.in-toto+json`.
        required pub payload_type: String = "payloadType" | "payload_type",
        /// The signatures (model-signing writes exactly one).
        required pub signatures: Vec<EnvelopeSignature> = "signatures"
            as Bounded<EnvelopeSignature, MAX_ENVELOPE_SIGNATURES>,
    }
}

proto_message! {
    /// One DSSE signature.
    #[derive(Debug, Clone, Serialize)]
    pub struct EnvelopeSignature {
        /// Base64 of the DER ECDSA signature.
        required pub sig: String = "sig",
        /// Unused by verification; `""` (1.1+), null (older) or absent (Sigstore).
        #[serde(skip_serializing_if = "Option::is_none")]
        optional pub keyid: Option<String> = "keyid",
    }
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
    /// Parses bundle JSON (see the module docs for the rules).
    pub fn from_slice(bytes: &[u8]) -> Result<Self, BundleError> {
        if bytes.len() as u64 > MAX_BUNDLE_BYTES {
            return Err(BundleError::TooLarge(format!("of {} bytes", bytes.len())));
        }
        let bundle: Bundle = serde_json::from_slice(bytes)
            .map_err(|e| BundleError::Json(locate::describe(bytes, &e)))?;
        bundle.check_oneofs()?;
        Ok(bundle)
    }

    /// The protobuf `oneof`s: at most one content and one kind of verification material (the
    /// JSON mapping refuses a message setting two members of a oneof).
    fn check_oneofs(&self) -> Result<(), BundleError> {
        let both = |a: &str, b: &str| {
            BundleError::Json(format!(
                "{a} and {b} are both given, but a bundle carries only one of them"
            ))
        };
        if self.dsse_envelope.is_some() && self.message_signature.is_some() {
            return Err(both("dsseEnvelope", "messageSignature"));
        }
        let vm = &self.verification_material;
        let given: Vec<&str> = [
            (vm.public_key.is_some(), "verificationMaterial.publicKey"),
            (
                vm.x509_certificate_chain.is_some(),
                "verificationMaterial.x509CertificateChain",
            ),
            (vm.certificate.is_some(), "verificationMaterial.certificate"),
        ]
        .into_iter()
        .filter_map(|(set, name)| set.then_some(name))
        .collect();
        match given.as_slice() {
            [a, b, ..] => Err(both(a, b)),
            _ => Ok(()),
        }
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
    /// The decoded statement bytes, at most [`crate::limits::MAX_STATEMENT_BYTES`].
    pub fn payload_bytes(&self) -> Result<Vec<u8>, BundleError> {
        use crate::limits::{Limit, LimitExceeded, MAX_STATEMENT_BYTES};
        // Base64 decodes to 3 bytes per 4 characters: refuse before allocating.
        let text = self.payload.trim();
        let padding = text.bytes().rev().take_while(|&b| b == b'=').count();
        let decoded_len =
            (text.len() / 4 * 3 + [0, 0, 1, 2][text.len() % 4]).saturating_sub(padding);
        if decoded_len > MAX_STATEMENT_BYTES {
            return Err(LimitExceeded::new(Limit::StatementBytes, decoded_len).into());
        }
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
    let len = file.metadata().map_err(io)?.len();
    if len > MAX_BUNDLE_BYTES {
        return Err(BundleError::TooLarge(path.display().to_string()));
    }
    // Sized from the file's length, so that reading never doubles the buffer; `take` still
    // bounds a file that grows meanwhile.
    let mut bytes = Vec::with_capacity(usize::try_from(len).unwrap_or(0) + 1);
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
