//! The install manifests of `deploy/` on the test control plane, and a client acting as the
//! operator's service account (impersonated by the admin client), to test what RBAC and the
//! webhook guard let it do.

use std::path::{Path, PathBuf};

use std::time::Duration;

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::Client;
use kube::api::{Api, DynamicObject, Patch, PatchParams};
use kube::discovery::{ApiCapabilities, ApiResource, Discovery, Scope};
use serde_json::Value;
use test_cluster::support::wait_for;

/// The namespace of `deploy/base`.
pub const OPERATOR_NAMESPACE: &str = "model-validation-operator-system";
/// The operator's service account in `deploy/base/rbac.yaml`.
pub const OPERATOR_SA: &str = "model-validation-operator";

/// The `deploy/` directory.
pub fn deploy_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../deploy")
}

/// The documents of one manifest file.
pub fn manifest(path: &Path) -> Vec<Value> {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_saphyr::from_multiple::<Value>(&text)
        .unwrap()
        .into_iter()
        .filter(|d| !d.is_null())
        .collect()
}

/// The documents of a kustomization, following `resources:` into directories.
pub fn kustomize(dir: &Path) -> Vec<Value> {
    let k: Value =
        serde_saphyr::from_str(&std::fs::read_to_string(dir.join("kustomization.yaml")).unwrap())
            .unwrap();
    let mut docs = Vec::new();
    for r in k["resources"].as_array().unwrap() {
        let path = dir.join(r.as_str().unwrap());
        if path.is_dir() {
            docs.extend(kustomize(&path));
        } else {
            docs.extend(manifest(&path));
        }
    }
    docs
}

/// The API of the kind of `doc` (in its namespace, when namespaced).
pub fn api_for(client: &Client, discovery: &Discovery, doc: &Value) -> Api<DynamicObject> {
    let (group, version) = match doc["apiVersion"].as_str().unwrap().split_once('/') {
        Some((g, v)) => (g.to_string(), v.to_string()),
        None => (
            String::new(),
            doc["apiVersion"].as_str().unwrap().to_string(),
        ),
    };
    let kind = doc["kind"].as_str().unwrap();
    let (ar, caps): (ApiResource, ApiCapabilities) = discovery
        .groups()
        .filter(|g| g.name() == group)
        .flat_map(|g| g.versioned_resources(&version))
        .find(|(ar, _)| ar.kind == kind)
        .unwrap_or_else(|| panic!("{kind} not served"));
    match caps.scope {
        Scope::Namespaced => Api::namespaced_with(
            client.clone(),
            doc["metadata"]["namespace"]
                .as_str()
                .expect("namespaced objects name their namespace"),
            &ar,
        ),
        Scope::Cluster => Api::all_with(client.clone(), &ar),
    }
}

/// Server-side applies `doc` as field manager `manager`.
pub async fn apply_doc(client: &Client, discovery: &Discovery, doc: &Value, manager: &str) {
    let name = doc["metadata"]["name"].as_str().unwrap();
    let obj: DynamicObject = serde_json::from_value(doc.clone()).unwrap();
    api_for(client, discovery, doc)
        .patch(
            name,
            &PatchParams::apply(manager).force(),
            &Patch::Apply(&obj),
        )
        .await
        .unwrap_or_else(|e| panic!("{} {name}: {e}", doc["kind"]));
}

/// Waits until the CRD `doc` is `Established` and its kind is in discovery (which can lag the
/// condition by a moment); returns that discovery.
pub async fn established_and_discovered(client: &Client, doc: &Value) -> Discovery {
    let name = doc["metadata"]["name"].as_str().unwrap();
    let group = doc["spec"]["group"].as_str().unwrap();
    let kind = doc["spec"]["names"]["kind"].as_str().unwrap();
    let crds = &Api::<CustomResourceDefinition>::all(client.clone());
    let what = format!("CRD {name} to be Established and {group} {kind} discovered");
    wait_for(&what, Duration::from_secs(30), || async move {
        let crd = crds.get(name).await.ok()?;
        let established = crd
            .status?
            .conditions?
            .iter()
            .any(|c| c.type_ == "Established" && c.status == "True");
        if !established {
            return None;
        }
        let discovery = Discovery::new(client.clone()).run().await.ok()?;
        let served = discovery
            .groups()
            .filter(|g| g.name() == group)
            .flat_map(|g| g.recommended_resources())
            .any(|(ar, _)| ar.kind == kind);
        served.then_some(discovery)
    })
    .await
}

/// Applies every document of `deploy/base` (server-side, as field manager `deploy-test`): CRDs
/// and the namespace first, then the rest, as `kubectl apply -k` orders kinds; waits for each
/// CRD to be served. Returns the documents.
pub async fn install_base(client: &Client) -> Vec<Value> {
    let docs = kustomize(&deploy_dir().join("base"));
    let rank = |d: &Value| match d["kind"].as_str().unwrap() {
        "CustomResourceDefinition" | "Namespace" => 0,
        _ => 1,
    };
    let mut sorted = docs.clone();
    sorted.sort_by_key(rank);
    let mut discovery = Discovery::new(client.clone()).run().await.unwrap();
    for doc in &sorted {
        apply_doc(client, &discovery, doc, "deploy-test").await;
        if doc["kind"] == "CustomResourceDefinition" {
            discovery = established_and_discovered(client, doc).await;
        }
    }
    docs
}

/// A client acting as the operator's service account in `deploy/base` (the admin client of
/// the test control plane may impersonate anyone).
pub fn operator_client(cp: &test_cluster::ControlPlane) -> Client {
    impersonating(cp.config().clone(), OPERATOR_NAMESPACE, OPERATOR_SA)
}

/// A client acting as service account `namespace`/`name`, built from the admin `config`.
pub fn impersonating(mut config: kube::Config, namespace: &str, name: &str) -> Client {
    config.auth_info.impersonate = Some(format!("system:serviceaccount:{namespace}:{name}"));
    config.auth_info.impersonate_groups = Some(vec![
        "system:serviceaccounts".into(),
        format!("system:serviceaccounts:{namespace}"),
        "system:authenticated".into(),
    ]);
    Client::try_from(config).unwrap()
}
