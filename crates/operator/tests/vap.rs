//! The ValidatingAdmissionPolicy of `deploy/base/validating-policy.yaml`, on a real API server
//! with no operator at all: it alone refuses labelled pods whose verification is missing,
//! misplaced, swapped or undermined, and admits the pod the operator would have produced; and
//! it refuses a pod whose pinned image volume was changed back to a tag.

mod support;

use std::time::Duration;

use k8s_openapi::api::admissionregistration::v1::{
    ValidatingAdmissionPolicy, ValidatingAdmissionPolicyBinding,
};
use k8s_openapi::api::core::v1::Pod;
use kube::Client;
use kube::api::{Api, Patch, PatchParams, PostParams};
use model_validation_operator::names::{LABEL, LEGACY_LABEL, annotations};
use serde_json::{Value, json};
use support::{AGENT_IMAGE, add_ephemeral, api_message, wait_for};

const POLICY: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../deploy/base/validating-policy.yaml"
);

/// Applies the policy and its binding, and waits until the API server enforces them.
async fn with_policy() -> (Client, String) {
    test_cluster::install_crypto_provider();
    let cp = test_cluster::shared().await.unwrap();
    let client = cp.client().unwrap();
    let docs: Vec<Value> =
        serde_saphyr::from_multiple(&std::fs::read_to_string(POLICY).unwrap()).unwrap();
    let apply = PatchParams::apply("vap-test").force();
    for doc in docs.into_iter().filter(|d| !d.is_null()) {
        let name = doc["metadata"]["name"].as_str().unwrap().to_string();
        match doc["kind"].as_str().unwrap() {
            "ValidatingAdmissionPolicy" => {
                Api::<ValidatingAdmissionPolicy>::all(client.clone())
                    .patch(&name, &apply, &Patch::Apply(&doc))
                    .await
                    .unwrap();
            }
            "ValidatingAdmissionPolicyBinding" => {
                Api::<ValidatingAdmissionPolicyBinding>::all(client.clone())
                    .patch(&name, &apply, &Patch::Apply(&doc))
                    .await
                    .unwrap();
            }
            other => panic!("unexpected {other} in {POLICY}"),
        }
    }
    let ns = cp.create_namespace("vap").await.unwrap();
    let pods = Api::<Pod>::namespaced(client.clone(), &ns);
    let probe: Pod =
        serde_json::from_value(pod("probe", json!({LABEL: "mv"}), json!([]), app(false))).unwrap();
    let dry = PostParams {
        dry_run: true,
        ..Default::default()
    };
    let (pods, dry) = (&pods, &dry);
    wait_for("the policy to be enforced", Duration::from_secs(30), || {
        let probe = probe.clone();
        async move { pods.create(dry, &probe).await.err().map(|_| ()) }
    })
    .await;
    (client, ns)
}

fn verifier() -> Value {
    json!({"name": "model-validation", "image": AGENT_IMAGE, "args": ["verify"],
        "volumeMounts": [{"name": "data", "mountPath": "/data", "readOnly": true}]})
}

fn app(read_only: bool) -> Value {
    json!([{"name": "app", "image": "app", "volumeMounts": [{"name": "data", "mountPath": "/data", "readOnly": read_only}]}])
}

fn pod(name: &str, labels: Value, init: Value, containers: Value) -> Value {
    json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": name, "labels": labels},
        "spec": {"initContainers": init, "containers": containers, "volumes": [{"name": "data", "emptyDir": {}}]}
    })
}

async fn create(client: &Client, ns: &str, p: Value) -> Result<Pod, String> {
    Api::<Pod>::namespaced(client.clone(), ns)
        .create(&PostParams::default(), &serde_json::from_value(p).unwrap())
        .await
        .map_err(api_message)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_policy_alone_refuses_undermined_pods_and_admits_the_injected_shape() {
    let (client, ns) = with_policy().await;
    let labelled = || json!({LABEL: "mv"});
    let refused = [
        (
            "no-verifier",
            pod("a", labelled(), json!([]), app(true)),
            "has 0 init containers named model-validation",
        ),
        (
            "other-image",
            pod(
                "b",
                labelled(),
                json!([{"name": "model-validation", "image": "evil", "volumeMounts": [{"name": "data", "mountPath": "/data", "readOnly": true}]}]),
                app(true),
            ),
            "must run ghcr.io/model-validation-operator/model-signing",
        ),
        (
            "not-last",
            pod(
                "c",
                labelled(),
                json!([verifier(), {"name": "swapper", "image": "x"}]),
                app(true),
            ),
            "the last one is swapper",
        ),
        (
            "writable-app",
            pod("d", labelled(), json!([verifier()]), app(false)),
            "must mount its volumes (data) with readOnly: true",
        ),
        (
            "writable-sidecar",
            pod(
                "e",
                labelled(),
                json!([{"name": "side", "image": "s", "restartPolicy": "Always", "volumeMounts": [{"name": "data", "mountPath": "/data"}]}, verifier()]),
                app(true),
            ),
            "with readOnly: true",
        ),
        (
            "legacy-no-verifier",
            pod("f", json!({LEGACY_LABEL: "true"}), json!([]), app(true)),
            "has 0 init containers named model-validation",
        ),
    ];
    // One claim under two names: a writable mount of the second name is refused; a writable
    // mount of another claim is the passing twin.
    let aliased = |claim: &str| {
        json!({
            "apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": format!("alias-{claim}"), "labels": labelled()},
            "spec": {"initContainers": [verifier()],
                "containers": [{"name": "app", "image": "app", "volumeMounts": [
                    {"name": "data", "mountPath": "/data", "readOnly": true},
                    {"name": "second", "mountPath": "/scratch"}]}],
                "volumes": [{"name": "data", "persistentVolumeClaim": {"claimName": "models"}},
                    {"name": "second", "persistentVolumeClaim": {"claimName": claim}}]}
        })
    };
    let msg = create(&client, &ns, aliased("models")).await.unwrap_err();
    assert!(
        msg.contains("must mount its volumes (data, second) with readOnly: true"),
        "{msg}"
    );
    create(&client, &ns, aliased("scratch")).await.unwrap();
    for (case, p, expected) in refused {
        let msg = create(&client, &ns, p).await.unwrap_err();
        assert!(msg.contains(expected), "{case}: {msg}");
    }
    // Twins: the shape the operator injects, a downloader before it, a read-only sidecar, and
    // an unlabelled pod.
    let mut ok = pod(
        "ok",
        labelled(),
        json!([{"name": "fetch", "image": "f", "volumeMounts": [{"name": "data", "mountPath": "/data"}]}, verifier()]),
        app(true),
    );
    ok["metadata"]["annotations"] = json!({annotations::INJECTED_BY: "mv"});
    create(&client, &ns, ok).await.unwrap();
    create(&client, &ns, pod("ok-sidecar", labelled(), json!([{"name": "side", "image": "s", "restartPolicy": "Always", "volumeMounts": [{"name": "data", "mountPath": "/data", "readOnly": true}]}, verifier()]), app(true)))
        .await
        .unwrap();
    create(
        &client,
        &ns,
        pod("plain", json!({"app": "x"}), json!([]), app(false)),
    )
    .await
    .unwrap();

    let pods = Api::<Pod>::namespaced(client.clone(), &ns);
    // Image volumes: a pod whose ModelValidation verifies images only carries pins and no
    // verifier, and is admitted while its volume keeps the pinned reference; a webhook that
    // put the tag back is refused (and so is an unpinned pod without a verifier, above).
    let pinned = "registry.example.com/models/llm@sha256:".to_string() + &"a".repeat(64);
    let image_pod = |name: &str, reference: &str| {
        json!({
            "apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": name, "labels": labelled(), "annotations": {
                "validation.ml.sigstore.dev/pinned-images": format!("model={pinned}")}},
            "spec": {"containers": [{"name": "app", "image": "app", "volumeMounts": [{"name": "model", "mountPath": "/models"}]}],
                "volumes": [{"name": "model", "image": {"reference": reference}}]}
        })
    };
    let msg = create(
        &client,
        &ns,
        image_pod("unpinned", "registry.example.com/models/llm:v1"),
    )
    .await
    .unwrap_err();
    assert!(
        msg.contains("must keep the references model-validation-operator verified and pinned; changed after it: model=registry.example.com/models/llm@sha256:"),
        "{msg}"
    );
    create(&client, &ns, image_pod("pinned", &pinned))
        .await
        .unwrap();

    // Updates: the verifier's image cannot be swapped, nor can an ephemeral container write.
    let msg = pods
        .patch("ok", &PatchParams::default(), &Patch::Strategic(json!({"spec": {"initContainers": [{"name": "model-validation", "image": "evil"}]}})))
        .await
        .map_err(api_message)
        .unwrap_err();
    assert!(msg.contains("must run ghcr.io"), "{msg}");
    let msg = add_ephemeral(&pods, "ok", "writer", false)
        .await
        .unwrap_err();
    assert!(msg.contains("with readOnly: true"), "{msg}");
    add_ephemeral(&pods, "ok", "reader", true).await.unwrap();
    pods.patch(
        "ok",
        &PatchParams::default(),
        &Patch::Strategic(json!({"metadata": {"labels": {"team": "ml"}}})),
    )
    .await
    .unwrap();
}

/// A labelled pod the upstream operator injected before this one was installed (an init
/// container named model-validation with upstream's image, and upstream's finalizer, which only
/// its controller removed) stays updatable: its finalizer can be dropped (docs/migration.md),
/// where the policy once refused every update of it and left it Terminating. The twin: a pod
/// this operator injected (`injected-by`) still cannot have its verifier's image swapped.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pods_the_upstream_operator_injected_stay_updatable() {
    let (client, ns) = with_policy().await;
    let pods = Api::<Pod>::namespaced(client.clone(), &ns);
    let upstream_verifier = json!([{"name": "model-validation",
        "image": "ghcr.io/sigstore/model-transparency-cli:v1.0.1", "args": ["verify"],
        "volumeMounts": [{"name": "data", "mountPath": "/data"}]}]);
    // Stored before the policy existed: created unlabelled (the policy does not match it), then
    // labelled as upstream's pods are.
    let mut upstream = pod("upstream", json!({}), upstream_verifier, app(false));
    upstream["metadata"]["finalizers"] = json!(["validation.ml.sigstore.dev/finalizer"]);
    create(&client, &ns, upstream).await.unwrap();
    let label = json!({"metadata": {"labels": {LABEL: "mv"}}});
    pods.patch("upstream", &PatchParams::default(), &Patch::Merge(label))
        .await
        .map_err(api_message)
        .unwrap();
    let drop_finalizer = json!({"metadata": {"finalizers": null}});
    pods.patch(
        "upstream",
        &PatchParams::default(),
        &Patch::Merge(drop_finalizer),
    )
    .await
    .map_err(api_message)
    .unwrap();
    let stored = pods.get("upstream").await.unwrap();
    assert!(stored.metadata.finalizers.unwrap_or_default().is_empty());

    let mut ours = pod("ours", json!({LABEL: "mv"}), json!([verifier()]), app(true));
    ours["metadata"]["annotations"] = json!({annotations::INJECTED_BY: "mv"});
    create(&client, &ns, ours).await.unwrap();
    let swap = json!({"spec": {"initContainers": [{"name": "model-validation", "image": "evil"}]}});
    let msg = pods
        .patch("ours", &PatchParams::default(), &Patch::Strategic(swap))
        .await
        .map_err(api_message)
        .unwrap_err();
    assert!(msg.contains("must run ghcr.io"), "{msg}");
}
