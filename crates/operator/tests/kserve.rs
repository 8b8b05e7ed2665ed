//! The worked KServe example of docs/kserve.md, on the real API server with the operator
//! binary: `examples/kserve/inferenceservice.yaml` and `examples/kserve/modelvalidation.yaml`.
//!
//! KServe itself is not installed. What it does to a predictor pod is done by a stand-in for its
//! pod mutator, registered as a real second mutating webhook (as KServe registers it: CREATE of
//! pods labelled `serving.kserve.io/inferenceservice`, `reinvocationPolicy: IfNeeded`). Like
//! `InjectStorageInitializer` (kserve/kserve `pkg/webhook/admission/pod/storage_initializer_injector.go`)
//! it appends the `storage-initializer` init container with args `[storageUri, /mnt/models]`,
//! the `kserve-provision-location` emptyDir, and a read-only mount of it at /mnt/models in
//! `kserve-container`. The pod runner runs the initializer's image as a script that "downloads"
//! the URI from a directory of this test (the bucket). The pod created is the predictor pod
//! KServe would create from the example (labels, storage annotation, container name), so the
//! example cannot drift from what is tested.

mod support;

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::time::Duration;

use k8s_openapi::api::core::v1::{Container, Pod, VolumeMount};
use kube::api::{Api, PostParams};
use kube::discovery::Discovery;
use model_validation_operator::names::{LABEL, VERIFY_CONTAINER};
use serde_json::{Value, json};
use support::{
    SecondWebhook, append_op, apply_doc, create_mv, create_refused, established_and_discovered,
    events, find_event, init_names, init_outcome, mv_api, parse_docs, run_pod_with,
    shared_operator, signed_model_and_key, stub_crd, wait_for,
};
use test_cluster::pod_runner::{ImageMap, RunnerConfig};

// KServe's names (kserve/kserve `pkg/constants/constants.go`, `storage_initializer_injector.go`).
/// The init container that downloads the model.
const STORAGE_INITIALIZER: &str = "storage-initializer";
/// Its image (`StorageInitializerContainerImage`), mapped to this test's script.
const STORAGE_INITIALIZER_IMAGE: &str = "kserve/storage-initializer";
/// The emptyDir it downloads into.
const PROVISION_VOLUME: &str = "kserve-provision-location";
/// Where (`DefaultModelLocalMountPath`).
const MODEL_DIR: &str = "/mnt/models";
/// The model server's container in every predictor pod (`InferenceServiceContainerName`).
const SERVER: &str = "kserve-container";
/// The pod annotation the predictor reconciler copies `storageUri` into.
const SOURCE_URI: &str = "internal.serving.kserve.io/storage-initializer-sourceuri";
/// The pod label naming the InferenceService, which KServe's pod mutator selects on.
const ISVC_LABEL: &str = "serving.kserve.io/inferenceservice";
/// KServe's MutatingWebhookConfiguration (`config/webhook/manifests.yaml`): by name the API
/// server calls it before the operator's (`mvo-shared` here, `model-validation-operator` in
/// deploy/), as in a cluster with both installed.
const KSERVE_CONFIG: &str = "inferenceservice.serving.kserve.io";

/// The one document of `examples/kserve/<file>`.
fn example(file: &str) -> Value {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../examples/kserve")
        .join(file);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path:?}: {e}"));
    let mut docs = parse_docs(&text);
    assert_eq!(docs.len(), 1, "{path:?}");
    docs.remove(0)
}

/// The example's `storageUri`.
fn storage_uri(isvc: &Value) -> &str {
    isvc["spec"]["predictor"]["model"]["storageUri"]
        .as_str()
        .expect("spec.predictor.model.storageUri")
}

/// The predictor pod KServe creates for `isvc`: the labels of the InferenceService, then of its
/// predictor (which win), then KServe's own (kserve/kserve `components/predictor.go`);
/// `storageUri` in the annotation its pod mutator reads; the serving runtime's container as
/// `kserve-container` (here a stand-in process).
fn predictor_pod(isvc: &Value, name: &str) -> Pod {
    let mut labels = serde_json::Map::new();
    for from in [
        &isvc["metadata"]["labels"],
        &isvc["spec"]["predictor"]["labels"],
    ] {
        if let Some(l) = from.as_object() {
            labels.extend(l.clone());
        }
    }
    labels.insert(ISVC_LABEL.into(), isvc["metadata"]["name"].clone());
    labels.insert("component".into(), json!("predictor"));
    serde_json::from_value(json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": name, "labels": labels,
            "annotations": {SOURCE_URI: storage_uri(isvc)}},
        "spec": {
            "restartPolicy": "Never",
            "containers": [{"name": SERVER, "image": "kserve/sklearnserver:latest",
                "command": ["sleep", "30"],
                "args": ["--model_name=sklearn-iris", format!("--model_dir={MODEL_DIR}")]}]
        }
    }))
    .unwrap()
}

/// What KServe's pod mutator does to a predictor pod whose storage URI is not `pvc://` or
/// `oci://`: nothing without the annotation or once the initializer is there (it is
/// re-invoked); else the emptyDir, a read-only mount of it in `kserve-container` and the
/// initializer, appended after the init containers the pod already has.
fn kserve_pod_mutator(pod: &Value) -> Vec<Value> {
    let Some(uri) = pod["metadata"]["annotations"][SOURCE_URI].as_str() else {
        return vec![];
    };
    let inits = pod["spec"]["initContainers"].as_array();
    if inits.is_some_and(|l| l.iter().any(|c| c["name"] == STORAGE_INITIALIZER)) {
        return vec![];
    }
    let containers = pod["spec"]["containers"].as_array().unwrap();
    let Some(server) = containers.iter().position(|c| c["name"] == SERVER) else {
        return vec![];
    };
    let initializer = json!({
        "name": STORAGE_INITIALIZER, "image": format!("{STORAGE_INITIALIZER_IMAGE}:latest"),
        "args": [uri, MODEL_DIR],
        "terminationMessagePolicy": "FallbackToLogsOnError",
        "volumeMounts": [{"name": PROVISION_VOLUME, "mountPath": MODEL_DIR, "readOnly": false}]
    });
    vec![
        append_op(
            pod,
            &format!("/spec/containers/{server}/volumeMounts"),
            json!({"name": PROVISION_VOLUME, "mountPath": MODEL_DIR, "readOnly": true}),
        ),
        append_op(
            pod,
            "/spec/volumes",
            json!({"name": PROVISION_VOLUME, "emptyDir": {}}),
        ),
        append_op(pod, "/spec/initContainers", initializer),
    ]
}

/// Registers [`kserve_pod_mutator`] as configuration `config_name`, for namespace `ns` only.
async fn register_kserve(client: &kube::Client, config_name: &str, ns: &str) {
    SecondWebhook {
        config_name: config_name.into(),
        reinvocation: "IfNeeded",
        object_selector: json!({"matchExpressions": [{"key": ISVC_LABEL, "operator": "Exists"}]}),
        namespace_selector: Some(SecondWebhook::only_namespace(ns)),
    }
    .register(client, kserve_pod_mutator)
    .await;
}

/// The example's ModelValidation with its key replaced by `pem` (nothing else changed).
fn example_policy(pem: &str) -> Value {
    let mut mv = example("modelvalidation.yaml");
    let key = mv
        .pointer_mut("/spec/config/publicKeyConfig/keyPem")
        .expect("the example's policy carries its key in spec.config.publicKeyConfig.keyPem");
    *key = json!(pem);
    mv
}

/// The bucket (a directory) and the runner whose storage-initializer image copies
/// `scheme://bucket/path` from it into its second argument, as the real one downloads.
struct Bucket {
    root: tempfile::TempDir,
}

impl Bucket {
    fn new() -> Bucket {
        let root = tempfile::tempdir().unwrap();
        let script = root.path().join("storage-initializer");
        std::fs::write(
            &script,
            format!(
                "#!/bin/sh\n# $1: the storageUri, $2: where to put the model\nset -eu\ncp -R \"{}/buckets/${{1#*://}}/.\" \"$2\"\n",
                root.path().display()
            ),
        )
        .unwrap();
        std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
        Bucket { root }
    }

    /// Where `uri` lives.
    fn dir(&self, uri: &str) -> std::path::PathBuf {
        let (_, rest) = uri.split_once("://").unwrap();
        self.root.path().join("buckets").join(rest)
    }

    fn runner(&self) -> RunnerConfig {
        RunnerConfig {
            images: ImageMap::from_env().with(
                STORAGE_INITIALIZER_IMAGE,
                self.root.path().join("storage-initializer"),
            ),
            ..Default::default()
        }
    }
}

fn container<'a>(list: &'a [Container], name: &str) -> &'a Container {
    list.iter()
        .find(|c| c.name == name)
        .unwrap_or_else(|| panic!("no container {name}"))
}

/// `(volume, mountPath, readOnly)` of each mount of `c` (the API server's service-account token
/// mount aside).
fn mounts(c: &Container) -> Vec<(String, String, bool)> {
    c.volume_mounts
        .iter()
        .flatten()
        .filter(|m: &&VolumeMount| !m.mount_path.starts_with("/var/run/secrets"))
        .map(|m| {
            (
                m.name.clone(),
                m.mount_path.clone(),
                m.read_only.unwrap_or(false),
            )
        })
        .collect()
}

/// Whether the model server's container ever started.
fn server_started(pod: &Pod) -> bool {
    pod.status
        .as_ref()
        .and_then(|s| s.container_statuses.as_ref())
        .is_some_and(|c| {
            c.iter().any(|c| {
                c.name == SERVER
                    && c.state
                        .as_ref()
                        .is_some_and(|s| s.running.is_some() || s.terminated.is_some())
            })
        })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kserves_storage_initializer_runs_before_the_verifier_and_a_tampered_upload_never_serves() {
    test_cluster::install_crypto_provider();
    shared_operator().await;
    let cp = test_cluster::shared().await.unwrap();
    let client = cp.client().unwrap();
    let ns = cp.create_namespace("kserve").await.unwrap();
    register_kserve(&client, KSERVE_CONFIG, &ns).await;
    let isvc = example("inferenceservice.yaml");
    let uri = storage_uri(&isvc);
    let bucket = Bucket::new();
    let keys = bucket.root.path().join("keys");
    // Signed with the signature inside the uploaded directory (docs/kserve.md, steps 1 and 2).
    signed_model_and_key(&bucket.dir(uri), &keys);
    let pem = std::fs::read_to_string(keys.join("pub.pem")).unwrap();
    let policy = example_policy(&pem);
    let mv_name = policy["metadata"]["name"].as_str().unwrap().to_string();
    create_mv(&client, &ns, policy).await.unwrap();
    let pods = Api::<Pod>::namespaced(client.clone(), &ns);

    // Signed upload: admitted, the initializer first, the verifier last, both succeed.
    let created = pods
        .create(
            &PostParams::default(),
            &predictor_pod(&isvc, "sklearn-iris-predictor-00001"),
        )
        .await
        .unwrap();
    assert_eq!(
        init_names(&created),
        [STORAGE_INITIALIZER, VERIFY_CONTAINER],
        "the verifier runs after the download, once each (KServe's mutator is re-invoked)"
    );
    let spec = created.spec.as_ref().unwrap();
    let inits = spec.init_containers.as_deref().unwrap();
    let initializer = container(inits, STORAGE_INITIALIZER);
    assert_eq!(
        initializer.args.as_deref().unwrap(),
        [uri, MODEL_DIR],
        "what KServe's mutator gives its initializer"
    );
    let provision = |read_only| {
        vec![(
            PROVISION_VOLUME.to_string(),
            MODEL_DIR.to_string(),
            read_only,
        )]
    };
    assert_eq!(mounts(initializer), provision(false), "the download writes");
    assert_eq!(
        mounts(container(inits, VERIFY_CONTAINER)),
        provision(true),
        "the verifier reads the downloaded volume"
    );
    assert_eq!(
        mounts(container(&spec.containers, SERVER)),
        provision(true),
        "the server reads it"
    );
    let volume = spec
        .volumes
        .iter()
        .flatten()
        .find(|v| v.name == PROVISION_VOLUME)
        .expect("the provision volume");
    assert!(volume.empty_dir.is_some(), "{volume:?}");

    let ran = run_pod_with(
        &client,
        &ns,
        "sklearn-iris-predictor-00001",
        bucket.runner(),
    )
    .await;
    assert_eq!(
        init_outcome(&ran, STORAGE_INITIALIZER).map(|o| o.0),
        Some(0),
        "{:?}",
        init_outcome(&ran, STORAGE_INITIALIZER)
    );
    let (code, message) = init_outcome(&ran, VERIFY_CONTAINER).expect("the verifier ran");
    assert_eq!(code, 0, "{message}");
    assert!(server_started(&ran), "{:?}", ran.status);

    // Tampered upload (one byte appended to a file in the bucket after signing): the next
    // predictor pod downloads it, the verifier fails naming the file, the server never starts.
    let config = bucket.dir(uri).join("config.json");
    let mut bytes = std::fs::read(&config).unwrap();
    bytes.push(b' ');
    std::fs::write(&config, bytes).unwrap();
    pods.create(
        &PostParams::default(),
        &predictor_pod(&isvc, "sklearn-iris-predictor-00002"),
    )
    .await
    .unwrap();
    let ran = run_pod_with(
        &client,
        &ns,
        "sklearn-iris-predictor-00002",
        bucket.runner(),
    )
    .await;
    assert_eq!(
        init_outcome(&ran, STORAGE_INITIALIZER).map(|o| o.0),
        Some(0),
        "the download itself succeeds"
    );
    let (code, message) = init_outcome(&ran, VERIFY_CONTAINER).expect("the verifier ran");
    assert_eq!(code, 1, "{message}");
    assert!(message.contains("config.json"), "{message}");
    assert!(!server_started(&ran), "{:?}", ran.status);
    assert_eq!(
        ran.status.as_ref().and_then(|s| s.phase.as_deref()),
        Some("Failed")
    );

    // What `kubectl get mv` and the Events show (docs/kserve.md).
    let mvs = mv_api(&client, &ns, "ml.sigstore.dev");
    let (mvs, mv_name) = (&mvs, mv_name.as_str());
    let status = wait_for(
        "the ModelValidation to count 1 verified and 1 failed pod",
        Duration::from_secs(30),
        || async move {
            let status = mvs.get(mv_name).await.ok()?.data["status"].clone();
            (status["verifiedCount"] == 1 && status["failedCount"] == 1).then_some(status)
        },
    )
    .await;
    assert_eq!(status["injectedPodCount"], 2, "{status}");
    assert!(
        status["lastFailure"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("config.json")),
        "{status}"
    );
    let client = &client;
    let ns = &ns;
    let event = wait_for(
        "a ModelVerificationFailed Event on the tampered pod",
        Duration::from_secs(30),
        || async move {
            let evs = events(client, ns).await;
            find_event(
                &evs,
                "ModelVerificationFailed",
                "Pod",
                "sklearn-iris-predictor-00002",
            )
            .cloned()
        },
    )
    .await;
    assert!(
        event
            .note
            .as_deref()
            .is_some_and(|n| n.contains("config.json")),
        "{event:?}"
    );
}

/// Were KServe's mutator called after ours (its configuration named to sort after the
/// operator's), our webhook would see a predictor pod with nothing mounted at /mnt/models yet:
/// it refuses the pod, naming the path, rather than admit it unverified. The twin, KServe's
/// mutator before ours, is admitted above.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_predictor_pod_is_refused_not_admitted_unverified_when_the_download_is_added_after_us() {
    test_cluster::install_crypto_provider();
    shared_operator().await;
    let cp = test_cluster::shared().await.unwrap();
    let client = cp.client().unwrap();
    let ns = cp.create_namespace("kserve-late").await.unwrap();
    register_kserve(&client, "zz-kserve-after-the-operator", &ns).await;
    let pem = std::fs::read_to_string(support::fixture("peer-samples/ec-p256.pub.pem")).unwrap();
    create_mv(&client, &ns, example_policy(&pem)).await.unwrap();
    let isvc = example("inferenceservice.yaml");
    let pods = Api::<Pod>::namespaced(client.clone(), &ns);
    let message =
        create_refused(&pods, &predictor_pod(&isvc, "sklearn-iris-predictor-00001")).await;
    assert!(
        message.contains("spec.model.path /mnt/models is not on any volume"),
        "{message}"
    );
}

/// The example InferenceService applies to an API server that serves its kind (a stand-in CRD
/// with KServe's group, version and names), and its predictor label names the example's
/// ModelValidation, which our CRD accepts.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_example_manifests_apply() {
    test_cluster::install_crypto_provider();
    shared_operator().await;
    let cp = test_cluster::shared().await.unwrap();
    let client = cp.client().unwrap();
    let ns = cp.create_namespace("kserve-apply").await.unwrap();
    let mut crd = stub_crd("serving.kserve.io", "InferenceService", "inferenceservices");
    crd["spec"]["versions"][0]["name"] = json!("v1beta1");
    let discovery = Discovery::new(client.clone()).run().await.unwrap();
    apply_doc(&client, &discovery, &crd, "kserve-test").await;
    let discovery = established_and_discovered(&client, &crd).await;
    let mut isvc = example("inferenceservice.yaml");
    isvc["metadata"]["namespace"] = json!(ns);
    apply_doc(&client, &discovery, &isvc, "kserve-test").await;
    let stored = support::api_for(&client, &discovery, &isvc)
        .get("sklearn-iris")
        .await
        .unwrap();
    let policy = example_policy(
        &std::fs::read_to_string(support::fixture("peer-samples/ec-p256.pub.pem")).unwrap(),
    );
    assert_eq!(
        stored.data["spec"]["predictor"]["labels"][LABEL], policy["metadata"]["name"],
        "the predictor's label names the example's ModelValidation"
    );
    assert_eq!(
        stored.data["spec"]["predictor"]["model"]["storageUri"],
        json!(storage_uri(&isvc))
    );
    create_mv(&client, &ns, policy).await.unwrap();
}
