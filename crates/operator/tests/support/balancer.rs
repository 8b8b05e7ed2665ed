//! A loopback TCP balancer: what a Service is to the API server, for operator replicas running
//! as local processes. TLS passes through untouched.
//!
//! - New connections go round-robin to the backends that are *ready*: a backend with a health
//!   port counts as ready while its `/readyz` answered 200 at the last probe (every
//!   [`PROBE_EVERY`], like a readiness probe feeding the Service's endpoints). A backend without
//!   one is always ready.
//! - A connection to a dead backend fails as it would through kube-proxy: it is not retried
//!   elsewhere.
//! - [`Balancer::cut`] drops every open connection and refuses new ones until
//!   [`Balancer::heal`]: a network partition (used in front of the API server, too).

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use test_cluster::support::http_get;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// How often backends' readiness is probed.
pub const PROBE_EVERY: Duration = Duration::from_millis(500);

/// One backend: where it listens, and the port of its `/readyz` if it has one.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Backend {
    /// The address connections are forwarded to.
    pub addr: SocketAddr,
    /// Port of `/readyz` (plain HTTP on loopback), if probed.
    pub health: Option<u16>,
}

struct Entry {
    backend: Backend,
    ready: bool,
}

struct Shared {
    backends: Mutex<Vec<Entry>>,
    next: AtomicUsize,
    cut: AtomicBool,
    /// Bumped on every cut; open connections end when it changes.
    generation: watch::Sender<u64>,
    connections: AtomicUsize,
}

/// The balancer; it stops when dropped.
pub struct Balancer {
    /// Where it listens (`127.0.0.1:<port>`).
    pub addr: SocketAddr,
    shared: Arc<Shared>,
    tasks: Vec<JoinHandle<()>>,
}

impl Balancer {
    /// Listens on a free loopback port and forwards to `backends`.
    pub async fn start(backends: Vec<Backend>) -> Balancer {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let shared = Arc::new(Shared {
            backends: Mutex::new(Vec::new()),
            next: AtomicUsize::new(0),
            cut: AtomicBool::new(false),
            generation: watch::channel(0).0,
            connections: AtomicUsize::new(0),
        });
        let balancer = Balancer {
            addr,
            shared: shared.clone(),
            tasks: vec![
                tokio::spawn(accept(listener, shared.clone())),
                tokio::spawn(probe(shared.clone())),
            ],
        };
        balancer.set_backends(backends);
        balancer
    }

    /// `https://127.0.0.1:<port>`: the URL to register a webhook by.
    pub fn url(&self) -> String {
        format!("https://{}", self.addr)
    }

    /// Replaces the backends (as endpoints change when a pod is replaced). Backends kept keep
    /// their readiness; new ones with a health port wait for their first probe.
    pub fn set_backends(&self, backends: Vec<Backend>) {
        let mut entries = lock(&self.shared.backends);
        let next: Vec<Entry> = backends
            .into_iter()
            .map(|backend| {
                let ready = entries
                    .iter()
                    .find(|e| e.backend == backend)
                    .map_or(backend.health.is_none(), |e| e.ready);
                Entry { backend, ready }
            })
            .collect();
        *entries = next;
    }

    /// Drops every open connection and refuses new ones until [`Balancer::heal`].
    pub fn cut(&self) {
        self.shared.cut.store(true, Ordering::SeqCst);
        self.shared.generation.send_modify(|g| *g += 1);
    }

    /// Lets connections through again.
    pub fn heal(&self) {
        self.shared.cut.store(false, Ordering::SeqCst);
    }

    /// Connections accepted so far.
    pub fn connections(&self) -> usize {
        self.shared.connections.load(Ordering::SeqCst)
    }
}

impl Drop for Balancer {
    fn drop(&mut self) {
        self.cut();
        for t in &self.tasks {
            t.abort();
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// The next ready backend, round-robin.
fn pick(shared: &Shared) -> Option<SocketAddr> {
    let entries = lock(&shared.backends);
    let ready: Vec<SocketAddr> = entries
        .iter()
        .filter(|e| e.ready)
        .map(|e| e.backend.addr)
        .collect();
    if ready.is_empty() {
        return None;
    }
    let i = shared.next.fetch_add(1, Ordering::Relaxed);
    Some(ready[i % ready.len()])
}

async fn accept(listener: TcpListener, shared: Arc<Shared>) {
    loop {
        let Ok((client, _)) = listener.accept().await else {
            continue;
        };
        shared.connections.fetch_add(1, Ordering::SeqCst);
        if shared.cut.load(Ordering::SeqCst) {
            drop(client);
            continue;
        }
        let Some(target) = pick(&shared) else {
            // No ready endpoint: the connection is refused, as by kube-proxy.
            drop(client);
            continue;
        };
        let mut generation = shared.generation.subscribe();
        tokio::spawn(async move {
            let Ok(mut upstream) = TcpStream::connect(target).await else {
                return;
            };
            let mut client = client;
            tokio::select! {
                _ = tokio::io::copy_bidirectional(&mut client, &mut upstream) => {}
                _ = generation.changed() => {}
            }
        });
    }
}

/// Probes every backend's `/readyz` every [`PROBE_EVERY`].
async fn probe(shared: Arc<Shared>) {
    loop {
        let targets: Vec<Backend> = lock(&shared.backends).iter().map(|e| e.backend).collect();
        for backend in targets {
            let Some(port) = backend.health else { continue };
            let ready = tokio::task::spawn_blocking(move || {
                http_get(port, "/readyz").is_some_and(|r| r.status == 200)
            })
            .await
            .unwrap_or(false);
            if let Some(e) = lock(&shared.backends)
                .iter_mut()
                .find(|e| e.backend == backend)
            {
                e.ready = ready;
            }
        }
        tokio::time::sleep(PROBE_EVERY).await;
    }
}
