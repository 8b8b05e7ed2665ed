//! Why an OCI manifest cannot be read as a model, or cannot be compared with a signature.

use crate::name::NameError;

/// A manifest that is not a ModelPack artifact this engine can map to files, or a signature
/// whose serialization a registry manifest cannot answer.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ArtifactError {
    /// More bytes than [`super::MAX_MANIFEST_BYTES`].
    #[error(
        "the manifest has {0} bytes, more than the limit of {limit} (4 MiB, the size registries accept)",
        limit = super::MAX_MANIFEST_BYTES
    )]
    TooLarge(usize),
    /// Not JSON of the shape of an OCI image manifest.
    #[error("the manifest is not a valid OCI image manifest: {0}")]
    Malformed(String),
    /// An image index, a Docker manifest, or anything but an OCI image manifest.
    #[error(
        "the reference names {0}, not an OCI image manifest: give the reference of the model's manifest itself"
    )]
    NotAManifest(String),
    /// An OCI image manifest whose artifact type is not ModelPack's.
    #[error(
        "the manifest is not a ModelPack model: its artifactType is {}, expected {expected:?}",
        .0.as_deref().map_or("missing".to_string(), |t| format!("{t:?}")),
        expected = super::modelpack::ARTIFACT_TYPE
    )]
    NotModelPack(Option<String>),
    /// A ModelPack manifest whose config is not a ModelPack config.
    #[error(
        "the manifest's config has media type {0:?}, expected {expected:?}",
        expected = super::modelpack::CONFIG_MEDIA_TYPE
    )]
    WrongConfig(String),
    /// No layers: an empty model cannot be signed or verified (OMS v1.0 section 5.2.1).
    #[error("the model has no layers: an empty model cannot be signed or verified")]
    NoLayers,
    /// More layers than a signed manifest may list.
    #[error(
        "the manifest has {0} layers, more than the limit of {limit} files",
        limit = crate::limits::MAX_RESOURCES
    )]
    TooManyLayers(usize),
    /// A layer that is not one raw file: a tar, a compressed tar, or an unknown type.
    #[error(
        "layer {index} ({media_type}) is not a raw file layer: only ModelPack `.raw` layers, whose digest is the file's SHA-256, can be checked against a signature without downloading them{}",
        if super::modelcar::layer_compression(.media_type).is_some() { "; an image with tar layers (a modelcar image) is verified by streaming its layers, with the model's directory in the image given (the CLI's --modelcar-root)" } else if .media_type.contains(".tar") { "; ModelPack tar layers are not supported" } else { "" }
    )]
    UnsupportedLayer {
        /// Position in `layers`.
        index: usize,
        /// Its media type.
        media_type: String,
    },
    /// A raw layer without the `org.cncf.model.filepath` annotation.
    #[error(
        "layer {index} ({digest}) has no {annotation} annotation: the file's path is unknown",
        annotation = super::modelpack::ANNOTATION_FILEPATH
    )]
    MissingPath {
        /// Position in `layers`.
        index: usize,
        /// Its digest.
        digest: String,
    },
    /// A path that would leave the model root, or is not normalized.
    #[error("layer {index} has an unsafe file path: {source}")]
    BadPath {
        /// Position in `layers`.
        index: usize,
        /// Why the path is refused.
        source: NameError,
    },
    /// Two layers with the same path.
    #[error("two layers have the file path {0:?}")]
    DuplicatePath(String),
    /// One layer's path is a directory of another's.
    #[error("{file:?} is a file layer and also a directory of {other:?}")]
    FileAndDirectory {
        /// The file.
        file: String,
        /// The path below it.
        other: String,
    },
    /// A digest that is not `sha256:` and 64 lowercase hex digits.
    #[error(
        "layer {index} has digest {digest:?}: only sha256 digests (sha256: and 64 lowercase hex digits) name a file's SHA-256"
    )]
    BadDigest {
        /// Position in `layers`.
        index: usize,
        /// The digest as written.
        digest: String,
    },
    /// A modelcar image (tar layers) that cannot be read as a model.
    #[error(transparent)]
    Modelcar(#[from] super::modelcar::ModelcarError),
    /// A signature made with another serialization than one SHA-256 per whole file.
    #[error(
        "the signature was made with the {method} method and {hash} digests; a registry manifest records one SHA-256 per whole file, so only signatures made with the default serialization (files, sha256) can be checked against it"
    )]
    Serialization {
        /// `files` or `shards`.
        method: &'static str,
        /// The resource digest algorithm.
        hash: &'static str,
    },
}
