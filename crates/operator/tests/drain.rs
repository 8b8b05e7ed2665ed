//! On shutdown the webhook server stops accepting connections but finishes the admissions
//! already in flight: a request whose body is still arriving when shutdown starts is answered.

use std::sync::Arc;
use std::time::Duration;

use model_validation_operator::tls::{self, Ca, Resolver};
use model_validation_operator::webhook::inject::InjectConfig;
use model_validation_operator::webhook::server::{AppState, router, serve_tls};
use model_validation_operator::webhook::{AdmitConfig, FoundPolicy, Policies};
use rustls::pki_types::{CertificateDer, ServerName};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
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

const REVIEW: &str = r#"{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{"uid":"drain-1","kind":{"group":"","version":"v1","kind":"Pod"},"resource":{"group":"","version":"v1","resource":"pods"},"namespace":"n","operation":"CREATE","userInfo":{},"object":{"apiVersion":"v1","kind":"Pod","metadata":{"name":"p"},"spec":{"containers":[{"name":"c","image":"i"}]}}}}"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn in_flight_admission_is_answered_after_shutdown_starts() {
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    let ca = Ca::generate().unwrap();
    let s = ca
        .issue(&["localhost".into()], &[], tls::SERVING_LIFETIME)
        .unwrap();
    let resolver = Resolver::new(tls::certified_key(&s.cert_pem, &s.key_pem).unwrap());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let config = AdmitConfig {
        inject: InjectConfig {
            agent_image: "a".into(),
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
        Arc::new(tls::server_config(resolver).unwrap()),
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
    let tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
    let mut tls = connector
        .connect(ServerName::try_from("localhost").unwrap(), tcp)
        .await
        .unwrap();

    // Headers and half of the body, then shutdown, then the rest.
    let head = format!(
        "POST /mutate-v1-pod HTTP/1.1\r\nhost: localhost\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n",
        REVIEW.len()
    );
    tls.write_all(head.as_bytes()).await.unwrap();
    let (first, rest) = REVIEW.split_at(REVIEW.len() / 2);
    tls.write_all(first.as_bytes()).await.unwrap();
    tls.flush().await.unwrap();
    tokio::time::sleep(Duration::from_millis(200)).await;
    stop_tx.send(()).unwrap();
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(
        !server.is_finished(),
        "the server must wait for the request in flight"
    );
    // New connections are refused once shutdown started.
    assert!(
        tokio::net::TcpStream::connect(addr).await.is_err(),
        "listener must be closed"
    );
    tls.write_all(rest.as_bytes()).await.unwrap();
    tls.flush().await.unwrap();
    let mut response = Vec::new();
    tokio::time::timeout(Duration::from_secs(10), tls.read_to_end(&mut response))
        .await
        .unwrap()
        .ok();
    let text = String::from_utf8_lossy(&response);
    assert!(text.starts_with("HTTP/1.1 200"), "{text}");
    assert!(
        text.contains("\"uid\":\"drain-1\"") && text.contains("\"allowed\":true"),
        "{text}"
    );
    tokio::time::timeout(Duration::from_secs(10), server)
        .await
        .expect("server exits after draining")
        .unwrap();
}
