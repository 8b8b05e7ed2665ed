//! The credentials a pod pulls with (`--pod-pull-secrets`): the docker configs of the
//! `kubernetes.io/dockerconfigjson` Secrets its `spec.imagePullSecrets` name, in its namespace.
//! A service account's `imagePullSecrets` arrive there too: the API server's ServiceAccount
//! admission plugin copies them into pods that name none, before any webhook runs.
//!
//! They are used for a policy without `spec.images.pullSecret`, only to read the registry: what
//! is trusted comes from the policy alone. Reading them needs `get` on Secrets in the pods'
//! namespaces, which the default install does not grant (deploy/optional/pod-pull-secrets).

use k8s_openapi::api::core::v1::{Pod, Secret};
use kube::Api;
use serde_json::{Map, Value};

use super::DOCKER_CONFIG_KEY;

/// At most this many pull Secrets are read per pod.
const MAX_SECRETS: usize = 8;

/// Reads pull Secrets from the API server.
#[derive(Clone)]
pub struct PodPullSecrets {
    client: kube::Client,
}

impl PodPullSecrets {
    /// With this client (the operator's service account).
    pub fn new(client: kube::Client) -> PodPullSecrets {
        PodPullSecrets { client }
    }

    /// The merged docker config of `pod`'s pull Secrets in `namespace`: `Ok(None)` when it
    /// names none (or none exists: the kubelet skips missing ones too), `Err` with what to fix
    /// when they cannot be read.
    pub async fn credentials(&self, pod: &Pod, namespace: &str) -> Result<Option<String>, String> {
        let names: Vec<&str> = pod
            .spec
            .as_ref()
            .and_then(|s| s.image_pull_secrets.as_ref())
            .into_iter()
            .flatten()
            .map(|r| r.name.as_str())
            .filter(|n| !n.is_empty())
            .take(MAX_SECRETS)
            .collect();
        if names.is_empty() {
            return Ok(None);
        }
        let api: Api<Secret> = Api::namespaced(self.client.clone(), namespace);
        let mut configs = Vec::new();
        for name in names {
            match api.get_opt(name).await {
                Ok(Some(secret)) => {
                    if let Some(bytes) = secret.data.as_ref().and_then(|d| d.get(DOCKER_CONFIG_KEY))
                    {
                        configs.push(String::from_utf8_lossy(&bytes.0).into_owned());
                    }
                }
                Ok(None) => {}
                Err(kube::Error::Api(e)) if e.code == 403 => {
                    return Err(format!(
                        "the operator may not read the pod's pull Secret {namespace}/{name} (--pod-pull-secrets needs get on Secrets: apply deploy/optional/pod-pull-secrets), or name a pull Secret in the policy's spec.images.pullSecret"
                    ));
                }
                Err(e) => {
                    return Err(format!(
                        "cannot read the pod's pull Secret {namespace}/{name}: {e}; retry"
                    ));
                }
            }
        }
        Ok(merge(&configs))
    }
}

/// One docker config holding the `auths` of each config in turn; a registry named by several
/// keeps the first (the kubelet also tries the pod's pull Secrets in order). `None` when no
/// config has an entry. Configs that are not JSON objects are skipped: the pull then goes
/// anonymous and the registry's refusal says so.
pub fn merge(configs: &[String]) -> Option<String> {
    let mut auths = Map::new();
    for c in configs {
        let Ok(Value::Object(mut config)) = serde_json::from_str::<Value>(c) else {
            continue;
        };
        if let Some(Value::Object(entries)) = config.remove("auths") {
            for (registry, entry) in entries {
                auths.entry(registry).or_insert(entry);
            }
        }
    }
    (!auths.is_empty()).then(|| serde_json::json!({ "auths": auths }).to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_first_secret_naming_a_registry_wins_and_the_others_add_theirs() {
        let a = r#"{"auths": {"r1": {"auth": "YTpi"}}}"#.to_string();
        let b = r#"{"auths": {"r1": {"auth": "Yzpk"}, "r2": {"auth": "ZTpm"}}}"#.to_string();
        let merged: Value = serde_json::from_str(&merge(&[a, b]).unwrap()).unwrap();
        assert_eq!(merged["auths"]["r1"]["auth"], "YTpi");
        assert_eq!(merged["auths"]["r2"]["auth"], "ZTpm");
    }

    #[test]
    fn nothing_usable_is_no_config() {
        assert_eq!(merge(&[]), None);
        assert_eq!(merge(&["not json".into(), r#"{"auths": {}}"#.into()]), None);
    }
}
