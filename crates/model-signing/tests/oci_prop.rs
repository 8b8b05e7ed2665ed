//! Property tests of the OCI manifest parser and the ModelPack mapping (model_signing::oci), as
//! the `oci_manifest` fuzz target checks them: no panic on any bytes or any JSON manifest;
//! what maps to files never leaves the model root, names each file once and is sorted; a packed
//! model maps back to exactly its files; an unsafe path or a non-sha256 digest in any layer is
//! refused.

use model_signing::hashing::sha256;
use model_signing::name::ModelPath;
use model_signing::oci::manifest::parse;
use model_signing::oci::modelpack::{ANNOTATION_FILEPATH, PackFile, files, pack};
use model_signing::oci::{ArtifactError, check};
use proptest::prelude::*;

/// Path components: short names, with characters that matter to paths (dots, colons, spaces,
/// non-ASCII).
fn component() -> impl Strategy<Value = String> {
    prop::string::string_regex("[a-zA-Z0-9._: é-]{1,8}")
        .unwrap()
        .prop_filter("not . or ..", |c| c != "." && c != "..")
}

fn model_files() -> impl Strategy<Value = Vec<PackFile>> {
    prop::collection::btree_map(
        prop::collection::vec(component(), 1..4),
        (any::<u8>(), 0u64..1 << 40),
        1..12,
    )
    .prop_map(|m| {
        m.into_iter()
            .map(|(parts, (seed, size))| PackFile {
                path: ModelPath::parse(&parts.join("/")).unwrap(),
                sha256: sha256(&[seed]),
                size,
            })
            .collect::<Vec<_>>()
    })
    // A file cannot also be a directory of another.
    .prop_filter("no file is a directory of another", |fs| {
        fs.iter().all(|a| {
            fs.iter()
                .all(|b| a.path == b.path || !b.path.starts_with(&a.path))
        })
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn parse_never_panics_on_bytes(bytes in prop::collection::vec(any::<u8>(), 0..512)) {
        if let Ok(m) = parse(&bytes) {
            let _ = files(&m);
        }
    }

    #[test]
    fn a_packed_model_maps_back_to_its_files(fs in model_files()) {
        let packed = pack("m", &fs).unwrap();
        let got = files(&parse(&packed.manifest).unwrap()).unwrap();
        let mut want: Vec<(String, Vec<u8>)> =
            fs.iter().map(|f| (f.path.to_string(), f.sha256.to_vec())).collect();
        want.sort_by(|a, b| ModelPath::parse(&a.0).unwrap().cmp(&ModelPath::parse(&b.0).unwrap()));
        let have: Vec<(String, Vec<u8>)> =
            got.resources.iter().map(|r| (r.name.to_string(), r.digest.clone())).collect();
        prop_assert_eq!(have, want);
        prop_assert_eq!(got.bytes, fs.iter().map(|f| f.size).sum::<u64>());
        // The statement made from it parses and lists the same files.
        let st = check::statement_for_manifest(&packed.manifest, "m").unwrap();
        let parsed = model_signing::statement::parse(&st.payload).unwrap();
        prop_assert_eq!(parsed.resources, got.resources);
    }

    #[test]
    fn any_json_layer_list_maps_only_safe_unique_paths(
        layers in prop::collection::vec(
            (
                prop::sample::select(vec![
                    "application/vnd.cncf.model.weight.v1.raw",
                    "application/vnd.cncf.model.doc.v1.raw",
                    "application/vnd.cncf.model.weight.v1.tar",
                    "application/octet-stream",
                ]),
                prop::option::of(prop::string::string_regex("[a./\\\\:é\\x00-]{0,10}").unwrap()),
                prop::sample::select(vec![
                    format!("sha256:{}", "a".repeat(64)),
                    format!("sha256:{}", "b".repeat(64)),
                    format!("sha256:{}", "C".repeat(64)),
                    format!("sha512:{}", "a".repeat(128)),
                    "".to_string(),
                ]),
                any::<i64>(),
            ),
            0..6,
        ),
    ) {
        let layers: Vec<serde_json::Value> = layers
            .iter()
            .map(|(mt, path, digest, size)| {
                let mut l = serde_json::json!({"mediaType": mt, "digest": digest, "size": size});
                if let Some(p) = path {
                    l["annotations"] = serde_json::json!({ ANNOTATION_FILEPATH: p });
                }
                l
            })
            .collect();
        let doc = serde_json::json!({
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "artifactType": "application/vnd.cncf.model.manifest.v1+json",
            "config": {"mediaType": "application/vnd.cncf.model.config.v1+json", "digest": "sha256:00", "size": 2},
            "layers": layers,
        });
        let Ok(m) = parse(&serde_json::to_vec(&doc).unwrap()) else { return Ok(()) };
        if let Ok(got) = files(&m) {
            let mut seen = std::collections::BTreeSet::new();
            for r in &got.resources {
                let p = r.name.path.to_string();
                prop_assert!(!p.starts_with('/') && !p.split('/').any(|c| c == ".." || c == "." || c.is_empty()), "{p}");
                prop_assert!(seen.insert(p.clone()), "{p} twice");
                prop_assert_eq!(r.digest.len(), 32);
            }
            let mut sorted = got.resources.clone();
            model_signing::manifest::sort_resources(&mut sorted);
            prop_assert_eq!(sorted, got.resources);
        }
    }

    #[test]
    fn an_unsafe_path_or_digest_in_any_layer_is_refused(
        fs in model_files(),
        at in any::<prop::sample::Index>(),
        bad in prop::sample::select(vec!["../x", "/etc/passwd", "a/../../b", "a//b", "./a", "", "a\u{0}b", "."]),
        digest in prop::bool::ANY,
    ) {
        let packed = pack("m", &fs).unwrap();
        let mut m = parse(&packed.manifest).unwrap();
        let i = at.index(m.layers.len());
        if digest {
            m.layers[i].digest = m.layers[i].digest.replace("sha256:", "sha384:");
            let refused = matches!(files(&m), Err(ArtifactError::BadDigest { index, .. }) if index == i);
            prop_assert!(refused);
        } else {
            m.layers[i].annotations.insert(ANNOTATION_FILEPATH.into(), bad.to_string());
            let refused = matches!(files(&m), Err(ArtifactError::BadPath { index, .. }) if index == i);
            prop_assert!(refused);
        }
    }
}
