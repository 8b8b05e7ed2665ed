//! The real node: kubelet, containerd 2 and runc run a pod from an image imported into
//! containerd, with the pod's securityContext enforced (its user, a read-only root filesystem,
//! dropped capabilities), and the pod's status and logs come back through the API server.

use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, LogParams, PostParams};
use serde_json::json;
use test_cluster::node::BUSYBOX_IMAGE;
use test_cluster::{ControlPlane, StartOptions};

async fn wait_phase(pods: &Api<Pod>, name: &str, within: Duration) -> Pod {
    let deadline = Instant::now() + within;
    loop {
        let pod = pods.get(name).await.unwrap();
        let phase = pod
            .status
            .as_ref()
            .and_then(|s| s.phase.clone())
            .unwrap_or_default();
        if phase == "Succeeded" || phase == "Failed" {
            return pod;
        }
        assert!(
            Instant::now() < deadline,
            "pod {name} still {phase:?} after {within:?}: {:?}",
            pod.status
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pod_runs_as_its_user_with_a_read_only_root_on_the_real_node() {
    let began = Instant::now();
    let cp = ControlPlane::start_with(StartOptions {
        real_node: true,
        ..Default::default()
    })
    .await
    .unwrap();
    let node = cp.node().expect("a real node");
    eprintln!(
        "control plane ready after {:.1} s; node phases: {:?}; total {:.1} s",
        cp.ready_after().as_secs_f64(),
        node.phases,
        began.elapsed().as_secs_f64()
    );
    let ns = cp.create_namespace("real").await.unwrap();
    let pods: Api<Pod> = Api::namespaced(cp.client().unwrap(), &ns);
    let pod: Pod = serde_json::from_value(json!({
        "metadata": {"name": "whoami"},
        "spec": {
            "restartPolicy": "Never",
            "securityContext": {"runAsUser": 65532, "runAsGroup": 65532, "runAsNonRoot": true,
                                 "seccompProfile": {"type": "RuntimeDefault"}},
            "containers": [{
                "name": "main", "image": BUSYBOX_IMAGE, "imagePullPolicy": "Never",
                "command": ["/bin/sh", "-c",
                    "id -u; id -g; if touch /probe 2>/dev/null; then echo rootfs-writable; else echo rootfs-read-only; fi; grep CapEff /proc/self/status"],
                "securityContext": {"readOnlyRootFilesystem": true, "allowPrivilegeEscalation": false,
                                    "capabilities": {"drop": ["ALL"]}}
            }]
        }
    }))
    .unwrap();
    pods.create(&PostParams::default(), &pod).await.unwrap();
    let done = wait_phase(&pods, "whoami", Duration::from_secs(120)).await;
    let logs = pods
        .logs("whoami", &LogParams::default())
        .await
        .unwrap_or_else(|e| panic!("logs: {e}; status {:?}", done.status));
    assert_eq!(
        done.status.as_ref().and_then(|s| s.phase.as_deref()),
        Some("Succeeded"),
        "{logs}"
    );
    let lines: Vec<&str> = logs.lines().collect();
    assert_eq!(
        lines,
        [
            "65532",
            "65532",
            "rootfs-read-only",
            "CapEff:\t0000000000000000"
        ],
        "{logs}"
    );
}
