//! What an admitted pod carries, and a kubeconfig that reaches the API server another way.

use std::path::{Path, PathBuf};

use std::time::Duration;

use k8s_openapi::api::core::v1::{ContainerStatus, Pod};
use kube::api::{Api, PostParams};
use model_validation_operator::agent::env::PUBLIC_KEY;
use model_validation_operator::names::VERIFY_CONTAINER;

/// Waits (up to `within`) until a dry-run create of `pod` is admitted and the admitted pod
/// passes `ok`: the webhook (or its absence) is now what the API server applies. A dry run
/// reaches the webhook (`sideEffects: NoneOnDryRun`) without creating anything.
pub async fn wait_dry_run_admits(
    pods: &Api<Pod>,
    pod: &Pod,
    what: &str,
    within: Duration,
    ok: impl Fn(&Pod) -> bool,
) {
    let ok = &ok;
    test_cluster::support::wait_for(what, within, || async move {
        let dry = PostParams {
            dry_run: true,
            ..Default::default()
        };
        match pods.create(&dry, pod).await {
            Ok(admitted) if ok(&admitted) => Some(()),
            _ => None,
        }
    })
    .await;
}

/// The status of the pod's verification init container, once the kubelet has reported it.
pub fn verifier_status(pod: &Pod) -> Option<&ContainerStatus> {
    pod.status
        .as_ref()?
        .init_container_statuses
        .as_ref()?
        .iter()
        .find(|s| s.name == VERIFY_CONTAINER)
}

/// Whether the pod has the verification init container.
pub fn has_verifier(pod: &Pod) -> bool {
    pod.spec
        .as_ref()
        .and_then(|s| s.init_containers.as_ref())
        .is_some_and(|c| c.iter().any(|c| c.name == VERIFY_CONTAINER))
}

/// The public key PEM the verifier was given from the policy (`publicKeyConfig.keyPem`).
pub fn verifier_key(pod: &Pod) -> Option<String> {
    pod.spec
        .as_ref()?
        .init_containers
        .as_ref()?
        .iter()
        .find(|c| c.name == VERIFY_CONTAINER)?
        .env
        .as_ref()?
        .iter()
        .find(|e| e.name == PUBLIC_KEY)?
        .value
        .clone()
}

/// A copy of the kubeconfig at `kubeconfig`, written into `dir`, whose server `server` is
/// replaced by `via` (e.g. `https://127.0.0.1:<port>` of a [`super::Balancer`] in front of the
/// API server; the API server's certificate names 127.0.0.1, so TLS still verifies).
pub fn kubeconfig_via(kubeconfig: &Path, server: &str, via: &str, dir: &Path) -> PathBuf {
    let text = std::fs::read_to_string(kubeconfig).unwrap();
    assert!(
        text.contains(server),
        "{server} not in {}",
        kubeconfig.display()
    );
    let path = dir.join("kubeconfig-via");
    std::fs::write(&path, text.replace(server, via)).unwrap();
    path
}
