//! A real node beside the control plane: containerd 2, kubelet, kube-controller-manager and
//! kube-scheduler (built by `hack/testbin/build.sh --node`), runc and the CNI plugins from
//! Debian's packages, pods on a bridge of their own.
//!
//! The node runs the images it is given and two of its own, built here without a container
//! engine and imported into containerd (nothing is pulled): the sandbox image (Debian's static
//! `catatonit -P`) and [`BUSYBOX_IMAGE`] (Debian's `busybox-static`, with `sh`). Images and
//! image volumes can also be pulled from a test registry, whose CA
//! [`RealNode::trust_registry`] gives containerd. Everything lives in its own temp dir, cgroup
//! root and bridge, and [`cleanup`] removes all of it when the node is dropped or the test
//! process dies.

mod cleanup;
pub mod config;
mod footprint;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::Node;
use kube::api::Api;
use sha2::{Digest as _, Sha256};

use crate::Error;
use crate::control_plane::free_port;
use crate::image::{ImageSpec, build};
use crate::process::{self, Guard};
pub use config::PAUSE_IMAGE;
use config::{CNI_BIN_DIR, Layout, RUNC};
pub use footprint::host_footprint;
/// A tiny app image: busybox with `/bin/sh`, running as 65532 unless a pod says otherwise.
pub const BUSYBOX_IMAGE: &str = "localhost/mvo-test/busybox:v1";

/// Debian's static busybox, the app image's only binary.
const BUSYBOX: &str = "/bin/busybox";
/// Debian's static catatonit, the sandbox image's only binary (`-P`: pause).
const CATATONIT: &str = "/usr/bin/catatonit";

/// The programs a real node needs besides the testbin ones, and the Debian package of each.
fn host_programs() -> [(PathBuf, &'static str); 4] {
    [
        (RUNC.into(), "runc"),
        (
            Path::new(CNI_BIN_DIR).join("bridge"),
            "containernetworking-plugins",
        ),
        (BUSYBOX.into(), "busybox-static"),
        (CATATONIT.into(), "catatonit"),
    ]
}

/// What the control plane tells the node: how to reach it and its PKI files.
#[derive(Clone, Debug)]
pub struct ControlPlaneRef {
    /// The admin kubeconfig (kubelet, controller-manager and scheduler use it).
    pub kubeconfig: PathBuf,
    /// The cluster CA (kubelet's client CA, the controller-manager's root CA).
    pub ca_cert: PathBuf,
    /// The service-account signing key (the controller-manager's token controller).
    pub sa_key: PathBuf,
    /// Where the testbin binaries are.
    pub testbin: PathBuf,
    /// The API server's port on 127.0.0.1: pods reach it as the `kubernetes` Service
    /// (10.0.0.1:443) through the node's one NAT rule.
    pub apiserver_port: u16,
}

/// A running node; dropping it removes everything it left on the host.
pub struct RealNode {
    // Drop order: the clean-up (which kills what is still running) goes last.
    kubelet: Guard,
    scheduler: Guard,
    controller_manager: Guard,
    containerd: Guard,
    watchdog: Option<Guard>,
    layout: Layout,
    /// How long each start-up phase took.
    pub phases: Vec<(&'static str, Duration)>,
}

impl std::fmt::Debug for RealNode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RealNode")
            .field("layout", &self.layout)
            .finish_non_exhaustive()
    }
}

impl RealNode {
    /// Starts containerd (importing its own images and `images`, OCI archives), kubelet,
    /// kube-controller-manager and kube-scheduler, and waits until the node is Ready.
    pub async fn start(
        cp: &ControlPlaneRef,
        client: kube::Client,
        images: &[PathBuf],
    ) -> Result<RealNode, Error> {
        let mut phases = Vec::new();
        let mut clock = Instant::now();
        let mut lap = |name: &'static str, phases: &mut Vec<(&'static str, Duration)>| {
            phases.push((name, clock.elapsed()));
            clock = Instant::now();
        };
        check_programs(cp)?;
        let dir = tempfile::Builder::new()
            .prefix("mvo-node-")
            .tempdir()
            .map_err(Error::io("creating a temp dir for the node"))?
            .keep();
        let layout = layout_for(&dir)?;
        let script = dir.join("cleanup.sh");
        write(&script, &cleanup::script(&layout))?;
        // Runs the clean-up script when the test process dies (see [`cleanup`]).
        let watchdog = process::watchdog("node clean-up watchdog", r#"/bin/sh "$0""#, &script)?;
        // From here on a failure drops `node`, whose clean-up removes what was started.
        let mut node = RealNode {
            kubelet: Guard::none("kubelet"),
            scheduler: Guard::none("kube-scheduler"),
            controller_manager: Guard::none("kube-controller-manager"),
            containerd: Guard::none("containerd"),
            watchdog: Some(watchdog),
            layout,
            phases: Vec::new(),
        };
        let l = node.layout.clone();
        write(
            &l.containerd_dir().join("config.toml"),
            &config::containerd_toml(&l),
        )?;
        write(
            &l.cni_conf_dir().join("10-mvo.conflist"),
            &config::cni_conflist(&l),
        )?;
        // The bridge exists before kubelet starts (the CNI plugin reuses it): its address is
        // the node's InternalIP, where the API server reaches kubelet for logs and exec.
        let bridge = l.bridge();
        run("ip", &["link", "add", "name", &bridge, "type", "bridge"])?;
        run(
            "ip",
            &[
                "addr",
                "add",
                &format!("{}/24", l.gateway()),
                "dev",
                &bridge,
            ],
        )?;
        run("ip", &["link", "set", &bridge, "up"])?;
        // No kube-proxy: the one Service pods need before any other, `kubernetes`
        // (10.0.0.1:443, what in-cluster clients dial), is sent to the API server on loopback.
        // Loopback as a destination from a bridge needs route_localnet on that bridge.
        write(
            &PathBuf::from(format!("/proc/sys/net/ipv4/conf/{bridge}/route_localnet")),
            "1",
        )?;
        for rule in config::nat_rules(&l, cp.apiserver_port) {
            let args: Vec<&str> = rule.iter().map(String::as_str).collect();
            run("iptables", &args)?;
        }
        for hierarchy in cgroup_hierarchies() {
            let _ = std::fs::create_dir_all(hierarchy.join(l.cgroup_root()));
        }

        let mut cmd = process::tied_command(&cp.testbin.join("containerd"), "KILL");
        cmd.arg("--config")
            .arg(l.containerd_dir().join("config.toml"))
            .arg("--log-level=warn");
        node.containerd = Guard::start("containerd", cmd, &l.dir.join("containerd.log"))?;
        node.wait_for("containerd's socket", Duration::from_secs(30), || {
            l.containerd_socket().exists() && node_ctr(cp, &l, &["version"]).is_ok()
        })
        .await?;
        lap("containerd", &mut phases);

        let own = [
            own_image(&l, "pause", CATATONIT, &["-P"], &[], PAUSE_IMAGE)?,
            own_image(
                &l,
                "busybox",
                BUSYBOX,
                &[],
                &["/bin/sh", "/bin/sleep", "/bin/cat", "/bin/ls", "/bin/id"],
                BUSYBOX_IMAGE,
            )?,
        ];
        for archive in own.iter().chain(images) {
            node_ctr(
                cp,
                &l,
                &[
                    "images",
                    "import",
                    "--no-unpack=false",
                    &archive.display().to_string(),
                ],
            )
            .map_err(|e| node.not_ready("containerd", e))?;
        }
        lap("images imported", &mut phases);

        write(
            &l.dir.join("kubelet.yaml"),
            &config::kubelet_yaml(&l, &cp.ca_cert),
        )?;
        let mut cmd = process::tied_command(&cp.testbin.join("kubelet"), "KILL");
        cmd.arg(format!("--config={}", l.dir.join("kubelet.yaml").display()))
            .arg(format!("--kubeconfig={}", cp.kubeconfig.display()))
            .arg(format!("--root-dir={}", l.kubelet_dir().display()))
            .arg(format!(
                "--cert-dir={}",
                l.kubelet_dir().join("pki").display()
            ))
            .arg(format!("--hostname-override={}", l.node_name()))
            .arg(format!("--node-ip={}", l.gateway()))
            .arg("--v=1");
        node.kubelet = Guard::start("kubelet", cmd, &l.dir.join("kubelet.log"))?;

        let sa_key = format!("--service-account-private-key-file={}", cp.sa_key.display());
        let root_ca = format!("--root-ca-file={}", cp.ca_cert.display());
        node.controller_manager = start_component(
            cp,
            &l,
            "kube-controller-manager",
            &[&sa_key, &root_ca, "--use-service-account-credentials=false"],
        )?;
        node.scheduler = start_component(cp, &l, "kube-scheduler", &[])?;

        let nodes: Api<Node> = Api::all(client);
        let deadline = Instant::now() + Duration::from_secs(90);
        loop {
            node.check_running()?;
            if let Ok(n) = nodes.get(&l.node_name()).await
                && is_ready(&n)
            {
                break;
            }
            if Instant::now() > deadline {
                return Err(
                    node.not_ready("kubelet", "the node did not become Ready in 90 s".into())
                );
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        lap("kubelet Ready", &mut phases);
        node.phases = phases;
        Ok(node)
    }

    /// The node's name in the API.
    pub fn name(&self) -> String {
        self.layout.node_name()
    }

    /// The node's directory (its logs: `containerd.log`, `kubelet.log`, …).
    pub fn dir(&self) -> &Path {
        &self.layout.dir
    }

    /// The node's layout: bridge, cgroup root, subnet.
    pub fn layout(&self) -> &Layout {
        &self.layout
    }

    /// Makes containerd pull from the HTTPS registry at `host` (`127.0.0.1:PORT`, as in image
    /// references) trusting the CA in `ca_file` (e.g. [`crate::registry::Registry::ca_file`]):
    /// copies the CA into the node's directory and writes `certs.d/<host>/hosts.toml`, which
    /// containerd reads at each pull (no restart; calling it again replaces the CA). Image
    /// volumes and containers alike. Without it containerd still pulls from a loopback
    /// registry, but without verifying its certificate (its default for localhost hosts).
    pub fn trust_registry(&self, host: &str, ca_file: &Path) -> Result<(), Error> {
        let dir = self.layout.registry_config_dir().join(host);
        let ca = dir.join("ca.crt");
        let pem = std::fs::read_to_string(ca_file)
            .map_err(Error::io(format!("reading {}", ca_file.display())))?;
        write(&ca, &pem)?;
        write(
            &dir.join("hosts.toml"),
            &config::registry_hosts_toml(host, &ca),
        )
    }

    /// Process ids of containerd, kubelet, kube-controller-manager and kube-scheduler.
    pub fn pids(&self) -> [u32; 4] {
        [
            self.containerd.pid(),
            self.kubelet.pid(),
            self.controller_manager.pid(),
            self.scheduler.pid(),
        ]
    }

    /// Fails with the component's log when one of them has exited.
    fn check_running(&mut self) -> Result<(), Error> {
        let exited = [
            &mut self.containerd,
            &mut self.kubelet,
            &mut self.controller_manager,
            &mut self.scheduler,
        ]
        .into_iter()
        .find_map(|g| g.exited().map(|status| (g.name().to_string(), status)));
        match exited {
            Some((name, status)) => {
                Err(self.not_ready(&name, format!("{name} exited with {status}")))
            }
            None => Ok(()),
        }
    }

    async fn wait_for(
        &mut self,
        what: &str,
        timeout: Duration,
        mut ok: impl FnMut() -> bool,
    ) -> Result<(), Error> {
        let deadline = Instant::now() + timeout;
        loop {
            self.check_running()?;
            if ok() {
                return Ok(());
            }
            if Instant::now() > deadline {
                return Err(self.not_ready("containerd", format!("timed out waiting for {what}")));
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// An error carrying the end of `name`'s log, copied out of the node's directory (which
    /// the clean-up removes).
    fn not_ready(&self, name: &str, what: String) -> Error {
        let log = self.layout.dir.join(format!("{name}.log"));
        let keep_as = format!("mvo-node-{name}-{}.log", std::process::id());
        Error::not_ready(what, &log, 30, Some(keep_as))
    }

    /// Stops every component and removes all the node left: processes, mounts, cgroups,
    /// bridge, iptables chains, directory. Also what `Drop` does.
    pub fn remove(&mut self) {
        for g in [
            &mut self.kubelet,
            &mut self.scheduler,
            &mut self.controller_manager,
            &mut self.containerd,
        ] {
            g.kill();
        }
        let script = self.layout.dir.join("cleanup.sh");
        if script.exists() {
            let _ = Command::new("/bin/sh").arg(&script).status();
        }
        if let Some(mut w) = self.watchdog.take() {
            w.kill();
        }
    }
}

impl Drop for RealNode {
    fn drop(&mut self) {
        self.remove();
    }
}

fn is_ready(n: &Node) -> bool {
    n.status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .is_some_and(|c| c.iter().any(|c| c.type_ == "Ready" && c.status == "True"))
}

/// Every testbin and host program the node needs, or an error that says how to get it.
fn check_programs(cp: &ControlPlaneRef) -> Result<(), Error> {
    for name in [
        "containerd",
        "containerd-shim-runc-v2",
        "ctr",
        "kubelet",
        "kube-controller-manager",
        "kube-scheduler",
    ] {
        let path = cp.testbin.join(name);
        if !path.is_file() {
            return Err(Error::NodeProgramMissing {
                path,
                fix: "run `make testbin` (hack/testbin/build.sh --node)".into(),
            });
        }
    }
    for (path, package) in host_programs() {
        if !path.exists() {
            return Err(Error::NodeProgramMissing {
                path,
                fix: format!("install Debian's {package} (make test does: hack/debs.sh)"),
            });
        }
    }
    Ok(())
}

/// The node's layout: its id (6 hex digits of a hash of its directory's random name, so
/// bridge `mvo<id>`, cgroup root `mvo-node-<id>`, …), and a /24 in 10.200–249.x.0 that no
/// route of this host uses.
fn layout_for(dir: &Path) -> Result<Layout, Error> {
    let hash = Sha256::digest(dir.as_os_str().as_encoded_bytes());
    let id: String = hash[..3].iter().map(|b| format!("{b:02x}")).collect();
    let routes = Command::new("ip")
        .args(["-4", "route", "show"])
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
        .map_err(Error::io(
            "running `ip -4 route show` (Debian package iproute2)",
        ))?;
    let mut subnet = [200 + hash[3] % 50, hash[4]];
    while routes.contains(&format!("10.{}.{}.", subnet[0], subnet[1])) {
        subnet[1] = subnet[1].wrapping_add(1);
    }
    Ok(Layout {
        dir: dir.to_path_buf(),
        id,
        subnet,
        kubelet_ports: (free_port()?, free_port()?),
    })
}

fn cgroup_hierarchies() -> Vec<PathBuf> {
    std::fs::read_dir("/sys/fs/cgroup")
        .map(|d| {
            d.flatten()
                .map(|e| e.path())
                .filter(|p| p.join("tasks").exists())
                .collect()
        })
        .unwrap_or_default()
}

/// Starts kube-controller-manager or kube-scheduler: the admin kubeconfig for everything, no
/// leader election (one of each), its HTTPS port on a free loopback port, `args` besides.
fn start_component(
    cp: &ControlPlaneRef,
    l: &Layout,
    name: &str,
    args: &[&str],
) -> Result<Guard, Error> {
    let kubeconfig = cp.kubeconfig.display();
    let mut cmd = process::tied_command(&cp.testbin.join(name), "KILL");
    cmd.arg(format!("--kubeconfig={kubeconfig}"))
        .arg(format!("--authentication-kubeconfig={kubeconfig}"))
        .arg(format!("--authorization-kubeconfig={kubeconfig}"))
        .arg("--leader-elect=false")
        .arg("--bind-address=127.0.0.1")
        .arg(format!("--secure-port={}", free_port()?))
        .arg("--v=1")
        .args(args);
    Guard::start(name, cmd, &l.dir.join(format!("{name}.log")))
}

/// Builds one of the node's own images into its directory.
fn own_image(
    l: &Layout,
    name: &str,
    binary: &str,
    cmd: &[&str],
    links: &[&str],
    reference: &str,
) -> Result<PathBuf, Error> {
    let path = format!(
        "/usr/local/bin/{}",
        Path::new(binary)
            .file_name()
            .unwrap_or_default()
            .to_string_lossy()
    );
    let spec = ImageSpec {
        reference: reference.into(),
        binary: binary.into(),
        path,
        cmd: cmd.iter().map(|s| s.to_string()).collect(),
        links: links.iter().map(|s| s.to_string()).collect(),
        files: Vec::new(),
        labels: Default::default(),
        created: 0,
    };
    let out = l.dir.join("images").join(format!("{name}.tar"));
    build(&spec, &out).map_err(|e| Error::Io {
        context: format!("building the node's {name} image"),
        source: std::io::Error::other(format!("{e:#}")),
    })?;
    Ok(out)
}

/// Runs `program ARGS` (`ip`, `iptables`), failing with its message.
fn run(program: &str, args: &[&str]) -> Result<(), Error> {
    let mut cmd = Command::new(program);
    cmd.args(args);
    stdout_of(cmd).map(drop).map_err(|message| Error::Io {
        context: format!("{program} {}", args.join(" ")),
        source: std::io::Error::other(format!(
            "{message} (`{program}` comes from Debian's iproute2 or iptables)"
        )),
    })
}

/// Runs `ctr` against the node's containerd in the CRI namespace.
fn node_ctr(cp: &ControlPlaneRef, l: &Layout, args: &[&str]) -> Result<String, String> {
    let mut cmd = Command::new(cp.testbin.join("ctr"));
    cmd.arg("--address")
        .arg(l.containerd_socket())
        .args(["--namespace", "k8s.io"])
        .args(args);
    stdout_of(cmd).map_err(|message| format!("ctr {}: {message}", args.join(" ")))
}

/// The standard output of `cmd`, or why it could not run or failed (its standard error).
fn stdout_of(mut cmd: Command) -> Result<String, String> {
    let out = cmd.output().map_err(|e| e.to_string())?;
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    } else {
        Err(format!(
            "failed ({}): {}",
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}

fn write(path: &Path, text: &str) -> Result<(), Error> {
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent)
            .map_err(Error::io(format!("creating {}", parent.display())))?;
    }
    std::fs::write(path, text).map_err(Error::io(format!("writing {}", path.display())))
}
