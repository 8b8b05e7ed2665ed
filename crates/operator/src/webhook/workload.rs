//! Early feedback on workloads: a Deployment, StatefulSet, DaemonSet, ReplicaSet, Job or
//! CronJob whose pod template would be refused is refused itself (or warned about, under a
//! policy in `warn` mode) at `kubectl apply`, with the message its pods would get, instead of
//! leaving the user to find a ReplicaSet's events.
//!
//! The same pure decision as for pods ([`super::decide_create`]) runs on the template, in the
//! workload's namespace. Only what admission can know is checked (selection, mounts,
//! references); the signature is checked when each pod runs. Pods stay the enforcement point:
//! this webhook is registered with `failurePolicy: Ignore`, and a view that is not complete
//! yet (a retry for a pod) lets the workload through with a warning.

use k8s_openapi::api::core::v1::{Pod, PodTemplateSpec};
use kube::core::DynamicObject;
use kube::core::admission::{AdmissionRequest, AdmissionResponse, Operation};

use super::{AdmitConfig, Decision, Policies, decide_create};

/// The kinds checked, with where each keeps its pod template.
pub const KINDS: &[(&str, &str, &[&str])] = &[
    ("apps", "Deployment", &["spec", "template"]),
    ("apps", "ReplicaSet", &["spec", "template"]),
    ("apps", "StatefulSet", &["spec", "template"]),
    ("apps", "DaemonSet", &["spec", "template"]),
    ("batch", "Job", &["spec", "template"]),
    (
        "batch",
        "CronJob",
        &["spec", "jobTemplate", "spec", "template"],
    ),
];

/// What the check found.
#[derive(Clone, Debug, PartialEq)]
pub enum Verdict {
    /// Admit, with these warnings (none when the template passes).
    Admit(Vec<String>),
    /// Refuse, with this message.
    Refuse(String),
}

/// The verdict for one workload AdmissionRequest.
pub fn check(
    req: &AdmissionRequest<DynamicObject>,
    policies: &dyn Policies,
    cfg: &AdmitConfig,
) -> Verdict {
    if !matches!(req.operation, Operation::Create | Operation::Update) {
        return Verdict::Admit(vec![]);
    }
    let Some(object) = req.object.as_ref() else {
        return Verdict::Admit(vec![]);
    };
    let Some((_, kind, path)) = KINDS
        .iter()
        .find(|(group, kind, _)| *group == req.kind.group && *kind == req.kind.kind)
    else {
        return Verdict::Admit(vec![]);
    };
    let namespace = req
        .namespace
        .clone()
        .or_else(|| object.metadata.namespace.clone())
        .unwrap_or_default();
    let name = object
        .metadata
        .name
        .as_deref()
        .or(object.metadata.generate_name.as_deref())
        .unwrap_or_default();
    let what = format!("the pods of {kind} {namespace}/{name}");
    let template = path.iter().try_fold(&object.data, |v, key| v.get(*key));
    let template: PodTemplateSpec = match template.map(|t| serde_json::from_value(t.clone())) {
        Some(Ok(t)) => t,
        // The API server validates the template after mutating webhooks; a workload without a
        // readable one is its to refuse, with its own message.
        _ => return Verdict::Admit(vec![]),
    };
    let mut metadata = template.metadata.unwrap_or_default();
    metadata.namespace = Some(namespace.clone());
    let pod = Pod {
        metadata,
        spec: template.spec,
        status: None,
    };
    // Image volumes are verified at the registry when each pod is created (a tag may move
    // between now and then), so the template's are not asked here.
    match decide_create(&pod, &namespace, policies, cfg, &crate::images::NoVerdicts) {
        Decision::Deny { message, .. } => {
            Verdict::Refuse(format!("{what} would be refused: {message}"))
        }
        Decision::Retry { message } => Verdict::Admit(vec![format!(
            "{what} could not be checked now ({message}); each pod is checked when it is created"
        )]),
        Decision::Warn { warnings } => Verdict::Admit(
            warnings
                .into_iter()
                .map(|w| format!("{what}: {w}"))
                .collect(),
        ),
        // What the pods' webhook will change (read-only mounts, ignored annotations) and what a
        // policy in warn mode would refuse, said at apply time.
        Decision::Inject { warnings, .. } => Verdict::Admit(
            warnings
                .into_iter()
                .map(|w| format!("{what}: {w}"))
                .collect(),
        ),
        Decision::Unchanged | Decision::NeedImages(_) => Verdict::Admit(vec![]),
    }
}

impl Verdict {
    /// The answer to the API server.
    pub fn respond(self, req: &AdmissionRequest<DynamicObject>) -> AdmissionResponse {
        let resp = AdmissionResponse::from(req);
        match self {
            Verdict::Refuse(message) => resp.deny(message),
            Verdict::Admit(warnings) if warnings.is_empty() => resp,
            Verdict::Admit(warnings) => {
                let mut r = resp;
                r.warnings = Some(warnings);
                r
            }
        }
    }
}

#[cfg(test)]
mod tests;
