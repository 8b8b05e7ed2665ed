//! CNCF ModelPack (github.com/modelpack/model-spec, `specs-go/v1`): mapping a manifest with raw
//! layers to the model's files, and building one for a directory.
//!
//! Only raw layers map to files: a raw layer is the file's bytes, so its digest is the file's
//! SHA-256 and its `org.cncf.model.filepath` annotation its path. A tar layer's digest covers
//! an archive of files (and a compressed one's, the compressed archive), which says nothing
//! about each file's digest without reading the layer.

use std::collections::{BTreeMap, BTreeSet};

use serde::Serialize;

use super::manifest::{Descriptor, ImageManifest};
use super::{ArtifactError, IMAGE_MANIFEST_MEDIA_TYPE, sha256_digest};
use crate::limits::MAX_RESOURCES;
use crate::manifest::{Resource, sort_resources};
use crate::name::{ModelPath, ResourceName};

/// The manifest's `artifactType`.
pub const ARTIFACT_TYPE: &str = "application/vnd.cncf.model.manifest.v1+json";
/// The config's media type.
pub const CONFIG_MEDIA_TYPE: &str = "application/vnd.cncf.model.config.v1+json";
/// The layer annotation that names the file.
pub const ANNOTATION_FILEPATH: &str = "org.cncf.model.filepath";
/// The layer annotation that says the media type was guessed (`"true"`) or known (`"false"`).
pub const ANNOTATION_UNTESTED: &str = "org.cncf.model.file.mediatype.untested";
/// The manifest annotation with the model's name (the OMS subject name when signing).
pub const ANNOTATION_TITLE: &str = "org.opencontainers.image.title";

/// What a layer holds, by the category in its media type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Category {
    /// `weight`: the weights.
    Weight,
    /// `weight.config`: tokenizer.json, config.json and the like.
    WeightConfig,
    /// `doc`: README, LICENSE.
    Doc,
    /// `code`: scripts.
    Code,
    /// `dataset`.
    Dataset,
}

impl Category {
    const ALL: [Category; 5] = [
        Category::Weight,
        Category::WeightConfig,
        Category::Doc,
        Category::Code,
        Category::Dataset,
    ];

    /// `application/vnd.cncf.model.<category>.v1.raw`.
    pub fn raw_media_type(self) -> &'static str {
        match self {
            Category::Weight => "application/vnd.cncf.model.weight.v1.raw",
            Category::WeightConfig => "application/vnd.cncf.model.weight.config.v1.raw",
            Category::Doc => "application/vnd.cncf.model.doc.v1.raw",
            Category::Code => "application/vnd.cncf.model.code.v1.raw",
            Category::Dataset => "application/vnd.cncf.model.dataset.v1.raw",
        }
    }
}

/// True for the five ModelPack raw layer media types.
pub fn is_raw(media_type: &str) -> bool {
    Category::ALL
        .iter()
        .any(|c| c.raw_media_type() == media_type)
}

/// The category a packager gives a file by its name, and whether that was a guess (the
/// `untested` annotation): weights by their formats' extensions, configs and tokenizers,
/// documentation and code; anything else is a weight, guessed.
pub fn categorize(path: &ModelPath) -> (Category, bool) {
    let name = path
        .components()
        .last()
        .map(|s| s.to_ascii_lowercase())
        .unwrap_or_default();
    let ext = name.rsplit_once('.').map(|(_, e)| e).unwrap_or("");
    let known = match ext {
        "safetensors" | "gguf" | "bin" | "pt" | "pth" | "onnx" | "h5" | "ckpt" | "pb"
        | "tflite" | "msgpack" | "npz" | "mlmodel" | "keras" => Some(Category::Weight),
        "json" | "yaml" | "yml" | "model" | "tiktoken" | "txt"
            if name.starts_with("tokenizer")
                || name.starts_with("config")
                || name.starts_with("generation_config")
                || name.starts_with("special_tokens")
                || name.starts_with("vocab")
                || name.starts_with("merges")
                || name.starts_with("preprocessor")
                || name.starts_with("chat_template") =>
        {
            Some(Category::WeightConfig)
        }
        "json" | "yaml" | "yml" | "toml" | "jinja" => Some(Category::WeightConfig),
        "md" | "rst" | "txt" | "pdf" | "html" => Some(Category::Doc),
        "py" | "sh" | "ipynb" | "js" | "ts" | "rs" | "go" | "c" | "cc" | "cpp" | "h" => {
            Some(Category::Code)
        }
        "csv" | "parquet" | "jsonl" | "arrow" | "tfrecord" => Some(Category::Dataset),
        _ if name.starts_with("readme")
            || name.starts_with("license")
            || name.starts_with("notice")
            || name.starts_with("copying") =>
        {
            Some(Category::Doc)
        }
        _ => None,
    };
    match known {
        Some(c) => (c, false),
        None => (Category::Weight, true),
    }
}

/// The files a ModelPack manifest holds: one resource per raw layer (path from
/// `org.cncf.model.filepath`, SHA-256 from the layer digest), sorted as a signature lists them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ArtifactFiles {
    /// The files, sorted.
    pub resources: Vec<Resource>,
    /// Their total size, as the layer descriptors say.
    pub bytes: u64,
}

/// `sha256:` and 64 lowercase hex digits (the OCI image spec's encoding for sha256), as raw
/// bytes.
fn sha256_of(digest: &str) -> Option<Vec<u8>> {
    let hex_part = digest.strip_prefix("sha256:")?;
    if hex_part.len() != 64
        || !hex_part
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    {
        return None;
    }
    hex::decode(hex_part).ok()
}

/// Maps a ModelPack manifest to its files. Refuses anything that is not a ModelPack, any layer
/// that is not a raw file with a safe path and a sha256 digest, and duplicate paths.
pub fn files(manifest: &ImageManifest) -> Result<ArtifactFiles, ArtifactError> {
    if manifest.artifact_type.as_deref() != Some(ARTIFACT_TYPE) {
        return Err(ArtifactError::NotModelPack(manifest.artifact_type.clone()));
    }
    if manifest.config.media_type != CONFIG_MEDIA_TYPE {
        return Err(ArtifactError::WrongConfig(
            manifest.config.media_type.clone(),
        ));
    }
    if manifest.layers.is_empty() {
        return Err(ArtifactError::NoLayers);
    }
    if manifest.layers.len() > MAX_RESOURCES {
        return Err(ArtifactError::TooManyLayers(manifest.layers.len()));
    }
    let mut resources = Vec::with_capacity(manifest.layers.len());
    let mut bytes = 0u64;
    for (index, layer) in manifest.layers.iter().enumerate() {
        if !is_raw(&layer.media_type) {
            return Err(ArtifactError::UnsupportedLayer {
                index,
                media_type: layer.media_type.clone(),
            });
        }
        let digest = sha256_of(&layer.digest).ok_or_else(|| ArtifactError::BadDigest {
            index,
            digest: layer.digest.clone(),
        })?;
        let path = layer.annotations.get(ANNOTATION_FILEPATH).ok_or_else(|| {
            ArtifactError::MissingPath {
                index,
                digest: layer.digest.clone(),
            }
        })?;
        let path =
            ModelPath::parse(path).map_err(|source| ArtifactError::BadPath { index, source })?;
        if path.is_root() {
            // "." names the model root: a directory, never one of its files.
            return Err(ArtifactError::BadPath {
                index,
                source: crate::name::NameError::NotNormalized(".".into()),
            });
        }
        bytes = bytes.saturating_add(layer.size);
        resources.push(Resource {
            name: ResourceName { path, shard: None },
            digest,
        });
    }
    sort_resources(&mut resources);
    // Sorted component-wise, a path and the paths below it are adjacent; equal paths too.
    for pair in resources.windows(2) {
        let (a, b) = (&pair[0].name.path, &pair[1].name.path);
        if a == b {
            return Err(ArtifactError::DuplicatePath(a.to_string()));
        }
        if b.starts_with(a) {
            return Err(ArtifactError::FileAndDirectory {
                file: a.to_string(),
                other: b.to_string(),
            });
        }
    }
    Ok(ArtifactFiles { resources, bytes })
}

/// One file to pack: its path, digest and size.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PackFile {
    /// Model-relative path.
    pub path: ModelPath,
    /// Raw SHA-256 of its bytes.
    pub sha256: [u8; 32],
    /// Its size.
    pub size: u64,
}

/// A ModelPack artifact ready to push: the config and manifest bytes, and where each layer
/// comes from.
#[derive(Debug, Clone)]
pub struct Packed {
    /// The config blob.
    pub config: Vec<u8>,
    /// The manifest.
    pub manifest: Vec<u8>,
    /// `sha256:…` of [`Packed::manifest`].
    pub manifest_digest: String,
    /// The layer descriptors, in manifest order, each with the path it uploads.
    pub layers: Vec<(Descriptor, ModelPath)>,
}

#[derive(Serialize)]
struct Config<'a> {
    descriptor: ConfigDescriptor<'a>,
    config: BTreeMap<String, String>,
    modelfs: ModelFs,
}

#[derive(Serialize)]
struct ConfigDescriptor<'a> {
    name: &'a str,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct ModelFs {
    #[serde(rename = "type")]
    type_: &'static str,
    diff_ids: Vec<String>,
}

/// Builds the ModelPack artifact of `files` named `name`: one raw layer per file in signature
/// order, with `org.cncf.model.filepath`, the category's media type and whether it was guessed;
/// the config's `modelfs.diffIds` are the layer digests (a raw layer is its own uncompressed
/// content). Nothing time-dependent is recorded, so the same files give the same digest.
pub fn pack(name: &str, files: &[PackFile]) -> Result<Packed, ArtifactError> {
    if files.is_empty() {
        return Err(ArtifactError::NoLayers);
    }
    let mut sorted: Vec<&PackFile> = files.iter().collect();
    sorted.sort_by(|a, b| a.path.cmp(&b.path));
    let mut seen = BTreeSet::new();
    let mut layers = Vec::with_capacity(sorted.len());
    for f in sorted {
        if !seen.insert(&f.path) {
            return Err(ArtifactError::DuplicatePath(f.path.to_string()));
        }
        let (category, guessed) = categorize(&f.path);
        let mut annotations = BTreeMap::new();
        annotations.insert(ANNOTATION_FILEPATH.to_string(), f.path.to_string());
        annotations.insert(ANNOTATION_UNTESTED.to_string(), guessed.to_string());
        layers.push((
            Descriptor {
                media_type: category.raw_media_type().to_string(),
                digest: format!("sha256:{}", hex::encode(f.sha256)),
                size: f.size,
                artifact_type: None,
                annotations,
            },
            f.path.clone(),
        ));
    }
    let config = Config {
        descriptor: ConfigDescriptor { name },
        config: BTreeMap::new(),
        modelfs: ModelFs {
            type_: "layers",
            diff_ids: layers.iter().map(|(d, _)| d.digest.clone()).collect(),
        },
    };
    let config = to_json(&config);
    let mut annotations = BTreeMap::new();
    annotations.insert(ANNOTATION_TITLE.to_string(), name.to_string());
    let manifest = ImageManifest {
        schema_version: 2,
        media_type: Some(IMAGE_MANIFEST_MEDIA_TYPE.into()),
        artifact_type: Some(ARTIFACT_TYPE.into()),
        config: Descriptor {
            media_type: CONFIG_MEDIA_TYPE.into(),
            digest: sha256_digest(&config),
            size: config.len() as u64,
            artifact_type: None,
            annotations: BTreeMap::new(),
        },
        layers: layers.iter().map(|(d, _)| d.clone()).collect(),
        subject: None,
        annotations,
    };
    let manifest = to_json(&manifest);
    // What we push must be what we can read back.
    files_of_packed(&manifest)?;
    Ok(Packed {
        manifest_digest: sha256_digest(&manifest),
        config,
        manifest,
        layers,
    })
}

fn files_of_packed(manifest: &[u8]) -> Result<ArtifactFiles, ArtifactError> {
    files(&super::manifest::parse(manifest)?)
}

/// Serializes derived structs of strings, numbers, maps with string keys and vectors.
// serde_json fails only on maps with non-string keys or failing `Serialize` impls; none here.
#[allow(clippy::expect_used)]
pub(crate) fn to_json<T: Serialize>(value: &T) -> Vec<u8> {
    serde_json::to_vec(value).expect("OCI documents serialize")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::oci::manifest::parse;

    fn file(path: &str, byte: u8) -> PackFile {
        PackFile {
            path: ModelPath::parse(path).unwrap(),
            sha256: crate::hashing::sha256(&[byte]),
            size: 1,
        }
    }

    fn packed_manifest(files: &[PackFile]) -> ImageManifest {
        parse(&pack("m", files).unwrap().manifest).unwrap()
    }

    #[test]
    fn pack_then_files_round_trips_in_signature_order() {
        let m = packed_manifest(&[file("b.bin", 1), file("a/x.json", 2), file("README.md", 3)]);
        assert_eq!(m.artifact_type.as_deref(), Some(ARTIFACT_TYPE));
        let got = files(&m).unwrap();
        let names: Vec<String> = got.resources.iter().map(|r| r.name.to_string()).collect();
        assert_eq!(names, ["README.md", "a/x.json", "b.bin"]);
        assert_eq!(
            got.resources[2].digest,
            crate::hashing::sha256(&[1]).to_vec()
        );
        assert_eq!(got.bytes, 3);
        let media: Vec<&str> = m.layers.iter().map(|l| l.media_type.as_str()).collect();
        assert_eq!(
            media,
            [
                Category::Doc.raw_media_type(),
                Category::WeightConfig.raw_media_type(),
                Category::Weight.raw_media_type()
            ]
        );
        // Deterministic: the same files give the same digest.
        let again = pack(
            "m",
            &[file("README.md", 3), file("b.bin", 1), file("a/x.json", 2)],
        );
        assert_eq!(
            again.unwrap().manifest_digest,
            pack(
                "m",
                &[file("b.bin", 1), file("a/x.json", 2), file("README.md", 3)]
            )
            .unwrap()
            .manifest_digest
        );
    }

    #[test]
    fn refuses_what_cannot_be_mapped_and_maps_its_twin() {
        let good = packed_manifest(&[file("a.bin", 1), file("b.bin", 2)]);
        assert!(files(&good).is_ok());
        let with = |f: &dyn Fn(&mut ImageManifest)| {
            let mut m = good.clone();
            f(&mut m);
            files(&m).unwrap_err()
        };
        let e =
            with(&|m| m.layers[0].media_type = "application/vnd.cncf.model.weight.v1.tar".into());
        assert!(
            e.to_string()
                .contains("ModelPack tar layers are not supported"),
            "{e}"
        );
        let e = with(&|m| {
            m.layers[0].media_type = "application/vnd.oci.image.layer.v1.tar+gzip".into()
        });
        assert!(e.to_string().contains("--modelcar-root"), "{e}");
        let e = with(&|m| {
            m.layers[1].media_type = "application/vnd.cncf.model.weight.v1.tar+zstd".into()
        });
        assert!(
            matches!(e, ArtifactError::UnsupportedLayer { index: 1, .. }),
            "{e}"
        );
        let e = with(&|m| {
            m.layers[0]
                .annotations
                .insert(ANNOTATION_FILEPATH.into(), "../etc/passwd".into());
        });
        assert!(e.to_string().contains("would leave the model root"), "{e}");
        let e = with(&|m| {
            m.layers[0]
                .annotations
                .insert(ANNOTATION_FILEPATH.into(), "/abs".into());
        });
        assert!(e.to_string().contains("is absolute"), "{e}");
        let e = with(&|m| {
            m.layers[0]
                .annotations
                .insert(ANNOTATION_FILEPATH.into(), ".".into());
        });
        assert!(matches!(e, ArtifactError::BadPath { index: 0, .. }), "{e}");
        let e = with(&|m| {
            m.layers[0]
                .annotations
                .insert(ANNOTATION_FILEPATH.into(), "b.bin".into());
        });
        assert_eq!(e, ArtifactError::DuplicatePath("b.bin".into()));
        let e = with(&|m| {
            m.layers[0]
                .annotations
                .insert(ANNOTATION_FILEPATH.into(), "b.bin/x".into());
        });
        assert!(matches!(e, ArtifactError::FileAndDirectory { .. }), "{e}");
        let e = with(&|m| {
            m.layers[0].annotations.remove(ANNOTATION_FILEPATH);
        });
        assert!(
            matches!(e, ArtifactError::MissingPath { index: 0, .. }),
            "{e}"
        );
        for bad in [
            format!("sha512:{}", "a".repeat(128)),
            format!("sha256:{}", "A".repeat(64)),
            format!("sha256:{}", "a".repeat(63)),
            "sha256".into(),
        ] {
            let e = with(&|m| m.layers[0].digest = bad.clone());
            assert!(
                matches!(e, ArtifactError::BadDigest { index: 0, .. }),
                "{bad}: {e}"
            );
        }
        let e =
            with(&|m| m.artifact_type = Some("application/vnd.cnai.model.manifest.v1+json".into()));
        assert!(matches!(e, ArtifactError::NotModelPack(Some(_))), "{e}");
        let e = with(&|m| m.config.media_type = "application/vnd.oci.image.config.v1+json".into());
        assert!(matches!(e, ArtifactError::WrongConfig(_)), "{e}");
        assert_eq!(with(&|m| m.layers.clear()), ArtifactError::NoLayers);
    }

    #[test]
    fn categories_follow_names_and_flag_guesses() {
        let cat = |p: &str| categorize(&ModelPath::parse(p).unwrap());
        assert_eq!(cat("model.safetensors"), (Category::Weight, false));
        assert_eq!(cat("tokenizer.json"), (Category::WeightConfig, false));
        assert_eq!(cat("sub/README"), (Category::Doc, false));
        assert_eq!(cat("LICENSE"), (Category::Doc, false));
        assert_eq!(cat("run.py"), (Category::Code, false));
        assert_eq!(cat("train.parquet"), (Category::Dataset, false));
        assert_eq!(cat("blob.xyz"), (Category::Weight, true));
    }
}
