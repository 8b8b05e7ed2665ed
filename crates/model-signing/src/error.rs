//! The one error type of the engine: each variant says what is wrong and what to do next.

use crate::bundle::BundleError;
use crate::keys::KeyError;
use crate::manifest::Mismatch;
use crate::serialize::HashError;
use crate::sigstore::SigstoreError;
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
    #[error("{0}")]
    WrongMethod(String),
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
            Error::WrongMethod(_) => "wrong_method",
            Error::CertificateKeyMismatch => "certificate_key_mismatch",
            Error::Usage(_) => "usage",
            Error::Sigstore(e) => e.kind(),
        }
    }
}
