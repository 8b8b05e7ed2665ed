//! Which local binary stands in for a container image.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// The image of the verification agent; it maps to `target/release/model-signing`.
pub const VERIFIER_IMAGE: &str = "ghcr.io/model-validation-operator/model-signing";

/// Maps container images to local binaries (the image's entrypoint).
///
/// Lookups try the image as written, then without its tag or digest, so
/// `repo/name:v1` and `repo/name@sha256:...` both match an entry `repo/name`.
#[derive(Debug, Clone, Default)]
pub struct ImageMap {
    entries: BTreeMap<String, PathBuf>,
}

impl ImageMap {
    /// An empty map.
    pub fn new() -> Self {
        Self::default()
    }

    /// The default map: [`VERIFIER_IMAGE`] to `model-signing` in this
    /// workspace's release target dir (honouring `CARGO_TARGET_DIR`), plus
    /// entries from `MVO_POD_RUNNER_IMAGES` (`image=/path,image2=/path2`),
    /// which win.
    pub fn from_env() -> Self {
        let mut map = Self::new().with(VERIFIER_IMAGE, crate::support::default_agent_path());
        if let Ok(spec) = std::env::var("MVO_POD_RUNNER_IMAGES") {
            map.extend_from_spec(&spec);
        }
        map
    }

    /// Adds or replaces one mapping.
    pub fn with(mut self, image: impl Into<String>, binary: impl Into<PathBuf>) -> Self {
        self.entries.insert(image.into(), binary.into());
        self
    }

    /// Adds the entries of an `image=/path,image2=/path2` list.
    pub fn extend_from_spec(&mut self, spec: &str) {
        for item in spec.split(',').map(str::trim).filter(|s| !s.is_empty()) {
            if let Some((image, path)) = item.split_once('=') {
                self.entries
                    .insert(image.trim().to_string(), PathBuf::from(path.trim()));
            }
        }
    }

    /// The binary for `image`, if mapped.
    pub fn resolve(&self, image: &str) -> Option<&Path> {
        self.entries
            .get(image)
            .or_else(|| self.entries.get(strip_tag(image)))
            .map(PathBuf::as_path)
    }
}

/// `repo/name:tag` or `repo/name@sha256:...` to `repo/name` (a registry port,
/// as in `host:5000/name`, is not a tag).
fn strip_tag(image: &str) -> &str {
    let image = image.split_once('@').map_or(image, |(name, _)| name);
    match image.rfind(':') {
        Some(i) if !image[i..].contains('/') => &image[..i],
        _ => image,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resolves_with_and_without_tag_or_digest() {
        let map = ImageMap::new().with("reg:5000/verifier", "/bin/v");
        assert_eq!(map.resolve("reg:5000/verifier"), Some(Path::new("/bin/v")));
        assert_eq!(
            map.resolve("reg:5000/verifier:1.2"),
            Some(Path::new("/bin/v"))
        );
        assert_eq!(
            map.resolve("reg:5000/verifier@sha256:abcd"),
            Some(Path::new("/bin/v"))
        );
        assert_eq!(map.resolve("reg:5000/other"), None);
    }

    #[test]
    fn spec_entries_override_defaults() {
        let mut map = ImageMap::new().with("a", "/old");
        map.extend_from_spec("a=/new, b=/bin/b,");
        assert_eq!(map.resolve("a"), Some(Path::new("/new")));
        assert_eq!(map.resolve("b:latest"), Some(Path::new("/bin/b")));
    }

    #[test]
    fn default_maps_the_verifier_image() {
        let map = ImageMap::from_env();
        let bin = map.resolve(&format!("{VERIFIER_IMAGE}:v0.1.0")).unwrap();
        assert!(bin.ends_with("release/model-signing"), "{}", bin.display());
    }
}
