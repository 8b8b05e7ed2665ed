//! Signing and verifying a model from its ModelPack manifest (model_signing::oci), pure, no
//! registry:
//!
//! - the statement made from a manifest is the statement signing the same directory makes
//!   (same serialization, resources and root digest), so either signature fits the other;
//! - a bundle made from the manifest verifies against it, and a bundle made from the directory
//!   verifies against the manifest of that directory;
//! - a changed, added or removed layer is refused naming the file; another key is refused as a
//!   key mismatch; a signature with shards or another hash is refused as not checkable against
//!   layer digests; each with a passing twin.

mod support;

use std::collections::BTreeSet;
use std::path::Path;

use model_signing::Error;
use model_signing::hashing::HashAlgorithm;
use model_signing::keys::PrivateKey;
use model_signing::manifest::Method;
use model_signing::oci::check::{sign_manifest, statement_for_manifest, verify_manifest};
use model_signing::oci::manifest::{ImageManifest, parse};
use model_signing::oci::modelpack::{ANNOTATION_FILEPATH, PackFile, pack};
use model_signing::oci::{ArtifactError, sha256_digest};
use model_signing::serialize::{HashOptions, serialize_model};
use model_signing::sign::{KeySigner, sign_model};
use model_signing::statement;
use model_signing::verify::KeyVerifier;

fn model(dir: &Path) -> std::path::PathBuf {
    support::tiny_model(dir)
}

/// The ModelPack manifest `oci push` makes of `m` (same selection as signing: git paths out).
fn manifest_of(m: &Path) -> Vec<u8> {
    let serialized = serialize_model(
        m,
        &git_ignored(),
        Method::Files,
        HashAlgorithm::Sha256,
        &BTreeSet::new(),
        &HashOptions::default(),
    )
    .unwrap();
    let files: Vec<PackFile> = serialized
        .resources
        .iter()
        .map(|r| PackFile {
            path: r.name.path.clone(),
            sha256: r.digest.clone().try_into().unwrap(),
            size: std::fs::metadata(m.join(r.name.path.to_path_buf()))
                .unwrap()
                .len(),
        })
        .collect();
    pack("tiny", &files).unwrap().manifest
}

use support::{git_ignored, sign_dir};

fn key() -> PrivateKey {
    support::signing_key()
}

fn verifier() -> KeyVerifier {
    support::key_verifier("ec-p256.pub.pem")
}

fn payload(bundle_json: &str) -> Vec<u8> {
    model_signing::bundle::Bundle::from_slice(bundle_json.as_bytes())
        .unwrap()
        .envelope()
        .unwrap()
        .payload_bytes()
        .unwrap()
}

#[test]
fn the_manifest_statement_is_the_directory_statement() {
    let d = tempfile::tempdir().unwrap();
    let m = model(d.path());
    std::fs::create_dir(m.join(".git")).unwrap();
    std::fs::write(m.join(".git/HEAD"), "ref").unwrap();
    let manifest = manifest_of(&m);
    let from_manifest = statement_for_manifest(&manifest, "tiny").unwrap();
    let dir_bundle = sign_dir(&m);
    // Byte for byte: same name, serialization (git paths recorded), resources and root.
    assert_eq!(
        String::from_utf8(from_manifest.payload.clone()).unwrap(),
        String::from_utf8(payload(&dir_bundle.to_json())).unwrap()
    );
    let parsed = statement::parse(&from_manifest.payload).unwrap();
    assert_eq!(
        parsed.resources.len(),
        3,
        "the empty file is a resource, .git is not"
    );
    assert_eq!(from_manifest.manifest_digest, sha256_digest(&manifest));
}

#[test]
fn bundles_from_the_manifest_or_the_directory_verify_against_the_manifest() {
    let d = tempfile::tempdir().unwrap();
    let m = model(d.path());
    let manifest = manifest_of(&m);
    let (bundle, report) = sign_manifest(&manifest, "tiny", &KeySigner::new(key())).unwrap();
    assert_eq!((report.resources, report.bytes), (3, 3002));
    let ok = verify_manifest(&manifest, bundle.to_json().as_bytes(), &verifier()).unwrap();
    assert_eq!(ok.files.resources.len(), 3);
    assert_eq!(ok.manifest_digest, sha256_digest(&manifest));
    // The manifest-made bundle verifies the directory too.
    let dir_ok = model_signing::verify::verify_model(
        &m,
        bundle.to_json().as_bytes(),
        &verifier(),
        &model_signing::verify::VerifyOptions {
            ignore_git_paths: true,
            ..Default::default()
        },
    );
    assert!(dir_ok.is_ok(), "{dir_ok:?}");
    // And a directory-made bundle verifies against the manifest.
    let dir_bundle = sign_dir(&m);
    assert!(verify_manifest(&manifest, dir_bundle.to_json().as_bytes(), &verifier()).is_ok());
}

fn edited(manifest: &[u8], f: impl FnOnce(&mut ImageManifest)) -> Vec<u8> {
    let mut m = parse(manifest).unwrap();
    f(&mut m);
    serde_json::to_vec(&m).unwrap()
}

#[test]
fn a_tampered_manifest_is_refused_naming_the_file() {
    let d = tempfile::tempdir().unwrap();
    let manifest = manifest_of(&model(d.path()));
    let (bundle, _) = sign_manifest(&manifest, "tiny", &KeySigner::new(key())).unwrap();
    let bundle = bundle.to_json();
    let check = |m: &[u8]| verify_manifest(m, bundle.as_bytes(), &verifier());
    assert!(check(&manifest).is_ok(), "passing twin");

    let other = format!("sha256:{}", "ab".repeat(32));
    let changed = edited(&manifest, |m| {
        let l = m
            .layers
            .iter_mut()
            .find(|l| l.annotations[ANNOTATION_FILEPATH] == "weights.bin");
        l.unwrap().digest = other.clone();
    });
    let e = check(&changed).unwrap_err();
    assert!(matches!(e, Error::Mismatch(_)), "{e}");
    assert!(
        e.to_string()
            .contains("1 file changed: weights.bin (expected sha256:"),
        "{e}"
    );

    let extra = edited(&manifest, |m| {
        let mut l = m.layers[0].clone();
        l.annotations
            .insert(ANNOTATION_FILEPATH.into(), "payload.py".into());
        m.layers.push(l);
    });
    let e = check(&extra).unwrap_err();
    assert!(
        e.to_string()
            .contains("not covered by the signature: payload.py"),
        "{e}"
    );

    let missing = edited(&manifest, |m| {
        m.layers
            .retain(|l| l.annotations[ANNOTATION_FILEPATH] != "config.json");
    });
    let e = check(&missing).unwrap_err();
    assert!(e.to_string().contains("1 file missing: config.json"), "{e}");

    let tar = edited(&manifest, |m| {
        m.layers[0].media_type = "application/vnd.cncf.model.weight.v1.tar".into();
    });
    let e = check(&tar).unwrap_err();
    assert!(
        matches!(e, Error::Artifact(ArtifactError::UnsupportedLayer { .. })),
        "{e}"
    );
    assert_eq!(e.kind(), "invalid_artifact");
}

#[test]
fn another_key_and_other_serializations_are_refused() {
    let d = tempfile::tempdir().unwrap();
    let m = model(d.path());
    let manifest = manifest_of(&m);
    let other = PrivateKey::from_pem(
        "p384",
        &std::fs::read(support::fixture("peer-samples/keys/p384.pem")).unwrap(),
        None,
    )
    .unwrap();
    let (theirs, _) = sign_manifest(&manifest, "tiny", &KeySigner::new(other)).unwrap();
    let e = verify_manifest(&manifest, theirs.to_json().as_bytes(), &verifier()).unwrap_err();
    assert!(matches!(e, Error::KeyMismatch(_)), "{e}");

    for (method, hash) in [
        (Method::Shards { shard_size: 1000 }, HashAlgorithm::Sha256),
        (Method::Files, HashAlgorithm::Blake3),
    ] {
        let (b, _) = sign_model(
            &m,
            &git_ignored(),
            method,
            hash,
            &KeySigner::new(key()),
            &HashOptions::default(),
        )
        .unwrap();
        let e = verify_manifest(&manifest, b.to_json().as_bytes(), &verifier()).unwrap_err();
        assert!(
            matches!(e, Error::Artifact(ArtifactError::Serialization { .. })),
            "{method:?} {hash:?}: {e}"
        );
        assert!(
            e.to_string()
                .contains("only signatures made with the default serialization"),
            "{e}"
        );
    }
}

#[test]
fn the_first_bundle_that_verifies_wins_and_none_is_unsigned() {
    use model_signing::oci::check::{NotVerified, verify_first};
    let d = tempfile::tempdir().unwrap();
    let manifest = manifest_of(&model(d.path()));
    let other = PrivateKey::from_pem(
        "p384",
        &std::fs::read(support::fixture("peer-samples/keys/p384.pem")).unwrap(),
        None,
    )
    .unwrap();
    let theirs = sign_manifest(&manifest, "tiny", &KeySigner::new(other))
        .unwrap()
        .0
        .to_json();
    let ours = sign_manifest(&manifest, "tiny", &KeySigner::new(key()))
        .unwrap()
        .0
        .to_json();
    let (i, report) =
        verify_first(&manifest, [theirs.as_bytes(), ours.as_bytes()], &verifier()).unwrap();
    assert_eq!(i, 1);
    assert_eq!(report.files.resources.len(), 3);
    match verify_first(
        &manifest,
        [theirs.as_bytes(), b"junk".as_slice()],
        &verifier(),
    ) {
        Err(NotVerified::Refused(errors)) => {
            assert_eq!(errors.len(), 2);
            assert!(matches!(errors[0], Error::KeyMismatch(_)), "{}", errors[0]);
            assert!(matches!(errors[1], Error::Bundle(_)), "{}", errors[1]);
        }
        other => panic!("{other:?}"),
    }
    assert!(matches!(
        verify_first(&manifest, std::iter::empty(), &verifier()),
        Err(NotVerified::Unsigned)
    ));
}
