use serde_json::{Value, json};

use super::*;

/// A pod in `ns` recording `policies`, with its verifiers' terminated states `finished`
/// (container name, exit code, message).
fn pod(ns: &str, name: &str, policies: &str, finished: &[(&str, i32, &str)]) -> Pod {
    let statuses: Vec<Value> = finished
        .iter()
        .map(|(c, code, message)| json!({"name": c, "image": "agent", "imageID": "", "ready": false, "restartCount": 0,
            "state": {"terminated": {"exitCode": code, "message": message, "finishedAt": "2026-11-27T10:00:00Z"}}}))
        .collect();
    // Each recorded policy's verifier is in the spec, as the webhook injects it.
    let inits: Vec<Value> = policies
        .split(',')
        .filter_map(|e| e.split_once('@'))
        .map(|(policy, _)| json!({"name": cluster_containers(policy).0, "image": "agent"}))
        .collect();
    serde_json::from_value(json!({
        "metadata": {"name": name, "namespace": ns, "uid": format!("{ns}-{name}"),
                     "annotations": {annotations::CLUSTER_POLICIES: policies}},
        "spec": {"initContainers": inits, "containers": [{"name": "app", "image": "app"}]},
        "status": {"initContainerStatuses": statuses}
    }))
    .unwrap()
}

#[test]
fn a_policy_recorded_without_a_verifier_verified_the_pods_images_at_admission() {
    let mut p = pod("team", "web", "alpha@0123,images@4567", &[]);
    // The images-only policy has no container: drop it as the webhook never injected it.
    p.spec
        .as_mut()
        .unwrap()
        .init_containers
        .as_mut()
        .unwrap()
        .retain(|c| c.name != "cmv-images");
    let e = summarize(&p).unwrap();
    assert_eq!(outcome_of(&e, "images"), Outcome::Verified);
    // Twin: a recorded verifier that has not finished is only injected.
    assert_eq!(outcome_of(&e, "alpha"), Outcome::Injected);
}

fn outcome_of(entry: &PodEntry, policy: &str) -> Outcome {
    entry
        .outcomes
        .iter()
        .find(|(p, _)| &**p == policy)
        .unwrap()
        .1
        .clone()
}

#[test]
fn a_pod_summary_reads_each_policys_verifier() {
    let p = pod(
        "team",
        "web",
        "alpha@0123,beta@4567,gamma@89ab",
        &[
            ("cmv-alpha", 0, "verified 3 files"),
            ("cmv-beta", 0, "verification failed: weights.bin changed"),
        ],
    );
    let e = summarize(&p).unwrap();
    assert_eq!(outcome_of(&e, "alpha"), Outcome::Verified);
    // Report-only (warn, audit): exit 0, but the message says it failed.
    assert!(
        matches!(outcome_of(&e, "beta"), Outcome::Failed { message, .. } if message.contains("weights.bin"))
    );
    assert_eq!(outcome_of(&e, "gamma"), Outcome::Injected);
    let enforce = pod(
        "team",
        "x",
        "alpha@0",
        &[("cmv-alpha", 1, "verification failed: no signature")],
    );
    assert!(matches!(
        outcome_of(&summarize(&enforce).unwrap(), "alpha"),
        Outcome::Failed { .. }
    ));
    // Twin: a pod no cluster policy applied to is not kept.
    let mut plain = p.clone();
    plain.metadata.annotations = None;
    assert_eq!(summarize(&plain), None);
}

#[test]
fn counts_follow_each_change_and_only_touched_policies_are_dirty() {
    let mut l = Ledger::default();
    let injected = pod("a", "p1", "alpha@0,beta@0", &[]);
    l.apply("u1", summarize(&injected));
    assert_eq!(l.take_dirty().len(), 2);
    assert_eq!(l.tally("alpha").injected, 1);
    let verified = pod(
        "a",
        "p1",
        "alpha@0,beta@0",
        &[
            ("cmv-alpha", 0, "ok"),
            ("cmv-beta", 1, "verification failed: x"),
        ],
    );
    let finished = l.apply("u1", summarize(&verified));
    let names: Vec<&str> = finished.iter().map(|(p, _)| &**p).collect();
    assert_eq!(
        names,
        ["alpha", "beta"],
        "both verifiers finished in this change"
    );
    let (a, b) = (l.tally("alpha"), l.tally("beta"));
    assert_eq!((a.injected, a.verified, a.failed), (1, 1, 0));
    assert_eq!((b.injected, b.verified, b.failed), (1, 0, 1));
    assert_eq!(b.recent[0].pod, "p1");
    assert_eq!(b.recent[0].namespace, "a");
    // The same state again changes nothing and dirties nothing.
    l.take_dirty();
    assert!(
        l.apply("u1", summarize(&verified)).is_empty(),
        "reported once"
    );
    assert!(l.take_dirty().is_empty());
    // Another pod touches only its own policy.
    l.apply("u2", summarize(&pod("b", "p2", "gamma@0", &[])));
    assert_eq!(l.take_dirty(), vec![Arc::<str>::from("gamma")]);
    // Deleted: its counts go, its failure stays in the history.
    l.apply("u1", None);
    let b = l.tally("beta");
    assert_eq!((b.injected, b.failed, b.recent.len()), (0, 0, 1));
    assert_eq!(l.len(), 1);
}

#[test]
fn recent_failures_are_bounded_newest_first_and_recorded_once() {
    let mut l = Ledger::default();
    for i in 0..15 {
        let p = pod(
            "a",
            &format!("p{i}"),
            "alpha@0",
            &[("cmv-alpha", 1, "verification failed: x")],
        );
        l.apply(&format!("u{i}"), summarize(&p));
        // Seen again (a status update of the same failed pod): not recorded twice.
        l.apply(&format!("u{i}"), summarize(&p));
    }
    let t = l.tally("alpha");
    assert_eq!(t.failed, 15);
    assert_eq!(t.recent.len(), MAX_RECENT_FAILURES);
    assert_eq!(t.recent[0].pod, "p14");
    assert_eq!(t.recent[9].pod, "p5");
}

#[test]
fn after_a_fresh_list_pods_not_seen_are_forgotten() {
    let mut l = Ledger::default();
    l.apply("u1", summarize(&pod("a", "p1", "alpha@0", &[])));
    l.apply("u2", summarize(&pod("a", "p2", "alpha@0", &[])));
    l.retain(|uid| uid == "u2");
    assert_eq!((l.len(), l.tally("alpha").injected), (1, 1));
}

#[test]
fn a_refusal_recorded_at_admission_counts_as_failed_but_not_injected() {
    let mut p = pod("a", "p1", "", &[]);
    p.metadata.annotations.as_mut().unwrap().insert(
        annotations::ADMISSION_FINDINGS.into(),
        r#"{"audit-me": "cannot verify this pod's model: not mounted"}"#.into(),
    );
    let mut l = Ledger::default();
    let finished = l.apply("u1", summarize(&p));
    assert_eq!(finished.len(), 1);
    let t = l.tally("audit-me");
    assert_eq!((t.injected, t.verified, t.failed), (0, 0, 1));
    assert!(
        t.recent[0]
            .message
            .starts_with("at admission: cannot verify"),
        "{:?}",
        t.recent
    );
}
