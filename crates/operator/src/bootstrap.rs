//! Setting up a cluster the operator runs outside of (tests, the demo): the CRDs and its
//! namespace. In a cluster, both come from `deploy/`.

use std::time::Duration;

use anyhow::{Context, Result};

use crate::crd;
use crate::names::{FIELD_MANAGER, IGNORE_NAMESPACE_LABEL};

/// Installs (server-side applies) the CRDs and waits until the API server serves them.
pub async fn install_crds(client: &kube::Client) -> Result<()> {
    use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
    use kube::CustomResourceExt;
    let api: kube::Api<CustomResourceDefinition> = kube::Api::all(client.clone());
    for crd in [
        crd::ModelValidation::crd(),
        crd::legacy::ModelValidation::crd(),
        crd::cluster::ClusterModelValidation::crd(),
    ] {
        let name = crd.metadata.name.clone().unwrap_or_default();
        api.patch(
            &name,
            &kube::api::PatchParams::apply(FIELD_MANAGER).force(),
            &kube::api::Patch::Apply(&crd),
        )
        .await
        .with_context(|| format!("cannot install CRD {name}"))?;
    }
    // Wait until the API server serves them.
    for _ in 0..100 {
        let ok = kube::Api::<crd::ModelValidation>::all(client.clone())
            .list(&kube::api::ListParams::default().limit(1))
            .await
            .is_ok()
            && kube::Api::<crd::legacy::ModelValidation>::all(client.clone())
                .list(&kube::api::ListParams::default().limit(1))
                .await
                .is_ok()
            && kube::Api::<crd::cluster::ClusterModelValidation>::all(client.clone())
                .list(&kube::api::ListParams::default().limit(1))
                .await
                .is_ok();
        if ok {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    anyhow::bail!("the CRDs were installed but are not served after 10 s")
}

/// Creates the operator's namespace, labelled so that its pods are never injected.
pub async fn ensure_namespace(client: &kube::Client, name: &str) -> Result<()> {
    use k8s_openapi::api::core::v1::Namespace;
    let api: kube::Api<Namespace> = kube::Api::all(client.clone());
    let ns = Namespace {
        metadata: kube::api::ObjectMeta {
            name: Some(name.into()),
            labels: Some([(IGNORE_NAMESPACE_LABEL.to_string(), "true".to_string())].into()),
            ..Default::default()
        },
        ..Default::default()
    };
    api.patch(
        name,
        &kube::api::PatchParams::apply(FIELD_MANAGER).force(),
        &kube::api::Patch::Apply(&ns),
    )
    .await
    .with_context(|| format!("cannot create namespace {name}"))?;
    Ok(())
}
