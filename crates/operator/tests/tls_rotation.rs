//! The webhook server keeps answering while its serving certificate is rotated: every request
//! succeeds, and new connections see the new certificate.

use std::collections::BTreeSet;
use std::sync::Arc;

use body::collect;
use hyper::Request;
use hyper_util::rt::TokioIo;
use model_validation_operator::tls::{self, Ca, Resolver};
use model_validation_operator::webhook::inject::InjectConfig;
use model_validation_operator::webhook::server::{AppState, router, serve_tls};
use model_validation_operator::webhook::{AdmitConfig, FoundPolicy, Policies};
use rustls::pki_types::{CertificateDer, ServerName};
use tokio_rustls::TlsConnector;

struct Nothing;
impl Policies for Nothing {
    fn get(&self, _: &str, _: &str) -> Option<FoundPolicy> {
        None
    }
    fn in_namespace(&self, _: &str) -> Vec<FoundPolicy> {
        Vec::new()
    }
    fn namespace_ignored(&self, _: &str) -> bool {
        false
    }
}

/// Reads a whole response body.
mod body {
    use hyper::body::Incoming;
    pub async fn collect(mut body: Incoming) -> Vec<u8> {
        use hyper::body::Body;
        let mut out = Vec::new();
        while let Some(frame) =
            std::future::poll_fn(|cx| std::pin::Pin::new(&mut body).poll_frame(cx)).await
        {
            if let Ok(data) = frame.unwrap().into_data() {
                out.extend_from_slice(&data);
            }
        }
        out
    }
}

const REVIEW: &str = r#"{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{"uid":"u","kind":{"group":"","version":"v1","kind":"Pod"},"resource":{"group":"","version":"v1","resource":"pods"},"namespace":"n","operation":"CREATE","userInfo":{},"object":{"apiVersion":"v1","kind":"Pod","metadata":{"name":"p"},"spec":{"containers":[{"name":"c","image":"i"}]}}}}"#;

async fn one_request(
    addr: std::net::SocketAddr,
    connector: &TlsConnector,
) -> (u16, Vec<u8>, Vec<u8>) {
    let tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
    let tls = connector
        .connect(ServerName::try_from("localhost").unwrap(), tcp)
        .await
        .unwrap();
    let leaf = tls.get_ref().1.peer_certificates().unwrap()[0].to_vec();
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(tls))
        .await
        .unwrap();
    tokio::spawn(conn);
    let req = Request::post("/mutate-v1-pod")
        .header("content-type", "application/json")
        .body(REVIEW.to_string())
        .unwrap();
    let resp = sender.send_request(req).await.unwrap();
    let status = resp.status().as_u16();
    (status, collect(resp.into_body()).await, leaf)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rotation_never_fails_a_request() {
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    let ca = Ca::generate().unwrap();
    let issue = || {
        let s = ca
            .issue(&["localhost".into()], &[], tls::SERVING_LIFETIME)
            .unwrap();
        tls::certified_key(&s.cert_pem, &s.key_pem).unwrap()
    };
    let resolver = Resolver::new(issue());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let config = AdmitConfig {
        inject: InjectConfig {
            agent_image: "a".into(),
            default_pull_policy: "IfNotPresent".into(),
            ..Default::default()
        },
        operator_namespace: "x".into(),
    };
    let app = router(Arc::new(AppState {
        policies: Arc::new(Nothing),
        config,
        metrics: model_validation_operator::metrics::Metrics::new(),
        events: None,
    }));
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(serve_tls(
        listener,
        Arc::new(tls::server_config(resolver.clone()).unwrap()),
        app,
        async {
            let _ = stop_rx.await;
        },
    ));

    let mut roots = rustls::RootCertStore::empty();
    let ca_der: CertificateDer<'static> =
        rustls::pki_types::pem::PemObject::from_pem_slice(ca.cert_pem.as_bytes()).unwrap();
    roots.add(ca_der).unwrap();
    let connector = TlsConnector::from(Arc::new(
        rustls::ClientConfig::builder()
            .with_root_certificates(roots)
            .with_no_client_auth(),
    ));

    let mut leaves = BTreeSet::new();
    let mut ok = 0;
    for round in 0..10 {
        let requests: Vec<_> = (0..20).map(|_| one_request(addr, &connector)).collect();
        // Rotate while this round's requests are in flight.
        let rotate = async {
            tokio::task::yield_now().await;
            resolver.set(issue());
        };
        let (results, ()) = tokio::join!(futures::future::join_all(requests), rotate);
        for (status, body, leaf) in results {
            assert_eq!(status, 200, "round {round}");
            let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
            assert_eq!(v["response"]["allowed"], true);
            assert_eq!(v["kind"], "AdmissionReview");
            leaves.insert(leaf);
            ok += 1;
        }
    }
    assert_eq!(ok, 200);
    assert!(
        leaves.len() >= 2,
        "new connections must see rotated certificates ({} seen)",
        leaves.len()
    );
    stop_tx.send(()).unwrap();
    server.await.unwrap();
}
