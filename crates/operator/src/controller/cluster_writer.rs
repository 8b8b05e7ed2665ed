//! Writes ClusterModelValidation statuses off the controller's event loop. The loop hands over
//! the latest status of each policy it touched ([`Writer::offer`]) and goes back to reading pod
//! events at once; a task of its own writes them, several at a time. A policy's status offered
//! again before it was written replaces the one waiting, so under load a policy is written once
//! per round of writes, with what is newest, however many pod events touched it meanwhile.
//!
//! With the writes awaited inside the loop (the first version), a burst of 20,000 pods left the
//! loop reading pod events only between rounds of writes, and the statuses converged 30 s after
//! the last pod change.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use futures::StreamExt;
use kube::api::{Patch, PatchParams};
use kube::{Api, Client};
use tokio::sync::Notify;

use crate::crd::cluster::{ClusterModelValidation, ClusterModelValidationStatus};

/// At most this many status writes at once.
const CONCURRENT_WRITES: usize = 16;

/// After a round in which a write failed, the next round waits this long.
const RETRY_AFTER: Duration = Duration::from_secs(1);

#[derive(Default)]
struct Book {
    /// The newest status of each policy not written yet.
    waiting: BTreeMap<String, ClusterModelValidationStatus>,
    /// What was last written for each policy (without `lastUpdated`).
    written: HashMap<String, ClusterModelValidationStatus>,
}

/// The hand-over point between the controller's loop and the writing task; cheap to clone.
#[derive(Clone, Default)]
pub struct Writer {
    book: Arc<Mutex<Book>>,
    wake: Arc<Notify>,
}

/// How a round of writes went.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Round {
    /// Statuses written.
    pub written: usize,
    /// Writes that failed (offered again, unless a newer status came meanwhile).
    pub failed: usize,
}

impl Writer {
    fn book(&self) -> MutexGuard<'_, Book> {
        // A panic while holding the lock leaves the book as it was: still usable.
        self.book.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Queues `status` as the status of `policy`, unless it is what was last written.
    /// Returns whether it was queued.
    pub fn offer(&self, policy: &str, status: ClusterModelValidationStatus) -> bool {
        let mut book = self.book();
        if book.written.get(policy) == Some(&status) {
            // Written already; anything older still waiting is stale.
            book.waiting.remove(policy);
            return false;
        }
        book.waiting.insert(policy.to_string(), status);
        drop(book);
        self.wake.notify_one();
        true
    }

    /// Forgets `policy` (deleted): nothing waiting is written, and a policy created again under
    /// its name is written from scratch.
    pub fn forget(&self, policy: &str) {
        let mut book = self.book();
        book.waiting.remove(policy);
        book.written.remove(policy);
    }

    /// How many statuses wait to be written.
    pub fn waiting(&self) -> usize {
        self.book().waiting.len()
    }

    /// Writes what waits, round after round, until the future is dropped.
    pub async fn run(self, client: Client) {
        let api = Api::<ClusterModelValidation>::all(client);
        loop {
            self.wake.notified().await;
            loop {
                let round = self.round(&api).await;
                if round.failed > 0 {
                    tokio::time::sleep(RETRY_AFTER).await;
                }
                if self.waiting() == 0 {
                    break;
                }
            }
        }
    }

    /// Writes everything waiting now, [`CONCURRENT_WRITES`] at a time.
    pub async fn round(&self, api: &Api<ClusterModelValidation>) -> Round {
        let batch = std::mem::take(&mut self.book().waiting);
        let results: Vec<_> = futures::stream::iter(batch)
            .map(|(name, status)| async move {
                let mut sent = status.clone();
                sent.last_updated = Some(super::now());
                let patch = serde_json::json!({ "status": sent });
                let result = api
                    .patch_status(&name, &PatchParams::default(), &Patch::Merge(&patch))
                    .await
                    .map(|_| ());
                (name, status, result)
            })
            .buffer_unordered(CONCURRENT_WRITES)
            .collect()
            .await;
        let mut round = Round::default();
        let mut book = self.book();
        for (name, status, result) in results {
            match result {
                Ok(()) => {
                    round.written += 1;
                    book.written.insert(name, status);
                }
                // Deleted meanwhile: its delete event forgets it.
                Err(kube::Error::Api(e)) if e.code == 404 => {}
                Err(e) => {
                    round.failed += 1;
                    tracing::warn!(policy = %name, error = %e, "cannot write ClusterModelValidation status; retrying");
                    book.waiting.entry(name).or_insert(status);
                }
            }
        }
        round
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn status(verified: i32) -> ClusterModelValidationStatus {
        ClusterModelValidationStatus {
            verified_count: verified,
            ..Default::default()
        }
    }

    #[test]
    fn the_newest_offer_replaces_the_waiting_one_and_what_was_written_is_not_offered_again() {
        let w = Writer::default();
        assert!(w.offer("a", status(1)));
        assert!(w.offer("a", status(2)));
        assert!(w.offer("b", status(1)));
        assert_eq!(w.waiting(), 2);
        assert_eq!(w.book().waiting["a"], status(2));
        // As a successful round leaves it.
        let batch = std::mem::take(&mut w.book().waiting);
        w.book().written.extend(batch);
        assert!(!w.offer("a", status(2)), "written already");
        assert!(w.offer("a", status(3)), "twin: a new status is written");
        // Going back to what was written drops the waiting newer one (it is stale now).
        assert!(!w.offer("a", status(2)));
        assert_eq!(w.waiting(), 0);
        w.forget("a");
        assert!(w.offer("a", status(2)), "forgotten: written again");
    }
}
