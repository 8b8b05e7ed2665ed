//! AdmissionReviews as the webhook's HTTPS listener and handler read them: the price
//! `cost::decode_cost` puts on the body (and the denial of a too costly one), `review::decode`, the decision
//! against ModelValidations loaded from the seed fixtures (key, certificate, Sigstore), and
//! the response as sent. A decoded request is answered with its own uid; an injection's patch
//! must apply to the pod it was computed for and leave a pod that the webhook then admits
//! unchanged (so reinvocation is a fixed point).
#![no_main]

use std::sync::LazyLock;

use libfuzzer_sys::fuzz_target;
use model_validation_operator::crd::ModelValidationSpec;
use model_validation_operator::crd::legacy::ModelValidation as LegacyModelValidation;
use model_validation_operator::webhook::inject::InjectConfig;
use model_validation_operator::webhook::{
    AdmitConfig, Decision, FoundPolicy, Policies, cost, decide, review,
};
use model_validation_operator_fuzz::fixture;

/// One ModelValidation per namespace, named as in the fixtures; `ignored` is ignored.
struct Fixed(Vec<(String, FoundPolicy)>);

impl Policies for Fixed {
    fn get(&self, namespace: &str, name: &str) -> Option<FoundPolicy> {
        self.0
            .iter()
            .find(|(ns, p)| ns == namespace && p.name == name)
            .map(|(_, p)| p.clone())
    }
    fn in_namespace(&self, namespace: &str) -> Vec<FoundPolicy> {
        self.0
            .iter()
            .filter(|(ns, _)| ns == namespace)
            .map(|(_, p)| p.clone())
            .collect()
    }
    fn namespace_ignored(&self, namespace: &str) -> bool {
        namespace == "ignored"
    }
}

static POLICIES: LazyLock<Fixed> = LazyLock::new(|| {
    let mut out = Vec::new();
    for (ns, file) in [
        ("default", "seed/modelvalidation-key.yaml"),
        ("team-pki", "seed/modelvalidation-pki.yaml"),
        ("team-sigstore", "seed/modelvalidation-sigstore.yaml"),
        ("team-google", "seed/modelvalidation-google.yaml"),
    ] {
        let text = String::from_utf8(fixture(file)).unwrap();
        let mv: LegacyModelValidation = serde_saphyr::from_str(&text).unwrap();
        let name = mv.metadata.name.clone().unwrap();
        let spec: ModelValidationSpec = (&mv.spec).into();
        out.push((
            ns.to_string(),
            FoundPolicy {
                display: format!("ModelValidation {ns}/{name}"),
                name,
                spec,
            },
        ));
    }
    Fixed(out)
});

static CONFIG: LazyLock<AdmitConfig> = LazyLock::new(|| AdmitConfig {
    inject: InjectConfig {
        agent_image: "agent:fuzz".into(),
        ..Default::default()
    },
    operator_namespace: "mvo-system".into(),
    require_policy_trust: false,
});

fuzz_target!(|data: &[u8]| {
    // The listener prices the body before anything decodes it.
    let cost = cost::decode_cost(data);
    assert!(cost >= data.len() * cost::BYTE_COST);
    if serde_json::from_slice::<serde_json::Value>(data).is_ok() {
        assert!(cost < usize::MAX, "JSON serde_json reads is priced");
    }
    let _ = review::deny_undecoded(data, "too costly");
    let (policies, cfg) = (&*POLICIES, &*CONFIG);
    let req = match review::decode(data) {
        Ok(req) => req,
        Err(resp) => {
            assert!(!resp.allowed, "an unreadable review is refused");
            let _ = review::encode(resp.into_review());
            return;
        }
    };
    let decision = decide(&req, policies, cfg);
    if let (Decision::Inject { patch, .. }, Some(pod)) = (&decision, req.object.as_ref()) {
        let mut doc = serde_json::to_value(pod).unwrap();
        json_patch::patch(&mut doc, patch).expect("our patch applies to the pod it was made for");
        let patched: k8s_openapi::api::core::v1::Pod =
            serde_json::from_value(doc).expect("the patched pod is a pod");
        let mut again = req.clone();
        again.object = Some(patched);
        let second = decide(&again, policies, cfg);
        assert!(
            !matches!(second, Decision::Inject { .. }),
            "reinvocation is a fixed point: {second:?}"
        );
    }
    let denied = matches!(decision, Decision::Deny { .. });
    let resp = decision.respond(&req);
    assert_eq!(resp.uid, req.uid);
    assert!(!(denied && resp.allowed));
    let _ = review::encode(resp.into_review());
});
