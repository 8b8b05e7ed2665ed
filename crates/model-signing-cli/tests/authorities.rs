//! `verify authorities`: several authorities in one JSON document and a rule on how many must
//! vouch. Key rotation (any of the old and the new key), co-signing (a key and a CA, each with
//! its own signature file), a changed file refused by every authority, the document from an
//! environment variable, and documents that cannot be used. Every refusal has a passing twin.

mod support;

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::{Value, json};
use support::{
    AT_TIME, BIN, fixture, json as stdout_json, model, s, sign_with_certificate, sign_with_key,
    sign_with_key_to, stderr,
};

fn pem(rel: &str) -> String {
    fs::read_to_string(fixture(rel)).unwrap()
}

/// The public key of the peer-samples P-256 key (the one `sign_with_key` uses).
fn old_key() -> Value {
    json!({"name": "old", "key": {"pem": pem("peer-samples/ec-p256.pub.pem")}})
}

/// A P-384 key nobody signed with here.
fn other_key() -> Value {
    json!({"name": "other", "key": {"pem": pem("peer-samples/keys/p384.pub")}})
}

/// The peer-samples root CA, for signatures of `sign_with_certificate`.
fn ca(signature: &Path) -> Value {
    json!({"name": "release-ca", "certificateAuthority": {"pem": pem("peer-samples/pki/root-ca.cert.pem")},
           "signature": s(signature)})
}

/// Writes the document beside the model and runs `verify authorities --output json`.
fn verify(m: &Path, sig: &Path, document: &Value) -> Output {
    let policy = m.with_extension("authorities.json");
    fs::write(&policy, document.to_string()).unwrap();
    Command::new(BIN)
        .args([
            "--output",
            "json",
            "verify",
            "authorities",
            s(m),
            "--signature",
            s(sig),
        ])
        .args(["--policy", s(&policy), "--at-time", AT_TIME])
        .output()
        .unwrap()
}

/// The error message of a failed `--output json` run.
fn error(o: &Output) -> String {
    assert_eq!(o.status.code(), Some(1), "{}", stderr(o));
    stdout_json(o)["error"]["message"]
        .as_str()
        .unwrap()
        .to_string()
}

fn names(v: &Value) -> Vec<String> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|a| a["name"].as_str().unwrap().to_string())
        .collect()
}

#[test]
fn key_rotation_any_of_two_keys_verifies_and_reports_who_vouched() {
    let dir = tempfile::tempdir().unwrap();
    let m = model(dir.path());
    let sig = sign_with_key(&m, &[]);
    let o = verify(&m, &sig, &json!({"authorities": [other_key(), old_key()]}));
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let out = stdout_json(&o);
    assert_eq!(names(&out["authorities"]["vouched"]), ["old"]);
    assert_eq!(names(&out["authorities"]["refused"]), ["other"]);
    assert_eq!(out["authorities"]["required"], 1);
    let summary = out["summary"].as_str().unwrap();
    assert!(
        summary.contains("signed by 1 of 2 authorities (1 required): old (public key "),
        "{summary}"
    );
    // Twin: with only the key that did not sign, it is refused, naming the authority.
    let err = error(&verify(&m, &sig, &json!({"authorities": [other_key()]})));
    assert!(
        err.contains("1 of 1 authorities must vouch for the model, 0 did; other: "),
        "{err}"
    );
}

#[test]
fn co_signing_all_needs_both_signatures_each_read_from_its_own_file() {
    let dir = tempfile::tempdir().unwrap();
    let m = model(dir.path());
    let by_key = sign_with_key(&m, &[]);
    let by_ca = dir.path().join("release.sig");
    sign_with_certificate(&m, &by_ca);
    let both = json!({"required": "all", "authorities": [old_key(), ca(&by_ca)]});
    let o = verify(&m, &by_key, &both);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert_eq!(
        names(&stdout_json(&o)["authorities"]["vouched"]),
        ["old", "release-ca"]
    );
    // Twin: the release team has not signed yet; "all" refuses and says which one is missing,
    // while one of the two is enough for "required": 1.
    fs::remove_file(&by_ca).unwrap();
    let err = error(&verify(&m, &by_key, &both));
    assert!(
        err.contains("2 of 2 authorities must vouch for the model, 1 did (old); release-ca: "),
        "{err}"
    );
    assert!(err.contains("release.sig"), "{err}");
    let one = json!({"required": 1, "authorities": [old_key(), ca(&by_ca)]});
    assert_eq!(verify(&m, &by_key, &one).status.code(), Some(0));
}

#[test]
fn a_signature_inside_the_model_is_not_taken_for_a_model_file() {
    let dir = tempfile::tempdir().unwrap();
    let m = model(dir.path());
    let by_key = m.join("model.sig");
    sign_with_key_to(&m, &by_key, &[]);
    // A second signature inside the model, named only by its authority: left out too.
    let by_ca = m.join("release.sig");
    sign_with_certificate(&m, &by_ca);
    let o = verify(
        &m,
        &by_key,
        &json!({"required": "all", "authorities": [old_key(), ca(&by_ca)]}),
    );
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
}

#[test]
fn a_changed_file_is_refused_by_every_authority() {
    let dir = tempfile::tempdir().unwrap();
    let m = model(dir.path());
    let by_key = sign_with_key(&m, &[]);
    let by_ca = dir.path().join("release.sig");
    sign_with_certificate(&m, &by_ca);
    fs::write(m.join("config.json"), "{\"layers\": 3}").unwrap();
    let err = error(&verify(
        &m,
        &by_key,
        &json!({"authorities": [old_key(), ca(&by_ca)]}),
    ));
    assert!(err.contains("0 did; old: "), "{err}");
    assert_eq!(err.matches("config.json").count(), 2, "{err}");
}

#[test]
fn the_document_can_come_from_an_environment_variable_and_mistakes_name_their_field() {
    let dir = tempfile::tempdir().unwrap();
    let m = model(dir.path());
    let sig = sign_with_key(&m, &[]);
    let run_env = |doc: &Value| {
        Command::new(BIN)
            .args(["verify", "authorities", s(&m), "--signature", s(&sig)])
            .args(["--policy-env", "MVO_TEST_AUTHORITIES"])
            .env("MVO_TEST_AUTHORITIES", doc.to_string())
            .output()
            .unwrap()
    };
    let o = run_env(&json!({"authorities": [old_key()]}));
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    for (doc, wanted) in [
        (
            json!({"authorities": [{"key": {"pem": "nope"}}]}),
            "authorities[0].key.pem",
        ),
        (
            json!({"required": 2, "authorities": [old_key()]}),
            "required: asks for 2 of 1 authorities",
        ),
        (
            json!({"authorities": [{"keyless": {"identity": "a@example.com"}}]}),
            "authorities[0].keyless: give exactly one of issuer and issuerRegexp",
        ),
        (
            json!({"authorites": []}),
            "environment variable MVO_TEST_AUTHORITIES: not an authorities document",
        ),
    ] {
        let o = run_env(&doc);
        assert_eq!(o.status.code(), Some(1), "{doc}");
        let err = stderr(&o);
        assert!(err.contains(wanted), "wanted {wanted:?}: {err}");
        assert!(
            !err.contains("BEGIN PUBLIC KEY"),
            "never the material: {err}"
        );
    }
}

#[test]
fn exactly_one_of_policy_and_policy_env() {
    let dir = tempfile::tempdir().unwrap();
    let m = model(dir.path());
    let sig: PathBuf = sign_with_key(&m, &[]);
    for extra in [vec![], vec!["--policy", "a.json", "--policy-env", "X"]] {
        let mut args = vec!["verify", "authorities", s(&m), "--signature", s(&sig)];
        args.extend(extra);
        assert_eq!(support::run(&args).status.code(), Some(2), "{args:?}");
    }
}

/// Polls `/readyz` until it answers `status`; returns the body.
fn readyz_until(addr: std::net::SocketAddr, status: u16) -> String {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    loop {
        if let Ok((got, body)) = support::get(addr, "/readyz")
            && got == status
        {
            return body;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "/readyz never answered {status}"
        );
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
}

#[test]
fn watch_mode_keeps_checking_every_authority() {
    let dir = tempfile::tempdir().unwrap();
    let m = model(dir.path());
    let sig = sign_with_key(&m, &[]);
    let policy = dir.path().join("authorities.json");
    fs::write(
        &policy,
        json!({"authorities": [other_key(), old_key()]}).to_string(),
    )
    .unwrap();
    let addr: std::net::SocketAddr = format!("127.0.0.1:{}", support::free_port())
        .parse()
        .unwrap();
    let mut child = Command::new(BIN)
        .args(["verify", "authorities", s(&m), "--signature", s(&sig)])
        .args(["--policy", s(&policy), "--interval", "1s"])
        .args(["--health-addr", &addr.to_string()])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let ready = readyz_until(addr, 200);
    assert!(
        ready.contains("1 of 2 authorities (1 required): old"),
        "{ready}"
    );
    fs::write(m.join("weights.bin"), vec![4u8; 5000]).unwrap();
    let not_ready = readyz_until(addr, 503);
    assert!(not_ready.contains("0 did; other: "), "{not_ready}");
    assert!(not_ready.contains("weights.bin"), "{not_ready}");
    child.kill().unwrap();
    child.wait().unwrap();
}
