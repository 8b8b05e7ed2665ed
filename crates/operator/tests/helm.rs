//! The Helm chart `deploy/helm/model-validation-operator`: `helm lint --strict` passes for every
//! value set below; with default values it renders exactly the objects of the kustomize base
//! (and with `podPullSecrets.enabled`, the base with `deploy/optional/pod-pull-secrets`); its
//! CRDs and alert rules are byte-for-byte copies; values.schema.json refuses wrong values with
//! helm's error; and every value set installs (`helm install`, then `helm upgrade` to each, then
//! `helm uninstall`) on a real API server.
//!
//! helm and kustomize come from `hack/testbin/build.sh`: a missing tool fails the test, naming
//! the script, and is never skipped.

mod support;

use std::path::PathBuf;

use k8s_openapi::api::admissionregistration::v1::MutatingWebhookConfiguration;
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{Namespace, Secret};
use kube::api::Api;
use kube::discovery::Discovery;
use serde_json::Value;
use support::{
    OPERATOR_NAMESPACE, apply_doc, assert_same_files, assert_same_objects, by_key, chart_dir,
    deploy_dir, established_and_discovered, helm_install, helm_release, helm_template,
    helm_uninstall, kustomize_build, operator_client, run_tool, stub_crd, success,
};

/// The release name docs/helm.md installs as.
const RELEASE: &str = "model-validation-operator";
const DIGEST: &str = "sha256:1111111111111111111111111111111111111111111111111111111111111111";
const AGENT_DIGEST: &str =
    "sha256:2222222222222222222222222222222222222222222222222222222222222222";

/// The value sets every test renders: (name, values.yaml).
const VALUE_SETS: [(&str, &str); 5] = [
    ("default", "{}\n"),
    (
        "pinned",
        "image:\n  digest: sha256:1111111111111111111111111111111111111111111111111111111111111111\n\
         agentImage:\n  repository: registry.example/mvo/agent\n  tag: ignored\n  digest: sha256:2222222222222222222222222222222222222222222222222222222222222222\n\
         imagePullSecrets: [regcred]\n\
         replicas: 3\n\
         resources:\n  requests: {cpu: 100m, memory: 128Mi}\n  limits: {cpu: \"2\", memory: 512Mi}\n\
         extraArgs: [--require-policy-trust, --log-format=text]\n\
         failurePolicy: Ignore\n\
         ignoredNamespaces: [team-sandbox, ci]\n\
         podDisruptionBudget: {minAvailable: 2}\n",
    ),
    (
        "cert-manager",
        "certificates:\n  mode: certManager\n\
         networkPolicy:\n  enabled: true\n\
         monitoring:\n  podMonitor: {enabled: true}\n  serviceMonitor: {enabled: true, labels: {release: kube-prometheus-stack}}\n  prometheusRule: {enabled: true, labels: {release: kube-prometheus-stack}}\n\
         podPullSecrets:\n  enabled: true\n",
    ),
    (
        "cert-manager-cluster-issuer",
        "certificates:\n  mode: certManager\n  certManager:\n    issuerRef: {kind: ClusterIssuer, name: corp-ca}\n\
         podDisruptionBudget: {enabled: false}\n",
    ),
    (
        "cert-dir",
        "certificates:\n  mode: certDir\n  certDir:\n    secretName: webhook-tls\n    caBundle: LS0tLS1CRUdJTiBDRVJUSUZJQ0FURS0tLS0tCg==\n\
         networkPolicy:\n  enabled: true\n  ingress:\n    webhookFrom: [{ipBlock: {cidr: 10.0.0.10/32}}]\n  egress:\n    apiServer: {cidrs: [10.0.0.10/32], ports: [6443]}\n    registries: {enabled: false}\n",
    ),
];

/// The values file of the set `name` of [`VALUE_SETS`] (one per call: tests run in parallel).
fn value_file(name: &str) -> tempfile::NamedTempFile {
    let (_, yaml) = VALUE_SETS
        .iter()
        .find(|(n, _)| *n == name)
        .unwrap_or_else(|| panic!("no value set {name}"));
    let file = tempfile::Builder::new()
        .prefix(name)
        .suffix(".yaml")
        .tempfile()
        .unwrap();
    std::fs::write(file.path(), yaml).unwrap();
    file
}

fn render(name: &str) -> Vec<Value> {
    helm_template(OPERATOR_NAMESPACE, &[value_file(name).path()])
}

/// The one object `key` (as [`support::object_key`] spells it) of a rendering.
fn object(docs: &[Value], key: &str) -> Value {
    by_key(docs)
        .remove(key)
        .unwrap_or_else(|| panic!("no {key} in {:?}", by_key(docs).keys()))
}

fn keys(docs: &[Value]) -> Vec<String> {
    by_key(docs).into_keys().collect()
}

const DEPLOYMENT: &str =
    "apps/v1 Deployment model-validation-operator-system/model-validation-operator";
const WEBHOOK: &str =
    "admissionregistration.k8s.io/v1 MutatingWebhookConfiguration /model-validation-operator";
const VAP: &str =
    "admissionregistration.k8s.io/v1 ValidatingAdmissionPolicy /model-validation.ml.sigstore.dev";

#[test]
fn chart_crds_and_alert_rules_are_copies_of_deploy() {
    assert_same_files(
        &deploy_dir().join("crds"),
        &chart_dir().join("crds"),
        "run `make crds` (it writes both)",
        &["kustomization.yaml"],
    );
    let rules = |p: PathBuf| std::fs::read(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
    assert!(
        rules(deploy_dir().join("monitoring/prometheus-rules.yaml"))
            == rules(chart_dir().join("files/prometheus-rules.yaml")),
        "deploy/helm/model-validation-operator/files/prometheus-rules.yaml must be a copy of \
         deploy/monitoring/prometheus-rules.yaml: cp deploy/monitoring/prometheus-rules.yaml \
         deploy/helm/model-validation-operator/files/"
    );
}

#[test]
fn helm_lint_strict_passes_for_every_value_set() {
    let chart = chart_dir();
    for (name, _) in VALUE_SETS {
        let values = value_file(name);
        let out = run_tool(
            "helm",
            &[
                "lint",
                "--strict",
                chart.to_str().unwrap(),
                "--namespace",
                OPERATOR_NAMESPACE,
                "--values",
                values.path().to_str().unwrap(),
            ],
            &[],
        );
        let text = success(&format!("helm lint --strict ({name})"), out);
        assert!(
            text.contains("1 chart(s) linted, 0 chart(s) failed"),
            "{name}: {text}"
        );
    }
}

#[test]
fn default_values_render_the_kustomize_base() {
    let base = kustomize_build(&deploy_dir().join("base"));
    let chart = render("default");
    assert!(base.len() >= 20, "{} objects in deploy/base", base.len());
    assert_same_objects(
        "helm template (default values) and kustomize build deploy/base must render the same objects",
        "kustomize",
        &base,
        "helm",
        &chart,
    );
}

#[test]
fn pod_pull_secrets_renders_the_optional_component() {
    // An overlay of the base with the component, as deploy/optional/pod-pull-secrets says
    // (kustomize takes relative paths only).
    let overlay = tempfile::tempdir().unwrap();
    let up = "../".repeat(overlay.path().canonicalize().unwrap().components().count() - 1);
    let rel = |p: &str| {
        let abs = deploy_dir().join(p).canonicalize().unwrap();
        format!("{up}{}", abs.strip_prefix("/").unwrap().display())
    };
    std::fs::write(
        overlay.path().join("kustomization.yaml"),
        format!(
            "apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nresources:\n  - {}\ncomponents:\n  - {}\n",
            rel("base"),
            rel("optional/pod-pull-secrets"),
        ),
    )
    .unwrap();
    let values = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(values.path(), "podPullSecrets:\n  enabled: true\n").unwrap();
    assert_same_objects(
        "helm template with podPullSecrets.enabled and the base with deploy/optional/pod-pull-secrets must render the same objects",
        "kustomize",
        &kustomize_build(overlay.path()),
        "helm",
        &helm_template(OPERATOR_NAMESPACE, &[values.path()]),
    );
}

#[test]
fn value_sets_render_what_they_say() {
    // A digest wins over the tag, for the operator, the agent and the policy that checks it.
    let pinned = render("pinned");
    let d = object(&pinned, DEPLOYMENT);
    let pod = &d["spec"]["template"]["spec"];
    let c = &pod["containers"][0];
    assert_eq!(
        c["image"],
        format!("ghcr.io/model-validation-operator/operator@{DIGEST}")
    );
    let agent = format!("registry.example/mvo/agent@{AGENT_DIGEST}");
    assert_eq!(
        c["args"],
        serde_json::json!([
            format!("--agent-image={agent}"),
            "--require-policy-trust",
            "--log-format=text"
        ])
    );
    assert_eq!(d["spec"]["replicas"], 3);
    assert_eq!(c["resources"]["limits"]["memory"], "512Mi");
    assert_eq!(pod["imagePullSecrets"][0]["name"], "regcred");
    let vap = object(&pinned, VAP);
    let var = vap["spec"]["variables"]
        .as_array()
        .unwrap()
        .iter()
        .find(|v| v["name"] == "agentImage")
        .unwrap();
    assert_eq!(var["expression"], format!("'{agent}'"));
    // failurePolicy Ignore on the pod webhooks; the workloads one stays Ignore; ignored
    // namespaces on every selector.
    let wh = object(&pinned, WEBHOOK);
    for w in wh["webhooks"].as_array().unwrap() {
        assert_eq!(w["failurePolicy"], "Ignore", "{}", w["name"]);
        let not_in = w["namespaceSelector"]["matchExpressions"]
            .as_array()
            .unwrap()
            .iter()
            .find(|e| e["key"] == "kubernetes.io/metadata.name")
            .unwrap();
        let values = not_in["values"].as_array().unwrap();
        for ns in [OPERATOR_NAMESPACE, "team-sandbox", "ci"] {
            assert!(values.contains(&ns.into()), "{}: {values:?}", w["name"]);
        }
    }
    assert_eq!(
        object(
            &pinned,
            "policy/v1 PodDisruptionBudget model-validation-operator-system/model-validation-operator"
        )["spec"]["minAvailable"],
        2
    );

    // cert-manager: an Issuer and a Certificate, the CA injector's annotation, the operator on
    // the mounted Secret, and no self-managed CA (nor its RBAC).
    let cm = render("cert-manager");
    let k = keys(&cm);
    for want in [
        "cert-manager.io/v1 Issuer model-validation-operator-system/model-validation-operator-selfsigned",
        "cert-manager.io/v1 Certificate model-validation-operator-system/model-validation-operator-webhook",
        "networking.k8s.io/v1 NetworkPolicy model-validation-operator-system/model-validation-operator",
        "monitoring.coreos.com/v1 PodMonitor model-validation-operator-system/model-validation-operator",
        "monitoring.coreos.com/v1 ServiceMonitor model-validation-operator-system/model-validation-operator",
        "v1 Service model-validation-operator-system/model-validation-operator-metrics",
        "monitoring.coreos.com/v1 PrometheusRule model-validation-operator-system/model-validation-operator",
        "rbac.authorization.k8s.io/v1 ClusterRole /model-validation-operator-pod-pull-secrets",
    ] {
        assert!(
            k.contains(&want.to_string()),
            "cert-manager: no {want} in {k:#?}"
        );
    }
    assert!(
        !k.iter()
            .any(|k| k.contains("model-validation-operator-webhook-ca")),
        "{k:#?}"
    );
    assert_eq!(
        object(&cm, WEBHOOK)["metadata"]["annotations"]["cert-manager.io/inject-ca-from"],
        "model-validation-operator-system/model-validation-operator-webhook"
    );
    let d = object(&cm, DEPLOYMENT);
    let pod = &d["spec"]["template"]["spec"];
    assert!(
        pod["containers"][0]["args"]
            .as_array()
            .unwrap()
            .contains(&"--cert-dir=/etc/model-validation-operator/tls".into())
    );
    assert_eq!(
        pod["volumes"][0]["secret"]["secretName"],
        "model-validation-operator-webhook-tls"
    );
    assert_eq!(
        object(
            &cm,
            "cert-manager.io/v1 Certificate model-validation-operator-system/model-validation-operator-webhook"
        )["spec"]["secretName"],
        "model-validation-operator-webhook-tls"
    );
    let cluster_role = object(
        &cm,
        "rbac.authorization.k8s.io/v1 ClusterRole /model-validation-operator",
    );
    assert!(
        !cluster_role
            .to_string()
            .contains("mutatingwebhookconfigurations"),
        "with --cert-dir the operator does not touch its webhook configuration"
    );
    // The PodMonitor is deploy/monitoring's.
    let podmonitor = support::manifest(&deploy_dir().join("monitoring/podmonitor.yaml"));
    assert_eq!(
        object(
            &cm,
            "monitoring.coreos.com/v1 PodMonitor model-validation-operator-system/model-validation-operator"
        ),
        support::normalize(&podmonitor[0])
    );
    // The alert rules are deploy/monitoring's, in the release namespace with the extra labels.
    let rule = object(
        &cm,
        "monitoring.coreos.com/v1 PrometheusRule model-validation-operator-system/model-validation-operator",
    );
    let upstream = support::manifest(&deploy_dir().join("monitoring/prometheus-rules.yaml"));
    assert_eq!(rule["spec"], upstream[0]["spec"]);
    assert_eq!(
        rule["metadata"]["labels"]["release"],
        "kube-prometheus-stack"
    );
    // NetworkPolicy: the webhook port from anywhere, metrics from the monitoring namespace,
    // egress to the API server, DNS and registries.
    let np = object(
        &cm,
        "networking.k8s.io/v1 NetworkPolicy model-validation-operator-system/model-validation-operator",
    );
    assert!(np["spec"]["ingress"][0].get("from").is_none(), "{np:#}");
    assert_eq!(
        np["spec"]["ingress"][1]["from"][0]["namespaceSelector"]["matchLabels"]["kubernetes.io/metadata.name"],
        "monitoring"
    );
    assert_eq!(np["spec"]["egress"].as_array().unwrap().len(), 3, "{np:#}");
    // The pod-pull-secrets option sets the operator's variable.
    assert!(
        pod["containers"][0]["env"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["name"] == "MVO_POD_PULL_SECRETS" && e["value"] == "true")
    );

    // A ClusterIssuer of one's own: no Issuer of ours.
    let ci = render("cert-manager-cluster-issuer");
    let cert = object(
        &ci,
        "cert-manager.io/v1 Certificate model-validation-operator-system/model-validation-operator-webhook",
    );
    assert_eq!(
        cert["spec"]["issuerRef"],
        serde_json::json!({"kind": "ClusterIssuer", "name": "corp-ca"})
    );
    assert!(!keys(&ci).iter().any(|k| k.contains(" Issuer ")));
    assert!(!keys(&ci).iter().any(|k| k.contains("PodDisruptionBudget")));

    // An existing Secret: mounted, its CA in every webhook's caBundle.
    let cd = render("cert-dir");
    for w in object(&cd, WEBHOOK)["webhooks"].as_array().unwrap() {
        assert_eq!(
            w["clientConfig"]["caBundle"],
            "LS0tLS1CRUdJTiBDRVJUSUZJQ0FURS0tLS0tCg=="
        );
    }
    assert_eq!(
        object(&cd, DEPLOYMENT)["spec"]["template"]["spec"]["volumes"][0]["secret"]["secretName"],
        "webhook-tls"
    );
    let np = object(
        &cd,
        "networking.k8s.io/v1 NetworkPolicy model-validation-operator-system/model-validation-operator",
    );
    assert_eq!(
        np["spec"]["ingress"][0]["from"][0]["ipBlock"]["cidr"],
        "10.0.0.10/32"
    );
    assert_eq!(np["spec"]["egress"].as_array().unwrap().len(), 2, "{np:#}");
}

#[test]
fn values_schema_refuses_wrong_values() {
    let chart = chart_dir();
    for (bad, field) in [
        ("replicas: two\n", "replicas"),
        ("failurePolicy: Sometimes\n", "failurePolicy"),
        ("certificates:\n  mode: vault\n", "mode"),
        ("image:\n  digest: latest\n", "digest"),
        ("replica: 2\n", "replica"),
    ] {
        let values = tempfile::NamedTempFile::new().unwrap();
        std::fs::write(values.path(), bad).unwrap();
        let out = run_tool(
            "helm",
            &[
                "template",
                "model-validation-operator",
                chart.to_str().unwrap(),
                "--values",
                values.path().to_str().unwrap(),
            ],
            &[],
        );
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{bad:?} was accepted");
        assert!(
            stderr.contains("values don't meet the specifications of the schema")
                && stderr.contains(field),
            "{bad:?}: not helm's schema error naming {field}: {stderr}"
        );
    }
    // certDir without a Secret is refused by the template, with the value to set.
    let values = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(values.path(), "certificates:\n  mode: certDir\n").unwrap();
    let out = run_tool(
        "helm",
        &[
            "template",
            "x",
            chart.to_str().unwrap(),
            "--values",
            values.path().to_str().unwrap(),
        ],
        &[],
    );
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("certificates.certDir.secretName"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// `helm install` with default values into a fresh namespace (created by helm, labelled by the
/// chart), then `helm upgrade` to every other value set: the API server accepts each, and
/// NOTES warns when failurePolicy is Ignore. cert-manager and the Prometheus Operator are not
/// installed: stand-in CRDs with open schemas serve their kinds.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_value_set_installs_on_the_api_server() {
    test_cluster::install_crypto_provider();
    let cp = test_cluster::shared().await.unwrap();
    let client = cp.client().unwrap();
    let discovery = Discovery::new(client.clone()).run().await.unwrap();
    let stubs = [
        ("cert-manager.io", "Issuer", "issuers"),
        ("cert-manager.io", "Certificate", "certificates"),
        ("monitoring.coreos.com", "PodMonitor", "podmonitors"),
        ("monitoring.coreos.com", "ServiceMonitor", "servicemonitors"),
        ("monitoring.coreos.com", "PrometheusRule", "prometheusrules"),
    ]
    .map(|(group, kind, plural)| stub_crd(group, kind, plural));
    for crd in &stubs {
        apply_doc(&client, &discovery, crd, "helm-test").await;
    }
    for crd in &stubs {
        established_and_discovered(&client, crd).await;
    }
    let kubeconfig = cp.kubeconfig_path();
    let upgrade = |set: &str, extra: &[&str]| {
        let values = value_file(set);
        // Each value set on its own: helm reuses the last release's values when an upgrade
        // brings none (the default set is empty).
        let mut extra = extra.to_vec();
        extra.push("--reset-values");
        helm_release(
            "upgrade",
            kubeconfig,
            RELEASE,
            OPERATOR_NAMESPACE,
            &[values.path()],
            &extra,
        )
    };
    let start = std::time::Instant::now();
    let values = value_file("default");
    let notes = helm_install(kubeconfig, RELEASE, OPERATOR_NAMESPACE, &[values.path()]);
    assert!(notes.contains("STATUS: deployed"), "{notes}");
    assert!(!notes.contains("WARNING"), "{notes}");
    // The namespace helm created carries the chart's labels.
    let ns = Api::<Namespace>::all(client.clone())
        .get(OPERATOR_NAMESPACE)
        .await
        .unwrap();
    let labels = ns.metadata.labels.unwrap();
    assert_eq!(labels["pod-security.kubernetes.io/enforce"], "restricted");
    assert_eq!(labels["validation.ml.sigstore.dev/ignore"], "true");
    // CRDs from crds/ are served.
    assert!(
        Discovery::new(client.clone())
            .run()
            .await
            .unwrap()
            .groups()
            .any(|g| g.name() == "ml.sigstore.dev")
    );
    let secrets = Api::<Secret>::namespaced(client.clone(), OPERATOR_NAMESPACE);
    assert!(
        secrets
            .get_opt("model-validation-operator-webhook-ca")
            .await
            .unwrap()
            .is_some()
    );

    // The operator fills in the caBundle (as its service account, through the webhook guard);
    // an upgrade must leave it alone: helm's server-side apply owns no caBundle.
    const PEM: &str = "-----BEGIN CERTIFICATE-----\nMIIBfake\n-----END CERTIFICATE-----\n";
    assert!(
        model_validation_operator::registration::ensure_ca_bundle(
            &operator_client(cp),
            "model-validation-operator",
            PEM
        )
        .await
        .unwrap()
    );
    let ca_bundles = || async {
        Api::<MutatingWebhookConfiguration>::all(client.clone())
            .get("model-validation-operator")
            .await
            .unwrap()
            .webhooks
            .unwrap()
            .into_iter()
            .map(|w| w.client_config.ca_bundle.map(|b| b.0))
            .collect::<Vec<_>>()
    };
    assert_eq!(ca_bundles().await, vec![Some(PEM.as_bytes().to_vec()); 4]);

    for (set, _) in VALUE_SETS.iter().skip(1) {
        let mut extra = vec![];
        if *set == "cert-dir" {
            // The chart now sets the caBundle the operator owned: server-side apply refuses to
            // take it over without --force-conflicts (docs/helm.md, upgrade notes).
            let out = upgrade(set, &[]);
            let stderr = String::from_utf8_lossy(&out.stderr);
            assert!(
                !out.status.success() && stderr.contains("conflict") && stderr.contains("caBundle"),
                "{stderr}"
            );
            extra.push("--force-conflicts");
        }
        let notes = success(&format!("helm upgrade ({set})"), upgrade(set, &extra));
        if *set == "pinned" {
            assert_eq!(
                ca_bundles().await,
                vec![Some(PEM.as_bytes().to_vec()); 4],
                "helm upgrade dropped the caBundle the operator maintains"
            );
        }
        assert!(notes.contains("STATUS: deployed"), "{set}: {notes}");
        assert_eq!(
            notes.contains("WARNING: failurePolicy is Ignore"),
            *set == "pinned",
            "{set}: {notes}"
        );
        let d = Api::<Deployment>::namespaced(client.clone(), OPERATOR_NAMESPACE)
            .get("model-validation-operator")
            .await
            .unwrap();
        let image = d.spec.unwrap().template.spec.unwrap().containers[0]
            .image
            .clone()
            .unwrap();
        assert_eq!(image.contains('@'), *set == "pinned", "{set}: {image}");
        let wh = Api::<MutatingWebhookConfiguration>::all(client.clone())
            .get("model-validation-operator")
            .await
            .unwrap();
        let injected = wh
            .metadata
            .annotations
            .unwrap_or_default()
            .contains_key("cert-manager.io/inject-ca-from");
        assert_eq!(injected, set.starts_with("cert-manager"), "{set}");
        // A mode without the self-managed CA removes its Secret; back to default restores it.
        assert_eq!(
            secrets
                .get_opt("model-validation-operator-webhook-ca")
                .await
                .unwrap()
                .is_some(),
            *set == "pinned",
            "{set}"
        );
    }
    let notes = success("helm upgrade (default)", upgrade("default", &[]));
    assert!(notes.contains("STATUS: deployed"), "{notes}");
    // Back to the self-managed CA: its Secret again, and no caBundle of the chart's left (the
    // operator puts its own back).
    assert!(
        secrets
            .get_opt("model-validation-operator-webhook-ca")
            .await
            .unwrap()
            .is_some()
    );
    assert_eq!(ca_bundles().await, vec![None; 4]);
    // helm uninstall removes the webhook (pods no longer wait on the operator) and keeps the
    // CRDs, so no ModelValidation is lost.
    helm_uninstall(kubeconfig, RELEASE, OPERATOR_NAMESPACE);
    assert!(
        Api::<MutatingWebhookConfiguration>::all(client.clone())
            .get_opt("model-validation-operator")
            .await
            .unwrap()
            .is_none()
    );
    assert!(
        Api::<k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition>::all(client.clone())
            .get_opt("modelvalidations.ml.sigstore.dev")
            .await
            .unwrap()
            .is_some(),
        "helm uninstall keeps the CRDs"
    );
    eprintln!(
        "helm install, {} upgrades and uninstall took {:?}",
        VALUE_SETS.len(),
        start.elapsed()
    );
}
