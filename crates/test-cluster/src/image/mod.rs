//! Container images without a container engine: one binary, the libraries it loads and a
//! non-root user, written as an OCI image layout in a tar archive, byte for byte the same from
//! the same inputs.
//!
//! The archive holds the OCI layout (`oci-layout`, `index.json`, `blobs/sha256/…`) and Docker's
//! `manifest.json` beside it, as `docker save` writes since Docker 25, so that `docker load`,
//! `podman load`, `skopeo copy oci-archive:…` and `ctr images import` all read it. The layer is
//! an uncompressed tar (a valid OCI layer media type): no compressor can make the digest drift.
//! Reproducible: entries sorted, every timestamp `SOURCE_DATE_EPOCH` (default 0), numeric owners
//! only, JSON with sorted keys.

mod rootfs;

use std::collections::{BTreeMap, HashMap};
use std::io::Write;
use std::path::Path;
use std::str::FromStr;

use anyhow::{Context, Result};
use oci_spec::image::{
    Arch, ConfigBuilder, Descriptor, DescriptorBuilder, Digest, HistoryBuilder, ImageConfiguration,
    ImageConfigurationBuilder, ImageIndexBuilder, ImageManifestBuilder, MediaType, Os,
    RootFsBuilder,
};
use serde_json::Value;
use sha2::{Digest as _, Sha256};

pub use rootfs::{Entry, NONROOT, RootFs, parse_ldd};

/// What to build.
#[derive(Clone, Debug)]
pub struct ImageSpec {
    /// The full reference it is tagged with, e.g. `ghcr.io/org/agent:v0.1.0`.
    pub reference: String,
    /// The binary on this machine.
    pub binary: std::path::PathBuf,
    /// Where it goes in the image; it is also the entrypoint.
    pub path: String,
    /// The image's default arguments (`Cmd`), given to the entrypoint when a container names
    /// none (e.g. `-P` for the pause image's catatonit).
    pub cmd: Vec<String>,
    /// Further paths in the image that are symlinks to `path` (a multi-call binary such as
    /// busybox answers to the name it is called by: `/bin/sh`).
    pub links: Vec<String>,
    /// Further files: (file on this machine, absolute path in the image), each root-owned 0644
    /// (e.g. the CA bundle the operator trusts registries with).
    pub files: Vec<(std::path::PathBuf, String)>,
    /// Image labels (`org.opencontainers.image.source`, `…version`, …).
    pub labels: BTreeMap<String, String>,
    /// The time written into the image (seconds since the epoch; `SOURCE_DATE_EPOCH`).
    pub created: u64,
}

/// A built image.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Built {
    /// The manifest's digest, `sha256:…`: what a registry and a pod's `imageID` show.
    pub digest: String,
    /// The image configuration.
    pub config: ImageConfiguration,
}

/// Builds the image of `spec` and writes its archive to `out`.
pub fn build(spec: &ImageSpec, out: &Path) -> Result<Built> {
    let mut fs = RootFs::for_binary(&spec.binary, &spec.path)?;
    for link in &spec.links {
        fs.symlink(link, &spec.path);
    }
    for (on_host, in_image) in &spec.files {
        let content = std::fs::read(on_host)
            .with_context(|| format!("cannot read {} for the image", on_host.display()))?;
        fs.file(in_image, content, 0o644);
    }
    let mut labels = spec.labels.clone();
    if !fs.packages.is_empty() {
        let base: Vec<String> = fs
            .packages
            .iter()
            .map(|(p, v)| format!("{p}={v}"))
            .collect();
        labels.insert(
            "dev.model-validation-operator.base-packages".into(),
            base.join(","),
        );
    }
    let layer = layer_tar(&fs, spec.created)?;
    let layer_digest = sha256(&layer);
    let created = rfc3339(spec.created);
    let mut runtime = ConfigBuilder::default()
        .user(format!("{NONROOT}:{NONROOT}"))
        .entrypoint(vec![spec.path.clone()])
        .env(vec![
            "PATH=/usr/local/bin:/usr/bin:/bin".to_string(),
            "HOME=/home/nonroot".to_string(),
        ])
        .working_dir("/".to_string())
        .labels(labels.clone().into_iter().collect::<HashMap<_, _>>())
        .build()?;
    // No `Cmd` at all unless one is given: an empty list would change existing images' digests.
    if !spec.cmd.is_empty() {
        runtime.set_cmd(Some(spec.cmd.clone()));
    }
    let config = ImageConfigurationBuilder::default()
        .architecture(Arch::Amd64)
        .os(Os::Linux)
        .created(created.clone())
        .config(runtime)
        .rootfs(
            RootFsBuilder::default()
                .typ("layers".to_string())
                .diff_ids(vec![layer_digest.clone()])
                .build()?,
        )
        .history(vec![
            HistoryBuilder::default()
                .created(created)
                .created_by(format!(
                    "test-cluster image: {} as {}",
                    spec.binary
                        .file_name()
                        .and_then(|n| n.to_str())
                        .unwrap_or(""),
                    spec.path
                ))
                .build()?,
        ])
        .build()?;
    let config_json = canonical_json(&config)?;
    let config_digest = sha256(&config_json);
    let manifest = ImageManifestBuilder::default()
        .schema_version(2u32)
        .media_type(MediaType::ImageManifest)
        .config(descriptor(
            MediaType::ImageConfig,
            &config_digest,
            config_json.len(),
        )?)
        .layers(vec![descriptor(
            MediaType::ImageLayer,
            &layer_digest,
            layer.len(),
        )?])
        .annotations(labels.into_iter().collect::<HashMap<_, _>>())
        .build()?;
    let manifest_json = canonical_json(&manifest)?;
    let manifest_digest = sha256(&manifest_json);
    let tag = spec
        .reference
        .rsplit_once(':')
        .filter(|(_, t)| !t.contains('/'))
        .map_or("latest", |(_, t)| t);
    let mut entry = descriptor(
        MediaType::ImageManifest,
        &manifest_digest,
        manifest_json.len(),
    )?;
    entry.set_annotations(Some(
        [
            (
                "io.containerd.image.name".to_string(),
                spec.reference.clone(),
            ),
            (
                "org.opencontainers.image.ref.name".to_string(),
                tag.to_string(),
            ),
        ]
        .into_iter()
        .collect(),
    ));
    let index = ImageIndexBuilder::default()
        .schema_version(2u32)
        .media_type(MediaType::ImageIndex)
        .manifests(vec![entry])
        .build()?;
    let docker_manifest = serde_json::to_vec(&serde_json::json!([{
        "Config": blob_path(&config_digest),
        "RepoTags": [spec.reference],
        "Layers": [blob_path(&layer_digest)],
    }]))?;

    let mut files: BTreeMap<String, Vec<u8>> = BTreeMap::new();
    files.insert(
        "oci-layout".into(),
        br#"{"imageLayoutVersion":"1.0.0"}"#.to_vec(),
    );
    files.insert("index.json".into(), canonical_json(&index)?);
    files.insert("manifest.json".into(), docker_manifest);
    files.insert(blob_path(&config_digest), config_json);
    files.insert(blob_path(&manifest_digest), manifest_json);
    files.insert(blob_path(&layer_digest), layer);
    write_archive(out, &files, spec.created)?;
    Ok(Built {
        digest: manifest_digest,
        config,
    })
}

fn descriptor(media_type: MediaType, digest: &str, size: usize) -> Result<Descriptor> {
    Ok(DescriptorBuilder::default()
        .media_type(media_type)
        .digest(Digest::from_str(digest)?)
        .size(size as u64)
        .build()?)
}

fn blob_path(digest: &str) -> String {
    format!("blobs/sha256/{}", digest.trim_start_matches("sha256:"))
}

fn sha256(bytes: &[u8]) -> String {
    let hash = Sha256::digest(bytes);
    let hex: String = hash.iter().map(|b| format!("{b:02x}")).collect();
    format!("sha256:{hex}")
}

/// JSON with every object's keys sorted (oci-spec keeps labels in `HashMap`s, whose order
/// changes from run to run), compact.
fn canonical_json(value: &impl serde::Serialize) -> Result<Vec<u8>> {
    fn sorted(v: Value) -> Value {
        match v {
            Value::Object(map) => {
                let entries: BTreeMap<String, Value> =
                    map.into_iter().map(|(k, v)| (k, sorted(v))).collect();
                Value::Object(entries.into_iter().collect())
            }
            Value::Array(items) => Value::Array(items.into_iter().map(sorted).collect()),
            other => other,
        }
    }
    Ok(serde_json::to_vec(&sorted(serde_json::to_value(value)?))?)
}

/// The layer: every entry of `fs` in path order, numeric owners, the same mtime.
fn layer_tar(fs: &RootFs, mtime: u64) -> Result<Vec<u8>> {
    let mut tar = tar::Builder::new(Vec::new());
    for (path, entry) in &fs.entries {
        let name = path.trim_start_matches('/');
        let mut header = tar::Header::new_ustar();
        header.set_mtime(mtime);
        match entry {
            Entry::Dir { mode, owner } => {
                header.set_entry_type(tar::EntryType::Directory);
                header.set_mode(*mode);
                header.set_uid(u64::from(*owner));
                header.set_gid(u64::from(*owner));
                header.set_size(0);
                tar.append_data(&mut header, format!("{name}/"), std::io::empty())?;
            }
            Entry::File { content, mode } => {
                header.set_entry_type(tar::EntryType::Regular);
                header.set_mode(*mode);
                header.set_uid(0);
                header.set_gid(0);
                header.set_size(content.len() as u64);
                tar.append_data(&mut header, name, content.as_slice())?;
            }
            Entry::Symlink { target } => {
                header.set_entry_type(tar::EntryType::Symlink);
                header.set_mode(0o777);
                header.set_uid(0);
                header.set_gid(0);
                header.set_size(0);
                tar.append_link(&mut header, name, target)?;
            }
        }
    }
    Ok(tar.into_inner()?)
}

/// The archive: `files` in path order, under their directories.
fn write_archive(out: &Path, files: &BTreeMap<String, Vec<u8>>, mtime: u64) -> Result<()> {
    if let Some(dir) = out.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let tmp = out.with_extension("tar.partial");
    let file =
        std::fs::File::create(&tmp).with_context(|| format!("cannot write {}", tmp.display()))?;
    let mut tar = tar::Builder::new(std::io::BufWriter::new(file));
    for dir in ["blobs/", "blobs/sha256/"] {
        let mut header = tar::Header::new_ustar();
        header.set_entry_type(tar::EntryType::Directory);
        header.set_mode(0o755);
        header.set_mtime(mtime);
        header.set_size(0);
        tar.append_data(&mut header, dir, std::io::empty())?;
    }
    for (name, content) in files {
        let mut header = tar::Header::new_ustar();
        header.set_entry_type(tar::EntryType::Regular);
        header.set_mode(0o644);
        header.set_mtime(mtime);
        header.set_size(content.len() as u64);
        tar.append_data(&mut header, name, content.as_slice())?;
    }
    tar.into_inner()?.flush()?;
    std::fs::rename(&tmp, out)?;
    Ok(())
}

/// `1970-01-01T00:00:00Z` for `secs` since the epoch.
fn rfc3339(secs: u64) -> String {
    let days = (secs / 86_400) as i64;
    // Howard Hinnant's civil_from_days.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    let r = secs % 86_400;
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        r / 3600,
        r / 60 % 60,
        r % 60
    )
}

#[cfg(test)]
mod tests;
