//! `model-signing verify sigstore` and `inspect` on keyless signatures, as a user (or the
//! operator's init container) runs them: offline, peer and hyphen flag spellings, exit codes,
//! messages that name the failed check, JSON kinds.

mod support;

use std::fs;
use std::process::Output;

use serde_json::Value;
use support::{fixture, golden, json, run, s, stderr};

const IDENTITY: &str = "stefanb@us.ibm.com";
const ISSUER: &str = "https://sigstore.verify.ibm.com/oauth2";

/// `verify sigstore` on a golden, with extra flags.
fn verify(dir: &str, extra: &[&str]) -> Output {
    let m = golden(dir);
    let sig = m.join("model.sig");
    let ignore = m.join("ignore-me");
    let mut args = vec![
        "verify",
        "sigstore",
        "--signature",
        s(&sig),
        "--ignore-paths",
        s(&ignore),
    ];
    args.extend_from_slice(extra);
    args.push(s(&m));
    run(&args)
}

#[test]
fn every_golden_verifies_with_peer_spellings() {
    for dir in [
        "v0.3.1-sigstore",
        "v1.0.0-sigstore",
        "v1.0.1-sigstore",
        "v1.1.0-sigstore",
    ] {
        let o = verify(
            dir,
            &["--identity", IDENTITY, "--identity_provider", ISSUER],
        );
        assert_eq!(o.status.code(), Some(0), "{dir}: {}", stderr(&o));
        assert_eq!(
            String::from_utf8_lossy(&o.stdout),
            "Verification succeeded\n"
        );
    }
}

#[test]
fn hyphen_spellings_and_json_report_the_root_and_log_key() {
    let cfg = fixture("peer-samples/offline-production-trust-config.json");
    let m = golden("v1.1.0-sigstore");
    let sig = m.join("model.sig");
    let o = run(&[
        "--output",
        "json",
        "verify",
        "sigstore",
        "--signature",
        s(&sig),
        "--identity",
        IDENTITY,
        "--identity-provider",
        ISSUER,
        "--trust-config",
        s(&cfg),
        s(&m),
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let v = json(&o);
    let signer = v["signer"].as_str().unwrap();
    assert!(
        signer.starts_with("stefanb@us.ibm.com (issuer https://sigstore.verify.ibm.com/oauth2;"),
        "{signer}"
    );
    assert!(
        signer.contains("https://rekor.sigstore.dev key c0d23d6a"),
        "{signer}"
    );
    assert!(
        signer.contains("offline-production-trust-config.json"),
        "{signer}"
    );

    // The same with the plain trusted root file (underscore spelling).
    let d = tempfile::tempdir().unwrap();
    let cfg_json: Value = serde_json::from_slice(&fs::read(&cfg).unwrap()).unwrap();
    let root = d.path().join("trusted_root.json");
    fs::write(&root, cfg_json["trustedRoot"].to_string()).unwrap();
    let o = verify(
        "v1.1.0-sigstore",
        &[
            "--identity",
            IDENTITY,
            "--identity_provider",
            ISSUER,
            "--trusted_root",
            s(&root),
        ],
    );
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let o = verify(
        "v1.1.0-sigstore",
        &[
            "--identity",
            IDENTITY,
            "--identity_provider",
            ISSUER,
            "--trusted-root",
            s(&root),
        ],
    );
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
}

#[test]
fn regexp_flags_in_both_spellings() {
    let o = verify(
        "v1.0.0-sigstore",
        &[
            "--identity-regexp",
            r"[a-z]+@us\.ibm\.com",
            "--identity_provider_regexp",
            r"https://sigstore\.verify\.ibm\.com/.*",
        ],
    );
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let o = verify(
        "v1.0.0-sigstore",
        &[
            "--identity_regexp",
            "stefanb",
            "--identity-provider-regexp",
            ".*",
        ],
    );
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("identity mismatch"), "{}", stderr(&o));
    let o = verify(
        "v1.0.0-sigstore",
        &["--identity-regexp", "(", "--identity_provider", ISSUER],
    );
    assert_eq!(o.status.code(), Some(1));
    assert!(
        stderr(&o).contains("is not a valid regular expression"),
        "{}",
        stderr(&o)
    );
}

#[test]
fn failures_name_the_check_and_exit_1() {
    for (extra, kind, text) in [
        (
            vec![
                "--identity",
                "someone@example.com",
                "--identity_provider",
                ISSUER,
            ],
            "identity_mismatch",
            "issued to email:stefanb@us.ibm.com",
        ),
        (
            vec![
                "--identity",
                IDENTITY,
                "--identity_provider",
                "https://sigstore.verify.ibm.com/oauth2/",
            ],
            "issuer_mismatch",
            "a trailing slash matters",
        ),
        (
            vec![
                "--identity",
                IDENTITY,
                "--identity_provider",
                ISSUER,
                "--use_staging",
            ],
            "sigstore_unknown_log",
            "embedded Sigstore staging root",
        ),
    ] {
        let mut args = vec!["--output", "json"];
        let m = golden("v1.0.0-sigstore");
        let sig = m.join("model.sig");
        args.extend(["verify", "sigstore", "--signature", s(&sig)]);
        args.extend(extra.iter().copied());
        args.push(s(&m));
        let o = run(&args);
        assert_eq!(o.status.code(), Some(1));
        let v = json(&o);
        assert_eq!(v["error"]["kind"], kind, "{v}");
        assert!(
            v["error"]["message"].as_str().unwrap().contains(text),
            "{v}"
        );
    }
}

#[test]
fn a_tampered_log_entry_fails_with_its_check() {
    let d = tempfile::tempdir().unwrap();
    let m = d.path().join("model");
    fs::create_dir(&m).unwrap();
    for f in ["signme-1", "signme-2"] {
        fs::copy(golden("v1.0.0-sigstore").join(f), m.join(f)).unwrap();
    }
    let mut b: Value =
        serde_json::from_slice(&fs::read(golden("v1.0.0-sigstore").join("model.sig")).unwrap())
            .unwrap();
    let e = &mut b["verificationMaterial"]["tlogEntries"][0];
    let cp = e["inclusionProof"]["checkpoint"]["envelope"]
        .as_str()
        .unwrap()
        .to_string();
    e["inclusionProof"]["checkpoint"]["envelope"] =
        Value::String(cp.replacen("rekor.sigstore.dev", "rekor.example.com", 1));
    let sig = d.path().join("model.sig");
    fs::write(&sig, b.to_string()).unwrap();
    let o = run(&[
        "--output",
        "json",
        "verify",
        "sigstore",
        "--signature",
        s(&sig),
        "--identity",
        IDENTITY,
        "--identity_provider",
        ISSUER,
        s(&m),
    ]);
    assert_eq!(o.status.code(), Some(1));
    let v = json(&o);
    assert_eq!(v["error"]["kind"], "sigstore_checkpoint", "{v}");
}

#[test]
fn missing_identity_or_issuer_or_two_roots_are_usage_errors() {
    let o = verify("v1.0.0-sigstore", &["--identity_provider", ISSUER]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    let o = verify("v1.0.0-sigstore", &["--identity", IDENTITY]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    let o = verify(
        "v1.0.0-sigstore",
        &[
            "--identity",
            IDENTITY,
            "--identity-regexp",
            ".*",
            "--identity_provider",
            ISSUER,
        ],
    );
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    let o = verify(
        "v1.0.0-sigstore",
        &[
            "--identity",
            IDENTITY,
            "--identity_provider",
            ISSUER,
            "--use_staging",
            "--trusted_root",
            "x.json",
        ],
    );
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
}

#[test]
fn github_actions_signature_reports_the_missing_file_by_name() {
    let sig = fixture("upstream-operator/related/varodrig-fork/demo/signed_model/model.sig");
    let m = fixture("upstream-operator/testdata/tensorflow_saved_model");
    let o = run(&[
        "--output",
        "json",
        "verify",
        "sigstore",
        "--signature",
        s(&sig),
        "--identity",
        "https://github.com/varodrig/model-validation-operator/.github/workflows/sign-model.yaml@refs/heads/main",
        "--identity_provider",
        "https://token.actions.githubusercontent.com",
        s(&m),
    ]);
    assert_eq!(o.status.code(), Some(1));
    let v = json(&o);
    assert_eq!(v["error"]["kind"], "model_mismatch", "{v}");
    assert!(
        v["error"]["message"]
            .as_str()
            .unwrap()
            .contains("variables/variables.data-00000-of-00001"),
        "{v}"
    );
}

#[test]
fn inspect_shows_identity_issuer_root_and_log_key() {
    let sig = fixture("upstream-operator/related/varodrig-fork/demo/signed_model/model.sig");
    let o = run(&["inspect", s(&sig)]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(out.contains("identity:       URI:https://github.com/varodrig/model-validation-operator/.github/workflows/sign-model.yaml@refs/heads/main"), "{out}");
    assert!(
        out.contains("issuer:         https://token.actions.githubusercontent.com"),
        "{out}"
    );
    assert!(
        out.contains("verified with:  embedded Sigstore production root"),
        "{out}"
    );
    assert!(
        out.contains("rekor entry:    https://rekor.sigstore.dev key c0d23d6a"),
        "{out}"
    );

    let o = run(&[
        "--output",
        "json",
        "inspect",
        s(&golden("v1.1.0-sigstore").join("model.sig")),
    ]);
    let v = json(&o);
    assert_eq!(v["sigstore"]["verified"], true, "{v}");
    assert_eq!(v["sigstore"]["issuer"], ISSUER, "{v}");

    // A broken signature is shown as not verified, with the reason per embedded root.
    let d = tempfile::tempdir().unwrap();
    let mut b: Value = serde_json::from_slice(&fs::read(&sig).unwrap()).unwrap();
    b["verificationMaterial"]["tlogEntries"][0]["inclusionPromise"]["signedEntryTimestamp"] =
        Value::String("MEUCIQ==".into());
    let bad = d.path().join("bad.sig");
    fs::write(&bad, b.to_string()).unwrap();
    let o = run(&["inspect", s(&bad)]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(
        out.contains("verified with:  none of the embedded roots"),
        "{out}"
    );
}
