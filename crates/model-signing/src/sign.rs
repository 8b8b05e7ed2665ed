//! Signing a model: serialize, build the statement, sign its PAE, wrap it in a bundle.

use std::collections::BTreeSet;
use std::path::Path;

use crate::bundle::{
    BUNDLE_V03_MEDIA_TYPE, Bundle, CertificateChain, Envelope, EnvelopeSignature,
    PublicKeyIdentifier, RawCertificate, VerificationMaterial, encode_base64,
};
use crate::dsse::{IN_TOTO_PAYLOAD_TYPE, pae};
use crate::error::{Error, Result};
use crate::hashing::HashAlgorithm;
use crate::keys::PrivateKey;
use crate::manifest::{Method, Serialization};
use crate::serialize::{HashOptions, serialize_model};
use crate::statement;
use crate::walk::Selection;
use crate::x509::Certificate;

/// Something that can sign a DSSE PAE and describe itself in `verificationMaterial`.
pub trait Signer {
    /// What goes into `verificationMaterial`.
    fn verification_material(&self) -> VerificationMaterial;
    /// A DER signature over `message`.
    fn sign(&self, message: &[u8]) -> Result<Vec<u8>>;
}

/// The `key` method: an EC private key; the bundle names its public key by hint.
pub struct KeySigner {
    key: PrivateKey,
}

impl KeySigner {
    /// Wraps a loaded key.
    pub fn new(key: PrivateKey) -> Self {
        KeySigner { key }
    }
}

impl Signer for KeySigner {
    fn verification_material(&self) -> VerificationMaterial {
        VerificationMaterial {
            public_key: Some(PublicKeyIdentifier {
                hint: Some(self.key.public_key().hint()),
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    fn sign(&self, message: &[u8]) -> Result<Vec<u8>> {
        Ok(self.key.sign(message)?)
    }
}

/// The `certificate` method: an EC private key, its certificate and the chain above it.
pub struct CertificateSigner {
    key: PrivateKey,
    chain: Vec<Certificate>,
}

impl CertificateSigner {
    /// Checks that `leaf` certifies `key`. `intermediates` follow the leaf in the bundle.
    pub fn new(
        key: PrivateKey,
        leaf: Certificate,
        intermediates: Vec<Certificate>,
    ) -> Result<Self> {
        if leaf.public_key()? != *key.public_key() {
            return Err(Error::CertificateKeyMismatch);
        }
        let mut chain = vec![leaf];
        chain.extend(intermediates);
        Ok(CertificateSigner { key, chain })
    }
}

impl Signer for CertificateSigner {
    fn verification_material(&self) -> VerificationMaterial {
        VerificationMaterial {
            x509_certificate_chain: Some(CertificateChain {
                certificates: self
                    .chain
                    .iter()
                    .map(|c| RawCertificate {
                        raw_bytes: encode_base64(c.der()),
                    })
                    .collect(),
            }),
            ..Default::default()
        }
    }

    fn sign(&self, message: &[u8]) -> Result<Vec<u8>> {
        Ok(self.key.sign(message)?)
    }
}

/// What was signed.
#[derive(Debug)]
pub struct SignReport {
    /// Resources in the manifest.
    pub resources: usize,
    /// Bytes hashed.
    pub bytes: u64,
    /// Root digest, hex.
    pub root_digest: String,
    /// Warnings from the walk.
    pub warnings: Vec<String>,
}

/// The subject name the peer writes: the last component of the (resolved) model path.
pub fn model_name(model: &Path) -> String {
    let resolved = std::fs::canonicalize(model).unwrap_or_else(|_| model.to_path_buf());
    resolved
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "model".into())
}

/// Signs the model at `model`. `selection.ignore_paths` should already contain the signature
/// file when it lies inside the model.
pub fn sign_model(
    model: &Path,
    selection: &Selection,
    method: Method,
    hash: HashAlgorithm,
    signer: &dyn Signer,
    opts: &HashOptions<'_>,
) -> Result<(Bundle, SignReport)> {
    if let Method::Shards { shard_size: 0 } = method {
        return Err(Error::Usage(
            "the shard size must be at least 1 byte".into(),
        ));
    }
    let serialized = serialize_model(model, selection, method, hash, &BTreeSet::new(), opts)?;
    if serialized.resources.is_empty() {
        return Err(Error::Usage(format!(
            "the model at {} has no files to sign (empty, or everything is ignored)",
            model.display()
        )));
    }
    let serialization = Serialization {
        method,
        hash,
        allow_symlinks: selection.allow_symlinks,
        ignore_paths: selection.recorded_ignore_paths(),
    };
    let payload = statement::build(&model_name(model), &serialization, &serialized.resources);
    let bundle = sign_statement(&payload, signer)?;
    let report = SignReport {
        resources: serialized.resources.len(),
        bytes: serialized.bytes,
        root_digest: hex::encode(crate::manifest::root_digest(&serialized.resources)),
        warnings: serialized.warnings,
    };
    Ok((bundle, report))
}

/// Signs an in-toto statement (the DSSE payload) into a bundle, as the peer writes it: one
/// signature with an empty `keyid`, no transparency log entries.
pub fn sign_statement(payload: &[u8], signer: &dyn Signer) -> Result<Bundle> {
    let sig = signer.sign(&pae(IN_TOTO_PAYLOAD_TYPE, payload))?;
    let mut material = signer.verification_material();
    material.tlog_entries = Vec::new();
    Ok(Bundle {
        media_type: BUNDLE_V03_MEDIA_TYPE.into(),
        verification_material: material,
        dsse_envelope: Some(Envelope {
            payload: encode_base64(payload),
            payload_type: IN_TOTO_PAYLOAD_TYPE.into(),
            signatures: vec![EnvelopeSignature {
                sig: encode_base64(&sig),
                keyid: Some(String::new()),
            }],
        }),
        message_signature: None,
    })
}
