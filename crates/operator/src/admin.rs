//! The admin server: `/healthz`, `/readyz` and `/metrics` over plain HTTP, apart from the
//! webhook's TLS port so that probes and scrapes never compete with admissions.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use axum::Router;
use axum::routing::get;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::metrics::Metrics;
use crate::webhook::Policies;

/// What `/readyz` reports: ready once the caches are synced and the webhook listener serves,
/// not ready again as soon as shutdown starts (so the Service stops routing to this replica).
#[derive(Default)]
pub struct Readiness {
    webhook_serving: AtomicBool,
}

impl Readiness {
    /// Records whether the webhook listener accepts connections.
    pub fn set_webhook_serving(&self, serving: bool) {
        self.webhook_serving.store(serving, Ordering::SeqCst);
    }

    /// Why this replica is not ready, if it is not.
    pub fn not_ready(&self, policies: &dyn Policies) -> Option<&'static str> {
        if !policies.synced() {
            Some("caches not synced")
        } else if !self.webhook_serving.load(Ordering::SeqCst) {
            Some("webhook server not serving")
        } else {
            None
        }
    }
}

/// The admin routes.
pub fn router(
    metrics: Arc<Metrics>,
    readiness: Arc<Readiness>,
    policies: Arc<dyn Policies + Send + Sync>,
) -> Router {
    Router::new()
        .route("/healthz", get(|| async { "ok" }))
        .route(
            "/metrics",
            get(move || {
                let body = metrics.encode();
                async move {
                    (
                        [(
                            http::header::CONTENT_TYPE,
                            "application/openmetrics-text; version=1.0.0; charset=utf-8",
                        )],
                        body,
                    )
                }
            }),
        )
        .route(
            "/readyz",
            get(move || {
                let why = readiness.not_ready(policies.as_ref());
                async move {
                    match why {
                        None => (http::StatusCode::OK, "ready"),
                        Some(why) => (http::StatusCode::SERVICE_UNAVAILABLE, why),
                    }
                }
            }),
        )
}

/// Serves `router` on `listener` until `shutdown` is cancelled.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    shutdown: CancellationToken,
) -> std::io::Result<()> {
    axum::serve(listener, router)
        .with_graceful_shutdown(shutdown.cancelled_owned())
        .await
}
