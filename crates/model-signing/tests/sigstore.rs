//! Offline keyless (Sigstore) verification against real production signatures, and one negative
//! test per check: each tampering must fail with the error of exactly that check.

mod support;

use std::path::Path;

use base64::Engine as _;
use model_signing::name::ModelPath;
use model_signing::sigstore::{
    Check, Matcher, SigstoreError, SigstorePolicy, SigstoreTrust, SigstoreVerifier,
};
use model_signing::verify::{
    SignatureMethod, VerifiedSigner, VerifyOptions, VerifyReport, verify_model,
};
use model_signing::{Error, Result};
use serde_json::Value;
use support::{b64, fixture, mt as golden};

const IDENTITY: &str = "stefanb@us.ibm.com";
const ISSUER: &str = "https://sigstore.verify.ibm.com/oauth2";
const GH_IDENTITY: &str = "https://github.com/varodrig/model-validation-operator/.github/workflows/sign-model.yaml@refs/heads/main";
const GH_ISSUER: &str = "https://token.actions.githubusercontent.com";
const GOLDENS: [&str; 4] = [
    "v0.3.1-sigstore",
    "v1.0.0-sigstore",
    "v1.0.1-sigstore",
    "v1.1.0-sigstore",
];

fn policy(identity: &str, issuer: &str) -> SigstorePolicy {
    SigstorePolicy {
        identity: Matcher::exact(identity),
        issuer: Matcher::exact(issuer),
    }
}

fn production(p: SigstorePolicy) -> SigstoreVerifier {
    SigstoreVerifier::new(SigstoreTrust::production().unwrap(), p).unwrap()
}

/// Verifies `model` with the signature bytes, ignoring `model.sig` and `ignore-me` the way the
/// CLI does for these fixtures (v1.0.1 records no ignore paths).
fn run(model: &Path, sig: &[u8], verifier: &SigstoreVerifier) -> Result<VerifyReport> {
    let opts = VerifyOptions {
        extra_ignore_paths: vec![
            ModelPath::parse("model.sig").unwrap(),
            ModelPath::parse("ignore-me").unwrap(),
        ],
        ignore_git_paths: true,
        ..Default::default()
    };
    verify_model(model, sig, verifier, &opts)
}

fn read_sig(dir: &str) -> Vec<u8> {
    std::fs::read(golden(dir).join("model.sig")).unwrap()
}

fn sigstore_err(e: Error) -> SigstoreError {
    match e {
        Error::Sigstore(s) => s,
        other => panic!("expected a Sigstore error, got {other:?}: {other}"),
    }
}

fn failed_check(r: Result<VerifyReport>) -> (Check, String) {
    let e = sigstore_err(r.expect_err("verification must fail"));
    let msg = e.to_string();
    (
        e.check()
            .unwrap_or_else(|| panic!("not a check error: {msg}")),
        msg,
    )
}

/// Edits the v1.1.0 golden's JSON and verifies the v1.1.0 model with it.
fn tampered(edit: impl FnOnce(&mut Value)) -> Result<VerifyReport> {
    tampered_in("v1.1.0-sigstore", edit)
}

/// Edits a golden's JSON (in memory) and verifies its model with it.
fn tampered_in(dir: &str, edit: impl FnOnce(&mut Value)) -> Result<VerifyReport> {
    let mut v: Value = serde_json::from_slice(&read_sig(dir)).unwrap();
    edit(&mut v);
    let sig = serde_json::to_vec(&v).unwrap();
    run(&golden(dir), &sig, &production(policy(IDENTITY, ISSUER)))
}

fn tlog(v: &mut Value) -> &mut Value {
    &mut v["verificationMaterial"]["tlogEntries"][0]
}

/// Flips one bit in the middle of a base64 field.
fn flip_b64(field: &mut Value) {
    let len = b64().decode(field.as_str().unwrap()).unwrap().len();
    flip_b64_at(field, len / 2);
}

/// Flips one bit of byte `i` of a base64 field.
fn flip_b64_at(field: &mut Value, i: usize) {
    let mut bytes = b64().decode(field.as_str().unwrap()).unwrap();
    bytes[i] ^= 0x01;
    *field = Value::String(b64().encode(bytes));
}

#[test]
fn four_goldens_verify_offline_with_the_embedded_production_root() {
    let v = production(policy(IDENTITY, ISSUER));
    for dir in GOLDENS {
        let report = run(&golden(dir), &read_sig(dir), &v).unwrap_or_else(|e| panic!("{dir}: {e}"));
        match &report.signer {
            VerifiedSigner::Sigstore {
                identity,
                issuer,
                root,
                log,
            } => {
                assert_eq!(identity, IDENTITY);
                assert_eq!(issuer, ISSUER);
                assert!(root.contains("embedded Sigstore production root"), "{root}");
                assert!(
                    log.contains("https://rekor.sigstore.dev key c0d23d6ad406973f9559f3ba2d1ca01f84147d8ffc5b8445c224f98b9591801d"),
                    "{log}"
                );
            }
            other => panic!("{dir}: {other:?}"),
        }
        assert_eq!(report.manifest.resources.len(), 2, "{dir}");
    }
}

#[test]
fn oms_sigstore_vector_verifies_against_the_v1_1_0_model() {
    let sig = std::fs::read(fixture(
        "model-signing-spec/test-vectors/v1.0/valid/sigstore.bundle.json",
    ))
    .unwrap();
    let report = run(
        &golden("v1.1.0-sigstore"),
        &sig,
        &production(policy(IDENTITY, ISSUER)),
    )
    .unwrap();
    assert!(matches!(report.signer, VerifiedSigner::Sigstore { .. }));
}

#[test]
fn oms_vector_without_tlog_entries_is_refused() {
    let sig = std::fs::read(fixture(
        "model-signing-spec/test-vectors/v1.0/invalid/missing-tlog-entries.bundle.json",
    ))
    .unwrap();
    let (check, msg) = failed_check(run(
        &golden("v1.1.0-sigstore"),
        &sig,
        &production(policy(IDENTITY, ISSUER)),
    ));
    assert_eq!(check, Check::Bundle, "{msg}");
    assert!(msg.contains("no transparency log entry"), "{msg}");
}

#[test]
fn the_peer_trust_config_and_a_plain_trusted_root_verify_too() {
    let cfg = fixture("peer-samples/offline-production-trust-config.json");
    let trust = SigstoreTrust::trust_config_file(&cfg).unwrap();
    let v = SigstoreVerifier::new(trust, policy(IDENTITY, ISSUER)).unwrap();
    let report = run(&golden("v1.0.0-sigstore"), &read_sig("v1.0.0-sigstore"), &v).unwrap();
    match report.signer {
        VerifiedSigner::Sigstore { root, .. } => {
            assert!(root.ends_with("offline-production-trust-config.json"))
        }
        other => panic!("{other:?}"),
    }

    // The same root as a plain trusted_root.json.
    let d = tempfile::tempdir().unwrap();
    let cfg_json: Value = serde_json::from_slice(&std::fs::read(&cfg).unwrap()).unwrap();
    let root_file = d.path().join("trusted_root.json");
    std::fs::write(&root_file, cfg_json["trustedRoot"].to_string()).unwrap();
    let trust = SigstoreTrust::trusted_root_file(&root_file).unwrap();
    let v = SigstoreVerifier::new(trust, policy(IDENTITY, ISSUER)).unwrap();
    run(&golden("v1.1.0-sigstore"), &read_sig("v1.1.0-sigstore"), &v).unwrap();
}

#[test]
fn wrong_identity_fails() {
    let r = run(
        &golden("v1.1.0-sigstore"),
        &read_sig("v1.1.0-sigstore"),
        &production(policy("someone@us.ibm.com", ISSUER)),
    );
    let e = sigstore_err(r.unwrap_err());
    assert_eq!(e.kind(), "identity_mismatch");
    let msg = e.to_string();
    assert!(msg.contains("issued to email:stefanb@us.ibm.com"), "{msg}");
    assert!(
        msg.contains("expected exactly \"someone@us.ibm.com\""),
        "{msg}"
    );
}

#[test]
fn wrong_issuer_fails() {
    let r = run(
        &golden("v1.1.0-sigstore"),
        &read_sig("v1.1.0-sigstore"),
        &production(policy(IDENTITY, "https://accounts.google.com")),
    );
    let e = sigstore_err(r.unwrap_err());
    assert_eq!(e.kind(), "issuer_mismatch");
    assert!(
        e.to_string()
            .contains("OIDC issuer is \"https://sigstore.verify.ibm.com/oauth2\""),
        "{e}"
    );
}

#[test]
fn issuer_with_a_trailing_slash_fails() {
    let r = run(
        &golden("v1.1.0-sigstore"),
        &read_sig("v1.1.0-sigstore"),
        &production(policy(IDENTITY, "https://sigstore.verify.ibm.com/oauth2/")),
    );
    let e = sigstore_err(r.unwrap_err());
    assert_eq!(e.kind(), "issuer_mismatch");
    assert!(e.to_string().contains("a trailing slash matters"), "{e}");
}

#[test]
fn regexps_must_match_the_whole_value() {
    let sig = read_sig("v1.1.0-sigstore");
    let model = golden("v1.1.0-sigstore");
    let full = SigstorePolicy {
        identity: Matcher::regex("--identity-regexp", r"stefanb@.*\.ibm\.com").unwrap(),
        issuer: Matcher::regex(
            "--identity-provider-regexp",
            r"https://sigstore\.verify\.ibm\.com/.*",
        )
        .unwrap(),
    };
    run(&model, &sig, &production(full)).unwrap();

    let partial_identity = SigstorePolicy {
        identity: Matcher::regex("--identity-regexp", "stefanb@us").unwrap(),
        issuer: Matcher::exact(ISSUER),
    };
    let e = sigstore_err(run(&model, &sig, &production(partial_identity)).unwrap_err());
    assert_eq!(e.kind(), "identity_mismatch", "{e}");
    assert!(
        e.to_string().contains("regular expression \"stefanb@us\""),
        "{e}"
    );

    let partial_issuer = SigstorePolicy {
        identity: Matcher::exact(IDENTITY),
        issuer: Matcher::regex("--identity-provider-regexp", "https://sigstore").unwrap(),
    };
    let e = sigstore_err(run(&model, &sig, &production(partial_issuer)).unwrap_err());
    assert_eq!(e.kind(), "issuer_mismatch", "{e}");
}

#[test]
fn changed_inclusion_proof_hash_fails() {
    let (check, msg) = failed_check(tampered(|v| {
        flip_b64(&mut tlog(v)["inclusionProof"]["hashes"][0]);
    }));
    assert_eq!(check, Check::InclusionProof, "{msg}");
    assert!(msg.contains("inclusion proof"), "{msg}");
}

#[test]
fn changed_checkpoint_fails() {
    let (check, msg) = failed_check(tampered(|v| {
        let cp = &mut tlog(v)["inclusionProof"]["checkpoint"]["envelope"];
        let text = cp.as_str().unwrap().to_string();
        // The second line is the tree size: claim a bigger tree, keep the log's signature.
        let mut lines: Vec<String> = text.split('\n').map(str::to_string).collect();
        let size: u64 = lines[1].parse().unwrap();
        lines[1] = (size + 1).to_string();
        *cp = Value::String(lines.join("\n"));
    }));
    assert_eq!(check, Check::Checkpoint, "{msg}");
    assert!(msg.contains("not signed by a trusted log key"), "{msg}");
}

#[test]
fn changed_checkpoint_root_hash_fails() {
    let (check, msg) = failed_check(tampered(|v| {
        flip_b64(&mut tlog(v)["inclusionProof"]["rootHash"]);
    }));
    assert!(
        matches!(check, Check::Checkpoint | Check::InclusionProof),
        "{check:?}: {msg}"
    );
}

#[test]
fn changed_signed_entry_timestamp_fails() {
    let (check, msg) = failed_check(tampered(|v| {
        flip_b64(&mut tlog(v)["inclusionPromise"]["signedEntryTimestamp"]);
    }));
    assert_eq!(check, Check::SignedEntryTimestamp, "{msg}");
    assert!(msg.contains("signed entry timestamp"), "{msg}");
}

#[test]
fn changed_integrated_time_fails_on_the_set() {
    let (check, msg) = failed_check(tampered(|v| {
        let t: i64 = tlog(v)["integratedTime"].as_str().unwrap().parse().unwrap();
        tlog(v)["integratedTime"] = Value::String((t + 60).to_string());
    }));
    assert_eq!(check, Check::SignedEntryTimestamp, "{msg}");
}

#[test]
fn missing_signed_entry_timestamp_leaves_no_signing_time() {
    // v1.0.0 has no RFC 3161 timestamp: the SET is its only source of a signing time.
    let (check, msg) = failed_check(tampered_in("v1.0.0-sigstore", |v| {
        tlog(v).as_object_mut().unwrap().remove("inclusionPromise");
    }));
    assert_eq!(check, Check::SigningTime, "{msg}");
    assert!(msg.contains("no verified timestamp"), "{msg}");
}

#[test]
fn without_a_set_an_rfc3161_timestamp_supplies_the_signing_time() {
    // v1.1.0 also carries a TSA timestamp; the SET is checked "when present", and inclusion is
    // still proven by the Merkle proof and the signed checkpoint.
    tampered(|v| {
        tlog(v).as_object_mut().unwrap().remove("inclusionPromise");
    })
    .unwrap();
}

#[test]
fn changed_rfc3161_timestamp_fails() {
    // The last bytes are the TSA's signature. (The certificates embedded in the token are
    // untrusted hints: the TSA is found in the trust root, so flipping one of those changes
    // nothing.)
    let (check, msg) = failed_check(tampered(|v| {
        let field = &mut v["verificationMaterial"]["timestampVerificationData"]["rfc3161Timestamps"]
            [0]["signedTimestamp"];
        let len = b64().decode(field.as_str().unwrap()).unwrap().len();
        flip_b64_at(field, len - 5);
    }));
    assert_eq!(check, Check::Timestamp, "{msg}");
    assert!(msg.contains("RFC 3161 timestamp"), "{msg}");
}

#[test]
fn missing_inclusion_proof_fails() {
    let (check, msg) = failed_check(tampered(|v| {
        tlog(v).as_object_mut().unwrap().remove("inclusionProof");
    }));
    assert_eq!(check, Check::InclusionProof, "{msg}");
    assert!(msg.contains("has no inclusion proof"), "{msg}");
}

#[test]
fn changed_canonicalized_body_fails() {
    let (check, msg) = failed_check(tampered(|v| {
        let body = b64()
            .decode(tlog(v)["canonicalizedBody"].as_str().unwrap())
            .unwrap();
        let mut body: Value = serde_json::from_slice(&body).unwrap();
        // Point the entry at another payload.
        body["spec"]["payloadHash"]["value"] = Value::String("00".repeat(32));
        tlog(v)["canonicalizedBody"] = Value::String(b64().encode(body.to_string()));
    }));
    // The SET signs the body: it is the first check that sees the change.
    assert_eq!(check, Check::SignedEntryTimestamp, "{msg}");
}

#[test]
fn changed_canonicalized_body_without_set_fails_on_the_inclusion_proof() {
    // v1.1.0 has an RFC 3161 timestamp, so without the SET the signing time still verifies and
    // the Merkle inclusion proof is what must refuse the altered body.
    let (check, msg) = failed_check(tampered(|v| {
        flip_b64(&mut tlog(v)["canonicalizedBody"]);
        tlog(v).as_object_mut().unwrap().remove("inclusionPromise");
    }));
    assert_eq!(check, Check::InclusionProof, "{msg}");
}

/// ECDSA signatures are malleable: (r, n - s) verifies as well as (r, s). Swapping in the other
/// form keeps the DSSE signature valid and every log proof intact, so only the check that the
/// Rekor entry records *this* envelope's signature can refuse it.
#[test]
fn envelope_signature_differing_from_the_log_entry_fails() {
    // v1.0.0: no RFC 3161 timestamp, which would cover the signature bytes too.
    let (check, msg) = failed_check(tampered_in("v1.0.0-sigstore", |v| {
        let sig_field = &mut v["dsseEnvelope"]["signatures"][0]["sig"];
        let der = b64().decode(sig_field.as_str().unwrap()).unwrap();
        *sig_field = Value::String(b64().encode(malleate_p256(&der)));
    }));
    assert_eq!(check, Check::LogEntryMismatch, "{msg}");
    assert!(msg.contains("does not describe this envelope"), "{msg}");
}

/// (r, s) -> (r, n - s) for a P-256 DER ECDSA signature.
fn malleate_p256(der: &[u8]) -> Vec<u8> {
    const N: [u8; 32] = [
        0xff, 0xff, 0xff, 0xff, 0x00, 0x00, 0x00, 0x00, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
        0xff, 0xbc, 0xe6, 0xfa, 0xad, 0xa7, 0x17, 0x9e, 0x84, 0xf3, 0xb9, 0xca, 0xc2, 0xfc, 0x63,
        0x25, 0x51,
    ];
    assert_eq!(der[0], 0x30);
    let mut i = 2;
    let int = |i: &mut usize| -> Vec<u8> {
        assert_eq!(der[*i], 0x02);
        let len = der[*i + 1] as usize;
        let v = der[*i + 2..*i + 2 + len].to_vec();
        *i += 2 + len;
        v
    };
    let r = int(&mut i);
    let s = int(&mut i);
    let mut s32 = [0u8; 32];
    let s_trim: Vec<u8> = s.iter().copied().skip_while(|b| *b == 0).collect();
    s32[32 - s_trim.len()..].copy_from_slice(&s_trim);
    let mut out = [0u8; 32];
    let mut borrow = 0i16;
    for k in (0..32).rev() {
        let mut d = N[k] as i16 - s32[k] as i16 - borrow;
        borrow = if d < 0 {
            d += 256;
            1
        } else {
            0
        };
        out[k] = d as u8;
    }
    let enc = |v: &[u8]| -> Vec<u8> {
        let mut t: Vec<u8> = v.iter().copied().skip_while(|b| *b == 0).collect();
        if t.first().is_some_and(|b| b & 0x80 != 0) {
            t.insert(0, 0);
        }
        let mut o = vec![0x02, t.len() as u8];
        o.extend(t);
        o
    };
    let body: Vec<u8> = [enc(&r), enc(&out)].concat();
    let mut o = vec![0x30, body.len() as u8];
    o.extend(body);
    o
}

#[test]
fn certificate_of_another_bundle_fails() {
    // A Fulcio certificate is valid for ten minutes around its own signature; at this entry's
    // SET-authenticated integrated time the v1.0.0 certificate had long expired.
    let other: Value = serde_json::from_slice(&read_sig("v1.0.0-sigstore")).unwrap();
    let (check, msg) = failed_check(tampered(|v| {
        v["verificationMaterial"]["certificate"] =
            other["verificationMaterial"]["certificate"].clone();
    }));
    assert_eq!(check, Check::SigningTime, "{msg}");
    assert!(msg.contains("CertExpired"), "{msg}");

    // And a newer certificate with an older entry: signed before the certificate existed.
    let newer: Value = serde_json::from_slice(&read_sig("v1.0.1-sigstore")).unwrap();
    let (check, msg) = failed_check(tampered_in("v1.0.0-sigstore", |v| {
        v["verificationMaterial"]["certificate"] =
            newer["verificationMaterial"]["certificate"].clone();
    }));
    assert_eq!(check, Check::SigningTime, "{msg}");
    assert!(msg.contains("CertNotValidYet"), "{msg}");
}

#[test]
fn edited_payload_fails_on_the_signature() {
    let (check, msg) = failed_check(tampered(|v| {
        let payload = b64()
            .decode(v["dsseEnvelope"]["payload"].as_str().unwrap())
            .unwrap();
        let mut st: Value = serde_json::from_slice(&payload).unwrap();
        // A consistent statement for other content: signme-1 changed, root digest recomputed.
        let mut digests = Vec::new();
        for (k, r) in st["predicate"]["resources"]
            .as_array_mut()
            .unwrap()
            .iter_mut()
            .enumerate()
        {
            if k == 0 {
                r["digest"] = Value::String("ab".repeat(32));
            }
            digests.extend(hex::decode(r["digest"].as_str().unwrap()).unwrap());
        }
        let root = model_signing::hashing::sha256(&digests);
        st["subject"][0]["digest"]["sha256"] = Value::String(hex::encode(root));
        v["dsseEnvelope"]["payload"] = Value::String(b64().encode(st.to_string()));
    }));
    assert_eq!(check, Check::DsseSignature, "{msg}");
    assert!(
        msg.contains("envelope's signature does not verify"),
        "{msg}"
    );
}

#[test]
fn tampered_model_file_fails_by_name() {
    let d = tempfile::tempdir().unwrap();
    for f in ["signme-1", "signme-2", "ignore-me"] {
        std::fs::copy(golden("v1.1.0-sigstore").join(f), d.path().join(f)).unwrap();
    }
    let mut bytes = std::fs::read(d.path().join("signme-2")).unwrap();
    bytes.push(b'!');
    std::fs::write(d.path().join("signme-2"), bytes).unwrap();
    let r = run(
        d.path(),
        &read_sig("v1.1.0-sigstore"),
        &production(policy(IDENTITY, ISSUER)),
    );
    match r {
        Err(Error::Mismatch(m)) => {
            assert_eq!(m.changed.len(), 1, "{m:?}");
            assert_eq!(m.changed[0].path, "signme-2");
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn staging_root_refuses_a_production_bundle() {
    let v =
        SigstoreVerifier::new(SigstoreTrust::staging().unwrap(), policy(IDENTITY, ISSUER)).unwrap();
    let (check, msg) = failed_check(run(
        &golden("v1.1.0-sigstore"),
        &read_sig("v1.1.0-sigstore"),
        &v,
    ));
    // v1.1.0's RFC 3161 timestamp is checked first: its TSA is not in the staging root.
    assert_eq!(check, Check::Timestamp, "{msg}");
    assert!(msg.contains("embedded Sigstore staging root"), "{msg}");
    assert!(
        msg.contains("verify with that instance's trust root"),
        "{msg}"
    );
    // v1.0.0 has no timestamp: the production Rekor key is what staging lacks.
    let (check, msg) = failed_check(run(
        &golden("v1.0.0-sigstore"),
        &read_sig("v1.0.0-sigstore"),
        &v,
    ));
    assert_eq!(check, Check::UnknownLog, "{msg}");
    assert!(
        msg.contains("verify with that instance's trust root"),
        "{msg}"
    );
}

#[test]
fn github_actions_signature_verifies_and_reports_the_missing_file() {
    let sig = std::fs::read(fixture(
        "upstream-operator/related/varodrig-fork/demo/signed_model/model.sig",
    ))
    .unwrap();
    let model = fixture("upstream-operator/testdata/tensorflow_saved_model");
    let r = run(&model, &sig, &production(policy(GH_IDENTITY, GH_ISSUER)));
    match r {
        Err(Error::Mismatch(m)) => {
            assert_eq!(
                m.missing,
                vec!["variables/variables.data-00000-of-00001".to_string()],
                "{m:?}"
            );
            assert!(m.changed.is_empty() && m.extra.is_empty(), "{m:?}");
            assert!(
                m.to_string()
                    .contains("variables/variables.data-00000-of-00001"),
                "{m}"
            );
        }
        other => panic!("{other:?}"),
    }
    // The signature and identity checks ran and passed: a wrong identity fails before the files.
    let r = run(&model, &sig, &production(policy(IDENTITY, GH_ISSUER)));
    assert_eq!(sigstore_err(r.unwrap_err()).kind(), "identity_mismatch");
}

#[test]
fn key_and_certificate_bundles_are_pointed_to_their_method() {
    for (dir, want) in [
        ("v1.1.0-elliptic-key", SignatureMethod::Key),
        ("v1.1.0-certificate", SignatureMethod::Certificate),
    ] {
        let r = run(
            &golden(dir),
            &read_sig(dir),
            &production(policy(IDENTITY, ISSUER)),
        );
        match r {
            // The CLI words the fix from `found` (`use \`verify key\``): see its fix module.
            Err(Error::WrongMethod {
                expected: SignatureMethod::Sigstore,
                found: Some(found),
            }) => assert_eq!(found, want, "{dir}"),
            other => panic!("{dir}: {other:?}"),
        }
    }
}

#[test]
fn garbage_bundles_fail_without_panicking() {
    let v = production(policy(IDENTITY, ISSUER));
    let model = golden("v1.1.0-sigstore");
    let good: Value = serde_json::from_slice(&read_sig("v1.1.0-sigstore")).unwrap();
    let mut cases: Vec<Vec<u8>> = vec![b"".to_vec(), b"{}".to_vec(), b"\xff\xfe".to_vec()];
    for edit in [
        "/verificationMaterial/certificate/rawBytes",
        "/verificationMaterial/tlogEntries/0/logIndex",
        "/verificationMaterial/tlogEntries/0/kindVersion",
        "/verificationMaterial/tlogEntries/0/inclusionProof/checkpoint",
        "/verificationMaterial/tlogEntries/0/logId/keyId",
        "/dsseEnvelope/signatures/0/sig",
    ] {
        let mut b = good.clone();
        *b.pointer_mut(edit).unwrap() = Value::String("AAAA".into());
        cases.push(serde_json::to_vec(&b).unwrap());
    }
    for sig in cases {
        assert!(run(&model, &sig, &v).is_err());
    }
}

/// A production root whose CT log keys were replaced: the certificate chain still verifies, so
/// only the SCT check can refuse it.
#[test]
fn sct_is_checked_against_the_trusted_ct_log_keys() {
    let root: Value = serde_json::from_str(sigstore_trust_root_json()).unwrap();
    let rekor_key = root["tlogs"][0]["publicKey"].clone();

    let mut wrong_key = root.clone();
    for ct in wrong_key["ctlogs"].as_array_mut().unwrap() {
        // A valid P-256 key, but not the CT log's: same log id, other key.
        ct["publicKey"]["rawBytes"] = rekor_key["rawBytes"].clone();
    }
    let trust =
        SigstoreTrust::from_trusted_root_json("wrong-ct.json", &wrong_key.to_string()).unwrap();
    let v = SigstoreVerifier::new(trust, policy(IDENTITY, ISSUER)).unwrap();
    let (check, msg) = failed_check(run(
        &golden("v1.0.0-sigstore"),
        &read_sig("v1.0.0-sigstore"),
        &v,
    ));
    assert_eq!(check, Check::Sct, "{msg}");
    assert!(msg.contains("SCT"), "{msg}");

    // A root without any CT log is refused up front.
    let mut no_ct = root.clone();
    no_ct["ctlogs"] = Value::Array(Vec::new());
    let e = SigstoreTrust::from_trusted_root_json("no-ct.json", &no_ct.to_string()).unwrap_err();
    assert_eq!(e.kind(), "sigstore_trust_root");
    assert!(
        e.to_string()
            .contains("no certificate transparency log key"),
        "{e}"
    );
}

/// The production root as the offline peer sample ships it (the same as the embedded one).
fn sigstore_trust_root_json() -> &'static str {
    static ROOT: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    ROOT.get_or_init(|| {
        let cfg: Value = serde_json::from_slice(
            &std::fs::read(fixture("peer-samples/offline-production-trust-config.json")).unwrap(),
        )
        .unwrap();
        cfg["trustedRoot"].to_string()
    })
}

/// Every string or number in a real keyless bundle replaced by garbage of several shapes:
/// verification fails, and never panics.
#[test]
fn every_field_garbled_never_panics() {
    fn leaves(v: &Value, path: String, out: &mut Vec<String>) {
        match v {
            Value::String(_) | Value::Number(_) => out.push(path),
            Value::Array(a) => {
                for (i, x) in a.iter().enumerate() {
                    leaves(x, format!("{path}/{i}"), out);
                }
            }
            Value::Object(o) => {
                for (k, x) in o {
                    leaves(x, format!("{path}/{k}"), out);
                }
            }
            _ => {}
        }
    }
    let v = production(policy(IDENTITY, ISSUER));
    let model = golden("v1.1.0-sigstore");
    let good: Value = serde_json::from_slice(&read_sig("v1.1.0-sigstore")).unwrap();
    let mut paths = Vec::new();
    leaves(&good, String::new(), &mut paths);
    assert!(paths.len() > 15, "{paths:?}");
    let garbage = [
        Value::String(String::new()),
        Value::String("AAAA".into()),
        Value::String("-1".into()),
        Value::String("99999999999999999999999".into()),
        Value::String("\u{2014}\n\n\u{2014}".into()),
        Value::Null,
        Value::Bool(true),
        Value::Array(Vec::new()),
    ];
    let mut failed = 0;
    for p in &paths {
        for g in &garbage {
            let mut b = good.clone();
            *b.pointer_mut(p).unwrap() = g.clone();
            if run(&model, &serde_json::to_vec(&b).unwrap(), &v).is_err() {
                failed += 1;
            } else {
                eprintln!("accepted: {p} = {g}");
            }
        }
    }
    // Every one is refused: each field is either signed, checked against a signed value, or
    // parsed strictly.
    assert_eq!(failed, paths.len() * garbage.len());
}
