//! Modelcar images (KServe's `oci+native://`): ordinary container images whose tar layers
//! (gzip-compressed or not) hold the model under a directory such as `/models`.
//!
//! A tar layer's digest covers the archive, not each file, so the files' SHA-256 digests are
//! computed by reading the layers: [`Modelcar`] takes each layer as a stream ([`Read`]), in
//! manifest order, and hashes the regular files under the model root while reading them, never
//! holding a whole file and never writing to disk. The layers are applied as a runtime applies
//! them (OCI image spec, "Image Layer Filesystem Changeset"): a later layer's file replaces an
//! earlier one, `.wh.NAME` deletes `NAME` and everything below it from the earlier layers, and
//! `.wh..wh..opq` empties its directory of the earlier layers' entries.
//!
//! The result is the model's files as signing the pulled directory would list them
//! ([`ArtifactFiles`], paths relative to the root), which [`verify_modelcar`] compares with a
//! signature exactly, as [`super::check::verify_manifest`] does for raw-layer artifacts.
//!
//! Refused, naming the layer and the entry: paths with `..`; symbolic and hard links, devices,
//! FIFOs under the model root (the directory signer refuses symlinks by default, and a link's
//! target is outside what the layer's bytes say); a link or a file where the root or one of its
//! parents should be a directory; more files than [`MAX_RESOURCES`], more entries than
//! [`MAX_ENTRIES`], names longer than [`MAX_RESOURCE_NAME_BYTES`]; zstd and unknown layer types.

use std::collections::BTreeMap;
use std::io::Read;

use sha2::{Digest as _, Sha256};

use super::ArtifactError;
use super::manifest::{Descriptor, ImageManifest};
use super::modelpack::ArtifactFiles;
use crate::error::{Error, Result};
use crate::limits::{MAX_RESOURCE_NAME_BYTES, MAX_RESOURCES};
use crate::manifest::{Resource, compare, sort_resources};
use crate::name::{ModelPath, ResourceName};
use crate::statement::SignedManifest;
use crate::verify::{EnvelopeVerifier, VerifiedSigner};

/// The most tar entries read over all layers (directories, files outside the root and
/// whiteouts included): a bound on the work a hostile image can ask for per byte.
pub const MAX_ENTRIES: usize = 10 * MAX_RESOURCES;

/// How a layer's bytes are compressed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compression {
    /// A plain tar archive.
    None,
    /// A gzip-compressed tar archive.
    Gzip,
}

/// The compression of a layer by its media type: OCI and Docker image layers, tar or tar+gzip
/// (distributable or not). `None` for anything else (zstd included).
pub fn layer_compression(media_type: &str) -> Option<Compression> {
    match media_type {
        "application/vnd.oci.image.layer.v1.tar"
        | "application/vnd.oci.image.layer.nondistributable.v1.tar"
        | "application/vnd.docker.image.rootfs.diff.tar" => Some(Compression::None),
        "application/vnd.oci.image.layer.v1.tar+gzip"
        | "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip"
        | "application/vnd.docker.image.rootfs.diff.tar.gzip"
        | "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip" => Some(Compression::Gzip),
        _ => None,
    }
}

/// The layers of an image manifest to stream, with their compression; refuses a layer of
/// another type (naming it) and an image without layers.
pub fn layers(manifest: &ImageManifest) -> Result<Vec<(Compression, Descriptor)>, ArtifactError> {
    if manifest.layers.is_empty() {
        return Err(ArtifactError::NoLayers);
    }
    manifest
        .layers
        .iter()
        .enumerate()
        .map(|(index, d)| {
            layer_compression(&d.media_type)
                .map(|c| (c, d.clone()))
                .ok_or_else(|| {
                    ModelcarError::UnsupportedLayer {
                        layer: index,
                        media_type: d.media_type.clone(),
                    }
                    .into()
                })
        })
        .collect()
}

/// True for a container image (not a ModelPack artifact) whose layers are all tar layers: what
/// needs a model root to be read as a model.
pub fn is_modelcar(manifest: &ImageManifest) -> bool {
    manifest.artifact_type.as_deref() != Some(super::modelpack::ARTIFACT_TYPE)
        && !manifest.layers.is_empty()
        && manifest
            .layers
            .iter()
            .all(|l| layer_compression(&l.media_type).is_some())
}

/// Why a modelcar image cannot be read as a model.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ModelcarError {
    /// The model root given is not an absolute or relative directory path without `..`.
    #[error(
        "the model root {0:?} is not a directory path inside the image (such as /models) without '..'"
    )]
    BadRoot(String),
    /// A layer type that is not a tar archive, plain or gzip.
    #[error("layer {layer} ({media_type}) is not a tar layer (plain or gzip) of a modelcar image")]
    UnsupportedLayer {
        /// Position in the manifest.
        layer: usize,
        /// Its media type.
        media_type: String,
    },
    /// The layer is not a well-formed (compressed) tar archive, or could not be read.
    #[error("layer {layer} cannot be read as a tar archive: {detail}")]
    Unreadable {
        /// Position in the manifest.
        layer: usize,
        /// Why.
        detail: String,
    },
    /// An entry whose path leaves the image root, or is too long.
    #[error("layer {layer} has an entry with an unsafe path {path:?}: {reason}")]
    UnsafePath {
        /// Position in the manifest.
        layer: usize,
        /// The path as written.
        path: String,
        /// Why.
        reason: &'static str,
    },
    /// A link, device or FIFO in the model (or where the root or a parent of it should be a
    /// directory).
    #[error(
        "layer {layer} has a {kind} at {path:?}{}: a model's files must be regular files, as signing the directory requires",
        if *.above_root { " (where the model root or one of its parents should be a directory)" } else { "" }
    )]
    NotAFile {
        /// Position in the manifest.
        layer: usize,
        /// The path in the image.
        path: String,
        /// What it is.
        kind: &'static str,
        /// True when the entry is the root or one of its parents.
        above_root: bool,
    },
    /// More entries or files than the verifier reads.
    #[error(
        "the image has more than {limit} {what}: more than the verifier reads (limits MAX_ENTRIES, MAX_RESOURCES)"
    )]
    TooMany {
        /// What was counted.
        what: &'static str,
        /// The bound.
        limit: usize,
    },
    /// A container image with tar layers, read without a model root.
    #[error(
        "the image has tar layers (a modelcar image): give the model's directory in it with --modelcar-root (KServe's modelcar images use /models)"
    )]
    NeedsRoot,
    /// No file under the root once every layer is applied.
    #[error(
        "the image has no file under {0:?}: check --modelcar-root (KServe's modelcar images use /models)"
    )]
    NoFiles(String),
}

impl From<ModelcarError> for Error {
    fn from(e: ModelcarError) -> Self {
        Error::Artifact(e.into())
    }
}

/// The components of a path inside a layer: `./`, `/`, empty and `.` components dropped;
/// `None` when it has `..`.
fn components(path: &str) -> Option<Vec<String>> {
    let mut out = Vec::new();
    for c in path.split('/') {
        match c {
            "" | "." => {}
            ".." => return None,
            c => out.push(c.to_string()),
        }
    }
    Some(out)
}

/// One file of the model as the layers so far leave it.
#[derive(Debug, Clone)]
struct FileEntry {
    digest: [u8; 32],
    size: u64,
    layer: usize,
}

/// The model's files, built layer by layer.
#[derive(Debug, Clone)]
pub struct Modelcar {
    root: Vec<String>,
    root_text: String,
    /// Files below the root, by their path in the image.
    files: BTreeMap<Vec<String>, FileEntry>,
    layers: usize,
    entries: usize,
}

impl Modelcar {
    /// Reads the model under `root` (a directory in the image, `/models` or `models`).
    pub fn new(root: &str) -> Result<Self, ModelcarError> {
        let bad = || ModelcarError::BadRoot(root.to_string());
        let parts = components(root).ok_or_else(bad)?;
        if root.is_empty() || root.contains('\0') {
            return Err(bad());
        }
        Ok(Modelcar {
            root: parts,
            root_text: root.to_string(),
            files: BTreeMap::new(),
            layers: 0,
            entries: 0,
        })
    }

    /// Removes the files at or below `path` (`only_earlier`: only the earlier layers').
    fn delete_below(&mut self, path: &[String], layer: usize, only_earlier: bool) {
        // The paths at or below `path` are one range of the map (component-wise order): the
        // cost is that of what is removed, not of the whole model.
        let doomed: Vec<Vec<String>> = self
            .files
            .range(path.to_vec()..)
            .take_while(|(k, _)| k.starts_with(path))
            .filter(|(_, v)| !only_earlier || v.layer < layer)
            .map(|(k, _)| k.clone())
            .collect();
        for k in doomed {
            self.files.remove(&k);
        }
    }

    /// Applies the next layer (in manifest order), reading it to its end-of-archive.
    pub fn add_layer(
        &mut self,
        compression: Compression,
        reader: impl Read,
    ) -> Result<(), ModelcarError> {
        let layer = self.layers;
        self.layers += 1;
        match compression {
            Compression::None => self.read_tar(layer, reader),
            Compression::Gzip => self.read_tar(layer, flate2::read::GzDecoder::new(reader)),
        }
    }

    fn read_tar(&mut self, layer: usize, reader: impl Read) -> Result<(), ModelcarError> {
        let unreadable = |e: std::io::Error| ModelcarError::Unreadable {
            layer,
            detail: e.to_string(),
        };
        let mut archive = tar::Archive::new(reader);
        let mut buf = vec![0u8; 64 * 1024];
        for entry in archive.entries().map_err(unreadable)? {
            let mut entry = entry.map_err(unreadable)?;
            self.entries += 1;
            if self.entries > MAX_ENTRIES {
                return Err(ModelcarError::TooMany {
                    what: "tar entries",
                    limit: MAX_ENTRIES,
                });
            }
            let raw = entry.path_bytes();
            let text = String::from_utf8_lossy(&raw).into_owned();
            let unsafe_path = |reason| ModelcarError::UnsafePath {
                layer,
                path: text.clone(),
                reason,
            };
            if raw.len() > MAX_RESOURCE_NAME_BYTES {
                return Err(unsafe_path("longer than the verifier reads"));
            }
            if std::str::from_utf8(&raw).is_err() {
                // Outside the model it does not matter; inside, no signature can name it.
                let lossy = components(&text).unwrap_or_default();
                if !lossy.starts_with(&self.root) {
                    continue;
                }
                return Err(unsafe_path("not UTF-8, which no signature can name"));
            }
            if text.contains('\0') {
                return Err(unsafe_path("it has a NUL byte"));
            }
            let parts = components(&text).ok_or_else(|| unsafe_path("it has a '..' component"))?;
            let Some(name) = parts.last() else {
                continue; // the image root itself ("./")
            };
            // Whiteouts: they name what they delete in their directory.
            if let Some(target) = name.strip_prefix(".wh.") {
                let dir = &parts[..parts.len() - 1];
                if target == ".wh..opq" {
                    self.delete_below(dir, layer, true);
                } else if !target.is_empty() {
                    let mut gone = dir.to_vec();
                    gone.push(target.to_string());
                    self.delete_below(&gone, layer, true);
                }
                continue;
            }
            let below_root = parts.len() > self.root.len() && parts.starts_with(&self.root);
            let above_root = self.root.starts_with(&parts);
            if !below_root && !above_root {
                continue;
            }
            let kind = entry.header().entry_type();
            let not_a_file = |kind| ModelcarError::NotAFile {
                layer,
                path: text.clone(),
                kind,
                above_root,
            };
            use tar::EntryType as T;
            match kind {
                T::Directory => {
                    // A directory replaces an earlier file at its path.
                    self.files.remove(&parts);
                }
                T::Regular | T::Continuous if !above_root => {
                    let mut hasher = Sha256::new();
                    let mut size = 0u64;
                    loop {
                        let n = entry.read(&mut buf).map_err(unreadable)?;
                        if n == 0 {
                            break;
                        }
                        hasher.update(&buf[..n]);
                        size += n as u64;
                    }
                    // A file replaces what was at its path, a directory with what was below
                    // it included (extracting in order does the same within a layer), and
                    // turns any file at one of its parents into a directory.
                    self.delete_below(&parts, layer, false);
                    for end in self.root.len() + 1..parts.len() {
                        self.files.remove(&parts[..end]);
                    }
                    self.files.insert(
                        parts,
                        FileEntry {
                            digest: hasher.finalize().into(),
                            size,
                            layer,
                        },
                    );
                    if self.files.len() > MAX_RESOURCES {
                        return Err(ModelcarError::TooMany {
                            what: "files in the model",
                            limit: MAX_RESOURCES,
                        });
                    }
                }
                T::Regular | T::Continuous => return Err(not_a_file("regular file")),
                T::Symlink => return Err(not_a_file("symbolic link")),
                T::Link => return Err(not_a_file("hard link")),
                T::Char | T::Block => return Err(not_a_file("device file")),
                T::Fifo => return Err(not_a_file("FIFO")),
                // PAX and GNU long-name headers are consumed by the tar reader; anything else
                // (sparse files, unknown types) is not a plain file either.
                T::GNUSparse => return Err(not_a_file("sparse file")),
                _ => return Err(not_a_file("special entry")),
            }
        }
        Ok(())
    }

    /// The model's files once every layer is applied, relative to the root and sorted as a
    /// signature lists them.
    pub fn finish(self) -> Result<ArtifactFiles, ModelcarError> {
        if self.files.is_empty() {
            return Err(ModelcarError::NoFiles(self.root_text));
        }
        let skip = self.root.len();
        let mut bytes = 0u64;
        let mut resources = Vec::with_capacity(self.files.len());
        for (parts, f) in self.files {
            let rel = parts[skip..].join("/");
            let path = ModelPath::parse(&rel).map_err(|_| ModelcarError::UnsafePath {
                layer: f.layer,
                path: parts.join("/"),
                reason: "not a model path",
            })?;
            bytes = bytes.saturating_add(f.size);
            resources.push(Resource {
                name: ResourceName { path, shard: None },
                digest: f.digest.to_vec(),
            });
        }
        sort_resources(&mut resources);
        Ok(ArtifactFiles { resources, bytes })
    }
}

/// The files under `root` of the image whose layers are `layers` (in manifest order).
pub fn files<R: Read>(
    layers: impl IntoIterator<Item = (Compression, R)>,
    root: &str,
) -> Result<ArtifactFiles, ModelcarError> {
    let mut car = Modelcar::new(root)?;
    for (compression, reader) in layers {
        car.add_layer(compression, reader)?;
    }
    car.finish()
}

/// A bundle that verified against a modelcar image's files.
#[derive(Debug)]
pub struct ModelcarVerifyReport {
    /// Who signed.
    pub signer: VerifiedSigner,
    /// The signed manifest (its resources equal the image's files).
    pub manifest: SignedManifest,
    /// The image's files under the root.
    pub files: ArtifactFiles,
    /// Things worth telling (old signature formats).
    pub warnings: Vec<String>,
}

/// Verifies `bundle_bytes` against the model under `root` in the image whose layers are
/// `layers` (in manifest order, each as its blob's bytes): the signature with `verifier` first
/// (so nothing is read for a signature that does not verify), then the files the layers leave
/// under the root, exactly, against the signed ones.
///
/// The caller must check each layer's bytes against its manifest digest (the registry client
/// does, while streaming) and pin what runs to that manifest's digest.
pub fn verify_modelcar<R: Read>(
    layers: impl IntoIterator<Item = (Compression, R)>,
    root: &str,
    bundle_bytes: &[u8],
    verifier: &dyn EnvelopeVerifier,
) -> Result<ModelcarVerifyReport> {
    let opened = super::check::open_files_signature(bundle_bytes, verifier)?;
    let files = files(layers, root)?;
    let mismatch = compare(&opened.manifest.resources, &files.resources, "sha256");
    if !mismatch.is_empty() {
        return Err(Error::Mismatch(mismatch));
    }
    Ok(ModelcarVerifyReport {
        signer: opened.signer,
        manifest: opened.manifest,
        files,
        warnings: opened.warnings,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write as _;

    /// One tar entry to write.
    enum E<'a> {
        File(&'a str, &'a [u8]),
        Dir(&'a str),
        Symlink(&'a str, &'a str),
        Hardlink(&'a str, &'a str),
        Char(&'a str),
        /// A raw name written into the header bytes (bypassing the tar crate's checks).
        RawFile(&'a [u8], &'a [u8]),
    }

    fn tar_of(entries: &[E<'_>]) -> Vec<u8> {
        let mut b = tar::Builder::new(Vec::new());
        for e in entries {
            let mut h = tar::Header::new_gnu();
            h.set_mode(0o644);
            match e {
                E::File(p, data) => {
                    h.set_entry_type(tar::EntryType::Regular);
                    h.set_size(data.len() as u64);
                    b.append_data(&mut h, p, *data).unwrap();
                }
                E::Dir(p) => {
                    h.set_entry_type(tar::EntryType::Directory);
                    h.set_size(0);
                    b.append_data(&mut h, p, &[][..]).unwrap();
                }
                E::Symlink(p, t) | E::Hardlink(p, t) => {
                    h.set_entry_type(if matches!(e, E::Symlink(..)) {
                        tar::EntryType::Symlink
                    } else {
                        tar::EntryType::Link
                    });
                    h.set_size(0);
                    b.append_link(&mut h, p, t).unwrap();
                }
                E::Char(p) => {
                    h.set_entry_type(tar::EntryType::Char);
                    h.set_size(0);
                    b.append_data(&mut h, p, &[][..]).unwrap();
                }
                E::RawFile(name, data) => {
                    h.set_entry_type(tar::EntryType::Regular);
                    h.set_size(data.len() as u64);
                    h.as_old_mut().name[..name.len()].copy_from_slice(name);
                    h.set_cksum();
                    b.append(&h, *data).unwrap();
                }
            }
        }
        b.into_inner().unwrap()
    }

    fn gz(bytes: &[u8]) -> Vec<u8> {
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        e.write_all(bytes).unwrap();
        e.finish().unwrap()
    }

    fn run(layers: &[Vec<u8>]) -> Result<ArtifactFiles, ModelcarError> {
        files(
            layers.iter().map(|l| (Compression::None, l.as_slice())),
            "/models",
        )
    }

    fn listing(f: &ArtifactFiles) -> Vec<(String, String)> {
        f.resources
            .iter()
            .map(|r| (r.name.path.to_string(), hex::encode(&r.digest)))
            .collect()
    }

    fn sha(b: &[u8]) -> String {
        hex::encode(crate::hashing::sha256(b))
    }

    #[test]
    fn files_under_the_root_with_their_sha256_plain_and_gzip() {
        let layer = tar_of(&[
            E::Dir("models/"),
            E::File("models/config.json", b"{}"),
            E::File("./models/sub/w.bin", b"weights"),
            E::File("etc/passwd", b"root"),
            E::RawFile(b"/models/empty", b""),
        ]);
        let want = vec![
            ("config.json".to_string(), sha(b"{}")),
            ("empty".to_string(), sha(b"")),
            ("sub/w.bin".to_string(), sha(b"weights")),
        ];
        let plain = run(std::slice::from_ref(&layer)).unwrap();
        assert_eq!(listing(&plain), want);
        assert_eq!(plain.bytes, 9);
        let zipped = files([(Compression::Gzip, gz(&layer).as_slice())], "models").unwrap();
        assert_eq!(listing(&zipped), want);
    }

    #[test]
    fn later_layers_override_and_whiteouts_delete() {
        let base = tar_of(&[
            E::File("models/a", b"1"),
            E::File("models/b", b"2"),
            E::File("models/d/x", b"3"),
            E::File("models/e/y", b"4"),
        ]);
        let top = tar_of(&[
            E::File("models/a", b"changed"),
            E::File("models/.wh.b", b""),
            E::File("models/d/.wh..wh..opq", b""),
            E::File("models/d/z", b"5"),
            E::File("models/.wh.e", b""),
        ]);
        let got = run(&[base.clone(), top]).unwrap();
        assert_eq!(
            listing(&got),
            vec![
                ("a".to_string(), sha(b"changed")),
                ("d/z".to_string(), sha(b"5")),
            ]
        );
        // Twin: the base alone has every file.
        assert_eq!(run(std::slice::from_ref(&base)).unwrap().resources.len(), 4);
        // A whiteout of the root's parent deletes the whole model; a new layer adds it back.
        let wipe = tar_of(&[E::File(".wh.models", b"")]);
        assert_eq!(
            run(&[base.clone(), wipe.clone()]),
            Err(ModelcarError::NoFiles("/models".into()))
        );
        let again = tar_of(&[E::File("models/n", b"new")]);
        assert_eq!(
            listing(&run(&[base, wipe, again]).unwrap()),
            vec![("n".to_string(), sha(b"new"))]
        );
    }

    #[test]
    fn a_file_replaces_a_directory_and_a_directory_a_file() {
        let base = tar_of(&[E::File("models/d/x", b"1"), E::File("models/f", b"2")]);
        let top = tar_of(&[E::File("models/d", b"file now"), E::Dir("models/f/")]);
        assert_eq!(
            listing(&run(&[base, top]).unwrap()),
            vec![("d".to_string(), sha(b"file now"))]
        );
        // Within one layer, in order: a file over a file's path makes it a directory, and a
        // file over a directory replaces it.
        let one = tar_of(&[
            E::File("models/p", b"1"),
            E::File("models/p/q", b"2"),
            E::File("models/r/s", b"3"),
            E::File("models/r", b"4"),
        ]);
        assert_eq!(
            listing(&run(&[one]).unwrap()),
            vec![("p/q".to_string(), sha(b"2")), ("r".to_string(), sha(b"4"))]
        );
    }

    #[test]
    fn links_devices_and_traversal_in_the_model_are_refused_each_with_a_passing_twin() {
        let cases: Vec<(Vec<u8>, Vec<u8>, &str)> = vec![
            (
                tar_of(&[E::File("models/a", b"1"), E::Symlink("models/l", "a")]),
                tar_of(&[E::File("models/a", b"1"), E::Symlink("other/l", "a")]),
                "symbolic link",
            ),
            (
                tar_of(&[
                    E::File("models/a", b"1"),
                    E::Hardlink("models/h", "models/a"),
                ]),
                tar_of(&[
                    E::File("models/a", b"1"),
                    E::Hardlink("other/h", "models/a"),
                ]),
                "hard link",
            ),
            (
                tar_of(&[E::File("models/a", b"1"), E::Char("models/dev")]),
                tar_of(&[E::File("models/a", b"1"), E::Char("dev/null")]),
                "device file",
            ),
            (
                tar_of(&[E::Symlink("models", "/data"), E::File("data/a", b"1")]),
                tar_of(&[E::Symlink("model", "/data"), E::File("models/a", b"1")]),
                "where the model root",
            ),
            (
                tar_of(&[
                    E::File("models/a", b"1"),
                    E::RawFile(b"models/../../x", b"2"),
                ]),
                tar_of(&[E::File("models/a", b"1"), E::RawFile(b"models/./x", b"2")]),
                "'..'",
            ),
        ];
        for (bad, good, what) in cases {
            let e = run(&[bad]).unwrap_err();
            assert!(e.to_string().contains(what), "{what}: {e}");
            assert!(e.to_string().contains("layer 0"), "{e}");
            run(&[good]).unwrap_or_else(|e| panic!("{what} twin: {e}"));
        }
    }

    #[test]
    fn unreadable_layers_bad_roots_and_other_layer_types_are_refused() {
        let layer = tar_of(&[E::File("models/a", b"1")]);
        // Not gzip.
        let e = files([(Compression::Gzip, layer.as_slice())], "/models").unwrap_err();
        assert!(
            matches!(e, ModelcarError::Unreadable { layer: 0, .. }),
            "{e}"
        );
        // A truncated archive.
        let cut = &layer[..600];
        let e = files([(Compression::None, cut)], "/models").unwrap_err();
        assert!(matches!(e, ModelcarError::Unreadable { .. }), "{e}");
        assert_eq!(
            Modelcar::new("/models/../etc").unwrap_err(),
            ModelcarError::BadRoot("/models/../etc".into())
        );
        // A root with no file under it names the flag.
        let e = files([(Compression::None, layer.as_slice())], "/model").unwrap_err();
        assert!(e.to_string().contains("--modelcar-root"), "{e}");
        assert_eq!(
            layer_compression("application/vnd.oci.image.layer.v1.tar+zstd"),
            None
        );
        assert_eq!(
            layer_compression("application/vnd.docker.image.rootfs.diff.tar.gzip"),
            Some(Compression::Gzip)
        );
    }

    mod prop {
        use super::*;
        use proptest::prelude::*;

        fn name() -> impl Strategy<Value = String> {
            "[a-z0-9_][a-z0-9_.-]{0,8}".prop_filter("not a whiteout", |s| !s.starts_with(".wh."))
        }

        proptest! {
            #![proptest_config(ProptestConfig::with_cases(64))]
            /// Any set of files, written into any number of tar layers (each file once, in a
            /// layer of its choosing, gzip or not), maps back to exactly those files' digests.
            #[test]
            fn files_written_into_layers_map_back_to_their_digests(
                files_in in proptest::collection::btree_map(
                    proptest::collection::vec(name(), 1..3), (proptest::collection::vec(any::<u8>(), 0..300), 0usize..3), 1..12),
                gzip in proptest::collection::vec(any::<bool>(), 3),
            ) {
                // A path and a path below it cannot both be files: keep the first.
                let mut kept: BTreeMap<Vec<String>, (Vec<u8>, usize)> = BTreeMap::new();
                for (p, v) in files_in {
                    if kept.keys().any(|k| k.starts_with(&p) || p.starts_with(k)) {
                        continue;
                    }
                    kept.insert(p, v);
                }
                let mut layers = vec![tar::Builder::new(Vec::new()), tar::Builder::new(Vec::new()), tar::Builder::new(Vec::new())];
                for (p, (data, l)) in &kept {
                    let mut h = tar::Header::new_gnu();
                    h.set_entry_type(tar::EntryType::Regular);
                    h.set_mode(0o644);
                    h.set_size(data.len() as u64);
                    layers[*l].append_data(&mut h, format!("models/{}", p.join("/")), data.as_slice()).unwrap();
                }
                let blobs: Vec<(Compression, Vec<u8>)> = layers.into_iter().zip(&gzip).map(|(b, z)| {
                    let t = b.into_inner().unwrap();
                    if *z { (Compression::Gzip, gz(&t)) } else { (Compression::None, t) }
                }).collect();
                let got = super::super::files(blobs.iter().map(|(c, b)| (*c, b.as_slice())), "/models").unwrap();
                let mut want: Vec<(String, String)> = kept.iter().map(|(p, (d, _))| (p.join("/"), sha(d))).collect();
                let mut have = listing(&got);
                want.sort();
                have.sort();
                prop_assert_eq!(have, want);
            }
        }
    }
}
