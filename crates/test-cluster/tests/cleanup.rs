//! After a test process ends, none of its etcd or kube-apiserver processes and
//! none of its temp dirs are left, whether it exited normally while holding
//! the shared control plane (statics are never dropped), panicked, or was
//! killed with SIGKILL.
//!
//! The parent test runs this same test binary again as a child, with one of
//! the `#[ignore]`d helpers below selected, and then inspects /proc.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use test_cluster::ControlPlane;

const MARKER: &str = "MVO-CLEANUP-CHILD";

fn report(cp: &ControlPlane) {
    let [etcd, apiserver] = cp.pids();
    // The parent reads this line from our stdout.
    println!("{MARKER} {etcd} {apiserver} {}", cp.state_dir().display());
}

#[tokio::test]
#[ignore = "helper: run by no_servers_or_dirs_left_after_the_test_process_ends"]
async fn child_exits_holding_the_shared_control_plane() {
    report(test_cluster::shared().await.unwrap());
}

#[tokio::test]
#[ignore = "helper: run by no_servers_or_dirs_left_after_the_test_process_ends"]
async fn child_panics() {
    let cp = ControlPlane::start().await.unwrap();
    report(&cp);
    panic!("deliberate panic with a running control plane");
}

#[tokio::test]
#[ignore = "helper: run by no_servers_or_dirs_left_after_the_test_process_ends"]
async fn child_is_killed() {
    report(test_cluster::shared().await.unwrap());
    tokio::time::sleep(Duration::from_secs(600)).await;
}

#[test]
fn no_servers_or_dirs_left_after_the_test_process_ends() {
    for (helper, kill) in [
        ("child_exits_holding_the_shared_control_plane", false),
        ("child_panics", false),
        ("child_is_killed", true),
    ] {
        let (pids, dir) = run_child(helper, kill);
        for pid in pids {
            assert!(
                wait_until(|| !is_alive(pid)),
                "{helper}: process {pid} ({}) still runs after the test process ended",
                comm(pid)
            );
        }
        assert!(
            wait_until(|| !dir.exists()),
            "{helper}: {} was not removed",
            dir.display()
        );
        let leftovers = processes_mentioning(&dir);
        assert!(
            leftovers.is_empty(),
            "{helper}: left running: {leftovers:?}"
        );
    }
}

/// Runs one helper in a child test process; returns the server pids and state
/// dir it reported, after the child has ended.
fn run_child(helper: &str, kill: bool) -> (Vec<u32>, PathBuf) {
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args([
            "--ignored",
            "--exact",
            helper,
            "--nocapture",
            "--test-threads=1",
        ])
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
            let pids = vec![parts[0].parse().unwrap(), parts[1].parse().unwrap()];
            reported = Some((pids, PathBuf::from(parts[2])));
            if kill {
                child.kill().unwrap();
            }
            break;
        }
    }
    let status = child.wait().unwrap();
    let (pids, dir) = reported.unwrap_or_else(|| panic!("{helper} reported nothing ({status})"));
    for pid in &pids {
        assert!(*pid > 0, "{helper} reported no pid");
    }
    (pids, dir)
}

fn wait_until(mut done: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + Duration::from_secs(15);
    while Instant::now() < deadline {
        if done() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    done()
}

/// A zombie waiting for its new parent (init) to reap it no longer runs.
fn is_alive(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => stat
            .rsplit_once(") ")
            .is_some_and(|(_, rest)| !rest.starts_with('Z') && !rest.starts_with('X')),
        Err(_) => false,
    }
}

fn comm(pid: u32) -> String {
    std::fs::read_to_string(format!("/proc/{pid}/comm"))
        .unwrap_or_default()
        .trim()
        .to_string()
}

/// Live processes whose command line names `dir` (our servers all do).
fn processes_mentioning(dir: &Path) -> Vec<String> {
    let needle = dir.to_string_lossy().into_owned();
    let mut found = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let cmdline = std::fs::read(entry.path().join("cmdline")).unwrap_or_default();
        let cmdline = String::from_utf8_lossy(&cmdline).replace('\0', " ");
        if cmdline.contains(&needle) && is_alive(pid) {
            found.push(format!("{pid}: {cmdline}"));
        }
    }
    found
}
