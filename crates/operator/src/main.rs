//! `model-validation-operator`: serves the pod admission webhook that injects model
//! verification, with its own TLS, against the cluster in the kubeconfig or in-cluster config.
#![forbid(unsafe_code)]

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use anyhow::{Context, Result};
use axum::Router;
use axum::routing::get;
use clap::{Parser, ValueEnum};
use model_validation_operator::cache::ClusterCache;
use model_validation_operator::certs::SelfManaged;
use model_validation_operator::metrics::Metrics;
use model_validation_operator::tls::{self, CertDir, Resolver};
use model_validation_operator::webhook::inject::InjectConfig;
use model_validation_operator::webhook::server::{AppState, router, serve_tls};
use model_validation_operator::webhook::{AdmitConfig, Policies};
use model_validation_operator::{crd, registration};

/// The default verification agent image; its entrypoint is `model-signing`.
pub const DEFAULT_AGENT_IMAGE: &str = "ghcr.io/model-validation-operator/model-signing:v0.1.0";

#[derive(Parser, Debug)]
#[command(
    name = "model-validation-operator",
    version,
    about = "Only signed, untampered ML models run: admission webhook for pods labelled validation.ml.sigstore.dev/ml=<ModelValidation>"
)]
struct Args {
    /// Image of the verification agent injected into pods.
    #[arg(long, env = "MVO_AGENT_IMAGE", default_value = DEFAULT_AGENT_IMAGE)]
    agent_image: String,
    /// Pull policy of the agent unless a ModelValidation sets one.
    #[arg(long, env = "MVO_AGENT_PULL_POLICY", default_value = "IfNotPresent", value_parser = ["Always", "IfNotPresent", "Never"])]
    agent_pull_policy: String,
    /// The operator's namespace (never injected; holds the webhook CA Secret).
    #[arg(
        long,
        env = "POD_NAMESPACE",
        default_value = "model-validation-operator-system"
    )]
    namespace: String,
    /// Address of the HTTPS webhook server.
    #[arg(long, env = "MVO_WEBHOOK_ADDR", default_value = "0.0.0.0:9443")]
    webhook_addr: SocketAddr,
    /// Address of /healthz and /readyz (plain HTTP).
    #[arg(long, env = "MVO_HEALTH_ADDR", default_value = "0.0.0.0:8081")]
    health_addr: SocketAddr,
    /// Take the serving certificate from this directory (tls.crt, tls.key; e.g. cert-manager)
    /// instead of managing one; it is re-read when it changes.
    #[arg(long, env = "MVO_CERT_DIR")]
    cert_dir: Option<PathBuf>,
    /// Secret holding the self-managed webhook CA.
    #[arg(
        long,
        env = "MVO_TLS_SECRET",
        default_value = "model-validation-operator-webhook-ca"
    )]
    tls_secret: String,
    /// Name of the MutatingWebhookConfiguration whose caBundle the operator maintains.
    #[arg(
        long,
        env = "MVO_WEBHOOK_CONFIG",
        default_value = "model-validation-operator"
    )]
    webhook_config: String,
    /// Service name of the webhook (for the serving certificate's DNS names).
    #[arg(
        long,
        env = "MVO_SERVICE_NAME",
        default_value = "model-validation-webhook"
    )]
    service_name: String,
    /// Outside a cluster: register the webhook by this URL (e.g. https://127.0.0.1:9443)
    /// instead of by Service.
    #[arg(long, env = "MVO_WEBHOOK_URL")]
    webhook_url: Option<String>,
    /// Port of the continuous-validation sidecar's /readyz and /healthz inside pods.
    #[arg(long, env = "MVO_WATCH_PORT", default_value_t = model_validation_operator::webhook::inject::DEFAULT_WATCH_PORT)]
    watch_port: u16,
    /// Continuous-validation sidecar as a regular container: `auto` (when the API server is
    /// older than 1.28, which has no native sidecars), `always` or `never`.
    #[arg(long, env = "MVO_LEGACY_SIDECAR", default_value = "auto", value_parser = ["auto", "always", "never"])]
    legacy_sidecar: String,
    /// Install the CRDs at start (outside a cluster; in a cluster they come from deploy/).
    #[arg(long)]
    install_crds: bool,
    /// How often to check the serving certificate and the caBundle.
    #[arg(long, default_value = "60", value_name = "SECONDS")]
    cert_check_interval: u64,
    /// Log format.
    #[arg(long, env = "MVO_LOG_FORMAT", value_enum, default_value_t = LogFormat::Json)]
    log_format: LogFormat,
    /// Serve the webhook only: do not take part in leader election nor run the status
    /// controller (ModelValidation status, Events, verification metrics).
    #[arg(long, env = "MVO_DISABLE_CONTROLLER")]
    disable_controller: bool,
}

#[derive(ValueEnum, Clone, Copy, Debug)]
enum LogFormat {
    Json,
    Text,
}

fn init_logging(format: LogFormat) {
    let filter =
        tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into());
    let b = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Json => b.json().flatten_event(true).init(),
        LogFormat::Text => b.init(),
    }
}

async fn shutdown_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = signal(SignalKind::terminate()).expect("SIGTERM handler");
    tokio::select! {
        _ = term.recv() => {},
        _ = tokio::signal::ctrl_c() => {},
    }
    tracing::info!("shutting down");
}

async fn install_crds(client: &kube::Client) -> Result<()> {
    use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
    use kube::CustomResourceExt;
    let api: kube::Api<CustomResourceDefinition> = kube::Api::all(client.clone());
    for crd in [
        crd::ModelValidation::crd(),
        crd::legacy::ModelValidation::crd(),
    ] {
        let name = crd.metadata.name.clone().unwrap_or_default();
        api.patch(
            &name,
            &kube::api::PatchParams::apply(registration::FIELD_MANAGER).force(),
            &kube::api::Patch::Apply(&crd),
        )
        .await
        .with_context(|| format!("cannot install CRD {name}"))?;
    }
    // Wait until the API server serves them.
    for _ in 0..100 {
        let ok = kube::Api::<crd::ModelValidation>::all(client.clone())
            .list(&kube::api::ListParams::default().limit(1))
            .await
            .is_ok()
            && kube::Api::<crd::legacy::ModelValidation>::all(client.clone())
                .list(&kube::api::ListParams::default().limit(1))
                .await
                .is_ok();
        if ok {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    anyhow::bail!("the CRDs were installed but are not served after 10 s")
}

async fn ensure_namespace(client: &kube::Client, name: &str) -> Result<()> {
    use k8s_openapi::api::core::v1::Namespace;
    let api: kube::Api<Namespace> = kube::Api::all(client.clone());
    let ns = Namespace {
        metadata: kube::api::ObjectMeta {
            name: Some(name.into()),
            labels: Some(
                [(
                    model_validation_operator::webhook::IGNORE_NAMESPACE_LABEL.to_string(),
                    "true".to_string(),
                )]
                .into(),
            ),
            ..Default::default()
        },
        ..Default::default()
    };
    api.patch(
        name,
        &kube::api::PatchParams::apply(registration::FIELD_MANAGER).force(),
        &kube::api::Patch::Apply(&ns),
    )
    .await
    .with_context(|| format!("cannot create namespace {name}"))?;
    Ok(())
}

#[tokio::main]
async fn main() -> Result<()> {
    let args = Args::parse();
    init_logging(args.log_format);
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    let client = kube::Client::try_default()
        .await
        .context("cannot reach the Kubernetes API: set KUBECONFIG, or run in a cluster")?;

    if args.install_crds {
        install_crds(&client).await?;
    }
    if args.webhook_url.is_some() {
        ensure_namespace(&client, &args.namespace).await?;
    }
    let cache = ClusterCache::start(client.clone()).await;
    let metrics = Metrics::new();
    // Status controller: only the holder of the Lease runs it; it releases the Lease on SIGTERM.
    let controller = (!args.disable_controller).then(|| {
        tokio::spawn(model_validation_operator::controller::run(
            client.clone(),
            args.namespace.clone(),
            model_validation_operator::controller::lease::default_identity(),
            metrics.clone(),
            shutdown_signal(),
        ))
    });

    // TLS: a certificate directory, or our own CA in a Secret.
    let ready_tls = Arc::new(AtomicBool::new(false));
    let resolver = if let Some(dir) = &args.cert_dir {
        let mut watched = CertDir::new(dir);
        let key = watched.poll()?.context("certificate directory is empty")?;
        let resolver = Resolver::with_expiry_gauge(key, metrics.certificate_expiry.clone());
        let r = resolver.clone();
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(Duration::from_secs(10)).await;
                match watched.poll() {
                    Ok(Some(k)) => {
                        r.set(k);
                        tracing::info!(
                            "serving certificate reloaded from the certificate directory"
                        );
                    }
                    Ok(None) => {}
                    Err(e) => {
                        tracing::warn!(error = %e, "cannot reload the certificate directory; keeping the current certificate")
                    }
                }
            }
        });
        resolver
    } else {
        let mut ips: Vec<IpAddr> = vec![IpAddr::from([127, 0, 0, 1])];
        if let Some(url) = &args.webhook_url
            && let Some(host) = url.trim_start_matches("https://").split([':', '/']).next()
            && let Ok(ip) = host.parse()
        {
            ips.push(ip);
        }
        let svc = &args.service_name;
        let ns = &args.namespace;
        let manager = SelfManaged {
            namespace: ns.clone(),
            secret_name: args.tls_secret.clone(),
            dns_names: vec![
                format!("{svc}.{ns}.svc"),
                format!("{svc}.{ns}.svc.cluster.local"),
                "localhost".into(),
            ],
            ips,
            lifetime: tls::SERVING_LIFETIME,
        };
        let ca = manager.load_or_create_ca(&client).await?;
        if let Some(url) = &args.webhook_url {
            registration::register_url(
                &client,
                &args.webhook_config,
                url,
                &ca.cert_pem,
                &args.namespace,
            )
            .await?;
        }
        let (key, pem) = manager.issue(&ca)?;
        let resolver = Resolver::with_expiry_gauge(key, metrics.certificate_expiry.clone());
        tokio::spawn(manager.maintain(
            client.clone(),
            ca,
            resolver.clone(),
            pem,
            Some(args.webhook_config.clone()),
            Duration::from_secs(args.cert_check_interval),
        ));
        resolver
    };
    ready_tls.store(true, Ordering::SeqCst);

    let legacy_sidecar = match args.legacy_sidecar.as_str() {
        "always" => true,
        "never" => false,
        _ => match client.apiserver_version().await {
            Ok(v) => {
                let minor: u32 = v.minor.trim_end_matches('+').parse().unwrap_or(u32::MAX);
                v.major == "1" && minor < 28
            }
            Err(e) => {
                tracing::warn!(error = %e, "cannot read the API server version; assuming native sidecars");
                false
            }
        },
    };
    let config = AdmitConfig {
        inject: InjectConfig {
            agent_image: args.agent_image.clone(),
            default_pull_policy: args.agent_pull_policy.clone(),
            watch_port: args.watch_port,
            legacy_sidecar,
        },
        operator_namespace: args.namespace.clone(),
    };
    let policies: Arc<dyn Policies + Send + Sync> = Arc::new(cache.clone());
    let app = router(Arc::new(AppState {
        policies,
        config,
        metrics: metrics.clone(),
        events: Some(client.clone()),
    }));

    let metrics_text = metrics.clone();
    let health_cache = cache.clone();
    let health_tls = ready_tls.clone();
    let health = Router::new()
        .route("/healthz", get(|| async { "ok" }))
        .route(
            "/metrics",
            get(move || {
                let body = metrics_text.encode();
                async move {
                    (
                        [(
                            http::header::CONTENT_TYPE,
                            "application/openmetrics-text; version=1.0.0; charset=utf-8",
                        )],
                        body,
                    )
                }
            }),
        )
        .route(
            "/readyz",
            get(move || {
                let ok = health_cache.synced() && health_tls.load(Ordering::SeqCst);
                async move {
                    if ok {
                        (http::StatusCode::OK, "ready")
                    } else {
                        (http::StatusCode::SERVICE_UNAVAILABLE, "caches not synced")
                    }
                }
            }),
        );
    let health_listener = tokio::net::TcpListener::bind(args.health_addr)
        .await
        .with_context(|| format!("cannot listen on {}", args.health_addr))?;
    tokio::spawn(async move {
        let _ = axum::serve(health_listener, health).await;
    });

    let listener = tokio::net::TcpListener::bind(args.webhook_addr)
        .await
        .with_context(|| format!("cannot listen on {}", args.webhook_addr))?;
    tracing::info!(addr = %args.webhook_addr, agent_image = %args.agent_image, "webhook serving");
    serve_tls(
        listener,
        Arc::new(tls::server_config(resolver)?),
        app,
        shutdown_signal(),
    )
    .await;
    if let Some(c) = controller {
        let _ = tokio::time::timeout(Duration::from_secs(5), c).await;
    }
    tracing::info!("stopped");
    Ok(())
}
