//! The `model-signing` command as a library: sign and verify ML models (OMS v1.0), compatible
//! with the Python `model-signing` 1.1.1 command; also the verification agent of
//! model-validation-operator.
//!
//! The binary is a thin `main` over [`run`]. The library exists so that the operator can parse
//! the arguments it gives the injected agent with the agent's real syntax:
//!
//! ```
//! use model_signing_cli::{Cli, Command, VerifyMethod, insert_default_method};
//! use clap::Parser;
//!
//! let argv = ["model-signing", "verify", "key", "/model", "--public_key", "k.pub", "--signature", "s"];
//! let cli = Cli::try_parse_from(insert_default_method(argv.iter().map(Into::into).collect()))
//!     .expect("valid arguments");
//! assert!(matches!(cli.command, Command::Verify(VerifyMethod::Key(_))));
//! ```
#![forbid(unsafe_code)]
#![cfg_attr(not(test), warn(clippy::unwrap_used, clippy::expect_used))]

mod args;
mod cmd_inspect;
mod cmd_oci;
mod cmd_sign;
mod cmd_verify;
mod duration;
mod fix;
mod material;
mod paths;
mod progress;
mod report;
mod selection;
mod watch;

use std::process::ExitCode;

pub use args::{
    CertificateSignerArgs, Cli, Command, CompletionsArgs, DigestArgs, FixHints, HashArg,
    HashingArgs, InspectArgs, LogLevel, ModelArgs, OciAttachArgs, OciCommand, OciPushArgs,
    OciSignCertificateArgs, OciSignCommon, OciSignKeyArgs, OciSignMethod, OciVerifyCertificateArgs,
    OciVerifyCommon, OciVerifyKeyArgs, OciVerifyMethod, Output, PrivateKeyArgs, RegistryArgs,
    SignCertificateArgs, SignCommon, SignKeyArgs, SignMethod, SignSigstoreArgs,
    SigstoreIdentityArgs, VerifyCertificateArgs, VerifyCommon, VerifyKeyArgs, VerifyMethod,
    VerifySigstoreArgs, WatchArgs, insert_default_method,
};

/// Runs the parsed command: prints its result (text or JSON) and returns the exit code
/// (0 success, 1 failure). Watch mode (`verify ... --interval`) returns only on a signal.
pub fn run(cli: Cli) -> ExitCode {
    let jobs = cli
        .jobs
        .map(usize::from)
        .unwrap_or_else(model_signing::serialize::default_jobs);
    let show_progress = cli.output == Output::Text;
    if let Command::Verify(m) = &cli.command
        && let Some(interval) = m.common().watch.interval
    {
        return watch::run(m, cli.output, jobs, interval);
    }
    let hints = match &cli.command {
        Command::Verify(m) => m.common().fix_hints,
        _ => FixHints::Cli,
    };
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
        Command::Oci(OciCommand::Push(a)) => {
            (report::Verb::Push, cmd_oci::push(a, jobs, show_progress))
        }
        Command::Oci(OciCommand::Sign(m)) => (report::Verb::Sign, cmd_oci::sign(m)),
        Command::Oci(OciCommand::Verify(m)) => (report::Verb::Verify, cmd_oci::verify(m)),
        Command::Oci(OciCommand::Attach(a)) => (report::Verb::Attach, cmd_oci::attach(a)),
        Command::Completions(a) => return print_completions(a.shell),
        Command::Man => return print_man(),
    };
    let code = report::emit(cli.output, verb, hints, result);
    match &cli.command {
        // The failure is reported above; the caller asked not to be stopped by it.
        Command::Verify(m) if m.common().report_only => ExitCode::SUCCESS,
        _ => code,
    }
}

/// Sends diagnostics (`tracing` events at `level` and above) to stderr, so that results on
/// stdout stay as they are. Does nothing if the process already has a subscriber.
///
/// Only this tool's own events show below `debug`: a library's (rustls refusing a certificate,
/// say) is what our own message already reports, in terms of the flag that fixes it, and would
/// otherwise come first on stderr. From `debug` on, everything shows.
pub fn init_logging(level: LogLevel) {
    use tracing_subscriber::filter::{LevelFilter, Targets};
    use tracing_subscriber::prelude::*;
    let ours = level.filter();
    let others = if ours >= LevelFilter::DEBUG {
        ours
    } else {
        LevelFilter::OFF
    };
    let filter = Targets::new()
        .with_default(others)
        .with_target("model_signing", ours)
        .with_target("model_signing_cli", ours);
    let _ = tracing_subscriber::registry()
        .with(
            tracing_subscriber::fmt::layer()
                .with_writer(std::io::stderr)
                .with_filter(filter),
        )
        .try_init();
}

/// `completions SHELL`: the completion script of `shell` on stdout.
fn print_completions(shell: clap_complete::Shell) -> ExitCode {
    use clap::CommandFactory;
    let mut cmd = Cli::command();
    let mut out = Vec::new();
    clap_complete::generate(shell, &mut cmd, "model-signing", &mut out);
    write_stdout(&out)
}

/// `man`: the manual page (roff) on stdout.
fn print_man() -> ExitCode {
    use clap::CommandFactory;
    let mut out = Vec::new();
    if let Err(e) = clap_mangen::Man::new(Cli::command()).render(&mut out) {
        eprintln!("error: cannot render the manual page: {e}");
        return ExitCode::FAILURE;
    }
    write_stdout(&out)
}

fn write_stdout(bytes: &[u8]) -> ExitCode {
    use std::io::Write;
    let mut stdout = std::io::stdout().lock();
    match stdout.write_all(bytes).and_then(|()| stdout.flush()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: cannot write to stdout: {e}");
            ExitCode::FAILURE
        }
    }
}
