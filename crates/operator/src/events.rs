//! Kubernetes Events (events.k8s.io/v1), reporter `model-validation-operator`.
//!
//! - `ModelVerificationFailed` (Warning) on the Pod and on its ModelValidation when the
//!   verification container exits non-zero; the note is the verifier's termination message.
//! - `ModelVerified` (Normal) on the Pod when it succeeds.
//! - `PodDenied` (Warning) on the ModelValidation when the webhook refuses a pod that names it
//!   (the pod never exists, so the event cannot be on it).

use k8s_openapi::api::core::v1::{ObjectReference, Pod};
use kube::Client;
use kube::Resource;
use kube::runtime::events::{Event, EventType, Recorder, Reporter};

use crate::crd::ModelValidation;
use crate::names::FIELD_MANAGER;
use crate::text::truncate;

/// Events carry at most this many bytes of note (the API allows 1 kB).
pub const MAX_NOTE: usize = 1000;

/// A recorder for this replica (`instance`: its identity).
pub fn recorder(client: Client, instance: Option<String>) -> Recorder {
    Recorder::new(
        client,
        Reporter {
            controller: FIELD_MANAGER.into(),
            instance,
        },
    )
}

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

/// Reports a failed verification on the pod and on the ModelValidation.
pub async fn verification_failed(
    rec: &Recorder,
    pod: &Pod,
    mv: &ModelValidation,
    message: &str,
) -> Result<(), kube::Error> {
    let pod_ref = pod.object_ref(&());
    let mv_ref = mv.object_ref(&());
    let pod_name = pod.metadata.name.clone().unwrap_or_default();
    let text = if message.is_empty() {
        "the verification container failed without a message".to_string()
    } else {
        message.to_string()
    };
    rec.publish(
        &Event {
            type_: EventType::Warning,
            reason: "ModelVerificationFailed".into(),
            note: Some(truncate(&text, MAX_NOTE)),
            action: "Verify".into(),
            secondary: Some(mv_ref.clone()),
        },
        &pod_ref,
    )
    .await?;
    rec.publish(
        &Event {
            type_: EventType::Warning,
            reason: "ModelVerificationFailed".into(),
            note: Some(truncate(&format!("pod {pod_name}: {text}"), MAX_NOTE)),
            action: "Verify".into(),
            secondary: Some(pod_ref),
        },
        &mv_ref,
    )
    .await
}

/// Reports a successful verification on the pod.
pub async fn verified(
    rec: &Recorder,
    pod: &Pod,
    mv: &ModelValidation,
    message: &str,
) -> Result<(), kube::Error> {
    rec.publish(
        &Event {
            type_: EventType::Normal,
            reason: "ModelVerified".into(),
            note: Some(truncate(message, MAX_NOTE)),
            action: "Verify".into(),
            secondary: Some(mv.object_ref(&())),
        },
        &pod.object_ref(&()),
    )
    .await
}

/// Reports, on the ModelValidation `mv_ref` (see [`mv_reference`]), that the webhook refused
/// the pod `pod_name` (use its generateName when it has no name yet) for `reason`. Called by the
/// webhook for pods that name an existing ModelValidation; skip it on dry-run requests.
pub async fn pod_denied(
    client: Client,
    mv_ref: ObjectReference,
    pod_name: &str,
    reason: &str,
) -> Result<(), kube::Error> {
    let instance = std::env::var("POD_NAME").ok();
    recorder(client, instance)
        .publish(
            &Event {
                type_: EventType::Warning,
                reason: "PodDenied".into(),
                note: Some(truncate(
                    &format!("pod {pod_name} refused at admission: {reason}"),
                    MAX_NOTE,
                )),
                action: "Admit".into(),
                secondary: None,
            },
            &mv_ref,
        )
        .await
}
