//! Why keyless verification failed: which check, and what to do next (in words that name no
//! command-line flag; the caller words its own options).

/// Which keyless check failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Check {
    /// The bundle is not a well-formed keyless Sigstore bundle.
    Bundle,
    /// Fulcio chain, codeSigning EKU, or the CA's validity window.
    CertificateChain,
    /// The certificate's signed certificate timestamp.
    Sct,
    /// Signing time (integrated time / RFC 3161) vs. certificate validity and the clock.
    SigningTime,
    /// An RFC 3161 timestamp vs. the trusted timestamp authorities.
    Timestamp,
    /// The Rekor Merkle inclusion proof.
    InclusionProof,
    /// The Rekor checkpoint (signed tree head) signature.
    Checkpoint,
    /// The Rekor signed entry timestamp (inclusion promise).
    SignedEntryTimestamp,
    /// The Rekor entry's log key is not in the trust root (wrong or outdated root).
    UnknownLog,
    /// The Rekor entry body vs. the envelope and certificate.
    LogEntryMismatch,
    /// The DSSE signature.
    DsseSignature,
    /// The statement subject vs. the manifest's root digest.
    SubjectBinding,
}

impl Check {
    /// Stable label (JSON `error.kind`).
    pub fn kind(self) -> &'static str {
        match self {
            Check::Bundle => "sigstore_bundle",
            Check::CertificateChain => "sigstore_certificate_chain",
            Check::Sct => "sigstore_sct",
            Check::SigningTime => "sigstore_signing_time",
            Check::Timestamp => "sigstore_timestamp",
            Check::InclusionProof => "sigstore_inclusion_proof",
            Check::Checkpoint => "sigstore_checkpoint",
            Check::SignedEntryTimestamp => "sigstore_signed_entry_timestamp",
            Check::UnknownLog => "sigstore_unknown_log",
            Check::LogEntryMismatch => "sigstore_log_entry_mismatch",
            Check::DsseSignature => "bad_signature",
            Check::SubjectBinding => "sigstore_subject_binding",
        }
    }

    fn what(self) -> &'static str {
        match self {
            Check::Bundle => "the signature is not a usable keyless Sigstore bundle",
            Check::CertificateChain => {
                "the signing certificate does not chain to a trusted Fulcio CA with the codeSigning usage"
            }
            Check::Sct => {
                "the signing certificate's SCT does not verify against the trusted CT log keys"
            }
            Check::SigningTime => {
                "no verified signing time (Rekor integrated time or RFC 3161 timestamp) inside the certificate's validity and not in the future"
            }
            Check::Timestamp => {
                "an RFC 3161 timestamp in the signature does not verify against the trusted timestamp authorities"
            }
            Check::InclusionProof => {
                "the Rekor inclusion proof does not prove the entry is in the log"
            }
            Check::Checkpoint => "the Rekor checkpoint is not signed by a trusted log key",
            Check::SignedEntryTimestamp => {
                "the Rekor signed entry timestamp (SET) does not verify with a trusted log key"
            }
            Check::LogEntryMismatch => {
                "the Rekor entry does not describe this envelope and certificate"
            }
            Check::UnknownLog => {
                "the Rekor entry was logged by a transparency log whose key (valid at that time) is not in the trust root"
            }
            Check::DsseSignature => {
                "the envelope's signature does not verify with the signing certificate's key"
            }
            Check::SubjectBinding => {
                "the signed statement's subject is not the root digest of its manifest"
            }
        }
    }

    fn next(self) -> &'static str {
        match self {
            Check::Bundle => {
                "check that the file is the model's keyless signature (inspect it with `model-signing inspect`)"
            }
            Check::Timestamp => {
                "if the model was signed with another Sigstore instance, verify with that instance's trust root; a trust root without this timestamp authority cannot accept the signature (a timestamp that is present must verify); otherwise the timestamp was altered"
            }
            Check::CertificateChain | Check::Sct | Check::UnknownLog => {
                "if the model was signed with another Sigstore instance, verify with that instance's trust root; if it was signed after this root was released, point at a newer trusted root (docs/sigstore.md); otherwise the certificate is not from a trusted Fulcio"
            }
            Check::SigningTime => {
                "a keyless certificate is valid for minutes only, so without a verified time inside that window the signature cannot be trusted: get the complete signature (with its log entry) from its publisher; if this machine's clock is wrong, fix it"
            }
            Check::InclusionProof
            | Check::Checkpoint
            | Check::SignedEntryTimestamp
            | Check::LogEntryMismatch => {
                "the transparency-log material in the signature was altered or belongs to another signature: get the signature again from its publisher; if the log key is newer than this trust root, point at a newer trusted root (docs/sigstore.md)"
            }
            Check::DsseSignature | Check::SubjectBinding => {
                "the signed payload or its signature was altered: get the signature again from its publisher"
            }
        }
    }
}

/// The two kinds of Sigstore trust file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TrustFile {
    /// A plain `trusted_root.json`.
    TrustedRoot,
    /// A ClientTrustConfig (a trusted root plus a signing config).
    ClientTrustConfig,
}

impl TrustFile {
    fn other(self) -> Self {
        match self {
            TrustFile::TrustedRoot => TrustFile::ClientTrustConfig,
            TrustFile::ClientTrustConfig => TrustFile::TrustedRoot,
        }
    }
}

impl std::fmt::Display for TrustFile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            TrustFile::TrustedRoot => "a plain trusted root",
            TrustFile::ClientTrustConfig => "a ClientTrustConfig",
        })
    }
}

/// Why keyless verification failed.
#[derive(Debug, thiserror::Error)]
pub enum SigstoreError {
    /// The trust root cannot be used.
    #[error("Sigstore trust root {name}: {detail}")]
    TrustRoot {
        /// Embedded root name or file path.
        name: String,
        /// What is wrong.
        detail: String,
    },
    /// A cryptographic or structural check failed.
    #[error("{}: {detail} (trust root: {root}); {}", .check.what(), .check.next())]
    Check {
        /// Which check.
        check: Check,
        /// The verifier's detail.
        detail: String,
        /// The trust root used.
        root: String,
    },
    /// A trust file of the other kind was given: a ClientTrustConfig where a plain trusted root
    /// was expected, or the reverse.
    #[error("Sigstore trust root {name}: this is {found}, not {}", .found.other())]
    WrongTrustFile {
        /// The file.
        name: String,
        /// What it is.
        found: TrustFile,
    },
    /// No SAN matched the expected identity.
    #[error(
        "identity mismatch: the signing certificate was issued to {}, expected {expected}; the identity must equal one of the certificate's SANs (email, URI or username)",
        display_sans(.actual)
    )]
    Identity {
        /// The matcher, as text.
        expected: String,
        /// The certificate's SANs.
        actual: Vec<String>,
    },
    /// The OIDC issuer does not match.
    #[error(
        "issuer mismatch: the signing certificate's OIDC issuer is {}, expected {expected}; issuers are compared exactly (a trailing slash matters)",
        .actual.as_deref().map(|a| format!("{a:?}")).unwrap_or_else(|| "absent (no extension 1.3.6.1.4.1.57264.1.8 or .1.1)".into())
    )]
    Issuer {
        /// The matcher, as text.
        expected: String,
        /// The certificate's issuer.
        actual: Option<String>,
    },
}

fn display_sans(sans: &[String]) -> String {
    if sans.is_empty() {
        "no email, URI or username SAN".to_string()
    } else {
        sans.join(", ")
    }
}

impl SigstoreError {
    /// Stable label (JSON `error.kind`).
    pub fn kind(&self) -> &'static str {
        match self {
            SigstoreError::TrustRoot { .. } | SigstoreError::WrongTrustFile { .. } => {
                "sigstore_trust_root"
            }
            SigstoreError::Check { check, .. } => check.kind(),
            SigstoreError::Identity { .. } => "identity_mismatch",
            SigstoreError::Issuer { .. } => "issuer_mismatch",
        }
    }

    /// The failed check, for `Check` errors.
    pub fn check(&self) -> Option<Check> {
        match self {
            SigstoreError::Check { check, .. } => Some(*check),
            _ => None,
        }
    }
}
