//! The operator→agent contract: how the injected container invokes `model-signing`.
//!
//! The one-shot init container and the continuous-validation sidecar run the same agent with
//! the same verification; only [`Watch`] differs. Both are rendered from one typed
//! [`Invocation`], and a unit test parses every rendering with the agent's own clap `Cli`, so a
//! flag renamed in the CLI fails a unit test here, not only the end-to-end tests.

use crate::crd::Method;

/// Where Kubernetes reads the termination message from; the agent writes its one-line outcome
/// there (`--result-file`).
pub const TERMINATION_LOG: &str = "/dev/termination-log";

/// Verification options after merging the spec with the pod's annotations (which may only
/// tighten); see `webhook::inject::effective_options`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Options {
    /// Extra ignore paths.
    pub ignore_paths: Vec<String>,
    /// Leave out git paths.
    pub ignore_git_paths: bool,
    /// Tolerate unsigned files.
    pub ignore_unsigned_files: bool,
    /// Follow symlinks.
    pub allow_symlinks: bool,
}

/// Watch mode: re-verify every interval and serve health endpoints (the sidecar).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Watch {
    /// A Kubernetes duration, e.g. `5m` (the CRD admits only what the agent parses).
    pub interval: String,
    /// Port of `/readyz` and `/healthz` on all interfaces of the pod.
    pub health_port: u16,
}

/// One invocation of the agent.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Invocation<'a> {
    /// The method and its inputs.
    pub method: Method<'a>,
    /// `spec.model.path`.
    pub model_path: &'a str,
    /// `spec.model.signaturePath`.
    pub signature_path: &'a str,
    /// The effective options.
    pub options: &'a Options,
    /// Watch mode, for the sidecar.
    pub watch: Option<Watch>,
}

impl Invocation<'_> {
    /// The container's `args` (the agent image's entrypoint is `model-signing`).
    pub fn args(&self) -> Vec<String> {
        let mut args = vec!["verify".to_string()];
        match self.method {
            Method::Sigstore {
                identity,
                issuer,
                trust_config,
            } => {
                args.extend([
                    "sigstore".into(),
                    "--identity".into(),
                    identity.to_string(),
                    "--identity_provider".into(),
                    issuer.to_string(),
                ]);
                if let Some(t) = trust_config {
                    args.extend(["--trust_config".into(), t.to_string()]);
                }
            }
            Method::PublicKey { key_path } => {
                args.extend(["key".into(), "--public_key".into(), key_path.to_string()]);
            }
            Method::Certificate { ca_path } => {
                args.extend([
                    "certificate".into(),
                    "--certificate_chain".into(),
                    ca_path.to_string(),
                ]);
            }
        }
        let o = self.options;
        args.extend(["--signature".into(), self.signature_path.to_string()]);
        for p in &o.ignore_paths {
            args.extend(["--ignore-paths".into(), p.clone()]);
        }
        args.push(
            if o.ignore_git_paths {
                "--ignore-git-paths"
            } else {
                "--no-ignore-git-paths"
            }
            .into(),
        );
        if o.ignore_unsigned_files {
            args.push("--ignore_unsigned_files".into());
        }
        if o.allow_symlinks {
            args.push("--allow_symlinks".into());
        }
        // Failures tell the user which ModelValidation field to change, not which CLI flag.
        args.extend(["--fix-hints".into(), "model-validation".into()]);
        args.extend(["--result-file".into(), TERMINATION_LOG.into()]);
        if let Some(w) = &self.watch {
            args.extend([
                "--interval".into(),
                w.interval.clone(),
                "--health-addr".into(),
                format!("0.0.0.0:{}", w.health_port),
            ]);
        }
        args.push(self.model_path.to_string());
        args
    }
}

#[cfg(test)]
mod tests;
