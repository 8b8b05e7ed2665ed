//! Every name the operator shares with the cluster: pod labels, annotations, the injected
//! containers, the field manager and the Event reporter. They are part of the API users write
//! manifests against, so they live here once and nowhere else.

/// Pod label naming the ModelValidation (in the pod's namespace) that applies.
pub const LABEL: &str = "validation.ml.sigstore.dev/ml";
/// The first published API's pod label: `"true"` means "the one ModelValidation here".
pub const LEGACY_LABEL: &str = "validation.rhtas.redhat.com/ml";
/// Pod label the webhook sets to `"true"` on pods it gave a cluster policy's verifier, so that
/// the status controller can watch exactly those pods (annotations cannot be selected).
pub const GOVERNED_LABEL: &str = "validation.ml.sigstore.dev/governed";
/// Namespace label that brings a namespace in the reach of cluster policies, with the value
/// `"true"` (the default of `--cluster-policy-namespaces` and of the webhooks for cluster
/// policies in deploy/base). As policy-controller's `policy.sigstore.dev/include`: only the
/// platform team can label namespaces, and namespaces without it never wait on the operator.
pub const INCLUDE_NAMESPACE_LABEL: &str = "validation.ml.sigstore.dev/include";
/// Namespace label that switches injection off for a namespace.
pub const IGNORE_NAMESPACE_LABEL: &str = "validation.ml.sigstore.dev/ignore";

/// Name of the injected one-shot verification init container.
pub const VERIFY_CONTAINER: &str = "model-validation";
/// Name of the continuous-validation sidecar.
pub const WATCH_CONTAINER: &str = "model-validation-watch";
/// Prefix of the containers injected for a `ClusterModelValidation` (see
/// [`cluster_containers`]). Reserved: a pod may not bring its own container with this prefix.
pub const CLUSTER_CONTAINER_PREFIX: &str = "cmv-";

/// Whether a container of this name is one the operator injects (or a look-alike of one).
pub fn is_injected(container: &str) -> bool {
    container == VERIFY_CONTAINER
        || container == WATCH_CONTAINER
        || container.starts_with(CLUSTER_CONTAINER_PREFIX)
}

/// The names of the verifier and of the continuous-validation sidecar injected for the
/// `ClusterModelValidation` `policy`: `cmv-<policy>` and `cmv-<policy>-watch`. A container name
/// is a DNS label of at most 63 characters; a policy name that is not one, or is longer than
/// 53 characters, is shortened to 44 characters (dots become '-') plus '-' and 8 hex digits of
/// its SHA-256, so that two policies never share a name.
pub fn cluster_containers(policy: &str) -> (String, String) {
    let is_label = !policy.is_empty()
        && policy.len() <= 53
        && policy
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
    let label = if is_label {
        policy.to_string()
    } else {
        use sha2::{Digest, Sha256};
        let short: String = policy
            .chars()
            .take(44)
            .map(|c| {
                if c.is_ascii_alphanumeric() {
                    c.to_ascii_lowercase()
                } else {
                    '-'
                }
            })
            .collect();
        let digest = hex::encode(Sha256::digest(policy.as_bytes()));
        format!("{}-{}", short.trim_end_matches('-'), &digest[..8])
    };
    (
        format!("{CLUSTER_CONTAINER_PREFIX}{label}"),
        format!("{CLUSTER_CONTAINER_PREFIX}{label}-watch"),
    )
}

/// Field manager of every server-side apply the operator makes, and the Events' reporter.
pub const FIELD_MANAGER: &str = "model-validation-operator";

/// Pod annotations: those a pod author may set to tighten verification, and those the
/// operator sets on the pods it injects.
pub mod annotations {
    /// `"false"` makes git paths part of the check.
    pub const IGNORE_GIT_PATHS: &str = "validation.ml.sigstore.dev/ignore-git-paths";
    /// `"false"` requires every file to be signed.
    pub const IGNORE_UNSIGNED_FILES: &str = "validation.ml.sigstore.dev/ignore-unsigned-files";
    /// `"false"` refuses symlinks.
    pub const ALLOW_SYMLINKS: &str = "validation.ml.sigstore.dev/allow-symlinks";
    /// Extra ignore paths: never honoured (they would loosen).
    pub const IGNORE_PATHS: &str = "validation.ml.sigstore.dev/ignore-paths";
    /// Set on injected pods: which ModelValidation applied.
    pub const INJECTED_BY: &str = "validation.ml.sigstore.dev/injected-by";
    /// Set on injected pods: the ClusterModelValidations that applied, comma-separated, in the
    /// order their verifiers run.
    pub const CLUSTER_POLICIES: &str = "validation.ml.sigstore.dev/cluster-policies";
    /// Set on injected pods: the `crd::config_hash` of the spec they were injected under; the
    /// status controller counts a pod with another hash as orphaned (spec drift).
    pub const CONFIG_HASH: &str = "validation.ml.sigstore.dev/config-hash";
    /// Set on pods that a cluster policy in `warn` or `audit` mode would have refused at
    /// admission (a JSON object: policy name to the refusal), so that its status counts them.
    pub const ADMISSION_FINDINGS: &str = "validation.ml.sigstore.dev/admission-findings";
    /// Set on pods whose image volumes admission verified and pinned: `volume=reference`
    /// pairs, comma-separated, in volume-name order. The ValidatingAdmissionPolicy
    /// `model-validation-images.ml.sigstore.dev` refuses a pod whose volume no longer carries
    /// the pinned reference (a webhook after ours that put a tag back), and the one for
    /// labelled pods expects no verifier container on a pod whose ModelValidation verifies
    /// images only (pinned, and no `injected-by`).
    pub const PINNED_IMAGES: &str = "validation.ml.sigstore.dev/pinned-images";
    /// The prefix of every annotation above (the status controller keeps only these).
    pub const PREFIX: &str = "validation.ml.sigstore.dev/";
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cluster_container_names_are_dns_labels_and_distinct() {
        assert_eq!(
            cluster_containers("org-llms"),
            ("cmv-org-llms".into(), "cmv-org-llms-watch".into())
        );
        let long = "a".repeat(60);
        let dotted = ["team.a", "team-a"];
        let mut seen = std::collections::BTreeSet::new();
        for p in [
            long.as_str(),
            dotted[0],
            dotted[1],
            "x.y.z",
            &"b".repeat(253),
        ] {
            let (verify, watch) = cluster_containers(p);
            for n in [&verify, &watch] {
                assert!(n.len() <= 63, "{n}");
                assert!(
                    n.bytes()
                        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-'),
                    "{n}"
                );
                assert!(!n.ends_with('-') && is_injected(n), "{n}");
            }
            assert!(seen.insert(verify), "{p}");
        }
        assert!(!is_injected("app") && !is_injected("model-validation-x"));
    }
}
