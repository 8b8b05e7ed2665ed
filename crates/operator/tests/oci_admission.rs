//! Models in OCI registries, checked at admission (issue 14): a policy with `spec.images`
//! verifies every image volume (`spec.volumes[].image`) whose repository matches one of its
//! globs, and the admitted pod runs exactly the digest that verified.
//!
//! On the real control plane with the operator as a process, against real registries over TLS
//! (the operator trusts their CAs with `--registry-ca`): go-containerregistry's with the OCI 1.1
//! referrers API and distribution v3 without it (the referrers tag schema), one of them behind
//! basic auth. Models are pushed, signed and attached with the engine (`support::oci`), as
//! `model-signing oci push|sign|attach` do.
//!
//! - a signed model is admitted and its reference pinned to the manifest digest the registry
//!   serves; an unsigned one, one signed with another key, a moved tag, a manifest carrying
//!   another manifest's signature (on both registry kinds) and an unreachable registry are each
//!   refused, naming the policy, the volume, the reference and the reason. Every refusal has a
//!   passing twin;
//! - trust from a certificate authority in the policy works like a key; a trust anchor given as
//!   a path in the pod is refused, naming the policy field to use instead;
//! - a private registry needs credentials: a ModelValidation's images are read with the pod's
//!   own imagePullSecrets (`--pod-pull-secrets`) and it may not name `spec.images.pullSecret`;
//!   a ClusterModelValidation names a dockerconfigjson Secret in the operator's namespace;
//! - both registry kinds, the referrers API and the tag schema (each registry's request log
//!   shows which was used);
//! - a ClusterModelValidation with images and authorities and no model governs unlabelled pods;
//!   an image volume that matches no glob is left alone; `requiredAuthorities: all` needs every
//!   signer's signature attached;
//! - a modelcar image (tar layers under `spec.images.modelcarRoot`) is verified by fetching each
//!   layer once; without the field, or with another root, it is refused;
//! - a pod already pinned is admitted unchanged, and a digest verified once is served from the
//!   cache: no referrer or bundle request reaches the registry the second time.
//!
//! The pod runner has no image volumes (it mounts hostPath, emptyDir and PVCs only), so these
//! tests check the admission and the patched pod, not a run.
//!
//! All tests share one control plane, one operator (it must trust every registry's CA from its
//! start) and the registries, each test in its own namespaces and repositories, with model
//! content unique to the test (the operator caches verified digests).

mod support;

use std::sync::Mutex;
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::{Pod, Secret};
use kube::Client;
use kube::api::{Api, PostParams};
use model_validation_operator::names::LABEL;
use model_validation_operator::names::annotations::PINNED_IMAGES;
use serde_json::{Value, json};
use support::oci::{
    docker_config_json, image_pod, image_references, model_files, pull_secret, push_model,
    requests_for, resolve, sign_and_attach, tampered_files,
};
use support::{
    CLUSTER_POLICY_NAMESPACE_LABEL, CodeSigningPki, Operator, OperatorOptions, api_message,
    apply_cmv, create_mv, ec_key_signer, fixture, free_port, fresh_key_signer, label_namespace,
    wait_for,
};
use test_cluster::registry::{Kind, Registry};

/// The operator's webhook configuration (and the value of the namespace label that puts a
/// namespace in the reach of its cluster policies).
const WEBHOOK_CONFIG: &str = "mvo-oci";
/// The operator's namespace: where pull secrets live.
const OPERATOR_NAMESPACE: &str = "mvo-oci-system";
/// How long a policy just written may take to reach the webhook's watch cache.
const CATCH_UP: Duration = Duration::from_secs(30);

/// What every test shares: the operator and the registries it trusts.
struct World {
    operator: Operator,
    /// go-containerregistry's, with the referrers API, over TLS.
    referrers: Registry,
    /// distribution v3, without the referrers API, over TLS.
    distribution: Registry,
    /// distribution v3 over TLS with basic auth.
    private: Registry,
    /// A registry (with the referrers API, over TLS) that a test stops.
    doomed: Mutex<Option<Registry>>,
    /// A loopback port nothing listens on.
    closed: u16,
}

/// [`World`], started on first use.
async fn world() -> &'static World {
    static WORLD: tokio::sync::OnceCell<World> = tokio::sync::OnceCell::const_new();
    WORLD
        .get_or_init(|| async {
            test_cluster::install_crypto_provider();
            let cp = test_cluster::shared()
                .await
                .expect("the shared control plane");
            let tls = |kind: Kind| Registry::builder().kind(kind).tls(true);
            let referrers = tls(Kind::Referrers).start().unwrap();
            let distribution = tls(Kind::Distribution).start().unwrap();
            let private = tls(Kind::Distribution)
                .basic_auth("alice", "s3cret")
                .start()
                .unwrap();
            let doomed = tls(Kind::Referrers).start().unwrap();
            let mut opts = OperatorOptions::new(WEBHOOK_CONFIG);
            opts.namespace = Some(OPERATOR_NAMESPACE.into());
            // A ModelValidation's images are read with the pod's own pull Secrets.
            opts.extra_args.push("--pod-pull-secrets".into());
            // The operator reads the CA files once, at start: `doomed`'s may go with its registry.
            for r in [&referrers, &distribution, &private, &doomed] {
                let ca = r.ca_file().unwrap().to_str().unwrap();
                opts.extra_args.extend(["--registry-ca".into(), ca.into()]);
            }
            let operator = Operator::start(cp.kubeconfig_path(), opts).await;
            World {
                operator,
                referrers,
                distribution,
                private,
                doomed: Mutex::new(Some(doomed)),
                closed: free_port(),
            }
        })
        .await
}

/// Where the shared operator logs, for failure messages.
async fn operator_log() -> String {
    world().await.operator.log.display().to_string()
}

/// One test's namespace on the shared control plane.
struct Ns {
    client: Client,
    ns: String,
    pods: Api<Pod>,
}

impl Ns {
    /// A namespace `prefix-…` with `labels`.
    async fn new(prefix: &str, labels: Value) -> Ns {
        world().await;
        let cp = test_cluster::shared().await.unwrap();
        let client = cp.client().unwrap();
        let ns = cp.create_namespace(prefix).await.unwrap();
        if labels.as_object().is_some_and(|l| !l.is_empty()) {
            label_namespace(&client, &ns, labels).await;
        }
        Ns {
            pods: Api::namespaced(client.clone(), &ns),
            client,
            ns,
        }
    }

    /// Creates the ModelValidation `manifest` here.
    async fn mv(&self, manifest: Value) {
        create_mv(&self.client, &self.ns, manifest).await.unwrap();
    }

    /// Creates the image-only ModelValidation `name` for `globs`, trusting the test signer's
    /// key ([`signer_key`]).
    async fn key_mv(&self, name: &str, globs: &[String]) {
        self.mv(image_mv(name, globs, &signer_key(), json!({})))
            .await;
    }

    /// Creates `p` once a dry run admits it with the image references `want` (the webhook
    /// answers from a watch cache, so a policy just written takes a moment to apply), and
    /// checks the created pod carries exactly them.
    async fn admitted(&self, p: &Pod, want: &[(&str, &str)]) -> Pod {
        let want: Vec<(String, String)> = want
            .iter()
            .map(|(v, r)| (v.to_string(), r.to_string()))
            .collect();
        let dry = PostParams {
            dry_run: true,
            ..Default::default()
        };
        let name = p.metadata.name.clone().unwrap();
        let deadline = Instant::now() + CATCH_UP;
        loop {
            let last = match self.pods.create(&dry, p).await {
                Ok(got) if image_references(&got) == want => break,
                Ok(got) => format!("admitted with {:?}", image_references(&got)),
                Err(e) => format!("refused: {}", api_message(e)),
            };
            assert!(
                Instant::now() < deadline,
                "pod {}/{name} was not admitted with {want:?} within {CATCH_UP:?}; last: {last} \
                 (operator log: {})",
                self.ns,
                operator_log().await
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        let created = self
            .pods
            .create(&PostParams::default(), p)
            .await
            .unwrap_or_else(|e| panic!("creating {name}: {}", api_message(e)));
        assert_eq!(image_references(&created), want, "{name}");
        created
    }

    /// The refusal of `p` once it contains `naming` (dry runs, until the webhook has the
    /// policy just written), then the refusal of a real create, which must say the same.
    async fn refused(&self, p: &Pod, naming: &str) -> String {
        let dry = PostParams {
            dry_run: true,
            ..Default::default()
        };
        let name = p.metadata.name.clone().unwrap();
        let deadline = Instant::now() + CATCH_UP;
        loop {
            let last = match self.pods.create(&dry, p).await {
                Err(e) => {
                    let m = api_message(e);
                    if m.contains(naming) {
                        break;
                    }
                    format!("refused: {m}")
                }
                Ok(got) => format!("admitted with {:?}", image_references(&got)),
            };
            assert!(
                Instant::now() < deadline,
                "pod {}/{name} was not refused naming {naming:?} within {CATCH_UP:?}; last: {last} \
                 (operator log: {})",
                self.ns,
                operator_log().await
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        match self.pods.create(&PostParams::default(), p).await {
            Ok(_) => panic!("{name} was admitted by a real create after a dry run refused it"),
            Err(e) => {
                let m = api_message(e);
                assert!(m.contains(naming), "{m}");
                eprintln!("{}/{name} refused: {m}", self.ns);
                m
            }
        }
    }

    /// Asserts that refusal `msg` names the ModelValidation `mv` of this namespace, then the
    /// volume `model` and `reference`.
    fn assert_names(&self, msg: &str, mv: &str, reference: &str) {
        let policy = format!("ModelValidation {}/{mv}", self.ns);
        let volume = format!("volume \"model\" (image \"{reference}\")");
        assert!(msg.contains(&policy), "{policy:?} not in: {msg}");
        assert!(msg.contains(&volume), "{volume:?} not in: {msg}");
        assert!(
            msg.find(&policy) < msg.find(&volume),
            "the policy comes before the volume: {msg}"
        );
    }
}

/// The public key the fixture signer ([`ec_key_signer`]) signs with.
fn signer_key() -> String {
    std::fs::read_to_string(fixture("peer-samples/ec-p256.pub.pem")).unwrap()
}

/// An image-only ModelValidation `name` (no `spec.model`): models in repositories matching
/// `globs`, trusted with `publicKeyConfig.keyPem` `pem`, and `more` fields of `spec.images`.
fn image_mv(name: &str, globs: &[String], pem: &str, more: Value) -> Value {
    let mut images = json!({"globs": globs});
    for (k, v) in more.as_object().unwrap() {
        images[k] = v.clone();
    }
    json!({
        "apiVersion": "ml.sigstore.dev/v1alpha1", "kind": "ModelValidation",
        "metadata": {"name": name},
        "spec": {"images": images, "config": {"publicKeyConfig": {"keyPem": pem}}}
    })
}

/// A pod labelled for the ModelValidation `mv` with the image volume `model` at `reference`.
fn pod_for(name: &str, mv: &str, reference: &str) -> Pod {
    image_pod(name, json!({LABEL: mv}), &[("model", reference)])
}

/// The pod's `validation.ml.sigstore.dev/pinned-images` annotation: `volume=reference` pairs.
fn pins(pod: &Pod) -> Option<String> {
    pod.metadata
        .annotations
        .as_ref()?
        .get(PINNED_IMAGES)
        .cloned()
}

/// `host/repo@digest`.
fn pinned(host: &str, repo: &str, digest: &str) -> String {
    format!("{host}/{repo}@{digest}")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_signed_model_is_pinned_and_unsigned_or_foreign_ones_are_refused() {
    let started = Instant::now();
    let w = world().await;
    let r = &w.referrers;
    let host = r.host();
    let env = Ns::new("oci-signed", json!({})).await;
    env.key_mv("models", &[format!("{host}/signed/**")]).await;

    // 1. Signed with the trusted key: admitted, the reference pinned to the manifest digest the
    // registry serves for the tag.
    let tagged = format!("{host}/signed/models/llm:v1");
    let pushed = push_model(r, &tagged, &model_files("signed")).await;
    sign_and_attach(r, &pushed, &ec_key_signer()).await;
    let served = resolve(r, &tagged).await;
    assert_eq!(served.digest, pushed.digest);
    let want = pinned(&host, "signed/models/llm", &served.digest);
    assert_eq!(served.pinned_string(), want);
    let created = env
        .admitted(&pod_for("llm", "models", &tagged), &[("model", &want)])
        .await;
    // The pin is recorded for the ValidatingAdmissionPolicy that keeps it.
    assert_eq!(pins(&created), Some(format!("model={want}")));

    // 2. Unsigned: refused, naming the policy, the volume and the reference.
    let unsigned = format!("{host}/signed/models/unsigned:v1");
    let unsigned_pushed = push_model(r, &unsigned, &model_files("unsigned")).await;
    let msg = env
        .refused(
            &pod_for("unsigned", "models", &unsigned),
            "no model signature is attached",
        )
        .await;
    env.assert_names(&msg, "models", &unsigned);
    // Twin: signed a moment later, the same pod is admitted (refusals are not cached).
    sign_and_attach(r, &unsigned_pushed, &ec_key_signer()).await;
    env.admitted(
        &pod_for("signed-later", "models", &unsigned),
        &[(
            "model",
            &pinned(&host, "signed/models/unsigned", &unsigned_pushed.digest),
        )],
    )
    .await;

    // 3. Signed with another key: refused with the engine's reason. Its twin is case 1 (same
    // policy, the trusted key); and a policy trusting that other key admits the same model.
    let (other_signer, other_pem) = fresh_key_signer();
    let foreign = format!("{host}/signed/models/foreign:v1");
    let foreign_pushed = push_model(r, &foreign, &model_files("foreign")).await;
    sign_and_attach(r, &foreign_pushed, &other_signer).await;
    let msg = env
        .refused(&pod_for("foreign", "models", &foreign), "key mismatch")
        .await;
    env.assert_names(&msg, "models", &foreign);
    env.mv(image_mv(
        "other-key",
        &[format!("{host}/signed/**")],
        &other_pem,
        json!({}),
    ))
    .await;
    env.admitted(
        &pod_for("foreign-trusted", "other-key", &foreign),
        &[(
            "model",
            &pinned(&host, "signed/models/foreign", &foreign_pushed.digest),
        )],
    )
    .await;

    // A pod with the same model and a second image volume outside every glob: the model is
    // pinned, the other volume left exactly as written (it does not even exist).
    let outside = format!("{host}/elsewhere/tools:v1");
    let created = env
        .admitted(
            &image_pod(
                "two-volumes",
                json!({LABEL: "models"}),
                &[("model", &tagged), ("tools", &outside)],
            ),
            &[("model", &want), ("tools", &outside)],
        )
        .await;
    assert_eq!(pins(&created), Some(format!("model={want}")));
    eprintln!(
        "a_signed_model_is_pinned_and_unsigned_or_foreign_ones_are_refused: {:?}",
        started.elapsed()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_moved_tag_and_a_manifest_carrying_another_signature_are_refused() {
    let started = Instant::now();
    let w = world().await;
    let env = Ns::new("oci-tamper", json!({})).await;
    // On both kinds: the signature found through the referrers API, and through the tag schema.
    for r in [&w.referrers, &w.distribution] {
        let host = r.host();
        let mv = format!("tamper-{}", r.kind().binary());
        env.key_mv(&mv, &[format!("{host}/tamper/**")]).await;
        let tagged = format!("{host}/tamper/llm:v1");
        let seed = format!("tamper-{}", r.kind().binary());
        let signed = push_model(r, &tagged, &model_files(&seed)).await;
        let bundle = sign_and_attach(r, &signed, &ec_key_signer()).await;
        let signed_pin = pinned(&host, "tamper/llm", &signed.digest);
        env.admitted(
            &pod_for(&format!("{mv}-before"), &mv, &tagged),
            &[("model", &signed_pin)],
        )
        .await;

        // The tag moves to other content: the signature is attached to the old digest only.
        let moved = push_model(r, &tagged, &tampered_files(&seed)).await;
        assert_ne!(moved.digest, signed.digest);
        let msg = env
            .refused(
                &pod_for(&format!("{mv}-moved"), &mv, &tagged),
                "no model signature is attached",
            )
            .await;
        env.assert_names(&msg, &mv, &tagged);
        assert!(
            msg.contains(&format!(
                "the tag names {} now: if it was signed before, it has moved since",
                moved.digest
            )),
            "{msg}"
        );

        // The attacker attaches the old signature to the new manifest: the signature
        // verifies, the layers differ, and the refusal names the file.
        support::oci::attach(r, &moved, &bundle).await;
        let msg = env
            .refused(
                &pod_for(&format!("{mv}-tampered"), &mv, &tagged),
                "weights.bin",
            )
            .await;
        env.assert_names(&msg, &mv, &tagged);
        assert!(
            msg.contains("does not match its signature"),
            "the engine's mismatch: {msg}"
        );
        assert!(
            !msg.contains("no model signature is attached"),
            "now a signature is attached: {msg}"
        );
        // The files that did not change are not blamed.
        assert!(
            !msg.contains("config.json") && !msg.contains("README.md"),
            "{msg}"
        );

        // Twin: the digest that was signed is still admitted, unchanged.
        env.admitted(
            &pod_for(&format!("{mv}-signed-digest"), &mv, &signed_pin),
            &[("model", &signed_pin)],
        )
        .await;
    }
    eprintln!(
        "a_moved_tag_and_a_manifest_carrying_another_signature_are_refused: {:?}",
        started.elapsed()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn certificate_trust_verifies_and_a_path_anchor_is_refused() {
    let started = Instant::now();
    let w = world().await;
    let r = &w.referrers;
    let host = r.host();
    let env = Ns::new("oci-trust", json!({})).await;
    let globs = [format!("{host}/trust/**")];
    let pki = CodeSigningPki::generate();
    let tagged = format!("{host}/trust/llm:v1");
    let pushed = push_model(r, &tagged, &model_files("trust")).await;
    sign_and_attach(r, &pushed, &pki.signer).await;
    let with_config = |name: &str, config: Value| {
        json!({
            "apiVersion": "ml.sigstore.dev/v1alpha1", "kind": "ModelValidation",
            "metadata": {"name": name},
            "spec": {"images": {"globs": globs}, "config": config}
        })
    };

    // Signed with a certificate the policy's CA issued (through an intermediate): admitted.
    env.mv(with_config(
        "pki",
        json!({"pkiConfig": {"certificateAuthorityPem": pki.root_pem}}),
    ))
    .await;
    env.admitted(
        &pod_for("pki", "pki", &tagged),
        &[("model", &pinned(&host, "trust/llm", &pushed.digest))],
    )
    .await;

    // Twin: another CA (of the same names) did not issue it.
    let other = CodeSigningPki::generate();
    env.mv(with_config(
        "other-pki",
        json!({"pkiConfig": {"certificateAuthorityPem": other.root_pem}}),
    ))
    .await;
    let msg = env
        .refused(&pod_for("other-pki", "other-pki", &tagged), "certificate '")
        .await;
    env.assert_names(&msg, "other-pki", &tagged);

    // A key given as a path in the pod: the operator cannot read it at admission, and says
    // which field carries it in the policy instead.
    env.mv(with_config(
        "by-path",
        json!({"publicKeyConfig": {"keyPath": "/keys/pub.pem"}}),
    ))
    .await;
    let msg = env
        .refused(
            &pod_for("by-path", "by-path", &tagged),
            "is a path in the pod",
        )
        .await;
    env.assert_names(&msg, "by-path", &tagged);
    assert!(
        msg.contains("publicKeyConfig.keyPath") && msg.contains("publicKeyConfig.keyPem"),
        "{msg}"
    );
    eprintln!(
        "certificate_trust_verifies_and_a_path_anchor_is_refused: {:?}",
        started.elapsed()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreachable_registry_is_refused_asking_to_retry() {
    let started = Instant::now();
    let w = world().await;
    let env = Ns::new("oci-down", json!({})).await;
    let doomed_host = w.doomed.lock().unwrap().as_ref().unwrap().host();
    let closed_host = format!("127.0.0.1:{}", w.closed);
    env.key_mv(
        "models",
        &[
            format!("{doomed_host}/down/**"),
            format!("{closed_host}/down/**"),
        ],
    )
    .await;

    // Nothing ever listened there.
    let nowhere = format!("{closed_host}/down/llm:v1");
    let msg = env
        .refused(&pod_for("nowhere", "models", &nowhere), "retry")
        .await;
    env.assert_names(&msg, "models", &nowhere);

    // A registry that served a signed model, then stops: the twin is admitted before.
    let tagged = format!("{doomed_host}/down/llm:v1");
    // Only this test uses it: take it out, so that no lock is held across awaits.
    let registry = w.doomed.lock().unwrap().take().unwrap();
    let pushed = push_model(&registry, &tagged, &model_files("down")).await;
    sign_and_attach(&registry, &pushed, &ec_key_signer()).await;
    env.admitted(
        &pod_for("while-up", "models", &tagged),
        &[("model", &pinned(&doomed_host, "down/llm", &pushed.digest))],
    )
    .await;
    drop(registry);
    let msg = env
        .refused(&pod_for("stopped", "models", &tagged), "retry")
        .await;
    env.assert_names(&msg, "models", &tagged);
    eprintln!(
        "an_unreachable_registry_is_refused_asking_to_retry: {:?}",
        started.elapsed()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_private_registry_needs_credentials() {
    let started = Instant::now();
    let w = world().await;
    let r = &w.private;
    let host = r.host();
    let tagged = format!("{host}/private/llm:v1");
    let pushed = push_model(r, &tagged, &model_files("private")).await;
    sign_and_attach(r, &pushed, &ec_key_signer()).await;
    let want = pinned(&host, "private/llm", &pushed.digest);
    let globs = [format!("{host}/private/**")];

    // A ModelValidation: the registry refuses the operator when the pod brings no credentials.
    let env = Ns::new("oci-private", json!({})).await;
    env.key_mv("models", &globs).await;
    let msg = env
        .refused(
            &pod_for("anonymous", "models", &tagged),
            "no credentials were sent",
        )
        .await;
    env.assert_names(&msg, "models", &tagged);
    // The way to fix it is the pod's imagePullSecrets (the operator runs with
    // --pod-pull-secrets), not spec.images.pullSecret, which a ModelValidation may not name.
    assert!(msg.contains("imagePullSecrets"), "{msg}");
    assert!(
        !msg.contains("with the policy's spec.images.pullSecret"),
        "a ModelValidation cannot name a pull Secret: {msg}"
    );

    // A ModelValidation may not borrow a Secret of the operator's namespace.
    let secret = "oci-private-creds";
    let e = create_mv(
        &env.client,
        &env.ns,
        image_mv(
            "borrower",
            &globs,
            &signer_key(),
            json!({"pullSecret": secret}),
        ),
    )
    .await
    .unwrap_err();
    let m = api_message(e);
    assert!(
        m.contains("spec.images.pullSecret is for ClusterModelValidations"),
        "{m}"
    );
    // Nor a pattern with a tag (patterns match repositories), nor a policy with nothing to
    // verify; the twin, the same pattern without its tag, is created above.
    for (name, spec, says) in [
        (
            "tagged",
            json!({"images": {"globs": [format!("{}/models/llm:v1", r.host())]},
                   "config": {"publicKeyConfig": {"keyPem": signer_key()}}}),
            "images.globs match repositories (registry/path): drop the :tag or @digest",
        ),
        (
            "empty",
            json!({"config": {"publicKeyConfig": {"keyPem": signer_key()}}}),
            "set spec.model (a model in the pod's files), spec.images (models in the pod's image volumes), or both",
        ),
    ] {
        let e = support::create_mv(
            &env.client,
            &env.ns,
            json!({"apiVersion": "ml.sigstore.dev/v1alpha1", "kind": "ModelValidation",
                   "metadata": {"name": name}, "spec": spec}),
        )
        .await
        .unwrap_err();
        let m = api_message(e);
        assert!(m.contains(says), "{name}: {m}");
    }

    // The pod's own pull Secret: with a wrong password refused, with the right one admitted.
    let secrets = Api::<Secret>::namespaced(env.client.clone(), &env.ns);
    let mut bad = pull_secret("wrong", &env.ns, r);
    bad.string_data = Some(
        [(
            ".dockerconfigjson".to_string(),
            docker_config_json(&host, "alice", "not-the-password"),
        )]
        .into(),
    );
    secrets.create(&PostParams::default(), &bad).await.unwrap();
    secrets
        .create(&PostParams::default(), &pull_secret("creds", &env.ns, r))
        .await
        .unwrap();
    let with_pull_secret = |name: &str, secret: &str| {
        let mut p = pod_for(name, "models", &tagged);
        p.spec.as_mut().unwrap().image_pull_secrets = Some(vec![
            serde_json::from_value(json!({"name": secret})).unwrap(),
        ]);
        p
    };
    let msg = env
        .refused(
            &with_pull_secret("wrong-password", "wrong"),
            "the credentials sent were not accepted",
        )
        .await;
    env.assert_names(&msg, "models", &tagged);
    env.admitted(
        &with_pull_secret("with-secret", "creds"),
        &[("model", &want)],
    )
    .await;

    // A ClusterModelValidation names the platform's pull Secret in the operator's namespace.
    let cmv_ns = Ns::new(
        "oci-private-cmv",
        json!({CLUSTER_POLICY_NAMESPACE_LABEL: WEBHOOK_CONFIG, "oci-test": "private"}),
    )
    .await;
    let policy = |more: Value| {
        let mut images = json!({"globs": globs});
        for (k, v) in more.as_object().unwrap() {
            images[k] = v.clone();
        }
        json!({"metadata": {"name": "oci-private"}, "spec": {
            "namespaceSelector": {"matchLabels": {"oci-test": "private"}},
            "images": images,
            "authorities": [{"name": "release", "key": {"pem": signer_key()}}],
        }})
    };
    apply_cmv(&env.client, policy(json!({}))).await.unwrap();
    let plain = image_pod("plain", json!({}), &[("model", &tagged)]);
    let msg = cmv_ns.refused(&plain, "no credentials were sent").await;
    assert!(msg.contains("ClusterModelValidation oci-private"), "{msg}");
    assert!(msg.contains("spec.images.pullSecret"), "{msg}");
    Api::<Secret>::namespaced(env.client.clone(), OPERATOR_NAMESPACE)
        .create(
            &PostParams::default(),
            &pull_secret(secret, OPERATOR_NAMESPACE, r),
        )
        .await
        .unwrap();
    apply_cmv(&env.client, policy(json!({"pullSecret": secret})))
        .await
        .unwrap();
    cmv_ns.admitted(&plain, &[("model", &want)]).await;
    eprintln!(
        "a_private_registry_needs_credentials: {:?}",
        started.elapsed()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn both_registry_kinds_admit_a_signed_model() {
    let started = Instant::now();
    let w = world().await;
    let env = Ns::new("oci-kinds", json!({})).await;
    for r in [&w.referrers, &w.distribution] {
        let kind = r.kind();
        let host = r.host();
        let repo = format!("kinds/{}", kind.binary());
        let mv = kind.binary();
        env.key_mv(mv, &[format!("{host}/kinds/**")]).await;
        let tagged = format!("{host}/{repo}:v1");
        let pushed = push_model(r, &tagged, &model_files(kind.binary())).await;
        sign_and_attach(r, &pushed, &ec_key_signer()).await;
        let since = r.requests().len();
        env.admitted(
            &pod_for(mv, mv, &tagged),
            &[("model", &pinned(&host, &repo, &pushed.digest))],
        )
        .await;
        tokio::time::sleep(Duration::from_millis(300)).await;
        let log = requests_for(r, since, &repo).join("\n");
        let hex = pushed.digest.strip_prefix("sha256:").unwrap();
        let api = format!("GET /v2/{repo}/referrers/{}", pushed.digest);
        let tag_schema = format!("GET /v2/{repo}/manifests/sha256-{hex} 200");
        if kind.serves_referrers() {
            assert!(
                log.lines()
                    .any(|l| l.starts_with(&api) && l.ends_with(" 200")),
                "{kind:?}: the referrers API answered: {log}"
            );
            assert!(!log.contains("/manifests/sha256-"), "{kind:?}: {log}");
        } else {
            assert!(
                log.contains(&tag_schema),
                "{kind:?}: the tag schema was read: {log}"
            );
        }
        // No layer was fetched: only the bundle's blob.
        let blobs: Vec<&str> = log.lines().filter(|l| l.contains("/blobs/")).collect();
        let manifest: Value = serde_json::from_slice(&pushed.manifest).unwrap();
        for layer in manifest["layers"].as_array().unwrap() {
            let d = layer["digest"].as_str().unwrap();
            assert!(
                !blobs.iter().any(|b| b.contains(d)),
                "{kind:?}: layer {d} fetched: {log}"
            );
        }
    }
    eprintln!(
        "both_registry_kinds_admit_a_signed_model: {:?}",
        started.elapsed()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cluster_policy_with_images_governs_unlabelled_pods() {
    let started = Instant::now();
    let w = world().await;
    let r = &w.referrers;
    let host = r.host();
    let env = Ns::new(
        "oci-cmv",
        json!({CLUSTER_POLICY_NAMESPACE_LABEL: WEBHOOK_CONFIG, "oci-test": "cmv"}),
    )
    .await;
    apply_cmv(
        &env.client,
        json!({"metadata": {"name": "oci-org"}, "spec": {
            "namespaceSelector": {"matchLabels": {"oci-test": "cmv"}},
            "images": {"globs": [format!("{host}/cmv/**")]},
            "authorities": [{"name": "release", "key": {"pem": signer_key()}}],
        }}),
    )
    .await
    .unwrap();
    let tagged = format!("{host}/cmv/team/llm:v1");
    let pushed = push_model(r, &tagged, &model_files("cmv")).await;
    sign_and_attach(r, &pushed, &ec_key_signer()).await;

    // No label: verified and pinned, and nothing injected (the policy has no model path).
    let created = env
        .admitted(
            &image_pod("plain", json!({"app": "llm"}), &[("model", &tagged)]),
            &[("model", &pinned(&host, "cmv/team/llm", &pushed.digest))],
        )
        .await;
    assert!(
        created
            .spec
            .as_ref()
            .unwrap()
            .init_containers
            .as_ref()
            .is_none_or(Vec::is_empty),
        "{:?}",
        created.spec.as_ref().unwrap().init_containers
    );

    // Recorded on the pod for the policy's status, which counts it verified (at admission).
    let annotations = created.metadata.annotations.clone().unwrap_or_default();
    assert!(
        annotations
            .get(model_validation_operator::names::annotations::CLUSTER_POLICIES)
            .is_some_and(|v| v.starts_with("oci-org@")),
        "{annotations:?}"
    );
    let cmvs = support::cmv_api(&env.client);
    let cmvs = &cmvs;
    wait_for(
        "the cluster policy's status to count the pod verified",
        Duration::from_secs(30),
        || async move {
            let cmv = cmvs.get("oci-org").await.ok()?;
            (cmv.data["status"]["verifiedCount"].as_i64() == Some(1)).then_some(())
        },
    )
    .await;

    // Unsigned under the glob: refused, naming the cluster policy.
    let unsigned = format!("{host}/cmv/team/unsigned:v1");
    push_model(r, &unsigned, &model_files("cmv-unsigned")).await;
    let msg = env
        .refused(
            &image_pod("unsigned", json!({}), &[("model", &unsigned)]),
            "no model signature is attached",
        )
        .await;
    let volume = format!("volume \"model\" (image \"{unsigned}\")");
    assert!(msg.contains("ClusterModelValidation oci-org"), "{msg}");
    assert!(msg.contains(&volume), "{msg}");

    // Twin: an image volume that matches no glob is admitted unchanged (it does not exist: it
    // is never looked up).
    let outside = format!("{host}/other/llm:v1");
    let created = env
        .admitted(
            &image_pod("outside", json!({}), &[("model", &outside)]),
            &[("model", &outside)],
        )
        .await;
    assert_eq!(pins(&created), None, "nothing was pinned");

    // Co-signing: a cluster policy that requires all of two authorities refuses the model
    // signed by one, naming the missing one; once the second signer attaches its signature
    // too, the same model is admitted.
    let cosign = Ns::new(
        "oci-cosign",
        json!({CLUSTER_POLICY_NAMESPACE_LABEL: WEBHOOK_CONFIG, "oci-test": "cmv-cosign"}),
    )
    .await;
    let (qa_signer, qa_pem) = fresh_key_signer();
    apply_cmv(
        &env.client,
        json!({"metadata": {"name": "oci-cosign"}, "spec": {
            "namespaceSelector": {"matchLabels": {"oci-test": "cmv-cosign"}},
            "images": {"globs": [format!("{host}/cosign/**")]},
            "authorities": [
                {"name": "release", "key": {"pem": signer_key()}},
                {"name": "qa", "key": {"pem": qa_pem}},
            ],
            "requiredAuthorities": "all",
        }}),
    )
    .await
    .unwrap();
    let tagged = format!("{host}/cosign/llm:v1");
    let pushed = push_model(r, &tagged, &model_files("cosign")).await;
    sign_and_attach(r, &pushed, &ec_key_signer()).await;
    let msg = cosign
        .refused(
            &image_pod("one-signer", json!({}), &[("model", &tagged)]),
            "authorities must vouch",
        )
        .await;
    assert!(msg.contains("ClusterModelValidation oci-cosign"), "{msg}");
    assert!(
        msg.contains("2 of 2 authorities must vouch for the model, 1 did (release)"),
        "{msg}"
    );
    assert!(
        msg.contains("qa: "),
        "the missing authority is named: {msg}"
    );
    // A second signature, by a key no authority trusts, changes nothing: release still
    // vouches, and the refusal does not claim that no signature verified.
    let (stranger, _) = fresh_key_signer();
    sign_and_attach(r, &pushed, &stranger).await;
    let msg = cosign
        .refused(
            &image_pod("stranger", json!({}), &[("model", &tagged)]),
            "authorities must vouch",
        )
        .await;
    assert!(
        msg.contains("2 of 2 authorities must vouch for the model, 1 did (release)"),
        "{msg}"
    );
    assert!(
        !msg.contains("none of the 2 attached signatures verified"),
        "release's signature verified: {msg}"
    );
    sign_and_attach(r, &pushed, &qa_signer).await;
    cosign
        .admitted(
            &image_pod("two-signers", json!({}), &[("model", &tagged)]),
            &[("model", &pinned(&host, "cosign/llm", &pushed.digest))],
        )
        .await;
    eprintln!(
        "a_cluster_policy_with_images_governs_unlabelled_pods: {:?}",
        started.elapsed()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_modelcar_image_is_verified_from_its_layers() {
    use test_cluster::support::registry_push::{push_image, tar_layer};
    let started = Instant::now();
    let w = world().await;
    // The tag schema registry: the signature found without the referrers API.
    let r = &w.distribution;
    let host = r.host();
    let env = Ns::new("oci-modelcar", json!({})).await;
    let weights: Vec<u8> = (0..40_000u32).map(|i| (i % 251) as u8).collect();
    let config = br#"{"architectures":["TinyLM"]}"#;

    // The model signed as a directory, the image's /models: two layers, one gzip-compressed.
    let dir = tempfile::tempdir().unwrap();
    let model = dir.path().join("model");
    std::fs::create_dir(&model).unwrap();
    std::fs::write(model.join("config.json"), config).unwrap();
    std::fs::write(model.join("model.safetensors"), &weights).unwrap();
    let signature = dir.path().join("model.sig");
    support::sign(&model, &ec_key_signer(), &signature);
    let bundle = std::fs::read(&signature).unwrap();
    let layers = |weights: &[u8]| {
        vec![
            (
                true,
                tar_layer(&[("models/", b""), ("models/config.json", config)]),
            ),
            (false, tar_layer(&[("models/model.safetensors", weights)])),
        ]
    };
    let repo = "modelcar/car";
    let tagged = format!("{host}/{repo}:v1");
    let pinned_car = tokio::task::block_in_place(|| push_image(r, &tagged, &layers(&weights)));
    let car = resolve(r, &pinned_car).await;
    support::oci::attach(r, &car, &bundle).await;
    let layer_digests: Vec<String> =
        serde_json::from_slice::<Value>(&car.manifest).unwrap()["layers"]
            .as_array()
            .unwrap()
            .iter()
            .map(|l| l["digest"].as_str().unwrap().to_string())
            .collect();
    let globs = [format!("{host}/modelcar/**")];
    let car_mv = |name: &str, root: Option<&str>| {
        let mut images = json!({"globs": globs});
        if let Some(root) = root {
            images["modelcarRoot"] = json!(root);
        }
        json!({
            "apiVersion": "ml.sigstore.dev/v1alpha1", "kind": "ModelValidation",
            "metadata": {"name": name},
            "spec": {"images": images, "config": {"publicKeyConfig": {"keyPem": signer_key()}}}
        })
    };

    // Without spec.images.modelcarRoot: refused, naming the field, with no layer fetched.
    env.mv(car_mv("no-root", None)).await;
    let since = r.requests().len();
    let msg = env
        .refused(&pod_for("no-root", "no-root", &tagged), "modelcarRoot")
        .await;
    env.assert_names(&msg, "no-root", &tagged);
    tokio::time::sleep(Duration::from_millis(300)).await;
    let log = requests_for(r, since, repo);
    for d in &layer_digests {
        assert!(!log.iter().any(|l| l.contains(d.as_str())), "{d}: {log:#?}");
    }

    // With it: admitted, pinned, each layer fetched once (the verdict then cached).
    env.mv(car_mv("car", Some("/models"))).await;
    let since = r.requests().len();
    env.admitted(&pod_for("car", "car", &tagged), &[("model", &pinned_car)])
        .await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let log = requests_for(r, since, repo);
    for d in &layer_digests {
        let fetched = log
            .iter()
            .filter(|l| l.starts_with(&format!("GET /v2/{repo}/blobs/{d} ")))
            .count();
        assert_eq!(fetched, 1, "{d}: {log:#?}");
    }

    // The verdict is not reused for other policies with the same key: a policy whose model
    // root is elsewhere in the image, and the one without a root, still refuse.
    env.mv(car_mv("elsewhere", Some("/elsewhere"))).await;
    let msg = env
        .refused(
            &pod_for("elsewhere", "elsewhere", &tagged),
            "volume \"model\"",
        )
        .await;
    env.assert_names(&msg, "elsewhere", &tagged);
    let msg = env
        .refused(
            &pod_for("no-root-again", "no-root", &tagged),
            "modelcarRoot",
        )
        .await;
    env.assert_names(&msg, "no-root", &tagged);

    // The tag moved to an image with one weight byte changed, carrying the same signature:
    // refused naming the file. An unsigned modelcar: refused, no layer fetched.
    let mut flipped = weights.clone();
    flipped[0] ^= 1;
    let moved = tokio::task::block_in_place(|| push_image(r, &tagged, &layers(&flipped)));
    support::oci::attach(r, &resolve(r, &moved).await, &bundle).await;
    let msg = env
        .refused(&pod_for("tampered", "car", &tagged), "model.safetensors")
        .await;
    env.assert_names(&msg, "car", &tagged);
    let unsigned = format!("{host}/modelcar/unsigned:v1");
    let mut other = weights.clone();
    other[1] ^= 1;
    let unsigned_pin = tokio::task::block_in_place(|| push_image(r, &unsigned, &layers(&other)));
    let unsigned_layers: Vec<String> = serde_json::from_slice::<Value>(
        &resolve(r, &unsigned_pin).await.manifest,
    )
    .unwrap()["layers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["digest"].as_str().unwrap().to_string())
        .collect();
    let since = r.requests().len();
    let msg = env
        .refused(
            &pod_for("unsigned", "car", &unsigned),
            "no model signature is attached",
        )
        .await;
    env.assert_names(&msg, "car", &unsigned);
    tokio::time::sleep(Duration::from_millis(300)).await;
    let log = requests_for(r, since, "modelcar/unsigned");
    for d in &unsigned_layers {
        assert!(
            !log.iter()
                .any(|l| l.contains("/blobs/") && l.contains(d.as_str())),
            "{d}: {log:#?}"
        );
    }
    eprintln!(
        "a_modelcar_image_is_verified_from_its_layers: {:?}",
        started.elapsed()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pinned_pod_is_admitted_unchanged_and_a_verified_digest_is_cached() {
    let started = Instant::now();
    let w = world().await;
    let r = &w.referrers;
    let host = r.host();
    let env = Ns::new("oci-cache", json!({})).await;
    env.key_mv("models", &[format!("{host}/cache/**")]).await;
    let repo = "cache/llm";
    let tagged = format!("{host}/{repo}:v1");
    let pushed = push_model(r, &tagged, &model_files("cache")).await;
    sign_and_attach(r, &pushed, &ec_key_signer()).await;
    let pin = pinned(&host, repo, &pushed.digest);

    // The first admission (the dry runs that wait for the policy) fetches the signature.
    let since = r.requests().len();
    env.admitted(&pod_for("first", "models", &tagged), &[("model", &pin)])
        .await;
    let first = requests_for(r, since, repo);
    assert!(
        first.iter().any(|l| l.contains("/referrers/")),
        "the first admission listed the referrers: {first:#?}"
    );

    // Already pinned: admitted unchanged; the same tag again: pinned the same. Neither lists
    // referrers nor fetches a bundle: the verified digest is served from the cache.
    let since = r.requests().len();
    let created = env
        .admitted(&pod_for("pinned", "models", &pin), &[("model", &pin)])
        .await;
    assert_eq!(pins(&created), Some(format!("model={pin}")));
    env.admitted(&pod_for("again", "models", &tagged), &[("model", &pin)])
        .await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let second = requests_for(r, since, repo);
    assert!(
        !second
            .iter()
            .any(|l| l.contains("/referrers/") || l.contains("/blobs/") || l.contains("sha256-")),
        "served from the cache: {second:#?}"
    );

    // Twin: the cache key includes the policy's trust. A policy trusting another key is not
    // answered from this entry: the registry is asked again, and the pod is refused.
    let (_, other_pem) = fresh_key_signer();
    env.mv(image_mv(
        "other-trust",
        &[format!("{host}/cache/**")],
        &other_pem,
        json!({}),
    ))
    .await;
    let since = r.requests().len();
    let msg = env
        .refused(
            &pod_for("other-trust", "other-trust", &tagged),
            "key mismatch",
        )
        .await;
    env.assert_names(&msg, "other-trust", &tagged);
    let third = requests_for(r, since, repo);
    assert!(
        third.iter().any(|l| l.contains("/referrers/")),
        "another trust is not served from the cache: {third:#?}"
    );
    eprintln!(
        "a_pinned_pod_is_admitted_unchanged_and_a_verified_digest_is_cached: {:?}",
        started.elapsed()
    );
}
