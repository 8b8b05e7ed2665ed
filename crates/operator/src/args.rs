//! The operator's command line, and [`Args::run`]: the wiring of cache, webhook, status
//! controller, certificates and admin server under one shutdown token.

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result};
use clap::{Parser, ValueEnum};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;
use model_validation_operator::admin::{self, Readiness};
use model_validation_operator::cache::ClusterCache;
use model_validation_operator::certs::SelfManaged;
use model_validation_operator::events::{EventSink, Limits};
use model_validation_operator::images::pull_secrets::PodPullSecrets;
use model_validation_operator::images::verifier::{ImageVerifier, VerifierOptions};
use model_validation_operator::metrics::Metrics;
use model_validation_operator::tls::{self, CertDir, Resolver};
use model_validation_operator::webhook::inject::{DEFAULT_WATCH_PORT, InjectConfig};
use model_validation_operator::webhook::listener::{Limits as ServerLimits, serve_tls_with};
use model_validation_operator::webhook::server::{AppState, router};
use model_validation_operator::webhook::{AdmitConfig, Policies};
use model_validation_operator::{bootstrap, controller, registration};
use tokio_util::sync::CancellationToken;

/// The default verification agent image; its entrypoint is `model-signing`.
pub const DEFAULT_AGENT_IMAGE: &str = "ghcr.io/model-validation-operator/model-signing:v0.1.0";

/// Pull policy of the injected agent.
#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
#[value(rename_all = "PascalCase")]
pub enum PullPolicy {
    /// Always pull.
    Always,
    /// Pull when the node lacks the image.
    IfNotPresent,
    /// Never pull.
    Never,
}

impl PullPolicy {
    /// As a pod spec spells it.
    fn as_str(self) -> &'static str {
        match self {
            PullPolicy::Always => "Always",
            PullPolicy::IfNotPresent => "IfNotPresent",
            PullPolicy::Never => "Never",
        }
    }
}

/// How the continuous-validation sidecar is injected.
#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum SidecarMode {
    /// A regular container when the API server is older than 1.28 (no native sidecars).
    Auto,
    /// Always a regular container.
    Always,
    /// Always a native sidecar (init container with `restartPolicy: Always`).
    Never,
}

/// Log format.
#[derive(ValueEnum, Clone, Copy, Debug)]
pub enum LogFormat {
    /// One JSON object per line.
    Json,
    /// Human-readable.
    Text,
}

#[derive(Parser, Debug)]
#[command(
    name = "model-validation-operator",
    version,
    about = "Only signed, untampered ML models run: admission webhook for pods labelled validation.ml.sigstore.dev/ml=<ModelValidation>"
)]
pub struct Args {
    /// Image of the verification agent injected into pods.
    #[arg(long, env = "MVO_AGENT_IMAGE", default_value = DEFAULT_AGENT_IMAGE)]
    agent_image: String,
    /// Pull policy of the agent unless a ModelValidation sets one.
    #[arg(long, env = "MVO_AGENT_PULL_POLICY", value_enum, default_value_t = PullPolicy::IfNotPresent)]
    agent_pull_policy: PullPolicy,
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
    /// Address of /healthz, /readyz and /metrics (plain HTTP).
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
    #[arg(long, env = "MVO_WATCH_PORT", default_value_t = DEFAULT_WATCH_PORT)]
    watch_port: u16,
    /// Continuous-validation sidecar as a regular container: `auto` (when the API server is
    /// older than 1.28, which has no native sidecars), `always` or `never`.
    #[arg(long, env = "MVO_LEGACY_SIDECAR", value_enum, default_value_t = SidecarMode::Auto)]
    legacy_sidecar: SidecarMode,
    /// The namespaces ClusterModelValidations may govern, as a JSON label selector (default:
    /// '{"matchLabels":{"validation.ml.sigstore.dev/include":"true"}}'; '{}' for every namespace
    /// but the operator's and kube-system). Keep it equal to the namespaceSelector of the
    /// webhooks cluster-pods and workloads.validation.ml.sigstore.dev in deploy/base/webhook.yaml.
    #[arg(long, env = "MVO_CLUSTER_POLICY_NAMESPACES", value_name = "SELECTOR", value_parser = parse_namespace_selector)]
    cluster_policy_namespaces: Option<LabelSelector>,
    /// Install the CRDs at start (outside a cluster; in a cluster they come from deploy/).
    #[arg(long)]
    install_crds: bool,
    /// How often to check the webhook CA, the serving certificate and the caBundle.
    #[arg(
        long,
        env = "MVO_CERT_CHECK_INTERVAL",
        default_value = "60",
        value_name = "SECONDS"
    )]
    cert_check_interval: u64,
    /// Lifetime of the self-managed webhook CA; it is rotated when a third is left (or when
    /// `ca.key` is removed from its Secret).
    #[arg(
        long,
        env = "MVO_CA_LIFETIME",
        default_value = "31536000",
        value_name = "SECONDS"
    )]
    ca_lifetime: u64,
    /// How long the previous webhook CA stays in the caBundle after a CA rotation, so that
    /// every replica moves to the new CA first. More than twice --cert-check-interval plus 3 s.
    #[arg(
        long,
        env = "MVO_CA_OVERLAP",
        default_value = "3600",
        value_name = "SECONDS"
    )]
    ca_overlap: u64,
    /// Lifetime of each self-managed serving certificate; it is re-issued when a third of its
    /// validity is left. Certificates are back-dated 5 minutes, so one of L seconds is re-issued
    /// (2L - 300) / 3 seconds after issue (at every check below 150 s). Default 90 days.
    #[arg(
        long,
        env = "MVO_SERVING_CERT_LIFETIME",
        default_value = "7776000",
        value_name = "SECONDS"
    )]
    serving_cert_lifetime: u64,
    /// Stop admitting labelled pods (refusing them with "retry") and report not ready once a
    /// watch of ModelValidations or Namespaces has been broken this long, until it has listed
    /// afresh: a rotated key or a tightened policy never lags by more than this.
    #[arg(
        long,
        env = "MVO_CACHE_STALE_AFTER",
        default_value = "30",
        value_name = "SECONDS"
    )]
    cache_stale_after: u64,
    /// Log format.
    #[arg(long, env = "MVO_LOG_FORMAT", value_enum, default_value_t = LogFormat::Json)]
    log_format: LogFormat,
    /// Refuse pods whose ModelValidation reads its trust anchor (publicKeyConfig.keyPath,
    /// pkiConfig.certificateAuthority, clientTrustConfig.trustConfigPath) from the pod instead
    /// of carrying it (keyPem, certificateAuthorityPem, trustConfigJson/trustedRootJson).
    /// Recommended: without it such pods are admitted with a warning.
    #[arg(long, env = "MVO_REQUIRE_POLICY_TRUST")]
    require_policy_trust: bool,
    /// Serve the webhook only: do not take part in leader election nor run the status
    /// controller (ModelValidation status, Events, verification metrics).
    #[arg(long, env = "MVO_DISABLE_CONTROLLER")]
    disable_controller: bool,
    /// The deadline of all registry calls of one admission (models in image volumes, see
    /// `spec.images`), from 1 to 8 s, inside the webhook's 10 s: a registry that does not
    /// answer in time refuses the pod with "retry".
    #[arg(
        long,
        env = "MVO_REGISTRY_TIMEOUT",
        default_value = "5",
        value_name = "SECONDS",
        value_parser = clap::value_parser!(u64).range(1..=8)
    )]
    registry_timeout: u64,
    /// A PEM file of CA certificates trusted for registries besides the system's roots (a
    /// private registry's CA); repeatable.
    #[arg(long, env = "MVO_REGISTRY_CA", value_name = "FILE")]
    registry_ca: Vec<PathBuf>,
    /// Talk plain HTTP to registries (local test registries only: never in production).
    #[arg(long, env = "MVO_REGISTRY_PLAIN_HTTP")]
    registry_plain_http: bool,
    /// How long a model verified in a registry is trusted again without asking it (by manifest
    /// digest and policy trust); refusals are never reused.
    #[arg(
        long,
        env = "MVO_IMAGE_CACHE_TTL",
        default_value = "600",
        value_name = "SECONDS"
    )]
    image_cache_ttl: u64,
    /// How many verified (manifest digest, policy trust) pairs are kept (0: none).
    #[arg(long, env = "MVO_IMAGE_CACHE_SIZE", default_value = "4096")]
    image_cache_size: usize,
    /// Read registries with the pod's own pull Secrets (its spec.imagePullSecrets, which
    /// include its service account's) where a policy names no spec.images.pullSecret. Needs
    /// get on Secrets in the pods' namespaces: apply deploy/optional/pod-pull-secrets.
    #[arg(long, env = "MVO_POD_PULL_SECRETS")]
    pod_pull_secrets: bool,
}

/// How the webhook's serving certificate is kept.
enum CertSource {
    /// `--cert-dir`.
    Dir(PathBuf),
    /// Our own CA in a Secret.
    SelfManaged {
        manager: SelfManaged,
        webhook_url: Option<String>,
        webhook_config: String,
        /// Where the webhook for cluster policies is registered (with `webhook_url`).
        cluster_policy_namespaces: Box<LabelSelector>,
    },
}

/// `--cluster-policy-namespaces`: a JSON label selector that the API server and the operator
/// both evaluate, so it is checked here with the operator's own selector rules.
fn parse_namespace_selector(text: &str) -> Result<LabelSelector, String> {
    let selector: LabelSelector = serde_json::from_str(text).map_err(|e| {
        format!("not a JSON label selector ({e}); write e.g. '{{\"matchLabels\":{{\"ml-platform\":\"enabled\"}}}}'")
    })?;
    kube::core::Selector::try_from(selector.clone()).map_err(|e| {
        format!("{e}: use matchLabels, or matchExpressions with In, NotIn, Exists or DoesNotExist")
    })?;
    Ok(selector)
}

impl Args {
    /// Runs the operator until SIGTERM or Ctrl-C, then drains and stops.
    pub async fn run(self) -> Result<()> {
        // Every field is taken here, so a flag that nothing uses does not compile.
        let Args {
            agent_image,
            agent_pull_policy,
            namespace,
            webhook_addr,
            health_addr,
            cert_dir,
            tls_secret,
            webhook_config,
            service_name,
            webhook_url,
            watch_port,
            legacy_sidecar,
            cluster_policy_namespaces,
            install_crds,
            cert_check_interval,
            ca_lifetime,
            ca_overlap,
            serving_cert_lifetime,
            cache_stale_after,
            log_format,
            require_policy_trust,
            disable_controller,
            registry_timeout,
            registry_ca,
            registry_plain_http,
            image_cache_ttl,
            image_cache_size,
            pod_pull_secrets,
        } = self;
        init_logging(log_format);
        let images = image_verifier(
            registry_timeout,
            &registry_ca,
            registry_plain_http,
            image_cache_ttl,
            image_cache_size,
        )?;
        let ca = ca_timing(cert_check_interval, ca_lifetime, ca_overlap)?;
        let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
        let client = kube::Client::try_default()
            .await
            .context("cannot reach the Kubernetes API: set KUBECONFIG, or run in a cluster")?;
        if install_crds {
            bootstrap::install_crds(&client).await?;
        }
        if webhook_url.is_some() {
            bootstrap::ensure_namespace(&client, &namespace).await?;
        }
        let shutdown = CancellationToken::new();
        tokio::spawn(cancel_on_signal(shutdown.clone()));

        let cache = ClusterCache::start_with(
            client.clone(),
            Duration::from_secs(cache_stale_after),
            &namespace,
        )
        .await;
        let policies: Arc<dyn Policies + Send + Sync> = Arc::new(cache);
        let cluster_policy_namespaces =
            cluster_policy_namespaces.unwrap_or_else(registration::default_cluster_namespaces);
        let governable: kube::core::Selector = cluster_policy_namespaces
            .clone()
            .try_into()
            .context("--cluster-policy-namespaces")?;
        let metrics = Metrics::new();
        let readiness = Arc::new(Readiness::default());
        let identity = controller::lease::default_identity();
        let events = EventSink::start(client.clone(), Some(identity.clone()), Limits::default());

        // Admin server first, so that liveness answers while the rest starts.
        let admin_listener = tokio::net::TcpListener::bind(health_addr)
            .await
            .with_context(|| format!("cannot listen on {health_addr}"))?;
        let admin = tokio::spawn(admin::serve(
            admin_listener,
            admin::router(metrics.clone(), readiness.clone(), policies.clone()),
            shutdown.clone(),
        ));

        // Status controller: only the holder of the Lease runs it; it releases the Lease at
        // shutdown.
        let controller = (!disable_controller).then(|| {
            tokio::spawn(controller::run(
                client.clone(),
                namespace.clone(),
                identity,
                metrics.clone(),
                events.clone(),
                controller::cluster::Settings {
                    policies: policies.clone(),
                    governable: governable.clone(),
                    operator_namespace: namespace.clone(),
                },
                shutdown.clone().cancelled_owned(),
            ))
        });

        let certs = match cert_dir {
            Some(dir) => CertSource::Dir(dir),
            None => CertSource::SelfManaged {
                manager: self_managed(
                    &namespace,
                    &service_name,
                    tls_secret,
                    webhook_url.as_deref(),
                    ca,
                    Duration::from_secs(serving_cert_lifetime),
                ),
                webhook_url,
                webhook_config,
                cluster_policy_namespaces: Box::new(cluster_policy_namespaces.clone()),
            },
        };
        let resolver = start_tls(
            &client,
            certs,
            &metrics,
            &namespace,
            Duration::from_secs(cert_check_interval),
        )
        .await?;
        let config = AdmitConfig {
            inject: InjectConfig {
                agent_image: agent_image.clone(),
                default_pull_policy: agent_pull_policy.as_str().into(),
                watch_port,
                legacy_sidecar: legacy_sidecar_wanted(&client, legacy_sidecar).await,
            },
            operator_namespace: namespace,
            require_policy_trust,
            governable_namespaces: governable,
        };
        let refusals = metrics.webhook_refusals.clone();
        let app = router(Arc::new(AppState {
            policies,
            config,
            metrics,
            events: Some(events),
            images,
            pod_pull_secrets: pod_pull_secrets.then(|| PodPullSecrets::new(client.clone())),
        }));
        let tls_config = Arc::new(tls::server_config(resolver)?);
        let listener = tokio::net::TcpListener::bind(webhook_addr)
            .await
            .with_context(|| format!("cannot listen on {webhook_addr}"))?;
        readiness.set_webhook_serving(true);
        tracing::info!(addr = %webhook_addr, agent_image = %agent_image, "webhook serving");
        let stop = shutdown.clone();
        let not_ready = readiness.clone();
        let stopped = async move {
            stop.cancelled().await;
            not_ready.set_webhook_serving(false);
        };
        serve_tls_with(
            listener,
            tls_config,
            app,
            ServerLimits::default(),
            Some(refusals),
            stopped,
        )
        .await;

        if let Some(c) = controller {
            let _ = tokio::time::timeout(Duration::from_secs(5), c).await;
        }
        match admin.await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => tracing::error!(error = %e, "the admin server failed"),
            Err(e) => tracing::error!(error = %e, "the admin server task failed"),
        }
        tracing::info!("stopped");
        Ok(())
    }
}

/// The registry side of image-volume admission, from the flags; a CA file that cannot be read
/// or used stops the start.
fn image_verifier(
    timeout: u64,
    ca_files: &[PathBuf],
    plain_http: bool,
    ttl: u64,
    size: usize,
) -> Result<Arc<ImageVerifier>> {
    let extra_ca_pem = ca_files
        .iter()
        .map(|f| std::fs::read(f).with_context(|| format!("--registry-ca {}", f.display())))
        .collect::<Result<Vec<_>>>()?;
    let verifier = ImageVerifier::new(VerifierOptions {
        timeout: Duration::from_secs(timeout),
        extra_ca_pem,
        plain_http,
        cache_ttl: Duration::from_secs(ttl),
        cache_size: size,
    })
    .context("--registry-ca")?;
    Ok(Arc::new(verifier))
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

/// Cancels `token` on SIGTERM or Ctrl-C. Without a SIGTERM handler the process could not drain,
/// so failing to install one cancels at once rather than running undrainable.
async fn cancel_on_signal(token: CancellationToken) {
    use tokio::signal::unix::{SignalKind, signal};
    match signal(SignalKind::terminate()) {
        Ok(mut term) => {
            tokio::select! {
                _ = term.recv() => {},
                _ = tokio::signal::ctrl_c() => {},
            }
            tracing::info!("shutting down");
        }
        Err(e) => tracing::error!(error = %e, "cannot handle SIGTERM; shutting down"),
    }
    token.cancel();
}

/// `--ca-lifetime` and `--ca-overlap`, checked against `--cert-check-interval`: every
/// replica must see a CA rotation, wait for the caBundle to settle and move its serving
/// certificate before the previous CA leaves the bundle.
fn ca_timing(check: u64, lifetime: u64, overlap: u64) -> Result<(Duration, Duration)> {
    let settle = tls::CA_SETTLE.as_secs();
    if overlap <= 2 * check + settle {
        anyhow::bail!(
            "--ca-overlap {overlap} is too short: make it more than twice --cert-check-interval \
             ({check}) plus {settle} s, or lower --cert-check-interval"
        );
    }
    if lifetime <= 3 * overlap {
        anyhow::bail!(
            "--ca-lifetime {lifetime} is too short for --ca-overlap {overlap}: the CA rotates when a \
             third of its life is left, so make it more than three times --ca-overlap"
        );
    }
    Ok((Duration::from_secs(lifetime), Duration::from_secs(overlap)))
}

/// The self-managed CA's settings: DNS names of the Service, and loopback plus the
/// `--webhook-url` host when it is an IP address; `ca` is (lifetime, overlap).
fn self_managed(
    namespace: &str,
    service: &str,
    secret_name: String,
    webhook_url: Option<&str>,
    (ca_lifetime, ca_overlap): (Duration, Duration),
    serving_lifetime: Duration,
) -> SelfManaged {
    let mut ips: Vec<IpAddr> = vec![IpAddr::from([127, 0, 0, 1])];
    if let Some(url) = webhook_url
        && let Some(host) = url.trim_start_matches("https://").split([':', '/']).next()
        && let Ok(ip) = host.parse()
    {
        ips.push(ip);
    }
    SelfManaged {
        namespace: namespace.into(),
        secret_name,
        dns_names: vec![
            format!("{service}.{namespace}.svc"),
            format!("{service}.{namespace}.svc.cluster.local"),
            "localhost".into(),
        ],
        ips,
        lifetime: serving_lifetime,
        ca_lifetime,
        ca_overlap,
    }
}

/// Loads the first serving certificate and starts keeping it fresh.
async fn start_tls(
    client: &kube::Client,
    certs: CertSource,
    metrics: &Metrics,
    namespace: &str,
    every: Duration,
) -> Result<Arc<Resolver>> {
    match certs {
        CertSource::Dir(dir) => {
            let mut watched = CertDir::new(&dir);
            let key = watched
                .poll()?
                .with_context(|| format!("the certificate directory {} is empty", dir.display()))?;
            let resolver = Resolver::with_expiry_gauge(key, metrics.certificate_expiry.clone());
            tokio::spawn(watched.maintain(resolver.clone(), Duration::from_secs(10)));
            Ok(resolver)
        }
        CertSource::SelfManaged {
            manager,
            webhook_url,
            webhook_config,
            cluster_policy_namespaces,
        } => {
            let cas = manager.load_or_rotate(client, false).await?;
            if let Some(url) = &webhook_url {
                let bundle = manager.ca_bundle(&cas);
                registration::register_url(
                    client,
                    &webhook_config,
                    url,
                    &bundle,
                    namespace,
                    &cluster_policy_namespaces,
                )
                .await?;
            }
            let (key, pem) = manager.issue(&cas.current)?;
            let resolver = Resolver::with_expiry_gauge(key, metrics.certificate_expiry.clone());
            tokio::spawn(manager.maintain(
                client.clone(),
                cas,
                resolver.clone(),
                pem,
                Some(webhook_config),
                every,
            ));
            Ok(resolver)
        }
    }
}

/// Whether the sidecar must be a regular container.
async fn legacy_sidecar_wanted(client: &kube::Client, mode: SidecarMode) -> bool {
    match mode {
        SidecarMode::Always => true,
        SidecarMode::Never => false,
        SidecarMode::Auto => match client.apiserver_version().await {
            Ok(v) => {
                let minor: u32 = v.minor.trim_end_matches('+').parse().unwrap_or(u32::MAX);
                v.major == "1" && minor < 28
            }
            Err(e) => {
                tracing::warn!(error = %e, "cannot read the API server version; assuming native sidecars");
                false
            }
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn value_enums_keep_their_spellings() {
        let a = Args::try_parse_from([
            "mvo",
            "--agent-pull-policy",
            "Always",
            "--legacy-sidecar",
            "always",
        ])
        .unwrap();
        assert_eq!(a.agent_pull_policy, PullPolicy::Always);
        assert_eq!(a.legacy_sidecar, SidecarMode::Always);
        let d = Args::try_parse_from(["mvo"]).unwrap();
        assert_eq!(d.agent_pull_policy.as_str(), "IfNotPresent");
        assert_eq!(d.legacy_sidecar, SidecarMode::Auto);
        assert!(Args::try_parse_from(["mvo", "--agent-pull-policy", "Sometimes"]).is_err());
        assert!(Args::try_parse_from(["mvo", "--legacy-sidecar", "maybe"]).is_err());
    }

    #[test]
    fn ca_timing_leaves_every_replica_time_to_move() {
        // Defaults pass, and so do the fast settings of tests.
        assert!(ca_timing(60, 31536000, 3600).is_ok());
        assert!(ca_timing(1, 90, 10).is_ok());
        let short = ca_timing(60, 31536000, 100).unwrap_err().to_string();
        assert!(short.contains("--ca-overlap 100 is too short"), "{short}");
        let life = ca_timing(1, 30, 10).unwrap_err().to_string();
        assert!(life.contains("--ca-lifetime 30 is too short"), "{life}");
    }
}
