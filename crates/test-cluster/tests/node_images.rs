//! Image volumes (`spec.volumes[].image`, GA in Kubernetes 1.36) on the real node: what
//! kubelet, containerd 2 and runc mount for the two shapes a model takes in a registry.
//!
//! - a modelcar (an ordinary OCI image whose tar layers, gzip or not, hold `/models/...`) mounts
//!   read-only: the pod reads every file with its content, by tag and by digest;
//! - a CNCF ModelPack artifact with raw layers (one file per layer, as `model-signing oci push`
//!   writes it) is pulled without any error (every blob fetched, "Successfully pulled image")
//!   and mounts as an EMPTY read-only directory: containerd unpacks only file system layer
//!   media types, so the model's files are silently missing. Same by digest.
//!
//! Both are pulled over HTTPS from a test registry. containerd's trust in it, pinned too: with
//! no `hosts.toml` a loopback registry's certificate is not verified at all (containerd's
//! default for localhost); with a `hosts.toml` naming another CA the pull is refused
//! (x509, ErrImagePull); with the registry's CA
//! ([`test_cluster::node::RealNode::trust_registry`]) the same pod's retry succeeds, without a
//! containerd restart.
//!
//! Each reference the pods use lives in a repository of its own: containerd answers a
//! reference it already pulled in that repository (tag or digest) as "already present", which
//! would hide the pull under test.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::{Duration, Instant};

use clap::Parser as _;
use k8s_openapi::api::core::v1::{Event, Pod};
use kube::api::{Api, ListParams, LogParams, PostParams};
use serde_json::{Value, json};
use sha2::{Digest as _, Sha256};
use test_cluster::node::BUSYBOX_IMAGE;
use test_cluster::registry::{Kind, Registry};
use test_cluster::support::registry_push::{push_image, request, tar_layer};
use test_cluster::{ControlPlane, StartOptions};

/// What every pod runs, its standard error into its standard output (one ordered log): how
/// /models is mounted (file system type, `ro`/`rw`), whether it can be written, the tree
/// (numeric owners; no `total` lines, which depend on the file system), two files' content and
/// the weights' SHA-256. The exit status is the last command's: 0 when the weights are there.
const SCRIPT: &str = r#"exec 2>&1
bb=/usr/local/bin/busybox
$bb grep ' /models ' /proc/mounts | while read -r dev dir fs opts rest; do echo "mount: $fs ${opts%%,*}"; done
echo probe > /models/probe && echo "write: ok"
ls -lnR /models | $bb grep -v '^total '
echo ==
cat /models/models/config.json; echo
cat /models/models/tokenizer/tokenizer.json; echo
$bb sha256sum /models/models/model.safetensors"#;

fn sha256(bytes: &[u8]) -> String {
    let hex: String = Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    format!("sha256:{hex}")
}

/// Pushes a modelcar to `repo:tag` ([`push_image`]); returns the manifest digest.
fn push_modelcar(r: &Registry, repo: &str, tag: &str, layers: &[(bool, Vec<u8>)]) -> String {
    let pinned = push_image(r, &format!("{}/{repo}:{tag}", r.host()), layers);
    pinned.rsplit_once('@').unwrap().1.to_string()
}

/// `model-signing oci push DIR REF --registry-ca CA`, run in process (on a thread of its own:
/// the command runs its own runtime). Returns the manifest's digest and the manifest.
fn model_signing_push(r: &Registry, dir: &Path, repo: &str, tag: &str) -> (String, Value) {
    let reference = format!("{}/{repo}:{tag}", r.host());
    let argv: Vec<String> = [
        "model-signing",
        "oci",
        "push",
        &dir.display().to_string(),
        &reference,
        "--registry-ca",
        &r.ca_file().unwrap().display().to_string(),
    ]
    .map(String::from)
    .into();
    let cli = model_signing_cli::Cli::try_parse_from(argv).unwrap();
    let code = std::thread::spawn(move || model_signing_cli::run(cli))
        .join()
        .unwrap();
    assert_eq!(
        code,
        std::process::ExitCode::SUCCESS,
        "oci push {reference}"
    );
    let resp = request(
        r,
        reqwest::Method::GET,
        &format!("{}/v2/{repo}/manifests/{tag}", r.base_url()),
    )
    .header("Accept", "application/vnd.oci.image.manifest.v1+json")
    .send()
    .unwrap();
    assert_eq!(resp.status().as_u16(), 200);
    let bytes = resp.bytes().unwrap();
    (sha256(&bytes), serde_json::from_slice(&bytes).unwrap())
}

/// The model's files, the same both ways.
const CONFIG: &[u8] = br#"{"architectures":["TinyLM"],"hidden_size":8}"#;
const TOKENIZER: &[u8] = br#"{"version":"1.0","model":{"type":"BPE"}}"#;
fn weights() -> Vec<u8> {
    (0..4096u32).map(|i| (i % 251) as u8).collect()
}

/// Pushes the model both ways: (a) a ModelPack artifact with raw layers, by
/// `model-signing oci push`, to `models/pack:v1` and `models/pack-pinned:v1`; (b) a modelcar to
/// `models/car`, `models/car-pinned`, `models/car-default` and `models/car-untrusted` (`:v1`),
/// the files under /models in a gzip layer and a plain tar one (each with the `models/`
/// directory, so the merged directory's owner and mode are the archives'). Returns both
/// manifest digests and the ModelPack manifest.
fn push_both(registry: &Registry) -> (String, String, Value) {
    let dir = tempfile::tempdir().unwrap();
    let model = dir.path().join("tiny");
    std::fs::create_dir_all(model.join("tokenizer")).unwrap();
    std::fs::write(model.join("config.json"), CONFIG).unwrap();
    std::fs::write(model.join("tokenizer/tokenizer.json"), TOKENIZER).unwrap();
    std::fs::write(model.join("model.safetensors"), weights()).unwrap();
    let (pack_digest, manifest) = model_signing_push(registry, &model, "models/pack", "v1");
    let (again, _) = model_signing_push(registry, &model, "models/pack-pinned", "v1");
    assert_eq!(again, pack_digest, "oci push is reproducible");
    let weights = weights();
    let layers = [
        (
            true,
            tar_layer(&[
                ("models/", b""),
                ("models/config.json", CONFIG),
                ("models/model.safetensors", &weights),
            ]),
        ),
        (
            false,
            tar_layer(&[
                ("models/", b""),
                ("models/tokenizer/", b""),
                ("models/tokenizer/tokenizer.json", TOKENIZER),
            ]),
        ),
    ];
    // The same image in more repositories: one per reference the pods use (see the top).
    let car_digest = push_modelcar(registry, "models/car", "v1", &layers);
    for repo in [
        "models/car-pinned",
        "models/car-default",
        "models/car-untrusted",
    ] {
        assert_eq!(push_modelcar(registry, repo, "v1", &layers), car_digest);
    }
    (pack_digest, car_digest, manifest)
}

/// A pod running [`SCRIPT`] in busybox with the image `reference` mounted read-only at /models.
fn model_pod(name: &str, reference: &str) -> Pod {
    serde_json::from_value(json!({
        "metadata": {"name": name},
        "spec": {
            "restartPolicy": "Never",
            "containers": [{
                "name": "main", "image": BUSYBOX_IMAGE, "imagePullPolicy": "Never",
                "command": ["/bin/sh", "-c", SCRIPT],
                "volumeMounts": [{"name": "model", "mountPath": "/models", "readOnly": true}]
            }],
            "volumes": [{"name": "model", "image": {"reference": reference, "pullPolicy": "IfNotPresent"}}]
        }
    }))
    .unwrap()
}

/// How a pod ended: its container's exit code, its log, its events (`type reason: message`,
/// oldest first) and how long after its creation it ended.
#[derive(Debug)]
struct Outcome {
    exit_code: i32,
    log: String,
    events: Vec<String>,
    after: Duration,
}

async fn events_of(events: &Api<Event>, name: &str) -> Vec<String> {
    let lp = ListParams::default().fields(&format!("involvedObject.name={name}"));
    let mut list = events.list(&lp).await.unwrap().items;
    list.sort_by_key(|e| e.first_timestamp.clone().map(|t| t.0));
    list.iter()
        .map(|e| {
            format!(
                "{} {}: {}",
                e.type_.clone().unwrap_or_default(),
                e.reason.clone().unwrap_or_default(),
                e.message.clone().unwrap_or_default()
            )
        })
        .collect()
}

/// Creates the pod and waits (at most 120 s) until its container has terminated.
async fn run_pod(pods: &Api<Pod>, events: &Api<Event>, name: &str, reference: &str) -> Outcome {
    let created = Instant::now();
    pods.create(&PostParams::default(), &model_pod(name, reference))
        .await
        .unwrap();
    ended(pods, events, name, reference, created).await
}

/// Waits (at most 120 s after `created`) until the pod's container has terminated.
async fn ended(
    pods: &Api<Pod>,
    events: &Api<Event>,
    name: &str,
    reference: &str,
    created: Instant,
) -> Outcome {
    loop {
        let pod = pods.get(name).await.unwrap();
        let terminated = pod
            .status
            .as_ref()
            .and_then(|s| s.container_statuses.as_ref())
            .and_then(|c| c.first())
            .and_then(|c| c.state.as_ref())
            .and_then(|s| s.terminated.clone());
        if let Some(t) = terminated {
            let after = created.elapsed();
            let params = LogParams {
                container: Some("main".into()),
                ..Default::default()
            };
            return Outcome {
                exit_code: t.exit_code,
                log: pods.logs(name, &params).await.unwrap(),
                events: events_of(events, name).await,
                after,
            };
        }
        assert!(
            created.elapsed() < Duration::from_secs(120),
            "pod {name} ({reference}) did not end in 120 s: {:#?}\nevents: {:#?}",
            pod.status,
            events_of(events, name).await
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Waits (at most 60 s) for the first event of the pod that starts with `prefix`.
async fn event(events: &Api<Event>, name: &str, prefix: &str) -> String {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let all = events_of(events, name).await;
        if let Some(e) = all.iter().find(|e| e.starts_with(prefix)) {
            return e.clone();
        }
        assert!(
            Instant::now() < deadline,
            "no {prefix:?} event for {name} in 60 s: {all:#?}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// `ls -lnR` lines made comparable: directory headers as they are; each entry as its mode,
/// owner and name, with the size and date of regular files (a directory's size and date depend
/// on the file system and the overlay); link counts dropped (ditto).
fn tree(log: &str) -> Vec<String> {
    let start = log
        .lines()
        .position(|l| l == "/models:")
        .expect("ls output");
    log.lines()
        .skip(start)
        .take_while(|l| *l != "==")
        .filter(|l| !l.is_empty())
        .map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            match f.len() {
                1 => l.to_string(),
                9 if f[0].starts_with('d') => format!("{} {}:{} {}/", f[0], f[2], f[3], f[8]),
                9 => format!(
                    "{} {}:{} {} {} {} {} {}",
                    f[0], f[2], f[3], f[4], f[5], f[6], f[7], f[8]
                ),
                _ => panic!("unexpected ls line {l:?} in\n{log}"),
            }
        })
        .collect()
}

/// The events of a pod whose image volume was pulled from `reference` and whose container
/// started: the pull, its success, the start, and no warning but MissingClusterDNS (the node
/// has no cluster DNS). Presence, not order: kubelet sends events asynchronously.
fn assert_pulled_and_ran(o: &Outcome, reference: &str) {
    let has = |prefix: &str| o.events.iter().any(|e| e.starts_with(prefix));
    assert!(
        has(&format!("Normal Pulling: Pulling image \"{reference}\"")),
        "{o:#?}"
    );
    assert!(
        has(&format!(
            "Normal Pulled: Successfully pulled image \"{reference}\" in "
        )),
        "{o:#?}"
    );
    assert!(has("Normal Started: Container started"), "{o:#?}");
    // The pull refused before the CA was trusted (the "untrusted" pod) and kubelet's back-off
    // after it are the only other warnings allowed.
    let warnings: Vec<&String> = o
        .events
        .iter()
        .filter(|e| e.starts_with("Warning ") && !e.starts_with("Warning MissingClusterDNS:"))
        .filter(|e| {
            !(reference.contains("/models/car-untrusted:")
                && (e.contains("x509: certificate signed by unknown authority")
                    || e.starts_with("Warning Failed: Error: ErrImagePull")
                    || e.starts_with("Warning Failed: Error: ImagePullBackOff")))
        })
        .collect();
    assert!(warnings.is_empty(), "{warnings:#?} in {o:#?}");
}

/// The type of the file system `path` is on (the longest mount point of /proc/mounts above
/// it).
fn fs_type_of(path: &Path) -> String {
    let mounts = std::fs::read_to_string("/proc/mounts").unwrap();
    mounts
        .lines()
        .filter_map(|l| {
            let f: Vec<&str> = l.split(' ').collect();
            (f.len() > 2 && path.starts_with(f[1])).then(|| (f[1].len(), f[2].to_string()))
        })
        .max()
        .map(|(_, fs)| fs)
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn image_volumes_mount_a_modelcar_but_a_raw_layer_modelpack_artifact_mounts_empty() {
    let began = Instant::now();
    let registry = Registry::builder()
        .kind(Kind::Referrers)
        .tls(true)
        .start()
        .unwrap();
    let host = registry.host();
    // reqwest's blocking client and `model-signing` run runtimes of their own: off this one.
    let (pack_digest, car_digest, manifest) =
        std::thread::scope(|s| s.spawn(|| push_both(&registry)).join().unwrap());
    // What was pushed is a ModelPack artifact with one raw layer per file.
    assert_eq!(
        manifest["artifactType"],
        "application/vnd.cncf.model.manifest.v1+json"
    );
    assert_eq!(
        manifest["config"]["mediaType"],
        "application/vnd.cncf.model.config.v1+json"
    );
    let layers: BTreeMap<&str, &str> = manifest["layers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| {
            (
                l["annotations"]["org.cncf.model.filepath"]
                    .as_str()
                    .unwrap(),
                l["mediaType"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        layers,
        BTreeMap::from([
            (
                "config.json",
                "application/vnd.cncf.model.weight.config.v1.raw"
            ),
            (
                "model.safetensors",
                "application/vnd.cncf.model.weight.v1.raw"
            ),
            (
                "tokenizer/tokenizer.json",
                "application/vnd.cncf.model.weight.config.v1.raw"
            ),
        ]),
        "{manifest}"
    );
    let pushed = began.elapsed();

    let cp = ControlPlane::start_with(StartOptions {
        real_node: true,
        ..Default::default()
    })
    .await
    .unwrap();
    let node = cp.node().expect("a real node");
    let node_ready = began.elapsed();
    let ns = cp.create_namespace("images").await.unwrap();
    let pods: Api<Pod> = Api::namespaced(cp.client().unwrap(), &ns);
    let events: Api<Event> = Api::namespaced(cp.client().unwrap(), &ns);

    // With no hosts.toml for it, containerd pulls from a loopback registry (127.0.0.1:PORT)
    // over HTTPS without verifying its certificate (then plain HTTP): its default for
    // localhost hosts.
    let default = format!("{host}/models/car-default:v1");
    let by_default = run_pod(&pods, &events, "default", &default).await;

    // With a hosts.toml naming another CA, containerd verifies, refuses the registry's
    // certificate, and the container never starts...
    let other = Registry::builder().tls(true).start().unwrap();
    node.trust_registry(&host, other.ca_file().unwrap())
        .unwrap();
    let untrusted = format!("{host}/models/car-untrusted:v1");
    let untrusted_created = Instant::now();
    pods.create(&PostParams::default(), &model_pod("untrusted", &untrusted))
        .await
        .unwrap();
    let refused = event(&events, "untrusted", "Warning Failed: ").await;
    assert!(
        refused.starts_with(&format!(
            "Warning Failed: Failed to pull image \"{untrusted}\": "
        )) && refused.contains(
            "tls: failed to verify certificate: x509: certificate signed by unknown authority"
        ),
        "{refused}"
    );
    let untrusted_refused = untrusted_created.elapsed();
    // ... until the hosts.toml names the registry's own CA: containerd reads it at the next
    // pull (kubelet's back-off retry of the same pod), no restart.
    node.trust_registry(&host, registry.ca_file().unwrap())
        .unwrap();

    let car_tag = format!("{host}/models/car:v1");
    let car_pinned = format!("{host}/models/car-pinned@{car_digest}");
    let pack_tag = format!("{host}/models/pack:v1");
    let pack_pinned = format!("{host}/models/pack-pinned@{pack_digest}");
    let (retried, car_by_tag, car_by_digest, pack_by_tag, pack_by_digest) = tokio::join!(
        ended(&pods, &events, "untrusted", &untrusted, untrusted_created),
        run_pod(&pods, &events, "car-tag", &car_tag),
        run_pod(&pods, &events, "car-digest", &car_pinned),
        run_pod(&pods, &events, "pack-tag", &pack_tag),
        run_pod(&pods, &events, "pack-digest", &pack_pinned),
    );
    let ran = began.elapsed();

    // The modelcar, by tag and by digest, and the first pod once the CA is trusted: every
    // file, with its content, on a read-only overlay.
    let weights_sha = &sha256(&weights())["sha256:".len()..];
    for (o, reference) in [
        (&car_by_tag, &car_tag),
        (&car_by_digest, &car_pinned),
        (&by_default, &default),
        (&retried, &untrusted),
    ] {
        assert_eq!(o.exit_code, 0, "{o:#?}");
        assert_pulled_and_ran(o, reference);
        let lines: Vec<&str> = o.log.lines().collect();
        assert_eq!(
            lines[..2],
            [
                "mount: overlay ro",
                "/bin/sh: can't create /models/probe: Read-only file system"
            ],
            "{o:#?}"
        );
        assert_eq!(
            tree(&o.log),
            [
                "/models:",
                "drwxr-xr-x 0:0 models/",
                "/models/models:",
                "-rw-r--r-- 0:0 44 Jan 1 1970 config.json",
                "-rw-r--r-- 0:0 4096 Jan 1 1970 model.safetensors",
                "drwxr-xr-x 0:0 tokenizer/",
                "/models/models/tokenizer:",
                "-rw-r--r-- 0:0 40 Jan 1 1970 tokenizer.json",
            ],
            "{o:#?}"
        );
        let after: Vec<&str> = o.log.split("==\n").nth(1).unwrap().lines().collect();
        assert_eq!(
            after,
            [
                std::str::from_utf8(CONFIG).unwrap().to_string(),
                std::str::from_utf8(TOKENIZER).unwrap().to_string(),
                format!("{weights_sha}  /models/models/model.safetensors"),
            ],
            "{o:#?}"
        );
    }

    // The ModelPack artifact, by tag and by digest: containerd pulls it (config and every raw
    // layer fetched, "Successfully pulled image") and the container starts with /models an
    // empty read-only directory. No error anywhere: the raw layers are not file system layers,
    // so nothing of them is unpacked. The model is simply missing.
    //
    // An image without file system layers is a snapshot without parents, which containerd's
    // overlayfs snapshotter mounts as a bind mount of an empty directory of its own: the
    // file system of the node's directory, not overlay.
    let empty = format!("mount: {} ro", fs_type_of(node.dir()));
    assert_ne!(empty, "mount: overlay ro");
    for (o, reference) in [(&pack_by_tag, &pack_tag), (&pack_by_digest, &pack_pinned)] {
        assert_eq!(o.exit_code, 1, "{o:#?}");
        assert_pulled_and_ran(o, reference);
        let lines: Vec<&str> = o.log.lines().collect();
        assert_eq!(
            lines,
            [
                empty.as_str(),
                "/bin/sh: can't create /models/probe: Read-only file system",
                "/models:",
                "==",
                "cat: can't open '/models/models/config.json': No such file or directory",
                "",
                "cat: can't open '/models/models/tokenizer/tokenizer.json': No such file or directory",
                "",
                "sha256sum: can't open '/models/models/model.safetensors': No such file or directory",
            ],
            "{o:#?}"
        );
    }
    // containerd did fetch the artifact's config and every raw layer (once: its content store
    // is shared by all repositories, so the pinned reference needed only the manifest).
    let requests = registry.requests();
    let config = std::iter::once(&manifest["config"]);
    for blob in config.chain(manifest["layers"].as_array().unwrap()) {
        let digest = blob["digest"].as_str().unwrap();
        let fetched = ["models/pack", "models/pack-pinned"]
            .iter()
            .any(|repo| requests.contains(&format!("GET /v2/{repo}/blobs/{digest} 200")));
        assert!(fetched, "{digest} never fetched: {requests:#?}");
    }

    let timings = [
        ("default (no hosts.toml)", by_default.after),
        ("untrusted refused", untrusted_refused),
        (
            "untrusted pod ended after the CA was trusted",
            retried.after,
        ),
        ("car by tag", car_by_tag.after),
        ("car by digest", car_by_digest.after),
        ("pack by tag", pack_by_tag.after),
        ("pack by digest", pack_by_digest.after),
    ];
    eprintln!(
        "pushed after {:.1} s; node Ready after {:.1} s (phases {:?}); all pods ended after {:.1} s ({:?});\nrefused: {refused}\nevents of the retried pod: {:#?}\nlogs:\n{}\n{}",
        pushed.as_secs_f64(),
        node_ready.as_secs_f64(),
        node.phases,
        ran.as_secs_f64(),
        timings,
        retried.events,
        car_by_digest.log,
        pack_by_digest.log,
    );
}
