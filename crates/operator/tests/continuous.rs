//! Continuous validation on the real control plane: the injected native sidecar, run by the pod
//! runner, turns not-ready when a model file changes and ready again when it is restored.
//! (The CRD allows intervals of at least 1m, so each flip takes up to a minute.)

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, DynamicObject, PostParams};
use kube::core::{ApiResource, GroupVersionKind};
use model_signing::hashing::HashAlgorithm;
use model_signing::keys::PrivateKey;
use model_signing::manifest::Method;
use model_signing::name::ModelPath;
use model_signing::serialize::HashOptions;
use model_signing::sign::{KeySigner, sign_model};
use model_signing::walk::Selection;
use serde_json::json;
use test_cluster::pod_runner::{PodRunner, RunnerConfig};

const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../../shared/fixtures");

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn http_get(port: u16, path: &str) -> Option<String> {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    s.write_all(format!("GET {path} HTTP/1.0\r\nhost: x\r\n\r\n").as_bytes())
        .ok()?;
    let mut out = String::new();
    s.read_to_string(&mut out).ok()?;
    Some(out)
}

async fn wait_for(port: u16, path: &str, status: &str, within: Duration) -> String {
    let deadline = Instant::now() + within;
    loop {
        if let Some(r) = http_get(port, path)
            && r.split_whitespace().nth(1) == Some(status)
        {
            return r;
        }
        assert!(
            Instant::now() < deadline,
            "{path} on port {port} did not answer {status} within {within:?}"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

struct Operator(Child);
impl Drop for Operator {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sidecar_readiness_follows_the_model() {
    test_cluster::install_crypto_provider();
    let cp = test_cluster::shared().await.unwrap();
    let client = cp.client().unwrap();
    let (port, health, watch) = (free_port(), free_port(), free_port());
    let _op = Operator(
        Command::new(env!("CARGO_BIN_EXE_model-validation-operator"))
            .env("KUBECONFIG", cp.kubeconfig_path())
            .args([
                "--install-crds",
                "--log-format",
                "text",
                "--webhook-config",
                "mvo-continuous",
                "--watch-port",
                &watch.to_string(),
            ])
            .args([
                "--webhook-addr",
                &format!("127.0.0.1:{port}"),
                "--health-addr",
                &format!("127.0.0.1:{health}"),
            ])
            .args(["--webhook-url", &format!("https://127.0.0.1:{port}")])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    wait_for(health, "/readyz", "200", Duration::from_secs(30)).await;

    let tmp = tempfile::tempdir().unwrap();
    let model = tmp.path().join("data/model");
    std::fs::create_dir_all(&model).unwrap();
    std::fs::write(model.join("weights.bin"), vec![1u8; 50_000]).unwrap();
    std::fs::write(model.join("config.json"), "{}").unwrap();
    std::fs::copy(
        Path::new(FIXTURES).join("peer-samples/ec-p256.pub.pem"),
        tmp.path().join("data/pub.pem"),
    )
    .unwrap();
    let key = PrivateKey::from_pem(
        "key",
        &std::fs::read(Path::new(FIXTURES).join("peer-samples/ec-p256.priv.pem")).unwrap(),
        None,
    )
    .unwrap();
    let sel = Selection {
        ignore_paths: vec![ModelPath::parse("model.sig").unwrap()],
        ignore_git_paths: true,
        allow_symlinks: false,
    };
    let (bundle, _) = sign_model(
        &model,
        &sel,
        Method::Files,
        HashAlgorithm::Sha256,
        &KeySigner::new(key),
        &HashOptions::default(),
    )
    .unwrap();
    std::fs::write(model.join("model.sig"), bundle.to_json()).unwrap();

    let ns = cp.create_namespace("continuous").await.unwrap();
    let gvk = GroupVersionKind::gvk("ml.sigstore.dev", "v1alpha1", "ModelValidation");
    let mv: DynamicObject = serde_json::from_value(json!({
        "apiVersion": "ml.sigstore.dev/v1alpha1", "kind": "ModelValidation", "metadata": {"name": "cv"},
        "spec": {"model": {"path": "/data/model", "signaturePath": "/data/model/model.sig"},
                 "config": {"publicKeyConfig": {"keyPath": "/data/pub.pem"}},
                 "continuousValidation": {"enabled": true, "interval": "1m"}}
    }))
    .unwrap();
    Api::<DynamicObject>::namespaced_with(client.clone(), &ns, &ApiResource::from_gvk(&gvk))
        .create(&PostParams::default(), &mv)
        .await
        .unwrap();
    let pod: Pod = serde_json::from_value(json!({
        "metadata": {"name": "served", "labels": {"validation.ml.sigstore.dev/ml": "cv"}},
        "spec": {"containers": [{"name": "app", "image": "app", "command": ["sleep", "600"], "volumeMounts": [{"name": "data", "mountPath": "/data"}]}],
                 "volumes": [{"name": "data", "hostPath": {"path": tmp.path().join("data").to_str().unwrap()}}]}
    }))
    .unwrap();
    let created = Api::<Pod>::namespaced(client.clone(), &ns)
        .create(&PostParams::default(), &pod)
        .await
        .unwrap();
    let inits = created.spec.unwrap().init_containers.unwrap();
    assert_eq!(inits[1].name, "model-validation-watch");
    assert_eq!(inits[1].restart_policy.as_deref(), Some("Always"));

    let runner = PodRunner::new(client.clone(), RunnerConfig::default()).unwrap();
    let mut run = runner.run(&ns, "served").await.unwrap();
    let outcome = run
        .init_outcomes()
        .first()
        .map(|(n, t)| (n.clone(), t.exit_code));
    assert_eq!(
        outcome,
        Some(("model-validation".to_string(), 0)),
        "the one-shot check passes first"
    );

    let ready = wait_for(watch, "/readyz", "200", Duration::from_secs(30)).await;
    assert!(ready.contains("verified"), "{ready}");
    std::fs::write(model.join("weights.bin"), vec![2u8; 50_000]).unwrap();
    let not_ready = wait_for(watch, "/readyz", "503", Duration::from_secs(90)).await;
    assert!(not_ready.contains("weights.bin"), "{not_ready}");
    assert!(
        http_get(watch, "/healthz").unwrap().contains(" 200 "),
        "alive while not ready"
    );
    std::fs::write(model.join("weights.bin"), vec![1u8; 50_000]).unwrap();
    wait_for(watch, "/readyz", "200", Duration::from_secs(90)).await;
    run.stop_all();
}
