//! The status of a ModelValidation as a pure function of its spec, its previous status and the
//! pods labelled with its name, each reduced to the [`PodFacts`] the status needs. No I/O:
//! everything here is unit-tested on JSON fixtures.

use k8s_openapi::api::core::v1::{ObjectReference, Pod};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
use serde_json::Value;

use crate::crd::{
    ModelValidationSpec, ModelValidationStatus, PodTrackingInfo, VerificationFailure, config_hash,
};
use crate::names::VERIFY_CONTAINER;
use crate::names::annotations::{CONFIG_HASH, INJECTED_BY, PINNED_IMAGES};
use crate::text::truncate;

/// At most this many pods are listed in each of the status lists (the counts stay exact), so
/// a ModelValidation with thousands of pods stays far below the object size limit.
pub const MAX_LISTED: usize = 100;

/// How a pod stands with respect to one ModelValidation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Injection {
    /// Injected by this ModelValidation under its current spec (or before config hashes).
    Injected,
    /// Injected under another spec (a different config hash) or by another ModelValidation.
    Orphaned,
    /// Labelled, but without the verification container.
    Uninjected,
}

/// What the status needs of one labelled pod, and all the controller keeps of it: a few
/// hundred bytes instead of the pod (the first controller cached slimmed pods, 17-33 KiB each
/// in memory at 10,000-20,000 pods).
#[derive(Clone, Debug, PartialEq)]
pub struct PodFacts {
    /// Its namespace.
    pub namespace: String,
    /// Its name.
    pub name: String,
    /// Its uid.
    pub uid: String,
    /// When it was created.
    pub created: Option<Time>,
    /// Whether it has the verification init container.
    pub has_verifier: bool,
    /// The `injected-by` annotation: the ModelValidation that injected it.
    pub injected_by: Option<String>,
    /// The `config-hash` annotation: the spec it was injected under.
    pub config_hash: Option<String>,
    /// The verifier's finished runs ([`runs`]).
    pub runs: Vec<Run>,
    /// Whether admission verified and pinned image volumes (the `pinned-images` annotation).
    pub pinned_images: bool,
}

impl PodFacts {
    /// The facts of `pod`.
    pub fn of(pod: &Pod) -> PodFacts {
        let annotation = |key: &str| pod.metadata.annotations.as_ref()?.get(key).cloned();
        PodFacts {
            namespace: pod.metadata.namespace.clone().unwrap_or_default(),
            name: pod.metadata.name.clone().unwrap_or_default(),
            uid: pod.metadata.uid.clone().unwrap_or_default(),
            created: pod.metadata.creation_timestamp.clone(),
            has_verifier: pod.spec.as_ref().is_some_and(|s| {
                s.init_containers
                    .iter()
                    .flatten()
                    .any(|c| c.name == VERIFY_CONTAINER)
            }),
            injected_by: annotation(INJECTED_BY),
            config_hash: annotation(CONFIG_HASH),
            runs: runs(pod),
            pinned_images: annotation(PINNED_IMAGES).is_some(),
        }
    }

    /// A reference to the pod, for Events.
    pub fn object_ref(&self) -> ObjectReference {
        ObjectReference {
            api_version: Some("v1".into()),
            kind: Some("Pod".into()),
            namespace: Some(self.namespace.clone()),
            name: Some(self.name.clone()),
            uid: Some(self.uid.clone()),
            ..Default::default()
        }
    }

    /// Its verification outcome: the latest finished run decides (`None`: not finished yet).
    pub fn outcome(&self) -> Option<&Run> {
        self.runs.last()
    }
}

/// Classifies a labelled pod.
pub fn injection(pod: &PodFacts, mv_name: &str, hash: &str) -> Injection {
    if !pod.has_verifier {
        return Injection::Uninjected;
    }
    match (&pod.injected_by, &pod.config_hash) {
        (Some(b), _) if b != mv_name => Injection::Orphaned,
        (None, _) => Injection::Orphaned,
        (Some(_), Some(h)) if h != hash => Injection::Orphaned,
        _ => Injection::Injected,
    }
}

/// One finished run of the verification container.
#[derive(Clone, Debug, PartialEq)]
pub struct Run {
    /// The container's restart count when this run ended (identifies the run within the pod).
    pub attempt: i32,
    /// Exit code 0.
    pub verified: bool,
    /// The termination message (the verifier's one-line outcome).
    pub message: String,
    /// When it ended.
    pub finished_at: Option<Time>,
}

/// The finished runs of the verification init container visible in the pod's status: the
/// current state (if terminated) and the last state (if terminated, e.g. before a restart).
pub fn runs(pod: &Pod) -> Vec<Run> {
    let Some(st) = pod.status.as_ref().and_then(|s| {
        s.init_container_statuses
            .iter()
            .flatten()
            .find(|c| c.name == VERIFY_CONTAINER)
    }) else {
        return vec![];
    };
    let mut out = Vec::new();
    if let Some(t) = st.last_state.as_ref().and_then(|s| s.terminated.as_ref()) {
        out.push(Run {
            attempt: (st.restart_count - 1).max(0),
            verified: t.exit_code == 0,
            message: t.message.clone().unwrap_or_default(),
            finished_at: t.finished_at.clone(),
        });
    }
    if let Some(t) = st.state.as_ref().and_then(|s| s.terminated.as_ref()) {
        out.push(Run {
            attempt: st.restart_count,
            verified: t.exit_code == 0,
            message: t.message.clone().unwrap_or_default(),
            finished_at: t.finished_at.clone(),
        });
    }
    out
}

/// `Ready`: whether the spec can work at all (status, reason, message), and what to fix when
/// it cannot.
pub fn ready(spec: &ModelValidationSpec) -> (bool, &'static str, String) {
    match spec.check() {
        Ok(method) => {
            if let Some(images) = &spec.images
                && let Err(problem) = images_usable(images, method)
            {
                return (false, "ImagesUnusable", problem);
            }
            let what = match (&spec.model, &spec.images) {
                (None, _) => "their image volumes are verified at admission by",
                (Some(_), Some(_)) => {
                    "their image volumes are verified at admission and their model files before they start, by"
                }
                (Some(_), None) => "they are verified before they start by",
            };
            (
                true,
                "Valid",
                format!("pods labelled with this name: {what} {}", method.label()),
            )
        }
        Err(e) => (false, e.reason(), e.to_string()),
    }
}

/// Why `spec.images` cannot verify anything (a pattern, or trust read from the pod); a pull
/// Secret that is missing is said at admission, where it is looked up.
fn images_usable(
    images: &crate::crd::ImagesSpec,
    method: crate::crd::Method<'_>,
) -> Result<(), String> {
    for (i, g) in images.globs.iter().enumerate() {
        crate::images::glob::Glob::new(g).map_err(|e| format!("spec.images.globs[{i}]: {e}"))?;
    }
    crate::authorities::render_method(method).map(|_| ())
}

/// The condition saying whether the trust anchor comes from the policy.
pub const TRUST_CONDITION: &str = "TrustAnchorInPolicy";

/// `TrustAnchorInPolicy` (status, reason, message) for a spec that can work: false when the
/// pod's own volume supplies the key, CA or trust configuration.
pub fn trust_anchor(spec: &ModelValidationSpec) -> Option<(bool, &'static str, String)> {
    let method = spec.check().ok()?;
    Some(match method.trust_path() {
        Some(trust) => (
            false,
            "PodSuppliesTrustAnchor",
            format!(
                "{} {} is read from the pod's own volume: whoever can write that volume chooses what is trusted; carry the material in this ModelValidation instead (see docs/security.md)",
                trust.anchor.field, trust.anchor.path
            ),
        ),
        None => (
            true,
            "InPolicy",
            "the trust anchor is carried by this ModelValidation (or is Sigstore's embedded public-good root)".into(),
        ),
    })
}

fn tracking(pod: &PodFacts) -> PodTrackingInfo {
    PodTrackingInfo {
        name: pod.name.clone(),
        uid: pod.uid.clone(),
        injected_at: pod.created.clone(),
    }
}

/// The status for a spec, its previous status and its labelled pods, as of `now`.
/// `lastUpdated` is copied from `previous`: set it when the result differs and is written.
pub fn compute(
    mv_name: &str,
    generation: Option<i64>,
    spec: &ModelValidationSpec,
    previous: Option<&ModelValidationStatus>,
    pods: &[&PodFacts],
    now: &Time,
) -> ModelValidationStatus {
    let hash = config_hash(spec);
    let condition = |type_: &str, ok: bool, reason: &str, message: String| {
        let status = if ok { "True" } else { "False" };
        let prev = previous.and_then(|p| p.conditions.iter().find(|c| c.type_ == type_));
        let last_transition_time = match prev {
            Some(c) if c.status == status => c.last_transition_time.clone(),
            _ => now.clone(),
        };
        Condition {
            type_: type_.into(),
            status: status.into(),
            reason: reason.into(),
            message,
            observed_generation: generation,
            last_transition_time,
        }
    };
    let (ok, reason, message) = ready(spec);
    let mut conditions = vec![condition("Ready", ok, reason, message)];
    if let Some((ok, reason, message)) = trust_anchor(spec) {
        conditions.push(condition(TRUST_CONDITION, ok, reason, message));
    }
    let mut st = ModelValidationStatus {
        conditions,
        observed_generation: generation,
        auth_method: spec.config.method().ok().map(|m| m.label().to_string()),
        last_updated: previous.and_then(|p| p.last_updated.clone()),
        last_failure: previous.and_then(|p| p.last_failure.clone()),
        ..Default::default()
    };
    let mut sorted: Vec<&PodFacts> = pods.to_vec();
    sorted.sort_by(|a, b| a.name.cmp(&b.name));
    for pod in sorted {
        if spec.model.is_none() {
            // Images only: nothing is injected; a pod carrying pins was verified at admission
            // (the webhook refuses the others), one without predates the policy or its images.
            if pod.pinned_images {
                st.injected_pod_count += 1;
                st.injected_pods.push(tracking(pod));
                st.verified_count += 1;
            } else {
                st.uninjected_pod_count += 1;
                st.uninjected_pods.push(tracking(pod));
            }
            continue;
        }
        match injection(pod, mv_name, &hash) {
            Injection::Injected => {
                st.injected_pod_count += 1;
                st.injected_pods.push(tracking(pod));
            }
            Injection::Orphaned => {
                st.orphaned_pod_count += 1;
                st.orphaned_pods.push(tracking(pod));
            }
            Injection::Uninjected => {
                st.uninjected_pod_count += 1;
                st.uninjected_pods.push(tracking(pod));
                continue;
            }
        }
        let Some(run) = pod.outcome() else { continue };
        if run.verified {
            st.verified_count += 1;
        } else {
            st.failed_count += 1;
        }
        // The most recent failed run of any pod, still known after the pod is gone.
        for r in pod.runs.iter().filter(|r| !r.verified) {
            let newer = match &st.last_failure {
                None => true,
                Some(f) => r.finished_at.as_ref().map(|t| t.0) > f.time.as_ref().map(|t| t.0),
            };
            if newer {
                st.last_failure = Some(VerificationFailure {
                    pod: pod.name.clone(),
                    time: r.finished_at.clone(),
                    message: truncate(&r.message, 1024),
                });
            }
        }
    }
    for list in [
        &mut st.injected_pods,
        &mut st.uninjected_pods,
        &mut st.orphaned_pods,
    ] {
        list.truncate(MAX_LISTED);
    }
    st
}

/// Whether two statuses say the same, `lastUpdated` aside.
pub fn same(a: &ModelValidationStatus, b: &ModelValidationStatus) -> bool {
    let mut a = a.clone();
    a.last_updated = b.last_updated.clone();
    a == *b
}

/// A JSON merge patch (RFC 7386) turning `old` into `new`: changed keys carry their new value,
/// removed keys are `null` (a plain merge patch of `new` would leave removed fields behind).
pub fn merge_patch(old: &Value, new: &Value) -> Value {
    match (old, new) {
        (Value::Object(o), Value::Object(n)) => {
            let mut out = serde_json::Map::new();
            for (k, v) in n {
                match o.get(k) {
                    Some(ov) if ov == v => {}
                    Some(ov) if ov.is_object() && v.is_object() => {
                        out.insert(k.clone(), merge_patch(ov, v));
                    }
                    _ => {
                        out.insert(k.clone(), v.clone());
                    }
                }
            }
            for k in o.keys() {
                if !n.contains_key(k) {
                    out.insert(k.clone(), Value::Null);
                }
            }
            Value::Object(out)
        }
        _ => new.clone(),
    }
}

#[cfg(test)]
mod tests;
