//! A model file swapped, resized, made a symlink or written between the walk and the end of its
//! hashing is never hashed as if it were the file found: hashing fails naming it. A swapper
//! racing against verification never makes it report the swapped content as verified.

mod support;

use std::collections::BTreeSet;
use std::fs;
use std::io::Write;
use std::os::unix::fs::symlink;
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime};

use model_signing::error::Error;
use model_signing::hashing::HashAlgorithm;
use model_signing::manifest::{Method, Resource};
use model_signing::pinned::FileChange;
use model_signing::serialize::{HashError, HashOptions, hash_files};
use model_signing::sign::{KeySigner, sign_model};
use model_signing::verify::{KeyVerifier, VerifyOptions, verify_model};
use model_signing::walk::{Selection, walk};
use support::signing_key;

const ALGORITHMS: [HashAlgorithm; 3] = [
    HashAlgorithm::Sha256,
    HashAlgorithm::Blake2b,
    HashAlgorithm::Blake3,
];
const METHODS: [Method; 2] = [Method::Files, Method::Shards { shard_size: 16 }];

/// A model with `w.bin` (64 bytes) and `other.bin`.
fn model() -> tempfile::TempDir {
    let d = tempfile::tempdir().unwrap();
    fs::write(d.path().join("w.bin"), [1u8; 64]).unwrap();
    fs::write(d.path().join("other.bin"), b"other").unwrap();
    d
}

fn one_job() -> HashOptions<'static> {
    HashOptions {
        jobs: 1,
        progress: None,
    }
}

/// Walks `root`, lets `change` act on it, then hashes what the walk found.
fn hash_after(
    root: &Path,
    sel: &Selection,
    method: Method,
    alg: HashAlgorithm,
    change: impl FnOnce(),
) -> Result<Vec<Resource>, HashError> {
    let walked = walk(root, sel, &BTreeSet::new()).unwrap();
    change();
    hash_files(&walked.files, method, alg, &one_job())
}

/// Writes `bytes` at the end of the file at `path`.
fn append(path: &Path, bytes: &[u8]) {
    let mut f = fs::OpenOptions::new().append(true).open(path).unwrap();
    f.write_all(bytes).unwrap();
}

/// Asserts that `r` failed because `name` changed as `what` says, with a message naming both.
fn assert_changed(r: Result<Vec<Resource>, HashError>, name: &str, what: FileChange, text: &str) {
    let err = r.unwrap_err();
    let msg = err.to_string();
    match &err {
        HashError::FileChanged { path, what: w } => {
            assert_eq!(path, name, "{msg}");
            assert_eq!(*w, what, "{msg}");
        }
        other => panic!("expected a changed file, got {other:?}"),
    }
    assert!(msg.contains(&format!("'{name}'")), "{msg}");
    assert!(msg.contains(text), "{msg}");
}

#[test]
fn untouched_files_hash_the_same_with_every_method_and_algorithm() {
    let d = model();
    for method in METHODS {
        for alg in ALGORITHMS {
            let before = hash_after(d.path(), &Selection::default(), method, alg, || {}).unwrap();
            let again = hash_after(d.path(), &Selection::default(), method, alg, || {}).unwrap();
            assert_eq!(before, again);
            assert!(before.iter().any(|r| r.name.path.to_string() == "w.bin"));
        }
    }
}

#[test]
fn a_file_replaced_between_walk_and_open_fails_naming_it() {
    for method in METHODS {
        for alg in ALGORITHMS {
            let d = model();
            let r = hash_after(d.path(), &Selection::default(), method, alg, || {
                // Same size, other content, other inode: only the identity check can see it.
                let tmp = d.path().join("impostor.tmp");
                fs::write(&tmp, [2u8; 64]).unwrap();
                fs::rename(&tmp, d.path().join("w.bin")).unwrap();
            });
            assert_changed(r, "w.bin", FileChange::Replaced, "replaced (another inode)");
        }
    }
}

#[test]
fn a_file_that_grows_or_shrinks_between_walk_and_read_fails_with_its_sizes() {
    for method in METHODS {
        let d = model();
        let r = hash_after(
            d.path(),
            &Selection::default(),
            method,
            ALGORITHMS[0],
            || append(&d.path().join("w.bin"), b"extra!"),
        );
        assert_changed(
            r,
            "w.bin",
            FileChange::SizeChanged { from: 64, to: 70 },
            "size changed from 64 to 70 bytes",
        );
        let r = hash_after(
            d.path(),
            &Selection::default(),
            method,
            ALGORITHMS[2],
            || {
                fs::OpenOptions::new()
                    .write(true)
                    .open(d.path().join("w.bin"))
                    .unwrap()
                    .set_len(10)
                    .unwrap();
            },
        );
        assert_changed(
            r,
            "w.bin",
            FileChange::SizeChanged { from: 70, to: 10 },
            "size changed from 70 to 10 bytes",
        );
    }
}

#[test]
fn a_file_swapped_for_a_symlink_after_the_walk_fails() {
    let d = model();
    // The link points at a file with the very same bytes: following it would hash correctly,
    // but a symlink was not what the walk found.
    fs::write(d.path().join("same.bin"), [1u8; 64]).unwrap();
    let r = hash_after(
        d.path(),
        &Selection::default(),
        Method::Files,
        ALGORITHMS[0],
        || {
            fs::remove_file(d.path().join("w.bin")).unwrap();
            symlink("same.bin", d.path().join("w.bin")).unwrap();
        },
    );
    assert_changed(r, "w.bin", FileChange::BecameSymlink, "became a symlink");
}

#[test]
fn a_followed_symlink_reads_the_target_the_walk_resolved() {
    let d = tempfile::tempdir().unwrap();
    let m = d.path().join("m");
    fs::create_dir_all(&m).unwrap();
    fs::create_dir_all(d.path().join("outside")).unwrap();
    fs::write(d.path().join("outside/t.bin"), b"genuine").unwrap();
    fs::write(d.path().join("outside/i.bin"), b"impostr").unwrap();
    symlink("../outside/t.bin", m.join("l")).unwrap();
    let sel = Selection {
        allow_symlinks: true,
        ..Default::default()
    };
    let genuine = hash_after(&m, &sel, Method::Files, ALGORITHMS[0], || {}).unwrap();
    // Retargeted after the walk: the target the walk resolved is read, never the impostor.
    let r = hash_after(&m, &sel, Method::Files, ALGORITHMS[0], || {
        fs::remove_file(m.join("l")).unwrap();
        symlink("../outside/i.bin", m.join("l")).unwrap();
    });
    assert_eq!(r.unwrap(), genuine);
    // The resolved target itself made a symlink after the walk: refused, named as the link.
    fs::remove_file(m.join("l")).unwrap();
    symlink("../outside/t.bin", m.join("l")).unwrap();
    let r = hash_after(&m, &sel, Method::Files, ALGORITHMS[0], || {
        fs::remove_file(d.path().join("outside/t.bin")).unwrap();
        symlink("i.bin", d.path().join("outside/t.bin")).unwrap();
    });
    assert_changed(r, "l", FileChange::BecameSymlink, "became a symlink");
}

/// A 3 MiB `big.bin` whose modification time lies in the past, so that a write during hashing
/// moves it whatever the filesystem's timestamp granularity.
fn big_model() -> tempfile::TempDir {
    let d = tempfile::tempdir().unwrap();
    let f = fs::File::create(d.path().join("big.bin")).unwrap();
    f.set_len(3 << 20).unwrap();
    f.set_modified(SystemTime::UNIX_EPOCH + Duration::from_secs(1_000_000_000))
        .unwrap();
    d
}

/// Hashes `big.bin` with one job; `during` runs once, after the first chunk was hashed.
fn hash_big_while(d: &Path, during: impl Fn() + Sync) -> Result<Vec<Resource>, HashError> {
    let done = AtomicBool::new(false);
    let progress = |_: u64| {
        if !done.swap(true, Ordering::SeqCst) {
            during();
        }
    };
    let walked = walk(d, &Selection::default(), &BTreeSet::new()).unwrap();
    let r = hash_files(
        &walked.files,
        Method::Files,
        HashAlgorithm::Blake3,
        &HashOptions {
            jobs: 1,
            progress: Some(&progress),
        },
    );
    assert!(
        done.load(Ordering::SeqCst),
        "hashing took more than one read"
    );
    r
}

#[test]
fn a_file_written_while_it_is_hashed_fails() {
    let d = big_model();
    assert_eq!(hash_big_while(d.path(), || {}).unwrap().len(), 1);
    // Same size, bytes already hashed rewritten: only the modification time tells.
    let r = hash_big_while(d.path(), || {
        let f = fs::OpenOptions::new()
            .write(true)
            .open(d.path().join("big.bin"))
            .unwrap();
        std::os::unix::fs::FileExt::write_all_at(&f, b"tampered", 0).unwrap();
    });
    assert_changed(
        r,
        "big.bin",
        FileChange::ChangedWhileHashed,
        "changed while it was hashed",
    );
    let r = hash_big_while(d.path(), || append(&d.path().join("big.bin"), b"x"));
    assert_changed(
        r,
        "big.bin",
        FileChange::SizeChanged {
            from: 3 << 20,
            to: (3 << 20) + 1,
        },
        "size changed from 3145728 to 3145729 bytes",
    );
}

/// What one verification during the race saw.
#[derive(Debug, Default)]
struct Outcomes {
    runs: u32,
    verified: u32,
    file_changed: u32,
    digest_mismatch: u32,
}

#[test]
fn a_swapper_racing_verification_never_gets_the_impostor_verified() {
    const NAME: &str = "weights.bin";
    const SIZE: usize = 1 << 20;
    let d = tempfile::tempdir().unwrap();
    let m = d.path().join("model");
    let store = d.path().join("store");
    fs::create_dir_all(&m).unwrap();
    fs::create_dir_all(&store).unwrap();
    let genuine: Vec<u8> = (0..SIZE).map(|i| (i % 251) as u8).collect();
    fs::write(store.join("genuine"), &genuine).unwrap();
    // Same size as the genuine file: no size check can catch the swap, only identity or digest.
    fs::write(store.join("impostor"), vec![0xEEu8; SIZE]).unwrap();
    fs::hard_link(store.join("genuine"), m.join(NAME)).unwrap();
    fs::write(m.join("config.json"), b"{}").unwrap();

    let signer = KeySigner::new(signing_key());
    let sign = |method, alg| {
        let (bundle, _) = sign_model(
            &m,
            &Selection::default(),
            method,
            alg,
            &signer,
            &HashOptions::default(),
        )
        .unwrap();
        bundle.to_json().into_bytes()
    };
    let bundles = [
        sign(Method::Files, HashAlgorithm::Sha256),
        sign(
            Method::Shards {
                shard_size: 256 << 10,
            },
            HashAlgorithm::Blake3,
        ),
    ];
    let verifier = KeyVerifier::new(signing_key().public_key().clone(), "key");

    let stop = AtomicBool::new(false);
    let swaps = AtomicU64::new(0);
    let mut seen = Outcomes::default();
    std::thread::scope(|s| {
        s.spawn(|| {
            // Atomic renames alternate the model file between the genuine inode and the
            // impostor's (hard links keep both inodes alive in `store`).
            let tmp = store.join("tmp");
            while !stop.load(Ordering::Relaxed) {
                for source in ["impostor", "genuine"] {
                    fs::hard_link(store.join(source), &tmp).unwrap();
                    fs::rename(&tmp, m.join(NAME)).unwrap();
                }
                swaps.fetch_add(1, Ordering::Relaxed);
            }
        });
        let started = Instant::now();
        while seen.runs < 400 && started.elapsed() < Duration::from_secs(20) {
            let opts = VerifyOptions {
                ignore_unsigned_files: seen.runs % 3 == 2,
                hashing: HashOptions {
                    jobs: 1 + (seen.runs % 2) as usize,
                    progress: None,
                },
                ..Default::default()
            };
            let bundle = &bundles[seen.runs as usize % bundles.len()];
            seen.runs += 1;
            match verify_model(&m, bundle, &verifier, &opts) {
                // The digests matched the signed ones: the genuine bytes were hashed.
                Ok(_) => seen.verified += 1,
                Err(Error::Hash(HashError::FileChanged { path, .. })) => {
                    assert_eq!(path, NAME);
                    seen.file_changed += 1;
                }
                Err(Error::Mismatch(mm)) => {
                    let changed: Vec<&str> = mm.changed.iter().map(|c| c.path.as_str()).collect();
                    assert_eq!(changed, [NAME], "{mm}");
                    assert!(mm.missing.is_empty() && mm.extra.is_empty(), "{mm}");
                    seen.digest_mismatch += 1;
                }
                Err(other) => panic!("unexpected failure during the race: {other}"),
            }
            if seen.runs >= 40 && seen.file_changed > 0 && seen.digest_mismatch > 0 {
                break;
            }
        }
        stop.store(true, Ordering::Relaxed);
    });
    let swaps = swaps.load(Ordering::Relaxed);
    eprintln!("race: {seen:?}, swapper cycles {swaps}");
    assert!(swaps > 0, "the swapper never ran");
    assert!(
        seen.file_changed + seen.digest_mismatch > 0,
        "no run observed the swap: {seen:?}"
    );
    // Once the swapper stopped (on the genuine inode), the model verifies again.
    for bundle in &bundles {
        verify_model(&m, bundle, &verifier, &VerifyOptions::default()).unwrap();
    }
}
