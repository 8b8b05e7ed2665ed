//! Property tests of the duration parser behind `--interval` and `--stuck-after`, through the
//! agent's real argument parser (the operator writes a ModelValidation's
//! `continuousValidation.interval` there): it never panics, what it accepts is within bounds,
//! written durations read back exactly, and every interval the CRD admits is accepted.

use std::time::Duration;

use clap::Parser as _;
use model_signing_cli::{Cli, Command};
use proptest::prelude::*;

/// The longest duration the agent accepts (366 days).
const MAX: Duration = Duration::from_secs(366 * 24 * 3600);

/// What the agent makes of `text` as `--interval` and as `--stuck-after`; both must agree.
fn parse(text: &str) -> Result<Duration, String> {
    let argv = [
        "model-signing".to_string(),
        "verify".into(),
        "key".into(),
        "/model".into(),
        "--public_key".into(),
        "k.pub".into(),
        "--signature".into(),
        "s.sig".into(),
        format!("--interval={text}"),
        format!("--stuck-after={text}"),
    ];
    let cli = Cli::try_parse_from(argv).map_err(|e| e.to_string())?;
    let Command::Verify(m) = &cli.command else {
        panic!("verify parsed as another command");
    };
    let w = &m.common().watch;
    assert_eq!(w.interval, w.stuck_after, "{text:?}");
    Ok(w.interval.expect("--interval was given"))
}

/// A Go duration (what Kubernetes' CEL `duration()` accepts) between 1 minute and 8,060 hours,
/// with the value Go gives it: a first part of whole minutes or hours, then up to three parts
/// in any unit, each with optional leading zeros and fraction.
fn go_duration() -> impl Strategy<Value = (String, Duration)> {
    let unit = prop::sample::select(vec![
        ("h", 3_600_000_000_000u128),
        ("m", 60_000_000_000),
        ("s", 1_000_000_000),
        ("ms", 1_000_000),
        ("us", 1_000),
        ("µs", 1_000),
        ("μs", 1_000),
        ("ns", 1),
    ]);
    let big = prop::sample::select(vec![("h", 3_600_000_000_000u128), ("m", 60_000_000_000)]);
    let first = (1u64..8000, big, prop::option::of("[0-9]{1,12}"), 0usize..3);
    let rest = (0u64..60, unit, prop::option::of("[0-9]{1,12}"), 0usize..3);
    (
        prop::option::of(Just("+")),
        first,
        prop::collection::vec(rest, 0..3),
    )
        .prop_map(|(sign, first, rest)| {
            let mut text = sign.unwrap_or_default().to_string();
            let mut nanos = 0u128;
            for (whole, (unit, scale), frac, zeros) in std::iter::once(first).chain(rest) {
                text.push_str(&"0".repeat(zeros));
                text.push_str(&whole.to_string());
                nanos += u128::from(whole) * scale;
                if let Some(f) = frac {
                    text.push('.');
                    text.push_str(&f);
                    let digits = u32::try_from(f.len()).unwrap();
                    nanos += f.parse::<u128>().unwrap() * scale / 10u128.pow(digits);
                }
                text.push_str(unit);
            }
            (text, Duration::from_nanos(u64::try_from(nanos).unwrap()))
        })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 1000, ..ProptestConfig::default() })]

    #[test]
    fn never_panics_and_accepts_only_bounded_durations(text in "\\PC{0,24}") {
        if let Ok(d) = parse(&text) {
            prop_assert!(d >= Duration::from_secs(1) && d <= MAX, "{text:?} gave {d:?}");
        }
    }

    #[test]
    fn duration_shaped_noise_never_panics(text in "[0-9.hmsuµμn+ -]{0,16}") {
        if let Ok(d) = parse(&text) {
            prop_assert!(d >= Duration::from_secs(1) && d <= MAX, "{text:?} gave {d:?}");
        }
    }

    /// Written as `XhYmZs` (the form `fmt_duration` logs and Go prints), every duration from
    /// 1 s to the maximum reads back exactly; one second more than the maximum is refused.
    #[test]
    fn written_durations_read_back(secs in 1u64..=MAX.as_secs()) {
        let (h, m, s) = (secs / 3600, secs / 60 % 60, secs % 60);
        for text in [format!("{h}h{m}m{s}s"), format!("{secs}s"), secs.to_string(), format!("{}ms", secs * 1000)] {
            prop_assert_eq!(parse(&text), Ok(Duration::from_secs(secs)), "{}", text);
        }
        let over = format!("{}s", MAX.as_secs() + secs);
        prop_assert!(parse(&over).is_err(), "{} accepted", over);
    }

    #[test]
    fn below_one_second_is_refused(ms in 0u64..1000) {
        let text = format!("{ms}ms");
        prop_assert!(parse(&text).is_err(), "{} accepted", text);
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 1000, ..ProptestConfig::default() })]

    /// The CRD admits `continuousValidation.interval` with CEL `duration(self) >= duration('1m')`,
    /// which parses as Go does: a leading `+`, leading zeros and more than nine fractional
    /// digits are all valid there. The agent must start with every such interval, or a policy
    /// the API server accepted makes every pod's verifier fail.
    #[test]
    fn every_interval_the_crd_admits_is_accepted((text, d) in go_duration()) {
        prop_assume!(d >= Duration::from_secs(60) && d <= MAX);
        // Go scales fractions in floating point: allow a microsecond of rounding.
        let got = parse(&text);
        prop_assert!(
            got.as_ref().is_ok_and(|p| p.abs_diff(d) <= Duration::from_micros(1)),
            "{text:?}: Go gives {d:?}, the agent {got:?}"
        );
    }
}

/// Plain Go durations, the spellings users write, are accepted.
#[test]
fn plain_go_intervals_are_accepted() {
    for (text, secs) in [
        ("1m", 60),
        ("5m", 300),
        ("1h30m", 5400),
        ("1.5h", 5400),
        ("2h0m0s", 7200),
        ("90000ms", 90),
    ] {
        assert_eq!(parse(text), Ok(Duration::from_secs(secs)), "{text}");
    }
}

/// The inputs property testing found refused while Go (and so the CRD) reads them, one per
/// cause: a sign, leading zeros, a fraction past nanoseconds.
#[test]
fn go_spellings_the_crd_admits_are_accepted() {
    for (text, nanos) in [
        ("+5m", 300_000_000_000u64),
        ("000000000000060s", 60_000_000_000),
        ("1.0000000001m", 60_000_000_006),
    ] {
        assert_eq!(parse(text), Ok(Duration::from_nanos(nanos)), "{text}");
    }
}
