//! The admission decision with ClusterModelValidations: selection without labels, several
//! policies in name order, modes, and failing closed on what the cache does not know.

use super::*;
use crate::cluster_policy::ClusterPolicy;
use crate::names::annotations;
use crate::test_support::cluster_policy;

/// A cluster policy `name` for `/data/model` in namespaces labelled `tier: ml`, with `more`
/// spec fields.
fn policy(name: &str, more: Value) -> ClusterPolicy {
    let mut spec = json!({"namespaceSelector": {"matchLabels": {"tier": "ml"}}});
    for (k, v) in more.as_object().unwrap() {
        spec[k] = v.clone();
    }
    cluster_policy(name, spec)
}

/// Namespace `team` labelled `tier: ml`, with `policies`.
fn governed(policies: Vec<ClusterPolicy>) -> Memory {
    Memory {
        cluster: policies,
        namespace_labels: [(
            "team".to_string(),
            [("tier".to_string(), "ml".to_string())].into(),
        )]
        .into(),
        ..Default::default()
    }
}

fn patched(pod_json: &Value, resp: &AdmissionResponse) -> Value {
    injected(pod_json, resp).0
}

fn init_names(doc: &Value) -> Vec<String> {
    doc["spec"]["initContainers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap().to_string())
        .collect()
}

#[test]
fn an_unlabelled_pod_gets_one_verifier_per_governing_policy_in_name_order() {
    let p = pod(json!({"app": "llm"}), json!({}), json!([]));
    let policies = governed(vec![policy("zeta", json!({})), policy("alpha", json!({}))]);
    let doc = patched(&p, &admit(&review("CREATE", p.clone()), &policies, &cfg()));
    assert_eq!(init_names(&doc), ["cmv-alpha", "cmv-zeta"]);
    let alpha = &doc["spec"]["initContainers"][0];
    let args: Vec<&str> = alpha["args"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a.as_str().unwrap())
        .collect();
    assert_eq!(
        args[..4],
        [
            "verify",
            "authorities",
            "--policy-env",
            "MODEL_SIGNING_AUTHORITIES"
        ]
    );
    // The document travels in the container's env: the pod's volumes never supply trust.
    let document = alpha["env"][0]["value"].as_str().unwrap();
    assert!(document.contains(r#""name":"release""#), "{document}");
    assert_eq!(alpha["securityContext"]["readOnlyRootFilesystem"], true);
    let recorded = doc["metadata"]["annotations"][annotations::CLUSTER_POLICIES]
        .as_str()
        .unwrap();
    assert!(
        recorded.starts_with("alpha@") && recorded.contains(",zeta@"),
        "{recorded}"
    );
    // With the pod's label, its namespace's ModelValidation is added after them.
    let labelled = pod(json!({LABEL: "mv"}), json!({}), json!([]));
    let mut with_mv = governed(vec![policy("alpha", json!({}))]);
    with_mv = with_mv.with("team", "mv", key_spec());
    let doc = patched(
        &labelled,
        &admit(&review("CREATE", labelled.clone()), &with_mv, &cfg()),
    );
    assert_eq!(init_names(&doc), ["cmv-alpha", "model-validation"]);
}

#[test]
fn no_label_and_no_namespace_label_opts_a_governed_pod_out() {
    let p = pod(
        json!({LABEL: "absent-elsewhere"}),
        json!({annotations::IGNORE_UNSIGNED_FILES: "true"}),
        json!([]),
    );
    let mut policies = governed(vec![policy("org", json!({}))]);
    policies.ignored.insert("team".into());
    let resp = admit(&review("CREATE", p.clone()), &policies, &cfg());
    assert_eq!(init_names(&patched(&p, &resp)), ["cmv-org"]);
    // Twin: a namespace the selector does not match is left alone.
    policies.namespace_labels.insert(
        "team".into(),
        [("tier".to_string(), "web".to_string())].into(),
    );
    policies.ignored.clear();
    let unlabelled = pod(json!({}), json!({}), json!([]));
    assert_eq!(
        decide(&review("CREATE", unlabelled), &policies, &cfg()),
        Decision::Unchanged
    );
}

#[test]
fn namespaces_outside_the_operators_reach_are_never_governed() {
    let p = pod(json!({}), json!({}), json!([]));
    let policies = governed(vec![policy("org", json!({"namespaceSelector": {}}))]);
    let mut narrow = cfg();
    narrow.governable_namespaces = kube::core::Selector::from_iter([("ml-platform", "enabled")]);
    assert_eq!(
        decide(&review("CREATE", p.clone()), &policies, &narrow),
        Decision::Unchanged
    );
    // Twin: the same namespace in reach is governed.
    assert!(matches!(
        decide(&review("CREATE", p), &policies, &cfg()),
        Decision::Inject { .. }
    ));
}

#[test]
fn a_refusal_names_every_failing_policy_and_modes_decide_what_it_does() {
    let p = pod(json!({}), json!({}), json!([]));
    let elsewhere = |mode: &str| json!({"mode": mode, "model": {"path": "/models/llm", "signaturePath": "/models/llm/model.sig"}});
    let both = governed(vec![
        policy("x-enforce", elsewhere("enforce")),
        policy("y-enforce", elsewhere("enforce")),
    ]);
    let msg = denial(&admit(&review("CREATE", p.clone()), &both, &cfg()));
    assert!(
        msg.contains("ClusterModelValidation x-enforce")
            && msg.contains("ClusterModelValidation y-enforce"),
        "{msg}"
    );
    assert!(msg.contains("/models/llm is not on any volume"), "{msg}");
    // warn: admitted without the verifier (only the refusal is recorded on it), with the
    // refusal as a warning.
    let warn = governed(vec![policy("w", elsewhere("warn"))]);
    let resp = admit(&review("CREATE", p.clone()), &warn, &cfg());
    assert!(resp.allowed);
    assert_eq!(with_patch(&p, &resp)["spec"]["initContainers"], json!([]));
    let warnings = resp.warnings.unwrap();
    assert!(
        warnings[0].contains("ClusterModelValidation w") && warnings[0].contains("warn mode"),
        "{warnings:?}"
    );
    // audit: admitted without the verifier, silently.
    let audit = governed(vec![policy("a", elsewhere("audit"))]);
    let resp = admit(&review("CREATE", p.clone()), &audit, &cfg());
    assert!(resp.allowed && resp.warnings.is_none());
    assert_eq!(with_patch(&p, &resp)["spec"]["initContainers"], json!([]));
    // A policy that can be applied still is, beside one in warn mode that cannot.
    let mixed = governed(vec![
        policy("a-ok", json!({})),
        policy("w", elsewhere("warn")),
    ]);
    let resp = admit(&review("CREATE", p.clone()), &mixed, &cfg());
    assert_eq!(init_names(&patched(&p, &resp)), ["cmv-a-ok"]);
}

#[test]
fn an_unresolved_reference_refuses_naming_the_secret() {
    let p = pod(json!({}), json!({}), json!([]));
    let by_ref = governed(vec![policy(
        "refs",
        json!({"authorities": [{"name": "release", "key": {"secretRef": {"name": "llm-keys", "key": "cosign.pub"}}}]}),
    )]);
    let msg = denial(&admit(&review("CREATE", p), &by_ref, &cfg()));
    assert!(
        msg.contains("ClusterModelValidation refs")
            && msg.contains("spec.authorities[0].key.secretRef")
            && msg.contains("Secret mvo-system/llm-keys key cosign.pub"),
        "{msg}"
    );
}

#[test]
fn what_the_cache_does_not_know_refuses_with_retry() {
    let p = pod(json!({}), json!({}), json!([]));
    // A namespace not yet in the cache, with cluster policies in force.
    let mut unknown = governed(vec![policy("org", json!({}))]);
    unknown.namespace_labels.clear();
    let msg = denial(&admit(&review("CREATE", p.clone()), &unknown, &cfg()));
    assert!(msg.contains("retry") && msg.contains("\"team\""), "{msg}");
    // A stale cache, for a pod it says is governed.
    let mut stale = governed(vec![policy("org", json!({}))]);
    stale.unsynced = true;
    let msg = denial(&admit(&review("CREATE", p.clone()), &stale, &cfg()));
    assert!(msg.contains("retry"), "{msg}");
    // Twins: without cluster policies neither question arises for an unlabelled pod.
    let none = Memory {
        unsynced: true,
        ..Default::default()
    };
    assert_eq!(
        decide(&review("CREATE", p), &none, &cfg()),
        Decision::Unchanged
    );
}

#[test]
fn a_look_alike_of_a_cluster_verifier_is_refused_and_the_real_one_is_kept() {
    let policies = governed(vec![policy("org", json!({"mode": "audit"}))]);
    let fake = pod(
        json!({}),
        json!({}),
        json!([{"name": "cmv-org", "image": "agent:test", "args": ["verify", "--help"]}]),
    );
    let msg = denial(&admit(&review("CREATE", fake), &policies, &cfg()));
    assert!(
        msg.contains("\"cmv-org\"") && msg.contains("remove it"),
        "{msg}"
    );
    // Twin: the pod as the webhook patched it, sent again (a re-invocation), is unchanged.
    let p = pod(json!({}), json!({}), json!([]));
    let doc = patched(&p, &admit(&review("CREATE", p.clone()), &policies, &cfg()));
    assert_eq!(
        decide(&review("CREATE", doc), &policies, &cfg()),
        Decision::Unchanged
    );
}

#[test]
fn an_update_cannot_swap_a_cluster_verifiers_image_or_its_record() {
    let policies = governed(vec![policy("org", json!({}))]);
    let p = pod(json!({}), json!({}), json!([]));
    let doc = patched(&p, &admit(&review("CREATE", p.clone()), &policies, &cfg()));
    let mut swapped = doc.clone();
    swapped["spec"]["initContainers"][0]["image"] = json!("evil:latest");
    let mut req = review("UPDATE", swapped);
    req.old_object = Some(serde_json::from_value(doc.clone()).unwrap());
    let msg = denial(&admit(&req, &policies, &cfg()));
    assert!(
        msg.contains("\"cmv-org\"") && msg.contains("evil:latest"),
        "{msg}"
    );
    let mut unrecorded = doc.clone();
    unrecorded["metadata"]["annotations"]
        .as_object_mut()
        .unwrap()
        .remove(annotations::CLUSTER_POLICIES);
    let mut req = review("UPDATE", unrecorded);
    req.old_object = Some(serde_json::from_value(doc.clone()).unwrap());
    let msg = denial(&admit(&req, &policies, &cfg()));
    assert!(msg.contains(annotations::CLUSTER_POLICIES), "{msg}");
    // Twin: another label on the same pod is a fine update.
    let mut relabelled = doc.clone();
    relabelled["metadata"]["labels"]["app"] = json!("other");
    let mut req = review("UPDATE", relabelled);
    req.old_object = Some(serde_json::from_value(doc).unwrap());
    assert!(admit(&req, &policies, &cfg()).allowed);
}

#[test]
fn warn_and_audit_verifiers_report_without_stopping_the_pod() {
    let p = pod(json!({}), json!({}), json!([]));
    for (mode, report_only) in [("enforce", false), ("warn", true), ("audit", true)] {
        let policies = governed(vec![policy("org", json!({"mode": mode}))]);
        let doc = patched(&p, &admit(&review("CREATE", p.clone()), &policies, &cfg()));
        let args = doc["spec"]["initContainers"][0]["args"].to_string();
        assert_eq!(
            args.contains("\"--report-only\""),
            report_only,
            "{mode}: {args}"
        );
    }
}

#[test]
fn what_warn_and_audit_would_refuse_is_recorded_on_the_pod() {
    let p = pod(json!({}), json!({}), json!([]));
    let elsewhere = json!({"mode": "audit", "model": {"path": "/models/llm", "signaturePath": "/models/llm/model.sig"}});
    let audit = governed(vec![policy("a", elsewhere)]);
    let resp = admit(&review("CREATE", p.clone()), &audit, &cfg());
    assert!(resp.warnings.is_none(), "audit stays silent");
    let doc = with_patch(&p, &resp);
    let findings: BTreeMap<String, String> = serde_json::from_str(
        doc["metadata"]["annotations"][annotations::ADMISSION_FINDINGS]
            .as_str()
            .unwrap(),
    )
    .unwrap();
    assert!(
        findings["a"].contains("/models/llm is not on any volume"),
        "{findings:?}"
    );
    assert_eq!(
        doc["metadata"]["labels"][crate::names::GOVERNED_LABEL],
        "true"
    );
    assert_eq!(
        doc["spec"]["initContainers"],
        json!([]),
        "nothing to inject"
    );
    // Sent again as patched (a re-invocation): nothing more to do.
    assert_eq!(
        decide(&review("CREATE", doc), &audit, &cfg()),
        Decision::Unchanged
    );
}

#[test]
fn a_pod_no_policy_governs_cannot_carry_the_record_of_one() {
    let policies = governed(vec![policy("org", json!({}))]);
    let mut elsewhere = policies.namespace_labels.clone();
    elsewhere.insert(
        "team".into(),
        [("tier".to_string(), "web".to_string())].into(),
    );
    let ungoverned = Memory {
        cluster: vec![policy("org", json!({}))],
        namespace_labels: elsewhere,
        ..Default::default()
    };
    for forged in [
        pod(
            json!({crate::names::GOVERNED_LABEL: "true"}),
            json!({}),
            json!([]),
        ),
        pod(
            json!({}),
            json!({annotations::CLUSTER_POLICIES: "org@0"}),
            json!([]),
        ),
        pod(
            json!({}),
            json!({annotations::ADMISSION_FINDINGS: "{}"}),
            json!([]),
        ),
    ] {
        let msg = denial(&admit(&review("CREATE", forged), &ungoverned, &cfg()));
        assert!(
            msg.contains("is set by model-validation-operator") && msg.contains("remove it"),
            "{msg}"
        );
    }
    // Twin: in a governed namespace the webhook writes the record itself, over the forged one.
    let forged = pod(
        json!({}),
        json!({annotations::CLUSTER_POLICIES: "other@0"}),
        json!([]),
    );
    let doc = patched(
        &forged,
        &admit(&review("CREATE", forged.clone()), &policies, &cfg()),
    );
    let recorded = doc["metadata"]["annotations"][annotations::CLUSTER_POLICIES]
        .as_str()
        .unwrap();
    assert!(recorded.starts_with("org@"), "{recorded}");
}
