//! The loop of watch mode: verify, publish the result to the endpoints, the log and the result
//! file, sleep one interval; and the process's start and exit.

use std::net::{SocketAddr, TcpListener};
use std::process::ExitCode;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use serde_json::{Value, json};

use super::http::serve;
use super::state::{Phase, Shared, State, lock};
use crate::args::{FixHints, Output, VerifyMethod};
use crate::cmd_verify::{self, result_line, write_result_file};
use crate::duration::{fmt_duration, rfc3339};
use crate::fix::render;
use crate::report::{self, Outcome, Verb, error_kind};

/// Where the endpoints are served without `--health-addr` or `--health-port`.
const DEFAULT_PORT: u16 = 8080;

/// `/healthz` fails when one verification runs longer than this (without `--stuck-after`).
const DEFAULT_STUCK_AFTER: Duration = Duration::from_secs(3600);

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
    // one-shot verification would, with the reason in the result file. Material from
    // environment variables is read here, once, and used by every verification.
    let env = match cmd_verify::start(method) {
        Ok(env) => Some(env),
        // Report-only: the unusable material is reported by every verification instead, and
        // the endpoints stay up (and ready), so the pod runs as it would without the check.
        Err(_) if common.report_only => None,
        Err(e) => {
            let result = Err(e);
            if let Some(p) = &common.result_file {
                write_result_file(p, &result_line(&result, common.fix_hints));
            }
            return report::emit(output, Verb::Verify, common.fix_hints, result);
        }
    };
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
        let result = match &env {
            Some(env) => cmd_verify::check(method, env, jobs),
            None => cmd_verify::start(method).and_then(|env| cmd_verify::check(method, &env, jobs)),
        };
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
            s.ready = result.is_ok() || common.report_only;
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
