//! The real node: kubelet, containerd 2 and runc run a pod from an image imported into
//! containerd, with the pod's securityContext enforced (its user, a read-only root filesystem,
//! dropped capabilities), and the pod's status and logs come back through the API server.

use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, LogParams, PostParams};
use serde_json::json;
use test_cluster::node::BUSYBOX_IMAGE;
use test_cluster::{ControlPlane, StartOptions};

/// What each container prints: its user and group, whether it could write the root
/// filesystem (in /tmp, world-writable in the image), and its capability bounding set.
const SCRIPT: &str = "id -u; id -g; if touch /tmp/probe 2>/dev/null; then echo rootfs-writable; else echo rootfs-read-only; fi; grep CapBnd /proc/self/status";

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
            // `main` has the restrictions; `twin` runs the same script without them, so
            // the checks can tell (it writes /tmp, which the image makes world-writable, and
            // keeps its capabilities).
            "containers": [{
                "name": "main", "image": BUSYBOX_IMAGE, "imagePullPolicy": "Never",
                "command": ["/bin/sh", "-c", SCRIPT],
                "securityContext": {"readOnlyRootFilesystem": true, "allowPrivilegeEscalation": false,
                                    "capabilities": {"drop": ["ALL"]}}
            }, {
                "name": "twin", "image": BUSYBOX_IMAGE, "imagePullPolicy": "Never",
                "command": ["/bin/sh", "-c", SCRIPT]
            }]
        }
    }))
    .unwrap();
    pods.create(&PostParams::default(), &pod).await.unwrap();
    let done = wait_phase(&pods, "whoami", Duration::from_secs(120)).await;
    let logs = |container: &'static str| {
        let pods = pods.clone();
        let status = done.status.clone();
        async move {
            let params = LogParams {
                container: Some(container.into()),
                ..Default::default()
            };
            pods.logs("whoami", &params)
                .await
                .unwrap_or_else(|e| panic!("logs of {container}: {e}; status {status:?}"))
        }
    };
    let (main, twin) = (logs("main").await, logs("twin").await);
    assert_eq!(
        done.status.as_ref().and_then(|s| s.phase.as_deref()),
        Some("Succeeded"),
        "{main}\n{twin}"
    );
    let lines: Vec<&str> = main.lines().collect();
    assert_eq!(
        lines,
        [
            "65532",
            "65532",
            "rootfs-read-only",
            "CapBnd:\t0000000000000000"
        ],
        "{main}"
    );
    let lines: Vec<&str> = twin.lines().collect();
    assert_eq!(lines[..3], ["65532", "65532", "rootfs-writable"], "{twin}");
    assert_ne!(lines[3], "CapBnd:\t0000000000000000", "{twin}");
}
