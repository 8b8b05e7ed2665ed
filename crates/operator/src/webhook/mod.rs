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
pub mod workload;

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{Container, Pod, PodSpec};
use kube::core::SelectorExt;
use kube::core::admission::{AdmissionRequest, AdmissionResponse, Operation};

use std::sync::Arc;

use crate::cluster_policy::ClusterPolicy;
use crate::crd::cluster::Mode;
use crate::crd::{Method, ModelValidationSpec, SpecPath};
use crate::names::{LABEL, LEGACY_LABEL, VERIFY_CONTAINER, WATCH_CONTAINER, annotations};
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
    /// Every ClusterModelValidation whose selectors can be evaluated (none by default).
    fn cluster_policies(&self) -> Arc<Vec<ClusterPolicy>> {
        Arc::default()
    }
    /// The labels of `namespace`, `None` when the view does not know it (yet).
    fn namespace_labels(&self, _namespace: &str) -> Option<BTreeMap<String, String>> {
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
            Decision::Unchanged => "unchanged",
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
    decide_create(pod, &namespace, policies, cfg)
}

/// The decision for creating `pod` in `namespace` (also asked of a workload's pod template).
pub fn decide_create(
    pod: &Pod,
    namespace: &str,
    policies: &dyn Policies,
    cfg: &AdmitConfig,
) -> Decision {
    let namespace = namespace.to_string();
    if namespace == cfg.operator_namespace {
        return Decision::Unchanged;
    }
    let labels = pod.metadata.labels.clone().unwrap_or_default();
    let cluster = policies.cluster_policies();
    let governed: Vec<&ClusterPolicy> = if cluster.is_empty()
        || scope::EXEMPT_NAMESPACES.contains(&namespace.as_str())
    {
        Vec::new()
    } else {
        match policies.namespace_labels(&namespace) {
            Some(ns_labels) if !cfg.governable_namespaces.matches(&ns_labels) => Vec::new(),
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
        && let Some(marker) = forged_cluster_marker(pod)
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
    let requirements: Vec<Requirement<'_>> = governed
        .iter()
        .map(|p| Requirement::cluster(p))
        .chain(
            namespaced
                .as_ref()
                .map(|(p, named)| Requirement::namespaced(p, *named, cfg)),
        )
        .collect();
    mutate(pod, &requirements, cfg)
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

/// One policy that applies to the pod, as the webhook injects its verifier.
struct Requirement<'a> {
    /// How messages name it.
    display: String,
    /// The spec the containers are built from.
    spec: &'a ModelValidationSpec,
    /// The method its verifier runs, or why the pod cannot be verified with it.
    method: Result<Method<'a>, String>,
    /// Warnings about the policy itself (a trust anchor read from the pod).
    warnings: Vec<String>,
    /// The files its verifier reads.
    paths: Vec<SpecPath<'a>>,
    /// The verifier's and the sidecar's container names.
    containers: (String, String),
    /// What a refusal does.
    mode: Mode,
    /// What the pod records about it.
    origin: Origin<'a>,
}

/// Where a requirement comes from.
enum Origin<'a> {
    /// A ModelValidation: its name, whether the pod named it, its config hash.
    Namespaced { name: &'a str, named: bool },
    /// A ClusterModelValidation: its name and hash.
    Cluster { name: &'a str, hash: &'a str },
}

impl<'a> Requirement<'a> {
    fn namespaced(policy: &'a FoundPolicy, named: bool, cfg: &AdmitConfig) -> Self {
        let cannot = |e: &dyn std::fmt::Display| {
            format!(
                "cannot verify this pod's model with {}: {e}",
                policy.display
            )
        };
        let mut warnings = Vec::new();
        let method = match policy.spec.check() {
            Err(e) => Err(cannot(&e)),
            Ok(m) => match m.trust_path() {
                Some(trust) if cfg.require_policy_trust => Err(format!(
                    "{}; this operator refuses such policies (--require-policy-trust)",
                    pod_supplied_trust(policy, trust)
                )),
                Some(trust) => {
                    warnings.push(pod_supplied_trust(policy, trust));
                    Ok(m)
                }
                None => Ok(m),
            },
        };
        Requirement {
            display: policy.display.clone(),
            spec: &policy.spec,
            method,
            warnings,
            paths: policy.spec.file_paths(),
            containers: (VERIFY_CONTAINER.into(), WATCH_CONTAINER.into()),
            mode: Mode::Enforce,
            origin: Origin::Namespaced {
                name: &policy.name,
                named,
            },
        }
    }

    fn cluster(policy: &'a ClusterPolicy) -> Self {
        let display = policy.display();
        let method = policy
            .method()
            .map_err(|e| format!("cannot verify this pod's model with {display}: {e}"));
        Requirement {
            display,
            spec: &policy.injection,
            method,
            warnings: Vec::new(),
            paths: policy.file_paths(),
            containers: policy.containers.clone(),
            mode: policy.mode(),
            origin: Origin::Cluster {
                name: policy.name(),
                hash: &policy.hash,
            },
        }
    }
}

/// One requirement's containers, as planned for this pod.
struct Planned<'r, 'a> {
    requirement: &'r Requirement<'a>,
    /// The verifier, then the sidecar if continuous validation is on.
    containers: Vec<Container>,
    /// Whether the pod already has exactly these containers (a re-invocation, or a copy).
    present: bool,
    /// The volumes that hold what the verifier reads.
    model_volumes: std::collections::BTreeSet<String>,
    /// Warnings for the user.
    warnings: Vec<String>,
}

/// Why a requirement cannot be planned.
enum Refusal {
    /// The pod cannot be verified with the policy as it is written (its mode decides).
    Policy(String),
    /// The pod brings a look-alike of an injected container: refused in every mode.
    LookAlike(String),
}

/// Plans the verifier of one requirement for `pod`.
fn plan<'r, 'a>(
    pod: &Pod,
    r: &'r Requirement<'a>,
    pod_annotations: &BTreeMap<String, String>,
    cfg: &AdmitConfig,
) -> Result<Planned<'r, 'a>, Refusal> {
    let method = r.method.clone().map_err(Refusal::Policy)?;
    let (mut opts, mut warnings) = inject::effective_options(r.spec, pod_annotations);
    opts.report_only = r.mode != Mode::Enforce;
    warnings.extend(r.warnings.iter().cloned());
    let view = view::view(pod, &r.paths).map_err(|e| {
        Refusal::Policy(format!(
            "cannot verify this pod's model with {}: {e}",
            r.display
        ))
    })?;
    let mut verifier =
        inject::verification_container(&cfg.inject, r.spec, method, &opts, view.mounts.clone());
    verifier.name = r.containers.0.clone();
    let watcher =
        inject::watch_container(&cfg.inject, r.spec, method, &opts, view.mounts).map(|mut w| {
            w.name = r.containers.1.clone();
            w
        });
    // Borrowed, not cloned: the listener prices a review for the typed pod and one patched
    // clone (webhook::cost).
    let no_spec = PodSpec::default();
    let pod_spec = pod.spec.as_ref().unwrap_or(&no_spec);
    let inits = pod_spec.init_containers.as_deref().unwrap_or_default();
    let existing = inits
        .iter()
        .chain(pod_spec.containers.iter())
        .filter(|c| c.name == r.containers.0 || c.name == r.containers.1)
        .count();
    let mut present = false;
    if existing > 0 {
        // Already injected (a re-invocation, or a copy of an injected pod): only our own
        // containers pass (up to API-server defaulting), so a pod author cannot pre-empt
        // verification with a look-alike; and the verifier must still run last.
        let has =
            |list: &[Container], c: &Container| list.iter().any(|x| reinvoke::same_container(c, x));
        let one_shot_ok = has(inits, &verifier);
        let watch_ok = match &watcher {
            None => true,
            Some(w) if cfg.inject.legacy_sidecar => has(&pod_spec.containers, w),
            Some(w) => has(inits, w),
        };
        if !(one_shot_ok && watch_ok && existing == 1 + usize::from(watcher.is_some())) {
            return Err(Refusal::LookAlike(format!(
                "the pod already has a container named {:?} or {:?} that is not the one {} requires; remove it and let the operator inject it",
                r.containers.0, r.containers.1, r.display
            )));
        }
        present = true;
    }
    Ok(Planned {
        requirement: r,
        containers: std::iter::once(verifier).chain(watcher).collect(),
        present,
        model_volumes: view.model_volumes,
        warnings,
    })
}

/// The injection for a pod that `requirements` apply to, in their order.
fn mutate(pod: &Pod, requirements: &[Requirement<'_>], cfg: &AdmitConfig) -> Decision {
    let pod_annotations = pod.metadata.annotations.clone().unwrap_or_default();
    let mut refusals = Vec::new();
    let mut refused_policy = None;
    let mut warnings = Vec::new();
    let mut planned = Vec::new();
    // What policies in warn and audit mode would have refused: recorded on the pod.
    let mut findings = BTreeMap::new();
    for r in requirements {
        match plan(pod, r, &pod_annotations, cfg) {
            Ok(p) => planned.push(p),
            Err(Refusal::LookAlike(message)) => return Decision::deny(message),
            Err(Refusal::Policy(message)) => match r.mode {
                Mode::Enforce => {
                    // Only a pod naming an `ml.sigstore.dev` ModelValidation gets its refusal
                    // recorded there.
                    if let Origin::Namespaced { name, named: true } = r.origin {
                        refused_policy = Some(name.to_string());
                    }
                    refusals.push(message);
                }
                mode => {
                    if mode == Mode::Warn {
                        warnings.push(format!(
                            "{message} ({} is in warn mode: the pod is admitted without its verifier)",
                            r.display
                        ));
                    }
                    if let Origin::Cluster { name, .. } = r.origin {
                        findings.insert(name.to_string(), crate::text::truncate(&message, 512));
                    }
                }
            },
        }
    }
    if !refusals.is_empty() {
        return Decision::Deny {
            message: refusals.join("; "),
            policy: refused_policy,
        };
    }
    let method = planned
        .iter()
        .rev()
        .find_map(|p| p.requirement.method.as_ref().ok())
        .map_or("authorities", Method::label);
    let model_volumes = planned
        .iter()
        .flat_map(|p| p.model_volumes.iter().cloned())
        .collect();
    if planned.iter().all(|p| p.present) {
        let mut fixed = pod.clone();
        // Still make sure nothing can write the model (a copied pod may have dropped it).
        let mut changed = reinvoke::verifier_last(&mut fixed);
        changed.extend(view::protect(&mut fixed, &model_volumes));
        if record_findings(&mut fixed, &findings) {
            changed.extend(warnings);
            return patch(pod, &fixed, changed, method);
        }
        if !changed.is_empty() {
            return patch(pod, &fixed, changed, method);
        }
        return if warnings.is_empty() {
            Decision::Unchanged
        } else {
            Decision::Warn { warnings }
        };
    }
    for p in &planned {
        warnings.extend(p.warnings.iter().cloned());
    }
    let mut patched = pod.clone();
    warnings.extend(view::protect(&mut patched, &model_volumes));
    let spec = patched.spec.get_or_insert_with(Default::default);
    // Containers already ours (present) move to the end with the new ones, in policy order.
    let ours: std::collections::BTreeSet<&str> = planned
        .iter()
        .flat_map(|p| p.containers.iter().map(|c| c.name.as_str()))
        .collect();
    let mut kept: BTreeMap<String, Container> = BTreeMap::new();
    for list in [
        spec.init_containers.get_or_insert_with(Vec::new),
        &mut spec.containers,
    ] {
        let (mine, others): (Vec<Container>, Vec<Container>) = std::mem::take(list)
            .into_iter()
            .partition(|c| ours.contains(c.name.as_str()));
        *list = others;
        kept.extend(mine.into_iter().map(|c| (c.name.clone(), c)));
    }
    let mut cluster_policies = Vec::new();
    for p in &planned {
        for (i, c) in p.containers.iter().enumerate() {
            let c = kept.remove(&c.name).unwrap_or_else(|| c.clone());
            let is_sidecar = i == 1;
            match spec.init_containers.as_mut() {
                Some(inits) if !(is_sidecar && cfg.inject.legacy_sidecar) => inits.push(c),
                _ => spec.containers.push(c),
            }
        }
        if let Origin::Cluster { name, hash } = p.requirement.origin {
            cluster_policies.push(format!("{name}@{hash}"));
        }
    }
    let annotations: &mut BTreeMap<String, String> = patched
        .metadata
        .annotations
        .get_or_insert_with(BTreeMap::new);
    for p in &planned {
        if let Origin::Namespaced { name, .. } = p.requirement.origin {
            annotations.insert(annotations::INJECTED_BY.into(), name.to_string());
            annotations.insert(
                annotations::CONFIG_HASH.into(),
                crate::crd::config_hash(p.requirement.spec),
            );
        }
    }
    record_findings(&mut patched, &findings);
    let annotations: &mut BTreeMap<String, String> = patched
        .metadata
        .annotations
        .get_or_insert_with(BTreeMap::new);
    if !cluster_policies.is_empty() {
        annotations.insert(
            annotations::CLUSTER_POLICIES.into(),
            cluster_policies.join(","),
        );
        patched
            .metadata
            .labels
            .get_or_insert_with(BTreeMap::new)
            .insert(crate::names::GOVERNED_LABEL.into(), "true".into());
    }
    patch(pod, &patched, warnings, method)
}

/// The first record of cluster policies on `pod` (the governed label, or the annotations the
/// webhook writes with it), if it carries one.
fn forged_cluster_marker(pod: &Pod) -> Option<String> {
    let has_label = pod
        .metadata
        .labels
        .as_ref()
        .is_some_and(|l| l.contains_key(crate::names::GOVERNED_LABEL));
    if has_label {
        return Some(format!("pod label {}", crate::names::GOVERNED_LABEL));
    }
    let a = pod.metadata.annotations.as_ref()?;
    [
        annotations::CLUSTER_POLICIES,
        annotations::ADMISSION_FINDINGS,
    ]
    .into_iter()
    .find(|k| a.contains_key(*k))
    .map(|k| format!("pod annotation {k}"))
}

/// Records on `pod` what policies in warn or audit mode would have refused (`findings`, by
/// policy), and labels it governed so that the status controller sees it; returns whether that
/// changed the pod.
fn record_findings(pod: &mut Pod, findings: &BTreeMap<String, String>) -> bool {
    let recorded = pod
        .metadata
        .annotations
        .as_ref()
        .and_then(|a| a.get(annotations::ADMISSION_FINDINGS));
    let wanted = (!findings.is_empty()).then(|| serde_json::json!(findings).to_string());
    if recorded == wanted.as_ref() {
        return false;
    }
    let a = pod.metadata.annotations.get_or_insert_with(BTreeMap::new);
    match wanted {
        Some(w) => {
            a.insert(annotations::ADMISSION_FINDINGS.into(), w);
            pod.metadata
                .labels
                .get_or_insert_with(BTreeMap::new)
                .insert(crate::names::GOVERNED_LABEL.into(), "true".into());
        }
        None => {
            a.remove(annotations::ADMISSION_FINDINGS);
        }
    }
    true
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
