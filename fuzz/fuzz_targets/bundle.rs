//! Signature files (Sigstore bundle JSON) through `verify_model`, as the verifier reads them,
//! with each of the three verifiers (key, certificate chain, Sigstore keyless), against an
//! empty model directory. A bundle that parses must serialize and parse back to the same JSON.
#![no_main]

use std::sync::LazyLock;

use libfuzzer_sys::fuzz_target;
use model_signing::bundle::Bundle;
use model_signing::keys::PublicKey;
use model_signing::sigstore::{Matcher, SigstorePolicy, SigstoreTrust, SigstoreVerifier};
use model_signing::verify::{
    CertificateVerifier, EnvelopeVerifier, KeyVerifier, VerifyOptions, verify_model,
};
use model_signing::x509::Certificate;
use model_validation_operator_fuzz::{fixture, now};

struct Setup {
    model: tempfile::TempDir,
    verifiers: Vec<Box<dyn EnvelopeVerifier + Send + Sync>>,
}

static SETUP: LazyLock<Setup> = LazyLock::new(|| {
    let key = PublicKey::from_pem("key", &fixture("peer-samples/ec-p256.pub.pem")).unwrap();
    let mut anchors =
        Certificate::all_from_pem("ca", &fixture("peer-samples/pki/root-ca.cert.pem")).unwrap();
    anchors.extend(
        Certificate::all_from_pem(
            "ca",
            &fixture("model-transparency/scripts/tests/keys/certificate/ca-cert.pem"),
        )
        .unwrap(),
    );
    let sigstore = SigstoreVerifier::new(
        SigstoreTrust::production().unwrap(),
        SigstorePolicy {
            identity: Matcher::regex("identity", ".*").unwrap(),
            issuer: Matcher::regex("issuer", ".*").unwrap(),
        },
    )
    .unwrap();
    Setup {
        model: tempfile::tempdir().unwrap(),
        verifiers: vec![
            Box::new(KeyVerifier::new(key, "key")),
            Box::new(CertificateVerifier::new(anchors, now()).unwrap()),
            Box::new(sigstore),
        ],
    }
});

fuzz_target!(|data: &[u8]| {
    let setup = &*SETUP;
    if let Ok(bundle) = Bundle::from_slice(data) {
        let json = bundle.to_json();
        let again = Bundle::from_slice(json.as_bytes()).expect("a bundle we wrote parses");
        assert_eq!(again.to_json(), json, "bundle JSON round trip");
    }
    for v in &setup.verifiers {
        let _ = verify_model(
            setup.model.path(),
            data,
            v.as_ref(),
            &VerifyOptions::default(),
        );
    }
});
