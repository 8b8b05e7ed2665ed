//! Which verification runs were already reported (metrics, Events), so each is reported once,
//! not once per reconcile. In memory: keyed by pod UID and the container's restart count.

use std::collections::{HashMap, HashSet};
use std::sync::Mutex;

use k8s_openapi::jiff::{SignedDuration, Timestamp};

use super::status::Run;

/// Runs that ended this long before this replica became the leader are taken as reported by
/// the previous leader (no duplicate Events or counts after a fail-over). Runs that ended in
/// the hand-over window (a lease duration) are reported by the new leader.
pub const HANDOVER_SLACK: SignedDuration = SignedDuration::from_secs(60);

/// Reported runs, per pod UID.
pub struct Tracker {
    since: Timestamp,
    seen: Mutex<HashMap<String, HashSet<i32>>>,
}

impl Tracker {
    /// A tracker for a leadership term that began at `since`.
    pub fn new(since: Timestamp) -> Tracker {
        Tracker {
            since,
            seen: Mutex::new(HashMap::new()),
        }
    }

    /// Whether `run` of the pod `uid` is to be reported now (true once per run). Runs that
    /// ended well before this term began are marked reported without reporting them.
    pub fn first_report(&self, uid: &str, run: &Run) -> bool {
        let mut seen = self.seen.lock().unwrap_or_else(|e| e.into_inner());
        let fresh = seen.entry(uid.to_string()).or_default().insert(run.attempt);
        fresh
            && run
                .finished_at
                .as_ref()
                .is_none_or(|t| t.0 >= self.since - HANDOVER_SLACK)
    }

    /// Forgets pods that no longer exist.
    pub fn retain(&self, live: impl Fn(&str) -> bool) {
        let mut seen = self.seen.lock().unwrap_or_else(|e| e.into_inner());
        seen.retain(|uid, _| live(uid));
    }

    /// How many pods are remembered.
    pub fn len(&self) -> usize {
        self.seen.lock().map(|s| s.len()).unwrap_or(0)
    }

    /// Whether none is.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;

    fn run(attempt: i32, at: Timestamp) -> Run {
        Run {
            attempt,
            verified: false,
            message: "x".into(),
            finished_at: Some(Time(at)),
        }
    }

    #[test]
    fn once_per_run_and_old_runs_are_not_reported() {
        let now = Timestamp::now();
        let t = Tracker::new(now);
        assert!(t.first_report("a", &run(0, now)));
        assert!(!t.first_report("a", &run(0, now)));
        assert!(t.first_report("a", &run(1, now)));
        assert!(t.first_report("b", &run(0, now - SignedDuration::from_secs(30))));
        assert!(!t.first_report("c", &run(0, now - SignedDuration::from_secs(600))));
        assert!(!t.first_report("c", &run(0, now)));
        t.retain(|u| u == "a");
        assert_eq!(t.len(), 1);
    }
}
