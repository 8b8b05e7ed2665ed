//! `test-cluster up` / `down` (what `make cluster-up` / `make cluster-down`
//! run): a background control plane whose pod runner runs new pods, and
//! nothing left once it is stopped.

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, PostParams};
use kube::config::{KubeConfigOptions, Kubeconfig};

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

fn processes_mentioning(needle: &str) -> Vec<String> {
    std::fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().parse::<u32>().is_ok())
        .filter_map(|e| {
            let stat = std::fs::read_to_string(e.path().join("stat")).ok()?;
            let zombie = stat
                .rsplit_once(") ")
                .is_some_and(|(_, r)| r.starts_with('Z'));
            let cmd = String::from_utf8_lossy(&std::fs::read(e.path().join("cmdline")).ok()?)
                .replace('\0', " ");
            (!zombie && cmd.contains(needle)).then_some(cmd)
        })
        .collect()
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
    let deadline = Instant::now() + Duration::from_secs(30);
    let message = loop {
        let pod = api.get("hello").await.unwrap();
        let message = pod
            .status
            .and_then(|s| s.init_container_statuses)
            .and_then(|s| s[0].state.clone())
            .and_then(|s| s.terminated)
            .and_then(|t| t.message);
        if let Some(m) = message {
            break m;
        }
        assert!(
            Instant::now() < deadline,
            "the pod runner never ran the pod"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert_eq!(message, "hello\n");
    // The main container is left running; remember its process.
    let main_pid: u32 = loop {
        let pod = api.get("hello").await.unwrap();
        let id = pod
            .status
            .and_then(|s| s.container_statuses)
            .and_then(|s| s[0].container_id.clone());
        if let Some(id) = id {
            break id.trim_start_matches("mvo-pod-runner://").parse().unwrap();
        }
        assert!(
            Instant::now() < deadline,
            "the main container never started"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert!(Path::new(&format!("/proc/{main_pid}")).exists());

    cli(&["down"], dir.path());
    let needle = dir.path().to_string_lossy().into_owned();
    let deadline = Instant::now() + Duration::from_secs(15);
    while !processes_mentioning(&needle).is_empty() && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(processes_mentioning(&needle), Vec::<String>::new());
    let stat = std::fs::read_to_string(format!("/proc/{main_pid}/stat")).unwrap_or_default();
    assert!(
        stat.is_empty()
            || stat
                .rsplit_once(") ")
                .is_some_and(|(_, r)| r.starts_with('Z')),
        "the pod's main container still runs: {stat}"
    );
    assert!(!dir.path().join("test-cluster.pid").exists());
}
