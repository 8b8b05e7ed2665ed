//! kube-apiserver can be stopped and started again under a running test: clients made before
//! keep working afterwards, the data (in etcd) survives, and while it is down requests fail.

use std::time::Duration;

use k8s_openapi::api::core::v1::Namespace;
use kube::api::Api;
use test_cluster::ControlPlane;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn apiserver_restarts_on_the_same_port_with_its_data() {
    let cp = ControlPlane::start().await.unwrap();
    let client = cp.client().unwrap();
    let ns = cp.create_namespace("restart").await.unwrap();
    let namespaces = Api::<Namespace>::all(client.clone());
    let [etcd, before] = cp.pids();

    cp.stop_apiserver(Duration::from_secs(5));
    assert!(
        namespaces.get(&ns).await.is_err(),
        "a stopped API server answers nothing"
    );
    // Starting twice is harmless; the second start finds it running.
    cp.start_apiserver(Duration::from_secs(90)).await.unwrap();
    cp.start_apiserver(Duration::from_secs(90)).await.unwrap();
    let [etcd_after, after] = cp.pids();
    assert_eq!(etcd, etcd_after, "etcd keeps running");
    assert_ne!(before, after, "a new kube-apiserver process");
    assert_eq!(
        namespaces.get(&ns).await.unwrap().metadata.name.as_deref(),
        Some(ns.as_str()),
        "the old client reaches the new server, which has the data"
    );

    let took = cp
        .restart_apiserver(
            Duration::from_secs(5),
            Duration::from_millis(200),
            Duration::from_secs(90),
        )
        .await
        .unwrap();
    assert!(took >= Duration::from_millis(200));
    assert!(namespaces.get(&ns).await.is_ok());
}
