//! Where the etcd and kube-apiserver test tools are cached.

use std::path::{Path, PathBuf};

use crate::Error;

/// The kube-apiserver version built by `hack/testbin` (kept in sync with
/// `hack/testbin/kube-apiserver/go.mod` by a unit test).
pub const K8S_VERSION: &str = "v1.36.3";

/// The directory holding the cached binaries.
///
/// `MVO_TESTBIN_DIR` wins; otherwise `$MVO_CACHE_DIR/testbin/<version>` (the
/// Makefile exports `MVO_CACHE_DIR`); otherwise the same under
/// `${XDG_CACHE_HOME:-$HOME/.cache}/model-validation-operator`, which is where
/// `hack/testbin/build.sh` puts them by default.
pub fn testbin_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("MVO_TESTBIN_DIR") {
        return PathBuf::from(dir);
    }
    let cache = std::env::var_os("MVO_CACHE_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            let base = std::env::var_os("XDG_CACHE_HOME")
                .map(PathBuf::from)
                .unwrap_or_else(|| {
                    PathBuf::from(std::env::var_os("HOME").unwrap_or_else(|| "/root".into()))
                        .join(".cache")
                });
            base.join("model-validation-operator")
        });
    cache.join("testbin").join(K8S_VERSION)
}

/// Paths of the two server binaries, checked to exist.
#[derive(Debug, Clone)]
pub struct Binaries {
    /// The etcd server.
    pub etcd: PathBuf,
    /// The Kubernetes API server.
    pub kube_apiserver: PathBuf,
}

impl Binaries {
    /// Finds both binaries in [`testbin_dir`].
    pub fn locate() -> Result<Self, Error> {
        Self::in_dir(&testbin_dir())
    }

    /// Finds both binaries in `dir`.
    pub fn in_dir(dir: &Path) -> Result<Self, Error> {
        Ok(Binaries {
            etcd: existing(dir, "etcd")?,
            kube_apiserver: existing(dir, "kube-apiserver")?,
        })
    }
}

fn existing(dir: &Path, name: &'static str) -> Result<PathBuf, Error> {
    let path = dir.join(name);
    if path.is_file() {
        Ok(path)
    } else {
        Err(Error::BinaryMissing { name, path })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn version_matches_the_go_module() {
        let gomod = include_str!("../../../hack/testbin/kube-apiserver/go.mod");
        let line = format!("k8s.io/kubernetes {K8S_VERSION}");
        assert!(
            gomod
                .lines()
                .any(|l| l.trim().starts_with(&format!("{line} ")) || l.trim() == line),
            "hack/testbin/kube-apiserver/go.mod must contain `{line}`"
        );
    }

    #[test]
    fn missing_binary_tells_what_to_do() {
        let dir = tempfile::tempdir().unwrap();
        let err = Binaries::in_dir(dir.path()).unwrap_err().to_string();
        assert!(err.contains("etcd not found at"), "{err}");
        assert!(err.contains("run `make testbin`"), "{err}");
    }
}
