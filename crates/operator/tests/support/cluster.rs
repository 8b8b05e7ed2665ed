//! Pods, ModelValidations and Events on the test control plane.

use std::path::Path;

use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::api::events::v1::Event;
use kube::Client;
use kube::api::{Api, DynamicObject, ListParams, PostParams};
use kube::core::{ApiResource, GroupVersionKind};
use model_validation_operator::names::{LABEL, VERIFY_CONTAINER};
use serde_json::{Value, json};
use test_cluster::pod_runner::{PodRunner, RunnerConfig};

/// A pod with `labels` whose app container mounts host dirs `data` at `/data` and `keys` at
/// `/keys`.
pub fn pod(name: &str, labels: Value, data: &Path, keys: &Path) -> Pod {
    serde_json::from_value(json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": name, "labels": labels},
        "spec": {
            "restartPolicy": "Never",
            "containers": [{"name": "app", "image": "app", "command": ["sleep", "30"], "volumeMounts": [
                {"name": "data", "mountPath": "/data"}, {"name": "keys", "mountPath": "/keys"}]}],
            "volumes": [
                {"name": "data", "hostPath": {"path": data.to_str().unwrap()}},
                {"name": "keys", "hostPath": {"path": keys.to_str().unwrap()}}]
        }
    }))
    .unwrap()
}

/// Runs the pod like a kubelet and returns the verifier's (exit code, termination message) as
/// written to the Pod's status. Checks first that the agent the pod runner runs is built and
/// fresh ([`super::agent_binary`]).
pub async fn run_verifier(client: &Client, ns: &str, name: &str) -> (i32, String) {
    let pod = run_pod(client, ns, name).await;
    init_outcome(&pod, VERIFY_CONTAINER).expect("verifier terminated")
}

/// Runs the created pod `name` like a kubelet (init containers in order, then the app) and
/// returns the Pod as its status then says. Checks first that the agent is built and fresh.
pub async fn run_pod(client: &Client, ns: &str, name: &str) -> Pod {
    run_pod_with(client, ns, name, RunnerConfig::default()).await
}

/// [`run_pod`] with the runner's configuration, e.g. more images mapped to local programs.
pub async fn run_pod_with(client: &Client, ns: &str, name: &str, config: RunnerConfig) -> Pod {
    super::agent_binary();
    let runner = PodRunner::new(client.clone(), config).unwrap();
    let mut run = runner.run(ns, name).await.unwrap();
    run.stop_all();
    Api::<Pod>::namespaced(client.clone(), ns)
        .get(name)
        .await
        .unwrap()
}

/// The (exit code, termination message) of init container `container`, once it terminated.
pub fn init_outcome(pod: &Pod, container: &str) -> Option<(i32, String)> {
    let t = pod
        .status
        .as_ref()?
        .init_container_statuses
        .as_ref()?
        .iter()
        .find(|s| s.name == container)?
        .state
        .as_ref()?
        .terminated
        .clone()?;
    Some((t.exit_code, t.message.unwrap_or_default()))
}

/// The names of the pod's init containers, in order.
pub fn init_names(pod: &Pod) -> Vec<String> {
    pod.spec
        .as_ref()
        .and_then(|s| s.init_containers.as_ref())
        .map(|c| c.iter().map(|c| c.name.clone()).collect())
        .unwrap_or_default()
}

/// The ClusterModelValidations.
pub fn cmv_api(client: &Client) -> Api<DynamicObject> {
    let gvk = GroupVersionKind::gvk("ml.sigstore.dev", "v1alpha1", "ClusterModelValidation");
    Api::all_with(
        client.clone(),
        &ApiResource::from_gvk_with_plural(&gvk, "clustermodelvalidations"),
    )
}

/// Creates or replaces (server-side apply) the ClusterModelValidation `manifest`.
pub async fn apply_cmv(client: &Client, manifest: Value) -> Result<(), kube::Error> {
    let name = manifest["metadata"]["name"].as_str().unwrap().to_string();
    let mut manifest = manifest;
    manifest["apiVersion"] = json!("ml.sigstore.dev/v1alpha1");
    manifest["kind"] = json!("ClusterModelValidation");
    cmv_api(client)
        .patch(
            &name,
            &kube::api::PatchParams::apply("tests").force(),
            &kube::api::Patch::Apply(&manifest),
        )
        .await
        .map(|_| ())
}

/// Adds `labels` to namespace `ns`.
pub async fn label_namespace(client: &Client, ns: &str, labels: Value) {
    Api::<k8s_openapi::api::core::v1::Namespace>::all(client.clone())
        .patch(
            ns,
            &kube::api::PatchParams::default(),
            &kube::api::Patch::Merge(json!({"metadata": {"labels": labels}})),
        )
        .await
        .unwrap();
}

/// Creates the pod (through the webhook), runs it, and returns the verifier's exit code.
pub async fn create_and_run(client: &Client, ns: &str, p: Pod) -> (i32, String) {
    let name = p.metadata.name.clone().unwrap();
    Api::<Pod>::namespaced(client.clone(), ns)
        .create(&PostParams::default(), &p)
        .await
        .unwrap();
    run_verifier(client, ns, &name).await
}

/// The ModelValidations of API `group` (`ml.sigstore.dev` or `rhtas.redhat.com`) in `ns`.
pub fn mv_api(client: &Client, ns: &str, group: &str) -> Api<DynamicObject> {
    let gvk = GroupVersionKind::gvk(group, "v1alpha1", "ModelValidation");
    Api::namespaced_with(
        client.clone(),
        ns,
        &ApiResource::from_gvk_with_plural(&gvk, "modelvalidations"),
    )
}

/// Creates the ModelValidation `manifest` (of either API group) in `ns`.
pub async fn create_mv(client: &Client, ns: &str, manifest: Value) -> Result<(), kube::Error> {
    let group = manifest["apiVersion"]
        .as_str()
        .unwrap()
        .split('/')
        .next()
        .unwrap()
        .to_string();
    let obj: DynamicObject = serde_json::from_value(manifest).unwrap();
    mv_api(client, ns, &group)
        .create(&PostParams::default(), &obj)
        .await
        .map(|_| ())
}

/// The message the API server gave, for refusals.
pub fn api_message(e: kube::Error) -> String {
    match e {
        kube::Error::Api(s) => s.message,
        other => other.to_string(),
    }
}

/// Every Event in `ns`.
pub async fn events(client: &Client, ns: &str) -> Vec<Event> {
    Api::<Event>::namespaced(client.clone(), ns)
        .list(&ListParams::default())
        .await
        .unwrap()
        .items
}

/// The first Event with `reason` about the object `kind`/`name`.
pub fn find_event<'a>(evs: &'a [Event], reason: &str, kind: &str, name: &str) -> Option<&'a Event> {
    evs.iter().find(|e| {
        e.reason.as_deref() == Some(reason)
            && e.regarding
                .as_ref()
                .is_some_and(|r| r.kind.as_deref() == Some(kind) && r.name.as_deref() == Some(name))
    })
}

/// A ModelValidation `name` for the model at `/data/model`, signature `model.sig` inside it,
/// that carries the public key `pem` in the policy (`publicKeyConfig.keyPem`).
pub fn key_in_policy_mv(name: &str, pem: &str) -> Value {
    json!({
        "apiVersion": "ml.sigstore.dev/v1alpha1", "kind": "ModelValidation", "metadata": {"name": name},
        "spec": {"model": {"path": "/data/model", "signaturePath": "/data/model/model.sig"},
                 "config": {"publicKeyConfig": {"keyPem": pem}}}
    })
}

/// Creates `pod`, which must be refused; returns the API server's message.
pub async fn create_refused(pods: &Api<Pod>, pod: &Pod) -> String {
    match pods.create(&PostParams::default(), pod).await {
        Ok(p) => panic!("admitted: {:?}", p.metadata.name),
        Err(e) => api_message(e),
    }
}

/// Adds the ephemeral container `name` to `pod`, mounting volume `data` at `/data` (read-only
/// or not); the API server's refusal message when it is refused.
pub async fn add_ephemeral(
    pods: &Api<Pod>,
    pod: &str,
    name: &str,
    read_only: bool,
) -> Result<(), String> {
    use kube::api::{Patch, PatchParams};
    // The real node's busybox image (never pulled), so the admitted one also runs there.
    let patch = json!({"spec": {"ephemeralContainers": [{"name": name,
        "image": test_cluster::node::BUSYBOX_IMAGE, "imagePullPolicy": "Never",
        "command": ["/bin/ls", "/data"],
        "volumeMounts": [{"name": "data", "mountPath": "/data", "readOnly": read_only}]}]}});
    pods.patch_subresource(
        "ephemeralcontainers",
        pod,
        &PatchParams::default(),
        &Patch::Strategic(patch),
    )
    .await
    .map(|_| ())
    .map_err(api_message)
}

/// The update attacks on the running, verified pod `victim` (labelled for a ModelValidation,
/// its model on volume `data`), each with its twin: swapping the verifier's image and
/// relabelling the pod for another policy are refused, another label is accepted; a writable
/// ephemeral container on the model is refused, a read-only one (`reader`) admitted.
/// tests/attacks.rs runs it on the pod runner, tests/real_node.rs on the real node.
pub async fn updates_cannot_undo_verification(pods: &Api<Pod>, victim: &str) {
    use kube::api::{Patch, PatchParams};
    let patch = |v: Value| async move {
        pods.patch(victim, &PatchParams::default(), &Patch::Strategic(v))
            .await
            .map_err(api_message)
    };
    let swap =
        json!({"spec": {"initContainers": [{"name": VERIFY_CONTAINER, "image": "evil:latest"}]}});
    let msg = patch(swap).await.unwrap_err();
    assert!(
        msg.contains("the image of container \"model-validation\" verified this pod's model"),
        "{msg}"
    );
    let msg = patch(json!({"metadata": {"labels": {LABEL: "other"}}}))
        .await
        .unwrap_err();
    assert!(
        msg.contains("pod label validation.ml.sigstore.dev/ml chose the ModelValidation"),
        "{msg}"
    );
    patch(json!({"metadata": {"labels": {"team": "ml"}}}))
        .await
        .unwrap();
    let msg = add_ephemeral(pods, victim, "writer", false)
        .await
        .unwrap_err();
    assert!(
        msg.contains("ephemeral container \"writer\" mounts volume \"data\""),
        "{msg}"
    );
    add_ephemeral(pods, victim, "reader", true).await.unwrap();
}

/// Creates `pod` in `ns` and returns the API server's status code and the admission warnings
/// it sent back (`Warning` headers, which kube's typed API drops).
pub async fn create_with_warnings(client: &Client, ns: &str, pod: &Pod) -> (u16, Vec<String>) {
    let (status, warnings, _) =
        post_with_warnings(client, &format!("/api/v1/namespaces/{ns}/pods"), pod).await;
    (status, warnings)
}

/// POSTs `object` to `path` and returns the status code, the `Warning` headers and the body.
pub async fn post_with_warnings(
    client: &Client,
    path: &str,
    object: &impl serde::Serialize,
) -> (u16, Vec<String>, String) {
    let body = serde_json::to_vec(object).unwrap();
    let req = http::Request::post(path)
        .header("content-type", "application/json")
        .body(body)
        .unwrap();
    let resp = client.send(req.map(Into::into)).await.unwrap();
    let status = resp.status().as_u16();
    let warnings = resp
        .headers()
        .get_all("warning")
        .iter()
        .map(|v| v.to_str().unwrap_or_default().to_string())
        .collect();
    use http_body_util::BodyExt;
    let body = resp.into_body().collect().await.unwrap().to_bytes();
    (
        status,
        warnings,
        String::from_utf8_lossy(&body).into_owned(),
    )
}
