//! `oci push|sign|verify|attach`: models in OCI registries, by reference.
//!
//! The engine does the work ([`model_signing::oci`]: the pure mapping, signing and checking;
//! [`model_signing::oci::registry`]: the registry calls); this module reads the flags, runs the
//! async registry calls on a runtime of its own, and words the results.

use std::path::{Path, PathBuf};
use std::time::{Instant, SystemTime};

use anyhow::{Context, Result};
use model_signing::bundle::{Bundle, read_signature_file};
use model_signing::hashing::HashAlgorithm;
use model_signing::keys::PublicKey;
use model_signing::manifest::{Method, compare};
use model_signing::name::ModelPath;
use model_signing::oci::check::{
    ManifestVerifyReport, NotVerified, model_name, open_files_signature, sign_manifest,
    verify_first,
};
use model_signing::oci::credentials::DockerConfig;
use model_signing::oci::manifest;
use model_signing::oci::modelcar::{ModelcarError, is_modelcar};
use model_signing::oci::modelpack::{self, ArtifactFiles, PackFile};
use model_signing::oci::registry::{FetchedBundle, RegistryClient, RegistryOptions, Resolved};
use model_signing::serialize::{HashOptions, hash_files};
use model_signing::sign::{KeySigner, Signer};
use model_signing::verify::{CertificateVerifier, EnvelopeVerifier, KeyVerifier};
use model_signing::walk;
use serde_json::json;

use crate::args::{
    OciAttachArgs, OciPushArgs, OciSignCommon, OciSignMethod, OciVerifyMethod, RegistryArgs,
};
use crate::cmd_sign::{certificate_signer, load_private_key};
use crate::cmd_verify::sigstore_verifier_from;
use crate::fix::{Setting, Unreadable};
use crate::material::EnvMaterial;
use crate::progress::Bar;
use crate::report::Outcome;
use crate::selection::selection;

/// No signature is attached to the model (or none that is a model signature of it).
#[derive(Debug)]
pub struct Unsigned {
    /// The reference pinned to the manifest that was looked at.
    pub pinned: String,
    /// The reference as given.
    pub given: String,
}

impl std::fmt::Display for Unsigned {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "the model is unsigned: no model signature is attached to {}",
            self.pinned
        )?;
        if !self.given.contains('@') {
            write!(
                f,
                " (what {} points to now; if it was signed before, the tag was moved since)",
                self.given
            )?;
        }
        Ok(())
    }
}

impl std::error::Error for Unsigned {}

/// The artifact's files differ from a signature's: the engine's
/// [`model_signing::manifest::Mismatch`], whose fix here is not a verification flag (a registry
/// verification compares every layer).
#[derive(Debug)]
pub struct ArtifactMismatch(pub model_signing::manifest::Mismatch);

impl std::fmt::Display for ArtifactMismatch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

impl std::error::Error for ArtifactMismatch {}

/// Several signatures are attached and each was refused.
#[derive(Debug)]
pub struct NoneVerified {
    /// Each signature's referrer and reason.
    pub message: String,
    /// Their common error kind, or `refused` when they differ.
    pub kind: &'static str,
}

impl std::fmt::Display for NoneVerified {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for NoneVerified {}

/// The engine's error, with a mismatch worded for artifacts.
fn artifact_error(e: model_signing::Error) -> anyhow::Error {
    match e {
        model_signing::Error::Mismatch(m) => ArtifactMismatch(m).into(),
        e => e.into(),
    }
}

/// A current-thread runtime for the registry calls: the CLI makes one call at a time.
fn block_on<T>(fut: impl std::future::Future<Output = T>) -> Result<T> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime for the registry calls")?;
    Ok(rt.block_on(fut))
}

/// The registry client the flags describe.
fn client(a: &RegistryArgs) -> Result<RegistryClient> {
    let credentials = match &a.registry_config {
        Some(path) => {
            let bytes = std::fs::read(path).map_err(|source| Unreadable {
                setting: Setting::RegistryConfig,
                what: "registry credentials (docker config.json)",
                path: path.clone(),
                source,
            })?;
            DockerConfig::parse(&path.display().to_string(), &bytes)?
        }
        None => match DockerConfig::default_path() {
            Some(path) if path.is_file() => {
                let bytes = std::fs::read(&path)
                    .with_context(|| format!("cannot read {}", path.display()))?;
                DockerConfig::parse(&path.display().to_string(), &bytes)
                    .context("pass --registry-config to use another file")?
            }
            _ => DockerConfig::default(),
        },
    };
    let mut extra_ca_pem = Vec::new();
    for p in &a.registry_ca {
        extra_ca_pem.push(std::fs::read(p).map_err(|source| Unreadable {
            setting: Setting::RegistryCa,
            what: "registry CA certificate",
            path: p.clone(),
            source,
        })?);
    }
    Ok(RegistryClient::new(RegistryOptions {
        credentials,
        extra_ca_pem,
        plain_http: a.plain_http,
        timeout: a.registry_timeout,
    })?)
}

/// `oci push MODEL_PATH REFERENCE`.
pub fn push(a: &OciPushArgs, jobs: usize, show_progress: bool) -> Result<Outcome> {
    let started = Instant::now();
    let root = &a.model.model_path;
    if !root.is_dir() {
        return Err(Unreadable {
            setting: Setting::ModelPath,
            what: "model directory",
            path: root.clone(),
            source: std::io::Error::new(
                std::io::ErrorKind::InvalidInput,
                "not a directory: `oci push` packs a directory, one layer per file",
            ),
        }
        .into());
    }
    // The files signing the directory would cover: same flags, same walk.
    let sel = selection(&a.model, &[])?;
    let walked = walk::walk(root, &sel, &Default::default())
        .map_err(|e| model_signing::Error::Hash(model_signing::serialize::HashError::from(e)))?;
    let bar = Bar::new(show_progress);
    let hashed = hash_files(
        &walked.files,
        Method::Files,
        HashAlgorithm::Sha256,
        &HashOptions {
            jobs,
            progress: Some(&bar),
        },
    );
    bar.finish();
    let resources = hashed.map_err(model_signing::Error::from)?;
    let found: std::collections::BTreeMap<&ModelPath, &walk::ModelFile> =
        walked.files.iter().map(|f| (&f.path, f)).collect();
    let mut files = Vec::with_capacity(resources.len());
    for r in &resources {
        let f = found[&r.name.path];
        files.push(PackFile {
            path: r.name.path.clone(),
            sha256: r.digest.as_slice().try_into().context("a SHA-256 digest")?,
            size: f.size,
        });
    }
    let name = model_signing::sign::model_name(root);
    let packed = modelpack::pack(&name, &files).map_err(model_signing::Error::from)?;
    let client = client(&a.registry)?;
    let source = |p: &ModelPath| -> PathBuf {
        found
            .get(p)
            .map(|f| f.fs_path.clone())
            .unwrap_or_else(|| root.join(p.to_path_buf()))
    };
    let pushed = block_on(client.push_model(&a.reference, &packed, &source))??;
    let pinned = pushed.pinned_string();
    Ok(Outcome {
        text: vec![pinned.clone()],
        json: json!({
            "reference": a.reference,
            "pinned": pinned,
            "digest": pushed.digest,
            "files": files.len(),
            "bytes": files.iter().map(|f| f.size).sum::<u64>(),
            "elapsed_ms": started.elapsed().as_millis() as u64,
        }),
        warnings: walked.warnings,
    })
}

/// `oci sign <method> REFERENCE`.
pub fn sign(method: &OciSignMethod) -> Result<Outcome> {
    match method {
        OciSignMethod::Key(a) => {
            let signer = KeySigner::new(load_private_key(&a.key)?);
            run_sign(&a.common, &signer)
        }
        OciSignMethod::Certificate(a) => run_sign(&a.common, &certificate_signer(&a.signer)?),
    }
}

fn run_sign(common: &OciSignCommon, signer: &dyn Signer) -> Result<Outcome> {
    let started = Instant::now();
    let client = client(&common.registry)?;
    let subject = block_on(client.resolve(&common.reference))??;
    let parsed = manifest::parse(&subject.manifest).map_err(model_signing::Error::from)?;
    let name = model_name(&parsed, subject.pinned.repository());
    let (bundle, report) = sign_manifest(&subject.manifest, &name, signer)?;
    let json_bundle = bundle.to_json();
    if let Some(path) = &common.signature {
        std::fs::write(path, &json_bundle)
            .with_context(|| format!("cannot write signature {}", path.display()))?;
    }
    let attached = block_on(client.attach_bundle(&subject, json_bundle.as_bytes()))??;
    Ok(Outcome {
        text: vec!["Signing succeeded".into(), subject.pinned_string()],
        json: json!({
            "reference": common.reference,
            "pinned": subject.pinned_string(),
            "digest": subject.digest,
            "referrer": attached.referrer,
            "referrers_tag_schema": attached.tag_schema,
            "signature": common.signature,
            "resources": report.resources,
            "bytes": report.bytes,
            "root_digest": format!("sha256:{}", report.root_digest),
            "elapsed_ms": started.elapsed().as_millis() as u64,
        }),
        warnings: report.warnings,
    })
}

fn read(path: &Path, setting: Setting, what: &'static str) -> Result<Vec<u8>> {
    Ok(std::fs::read(path).map_err(|source| Unreadable {
        setting,
        what,
        path: path.to_path_buf(),
        source,
    })?)
}

/// The verifier and a description of the trust it applies.
fn verifier(method: &OciVerifyMethod) -> Result<(Box<dyn EnvelopeVerifier>, Vec<String>)> {
    Ok(match method {
        OciVerifyMethod::Key(a) => {
            let name = a.public_key.display().to_string();
            let pem = read(&a.public_key, Setting::PublicKey, "public key")?;
            let key = PublicKey::from_pem(&name, &pem).map_err(model_signing::Error::from)?;
            (Box::new(KeyVerifier::new(key, name.clone())), vec![name])
        }
        OciVerifyMethod::Certificate(a) => {
            let mut trust = Vec::new();
            let mut anchors = Vec::new();
            for p in &a.certificate_chain {
                let pem = read(p, Setting::CertificateAuthority, "CA certificate file")?;
                anchors.extend(
                    model_signing::x509::Certificate::all_from_pem(&p.display().to_string(), &pem)
                        .map_err(model_signing::Error::from)?,
                );
                trust.push(p.display().to_string());
            }
            let at = a.at_time.map_or_else(SystemTime::now, |s| {
                SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(s)
            });
            (Box::new(CertificateVerifier::new(anchors, at)?), trust)
        }
        OciVerifyMethod::Sigstore(a) => {
            let v = sigstore_verifier_from(&a.sigstore, &EnvMaterial::default())?;
            let trust = vec![v.trust().name().to_string()];
            (Box::new(v), trust)
        }
    })
}

/// Why no attached signature verified: none attached is [`Unsigned`]; one refused gives its own
/// error; several refused are listed, each with its referrer and reason.
fn refusal(subject: &Resolved, refused: Vec<(String, model_signing::Error)>) -> anyhow::Error {
    let mut refused = refused;
    match refused.len() {
        0 => {
            return Unsigned {
                pinned: subject.pinned_string(),
                given: subject.given.clone(),
            }
            .into();
        }
        1 => {
            let (referrer, e) = refused.remove(0);
            return artifact_error(e).context(format!(
                "the signature attached to {} ({referrer}) is refused",
                subject.pinned_string(),
            ));
        }
        _ => {}
    }
    let listed: Vec<String> = refused.iter().map(|(r, e)| format!("{r}: {e}")).collect();
    let kind = refused[0].1.kind();
    NoneVerified {
        message: format!(
            "none of the {} signatures attached to {} verifies: {}",
            refused.len(),
            subject.pinned_string(),
            listed.join("; ")
        ),
        kind: if refused.iter().all(|(_, e)| e.kind() == kind) {
            kind
        } else {
            "refused"
        },
    }
    .into()
}

/// The first fetched bundle that verifies against the manifest, and its referrer.
fn verify_bundles(
    subject: &Resolved,
    bundles: &[FetchedBundle],
    verifier: &dyn EnvelopeVerifier,
) -> Result<(ManifestVerifyReport, String)> {
    let found = verify_first(
        &subject.manifest,
        bundles.iter().map(|b| b.bytes.as_slice()),
        verifier,
    );
    match found {
        Ok((i, report)) => Ok((report, bundles[i].referrer.clone())),
        Err(NotVerified::Unsigned) => Err(refusal(subject, Vec::new())),
        Err(NotVerified::Refused(errors)) => Err(refusal(
            subject,
            bundles
                .iter()
                .map(|b| b.referrer.clone())
                .zip(errors)
                .collect(),
        )),
    }
}

/// Refuses a modelcar image read without `--modelcar-root`, saying so (rather than that it is
/// not a ModelPack artifact).
fn needs_no_root(subject: &Resolved) -> Result<()> {
    match manifest::parse_image(&subject.manifest) {
        Ok(m) if is_modelcar(&m) => {
            Err(model_signing::Error::from(ModelcarError::NeedsRoot).into())
        }
        _ => Ok(()),
    }
}

/// What verified: the files, who signed, the referrer, warnings.
struct Verified {
    files: ArtifactFiles,
    signer: String,
    referrer: String,
    warnings: Vec<String>,
}

/// A modelcar image: the signatures are opened first (an unsigned image, or one whose
/// signatures are all refused, costs no layer), then the layers are streamed once and the
/// files under `root` compared with each opened signature until one matches.
fn verify_modelcar_bundles(
    client: &RegistryClient,
    subject: &Resolved,
    bundles: &[FetchedBundle],
    root: &str,
    verifier: &dyn EnvelopeVerifier,
) -> Result<Verified> {
    let mut opened = Vec::new();
    let mut refused = Vec::new();
    for b in bundles {
        match open_files_signature(&b.bytes, verifier) {
            Ok(o) => opened.push((b.referrer.clone(), o)),
            Err(e) => refused.push((b.referrer.clone(), e)),
        }
    }
    if opened.is_empty() {
        return Err(refusal(subject, refused));
    }
    let files = block_on(client.modelcar_files(subject, root))??;
    let mut first: Option<(String, model_signing::manifest::Mismatch)> = None;
    for (referrer, o) in opened {
        let mismatch = compare(&o.manifest.resources, &files.resources, "sha256");
        if mismatch.is_empty() {
            return Ok(Verified {
                files,
                signer: o.signer.to_string(),
                referrer,
                warnings: o.warnings,
            });
        }
        first.get_or_insert((referrer, mismatch));
    }
    let (referrer, mismatch) = first.unwrap_or_default();
    Err(
        anyhow::Error::from(ArtifactMismatch(mismatch)).context(format!(
            "the signature attached to {} ({referrer}) is refused: the files under {root} differ",
            subject.pinned_string()
        )),
    )
}

/// `oci verify <method> REFERENCE`.
pub fn verify(method: &OciVerifyMethod) -> Result<Outcome> {
    let started = Instant::now();
    let common = method.common();
    let (verifier, trust) = verifier(method)?;
    let client = client(&common.registry)?;
    let (subject, bundles) = block_on(async {
        let subject = client.resolve(&common.reference).await?;
        let bundles = client.bundles(&subject).await?;
        Ok::<_, model_signing::oci::registry::RegistryError>((subject, bundles))
    })??;
    let verified = match &common.modelcar_root {
        Some(root) => {
            verify_modelcar_bundles(&client, &subject, &bundles, root, verifier.as_ref())?
        }
        None => {
            needs_no_root(&subject)?;
            let (report, referrer) = verify_bundles(&subject, &bundles, verifier.as_ref())?;
            Verified {
                files: report.files,
                signer: report.signer.to_string(),
                referrer,
                warnings: report.warnings,
            }
        }
    };
    let pinned = subject.pinned_string();
    let files = verified.files.resources.len();
    let what = match &common.modelcar_root {
        Some(root) => format!("under {root} "),
        None => String::new(),
    };
    let summary = format!(
        "verified: {files} files {what}({} bytes, files sha256) of {pinned} signed by {}",
        verified.files.bytes, verified.signer
    );
    Ok(Outcome {
        text: vec!["Verification succeeded".into(), pinned.clone()],
        json: json!({
            "summary": summary,
            "reference": common.reference,
            "pinned": pinned,
            "digest": subject.digest,
            "referrer": verified.referrer,
            "signer": verified.signer,
            "files": files,
            "bytes": verified.files.bytes,
            "modelcar_root": common.modelcar_root,
            "trust": trust,
            "elapsed_ms": started.elapsed().as_millis() as u64,
        }),
        warnings: verified.warnings,
    })
}

/// `oci attach SIGNATURE REFERENCE`: refuses a signature whose files are not the model's (its
/// statement is compared with the manifest; who signed is the verifier's business).
pub fn attach(a: &OciAttachArgs) -> Result<Outcome> {
    let bytes = read_signature_file(&a.signature).map_err(model_signing::Error::from)?;
    let payload = Bundle::from_slice(&bytes)
        .and_then(|b| b.envelope()?.payload_bytes())
        .map_err(model_signing::Error::from)?;
    let signed = model_signing::statement::parse(&payload).map_err(model_signing::Error::from)?;
    let client = client(&a.model.registry)?;
    let subject = block_on(client.resolve(&a.model.reference))??;
    let files = match &a.model.modelcar_root {
        Some(root) => block_on(client.modelcar_files(&subject, root))??,
        None => {
            needs_no_root(&subject)?;
            modelpack::files(
                &manifest::parse(&subject.manifest).map_err(model_signing::Error::from)?,
            )
            .map_err(model_signing::Error::from)?
        }
    };
    let mismatch = compare(&signed.resources, &files.resources, "sha256");
    if !mismatch.is_empty() {
        return Err(
            anyhow::Error::from(ArtifactMismatch(mismatch)).context(format!(
                "{} is not a signature of {}",
                a.signature.display(),
                subject.pinned_string()
            )),
        );
    }
    let attached = block_on(client.attach_bundle(&subject, &bytes))??;
    Ok(Outcome {
        text: vec![format!(
            "Attached {} to {} as {}",
            a.signature.display(),
            subject.pinned_string(),
            attached.referrer
        )],
        json: json!({
            "reference": a.model.reference,
            "pinned": subject.pinned_string(),
            "referrer": attached.referrer,
            "referrers_tag_schema": attached.tag_schema,
        }),
        warnings: Vec::new(),
    })
}
