//! Slow and oversized clients of the webhook, the legitimate client they must not starve, and
//! the operator's memory as the kernel sees it (slow_clients.rs, bench/webhook-attack.sh).

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::{Duration, Instant};

use http_body_util::BodyExt;
use hyper::client::conn::http1::SendRequest;
use hyper_util::rt::TokioIo;
use k8s_openapi::api::admissionregistration::v1::MutatingWebhookConfiguration;
use kube::Api;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};
use serde_json::{Value, json};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;

/// The largest body the webhook accepts (`Limits::default().max_body_bytes`).
pub const BODY_CAP: usize = 7 * 1024 * 1024;

/// The webhook of an operator, as its MutatingWebhookConfiguration registers it.
#[derive(Clone)]
pub struct Target {
    /// Its address (from `clientConfig.url`).
    pub addr: SocketAddr,
    /// A TLS client trusting its `caBundle`.
    pub connector: TlsConnector,
}

impl Target {
    /// Reads the configuration `name` until its URL and caBundle are set.
    pub async fn of(client: &kube::Client, name: &str) -> Target {
        let api: Api<MutatingWebhookConfiguration> = Api::all(client.clone());
        let config = super::wait_for(
            &format!("webhook configuration {name} with a caBundle"),
            Duration::from_secs(30),
            || {
                let api = api.clone();
                async move {
                    let c = api.get_opt(name).await.ok().flatten()?;
                    let cc = c.webhooks?.first()?.client_config.clone();
                    Some((cc.url?, cc.ca_bundle?.0))
                }
            },
        )
        .await;
        let (url, bundle) = config;
        let addr = url
            .trim_start_matches("https://")
            .split('/')
            .next()
            .and_then(|a| a.parse().ok())
            .unwrap_or_else(|| panic!("the webhook URL {url} is not https://IP:PORT/..."));
        let mut roots = rustls::RootCertStore::empty();
        for c in CertificateDer::pem_slice_iter(&bundle) {
            roots.add(c.unwrap()).unwrap();
        }
        let connector = TlsConnector::from(Arc::new(
            rustls::ClientConfig::builder()
                .with_root_certificates(roots)
                .with_no_client_auth(),
        ));
        Target { addr, connector }
    }

    async fn tls(&self) -> std::io::Result<tokio_rustls::client::TlsStream<TcpStream>> {
        let tcp = TcpStream::connect(self.addr).await?;
        tcp.set_nodelay(true)?;
        let name = ServerName::from(self.addr.ip());
        self.connector.connect(name, tcp).await
    }
}

/// `field` (VmRSS, VmHWM…) of process `pid`, in bytes.
pub fn proc_bytes(pid: u32, field: &str) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status
        .lines()
        .find(|l| l.starts_with(&format!("{field}:")))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}

/// The memory limit of the operator's container in deploy/base/deployment.yaml, in bytes.
pub fn deployment_memory_limit() -> u64 {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../deploy/base/deployment.yaml"
    );
    let doc: Value = serde_saphyr::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let limit = doc["spec"]["template"]["spec"]["containers"][0]["resources"]["limits"]["memory"]
        .as_str()
        .expect("a memory limit")
        .to_string();
    let mib: u64 = limit
        .strip_suffix("Mi")
        .expect("the limit in Mi")
        .parse()
        .unwrap();
    mib * 1024 * 1024
}

/// The ways an attacker holds the server.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Attack {
    /// TCP open, the TLS handshake never finished (a record header, then nothing).
    Handshake,
    /// TLS done, the request head dribbled a header per second.
    Head,
    /// Head done (4 KiB declared), the body dribbled a byte per second.
    Body,
    /// A body declared larger than the cap.
    Declared,
    /// A chunked body (no length declared) streamed past the cap.
    Streamed,
}

/// How each round of each attack ended: the response status, or `None` when the server
/// closed the connection without one.
#[derive(Default)]
pub struct Tally {
    outcomes: Mutex<BTreeMap<(Attack, Option<u16>), u64>>,
    open: AtomicI64,
    peak_open: AtomicI64,
}

impl Tally {
    fn opened(&self) {
        let now = self.open.fetch_add(1, Ordering::SeqCst) + 1;
        self.peak_open.fetch_max(now, Ordering::SeqCst);
    }

    fn ended(&self, attack: Attack, outcome: Option<u16>) {
        self.open.fetch_sub(1, Ordering::SeqCst);
        *self
            .outcomes
            .lock()
            .unwrap()
            .entry((attack, outcome))
            .or_default() += 1;
    }

    /// The most attacking connections open at once.
    pub fn peak_open(&self) -> i64 {
        self.peak_open.load(Ordering::SeqCst)
    }

    /// How the rounds of `attack` ended, with their counts.
    pub fn outcomes(&self, attack: Attack) -> BTreeMap<Option<u16>, u64> {
        self.outcomes
            .lock()
            .unwrap()
            .iter()
            .filter(|((a, _), _)| *a == attack)
            .map(|((_, o), n)| (*o, *n))
            .collect()
    }
}

/// Repeats `attack` against `target` until `until`, each round on a new connection, counting
/// how rounds end in `tally`. Rounds still open at `until` are abandoned (not counted).
pub async fn attacker(target: Target, attack: Attack, until: Instant, tally: Arc<Tally>) {
    while Instant::now() < until {
        let round = tokio::time::timeout_at(until.into(), round(&target, attack, &tally));
        match round.await {
            Ok(Some(outcome)) => tally.ended(attack, outcome),
            // Could not connect (a refused connection counts as closed by the server).
            Ok(None) => tokio::time::sleep(Duration::from_millis(50)).await,
            Err(_) => return,
        }
        if matches!(attack, Attack::Declared | Attack::Streamed) {
            // Oversized rounds end in milliseconds: pace them so they load, not flood, the CPU.
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

/// One round; `None` when the connection could not be made.
async fn round(target: &Target, attack: Attack, tally: &Tally) -> Option<Option<u16>> {
    if attack == Attack::Handshake {
        let mut tcp = TcpStream::connect(target.addr).await.ok()?;
        tally.opened();
        // A TLS record header announcing a 512-byte ClientHello that never comes.
        let _ = tcp.write_all(&[0x16, 0x03, 0x01, 0x02, 0x00]).await;
        return Some(response(&mut tcp).await);
    }
    let mut tls = match target.tls().await {
        Ok(t) => t,
        Err(_) => {
            // Refused or closed during the handshake: a round that the server ended.
            tally.opened();
            return Some(None);
        }
    };
    tally.opened();
    let head =
        "POST /mutate-v1-pod HTTP/1.1\r\nhost: webhook\r\ncontent-type: application/json\r\n";
    let outcome = match attack {
        Attack::Handshake => unreachable!(),
        Attack::Head => {
            let first = tls.write_all(head.as_bytes()).await;
            dribble(&mut tls, first, |i| {
                format!("x-slow-{i}: 1\r\n").into_bytes()
            })
            .await
        }
        Attack::Body => {
            let head = format!("{head}content-length: 4096\r\n\r\n{{");
            let first = tls.write_all(head.as_bytes()).await;
            dribble(&mut tls, first, |_| b" ".to_vec()).await
        }
        Attack::Declared => {
            let head = format!("{head}content-length: {}\r\n\r\n", BODY_CAP + 1);
            let _ = tls.write_all(head.as_bytes()).await;
            let _ = tls.write_all(&[b' '; 1024]).await;
            response(&mut tls).await
        }
        Attack::Streamed => {
            let head = format!("{head}transfer-encoding: chunked\r\n\r\n");
            let _ = tls.write_all(head.as_bytes()).await;
            let chunk = format!("{:x}\r\n{}\r\n", 64 * 1024, " ".repeat(64 * 1024));
            for _ in 0..(BODY_CAP / (64 * 1024) + 2) {
                if tls.write_all(chunk.as_bytes()).await.is_err() {
                    break;
                }
            }
            response(&mut tls).await
        }
    };
    Some(outcome)
}

/// Writes `next(i)` once a second until the server answers or closes.
async fn dribble<S>(
    s: &mut S,
    first: std::io::Result<()>,
    next: impl Fn(u64) -> Vec<u8>,
) -> Option<u16>
where
    S: AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    if first.is_err() {
        return None;
    }
    let mut buf = Vec::new();
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    tick.tick().await;
    for i in 0.. {
        let mut chunk = [0u8; 1024];
        tokio::select! {
            n = s.read(&mut chunk) => match n {
                Ok(0) | Err(_) => break,
                Ok(n) => buf.extend_from_slice(&chunk[..n]),
            },
            _ = tick.tick() => {
                if s.write_all(&next(i)).await.is_err() {
                    let _ = tokio::time::timeout(Duration::from_secs(1), s.read_to_end(&mut buf)).await;
                    break;
                }
            }
        }
    }
    status(&buf)
}

/// Reads what the server sends until it closes; its status code, if it answered.
async fn response<S: AsyncRead + Unpin>(s: &mut S) -> Option<u16> {
    let mut buf = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(30), s.read_to_end(&mut buf)).await;
    status(&buf)
}

fn status(response: &[u8]) -> Option<u16> {
    let text = String::from_utf8_lossy(response);
    text.strip_prefix("HTTP/1.1 ")?.get(..3)?.parse().ok()
}

/// A CREATE of an unlabelled pod in namespace `ns`: the webhook allows it unchanged.
pub fn unlabelled_review(uid: &str, ns: &str) -> String {
    json!({
        "apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview",
        "request": {
            "uid": uid, "kind": {"group": "", "version": "v1", "kind": "Pod"},
            "resource": {"group": "", "version": "v1", "resource": "pods"},
            "namespace": ns, "operation": "CREATE", "userInfo": {},
            "object": {"apiVersion": "v1", "kind": "Pod",
                "metadata": {"name": uid, "namespace": ns},
                "spec": {"containers": [{"name": "app", "image": "app"}]}}
        }
    })
    .to_string()
}

/// What the legitimate client saw.
#[derive(Debug, Default)]
pub struct Legit {
    /// Latency of every correctly answered review.
    pub latencies: Vec<Duration>,
    /// Reviews not answered 200 with `allowed: true` and their uid, with what came instead.
    pub failures: Vec<String>,
}

impl Legit {
    /// The `p`-th percentile latency (0 < p ≤ 100).
    pub fn percentile(&self, p: f64) -> Duration {
        let mut l = self.latencies.clone();
        l.sort();
        let i = ((l.len() as f64 * p / 100.0).ceil() as usize).clamp(1, l.len().max(1)) - 1;
        l.get(i).copied().unwrap_or_default()
    }
}

/// Sends unlabelled pod reviews to `target` every `interval` until `until`, over one kept-alive
/// HTTP/1.1 connection (reconnecting if it is lost, which counts as a failure).
pub async fn legitimate(target: Target, interval: Duration, until: Instant) -> Legit {
    let mut legit = Legit::default();
    let mut sender: Option<SendRequest<String>> = None;
    let mut tick = tokio::time::interval(interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut i = 0u64;
    while Instant::now() < until {
        tick.tick().await;
        i += 1;
        let uid = format!("legit-{i}");
        if sender.is_none() {
            match connect(&target).await {
                Ok(s) => sender = Some(s),
                Err(e) => {
                    legit.failures.push(format!("{uid}: cannot connect: {e}"));
                    continue;
                }
            }
        }
        let Some(s) = sender.as_mut() else { continue };
        let req = hyper::Request::post("/mutate-v1-pod")
            .header("content-type", "application/json")
            .body(unlabelled_review(&uid, "slow-clients"))
            .unwrap();
        let started = Instant::now();
        let answer = async {
            // The previous exchange may not be wrapped up by the connection task yet.
            s.ready().await?;
            let resp = s.send_request(req).await?;
            let status = resp.status();
            let body = resp.into_body().collect().await?.to_bytes();
            Ok::<_, hyper::Error>((status, body))
        };
        match tokio::time::timeout(Duration::from_secs(10), answer).await {
            Ok(Ok((status, body))) => {
                let elapsed = started.elapsed();
                let v: Value = serde_json::from_slice(&body).unwrap_or_default();
                if status == 200
                    && v["response"]["uid"] == uid.as_str()
                    && v["response"]["allowed"] == true
                {
                    legit.latencies.push(elapsed);
                } else {
                    legit.failures.push(format!(
                        "{uid}: {status} {}",
                        String::from_utf8_lossy(&body)
                    ));
                }
            }
            Ok(Err(e)) => {
                legit.failures.push(format!("{uid}: {e}"));
                sender = None;
            }
            Err(_) => {
                legit.failures.push(format!("{uid}: no answer within 10 s"));
                sender = None;
            }
        }
    }
    legit
}

async fn connect(target: &Target) -> anyhow::Result<SendRequest<String>> {
    let tls = target.tls().await?;
    let (sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(tls)).await?;
    tokio::spawn(conn);
    Ok(sender)
}
