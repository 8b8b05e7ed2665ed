//! A real, local Kubernetes control plane for tests and the demo.
//!
//! [`ControlPlane::start`] runs etcd and kube-apiserver (built from Go modules by
//! `hack/testbin/build.sh`, cached per machine) on free loopback ports, with a
//! PKI generated here in Rust, and hands out a [`kube::Client`] and a kubeconfig.
//! Everything is torn down when the value is dropped, also when a test panics;
//! if the test process dies without unwinding, the kernel kills both servers
//! (they run under `setpriv --pdeathsig`) and a watchdog removes the temp dir.
//!
//! Tests in one test binary can share a single control plane with [`shared`]
//! and keep apart by namespace ([`ControlPlane::create_namespace`]).
//!
//! [`pod_runner`] is a minimal kubelet: it runs a Pod's init containers as
//! local processes and reports their statuses to the API server.
//!
//! [`support`] holds the helpers every integration test of the workspace shares (ports, HTTP,
//! metrics, polling, fixture and agent paths, processes tied to the test process).
//!
//! [`registry`] runs real OCI registries: go-containerregistry's with the referrers API, and
//! distribution v3 without it; either over TLS and behind basic auth if asked.
//!
//! [`controller_manager`] runs kube-controller-manager beside a control plane with only the
//! controllers a test names (e.g. `clusterrole-aggregation`, which fills the built-in
//! `view`/`edit`/`admin` roles).
//!
//! [`image`] builds the operator's and the agent's container images without a container
//! engine (`make images`), reproducibly.
//!
//! This crate is for development only (`publish = false`).

mod binaries;
mod control_plane;
pub mod controller_manager;
mod error;
pub mod image;
mod kubeconfig;
pub mod node;
mod pki;
pub mod pod_runner;
mod process;
pub mod registry;
pub mod support;

pub use binaries::{Binaries, K8S_VERSION, testbin_dir};
pub use control_plane::{ControlPlane, StartOptions, shared};
pub use error::Error;

/// Installs aws-lc-rs as the process-wide rustls crypto provider.
///
/// rustls panics when it has to pick a provider and finds none or two; every
/// entry point that builds TLS configs calls this first. Calling it again is a
/// no-op.
pub fn install_crypto_provider() {
    // An Err only means a provider is already installed, which is what we want.
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
}
