//! The `model-signing` command as a user meets it: exit codes, streams, messages, flags spelled
//! both ways, JSON output, the result file.

mod support;

use std::fs;

use support::{
    AT_TIME, fixture, model, run, s, sign_with_certificate, sign_with_key, stderr, stdout,
    verify_key_args,
};

#[test]
fn sign_then_verify_with_peer_and_hyphen_spellings() {
    let d = tempfile::tempdir().unwrap();
    let m = model(d.path());
    let sig = m.join("model.sig");
    let key = fixture("peer-samples/ec-p256.priv.pem");
    let pubkey = fixture("peer-samples/ec-p256.pub.pem");
    let o = run(&[
        "sign",
        "key",
        s(&m),
        "--private_key",
        s(&key),
        "--signature",
        s(&sig),
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert_eq!(stdout(&o), "Signing succeeded\n");
    let o = run(&[
        "verify",
        "key",
        s(&m),
        "--signature",
        s(&sig),
        "--public_key",
        s(&pubkey),
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert_eq!(stdout(&o), "Verification succeeded\n");
    let o = run(&[
        "verify",
        "key",
        s(&m),
        "--signature",
        s(&sig),
        "--public-key",
        s(&pubkey),
        "--ignore-unsigned-files",
        "--allow-symlinks",
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    // The signature inside the model is not part of it, and is recorded as ignored.
    let o = run(&["--output", "json", "inspect", s(&sig)]);
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["files"], 3);
    assert!(
        v["serialization"]["ignore_paths"]
            .as_array()
            .unwrap()
            .iter()
            .any(|p| p == "model.sig"),
        "{v}"
    );
}

#[test]
fn failures_exit_1_on_stderr_and_name_the_file() {
    let d = tempfile::tempdir().unwrap();
    let m = model(d.path());
    let sig = d.path().join("model.sig");
    let key = fixture("peer-samples/ec-p256.priv.pem");
    assert!(
        run(&[
            "sign",
            "key",
            s(&m),
            "--private_key",
            s(&key),
            "--signature",
            s(&sig)
        ])
        .status
        .success()
    );
    fs::write(m.join("sub/tok.json"), "[1]").unwrap();
    let o = run(&[
        "verify",
        "key",
        s(&m),
        "--signature",
        s(&sig),
        "--public_key",
        s(&fixture("peer-samples/ec-p256.pub.pem")),
    ]);
    assert_eq!(o.status.code(), Some(1));
    assert_eq!(stdout(&o), "");
    let err = stderr(&o);
    assert!(err.starts_with("Verification failed with error: the model does not match its signature: 1 file changed: sub/tok.json"), "{err}");
    let o = run(&[
        "--output",
        "json",
        "verify",
        "key",
        s(&m),
        "--signature",
        s(&sig),
        "--public_key",
        s(&fixture("peer-samples/keys/p384.pub")),
    ]);
    assert_eq!(o.status.code(), Some(1));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["ok"], false);
    assert_eq!(v["error"]["kind"], "key_mismatch");
}

#[test]
fn usage_errors_exit_2() {
    assert_eq!(run(&["verify", "key", "model"]).status.code(), Some(2));
    assert_eq!(
        run(&[
            "verify",
            "key",
            "m",
            "--signature",
            "x",
            "--public_key",
            "y",
            "--bogus"
        ])
        .status
        .code(),
        Some(2)
    );
    assert_eq!(run(&["--jobs", "0", "digest", "m"]).status.code(), Some(2));
    let help = run(&["--help"]);
    assert_eq!(help.status.code(), Some(0));
    assert!(
        stdout(&help).contains("Examples:") && stdout(&help).contains("Exit codes"),
        "{}",
        stdout(&help)
    );
}

#[test]
fn certificate_method_needs_trust_and_a_matching_key() {
    let d = tempfile::tempdir().unwrap();
    let m = model(d.path());
    let sig = d.path().join("model.sig");
    let pki = fixture("peer-samples/pki");
    sign_with_certificate(&m, &sig);
    let root = pki.join("root-ca.cert.pem");
    let verify_at = |at: &str| {
        run(&[
            "verify",
            "certificate",
            s(&m),
            "--signature",
            s(&sig),
            "--certificate-chain",
            s(&root),
            "--at-time",
            at,
        ])
    };
    let o = verify_at(AT_TIME);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    // The verification time matters: after the leaf's notAfter (2027-11-24) the same
    // verification fails as expired, before its notBefore (2026-11-24) as not yet valid.
    for (at, why) in [
        ("1830000000", "expired"),
        ("1790000000", "not valid before"),
    ] {
        let o = verify_at(at);
        assert_eq!(o.status.code(), Some(1), "{at}");
        assert!(stderr(&o).contains(why), "{at}: {}", stderr(&o));
    }
    let o = run(&["verify", "certificate", s(&m), "--signature", s(&sig)]);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        stderr(&o).contains("nothing is trusted by default"),
        "{}",
        stderr(&o)
    );
    let o = run(&[
        "sign",
        "certificate",
        s(&m),
        "--signature",
        s(&sig),
        "--private_key",
        s(&fixture("peer-samples/ec-p256.priv.pem")),
        "--signing_certificate",
        s(&pki.join("leaf-ku-eku.cert.pem")),
    ]);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        stderr(&o).contains("does not match the private key"),
        "{}",
        stderr(&o)
    );
}

#[test]
fn encrypted_keys_and_refused_key_types() {
    let d = tempfile::tempdir().unwrap();
    let m = model(d.path());
    let sig = d.path().join("model.sig");
    let enc = fixture("peer-samples/keys/p256-enc.pem");
    let o = run(&[
        "sign",
        "key",
        s(&m),
        "--signature",
        s(&sig),
        "--private_key",
        s(&enc),
    ]);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        stderr(&o).contains("is encrypted; pass its password with --password"),
        "{}",
        stderr(&o)
    );
    let o = run(&[
        "sign",
        "key",
        s(&m),
        "--signature",
        s(&sig),
        "--private_key",
        s(&enc),
        "--password",
        "wrong",
    ]);
    assert!(stderr(&o).contains("wrong password"), "{}", stderr(&o));
    let o = run(&[
        "sign",
        "key",
        s(&m),
        "--signature",
        s(&sig),
        "--private_key",
        s(&enc),
        "--password",
        "secret",
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    // Same key as ec-p256.priv.pem: verifies with its public key.
    let o = run(&[
        "verify",
        "key",
        s(&m),
        "--signature",
        s(&sig),
        "--public_key",
        s(&fixture("peer-samples/ec-p256.pub.pem")),
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    for (key, says) in [
        ("k256.pem", "secp256k1 keys are not supported"),
        ("ed25519.pem", "Ed25519 keys are not supported"),
        ("rsa.pem", "RSA keys are not supported"),
    ] {
        let o = run(&[
            "sign",
            "key",
            s(&m),
            "--signature",
            s(&sig),
            "--private_key",
            s(&fixture(&format!("peer-samples/keys/{key}"))),
        ]);
        assert_eq!(o.status.code(), Some(1));
        assert!(stderr(&o).contains(says), "{key}: {}", stderr(&o));
    }
}

#[test]
fn beyond_the_peer_shards_hashes_digest_result_file() {
    let d = tempfile::tempdir().unwrap();
    let m = model(d.path());
    let sig = d.path().join("model.sig");
    let key = fixture("peer-samples/ec-p256.priv.pem");
    let pubkey = fixture("peer-samples/ec-p256.pub.pem");
    for extra in [
        &["--hash", "blake3"][..],
        &["--hash", "blake2b", "--shard-size", "1024"],
        &["--shard_size", "7"],
    ] {
        let mut args = vec![
            "sign",
            "key",
            s(&m),
            "--private_key",
            s(&key),
            "--signature",
            s(&sig),
        ];
        args.extend_from_slice(extra);
        assert!(run(&args).status.success(), "{extra:?}");
        let o = run(&[
            "--jobs",
            "1",
            "verify",
            "key",
            s(&m),
            "--signature",
            s(&sig),
            "--public_key",
            s(&pubkey),
        ]);
        assert_eq!(o.status.code(), Some(0), "{extra:?}: {}", stderr(&o));
    }
    let o = run(&[
        "digest",
        s(&fixture(
            "model-transparency/scripts/tests/v1.1.0-elliptic-key",
        )),
        "--ignore-paths",
        s(&fixture(
            "model-transparency/scripts/tests/v1.1.0-elliptic-key/model.sig",
        )),
        "--ignore-paths",
        s(&fixture(
            "model-transparency/scripts/tests/v1.1.0-elliptic-key/ignore-me",
        )),
    ]);
    let inspect = run(&[
        "--output",
        "json",
        "inspect",
        s(&fixture(
            "model-transparency/scripts/tests/v1.1.0-elliptic-key/model.sig",
        )),
    ]);
    let v: serde_json::Value = serde_json::from_slice(&inspect.stdout).unwrap();
    assert_eq!(stdout(&o).trim(), v["root_digest"].as_str().unwrap());
    // The result file carries one line for the Kubernetes termination message.
    let result = d.path().join("result");
    let o = run(&[
        "verify",
        "key",
        s(&m),
        "--signature",
        s(&sig),
        "--public_key",
        s(&pubkey),
        "--result-file",
        s(&result),
    ]);
    assert!(o.status.success());
    let line = fs::read_to_string(&result).unwrap();
    assert!(line.starts_with("verified: 3 files"), "{line}");
    fs::remove_file(m.join("config.json")).unwrap();
    let o = run(&[
        "verify",
        "key",
        s(&m),
        "--signature",
        s(&sig),
        "--public_key",
        s(&pubkey),
        "--result-file",
        s(&result),
    ]);
    assert_eq!(o.status.code(), Some(1));
    let line = fs::read_to_string(&result).unwrap();
    assert!(
        line.starts_with("verification failed:")
            && line.contains("config.json")
            && line.lines().count() == 1,
        "{line}"
    );
}

#[test]
fn blake3_shards_are_refused_as_a_usage_error() {
    let d = tempfile::tempdir().unwrap();
    let m = model(d.path());
    let sig = d.path().join("model.sig");
    let o = run(&[
        "sign",
        "key",
        s(&m),
        "--private_key",
        s(&fixture("peer-samples/ec-p256.priv.pem")),
        "--signature",
        s(&sig),
        "--hash",
        "blake3",
        "--shard-size",
        "4096",
    ]);
    assert_eq!(o.status.code(), Some(2));
    assert!(
        stderr(&o).contains("--hash blake3 cannot be combined with --shard-size"),
        "{}",
        stderr(&o)
    );
    assert!(!sig.exists());
}

#[test]
fn keyless_signing_is_refused_clearly() {
    let o = run(&["sign", "./model"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        stderr(&o).contains("keyless Sigstore signing needs live Fulcio"),
        "{}",
        stderr(&o)
    );
}

#[test]
fn report_only_exits_zero_but_reports_the_failure_everywhere() {
    let d = tempfile::tempdir().unwrap();
    let m = model(d.path());
    let sig = sign_with_key(&m, &[]);
    fs::write(m.join("extra.txt"), "not signed").unwrap();
    let result = d.path().join("result");
    let pubkey = fixture("peer-samples/ec-p256.pub.pem");
    let verify = |extra: &[&str]| {
        let mut args = verify_key_args(&m, &sig, &pubkey);
        args.extend_from_slice(&["--result-file", s(&result)]);
        args.extend_from_slice(extra);
        run(&args)
    };
    let reported = verify(&["--report-only"]);
    assert_eq!(reported.status.code(), Some(0), "{}", stderr(&reported));
    assert!(
        stderr(&reported).contains("extra.txt"),
        "{}",
        stderr(&reported)
    );
    let line = fs::read_to_string(&result).unwrap();
    assert!(
        line.starts_with("verification failed:") && line.contains("extra.txt"),
        "{line}"
    );
    // Twin: without it the same failure exits 1.
    let failed = verify(&[]);
    assert_eq!(failed.status.code(), Some(1));
    // And a model that verifies still says so.
    fs::remove_file(m.join("extra.txt")).unwrap();
    let ok = verify(&["--report-only"]);
    assert_eq!(ok.status.code(), Some(0));
    assert!(
        !fs::read_to_string(&result)
            .unwrap()
            .starts_with("verification failed")
    );
}
