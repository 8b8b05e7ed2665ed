//! `model-signing`: sign and verify ML models (OMS v1.0), compatible with the Python
//! `model-signing` 1.1.1 command. Also the verification agent of model-validation-operator.
#![forbid(unsafe_code)]

mod args;
mod cmd_inspect;
mod cmd_sign;
mod cmd_verify;
mod paths;
mod progress;
mod report;
mod watch;

use std::process::ExitCode;

use clap::Parser;

use args::{Cli, Command};

fn main() -> ExitCode {
    let argv = args::insert_default_method(std::env::args_os().collect());
    // clap prints usage errors and exits with 2, as click does for the peer.
    let cli = Cli::parse_from(argv);
    let jobs = cli
        .jobs
        .map(usize::from)
        .unwrap_or_else(model_signing::serialize::default_jobs);
    let show_progress = cli.output == args::Output::Text;
    if let Command::Verify(m) = &cli.command
        && let Some(interval) = m.common().watch.interval
    {
        return watch::run(m, cli.output, jobs, interval);
    }
    let (verb, result) = match &cli.command {
        Command::Sign(m) => (report::Verb::Sign, cmd_sign::sign(m, jobs, show_progress)),
        Command::Verify(m) => (
            report::Verb::Verify,
            cmd_verify::verify(m, jobs, show_progress),
        ),
        Command::Digest(a) => (
            report::Verb::Digest,
            cmd_sign::digest(a, jobs, show_progress),
        ),
        Command::Inspect(a) => (report::Verb::Inspect, cmd_inspect::inspect(a)),
    };
    report::emit(cli.output, verb, result)
}
