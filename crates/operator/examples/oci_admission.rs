//! Admission of pods whose model is an image volume (issue 14), measured at the webhook alone
//! (used by bench/oci-admission.sh).
//!
//! AdmissionReviews for a pod labelled with an image-only ModelValidation, whose volume `model`
//! mounts REFERENCE, are posted straight to the webhook over kept-alive HTTPS connections, as
//! `admission_load` does; a response counts as an error unless it allows the pod and pins the
//! volume to PINNED (a JSON patch that writes it, or no patch when REFERENCE already is PINNED).
//!
//! ```text
//! oci_admission setup NS MV PUBLIC_KEY_PEM_FILE GLOB...
//! oci_admission serial URL NS MV REFERENCE PINNED COUNT
//! oci_admission rate URL NS MV REFERENCE PINNED RATE SECONDS
//! ```
//!
//! - `setup` creates the namespace NS and the ModelValidation MV in it: `spec.images.globs` =
//!   GLOB..., trusted with `spec.config.publicKeyConfig.keyPem` (no `spec.model`).
//! - `serial` first waits (up to 30 s) until the webhook admits the pod (its watch cache has the
//!   policy), then sends COUNT reviews one after the other on one connection: the decision time
//!   of one admission at a time (with `--image-cache-size 0`, each one asks the registry and
//!   verifies: cold).
//! - `rate` waits the same way, then sends RATE reviews a second for SECONDS over 16
//!   connections, open loop: latency from each request's scheduled send time, so a slow server
//!   cannot hide its queueing.
//!
//! Both print one JSON line: requests, errors, p50/p90/p99/max/mean in ms. KUBECONFIG must be
//! set (the webhook's CA is read from the operator's Secret).

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use base64::Engine as _;
use hyper::Request;
use hyper::client::conn::http1::SendRequest;
use hyper_util::rt::TokioIo;
use rustls::pki_types::{CertificateDer, ServerName};
use serde_json::json;
use tokio_rustls::TlsConnector;

#[path = "support/load.rs"]
mod load;
use load::{apply_model_validation, async_channel_shim, webhook_ca};

const CONNECTIONS: usize = 16;
const LABEL: &str = "validation.ml.sigstore.dev/ml";

/// What every review names and what its answer must pin.
#[derive(Clone)]
struct Target {
    ns: String,
    mv: String,
    reference: String,
    pinned: String,
}

impl Target {
    fn review(&self, i: u64) -> String {
        json!({
            "apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview",
            "request": {
                "uid": format!("oci-{i}"), "kind": {"group": "", "version": "v1", "kind": "Pod"},
                "resource": {"group": "", "version": "v1", "resource": "pods"},
                "namespace": self.ns, "operation": "CREATE", "userInfo": {},
                "object": {"apiVersion": "v1", "kind": "Pod",
                    "metadata": {"name": format!("p{i}"), "namespace": self.ns, "labels": {LABEL: self.mv}},
                    "spec": {
                        "containers": [{"name": "app", "image": "app",
                            "volumeMounts": [{"name": "model", "mountPath": "/models/model", "readOnly": true}]}],
                        "volumes": [{"name": "model", "image": {"reference": self.reference, "pullPolicy": "IfNotPresent"}}]}}
            }
        })
        .to_string()
    }

    /// Whether the review's answer allows the pod with the volume pinned; else why not.
    fn check(&self, status: hyper::StatusCode, body: &[u8]) -> Result<(), String> {
        let v: serde_json::Value = serde_json::from_slice(body).unwrap_or_default();
        let r = &v["response"];
        if status != 200 || r["allowed"] != true {
            return Err(format!("({status}) {}", String::from_utf8_lossy(body)));
        }
        match r["patch"].as_str() {
            Some(p) => {
                let patch = base64::engine::general_purpose::STANDARD
                    .decode(p)
                    .map_err(|e| format!("patch: {e}"))?;
                if String::from_utf8_lossy(&patch).contains(&self.pinned) {
                    Ok(())
                } else {
                    Err(format!(
                        "the patch does not pin {}: {}",
                        self.pinned,
                        String::from_utf8_lossy(&patch)
                    ))
                }
            }
            None if self.reference == self.pinned => Ok(()),
            None => Err(format!("allowed without pinning {}", self.pinned)),
        }
    }
}

struct Client {
    addr: String,
    host: String,
    connector: TlsConnector,
}

impl Client {
    async fn new(url: &str) -> Result<Client> {
        let ca = webhook_ca().await?;
        let addr = url
            .trim_start_matches("https://")
            .trim_end_matches('/')
            .to_string();
        let host = addr.split(':').next().unwrap_or("127.0.0.1").to_string();
        let mut roots = rustls::RootCertStore::empty();
        use rustls::pki_types::pem::PemObject;
        for c in CertificateDer::pem_slice_iter(ca.as_bytes()) {
            roots.add(c?)?;
        }
        let connector = TlsConnector::from(Arc::new(
            rustls::ClientConfig::builder()
                .with_root_certificates(roots)
                .with_no_client_auth(),
        ));
        Ok(Client {
            addr,
            host,
            connector,
        })
    }

    async fn connect(&self) -> Result<SendRequest<String>> {
        let tcp = tokio::net::TcpStream::connect(&self.addr).await?;
        tcp.set_nodelay(true)?;
        let tls = self
            .connector
            .connect(ServerName::try_from(self.host.clone())?, tcp)
            .await?;
        let (sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(tls)).await?;
        tokio::spawn(conn);
        Ok(sender)
    }
}

/// Sends review `i` on `sender` (connecting first if it has none); Err with the reason unless
/// it was answered as `target` wants. A broken connection is dropped: the next call reconnects.
async fn send(
    sender: &mut Option<SendRequest<String>>,
    client: &Client,
    target: &Target,
    i: u64,
) -> Result<(), String> {
    if sender.is_none() {
        *sender = Some(client.connect().await.map_err(|e| e.to_string())?);
    }
    let s = sender.as_mut().expect("connected");
    if s.ready().await.is_err() {
        *sender = None;
        return Err("the connection was closed".into());
    }
    let req = Request::post("/mutate-v1-pod")
        .header("content-type", "application/json")
        .body(target.review(i))
        .expect("request");
    match s.send_request(req).await {
        Ok(resp) => {
            use http_body_util::BodyExt;
            let status = resp.status();
            let body = resp
                .into_body()
                .collect()
                .await
                .map(|b| b.to_bytes())
                .unwrap_or_default();
            target.check(status, &body)
        }
        Err(e) => {
            *sender = None;
            Err(e.to_string())
        }
    }
}

/// Waits until the webhook admits the pod as wanted (the operator's watch has the policy);
/// returns how many reviews that took.
async fn wait_admitted(client: &Client, target: &Target) -> Result<u64> {
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut sender = None;
    let mut sent = 0;
    loop {
        sent += 1;
        match send(&mut sender, client, target, 1_000_000_000 + sent).await {
            Ok(()) => return Ok(sent),
            Err(e) if Instant::now() > deadline => {
                bail!(
                    "the webhook did not admit a pod mounting {} within 30 s; last answer: {e}",
                    target.reference
                )
            }
            Err(_) => tokio::time::sleep(Duration::from_millis(200)).await,
        }
    }
}

/// Prints the JSON line; `warmup` reviews were sent before, while waiting for the policy.
fn report(
    mut latencies: Vec<Duration>,
    errors: u64,
    first_error: Option<String>,
    wall: Duration,
    warmup: u64,
) {
    latencies.sort();
    let pct = |p: f64| {
        latencies
            .get(((latencies.len() as f64 * p).ceil() as usize).saturating_sub(1))
            .map_or(0.0, |d| d.as_secs_f64() * 1000.0)
    };
    let mean = latencies.iter().map(Duration::as_secs_f64).sum::<f64>() * 1000.0
        / latencies.len().max(1) as f64;
    println!(
        "{}",
        json!({
            "requests": latencies.len(), "warmup_requests": warmup, "errors": errors, "first_error": first_error,
            "seconds": wall.as_secs_f64(),
            "achieved_rps": latencies.len() as f64 / wall.as_secs_f64(),
            "p50_ms": pct(0.50), "p90_ms": pct(0.90), "p99_ms": pct(0.99), "max_ms": pct(1.0),
            "min_ms": latencies.first().map_or(0.0, |d| d.as_secs_f64() * 1000.0), "mean_ms": mean,
        })
    );
}

async fn serial(client: Client, target: Target, count: u64) -> Result<()> {
    let warmup = wait_admitted(&client, &target).await?;
    let mut sender = None;
    let (mut latencies, mut errors, mut first_error) = (Vec::new(), 0, None);
    let start = Instant::now();
    for i in 0..count {
        let t = Instant::now();
        let r = send(&mut sender, &client, &target, i).await;
        latencies.push(t.elapsed());
        if let Err(e) = r {
            errors += 1;
            first_error.get_or_insert(e);
        }
    }
    report(latencies, errors, first_error, start.elapsed(), warmup);
    Ok(())
}

async fn rate(client: Client, target: Target, rate: u64, seconds: u64) -> Result<()> {
    let warmup = wait_admitted(&client, &target).await?;
    let client = Arc::new(client);
    let (tx, rx) = async_channel_shim::channel::<(u64, Instant)>(4096);
    let (res_tx, mut res_rx) =
        tokio::sync::mpsc::unbounded_channel::<(Duration, Result<(), String>)>();
    for _ in 0..CONNECTIONS {
        let (rx, res_tx, client, target) =
            (rx.clone(), res_tx.clone(), client.clone(), target.clone());
        tokio::spawn(async move {
            let mut sender = None;
            while let Ok((i, scheduled)) = rx.recv().await {
                let r = send(&mut sender, &client, &target, i).await;
                let _ = res_tx.send((scheduled.elapsed(), r));
            }
        });
    }
    drop(res_tx);
    let interval = Duration::from_nanos(1_000_000_000 / rate.max(1));
    let start = Instant::now();
    for i in 0..rate * seconds {
        let at = start + interval * i as u32;
        tokio::time::sleep_until(at.into()).await;
        tx.send((i, at)).await.ok();
    }
    drop(tx);
    let (mut latencies, mut errors, mut first_error) = (Vec::new(), 0, None);
    while let Some((d, r)) = res_rx.recv().await {
        latencies.push(d);
        if let Err(e) = r {
            errors += 1;
            first_error.get_or_insert(e);
        }
    }
    report(latencies, errors, first_error, start.elapsed(), warmup);
    Ok(())
}

#[tokio::main(flavor = "multi_thread", worker_threads = 1)]
async fn main() -> Result<()> {
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    let args: Vec<String> = std::env::args().skip(1).collect();
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let target = |ns: &str, mv: &str, reference: &str, pinned: &str| Target {
        ns: ns.into(),
        mv: mv.into(),
        reference: reference.into(),
        pinned: pinned.into(),
    };
    match args.as_slice() {
        ["setup", ns, mv, key, globs @ ..] if !globs.is_empty() => {
            let pem = std::fs::read_to_string(key).with_context(|| format!("reading {key}"))?;
            setup(ns, mv, &pem, globs).await
        }
        ["serial", url, ns, mv, reference, pinned, count] => {
            let t = target(ns, mv, reference, pinned);
            serial(Client::new(url).await?, t, count.parse()?).await
        }
        ["rate", url, ns, mv, reference, pinned, r, seconds] => {
            let t = target(ns, mv, reference, pinned);
            rate(Client::new(url).await?, t, r.parse()?, seconds.parse()?).await
        }
        _ => bail!(
            "usage: oci_admission setup NS MV PUBLIC_KEY_PEM_FILE GLOB... | serial URL NS MV REFERENCE PINNED COUNT | rate URL NS MV REFERENCE PINNED RATE SECONDS (with KUBECONFIG set)"
        ),
    }
}

/// Creates the namespace and the image-only ModelValidation.
async fn setup(ns: &str, mv: &str, pem: &str, globs: &[&str]) -> Result<()> {
    apply_model_validation(
        ns,
        mv,
        json!({"images": {"globs": globs}, "config": {"publicKeyConfig": {"keyPem": pem}}}),
    )
    .await?;
    Ok(())
}
