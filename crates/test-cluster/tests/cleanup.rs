//! After a test process ends, none of its etcd or kube-apiserver processes and
//! none of its temp dirs are left, whether it exited normally while holding
//! the shared control plane (statics are never dropped), panicked, or was
//! killed with SIGKILL. With a real node running a pod, the same holds for
//! containerd, kubelet, the controller-manager, the scheduler, the pod's shim
//! and container, and for everything the node put on the host: mounts,
//! cgroups, the bridge, iptables rules, network namespaces, shared paths.
//!
//! The parent test runs this same test binary again as a child, running the
//! `#[ignore]`d helper `child` with the case in [`CHILD_ENV`], and then
//! inspects /proc. Without that variable the helper returns at once, so that
//! `cargo test -- --include-ignored` does not run it as a test of its own.

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, PostParams};
use test_cluster::node::{BUSYBOX_IMAGE, host_footprint};
use test_cluster::support::{is_alive, processes_mentioning};
use test_cluster::{ControlPlane, StartOptions};

const MARKER: &str = "MVO-CLEANUP-CHILD";
/// Set by the parent test in the child's environment: only then do the helpers run.
const CHILD_ENV: &str = "MVO_CLEANUP_CHILD";

fn report(cp: &ControlPlane) {
    let mut pids = cp.pids().to_vec();
    let mut dirs = vec![cp.state_dir().display().to_string()];
    if let Some(node) = cp.node() {
        pids.extend(node.pids());
        dirs.push(node.dir().display().to_string());
    }
    let pids: Vec<String> = pids.iter().map(u32::to_string).collect();
    // The parent reads this line from our stdout.
    println!("{MARKER} {} {}", pids.join(","), dirs.join(" "));
}

/// A control plane with a real node running a pod that sleeps (its shim and container are
/// what a SIGKILLed test would leave behind without the clean-up watchdog).
async fn real_node_with_a_running_pod() -> ControlPlane {
    let cp = ControlPlane::start_with(StartOptions {
        real_node: true,
        ..Default::default()
    })
    .await
    .unwrap();
    let ns = cp.create_namespace("cleanup").await.unwrap();
    let pods: Api<Pod> = Api::namespaced(cp.client().unwrap(), &ns);
    let pod: Pod = serde_json::from_value(serde_json::json!({
        "metadata": {"name": "sleeper"},
        "spec": {"containers": [{"name": "main", "image": BUSYBOX_IMAGE,
                                 "imagePullPolicy": "Never", "command": ["/bin/sleep", "3600"]}]}
    }))
    .unwrap();
    pods.create(&PostParams::default(), &pod).await.unwrap();
    let deadline = Instant::now() + Duration::from_secs(90);
    loop {
        let phase = pods
            .get("sleeper")
            .await
            .unwrap()
            .status
            .and_then(|s| s.phase)
            .unwrap_or_default();
        if phase == "Running" {
            return cp;
        }
        assert!(Instant::now() < deadline, "the pod is still {phase:?}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// How the child ends, as the parent selects it through [`CHILD_ENV`].
const EXITS_HOLDING_SHARED: &str = "exits-holding-the-shared-control-plane";
const PANICS: &str = "panics";
const IS_KILLED: &str = "is-killed";
const NODE_PANICS: &str = "panics-with-a-real-node";
const NODE_IS_KILLED: &str = "is-killed-with-a-real-node";

/// The child: does nothing unless the parent set [`CHILD_ENV`].
#[tokio::test]
#[ignore = "helper: run by no_servers_or_dirs_left_after_the_test_process_ends"]
async fn child() {
    let Ok(case) = std::env::var(CHILD_ENV) else {
        return;
    };
    match case.as_str() {
        EXITS_HOLDING_SHARED => report(test_cluster::shared().await.unwrap()),
        PANICS => {
            let cp = ControlPlane::start().await.unwrap();
            report(&cp);
            panic!("deliberate panic with a running control plane");
        }
        IS_KILLED => {
            report(test_cluster::shared().await.unwrap());
            tokio::time::sleep(Duration::from_secs(600)).await;
        }
        NODE_PANICS => {
            let cp = real_node_with_a_running_pod().await;
            report(&cp);
            panic!("deliberate panic with a real node running a pod");
        }
        NODE_IS_KILLED => {
            let cp = real_node_with_a_running_pod().await;
            report(&cp);
            tokio::time::sleep(Duration::from_secs(600)).await;
        }
        other => panic!("unknown {CHILD_ENV}={other}"),
    }
}

#[test]
fn no_servers_or_dirs_left_after_the_test_process_ends() {
    for (helper, kill) in [
        (EXITS_HOLDING_SHARED, false),
        (PANICS, false),
        (IS_KILLED, true),
    ] {
        check_nothing_left(helper, kill);
    }
}

/// A real node running a pod leaves nothing on the host: nothing is in the host's footprint
/// (processes, mounts, cgroups, links, iptables rules, shared paths) that was not there before.
/// (Stale sockets and empty directories an earlier run left may go: the clean-up removes those.)
#[test]
fn no_trace_of_a_real_node_left_after_the_test_process_ends() {
    let before = host_footprint();
    for (helper, kill) in [(NODE_PANICS, false), (NODE_IS_KILLED, true)] {
        check_nothing_left(helper, kill);
        let mut left = Vec::new();
        let clean = wait_until(|| {
            left = host_footprint().difference(&before).cloned().collect();
            left.is_empty()
        });
        assert!(clean, "{helper}: left on the host: {left:?}");
    }
}

fn check_nothing_left(helper: &str, kill: bool) {
    let (pids, dirs) = run_child(helper, kill);
    for pid in pids {
        assert!(
            wait_until(|| !is_alive(pid)),
            "{helper}: process {pid} ({}) still runs after the test process ended",
            comm(pid)
        );
    }
    for dir in dirs {
        // A node's clean-up kills, unmounts and removes a few hundred files: seconds on a
        // loaded machine (CI saw more than 15 s), so the bound is generous.
        assert!(
            wait_until_within(Duration::from_secs(90), || !dir.exists()),
            "{helper}: {} was not removed",
            dir.display()
        );
        // The watchdog's `rm` and shell may still be exiting when the directory is gone.
        let mut leftovers = Vec::new();
        let none = wait_until(|| {
            leftovers = processes_mentioning(&dir.to_string_lossy());
            leftovers.is_empty()
        });
        assert!(none, "{helper}: left running: {leftovers:?}");
    }
}

/// Runs the child test process for one case; returns the server pids and state
/// dirs it reported, after the child has ended.
fn run_child(helper: &str, kill: bool) -> (Vec<u32>, Vec<PathBuf>) {
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args([
            "--ignored",
            "--exact",
            "child",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(CHILD_ENV, helper)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = BufReader::new(child.stdout.take().unwrap());
    let mut reported = None;
    for line in stdout.lines() {
        let line = line.unwrap();
        // The harness may have printed "test name ... " on the same line.
        if let Some((_, rest)) = line.split_once(MARKER) {
            let parts: Vec<&str> = rest.split_whitespace().collect();
            let pids: Vec<u32> = parts[0].split(',').map(|p| p.parse().unwrap()).collect();
            reported = Some((pids, parts[1..].iter().map(PathBuf::from).collect()));
            if kill {
                child.kill().unwrap();
            }
            break;
        }
    }
    let status = child.wait().unwrap();
    let (pids, dirs) = reported.unwrap_or_else(|| panic!("{helper} reported nothing ({status})"));
    for pid in &pids {
        assert!(*pid > 0, "{helper} reported no pid");
    }
    (pids, dirs)
}

fn wait_until(done: impl FnMut() -> bool) -> bool {
    wait_until_within(Duration::from_secs(15), done)
}

fn wait_until_within(bound: Duration, mut done: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + bound;
    while Instant::now() < deadline {
        if done() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    done()
}

fn comm(pid: u32) -> String {
    std::fs::read_to_string(format!("/proc/{pid}/comm"))
        .unwrap_or_default()
        .trim()
        .to_string()
}
