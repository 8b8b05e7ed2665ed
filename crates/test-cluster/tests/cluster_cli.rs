//! `test-cluster up` / `down` (what `make cluster-up` / `make cluster-down`
//! run): a background control plane whose pod runner runs new pods, and
//! nothing left once it is stopped.

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, PostParams};
use kube::config::{KubeConfigOptions, Kubeconfig};
use test_cluster::support::{is_alive, processes_mentioning, wait_for};

fn cli(args: &[&str], dir: &Path) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_test-cluster"))
        .args(args)
        .arg("--dir")
        .arg(dir)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "test-cluster {args:?} failed: {stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

#[tokio::test]
async fn up_runs_pods_and_down_stops_everything() {
    let dir = tempfile::tempdir().unwrap();
    let out = cli(&["up"], dir.path());
    let kubeconfig = dir.path().canonicalize().unwrap().join("kubeconfig");
    assert!(out.contains(&kubeconfig.display().to_string()), "{out}");
    // A second `up` finds the running one.
    assert!(cli(&["up"], dir.path()).contains("already running"));

    let kc = Kubeconfig::read_from(&kubeconfig).unwrap();
    let config = kube::Config::from_custom_kubeconfig(kc, &KubeConfigOptions::default())
        .await
        .unwrap();
    let api = Api::<Pod>::default_namespaced(kube::Client::try_from(config).unwrap());
    let pod: Pod = serde_json::from_value(serde_json::json!({
        "metadata": { "name": "hello" },
        "spec": {
            "restartPolicy": "Never",
            "initContainers": [{ "name": "hello", "image": "busybox",
                "command": ["/bin/sh", "-c", "echo hello > /dev/termination-log"] }],
            "containers": [{ "name": "main", "image": "busybox", "command": ["/bin/sleep", "300"] }]
        }
    }))
    .unwrap();
    api.create(&PostParams::default(), &pod).await.unwrap();
    let started = Instant::now();
    let message = wait_for(
        "the pod runner to run the pod",
        Duration::from_secs(30),
        || async {
            api.get("hello")
                .await
                .unwrap()
                .status
                .and_then(|s| s.init_container_statuses)
                .and_then(|s| s[0].state.clone())
                .and_then(|s| s.terminated)
                .and_then(|t| t.message)
        },
    )
    .await;
    assert_eq!(message, "hello\n");
    // The main container is left running; remember its process.
    let main_pid: u32 = wait_for(
        "the main container to start",
        Duration::from_secs(30).saturating_sub(started.elapsed()),
        || async {
            api.get("hello")
                .await
                .unwrap()
                .status
                .and_then(|s| s.container_statuses)
                .and_then(|s| s[0].container_id.clone())
        },
    )
    .await
    .trim_start_matches("mvo-pod-runner://")
    .parse()
    .unwrap();
    assert!(Path::new(&format!("/proc/{main_pid}")).exists());

    cli(&["down"], dir.path());
    let needle = dir.path().to_string_lossy().into_owned();
    let deadline = Instant::now() + Duration::from_secs(15);
    while !processes_mentioning(&needle).is_empty() && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(processes_mentioning(&needle), Vec::<String>::new());
    assert!(
        !is_alive(main_pid),
        "the pod's main container still runs: {}",
        std::fs::read_to_string(format!("/proc/{main_pid}/stat")).unwrap_or_default()
    );
    assert!(!dir.path().join("test-cluster.pid").exists());
}
