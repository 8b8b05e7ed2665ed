//! Load generator for the admission webhook (used by bench/webhook-load.sh).
//!
//! Sends AdmissionReviews for a labelled pod at a fixed rate over keep-alive HTTPS connections
//! and reports latency percentiles. Latency is measured from each request's *scheduled* send
//! time, so a slow server cannot hide its queueing (no coordinated omission).
//!
//! Usage: admission_load URL RATE SECONDS [NAMESPACE [MV]] (KUBECONFIG set). Without
//! NAMESPACE it creates the namespace `bench-load` with a ModelValidation `bench` and sends pods
//! labelled with it. With NAMESPACE (set up by the caller, e.g. bench/policy-scale.sh, where
//! cluster policies govern it) every other pod is labelled with MV and the others carry no
//! label, so both are injected by the cluster policies alone or with MV. Either way it trusts
//! the operator's CA from its Secret, and a response counts as an error unless it allows the
//! pod with a patch. The pod mounts its model volume at MODEL_MOUNT (default `/models`), which
//! must hold the policies' `model.path`.

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Result, bail};
use hyper::Request;
use hyper_util::rt::TokioIo;
use rustls::pki_types::{CertificateDer, ServerName};
use serde_json::json;
use tokio_rustls::TlsConnector;

#[path = "support/load.rs"]
mod load;
use load::{apply_model_validation, async_channel_shim, webhook_ca};

const CONNECTIONS: usize = 16;

async fn connection(
    addr: String,
    host: String,
    connector: TlsConnector,
) -> Result<hyper::client::conn::http1::SendRequest<String>> {
    let tcp = tokio::net::TcpStream::connect(&addr).await?;
    tcp.set_nodelay(true)?;
    let tls = connector.connect(ServerName::try_from(host)?, tcp).await?;
    let (sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(tls)).await?;
    tokio::spawn(conn);
    Ok(sender)
}

fn review(i: u64, ns: &str, mv: Option<&str>, mount: &str) -> String {
    let labels = match mv {
        Some(mv) => json!({"validation.ml.sigstore.dev/ml": mv}),
        None => json!({}),
    };
    json!({
        "apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview",
        "request": {
            "uid": format!("load-{i}"), "kind": {"group": "", "version": "v1", "kind": "Pod"},
            "resource": {"group": "", "version": "v1", "resource": "pods"}, "namespace": ns, "operation": "CREATE", "userInfo": {},
            "object": {"apiVersion": "v1", "kind": "Pod",
                "metadata": {"name": format!("p{i}"), "namespace": ns, "labels": labels},
                "spec": {"containers": [{"name": "app", "image": "app", "volumeMounts": [{"name": "models", "mountPath": mount}]}],
                         "volumes": [{"name": "models", "emptyDir": {}}]}}
        }
    })
    .to_string()
}

#[tokio::main(flavor = "multi_thread", worker_threads = 1)]
async fn main() -> Result<()> {
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    let args: Vec<String> = std::env::args().collect();
    let (url, rate, seconds, target) = match args.as_slice() {
        [_, url, rate, seconds] => (url, rate, seconds, None),
        [_, url, rate, seconds, ns] => (url, rate, seconds, Some((ns.clone(), None))),
        [_, url, rate, seconds, ns, mv] => {
            (url, rate, seconds, Some((ns.clone(), Some(mv.clone()))))
        }
        _ => bail!("usage: admission_load URL RATE SECONDS [NAMESPACE [MV]] (with KUBECONFIG set)"),
    };
    // Which ModelValidation request i names (None: no label).
    let (ns, label_of): (String, Arc<dyn Fn(u64) -> Option<String> + Send + Sync>) = match target {
        None => {
            setup("bench-load", "bench").await?;
            ("bench-load".into(), Arc::new(|_| Some("bench".to_string())))
        }
        Some((ns, mv)) => (ns, Arc::new(move |i| mv.clone().filter(|_| i % 2 == 0))),
    };
    let ca = webhook_ca().await?;
    let rate: u64 = rate.parse()?;
    let seconds: u64 = seconds.parse()?;
    let hostport = url
        .trim_start_matches("https://")
        .trim_end_matches('/')
        .to_string();
    let host = hostport
        .split(':')
        .next()
        .unwrap_or("127.0.0.1")
        .to_string();
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
    let (tx, rx) = async_channel_shim::channel::<(u64, Instant)>(4096);
    let (res_tx, mut res_rx) = tokio::sync::mpsc::unbounded_channel::<(Duration, bool)>();
    for _ in 0..CONNECTIONS {
        let rx = rx.clone();
        let res_tx = res_tx.clone();
        let mount = std::env::var("MODEL_MOUNT").unwrap_or_else(|_| "/models".into());
        let (addr, host, connector, ns, label_of) = (
            hostport.clone(),
            host.clone(),
            connector.clone(),
            ns.clone(),
            label_of.clone(),
        );
        tokio::spawn(async move {
            let mut sender = None;
            while let Ok((i, scheduled)) = rx.recv().await {
                let mut ok = false;
                if sender.is_none() {
                    sender = connection(addr.clone(), host.clone(), connector.clone())
                        .await
                        .ok();
                }
                // A kept-alive HTTP/1 connection takes the next request only once ready; one the
                // server closed is replaced on the next turn.
                if let Some(s) = sender.as_mut()
                    && s.ready().await.is_err()
                {
                    sender = None;
                }
                if let Some(s) = sender.as_mut() {
                    let req = Request::post("/mutate-v1-pod")
                        .header("content-type", "application/json")
                        .body(review(i, &ns, label_of(i).as_deref(), &mount))
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
                            let v: serde_json::Value =
                                serde_json::from_slice(&body).unwrap_or_default();
                            ok = status == 200
                                && v["response"]["allowed"] == true
                                && v["response"]["patch"].is_string();
                            if !ok && i < 3 {
                                eprintln!(
                                    "unexpected response ({status}): {}",
                                    String::from_utf8_lossy(&body)
                                );
                            }
                        }
                        Err(_) => sender = None,
                    }
                }
                let _ = res_tx.send((scheduled.elapsed(), ok));
            }
        });
    }
    drop(res_tx);
    let interval = Duration::from_nanos(1_000_000_000 / rate.max(1));
    let total = rate * seconds;
    let start = Instant::now();
    for i in 0..total {
        let at = start + interval * i as u32;
        tokio::time::sleep_until(at.into()).await;
        tx.send((i, at)).await.ok();
    }
    drop(tx);
    let mut latencies = Vec::with_capacity(total as usize);
    let mut errors = 0u64;
    while let Some((d, ok)) = res_rx.recv().await {
        latencies.push(d);
        if !ok {
            errors += 1;
        }
    }
    let elapsed = start.elapsed();
    latencies.sort();
    let pct = |p: f64| {
        latencies
            .get(((latencies.len() as f64 * p).ceil() as usize).saturating_sub(1))
            .map_or(0.0, |d| d.as_secs_f64() * 1000.0)
    };
    println!(
        "{}",
        json!({
            "requests": latencies.len(), "errors": errors, "seconds": elapsed.as_secs_f64(),
            "achieved_rps": latencies.len() as f64 / elapsed.as_secs_f64(),
            "p50_ms": pct(0.50), "p90_ms": pct(0.90), "p99_ms": pct(0.99), "max_ms": pct(1.0),
        })
    );
    Ok(())
}

/// Creates the namespace and ModelValidation the requests name.
async fn setup(ns: &str, mv: &str) -> Result<()> {
    apply_model_validation(ns, mv, json!({"model": {"path": "/models/m", "signaturePath": "/models/m.sig"}, "config": {"publicKeyConfig": {"keyPath": "/models/k.pub"}}})).await?;
    tokio::time::sleep(Duration::from_secs(1)).await; // let the operator's watch see it
    Ok(())
}
