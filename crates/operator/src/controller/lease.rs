//! Leader election: every replica serves the webhook, only the holder of the
//! coordination.k8s.io Lease `model-validation-operator` (in the operator's namespace) runs the
//! status controller. The lease lasts 15 s and is renewed every 5 s, so a replica that dies
//! without releasing it is replaced within about 20 s; one that stops cleanly releases it.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use kube::Client;
use kube_lease_manager::LeaseManagerBuilder;

use crate::metrics::Metrics;

/// Name of the Lease.
pub const LEASE_NAME: &str = "model-validation-operator";
/// How long a lease holds without renewal, seconds.
pub const LEASE_DURATION: u64 = 15;
/// The holder renews when this many seconds are left (so every 5 s).
pub const LEASE_GRACE: u64 = 10;

/// A default identity: `POD_NAME`, else `hostname-pid`.
pub fn default_identity() -> String {
    if let Ok(p) = std::env::var("POD_NAME")
        && !p.is_empty()
    {
        return p;
    }
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_string())
        .unwrap_or_else(|_| "model-validation-operator".into());
    format!("{host}-{}", std::process::id())
}

/// Acquires the lease, runs `work` while holding it, stops it when the lease is lost,
/// and tries again; until `shutdown` completes, when the lease is released.
/// `metrics.leader` is 1 while this replica runs `work`.
pub async fn hold<W>(
    client: Client,
    namespace: String,
    identity: String,
    metrics: Arc<Metrics>,
    shutdown: impl Future,
    work: impl Fn() -> W,
) where
    W: Future<Output = ()>,
{
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        let built = LeaseManagerBuilder::new(client.clone(), LEASE_NAME)
            .with_namespace(&namespace)
            .with_identity(&identity)
            .with_duration(LEASE_DURATION)
            .with_grace(LEASE_GRACE)
            .build()
            .await;
        let manager = match built {
            Ok(m) => m,
            Err(e) => {
                tracing::warn!(error = %e, lease = LEASE_NAME, namespace = %namespace, "cannot set up the leader lease (the operator may not create it: apply deploy/base/lease.yaml); retrying in 5 s");
                tokio::select! {
                    _ = &mut shutdown => return,
                    _ = tokio::time::sleep(Duration::from_secs(5)) => continue,
                }
            }
        };
        let (mut leading, handle) = manager.watch().await;
        loop {
            let acquired = tokio::select! {
                _ = &mut shutdown => None,
                r = async { leading.wait_for(|l| *l).await.is_ok() } => Some(r),
            };
            match acquired {
                None => {
                    drop(leading);
                    let _ = tokio::time::timeout(Duration::from_secs(5), handle).await;
                    return;
                }
                // The lease task ended (it retries API errors itself): set it up again.
                Some(false) => break,
                Some(true) if leading.has_changed().is_err() => break,
                Some(true) => {}
            }
            tracing::info!(identity = %identity, "leader: running the status controller");
            metrics.leader.set(1);
            let stop = tokio::select! {
                _ = &mut shutdown => true,
                _ = async { let _ = leading.wait_for(|l| !*l).await; } => false,
                _ = work() => false,
            };
            metrics.leader.set(0);
            if stop {
                drop(leading);
                let _ = tokio::time::timeout(Duration::from_secs(5), handle).await;
                tracing::info!("leader lease released");
                return;
            }
            tracing::warn!(identity = %identity, "lost the leader lease: status controller stopped");
            if leading.has_changed().is_err() {
                break;
            }
        }
    }
}
