//! ClusterModelValidations end to end on the real control plane, with the operator as a process
//! and the pod runner standing in for a kubelet: a policy governs every pod its selectors
//! match with no label and no opt-out, several policies all apply, `requiredAuthorities` means
//! any or all, trust material comes from the operator's namespace, and refusals name every
//! failing policy. Every refusal has a passing twin.
//!
//! The policies are cluster-scoped and the tests run at once, so each test selects only the
//! namespaces it labels with its own `cmv-test` value.

mod support;

use std::path::PathBuf;

use k8s_openapi::api::core::v1::{ConfigMap, Pod, Secret};
use kube::Client;
use kube::api::{Api, PostParams};
use model_validation_operator::names::{IGNORE_NAMESPACE_LABEL, LABEL, VERIFY_CONTAINER};
use serde_json::{Value, json};
use support::{
    CLUSTER_POLICY_NAMESPACE_LABEL, api_message, apply_cmv, create_mv, create_refused,
    create_with_warnings, fixture, fresh_key_signer, init_names, init_outcome, key_in_policy_mv,
    label_namespace, pod, post_with_warnings, run_pod, shared_operator, sign, signed_model_and_key,
    wait_for,
};

/// The shared operator's namespace (see [`support::shared_operator`]).
const OPERATOR_NAMESPACE: &str = "mvo-system";

/// One test's world: a namespace labelled `cmv-test: <test>` in the shared operator's reach,
/// and a signed model on disk.
struct Env {
    client: Client,
    ns: String,
    pods: Api<Pod>,
    data: PathBuf,
    keys: PathBuf,
    _tmp: tempfile::TempDir,
}

impl Env {
    /// A namespace for `test`, with `labels` besides the two that put it in reach.
    async fn new(test: &str, labels: Value) -> Env {
        test_cluster::install_crypto_provider();
        shared_operator().await;
        let cp = test_cluster::shared().await.unwrap();
        let client = cp.client().unwrap();
        let ns = cp.create_namespace(test).await.unwrap();
        let mut all = json!({CLUSTER_POLICY_NAMESPACE_LABEL: "mvo-shared", "cmv-test": test});
        for (k, v) in labels.as_object().unwrap() {
            all[k] = v.clone();
        }
        label_namespace(&client, &ns, all).await;
        let tmp = tempfile::tempdir().unwrap();
        let (data, keys) = (tmp.path().join("data"), tmp.path().join("keys"));
        signed_model_and_key(&data.join("model"), &keys);
        Env {
            pods: Api::namespaced(client.clone(), &ns),
            client,
            ns,
            data,
            keys,
            _tmp: tmp,
        }
    }

    /// An unlabelled pod (or one with `labels`) mounting the model at `/data`.
    fn pod(&self, name: &str, labels: Value) -> Pod {
        pod(name, labels, &self.data, &self.keys)
    }

    /// Creates `p` until the operator's view has caught up with a policy just written (the
    /// webhook answers from a watch cache), then runs it; returns the Pod as it ended.
    async fn create_and_run(&self, p: &Pod, want_containers: &[&str]) -> Pod {
        let name = p.metadata.name.clone().unwrap();
        let created = self.create_when(p, want_containers).await;
        assert_eq!(init_names(&created), want_containers, "{name}");
        run_pod(&self.client, &self.ns, &name).await
    }

    /// Creates `p` once a dry run shows the init containers `want` (the cache has caught up).
    async fn create_when(&self, p: &Pod, want: &[&str]) -> Pod {
        let dry = PostParams {
            dry_run: true,
            ..Default::default()
        };
        let (pods, dry) = (&self.pods, &dry);
        wait_for(
            "the webhook to apply the policies just written",
            std::time::Duration::from_secs(20),
            || async move {
                match pods.create(dry, p).await {
                    Ok(got) if init_names(&got) == want => Some(()),
                    _ => None,
                }
            },
        )
        .await;
        self.pods.create(&PostParams::default(), p).await.unwrap()
    }

    /// The refusal of `p` once it names `naming` (the webhook answers from a watch cache, so
    /// a policy just written takes a moment to apply).
    /// Dry runs, so that a pod admitted before the policy arrived is not created and in the way.
    async fn refused_naming(&self, p: &Pod, naming: &str) -> String {
        let pods = &self.pods;
        let dry = PostParams {
            dry_run: true,
            ..Default::default()
        };
        let dry = &dry;
        wait_for(
            &format!("a refusal naming {naming}"),
            std::time::Duration::from_secs(20),
            || async move {
                let m = api_message(pods.create(dry, p).await.err()?);
                m.contains(naming).then_some(m)
            },
        )
        .await
    }

    /// Tampers with the model's weights.
    fn tamper(&self) {
        std::fs::write(self.data.join("model/weights.bin"), b"tampered").unwrap();
    }
}

/// The public key the model of [`Env`] is signed with.
fn signer_key() -> String {
    std::fs::read_to_string(fixture("peer-samples/ec-p256.pub.pem")).unwrap()
}

/// A ClusterModelValidation `name` for the model at `/data/model` of namespaces labelled
/// `cmv-test: <test>`, with `authorities` and more `spec` fields.
fn cmv(name: &str, test: &str, authorities: Value, more: Value) -> Value {
    let mut spec = json!({
        "namespaceSelector": {"matchLabels": {"cmv-test": test}},
        "model": {"path": "/data/model", "signaturePath": "/data/model/model.sig"},
        "authorities": authorities,
    });
    for (k, v) in more.as_object().unwrap() {
        spec[k] = v.clone();
    }
    json!({"metadata": {"name": name}, "spec": spec})
}

/// [`cmv`] with one authority, `release`: the key the model of [`Env`] is signed with.
fn trusting_the_signer(name: &str, test: &str) -> Value {
    cmv(
        name,
        test,
        json!([key_authority("release", &signer_key())]),
        json!({}),
    )
}

fn key_authority(name: &str, pem: &str) -> Value {
    json!({"name": name, "key": {"pem": pem}})
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unlabelled_pod_in_a_selected_namespace_is_verified_and_cannot_opt_out() {
    let test = "selection";
    // The namespace opt-out label switches off namespaced ModelValidations, not cluster policies.
    let env = Env::new(test, json!({IGNORE_NAMESPACE_LABEL: "true"})).await;
    let other = Env::new("selection-other", json!({})).await;
    apply_cmv(&env.client, trusting_the_signer("selection-org", test))
        .await
        .unwrap();
    let verifier = "cmv-selection-org";
    // No label at all: verified, and the app runs.
    let ran = env
        .create_and_run(&env.pod("plain", json!({"app": "llm"})), &[verifier])
        .await;
    let (code, message) = init_outcome(&ran, verifier).unwrap();
    assert_eq!(code, 0, "{message}");
    // Labels cannot remove it: here the namespace ignores namespaced ModelValidations, so a pod
    // label naming one is ignored, and the cluster policy still applies.
    let created = env
        .pods
        .create(
            &PostParams::default(),
            &env.pod("opt-out", json!({LABEL: "none"})),
        )
        .await
        .unwrap();
    assert_eq!(init_names(&created), [verifier]);
    // Tampered: the cluster policy's verifier fails and names the file.
    env.tamper();
    let ran = env
        .create_and_run(&env.pod("tampered", json!({})), &[verifier])
        .await;
    let (code, message) = init_outcome(&ran, verifier).unwrap();
    assert_ne!(code, 0);
    assert!(message.contains("weights.bin"), "{message}");
    // Twin: a namespace the selector does not match gets no verifier.
    let created = other
        .pods
        .create(&PostParams::default(), &other.pod("elsewhere", json!({})))
        .await
        .unwrap();
    assert!(
        init_names(&created).is_empty(),
        "{:?}",
        init_names(&created)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_matching_policy_applies_in_name_order_and_one_failure_stops_the_pod() {
    let test = "several";
    let env = Env::new(test, json!({})).await;
    let (_, stranger) = fresh_key_signer();
    let right = json!([key_authority("release", &signer_key())]);
    apply_cmv(
        &env.client,
        cmv("several-b", test, right.clone(), json!({})),
    )
    .await
    .unwrap();
    apply_cmv(&env.client, cmv("several-a", test, right, json!({})))
        .await
        .unwrap();
    // A pod label adds the namespace's ModelValidation after the cluster policies.
    create_mv(
        &env.client,
        &env.ns,
        key_in_policy_mv("team", &signer_key()),
    )
    .await
    .unwrap();
    let all = ["cmv-several-a", "cmv-several-b", VERIFY_CONTAINER];
    let ran = env
        .create_and_run(&env.pod("three", json!({LABEL: "team"})), &all)
        .await;
    for c in all {
        assert_eq!(
            init_outcome(&ran, c).map(|o| o.0),
            Some(0),
            "{c}: {:?}",
            init_outcome(&ran, c)
        );
    }
    let app_started = ran
        .status
        .as_ref()
        .and_then(|s| s.container_statuses.as_ref())
        .is_some_and(|c| {
            c.iter().any(|c| {
                c.name == "app"
                    && c.state
                        .as_ref()
                        .is_some_and(|s| s.running.is_some() || s.terminated.is_some())
            })
        });
    assert!(app_started, "{:?}", ran.status);
    // Policy b now trusts someone else's key only: the pod fails at b although a passes.
    apply_cmv(
        &env.client,
        cmv(
            "several-b",
            test,
            json!([key_authority("other", &stranger)]),
            json!({}),
        ),
    )
    .await
    .unwrap();
    let ran = env
        .create_and_run(&env.pod("and", json!({})), &all[..2])
        .await;
    assert_eq!(init_outcome(&ran, "cmv-several-a").map(|o| o.0), Some(0));
    let (code, message) = init_outcome(&ran, "cmv-several-b").unwrap();
    assert_ne!(code, 0, "{message}");
    assert_eq!(ran.status.unwrap().phase.as_deref(), Some("Failed"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn required_authorities_any_passes_with_one_signer_and_all_needs_every_one() {
    let test = "required";
    let env = Env::new(test, json!({})).await;
    let (_, stranger) = fresh_key_signer();
    let two = json!([
        key_authority("old", &stranger),
        key_authority("new", &signer_key())
    ]);
    let verifier = "cmv-required";
    apply_cmv(&env.client, cmv("required", test, two.clone(), json!({})))
        .await
        .unwrap();
    let ran = env
        .create_and_run(&env.pod("any", json!({})), &[verifier])
        .await;
    let (code, message) = init_outcome(&ran, verifier).unwrap();
    assert_eq!(code, 0, "any of two, one signed: {message}");
    apply_cmv(
        &env.client,
        cmv("required", test, two, json!({"requiredAuthorities": "all"})),
    )
    .await
    .unwrap();
    // The policy's hash changed; wait for the webhook to inject the new document.
    let all_pod = env.pod("all", json!({}));
    let pods = &env.pods;
    wait_for(
        "the all-authorities document to reach the webhook",
        std::time::Duration::from_secs(20),
        || async {
            let dry = PostParams {
                dry_run: true,
                ..Default::default()
            };
            let got = pods.create(&dry, &all_pod).await.ok()?;
            let env_text = serde_json::to_string(&got.spec?.init_containers?).ok()?;
            env_text.contains(r#"\"required\":\"all\""#).then_some(())
        },
    )
    .await;
    let ran = env.create_and_run(&all_pod, &[verifier]).await;
    let (code, message) = init_outcome(&ran, verifier).unwrap();
    assert_ne!(code, 0, "all of two, one signed: {message}");
    assert!(
        message.contains("old"),
        "the missing authority is named: {message}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn trust_material_comes_from_the_operators_namespace_and_a_missing_reference_refuses() {
    let test = "refs";
    let env = Env::new(test, json!({})).await;
    let secret_name = format!("refs-key-{}", env.ns);
    let policy = cmv(
        "refs",
        test,
        json!([{"name": "release", "key": {"secretRef": {"name": secret_name, "key": "cosign.pub"}}}]),
        json!({}),
    );
    apply_cmv(&env.client, policy).await.unwrap();
    let p = env.pod("refs", json!({}));
    // The Secret does not exist yet: refused, naming the field, the Secret and where to create it.
    let msg = env.refused_naming(&p, "ClusterModelValidation refs").await;
    assert!(msg.contains("spec.authorities[0].key.secretRef"), "{msg}");
    assert!(
        msg.contains(&format!(
            "Secret {OPERATOR_NAMESPACE}/{secret_name} key cosign.pub"
        )),
        "{msg}"
    );
    // A Secret of the same name in the pod's own namespace changes nothing: tenants cannot
    // supply trust.
    let secret = |ns: &str| -> Secret {
        serde_json::from_value(json!({"metadata": {"name": secret_name, "namespace": ns}, "stringData": {"cosign.pub": signer_key()}})).unwrap()
    };
    Api::<Secret>::namespaced(env.client.clone(), &env.ns)
        .create(&PostParams::default(), &secret(&env.ns))
        .await
        .unwrap();
    let msg = create_refused(&env.pods, &p).await;
    assert!(
        msg.contains("does not exist in the operator's namespace"),
        "{msg}"
    );
    // Twin: created where the platform team keeps it, the pod is admitted and verifies.
    Api::<Secret>::namespaced(env.client.clone(), OPERATOR_NAMESPACE)
        .create(&PostParams::default(), &secret(OPERATOR_NAMESPACE))
        .await
        .unwrap();
    let ran = env.create_and_run(&p, &["cmv-refs"]).await;
    assert_eq!(
        init_outcome(&ran, "cmv-refs").map(|o| o.0),
        Some(0),
        "{:?}",
        init_outcome(&ran, "cmv-refs")
    );
    // A ConfigMap works the same way.
    let cm_name = format!("refs-cm-{}", env.ns);
    let cm: ConfigMap = serde_json::from_value(
        json!({"metadata": {"name": cm_name}, "data": {"key.pem": signer_key()}}),
    )
    .unwrap();
    Api::<ConfigMap>::namespaced(env.client.clone(), OPERATOR_NAMESPACE)
        .create(&PostParams::default(), &cm)
        .await
        .unwrap();
    apply_cmv(
        &env.client,
        cmv("refs", test, json!([{"name": "release", "key": {"configMapRef": {"name": cm_name, "key": "key.pem"}}}]), json!({})),
    )
    .await
    .unwrap();
    let ran = env
        .create_and_run(&env.pod("from-config-map", json!({})), &["cmv-refs"])
        .await;
    assert_eq!(init_outcome(&ran, "cmv-refs").map(|o| o.0), Some(0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refusal_names_every_failing_policy() {
    let test = "names";
    let env = Env::new(test, json!({})).await;
    let key = json!([key_authority("release", &signer_key())]);
    let elsewhere =
        json!({"model": {"path": "/models/llm", "signaturePath": "/models/llm/model.sig"}});
    apply_cmv(
        &env.client,
        cmv("names-x", test, key.clone(), elsewhere.clone()),
    )
    .await
    .unwrap();
    apply_cmv(&env.client, cmv("names-y", test, key.clone(), elsewhere))
        .await
        .unwrap();
    let p = env.pod("unmounted", json!({}));
    let msg = env.refused_naming(&p, "names-y").await;
    assert!(
        msg.contains("ClusterModelValidation names-x")
            && msg.contains("ClusterModelValidation names-y"),
        "{msg}"
    );
    assert!(msg.contains("/models/llm is not on any volume"), "{msg}");
    // Twin: the same pod with the model mounted where the policies expect it is admitted.
    let mut mounted = p.clone();
    mounted.metadata.name = Some("mounted".into());
    let spec = mounted.spec.as_mut().unwrap();
    spec.containers[0].volume_mounts.as_mut().unwrap()[0].mount_path = "/models/llm".into();
    spec.volumes.as_mut().unwrap()[0]
        .host_path
        .as_mut()
        .unwrap()
        .path = env.data.join("model").to_str().unwrap().into();
    let created = env
        .pods
        .create(&PostParams::default(), &mounted)
        .await
        .unwrap();
    assert_eq!(init_names(&created), ["cmv-names-x", "cmv-names-y"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_api_server_refuses_malformed_cluster_policies_with_the_rule_broken() {
    let env = Env::new("schema", json!({})).await;
    let key = signer_key();
    for (bad, expect) in [
        (
            json!([{"name": "x", "key": {"pem": key}, "keyless": {"identity": "a", "issuer": "b"}}]),
            "exactly one of key, certificateAuthority and keyless",
        ),
        (
            json!([{"name": "x", "key": {"pem": key, "secretRef": {"name": "a", "key": "b"}}}]),
            "exactly one of pem, secretRef and configMapRef",
        ),
        (
            json!([key_authority("dup", &key), key_authority("dup", &key)]),
            "every authority needs its own name",
        ),
        (
            json!([{"name": "x", "keyless": {"identity": "a", "identityRegexp": "b", "issuer": "c"}}]),
            "exactly one of identity and identityRegexp",
        ),
        (json!([]), "spec.authorities"),
    ] {
        let e = apply_cmv(
            &env.client,
            cmv("schema-bad", "schema", bad.clone(), json!({})),
        )
        .await
        .unwrap_err();
        let msg = api_message(e);
        assert!(msg.contains(expect), "{bad}: {msg}");
    }
    let e = apply_cmv(
        &env.client,
        cmv(
            "schema-bad",
            "schema",
            json!([key_authority("a", &key)]),
            json!({"requiredAuthorities": 2}),
        ),
    )
    .await
    .unwrap_err();
    assert!(api_message(e).contains("asks for more authorities"));
    let e = apply_cmv(
        &env.client,
        cmv(
            "schema-bad",
            "schema",
            json!([key_authority("a", &key)]),
            json!({"mode": "block"}),
        ),
    )
    .await
    .unwrap_err();
    assert!(api_message(e).contains("Unsupported value"));
    // Twin: a well-formed policy with every field is accepted.
    apply_cmv(
        &env.client,
        cmv(
            "schema-good",
            "schema-none",
            json!([key_authority("a", &key), {"name": "ci", "signaturePath": "/data/model/ci.sig", "keyless": {"identityRegexp": ".*@example\\.com", "issuer": "https://accounts.google.com"}}]),
            json!({"requiredAuthorities": 2, "mode": "audit", "podSelector": {"matchLabels": {"app": "llm"}}}),
        ),
    )
    .await
    .unwrap();
}

/// The pod is refused when signed by someone the policy does not trust; the verifier's message
/// says which authorities were tried. (Sanity check that the key fixture and signer agree.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_model_signed_by_a_stranger_fails_the_cluster_policy() {
    let test = "stranger";
    let env = Env::new(test, json!({})).await;
    let (signer, _) = fresh_key_signer();
    sign(
        &env.data.join("model"),
        &signer,
        &env.data.join("model/model.sig"),
    );
    apply_cmv(&env.client, trusting_the_signer("stranger", test))
        .await
        .unwrap();
    let ran = env
        .create_and_run(&env.pod("signed-by-stranger", json!({})), &["cmv-stranger"])
        .await;
    let (code, message) = init_outcome(&ran, "cmv-stranger").unwrap();
    assert_ne!(code, 0, "{message}");
    assert!(message.contains("release"), "{message}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn audit_and_warn_let_the_pod_run_and_record_what_enforce_would_have_stopped() {
    for mode in ["audit", "warn"] {
        let test = format!("mode-{mode}");
        let env = Env::new(&test, json!({})).await;
        let name = format!("mode-{mode}");
        let verifier = format!("cmv-{name}");
        apply_cmv(
            &env.client,
            cmv(
                &name,
                &test,
                json!([key_authority("release", &signer_key())]),
                json!({"mode": mode}),
            ),
        )
        .await
        .unwrap();
        // Tampered: the verifier reports the failure in its termination message, exits 0, and
        // the app starts.
        env.tamper();
        let ran = env
            .create_and_run(&env.pod("tampered", json!({})), &[&verifier])
            .await;
        let (code, message) = init_outcome(&ran, &verifier).unwrap();
        assert_eq!(code, 0, "{mode}: {message}");
        assert!(
            message.starts_with("verification failed:") && message.contains("weights.bin"),
            "{mode}: {message}"
        );
        let app = ran
            .status
            .as_ref()
            .and_then(|s| s.container_statuses.as_ref());
        assert!(
            app.is_some_and(|c| c.iter().any(|c| c.name == "app"
                && c.state
                    .as_ref()
                    .is_some_and(|s| s.running.is_some() || s.terminated.is_some()))),
            "{mode}: the app must start: {:?}",
            ran.status
        );
        // A pod the policy cannot verify at all (the model is not mounted): admitted, with an
        // admission warning in warn mode and silently in audit mode.
        let mut unmounted = env.pod("unmounted", json!({}));
        let spec = unmounted.spec.as_mut().unwrap();
        spec.containers[0].volume_mounts = None;
        let (status, warnings) = create_with_warnings(&env.client, &env.ns, &unmounted).await;
        assert_eq!(status, 201, "{mode}: {warnings:?}");
        match mode {
            "warn" => assert!(
                warnings
                    .iter()
                    .any(|w| w.contains(&format!("ClusterModelValidation {name}"))
                        && w.contains("warn mode")),
                "{warnings:?}"
            ),
            _ => assert!(warnings.is_empty(), "{warnings:?}"),
        }
        // Both count in the policy's status as what enforce would have stopped: the verifier's
        // failure (injected) and the refusal at admission (recorded on the pod, not injected).
        let api = support::cmv_api(&env.client);
        let status = wait_for(
            "the status to count what enforce would have stopped",
            std::time::Duration::from_secs(30),
            || async {
                let s = api.get(&name).await.ok()?.data["status"].clone();
                (s["failedCount"] == 2).then_some(s)
            },
        )
        .await;
        assert_eq!(status["injectedPodCount"], 1, "{mode}: {status}");
        let reasons: Vec<&str> = status["recentFailures"]
            .as_array()
            .unwrap()
            .iter()
            .map(|f| f["message"].as_str().unwrap())
            .collect();
        assert!(
            reasons.iter().any(|m| m.starts_with("at admission: "))
                && reasons.iter().any(|m| m.contains("weights.bin")),
            "{mode}: {reasons:?}"
        );
    }
    // Twin: enforce refuses the same unmounted pod.
    let env = Env::new("mode-enforce", json!({})).await;
    apply_cmv(
        &env.client,
        trusting_the_signer("mode-enforce", "mode-enforce"),
    )
    .await
    .unwrap();
    let mut unmounted = env.pod("unmounted", json!({}));
    unmounted.spec.as_mut().unwrap().containers[0].volume_mounts = None;
    let msg = env
        .refused_naming(&unmounted, "ClusterModelValidation mode-enforce")
        .await;
    assert!(msg.contains("is not on any volume"), "{msg}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_workload_whose_pods_would_be_refused_is_refused_at_apply() {
    let test = "workloads";
    let env = Env::new(test, json!({})).await;
    let elsewhere =
        json!({"model": {"path": "/models/llm", "signaturePath": "/models/llm/model.sig"}});
    let key = json!([key_authority("release", &signer_key())]);
    apply_cmv(
        &env.client,
        cmv("workloads", test, key.clone(), elsewhere.clone()),
    )
    .await
    .unwrap();
    let deployment = |name: &str| {
        let mut template = env.pod("t", json!({"app": name}));
        // A Deployment's pods restart; the test pods of [`Env::pod`] do not.
        template.spec.as_mut().unwrap().restart_policy = Some("Always".into());
        json!({
            "apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": name},
            "spec": {"selector": {"matchLabels": {"app": name}}, "replicas": 0,
                     "template": {"metadata": {"labels": {"app": name}}, "spec": template.spec}}
        })
    };
    let path = format!("/apis/apps/v1/namespaces/{}/deployments", env.ns);
    // The pods would not mount the model: the Deployment itself is refused, with their message.
    // Dry runs until the webhook has the policy, so that no Deployment is created before.
    let dry_run = format!("{path}?dryRun=All");
    let refused = wait_for(
        "the workload webhook to refuse",
        std::time::Duration::from_secs(20),
        || async {
            let (status, _, body) =
                post_with_warnings(&env.client, &dry_run, &deployment("web")).await;
            (status == 400 || status == 403).then_some(body)
        },
    )
    .await;
    assert!(
        refused.contains("the pods of Deployment") && refused.contains("would be refused"),
        "{refused}"
    );
    assert!(
        refused.contains("ClusterModelValidation workloads")
            && refused.contains("/models/llm is not on any volume"),
        "{refused}"
    );
    // In warn mode the same Deployment is created, with the warning kubectl would print.
    let mut warn = elsewhere.clone();
    warn["mode"] = json!("warn");
    apply_cmv(&env.client, cmv("workloads", test, key, warn))
        .await
        .unwrap();
    let (status, warnings) = wait_for(
        "warn mode to reach the webhook",
        std::time::Duration::from_secs(20),
        || async {
            let (status, warnings, _) =
                post_with_warnings(&env.client, &path, &deployment("web")).await;
            (status == 201).then_some((status, warnings))
        },
    )
    .await;
    assert_eq!(status, 201);
    assert!(
        warnings
            .iter()
            .any(|w| w.contains("the pods of Deployment") && w.contains("warn mode")),
        "{warnings:?}"
    );
    // Twin: a namespace no policy selects takes the same Deployment without a word.
    let other = Env::new("workloads-other", json!({})).await;
    let (status, warnings, body) = post_with_warnings(
        &other.client,
        &format!("/apis/apps/v1/namespaces/{}/deployments", other.ns),
        &deployment("web"),
    )
    .await;
    assert_eq!(status, 201, "{body}");
    assert!(warnings.is_empty(), "{warnings:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_counts_the_policys_pods_across_namespaces_and_names_recent_failures() {
    let test = "status";
    let good = Env::new(test, json!({})).await;
    let bad = Env::new(test, json!({})).await;
    // A third namespace in reach but not selected, to show matchedNamespaces counts selection.
    let _unselected = Env::new("status-unselected", json!({})).await;
    apply_cmv(&good.client, trusting_the_signer("status", test))
        .await
        .unwrap();
    good.create_and_run(&good.pod("verified", json!({})), &["cmv-status"])
        .await;
    bad.tamper();
    bad.create_and_run(&bad.pod("tampered", json!({})), &["cmv-status"])
        .await;
    let api = support::cmv_api(&good.client);
    let status = wait_for(
        "the status to count both pods",
        std::time::Duration::from_secs(30),
        || async {
            let s = api.get("status").await.ok()?.data["status"].clone();
            (s["verifiedCount"] == 1 && s["failedCount"] == 1).then_some(s)
        },
    )
    .await;
    assert_eq!(status["matchedNamespaces"], 2, "{status}");
    assert_eq!(status["injectedPodCount"], 2, "{status}");
    let failure = &status["recentFailures"][0];
    assert_eq!(failure["namespace"], json!(bad.ns), "{status}");
    assert_eq!(failure["pod"], "tampered", "{status}");
    assert!(
        failure["message"].as_str().unwrap().contains("weights.bin"),
        "{status}"
    );
    let ready = &status["conditions"][0];
    assert_eq!(
        (ready["type"].as_str(), ready["status"].as_str()),
        (Some("Ready"), Some("True")),
        "{status}"
    );
    // `kubectl get cmv` shows it at a glance: the API server's table for the resource.
    let req = http::Request::get("/apis/ml.sigstore.dev/v1alpha1/clustermodelvalidations/status")
        .header("accept", "application/json;as=Table;v=v1;g=meta.k8s.io")
        .body(Vec::new())
        .unwrap();
    let table: serde_json::Value = good.client.request(req).await.unwrap();
    let columns: Vec<&str> = table["columnDefinitions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        columns,
        [
            "Name",
            "Mode",
            "Ready",
            "Namespaces",
            "Injected",
            "Verified",
            "Failed",
            "Age"
        ]
    );
    let cells = &table["rows"][0]["cells"];
    assert_eq!(
        cells.as_array().unwrap()[1..7],
        [
            json!("enforce"),
            json!("True"),
            json!(2),
            json!(2),
            json!(1),
            json!(1)
        ],
        "the mode is defaulted by the API server: {cells}"
    );
    // The per-policy gauge agrees, with the policy's name as its only variable label.
    let operator = shared_operator().await;
    for (state, want) in [("injected", 2.0), ("verified", 1.0), ("failed", 1.0)] {
        let sample =
            format!("model_validation_cluster_policy_pods{{policy=\"status\",state=\"{state}\"}}");
        assert_eq!(operator.metric(&sample), Some(want), "{sample}");
    }
    // Events: on each pod, in its own namespace, naming the policy; none on the cluster-scoped
    // policy (it would land in `default`, readable by other tenants).
    let failed = wait_for(
        "the failure Event on the pod",
        std::time::Duration::from_secs(30),
        || async {
            let evs = support::events(&bad.client, &bad.ns).await;
            support::find_event(&evs, "ModelVerificationFailed", "Pod", "tampered").cloned()
        },
    )
    .await;
    let note = failed.note.unwrap_or_default();
    assert!(
        note.starts_with("ClusterModelValidation status: ") && note.contains("weights.bin"),
        "{note}"
    );
    let verified = wait_for(
        "the verified Event on the pod",
        std::time::Duration::from_secs(30),
        || async {
            let evs = support::events(&good.client, &good.ns).await;
            support::find_event(&evs, "ModelVerified", "Pod", "verified").cloned()
        },
    )
    .await;
    assert!(
        verified
            .note
            .unwrap_or_default()
            .contains("ClusterModelValidation status")
    );
    let in_default = support::events(&good.client, "default").await;
    assert!(
        !in_default
            .iter()
            .any(|e| e.regarding.as_ref().and_then(|r| r.kind.as_deref())
                == Some("ClusterModelValidation")),
        "no Event regards the cluster policy"
    );
    // A reference that does not resolve turns Ready false, naming it.
    apply_cmv(
        &good.client,
        cmv("status", test, json!([{"name": "release", "key": {"secretRef": {"name": "status-absent", "key": "k"}}}]), json!({})),
    )
    .await
    .unwrap();
    let ready = wait_for(
        "Ready to turn false",
        std::time::Duration::from_secs(30),
        || async {
            let s = api.get("status").await.ok()?.data["status"]["conditions"][0].clone();
            (s["status"] == "False").then_some(s)
        },
    )
    .await;
    assert_eq!(ready["reason"], "ReferenceUnresolved", "{ready}");
    assert!(
        ready["message"].as_str().unwrap().contains("status-absent"),
        "{ready}"
    );
}
