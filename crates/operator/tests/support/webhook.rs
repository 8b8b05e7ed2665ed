//! The webhook's TLS server in-process, on static policies.

use std::net::SocketAddr;
use std::sync::Arc;

use model_validation_operator::tls::{self, Ca, Resolver};
use model_validation_operator::webhook::inject::InjectConfig;
use model_validation_operator::webhook::server::{AppState, router, serve_tls};
use model_validation_operator::webhook::{AdmitConfig, FoundPolicy, Policies};
use rustls::pki_types::{CertificateDer, ServerName};
use tokio::net::TcpStream;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use tokio_rustls::TlsConnector;
use tokio_rustls::client::TlsStream;

/// A cluster with no ModelValidations and no ignored namespaces.
pub struct NoPolicies;

impl Policies for NoPolicies {
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

/// The webhook server (`serve_tls` with the real router) on a loopback port, its serving
/// certificate issued for `localhost` by a fresh CA, and a client that trusts that CA.
pub struct TestWebhook {
    /// Where it listens.
    pub addr: SocketAddr,
    /// Its serving certificate, swappable while it runs.
    pub resolver: Arc<Resolver>,
    /// A TLS client trusting the CA.
    pub connector: TlsConnector,
    /// The server task; it ends after shutdown once in-flight requests are answered.
    pub server: JoinHandle<()>,
    ca: Ca,
    stop: Option<oneshot::Sender<()>>,
}

impl TestWebhook {
    /// Starts the server on `policies`.
    pub async fn start(policies: Arc<dyn Policies + Send + Sync>) -> TestWebhook {
        test_cluster::install_crypto_provider();
        let ca = Ca::generate().unwrap();
        let resolver = Resolver::new(issue(&ca));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let config = AdmitConfig {
            inject: InjectConfig {
                agent_image: "a".into(),
                ..Default::default()
            },
            operator_namespace: "x".into(),
            require_policy_trust: false,
            governable_namespaces: Default::default(),
        };
        let app = router(Arc::new(AppState {
            policies,
            config,
            metrics: model_validation_operator::metrics::Metrics::new(),
            events: None,
            images: Arc::new(
                model_validation_operator::images::verifier::ImageVerifier::new(Default::default())
                    .unwrap(),
            ),
            pod_pull_secrets: None,
        }));
        let (stop, stop_rx) = oneshot::channel::<()>();
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
        TestWebhook {
            addr,
            resolver,
            connector,
            server,
            ca,
            stop: Some(stop),
        }
    }

    /// A new serving certificate for `localhost` from the same CA.
    pub fn issue(&self) -> Arc<rustls::sign::CertifiedKey> {
        issue(&self.ca)
    }

    /// A new TLS connection to the server, handshake done.
    pub async fn connect(&self) -> TlsStream<TcpStream> {
        let tcp = TcpStream::connect(self.addr).await.unwrap();
        self.connector
            .connect(ServerName::try_from("localhost").unwrap(), tcp)
            .await
            .unwrap()
    }

    /// Starts the graceful shutdown.
    pub fn shutdown(&mut self) {
        if let Some(stop) = self.stop.take() {
            stop.send(()).unwrap();
        }
    }
}

fn issue(ca: &Ca) -> Arc<rustls::sign::CertifiedKey> {
    let s = ca
        .issue(&["localhost".into()], &[], tls::SERVING_LIFETIME)
        .unwrap();
    tls::certified_key(&s.cert_pem, &s.key_pem).unwrap()
}
