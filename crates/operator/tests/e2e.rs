//! End to end on a real local control plane (etcd + kube-apiserver) with the operator running
//! as a process and the pod runner standing in for a kubelet: signed models start, tampered or
//! unsigned ones never do, and the failure says why.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::{Namespace, Pod};
use kube::Client;
use kube::api::{Api, DeleteParams, DynamicObject, Patch, PatchParams, PostParams};
use kube::core::{ApiResource, GroupVersionKind};
use model_signing::hashing::HashAlgorithm;
use model_signing::keys::PrivateKey;
use model_signing::manifest::Method;
use model_signing::name::ModelPath;
use model_signing::serialize::HashOptions;
use model_signing::sign::{CertificateSigner, KeySigner, Signer, sign_model};
use model_signing::walk::Selection;
use model_signing::x509::Certificate;
use serde_json::{Value, json};
use test_cluster::pod_runner::{PodRunner, RunnerConfig};

const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../../shared/fixtures");
const AGENT_IMAGE: &str = "ghcr.io/model-validation-operator/model-signing:v0.1.0";

fn fixture(rel: &str) -> PathBuf {
    Path::new(FIXTURES).join(rel)
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// The operator binary running against the test control plane.
struct Operator {
    child: Child,
    health: u16,
}

fn http_get(port: u16, path: &str) -> Option<String> {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).ok()?;
    s.write_all(format!("GET {path} HTTP/1.0\r\n\r\n").as_bytes())
        .ok()?;
    let mut out = String::new();
    s.read_to_string(&mut out).ok()?;
    Some(out)
}

/// The value of one sample line of the operator's /metrics.
fn metric(text: &str, sample: &str) -> f64 {
    text.lines()
        .find_map(|l| l.strip_prefix(sample).and_then(|v| v.trim().parse().ok()))
        .unwrap_or(0.0)
}

impl Operator {
    async fn start(kubeconfig: &Path, namespace: &str, config_name: &str) -> Operator {
        let port = free_port();
        let health = free_port();
        let log =
            std::fs::File::create(std::env::temp_dir().join(format!("mvo-e2e-{config_name}.log")))
                .unwrap();
        let child = Command::new(env!("CARGO_BIN_EXE_model-validation-operator"))
            .env("KUBECONFIG", kubeconfig)
            .args([
                "--install-crds",
                "--log-format",
                "text",
                "--namespace",
                namespace,
                "--webhook-config",
                config_name,
            ])
            .args([
                "--webhook-addr",
                &format!("127.0.0.1:{port}"),
                "--health-addr",
                &format!("127.0.0.1:{health}"),
            ])
            .args([
                "--webhook-url",
                &format!("https://127.0.0.1:{port}"),
                "--agent-image",
                AGENT_IMAGE,
            ])
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap();
        let op = Operator { child, health };
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if http_get(health, "/readyz").is_some_and(|out| {
                out.starts_with("HTTP/1.0 200") || out.starts_with("HTTP/1.1 200")
            }) {
                return op;
            }
            assert!(
                Instant::now() < deadline,
                "operator not ready within 30 s; see {}",
                std::env::temp_dir()
                    .join(format!("mvo-e2e-{config_name}.log"))
                    .display()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    fn stop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Operator {
    fn drop(&mut self) {
        self.stop();
    }
}

fn sign(model: &Path, signer: &dyn Signer) {
    let sel = Selection {
        ignore_paths: vec![ModelPath::parse("model.sig").unwrap()],
        ignore_git_paths: true,
        allow_symlinks: false,
    };
    let (bundle, _) = sign_model(
        model,
        &sel,
        Method::Files,
        HashAlgorithm::Sha256,
        signer,
        &HashOptions::default(),
    )
    .unwrap();
    std::fs::write(model.join("model.sig"), bundle.to_json()).unwrap();
}

fn write_model(dir: &Path) {
    std::fs::create_dir_all(dir.join("sub")).unwrap();
    std::fs::write(dir.join("weights.bin"), vec![7u8; 100_000]).unwrap();
    std::fs::write(dir.join("config.json"), "{\"layers\": 2}").unwrap();
    std::fs::write(dir.join("sub/tokenizer.json"), "[]").unwrap();
}

fn mv_api(client: &Client, ns: &str, group: &str) -> Api<DynamicObject> {
    let gvk = GroupVersionKind::gvk(group, "v1alpha1", "ModelValidation");
    Api::namespaced_with(
        client.clone(),
        ns,
        &ApiResource::from_gvk_with_plural(&gvk, "modelvalidations"),
    )
}

async fn create_mv(client: &Client, ns: &str, manifest: Value) -> Result<(), kube::Error> {
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

/// A pod whose app container mounts `/data` and `/keys` from the host.
fn pod(name: &str, labels: Value, data: &Path, keys: &Path) -> Pod {
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

/// Runs the pod like a kubelet and returns the verifier's (exit code, termination message)
/// as written to the Pod's status.
async fn run_verifier(client: &Client, ns: &str, name: &str) -> (i32, String) {
    let runner = PodRunner::new(client.clone(), RunnerConfig::default()).unwrap();
    let mut run = runner.run(ns, name).await.unwrap();
    run.stop_all();
    let pod = Api::<Pod>::namespaced(client.clone(), ns)
        .get(name)
        .await
        .unwrap();
    let st = pod
        .status
        .unwrap()
        .init_container_statuses
        .unwrap()
        .into_iter()
        .find(|s| s.name == "model-validation")
        .expect("verifier status");
    let t = st.state.unwrap().terminated.expect("verifier terminated");
    (t.exit_code, t.message.unwrap_or_default())
}

fn agent_binary_present() {
    let bin = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target/release/model-signing");
    assert!(
        bin.exists(),
        "{} is missing: run `cargo build --release -p model-signing-cli` (make test does)",
        bin.display()
    );
}

async fn labelled_namespace(
    client: &Client,
    cp: &test_cluster::ControlPlane,
    prefix: &str,
) -> String {
    let ns = cp.create_namespace(prefix).await.unwrap();
    let _ = client;
    ns
}

fn api_message(e: kube::Error) -> String {
    match e {
        kube::Error::Api(s) => s.message,
        other => other.to_string(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn operator_end_to_end() {
    test_cluster::install_crypto_provider();
    agent_binary_present();
    let cp = test_cluster::shared().await.unwrap();
    let client = cp.client().unwrap();
    let mut operator = Operator::start(cp.kubeconfig_path(), "mvo-system", "mvo-e2e").await;
    let tmp = tempfile::tempdir().unwrap();

    // --- key method: a signed model verifies, a tampered one fails naming the file ---
    let data = tmp.path().join("key/data");
    let keys = tmp.path().join("key/keys");
    write_model(&data.join("model"));
    std::fs::create_dir_all(&keys).unwrap();
    std::fs::copy(
        fixture("peer-samples/ec-p256.pub.pem"),
        keys.join("pub.pem"),
    )
    .unwrap();
    let key = PrivateKey::from_pem(
        "key",
        &std::fs::read(fixture("peer-samples/ec-p256.priv.pem")).unwrap(),
        None,
    )
    .unwrap();
    sign(&data.join("model"), &KeySigner::new(key));
    let ns = labelled_namespace(&client, cp, "e2e-key").await;
    create_mv(&client, &ns, json!({
        "apiVersion": "ml.sigstore.dev/v1alpha1", "kind": "ModelValidation", "metadata": {"name": "key-mv"},
        "spec": {"model": {"path": "/data/model", "signaturePath": "/data/model/model.sig"}, "config": {"publicKeyConfig": {"keyPath": "/keys/pub.pem"}}}
    }))
    .await
    .unwrap();
    let pods: Api<Pod> = Api::namespaced(client.clone(), &ns);
    let created = pods
        .create(
            &PostParams::default(),
            &pod(
                "good",
                json!({"validation.ml.sigstore.dev/ml": "key-mv"}),
                &data,
                &keys,
            ),
        )
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
    let (code, message) = run_verifier(&client, &ns, "good").await;
    assert_eq!(code, 0, "signed model must verify: {message}");
    assert!(message.starts_with("verified: 3 files"), "{message}");

    std::fs::write(data.join("model/weights.bin"), vec![8u8; 100_000]).unwrap();
    pods.create(
        &PostParams::default(),
        &pod(
            "tampered",
            json!({"validation.ml.sigstore.dev/ml": "key-mv"}),
            &data,
            &keys,
        ),
    )
    .await
    .unwrap();
    let (code, message) = run_verifier(&client, &ns, "tampered").await;
    assert_eq!(code, 1, "{message}");
    assert!(
        message.contains("weights.bin"),
        "the termination message names the file: {message}"
    );

    // --- a missing ModelValidation denies creation, naming it and its namespace ---
    let err = pods
        .create(
            &PostParams::default(),
            &pod(
                "orphan",
                json!({"validation.ml.sigstore.dev/ml": "nope"}),
                &data,
                &keys,
            ),
        )
        .await
        .unwrap_err();
    let msg = api_message(err);
    assert!(
        msg.contains("\"nope\" not found in namespace") && msg.contains(&ns),
        "{msg}"
    );

    // --- a pod denied for a reason on an existing ModelValidation leaves an Event on it ---
    let mut unmounted = pod(
        "unmounted",
        json!({"validation.ml.sigstore.dev/ml": "key-mv"}),
        &data,
        &keys,
    );
    unmounted.spec.as_mut().unwrap().containers[0]
        .volume_mounts
        .as_mut()
        .unwrap()
        .retain(|m| m.mount_path != "/keys");
    let msg = api_message(
        pods.create(&PostParams::default(), &unmounted)
            .await
            .unwrap_err(),
    );
    assert!(
        msg.contains("publicKeyConfig.keyPath /keys/pub.pem is not on any volume"),
        "{msg}"
    );
    let events: Api<k8s_openapi::api::events::v1::Event> = Api::namespaced(client.clone(), &ns);
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let list = events.list(&Default::default()).await.unwrap();
        let found = list
            .items
            .iter()
            .find(|e| e.reason.as_deref() == Some("PodDenied"));
        if let Some(e) = found {
            assert_eq!(
                e.regarding.as_ref().and_then(|r| r.name.as_deref()),
                Some("key-mv")
            );
            assert!(
                e.note.as_deref().unwrap_or("").contains("unmounted"),
                "{:?}",
                e.note
            );
            break;
        }
        assert!(
            Instant::now() < deadline,
            "no PodDenied event on the ModelValidation"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    // --- the API server enforces the CRD's CEL rules ---
    let err = create_mv(&client, &ns, json!({
        "apiVersion": "ml.sigstore.dev/v1alpha1", "kind": "ModelValidation", "metadata": {"name": "two-methods"},
        "spec": {"model": {"path": "/data/model", "signaturePath": "/data/model.sig"},
                 "config": {"publicKeyConfig": {"keyPath": "/k"}, "pkiConfig": {"certificateAuthority": "/ca"}}}
    }))
    .await
    .unwrap_err();
    assert!(api_message(err).contains("exactly one validation method must be specified"));
    let err = create_mv(&client, &ns, json!({
        "apiVersion": "ml.sigstore.dev/v1alpha1", "kind": "ModelValidation", "metadata": {"name": "relative"},
        "spec": {"model": {"path": "model", "signaturePath": "/data/model.sig"}, "config": {"publicKeyConfig": {"keyPath": "/k"}},
                 "continuousValidation": {"enabled": true, "interval": "30s"}}
    }))
    .await
    .unwrap_err();
    let msg = api_message(err);
    assert!(msg.contains("absolute path"), "{msg}");

    // --- an ignored namespace gets no injection ---
    let ignored = cp.create_namespace("e2e-ignored").await.unwrap();
    Api::<Namespace>::all(client.clone())
        .patch(
            &ignored,
            &PatchParams::default(),
            &Patch::Merge(
                json!({"metadata": {"labels": {"validation.ml.sigstore.dev/ignore": "true"}}}),
            ),
        )
        .await
        .unwrap();
    let p = Api::<Pod>::namespaced(client.clone(), &ignored)
        .create(
            &PostParams::default(),
            &pod(
                "free",
                json!({"validation.ml.sigstore.dev/ml": "whatever"}),
                &data,
                &keys,
            ),
        )
        .await
        .unwrap();
    assert!(
        p.spec
            .unwrap()
            .init_containers
            .unwrap_or_default()
            .is_empty()
    );

    // --- certificate method, and a ModelValidation written for upstream (every §2.1 field) ---
    let cdata = tmp.path().join("cert/data");
    let ckeys = tmp.path().join("cert/keys");
    write_model(&cdata.join("model"));
    std::fs::create_dir_all(&ckeys).unwrap();
    std::fs::copy(
        fixture("peer-samples/pki/root-ca.cert.pem"),
        ckeys.join("ca.pem"),
    )
    .unwrap();
    let pki = fixture("peer-samples/pki");
    let leaf_key = PrivateKey::from_pem(
        "leaf",
        &std::fs::read(pki.join("leaf.key.pem")).unwrap(),
        None,
    )
    .unwrap();
    let leaf = Certificate::all_from_pem(
        "leaf",
        &std::fs::read(pki.join("leaf-ku-eku.cert.pem")).unwrap(),
    )
    .unwrap()
    .remove(0);
    let inter =
        Certificate::all_from_pem("int", &std::fs::read(pki.join("int-ca.cert.pem")).unwrap())
            .unwrap();
    sign(
        &cdata.join("model"),
        &CertificateSigner::new(leaf_key, leaf, inter).unwrap(),
    );
    create_mv(&client, &ns, json!({
        "apiVersion": "ml.sigstore.dev/v1alpha1", "kind": "ModelValidation", "metadata": {"name": "upstream-pki"},
        "spec": {
            "model": {"path": "/data/model", "signaturePath": "/data/model/model.sig", "ignorePaths": [], "ignoreGitPaths": true,
                      "ignoreUnsignedFiles": false, "allowSymlinks": false},
            "config": {"pkiConfig": {"certificateAuthority": "/keys/ca.pem"}},
            "imagePullPolicy": "IfNotPresent",
            "continuousValidation": {"enabled": false, "interval": "5m"},
            "resources": {"requests": {"cpu": "10m", "memory": "32Mi"}, "limits": {"cpu": "1", "memory": "128Mi"}}
        }
    }))
    .await
    .unwrap();
    pods.create(
        &PostParams::default(),
        &pod(
            "cert",
            json!({"validation.ml.sigstore.dev/ml": "upstream-pki"}),
            &cdata,
            &ckeys,
        ),
    )
    .await
    .unwrap();
    let (code, message) = run_verifier(&client, &ns, "cert").await;
    assert_eq!(code, 0, "{message}");
    let p = pods.get("cert").await.unwrap();
    let limits = p.spec.unwrap().init_containers.unwrap()[0]
        .resources
        .clone()
        .unwrap()
        .limits
        .unwrap();
    assert_eq!(limits["memory"].0, "128Mi", "the CR's resources are used");

    // --- the first published API (rhtas.redhat.com) as written in the seed manifests ---
    let seed_ns = cp.create_namespace("e2e-seed").await.unwrap();
    let seed: Value = serde_saphyr::from_str(
        &std::fs::read_to_string(fixture("seed/modelvalidation-key.yaml")).unwrap(),
    )
    .unwrap();
    create_mv(&client, &seed_ns, seed).await.unwrap();
    let sdata = tmp.path().join("seed/data");
    write_model(&sdata.join("model"));
    std::fs::create_dir_all(sdata.join("keys")).unwrap();
    std::fs::copy(
        fixture("peer-samples/ec-p256.pub.pem"),
        sdata.join("keys/pub.key"),
    )
    .unwrap();
    let key = PrivateKey::from_pem(
        "key",
        &std::fs::read(fixture("peer-samples/ec-p256.priv.pem")).unwrap(),
        None,
    )
    .unwrap();
    let sel = Selection {
        ignore_paths: vec![],
        ignore_git_paths: true,
        allow_symlinks: false,
    };
    let (bundle, _) = sign_model(
        &sdata.join("model"),
        &sel,
        Method::Files,
        HashAlgorithm::Sha256,
        &KeySigner::new(key),
        &HashOptions::default(),
    )
    .unwrap();
    std::fs::write(sdata.join("model.sig"), bundle.to_json()).unwrap();
    // The seed pod mounts the PVC "models", exactly as published; here it is bound to a
    // hostPath PersistentVolume holding the model.
    let pv: k8s_openapi::api::core::v1::PersistentVolume = serde_json::from_value(json!({
        "metadata": {"name": format!("{seed_ns}-models")},
        "spec": {"capacity": {"storage": "1Gi"}, "accessModes": ["ReadOnlyMany"], "hostPath": {"path": sdata.to_str().unwrap()},
                 "claimRef": {"namespace": seed_ns, "name": "models"}}
    }))
    .unwrap();
    Api::<k8s_openapi::api::core::v1::PersistentVolume>::all(client.clone())
        .create(&PostParams::default(), &pv)
        .await
        .unwrap();
    let pvc: k8s_openapi::api::core::v1::PersistentVolumeClaim = serde_json::from_value(json!({
        "metadata": {"name": "models"},
        "spec": {"accessModes": ["ReadOnlyMany"], "resources": {"requests": {"storage": "1Gi"}}, "volumeName": format!("{seed_ns}-models"), "storageClassName": ""}
    }))
    .unwrap();
    Api::<k8s_openapi::api::core::v1::PersistentVolumeClaim>::namespaced(client.clone(), &seed_ns)
        .create(&PostParams::default(), &pvc)
        .await
        .unwrap();
    let consumer: Value = serde_saphyr::from_str(
        &std::fs::read_to_string(fixture("seed/consumer-pod.yaml")).unwrap(),
    )
    .unwrap();
    let seed_pods: Api<Pod> = Api::namespaced(client.clone(), &seed_ns);
    seed_pods
        .create(
            &PostParams::default(),
            &serde_json::from_value(consumer).unwrap(),
        )
        .await
        .unwrap();
    let (code, message) = run_verifier(&client, &seed_ns, "model-consuming-workload").await;
    assert_eq!(code, 0, "{message}");

    // --- keyless Sigstore (a real production signature), verified offline; then tampered ---
    let golden = tmp.path().join("sigstore/data");
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
    let empty_keys = tmp.path().join("sigstore/keys");
    std::fs::create_dir_all(&empty_keys).unwrap();
    create_mv(&client, &ns, json!({
        "apiVersion": "ml.sigstore.dev/v1alpha1", "kind": "ModelValidation", "metadata": {"name": "keyless"},
        "spec": {"model": {"path": "/data", "signaturePath": "/data/model.sig"},
                 "config": {"sigstoreConfig": {"certificateIdentity": "stefanb@us.ibm.com", "certificateOidcIssuer": "https://sigstore.verify.ibm.com/oauth2"}}}
    }))
    .await
    .unwrap();
    pods.create(
        &PostParams::default(),
        &pod(
            "keyless",
            json!({"validation.ml.sigstore.dev/ml": "keyless"}),
            &golden,
            &empty_keys,
        ),
    )
    .await
    .unwrap();
    let (code, message) = run_verifier(&client, &ns, "keyless").await;
    assert_eq!(code, 0, "{message}");
    assert!(message.contains("stefanb@us.ibm.com"), "{message}");
    std::fs::write(golden.join("signme-2"), "tampered").unwrap();
    pods.create(
        &PostParams::default(),
        &pod(
            "keyless-tampered",
            json!({"validation.ml.sigstore.dev/ml": "keyless"}),
            &golden,
            &empty_keys,
        ),
    )
    .await
    .unwrap();
    let (code, message) = run_verifier(&client, &ns, "keyless-tampered").await;
    assert_eq!(code, 1, "{message}");
    assert!(message.contains("signme-2"), "{message}");

    // --- after the ModelValidation is gone, existing pods can still be updated and deleted ---
    mv_api(&client, &ns, "ml.sigstore.dev")
        .delete("key-mv", &DeleteParams::default())
        .await
        .unwrap();
    pods.patch(
        "good",
        &PatchParams::default(),
        &Patch::Merge(json!({"metadata": {"labels": {"touched": "yes"}}})),
    )
    .await
    .unwrap();
    pods.delete("good", &DeleteParams::default()).await.unwrap();

    // --- the operator's metrics count what happened ---
    let text = http_get(operator.health, "/metrics").unwrap();
    assert!(
        metric(
            &text,
            "model_validation_admission_requests_total{result=\"injected\"}"
        ) == 6.0,
        "{text}"
    );
    assert!(
        metric(
            &text,
            "model_validation_admission_requests_total{result=\"denied\"}"
        ) >= 1.0,
        "{text}"
    );
    assert!(
        metric(
            &text,
            "model_validation_injections_total{method=\"public-key\"}"
        ) >= 3.0,
        "{text}"
    );
    assert!(
        metric(&text, "model_validation_injections_total{method=\"pki\"}") >= 1.0,
        "{text}"
    );
    assert!(
        metric(
            &text,
            "model_validation_injections_total{method=\"sigstore\"}"
        ) >= 2.0,
        "{text}"
    );
    let expiry = metric(
        &text,
        "model_validation_serving_certificate_expiry_timestamp_seconds",
    );
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs_f64();
    assert!(
        expiry > now + 80.0 * 86400.0,
        "serving certificate expiry {expiry}"
    );

    // --- with the operator stopped, a labelled pod cannot be created (fail closed) ---
    operator.stop();
    let err = pods
        .create(
            &PostParams::default(),
            &pod(
                "unguarded",
                json!({"validation.ml.sigstore.dev/ml": "upstream-pki"}),
                &cdata,
                &ckeys,
            ),
        )
        .await
        .unwrap_err();
    let msg = api_message(err);
    assert!(msg.contains("failed calling webhook"), "{msg}");
    // Unlabelled pods are not affected.
    pods.create(
        &PostParams::default(),
        &pod("plain", json!({"app": "x"}), &cdata, &ckeys),
    )
    .await
    .unwrap();
}
