//! Attaching a Sigstore bundle to a model as an OCI 1.1 referrer, and the referrers tag schema.
//!
//! The referrer is an image manifest with `artifactType` [`BUNDLE_ARTIFACT_TYPE`], the empty
//! config, one layer (the bundle) and `subject` = the model's manifest: how cosign and the
//! Sigstore bundle spec attach bundles. Registries with the referrers API
//! (`GET /v2/<name>/referrers/<digest>`) list it by its subject. For those without it, the
//! distribution spec's referrers tag schema applies: the client keeps an image index of the
//! referrers under the tag `<alg>-<hex>` of the subject digest.

use std::collections::BTreeMap;

use super::manifest::{Descriptor, ImageManifest};
use super::modelpack::to_json;
use super::{
    ArtifactError, BUNDLE_ARTIFACT_TYPE, EMPTY_MEDIA_TYPE, IMAGE_INDEX_MEDIA_TYPE,
    IMAGE_MANIFEST_MEDIA_TYPE, MAX_MANIFEST_BYTES, sha256_digest,
};
use crate::statement::PREDICATE_TYPE;

/// The annotation cosign puts on bundle referrers: which in-toto predicate the bundle signs,
/// so that readers can tell a model signature from other Sigstore bundles of the same subject.
pub const ANNOTATION_PREDICATE_TYPE: &str = "dev.sigstore.bundle.predicateType";

/// The empty config blob, `{}`.
pub const EMPTY_CONFIG: &[u8] = b"{}";

/// A referrer ready to push: its manifest and the blobs it names.
#[derive(Debug, Clone)]
pub struct BundleReferrer {
    /// The referrer manifest.
    pub manifest: Vec<u8>,
    /// `sha256:…` of the manifest.
    pub digest: String,
    /// The layer descriptor of the bundle.
    pub bundle: Descriptor,
    /// The config descriptor ([`EMPTY_CONFIG`]).
    pub config: Descriptor,
}

impl BundleReferrer {
    /// How the referrers API (and the tag-schema index) lists this referrer.
    pub fn index_entry(&self) -> Descriptor {
        let mut annotations = BTreeMap::new();
        annotations.insert(
            ANNOTATION_PREDICATE_TYPE.to_string(),
            PREDICATE_TYPE.to_string(),
        );
        Descriptor {
            media_type: IMAGE_MANIFEST_MEDIA_TYPE.into(),
            digest: self.digest.clone(),
            size: self.manifest.len() as u64,
            artifact_type: Some(BUNDLE_ARTIFACT_TYPE.into()),
            annotations,
        }
    }
}

/// The descriptor of a manifest: what `subject` names.
pub fn manifest_descriptor(manifest: &[u8]) -> Descriptor {
    // A Docker image manifest (a modelcar pushed by docker) is named as one; anything else as
    // what this engine reads, an OCI image manifest.
    let docker = serde_json::from_slice::<serde_json::Value>(manifest)
        .ok()
        .and_then(|v| v.get("mediaType")?.as_str().map(str::to_owned))
        .is_some_and(|t| t == super::manifest::DOCKER_MANIFEST_MEDIA_TYPE);
    Descriptor {
        media_type: if docker {
            super::manifest::DOCKER_MANIFEST_MEDIA_TYPE.into()
        } else {
            IMAGE_MANIFEST_MEDIA_TYPE.into()
        },
        digest: sha256_digest(manifest),
        size: manifest.len() as u64,
        artifact_type: None,
        annotations: BTreeMap::new(),
    }
}

/// The referrer that attaches `bundle` (a Sigstore bundle of a model signature) to `subject`.
pub fn bundle_referrer(subject: Descriptor, bundle: &[u8]) -> BundleReferrer {
    let config = Descriptor {
        media_type: EMPTY_MEDIA_TYPE.into(),
        digest: sha256_digest(EMPTY_CONFIG),
        size: EMPTY_CONFIG.len() as u64,
        artifact_type: None,
        annotations: BTreeMap::new(),
    };
    let layer = Descriptor {
        media_type: BUNDLE_ARTIFACT_TYPE.into(),
        digest: sha256_digest(bundle),
        size: bundle.len() as u64,
        artifact_type: None,
        annotations: BTreeMap::new(),
    };
    let mut annotations = BTreeMap::new();
    annotations.insert(
        ANNOTATION_PREDICATE_TYPE.to_string(),
        PREDICATE_TYPE.to_string(),
    );
    let manifest = to_json(&ImageManifest {
        schema_version: 2,
        media_type: Some(IMAGE_MANIFEST_MEDIA_TYPE.into()),
        artifact_type: Some(BUNDLE_ARTIFACT_TYPE.into()),
        config: config.clone(),
        layers: vec![layer.clone()],
        subject: Some(subject),
        annotations,
    });
    BundleReferrer {
        digest: sha256_digest(&manifest),
        manifest,
        bundle: layer,
        config,
    }
}

/// The bundle layer of a referrer manifest that refers to `subject_digest`, if it is one:
/// a bundle artifact whose subject is that manifest, with one bundle layer.
pub fn bundle_layer(referrer: &ImageManifest, subject_digest: &str) -> Option<Descriptor> {
    if referrer.artifact_type.as_deref() != Some(BUNDLE_ARTIFACT_TYPE)
        || referrer.subject.as_ref().map(|s| s.digest.as_str()) != Some(subject_digest)
    {
        return None;
    }
    match referrer.layers.as_slice() {
        [one] if one.media_type == BUNDLE_ARTIFACT_TYPE => Some(one.clone()),
        _ => None,
    }
}

/// The referrers tag schema's tag for `subject_digest`: `sha256:ab…` gives `sha256-ab…`.
pub fn tag_schema_tag(subject_digest: &str) -> String {
    subject_digest.replacen(':', "-", 1)
}

#[derive(serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
struct Index {
    schema_version: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    media_type: Option<String>,
    #[serde(default)]
    manifests: Vec<Descriptor>,
}

/// The tag-schema index with `entry` added: `current` is the index under the tag (`None` when
/// the tag does not exist yet). An entry with the same digest is not added twice.
pub fn tag_schema_add(current: Option<&[u8]>, entry: Descriptor) -> Result<Vec<u8>, ArtifactError> {
    let mut index = match current {
        None => Index {
            schema_version: 2,
            media_type: Some(IMAGE_INDEX_MEDIA_TYPE.into()),
            manifests: Vec::new(),
        },
        Some(bytes) => {
            if bytes.len() > MAX_MANIFEST_BYTES {
                return Err(ArtifactError::TooLarge(bytes.len()));
            }
            serde_json::from_slice(bytes).map_err(|e| {
                ArtifactError::Malformed(format!("the referrers tag schema index: {e}"))
            })?
        }
    };
    if !index.manifests.iter().any(|d| d.digest == entry.digest) {
        index.manifests.push(entry);
    }
    index.media_type = Some(IMAGE_INDEX_MEDIA_TYPE.into());
    Ok(to_json(&index))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_referrer_names_its_subject_and_carries_the_bundle() {
        let subject = manifest_descriptor(b"{\"schemaVersion\":2}");
        let r = bundle_referrer(subject.clone(), b"bundle");
        let m = crate::oci::manifest::parse(&r.manifest).unwrap();
        assert_eq!(m.subject.as_ref(), Some(&subject));
        assert_eq!(bundle_layer(&m, &subject.digest), Some(r.bundle.clone()));
        assert_eq!(r.bundle.digest, sha256_digest(b"bundle"));
        // Twin: a referrer of another subject is not this subject's bundle.
        assert_eq!(bundle_layer(&m, &sha256_digest(b"other")), None);
        assert_eq!(
            r.index_entry().artifact_type.as_deref(),
            Some(BUNDLE_ARTIFACT_TYPE)
        );
    }

    #[test]
    fn the_tag_schema_index_grows_once_per_referrer() {
        let entry = bundle_referrer(manifest_descriptor(b"x"), b"b").index_entry();
        let first = tag_schema_add(None, entry.clone()).unwrap();
        let again = tag_schema_add(Some(&first), entry.clone()).unwrap();
        assert_eq!(first, again);
        let other = bundle_referrer(manifest_descriptor(b"x"), b"c").index_entry();
        let two: serde_json::Value =
            serde_json::from_slice(&tag_schema_add(Some(&first), other).unwrap()).unwrap();
        assert_eq!(two["manifests"].as_array().unwrap().len(), 2);
        assert_eq!(two["mediaType"], IMAGE_INDEX_MEDIA_TYPE);
        assert!(tag_schema_add(Some(b"not json"), entry).is_err());
        assert_eq!(tag_schema_tag("sha256:abc"), "sha256-abc");
    }
}
