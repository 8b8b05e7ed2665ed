//! The pod admission webhook: a pure `admit` decision, and its HTTPS server.
//!
//! `admit` injects verification on the CREATE of a labelled pod. On UPDATE (and when ephemeral
//! containers are added) it refuses only what would undo the verification of an injected pod
//! (see [`update`]); anything else, and every DELETE, passes, so pods can terminate after their
//! ModelValidation is gone.

pub mod cost;
pub mod inject;
pub mod listener;
pub mod reinvoke;
pub mod review;
pub mod server;
pub mod update;
pub mod view;

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{Container, Pod, PodSpec};
use kube::core::admission::{AdmissionRequest, AdmissionResponse, Operation};

use crate::crd::ModelValidationSpec;
use crate::names::{LABEL, LEGACY_LABEL, VERIFY_CONTAINER, WATCH_CONTAINER, annotations};
use inject::InjectConfig;

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
    /// Refuse pods whose ModelValidation reads its trust anchor (key, CA, trust config) from a
    /// path in the pod instead of carrying it: whoever can write that volume picks the signer.
    pub require_policy_trust: bool,
}

/// What the webhook decided for one AdmissionRequest, before it is rendered as an
/// `AdmissionResponse` (see [`Decision::respond`]).
#[derive(Clone, Debug, PartialEq)]
pub enum Decision {
    /// Admit as it is: not a pod we verify, or already injected exactly as required.
    Unchanged,
    /// Refuse, saying what to change.
    Deny {
        /// The message the user sees.
        message: String,
        /// The `ml.sigstore.dev` ModelValidation the pod names, when it exists: the refusal is
        /// recorded as an Event on it.
        policy: Option<String>,
    },
    /// Admit with the verification container(s) added.
    Inject {
        /// The JSON patch that adds them.
        patch: json_patch::Patch,
        /// Admission warnings (annotations that were ignored).
        warnings: Vec<String>,
        /// The method of the injected verifier (its metrics label).
        method: &'static str,
    },
}

impl Decision {
    fn deny(message: impl Into<String>) -> Decision {
        Decision::Deny {
            message: message.into(),
            policy: None,
        }
    }

    /// The `result` label of the admission metrics: `unchanged`, `denied` or `injected`.
    pub fn result_label(&self) -> &'static str {
        match self {
            Decision::Unchanged => "unchanged",
            Decision::Deny { .. } => "denied",
            Decision::Inject { .. } => "injected",
        }
    }

    /// The answer to the API server.
    pub fn respond<T: kube::Resource>(self, req: &AdmissionRequest<T>) -> AdmissionResponse {
        let resp = AdmissionResponse::from(req);
        match self {
            Decision::Unchanged => resp,
            Decision::Deny { message, .. } => resp.deny(message),
            Decision::Inject {
                patch, warnings, ..
            } => match resp.with_patch(patch) {
                Ok(mut r) => {
                    if !warnings.is_empty() {
                        r.warnings = Some(warnings);
                    }
                    r
                }
                Err(e) => AdmissionResponse::invalid(format!(
                    "internal error: cannot encode the patch: {e}"
                )),
            },
        }
    }
}

/// The answer for one AdmissionRequest ([`decide`], rendered).
pub fn admit(
    req: &AdmissionRequest<Pod>,
    policies: &dyn Policies,
    cfg: &AdmitConfig,
) -> AdmissionResponse {
    decide(req, policies, cfg).respond(req)
}

/// The decision for one AdmissionRequest: a pure function of the request, the cluster view and
/// the settings.
pub fn decide(req: &AdmissionRequest<Pod>, policies: &dyn Policies, cfg: &AdmitConfig) -> Decision {
    if !matches!(req.operation, Operation::Create | Operation::Update) {
        return Decision::Unchanged;
    }
    let Some(pod) = req.object.as_ref() else {
        return Decision::deny("the admission request carries no pod");
    };
    let namespace = req
        .namespace
        .clone()
        .or_else(|| pod.metadata.namespace.clone())
        .unwrap_or_default();
    if req.operation == Operation::Update {
        // Updates (and ephemeral containers) may not undo the verification of an injected pod;
        // anything else about a pod stays updatable, also after its ModelValidation is gone.
        if namespace == cfg.operator_namespace || policies.namespace_ignored(&namespace) {
            return Decision::Unchanged;
        }
        return match req
            .old_object
            .as_ref()
            .and_then(|old| update::refused(old, pod))
        {
            Some(message) => Decision::deny(message),
            None => Decision::Unchanged,
        };
    }
    let labels = pod.metadata.labels.clone().unwrap_or_default();
    let wants = labels.get(LABEL).cloned();
    let legacy = labels.get(LEGACY_LABEL);
    let wants_legacy = legacy.is_some_and(|v| v == "true");
    if wants.is_none() && legacy.is_none() {
        return Decision::Unchanged;
    }
    if namespace == cfg.operator_namespace || policies.namespace_ignored(&namespace) {
        return Decision::Unchanged;
    }
    if let (None, Some(value)) = (&wants, legacy)
        && !wants_legacy
    {
        // The webhook is called for any value of the label; a value like "True" or "yes" must
        // not pass unverified because it is not the exact spelling.
        return Decision::deny(format!(
            "pod label {LEGACY_LABEL}={value:?} is not \"true\": write {LEGACY_LABEL}: \"true\" to verify the model with the namespace's ModelValidation (or {LABEL}: <name> to pick one), or remove the label"
        ));
    }
    if !policies.synced() {
        // Starting, or a watch broken for longer than --cache-stale-after: deciding on a cache
        // that may lack a rotated key or a tightened policy would admit what it should not.
        return Decision::deny(
            "model-validation-operator has no up-to-date view of the ModelValidations (it is starting, or its watch of the Kubernetes API is broken); retry in a few seconds, and if this persists check that the operator is ready and can reach the API server",
        );
    }
    let (policy, named) = match (wants, wants_legacy) {
        (Some(name), _) if name.is_empty() => {
            return Decision::deny(format!(
                "pod label {LABEL} is empty: set it to the name of a ModelValidation in namespace {namespace}"
            ));
        }
        (Some(name), _) => match policies.get(&namespace, &name) {
            Some(p) => (p, true),
            None => {
                return Decision::deny(format!(
                    "ModelValidation {name:?} not found in namespace {namespace:?}: create it, or fix the pod label {LABEL}={name}; pods that must be verified cannot start without it"
                ));
            }
        },
        (None, _) => {
            let mut all = policies.in_namespace(&namespace);
            match all.len() {
                1 => (all.remove(0), false),
                0 => {
                    return Decision::deny(format!(
                        "pod label {LEGACY_LABEL}=true asks for the ModelValidation of namespace {namespace:?}, but there is none: create one"
                    ));
                }
                n => {
                    let names: Vec<String> = all.iter().map(|p| p.display.clone()).collect();
                    return Decision::deny(format!(
                        "pod label {LEGACY_LABEL}=true asks for the one ModelValidation of namespace {namespace:?}, but there are {n} ({}): label the pod {LABEL}=<name> instead",
                        names.join(", ")
                    ));
                }
            }
        }
    };
    match mutate(pod, &policy, cfg) {
        Decision::Deny { message, .. } => Decision::Deny {
            message,
            // Only a pod naming an `ml.sigstore.dev` ModelValidation gets its refusal recorded there.
            policy: named.then(|| policy.name.clone()),
        },
        d => d,
    }
}

/// Why a trust anchor read from the pod weakens the guarantee, and what to change.
pub fn pod_supplied_trust(policy: &FoundPolicy, trust: crate::crd::PodTrust<'_>) -> String {
    format!(
        "{} reads its trust anchor {} from the pod's own volume at {}: whoever can write that volume chooses what is trusted; carry it in the policy with {} instead",
        policy.display, trust.anchor.field, trust.anchor.path, trust.instead
    )
}

/// The injection for a pod that `policy` applies to.
fn mutate(pod: &Pod, policy: &FoundPolicy, cfg: &AdmitConfig) -> Decision {
    let cannot = |e: &dyn std::fmt::Display| {
        Decision::deny(format!(
            "cannot verify this pod's model with {}: {e}",
            policy.display
        ))
    };
    let method = match policy.spec.check() {
        Ok(m) => m,
        Err(e) => return cannot(&e),
    };
    let annotations_in = pod.metadata.annotations.clone().unwrap_or_default();
    let (opts, mut warnings) = inject::effective_options(&policy.spec, &annotations_in);
    if let Some(trust) = method.trust_path() {
        let why = pod_supplied_trust(policy, trust);
        if cfg.require_policy_trust {
            return Decision::deny(format!(
                "{why}; this operator refuses such policies (--require-policy-trust)"
            ));
        }
        warnings.push(why);
    }
    let view = match view::view(pod, &policy.spec) {
        Ok(v) => v,
        Err(e) => return cannot(&e),
    };
    let mounts = view.mounts;
    let container =
        inject::verification_container(&cfg.inject, &policy.spec, method, &opts, mounts.clone());
    let watcher = inject::watch_container(&cfg.inject, &policy.spec, method, &opts, mounts);
    // Borrowed, not cloned: the listener prices a review for the typed pod and one patched
    // clone (webhook::cost).
    let no_spec = PodSpec::default();
    let pod_spec = pod.spec.as_ref().unwrap_or(&no_spec);
    let existing: Vec<&Container> = pod_spec
        .init_containers
        .iter()
        .flatten()
        .chain(pod_spec.containers.iter())
        .filter(|c| c.name == VERIFY_CONTAINER || c.name == WATCH_CONTAINER)
        .collect();
    if !existing.is_empty() {
        // Already injected (a re-invocation, or a copy of an injected pod): only our own
        // containers pass (up to API-server defaulting), so a pod author cannot pre-empt
        // verification with a look-alike; and the verifier must still run last.
        let inits = pod_spec.init_containers.as_deref().unwrap_or_default();
        let has =
            |list: &[Container], c: &Container| list.iter().any(|x| reinvoke::same_container(c, x));
        let one_shot_ok = has(inits, &container);
        let watch_ok = match &watcher {
            None => true,
            Some(w) if cfg.inject.legacy_sidecar => has(&pod_spec.containers, w),
            Some(w) => has(inits, w),
        };
        if one_shot_ok && watch_ok && existing.len() == 1 + usize::from(watcher.is_some()) {
            // Still make sure nothing can write the model (a copied pod may have dropped it).
            let mut fixed = pod.clone();
            let mut changed = reinvoke::verifier_last(&mut fixed);
            changed.extend(view::protect(&mut fixed, &view.model_volumes));
            if changed.is_empty() {
                return Decision::Unchanged;
            }
            return patch(pod, &fixed, changed, method.label());
        }
        return Decision::deny(format!(
            "the pod already has a container named {VERIFY_CONTAINER:?} or {WATCH_CONTAINER:?} that is not the one {} requires; remove it and let the operator inject it",
            policy.display
        ));
    }
    let mut patched = pod.clone();
    warnings.extend(view::protect(&mut patched, &view.model_volumes));
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
        annotations::CONFIG_HASH.into(),
        crate::crd::config_hash(&policy.spec),
    );
    patch(pod, &patched, warnings, method.label())
}

/// The decision to turn `pod` into `patched`.
fn patch(pod: &Pod, patched: &Pod, warnings: Vec<String>, method: &'static str) -> Decision {
    let (Ok(before), Ok(after)) = (serde_json::to_value(pod), serde_json::to_value(patched)) else {
        return Decision::deny("internal error: cannot serialize the pod");
    };
    Decision::Inject {
        patch: json_patch::diff(&before, &after),
        warnings,
        method,
    }
}

#[cfg(test)]
mod tests;
