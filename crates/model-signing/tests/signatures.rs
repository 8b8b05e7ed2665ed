//! Every released signature format verifies (and tampered copies fail); OMS v1.0 test vectors
//! behave as their folders say; the peer's samples verify; adversarial bundles are refused with
//! a clear error.

mod support;

use std::fs;
use std::path::{Path, PathBuf};

use model_signing::bundle::{Bundle, BundleError, encode_base64, read_signature_file};
use model_signing::dsse::{IN_TOTO_PAYLOAD_TYPE, pae};
use model_signing::error::Error;
use model_signing::keys::PublicKey;
use model_signing::name::ModelPath;
use model_signing::statement::StatementError;
use model_signing::verify::{
    CertificateVerifier, EnvelopeVerifier, KeyVerifier, SignatureMethod, VerifyOptions,
    verify_model,
};
use model_signing::x509::Certificate;
use support::{fixture, fixture_time, mt, signing_key};

fn key_verifier(pem: &Path) -> KeyVerifier {
    KeyVerifier::new(
        PublicKey::from_pem("key", &fs::read(pem).unwrap()).unwrap(),
        pem.display().to_string(),
    )
}

fn cert_verifier(pems: &[PathBuf]) -> CertificateVerifier {
    let anchors = pems
        .iter()
        .flat_map(|p| Certificate::all_from_pem("ca", &fs::read(p).unwrap()).unwrap())
        .collect();
    // At a fixed time: the peer-samples leaves expire on 2027-11-24.
    CertificateVerifier::new(anchors, fixture_time()).unwrap()
}

fn opts(ignore: &[&str]) -> VerifyOptions<'static> {
    VerifyOptions {
        extra_ignore_paths: ignore
            .iter()
            .map(|p| ModelPath::parse(p).unwrap())
            .collect(),
        ignore_git_paths: true,
        ..Default::default()
    }
}

fn verify(
    model: &Path,
    sig: &Path,
    v: &dyn EnvelopeVerifier,
    ignore: &[&str],
) -> Result<(), Error> {
    verify_model(model, &read_signature_file(sig)?, v, &opts(ignore)).map(|_| ())
}

fn copy_dir(from: &Path, to: &Path) {
    fs::create_dir_all(to).unwrap();
    for e in fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        let dst = to.join(e.file_name());
        if e.file_type().unwrap().is_dir() {
            copy_dir(&e.path(), &dst);
        } else {
            fs::copy(e.path(), dst).unwrap();
        }
    }
}

/// (golden directory, model inside it, ignore paths) for the key and certificate goldens.
const KEY_GOLDENS: [(&str, &str); 4] = [
    ("v0.3.1-elliptic-key", "signme-1"),
    ("v1.0.0-elliptic-key", "signme-1"),
    ("v1.0.1-elliptic-key", ""),
    ("v1.1.0-elliptic-key", ""),
];
const CERT_GOLDENS: [&str; 5] = [
    "v0.2.0-certificate",
    "v0.3.1-certificate",
    "v1.0.0-certificate",
    "v1.0.1-certificate",
    "v1.1.0-certificate",
];

#[test]
fn every_key_and_certificate_golden_verifies_and_tampering_fails() {
    let key = key_verifier(&mt("keys/certificate/signing-key-pub.pem"));
    let ca = cert_verifier(&[mt("keys/certificate/ca-cert.pem")]);
    let goldens = KEY_GOLDENS
        .iter()
        .map(|(d, m)| (*d, *m, &key as &dyn EnvelopeVerifier))
        .chain(
            CERT_GOLDENS
                .iter()
                .map(|d| (*d, "", &ca as &dyn EnvelopeVerifier)),
        );
    let mut count = 0;
    for (dir, inner, verifier) in goldens {
        let tmp = tempfile::tempdir().unwrap();
        let model_dir = tmp.path().join("m");
        copy_dir(&mt(dir), &model_dir);
        let model = if inner.is_empty() {
            model_dir.clone()
        } else {
            model_dir.join(inner)
        };
        let sig = model_dir.join("model.sig");
        verify(&model, &sig, verifier, &["ignore-me", "model.sig"])
            .unwrap_or_else(|e| panic!("{dir}: {e}"));
        // Tamper with one byte of the signed content.
        let target = if inner.is_empty() {
            model_dir.join("signme-1")
        } else {
            model.clone()
        };
        let mut bytes = fs::read(&target).unwrap();
        bytes.push(b'!');
        fs::write(&target, bytes).unwrap();
        match verify(&model, &sig, verifier, &["ignore-me", "model.sig"]) {
            Err(Error::Mismatch(m)) => {
                let named = if inner.is_empty() { "signme-1" } else { "." };
                assert_eq!(m.changed.len(), 1, "{dir}: {m}");
                assert_eq!(m.changed[0].path, named, "{dir}: {m}");
            }
            other => panic!("{dir}: tampered model gave {other:?}"),
        }
        count += 1;
    }
    assert_eq!(count, 9);
}

#[test]
fn goldens_fail_with_the_wrong_key_or_ca() {
    let other_key = key_verifier(&fixture("peer-samples/ec-p256.pub.pem"));
    let err = verify(
        &mt("v1.1.0-elliptic-key"),
        &mt("v1.1.0-elliptic-key/model.sig"),
        &other_key,
        &[],
    )
    .unwrap_err();
    assert!(matches!(err, Error::KeyMismatch(_)), "{err}");
    // Pre-1.1 bundles have no hint: the signature check itself must catch the wrong key.
    let err = verify(
        &mt("v1.0.1-elliptic-key"),
        &mt("v1.0.1-elliptic-key/model.sig"),
        &other_key,
        &["ignore-me"],
    )
    .unwrap_err();
    assert!(matches!(err, Error::BadSignature(_)), "{err}");
    let other_ca = cert_verifier(&[fixture("peer-samples/pki/root-ca.cert.pem")]);
    let err = verify(
        &mt("v1.1.0-certificate"),
        &mt("v1.1.0-certificate/model.sig"),
        &other_ca,
        &[],
    )
    .unwrap_err();
    assert!(
        err.to_string().contains("not one of the trusted CAs"),
        "{err}"
    );
    // A key bundle verified as a certificate one says which method to use.
    let ca = cert_verifier(&[mt("keys/certificate/ca-cert.pem")]);
    let err = verify(
        &mt("v1.1.0-elliptic-key"),
        &mt("v1.1.0-elliptic-key/model.sig"),
        &ca,
        &[],
    )
    .unwrap_err();
    assert!(
        matches!(
            err,
            Error::WrongMethod {
                expected: SignatureMethod::Certificate,
                found: Some(SignatureMethod::Key)
            }
        ),
        "{err}"
    );
    assert!(err.to_string().contains("but with a public key"), "{err}");
}

#[test]
fn oms_vectors_behave_as_their_folders_say() {
    let vectors = fixture("model-signing-spec/test-vectors/v1.0");
    let key = key_verifier(&mt("keys/certificate/signing-key-pub.pem"));
    let ca = cert_verifier(&[mt("keys/certificate/ca-cert.pem")]);
    let model = mt("v1.1.0-elliptic-key");
    verify(
        &model,
        &vectors.join("valid/key.bundle.json"),
        &key,
        &["model.sig"],
    )
    .unwrap();
    verify(
        &model,
        &vectors.join("valid/certificate.bundle.json"),
        &ca,
        &["model.sig"],
    )
    .unwrap();
    type Expectation = (&'static str, fn(&Error) -> bool);
    let expectations: [Expectation; 5] = [
        ("invalid/empty.bundle.json", |e| {
            matches!(e, Error::Bundle(BundleError::Json(_)))
        }),
        ("invalid/missing-envelope.bundle.json", |e| {
            e.to_string().contains("no dsseEnvelope")
        }),
        ("invalid/missing-tlog-entries.bundle.json", |e| {
            matches!(e, Error::WrongMethod { .. })
        }),
        ("invalid/missing-verification-material.bundle.json", |e| {
            e.to_string().contains("verificationMaterial")
        }),
        ("invalid-payload/wrong-predicate.bundle.json", |e| {
            matches!(e, Error::BadSignature(_))
        }),
    ];
    for (vector, expected) in expectations {
        let err = verify(&model, &vectors.join(vector), &key, &["model.sig"]).unwrap_err();
        assert!(expected(&err), "{vector}: {err}");
    }
    // The wrong predicate is also caught on its own, before any hashing.
    let b = Bundle::from_slice(
        &fs::read(vectors.join("invalid-payload/wrong-predicate.bundle.json")).unwrap(),
    )
    .unwrap();
    let payload = b.envelope().unwrap().payload_bytes().unwrap();
    assert!(matches!(
        model_signing::statement::parse(&payload),
        Err(StatementError::WrongPredicate(_))
    ));
}

/// Rebuilds the four trees of peer-samples/README.md §2 under `dir`.
fn peer_trees(dir: &Path) -> PathBuf {
    let ps = fixture("peer-samples");
    let status = std::process::Command::new("tar")
        .arg("-xf")
        .arg(ps.join("synthetic-model.tar"))
        .current_dir(dir)
        .status()
        .unwrap();
    assert!(status.success());
    copy_dir(&dir.join("model"), &dir.join("model-cert"));
    fs::copy(
        ps.join("cert-p256.model.sig"),
        dir.join("model-cert/model.sig"),
    )
    .unwrap();
    copy_dir(&dir.join("model"), &dir.join("model-api"));
    fs::remove_file(dir.join("model-api/model.sig")).unwrap();
    copy_dir(&dir.join("model"), &dir.join("igm"));
    fs::copy(ps.join("ignore-paths.model.sig"), dir.join("igm/model.sig")).unwrap();
    ps
}

#[test]
fn peer_samples_verify() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    let ps = peer_trees(d);
    // copy_dir drops empty directories and keeps .git: the walk must not care about either.
    let p256 = key_verifier(&ps.join("ec-p256.pub.pem"));
    type Case = (
        &'static str,
        &'static str,
        Box<dyn EnvelopeVerifier>,
        &'static [&'static str],
    );
    let cases: Vec<Case> = vec![
        (
            "model",
            "model/model.sig",
            Box::new(key_verifier(&ps.join("ec-p256.pub.pem"))),
            &["model.sig"],
        ),
        (
            "model-cert",
            "key-p384.sig",
            Box::new(key_verifier(&ps.join("keys/p384.pub"))),
            &[],
        ),
        (
            "model-cert",
            "key-p521.sig",
            Box::new(key_verifier(&ps.join("keys/p521.pub"))),
            &[],
        ),
        (
            "model-cert",
            "pkcs11-key.sig",
            Box::new(key_verifier(&ps.join("pki/leaf.pub.pem"))),
            &[],
        ),
        (
            "igm",
            "igm/model.sig",
            Box::new(key_verifier(&ps.join("ec-p256.pub.pem"))),
            &[],
        ),
        (
            "model-api",
            "api-shards-sha256-4096.sig",
            Box::new(key_verifier(&ps.join("ec-p256.pub.pem"))),
            &[],
        ),
        (
            "model-api",
            "api-shards-sha256-default.sig",
            Box::new(key_verifier(&ps.join("ec-p256.pub.pem"))),
            &[],
        ),
        (
            "model-api",
            "api-files-blake2.sig",
            Box::new(key_verifier(&ps.join("ec-p256.pub.pem"))),
            &[],
        ),
        (
            "model-api",
            "api-files-blake3.sig",
            Box::new(key_verifier(&ps.join("ec-p256.pub.pem"))),
            &[],
        ),
        (
            "model-cert",
            "model-cert/model.sig",
            Box::new(cert_verifier(&[ps.join("pki/root-ca.cert.pem")])),
            &["model.sig"],
        ),
        (
            "model-cert",
            "cert-eku-only.sig",
            Box::new(cert_verifier(&[ps.join("pki/root-ca.cert.pem")])),
            &[],
        ),
        (
            "model-cert",
            "cert-tls.sig",
            Box::new(cert_verifier(&[ps.join("pki/root-ca.cert.pem")])),
            &[],
        ),
    ];
    for (model, sig, verifier, ignore) in &cases {
        let sig_path = if sig.contains('/') {
            d.join(sig)
        } else {
            ps.join(sig)
        };
        verify(&d.join(model), &sig_path, verifier.as_ref(), ignore)
            .unwrap_or_else(|e| panic!("{sig}: {e}"));
    }
    // The expired leaf that 1.1.1 accepts is refused here, saying why.
    let err = verify(
        &d.join("model-cert"),
        &ps.join("cert-expired.sig"),
        &cert_verifier(&[ps.join("pki/old-root.cert.pem")]),
        &[],
    )
    .unwrap_err();
    assert!(err.to_string().contains("expired"), "{err}");
    // Recorded ignore paths are re-applied: files under igm/sub/deeper may change freely.
    fs::write(d.join("igm/sub/deeper/new.bin"), "x").unwrap();
    fs::write(d.join("igm/sub/deeper/layer2.bin"), "changed").unwrap();
    verify(&d.join("igm"), &d.join("igm/model.sig"), &p256, &[]).unwrap();
    // ...but README.md was signed (the peer dropped that ignore path), so changing it fails.
    fs::write(d.join("igm/README.md"), "changed").unwrap();
    assert!(matches!(
        verify(&d.join("igm"), &d.join("igm/model.sig"), &p256, &[]),
        Err(Error::Mismatch(_))
    ));
}

#[test]
fn symlink_sample_needs_allow_symlinks() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    let m = d.join("symmodel");
    fs::create_dir_all(m.join("real")).unwrap();
    fs::create_dir_all(d.join("outside/dir")).unwrap();
    fs::write(m.join("real/a.bin"), "data\n").unwrap();
    fs::write(d.join("outside/o.bin"), "outside\n").unwrap();
    fs::write(d.join("outside/dir/x.bin"), "x\n").unwrap();
    std::os::unix::fs::symlink("real/a.bin", m.join("link-a.bin")).unwrap();
    std::os::unix::fs::symlink("../outside/o.bin", m.join("link-out.bin")).unwrap();
    std::os::unix::fs::symlink("../outside/dir", m.join("linkdir")).unwrap();
    let ps = fixture("peer-samples");
    let v = key_verifier(&ps.join("ec-p256.pub.pem"));
    let bytes = read_signature_file(&ps.join("sym.sig")).unwrap();
    let err = verify_model(&m, &bytes, &v, &opts(&[])).unwrap_err();
    assert!(
        // Signed with symlinks allowed: the error says so, with the link's path.
        matches!(&err, Error::SymlinkNotAllowed { path } if path.starts_with("link")),
        "{err}"
    );
    let mut o = opts(&[]);
    o.allow_symlinks = true;
    let report = verify_model(&m, &bytes, &v, &o).unwrap();
    assert!(
        report.warnings.iter().any(|w| w.contains("linkdir")),
        "{:?}",
        report.warnings
    );
    // Retargeting a link changes what is hashed.
    fs::remove_file(m.join("link-a.bin")).unwrap();
    std::os::unix::fs::symlink("../outside/o.bin", m.join("link-a.bin")).unwrap();
    assert!(matches!(
        verify_model(&m, &bytes, &v, &o),
        Err(Error::Mismatch(_))
    ));
}

// ---- adversarial bundles: each is validly signed, so only the targeted check can fail ----

fn bundle_for(payload: &[u8], payload_type: &str) -> Vec<u8> {
    let key = signing_key();
    let sig = key.sign(&pae(payload_type, payload)).unwrap();
    serde_json::to_vec(&serde_json::json!({
        "mediaType": "application/vnd.dev.sigstore.bundle.v0.3+json",
        "verificationMaterial": {"publicKey": {"hint": key.public_key().hint()}, "tlogEntries": []},
        "dsseEnvelope": {"payload": encode_base64(payload), "payloadType": payload_type, "signatures": [{"sig": encode_base64(&sig), "keyid": ""}]},
    }))
    .unwrap()
}

fn statement(
    subjects: serde_json::Value,
    predicate_type: &str,
    resources: serde_json::Value,
) -> Vec<u8> {
    serde_json::to_vec(&serde_json::json!({
        "_type": "https://in-toto.io/Statement/v1",
        "subject": subjects,
        "predicateType": predicate_type,
        "predicate": {"serialization": {"method": "files", "hash_type": "sha256", "allow_symlinks": false}, "resources": resources},
    }))
    .unwrap()
}

const EMPTY_SHA: &str = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
const PRED: &str = "https://model_signing/signature/v1.0";

fn root_of(digests: &[&str]) -> String {
    let all: Vec<u8> = digests
        .iter()
        .flat_map(|d| hex::decode(d).unwrap())
        .collect();
    hex::encode(model_signing::hashing::sha256(&all))
}

fn attempt(bundle: &[u8]) -> Error {
    let tmp = tempfile::tempdir().unwrap();
    fs::write(tmp.path().join("a"), "").unwrap();
    let v = KeyVerifier::new(signing_key().public_key().clone(), "key");
    verify_model(tmp.path(), bundle, &v, &opts(&[])).unwrap_err()
}

#[test]
fn adversarial_bundles_are_refused_clearly() {
    let res = |name: &str| serde_json::json!([{"name": name, "algorithm": "sha256", "digest": EMPTY_SHA}]);
    let subject = serde_json::json!([{"name": "m", "digest": {"sha256": root_of(&[EMPTY_SHA])}}]);
    // Sanity: the well-formed bundle verifies against a model with one empty file "a".
    let good = bundle_for(
        &statement(subject.clone(), PRED, res("a")),
        IN_TOTO_PAYLOAD_TYPE,
    );
    {
        let tmp = tempfile::tempdir().unwrap();
        fs::write(tmp.path().join("a"), "").unwrap();
        let v = KeyVerifier::new(signing_key().public_key().clone(), "key");
        verify_model(tmp.path(), &good, &v, &opts(&[])).unwrap();
    }
    let cases: Vec<(&str, Vec<u8>, &str)> = vec![
        (
            "malformed JSON",
            b"{\"mediaType\": \"x\",".to_vec(),
            "not a valid Sigstore bundle",
        ),
        (
            "wrong payloadType",
            bundle_for(&statement(subject.clone(), PRED, res("a")), "text/plain"),
            "payloadType \"text/plain\"",
        ),
        (
            "wrong predicateType",
            bundle_for(
                &statement(subject.clone(), "https://example.com/p", res("a")),
                IN_TOTO_PAYLOAD_TYPE,
            ),
            "predicateType \"https://example.com/p\"",
        ),
        (
            "two subjects",
            bundle_for(
                &statement(serde_json::json!([subject[0], subject[0]]), PRED, res("a")),
                IN_TOTO_PAYLOAD_TYPE,
            ),
            "2 subjects",
        ),
        (
            "root digest mismatch",
            bundle_for(
                &statement(
                    serde_json::json!([{"name": "m", "digest": {"sha256": EMPTY_SHA}}]),
                    PRED,
                    res("a"),
                ),
                IN_TOTO_PAYLOAD_TYPE,
            ),
            "root digest",
        ),
        (
            "traversal name",
            bundle_for(
                &statement(subject.clone(), PRED, res("../../etc/passwd")),
                IN_TOTO_PAYLOAD_TYPE,
            ),
            "would leave the model root",
        ),
        (
            "absolute name",
            bundle_for(
                &statement(subject.clone(), PRED, res("/etc/passwd")),
                IN_TOTO_PAYLOAD_TYPE,
            ),
            "is absolute",
        ),
        (
            "empty manifest",
            bundle_for(
                &statement(
                    serde_json::json!([{"name": "m", "digest": {"sha256": EMPTY_SHA}}]),
                    PRED,
                    serde_json::json!([]),
                ),
                IN_TOTO_PAYLOAD_TYPE,
            ),
            "lists no files",
        ),
        (
            "not JSON payload",
            bundle_for(b"not json", IN_TOTO_PAYLOAD_TYPE),
            "statement is malformed",
        ),
    ];
    for (what, bundle, expected) in cases {
        let err = attempt(&bundle).to_string();
        assert!(err.contains(expected), "{what}: {err}");
    }
    // Truncated base64 in the payload and in the signature.
    let mut v: serde_json::Value = serde_json::from_slice(&good).unwrap();
    let payload = v["dsseEnvelope"]["payload"].as_str().unwrap().to_string();
    let cut = (payload.trim_end_matches('=').len() / 4 - 1) * 4 + 1;
    v["dsseEnvelope"]["payload"] = (payload[..cut].to_string()).into();
    assert!(
        attempt(&serde_json::to_vec(&v).unwrap())
            .to_string()
            .contains("payload is not valid base64")
    );
    let mut v: serde_json::Value = serde_json::from_slice(&good).unwrap();
    let sig = v["dsseEnvelope"]["signatures"][0]["sig"]
        .as_str()
        .unwrap()
        .to_string();
    // A length of 4k+1 characters is never valid base64, whatever the signature's length.
    let cut = (sig.trim_end_matches('=').len() / 4 - 1) * 4 + 1;
    v["dsseEnvelope"]["signatures"][0]["sig"] = (sig[..cut].to_string()).into();
    assert!(
        attempt(&serde_json::to_vec(&v).unwrap())
            .to_string()
            .contains("not valid base64")
    );
    // Two signatures: which one would be trusted?
    let mut v: serde_json::Value = serde_json::from_slice(&good).unwrap();
    let first = v["dsseEnvelope"]["signatures"][0].clone();
    v["dsseEnvelope"]["signatures"] = serde_json::json!([first.clone(), first]);
    assert!(
        attempt(&serde_json::to_vec(&v).unwrap())
            .to_string()
            .contains("2 signatures")
    );
    // Edited payload (signature no longer matches).
    let mut v: serde_json::Value = serde_json::from_slice(&good).unwrap();
    let edited = String::from_utf8(statement(subject.clone(), PRED, res("b"))).unwrap();
    v["dsseEnvelope"]["payload"] = encode_base64(edited.as_bytes()).into();
    assert!(matches!(
        attempt(&serde_json::to_vec(&v).unwrap()),
        Error::BadSignature(_)
    ));
    // Oversized signature files are refused before parsing.
    let tmp = tempfile::tempdir().unwrap();
    let big = tmp.path().join("big.sig");
    fs::File::create(&big)
        .unwrap()
        .set_len(model_signing::bundle::MAX_BUNDLE_BYTES + 1)
        .unwrap();
    assert!(matches!(
        read_signature_file(&big),
        Err(BundleError::TooLarge(_))
    ));
}

#[test]
fn ignore_unsigned_files_still_requires_every_signed_file() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    peer_trees(d);
    let ps = fixture("peer-samples");
    let v = key_verifier(&ps.join("ec-p256.pub.pem"));
    let bytes = read_signature_file(&d.join("model/model.sig")).unwrap();
    fs::write(d.join("model/extra.bin"), "unsigned").unwrap();
    let mut o = opts(&[]);
    assert!(
        matches!(verify_model(&d.join("model"), &bytes, &v, &o), Err(Error::Mismatch(m)) if m.extra == ["extra.bin"])
    );
    o.ignore_unsigned_files = true;
    verify_model(&d.join("model"), &bytes, &v, &o).unwrap();
    fs::remove_file(d.join("model/sub/empty.txt")).unwrap();
    match verify_model(&d.join("model"), &bytes, &v, &o) {
        Err(Error::Mismatch(m)) => assert_eq!(m.missing, ["sub/empty.txt"]),
        other => panic!("{other:?}"),
    }
    // Shard signatures work with --ignore_unsigned_files too (the peer cannot do this).
    let shards = read_signature_file(&ps.join("api-shards-sha256-4096.sig")).unwrap();
    fs::write(d.join("model-api/extra.bin"), "unsigned").unwrap();
    verify_model(&d.join("model-api"), &shards, &v, &o).unwrap();
    // An ignore path given at verification never hides a signed file.
    let mut o = opts(&["sub"]);
    o.ignore_unsigned_files = false;
    fs::write(d.join("model-cert/sub/layer1.bin"), "tampered").unwrap();
    let p384 = key_verifier(&ps.join("keys/p384.pub"));
    let err = verify_model(
        &d.join("model-cert"),
        &read_signature_file(&ps.join("key-p384.sig")).unwrap(),
        &p384,
        &o,
    )
    .unwrap_err();
    assert!(err.to_string().contains("sub/layer1.bin"), "{err}");
}
