//! End to end on a real local control plane (etcd + kube-apiserver) with the operator running
//! as a process and the pod runner standing in for a kubelet: signed models start, tampered or
//! unsigned ones never do, and the failure says why.
//!
//! All tests share one control plane and one operator ([`support::shared_operator`]), each in
//! its own namespace. What needs an operator of its own (metrics counted exactly, a stopped
//! operator) is in `fail_closed.rs`.

mod support;

use std::path::{Path, PathBuf};
use std::time::Duration;

use k8s_openapi::api::core::v1::{Namespace, PersistentVolume, PersistentVolumeClaim, Pod};
use k8s_openapi::api::events::v1::Event;
use kube::Client;
use kube::api::{Api, DeleteParams, Patch, PatchParams, PostParams};
use model_validation_operator::names::{IGNORE_NAMESPACE_LABEL, LABEL};
use serde_json::{Value, json};
use support::{
    CodeSigningPki, api_message, create_mv, ec_key_signer, fixture, fresh_key_signer,
    key_in_policy_mv, mv_api, pod, run_verifier, shared_operator, sign, signed_model_and_key,
    wait_for, write_model,
};

/// One test's world: a client, its own namespace on the shared control plane (with the shared
/// operator running), and a temp dir for its models.
struct Env {
    client: Client,
    ns: String,
    pods: Api<Pod>,
    tmp: tempfile::TempDir,
}

impl Env {
    async fn new(prefix: &str) -> Env {
        test_cluster::install_crypto_provider();
        shared_operator().await;
        let cp = test_cluster::shared().await.unwrap();
        let client = cp.client().unwrap();
        let ns = cp.create_namespace(prefix).await.unwrap();
        Env {
            pods: Api::namespaced(client.clone(), &ns),
            client,
            ns,
            tmp: tempfile::tempdir().unwrap(),
        }
    }

    /// `<tmp>/data` with a signed three-file model in `model/` and `<tmp>/keys/pub.pem`.
    fn signed_model(&self) -> (PathBuf, PathBuf) {
        let data = self.tmp.path().join("data");
        let keys = self.tmp.path().join("keys");
        signed_model_and_key(&data.join("model"), &keys);
        (data, keys)
    }

    /// A new [`Env`] with [`Env::signed_model`] and the ModelValidation `key-mv` for it.
    async fn with_key_mv(prefix: &str) -> (Env, PathBuf, PathBuf) {
        let env = Env::new(prefix).await;
        let (data, keys) = env.signed_model();
        create_mv(&env.client, &env.ns, key_mv("key-mv"))
            .await
            .unwrap();
        (env, data, keys)
    }

    /// Creates `pod` through the webhook.
    async fn create(&self, pod: &Pod) -> Result<Pod, kube::Error> {
        self.pods.create(&PostParams::default(), pod).await
    }
}

/// A ModelValidation `name` for the public-key method on the layout of [`Env::signed_model`].
fn key_mv(name: &str) -> Value {
    json!({
        "apiVersion": "ml.sigstore.dev/v1alpha1", "kind": "ModelValidation", "metadata": {"name": name},
        "spec": {"model": {"path": "/data/model", "signaturePath": "/data/model/model.sig"}, "config": {"publicKeyConfig": {"keyPath": "/keys/pub.pem"}}}
    })
}

fn labels(mv: &str) -> Value {
    json!({LABEL: mv})
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn public_key_model_verifies_and_tampered_copy_names_the_file() {
    let (env, data, keys) = Env::with_key_mv("e2e-key").await;
    let created = env
        .create(&pod("good", labels("key-mv"), &data, &keys))
        .await
        .unwrap();
    let init = created.spec.unwrap().init_containers.unwrap();
    assert_eq!(init.len(), 1);
    assert!(
        init[0]
            .volume_mounts
            .iter()
            .flatten()
            .all(|m| m.read_only == Some(true))
    );
    let (code, message) = run_verifier(&env.client, &env.ns, "good").await;
    assert_eq!(code, 0, "signed model must verify: {message}");
    assert!(message.starts_with("verified: 3 files"), "{message}");

    std::fs::write(data.join("model/weights.bin"), vec![8u8; 100_000]).unwrap();
    env.create(&pod("tampered", labels("key-mv"), &data, &keys))
        .await
        .unwrap();
    let (code, message) = run_verifier(&env.client, &env.ns, "tampered").await;
    assert_eq!(code, 1, "{message}");
    assert!(
        message.contains("weights.bin"),
        "the termination message names the file: {message}"
    );
}

/// The trust-anchor attack: whoever writes the pod's volumes re-signs the model with their own
/// key and puts that key where the ModelValidation's `keyPath` points. A policy that carries the
/// key itself (`keyPem`) is not fooled; the same pod under a `keyPath` policy is, which is why
/// admission warns about it and `--require-policy-trust` refuses it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn policy_carried_key_verifies_and_ignores_a_key_the_pod_supplies() {
    let env = Env::new("e2e-inline-key").await;
    let (data, keys) = env.signed_model();
    let pem = std::fs::read_to_string(fixture("peer-samples/ec-p256.pub.pem")).unwrap();
    create_mv(&env.client, &env.ns, key_in_policy_mv("inline", &pem))
        .await
        .unwrap();
    create_mv(&env.client, &env.ns, key_mv("by-path"))
        .await
        .unwrap();

    // Passing twin: the genuine model verifies with the key from the policy.
    let created = env
        .create(&pod("genuine", labels("inline"), &data, &keys))
        .await
        .unwrap();
    let verifier = &created.spec.unwrap().init_containers.unwrap()[0];
    let mounts: Vec<&str> = verifier
        .volume_mounts
        .iter()
        .flatten()
        .map(|m| m.mount_path.as_str())
        .collect();
    assert_eq!(
        mounts,
        ["/data"],
        "the pod's key volume is not part of verification"
    );
    let (code, message) = run_verifier(&env.client, &env.ns, "genuine").await;
    assert_eq!(code, 0, "{message}");

    // The attack: the model re-signed with another key, and that key in the pod's volume.
    let (attacker, attacker_pem) = fresh_key_signer();
    sign(
        &data.join("model"),
        &attacker,
        &data.join("model/model.sig"),
    );
    std::fs::write(keys.join("pub.pem"), attacker_pem).unwrap();
    env.create(&pod("attacker", labels("inline"), &data, &keys))
        .await
        .unwrap();
    let (code, message) = run_verifier(&env.client, &env.ns, "attacker").await;
    assert_eq!(code, 1, "a key from the pod must not be trusted: {message}");
    assert!(
        message.contains("key"),
        "the failure names the key: {message}"
    );
    // Under a keyPath policy the same pod verifies: the gap that keyPem closes.
    env.create(&pod("attacker-by-path", labels("by-path"), &data, &keys))
        .await
        .unwrap();
    let (code, message) = run_verifier(&env.client, &env.ns, "attacker-by-path").await;
    assert_eq!(code, 0, "{message}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pod_naming_a_missing_model_validation_is_refused_naming_it_and_its_namespace() {
    let env = Env::new("e2e-orphan").await;
    let (data, keys) = env.signed_model();
    let err = env
        .create(&pod("orphan", labels("nope"), &data, &keys))
        .await
        .unwrap_err();
    let msg = api_message(err);
    assert!(
        msg.contains("\"nope\" not found in namespace") && msg.contains(&env.ns),
        "{msg}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pod_whose_key_is_on_no_volume_is_refused_with_an_event_on_the_model_validation() {
    let (env, data, keys) = Env::with_key_mv("e2e-unmounted").await;
    let mut unmounted = pod("unmounted", labels("key-mv"), &data, &keys);
    unmounted.spec.as_mut().unwrap().containers[0]
        .volume_mounts
        .as_mut()
        .unwrap()
        .retain(|m| m.mount_path != "/keys");
    let msg = api_message(env.create(&unmounted).await.unwrap_err());
    assert!(
        msg.contains("publicKeyConfig.keyPath /keys/pub.pem is not on any volume"),
        "{msg}"
    );
    let events: Api<Event> = Api::namespaced(env.client.clone(), &env.ns);
    let events = &events;
    let denied = wait_for(
        "a PodDenied event on the ModelValidation",
        Duration::from_secs(20),
        || async move {
            let list = events.list(&Default::default()).await.unwrap();
            list.items
                .into_iter()
                .find(|e| e.reason.as_deref() == Some("PodDenied"))
        },
    )
    .await;
    assert_eq!(
        denied.regarding.as_ref().and_then(|r| r.name.as_deref()),
        Some("key-mv")
    );
    assert!(
        denied.note.as_deref().unwrap_or("").contains("unmounted"),
        "{:?}",
        denied.note
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn api_server_enforces_the_crd_cel_rules() {
    let env = Env::new("e2e-cel").await;
    let err = create_mv(&env.client, &env.ns, json!({
        "apiVersion": "ml.sigstore.dev/v1alpha1", "kind": "ModelValidation", "metadata": {"name": "two-methods"},
        "spec": {"model": {"path": "/data/model", "signaturePath": "/data/model.sig"},
                 "config": {"publicKeyConfig": {"keyPath": "/k"}, "pkiConfig": {"certificateAuthority": "/ca"}}}
    }))
    .await
    .unwrap_err();
    let msg = api_message(err);
    assert!(
        msg.contains("exactly one validation method must be specified"),
        "{msg}"
    );
    let err = create_mv(&env.client, &env.ns, json!({
        "apiVersion": "ml.sigstore.dev/v1alpha1", "kind": "ModelValidation", "metadata": {"name": "relative"},
        "spec": {"model": {"path": "model", "signaturePath": "/data/model.sig"}, "config": {"publicKeyConfig": {"keyPath": "/k"}},
                 "continuousValidation": {"enabled": true, "interval": "30s"}}
    }))
    .await
    .unwrap_err();
    let msg = api_message(err);
    assert!(msg.contains("absolute path"), "{msg}");
    // The interval's bounds are the verifier's: 1m to 8784h (the agent refuses more).
    let interval = |name: &str, interval: &str| {
        json!({
            "apiVersion": "ml.sigstore.dev/v1alpha1", "kind": "ModelValidation", "metadata": {"name": name},
            "spec": {"model": {"path": "/data/model", "signaturePath": "/data/model.sig"}, "config": {"publicKeyConfig": {"keyPath": "/k"}},
                     "continuousValidation": {"enabled": true, "interval": interval}}
        })
    };
    for too in ["8784.5h", "9000h", "0.5m"] {
        let err = create_mv(&env.client, &env.ns, interval("bounds", too))
            .await
            .unwrap_err();
        let msg = api_message(err);
        assert!(
            msg.contains("interval must be from 1m to 8784h"),
            "{too}: {msg}"
        );
    }
    create_mv(&env.client, &env.ns, interval("longest", "8784h"))
        .await
        .expect("8784h is the longest interval");
    // A key both in the policy and on a path, or a keyPem that is no PEM key, is refused.
    let key = |name: &str, config: Value| {
        json!({
            "apiVersion": "ml.sigstore.dev/v1alpha1", "kind": "ModelValidation", "metadata": {"name": name},
            "spec": {"model": {"path": "/data/model", "signaturePath": "/data/model.sig"}, "config": {"publicKeyConfig": config}}
        })
    };
    let pem = "-----BEGIN PUBLIC KEY-----\nMFk=\n-----END PUBLIC KEY-----\n";
    for (name, config, expected) in [
        (
            "both",
            json!({"keyPath": "/k", "keyPem": pem}),
            "set exactly one of publicKeyConfig.keyPem",
        ),
        (
            "neither",
            json!({}),
            "set exactly one of publicKeyConfig.keyPem",
        ),
        (
            "not-pem",
            json!({"keyPem": "ssh-ed25519 AAAA"}),
            "must hold a PEM public key",
        ),
    ] {
        let msg = api_message(
            create_mv(&env.client, &env.ns, key(name, config))
                .await
                .unwrap_err(),
        );
        assert!(msg.contains(expected), "{name}: {msg}");
    }
    // Their passing twin.
    create_mv(&env.client, &env.ns, key("inline", json!({"keyPem": pem})))
        .await
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ignored_namespace_gets_no_injection() {
    let env = Env::new("e2e-ignored").await;
    let (data, keys) = env.signed_model();
    Api::<Namespace>::all(env.client.clone())
        .patch(
            &env.ns,
            &PatchParams::default(),
            &Patch::Merge(json!({"metadata": {"labels": {IGNORE_NAMESPACE_LABEL: "true"}}})),
        )
        .await
        .unwrap();
    let p = env
        .create(&pod("free", labels("whatever"), &data, &keys))
        .await
        .unwrap();
    assert!(
        p.spec
            .unwrap()
            .init_containers
            .unwrap_or_default()
            .is_empty()
    );
}

/// Signs the three-file model in `<data>/model` with the leaf of a PKI generated for this run
/// (fixed certificates would expire) and puts its root CA at `<keys>/ca.pem`.
fn certificate_signed_model(data: &Path, keys: &Path) {
    let pki = CodeSigningPki::generate();
    write_model(&data.join("model"));
    std::fs::create_dir_all(keys).unwrap();
    std::fs::write(keys.join("ca.pem"), &pki.root_pem).unwrap();
    let model = data.join("model");
    sign(&model, &pki.signer, &model.join("model.sig"));
}

/// A ModelValidation written for upstream, with every §2.1 field, for the certificate method.
fn upstream_pki_mv() -> Value {
    json!({
        "apiVersion": "ml.sigstore.dev/v1alpha1", "kind": "ModelValidation", "metadata": {"name": "upstream-pki"},
        "spec": {
            "model": {"path": "/data/model", "signaturePath": "/data/model/model.sig", "ignorePaths": [], "ignoreGitPaths": true,
                      "ignoreUnsignedFiles": false, "allowSymlinks": false},
            "config": {"pkiConfig": {"certificateAuthority": "/keys/ca.pem"}},
            "imagePullPolicy": "IfNotPresent",
            "continuousValidation": {"enabled": false, "interval": "5m"},
            "resources": {"requests": {"cpu": "10m", "memory": "32Mi"}, "limits": {"cpu": "1", "memory": "128Mi"}}
        }
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn certificate_model_written_for_upstream_verifies_with_the_crs_resources() {
    let env = Env::new("e2e-cert").await;
    let cdata = env.tmp.path().join("cert/data");
    let ckeys = env.tmp.path().join("cert/keys");
    certificate_signed_model(&cdata, &ckeys);
    create_mv(&env.client, &env.ns, upstream_pki_mv())
        .await
        .unwrap();
    env.create(&pod("cert", labels("upstream-pki"), &cdata, &ckeys))
        .await
        .unwrap();
    let (code, message) = run_verifier(&env.client, &env.ns, "cert").await;
    assert_eq!(code, 0, "{message}");
    let p = env.pods.get("cert").await.unwrap();
    let limits = p.spec.unwrap().init_containers.unwrap()[0]
        .resources
        .clone()
        .unwrap()
        .limits
        .unwrap();
    assert_eq!(limits["memory"].0, "128Mi", "the CR's resources are used");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn seed_manifests_of_the_first_published_api_verify_as_published() {
    let env = Env::new("e2e-seed").await;
    let (client, seed_ns) = (&env.client, env.ns.as_str());
    let seed: Value = serde_saphyr::from_str(
        &std::fs::read_to_string(fixture("seed/modelvalidation-key.yaml")).unwrap(),
    )
    .unwrap();
    create_mv(client, seed_ns, seed).await.unwrap();
    let sdata = env.tmp.path().join("seed/data");
    write_model(&sdata.join("model"));
    std::fs::create_dir_all(sdata.join("keys")).unwrap();
    std::fs::copy(
        fixture("peer-samples/ec-p256.pub.pem"),
        sdata.join("keys/pub.key"),
    )
    .unwrap();
    sign(
        &sdata.join("model"),
        &ec_key_signer(),
        &sdata.join("model.sig"),
    );
    // The seed pod mounts the PVC "models", exactly as published; here it is bound to a
    // hostPath PersistentVolume holding the model.
    let pv: PersistentVolume = serde_json::from_value(json!({
        "metadata": {"name": format!("{seed_ns}-models")},
        "spec": {"capacity": {"storage": "1Gi"}, "accessModes": ["ReadOnlyMany"], "hostPath": {"path": sdata.to_str().unwrap()},
                 "claimRef": {"namespace": seed_ns, "name": "models"}}
    }))
    .unwrap();
    Api::<PersistentVolume>::all(client.clone())
        .create(&PostParams::default(), &pv)
        .await
        .unwrap();
    let pvc: PersistentVolumeClaim = serde_json::from_value(json!({
        "metadata": {"name": "models"},
        "spec": {"accessModes": ["ReadOnlyMany"], "resources": {"requests": {"storage": "1Gi"}}, "volumeName": format!("{seed_ns}-models"), "storageClassName": ""}
    }))
    .unwrap();
    Api::<PersistentVolumeClaim>::namespaced(client.clone(), seed_ns)
        .create(&PostParams::default(), &pvc)
        .await
        .unwrap();
    let consumer: Value = serde_saphyr::from_str(
        &std::fs::read_to_string(fixture("seed/consumer-pod.yaml")).unwrap(),
    )
    .unwrap();
    env.create(&serde_json::from_value(consumer).unwrap())
        .await
        .unwrap();
    let (code, message) = run_verifier(client, seed_ns, "model-consuming-workload").await;
    assert_eq!(code, 0, "{message}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keyless_sigstore_signature_verifies_offline_and_tampered_copy_names_the_file() {
    // A real production signature, verified offline.
    let env = Env::new("e2e-keyless").await;
    let golden = env.tmp.path().join("sigstore/data");
    std::fs::create_dir_all(&golden).unwrap();
    for f in ["model.sig", "signme-1", "signme-2", "ignore-me"] {
        std::fs::copy(
            fixture(&format!(
                "model-transparency/scripts/tests/v1.1.0-sigstore/{f}"
            )),
            golden.join(f),
        )
        .unwrap();
    }
    let empty_keys = env.tmp.path().join("sigstore/keys");
    std::fs::create_dir_all(&empty_keys).unwrap();
    create_mv(&env.client, &env.ns, json!({
        "apiVersion": "ml.sigstore.dev/v1alpha1", "kind": "ModelValidation", "metadata": {"name": "keyless"},
        "spec": {"model": {"path": "/data", "signaturePath": "/data/model.sig"},
                 "config": {"sigstoreConfig": {"certificateIdentity": "stefanb@us.ibm.com", "certificateOidcIssuer": "https://sigstore.verify.ibm.com/oauth2"}}}
    }))
    .await
    .unwrap();
    env.create(&pod("keyless", labels("keyless"), &golden, &empty_keys))
        .await
        .unwrap();
    let (code, message) = run_verifier(&env.client, &env.ns, "keyless").await;
    assert_eq!(code, 0, "{message}");
    assert!(message.contains("stefanb@us.ibm.com"), "{message}");
    std::fs::write(golden.join("signme-2"), "tampered").unwrap();
    env.create(&pod(
        "keyless-tampered",
        labels("keyless"),
        &golden,
        &empty_keys,
    ))
    .await
    .unwrap();
    let (code, message) = run_verifier(&env.client, &env.ns, "keyless-tampered").await;
    assert_eq!(code, 1, "{message}");
    assert!(message.contains("signme-2"), "{message}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pods_stay_updatable_and_deletable_after_their_model_validation_is_gone() {
    let (env, data, keys) = Env::with_key_mv("e2e-gone").await;
    env.create(&pod("good", labels("key-mv"), &data, &keys))
        .await
        .unwrap();
    let (code, message) = run_verifier(&env.client, &env.ns, "good").await;
    assert_eq!(code, 0, "{message}");
    mv_api(&env.client, &env.ns, "ml.sigstore.dev")
        .delete("key-mv", &DeleteParams::default())
        .await
        .unwrap();
    env.pods
        .patch(
            "good",
            &PatchParams::default(),
            &Patch::Merge(json!({"metadata": {"labels": {"touched": "yes"}}})),
        )
        .await
        .expect("a pod of a deleted ModelValidation can be updated");
    env.pods
        .delete("good", &DeleteParams::default())
        .await
        .expect("a pod of a deleted ModelValidation can be deleted");
}
