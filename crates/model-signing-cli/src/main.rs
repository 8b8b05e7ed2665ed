//! `model-signing`: sign and verify ML models (OMS v1.0), compatible with the Python
//! `model-signing` 1.1.1 command. Also the verification agent of model-validation-operator.
//! Everything but argument parsing lives in the library ([`model_signing_cli::run`]).
#![forbid(unsafe_code)]
#![cfg_attr(not(test), warn(clippy::unwrap_used, clippy::expect_used))]

use std::process::ExitCode;

use clap::Parser;

use model_signing_cli::{Cli, insert_default_method};

fn main() -> ExitCode {
    let argv = insert_default_method(std::env::args_os().collect());
    // clap prints usage errors and exits with 2, as click does for the peer.
    let cli = Cli::parse_from(argv);
    model_signing_cli::init_logging(cli.log_level);
    model_signing_cli::run(cli)
}
