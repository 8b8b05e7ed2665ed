//! `inspect SIGNATURE`: what a signature says, without verifying it.

use anyhow::Result;
use model_signing::bundle::{Bundle, decode_base64, read_signature_file};
use model_signing::name::ModelPath;
use model_signing::statement;
use model_signing::x509::Certificate;
use serde_json::json;

use crate::args::InspectArgs;
use crate::report::Outcome;

/// `inspect`.
pub fn inspect(a: &InspectArgs) -> Result<Outcome> {
    let bytes = read_signature_file(&a.signature).map_err(model_signing::Error::from)?;
    let bundle = Bundle::from_slice(&bytes).map_err(model_signing::Error::from)?;
    let envelope = bundle.envelope().map_err(model_signing::Error::from)?;
    let payload = envelope
        .payload_bytes()
        .map_err(model_signing::Error::from)?;
    let manifest = statement::parse(&payload).map_err(model_signing::Error::from)?;
    let vm = &bundle.verification_material;
    let (method, signer) = if let Some(pk) = &vm.public_key {
        (
            "key",
            match &pk.hint {
                Some(h) if !h.is_empty() => format!("public key hint {h}"),
                _ => "public key (pre-1.1 format, no hint)".to_string(),
            },
        )
    } else if let Some(chain) = &vm.x509_certificate_chain {
        (
            "certificate",
            leaf_description(chain.certificates.first().map(|c| c.raw_bytes.as_str())),
        )
    } else if let Some(cert) = &vm.certificate {
        ("sigstore", leaf_description(Some(cert.raw_bytes.as_str())))
    } else {
        ("unknown", "no verification material".to_string())
    };
    let s = &manifest.serialization;
    let files = manifest
        .resources
        .iter()
        .map(|r| &r.name.path)
        .collect::<std::collections::BTreeSet<&ModelPath>>()
        .len();
    let shard = match s.method {
        model_signing::manifest::Method::Shards { shard_size } => Some(shard_size),
        model_signing::manifest::Method::Files => None,
    };
    let root = hex::encode(model_signing::manifest::root_digest(&manifest.resources));
    let mut text = vec![
        format!("method:         {method}"),
        format!("signer:         {signer}"),
        format!("model name:     {}", manifest.model_name),
        format!("root digest:    sha256:{root}"),
        format!(
            "serialization:  {} {}{}",
            s.method.name(),
            s.hash,
            shard
                .map(|n| format!(" (shard size {n})"))
                .unwrap_or_default()
        ),
        format!(
            "resources:      {} ({} files)",
            manifest.resources.len(),
            files
        ),
        format!("allow symlinks: {}", s.allow_symlinks),
        format!(
            "ignore paths:   {}",
            if s.ignore_paths.is_empty() {
                "(none recorded)".to_string()
            } else {
                s.ignore_paths.join(", ")
            }
        ),
        format!("tlog entries:   {}", vm.tlog_entries.len()),
    ];
    if manifest.legacy_v01 {
        text.push("format:         v0.2 (Digests/v0.1, one subject per file)".to_string());
    }
    let keyless =
        (method == "sigstore").then(|| sigstore_lines(&bundle, &bytes, &payload, &mut text));
    Ok(Outcome {
        text,
        json: json!({
            "method": method,
            "signer": signer,
            "media_type": bundle.media_type,
            "model_name": manifest.model_name,
            "root_digest": format!("sha256:{root}"),
            "serialization": {"method": s.method.name(), "hash_type": s.hash.name(), "shard_size": shard, "allow_symlinks": s.allow_symlinks, "ignore_paths": s.ignore_paths},
            "resources": manifest.resources.len(),
            "files": files,
            "tlog_entries": vm.tlog_entries.len(),
            "legacy_v01": manifest.legacy_v01,
            "sigstore": keyless,
        }),
        warnings: Vec::new(),
    })
}

/// Keyless signatures: who the certificate names, and which embedded root and Rekor log key
/// verify every cryptographic check (identity policy and model files aside).
fn sigstore_lines(
    bundle: &Bundle,
    raw: &[u8],
    payload: &[u8],
    text: &mut Vec<String>,
) -> serde_json::Value {
    let d = model_signing::sigstore::describe(bundle, raw, payload);
    let (sans, issuer) = match &d.identity {
        Some(id) => (
            id.sans.iter().map(|s| s.to_string()).collect::<Vec<_>>(),
            id.issuer.clone(),
        ),
        None => (Vec::new(), None),
    };
    text.push(format!(
        "identity:       {}",
        if sans.is_empty() {
            "(none)".to_string()
        } else {
            sans.join(", ")
        }
    ));
    text.push(format!(
        "issuer:         {}",
        issuer.as_deref().unwrap_or("(none)")
    ));
    match &d.verified_with {
        Ok((root, logs)) => {
            text.push(format!("verified with:  {root}"));
            for l in logs {
                text.push(format!("rekor entry:    {l}"));
            }
            json!({"identity": sans, "issuer": issuer, "verified": true, "trust_root": root, "rekor": logs})
        }
        Err(reasons) => {
            text.push("verified with:  none of the embedded roots:".to_string());
            for r in reasons {
                text.push(format!("  - {r}"));
            }
            json!({"identity": sans, "issuer": issuer, "verified": false, "errors": reasons})
        }
    }
}

fn leaf_description(raw: Option<&str>) -> String {
    let Some(raw) = raw else {
        return "empty certificate chain".into();
    };
    match decode_base64("certificate", raw)
        .ok()
        .and_then(|der| Certificate::from_der("certificate", &der).ok())
    {
        Some(c) => {
            let san = c.san();
            if san.is_empty() {
                format!("certificate '{}'", c.subject())
            } else {
                format!("certificate '{}' ({})", c.subject(), san.join(", "))
            }
        }
        None => "unparseable certificate".into(),
    }
}
