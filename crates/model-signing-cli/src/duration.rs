//! Durations and timestamps as text: the `--interval` and `--stuck-after` parser, and the
//! forms watch mode logs.

use std::time::{Duration, SystemTime};

/// The longest duration accepted (keeps every `Instant` addition far from overflow).
const MAX_DURATION: Duration = Duration::from_secs(366 * 24 * 3600);

/// Parses a duration: `30s`, `5m`, `1h30m`, `1.5h`, `500ms`, or a plain number of seconds
/// (`90`, `2.5`). The grammar is Go's `time.ParseDuration` (and so that of Kubernetes CEL
/// `duration()`, which admits a ModelValidation's `continuousValidation.interval`): units h, m,
/// s, ms, us (µs), ns, combined as in `1h30m` or `1m0s`, a leading `+`, leading zeros, and
/// fractions of any length (digits beyond nanosecond precision are ignored, as Go does).
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let bad = || {
        format!("invalid duration {text:?}: use e.g. 30s, 5m, 1h30m, 1.5h or a number of seconds")
    };
    let trimmed = text.trim();
    let s = trimmed.strip_prefix('+').unwrap_or(trimmed);
    if s.is_empty() {
        return Err(bad());
    }
    let is_num = |c: char| c.is_ascii_digit() || c == '.';
    let plain = s.chars().all(is_num);
    let mut rest = s;
    let mut nanos: u128 = 0;
    while !rest.is_empty() {
        let (num, after) = rest.split_at(rest.find(|c| !is_num(c)).unwrap_or(rest.len()));
        let (unit, next) = after.split_at(after.find(is_num).unwrap_or(after.len()));
        let unit_nanos: u128 = match unit {
            "h" => 3_600_000_000_000,
            "m" => 60_000_000_000,
            "s" => 1_000_000_000,
            "ms" => 1_000_000,
            "us" | "µs" | "μs" => 1_000,
            "ns" => 1,
            "" if plain => 1_000_000_000,
            _ => return Err(bad()),
        };
        let (int, frac) = num.split_once('.').unwrap_or((num, ""));
        let digits = |d: &str| d.chars().all(|c| c.is_ascii_digit());
        if (int.is_empty() && frac.is_empty()) || !digits(int) || !digits(frac) {
            return Err(bad());
        }
        // Leading zeros carry nothing; 20 digits fit a u128 even times an hour's nanoseconds.
        let int = int.trim_start_matches('0');
        if int.len() > 20 {
            return Err(format!("duration {text:?} is out of range"));
        }
        // Beyond 18 digits a fraction of an hour is below a nanosecond.
        let frac = &frac[..frac.len().min(18)];
        let whole: u128 = if int.is_empty() {
            0
        } else {
            int.parse().map_err(|_| bad())?
        };
        let (part, scale): (u128, u128) = if frac.is_empty() {
            (0, 1)
        } else {
            (
                frac.parse().map_err(|_| bad())?,
                10u128.pow(frac.len() as u32),
            )
        };
        nanos = nanos.saturating_add(whole * unit_nanos + part * unit_nanos / scale);
        rest = next;
    }
    if nanos > MAX_DURATION.as_nanos() {
        return Err(format!(
            "duration {text:?} is too long (at most {})",
            fmt_duration(MAX_DURATION)
        ));
    }
    Ok(Duration::from_nanos(nanos as u64))
}

/// [`parse_duration`], at least one second (`--interval`, `--stuck-after`).
pub fn parse_interval(text: &str) -> Result<Duration, String> {
    let d = parse_duration(text)?;
    if d < Duration::from_secs(1) {
        return Err(format!("must be at least 1s (got {text:?})"));
    }
    Ok(d)
}

/// `1h30m`, `30s`, `1.5s`.
pub fn fmt_duration(d: Duration) -> String {
    if d.subsec_nanos() != 0 {
        return format!("{}s", d.as_secs_f64());
    }
    let s = d.as_secs();
    let mut out = String::new();
    for (n, unit) in [(s / 3600, "h"), (s / 60 % 60, "m"), (s % 60, "s")] {
        if n != 0 {
            out.push_str(&format!("{n}{unit}"));
        }
    }
    if out.is_empty() {
        out.push_str("0s");
    }
    out
}

/// `2026-11-25T12:00:00Z`.
pub fn rfc3339(t: SystemTime) -> String {
    let secs = t
        .duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let (y, m, d) = civil_from_days((secs / 86_400) as i64);
    let r = secs % 86_400;
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        r / 3600,
        r / 60 % 60,
        r % 60
    )
}

/// Days since 1970-01-01 to (year, month, day) in the proleptic Gregorian calendar
/// (Howard Hinnant's algorithm).
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m as u32, d as u32)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        let ok = |s: &str| parse_duration(s).unwrap();
        assert_eq!(ok("30s"), Duration::from_secs(30));
        assert_eq!(ok("5m"), Duration::from_secs(300));
        assert_eq!(ok("1h30m"), Duration::from_secs(5400));
        assert_eq!(ok("1h30m15s"), Duration::from_secs(5415));
        assert_eq!(ok("1.5h"), Duration::from_secs(5400));
        assert_eq!(ok("90"), Duration::from_secs(90));
        assert_eq!(ok(" 2.5 "), Duration::from_millis(2500));
        assert_eq!(ok("1500ms"), Duration::from_millis(1500));
        assert_eq!(ok(".5s"), Duration::from_millis(500));
        assert_eq!(ok("1h0m0s"), Duration::from_secs(3600));
        assert_eq!(ok("60000000000ns"), Duration::from_secs(60));
        assert_eq!(ok("1500000us"), Duration::from_millis(1500));
        assert_eq!(ok("2000000µs"), Duration::from_secs(2));
        for bad in [
            "",
            " ",
            "5x",
            "m",
            "5m30",
            "-5s",
            "+",
            "++5s",
            "1..5s",
            ".s",
            "5 m",
            "1h 30m",
            "5é",
            "١s",
            "99999999999999999h",
            "123456789012345678901s",
        ] {
            assert!(parse_duration(bad).is_err(), "{bad:?} accepted");
        }
        // Go spellings (what the CRD's CEL `duration()` admits): sign, leading zeros, long
        // fractions.
        assert_eq!(ok("+5s"), Duration::from_secs(5));
        assert_eq!(ok("000000000000060s"), Duration::from_secs(60));
        assert_eq!(ok("1.0000000001s"), Duration::from_secs(1));
        assert_eq!(ok("1.0000000001m"), Duration::from_nanos(60_000_000_006));
        assert_eq!(
            ok(&format!("1.5{}h", "0".repeat(40))),
            Duration::from_secs(5400)
        );
        assert!(parse_duration("400d").is_err());
        assert!(parse_duration("8785h").is_err());
        assert_eq!(ok("8784h"), MAX_DURATION);
        assert!(parse_interval("0").is_err());
        assert!(parse_interval("999ms").unwrap_err().contains("at least 1s"));
        assert_eq!(parse_interval("1").unwrap(), Duration::from_secs(1));
        assert_eq!(fmt_duration(Duration::from_secs(5400)), "1h30m");
        assert_eq!(fmt_duration(Duration::from_secs(30)), "30s");
        assert_eq!(fmt_duration(Duration::from_secs(3601)), "1h1s");
        assert_eq!(fmt_duration(Duration::from_millis(1500)), "1.5s");
        assert_eq!(fmt_duration(Duration::ZERO), "0s");
    }

    #[test]
    fn timestamps() {
        let at = |s: u64| rfc3339(SystemTime::UNIX_EPOCH + Duration::from_secs(s));
        assert_eq!(at(0), "1970-01-01T00:00:00Z");
        assert_eq!(at(951_782_400), "2000-02-29T00:00:00Z");
        assert_eq!(at(1_700_000_000), "2023-11-14T22:13:20Z");
        assert_eq!(at(4_107_542_399), "2100-02-28T23:59:59Z");
    }
}
