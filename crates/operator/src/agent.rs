//! The operator→agent contract: how the injected container invokes `model-signing`.
//!
//! The one-shot init container and the continuous-validation sidecar run the same agent with
//! the same verification; only [`Watch`] differs. Both are rendered from one typed
//! [`Invocation`], and a unit test parses every rendering with the agent's own clap `Cli`, so a
//! flag renamed in the CLI fails a unit test here, not only the end-to-end tests.

use crate::crd::{Method, SigstoreTrust, Trust};

/// Where Kubernetes reads the termination message from; the agent writes its one-line outcome
/// there (`--result-file`).
pub const TERMINATION_LOG: &str = "/dev/termination-log";

/// Environment variables of the injected containers that carry trust material from the
/// policy. A container's `env` cannot change after the pod is created, unlike a volume the pod
/// author could mount over a path, so the material stays what the platform team declared.
pub mod env {
    /// The public key PEM (`publicKeyConfig.keyPem`).
    pub const PUBLIC_KEY: &str = "MODEL_SIGNING_PUBLIC_KEY";
    /// The CA certificates PEM (`pkiConfig.certificateAuthorityPem`).
    pub const CERTIFICATE_CHAIN: &str = "MODEL_SIGNING_CERTIFICATE_CHAIN";
    /// The ClientTrustConfig JSON (`clientTrustConfig.trustConfigJson`).
    pub const TRUST_CONFIG: &str = "MODEL_SIGNING_TRUST_CONFIG";
    /// The trusted root JSON (`clientTrustConfig.trustedRootJson`).
    pub const TRUSTED_ROOT: &str = "MODEL_SIGNING_TRUSTED_ROOT";
    /// A cluster policy's authorities document (`ClusterModelValidation.spec.authorities`).
    pub const AUTHORITIES: &str = "MODEL_SIGNING_AUTHORITIES";
}

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
    /// Report a failure but let the pod run (`--report-only`): a cluster policy in `warn` or
    /// `audit` mode. Never set by a pod annotation.
    pub report_only: bool,
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

/// How the method's trust material reaches the agent: a flag naming a path in the pod, or a
/// flag naming the environment variable that carries the policy's material.
enum TrustInput<'a> {
    /// `flag PATH`.
    Path { flag: &'static str, path: &'a str },
    /// `flag VAR`, with `VAR=value` in the container's env.
    Env {
        flag: &'static str,
        var: &'static str,
        value: &'a str,
    },
}

impl<'a> TrustInput<'a> {
    fn of(
        trust: Trust<'a>,
        path_flag: &'static str,
        env_flag: &'static str,
        var: &'static str,
    ) -> Self {
        match trust {
            Trust::Path(path) => TrustInput::Path {
                flag: path_flag,
                path,
            },
            Trust::Inline(value) => TrustInput::Env {
                flag: env_flag,
                var,
                value,
            },
        }
    }
}

impl Invocation<'_> {
    /// The method's trust input, if it has one (keyless with the embedded root has none).
    fn trust_input(&self) -> Option<TrustInput<'_>> {
        Some(match self.method {
            Method::PublicKey { key } => {
                TrustInput::of(key, "--public_key", "--public-key-env", env::PUBLIC_KEY)
            }
            Method::Certificate { ca } => TrustInput::of(
                ca,
                "--certificate_chain",
                "--certificate-chain-env",
                env::CERTIFICATE_CHAIN,
            ),
            Method::Sigstore {
                trust: Some(SigstoreTrust::Config(t)),
                ..
            } => TrustInput::of(t, "--trust_config", "--trust-config-env", env::TRUST_CONFIG),
            Method::Sigstore {
                trust: Some(SigstoreTrust::TrustedRoot(value)),
                ..
            } => TrustInput::Env {
                flag: "--trusted-root-env",
                var: env::TRUSTED_ROOT,
                value,
            },
            Method::Sigstore { trust: None, .. } => return None,
            Method::Authorities { document } => TrustInput::Env {
                flag: "--policy-env",
                var: env::AUTHORITIES,
                value: document,
            },
        })
    }

    /// The container's `args` (the agent image's entrypoint is `model-signing`).
    pub fn args(&self) -> Vec<String> {
        let mut args = vec!["verify".to_string()];
        match self.method {
            Method::Sigstore {
                identity, issuer, ..
            } => {
                args.extend([
                    "sigstore".into(),
                    "--identity".into(),
                    identity.to_string(),
                    "--identity_provider".into(),
                    issuer.to_string(),
                ]);
            }
            Method::PublicKey { .. } => args.push("key".into()),
            Method::Certificate { .. } => args.push("certificate".into()),
            Method::Authorities { .. } => args.push("authorities".into()),
        }
        match self.trust_input() {
            Some(TrustInput::Path { flag, path }) => args.extend([flag.into(), path.into()]),
            Some(TrustInput::Env { flag, var, .. }) => args.extend([flag.into(), var.into()]),
            None => {}
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
        if o.report_only {
            args.push("--report-only".into());
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

    /// The container's `env`: the trust material the policy carries, by the variable named in
    /// [`Self::args`].
    pub fn env(&self) -> Vec<(&'static str, String)> {
        match self.trust_input() {
            Some(TrustInput::Env { var, value, .. }) => vec![(var, value.to_string())],
            _ => vec![],
        }
    }
}

#[cfg(test)]
mod tests;
