//! The CRD YAML in deploy/crds/ is generated from the Rust types; this fails when it drifts.
//! Regenerate with `make crds` (which runs this test with `UPDATE_CRDS=1`).

use std::path::Path;

use test_cluster::support::update_requested;

/// Where the generated CRDs live: the kustomize base's and the Helm chart's copies (`crds/`,
/// which `helm install` applies), byte for byte the same.
const CRD_DIRS: [&str; 2] = [
    "../../deploy/crds",
    "../../deploy/helm/model-validation-operator/crds",
];

#[test]
fn deploy_crds_match_the_rust_types() {
    let update = update_requested("UPDATE_CRDS");
    for dir in CRD_DIRS {
        check_or_write(&Path::new(env!("CARGO_MANIFEST_DIR")).join(dir), update);
    }
}

fn check_or_write(dir: &Path, update: bool) {
    for (file, yaml) in model_validation_operator::crd::crd_yaml() {
        let path = dir.join(file);
        if update {
            std::fs::create_dir_all(dir).unwrap();
            std::fs::write(&path, &yaml).unwrap();
            continue;
        }
        let on_disk = std::fs::read_to_string(&path).unwrap_or_default();
        assert!(
            on_disk == yaml,
            "{} is out of date with the Rust types in crates/operator/src/crd.rs: run `make crds` and commit the result",
            path.display()
        );
    }
}
