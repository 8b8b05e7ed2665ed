//! The MutatingWebhookConfiguration: keeping its caBundle right, and (outside a cluster)
//! registering the webhook by URL.

use std::collections::BTreeMap;

use anyhow::{Context, Result};
use base64::Engine as _;
use k8s_openapi::api::admissionregistration::v1::{
    MutatingWebhook, MutatingWebhookConfiguration, RuleWithOperations, WebhookClientConfig,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, LabelSelectorRequirement};
use kube::Client;
use kube::api::{Api, Patch, PatchParams};

pub use crate::names::FIELD_MANAGER;
use crate::names::{IGNORE_NAMESPACE_LABEL, LABEL, LEGACY_LABEL};

fn selector(key: &str, op: &str, values: Option<Vec<String>>) -> LabelSelectorRequirement {
    LabelSelectorRequirement {
        key: key.into(),
        operator: op.into(),
        values,
    }
}

/// The webhooks: one per pod label (object selectors cannot say "this label or that one"),
/// and one for every pod of the namespaces cluster policies may govern (`cluster_namespaces`,
/// less the operator's namespace and [`crate::scope::EXEMPT_NAMESPACES`]). A labelled pod in a
/// governed namespace is sent twice; the second call finds its verifiers in place. Last, the
/// workloads of those namespaces, for early feedback ([`crate::webhook::workload`]).
/// `client_config` gives the client configuration for a path of the webhook server.
pub fn webhooks(
    client_config: impl Fn(&str) -> WebhookClientConfig,
    operator_namespace: &str,
    cluster_namespaces: &LabelSelector,
) -> Vec<MutatingWebhook> {
    let namespace_selector = LabelSelector {
        match_expressions: Some(vec![
            selector(IGNORE_NAMESPACE_LABEL, "NotIn", Some(vec!["true".into()])),
            selector(
                "kubernetes.io/metadata.name",
                "NotIn",
                Some(vec![operator_namespace.into()]),
            ),
        ]),
        match_labels: None,
    };
    let mut exempt: Vec<String> = vec![operator_namespace.into()];
    exempt.extend(
        crate::scope::EXEMPT_NAMESPACES
            .iter()
            .map(|n| n.to_string()),
    );
    let mut cluster_selector = cluster_namespaces.clone();
    cluster_selector
        .match_expressions
        .get_or_insert_with(Vec::new)
        .push(selector(
            "kubernetes.io/metadata.name",
            "NotIn",
            Some(exempt),
        ));
    [
        (
            "pods.validation.ml.sigstore.dev",
            Some(LABEL),
            &namespace_selector,
        ),
        (
            "legacy-pods.validation.ml.sigstore.dev",
            Some(LEGACY_LABEL),
            &namespace_selector,
        ),
        (
            "cluster-pods.validation.ml.sigstore.dev",
            None,
            &cluster_selector,
        ),
    ]
    .into_iter()
    .map(|(name, label, namespaces)| MutatingWebhook {
        name: name.into(),
        admission_review_versions: vec!["v1".into()],
        client_config: client_config(POD_PATH),
        failure_policy: Some("Fail".into()),
        match_policy: Some("Equivalent".into()),
        // The webhook writes Events (PodDenied), and skips them when request.dryRun is true.
        side_effects: "NoneOnDryRun".into(),
        timeout_seconds: Some(10),
        reinvocation_policy: Some("IfNeeded".into()),
        namespace_selector: Some(namespaces.clone()),
        // No label: every pod (the API server stores an absent selector as `{}`).
        object_selector: Some(LabelSelector {
            match_expressions: label.map(|label| vec![selector(label, "Exists", None)]),
            match_labels: None,
        }),
        rules: Some(vec![RuleWithOperations {
            api_groups: Some(vec!["".into()]),
            api_versions: Some(vec!["v1".into()]),
            // UPDATE and ephemeral containers: a verified pod may not be changed to undo it.
            operations: Some(vec!["CREATE".into(), "UPDATE".into()]),
            resources: Some(vec!["pods".into(), "pods/ephemeralcontainers".into()]),
            scope: Some("Namespaced".into()),
        }]),
        ..Default::default()
    })
    .chain(std::iter::once(workload_webhook(
        client_config(crate::webhook::server::WORKLOADS_PATH),
        cluster_selector.clone(),
    )))
    .collect()
}

/// The namespaces cluster policies may govern unless `--cluster-policy-namespaces` says
/// otherwise: those labelled [`crate::names::INCLUDE_NAMESPACE_LABEL`]`=true`.
pub fn default_cluster_namespaces() -> LabelSelector {
    LabelSelector {
        match_labels: Some(BTreeMap::from([(
            crate::names::INCLUDE_NAMESPACE_LABEL.to_string(),
            "true".to_string(),
        )])),
        match_expressions: None,
    }
}

/// Where the API server sends pods.
pub const POD_PATH: &str = "/mutate-v1-pod";

/// The workloads webhook: early feedback only, so it fails open (pods stay the enforcement
/// point, with `failurePolicy: Fail`), never patches, and has no side effects.
fn workload_webhook(
    client_config: WebhookClientConfig,
    namespaces: LabelSelector,
) -> MutatingWebhook {
    let rule = |group: &str, resources: Vec<String>| RuleWithOperations {
        api_groups: Some(vec![group.into()]),
        api_versions: Some(vec!["v1".into()]),
        operations: Some(vec!["CREATE".into(), "UPDATE".into()]),
        resources: Some(resources),
        scope: Some("Namespaced".into()),
    };
    let resources = |group: &str| -> Vec<String> {
        crate::webhook::workload::KINDS
            .iter()
            .filter(|(g, _, _)| *g == group)
            .map(|(_, kind, _)| format!("{}s", kind.to_ascii_lowercase()))
            .collect()
    };
    MutatingWebhook {
        name: "workloads.validation.ml.sigstore.dev".into(),
        admission_review_versions: vec!["v1".into()],
        client_config,
        failure_policy: Some("Ignore".into()),
        match_policy: Some("Equivalent".into()),
        side_effects: "None".into(),
        timeout_seconds: Some(5),
        reinvocation_policy: Some("Never".into()),
        namespace_selector: Some(namespaces),
        object_selector: Some(LabelSelector::default()),
        rules: Some(vec![
            rule("apps", resources("apps")),
            rule("batch", resources("batch")),
        ]),
        ..Default::default()
    }
}

/// Registers (or updates) the webhook configuration `name` pointing at `url`.
pub async fn register_url(
    client: &Client,
    name: &str,
    url: &str,
    ca_pem: &str,
    operator_namespace: &str,
    cluster_namespaces: &LabelSelector,
) -> Result<()> {
    let config = MutatingWebhookConfiguration {
        metadata: kube::api::ObjectMeta {
            name: Some(name.into()),
            labels: Some(BTreeMap::from([(
                "app.kubernetes.io/name".to_string(),
                "model-validation-operator".to_string(),
            )])),
            ..Default::default()
        },
        webhooks: Some(webhooks(
            |path| WebhookClientConfig {
                url: Some(format!("{}{path}", url.trim_end_matches('/'))),
                ca_bundle: Some(k8s_openapi::ByteString(ca_pem.as_bytes().to_vec())),
                service: None,
            },
            operator_namespace,
            cluster_namespaces,
        )),
    };
    let api: Api<MutatingWebhookConfiguration> = Api::all(client.clone());
    api.patch(
        name,
        &PatchParams::apply(FIELD_MANAGER).force(),
        &Patch::Apply(&config),
    )
    .await
    .with_context(|| format!("cannot register MutatingWebhookConfiguration {name}"))?;
    Ok(())
}

/// Sets every webhook's caBundle in `name` to `ca_pem` (one or more PEM certificates) when it
/// differs, changing nothing else: the ValidatingAdmissionPolicy of
/// deploy/base/webhook-guard.yaml refuses any other change by the operator's service account.
/// Returns whether it changed anything.
pub async fn ensure_ca_bundle(client: &Client, name: &str, ca_pem: &str) -> Result<bool> {
    let api: Api<MutatingWebhookConfiguration> = Api::all(client.clone());
    let current = api.get(name).await.with_context(|| {
        format!(
            "cannot read MutatingWebhookConfiguration {name}; is the operator installed (deploy/)?"
        )
    })?;
    let want = ca_pem.as_bytes();
    let mut ops = Vec::new();
    for (i, w) in current.webhooks.iter().flatten().enumerate() {
        if w.client_config.ca_bundle.as_ref().map(|b| b.0.as_slice()) != Some(want) {
            ops.push(serde_json::json!({"op": "add", "path": format!("/webhooks/{i}/clientConfig/caBundle"), "value": base64::engine::general_purpose::STANDARD.encode(want)}));
        }
    }
    if ops.is_empty() {
        return Ok(false);
    }
    let patch: json_patch::Patch = serde_json::from_value(serde_json::Value::Array(ops))?;
    api.patch(name, &PatchParams::default(), &Patch::<()>::Json(patch))
        .await
        .with_context(|| format!("cannot patch the caBundle of {name}"))?;
    Ok(true)
}
