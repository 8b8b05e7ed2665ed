//! The cluster view the webhook decides on: reflector caches of ModelValidations (both API
//! groups), ClusterModelValidations, Namespaces, and the Secrets and ConfigMaps of the
//! operator's namespace (trust material the cluster policies reference), so an admission never
//! waits on an API call. The cluster policies are prepared once per change
//! ([`ClusterPolicy`]), not per admission.
//!
//! The cache is *synced* only while every watch can be trusted (see [`staleness`]): not before
//! the first list, and not after a watch has been broken for longer than the bound given to
//! [`ClusterCache::start_with`] until a fresh list has completed. While it is not synced the
//! webhook refuses labelled pods (saying to retry) and `/readyz` reports not ready, so a rotated
//! key or a tightened policy cannot lag silently.

pub mod staleness;

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures::StreamExt;
use k8s_openapi::api::core::v1::{ConfigMap, Namespace, Secret};
use kube::api::ListParams;
use kube::runtime::reflector::{self, ObjectRef, Store};
use kube::runtime::watcher;
use kube::{Api, Client, ResourceExt};

use crate::authorities::{Missing, TrustObjects};
use crate::cluster_policy::ClusterPolicy;
use crate::crd::cluster::ClusterModelValidation;
use crate::crd::{ModelValidation, legacy};
use crate::names::{IGNORE_NAMESPACE_LABEL, LEGACY_LABEL};
use crate::webhook::{FoundPolicy, Policies};
use staleness::{Backoff, Check, Seen, Staleness};

/// How long a watch may stay broken before the cache stops answering (`--cache-stale-after`).
pub const DEFAULT_STALE_AFTER: Duration = Duration::from_secs(30);

/// Reflector-backed [`Policies`].
#[derive(Clone)]
pub struct ClusterCache {
    mvs: Store<ModelValidation>,
    legacy: Option<Store<legacy::ModelValidation>>,
    namespaces: Store<Namespace>,
    /// The cluster policies and the trust material they reference.
    cluster: ClusterStores,
    /// One flag per watch, each kept by that watch's driver.
    synced: Vec<Arc<AtomicBool>>,
}

/// The stores behind the cluster policies, and the policies prepared from them.
#[derive(Clone)]
struct ClusterStores {
    policies: Store<ClusterModelValidation>,
    secrets: Store<Secret>,
    config_maps: Store<ConfigMap>,
    /// The operator's namespace, where referenced Secrets and ConfigMaps live.
    namespace: String,
    /// Bumped by the drivers of the three stores on every event.
    changes: Arc<AtomicU64>,
    /// The policies prepared at a value of `changes`.
    prepared: Arc<Mutex<Option<Prepared>>>,
}

/// Cluster policies prepared at one value of [`ClusterStores::changes`].
type Prepared = (u64, Arc<Vec<ClusterPolicy>>);

impl TrustObjects for ClusterStores {
    fn namespace(&self) -> &str {
        &self.namespace
    }

    fn secret(&self, name: &str, key: &str) -> Result<String, Missing> {
        let secret = self
            .secrets
            .get(&ObjectRef::new(name).within(&self.namespace))
            .ok_or(Missing::Object)?;
        let value = secret
            .data
            .as_ref()
            .and_then(|d| d.get(key))
            .ok_or(Missing::Key)?;
        String::from_utf8(value.0.clone()).map_err(|_| Missing::NotText)
    }

    fn config_map(&self, name: &str, key: &str) -> Result<String, Missing> {
        let cm = self
            .config_maps
            .get(&ObjectRef::new(name).within(&self.namespace))
            .ok_or(Missing::Object)?;
        cm.data
            .as_ref()
            .and_then(|d| d.get(key))
            .cloned()
            .ok_or(Missing::Key)
    }
}

impl ClusterStores {
    #[cfg(test)]
    fn empty(namespace: &str) -> ClusterStores {
        ClusterStores {
            policies: reflector::store().0,
            secrets: reflector::store().0,
            config_maps: reflector::store().0,
            namespace: namespace.into(),
            changes: Arc::default(),
            prepared: Arc::default(),
        }
    }

    /// The prepared policies, in name order; rebuilt only when a store changed since.
    fn prepared(&self) -> Arc<Vec<ClusterPolicy>> {
        let now = self.changes.load(Ordering::SeqCst);
        let Ok(mut guard) = self.prepared.lock() else {
            // A panic while preparing poisoned the lock: prepare without caching.
            return Arc::new(self.prepare());
        };
        match &*guard {
            Some((at, policies)) if *at == now => policies.clone(),
            _ => {
                // Counted before preparing: an event that lands meanwhile makes the next call
                // prepare again, so the result is never older than one call.
                let policies = Arc::new(self.prepare());
                *guard = Some((now, policies.clone()));
                policies
            }
        }
    }

    fn prepare(&self) -> Vec<ClusterPolicy> {
        let mut out: Vec<ClusterPolicy> = self
            .policies
            .state()
            .iter()
            .filter_map(|p| {
                let name = p.name_any();
                ClusterPolicy::new(&name, &p.spec, self)
                    .inspect_err(|e| tracing::warn!(policy = %name, error = %e, "ClusterModelValidation governs nothing: its selector cannot be evaluated"))
                    .ok()
            })
            .collect();
        out.sort_by(|a, b| a.name().cmp(b.name()));
        out
    }
}

/// What the stream yielded, for [`Staleness`].
fn seen<K>(event: &watcher::Event<K>) -> Seen {
    match event {
        watcher::Event::Init | watcher::Event::InitApply(_) => Seen::Listing,
        watcher::Event::InitDone => Seen::Listed,
        watcher::Event::Apply(_) | watcher::Event::Delete(_) => Seen::Changed,
    }
}

/// Starts the watch of `api` into a new store: the store, the watch's synced flag, and the task
/// that keeps both (it runs until the process ends).
fn drive<K>(
    api: Api<K>,
    stale_after: Duration,
    changes: Option<Arc<AtomicU64>>,
) -> (
    Store<K>,
    Arc<AtomicBool>,
    impl std::future::Future<Output = ()> + Send + 'static,
)
where
    K: kube::Resource
        + Clone
        + std::fmt::Debug
        + serde::de::DeserializeOwned
        + Send
        + Sync
        + 'static,
    K::DynamicType: Default + Eq + std::hash::Hash + Clone + Send + Sync,
{
    let (reader, mut writer) = reflector::store::<K>();
    let current = reader.clone();
    let synced = Arc::new(AtomicBool::new(false));
    let flag = synced.clone();
    let kind = K::kind(&K::DynamicType::default()).into_owned();
    // Checked at least this often, so a break is noticed within a quarter of the bound.
    let every = (stale_after / 4).clamp(Duration::from_millis(50), Duration::from_secs(5));
    let task = async move {
        let mut state = Staleness::new(stale_after);
        loop {
            // A new stream starts with a fresh list (`Init` .. `InitDone`); the writer keeps
            // answering from the old objects until the list completes, then swaps.
            let mut stream = watcher(api.clone(), watcher::Config::default()).boxed();
            let mut backoff = Backoff::new(every);
            loop {
                let mut pause = None;
                match tokio::time::timeout(every, stream.next()).await {
                    Ok(Some(Ok(event))) => {
                        if let Some(c) = &changes
                            && reshapes(&current, &event)
                        {
                            c.fetch_add(1, Ordering::SeqCst);
                        }
                        writer.apply_watcher_event(&event);
                        state.seen(seen(&event));
                        backoff.reset();
                    }
                    Ok(Some(Err(e))) => {
                        tracing::warn!(error = %e, kind = %kind, "watch error; retrying");
                        state.broken(Instant::now());
                        pause = Some(backoff.next_delay());
                    }
                    // A watcher stream does not end; should it, start a new one.
                    Ok(None) => {
                        state.broken(Instant::now());
                        break;
                    }
                    Err(_elapsed) => {}
                }
                let restart = match state.check(Instant::now()) {
                    Check::Wait => false,
                    Check::Probe => {
                        let ok = probe(&api, every).await;
                        tracing::warn!(kind = %kind, api_server_answers = ok, bound = ?stale_after, "watch broken for longer than the bound; listing afresh");
                        state.probed(ok, Instant::now());
                        true
                    }
                };
                publish(&flag, state.synced(), &kind);
                if restart {
                    break;
                }
                if let Some(p) = pause {
                    tokio::time::sleep(p).await;
                }
            }
            publish(&flag, state.synced(), &kind);
        }
    };
    (reader, synced, task)
}

/// Whether `event` can change what is prepared from `store`'s objects. A write to the status
/// of an object with a `generation` (a ClusterModelValidation) leaves its generation as it was,
/// and cannot: without this check every status the controller writes would have the webhook
/// prepare every cluster policy again, and the controller recompute every status. Secrets and
/// ConfigMaps carry no generation, so each of their changes counts.
fn reshapes<K>(store: &Store<K>, event: &watcher::Event<K>) -> bool
where
    K: kube::Resource + Clone,
    K::DynamicType: Default + Eq + std::hash::Hash + Clone,
{
    let watcher::Event::Apply(object) = event else {
        return true;
    };
    let Some(generation) = object.meta().generation else {
        return true;
    };
    store.get(&ObjectRef::from_obj(object)).is_none_or(|old| {
        old.meta().generation != Some(generation) || old.meta().uid != object.meta().uid
    })
}

/// Whether the API server answers a one-item list of `api` within `timeout`.
async fn probe<K>(api: &Api<K>, timeout: Duration) -> bool
where
    K: kube::Resource + Clone + std::fmt::Debug + serde::de::DeserializeOwned,
{
    matches!(
        tokio::time::timeout(timeout, api.list_metadata(&ListParams::default().limit(1))).await,
        Ok(Ok(_))
    )
}

/// Sets `flag`, logging changes.
fn publish(flag: &AtomicBool, synced: bool, kind: &str) {
    if flag.swap(synced, Ordering::SeqCst) != synced {
        if synced {
            tracing::info!(kind = %kind, "cache synced");
        } else {
            tracing::warn!(kind = %kind, "cache not synced: refusing labelled pods (retry) and not ready until a fresh list completes");
        }
    }
}

impl ClusterCache {
    /// Starts the watches with the default bound ([`DEFAULT_STALE_AFTER`]).
    pub async fn start(client: Client, operator_namespace: &str) -> ClusterCache {
        Self::start_with(client, DEFAULT_STALE_AFTER, operator_namespace).await
    }

    /// Starts the watches; the cache is unsynced while a watch has been broken for longer than
    /// `stale_after` and not listed afresh since. The legacy API is watched only when its CRD is
    /// installed. Secrets and ConfigMaps are watched in `operator_namespace` only.
    pub async fn start_with(
        client: Client,
        stale_after: Duration,
        operator_namespace: &str,
    ) -> ClusterCache {
        let (mvs, s1, t1) = drive(
            Api::<ModelValidation>::all(client.clone()),
            stale_after,
            None,
        );
        tokio::spawn(t1);
        let (namespaces, s2, t2) = drive(Api::<Namespace>::all(client.clone()), stale_after, None);
        tokio::spawn(t2);
        let changes = Arc::new(AtomicU64::new(0));
        let (policies, s3, t3) = drive(
            Api::<ClusterModelValidation>::all(client.clone()),
            stale_after,
            Some(changes.clone()),
        );
        tokio::spawn(t3);
        let (secrets, s4, t4) = drive(
            Api::<Secret>::namespaced(client.clone(), operator_namespace),
            stale_after,
            Some(changes.clone()),
        );
        tokio::spawn(t4);
        let (config_maps, s5, t5) = drive(
            Api::<ConfigMap>::namespaced(client.clone(), operator_namespace),
            stale_after,
            Some(changes.clone()),
        );
        tokio::spawn(t5);
        let cluster = ClusterStores {
            policies,
            secrets,
            config_maps,
            namespace: operator_namespace.into(),
            changes,
            prepared: Arc::default(),
        };
        let mut synced = vec![s1, s2, s3, s4, s5];
        let legacy_api = Api::<legacy::ModelValidation>::all(client.clone());
        let legacy = match legacy_api
            .list(&kube::api::ListParams::default().limit(1))
            .await
        {
            Ok(_) => {
                let (store, s6, t6) = drive(legacy_api, stale_after, None);
                tokio::spawn(t6);
                synced.push(s6);
                Some(store)
            }
            Err(e) => {
                tracing::info!(error = %e, "rhtas.redhat.com ModelValidation API not served; pods labelled {} will find no ModelValidation of that API", LEGACY_LABEL);
                None
            }
        };
        ClusterCache {
            mvs,
            legacy,
            namespaces,
            cluster,
            synced,
        }
    }
}

#[cfg(test)]
impl ClusterCache {
    /// A cache holding ModelValidation `team/mv` (fed as a watch would) and two watches, the
    /// second `synced` or not.
    pub(crate) fn for_test(synced: bool) -> ClusterCache {
        let (mvs, mut writer) = reflector::store::<ModelValidation>();
        let mut mv = ModelValidation::new("mv", crate::test_support::key_spec());
        mv.metadata.namespace = Some("team".into());
        writer.apply_watcher_event(&watcher::Event::Apply(mv));
        let (namespaces, _) = reflector::store::<Namespace>();
        ClusterCache {
            mvs,
            legacy: None,
            namespaces,
            cluster: ClusterStores::empty("mvo-system"),
            synced: vec![
                Arc::new(AtomicBool::new(true)),
                Arc::new(AtomicBool::new(synced)),
            ],
        }
    }
}

impl Policies for ClusterCache {
    fn get(&self, namespace: &str, name: &str) -> Option<FoundPolicy> {
        let mv = self.mvs.get(&ObjectRef::new(name).within(namespace))?;
        Some(FoundPolicy {
            display: format!("ModelValidation {namespace}/{name}"),
            name: name.to_string(),
            spec: mv.spec.clone(),
        })
    }

    fn in_namespace(&self, namespace: &str) -> Vec<FoundPolicy> {
        let mut out: Vec<FoundPolicy> = self
            .mvs
            .state()
            .iter()
            .filter(|m| m.namespace().as_deref() == Some(namespace))
            .map(|m| FoundPolicy {
                display: format!("ModelValidation {namespace}/{}", m.name_any()),
                name: m.name_any(),
                spec: m.spec.clone(),
            })
            .collect();
        if let Some(l) = &self.legacy {
            out.extend(
                l.state()
                    .iter()
                    .filter(|m| m.namespace().as_deref() == Some(namespace))
                    .map(|m| FoundPolicy {
                        display: format!(
                            "ModelValidation.rhtas.redhat.com {namespace}/{}",
                            m.name_any()
                        ),
                        name: m.name_any(),
                        spec: (&m.spec).into(),
                    }),
            );
        }
        out.sort_by(|a, b| a.display.cmp(&b.display));
        out
    }

    fn namespace_ignored(&self, namespace: &str) -> bool {
        self.namespaces
            .get(&ObjectRef::new(namespace))
            .is_some_and(|ns| {
                ns.labels()
                    .get(IGNORE_NAMESPACE_LABEL)
                    .is_some_and(|v| v == "true")
            })
    }

    fn synced(&self) -> bool {
        self.synced.iter().all(|s| s.load(Ordering::SeqCst))
    }

    fn cluster_policies(&self) -> Arc<Vec<ClusterPolicy>> {
        self.cluster.prepared()
    }

    fn namespace_labels(&self, namespace: &str) -> Option<BTreeMap<String, String>> {
        self.namespaces
            .get(&ObjectRef::new(namespace))
            .map(|ns| ns.labels().clone())
    }

    fn trust_objects(&self) -> Option<&dyn TrustObjects> {
        Some(&self.cluster)
    }
}

#[cfg(test)]
mod tests {
    use k8s_openapi::api::core::v1::Pod;
    use kube::core::admission::{AdmissionRequest, AdmissionReview};
    use serde_json::{Value, json};

    use super::*;
    use crate::names::LABEL;
    use crate::webhook::{AdmitConfig, Decision, decide};

    fn create(labels: Value) -> AdmissionRequest<Pod> {
        let review: AdmissionReview<Pod> = serde_json::from_value(json!({
            "apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview",
            "request": {
                "uid": "u1", "kind": {"group": "", "version": "v1", "kind": "Pod"},
                "resource": {"group": "", "version": "v1", "resource": "pods"},
                "namespace": "team", "operation": "CREATE", "userInfo": {},
                "object": {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p", "namespace": "team", "labels": labels},
                    "spec": {"containers": [{"name": "app", "image": "app", "volumeMounts": [
                        {"name": "data", "mountPath": "/data"}, {"name": "keys", "mountPath": "/keys"}]}],
                        "volumes": [{"name": "data", "emptyDir": {}}, {"name": "keys", "emptyDir": {}}]}}
            }
        }))
        .unwrap();
        review.try_into().unwrap()
    }

    fn config() -> AdmitConfig {
        crate::test_support::admit_config()
    }

    #[test]
    fn one_unsynced_watch_makes_labelled_pods_refused_with_retry() {
        let stale = ClusterCache::for_test(false);
        assert!(!stale.synced(), "one watch out of two unsynced is enough");
        for labels in [json!({LABEL: "mv"}), json!({LEGACY_LABEL: "true"})] {
            match decide(&create(labels.clone()), &stale, &config()) {
                Decision::Retry { message } => {
                    assert!(message.contains("retry in a few seconds"), "{message}");
                    assert!(message.contains("watch"), "{message}");
                }
                other => panic!("{labels}: {other:?}"),
            }
        }
        // Unlabelled pods never depend on the cache.
        assert_eq!(
            decide(&create(json!({"app": "x"})), &stale, &config()),
            Decision::Unchanged
        );
        // Twin: the same cache synced injects the verifier.
        let fresh = ClusterCache::for_test(true);
        assert!(fresh.synced());
        assert!(matches!(
            decide(&create(json!({LABEL: "mv"})), &fresh, &config()),
            Decision::Inject { .. }
        ));
    }

    #[test]
    fn watch_events_map_to_what_they_prove() {
        let obj = Namespace::default();
        assert_eq!(seen(&watcher::Event::<Namespace>::Init), Seen::Listing);
        assert_eq!(seen(&watcher::Event::InitApply(obj.clone())), Seen::Listing);
        assert_eq!(seen(&watcher::Event::<Namespace>::InitDone), Seen::Listed);
        assert_eq!(seen(&watcher::Event::Apply(obj.clone())), Seen::Changed);
        assert_eq!(seen(&watcher::Event::Delete(obj)), Seen::Changed);
    }

    #[test]
    fn only_a_new_generation_of_a_policy_reshapes_the_prepared_policies() {
        let policy = |generation: i64, uid: &str, verified: i32| -> ClusterModelValidation {
            serde_json::from_value(json!({
                "apiVersion": "ml.sigstore.dev/v1alpha1", "kind": "ClusterModelValidation",
                "metadata": {"name": "org", "uid": uid, "generation": generation},
                "spec": {"namespaceSelector": {}, "model": {"path": "/m", "signaturePath": "/m.sig"},
                    "authorities": [{"name": "k", "key": {"pem": "x"}}]},
                "status": {"verifiedCount": verified}
            }))
            .unwrap()
        };
        let (store, mut writer) = reflector::store::<ClusterModelValidation>();
        let first = watcher::Event::Apply(policy(1, "u1", 0));
        assert!(reshapes(&store, &first), "a new policy");
        writer.apply_watcher_event(&first);
        // The controller's own status write: same generation.
        assert!(!reshapes(
            &store,
            &watcher::Event::Apply(policy(1, "u1", 7))
        ));
        // Twins: a spec change, and a policy deleted and created again under the same name.
        assert!(reshapes(&store, &watcher::Event::Apply(policy(2, "u1", 7))));
        assert!(reshapes(&store, &watcher::Event::Apply(policy(1, "u2", 0))));
        assert!(reshapes(
            &store,
            &watcher::Event::Delete(policy(1, "u1", 0))
        ));
        // Objects without a generation (Secrets, ConfigMaps): every change counts.
        let (secrets, mut w) = reflector::store::<Secret>();
        let secret: Secret =
            serde_json::from_value(json!({"metadata": {"name": "k", "uid": "s"}})).unwrap();
        w.apply_watcher_event(&watcher::Event::Apply(secret.clone()));
        assert!(reshapes(&secrets, &watcher::Event::Apply(secret)));
    }
}
