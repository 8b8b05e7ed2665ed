//! The Helm chart `deploy/helm/model-validation-operator` next to the kustomize base: helm and
//! kustomize from `hack/testbin` (never from the PATH), renderings parsed and normalized so
//! that two renderings of the same objects compare equal, and a readable diff when they do not.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::Value;

use super::rbac::deploy_dir;

/// The chart's directory.
pub fn chart_dir() -> PathBuf {
    deploy_dir().join("helm/model-validation-operator")
}

/// A tool built by `hack/testbin/build.sh`; panics (never skips) when it is missing.
pub fn testbin_tool(name: &str) -> PathBuf {
    let path = test_cluster::testbin_dir().join(name);
    assert!(
        path.is_file(),
        "{name} is missing at {}: run hack/testbin/build.sh (or `make testbin`) to build it",
        path.display()
    );
    path
}

/// Runs a testbin tool with `args`; helm's own state (repositories, cache, plugins) is kept in
/// the test's scratch directory, away from the user's.
pub fn run_tool(name: &str, args: &[&str], envs: &[(&str, &Path)]) -> Output {
    let home = Path::new(env!("CARGO_TARGET_TMPDIR")).join("helm-home");
    let mut cmd = Command::new(testbin_tool(name));
    cmd.args(args)
        .env("HELM_CACHE_HOME", home.join("cache"))
        .env("HELM_CONFIG_HOME", home.join("config"))
        .env("HELM_DATA_HOME", home.join("data"))
        .env_remove("KUBECONFIG");
    for (k, v) in envs {
        cmd.env(k, v);
    }
    cmd.output()
        .unwrap_or_else(|e| panic!("{name} {args:?}: {e}"))
}

/// The stdout of a run that must succeed (its stderr in the panic otherwise).
pub fn success(what: &str, out: Output) -> String {
    assert!(
        out.status.success(),
        "{what} failed ({}):\n{}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// `helm VERB RELEASE CHART` (`install`, or `upgrade` with `extra` saying how to treat the last
/// values) of the chart into `namespace`, which helm creates when missing (the chart then
/// labels it), with the values files `values`, on the cluster of `kubeconfig`. Returns the run,
/// for a caller that expects a refusal; [`helm_install`] asserts success.
pub fn helm_release(
    verb: &str,
    kubeconfig: &Path,
    release: &str,
    namespace: &str,
    values: &[&Path],
    extra: &[&str],
) -> Output {
    let mut flags = vec!["--create-namespace"];
    flags.extend(extra);
    let args = chart_args(verb, release, namespace, values, &flags);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    run_tool("helm", &args, &[("KUBECONFIG", kubeconfig)])
}

/// `VERB RELEASE CHART --namespace NAMESPACE FLAGS… --values V…`: the arguments of every helm
/// command on the chart.
fn chart_args(
    verb: &str,
    release: &str,
    namespace: &str,
    values: &[&Path],
    flags: &[&str],
) -> Vec<String> {
    let chart = chart_dir();
    let mut args = vec![
        verb,
        release,
        chart.to_str().unwrap(),
        "--namespace",
        namespace,
    ];
    args.extend(flags);
    for v in values {
        args.extend(["--values", v.to_str().unwrap()]);
    }
    args.into_iter().map(str::to_owned).collect()
}

/// `helm install` of the chart as `release` into `namespace` (created, as docs/helm.md says),
/// with the values files `values` (none: the defaults), on the cluster of `kubeconfig`; panics
/// unless it succeeds. Returns helm's report (status and NOTES). Without `--wait`: callers
/// wait for what they need (the Deployment available, a webhook answering).
pub fn helm_install(kubeconfig: &Path, release: &str, namespace: &str, values: &[&Path]) -> String {
    let out = helm_release("install", kubeconfig, release, namespace, values, &[]);
    success(
        &format!("helm install {release} --namespace {namespace}"),
        out,
    )
}

/// `helm uninstall` of `release` in `namespace` on the cluster of `kubeconfig` (without
/// `--wait`: the namespace it created may still be terminating); panics unless it succeeds.
pub fn helm_uninstall(kubeconfig: &Path, release: &str, namespace: &str) -> String {
    let args = ["uninstall", release, "--namespace", namespace];
    let out = run_tool("helm", &args, &[("KUBECONFIG", kubeconfig)]);
    success(&format!("helm {args:?}"), out)
}

/// `kustomize build DIR`, as `kubectl apply -k DIR` renders it.
pub fn kustomize_build(dir: &Path) -> Vec<Value> {
    let out = run_tool("kustomize", &["build", dir.to_str().unwrap()], &[]);
    parse_docs(&success(&format!("kustomize build {}", dir.display()), out))
}

/// `helm template` of the chart into `namespace` with the values files `values` (CRDs included).
pub fn helm_template(namespace: &str, values: &[&Path]) -> Vec<Value> {
    let args = chart_args(
        "template",
        "model-validation-operator",
        namespace,
        values,
        &["--include-crds"],
    );
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let out = run_tool("helm", &args, &[]);
    yaml_roundtrip(&success(&format!("helm {args:?}"), out))
}

/// `text` read and written back by kustomize (a kustomization of that one file, with no
/// transformer), then parsed. Renderings compared with [`kustomize_build`] go through the same
/// YAML library, so that a folded scalar the two libraries read differently (go-yaml keeps an
/// extra line break before a more-indented line of `>-`) is no difference.
pub fn yaml_roundtrip(text: &str) -> Vec<Value> {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("rendered.yaml"), text).unwrap();
    std::fs::write(
        dir.path().join("kustomization.yaml"),
        "apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nresources:\n  - rendered.yaml\n",
    )
    .unwrap();
    kustomize_build(dir.path())
}

/// The documents of a multi-document YAML stream (empty ones dropped).
pub fn parse_docs(text: &str) -> Vec<Value> {
    serde_saphyr::from_multiple::<Value>(text)
        .unwrap_or_else(|e| panic!("{e}:\n{text}"))
        .into_iter()
        .filter(|d| !d.is_null())
        .collect()
}

/// The labels Helm charts add by convention, which the kustomize base does not carry.
pub const HELM_LABELS: [&str; 4] = [
    "helm.sh/chart",
    "app.kubernetes.io/managed-by",
    "app.kubernetes.io/instance",
    "app.kubernetes.io/version",
];

/// The cluster-scoped kinds of the install. kustomize's namespace transformer sets a namespace
/// on the ones its built-in schema does not know (ValidatingAdmissionPolicy, …); the API server
/// ignores it there, and so does the comparison.
const CLUSTER_SCOPED: [&str; 7] = [
    "Namespace",
    "CustomResourceDefinition",
    "ClusterRole",
    "ClusterRoleBinding",
    "MutatingWebhookConfiguration",
    "ValidatingAdmissionPolicy",
    "ValidatingAdmissionPolicyBinding",
];

/// `apiVersion kind namespace/name` of a document.
pub fn object_key(doc: &Value) -> String {
    let m = &doc["metadata"];
    format!(
        "{} {} {}/{}",
        doc["apiVersion"].as_str().unwrap_or("?"),
        doc["kind"].as_str().unwrap_or("?"),
        m["namespace"].as_str().unwrap_or(""),
        m["name"].as_str().unwrap_or("?")
    )
}

/// `doc` without Helm's labels, an empty label map, or a namespace on a cluster-scoped kind.
pub fn normalize(doc: &Value) -> Value {
    let mut doc = doc.clone();
    let cluster = CLUSTER_SCOPED.contains(&doc["kind"].as_str().unwrap_or(""));
    let meta = doc["metadata"].as_object_mut().expect("metadata");
    if cluster {
        meta.remove("namespace");
    }
    if let Some(labels) = meta.get_mut("labels").and_then(Value::as_object_mut) {
        for l in HELM_LABELS {
            labels.remove(l);
        }
        if labels.is_empty() {
            meta.remove("labels");
        }
    }
    doc
}

/// The normalized objects by [`object_key`]; panics on a duplicate.
pub fn by_key(docs: &[Value]) -> BTreeMap<String, Value> {
    let mut map = BTreeMap::new();
    for d in docs {
        let d = normalize(d);
        let key = object_key(&d);
        assert!(map.insert(key.clone(), d).is_none(), "{key} twice");
    }
    map
}

/// Asserts that two renderings hold the same objects with the same content (after
/// [`normalize`], in any order); on a difference, panics with a unified diff of each object that
/// differs and the objects only one side has.
pub fn assert_same_objects(
    what: &str,
    left_name: &str,
    left: &[Value],
    right_name: &str,
    right: &[Value],
) {
    let (l, r) = (by_key(left), by_key(right));
    let mut report = String::new();
    for k in l.keys().filter(|k| !r.contains_key(*k)) {
        report += &format!("only in {left_name}: {k}\n");
    }
    for k in r.keys().filter(|k| !l.contains_key(*k)) {
        report += &format!("only in {right_name}: {k}\n");
    }
    for (k, lv) in &l {
        let Some(rv) = r.get(k) else { continue };
        if lv != rv {
            report += &format!(
                "{k} differs:\n{}\n",
                unified_diff(lv, rv, left_name, right_name)
            );
        }
    }
    assert!(report.is_empty(), "{what}:\n{report}");
}

/// `diff -u` of two values as pretty JSON (keys sorted: serde_json's map is ordered).
fn unified_diff(a: &Value, b: &Value, a_name: &str, b_name: &str) -> String {
    let dir = tempfile::tempdir().unwrap();
    let (pa, pb) = (dir.path().join(a_name), dir.path().join(b_name));
    std::fs::write(&pa, serde_json::to_string_pretty(a).unwrap() + "\n").unwrap();
    std::fs::write(&pb, serde_json::to_string_pretty(b).unwrap() + "\n").unwrap();
    let out = Command::new("diff")
        .arg("-u")
        .arg(&pa)
        .arg(&pb)
        .output()
        .expect("diff (diffutils)");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Asserts that every file of `dir` (by name) has the same bytes in `copy` and nothing more
/// is there, naming how to bring the copy up to date.
pub fn assert_same_files(dir: &Path, copy: &Path, how: &str, skip: &[&str]) {
    let names = |d: &Path| -> Vec<String> {
        let mut v: Vec<String> = std::fs::read_dir(d)
            .unwrap_or_else(|e| panic!("{}: {e}", d.display()))
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .filter(|n| !skip.contains(&n.as_str()))
            .collect();
        v.sort();
        v
    };
    assert_eq!(
        names(copy),
        names(dir),
        "{} and {}: {how}",
        copy.display(),
        dir.display()
    );
    for n in names(dir) {
        assert!(
            std::fs::read(dir.join(&n)).unwrap() == std::fs::read(copy.join(&n)).unwrap(),
            "{} differs from {}: {how}",
            copy.join(&n).display(),
            dir.join(&n).display()
        );
    }
}

/// A CRD that serves `kind` of `group` (v1) with an open schema: enough for the API server to
/// accept the chart's cert-manager and Prometheus Operator objects in a test, without those
/// operators (their own CRDs validate the fields; these do not).
pub fn stub_crd(group: &str, kind: &str, plural: &str) -> Value {
    serde_json::json!({
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": { "name": format!("{plural}.{group}") },
        "spec": {
            "group": group,
            "scope": "Namespaced",
            "names": { "kind": kind, "plural": plural, "singular": kind.to_lowercase(), "listKind": format!("{kind}List") },
            "versions": [{
                "name": "v1", "served": true, "storage": true,
                "schema": { "openAPIV3Schema": { "type": "object", "x-kubernetes-preserve-unknown-fields": true } }
            }]
        }
    })
}
