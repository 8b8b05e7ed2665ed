//! Helpers shared by this crate's integration tests: the binary, fixtures, streams, models,
//! HTTP, and the Python peer.
// Each test file compiles this module into its own binary and uses only part of it: unused
// helpers there are expected, not dead.
#![allow(dead_code)]

use std::fs;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;
use std::time::Duration;

/// The `model-signing` binary built for these tests.
pub const BIN: &str = env!("CARGO_BIN_EXE_model-signing");
/// The shared, read-only fixtures (read in place, never copied into the repository).
pub const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../../shared/fixtures");

/// A fixture by its path under [`FIXTURES`].
pub fn fixture(rel: &str) -> PathBuf {
    Path::new(FIXTURES).join(rel)
}

/// Runs the binary to completion.
pub fn run(args: &[&str]) -> Output {
    Command::new(BIN).args(args).output().unwrap()
}

/// `verify key MODEL --signature SIG --public-key KEY`, to extend with more flags.
pub fn verify_key_args<'a>(model: &'a Path, sig: &'a Path, key: &'a Path) -> Vec<&'a str> {
    vec![
        "verify",
        "key",
        s(model),
        "--signature",
        s(sig),
        "--public-key",
        s(key),
    ]
}

/// A path as an argument.
pub fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// Standard output as text.
pub fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// Standard error as text.
pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// A small model directory `dir/model`: two files at the root and one in `sub/`.
pub fn model(dir: &Path) -> PathBuf {
    let m = dir.join("model");
    fs::create_dir_all(m.join("sub")).unwrap();
    fs::write(m.join("weights.bin"), vec![3u8; 5000]).unwrap();
    fs::write(m.join("config.json"), "{}").unwrap();
    fs::write(m.join("sub/tok.json"), "[]").unwrap();
    m
}

/// A model of the peer's test tree (`model-transparency/scripts/tests/NAME`), with its
/// `model.sig`.
pub fn golden(name: &str) -> PathBuf {
    fixture("model-transparency/scripts/tests").join(name)
}

/// Signs `m` with the peer-samples P-256 key into `m.sig` beside it (outside the model), with
/// `extra` sign flags; returns the signature path.
pub fn sign_with_key(m: &Path, extra: &[&str]) -> PathBuf {
    let sig = m.with_extension("sig");
    sign_with_key_to(m, &sig, extra);
    sig
}

/// [`sign_with_key`] into `sig` (inside the model or not).
pub fn sign_with_key_to(m: &Path, sig: &Path, extra: &[&str]) {
    let key = fixture("peer-samples/ec-p256.priv.pem");
    let mut args = vec!["sign", "key", s(m), "--private_key", s(&key), "--signature"];
    args.push(s(sig));
    args.extend_from_slice(extra);
    let o = run(&args);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
}

/// Signs `m` into `sig` with the peer-samples PKI: the leaf with key usage and codeSigning,
/// its intermediate shipped in the signature (verify against `pki/root-ca.cert.pem` at
/// [`AT_TIME`]).
pub fn sign_with_certificate(m: &Path, sig: &Path) {
    let mut args = vec!["sign".to_string(), "certificate".into(), s(m).into()];
    args.extend(["--signature".into(), s(sig).into()]);
    args.extend(certificate_signer_flags());
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let o = run(&args);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
}

/// The signer flags of `sign certificate` and `oci sign certificate` with the peer-samples PKI:
/// the leaf's key, the leaf (key usage and codeSigning) and its intermediate.
pub fn certificate_signer_flags() -> Vec<String> {
    let pki = fixture("peer-samples/pki");
    [
        "--private_key",
        s(&pki.join("leaf.key.pem")),
        "--signing_certificate",
        s(&pki.join("leaf-ku-eku.cert.pem")),
        "--certificate_chain",
        s(&pki.join("int-ca.cert.pem")),
    ]
    .map(String::from)
    .to_vec()
}

/// A `--output json` run that must have succeeded: its JSON.
pub fn json_ok(o: &Output) -> serde_json::Value {
    assert_eq!(o.status.code(), Some(0), "{}{}", stdout(o), stderr(o));
    json(o)
}

/// A `--output json` run that must have failed (exit 1): its error kind and message.
pub fn json_refused(o: &Output) -> (String, String) {
    assert_eq!(o.status.code(), Some(1), "{}{}", stdout(o), stderr(o));
    let v = json(o);
    assert_eq!(v["ok"], false, "{v}");
    (
        v["error"]["kind"].as_str().unwrap().to_string(),
        v["error"]["message"].as_str().unwrap().to_string(),
    )
}

/// Signs the directory `m` with the Python peer's `sign key` and the peer-samples key, into
/// `dir/peer.sig`; returns that path.
pub fn peer_sign_key(dir: &Path, m: &Path) -> PathBuf {
    let sig = dir.join("peer.sig");
    let o = peer_cli(
        dir,
        &[
            "sign",
            "key",
            s(m),
            "--private_key",
            s(&fixture("peer-samples/ec-p256.priv.pem")),
            "--signature",
            s(&sig),
        ],
    );
    assert_eq!(o.status.code(), Some(0), "{}{}", stdout(&o), stderr(&o));
    sig
}

/// Standard output parsed as one JSON value.
pub fn json(o: &Output) -> serde_json::Value {
    serde_json::from_slice(&o.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&o.stdout)))
}

/// `--at-time` for `verify certificate` on the peer-samples PKI: 2027-05-01T00:00:00Z, inside
/// the validity of its leaves (2026-11-24..2027-11-24), so that these tests do not start
/// failing when the leaves expire.
pub const AT_TIME: &str = "1809129600";

/// A TCP port that was free a moment ago on 127.0.0.1.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// GET `path` over plain HTTP/1.1: (status, body).
pub fn get(addr: SocketAddr, path: &str) -> std::io::Result<(u16, String)> {
    let mut c = TcpStream::connect_timeout(&addr, Duration::from_secs(2))?;
    c.set_read_timeout(Some(Duration::from_secs(5)))?;
    c.set_write_timeout(Some(Duration::from_secs(5)))?;
    write!(
        c,
        "GET {path} HTTP/1.1\r\nHost: agent\r\nConnection: close\r\n\r\n"
    )?;
    let mut raw = String::new();
    c.read_to_string(&mut raw)?;
    let (head, body) = raw.split_once("\r\n\r\n").unwrap_or((&raw, ""));
    let status = head
        .split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    Ok((status, body.to_string()))
}

/// The version of the peer that these tests are written against.
pub const PEER_VERSION: &str = "1.1.1";

/// The workspace root.
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// The peer venv's interpreter: `MODEL_SIGNING_PEER_PYTHON`, else `target/peer-venv/bin/python`.
/// Fails (never skips) when it is missing or its `model-signing` is not exactly
/// [`PEER_VERSION`]; the version is checked once per test binary.
pub fn peer_python() -> PathBuf {
    static CHECKED: OnceLock<PathBuf> = OnceLock::new();
    CHECKED.get_or_init(find_peer_python).clone()
}

fn find_peer_python() -> PathBuf {
    let (python, source) = match std::env::var_os("MODEL_SIGNING_PEER_PYTHON") {
        Some(p) if !p.is_empty() => (PathBuf::from(p), "MODEL_SIGNING_PEER_PYTHON"),
        _ => (
            repo_root().join("target/peer-venv/bin/python"),
            "the default location",
        ),
    };
    assert!(
        python.exists(),
        "the Python peer (model-signing {PEER_VERSION}) is not installed: {} (from {source}) does \
         not exist. Run `make peer-venv` (`make test` does it), or point MODEL_SIGNING_PEER_PYTHON \
         at a Python with model-signing=={PEER_VERSION} and pyopenssl.",
        python.display()
    );
    let out = Command::new(&python)
        .args([
            "-c",
            "import importlib.metadata as m; print(m.version('model-signing'))",
        ])
        .output()
        .unwrap_or_else(|e| panic!("cannot run the peer's Python {}: {e}", python.display()));
    let version = String::from_utf8_lossy(&out.stdout).trim().to_string();
    assert!(
        out.status.success() && version == PEER_VERSION,
        "the peer at {} (from {source}) has model-signing {:?}, not {PEER_VERSION}: these tests \
         compare against {PEER_VERSION} exactly; rebuild it with `make peer-venv`. {}",
        python.display(),
        version,
        String::from_utf8_lossy(&out.stderr)
    );
    python
}

/// Runs the peer's command line as a process: `python -m model_signing ARGS` in `dir`.
pub fn peer_cli(dir: &Path, args: &[&str]) -> Output {
    Command::new(peer_python())
        .args(["-m", "model_signing"])
        .args(args)
        .current_dir(dir)
        .output()
        .unwrap()
}

// ---------------------------------------------------------------------------------------------
// OCI registries (test_cluster::registry): the flags that reach one, its log, pulling layers.

// Re-exported for the `oci` tests; the other test binaries compile it unused.
#[allow(unused_imports)]
pub use test_cluster::registry::{Kind, Registry};

/// The registry flags `oci` commands need for `r`: `--plain-http`, or its CA; and, when it
/// requires auth, a docker config.json with its credentials written into `dir`.
pub fn registry_flags(r: &Registry, dir: &Path) -> Vec<String> {
    let mut flags = Vec::new();
    match r.ca_file() {
        Some(ca) => flags.extend(["--registry-ca".to_string(), s(ca).to_string()]),
        None => flags.push("--plain-http".into()),
    }
    if let Some(c) = r.credentials() {
        let config = docker_config(dir, &r.host(), &c.username, &c.password);
        flags.extend(["--registry-config".to_string(), s(&config).to_string()]);
    }
    flags
}

/// Writes `dir/config.json` with basic credentials for `host`, as `docker login` does.
pub fn docker_config(dir: &Path, host: &str, user: &str, password: &str) -> PathBuf {
    fs::create_dir_all(dir).unwrap();
    let path = dir.join("config.json");
    let json = test_cluster::support::registry_push::docker_config_json(host, user, password);
    fs::write(&path, json).unwrap();
    path
}

/// Runs `model-signing oci ARGS` with `flags` appended.
pub fn oci(args: &[&str], flags: &[String]) -> Output {
    let mut all = vec!["oci"];
    all.extend_from_slice(args);
    run_with(&all, flags)
}

/// Runs `model-signing ARGS FLAGS`, with `DOCKER_CONFIG` pointed away from the user's docker
/// config, so that only the flags decide the registry credentials.
pub fn run_with(args: &[&str], flags: &[String]) -> Output {
    let none = std::env::temp_dir().join("mvo-no-docker-config");
    Command::new(BIN)
        .args(args)
        .args(flags)
        .env("DOCKER_CONFIG", &none)
        .output()
        .unwrap()
}

/// Attaches `bundle` to the manifest `pinned` on `r` with the engine's registry client, with
/// none of the checks `oci attach` makes: what an attacker with push access can do.
pub fn attach_with_library(r: &Registry, pinned: &str, bundle: &[u8]) {
    let client = test_cluster::support::registry_push::engine_client(r);
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let subject = client.resolve(pinned).await.unwrap();
        client.attach_bundle(&subject, bundle).await.unwrap();
    });
}

/// The layer digests of the manifest `pinned` (`host/repo@sha256:…`) names, with their
/// `org.cncf.model.filepath`, read over HTTP from `r` (trusting its CA, with its credentials).
pub fn layers(r: &Registry, pinned: &str) -> Vec<(String, String)> {
    let (repo, digest) = repo_and_digest(r, pinned);
    let m: serde_json::Value = serde_json::from_slice(&http_get(
        r,
        &format!("/v2/{repo}/manifests/{digest}"),
        Some("application/vnd.oci.image.manifest.v1+json"),
    ))
    .unwrap();
    m["layers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| {
            (
                l["digest"].as_str().unwrap().to_string(),
                l["annotations"]["org.cncf.model.filepath"]
                    .as_str()
                    .unwrap()
                    .to_string(),
            )
        })
        .collect()
}

/// Pulls the model `pinned` into `dir` the way a runtime would: every layer blob, written at
/// its `org.cncf.model.filepath`.
pub fn pull(r: &Registry, pinned: &str, dir: &Path) {
    let (repo, _) = repo_and_digest(r, pinned);
    for (digest, path) in layers(r, pinned) {
        let bytes = http_get(r, &format!("/v2/{repo}/blobs/{digest}"), None);
        let file = dir.join(&path);
        fs::create_dir_all(file.parent().unwrap()).unwrap();
        fs::write(file, bytes).unwrap();
    }
}

fn repo_and_digest(r: &Registry, pinned: &str) -> (String, String) {
    let rest = pinned
        .strip_prefix(&format!("{}/", r.host()))
        .unwrap_or_else(|| panic!("{pinned} is not on {}", r.host()));
    let (repo, digest) = rest.split_once('@').unwrap();
    (repo.to_string(), digest.to_string())
}

/// GET `path` from `r`, which must answer 200.
pub fn http_get(r: &Registry, path: &str, accept: Option<&str>) -> Vec<u8> {
    let mut builder = reqwest::blocking::Client::builder();
    if let Some(pem) = r.ca_pem() {
        builder = builder.tls_certs_only([reqwest::Certificate::from_pem(pem.as_bytes()).unwrap()]);
    }
    let mut req = builder
        .build()
        .unwrap()
        .get(format!("{}{path}", r.base_url()));
    if let Some(a) = accept {
        req = req.header("Accept", a);
    }
    if let Some(c) = r.credentials() {
        req = req.basic_auth(&c.username, Some(&c.password));
    }
    let resp = req.send().unwrap();
    assert_eq!(resp.status().as_u16(), 200, "GET {path}");
    resp.bytes().unwrap().to_vec()
}

/// The registry's request lines from the `since`-th on (`requests().len()` taken before).
pub fn requests_since(r: &Registry, since: usize) -> Vec<String> {
    r.requests().into_iter().skip(since).collect()
}

// Not every test binary that includes this module pushes by hand.
#[allow(unused_imports)]
pub use test_cluster::support::registry_push::{
    gzip, push_blob, push_image, push_manifest, tar_layer,
};
