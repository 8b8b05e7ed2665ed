//! The operator's and the agent's images, built without a container engine as `make images`
//! builds them: reproducible (two builds, one digest), non-root (65532), with the entrypoint the
//! injected verifier relies on (the operator sets no `command`), labelled, self-contained (each
//! runs from nothing but its own layer, in a chroot, as UID 65532), read by skopeo, the
//! standard OCI tool, loaded and run by podman (`podman load`, what `docker load` does for
//! Docker users) without its network, and pushed by skopeo to a real registry (go-containerregistry's), which
//! then serves the manifest that was built.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use test_cluster::image::{Built, ImageSpec, NONROOT, build};
use test_cluster::support::{agent_binary, target_dir};

const AGENT_PATH: &str = "/usr/local/bin/model-signing";
const OPERATOR_PATH: &str = "/usr/local/bin/model-validation-operator";

fn spec(binary: PathBuf, path: &str, reference: &str) -> ImageSpec {
    ImageSpec {
        reference: reference.into(),
        binary,
        path: path.into(),
        cmd: Vec::new(),
        links: Vec::new(),
        files: Vec::new(),
        labels: BTreeMap::from([
            (
                "org.opencontainers.image.source".to_string(),
                "https://github.com/model-validation-operator/model-validation-operator"
                    .to_string(),
            ),
            (
                "org.opencontainers.image.version".to_string(),
                "0.1.0".to_string(),
            ),
        ]),
        created: 0,
    }
}

fn operator_binary() -> PathBuf {
    let path = target_dir().join("release/model-validation-operator");
    assert!(
        path.exists(),
        "{} is missing: run `make release`",
        path.display()
    );
    path
}

/// The blob `digest` of the OCI layout in `archive`.
fn blob(archive: &Path, digest: &str) -> Vec<u8> {
    let name = format!("blobs/sha256/{}", digest.trim_start_matches("sha256:"));
    file(archive, &name)
}

fn file(archive: &Path, name: &str) -> Vec<u8> {
    let mut tar = tar::Archive::new(std::fs::File::open(archive).unwrap());
    for entry in tar.entries().unwrap() {
        let mut entry = entry.unwrap();
        if entry.path().unwrap().to_str() == Some(name) {
            let mut out = Vec::new();
            std::io::Read::read_to_end(&mut entry, &mut out).unwrap();
            return out;
        }
    }
    panic!("{name} is not in {}", archive.display());
}

fn json(bytes: &[u8]) -> serde_json::Value {
    serde_json::from_slice(bytes).unwrap()
}

/// Unpacks the image's only layer into `root`, following index.json as an engine would.
fn unpack(archive: &Path, built: &Built, root: &Path) {
    let index = json(&file(archive, "index.json"));
    assert_eq!(index["manifests"][0]["digest"], built.digest.as_str());
    let manifest = json(&blob(archive, &built.digest));
    let layers = manifest["layers"].as_array().unwrap();
    assert_eq!(layers.len(), 1);
    assert_eq!(
        layers[0]["mediaType"],
        "application/vnd.oci.image.layer.v1.tar"
    );
    let layer = blob(archive, layers[0]["digest"].as_str().unwrap());
    let mut tar = tar::Archive::new(layer.as_slice());
    tar.set_preserve_ownerships(true);
    tar.unpack(root).unwrap();
}

/// Runs `args` in a chroot of `root` as the image's user.
fn run_as_nonroot(root: &Path, args: &[&str]) -> std::process::Output {
    Command::new("chroot")
        .arg(format!("--userspec={NONROOT}:{NONROOT}"))
        .arg(root)
        .args(args)
        .output()
        .expect("chroot runs (the tests run as root)")
}

/// podman with all its state (images, containers) under `dir`, touching nothing else: vfs
/// storage (no overlay mounts to leave behind), cgroupfs (no systemd here), no event log.
fn podman(dir: &Path) -> Command {
    let mut cmd = Command::new("podman");
    cmd.arg("--root")
        .arg(dir.join("storage"))
        .arg("--runroot")
        .arg(dir.join("run"))
        .args(["--storage-driver", "vfs", "--cgroup-manager", "cgroupfs"])
        .args(["--events-backend", "none"]);
    cmd
}

/// Runs `cmd` with `args` (a Debian tool `make test` installs: hack/debs.sh); its stdout, or
/// a panic with its stderr.
fn output_of(mut cmd: Command, args: &[&str]) -> String {
    let tool = cmd.get_program().to_string_lossy().into_owned();
    let out = cmd
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("{tool}: {e} (make test installs it: hack/debs.sh)"));
    assert!(
        out.status.success(),
        "{tool} {}: {}",
        args.join(" "),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn podman_ok(dir: &Path, args: &[&str]) -> String {
    output_of(podman(dir), args)
}

fn skopeo_ok(args: &[&str]) -> String {
    output_of(Command::new("skopeo"), args)
}

#[test]
fn images_are_reproducible_non_root_self_contained_and_readable_by_skopeo() {
    let tmp = tempfile::tempdir().unwrap();
    let registry = test_cluster::registry::Registry::start().unwrap();
    for (binary, path, reference, run) in [
        (
            agent_binary(),
            AGENT_PATH,
            "ghcr.io/model-validation-operator/model-signing:v0.1.0",
            "--version",
        ),
        (
            operator_binary(),
            OPERATOR_PATH,
            "ghcr.io/model-validation-operator/operator:v0.1.0",
            "--help",
        ),
    ] {
        let name = Path::new(path).file_name().unwrap().to_str().unwrap();
        let first = tmp.path().join(format!("{name}-1.tar"));
        let second = tmp.path().join(format!("{name}-2.tar"));
        let mut spec = spec(binary, path, reference);
        // The operator reads registries over TLS: hack/images.sh gives it this CA bundle.
        let bundle = "/etc/ssl/certs/ca-certificates.crt";
        if path == OPERATOR_PATH {
            spec.files = vec![(bundle.into(), bundle.into())];
        }
        let built = build(&spec, &first).unwrap();
        let again = build(&spec, &second).unwrap();
        assert_eq!(built.digest, again.digest, "{name}: two builds, one digest");
        assert!(
            std::fs::read(&first).unwrap() == std::fs::read(&second).unwrap(),
            "{name}: the archives are byte for byte the same"
        );

        // The configuration an engine runs.
        let config = json(&file(
            &first,
            &format!(
                "blobs/sha256/{}",
                json(&blob(&first, &built.digest))["config"]["digest"]
                    .as_str()
                    .unwrap()
                    .trim_start_matches("sha256:")
            ),
        ));
        assert_eq!(config["config"]["User"], "65532:65532", "{config}");
        assert_eq!(config["config"]["Entrypoint"], serde_json::json!([path]));
        let labels = &config["config"]["Labels"];
        assert_eq!(labels["org.opencontainers.image.version"], "0.1.0");
        assert!(labels["org.opencontainers.image.source"].is_string());
        assert!(
            labels["dev.model-validation-operator.base-packages"]
                .as_str()
                .is_some_and(|p| p.contains("libc6=")),
            "the libraries' Debian packages are named: {labels}"
        );
        // Docker's manifest.json points at the same blobs.
        let docker = json(&file(&first, "manifest.json"));
        assert_eq!(docker[0]["RepoTags"][0], reference);

        // Self-contained: nothing but the layer, as UID 65532.
        let root = tmp.path().join(format!("{name}-root"));
        unpack(&first, &built, &root);
        if path == OPERATOR_PATH {
            let copied = root.join(bundle.trim_start_matches('/'));
            assert_eq!(
                std::fs::read(&copied).unwrap(),
                std::fs::read(bundle).unwrap()
            );
            use std::os::unix::fs::PermissionsExt as _;
            assert_eq!(
                std::fs::metadata(&copied).unwrap().permissions().mode() & 0o777,
                0o644
            );
        }
        let out = run_as_nonroot(&root, &[path, run]);
        assert!(
            out.status.success(),
            "{name} {run} in its own layer: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        // Twin: without the libraries the layer carries, the binary cannot start.
        let bare = tmp.path().join(format!("{name}-bare"));
        std::fs::create_dir_all(bare.join("usr/local/bin")).unwrap();
        std::fs::copy(
            root.join(path.trim_start_matches('/')),
            bare.join(path.trim_start_matches('/')),
        )
        .unwrap();
        assert!(!run_as_nonroot(&bare, &[path, run]).status.success());

        // skopeo reads the archive: the same manifest digest, user and entrypoint.
        let inspect = Command::new("skopeo")
            .args(["inspect", "--config"])
            .arg(format!("oci-archive:{}", first.display()))
            .output()
            .expect("skopeo is installed (make test installs it: hack/debs.sh)");
        assert!(
            inspect.status.success(),
            "{}",
            String::from_utf8_lossy(&inspect.stderr)
        );
        let seen = json(&inspect.stdout);
        assert_eq!(seen["config"]["User"], "65532:65532");
        assert_eq!(seen["config"]["Entrypoint"], serde_json::json!([path]));
        let raw = Command::new("skopeo")
            .args(["inspect", "--raw"])
            .arg(format!("oci-archive:{}", first.display()))
            .output()
            .unwrap();
        assert_eq!(
            raw.stdout,
            blob(&first, &built.digest),
            "the manifest skopeo reads"
        );

        // podman loads the archive under its reference and runs it, as the image's user.
        // Its own short directory: podman refuses a runroot longer than 50 characters.
        let podman_dir = tempfile::tempdir().unwrap();
        let state = podman_dir.path();
        let archive = first.to_str().unwrap();
        let loaded = podman_ok(state, &["load", "--quiet", "--input", archive]);
        assert!(loaded.contains(reference), "{loaded}");
        let seen = podman_ok(
            state,
            &[
                "image",
                "inspect",
                "--format",
                "{{.Config.User}} {{json .Config.Entrypoint}}",
                reference,
            ],
        );
        assert_eq!(seen.trim(), format!("65532:65532 [\"{path}\"]"));
        // Explicit low limits: podman otherwise sets RLIMIT_NPROC and RLIMIT_NOFILE at or
        // above the host's, which runc is refused without the CAP_SYS_RESOURCE this VM's
        // bounding set lacks (`--ulimit host` too).
        let limits = [
            "--ulimit",
            "nofile=1024:1024",
            "--ulimit",
            "nproc=1024:1024",
        ];
        let mut args = vec!["run", "--rm", "--network", "none"];
        args.extend(limits);
        args.extend([reference, run]);
        let ran = podman_ok(state, &args);
        assert!(ran.contains(name), "{name} {run} under podman: {ran}");

        // skopeo pushes it to a real registry, and the registry serves the same manifest.
        let pushed = format!("{}/mvo/{name}:v0.1.0", registry.host());
        skopeo_ok(&[
            "copy",
            "--dest-tls-verify=false",
            // Without it skopeo gzips the layer on the way and the digest is not the built one.
            "--preserve-digests",
            &format!("oci-archive:{archive}"),
            &format!("docker://{pushed}"),
        ]);
        let served = skopeo_ok(&[
            "inspect",
            "--tls-verify=false",
            "--raw",
            &format!("docker://{pushed}"),
        ]);
        assert_eq!(
            served.as_bytes(),
            blob(&first, &built.digest),
            "{name}: the registry serves the manifest that was built (digest {})",
            built.digest
        );
        // And it came from this registry: its log has the manifest's upload.
        let put = format!("PUT /v2/mvo/{name}/manifests/v0.1.0");
        assert!(
            registry.requests().iter().any(|r| r.starts_with(&put)),
            "{put} is not in {:?}",
            registry.requests()
        );
    }
}

/// The Dockerfiles (for users with Docker; no engine or base image is available here to build
/// them) describe the images `make images` builds: the same package and binary from the same
/// release profile, at the same path, as the same user, with the same entrypoint. A drift in
/// either fails here.
#[test]
fn the_dockerfiles_build_the_same_binaries_as_the_same_user_and_entrypoint() {
    let docker = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../deploy/docker");
    for (file, package, path) in [
        ("agent.Dockerfile", "model-signing-cli", AGENT_PATH),
        (
            "operator.Dockerfile",
            "model-validation-operator",
            OPERATOR_PATH,
        ),
    ] {
        let text = std::fs::read_to_string(docker.join(file)).unwrap();
        let binary = Path::new(path).file_name().unwrap().to_str().unwrap();
        let lines: Vec<&str> = text
            .lines()
            .map(str::trim)
            .filter(|l| !l.starts_with('#') && !l.is_empty())
            .collect();
        for wanted in [
            format!("RUN cargo build --release --locked -p {package} --bin {binary}"),
            format!("COPY --from=build /src/target/release/{binary} {path}"),
            format!("USER {NONROOT}:{NONROOT}"),
            format!("ENTRYPOINT [\"{path}\"]"),
        ] {
            assert!(lines.contains(&wanted.as_str()), "{file} lacks `{wanted}`");
        }
        // The final stage is the one that runs: its ENTRYPOINT and USER come last.
        assert!(lines.last().unwrap().starts_with("ENTRYPOINT"), "{file}");
    }
}
