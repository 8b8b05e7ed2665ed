//! `model-signing oci` against the real registries of test_cluster::registry: go-containerregistry's
//! (with the OCI 1.1 referrers API) and distribution v3 (without: the referrers tag schema).
//!
//! - push, sign and verify by reference with the key method on both kinds, the signature found
//!   through the referrers API on one and through the tag schema on the other (each registry's
//!   own request log shows which); the certificate method on the tag-schema registry;
//! - verifying fetches no layer blob (the request log lists the manifest, the referrers and the
//!   bundle only), while pulling the model does fetch every layer (the twin: the log can show a
//!   layer fetch);
//! - over TLS with basic auth: without the CA, without credentials and with a wrong password
//!   each fails naming the flag that fixes it; with both it works;
//! - a tampered model (another file content under the tag, with the old signature attached), a
//!   tag moved after signing, another signer and an unsigned model are each refused naming the
//!   reason, while the signed digest still verifies.
//!
//! Interop with the Python peer is in oci_peer.rs.

mod support;

use std::path::Path;

use serde_json::Value;
use support::{
    Kind, Registry, fixture, json_ok, json_refused, layers, oci, pull, registry_flags,
    requests_since, s, stderr, stdout,
};

const PUB: &str = "peer-samples/ec-p256.pub.pem";
const PRIV: &str = "peer-samples/ec-p256.priv.pem";

fn start(kind: Kind) -> Registry {
    Registry::builder().kind(kind).start().unwrap()
}

/// `oci push DIR REF`; returns the pinned reference printed.
fn push(dir: &Path, reference: &str, flags: &[String]) -> String {
    let o = oci(&["push", s(dir), reference], flags);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let pinned = stdout(&o).trim().to_string();
    assert!(pinned.contains("@sha256:"), "{pinned}");
    pinned
}

/// `--output json oci sign key REF`; returns the JSON result.
fn sign(reference: &str, flags: &[String]) -> Value {
    let key = fixture(PRIV);
    let mut f = flags.to_vec();
    f.extend(["--private_key".into(), s(&key).into()]);
    let o = support::run_with(&["--output", "json", "oci", "sign", "key", reference], &f);
    json_ok(&o)
}

/// `--output json oci verify key REF` with `key`.
fn verify_with(reference: &str, key: &Path, flags: &[String]) -> std::process::Output {
    let mut f = flags.to_vec();
    f.extend(["--public_key".into(), s(key).into()]);
    support::run_with(&["--output", "json", "oci", "verify", "key", reference], &f)
}

fn verify(reference: &str, flags: &[String]) -> std::process::Output {
    verify_with(reference, &fixture(PUB), flags)
}

#[test]
fn push_sign_verify_by_reference_on_both_registry_kinds() {
    for kind in [Kind::Referrers, Kind::Distribution] {
        let d = tempfile::tempdir().unwrap();
        let r = start(kind);
        let flags = registry_flags(&r, d.path());
        let m = support::model(d.path());
        std::fs::write(m.join("empty.txt"), "").unwrap();
        let reference = format!("{}/models/tiny:v1", r.host());
        let pinned = push(&m, &reference, &flags);

        let signed = sign(&reference, &flags);
        assert_eq!(signed["pinned"], pinned.as_str());
        assert_eq!(signed["resources"], 4, "{signed}");
        assert_eq!(
            signed["referrers_tag_schema"],
            !kind.serves_referrers(),
            "{kind:?}: {signed}"
        );

        let since = r.requests().len();
        let v = json_ok(&verify(&reference, &flags));
        assert_eq!(v["pinned"], pinned.as_str());
        assert_eq!(v["files"], 4);
        assert!(
            v["signer"].as_str().unwrap().starts_with("public key "),
            "{v}"
        );
        let log = requests_since(&r, since).join("\n");
        let digest = pinned.split('@').nth(1).unwrap();
        let api = format!("GET /v2/models/tiny/referrers/{digest}");
        let tag = format!("GET /v2/models/tiny/manifests/{}", digest.replace(':', "-"));
        if kind.serves_referrers() {
            assert!(
                log.contains(&format!(
                    "{api}?artifactType=application%2Fvnd.dev.sigstore.bundle.v0.3%2Bjson 200"
                )) || log.contains(&format!("{api} 200")),
                "{log}"
            );
            assert!(!log.contains(&tag), "{log}");
        } else {
            assert!(log.contains(&tag) && log.contains(" 404"), "{log}");
            assert!(log.contains(&format!("{tag} 200")), "{log}");
        }
    }
}

#[test]
fn certificate_method_by_reference_on_the_tag_schema_registry() {
    let d = tempfile::tempdir().unwrap();
    let r = start(Kind::Distribution);
    let flags = registry_flags(&r, d.path());
    let reference = format!("{}/models/cert:v1", r.host());
    push(&support::model(d.path()), &reference, &flags);
    let pki = fixture("peer-samples/pki");
    let mut f = flags.clone();
    f.extend(support::certificate_signer_flags());
    let o = support::run_with(&["oci", "sign", "certificate", &reference], &f);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let verify_cert = |ca: &Path| {
        let mut f = flags.clone();
        f.extend(["--certificate_chain", s(ca), "--at-time", support::AT_TIME].map(String::from));
        support::run_with(
            &[
                "--output",
                "json",
                "oci",
                "verify",
                "certificate",
                &reference,
            ],
            &f,
        )
    };
    let v = json_ok(&verify_cert(&pki.join("root-ca.cert.pem")));
    assert!(
        v["signer"].as_str().unwrap().starts_with("certificate "),
        "{v}"
    );
    // Twin: a CA that did not issue the chain is refused.
    let (kind, msg) = json_refused(&verify_cert(&pki.join("old-root.cert.pem")));
    assert_eq!(kind, "certificate", "{msg}");
    assert!(msg.contains("--certificate-chain"), "{msg}");
}

#[test]
fn verifying_fetches_no_layer_blob_but_pulling_does() {
    for kind in [Kind::Referrers, Kind::Distribution] {
        let d = tempfile::tempdir().unwrap();
        let r = start(kind);
        let flags = registry_flags(&r, d.path());
        let reference = format!("{}/models/tiny:v1", r.host());
        let pinned = push(&support::model(d.path()), &reference, &flags);
        sign(&reference, &flags);
        let layer_gets: Vec<String> = layers(&r, &pinned)
            .iter()
            .map(|(digest, _)| format!("GET /v2/models/tiny/blobs/{digest} "))
            .collect();
        assert_eq!(layer_gets.len(), 3);

        let since = r.requests().len();
        json_ok(&verify(&reference, &flags));
        let log = requests_since(&r, since);
        let blob_gets: Vec<&String> = log
            .iter()
            .filter(|l| l.starts_with("GET ") && l.contains("/blobs/"))
            .collect();
        assert_eq!(blob_gets.len(), 1, "only the bundle blob: {log:#?}");
        for l in &layer_gets {
            assert!(
                !log.iter().any(|x| x.starts_with(l.as_str())),
                "{l} in {log:#?}"
            );
        }

        // Twin: pulling the model fetches every layer, and the same check sees it.
        let since = r.requests().len();
        pull(&r, &pinned, &d.path().join("pulled"));
        let log = requests_since(&r, since);
        for l in &layer_gets {
            assert!(
                log.iter()
                    .any(|x| x.starts_with(l.as_str()) && x.ends_with(" 200")),
                "{l} not in {log:#?}"
            );
        }
    }
}

#[test]
fn tls_and_basic_auth_name_the_flag_that_fixes_them() {
    let d = tempfile::tempdir().unwrap();
    let r = Registry::builder()
        .kind(Kind::Distribution)
        .tls(true)
        .basic_auth("alice", "s3cret")
        .start()
        .unwrap();
    let reference = format!("{}/models/tiny:v1", r.host());
    let m = support::model(d.path());
    let flags = registry_flags(&r, d.path());
    let config = flags[flags.iter().position(|f| f == "--registry-config").unwrap() + 1].clone();
    let ca = [
        "--registry-ca".to_string(),
        s(r.ca_file().unwrap()).to_string(),
    ];

    // No CA: the system roots do not trust the registry.
    let no_ca = ["--registry-config".to_string(), config.clone()];
    let o = oci(&["push", s(&m), &reference], &no_ca);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    let e = stderr(&o);
    assert!(
        e.starts_with("Push failed with error: no trusted TLS connection to 127.0.0.1:"),
        "{e}"
    );
    assert!(e.contains("pass --registry-ca"), "{e}");

    // The CA but no credentials.
    let o = oci(&["push", s(&m), &reference], &ca);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    let e = stderr(&o);
    assert!(
        e.contains("refused access to") && e.contains("no credentials were sent"),
        "{e}"
    );
    assert!(
        e.contains(
            "pass --registry-config with a docker config.json that has credentials for 127.0.0.1:"
        ),
        "{e}"
    );

    // A wrong password.
    let wrong = support::docker_config(&d.path().join("wrong"), &r.host(), "alice", "nope");
    let mut bad = ca.to_vec();
    bad.extend(["--registry-config".to_string(), s(&wrong).to_string()]);
    let o = oci(&["push", s(&m), &reference], &bad);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("the credentials sent were not accepted"),
        "{}",
        stderr(&o)
    );
    assert!(
        stderr(&o).contains("check the credentials for 127.0.0.1:"),
        "{}",
        stderr(&o)
    );

    // Twin: both, and everything works over TLS with auth (the tag schema, as distribution).
    let pinned = push(&m, &reference, &flags);
    let signed = sign(&reference, &flags);
    assert_eq!(signed["referrers_tag_schema"], true);
    let v = json_ok(&verify(&reference, &flags));
    assert_eq!(v["pinned"], pinned.as_str());
    // Verifying without credentials is refused the same way.
    let (kind, msg) = json_refused(&verify(&reference, &ca));
    assert_eq!(kind, "registry_unauthorized", "{msg}");
    assert!(msg.contains("--registry-config"), "{msg}");
}

/// A signed model at `models/tiny:v1`, and what the refusal tests need to change it.
struct Signed {
    d: tempfile::TempDir,
    r: Registry,
    flags: Vec<String>,
    reference: String,
    pinned: String,
}

fn signed_model() -> Signed {
    let d = tempfile::tempdir().unwrap();
    let r = start(Kind::Distribution);
    let flags = registry_flags(&r, d.path());
    let reference = format!("{}/models/tiny:v1", r.host());
    let pinned = push(&support::model(d.path()), &reference, &flags);
    let key = fixture(PRIV);
    let sig = d.path().join("tiny.sig");
    let mut f = flags.clone();
    f.extend(["--private_key", s(&key), "--signature", s(&sig)].map(String::from));
    let o = support::run_with(&["oci", "sign", "key", &reference], &f);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert!(sig.is_file());
    Signed {
        d,
        r,
        flags,
        reference,
        pinned,
    }
}

/// Pushes a copy of the model with `weights.bin` changed to the same tag; returns its pinned
/// reference.
fn push_tampered(t: &Signed) -> String {
    let m = t.d.path().join("tampered/model");
    std::fs::create_dir_all(&m).unwrap();
    support::model(&t.d.path().join("tampered"));
    std::fs::write(m.join("weights.bin"), vec![4u8; 5000]).unwrap();
    push(&m, &t.reference, &t.flags)
}

#[test]
fn a_tampered_model_with_the_old_signature_attached_is_refused_naming_the_file() {
    let t = signed_model();
    let tampered = push_tampered(&t);
    // The attacker attaches the original signature to the tampered manifest; `oci attach`
    // itself refuses to (the files differ), so the test does it with the library.
    let sig = std::fs::read(t.d.path().join("tiny.sig")).unwrap();
    let o = oci(
        &["attach", s(&t.d.path().join("tiny.sig")), &t.reference],
        &t.flags,
    );
    assert_eq!(o.status.code(), Some(1));
    assert!(
        stderr(&o).contains("is not a signature of") && stderr(&o).contains("weights.bin"),
        "{}",
        stderr(&o)
    );
    support::attach_with_library(&t.r, &tampered, &sig);

    let (kind, msg) = json_refused(&verify(&t.reference, &t.flags));
    assert_eq!(kind, "model_mismatch", "{msg}");
    assert!(
        msg.contains(&format!("the signature attached to {tampered}")),
        "{msg}"
    );
    assert!(
        msg.contains(
            "the model does not match its signature: 1 file changed: weights.bin (expected sha256:"
        ),
        "{msg}"
    );
    assert!(
        msg.ends_with("; the artifact is not the model that was signed: pull the signed digest, or re-sign the artifact with `model-signing oci sign` if its content is trusted"),
        "{msg}"
    );
    assert!(
        !msg.contains("--ignore"),
        "no directory flag is offered: {msg}"
    );
    // Twin: the signed digest still verifies.
    json_ok(&verify(&t.pinned, &t.flags));
}

#[test]
fn a_tag_moved_after_signing_is_refused_as_unsigned() {
    let t = signed_model();
    let moved = push_tampered(&t);
    let (kind, msg) = json_refused(&verify(&t.reference, &t.flags));
    assert_eq!(kind, "unsigned", "{msg}");
    assert!(
        msg.contains(&format!("no model signature is attached to {moved}")),
        "{msg}"
    );
    assert!(
        msg.contains("if it was signed before, the tag was moved since"),
        "{msg}"
    );
    // Text mode says the same on stderr, with exit code 1.
    let mut f = t.flags.clone();
    f.extend(["--public_key".into(), s(&fixture(PUB)).into()]);
    let o = support::run_with(&["oci", "verify", "key", &t.reference], &f);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        stderr(&o).starts_with("Verification failed with error: the model is unsigned"),
        "{}",
        stderr(&o)
    );
    // Twin: the digest that was signed still verifies.
    let v = json_ok(&verify(&t.pinned, &t.flags));
    assert_eq!(v["pinned"], t.pinned.as_str());
}

#[test]
fn another_signer_is_refused() {
    let t = signed_model();
    let p384 = fixture("peer-samples/keys/p384.pub");
    let (kind, msg) = json_refused(&verify_with(&t.reference, &p384, &t.flags));
    assert_eq!(kind, "key_mismatch", "{msg}");
    assert!(
        msg.contains("key mismatch: the signature was made with a different key"),
        "{msg}"
    );
    json_ok(&verify(&t.reference, &t.flags));

    // A co-signer attaches a second signature: each signer's key verifies, a third is refused
    // with both reasons.
    let mut f = t.flags.clone();
    f.extend(["--private_key", s(&fixture("peer-samples/keys/p384.pem"))].map(String::from));
    let o = support::run_with(&["oci", "sign", "key", &t.reference], &f);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    json_ok(&verify_with(&t.reference, &p384, &t.flags));
    json_ok(&verify(&t.reference, &t.flags));
    let (kind, msg) = json_refused(&verify_with(
        &t.reference,
        &fixture("peer-samples/keys/p521.pub"),
        &t.flags,
    ));
    assert_eq!(kind, "key_mismatch", "{msg}");
    assert!(
        msg.starts_with(&format!(
            "none of the 2 signatures attached to {} verifies: sha256:",
            t.pinned
        )),
        "{msg}"
    );
    assert_eq!(msg.matches("key mismatch").count(), 2, "{msg}");
}

#[test]
fn an_unsigned_model_is_refused() {
    let d = tempfile::tempdir().unwrap();
    let r = start(Kind::Referrers);
    let flags = registry_flags(&r, d.path());
    let reference = format!("{}/models/plain:v1", r.host());
    let pinned = push(&support::model(d.path()), &reference, &flags);
    let (kind, msg) = json_refused(&verify(&reference, &flags));
    assert_eq!(kind, "unsigned", "{msg}");
    assert!(
        msg.contains(&format!(
            "the model is unsigned: no model signature is attached to {pinned}"
        )),
        "{msg}"
    );
    assert!(msg.contains("`model-signing oci sign`"), "{msg}");
    // Twin: once signed, it verifies.
    sign(&reference, &flags);
    json_ok(&verify(&reference, &flags));
}

#[test]
fn a_keyless_signature_attached_to_a_pushed_golden_verifies_by_reference() {
    const IDENTITY: &str = "stefanb@us.ibm.com";
    const ISSUER: &str = "https://sigstore.verify.ibm.com/oauth2";
    let d = tempfile::tempdir().unwrap();
    let r = start(Kind::Referrers);
    let flags = registry_flags(&r, d.path());
    let m = support::golden("v1.1.0-sigstore");
    let sig = m.join("model.sig");
    let reference = format!("{}/models/keyless:v1", r.host());
    // The signature records ignore-me and model.sig as ignored: leave them out of the artifact
    // too, as every layer is checked.
    let ignore = m.join("ignore-me");
    let o = oci(
        &[
            "push",
            s(&m),
            &reference,
            "--ignore-paths",
            s(&ignore),
            "--ignore-paths",
            s(&sig),
        ],
        &flags,
    );
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let o = oci(&["attach", s(&sig), &reference], &flags);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let verify_as = |identity: &str| {
        let mut f = flags.clone();
        f.extend(["--identity", identity, "--identity_provider", ISSUER].map(String::from));
        support::run_with(
            &["--output", "json", "oci", "verify", "sigstore", &reference],
            &f,
        )
    };
    let v = json_ok(&verify_as(IDENTITY));
    assert_eq!(v["files"], 2);
    assert!(v["signer"].as_str().unwrap().starts_with(IDENTITY), "{v}");
    // Twin: another identity is refused.
    let (kind, msg) = json_refused(&verify_as("someone@example.com"));
    assert!(kind.contains("identity"), "{kind}: {msg}");
    assert!(msg.contains("someone@example.com"), "{msg}");
}

#[test]
fn help_has_examples_and_a_method_is_required() {
    let o = support::run(&["oci", "--help"]);
    assert_eq!(o.status.code(), Some(0));
    let help = stdout(&o);
    for want in [
        "oci push ./model",
        "oci verify key",
        "oci attach model.sig",
        "--plain-http",
        "Exit codes",
    ] {
        assert!(help.contains(want), "{want} not in {help}");
    }
    // `oci verify REF` without a method is a usage error (exit 2), not a keyless default.
    let o = support::run(&["oci", "verify", "127.0.0.1:1/m:v1"]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    // Twin: with a method, the same reference reaches the registry (and fails there, exit 1,
    // naming --plain-http as the way to reach a plain-HTTP registry).
    let key = fixture(PUB);
    let o = support::run(&[
        "oci",
        "verify",
        "key",
        "127.0.0.1:1/m:v1",
        "--public_key",
        s(&key),
    ]);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("cannot reach 127.0.0.1:1"),
        "{}",
        stderr(&o)
    );
    assert!(stderr(&o).contains("--plain-http"), "{}", stderr(&o));
}
