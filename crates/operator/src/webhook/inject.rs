//! Building the verification containers from a ModelValidation spec and the pod.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{
    Capabilities, Container, ResourceRequirements, SeccompProfile, SecurityContext, VolumeMount,
};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;

use crate::agent::{Invocation, Options, TERMINATION_LOG, Watch};
use crate::crd::{Method, ModelSpec, ModelValidationSpec};
use crate::names::{VERIFY_CONTAINER, WATCH_CONTAINER, annotations};

/// Operator-wide settings for injection.
#[derive(Clone, Debug)]
pub struct InjectConfig {
    /// The verification agent image (its entrypoint is `model-signing`).
    pub agent_image: String,
    /// Pull policy unless the ModelValidation sets one.
    pub default_pull_policy: String,
    /// Port of the continuous-validation sidecar's health endpoints (`/readyz`, `/healthz`).
    pub watch_port: u16,
    /// Inject the continuous-validation sidecar as a regular container (clusters before 1.28,
    /// which have no native sidecars) instead of an init container with `restartPolicy: Always`.
    pub legacy_sidecar: bool,
}

impl Default for InjectConfig {
    fn default() -> Self {
        InjectConfig {
            agent_image: String::new(),
            default_pull_policy: "IfNotPresent".into(),
            watch_port: DEFAULT_WATCH_PORT,
            legacy_sidecar: false,
        }
    }
}

/// Default port of the sidecar's health endpoints.
pub const DEFAULT_WATCH_PORT: u16 = 9099;
/// Re-verification interval when a ModelValidation enables continuous validation without one.
pub const DEFAULT_INTERVAL: &str = "5m";

/// What a spec without `model` (images only) reads: nothing. The webhook plans containers only
/// for specs with a model, so this never reaches a pod; it keeps the builders total.
static NO_MODEL: ModelSpec = ModelSpec {
    path: String::new(),
    signature_path: String::new(),
    ignore_paths: Vec::new(),
    ignore_git_paths: None,
    ignore_unsigned_files: None,
    allow_symlinks: None,
};

fn model_of(spec: &ModelValidationSpec) -> &ModelSpec {
    spec.model.as_ref().unwrap_or(&NO_MODEL)
}

/// Merges the spec's options with the pod's annotations. An annotation may turn a looser
/// setting stricter, never the reverse; ignored attempts are returned as warnings.
pub fn effective_options(
    spec: &ModelValidationSpec,
    pod_annotations: &BTreeMap<String, String>,
) -> (Options, Vec<String>) {
    let m = model_of(spec);
    let mut o = Options {
        ignore_paths: m.ignore_paths.clone(),
        ignore_git_paths: m.ignore_git_paths.unwrap_or(true),
        ignore_unsigned_files: m.ignore_unsigned_files.unwrap_or(false),
        allow_symlinks: m.allow_symlinks.unwrap_or(false),
        report_only: false,
    };
    let mut warnings = Vec::new();
    let mut tighten = |key: &str, current: &mut bool| {
        let Some(v) = pod_annotations.get(key) else {
            return;
        };
        match v.trim().to_ascii_lowercase().as_str() {
            "false" | "0" | "no" => *current = false,
            "true" | "1" | "yes" if !*current => warnings.push(format!("annotation {key}={v} ignored: a pod may only tighten what its ModelValidation declares")),
            "true" | "1" | "yes" => {}
            _ => warnings.push(format!("annotation {key}={v} ignored: not a boolean")),
        }
    };
    tighten(annotations::IGNORE_GIT_PATHS, &mut o.ignore_git_paths);
    tighten(
        annotations::IGNORE_UNSIGNED_FILES,
        &mut o.ignore_unsigned_files,
    );
    tighten(annotations::ALLOW_SYMLINKS, &mut o.allow_symlinks);
    if pod_annotations.contains_key(annotations::IGNORE_PATHS) {
        warnings.push(format!("annotation {} ignored: a pod may not add ignore paths; declare them in the ModelValidation", annotations::IGNORE_PATHS));
    }
    (o, warnings)
}

fn default_resources() -> ResourceRequirements {
    let q = |s: &str| Quantity(s.to_string());
    ResourceRequirements {
        requests: Some(
            [
                ("cpu".to_string(), q("50m")),
                ("memory".to_string(), q("64Mi")),
            ]
            .into(),
        ),
        limits: Some(
            [
                ("cpu".to_string(), q("1")),
                ("memory".to_string(), q("256Mi")),
            ]
            .into(),
        ),
        ..Default::default()
    }
}

/// The restricted security context of the injected container.
pub fn restricted_security_context() -> SecurityContext {
    SecurityContext {
        run_as_non_root: Some(true),
        read_only_root_filesystem: Some(true),
        allow_privilege_escalation: Some(false),
        privileged: Some(false),
        capabilities: Some(Capabilities {
            drop: Some(vec!["ALL".into()]),
            add: None,
        }),
        seccomp_profile: Some(SeccompProfile {
            type_: "RuntimeDefault".into(),
            localhost_profile: None,
        }),
        ..Default::default()
    }
}

/// The agent's invocation for a spec (`watch`: for the sidecar).
fn invocation<'a>(
    spec: &'a ModelValidationSpec,
    method: Method<'a>,
    opts: &'a Options,
    watch: Option<Watch>,
) -> Invocation<'a> {
    Invocation {
        method,
        model_path: &model_of(spec).path,
        signature_path: &model_of(spec).signature_path,
        options: opts,
        watch,
    }
}

/// The container `env` carrying the policy's trust material (none when it has none).
fn trust_env(
    spec: &ModelValidationSpec,
    method: Method<'_>,
    opts: &Options,
) -> Option<Vec<k8s_openapi::api::core::v1::EnvVar>> {
    let env: Vec<_> = invocation(spec, method, opts, None)
        .env()
        .into_iter()
        .map(|(name, value)| k8s_openapi::api::core::v1::EnvVar {
            name: name.into(),
            value: Some(value),
            value_from: None,
        })
        .collect();
    (!env.is_empty()).then_some(env)
}

/// The init container to inject.
pub fn verification_container(
    cfg: &InjectConfig,
    spec: &ModelValidationSpec,
    method: Method<'_>,
    opts: &Options,
    mounts: Vec<VolumeMount>,
) -> Container {
    Container {
        name: VERIFY_CONTAINER.into(),
        image: Some(cfg.agent_image.clone()),
        image_pull_policy: Some(
            spec.image_pull_policy
                .clone()
                .unwrap_or_else(|| cfg.default_pull_policy.clone()),
        ),
        // No command: the agent image's entrypoint is `model-signing`.
        args: Some(invocation(spec, method, opts, None).args()),
        env: trust_env(spec, method, opts),
        volume_mounts: Some(mounts),
        resources: Some(spec.resources.clone().unwrap_or_else(default_resources)),
        security_context: Some(restricted_security_context()),
        termination_message_path: Some(TERMINATION_LOG.into()),
        termination_message_policy: Some("FallbackToLogsOnError".into()),
        ..Default::default()
    }
}

/// The continuous-validation sidecar, when the spec enables it: the same verification every
/// interval, with readiness that turns false as soon as the model no longer verifies.
pub fn watch_container(
    cfg: &InjectConfig,
    spec: &ModelValidationSpec,
    method: Method<'_>,
    opts: &Options,
    mounts: Vec<VolumeMount>,
) -> Option<Container> {
    use k8s_openapi::api::core::v1::{HTTPGetAction, Probe};
    use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
    let cv = spec.continuous_validation.as_ref().filter(|c| c.enabled)?;
    let interval = cv
        .interval
        .clone()
        .filter(|i| !i.is_empty())
        .unwrap_or_else(|| DEFAULT_INTERVAL.into());
    let watch = Watch {
        interval,
        health_port: cfg.watch_port,
    };
    let probe = |path: &str, period: i32| Probe {
        http_get: Some(HTTPGetAction {
            path: Some(path.into()),
            port: IntOrString::Int(cfg.watch_port.into()),
            ..Default::default()
        }),
        period_seconds: Some(period),
        failure_threshold: Some(1),
        ..Default::default()
    };
    let mut c = verification_container(cfg, spec, method, opts, mounts);
    c.name = WATCH_CONTAINER.into();
    c.args = Some(invocation(spec, method, opts, Some(watch)).args());
    c.readiness_probe = Some(probe("/readyz", 5));
    c.liveness_probe = Some(Probe {
        failure_threshold: Some(3),
        initial_delay_seconds: Some(10),
        ..probe("/healthz", 20)
    });
    if !cfg.legacy_sidecar {
        c.restart_policy = Some("Always".into());
    }
    Some(c)
}
