//! The status of every ClusterModelValidation: matched namespaces, injected, verified and
//! failed pods, the latest failures and the `Ready` condition, plus a per-policy gauge. It runs
//! on the Lease holder beside the ModelValidation controller.
//!
//! Work follows change: the pods the webhook labelled as governed are watched, each event
//! updates the [`Ledger`] by the difference it makes, and only the policies it touched are
//! recomputed, at most every [`WRITE_EVERY`], and written only when their status differs from
//! what was last written. The writes happen off this loop ([`Writer`]), so pod events keep
//! being read while the API server takes them. Namespaces (labels only) and policies are
//! watched for the matched-namespace count and the condition; a change of the trust material in
//! the operator's namespace shows as a new set of prepared policies in the webhook's cache.

use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use k8s_openapi::api::core::v1::{Namespace, Pod};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use kube::core::{PartialObjectMeta, Selector};
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Api, Client, Resource, ResourceExt};

use super::cluster_writer::Writer;
use super::ledger::{Ledger, Outcome, summarize};
use crate::cluster_policy::ClusterPolicy;
use crate::crd::cluster::{ClusterModelValidation, ClusterModelValidationStatus};
use crate::metrics::{Metrics, PolicyPodLabels};
use crate::names::{GOVERNED_LABEL, cluster_containers};
use crate::scope::{self, Scope};
use crate::webhook::Policies;

/// How often touched policies are recomputed: a burst of pod changes becomes one status per
/// policy.
pub const WRITE_EVERY: Duration = Duration::from_millis(200);

/// What the status needs from outside the ledger.
#[derive(Clone)]
pub struct Settings {
    /// The webhook's view (prepared policies, with their resolved references).
    pub policies: Arc<dyn Policies + Send + Sync>,
    /// `--cluster-policy-namespaces`.
    pub governable: Selector,
    /// The operator's namespace (never governed).
    pub operator_namespace: String,
}

/// Runs until the future is dropped (leadership lost). Verifications that finish while it runs
/// are reported as Events on their pods through `events`.
pub async fn run(
    client: Client,
    settings: Settings,
    metrics: Arc<Metrics>,
    events: crate::events::EventSink,
) {
    let pods = watcher(
        Api::<Pod>::all(client.clone()),
        watcher::Config::default().labels(&format!("{GOVERNED_LABEL}=true")),
    )
    .default_backoff();
    let cmvs = watcher(
        Api::<ClusterModelValidation>::all(client.clone()),
        watcher::Config::default(),
    )
    .default_backoff();
    // Labels only: a metadata watch.
    let namespaces = watcher(
        Api::<PartialObjectMeta<Namespace>>::all(client.clone()),
        watcher::Config::default(),
    )
    .default_backoff();
    let mut pods = std::pin::pin!(pods);
    let mut cmvs = std::pin::pin!(cmvs);
    let mut namespaces = std::pin::pin!(namespaces);
    let writer = Writer::default();
    let writing = writer.clone().run(client);
    let mut writing = std::pin::pin!(writing);
    let mut state = State::new(settings, metrics, events, writer);
    let mut tick = tokio::time::interval(WRITE_EVERY);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            Some(event) = pods.next() => match event {
                Ok(e) => state.pod_event(e),
                Err(e) => tracing::warn!(error = %e, "governed pod watch; retrying"),
            },
            Some(event) = cmvs.next() => match event {
                Ok(e) => state.policy_event(e),
                Err(e) => tracing::warn!(error = %e, "ClusterModelValidation watch; retrying"),
            },
            Some(event) = namespaces.next() => match event {
                Ok(e) => state.namespace_event(e),
                Err(e) => tracing::warn!(error = %e, "namespace watch; retrying"),
            },
            _ = tick.tick() => state.write(),
            () = &mut writing => {}
        }
    }
}

/// The controller's memory: the ledger, the policies and namespace labels, what was written.
struct State {
    settings: Settings,
    metrics: Arc<Metrics>,
    events: crate::events::EventSink,
    ledger: Ledger,
    policies: BTreeMap<String, Arc<ClusterModelValidation>>,
    namespaces: BTreeMap<String, BTreeMap<String, String>>,
    writer: Writer,
    /// Uids seen since a (re)list of pods began, `None` when not listing.
    listing_pods: Option<HashSet<String>>,
    listing_policies: Option<HashSet<String>>,
    listing_namespaces: Option<HashSet<String>>,
    /// The prepared policies the statuses were last computed with.
    prepared: Option<Arc<Vec<ClusterPolicy>>>,
}

impl State {
    fn new(
        settings: Settings,
        metrics: Arc<Metrics>,
        events: crate::events::EventSink,
        writer: Writer,
    ) -> State {
        State {
            settings,
            metrics,
            events,
            ledger: Ledger::default(),
            policies: BTreeMap::new(),
            namespaces: BTreeMap::new(),
            writer,
            listing_pods: None,
            listing_policies: None,
            listing_namespaces: None,
            prepared: None,
        }
    }

    fn pod_event(&mut self, event: watcher::Event<Pod>) {
        match event {
            watcher::Event::Init => self.listing_pods = Some(HashSet::new()),
            watcher::Event::InitApply(p) => {
                // A (re)list: what finished before was reported then (or by another leader).
                let uid = p.metadata.uid.clone().unwrap_or_default();
                self.ledger.apply(&uid, self.summarize(&p));
                if let Some(seen) = self.listing_pods.as_mut() {
                    seen.insert(uid);
                }
            }
            watcher::Event::Apply(p) => {
                let uid = p.metadata.uid.clone().unwrap_or_default();
                for (policy, outcome) in self.ledger.apply(&uid, self.summarize(&p)) {
                    self.report(&p, &policy, &outcome);
                }
            }
            watcher::Event::Delete(p) => {
                self.ledger
                    .apply(p.metadata.uid.as_deref().unwrap_or_default(), None);
            }
            watcher::Event::InitDone => {
                if let Some(seen) = self.listing_pods.take() {
                    self.ledger.retain(|uid| seen.contains(uid));
                }
            }
        }
    }

    /// The ledger's entry for `pod`, when its namespace may be governed: the webhook refuses a
    /// forged record of cluster policies where it is called, and outside the reach it is not
    /// called, so a pod there is not counted (a namespace not seen yet is given the benefit).
    fn summarize(&self, pod: &Pod) -> Option<super::ledger::PodEntry> {
        let entry = summarize(pod)?;
        let ns: &str = &entry.namespace;
        let in_reach = match self.namespaces.get(ns) {
            Some(labels) => self.in_reach(ns, labels),
            None => !scope::exempt(ns, &self.settings.operator_namespace),
        };
        in_reach.then_some(entry)
    }

    fn in_reach(&self, namespace: &str, labels: &BTreeMap<String, String>) -> bool {
        scope::in_reach(
            namespace,
            labels,
            &self.settings.governable,
            &self.settings.operator_namespace,
        )
    }

    /// An Event on the pod for the verifier of `policy` that just finished.
    fn report(&self, pod: &Pod, policy: &str, outcome: &Outcome) {
        let message = match outcome {
            Outcome::Failed { message, .. } => message.clone(),
            // The verifier's own summary (who vouched), read from the pod at hand.
            _ => {
                let (container, _) = cluster_containers(policy);
                pod.status
                    .as_ref()
                    .and_then(|s| s.init_container_statuses.as_ref())
                    .and_then(|s| s.iter().find(|c| c.name == container))
                    .and_then(|c| c.state.as_ref()?.terminated.as_ref()?.message.clone())
                    .unwrap_or_else(|| "the model verified".into())
            }
        };
        crate::events::cluster_policy_outcome(
            &self.events,
            pod.object_ref(&()),
            policy,
            matches!(outcome, Outcome::Verified),
            message.trim(),
        );
    }

    fn policy_event(&mut self, event: watcher::Event<ClusterModelValidation>) {
        match event {
            watcher::Event::Init => self.listing_policies = Some(HashSet::new()),
            watcher::Event::InitApply(p) | watcher::Event::Apply(p) => {
                let name = p.name_any();
                self.ledger.touch(&name);
                if let Some(seen) = self.listing_policies.as_mut() {
                    seen.insert(name.clone());
                }
                self.policies.insert(name, Arc::new(p));
            }
            watcher::Event::Delete(p) => self.forget(&p.name_any()),
            watcher::Event::InitDone => {
                if let Some(seen) = self.listing_policies.take() {
                    let gone: Vec<String> = self
                        .policies
                        .keys()
                        .filter(|n| !seen.contains(*n))
                        .cloned()
                        .collect();
                    for name in gone {
                        self.forget(&name);
                    }
                }
            }
        }
    }

    fn forget(&mut self, name: &str) {
        self.policies.remove(name);
        self.writer.forget(name);
        self.ledger.forget(name);
        for state in ["injected", "verified", "failed"] {
            self.metrics.cluster_policy_pods.remove(&PolicyPodLabels {
                policy: name.into(),
                state: state.into(),
            });
        }
    }

    fn namespace_event(&mut self, event: watcher::Event<PartialObjectMeta<Namespace>>) {
        let changed = match event {
            watcher::Event::Init => {
                self.listing_namespaces = Some(HashSet::new());
                false
            }
            watcher::Event::InitApply(ns) | watcher::Event::Apply(ns) => {
                let name = ns.name_any();
                if let Some(seen) = self.listing_namespaces.as_mut() {
                    seen.insert(name.clone());
                }
                let labels = ns.labels().clone();
                self.namespaces.insert(name, labels.clone()) != Some(labels)
            }
            watcher::Event::Delete(ns) => self.namespaces.remove(&ns.name_any()).is_some(),
            watcher::Event::InitDone => match self.listing_namespaces.take() {
                Some(seen) => {
                    let before = self.namespaces.len();
                    self.namespaces.retain(|n, _| seen.contains(n));
                    before != self.namespaces.len()
                }
                None => false,
            },
        };
        if changed {
            self.touch_all();
        }
    }

    fn touch_all(&mut self) {
        for name in self.policies.keys() {
            self.ledger.touch(name);
        }
    }

    /// Recomputes the status of every touched policy and hands those that changed to the
    /// writer.
    fn write(&mut self) {
        let prepared = self.settings.policies.cluster_policies();
        if !self
            .prepared
            .as_ref()
            .is_some_and(|p| Arc::ptr_eq(p, &prepared))
        {
            // A policy, Secret or ConfigMap changed: conditions may have.
            self.prepared = Some(prepared.clone());
            self.touch_all();
        }
        for name in self.ledger.take_dirty() {
            let Some(policy) = self.policies.get(&*name).cloned() else {
                continue;
            };
            let ready = prepared
                .binary_search_by(|p| p.name().cmp(&name))
                .ok()
                .map(|i| &prepared[i]);
            let status = self.status(&policy, ready);
            for (state, value) in [
                ("injected", status.injected_pod_count),
                ("verified", status.verified_count),
                ("failed", status.failed_count),
            ] {
                self.metrics
                    .cluster_policy_pods
                    .get_or_create(&PolicyPodLabels {
                        policy: name.to_string(),
                        state: state.into(),
                    })
                    .set(value.into());
            }
            self.writer.offer(&name, status);
        }
    }

    /// The status of `policy` (without `lastUpdated`): `prepared` is its admission form, when
    /// its selectors can be evaluated.
    fn status(
        &self,
        policy: &ClusterModelValidation,
        prepared: Option<&ClusterPolicy>,
    ) -> ClusterModelValidationStatus {
        let name = policy.name_any();
        // The webhook's prepared form carries the parsed selectors; without it (not seen yet,
        // or a selector that cannot be evaluated) they are parsed here to say why.
        let parsed;
        let scope: Result<&Scope, _> = match prepared {
            Some(p) => Ok(&p.scope),
            None => {
                parsed = Scope::new(
                    &name,
                    &policy.spec.namespace_selector,
                    policy.spec.pod_selector.as_ref(),
                );
                parsed.as_ref()
            }
        };
        let (ready, reason, message) = match (&scope, prepared.map(|p| &p.document)) {
            (Err(e), _) => ("False", "InvalidSelector", e.to_string()),
            (Ok(_), Some(Err(e))) => ("False", "ReferenceUnresolved", e.to_string()),
            (Ok(_), Some(Ok(_))) => (
                "True",
                "Ready",
                format!("governing pods in {} mode", policy.spec.mode().as_str()),
            ),
            (Ok(_), None) => ("Unknown", "Pending", "not yet seen by the webhook".into()),
        };
        let matched = match &scope {
            Ok(scope) => self
                .namespaces
                .iter()
                .filter(|(ns, labels)| self.in_reach(ns, labels) && scope.selects_namespace(labels))
                .count(),
            Err(_) => 0,
        };
        let tally = self.ledger.tally(&name);
        let generation = policy.metadata.generation;
        let previous = policy.status.as_ref();
        let transition = previous
            .and_then(|s| s.conditions.iter().find(|c| c.type_ == "Ready"))
            .filter(|c| c.status == ready)
            .map(|c| c.last_transition_time.clone())
            .unwrap_or_else(super::now);
        ClusterModelValidationStatus {
            conditions: vec![Condition {
                type_: "Ready".into(),
                status: ready.into(),
                reason: reason.into(),
                message,
                observed_generation: generation,
                last_transition_time: transition,
            }],
            observed_generation: generation,
            matched_namespaces: i32::try_from(matched).unwrap_or(i32::MAX),
            injected_pod_count: tally.injected,
            verified_count: tally.verified,
            failed_count: tally.failed,
            recent_failures: tally.recent.into_iter().collect(),
            last_updated: None,
        }
    }
}
