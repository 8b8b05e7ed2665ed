use super::*;

fn mv(name: &str) -> ObjectReference {
    ObjectReference {
        api_version: Some("ml.sigstore.dev/v1alpha1".into()),
        kind: Some("ModelValidation".into()),
        namespace: Some("ns".into()),
        name: Some(name.into()),
        ..Default::default()
    }
}

fn denied(mv_name: &str, reason: &str) -> Draft {
    Draft {
        regarding: mv(mv_name),
        type_: EventType::Warning,
        reason: "PodDenied".into(),
        action: "Admit".into(),
        note: format!("pod p refused at admission: {reason}"),
        related: None,
        same_as: reason.into(),
    }
}

/// Performs every due write successfully; returns them.
fn flush(agg: &mut Aggregator, now: Instant) -> Vec<Write> {
    let writes = agg.due(now);
    for (i, w) in writes.iter().enumerate() {
        match w {
            Write::Create { id, .. } => agg.done(*id, Ok(Some(format!("ev{i}")))),
            Write::Patch { id, .. } => agg.done(*id, Ok(None)),
        }
    }
    writes
}

fn wall() -> Timestamp {
    Timestamp::now()
}

#[test]
fn repeats_become_one_event_whose_series_count_carries_the_total() {
    let t0 = Instant::now();
    let mut agg = Aggregator::new(Limits::default(), t0);
    assert_eq!(
        agg.observe(denied("a", "unsigned"), t0, wall()),
        Observed::New
    );
    let first = flush(&mut agg, t0);
    assert!(
        matches!(first.as_slice(), [Write::Create { .. }]),
        "{first:?}"
    );
    for _ in 0..9_999 {
        assert_eq!(
            agg.observe(denied("a", "unsigned"), t0, wall()),
            Observed::Repeat
        );
    }
    let second = flush(&mut agg, t0);
    match second.as_slice() {
        [Write::Patch { count, name, .. }] => {
            assert_eq!(*count, 10_000);
            assert_eq!(name, "ev0");
        }
        other => panic!("one patch expected: {other:?}"),
    }
    assert!(flush(&mut agg, t0).is_empty(), "nothing left to write");
    assert_eq!(agg.len(), 1);
}

#[test]
fn a_flood_of_different_denials_on_one_object_is_held_to_its_bucket() {
    let t0 = Instant::now();
    let limits = Limits::default();
    let mut agg = Aggregator::new(limits.clone(), t0);
    let mut dropped = 0;
    for i in 0..10_000 {
        if agg.observe(denied("a", &format!("forged {i}")), t0, wall()) == Observed::Dropped {
            dropped += 1;
        }
    }
    assert_eq!(agg.len(), limits.max_series, "memory stays bounded");
    assert_eq!(dropped, 10_000 - limits.max_series);
    assert_eq!(flush(&mut agg, t0).len(), 5, "the burst, no more");
    assert!(flush(&mut agg, t0 + Duration::from_secs(1)).is_empty());
    // One more per interval afterwards.
    assert_eq!(flush(&mut agg, t0 + limits.per_object_interval).len(), 1);
    assert!(agg.pending(), "the rest waits, counted");
}

#[test]
fn many_objects_are_held_to_the_global_bucket() {
    let t0 = Instant::now();
    let mut agg = Aggregator::new(Limits::default(), t0);
    for i in 0..1_000 {
        agg.observe(denied(&format!("mv{i}"), "unsigned"), t0, wall());
    }
    assert_eq!(flush(&mut agg, t0).len(), 50);
    assert_eq!(flush(&mut agg, t0 + Duration::from_secs(1)).len(), 20);
}

#[test]
fn ordinary_denials_are_each_written_at_once() {
    // The passing twin of the limits: a few refusals of different pods on different
    // ModelValidations, minutes apart, each reach the API immediately.
    let t0 = Instant::now();
    let mut agg = Aggregator::new(Limits::default(), t0);
    for (i, name) in ["a", "b", "c"].iter().enumerate() {
        let at = t0 + Duration::from_secs(60 * i as u64);
        agg.observe(denied(name, "unsigned"), at, wall());
        agg.observe(denied(name, "tampered"), at, wall());
        let writes = flush(&mut agg, at);
        assert_eq!(writes.len(), 2, "{writes:?}");
        assert!(writes.iter().all(|w| matches!(w, Write::Create { .. })));
    }
}

#[test]
fn a_series_is_forgotten_after_its_ttl_and_a_repeat_starts_a_new_event() {
    let t0 = Instant::now();
    let limits = Limits::default();
    let mut agg = Aggregator::new(limits.clone(), t0);
    agg.observe(denied("a", "unsigned"), t0, wall());
    flush(&mut agg, t0);
    agg.expire(t0 + limits.ttl / 2);
    assert_eq!(agg.len(), 1);
    agg.expire(t0 + limits.ttl);
    assert!(agg.is_empty());
    assert_eq!(
        agg.observe(denied("a", "unsigned"), t0 + limits.ttl, wall()),
        Observed::New
    );
}

#[test]
fn unwritten_occurrences_are_not_forgotten_by_expiry() {
    let t0 = Instant::now();
    let limits = Limits::default();
    let mut agg = Aggregator::new(limits.clone(), t0);
    agg.observe(denied("a", "unsigned"), t0, wall());
    agg.expire(t0 + limits.ttl * 2);
    assert_eq!(agg.len(), 1, "still to be written");
}

#[test]
fn failing_writes_are_retried_then_given_up() {
    let t0 = Instant::now();
    let mut agg = Aggregator::new(Limits::default(), t0);
    agg.observe(denied("a", "unsigned"), t0, wall());
    for attempt in 1..=3 {
        let writes = agg.due(t0 + Duration::from_secs(60 * attempt));
        let [Write::Create { id, .. }] = writes.as_slice() else {
            panic!("attempt {attempt}: {writes:?}");
        };
        assert!(!agg.pending(), "in flight");
        agg.done(*id, Err(()));
    }
    assert!(agg.is_empty(), "given up after 3 failures");
}

#[test]
fn a_failed_patch_keeps_the_count_for_the_next_write() {
    let t0 = Instant::now();
    let mut agg = Aggregator::new(Limits::default(), t0);
    agg.observe(denied("a", "unsigned"), t0, wall());
    flush(&mut agg, t0);
    agg.observe(denied("a", "unsigned"), t0, wall());
    let writes = agg.due(t0);
    let [Write::Patch { id, count: 2, .. }] = writes.as_slice() else {
        panic!("{writes:?}");
    };
    agg.done(*id, Err(()));
    agg.observe(denied("a", "unsigned"), t0, wall());
    let writes = flush(&mut agg, t0);
    assert!(
        matches!(writes.as_slice(), [Write::Patch { count: 3, .. }]),
        "{writes:?}"
    );
}

#[test]
fn repeats_before_the_first_write_are_counted_in_it() {
    let t0 = Instant::now();
    let mut agg = Aggregator::new(Limits::default(), t0);
    for _ in 0..3 {
        agg.observe(denied("a", "unsigned"), t0, wall());
    }
    let writes = flush(&mut agg, t0);
    assert!(
        matches!(writes.as_slice(), [Write::Create { count: 3, .. }]),
        "{writes:?}"
    );
    assert!(flush(&mut agg, t0).is_empty());
}
