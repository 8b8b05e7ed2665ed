//! A code-signing PKI generated for each test run.
//!
//! The agent verifies certificate chains at the current time, so a test that used fixed
//! certificates would start failing once they expire. These never do: a root CA, an
//! intermediate CA (path length 0) and a leaf with key usage digitalSignature and extended key
//! usage codeSigning, as the peer's own PKI samples have, with rcgen's open-ended validity.

use model_signing::keys::PrivateKey;
use model_signing::sign::CertificateSigner;
use model_signing::x509::Certificate;
use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose,
};

/// A fresh PKI: the root CA to trust, and a signer with the leaf and its intermediate.
pub struct CodeSigningPki {
    /// The root CA certificate, PEM.
    pub root_pem: String,
    /// Signs with the leaf key; the bundle carries the leaf and the intermediate.
    pub signer: CertificateSigner,
}

impl CodeSigningPki {
    /// Generates the three certificates (ECDSA P-256).
    pub fn generate() -> CodeSigningPki {
        let (root_pem, root_key) = ca("Test Root CA", BasicConstraints::Unconstrained, None);
        let (int_pem, int_key) = ca(
            "Test Intermediate CA",
            BasicConstraints::Constrained(0),
            Some((&root_pem, root_key)),
        );
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params
            .distinguished_name
            .push(DnType::CommonName, "model-signer@example.com");
        params.is_ca = IsCa::ExplicitNoCa;
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::CodeSigning];
        params.use_authority_key_identifier_extension = true;
        let leaf_key = KeyPair::generate().unwrap();
        let issuer = Issuer::from_ca_cert_pem(&int_pem, int_key).unwrap();
        let leaf_pem = params.signed_by(&leaf_key, &issuer).unwrap().pem();

        let key = PrivateKey::from_pem("leaf", leaf_key.serialize_pem().as_bytes(), None).unwrap();
        let leaf = Certificate::all_from_pem("leaf", leaf_pem.as_bytes())
            .unwrap()
            .remove(0);
        let chain = Certificate::all_from_pem("intermediate", int_pem.as_bytes()).unwrap();
        CodeSigningPki {
            root_pem,
            signer: CertificateSigner::new(key, leaf, chain).unwrap(),
        }
    }
}

/// A CA certificate (PEM) and its key: self-signed, or issued by `parent` (PEM, key).
fn ca(
    name: &str,
    constraints: BasicConstraints,
    parent: Option<(&str, KeyPair)>,
) -> (String, KeyPair) {
    let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
    params.distinguished_name.push(DnType::CommonName, name);
    params.is_ca = IsCa::Ca(constraints);
    params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    params.use_authority_key_identifier_extension = parent.is_some();
    let key = KeyPair::generate().unwrap();
    let cert = match parent {
        None => params.self_signed(&key).unwrap(),
        Some((parent_pem, parent_key)) => {
            let issuer = Issuer::from_ca_cert_pem(parent_pem, parent_key).unwrap();
            params.signed_by(&key, &issuer).unwrap()
        }
    };
    (cert.pem(), key)
}
