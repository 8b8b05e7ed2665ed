//! DER X.509 certificates and chains, as the certificate method reads the bundle's
//! `x509CertificateChain` and the Sigstore method its leaf: parsing, every accessor, the
//! Fulcio identity, and chain validation (leaf first) against the peer's CAs and against the
//! input's own last certificate as anchor, so that the path search runs on fuzzed issuers.
#![no_main]

use std::sync::LazyLock;

use libfuzzer_sys::fuzz_target;
use model_signing::sigstore::cert_identity;
use model_signing::x509::{Certificate, verify_chain};
use model_validation_operator_fuzz::{fixture, now, split_der};

static ANCHORS: LazyLock<Vec<Certificate>> = LazyLock::new(|| {
    let mut a =
        Certificate::all_from_pem("root", &fixture("peer-samples/pki/root-ca.cert.pem")).unwrap();
    a.extend(
        Certificate::all_from_pem("int", &fixture("peer-samples/pki/int-ca.cert.pem")).unwrap(),
    );
    a
});

fuzz_target!(|data: &[u8]| {
    let anchors = &*ANCHORS;
    let mut certs = Vec::new();
    for der in split_der(data) {
        let _ = cert_identity(der);
        if let Ok(c) = Certificate::from_der("certificate", der) {
            assert_eq!(c.der(), der);
            let _ = (
                c.subject(),
                c.issuer(),
                c.validity(),
                c.public_key(),
                c.san(),
            );
            certs.push(c);
        }
    }
    if let Some((leaf, rest)) = certs.split_first() {
        let _ = verify_chain(leaf, rest, anchors, now());
        let own = certs[certs.len() - 1..].to_vec();
        if let Ok(path) = verify_chain(leaf, rest, &own, now()) {
            assert!(path.len() <= certs.len() && path[0] == leaf);
        }
    }
});
