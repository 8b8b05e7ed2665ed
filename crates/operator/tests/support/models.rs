//! Models on disk and their signatures.

use std::path::Path;

use model_signing::hashing::HashAlgorithm;
use model_signing::keys::PrivateKey;
use model_signing::manifest::Method;
use model_signing::name::ModelPath;
use model_signing::serialize::HashOptions;
use model_signing::sign::{KeySigner, Signer, sign_model};
use model_signing::walk::Selection;

use super::fixture;

/// Writes a three-file model (`weights.bin`, `config.json`, `sub/tokenizer.json`) into `dir`.
pub fn write_model(dir: &Path) {
    std::fs::create_dir_all(dir.join("sub")).unwrap();
    std::fs::write(dir.join("weights.bin"), vec![7u8; 100_000]).unwrap();
    std::fs::write(dir.join("config.json"), "{\"layers\": 2}").unwrap();
    std::fs::write(dir.join("sub/tokenizer.json"), "[]").unwrap();
}

/// Signs the model in `model` file by file with SHA-256 and writes the bundle to `signature`.
/// A signature inside the model directory is left out of what it signs.
pub fn sign(model: &Path, signer: &dyn Signer, signature: &Path) {
    let ignore_paths = match (signature.parent(), signature.file_name()) {
        (Some(parent), Some(name)) if parent == model => {
            vec![ModelPath::parse(&name.to_string_lossy()).unwrap()]
        }
        _ => vec![],
    };
    let sel = Selection {
        ignore_paths,
        ignore_git_paths: true,
        allow_symlinks: false,
    };
    let (bundle, _) = sign_model(
        model,
        &sel,
        Method::Files,
        HashAlgorithm::Sha256,
        signer,
        &HashOptions::default(),
    )
    .unwrap();
    std::fs::write(signature, bundle.to_json()).unwrap();
}

/// A signer with the P-256 key of the shared fixtures (`peer-samples/ec-p256.priv.pem`); its
/// public key is `peer-samples/ec-p256.pub.pem`.
pub fn ec_key_signer() -> KeySigner {
    let key = PrivateKey::from_pem(
        "key",
        &std::fs::read(fixture("peer-samples/ec-p256.priv.pem")).unwrap(),
        None,
    )
    .unwrap();
    KeySigner::new(key)
}

/// Writes the three-file model into `model`, signs it with [`ec_key_signer`] into
/// `model/model.sig`, and puts the public key at `keys/pub.pem`.
pub fn signed_model_and_key(model: &Path, keys: &Path) {
    write_model(model);
    sign(model, &ec_key_signer(), &model.join("model.sig"));
    std::fs::create_dir_all(keys).unwrap();
    std::fs::copy(
        fixture("peer-samples/ec-p256.pub.pem"),
        keys.join("pub.pem"),
    )
    .unwrap();
}

/// A signer with a P-256 key generated for this run (someone else's key: an attacker's), and
/// its public key PEM.
pub fn fresh_key_signer() -> (KeySigner, String) {
    let pair = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
    let key = PrivateKey::from_pem("fresh", pair.serialize_pem().as_bytes(), None).unwrap();
    (KeySigner::new(key), pair.public_key_pem())
}
