//! `ClusterModelValidation` (`ml.sigstore.dev/v1alpha1`, cluster-scoped, short name `cmv`):
//! a trust policy the platform team declares once for many namespaces. It governs every pod its
//! selectors match, with no opt-out by pod label, and names one or more authorities and how
//! many of them must vouch (docs/design/cluster-policies.md).

use k8s_openapi::api::core::v1::ResourceRequirements;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, LabelSelector, Time};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use kube::{CustomResource, KubeSchema};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::{ContinuousValidation, ImagesSpec, ModelSpec};

/// At most this many authorities per policy: the engine's own limit
/// (`model_signing::authorities::MAX_AUTHORITIES`).
pub const MAX_AUTHORITIES: usize = 32;

/// At most this many failures are kept in `status.recentFailures`.
pub const MAX_RECENT_FAILURES: usize = 10;

/// Which pods must load a model signed by whom, across namespaces.
#[derive(CustomResource, KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[kube(
    group = "ml.sigstore.dev",
    version = "v1alpha1",
    kind = "ClusterModelValidation",
    shortname = "cmv",
    status = "ClusterModelValidationStatus",
    printcolumn = r#"{"name":"Mode","type":"string","jsonPath":".spec.mode"}"#,
    printcolumn = r#"{"name":"Ready","type":"string","jsonPath":".status.conditions[?(@.type==\"Ready\")].status"}"#,
    printcolumn = r#"{"name":"Namespaces","type":"integer","jsonPath":".status.matchedNamespaces"}"#,
    printcolumn = r#"{"name":"Injected","type":"integer","jsonPath":".status.injectedPodCount"}"#,
    printcolumn = r#"{"name":"Verified","type":"integer","jsonPath":".status.verifiedCount"}"#,
    printcolumn = r#"{"name":"Failed","type":"integer","jsonPath":".status.failedCount"}"#,
    printcolumn = r#"{"name":"Age","type":"date","jsonPath":".metadata.creationTimestamp"}"#
)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = Rule::new("has(self.model) || has(self.images)").message("set spec.model (a model in the pods' files), spec.images (models in the pods' image volumes), or both"))]
#[x_kube(validation = Rule::new("!has(self.requiredAuthorities) || type(self.requiredAuthorities) == string || self.requiredAuthorities <= size(self.authorities)").message("requiredAuthorities asks for more authorities than spec.authorities lists"))]
pub struct ClusterModelValidationSpec {
    /// The namespaces whose pods this policy governs (required; `{}` selects every namespace
    /// but the operator's own and `kube-system`). Only labels the platform team controls make
    /// a boundary: tenants usually cannot relabel their namespace.
    pub namespace_selector: LabelSelector,
    /// The pods it governs in those namespaces (default: every pod). A pod's author chooses
    /// its labels, so a pod selector is a convenience, not a boundary.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pod_selector: Option<LabelSelector>,
    /// Where the model and its signature are in every governed pod, and which files count
    /// (optional when `images` is set: governed pods then get no verification container).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model: Option<ModelSpec>,
    /// Models governed pods mount as image volumes (`spec.volumes[].image`), verified at
    /// admission from the registry with these authorities and pinned to the digest that
    /// verified.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub images: Option<ImagesSpec>,
    /// Who may have signed the model: public keys, certificate authorities and keyless
    /// identities, checked in this order.
    #[schemars(length(min = 1, max = 32))]
    #[x_kube(validation = Rule::new("self.all(a, self.exists_one(b, b.name == a.name))").message("spec.authorities: every authority needs its own name"))]
    pub authorities: Vec<Authority>,
    /// How many authorities must vouch: `any` (default; key rotation), `all` (co-signing) or a
    /// count.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[x_kube(validation = Rule::new("type(self) == int ? self >= 1 : self in ['any', 'all']").message("requiredAuthorities must be any, all or a count of at least 1"))]
    pub required_authorities: Option<IntOrString>,
    /// `enforce` (default) refuses what fails, `warn` admits with a warning, `audit` only
    /// records the outcome. The API server fills in the default, so `kubectl get cmv` shows it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(extend("default" = "enforce"))]
    pub mode: Option<Mode>,
    /// Pull policy of the injected containers (default: the operator's setting).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[x_kube(validation = Rule::new("self in ['Always', 'IfNotPresent', 'Never']").message("imagePullPolicy must be Always, IfNotPresent or Never"))]
    pub image_pull_policy: Option<String>,
    /// Periodic re-verification while the pod runs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub continuous_validation: Option<ContinuousValidation>,
    /// Resources of the injected containers (default: requests 50m/64Mi, limits 1 CPU/256Mi).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resources: Option<ResourceRequirements>,
}

/// What a failed verification does to the pod.
#[derive(JsonSchema, Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Default)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    /// Refused at admission, or the app never starts.
    #[default]
    Enforce,
    /// Admitted with an admission warning; the verifier reports and lets the app start.
    Warn,
    /// Admitted silently; the outcome is recorded in status, Events and metrics.
    Audit,
}

impl Mode {
    /// As the spec writes it, and as metrics label it.
    pub fn as_str(self) -> &'static str {
        match self {
            Mode::Enforce => "enforce",
            Mode::Warn => "warn",
            Mode::Audit => "audit",
        }
    }
}

/// One authority: exactly one of `key`, `certificateAuthority` and `keyless`.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = Rule::new("[has(self.key), has(self.certificateAuthority), has(self.keyless)].filter(x, x).size() == 1").message("an authority sets exactly one of key, certificateAuthority and keyless"))]
pub struct Authority {
    /// How messages, status and metrics name it (a DNS label, e.g. `release-2026`).
    #[schemars(length(min = 1, max = 63))]
    #[x_kube(validation = Rule::new("self.matches('^[a-z0-9]([-a-z0-9]*[a-z0-9])?$')").message("an authority's name must be a DNS label: lower-case letters, digits and '-'"))]
    pub name: String,
    /// Its own signature file in the pod (default: `model.signaturePath`); co-signers each
    /// sign into their own file.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[x_kube(validation = Rule::new("self.startsWith('/')").message("signaturePath must be an absolute path inside the pod"))]
    pub signature_path: Option<String>,
    /// A public key (PEM).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key: Option<PemSource>,
    /// CA certificates the signing certificate must chain to (PEM).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub certificate_authority: Option<PemSource>,
    /// A keyless (Sigstore) identity.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub keyless: Option<KeylessAuthority>,
}

/// PEM text: inline, or one key of a Secret or ConfigMap in the operator's namespace (where
/// only the platform team can write).
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = Rule::new("[has(self.pem), has(self.secretRef), has(self.configMapRef)].filter(x, x).size() == 1").message("set exactly one of pem, secretRef and configMapRef"))]
pub struct PemSource {
    /// The PEM block(s).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 65536))]
    #[x_kube(validation = Rule::new("self.contains('-----BEGIN ')").message("pem must hold PEM text (-----BEGIN ...)"))]
    pub pem: Option<String>,
    /// A key of a Secret in the operator's namespace.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret_ref: Option<KeyRef>,
    /// A key of a ConfigMap in the operator's namespace.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub config_map_ref: Option<KeyRef>,
}

/// JSON text (a Sigstore trusted root): inline, or from a Secret or ConfigMap in the operator's
/// namespace.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = Rule::new("[has(self.json), has(self.secretRef), has(self.configMapRef)].filter(x, x).size() == 1").message("set exactly one of json, secretRef and configMapRef"))]
pub struct JsonSource {
    /// The JSON document.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 65536))]
    pub json: Option<String>,
    /// A key of a Secret in the operator's namespace.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret_ref: Option<KeyRef>,
    /// A key of a ConfigMap in the operator's namespace.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub config_map_ref: Option<KeyRef>,
}

/// One key of a Secret or ConfigMap in the operator's namespace.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Eq, Default)]
#[serde(rename_all = "camelCase")]
pub struct KeyRef {
    /// The object's name.
    #[schemars(length(min = 1, max = 253))]
    pub name: String,
    /// The key in its `data`.
    #[schemars(length(min = 1, max = 253))]
    pub key: String,
}

/// Who may have signed keyless: the certificate's identity and OIDC issuer, each exact or a
/// regular expression that must match in full.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = Rule::new("[has(self.identity), has(self.identityRegexp)].filter(x, x).size() == 1").message("keyless sets exactly one of identity and identityRegexp"))]
#[x_kube(validation = Rule::new("[has(self.issuer), has(self.issuerRegexp)].filter(x, x).size() == 1").message("keyless sets exactly one of issuer and issuerRegexp"))]
pub struct KeylessAuthority {
    /// The signer's identity (a SAN of the certificate), exactly.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub identity: Option<String>,
    /// Or a regular expression the identity must match in full.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 1024))]
    pub identity_regexp: Option<String>,
    /// The OIDC issuer, exactly.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub issuer: Option<String>,
    /// Or a regular expression the issuer must match in full.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 1024))]
    pub issuer_regexp: Option<String>,
    /// A private Sigstore deployment's trusted root (default: Sigstore's public-good root).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trusted_root: Option<JsonSource>,
}

/// A recent verification failure, in a namespace the policy governs.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
#[serde(rename_all = "camelCase")]
pub struct PolicyFailure {
    /// The pod's namespace.
    pub namespace: String,
    /// The pod.
    pub pod: String,
    /// When it failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub time: Option<Time>,
    /// The verifier's message.
    pub message: String,
}

/// What the operator observed for a cluster policy.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
#[serde(rename_all = "camelCase")]
pub struct ClusterModelValidationStatus {
    /// `Ready`: whether the policy can be applied (selectors valid, references resolved).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<Condition>,
    /// The generation the status describes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// Namespaces the policy governs.
    #[serde(default)]
    pub matched_namespaces: i32,
    /// Governed pods with the policy's verifier.
    #[serde(default)]
    pub injected_pod_count: i32,
    /// Governed pods whose verification succeeded.
    #[serde(default)]
    pub verified_count: i32,
    /// Governed pods whose verification failed (in `warn` and `audit`, the pods that
    /// `enforce` would have stopped).
    #[serde(default)]
    pub failed_count: i32,
    /// The latest failures, newest first (at most 10).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 10))]
    pub recent_failures: Vec<PolicyFailure>,
    /// Last status write.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_updated: Option<Time>,
}

impl ClusterModelValidationSpec {
    /// The mode, with its default.
    pub fn mode(&self) -> Mode {
        self.mode.unwrap_or_default()
    }
}
