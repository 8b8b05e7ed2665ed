//! Recognising our own containers in a pod that already has them (a re-invocation after other
//! mutating webhooks, or a copy of an injected pod), and keeping the verifier last.
//!
//! The API server defaults fields of the patched pod before it calls us again, so an exact
//! comparison would refuse our own container. A copy made by the pod author must not pass with
//! anything more than those defaults: every field we set must be equal, and the only fields we
//! do not set that may be present are the defaulted ones listed in [`DEFAULTED`].

use k8s_openapi::api::core::v1::{Container, Pod};
use serde_json::Value;

use crate::names::is_injected;

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

/// Where the API server's `ServiceAccount` admission plugin mounts a pod's token in every
/// container that has nothing mounted there. Built-in mutating plugins run again when a
/// webhook changed the pod, so on a re-invocation our own containers carry that mount: it is
/// the API server's, not the pod author's, and it cannot hide a model path.
pub const SERVICE_ACCOUNT_TOKEN_PATH: &str = "/var/run/secrets/kubernetes.io/serviceaccount";

/// Whether `actual` is the container we build (`expected`), up to API-server defaulting and
/// the read-only service-account token mount the API server adds.
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
        (Value::Array(e), Value::Array(a)) if path == "volumeMounts" => {
            let added_by_api_server = |m: &Value| {
                m.get("mountPath").and_then(Value::as_str) == Some(SERVICE_ACCOUNT_TOKEN_PATH)
                    && m.get("readOnly") == Some(&Value::Bool(true))
                    && !e.iter().any(|x| x.get("mountPath") == m.get("mountPath"))
            };
            let a: Vec<&Value> = a.iter().filter(|m| !added_by_api_server(m)).collect();
            e.len() == a.len() && e.iter().zip(a).all(|(e, a)| matches(e, a, path))
        }
        (Value::Array(e), Value::Array(a)) => {
            e.len() == a.len() && e.iter().zip(a).all(|(e, a)| matches(e, a, path))
        }
        _ => expected == actual,
    }
}

fn ours(c: &Container) -> bool {
    is_injected(&c.name)
}

/// Moves our init containers after every regular init container (one without
/// `restartPolicy: Always`) that comes after the verifier, keeping their order, so that what
/// such a container writes (another webhook appended it, as KServe's storage-initializer is,
/// or the pod declares it there) is verified too. Returns a warning when it moved them.
pub fn verifier_last(pod: &mut Pod) -> Vec<String> {
    let Some(inits) = pod.spec.as_mut().and_then(|s| s.init_containers.as_mut()) else {
        return vec![];
    };
    let Some(at) = inits.iter().position(ours) else {
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

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::names::VERIFY_CONTAINER;

    fn container(mounts: Value) -> Container {
        serde_json::from_value(json!({
            "name": VERIFY_CONTAINER, "image": "agent",
            "volumeMounts": mounts,
            "readinessProbe": {"httpGet": {"path": "/", "port": 1}}
        }))
        .unwrap()
    }

    fn model_mount() -> Value {
        json!({"name": "data", "mountPath": "/data", "readOnly": true})
    }

    fn token_mount(read_only: bool) -> Value {
        json!({"name": "kube-api-access-x1y2z", "mountPath": SERVICE_ACCOUNT_TOKEN_PATH, "readOnly": read_only})
    }

    #[test]
    fn the_api_servers_token_mount_and_defaults_keep_our_container_ours() {
        let ours = container(json!([model_mount()]));
        let mut seen = container(json!([model_mount(), token_mount(true)]));
        seen.readiness_probe.as_mut().unwrap().timeout_seconds = Some(1);
        assert!(same_container(&ours, &seen));
        assert!(same_container(&ours, &ours));
    }

    #[test]
    fn anything_else_added_makes_a_look_alike() {
        let ours = container(json!([model_mount()]));
        for mounts in [
            // A writable "token" mount is not what the API server adds.
            json!([model_mount(), token_mount(false)]),
            // Another mount, or the model mount changed.
            json!([model_mount(), {"name": "x", "mountPath": "/x"}]),
            json!([{"name": "data", "mountPath": "/data", "readOnly": false}]),
            json!([token_mount(true)]),
        ] {
            assert!(
                !same_container(&ours, &container(mounts.clone())),
                "{mounts}"
            );
        }
        let mut with_command = container(json!([model_mount()]));
        with_command.command = Some(vec!["sh".into()]);
        assert!(!same_container(&ours, &with_command));
    }
}
