//! Keyless verification against a whole Sigstore instance made up in the test: a Fulcio CA, a CT
//! log, a Rekor log and their trusted root. Real production signatures cannot be re-signed, so
//! the checks that no edit of a real bundle can reach alone are exercised here with bundles that
//! are valid in every other respect: a Rekor entry naming another certificate (same key), an
//! integrated time in the future or outside the certificate's validity, a certificate without
//! the codeSigning usage or from another CA, and identities carried only as a Fulcio username
//! otherName or an issuer only in the legacy extension.

mod support;

use std::path::Path;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{ECDSA_P256_SHA256_ASN1_SIGNING, EcdsaKeyPair};
use base64::Engine as _;
use der::{Decode, Encode};
use model_signing::hashing::{HashAlgorithm, sha256};
use model_signing::manifest::{Method, Resource, Serialization};
use model_signing::name::{ModelPath, ResourceName};
use model_signing::sigstore::{Check, Matcher, SigstorePolicy, SigstoreTrust, SigstoreVerifier};
use model_signing::verify::{VerifiedSigner, VerifyOptions, verify_model};
use model_signing::{Error, Result};
use rcgen::{
    BasicConstraints, CertificateParams, CustomExtension, DnType, ExtendedKeyUsagePurpose, IsCa,
    Issuer, KeyPair, KeyUsagePurpose, PKCS_ECDSA_P256_SHA256, SanType, SerialNumber,
};
use serde_json::{Value, json};
use support::b64;

const ISSUER: &str = "https://oidc.example.com";
const EMAIL: &str = "alice@example.com";
const SIGSTORE_ISSUER_V2: [u64; 9] = [1, 3, 6, 1, 4, 1, 57264, 1, 8];
const SIGSTORE_ISSUER_V1: [u64; 9] = [1, 3, 6, 1, 4, 1, 57264, 1, 1];
const SIGSTORE_USERNAME: [u64; 9] = [1, 3, 6, 1, 4, 1, 57264, 1, 7];
const SCT_LIST: [u64; 10] = [1, 3, 6, 1, 4, 1, 11129, 2, 4, 2];
const P256_SPKI_PREFIX: [u8; 26] = [
    0x30, 0x59, 0x30, 0x13, 0x06, 0x07, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01, 0x06, 0x08, 0x2a,
    0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07, 0x03, 0x42, 0x00,
];

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

/// An rcgen time from Unix seconds (rcgen's `time` type is not named here).
macro_rules! at {
    ($unix:expr) => {
        rcgen::date_time_ymd(1970, 1, 1) + Duration::from_secs($unix)
    };
}

/// A P-256 key usable both by rcgen and for raw signing.
struct Key {
    rc: KeyPair,
    ring: EcdsaKeyPair,
}

impl Key {
    fn new() -> Self {
        let rc = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256).unwrap();
        let ring =
            EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_ASN1_SIGNING, &rc.serialize_der()).unwrap();
        Key { rc, ring }
    }

    fn sign(&self, msg: &[u8]) -> Vec<u8> {
        self.ring
            .sign(&SystemRandom::new(), msg)
            .unwrap()
            .as_ref()
            .to_vec()
    }

    fn spki(&self) -> Vec<u8> {
        use rcgen::PublicKeyData;
        [&P256_SPKI_PREFIX[..], self.rc.der_bytes()].concat()
    }

    fn key_id(&self) -> [u8; 32] {
        sha256(&self.spki())
    }
}

/// A made-up Sigstore instance.
struct Instance {
    ca_key: Key,
    ca_params: CertificateParams,
    ca_der: Vec<u8>,
    ct: Key,
    rekor: Key,
}

/// What the signing certificate says.
struct Leaf {
    sans: Vec<SanType>,
    issuer_ext: Vec<CustomExtension>,
    not_before: u64,
    code_signing: bool,
    serial: u8,
    sct: bool,
}

impl Leaf {
    fn fulcio(not_before: u64) -> Self {
        Leaf {
            sans: vec![SanType::Rfc822Name(EMAIL.try_into().unwrap())],
            issuer_ext: vec![issuer_v2(ISSUER)],
            not_before,
            code_signing: true,
            serial: 1,
            sct: true,
        }
    }
}

fn utf8_der(s: &str) -> Vec<u8> {
    let mut v = vec![0x0c, s.len() as u8];
    v.extend_from_slice(s.as_bytes());
    v
}

fn issuer_v2(s: &str) -> CustomExtension {
    CustomExtension::from_oid_content(&SIGSTORE_ISSUER_V2, utf8_der(s))
}

fn tls_u16(v: &mut Vec<u8>, n: usize) {
    v.extend_from_slice(&(n as u16).to_be_bytes());
}

impl Instance {
    fn new() -> Self {
        let ca_key = Key::new();
        let mut p = CertificateParams::default();
        p.distinguished_name.push(DnType::CommonName, "test fulcio");
        p.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        p.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        p.extended_key_usages = vec![ExtendedKeyUsagePurpose::CodeSigning];
        p.not_before = rcgen::date_time_ymd(2020, 1, 1);
        p.not_after = rcgen::date_time_ymd(2099, 1, 1);
        let ca_der = p.self_signed(&ca_key.rc).unwrap().der().to_vec();
        Instance {
            ca_key,
            ca_params: p,
            ca_der,
            ct: Key::new(),
            rekor: Key::new(),
        }
    }

    fn log(key: &Key) -> Value {
        json!({
            "baseUrl": "https://log.example.com",
            "hashAlgorithm": "SHA2_256",
            "publicKey": {
                "rawBytes": b64().encode(key.spki()),
                "keyDetails": "PKIX_ECDSA_P256_SHA_256",
                "validFor": {"start": "2020-01-01T00:00:00Z"}
            },
            "logId": {"keyId": b64().encode(key.key_id())}
        })
    }

    fn trusted_root(&self) -> String {
        json!({
            "mediaType": "application/vnd.dev.sigstore.trustedroot+json;version=0.1",
            "tlogs": [Self::log(&self.rekor)],
            "certificateAuthorities": [{
                "subject": {"organization": "example", "commonName": "test fulcio"},
                "uri": "https://fulcio.example.com",
                "certChain": {"certificates": [{"rawBytes": b64().encode(&self.ca_der)}]},
                "validFor": {"start": "2020-01-01T00:00:00Z"}
            }],
            "ctlogs": [Self::log(&self.ct)],
            "timestampAuthorities": []
        })
        .to_string()
    }

    /// A leaf for `key` issued by this CA, with an SCT from this CT log embedded (RFC 6962:
    /// signed over the precertificate TBS, i.e. the TBS without the SCT list extension).
    fn leaf(&self, key: &Key, leaf: &Leaf) -> Vec<u8> {
        let issuer = Issuer::from_params(&self.ca_params, &self.ca_key.rc);
        let mut p = CertificateParams::default();
        p.subject_alt_names = leaf.sans.clone();
        p.custom_extensions = leaf.issuer_ext.clone();
        p.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        p.extended_key_usages = if leaf.code_signing {
            vec![ExtendedKeyUsagePurpose::CodeSigning]
        } else {
            vec![ExtendedKeyUsagePurpose::ServerAuth]
        };
        p.not_before = at!(leaf.not_before);
        p.not_after = at!(leaf.not_before + 600);
        p.serial_number = Some(SerialNumber::from(vec![leaf.serial]));
        let pre = p.signed_by(&key.rc, &issuer).unwrap();
        if !leaf.sct {
            return pre.der().to_vec();
        }
        let pre = x509_cert::Certificate::from_der(pre.der()).unwrap();
        let tbs = pre.tbs_certificate.to_der().unwrap();

        let timestamp = leaf.not_before * 1000;
        let issuer_key_hash = sha256(
            &x509_cert::Certificate::from_der(&self.ca_der)
                .unwrap()
                .tbs_certificate
                .subject_public_key_info
                .to_der()
                .unwrap(),
        );
        let mut signed = vec![0u8, 0u8];
        signed.extend_from_slice(&timestamp.to_be_bytes());
        signed.extend_from_slice(&1u16.to_be_bytes());
        signed.extend_from_slice(&issuer_key_hash);
        signed.extend_from_slice(&(tbs.len() as u32).to_be_bytes()[1..]);
        signed.extend_from_slice(&tbs);
        tls_u16(&mut signed, 0);
        let sig = self.ct.sign(&signed);

        let mut sct = vec![0u8];
        sct.extend_from_slice(&self.ct.key_id());
        sct.extend_from_slice(&timestamp.to_be_bytes());
        tls_u16(&mut sct, 0);
        sct.extend_from_slice(&[4, 3]);
        tls_u16(&mut sct, sig.len());
        sct.extend_from_slice(&sig);
        let mut list = Vec::new();
        tls_u16(&mut list, sct.len() + 2);
        tls_u16(&mut list, sct.len());
        list.extend_from_slice(&sct);
        let octets = der::asn1::OctetString::new(list).unwrap().to_der().unwrap();
        p.custom_extensions
            .push(CustomExtension::from_oid_content(&SCT_LIST, octets));
        p.signed_by(&key.rc, &issuer).unwrap().der().to_vec()
    }

    /// A keyless bundle: `signer` signs the DSSE envelope with the certificate `cert`; the Rekor
    /// entry (tree of one leaf) records `logged_cert` at `integrated_time`, with its SET and a
    /// checkpoint signed by this Rekor key.
    fn bundle(
        &self,
        signer: &Key,
        cert: &[u8],
        logged_cert: &[u8],
        payload: &[u8],
        integrated_time: u64,
    ) -> Vec<u8> {
        let payload_type = "application/vnd.in-toto+json";
        let sig = signer.sign(&model_signing::dsse::pae(payload_type, payload));
        let envelope = json!({
            "payload": b64().encode(payload),
            "payloadType": payload_type,
            "signatures": [{"sig": b64().encode(&sig)}]
        });
        let pem = format!(
            "-----BEGIN CERTIFICATE-----\n{}\n-----END CERTIFICATE-----\n",
            b64().encode(logged_cert)
        );
        let body = json!({
            "apiVersion": "0.0.1",
            "kind": "dsse",
            "spec": {
                "envelopeHash": {"algorithm": "sha256", "value": hex::encode(sha256(envelope.to_string().as_bytes()))},
                "payloadHash": {"algorithm": "sha256", "value": hex::encode(sha256(payload))},
                "signatures": [{"signature": b64().encode(&sig), "verifier": b64().encode(pem)}]
            }
        })
        .to_string();
        let log_id = self.rekor.key_id();
        let set_payload = format!(
            r#"{{"body":"{}","integratedTime":{integrated_time},"logID":"{}","logIndex":0}}"#,
            b64().encode(&body),
            hex::encode(log_id)
        );
        let set = self.rekor.sign(set_payload.as_bytes());
        let root = sha256(&[&[0u8][..], body.as_bytes()].concat());
        let note = format!("log.example.com - 1\n1\n{}\n", b64().encode(root));
        let note_sig = self.rekor.sign(note.as_bytes());
        let checkpoint = format!(
            "{note}\n\u{2014} log.example.com {}\n",
            b64().encode([&log_id[..4], &note_sig[..]].concat())
        );
        json!({
            "mediaType": "application/vnd.dev.sigstore.bundle.v0.3+json",
            "verificationMaterial": {
                "certificate": {"rawBytes": b64().encode(cert)},
                "tlogEntries": [{
                    "logIndex": "0",
                    "logId": {"keyId": b64().encode(log_id)},
                    "kindVersion": {"kind": "dsse", "version": "0.0.1"},
                    "integratedTime": integrated_time.to_string(),
                    "inclusionPromise": {"signedEntryTimestamp": b64().encode(set)},
                    "inclusionProof": {
                        "logIndex": "0",
                        "rootHash": b64().encode(root),
                        "treeSize": "1",
                        "hashes": [],
                        "checkpoint": {"envelope": checkpoint}
                    },
                    "canonicalizedBody": b64().encode(&body)
                }],
                "timestampVerificationData": {}
            },
            "dsseEnvelope": envelope
        })
        .to_string()
        .into_bytes()
    }

    fn verifier(&self, identity: &str, issuer: &str) -> SigstoreVerifier {
        let trust =
            SigstoreTrust::from_trusted_root_json("test root", &self.trusted_root()).unwrap();
        SigstoreVerifier::new(
            trust,
            SigstorePolicy {
                identity: Matcher::exact(identity),
                issuer: Matcher::exact(issuer),
            },
        )
        .unwrap()
    }
}

/// A one-file model and its signed statement.
fn model(dir: &Path) -> Vec<u8> {
    let content = b"weights";
    std::fs::write(dir.join("w.bin"), content).unwrap();
    let resources = vec![Resource {
        name: ResourceName::parse_file("w.bin").unwrap(),
        digest: sha256(content).to_vec(),
    }];
    let serialization = Serialization {
        method: Method::Files,
        hash: HashAlgorithm::Sha256,
        allow_symlinks: false,
        ignore_paths: Vec::new(),
    };
    model_signing::statement::build("model", &serialization, &resources)
}

fn verify(dir: &Path, sig: &[u8], v: &SigstoreVerifier) -> Result<VerifiedSigner> {
    let opts = VerifyOptions {
        extra_ignore_paths: vec![ModelPath::parse("model.sig").unwrap()],
        ignore_git_paths: true,
        ..Default::default()
    };
    verify_model(dir, sig, v, &opts).map(|r| r.signer)
}

fn check_of(r: Result<VerifiedSigner>) -> (Check, String) {
    match r {
        Err(Error::Sigstore(e)) => {
            let msg = e.to_string();
            eprintln!("{msg}");
            (e.check().unwrap_or_else(|| panic!("{msg}")), msg)
        }
        other => panic!("expected a failed check, got {other:?}"),
    }
}

/// Signs `dir`'s model at `t` (certificate from `t - 60`), logged at `t`.
fn signed(inst: &Instance, dir: &Path, leaf: Leaf, t: u64) -> Vec<u8> {
    let key = Key::new();
    let cert = inst.leaf(&key, &leaf);
    inst.bundle(&key, &cert, &cert, &model(dir), t)
}

#[test]
fn a_made_up_instance_verifies_end_to_end() {
    let inst = Instance::new();
    let d = tempfile::tempdir().unwrap();
    let t = now() - 3600;
    let sig = signed(&inst, d.path(), Leaf::fulcio(t - 60), t);
    let signer = verify(d.path(), &sig, &inst.verifier(EMAIL, ISSUER)).unwrap();
    assert!(matches!(signer, VerifiedSigner::Sigstore { ref identity, .. } if identity == EMAIL));
}

#[test]
fn log_entry_naming_another_certificate_fails() {
    // Two certificates for the same key, both valid and with SCTs: the envelope verifies with
    // the bundle's certificate, the log entry is authentic, but it records the other one.
    let inst = Instance::new();
    let d = tempfile::tempdir().unwrap();
    let t = now() - 3600;
    let key = Key::new();
    let cert = inst.leaf(&key, &Leaf::fulcio(t - 60));
    let mut other = Leaf::fulcio(t - 60);
    other.serial = 2;
    other.sans = vec![SanType::Rfc822Name(
        "mallory@example.com".try_into().unwrap(),
    )];
    let other = inst.leaf(&key, &other);
    let sig = inst.bundle(&key, &cert, &other, &model(d.path()), t);
    let (check, msg) = check_of(verify(d.path(), &sig, &inst.verifier(EMAIL, ISSUER)));
    assert_eq!(check, Check::LogEntryMismatch, "{msg}");

    // The same pair, recorded consistently, passes: the mismatch alone is what failed.
    let sig = inst.bundle(&key, &cert, &cert, &model(d.path()), t);
    verify(d.path(), &sig, &inst.verifier(EMAIL, ISSUER)).unwrap();
}

#[test]
fn integrated_time_in_the_future_fails() {
    let inst = Instance::new();
    let d = tempfile::tempdir().unwrap();
    let t = now() + 24 * 3600;
    let sig = signed(&inst, d.path(), Leaf::fulcio(t - 60), t);
    let (check, msg) = check_of(verify(d.path(), &sig, &inst.verifier(EMAIL, ISSUER)));
    assert_eq!(check, Check::SigningTime, "{msg}");
    assert!(msg.contains("in the future"), "{msg}");
}

#[test]
fn integrated_time_outside_the_certificate_validity_fails() {
    let inst = Instance::new();
    for (leaf_start, what) in [(now() - 7200, "expired"), (now() - 600, "not yet valid")] {
        let d = tempfile::tempdir().unwrap();
        // Logged an hour after signing-certificate start for the first, 10 min before for the
        // second.
        let t = if what == "expired" {
            leaf_start + 3600
        } else {
            leaf_start - 600
        };
        let sig = signed(&inst, d.path(), Leaf::fulcio(leaf_start), t);
        let (check, msg) = check_of(verify(d.path(), &sig, &inst.verifier(EMAIL, ISSUER)));
        assert_eq!(check, Check::SigningTime, "{what}: {msg}");
    }
}

#[test]
fn certificate_without_code_signing_or_from_another_ca_fails() {
    let inst = Instance::new();
    let d = tempfile::tempdir().unwrap();
    let t = now() - 3600;
    let mut leaf = Leaf::fulcio(t - 60);
    leaf.code_signing = false;
    let sig = signed(&inst, d.path(), leaf, t);
    let (check, msg) = check_of(verify(d.path(), &sig, &inst.verifier(EMAIL, ISSUER)));
    assert_eq!(check, Check::CertificateChain, "{msg}");

    // Everything issued and logged by another instance: its CA is not trusted here.
    let rogue = Instance::new();
    let sig = signed(&rogue, d.path(), Leaf::fulcio(t - 60), t);
    let (check, msg) = check_of(verify(d.path(), &sig, &inst.verifier(EMAIL, ISSUER)));
    // Its log key is unknown too; whichever is checked first refuses it.
    assert!(
        matches!(check, Check::CertificateChain | Check::UnknownLog),
        "{check:?}: {msg}"
    );
}

#[test]
fn username_othername_and_legacy_issuer_are_matched_end_to_end() {
    let inst = Instance::new();
    let d = tempfile::tempdir().unwrap();
    let t = now() - 3600;
    let mut leaf = Leaf::fulcio(t - 60);
    leaf.sans = vec![SanType::OtherName((
        SIGSTORE_USERNAME.to_vec(),
        "alice".into(),
    ))];
    leaf.issuer_ext = vec![CustomExtension::from_oid_content(
        &SIGSTORE_ISSUER_V1,
        b"https://legacy.example.com".to_vec(),
    )];
    let sig = signed(&inst, d.path(), leaf, t);
    verify(
        d.path(),
        &sig,
        &inst.verifier("alice", "https://legacy.example.com"),
    )
    .unwrap();
    let r = verify(d.path(), &sig, &inst.verifier("alice", ISSUER));
    assert!(
        matches!(r, Err(Error::Sigstore(ref e)) if e.kind() == "issuer_mismatch"),
        "{r:?}"
    );
    let r = verify(
        d.path(),
        &sig,
        &inst.verifier("alic", "https://legacy.example.com"),
    );
    assert!(
        matches!(r, Err(Error::Sigstore(ref e)) if e.kind() == "identity_mismatch"),
        "{r:?}"
    );
}

#[test]
fn certificate_without_an_sct_fails() {
    let inst = Instance::new();
    let d = tempfile::tempdir().unwrap();
    let t = now() - 3600;
    let mut leaf = Leaf::fulcio(t - 60);
    leaf.sct = false;
    let sig = signed(&inst, d.path(), leaf, t);
    let (check, msg) = check_of(verify(d.path(), &sig, &inst.verifier(EMAIL, ISSUER)));
    assert_eq!(check, Check::Sct, "{msg}");
}
