//! The install manifests in deploy/ apply to a real API server, the operator's pod template
//! passes the restricted Pod Security Standard, and the webhook configuration matches what the
//! operator registers itself.

mod support;

use k8s_openapi::api::admissionregistration::v1::MutatingWebhookConfiguration;
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, PostParams};
use support::install_base;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn base_manifests_apply_and_pass_restricted_pod_security() {
    test_cluster::install_crypto_provider();
    let cp = test_cluster::shared().await.unwrap();
    let client = cp.client().unwrap();
    let docs = install_base(&client).await;
    assert!(docs.len() >= 10, "{} documents", docs.len());

    // The pod the Deployment would create is admitted by PodSecurity "restricted" (enforced by
    // the namespace label), checked with a server-side dry run.
    let ns = "model-validation-operator-system";
    let deployment = Api::<Deployment>::namespaced(client.clone(), ns)
        .get("model-validation-operator")
        .await
        .unwrap();
    let template = deployment.spec.unwrap().template;
    let pod = Pod {
        metadata: kube::api::ObjectMeta {
            name: Some("template-check".into()),
            ..template.metadata.unwrap_or_default()
        },
        spec: template.spec,
        status: None,
    };
    Api::<Pod>::namespaced(client.clone(), ns)
        .create(
            &PostParams {
                dry_run: true,
                ..Default::default()
            },
            &pod,
        )
        .await
        .expect("the operator pod must pass the restricted Pod Security Standard");
    // And a privileged pod in that namespace would not: the label really enforces.
    let mut bad = pod.clone();
    bad.spec.as_mut().unwrap().containers[0]
        .security_context
        .as_mut()
        .unwrap()
        .allow_privilege_escalation = Some(true);
    let refused = Api::<Pod>::namespaced(client.clone(), ns)
        .create(
            &PostParams {
                dry_run: true,
                ..Default::default()
            },
            &bad,
        )
        .await
        .expect_err("a pod allowing privilege escalation must be refused");
    match refused {
        kube::Error::Api(e) => {
            assert_eq!(e.code, 403, "{e:?}");
            assert!(
                e.message.contains("violates PodSecurity \"restricted"),
                "refused by PodSecurity \"restricted\", not for another reason: {}",
                e.message
            );
        }
        other => panic!("expected a 403 from PodSecurity, got {other}"),
    }

    // The installed webhook configuration has the shape the operator registers outside a cluster.
    let installed = Api::<MutatingWebhookConfiguration>::all(client.clone())
        .get("model-validation-operator")
        .await
        .unwrap();
    let mut ours = model_validation_operator::registration::webhooks(
        |_| Default::default(),
        ns,
        &model_validation_operator::registration::default_cluster_namespaces(),
    );
    let mut theirs = installed.webhooks.unwrap();
    for w in ours.iter_mut().chain(theirs.iter_mut()) {
        w.client_config = Default::default();
    }
    assert_eq!(
        theirs, ours,
        "deploy/base/webhook.yaml and registration::webhooks() must agree"
    );
    for w in &theirs {
        assert!(w.timeout_seconds.unwrap() <= 10);
        if w.name == "workloads.validation.ml.sigstore.dev" {
            // Early feedback only: pods stay the enforcement point. It writes nothing.
            assert_eq!(w.failure_policy.as_deref(), Some("Ignore"));
            assert_eq!(w.side_effects, "None");
            continue;
        }
        assert_eq!(w.failure_policy.as_deref(), Some("Fail"));
        // It writes Events, skipped on dry runs: "None" would be a false declaration.
        assert_eq!(w.side_effects, "NoneOnDryRun");
    }
}
