//! The operator binary's webhook under slow and oversized clients on loopback: at least 500
//! connections at once that never finish their TLS handshake, dribble their request head or
//! their body, or send bodies above the cap. While they are open, legitimate AdmissionReviews
//! keep being answered correctly, the operator's RSS stays below the deployment's memory limit,
//! oversized bodies get 413 (or a closed connection) and every slow client is cut off by the
//! server (the fast 503 beyond the request caps is proven in `webhook::listener`'s unit tests,
//! which can hold requests in the handler).
//!
//! Reduced here (500 connections, 15 s, 100 reviews/s); bench/webhook-attack.sh runs it at
//! full scale through `MVO_ATTACK_CONNECTIONS`, `MVO_ATTACK_SECONDS` and `MVO_ATTACK_RATE`.

mod support;

use std::sync::Arc;
use std::time::{Duration, Instant};

use support::attack::{
    Attack, Tally, Target, attacker, deployment_memory_limit, legitimate, proc_bytes,
};
use support::{Operator, OperatorOptions};

fn env_or(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_and_oversized_clients_do_not_starve_admissions_or_exhaust_memory() {
    test_cluster::install_crypto_provider();
    let connections = env_or("MVO_ATTACK_CONNECTIONS", 500) as usize;
    let seconds = env_or("MVO_ATTACK_SECONDS", 15);
    let rate = env_or("MVO_ATTACK_RATE", 100).max(1);
    let cp = test_cluster::shared().await.unwrap();
    let name = "mvo-slow-clients";
    let mut opts = OperatorOptions::new(name);
    opts.namespace = Some("mvo-system".into());
    let operator = Operator::start(cp.kubeconfig_path(), opts).await;
    let pid = operator.pid().expect("the operator runs");
    let target = Target::of(&cp.client().unwrap(), name).await;
    let limit = deployment_memory_limit();
    let rss_before = proc_bytes(pid, "VmRSS").unwrap();

    // The legitimate client connects first, as the API server's kept-alive connections would
    // be; then the slow attacks hold `connections` connections (a third each), and the
    // oversized ones come on top, a few at a time, reconnecting as soon as they are answered.
    let until = Instant::now() + Duration::from_secs(seconds);
    let legit = tokio::spawn(legitimate(
        target.clone(),
        Duration::from_nanos(1_000_000_000 / rate),
        until,
    ));
    tokio::time::sleep(Duration::from_millis(300)).await;
    let tally = Arc::new(Tally::default());
    let slow = [Attack::Handshake, Attack::Head, Attack::Body];
    let oversized = [Attack::Declared; 16]
        .into_iter()
        .chain([Attack::Streamed; 4]);
    let attackers: Vec<_> = (0..connections)
        .map(|i| slow[i % slow.len()])
        .chain(oversized)
        .map(|attack| tokio::spawn(attacker(target.clone(), attack, until, tally.clone())))
        .collect();
    let sampler = tokio::spawn(async move {
        let mut peak = 0;
        while Instant::now() < until {
            peak = peak.max(proc_bytes(pid, "VmRSS").unwrap_or(0));
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        peak
    });
    let legit = legit.await.unwrap();
    for a in attackers {
        a.await.unwrap();
    }
    let rss_peak = sampler.await.unwrap();
    let hwm = proc_bytes(pid, "VmHWM").unwrap();
    let mib = |b: u64| b as f64 / (1024.0 * 1024.0);
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    eprintln!(
        "slow_clients: {} attacking connections at most at once ({connections} slow + 20 oversized), {seconds} s",
        tally.peak_open()
    );
    for attack in [
        Attack::Handshake,
        Attack::Head,
        Attack::Body,
        Attack::Declared,
        Attack::Streamed,
    ] {
        eprintln!(
            "slow_clients: {attack:?} rounds ended (status or None=closed): {:?}",
            tally.outcomes(attack)
        );
    }
    eprintln!(
        "slow_clients: legitimate reviews answered {} (failed {}), p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms",
        legit.latencies.len(),
        legit.failures.len(),
        ms(legit.percentile(50.0)),
        ms(legit.percentile(99.0)),
        ms(legit.percentile(100.0)),
    );
    eprintln!(
        "slow_clients: operator RSS before {:.1} MiB, peak sampled {:.1} MiB, VmHWM {:.1} MiB; limit {:.0} MiB",
        mib(rss_before),
        mib(rss_peak),
        mib(hwm),
        mib(limit)
    );

    assert!(
        tally.peak_open() >= connections as i64,
        "the attack held {} connections at once, fewer than {connections}",
        tally.peak_open()
    );
    assert!(
        legit.failures.is_empty(),
        "legitimate reviews failed under attack: {:?}",
        &legit.failures[..legit.failures.len().min(5)]
    );
    // Passing twin of the refusals: reviews were sent, and each was answered (above).
    assert!(
        legit.latencies.len() >= 10,
        "only {} legitimate reviews were sent",
        legit.latencies.len()
    );
    assert!(
        hwm.max(rss_peak) < limit,
        "the operator's RSS reached {:.1} MiB, above the {:.0} MiB limit",
        mib(hwm.max(rss_peak)),
        mib(limit)
    );
    // Every slow client is cut off by the server: closed (handshake, head) or 408 (body).
    let cut_off = |attack: Attack, allowed: &[Option<u16>]| {
        let outcomes = tally.outcomes(attack);
        assert!(
            !outcomes.is_empty(),
            "no {attack:?} round was ended by the server within {seconds} s"
        );
        assert!(
            outcomes.keys().all(|o| allowed.contains(o)),
            "{attack:?} rounds ended otherwise than {allowed:?}: {outcomes:?}"
        );
    };
    cut_off(Attack::Handshake, &[None]);
    cut_off(Attack::Head, &[None, Some(408)]);
    cut_off(Attack::Body, &[Some(408), None]);
    // Oversized bodies: 413 when declared; 413 or a closed connection when streamed.
    cut_off(Attack::Declared, &[Some(413)]);
    cut_off(Attack::Streamed, &[Some(413), None]);
    // The refusals are visible to the platform team in /metrics, by reason.
    for reason in ["handshake_timeout", "body_timeout", "too_large"] {
        let sample = format!("model_validation_webhook_refusals_total{{reason=\"{reason}\"}}");
        let counted = operator.metric(&sample);
        assert!(counted.is_some_and(|n| n >= 1.0), "{sample}: {counted:?}");
    }
    assert_eq!(
        operator.metric("model_validation_webhook_refusals_total{reason=\"busy\"}"),
        None,
        "the legitimate client was never turned away busy"
    );
    let ready = support::http_get(operator.health, "/readyz");
    assert!(
        ready.is_some_and(|r| r.status == 200),
        "the operator is ready after the attack"
    );
}
