//! The operator binary as a process.

use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::sync::Mutex;
use std::time::Duration;

use test_cluster::support::{free_port, http_get, metric, spawn_tied, wait_for};
use tokio::sync::OnceCell;

/// The agent image the tests inject; the pod runner maps it (any tag) to the built agent.
pub const AGENT_IMAGE: &str = "ghcr.io/model-validation-operator/model-signing:v0.1.0";

/// How an operator process is started.
#[derive(Debug, Clone)]
pub struct OperatorOptions {
    /// `--webhook-config`: the MutatingWebhookConfiguration it registers. Operators sharing a
    /// control plane need different names.
    pub webhook_config: String,
    /// `--namespace`: its own namespace, where pods are never injected.
    pub namespace: Option<String>,
    /// `POD_NAME`: its identity in leader election.
    pub pod_name: Option<String>,
    /// `--watch-port` for the continuous-validation sidecar.
    pub watch_port: Option<u16>,
    /// `--require-policy-trust`.
    pub require_policy_trust: bool,
    /// `--webhook-url`: where the API server calls the webhook (e.g. a [`super::Balancer`] in
    /// front of several replicas); by default this process's own webhook port.
    pub webhook_url: Option<String>,
    /// `--cache-stale-after` in seconds.
    pub cache_stale_after: Option<u64>,
    /// More arguments, appended last (e.g. `--cert-check-interval 1`).
    pub extra_args: Vec<String>,
}

/// The namespace label that puts a namespace in the reach of one test operator's cluster
/// policies: its value is the operator's webhook configuration name. Operators share a control
/// plane, so each one's webhook for cluster policies covers only the namespaces labelled for
/// it (`--cluster-policy-namespaces`), never another test's pods.
pub const CLUSTER_POLICY_NAMESPACE_LABEL: &str = "test.model-validation/operator";

impl OperatorOptions {
    /// Defaults for a webhook configuration named `webhook_config`.
    pub fn new(webhook_config: &str) -> Self {
        OperatorOptions {
            webhook_config: webhook_config.to_string(),
            namespace: None,
            pod_name: None,
            watch_port: None,
            require_policy_trust: false,
            webhook_url: None,
            cache_stale_after: None,
            extra_args: Vec::new(),
        }
    }
}

/// The operator binary running against a test control plane. Killed (SIGKILL) when dropped,
/// with [`Operator::kill`], or when the test process exits.
#[derive(Debug)]
pub struct Operator {
    child: Mutex<Option<Child>>,
    /// The port of /healthz, /readyz and /metrics.
    pub health: u16,
    /// The port of the webhook (HTTPS).
    pub webhook: u16,
    /// Its stderr.
    pub log: PathBuf,
}

impl Operator {
    /// Starts the operator and waits until /readyz answers 200.
    pub async fn start(kubeconfig: &Path, opts: OperatorOptions) -> Operator {
        let port = free_port();
        let health = free_port();
        // Replicas share a webhook configuration, and a restarted one keeps its name: a counter
        // keeps each process's log apart.
        static STARTED: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let nth = STARTED.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        let log = std::env::temp_dir().join(format!(
            "mvo-test-{}-{}{}.log",
            opts.webhook_config,
            std::process::id(),
            if nth == 0 {
                String::new()
            } else {
                format!("-{nth}")
            }
        ));
        let url = opts
            .webhook_url
            .clone()
            .unwrap_or_else(|| format!("https://127.0.0.1:{port}"));
        let stderr = std::fs::File::create(&log).expect("creating the operator log");
        let child = spawn_tied(
            Path::new(env!("CARGO_BIN_EXE_model-validation-operator")),
            |cmd| {
                cmd.env("KUBECONFIG", kubeconfig)
                    .env("RUST_LOG", "info,model_validation_operator=debug")
                    .args(["--install-crds", "--log-format", "text"])
                    .args(["--webhook-config", &opts.webhook_config])
                    .args(["--webhook-addr", &format!("127.0.0.1:{port}")])
                    .args(["--health-addr", &format!("127.0.0.1:{health}")])
                    .args(["--webhook-url", &url])
                    .args(["--agent-image", AGENT_IMAGE])
                    .args([
                        "--cluster-policy-namespaces",
                        &serde_json::json!({"matchLabels": {CLUSTER_POLICY_NAMESPACE_LABEL: opts.webhook_config}})
                            .to_string(),
                    ])
                    .stdin(Stdio::null())
                    .stdout(Stdio::null())
                    .stderr(stderr);
                if let Some(ns) = &opts.namespace {
                    cmd.args(["--namespace", ns]);
                }
                if let Some(id) = &opts.pod_name {
                    cmd.env("POD_NAME", id);
                }
                if opts.require_policy_trust {
                    cmd.arg("--require-policy-trust");
                }
                if let Some(watch) = opts.watch_port {
                    cmd.args(["--watch-port", &watch.to_string()]);
                }
                if let Some(bound) = opts.cache_stale_after {
                    cmd.args(["--cache-stale-after", &bound.to_string()]);
                }
                cmd.args(&opts.extra_args);
            },
        )
        .expect("starting the operator");
        let op = Operator {
            child: Mutex::new(Some(child)),
            health,
            webhook: port,
            log,
        };
        let what = format!(
            "operator {} to answer /readyz with 200 (log: {})",
            opts.webhook_config,
            op.log.display()
        );
        let this = &op;
        wait_for(&what, Duration::from_secs(30), || async move {
            if let Some(status) = this.exited() {
                panic!(
                    "the operator exited with {status}; see {}",
                    this.log.display()
                );
            }
            http_get(health, "/readyz")
                .is_some_and(|r| r.status == 200)
                .then_some(())
        })
        .await;
        op
    }

    /// The text of /metrics (empty when it does not answer).
    pub fn metrics(&self) -> String {
        http_get(self.health, "/metrics")
            .map(|r| r.body)
            .unwrap_or_default()
    }

    /// One sample of /metrics; `None` when it is not exposed (or nothing answered).
    pub fn metric(&self, sample: &str) -> Option<f64> {
        metric(&self.metrics(), sample)
    }

    /// The process id, while it runs.
    pub fn pid(&self) -> Option<u32> {
        self.lock().as_ref().map(Child::id)
    }

    /// Kills the process with SIGKILL (so a leader does not release its lease) and reaps it.
    pub fn kill(&self) {
        if let Some(mut child) = self.lock().take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    fn exited(&self) -> Option<std::process::ExitStatus> {
        self.lock()
            .as_mut()
            .and_then(|c| c.try_wait().ok().flatten())
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Option<Child>> {
        // A panic while holding the lock leaves the child as it was: still usable.
        self.child.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl Drop for Operator {
    fn drop(&mut self) {
        self.kill();
    }
}

/// One operator per test binary, on [`test_cluster::shared`], started on first use.
///
/// It lives in a static and so is never dropped: it dies with the test process through its
/// parent-death signal ([`spawn_tied`]). Tests keep apart by namespace. Its own namespace is
/// `mvo-system` and it registers the webhook configuration `mvo-shared`.
pub async fn shared_operator() -> &'static Operator {
    static SHARED: OnceCell<Operator> = OnceCell::const_new();
    SHARED
        .get_or_init(|| async {
            let cp = test_cluster::shared()
                .await
                .expect("the shared control plane");
            let mut opts = OperatorOptions::new("mvo-shared");
            opts.namespace = Some("mvo-system".into());
            Operator::start(cp.kubeconfig_path(), opts).await
        })
        .await
}
