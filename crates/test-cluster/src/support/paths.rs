//! Where the workspace, the shared fixtures and the built agent are.

use std::path::{Path, PathBuf};
use std::time::SystemTime;

use crate::pod_runner::{ImageMap, VERIFIER_IMAGE};

/// The crates whose sources make up the `model-signing` binary.
const AGENT_CRATES: [&str; 2] = ["crates/model-signing", "crates/model-signing-cli"];
/// Parts of those crates that do not go into the binary: a change there must not make a fresh
/// binary look stale (`cargo build -p model-signing-cli` would not rebuild it).
const NOT_IN_BINARY: [&str; 4] = ["tests", "benches", "examples", "target"];

/// The workspace root (the directory holding the top `Cargo.toml`).
pub fn workspace_dir() -> PathBuf {
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR"));
    // crates/test-cluster -> the workspace; `ancestors` keeps paths free of `..` for messages.
    manifest
        .ancestors()
        .nth(2)
        .map_or_else(|| manifest.join("../.."), Path::to_path_buf)
}

/// The shared, read-only fixtures: the `shared/fixtures` directory beside the repository.
/// Tests read them in place and never copy them into the repository.
pub fn fixtures() -> PathBuf {
    let workspace = workspace_dir();
    workspace
        .parent()
        .map_or_else(|| workspace.join(".."), Path::to_path_buf)
        .join("shared/fixtures")
}

/// One file or directory below [`fixtures`].
pub fn fixture(rel: &str) -> PathBuf {
    fixtures().join(rel)
}

/// Cargo's target dir: `$CARGO_TARGET_DIR`, else `<workspace>/target`.
pub fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace_dir().join("target"))
}

/// Where `cargo build --release -p model-signing-cli` puts the agent; the pod runner maps the
/// verifier image to it unless `MVO_POD_RUNNER_IMAGES` says otherwise.
pub fn default_agent_path() -> PathBuf {
    target_dir().join("release/model-signing")
}

/// The `model-signing` binary the pod runner will run for the verifier image.
///
/// # Panics
///
/// With the command that fixes it, when the binary is missing or, for the default build path,
/// older than any source file of `crates/model-signing` or `crates/model-signing-cli`: a test
/// must never pass or fail because of a stale agent.
pub fn agent_binary() -> PathBuf {
    const FIX: &str = "run `cargo build --release -p model-signing-cli` (or `make release`)";
    let image = format!("{VERIFIER_IMAGE}:test");
    let binary = ImageMap::from_env()
        .resolve(&image)
        .map(Path::to_path_buf)
        .unwrap_or_else(default_agent_path);
    let built = std::fs::metadata(&binary)
        .and_then(|m| m.modified())
        .unwrap_or_else(|e| panic!("the agent {} is missing ({e}): {FIX}", binary.display()));
    // A binary mapped on purpose (MVO_POD_RUNNER_IMAGES) is not ours to judge by our sources.
    if binary != default_agent_path() {
        return binary;
    }
    let root = workspace_dir();
    let newest = AGENT_CRATES
        .iter()
        .filter_map(|dir| newest_source(&root.join(dir)))
        .max_by_key(|(time, _)| *time);
    if let Some((time, source)) = newest
        && time > built
    {
        panic!(
            "the agent {} is older than {}: {FIX}",
            binary.display(),
            source.display()
        );
    }
    binary
}

/// The newest `.rs` or `Cargo.toml` below `dir` (skipping [`NOT_IN_BINARY`]) and its mtime.
fn newest_source(dir: &Path) -> Option<(SystemTime, PathBuf)> {
    let mut newest: Option<(SystemTime, PathBuf)> = None;
    for entry in std::fs::read_dir(dir).ok()?.flatten() {
        let path = entry.path();
        let name = entry.file_name();
        let Ok(kind) = entry.file_type() else {
            continue;
        };
        let candidate = if kind.is_dir() {
            if NOT_IN_BINARY.iter().any(|n| name == *n) {
                continue;
            }
            newest_source(&path)
        } else if path.extension().is_some_and(|e| e == "rs") || name == "Cargo.toml" {
            entry
                .metadata()
                .and_then(|m| m.modified())
                .ok()
                .map(|t| (t, path))
        } else {
            None
        };
        if let Some(c) = candidate
            && newest.as_ref().is_none_or(|n| c.0 > n.0)
        {
            newest = Some(c);
        }
    }
    newest
}

/// Whether a test may rewrite a generated file it checks: only `<var>=1` asks for it (`0`,
/// empty or any other value does not), and never under CI, where a drift must fail.
pub fn update_requested(var: &str) -> bool {
    let asked = std::env::var(var).is_ok_and(|v| v == "1");
    assert!(
        !(asked && std::env::var_os("CI").is_some()),
        "{var}=1 is refused under CI: run `make crds` locally and commit the result"
    );
    asked
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn newest_source_skips_parts_outside_the_binary() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("src/sub")).unwrap();
        std::fs::create_dir_all(dir.path().join("tests")).unwrap();
        std::fs::write(dir.path().join("src/sub/a.rs"), "").unwrap();
        std::fs::write(dir.path().join("notes.md"), "").unwrap();
        std::thread::sleep(std::time::Duration::from_millis(20));
        std::fs::write(dir.path().join("tests/t.rs"), "").unwrap();
        let (_, path) = newest_source(dir.path()).unwrap();
        assert!(path.ends_with("src/sub/a.rs"), "{}", path.display());
    }

    #[test]
    fn fixtures_are_beside_the_repository() {
        assert!(
            workspace_dir()
                .join("crates/test-cluster/Cargo.toml")
                .is_file()
        );
        assert_eq!(
            fixtures(),
            workspace_dir().parent().unwrap().join("shared/fixtures")
        );
    }
}
