//! Verifying a directory signature against a modelcar image's tar layers
//! (model_signing::oci::modelcar), pure, the layers built in memory:
//!
//! - a directory signed with the defaults verifies against an image holding it under /models,
//!   in one layer or spread over several;
//! - a file changed by a later layer is refused naming it, and so is a file deleted by a
//!   whiteout (named missing), and a file added; each next to the passing image;
//! - another key is refused before any layer is read.

mod support;

use std::path::Path;

use model_signing::Error;
use model_signing::oci::modelcar::{Compression, verify_modelcar};

fn model(dir: &Path) -> std::path::PathBuf {
    support::tiny_model(dir)
}

fn sign_dir(m: &Path) -> Vec<u8> {
    support::sign_dir(m).to_json().into_bytes()
}

fn verifier(name: &str) -> model_signing::verify::KeyVerifier {
    support::key_verifier(name)
}

/// A tar layer with `files` (path in the image, content).
fn layer(files: &[(&str, &[u8])]) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    for (path, data) in files {
        let mut h = tar::Header::new_gnu();
        h.set_entry_type(tar::EntryType::Regular);
        h.set_mode(0o644);
        h.set_size(data.len() as u64);
        b.append_data(&mut h, path, *data).unwrap();
    }
    b.into_inner().unwrap()
}

fn check(layers: &[Vec<u8>], bundle: &[u8]) -> model_signing::Result<usize> {
    verify_modelcar(
        layers.iter().map(|l| (Compression::None, l.as_slice())),
        "/models",
        bundle,
        &verifier("ec-p256.pub.pem"),
    )
    .map(|r| r.files.resources.len())
}

fn mismatch(r: model_signing::Result<usize>) -> String {
    match r {
        Err(Error::Mismatch(m)) => m.to_string(),
        other => panic!("expected a mismatch, got {other:?}"),
    }
}

#[test]
fn a_directory_signature_verifies_the_modelcar_and_changes_are_named() {
    let d = tempfile::tempdir().unwrap();
    let bundle = sign_dir(&model(d.path()));
    let weights = vec![7u8; 3000];
    let base = layer(&[
        ("usr/bin/true", b"binary"),
        ("models/weights.bin", &weights),
        ("models/config.json", b"{}"),
        ("models/sub/empty.txt", b""),
    ]);
    assert_eq!(check(std::slice::from_ref(&base), &bundle).unwrap(), 3);
    // Spread over layers, one overriding another with the signed content: still the model.
    let split = [
        layer(&[
            ("models/weights.bin", b"old"),
            ("models/config.json", b"{}"),
        ]),
        layer(&[
            ("models/weights.bin", &weights),
            ("models/sub/empty.txt", b""),
        ]),
    ];
    assert_eq!(check(&split, &bundle).unwrap(), 3);

    // A later layer changes a file.
    let changed = layer(&[("models/config.json", b"{\"evil\":1}")]);
    let m = mismatch(check(&[base.clone(), changed], &bundle));
    assert!(m.contains("config.json"), "{m}");
    // A whiteout deletes a signed file.
    let deleted = layer(&[("models/.wh.weights.bin", b"")]);
    let m = mismatch(check(&[base.clone(), deleted], &bundle));
    assert!(m.contains("weights.bin") && m.contains("missing"), "{m}");
    // A later layer adds a file the signature does not cover.
    let added = layer(&[("models/extra.py", b"import os")]);
    let m = mismatch(check(&[base.clone(), added], &bundle));
    assert!(m.contains("extra.py"), "{m}");
}

#[test]
fn another_key_is_refused_before_any_layer_is_read() {
    let d = tempfile::tempdir().unwrap();
    let bundle = sign_dir(&model(d.path()));
    let read = std::cell::Cell::new(false);
    let layers = std::iter::from_fn(|| {
        read.set(true);
        None::<(Compression, &[u8])>
    });
    let e = verify_modelcar(layers, "/models", &bundle, &verifier("keys/p384.pub")).unwrap_err();
    assert_eq!(e.kind(), "key_mismatch", "{e}");
    assert!(!read.get(), "a layer was asked for");
}
