//! The webhook's HTTPS application: `/mutate-v1-pod` for pods, `/check-workloads` for the
//! pod templates of workloads. It is served over TLS, within limits, by
//! [`super::listener`] (re-exported here as [`serve_tls`]).

use std::sync::Arc;

use axum::extract::State;
use axum::routing::post;
use axum::{Json, Router};
use k8s_openapi::api::core::v1::Pod;
use kube::core::admission::AdmissionRequest;

use super::review::encode;
use super::{AdmitConfig, Decision, Policies, decide, decide_with};
use crate::images::pull_secrets::PodPullSecrets;
use crate::images::verifier::{ImageVerifier, PodCredentials};
use crate::metrics::{MethodLabels, Metrics};

pub use super::listener::serve_tls;

/// Shared state of the handlers.
pub struct AppState {
    /// The cluster view.
    pub policies: Arc<dyn Policies + Send + Sync>,
    /// Settings.
    pub config: AdmitConfig,
    /// Where admissions are counted.
    pub metrics: Arc<Metrics>,
    /// For Events about denied pods (none when unset, e.g. in tests).
    pub events: Option<crate::events::EventSink>,
    /// Verifies models in image volumes at their registries.
    pub images: Arc<ImageVerifier>,
    /// Reads pods' own pull Secrets (`--pod-pull-secrets`; none: policies' pull Secrets only).
    pub pod_pull_secrets: Option<PodPullSecrets>,
}

async fn mutate(
    State(state): State<Arc<AppState>>,
    body: axum::body::Bytes,
) -> Json<serde_json::Value> {
    let started = std::time::Instant::now();
    let req = match super::review::decode(&body) {
        Ok(req) => req,
        Err(resp) => return Json(encode(resp.into_review())),
    };
    let mut decision = decide(&req, state.policies.as_ref(), &state.config);
    if let Decision::NeedImages(checks) = &decision {
        // The registry calls, at the edge: then the same pure decision with their verdicts.
        // One deadline for the pod's pull Secrets and the registries.
        let deadline = state.images.deadline();
        let pod_credentials = pod_credentials(&state, &req, deadline).await;
        let (verdicts, stats) = state
            .images
            .verify(checks, &pod_credentials, deadline)
            .await;
        state.metrics.image_verifications(&stats);
        decision = decide_with(&req, state.policies.as_ref(), &state.config, &verdicts);
    }
    state
        .metrics
        .admission(decision.result_label(), started.elapsed().as_secs_f64());
    match &decision {
        Decision::Inject { method, .. } => {
            state
                .metrics
                .injections
                .get_or_create(&MethodLabels {
                    method: (*method).into(),
                })
                .inc();
        }
        Decision::Deny {
            message,
            policy: Some(policy),
        } if !req.dry_run => report_denial(&state, &req, policy, message),
        _ => {}
    }
    let result = decision.result_label();
    let resp = decision.respond(&req);
    tracing::info!(
        uid = %req.uid,
        namespace = req.namespace.as_deref().unwrap_or(""),
        name = %req.name,
        operation = ?req.operation,
        result,
        message = %resp.result.message,
        micros = started.elapsed().as_micros() as u64,
        "admission"
    );
    Json(encode(resp.into_review()))
}

/// The pod's own pull credentials, when `--pod-pull-secrets` is on.
async fn pod_credentials(
    state: &AppState,
    req: &AdmissionRequest<Pod>,
    deadline: tokio::time::Instant,
) -> PodCredentials {
    let (Some(reader), Some(pod)) = (state.pod_pull_secrets.as_ref(), req.object.as_ref()) else {
        return PodCredentials::default();
    };
    let namespace = req.namespace.as_deref().unwrap_or_default();
    let read = tokio::time::timeout_at(deadline, reader.credentials(pod, namespace))
        .await
        .unwrap_or_else(|_| {
            Err("the API server did not answer for the pod's pull Secrets within --registry-timeout; retry".to_string())
        });
    match read {
        Ok(config) => PodCredentials {
            config,
            problem: None,
        },
        Err(problem) => {
            tracing::warn!(namespace, %problem, "pod pull secrets");
            PodCredentials {
                config: None,
                problem: Some(problem),
            }
        }
    }
}

/// Records a `PodDenied` Event on the ModelValidation `policy` that the refused pod names (a
/// denied pod never exists, so there is nothing else to attach it to). The sink aggregates and
/// rate-limits, and the admission answer never waits on it.
fn report_denial(state: &AppState, req: &AdmissionRequest<Pod>, policy: &str, message: &str) {
    let (Some(sink), Some(pod)) = (state.events.as_ref(), req.object.as_ref()) else {
        return;
    };
    let namespace = req.namespace.as_deref().unwrap_or_default();
    let pod_name = pod
        .metadata
        .name
        .as_deref()
        .or(pod.metadata.generate_name.as_deref())
        .unwrap_or_default();
    crate::events::pod_denied(
        sink,
        crate::events::mv_reference(namespace, policy, None),
        pod_name,
        message,
    );
}

/// Early feedback on workloads ([`super::workload`]).
async fn workloads(
    State(state): State<Arc<AppState>>,
    body: axum::body::Bytes,
) -> Json<serde_json::Value> {
    let started = std::time::Instant::now();
    let req = match super::review::decode_any(&body) {
        Ok(req) => req,
        Err(resp) => return Json(encode(resp.into_review())),
    };
    let verdict = super::workload::check(&req, state.policies.as_ref(), &state.config);
    let resp = verdict.respond(&req);
    tracing::info!(
        uid = %req.uid,
        kind = %req.kind.kind,
        namespace = req.namespace.as_deref().unwrap_or(""),
        name = %req.name,
        operation = ?req.operation,
        allowed = resp.allowed,
        message = %resp.result.message,
        micros = started.elapsed().as_micros() as u64,
        "workload admission"
    );
    Json(encode(resp.into_review()))
}

/// The router: pods at `/mutate-v1-pod`, workloads at [`WORKLOADS_PATH`].
pub fn router(state: Arc<AppState>) -> Router {
    Router::new()
        .route("/mutate-v1-pod", post(mutate))
        .route(WORKLOADS_PATH, post(workloads))
        .with_state(state)
}

/// Where the API server sends workloads (Deployments, ..., CronJobs).
pub const WORKLOADS_PATH: &str = "/check-workloads";
