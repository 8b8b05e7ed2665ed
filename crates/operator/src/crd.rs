//! The `ModelValidation` API: `ml.sigstore.dev/v1alpha1` (schema-compatible with upstream's
//! latest) and the first published shape, `rhtas.redhat.com/v1alpha1`, which keeps working;
//! and the cluster-wide `ClusterModelValidation` ([`cluster`]).

use k8s_openapi::api::core::v1::ResourceRequirements;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
use kube::{CustomResource, KubeSchema};
use serde::{Deserialize, Serialize};

pub mod cluster;

/// How the models of the pods that name this resource must be signed.
#[derive(CustomResource, KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
#[kube(
    group = "ml.sigstore.dev",
    version = "v1alpha1",
    kind = "ModelValidation",
    namespaced,
    shortname = "mv",
    status = "ModelValidationStatus",
    printcolumn = r#"{"name":"Auth Method","type":"string","jsonPath":".status.authMethod"}"#,
    printcolumn = r#"{"name":"Ready","type":"string","jsonPath":".status.conditions[?(@.type==\"Ready\")].status"}"#,
    printcolumn = r#"{"name":"Injected Pods","type":"integer","jsonPath":".status.injectedPodCount"}"#,
    printcolumn = r#"{"name":"Verified","type":"integer","jsonPath":".status.verifiedCount"}"#,
    printcolumn = r#"{"name":"Failed","type":"integer","jsonPath":".status.failedCount"}"#,
    printcolumn = r#"{"name":"Model Path","type":"string","jsonPath":".spec.model.path"}"#,
    printcolumn = r#"{"name":"Age","type":"date","jsonPath":".metadata.creationTimestamp"}"#
)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = Rule::new("has(self.model) || has(self.images)").message("set spec.model (a model in the pod's files), spec.images (models in the pod's image volumes), or both"))]
#[x_kube(validation = Rule::new("!has(self.images) || !has(self.images.pullSecret)").message("spec.images.pullSecret is for ClusterModelValidations (it names a Secret in the operator's namespace, which tenants must not borrow); a ModelValidation's images are read anonymously, or with the pod's own imagePullSecrets when the operator runs with --pod-pull-secrets"))]
pub struct ModelValidationSpec {
    /// Where the model and its signature are in the pod, and which files count (optional when
    /// `images` is set: the pod then gets no verification container).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model: Option<ModelSpec>,
    /// Models the pod mounts as image volumes (`spec.volumes[].image`), verified at admission
    /// from the registry and pinned to the digest that verified.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub images: Option<ImagesSpec>,
    /// How the signature must be verified: exactly one method.
    pub config: ValidationConfig,
    /// Pull policy of the injected verification container (default: the operator's setting).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[x_kube(validation = Rule::new("self in ['Always', 'IfNotPresent', 'Never']").message("imagePullPolicy must be Always, IfNotPresent or Never"))]
    pub image_pull_policy: Option<String>,
    /// Periodic re-verification while the pod runs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub continuous_validation: Option<ContinuousValidation>,
    /// Resources of the injected container (default: requests 50m/64Mi, limits 1 CPU/256Mi).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resources: Option<ResourceRequirements>,
}

/// Models in image volumes: which references to verify, and how to read the registry.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
#[serde(rename_all = "camelCase")]
pub struct ImagesSpec {
    /// Patterns of the image references to verify, matched against a reference's repository
    /// (`registry/path`, without tag or digest): `*` matches within one path segment, `**`
    /// across segments (`registry.example.com/models/**`). Docker Hub images are matched as
    /// `docker.io/library/name` or `docker.io/org/name`. Image volumes that match no pattern
    /// are not checked.
    #[schemars(length(min = 1, max = 64), inner(length(min = 1, max = 512)))]
    #[x_kube(validation = Rule::new("self.all(g, !g.contains('@') && !g.matches('^[^/]*/.*:'))").message("images.globs match repositories (registry/path): drop the :tag or @digest"))]
    pub globs: Vec<String>,
    /// The model's directory inside modelcar images (container images whose tar layers hold
    /// the model, as KServe's `oci+native://`), e.g. `/models`. Set, covered image volumes that
    /// are modelcar images are verified at admission by streaming their layers once (their
    /// digests cover tar archives, not files), within `--registry-timeout`; the signature is
    /// the directory's, attached with `model-signing oci attach --modelcar-root`. Unset, only
    /// ModelPack artifacts with raw layers are verified (from the manifest alone).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 4096))]
    #[x_kube(validation = Rule::new("self.startsWith('/')").message("images.modelcarRoot must be an absolute path inside the image, e.g. /models"))]
    pub modelcar_root: Option<String>,
    /// A `kubernetes.io/dockerconfigjson` Secret in the operator's namespace with credentials
    /// for the registry (default: anonymous, or the pod's own pull Secrets with the operator's
    /// `--pod-pull-secrets`). ClusterModelValidations only: a tenant's ModelValidation may not
    /// borrow the platform's credentials.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 253))]
    pub pull_secret: Option<String>,
}

/// The model and its signature, as seen inside the pod.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
#[serde(rename_all = "camelCase")]
pub struct ModelSpec {
    /// Absolute path of the model directory or file in the pod.
    #[x_kube(validation = Rule::new("self.startsWith('/')").message("model.path must be an absolute path inside the pod (URLs are not fetched)"))]
    pub path: String,
    /// Absolute path of the signature (`model.sig`) in the pod.
    #[x_kube(validation = Rule::new("self.startsWith('/')").message("model.signaturePath must be an absolute path inside the pod"))]
    pub signature_path: String,
    /// Paths left out of verification, in addition to those the signature records.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ignore_paths: Vec<String>,
    /// Leave out .git, .gitattributes, .github, .gitignore (default true).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ignore_git_paths: Option<bool>,
    /// Tolerate files the signature does not cover (default false).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ignore_unsigned_files: Option<bool>,
    /// Follow symlinks to files (default false).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub allow_symlinks: Option<bool>,
}

/// Exactly one verification method, plus an optional Sigstore trust configuration.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = Rule::new("[has(self.sigstoreConfig), has(self.pkiConfig), has(self.publicKeyConfig)].filter(x, x).size() == 1").message("exactly one validation method must be specified"))]
pub struct ValidationConfig {
    /// Keyless: a Sigstore identity and its OIDC issuer.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sigstore_config: Option<SigstoreConfig>,
    /// Certificate: a CA that must have issued the signing certificate.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pki_config: Option<PkiConfig>,
    /// Public key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub public_key_config: Option<PublicKeyConfig>,
    /// A Sigstore ClientTrustConfig for a private Sigstore deployment.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_trust_config: Option<ClientTrustConfig>,
}

/// Keyless verification settings.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
#[serde(rename_all = "camelCase")]
pub struct SigstoreConfig {
    /// The signer's identity: exactly one of the certificate's SAN values.
    pub certificate_identity: String,
    /// The OIDC issuer that vouched for the identity (exact match).
    pub certificate_oidc_issuer: String,
}

/// Certificate-method settings: the trusted CA certificates, in the policy (recommended) or
/// read from a path in the pod.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = Rule::new("[has(self.certificateAuthority), has(self.certificateAuthorityPem)].filter(x, x).size() == 1").message("set exactly one of pkiConfig.certificateAuthorityPem (recommended) or pkiConfig.certificateAuthority"))]
pub struct PkiConfig {
    /// Absolute path in the pod of the trusted CA certificate(s), PEM. Whoever can write the
    /// volume at that path chooses the trusted CA: prefer `certificateAuthorityPem`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[x_kube(validation = Rule::new("self.startsWith('/')").message("pkiConfig.certificateAuthority must be an absolute path inside the pod"))]
    pub certificate_authority: Option<String>,
    /// The trusted CA certificate(s), PEM, carried into the verifier by the operator.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 65536))]
    #[x_kube(validation = Rule::new("self.contains('-----BEGIN CERTIFICATE-----')").message("pkiConfig.certificateAuthorityPem must hold PEM certificates"))]
    pub certificate_authority_pem: Option<String>,
}

/// Key-method settings: the signer's public key, in the policy (recommended) or read from a
/// path in the pod.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = Rule::new("[has(self.keyPath), has(self.keyPem)].filter(x, x).size() == 1").message("set exactly one of publicKeyConfig.keyPem (recommended) or publicKeyConfig.keyPath"))]
pub struct PublicKeyConfig {
    /// Absolute path in the pod of the signer's public key, PEM. Whoever can write the volume at
    /// that path chooses the trusted key: prefer `keyPem`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[x_kube(validation = Rule::new("self.startsWith('/')").message("publicKeyConfig.keyPath must be an absolute path inside the pod"))]
    pub key_path: Option<String>,
    /// The signer's public key, PEM, carried into the verifier by the operator.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 16384))]
    #[x_kube(validation = Rule::new("self.contains('-----BEGIN PUBLIC KEY-----')").message("publicKeyConfig.keyPem must hold a PEM public key (-----BEGIN PUBLIC KEY-----)"))]
    pub key_pem: Option<String>,
}

/// A private Sigstore deployment's trust: a ClientTrustConfig or a trusted root, in the policy
/// (recommended) or read from a path in the pod.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = Rule::new("[has(self.trustConfigPath), has(self.trustConfigJson), has(self.trustedRootJson)].filter(x, x).size() == 1").message("set exactly one of clientTrustConfig.trustConfigJson, clientTrustConfig.trustedRootJson (recommended) or clientTrustConfig.trustConfigPath"))]
pub struct ClientTrustConfig {
    /// Absolute path in the pod of the ClientTrustConfig JSON. Whoever can write the volume at
    /// that path chooses the trusted Sigstore instance: prefer `trustConfigJson`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[x_kube(validation = Rule::new("self.startsWith('/')").message("clientTrustConfig.trustConfigPath must be an absolute path inside the pod"))]
    pub trust_config_path: Option<String>,
    /// A ClientTrustConfig JSON, carried into the verifier by the operator.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 65536))]
    pub trust_config_json: Option<String>,
    /// A Sigstore trusted root JSON, carried into the verifier by the operator.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 65536))]
    pub trusted_root_json: Option<String>,
}

/// Periodic re-verification.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
#[serde(rename_all = "camelCase")]
pub struct ContinuousValidation {
    /// Run a verifying sidecar that re-checks the model.
    #[serde(default)]
    pub enabled: bool,
    /// How often, e.g. `5m` or `1h30m` (from 1m to 8784h, the 366 days the verifier accepts;
    /// default 5m).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = r"^([0-9]+(\.[0-9]+)?(m|h))+$"))]
    #[x_kube(validation = Rule::new("self == '' || (duration(self) >= duration('1m') && duration(self) <= duration('8784h'))").message("interval must be from 1m to 8784h (366 days)"))]
    pub interval: Option<String>,
}

/// A pod seen by the operator, in status lists.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
#[serde(rename_all = "camelCase")]
pub struct PodTrackingInfo {
    /// Pod name.
    pub name: String,
    /// Pod UID.
    pub uid: String,
    /// When the verification container was injected.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub injected_at: Option<Time>,
}

/// The last verification failure.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
#[serde(rename_all = "camelCase")]
pub struct VerificationFailure {
    /// The pod.
    pub pod: String,
    /// When it failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub time: Option<Time>,
    /// The verifier's message (termination message of the init container).
    pub message: String,
}

/// What the operator observed.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
#[serde(rename_all = "camelCase")]
pub struct ModelValidationStatus {
    /// `Ready` says whether the spec can work.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<Condition>,
    /// The generation the status describes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// `sigstore`, `pki` or `public-key`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auth_method: Option<String>,
    /// Pods with the verification container as the current spec would inject it.
    #[serde(default)]
    pub injected_pod_count: i32,
    /// Labelled pods without the verification container.
    #[serde(default)]
    pub uninjected_pod_count: i32,
    /// Pods injected under an older spec.
    #[serde(default)]
    pub orphaned_pod_count: i32,
    /// Injected pods.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub injected_pods: Vec<PodTrackingInfo>,
    /// Uninjected pods.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub uninjected_pods: Vec<PodTrackingInfo>,
    /// Orphaned pods.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub orphaned_pods: Vec<PodTrackingInfo>,
    /// Pods whose verification succeeded.
    #[serde(default)]
    pub verified_count: i32,
    /// Pods whose verification failed.
    #[serde(default)]
    pub failed_count: i32,
    /// The most recent failure.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_failure: Option<VerificationFailure>,
    /// Last status write.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_updated: Option<Time>,
}

/// The first published API shape (`rhtas.redhat.com/v1alpha1`), still served and honoured.
pub mod legacy {
    use super::*;

    /// A ModelValidation of the first published API. Pods labelled
    /// `validation.rhtas.redhat.com/ml: "true"` use the one ModelValidation of their namespace.
    #[derive(
        CustomResource, KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Default,
    )]
    #[kube(
        group = "rhtas.redhat.com",
        version = "v1alpha1",
        kind = "ModelValidation",
        plural = "modelvalidations",
        namespaced
    )]
    #[serde(rename_all = "camelCase")]
    pub struct LegacyModelValidationSpec {
        /// The model and its signature.
        pub model: LegacyModelSpec,
        /// The method.
        pub config: LegacyValidationConfig,
    }

    /// Model and signature paths.
    #[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
    #[serde(rename_all = "camelCase")]
    pub struct LegacyModelSpec {
        /// Model path in the pod.
        pub path: String,
        /// Signature path in the pod.
        pub signature_path: String,
    }

    /// One of three methods. `privateKeyConfig.keyPath` holds a *public* key path.
    #[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
    #[serde(rename_all = "camelCase")]
    pub struct LegacyValidationConfig {
        /// Keyless.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub sigstore_config: Option<SigstoreConfig>,
        /// Certificate.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub pki_config: Option<LegacyPkiConfig>,
        /// Public key (named "private" in the first API).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub private_key_config: Option<LegacyKeyConfig>,
    }

    /// CA path.
    #[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
    #[serde(rename_all = "camelCase")]
    pub struct LegacyPkiConfig {
        /// CA path in the pod.
        pub certificate_authority: String,
    }

    /// Key path.
    #[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
    #[serde(rename_all = "camelCase")]
    pub struct LegacyKeyConfig {
        /// Public key path in the pod.
        pub key_path: String,
    }

    impl From<&LegacyModelValidationSpec> for ModelValidationSpec {
        /// The first API maps onto today's: `privateKeyConfig` is the public-key method.
        fn from(l: &LegacyModelValidationSpec) -> Self {
            ModelValidationSpec {
                model: Some(ModelSpec {
                    path: l.model.path.clone(),
                    signature_path: l.model.signature_path.clone(),
                    ..Default::default()
                }),
                images: None,
                config: ValidationConfig {
                    sigstore_config: l.config.sigstore_config.clone(),
                    pki_config: l.config.pki_config.as_ref().map(|p| PkiConfig {
                        certificate_authority: Some(p.certificate_authority.clone()),
                        ..Default::default()
                    }),
                    public_key_config: l.config.private_key_config.as_ref().map(|k| {
                        PublicKeyConfig {
                            key_path: Some(k.key_path.clone()),
                            ..Default::default()
                        }
                    }),
                    client_trust_config: None,
                },
                ..Default::default()
            }
        }
    }
}

/// The one verification method a spec declares, with its inputs: the only place that decides
/// which method applies. Admission, injection, the agent's arguments, status and metrics all
/// take it from [`ValidationConfig::method`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Method<'a> {
    /// Keyless: a Sigstore identity, its OIDC issuer, and optionally a private deployment's
    /// trust configuration.
    Sigstore {
        /// `sigstoreConfig.certificateIdentity`.
        identity: &'a str,
        /// `sigstoreConfig.certificateOidcIssuer`.
        issuer: &'a str,
        /// A private deployment's trust (`clientTrustConfig`), if any.
        trust: Option<SigstoreTrust<'a>>,
    },
    /// A public key (`publicKeyConfig`).
    PublicKey {
        /// The PEM key.
        key: Trust<'a>,
    },
    /// A certificate chain to a CA (`pkiConfig`).
    Certificate {
        /// The PEM CA certificate(s).
        ca: Trust<'a>,
    },
    /// A cluster policy's authorities, rendered as the engine's authorities document (see
    /// [`crate::authorities`]); a ModelValidation never declares it.
    Authorities {
        /// The document (JSON).
        document: &'a str,
    },
}

/// Where trust material comes from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Trust<'a> {
    /// The policy carries it: the operator hands it to the verifier, out of the pod's reach.
    Inline(&'a str),
    /// A path in the pod: the pod's own volume supplies it, so whoever can write that volume
    /// chooses what is trusted.
    Path(&'a str),
}

/// A private Sigstore deployment's trust material.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SigstoreTrust<'a> {
    /// A ClientTrustConfig JSON (`trustConfigJson` or `trustConfigPath`).
    Config(Trust<'a>),
    /// A trusted root JSON (`trustedRootJson`).
    TrustedRoot(&'a str),
}

impl<'a> Method<'a> {
    /// A trust anchor read from the pod's own volume, if the method has one (see
    /// [`Trust::Path`]), with the field that would carry it in the policy instead.
    pub fn trust_path(&self) -> Option<PodTrust<'a>> {
        let (field, path, instead) = match *self {
            Method::PublicKey {
                key: Trust::Path(p),
            } => (
                "spec.config.publicKeyConfig.keyPath",
                p,
                "spec.config.publicKeyConfig.keyPem",
            ),
            Method::Certificate { ca: Trust::Path(p) } => (
                "spec.config.pkiConfig.certificateAuthority",
                p,
                "spec.config.pkiConfig.certificateAuthorityPem",
            ),
            Method::Sigstore {
                trust: Some(SigstoreTrust::Config(Trust::Path(p))),
                ..
            } => (
                "spec.config.clientTrustConfig.trustConfigPath",
                p,
                "spec.config.clientTrustConfig.trustConfigJson",
            ),
            _ => return None,
        };
        Some(PodTrust {
            anchor: SpecPath { field, path },
            instead,
        })
    }

    /// The method as status (`status.authMethod`) and metrics (`method` label) name it.
    pub fn label(&self) -> &'static str {
        match self {
            Method::Sigstore { .. } => "sigstore",
            Method::PublicKey { .. } => "public-key",
            Method::Certificate { .. } => "pki",
            Method::Authorities { .. } => "authorities",
        }
    }
}

/// Why a spec cannot be used, worded in the ModelValidation's own fields.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum SpecError {
    /// None of the three methods is set.
    #[error(
        "spec.config names no verification method: set exactly one of sigstoreConfig, pkiConfig or publicKeyConfig"
    )]
    NoMethod,
    /// More than one method is set.
    #[error(
        "spec.config names more than one verification method: keep exactly one of sigstoreConfig, pkiConfig or publicKeyConfig"
    )]
    SeveralMethods,
    /// A trust field does not say where the material is, or says it twice.
    #[error("{field} must set exactly one of {choices}")]
    TrustSource {
        /// The object, e.g. `spec.config.publicKeyConfig`.
        field: &'static str,
        /// Its alternatives.
        choices: &'static str,
    },
    /// A path in the pod is not absolute.
    #[error("{field} {path:?} is not an absolute path inside the pod: make it absolute")]
    RelativePath {
        /// The field, e.g. `spec.model.path`.
        field: &'static str,
        /// Its value.
        path: String,
    },
}

impl SpecError {
    /// The `Ready` condition's reason for this error.
    pub fn reason(&self) -> &'static str {
        match self {
            SpecError::NoMethod => "NoMethod",
            SpecError::SeveralMethods => "SeveralMethods",
            SpecError::TrustSource { .. } => "TrustSource",
            SpecError::RelativePath { .. } => "RelativePath",
        }
    }
}

/// Exactly one of `path` and `inline`, or the error naming `field` and its `choices`.
fn one_of<'a>(
    path: &'a Option<String>,
    inline: &'a Option<String>,
    field: &'static str,
    choices: &'static str,
) -> Result<Trust<'a>, SpecError> {
    match (path, inline) {
        (Some(p), None) => Ok(Trust::Path(p)),
        (None, Some(i)) => Ok(Trust::Inline(i)),
        _ => Err(SpecError::TrustSource { field, choices }),
    }
}

impl ClientTrustConfig {
    fn trust(&self) -> Result<SigstoreTrust<'_>, SpecError> {
        let err = SpecError::TrustSource {
            field: "spec.config.clientTrustConfig",
            choices: "trustConfigJson, trustedRootJson or trustConfigPath",
        };
        match (
            &self.trust_config_path,
            &self.trust_config_json,
            &self.trusted_root_json,
        ) {
            (Some(p), None, None) => Ok(SigstoreTrust::Config(Trust::Path(p))),
            (None, Some(j), None) => Ok(SigstoreTrust::Config(Trust::Inline(j))),
            (None, None, Some(r)) => Ok(SigstoreTrust::TrustedRoot(r)),
            _ => Err(err),
        }
    }
}

impl ValidationConfig {
    /// The one method this configuration declares, with where its trust material comes from.
    pub fn method(&self) -> Result<Method<'_>, SpecError> {
        let set = [
            self.sigstore_config.is_some(),
            self.public_key_config.is_some(),
            self.pki_config.is_some(),
        ];
        match set.iter().filter(|m| **m).count() {
            0 => return Err(SpecError::NoMethod),
            1 => {}
            _ => return Err(SpecError::SeveralMethods),
        }
        if let Some(s) = &self.sigstore_config {
            let trust = self
                .client_trust_config
                .as_ref()
                .map(ClientTrustConfig::trust)
                .transpose()?;
            return Ok(Method::Sigstore {
                identity: &s.certificate_identity,
                issuer: &s.certificate_oidc_issuer,
                trust,
            });
        }
        // `clientTrustConfig` configures Sigstore only; with another method it is ignored, as
        // upstream does.
        if let Some(k) = &self.public_key_config {
            return Ok(Method::PublicKey {
                key: one_of(
                    &k.key_path,
                    &k.key_pem,
                    "spec.config.publicKeyConfig",
                    "keyPem or keyPath",
                )?,
            });
        }
        match &self.pki_config {
            Some(p) => Ok(Method::Certificate {
                ca: one_of(
                    &p.certificate_authority,
                    &p.certificate_authority_pem,
                    "spec.config.pkiConfig",
                    "certificateAuthorityPem or certificateAuthority",
                )?,
            }),
            None => Err(SpecError::NoMethod),
        }
    }
}

/// A trust anchor that the pod's own volume supplies.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PodTrust<'a> {
    /// The path field and its value.
    pub anchor: SpecPath<'a>,
    /// The field that carries the same material in the policy.
    pub instead: &'static str,
}

/// A file the verifier reads, named by the spec field that declares it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SpecPath<'a> {
    /// The field, e.g. `spec.config.publicKeyConfig.keyPath`.
    pub field: &'static str,
    /// The absolute path in the pod.
    pub path: &'a str,
}

impl ModelValidationSpec {
    /// Every file the verifier must read from the pod, in a fixed order: model, signature,
    /// then a trust anchor given by path. Trust material carried in the policy is no file.
    /// The paths are not checked here; see [`Self::check`].
    pub fn file_paths(&self) -> Vec<SpecPath<'_>> {
        let mut v = self
            .model
            .as_ref()
            .map(ModelSpec::file_paths)
            .unwrap_or_default();
        if let Ok(m) = self.config.method()
            && let Some(p) = m.trust_path()
        {
            v.push(p.anchor);
        }
        v
    }

    /// Whether the spec can work at all: exactly one method, and every path absolute. The
    /// CRD's CEL rules enforce both for `ml.sigstore.dev`; the first API has no such rules.
    pub fn check(&self) -> Result<Method<'_>, SpecError> {
        let method = self.config.method()?;
        if let Some(p) = self.file_paths().iter().find(|p| !p.path.starts_with('/')) {
            return Err(SpecError::RelativePath {
                field: p.field,
                path: p.path.to_string(),
            });
        }
        Ok(method)
    }
}

impl ModelSpec {
    /// The model and its signature, named by their fields.
    pub fn file_paths(&self) -> Vec<SpecPath<'_>> {
        vec![
            SpecPath {
                field: "spec.model.path",
                path: &self.path,
            },
            SpecPath {
                field: "spec.model.signaturePath",
                path: &self.signature_path,
            },
        ]
    }
}

/// A short fingerprint of everything in a spec that shapes the injected container(s): the
/// first 16 hex digits of SHA-256 over the JSON of `model`, `config`, `imagePullPolicy`,
/// `resources` and `continuousValidation`. Set on injected pods as
/// `validation.ml.sigstore.dev/config-hash`; the status controller counts a pod injected under
/// another hash as orphaned (spec drift).
pub fn config_hash(spec: &ModelValidationSpec) -> String {
    use sha2::{Digest, Sha256};
    let v = serde_json::json!([
        spec.model,
        spec.config,
        spec.image_pull_policy,
        spec.resources,
        spec.continuous_validation
    ]);
    let digest = Sha256::digest(v.to_string().as_bytes());
    hex::encode(digest)[..16].to_string()
}

/// The CRD manifests, as written to `deploy/crds/`.
pub fn crd_yaml() -> Vec<(&'static str, String)> {
    use kube::CustomResourceExt;
    // A CRD generated from our own types is plain data (strings, maps, lists): YAML encoding
    // cannot fail, and `make crds` would show it at once if it did.
    #[allow(clippy::expect_used)]
    let render = |crd: k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition| {
        serde_saphyr::to_string(&crd).expect("a CRD always serializes to YAML")
    };
    vec![
        (
            "ml.sigstore.dev_modelvalidations.yaml",
            render(ModelValidation::crd()),
        ),
        (
            "rhtas.redhat.com_modelvalidations.yaml",
            render(legacy::ModelValidation::crd()),
        ),
        (
            "ml.sigstore.dev_clustermodelvalidations.yaml",
            render(cluster::ClusterModelValidation::crd()),
        ),
    ]
}
