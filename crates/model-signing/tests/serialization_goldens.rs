//! The peer's serialization and payload goldens (model-transparency `tests/_serialization` and
//! `tests/_signing/testdata/signing/TestPayload`), rebuilt from the same fixture models.

mod support;

use std::collections::BTreeSet;
use std::fs;
use std::path::{Path, PathBuf};

use model_signing::hashing::HashAlgorithm;
use model_signing::manifest::{Method, Serialization};
use model_signing::serialize::{HashOptions, serialize_model};
use model_signing::statement;
use model_signing::walk::Selection;
use serde_json::Value;

/// The peer's serialization and payload goldens.
fn goldens() -> PathBuf {
    support::fixture("model-transparency/tests")
}

/// Builds the models of upstream's `tests/conftest.py` under `dir`; returns (fixture, path).
fn fixture_models(dir: &Path) -> Vec<(&'static str, PathBuf)> {
    let w = |p: PathBuf, s: &str| {
        fs::create_dir_all(p.parent().unwrap()).unwrap();
        fs::write(p, s).unwrap();
    };
    let file = dir.join("file_model");
    w(file.clone(), "This is a simple model");
    let folder = dir.join("sample_model");
    for i in 0..2 {
        for j in 0..3 {
            w(
                folder.join(format!("d{i}/f{i}{j}")),
                &format!("This is file f{i}{j} in d{i}."),
            );
        }
    }
    for i in 0..4 {
        w(
            folder.join(format!("f{i}")),
            &format!("This is file f{i} in root."),
        );
    }
    let empty_file = dir.join("empty_file_model");
    w(empty_file.clone(), "");
    let empty_folder = dir.join("empty_folder_model");
    fs::create_dir_all(&empty_folder).unwrap();
    let with_empty = dir.join("empty_file_inside_model");
    w(with_empty.join("empty_file"), "");
    let deep = dir.join("deep_model");
    for i in 0..4 {
        w(
            deep.join(format!("d0/d1/d2/d3/d4/f{i}")),
            &format!("This is file f{i}."),
        );
    }
    let symlink = dir.join("symlink_model");
    fs::create_dir_all(&symlink).unwrap();
    w(dir.join("outside/external"), "This is a simple model");
    std::os::unix::fs::symlink(dir.join("outside/external"), symlink.join("symlink_file")).unwrap();
    vec![
        ("sample_model_file", file),
        ("sample_model_folder", folder),
        ("empty_model_file", empty_file),
        ("empty_model_folder", empty_folder),
        ("model_folder_with_empty_file", with_empty),
        ("deep_model_folder", deep),
        ("symlink_model_folder", symlink),
    ]
}

fn serialize(model: &Path, method: Method) -> Vec<model_signing::manifest::Resource> {
    let sel = Selection {
        allow_symlinks: true,
        ..Default::default()
    };
    serialize_model(
        model,
        &sel,
        method,
        HashAlgorithm::Sha256,
        &BTreeSet::new(),
        &HashOptions::default(),
    )
    .unwrap()
    .resources
}

fn manifest_text(resources: &[model_signing::manifest::Resource]) -> String {
    resources
        .iter()
        .map(|r| format!("{}:{}\n", r.name, hex::encode(&r.digest)))
        .collect()
}

#[test]
fn serialization_goldens_match() {
    let d = tempfile::tempdir().unwrap();
    let mut checked = 0;
    for (name, model) in fixture_models(d.path()) {
        let cases = [
            ("file", name.to_string(), Method::Files),
            (
                "file_shard",
                name.to_string(),
                Method::Shards {
                    shard_size: 1_000_000_000,
                },
            ),
            (
                "file_shard",
                format!("{name}_small_shards"),
                Method::Shards { shard_size: 8 },
            ),
        ];
        for (dir, golden, method) in cases {
            let path = format!(
                "{}/_serialization/testdata/{dir}/TestSerializer/{golden}",
                goldens().display()
            );
            let Ok(expected) = fs::read_to_string(&path) else {
                continue;
            };
            let actual = manifest_text(&serialize(&model, method));
            assert_eq!(actual.trim_end(), expected.trim_end(), "{dir}/{golden}");
            checked += 1;
        }
    }
    assert_eq!(checked, 21, "every serialization golden is compared");
}

/// The peer writes `shard_size` as a float; compare numbers by value.
fn normalize(mut v: Value) -> Value {
    if let Some(size) = v.pointer_mut("/predicate/serialization/shard_size") {
        *size = Value::from(size.as_f64().unwrap() as u64);
    }
    v
}

#[test]
fn payload_goldens_match_our_statements() {
    let d = tempfile::tempdir().unwrap();
    let mut checked = 0;
    for (name, model) in fixture_models(d.path()) {
        for (suffix, method) in [
            ("", Method::Files),
            (
                "_shard",
                Method::Shards {
                    shard_size: 1_000_000_000,
                },
            ),
            ("_small_shards", Method::Shards { shard_size: 8 }),
        ] {
            let path = format!(
                "{}/_signing/testdata/signing/TestPayload/{name}{suffix}",
                goldens().display()
            );
            let golden: Value = serde_json::from_str(&fs::read_to_string(&path).unwrap()).unwrap();
            let serialization = Serialization {
                method,
                hash: HashAlgorithm::Sha256,
                allow_symlinks: true,
                ignore_paths: Vec::new(),
            };
            let resources = serialize(&model, method);
            let model_name = model_signing::sign::model_name(&model);
            let ours: Value =
                serde_json::from_slice(&statement::build(&model_name, &serialization, &resources))
                    .unwrap();
            assert_eq!(normalize(ours), normalize(golden.clone()), "{name}{suffix}");
            // The golden itself parses, except the empty manifests we refuse on purpose.
            let parsed = statement::parse(golden.to_string().as_bytes());
            if resources.is_empty() {
                assert!(
                    matches!(parsed, Err(statement::StatementError::Empty)),
                    "{name}{suffix}"
                );
            } else {
                assert_eq!(parsed.unwrap().resources, resources, "{name}{suffix}");
            }
            checked += 1;
        }
    }
    assert_eq!(checked, 21);
}
