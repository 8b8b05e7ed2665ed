//! The admission decision for models in image volumes, with the registry's verdicts given:
//! what must be asked, pinning, refusals naming the volume and reason, retry when the registry
//! is away, modes, and the policies' own mistakes. Every refusal has an admitted twin.

use super::*;
use crate::images::{ImageVerdict, Verdicts};
use crate::test_support::{KEY_PEM, cluster_policy};

const REF: &str = "registry.example.com/models/llm:v1";
const PINNED: &str = "registry.example.com/models/llm@sha256:aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";

/// An image-only ModelValidation for `registry.example.com/models/**`, key in the policy.
fn image_mv() -> ModelValidationSpec {
    serde_json::from_value(json!({
        "images": {"globs": ["registry.example.com/models/**"]},
        "config": {"publicKeyConfig": {"keyPem": KEY_PEM}},
    }))
    .unwrap()
}

fn image_pod(labels: Value, reference: &str) -> Value {
    json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": "p", "namespace": "team", "labels": labels},
        "spec": {
            "containers": [{"name": "app", "image": "app", "volumeMounts": [{"name": "model", "mountPath": "/models"}]}],
            "volumes": [{"name": "model", "image": {"reference": reference}}]
        }
    })
}

/// Namespace `team` (no labels) under the one cluster policy `cmv`, which selects every
/// namespace.
fn governing(cmv: crate::cluster_policy::ClusterPolicy) -> Memory {
    Memory {
        cluster: vec![cmv],
        namespace_labels: [("team".to_string(), BTreeMap::new())].into(),
        ..Default::default()
    }
}

fn mv_policies(spec: ModelValidationSpec) -> Memory {
    Memory::default().with("team", "mv", spec)
}

/// The checks the first pass asks for.
fn needed(req: &AdmissionRequest<Pod>, policies: &Memory) -> Vec<crate::images::ImageCheck> {
    match decide(req, policies, &cfg()) {
        Decision::NeedImages(checks) => checks,
        other => panic!("expected NeedImages, got {other:?}"),
    }
}

/// Every needed check answered with `verdict`.
fn answer(req: &AdmissionRequest<Pod>, policies: &Memory, verdict: ImageVerdict) -> Decision {
    let mut v = Verdicts::default();
    for c in needed(req, policies) {
        v.insert(&c.reference, &c.trust.key, verdict.clone());
    }
    decide_with(req, policies, &cfg(), &v)
}

fn volume_reference(doc: &Value) -> &str {
    doc["spec"]["volumes"][0]["image"]["reference"]
        .as_str()
        .unwrap()
}

#[test]
fn a_verified_image_is_pinned_and_nothing_is_injected() {
    let p = image_pod(json!({LABEL: "mv"}), REF);
    let req = review("CREATE", p.clone());
    let policies = mv_policies(image_mv());
    let checks = needed(&req, &policies);
    assert_eq!(checks.len(), 1);
    assert_eq!(checks[0].reference, REF);
    assert_eq!(checks[0].trust.display, "ModelValidation team/mv");
    assert!(checks[0].trust.document.contains("publicKeyConfig"));
    let d = answer(
        &req,
        &policies,
        ImageVerdict::Verified {
            pinned: PINNED.into(),
        },
    );
    let doc = with_patch(&p, &d.respond(&req));
    assert_eq!(volume_reference(&doc), PINNED);
    assert_eq!(
        doc["metadata"]["annotations"][annotations::PINNED_IMAGES],
        format!("model={PINNED}"),
        "the pin is recorded for the ValidatingAdmissionPolicy"
    );
    assert!(doc["spec"].get("initContainers").is_none(), "{doc}");
    // Re-invoked on the pinned pod: the same verdict changes nothing.
    let again = review("CREATE", doc.clone());
    let mut v = Verdicts::default();
    for c in needed(&again, &policies) {
        assert_eq!(c.reference, PINNED);
        v.insert(
            &c.reference,
            &c.trust.key,
            ImageVerdict::Verified {
                pinned: PINNED.into(),
            },
        );
    }
    assert_eq!(
        decide_with(&again, &policies, &cfg(), &v),
        Decision::Unchanged
    );
}

#[test]
fn a_refused_image_is_denied_naming_the_volume_the_reference_and_the_reason() {
    let req = review("CREATE", image_pod(json!({LABEL: "mv"}), REF));
    let d = answer(
        &req,
        &mv_policies(image_mv()),
        ImageVerdict::Refused("no model signature is attached to it".into()),
    );
    match d {
        Decision::Deny { message, policy } => {
            assert_eq!(
                message,
                format!(
                    "ModelValidation team/mv: volume \"model\" (image \"{REF}\"): no model signature is attached to it"
                )
            );
            assert_eq!(policy.as_deref(), Some("mv"));
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn an_unreachable_registry_refuses_with_retry() {
    let req = review("CREATE", image_pod(json!({LABEL: "mv"}), REF));
    let d = answer(
        &req,
        &mv_policies(image_mv()),
        ImageVerdict::Unreachable("cannot reach registry.example.com: retry".into()),
    );
    assert!(
        matches!(&d, Decision::Retry { message } if message.contains("volume \"model\"") && message.contains("retry")),
        "{d:?}"
    );
}

#[test]
fn a_named_image_policy_with_nothing_to_verify_refuses_and_an_unnamed_cluster_one_passes() {
    let other = "ghcr.io/someone/else:v1";
    let d = decide(
        &review("CREATE", image_pod(json!({LABEL: "mv"}), other)),
        &mv_policies(image_mv()),
        &cfg(),
    );
    assert!(
        matches!(&d, Decision::Deny { message, .. } if message.contains("registry.example.com/models/**") && message.contains("this pod has none")),
        "{d:?}"
    );
    // The cluster policy only governs what its patterns match: the same pod passes unchanged.
    let cmv = cluster_policy(
        "images",
        json!({"model": null, "images": {"globs": ["registry.example.com/models/**"]}}),
    );
    let policies = governing(cmv);
    let p = image_pod(json!({}), other);
    assert_eq!(
        decide(&review("CREATE", p), &policies, &cfg()),
        Decision::Unchanged
    );
    // ... and verifies what they match, with the policy's authorities.
    let checks = needed(&review("CREATE", image_pod(json!({}), REF)), &policies);
    assert_eq!(checks[0].trust.display, "ClusterModelValidation images");
    assert!(checks[0].trust.document.contains("release"));
}

#[test]
fn trust_read_from_the_pod_cannot_verify_images() {
    let mut spec = image_mv();
    spec.config.public_key_config = Some(crate::crd::PublicKeyConfig {
        key_path: Some("/keys/pub.pem".into()),
        key_pem: None,
    });
    let d = decide(
        &review("CREATE", image_pod(json!({LABEL: "mv"}), REF)),
        &mv_policies(spec),
        &cfg(),
    );
    assert!(
        matches!(&d, Decision::Deny { message, .. } if message.contains("spec.config.publicKeyConfig.keyPem")),
        "{d:?}"
    );
}

#[test]
fn a_missing_pull_secret_is_named_with_how_to_create_it() {
    let cmv = cluster_policy(
        "images",
        json!({"model": null, "images": {"globs": ["registry.example.com/**"], "pullSecret": "registry-creds"}}),
    );
    let policies = governing(cmv);
    let d = decide(
        &review("CREATE", image_pod(json!({}), REF)),
        &policies,
        &cfg(),
    );
    assert!(
        matches!(&d, Decision::Deny { message, .. } if message.contains("registry-creds") && message.contains("kubectl create secret docker-registry")),
        "{d:?}"
    );
}

#[test]
fn a_tenants_model_validation_cannot_borrow_the_platforms_pull_secret() {
    let mut spec = image_mv();
    spec.images.as_mut().unwrap().pull_secret = Some("registry-creds".into());
    let d = decide(
        &review("CREATE", image_pod(json!({LABEL: "mv"}), REF)),
        &mv_policies(spec),
        &cfg(),
    );
    assert!(
        matches!(&d, Decision::Deny { message, .. } if message.contains("spec.images.pullSecret is for ClusterModelValidations")),
        "{d:?}"
    );
}

#[test]
fn a_policy_with_files_and_images_injects_its_verifier_and_pins_in_one_patch() {
    let mut spec = key_spec();
    spec.images = image_mv().images;
    spec.config = image_mv().config;
    let mut p = image_pod(json!({LABEL: "mv"}), REF);
    p["spec"]["volumes"]
        .as_array_mut()
        .unwrap()
        .push(json!({"name": "data", "emptyDir": {}}));
    p["spec"]["containers"][0]["volumeMounts"]
        .as_array_mut()
        .unwrap()
        .push(json!({"name": "data", "mountPath": "/data"}));
    let req = review("CREATE", p.clone());
    let d = answer(
        &req,
        &mv_policies(spec),
        ImageVerdict::Verified {
            pinned: PINNED.into(),
        },
    );
    let (doc, verifier) = injected(&p, &d.respond(&req));
    assert_eq!(volume_reference(&doc), PINNED);
    assert_eq!(verifier.name, crate::names::VERIFY_CONTAINER);
}

#[test]
fn warn_mode_admits_unpinned_with_a_warning_and_audit_records_a_finding() {
    for (mode, warned) in [("warn", true), ("audit", false)] {
        let cmv = cluster_policy(
            "images",
            json!({"model": null, "mode": mode, "images": {"globs": ["registry.example.com/**"]}}),
        );
        let policies = governing(cmv);
        let mut p = image_pod(json!({}), REF);
        // A pin the pod brought itself is not kept: only the webhook records pins.
        p["metadata"]["annotations"] = json!({annotations::PINNED_IMAGES: format!("model={REF}")});
        let req = review("CREATE", p.clone());
        let d = answer(
            &req,
            &policies,
            ImageVerdict::Refused("signed by someone else".into()),
        );
        let resp = d.respond(&req);
        let doc = with_patch(&p, &resp);
        assert_eq!(volume_reference(&doc), REF, "{mode}: not pinned");
        assert!(
            doc["metadata"]["annotations"]
                .get(annotations::PINNED_IMAGES)
                .is_none(),
            "{mode}: {doc}"
        );
        let findings = doc["metadata"]["annotations"][annotations::ADMISSION_FINDINGS]
            .as_str()
            .unwrap();
        assert!(findings.contains("signed by someone else"), "{findings}");
        assert_eq!(
            resp.warnings
                .unwrap_or_default()
                .iter()
                .any(|w| w.contains("signed by someone else")),
            warned,
            "{mode}"
        );
    }
}

#[test]
fn a_reference_that_moved_between_two_policies_verdicts_is_retried() {
    let cmv = cluster_policy(
        "images",
        json!({"model": null, "images": {"globs": ["registry.example.com/**"]}}),
    );
    let mut policies = mv_policies(image_mv());
    policies.cluster = vec![cmv];
    policies.namespace_labels = [("team".to_string(), BTreeMap::new())].into();
    let req = review("CREATE", image_pod(json!({LABEL: "mv"}), REF));
    let checks = needed(&req, &policies);
    assert_eq!(checks.len(), 2, "one check per policy trust");
    let mut v = Verdicts::default();
    for (i, c) in checks.iter().enumerate() {
        v.insert(
            &c.reference,
            &c.trust.key,
            ImageVerdict::Verified {
                pinned: format!(
                    "registry.example.com/models/llm@sha256:{}",
                    i.to_string().repeat(64)
                ),
            },
        );
    }
    let d = decide_with(&req, &policies, &cfg(), &v);
    assert!(
        matches!(&d, Decision::Retry { message } if message.contains("moved")),
        "{d:?}"
    );
    // Twin: both verdicts on the same manifest pin it.
    let mut same = Verdicts::default();
    for c in &checks {
        same.insert(
            &c.reference,
            &c.trust.key,
            ImageVerdict::Verified {
                pinned: PINNED.into(),
            },
        );
    }
    let p = image_pod(json!({LABEL: "mv"}), REF);
    let doc = with_patch(
        &p,
        &decide_with(&req, &policies, &cfg(), &same).respond(&req),
    );
    assert_eq!(volume_reference(&doc), PINNED);
}

#[test]
fn bad_patterns_refuse_every_image_volume_of_the_pods_they_apply_to() {
    let mut spec = image_mv();
    spec.images.as_mut().unwrap().globs = vec!["registry.example.com/models/llm:v1".into()];
    let d = decide(
        &review("CREATE", image_pod(json!({LABEL: "mv"}), REF)),
        &mv_policies(spec),
        &cfg(),
    );
    assert!(
        matches!(&d, Decision::Deny { message, .. } if message.contains("spec.images.globs[0]") && message.contains("drop the :tag")),
        "{d:?}"
    );
}

#[test]
fn a_cluster_policy_that_verified_images_is_recorded_on_the_pod_for_its_status() {
    let cmv = cluster_policy(
        "images",
        json!({"model": null, "images": {"globs": ["registry.example.com/**"]}}),
    );
    let hash = cmv.hash.clone();
    let policies = governing(cmv);
    let p = image_pod(json!({}), REF);
    let req = review("CREATE", p.clone());
    let verified = ImageVerdict::Verified {
        pinned: PINNED.into(),
    };
    let doc = with_patch(&p, &answer(&req, &policies, verified).respond(&req));
    assert_eq!(
        doc["metadata"]["annotations"][annotations::CLUSTER_POLICIES],
        format!("images@{hash}")
    );
    assert_eq!(
        doc["metadata"]["labels"][crate::names::GOVERNED_LABEL],
        "true"
    );
    // Twin: refused in audit mode, it is not recorded as applied (its finding is).
    let audit = cluster_policy(
        "images",
        json!({"model": null, "mode": "audit", "images": {"globs": ["registry.example.com/**"]}}),
    );
    let policies = governing(audit);
    let refused = ImageVerdict::Refused("unsigned".into());
    let doc = with_patch(&p, &answer(&req, &policies, refused).respond(&req));
    assert!(
        doc["metadata"]["annotations"]
            .get(annotations::CLUSTER_POLICIES)
            .is_none(),
        "{doc}"
    );
}
