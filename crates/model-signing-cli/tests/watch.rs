//! Watch mode (`verify ... --interval`), with real processes: readiness follows the model in
//! both directions, liveness stays up, metrics count, SIGTERM exits 0, bad flags exit 2.

mod support;

use std::fs;
use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc::{Receiver, channel};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use support::{BIN, fixture, free_port, get, model, run, s, sign_with_key, verify_key_args};

/// A model signed with the P-256 fixture key; returns (model, signature).
fn signed_model(dir: &Path) -> (PathBuf, PathBuf) {
    let m = model(dir);
    fs::write(m.join("weights.bin"), vec![7u8; 100_000]).unwrap();
    let sig = sign_with_key(&m, &[]);
    (m, sig)
}

/// A running watch-mode process; killed if a test fails before it exits.
struct Agent {
    child: Child,
    lines: Receiver<String>,
    log: Arc<Mutex<Vec<String>>>,
}

impl Drop for Agent {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

impl Agent {
    fn start(args: &[&str]) -> Agent {
        let mut child = Command::new(BIN)
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let stderr = child.stderr.take().unwrap();
        let (tx, lines) = channel();
        let log = Arc::new(Mutex::new(Vec::new()));
        let keep = log.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                keep.lock().unwrap().push(line.clone());
                let _ = tx.send(line);
            }
        });
        Agent { child, lines, log }
    }

    /// The address from the start-up line (`... on http://ADDR`).
    fn addr(&self) -> SocketAddr {
        let deadline = Instant::now() + Duration::from_secs(20);
        while let Some(left) = deadline.checked_duration_since(Instant::now()) {
            match self.lines.recv_timeout(left) {
                Ok(line) => {
                    // Text: `TIME verifying ... on http://ADDR`; JSON: an "address" field.
                    let json = serde_json::from_str::<serde_json::Value>(&line).ok();
                    let address = match json {
                        Some(v) => v["address"].as_str().map(str::to_string),
                        None => line.split_once(" on ").map(|(_, a)| a.trim().to_string()),
                    };
                    if let Some(a) = address.as_deref().and_then(|a| a.strip_prefix("http://")) {
                        return a.parse().unwrap();
                    }
                }
                Err(_) => break,
            }
        }
        panic!("no start-up line; stderr: {:?}", self.log());
    }

    fn log(&self) -> Vec<String> {
        self.log.lock().unwrap().clone()
    }

    fn sigterm(&mut self) -> ExitStatus {
        let pid = rustix::process::Pid::from_raw(self.child.id() as i32).unwrap();
        rustix::process::kill_process(pid, rustix::process::Signal::TERM).unwrap();
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status;
            }
            assert!(
                Instant::now() < deadline,
                "no exit 10 s after SIGTERM; stderr: {:?}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

/// Polls `path` until `want` holds, for at most `within`; returns the last (status, body).
fn wait_for(
    agent: &Agent,
    addr: SocketAddr,
    path: &str,
    within: Duration,
    want: impl Fn(u16, &str) -> bool,
) -> (u16, String) {
    let deadline = Instant::now() + within;
    let mut last = None;
    while Instant::now() < deadline {
        if let Ok((code, body)) = get(addr, path) {
            if want(code, &body) {
                return (code, body);
            }
            last = Some((code, body));
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    panic!(
        "{path} never reached the expected state within {within:?}; last: {last:?}; stderr: {:?}",
        agent.log()
    );
}

/// The value of the sample line `name` in a metrics page.
fn sample(metrics: &str, name: &str) -> f64 {
    metrics
        .lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.parse().ok())
        .unwrap_or_else(|| panic!("{name} missing from\n{metrics}"))
}

const SUCCESS: &str = "model_validation_agent_verifications_total{result=\"success\"}";
const FAILURE: &str = "model_validation_agent_verifications_total{result=\"failure\"}";
const LAST_SUCCESS: &str = "model_validation_agent_last_success_timestamp_seconds";

#[test]
fn readiness_follows_the_model_both_ways() {
    let d = tempfile::tempdir().unwrap();
    let (m, sig) = signed_model(d.path());
    let result = d.path().join("termination-log");
    let pubkey = fixture("peer-samples/ec-p256.pub.pem");
    let mut agent = Agent::start(&[
        "verify",
        "key",
        s(&m),
        "--signature",
        s(&sig),
        "--public_key",
        s(&pubkey),
        "--interval",
        "1s",
        "--health-addr",
        "127.0.0.1:0",
        "--result-file",
        s(&result),
    ]);
    let addr = agent.addr();
    let long = Duration::from_secs(15);

    // Verified: ready, alive, counted.
    let (_, body) = wait_for(&agent, addr, "/readyz", long, |c, _| c == 200);
    assert!(body.starts_with("verified: 3 files"), "{body}");
    assert_eq!(get(addr, "/ready").unwrap().0, 200, "upstream's path");
    assert_eq!(get(addr, "/healthz").unwrap(), (200, "ok\n".into()));
    let (_, metrics) = wait_for(&agent, addr, "/metrics", long, |_, b| {
        sample(b, SUCCESS) >= 1.0
    });
    assert_eq!(sample(&metrics, FAILURE), 0.0);
    assert!(sample(&metrics, LAST_SUCCESS) > 1.7e9, "{metrics}");
    assert!(
        fs::read_to_string(&result)
            .unwrap()
            .starts_with("verified: 3 files")
    );

    // Tampered: readiness drops within a few intervals and names the file; still alive.
    let original = fs::read(m.join("weights.bin")).unwrap();
    let mut tampered = original.clone();
    tampered[500] ^= 1;
    fs::write(m.join("weights.bin"), &tampered).unwrap();
    let (_, body) = wait_for(&agent, addr, "/readyz", long, |c, _| c == 503);
    assert!(
        body.starts_with("verification failed:") && body.contains("weights.bin"),
        "{body}"
    );
    assert_eq!(get(addr, "/ready").unwrap().0, 503);
    assert_eq!(get(addr, "/healthz").unwrap().0, 200);
    let (_, metrics) = wait_for(&agent, addr, "/metrics", long, |_, b| {
        sample(b, FAILURE) >= 1.0
    });
    assert_eq!(sample(&metrics, "model_validation_agent_ready"), 0.0);
    let successes = sample(&metrics, SUCCESS);
    let last_success = sample(&metrics, LAST_SUCCESS);
    let termination = fs::read_to_string(&result).unwrap();
    assert!(
        termination.starts_with("verification failed:") && termination.contains("weights.bin"),
        "{termination}"
    );

    // Restored: ready again, the success counter moves on.
    fs::write(m.join("weights.bin"), &original).unwrap();
    wait_for(&agent, addr, "/readyz", long, |c, _| c == 200);
    let (_, metrics) = wait_for(&agent, addr, "/metrics", long, |_, b| {
        sample(b, SUCCESS) > successes
    });
    assert!(sample(&metrics, LAST_SUCCESS) >= last_success);
    assert_eq!(sample(&metrics, "model_validation_agent_ready"), 1.0);
    assert_eq!(get(addr, "/healthz").unwrap().0, 200);
    assert_eq!(get(addr, "/nothing-here").unwrap().0, 404);

    // A signature file replaced by garbage is re-read too.
    let good_sig = fs::read(&sig).unwrap();
    fs::write(&sig, b"{not json").unwrap();
    wait_for(&agent, addr, "/readyz", long, |c, _| c == 503);
    fs::write(&sig, &good_sig).unwrap();
    wait_for(&agent, addr, "/readyz", long, |c, _| c == 200);

    let status = agent.sigterm();
    assert_eq!(status.code(), Some(0), "stderr: {:?}", agent.log());
    let log = agent.log();
    assert!(log.iter().any(|l| l.ends_with("received SIGTERM; exiting")));
    // One line per verification, failures included, with the file named.
    assert!(
        log.iter()
            .any(|l| l.contains(" verification failed: ") && l.contains("weights.bin")),
        "{log:?}"
    );
    assert!(
        log.iter()
            .filter(|l| l.contains(" verified: 3 files"))
            .count()
            >= 2
    );
}

#[test]
fn a_model_that_fails_from_the_start_is_never_ready_but_alive() {
    let d = tempfile::tempdir().unwrap();
    let (m, sig) = signed_model(d.path());
    fs::write(m.join("extra.txt"), "not signed").unwrap();
    let pubkey = fixture("peer-samples/ec-p256.pub.pem");
    let mut agent = Agent::start(&[
        "--output",
        "json",
        "verify",
        "key",
        s(&m),
        "--signature",
        s(&sig),
        "--public-key",
        s(&pubkey),
        "--interval=1s",
        "--health-addr=127.0.0.1:0",
    ]);
    let addr = agent.addr();
    let (_, body) = wait_for(&agent, addr, "/metrics", Duration::from_secs(15), |_, b| {
        sample(b, FAILURE) >= 2.0
    });
    assert_eq!(sample(&body, SUCCESS), 0.0);
    assert_eq!(sample(&body, LAST_SUCCESS), 0.0);
    let (code, body) = get(addr, "/readyz").unwrap();
    assert_eq!(code, 503);
    assert!(body.contains("extra.txt"), "{body}");
    assert_eq!(get(addr, "/healthz").unwrap().0, 200);
    assert_eq!(agent.sigterm().code(), Some(0));
    // --output json: every log line is one JSON object on stderr.
    assert!(
        agent
            .log()
            .iter()
            .all(|l| serde_json::from_str::<serde_json::Value>(l).is_ok()),
        "{:?}",
        agent.log()
    );
    let log = agent.log();
    let failure = log
        .iter()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .find(|v| v["ok"] == false)
        .unwrap_or_else(|| panic!("no JSON failure line in {log:?}"));
    assert_eq!(failure["event"], "verification");
    assert_eq!(failure["error"]["kind"], "model_mismatch");
    assert!(failure["time"].as_str().unwrap().ends_with('Z'));
    assert!(failure["message"].as_str().unwrap().contains("extra.txt"));
    let exit = log
        .iter()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .find(|v| v["event"] == "exit")
        .unwrap_or_else(|| panic!("no JSON exit line in {log:?}"));
    assert_eq!(exit["signal"], "SIGTERM");
}

#[test]
fn skip_initial_starts_ready_with_upstream_spellings() {
    let d = tempfile::tempdir().unwrap();
    let (m, sig) = signed_model(d.path());
    // A free port for upstream's --health-port (which listens on all interfaces).
    let port = free_port();
    let pubkey = fixture("peer-samples/ec-p256.pub.pem");
    let mut agent = Agent::start(&[
        "verify",
        "key",
        s(&m),
        "--signature",
        s(&sig),
        "--public_key",
        s(&pubkey),
        "--interval=1h",
        "--health-port",
        &port.to_string(),
        "--skip-initial",
    ]);
    let addr = agent.addr();
    assert_eq!(addr.port(), port);
    let addr: SocketAddr = ([127, 0, 0, 1], port).into();
    let (code, body) = get(addr, "/readyz").unwrap();
    assert_eq!(code, 200);
    assert!(
        body.starts_with("assumed verified (--skip-initial)"),
        "{body}"
    );
    let (_, metrics) = get(addr, "/metrics").unwrap();
    assert_eq!(sample(&metrics, SUCCESS) + sample(&metrics, FAILURE), 0.0);
    assert_eq!(agent.sigterm().code(), Some(0));
}

#[test]
fn configuration_errors_stop_at_once() {
    let d = tempfile::tempdir().unwrap();
    let (m, sig) = signed_model(d.path());
    let result = d.path().join("termination-log");
    let o = run(&[
        "verify",
        "key",
        s(&m),
        "--signature",
        s(&sig),
        "--public_key",
        s(&d.path().join("missing.pub")),
        "--interval",
        "1s",
        "--health-addr",
        "127.0.0.1:0",
        "--result-file",
        s(&result),
    ]);
    assert_eq!(o.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&o.stderr).contains("cannot read public key"));
    assert!(
        fs::read_to_string(&result)
            .unwrap()
            .contains("cannot read public key")
    );
}

#[test]
fn wrong_flag_combinations_exit_2() {
    let d = tempfile::tempdir().unwrap();
    let (m, sig) = signed_model(d.path());
    let pubkey = fixture("peer-samples/ec-p256.pub.pem");
    let base = [
        "verify",
        "key",
        s(&m),
        "--signature",
        s(&sig),
        "--public_key",
        s(&pubkey),
    ];
    for (extra, says) in [
        (&["--health-addr", "127.0.0.1:0"][..], "--interval"),
        (&["--health-port", "8080"], "--interval"),
        (&["--skip-initial"], "--interval"),
        (&["--stuck-after", "1m"], "--interval"),
        (&["--interval", "0"], "at least 1s"),
        (&["--interval", "500ms"], "at least 1s"),
        (&["--interval", "5x"], "invalid duration"),
        (&["--interval=-5s"], "invalid duration"),
        (&["--interval", "400d"], "invalid duration"),
        (&["--interval", ""], "invalid duration"),
        (
            &["--interval", "99999999999999h"],
            "too long (at most 8784h)",
        ),
        (
            &[
                "--interval",
                "1m",
                "--health-addr",
                "127.0.0.1:0",
                "--health-port",
                "1",
            ],
            "cannot be used with",
        ),
        (
            &["--interval", "1m", "--health-addr", "localhost"],
            "--health-addr",
        ),
        (
            &["--interval", "1m", "--health-port", "70000"],
            "--health-port",
        ),
    ] {
        let args: Vec<&str> = base.iter().copied().chain(extra.iter().copied()).collect();
        let o = run(&args);
        let err = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(2), "{extra:?}: {err}");
        assert!(err.contains(says), "{extra:?}: {err}");
    }
    // Without --interval nothing changes: one verification, exit 0.
    let o = run(&base);
    assert_eq!(o.status.code(), Some(0));
    assert_eq!(
        String::from_utf8_lossy(&o.stdout),
        "Verification succeeded\n"
    );
}

#[test]
fn report_only_reports_failures_but_stays_ready_even_with_unusable_material() {
    let d = tempfile::tempdir().unwrap();
    let (m, sig) = signed_model(d.path());
    fs::write(m.join("extra.txt"), "not signed").unwrap();
    let pubkey = fixture("peer-samples/ec-p256.pub.pem");
    let not_a_key = d.path().join("not-a-key.pem");
    fs::write(
        &not_a_key,
        "-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n",
    )
    .unwrap();
    for (key, expect) in [(&pubkey, "extra.txt"), (&not_a_key, "not-a-key.pem")] {
        let mut args = verify_key_args(&m, &sig, key);
        args.extend_from_slice(&[
            "--report-only",
            "--interval=1s",
            "--health-addr=127.0.0.1:0",
        ]);
        let mut agent = Agent::start(&args);
        let addr = agent.addr();
        let (_, body) = wait_for(&agent, addr, "/metrics", Duration::from_secs(15), |_, b| {
            sample(b, FAILURE) >= 1.0
        });
        assert_eq!(sample(&body, SUCCESS), 0.0);
        // Ready whatever the outcome, with the failure as the body.
        let (code, body) = get(addr, "/readyz").unwrap();
        assert_eq!(code, 200, "{body}");
        assert!(
            body.starts_with("verification failed:") && body.contains(expect),
            "{body}"
        );
        assert_eq!(agent.sigterm().code(), Some(0));
    }
}
