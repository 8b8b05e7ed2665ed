//! Durations as the verification agent reads them: `--interval` and `--stuck-after` (the
//! operator writes a ModelValidation's `continuousValidation.interval` there), through the
//! agent's real argument parser. Whatever is accepted lies between 1 s and 366 days.
#![no_main]

use std::time::Duration;

use clap::Parser as _;
use libfuzzer_sys::fuzz_target;
use model_signing_cli::{Cli, Command};

/// A key verification the watch flags attach to.
const VERIFY: [&str; 8] = [
    "model-signing",
    "verify",
    "key",
    "/model",
    "--public_key",
    "k.pub",
    "--signature",
    "s.sig",
];

const MAX: Duration = Duration::from_secs(366 * 24 * 3600);

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let flags = [
        format!("--interval={text}"),
        format!("--stuck-after={text}"),
    ];
    let argv = VERIFY.iter().map(|a| a.to_string()).chain(flags);
    if let Ok(cli) = Cli::try_parse_from(argv)
        && let Command::Verify(m) = &cli.command
    {
        let w = &m.common().watch;
        for d in [w.interval, w.stuck_after].into_iter().flatten() {
            assert!(
                d >= Duration::from_secs(1) && d <= MAX,
                "{text:?} gave {d:?}"
            );
        }
        assert_eq!(w.interval, w.stuck_after);
    }
});
