//! The verifier's memory stays bounded whatever the signature file holds: the real binary runs
//! on hostile inputs (the largest signature file accepted, a signed manifest listing more
//! resources than allowed, a chain of tens of thousands of certificates, JSON nested millions
//! deep) and is refused cleanly (exit 1, a message naming the limit), with a peak resident set
//! far below the 256 MiB the operator gives its agent container. The twin: a genuine signed
//! model verifies under the same measure.
//!
//! Peak RSS is the child's own `ru_maxrss`, read by GNU time (`/usr/bin/time -f %M`, KiB).

mod support;

use std::path::Path;
use std::process::Command;

use model_signing::bundle::{
    BUNDLE_V03_MEDIA_TYPE, Bundle, Envelope, EnvelopeSignature, PublicKeyIdentifier,
    VerificationMaterial, encode_base64,
};
use model_signing::dsse::{IN_TOTO_PAYLOAD_TYPE, pae};
use model_signing::keys::PrivateKey;
use model_signing::limits::{
    MAX_BUNDLE_BYTES, MAX_CHAIN_CERTIFICATES, MAX_KEYLESS_RESOURCES, MAX_RESOURCES,
    MAX_STATEMENT_BYTES,
};
use model_signing::manifest::{Resource, root_digest};
use model_signing::name::ResourceName;
use support::{AT_TIME, BIN, fixture, model, s, sign_with_key};

/// The agent container's memory limit (crates/operator/src/webhook/inject.rs).
const CONTAINER_LIMIT_KIB: u64 = 256 * 1024;
/// What the tests allow: half of it, so that the hashing threads and the kernel's share of the
/// cgroup still fit.
const PEAK_LIMIT_KIB: u64 = CONTAINER_LIMIT_KIB / 2;

struct Run {
    code: Option<i32>,
    stderr: String,
    peak_kib: u64,
}

/// Runs the binary (this build's, or the one `BOUNDED_MEMORY_BIN` names, e.g. the release
/// agent) under GNU time and returns its exit code, its stderr and its peak RSS.
fn measured(args: &[&str]) -> Run {
    let d = tempfile::tempdir().unwrap();
    let rss = d.path().join("rss");
    let bin = std::env::var("BOUNDED_MEMORY_BIN").unwrap_or_else(|_| BIN.to_string());
    let o = Command::new("/usr/bin/time")
        .args(["-f", "%M", "-o", s(&rss), &bin])
        .args(args)
        .output()
        .expect("GNU time (/usr/bin/time) measures the peak RSS of these tests");
    let peak_kib = std::fs::read_to_string(&rss)
        .unwrap()
        .lines()
        .last()
        .and_then(|l| l.trim().parse().ok())
        .expect("GNU time wrote the peak RSS");
    Run {
        code: o.status.code(),
        stderr: String::from_utf8_lossy(&o.stderr).into_owned(),
        peak_kib,
    }
}

fn assert_bounded(what: &str, r: &Run) {
    eprintln!("{what}: exit {:?}, peak RSS {} KiB", r.code, r.peak_kib);
    assert!(
        r.peak_kib < PEAK_LIMIT_KIB,
        "{what}: peak RSS {} KiB is not below {PEAK_LIMIT_KIB} KiB",
        r.peak_kib
    );
}

fn refused(what: &str, r: &Run, message: &str) {
    assert_bounded(what, r);
    assert_eq!(r.code, Some(1), "{what}: {}", r.stderr);
    assert!(
        r.stderr.contains(message),
        "{what}: expected {message:?} in {}",
        &r.stderr[..r.stderr.len().min(2000)]
    );
}

fn key() -> PrivateKey {
    PrivateKey::from_pem(
        "k",
        &std::fs::read(fixture("peer-samples/ec-p256.priv.pem")).unwrap(),
        None,
    )
    .unwrap()
}

/// A compact statement listing `n` files `f0`, `f1`, ... with a consistent root digest, padded
/// to `size` bytes with an extension field (which in-toto says to ignore).
fn statement(n: usize, size: usize) -> Vec<u8> {
    let digest = [7u8; 32];
    let resources: Vec<Resource> = (0..n)
        .map(|i| Resource {
            name: ResourceName::parse_file(&format!("f{i}")).unwrap(),
            digest: digest.to_vec(),
        })
        .collect();
    let hex_digest = hex::encode(digest);
    let mut out = format!(
        "{{\"_type\":\"https://in-toto.io/Statement/v1\",\"subject\":[{{\"name\":\"m\",\"digest\":{{\"sha256\":\"{}\"}}}}],\"predicateType\":\"https://model_signing/signature/v1.0\",\"predicate\":{{\"serialization\":{{\"method\":\"files\",\"hash_type\":\"sha256\",\"allow_symlinks\":false}},\"resources\":[",
        hex::encode(root_digest(&resources))
    );
    for i in 0..n {
        if i > 0 {
            out.push(',');
        }
        out.push_str(&format!(
            "{{\"name\":\"f{i}\",\"algorithm\":\"sha256\",\"digest\":\"{hex_digest}\"}}"
        ));
    }
    out.push_str("]},\"padding\":\"");
    let pad = size
        .checked_sub(out.len() + 2)
        .expect("room for the padding");
    out.push_str(&"x".repeat(pad));
    out.push_str("\"}");
    assert_eq!(out.len(), size);
    out.into_bytes()
}

/// A key-method bundle over `payload`, genuinely signed with the peer-samples key.
fn signed_bundle(payload: &[u8]) -> String {
    let key = key();
    let sig = key.sign(&pae(IN_TOTO_PAYLOAD_TYPE, payload)).unwrap();
    Bundle {
        media_type: BUNDLE_V03_MEDIA_TYPE.into(),
        verification_material: VerificationMaterial {
            public_key: Some(PublicKeyIdentifier {
                hint: Some(key.public_key().hint()),
                ..Default::default()
            }),
            ..Default::default()
        },
        dsse_envelope: Some(Envelope {
            payload: encode_base64(payload),
            payload_type: IN_TOTO_PAYLOAD_TYPE.into(),
            signatures: vec![EnvelopeSignature {
                sig: encode_base64(&sig),
                keyid: Some(String::new()),
            }],
        }),
        message_signature: None,
    }
    .to_json()
}

fn verify_key(m: &Path, sig: &Path) -> Run {
    let pubkey = fixture("peer-samples/ec-p256.pub.pem");
    measured(&[
        "verify",
        "key",
        s(m),
        "--signature",
        s(sig),
        "--public_key",
        s(&pubkey),
    ])
}

#[test]
fn a_genuine_signature_verifies_within_the_bound() {
    let d = tempfile::tempdir().unwrap();
    let m = model(d.path());
    let sig = sign_with_key(&m, &[]);
    let r = verify_key(&m, &sig);
    assert_bounded("genuine", &r);
    assert_eq!(r.code, Some(0), "{}", r.stderr);
}

#[test]
fn the_largest_signed_manifest_accepted_stays_within_the_bound() {
    // As many resources as fit in the largest signature file: signed, so the verifier parses
    // every one of them, then finds the files missing.
    let d = tempfile::tempdir().unwrap();
    let m = model(d.path());
    let n = MAX_RESOURCES;
    let bundle = signed_bundle(&statement(n, MAX_STATEMENT_BYTES));
    assert!(bundle.len() as u64 <= MAX_BUNDLE_BYTES, "{}", bundle.len());
    let sig = d.path().join("big.sig");
    std::fs::write(&sig, &bundle).unwrap();
    let r = verify_key(&m, &sig);
    refused("largest manifest", &r, &format!("{n} files missing: "));
    assert!(r.stderr.len() < 10_000, "the message lists every file");
}

#[test]
fn a_manifest_over_the_resource_limit_is_refused() {
    let d = tempfile::tempdir().unwrap();
    let m = model(d.path());
    let sig = d.path().join("many.sig");
    let payload = statement(MAX_RESOURCES + 1, MAX_STATEMENT_BYTES);
    std::fs::write(&sig, signed_bundle(&payload)).unwrap();
    refused(
        "too many resources",
        &verify_key(&m, &sig),
        &format!("limit of {MAX_RESOURCES} (MAX_RESOURCES)"),
    );
}

#[test]
fn signature_files_at_and_over_the_size_cap_are_refused() {
    let d = tempfile::tempdir().unwrap();
    let m = model(d.path());
    // Exactly the cap, nearly all payload: over the statement limit, refused before decoding.
    let head = format!(
        "{{\"mediaType\":\"{BUNDLE_V03_MEDIA_TYPE}\",\"verificationMaterial\":{{\"publicKey\":{{\"hint\":\"\"}}}},\"dsseEnvelope\":{{\"payloadType\":\"{IN_TOTO_PAYLOAD_TYPE}\",\"signatures\":[{{\"sig\":\"AAAA\"}}],\"payload\":\""
    );
    let tail = "\"}}";
    let fill = MAX_BUNDLE_BYTES as usize - head.len() - tail.len();
    let at_cap = format!("{head}{}{tail}", "A".repeat(fill / 4 * 4));
    let sig = d.path().join("cap.sig");
    std::fs::write(&sig, &at_cap).unwrap();
    refused(
        "bundle at the cap",
        &verify_key(&m, &sig),
        "(MAX_STATEMENT_BYTES)",
    );
    // A signed statement one byte over its limit: refused before it is decoded.
    let payload = statement(10, MAX_STATEMENT_BYTES + 1);
    std::fs::write(&sig, signed_bundle(&payload)).unwrap();
    refused(
        "payload over the limit",
        &verify_key(&m, &sig),
        &format!("exceed the verifier's limit of {MAX_STATEMENT_BYTES} (MAX_STATEMENT_BYTES)"),
    );
    // A byte over: refused unread.
    let f = std::fs::File::create(&sig).unwrap();
    f.set_len(MAX_BUNDLE_BYTES + 1).unwrap();
    refused(
        "bundle over the cap",
        &verify_key(&m, &sig),
        "(MAX_BUNDLE_BYTES)",
    );
    // Millions of tiny log entries in a file at the cap: parsing stops at the first past the
    // limit, before they reach memory.
    let entries = "{},".repeat(MAX_BUNDLE_BYTES as usize / 3 - 100);
    let many = format!(
        "{{\"mediaType\":\"{BUNDLE_V03_MEDIA_TYPE}\",\"verificationMaterial\":{{\"tlogEntries\":[{}{{}}]}}}}",
        entries
    );
    std::fs::write(&sig, &many).unwrap();
    refused(
        "log entries",
        &verify_key(&m, &sig),
        "more than 16 entries, the most this verifier reads here at verificationMaterial.tlogEntries",
    );
}

#[test]
fn a_chain_of_many_certificates_is_refused() {
    let d = tempfile::tempdir().unwrap();
    let m = model(d.path());
    let sig = d.path().join("chain.sig");
    support::sign_with_certificate(&m, &sig);
    let mut v: serde_json::Value = serde_json::from_slice(&std::fs::read(&sig).unwrap()).unwrap();
    let certs = v["verificationMaterial"]["x509CertificateChain"]["certificates"]
        .as_array()
        .unwrap()
        .clone();
    let one_size = serde_json::to_string(&certs[1]).unwrap().len();
    let copies = (MAX_BUNDLE_BYTES as usize - 10_000) / (one_size + 1);
    let mut long = vec![certs[0].clone()];
    long.extend(std::iter::repeat_n(certs[1].clone(), copies));
    v["verificationMaterial"]["x509CertificateChain"]["certificates"] = long.into();
    std::fs::write(&sig, serde_json::to_vec(&v).unwrap()).unwrap();
    let root = fixture("peer-samples/pki/root-ca.cert.pem");
    let verify = || {
        measured(&[
            "verify",
            "certificate",
            s(&m),
            "--signature",
            s(&sig),
            "--certificate_chain",
            s(&root),
            "--at-time",
            AT_TIME,
        ])
    };
    refused(
        &format!("chain of {} certificates", copies + 1),
        &verify(),
        &format!(
            "more than {MAX_CHAIN_CERTIFICATES} entries, the most this verifier reads here at verificationMaterial.x509CertificateChain.certificates"
        ),
    );
    // The twin: the chain as signed verifies under the same measure.
    v["verificationMaterial"]["x509CertificateChain"]["certificates"] = certs.into();
    std::fs::write(&sig, serde_json::to_vec(&v).unwrap()).unwrap();
    let r = verify();
    assert_bounded("chain as signed", &r);
    assert_eq!(r.code, Some(0), "{}", r.stderr);
}

#[test]
fn json_nested_millions_deep_is_refused() {
    let d = tempfile::tempdir().unwrap();
    let m = model(d.path());
    let sig = d.path().join("deep.sig");
    let depth = MAX_BUNDLE_BYTES as usize / 2 - 100;
    let deep = format!(
        "{{\"mediaType\":\"{BUNDLE_V03_MEDIA_TYPE}\",\"foo\":{}{}}}",
        "[".repeat(depth),
        "]".repeat(depth)
    );
    std::fs::write(&sig, &deep).unwrap();
    refused(
        "unknown field, deep",
        &verify_key(&m, &sig),
        "unknown field \"foo\" at the top level",
    );
    let deep_known = format!(
        "{{\"mediaType\":\"{BUNDLE_V03_MEDIA_TYPE}\",\"verificationMaterial\":{{\"tlogEntries\":{}{}}}}}",
        "[".repeat(depth),
        "]".repeat(depth)
    );
    std::fs::write(&sig, &deep_known).unwrap();
    refused(
        "known field, deep",
        &verify_key(&m, &sig),
        "not a valid Sigstore bundle",
    );
}

#[test]
fn a_keyless_signature_with_the_largest_statement_stays_within_the_bound() {
    // Keyless verification parses the statement before any signature is checked (the log
    // entry is looked up by the statement's digest), and sigstore-types parses the bundle a
    // second time: the costliest path.
    let d = tempfile::tempdir().unwrap();
    let m = support::golden("v1.1.0-sigstore");
    let mut v: serde_json::Value =
        serde_json::from_slice(&std::fs::read(m.join("model.sig")).unwrap()).unwrap();
    let sig = d.path().join("keyless.sig");
    let mut verify = |resources: usize| {
        v["dsseEnvelope"]["payload"] =
            encode_base64(&statement(resources, MAX_STATEMENT_BYTES)).into();
        std::fs::write(&sig, serde_json::to_vec(&v).unwrap()).unwrap();
        measured(&[
            "verify",
            "sigstore",
            s(&m),
            "--signature",
            s(&sig),
            "--identity",
            "stefanb@us.ibm.com",
            "--identity-provider",
            "https://sigstore.verify.ibm.com/oauth2",
        ])
    };
    // The most resources accepted: parsed (twice), then the log entry does not match.
    refused(
        "keyless, largest statement",
        &verify(MAX_KEYLESS_RESOURCES),
        "sigstore",
    );
    refused(
        "keyless, too many resources",
        &verify(MAX_KEYLESS_RESOURCES + 1),
        &format!("limit of {MAX_KEYLESS_RESOURCES} (MAX_KEYLESS_RESOURCES)"),
    );
}
