//! A `ClusterModelValidation` prepared for admission: where it applies ([`Scope`]), its
//! authorities rendered as the verifier's document (references resolved), what the injected
//! containers are called and a hash of everything that shapes them. The cache builds one per
//! policy when a policy, Secret or ConfigMap changes, so an admission only reads them.

use std::sync::Arc;

use sha2::{Digest, Sha256};

use crate::authorities::{self, ReferenceError, TrustObjects};
use crate::crd::cluster::{ClusterModelValidationSpec, Mode};
use crate::crd::{Method, ModelValidationSpec, SpecPath};
use crate::images::ImagePolicy;
use crate::names::cluster_containers;
use crate::scope::{Scope, ScopeError};

/// One cluster policy, ready for admission.
#[derive(Clone, Debug)]
pub struct ClusterPolicy {
    /// Where it applies; `scope.name` is the policy's name.
    pub scope: Scope,
    /// The policy as written.
    pub spec: ClusterModelValidationSpec,
    /// The model, pull policy, resources and continuous validation, in the shape the injection
    /// code takes (its `config` is unused: the method is [`Self::method`]).
    pub injection: ModelValidationSpec,
    /// The authorities document, or the reference that does not resolve.
    pub document: Result<String, ReferenceError>,
    /// The verifier's and the sidecar's container names.
    pub containers: (String, String),
    /// What it verifies in image volumes (`spec.images`), if anything.
    pub images: Option<Arc<ImagePolicy>>,
    /// First 16 hex digits of SHA-256 over everything that shapes the injected containers
    /// (with the resolved trust material, so a rotated key in a Secret changes it).
    pub hash: String,
}

impl AsRef<Scope> for ClusterPolicy {
    fn as_ref(&self) -> &Scope {
        &self.scope
    }
}

impl ClusterPolicy {
    /// Prepares the policy `name`; `Err` when a selector cannot be evaluated (the policy then
    /// governs nothing, and its status says why).
    pub fn new(
        name: &str,
        spec: &ClusterModelValidationSpec,
        objects: &dyn TrustObjects,
    ) -> Result<ClusterPolicy, ScopeError> {
        let scope = Scope::new(name, &spec.namespace_selector, spec.pod_selector.as_ref())?;
        let document = authorities::render(spec, objects);
        let images = spec.images.as_ref().map(|i| {
            let document = document.clone().map_err(|e| e.to_string());
            Arc::new(ImagePolicy::new(
                &format!("ClusterModelValidation {name}"),
                i,
                document,
                Some(objects),
            ))
        });
        let injection = ModelValidationSpec {
            model: spec.model.clone(),
            images: None,
            config: Default::default(),
            image_pull_policy: spec.image_pull_policy.clone(),
            continuous_validation: spec.continuous_validation.clone(),
            resources: spec.resources.clone(),
        };
        let mut shaped = serde_json::json!([
            spec.model,
            document.as_ref().ok(),
            spec.image_pull_policy,
            spec.resources,
            spec.continuous_validation,
            spec.mode().as_str(),
        ]);
        if let (Some(spec_images), Some(prepared), Some(list)) =
            (&spec.images, &images, shaped.as_array_mut())
        {
            // Only when set, so that the hash of a policy without images (and the pods
            // admitted under it) does not change.
            list.push(serde_json::json!(spec_images));
            list.push(serde_json::json!(
                prepared.trust.as_ref().ok().map(|t| &t.key)
            ));
        }
        let hash = hex::encode(Sha256::digest(shaped.to_string().as_bytes()))[..16].to_string();
        Ok(ClusterPolicy {
            scope,
            containers: cluster_containers(name),
            spec: spec.clone(),
            injection,
            document,
            images,
            hash,
        })
    }

    /// The policy's name.
    pub fn name(&self) -> &str {
        &self.scope.name
    }

    /// How messages name it.
    pub fn display(&self) -> String {
        format!("ClusterModelValidation {}", self.scope.name)
    }

    /// Its mode.
    pub fn mode(&self) -> Mode {
        self.spec.mode()
    }

    /// The method its verifier runs, or why it cannot run.
    pub fn method(&self) -> Result<Method<'_>, &ReferenceError> {
        self.document
            .as_ref()
            .map(|document| Method::Authorities { document })
    }

    /// Every file its verifier reads from the pod: the model, the signature, and each
    /// authority's own signature file.
    pub fn file_paths(&self) -> Vec<SpecPath<'_>> {
        let Some(model) = &self.spec.model else {
            return Vec::new();
        };
        let mut v = model.file_paths();
        v.extend(
            self.spec
                .authorities
                .iter()
                .filter_map(|a| a.signature_path.as_deref())
                .map(|path| SpecPath {
                    field: "spec.authorities[].signaturePath",
                    path,
                }),
        );
        v
    }
}
