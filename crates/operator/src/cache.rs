//! The cluster view the webhook decides on: reflector caches of ModelValidations (both API
//! groups) and Namespaces, so an admission never waits on an API call.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use futures::StreamExt;
use k8s_openapi::api::core::v1::Namespace;
use kube::runtime::reflector::{self, ObjectRef, Store};
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Api, Client, ResourceExt};

use crate::crd::{ModelValidation, legacy};
use crate::names::{IGNORE_NAMESPACE_LABEL, LEGACY_LABEL};
use crate::webhook::{FoundPolicy, Policies};

/// Reflector-backed [`Policies`].
#[derive(Clone)]
pub struct ClusterCache {
    mvs: Store<ModelValidation>,
    legacy: Option<Store<legacy::ModelValidation>>,
    namespaces: Store<Namespace>,
    synced: Arc<AtomicBool>,
}

fn drive<K>(
    api: Api<K>,
) -> (
    Store<K>,
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
    let (reader, writer) = reflector::store();
    let stream = watcher(api, watcher::Config::default())
        .default_backoff()
        .reflect(writer)
        .applied_objects();
    let task = async move {
        futures::pin_mut!(stream);
        while let Some(item) = stream.next().await {
            if let Err(e) = item {
                tracing::warn!(error = %e, "watch error; retrying");
            }
        }
    };
    (reader, task)
}

impl ClusterCache {
    /// Starts the watches. The legacy API is watched only when its CRD is installed.
    pub async fn start(client: Client) -> ClusterCache {
        let (mvs, t1) = drive(Api::<ModelValidation>::all(client.clone()));
        tokio::spawn(t1);
        let (namespaces, t2) = drive(Api::<Namespace>::all(client.clone()));
        tokio::spawn(t2);
        let legacy_api = Api::<legacy::ModelValidation>::all(client.clone());
        let legacy = match legacy_api
            .list(&kube::api::ListParams::default().limit(1))
            .await
        {
            Ok(_) => {
                let (store, t3) = drive(legacy_api);
                tokio::spawn(t3);
                Some(store)
            }
            Err(e) => {
                tracing::info!(error = %e, "rhtas.redhat.com ModelValidation API not served; pods labelled {} will find no ModelValidation of that API", LEGACY_LABEL);
                None
            }
        };
        let cache = ClusterCache {
            mvs,
            legacy,
            namespaces,
            synced: Arc::new(AtomicBool::new(false)),
        };
        let waiting = cache.clone();
        tokio::spawn(async move {
            let _ = waiting.mvs.wait_until_ready().await;
            let _ = waiting.namespaces.wait_until_ready().await;
            if let Some(l) = &waiting.legacy {
                let _ = l.wait_until_ready().await;
            }
            waiting.synced.store(true, Ordering::SeqCst);
            tracing::info!("caches synced");
        });
        cache
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
        self.synced.load(Ordering::SeqCst)
    }
}
