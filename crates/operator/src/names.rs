//! Every name the operator shares with the cluster: pod labels, annotations, the injected
//! containers, the field manager and the Event reporter. They are part of the API users write
//! manifests against, so they live here once and nowhere else.

/// Pod label naming the ModelValidation (in the pod's namespace) that applies.
pub const LABEL: &str = "validation.ml.sigstore.dev/ml";
/// The first published API's pod label: `"true"` means "the one ModelValidation here".
pub const LEGACY_LABEL: &str = "validation.rhtas.redhat.com/ml";
/// Namespace label that switches injection off for a namespace.
pub const IGNORE_NAMESPACE_LABEL: &str = "validation.ml.sigstore.dev/ignore";

/// Name of the injected one-shot verification init container.
pub const VERIFY_CONTAINER: &str = "model-validation";
/// Name of the continuous-validation sidecar.
pub const WATCH_CONTAINER: &str = "model-validation-watch";

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
    /// Set on injected pods: the `crd::config_hash` of the spec they were injected under; the
    /// status controller counts a pod with another hash as orphaned (spec drift).
    pub const CONFIG_HASH: &str = "validation.ml.sigstore.dev/config-hash";
    /// The prefix of every annotation above (the status controller keeps only these).
    pub const PREFIX: &str = "validation.ml.sigstore.dev/";
}
