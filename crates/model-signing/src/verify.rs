//! Verifying a model: the signature first (fail fast), then the manifest it carries, then the
//! model on disk rebuilt with the serialization the signature records.

use std::collections::BTreeSet;
use std::path::Path;
use std::time::SystemTime;

pub use crate::bundle::SignatureMethod;
use crate::bundle::{BUNDLE_V03_MEDIA_TYPE, Bundle};
use crate::dsse::{IN_TOTO_PAYLOAD_TYPE, pae, pae_compat_bounded};
use crate::error::{Error, Result};
use crate::keys::PublicKey;
use crate::limits::MAX_STATEMENT_BYTES;
use crate::manifest::{Method, Resource, compare};
use crate::name::ModelPath;
use crate::serialize::{HashOptions, hash_files};
use crate::statement::{self, SignedManifest};
use crate::walk::{self, Selection};
use crate::x509::{Certificate, verify_chain};

/// Who signed, as established by a verifier.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum VerifiedSigner {
    /// A public key, by its hint.
    Key {
        /// `hex(sha256(PEM SPKI))`.
        hint: String,
    },
    /// A certificate chain.
    Certificate {
        /// Leaf subject.
        subject: String,
        /// Leaf subject alternative names.
        san: Vec<String>,
        /// The trusted CA the chain ends at.
        anchor: String,
    },
    /// A Sigstore identity.
    Sigstore {
        /// The matched identity (SAN).
        identity: String,
        /// The OIDC issuer.
        issuer: String,
        /// The trust root that verified it (embedded root name or file).
        root: String,
        /// The Rekor log key(s) and entries that verified it.
        log: String,
    },
}

impl std::fmt::Display for VerifiedSigner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            VerifiedSigner::Key { hint } => write!(f, "public key {hint}"),
            VerifiedSigner::Certificate {
                subject, anchor, ..
            } => write!(f, "certificate '{subject}' issued under '{anchor}'"),
            VerifiedSigner::Sigstore {
                identity,
                issuer,
                root,
                log,
            } => write!(
                f,
                "{identity} (issuer {issuer}; logged in {log}; trust root: {root})"
            ),
        }
    }
}

/// Checks the cryptographic binding of a bundle: the envelope's signature and the signer.
pub trait EnvelopeVerifier {
    /// Verifies the DSSE signature over `payload` (the decoded envelope payload) and the
    /// verification material; returns who signed and any warnings. `raw` is the bundle file as
    /// read, for verifiers that must parse it themselves (Sigstore).
    fn verify_envelope(
        &self,
        bundle: &Bundle,
        raw: &[u8],
        payload: &[u8],
    ) -> Result<(VerifiedSigner, Vec<String>)>;
}

/// Signature check shared by the key and certificate methods: PAE, then the v0.2.0 encoding.
fn check_dsse(key: &PublicKey, bundle: &Bundle, payload: &[u8], compat_sha256: bool) -> Result<()> {
    let envelope = bundle.envelope()?;
    let sig = envelope.single_signature()?;
    if key.verify(&pae(IN_TOTO_PAYLOAD_TYPE, payload), &sig) {
        return Ok(());
    }
    if let Some(compat) = pae_compat_bounded(IN_TOTO_PAYLOAD_TYPE, payload, MAX_STATEMENT_BYTES)
        && (key.verify(&compat, &sig) || (compat_sha256 && key.verify_sha256(&compat, &sig)))
    {
        return Ok(());
    }
    Err(Error::BadSignature("the envelope's signature does not verify with the signer's key: the signature file was altered, or signed by another key".into()))
}

/// The error for a bundle verified with the wrong method: says which method it was made with.
pub(crate) fn wrong_method(
    vm: &crate::bundle::VerificationMaterial,
    expected: SignatureMethod,
) -> Error {
    Error::WrongMethod {
        expected,
        found: SignatureMethod::of(vm),
    }
}

fn require_v03(bundle: &Bundle) -> Result<()> {
    if bundle.media_type != BUNDLE_V03_MEDIA_TYPE {
        return Err(Error::Bundle(crate::bundle::BundleError::Invalid(format!(
            "media type {:?}, expected {BUNDLE_V03_MEDIA_TYPE:?}",
            bundle.media_type
        ))));
    }
    Ok(())
}

/// The `key` method.
pub struct KeyVerifier {
    key: PublicKey,
    key_name: String,
}

impl KeyVerifier {
    /// Verifies with `key`; `key_name` (e.g. its path) appears in errors.
    pub fn new(key: PublicKey, key_name: impl Into<String>) -> Self {
        KeyVerifier {
            key,
            key_name: key_name.into(),
        }
    }
}

impl EnvelopeVerifier for KeyVerifier {
    fn verify_envelope(
        &self,
        bundle: &Bundle,
        _raw: &[u8],
        payload: &[u8],
    ) -> Result<(VerifiedSigner, Vec<String>)> {
        require_v03(bundle)?;
        let vm = &bundle.verification_material;
        let Some(pk) = &vm.public_key else {
            return Err(wrong_method(vm, SignatureMethod::Key));
        };
        let ours = self.key.hint();
        let mut warnings = Vec::new();
        match pk.hint.as_deref() {
            Some(hint) if !hint.is_empty() => {
                if !hint.eq_ignore_ascii_case(&ours) {
                    return Err(Error::KeyMismatch(self.key_name.clone()));
                }
            }
            _ => warnings.push("this signature uses the pre-1.1 key format (no key hint); re-sign the model to upgrade it".to_string()),
        }
        check_dsse(&self.key, bundle, payload, false)?;
        Ok((VerifiedSigner::Key { hint: ours }, warnings))
    }
}

/// The `certificate` method.
pub struct CertificateVerifier {
    anchors: Vec<Certificate>,
    now: SystemTime,
}

impl CertificateVerifier {
    /// Trusts exactly `anchors`, checking validity at `now`. An empty list trusts nothing.
    pub fn new(anchors: Vec<Certificate>, now: SystemTime) -> Result<Self> {
        if anchors.is_empty() {
            return Err(Error::NoTrustedCa);
        }
        Ok(CertificateVerifier { anchors, now })
    }
}

impl EnvelopeVerifier for CertificateVerifier {
    fn verify_envelope(
        &self,
        bundle: &Bundle,
        _raw: &[u8],
        payload: &[u8],
    ) -> Result<(VerifiedSigner, Vec<String>)> {
        require_v03(bundle)?;
        let vm = &bundle.verification_material;
        let Some(chain) = &vm.x509_certificate_chain else {
            return Err(wrong_method(vm, SignatureMethod::Certificate));
        };
        let mut certs = Vec::with_capacity(chain.certificates.len());
        for (i, raw) in chain.certificates.iter().enumerate() {
            let what = format!("certificate {i} of the signature's chain");
            let der = crate::bundle::decode_base64(&what, &raw.raw_bytes)?;
            certs.push(Certificate::from_der(&what, &der)?);
        }
        let Some((leaf, intermediates)) = certs.split_first() else {
            return Err(Error::Bundle(crate::bundle::BundleError::Invalid(
                "the certificate chain is empty".into(),
            )));
        };
        let path = verify_chain(leaf, intermediates, &self.anchors, self.now)?;
        let key = leaf.public_key()?;
        check_dsse(&key, bundle, payload, true)?;
        let anchor = path.last().map(|c| c.subject()).unwrap_or_default();
        Ok((
            VerifiedSigner::Certificate {
                subject: leaf.subject(),
                san: leaf.san(),
                anchor,
            },
            Vec::new(),
        ))
    }
}

/// How to look at the model when verifying.
#[derive(Default)]
pub struct VerifyOptions<'a> {
    /// Ignore paths added to those the signature records (model-relative). They only excuse
    /// files the signature does not cover; a signed file is always checked.
    pub extra_ignore_paths: Vec<ModelPath>,
    /// Ignore the git paths at the model root.
    pub ignore_git_paths: bool,
    /// Follow symlinks to files.
    pub allow_symlinks: bool,
    /// Hash only the files the signature names; others are tolerated.
    pub ignore_unsigned_files: bool,
    /// Hashing threads and progress.
    pub hashing: HashOptions<'a>,
}

/// A successful verification.
#[derive(Debug)]
pub struct VerifyReport {
    /// Who signed.
    pub signer: VerifiedSigner,
    /// The signed manifest.
    pub manifest: SignedManifest,
    /// Bytes hashed.
    pub bytes: u64,
    /// Things worth telling (old formats, symlinks).
    pub warnings: Vec<String>,
}

/// A signature whose envelope and signer verified, before the model is looked at: who signed,
/// the manifest it vouches for, and what is worth telling.
#[derive(Debug)]
pub struct OpenedSignature {
    /// Who signed.
    pub signer: VerifiedSigner,
    /// The signed manifest.
    pub manifest: SignedManifest,
    /// Things worth telling (old formats).
    pub warnings: Vec<String>,
}

/// Checks the bundle's envelope and signer with `verifier` and parses the statement it signs,
/// without reading the model (the cheap half of [`verify_model`]).
pub fn open_signature(
    bundle_bytes: &[u8],
    verifier: &dyn EnvelopeVerifier,
) -> Result<OpenedSignature> {
    let mut bundle = Bundle::from_slice(bundle_bytes)?;
    let envelope = bundle.envelope()?;
    if envelope.payload_type != IN_TOTO_PAYLOAD_TYPE {
        return Err(Error::Bundle(crate::bundle::BundleError::Invalid(format!(
            "payloadType {:?}, expected {IN_TOTO_PAYLOAD_TYPE:?}",
            envelope.payload_type
        ))));
    }
    let payload = envelope.payload_bytes()?;
    // Verifiers get the decoded payload; the base64 text (up to the whole file) is freed now,
    // so that it is not held while the signature is checked and the statement parsed.
    if let Some(envelope) = bundle.dsse_envelope.as_mut() {
        envelope.payload = String::new();
    }
    let (signer, warnings) = verifier.verify_envelope(&bundle, bundle_bytes, &payload)?;
    drop(bundle);
    let manifest = statement::parse(&payload)?;
    Ok(OpenedSignature {
        signer,
        manifest,
        warnings,
    })
}

/// The model's files, hashed as a manifest says: what [`check_files`] compares.
#[derive(Debug)]
pub(crate) struct LocalFiles {
    pub(crate) resources: Vec<Resource>,
    pub(crate) bytes: u64,
    pub(crate) warnings: Vec<String>,
}

/// Compares the model's files with the manifest the signature vouches for.
pub(crate) fn check_files(opened: OpenedSignature, local: &LocalFiles) -> Result<VerifyReport> {
    let manifest = opened.manifest;
    let mismatch = compare(
        &manifest.resources,
        &local.resources,
        &manifest.serialization.resource_algorithm(),
    );
    if !mismatch.is_empty() {
        return Err(Error::Mismatch(mismatch));
    }
    let mut warnings = opened.warnings;
    warnings.extend(local.warnings.iter().cloned());
    Ok(VerifyReport {
        signer: opened.signer,
        manifest,
        bytes: local.bytes,
        warnings,
    })
}

/// Verifies the model at `model` against the bundle bytes.
pub fn verify_model(
    model: &Path,
    bundle_bytes: &[u8],
    verifier: &dyn EnvelopeVerifier,
    opts: &VerifyOptions<'_>,
) -> Result<VerifyReport> {
    let opened = open_signature(bundle_bytes, verifier)?;
    let local = local_files(model, &opened.manifest, opts)?;
    check_files(opened, &local)
}

/// Hashes the model the way the signature says it was hashed.
pub(crate) fn local_files(
    model: &Path,
    manifest: &SignedManifest,
    opts: &VerifyOptions<'_>,
) -> Result<LocalFiles> {
    let recorded = manifest
        .serialization
        .ignore_paths
        .iter()
        .filter_map(|p| ModelPath::parse(p).ok());
    let selection = Selection {
        ignore_paths: recorded
            .chain(opts.extra_ignore_paths.iter().cloned())
            .collect(),
        ignore_git_paths: opts.ignore_git_paths,
        allow_symlinks: opts.allow_symlinks,
    };
    let signed_files: BTreeSet<ModelPath> = manifest
        .resources
        .iter()
        .map(|r| r.name.path.clone())
        .collect();
    let (files, warnings) = if opts.ignore_unsigned_files {
        let (files, _missing) = walk::resolve_named(model, &signed_files, &selection)
            .map_err(|e| symlink_hint(e, manifest))?;
        (files, Vec::new())
    } else {
        let mut keep = BTreeSet::new();
        for path in &signed_files {
            let mut prefix = ModelPath::root();
            for c in path.components() {
                prefix = prefix.join(c);
                keep.insert(prefix.clone());
            }
        }
        let walked = walk::walk(model, &selection, &keep).map_err(|e| symlink_hint(e, manifest))?;
        (walked.files, walked.warnings)
    };
    let bytes = files.iter().map(|f| f.size).sum();
    let method: Method = manifest.serialization.method;
    let resources = hash_files(&files, method, manifest.serialization.hash, &opts.hashing)?;
    Ok(LocalFiles {
        resources,
        bytes,
        warnings,
    })
}

fn symlink_hint(e: walk::WalkError, manifest: &SignedManifest) -> Error {
    match e {
        walk::WalkError::Symlink(path) if manifest.serialization.allow_symlinks => {
            Error::SymlinkNotAllowed { path }
        }
        other => Error::Hash(other.into()),
    }
}
