//! What the verification loop shares with the health endpoints, and liveness.

use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant, SystemTime};

use crate::duration::fmt_duration;

/// A sleep that overruns its end by this much means the loop no longer runs.
const SLEEP_SLACK: Duration = Duration::from_secs(60);

/// What the loop is doing.
#[derive(Clone, Copy, Debug)]
pub enum Phase {
    /// A verification started at this instant.
    Checking {
        /// When it started.
        since: Instant,
    },
    /// Sleeping until this instant.
    Waiting {
        /// When the sleep ends.
        until: Instant,
    },
}

/// What the endpoints report.
#[derive(Debug)]
pub struct State {
    /// Whether the last verification succeeded (or `--skip-initial` assumed it).
    pub ready: bool,
    /// The last verification's one-line outcome (the result file's line).
    pub message: String,
    /// Verifications that succeeded.
    pub successes: u64,
    /// Verifications that failed.
    pub failures: u64,
    /// When the last success ended.
    pub last_success: Option<SystemTime>,
    /// How long the last verification took.
    pub last_duration: Option<Duration>,
    /// What the loop does now.
    pub phase: Phase,
}

/// The state and locks shared by the loop, the endpoints and the signal handler.
pub struct Shared {
    /// The state.
    pub state: Mutex<State>,
    /// Held while logging and writing the result file, so that a signal never cuts a line.
    pub io: Mutex<()>,
    /// `--stuck-after`.
    pub stuck_after: Duration,
}

/// Locks `m`, also when a thread panicked holding it (the state stays usable).
pub fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// `/healthz`: `Err` with the reason when the loop is stuck.
pub fn health(phase: Phase, now: Instant, stuck_after: Duration) -> Result<(), String> {
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
