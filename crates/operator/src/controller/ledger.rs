//! What the status of each ClusterModelValidation needs, kept per pod as little as that: for
//! each governed pod, its namespace, name and one outcome per policy that applied. Counts are
//! adjusted by the difference a pod's change makes, so one change costs the policies it touches
//! and nothing more, and a burst costs the pods in it. Pure: the controller feeds it summaries
//! ([`summarize`]) of watched pods and writes the status of the policies it marks dirty.

use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};
use std::sync::Arc;

use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;

use crate::crd::cluster::{MAX_RECENT_FAILURES, PolicyFailure};
use crate::names::{annotations, cluster_containers};
use crate::text::truncate;

/// How one policy's verifier stands in one pod.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Injected; the verifier has not finished.
    Injected,
    /// It verified the model.
    Verified,
    /// It failed (in `warn` and `audit`: reported what `enforce` would have stopped).
    Failed {
        /// Its termination message.
        message: String,
        /// When it finished.
        at: Option<Time>,
    },
    /// Not injected: `enforce` would have refused the pod at admission (a policy in `warn` or
    /// `audit` mode; the webhook recorded why on the pod).
    Refused {
        /// The refusal.
        message: String,
        /// When the pod was created.
        at: Option<Time>,
    },
}

impl Outcome {
    /// Whether it counts as a failure (status `failedCount`, recent failures).
    pub fn failed(&self) -> Option<(&str, &Option<Time>)> {
        match self {
            Outcome::Failed { message, at } | Outcome::Refused { message, at } => {
                Some((message, at))
            }
            _ => None,
        }
    }
}

/// A governed pod, as the ledger keeps it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PodEntry {
    /// Its namespace.
    pub namespace: Arc<str>,
    /// Its name.
    pub name: Arc<str>,
    /// One outcome per policy whose verifier it has, by policy name.
    pub outcomes: Vec<(Arc<str>, Outcome)>,
}

/// The counts of one policy.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Tally {
    /// Pods with its verifier.
    pub injected: i32,
    /// Of those, verified.
    pub verified: i32,
    /// Of those, failed.
    pub failed: i32,
    /// The latest failures, newest first (at most [`MAX_RECENT_FAILURES`]).
    pub recent: VecDeque<PolicyFailure>,
}

/// The verifier's termination message of a failure under `--report-only` (exit code 0).
const REPORTED_FAILURE: &str = "verification failed:";

/// What the ledger keeps of `pod`: `None` when no cluster policy applied to it (no verifier,
/// no recorded refusal).
pub fn summarize(pod: &Pod) -> Option<PodEntry> {
    let annotations = pod.metadata.annotations.as_ref()?;
    let recorded = annotations
        .get(annotations::CLUSTER_POLICIES)
        .map(String::as_str)
        .unwrap_or_default();
    let findings: BTreeMap<String, String> = annotations
        .get(annotations::ADMISSION_FINDINGS)
        .and_then(|f| serde_json::from_str(f).ok())
        .unwrap_or_default();
    if recorded.is_empty() && findings.is_empty() {
        return None;
    }
    let statuses = pod
        .status
        .as_ref()
        .and_then(|s| s.init_container_statuses.as_deref())
        .unwrap_or_default();
    let created = pod.metadata.creation_timestamp.clone();
    let inits = pod
        .spec
        .as_ref()
        .and_then(|s| s.init_containers.as_deref())
        .unwrap_or_default();
    let mut outcomes = recorded
        .split(',')
        .filter_map(|entry| entry.split_once('@').map(|(name, _hash)| name))
        .filter(|name| !name.is_empty())
        .map(|policy| {
            let (verifier, _) = cluster_containers(policy);
            let finished = statuses
                .iter()
                .find(|s| s.name == verifier)
                .and_then(|s| s.state.as_ref()?.terminated.as_ref());
            let has_verifier = inits.iter().any(|c| c.name == verifier);
            let outcome = match finished {
                // Recorded with no verifier: the policy verifies image volumes only, and the
                // webhook recorded it once they verified at admission.
                None if !has_verifier => Outcome::Verified,
                None => Outcome::Injected,
                Some(t) => {
                    let message = t.message.clone().unwrap_or_default();
                    if t.exit_code == 0 && !message.starts_with(REPORTED_FAILURE) {
                        Outcome::Verified
                    } else {
                        Outcome::Failed {
                            message: truncate(message.trim(), 1024),
                            at: t.finished_at.clone(),
                        }
                    }
                }
            };
            (Arc::from(policy), outcome)
        })
        .collect::<Vec<_>>();
    outcomes.extend(findings.into_iter().map(|(policy, message)| {
        (
            Arc::from(policy.as_str()),
            Outcome::Refused {
                message: truncate(&format!("at admission: {message}"), 1024),
                at: created.clone(),
            },
        )
    }));
    Some(PodEntry {
        namespace: Arc::from(pod.metadata.namespace.as_deref().unwrap_or_default()),
        name: Arc::from(pod.metadata.name.as_deref().unwrap_or_default()),
        outcomes,
    })
}

/// Every governed pod and every policy's counts.
#[derive(Debug, Default)]
pub struct Ledger {
    pods: HashMap<String, PodEntry>,
    tallies: HashMap<Arc<str>, Tally>,
    dirty: BTreeSet<Arc<str>>,
}

impl Ledger {
    /// Records what pod `uid` is now (`None`: deleted, or no longer governed); returns the
    /// policies whose verifier finished in this change, with the outcome (for Events).
    pub fn apply(&mut self, uid: &str, entry: Option<PodEntry>) -> Vec<(Arc<str>, Outcome)> {
        let old = match &entry {
            Some(e) => self.pods.insert(uid.to_string(), e.clone()),
            None => self.pods.remove(uid),
        };
        let mut finished = Vec::new();
        if old == entry {
            return finished;
        }
        if let Some(old) = &old {
            for (policy, outcome) in &old.outcomes {
                self.count(policy, outcome, -1);
            }
        }
        if let Some(new) = &entry {
            for (policy, outcome) in &new.outcomes {
                self.count(policy, outcome, 1);
                let before = old
                    .as_ref()
                    .and_then(|o| o.outcomes.iter().find(|(p, _)| p == policy))
                    .map(|(_, x)| x);
                if *outcome != Outcome::Injected && before != Some(outcome) {
                    finished.push((policy.clone(), outcome.clone()));
                }
                let was_failed = old.as_ref().is_some_and(|o| {
                    o.outcomes
                        .iter()
                        .any(|(p, x)| p == policy && x.failed().is_some())
                });
                if let (Some((message, at)), false) = (outcome.failed(), was_failed) {
                    let recent = &mut self.tallies.entry(policy.clone()).or_default().recent;
                    recent.push_front(PolicyFailure {
                        namespace: new.namespace.to_string(),
                        pod: new.name.to_string(),
                        time: at.clone(),
                        message: message.to_string(),
                    });
                    recent.truncate(MAX_RECENT_FAILURES);
                }
            }
        }
        finished
    }

    fn count(&mut self, policy: &Arc<str>, outcome: &Outcome, by: i32) {
        let t = self.tallies.entry(policy.clone()).or_default();
        match outcome {
            Outcome::Injected => t.injected += by,
            Outcome::Verified => {
                t.injected += by;
                t.verified += by;
            }
            Outcome::Failed { .. } => {
                t.injected += by;
                t.failed += by;
            }
            // Never injected, but what enforce would have stopped.
            Outcome::Refused { .. } => t.failed += by,
        }
        self.dirty.insert(policy.clone());
    }

    /// Forgets every pod whose uid `keep` refuses (after a fresh list: the pods deleted while
    /// the watch was broken).
    pub fn retain(&mut self, keep: impl Fn(&str) -> bool) {
        let gone: Vec<String> = self.pods.keys().filter(|u| !keep(u)).cloned().collect();
        for uid in gone {
            self.apply(&uid, None);
        }
    }

    /// The counts of `policy` (zero when no pod has its verifier).
    pub fn tally(&self, policy: &str) -> Tally {
        self.tallies.get(policy).cloned().unwrap_or_default()
    }

    /// Forgets a deleted policy's counts and failures.
    pub fn forget(&mut self, policy: &str) {
        self.tallies.remove(policy);
        self.dirty.remove(policy);
    }

    /// Marks `policy` for a status write (its spec or its namespaces changed).
    pub fn touch(&mut self, policy: &str) {
        self.dirty.insert(Arc::from(policy));
    }

    /// The policies whose status may have changed since the last call.
    pub fn take_dirty(&mut self) -> Vec<Arc<str>> {
        std::mem::take(&mut self.dirty).into_iter().collect()
    }

    /// How many pods it keeps.
    pub fn len(&self) -> usize {
        self.pods.len()
    }

    /// Whether it keeps no pod.
    pub fn is_empty(&self) -> bool {
        self.pods.is_empty()
    }
}

#[cfg(test)]
mod tests;
