//! Wording errors for their reader.
//!
//! The engine's errors are typed: they say what is wrong and carry the data, never a flag. This
//! module renders an error chain once (each cause once) and adds what to change, in the words of
//! whoever configured the verification: this command's flags, or the fields of a
//! ModelValidation when the operator runs this command as its agent (`--fix-hints
//! model-validation`).

use std::path::PathBuf;

use model_signing::Error;
use model_signing::keys::KeyError;
use model_signing::oci::registry::RegistryError;
use model_signing::serialize::HashError;
use model_signing::sigstore::{Check, SigstoreError, TrustFile};
use model_signing::verify::SignatureMethod;
use model_signing::walk::{GIT_PATHS, WalkError};
use model_signing::x509::CertError;

use crate::args::FixHints;
use crate::material::EnvUnusable;

/// Something the user configures, named per [`FixHints`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Setting {
    AllowSymlinks,
    IgnoreUnsignedFiles,
    IgnorePaths,
    IgnoreGitPaths,
    Method(SignatureMethod),
    SignaturePath,
    ModelPath,
    PublicKey,
    CertificateAuthority,
    Identity,
    Issuer,
    TrustRoot,
    /// The environment twins of the path settings above: the material itself, which the
    /// operator passes from the ModelValidation to its agent as container environment.
    PublicKeyEnv,
    CertificateAuthorityEnv,
    TrustConfigEnv,
    TrustedRootEnv,
    /// The authorities document, from a file or (its twin) an environment variable.
    Policy,
    PolicyEnv,
    /// `oci`: the docker config.json with registry credentials, and the registry's CA.
    RegistryConfig,
    RegistryCa,
}

impl Setting {
    /// The flag or ModelValidation field (with the value to set, for switches).
    pub fn name(self, hints: FixHints) -> &'static str {
        use Setting::*;
        use SignatureMethod as M;
        match hints {
            FixHints::Cli => match self {
                AllowSymlinks => "--allow-symlinks",
                IgnoreUnsignedFiles => "--ignore-unsigned-files",
                IgnorePaths => "--ignore-paths",
                IgnoreGitPaths => "--ignore-git-paths/--no-ignore-git-paths",
                Method(M::Key) => "`verify key`",
                Method(M::Certificate) => "`verify certificate`",
                Method(M::Sigstore) => "`verify sigstore`",
                SignaturePath => "--signature",
                ModelPath => "MODEL_PATH",
                PublicKey => "--public-key",
                CertificateAuthority => "--certificate-chain",
                Identity => "--identity, or use --identity-regexp to accept a family of identities",
                Issuer => "--identity-provider, or use --identity-provider-regexp",
                TrustRoot => "--trust-config or --trusted-root (--use-staging for staging)",
                PublicKeyEnv => "--public-key-env",
                CertificateAuthorityEnv => "--certificate-chain-env",
                TrustConfigEnv => "--trust-config-env",
                TrustedRootEnv => "--trusted-root-env",
                Policy => "--policy",
                PolicyEnv => "--policy-env",
                RegistryConfig => "--registry-config",
                RegistryCa => "--registry-ca",
            },
            FixHints::ModelValidation => match self {
                AllowSymlinks => "spec.model.allowSymlinks: true",
                IgnoreUnsignedFiles => "spec.model.ignoreUnsignedFiles: true",
                IgnorePaths => "spec.model.ignorePaths",
                IgnoreGitPaths => "spec.model.ignoreGitPaths",
                Method(M::Key) => "spec.config.publicKeyConfig",
                Method(M::Certificate) => "spec.config.pkiConfig",
                Method(M::Sigstore) => "spec.config.sigstoreConfig",
                SignaturePath => "spec.model.signaturePath",
                ModelPath => "spec.model.path",
                PublicKey => "spec.config.publicKeyConfig.keyPath",
                CertificateAuthority => "spec.config.pkiConfig.certificateAuthority",
                Identity => "spec.config.sigstoreConfig.certificateIdentity",
                Issuer => "spec.config.sigstoreConfig.certificateOidcIssuer",
                TrustRoot => "spec.config.clientTrustConfig.trustConfigPath",
                PublicKeyEnv => "spec.config.publicKeyConfig.keyPem",
                CertificateAuthorityEnv => "spec.config.pkiConfig.certificateAuthorityPem",
                TrustConfigEnv => "spec.config.clientTrustConfig.trustConfigJson",
                TrustedRootEnv => "spec.config.clientTrustConfig.trustedRootJson",
                Policy | PolicyEnv => "spec.authorities",
                // The agent never reads registries: only the CLI's `oci` commands name these.
                RegistryConfig => "--registry-config",
                RegistryCa => "--registry-ca",
            },
        }
    }

    /// This path setting, or its environment twin when that supplied the trust material.
    fn or_env(self, env: Option<Setting>) -> Setting {
        use Setting::*;
        match (self, env) {
            (PublicKey, Some(e @ PublicKeyEnv))
            | (CertificateAuthority, Some(e @ CertificateAuthorityEnv))
            | (TrustRoot, Some(e @ (TrustConfigEnv | TrustedRootEnv)))
            | (Policy, Some(e @ PolicyEnv)) => e,
            _ => self,
        }
    }

    /// "pass --flag" for the CLI, "set field" for a ModelValidation.
    fn set(self, hints: FixHints) -> String {
        match (hints, self) {
            (FixHints::Cli, Setting::Method(_)) => format!("use {}", self.name(hints)),
            (FixHints::Cli, _) => format!("pass {}", self.name(hints)),
            (FixHints::ModelValidation, _) => format!("set {}", self.name(hints)),
        }
    }
}

/// A file named by a setting that cannot be read (the CLI's own inputs; the engine reports its
/// own, e.g. the signature).
#[derive(Debug)]
pub struct Unreadable {
    /// The setting that names the file.
    pub setting: Setting,
    /// What the file is, e.g. "public key".
    pub what: &'static str,
    /// The path given.
    pub path: PathBuf,
    /// The cause.
    pub source: std::io::Error,
}

impl std::fmt::Display for Unreadable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "cannot read {} {}", self.what, self.path.display())
    }
}

impl std::error::Error for Unreadable {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&self.source)
    }
}

/// Marks a failure of a verification whose trust material came from an environment setting
/// (context that prints nothing): its fix then names that setting, not its path twin.
#[derive(Debug, Clone, Copy)]
pub struct TrustFromEnv(pub Setting);

impl std::fmt::Display for TrustFromEnv {
    fn fmt(&self, _: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        Ok(())
    }
}

/// The error and its causes, each once (a cause that an outer message already quotes is not
/// repeated), then what to change.
pub fn render(e: &anyhow::Error, hints: FixHints) -> String {
    let mut text = String::new();
    for cause in e.chain() {
        let c = cause.to_string();
        if c.is_empty() || text.contains(&c) {
            continue;
        }
        if !text.is_empty() {
            text.push_str(": ");
        }
        text.push_str(&c);
    }
    let env = e.downcast_ref::<TrustFromEnv>().map(|t| t.0);
    let fix = e.chain().find_map(|c| {
        if let Some(u) = c.downcast_ref::<Unreadable>() {
            return Some(format!("check {}", u.setting.name(hints)));
        }
        if let Some(u) = c.downcast_ref::<EnvUnusable>() {
            return Some(format!("check {}", u.setting.name(hints)));
        }
        if let Some(r) = c.downcast_ref::<RegistryError>() {
            return registry_fix(r);
        }
        if c.downcast_ref::<crate::cmd_oci::ArtifactMismatch>().is_some() {
            return Some("the artifact is not the model that was signed: pull the signed digest, or re-sign the artifact with `model-signing oci sign` if its content is trusted".into());
        }
        if c.downcast_ref::<crate::cmd_oci::Unsigned>().is_some() {
            return Some("sign it with `model-signing oci sign`, or attach its signature with `model-signing oci attach`; check that the reference names the model you mean".into());
        }
        if let Some(k) = c.downcast_ref::<KeyError>() {
            // Signing reports key errors without the engine's umbrella type.
            return key_fix(k);
        }
        c.downcast_ref::<Error>()
            .and_then(|e| engine_fix(e, hints, env))
    });
    if let Some(fix) = fix {
        text.push_str("; ");
        text.push_str(&fix);
    }
    text
}

/// What to change for an engine error, if the user can change something.
fn engine_fix(e: &Error, hints: FixHints, env: Option<Setting>) -> Option<String> {
    use Setting::*;
    let ca = CertificateAuthority.or_env(env);
    let name = |s: Setting| s.name(hints);
    Some(match e {
        Error::WrongMethod { found: Some(m), .. } => Method(*m).set(hints),
        Error::WrongMethod { found: None, .. } => format!(
            "check that {} names the model's signature",
            name(SignaturePath)
        ),
        Error::NoTrustedCa => format!(
            "{} with the root (or intermediate) CA certificates that may issue signing certificates",
            ca.set(hints)
        ),
        Error::SymlinkNotAllowed { .. } => {
            format!("{} if you accept that", AllowSymlinks.set(hints))
        }
        Error::Hash(h) => hash_fix(h, hints)?,
        Error::Mismatch(m) if !m.extra.is_empty() => {
            let mut fix = format!(
                "re-sign the model, remove them, or {} or {}",
                match hints {
                    FixHints::Cli => format!("verify with {}", name(IgnorePaths)),
                    FixHints::ModelValidation => IgnorePaths.set(hints),
                },
                name(IgnoreUnsignedFiles)
            );
            let git = m.extra.iter().any(|p| {
                GIT_PATHS
                    .iter()
                    .any(|g| p == g || p.starts_with(&format!("{g}/")))
            });
            if git {
                fix.push_str(&format!(" (git files: {})", name(IgnoreGitPaths)));
            }
            fix
        }
        Error::Bundle(model_signing::bundle::BundleError::Io { .. }) => {
            format!("check {}", name(SignaturePath))
        }
        Error::Certificate(CertError::UnknownIssuer { .. }) => {
            format!("trust the CA that issued it with {}", name(ca))
        }
        Error::Key(k) => key_fix(k)?,
        Error::Artifact(a) => artifact_fix(a)?,
        Error::Sigstore(s) => match env {
            Some(env @ (TrustConfigEnv | TrustedRootEnv)) => sigstore_env_fix(s, hints, env)?,
            _ => sigstore_fix(s, hints)?,
        },
        _ => return None,
    })
}

/// What to change for a registry error: always the CLI's flags (only `oci` talks to
/// registries).
fn registry_fix(e: &RegistryError) -> Option<String> {
    Some(match e {
        RegistryError::Unauthorized {
            registry,
            sent: false,
            helper: None,
            ..
        } => format!(
            "pass --registry-config with a docker config.json that has credentials for {registry} in its `auths` (as `docker login {registry}` writes them)"
        ),
        RegistryError::Unauthorized {
            registry,
            sent: false,
            helper: Some(_),
            ..
        } => format!(
            "credential helpers are not supported: pass --registry-config with a docker config.json that has credentials for {registry} in its `auths`"
        ),
        RegistryError::Unauthorized { registry, .. } => format!(
            "check the credentials for {registry} in the docker config (--registry-config)"
        ),
        RegistryError::Tls { .. } => "pass --registry-ca with the CA certificate that issued the registry's certificate (or --plain-http if the registry serves plain HTTP)".into(),
        RegistryError::Unreachable { .. } => "check the registry's host and port (and pass --plain-http if it serves plain HTTP, --registry-ca if it serves HTTPS with its own CA)".into(),
        RegistryError::Timeout { .. } => "check that the registry is up, or raise --registry-timeout".into(),
        RegistryError::NotFound { .. } => "check REFERENCE (push the model first with `model-signing oci push`)".into(),
        RegistryError::Artifact(a) => return artifact_fix(a),
        _ => return None,
    })
}

/// What to change for a manifest that is not a model this tool maps.
fn artifact_fix(e: &model_signing::oci::ArtifactError) -> Option<String> {
    use model_signing::oci::ArtifactError as A;
    Some(match e {
        A::NotModelPack(_) | A::WrongConfig(_) | A::UnsupportedLayer { .. } => {
            "push the model directory with `model-signing oci push`, which makes one raw layer per file".into()
        }
        A::Serialization { .. } => "re-sign the model with the default serialization (no --hash, no --shard-size)".into(),
        _ => return None,
    })
}

/// Only signing reads private keys, so the wording is always the CLI's.
fn key_fix(e: &KeyError) -> Option<String> {
    match e {
        KeyError::Encrypted(_) => Some("pass its password with --password".into()),
        _ => None,
    }
}

fn hash_fix(e: &HashError, hints: FixHints) -> Option<String> {
    use Setting::*;
    Some(match e {
        HashError::Walk(WalkError::Symlink(_)) => {
            format!("{} to follow symlinks", AllowSymlinks.set(hints))
        }
        HashError::Walk(WalkError::SpecialFile { .. }) => {
            format!("remove it or add it to {}", IgnorePaths.name(hints))
        }
        HashError::Walk(WalkError::NonUtf8(_)) => format!(
            "rename it or add its directory to {}",
            IgnorePaths.name(hints)
        ),
        HashError::Io { source, .. }
        | HashError::Walk(WalkError::Io { source, .. } | WalkError::Model { source, .. })
            if source.kind() == std::io::ErrorKind::PermissionDenied =>
        {
            unreadable_fix(hints, &Credentials::of_this_process())
        }
        HashError::Walk(WalkError::Model { .. }) => format!("check {}", ModelPath.name(hints)),
        // Signing only, where the CLI's flags are the only wording.
        HashError::ColonInShardName(_) => "rename it, or sign whole files (no --shard-size)".into(),
        HashError::FileChanged { .. } => "something replaced or wrote to it while it was read; make sure nothing else can write to the model's storage, then verify again".into(),
        _ => return None,
    })
}

/// Who this process is, as file permissions see it (from `/proc/self/status`).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Credentials {
    /// Effective user id.
    pub uid: Option<u32>,
    /// Effective group id.
    pub gid: Option<u32>,
    /// Supplementary groups.
    pub groups: Vec<u32>,
}

impl Credentials {
    fn of_this_process() -> Credentials {
        Credentials::parse(&std::fs::read_to_string("/proc/self/status").unwrap_or_default())
    }

    /// Reads the `Uid:`, `Gid:` (real, effective, saved, fs: the second is taken) and
    /// `Groups:` lines of a `/proc/<pid>/status` text.
    pub fn parse(status: &str) -> Credentials {
        let mut id = Credentials::default();
        for line in status.lines() {
            let Some((key, values)) = line.split_once(':') else {
                continue;
            };
            let mut numbers = values.split_whitespace().filter_map(|v| v.parse().ok());
            match key {
                "Uid" => id.uid = numbers.nth(1),
                "Gid" => id.gid = numbers.nth(1),
                "Groups" => id.groups = numbers.collect(),
                _ => {}
            }
        }
        id
    }

    fn describe(&self) -> String {
        let n = |v: Option<u32>| v.map_or("?".to_string(), |v| v.to_string());
        let groups: Vec<String> = self.groups.iter().map(u32::to_string).collect();
        format!(
            "uid {}, gid {}, supplementary groups [{}]",
            n(self.uid),
            n(self.gid),
            groups.join(", ")
        )
    }
}

/// A model file this process may not read: who it runs as, and how to grant it read access
/// where the user sets it (file modes for the CLI; the pod's security context for the agent,
/// which runs as the image's non-root user).
pub fn unreadable_fix(hints: FixHints, who: &Credentials) -> String {
    match hints {
        FixHints::Cli => format!(
            "this command runs as {}; make the model's files readable by it (a group it is in with g+r, or o+r), or run it as a user who can read them",
            who.describe()
        ),
        FixHints::ModelValidation => format!(
            "the verifier runs as {}; make the model's files readable by it: give them a group with g+r and list that group in the pod's spec.securityContext.supplementalGroups (or set spec.securityContext.fsGroup on a volume whose ownership Kubernetes manages, such as an emptyDir or most PVCs), or make them world-readable (o+r)",
            who.describe()
        ),
    }
}

fn sigstore_fix(e: &SigstoreError, hints: FixHints) -> Option<String> {
    use Setting::*;
    Some(match (e, hints) {
        (SigstoreError::TrustRoot { .. }, FixHints::Cli) => {
            "pass a valid trusted_root.json with --trusted-root or a ClientTrustConfig with --trust-config".into()
        }
        (SigstoreError::TrustRoot { .. }, FixHints::ModelValidation) => {
            format!("{} to a valid ClientTrustConfig", TrustRoot.set(hints))
        }
        (SigstoreError::WrongTrustFile { found, .. }, FixHints::Cli) => match found {
            TrustFile::ClientTrustConfig => "pass it with --trust-config".into(),
            TrustFile::TrustedRoot => "pass it with --trusted-root".into(),
        },
        (SigstoreError::WrongTrustFile { .. }, FixHints::ModelValidation) => format!(
            "{} must name a ClientTrustConfig",
            TrustRoot.name(hints)
        ),
        (
            SigstoreError::Check {
                check: Check::Timestamp | Check::CertificateChain | Check::Sct | Check::UnknownLog,
                ..
            },
            _,
        ) => format!("the trust root is chosen with {}", TrustRoot.name(hints)),
        (SigstoreError::Identity { .. }, _) => format!("check {}", Identity.name(hints)),
        (SigstoreError::Issuer { .. }, _) => format!("check {}", Issuer.name(hints)),
        _ => return None,
    })
}

/// [`sigstore_fix`] for a trust root that came from `--trust-config-env` or
/// `--trusted-root-env` (`env`).
fn sigstore_env_fix(e: &SigstoreError, hints: FixHints, env: Setting) -> Option<String> {
    use Setting::*;
    // The CLI's flag names the variable; a ModelValidation field holds the JSON itself.
    let holder = |s: Setting| match hints {
        FixHints::Cli => format!("the variable named by {}", s.name(hints)),
        FixHints::ModelValidation => s.name(hints).to_string(),
    };
    Some(match e {
        SigstoreError::TrustRoot { .. } => {
            let kind = match env {
                TrustConfigEnv => "ClientTrustConfig",
                _ => "Sigstore trusted root",
            };
            format!("{} must hold a valid {kind}", holder(env))
        }
        SigstoreError::WrongTrustFile { found, .. } => {
            let right = match found {
                TrustFile::ClientTrustConfig => TrustConfigEnv,
                TrustFile::TrustedRoot => TrustedRootEnv,
            };
            match hints {
                FixHints::Cli => format!("pass it with {}", right.name(hints)),
                FixHints::ModelValidation => format!("put it in {}", right.name(hints)),
            }
        }
        SigstoreError::Check {
            check: Check::Timestamp | Check::CertificateChain | Check::Sct | Check::UnknownLog,
            ..
        } => format!("the trust root is chosen with {}", env.name(hints)),
        _ => return sigstore_fix(e, hints),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credentials_read_the_effective_ids_and_groups() {
        let status = "Name:\tx\nUid:\t0\t65532\t65532\t65532\nGid:\t0\t65533\t65533\t65533\nGroups:\t4242 5000 \n";
        let id = Credentials::parse(status);
        assert_eq!(id.uid, Some(65532));
        assert_eq!(id.gid, Some(65533));
        assert_eq!(id.groups, vec![4242, 5000]);
        let fix = unreadable_fix(FixHints::ModelValidation, &id);
        assert!(
            fix.starts_with(
                "the verifier runs as uid 65532, gid 65533, supplementary groups [4242, 5000];"
            ),
            "{fix}"
        );
        assert_eq!(Credentials::parse(""), Credentials::default());
    }

    fn both(e: Error) -> (String, String) {
        let e = anyhow::Error::from(e);
        (
            render(&e, FixHints::Cli),
            render(&e, FixHints::ModelValidation),
        )
    }

    #[test]
    fn wrong_method_points_to_the_method_it_was_made_with() {
        for (found, cli, mv) in [
            (
                SignatureMethod::Key,
                "use `verify key`",
                "set spec.config.publicKeyConfig",
            ),
            (
                SignatureMethod::Certificate,
                "use `verify certificate`",
                "set spec.config.pkiConfig",
            ),
            (
                SignatureMethod::Sigstore,
                "use `verify sigstore`",
                "set spec.config.sigstoreConfig",
            ),
        ] {
            let (c, m) = both(Error::WrongMethod {
                expected: SignatureMethod::Key,
                found: Some(found),
            });
            assert!(c.ends_with(cli), "{c}");
            assert!(m.ends_with(mv), "{m}");
        }
    }

    #[test]
    fn trust_files_of_the_other_kind_name_the_right_flag() {
        let (c, m) = both(Error::Sigstore(SigstoreError::WrongTrustFile {
            name: "r.json".into(),
            found: TrustFile::TrustedRoot,
        }));
        assert!(c.contains("pass it with --trusted-root"), "{c}");
        assert!(
            m.contains("spec.config.clientTrustConfig.trustConfigPath"),
            "{m}"
        );
        let (c, _) = both(Error::Sigstore(SigstoreError::WrongTrustFile {
            name: "c.json".into(),
            found: TrustFile::ClientTrustConfig,
        }));
        assert!(c.contains("pass it with --trust-config"), "{c}");
    }

    #[test]
    fn a_root_without_the_signers_log_or_timestamp_names_the_trust_flags() {
        for check in [Check::Timestamp, Check::UnknownLog] {
            let (c, m) = both(Error::Sigstore(SigstoreError::Check {
                check,
                detail: "d".into(),
                root: "embedded Sigstore staging root".into(),
            }));
            assert!(c.contains("--trust-config"), "{c}");
            assert!(
                m.contains("spec.config.clientTrustConfig.trustConfigPath"),
                "{m}"
            );
            assert!(!m.contains("--"), "{m}");
        }
    }

    #[test]
    fn trust_from_the_environment_names_the_env_setting_in_both_wordings() {
        let check = || {
            Error::Sigstore(SigstoreError::Check {
                check: Check::UnknownLog,
                detail: "d".into(),
                root: "environment variable R".into(),
            })
        };
        for (env, cli, mv) in [
            (
                Setting::TrustConfigEnv,
                "the trust root is chosen with --trust-config-env",
                "the trust root is chosen with spec.config.clientTrustConfig.trustConfigJson",
            ),
            (
                Setting::TrustedRootEnv,
                "the trust root is chosen with --trusted-root-env",
                "the trust root is chosen with spec.config.clientTrustConfig.trustedRootJson",
            ),
        ] {
            let e = anyhow::Error::from(check()).context(TrustFromEnv(env));
            assert!(render(&e, FixHints::Cli).ends_with(cli), "{e:?}");
            assert!(render(&e, FixHints::ModelValidation).ends_with(mv), "{e:?}");
            // The marker prints nothing: the message is the error's own.
            assert!(!render(&e, FixHints::Cli).starts_with(": "), "{e:?}");
        }
        let e = anyhow::Error::from(Error::NoTrustedCa)
            .context(TrustFromEnv(Setting::CertificateAuthorityEnv));
        assert!(
            render(&e, FixHints::ModelValidation)
                .contains("set spec.config.pkiConfig.certificateAuthorityPem with the root"),
            "{e:?}"
        );
        // Passing twin of the wording: without the marker, the path settings as before.
        let (c, m) = both(check());
        assert!(c.contains("--trust-config or --trusted-root"), "{c}");
        assert!(
            m.ends_with("spec.config.clientTrustConfig.trustConfigPath"),
            "{m}"
        );
    }

    #[test]
    fn identity_and_issuer_name_their_settings() {
        let (c, m) = both(Error::Sigstore(SigstoreError::Identity {
            expected: "a".into(),
            actual: vec!["b".into()],
        }));
        assert!(
            c.contains("check --identity, or use --identity-regexp"),
            "{c}"
        );
        assert!(
            m.contains("spec.config.sigstoreConfig.certificateIdentity"),
            "{m}"
        );
        let (c, m) = both(Error::Sigstore(SigstoreError::Issuer {
            expected: "a".into(),
            actual: None,
        }));
        assert!(c.contains("check --identity-provider"), "{c}");
        assert!(
            m.contains("spec.config.sigstoreConfig.certificateOidcIssuer"),
            "{m}"
        );
    }

    #[test]
    fn a_cause_quoted_by_its_error_is_not_repeated() {
        let io = std::io::Error::from(std::io::ErrorKind::NotFound);
        let text = io.to_string();
        let e = anyhow::Error::from(Unreadable {
            setting: Setting::PublicKey,
            what: "public key",
            path: "k.pub".into(),
            source: io,
        });
        let c = render(&e, FixHints::Cli);
        assert_eq!(
            c,
            format!("cannot read public key k.pub: {text}; check --public-key")
        );
        let m = render(&e, FixHints::ModelValidation);
        assert!(
            m.ends_with("check spec.config.publicKeyConfig.keyPath"),
            "{m}"
        );
        let e = e.context(format!("outer: {text}"));
        assert_eq!(render(&e, FixHints::Cli).matches(&text).count(), 1);
    }
}
