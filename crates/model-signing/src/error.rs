//! The one error type of the engine.
//!
//! Each variant says what is wrong and carries the data a caller needs to word the fix; no
//! message names a command-line flag or a configuration field, because the engine does not know
//! how it was invoked (the CLI words fixes as its flags, the operator's agent as ModelValidation
//! fields).

use crate::bundle::{BundleError, SignatureMethod};
use crate::keys::KeyError;
use crate::manifest::Mismatch;
use crate::serialize::HashError;
use crate::sigstore::error::SigstoreError;
use crate::statement::StatementError;
use crate::x509::CertError;

/// Everything that can make signing or verification fail.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The signature file is unreadable or not a bundle.
    #[error(transparent)]
    Bundle(#[from] BundleError),
    /// The signed statement is not an acceptable model manifest.
    #[error(transparent)]
    Statement(#[from] StatementError),
    /// A key cannot be loaded or used.
    #[error(transparent)]
    Key(#[from] KeyError),
    /// A certificate or its chain is not acceptable.
    #[error(transparent)]
    Certificate(#[from] CertError),
    /// The model cannot be read or hashed.
    #[error(transparent)]
    Hash(#[from] HashError),
    /// The model differs from what was signed.
    #[error("{0}")]
    Mismatch(Mismatch),
    /// The bundle's key hint names another key.
    #[error(
        "key mismatch: the signature was made with a different key than {0} (the key hint in the signature does not match); verify with the signer's public key"
    )]
    KeyMismatch(String),
    /// The DSSE signature does not verify.
    #[error("invalid signature: {0}")]
    BadSignature(String),
    /// The bundle was made with another method than the one used to verify it.
    #[error("this signature was not made with {expected} but with {}", .found.map_or("no verification material at all".to_string(), |m| m.to_string()))]
    WrongMethod {
        /// The method of the verifier.
        expected: SignatureMethod,
        /// The method the signature was made with, if it names one.
        found: Option<SignatureMethod>,
    },
    /// Certificate verification was asked for with no trusted CA: nothing is trusted by default.
    #[error("no trusted CA given: nothing is trusted by default")]
    NoTrustedCa,
    /// The model contains a symlink, it was signed with symlinks allowed, and the verification
    /// does not allow them.
    #[error(
        "'{path}' is a symlink and the model was signed with symlinks allowed, but this verification does not follow symlinks"
    )]
    SymlinkNotAllowed {
        /// Model-relative path of the symlink.
        path: String,
    },
    /// The certificate given for signing does not belong to the private key.
    #[error(
        "the signing certificate's public key does not match the private key; pass the certificate issued for this key"
    )]
    CertificateKeyMismatch,
    /// Invalid options.
    #[error("{0}")]
    Usage(String),
    /// A keyless (Sigstore) check failed: trust root, certificate, log, identity or issuer.
    #[error(transparent)]
    Sigstore(#[from] SigstoreError),
    /// An OCI manifest that is not a ModelPack artifact with raw layers, or a signature that
    /// a registry manifest cannot answer.
    #[error(transparent)]
    Artifact(#[from] crate::oci::ArtifactError),
}

/// Shorthand.
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// A short, stable label for metrics and JSON output.
    pub fn kind(&self) -> &'static str {
        match self {
            Error::Bundle(_) => "invalid_bundle",
            Error::Statement(_) => "invalid_statement",
            Error::Key(_) => "key",
            Error::Certificate(_) => "certificate",
            Error::Hash(_) => "model_unreadable",
            Error::Mismatch(_) => "model_mismatch",
            Error::KeyMismatch(_) => "key_mismatch",
            Error::BadSignature(_) => "bad_signature",
            Error::WrongMethod { .. } => "wrong_method",
            Error::NoTrustedCa => "usage",
            Error::SymlinkNotAllowed { .. } => "usage",
            Error::CertificateKeyMismatch => "certificate_key_mismatch",
            Error::Usage(_) => "usage",
            Error::Sigstore(e) => e.kind(),
            Error::Artifact(_) => "invalid_artifact",
        }
    }
}
