use super::*;
use crate::crd::{PkiConfig, PublicKeyConfig, ValidationConfig};
use crate::names::annotations;
use crate::test_support::key_spec as spec;
use k8s_openapi::jiff::Timestamp;
use serde_json::json;

fn t(s: &str) -> Time {
    Time(s.parse::<Timestamp>().unwrap())
}

/// The facts of a labelled pod as the API server returns it ([`labelled_pod`]).
fn pod(
    name: &str,
    by: Option<&str>,
    hash: Option<&str>,
    init: Option<serde_json::Value>,
) -> PodFacts {
    PodFacts::of(&labelled_pod(name, by, hash, init))
}

/// A labelled pod as the API server returns it; `init` is the verifier's status, if any.
fn labelled_pod(
    name: &str,
    by: Option<&str>,
    hash: Option<&str>,
    init: Option<serde_json::Value>,
) -> Pod {
    let mut ann = serde_json::Map::new();
    if let Some(b) = by {
        ann.insert(annotations::INJECTED_BY.into(), json!(b));
    }
    if let Some(h) = hash {
        ann.insert(CONFIG_HASH.into(), json!(h));
    }
    let init_containers = if by.is_some() {
        json!([{"name": "model-validation", "image": "agent"}])
    } else {
        json!([])
    };
    let mut v = json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": name, "namespace": "ns", "uid": format!("uid-{name}"),
                     "creationTimestamp": "2026-01-01T00:00:00Z",
                     "labels": {"validation.ml.sigstore.dev/ml": "mv"}, "annotations": ann},
        "spec": {"initContainers": init_containers, "containers": [{"name": "app", "image": "app"}]},
    });
    if let Some(i) = init {
        v["status"] = json!({"phase": "Pending", "initContainerStatuses": [i]});
    }
    serde_json::from_value(v).unwrap()
}

fn terminated(code: i32, msg: &str, at: &str) -> serde_json::Value {
    json!({"name": "model-validation", "image": "agent", "imageID": "", "ready": false, "restartCount": 0,
           "state": {"terminated": {"exitCode": code, "message": msg, "finishedAt": at, "reason": if code == 0 {"Completed"} else {"Error"}}}})
}

#[test]
fn counts_outcomes_and_last_failure() {
    let s = spec();
    let h = config_hash(&s);
    let good = pod(
        "good",
        Some("mv"),
        Some(&h),
        Some(terminated(0, "verified: 3 files", "2026-01-01T00:01:00Z")),
    );
    let bad = pod(
        "bad",
        Some("mv"),
        Some(&h),
        Some(terminated(
            1,
            "verification failed: 1 file changed: weights.bin",
            "2026-01-01T00:02:00Z",
        )),
    );
    let running = pod("running", Some("mv"), None, None);
    let plain = pod("plain", None, None, None);
    let old = pod("old", Some("mv"), Some("0000000000000000"), None);
    let other = pod("other", Some("another-mv"), Some(&h), None);
    let now = t("2026-01-01T01:00:00Z");
    let st = compute(
        "mv",
        Some(3),
        &s,
        None,
        &[&good, &bad, &running, &plain, &old, &other],
        &now,
    );
    assert_eq!(st.injected_pod_count, 3, "good, bad, running (no hash yet)");
    assert_eq!(st.uninjected_pod_count, 1);
    assert_eq!(st.orphaned_pod_count, 2);
    assert_eq!(
        st.injected_pods
            .iter()
            .map(|p| p.name.as_str())
            .collect::<Vec<_>>(),
        ["bad", "good", "running"]
    );
    assert_eq!(st.uninjected_pods[0].uid, "uid-plain");
    assert_eq!(st.verified_count, 1);
    assert_eq!(st.failed_count, 1);
    let f = st.last_failure.clone().unwrap();
    assert_eq!(f.pod, "bad");
    assert!(f.message.contains("weights.bin"));
    assert_eq!(f.time, Some(t("2026-01-01T00:02:00Z")));
    assert_eq!(st.observed_generation, Some(3));
    assert_eq!(st.auth_method.as_deref(), Some("public-key"));
    let c = &st.conditions[0];
    assert_eq!(
        (c.type_.as_str(), c.status.as_str(), c.reason.as_str()),
        ("Ready", "True", "Valid")
    );
    assert_eq!(c.last_transition_time, now);

    // Recomputed later from the written status: the same (idempotent), the transition time kept.
    let mut written = st.clone();
    written.last_updated = Some(now.clone());
    let again = compute(
        "mv",
        Some(3),
        &s,
        Some(&written),
        &[&good, &bad, &running, &plain, &old, &other],
        &t("2026-01-01T02:00:00Z"),
    );
    assert!(same(&again, &written));
    assert_eq!(again.last_updated, written.last_updated);

    // The failed pod is deleted: the counts drop, the last failure stays.
    let after = compute("mv", Some(3), &s, Some(&written), &[&good], &now);
    assert_eq!((after.failed_count, after.verified_count), (0, 1));
    assert_eq!(after.last_failure.unwrap().pod, "bad");
}

#[test]
fn restarted_verifier_counts_last_state_failures() {
    let s = spec();
    let h = config_hash(&s);
    let p = pod(
        "crashing",
        Some("mv"),
        Some(&h),
        Some(
            json!({"name": "model-validation", "image": "agent", "imageID": "", "ready": false, "restartCount": 2,
        "state": {"waiting": {"reason": "CrashLoopBackOff"}},
        "lastState": {"terminated": {"exitCode": 1, "message": "verification failed: signature does not match", "finishedAt": "2026-01-01T00:05:00Z"}}}),
        ),
    );
    let r = &p.runs;
    assert_eq!(r.len(), 1);
    assert_eq!(r[0].attempt, 1);
    assert!(!r[0].verified);
    let st = compute("mv", Some(1), &s, None, &[&p], &t("2026-01-01T01:00:00Z"));
    assert_eq!(st.failed_count, 1);
    assert!(
        st.last_failure
            .unwrap()
            .message
            .contains("signature does not match")
    );
}

#[test]
fn specs_that_cannot_work_are_not_ready() {
    let mut s = spec();
    s.config = ValidationConfig::default();
    let st = compute("mv", Some(1), &s, None, &[], &t("2026-01-01T00:00:00Z"));
    let c = &st.conditions[0];
    assert_eq!(
        (c.status.as_str(), c.reason.as_str()),
        ("False", "NoMethod")
    );
    assert!(c.message.contains("exactly one of"), "{}", c.message);
    assert_eq!(st.auth_method, None, "no method, no authMethod");

    let mut s = spec();
    s.config.pki_config = Some(PkiConfig {
        certificate_authority: Some("/ca.pem".into()),
        ..Default::default()
    });
    assert_eq!(ready(&s).1, "SeveralMethods");

    let mut s = spec();
    s.model.as_mut().unwrap().signature_path = "model.sig".into();
    let (ok, reason, msg) = ready(&s);
    assert!(!ok);
    assert_eq!(reason, "RelativePath");
    assert!(msg.contains("model.signaturePath"), "{msg}");
}

#[test]
fn a_changed_spec_orphans_pods_injected_under_the_old_one() {
    let s = spec();
    let p = pod("p", Some("mv"), Some(&config_hash(&s)), None);
    let mut changed = s.clone();
    changed.model.as_mut().unwrap().ignore_unsigned_files = Some(true);
    assert_ne!(config_hash(&s), config_hash(&changed));
    assert_eq!(injection(&p, "mv", &config_hash(&s)), Injection::Injected);
    assert_eq!(
        injection(&p, "mv", &config_hash(&changed)),
        Injection::Orphaned
    );
    assert_eq!(config_hash(&s).len(), 16);
}

#[test]
fn lists_are_capped_counts_are_not() {
    let s = spec();
    let h = config_hash(&s);
    let pods: Vec<PodFacts> = (0..150)
        .map(|i| pod(&format!("p{i:03}"), Some("mv"), Some(&h), None))
        .collect();
    let refs: Vec<&PodFacts> = pods.iter().collect();
    let st = compute("mv", None, &s, None, &refs, &t("2026-01-01T00:00:00Z"));
    assert_eq!(st.injected_pod_count, 150);
    assert_eq!(st.injected_pods.len(), MAX_LISTED);
}

#[test]
fn merge_patch_nulls_removed_fields() {
    let old = json!({"a": 1, "list": [1], "obj": {"x": 1, "y": 2}});
    let new = json!({"a": 1, "obj": {"x": 1}});
    assert_eq!(
        merge_patch(&old, &new),
        json!({"list": null, "obj": {"y": null}})
    );
}

#[test]
fn trust_anchor_condition_says_whether_the_pod_supplies_the_key() {
    let now = t("2026-01-01T00:00:00Z");
    let st = compute("mv", Some(1), &spec(), None, &[], &now);
    let c = st
        .conditions
        .iter()
        .find(|c| c.type_ == TRUST_CONDITION)
        .expect("the trust condition");
    assert_eq!(
        (c.status.as_str(), c.reason.as_str()),
        ("False", "PodSuppliesTrustAnchor")
    );
    assert!(
        c.message
            .contains("spec.config.publicKeyConfig.keyPath /keys/pub.pem"),
        "{}",
        c.message
    );

    let mut inline = spec();
    inline.config.public_key_config = Some(PublicKeyConfig {
        key_pem: Some("-----BEGIN PUBLIC KEY-----".into()),
        ..Default::default()
    });
    let st = compute("mv", Some(1), &inline, None, &[], &now);
    let c = st
        .conditions
        .iter()
        .find(|c| c.type_ == TRUST_CONDITION)
        .unwrap();
    assert_eq!((c.status.as_str(), c.reason.as_str()), ("True", "InPolicy"));
    assert_eq!(st.conditions[0].status, "True", "still Ready");

    // Both or neither source: not Ready, naming the choices; no trust condition.
    for key in [
        PublicKeyConfig::default(),
        PublicKeyConfig {
            key_path: Some("/k".into()),
            key_pem: Some("-----BEGIN PUBLIC KEY-----".into()),
        },
    ] {
        let mut s = spec();
        s.config.public_key_config = Some(key);
        let (ok, reason, msg) = ready(&s);
        assert_eq!((ok, reason), (false, "TrustSource"));
        assert!(
            msg.contains("spec.config.publicKeyConfig must set exactly one of keyPem or keyPath"),
            "{msg}"
        );
        assert!(trust_anchor(&s).is_none());
    }
}

#[test]
fn the_facts_kept_of_a_pod_are_what_status_and_events_read() {
    let full = labelled_pod(
        "p",
        Some("mv"),
        Some("abc"),
        Some(terminated(0, "verified: 3 files", "2026-01-01T00:01:00Z")),
    );
    let facts = PodFacts::of(&full);
    assert_eq!(
        (
            facts.namespace.as_str(),
            facts.name.as_str(),
            facts.uid.as_str()
        ),
        ("ns", "p", "uid-p")
    );
    assert_eq!(facts.created, Some(t("2026-01-01T00:00:00Z")));
    assert!(facts.has_verifier);
    assert_eq!(
        (facts.injected_by.as_deref(), facts.config_hash.as_deref()),
        (Some("mv"), Some("abc"))
    );
    assert_eq!(facts.runs, runs(&full));
    assert_eq!(facts.outcome().map(|r| r.verified), Some(true));
    let r = facts.object_ref();
    assert_eq!(
        (
            r.kind.as_deref(),
            r.namespace.as_deref(),
            r.name.as_deref(),
            r.uid.as_deref()
        ),
        (Some("Pod"), Some("ns"), Some("p"), Some("uid-p"))
    );
    // Twin: a pod without the verifier and its annotations.
    let plain = pod("plain", None, None, None);
    assert!(!plain.has_verifier && plain.injected_by.is_none() && plain.outcome().is_none());
}

#[test]
fn an_images_only_policy_counts_pinned_pods_verified_and_says_what_it_checks() {
    let s: ModelValidationSpec = serde_json::from_value(json!({
        "images": {"globs": ["registry.example.com/models/**"]},
        "config": {"publicKeyConfig": {"keyPem": crate::test_support::KEY_PEM}},
    }))
    .unwrap();
    let mut pinned = labelled_pod("pinned", None, None, None);
    pinned
        .metadata
        .annotations
        .get_or_insert_with(Default::default)
        .insert(
            annotations::PINNED_IMAGES.into(),
            "model=registry.example.com/models/llm@sha256:00".into(),
        );
    let pinned = PodFacts::of(&pinned);
    let before = pod("before", None, None, None);
    let st = compute(
        "mv",
        None,
        &s,
        None,
        &[&pinned, &before],
        &t("2026-01-01T00:00:00Z"),
    );
    assert_eq!(
        (
            st.injected_pod_count,
            st.verified_count,
            st.uninjected_pod_count
        ),
        (1, 1, 1)
    );
    assert_eq!(st.uninjected_pods[0].name, "before");
    let c = &st.conditions[0];
    assert_eq!(c.status, "True");
    assert!(
        c.message
            .contains("image volumes are verified at admission"),
        "{}",
        c.message
    );
    // Twin: trust read from the pod cannot verify images, and Ready says which field to use.
    let mut from_pod = s.clone();
    from_pod.config.public_key_config = Some(PublicKeyConfig {
        key_path: Some("/keys/pub.pem".into()),
        key_pem: None,
    });
    let (ok, reason, message) = ready(&from_pod);
    assert_eq!((ok, reason), (false, "ImagesUnusable"));
    assert!(message.contains("publicKeyConfig.keyPem"), "{message}");
}
