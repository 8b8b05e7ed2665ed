//! `/metrics`: the agent's counters and gauges in the Prometheus text format.

use std::time::SystemTime;

use super::state::State;

/// `/metrics` in the Prometheus text format (0.0.4).
pub fn metrics(s: &State) -> String {
    let mut out = String::new();
    let mut metric = |name: &str, kind: &str, help: &str, samples: &[(&str, String)]| {
        out.push_str(&format!("# HELP {name} {help}\n# TYPE {name} {kind}\n"));
        for (labels, value) in samples {
            out.push_str(&format!("{name}{labels} {value}\n"));
        }
    };
    metric(
        "model_validation_agent_verifications_total",
        "counter",
        "Verifications of the model, by result.",
        &[
            (r#"{result="success"}"#, s.successes.to_string()),
            (r#"{result="failure"}"#, s.failures.to_string()),
        ],
    );
    metric(
        "model_validation_agent_last_success_timestamp_seconds",
        "gauge",
        "Unix time of the last successful verification (0 before the first).",
        &[(
            "",
            format!("{:.3}", s.last_success.map_or(0.0, unix_seconds)),
        )],
    );
    metric(
        "model_validation_agent_ready",
        "gauge",
        "1 while the last verification succeeded, else 0.",
        &[("", u8::from(s.ready).to_string())],
    );
    metric(
        "model_validation_agent_last_verification_duration_seconds",
        "gauge",
        "How long the last verification took.",
        &[(
            "",
            format!("{:.6}", s.last_duration.map_or(0.0, |d| d.as_secs_f64())),
        )],
    );
    out
}

fn unix_seconds(t: SystemTime) -> f64 {
    t.duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0)
}
