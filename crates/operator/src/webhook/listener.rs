//! The webhook's TLS listener, bounded: every connection and every request it accepts has a
//! deadline and a share of a fixed memory budget, so that slow or oversized clients (slowloris,
//! endless bodies, many connections) cannot exhaust the operator's memory, and legitimate
//! admissions keep being answered while they try. Certificates stay hot-swappable (the TLS
//! config resolves them per handshake) and shutdown drains the requests in flight.
//!
//! What is refused, and how:
//! - beyond [`Limits::max_connections`], a new connection is closed at once, before TLS;
//! - a TLS handshake, the head of a request, or its body that takes too long: the connection is
//!   closed (handshake, HTTP/1 head) or the request answered 408 (body);
//! - a body larger than [`Limits::max_body_bytes`] (declared or actual): 413, and the
//!   connection closes (its body is not read further);
//! - a review that would cost more than [`Limits::max_decode_bytes`] to decode and decide
//!   ([`super::cost`]): denied with a message that says so (or 413 when it has no uid);
//! - beyond [`Limits::max_in_flight`] requests being handled, or when the memory budget is
//!   spent: a fast 503 with `Retry-After`, before any decoding.

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::response::{IntoResponse, Response};
use futures::StreamExt;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;

pub use crate::metrics::RefusalLabels;
use http::{HeaderValue, Request, StatusCode, header};
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::service::TowerToHyperService;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::time::Instant;
use tokio_rustls::TlsAcceptor;
use tokio_util::sync::CancellationToken;

const KIB: usize = 1024;
const MIB: usize = 1024 * KIB;

/// The bounds of the webhook server. [`Limits::default`] is what the operator runs with; its
/// worst case, [`Limits::worst_case_bytes`], plus [`BASELINE_BYTES`] is what the deployment's
/// memory limit (`deploy/base/deployment.yaml`) must exceed (a unit test checks it):
///
/// ```text
/// connections  1024 × (48 KiB buffers + 16 KiB body quota)          =  64 MiB
/// shared budget: larger bodies and all decoding                      = 104 MiB
/// baseline (runtime, caches, metrics; 19.6 MiB measured at 500/s)    =  48 MiB
///                                                                      -------
///                                                                      216 MiB  < 256Mi
/// ```
///
/// Timeouts are shorter than the API server's own deadline for a webhook call
/// (`timeoutSeconds: 10`): a client slower than that is not the API server, or has given up.
#[derive(Clone, Debug)]
pub struct Limits {
    /// Connections open at once, handshaking or not. One more is closed right after `accept`,
    /// before any TLS work, so that it costs a file descriptor for a moment and no memory.
    /// Above the 500 slow connections a single pod can cheaply hold, yet small enough for the
    /// memory arithmetic above.
    pub max_connections: usize,
    /// Deadline of the TLS handshake. A client that opens TCP and never finishes TLS holds a
    /// connection slot at most this long.
    pub handshake_timeout: Duration,
    /// HTTP/1: deadline for the head of each request (request line and headers), counted from
    /// when the server starts waiting for it; hyper starts it also while a kept-alive connection
    /// waits for its next request, so it is HTTP/1's idle timeout too.
    pub header_read_timeout: Duration,
    /// Deadline for the whole body of a request, from its head. Past it: 408.
    pub body_read_timeout: Duration,
    /// A connection with no request in flight and none started for this long is closed
    /// (HTTP/2 connections, which hyper otherwise keeps open as long as pings are answered).
    /// Before its first request a connection gets [`Limits::header_read_timeout`] instead.
    pub idle_timeout: Duration,
    /// The largest request body accepted: the API server's own ceiling for an AdmissionReview.
    /// kube-apiserver reads at most `MaxRequestBodyBytes` = 3 MiB of a write request
    /// (k8s.io/apiserver pkg/server/config.go, `NewConfig`: "we allow 2x [etcd's 1.5 MB] as the
    /// largest request body size to be accepted and decoded in a write request"), so `object`
    /// is at most 3 MiB of JSON; an UPDATE also carries `oldObject`, which the API server
    /// accepted through the same limit. 2 × 3 MiB, plus 1 MiB for the review's envelope and for
    /// JSON re-encoding of a body that came as protobuf: 7 MiB. A larger body cannot come from
    /// the API server.
    pub max_body_bytes: usize,
    /// Body bytes each connection may buffer from its own quota (all its HTTP/2 streams
    /// together). Admission reviews of ordinary pods (3–20 KiB) fit in it, so they never wait
    /// for the shared budget that large bodies compete for.
    pub connection_body_bytes: usize,
    /// The shared budget for body bytes beyond a connection's quota and for decoding
    /// (see [`super::cost::decode_cost`]). A request that finds it spent gets a fast 503. It holds
    /// the largest body with its decoding ([`Limits::max_body_bytes`] +
    /// [`Limits::max_decode_bytes`]), or ~50 ordinary pod reviews at once.
    pub memory_budget_bytes: usize,
    /// The largest decoding cost of one request ([`super::cost::decode_cost`]); a review that
    /// would cost more is denied unread. It admits a 7 MiB review of one long string
    /// (4 × 7 MiB), or an UPDATE of a pod with ~8 000 environment variables and its
    /// `managedFields` (~2 MiB; a unit test checks 10 containers × 200), while
    /// `{"volumes":[{"name":""},…]}` (12 bytes per 3 KiB struct) could otherwise turn 3 MiB
    /// into gigabytes.
    pub max_decode_bytes: usize,
    /// Requests being decoded and decided at once; one more gets a fast 503. Bodies still
    /// arriving do not count (slow bodies must not starve fast ones); they are bounded by the
    /// connections and the memory budget.
    pub max_in_flight: usize,
    /// HTTP/1: the largest read or write buffer of a connection (hyper's default is ~400 KiB);
    /// a request head must fit in it.
    pub http1_max_buf_bytes: usize,
    /// HTTP/2: streams at once per connection.
    pub h2_max_concurrent_streams: u32,
    /// HTTP/2: flow-control windows (stream and connection), i.e. what a client may send before
    /// the server reads it; hyper's default is 1 MiB per connection.
    pub h2_window_bytes: u32,
    /// HTTP/2: the largest header block of a request.
    pub h2_max_header_list_bytes: u32,
    /// HTTP/2: the most response bytes buffered per stream.
    pub h2_max_send_buf_bytes: usize,
    /// HTTP/2: interval of keep-alive pings, and how long to wait for their answer before the
    /// connection is closed.
    pub h2_keep_alive: (Duration, Duration),
}

/// What the operator uses besides the webhook server (runtime, watch caches, metrics, TLS
/// config): 19.6 MiB peak RSS measured at 500 admissions/s (docs/performance.md), taken ×2.5
/// for large clusters' caches and allocator slack.
pub const BASELINE_BYTES: usize = 48 * MIB;

/// What one connection may hold in buffers besides its body quota: rustls (a 16 KiB record
/// being received, its plaintext, the records being sent), hyper's HTTP/1 buffer
/// ([`Limits::http1_max_buf_bytes`]) or an HTTP/2 connection window, and the task itself.
pub const CONNECTION_BUFFER_BYTES: usize = 48 * KIB;

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_connections: 1024,
            handshake_timeout: Duration::from_secs(5),
            header_read_timeout: Duration::from_secs(5),
            body_read_timeout: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(60),
            max_body_bytes: 7 * MIB,
            connection_body_bytes: 16 * KIB,
            memory_budget_bytes: 104 * MIB,
            max_decode_bytes: 96 * MIB,
            max_in_flight: 64,
            http1_max_buf_bytes: 16 * KIB,
            h2_max_concurrent_streams: 16,
            h2_window_bytes: 64 * KIB as u32,
            h2_max_header_list_bytes: 16 * KIB as u32,
            h2_max_send_buf_bytes: 64 * KIB,
            h2_keep_alive: (Duration::from_secs(20), Duration::from_secs(10)),
        }
    }
}

impl Limits {
    /// The most memory the server can hold for connections and requests together: every
    /// connection's buffers and body quota, plus the shared budget (which bounds the larger
    /// bodies and all decoding).
    pub fn worst_case_bytes(&self) -> usize {
        self.max_connections * (CONNECTION_BUFFER_BYTES + self.connection_body_bytes)
            + self.memory_budget_bytes
    }
}

/// Counts of what the server refused before the handler decided, by reason (the
/// `model_validation_webhook_refusals_total` metric).
pub type Refusals = Family<RefusalLabels, Counter>;

/// Serves `app` over TLS on `listener` with [`Limits::default`] until `shutdown` resolves, then
/// waits for the requests in flight.
pub async fn serve_tls(
    listener: TcpListener,
    tls: Arc<rustls::ServerConfig>,
    app: Router,
    shutdown: impl Future<Output = ()>,
) {
    serve_tls_with(listener, tls, app, Limits::default(), None, shutdown).await;
}

/// [`serve_tls`] with `limits`, counting refusals in `refusals`.
pub async fn serve_tls_with(
    listener: TcpListener,
    tls: Arc<rustls::ServerConfig>,
    app: Router,
    limits: Limits,
    refusals: Option<Refusals>,
    shutdown: impl Future<Output = ()>,
) {
    let acceptor = TlsAcceptor::from(tls);
    let max_connections = limits.max_connections;
    let connections = Arc::new(Semaphore::new(max_connections));
    let shared = Arc::new(Shared {
        in_flight: Semaphore::new(limits.max_in_flight),
        memory: Arc::new(Semaphore::new(limits.memory_budget_bytes)),
        // The body is read and bounded here; axum's own 2 MiB default would refuse what the
        // API server may send.
        app: app.layer(axum::extract::DefaultBodyLimit::disable()),
        limits,
        refusals,
    });
    let stop = CancellationToken::new();
    tokio::pin!(shutdown);
    loop {
        let (tcp, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                Err(e) => {
                    // Out of file descriptors, typically: back off instead of spinning.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(10)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let Ok(slot) = connections.clone().try_acquire_owned() else {
            tracing::debug!(%peer, "connection refused: too many open connections");
            shared.count("connections");
            drop(tcp);
            continue;
        };
        let conn = Connection {
            peer,
            shared: shared.clone(),
            stop: stop.clone(),
            _slot: slot,
        };
        tokio::spawn(conn.serve(tcp, acceptor.clone()));
    }
    // Refuse new connections at once (clients retry on another replica), then drain: every
    // connection finishes what it has in flight and returns its slot.
    drop(listener);
    tracing::info!("webhook server draining in-flight requests");
    stop.cancel();
    let all = u32::try_from(max_connections).unwrap_or(u32::MAX);
    let _ = connections.acquire_many(all).await;
}

/// What every connection shares.
struct Shared {
    limits: Limits,
    in_flight: Semaphore,
    memory: Arc<Semaphore>,
    app: Router,
    refusals: Option<Refusals>,
}

impl Shared {
    fn count(&self, reason: &'static str) {
        if let Some(r) = &self.refusals {
            r.get_or_create(&RefusalLabels {
                reason: reason.into(),
            })
            .inc();
        }
    }
}

/// One accepted connection; its slot returns when it is dropped.
struct Connection {
    peer: SocketAddr,
    shared: Arc<Shared>,
    stop: CancellationToken,
    _slot: OwnedSemaphorePermit,
}

impl Connection {
    async fn serve(self, tcp: TcpStream, acceptor: TlsAcceptor) {
        let limits = &self.shared.limits;
        let peer = self.peer;
        let _ = tcp.set_nodelay(true);
        let handshake = tokio::time::timeout(limits.handshake_timeout, acceptor.accept(tcp));
        let tls = tokio::select! {
            r = handshake => match r {
                Ok(Ok(s)) => s,
                Ok(Err(e)) => {
                    tracing::debug!(%peer, error = %e, "TLS handshake failed");
                    return;
                }
                Err(_) => {
                    tracing::debug!(%peer, "TLS handshake timed out");
                    self.shared.count("handshake_timeout");
                    return;
                }
            },
            () = self.stop.cancelled() => return,
        };
        let activity = Arc::new(Activity::default());
        let service = Guarded {
            shared: self.shared.clone(),
            quota: Arc::new(Semaphore::new(limits.connection_body_bytes)),
            activity: activity.clone(),
        };
        let mut builder = auto::Builder::new(TokioExecutor::new());
        builder
            .http1()
            .timer(TokioTimer::new())
            .header_read_timeout(limits.header_read_timeout)
            .max_buf_size(limits.http1_max_buf_bytes);
        builder
            .http2()
            .timer(TokioTimer::new())
            .max_concurrent_streams(limits.h2_max_concurrent_streams)
            .initial_stream_window_size(limits.h2_window_bytes)
            .initial_connection_window_size(limits.h2_window_bytes)
            .max_header_list_size(limits.h2_max_header_list_bytes)
            .max_send_buf_size(limits.h2_max_send_buf_bytes)
            .keep_alive_interval(limits.h2_keep_alive.0)
            .keep_alive_timeout(limits.h2_keep_alive.1);
        let conn = builder.serve_connection(TokioIo::new(tls), service);
        tokio::pin!(conn);
        // Once shutting down (or idle), the connection finishes its requests in flight; an idle
        // close also has a deadline, in case the client does not read the close.
        let mut closing: Option<Instant> = None;
        loop {
            let idle_at = activity.idle_deadline(limits);
            let hard_stop = closing.unwrap_or(Instant::now() + Duration::from_secs(86_400));
            tokio::select! {
                r = conn.as_mut() => {
                    if let Err(e) = r {
                        tracing::debug!(%peer, error = %e, "connection ended with an error");
                    }
                    return;
                }
                () = self.stop.cancelled(), if closing.is_none() => {
                    conn.as_mut().graceful_shutdown();
                    closing = Some(Instant::now() + Duration::from_secs(86_400));
                }
                () = tokio::time::sleep_until(idle_at), if closing.is_none() => {
                    if activity.is_idle(limits) {
                        tracing::debug!(%peer, "closing an idle connection");
                        conn.as_mut().graceful_shutdown();
                        closing = Some(Instant::now() + limits.header_read_timeout);
                    }
                }
                () = tokio::time::sleep_until(hard_stop), if closing.is_some() => return,
            }
        }
    }
}

/// When a connection last started or finished a request, how many it has in flight, and
/// whether it has made one at all.
struct Activity {
    since: std::sync::Mutex<Instant>,
    in_flight: AtomicUsize,
    started: AtomicBool,
}

impl Default for Activity {
    fn default() -> Self {
        Activity {
            since: std::sync::Mutex::new(Instant::now()),
            in_flight: AtomicUsize::new(0),
            started: AtomicBool::new(false),
        }
    }
}

impl Activity {
    fn touch(&self) {
        *self.since.lock().unwrap_or_else(|e| e.into_inner()) = Instant::now();
    }

    /// Until its first request, a connection gets only the head deadline: before hyper knows
    /// whether it speaks HTTP/1 or HTTP/2 (or when an HTTP/2 client sends nothing), no
    /// protocol timer runs, and a silent client must not hold its slot for the idle timeout.
    fn idle_deadline(&self, limits: &Limits) -> Instant {
        let idle = if self.started.load(Ordering::Acquire) {
            limits.idle_timeout
        } else {
            limits.header_read_timeout
        };
        *self.since.lock().unwrap_or_else(|e| e.into_inner()) + idle
    }

    fn is_idle(&self, limits: &Limits) -> bool {
        self.in_flight.load(Ordering::Acquire) == 0 && Instant::now() >= self.idle_deadline(limits)
    }

    fn begin(self: &Arc<Self>) -> Busy {
        self.started.store(true, Ordering::Release);
        self.in_flight.fetch_add(1, Ordering::AcqRel);
        self.touch();
        Busy(self.clone())
    }
}

/// A request in flight on its connection.
struct Busy(Arc<Activity>);

impl Drop for Busy {
    fn drop(&mut self) {
        self.0.touch();
        self.0.in_flight.fetch_sub(1, Ordering::AcqRel);
    }
}

/// The router behind the request limits of one connection.
#[derive(Clone)]
struct Guarded {
    shared: Arc<Shared>,
    quota: Arc<Semaphore>,
    activity: Arc<Activity>,
}

impl hyper::service::Service<Request<Incoming>> for Guarded {
    type Response = Response;
    type Error = Infallible;
    type Future = Pin<Box<dyn Future<Output = Result<Response, Infallible>> + Send>>;

    fn call(&self, req: Request<Incoming>) -> Self::Future {
        let this = self.clone();
        Box::pin(async move { Ok(this.handle(req).await) })
    }
}

/// Why a request is refused before it reaches the handler.
#[derive(Debug, PartialEq)]
enum Refusal {
    TooLarge(usize),
    TooComplex(String),
    Slow,
    Busy,
    Unreadable,
}

impl Refusal {
    /// The `reason` label of the refusal metric.
    fn reason(&self) -> &'static str {
        match self {
            Refusal::TooLarge(_) => "too_large",
            Refusal::TooComplex(_) => "too_costly",
            Refusal::Slow => "body_timeout",
            Refusal::Busy => "busy",
            Refusal::Unreadable => "unreadable",
        }
    }
}

impl IntoResponse for Refusal {
    fn into_response(self) -> Response {
        let (status, text) = match self {
            Refusal::TooLarge(max) => (
                StatusCode::PAYLOAD_TOO_LARGE,
                format!(
                    "request body larger than {max} bytes, the most an AdmissionReview from the Kubernetes API server can be"
                ),
            ),
            Refusal::TooComplex(message) => (StatusCode::PAYLOAD_TOO_LARGE, message),
            Refusal::Slow => (
                StatusCode::REQUEST_TIMEOUT,
                "request body not received in time".to_string(),
            ),
            Refusal::Busy => (
                StatusCode::SERVICE_UNAVAILABLE,
                "webhook busy: too many admissions in flight; retry".to_string(),
            ),
            Refusal::Unreadable => (
                StatusCode::BAD_REQUEST,
                "cannot read the request body".to_string(),
            ),
        };
        let mut resp = (status, text).into_response();
        if status == StatusCode::SERVICE_UNAVAILABLE {
            resp.headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
        }
        resp
    }
}

impl Guarded {
    async fn handle(self, req: Request<Incoming>) -> Response {
        let _busy = self.activity.begin();
        let (parts, body) = req.into_parts();
        let limits = &self.shared.limits;
        let declared = parts
            .headers
            .get(header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<u64>().ok());
        if declared.is_some_and(|n| n > limits.max_body_bytes as u64) {
            return self.refuse(Refusal::TooLarge(limits.max_body_bytes));
        }
        let (bytes, _body_permits) = match self.read_body(body).await {
            Ok(b) => b,
            Err(refusal) => return self.refuse(refusal),
        };
        let cost = super::cost::decode_cost(&bytes);
        if cost > limits.max_decode_bytes {
            let message = too_costly(cost, limits.max_decode_bytes);
            return match super::review::deny_undecoded(&bytes, &message) {
                Some(denial) => {
                    self.shared
                        .count(Refusal::TooComplex(String::new()).reason());
                    axum::Json(denial).into_response()
                }
                None => self.refuse(Refusal::TooComplex(message)),
            };
        }
        let (Ok(_slot), Ok(_decoding)) = (
            self.shared.in_flight.try_acquire(),
            self.shared
                .memory
                .clone()
                .try_acquire_many_owned(permits(cost)),
        ) else {
            return self.refuse(Refusal::Busy);
        };
        let req = Request::from_parts(parts, Body::from(bytes));
        let service = TowerToHyperService::new(self.shared.app.clone());
        match hyper::service::Service::call(&service, req).await {
            Ok(resp) => resp,
            Err(never) => match never {},
        }
    }

    /// Counts `refusal` and answers with it.
    fn refuse(&self, refusal: Refusal) -> Response {
        self.shared.count(refusal.reason());
        refusal.into_response()
    }

    /// The body, within the size cap and the deadline, each byte charged to the connection's
    /// quota or else the shared budget (the permits are held until the answer is sent).
    async fn read_body(
        &self,
        body: Incoming,
    ) -> Result<(Bytes, Vec<OwnedSemaphorePermit>), Refusal> {
        let limits = &self.shared.limits;
        let deadline = Instant::now() + limits.body_read_timeout;
        let mut stream = Body::new(body).into_data_stream();
        let mut buf: Vec<u8> = Vec::new();
        let mut held = Vec::new();
        loop {
            let chunk = match tokio::time::timeout_at(deadline, stream.next()).await {
                Err(_) => return Err(Refusal::Slow),
                Ok(None) => break,
                Ok(Some(Err(_))) => return Err(Refusal::Unreadable),
                Ok(Some(Ok(c))) => c,
            };
            let need = buf.len() + chunk.len();
            if need > limits.max_body_bytes {
                return Err(Refusal::TooLarge(limits.max_body_bytes));
            }
            if need > buf.capacity() {
                // Grow by doubling (amortised copies), charging the whole new capacity.
                let grow = need.max(2 * buf.capacity()).min(limits.max_body_bytes) - buf.capacity();
                held.push(self.charge(grow)?);
                buf.reserve_exact(grow + buf.capacity() - buf.len());
            }
            buf.extend_from_slice(&chunk);
        }
        Ok((Bytes::from(buf), held))
    }

    fn charge(&self, bytes: usize) -> Result<OwnedSemaphorePermit, Refusal> {
        let n = permits(bytes);
        self.quota
            .clone()
            .try_acquire_many_owned(n)
            .or_else(|_| self.shared.memory.clone().try_acquire_many_owned(n))
            .map_err(|_| Refusal::Busy)
    }
}

/// What to tell the owner of a pod whose review costs `cost` to decode, above `max`.
fn too_costly(cost: usize, max: usize) -> String {
    let what = if cost == usize::MAX {
        format!(
            "nests JSON deeper than the {} levels the webhook decodes",
            super::cost::MAX_DEPTH
        )
    } else {
        format!(
            "would take ~{} MiB of the webhook's memory to check, over its {} MiB per request (every object and list entry of the pod counts, in the new and the old pod alike)",
            cost.div_ceil(MIB),
            max / MIB
        )
    };
    format!(
        "this pod {what}; make it smaller (fewer containers, volumes or env entries; a long env list can move into a ConfigMap referenced with envFrom)"
    )
}

/// Semaphore permits for `bytes` (at most `u32::MAX`, far above any budget, so that a charge
/// too large for the budget fails instead of wrapping).
fn permits(bytes: usize) -> u32 {
    u32::try_from(bytes).unwrap_or(u32::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tls::{self, Ca, Resolver};
    use axum::routing::post;
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, ServerName};
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio_rustls::TlsConnector;
    use tokio_rustls::client::TlsStream;

    /// A bound for waits that should take milliseconds; not an assertion on time.
    const BOUND: Duration = Duration::from_secs(20);

    struct Server {
        addr: SocketAddr,
        connector: TlsConnector,
        refusals: Refusals,
        _stop: tokio::sync::oneshot::Sender<()>,
    }

    impl Server {
        async fn start(app: Router, limits: Limits) -> Server {
            let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
            let ca = Ca::generate().unwrap();
            let serving = ca
                .issue(&["localhost".into()], &[], tls::SERVING_LIFETIME)
                .unwrap();
            let resolver =
                Resolver::new(tls::certified_key(&serving.cert_pem, &serving.key_pem).unwrap());
            let config = Arc::new(tls::server_config(resolver).unwrap());
            let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
            let addr = listener.local_addr().unwrap();
            let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
            let refusals = Refusals::default();
            let counted = Some(refusals.clone());
            tokio::spawn(serve_tls_with(
                listener,
                config,
                app,
                limits,
                counted,
                async {
                    let _ = stopped.await;
                },
            ));
            let mut roots = rustls::RootCertStore::empty();
            roots
                .add(CertificateDer::from_pem_slice(ca.cert_pem.as_bytes()).unwrap())
                .unwrap();
            let connector = TlsConnector::from(Arc::new(
                rustls::ClientConfig::builder()
                    .with_root_certificates(roots)
                    .with_no_client_auth(),
            ));
            Server {
                addr,
                connector,
                refusals,
                _stop: stop,
            }
        }

        /// How many refusals of `reason` were counted.
        fn refused(&self, reason: &str) -> u64 {
            self.refusals
                .get_or_create(&RefusalLabels {
                    reason: reason.into(),
                })
                .get()
        }

        async fn connect(&self) -> std::io::Result<TlsStream<TcpStream>> {
            let tcp = TcpStream::connect(self.addr).await?;
            self.connector
                .connect(ServerName::try_from("localhost").unwrap(), tcp)
                .await
        }

        /// POSTs `body` on a new connection; the response's status code, or `None` when the
        /// connection is closed without one.
        async fn post(&self, body: &[u8]) -> Option<u16> {
            self.post_full(body).await.map(|(status, _)| status)
        }

        /// POSTs `body` on a new connection; the response's status code and the whole response.
        async fn post_full(&self, body: &[u8]) -> Option<(u16, String)> {
            let mut tls = self.connect().await.ok()?;
            let head = format!(
                "POST /echo HTTP/1.1\r\nhost: localhost\r\ncontent-length: {}\r\nconnection: close\r\n\r\n",
                body.len()
            );
            tls.write_all(head.as_bytes()).await.ok()?;
            // The server may answer (413, 503) and close before the whole body is written.
            let _ = tls.write_all(body).await;
            let response = read_all(&mut tls).await;
            let status = response.strip_prefix("HTTP/1.1 ")?.get(..3)?.parse().ok()?;
            Some((status, response))
        }
    }

    async fn read_all(tls: &mut TlsStream<TcpStream>) -> String {
        let mut response = Vec::new();
        let _ = tokio::time::timeout(BOUND, tls.read_to_end(&mut response))
            .await
            .expect("the server answers or closes");
        String::from_utf8_lossy(&response).into_owned()
    }

    async fn status_of(tls: &mut TlsStream<TcpStream>) -> Option<u16> {
        read_all(tls)
            .await
            .strip_prefix("HTTP/1.1 ")?
            .get(..3)?
            .parse()
            .ok()
    }

    fn echo() -> Router {
        Router::new().route(
            "/echo",
            post(|body: Bytes| async move { body.len().to_string() }),
        )
    }

    fn small() -> Limits {
        Limits {
            max_connections: 8,
            handshake_timeout: Duration::from_millis(300),
            header_read_timeout: Duration::from_millis(300),
            body_read_timeout: Duration::from_millis(300),
            max_body_bytes: 64 * KIB,
            connection_body_bytes: KIB,
            memory_budget_bytes: 512 * KIB,
            ..Limits::default()
        }
    }

    /// [`small`] with a budget that holds a whole body at the cap and its decoding.
    fn roomy() -> Limits {
        Limits {
            memory_budget_bytes: 4 * MIB,
            max_decode_bytes: 2 * MIB,
            ..small()
        }
    }

    /// (connections × buffers) + shared budget + baseline stays below the deployment's memory
    /// limit; and a review of the largest size the API server can send is decodable.
    #[test]
    fn default_limits_fit_the_deployment_memory_limit() {
        let path = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../deploy/base/deployment.yaml"
        );
        let doc: serde_json::Value =
            serde_saphyr::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
        let limit =
            doc["spec"]["template"]["spec"]["containers"][0]["resources"]["limits"]["memory"]
                .as_str()
                .unwrap();
        let limit: usize = limit.strip_suffix("Mi").unwrap().parse::<usize>().unwrap() * MIB;
        let limits = Limits::default();
        let total = limits.worst_case_bytes() + BASELINE_BYTES;
        assert!(total < limit, "{total} bytes >= the {limit} bytes limit");
        let big_string = 7 * MIB - 1024;
        assert!(big_string * crate::webhook::cost::BYTE_COST <= limits.max_decode_bytes);
        assert!(limits.max_decode_bytes + limits.max_body_bytes <= limits.memory_budget_bytes);
        assert!(limits.handshake_timeout < Duration::from_secs(10));
        assert!(limits.header_read_timeout < Duration::from_secs(10));
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn requests_beyond_max_in_flight_get_a_fast_503_and_the_rest_are_answered() {
        let gate = Arc::new(Semaphore::new(0));
        let entered = Arc::new(AtomicUsize::new(0));
        let (g, e) = (gate.clone(), entered.clone());
        let app = Router::new().route(
            "/echo",
            post(move || async move {
                e.fetch_add(1, Ordering::SeqCst);
                let _ = g.acquire().await.unwrap();
                "released"
            }),
        );
        let limits = Limits {
            max_in_flight: 2,
            ..small()
        };
        let server = Arc::new(Server::start(app, limits).await);
        let held: Vec<_> = (0..2)
            .map(|_| {
                let s = server.clone();
                tokio::spawn(async move { s.post(b"{}").await })
            })
            .collect();
        let waited = tokio::time::timeout(BOUND, async {
            while entered.load(Ordering::SeqCst) < 2 {
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        });
        waited.await.expect("two requests are being handled");
        assert_eq!(server.post(b"{}").await, Some(503), "the third is refused");
        assert_eq!(server.refused("busy"), 1);
        assert_eq!(
            entered.load(Ordering::SeqCst),
            2,
            "without reaching the handler"
        );
        gate.add_permits(8);
        for h in held {
            assert_eq!(h.await.unwrap(), Some(200));
        }
        assert_eq!(
            server.post(b"{}").await,
            Some(200),
            "below the cap: answered"
        );
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn connections_beyond_the_cap_are_closed_at_once_and_a_freed_slot_is_served() {
        let server = Server::start(
            echo(),
            Limits {
                max_connections: 2,
                handshake_timeout: BOUND,
                ..small()
            },
        )
        .await;
        let first = TcpStream::connect(server.addr).await.unwrap();
        let _second = TcpStream::connect(server.addr).await.unwrap();
        let mut third = TcpStream::connect(server.addr).await.unwrap();
        let mut buf = [0u8; 1];
        let read = tokio::time::timeout(BOUND, third.read(&mut buf))
            .await
            .expect("the third connection is closed");
        assert!(matches!(read, Ok(0) | Err(_)), "{read:?}");
        drop(first);
        let served = tokio::time::timeout(BOUND, async {
            loop {
                if server.post(b"{}").await == Some(200) {
                    return;
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        });
        served.await.expect("a freed slot serves a new connection");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn bodies_above_the_cap_get_413_and_below_it_are_answered() {
        let server = Server::start(echo(), roomy()).await;
        let at_cap = vec![b' '; 64 * KIB];
        assert_eq!(server.post(&at_cap).await, Some(200));
        // Declared too large: refused from the head.
        let mut tls = server.connect().await.unwrap();
        let head = format!(
            "POST /echo HTTP/1.1\r\nhost: localhost\r\ncontent-length: {}\r\n\r\n",
            64 * KIB + 1
        );
        tls.write_all(head.as_bytes()).await.unwrap();
        assert_eq!(status_of(&mut tls).await, Some(413));
        // Not declared (chunked) and too large: refused once the cap is passed.
        let mut tls = server.connect().await.unwrap();
        tls.write_all(
            b"POST /echo HTTP/1.1\r\nhost: localhost\r\ntransfer-encoding: chunked\r\n\r\n",
        )
        .await
        .unwrap();
        for _ in 0..80 {
            let chunk = format!("{:x}\r\n{}\r\n", KIB, " ".repeat(KIB));
            if tls.write_all(chunk.as_bytes()).await.is_err() {
                break;
            }
        }
        assert!(matches!(status_of(&mut tls).await, Some(413) | None));
        assert_eq!(server.refused("too_large"), 2, "both counted");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_spent_memory_budget_gets_a_fast_503_and_small_bodies_are_answered() {
        let server = Server::start(
            echo(),
            Limits {
                memory_budget_bytes: 48 * KIB,
                ..small()
            },
        )
        .await;
        assert_eq!(server.post(&vec![b' '; 60 * KIB]).await, Some(503));
        assert_eq!(server.post(&vec![b' '; KIB / 2]).await, Some(200));
        assert_eq!(server.post(&vec![b' '; 8 * KIB]).await, Some(200));
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn deeply_structured_json_is_refused_before_decoding() {
        let server = Server::start(echo(), roomy()).await;
        // 200 volumes of 12 bytes, priced as the 3 KiB structs they decode to: over 2 MiB.
        let volumes = format!("{{\"volumes\":[{}{{}}]}}", r#"{"name":""},"#.repeat(200));
        assert!(volumes.len() < 4 * KIB);
        assert_eq!(server.post(volumes.as_bytes()).await, Some(413));
        let nested = "[".repeat(crate::webhook::cost::MAX_DEPTH + 1);
        assert_eq!(server.post(nested.as_bytes()).await, Some(413));
        let fewer = format!("{{\"volumes\":[{}{{}}]}}", r#"{"name":""},"#.repeat(20));
        assert_eq!(server.post(fewer.as_bytes()).await, Some(200));
        assert_eq!(server.post(b"[[[]]]").await, Some(200));
        // An AdmissionReview is denied with its uid and a message that says what to change.
        let review = format!(
            r#"{{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{{"uid":"u-1","object":{}}}}}"#,
            volumes
        );
        let (status, body) = server.post_full(review.as_bytes()).await.unwrap();
        assert_eq!(status, 200, "{body}");
        let answer: serde_json::Value =
            serde_json::from_str(body.split("\r\n\r\n").nth(1).unwrap()).unwrap();
        assert_eq!(answer["response"]["uid"], "u-1", "{answer}");
        assert_eq!(answer["response"]["allowed"], false, "{answer}");
        let message = answer["response"]["status"]["message"].as_str().unwrap();
        assert!(
            message.contains("MiB") && message.contains("envFrom"),
            "{message}"
        );
        assert_eq!(server.refused("too_costly"), 3, "two bodies and the review");
    }

    /// The API server speaks HTTP/2 when offered: requests are answered over it; and a client
    /// that finishes TLS but never sends a byte is closed by the head deadline, long before the
    /// 60 s idle timeout (no protocol timer runs before hyper has seen which protocol it is).
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn h2_is_answered_and_a_silent_connection_is_closed_by_the_head_deadline() {
        use http_body_util::BodyExt;
        let server = Server::start(echo(), small()).await;
        let mut silent = server.connect().await.unwrap();
        let mut buf = [0u8; 1];
        let read = tokio::time::timeout(BOUND, silent.read(&mut buf))
            .await
            .expect("a silent connection is closed");
        assert!(matches!(read, Ok(0) | Err(_)), "{read:?}");

        let mut config = (**server.connector.config()).clone();
        config.alpn_protocols = vec![b"h2".to_vec()];
        let tcp = TcpStream::connect(server.addr).await.unwrap();
        let tls = TlsConnector::from(Arc::new(config))
            .connect(ServerName::try_from("localhost").unwrap(), tcp)
            .await
            .unwrap();
        assert_eq!(tls.get_ref().1.alpn_protocol(), Some(&b"h2"[..]));
        let (mut h2, conn) =
            hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(tls))
                .await
                .unwrap();
        tokio::spawn(conn);
        for _ in 0..3 {
            let req = Request::post("https://localhost/echo")
                .body(http_body_util::Full::new(Bytes::from_static(b"{}")))
                .unwrap();
            let resp = h2.send_request(req).await.unwrap();
            assert_eq!(resp.status(), StatusCode::OK);
            let body = resp.into_body().collect().await.unwrap().to_bytes();
            assert_eq!(&body[..], b"2");
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn slow_handshakes_heads_and_bodies_are_cut_off_and_prompt_ones_are_answered() {
        let server = Server::start(echo(), small()).await;
        // TCP open, TLS never started.
        let mut tcp = TcpStream::connect(server.addr).await.unwrap();
        let mut buf = [0u8; 1];
        let read = tokio::time::timeout(BOUND, tcp.read(&mut buf))
            .await
            .expect("an unfinished handshake is closed");
        assert!(matches!(read, Ok(0) | Err(_)), "{read:?}");
        // Handshake done, head never finished.
        let mut tls = server.connect().await.unwrap();
        tls.write_all(b"POST /echo HTTP/1.1\r\nhost: loc")
            .await
            .unwrap();
        assert_eq!(
            status_of(&mut tls).await,
            None,
            "an unfinished head is closed"
        );
        // Head done, body never finished.
        let mut tls = server.connect().await.unwrap();
        tls.write_all(b"POST /echo HTTP/1.1\r\nhost: localhost\r\ncontent-length: 10\r\n\r\n{")
            .await
            .unwrap();
        assert_eq!(status_of(&mut tls).await, Some(408));
        assert_eq!(server.post(b"{}").await, Some(200));
    }
}
