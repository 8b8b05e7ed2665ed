//! `model-signing oci verify|attach --modelcar-root` against the real registries of
//! test_cluster::registry: modelcar images (container images whose tar layers hold the model
//! under /models, as KServe's `oci+native://` uses), built here from Rust and pushed through
//! the registry's HTTP API (tests/support: `push_image`).
//!
//! - a directory signed with `sign key` and attached with `oci attach --modelcar-root` verifies
//!   by reference, on both registry kinds, gzip and plain layers mixed; the registry's own log
//!   shows each layer blob fetched exactly once by the verification;
//! - the same signature attached to an image whose later layer changes a file is refused naming
//!   the file; to one whose later layer deletes a signed file by a whiteout, naming it missing
//!   (`oci attach` refuses both first: the attacker's path is the library's attach);
//! - a layer blob longer than its manifest descriptor says is refused while streaming (what a
//!   registry substituting content meets first; the digest is checked at each layer's end);
//! - without `--modelcar-root` the image is named a modelcar, with the flag to give; an unsigned
//!   modelcar is refused without fetching a layer;
//! - a directory signed by the Python peer 1.1.1 verifies against the modelcar;
//! - a modelcar with a Docker image manifest (docker-pushed) verifies as well.

mod support;

use std::path::Path;

use serde_json::Value;
use support::{
    Kind, Registry, fixture, json_ok, json_refused, push_image, registry_flags, requests_since,
    run_with, s, stderr, stdout, tar_layer,
};

const PUB: &str = "peer-samples/ec-p256.pub.pem";

/// The layers of a modelcar of `support::model` (weights.bin, config.json, sub/tok.json under
/// /models), over a "base image" layer; gzip for the first two, plain for the last.
fn modelcar_layers() -> Vec<(bool, Vec<u8>)> {
    let weights = vec![3u8; 5000];
    vec![
        (
            true,
            tar_layer(&[
                ("bin/", b""),
                ("bin/sh", b"#!shell"),
                ("etc/os-release", b"x"),
            ]),
        ),
        (
            true,
            tar_layer(&[
                ("models/", b""),
                ("models/weights.bin", &weights),
                ("models/sub/", b""),
            ]),
        ),
        (
            false,
            tar_layer(&[
                ("models/config.json", b"{}"),
                ("models/sub/tok.json", b"[]"),
            ]),
        ),
    ]
}

fn verify(reference: &str, flags: &[String], root: Option<&str>) -> std::process::Output {
    let mut f = flags.to_vec();
    f.extend(["--public_key".into(), s(&fixture(PUB)).into()]);
    if let Some(root) = root {
        f.extend(["--modelcar-root".into(), root.into()]);
    }
    run_with(&["--output", "json", "oci", "verify", "key", reference], &f)
}

fn attach(sig: &Path, reference: &str, flags: &[String]) -> std::process::Output {
    let mut f = flags.to_vec();
    f.extend(["--modelcar-root".into(), "/models".into()]);
    run_with(&["oci", "attach", s(sig), reference], &f)
}

/// The `GET …/blobs/<digest>` lines of `log` for each layer of `layers`' digests.
/// The OCI manifest `pinned` (`…/models/car@sha256:…`) names, as the registry serves it.
fn manifest_of(r: &Registry, pinned: &str) -> Value {
    let digest = pinned.split('@').nth(1).unwrap();
    serde_json::from_slice(&support::http_get(
        r,
        &format!("/v2/models/car/manifests/{digest}"),
        Some("application/vnd.oci.image.manifest.v1+json"),
    ))
    .unwrap()
}

fn layer_gets(log: &[String], repo: &str, digest: &str) -> usize {
    let get = format!("GET /v2/{repo}/blobs/{digest} ");
    log.iter().filter(|l| l.starts_with(&get)).count()
}

#[test]
fn a_signed_directory_verifies_against_its_modelcar_streaming_each_layer_once() {
    for kind in [Kind::Referrers, Kind::Distribution] {
        let d = tempfile::tempdir().unwrap();
        let r = Registry::builder().kind(kind).start().unwrap();
        let flags = registry_flags(&r, d.path());
        let m = support::model(d.path());
        let sig = support::sign_with_key(&m, &[]);
        let layers = modelcar_layers();
        let reference = format!("{}/models/car:v1", r.host());
        let pinned = push_image(&r, &reference, &layers);

        let o = attach(&sig, &reference, &flags);
        assert_eq!(o.status.code(), Some(0), "{kind:?}: {}", stderr(&o));

        let since = r.requests().len();
        let v = json_ok(&verify(&reference, &flags, Some("/models")));
        assert_eq!(v["pinned"], pinned.as_str(), "{v}");
        assert_eq!(v["files"], 3, "{v}");
        assert_eq!(v["modelcar_root"], "/models", "{v}");
        let log = requests_since(&r, since);
        let manifest: Value = manifest_of(&r, &pinned);
        for l in manifest["layers"].as_array().unwrap() {
            let digest = l["digest"].as_str().unwrap();
            assert_eq!(
                layer_gets(&log, "models/car", digest),
                1,
                "{kind:?}: layer {digest} in {log:#?}"
            );
        }
        // The text output prints the digest to pin, as the raw-layer path does.
        let mut f = flags.clone();
        f.extend(
            [
                "--public_key",
                s(&fixture(PUB)),
                "--modelcar-root",
                "models",
            ]
            .map(String::from),
        );
        let o = run_with(&["oci", "verify", "key", &reference], &f);
        assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
        assert_eq!(stdout(&o), format!("Verification succeeded\n{pinned}\n"));

        // Without the flag, the image is named a modelcar and the flag given.
        let (kind_, msg) = json_refused(&verify(&reference, &flags, None));
        assert_eq!(kind_, "invalid_artifact", "{msg}");
        assert!(msg.contains("--modelcar-root"), "{msg}");
    }
}

#[test]
fn a_later_layer_that_changes_or_deletes_a_signed_file_is_refused_naming_it() {
    let d = tempfile::tempdir().unwrap();
    let r = Registry::builder().kind(Kind::Referrers).start().unwrap();
    let flags = registry_flags(&r, d.path());
    let m = support::model(d.path());
    let sig = support::sign_with_key(&m, &[]);
    let bundle = std::fs::read(&sig).unwrap();

    let cases = [
        (
            "changed",
            tar_layer(&[("models/config.json", b"{\"evil\":true}")]),
            "config.json",
        ),
        (
            "deleted",
            tar_layer(&[("models/sub/.wh.tok.json", b"")]),
            "sub/tok.json",
        ),
    ];
    for (tag, top, file) in cases {
        let mut layers = modelcar_layers();
        layers.push((true, top));
        let reference = format!("{}/models/car:{tag}", r.host());
        let pinned = push_image(&r, &reference, &layers);
        // `oci attach` checks the files and refuses; an attacker attaches it anyway.
        let o = attach(&sig, &reference, &flags);
        assert_eq!(o.status.code(), Some(1), "{tag}: {}", stderr(&o));
        assert!(stderr(&o).contains(file), "{tag}: {}", stderr(&o));
        support::attach_with_library(&r, &pinned, &bundle);

        let (kind, msg) = json_refused(&verify(&reference, &flags, Some("/models")));
        assert_eq!(kind, "model_mismatch", "{tag}: {msg}");
        assert!(msg.contains(file), "{tag}: {msg}");
        if tag == "deleted" {
            assert!(msg.contains("missing"), "{msg}");
        }
    }
    // Twin: the same image without the last layer verifies.
    let reference = format!("{}/models/car:good", r.host());
    let pinned = push_image(&r, &reference, &modelcar_layers());
    support::attach_with_library(&r, &pinned, &bundle);
    json_ok(&verify(&reference, &flags, Some("/models")));
}

#[test]
fn an_unsigned_modelcar_is_refused_without_fetching_a_layer() {
    let d = tempfile::tempdir().unwrap();
    let r = Registry::builder()
        .kind(Kind::Distribution)
        .start()
        .unwrap();
    let flags = registry_flags(&r, d.path());
    let reference = format!("{}/models/car:v1", r.host());
    push_image(&r, &reference, &modelcar_layers());
    let since = r.requests().len();
    let (kind, msg) = json_refused(&verify(&reference, &flags, Some("/models")));
    assert_eq!(kind, "unsigned", "{msg}");
    let log = requests_since(&r, since);
    assert!(
        !log.iter()
            .any(|l| l.starts_with("GET ") && l.contains("/blobs/")),
        "{log:#?}"
    );
}

#[test]
fn a_directory_signed_by_the_peer_verifies_against_the_modelcar() {
    let d = tempfile::tempdir().unwrap();
    let r = Registry::builder().kind(Kind::Referrers).start().unwrap();
    let flags = registry_flags(&r, d.path());
    let m = support::model(d.path());
    let sig = support::peer_sign_key(d.path(), &m);
    let reference = format!("{}/models/car:peer", r.host());
    push_image(&r, &reference, &modelcar_layers());
    let o = attach(&sig, &reference, &flags);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let v = json_ok(&verify(&reference, &flags, Some("/models")));
    assert_eq!(v["files"], 3, "{v}");
}

#[test]
fn a_layer_longer_than_its_manifest_says_is_refused_while_streaming() {
    let d = tempfile::tempdir().unwrap();
    let r = Registry::builder().kind(Kind::Referrers).start().unwrap();
    let flags = registry_flags(&r, d.path());
    let m = support::model(d.path());
    let bundle = std::fs::read(support::sign_with_key(&m, &[])).unwrap();
    let pinned = push_image(
        &r,
        &format!("{}/models/car:v1", r.host()),
        &modelcar_layers(),
    );
    let mut manifest: Value = manifest_of(&r, &pinned);
    let size = manifest["layers"][1]["size"].as_u64().unwrap();
    manifest["layers"][1]["size"] = (size - 1).into();
    let reference = format!("{}/models/car:short", r.host());
    let short = support::push_manifest(&r, &reference, &manifest.to_string());
    support::attach_with_library(&r, &short, &bundle);
    let (kind, msg) = json_refused(&verify(&reference, &flags, Some("/models")));
    assert_eq!(kind, "too_large", "{msg}");
    assert!(msg.contains("reading layer 1"), "{msg}");
    // Twin: the image as pushed verifies.
    support::attach_with_library(&r, &pinned, &bundle);
    json_ok(&verify(&pinned, &flags, Some("/models")));
}

#[test]
fn a_modelcar_with_a_docker_image_manifest_verifies() {
    let d = tempfile::tempdir().unwrap();
    let r = Registry::builder().kind(Kind::Referrers).start().unwrap();
    let flags = registry_flags(&r, d.path());
    let m = support::model(d.path());
    let sig = support::sign_with_key(&m, &[]);
    // The OCI image, its blobs reused under a Docker manifest (as `docker push` writes it).
    let oci = push_image(
        &r,
        &format!("{}/models/car:oci", r.host()),
        &modelcar_layers(),
    );
    let mut manifest: Value = manifest_of(&r, &oci);
    manifest["mediaType"] = "application/vnd.docker.distribution.manifest.v2+json".into();
    manifest["config"]["mediaType"] = "application/vnd.docker.container.image.v1+json".into();
    for l in manifest["layers"].as_array_mut().unwrap() {
        let gz = l["mediaType"].as_str().unwrap().ends_with("+gzip");
        l["mediaType"] = if gz {
            "application/vnd.docker.image.rootfs.diff.tar.gzip"
        } else {
            "application/vnd.docker.image.rootfs.diff.tar"
        }
        .into();
    }
    let reference = format!("{}/models/car:docker", r.host());
    let pinned = support::push_manifest(&r, &reference, &manifest.to_string());
    let o = attach(&sig, &reference, &flags);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let v = json_ok(&verify(&reference, &flags, Some("/models")));
    assert_eq!(v["pinned"], pinned.as_str(), "{v}");
    assert_eq!(v["files"], 3, "{v}");
}
