//! The IO side of [`super::aggregate`]: one task per process writes the Events the
//! aggregator lets through, one at a time, so that recording an Event never waits on the API
//! and never costs more writes than the limits allow.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use k8s_openapi::api::events::v1::{Event as K8sEvent, EventSeries};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta};
use k8s_openapi::jiff::Timestamp;
use kube::api::{Api, Patch, PatchParams, PostParams};
use kube::runtime::events::EventType;
use kube::{Client, ResourceExt};
use tokio::sync::Notify;

use super::aggregate::{Aggregator, Draft, Limits, Observed, Write};
use crate::names::FIELD_MANAGER;

/// How often held writes are retried while some are pending.
const RETRY_EVERY: Duration = Duration::from_millis(500);

struct Shared {
    state: Mutex<Aggregator>,
    wake: Notify,
    client: Client,
    instance: String,
}

/// Records Events through the aggregator. Cheap to clone; every clone feeds the same writer.
#[derive(Clone)]
pub struct EventSink {
    shared: Arc<Shared>,
}

impl std::fmt::Debug for EventSink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EventSink")
            .field("instance", &self.shared.instance)
            .finish_non_exhaustive()
    }
}

impl EventSink {
    /// Starts the writer task. `instance` names this replica in `reportingInstance` (default:
    /// the controller name).
    pub fn start(client: Client, instance: Option<String>, limits: Limits) -> EventSink {
        let shared = Arc::new(Shared {
            state: Mutex::new(Aggregator::new(limits, Instant::now())),
            wake: Notify::new(),
            client,
            instance: instance.unwrap_or_else(|| FIELD_MANAGER.into()),
        });
        tokio::spawn(write_loop(shared.clone()));
        EventSink { shared }
    }

    /// Counts `draft`; the writer publishes it as soon as the limits allow. Never blocks on IO.
    pub fn record(&self, draft: Draft) {
        let observed = self.lock().observe(draft, Instant::now(), Timestamp::now());
        match observed {
            Observed::Dropped => {
                tracing::debug!("event dropped: too many event series are tracked")
            }
            Observed::New | Observed::Repeat => self.shared.wake.notify_one(),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Aggregator> {
        lock(&self.shared)
    }
}

fn lock(shared: &Shared) -> std::sync::MutexGuard<'_, Aggregator> {
    // The aggregator is consistent between calls; a panic elsewhere leaves it usable.
    shared.state.lock().unwrap_or_else(|e| e.into_inner())
}

async fn write_loop(shared: Arc<Shared>) {
    loop {
        let writes = {
            let mut agg = lock(&shared);
            let now = Instant::now();
            agg.expire(now);
            agg.due(now)
        };
        for w in writes {
            let (id, outcome) = perform(&shared, w).await;
            lock(&shared).done(id, outcome);
        }
        if lock(&shared).pending() {
            tokio::select! {
                () = shared.wake.notified() => {}
                () = tokio::time::sleep(RETRY_EVERY) => {}
            }
        } else {
            shared.wake.notified().await;
        }
    }
}

async fn perform(shared: &Shared, w: Write) -> (u64, Result<Option<String>, ()>) {
    match w {
        Write::Create {
            id,
            draft,
            count,
            last_observed,
        } => {
            let namespace = draft.regarding.namespace.clone().unwrap_or_default();
            let mut event = to_event(&draft, &shared.instance);
            event.series = (count > 1).then(|| series(count, last_observed));
            let api: Api<K8sEvent> = Api::namespaced(shared.client.clone(), &namespace);
            match api.create(&PostParams::default(), &event).await {
                Ok(created) => (id, Ok(Some(created.name_any()))),
                Err(e) => {
                    tracing::warn!(error = %e, reason = %draft.reason, "cannot record an Event");
                    (id, Err(()))
                }
            }
        }
        Write::Patch {
            id,
            namespace,
            name,
            count,
            last_observed,
        } => {
            let api: Api<K8sEvent> = Api::namespaced(shared.client.clone(), &namespace);
            let patch = serde_json::json!({ "series": series(count, last_observed) });
            match api
                .patch(&name, &PatchParams::default(), &Patch::Merge(&patch))
                .await
            {
                Ok(_) => (id, Ok(None)),
                Err(e) => {
                    tracing::warn!(error = %e, event = %name, "cannot update an Event's count");
                    (id, Err(()))
                }
            }
        }
    }
}

fn series(count: u32, last_observed: Timestamp) -> EventSeries {
    EventSeries {
        count: i32::try_from(count).unwrap_or(i32::MAX),
        last_observed_time: MicroTime(last_observed),
    }
}

fn to_event(d: &Draft, instance: &str) -> K8sEvent {
    let now = Timestamp::now();
    let name = d.regarding.name.as_deref().unwrap_or("event");
    K8sEvent {
        metadata: ObjectMeta {
            // Like client-go: the object's name and a unique suffix.
            name: Some(format!(
                "{}.{:x}",
                // Object names are ASCII; the suffix must fit in 253.
                name.get(..200).unwrap_or(name),
                now.as_nanosecond()
            )),
            namespace: d.regarding.namespace.clone(),
            ..Default::default()
        },
        action: Some(d.action.clone()),
        reason: Some(d.reason.clone()),
        note: Some(d.note.clone()),
        regarding: Some(d.regarding.clone()),
        related: d.related.clone(),
        event_time: Some(MicroTime(now)),
        reporting_controller: Some(FIELD_MANAGER.into()),
        reporting_instance: Some(instance.into()),
        type_: Some(
            match d.type_ {
                EventType::Normal => "Normal",
                EventType::Warning => "Warning",
            }
            .into(),
        ),
        ..Default::default()
    }
}
