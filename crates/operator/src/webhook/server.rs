//! The webhook's HTTPS server: `/mutate-v1-pod` over TLS with a hot-swappable certificate,
//! graceful drain on shutdown.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::extract::State;
use axum::routing::post;
use axum::{Json, Router};
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use k8s_openapi::api::core::v1::Pod;
use kube::core::DynamicObject;
use kube::core::admission::{AdmissionRequest, AdmissionResponse, AdmissionReview};
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;

use super::{AdmitConfig, Policies, admit};

/// Shared state of the handlers.
pub struct AppState {
    /// The cluster view.
    pub policies: Arc<dyn Policies + Send + Sync>,
    /// Settings.
    pub config: AdmitConfig,
}

async fn mutate(
    State(state): State<Arc<AppState>>,
    Json(review): Json<AdmissionReview<DynamicObject>>,
) -> Json<AdmissionReview<DynamicObject>> {
    let started = std::time::Instant::now();
    let generic: AdmissionRequest<DynamicObject> = match review.try_into() {
        Ok(r) => r,
        Err(e) => {
            return Json(
                AdmissionResponse::invalid(format!("not an AdmissionReview request: {e}"))
                    .into_review(),
            );
        }
    };
    let mut resp = match pod_request(&generic) {
        Ok(req) => admit(&req, state.policies.as_ref(), &state.config),
        Err(e) => AdmissionResponse::from(&generic).deny(format!("cannot read the pod: {e}")),
    };
    // The typed re-read loses the review's apiVersion/kind; the API server needs them back.
    resp.types = generic.types.clone();
    tracing::info!(
        uid = %generic.uid,
        namespace = generic.namespace.as_deref().unwrap_or(""),
        name = %generic.name,
        operation = ?generic.operation,
        allowed = resp.allowed,
        patched = resp.patch.is_some(),
        message = %resp.result.message,
        micros = started.elapsed().as_micros() as u64,
        "admission"
    );
    Json(resp.into_review())
}

/// Re-reads a generic request as a Pod request (the review is decoded once, generically, so
/// that a malformed pod still gets an answer with the request's uid).
fn pod_request(
    generic: &AdmissionRequest<DynamicObject>,
) -> Result<AdmissionRequest<Pod>, serde_json::Error> {
    let v = serde_json::to_value(generic)?;
    serde_json::from_value(v)
}

/// The router.
pub fn router(state: Arc<AppState>) -> Router {
    Router::new()
        .route("/mutate-v1-pod", post(mutate))
        .with_state(state)
}

/// Serves `router` over TLS on `listener` until `shutdown` resolves, then waits for in-flight
/// requests to finish.
pub async fn serve_tls(
    listener: TcpListener,
    tls: Arc<rustls::ServerConfig>,
    app: Router,
    shutdown: impl std::future::Future<Output = ()>,
) {
    let acceptor = TlsAcceptor::from(tls);
    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
    tokio::pin!(shutdown);
    loop {
        let (tcp, peer): (tokio::net::TcpStream, SocketAddr) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                Err(e) => {
                    tracing::warn!(error = %e, "accept failed");
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let acceptor = acceptor.clone();
        let app = app.clone();
        let watcher = graceful.watcher();
        tokio::spawn(async move {
            let tls = match acceptor.accept(tcp).await {
                Ok(s) => s,
                Err(e) => {
                    tracing::debug!(%peer, error = %e, "TLS handshake failed");
                    return;
                }
            };
            let builder = auto::Builder::new(TokioExecutor::new());
            let conn = builder.serve_connection_with_upgrades(
                TokioIo::new(tls),
                hyper_util::service::TowerToHyperService::new(app),
            );
            if let Err(e) = watcher.watch(conn.into_owned()).await {
                tracing::debug!(%peer, error = %e, "connection ended with an error");
            }
        });
    }
    tracing::info!("webhook server draining in-flight requests");
    graceful.shutdown().await;
}
