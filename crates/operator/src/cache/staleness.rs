//! When one watch of the cache may be trusted: a pure state machine fed with what the watch
//! stream yields and the time, so that every transition is unit-tested without an API server.
//!
//! kube's watcher resumes silently after errors: once the API server answers again it goes on
//! watching from its last resource version and yields nothing until something changes. So
//! "no error since" does not prove that a broken watch has healed. What does:
//! - a completed list (`InitDone`): the store was replaced by what the API server has now;
//! - a change event after the break: the watch is flowing again, and a watch resumed from a
//!   resource version delivers everything since that version (or fails with 410 and re-lists).
//!
//! A watch broken for longer than the bound with neither is *probed* with a cheap list, and its
//! stream is restarted either way, which forces a fresh list:
//! - the probe succeeds: the API server is back and the break most likely healed quietly, so the
//!   cache stays synced while the fresh list runs (no spurious unsynced window after a short
//!   break), but only for one more bound;
//! - the probe fails: the cache is unsynced until a fresh list completes.

use std::time::{Duration, Instant};

/// What the watch stream yielded, as far as trust goes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Seen {
    /// A list started or yielded an object (`Init`, `InitApply`): proves nothing yet.
    Listing,
    /// A list completed (`InitDone`): the store now holds what the API server has.
    Listed,
    /// A change event (`Apply`, `Delete`): the watch delivers again.
    Changed,
}

/// What the driver of the watch should do now.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Check {
    /// Nothing: keep watching.
    Wait,
    /// The watch has been broken for the bound: probe the API server with a cheap list, report
    /// the outcome with [`Staleness::probed`] and restart the watch stream (a fresh list).
    Probe,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Phase {
    /// Waiting for a list to complete. `synced` says whether the store may be used meanwhile,
    /// `until` how long that lasts.
    Listing {
        synced: bool,
        until: Option<Instant>,
    },
    /// Listed and watching, no error since.
    Live,
    /// An error since the last proof of life, at `since`.
    Broken { since: Instant },
}

/// The trust state of one watch; see the module docs.
#[derive(Clone, Debug)]
pub struct Staleness {
    bound: Duration,
    phase: Phase,
}

impl Staleness {
    /// A watch that has not listed yet (not synced), unsynced after `bound` of breakage.
    pub fn new(bound: Duration) -> Self {
        Staleness {
            bound,
            phase: Phase::Listing {
                synced: false,
                until: None,
            },
        }
    }

    /// Whether the store may be decided on.
    pub fn synced(&self) -> bool {
        match self.phase {
            Phase::Listing { synced, .. } => synced,
            Phase::Live | Phase::Broken { .. } => true,
        }
    }

    /// The stream yielded an event.
    pub fn seen(&mut self, seen: Seen) {
        self.phase = match (seen, self.phase) {
            (Seen::Listed, _) => Phase::Live,
            (Seen::Changed, Phase::Broken { .. }) => Phase::Live,
            (_, phase) => phase,
        };
    }

    /// The stream yielded an error (or ended) at `now`.
    pub fn broken(&mut self, now: Instant) {
        if self.phase == Phase::Live {
            self.phase = Phase::Broken { since: now };
        }
    }

    /// What to do at `now`; a fresh list that did not complete in time makes the watch unsynced.
    pub fn check(&mut self, now: Instant) -> Check {
        match self.phase {
            Phase::Broken { since } if now.saturating_duration_since(since) >= self.bound => {
                Check::Probe
            }
            Phase::Listing {
                synced: true,
                until: Some(until),
            } if now >= until => {
                self.phase = Phase::Listing {
                    synced: false,
                    until: None,
                };
                Check::Wait
            }
            _ => Check::Wait,
        }
    }

    /// The probe asked for by [`Check::Probe`] succeeded (`ok`) or failed, at `now`; the driver
    /// restarts the watch stream next, so a fresh list follows.
    pub fn probed(&mut self, ok: bool, now: Instant) {
        self.phase = Phase::Listing {
            synced: ok,
            until: ok.then(|| now + self.bound),
        };
    }
}

/// Delays between retries of a failing watch: doubling from 100 ms up to `cap`, back to the start
/// after any success. The cap is small (a fraction of the bound) so that a watch recovers soon
/// after the API server does.
#[derive(Clone, Debug)]
pub struct Backoff {
    next: Duration,
    cap: Duration,
}

impl Backoff {
    const FIRST: Duration = Duration::from_millis(100);

    /// Starts at 100 ms (or `cap` when smaller).
    pub fn new(cap: Duration) -> Self {
        Backoff {
            next: Self::FIRST.min(cap),
            cap,
        }
    }

    /// The next delay.
    pub fn next_delay(&mut self) -> Duration {
        let delay = self.next;
        self.next = (self.next * 2).min(self.cap);
        delay
    }

    /// After a success.
    pub fn reset(&mut self) {
        self.next = Self::FIRST.min(self.cap);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const BOUND: Duration = Duration::from_secs(30);

    fn live(t0: Instant) -> Staleness {
        let mut s = Staleness::new(BOUND);
        assert!(!s.synced(), "not synced before the first list");
        s.seen(Seen::Listing);
        assert!(!s.synced(), "a list in progress proves nothing");
        assert_eq!(s.check(t0), Check::Wait);
        s.seen(Seen::Listed);
        assert!(s.synced());
        s
    }

    #[test]
    fn synced_only_after_the_first_list() {
        let t0 = Instant::now();
        let mut s = Staleness::new(BOUND);
        // Errors and the passing of time do not make a watch that never listed synced.
        s.broken(t0);
        assert_eq!(s.check(t0 + BOUND * 3), Check::Wait);
        s.seen(Seen::Changed);
        assert!(!s.synced());
        let s = live(t0);
        assert!(s.synced());
    }

    #[test]
    fn a_break_shorter_than_the_bound_stays_synced() {
        let t0 = Instant::now();
        let mut s = live(t0);
        s.broken(t0);
        s.broken(t0 + Duration::from_secs(10));
        assert!(s.synced());
        assert_eq!(s.check(t0 + BOUND - Duration::from_millis(1)), Check::Wait);
        assert!(s.synced());
        // A change event after the break proves the watch delivers again.
        s.seen(Seen::Changed);
        assert_eq!(s.check(t0 + BOUND * 2), Check::Wait);
        assert!(s.synced());
    }

    #[test]
    fn the_break_is_timed_from_its_first_error() {
        let t0 = Instant::now();
        let mut s = live(t0);
        s.broken(t0);
        s.broken(t0 + BOUND - Duration::from_secs(1));
        assert_eq!(s.check(t0 + BOUND), Check::Probe);
    }

    #[test]
    fn list_events_during_a_break_prove_nothing_until_the_list_completes() {
        let t0 = Instant::now();
        let mut s = live(t0);
        s.broken(t0);
        s.seen(Seen::Listing);
        assert_eq!(s.check(t0 + BOUND), Check::Probe);
        s.seen(Seen::Listed);
        assert_eq!(s.check(t0 + BOUND), Check::Wait);
    }

    #[test]
    fn a_long_break_with_a_failing_probe_is_unsynced_until_a_fresh_list() {
        let t0 = Instant::now();
        let mut s = live(t0);
        s.broken(t0);
        assert_eq!(s.check(t0 + BOUND), Check::Probe);
        s.probed(false, t0 + BOUND);
        assert!(!s.synced());
        // The restarted stream keeps failing, and a resumed watch's silence is no proof.
        s.broken(t0 + BOUND * 2);
        s.seen(Seen::Changed);
        s.seen(Seen::Listing);
        assert_eq!(s.check(t0 + BOUND * 5), Check::Wait);
        assert!(!s.synced());
        s.seen(Seen::Listed);
        assert!(s.synced());
    }

    #[test]
    fn a_healed_break_stays_synced_during_the_fresh_list_but_not_past_the_bound() {
        let t0 = Instant::now();
        let mut s = live(t0);
        s.broken(t0);
        assert_eq!(s.check(t0 + BOUND), Check::Probe);
        s.probed(true, t0 + BOUND);
        assert!(
            s.synced(),
            "a reachable API server: no spurious unsynced window"
        );
        assert_eq!(
            s.check(t0 + BOUND * 2 - Duration::from_millis(1)),
            Check::Wait
        );
        assert!(s.synced());
        s.seen(Seen::Listed);
        assert!(s.synced());

        // Twin: the fresh list does not complete within the bound.
        let mut s = live(t0);
        s.broken(t0);
        assert_eq!(s.check(t0 + BOUND), Check::Probe);
        s.probed(true, t0 + BOUND);
        assert_eq!(s.check(t0 + BOUND * 2), Check::Wait);
        assert!(!s.synced());
        s.seen(Seen::Listed);
        assert!(s.synced());
    }

    #[test]
    fn backoff_doubles_to_its_cap_and_resets() {
        let mut b = Backoff::new(Duration::from_millis(500));
        let delays: Vec<u128> = (0..5).map(|_| b.next_delay().as_millis()).collect();
        assert_eq!(delays, [100, 200, 400, 500, 500]);
        b.reset();
        assert_eq!(b.next_delay(), Duration::from_millis(100));
        assert_eq!(
            Backoff::new(Duration::from_millis(30)).next_delay(),
            Duration::from_millis(30)
        );
    }
}
