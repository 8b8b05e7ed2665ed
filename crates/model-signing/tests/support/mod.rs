//! Helpers shared by the engine's integration tests: fixture paths, the fixed verification
//! time of the fixture certificates, the fixture signing key, and the `openssl` command.
// Each test file compiles this module into its own binary and uses only part of it: unused
// helpers there are expected, not dead.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, SystemTime};

/// The shared, read-only fixtures (read in place, never copied into the repository).
pub const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../../shared/fixtures");

/// A fixture by its path under [`FIXTURES`].
pub fn fixture(rel: &str) -> PathBuf {
    Path::new(FIXTURES).join(rel)
}

/// A file of the peer's test tree (`model-transparency/scripts/tests`): golden models,
/// signatures and keys.
pub fn mt(rel: &str) -> PathBuf {
    fixture(&format!("model-transparency/scripts/tests/{rel}"))
}

/// 2027-05-01T00:00:00Z: inside the validity of every fixture certificate that a test expects
/// to be valid (peer-samples leaves 2026-11-24..2027-11-24, model-transparency 2025..2035), and
/// still after `leaf-expired` and before `leaf-future`. Tests verify those certificates at this
/// time, not now, so that they do not start failing when the leaves expire.
pub fn fixture_time() -> SystemTime {
    SystemTime::UNIX_EPOCH + Duration::from_secs(1_809_129_600)
}

/// The peer-samples P-256 private key (its public half is `peer-samples/ec-p256.pub.pem`).
pub fn signing_key() -> model_signing::keys::PrivateKey {
    model_signing::keys::PrivateKey::from_pem(
        "k",
        &std::fs::read(fixture("peer-samples/ec-p256.priv.pem")).unwrap(),
        None,
    )
    .unwrap()
}

/// The peer-samples P-256 public key (`peer-samples/{name}`) as a verifier.
pub fn key_verifier(name: &str) -> model_signing::verify::KeyVerifier {
    let pem = std::fs::read(fixture(&format!("peer-samples/{name}"))).unwrap();
    model_signing::verify::KeyVerifier::new(
        model_signing::keys::PublicKey::from_pem(name, &pem).unwrap(),
        name,
    )
}

/// A small model `dir/tiny`: weights.bin (3,000 bytes), config.json and an empty sub/empty.txt.
pub fn tiny_model(dir: &Path) -> PathBuf {
    let m = dir.join("tiny");
    std::fs::create_dir_all(m.join("sub")).unwrap();
    std::fs::write(m.join("weights.bin"), vec![7u8; 3000]).unwrap();
    std::fs::write(m.join("config.json"), "{}").unwrap();
    std::fs::write(m.join("sub/empty.txt"), "").unwrap();
    m
}

/// The selection `sign` uses by default: git paths ignored.
pub fn git_ignored() -> model_signing::walk::Selection {
    model_signing::walk::Selection {
        ignore_git_paths: true,
        ..model_signing::walk::Selection::default()
    }
}

/// Signs the directory `m` as `sign key` does by default (files, sha256, git paths ignored)
/// with [`signing_key`].
pub fn sign_dir(m: &Path) -> model_signing::bundle::Bundle {
    model_signing::sign::sign_model(
        m,
        &git_ignored(),
        model_signing::manifest::Method::Files,
        model_signing::hashing::HashAlgorithm::Sha256,
        &model_signing::sign::KeySigner::new(signing_key()),
        &model_signing::serialize::HashOptions::default(),
    )
    .unwrap()
    .0
}

/// Standard base64 (with padding), as bundles use it.
pub fn b64() -> base64::engine::GeneralPurpose {
    base64::engine::general_purpose::STANDARD
}

/// Runs `openssl` in `dir`; a missing command or a failure fails the test.
pub fn openssl(dir: &Path, args: &[&str]) {
    let out = Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .output()
        .expect("the openssl command is needed for this test");
    assert!(
        out.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}
