//! The `sigstore` method: offline verification of keyless (Fulcio + Rekor) signatures.
//!
//! The cryptographic checks are those of `sigstore-verify` (pinned), run against a trust root
//! that is embedded or given as a file, never fetched:
//!
//! 1. the Fulcio certificate chains to a trusted CA, with EKU codeSigning, at every verified
//!    signing time;
//! 2. its embedded SCT verifies against a trusted CT log key;
//! 3. each Rekor entry's inclusion proof leads to a checkpoint signed by a trusted log key, its
//!    signed entry timestamp (SET) verifies, and its integrated time lies within the
//!    certificate's validity and not in the future (RFC 3161 timestamps, when present, too);
//! 4. the DSSE signature verifies with the certificate's key, and the statement's subject is the
//!    model's root digest;
//! 5. the log entry's body describes this envelope (payload hash, signature) and certificate.
//!
//! Checks made here on top of that: the bundle must carry at least one Rekor entry and every
//! entry an inclusion proof (the library is satisfied with one proof among several entries, or a
//! timestamp alone); the identity is compared with *every* SAN (email, URI and Fulcio's otherName
//! username), exactly or as a full-match regular expression; the issuer is read from extension
//! 1.3.6.1.4.1.57264.1.8, else the legacy .1.1, and compared exactly or by full-match regexp;
//! and the verifier's own evidence flags are asserted, so a relaxed policy can never slip in.

pub mod error;
pub mod identity;
pub mod trust;

use sigstore_types::{Artifact, Sha256Hash, SignatureContent};
use sigstore_verify::{
    CertificateError, Error as VErr, TimestampError, TransparencyLogError, VerificationPolicy,
    Verifier,
};

use crate::bundle::Bundle;
use crate::error::{Error, Result};
use crate::limits::{Limit, LimitExceeded, MAX_KEYLESS_RESOURCES};
use crate::manifest::root_digest;
use crate::statement;
use crate::verify::{EnvelopeVerifier, VerifiedSigner};
pub use error::{Check, SigstoreError, TrustFile};
pub use identity::{CertIdentity, Matcher, San, cert_identity};
pub use trust::SigstoreTrust;

/// Who may have signed: identity and issuer matchers (both required, as for the peer).
#[derive(Debug, Clone)]
pub struct SigstorePolicy {
    /// Compared with every SAN of the certificate.
    pub identity: Matcher,
    /// Compared with the OIDC issuer extension.
    pub issuer: Matcher,
}

/// The `sigstore` method's verifier.
pub struct SigstoreVerifier {
    trust: SigstoreTrust,
    verifier: Verifier,
    policy: SigstorePolicy,
}

impl SigstoreVerifier {
    /// Verifies against `trust`, accepting only signers that satisfy `policy`.
    pub fn new(trust: SigstoreTrust, policy: SigstorePolicy) -> Result<Self> {
        let verifier = Verifier::new(trust.root()).map_err(|e| SigstoreError::TrustRoot {
            name: trust.name().to_string(),
            detail: e.to_string(),
        })?;
        Ok(SigstoreVerifier {
            trust,
            verifier,
            policy,
        })
    }

    /// The trust root in use.
    pub fn trust(&self) -> &SigstoreTrust {
        &self.trust
    }
}

fn check_err(check: Check, detail: impl std::fmt::Display, trust: &SigstoreTrust) -> SigstoreError {
    SigstoreError::Check {
        check,
        detail: detail.to_string(),
        root: trust.name().to_string(),
    }
}

/// Maps a `sigstore-verify` error to the check that failed.
fn classify(e: &VErr) -> Check {
    match e {
        VErr::Certificate(c) => match c {
            CertificateError::Sct(_) => Check::Sct,
            CertificateError::NotYetValid { .. } | CertificateError::Expired { .. } => {
                Check::SigningTime
            }
            // webpki checks validity at the verified signing time during chain building.
            CertificateError::ChainInvalid(d)
                if d.contains("CertExpired") || d.contains("CertNotValidYet") =>
            {
                Check::SigningTime
            }
            _ => Check::CertificateChain,
        },
        VErr::TransparencyLog(t) => match t {
            TransparencyLogError::UnknownLog { .. } => Check::UnknownLog,
            // sigstore-verify 0.15.1 reports "no key for this log" inside these two variants.
            TransparencyLogError::Checkpoint(d) if d.starts_with("No matching Rekor key") => {
                Check::UnknownLog
            }
            TransparencyLogError::InclusionPromise(d) if d.starts_with("No log key valid") => {
                Check::UnknownLog
            }
            TransparencyLogError::Checkpoint(_) => Check::Checkpoint,
            TransparencyLogError::InclusionProof(_) => Check::InclusionProof,
            TransparencyLogError::InclusionPromise(_) => Check::SignedEntryTimestamp,
            TransparencyLogError::EntryMismatch(_) | TransparencyLogError::MalformedEntry(_) => {
                Check::LogEntryMismatch
            }
            TransparencyLogError::IntegratedTime(_) => Check::SigningTime,
            _ => Check::LogEntryMismatch,
        },
        VErr::Timestamp(t) => match t {
            TimestampError::NoVerifiedTimestamp(_) => Check::SigningTime,
            _ => Check::Timestamp,
        },
        VErr::SignatureInvalid(_) => Check::DsseSignature,
        VErr::ArtifactMismatch(_) => Check::SubjectBinding,
        VErr::Bundle(b) => match b {
            sigstore_verify::bundle::Error::CheckpointRootMismatch
            | sigstore_verify::bundle::Error::MissingCheckpoint => Check::Checkpoint,
            sigstore_verify::bundle::Error::LogIndexOutOfRange { .. }
            | sigstore_verify::bundle::Error::MissingInclusionProof(_) => Check::InclusionProof,
            _ => Check::Bundle,
        },
        _ => Check::Bundle,
    }
}

/// What a verified keyless signature established.
#[derive(Debug, Clone)]
pub struct Verified {
    /// The certificate's identity claims.
    pub identity: CertIdentity,
    /// Each Rekor entry: `base URL key <hex id>, entry <index> at <time>`.
    pub logs: Vec<String>,
}

/// Checks that the bundle carries keyless material: a certificate and a log entry.
fn require_keyless_material(bundle: &Bundle, trust: &SigstoreTrust) -> Result<()> {
    let vm = &bundle.verification_material;
    if vm.certificate.is_none() {
        return Err(crate::verify::wrong_method(
            vm,
            crate::verify::SignatureMethod::Sigstore,
        ));
    }
    if vm.tlog_entries.is_empty() {
        return Err(check_err(
            Check::Bundle,
            "it has no transparency log entry; a keyless signature must be logged in Rekor",
            trust,
        )
        .into());
    }
    Ok(())
}

/// Parses the raw bundle for `sigstore-verify` and checks what the library leaves optional.
fn parse_keyless(raw: &[u8], trust: &SigstoreTrust) -> Result<sigstore_types::Bundle> {
    let text = std::str::from_utf8(raw)
        .map_err(|_| check_err(Check::Bundle, "the signature file is not UTF-8 JSON", trust))?;
    let sb =
        sigstore_types::Bundle::from_json(text).map_err(|e| check_err(Check::Bundle, e, trust))?;
    for (i, entry) in sb.verification_material.tlog_entries.iter().enumerate() {
        if entry.inclusion_proof.is_none() {
            return Err(check_err(
                Check::InclusionProof,
                format!("transparency log entry {i} has no inclusion proof"),
                trust,
            )
            .into());
        }
    }
    Ok(sb)
}

/// The digest the statement's subject must carry: the manifest's root digest (v1.0), or for the
/// v0.2 layout (one subject per file) the first file's digest.
fn subject_digest(payload: &[u8]) -> Result<[u8; 32]> {
    let manifest = statement::parse(payload)?;
    let count = manifest.resources.len();
    if count > MAX_KEYLESS_RESOURCES {
        return Err(statement::StatementError::from(LimitExceeded::new(
            Limit::KeylessResources,
            count,
        ))
        .into());
    }
    if manifest.legacy_v01 {
        let first = manifest.resources.first().map(|r| r.digest.as_slice());
        return first
            .and_then(|d| <[u8; 32]>::try_from(d).ok())
            .ok_or_else(|| {
                Error::Statement(statement::StatementError::Malformed(
                    "v0.2 statement without a sha256 subject".into(),
                ))
            });
    }
    Ok(root_digest(&manifest.resources))
}

/// Runs every cryptographic check of a keyless bundle against `verifier`'s root, with no
/// identity policy yet. `payload` is the envelope payload as the caller decoded it.
fn verify_crypto(
    verifier: &Verifier,
    trust: &SigstoreTrust,
    bundle: &Bundle,
    raw: &[u8],
    payload: &[u8],
) -> Result<Verified> {
    // The statement is parsed before the bundle is parsed a second time (by sigstore-types), so
    // that the two never hold memory at once.
    require_keyless_material(bundle, trust)?;
    let digest = subject_digest(payload)?;
    let sb = parse_keyless(raw, trust)?;
    let SignatureContent::DsseEnvelope(env) = &sb.content else {
        return Err(check_err(Check::Bundle, "it has no DSSE envelope", trust).into());
    };
    if env.payload.as_bytes() != payload {
        return Err(check_err(
            Check::Bundle,
            "the envelope payload differs between parsers",
            trust,
        )
        .into());
    }
    let result = verifier
        .verify(
            Artifact::from_digest(Sha256Hash::new(digest)),
            &sb,
            &VerificationPolicy::any_identity(),
        )
        .map_err(|e| match e {
            VErr::InvalidTrustRoot(_) | VErr::TrustRoot(_) | VErr::TrustedCertificate(_) => {
                SigstoreError::TrustRoot {
                    name: trust.name().to_string(),
                    detail: e.to_string(),
                }
            }
            _ => check_err(classify(&e), &e, trust),
        })?;
    // Fail closed should the library ever relax a step by default.
    if !(result.certificate_verified() && result.sct_verified() && result.tlog_verified()) {
        return Err(check_err(
            Check::Bundle,
            "the verifier skipped the certificate, SCT or transparency-log check",
            trust,
        )
        .into());
    }
    let cert = sb
        .signing_certificate()
        .ok_or_else(|| check_err(Check::Bundle, "it has no signing certificate", trust))?;
    let identity =
        cert_identity(cert.as_bytes()).map_err(|e| check_err(Check::CertificateChain, e, trust))?;
    let logs = sb
        .verification_material
        .tlog_entries
        .iter()
        .map(|e| {
            let mut s = format!(
                "{}, entry {}",
                trust.describe_log(e.log_id.key_id.as_bytes()),
                e.log_index.get()
            );
            if let Some(t) = e.integrated_time {
                s.push_str(&format!(" at {t}"));
            }
            s
        })
        .collect();
    Ok(Verified { identity, logs })
}

impl EnvelopeVerifier for SigstoreVerifier {
    fn verify_envelope(
        &self,
        bundle: &Bundle,
        raw: &[u8],
        payload: &[u8],
    ) -> Result<(VerifiedSigner, Vec<String>)> {
        let verified = verify_crypto(&self.verifier, &self.trust, bundle, raw, payload)?;
        let id = &verified.identity;
        let Some(matched) = id
            .sans
            .iter()
            .find(|s| self.policy.identity.matches(s.value()))
        else {
            return Err(SigstoreError::Identity {
                expected: self.policy.identity.to_string(),
                actual: id.sans.iter().map(|s| s.to_string()).collect(),
            }
            .into());
        };
        let issuer = match &id.issuer {
            Some(i) if self.policy.issuer.matches(i) => i.clone(),
            other => {
                return Err(SigstoreError::Issuer {
                    expected: self.policy.issuer.to_string(),
                    actual: other.clone(),
                }
                .into());
            }
        };
        Ok((
            VerifiedSigner::Sigstore {
                identity: matched.value().to_string(),
                issuer,
                root: self.trust.name().to_string(),
                log: verified.logs.join("; "),
            },
            Vec::new(),
        ))
    }
}

/// What `inspect` shows of a keyless signature.
#[derive(Debug, Clone)]
pub struct Description {
    /// The certificate's identity claims (unverified unless `verified_with` is `Ok`).
    pub identity: Option<CertIdentity>,
    /// `Ok((root name, log entries))` for the first embedded root (production, then staging)
    /// under which every cryptographic check passes; `Err(reasons)` otherwise.
    pub verified_with: std::result::Result<(String, Vec<String>), Vec<String>>,
}

/// Describes a keyless signature for `inspect`: its identity claims and which embedded root and
/// Rekor log key verify it (all checks but identity and the model files).
pub fn describe(bundle: &Bundle, raw: &[u8], payload: &[u8]) -> Description {
    let identity = bundle
        .verification_material
        .certificate
        .as_ref()
        .and_then(|c| crate::bundle::decode_base64("certificate", &c.raw_bytes).ok())
        .and_then(|der| cert_identity(&der).ok());
    let mut reasons = Vec::new();
    for trust in [SigstoreTrust::production(), SigstoreTrust::staging()] {
        let outcome = trust.map_err(Error::from).and_then(|t| {
            let v = Verifier::new(t.root()).map_err(|e| SigstoreError::TrustRoot {
                name: t.name().to_string(),
                detail: e.to_string(),
            })?;
            let verified = verify_crypto(&v, &t, bundle, raw, payload)?;
            Ok((t.name().to_string(), verified.logs))
        });
        match outcome {
            Ok(found) => {
                return Description {
                    identity,
                    verified_with: Ok(found),
                };
            }
            Err(e) => reasons.push(e.to_string()),
        }
    }
    Description {
        identity,
        verified_with: Err(reasons),
    }
}
