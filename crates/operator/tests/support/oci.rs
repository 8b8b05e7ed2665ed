//! Models as OCI artifacts in the real test registries ([`test_cluster::registry`]), made with
//! the engine's registry client (`model_signing::oci::registry`, feature `registry`), and pods
//! that mount them as image volumes (`spec.volumes[].image`).
//!
//! The engine is used rather than the `model-signing oci` binary so that no test depends on a
//! release build being fresh, and so that a test can do what the CLI refuses (attach a bundle
//! to a manifest it does not sign: what an attacker with push access can do).

use k8s_openapi::api::core::v1::{Pod, Secret};
use model_signing::name::ModelPath;
use model_signing::oci::modelpack::{PackFile, pack};
use model_signing::oci::registry::Resolved;
use model_signing::sign::Signer;
use serde_json::{Value, json};
use test_cluster::registry::Registry;
pub use test_cluster::support::registry_push::{
    docker_config_json, engine_client as registry_client,
};

/// A `kubernetes.io/dockerconfigjson` Secret `name` in `ns` with `r`'s credentials.
pub fn pull_secret(name: &str, ns: &str, r: &Registry) -> Secret {
    let c = r.credentials().expect("a registry with basic auth");
    serde_json::from_value(json!({
        "metadata": {"name": name, "namespace": ns},
        "type": "kubernetes.io/dockerconfigjson",
        "stringData": {".dockerconfigjson": docker_config_json(&r.host(), &c.username, &c.password)},
    }))
    .unwrap()
}

/// A small model whose content is unique to `seed` (so that no two tests share a manifest
/// digest, which the operator's verification cache is keyed by): `weights.bin`, `config.json`
/// and `README.md`.
pub fn model_files(seed: &str) -> Vec<(String, Vec<u8>)> {
    vec![
        ("weights.bin".into(), vec![7u8; 20_000]),
        ("config.json".into(), b"{\"layers\": 2}".to_vec()),
        ("README.md".into(), format!("model {seed}\n").into_bytes()),
    ]
}

/// [`model_files`] with `weights.bin` changed.
pub fn tampered_files(seed: &str) -> Vec<(String, Vec<u8>)> {
    let mut files = model_files(seed);
    files[0].1 = vec![4u8; 5_000];
    files
}

/// Pushes `files` as a raw-layer ModelPack artifact to `reference` (`host/repo:tag` on `r`),
/// as `model-signing oci push` does; returns the manifest as the registry now serves it.
pub async fn push_model(r: &Registry, reference: &str, files: &[(String, Vec<u8>)]) -> Resolved {
    let dir = tempfile::tempdir().unwrap();
    let mut pack_files = Vec::new();
    for (path, bytes) in files {
        std::fs::write(dir.path().join(path), bytes).unwrap();
        pack_files.push(PackFile {
            path: ModelPath::parse(path).unwrap(),
            sha256: model_signing::hashing::sha256(bytes),
            size: bytes.len() as u64,
        });
    }
    let name = model_name(reference);
    let packed = pack(&name, &pack_files).unwrap();
    let root = dir.path().to_path_buf();
    let source = move |p: &ModelPath| root.join(p.to_path_buf());
    let client = registry_client(r);
    client
        .push_model(reference, &packed, &source)
        .await
        .unwrap_or_else(|e| panic!("pushing {reference}: {e}"));
    resolve(r, reference).await
}

/// The manifest `reference` names on `r` now: one GET, its digest checked against the body
/// and the registry's `Docker-Content-Digest`.
pub async fn resolve(r: &Registry, reference: &str) -> Resolved {
    registry_client(r)
        .resolve(reference)
        .await
        .unwrap_or_else(|e| panic!("resolving {reference}: {e}"))
}

/// Signs the artifact `subject` from its manifest with `signer` (as `model-signing oci sign`)
/// and attaches the bundle to it; returns the bundle's JSON.
pub async fn sign_and_attach(r: &Registry, subject: &Resolved, signer: &dyn Signer) -> Vec<u8> {
    let name = model_name(&subject.given);
    let (bundle, _) =
        model_signing::oci::check::sign_manifest(&subject.manifest, &name, signer).unwrap();
    let bundle = bundle.to_json().into_bytes();
    attach(r, subject, &bundle).await;
    bundle
}

/// Attaches `bundle` to `subject` as a referrer (the tag schema where the registry has no
/// referrers API), with none of the checks `oci attach` makes.
pub async fn attach(r: &Registry, subject: &Resolved, bundle: &[u8]) {
    registry_client(r)
        .attach_bundle(subject, bundle)
        .await
        .unwrap_or_else(|e| panic!("attaching to {}: {e}", subject.pinned_string()));
}

/// The last path component of a reference's repository, without tag or digest.
fn model_name(reference: &str) -> String {
    let repo = reference.split('@').next().unwrap();
    let last = repo.rsplit('/').next().unwrap();
    last.split(':').next().unwrap().to_string()
}

/// A pod with `labels` whose app mounts one image volume per `(name, reference)` under
/// `/models/<name>`, read-only.
pub fn image_pod(name: &str, labels: Value, volumes: &[(&str, &str)]) -> Pod {
    let mounts: Vec<Value> = volumes
        .iter()
        .map(|(v, _)| json!({"name": v, "mountPath": format!("/models/{v}"), "readOnly": true}))
        .collect();
    let vols: Vec<Value> = volumes
        .iter()
        .map(|(v, reference)| {
            json!({"name": v, "image": {"reference": reference, "pullPolicy": "IfNotPresent"}})
        })
        .collect();
    serde_json::from_value(json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": name, "labels": labels},
        "spec": {
            "restartPolicy": "Never",
            "containers": [{"name": "app", "image": "app", "command": ["sleep", "30"],
                "volumeMounts": mounts}],
            "volumes": vols,
        }
    }))
    .unwrap()
}

/// The `(volume, reference)` of each image volume of `pod`, in order.
pub fn image_references(pod: &Pod) -> Vec<(String, String)> {
    pod.spec
        .as_ref()
        .and_then(|s| s.volumes.as_ref())
        .map(|vs| {
            vs.iter()
                .filter_map(|v| {
                    let image = v.image.as_ref()?;
                    Some((v.name.clone(), image.reference.clone().unwrap_or_default()))
                })
                .collect()
        })
        .unwrap_or_default()
}

/// The request lines of `r` from the `since`-th on that concern repository `repo` (`models/x`).
pub fn requests_for(r: &Registry, since: usize, repo: &str) -> Vec<String> {
    let needle = format!("/v2/{repo}/");
    r.requests()
        .into_iter()
        .skip(since)
        .filter(|l| l.contains(&needle))
        .collect()
}
