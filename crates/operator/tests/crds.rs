//! The CRD YAML in deploy/crds/ is generated from the Rust types; this fails when it drifts.
//! Regenerate with `make crds`.

use std::path::Path;

#[test]
fn deploy_crds_match_the_rust_types() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../deploy/crds");
    let update = std::env::var_os("UPDATE_CRDS").is_some();
    for (file, yaml) in model_validation_operator::crd::crd_yaml() {
        let path = dir.join(file);
        if update {
            std::fs::create_dir_all(&dir).unwrap();
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
