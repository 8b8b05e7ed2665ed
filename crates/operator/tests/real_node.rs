//! The install path for real: the operator installed with `helm install` of the chart
//! `deploy/helm/model-validation-operator` with default values, as docs/helm.md says (release
//! and namespace `model-validation-operator-system` created by helm), with its own image (two
//! replicas, leader election, the self-managed CA) on a real node — kubelet, containerd and
//! runc — and the API server calling its webhook through the Service's endpoints. On that
//! node, with model files owned by root with mode 0640 on a hostPath:
//! - read through a supplementary group the pod lists, the model verifies as UID 65532 and the
//!   app container starts (the passing twin);
//! - without that group, the verifier is refused the files, the app never starts, and the pod's
//!   status names the file and the fix;
//! - a tampered model never starts its app, and the pod's status carries the verifier's
//!   message (what `kubectl describe pod` shows);
//! - an app that mounts the model writable gets it read-only (the webhook's patch, enforced by
//!   runc: its write fails), while an unlabelled pod's writable mount stays writable (twin);
//! - the admission suite's main attacks (tests/attacks.rs) are refused with the same messages,
//!   and their twins run under runc's real mounts: a nested empty volume that hides a signed
//!   file makes the verifier fail naming it; a downloader init container, a `subPath` mount and
//!   a read-only ephemeral container run;
//! - a model signed with a certificate (the CA in the policy) and one signed keyless (the
//!   peer's golden Sigstore signature, verified offline) verify too;
//! - with continuous validation, the pod's real Ready condition (the kubelet probing the native
//!   sidecar) turns false when a model file is changed on the node and true when it is
//!   restored, while the app keeps running;
//! - the leader's pod deleted, labelled pods are still verified (every replica serves the
//!   webhook, the other takes the lease);
//! - the operator scaled to zero, labelled pods are refused (fail closed) while unlabelled ones
//!   are still admitted (the passing twin);
//! - the release uninstalled (its namespace with it), the kustomize base `deploy/base`
//!   installed on the same node (`support::install_base`, as `kubectl apply -k`) becomes
//!   available and verifies a labelled pod too.
//!
//! Both install paths thus run on a real node, and no other real-node test installs either:
//! tests/real_node_images.rs runs the operator's binary on the host. The full e2e runs against
//! the chart, whose default rendering tests/helm.rs checks equals `deploy/base` object for
//! object; the base's own install (its order of objects, no Helm) gets the shorter check at the
//! end rather than a second node and a second e2e.
//!
//! Needs the images of `make images` (target/images/{operator,agent}.tar) and helm from
//! `hack/testbin/build.sh`; `make test` builds both first.

mod support;

use std::net::{IpAddr, SocketAddr};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::{Namespace, Pod};
use kube::api::{Api, DeleteParams, ListParams, LogParams, Patch, PatchParams, PostParams};
use model_validation_operator::names::{LABEL, VERIFY_CONTAINER, WATCH_CONTAINER};
use model_validation_operator::webhook::inject::DEFAULT_WATCH_PORT;
use serde_json::{Value, json};
use support::{
    CodeSigningPki, create_mv, create_refused, fixture, fresh_key_signer, has_verifier,
    helm_install, helm_uninstall, http_get_at, install_base, sign,
    updates_cannot_undo_verification, verifier_status, wait_dry_run_admits, wait_for, write_model,
};
use test_cluster::node::BUSYBOX_IMAGE;
use test_cluster::{ControlPlane, StartOptions};

const NS: &str = "model-validation-operator-system";
/// The release name docs/helm.md installs as.
const RELEASE: &str = "model-validation-operator";
/// The group the model files belong to; the passing pod lists it in `supplementalGroups`.
const MODEL_GROUP: u32 = 4242;

fn image_archives() -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target/images");
    let archives = vec![dir.join("operator.tar"), dir.join("agent.tar")];
    for a in &archives {
        assert!(
            a.is_file(),
            "{} is missing: run `make images` (make test does)",
            a.display()
        );
    }
    archives
}

/// A signed model under `dir`: `dir/model` (files root:MODEL_GROUP, mode 0640) and the
/// signature `dir/model.sig`; directories stay traversable, as a hostPath usually is.
fn root_owned_model(dir: &Path, signer: &dyn model_signing::sign::Signer) {
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o755)).unwrap();
    let model = dir.join("model");
    write_model(&model);
    sign(&model, signer, &dir.join("model.sig"));
    std::fs::set_permissions(
        dir.join("model.sig"),
        std::fs::Permissions::from_mode(0o644),
    )
    .unwrap();
    for f in ["weights.bin", "config.json", "sub/tokenizer.json"] {
        let path = model.join(f);
        std::os::unix::fs::chown(&path, Some(0), Some(MODEL_GROUP)).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o640)).unwrap();
    }
}

/// A pod labelled for ModelValidation "mv" whose app sleeps, the model's host directory at
/// /data (read-only).
fn model_pod(name: &str, host_dir: &Path, supplemental_groups: &[u32]) -> Pod {
    model_pod_for("mv", name, host_dir, supplemental_groups)
}

/// [`model_pod`] labelled for the ModelValidation `mv`.
fn model_pod_for(mv: &str, name: &str, host_dir: &Path, supplemental_groups: &[u32]) -> Pod {
    serde_json::from_value(json!({
        "metadata": {"name": name, "labels": {LABEL: mv}},
        "spec": {
            "restartPolicy": "Never",
            "securityContext": {"supplementalGroups": supplemental_groups},
            "containers": [{
                "name": "app", "image": BUSYBOX_IMAGE, "imagePullPolicy": "Never",
                "command": ["/bin/sleep", "3600"],
                "volumeMounts": [{"name": "data", "mountPath": "/data", "readOnly": true}]
            }],
            "volumes": [{"name": "data", "hostPath": {"path": host_dir.to_str().unwrap(), "type": "Directory"}}]
        }
    }))
    .unwrap()
}

fn app_started(pod: &Pod) -> bool {
    pod.status
        .as_ref()
        .and_then(|s| s.container_statuses.as_ref())
        .is_some_and(|c| {
            c.iter().any(|c| {
                c.state
                    .as_ref()
                    .is_some_and(|s| s.running.is_some() || s.terminated.is_some())
            })
        })
}

/// How the verifier ended (it has, see [`verifier_done`]).
fn verifier_end(pod: &Pod) -> k8s_openapi::api::core::v1::ContainerStateTerminated {
    verifier_status(pod)
        .and_then(|v| v.state.as_ref()?.terminated.clone())
        .expect("the verifier has terminated")
}

/// Waits until the verifier of `name` has terminated; returns the pod then.
async fn verifier_done(pods: &Api<Pod>, name: &str) -> Pod {
    let what = format!("the verifier of {name} to finish");
    wait_for(&what, Duration::from_secs(120), || async move {
        let pod = pods.get(name).await.ok()?;
        let done = verifier_status(&pod)?.state.as_ref()?.terminated.is_some();
        done.then_some(pod)
    })
    .await
}

/// A busybox container (the node's image, never pulled) running `script` under sh.
fn busybox(name: &str, script: &str, mounts: Value) -> Value {
    json!({"name": name, "image": BUSYBOX_IMAGE, "imagePullPolicy": "Never",
           "command": ["/bin/sh", "-c", script], "volumeMounts": mounts})
}

/// A pod labelled for "mv", in MODEL_GROUP, with these init containers and containers; volume
/// `data` is the model's host directory and `other` an empty one.
fn shaped_pod(name: &str, data: &Path, other: &Path, init: Value, containers: Value) -> Pod {
    serde_json::from_value(json!({
        "metadata": {"name": name, "labels": {LABEL: "mv"}},
        "spec": {
            "restartPolicy": "Never",
            "securityContext": {"supplementalGroups": [MODEL_GROUP]},
            "initContainers": init,
            "containers": containers,
            "volumes": [
                {"name": "data", "hostPath": {"path": data.to_str().unwrap(), "type": "Directory"}},
                {"name": "other", "hostPath": {"path": other.to_str().unwrap(), "type": "Directory"}}]
        }
    }))
    .unwrap()
}

/// Waits until the app of `name` has started; returns the pod then.
async fn app_running(pods: &Api<Pod>, name: &str) -> Pod {
    let what = format!("the app of {name} to start");
    wait_for(&what, Duration::from_secs(60), || async move {
        let pod = pods.get(name).await.ok()?;
        app_started(&pod).then_some(pod)
    })
    .await
}

/// Waits until the verifier of `name` has passed and its app has started; returns the pod then.
async fn verified_and_running(pods: &Api<Pod>, name: &str) -> Pod {
    let end = verifier_end(&verifier_done(pods, name).await);
    assert_eq!(end.exit_code, 0, "{name}: {:?}", end.message);
    app_running(pods, name).await
}

/// The pod's Ready condition, as the kubelet reports it.
fn pod_ready(pod: &Pod) -> Option<bool> {
    let conditions = pod.status.as_ref()?.conditions.as_ref()?;
    let ready = conditions.iter().find(|c| c.type_ == "Ready")?;
    Some(ready.status == "True")
}

/// Waits until the Ready condition of `name` is `ready`; returns the pod then.
async fn readiness_is(pods: &Api<Pod>, name: &str, ready: bool, within: Duration) -> Pod {
    let what = format!("{name} to be reported Ready={ready}");
    wait_for(&what, within, || async move {
        let pod = pods.get(name).await.ok()?;
        (pod_ready(&pod)? == ready).then_some(pod)
    })
    .await
}

/// The admission suite's main attacks (tests/attacks.rs) against the operator installed on the
/// real node. Each is refused with the message the pod-runner suite expects, and its twin is
/// admitted and runs under runc's real mounts. `model` is a signed model's host directory
/// readable through MODEL_GROUP, `empty` an empty directory; `victim` a running verified pod.
async fn attacks_behave_as_on_the_pod_runner(
    pods: &Api<Pod>,
    model: &Path,
    empty: &Path,
    victim: &str,
) {
    let data = |path: &str| json!({"name": "data", "mountPath": path});
    let other = |path: &str| json!({"name": "other", "mountPath": path});
    let sleeper = |mounts: Value| busybox("app", "sleep 3600", mounts);

    // A volume nested below the model that another container does not see.
    let nested = sleeper(json!([data("/data"), other("/data/model/sub")]));
    let mut shipper = busybox("shipper", "sleep 3600", json!([data("/data")]));
    shipper["restartPolicy"] = json!("Always");
    let attack = shaped_pod("nested", model, empty, json!([shipper]), json!([nested]));
    let msg = create_refused(pods, &attack).await;
    for wanted in [
        "disagree about the files at /data/model",
        "\"shipper\" mounts nothing at /data/model/sub",
        "\"app\" mounts volume \"other\" at /data/model/sub",
    ] {
        assert!(msg.contains(wanted), "lacks {wanted:?}: {msg}");
    }
    // Twin: the app alone is admitted, and the verifier sees what runc shows the app: the
    // empty nested volume hides the signed sub/tokenizer.json, so it fails naming that file.
    let alone = shaped_pod("nested-alone", model, empty, json!([]), json!([nested]));
    pods.create(&PostParams::default(), &alone).await.unwrap();
    let pod = verifier_done(pods, "nested-alone").await;
    let end = verifier_end(&pod);
    assert_ne!(end.exit_code, 0);
    let message = end.message.unwrap_or_default();
    assert!(message.contains("tokenizer.json"), "{message}");
    assert!(
        !app_started(&pod),
        "the app of a failed verification must not start"
    );

    // A decoy init container on the signed volume while the app reads another one.
    let decoy = json!([busybox("decoy", "true", json!([data("/data")]))]);
    let app_on_other = json!([sleeper(json!([other("/data")]))]);
    let msg = create_refused(
        pods,
        &shaped_pod("decoy", model, empty, decoy, app_on_other),
    )
    .await;
    for wanted in [
        "\"decoy\" mounts volume \"data\" at /data",
        "\"app\" mounts volume \"other\" at /data",
    ] {
        assert!(msg.contains(wanted), "lacks {wanted:?}: {msg}");
    }
    // Twin: a downloader init container on the volume the app reads; the verifier runs after it.
    let fetch = json!([busybox("fetch", "ls /data/model", json!([data("/data")]))]);
    let app = json!([sleeper(json!([data("/data")]))]);
    let downloader = shaped_pod("downloader", model, empty, fetch, app);
    let created = pods
        .create(&PostParams::default(), &downloader)
        .await
        .unwrap();
    let inits = created.spec.unwrap().init_containers.unwrap();
    assert_eq!(
        inits.last().unwrap().name,
        VERIFY_CONTAINER,
        "the verifier is last"
    );
    verified_and_running(pods, "downloader").await;

    // subPathExpr on the model mount is refused; subPath mounts (file and directory) verify.
    let expr = json!([sleeper(
        json!([{"name": "data", "mountPath": "/data/model", "subPathExpr": "$(MODEL_DIR)"}])
    )]);
    let msg = create_refused(pods, &shaped_pod("expr", model, empty, json!([]), expr)).await;
    assert!(
        msg.contains("with subPathExpr") && msg.contains("use subPath"),
        "{msg}"
    );
    let sub = json!([sleeper(json!([
        {"name": "data", "mountPath": "/data/model", "subPath": "model"},
        {"name": "data", "mountPath": "/data/model.sig", "subPath": "model.sig"}
    ]))]);
    pods.create(
        &PostParams::default(),
        &shaped_pod("sub", model, empty, json!([]), sub),
    )
    .await
    .unwrap();
    verified_and_running(pods, "sub").await;

    // Updates of the running verified pod cannot undo its verification; a read-only
    // ephemeral container (kubectl debug) is admitted, and the kubelet runs it.
    updates_cannot_undo_verification(pods, victim).await;
    wait_for(
        "the read-only ephemeral container to run",
        Duration::from_secs(60),
        || async move {
            let pod = pods.get(victim).await.ok()?;
            let statuses = pod.status?.ephemeral_container_statuses?;
            let reader = statuses.into_iter().find(|c| c.name == "reader")?;
            (reader.state?.terminated?.exit_code == 0).then_some(())
        },
    )
    .await;
    let logs = pods
        .logs(
            victim,
            &LogParams {
                container: Some("reader".into()),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert!(
        logs.lines().any(|l| l == "model"),
        "the reader lists /data: {logs}"
    );
}

/// Creates `pod` once a dry run shows the webhook injecting its verifier: the ModelValidation
/// it names was just created, and the operator answers from a watch cache that may not have it
/// yet (a loaded machine delays the event by seconds).
async fn create_when_known(pods: &Api<Pod>, pod: &Pod) -> Pod {
    let name = pod.metadata.name.clone().unwrap_or_default();
    wait_dry_run_admits(
        pods,
        pod,
        &format!("the webhook to inject the verifier into {name}"),
        Duration::from_secs(60),
        has_verifier,
    )
    .await;
    pods.create(&PostParams::default(), pod)
        .await
        .unwrap_or_else(|e| panic!("creating {name}: {e}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn installed_with_helm_on_a_real_node_it_verifies_refuses_and_fails_closed() {
    test_cluster::install_crypto_provider();
    let began = Instant::now();
    let cp = ControlPlane::start_with(StartOptions {
        real_node: true,
        node_images: image_archives(),
        ..Default::default()
    })
    .await
    .unwrap();
    let client = cp.client().unwrap();
    let node_up = began.elapsed();

    // --- the install: the chart with default values, with the images `make images` built ---
    // helm creates CRDs (crds/) and then the rest in its own kind order, in one pass: the
    // availability wait below is what says the operator copes with that order.
    let notes = helm_install(cp.kubeconfig_path(), RELEASE, NS, &[]);
    assert!(notes.contains("STATUS: deployed"), "{notes}");
    let deployments: Api<Deployment> = Api::namespaced(client.clone(), NS);
    let deployments = &deployments;
    // Waits for both replicas; returns who manages the Deployment (helm labels what it owns).
    let both_available = |how: &'static str| async move {
        let what = format!("both operator replicas ({how}) to be available on the real node");
        let d = wait_for(&what, Duration::from_secs(180), || async move {
            let d = deployments.get("model-validation-operator").await.ok()?;
            (d.status.clone()?.available_replicas? == 2).then_some(d)
        })
        .await;
        let labels = d.metadata.labels.unwrap_or_default();
        labels.get("app.kubernetes.io/managed-by").cloned()
    };
    let managed_by = both_available("helm install").await;
    assert_eq!(
        managed_by.as_deref(),
        Some("Helm"),
        "the release's Deployment"
    );
    let installed = began.elapsed();

    // --- a signed model with root-owned 0640 files, and a tampered copy ---
    let (signer, pem) = fresh_key_signer();
    let good = tempfile::tempdir().unwrap();
    root_owned_model(good.path(), &signer);
    let bad = tempfile::tempdir().unwrap();
    root_owned_model(bad.path(), &signer);
    std::fs::write(bad.path().join("model/config.json"), "{\"layers\": 3}").unwrap();
    std::fs::set_permissions(
        bad.path().join("model/config.json"),
        std::fs::Permissions::from_mode(0o644),
    )
    .unwrap();

    let ns = cp.create_namespace("real").await.unwrap();
    create_mv(
        &client,
        &ns,
        json!({
            "apiVersion": "ml.sigstore.dev/v1alpha1", "kind": "ModelValidation",
            "metadata": {"name": "mv"},
            "spec": {"model": {"path": "/data/model", "signaturePath": "/data/model.sig"},
                     "config": {"publicKeyConfig": {"keyPem": pem}}}
        }),
    )
    .await
    .unwrap();
    let pods: Api<Pod> = Api::namespaced(client.clone(), &ns);
    let create = |name: &str, dir: &Path, groups: &[u32]| {
        let (pods, pod) = (pods.clone(), model_pod(name, dir, groups));
        async move { create_when_known(&pods, &pod).await }
    };

    // --- the passing twin: readable through the pod's supplementary group ---
    create("readable", good.path(), &[MODEL_GROUP]).await;
    let pod = verified_and_running(&pods, "readable").await;
    let uid = verifier_status(&pod)
        .unwrap()
        .user
        .as_ref()
        .and_then(|u| u.linux.as_ref())
        .map(|l| l.uid);
    assert_eq!(uid, Some(65532), "the verifier runs as the image's user");
    let verified = began.elapsed();

    // --- continuous validation: a watched pod turns Ready, then its model is changed ---
    let watched = tempfile::tempdir().unwrap();
    root_owned_model(watched.path(), &signer);
    create_mv(
        &client,
        &ns,
        json!({
            "apiVersion": "ml.sigstore.dev/v1alpha1", "kind": "ModelValidation",
            "metadata": {"name": "cv"},
            "spec": {"model": {"path": "/data/model", "signaturePath": "/data/model.sig"},
                     "config": {"publicKeyConfig": {"keyPem": pem}},
                     "continuousValidation": {"enabled": true, "interval": "1m"}}
        }),
    )
    .await
    .unwrap();
    create_when_known(
        &pods,
        &model_pod_for("cv", "watched", watched.path(), &[MODEL_GROUP]),
    )
    .await;
    let pod = readiness_is(&pods, "watched", true, Duration::from_secs(120)).await;
    let inits = pod.spec.as_ref().unwrap().init_containers.clone().unwrap();
    assert_eq!(
        inits[1].name, WATCH_CONTAINER,
        "a native sidecar after the verifier"
    );
    assert_eq!(inits[1].restart_policy.as_deref(), Some("Always"));
    let pod_ip: IpAddr = pod.status.unwrap().pod_ip.unwrap().parse().unwrap();
    let sidecar_at = SocketAddr::new(pod_ip, DEFAULT_WATCH_PORT);
    let weights = watched.path().join("model/weights.bin");
    let original = std::fs::read(&weights).unwrap();
    let mut changed = original.clone();
    changed[0] ^= 0xff;
    // Written in place: owner and mode stay, as when someone with write access edits a file.
    std::fs::write(&weights, &changed).unwrap();
    let tampered_at = Instant::now();

    // --- unreadable: the same model without the group ---
    create("unreadable", good.path(), &[]).await;
    let pod = verifier_done(&pods, "unreadable").await;
    let terminated = verifier_end(&pod);
    let message = terminated.message.unwrap_or_default();
    assert_ne!(terminated.exit_code, 0);
    for wanted in [
        "Permission denied",
        "the verifier runs as uid 65532",
        "spec.securityContext.supplementalGroups",
    ] {
        assert!(message.contains(wanted), "lacks {wanted:?}: {message}");
    }
    assert!(!app_started(&pod), "the app must not start");

    // --- tampered: the app never starts, the pod says why ---
    create("tampered", bad.path(), &[MODEL_GROUP]).await;
    let pod = verifier_done(&pods, "tampered").await;
    let terminated = verifier_end(&pod);
    let message = terminated.message.unwrap_or_default();
    assert_ne!(terminated.exit_code, 0);
    assert!(message.contains("config.json"), "{message}");
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert!(
        !app_started(&pods.get("tampered").await.unwrap()),
        "a tampered model's app must never start"
    );
    // --- an app mounting the model writable gets it read-only; an unlabelled pod's stays ---
    let scratch = tempfile::tempdir().unwrap();
    std::fs::set_permissions(scratch.path(), std::fs::Permissions::from_mode(0o777)).unwrap();
    for (name, labelled, dir) in [
        ("writer", true, good.path()),
        ("unlabelled-writer", false, scratch.path()),
    ] {
        let mut pod = model_pod(name, dir, &[MODEL_GROUP]);
        if !labelled {
            pod.metadata.labels = None;
        }
        let app = &mut pod.spec.as_mut().unwrap().containers[0];
        app.volume_mounts.as_mut().unwrap()[0].read_only = None;
        app.command = Some(vec![
            "/bin/sh".into(),
            "-c".into(),
            "if touch /data/written 2>/dev/null; then echo wrote; else echo refused; fi; sleep 3600"
                .into(),
        ]);
        pods.create(&PostParams::default(), &pod).await.unwrap();
    }
    let write_outcome = |name: &'static str| {
        let pods = pods.clone();
        async move {
            let what = format!("{name}'s app to try its write");
            let pods = &pods;
            wait_for(&what, Duration::from_secs(90), || async move {
                let logs = pods.logs(name, &Default::default()).await.ok()?;
                let line = logs.lines().next()?.to_string();
                Some(line)
            })
            .await
        }
    };
    assert_eq!(write_outcome("writer").await, "refused");
    assert!(!good.path().join("written").exists());
    assert_eq!(write_outcome("unlabelled-writer").await, "wrote");
    assert!(scratch.path().join("written").exists());

    // --- the two other methods: certificate (CA in the policy) and keyless (offline) ---
    let pki = CodeSigningPki::generate();
    let cert = tempfile::tempdir().unwrap();
    std::fs::set_permissions(cert.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    write_model(&cert.path().join("model"));
    sign(
        &cert.path().join("model"),
        &pki.signer,
        &cert.path().join("model.sig"),
    );
    let keyless = tempfile::tempdir().unwrap();
    std::fs::set_permissions(keyless.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    std::fs::create_dir_all(keyless.path().join("model")).unwrap();
    let golden = fixture("model-transparency/scripts/tests/v1.1.0-sigstore");
    for f in ["signme-1", "signme-2", "ignore-me"] {
        std::fs::copy(golden.join(f), keyless.path().join("model").join(f)).unwrap();
    }
    std::fs::copy(golden.join("model.sig"), keyless.path().join("model.sig")).unwrap();
    for (name, config) in [
        (
            "cert",
            json!({"pkiConfig": {"certificateAuthorityPem": pki.root_pem}}),
        ),
        (
            "keyless",
            json!({"sigstoreConfig": {"certificateIdentity": "stefanb@us.ibm.com",
                                              "certificateOidcIssuer": "https://sigstore.verify.ibm.com/oauth2"}}),
        ),
    ] {
        create_mv(
            &client,
            &ns,
            json!({
                "apiVersion": "ml.sigstore.dev/v1alpha1", "kind": "ModelValidation",
                "metadata": {"name": name},
                "spec": {"model": {"path": "/data/model", "signaturePath": "/data/model.sig"},
                         "config": config}
            }),
        )
        .await
        .unwrap();
    }
    for (mv, dir) in [("cert", cert.path()), ("keyless", keyless.path())] {
        let name = format!("{mv}-signed");
        create_when_known(&pods, &model_pod_for(mv, &name, dir, &[])).await;
        let pod = verifier_done(&pods, &name).await;
        let end = verifier_end(&pod);
        assert_eq!(end.exit_code, 0, "{name}: {:?}", end.message);
    }
    let refusals_checked = began.elapsed();

    // --- the admission suite's main attacks, on the real node ---
    let empty = tempfile::tempdir().unwrap();
    std::fs::set_permissions(empty.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    attacks_behave_as_on_the_pod_runner(&pods, good.path(), empty.path(), "readable").await;
    let attacks_checked = began.elapsed();

    // --- continuous validation: not ready while changed, ready again once restored ---
    let pod = readiness_is(&pods, "watched", false, Duration::from_secs(150)).await;
    let turned_not_ready = tampered_at.elapsed();
    let statuses = pod
        .status
        .unwrap()
        .init_container_statuses
        .unwrap_or_default();
    let sidecar = statuses.iter().find(|c| c.name == WATCH_CONTAINER).unwrap();
    assert!(!sidecar.ready, "the sidecar is the one not ready");
    assert!(
        app_started(&pods.get("watched").await.unwrap()),
        "the app keeps running"
    );
    // What the kubelet's probe read, asked on the pod's IP: the file, and alive meanwhile.
    let readyz = http_get_at(sidecar_at, "/readyz").expect("the sidecar answers on the pod IP");
    assert_eq!(readyz.status, 503, "{}", readyz.body);
    assert!(readyz.body.contains("weights.bin"), "{}", readyz.body);
    let healthz = http_get_at(sidecar_at, "/healthz").map(|r| r.status);
    assert_eq!(healthz, Some(200), "alive while not ready");
    std::fs::write(&weights, &original).unwrap();
    let restored_at = Instant::now();
    readiness_is(&pods, "watched", true, Duration::from_secs(150)).await;
    let turned_ready = restored_at.elapsed();
    let readyz = http_get_at(sidecar_at, "/readyz").expect("the sidecar answers on the pod IP");
    assert_eq!(readyz.status, 200, "{}", readyz.body);

    // --- the leader's pod is deleted: the other replica leads, labelled pods still verified ---
    let leader_deleted = began.elapsed();
    let leases: Api<Lease> = Api::namespaced(client.clone(), NS);
    let holder = |l: Lease| l.spec.and_then(|s| s.holder_identity).unwrap_or_default();
    let leader = holder(leases.get("model-validation-operator").await.unwrap());
    assert!(!leader.is_empty(), "a replica holds the lease");
    let operator_pods: Api<Pod> = Api::namespaced(client.clone(), NS);
    operator_pods
        .delete(&leader, &DeleteParams::default())
        .await
        .unwrap();
    let (leases, leader) = (&leases, &leader);
    wait_for(
        "another replica to take the lease",
        Duration::from_secs(120),
        || async move {
            let now = holder(leases.get("model-validation-operator").await.ok()?);
            (!now.is_empty() && now != *leader).then_some(())
        },
    )
    .await;
    let took_over = began.elapsed() - leader_deleted;
    create("after-leader-loss", good.path(), &[MODEL_GROUP]).await;
    let pod = verifier_done(&pods, "after-leader-loss").await;
    assert_eq!(verifier_end(&pod).exit_code, 0);

    // --- the operator stopped: labelled pods fail closed, unlabelled ones are admitted ---
    deployments
        .patch(
            "model-validation-operator",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"replicas": 0}})),
        )
        .await
        .unwrap();
    let operator_pods = &operator_pods;
    wait_for(
        "every operator pod to be gone",
        Duration::from_secs(120),
        || async move {
            let list = operator_pods.list(&ListParams::default()).await.ok()?;
            list.items.is_empty().then_some(())
        },
    )
    .await;
    let refused = pods
        .create(
            &PostParams::default(),
            &model_pod("while-stopped", good.path(), &[MODEL_GROUP]),
        )
        .await
        .expect_err("a labelled pod must not be admitted while no replica runs");
    assert!(
        refused.to_string().contains("failed calling webhook"),
        "refused by the webhook's failure policy: {refused}"
    );
    let mut plain = model_pod("unlabelled-while-stopped", good.path(), &[]);
    plain.metadata.labels = None;
    let admitted = pods.create(&PostParams::default(), &plain).await.unwrap();
    assert!(
        admitted
            .spec
            .and_then(|s| s.init_containers)
            .unwrap_or_default()
            .is_empty(),
        "an unlabelled pod never meets the webhook"
    );

    // --- deploy/base on the same node: the release uninstalled, kustomize's install verifies ---
    let stopped = began.elapsed();
    helm_uninstall(cp.kubeconfig_path(), RELEASE, NS);
    // The release's namespace goes with it (the chart rendered it); the base recreates it, which
    // the API server refuses while the old one is still terminating.
    let namespaces: Api<Namespace> = Api::all(client.clone());
    let namespaces = &namespaces;
    wait_for(
        "the release's namespace to be deleted",
        Duration::from_secs(180),
        || async move { namespaces.get_opt(NS).await.ok()?.is_none().then_some(()) },
    )
    .await;
    install_base(&client).await;
    let managed_by = both_available("deploy/base").await;
    assert_eq!(
        managed_by, None,
        "deploy/base's Deployment, not the release's"
    );
    create("from-base", good.path(), &[MODEL_GROUP]).await;
    verified_and_running(&pods, "from-base").await;
    let base_checked = began.elapsed() - stopped;
    eprintln!(
        "real node (helm install): node ready {:.1} s, operator installed and available {:.1} s, first verified pod running {:.1} s, continuous-validation pod Ready, refusals, certificate and keyless checked {:.1} s, attacks and twins {:.1} s, Ready=False {:.1} s after the model changed and Ready=True {:.1} s after it was restored (interval 1m), lease taken over {:.1} s after the leader's pod was deleted, release uninstalled and deploy/base installed, available and verifying {:.1} s, all {:.1} s",
        node_up.as_secs_f64(),
        (installed - node_up).as_secs_f64(),
        (verified - installed).as_secs_f64(),
        (refusals_checked - verified).as_secs_f64(),
        (attacks_checked - refusals_checked).as_secs_f64(),
        turned_not_ready.as_secs_f64(),
        turned_ready.as_secs_f64(),
        took_over.as_secs_f64(),
        base_checked.as_secs_f64(),
        began.elapsed().as_secs_f64()
    );
}
