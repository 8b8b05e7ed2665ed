//! The install manifests of `deploy/` on the test control plane, and a client acting as the
//! operator's service account (impersonated by the admin client), to test what RBAC and the
//! webhook guard let it do.

use std::path::{Path, PathBuf};

use kube::Client;
use kube::api::{Api, DynamicObject, Patch, PatchParams};
use kube::discovery::{ApiCapabilities, ApiResource, Discovery, Scope};
use serde_json::Value;

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
