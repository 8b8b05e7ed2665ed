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
        .route("/metrics", {
            let policies = policies.clone();
            get(move || {
                let body = scrape(&metrics, policies.as_ref());
                async move {
                    (
                        [(
                            http::header::CONTENT_TYPE,
                            "application/openmetrics-text; version=1.0.0; charset=utf-8",
                        )],
                        body,
                    )
                }
            })
        })
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

/// The metrics text, with the gauges read at scrape time (cache synced) brought up to date.
fn scrape(metrics: &Metrics, policies: &dyn Policies) -> String {
    metrics.cache_synced.set(i64::from(policies.synced()));
    metrics.encode()
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cache::ClusterCache;

    #[test]
    fn not_ready_while_the_cache_is_unsynced_and_the_gauge_says_so() {
        let readiness = Readiness::default();
        readiness.set_webhook_serving(true);
        let metrics = Metrics::new();
        assert_eq!(
            readiness.not_ready(&ClusterCache::for_test(false)),
            Some("caches not synced")
        );
        let text = scrape(&metrics, &ClusterCache::for_test(false));
        assert!(text.contains("model_validation_cache_synced 0"), "{text}");
        // Twin: synced and serving is ready, and the gauge follows on the next scrape.
        assert_eq!(readiness.not_ready(&ClusterCache::for_test(true)), None);
        let text = scrape(&metrics, &ClusterCache::for_test(true));
        assert!(text.contains("model_validation_cache_synced 1"), "{text}");
        readiness.set_webhook_serving(false);
        assert_eq!(
            readiness.not_ready(&ClusterCache::for_test(true)),
            Some("webhook server not serving")
        );
    }
}
