//! `model-validation-operator`: serves the pod admission webhook that injects model
//! verification, with its own TLS, against the cluster in the kubeconfig or in-cluster config.
#![forbid(unsafe_code)]
#![cfg_attr(not(test), warn(clippy::unwrap_used, clippy::expect_used))]

mod args;

use clap::Parser;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    args::Args::parse().run().await
}
