//! Trust material (a public key, CA certificates, a Sigstore trust root) as bytes and the name
//! that messages show for them: read from a file (`--public-key PATH`, ...) or from an
//! environment variable that holds the material itself (`--public-key-env NAME`, ...).
//!
//! The operator passes the material of a ModelValidation to its agent as container environment,
//! which a pod cannot change after admission. Both sources end in the same parser, which takes
//! the bytes and the display name (`environment variable NAME` or the path).

use std::path::Path;

use anyhow::Result;

use crate::args::{VerifyMethod, VerifySigstoreArgs};
use crate::fix::{Setting, Unreadable};

/// Environment variables larger than this are refused (real keys and roots are a few KiB).
pub const MAX_ENV_BYTES: usize = 1024 * 1024;

/// The bytes of some trust material and the name to show for them.
#[derive(Debug, Clone)]
pub struct Material {
    /// The path, or `environment variable NAME` (never the value).
    pub name: String,
    /// The material itself.
    pub bytes: Vec<u8>,
}

/// Reads a file named by `setting`.
pub fn from_file(path: &Path, setting: Setting, what: &'static str) -> Result<Material> {
    let bytes = std::fs::read(path).map_err(|source| Unreadable {
        setting,
        what,
        path: path.to_path_buf(),
        source,
    })?;
    Ok(Material {
        name: path.display().to_string(),
        bytes,
    })
}

/// Reads the environment variable `var` named by `setting`: unset, empty and oversized values
/// are refused.
pub fn from_env(var: &str, setting: Setting, what: &'static str) -> Result<Material> {
    Ok(from_value(var, std::env::var_os(var), setting, what)?)
}

/// [`from_env`] on the value the variable `var` has (`None`: unset). Apart so that the size
/// limit can be tested: Linux refuses to start a process with one environment string longer
/// than 128 KiB, so no test can pass a larger variable to the binary.
fn from_value(
    var: &str,
    value: Option<std::ffi::OsString>,
    setting: Setting,
    what: &'static str,
) -> Result<Material, EnvUnusable> {
    let fail = |problem| EnvUnusable {
        setting,
        what,
        var: var.to_string(),
        problem,
    };
    let bytes = match value {
        None => return Err(fail(EnvProblem::Unset)),
        Some(v) => std::os::unix::ffi::OsStringExt::into_vec(v),
    };
    if bytes.is_empty() {
        return Err(fail(EnvProblem::Empty));
    }
    if bytes.len() > MAX_ENV_BYTES {
        return Err(fail(EnvProblem::TooLarge(bytes.len())));
    }
    Ok(Material {
        name: env_name(var),
        bytes,
    })
}

/// How messages name material from the environment variable `var`.
pub fn env_name(var: &str) -> String {
    format!("environment variable {var}")
}

/// Why an environment variable holds no usable material.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EnvProblem {
    /// Not set at all.
    Unset,
    /// Set to the empty string.
    Empty,
    /// More than [`MAX_ENV_BYTES`] bytes (the size).
    TooLarge(usize),
}

/// An environment variable named by a setting that holds no usable material.
#[derive(Debug)]
pub struct EnvUnusable {
    /// The setting that names the variable.
    pub setting: Setting,
    /// What the material is, e.g. "public key".
    pub what: &'static str,
    /// The variable's name.
    pub var: String,
    /// What is wrong with it.
    pub problem: EnvProblem,
}

impl std::fmt::Display for EnvUnusable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "cannot read {} from environment variable {}: ",
            self.what, self.var
        )?;
        match self.problem {
            EnvProblem::Unset => write!(f, "it is not set"),
            EnvProblem::Empty => write!(f, "it is empty"),
            EnvProblem::TooLarge(n) => write!(
                f,
                "it holds {n} bytes, more than the limit of {MAX_ENV_BYTES} bytes (1 MiB)"
            ),
        }
    }
}

impl std::error::Error for EnvUnusable {}

/// The trust material a verification takes from environment variables, read once when the
/// command starts (watch mode keeps it for every verification; files are read again each time).
#[derive(Debug, Default)]
pub struct EnvMaterial {
    /// `--public-key-env`.
    pub public_key: Option<Material>,
    /// `--certificate-chain-env`.
    pub certificates: Option<Material>,
    /// `--trust-config-env`.
    pub trust_config: Option<Material>,
    /// `--trusted-root-env`.
    pub trusted_root: Option<Material>,
    /// `--policy-env`.
    pub policy: Option<Material>,
}

impl EnvMaterial {
    /// Reads every variable the method's flags name.
    pub fn read(method: &VerifyMethod) -> Result<Self> {
        let read = |var: &Option<String>, setting, what| {
            var.as_deref()
                .map(|v| from_env(v, setting, what))
                .transpose()
        };
        Ok(match method {
            VerifyMethod::Key(a) => EnvMaterial {
                public_key: read(&a.public_key_env, Setting::PublicKeyEnv, "public key")?,
                ..Default::default()
            },
            VerifyMethod::Certificate(a) => EnvMaterial {
                certificates: read(
                    &a.certificate_chain_env,
                    Setting::CertificateAuthorityEnv,
                    "CA certificates",
                )?,
                ..Default::default()
            },
            VerifyMethod::Authorities(a) => EnvMaterial {
                policy: read(&a.policy_env, Setting::PolicyEnv, "authorities document")?,
                ..Default::default()
            },
            VerifyMethod::Sigstore(a) => EnvMaterial {
                trust_config: read(
                    &a.trust_config_env,
                    Setting::TrustConfigEnv,
                    "Sigstore ClientTrustConfig",
                )?,
                trusted_root: read(
                    &a.trusted_root_env,
                    Setting::TrustedRootEnv,
                    "Sigstore trusted root",
                )?,
                ..Default::default()
            },
        })
    }
}

/// The environment setting that supplies the method's trust material, if any: failures about
/// that material name it instead of its path twin.
pub fn env_setting(method: &VerifyMethod) -> Option<Setting> {
    match method {
        VerifyMethod::Key(a) => a.public_key_env.as_ref().map(|_| Setting::PublicKeyEnv),
        VerifyMethod::Authorities(a) => a.policy_env.as_ref().map(|_| Setting::PolicyEnv),
        VerifyMethod::Certificate(a) => a
            .certificate_chain_env
            .as_ref()
            .map(|_| Setting::CertificateAuthorityEnv),
        VerifyMethod::Sigstore(VerifySigstoreArgs {
            trust_config_env,
            trusted_root_env,
            ..
        }) => match (trust_config_env, trusted_root_env) {
            (Some(_), _) => Some(Setting::TrustConfigEnv),
            (None, Some(_)) => Some(Setting::TrustedRootEnv),
            (None, None) => None,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_are_refused_when_unset_empty_or_larger_than_the_limit() {
        let read = |v: Option<Vec<u8>>| {
            from_value(
                "K",
                v.map(std::os::unix::ffi::OsStringExt::from_vec),
                Setting::PublicKeyEnv,
                "public key",
            )
        };
        assert_eq!(read(None).unwrap_err().problem, EnvProblem::Unset);
        assert_eq!(read(Some(vec![])).unwrap_err().problem, EnvProblem::Empty);
        let e = read(Some(vec![b'x'; MAX_ENV_BYTES + 1])).unwrap_err();
        assert_eq!(e.problem, EnvProblem::TooLarge(MAX_ENV_BYTES + 1));
        assert!(
            e.to_string().starts_with(
                "cannot read public key from environment variable K: it holds 1048577 bytes"
            ),
            "{e}"
        );
        // Passing twin: exactly the limit is read, and named by the variable, not its value.
        let m = read(Some(vec![b'x'; MAX_ENV_BYTES])).unwrap();
        assert_eq!(m.bytes.len(), MAX_ENV_BYTES);
        assert_eq!(m.name, "environment variable K");
    }

    #[test]
    fn problems_name_the_variable_and_never_a_value() {
        for (problem, says) in [
            (EnvProblem::Unset, "it is not set"),
            (EnvProblem::Empty, "it is empty"),
            (EnvProblem::TooLarge(MAX_ENV_BYTES + 1), "1048577 bytes"),
        ] {
            let e = EnvUnusable {
                setting: Setting::PublicKeyEnv,
                what: "public key",
                var: "MY_KEY".into(),
                problem,
            };
            let text = e.to_string();
            assert!(
                text.starts_with("cannot read public key from environment variable MY_KEY: "),
                "{text}"
            );
            assert!(text.contains(says), "{text}");
        }
    }
}
