//! `test-cluster`: a long-lived local control plane for the demo and for
//! poking around with kubectl (`make cluster-up` / `make cluster-down`).
//!
//! `up` starts `serve` in the background (its own session, so it outlives the
//! shell) and returns once the API server is ready; `down` stops it. `serve`
//! runs etcd, kube-apiserver and the pod runner in the foreground until SIGTERM.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use clap::{Parser, Subcommand};
use test_cluster::pod_runner::{PodRunner, RunnerConfig};
use test_cluster::{ControlPlane, StartOptions};

#[derive(Parser)]
#[command(
    about = "A local Kubernetes control plane (etcd + kube-apiserver) for tests and the demo"
)]
struct Cli {
    #[command(subcommand)]
    command: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Start the control plane in the background and print its kubeconfig path.
    Up(Args),
    /// Stop a control plane started with `up`.
    Down(Args),
    /// Run the control plane in the foreground until SIGTERM or Ctrl-C.
    Serve(Args),
    /// Build a container image of one binary, without a container engine: an OCI layout in a
    /// tar archive that `docker load`, `podman load`, `skopeo` and `ctr images import` read.
    /// Prints the manifest digest.
    ///
    /// Example: test-cluster image --binary target/release/model-signing
    ///   --path /usr/local/bin/model-signing
    ///   --reference ghcr.io/model-validation-operator/model-signing:v0.1.0
    ///   --label org.opencontainers.image.version=0.1.0 --out target/images/agent.tar
    Image(ImageArgs),
}

#[derive(clap::Args)]
struct ImageArgs {
    /// The binary to put in the image.
    #[arg(long)]
    binary: PathBuf,
    /// Its path in the image, also the entrypoint.
    #[arg(long)]
    path: String,
    /// A default argument of the entrypoint, the image's `Cmd` (repeatable).
    #[arg(long = "cmd", allow_hyphen_values = true)]
    cmd: Vec<String>,
    /// A path in the image to make a symlink to the binary (repeatable; for busybox's applets).
    #[arg(long = "link")]
    links: Vec<String>,
    /// A further file, HOST_PATH:IMAGE_PATH, root-owned 0644 (repeatable; e.g. a CA bundle).
    #[arg(long = "file", value_parser = parse_file)]
    files: Vec<(PathBuf, String)>,
    /// The reference to tag it with (registry/repository:tag).
    #[arg(long)]
    reference: String,
    /// An image label, KEY=VALUE (repeatable).
    #[arg(long = "label", value_parser = parse_label)]
    labels: Vec<(String, String)>,
    /// Seconds since the epoch written as the image's creation time.
    #[arg(long, env = "SOURCE_DATE_EPOCH", default_value_t = 0)]
    source_date_epoch: u64,
    /// Where to write the archive.
    #[arg(long)]
    out: PathBuf,
}

fn parse_label(text: &str) -> Result<(String, String), String> {
    text.split_once('=')
        .filter(|(k, _)| !k.is_empty())
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .ok_or_else(|| format!("expected KEY=VALUE, got {text:?}"))
}

#[derive(clap::Args)]
struct Args {
    /// State directory: kubeconfig, pid file, logs, etcd data.
    #[arg(long, default_value_os_t = default_dir())]
    dir: PathBuf,
    /// Do not run pods (by default every new pod is run by the pod runner).
    #[arg(long)]
    no_pod_runner: bool,
    /// Who runs pods: `runner` (the pod runner, a minimal kubelet of local processes) or
    /// `real` (containerd, kubelet, controller-manager and scheduler; root, Linux).
    #[arg(long, value_enum, default_value_t = NodeKind::Runner)]
    node: NodeKind,
    /// An OCI image archive the real node imports into containerd (repeatable), e.g. the
    /// operator and agent images from `make images`.
    #[arg(long = "image")]
    images: Vec<PathBuf>,
    /// Seconds to wait for the control plane to become ready.
    #[arg(long, default_value_t = 120)]
    timeout: u64,
}

/// Who runs the cluster's pods.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
enum NodeKind {
    /// The pod runner.
    Runner,
    /// A real node.
    Real,
}

fn default_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target"))
        .join("local-cluster")
}

fn main() -> Result<()> {
    let cli = Cli::parse();
    match cli.command {
        Cmd::Up(args) => up(&args),
        Cmd::Down(args) => down(&args),
        Cmd::Serve(args) => tokio::runtime::Runtime::new()?.block_on(serve(args)),
        Cmd::Image(args) => image(args),
    }
}

/// `HOST_PATH:IMAGE_PATH`, the image path absolute.
fn parse_file(text: &str) -> Result<(PathBuf, String), String> {
    match text.split_once(':') {
        Some((host, image)) if !host.is_empty() && image.starts_with('/') => {
            Ok((PathBuf::from(host), image.to_string()))
        }
        _ => Err(format!(
            "{text:?} is not HOST_PATH:IMAGE_PATH with an absolute IMAGE_PATH"
        )),
    }
}

fn image(args: ImageArgs) -> Result<()> {
    let spec = test_cluster::image::ImageSpec {
        reference: args.reference,
        binary: args.binary,
        path: args.path,
        cmd: args.cmd,
        links: args.links,
        files: args.files,
        labels: args.labels.into_iter().collect(),
        created: args.source_date_epoch,
    };
    let built = test_cluster::image::build(&spec, &args.out)
        .with_context(|| format!("cannot build the image {}", spec.reference))?;
    println!("{} {} {}", built.digest, spec.reference, args.out.display());
    Ok(())
}

fn pid_file(dir: &Path) -> PathBuf {
    dir.join("test-cluster.pid")
}

fn ready_file(dir: &Path) -> PathBuf {
    dir.join("ready")
}

/// The pid of a running `serve` for `dir`, if any.
fn running_pid(dir: &Path) -> Option<i32> {
    let pid: i32 = std::fs::read_to_string(pid_file(dir))
        .ok()?
        .trim()
        .parse()
        .ok()?;
    let alive = std::fs::read_to_string(format!("/proc/{pid}/cmdline"))
        .is_ok_and(|c| c.contains("test-cluster") && c.contains("serve"));
    alive.then_some(pid)
}

fn up(args: &Args) -> Result<()> {
    let dir = &args.dir;
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let dir = dir.canonicalize()?;
    let kubeconfig = dir.join("kubeconfig");
    if running_pid(&dir).is_some() && ready_file(&dir).exists() {
        println!(
            "local control plane already running; kubeconfig: {}",
            kubeconfig.display()
        );
        return Ok(());
    }
    let _ = std::fs::remove_file(ready_file(&dir));
    let log_path = dir.join("test-cluster.log");
    let log = std::fs::File::create(&log_path)?;
    let mut cmd = Command::new("setsid");
    cmd.arg(std::env::current_exe()?)
        .arg("serve")
        .arg("--dir")
        .arg(&dir)
        .arg("--timeout")
        .arg(args.timeout.to_string());
    if args.no_pod_runner {
        cmd.arg("--no-pod-runner");
    }
    if args.node == NodeKind::Real {
        cmd.args(["--node", "real"]);
    }
    for image in &args.images {
        cmd.arg("--image")
            .arg(image.canonicalize().with_context(|| {
                format!(
                    "the image archive {} (build it with `make images`)",
                    image.display()
                )
            })?);
    }
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(log.try_clone()?)
        .stderr(log)
        .spawn()
        .context("starting `test-cluster serve` (is `setsid` from util-linux installed?)")?;
    let deadline = Instant::now() + Duration::from_secs(args.timeout + 5);
    while !ready_file(&dir).exists() {
        if let Some(status) = child.try_wait()? {
            bail!(
                "the control plane exited ({status}) before it was ready; its log:\n{}",
                std::fs::read_to_string(&log_path).unwrap_or_default()
            );
        }
        if Instant::now() > deadline {
            bail!(
                "the control plane was not ready in time; see {}",
                log_path.display()
            );
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    println!(
        "local control plane is up; kubeconfig: {}",
        kubeconfig.display()
    );
    println!("  export KUBECONFIG={}", kubeconfig.display());
    println!("  stop it with: make cluster-down");
    Ok(())
}

fn down(args: &Args) -> Result<()> {
    let Some(pid) = running_pid(&args.dir) else {
        println!("no local control plane running for {}", args.dir.display());
        let _ = std::fs::remove_file(pid_file(&args.dir));
        return Ok(());
    };
    let target = rustix::process::Pid::from_raw(pid).context("bad pid in the pid file")?;
    rustix::process::kill_process(target, rustix::process::Signal::TERM)
        .with_context(|| format!("signalling process {pid}"))?;
    let deadline = Instant::now() + Duration::from_secs(30);
    while Path::new(&format!("/proc/{pid}")).exists() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    if Path::new(&format!("/proc/{pid}")).exists() {
        let _ = rustix::process::kill_process(target, rustix::process::Signal::KILL);
    }
    println!("local control plane stopped");
    Ok(())
}

async fn serve(args: Args) -> Result<()> {
    std::fs::create_dir_all(&args.dir)?;
    std::fs::write(pid_file(&args.dir), std::process::id().to_string())?;
    let cp = ControlPlane::start_with(StartOptions {
        state_dir: Some(args.dir.join("state")),
        ready_timeout: Duration::from_secs(args.timeout),
        real_node: args.node == NodeKind::Real,
        node_images: args.images.clone(),
        ..Default::default()
    })
    .await?;
    if let Some(node) = cp.node() {
        eprintln!(
            "real node {} ready (its logs in {}); start-up: {}",
            node.name(),
            node.dir().display(),
            node.phases
                .iter()
                .map(|(p, d)| format!("{p} {:.1} s", d.as_secs_f64()))
                .collect::<Vec<_>>()
                .join(", ")
        );
    }
    // A stable path for users, whatever the state layout.
    std::fs::copy(cp.kubeconfig_path(), args.dir.join("kubeconfig"))?;
    eprintln!(
        "ready after {:.1} s at {}; kubeconfig {}",
        cp.ready_after().as_secs_f64(),
        cp.server_url(),
        args.dir.join("kubeconfig").display()
    );
    if !args.no_pod_runner && args.node == NodeKind::Runner {
        let runner = PodRunner::new(
            cp.client()?,
            RunnerConfig {
                work_dir: Some(args.dir.join("pods")),
                ..Default::default()
            },
        )?;
        tokio::spawn(async move {
            if let Err(e) = runner.serve(None).await {
                eprintln!("pod runner stopped: {e}");
            }
        });
    }
    std::fs::write(ready_file(&args.dir), b"")?;

    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    tokio::select! {
        _ = term.recv() => {}
        _ = tokio::signal::ctrl_c() => {}
    }
    eprintln!("stopping");
    let _ = std::fs::remove_file(ready_file(&args.dir));
    let _ = std::fs::remove_file(pid_file(&args.dir));
    cp.stop(Duration::from_secs(2));
    Ok(())
}
