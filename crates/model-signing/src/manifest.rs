//! Manifests: the list of resource digests a signature covers, and comparing two of them.

use std::collections::BTreeMap;
use std::fmt;

use crate::hashing::{HashAlgorithm, sha256};
use crate::name::{ModelPath, ResourceName, ShardRange};

/// Default shard size of the peer: 1,000,000,000 bytes (decimal).
pub const DEFAULT_SHARD_SIZE: u64 = 1_000_000_000;

/// How files are cut into resources.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    /// One resource per file.
    Files,
    /// One resource per `shard_size` bytes of each file (empty files yield none).
    Shards {
        /// Bytes per shard; the last shard of a file may be shorter.
        shard_size: u64,
    },
}

impl Method {
    /// The name recorded in `serialization.method`.
    pub fn name(self) -> &'static str {
        match self {
            Method::Files => "files",
            Method::Shards { .. } => "shards",
        }
    }
}

/// How a model was (or must be) serialized: what a signature records in `predicate.serialization`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Serialization {
    /// Files or shards.
    pub method: Method,
    /// The digest algorithm of each resource.
    pub hash: HashAlgorithm,
    /// Whether symlinks were followed when signing.
    pub allow_symlinks: bool,
    /// Model-relative paths left out when signing (recorded since 1.1.0; empty before).
    pub ignore_paths: Vec<String>,
}

impl Serialization {
    /// The `algorithm` of each resource: `sha256`, or `sha256-sharded-<N>` for shards.
    pub fn resource_algorithm(&self) -> String {
        match self.method {
            Method::Files => self.hash.name().to_string(),
            Method::Shards { shard_size } => format!("{}-sharded-{}", self.hash.name(), shard_size),
        }
    }
}

/// One resource: a file or a shard, and its digest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Resource {
    /// Its name.
    pub name: ResourceName,
    /// The raw digest.
    pub digest: Vec<u8>,
}

/// The root digest: SHA-256 over the raw resource digests concatenated in the given order.
pub fn root_digest(resources: &[Resource]) -> [u8; 32] {
    let mut all = Vec::with_capacity(resources.iter().map(|r| r.digest.len()).sum());
    for r in resources {
        all.extend_from_slice(&r.digest);
    }
    sha256(&all)
}

/// Sorts resources the way the peer writes them.
pub fn sort_resources(resources: &mut [Resource]) {
    resources.sort_by(|a, b| a.name.cmp(&b.name));
}

/// Per-file digests: the digest of the whole file, or of each shard.
type FileDigests<'a> = BTreeMap<&'a ModelPath, Vec<(Option<ShardRange>, &'a [u8])>>;

fn by_file(resources: &[Resource]) -> FileDigests<'_> {
    let mut map: FileDigests<'_> = BTreeMap::new();
    for r in resources {
        map.entry(&r.name.path)
            .or_default()
            .push((r.name.shard, &r.digest));
    }
    for shards in map.values_mut() {
        shards.sort_by_key(|(range, _)| *range);
    }
    map
}

/// A file whose content differs from what was signed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChangedFile {
    /// The file.
    pub path: String,
    /// What differs, e.g. `expected sha256:ab12…, got sha256:cd34…`.
    pub detail: String,
}

/// How a model differs from its signed manifest. Empty means it matches.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Mismatch {
    /// Signed files that are not in the model.
    pub missing: Vec<String>,
    /// Files in the model that the signature does not cover.
    pub extra: Vec<String>,
    /// Files whose content changed.
    pub changed: Vec<ChangedFile>,
}

impl Mismatch {
    /// True when nothing differs.
    pub fn is_empty(&self) -> bool {
        self.missing.is_empty() && self.extra.is_empty() && self.changed.is_empty()
    }
}

impl fmt::Display for Mismatch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut parts = Vec::new();
        if !self.changed.is_empty() {
            let list: Vec<String> = self
                .changed
                .iter()
                .take(MAX_LISTED)
                .map(|c| format!("{} ({})", c.path, c.detail))
                .collect();
            parts.push(format!(
                "{} changed: {}",
                plural(self.changed.len()),
                listed(&list, self.changed.len())
            ));
        }
        if !self.missing.is_empty() {
            parts.push(format!(
                "{} missing: {}",
                plural(self.missing.len()),
                listed(&self.missing, self.missing.len())
            ));
        }
        if !self.extra.is_empty() {
            parts.push(format!(
                "{} not covered by the signature: {}",
                plural(self.extra.len()),
                listed(&self.extra, self.extra.len())
            ));
        }
        write!(
            f,
            "the model does not match its signature: {}",
            parts.join("; ")
        )
    }
}

/// The most names one list of a mismatch message shows: a forged manifest can list 200,000.
const MAX_LISTED: usize = 50;

/// The first [`MAX_LISTED`] of `names` (of `total`), joined, with how many were left out.
fn listed(names: &[String], total: usize) -> String {
    let shown = &names[..names.len().min(MAX_LISTED)];
    let mut s = shown.join(", ");
    if total > shown.len() {
        s.push_str(&format!(" and {} more", total - shown.len()));
    }
    s
}

fn plural(n: usize) -> String {
    if n == 1 {
        "1 file".to_string()
    } else {
        format!("{n} files")
    }
}

fn describe(alg: &str, digest: &[u8]) -> String {
    let h = hex::encode(digest);
    format!("{alg}:{}", &h[..h.len().min(16)])
}

fn range_text(r: Option<ShardRange>) -> String {
    r.map(|r| format!("bytes {}..{}", r.start, r.end))
        .unwrap_or_else(|| "whole file".into())
}

/// Compares the signed resources with the model's, file by file.
pub fn compare(expected: &[Resource], actual: &[Resource], algorithm: &str) -> Mismatch {
    let want = by_file(expected);
    let have = by_file(actual);
    let mut m = Mismatch::default();
    for (path, signed) in &want {
        let Some(local) = have.get(path) else {
            m.missing.push(path.to_string());
            continue;
        };
        if signed == local {
            continue;
        }
        let detail = if signed.len() == 1 && local.len() == 1 && signed[0].0 == local[0].0 {
            format!(
                "expected {}, got {}",
                describe(algorithm, signed[0].1),
                describe(algorithm, local[0].1)
            )
        } else if signed.iter().map(|s| s.0).ne(local.iter().map(|s| s.0)) {
            let end = |v: &Vec<(Option<ShardRange>, &[u8])>| {
                v.last().and_then(|s| s.0).map_or(0, |r| r.end)
            };
            format!(
                "size changed: signed {} bytes, found {} bytes",
                end(signed),
                end(local)
            )
        } else {
            let (range, a, b) = signed
                .iter()
                .zip(local.iter())
                .find(|(a, b)| a.1 != b.1)
                .map(|(a, b)| (a.0, a.1, b.1))
                .unwrap_or((None, &[][..], &[][..]));
            format!(
                "{}: expected {}, got {}",
                range_text(range),
                describe(algorithm, a),
                describe(algorithm, b)
            )
        };
        m.changed.push(ChangedFile {
            path: path.to_string(),
            detail,
        });
    }
    for path in have.keys() {
        if !want.contains_key(path) {
            m.extra.push(path.to_string());
        }
    }
    m
}

#[cfg(test)]
mod tests {
    use super::*;

    fn res(name: &str, digest: &[u8]) -> Resource {
        let name = if name.matches(':').count() == 2 {
            ResourceName::parse_shard(name).unwrap()
        } else {
            ResourceName::parse_file(name).unwrap()
        };
        Resource {
            name,
            digest: digest.to_vec(),
        }
    }

    #[test]
    fn empty_root_digest() {
        assert_eq!(
            hex::encode(root_digest(&[])),
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
    }

    #[test]
    fn reports_missing_extra_and_changed() {
        let want = [res("a", &[1]), res("b", &[2]), res("c", &[3])];
        let have = [res("a", &[1]), res("c", &[4]), res("d", &[5])];
        let m = compare(&want, &have, "sha256");
        assert_eq!(m.missing, ["b"]);
        assert_eq!(m.extra, ["d"]);
        assert_eq!(m.changed.len(), 1);
        assert_eq!(m.changed[0].path, "c");
        assert_eq!(m.changed[0].detail, "expected sha256:03, got sha256:04");
        let text = m.to_string();
        assert!(
            text.contains("1 file changed: c (expected sha256:03, got sha256:04)"),
            "{text}"
        );
        assert!(text.contains("1 file missing: b"), "{text}");
        assert!(text.contains("not covered by the signature: d"), "{text}");
        assert!(compare(&want, &want, "sha256").is_empty());
    }

    #[test]
    fn shard_changes_are_reported_per_file() {
        let want = [res("w:0:4", &[1]), res("w:4:6", &[2])];
        let grown = [res("w:0:4", &[1]), res("w:4:8", &[2])];
        let m = compare(&want, &grown, "sha256-sharded-4");
        assert_eq!(
            m.changed[0].detail,
            "size changed: signed 6 bytes, found 8 bytes"
        );
        let edited = [res("w:0:4", &[1]), res("w:4:6", &[9])];
        let m = compare(&want, &edited, "sha256-sharded-4");
        assert!(
            m.changed[0].detail.starts_with("bytes 4..6: expected"),
            "{:?}",
            m.changed
        );
    }
}
