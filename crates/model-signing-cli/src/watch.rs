//! Watch mode (`verify <method> ... --interval DURATION`): the continuous-validation agent.
//!
//! The process verifies the model, then again every interval (measured from the end of one
//! verification to the start of the next), re-reading the key or CAs, the signature and the
//! model each time; memory stays constant because every verification streams the files. It
//! serves plain HTTP with a few threads and no async runtime:
//!
//! - `/healthz`: 200 while the verification loop runs; 503 when one verification has been
//!   running longer than `--stuck-after` or the loop missed its wake-up.
//! - `/readyz` (and `/ready`): 200 while the **last** verification succeeded, 503 with its
//!   failure message otherwise; it follows every verification in both directions.
//! - `/metrics`: Prometheus text.
//!
//! SIGTERM and SIGINT end the process with exit code 0 (as PID 1 of a container, a process
//! without a handler would ignore SIGTERM and be killed after the grace period).

use std::io::{ErrorKind, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::process::ExitCode;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant, SystemTime};

use serde_json::{Value, json};

use crate::args::{FixHints, Output, VerifyMethod};
use crate::cmd_verify::{self, result_line, write_result_file};
use crate::fix::render;
use crate::report::{self, Outcome, Verb, error_kind};

/// Where the endpoints are served without `--health-addr` or `--health-port`.
const DEFAULT_PORT: u16 = 8080;
/// `/healthz` fails when one verification runs longer than this (without `--stuck-after`).
const DEFAULT_STUCK_AFTER: Duration = Duration::from_secs(3600);
/// A sleep that overruns its end by this much means the loop no longer runs.
const SLEEP_SLACK: Duration = Duration::from_secs(60);
/// The longest duration accepted (keeps every `Instant` addition far from overflow).
const MAX_DURATION: Duration = Duration::from_secs(366 * 24 * 3600);
/// Connections served at the same time; more are closed at once.
const MAX_CONNECTIONS: usize = 32;
/// Read and write timeout of one HTTP connection.
const IO_TIMEOUT: Duration = Duration::from_secs(2);
/// The request head is read up to this many bytes; the rest is ignored.
const MAX_REQUEST_HEAD: usize = 8192;

/// Parses a duration: `30s`, `5m`, `1h30m`, `1.5h`, `500ms`, or a plain number of seconds
/// (`90`, `2.5`). Units as in Go (and so in Kubernetes `duration` fields): h, m, s, ms, us (µs),
/// ns, combined as in `1h30m` or `1m0s`.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let bad = || {
        format!("invalid duration {text:?}: use e.g. 30s, 5m, 1h30m, 1.5h or a number of seconds")
    };
    let s = text.trim();
    if s.is_empty() {
        return Err(bad());
    }
    let is_num = |c: char| c.is_ascii_digit() || c == '.';
    let plain = s.chars().all(is_num);
    let mut rest = s;
    let mut nanos: u128 = 0;
    while !rest.is_empty() {
        let (num, after) = rest.split_at(rest.find(|c| !is_num(c)).unwrap_or(rest.len()));
        let (unit, next) = after.split_at(after.find(is_num).unwrap_or(after.len()));
        let unit_nanos: u128 = match unit {
            "h" => 3_600_000_000_000,
            "m" => 60_000_000_000,
            "s" => 1_000_000_000,
            "ms" => 1_000_000,
            "us" | "µs" | "μs" => 1_000,
            "ns" => 1,
            "" if plain => 1_000_000_000,
            _ => return Err(bad()),
        };
        let (int, frac) = num.split_once('.').unwrap_or((num, ""));
        let digits = |d: &str| d.chars().all(|c| c.is_ascii_digit());
        if (int.is_empty() && frac.is_empty()) || !digits(int) || !digits(frac) {
            return Err(bad());
        }
        if int.len() > 12 || frac.len() > 9 {
            return Err(format!("duration {text:?} is out of range"));
        }
        let whole: u128 = if int.is_empty() {
            0
        } else {
            int.parse().map_err(|_| bad())?
        };
        let (part, scale): (u128, u128) = if frac.is_empty() {
            (0, 1)
        } else {
            (
                frac.parse().map_err(|_| bad())?,
                10u128.pow(frac.len() as u32),
            )
        };
        nanos += whole * unit_nanos + part * unit_nanos / scale;
        rest = next;
    }
    if nanos > MAX_DURATION.as_nanos() {
        return Err(format!(
            "duration {text:?} is too long (at most {})",
            fmt_duration(MAX_DURATION)
        ));
    }
    Ok(Duration::from_nanos(nanos as u64))
}

/// [`parse_duration`], at least one second (`--interval`, `--stuck-after`).
pub fn parse_interval(text: &str) -> Result<Duration, String> {
    let d = parse_duration(text)?;
    if d < Duration::from_secs(1) {
        return Err(format!("must be at least 1s (got {text:?})"));
    }
    Ok(d)
}

/// `1h30m`, `30s`, `1.5s`.
pub fn fmt_duration(d: Duration) -> String {
    if d.subsec_nanos() != 0 {
        return format!("{}s", d.as_secs_f64());
    }
    let s = d.as_secs();
    let mut out = String::new();
    for (n, unit) in [(s / 3600, "h"), (s / 60 % 60, "m"), (s % 60, "s")] {
        if n != 0 {
            out.push_str(&format!("{n}{unit}"));
        }
    }
    if out.is_empty() {
        out.push_str("0s");
    }
    out
}

/// `2026-11-25T12:00:00Z`.
fn rfc3339(t: SystemTime) -> String {
    let secs = t
        .duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let (y, m, d) = civil_from_days((secs / 86_400) as i64);
    let r = secs % 86_400;
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        r / 3600,
        r / 60 % 60,
        r % 60
    )
}

/// Days since 1970-01-01 to (year, month, day) in the proleptic Gregorian calendar
/// (Howard Hinnant's algorithm).
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m as u32, d as u32)
}

fn unix_seconds(t: SystemTime) -> f64 {
    t.duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0)
}

/// What the loop is doing.
#[derive(Clone, Copy, Debug)]
enum Phase {
    /// A verification started at this instant.
    Checking { since: Instant },
    /// Sleeping until this instant.
    Waiting { until: Instant },
}

/// What the endpoints report.
#[derive(Debug)]
struct State {
    /// Whether the last verification succeeded (or `--skip-initial` assumed it).
    ready: bool,
    /// The last verification's one-line outcome (the result file's line).
    message: String,
    successes: u64,
    failures: u64,
    last_success: Option<SystemTime>,
    last_duration: Option<Duration>,
    phase: Phase,
}

struct Shared {
    state: Mutex<State>,
    /// Held while logging and writing the result file, so that a signal never cuts a line.
    io: Mutex<()>,
    stuck_after: Duration,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// `/healthz`: `Err` with the reason when the loop is stuck.
fn health(phase: Phase, now: Instant, stuck_after: Duration) -> Result<(), String> {
    match phase {
        Phase::Checking { since } => {
            let running = now.saturating_duration_since(since);
            if running > stuck_after {
                return Err(format!(
                    "stuck: a verification has been running for {} (--stuck-after {})",
                    fmt_duration(Duration::from_secs(running.as_secs())),
                    fmt_duration(stuck_after)
                ));
            }
        }
        Phase::Waiting { until } => {
            let late = now.saturating_duration_since(until);
            if late > SLEEP_SLACK {
                return Err(format!(
                    "stuck: the next verification is {} late",
                    fmt_duration(Duration::from_secs(late.as_secs()))
                ));
            }
        }
    }
    Ok(())
}

/// `/metrics` in the Prometheus text format (0.0.4).
fn metrics(s: &State) -> String {
    let mut out = String::new();
    let mut metric = |name: &str, kind: &str, help: &str, samples: &[(&str, String)]| {
        out.push_str(&format!("# HELP {name} {help}\n# TYPE {name} {kind}\n"));
        for (labels, value) in samples {
            out.push_str(&format!("{name}{labels} {value}\n"));
        }
    };
    metric(
        "model_validation_agent_verifications_total",
        "counter",
        "Verifications of the model, by result.",
        &[
            (r#"{result="success"}"#, s.successes.to_string()),
            (r#"{result="failure"}"#, s.failures.to_string()),
        ],
    );
    metric(
        "model_validation_agent_last_success_timestamp_seconds",
        "gauge",
        "Unix time of the last successful verification (0 before the first).",
        &[(
            "",
            format!("{:.3}", s.last_success.map_or(0.0, unix_seconds)),
        )],
    );
    metric(
        "model_validation_agent_ready",
        "gauge",
        "1 while the last verification succeeded, else 0.",
        &[("", u8::from(s.ready).to_string())],
    );
    metric(
        "model_validation_agent_last_verification_duration_seconds",
        "gauge",
        "How long the last verification took.",
        &[(
            "",
            format!("{:.6}", s.last_duration.map_or(0.0, |d| d.as_secs_f64())),
        )],
    );
    out
}

/// An HTTP response: status, content type, body.
type Response = (u16, &'static str, String);

const TEXT: &str = "text/plain; charset=utf-8";
const PROMETHEUS: &str = "text/plain; version=0.0.4; charset=utf-8";

/// The response to `method target`.
fn route(shared: &Shared, method: &str, target: &str, now: Instant) -> Response {
    if method != "GET" && method != "HEAD" {
        return (405, TEXT, "method not allowed: use GET\n".into());
    }
    let path = target.split(['?', '#']).next().unwrap_or("");
    let s = lock(&shared.state);
    match path {
        "/healthz" | "/livez" => match health(s.phase, now, shared.stuck_after) {
            Ok(()) => (200, TEXT, "ok\n".into()),
            Err(why) => (503, TEXT, format!("{why}\n")),
        },
        "/readyz" | "/ready" => (
            if s.ready { 200 } else { 503 },
            TEXT,
            format!("{}\n", s.message),
        ),
        "/metrics" => (200, PROMETHEUS, metrics(&s)),
        "/" => (
            200,
            TEXT,
            "model-signing watch mode: /healthz /readyz /ready /metrics\n".into(),
        ),
        _ => (404, TEXT, "not found\n".into()),
    }
}

fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        400 => "Bad Request",
        404 => "Not Found",
        405 => "Method Not Allowed",
        503 => "Service Unavailable",
        _ => "",
    }
}

/// Method and target of the request line, if the head has one.
fn request_line(head: &[u8]) -> Option<(&str, &str)> {
    let end = head.iter().position(|&b| b == b'\n')?;
    let line = std::str::from_utf8(&head[..end])
        .ok()?
        .trim_end_matches('\r');
    let mut parts = line.split(' ');
    let method = parts.next()?;
    let target = parts.next()?;
    let version = parts.next()?;
    (parts.next().is_none() && version.starts_with("HTTP/") && target.starts_with('/'))
        .then_some((method, target))
}

fn serve_connection(mut stream: TcpStream, shared: &Shared) {
    let _ = stream.set_read_timeout(Some(IO_TIMEOUT));
    let _ = stream.set_write_timeout(Some(IO_TIMEOUT));
    let mut head = vec![0u8; MAX_REQUEST_HEAD];
    let mut len = 0;
    // Read the whole head: closing a socket with unread data would reset the connection and
    // could lose the response.
    while len < head.len() {
        match stream.read(&mut head[len..]) {
            Ok(0) => break,
            Ok(n) => {
                len += n;
                if head[..len].windows(4).any(|w| w == b"\r\n\r\n")
                    || head[..len].windows(2).any(|w| w == b"\n\n")
                {
                    break;
                }
            }
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(_) => break,
        }
    }
    if len == 0 {
        return; // a TCP probe or a client that gave up
    }
    let head = &head[..len];
    let (status, content_type, body, send_body) = match request_line(head) {
        Some((method, target)) => {
            let (status, ct, body) = route(shared, method, target, Instant::now());
            (status, ct, body, method != "HEAD")
        }
        None => (400, TEXT, "bad request\n".to_string(), true),
    };
    let allow = if status == 405 {
        "Allow: GET, HEAD\r\n"
    } else {
        ""
    };
    let response = format!(
        "HTTP/1.1 {status} {}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\nCache-Control: no-store\r\n{allow}Connection: close\r\n\r\n{}",
        reason(status),
        body.len(),
        if send_body { body.as_str() } else { "" },
    );
    let _ = stream.write_all(response.as_bytes());
    let _ = stream.flush();
    let _ = stream.shutdown(Shutdown::Write);
}

/// Decrements the connection count when a connection's thread ends, however it ends.
struct Slot(Arc<AtomicUsize>);

impl Drop for Slot {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

fn serve(listener: TcpListener, shared: Arc<Shared>) {
    let active = Arc::new(AtomicUsize::new(0));
    loop {
        let stream = match listener.accept() {
            Ok((s, _)) => s,
            Err(_) => {
                // Out of file descriptors and the like: back off instead of spinning.
                std::thread::sleep(Duration::from_millis(50));
                continue;
            }
        };
        if active.fetch_add(1, Ordering::SeqCst) >= MAX_CONNECTIONS {
            active.fetch_sub(1, Ordering::SeqCst);
            continue; // dropped: closed at once
        }
        let slot = Slot(active.clone());
        let shared = shared.clone();
        // A failed spawn drops the closure, and with it the connection and the slot.
        let _ = std::thread::Builder::new()
            .name("http".into())
            .stack_size(128 << 10)
            .spawn(move || {
                let _slot = slot;
                serve_connection(stream, &shared);
            });
    }
}

/// A log line: `TIME TEXT`, or with `--output json` one object with `time`, `message` and
/// `fields`.
fn event(output: Output, when: SystemTime, text: &str, fields: Value) -> String {
    let time = rfc3339(when);
    match output {
        Output::Text => format!("{time} {text}"),
        Output::Json => {
            let mut v = json!({"time": time, "message": text});
            if let (Some(dst), Value::Object(src)) = (v.as_object_mut(), fields) {
                dst.extend(src);
            }
            v.to_string()
        }
    }
}

/// The log line of one verification: its result line, or the one-shot JSON object.
fn log_line(
    output: Output,
    when: SystemTime,
    line: &str,
    result: &anyhow::Result<Outcome>,
    hints: FixHints,
) -> String {
    let fields = match result {
        Ok(o) => {
            let mut v = json!({"event": "verification", "ok": true, "warnings": o.warnings});
            if let (Some(dst), Value::Object(src)) = (v.as_object_mut(), o.json.clone()) {
                dst.extend(src);
            }
            v
        }
        Err(e) => json!({
            "event": "verification",
            "ok": false,
            "error": {"kind": error_kind(e), "message": render(e, hints)},
        }),
    };
    event(output, when, line, fields)
}

/// Runs `verify <method>` in watch mode; returns only on a startup error.
pub fn run(method: &VerifyMethod, output: Output, jobs: usize, interval: Duration) -> ExitCode {
    let common = method.common();
    let w = &common.watch;
    // A key, CA or trust root that cannot be used at all is a configuration error: stop as a
    // one-shot verification would, with the reason in the result file.
    if let Err(e) = cmd_verify::build_verifier(method, true) {
        let result = Err(e);
        if let Some(p) = &common.result_file {
            write_result_file(p, &result_line(&result, common.fix_hints));
        }
        return report::emit(output, Verb::Verify, common.fix_hints, result);
    }
    let addr = w
        .health_addr
        .unwrap_or_else(|| SocketAddr::from(([0, 0, 0, 0], w.health_port.unwrap_or(DEFAULT_PORT))));
    let listener = match TcpListener::bind(addr) {
        Ok(l) => l,
        Err(e) => {
            eprintln!("error: cannot serve the health endpoints on {addr}: {e}");
            return ExitCode::FAILURE;
        }
    };
    let served = listener.local_addr().unwrap_or(addr);
    let mut signals = match signal_hook::iterator::Signals::new([
        signal_hook::consts::SIGTERM,
        signal_hook::consts::SIGINT,
    ]) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("error: cannot handle SIGTERM: {e}");
            return ExitCode::FAILURE;
        }
    };
    let now = Instant::now();
    let (ready, message, first_wait) = if w.skip_initial {
        (
            true,
            format!(
                "assumed verified (--skip-initial): first verification at {}",
                rfc3339(SystemTime::now() + interval)
            ),
            interval,
        )
    } else {
        (
            false,
            "not verified yet: the first verification is running".to_string(),
            Duration::ZERO,
        )
    };
    let shared = Arc::new(Shared {
        state: Mutex::new(State {
            ready,
            message,
            successes: 0,
            failures: 0,
            last_success: None,
            last_duration: None,
            phase: Phase::Waiting {
                until: now + first_wait,
            },
        }),
        io: Mutex::new(()),
        stuck_after: w.stuck_after.unwrap_or(DEFAULT_STUCK_AFTER),
    });
    let signal_shared = shared.clone();
    let spawned = std::thread::Builder::new()
        .name("signals".into())
        .stack_size(128 << 10)
        .spawn(move || {
            if let Some(sig) = signals.forever().next() {
                let _io = lock(&signal_shared.io);
                let name = if sig == signal_hook::consts::SIGINT {
                    "SIGINT"
                } else {
                    "SIGTERM"
                };
                let text = format!("received {name}; exiting");
                let fields = json!({"event": "exit", "signal": name});
                eprintln!("{}", event(output, SystemTime::now(), &text, fields));
                std::process::exit(0);
            }
        });
    let http_shared = shared.clone();
    let spawned = spawned.and_then(|_| {
        std::thread::Builder::new()
            .name("http-accept".into())
            .stack_size(128 << 10)
            .spawn(move || serve(listener, http_shared))
    });
    if let Err(e) = spawned {
        eprintln!("error: cannot start a thread: {e}");
        return ExitCode::FAILURE;
    }
    {
        let _io = lock(&shared.io);
        let text = format!(
            "verifying {} every {}{}; /healthz, /readyz and /metrics on http://{served}",
            common.model.model_path.display(),
            fmt_duration(interval),
            if w.skip_initial {
                " (first after one interval: --skip-initial)"
            } else {
                ""
            },
        );
        let fields = json!({
            "event": "start",
            "model": common.model.model_path.display().to_string(),
            "interval_seconds": interval.as_secs_f64(),
            "address": format!("http://{served}"),
            "skip_initial": w.skip_initial,
        });
        eprintln!("{}", event(output, SystemTime::now(), &text, fields));
    }
    std::thread::sleep(first_wait);
    let mut last_warnings: Vec<String> = Vec::new();
    loop {
        let started = Instant::now();
        lock(&shared.state).phase = Phase::Checking { since: started };
        let result = cmd_verify::check(method, jobs);
        let took = started.elapsed();
        let when = SystemTime::now();
        let line = result_line(&result, common.fix_hints);
        {
            let _io = lock(&shared.io);
            if let Some(p) = &common.result_file {
                write_result_file(p, &line);
            }
            if let (Output::Text, Ok(o)) = (output, &result)
                && o.warnings != last_warnings
            {
                for warning in &o.warnings {
                    eprintln!("WARNING: {warning}");
                }
                last_warnings.clone_from(&o.warnings);
            }
            eprintln!(
                "{}",
                log_line(output, when, &line, &result, common.fix_hints)
            );
            let mut s = lock(&shared.state);
            s.ready = result.is_ok();
            s.message = line;
            if result.is_ok() {
                s.successes += 1;
                s.last_success = Some(when);
            } else {
                s.failures += 1;
            }
            s.last_duration = Some(took);
            s.phase = Phase::Waiting {
                until: Instant::now() + interval,
            };
        }
        drop(result);
        std::thread::sleep(interval);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        let ok = |s: &str| parse_duration(s).unwrap();
        assert_eq!(ok("30s"), Duration::from_secs(30));
        assert_eq!(ok("5m"), Duration::from_secs(300));
        assert_eq!(ok("1h30m"), Duration::from_secs(5400));
        assert_eq!(ok("1h30m15s"), Duration::from_secs(5415));
        assert_eq!(ok("1.5h"), Duration::from_secs(5400));
        assert_eq!(ok("90"), Duration::from_secs(90));
        assert_eq!(ok(" 2.5 "), Duration::from_millis(2500));
        assert_eq!(ok("1500ms"), Duration::from_millis(1500));
        assert_eq!(ok(".5s"), Duration::from_millis(500));
        assert_eq!(ok("1h0m0s"), Duration::from_secs(3600));
        assert_eq!(ok("60000000000ns"), Duration::from_secs(60));
        assert_eq!(ok("1500000us"), Duration::from_millis(1500));
        assert_eq!(ok("2000000µs"), Duration::from_secs(2));
        for bad in [
            "",
            " ",
            "5x",
            "m",
            "5m30",
            "-5s",
            "+5s",
            "1..5s",
            ".s",
            "5 m",
            "1h 30m",
            "5é",
            "١s",
            "99999999999999999h",
            "1.0000000001s",
        ] {
            assert!(parse_duration(bad).is_err(), "{bad:?} accepted");
        }
        assert!(parse_duration("400d").is_err());
        assert!(parse_duration("8785h").is_err());
        assert_eq!(ok("8784h"), MAX_DURATION);
        assert!(parse_interval("0").is_err());
        assert!(parse_interval("999ms").unwrap_err().contains("at least 1s"));
        assert_eq!(parse_interval("1").unwrap(), Duration::from_secs(1));
        assert_eq!(fmt_duration(Duration::from_secs(5400)), "1h30m");
        assert_eq!(fmt_duration(Duration::from_secs(30)), "30s");
        assert_eq!(fmt_duration(Duration::from_secs(3601)), "1h1s");
        assert_eq!(fmt_duration(Duration::from_millis(1500)), "1.5s");
        assert_eq!(fmt_duration(Duration::ZERO), "0s");
    }

    #[test]
    fn timestamps() {
        let at = |s: u64| rfc3339(SystemTime::UNIX_EPOCH + Duration::from_secs(s));
        assert_eq!(at(0), "1970-01-01T00:00:00Z");
        assert_eq!(at(951_782_400), "2000-02-29T00:00:00Z");
        assert_eq!(at(1_700_000_000), "2023-11-14T22:13:20Z");
        assert_eq!(at(4_107_542_399), "2100-02-28T23:59:59Z");
    }

    fn shared(ready: bool, phase: Phase) -> Shared {
        Shared {
            state: Mutex::new(State {
                ready,
                message: "verification failed: 1 file changed: a.bin".into(),
                successes: 3,
                failures: 1,
                last_success: Some(SystemTime::UNIX_EPOCH + Duration::from_millis(1_500)),
                last_duration: Some(Duration::from_millis(20)),
                phase,
            }),
            io: Mutex::new(()),
            stuck_after: Duration::from_secs(10),
        }
    }

    #[test]
    fn health_and_readiness() {
        let t0 = Instant::now();
        let s = shared(false, Phase::Checking { since: t0 });
        let at = |secs| t0 + Duration::from_secs(secs);
        assert_eq!(route(&s, "GET", "/healthz", at(5)).0, 200);
        let (code, _, body) = route(&s, "GET", "/healthz?verbose", at(11));
        assert_eq!(code, 503);
        assert!(body.contains("running for 11s"), "{body}");
        let (code, _, body) = route(&s, "GET", "/readyz", at(1));
        assert_eq!(
            (code, body.as_str()),
            (503, "verification failed: 1 file changed: a.bin\n")
        );
        assert_eq!(route(&s, "HEAD", "/ready", at(1)).0, 503);
        assert_eq!(route(&s, "GET", "/nope", at(1)).0, 404);
        assert_eq!(route(&s, "POST", "/readyz", at(1)).0, 405);
        let s = shared(true, Phase::Waiting { until: at(30) });
        assert_eq!(route(&s, "GET", "/readyz", at(1)).0, 200);
        assert_eq!(route(&s, "GET", "/healthz", at(80)).0, 200);
        assert_eq!(route(&s, "GET", "/healthz", at(91)).0, 503);
        let (code, ct, body) = route(&s, "GET", "/metrics", at(1));
        assert_eq!((code, ct), (200, PROMETHEUS));
        for line in [
            "# TYPE model_validation_agent_verifications_total counter",
            "model_validation_agent_verifications_total{result=\"success\"} 3",
            "model_validation_agent_verifications_total{result=\"failure\"} 1",
            "model_validation_agent_last_success_timestamp_seconds 1.500",
            "model_validation_agent_ready 1",
            "model_validation_agent_last_verification_duration_seconds 0.020000",
        ] {
            assert!(
                body.lines().any(|l| l == line),
                "{line} missing from\n{body}"
            );
        }
    }

    #[test]
    fn request_lines() {
        assert_eq!(
            request_line(b"GET /readyz HTTP/1.1\r\nHost: x\r\n\r\n"),
            Some(("GET", "/readyz"))
        );
        assert_eq!(request_line(b"GET /x HTTP/1.0\n\n"), Some(("GET", "/x")));
        for bad in [
            &b""[..],
            b"GET /readyz HTTP/1.1",
            b"GET\r\n",
            b"GET readyz HTTP/1.1\r\n",
            b"GET /a b HTTP/1.1\r\n",
            b"\xff\xfe /x HTTP/1.1\r\n",
            b"GET /x FTP\r\n",
        ] {
            assert_eq!(request_line(bad), None, "{bad:?}");
        }
    }
}
