//! Writing to a test registry ([`crate::registry::Registry`]) by hand, as a client that is not
//! ours would: blobs, manifests and whole container images (modelcar images with tar layers),
//! so tests can build artifacts the engine would never write (a tampered manifest, a modelcar);
//! and the engine's own registry client set up for a test registry ([`engine_client`]), for
//! what an attacker with push access can do with it (attach any bundle to any manifest).
//! Test helpers: they panic on any failure.

use std::io::Write as _;

use sha2::{Digest as _, Sha256};

use crate::registry::Registry;

/// A docker `config.json` holding `user`'s password for `host` (what a pull Secret's
/// `.dockerconfigjson` holds).
pub fn docker_config_json(host: &str, user: &str, password: &str) -> String {
    use base64::Engine as _;
    let auth = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
    serde_json::json!({"auths": {host: {"auth": auth}}}).to_string()
}

/// The engine's registry client for `r`: trusting its CA (or plain HTTP without TLS), with its
/// credentials.
pub fn engine_client(r: &Registry) -> model_signing::oci::registry::RegistryClient {
    use model_signing::oci::credentials::DockerConfig;
    use model_signing::oci::registry::{RegistryClient, RegistryOptions};
    let credentials = match r.credentials() {
        Some(c) => DockerConfig::parse(
            "test",
            docker_config_json(&r.host(), &c.username, &c.password).as_bytes(),
        )
        .unwrap(),
        None => DockerConfig::default(),
    };
    RegistryClient::new(RegistryOptions {
        credentials,
        extra_ca_pem: r
            .ca_pem()
            .map(|p| p.as_bytes().to_vec())
            .into_iter()
            .collect(),
        plain_http: r.ca_pem().is_none(),
        ..RegistryOptions::default()
    })
    .unwrap()
}

/// `sha256:<hex>` of `bytes`.
fn sha256_digest(bytes: &[u8]) -> String {
    let hex: String = Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    format!("sha256:{hex}")
}

/// A tar archive of `files` (path in the image, content), each a regular file (0644); a path
/// ending in `/` is a directory (0755). Owned by 0:0 with mtime 0: the same bytes on every run
/// (and the same `ls -ln` in a pod that mounts it).
pub fn tar_layer(files: &[(&str, &[u8])]) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    for (path, data) in files {
        let mut h = tar::Header::new_gnu();
        if path.ends_with('/') {
            h.set_entry_type(tar::EntryType::Directory);
            h.set_mode(0o755);
        } else {
            h.set_entry_type(tar::EntryType::Regular);
            h.set_mode(0o644);
        }
        h.set_uid(0);
        h.set_gid(0);
        h.set_mtime(0);
        h.set_size(data.len() as u64);
        b.append_data(&mut h, path, *data).unwrap();
    }
    b.into_inner().unwrap()
}

/// Gzip of `bytes`.
pub fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    e.write_all(bytes).unwrap();
    e.finish().unwrap()
}

/// A request to `r` with its CA and credentials.
pub fn request(
    r: &Registry,
    method: reqwest::Method,
    url: &str,
) -> reqwest::blocking::RequestBuilder {
    let mut builder = reqwest::blocking::Client::builder();
    if let Some(pem) = r.ca_pem() {
        builder = builder.tls_certs_only([reqwest::Certificate::from_pem(pem.as_bytes()).unwrap()]);
    }
    let mut req = builder.build().unwrap().request(method, url);
    if let Some(c) = r.credentials() {
        req = req.basic_auth(&c.username, Some(&c.password));
    }
    req
}

/// Uploads `bytes` as a blob of `repo` on `r` (POST, then PUT with the digest); returns its
/// digest.
pub fn push_blob(r: &Registry, repo: &str, bytes: &[u8]) -> String {
    let digest = sha256_digest(bytes);
    let started = request(
        r,
        reqwest::Method::POST,
        &format!("{}/v2/{repo}/blobs/uploads/", r.base_url()),
    )
    .send()
    .unwrap();
    assert_eq!(started.status().as_u16(), 202, "starting an upload");
    let location = started.headers()["location"].to_str().unwrap().to_string();
    let mut url = if location.starts_with('/') {
        format!("{}{location}", r.base_url())
    } else {
        location
    };
    url.push(if url.contains('?') { '&' } else { '?' });
    url.push_str(&format!("digest={digest}"));
    let done = request(r, reqwest::Method::PUT, &url)
        .header("Content-Type", "application/octet-stream")
        .body(bytes.to_vec())
        .send()
        .unwrap();
    assert_eq!(
        done.status().as_u16(),
        201,
        "finishing the upload of {digest}"
    );
    digest
}

/// Pushes a container image (a modelcar) to `reference` (`host/repo:tag` on `r`): the layers
/// (each a tar archive, gzip-compressed when asked) in order, an image config with their
/// diff IDs, and an OCI image manifest; returns `host/repo@sha256:…`.
pub fn push_image(r: &Registry, reference: &str, layers: &[(bool, Vec<u8>)]) -> String {
    let rest = reference.strip_prefix(&format!("{}/", r.host())).unwrap();
    let (repo, _tag) = rest.rsplit_once(':').unwrap();
    let mut descriptors = Vec::new();
    let mut diff_ids = Vec::new();
    for (gz, tar) in layers {
        diff_ids.push(sha256_digest(tar));
        let blob = if *gz { gzip(tar) } else { tar.clone() };
        let digest = push_blob(r, repo, &blob);
        let media_type = if *gz {
            "application/vnd.oci.image.layer.v1.tar+gzip"
        } else {
            "application/vnd.oci.image.layer.v1.tar"
        };
        descriptors.push(serde_json::json!({
            "mediaType": media_type, "digest": digest, "size": blob.len()}));
    }
    let config = serde_json::json!({
        "architecture": "amd64", "os": "linux",
        "config": {},
        "rootfs": {"type": "layers", "diff_ids": diff_ids},
    })
    .to_string();
    let config_digest = push_blob(r, repo, config.as_bytes());
    let manifest = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
                   "digest": config_digest, "size": config.len()},
        "layers": descriptors,
    })
    .to_string();
    push_manifest(r, reference, &manifest)
}

/// PUTs the image manifest `manifest` (OCI, or Docker by its `mediaType`) at `reference` (`host/repo:tag` on `r`); returns
/// `host/repo@sha256:…`.
pub fn push_manifest(r: &Registry, reference: &str, manifest: &str) -> String {
    let rest = reference.strip_prefix(&format!("{}/", r.host())).unwrap();
    let (repo, tag) = rest.rsplit_once(':').unwrap();
    let parsed: serde_json::Value = serde_json::from_str(manifest).unwrap();
    let media_type = parsed["mediaType"]
        .as_str()
        .unwrap_or("application/vnd.oci.image.manifest.v1+json")
        .to_string();
    let put = request(
        r,
        reqwest::Method::PUT,
        &format!("{}/v2/{repo}/manifests/{tag}", r.base_url()),
    )
    .header("Content-Type", media_type)
    .body(manifest.to_string())
    .send()
    .unwrap();
    assert_eq!(put.status().as_u16(), 201, "pushing the manifest");
    format!("{}/{repo}@{}", r.host(), sha256_digest(manifest.as_bytes()))
}
