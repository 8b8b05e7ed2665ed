//! Helpers shared by this crate's integration tests: the binary, fixtures, streams, models.
// Each test file compiles this module into its own binary and uses only part of it: unused
// helpers there are expected, not dead.
#![allow(dead_code)]

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// The `model-signing` binary built for these tests.
pub const BIN: &str = env!("CARGO_BIN_EXE_model-signing");
/// The shared, read-only fixtures (read in place, never copied into the repository).
pub const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../../shared/fixtures");

/// A fixture by its path under [`FIXTURES`].
pub fn fixture(rel: &str) -> PathBuf {
    Path::new(FIXTURES).join(rel)
}

/// Runs the binary to completion.
pub fn run(args: &[&str]) -> Output {
    Command::new(BIN).args(args).output().unwrap()
}

/// A path as an argument.
pub fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// Standard output as text.
pub fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// Standard error as text.
pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// A small model directory `dir/model`: two files at the root and one in `sub/`.
pub fn model(dir: &Path) -> PathBuf {
    let m = dir.join("model");
    fs::create_dir_all(m.join("sub")).unwrap();
    fs::write(m.join("weights.bin"), vec![3u8; 5000]).unwrap();
    fs::write(m.join("config.json"), "{}").unwrap();
    fs::write(m.join("sub/tok.json"), "[]").unwrap();
    m
}
