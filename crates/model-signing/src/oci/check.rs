//! Signing a model from its registry manifest, and verifying a bundle against one: no layer is
//! read, only the manifest's layer digests and paths.
//!
//! The statement is the one signing the pulled directory would write with the defaults
//! (`files`, `sha256`, no symlinks, git paths ignored), so a bundle made from the registry
//! verifies the pulled directory (with this tool or the Python peer), and a bundle made from
//! the directory verifies against the registry.
//!
//! Verification compares the signed files with the manifest's exactly: every layer is mounted
//! by the runtime, so a file the signature does not cover is refused even where a directory
//! verification would excuse it (the signature's recorded `ignore_paths`).

use crate::bundle::Bundle;
use crate::error::{Error, Result};
use crate::hashing::HashAlgorithm;
use crate::manifest::{Method, Serialization, compare, root_digest};
use crate::sign::{SignReport, Signer, sign_statement};
use crate::statement::{self, SignedManifest};
use crate::verify::{EnvelopeVerifier, OpenedSignature, VerifiedSigner, open_signature};
use crate::walk::{GIT_PATHS, Selection};

use super::manifest::{self, ImageManifest};
use super::modelpack::{self, ANNOTATION_TITLE, ArtifactFiles};
use super::{ArtifactError, sha256_digest};

/// The statement signing a manifest makes, and what it covers.
#[derive(Debug, Clone)]
pub struct ManifestStatement {
    /// The in-toto statement (the DSSE payload).
    pub payload: Vec<u8>,
    /// The files the manifest holds.
    pub files: ArtifactFiles,
    /// `sha256:…` of the manifest bytes.
    pub manifest_digest: String,
}

/// The serialization a directory signature records by default: one SHA-256 per file, no
/// symlinks, and the git paths ignored unless the model has files there (signing such a
/// directory needs `--no-ignore-git-paths`, which records no ignore paths).
fn default_serialization(files: &ArtifactFiles) -> Serialization {
    let has_git_files = files.resources.iter().any(|r| {
        r.name
            .path
            .components()
            .first()
            .is_some_and(|c| GIT_PATHS.contains(&c.as_str()))
    });
    let selection = Selection {
        ignore_git_paths: !has_git_files,
        ..Selection::default()
    };
    Serialization {
        method: Method::Files,
        hash: HashAlgorithm::Sha256,
        allow_symlinks: false,
        ignore_paths: selection.recorded_ignore_paths(),
    }
}

/// The OMS subject name for a model in `repository`: the manifest's
/// `org.opencontainers.image.title` (what `oci push` records: the directory's name), else the
/// repository's last component. Informational only: verification never compares it.
pub fn model_name(manifest: &ImageManifest, repository: &str) -> String {
    manifest
        .annotations
        .get(ANNOTATION_TITLE)
        .filter(|t| !t.is_empty())
        .cloned()
        .unwrap_or_else(|| {
            repository
                .rsplit('/')
                .next()
                .unwrap_or(repository)
                .to_string()
        })
}

/// Builds the statement for the ModelPack manifest `manifest_bytes`, named `model_name`.
pub fn statement_for_manifest(
    manifest_bytes: &[u8],
    model_name: &str,
) -> Result<ManifestStatement, ArtifactError> {
    let files = modelpack::files(&manifest::parse(manifest_bytes)?)?;
    let payload = statement::build(model_name, &default_serialization(&files), &files.resources);
    Ok(ManifestStatement {
        payload,
        files,
        manifest_digest: sha256_digest(manifest_bytes),
    })
}

/// Signs the model a ModelPack manifest describes, from the manifest alone.
pub fn sign_manifest(
    manifest_bytes: &[u8],
    model_name: &str,
    signer: &dyn Signer,
) -> Result<(Bundle, SignReport)> {
    let made = statement_for_manifest(manifest_bytes, model_name)?;
    let bundle = sign_statement(&made.payload, signer)?;
    let report = SignReport {
        resources: made.files.resources.len(),
        bytes: made.files.bytes,
        root_digest: hex::encode(root_digest(&made.files.resources)),
        warnings: Vec::new(),
    };
    Ok((bundle, report))
}

/// A bundle that verified against a manifest.
#[derive(Debug)]
pub struct ManifestVerifyReport {
    /// Who signed.
    pub signer: VerifiedSigner,
    /// The signed manifest (its resources equal the artifact's files).
    pub manifest: SignedManifest,
    /// The artifact's files.
    pub files: ArtifactFiles,
    /// `sha256:…` of the manifest bytes that verified: the digest to pin.
    pub manifest_digest: String,
    /// Things worth telling (old signature formats).
    pub warnings: Vec<String>,
}

/// Verifies `bundle_bytes` against the ModelPack manifest `manifest_bytes`: the signature with
/// `verifier` first, then the signed files against the manifest's, exactly (files missing from
/// the artifact, files it has that the signature does not cover, and changed files are named).
///
/// The caller fetched both; it must pin what runs to [`ManifestVerifyReport::manifest_digest`]
/// (the digest of these bytes), so that what verified is what is pulled.
pub fn verify_manifest(
    manifest_bytes: &[u8],
    bundle_bytes: &[u8],
    verifier: &dyn EnvelopeVerifier,
) -> Result<ManifestVerifyReport> {
    let opened = open_files_signature(bundle_bytes, verifier)?;
    let files = modelpack::files(&manifest::parse(manifest_bytes)?)?;
    let mismatch = compare(&opened.manifest.resources, &files.resources, "sha256");
    if !mismatch.is_empty() {
        return Err(Error::Mismatch(mismatch));
    }
    Ok(ManifestVerifyReport {
        signer: opened.signer,
        manifest: opened.manifest,
        files,
        manifest_digest: sha256_digest(manifest_bytes),
        warnings: opened.warnings,
    })
}

/// Opens a bundle with `verifier` (the signature and signer checked, the statement parsed) and
/// refuses a serialization other than one SHA-256 per whole file: what an artifact's files are
/// compared with, from layer digests or from streamed layers.
pub fn open_files_signature(
    bundle_bytes: &[u8],
    verifier: &dyn EnvelopeVerifier,
) -> Result<OpenedSignature> {
    let opened = open_signature(bundle_bytes, verifier)?;
    let s = &opened.manifest.serialization;
    if s.method != Method::Files || s.hash != HashAlgorithm::Sha256 {
        return Err(ArtifactError::Serialization {
            method: s.method.name(),
            hash: s.hash.name(),
        }
        .into());
    }
    Ok(opened)
}

/// Why none of the bundles attached to a manifest verified.
#[derive(Debug)]
pub enum NotVerified {
    /// No bundle was given: the model is unsigned.
    Unsigned,
    /// Each bundle was refused, for the reason at its index.
    Refused(Vec<Error>),
}

/// Verifies the bundles attached to one manifest in turn (as
/// [`super::registry::RegistryClient::bundles`] lists them, model signatures first) and returns
/// the index and report of the first that verifies with `verifier`. One verifying signature is
/// enough: the others may be other signers' (co-signing, rotation) or other kinds of bundles.
pub fn verify_first<'a>(
    manifest_bytes: &[u8],
    bundles: impl IntoIterator<Item = &'a [u8]>,
    verifier: &dyn EnvelopeVerifier,
) -> Result<(usize, ManifestVerifyReport), NotVerified> {
    let mut refused = Vec::new();
    for (i, bundle) in bundles.into_iter().enumerate() {
        match verify_manifest(manifest_bytes, bundle, verifier) {
            Ok(report) => return Ok((i, report)),
            Err(e) => refused.push(e),
        }
    }
    if refused.is_empty() {
        Err(NotVerified::Unsigned)
    } else {
        Err(NotVerified::Refused(refused))
    }
}
