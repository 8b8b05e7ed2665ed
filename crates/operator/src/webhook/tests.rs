use std::collections::{BTreeMap, BTreeSet};

use k8s_openapi::api::core::v1::{Container, Pod};
use kube::core::admission::{AdmissionRequest, AdmissionResponse, AdmissionReview};
use serde_json::{Value, json};

use super::*;
use crate::crd::{ModelValidationSpec, SigstoreConfig, ValidationConfig};
use crate::names::annotations;
use crate::test_support::key_spec;

mod cluster;
mod images;

#[derive(Default)]
struct Memory {
    mvs: BTreeMap<(String, String), FoundPolicy>,
    ignored: BTreeSet<String>,
    unsynced: bool,
    cluster: Vec<crate::cluster_policy::ClusterPolicy>,
    namespace_labels: BTreeMap<String, BTreeMap<String, String>>,
}

impl Memory {
    fn with(mut self, ns: &str, name: &str, spec: ModelValidationSpec) -> Self {
        let display = format!("ModelValidation {ns}/{name}");
        self.mvs.insert(
            (ns.into(), name.into()),
            FoundPolicy {
                display,
                name: name.into(),
                spec,
            },
        );
        self
    }
}

impl Policies for Memory {
    fn get(&self, namespace: &str, name: &str) -> Option<FoundPolicy> {
        self.mvs
            .get(&(namespace.to_string(), name.to_string()))
            .cloned()
    }
    fn in_namespace(&self, namespace: &str) -> Vec<FoundPolicy> {
        self.mvs
            .iter()
            .filter(|((ns, _), _)| ns == namespace)
            .map(|(_, p)| p.clone())
            .collect()
    }
    fn namespace_ignored(&self, namespace: &str) -> bool {
        self.ignored.contains(namespace)
    }
    fn synced(&self) -> bool {
        !self.unsynced
    }
    fn cluster_policies(&self) -> std::sync::Arc<Vec<crate::cluster_policy::ClusterPolicy>> {
        std::sync::Arc::new(self.cluster.clone())
    }
    fn namespace_labels(&self, namespace: &str) -> Option<BTreeMap<String, String>> {
        self.namespace_labels.get(namespace).cloned()
    }
    fn trust_objects(&self) -> Option<&dyn crate::authorities::TrustObjects> {
        Some(&crate::test_support::NoTrustObjects)
    }
}

fn cfg() -> AdmitConfig {
    crate::test_support::admit_config()
}

fn pod(labels: Value, annotations: Value, init: Value) -> Value {
    json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": "p", "namespace": "team", "labels": labels, "annotations": annotations},
        "spec": {
            "initContainers": init,
            "containers": [{"name": "app", "image": "app", "volumeMounts": [
                {"name": "data", "mountPath": "/data"},
                {"name": "keys", "mountPath": "/keys"},
                {"name": "cache", "mountPath": "/cache"},
            ]}],
            "volumes": [{"name": "data", "emptyDir": {}}, {"name": "keys", "emptyDir": {}}, {"name": "cache", "emptyDir": {}}]
        }
    })
}

fn review(op: &str, pod: Value) -> AdmissionRequest<Pod> {
    let review: AdmissionReview<Pod> = serde_json::from_value(json!({
        "apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview",
        "request": {
            "uid": "u1", "kind": {"group": "", "version": "v1", "kind": "Pod"},
            "resource": {"group": "", "version": "v1", "resource": "pods"},
            "namespace": "team", "operation": op, "userInfo": {}, "object": pod, "oldObject": if op == "CREATE" { Value::Null } else { pod.clone() }
        }
    }))
    .unwrap();
    review.try_into().unwrap()
}

/// Applies the response's patch to the pod and returns the injected container.
fn injected(pod_json: &Value, resp: &AdmissionResponse) -> (Value, Container) {
    let doc = with_patch(pod_json, resp);
    let c = doc["spec"]["initContainers"]
        .as_array()
        .unwrap()
        .last()
        .unwrap()
        .clone();
    (doc, serde_json::from_value(c).unwrap())
}

/// The pod with the response's patch applied, injected or not.
fn with_patch(pod_json: &Value, resp: &AdmissionResponse) -> Value {
    assert!(resp.allowed, "denied: {:?}", resp.result);
    let patch: json_patch::Patch =
        serde_json::from_slice(resp.patch.as_ref().expect("a patch")).unwrap();
    let mut doc = pod_json.clone();
    json_patch::patch(&mut doc, &patch).unwrap();
    doc
}

fn denial(resp: &AdmissionResponse) -> String {
    assert!(!resp.allowed, "allowed");
    resp.result.message.clone()
}

#[test]
fn labelled_pod_gets_a_restricted_read_only_verifier() {
    let p = pod(
        json!({LABEL: "mv"}),
        json!({}),
        json!([{"name": "setup", "image": "x"}]),
    );
    let resp = admit(
        &review("CREATE", p.clone()),
        &Memory::default().with("team", "mv", key_spec()),
        &cfg(),
    );
    let (doc, c) = injected(&p, &resp);
    assert_eq!(
        doc["spec"]["initContainers"][0]["name"], "setup",
        "appended after existing init containers"
    );
    assert_eq!(c.name, "model-validation");
    assert_eq!(c.image.as_deref(), Some("agent:test"));
    assert_eq!(c.command, None, "the image entrypoint is model-signing");
    assert_eq!(
        c.args.unwrap(),
        [
            "verify",
            "key",
            "--public_key",
            "/keys/pub.pem",
            "--signature",
            "/data/model.sig",
            "--ignore-git-paths",
            "--fix-hints",
            "model-validation",
            "--result-file",
            "/dev/termination-log",
            "/data/model"
        ]
    );
    let mounts = c.volume_mounts.unwrap();
    assert_eq!(
        mounts
            .iter()
            .map(|m| m.mount_path.as_str())
            .collect::<Vec<_>>(),
        ["/data", "/keys"],
        "only the needed mounts"
    );
    assert!(mounts.iter().all(|m| m.read_only == Some(true)));
    let sc = c.security_context.unwrap();
    assert_eq!(sc.run_as_non_root, Some(true));
    assert_eq!(sc.read_only_root_filesystem, Some(true));
    assert_eq!(sc.allow_privilege_escalation, Some(false));
    assert_eq!(sc.capabilities.unwrap().drop.unwrap(), ["ALL"]);
    assert_eq!(sc.seccomp_profile.unwrap().type_, "RuntimeDefault");
    assert!(c.resources.unwrap().limits.is_some());
    assert_eq!(
        doc["metadata"]["annotations"][annotations::INJECTED_BY],
        "mv"
    );
}

#[test]
fn missing_model_validation_denies_with_its_name_and_namespace() {
    let p = pod(json!({LABEL: "nope"}), json!({}), json!([]));
    let msg = denial(&admit(&review("CREATE", p), &Memory::default(), &cfg()));
    assert!(
        msg.contains("ModelValidation \"nope\" not found in namespace \"team\""),
        "{msg}"
    );
}

#[test]
fn updates_ignored_namespaces_and_unlabelled_pods_pass_untouched() {
    let labelled = pod(json!({LABEL: "gone"}), json!({}), json!([]));
    for op in ["UPDATE", "DELETE"] {
        let r = admit(&review(op, labelled.clone()), &Memory::default(), &cfg());
        assert!(r.allowed && r.patch.is_none(), "{op}");
    }
    let mut ignored = Memory::default().with("team", "gone", key_spec());
    ignored.ignored.insert("team".into());
    let r = admit(&review("CREATE", labelled.clone()), &ignored, &cfg());
    assert!(r.allowed && r.patch.is_none());
    let r = admit(
        &review("CREATE", pod(json!({"app": "x"}), json!({}), json!([]))),
        &Memory::default(),
        &cfg(),
    );
    assert!(r.allowed && r.patch.is_none());
    let mut own = cfg();
    own.operator_namespace = "team".into();
    let r = admit(&review("CREATE", labelled), &Memory::default(), &own);
    assert!(r.allowed && r.patch.is_none());
}

#[test]
fn annotations_tighten_but_never_loosen() {
    let mut loose = key_spec();
    loose.model.as_mut().unwrap().ignore_unsigned_files = Some(true);
    loose.model.as_mut().unwrap().allow_symlinks = Some(true);
    let policies =
        Memory::default()
            .with("team", "loose", loose)
            .with("team", "strict", key_spec());
    let tighten = json!({annotations::IGNORE_UNSIGNED_FILES: "false", annotations::ALLOW_SYMLINKS: "false", annotations::IGNORE_GIT_PATHS: "false"});
    let p = pod(json!({LABEL: "loose"}), tighten, json!([]));
    let (_, c) = injected(&p, &admit(&review("CREATE", p.clone()), &policies, &cfg()));
    let args = c.args.unwrap();
    assert!(
        !args.contains(&"--ignore_unsigned_files".to_string())
            && !args.contains(&"--allow_symlinks".to_string()),
        "{args:?}"
    );
    assert!(args.contains(&"--no-ignore-git-paths".to_string()));
    let loosen = json!({annotations::IGNORE_UNSIGNED_FILES: "true", annotations::ALLOW_SYMLINKS: "true", annotations::IGNORE_PATHS: "weights.bin"});
    let p = pod(json!({LABEL: "strict"}), loosen, json!([]));
    let resp = admit(&review("CREATE", p.clone()), &policies, &cfg());
    let (_, c) = injected(&p, &resp);
    let args = c.args.unwrap();
    assert!(
        !args.iter().any(|a| a == "--ignore_unsigned_files"
            || a == "--allow_symlinks"
            || a == "--ignore-paths"),
        "{args:?}"
    );
    let warnings = resp.warnings.unwrap();
    let about_annotations = warnings
        .iter()
        .filter(|w| w.starts_with("annotation "))
        .count();
    assert_eq!(about_annotations, 3, "{warnings:?}");
}

#[test]
fn an_injected_pod_is_left_alone_but_a_look_alike_is_denied() {
    let policies = Memory::default().with("team", "mv", key_spec());
    let p = pod(json!({LABEL: "mv"}), json!({}), json!([]));
    let (doc, _) = injected(&p, &admit(&review("CREATE", p.clone()), &policies, &cfg()));
    let again = admit(&review("CREATE", doc.clone()), &policies, &cfg());
    assert!(
        again.allowed && again.patch.is_none(),
        "re-invocation is idempotent"
    );
    let fake = pod(
        json!({LABEL: "mv"}),
        json!({}),
        json!([{"name": "model-validation", "image": "busybox", "command": ["true"]}]),
    );
    let msg = denial(&admit(&review("CREATE", fake), &policies, &cfg()));
    assert!(
        msg.contains("already has a container named \"model-validation\""),
        "{msg}"
    );
}

#[test]
fn legacy_label_uses_the_one_model_validation_of_the_namespace() {
    let p = pod(json!({LEGACY_LABEL: "true"}), json!({}), json!([]));
    let one = Memory::default().with("team", "only", key_spec());
    let (_, c) = injected(&p, &admit(&review("CREATE", p.clone()), &one, &cfg()));
    assert_eq!(c.args.unwrap()[1], "key");
    let msg = denial(&admit(
        &review("CREATE", p.clone()),
        &Memory::default(),
        &cfg(),
    ));
    assert!(msg.contains("there is none"), "{msg}");
    let two = Memory::default()
        .with("team", "a", key_spec())
        .with("team", "b", key_spec());
    let msg = denial(&admit(&review("CREATE", p), &two, &cfg()));
    assert!(
        msg.contains("there are 2") && msg.contains("team/a") && msg.contains("team/b"),
        "{msg}"
    );
}

#[test]
fn sigstore_args_and_unmounted_paths() {
    let mut s = key_spec();
    s.config = ValidationConfig {
        sigstore_config: Some(SigstoreConfig {
            certificate_identity: "me@example.com".into(),
            certificate_oidc_issuer: "https://issuer".into(),
        }),
        ..Default::default()
    };
    s.model.as_mut().unwrap().ignore_paths = vec!["README.md".into()];
    let p = pod(json!({LABEL: "ks"}), json!({}), json!([]));
    let (_, c) = injected(
        &p,
        &admit(
            &review("CREATE", p.clone()),
            &Memory::default().with("team", "ks", s.clone()),
            &cfg(),
        ),
    );
    let args = c.args.unwrap();
    assert_eq!(
        &args[..6],
        [
            "verify",
            "sigstore",
            "--identity",
            "me@example.com",
            "--identity_provider",
            "https://issuer"
        ]
    );
    assert!(
        args.windows(2)
            .any(|w| w == ["--ignore-paths", "README.md"])
    );
    s.model.as_mut().unwrap().path = "/elsewhere/model".into();
    let msg = denial(&admit(
        &review("CREATE", p),
        &Memory::default().with("team", "ks", s),
        &cfg(),
    ));
    assert!(
        msg.contains("model.path /elsewhere/model is not on any volume"),
        "{msg}"
    );
}

#[test]
fn unsynced_cache_denies_instead_of_guessing() {
    let mut m = Memory::default().with("team", "mv", key_spec());
    m.unsynced = true;
    let p = pod(json!({LABEL: "mv"}), json!({}), json!([]));
    assert!(denial(&admit(&review("CREATE", p), &m, &cfg())).contains("retry"));
}

fn continuous_spec(interval: Option<&str>) -> ModelValidationSpec {
    let mut s = key_spec();
    s.continuous_validation = Some(crate::crd::ContinuousValidation {
        enabled: true,
        interval: interval.map(String::from),
    });
    s
}

#[test]
fn continuous_validation_adds_a_native_sidecar_with_readiness() {
    let policies = Memory::default().with("team", "cv", continuous_spec(Some("10m")));
    let p = pod(json!({LABEL: "cv"}), json!({}), json!([]));
    let resp = admit(&review("CREATE", p.clone()), &policies, &cfg());
    let (doc, watch) = injected(&p, &resp);
    let inits = doc["spec"]["initContainers"].as_array().unwrap();
    assert_eq!(inits.len(), 2);
    assert_eq!(
        inits[0]["name"], "model-validation",
        "the one-shot check still blocks start-up"
    );
    assert!(inits[0].get("restartPolicy").is_none());
    assert_eq!(watch.name, "model-validation-watch");
    assert_eq!(watch.restart_policy.as_deref(), Some("Always"));
    let args = watch.args.unwrap();
    assert!(
        args.windows(2).any(|w| w == ["--interval", "10m"]),
        "{args:?}"
    );
    assert!(
        args.windows(2)
            .any(|w| w == ["--health-addr", "0.0.0.0:9099"]),
        "{args:?}"
    );
    assert_eq!(args.last().unwrap(), "/data/model");
    let ready = watch.readiness_probe.unwrap();
    assert_eq!(ready.http_get.unwrap().path.as_deref(), Some("/readyz"));
    assert!(
        watch
            .volume_mounts
            .unwrap()
            .iter()
            .all(|m| m.read_only == Some(true))
    );
    // Re-invocation is idempotent with the sidecar too.
    let again = admit(&review("CREATE", doc), &policies, &cfg());
    assert!(again.allowed && again.patch.is_none());
}

#[test]
fn legacy_sidecar_is_a_regular_container_and_look_alikes_are_denied() {
    let policies = Memory::default().with("team", "cv", continuous_spec(None));
    let mut legacy = cfg();
    legacy.inject.legacy_sidecar = true;
    let p = pod(json!({LABEL: "cv"}), json!({}), json!([]));
    let resp = admit(&review("CREATE", p.clone()), &policies, &legacy);
    let patch: json_patch::Patch = serde_json::from_slice(resp.patch.as_ref().unwrap()).unwrap();
    let mut doc = p.clone();
    json_patch::patch(&mut doc, &patch).unwrap();
    assert_eq!(doc["spec"]["initContainers"].as_array().unwrap().len(), 1);
    let sidecar = doc["spec"]["containers"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == "model-validation-watch")
        .unwrap();
    assert!(sidecar.get("restartPolicy").is_none());
    assert!(
        sidecar["args"]
            .as_array()
            .unwrap()
            .iter()
            .any(|a| a == "5m"),
        "default interval"
    );
    let fake = pod(
        json!({LABEL: "cv"}),
        json!({}),
        json!([{"name": "model-validation-watch", "image": "busybox"}]),
    );
    assert!(
        denial(&admit(&review("CREATE", fake), &policies, &cfg()))
            .contains("model-validation-watch")
    );
}

#[test]
fn decisions_carry_the_method_and_the_policy_to_report_on() {
    let policies = Memory::default().with("team", "mv", key_spec());
    let ok = pod(json!({LABEL: "mv"}), json!({}), json!([]));
    let d = decide(&review("CREATE", ok), &policies, &cfg());
    assert_eq!(d.result_label(), "injected");
    assert!(
        matches!(
            d,
            Decision::Inject {
                method: "public-key",
                ..
            }
        ),
        "{d:?}"
    );

    // A refusal for a pod naming an existing ModelValidation names it, so that the server can
    // record the Event there without looking it up again; a missing one names nothing.
    let mut unmounted = pod(json!({LABEL: "mv"}), json!({}), json!([]));
    unmounted["spec"]["containers"][0]["volumeMounts"] = json!([]);
    let d = decide(&review("CREATE", unmounted), &policies, &cfg());
    assert_eq!(d.result_label(), "denied");
    assert!(
        matches!(&d, Decision::Deny { policy: Some(p), .. } if p == "mv"),
        "{d:?}"
    );
    let missing = pod(json!({LABEL: "nope"}), json!({}), json!([]));
    let d = decide(&review("CREATE", missing), &policies, &cfg());
    assert!(matches!(d, Decision::Deny { policy: None, .. }), "{d:?}");

    let other = pod(json!({"app": "x"}), json!({}), json!([]));
    let d = decide(&review("CREATE", other), &policies, &cfg());
    assert_eq!((d.result_label(), d), ("unchanged", Decision::Unchanged));
}

#[test]
fn a_spec_without_exactly_one_method_or_with_a_relative_path_is_refused_naming_the_field() {
    // The first API has no CEL rules, so such specs reach the webhook; they must not inject a
    // verifier that cannot work.
    let mut none = key_spec();
    none.config = ValidationConfig::default();
    let mut relative = key_spec();
    relative.model.as_mut().unwrap().signature_path = "model.sig".into();
    let p = pod(json!({LEGACY_LABEL: "true"}), json!({}), json!([]));
    for (spec, expected) in [
        (none, "spec.config names no verification method"),
        (
            relative,
            "spec.model.signaturePath \"model.sig\" is not an absolute path",
        ),
    ] {
        let policies = Memory::default().with("team", "legacy", spec);
        let d = decide(&review("CREATE", p.clone()), &policies, &cfg());
        let Decision::Deny { message, policy } = d else {
            panic!("not denied: {d:?}");
        };
        assert!(message.contains(expected), "{message}");
        assert!(message.contains("ModelValidation team/legacy"), "{message}");
        assert_eq!(
            policy, None,
            "the first API's label names no ModelValidation"
        );
    }
    // Its passing twin: the same pod under a valid spec is injected.
    let valid = Memory::default().with("team", "legacy", key_spec());
    injected(&p, &admit(&review("CREATE", p.clone()), &valid, &cfg()));
}

/// A public-key spec that carries its key in the policy.
fn inline_key_spec() -> ModelValidationSpec {
    let mut s = key_spec();
    s.config.public_key_config = Some(crate::crd::PublicKeyConfig {
        key_pem: Some("-----BEGIN PUBLIC KEY-----\nMFk=\n-----END PUBLIC KEY-----\n".into()),
        ..Default::default()
    });
    s
}

#[test]
fn trust_from_the_policy_reaches_the_verifier_through_its_env_not_a_pod_volume() {
    let p = pod(json!({LABEL: "mv"}), json!({}), json!([]));
    let policies = Memory::default().with("team", "mv", inline_key_spec());
    let resp = admit(&review("CREATE", p.clone()), &policies, &cfg());
    let warnings = resp.warnings.clone().unwrap_or_default();
    assert!(
        !warnings.iter().any(|w| w.contains("trust anchor")),
        "no trust warning when the policy carries the key: {warnings:?}"
    );
    let (_, c) = injected(&p, &resp);
    let args = c.args.unwrap();
    let at = args
        .iter()
        .position(|a| a == "--public-key-env")
        .expect("--public-key-env");
    assert_eq!(args[at + 1], crate::agent::env::PUBLIC_KEY);
    assert!(!args.iter().any(|a| a == "--public_key"), "{args:?}");
    let env = c.env.unwrap();
    assert_eq!(env.len(), 1);
    assert_eq!(env[0].name, crate::agent::env::PUBLIC_KEY);
    assert!(
        env[0]
            .value
            .as_deref()
            .unwrap()
            .contains("BEGIN PUBLIC KEY")
    );
    let mounts: Vec<String> = c
        .volume_mounts
        .unwrap()
        .into_iter()
        .map(|m| m.mount_path)
        .collect();
    assert_eq!(
        mounts,
        ["/data"],
        "the pod's /keys volume is not mounted into the verifier"
    );
}

#[test]
fn trust_from_a_pod_volume_warns_and_is_refused_under_require_policy_trust() {
    let p = pod(json!({LABEL: "mv"}), json!({}), json!([]));
    let policies = Memory::default().with("team", "mv", key_spec());
    let resp = admit(&review("CREATE", p.clone()), &policies, &cfg());
    let warnings = resp.warnings.clone().unwrap();
    assert!(
        warnings
            .iter()
            .any(|w| w.contains("spec.config.publicKeyConfig.keyPath")
                && w.contains("/keys/pub.pem")
                && w.contains("spec.config.publicKeyConfig.keyPem")),
        "{warnings:?}"
    );
    injected(&p, &resp);
    let mut strict = cfg();
    strict.require_policy_trust = true;
    let msg = denial(&admit(&review("CREATE", p.clone()), &policies, &strict));
    assert!(
        msg.contains("reads its trust anchor spec.config.publicKeyConfig.keyPath")
            && msg.contains("--require-policy-trust"),
        "{msg}"
    );
    // Its passing twin: the same pod under a policy that carries the key is admitted.
    let inline = Memory::default().with("team", "mv", inline_key_spec());
    injected(&p, &admit(&review("CREATE", p.clone()), &inline, &strict));
}

#[test]
fn legacy_label_values_other_than_true_are_refused_saying_what_to_write() {
    let one = Memory::default().with("team", "only", key_spec());
    for value in ["True", "yes", "1", "false", ""] {
        let p = pod(json!({LEGACY_LABEL: value}), json!({}), json!([]));
        let msg = denial(&admit(&review("CREATE", p), &one, &cfg()));
        assert!(
            msg.contains(&format!("{LEGACY_LABEL}={value:?} is not \"true\""))
                && msg.contains(&format!("write {LEGACY_LABEL}: \"true\"")),
            "{value}: {msg}"
        );
    }
    // Twins: exactly "true" is verified; with the new label too, the new label decides; in an
    // ignored namespace nothing happens.
    let p = pod(json!({LEGACY_LABEL: "true"}), json!({}), json!([]));
    injected(&p, &admit(&review("CREATE", p.clone()), &one, &cfg()));
    let both = Memory::default().with("team", "mv", key_spec());
    let p = pod(
        json!({LEGACY_LABEL: "yes", LABEL: "mv"}),
        json!({}),
        json!([]),
    );
    injected(&p, &admit(&review("CREATE", p.clone()), &both, &cfg()));
    let mut ignored = Memory::default();
    ignored.ignored.insert("team".into());
    let p = pod(json!({LEGACY_LABEL: "yes"}), json!({}), json!([]));
    let r = admit(&review("CREATE", p), &ignored, &cfg());
    assert!(r.allowed && r.patch.is_none());
}

/// A pod from its containers' JSON (volumes "data", "other", "keys" exist).
fn pod_with(init: Value, containers: Value) -> Value {
    json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": "p", "namespace": "team", "labels": {LABEL: "mv"}},
        "spec": {
            "initContainers": init,
            "containers": containers,
            "volumes": [{"name": "data", "emptyDir": {}}, {"name": "other", "emptyDir": {}}, {"name": "keys", "emptyDir": {}}]
        }
    })
}

fn app(mounts: Value) -> Value {
    json!({"name": "app", "image": "app", "volumeMounts": mounts})
}

fn decide_pod(p: &Value) -> AdmissionResponse {
    let policies = Memory::default().with("team", "mv", key_spec());
    admit(&review("CREATE", p.clone()), &policies, &cfg())
}

#[test]
fn a_second_volume_below_the_model_is_verified_too_and_containers_must_agree_on_it() {
    // The verifier mounts everything at or below the model's paths, as the app does.
    let nested = pod_with(
        json!([]),
        json!([app(json!([
            {"name": "data", "mountPath": "/data"},
            {"name": "other", "mountPath": "/data/model/weights"},
            {"name": "keys", "mountPath": "/keys"}
        ]))]),
    );
    let (_, c) = injected(&nested, &decide_pod(&nested));
    let mounts: Vec<(String, String)> = c
        .volume_mounts
        .unwrap()
        .into_iter()
        .map(|m| (m.mount_path, m.name))
        .collect();
    assert_eq!(
        mounts,
        [
            ("/data".to_string(), "data".to_string()),
            ("/data/model/weights".into(), "other".into()),
            ("/keys".into(), "keys".into())
        ]
    );
    // A sidecar that sees /data without the nested volume would read unverified files.
    let mut disagree = nested.clone();
    disagree["spec"]["initContainers"] = json!([{"name": "helper", "image": "h", "restartPolicy": "Always",
        "volumeMounts": [{"name": "data", "mountPath": "/data", "readOnly": true}]}]);
    let msg = denial(&decide_pod(&disagree));
    assert!(
        msg.contains("disagree about the files at /data/model")
            && msg.contains("init container \"helper\" mounts nothing at /data/model/weights")
            && msg.contains("container \"app\" mounts volume \"other\" at /data/model/weights"),
        "{msg}"
    );
}

#[test]
fn a_decoy_init_container_on_the_signed_volume_is_refused_and_a_downloader_is_not() {
    let app_other = app(json!([
        {"name": "other", "mountPath": "/data"},
        {"name": "keys", "mountPath": "/keys"}
    ]));
    let decoy = pod_with(
        json!([{"name": "decoy", "image": "d", "volumeMounts": [{"name": "data", "mountPath": "/data"}]}]),
        json!([app_other]),
    );
    let msg = denial(&decide_pod(&decoy));
    assert!(
        msg.contains("init container \"decoy\" mounts volume \"data\" at /data")
            && msg.contains("container \"app\" mounts volume \"other\" at /data"),
        "{msg}"
    );
    // Twin: an init container that downloads into the same volume the app reads (as KServe's
    // storage-initializer does) is admitted, keeps its writable mount and runs before the
    // verifier.
    let downloader = pod_with(
        json!([{"name": "storage-initializer", "image": "d", "volumeMounts": [{"name": "data", "mountPath": "/data"}]}]),
        json!([app(
            json!([{"name": "data", "mountPath": "/data"}, {"name": "keys", "mountPath": "/keys"}])
        )]),
    );
    let (doc, c) = injected(&downloader, &decide_pod(&downloader));
    assert_eq!(c.name, "model-validation", "the verifier is last");
    assert_eq!(
        doc["spec"]["initContainers"][0]["volumeMounts"][0].get("readOnly"),
        None
    );
}

#[test]
fn writable_model_mounts_of_sidecars_and_apps_become_read_only_with_a_warning() {
    let p = pod_with(
        json!([
            {"name": "fetch", "image": "f", "volumeMounts": [{"name": "data", "mountPath": "/data"}]},
            {"name": "sidecar", "image": "s", "restartPolicy": "Always", "volumeMounts": [{"name": "data", "mountPath": "/data"}]}
        ]),
        json!([
            app(json!([{"name": "data", "mountPath": "/data"}, {"name": "keys", "mountPath": "/keys"}])),
            {"name": "writer", "image": "w", "volumeMounts": [{"name": "data", "mountPath": "/elsewhere"}, {"name": "other", "mountPath": "/scratch"}]}
        ]),
    );
    let resp = decide_pod(&p);
    let warnings = resp.warnings.clone().unwrap();
    let (doc, _) = injected(&p, &resp);
    let ro = |path: &str| doc.pointer(path).and_then(Value::as_bool);
    assert_eq!(
        ro("/spec/initContainers/0/volumeMounts/0/readOnly"),
        None,
        "a regular init container may write before verification"
    );
    assert_eq!(
        ro("/spec/initContainers/1/volumeMounts/0/readOnly"),
        Some(true),
        "native sidecar"
    );
    assert_eq!(
        ro("/spec/containers/0/volumeMounts/0/readOnly"),
        Some(true),
        "app"
    );
    assert_eq!(
        ro("/spec/containers/0/volumeMounts/1/readOnly"),
        Some(true),
        "app's key volume"
    );
    assert_eq!(
        ro("/spec/containers/1/volumeMounts/0/readOnly"),
        Some(true),
        "same volume at another path"
    );
    assert_eq!(
        ro("/spec/containers/1/volumeMounts/1/readOnly"),
        None,
        "a volume without the model stays writable"
    );
    assert_eq!(
        warnings
            .iter()
            .filter(|w| w.contains("it is now read-only"))
            .count(),
        4,
        "{warnings:?}"
    );
    assert!(
        warnings
            .iter()
            .any(|w| w
                .contains("native sidecar \"sidecar\" mounted volume \"data\" at /data writable")),
        "{warnings:?}"
    );

    // Re-invocation: the injected pod is left alone; a copy whose app mount was made writable
    // again is patched back to read-only.
    let again = decide_pod(&doc);
    assert!(again.allowed && again.patch.is_none(), "{:?}", again.result);
    let mut copy = doc.clone();
    copy["spec"]["containers"][0]["volumeMounts"][0]["readOnly"] = json!(false);
    let resp = decide_pod(&copy);
    let patch: json_patch::Patch =
        serde_json::from_slice(resp.patch.as_ref().expect("a patch")).unwrap();
    let mut fixed = copy.clone();
    json_patch::patch(&mut fixed, &patch).unwrap();
    assert_eq!(
        fixed.pointer("/spec/containers/0/volumeMounts/0/readOnly"),
        Some(&json!(true))
    );
}

#[test]
fn sub_path_expr_on_a_model_mount_is_refused_and_elsewhere_is_fine() {
    let p = pod_with(
        json!([]),
        json!([app(json!([
            {"name": "data", "mountPath": "/data", "subPathExpr": "$(POD_NAME)"},
            {"name": "keys", "mountPath": "/keys"}
        ]))]),
    );
    let msg = denial(&decide_pod(&p));
    assert!(
        msg.contains("with subPathExpr") && msg.contains("use subPath"),
        "{msg}"
    );
    let twin = pod_with(
        json!([]),
        json!([app(json!([
            {"name": "data", "mountPath": "/data", "subPath": "models"},
            {"name": "keys", "mountPath": "/keys"},
            {"name": "other", "mountPath": "/logs", "subPathExpr": "$(POD_NAME)"}
        ]))]),
    );
    let (_, c) = injected(&twin, &decide_pod(&twin));
    let data = c
        .volume_mounts
        .unwrap()
        .into_iter()
        .find(|m| m.mount_path == "/data")
        .unwrap();
    assert_eq!(
        data.sub_path.as_deref(),
        Some("models"),
        "same volume, same subPath"
    );
}

#[test]
fn a_container_that_mounts_only_part_of_what_the_verifier_reads_is_fine() {
    // The app reads model and key; a log shipper mounts only the model's volume. They agree on
    // every path both see, so the pod is admitted.
    let p = pod_with(
        json!([]),
        json!([
            app(json!([{"name": "data", "mountPath": "/data"}, {"name": "keys", "mountPath": "/keys"}])),
            {"name": "shipper", "image": "s", "volumeMounts": [{"name": "data", "mountPath": "/data", "readOnly": true}]}
        ]),
    );
    injected(&p, &decide_pod(&p));
}

#[test]
fn an_init_container_after_the_verifier_makes_it_move_last() {
    // A later webhook (KServe's storage-initializer) or the pod author puts an init container
    // after the verifier: on (re-)invocation the verifier is moved after it.
    let policies = Memory::default().with("team", "cv", continuous_spec(Some("10m")));
    let p = pod(json!({LABEL: "cv"}), json!({}), json!([]));
    let (doc, _) = injected(&p, &admit(&review("CREATE", p.clone()), &policies, &cfg()));
    for (case, at) in [
        ("appended by a later webhook", 2),
        ("declared after a copy", 1),
    ] {
        let mut later = doc.clone();
        later["spec"]["initContainers"].as_array_mut().unwrap().insert(
            at,
            json!({"name": "swapper", "image": "x", "volumeMounts": [{"name": "data", "mountPath": "/data"}]}),
        );
        let resp = admit(&review("CREATE", later.clone()), &policies, &cfg());
        assert!(resp.allowed, "{case}: {:?}", resp.result);
        let warnings = resp.warnings.clone().unwrap_or_default();
        assert!(
            warnings
                .iter()
                .any(|w| w.contains("\"swapper\" ran after the verifier")),
            "{case}: {warnings:?}"
        );
        let patch: json_patch::Patch =
            serde_json::from_slice(resp.patch.as_ref().expect("a patch")).unwrap();
        let mut fixed = later.clone();
        json_patch::patch(&mut fixed, &patch).unwrap();
        let names: Vec<&str> = fixed["spec"]["initContainers"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["name"].as_str().unwrap())
            .collect();
        assert_eq!(
            names,
            ["swapper", "model-validation", "model-validation-watch"],
            "{case}"
        );
    }
    // Twin: the injected pod as it is stays unchanged.
    let again = admit(&review("CREATE", doc.clone()), &policies, &cfg());
    assert!(again.allowed && again.patch.is_none());
}

#[test]
fn api_server_defaults_are_tolerated_but_anything_else_added_to_our_container_is_not() {
    let policies = Memory::default().with("team", "cv", continuous_spec(Some("10m")));
    let p = pod(json!({LABEL: "cv"}), json!({}), json!([]));
    let (doc, _) = injected(&p, &admit(&review("CREATE", p.clone()), &policies, &cfg()));
    let mut defaulted = doc.clone();
    for probe in ["readinessProbe", "livenessProbe"] {
        let pr = &mut defaulted["spec"]["initContainers"][1][probe];
        pr["timeoutSeconds"] = json!(1);
        pr["successThreshold"] = json!(1);
        pr["httpGet"]["scheme"] = json!("HTTP");
    }
    let resp = admit(&review("CREATE", defaulted.clone()), &policies, &cfg());
    assert!(resp.allowed && resp.patch.is_none(), "{:?}", resp.result);
    for (field, value) in [
        ("command", json!(["sh", "-c", "exit 0"])),
        ("envFrom", json!([{"configMapRef": {"name": "x"}}])),
        ("workingDir", json!("/tmp")),
    ] {
        let mut tampered = defaulted.clone();
        tampered["spec"]["initContainers"][0][field] = value;
        let msg = denial(&admit(&review("CREATE", tampered), &policies, &cfg()));
        assert!(
            msg.contains("already has a container named"),
            "{field}: {msg}"
        );
    }
}

/// An UPDATE request from `old` to `new`.
fn update(old: &Value, new: &Value) -> AdmissionRequest<Pod> {
    let review: AdmissionReview<Pod> = serde_json::from_value(json!({
        "apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview",
        "request": {
            "uid": "u2", "kind": {"group": "", "version": "v1", "kind": "Pod"},
            "resource": {"group": "", "version": "v1", "resource": "pods"},
            "namespace": "team", "operation": "UPDATE", "userInfo": {}, "object": new, "oldObject": old
        }
    }))
    .unwrap();
    review.try_into().unwrap()
}

#[test]
fn updates_that_would_undo_verification_are_refused_and_others_pass() {
    let policies = Memory::default().with("team", "mv", key_spec());
    let p = pod(json!({LABEL: "mv"}), json!({}), json!([]));
    let (old, _) = injected(&p, &admit(&review("CREATE", p.clone()), &policies, &cfg()));
    let refused = |change: &dyn Fn(&mut Value), expected: &str| {
        let mut new = old.clone();
        change(&mut new);
        // Refused also once the ModelValidation is gone: the pod carries what it needs.
        for policies in [&policies, &Memory::default()] {
            let msg = denial(&admit(&update(&old, &new), policies, &cfg()));
            assert!(msg.contains(expected), "{expected}: {msg}");
        }
    };
    refused(
        &|p| p["spec"]["initContainers"][0]["image"] = json!("evil:latest"),
        "the image of container \"model-validation\" verified this pod's model; changing it from agent:test to evil:latest",
    );
    refused(
        &|p| p["metadata"]["labels"][LABEL] = json!("other"),
        "pod label validation.ml.sigstore.dev/ml chose the ModelValidation",
    );
    refused(
        &|p| {
            p["metadata"]["labels"]
                .as_object_mut()
                .unwrap()
                .remove(LABEL);
        },
        "changing it to unset",
    );
    refused(
        &|p| p["metadata"]["annotations"][annotations::CONFIG_HASH] = json!("0"),
        "annotation validation.ml.sigstore.dev/config-hash records how this pod was verified",
    );
    refused(
        &|p| {
            p["spec"]["ephemeralContainers"] = json!([{"name": "debug", "image": "busybox",
                "volumeMounts": [{"name": "data", "mountPath": "/data"}]}])
        },
        "ephemeral container \"debug\" mounts volume \"data\", which holds the verified model, writable at /data: add readOnly: true",
    );
    // Twins: the same kinds of change done right pass.
    for change in [
        &(|p: &mut Value| p["spec"]["containers"][0]["image"] = json!("app:v2"))
            as &dyn Fn(&mut Value),
        &|p| p["metadata"]["labels"]["team"] = json!("ml"),
        &|p| p["metadata"]["annotations"]["note"] = json!("x"),
        &|p| p["metadata"]["finalizers"] = json!([]),
        &|p| {
            p["spec"]["ephemeralContainers"] = json!([{"name": "debug", "image": "busybox",
                "volumeMounts": [{"name": "data", "mountPath": "/data", "readOnly": true}, {"name": "cache", "mountPath": "/cache"}]}])
        },
    ] {
        let mut new = old.clone();
        change(&mut new);
        let r = admit(&update(&old, &new), &policies, &cfg());
        assert!(r.allowed && r.patch.is_none(), "{:?}", r.result);
    }
    // A pod that was never injected is not ours to guard.
    let r = admit(&update(&p, &p), &policies, &cfg());
    assert!(r.allowed && r.patch.is_none());
}

#[test]
fn a_second_name_for_the_model_storage_is_protected_too() {
    // The same claim declared twice: the app mounts the second name writable elsewhere.
    let p = json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": "p", "namespace": "team", "labels": {LABEL: "mv"}},
        "spec": {
            "containers": [app(json!([
                {"name": "data", "mountPath": "/data"},
                {"name": "keys", "mountPath": "/keys"},
                {"name": "data-again", "mountPath": "/scratch"},
                {"name": "logs", "mountPath": "/logs"}
            ]))],
            "volumes": [
                {"name": "data", "persistentVolumeClaim": {"claimName": "models"}},
                {"name": "data-again", "persistentVolumeClaim": {"claimName": "models"}},
                {"name": "logs", "persistentVolumeClaim": {"claimName": "logs"}},
                {"name": "keys", "emptyDir": {}}
            ]
        }
    });
    let resp = decide_pod(&p);
    let warnings = resp.warnings.clone().unwrap();
    let (doc, _) = injected(&p, &resp);
    let ro = |i: usize| {
        doc.pointer(&format!("/spec/containers/0/volumeMounts/{i}/readOnly"))
            .and_then(Value::as_bool)
    };
    assert_eq!(ro(2), Some(true), "the same claim under another name");
    assert_eq!(ro(3), None, "another claim stays writable");
    assert!(
        warnings
            .iter()
            .any(|w| w.contains("volume \"data-again\" at /scratch writable")),
        "{warnings:?}"
    );

    // The same goes for an ephemeral container added later.
    let with = |mount: &str, read_only: bool| {
        let mut new = doc.clone();
        new["spec"]["ephemeralContainers"] = json!([{"name": "debug", "image": "busybox",
            "volumeMounts": [{"name": mount, "mountPath": "/x", "readOnly": read_only}]}]);
        new
    };
    let policies = Memory::default().with("team", "mv", key_spec());
    let msg = denial(&admit(
        &update(&doc, &with("data-again", false)),
        &policies,
        &cfg(),
    ));
    assert!(
        msg.contains("ephemeral container \"debug\" mounts volume \"data-again\""),
        "{msg}"
    );
    for ok in [with("data-again", true), with("logs", false)] {
        let r = admit(&update(&doc, &ok), &policies, &cfg());
        assert!(r.allowed, "{:?}", r.result);
    }
}
