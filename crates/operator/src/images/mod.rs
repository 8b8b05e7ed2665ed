//! Models in image volumes (`spec.volumes[].image`): which references a policy verifies, with
//! which trust, and what admission decided for each. Pure; the registry calls are made by
//! [`verifier`] at the webhook's edge, before the decision, which reads their verdicts.
//!
//! A policy's `spec.images.globs` pick the volumes (matched against the reference's
//! repository, see [`glob`]); its authorities (a ModelValidation's `spec.config`, a
//! ClusterModelValidation's `spec.authorities`) are rendered as the engine's authorities
//! document, so the same engine code checks a signature on a file and in a registry. A verified
//! volume is rewritten to `registry/repository@sha256:…`: the runtime then pulls exactly the
//! manifest that verified, whatever the tag says later.

pub mod glob;
pub mod pull_secrets;
pub mod verifier;

use std::collections::HashMap;
use std::sync::Arc;

use k8s_openapi::api::core::v1::Pod;
use sha2::{Digest, Sha256};

use crate::authorities::{Missing, TrustObjects};
use crate::crd::ImagesSpec;
use glob::Glob;

/// The key of a `kubernetes.io/dockerconfigjson` Secret.
pub const DOCKER_CONFIG_KEY: &str = ".dockerconfigjson";

/// What one policy verifies in image volumes, and with what.
#[derive(Clone, Debug)]
pub struct ImagePolicy {
    /// The compiled `spec.images.globs`, or the first that cannot be used (then every image
    /// volume of the pods the policy applies to is refused: which ones it meant is unknown).
    pub globs: Result<Vec<Glob>, String>,
    /// The trust and credentials, or why they cannot be used (refuses the matching volumes).
    pub trust: Result<Arc<ImageTrust>, String>,
}

/// The trust one policy verifies images with, and how the registry is read.
#[derive(Debug, PartialEq, Eq)]
pub struct ImageTrust {
    /// How messages name the policy (`ModelValidation ns/name`).
    pub display: String,
    /// The engine's authorities document (JSON).
    pub document: String,
    /// A docker `config.json` with the registry credentials (`spec.images.pullSecret`).
    pub credentials: Option<String>,
    /// The model's directory in modelcar images (`spec.images.modelcarRoot`).
    pub modelcar_root: Option<String>,
    /// A digest of both: verdicts and cached verifications are kept per key.
    pub key: String,
}

impl ImagePolicy {
    /// Prepares `spec` for the policy `display`, whose authorities are `document`; the pull
    /// Secret is read from `objects` (the operator's namespace).
    pub fn new(
        display: &str,
        spec: &ImagesSpec,
        document: Result<String, String>,
        objects: Option<&dyn TrustObjects>,
    ) -> ImagePolicy {
        let globs = spec
            .globs
            .iter()
            .enumerate()
            .map(|(i, g)| Glob::new(g).map_err(|e| format!("spec.images.globs[{i}]: {e}")))
            .collect::<Result<Vec<_>, _>>();
        let credentials = match &spec.pull_secret {
            None => Ok(None),
            Some(name) => pull_secret(name, objects).map(Some),
        };
        let trust = document.and_then(|document| {
            let credentials = credentials?;
            let mut h = Sha256::new();
            h.update(document.as_bytes());
            h.update([0]);
            h.update(credentials.as_deref().unwrap_or_default().as_bytes());
            h.update([0]);
            h.update(spec.modelcar_root.as_deref().unwrap_or_default().as_bytes());
            Ok(Arc::new(ImageTrust {
                display: display.into(),
                document,
                credentials,
                modelcar_root: spec.modelcar_root.clone(),
                key: hex::encode(h.finalize())[..32].to_string(),
            }))
        });
        ImagePolicy { globs, trust }
    }

    /// Whether the policy verifies `repository`; `Err` when its patterns cannot be used.
    pub fn covers(&self, repository: &str) -> Result<bool, &str> {
        match &self.globs {
            Ok(globs) => Ok(globs.iter().any(|g| g.matches(repository))),
            Err(e) => Err(e),
        }
    }
}

/// The docker config in the pull Secret `name`, or what to fix.
fn pull_secret(name: &str, objects: Option<&dyn TrustObjects>) -> Result<String, String> {
    let Some(objects) = objects else {
        return Err(format!(
            "spec.images.pullSecret names Secret {name:?}, which the operator cannot read"
        ));
    };
    let ns = objects.namespace();
    objects.secret(name, DOCKER_CONFIG_KEY).map_err(|m| {
        let problem = match m {
            Missing::Object => "does not exist",
            Missing::Key => "has no key .dockerconfigjson (make it a kubernetes.io/dockerconfigjson Secret)",
            Missing::NotText => "holds a .dockerconfigjson that is not text",
        };
        format!(
            "spec.images.pullSecret names Secret {ns}/{name}, which {problem}: create it with `kubectl create secret docker-registry {name} -n {ns} --docker-server=... --docker-username=... --docker-password=...`"
        )
    })
}

/// An image volume of a pod: its index in `spec.volumes`, name and reference.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ImageVolume<'p> {
    /// Index in `spec.volumes`.
    pub index: usize,
    /// `volumes[i].name`.
    pub name: &'p str,
    /// `volumes[i].image.reference` (empty when unset).
    pub reference: &'p str,
}

/// The pod's image volumes, in order.
pub fn image_volumes(pod: &Pod) -> Vec<ImageVolume<'_>> {
    pod.spec
        .as_ref()
        .and_then(|s| s.volumes.as_ref())
        .into_iter()
        .flatten()
        .enumerate()
        .filter_map(|(index, v)| {
            v.image.as_ref().map(|i| ImageVolume {
                index,
                name: &v.name,
                reference: i.reference.as_deref().unwrap_or_default(),
            })
        })
        .collect()
}

/// The repository (`registry/path`) of an image reference, as patterns match it.
pub fn repository_of(reference: &str) -> Result<String, String> {
    let r = model_signing::oci::registry::RegistryClient::parse_reference(reference)
        .map_err(|e| e.to_string())?;
    Ok(format!("{}/{}", r.registry(), r.repository()))
}

/// One image to verify with one policy's trust.
#[derive(Clone, Debug, PartialEq)]
pub struct ImageCheck {
    /// The reference as the pod writes it.
    pub reference: String,
    /// The trust to verify it with.
    pub trust: Arc<ImageTrust>,
}

/// What admission found for one reference and one trust.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ImageVerdict {
    /// Verified: pin the volume to this `registry/repository@sha256:…`.
    Verified {
        /// The pinned reference.
        pinned: String,
    },
    /// Not verified, and asking again will not change that: the reason and what to do.
    Refused(String),
    /// The registry could not answer (down, slow): the pod may be retried.
    Unreachable(String),
}

/// The verdicts an admission has, by reference and trust.
pub trait ImageVerdicts {
    /// The verdict for `reference` under `trust`, if it was asked.
    fn verdict(&self, reference: &str, trust: &ImageTrust) -> Option<&ImageVerdict>;
}

/// No verdict at all: the first pass of a decision, which lists what must be verified.
pub struct NoVerdicts;

impl ImageVerdicts for NoVerdicts {
    fn verdict(&self, _: &str, _: &ImageTrust) -> Option<&ImageVerdict> {
        None
    }
}

/// Verdicts found by [`verifier::ImageVerifier::verify`] (or given by tests).
#[derive(Clone, Debug, Default)]
pub struct Verdicts(HashMap<(String, String), ImageVerdict>);

impl Verdicts {
    /// Records `verdict` for `reference` under the trust whose key is `trust_key`.
    pub fn insert(&mut self, reference: &str, trust_key: &str, verdict: ImageVerdict) {
        self.0
            .insert((reference.to_string(), trust_key.to_string()), verdict);
    }

    /// How many verdicts there are.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether there is none.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl ImageVerdicts for Verdicts {
    fn verdict(&self, reference: &str, trust: &ImageTrust) -> Option<&ImageVerdict> {
        self.0.get(&(reference.to_string(), trust.key.clone()))
    }
}
