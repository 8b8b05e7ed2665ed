//! Building the patch for the policies that apply to a pod: one verifier per policy (cluster
//! policies in name order, then the labelled ModelValidation), checked against what the pod
//! already has, what warn and audit mode would have refused recorded on the pod, and the
//! pod's own mounts of the model made read-only.

use std::collections::BTreeMap;
use std::sync::Arc;

use k8s_openapi::api::core::v1::{Container, Pod, PodSpec};

use super::image_volumes::{self, ImageRefusal, Step};
use super::{AdmitConfig, Decision, FoundPolicy, inject, pod_supplied_trust, reinvoke, view};
use crate::authorities::TrustObjects;
use crate::cluster_policy::ClusterPolicy;
use crate::crd::cluster::Mode;
use crate::crd::{Method, ModelValidationSpec, SpecPath};
use crate::images::{ImagePolicy, ImageVerdicts};
use crate::names::{VERIFY_CONTAINER, WATCH_CONTAINER, annotations};

/// Why a ModelValidation cannot name a pull Secret.
const MV_PULL_SECRET: &str = "spec.images.pullSecret is for ClusterModelValidations (it names a Secret in the operator's namespace, which tenants must not borrow): remove it; the operator reads a ModelValidation's images anonymously, or with the pod's own imagePullSecrets when it runs with --pod-pull-secrets";

/// One policy that applies to the pod, as the webhook injects its verifier.
pub(super) struct Requirement<'a> {
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
    /// What it verifies in image volumes (`spec.images`).
    images: Option<Arc<ImagePolicy>>,
}

/// Where a requirement comes from.
enum Origin<'a> {
    /// A ModelValidation: its name, whether the pod named it, its config hash.
    Namespaced { name: &'a str, named: bool },
    /// A ClusterModelValidation: its name and hash.
    Cluster { name: &'a str, hash: &'a str },
}

impl<'a> Requirement<'a> {
    pub(super) fn namespaced(
        policy: &'a FoundPolicy,
        named: bool,
        cfg: &AdmitConfig,
        objects: Option<&dyn TrustObjects>,
    ) -> Self {
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
            images: policy.spec.images.as_ref().map(|i| {
                let document = policy
                    .spec
                    .config
                    .method()
                    .map_err(|e| e.to_string())
                    .and_then(crate::authorities::render_method)
                    .and_then(|d| match &i.pull_secret {
                        // The CRD refuses it; a spec that predates the rule gets the same word.
                        Some(_) => Err(MV_PULL_SECRET.to_string()),
                        None => Ok(d),
                    });
                Arc::new(ImagePolicy::new(&policy.display, i, document, objects))
            }),
        }
    }

    pub(super) fn cluster(policy: &'a ClusterPolicy) -> Self {
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
            images: policy.images.clone(),
        }
    }

    /// How messages name the policy.
    pub(super) fn display(&self) -> &str {
        &self.display
    }

    /// What it verifies in image volumes, if anything.
    pub(super) fn images(&self) -> Option<&ImagePolicy> {
        self.images.as_deref()
    }

    /// Whether it is a ModelValidation the pod asked for that verifies image volumes only: a
    /// pod it finds nothing to verify in is refused, not passed.
    pub(super) fn names_model_in_images_only(&self) -> bool {
        matches!(self.origin, Origin::Namespaced { .. }) && self.spec.model.is_none()
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
pub(super) fn mutate(
    pod: &Pod,
    requirements: &[Requirement<'_>],
    cfg: &AdmitConfig,
    verdicts: &dyn ImageVerdicts,
) -> Decision {
    // Image volumes first: their verdicts come from the registry, asked before deciding.
    let images = match image_volumes::judge(pod, requirements, verdicts) {
        Step::Need(checks) => return Decision::NeedImages(checks),
        Step::Judged(j) => j,
    };
    let pod_annotations = pod.metadata.annotations.clone().unwrap_or_default();
    let mut refusals = Vec::new();
    let mut retries = Vec::new();
    let mut refused_policy = None;
    let mut warnings = Vec::new();
    let mut planned = Vec::new();
    // What policies in warn and audit mode would have refused: recorded on the pod.
    let mut findings: BTreeMap<String, String> = BTreeMap::new();
    let image_refusals = images.refusals.iter().map(|(i, refusal)| match refusal {
        ImageRefusal::Refused(m) => (*i, m.clone(), false),
        ImageRefusal::Unreachable(m) => (*i, m.clone(), true),
    });
    let mut policy_refusals: Vec<(usize, String, bool)> = image_refusals.collect();
    for (i, r) in requirements.iter().enumerate() {
        if r.spec.model.is_none() {
            // Images only: nothing to inject.
            continue;
        }
        match plan(pod, r, &pod_annotations, cfg) {
            Ok(p) => planned.push(p),
            Err(Refusal::LookAlike(message)) => return Decision::deny(message),
            Err(Refusal::Policy(message)) => policy_refusals.push((i, message, false)),
        }
    }
    for (i, message, retry) in policy_refusals {
        let r = &requirements[i];
        match r.mode {
            Mode::Enforce => {
                // Only a pod naming an `ml.sigstore.dev` ModelValidation gets its refusal
                // recorded there.
                if let Origin::Namespaced { name, named: true } = r.origin {
                    refused_policy = Some(name.to_string());
                }
                if retry {
                    retries.push(message);
                } else {
                    refusals.push(message);
                }
            }
            mode => {
                if mode == Mode::Warn {
                    warnings.push(format!(
                        "{message} ({} is in warn mode: the pod is admitted without this check)",
                        r.display
                    ));
                }
                if let Origin::Cluster { name, .. } = r.origin {
                    let entry = findings.entry(name.to_string()).or_default();
                    if !entry.is_empty() {
                        entry.push_str("; ");
                    }
                    entry.push_str(&message);
                    *entry = crate::text::truncate(entry, 512);
                }
            }
        }
    }
    if !refusals.is_empty() {
        refusals.extend(retries);
        return Decision::Deny {
            message: refusals.join("; "),
            policy: refused_policy,
        };
    }
    if !retries.is_empty() {
        return Decision::Retry {
            message: retries.join("; "),
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
    // The cluster policies that applied, in their order: those whose verifier runs in the pod,
    // and those that verified its image volumes at admission (images only: no verifier).
    let cluster_record: Vec<String> = requirements
        .iter()
        .enumerate()
        .filter_map(|(i, r)| {
            let Origin::Cluster { name, hash } = r.origin else {
                return None;
            };
            let injected = planned.iter().any(|p| std::ptr::eq(p.requirement, r));
            let images_verified = r.spec.model.is_none() && images.verified.contains(&i);
            (injected || images_verified).then(|| format!("{name}@{hash}"))
        })
        .collect();
    if planned.iter().all(|p| p.present) {
        let mut fixed = pod.clone();
        // Still make sure nothing can write the model (a copied pod may have dropped it).
        let mut changed = reinvoke::verifier_last(&mut fixed);
        changed.extend(view::protect(&mut fixed, &model_volumes));
        let pinned = image_volumes::pin(&mut fixed, &images.pins);
        let recorded = record_cluster_policies(&mut fixed, &cluster_record);
        if record_findings(&mut fixed, &findings) || pinned || recorded {
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
    image_volumes::pin(&mut patched, &images.pins);
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
    for p in &planned {
        for (i, c) in p.containers.iter().enumerate() {
            let c = kept.remove(&c.name).unwrap_or_else(|| c.clone());
            let is_sidecar = i == 1;
            match spec.init_containers.as_mut() {
                Some(inits) if !(is_sidecar && cfg.inject.legacy_sidecar) => inits.push(c),
                _ => spec.containers.push(c),
            }
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
    record_cluster_policies(&mut patched, &cluster_record);
    patch(pod, &patched, warnings, method)
}

/// Records the cluster policies that applied (`name@hash`, in order) on `pod` and labels it
/// governed, so that their status counts it; returns whether that changed the pod.
fn record_cluster_policies(pod: &mut Pod, record: &[String]) -> bool {
    if record.is_empty() {
        return false;
    }
    let wanted = record.join(",");
    let annotations = pod.metadata.annotations.get_or_insert_with(BTreeMap::new);
    let mut changed = annotations.get(annotations::CLUSTER_POLICIES) != Some(&wanted);
    annotations.insert(annotations::CLUSTER_POLICIES.into(), wanted);
    let labels = pod.metadata.labels.get_or_insert_with(BTreeMap::new);
    changed |= labels
        .insert(crate::names::GOVERNED_LABEL.into(), "true".into())
        .as_deref()
        != Some("true");
    changed
}

/// The first record of cluster policies on `pod` (the governed label, or the annotations the
/// webhook writes with it), if it carries one.
pub(super) fn forged_cluster_marker(pod: &Pod) -> Option<String> {
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
