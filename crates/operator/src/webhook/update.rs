//! Changes to an injected pod after admission. A pod's containers are fixed once it exists, but
//! their images, its labels and annotations can be updated, and ephemeral containers added
//! (`pods/ephemeralcontainers`). None of that may undo verification: the verifier's image,
//! the policy labels and the injection annotations stay as admitted, and no ephemeral container
//! may mount the model's volumes writable.

use std::collections::BTreeSet;

use k8s_openapi::api::core::v1::Pod;

use crate::names::{GOVERNED_LABEL, LABEL, LEGACY_LABEL, annotations, is_injected};

/// Why the change from `old` to `new` is refused, if it is.
pub fn refused(old: &Pod, new: &Pod) -> Option<String> {
    let old_spec = old.spec.as_ref()?;
    let injected: Vec<_> = old_spec
        .init_containers
        .iter()
        .flatten()
        .chain(old_spec.containers.iter())
        .filter(|c| is_injected(&c.name))
        .collect();
    if injected.is_empty() {
        return None;
    }
    let fix = "delete the pod and create it again, so that it is verified as it will run";
    let new_spec = new.spec.as_ref()?;
    for before in &injected {
        let after = new_spec
            .init_containers
            .iter()
            .flatten()
            .chain(new_spec.containers.iter())
            .find(|c| c.name == before.name);
        let (was, is) = (
            before.image.as_deref(),
            after.and_then(|c| c.image.as_deref()),
        );
        if was != is {
            return Some(format!(
                "the image of container {:?} verified this pod's model; changing it from {} to {} after admission is refused: {fix}",
                before.name,
                was.unwrap_or("(none)"),
                is.unwrap_or("(none)")
            ));
        }
    }
    let label = |p: &Pod, k: &str| p.metadata.labels.as_ref().and_then(|l| l.get(k)).cloned();
    for (key, records) in [
        (
            LABEL,
            "chose the ModelValidation this pod was verified with",
        ),
        (
            LEGACY_LABEL,
            "chose the ModelValidation this pod was verified with",
        ),
        (
            GOVERNED_LABEL,
            "marks this pod as verified by cluster policies",
        ),
    ] {
        let (was, is) = (label(old, key), label(new, key));
        if was != is {
            return Some(format!(
                "pod label {key} {records} ({}); changing it to {} after admission is refused: {fix}",
                was.as_deref().unwrap_or("unset"),
                is.as_deref().unwrap_or("unset")
            ));
        }
    }
    let annotation = |p: &Pod, k: &str| {
        p.metadata
            .annotations
            .as_ref()
            .and_then(|a| a.get(k))
            .cloned()
    };
    for key in [
        annotations::INJECTED_BY,
        annotations::CONFIG_HASH,
        annotations::CLUSTER_POLICIES,
        annotations::ADMISSION_FINDINGS,
    ] {
        if annotation(old, key) != annotation(new, key) {
            return Some(format!(
                "annotation {key} records how this pod was verified; changing it after admission is refused: {fix}"
            ));
        }
    }
    // The volumes the verifier mounted hold the model, and so does any other name for them.
    let mounted: BTreeSet<String> = injected
        .iter()
        .flat_map(|c| c.volume_mounts.iter().flatten())
        .map(|m| m.name.clone())
        .collect();
    let model_volumes = super::view::aliases(old, &mounted);
    let existing: BTreeSet<&str> = old_spec
        .ephemeral_containers
        .iter()
        .flatten()
        .map(|c| c.name.as_str())
        .collect();
    for e in new_spec.ephemeral_containers.iter().flatten() {
        if existing.contains(e.name.as_str()) {
            continue;
        }
        for m in e.volume_mounts.iter().flatten() {
            if model_volumes.contains(&m.name) && m.read_only != Some(true) {
                return Some(format!(
                    "ephemeral container {:?} mounts volume {:?}, which holds the verified model, writable at {}: add readOnly: true to that volume mount",
                    e.name, m.name, m.mount_path
                ));
            }
        }
    }
    None
}
