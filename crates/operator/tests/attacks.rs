//! Attack pods on the real control plane, each with its passing twin: the same pod shape done
//! right is admitted and its model verifies, so a fix cannot simply deny everything.
//! See docs/security.md for the table these tests back.

mod support;

use std::time::Duration;

use k8s_openapi::api::core::v1::Pod;
use kube::Client;
use kube::api::{Api, PostParams};
use model_validation_operator::names::{LABEL, LEGACY_LABEL};
use serde_json::{Value, json};
use support::{
    create_mv, create_refused, has_verifier, key_in_policy_mv, run_verifier, shared_operator,
    signed_model_and_key, updates_cannot_undo_verification, wait_dry_run_admits,
};

/// A namespace with a signed model under `<tmp>/data/model`, an empty second volume
/// `<tmp>/other`, and the ModelValidation `mv` (key in the policy).
struct World {
    client: Client,
    ns: String,
    tmp: tempfile::TempDir,
}

impl World {
    async fn new(prefix: &str) -> World {
        test_cluster::install_crypto_provider();
        shared_operator().await;
        let cp = test_cluster::shared().await.unwrap();
        let client = cp.client().unwrap();
        let ns = cp.create_namespace(prefix).await.unwrap();
        let tmp = tempfile::tempdir().unwrap();
        let keys = tmp.path().join("keys");
        signed_model_and_key(&tmp.path().join("data/model"), &keys);
        std::fs::create_dir_all(tmp.path().join("other")).unwrap();
        let pem = std::fs::read_to_string(keys.join("pub.pem")).unwrap();
        create_mv(&client, &ns, key_in_policy_mv("mv", &pem))
            .await
            .unwrap();
        let w = World { client, ns, tmp };
        // The webhook reads ModelValidations from its watch cache, a moment behind the API
        // server (CI saw "not found" right after the create): wait until it injects.
        let probe = w.pod(
            "probe",
            labels(),
            json!([]),
            json!([container("app", json!([data_at("/data")]))]),
        );
        wait_dry_run_admits(
            &Api::namespaced(w.client.clone(), &w.ns),
            &probe,
            "the webhook to see ModelValidation mv",
            Duration::from_secs(30),
            has_verifier,
        )
        .await;
        w
    }

    fn dir(&self, name: &str) -> String {
        self.tmp.path().join(name).to_str().unwrap().to_string()
    }

    /// A pod labelled for `mv` with these containers; volumes `data` and `other` exist.
    fn pod(&self, name: &str, labels: Value, init: Value, containers: Value) -> Pod {
        serde_json::from_value(json!({
            "apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": name, "labels": labels},
            "spec": {
                "restartPolicy": "Never",
                "initContainers": init,
                "containers": containers,
                "volumes": [
                    {"name": "data", "hostPath": {"path": self.dir("data")}},
                    {"name": "other", "hostPath": {"path": self.dir("other")}}]
            }
        }))
        .unwrap()
    }

    async fn create(&self, pod: &Pod) -> Result<Pod, kube::Error> {
        Api::<Pod>::namespaced(self.client.clone(), &self.ns)
            .create(&PostParams::default(), pod)
            .await
    }

    /// Creates the pod, which must be refused; returns the message.
    async fn refused(&self, pod: &Pod) -> String {
        create_refused(&Api::namespaced(self.client.clone(), &self.ns), pod).await
    }

    /// Creates the pod, which must be admitted, and runs its verifier, which must pass.
    async fn verifies(&self, pod: &Pod) -> Pod {
        let created = self.create(pod).await.expect("admitted");
        let name = created.metadata.name.clone().unwrap();
        let (code, message) = run_verifier(&self.client, &self.ns, &name).await;
        assert_eq!(code, 0, "{name}: {message}");
        created
    }
}

fn labels() -> Value {
    json!({LABEL: "mv"})
}

fn container(name: &str, mounts: Value) -> Value {
    json!({"name": name, "image": "app", "command": ["true"], "volumeMounts": mounts})
}

fn data_at(path: &str) -> Value {
    json!({"name": "data", "mountPath": path})
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_volume_nested_below_the_model_that_another_container_does_not_see_is_refused() {
    let w = World::new("attack-nested").await;
    let nested = json!([data_at("/data"), {"name": "other", "mountPath": "/data/model/sub"}]);
    let sidecar = json!([{"name": "shipper", "image": "s", "command": ["sleep", "1"], "restartPolicy": "Always",
        "volumeMounts": [data_at("/data")]}]);
    let msg = w
        .refused(&w.pod(
            "nested",
            labels(),
            sidecar,
            json!([container("app", nested.clone())]),
        ))
        .await;
    assert!(
        msg.contains("disagree about the files at /data/model")
            && msg.contains("\"shipper\" mounts nothing at /data/model/sub")
            && msg.contains("\"app\" mounts volume \"other\" at /data/model/sub"),
        "{msg}"
    );
    // Twin: the app alone with the nested volume is admitted, and the verifier sees what the
    // app sees: the nested (empty) volume hides the signed sub/tokenizer.json, so it fails
    // naming that file instead of passing on files the app never reads.
    let created = w
        .create(&w.pod(
            "nested-alone",
            labels(),
            json!([]),
            json!([container("app", nested)]),
        ))
        .await
        .unwrap();
    let verifier = created
        .spec
        .unwrap()
        .init_containers
        .unwrap()
        .pop()
        .unwrap();
    let mounts: Vec<String> = verifier
        .volume_mounts
        .unwrap()
        .into_iter()
        .map(|m| m.mount_path)
        .collect();
    assert_eq!(mounts, ["/data", "/data/model/sub"]);
    let (code, message) = run_verifier(&w.client, &w.ns, "nested-alone").await;
    assert_eq!(code, 1, "{message}");
    assert!(message.contains("tokenizer.json"), "{message}");
    // And the plain pod verifies.
    w.verifies(&w.pod(
        "plain",
        labels(),
        json!([]),
        json!([container("app", json!([data_at("/data")]))]),
    ))
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_decoy_init_container_on_the_signed_volume_is_refused() {
    let w = World::new("attack-decoy").await;
    let decoy = json!([container("decoy", json!([data_at("/data")]))]);
    let app_on_other = json!([container(
        "app",
        json!([{"name": "other", "mountPath": "/data"}])
    )]);
    let msg = w
        .refused(&w.pod("decoy", labels(), decoy, app_on_other))
        .await;
    assert!(
        msg.contains("\"decoy\" mounts volume \"data\" at /data")
            && msg.contains("\"app\" mounts volume \"other\" at /data"),
        "{msg}"
    );
    // Twin: an init container that prepares the same volume the app reads (a downloader) is
    // admitted; the verifier runs after it and the model verifies.
    let fetch = json!([container("fetch", json!([data_at("/data")]))]);
    let app = json!([container("app", json!([data_at("/data")]))]);
    let created = w.verifies(&w.pod("downloader", labels(), fetch, app)).await;
    let inits = created.spec.unwrap().init_containers.unwrap();
    assert_eq!(
        inits.last().unwrap().name,
        "model-validation",
        "the verifier is last"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn writable_model_mounts_of_sidecars_and_apps_are_made_read_only() {
    let w = World::new("attack-writer").await;
    let sidecar = json!([{"name": "writer", "image": "s", "command": ["sleep", "1"], "restartPolicy": "Always",
        "volumeMounts": [data_at("/data")]}]);
    let app = json!([container(
        "app",
        json!([data_at("/data"), {"name": "other", "mountPath": "/scratch"}])
    )]);
    let created = w.verifies(&w.pod("writers", labels(), sidecar, app)).await;
    let spec = created.spec.unwrap();
    let inits = spec.init_containers.unwrap();
    let writer = inits.iter().find(|c| c.name == "writer").unwrap();
    assert_eq!(
        writer.volume_mounts.as_ref().unwrap()[0].read_only,
        Some(true),
        "native sidecar"
    );
    let app_mounts = spec.containers[0].volume_mounts.clone().unwrap();
    assert_eq!(app_mounts[0].read_only, Some(true), "app's model mount");
    assert_eq!(
        app_mounts[1].read_only, None,
        "a volume without the model stays writable"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sub_path_expr_on_the_model_mount_is_refused_and_sub_path_works() {
    let w = World::new("attack-subpathexpr").await;
    let expr = json!([container(
        "app",
        json!([{"name": "data", "mountPath": "/data/model", "subPathExpr": "$(MODEL_DIR)"}])
    )]);
    let msg = w.refused(&w.pod("expr", labels(), json!([]), expr)).await;
    assert!(
        msg.contains("with subPathExpr") && msg.contains("use subPath"),
        "{msg}"
    );
    let sub = json!([container(
        "app",
        json!([{"name": "data", "mountPath": "/data/model", "subPath": "model"}])
    )]);
    w.verifies(&w.pod("sub", labels(), json!([]), sub)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn legacy_label_spelled_other_than_true_is_refused() {
    let w = World::new("attack-legacy").await;
    let app = || json!([container("app", json!([data_at("/data")]))]);
    for value in ["True", "yes"] {
        let msg = w
            .refused(&w.pod(
                &format!("legacy-{}", value.to_lowercase()),
                json!({LEGACY_LABEL: value}),
                json!([]),
                app(),
            ))
            .await;
        assert!(
            msg.contains(&format!("write {LEGACY_LABEL}: \"true\"")),
            "{value}: {msg}"
        );
    }
    w.verifies(&w.pod(
        "legacy-true",
        json!({LEGACY_LABEL: "true"}),
        json!([]),
        app(),
    ))
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn updates_and_ephemeral_containers_cannot_undo_verification() {
    use kube::api::{Patch, PatchParams};
    let w = World::new("attack-update").await;
    let app = json!([container("app", json!([data_at("/data")]))]);
    w.create(&w.pod("victim", labels(), json!([]), app))
        .await
        .unwrap();
    let pods = Api::<Pod>::namespaced(w.client.clone(), &w.ns);
    updates_cannot_undo_verification(&pods, "victim").await;
    // Twin: the app's image stays updatable.
    let image = json!({"spec": {"containers": [{"name": "app", "image": "app:v2"}]}});
    pods.patch("victim", &PatchParams::default(), &Patch::Strategic(image))
        .await
        .unwrap();
}

/// The webhook prices a review before decoding it (a 12-byte JSON object can become a 3 KiB
/// struct). Pods as large as real ones pass on CREATE and on UPDATE, when the review carries
/// the old pod and both pods' `managedFields`; a pod that would cost more memory than the
/// webhook allows one request is denied with a message that says what to change.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn large_pods_pass_on_create_and_update_and_a_costlier_one_is_told_what_to_change() {
    use kube::api::{Patch, PatchParams};
    let w = World::new("attack-large").await;
    let env = |c: usize| -> Value {
        (0..200)
            .map(|e| json!({"name": format!("VARIABLE_{c}_{e}"), "value": "some value"}))
            .collect()
    };
    let containers: Value = (0..10)
        .map(|c| {
            let mut app = container(&format!("app{c}"), json!([data_at("/data")]));
            app["env"] = env(c);
            app
        })
        .collect();
    let created = w
        .create(&w.pod("large", labels(), json!([]), containers))
        .await
        .expect("a pod with 10 containers × 200 env vars is admitted");
    let inits = created.spec.unwrap().init_containers.unwrap_or_default();
    assert!(inits.iter().any(|c| c.name == "model-validation"));
    let pods = Api::<Pod>::namespaced(w.client.clone(), &w.ns);
    pods.patch(
        "large",
        &PatchParams::default(),
        &Patch::Merge(json!({"metadata": {"labels": {"team": "ml"}}})),
    )
    .await
    .expect("its UPDATE (old and new pod with managedFields) is admitted");

    // 12 000 volumes of ~30 bytes each: ~130 MiB once decoded, cloned and rendered.
    let mut costly = w.pod(
        "costly",
        labels(),
        json!([]),
        json!([container("app", json!([data_at("/data")]))]),
    );
    let spec = costly.spec.as_mut().unwrap();
    let volumes = spec.volumes.get_or_insert_with(Vec::new);
    for i in 0..12_000 {
        volumes.push(
            serde_json::from_value(json!({"name": format!("v{i}"), "emptyDir": {}})).unwrap(),
        );
    }
    let message = w.refused(&costly).await;
    assert!(
        message.contains("MiB of the webhook's memory") && message.contains("make it smaller"),
        "{message}"
    );
}
