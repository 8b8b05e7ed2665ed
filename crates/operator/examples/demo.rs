//! `make demo`: against a running local control plane with the operator and the pod runner,
//! sign a model, show a labelled pod verified and a tampered one refused, with the reason.
//!
//! Usage: demo MODEL_DIR KEYS_DIR MODEL_SIGNING_BINARY (KUBECONFIG must be set).

use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use k8s_openapi::api::core::v1::{Namespace, Pod};
use kube::api::{Api, DeleteParams, DynamicObject, PostParams};
use kube::core::{ApiResource, GroupVersionKind};
use serde_json::json;

const NS: &str = "model-validation-demo";

fn step(text: &str) {
    println!("\n==> {text}");
}

fn pod(name: &str, mv: &str, data: &str) -> Result<Pod> {
    Ok(serde_json::from_value(json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": name, "labels": {"validation.ml.sigstore.dev/ml": mv}},
        "spec": {
            "restartPolicy": "Never",
            "containers": [{"name": "inference", "image": "demo/inference", "command": ["sleep", "5"],
                            "volumeMounts": [{"name": "models", "mountPath": "/models", "readOnly": true}]}],
            "volumes": [{"name": "models", "hostPath": {"path": data}}]
        }
    }))?)
}

/// Waits until the pod runner has run the verifier and returns (exit code, message).
async fn verifier_result(pods: &Api<Pod>, name: &str) -> Result<(i32, String)> {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let p = pods.get(name).await?;
        let done = p
            .status
            .and_then(|s| s.init_container_statuses)
            .into_iter()
            .flatten()
            .find(|s| s.name == "model-validation")
            .and_then(|s| s.state.and_then(|st| st.terminated));
        if let Some(t) = done {
            return Ok((t.exit_code, t.message.unwrap_or_default()));
        }
        if Instant::now() > deadline {
            bail!(
                "pod {name} did not run its verifier within 60 s (is the pod runner up? make cluster-up)"
            );
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// The ModelValidation's status once it counts `verified` and `failed` pods (the controller
/// writes it a moment after the verifiers finish).
async fn wait_for_counts(
    mvs: &Api<DynamicObject>,
    name: &str,
    verified: i64,
    failed: i64,
) -> Result<serde_json::Value> {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let status = mvs.get(name).await?.data["status"].clone();
        if status["verifiedCount"].as_i64() == Some(verified)
            && status["failedCount"].as_i64() == Some(failed)
        {
            return Ok(status);
        }
        if Instant::now() > deadline {
            bail!(
                "the status of ModelValidation {name} did not count the pods within 30 s: {status}"
            );
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
}

/// The columns `kubectl get mv` prints (the CRD's printer columns).
fn print_mv_table(name: &str, status: &serde_json::Value) {
    let ready = status["conditions"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|c| c["type"] == "Ready")
        .and_then(|c| c["status"].as_str())
        .unwrap_or("Unknown");
    let text = |v: &serde_json::Value| match v {
        serde_json::Value::String(s) => s.clone(),
        serde_json::Value::Null => "-".into(),
        other => other.to_string(),
    };
    println!(
        "{:<6} {:<12} {:<6} {:<14} {:<9} {:<7}",
        "NAME", "AUTH METHOD", "READY", "INJECTED PODS", "VERIFIED", "FAILED"
    );
    println!(
        "{:<6} {:<12} {:<6} {:<14} {:<9} {:<7}",
        name,
        text(&status["authMethod"]),
        ready,
        text(&status["injectedPodCount"]),
        text(&status["verifiedCount"]),
        text(&status["failedCount"])
    );
    if let Some(failure) = status["lastFailure"].as_object() {
        println!(
            "last failure: pod {}: {}",
            text(&failure["pod"]),
            text(&failure["message"]).trim_end()
        );
    }
}

/// The Events the operator recorded in the demo's namespace, oldest first, as `kubectl get
/// events` shows them (type, reason, object, message).
async fn print_events(client: &kube::Client) -> Result<()> {
    use k8s_openapi::api::events::v1::Event;
    let events: Api<Event> = Api::namespaced(client.clone(), NS);
    let mut list = events.list(&Default::default()).await?.items;
    list.retain(|e| {
        e.reporting_controller
            .as_deref()
            .is_some_and(|c| c.contains("model-validation"))
    });
    list.sort_by_key(|e| e.event_time.as_ref().map(|t| t.0));
    if list.is_empty() {
        println!("(none yet)");
    }
    for e in list {
        let regarding = e.regarding.unwrap_or_default();
        println!(
            "{} {} {}/{}: {}",
            e.type_.unwrap_or_default(),
            e.reason.unwrap_or_default(),
            regarding.kind.unwrap_or_default(),
            regarding.name.unwrap_or_default(),
            e.note.unwrap_or_default().trim_end()
        );
    }
    Ok(())
}

#[tokio::main]
async fn main() -> Result<()> {
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    let args: Vec<String> = std::env::args().collect();
    let [_, data, keys, signer] = args.as_slice() else {
        bail!("usage: demo DATA_DIR KEYS_DIR MODEL_SIGNING_BINARY")
    };
    let (data, keys) = (PathBuf::from(data), PathBuf::from(keys));
    let client = kube::Client::try_default()
        .await
        .context("set KUBECONFIG to the local control plane (make cluster-up)")?;

    step("signing the model with an EC P-256 key (model-signing sign key)");
    let out = Command::new(signer)
        .args(["sign", "key"])
        .arg(data.join("model"))
        .arg("--private-key")
        .arg(keys.join("signer.key"))
        .arg("--signature")
        .arg(data.join("model.sig"))
        .output()?;
    print!("{}", String::from_utf8_lossy(&out.stdout));
    if !out.status.success() {
        bail!("signing failed: {}", String::from_utf8_lossy(&out.stderr));
    }

    step(&format!(
        "namespace {NS} with a ModelValidation 'demo' (public key method, the key in the policy)"
    ));
    let namespaces: Api<Namespace> = Api::all(client.clone());
    let _ = namespaces.delete(NS, &DeleteParams::default()).await;
    while namespaces.get_opt(NS).await?.is_some() {
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    namespaces
        .create(
            &PostParams::default(),
            &serde_json::from_value(json!({"metadata": {"name": NS}}))?,
        )
        .await?;
    // The policy carries the public key: nothing on the pod's volumes decides who is trusted.
    let key_pem = std::fs::read_to_string(keys.join("signer.pub"))?;
    let gvk = GroupVersionKind::gvk("ml.sigstore.dev", "v1alpha1", "ModelValidation");
    let mvs: Api<DynamicObject> =
        Api::namespaced_with(client.clone(), NS, &ApiResource::from_gvk(&gvk));
    let mv: DynamicObject = serde_json::from_value(json!({
        "apiVersion": "ml.sigstore.dev/v1alpha1", "kind": "ModelValidation", "metadata": {"name": "demo"},
        "spec": {"model": {"path": "/models/model", "signaturePath": "/models/model.sig"},
                 "config": {"publicKeyConfig": {"keyPem": key_pem}}}
    }))?;
    mvs.create(&PostParams::default(), &mv).await?;
    println!("created ModelValidation {NS}/demo");

    let pods: Api<Pod> = Api::namespaced(client.clone(), NS);
    let data_str = data.to_str().context("non-UTF-8 path")?;

    step("pod 'signed-model' labelled validation.ml.sigstore.dev/ml=demo");
    let created = pods
        .create(
            &PostParams::default(),
            &pod("signed-model", "demo", data_str)?,
        )
        .await?;
    let injected = created
        .spec
        .and_then(|s| s.init_containers)
        .unwrap_or_default();
    println!(
        "the webhook injected init container {:?}: model-signing {}",
        injected[0].name,
        injected[0].args.clone().unwrap_or_default().join(" ")
    );
    let (code, message) = verifier_result(&pods, "signed-model").await?;
    println!("verifier exit code {code}: {}", message.trim_end());
    if code != 0 {
        bail!("the signed model should have verified");
    }

    step("someone swaps a byte in the weights; pod 'tampered-model'");
    let weights = data.join("model/weights.bin");
    let mut bytes = std::fs::read(&weights)?;
    bytes[1000] ^= 0xff;
    std::fs::write(&weights, bytes)?;
    pods.create(
        &PostParams::default(),
        &pod("tampered-model", "demo", data_str)?,
    )
    .await?;
    let (code, message) = verifier_result(&pods, "tampered-model").await?;
    println!("verifier exit code {code}: {}", message.trim_end());
    let phase = pods
        .get("tampered-model")
        .await?
        .status
        .and_then(|s| s.phase)
        .unwrap_or_else(|| "unknown".into());
    println!("the pod never starts its inference container: it is {phase}");
    if code == 0 {
        bail!("the tampered model must not verify");
    }

    step("what the platform team sees: kubectl get mv -n model-validation-demo");
    let status = wait_for_counts(&mvs, "demo", 1, 1).await?;
    print_mv_table("demo", &status);
    step("and kubectl get events -n model-validation-demo (the operator's)");
    print_events(&client).await?;

    step("pod 'unknown-policy' names a ModelValidation that does not exist");
    match pods
        .create(
            &PostParams::default(),
            &pod("unknown-policy", "no-such-policy", data_str)?,
        )
        .await
    {
        Err(kube::Error::Api(e)) => println!("refused at admission: {}", e.message),
        Err(e) => return Err(e.into()),
        Ok(_) => bail!("a pod naming a missing ModelValidation must be refused"),
    }

    step("cleaning up");
    namespaces.delete(NS, &DeleteParams::default()).await?;
    println!("deleted namespace {NS}");
    Ok(())
}
