//! `verify key|certificate|sigstore|authorities`.

use std::path::{Path, PathBuf};
use std::time::{Instant, SystemTime};

use anyhow::{Result, bail};
use model_signing::authorities::{
    AuthoritiesDocument, AuthoritiesError, AuthoritiesReport, Authority, BuiltAuthority, Required,
    verify_with_authorities,
};
use model_signing::bundle::read_signature_file;
use model_signing::keys::PublicKey;
use model_signing::serialize::HashOptions;
use model_signing::sigstore::{
    Matcher, SigstoreError, SigstorePolicy, SigstoreTrust, SigstoreVerifier,
};
use model_signing::verify::{
    CertificateVerifier, EnvelopeVerifier, KeyVerifier, VerifyOptions, VerifyReport, verify_model,
};
use model_signing::x509::Certificate;
use serde_json::json;

use crate::args::{FixHints, SigstoreIdentityArgs, VerifyCommon, VerifyMethod, VerifySigstoreArgs};
use crate::fix::{Setting, TrustFromEnv, render};
use crate::material::{EnvMaterial, Material, env_setting, from_file};
use crate::progress::Bar;
use crate::report::Outcome;
use crate::selection::selection;

/// Kubernetes keeps at most 4096 bytes of a termination message.
const RESULT_FILE_LIMIT: usize = 4096;

/// Writes `line` (one line, at most 4096 bytes) to the result file, best effort.
pub fn write_result_file(path: &Path, line: &str) {
    let mut line = line.replace('\n', " ");
    if line.len() > RESULT_FILE_LIMIT - 1 {
        let mut cut = RESULT_FILE_LIMIT - 4;
        while !line.is_char_boundary(cut) {
            cut -= 1;
        }
        line.truncate(cut);
        line.push_str("...");
    }
    // Best effort: the exit code is what decides; a read-only file system must not turn a
    // verified model into a failure or hide a real failure.
    if let Err(e) = std::fs::write(path, format!("{line}\n")) {
        eprintln!("WARNING: cannot write result file {}: {e}", path.display());
    }
}

/// The one-line outcome written to `--result-file` (and logged by watch mode).
pub fn result_line(result: &Result<Outcome>, hints: FixHints) -> String {
    match result {
        Ok(o) => o.json["summary"].as_str().unwrap_or("verified").to_string(),
        Err(e) => format!("verification failed: {}", render(e, hints)),
    }
}

/// What verifies, and where its trust material came from: paths, `environment variable NAME`
/// (never the value), or the embedded Sigstore root's name.
struct Built {
    verifiers: Verifiers,
    trust: Vec<String>,
}

/// One verifier (`verify key|certificate|sigstore`), or several authorities and the rule on how
/// many must vouch (`verify authorities`).
enum Verifiers {
    One(Box<dyn EnvelopeVerifier>),
    Authorities {
        list: Vec<BuiltAuthority>,
        required: Required,
    },
}

/// What a verification established: one signer's report, or the authorities that vouched.
enum Verified {
    One(VerifyReport),
    Authorities {
        report: AuthoritiesReport,
        total: usize,
    },
}

impl Verified {
    /// The report whose manifest the summary describes (every vouching signature matched the
    /// same files).
    fn primary(&self) -> &VerifyReport {
        match self {
            Verified::One(r) => r,
            // At least one authority vouched, or verification failed before this.
            Verified::Authorities { report, .. } => &report.vouched[0].report,
        }
    }
}

fn verify_inner(
    common: &VerifyCommon,
    built: &Built,
    jobs: usize,
    show_progress: bool,
) -> Result<Outcome> {
    let started = Instant::now();
    let (signatures, read_by) = signature_files(common, built);
    let sel = selection(
        &common.model,
        &signatures.iter().map(PathBuf::as_path).collect::<Vec<_>>(),
    )?;
    let bar = Bar::new(show_progress);
    let opts = VerifyOptions {
        extra_ignore_paths: sel.ignore_paths,
        ignore_git_paths: sel.ignore_git_paths,
        allow_symlinks: sel.allow_symlinks,
        ignore_unsigned_files: common.ignore_unsigned_files && !common.no_ignore_unsigned_files,
        hashing: HashOptions {
            jobs,
            progress: Some(&bar),
        },
    };
    let model = &common.model.model_path;
    tracing::debug!(
        model = %model.display(),
        signatures = ?signatures,
        ignore_unsigned_files = opts.ignore_unsigned_files,
        allow_symlinks = opts.allow_symlinks,
        jobs,
        "verifying"
    );
    let verified = match &built.verifiers {
        Verifiers::One(verifier) => {
            let bundle =
                read_signature_file(&common.signature).map_err(model_signing::Error::from)?;
            let verified = verify_model(model, &bundle, verifier.as_ref(), &opts);
            bar.finish();
            Verified::One(verified?)
        }
        Verifiers::Authorities { list, required } => {
            // Each file once; one that cannot be read refuses only the authorities that read
            // it (the error is kept as text: each of them gets its own copy).
            let files: Vec<Result<Vec<u8>, String>> = signatures
                .iter()
                .map(|p| read_signature_file(p).map_err(|e| e.to_string()))
                .collect();
            let authorities = list
                .iter()
                .zip(&read_by)
                .map(|(a, &file)| Authority {
                    name: a.name.clone(),
                    verifier: a.verifier.as_ref(),
                    signature: files[file]
                        .as_deref()
                        .map_err(|e| model_signing::Error::Usage(e.clone())),
                })
                .collect();
            let verified = verify_with_authorities(model, authorities, *required, &opts);
            bar.finish();
            let report = verified.map_err(|e| match e {
                // The model itself could not be read: the engine's error, with its fix.
                AuthoritiesError::Model(e) => anyhow::Error::from(e),
                e => anyhow::Error::from(e),
            })?;
            Verified::Authorities {
                report,
                total: list.len(),
            }
        }
    };
    let report = verified.primary();
    let s = &report.manifest.serialization;
    let files = report
        .manifest
        .resources
        .iter()
        .map(|r| &r.name.path)
        .collect::<std::collections::BTreeSet<_>>()
        .len();
    let by = match &verified {
        Verified::One(r) => r.signer.to_string(),
        Verified::Authorities { report, total } => format!(
            "{} of {total} authorities ({} required): {}",
            report.vouched.len(),
            report.required,
            report
                .vouched
                .iter()
                .map(|v| format!("{} ({})", v.name, v.report.signer))
                .collect::<Vec<_>>()
                .join(", ")
        ),
    };
    tracing::debug!(
        files,
        bytes = report.bytes,
        elapsed_ms = started.elapsed().as_millis() as u64,
        "verified"
    );
    let summary = format!(
        "verified: {files} files ({} bytes, {} {}) signed by {by}",
        report.bytes,
        s.method.name(),
        s.hash,
    );
    let mut json = json!({
        "summary": summary,
        "signer": report.signer.to_string(),
        "files": files,
        "resources": report.manifest.resources.len(),
        "bytes": report.bytes,
        "serialization": {"method": s.method.name(), "hash_type": s.hash.name(), "ignore_paths": s.ignore_paths},
        "trust": built.trust,
        "elapsed_ms": started.elapsed().as_millis() as u64,
    });
    let warnings = match &verified {
        Verified::One(r) => r.warnings.clone(),
        Verified::Authorities { report, .. } => {
            json["authorities"] = authorities_json(report);
            let mut all: Vec<String> = report
                .vouched
                .iter()
                .flat_map(|v| v.report.warnings.iter().cloned())
                .collect();
            all.sort();
            all.dedup();
            all
        }
    };
    Ok(Outcome {
        text: vec!["Verification succeeded".into()],
        json,
        warnings,
    })
}

/// `authorities` in the JSON result: who vouched (with the signer), who did not (and why).
fn authorities_json(report: &AuthoritiesReport) -> serde_json::Value {
    let vouched: Vec<_> = report
        .vouched
        .iter()
        .map(|v| json!({"name": v.name, "signer": v.report.signer.to_string()}))
        .collect();
    let refused: Vec<_> = report
        .refused
        .iter()
        .map(|r| json!({"name": r.name, "error": r.error.to_string()}))
        .collect();
    json!({"required": report.required, "vouched": vouched, "refused": refused})
}

/// The signature files a verification reads, each once (`--signature`, then the authorities'
/// own), and for each authority the index of the file it reads.
fn signature_files(common: &VerifyCommon, built: &Built) -> (Vec<PathBuf>, Vec<usize>) {
    let mut paths = vec![common.signature.clone()];
    let mut read_by = Vec::new();
    if let Verifiers::Authorities { list, .. } = &built.verifiers {
        for a in list {
            let path = a.signature.as_ref().unwrap_or(&common.signature);
            let at = match paths.iter().position(|p| p == path) {
                Some(i) => i,
                None => {
                    paths.push(path.clone());
                    paths.len() - 1
                }
            };
            read_by.push(at);
        }
    }
    (paths, read_by)
}

/// `verify <method>`, once: verifies, writes the result file, returns the outcome.
pub fn verify(method: &VerifyMethod, jobs: usize, show_progress: bool) -> Result<Outcome> {
    let result = EnvMaterial::read(method)
        .and_then(|env| build_verifier(method, &env, true))
        .and_then(|v| verify_inner(method.common(), &v, jobs, show_progress))
        .map_err(|e| marked(method, e));
    if let Some(path) = &method.common().result_file {
        write_result_file(path, &result_line(&result, method.common().fix_hints));
    }
    result
}

/// Reads the trust material of environment variables (once per process) and checks that the
/// key, CAs or trust root can be used at all (printing the CA fingerprints when asked).
pub fn start(method: &VerifyMethod) -> Result<EnvMaterial> {
    let env = EnvMaterial::read(method).map_err(|e| marked(method, e))?;
    build_verifier(method, &env, true).map_err(|e| marked(method, e))?;
    Ok(env)
}

/// One verification without side effects on the result file (watch mode writes it itself):
/// reads the key, CA or trust root files, the signature and the model again; material from
/// environment variables is the `env` read by [`start`].
pub fn check(method: &VerifyMethod, env: &EnvMaterial, jobs: usize) -> Result<Outcome> {
    let built = build_verifier(method, env, false).map_err(|e| marked(method, e))?;
    verify_inner(method.common(), &built, jobs, false).map_err(|e| marked(method, e))
}

/// Marks the failures of a verification whose trust material comes from an environment
/// variable, so that their fix names that setting.
fn marked(method: &VerifyMethod, e: anyhow::Error) -> anyhow::Error {
    match env_setting(method) {
        Some(s) if e.downcast_ref::<TrustFromEnv>().is_none() => e.context(TrustFromEnv(s)),
        _ => e,
    }
}

/// The verifier the method's flags describe, with the material of environment variables from
/// `env`. Certificate chains are checked against the time of this call. `log_fingerprints`
/// lets `--log-fingerprints` print the CA fingerprints.
fn build_verifier(
    method: &VerifyMethod,
    env: &EnvMaterial,
    log_fingerprints: bool,
) -> Result<Built> {
    Ok(match method {
        VerifyMethod::Key(a) => {
            let material = match (&a.public_key, &env.public_key) {
                (Some(path), _) => from_file(path, Setting::PublicKey, "public key")?,
                (None, Some(m)) => m.clone(),
                // clap requires exactly one of --public-key and --public-key-env.
                (None, None) => bail!(model_signing::Error::Usage(
                    "pass --public-key or --public-key-env".into()
                )),
            };
            Built {
                verifiers: Verifiers::One(Box::new(key_verifier(&material)?)),
                trust: vec![material.name],
            }
        }
        VerifyMethod::Certificate(a) => {
            let mut anchors = Vec::new();
            let mut trust = Vec::new();
            for p in &a.certificate_chain {
                let m = from_file(p, Setting::CertificateAuthority, "CA certificate file")?;
                anchors.extend(certificates(&m)?);
                trust.push(m.name);
            }
            if let Some(m) = &env.certificates {
                anchors.extend(certificates(m)?);
                trust.push(m.name.clone());
            }
            if a.log_fingerprints && log_fingerprints {
                for c in &anchors {
                    eprintln!(
                        "trusted CA '{}' sha256 {}",
                        c.subject(),
                        hex::encode(model_signing::hashing::sha256(c.der()))
                    );
                }
            }
            let at = at_time(a.at_time);
            Built {
                verifiers: Verifiers::One(Box::new(CertificateVerifier::new(anchors, at)?)),
                trust,
            }
        }
        VerifyMethod::Sigstore(a) => {
            let verifier = sigstore_verifier(a, env)?;
            Built {
                trust: vec![verifier.trust().name().to_string()],
                verifiers: Verifiers::One(Box::new(verifier)),
            }
        }
        VerifyMethod::Authorities(a) => {
            let material = match (&a.policy, &env.policy) {
                (Some(path), _) => from_file(path, Setting::Policy, "authorities document")?,
                (None, Some(m)) => m.clone(),
                // clap requires exactly one of --policy and --policy-env.
                (None, None) => bail!(model_signing::Error::Usage(
                    "pass --policy or --policy-env".into()
                )),
            };
            let document = AuthoritiesDocument::from_json(&material.name, &material.bytes)?;
            let list = document.build(at_time(a.at_time))?;
            Built {
                trust: list
                    .iter()
                    .map(|a| format!("{}: {}", a.name, a.trust))
                    .collect(),
                verifiers: Verifiers::Authorities {
                    list,
                    required: document.required,
                },
            }
        }
    })
}

/// The time certificates are checked at: now, or `--at-time` (tests).
fn at_time(secs: Option<u64>) -> SystemTime {
    secs.map_or_else(SystemTime::now, |secs| {
        SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(secs)
    })
}

/// The one parser of a PEM public key, from a file or a variable.
fn key_verifier(m: &Material) -> Result<KeyVerifier> {
    let key = PublicKey::from_pem(&m.name, &m.bytes).map_err(model_signing::Error::from)?;
    Ok(KeyVerifier::new(key, m.name.clone()))
}

/// The one parser of PEM CA certificates (one or more), from a file or a variable.
fn certificates(m: &Material) -> Result<Vec<Certificate>> {
    Ok(Certificate::all_from_pem(&m.name, &m.bytes).map_err(model_signing::Error::from)?)
}

/// Sigstore trust JSON from a variable, parsed by the engine's parser of the file's text.
fn sigstore_json(
    m: &Material,
    parse: fn(&str, &str) -> Result<SigstoreTrust, SigstoreError>,
) -> Result<SigstoreTrust, SigstoreError> {
    let text = std::str::from_utf8(&m.bytes).map_err(|e| SigstoreError::TrustRoot {
        name: m.name.clone(),
        detail: format!("not UTF-8 text ({e})"),
    })?;
    parse(&m.name, text)
}

/// The keyless verifier from `verify sigstore`'s flags: policy first, then the trust root.
fn sigstore_verifier(a: &VerifySigstoreArgs, env: &EnvMaterial) -> Result<SigstoreVerifier> {
    sigstore_verifier_from(&a.sigstore, env)
}

/// The keyless verifier from the flags (and the trust material read from the environment).
pub(crate) fn sigstore_verifier_from(
    a: &SigstoreIdentityArgs,
    env: &EnvMaterial,
) -> Result<SigstoreVerifier> {
    let usage = |m: String| model_signing::Error::Usage(m);
    let identity = match (&a.identity, &a.identity_regexp) {
        (Some(id), _) => Matcher::exact(id.as_str()),
        (None, Some(re)) => Matcher::regex("--identity-regexp", re).map_err(usage)?,
        (None, None) => bail!(usage("pass --identity or --identity-regexp".into())),
    };
    let issuer = match (&a.identity_provider, &a.identity_provider_regexp) {
        (Some(i), _) => Matcher::exact(i.as_str()),
        (None, Some(re)) => Matcher::regex("--identity-provider-regexp", re).map_err(usage)?,
        (None, None) => bail!(usage(
            "pass --identity-provider or --identity-provider-regexp".into()
        )),
    };
    let trust = if let Some(p) = &a.trust_config {
        SigstoreTrust::trust_config_file(p)
    } else if let Some(p) = &a.trusted_root {
        SigstoreTrust::trusted_root_file(p)
    } else if let Some(m) = &env.trust_config {
        sigstore_json(m, SigstoreTrust::from_trust_config_json)
    } else if let Some(m) = &env.trusted_root {
        sigstore_json(m, SigstoreTrust::from_trusted_root_json)
    } else if a.use_staging {
        SigstoreTrust::staging()
    } else {
        SigstoreTrust::production()
    }
    .map_err(model_signing::Error::from)?;
    Ok(SigstoreVerifier::new(
        trust,
        SigstorePolicy { identity, issuer },
    )?)
}
