//! The pod admission webhook: a pure `admit` decision, and its HTTPS server.
//!
//! `admit` injects verification on the CREATE of a pod that cluster policies govern or whose
//! label names a ModelValidation: one verifier per policy (`webhook/mutate.rs`). On UPDATE (and when
//! ephemeral containers are added) it refuses only what would undo the verification of an
//! injected pod (see [`update`]); anything else, and every DELETE, passes, so pods can
//! terminate after their policy is gone. Workloads' pod templates get the same decision
//! ([`workload`]).

pub mod cost;
mod image_volumes;
pub mod inject;
pub mod listener;
mod mutate;
pub mod reinvoke;
pub mod review;
pub mod server;
pub mod update;
pub mod view;
pub mod workload;

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::Pod;
use kube::core::admission::{AdmissionRequest, AdmissionResponse, Operation};

use std::sync::Arc;

use crate::authorities::TrustObjects;
use crate::cluster_policy::ClusterPolicy;
use crate::crd::ModelValidationSpec;
use crate::images::{ImageCheck, ImageVerdicts, NoVerdicts};
use crate::names::{LABEL, LEGACY_LABEL};
use crate::scope;
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
    /// Every ClusterModelValidation whose selectors can be evaluated, in name order (none by
    /// default).
    fn cluster_policies(&self) -> Arc<Vec<ClusterPolicy>> {
        Arc::default()
    }
    /// The labels of `namespace`, `None` when the view does not know it (yet).
    fn namespace_labels(&self, _namespace: &str) -> Option<BTreeMap<String, String>> {
        None
    }
    /// The Secrets and ConfigMaps of the operator's namespace (pull Secrets of
    /// `spec.images.pullSecret`), when the view has them.
    fn trust_objects(&self) -> Option<&dyn TrustObjects> {
        None
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
    /// The namespaces cluster policies may govern (`--cluster-policy-namespaces`; the webhook
    /// is registered for the same ones): a namespace outside it is governed by none.
    pub governable_namespaces: kube::core::Selector,
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
    /// Refuse for now: the operator's view is not complete (starting, a broken watch, a
    /// namespace it has not seen yet); the message says to retry.
    Retry {
        /// The message the user sees.
        message: String,
    },
    /// Admit as it is, with admission warnings (a policy in `warn` mode that the pod fails).
    Warn {
        /// The warnings.
        warnings: Vec<String>,
    },
    /// Not decided yet: these image references must be verified at the registry first (the
    /// server asks, then decides again with the verdicts; see [`decide_with`]).
    NeedImages(Vec<ImageCheck>),
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

    fn retry(message: impl Into<String>) -> Decision {
        Decision::Retry {
            message: message.into(),
        }
    }

    /// The `result` label of the admission metrics: `unchanged`, `warned`, `denied` or
    /// `injected`.
    pub fn result_label(&self) -> &'static str {
        match self {
            Decision::Unchanged | Decision::NeedImages(_) => "unchanged",
            Decision::Warn { .. } => "warned",
            Decision::Deny { .. } | Decision::Retry { .. } => "denied",
            Decision::Inject { .. } => "injected",
        }
    }

    /// The answer to the API server.
    pub fn respond<T: kube::Resource>(self, req: &AdmissionRequest<T>) -> AdmissionResponse {
        let resp = AdmissionResponse::from(req);
        match self {
            Decision::Unchanged => resp,
            Decision::Warn { warnings } => {
                let mut r = resp;
                r.warnings = Some(warnings);
                r
            }
            Decision::Deny { message, .. } | Decision::Retry { message } => resp.deny(message),
            // The server never answers with this one; refuse rather than admit unverified.
            Decision::NeedImages(_) => {
                resp.deny("internal error: the pod's image volumes were not verified; retry")
            }
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

/// The decision for one AdmissionRequest with no registry verdict: [`Decision::NeedImages`]
/// when the pod has image volumes to verify.
pub fn decide(req: &AdmissionRequest<Pod>, policies: &dyn Policies, cfg: &AdmitConfig) -> Decision {
    decide_with(req, policies, cfg, &NoVerdicts)
}

/// The decision for one AdmissionRequest: a pure function of the request, the cluster view, the
/// settings and the registry's verdicts on the pod's image volumes.
pub fn decide_with(
    req: &AdmissionRequest<Pod>,
    policies: &dyn Policies,
    cfg: &AdmitConfig,
    verdicts: &dyn ImageVerdicts,
) -> Decision {
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
        // Also in a namespace that ignores namespaced ModelValidations: a cluster policy's
        // verifier is there all the same, and a pod without injected containers passes anyway.
        if namespace == cfg.operator_namespace {
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
    decide_create(pod, &namespace, policies, cfg, verdicts)
}

/// The decision for creating `pod` in `namespace` (also asked of a workload's pod template).
pub fn decide_create(
    pod: &Pod,
    namespace: &str,
    policies: &dyn Policies,
    cfg: &AdmitConfig,
    verdicts: &dyn ImageVerdicts,
) -> Decision {
    let namespace = namespace.to_string();
    if namespace == cfg.operator_namespace {
        return Decision::Unchanged;
    }
    let labels = pod.metadata.labels.clone().unwrap_or_default();
    let cluster = policies.cluster_policies();
    let governed: Vec<&ClusterPolicy> = if cluster.is_empty()
        || scope::exempt(&namespace, &cfg.operator_namespace)
    {
        Vec::new()
    } else {
        match policies.namespace_labels(&namespace) {
            Some(ns_labels)
                if !scope::in_reach(
                    &namespace,
                    &ns_labels,
                    &cfg.governable_namespaces,
                    &cfg.operator_namespace,
                ) =>
            {
                Vec::new()
            }
            Some(ns_labels) => scope::governing(
                &cluster,
                &namespace,
                &ns_labels,
                &labels,
                &cfg.operator_namespace,
            ),
            None => {
                // A namespace created a moment ago may not have reached the cache: deciding
                // without its labels could let a governed pod through.
                return Decision::retry(format!(
                    "model-validation-operator does not know namespace {namespace:?} yet, so it cannot tell which ClusterModelValidations govern this pod; retry in a few seconds"
                ));
            }
        }
    };
    let wants = labels.get(LABEL).cloned();
    let legacy = labels.get(LEGACY_LABEL);
    let wants_legacy = legacy.is_some_and(|v| v == "true");
    // The namespace ignore label switches off namespaced ModelValidations only: a cluster
    // policy that wants it honoured says so in its namespaceSelector.
    let labelled = (wants.is_some() || legacy.is_some()) && !policies.namespace_ignored(&namespace);
    if governed.is_empty()
        && let Some(marker) = mutate::forged_cluster_marker(pod)
    {
        // Only the webhook records cluster policies on a pod; a pod no policy governs that
        // carries the record would count in a policy's status as if it had been verified.
        return Decision::deny(format!(
            "{marker} is set by model-validation-operator on the pods cluster policies govern, and no ClusterModelValidation governs this pod: remove it"
        ));
    }
    if !labelled && governed.is_empty() {
        return Decision::Unchanged;
    }
    if labelled
        && let (None, Some(value)) = (&wants, legacy)
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
        return Decision::retry(
            "model-validation-operator has no up-to-date view of the ModelValidations (it is starting, or its watch of the Kubernetes API is broken); retry in a few seconds, and if this persists check that the operator is ready and can reach the API server",
        );
    }
    let namespaced = if labelled {
        match namespaced_policy(policies, &namespace, wants, wants_legacy) {
            Ok(found) => Some(found),
            Err(denied) => return denied,
        }
    } else {
        None
    };
    let requirements: Vec<mutate::Requirement<'_>> = governed
        .iter()
        .map(|p| mutate::Requirement::cluster(p))
        .chain(namespaced.as_ref().map(|(p, named)| {
            mutate::Requirement::namespaced(p, *named, cfg, policies.trust_objects())
        }))
        .collect();
    mutate::mutate(pod, &requirements, cfg, verdicts)
}

/// The ModelValidation the pod's label names (or the one of its namespace, for the first API's
/// label), with whether the pod named it; or the refusal.
fn namespaced_policy(
    policies: &dyn Policies,
    namespace: &str,
    wants: Option<String>,
    wants_legacy: bool,
) -> Result<(FoundPolicy, bool), Decision> {
    match (wants, wants_legacy) {
        (Some(name), _) if name.is_empty() => Err(Decision::deny(format!(
            "pod label {LABEL} is empty: set it to the name of a ModelValidation in namespace {namespace}"
        ))),
        (Some(name), _) => match policies.get(namespace, &name) {
            Some(p) => Ok((p, true)),
            None => Err(Decision::deny(format!(
                "ModelValidation {name:?} not found in namespace {namespace:?}: create it, or fix the pod label {LABEL}={name}; pods that must be verified cannot start without it"
            ))),
        },
        (None, _) => {
            let mut all = policies.in_namespace(namespace);
            match all.len() {
                1 => Ok((all.remove(0), false)),
                0 => Err(Decision::deny(format!(
                    "pod label {LEGACY_LABEL}=true asks for the ModelValidation of namespace {namespace:?}, but there is none: create one"
                ))),
                n => {
                    let names: Vec<String> = all.iter().map(|p| p.display.clone()).collect();
                    Err(Decision::deny(format!(
                        "pod label {LEGACY_LABEL}=true asks for the one ModelValidation of namespace {namespace:?}, but there are {n} ({}): label the pod {LABEL}=<name> instead",
                        names.join(", ")
                    )))
                }
            }
        }
    }
}

/// Why a trust anchor read from the pod weakens the guarantee, and what to change.
pub fn pod_supplied_trust(policy: &FoundPolicy, trust: crate::crd::PodTrust<'_>) -> String {
    format!(
        "{} reads its trust anchor {} from the pod's own volume at {}: whoever can write that volume chooses what is trusted; carry it in the policy with {} instead",
        policy.display, trust.anchor.field, trust.anchor.path, trust.instead
    )
}

#[cfg(test)]
mod tests;
