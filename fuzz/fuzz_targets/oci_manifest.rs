//! OCI image manifests as a registry serves them: `oci::manifest::parse`, the ModelPack mapping
//! to files (`oci::modelpack::files`), the statement signing builds from them and a bundle
//! verified against them with the fixture key (`oci::check`). Mapped files never leave the
//! model root and are named once; their statement parses back to the same files; nothing but
//! the fixture key's own signature of these files verifies.
#![no_main]

use std::sync::LazyLock;

use libfuzzer_sys::fuzz_target;
use model_signing::keys::PublicKey;
use model_signing::oci::{check, manifest, modelpack};
use model_signing::verify::KeyVerifier;
use model_validation_operator_fuzz::fixture;

static VERIFIER: LazyLock<KeyVerifier> = LazyLock::new(|| {
    let pem = fixture("peer-samples/ec-p256.pub.pem");
    KeyVerifier::new(PublicKey::from_pem("p256", &pem).unwrap(), "p256")
});

static BUNDLE: LazyLock<Vec<u8>> = LazyLock::new(|| fixture("peer-samples/key-p256.model.sig"));

fuzz_target!(|data: &[u8]| {
    let Ok(m) = manifest::parse(data) else {
        return;
    };
    // A peer bundle over other files never verifies against a fuzzed manifest, unless the
    // manifest lists exactly the files that bundle signs.
    let verified = check::verify_manifest(data, &BUNDLE, &*VERIFIER);
    let Ok(files) = modelpack::files(&m) else {
        assert!(verified.is_err());
        return;
    };
    let mut seen = std::collections::BTreeSet::new();
    for r in &files.resources {
        let p = r.name.path.to_string();
        assert!(!p.starts_with('/') && !p.split('/').any(|c| c.is_empty() || c == "." || c == ".."));
        assert!(seen.insert(p));
    }
    let st = check::statement_for_manifest(data, "fuzz").unwrap();
    let parsed = model_signing::statement::parse(&st.payload).unwrap();
    assert_eq!(parsed.resources, files.resources);
    if let Ok(ok) = verified {
        assert_eq!(ok.manifest.resources, files.resources);
    }
});
