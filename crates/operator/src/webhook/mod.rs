//! The pod admission webhook: a pure `admit` decision, and its HTTPS server.
//!
//! `admit` never blocks anything but the CREATE of a labelled pod; an UPDATE or DELETE of an
//! existing pod always passes, so pods can terminate after their ModelValidation is gone.

pub mod inject;
pub mod server;

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{Container, Pod};
use kube::core::admission::{AdmissionRequest, AdmissionResponse, Operation};

use crate::crd::ModelValidationSpec;
use inject::{CONTAINER_NAME, InjectConfig, annotations};

/// Pod label naming the ModelValidation (in the pod's namespace) that applies.
pub const LABEL: &str = "validation.ml.sigstore.dev/ml";
/// The first published API's pod label: `"true"` means "the one ModelValidation here".
pub const LEGACY_LABEL: &str = "validation.rhtas.redhat.com/ml";
/// Namespace label that switches injection off for a namespace.
pub const IGNORE_NAMESPACE_LABEL: &str = "validation.ml.sigstore.dev/ignore";

/// A ModelValidation found for a pod, with where it came from (for messages).
#[derive(Clone, Debug)]
pub struct FoundPolicy {
    /// `ModelValidation ns/name` or `ModelValidation.rhtas.redhat.com ns/name`.
    pub display: String,
    /// Its name.
    pub name: String,
    /// Its spec (legacy ones converted).
    pub spec: ModelValidationSpec,
}

/// What `admit` may look up: a read-only view of the cluster (a cache in production).
pub trait Policies {
    /// The `ml.sigstore.dev` ModelValidation `name` in `namespace`.
    fn get(&self, namespace: &str, name: &str) -> Option<FoundPolicy>;
    /// Every ModelValidation of `namespace`, of both API groups.
    fn in_namespace(&self, namespace: &str) -> Vec<FoundPolicy>;
    /// Whether the namespace carries `validation.ml.sigstore.dev/ignore=true`.
    fn namespace_ignored(&self, namespace: &str) -> bool;
    /// Whether the caches are complete (a decision on a partial cache could wrongly deny).
    fn synced(&self) -> bool {
        true
    }
}

/// Webhook settings.
#[derive(Clone, Debug)]
pub struct AdmitConfig {
    /// Injection settings.
    pub inject: InjectConfig,
    /// The operator's own namespace, never touched.
    pub operator_namespace: String,
}

/// The decision for one AdmissionRequest.
pub fn admit(
    req: &AdmissionRequest<Pod>,
    policies: &dyn Policies,
    cfg: &AdmitConfig,
) -> AdmissionResponse {
    decide(req, policies, cfg).0
}

/// [`admit`], also returning the method of the verifier it injected (for metrics).
pub fn decide(
    req: &AdmissionRequest<Pod>,
    policies: &dyn Policies,
    cfg: &AdmitConfig,
) -> (AdmissionResponse, Option<&'static str>) {
    let mut method = None;
    let resp = decide_inner(req, policies, cfg, &mut method);
    (resp, method)
}

fn decide_inner(
    req: &AdmissionRequest<Pod>,
    policies: &dyn Policies,
    cfg: &AdmitConfig,
    method: &mut Option<&'static str>,
) -> AdmissionResponse {
    let resp = AdmissionResponse::from(req);
    if req.operation != Operation::Create {
        return resp;
    }
    let Some(pod) = req.object.as_ref() else {
        return resp.deny("the admission request carries no pod");
    };
    let namespace = req
        .namespace
        .clone()
        .or_else(|| pod.metadata.namespace.clone())
        .unwrap_or_default();
    let labels = pod.metadata.labels.clone().unwrap_or_default();
    let wants = labels.get(LABEL).cloned();
    let wants_legacy = labels.get(LEGACY_LABEL).is_some_and(|v| v == "true");
    if wants.is_none() && !wants_legacy {
        return resp;
    }
    if namespace == cfg.operator_namespace || policies.namespace_ignored(&namespace) {
        return resp;
    }
    if !policies.synced() {
        return resp.deny("model-validation-operator is starting and has not loaded the ModelValidations yet; retry in a few seconds");
    }
    let policy = match (wants, wants_legacy) {
        (Some(name), _) if name.is_empty() => {
            return resp.deny(format!("pod label {LABEL} is empty: set it to the name of a ModelValidation in namespace {namespace}"));
        }
        (Some(name), _) => match policies.get(&namespace, &name) {
            Some(p) => p,
            None => {
                return resp.deny(format!(
                    "ModelValidation {name:?} not found in namespace {namespace:?}: create it, or fix the pod label {LABEL}={name}; pods that must be verified cannot start without it"
                ));
            }
        },
        (None, _) => {
            let mut all = policies.in_namespace(&namespace);
            match all.len() {
                1 => all.remove(0),
                0 => {
                    return resp.deny(format!("pod label {LEGACY_LABEL}=true asks for the ModelValidation of namespace {namespace:?}, but there is none: create one"));
                }
                n => {
                    let names: Vec<String> = all.iter().map(|p| p.display.clone()).collect();
                    return resp.deny(format!(
                        "pod label {LEGACY_LABEL}=true asks for the one ModelValidation of namespace {namespace:?}, but there are {n} ({}): label the pod {LABEL}=<name> instead",
                        names.join(", ")
                    ));
                }
            }
        }
    };
    let resp = mutate(resp, pod, &policy, cfg);
    if resp.patch.is_some() {
        *method = Some(crate::crd::auth_method(&policy.spec.config));
    }
    resp
}

fn mutate(
    resp: AdmissionResponse,
    pod: &Pod,
    policy: &FoundPolicy,
    cfg: &AdmitConfig,
) -> AdmissionResponse {
    let annotations_in = pod.metadata.annotations.clone().unwrap_or_default();
    let (opts, mut warnings) = inject::effective_options(&policy.spec, &annotations_in);
    let mounts = match inject::mounts_for(pod, &policy.spec) {
        Ok(m) => m,
        Err(e) => {
            return resp.deny(format!(
                "cannot verify this pod's model with {}: {e}",
                policy.display
            ));
        }
    };
    let container =
        inject::verification_container(&cfg.inject, &policy.spec, &opts, mounts.clone());
    let watcher = inject::watch_container(&cfg.inject, &policy.spec, &opts, mounts);
    let pod_spec = pod.spec.clone().unwrap_or_default();
    let existing: Vec<&Container> = pod_spec
        .init_containers
        .iter()
        .flatten()
        .chain(pod_spec.containers.iter())
        .filter(|c| c.name == CONTAINER_NAME || c.name == inject::WATCH_CONTAINER_NAME)
        .collect();
    if !existing.is_empty() {
        // Already injected (a re-invocation, or a copy of an injected pod): only an exact match
        // passes, so a pod author cannot pre-empt verification with a look-alike container.
        let inits = pod_spec.init_containers.clone().unwrap_or_default();
        let one_shot_ok = inits.contains(&container);
        let watch_ok = match &watcher {
            None => true,
            Some(w) if cfg.inject.legacy_sidecar => pod_spec.containers.contains(w),
            Some(w) => inits.contains(w),
        };
        if one_shot_ok && watch_ok && existing.len() == 1 + usize::from(watcher.is_some()) {
            return resp;
        }
        return resp.deny(format!(
            "the pod already has a container named {CONTAINER_NAME:?} or {:?} that is not the one {} requires; remove it and let the operator inject it",
            inject::WATCH_CONTAINER_NAME, policy.display
        ));
    }
    let mut patched = pod.clone();
    let spec = patched.spec.get_or_insert_with(Default::default);
    let inits = spec.init_containers.get_or_insert_with(Vec::new);
    inits.push(container);
    match watcher {
        Some(w) if cfg.inject.legacy_sidecar => spec.containers.push(w),
        Some(w) => inits.push(w),
        None => {}
    }
    let annotations: &mut BTreeMap<String, String> = patched
        .metadata
        .annotations
        .get_or_insert_with(BTreeMap::new);
    annotations.insert(annotations::INJECTED_BY.into(), policy.name.clone());
    annotations.insert(
        crate::controller::status::CONFIG_HASH.into(),
        crate::crd::config_hash(&policy.spec),
    );
    let (Ok(before), Ok(after)) = (serde_json::to_value(pod), serde_json::to_value(&patched))
    else {
        return resp.deny("internal error: cannot serialize the pod");
    };
    let patch = json_patch::diff(&before, &after);
    let mut resp = match resp.with_patch(patch) {
        Ok(r) => r,
        Err(e) => {
            return AdmissionResponse::invalid(format!(
                "internal error: cannot encode the patch: {e}"
            ));
        }
    };
    if !warnings.is_empty() {
        resp.warnings
            .get_or_insert_with(Vec::new)
            .append(&mut warnings);
    }
    resp
}

#[cfg(test)]
mod tests;
