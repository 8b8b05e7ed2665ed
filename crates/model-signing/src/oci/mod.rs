//! Models as OCI artifacts: CNCF ModelPack manifests, signed and verified without downloading a
//! layer.
//!
//! A ModelPack artifact with raw layers (`application/vnd.cncf.model.*.v1.raw`) stores each
//! file of the model as one layer, named by its `org.cncf.model.filepath` annotation. A raw
//! layer's digest is the SHA-256 of the file's bytes, which is exactly what an OMS `files`
//! manifest records for that file. So the registry manifest alone says what signing the pulled
//! directory would sign, and a signature can be checked against it: the runtime later checks
//! every blob it pulls against the same digests.
//!
//! The pure parts live here, with no IO:
//! - [`manifest`]: parsing an OCI image manifest (bounded, never panics);
//! - [`modelpack`]: mapping a ModelPack manifest to the model's files, and building one for a
//!   directory (what `oci push` uploads);
//! - [`referrer`]: the manifest that attaches a Sigstore bundle to a model as an OCI 1.1
//!   referrer, and the referrers tag schema's index for registries without the referrers API;
//! - [`authorities`]: a manifest checked against several authorities (the operator's
//!   admission, with a policy's rule on how many must vouch);
//! - [`check`]: the statement signing the manifest makes, and verifying a bundle against a
//!   manifest (what the operator calls at admission with the bytes it fetched);
//! - [`modelcar`]: modelcar images (tar layers under a model directory, as KServe's), whose
//!   files are hashed by streaming the layers once, and verified against a signature;
//! - [`credentials`]: reading docker `config.json` credentials.
//!
//! Talking to registries ([`registry`], with oci-client) is behind the `registry` cargo
//! feature, so that the verifier injected into pods carries no HTTP stack.

pub mod authorities;
pub mod check;
pub mod credentials;
mod error;
pub mod manifest;
pub mod modelcar;
pub mod modelpack;
pub mod referrer;
#[cfg(feature = "registry")]
pub mod registry;

pub use error::ArtifactError;

/// The media type of an OCI image manifest (ModelPack artifacts and bundle referrers are both).
pub const IMAGE_MANIFEST_MEDIA_TYPE: &str = "application/vnd.oci.image.manifest.v1+json";
/// The media type of an OCI image index (the referrers API's answer and tag-schema index).
pub const IMAGE_INDEX_MEDIA_TYPE: &str = "application/vnd.oci.image.index.v1+json";
/// The artifact type (and layer media type) of a Sigstore bundle attached as a referrer.
pub const BUNDLE_ARTIFACT_TYPE: &str = "application/vnd.dev.sigstore.bundle.v0.3+json";
/// The empty config of artifacts that need none (OCI image spec, "Guidelines for Artifact
/// Usage"): the two bytes `{}`.
pub const EMPTY_MEDIA_TYPE: &str = "application/vnd.oci.empty.v1+json";

/// The largest manifest (or index) read: the OCI distribution spec asks registries to accept
/// at least 4 MiB, and distribution refuses larger ones. At about 300 bytes per layer
/// descriptor this holds a ModelPack of some 13,000 files.
pub const MAX_MANIFEST_BYTES: usize = 4 * 1024 * 1024;

/// `sha256:<hex>` of `bytes`, the OCI digest of a blob or manifest.
pub fn sha256_digest(bytes: &[u8]) -> String {
    format!("sha256:{}", hex::encode(crate::hashing::sha256(bytes)))
}
