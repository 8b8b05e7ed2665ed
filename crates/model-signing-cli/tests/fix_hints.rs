//! How a failed verification words its fix: as this command's flags (default), or as the
//! fields of a ModelValidation with the hidden `--fix-hints model-validation` that the operator
//! passes to its agent. Both on stderr and in the result file (the termination message). Each
//! refusal has a passing twin: the change the message names makes the same verification pass.

mod support;

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Output;

use support::{fixture, model, run, s, sign_with_key, stderr, stdout};

/// `verify <method...> m --signature sig` with `extra` flags; returns the output and the
/// result file's line.
fn verify(method: &[&str], m: &Path, sig: &Path, extra: &[&str]) -> (Output, String) {
    let result = m.with_extension("result");
    let mut args = vec!["verify"];
    args.extend_from_slice(method);
    args.extend_from_slice(&[s(m), "--signature", s(sig), "--result-file", s(&result)]);
    args.extend_from_slice(extra);
    let o = run(&args);
    let line = fs::read_to_string(&result).unwrap();
    (o, line)
}

fn verify_key(m: &Path, sig: &Path, extra: &[&str]) -> (Output, String) {
    let pubkey = fixture("peer-samples/ec-p256.pub.pem");
    verify(&["key", "--public_key", s(&pubkey)], m, sig, extra)
}

/// Asserts a refusal (exit 1) whose stderr and result file both contain every `wanted` text and
/// none of the `unwanted` ones; returns stderr.
fn refused(o: &Output, line: &str, wanted: &[&str], unwanted: &[&str]) -> String {
    let err = stderr(o);
    assert_eq!(o.status.code(), Some(1), "{err}");
    assert!(line.starts_with("verification failed: "), "{line}");
    for w in wanted {
        assert!(err.contains(w), "stderr lacks {w:?}: {err}");
        assert!(line.contains(w), "result file lacks {w:?}: {line}");
    }
    for u in unwanted {
        assert!(!err.contains(u), "stderr has {u:?}: {err}");
        assert!(!line.contains(u), "result file has {u:?}: {line}");
    }
    err
}

fn passed(o: &Output, line: &str) {
    assert_eq!(o.status.code(), Some(0), "{}", stderr(o));
    assert_eq!(stdout(o), "Verification succeeded\n");
    assert!(line.starts_with("verified: "), "{line}");
}

const MV: [&str; 2] = ["--fix-hints", "model-validation"];

/// A model with a symlink, signed with symlinks allowed.
fn model_with_symlink(dir: &Path) -> (PathBuf, PathBuf) {
    let m = model(dir);
    std::os::unix::fs::symlink("weights.bin", m.join("link.bin")).unwrap();
    let sig = sign_with_key(&m, &["--allow_symlinks"]);
    (m, sig)
}

#[test]
fn symlink_refused_names_the_flag_or_the_field() {
    let d = tempfile::tempdir().unwrap();
    let (m, sig) = model_with_symlink(d.path());
    let (o, line) = verify_key(&m, &sig, &[]);
    let err = refused(
        &o,
        &line,
        &["'link.bin' is a symlink", "--allow-symlinks"],
        &["spec."],
    );
    assert!(
        err.contains("pass --allow-symlinks if you accept that"),
        "{err}"
    );
    let (o, line) = verify_key(&m, &sig, &MV);
    let err = refused(
        &o,
        &line,
        &["'link.bin' is a symlink", "spec.model.allowSymlinks: true"],
        &["--allow_symlinks", "allow-symlinks"],
    );
    assert!(
        err.contains("set spec.model.allowSymlinks: true if you accept that"),
        "{err}"
    );
}

#[test]
fn symlink_allowed_passes_in_both_wordings() {
    let d = tempfile::tempdir().unwrap();
    let (m, sig) = model_with_symlink(d.path());
    let (o, line) = verify_key(&m, &sig, &["--allow_symlinks"]);
    passed(&o, &line);
    let (o, line) = verify_key(&m, &sig, &["--allow_symlinks", MV[0], MV[1]]);
    passed(&o, &line);
}

#[test]
fn unsigned_file_names_the_flags_or_the_fields() {
    let d = tempfile::tempdir().unwrap();
    let m = model(d.path());
    let sig = sign_with_key(&m, &[]);
    fs::write(m.join("extra.bin"), "new").unwrap();
    let (o, line) = verify_key(&m, &sig, &[]);
    refused(
        &o,
        &line,
        &[
            "not covered by the signature: extra.bin",
            "--ignore-paths",
            "--ignore-unsigned-files",
        ],
        &["spec."],
    );
    let (o, line) = verify_key(&m, &sig, &MV);
    refused(
        &o,
        &line,
        &[
            "not covered by the signature: extra.bin",
            "spec.model.ignorePaths",
            "spec.model.ignoreUnsignedFiles: true",
        ],
        &["--ignore"],
    );
    // An unsigned git file also names the git setting (signed without the git paths recorded as
    // ignored, else the recorded ignore paths would leave it out).
    let d = tempfile::tempdir().unwrap();
    let m = model(d.path());
    let sig = sign_with_key(&m, &["--no-ignore-git-paths"]);
    fs::write(m.join(".gitignore"), "x").unwrap();
    let (o, line) = verify_key(&m, &sig, &["--no-ignore-git-paths"]);
    refused(
        &o,
        &line,
        &["--ignore-git-paths/--no-ignore-git-paths"],
        &["spec."],
    );
    let (o, line) = verify_key(&m, &sig, &["--no-ignore-git-paths", MV[0], MV[1]]);
    refused(&o, &line, &["spec.model.ignoreGitPaths"], &["--ignore"]);
}

#[test]
fn unsigned_file_tolerated_passes_in_both_wordings() {
    let d = tempfile::tempdir().unwrap();
    let m = model(d.path());
    let sig = sign_with_key(&m, &[]);
    fs::write(m.join("extra.bin"), "new").unwrap();
    let (o, line) = verify_key(&m, &sig, &["--ignore_unsigned_files"]);
    passed(&o, &line);
    let (o, line) = verify_key(&m, &sig, &["--ignore_unsigned_files", MV[0], MV[1]]);
    passed(&o, &line);
}

/// `verify certificate` of a key-signed model.
fn verify_as_certificate(m: &Path, sig: &Path, extra: &[&str]) -> (Output, String) {
    let ca = fixture("peer-samples/pki/root-ca.cert.pem");
    verify(
        &["certificate", "--certificate_chain", s(&ca)],
        m,
        sig,
        extra,
    )
}

#[test]
fn wrong_method_names_the_command_or_the_config() {
    let d = tempfile::tempdir().unwrap();
    let m = model(d.path());
    let sig = sign_with_key(&m, &[]);
    let (o, line) = verify_as_certificate(&m, &sig, &[]);
    refused(
        &o,
        &line,
        &[
            "not made with a certificate chain but with a public key",
            "use `verify key`",
        ],
        &["spec."],
    );
    let (o, line) = verify_as_certificate(&m, &sig, &MV);
    refused(
        &o,
        &line,
        &[
            "not made with a certificate chain but with a public key",
            "set spec.config.publicKeyConfig",
        ],
        &["verify key", "--"],
    );
}

const ENOENT: &str = "No such file or directory (os error 2)";

#[test]
fn missing_signature_names_the_flag_or_the_field_and_its_cause_once() {
    let d = tempfile::tempdir().unwrap();
    let m = model(d.path());
    let missing = d.path().join("nowhere.sig");
    let (o, line) = verify_key(&m, &missing, &[]);
    let err = refused(
        &o,
        &line,
        &["cannot read signature", ENOENT, "check --signature"],
        &["spec."],
    );
    assert_eq!(err.matches(ENOENT).count(), 1, "{err}");
    assert_eq!(line.matches(ENOENT).count(), 1, "{line}");
    let (o, line) = verify_key(&m, &missing, &MV);
    let err = refused(
        &o,
        &line,
        &[
            "cannot read signature",
            ENOENT,
            "check spec.model.signaturePath",
        ],
        &["--signature"],
    );
    assert_eq!(err.matches(ENOENT).count(), 1, "{err}");
    // JSON output carries the same message once.
    let (o, _) = verify_key(&m, &missing, &["--output", "json"]);
    assert_eq!(stdout(&o).matches(ENOENT).count(), 1, "{}", stdout(&o));
}

#[test]
fn right_method_and_present_signature_pass_in_both_wordings() {
    let d = tempfile::tempdir().unwrap();
    let m = model(d.path());
    let sig = sign_with_key(&m, &[]);
    let (o, line) = verify_key(&m, &sig, &[]);
    passed(&o, &line);
    let (o, line) = verify_key(&m, &sig, &MV);
    passed(&o, &line);
}

#[test]
fn fix_hints_is_hidden_from_help() {
    let o = run(&["verify", "key", "--help"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert!(stdout(&o).contains("--public-key"), "{}", stdout(&o));
    assert!(!stdout(&o).contains("fix-hints"), "{}", stdout(&o));
}

/// `verify key` of `m` as user and group 65532 with the supplementary `groups` (none: cleared),
/// as the injected verifier runs; `extra` flags besides.
fn verify_as_nonroot(m: &Path, sig: &Path, groups: Option<&str>, extra: &[&str]) -> Output {
    let pubkey = m.with_extension("pub.pem");
    fs::copy(fixture("peer-samples/ec-p256.pub.pem"), &pubkey).unwrap();
    let mut cmd = std::process::Command::new("setpriv");
    cmd.args(["--reuid", "65532", "--regid", "65532"]);
    match groups {
        Some(g) => cmd.args(["--groups", g]),
        None => cmd.arg("--clear-groups"),
    };
    cmd.args([
        "--",
        support::BIN,
        "verify",
        "key",
        s(m),
        "--signature",
        s(sig),
    ])
    .args(["--public_key", s(&pubkey)])
    .args(extra);
    cmd.output().unwrap()
}

/// Root-owned model files with mode 0640 and group 4242, as on a hostPath written by root.
fn root_only_model(dir: &Path) -> (PathBuf, PathBuf) {
    use std::os::unix::fs::PermissionsExt;
    fs::set_permissions(dir, fs::Permissions::from_mode(0o755)).unwrap();
    let m = model(dir);
    let sig = sign_with_key(&m, &[]);
    fs::set_permissions(&sig, fs::Permissions::from_mode(0o644)).unwrap();
    for f in ["weights.bin", "config.json", "sub/tok.json"] {
        let path = m.join(f);
        std::os::unix::fs::chown(&path, Some(0), Some(4242)).unwrap();
        fs::set_permissions(&path, fs::Permissions::from_mode(0o640)).unwrap();
    }
    (m, sig)
}

fn is_root() -> bool {
    fs::read_to_string("/proc/self/status")
        .unwrap_or_default()
        .lines()
        .any(|l| l.starts_with("Uid:") && l.split_whitespace().nth(2) == Some("0"))
}

#[test]
fn unreadable_model_files_name_the_user_and_how_to_grant_read_access() {
    if !is_root() {
        eprintln!("skipped: needs root to run the verifier as another user");
        return;
    }
    let d = tempfile::tempdir().unwrap();
    let (m, sig) = root_only_model(d.path());
    let o = verify_as_nonroot(&m, &sig, None, &[]);
    let err = stderr(&o);
    assert_eq!(o.status.code(), Some(1), "{err}");
    for wanted in [
        "Permission denied",
        "this command runs as uid 65532, gid 65532, supplementary groups []",
        "o+r",
    ] {
        assert!(err.contains(wanted), "stderr lacks {wanted:?}: {err}");
    }
    assert!(
        ["weights.bin", "config.json", "sub/tok.json"]
            .iter()
            .any(|f| err.contains(&format!("cannot read '{f}'"))),
        "the file is named: {err}"
    );
    let o = verify_as_nonroot(&m, &sig, None, &MV);
    let err = stderr(&o);
    assert_eq!(o.status.code(), Some(1), "{err}");
    assert!(
        err.contains("the verifier runs as uid 65532")
            && err.contains("spec.securityContext.supplementalGroups"),
        "{err}"
    );
}

#[test]
fn model_files_readable_through_a_supplementary_group_verify_as_nonroot() {
    if !is_root() {
        eprintln!("skipped: needs root to run the verifier as another user");
        return;
    }
    let d = tempfile::tempdir().unwrap();
    let (m, sig) = root_only_model(d.path());
    let o = verify_as_nonroot(&m, &sig, Some("4242"), &MV);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert_eq!(stdout(&o), "Verification succeeded\n");
}
