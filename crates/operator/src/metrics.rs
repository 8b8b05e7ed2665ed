//! Prometheus metrics (`/metrics`), all prefixed `model_validation_`.

use std::sync::Arc;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

/// Labels of the webhook server's refusals.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RefusalLabels {
    /// `connections` (over the connection cap), `handshake_timeout`, `body_timeout`,
    /// `too_large` (body over the cap), `too_costly` (decoding priced over the cap), `busy`
    /// (requests in flight or memory budget), `unreadable`.
    pub reason: String,
}

/// Labels of admission metrics.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct AdmissionLabels {
    /// `injected`, `unchanged` or `denied`.
    pub result: String,
}

/// Labels naming a verification method.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct MethodLabels {
    /// `sigstore`, `pki` or `public-key`.
    pub method: String,
}

/// Labels of verification outcomes.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct VerificationLabels {
    /// The method.
    pub method: String,
    /// `verified` or `failed`.
    pub result: String,
}

/// Labels of reconciles.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ReconcileLabels {
    /// `success` or `error`.
    pub result: String,
}

/// Labels of the per-policy pod gauge. The policy is a ClusterModelValidation name: at most as
/// many series as policies (three each), never a pod or namespace.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct PolicyPodLabels {
    /// The ClusterModelValidation.
    pub policy: String,
    /// `injected`, `verified` or `failed`.
    pub state: String,
}

/// Every metric of the operator.
pub struct Metrics {
    registry: Registry,
    /// Admission requests by result.
    pub admissions: Family<AdmissionLabels, Counter>,
    /// Admission handling time.
    pub admission_duration: Histogram,
    /// Verification containers injected, by method.
    pub injections: Family<MethodLabels, Counter>,
    /// Verification outcomes seen in pod statuses.
    pub verifications: Family<VerificationLabels, Counter>,
    /// Reconciles by result.
    pub reconciles: Family<ReconcileLabels, Counter>,
    /// Reconcile time.
    pub reconcile_duration: Histogram,
    /// Reconcile errors.
    pub reconcile_errors: Counter,
    /// notAfter of the serving certificate, unix seconds.
    pub certificate_expiry: Gauge<i64>,
    /// 1 on the replica holding the controller lease.
    pub leader: Gauge<i64>,
    /// 1 while the watch caches are synced (the webhook decides), 0 while it refuses labelled
    /// pods because a watch is broken or has not listed yet.
    pub cache_synced: Gauge<i64>,
    /// Requests and connections the webhook server refused before the handler decided.
    pub webhook_refusals: Family<RefusalLabels, Counter>,
    /// Pods governed by each ClusterModelValidation, by state (as its status counts them).
    pub cluster_policy_pods: Family<PolicyPodLabels, Gauge>,
    /// Image-volume verifications at admission, by source (`registry` or `cache`).
    pub image_verifications: Family<SourceLabels, Counter>,
}

/// Where an image-volume verdict came from.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct SourceLabels {
    /// `registry` (verified now) or `cache` (verified earlier, within the TTL).
    pub source: String,
}

impl Metrics {
    /// All metrics, registered.
    pub fn new() -> Arc<Metrics> {
        let mut registry = Registry::with_prefix("model_validation");
        let admissions = Family::<AdmissionLabels, Counter>::default();
        registry.register(
            "admission_requests",
            "Pod admission requests by result (injected, unchanged, denied)",
            admissions.clone(),
        );
        // 100 µs .. ~3 s: admissions are sub-millisecond when healthy; the tail is what matters.
        let admission_duration = Histogram::new(
            prometheus_client::metrics::histogram::exponential_buckets(0.0001, 2.0, 16),
        );
        registry.register(
            "admission_duration_seconds",
            "Time to decide one admission request",
            admission_duration.clone(),
        );
        let injections = Family::<MethodLabels, Counter>::default();
        registry.register(
            "injections",
            "Verification init containers injected, by method",
            injections.clone(),
        );
        let verifications = Family::<VerificationLabels, Counter>::default();
        registry.register(
            "verifications",
            "Model verification outcomes reported by injected containers, by method and result",
            verifications.clone(),
        );
        let reconciles = Family::<ReconcileLabels, Counter>::default();
        registry.register(
            "reconciles",
            "ModelValidation reconciles by result",
            reconciles.clone(),
        );
        let reconcile_duration = Histogram::new(
            prometheus_client::metrics::histogram::exponential_buckets(0.001, 2.0, 14),
        );
        registry.register(
            "reconcile_duration_seconds",
            "Time of one ModelValidation reconcile",
            reconcile_duration.clone(),
        );
        let reconcile_errors = Counter::default();
        registry.register(
            "reconcile_errors",
            "ModelValidation reconciles that failed",
            reconcile_errors.clone(),
        );
        let certificate_expiry = Gauge::<i64>::default();
        registry.register(
            "serving_certificate_expiry_timestamp_seconds",
            "notAfter of the webhook serving certificate (unix seconds)",
            certificate_expiry.clone(),
        );
        let leader = Gauge::<i64>::default();
        registry.register(
            "leader",
            "1 when this replica holds the controller lease",
            leader.clone(),
        );
        let cache_synced = Gauge::<i64>::default();
        registry.register(
            "cache_synced",
            "1 while the ModelValidation and Namespace watch caches are synced, 0 while labelled pods are refused for lack of an up-to-date view",
            cache_synced.clone(),
        );
        let webhook_refusals = Family::<RefusalLabels, Counter>::default();
        registry.register(
            "webhook_refusals",
            "Connections and requests the webhook server refused before deciding, by reason (connections, handshake_timeout, body_timeout, too_large, too_costly, busy, unreadable)",
            webhook_refusals.clone(),
        );
        let cluster_policy_pods = Family::<PolicyPodLabels, Gauge>::default();
        registry.register(
            "cluster_policy_pods",
            "Pods with a ClusterModelValidation's verifier, by policy and state (injected, verified, failed); in warn and audit mode, failed counts what enforce would have stopped",
            cluster_policy_pods.clone(),
        );
        let image_verifications = Family::<SourceLabels, Counter>::default();
        registry.register(
            "image_verifications",
            "Models in image volumes checked at admission, by source: registry (signatures fetched and verified) or cache (verified within --image-cache-ttl)",
            image_verifications.clone(),
        );
        Arc::new(Metrics {
            image_verifications,
            cluster_policy_pods,
            registry,
            admissions,
            admission_duration,
            injections,
            verifications,
            reconciles,
            reconcile_duration,
            reconcile_errors,
            certificate_expiry,
            leader,
            cache_synced,
            webhook_refusals,
        })
    }

    /// The OpenMetrics text exposition.
    pub fn encode(&self) -> String {
        let mut out = String::new();
        let _ = prometheus_client::encoding::text::encode(&mut out, &self.registry);
        out
    }

    /// Records what one admission's image-volume checks cost.
    pub fn image_verifications(&self, stats: &crate::images::verifier::VerifyStats) {
        for (source, n) in [("registry", stats.verified), ("cache", stats.cached)] {
            if n > 0 {
                self.image_verifications
                    .get_or_create(&SourceLabels {
                        source: source.into(),
                    })
                    .inc_by(n as u64);
            }
        }
    }

    /// Records one admission decision.
    pub fn admission(&self, result: &str, seconds: f64) {
        self.admissions
            .get_or_create(&AdmissionLabels {
                result: result.into(),
            })
            .inc();
        self.admission_duration.observe(seconds);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_prefixed_and_values_show() {
        let m = Metrics::new();
        m.admission("denied", 0.002);
        m.injections
            .get_or_create(&MethodLabels {
                method: "pki".into(),
            })
            .inc();
        m.certificate_expiry.set(1_900_000_000);
        let text = m.encode();
        assert!(
            text.contains("model_validation_admission_requests_total{result=\"denied\"} 1"),
            "{text}"
        );
        assert!(
            text.contains("model_validation_injections_total{method=\"pki\"} 1"),
            "{text}"
        );
        assert!(
            text.contains(
                "model_validation_serving_certificate_expiry_timestamp_seconds 1900000000"
            ),
            "{text}"
        );
        assert!(
            text.contains("model_validation_admission_duration_seconds_count 1"),
            "{text}"
        );
    }
}
