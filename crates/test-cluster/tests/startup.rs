//! Start-up time and the kubeconfig file. Alone in its test binary so that no
//! other test competes for the two cores while it is timed.

use std::time::Duration;

use k8s_openapi::api::core::v1::Namespace;
use kube::api::{Api, ListParams};
use kube::config::{KubeConfigOptions, Kubeconfig};
use test_cluster::ControlPlane;

/// The budget: ready within 20 s of the call on a 2-core machine,
/// with the binaries cached.
const READY_BUDGET: Duration = Duration::from_secs(20);

#[tokio::test]
async fn ready_within_budget_and_kubeconfig_works() {
    let cp = ControlPlane::start()
        .await
        .expect("starting the control plane");
    eprintln!("control plane ready after {:?}", cp.ready_after());
    assert!(
        cp.ready_after() < READY_BUDGET,
        "control plane took {:?}, budget {READY_BUDGET:?}",
        cp.ready_after()
    );

    // The kubeconfig file works on its own, as kubectl or the demo use it.
    let text = std::fs::read_to_string(cp.kubeconfig_path()).unwrap();
    let kc = Kubeconfig::from_yaml(&text).unwrap();
    let config = kube::Config::from_custom_kubeconfig(kc, &KubeConfigOptions::default())
        .await
        .unwrap();
    assert_eq!(
        config.cluster_url.to_string().trim_end_matches('/'),
        cp.server_url()
    );
    let client = kube::Client::try_from(config).unwrap();
    let names: Vec<String> = Api::<Namespace>::all(client)
        .list(&ListParams::default())
        .await
        .unwrap()
        .items
        .into_iter()
        .filter_map(|ns| ns.metadata.name)
        .collect();
    assert!(names.iter().any(|n| n == "kube-system"), "{names:?}");

    let dir = cp.state_dir().to_path_buf();
    drop(cp);
    assert!(!dir.exists(), "{} should be removed on drop", dir.display());
}
