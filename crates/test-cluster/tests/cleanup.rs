//! After a test process ends, none of its etcd or kube-apiserver processes and
//! none of its temp dirs are left, whether it exited normally while holding
//! the shared control plane (statics are never dropped), panicked, or was
//! killed with SIGKILL.
//!
//! The parent test runs this same test binary again as a child, running the
//! `#[ignore]`d helper `child` with the case in [`CHILD_ENV`], and then
//! inspects /proc. Without that variable the helper returns at once, so that
//! `cargo test -- --include-ignored` does not run it as a test of its own.

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use test_cluster::ControlPlane;
use test_cluster::support::{is_alive, processes_mentioning};

const MARKER: &str = "MVO-CLEANUP-CHILD";
/// Set by the parent test in the child's environment: only then do the helpers run.
const CHILD_ENV: &str = "MVO_CLEANUP_CHILD";

fn report(cp: &ControlPlane) {
    let [etcd, apiserver] = cp.pids();
    // The parent reads this line from our stdout.
    println!("{MARKER} {etcd} {apiserver} {}", cp.state_dir().display());
}

/// How the child ends, as the parent selects it through [`CHILD_ENV`].
const EXITS_HOLDING_SHARED: &str = "exits-holding-the-shared-control-plane";
const PANICS: &str = "panics";
const IS_KILLED: &str = "is-killed";

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
        let leftovers = processes_mentioning(&dir.to_string_lossy());
        assert!(
            leftovers.is_empty(),
            "{helper}: left running: {leftovers:?}"
        );
    }
}

/// Runs the child test process for one case; returns the server pids and state
/// dir it reported, after the child has ended.
fn run_child(helper: &str, kill: bool) -> (Vec<u32>, PathBuf) {
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

fn comm(pid: u32) -> String {
    std::fs::read_to_string(format!("/proc/{pid}/comm"))
        .unwrap_or_default()
        .trim()
        .to_string()
}
