//! The pod runner against the real API server: init containers in order,
//! read-only hostPath mounts, exit codes and termination messages in the pod
//! status, native sidecars, and the path-mapping fallback.

use std::path::Path;
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::{ContainerStatus, Pod};
use kube::api::{Api, DeleteParams, PostParams};
use serde_json::json;
use test_cluster::pod_runner::{ImageMap, Isolation, PodRunner, RunnerConfig};

fn runner(client: kube::Client, isolation: Isolation) -> PodRunner {
    PodRunner::new(
        client,
        RunnerConfig {
            images: ImageMap::new(),
            work_dir: None,
            isolation,
        },
    )
    .unwrap()
}

/// A client, a new namespace on the shared control plane, and the pods API there.
async fn pods_in_new_namespace(prefix: &str) -> (kube::Client, String, Api<Pod>) {
    let cp = test_cluster::shared().await.unwrap();
    let client = cp.client().unwrap();
    let ns = cp.create_namespace(prefix).await.unwrap();
    let api = Api::<Pod>::namespaced(client.clone(), &ns);
    (client, ns, api)
}

async fn create_pod(api: &Api<Pod>, pod: serde_json::Value) -> String {
    let pod: Pod = serde_json::from_value(pod).unwrap();
    let created = api.create(&PostParams::default(), &pod).await.unwrap();
    created.metadata.name.unwrap()
}

fn terminated(s: &ContainerStatus) -> (i32, String, String) {
    let t = s
        .state
        .as_ref()
        .and_then(|st| st.terminated.as_ref())
        .unwrap_or_else(|| panic!("{} has not terminated: {s:?}", s.name));
    (
        t.exit_code,
        t.reason.clone().unwrap_or_default(),
        t.message.clone().unwrap_or_default(),
    )
}

#[tokio::test]
async fn init_containers_run_in_order_with_read_only_mount_and_report_status() {
    let (client, ns, api) = pods_in_new_namespace("pod-runner").await;
    let model = tempfile::tempdir().unwrap();
    std::fs::write(model.path().join("model.bin"), "weights").unwrap();
    // Mount points that do not exist on the host are made for the run only.
    let term_dir = Path::new("/mvo-pod-runner-test-termination");
    let models_preexisting = Path::new("/models").exists();

    let name = create_pod(
        &api,
        json!({
            "metadata": { "name": "two-inits" },
            "spec": {
                "restartPolicy": "Never",
                "volumes": [{ "name": "models", "hostPath": { "path": model.path() } }],
                "initContainers": [
                    {
                        "name": "read-only-check",
                        "image": "busybox:1.36",
                        "command": ["/bin/sh", "-c", r#"
                            test "$(cat /models/model.bin)" = weights || { echo 'model not visible' > /dev/termination-log; exit 2; }
                            if err=$(touch /models/written 2>&1); then
                                echo 'write to the read-only mount succeeded' > /dev/termination-log; exit 1
                            fi
                            echo "write refused: $err" > /dev/termination-log
                        "#],
                        "volumeMounts": [{ "name": "models", "mountPath": "/models", "readOnly": true }]
                    },
                    {
                        "name": "second",
                        "image": "busybox:1.36",
                        "command": ["/bin/sh", "-c",
                            "echo second > /models/from-second && echo 'second ran, exiting 3' > \"$MSG\"; exit 3"],
                        "env": [{ "name": "MSG", "value": term_dir.join("message") }],
                        "terminationMessagePath": term_dir.join("message"),
                        "volumeMounts": [{ "name": "models", "mountPath": "/models" }]
                    }
                ],
                "containers": [{ "name": "main", "image": "busybox:1.36", "command": ["/bin/sleep", "300"] }]
            }
        }),
    )
    .await;

    let run = runner(client, Isolation::MountNamespace)
        .run(&ns, &name)
        .await
        .unwrap();
    assert_eq!(run.phase(), "Failed", "{run:?}");
    assert_eq!(run.init_outcomes().len(), 2, "{run:?}");

    // What the API server now holds, as a kubelet would have written it.
    let pod = api.get(&name).await.unwrap();
    let status = pod.status.unwrap();
    assert_eq!(status.phase.as_deref(), Some("Failed"));
    let inits = status.init_container_statuses.unwrap();
    let (code, reason, message) = terminated(&inits[0]);
    assert_eq!((code, reason.as_str()), (0, "Completed"), "{message}");
    assert!(message.starts_with("write refused: "), "{message}");
    assert!(message.contains("Read-only file system"), "{message}");
    let (code, reason, message) = terminated(&inits[1]);
    assert_eq!((code, reason.as_str()), (3, "Error"));
    assert_eq!(message, "second ran, exiting 3\n");
    let main = &status.container_statuses.unwrap()[0];
    let waiting = main.state.as_ref().unwrap().waiting.as_ref().unwrap();
    assert_eq!(waiting.reason.as_deref(), Some("PodInitializing"));
    let initialized = status
        .conditions
        .unwrap()
        .into_iter()
        .find(|c| c.type_ == "Initialized")
        .unwrap();
    assert_eq!(initialized.status, "False");

    // The read-only mount refused the write; the writable one let it through.
    assert!(!model.path().join("written").exists());
    assert_eq!(
        std::fs::read_to_string(model.path().join("from-second")).unwrap(),
        "second\n"
    );
    // Nothing of the run is left on the host.
    assert!(!term_dir.exists(), "{} left behind", term_dir.display());
    assert_eq!(Path::new("/models").exists(), models_preexisting);
}

#[tokio::test]
async fn native_sidecar_and_main_container_run_until_the_pod_is_deleted() {
    let (client, ns, api) = pods_in_new_namespace("sidecar").await;
    let name = create_pod(
        &api,
        json!({
            "metadata": { "name": "with-sidecar" },
            "spec": {
                "initContainers": [
                    { "name": "sidecar", "image": "busybox", "restartPolicy": "Always",
                      "command": ["/bin/sh", "-c", "exec sleep 300"] },
                    { "name": "after-sidecar", "image": "busybox", "command": ["/bin/true"] }
                ],
                "containers": [{ "name": "main", "image": "busybox", "command": ["/bin/sleep", "300"] }]
            }
        }),
    )
    .await;

    let mut run = runner(client, Isolation::Auto)
        .run(&ns, &name)
        .await
        .unwrap();
    assert_eq!(run.phase(), "Running", "{run:?}");
    let pids = run.running_pids();
    assert_eq!(
        pids.iter().map(|(n, _)| n.as_str()).collect::<Vec<_>>(),
        ["sidecar", "main"]
    );

    let status = api.get(&name).await.unwrap().status.unwrap();
    let inits = status.init_container_statuses.unwrap();
    assert!(
        inits[0].state.as_ref().unwrap().running.is_some(),
        "{:?}",
        inits[0]
    );
    assert_eq!((inits[0].started, inits[0].ready), (Some(true), true));
    assert_eq!(terminated(&inits[1]).0, 0);
    assert!(
        status.container_statuses.unwrap()[0]
            .state
            .as_ref()
            .unwrap()
            .running
            .is_some()
    );

    let watch = tokio::spawn(run.until_deleted());
    tokio::time::sleep(Duration::from_millis(700)).await;
    for (name, pid) in &pids {
        assert!(
            Path::new(&format!("/proc/{pid}")).exists(),
            "{name} stopped early"
        );
    }
    api.delete(&name, &DeleteParams::default()).await.unwrap();
    tokio::time::timeout(Duration::from_secs(20), watch)
        .await
        .expect("the runner noticed the deletion")
        .unwrap()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(5);
    for (name, pid) in &pids {
        while Path::new(&format!("/proc/{pid}")).exists() && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        assert!(
            !Path::new(&format!("/proc/{pid}")).exists(),
            "{name} still runs"
        );
    }
}

#[tokio::test]
async fn path_mapping_fallback_rewrites_mount_paths() {
    let model = tempfile::tempdir().unwrap();
    std::fs::write(model.path().join("model.bin"), "mapped weights").unwrap();
    let (client, ns, api) = pods_in_new_namespace("mapping").await;
    let name = create_pod(
        &api,
        json!({
            "metadata": { "name": "mapped" },
            "spec": {
                "restartPolicy": "Never",
                "volumes": [{ "name": "models", "hostPath": { "path": model.path() } }],
                "initContainers": [{
                    "name": "copy", "image": "busybox",
                    // Whole arguments that start with a mountPath (and the
                    // termination message path) are rewritten to host paths.
                    "command": ["/bin/cp", "/models/model.bin", "/dev/termination-log"],
                    "volumeMounts": [{ "name": "models", "mountPath": "/models", "readOnly": true }]
                }],
                "containers": [{ "name": "main", "image": "busybox", "command": ["/bin/true"] }]
            }
        }),
    )
    .await;
    let run = runner(client, Isolation::PathMapping)
        .run(&ns, &name)
        .await
        .unwrap();
    let (_, t) = &run.init_outcomes()[0];
    assert_eq!((t.exit_code, t.reason.as_str()), (0, "Completed"));
    assert_eq!(t.message, "mapped weights");
}

/// The verification agent's image runs `target/release/model-signing`
/// (built by `make test` through its `release` prerequisite). A missing or
/// stale binary fails the test with the command that builds it.
#[tokio::test]
async fn verifier_image_runs_the_locally_built_model_signing() {
    let binary = test_cluster::support::agent_binary();
    let images = ImageMap::from_env();
    let image = format!("{}:v0.1.0", test_cluster::pod_runner::VERIFIER_IMAGE);
    assert_eq!(images.resolve(&image), Some(binary.as_path()));
    let (client, ns, api) = pods_in_new_namespace("verifier").await;
    let name = create_pod(
        &api,
        json!({
            "metadata": { "name": "verifier" },
            "spec": {
                "restartPolicy": "Never",
                "initContainers": [{
                    "name": "model-validation", "image": image,
                    // As in the image: the entrypoint's path differs from ours.
                    "command": ["/usr/local/bin/model-signing"], "args": ["--version"],
                    "terminationMessagePolicy": "FallbackToLogsOnError"
                }],
                "containers": [{ "name": "main", "image": "busybox", "command": ["/bin/true"] }]
            }
        }),
    )
    .await;
    let run = PodRunner::new(
        client,
        RunnerConfig {
            images,
            work_dir: None,
            isolation: Isolation::Auto,
        },
    )
    .unwrap()
    .run(&ns, &name)
    .await
    .unwrap();
    let (_, t) = &run.init_outcomes()[0];
    assert_eq!((t.exit_code, t.reason.as_str()), (0, "Completed"), "{t:?}");
    assert!(
        run.logs("model-validation").starts_with("model-signing "),
        "{}",
        run.logs("model-validation")
    );
}
