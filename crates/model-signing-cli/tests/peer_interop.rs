//! Interoperability with the real Python peer, `model-signing` 1.1.1.
//!
//! The peer is installed by `make peer-venv` into `target/peer-venv`; `make test` passes its
//! interpreter in `MODEL_SIGNING_PEER_PYTHON`. Without a peer these tests fail (they never
//! skip): run `make peer-venv`.
//!
//! Both directions are covered: the peer signs and `model-signing` verifies, `model-signing`
//! signs and the peer verifies, and tampered models fail on both sides. The peer's command line
//! only does files/sha256, so shards, blake2b and blake3 go through its Python API, verified
//! with the explicit matching hashing config (1.1.1 cannot guess it from a signature).
//!
//! Python with the peer's imports takes ~0.6 s to start, so each test hands all its peer
//! operations to one process (`tests/peer/batch.py`), which runs the peer's click command line
//! in-process (the code behind `python -m model_signing`) and its API. One test also runs
//! `python -m model_signing` as a real process. Every test works in its own temporary directory
//! and makes its own keys and test PKI (with the `cryptography` package of the peer's venv).

mod support;

use std::ffi::{OsStr, OsString};
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::{Value, json};
use support::{BIN, peer_python};

// ---------------------------------------------------------------------------------------------
// Command lines

/// A command line from a template: whitespace-separated words, each `{}` replaced by the next
/// value (as one argument, spaces and all).
fn argv(template: &str, values: &[&dyn AsRef<OsStr>]) -> Vec<OsString> {
    let mut values = values.iter();
    let out: Vec<OsString> = template
        .split_whitespace()
        .map(|w| match w {
            "{}" => values.next().expect("too few values").as_ref().to_owned(),
            w => w.into(),
        })
        .collect();
    assert!(values.next().is_none(), "too many values for {template:?}");
    out
}

// ---------------------------------------------------------------------------------------------
// The peer

/// Operations for one peer process; `tests/peer/batch.py` documents each.
#[derive(Default)]
struct Batch {
    ops: Vec<Value>,
}

impl Batch {
    /// Adds an operation; returns its index in the results.
    fn add(&mut self, op: Value) -> usize {
        self.ops.push(op);
        self.ops.len() - 1
    }

    /// `python -m model_signing ARGS` (run in-process by the batch).
    fn cli(&mut self, args: Vec<OsString>) -> usize {
        let args: Vec<String> = args
            .into_iter()
            .map(|a| a.into_string().expect("non-UTF-8 argument"))
            .collect();
        self.add(json!({"op": "cli", "args": args}))
    }

    /// Runs every operation in one Python process, in order.
    fn run(self, scratch: &Path) -> Vec<Value> {
        let ops_file = scratch.join(format!("peer-ops-{}.json", unique()));
        let results_file = ops_file.with_extension("results.json");
        fs::write(&ops_file, serde_json::to_vec_pretty(&self.ops).unwrap()).unwrap();
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/peer/batch.py");
        let out = Command::new(peer_python())
            .arg(&script)
            .arg(&ops_file)
            .arg(&results_file)
            .output()
            .expect("cannot start the peer's Python");
        assert!(
            out.status.success(),
            "the peer batch failed ({}):\n{}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
        let results: Vec<Value> =
            serde_json::from_slice(&fs::read(&results_file).unwrap()).unwrap();
        assert_eq!(results.len(), self.ops.len());
        results
    }
}

fn unique() -> u64 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static N: AtomicU64 = AtomicU64::new(0);
    N.fetch_add(1, Ordering::Relaxed)
}

/// Asserts that a peer CLI call exited 0 with the peer's success line.
fn peer_cli_ok(r: &Value, line: &str, what: &str) {
    assert_eq!(r["exit"], 0, "peer {what}: {r}");
    let out = r["stdout"].as_str().unwrap();
    assert!(out.contains(line), "peer {what}: {r}");
}

/// Asserts that a peer CLI call failed with exit 1 and returns its stderr.
fn peer_cli_fails<'a>(r: &'a Value, what: &str) -> &'a str {
    assert_eq!(r["exit"], 1, "peer {what} should fail with exit 1: {r}");
    let err = r["stderr"].as_str().unwrap();
    assert!(err.contains("failed with error"), "peer {what}: {r}");
    assert!(
        !r["stdout"].as_str().unwrap().contains("succeeded"),
        "peer {what}: {r}"
    );
    err
}

/// Asserts that a peer API call succeeded.
fn peer_api_ok(r: &Value, what: &str) {
    assert_eq!(r["ok"], true, "peer API {what}: {r}");
}

/// Asserts that a peer API call raised, and returns the exception text.
fn peer_api_fails<'a>(r: &'a Value, what: &str) -> &'a str {
    assert_eq!(r["ok"], false, "peer API {what} should raise: {r}");
    r["error"].as_str().unwrap()
}

/// Asserts that every setup operation (keys, certificates, API calls) succeeded.
fn check_all_ok(results: &[Value]) {
    for r in results {
        if r.get("ok").is_some() {
            assert_eq!(r["ok"], true, "peer operation failed: {r}");
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Our binary

struct Run {
    code: i32,
    stdout: String,
    stderr: String,
}

impl std::fmt::Display for Run {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let (code, out, err) = (self.code, &self.stdout, &self.stderr);
        write!(f, "exit {code}\nstdout: {out}\nstderr: {err}")
    }
}

impl Run {
    fn of(out: std::process::Output) -> Run {
        Run {
            code: out.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }
}

fn ours(args: Vec<OsString>) -> Run {
    ours_env(args, &[])
}

fn ours_env(args: Vec<OsString>, env: &[(&str, &str)]) -> Run {
    let mut cmd = Command::new(BIN);
    cmd.args(args).env_remove("MODEL_SIGNING_KEY_PASSWORD");
    cmd.envs(env.iter().copied());
    Run::of(cmd.output().expect("cannot run model-signing"))
}

/// Asserts exit 0 and `line` on stdout.
fn ours_ok(r: &Run, line: &str, what: &str) {
    assert_eq!(r.code, 0, "ours {what}:\n{r}");
    assert!(r.stdout.contains(line), "ours {what}:\n{r}");
}

/// Asserts exit 1 with the peer's failure line on stderr; returns stderr.
fn ours_fails<'a>(r: &'a Run, verb: &str, what: &str) -> &'a str {
    assert_eq!(r.code, 1, "ours {what} should fail with exit 1:\n{r}");
    let line = format!("{verb} failed with error: ");
    assert!(r.stderr.contains(&line), "ours {what}:\n{r}");
    assert!(!r.stdout.contains("succeeded"), "ours {what}:\n{r}");
    &r.stderr
}

/// `--output json` of ours, parsed.
fn ours_json(args: Vec<OsString>) -> Value {
    let mut all = argv("--output json", &[]);
    all.extend(args);
    let run = ours(all);
    assert_eq!(run.code, 0, "{run}");
    serde_json::from_str(&run.stdout).unwrap()
}

// ---------------------------------------------------------------------------------------------
// Models, keys, PKI

/// A small model with what trips implementations up: nested directories, an empty file, names
/// whose path-component order differs from plain string order (`a/b.bin`, `a-b/c.bin`,
/// `a.txt`), a space and a non-ASCII name, git files and an empty directory (neither signed).
/// `weights.bin` and `sub/layer1.bin` span several 4096-byte shards. 11 signed files.
fn make_model(dir: &Path) {
    let files: [(&str, Vec<u8>); 13] = [
        ("config.json", b"{\"hidden\": 16}\n".to_vec()),
        ("weights.bin", (0..10_240u32).map(|i| i as u8).collect()),
        ("tokenizer.json", b"{\"vocab\": [\"a\", \"b\"]}\n".to_vec()),
        ("README.md", b"# interop test model\n".to_vec()),
        ("sub/layer1.bin", vec![1u8; 5_000]),
        ("sub/deeper/layer2.bin", vec![2u8; 3_000]),
        ("sub/empty.txt", Vec::new()),
        ("a/b.bin", b"a/b".to_vec()),
        ("a-b/c.bin", b"a-b/c".to_vec()),
        ("a.txt", b"a.txt".to_vec()),
        ("my notes \u{e9}.txt", b"unicode and a space\n".to_vec()),
        (".gitattributes", b"*.bin filter=lfs\n".to_vec()),
        (".git/HEAD", b"ref: refs/heads/main\n".to_vec()),
    ];
    for (name, content) in files {
        let p = dir.join(name);
        fs::create_dir_all(p.parent().unwrap()).unwrap();
        fs::write(p, content).unwrap();
    }
    fs::create_dir_all(dir.join("emptydir")).unwrap();
}

/// Signed files in [`make_model`]: resources in files mode, and in 4096-byte shards (the empty
/// file has no shard; weights.bin has 3, layer1.bin 2) and 1 GB shards.
const FILES: usize = 11;
const SHARDS_4096: usize = 13;
const SHARDS_1G: usize = 10;

/// A fresh scratch directory with a model in `model/`.
fn scratch_with_model() -> (tempfile::TempDir, PathBuf) {
    let t = tempfile::tempdir().unwrap();
    let model = t.path().join("model");
    make_model(&model);
    (t, model)
}

/// An EC key pair: `<name>.key` (SEC1, or PKCS#8 when `pkcs8`) and `<name>.pub` (SPKI PEM).
fn keygen(b: &mut Batch, dir: &Path, name: &str, curve: &str, pkcs8: bool) -> (PathBuf, PathBuf) {
    let private = dir.join(format!("{name}.key"));
    let public = dir.join(format!("{name}.pub"));
    let format = if pkcs8 { "pkcs8" } else { "sec1" };
    b.add(json!({"op": "keygen", "curve": curve, "private": private, "public": public, "format": format}));
    (private, public)
}

/// One certificate chain: root CA (trust anchor), optional intermediate, leaf.
struct Chain {
    name: &'static str,
    /// Trust anchor for verification.
    root: PathBuf,
    /// The intermediate, shipped in the signature (none when the root issues the leaf).
    intermediate: Option<PathBuf>,
    leaf_key: PathBuf,
    leaf_cert: PathBuf,
}

/// Test PKIs with EC and RSA CAs, all valid now (our verifier checks validity at the current
/// time; the peer at the leaf's notBefore):
/// * `ec`:    P-384 root → P-256 intermediate → P-256 leaf (KU digitalSignature + EKU codeSigning)
/// * `rsa`:   RSA-3072 root → RSA-2048 intermediate → P-384 leaf (EKU codeSigning, no KU)
/// * `mixed`: RSA-2048 root → P-521 leaf directly (KU digitalSignature, no EKU)
fn make_pkis(b: &mut Batch, dir: &Path) -> [Chain; 3] {
    let ca = json!({"ca": true, "ku": ["key_cert_sign", "crl_sign"]});
    let int_ca = json!({"ca": true, "pathlen": 0, "ku": ["key_cert_sign", "crl_sign"]});
    let p = |n: &str| dir.join(n);
    let mut cert = |name: &str, key_type: &str, cn: &str, issuer: Option<&str>, ext: &Value| {
        let mut op = json!({"op": "cert", "out": p(&format!("{name}.pem")),
                            "key_out": p(&format!("{name}.key")), "key_type": key_type, "cn": cn});
        if let Some(i) = issuer {
            op["issuer_cert"] = json!(p(&format!("{i}.pem")));
            op["issuer_key"] = json!(p(&format!("{i}.key")));
        }
        for (k, v) in ext.as_object().unwrap() {
            op[k] = v.clone();
        }
        b.add(op);
    };
    let code_signing = json!({"ku": ["digital_signature"], "eku": ["code_signing"],
                              "email": "signer@example.com"});
    cert("ec-root", "ec:P-384", "EC Root CA", None, &ca);
    cert(
        "ec-int",
        "ec:P-256",
        "EC Intermediate CA",
        Some("ec-root"),
        &int_ca,
    );
    cert(
        "ec-leaf",
        "ec:P-256",
        "ec-signer",
        Some("ec-int"),
        &code_signing,
    );
    cert("rsa-root", "rsa:3072", "RSA Root CA", None, &ca);
    cert(
        "rsa-int",
        "rsa:2048",
        "RSA Intermediate CA",
        Some("rsa-root"),
        &int_ca,
    );
    cert(
        "rsa-leaf",
        "ec:P-384",
        "rsa-signer",
        Some("rsa-int"),
        &json!({"eku": ["code_signing"]}),
    );
    cert("mixed-root", "rsa:2048", "Mixed Root CA", None, &ca);
    let ku_only = json!({"ku": ["digital_signature"]});
    cert(
        "mixed-leaf",
        "ec:P-521",
        "mixed-signer",
        Some("mixed-root"),
        &ku_only,
    );
    let chain = |name: &'static str, with_int: bool| Chain {
        name,
        root: p(&format!("{name}-root.pem")),
        intermediate: with_int.then(|| p(&format!("{name}-int.pem"))),
        leaf_key: p(&format!("{name}-leaf.key")),
        leaf_cert: p(&format!("{name}-leaf.pem")),
    };
    [chain("ec", true), chain("rsa", true), chain("mixed", false)]
}

// ---------------------------------------------------------------------------------------------
// The peer signs, we verify

/// Key method with P-256/P-384/P-521 (SEC1 and PKCS#8 keys): the peer's command line signs, we
/// verify. Also: the signature inside the model (excluded, recorded in ignore_paths), a
/// recorded `--ignore-paths` re-applied at verification, a single-file model (resource `.`),
/// and the wrong public key failing with a key mismatch.
#[test]
fn peer_signs_with_keys_ours_verifies() {
    let (t, model) = scratch_with_model();
    let d = t.path();
    let single = d.join("single.safetensors");
    fs::write(&single, vec![9u8; 777]).unwrap();
    let mut b = Batch::default();
    let (k256, p256) = keygen(&mut b, d, "p256", "P-256", false);
    let (k384, p384) = keygen(&mut b, d, "p384", "P-384", true);
    let (k521, p521) = keygen(&mut b, d, "p521", "P-521", false);
    let inside = model.join("model.sig");
    let (s384, s521) = (d.join("p384.sig"), d.join("p521.sig"));
    let (s_ignore, s_single) = (d.join("ignore.sig"), d.join("single.sig"));
    let deeper = model.join("sub/deeper");
    let sign = "sign key {} --private_key {} --signature {}";
    let signs = [
        b.cli(argv(sign, &[&model, &k256, &inside])),
        b.cli(argv(sign, &[&model, &k384, &s384])),
        b.cli(argv(sign, &[&model, &k521, &s521])),
        b.cli(argv(
            &format!("{sign} --ignore-paths {{}}"),
            &[&model, &k256, &s_ignore, &deeper],
        )),
        b.cli(argv(sign, &[&single, &k256, &s_single])),
    ];
    let r = b.run(d);
    check_all_ok(&r);
    for i in signs {
        peer_cli_ok(&r[i], "Signing succeeded", "sign key");
    }

    let verify = "verify key {} --signature {} --public_key {}";
    for (sig, public) in [(&inside, &p256), (&s384, &p384), (&s521, &p521)] {
        let run = ours(argv(verify, &[&model, sig, public]));
        ours_ok(
            &run,
            "Verification succeeded",
            &format!("verify {}", sig.display()),
        );
    }
    // The peer recorded its signature inside the model as an ignore path.
    let v = ours_json(argv("inspect {}", &[&inside]));
    let ignored = v["serialization"]["ignore_paths"].as_array().unwrap();
    assert!(ignored.contains(&json!("model.sig")), "{v}");
    assert_eq!(v["resources"], FILES, "{v}");

    // Recorded ignore paths are re-applied: sub/deeper may change.
    fs::write(model.join("sub/deeper/layer2.bin"), b"changed").unwrap();
    let run = ours(argv(verify, &[&model, &s_ignore, &p256]));
    ours_ok(
        &run,
        "Verification succeeded",
        "verify with a recorded ignore path",
    );
    let run = ours(argv(verify, &[&model, &s384, &p384]));
    let err = ours_fails(&run, "Verification", "layer2 changed");
    assert!(err.contains("sub/deeper/layer2.bin"), "{run}");

    let run = ours(argv(verify, &[&single, &s_single, &p256]));
    ours_ok(&run, "Verification succeeded", "verify a single file");

    let run = ours(argv(verify, &[&model, &s521, &p256]));
    let err = ours_fails(&run, "Verification", "wrong key");
    assert!(err.contains("key mismatch"), "{run}");
}

/// Certificate method with EC and RSA CAs: the peer signs with leaf + chain, we verify against
/// the root. Trusting another root fails and names the unknown issuer.
#[test]
fn peer_signs_with_certificates_ours_verifies() {
    let (t, model) = scratch_with_model();
    let d = t.path();
    let mut b = Batch::default();
    let chains = make_pkis(&mut b, d);
    let mut signs = Vec::new();
    for c in &chains {
        let sig = d.join(format!("{}.sig", c.name));
        // 1.1.1 cannot sign without --certificate_chain: a root-issued leaf ships the root.
        let shipped = c.intermediate.as_ref().unwrap_or(&c.root);
        let args = argv(
            "sign certificate {} --private_key {} --signing_certificate {} \
             --certificate_chain {} --signature {}",
            &[&model, &c.leaf_key, &c.leaf_cert, shipped, &sig],
        );
        signs.push((b.cli(args), sig));
    }
    let r = b.run(d);
    check_all_ok(&r);
    let verify = "verify certificate {} --signature {} --certificate_chain {}";
    for ((i, sig), c) in signs.iter().zip(&chains) {
        peer_cli_ok(
            &r[*i],
            "Signing succeeded",
            &format!("sign certificate ({})", c.name),
        );
        let run = ours(argv(verify, &[&model, sig, &c.root]));
        ours_ok(
            &run,
            "Verification succeeded",
            &format!("verify certificate ({})", c.name),
        );
        assert!(run.stdout.contains("Verification succeeded"), "{run}");
    }
    let run = ours(argv(verify, &[&model, &signs[0].1, &chains[1].root]));
    let err = ours_fails(&run, "Verification", "another root");
    assert!(
        err.contains("EC Root CA") && err.contains("not one of the trusted CAs"),
        "{run}"
    );
}

/// Shards (4096 and the default 1 GB), blake2 (recorded as blake2b) and blake3 signed with the
/// peer's Python API verify with ours, which rebuilds the manifest with the method, hash and
/// shard size the signature records. A changed byte is reported with the file, and for shards
/// with the shard's byte range.
#[test]
fn peer_api_signs_shards_and_blake_ours_verifies() {
    let (t, model) = scratch_with_model();
    let d = t.path();
    let mut b = Batch::default();
    let (key, public) = keygen(&mut b, d, "k", "P-256", false);
    let cases = [
        (
            "shards-sha256-4096",
            json!({"method": "shards", "hash": "sha256", "shard_size": 4096}),
            "shards",
            "sha256",
            SHARDS_4096,
        ),
        (
            "shards-sha256-default",
            json!({"method": "shards", "hash": "sha256"}),
            "shards",
            "sha256",
            SHARDS_1G,
        ),
        (
            "shards-blake2-4096",
            json!({"method": "shards", "hash": "blake2", "shard_size": 4096}),
            "shards",
            "blake2b",
            SHARDS_4096,
        ),
        (
            "files-blake2",
            json!({"method": "files", "hash": "blake2"}),
            "files",
            "blake2b",
            FILES,
        ),
        (
            "files-blake3",
            json!({"method": "files", "hash": "blake3"}),
            "files",
            "blake3",
            FILES,
        ),
    ];
    let mut signs = Vec::new();
    for (name, hashing, ..) in &cases {
        let sig = d.join(format!("{name}.sig"));
        let op =
            json!({"op": "sign", "model": model, "signature": sig, "key": key, "hashing": hashing});
        signs.push((b.add(op), sig));
    }
    let r = b.run(d);
    check_all_ok(&r);
    let verify = "verify key {} --signature {} --public_key {}";
    for ((i, sig), (name, _, method, hash, resources)) in signs.iter().zip(&cases) {
        peer_api_ok(&r[*i], &format!("sign {name}"));
        let v = ours_json(argv(verify, &[&model, sig, &public]));
        assert_eq!(v["ok"], true, "{name}: {v}");
        assert_eq!(v["serialization"]["method"], *method, "{name}: {v}");
        assert_eq!(v["serialization"]["hash_type"], *hash, "{name}: {v}");
        assert_eq!(v["resources"], *resources, "{name}: {v}");
    }
    // One changed byte at offset 5000 of weights.bin: in shard 4096..8192.
    let mut w = fs::read(model.join("weights.bin")).unwrap();
    w[5000] ^= 0xff;
    fs::write(model.join("weights.bin"), w).unwrap();
    for (sig, says) in [(&signs[0].1, "bytes 4096..8192"), (&signs[4].1, "blake3:")] {
        let run = ours(argv(verify, &[&model, sig, &public]));
        let err = ours_fails(&run, "Verification", "changed byte");
        assert!(err.contains("weights.bin") && err.contains(says), "{run}");
    }
}

// ---------------------------------------------------------------------------------------------
// We sign, the peer verifies

/// Key method with P-256/P-384/P-521: the peer's command line verifies our signatures (inside
/// and outside the model, with `--ignore-paths`, a single file); the wrong key fails there too.
#[test]
fn ours_signs_with_keys_peer_verifies() {
    let (t, model) = scratch_with_model();
    let d = t.path();
    let single = d.join("single.gguf");
    fs::write(&single, vec![3u8; 1234]).unwrap();
    let mut b = Batch::default();
    let keys = [
        keygen(&mut b, d, "p256", "P-256", false),
        keygen(&mut b, d, "p384", "P-384", true),
        keygen(&mut b, d, "p521", "P-521", false),
    ];
    check_all_ok(&b.run(d));

    let sign = "sign key {} --private_key {} --signature {}";
    let sigs = [
        model.join("model.sig"),
        d.join("p384.sig"),
        d.join("p521.sig"),
    ];
    for ((key, _), sig) in keys.iter().zip(&sigs) {
        let run = ours(argv(sign, &[&model, key, sig]));
        ours_ok(
            &run,
            "Signing succeeded",
            &format!("sign with {}", key.display()),
        );
    }
    let (s_ignore, s_single) = (d.join("ignore.sig"), d.join("single.sig"));
    let deeper = model.join("sub/deeper");
    let args = argv(
        &format!("{sign} --ignore-paths {{}}"),
        &[&model, &keys[0].0, &s_ignore, &deeper],
    );
    ours_ok(&ours(args), "Signing succeeded", "sign with --ignore-paths");
    let run = ours(argv(sign, &[&single, &keys[0].0, &s_single]));
    ours_ok(&run, "Signing succeeded", "sign a single file");
    // The --ignore-paths signature holds for a copy whose sub/deeper changed (model.sig was
    // inside the model when it was signed, so it is a signed file there).
    let model2 = d.join("model2");
    make_model(&model2);
    fs::copy(&sigs[0], model2.join("model.sig")).unwrap();
    fs::write(model2.join("sub/deeper/layer2.bin"), b"changed").unwrap();

    let mut b = Batch::default();
    let verify = "verify key {} --signature {} --public_key {}";
    let mut verifies = Vec::new();
    for ((_, public), sig) in keys.iter().zip(&sigs) {
        verifies.push(b.cli(argv(verify, &[&model, sig, public])));
    }
    verifies.push(b.cli(argv(verify, &[&model2, &s_ignore, &keys[0].1])));
    verifies.push(b.cli(argv(verify, &[&single, &s_single, &keys[0].1])));
    let wrong = b.cli(argv(verify, &[&model, &sigs[1], &keys[0].1]));
    let r = b.run(d);
    for (n, i) in verifies.into_iter().enumerate() {
        peer_cli_ok(&r[i], "Verification succeeded", &format!("verify #{n}"));
    }
    let err = peer_cli_fails(&r[wrong], "verify with the wrong key");
    assert!(err.contains("Key mismatch"), "{}", r[wrong]);
}

/// Certificate method with EC and RSA CAs: we sign with leaf + chain, the peer's command line
/// verifies against the root.
#[test]
fn ours_signs_with_certificates_peer_verifies() {
    let (t, model) = scratch_with_model();
    let d = t.path();
    let mut b = Batch::default();
    let chains = make_pkis(&mut b, d);
    check_all_ok(&b.run(d));

    let mut b = Batch::default();
    let mut verifies = Vec::new();
    for c in &chains {
        let sig = d.join(format!("{}.sig", c.name));
        let mut args = argv(
            "sign certificate {} --private_key {} --signing_certificate {} --signature {}",
            &[&model, &c.leaf_key, &c.leaf_cert, &sig],
        );
        if let Some(int) = &c.intermediate {
            args.extend(argv("--certificate_chain {}", &[int]));
        }
        ours_ok(
            &ours(args),
            "Signing succeeded",
            &format!("sign certificate ({})", c.name),
        );
        // The bundle carries [leaf, *chain].
        let bundle: Value = serde_json::from_slice(&fs::read(&sig).unwrap()).unwrap();
        let certs = &bundle["verificationMaterial"]["x509CertificateChain"]["certificates"];
        let expected = 1 + usize::from(c.intermediate.is_some());
        assert_eq!(certs.as_array().unwrap().len(), expected, "{}", c.name);
        let verify = "verify certificate {} --signature {} --certificate_chain {}";
        verifies.push((c.name, b.cli(argv(verify, &[&model, &sig, &c.root]))));
    }
    let r = b.run(d);
    for (name, i) in verifies {
        peer_cli_ok(
            &r[i],
            "Verification succeeded",
            &format!("verify certificate ({name})"),
        );
    }
}

/// `--shard-size N` and `--hash blake2b|blake3`: the peer's API verifies our signatures with the
/// matching hashing config, and rejects them with another config (so the config matters); its
/// command line (files/sha256 only) rejects a shard signature.
#[test]
fn ours_signs_shards_and_blake_peer_api_verifies() {
    let (t, model) = scratch_with_model();
    let d = t.path();
    let mut b = Batch::default();
    let (key, public) = keygen(&mut b, d, "k", "P-256", false);
    check_all_ok(&b.run(d));

    let cases = [
        (
            "shards-sha256-4096",
            "--shard-size 4096",
            json!({"method": "shards", "hash": "sha256", "shard_size": 4096}),
        ),
        (
            "shards-sha256-1g",
            "--shard-size 1000000000",
            json!({"method": "shards", "hash": "sha256"}),
        ),
        (
            "shards-blake2b-4096",
            "--shard-size 4096 --hash blake2b",
            json!({"method": "shards", "hash": "blake2", "shard_size": 4096}),
        ),
        (
            "files-blake2b",
            "--hash blake2b",
            json!({"method": "files", "hash": "blake2"}),
        ),
        (
            "files-blake3",
            "--hash blake3",
            json!({"method": "files", "hash": "blake3"}),
        ),
    ];
    let mut b = Batch::default();
    let mut verifies = Vec::new();
    for (name, flags, hashing) in &cases {
        let sig = d.join(format!("{name}.sig"));
        let sign = format!("sign key {{}} --private_key {{}} --signature {{}} {flags}");
        ours_ok(
            &ours(argv(&sign, &[&model, &key, &sig])),
            "Signing succeeded",
            name,
        );
        let op = json!({"op": "verify", "model": model, "signature": sig, "public_key": public,
                        "hashing": hashing});
        verifies.push((*name, b.add(op)));
    }
    let sig = d.join("shards-sha256-4096.sig");
    let other_size = b.add(json!({"op": "verify", "model": model, "signature": sig,
        "public_key": public, "hashing": {"method": "shards", "hash": "sha256", "shard_size": 8192}}));
    let cli = b.cli(argv(
        "verify key {} --signature {} --public_key {}",
        &[&model, &sig, &public],
    ));
    let r = b.run(d);
    for (name, i) in verifies {
        peer_api_ok(&r[i], &format!("verify {name}"));
    }
    let err = peer_api_fails(&r[other_size], "verify with shard size 8192");
    assert!(err.contains("Signature mismatch"), "{err}");
    peer_cli_fails(&r[cli], "CLI verify of a shard signature");
}

// ---------------------------------------------------------------------------------------------
// Tampering

type Tamper = fn(model: &Path, outside: &Path);

/// name, how to tamper, what our error must say, what the peer's must say.
const TAMPER_CASES: [(&str, Tamper, &[&str], &[&str]); 6] = [
    (
        "changed-byte",
        |m, _| {
            let p = m.join("sub/layer1.bin");
            let mut v = fs::read(&p).unwrap();
            v[4321] ^= 1;
            fs::write(p, v).unwrap();
        },
        &["1 file changed: sub/layer1.bin (expected sha256:"],
        &["Hash mismatch for 'sub/layer1.bin'"],
    ),
    (
        "extra-file",
        |m, _| fs::write(m.join("sub/extra.bin"), b"planted").unwrap(),
        &["not covered by the signature: sub/extra.bin"],
        &["Extra files", "sub/extra.bin"],
    ),
    (
        "missing-file",
        |m, _| fs::remove_file(m.join("tokenizer.json")).unwrap(),
        &["1 file missing: tokenizer.json"],
        &["Missing files", "tokenizer.json"],
    ),
    (
        "renamed-file",
        |m, _| fs::rename(m.join("config.json"), m.join("config-renamed.json")).unwrap(),
        &[
            "missing: config.json",
            "not covered by the signature: config-renamed.json",
        ],
        &[
            "Missing files",
            "config.json",
            "Extra files",
            "config-renamed.json",
        ],
    ),
    // A signed file replaced by a symlink to identical content outside the model.
    (
        "symlink",
        |m, outside| {
            let target = outside.join("weights.bin");
            fs::copy(m.join("weights.bin"), &target).unwrap();
            fs::remove_file(m.join("weights.bin")).unwrap();
            std::os::unix::fs::symlink(&target, m.join("weights.bin")).unwrap();
        },
        &["'weights.bin' is a symlink"],
        &["weights.bin", "symlink"],
    ),
    // weights.bin changed and the signed payload edited to its new digest, root digest fixed
    // up: only the envelope's signature can tell (the peer's message is empty here).
    (
        "edited-payload",
        |m, _| {
            let p = m.join("weights.bin");
            let mut v = fs::read(&p).unwrap();
            v[0] ^= 0x80;
            fs::write(p, v).unwrap();
        },
        &["invalid signature"],
        &[],
    ),
];

/// Every tampered copy of a model signed by the peer and by us fails on both sides: exit 1 from
/// the peer's command line and from ours, and our error names the file (or the signature, for
/// an edited payload).
#[test]
fn tampering_fails_on_both_sides() {
    let t = tempfile::tempdir().unwrap();
    let d = t.path();
    let pristine = d.join("pristine");
    make_model(&pristine);
    let outside = d.join("outside");
    fs::create_dir_all(&outside).unwrap();
    let mut b = Batch::default();
    let (key, public) = keygen(&mut b, d, "k", "P-256", false);
    let (peer_sig, our_sig) = (d.join("peer.sig"), d.join("ours.sig"));
    let sign = "sign key {} --private_key {} --signature {}";
    let peer_sign = b.cli(argv(sign, &[&pristine, &key, &peer_sig]));
    let r = b.run(d);
    check_all_ok(&r);
    peer_cli_ok(&r[peer_sign], "Signing succeeded", "sign");
    ours_ok(
        &ours(argv(sign, &[&pristine, &key, &our_sig])),
        "Signing succeeded",
        "sign",
    );
    // Both signed the same manifest.
    let peer_v = ours_json(argv("inspect {}", &[&peer_sig]));
    let our_v = ours_json(argv("inspect {}", &[&our_sig]));
    assert_eq!(
        peer_v["root_digest"], our_v["root_digest"],
        "peer {peer_v}\nours {our_v}"
    );

    let verify = "verify key {} --signature {} --public_key {}";
    let mut b = Batch::default();
    let mut checks = Vec::new();
    for (name, tamper, ours_says, peer_says) in TAMPER_CASES {
        let m = d.join(name);
        make_model(&m);
        tamper(&m, &outside);
        for (who, sig) in [("peer", &peer_sig), ("ours", &our_sig)] {
            let sig = if name == "edited-payload" {
                let forged = d.join(format!("{who}-forged.sig"));
                b.add(json!({"op": "forge_payload", "in": sig, "out": forged,
                             "resource": "weights.bin", "file": m.join("weights.bin")}));
                forged
            } else {
                sig.clone()
            };
            let i = b.cli(argv(verify, &[&m, &sig, &public]));
            checks.push((
                format!("{name} (signed by {who})"),
                m.clone(),
                sig,
                i,
                ours_says,
                peer_says,
            ));
        }
    }
    let r = b.run(d);
    check_all_ok(&r);
    for (what, m, sig, i, ours_says, peer_says) in checks {
        let err = peer_cli_fails(&r[i], &what);
        for s in peer_says {
            assert!(err.contains(s), "peer {what} should say {s:?}: {err}");
        }
        let run = ours(argv(verify, &[&m, &sig, &public]));
        let err = ours_fails(&run, "Verification", &what);
        for s in ours_says {
            assert!(err.contains(s), "ours {what} should say {s:?}:\n{run}");
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Keys and certificates at signing

/// An encrypted PKCS#8 key: we sign with `--password` (or `MODEL_SIGNING_KEY_PASSWORD`) and the
/// peer verifies; the peer's API signs with the password as bytes (its CLI `--password` is
/// broken in 1.1.1) and we verify. A missing or wrong password is a clear error.
#[test]
fn encrypted_pkcs8_key_with_password() {
    let (t, model) = scratch_with_model();
    let d = t.path();
    let (key, public) = (d.join("enc.key"), d.join("enc.pub"));
    let password = "correct horse battery staple";
    let mut b = Batch::default();
    b.add(
        json!({"op": "keygen", "curve": "P-256", "private": key, "public": public,
                 "password": password}),
    );
    let peer_sig = d.join("peer.sig");
    let peer_sign = b.add(
        json!({"op": "sign", "model": model, "signature": peer_sig, "key": key,
                                 "password": password}),
    );
    let r = b.run(d);
    check_all_ok(&r);
    peer_api_ok(&r[peer_sign], "sign with an encrypted key");
    let pem = fs::read_to_string(&key).unwrap();
    assert!(pem.contains("BEGIN ENCRYPTED PRIVATE KEY"), "{pem}");

    let verify = "verify key {} --signature {} --public_key {}";
    let run = ours(argv(verify, &[&model, &peer_sig, &public]));
    ours_ok(
        &run,
        "Verification succeeded",
        "verify the peer's signature",
    );

    let sign = "sign key {} --private_key {} --signature {}";
    let sig = d.join("ours.sig");
    let run = ours(argv(
        &format!("{sign} --password {{}}"),
        &[&model, &key, &sig, &password],
    ));
    ours_ok(&run, "Signing succeeded", "sign with --password");
    let sig_env = d.join("ours-env.sig");
    let env = [("MODEL_SIGNING_KEY_PASSWORD", password)];
    let run = ours_env(argv(sign, &[&model, &key, &sig_env]), &env);
    ours_ok(
        &run,
        "Signing succeeded",
        "sign with MODEL_SIGNING_KEY_PASSWORD",
    );

    let none = d.join("none.sig");
    let run = ours(argv(sign, &[&model, &key, &none]));
    let err = ours_fails(&run, "Signing", "no password");
    assert!(
        err.contains("encrypted") && err.contains("--password"),
        "{run}"
    );
    let run = ours(argv(
        &format!("{sign} --password wrong"),
        &[&model, &key, &none],
    ));
    assert!(
        ours_fails(&run, "Signing", "wrong password").contains("wrong password"),
        "{run}"
    );
    assert!(
        !none.exists(),
        "a failed signing must not write a signature"
    );

    let mut b = Batch::default();
    let v1 = b.cli(argv(verify, &[&model, &sig, &public]));
    let v2 = b.cli(argv(verify, &[&model, &sig_env, &public]));
    let r = b.run(d);
    peer_cli_ok(&r[v1], "Verification succeeded", "verify ours (--password)");
    peer_cli_ok(
        &r[v2],
        "Verification succeeded",
        "verify ours (password from the environment)",
    );
}

/// Signing with a certificate that belongs to another key fails clearly on our side (and on the
/// peer's), and writes no signature.
#[test]
fn certificate_key_mismatch_at_signing() {
    let (t, model) = scratch_with_model();
    let d = t.path();
    let mut b = Batch::default();
    let [ec, rsa, _] = make_pkis(&mut b, d);
    let (other, _) = keygen(&mut b, d, "other", "P-256", false);
    let int = ec.intermediate.as_ref().unwrap();
    let sign = "sign certificate {} --private_key {} --signing_certificate {} \
                --certificate_chain {} --signature {}";
    let peer_sig = d.join("peer.sig");
    let peer = b.cli(argv(sign, &[&model, &other, &ec.leaf_cert, int, &peer_sig]));
    let r = b.run(d);
    check_all_ok(&r);
    let err = peer_cli_fails(&r[peer], "sign with a mismatched key");
    assert!(err.contains("does not match"), "{err}");

    let sig = d.join("ours.sig");
    // Another P-256 key, and a key on another curve (the RSA chain's leaf key is P-384).
    for key in [&other, &rsa.leaf_key] {
        let run = ours(argv(sign, &[&model, key, &ec.leaf_cert, int, &sig]));
        let err = ours_fails(&run, "Signing", "mismatched key and certificate");
        assert!(err.contains("does not match the private key"), "{run}");
        assert!(!sig.exists(), "a failed signing must not write a signature");
    }
}

// ---------------------------------------------------------------------------------------------
// The peer as a real process

/// `python -m model_signing` as its own process: it signs, we verify; we sign, it verifies; a
/// tampered model exits 1 on its side with the message on stderr.
#[test]
fn peer_cli_as_a_process() {
    let (t, model) = scratch_with_model();
    let d = t.path();
    let mut b = Batch::default();
    let (key, public) = keygen(&mut b, d, "k", "P-384", false);
    check_all_ok(&b.run(d));
    let peer = |args: Vec<OsString>| peer_process_in(d, args);
    // The peer's default --signature is model.sig in the current directory.
    let run = peer(argv("sign key {} --private_key {}", &[&model, &key]));
    assert_eq!(run.code, 0, "peer sign:\n{run}");
    assert!(run.stdout.contains("Signing succeeded"), "{run}");
    let verify = "verify key {} --signature {} --public_key {}";
    let run = ours(argv(verify, &[&model, &d.join("model.sig"), &public]));
    ours_ok(
        &run,
        "Verification succeeded",
        "verify the peer's signature",
    );

    let sig = model.join("model.sig");
    let run = ours(argv(
        "sign key {} --private_key {} --signature {}",
        &[&model, &key, &sig],
    ));
    ours_ok(&run, "Signing succeeded", "sign");
    let run = peer(argv(verify, &[&model, &sig, &public]));
    assert_eq!(run.code, 0, "peer verify:\n{run}");
    assert!(run.stdout.contains("Verification succeeded"), "{run}");

    fs::write(model.join("config.json"), b"{\"hidden\": 17}\n").unwrap();
    let run = peer(argv(verify, &[&model, &sig, &public]));
    assert_eq!(run.code, 1, "peer verify of a tampered model:\n{run}");
    assert!(
        run.stderr.contains("Verification failed with error"),
        "{run}"
    );
    assert!(
        run.stderr.contains("config.json") && !run.stdout.contains("succeeded"),
        "{run}"
    );
}

/// `python -m model_signing ARGS` run as its own process from `dir`.
fn peer_process_in(dir: &Path, args: Vec<OsString>) -> Run {
    let mut cmd = Command::new(peer_python());
    cmd.args(["-m", "model_signing"])
        .args(args)
        .current_dir(dir);
    Run::of(cmd.output().expect("cannot start the peer"))
}

/// Our command line run from `dir`.
fn ours_in(dir: &Path, args: Vec<OsString>) -> Run {
    let mut cmd = Command::new(BIN);
    cmd.args(args)
        .current_dir(dir)
        .env_remove("MODEL_SIGNING_KEY_PASSWORD");
    Run::of(cmd.output().expect("cannot run model-signing"))
}

/// `--ignore-paths` given relative to the current directory, both sides run from the model's
/// parent (docs/cli.md):
/// - `model/sub/deeper` (relative to the current directory) means the same to both: each
///   records `sub/deeper`, leaves its files out, and each verifies the other's signature of a
///   copy whose `sub/deeper` changed;
/// - `README.md` (relative to the model root, not to the current directory) is our documented
///   difference: the peer silently drops it and still signs README.md, we take it from the
///   model root, record it and leave README.md out;
/// - `../elsewhere` (outside the model from either) is refused by us, where the peer signs as
///   if it had not been given.
#[test]
fn ignore_paths_relative_to_the_current_directory() {
    let (t, _model) = scratch_with_model();
    let d = t.path();
    let mut b = Batch::default();
    let (key, public) = keygen(&mut b, d, "k", "P-256", false);
    check_all_ok(&b.run(d));
    let sign = "sign key model --private_key {} --signature {} --ignore-paths {}";
    let rel = |p: &str| PathBuf::from(p);

    // Relative to the current directory: the same on both sides.
    let (peer_sig, our_sig) = (d.join("peer-deeper.sig"), d.join("ours-deeper.sig"));
    let deeper = rel("model/sub/deeper");
    let run = peer_process_in(d, argv(sign, &[&key, &peer_sig, &deeper]));
    assert_eq!(run.code, 0, "peer sign:\n{run}");
    ours_ok(
        &ours_in(d, argv(sign, &[&key, &our_sig, &deeper])),
        "Signing succeeded",
        "sign with a cwd-relative --ignore-paths",
    );
    for sig in [&peer_sig, &our_sig] {
        let v = ours_json(argv("inspect {}", &[sig]));
        let ignored = v["serialization"]["ignore_paths"].as_array().unwrap();
        assert!(
            ignored.contains(&json!("sub/deeper")),
            "{}: {v}",
            sig.display()
        );
        assert_eq!(v["resources"], FILES - 1, "{}: {v}", sig.display());
    }
    let changed = d.join("changed");
    make_model(&changed);
    fs::write(changed.join("sub/deeper/layer2.bin"), b"changed").unwrap();
    let verify = "verify key {} --signature {} --public_key {}";
    let run = peer_process_in(d, argv(verify, &[&changed, &our_sig, &public]));
    assert_eq!(run.code, 0, "the peer verifies our signature:\n{run}");
    let run = ours(argv(verify, &[&changed, &peer_sig, &public]));
    ours_ok(
        &run,
        "Verification succeeded",
        "verify the peer's signature",
    );

    // Relative to the model root only: the peer drops it, we take it from the model root.
    let (peer_sig, our_sig) = (d.join("peer-readme.sig"), d.join("ours-readme.sig"));
    let readme = rel("README.md");
    let run = peer_process_in(d, argv(sign, &[&key, &peer_sig, &readme]));
    assert_eq!(run.code, 0, "peer sign:\n{run}");
    let v = ours_json(argv("inspect {}", &[&peer_sig]));
    let ignored = v["serialization"]["ignore_paths"].as_array().unwrap();
    assert!(!ignored.contains(&json!("README.md")), "{v}");
    assert_eq!(v["resources"], FILES, "the peer still signs README.md: {v}");
    ours_ok(
        &ours_in(d, argv(sign, &[&key, &our_sig, &readme])),
        "Signing succeeded",
        "sign with a model-relative --ignore-paths",
    );
    let v = ours_json(argv("inspect {}", &[&our_sig]));
    let ignored = v["serialization"]["ignore_paths"].as_array().unwrap();
    assert!(ignored.contains(&json!("README.md")), "{v}");
    assert_eq!(v["resources"], FILES - 1, "we leave README.md out: {v}");

    // Outside the model from both: the peer signs everything, we refuse and say why.
    let nowhere = rel("../elsewhere");
    let (peer_sig, our_sig) = (d.join("peer-nowhere.sig"), d.join("ours-nowhere.sig"));
    let run = peer_process_in(d, argv(sign, &[&key, &peer_sig, &nowhere]));
    assert_eq!(run.code, 0, "peer sign:\n{run}");
    assert_eq!(
        ours_json(argv("inspect {}", &[&peer_sig]))["resources"],
        FILES
    );
    let run = ours_in(d, argv(sign, &[&key, &our_sig, &nowhere]));
    assert_ne!(
        run.code, 0,
        "an ignore path outside the model must be refused:\n{run}"
    );
    assert!(
        run.stderr.contains("../elsewhere") && run.stderr.contains("not inside the model"),
        "{run}"
    );
    assert!(
        !our_sig.exists(),
        "a refused signing must not write a signature"
    );
}

// ---------------------------------------------------------------------------------------------
// Verification options

/// `--ignore_unsigned_files` and `--allow_symlinks` mean the same on both sides: an extra file
/// is tolerated with the former while a missing signed file still fails; a model signed with
/// symlinks allowed (a link inside the model, one to a file outside, one to a directory, which
/// is not followed) verifies both ways with the latter, and fails without it.
#[test]
fn verification_options_agree_with_the_peer() {
    let (t, model) = scratch_with_model();
    let d = t.path();
    let mut b = Batch::default();
    let (key, public) = keygen(&mut b, d, "k", "P-256", false);
    check_all_ok(&b.run(d));

    let extra = d.join("extra");
    make_model(&extra);
    fs::write(extra.join("sub/unsigned.bin"), b"not signed").unwrap();
    let missing = d.join("missing");
    make_model(&missing);
    fs::write(missing.join("sub/unsigned.bin"), b"not signed").unwrap();
    fs::remove_file(missing.join("a.txt")).unwrap();
    let sym = d.join("sym");
    make_model(&sym);
    let outside = d.join("outside");
    fs::create_dir_all(outside.join("dir")).unwrap();
    fs::write(outside.join("o.bin"), b"outside the model").unwrap();
    fs::write(outside.join("dir/x.bin"), b"in a linked directory").unwrap();
    std::os::unix::fs::symlink("../weights.bin", sym.join("sub/link-in.bin")).unwrap();
    std::os::unix::fs::symlink(outside.join("o.bin"), sym.join("link-out.bin")).unwrap();
    std::os::unix::fs::symlink(outside.join("dir"), sym.join("linkdir")).unwrap();

    let sign = "sign key {} --private_key {} --signature {}";
    let (our_sig, our_sym) = (d.join("ours.sig"), d.join("ours-sym.sig"));
    ours_ok(
        &ours(argv(sign, &[&model, &key, &our_sig])),
        "Signing succeeded",
        "sign",
    );
    let run = ours(argv(
        &format!("{sign} --allow_symlinks"),
        &[&sym, &key, &our_sym],
    ));
    ours_ok(&run, "Signing succeeded", "sign with symlinks");

    let verify = "verify key {} --signature {} --public_key {}";
    let unsigned = format!("{verify} --ignore_unsigned_files");
    let symlinks = format!("{verify} --allow_symlinks");
    let (peer_sig, peer_sym) = (d.join("peer.sig"), d.join("peer-sym.sig"));
    let mut b = Batch::default();
    let p_sign = b.cli(argv(sign, &[&model, &key, &peer_sig]));
    let p_sign_sym = b.cli(argv(
        &format!("{sign} --allow_symlinks"),
        &[&sym, &key, &peer_sym],
    ));
    let p_extra_ok = b.cli(argv(&unsigned, &[&extra, &our_sig, &public]));
    let p_extra_fails = b.cli(argv(verify, &[&extra, &our_sig, &public]));
    let p_missing_fails = b.cli(argv(&unsigned, &[&missing, &our_sig, &public]));
    let p_sym_ok = b.cli(argv(&symlinks, &[&sym, &our_sym, &public]));
    let p_sym_fails = b.cli(argv(verify, &[&sym, &our_sym, &public]));
    let r = b.run(d);
    peer_cli_ok(&r[p_sign], "Signing succeeded", "sign");
    peer_cli_ok(&r[p_sign_sym], "Signing succeeded", "sign with symlinks");
    peer_cli_ok(
        &r[p_extra_ok],
        "Verification succeeded",
        "--ignore_unsigned_files",
    );
    let err = peer_cli_fails(&r[p_extra_fails], "extra file");
    assert!(err.contains("sub/unsigned.bin"), "{err}");
    let err = peer_cli_fails(&r[p_missing_fails], "missing file, --ignore_unsigned_files");
    assert!(err.contains("a.txt"), "{err}");
    peer_cli_ok(&r[p_sym_ok], "Verification succeeded", "--allow_symlinks");
    assert!(peer_cli_fails(&r[p_sym_fails], "symlinks").contains("symlink"));

    let run = ours(argv(&unsigned, &[&extra, &peer_sig, &public]));
    ours_ok(&run, "Verification succeeded", "--ignore_unsigned_files");
    let run = ours(argv(verify, &[&extra, &peer_sig, &public]));
    let err = ours_fails(&run, "Verification", "extra file");
    assert!(err.contains("sub/unsigned.bin"), "{run}");
    let run = ours(argv(&unsigned, &[&missing, &peer_sig, &public]));
    let err = ours_fails(
        &run,
        "Verification",
        "missing file, --ignore_unsigned_files",
    );
    assert!(err.contains("a.txt"), "{run}");
    let run = ours(argv(&symlinks, &[&sym, &peer_sym, &public]));
    ours_ok(&run, "Verification succeeded", "--allow_symlinks");
    // Both signed the same resources: the links' targets under the links' names, not linkdir.
    let peer_v = ours_json(argv("inspect {}", &[&peer_sym]));
    let our_v = ours_json(argv("inspect {}", &[&our_sym]));
    assert_eq!(
        peer_v["root_digest"], our_v["root_digest"],
        "peer {peer_v}\nours {our_v}"
    );
    assert_eq!(our_v["resources"], FILES + 2, "{our_v}");
    let run = ours(argv(verify, &[&sym, &peer_sym, &public]));
    let err = ours_fails(&run, "Verification", "symlinks without --allow_symlinks");
    assert!(
        err.contains("symlink") && err.contains("--allow-symlinks"),
        "{run}"
    );
}
