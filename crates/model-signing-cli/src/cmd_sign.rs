//! `sign key|certificate|sigstore` and `digest`.

use std::collections::BTreeSet;
use std::path::Path;

use anyhow::{Context, Result, bail};
use model_signing::hashing::HashAlgorithm;
use model_signing::keys::PrivateKey;
use model_signing::manifest::{Method, root_digest};
use model_signing::serialize::{HashOptions, serialize_model};
use model_signing::sign::{CertificateSigner, KeySigner, Signer, sign_model};
use model_signing::x509::Certificate;
use serde_json::json;

use crate::args::{
    CertificateSignerArgs, DigestArgs, HashArg, HashingArgs, PrivateKeyArgs, SignCommon, SignMethod,
};
use crate::progress::Bar;
use crate::report::Outcome;
use crate::selection::selection;

fn hashing(h: &HashingArgs) -> (Method, HashAlgorithm) {
    let alg = match h.hash {
        HashArg::Sha256 => HashAlgorithm::Sha256,
        HashArg::Blake2b => HashAlgorithm::Blake2b,
        HashArg::Blake3 => HashAlgorithm::Blake3,
    };
    let method = match h.shard_size {
        // The peer silently hashes whole files when asked for BLAKE3 shards, so such a
        // signature could never verify there: refuse it as a usage error (exit code 2).
        Some(_) if alg == HashAlgorithm::Blake3 => {
            use clap::CommandFactory;
            crate::args::Cli::command()
                .error(
                    clap::error::ErrorKind::ArgumentConflict,
                    "--hash blake3 cannot be combined with --shard-size: the Python model-signing package hashes whole files for BLAKE3, so it could not verify such a signature; drop --shard-size (BLAKE3 is parallel within a file anyway) or use --hash sha256 or blake2b",
                )
                .exit()
        }
        Some(shard_size) => Method::Shards { shard_size },
        None => Method::Files,
    };
    (method, alg)
}

fn read(path: &Path, what: &str) -> Result<Vec<u8>> {
    std::fs::read(path).with_context(|| format!("cannot read {what} {}", path.display()))
}

pub(crate) fn load_private_key(k: &PrivateKeyArgs) -> Result<PrivateKey> {
    Ok(PrivateKey::from_pem(
        &k.private_key.display().to_string(),
        &read(&k.private_key, "private key")?,
        k.password.as_deref().map(str::as_bytes),
    )?)
}

pub(crate) fn load_certificates(paths: &[std::path::PathBuf]) -> Result<Vec<Certificate>> {
    let mut out = Vec::new();
    for p in paths {
        out.extend(Certificate::all_from_pem(
            &p.display().to_string(),
            &read(p, "certificate file")?,
        )?);
    }
    Ok(out)
}

fn run_sign(
    common: &SignCommon,
    signer: &dyn Signer,
    jobs: usize,
    show_progress: bool,
) -> Result<Outcome> {
    let selection = selection(&common.model, &[&common.signature])?;
    let (method, alg) = hashing(&common.hashing);
    let bar = Bar::new(show_progress);
    let opts = HashOptions {
        jobs,
        progress: Some(&bar),
    };
    let started = std::time::Instant::now();
    tracing::debug!(
        model = %common.model.model_path.display(),
        signature = %common.signature.display(),
        jobs,
        "signing"
    );
    let signed = sign_model(
        &common.model.model_path,
        &selection,
        method,
        alg,
        signer,
        &opts,
    );
    bar.finish();
    let (bundle, report) = signed?;
    tracing::debug!(
        resources = report.resources,
        bytes = report.bytes,
        elapsed_ms = started.elapsed().as_millis() as u64,
        "signed"
    );
    std::fs::write(&common.signature, bundle.to_json())
        .with_context(|| format!("cannot write signature {}", common.signature.display()))?;
    Ok(Outcome {
        text: vec!["Signing succeeded".into()],
        json: json!({
            "signature": common.signature,
            "resources": report.resources,
            "bytes": report.bytes,
            "root_digest": format!("sha256:{}", report.root_digest),
            "elapsed_ms": started.elapsed().as_millis() as u64,
        }),
        warnings: report.warnings,
    })
}

/// The signer of `sign certificate` and `oci sign certificate`: the key, its certificate and
/// the intermediates to ship.
pub(crate) fn certificate_signer(a: &CertificateSignerArgs) -> Result<CertificateSigner> {
    let key = load_private_key(&a.key)?;
    let mut leaf = load_certificates(std::slice::from_ref(&a.signing_certificate))?;
    let leaf = leaf.remove(0);
    Ok(CertificateSigner::new(
        key,
        leaf,
        load_certificates(&a.certificate_chain)?,
    )?)
}

/// `sign <method>`.
pub fn sign(method: &SignMethod, jobs: usize, show_progress: bool) -> Result<Outcome> {
    match method {
        SignMethod::Key(a) => {
            let signer = KeySigner::new(load_private_key(&a.key)?);
            run_sign(&a.common, &signer, jobs, show_progress)
        }
        SignMethod::Certificate(a) => run_sign(
            &a.common,
            &certificate_signer(&a.signer)?,
            jobs,
            show_progress,
        ),
        SignMethod::Sigstore(_) => bail!(
            "keyless Sigstore signing needs live Fulcio, Rekor and an OIDC token and is not available in this build; sign with `sign key` or `sign certificate`, or with the Python model-signing package (its signatures verify here)"
        ),
    }
}

/// `digest`: the root digest the files would be signed with.
pub fn digest(a: &DigestArgs, jobs: usize, show_progress: bool) -> Result<Outcome> {
    let selection = selection(&a.model, &[])?;
    let (method, alg) = hashing(&a.hashing);
    let bar = Bar::new(show_progress);
    let serialized = serialize_model(
        &a.model.model_path,
        &selection,
        method,
        alg,
        &BTreeSet::new(),
        &HashOptions {
            jobs,
            progress: Some(&bar),
        },
    );
    bar.finish();
    let serialized = serialized.map_err(model_signing::Error::from)?;
    let digest = format!("sha256:{}", hex::encode(root_digest(&serialized.resources)));
    Ok(Outcome {
        text: vec![digest.clone()],
        json: json!({"digest": digest, "resources": serialized.resources.len(), "bytes": serialized.bytes}),
        warnings: serialized.warnings,
    })
}
