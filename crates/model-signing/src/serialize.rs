//! Turning model files into resources: parallel, streaming, constant-memory hashing.
//!
//! Work is split into items (a whole file, or one shard), handed out to `jobs` threads from a
//! shared counter, largest first so that one big file does not finish last. Every worker owns a
//! single read buffer, so memory does not grow with the model; every byte is read exactly once.

use std::collections::BTreeSet;
use std::os::unix::fs::FileExt;
use std::path::Path;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use crate::hashing::HashAlgorithm;
use crate::manifest::{Method, Resource, sort_resources};
use crate::name::{ModelPath, ResourceName, ShardRange};
use crate::pinned::{self, FileChange, PinError};
use crate::walk::{self, ModelFile, Selection, WalkError};

/// Bytes read per `read` call; large enough to reach hash speed from the page cache.
const READ_CHUNK: usize = 1 << 20;
/// The smallest read per call when many workers share [`READ_BUFFERS_BUDGET`]. Measured on the
/// 2-core test machine: reads of 64 KiB to 4 MiB hash 1 GiB from the page cache with the same CPU
/// time (about 0.66 s), so smaller buffers cost no speed.
const MIN_READ_CHUNK: usize = 64 << 10;
/// All workers' read buffers together stay within this (unless there are more than 128 workers),
/// so that peak memory does not grow with the number of CPUs: with one 1 MiB buffer per worker,
/// the default `--jobs` on a 32-core node would add 32 MiB.
const READ_BUFFERS_BUDGET: usize = 8 << 20;

/// Each worker's read buffer: [`READ_CHUNK`], shrunk to share [`READ_BUFFERS_BUDGET`] among
/// `jobs` workers, never larger than the biggest item.
fn read_chunk(jobs: usize, biggest: u64) -> usize {
    let share = (READ_BUFFERS_BUDGET / jobs.max(1)).clamp(MIN_READ_CHUNK, READ_CHUNK);
    usize::try_from(biggest.max(1)).map_or(share, |b| share.min(b))
}

/// Receives hashing progress (from worker threads).
pub trait Progress: Sync {
    /// Hashing starts; `total_bytes` will be read.
    fn start(&self, total_bytes: u64);
    /// `bytes` more were hashed.
    fn advance(&self, bytes: u64);
}

impl<F: Fn(u64) + Sync> Progress for F {
    fn start(&self, _total_bytes: u64) {}
    fn advance(&self, bytes: u64) {
        self(bytes)
    }
}

/// Tuning and feedback for hashing.
pub struct HashOptions<'a> {
    /// Worker threads (at least 1).
    pub jobs: usize,
    /// Told how many bytes there are and how far hashing got.
    pub progress: Option<&'a dyn Progress>,
}

impl Default for HashOptions<'_> {
    fn default() -> Self {
        HashOptions {
            jobs: default_jobs(),
            progress: None,
        }
    }
}

/// The number of CPUs this process may use.
pub fn default_jobs() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

/// Why hashing failed.
#[derive(Debug, thiserror::Error)]
pub enum HashError {
    /// A file could not be opened or read.
    #[error("cannot read '{path}': {source}")]
    Io {
        /// Model-relative path.
        path: String,
        /// The cause.
        source: std::io::Error,
    },
    /// A file became shorter while it was being hashed.
    ///
    /// No longer produced: a file that changes size is reported as [`HashError::FileChanged`].
    /// Kept so that callers naming it still compile.
    #[error("'{0}' changed size while it was being hashed; retry when nothing writes to the model")]
    Shrunk(String),
    /// A file is not the one the walk found, or changed while it was hashed: what was hashed
    /// cannot be trusted to be what is on disk, so nothing is reported as verified.
    #[error("'{path}' changed after the model was listed: {what}")]
    FileChanged {
        /// Model-relative path.
        path: String,
        /// What changed.
        what: FileChange,
    },
    /// A file name cannot be written in shard form (the peer splits shard names on ':').
    #[error("'{0}' contains ':' and cannot be named in a shards manifest")]
    ColonInShardName(String),
    /// Walking the model failed.
    #[error(transparent)]
    Walk(#[from] WalkError),
}

struct Item<'a> {
    file: &'a ModelFile,
    range: Option<ShardRange>,
    len: u64,
}

fn items(files: &[ModelFile], method: Method) -> Result<Vec<Item<'_>>, HashError> {
    let mut out = Vec::new();
    for file in files {
        match method {
            Method::Files => out.push(Item {
                file,
                range: None,
                len: file.size,
            }),
            Method::Shards { shard_size } => {
                let name = file.path.to_string();
                if name.contains(':') {
                    return Err(HashError::ColonInShardName(name));
                }
                let mut start = 0;
                while start < file.size {
                    let end = file.size.min(start.saturating_add(shard_size));
                    out.push(Item {
                        file,
                        range: Some(ShardRange { start, end }),
                        len: end - start,
                    });
                    start = end;
                }
            }
        }
    }
    Ok(out)
}

fn hash_item(
    item: &Item<'_>,
    alg: HashAlgorithm,
    buf: &mut [u8],
    progress: Option<&dyn Progress>,
) -> Result<Vec<u8>, HashError> {
    let fail = |e| match e {
        PinError::Io(source) => HashError::Io {
            path: item.file.path.to_string(),
            source,
        },
        PinError::Changed(what) => HashError::FileChanged {
            path: item.file.path.to_string(),
            what,
        },
    };
    let pinned = pinned::open(item.file).map_err(fail)?;
    let mut hasher = alg.hasher();
    // The walk's size bounds the read: a file that grows is caught by `finish`, not read on.
    let (start, end) = match item.range {
        Some(r) => (r.start, r.end),
        None => (0, item.file.size),
    };
    let mut offset = start;
    while offset < end {
        let want = buf
            .len()
            .min(usize::try_from(end - offset).unwrap_or(usize::MAX));
        let n = match pinned.file.read_at(&mut buf[..want], offset) {
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(fail(PinError::Io(e))),
        };
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
        offset += n as u64;
        if let Some(p) = progress {
            p.advance(n as u64);
        }
    }
    pinned.finish(offset - start, end - start).map_err(fail)?;
    Ok(hasher.finish())
}

/// Hashes `files` into resources with `jobs` threads, sorted the way the peer writes them.
pub fn hash_files(
    files: &[ModelFile],
    method: Method,
    alg: HashAlgorithm,
    opts: &HashOptions<'_>,
) -> Result<Vec<Resource>, HashError> {
    let mut work = items(files, method)?;
    if let Some(p) = opts.progress {
        p.start(work.iter().map(|w| w.len).sum());
    }
    // Largest first: the pool stays busy until the end.
    work.sort_by_key(|w| std::cmp::Reverse(w.len));
    let jobs = opts.jobs.max(1).min(work.len().max(1));
    let chunk = read_chunk(jobs, work.iter().map(|w| w.len).max().unwrap_or(0));
    let next = AtomicUsize::new(0);
    let failed = AtomicBool::new(false);
    let results: Mutex<Vec<Resource>> = Mutex::new(Vec::with_capacity(work.len()));
    let first_error: Mutex<Option<HashError>> = Mutex::new(None);
    std::thread::scope(|scope| {
        for _ in 0..jobs {
            scope.spawn(|| {
                let mut buf = vec![0u8; chunk];
                let mut local = Vec::new();
                while !failed.load(Ordering::Relaxed) {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    let Some(item) = work.get(i) else { break };
                    match hash_item(item, alg, &mut buf, opts.progress) {
                        Ok(digest) => local.push(Resource {
                            name: ResourceName {
                                path: item.file.path.clone(),
                                shard: item.range,
                            },
                            digest,
                        }),
                        Err(e) => {
                            failed.store(true, Ordering::Relaxed);
                            first_error
                                .lock()
                                .unwrap_or_else(|p| p.into_inner())
                                .get_or_insert(e);
                            break;
                        }
                    }
                }
                results
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .append(&mut local);
            });
        }
    });
    if let Some(e) = first_error.into_inner().unwrap_or_else(|p| p.into_inner()) {
        return Err(e);
    }
    let mut resources = results.into_inner().unwrap_or_else(|p| p.into_inner());
    sort_resources(&mut resources);
    Ok(resources)
}

/// The manifest of a model: walk it, hash every selected file.
pub struct Serialized {
    /// The resources, sorted.
    pub resources: Vec<Resource>,
    /// Warnings from the walk.
    pub warnings: Vec<String>,
    /// Bytes hashed.
    pub bytes: u64,
}

/// Walks and hashes the model at `root`.
pub fn serialize_model(
    root: &Path,
    sel: &Selection,
    method: Method,
    alg: HashAlgorithm,
    keep: &BTreeSet<ModelPath>,
    opts: &HashOptions<'_>,
) -> Result<Serialized, HashError> {
    let walked = walk::walk(root, sel, keep)?;
    let bytes = walked.files.iter().map(|f| f.size).sum();
    let resources = hash_files(&walked.files, method, alg, opts)?;
    Ok(Serialized {
        resources,
        warnings: walked.warnings,
        bytes,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;

    fn sample() -> tempfile::TempDir {
        let d = tempfile::tempdir().unwrap();
        fs::create_dir(d.path().join("d")).unwrap();
        fs::write(d.path().join("d/f"), b"0123456789").unwrap();
        fs::write(d.path().join("empty"), b"").unwrap();
        fs::write(d.path().join("big"), vec![7u8; 3 * READ_CHUNK + 5]).unwrap();
        d
    }

    fn names(r: &[Resource]) -> Vec<String> {
        r.iter().map(|r| r.name.to_string()).collect()
    }

    #[test]
    fn files_method_matches_sha256sum() {
        let d = sample();
        let s = serialize_model(
            d.path(),
            &Selection::default(),
            Method::Files,
            HashAlgorithm::Sha256,
            &BTreeSet::new(),
            &HashOptions::default(),
        )
        .unwrap();
        assert_eq!(names(&s.resources), ["big", "d/f", "empty"]);
        assert_eq!(
            hex::encode(&s.resources[1].digest),
            "84d89877f0d4041efb6bf91a16f0248f2fd573e6af05c19f96bedb9f882f7882"
        );
        assert_eq!(s.bytes, 3 * READ_CHUNK as u64 + 15);
    }

    #[test]
    fn shards_skip_empty_files_and_cut_ranges() {
        let d = sample();
        let s = serialize_model(
            d.path(),
            &Selection::default(),
            Method::Shards { shard_size: 4 },
            HashAlgorithm::Sha256,
            &BTreeSet::new(),
            &HashOptions {
                jobs: 3,
                progress: None,
            },
        )
        .unwrap();
        let n = names(&s.resources);
        assert!(n.contains(&"d/f:8:10".to_string()), "{n:?}");
        assert!(!n.iter().any(|x| x.starts_with("empty")));
        assert_eq!(
            s.resources
                .iter()
                .filter(|r| r.name.path.to_string() == "d/f")
                .count(),
            3
        );
    }

    #[test]
    fn result_does_not_depend_on_jobs() {
        let d = sample();
        let run = |jobs| {
            serialize_model(
                d.path(),
                &Selection::default(),
                Method::Shards { shard_size: 1000 },
                HashAlgorithm::Blake2b,
                &BTreeSet::new(),
                &HashOptions {
                    jobs,
                    progress: None,
                },
            )
            .unwrap()
            .resources
        };
        assert_eq!(run(1), run(4));
    }

    #[test]
    fn progress_counts_every_byte() {
        let d = sample();
        let seen = std::sync::atomic::AtomicU64::new(0);
        let cb = |n: u64| {
            seen.fetch_add(n, Ordering::Relaxed);
        };
        serialize_model(
            d.path(),
            &Selection::default(),
            Method::Files,
            HashAlgorithm::Blake3,
            &BTreeSet::new(),
            &HashOptions {
                jobs: 2,
                progress: Some(&cb),
            },
        )
        .unwrap();
        assert_eq!(seen.load(Ordering::Relaxed), 3 * READ_CHUNK as u64 + 15);
    }

    #[test]
    fn read_buffers_share_a_budget() {
        assert_eq!(read_chunk(1, u64::MAX), READ_CHUNK);
        assert_eq!(read_chunk(8, u64::MAX), READ_CHUNK);
        assert_eq!(read_chunk(32, u64::MAX), 256 << 10);
        assert_eq!(read_chunk(1000, u64::MAX), MIN_READ_CHUNK);
        assert_eq!(read_chunk(2, 10), 10);
        assert_eq!(read_chunk(2, 0), 1);
        for jobs in [1, 2, 3, 7, 16, 100, 128] {
            assert!(jobs * read_chunk(jobs, u64::MAX) <= READ_BUFFERS_BUDGET);
        }
    }

    #[test]
    fn colon_names_refused_in_shard_mode() {
        let d = tempfile::tempdir().unwrap();
        fs::write(d.path().join("a:b"), b"x").unwrap();
        let err = serialize_model(
            d.path(),
            &Selection::default(),
            Method::Shards { shard_size: 4 },
            HashAlgorithm::Sha256,
            &BTreeSet::new(),
            &HashOptions::default(),
        )
        .err()
        .unwrap();
        assert!(matches!(err, HashError::ColonInShardName(_)));
    }
}
