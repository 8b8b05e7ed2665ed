//! Printing results the peer's way (text) or as one JSON object, and choosing the exit code.

use std::process::ExitCode;

use serde_json::{Value, json};

use crate::args::{FixHints, Output};
use crate::fix::render;

/// Which command ran, for the peer's `<Verb> succeeded` / `<Verb> failed with error:` lines.
#[derive(Clone, Copy)]
pub enum Verb {
    Sign,
    Verify,
    Digest,
    Inspect,
    Push,
    Attach,
}

impl Verb {
    fn noun(self) -> &'static str {
        match self {
            Verb::Sign => "Signing",
            Verb::Verify => "Verification",
            Verb::Digest => "Digest",
            Verb::Inspect => "Inspect",
            Verb::Push => "Push",
            Verb::Attach => "Attach",
        }
    }
}

/// What a successful command reports.
pub struct Outcome {
    /// Lines for stdout in text mode.
    pub text: Vec<String>,
    /// The JSON result (merged with `"ok": true`).
    pub json: Value,
    /// Warnings (stderr in text mode, `warnings` in JSON).
    pub warnings: Vec<String>,
}

/// The stable error label of a failure, for JSON consumers.
pub fn error_kind(e: &anyhow::Error) -> &'static str {
    e.chain()
        .find_map(|c| {
            if let Some(e) = c.downcast_ref::<model_signing::Error>() {
                return Some(e.kind());
            }
            if let Some(e) = c.downcast_ref::<model_signing::oci::registry::RegistryError>() {
                return Some(e.kind());
            }
            if let Some(e) = c.downcast_ref::<crate::cmd_oci::NoneVerified>() {
                return Some(e.kind);
            }
            if c.downcast_ref::<crate::cmd_oci::ArtifactMismatch>()
                .is_some()
            {
                return Some("model_mismatch");
            }
            c.downcast_ref::<crate::cmd_oci::Unsigned>()
                .map(|_| "unsigned")
        })
        .unwrap_or("error")
}

/// Prints the outcome and returns the exit code: 0 success, 1 failure.
pub fn emit(
    output: Output,
    verb: Verb,
    hints: FixHints,
    result: anyhow::Result<Outcome>,
) -> ExitCode {
    match (output, result) {
        (Output::Text, Ok(o)) => {
            for w in &o.warnings {
                eprintln!("WARNING: {w}");
            }
            for line in &o.text {
                println!("{line}");
            }
            ExitCode::SUCCESS
        }
        (Output::Text, Err(e)) => {
            let e = render(&e, hints);
            match verb {
                Verb::Sign | Verb::Verify | Verb::Push | Verb::Attach => {
                    eprintln!("{} failed with error: {e}", verb.noun())
                }
                Verb::Digest | Verb::Inspect => eprintln!("error: {e}"),
            }
            ExitCode::FAILURE
        }
        (Output::Json, Ok(o)) => {
            let mut v = json!({"ok": true, "warnings": o.warnings});
            if let (Some(dst), Value::Object(src)) = (v.as_object_mut(), o.json) {
                dst.extend(src);
            }
            println!("{v}");
            ExitCode::SUCCESS
        }
        (Output::Json, Err(e)) => {
            println!(
                "{}",
                json!({"ok": false, "error": {"kind": error_kind(&e), "message": render(&e, hints)}})
            );
            ExitCode::FAILURE
        }
    }
}
