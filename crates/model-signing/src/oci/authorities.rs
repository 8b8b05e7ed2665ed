//! A registry manifest checked against several authorities, with the rule on how many must
//! vouch: the manifest counterpart of [`crate::authorities::verify_with_authorities`], for the
//! operator's admission of models in image volumes.
//!
//! An authority vouches when one of the bundles attached to the manifest verifies with its
//! verifier and signs exactly the manifest's files (layer digests). The manifest is parsed once
//! and a manifest that is not a raw-layer ModelPack artifact is refused as such, not once per
//! authority. Pure: the caller fetched the manifest and the bundles.

use std::fmt;

use crate::authorities::{BuiltAuthority, Required};
use crate::error::Error;
use crate::manifest::compare;
use crate::verify::{EnvelopeVerifier, VerifiedSigner};

use super::check::open_files_signature;
use super::manifest;
use super::modelpack::{self, ArtifactFiles};
use super::{ArtifactError, sha256_digest};

/// An authority that vouched for the manifest.
#[derive(Debug)]
pub struct ManifestVouched {
    /// Its name.
    pub name: String,
    /// Who signed, as its verifier saw it.
    pub signer: VerifiedSigner,
    /// The index of the bundle that verified, in the order given.
    pub bundle: usize,
}

/// Enough authorities vouched.
#[derive(Debug)]
pub struct ManifestAuthoritiesReport {
    /// Those that vouched, in the order given.
    pub vouched: Vec<ManifestVouched>,
    /// Those that did not (allowed by the rule), with why.
    pub refused: Vec<(String, Error)>,
    /// How many had to vouch.
    pub required: usize,
    /// `sha256:…` of the manifest that verified: what to pin.
    pub manifest_digest: String,
    /// The artifact's files.
    pub files: ArtifactFiles,
}

/// Why the manifest is not verified.
#[derive(Debug)]
pub enum ManifestRefusal {
    /// The manifest is not a raw-layer ModelPack artifact (or not a manifest at all).
    Artifact(ArtifactError),
    /// No bundle is attached: the model is unsigned.
    Unsigned,
    /// The rule cannot be met by the authorities given (none, or more asked than given).
    Unsatisfiable {
        /// What the rule asks for.
        required: usize,
        /// How many authorities there are.
        total: usize,
    },
    /// Too few authorities vouched.
    TooFew {
        /// How many had to vouch.
        required: usize,
        /// The names of those that did.
        vouched: Vec<String>,
        /// Those that did not, with the most telling reason among the bundles.
        refused: Vec<(String, Error)>,
        /// How many bundles are attached.
        bundles: usize,
    },
}

impl fmt::Display for ManifestRefusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ManifestRefusal::Artifact(e) => write!(f, "{e}"),
            ManifestRefusal::Unsigned => f.write_str(
                "no model signature is attached to it (sign it with `model-signing oci sign`, or attach a directory's signature with `model-signing oci attach`)",
            ),
            ManifestRefusal::Unsatisfiable { required, total } => write!(
                f,
                "the rule asks for {required} authorities to vouch, but {total} are given"
            ),
            ManifestRefusal::TooFew {
                required,
                vouched,
                refused,
                bundles,
            } => {
                let total = vouched.len() + refused.len();
                if total == 1 {
                    // One authority: its reason is the whole story.
                    if let Some((_, e)) = refused.first() {
                        write!(f, "{e}")?;
                    }
                } else {
                    write!(
                        f,
                        "{required} of {total} authorities must vouch for the model, {} did",
                        vouched.len()
                    )?;
                    if !vouched.is_empty() {
                        write!(f, " ({})", vouched.join(", "))?;
                    }
                    for (name, e) in refused {
                        write!(f, "; {name}: {e}")?;
                    }
                }
                // Said only when it is true: with one authority vouching, some signature did.
                if *bundles > 1 && vouched.is_empty() {
                    write!(f, " (none of the {bundles} attached signatures verified)")?;
                }
                Ok(())
            }
        }
    }
}

impl std::error::Error for ManifestRefusal {}

/// Verifies `bundles` (attached to the manifest `manifest_bytes`) with each authority, and
/// succeeds when at least `required` of them vouch.
pub fn verify_manifest_with_authorities(
    manifest_bytes: &[u8],
    bundles: &[&[u8]],
    authorities: &[BuiltAuthority],
    required: Required,
) -> Result<ManifestAuthoritiesReport, ManifestRefusal> {
    let need = need(authorities, required)?;
    let files = manifest::parse(manifest_bytes)
        .and_then(|m| modelpack::files(&m))
        .map_err(ManifestRefusal::Artifact)?;
    verify_files(
        files,
        sha256_digest(manifest_bytes),
        bundles,
        authorities,
        need,
    )
}

/// Checks, before any file of the artifact is read, that enough authorities have an attached
/// signature whose envelope and signer verify: a modelcar image's layers are then fetched
/// only for a model that can pass ([`verify_files_with_authorities`] decides).
pub fn enough_signers(
    bundles: &[&[u8]],
    authorities: &[BuiltAuthority],
    required: Required,
) -> Result<(), ManifestRefusal> {
    let need = need(authorities, required)?;
    if bundles.is_empty() {
        return Err(ManifestRefusal::Unsigned);
    }
    let mut vouched = Vec::new();
    let mut refused = Vec::new();
    for authority in authorities {
        let mut first_error = None;
        let opens =
            bundles.iter().any(
                |b| match open_files_signature(b, authority.verifier.as_ref()) {
                    Ok(_) => true,
                    Err(e) => {
                        first_error.get_or_insert(e);
                        false
                    }
                },
            );
        match (opens, first_error) {
            (true, _) => vouched.push(authority.name.clone()),
            (false, Some(e)) => refused.push((authority.name.clone(), e)),
            (false, None) => {}
        }
    }
    if vouched.len() < need {
        return Err(ManifestRefusal::TooFew {
            required: need,
            vouched,
            refused,
            bundles: bundles.len(),
        });
    }
    Ok(())
}

/// Verifies `bundles` against the artifact's `files` (e.g. a modelcar image's, hashed from its
/// layers) with each authority; `manifest_digest` is what will be pinned.
pub fn verify_files_with_authorities(
    files: ArtifactFiles,
    manifest_digest: String,
    bundles: &[&[u8]],
    authorities: &[BuiltAuthority],
    required: Required,
) -> Result<ManifestAuthoritiesReport, ManifestRefusal> {
    let need = need(authorities, required)?;
    verify_files(files, manifest_digest, bundles, authorities, need)
}

/// How many must vouch, or the refusal of a rule no list of this length can meet.
fn need(authorities: &[BuiltAuthority], required: Required) -> Result<usize, ManifestRefusal> {
    let total = authorities.len();
    required.need(total).ok_or(ManifestRefusal::Unsatisfiable {
        required: required.of(total),
        total,
    })
}

fn verify_files(
    files: ArtifactFiles,
    manifest_digest: String,
    bundles: &[&[u8]],
    authorities: &[BuiltAuthority],
    need: usize,
) -> Result<ManifestAuthoritiesReport, ManifestRefusal> {
    if bundles.is_empty() {
        return Err(ManifestRefusal::Unsigned);
    }
    let mut vouched = Vec::new();
    let mut refused = Vec::new();
    for authority in authorities {
        match vouch(&files, bundles, authority.verifier.as_ref()) {
            Ok((bundle, signer)) => vouched.push(ManifestVouched {
                name: authority.name.clone(),
                signer,
                bundle,
            }),
            Err(e) => refused.push((authority.name.clone(), e)),
        }
    }
    if vouched.len() < need {
        return Err(ManifestRefusal::TooFew {
            required: need,
            vouched: vouched.into_iter().map(|v| v.name).collect(),
            refused,
            bundles: bundles.len(),
        });
    }
    Ok(ManifestAuthoritiesReport {
        vouched,
        refused,
        required: need,
        manifest_digest,
        files,
    })
}

/// The first bundle that `verifier` accepts and that signs exactly `files`; else the most
/// telling refusal: a signature that verified but signs other files says more than another
/// signer's signature.
fn vouch(
    files: &ArtifactFiles,
    bundles: &[&[u8]],
    verifier: &dyn EnvelopeVerifier,
) -> Result<(usize, VerifiedSigner), Error> {
    let mut first_error = None;
    for (i, bundle) in bundles.iter().enumerate() {
        let opened = match open_files_signature(bundle, verifier) {
            Ok(o) => o,
            Err(e) => {
                first_error.get_or_insert(e);
                continue;
            }
        };
        let mismatch = compare(&opened.manifest.resources, &files.resources, "sha256");
        if mismatch.is_empty() {
            return Ok((i, opened.signer));
        }
        // This signer signed other files: that is the reason to report.
        first_error = Some(Error::Mismatch(mismatch));
    }
    // Every caller refuses an empty list as unsigned first, so one of the two arms above ran.
    Err(first_error.unwrap_or(Error::NoTrustedCa))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::authorities::AuthoritiesDocument;
    use crate::keys::{PrivateKey, fresh_p256_private_pem};
    use crate::oci::check::sign_manifest;
    use crate::oci::modelpack;
    use crate::sign::KeySigner;

    /// A raw-layer ModelPack manifest for two files.
    fn manifest(weights: &[u8]) -> Vec<u8> {
        let file = |path: &str, bytes: &[u8]| modelpack::PackFile {
            path: crate::name::ModelPath::parse(path).unwrap(),
            sha256: crate::hashing::sha256(bytes),
            size: bytes.len() as u64,
        };
        modelpack::pack(
            "m",
            &[file("weights.bin", weights), file("config.json", b"{}")],
        )
        .unwrap()
        .manifest
    }

    fn key() -> (KeySigner, String) {
        let pem = fresh_p256_private_pem();
        let private = PrivateKey::from_pem("k", pem.as_bytes(), None).unwrap();
        let public = crate::keys::to_pem("PUBLIC KEY", private.public_key().spki_der());
        (KeySigner::new(private), public)
    }

    fn authorities(keys: &[&str], required: &str) -> (Vec<BuiltAuthority>, Required) {
        let doc = serde_json::json!({
            "required": required,
            "authorities": keys.iter().enumerate().map(|(i, k)| serde_json::json!({"name": format!("a{i}"), "key": {"pem": k}})).collect::<Vec<_>>(),
        });
        let doc = AuthoritiesDocument::from_json("test", doc.to_string().as_bytes()).unwrap();
        (
            doc.build(std::time::SystemTime::now()).unwrap(),
            doc.required,
        )
    }

    fn sign(manifest: &[u8], signer: &KeySigner) -> Vec<u8> {
        sign_manifest(manifest, "m", signer)
            .unwrap()
            .0
            .to_json()
            .into_bytes()
    }

    #[test]
    fn any_authority_vouches_and_the_digest_is_the_manifests() {
        let m = manifest(b"weights");
        let (k1, p1) = key();
        let (_, p2) = key();
        let b = sign(&m, &k1);
        let (a, r) = authorities(&[&p2, &p1], "any");
        let report = verify_manifest_with_authorities(&m, &[&b], &a, r).unwrap();
        assert_eq!(report.vouched.len(), 1);
        assert_eq!(report.vouched[0].name, "a1");
        assert_eq!(report.manifest_digest, sha256_digest(&m));
    }

    #[test]
    fn all_needs_every_cosigner_among_the_bundles() {
        let m = manifest(b"weights");
        let (k1, p1) = key();
        let (k2, p2) = key();
        let (a, r) = authorities(&[&p1, &p2], "all");
        let b1 = sign(&m, &k1);
        let err = verify_manifest_with_authorities(&m, &[&b1], &a, r).unwrap_err();
        let text = err.to_string();
        assert!(
            text.contains("2 of 2 authorities must vouch for the model, 1 did (a0)"),
            "{text}"
        );
        assert!(text.contains("a1: "), "{text}");
        assert!(
            !text.contains("none of the"),
            "a0's signature did verify: {text}"
        );
        let b2 = sign(&m, &k2);
        let report = verify_manifest_with_authorities(&m, &[&b1, &b2], &a, r).unwrap();
        assert_eq!(
            report.vouched.iter().map(|v| v.bundle).collect::<Vec<_>>(),
            [0, 1]
        );
    }

    #[test]
    fn unsigned_and_not_modelpack_are_named() {
        let m = manifest(b"weights");
        let (_, p1) = key();
        let (a, r) = authorities(&[&p1], "any");
        let err = verify_manifest_with_authorities(&m, &[], &a, r).unwrap_err();
        assert!(matches!(err, ManifestRefusal::Unsigned));
        assert!(err.to_string().contains("no model signature is attached"));
        let err = verify_manifest_with_authorities(b"{}", &[], &a, r).unwrap_err();
        assert!(matches!(err, ManifestRefusal::Artifact(_)), "{err}");
    }

    #[test]
    fn a_signature_of_other_files_is_reported_over_another_signers() {
        let signed = manifest(b"weights");
        let served = manifest(b"tampered");
        let (k1, p1) = key();
        let (k2, _) = key();
        let (a, r) = authorities(&[&p1], "any");
        let other_signer = sign(&served, &k2);
        let old = sign(&signed, &k1);
        let err = verify_manifest_with_authorities(&served, &[&other_signer, &old], &a, r)
            .unwrap_err()
            .to_string();
        assert!(err.contains("weights.bin"), "{err}");
        assert!(
            err.contains("none of the 2 attached signatures verified"),
            "{err}"
        );
        // The passing twin: the signature of the served manifest by the trusted key.
        let good = sign(&served, &k1);
        verify_manifest_with_authorities(&served, &[&other_signer, &old, &good], &a, r).unwrap();
    }

    #[test]
    fn signers_are_checked_before_files_are_read() {
        let m = manifest(b"weights");
        let (k1, p1) = key();
        let (k2, _) = key();
        let (a, r) = authorities(&[&p1], "any");
        assert!(matches!(
            enough_signers(&[], &a, r),
            Err(ManifestRefusal::Unsigned)
        ));
        let foreign = sign(&m, &k2);
        let err = enough_signers(&[&foreign], &a, r).unwrap_err().to_string();
        assert!(err.contains("key"), "{err}");
        // Twin: the trusted signer's bundle passes the envelope check, whatever it signs.
        let other_model = sign(&manifest(b"other"), &k1);
        enough_signers(&[&foreign, &other_model], &a, r).unwrap();
    }

    #[test]
    fn a_rule_no_list_can_meet_is_refused_before_anything_is_read() {
        let (_, p1) = key();
        let (a, _) = authorities(&[&p1], "any");
        let err = verify_manifest_with_authorities(b"not json", &[], &a, Required::AtLeast(2))
            .unwrap_err();
        assert!(matches!(
            err,
            ManifestRefusal::Unsatisfiable {
                required: 2,
                total: 1
            }
        ));
    }
}
