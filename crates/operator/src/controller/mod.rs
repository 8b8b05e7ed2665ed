//! The status controller: watches ModelValidations and only the labelled pods (indexed by the
//! ModelValidation they name, [`pod_index`]), writes each
//! ModelValidation's status (conditions, pod counts, verification outcomes), emits Events and
//! counts verifications. Only the holder of the Lease runs it ([`run`]).
//!
//! Pods carrying only the first API's label `validation.rhtas.redhat.com/ml=true` are not
//! watched (the watch selects `validation.ml.sigstore.dev/ml`), so they appear in no status.

pub mod cluster;
pub mod cluster_writer;
pub mod lease;
pub mod ledger;
pub mod pod_index;
pub mod status;
pub mod tracker;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures::{FutureExt, StreamExt};
use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::jiff::Timestamp;
use kube::api::{Patch, PatchParams};
use kube::runtime::controller::{Action, Config, Controller};
use kube::runtime::reflector::ObjectRef;
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Api, Client, ResourceExt};

use crate::crd::ModelValidation;
use crate::events;
use crate::metrics::{Metrics, ReconcileLabels, VerificationLabels};
use crate::names::LABEL;
use tracker::Tracker;

/// A reconcile failure.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The API server refused or was unreachable.
    #[error("kubernetes API: {0}")]
    Kube(#[from] kube::Error),
    /// The pod cache did not sync in time.
    #[error("the pod cache is not synced yet")]
    NotSynced,
    /// The status could not be serialized (never expected).
    #[error("serialize status: {0}")]
    Json(#[from] serde_json::Error),
}

/// What every reconcile shares.
pub struct Context {
    client: Client,
    pods: pod_index::PodIndex,
    metrics: Arc<Metrics>,
    events: events::EventSink,
    tracker: Tracker,
    failures: Mutex<HashMap<ObjectRef<ModelValidation>, u32>>,
}

fn now() -> Time {
    let secs = Timestamp::now().as_second();
    Time(Timestamp::from_second(secs).unwrap_or_else(|_| Timestamp::now()))
}

async fn reconcile(mv: Arc<ModelValidation>, ctx: Arc<Context>) -> Result<Action, Error> {
    let started = Instant::now();
    let result = reconcile_inner(&mv, &ctx).await;
    ctx.metrics
        .reconcile_duration
        .observe(started.elapsed().as_secs_f64());
    ctx.metrics
        .reconciles
        .get_or_create(&ReconcileLabels {
            result: if result.is_ok() { "success" } else { "error" }.into(),
        })
        .inc();
    match &result {
        Ok(_) => {
            ctx.failures
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .remove(&ObjectRef::from_obj(&*mv));
        }
        Err(e) => {
            ctx.metrics.reconcile_errors.inc();
            tracing::warn!(modelvalidation = %ObjectRef::from_obj(&*mv), error = %e, "reconcile failed; retrying");
        }
    }
    result
}

async fn reconcile_inner(mv: &ModelValidation, ctx: &Context) -> Result<Action, Error> {
    if tokio::time::timeout(Duration::from_secs(30), ctx.pods.wait_until_ready())
        .await
        .is_err()
    {
        return Err(Error::NotSynced);
    }
    let ns = mv.namespace().unwrap_or_default();
    let name = mv.name_any();
    let own = ctx.pods.pods(&ns, &name);
    let pods: Vec<&status::PodFacts> = own.iter().map(|p| &**p).collect();

    // Report each finished verification once: metrics, and Events.
    // A spec without exactly one method injects nothing (admission refuses its pods), so a
    // finished run under it came from an older spec: it is reported, but not counted by method.
    let method = mv.spec.config.method().ok().map(|m| m.label());
    for pod in &pods {
        for run in &pod.runs {
            if !ctx.tracker.first_report(&pod.uid, run) {
                continue;
            }
            if let Some(method) = method {
                ctx.metrics
                    .verifications
                    .get_or_create(&VerificationLabels {
                        method: method.into(),
                        result: if run.verified { "verified" } else { "failed" }.into(),
                    })
                    .inc();
            }
            if run.verified {
                events::verified(&ctx.events, pod.object_ref(), mv, &run.message);
            } else {
                events::verification_failed(&ctx.events, pod.object_ref(), mv, &run.message);
            }
        }
    }
    if ctx.tracker.len() > 2 * ctx.pods.len() + 100 {
        ctx.tracker.retain(|u| ctx.pods.contains(u));
    }

    let previous = mv.status.as_ref();
    let mut next = status::compute(
        &name,
        mv.metadata.generation,
        &mv.spec,
        previous,
        &pods,
        &now(),
    );
    if previous.is_some_and(|p| status::same(&next, p)) {
        return Ok(Action::requeue(Duration::from_secs(600)));
    }
    next.last_updated = Some(now());
    let old = serde_json::to_value(previous.cloned().unwrap_or_default())?;
    let new = serde_json::to_value(&next)?;
    let patch = serde_json::json!({ "status": status::merge_patch(&old, &new) });
    Api::<ModelValidation>::namespaced(ctx.client.clone(), &ns)
        .patch_status(&name, &PatchParams::default(), &Patch::Merge(&patch))
        .await?;
    tracing::debug!(modelvalidation = %format!("{ns}/{name}"), injected = next.injected_pod_count, verified = next.verified_count, failed = next.failed_count, "status written");
    Ok(Action::requeue(Duration::from_secs(600)))
}

fn error_policy(mv: Arc<ModelValidation>, _err: &Error, ctx: Arc<Context>) -> Action {
    let mut f = ctx.failures.lock().unwrap_or_else(|e| e.into_inner());
    let n = f.entry(ObjectRef::from_obj(&*mv)).or_insert(0);
    *n = n.saturating_add(1);
    // 0.5 s, 1 s, 2 s, ... at most 5 min.
    let delay = Duration::from_millis(500u64.saturating_mul(1 << (*n - 1).min(10)))
        .min(Duration::from_secs(300));
    Action::requeue(delay)
}

/// Runs the status controllers (ModelValidations, and ClusterModelValidations with `cluster`)
/// while this replica holds the leader Lease in `namespace`, until `shutdown` completes (then
/// the Lease is released). `metrics.leader` is 1 while they run.
pub async fn run(
    client: Client,
    namespace: String,
    identity: String,
    metrics: Arc<Metrics>,
    events: events::EventSink,
    cluster: cluster::Settings,
    shutdown: impl std::future::Future,
) {
    let work = || {
        futures::future::join(
            run_controller(client.clone(), metrics.clone(), events.clone()),
            cluster::run(
                client.clone(),
                cluster.clone(),
                metrics.clone(),
                events.clone(),
            ),
        )
        .map(|_| ())
    };
    lease::hold(
        client.clone(),
        namespace.clone(),
        identity.clone(),
        metrics.clone(),
        shutdown,
        work,
    )
    .await;
}

/// Runs the controller until the future is dropped (leadership lost) — it never ends by itself.
pub async fn run_controller(client: Client, metrics: Arc<Metrics>, sink: events::EventSink) {
    let pods = pod_index::PodIndex::default();
    let index = pods.clone();
    // Each pod event files the pod under the ModelValidation it names and triggers only that
    // one (and the one it left, when relabelled).
    let triggers = watcher(
        Api::<Pod>::all(client.clone()),
        watcher::Config::default().labels(LABEL),
    )
    .default_backoff()
    .filter_map(move |event| {
        let keys = match event {
            Ok(e) => index.apply(&e),
            Err(e) => {
                tracing::warn!(error = %e, "labelled pod watch; retrying");
                vec![]
            }
        };
        futures::future::ready(Some(futures::stream::iter(
            keys.into_iter()
                .map(|(ns, name)| ObjectRef::<ModelValidation>::new(&name).within(&ns)),
        )))
    })
    .flatten();
    let ctx = Arc::new(Context {
        client: client.clone(),
        pods,
        metrics,
        events: sink,
        tracker: Tracker::new(Timestamp::now()),
        failures: Mutex::new(HashMap::new()),
    });
    Controller::new(
        Api::<ModelValidation>::all(client),
        watcher::Config::default(),
    )
    .with_config(Config::default().debounce(Duration::from_millis(200)))
    .reconcile_on(triggers)
    .run(reconcile, error_policy, ctx)
    .for_each(|r| async move {
        if let Err(e) = r {
            tracing::debug!(error = %e, "controller");
        }
    })
    .await;
}
