//! Helpers shared by the integration tests of every crate in this workspace, in the way
//! linkerd's `policy-test` crate serves its tests: one copy, used everywhere.
//!
//! - [`free_port`], [`http_get`], [`http_get_at`]: loopback networking without an HTTP client dependency;
//! - [`metric`]: one sample of a Prometheus text exposition, `None` when it is missing;
//! - [`wait_for`]: polling with a deadline that names what it waited for;
//! - [`fixtures`], [`fixture`], [`workspace_dir`]: where shared inputs are;
//! - [`update_requested`]: whether a drift test may rewrite the generated file it checks;
//! - [`agent_binary`]: the `model-signing` binary the pod runner will run, checked to be built
//!   from the current sources;
//! - [`is_alive`], [`processes_mentioning`]: what still runs, from /proc;
//! - [`registry_push`]: blobs, manifests and modelcar images written to a test registry by hand;
//! - [`spawn_tied`]: a child process that dies with the test process, also when the test
//!   binary exits holding it in a `static`.

mod net;
mod paths;
mod procs;
pub mod registry_push;
mod scrape;
mod wait;

pub(crate) use net::free_loopback_port;
pub use net::{HttpResponse, free_port, http_get, http_get_at};
pub use paths::{
    agent_binary, default_agent_path, fixture, fixtures, target_dir, update_requested,
    workspace_dir,
};
pub use procs::{is_alive, processes_mentioning};
pub use scrape::metric;
pub use wait::wait_for;

use std::process::{Child, Command};

/// Spawns `program` with `args` so that it is killed (SIGKILL) when this process exits, however
/// it exits: through `setpriv --pdeathsig`, forked from a thread that lives as long as the
/// process (see the crate's process docs). Configure stdio, env and more through `configure`.
pub fn spawn_tied(
    program: &std::path::Path,
    configure: impl FnOnce(&mut Command),
) -> std::io::Result<Child> {
    let mut cmd = crate::process::tied_command(program, "KILL");
    configure(&mut cmd);
    crate::process::spawn(cmd)
}
