//! The workload check on AdmissionReviews as the API server sends them.

use serde_json::{Value, json};

use super::*;
use crate::cluster_policy::ClusterPolicy;
use crate::names::LABEL;
use crate::test_support::cluster_policy;
use crate::webhook::{FoundPolicy, Policies};

/// Namespace `team` (labels known unless `known` is false) under one cluster policy `org` in
/// `mode`, for the model at `/models/llm`.
struct View {
    policy: ClusterPolicy,
    known: bool,
}

impl Policies for View {
    fn get(&self, _: &str, _: &str) -> Option<FoundPolicy> {
        None
    }
    fn in_namespace(&self, _: &str) -> Vec<FoundPolicy> {
        vec![]
    }
    fn namespace_ignored(&self, _: &str) -> bool {
        false
    }
    fn cluster_policies(&self) -> std::sync::Arc<Vec<ClusterPolicy>> {
        std::sync::Arc::new(vec![self.policy.clone()])
    }
    fn namespace_labels(&self, _: &str) -> Option<std::collections::BTreeMap<String, String>> {
        self.known.then(Default::default)
    }
}

fn view(mode: &str) -> View {
    View {
        policy: cluster_policy(
            "org",
            json!({"mode": mode, "model": {"path": "/models/llm", "signaturePath": "/models/llm/model.sig"}}),
        ),
        known: true,
    }
}

fn cfg() -> AdmitConfig {
    crate::test_support::admit_config()
}

/// A pod template whose app mounts the model at `mount`, with `labels`.
fn template(mount: &str, labels: Value) -> Value {
    json!({
        "metadata": {"labels": labels},
        "spec": {
            "containers": [{"name": "app", "image": "app", "volumeMounts": [{"name": "model", "mountPath": mount, "readOnly": true}]}],
            "volumes": [{"name": "model", "persistentVolumeClaim": {"claimName": "llm"}}]
        }
    })
}

fn request(group: &str, kind: &str, op: &str, spec: Value) -> AdmissionRequest<DynamicObject> {
    let review: kube::core::admission::AdmissionReview<DynamicObject> =
        serde_json::from_value(json!({
            "apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview",
            "request": {
                "uid": "u1", "kind": {"group": group, "version": "v1", "kind": kind},
                "resource": {"group": group, "version": "v1", "resource": format!("{}s", kind.to_lowercase())},
                "namespace": "team", "operation": op, "userInfo": {},
                "object": {"apiVersion": format!("{group}/v1"), "kind": kind, "metadata": {"name": "web", "namespace": "team"}, "spec": spec}
            }
        }))
        .unwrap();
    review.try_into().unwrap()
}

fn deployment(template: Value) -> AdmissionRequest<DynamicObject> {
    request(
        "apps",
        "Deployment",
        "CREATE",
        json!({"selector": {}, "template": template}),
    )
}

#[test]
fn a_workload_whose_pods_would_be_refused_is_refused_with_their_message() {
    let unmounted = deployment(template("/elsewhere", json!({})));
    let Verdict::Refuse(msg) = check(&unmounted, &view("enforce"), &cfg()) else {
        panic!("admitted");
    };
    assert!(
        msg.starts_with("the pods of Deployment team/web would be refused: "),
        "{msg}"
    );
    assert!(
        msg.contains("ClusterModelValidation org")
            && msg.contains("/models/llm is not on any volume"),
        "{msg}"
    );
    // Twin: mounted where the policy expects it, admitted without a word.
    let mounted = deployment(template("/models/llm", json!({})));
    assert_eq!(
        check(&mounted, &view("enforce"), &cfg()),
        Verdict::Admit(vec![])
    );
}

#[test]
fn every_kind_is_read_where_it_keeps_its_template() {
    let bad = template("/elsewhere", json!({}));
    for (group, kind) in [
        ("apps", "StatefulSet"),
        ("apps", "DaemonSet"),
        ("apps", "ReplicaSet"),
        ("batch", "Job"),
    ] {
        let req = request(group, kind, "UPDATE", json!({"template": bad.clone()}));
        assert!(
            matches!(check(&req, &view("enforce"), &cfg()), Verdict::Refuse(m) if m.contains(&format!("pods of {kind} team/web"))),
            "{kind}"
        );
    }
    let cron = request(
        "batch",
        "CronJob",
        "CREATE",
        json!({"schedule": "@daily", "jobTemplate": {"spec": {"template": bad}}}),
    );
    assert!(matches!(
        check(&cron, &view("enforce"), &cfg()),
        Verdict::Refuse(_)
    ));
    // Not a workload, or not a create or update: nothing to say.
    let other = request("apps", "ControllerRevision", "CREATE", json!({}));
    assert_eq!(
        check(&other, &view("enforce"), &cfg()),
        Verdict::Admit(vec![])
    );
}

#[test]
fn warn_mode_warns_and_a_label_naming_a_missing_policy_refuses() {
    let unmounted = deployment(template("/elsewhere", json!({})));
    let Verdict::Admit(warnings) = check(&unmounted, &view("warn"), &cfg()) else {
        panic!("refused in warn mode");
    };
    assert!(
        warnings[0].starts_with("the pods of Deployment team/web: ")
            && warnings[0].contains("warn mode"),
        "{warnings:?}"
    );
    let labelled = deployment(template("/models/llm", json!({LABEL: "missing"})));
    assert!(
        matches!(check(&labelled, &view("enforce"), &cfg()), Verdict::Refuse(m) if m.contains("ModelValidation \"missing\" not found"))
    );
}

#[test]
fn an_incomplete_view_lets_the_workload_through_with_a_warning() {
    let mut unknown = view("enforce");
    unknown.known = false;
    let unmounted = deployment(template("/elsewhere", json!({})));
    let Verdict::Admit(warnings) = check(&unmounted, &unknown, &cfg()) else {
        panic!("refused on an incomplete view");
    };
    assert!(
        warnings[0].contains("could not be checked now")
            && warnings[0].contains("each pod is checked"),
        "{warnings:?}"
    );
}
