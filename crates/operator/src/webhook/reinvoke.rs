//! Recognising our own containers in a pod that already has them (a re-invocation after other
//! mutating webhooks, or a copy of an injected pod), and keeping the verifier last.
//!
//! The API server defaults fields of the patched pod before it calls us again, so an exact
//! comparison would refuse our own container. A copy made by the pod author must not pass with
//! anything more than those defaults: every field we set must be equal, and the only fields we
//! do not set that may be present are the defaulted ones listed in [`DEFAULTED`].

use k8s_openapi::api::core::v1::{Container, Pod};
use serde_json::Value;

use crate::names::{VERIFY_CONTAINER, WATCH_CONTAINER};

/// Fields (dotted paths from the container) that the API server fills in when we leave them
/// out; anything else we did not set makes a container not ours (e.g. `command`, `envFrom`).
pub const DEFAULTED: &[&str] = &[
    "readinessProbe.timeoutSeconds",
    "readinessProbe.successThreshold",
    "readinessProbe.httpGet.scheme",
    "livenessProbe.timeoutSeconds",
    "livenessProbe.successThreshold",
    "livenessProbe.httpGet.scheme",
];

/// Whether `actual` is the container we build (`expected`), up to API-server defaulting.
pub fn same_container(expected: &Container, actual: &Container) -> bool {
    match (serde_json::to_value(expected), serde_json::to_value(actual)) {
        (Ok(e), Ok(a)) => matches(&e, &a, ""),
        _ => false,
    }
}

fn matches(expected: &Value, actual: &Value, path: &str) -> bool {
    match (expected, actual) {
        (Value::Object(e), Value::Object(a)) => {
            let at = |k: &str| {
                if path.is_empty() {
                    k.to_string()
                } else {
                    format!("{path}.{k}")
                }
            };
            e.iter()
                .all(|(k, v)| a.get(k).is_some_and(|av| matches(v, av, &at(k))))
                && a.keys()
                    .all(|k| e.contains_key(k) || DEFAULTED.contains(&at(k).as_str()))
        }
        (Value::Array(e), Value::Array(a)) => {
            e.len() == a.len() && e.iter().zip(a).all(|(e, a)| matches(e, a, path))
        }
        _ => expected == actual,
    }
}

fn ours(c: &Container) -> bool {
    c.name == VERIFY_CONTAINER || c.name == WATCH_CONTAINER
}

/// Moves our init containers after every regular init container (one without
/// `restartPolicy: Always`) that comes after the verifier, keeping their order, so that what
/// such a container writes (another webhook appended it, as KServe's storage-initializer is,
/// or the pod declares it there) is verified too. Returns a warning when it moved them.
pub fn verifier_last(pod: &mut Pod) -> Vec<String> {
    let Some(inits) = pod.spec.as_mut().and_then(|s| s.init_containers.as_mut()) else {
        return vec![];
    };
    let Some(at) = inits.iter().position(|c| c.name == VERIFY_CONTAINER) else {
        return vec![];
    };
    let later: Vec<String> = inits[at + 1..]
        .iter()
        .filter(|c| !ours(c) && c.restart_policy.as_deref() != Some("Always"))
        .map(|c| format!("{:?}", c.name))
        .collect();
    if later.is_empty() {
        return vec![];
    }
    let (mine, others): (Vec<Container>, Vec<Container>) =
        std::mem::take(inits).into_iter().partition(ours);
    *inits = others;
    inits.extend(mine);
    vec![format!(
        "init container(s) {} ran after the verifier; the verifier now runs after them, so that what they write is verified too",
        later.join(", ")
    )]
}
