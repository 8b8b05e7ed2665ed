//! The examples of docs/policy-guide.md against the real API server, so that none of them is a
//! manifest the cluster would refuse. Every ```yaml block of the guide is read:
//!
//! - each ClusterModelValidation is server-side applied as a dry run, with strict field
//!   validation, after the CRDs are installed: the schema and its CEL rules judge it, and a
//!   misspelt field is an error rather than silently dropped;
//! - each Secret and ConfigMap is dry-run applied in the operator's namespace, and every
//!   `secretRef` / `configMapRef` of a policy names one of them and a key it holds;
//! - every PEM block is well-formed (matching BEGIN and END labels around base64), and a block
//!   holding one says in a comment where the real material goes;
//! - each Kustomization's patches apply to `deploy/base`, change only the cluster-pods webhook,
//!   keep `--cluster-policy-namespaces` equal to that webhook's selector, and the patched
//!   objects pass a dry run.
//!
//! Broken copies of the examples are refused, so the check can fail.

mod support;

use std::collections::BTreeMap;

use base64::Engine;
use k8s_openapi::api::admissionregistration::v1::MutatingWebhookConfiguration;
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{ConfigMap, Namespace, Secret};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;
use kube::Client;
use kube::api::{Api, Patch, PatchParams, PostParams};
use serde_json::{Value, json};
use support::{OPERATOR_NAMESPACE, api_message, cmv_api, deploy_dir, kustomize};

/// The guide, from the crate's directory.
const GUIDE_PATH: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../docs/policy-guide.md");
/// The guide, as messages name it.
const GUIDE: &str = "docs/policy-guide.md";

/// The webhook that ClusterModelValidations are served through (deploy/base/webhook.yaml).
const CLUSTER_WEBHOOK: &str = "cluster-pods.validation.ml.sigstore.dev";
const WORKLOADS_WEBHOOK: &str = "workloads.validation.ml.sigstore.dev";

/// What the guide's ```yaml blocks hold, each with the line its block starts on.
#[derive(Default)]
struct Examples {
    policies: Vec<(usize, Value)>,
    secrets: BTreeMap<String, (usize, Value)>,
    config_maps: BTreeMap<String, (usize, Value)>,
    kustomizations: Vec<(usize, Value)>,
}

/// The ```yaml blocks of `markdown`: (line of the opening fence, text without the fence's
/// indentation). Blocks of other languages are skipped whole.
fn yaml_blocks(markdown: &str) -> Vec<(usize, String)> {
    let mut blocks = Vec::new();
    let mut open: Option<(usize, usize, bool, String)> = None;
    for (i, line) in markdown.lines().enumerate() {
        let trimmed = line.trim_start();
        let indent = line.len() - trimmed.len();
        match &mut open {
            None => {
                if let Some(lang) = trimmed.strip_prefix("```") {
                    open = Some((i + 1, indent, lang.trim() == "yaml", String::new()));
                }
            }
            Some((start, indent, is_yaml, text)) => {
                if trimmed == "```" {
                    if *is_yaml {
                        blocks.push((*start, std::mem::take(text)));
                    }
                    open = None;
                } else {
                    text.push_str(line.get(*indent..).unwrap_or(trimmed));
                    text.push('\n');
                }
            }
        }
    }
    assert!(open.is_none(), "{GUIDE}: a code block is never closed");
    blocks
}

/// Every ```yaml block of the guide, sorted by kind; anything else in such a block fails.
fn examples() -> Examples {
    let text = std::fs::read_to_string(GUIDE_PATH).unwrap_or_else(|e| panic!("{GUIDE_PATH}: {e}"));
    let mut ex = Examples::default();
    for (line, block) in yaml_blocks(&text) {
        check_pem(line, &block);
        let docs: Vec<Value> = serde_saphyr::from_multiple(&block)
            .unwrap_or_else(|e| panic!("{GUIDE}:{line}: not YAML: {e}"));
        for doc in docs.into_iter().filter(|d| !d.is_null()) {
            let name = doc["metadata"]["name"]
                .as_str()
                .unwrap_or_default()
                .to_string();
            let (api, kind) = (
                doc["apiVersion"].as_str().map(String::from),
                doc["kind"].as_str().map(String::from),
            );
            match (api.as_deref(), kind.as_deref()) {
                (Some("ml.sigstore.dev/v1alpha1"), Some("ClusterModelValidation")) => {
                    assert!(
                        doc["metadata"].get("namespace").is_none(),
                        "{GUIDE}:{line}: a ClusterModelValidation is cluster-scoped: no metadata.namespace"
                    );
                    ex.policies.push((line, doc));
                }
                (Some("v1"), Some(kind @ ("Secret" | "ConfigMap"))) => {
                    assert_eq!(
                        doc["metadata"]["namespace"].as_str(),
                        Some(OPERATOR_NAMESPACE),
                        "{GUIDE}:{line}: {kind} {name}: the operator reads trust material only from its own namespace"
                    );
                    let map = if kind == "Secret" {
                        &mut ex.secrets
                    } else {
                        &mut ex.config_maps
                    };
                    if let Some((first, _)) = map.insert(name.clone(), (line, doc)) {
                        panic!("{GUIDE}:{line}: {kind} {name} is defined twice (also at {first})");
                    }
                }
                (Some("kustomize.config.k8s.io/v1beta1"), Some("Kustomization")) => {
                    ex.kustomizations.push((line, doc));
                }
                (api, kind) => panic!(
                    "{GUIDE}:{line}: a ```yaml block of the guide holds {kind:?} ({api:?}); this test checks only ClusterModelValidations, the Secrets and ConfigMaps they reference, and Kustomizations: use another fence for anything else, or teach this test to check it"
                ),
            }
        }
    }
    ex
}

/// Every PEM block in `block` has matching BEGIN and END labels around a base64 body, and the
/// block says in a comment what replaces it.
fn check_pem(line: usize, block: &str) {
    let mut lines = block.lines().map(str::trim);
    let mut found = false;
    while let Some(l) = lines.next() {
        let Some(label) = l
            .strip_prefix("-----BEGIN ")
            .and_then(|r| r.strip_suffix("-----"))
        else {
            continue;
        };
        found = true;
        let end = format!("-----END {label}-----");
        let mut body = String::new();
        loop {
            let l = lines
                .next()
                .unwrap_or_else(|| panic!("{GUIDE}:{line}: PEM block {label} has no {end}"));
            if l == end {
                break;
            }
            assert!(
                !l.starts_with("-----"),
                "{GUIDE}:{line}: PEM block {label} ends with {l:?}, not {end:?}"
            );
            body.push_str(l);
        }
        let decoded = base64::engine::general_purpose::STANDARD
            .decode(&body)
            .unwrap_or_else(|e| {
                panic!("{GUIDE}:{line}: PEM block {label}: body is not base64: {e}")
            });
        assert!(
            !decoded.is_empty(),
            "{GUIDE}:{line}: PEM block {label} is empty"
        );
    }
    if found {
        assert!(
            block
                .lines()
                .any(|l| l.trim_start().starts_with('#') && l.to_lowercase().contains("replace")),
            "{GUIDE}:{line}: a block with placeholder PEM must say in a comment what replaces it"
        );
    }
}

/// `data[key]` (decoded) or `stringData[key]` of a Secret, `data[key]` of a ConfigMap.
fn value_of(doc: &Value, key: &str) -> Option<String> {
    if let Some(s) = doc["stringData"][key].as_str() {
        return Some(s.to_string());
    }
    let v = doc["data"][key].as_str()?;
    if doc["kind"] == "Secret" {
        let bytes = base64::engine::general_purpose::STANDARD.decode(v).ok()?;
        String::from_utf8(bytes).ok()
    } else {
        Some(v.to_string())
    }
}

/// Every `secretRef` / `configMapRef` of the policy names an object of the guide that holds the
/// key; PEM references hold PEM.
fn check_references(ex: &Examples, line: usize, policy: &Value) {
    let authorities = policy["spec"]["authorities"].as_array().unwrap();
    for (i, a) in authorities.iter().enumerate() {
        let sources = [
            ("key", &a["key"], true),
            ("certificateAuthority", &a["certificateAuthority"], true),
            ("keyless.trustedRoot", &a["keyless"]["trustedRoot"], false),
        ];
        for (field, source, pem) in sources {
            for (by, kind, objects) in [
                ("secretRef", "Secret", &ex.secrets),
                ("configMapRef", "ConfigMap", &ex.config_maps),
            ] {
                let r = &source[by];
                if r.is_null() {
                    continue;
                }
                let (name, key) = (r["name"].as_str().unwrap(), r["key"].as_str().unwrap());
                let at = format!("{GUIDE}:{line}: spec.authorities[{i}].{field}.{by}");
                let (_, object) = objects.get(name).unwrap_or_else(|| {
                    panic!("{at} names {kind} {name}, which no example of the guide defines")
                });
                let value = value_of(object, key)
                    .unwrap_or_else(|| panic!("{at} names key {key}, which {kind} {name} lacks"));
                if pem {
                    assert!(
                        value.contains("-----BEGIN "),
                        "{at}: {kind} {name} key {key} holds no PEM"
                    );
                }
            }
        }
    }
}

/// Server-side apply of `doc` through `api` as a dry run, with strict field validation.
async fn dry_apply<K>(api: &Api<K>, doc: &Value) -> Result<(), String>
where
    K: kube::Resource + Clone + serde::de::DeserializeOwned + std::fmt::Debug,
{
    let name = doc["metadata"]["name"].as_str().unwrap();
    let params = PatchParams::apply("policy-guide")
        .force()
        .dry_run()
        .validation_strict();
    api.patch(name, &params, &Patch::Apply(doc))
        .await
        .map(|_| ())
        .map_err(api_message)
}

/// The Kustomization's JSON patches applied to `deploy/base`: the only webhooks they change are
/// the two for cluster policies (pods and workloads), whose namespace selectors are then exactly
/// what the operator registers for its `--cluster-policy-namespaces` (its environment variable),
/// and the patched objects pass a dry run.
async fn check_kustomization(client: &Client, line: usize, k: &Value) {
    let mut base = kustomize(&deploy_dir().join("base"));
    let patches = k["patches"].as_array().unwrap_or_else(|| {
        panic!("{GUIDE}:{line}: this test checks a Kustomization's `patches` and it has none")
    });
    let mut touched = Vec::new();
    for p in patches {
        let (kind, name) = (
            p["target"]["kind"].as_str().unwrap(),
            p["target"]["name"].as_str().unwrap(),
        );
        let ops: json_patch::Patch = serde_saphyr::from_str(p["patch"].as_str().unwrap())
            .unwrap_or_else(|e| panic!("{GUIDE}:{line}: patch of {kind} {name}: {e}"));
        let doc = base
            .iter_mut()
            .find(|d| d["kind"] == kind && d["metadata"]["name"] == name)
            .unwrap_or_else(|| panic!("{GUIDE}:{line}: deploy/base has no {kind} {name}"));
        let before = doc.clone();
        json_patch::patch(doc, &ops)
            .unwrap_or_else(|e| panic!("{GUIDE}:{line}: patch of {kind} {name}: {e}"));
        touched.push((before, doc.clone()));
    }
    let mut webhook_selector = None;
    let mut flag = None;
    for (before, after) in &touched {
        match after["kind"].as_str().unwrap() {
            "MutatingWebhookConfiguration" => {
                let (b, a) = (
                    before["webhooks"].as_array().unwrap(),
                    after["webhooks"].as_array().unwrap(),
                );
                assert_eq!(
                    b.len(),
                    a.len(),
                    "{GUIDE}:{line}: a webhook was added or removed"
                );
                let changed: Vec<&Value> = b
                    .iter()
                    .zip(a)
                    .filter(|(x, y)| x != y)
                    .map(|(_, y)| y)
                    .collect();
                assert_eq!(
                    changed.iter().map(|w| &w["name"]).collect::<Vec<_>>(),
                    [CLUSTER_WEBHOOK, WORKLOADS_WEBHOOK],
                    "{GUIDE}:{line}: the patch must change the two webhooks for cluster policies and no other"
                );
                webhook_selector = Some(
                    changed
                        .iter()
                        .map(|w| (w["name"].clone(), w["namespaceSelector"].clone()))
                        .collect::<Vec<_>>(),
                );
                let typed: MutatingWebhookConfiguration = serde_json::from_value(after.clone())
                    .unwrap_or_else(|e| panic!("{GUIDE}:{line}: patched webhook: {e}"));
                let api = Api::<MutatingWebhookConfiguration>::all(client.clone());
                let doc = serde_json::to_value(&typed).unwrap();
                dry_apply(&api, &doc)
                    .await
                    .unwrap_or_else(|e| panic!("{GUIDE}:{line}: patched webhook refused: {e}"));
            }
            "Deployment" => {
                let typed: Deployment = serde_json::from_value(after.clone())
                    .unwrap_or_else(|e| panic!("{GUIDE}:{line}: patched Deployment: {e}"));
                let container = &typed
                    .spec
                    .as_ref()
                    .unwrap()
                    .template
                    .spec
                    .as_ref()
                    .unwrap()
                    .containers[0];
                flag = container
                    .env
                    .iter()
                    .flatten()
                    .find(|e| e.name == "MVO_CLUSTER_POLICY_NAMESPACES")
                    .and_then(|e| e.value.clone())
                    .or_else(|| {
                        container.args.iter().flatten().find_map(|a| {
                            a.strip_prefix("--cluster-policy-namespaces=")
                                .map(String::from)
                        })
                    });
                let api = Api::<Deployment>::namespaced(client.clone(), OPERATOR_NAMESPACE);
                dry_apply(&api, &serde_json::to_value(&typed).unwrap())
                    .await
                    .unwrap_or_else(|e| panic!("{GUIDE}:{line}: patched Deployment refused: {e}"));
            }
            other => {
                panic!("{GUIDE}:{line}: this test does not know what a patch of {other} must keep")
            }
        }
    }
    let (Some(webhooks), Some(flag)) = (webhook_selector, flag) else {
        panic!(
            "{GUIDE}:{line}: a Kustomization changing where cluster policies apply must patch both the {CLUSTER_WEBHOOK} and {WORKLOADS_WEBHOOK} webhooks and the operator's --cluster-policy-namespaces"
        )
    };
    let selector: LabelSelector = serde_json::from_str(&flag)
        .unwrap_or_else(|e| panic!("{GUIDE}:{line}: --cluster-policy-namespaces {flag}: {e}"));
    kube::core::Selector::try_from(selector.clone())
        .unwrap_or_else(|e| panic!("{GUIDE}:{line}: --cluster-policy-namespaces {flag}: {e}"));
    // What the operator itself registers for that flag (outside a cluster), webhook by webhook.
    let registered = model_validation_operator::registration::webhooks(
        |_| Default::default(),
        OPERATOR_NAMESPACE,
        &selector,
    );
    for (name, patched) in webhooks {
        let ours = registered
            .iter()
            .find(|w| json!(w.name) == name)
            .unwrap_or_else(|| panic!("the operator registers no webhook {name}"));
        let patched: LabelSelector = serde_json::from_value(patched.clone())
            .unwrap_or_else(|e| panic!("{GUIDE}:{line}: {name} namespaceSelector: {e}"));
        let normal = |s: &LabelSelector| {
            let mut s = s.clone();
            s.match_labels = s.match_labels.filter(|m| !m.is_empty());
            s.match_expressions = s.match_expressions.filter(|e| !e.is_empty());
            s
        };
        assert_eq!(
            normal(&patched),
            normal(ours.namespace_selector.as_ref().unwrap()),
            "{GUIDE}:{line}: the {name} webhook's namespaceSelector must be what the operator registers for --cluster-policy-namespaces {flag}"
        );
    }
}

/// A copy of the first policy `pick` accepts, broken by `breaks`.
fn broken(
    ex: &Examples,
    pick: impl Fn(&Value) -> bool,
    breaks: impl Fn(&mut Value),
) -> (usize, Value) {
    let (line, p) = ex
        .policies
        .iter()
        .find(|(_, p)| pick(p))
        .expect("the guide has an example of this shape");
    let mut p = p.clone();
    breaks(&mut p);
    (*line, p)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_example_of_the_policy_guide_is_accepted_by_the_api_server() {
    let ex = examples();
    assert!(
        ex.policies.len() >= 5,
        "the guide has {} ClusterModelValidation examples; it promises at least 5",
        ex.policies.len()
    );
    test_cluster::install_crypto_provider();
    let cp = test_cluster::shared().await.unwrap();
    let client = cp.client().unwrap();
    model_validation_operator::bootstrap::install_crds(&client)
        .await
        .unwrap();
    let ns: Namespace =
        serde_json::from_value(json!({"metadata": {"name": OPERATOR_NAMESPACE}})).unwrap();
    match Api::<Namespace>::all(client.clone())
        .create(&PostParams::default(), &ns)
        .await
    {
        Ok(_) => {}
        Err(kube::Error::Api(e)) if e.code == 409 => {}
        Err(e) => panic!("cannot create namespace {OPERATOR_NAMESPACE}: {e}"),
    }
    let secrets = Api::<Secret>::namespaced(client.clone(), OPERATOR_NAMESPACE);
    for (name, (line, doc)) in &ex.secrets {
        dry_apply(&secrets, doc)
            .await
            .unwrap_or_else(|e| panic!("{GUIDE}:{line}: Secret {name} refused: {e}"));
    }
    let config_maps = Api::<ConfigMap>::namespaced(client.clone(), OPERATOR_NAMESPACE);
    for (name, (line, doc)) in &ex.config_maps {
        dry_apply(&config_maps, doc)
            .await
            .unwrap_or_else(|e| panic!("{GUIDE}:{line}: ConfigMap {name} refused: {e}"));
    }
    let cmvs = cmv_api(&client);
    for (line, policy) in &ex.policies {
        let name = policy["metadata"]["name"].as_str().unwrap();
        dry_apply(&cmvs, policy).await.unwrap_or_else(|e| {
            panic!("{GUIDE}:{line}: ClusterModelValidation {name} refused: {e}")
        });
        check_references(&ex, *line, policy);
    }
    for (line, k) in &ex.kustomizations {
        check_kustomization(&client, *line, k).await;
    }
    // Twins: broken copies of the guide's examples are refused, each for the rule it breaks.
    let pem = "-----BEGIN PUBLIC KEY-----\nUGxhY2Vob2xkZXI=\n-----END PUBLIC KEY-----\n";
    let keyless = |p: &Value| p["spec"]["authorities"][0]["keyless"].is_object();
    let twins = [
        (
            broken(&ex, keyless, |p| {
                p["spec"]["authorities"][0]["key"] = json!({"pem": pem});
            }),
            "an authority sets exactly one of key, certificateAuthority and keyless",
        ),
        (
            broken(
                &ex,
                |p| p["spec"]["requiredAuthorities"] == "all",
                |p| {
                    let n = p["spec"]["authorities"].as_array().unwrap().len();
                    p["spec"]["requiredAuthorities"] = json!(n + 1);
                },
            ),
            "requiredAuthorities asks for more authorities than spec.authorities lists",
        ),
        (
            broken(
                &ex,
                |p| p["spec"]["authorities"][0]["key"]["secretRef"].is_object(),
                |p| p["spec"]["authorities"][0]["key"]["pem"] = json!(pem),
            ),
            "set exactly one of pem, secretRef and configMapRef",
        ),
        (
            broken(&ex, keyless, |p| {
                let spec = p["spec"].as_object_mut().unwrap();
                let mode = spec.remove("mode").unwrap_or(json!("enforce"));
                spec.insert("enforcementMode".into(), mode);
            }),
            "enforcementMode",
        ),
    ];
    for ((line, policy), rule) in twins {
        let e = dry_apply(&cmvs, &policy).await.expect_err(&format!(
            "{GUIDE}:{line}: a broken copy was accepted: {policy}"
        ));
        assert!(
            e.contains(rule),
            "{GUIDE}:{line}: refused, but not for {rule:?}: {e}"
        );
        println!("refused as expected: {e}");
    }
}
