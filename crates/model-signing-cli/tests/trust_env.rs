//! Trust material from environment variables (`--public-key-env`, `--certificate-chain-env`,
//! `--trust-config-env`, `--trusted-root-env`), as the operator passes the material of a
//! ModelValidation to its agent: it verifies like the file would, failures name the variable
//! (never its value) and the setting to fix in both wordings, and every refusal has a passing
//! twin.

mod support;

use std::ffi::OsStr;
use std::fs;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::mpsc::channel;
use std::time::{Duration, Instant};

use serde_json::Value;
use support::{
    AT_TIME, BIN, fixture, golden, model, s, sign_with_certificate, sign_with_key, stderr, stdout,
};

/// The variable every test here puts its material in (each test process has its own env).
const VAR: &str = "MODEL_SIGNING_TEST_TRUST";
const MV: [&str; 2] = ["--fix-hints", "model-validation"];

/// Runs the binary with `VAR` set to `value` (or removed when `None`).
fn run_with(value: Option<&[u8]>, args: &[&str]) -> Output {
    let mut c = Command::new(BIN);
    c.args(args).env_remove(VAR);
    if let Some(v) = value {
        c.env(VAR, <OsStr as std::os::unix::ffi::OsStrExt>::from_bytes(v));
    }
    c.output().unwrap()
}

fn read(p: &Path) -> Vec<u8> {
    fs::read(p).unwrap()
}

/// A signed model and its signature (outside the model).
fn signed(dir: &Path) -> (PathBuf, PathBuf) {
    let m = model(dir);
    let sig = sign_with_key(&m, &[]);
    (m, sig)
}

/// `verify METHOD m --signature sig` with `extra` and `VAR` set to `value`; returns the output
/// and the result file's line.
fn verify_env(
    method: &str,
    m: &Path,
    sig: &Path,
    value: Option<&[u8]>,
    extra: &[&str],
) -> (Output, String) {
    let result = m.with_extension("result");
    let _ = fs::remove_file(&result);
    let mut args = vec!["verify", method, s(m), "--signature", s(sig)];
    args.extend_from_slice(&["--result-file", s(&result)]);
    args.extend_from_slice(extra);
    let o = run_with(value, &args);
    (o, fs::read_to_string(&result).unwrap_or_default())
}

/// `verify key` with `--public-key-env VAR` and `extra`.
fn verify_key_env(m: &Path, sig: &Path, key: Option<&[u8]>, extra: &[&str]) -> (Output, String) {
    let mut args = vec!["--public-key-env", VAR];
    args.extend_from_slice(extra);
    verify_env("key", m, sig, key, &args)
}

fn passed(o: &Output) {
    assert_eq!(o.status.code(), Some(0), "{}", stderr(o));
    assert_eq!(stdout(o), "Verification succeeded\n");
}

/// A refusal (exit 1) whose stderr and result file both say every `wanted` text.
fn refused(o: &Output, line: &str, wanted: &[&str]) {
    let err = stderr(o);
    assert_eq!(o.status.code(), Some(1), "{err}");
    for w in wanted {
        assert!(err.contains(w), "stderr lacks {w:?}: {err}");
        assert!(line.contains(w), "result file lacks {w:?}: {line}");
    }
}

#[test]
fn a_public_key_from_the_environment_verifies_in_every_spelling() {
    let d = tempfile::tempdir().unwrap();
    let (m, sig) = signed(d.path());
    let key = read(&fixture("peer-samples/ec-p256.pub.pem"));
    let (o, line) = verify_key_env(&m, &sig, Some(&key), &[]);
    passed(&o);
    assert!(line.starts_with("verified: 3 files"), "{line}");
    // JSON names where the key came from: the variable, never its value.
    let (o, _) = verify_key_env(&m, &sig, Some(&key), &["--output", "json"]);
    let v: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(
        v["trust"],
        serde_json::json!([format!("environment variable {VAR}")])
    );
    assert!(!stdout(&o).contains("BEGIN PUBLIC KEY"), "{}", stdout(&o));
    // The underscore alias, like the other flags.
    let o = run_with(
        Some(&key),
        &[
            "verify",
            "key",
            s(&m),
            "--signature",
            s(&sig),
            "--public_key_env",
            VAR,
        ],
    );
    passed(&o);
}

#[test]
fn a_wrong_key_in_the_environment_fails_naming_the_variable_not_the_key() {
    let d = tempfile::tempdir().unwrap();
    let (m, sig) = signed(d.path());
    let wrong = read(&fixture("peer-samples/keys/p384.pub"));
    let (o, line) = verify_key_env(&m, &sig, Some(&wrong), &["--output", "json"]);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    let v: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["error"]["kind"], "key_mismatch");
    let message = v["error"]["message"].as_str().unwrap();
    assert!(
        message.contains(&format!("different key than environment variable {VAR}")),
        "{message}"
    );
    assert!(
        line.contains(&format!("environment variable {VAR}")),
        "{line}"
    );
    let pem = String::from_utf8(wrong).unwrap();
    let body = pem.lines().nth(1).unwrap();
    assert!(!message.contains(body) && !line.contains(body), "{message}");
    // Passing twin: the right key in the same variable.
    let right = read(&fixture("peer-samples/ec-p256.pub.pem"));
    let (o, _) = verify_key_env(&m, &sig, Some(&right), &[]);
    passed(&o);
}

#[test]
fn an_unset_or_empty_variable_fails_naming_it_and_the_setting() {
    let d = tempfile::tempdir().unwrap();
    let (m, sig) = signed(d.path());
    for (value, problem) in [(None, "it is not set"), (Some(&b""[..]), "it is empty")] {
        let says = format!("cannot read public key from environment variable {VAR}: {problem}");
        let (o, line) = verify_key_env(&m, &sig, value, &[]);
        refused(&o, &line, &[&says, "check --public-key-env"]);
        assert!(!stderr(&o).contains("spec."), "{}", stderr(&o));
        let (o, line) = verify_key_env(&m, &sig, value, &MV);
        refused(
            &o,
            &line,
            &[&says, "check spec.config.publicKeyConfig.keyPem"],
        );
        assert!(!stderr(&o).contains("--"), "{}", stderr(&o));
    }
}

#[test]
fn a_variable_that_is_not_a_pem_key_is_named_as_the_file_would_be() {
    let d = tempfile::tempdir().unwrap();
    let (m, sig) = signed(d.path());
    let (o, line) = verify_key_env(&m, &sig, Some(b"not a key"), &[]);
    refused(&o, &line, &[&format!("environment variable {VAR}")]);
    let err = stderr(&o);
    assert!(!err.contains("not a key"), "the value leaked: {err}");
    // The same bytes in a file fail the same way, naming the file.
    let file = d.path().join("bad.pub");
    fs::write(&file, "not a key").unwrap();
    let o = run_with(
        None,
        &[
            "verify",
            "key",
            s(&m),
            "--signature",
            s(&sig),
            "--public_key",
            s(&file),
        ],
    );
    assert_eq!(o.status.code(), Some(1));
    assert_eq!(
        stderr(&o).replace(s(&file), "SOURCE"),
        err.replace(&format!("environment variable {VAR}"), "SOURCE")
    );
}

#[test]
fn public_key_flags_exclude_each_other_and_one_is_required() {
    let key = fixture("peer-samples/ec-p256.pub.pem");
    let base = ["verify", "key", "m", "--signature", "x"];
    for extra in [
        &["--public_key", s(&key), "--public-key-env", VAR][..],
        &["--public-key", s(&key), "--public_key_env", VAR][..],
        &[][..],
    ] {
        let mut args = base.to_vec();
        args.extend_from_slice(extra);
        let o = run_with(Some(b"x"), &args);
        assert_eq!(o.status.code(), Some(2), "{extra:?}: {}", stderr(&o));
    }
    let o = run_with(None, &["verify", "key", "--help"]);
    assert!(
        stdout(&o).contains("--public-key-env <NAME>"),
        "{}",
        stdout(&o)
    );
    let o = run_with(None, &["--help"]);
    assert!(
        stdout(&o).contains("--public-key-env MODEL_SIGNING_PUBLIC_KEY"),
        "{}",
        stdout(&o)
    );
}

/// A model signed with the peer-samples PKI (leaf, intermediate shipped in the signature).
fn certificate_signed(dir: &Path) -> (PathBuf, PathBuf) {
    let m = model(dir);
    let sig = dir.join("cert.sig");
    sign_with_certificate(&m, &sig);
    (m, sig)
}

fn verify_cert(m: &Path, sig: &Path, cas: Option<&[u8]>, extra: &[&str]) -> (Output, String) {
    let mut args = vec!["--at-time", AT_TIME];
    args.extend_from_slice(extra);
    verify_env("certificate", m, sig, cas, &args)
}

#[test]
fn ca_certificates_from_the_environment_verify_alone_or_with_files() {
    let d = tempfile::tempdir().unwrap();
    let (m, sig) = certificate_signed(d.path());
    let pki = fixture("peer-samples/pki");
    // Several certificates concatenated in one variable: an unrelated root, then the right one.
    let mut both = read(&pki.join("old-root.cert.pem"));
    both.extend(read(&pki.join("root-ca.cert.pem")));
    let (o, _) = verify_cert(&m, &sig, Some(&both), &["--certificate-chain-env", VAR]);
    passed(&o);
    // Combined with a file: the file's root and the variable's are all trusted.
    let root = pki.join("root-ca.cert.pem");
    let old = read(&pki.join("old-root.cert.pem"));
    let (o, _) = verify_cert(
        &m,
        &sig,
        Some(&old),
        &[
            "--certificate_chain_env",
            VAR,
            "--certificate_chain",
            s(&root),
            "--output",
            "json",
        ],
    );
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let v: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(
        v["trust"],
        serde_json::json!([s(&root), format!("environment variable {VAR}")])
    );
    // Neither: nothing is trusted by default, as before.
    let (o, line) = verify_cert(&m, &sig, None, &[]);
    refused(&o, &line, &["nothing is trusted by default"]);
}

#[test]
fn an_untrusted_ca_in_the_environment_names_the_env_setting_in_both_wordings() {
    let d = tempfile::tempdir().unwrap();
    let (m, sig) = certificate_signed(d.path());
    let old = read(&fixture("peer-samples/pki/old-root.cert.pem"));
    let flags = ["--certificate-chain-env", VAR];
    let (o, line) = verify_cert(&m, &sig, Some(&old), &flags);
    refused(
        &o,
        &line,
        &["trust the CA that issued it with --certificate-chain-env"],
    );
    let (o, line) = verify_cert(&m, &sig, Some(&old), &[flags[0], flags[1], MV[0], MV[1]]);
    refused(
        &o,
        &line,
        &["trust the CA that issued it with spec.config.pkiConfig.certificateAuthorityPem"],
    );
    // An unset variable is named, with its setting.
    let (o, line) = verify_cert(&m, &sig, None, &[flags[0], flags[1], MV[0], MV[1]]);
    refused(
        &o,
        &line,
        &[
            &format!("cannot read CA certificates from environment variable {VAR}: it is not set"),
            "check spec.config.pkiConfig.certificateAuthorityPem",
        ],
    );
    // Passing twin: the right root in the same variable, in both wordings.
    let root = read(&fixture("peer-samples/pki/root-ca.cert.pem"));
    let (o, _) = verify_cert(&m, &sig, Some(&root), &[flags[0], flags[1], MV[0], MV[1]]);
    passed(&o);
}

const IDENTITY: &str = "stefanb@us.ibm.com";
const ISSUER: &str = "https://sigstore.verify.ibm.com/oauth2";

/// `--output json verify sigstore` of the v1.1.0 golden with `extra` flags and `VAR`.
fn verify_sigstore(value: Option<&[u8]>, extra: &[&str]) -> Output {
    let m = golden("v1.1.0-sigstore");
    let sig = m.join("model.sig");
    let ignore = m.join("ignore-me");
    let mut args = vec!["--output", "json", "verify", "sigstore", s(&m)];
    args.extend_from_slice(&["--signature", s(&sig), "--ignore-paths", s(&ignore)]);
    args.extend_from_slice(&["--identity", IDENTITY, "--identity_provider", ISSUER]);
    args.extend_from_slice(extra);
    run_with(value, &args)
}

/// The offline production ClientTrustConfig fixture, and its trusted root alone.
fn sigstore_trust() -> (Vec<u8>, Vec<u8>) {
    let cfg = read(&fixture(
        "peer-samples/offline-production-trust-config.json",
    ));
    let v: Value = serde_json::from_slice(&cfg).unwrap();
    (cfg, v["trustedRoot"].to_string().into_bytes())
}

#[test]
fn sigstore_trust_from_the_environment_verifies_and_is_reported_by_name() {
    let (cfg, root) = sigstore_trust();
    for (value, flag) in [
        (&cfg, "--trust-config-env"),
        (&cfg, "--trust_config_env"),
        (&root, "--trusted-root-env"),
        (&root, "--trusted_root_env"),
    ] {
        let o = verify_sigstore(Some(value), &[flag, VAR]);
        assert_eq!(o.status.code(), Some(0), "{flag}: {}", stderr(&o));
        let v: Value = serde_json::from_slice(&o.stdout).unwrap();
        let signer = v["signer"].as_str().unwrap();
        assert!(
            signer.contains(&format!("environment variable {VAR}")),
            "{flag}: {signer}"
        );
        assert!(!signer.contains("mediaType"), "{signer}");
        assert_eq!(
            v["trust"],
            serde_json::json!([format!("environment variable {VAR}")])
        );
    }
}

#[test]
fn sigstore_trust_of_the_wrong_kind_or_missing_names_the_env_settings() {
    let (cfg, root) = sigstore_trust();
    let message = |o: &Output| {
        assert_eq!(o.status.code(), Some(1), "{}", stderr(o));
        let v: Value = serde_json::from_slice(&o.stdout).unwrap();
        v["error"]["message"].as_str().unwrap().to_string()
    };
    // Each kind of JSON in the other kind's variable names the right one, in both wordings.
    for (value, flag, cli, mv) in [
        (
            &root,
            "--trust-config-env",
            "pass it with --trusted-root-env",
            "put it in spec.config.clientTrustConfig.trustedRootJson",
        ),
        (
            &cfg,
            "--trusted-root-env",
            "pass it with --trust-config-env",
            "put it in spec.config.clientTrustConfig.trustConfigJson",
        ),
    ] {
        let m = message(&verify_sigstore(Some(value), &[flag, VAR]));
        assert!(m.ends_with(cli), "{m}");
        let m = message(&verify_sigstore(Some(value), &[flag, VAR, MV[0], MV[1]]));
        assert!(m.ends_with(mv), "{m}");
    }
    let o = verify_sigstore(Some(b"{"), &["--trust-config-env", VAR, MV[0], MV[1]]);
    let m = message(&o);
    assert!(m.contains(&format!("environment variable {VAR}")), "{m}");
    assert!(
        m.ends_with(
            "spec.config.clientTrustConfig.trustConfigJson must hold a valid ClientTrustConfig"
        ),
        "{m}"
    );
    let o = verify_sigstore(Some(b""), &["--trusted-root-env", VAR]);
    let m = message(&o);
    assert!(
        m.contains(&format!(
            "cannot read Sigstore trusted root from environment variable {VAR}: it is empty"
        )) && m.ends_with("check --trusted-root-env"),
        "{m}"
    );
    let o = verify_sigstore(None, &["--trusted-root-env", VAR, MV[0], MV[1]]);
    let m = message(&o);
    assert!(
        m.contains("it is not set")
            && m.ends_with("check spec.config.clientTrustConfig.trustedRootJson"),
        "{m}"
    );
}

#[test]
fn sigstore_env_flags_conflict_like_their_path_twins() {
    let (cfg, _) = sigstore_trust();
    for extra in [
        &["--trust-config-env", VAR, "--trust_config", "c.json"][..],
        &["--trusted-root-env", VAR, "--trusted_root", "r.json"][..],
        &["--trust-config-env", VAR, "--trusted-root-env", VAR][..],
        &["--trust-config-env", VAR, "--trusted_root", "r.json"][..],
        &["--trusted-root-env", VAR, "--use_staging"][..],
    ] {
        let o = verify_sigstore(Some(&cfg), extra);
        assert_eq!(o.status.code(), Some(2), "{extra:?}: {}", stderr(&o));
    }
    let o = run_with(None, &["verify", "sigstore", "--help"]);
    for flag in ["--trust-config-env <NAME>", "--trusted-root-env <NAME>"] {
        assert!(stdout(&o).contains(flag), "{}", stdout(&o));
    }
    let o = run_with(None, &["verify", "certificate", "--help"]);
    assert!(
        stdout(&o).contains("--certificate-chain-env <NAME>"),
        "{}",
        stdout(&o)
    );
}

#[test]
fn watch_mode_verifies_again_with_the_material_read_at_start() {
    let d = tempfile::tempdir().unwrap();
    let (m, sig) = signed(d.path());
    let key = read(&fixture("peer-samples/ec-p256.pub.pem"));
    let mut child = Command::new(BIN)
        .args([
            "--output",
            "json",
            "verify",
            "key",
            s(&m),
            "--signature",
            s(&sig),
        ])
        .args(["--public-key-env", VAR, "--interval", "1s"])
        .args(["--health-addr", "127.0.0.1:0"])
        .env(VAR, OsStr::new(std::str::from_utf8(&key).unwrap()))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let err = child.stderr.take().unwrap();
    let (tx, lines) = channel();
    std::thread::spawn(move || {
        for line in BufReader::new(err).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut verified = 0;
    let mut seen = Vec::new();
    while verified < 2 {
        let left = deadline.saturating_duration_since(Instant::now());
        let Ok(line) = lines.recv_timeout(left) else {
            break;
        };
        let v: Value = serde_json::from_str(&line).unwrap_or_default();
        if v["event"] == "verification" {
            assert_eq!(v["ok"], true, "{line}");
            verified += 1;
        }
        seen.push(line);
    }
    let _ = child.kill();
    let _ = child.wait();
    assert_eq!(verified, 2, "{seen:?}");
    // An unset variable stops watch mode at once, as a missing key file does, with the reason
    // in the result file.
    let watch = ["--interval", "1s", "--health-addr", "127.0.0.1:0"];
    let (o, line) = verify_key_env(&m, &sig, None, &watch);
    assert!(line.contains("it is not set"), "{line}");
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("it is not set"), "{}", stderr(&o));
}
