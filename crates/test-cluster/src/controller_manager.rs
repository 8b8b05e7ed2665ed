//! kube-controller-manager beside a [`ControlPlane`], running only the controllers a test names.
//!
//! A control plane of [`ControlPlane::start`] is etcd and kube-apiserver alone: what
//! kube-controller-manager does on a real cluster does not happen there. Role aggregation is
//! one such thing: kube-apiserver creates the built-in `view`, `edit` and `admin` ClusterRoles
//! with an `aggregationRule` and no rules of their own, and only kube-controller-manager's
//! `clusterrole-aggregation` controller fills them from the ClusterRoles their labels select.
//! A test that proves what a tenant may do through those roles starts that one controller here
//! (a [`crate::node::RealNode`] runs the full set, but needs root, containerd and kubelet).

use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard};

use crate::control_plane::{ControlPlane, free_port};
use crate::process::{self, Guard};
use crate::{Error, testbin_dir};

/// The binary, in [`testbin_dir`] (built by `make testbin`).
const BINARY: &str = "kube-controller-manager";

/// A running kube-controller-manager; killed when dropped, and with the test process (it runs
/// under `setpriv --pdeathsig`, so it may also live in a `static`).
#[derive(Debug)]
pub struct ControllerManager {
    /// In a lock so that [`ControllerManager::running`] works through `&self` (a `static`).
    guard: Mutex<Guard>,
    log: PathBuf,
}

impl ControllerManager {
    /// Starts kube-controller-manager from [`testbin_dir`] against `cp` with only
    /// `controllers` enabled (its `--controllers` names, e.g. `clusterrole-aggregation`),
    /// acting with the admin credentials, without leader election, its HTTPS port on a free
    /// loopback port and its log in `cp`'s state directory.
    ///
    /// It returns once the process is started, not once the controllers have done anything:
    /// wait for the effect the test needs, calling [`ControllerManager::running`] meanwhile so
    /// that a crash fails the wait with the log instead of a timeout.
    pub fn start(cp: &ControlPlane, controllers: &[&str]) -> Result<ControllerManager, Error> {
        let binary = testbin_dir().join(BINARY);
        if !binary.is_file() {
            return Err(Error::BinaryMissing {
                name: BINARY,
                path: binary,
            });
        }
        let kubeconfig = cp.kubeconfig_path().display().to_string();
        let mut cmd = process::tied_command(&binary, "KILL");
        cmd.arg(format!("--kubeconfig={kubeconfig}"))
            // Its own HTTPS endpoint authenticates and authorizes callers through the API
            // server; without these it looks for an in-cluster configuration.
            .arg(format!("--authentication-kubeconfig={kubeconfig}"))
            .arg(format!("--authorization-kubeconfig={kubeconfig}"))
            .arg(format!("--controllers={}", controllers.join(",")))
            .arg("--leader-elect=false")
            .arg("--bind-address=127.0.0.1")
            .arg(format!("--secure-port={}", free_port()?))
            .arg("--v=1");
        let log = cp.state_dir().join(format!("{BINARY}.log"));
        let guard = Guard::start(BINARY, cmd, &log)?;
        Ok(ControllerManager {
            guard: Mutex::new(guard),
            log,
        })
    }

    /// `Ok` while the process runs; once it has exited, an error with the end of its log.
    pub fn running(&self) -> Result<(), Error> {
        match self.lock().exited() {
            None => Ok(()),
            Some(status) => Err(Error::not_ready(
                format!("{BINARY} exited with {status}"),
                &self.log,
                20,
                // The state dir of a shared control plane is removed at exit: keep a copy.
                Some(format!("mvo-{BINARY}-{}.log", std::process::id())),
            )),
        }
    }

    /// The process id.
    pub fn pid(&self) -> u32 {
        self.lock().pid()
    }

    /// Its log file (standard output and error).
    pub fn log(&self) -> &Path {
        &self.log
    }

    /// A panic while holding the lock leaves the guard as it was: still usable.
    fn lock(&self) -> MutexGuard<'_, Guard> {
        self.guard.lock().unwrap_or_else(|e| e.into_inner())
    }
}
