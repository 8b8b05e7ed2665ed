//! Least privilege on a real API server: with the RBAC, the shipped CA Secret and Lease and the
//! webhook guard of `deploy/base` applied, the operator's service account (impersonated) may
//! change only the caBundle of its own MutatingWebhookConfiguration, may update only its CA
//! Secret and its Lease, and reads Secrets of its own namespace only. Every refusal has a
//! passing twin.

mod support;

use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::admissionregistration::v1::MutatingWebhookConfiguration;
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::Secret;
use kube::Client;
use kube::api::{Api, DeleteParams, ListParams, Patch, PatchParams, PostParams};
use kube::discovery::Discovery;
use model_validation_operator::certs::{self, SelfManaged};
use model_validation_operator::controller::lease;
use model_validation_operator::metrics::Metrics;
use model_validation_operator::registration::ensure_ca_bundle;
use model_validation_operator::tls::{self, Ca};
use serde_json::{Value, json};
use support::{
    OPERATOR_NAMESPACE, api_message, apply_doc, deploy_dir, manifest, operator_client, wait_for,
};

/// The operator's own webhook configuration in deploy/base.
const OWN: &str = "model-validation-operator";
const CA_SECRET: &str = "model-validation-operator-webhook-ca";
const LEASE: &str = "model-validation-operator";

/// Applies what decides the operator's rights (namespace, RBAC, CA Secret, Lease, its webhook
/// configuration and the guard) and returns (admin, operator) clients once RBAC and the guard
/// are in force.
async fn installed() -> (Client, Client) {
    test_cluster::install_crypto_provider();
    let cp = test_cluster::shared().await.unwrap();
    let admin = cp.client().unwrap();
    // Once per binary: a test deletes the CA Secret, which a second apply would bring back.
    static APPLIED: tokio::sync::OnceCell<()> = tokio::sync::OnceCell::const_new();
    APPLIED
        .get_or_init(|| async {
            let discovery = Discovery::new(admin.clone()).run().await.unwrap();
            for file in [
                "namespace.yaml",
                "rbac.yaml",
                "webhook-ca-secret.yaml",
                "lease.yaml",
                "webhook.yaml",
                "webhook-guard.yaml",
            ] {
                for doc in manifest(&deploy_dir().join("base").join(file)) {
                    apply_doc(&admin, &discovery, &doc, "rbac-test").await;
                }
            }
        })
        .await;
    let operator = operator_client(cp);
    // RBAC and admission policies reach the authorizer and admission through informers: wait
    // until the service account may read its configuration and the guard refuses a widening
    // (checked as a dry run, so nothing changes).
    let own = Api::<MutatingWebhookConfiguration>::all(operator.clone());
    let own = &own;
    wait_for(
        "RBAC to let the operator read its webhook configuration",
        Duration::from_secs(30),
        || async move { own.get(OWN).await.ok().map(|_| ()) },
    )
    .await;
    wait_for(
        "the webhook guard to be enforced",
        Duration::from_secs(30),
        || async move {
            let dry = PatchParams {
                dry_run: true,
                ..Default::default()
            };
            let patch =
                json!([{"op": "replace", "path": "/webhooks/0/timeoutSeconds", "value": 5}]);
            let r = own
                .patch(
                    OWN,
                    &dry,
                    &Patch::<()>::Json(serde_json::from_value(patch).unwrap()),
                )
                .await;
            r.err()
                .map(api_message)
                .filter(|m| m.contains("may change only clientConfig.caBundle"))
                .map(|_| ())
        },
    )
    .await;
    (admin, operator)
}

async fn json_patch(
    api: &Api<MutatingWebhookConfiguration>,
    name: &str,
    ops: Value,
) -> Result<(), kube::Error> {
    api.patch(
        name,
        &PatchParams::default(),
        &Patch::<()>::Json(serde_json::from_value(ops).unwrap()),
    )
    .await
    .map(|_| ())
}

fn code(e: &kube::Error) -> u16 {
    match e {
        kube::Error::Api(s) => s.code,
        _ => 0,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_operator_may_change_only_the_ca_bundle_of_its_own_webhook_configuration() {
    let (admin, operator) = installed().await;
    let admin_mwc = Api::<MutatingWebhookConfiguration>::all(admin.clone());
    let op_mwc = Api::<MutatingWebhookConfiguration>::all(operator.clone());

    // Another webhook configuration: the operator can neither read nor patch it.
    let other: MutatingWebhookConfiguration = serde_json::from_value(json!({
        "metadata": {"name": "rbac-test-other"},
        "webhooks": [{"name": "other.example.com", "admissionReviewVersions": ["v1"], "sideEffects": "None",
            "failurePolicy": "Ignore", "clientConfig": {"url": "https://127.0.0.1:1/x"},
            "objectSelector": {"matchLabels": {"rbac-test": "never"}},
            "rules": [{"apiGroups": [""], "apiVersions": ["v1"], "operations": ["CREATE"], "resources": ["configmaps"]}]}]
    }))
    .unwrap();
    admin_mwc
        .patch(
            "rbac-test-other",
            &PatchParams::apply("rbac-test").force(),
            &Patch::Apply(&other),
        )
        .await
        .unwrap();
    let ca = Ca::generate().unwrap();
    let e = ensure_ca_bundle(&operator, "rbac-test-other", &ca.cert_pem)
        .await
        .expect_err("another configuration is not the operator's");
    assert!(format!("{e:#}").contains("forbidden"), "{e:#}");
    let e = json_patch(
        &op_mwc,
        "rbac-test-other",
        json!([{"op": "replace", "path": "/webhooks/0/failurePolicy", "value": "Fail"}]),
    )
    .await
    .unwrap_err();
    assert_eq!(code(&e), 403, "{e}");
    assert!(api_message(e).contains("cannot patch resource \"mutatingwebhookconfigurations\""));
    let e = op_mwc.list(&ListParams::default()).await.unwrap_err();
    assert_eq!(code(&e), 403, "listing every configuration: {e}");

    // Passing twin: the operator's own caBundle, one CA and then two (a rotation's overlap).
    assert!(
        ensure_ca_bundle(&operator, OWN, &ca.cert_pem)
            .await
            .unwrap()
    );
    let two = format!("{}{}", Ca::generate().unwrap().cert_pem, ca.cert_pem);
    assert!(ensure_ca_bundle(&operator, OWN, &two).await.unwrap());
    let now = admin_mwc.get(OWN).await.unwrap();
    for w in now.webhooks.as_ref().unwrap() {
        assert_eq!(
            w.client_config.ca_bundle.as_ref().unwrap().0,
            two.as_bytes(),
            "{}",
            w.name
        );
    }
    assert!(
        !ensure_ca_bundle(&operator, OWN, &two).await.unwrap(),
        "nothing left to change"
    );

    // Widening its own configuration: every field but caBundle is pinned, and a caBundle
    // change does not carry another one through.
    let widen = [
        (
            "rules",
            json!([{"op": "replace", "path": "/webhooks/0/rules/0/resources", "value": ["*"]}]),
        ),
        (
            "rules",
            json!([{"op": "replace", "path": "/webhooks/0/rules/0/operations", "value": ["*"]}]),
        ),
        (
            "objectSelector",
            json!([{"op": "replace", "path": "/webhooks/0/objectSelector", "value": {}}]),
        ),
        (
            "namespaceSelector",
            json!([{"op": "replace", "path": "/webhooks/1/namespaceSelector", "value": {}}]),
        ),
        (
            "failurePolicy",
            json!([{"op": "replace", "path": "/webhooks/0/failurePolicy", "value": "Ignore"}]),
        ),
        (
            "clientConfig.service",
            json!([{"op": "replace", "path": "/webhooks/0/clientConfig/service/name", "value": "elsewhere"}]),
        ),
        (
            "clientConfig.service",
            json!([{"op": "remove", "path": "/webhooks/0/clientConfig/service"},
                                         {"op": "add", "path": "/webhooks/0/clientConfig/url", "value": "https://evil.example.com/"}]),
        ),
        (
            "sideEffects",
            json!([{"op": "replace", "path": "/webhooks/0/sideEffects", "value": "None"}]),
        ),
        (
            "timeoutSeconds",
            json!([{"op": "replace", "path": "/webhooks/0/timeoutSeconds", "value": 30}]),
        ),
        (
            "reinvocationPolicy",
            json!([{"op": "replace", "path": "/webhooks/0/reinvocationPolicy", "value": "Never"}]),
        ),
        (
            "matchPolicy",
            json!([{"op": "replace", "path": "/webhooks/0/matchPolicy", "value": "Exact"}]),
        ),
        (
            "matchConditions",
            json!([{"op": "add", "path": "/webhooks/0/matchConditions", "value": [{"name": "never", "expression": "false"}]}]),
        ),
        (
            "admissionReviewVersions",
            json!([{"op": "replace", "path": "/webhooks/0/admissionReviewVersions", "value": ["v1", "v1beta1"]}]),
        ),
        ("removed", json!([{"op": "remove", "path": "/webhooks/1"}])),
        (
            "renamed",
            json!([{"op": "replace", "path": "/webhooks/1/name", "value": "other.validation.ml.sigstore.dev"}]),
        ),
        (
            "rules",
            json!([{"op": "replace", "path": "/webhooks/0/clientConfig/caBundle", "value": "Zm9v"},
                          {"op": "replace", "path": "/webhooks/0/rules/0/resources", "value": ["*"]}]),
        ),
    ];
    for (field, ops) in widen {
        let e = json_patch(&op_mwc, OWN, ops.clone())
            .await
            .expect_err(&format!("the operator changed {field}: {ops}"));
        assert_eq!(code(&e), 403, "{field}: {e}");
        let msg = api_message(e);
        let want = match field {
            "removed" | "renamed" => "added, removed or renamed a webhook".to_string(),
            f => format!("it changed {f}"),
        };
        assert!(msg.contains(&want), "{field}: {msg}");
    }
    let after = admin_mwc.get(OWN).await.unwrap();
    assert_eq!(after.webhooks, now.webhooks, "nothing was changed");

    // Passing twin: a cluster admin still edits the configuration (the guard matches only the
    // operator's service account); then it is put back.
    json_patch(
        &admin_mwc,
        OWN,
        json!([{"op": "replace", "path": "/webhooks/0/timeoutSeconds", "value": 9}]),
    )
    .await
    .unwrap();
    json_patch(
        &admin_mwc,
        OWN,
        json!([{"op": "replace", "path": "/webhooks/0/timeoutSeconds", "value": 10}]),
    )
    .await
    .unwrap();
    admin_mwc
        .delete("rbac-test-other", &DeleteParams::default())
        .await
        .unwrap();
}

fn manager() -> SelfManaged {
    SelfManaged {
        namespace: OPERATOR_NAMESPACE.into(),
        secret_name: CA_SECRET.into(),
        dns_names: vec!["localhost".into()],
        ips: vec![],
        lifetime: tls::SERVING_LIFETIME,
        ca_lifetime: tls::CA_LIFETIME,
        ca_overlap: Duration::from_secs(3600),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_operator_updates_only_its_ca_secret_and_lease_and_reads_secrets_only_at_home() {
    let (admin, operator) = installed().await;
    let admin_secrets = Api::<Secret>::namespaced(admin.clone(), OPERATOR_NAMESPACE);
    let op_secrets = Api::<Secret>::namespaced(operator.clone(), OPERATOR_NAMESPACE);

    // Passing twin: the shipped, empty Secret is filled by the operator with get and update.
    let cas = manager().load_or_rotate(&operator, true).await.unwrap();
    let stored = op_secrets.get(CA_SECRET).await.unwrap();
    assert_eq!(
        stored.data.as_ref().unwrap()[certs::CA_CERT].0,
        cas.current.cert_pem.as_bytes()
    );
    // Removing ca.key (the manual rotation trigger) makes it rotate, with update only.
    support::remove_ca_key(&admin_secrets, CA_SECRET).await;
    let rotated = manager().load_or_rotate(&operator, true).await.unwrap();
    assert_ne!(rotated.current, cas.current);
    assert_eq!(
        rotated.previous.as_deref(),
        Some(cas.current.cert_pem.as_str())
    );

    // Other Secrets of its namespace: read (ClusterModelValidations reference trust material
    // there), never created or changed; in other namespaces, not even read.
    let decoy: Secret = serde_json::from_value(
        json!({"metadata": {"name": "rbac-test-decoy"}, "stringData": {"k": "v"}}),
    )
    .unwrap();
    let _ = admin_secrets
        .delete("rbac-test-decoy", &DeleteParams::default())
        .await;
    admin_secrets
        .create(&PostParams::default(), &decoy)
        .await
        .unwrap();
    op_secrets.get("rbac-test-decoy").await.unwrap();
    assert!(
        !op_secrets
            .list(&ListParams::default())
            .await
            .unwrap()
            .items
            .is_empty()
    );
    let mut changed = decoy.clone();
    changed.string_data = Some([("k".to_string(), "changed".to_string())].into());
    let e = op_secrets
        .replace("rbac-test-decoy", &PostParams::default(), &changed)
        .await
        .unwrap_err();
    assert_eq!(code(&e), 403, "changing another Secret: {e}");
    let e = Api::<Secret>::namespaced(operator.clone(), "default")
        .list(&ListParams::default())
        .await
        .unwrap_err();
    assert_eq!(code(&e), 403, "listing Secrets of another namespace: {e}");
    let made: Secret =
        serde_json::from_value(json!({"metadata": {"name": "rbac-test-made"}})).unwrap();
    let e = op_secrets
        .create(&PostParams::default(), &made)
        .await
        .unwrap_err();
    assert_eq!(code(&e), 403, "creating a Secret: {e}");
    let e = Api::<Secret>::namespaced(operator.clone(), "default")
        .get(CA_SECRET)
        .await
        .unwrap_err();
    assert_eq!(
        code(&e),
        403,
        "the CA Secret's name in another namespace: {e}"
    );

    // Without the shipped Secret the operator cannot start, and says what to apply.
    admin_secrets
        .delete(CA_SECRET, &DeleteParams::default())
        .await
        .unwrap();
    let e = manager().load_or_rotate(&operator, true).await.unwrap_err();
    let text = format!("{e:#}");
    assert!(
        text.contains("apply deploy/base/webhook-ca-secret.yaml"),
        "{text}"
    );
    assert!(admin_secrets.get_opt(CA_SECRET).await.unwrap().is_none());
    // Passing twin: with broad credentials (local runs) it creates the Secret itself.
    let created = manager().load_or_rotate(&admin, true).await.unwrap();
    assert_eq!(created.previous, None);
    admin_secrets
        .delete("rbac-test-decoy", &DeleteParams::default())
        .await
        .unwrap();

    // The Lease: its own one read and updated, no other created or read.
    let op_leases = Api::<Lease>::namespaced(operator.clone(), OPERATOR_NAMESPACE);
    // Leader election as the operator runs it, on the shipped empty Lease, without create.
    let leading = Arc::new(tokio::sync::Notify::new());
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let election = tokio::spawn({
        let (operator, leading) = (operator.clone(), leading.clone());
        async move {
            lease::hold(
                operator,
                OPERATOR_NAMESPACE.into(),
                "rbac-test-leader".into(),
                Metrics::new(),
                stopped,
                move || {
                    let leading = leading.clone();
                    async move {
                        leading.notify_one();
                        std::future::pending::<()>().await
                    }
                },
            )
            .await
        }
    });
    tokio::time::timeout(Duration::from_secs(60), leading.notified())
        .await
        .expect("the operator's service account takes the shipped Lease within 60 s");
    let held = op_leases.get(LEASE).await.unwrap();
    assert_eq!(
        held.spec.unwrap().holder_identity.as_deref(),
        Some("rbac-test-leader")
    );
    stop.send(()).unwrap();
    tokio::time::timeout(Duration::from_secs(30), election)
        .await
        .expect("the election stops")
        .unwrap();
    let mut lease = op_leases.get(LEASE).await.unwrap();
    lease
        .spec
        .get_or_insert_with(Default::default)
        .holder_identity = Some("rbac-test".into());
    op_leases
        .replace(LEASE, &PostParams::default(), &lease)
        .await
        .unwrap();
    let other: Lease =
        serde_json::from_value(json!({"metadata": {"name": "rbac-test-lease"}})).unwrap();
    let e = op_leases
        .create(&PostParams::default(), &other)
        .await
        .unwrap_err();
    assert_eq!(code(&e), 403, "creating a Lease: {e}");
    let e = op_leases.list(&ListParams::default()).await.unwrap_err();
    assert_eq!(code(&e), 403, "listing Leases: {e}");
}
