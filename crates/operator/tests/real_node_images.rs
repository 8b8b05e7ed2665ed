//! Image-volume models end to end on the real node (kubelet, containerd 2, runc), with the
//! operator's webhook (the binary, on the host) verifying at admission:
//! - a modelcar image signed as a directory (the signature attached as a referrer) is admitted
//!   under an images-only ModelValidation with `spec.images.modelcarRoot`, its reference
//!   pinned to the manifest digest; containerd pulls that digest and the app reads the
//!   verified bytes from the read-only mount;
//! - the same tag moved to a tampered image (one weight byte changed) that carries the same
//!   signature is refused naming the file, and an unsigned image is refused, so neither pod
//!   ever reaches the node; the admitted pod keeps the verified digest.
//!
//! Why modelcar images: tests/node_images.rs (test-cluster) shows that containerd mounts a
//! raw-layer ModelPack artifact as an empty directory.
//!
//! The operator runs here as its binary on the host, not installed in the cluster: both install
//! paths (the Helm chart and `deploy/base`) run on the real node in tests/real_node.rs.

mod support;

use std::time::Duration;

use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, LogParams, PostParams};
use model_validation_operator::names::LABEL;
use serde_json::json;
use support::oci::{attach, image_references, resolve};
use support::{Operator, OperatorOptions, api_message, fresh_key_signer, sign, wait_for};
use test_cluster::node::BUSYBOX_IMAGE;
use test_cluster::registry::{Kind, Registry};
use test_cluster::support::registry_push::{push_image, tar_layer};
use test_cluster::{ControlPlane, StartOptions};

const CONFIG: &[u8] = br#"{"architectures":["TinyLM"]}"#;

/// The model's weights: under /models in the image, at the root of the signed directory;
/// `flipped` bytes changed (0: the signed weights).
fn weights(flipped: usize) -> Vec<u8> {
    let mut w: Vec<u8> = (0..64 * 1024u32).map(|i| (i % 251) as u8).collect();
    for b in w.iter_mut().take(flipped) {
        *b ^= 1;
    }
    w
}

/// A modelcar image of the model (one gzip layer), pushed to `reference`; returns it pinned.
fn push_modelcar(r: &Registry, reference: &str, flipped: usize) -> String {
    let w = weights(flipped);
    let layer = tar_layer(&[
        ("models/", b""),
        ("models/config.json", CONFIG),
        ("models/model.safetensors", &w),
    ]);
    push_image(r, reference, &[(true, layer)])
}

/// The app: prints the model's files (what the pod loads) and exits 0 when they are there.
fn model_pod(name: &str, reference: &str) -> Pod {
    serde_json::from_value(json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": name, "labels": {LABEL: "car"}},
        "spec": {
            "restartPolicy": "Never",
            "containers": [{
                "name": "app", "image": BUSYBOX_IMAGE, "imagePullPolicy": "Never",
                "command": ["/bin/sh", "-c", "cat /models/models/config.json && echo && /usr/local/bin/busybox sha256sum /models/models/model.safetensors"],
                "volumeMounts": [{"name": "model", "mountPath": "/models", "readOnly": true}]
            }],
            "volumes": [{"name": "model", "image": {"reference": reference, "pullPolicy": "IfNotPresent"}}]
        }
    }))
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_signed_modelcar_is_pinned_pulled_and_read_and_tampered_or_unsigned_ones_never_start() {
    test_cluster::install_crypto_provider();
    let cp = ControlPlane::start_with(StartOptions {
        real_node: true,
        ..Default::default()
    })
    .await
    .unwrap();
    let node = cp.node().expect("a real node");
    let registry = Registry::builder()
        .kind(Kind::Referrers)
        .tls(true)
        .start()
        .unwrap();
    let ca = registry.ca_file().unwrap();
    node.trust_registry(&registry.host(), ca).unwrap();
    let mut opts = OperatorOptions::new("oci-node");
    opts.extra_args = vec!["--registry-ca".into(), ca.to_str().unwrap().into()];
    let _operator = Operator::start(cp.kubeconfig_path(), opts).await;

    // The model signed as a directory (what `oci attach --modelcar-root /models` checks).
    let dir = tempfile::tempdir().unwrap();
    let model = dir.path().join("model");
    std::fs::create_dir(&model).unwrap();
    std::fs::write(model.join("config.json"), CONFIG).unwrap();
    std::fs::write(model.join("model.safetensors"), weights(0)).unwrap();
    let (signer, public_pem) = fresh_key_signer();
    let signature = dir.path().join("model.sig");
    sign(&model, &signer, &signature);
    let bundle = std::fs::read(&signature).unwrap();

    let host = registry.host();
    let good_ref = format!("{host}/models/car:v1");
    // The pushes are blocking HTTP: off the async workers.
    let pinned = tokio::task::block_in_place(|| push_modelcar(&registry, &good_ref, 0));
    attach(&registry, &resolve(&registry, &pinned).await, &bundle).await;

    let ns = cp.create_namespace("oci-node").await.unwrap();
    let client = cp.client().unwrap();
    support::create_mv(
        &client,
        &ns,
        json!({
            "apiVersion": "ml.sigstore.dev/v1alpha1", "kind": "ModelValidation",
            "metadata": {"name": "car"},
            "spec": {
                "images": {"globs": [format!("{host}/models/*")], "modelcarRoot": "/models"},
                "config": {"publicKeyConfig": {"keyPem": public_pem}},
            }
        }),
    )
    .await
    .unwrap();
    let pods: Api<Pod> = Api::namespaced(client.clone(), &ns);
    let good = model_pod("good", &good_ref);
    // The webhook sees the policy once its cache has it: a dry run pins the reference then.
    support::wait_dry_run_admits(
        &pods,
        &good,
        "the webhook to pin the modelcar",
        Duration::from_secs(30),
        |p| image_references(p) == [("model".to_string(), pinned.clone())],
    )
    .await;
    let created = pods.create(&PostParams::default(), &good).await.unwrap();
    assert_eq!(
        image_references(&created),
        [("model".to_string(), pinned.clone())],
        "admitted pinned to the manifest that verified"
    );
    let (pods, name) = (&pods, "good");
    let phase = wait_for(
        "the pod to finish on the node",
        Duration::from_secs(120),
        || async move {
            let p = pods.get(name).await.ok()?;
            let phase = p.status?.phase?;
            matches!(phase.as_str(), "Succeeded" | "Failed").then_some(phase)
        },
    )
    .await;
    let log = pods.logs("good", &LogParams::default()).await.unwrap();
    assert_eq!(phase, "Succeeded", "{log}");
    let want = format!(
        "{}\n{}  /models/models/model.safetensors",
        String::from_utf8_lossy(CONFIG),
        &model_signing::oci::sha256_digest(&weights(0))["sha256:".len()..]
    );
    assert_eq!(log.trim(), want, "the app read the verified bytes");

    // The tag moved to a tampered image that carries the same signature: refused naming the
    // file; an unsigned image: refused. Neither pod exists, so nothing reaches the node.
    let tampered = tokio::task::block_in_place(|| push_modelcar(&registry, &good_ref, 1));
    attach(&registry, &resolve(&registry, &tampered).await, &bundle).await;
    let msg = pods
        .create(&PostParams::default(), &model_pod("tampered", &good_ref))
        .await
        .map_err(api_message)
        .unwrap_err();
    assert!(
        msg.contains(&format!("ModelValidation {ns}/car: volume \"model\""))
            && msg.contains("model.safetensors"),
        "{msg}"
    );
    // (Other bytes: the signed bytes under another name are the signed bytes, and pass.)
    let unsigned_ref = format!("{host}/models/other:v1");
    tokio::task::block_in_place(|| push_modelcar(&registry, &unsigned_ref, 2));
    let msg = pods
        .create(
            &PostParams::default(),
            &model_pod("unsigned", &unsigned_ref),
        )
        .await
        .map_err(api_message)
        .unwrap_err();
    assert!(msg.contains("no model signature is attached"), "{msg}");
    // The admitted pod's digest still names the verified image, whatever the tag says now.
    assert_eq!(
        image_references(&pods.get("good").await.unwrap()),
        [("model".to_string(), pinned)]
    );
}
