//! Kubernetes Events (events.k8s.io/v1), reporter `model-validation-operator`.
//!
//! - `ModelVerificationFailed` (Warning) on the Pod and on its ModelValidation when the
//!   verification container exits non-zero; the note is the verifier's termination message.
//! - `ModelVerified` (Normal) on the Pod when it succeeds.
//! - For a ClusterModelValidation, `ModelVerified` / `ModelVerificationFailed` on the Pod only
//!   ([`cluster_policy_outcome`]): never on the cluster-scoped policy, whose Events would be
//!   readable in `default`.
//! - `PodDenied` (Warning) on the ModelValidation when the webhook refuses a pod that names it
//!   (the pod never exists, so the event cannot be on it).
//!
//! All go through one [`EventSink`] per process: repeats form Event series and writes are
//! rate-limited per object and overall ([`aggregate`]), because anyone who can reach the
//! webhook can make it refuse pods.

pub mod aggregate;
pub mod sink;

use k8s_openapi::api::core::v1::ObjectReference;
use kube::Resource;
use kube::runtime::events::EventType;

use crate::crd::ModelValidation;
use crate::text::truncate;
pub use aggregate::{Draft, Limits};
pub use sink::EventSink;

/// Events carry at most this many bytes of note (the API allows 1 kB).
pub const MAX_NOTE: usize = 1000;

/// A reference to the `ml.sigstore.dev` ModelValidation `namespace/name` (uid if known).
pub fn mv_reference(namespace: &str, name: &str, uid: Option<String>) -> ObjectReference {
    ObjectReference {
        api_version: Some(ModelValidation::api_version(&()).into_owned()),
        kind: Some(ModelValidation::kind(&()).into_owned()),
        namespace: Some(namespace.into()),
        name: Some(name.into()),
        uid,
        ..Default::default()
    }
}

/// Reports a failed verification on the pod and on the ModelValidation. On the
/// ModelValidation, failures of different pods with the same message form one series.
pub fn verification_failed(
    sink: &EventSink,
    pod_ref: ObjectReference,
    mv: &ModelValidation,
    message: &str,
) {
    let mv_ref = mv.object_ref(&());
    let pod_name = pod_ref.name.clone().unwrap_or_default();
    let text = if message.is_empty() {
        "the verification container failed without a message".to_string()
    } else {
        message.to_string()
    };
    sink.record(Draft {
        regarding: pod_ref.clone(),
        type_: EventType::Warning,
        reason: "ModelVerificationFailed".into(),
        note: truncate(&text, MAX_NOTE),
        action: "Verify".into(),
        related: Some(mv_ref.clone()),
        same_as: text.clone(),
    });
    sink.record(Draft {
        regarding: mv_ref,
        type_: EventType::Warning,
        reason: "ModelVerificationFailed".into(),
        note: truncate(&format!("pod {pod_name}: {text}"), MAX_NOTE),
        action: "Verify".into(),
        related: Some(pod_ref),
        same_as: text,
    });
}

/// Reports a successful verification on the pod.
pub fn verified(sink: &EventSink, pod: ObjectReference, mv: &ModelValidation, message: &str) {
    sink.record(Draft {
        regarding: pod,
        type_: EventType::Normal,
        reason: "ModelVerified".into(),
        note: truncate(message, MAX_NOTE),
        action: "Verify".into(),
        related: Some(mv.object_ref(&())),
        same_as: message.into(),
    });
}

/// Reports on the pod `pod` (namespace, name, uid) how the verifier of the ClusterModelValidation
/// `policy` ended: `ModelVerified` or `ModelVerificationFailed`. Only on the pod, in its own
/// namespace: an Event on the cluster-scoped policy would land in `default`, where other
/// tenants could read one tenant's pod names and messages (docs/security.md, "Tenants").
pub fn cluster_policy_outcome(
    sink: &EventSink,
    pod: ObjectReference,
    policy: &str,
    verified: bool,
    message: &str,
) {
    let related = ObjectReference {
        api_version: Some(
            crate::crd::cluster::ClusterModelValidation::api_version(&()).into_owned(),
        ),
        kind: Some(crate::crd::cluster::ClusterModelValidation::kind(&()).into_owned()),
        name: Some(policy.into()),
        ..Default::default()
    };
    let text = if message.is_empty() && !verified {
        "the verification container failed without a message"
    } else {
        message
    };
    sink.record(Draft {
        regarding: pod,
        type_: if verified {
            EventType::Normal
        } else {
            EventType::Warning
        },
        reason: if verified {
            "ModelVerified"
        } else {
            "ModelVerificationFailed"
        }
        .into(),
        note: truncate(
            &format!("ClusterModelValidation {policy}: {text}"),
            MAX_NOTE,
        ),
        action: "Verify".into(),
        related: Some(related),
        same_as: format!("{policy}: {text}"),
    });
}

/// Reports, on the ModelValidation `mv_ref` (see [`mv_reference`]), that the webhook refused
/// the pod `pod_name` (use its generateName when it has no name yet) for `reason`. Refusals
/// with the same reason form one series, whichever pod they were for. Called by the webhook
/// for pods that name an existing ModelValidation; skip it on dry-run requests.
pub fn pod_denied(sink: &EventSink, mv_ref: ObjectReference, pod_name: &str, reason: &str) {
    sink.record(Draft {
        regarding: mv_ref,
        type_: EventType::Warning,
        reason: "PodDenied".into(),
        note: truncate(
            &format!("pod {pod_name} refused at admission: {reason}"),
            MAX_NOTE,
        ),
        action: "Admit".into(),
        related: None,
        same_as: reason.into(),
    });
}
