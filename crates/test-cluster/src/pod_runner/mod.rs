//! A minimal kubelet: runs a Pod's containers as local processes.
//!
//! What it does, for what this project needs and no more:
//! - init containers run in order, each to completion; the first that fails
//!   stops the pod (phase `Failed` under `restartPolicy: Never`; otherwise the
//!   pod stays `Pending`, since nothing is restarted here);
//! - native sidecars (init containers with `restartPolicy: Always`) and then
//!   the main containers are started and left running until the pod is
//!   deleted ([`PodRun::until_deleted`]) or the [`PodRun`] is dropped;
//! - volumes: `hostPath` and `emptyDir`, seen at each `mountPath` as described
//!   in the sandbox docs ([`Isolation`]);
//! - images map to local binaries ([`ImageMap`]); a container with its own
//!   `command` runs that command on the host;
//! - statuses (state, exit code, reason, termination message, conditions,
//!   phase) go to the Pod's `status` subresource as a kubelet writes them.
//!
//! The pod is not bound to a node, so deleting it takes effect at once.

mod images;
mod sandbox;
mod status;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use k8s_openapi::api::core::v1::{Container, ContainerStatus, Pod, PodStatus};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::api::{Api, Patch, PatchParams};
use kube::runtime::watcher;

pub use images::{ImageMap, VERIFIER_IMAGE};
pub use sandbox::Isolation;
pub use status::Termination;

use crate::process::Guard;

/// At most this much of a termination message is kept, as in the kubelet.
const MAX_MESSAGE: usize = 4096;
/// Under `FallbackToLogsOnError`: the last lines/bytes of the log.
const FALLBACK_LINES: usize = 80;
const FALLBACK_BYTES: usize = 2048;

/// Errors of the pod runner itself (a failing container is not one).
#[derive(Debug, thiserror::Error)]
pub enum RunnerError {
    /// The API server refused a read or a status write.
    #[error("pod runner: API call for pod {pod} failed: {source}")]
    Kube {
        /// `namespace/name`.
        pod: String,
        /// The error.
        #[source]
        source: kube::Error,
    },
    /// A local file or directory could not be made.
    #[error("pod runner: {0}")]
    Io(String),
}

/// How the runner runs pods.
#[derive(Debug, Clone)]
pub struct RunnerConfig {
    /// Images to local binaries.
    pub images: ImageMap,
    /// Where per-pod run dirs (logs, termination messages, emptyDirs) go;
    /// `None` for a temp dir that is removed with the runner.
    pub work_dir: Option<PathBuf>,
    /// How containers see their volumes.
    pub isolation: Isolation,
}

impl Default for RunnerConfig {
    fn default() -> Self {
        RunnerConfig {
            images: ImageMap::from_env(),
            work_dir: None,
            isolation: Isolation::Auto,
        }
    }
}

/// Runs pods read from the API server as local processes.
#[derive(Clone)]
pub struct PodRunner {
    client: kube::Client,
    config: Arc<RunnerConfig>,
    work_dir: Arc<WorkDir>,
}

enum WorkDir {
    Temp(tempfile::TempDir),
    Given(PathBuf),
}

impl WorkDir {
    fn path(&self) -> &Path {
        match self {
            WorkDir::Temp(t) => t.path(),
            WorkDir::Given(p) => p,
        }
    }
}

impl PodRunner {
    /// A runner that talks to the API server through `client`.
    pub fn new(client: kube::Client, config: RunnerConfig) -> Result<Self, RunnerError> {
        let work_dir = match &config.work_dir {
            Some(dir) => {
                std::fs::create_dir_all(dir)
                    .map_err(|e| RunnerError::Io(format!("creating {}: {e}", dir.display())))?;
                WorkDir::Given(dir.clone())
            }
            None => WorkDir::Temp(
                tempfile::Builder::new()
                    .prefix("mvo-pod-runner-")
                    .tempdir()
                    .map_err(|e| RunnerError::Io(format!("creating a temp dir: {e}")))?,
            ),
        };
        Ok(PodRunner {
            client,
            config: Arc::new(config),
            work_dir: Arc::new(work_dir),
        })
    }

    /// Runs pod `namespace/name`: its init containers to completion, then
    /// starts sidecars and main containers. Returns once the init phase is
    /// over (successfully or not); long-running containers keep running.
    pub async fn run(&self, namespace: &str, name: &str) -> Result<PodRun, RunnerError> {
        let api = Api::<Pod>::namespaced(self.client.clone(), namespace);
        let pod_ref = format!("{namespace}/{name}");
        let kube_err = |source| RunnerError::Kube {
            pod: pod_ref.clone(),
            source,
        };
        let pod = api.get(name).await.map_err(kube_err)?;
        let uid = pod.metadata.uid.clone().unwrap_or_default();
        let spec = pod.spec.clone().unwrap_or_default();
        let run_dir = self
            .work_dir
            .path()
            .join(format!("{namespace}_{name}_{uid}"));
        std::fs::create_dir_all(&run_dir)
            .map_err(|e| RunnerError::Io(format!("creating {}: {e}", run_dir.display())))?;
        let claims = claim_paths(&self.client, namespace, &spec).await?;
        let volumes = volumes(&spec, &run_dir, &claims)?;

        let mut run = PodRun {
            api,
            pod_ref,
            name: name.to_string(),
            uid,
            restart_policy: spec
                .restart_policy
                .clone()
                .unwrap_or_else(|| "Always".into()),
            run_dir,
            init_containers: spec.init_containers.clone().unwrap_or_default(),
            containers: spec.containers.clone(),
            status: PodStatus {
                phase: Some("Pending".into()),
                start_time: Some(status::now()),
                host_ip: Some("127.0.0.1".into()),
                pod_ip: Some("127.0.0.1".into()),
                conditions: Some(vec![
                    status::condition("PodScheduled", true, None),
                    status::condition("Initialized", false, Some("ContainersNotInitialized")),
                    status::condition("ContainersReady", false, Some("ContainersNotReady")),
                    status::condition("Ready", false, Some("ContainersNotReady")),
                ]),
                ..Default::default()
            },
            init_outcomes: Vec::new(),
            long_running: Vec::new(),
            _work_dir: self.work_dir.clone(),
        };
        run.status.init_container_statuses = Some(
            run.init_containers
                .iter()
                .map(|c| status::waiting(&c.name, image(c), "PodInitializing", None))
                .collect(),
        );
        run.status.container_statuses = Some(
            run.containers
                .iter()
                .map(|c| status::waiting(&c.name, image(c), "PodInitializing", None))
                .collect(),
        );
        run.write_status().await?;

        for i in 0..run.init_containers.len() {
            let c = run.init_containers[i].clone();
            if c.restart_policy.as_deref() == Some("Always") {
                let st = self.start_long_running(&mut run, &c, &volumes, true);
                run.status
                    .init_container_statuses
                    .as_mut()
                    .expect("set above")[i] = st;
                run.write_status().await?;
                continue;
            }
            let started_at = status::now();
            let (pid, termination) = match sandbox::prepare(
                &c,
                name,
                &volumes,
                &self.config.images,
                &run.run_dir,
                self.config.isolation,
            ) {
                Err(message) => (None, start_error(message)),
                Ok(prepared) => match Guard::start(&c.name, prepared.command, &prepared.log_file) {
                    Err(e) => (None, start_error(e.to_string())),
                    Ok(guard) => {
                        let pid = guard.pid();
                        run.status
                            .init_container_statuses
                            .as_mut()
                            .expect("set above")[i] =
                            status::running(&c.name, image(&c), pid, &started_at, false);
                        run.write_status().await?;
                        let code = wait(guard).await;
                        let t =
                            termination(&c, code, &prepared.termination_file, &prepared.log_file);
                        // The mount points are released here, with `prepared`.
                        (Some(pid), t)
                    }
                },
            };
            let ok = termination.exit_code == 0;
            run.status
                .init_container_statuses
                .as_mut()
                .expect("set above")[i] = status::terminated(
                &c.name,
                image(&c),
                pid,
                &termination,
                &started_at,
                &status::now(),
            );
            run.init_outcomes.push((c.name.clone(), termination));
            if !ok {
                // Like a kubelet under restartPolicy Never: the pod has failed
                // and whatever still runs in it is stopped.
                if run.restart_policy == "Never" {
                    run.status.phase = Some("Failed".into());
                    run.stop_all();
                    run.mark_long_running_terminated();
                }
                run.write_status().await?;
                return Ok(run);
            }
            run.write_status().await?;
        }

        set_condition(&mut run.status, "Initialized", true, None);
        for i in 0..run.containers.len() {
            let c = run.containers[i].clone();
            let st = self.start_long_running(&mut run, &c, &volumes, false);
            run.status.container_statuses.as_mut().expect("set above")[i] = st;
        }
        let all_running = run
            .status
            .container_statuses
            .iter()
            .flatten()
            .all(|s| s.state.as_ref().is_some_and(|st| st.running.is_some()));
        if all_running {
            run.status.phase = Some("Running".into());
            set_condition(&mut run.status, "ContainersReady", true, None);
            set_condition(&mut run.status, "Ready", true, None);
        }
        run.write_status().await?;
        Ok(run)
    }

    /// Starts a sidecar or main container and returns its status.
    fn start_long_running(
        &self,
        run: &mut PodRun,
        c: &Container,
        volumes: &BTreeMap<String, PathBuf>,
        sidecar: bool,
    ) -> ContainerStatus {
        let started_at = status::now();
        let prepared = match sandbox::prepare(
            c,
            &run.name,
            volumes,
            &self.config.images,
            &run.run_dir,
            self.config.isolation,
        ) {
            Ok(p) => p,
            Err(message) => {
                return status::waiting(&c.name, image(c), "CreateContainerError", Some(message));
            }
        };
        match Guard::start(&c.name, prepared.command, &prepared.log_file) {
            Ok(guard) => {
                let st = status::running(&c.name, image(c), guard.pid(), &started_at, true);
                run.long_running.push(LongRunning {
                    container: c.clone(),
                    sidecar,
                    guard,
                    started_at,
                    termination_file: prepared.termination_file,
                    log_file: prepared.log_file,
                    _mount_points: prepared._mount_points,
                    done: false,
                });
                st
            }
            Err(e) => status::waiting(
                &c.name,
                image(c),
                "CreateContainerError",
                Some(e.to_string()),
            ),
        }
    }

    /// Runs every pod that appears (in `namespace`, or in all namespaces)
    /// until the stream of pods ends. Each pod runs once; deleting it stops
    /// its processes. This is what `test-cluster up` runs for the demo.
    pub async fn serve(self, namespace: Option<&str>) -> Result<(), RunnerError> {
        let api: Api<Pod> = match namespace {
            Some(ns) => Api::namespaced(self.client.clone(), ns),
            None => Api::all(self.client.clone()),
        };
        let mut seen = std::collections::HashSet::new();
        let mut events = watcher(api, watcher::Config::default()).boxed();
        while let Some(event) = events.next().await {
            let pod = match event {
                Ok(watcher::Event::Apply(pod) | watcher::Event::InitApply(pod)) => pod,
                Ok(_) => continue,
                Err(e) => {
                    eprintln!("pod runner: watch error (retrying): {e}");
                    tokio::time::sleep(Duration::from_secs(1)).await;
                    continue;
                }
            };
            let already_started = pod
                .status
                .as_ref()
                .and_then(|s| s.start_time.as_ref())
                .is_some();
            let uid = pod.metadata.uid.clone().unwrap_or_default();
            if already_started || pod.metadata.deletion_timestamp.is_some() || !seen.insert(uid) {
                continue;
            }
            let (ns, name) = (
                pod.metadata.namespace.clone().unwrap_or_default(),
                pod.metadata.name.clone().unwrap_or_default(),
            );
            let runner = self.clone();
            tokio::spawn(async move {
                match runner.run(&ns, &name).await {
                    Ok(run) => {
                        if let Err(e) = run.until_deleted().await {
                            eprintln!("{e}");
                        }
                    }
                    Err(e) => eprintln!("{e}"),
                }
            });
        }
        Ok(())
    }
}

/// A sidecar or main container left running.
struct LongRunning {
    container: Container,
    sidecar: bool,
    guard: Guard,
    started_at: Time,
    termination_file: PathBuf,
    log_file: PathBuf,
    _mount_points: Vec<sandbox::MountPointLease>,
    done: bool,
}

/// A pod this runner has started. Dropping it kills what still runs.
pub struct PodRun {
    api: Api<Pod>,
    pod_ref: String,
    name: String,
    uid: String,
    restart_policy: String,
    run_dir: PathBuf,
    init_containers: Vec<Container>,
    containers: Vec<Container>,
    status: PodStatus,
    init_outcomes: Vec<(String, Termination)>,
    long_running: Vec<LongRunning>,
    // Keeps the runner's work dir (logs, termination files, emptyDirs of
    // running containers) alive for as long as this pod runs, even if the
    // `PodRunner` itself is dropped.
    _work_dir: Arc<WorkDir>,
}

impl std::fmt::Debug for PodRun {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PodRun")
            .field("pod", &self.pod_ref)
            .field("phase", &self.status.phase)
            .field("init_outcomes", &self.init_outcomes)
            .finish_non_exhaustive()
    }
}

impl PodRun {
    /// The init containers that ran to completion, in order, with how they ended.
    pub fn init_outcomes(&self) -> &[(String, Termination)] {
        &self.init_outcomes
    }

    /// The phase last written to the API server.
    pub fn phase(&self) -> &str {
        self.status.phase.as_deref().unwrap_or_default()
    }

    /// Process ids of the sidecars and main containers still running.
    pub fn running_pids(&mut self) -> Vec<(String, u32)> {
        self.long_running
            .iter_mut()
            .filter_map(|lr| {
                (!lr.done && lr.guard.exited().is_none())
                    .then(|| (lr.container.name.clone(), lr.guard.pid()))
            })
            .collect()
    }

    /// What a container wrote to stdout and stderr.
    pub fn logs(&self, container: &str) -> String {
        std::fs::read_to_string(self.run_dir.join(format!("{container}.log"))).unwrap_or_default()
    }

    /// Keeps sidecars and main containers running, reporting any that exit,
    /// until the pod is deleted (or replaced); then stops them all.
    pub async fn until_deleted(mut self) -> Result<(), RunnerError> {
        loop {
            match self.api.get_opt(&self.name).await {
                Ok(Some(pod))
                    if pod.metadata.uid.as_deref() == Some(self.uid.as_str())
                        && pod.metadata.deletion_timestamp.is_none() => {}
                Ok(_) => {
                    self.stop_all();
                    return Ok(());
                }
                // The API server may be going away (cluster-down); keep trying.
                Err(_) => {}
            }
            if self.reap_exited() {
                // A failed write is retried with the next change.
                let _ = self.write_status().await;
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    }

    /// Stops every sidecar and main container now.
    pub fn stop_all(&mut self) {
        for lr in &mut self.long_running {
            lr.guard.terminate(Duration::from_secs(2));
        }
    }

    /// Records long-running containers that exited on their own.
    fn reap_exited(&mut self) -> bool {
        let mut changed = false;
        for idx in 0..self.long_running.len() {
            let lr = &mut self.long_running[idx];
            if lr.done {
                continue;
            }
            if let Some(exit) = lr.guard.exited() {
                lr.done = true;
                changed = true;
                let t = termination(
                    &lr.container,
                    exit_code(exit),
                    &lr.termination_file,
                    &lr.log_file,
                );
                let pid = lr.guard.pid();
                let st = status::terminated(
                    &lr.container.name,
                    image(&lr.container),
                    Some(pid),
                    &t,
                    &lr.started_at,
                    &status::now(),
                );
                let (name, sidecar) = (lr.container.name.clone(), lr.sidecar);
                self.replace_status(&name, sidecar, st);
            }
        }
        if changed {
            let main_done: Vec<bool> = self
                .long_running
                .iter()
                .filter(|lr| !lr.sidecar)
                .map(|lr| lr.done)
                .collect();
            if !main_done.is_empty()
                && main_done.iter().all(|d| *d)
                && self.restart_policy != "Always"
            {
                let all_ok = self.status.container_statuses.iter().flatten().all(|s| {
                    s.state
                        .as_ref()
                        .and_then(|st| st.terminated.as_ref())
                        .is_some_and(|t| t.exit_code == 0)
                });
                self.status.phase = Some(if all_ok { "Succeeded" } else { "Failed" }.into());
            }
            set_condition(
                &mut self.status,
                "ContainersReady",
                false,
                Some("ContainersNotReady"),
            );
            set_condition(&mut self.status, "Ready", false, Some("ContainersNotReady"));
        }
        changed
    }

    /// After a failed init container: sidecars were stopped, say so.
    fn mark_long_running_terminated(&mut self) {
        self.reap_exited();
    }

    fn replace_status(&mut self, name: &str, sidecar: bool, st: ContainerStatus) {
        let list = if sidecar {
            self.status.init_container_statuses.as_mut()
        } else {
            self.status.container_statuses.as_mut()
        };
        if let Some(slot) = list.into_iter().flatten().find(|s| s.name == name) {
            *slot = st;
        }
    }

    async fn write_status(&self) -> Result<(), RunnerError> {
        let patch = serde_json::json!({ "status": self.status });
        self.api
            .patch_status(&self.name, &PatchParams::default(), &Patch::Merge(&patch))
            .await
            .map(|_| ())
            .map_err(|source| RunnerError::Kube {
                pod: self.pod_ref.clone(),
                source,
            })
    }
}

impl Drop for PodRun {
    fn drop(&mut self) {
        for lr in &mut self.long_running {
            lr.guard.kill();
        }
    }
}

fn image(c: &Container) -> &str {
    c.image.as_deref().unwrap_or_default()
}

fn set_condition(status: &mut PodStatus, type_: &str, ok: bool, reason: Option<&str>) {
    if let Some(c) = status
        .conditions
        .iter_mut()
        .flatten()
        .find(|c| c.type_ == type_)
    {
        *c = status::condition(type_, ok, reason);
    }
}

/// Host paths behind the pod's PersistentVolumeClaims: claim -> bound PersistentVolume (by the
/// claim's `spec.volumeName`; there is no volume controller here) -> its `hostPath`. Claims
/// that are unbound or not on a hostPath volume are left out and reported when mounted.
async fn claim_paths(
    client: &kube::Client,
    namespace: &str,
    spec: &k8s_openapi::api::core::v1::PodSpec,
) -> Result<BTreeMap<String, PathBuf>, RunnerError> {
    use k8s_openapi::api::core::v1::{PersistentVolume, PersistentVolumeClaim};
    let mut map = BTreeMap::new();
    for v in spec.volumes.as_deref().unwrap_or_default() {
        let Some(pvc) = &v.persistent_volume_claim else {
            continue;
        };
        let claims: Api<PersistentVolumeClaim> = Api::namespaced(client.clone(), namespace);
        let Ok(Some(claim)) = claims.get_opt(&pvc.claim_name).await else {
            continue;
        };
        let Some(pv_name) = claim.spec.and_then(|s| s.volume_name) else {
            continue;
        };
        let Ok(Some(pv)) = Api::<PersistentVolume>::all(client.clone())
            .get_opt(&pv_name)
            .await
        else {
            continue;
        };
        if let Some(hp) = pv.spec.and_then(|s| s.host_path) {
            map.insert(v.name.clone(), PathBuf::from(hp.path));
        }
    }
    Ok(map)
}

/// Host paths for the pod's volumes: hostPath as is, emptyDir in the run dir,
/// persistentVolumeClaim through `claims`.
fn volumes(
    spec: &k8s_openapi::api::core::v1::PodSpec,
    run_dir: &Path,
    claims: &BTreeMap<String, PathBuf>,
) -> Result<BTreeMap<String, PathBuf>, RunnerError> {
    let mut map = BTreeMap::new();
    for v in spec.volumes.as_deref().unwrap_or_default() {
        if let Some(path) = claims.get(&v.name) {
            map.insert(v.name.clone(), path.clone());
        } else if let Some(hp) = &v.host_path {
            map.insert(v.name.clone(), PathBuf::from(&hp.path));
        } else if v.empty_dir.is_some() {
            let dir = run_dir.join("volumes").join(&v.name);
            std::fs::create_dir_all(&dir)
                .map_err(|e| RunnerError::Io(format!("creating {}: {e}", dir.display())))?;
            map.insert(v.name.clone(), dir);
        }
        // Other volume types are reported when a container mounts them.
    }
    Ok(map)
}

/// Waits for an init container without blocking the async runtime.
async fn wait(mut guard: Guard) -> i32 {
    loop {
        if let Some(status) = guard.exited() {
            return exit_code(status);
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// The exit code as a container runtime reports it: 128 + signal if killed.
fn exit_code(status: std::process::ExitStatus) -> i32 {
    use std::os::unix::process::ExitStatusExt;
    status
        .code()
        .or_else(|| status.signal().map(|s| 128 + s))
        .unwrap_or(128)
}

fn start_error(message: String) -> Termination {
    Termination {
        exit_code: 128,
        reason: "StartError".into(),
        message,
    }
}

/// Reason and message for an exited container, as the kubelet builds them.
fn termination(
    c: &Container,
    exit_code: i32,
    termination_file: &Path,
    log_file: &Path,
) -> Termination {
    let mut message = read_capped(termination_file, MAX_MESSAGE);
    if message.is_empty()
        && exit_code != 0
        && c.termination_message_policy.as_deref() == Some("FallbackToLogsOnError")
    {
        message = log_tail(log_file);
    }
    Termination {
        exit_code,
        reason: if exit_code == 0 { "Completed" } else { "Error" }.into(),
        message,
    }
}

fn read_capped(path: &Path, max: usize) -> String {
    let bytes = std::fs::read(path).unwrap_or_default();
    String::from_utf8_lossy(&bytes[..bytes.len().min(max)]).into_owned()
}

fn log_tail(path: &Path) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    let tail = lines[lines.len().saturating_sub(FALLBACK_LINES)..].join("\n");
    let start = tail.len().saturating_sub(FALLBACK_BYTES);
    let start = (start..tail.len())
        .find(|i| tail.is_char_boundary(*i))
        .unwrap_or(tail.len());
    tail[start..].to_string()
}
