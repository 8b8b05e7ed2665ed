//! Starting, using and stopping one etcd + kube-apiserver pair.

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::{Namespace, ServiceAccount};
use kube::api::{Api, PostParams};
use kube::config::{KubeConfigOptions, Kubeconfig};
use tokio::sync::OnceCell;

use crate::binaries::Binaries;
use crate::node::{ControlPlaneRef as NodeControlPlane, RealNode};
use crate::pki::{Pki, write_file};
use crate::process::{self, Guard};
use crate::{Error, kubeconfig};

/// How a control plane is started.
#[derive(Debug, Clone)]
pub struct StartOptions {
    /// Where etcd and kube-apiserver are; default [`Binaries::locate`].
    pub binaries: Option<Binaries>,
    /// A directory to keep state in (PKI, etcd data, logs, kubeconfig). By
    /// default a fresh temp dir, removed on drop; a given directory is kept.
    pub state_dir: Option<PathBuf>,
    /// How long to wait for `/readyz`.
    pub ready_timeout: Duration,
    /// Also start a real node ([`RealNode`]: containerd, kubelet, controller-manager,
    /// scheduler) and let the API server reach webhooks through their Service's endpoints.
    pub real_node: bool,
    /// OCI image archives the real node imports besides its own (e.g. `make images` output).
    pub node_images: Vec<PathBuf>,
}

impl Default for StartOptions {
    fn default() -> Self {
        StartOptions {
            binaries: None,
            state_dir: None,
            ready_timeout: Duration::from_secs(90),
            real_node: false,
            node_images: Vec::new(),
        }
    }
}

/// A running etcd + kube-apiserver on loopback; stopped when dropped.
pub struct ControlPlane {
    /// The real node, if any: removed before the servers stop.
    node: Option<RealNode>,
    // Field order is drop order: the API server goes before its etcd. In a lock so that it
    // can be stopped and started again through `&self` (fault-injection tests).
    apiserver: Mutex<Guard>,
    /// How to start the API server again: its binary and arguments.
    apiserver_cmd: (PathBuf, Vec<OsString>),
    etcd: Mutex<Guard>,
    _watchdog: Option<Guard>,
    temp: Option<tempfile::TempDir>,
    dir: PathBuf,
    server: String,
    kubeconfig_path: PathBuf,
    config: kube::Config,
    ready_after: Duration,
}

impl std::fmt::Debug for ControlPlane {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ControlPlane")
            .field("server", &self.server)
            .field("dir", &self.dir)
            .finish_non_exhaustive()
    }
}

impl ControlPlane {
    /// Starts a control plane with default options and waits until it is ready.
    pub async fn start() -> Result<Self, Error> {
        Self::start_with(StartOptions::default()).await
    }

    /// Starts a control plane and waits until `/readyz` answers 200.
    ///
    /// A server that exits during start-up (most likely because another
    /// process took its port between our probe and its bind) is retried twice
    /// on new ports.
    pub async fn start_with(opts: StartOptions) -> Result<Self, Error> {
        let mut attempt = 1;
        loop {
            match Self::start_once(opts.clone()).await {
                Err(Error::NotReady { what, .. }) if what.contains("exited") && attempt < 3 => {
                    eprintln!("test-cluster: {what}; retrying on new ports");
                    attempt += 1;
                }
                other => return other,
            }
        }
    }

    async fn start_once(opts: StartOptions) -> Result<Self, Error> {
        crate::install_crypto_provider();
        let began = Instant::now();
        let binaries = match opts.binaries {
            Some(b) => b,
            None => Binaries::locate()?,
        };
        let (temp, dir, watchdog) = match opts.state_dir {
            Some(dir) => {
                std::fs::create_dir_all(&dir)
                    .map_err(Error::io(format!("creating {}", dir.display())))?;
                (None, dir, None)
            }
            None => {
                let temp = tempfile::Builder::new()
                    .prefix("mvo-control-plane-")
                    .tempdir()
                    .map_err(Error::io("creating a temp dir for the control plane"))?;
                let dir = temp.path().to_path_buf();
                let watchdog = process::dir_watchdog(&dir)?;
                (Some(temp), dir, Some(watchdog))
            }
        };

        let pki = Pki::generate()?;
        let files = pki.write(&dir.join("pki"))?;

        let etcd_port = free_port()?;
        let api_port = free_port()?;
        let etcd_url = format!("http://127.0.0.1:{etcd_port}");
        let server = format!("https://127.0.0.1:{api_port}");

        let etcd_data = dir.join("etcd");
        // A kept state dir is reused by `cluster-up`; start from scratch anyway
        // because the PKI is new each time.
        let _ = std::fs::remove_dir_all(&etcd_data);
        let mut cmd = process::tied_command(&binaries.etcd, "KILL");
        cmd.arg(format!("--data-dir={}", etcd_data.display()))
            .arg(format!("--listen-client-urls={etcd_url}"))
            .arg(format!("--advertise-client-urls={etcd_url}"))
            .arg("--listen-peer-urls=http://127.0.0.1:0")
            // Test data is thrown away: skipping fsync makes every write
            // (and so API server start-up) much faster.
            .arg("--unsafe-no-fsync")
            .arg("--log-level=warn");
        let etcd_log = dir.join("etcd.log");
        let etcd = Guard::start("etcd", cmd, &etcd_log)?;

        let mut apiserver_args: Vec<OsString> = [
            format!("--etcd-servers={etcd_url}"),
            format!("--cert-dir={}", dir.join("pki").display()),
            format!("--tls-cert-file={}", files.serving_cert.display()),
            format!("--tls-private-key-file={}", files.serving_key.display()),
            format!("--client-ca-file={}", files.ca_cert.display()),
            format!("--secure-port={api_port}"),
            "--bind-address=127.0.0.1".into(),
            "--advertise-address=127.0.0.1".into(),
            "--service-cluster-ip-range=10.0.0.0/24".into(),
            "--allow-privileged=true".into(),
            "--authorization-mode=RBAC".into(),
            format!("--service-account-issuer={server}/"),
            format!("--service-account-key-file={}", files.sa_public.display()),
            format!(
                "--service-account-signing-key-file={}",
                files.sa_private.display()
            ),
            "--v=1".into(),
        ]
        .into_iter()
        .map(OsString::from)
        .collect();
        if opts.real_node {
            // kube-controller-manager creates service accounts and endpoints; with no
            // kube-proxy, the API server calls a webhook's Service at its endpoints.
            apiserver_args.extend(
                [
                    "--enable-aggregator-routing=true".to_string(),
                    // The node's name resolves nowhere; its InternalIP is its bridge address.
                    "--kubelet-preferred-address-types=InternalIP".to_string(),
                    format!(
                        "--kubelet-client-certificate={}",
                        files.admin_cert.display()
                    ),
                    format!("--kubelet-client-key={}", files.admin_key.display()),
                ]
                .map(OsString::from),
            );
        } else {
            // No controller-manager creates service accounts here.
            apiserver_args.push("--disable-admission-plugins=ServiceAccount".into());
        }
        let apiserver_cmd = (binaries.kube_apiserver.clone(), apiserver_args);
        let apiserver = start_apiserver(&apiserver_cmd, &dir)?;

        let kubeconfig_text =
            kubeconfig::render(&server, &pki.ca_cert, &pki.admin_cert, &pki.admin_key);
        let kubeconfig_path = dir.join("kubeconfig");
        write_file(&kubeconfig_path, &kubeconfig_text, 0o600)?;
        let kc =
            Kubeconfig::from_yaml(&kubeconfig_text).map_err(|e| Error::Client(e.to_string()))?;
        let config = kube::Config::from_custom_kubeconfig(kc, &KubeConfigOptions::default())
            .await
            .map_err(|e| Error::Client(e.to_string()))?;

        let mut cp = ControlPlane {
            node: None,
            apiserver: Mutex::new(apiserver),
            apiserver_cmd,
            etcd: Mutex::new(etcd),
            _watchdog: watchdog,
            temp,
            dir,
            server,
            kubeconfig_path,
            config,
            ready_after: Duration::ZERO,
        };
        cp.wait_ready(began + opts.ready_timeout).await?;
        cp.ready_after = began.elapsed();
        if opts.real_node {
            let reference = NodeControlPlane {
                kubeconfig: cp.kubeconfig_path.clone(),
                ca_cert: files.ca_cert.clone(),
                sa_key: files.sa_private.clone(),
                apiserver_port: api_port,
                testbin: binaries
                    .kube_apiserver
                    .parent()
                    .map(Path::to_path_buf)
                    .unwrap_or_default(),
            };
            cp.node = Some(RealNode::start(&reference, cp.client()?, &opts.node_images).await?);
        }
        Ok(cp)
    }

    /// Waits until `/readyz` answers ok, failing early when a server exits.
    async fn wait_ready(&self, deadline: Instant) -> Result<(), Error> {
        let client = self.client()?;
        loop {
            let exited = [&self.etcd, &self.apiserver].into_iter().find_map(|g| {
                let mut g = lock(g);
                g.exited().map(|status| (g.name().to_string(), status))
            });
            if let Some((name, status)) = exited {
                return Err(self.not_ready(&name, format!("{name} exited with {status}")));
            }
            let req = http::Request::get("/readyz")
                .body(Vec::new())
                .expect("static request");
            if let Ok(body) = client.request_text(req).await
                && body.trim() == "ok"
            {
                return Ok(());
            }
            if Instant::now() > deadline {
                return Err(self.not_ready(
                    "kube-apiserver",
                    "kube-apiserver did not become ready in time".into(),
                ));
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    fn not_ready(&self, name: &str, what: String) -> Error {
        // A temp state dir is removed on drop: keep a copy of the log.
        let keep_as = self
            .temp
            .is_some()
            .then(|| format!("mvo-control-plane-{name}-{}.log", std::process::id()));
        Error::not_ready(what, &self.dir.join(format!("{name}.log")), 20, keep_as)
    }

    /// A new client for this control plane.
    ///
    /// A `kube::Client` keeps connections on the tokio runtime that first used
    /// it, so each test (each `#[tokio::test]` has its own runtime) should
    /// take its own client rather than share one.
    pub fn client(&self) -> Result<kube::Client, Error> {
        kube::Client::try_from(self.config.clone()).map_err(|e| Error::Client(e.to_string()))
    }

    /// The client configuration (server URL, CA, admin client certificate).
    pub fn config(&self) -> &kube::Config {
        &self.config
    }

    /// The kubeconfig file for this control plane (for `kubectl`, the demo).
    pub fn kubeconfig_path(&self) -> &Path {
        &self.kubeconfig_path
    }

    /// The API server's URL, `https://127.0.0.1:<port>`.
    pub fn server_url(&self) -> &str {
        &self.server
    }

    /// The directory holding the PKI, etcd data and both servers' logs.
    pub fn state_dir(&self) -> &Path {
        &self.dir
    }

    /// The real node, when started with [`StartOptions::real_node`].
    pub fn node(&self) -> Option<&RealNode> {
        self.node.as_ref()
    }

    /// How long [`ControlPlane::start`] took until `/readyz` answered ok.
    pub fn ready_after(&self) -> Duration {
        self.ready_after
    }

    /// Process ids of etcd and kube-apiserver.
    pub fn pids(&self) -> [u32; 2] {
        [lock(&self.etcd).pid(), self.apiserver_guard().pid()]
    }

    /// Stops kube-apiserver (SIGTERM, then SIGKILL after `grace`; blocks the calling thread for
    /// at most `grace`), leaving etcd and its data: clients see the API server go away, as in
    /// an upgrade or a crash. [`ControlPlane::start_apiserver`] brings it back. Stopping a
    /// stopped server does nothing.
    pub fn stop_apiserver(&self, grace: Duration) {
        self.apiserver_guard().terminate(grace);
    }

    /// Starts kube-apiserver again after [`ControlPlane::stop_apiserver`], on the same port
    /// with the same PKI (so existing clients and kubeconfigs keep working), and waits until
    /// `/readyz` answers ok or `timeout` passes. Starting a running server does nothing.
    pub async fn start_apiserver(&self, timeout: Duration) -> Result<(), Error> {
        let deadline = Instant::now() + timeout;
        {
            let mut guard = self.apiserver_guard();
            if guard.exited().is_none() && guard.pid() != 0 {
                return Ok(());
            }
            *guard = start_apiserver(&self.apiserver_cmd, &self.dir)?;
        }
        self.wait_ready(deadline).await
    }

    /// Restarts kube-apiserver: stops it (SIGTERM, `grace`), keeps it down for `down`, starts it
    /// again and waits until it is ready (up to `timeout`). Returns how long it was unavailable,
    /// from the stop to ready.
    pub async fn restart_apiserver(
        &self,
        grace: Duration,
        down: Duration,
        timeout: Duration,
    ) -> Result<Duration, Error> {
        let began = Instant::now();
        self.stop_apiserver(grace);
        tokio::time::sleep(down).await;
        self.start_apiserver(timeout).await?;
        Ok(began.elapsed())
    }

    fn apiserver_guard(&self) -> MutexGuard<'_, Guard> {
        lock(&self.apiserver)
    }

    /// Creates a namespace named `<prefix>-<unique suffix>` and returns its
    /// name; tests sharing one control plane keep apart this way.
    pub async fn create_namespace(&self, prefix: &str) -> Result<String, Error> {
        let ns: Namespace = serde_json::from_value(serde_json::json!({
            "metadata": { "generateName": format!("{prefix}-") }
        }))
        .expect("static namespace");
        let created = Api::<Namespace>::all(self.client()?)
            .create(&PostParams::default(), &ns)
            .await?;
        let name = created.metadata.name.unwrap_or_default();
        if self.node.is_some() {
            // With the ServiceAccount admission plugin on, a pod is refused until the
            // controller-manager has created the namespace's `default` service account.
            let accounts: Api<ServiceAccount> = Api::namespaced(self.client()?, &name);
            let deadline = Instant::now() + Duration::from_secs(30);
            while accounts.get_opt("default").await?.is_none() && Instant::now() < deadline {
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
        Ok(name)
    }

    /// Stops both servers (SIGTERM, then SIGKILL after `grace`) and removes a
    /// temp state dir. Dropping does the same without the grace period.
    pub fn stop(mut self, grace: Duration) {
        drop(self.node.take());
        self.apiserver_guard().terminate(grace);
        lock(&self.etcd).terminate(grace);
    }
}

impl Drop for ControlPlane {
    fn drop(&mut self) {
        // The node first: its kubelet and pods must not outlive the API server they talk to.
        drop(self.node.take());
        self.apiserver_guard().kill();
        lock(&self.etcd).kill();
        // `temp` removes the directory when it drops after this.
    }
}

/// One control plane per test binary, started on first use.
///
/// It is never dropped (it lives in a static); its servers die with the test
/// process through their parent-death signal, and a watchdog removes its temp
/// dir. Use separate namespaces per test.
pub async fn shared() -> Result<&'static ControlPlane, Error> {
    static SHARED: OnceCell<ControlPlane> = OnceCell::const_new();
    SHARED.get_or_try_init(ControlPlane::start).await
}

/// Locks a server's guard. A panic while holding the lock leaves the guard as it was: still
/// usable.
fn lock(guard: &Mutex<Guard>) -> MutexGuard<'_, Guard> {
    guard.lock().unwrap_or_else(|e| e.into_inner())
}

/// Starts kube-apiserver as `cmd` says, its output appended to `kube-apiserver.log` in `dir`.
fn start_apiserver(cmd: &(PathBuf, Vec<OsString>), dir: &Path) -> Result<Guard, Error> {
    let mut command = process::tied_command(&cmd.0, "KILL");
    command.args(&cmd.1);
    Guard::start("kube-apiserver", command, &dir.join("kube-apiserver.log"))
}

/// A free port on 127.0.0.1.
pub(crate) fn free_port() -> Result<u16, Error> {
    crate::support::free_loopback_port().map_err(Error::io("finding a free port"))
}
