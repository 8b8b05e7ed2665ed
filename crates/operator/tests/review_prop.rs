//! Property tests of the webhook's untrusted input, the AdmissionReview (`review::decode`, as
//! the HTTPS handler reads it, then `decide` and the response as sent), beside the fuzz target
//! fuzz/fuzz_targets/admission_review.rs: no body panics; every decodable request is answered
//! with its own uid; an unreadable one is refused; an injection's patch applies to the pod and
//! the patched pod is then left unchanged (reinvocation is a fixed point); a labelled pod
//! without its ModelValidation is refused while an unlabelled one passes (twin).

use std::collections::BTreeMap;
use std::sync::LazyLock;

use base64::Engine as _;
use k8s_openapi::api::core::v1::Pod;
use model_validation_operator::crd::ModelValidationSpec;
use model_validation_operator::crd::legacy::ModelValidation as LegacyModelValidation;
use model_validation_operator::names::{LABEL, LEGACY_LABEL};
use model_validation_operator::webhook::cost::{BYTE_COST, MAX_DEPTH, decode_cost};
use model_validation_operator::webhook::inject::InjectConfig;
use model_validation_operator::webhook::{
    AdmitConfig, Decision, FoundPolicy, Policies, decide, review,
};
use proptest::prelude::*;
use serde_json::{Value, json};

const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../../shared/fixtures");

fn fixture_text(rel: &str) -> String {
    std::fs::read_to_string(format!("{FIXTURES}/{rel}")).unwrap()
}

/// The seed ModelValidations, by namespace (one each).
struct SeedPolicies(BTreeMap<&'static str, FoundPolicy>);

impl Policies for SeedPolicies {
    fn get(&self, namespace: &str, name: &str) -> Option<FoundPolicy> {
        self.0.get(namespace).filter(|p| p.name == name).cloned()
    }
    fn in_namespace(&self, namespace: &str) -> Vec<FoundPolicy> {
        self.0.get(namespace).cloned().into_iter().collect()
    }
    fn namespace_ignored(&self, namespace: &str) -> bool {
        namespace == "ignored"
    }
}

static POLICIES: LazyLock<SeedPolicies> = LazyLock::new(|| {
    let load = |rel: &str| {
        let mv: LegacyModelValidation = serde_saphyr::from_str(&fixture_text(rel)).unwrap();
        let name = mv.metadata.name.clone().unwrap();
        let spec: ModelValidationSpec = (&mv.spec).into();
        FoundPolicy {
            display: format!("ModelValidation {name}"),
            name,
            spec,
        }
    };
    SeedPolicies(BTreeMap::from([
        ("default", load("seed/modelvalidation-key.yaml")),
        ("team-pki", load("seed/modelvalidation-pki.yaml")),
        ("team-sigstore", load("seed/modelvalidation-sigstore.yaml")),
    ]))
});

static CONFIG: LazyLock<AdmitConfig> = LazyLock::new(|| AdmitConfig {
    inject: InjectConfig {
        agent_image: "agent:prop".into(),
        ..Default::default()
    },
    operator_namespace: "mvo-system".into(),
    require_policy_trust: false,
    governable_namespaces: Default::default(),
});

/// The fixture pod, as JSON.
static POD: LazyLock<Value> =
    LazyLock::new(|| serde_saphyr::from_str(&fixture_text("seed/consumer-pod.yaml")).unwrap());

fn review_body(uid: &str, operation: &str, namespace: &str, pod: &Value) -> Vec<u8> {
    let gvk = json!({"group": "", "version": "v1", "kind": "Pod"});
    let gvr = json!({"group": "", "version": "v1", "resource": "pods"});
    let mut req = json!({
        "uid": uid, "kind": gvk, "resource": gvr, "requestKind": gvk, "requestResource": gvr,
        "name": "p", "namespace": namespace, "operation": operation,
        "userInfo": {"username": "prop"}, "object": pod, "dryRun": false,
    });
    if operation == "UPDATE" {
        req["oldObject"] = pod.clone();
    }
    serde_json::to_vec(
        &json!({"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "request": req}),
    )
    .unwrap()
}

/// The body through the handler's steps: the response JSON as sent, and the decision.
fn handle(body: &[u8]) -> (Value, Option<Decision>) {
    match review::decode(body) {
        Err(resp) => (review::encode(resp.into_review()), None),
        Ok(req) => {
            let decision = decide(&req, &*POLICIES, &CONFIG);
            let sent = review::encode(decision.clone().respond(&req).into_review());
            (sent, Some(decision))
        }
    }
}

fn pod_with(namespace: &str, labels: &BTreeMap<String, String>) -> Value {
    let mut pod = POD.clone();
    pod["metadata"]["namespace"] = namespace.into();
    pod["metadata"]["labels"] = serde_json::to_value(labels).unwrap();
    pod
}

fn namespace() -> impl Strategy<Value = &'static str> {
    prop::sample::select(vec![
        "default",
        "team-pki",
        "team-sigstore",
        "other",
        "ignored",
        "mvo-system",
    ])
}

fn labels() -> impl Strategy<Value = BTreeMap<String, String>> {
    let value = prop_oneof![
        Just("true".to_string()),
        Just("model-validation-key".to_string()),
        Just("model-validation-pki".to_string()),
        "\\PC{0,12}",
    ];
    let key = prop::sample::select(vec![LABEL, LEGACY_LABEL, "app"]);
    prop::collection::btree_map(key.prop_map(String::from), value, 0..3)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 300, ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_bodies_are_refused_without_panic(body in prop::collection::vec(any::<u8>(), 0..300)) {
        let (sent, decision) = handle(&body);
        if decision.is_none() {
            prop_assert_eq!(&sent["response"]["allowed"], &json!(false));
        }
    }

    /// The listener prices every body before decoding it (`webhook::cost`): never a panic, at
    /// least the bytes' own price, and "undecodable" (usize::MAX) exactly when serde_json
    /// refuses the nesting, never for JSON it reads.
    #[test]
    fn bodies_are_priced_without_panic_and_agree_with_serde_on_depth(
        body in "[\\[\\]{}\":,a0 \\\\]{0,400}",
    ) {
        let cost = decode_cost(body.as_bytes());
        prop_assert!(cost >= body.len() * BYTE_COST);
        if serde_json::from_str::<Value>(&body).is_ok() {
            prop_assert!(cost < usize::MAX, "{body}");
        }
        let deep = format!("{}{}", "[".repeat(MAX_DEPTH + 1), "]".repeat(MAX_DEPTH + 1));
        prop_assert_eq!(decode_cost(deep.as_bytes()), usize::MAX);
        let _ = review::deny_undecoded(body.as_bytes(), "too costly");
    }

    #[test]
    fn mutated_reviews_never_panic(flips in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..6)) {
        let mut body = review_body("u", "CREATE", "default", &POD);
        for (at, byte) in flips {
            let i = at.index(body.len());
            body[i] = byte;
        }
        let _ = handle(&body);
    }

    /// Every pod review is answered with its uid; an injection's patch (base64, as sent)
    /// applies to the pod, and the webhook leaves the patched pod as it is.
    #[test]
    fn answers_carry_the_uid_and_patches_are_fixed_points(
        uid in "[a-z0-9-]{1,36}",
        op in prop::sample::select(vec!["CREATE", "UPDATE", "DELETE", "CONNECT"]),
        ns in namespace(),
        labels in labels(),
    ) {
        let pod = pod_with(ns, &labels);
        let (sent, decision) = handle(&review_body(&uid, op, ns, &pod));
        prop_assert!(decision.is_some(), "a pod review decodes");
        prop_assert_eq!(&sent["response"]["uid"], &json!(uid));
        let allowed = sent["response"]["allowed"].as_bool().unwrap();
        prop_assert_eq!(allowed, !matches!(decision, Some(Decision::Deny { .. })));
        if let Some(Decision::Inject { .. }) = decision {
            let b64 = sent["response"]["patch"].as_str().unwrap();
            let patch: json_patch::Patch = serde_json::from_slice(
                &base64::engine::general_purpose::STANDARD.decode(b64).unwrap(),
            ).unwrap();
            let mut patched = pod.clone();
            json_patch::patch(&mut patched, &patch).unwrap();
            serde_json::from_value::<Pod>(patched.clone()).unwrap();
            let (_, again) = handle(&review_body(&uid, op, ns, &patched));
            prop_assert!(!matches!(again, Some(Decision::Inject { .. })), "{:?}", again);
        }
    }

    /// A pod naming a ModelValidation that is not there is refused, never admitted unverified;
    /// the same pod without the label is admitted unchanged (twin).
    #[test]
    fn missing_policies_fail_closed(name in "[a-z0-9-]{1,20}", ns in prop::sample::select(vec!["default", "team-pki", "other"])) {
        prop_assume!(Policies::get(&*POLICIES, ns, &name).is_none());
        let labelled = BTreeMap::from([(LABEL.to_string(), name)]);
        let (_, decision) = handle(&review_body("u", "CREATE", ns, &pod_with(ns, &labelled)));
        prop_assert!(matches!(decision, Some(Decision::Deny { .. })), "{:?}", decision);
        let (_, twin) = handle(&review_body("u", "CREATE", ns, &pod_with(ns, &BTreeMap::new())));
        prop_assert_eq!(twin, Some(Decision::Unchanged));
    }

    /// A review of something that is not a pod is refused with the request's uid (so the API
    /// server can match the answer).
    #[test]
    fn non_pod_reviews_are_refused_with_their_uid(uid in "[a-z0-9-]{1,36}", kind in prop::sample::select(vec!["ConfigMap", "Secret", "Deployment"])) {
        let mut object = POD.clone();
        object["kind"] = kind.into();
        object["spec"] = json!("not a pod spec");
        let (sent, decision) = handle(&review_body(&uid, "CREATE", "default", &object));
        prop_assert!(decision.is_none());
        prop_assert_eq!(&sent["response"]["uid"], &json!(uid));
        prop_assert_eq!(&sent["response"]["allowed"], &json!(false));
    }
}
