//! Watch mode (`verify <method> ... --interval DURATION`): the continuous-validation agent.
//!
//! The process verifies the model, then again every interval (measured from the end of one
//! verification to the start of the next), re-reading the key or CA files, the signature and
//! the model each time (trust material from environment variables is read once, at start);
//! memory stays constant because every verification streams the files. It serves plain HTTP
//! with a few threads and no async runtime:
//!
//! - `/healthz`: 200 while the verification loop runs; 503 when one verification has been
//!   running longer than `--stuck-after` or the loop missed its wake-up.
//! - `/readyz` (and `/ready`): 200 while the **last** verification succeeded, 503 with its
//!   failure message otherwise; it follows every verification in both directions.
//! - `/metrics`: Prometheus text.
//!
//! SIGTERM and SIGINT end the process with exit code 0 (as PID 1 of a container, a process
//! without a handler would ignore SIGTERM and be killed after the grace period).
//!
//! Modules: [`verify_loop`] runs the verifications and logs them, [`http`] serves the
//! endpoints, [`metrics`] renders `/metrics`, and [`state`] is what the loop shares with the
//! endpoints.

mod http;
mod metrics;
mod state;
mod verify_loop;

pub use verify_loop::run;
