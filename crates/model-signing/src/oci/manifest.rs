//! OCI image manifests and descriptors, as read from (or written to) a registry.
//!
//! Parsing is bounded ([`super::MAX_MANIFEST_BYTES`]) and strict about what matters to
//! verification (schema version 2, the OCI image manifest media type, well-formed descriptors)
//! and lenient about the rest: unknown fields are ignored, as the OCI image spec asks.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::{ArtifactError, IMAGE_MANIFEST_MEDIA_TYPE, MAX_MANIFEST_BYTES};

/// An OCI content descriptor.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Descriptor {
    /// The media type of the content.
    pub media_type: String,
    /// `algorithm:encoded`, e.g. `sha256:…`.
    pub digest: String,
    /// The size in bytes.
    pub size: u64,
    /// The artifact type, for descriptors of artifact manifests (referrers).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub artifact_type: Option<String>,
    /// Annotations.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
}

/// An OCI image manifest (`application/vnd.oci.image.manifest.v1+json`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ImageManifest {
    /// Always 2.
    pub schema_version: u32,
    /// [`IMAGE_MANIFEST_MEDIA_TYPE`] (optional in the spec, required by ModelPack).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub media_type: Option<String>,
    /// What kind of artifact this is (ModelPack's, or a Sigstore bundle's for a referrer).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub artifact_type: Option<String>,
    /// The config blob.
    pub config: Descriptor,
    /// The layers, in order.
    #[serde(default)]
    pub layers: Vec<Descriptor>,
    /// The manifest this one refers to (OCI 1.1 referrers).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subject: Option<Descriptor>,
    /// Annotations.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
}

/// Only the fields that say what kind of document this is, read first so that an image index
/// or a Docker manifest is named as such rather than reported as a malformed manifest.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Kind {
    #[serde(default)]
    schema_version: Option<serde_json::Value>,
    #[serde(default)]
    media_type: Option<serde_json::Value>,
    /// Present in an index (which has `manifests`, not `config` and `layers`).
    #[serde(default)]
    manifests: Option<serde::de::IgnoredAny>,
}

/// Parses an OCI image manifest. Refuses more than [`MAX_MANIFEST_BYTES`], any other schema
/// version or media type (an image index is named as one), and malformed JSON; never panics.
pub fn parse(bytes: &[u8]) -> Result<ImageManifest, ArtifactError> {
    parse_with(bytes, false)
}

/// The media type of a Docker image manifest (schema 2), the shape of an OCI image manifest.
pub const DOCKER_MANIFEST_MEDIA_TYPE: &str = "application/vnd.docker.distribution.manifest.v2+json";

/// Parses a container image's manifest: an OCI image manifest as [`parse`] does, or a Docker
/// image manifest (schema 2), which has the same shape (modelcar images are often built and
/// pushed by docker).
pub fn parse_image(bytes: &[u8]) -> Result<ImageManifest, ArtifactError> {
    parse_with(bytes, true)
}

fn parse_with(bytes: &[u8], docker: bool) -> Result<ImageManifest, ArtifactError> {
    if bytes.len() > MAX_MANIFEST_BYTES {
        return Err(ArtifactError::TooLarge(bytes.len()));
    }
    let kind: Kind =
        serde_json::from_slice(bytes).map_err(|e| ArtifactError::Malformed(e.to_string()))?;
    if let Some(media_type) = &kind.media_type {
        match media_type.as_str() {
            Some(IMAGE_MANIFEST_MEDIA_TYPE) => {}
            Some(DOCKER_MANIFEST_MEDIA_TYPE) if docker => {}
            Some(other) => return Err(ArtifactError::NotAManifest(describe_media_type(other))),
            None => return Err(ArtifactError::Malformed("mediaType is not a string".into())),
        }
    }
    if kind.media_type.is_none() && kind.manifests.is_some() {
        return Err(ArtifactError::NotAManifest("an image index".into()));
    }
    if kind.schema_version.as_ref().and_then(|v| v.as_u64()) != Some(2) {
        return Err(ArtifactError::Malformed(format!(
            "schemaVersion is {}, expected 2",
            kind.schema_version
                .map_or("missing".to_string(), |v| v.to_string())
        )));
    }
    serde_json::from_slice(bytes).map_err(|e| ArtifactError::Malformed(e.to_string()))
}

/// A media type as a reader knows it.
fn describe_media_type(media_type: &str) -> String {
    let what = match media_type {
        super::IMAGE_INDEX_MEDIA_TYPE => "an OCI image index (a multi-platform image)",
        "application/vnd.docker.distribution.manifest.list.v2+json" => "a Docker manifest list",
        "application/vnd.docker.distribution.manifest.v2+json" => "a Docker image manifest",
        _ => "a document",
    };
    format!("{what} ({media_type:?})")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn manifest_json(extra: &str) -> String {
        format!(
            r#"{{"schemaVersion":2,"mediaType":"{IMAGE_MANIFEST_MEDIA_TYPE}","config":{{"mediaType":"a","digest":"sha256:00","size":2}},"layers":[]{extra}}}"#
        )
    }

    #[test]
    fn reads_a_manifest_and_ignores_unknown_fields() {
        let m = parse(manifest_json(r#","future":{"x":[1,2]}"#).as_bytes()).unwrap();
        assert_eq!(m.schema_version, 2);
        assert_eq!(m.config.size, 2);
        assert!(m.layers.is_empty());
    }

    #[test]
    fn names_an_index_and_refuses_other_versions_and_sizes() {
        let index = format!(
            r#"{{"schemaVersion":2,"mediaType":"{}","manifests":[]}}"#,
            super::super::IMAGE_INDEX_MEDIA_TYPE
        );
        let e = parse(index.as_bytes()).unwrap_err();
        assert!(e.to_string().contains("OCI image index"), "{e}");
        // An index without a media type is named too.
        let e = parse(br#"{"schemaVersion":2,"manifests":[]}"#).unwrap_err();
        assert_eq!(e, ArtifactError::NotAManifest("an image index".into()));
        let e = parse(
            manifest_json("")
                .replace("\"schemaVersion\":2", "\"schemaVersion\":1")
                .as_bytes(),
        )
        .unwrap_err();
        assert!(
            e.to_string().contains("schemaVersion is 1, expected 2"),
            "{e}"
        );
        let big = vec![b' '; MAX_MANIFEST_BYTES + 1];
        assert_eq!(
            parse(&big).unwrap_err(),
            ArtifactError::TooLarge(MAX_MANIFEST_BYTES + 1)
        );
        // Passing twin: the same manifest padded to exactly the limit parses.
        let mut at_limit = manifest_json("").into_bytes();
        at_limit.resize(MAX_MANIFEST_BYTES, b' ');
        assert!(parse(&at_limit).is_ok());
    }

    #[test]
    fn refuses_negative_sizes_and_non_string_media_types() {
        let neg = manifest_json("").replace("\"size\":2", "\"size\":-2");
        assert!(matches!(
            parse(neg.as_bytes()),
            Err(ArtifactError::Malformed(_))
        ));
        let num = manifest_json("").replace(&format!("\"{IMAGE_MANIFEST_MEDIA_TYPE}\""), "7");
        assert!(matches!(
            parse(num.as_bytes()),
            Err(ArtifactError::Malformed(_))
        ));
    }

    #[test]
    fn a_docker_image_manifest_is_read_only_as_an_image() {
        let docker =
            manifest_json("").replace(IMAGE_MANIFEST_MEDIA_TYPE, DOCKER_MANIFEST_MEDIA_TYPE);
        let e = parse(docker.as_bytes()).unwrap_err();
        assert!(e.to_string().contains("Docker image manifest"), "{e}");
        assert_eq!(parse_image(docker.as_bytes()).unwrap().schema_version, 2);
        assert!(parse_image(manifest_json("").as_bytes()).is_ok());
    }
}
