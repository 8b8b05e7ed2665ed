//! Turning command-line paths into model-relative ignore paths.

use std::path::{Component, Path, PathBuf};

use anyhow::{Context, Result, bail};
use model_signing::name::ModelPath;

use crate::fix::{Setting, Unreadable};

/// Lexically normalizes `p` (no file-system access): drops `.`, folds `..`.
fn normalize(p: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for c in p.components() {
        match c {
            Component::CurDir => {}
            Component::ParentDir => {
                out.pop();
            }
            other => out.push(other.as_os_str()),
        }
    }
    out
}

/// Absolute, with symlinks resolved as far as the path exists.
fn resolve(p: &Path) -> PathBuf {
    let abs = if p.is_absolute() {
        p.to_path_buf()
    } else {
        std::env::current_dir().unwrap_or_default().join(p)
    };
    if let Ok(c) = std::fs::canonicalize(&abs) {
        return c;
    }
    // Resolve the longest existing ancestor, then append the rest.
    let abs = normalize(&abs);
    let mut existing = abs.as_path();
    let mut rest = Vec::new();
    while let Some(parent) = existing.parent() {
        if let Some(name) = existing.file_name() {
            rest.push(name.to_os_string());
        }
        existing = parent;
        if let Ok(c) = std::fs::canonicalize(existing) {
            let mut out = c;
            out.extend(rest.iter().rev());
            return out;
        }
    }
    abs
}

fn relative_to(root: &Path, p: &Path) -> Option<ModelPath> {
    let rel = p.strip_prefix(root).ok()?;
    if rel.as_os_str().is_empty() {
        return None;
    }
    ModelPath::parse(rel.to_str()?).ok()
}

/// The model root a relative path is measured from: the directory itself (a single-file
/// model has no inner paths).
pub fn model_root(model: &Path) -> Result<PathBuf> {
    std::fs::canonicalize(model).map_err(|source| {
        Unreadable {
            setting: Setting::ModelPath,
            what: "model at",
            path: model.to_path_buf(),
            source,
        }
        .into()
    })
}

/// Resolves a user-given ignore path. Like the peer, a relative path is first taken from the
/// current directory; unlike the peer, if that lands outside the model it is taken from the
/// model root instead of being silently dropped, and an absolute path outside the model is an
/// error.
pub fn ignore_path(root: &Path, given: &Path) -> Result<ModelPath> {
    if let Some(p) = relative_to(root, &resolve(given)) {
        return Ok(p);
    }
    if given.is_absolute() {
        bail!(
            "ignore path {} is not inside the model at {}",
            given.display(),
            root.display()
        );
    }
    if given.components().any(|c| c == Component::ParentDir) {
        bail!(
            "ignore path {} is not inside the model at {}",
            given.display(),
            root.display()
        );
    }
    let norm = normalize(given);
    let text = norm
        .to_str()
        .with_context(|| format!("ignore path {} is not valid UTF-8", given.display()))?;
    if text.is_empty() {
        bail!(
            "ignore path {} is not inside the model at {}",
            given.display(),
            root.display()
        );
    }
    ModelPath::parse(text).with_context(|| format!("invalid ignore path {}", given.display()))
}

/// The signature's model-relative path when it lies inside the model (it is then left out).
pub fn signature_inside(root: &Path, signature: &Path) -> Option<ModelPath> {
    relative_to(root, &resolve(signature))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ignore_paths_from_cwd_or_model_root() {
        let d = tempfile::tempdir().unwrap();
        let root = std::fs::canonicalize(d.path()).unwrap();
        std::fs::create_dir_all(root.join("sub/deeper")).unwrap();
        let abs = root.join("sub/deeper");
        assert_eq!(ignore_path(&root, &abs).unwrap().to_string(), "sub/deeper");
        assert_eq!(
            ignore_path(&root, Path::new("sub/./deeper"))
                .unwrap()
                .to_string(),
            "sub/deeper"
        );
        assert!(ignore_path(&root, Path::new("/etc")).is_err());
        assert!(ignore_path(&root, Path::new("../x")).is_err());
        assert_eq!(
            signature_inside(&root, &root.join("model.sig"))
                .unwrap()
                .to_string(),
            "model.sig"
        );
        assert!(signature_inside(&root, Path::new("/tmp/elsewhere.sig")).is_none());
    }
}
