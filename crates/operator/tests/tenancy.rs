//! Multi-tenancy on a real API server: with `deploy/base` applied (`tenant-rbac.yaml` among
//! it) and kube-controller-manager's `clusterrole-aggregation` controller running, as on a real
//! cluster, the built-in `view`, `edit` and `admin` roles carry the tenant rules. Users bound to
//! those built-in roles in one namespace (alice: `edit`, victor: `view`, ada: `admin`) then act
//! through impersonation with real requests: they manage or read that namespace's
//! ModelValidations and nothing else of the operator's — no status, no cluster policies, no
//! Secrets of the operator's namespace, no webhook configuration. Users bound to `view` and
//! `edit` cluster-wide still get nothing on cluster policies, which only the platform team's
//! own, non-aggregated role grants. Every refusal is a 403 whose message names the user, verb
//! and resource, and has a passing twin.

mod support;

use std::time::Duration;

use k8s_openapi::api::admissionregistration::v1::{
    MutatingWebhookConfiguration, ValidatingAdmissionPolicy,
};
use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::api::rbac::v1::{ClusterRole, ClusterRoleBinding, RoleBinding};
use kube::Client;
use kube::api::{
    Api, ApiResource, DeleteParams, DynamicObject, GroupVersionKind, ListParams, Patch,
    PatchParams, PostParams,
};
use serde_json::{Value, json};
use support::{
    OPERATOR_NAMESPACE, deploy_dir, install_base, key_in_policy_mv, kustomize, manifest, mv_api,
    wait_for,
};
use test_cluster::ControlPlane;
use test_cluster::controller_manager::ControllerManager;
use tokio::sync::OnceCell;

/// Bound to the built-in `edit` role in tenant A.
const ALICE: &str = "alice";
/// Bound to the built-in `view` role in tenant A.
const VICTOR: &str = "victor";
/// Bound to the built-in `admin` role in tenant A.
const ADA: &str = "ada";
/// Bound cluster-wide to the non-aggregated cluster-policy role, as a platform team binds it.
const PLATFORM: &str = "platform";
/// Bound cluster-wide to the built-in `view` role (an organisation-wide reader). A RoleBinding
/// never grants cluster-scoped resources, so only a cluster-wide binding shows that the
/// aggregated rules themselves carry nothing on cluster policies.
const READER: &str = "reader";
/// Bound cluster-wide to the built-in `edit` role (a deployer of every namespace), likewise.
const DEPLOYER: &str = "deployer";

const SIGSTORE: &str = "ml.sigstore.dev";
const RHTAS: &str = "rhtas.redhat.com";
const CLUSTER_POLICY_ADMIN: &str = "model-validation-operator-cluster-policy-admin";
/// The operator's own objects in `deploy/base`.
const OWN_WEBHOOK: &str = "model-validation-operator";
const CA_SECRET: &str = "model-validation-operator-webhook-ca";
const GUARD_POLICY: &str = "model-validation.ml.sigstore.dev";
/// Enough for the CRD's validation (it checks for the PEM header); nothing verifies here.
const KEY_PEM: &str = "-----BEGIN PUBLIC KEY-----\nMFkw\n-----END PUBLIC KEY-----\n";

/// What every test of this binary shares: the tenant namespaces, and the controller-manager
/// that keeps the built-in roles aggregated (it lives as long as the test process).
struct Tenancy {
    a: String,
    b: String,
    _aggregation: ControllerManager,
}

/// Installs `deploy/base`, starts the aggregation controller, binds the users and waits until
/// the authorizer grants what the bindings say. Once per test binary.
async fn tenancy() -> (&'static ControlPlane, &'static Tenancy) {
    test_cluster::install_crypto_provider();
    let cp = test_cluster::shared().await.unwrap();
    static TENANCY: OnceCell<Tenancy> = OnceCell::const_new();
    let t = TENANCY
        .get_or_init(|| async {
            // The shared control plane has no controller-manager: without this one, `edit`
            // and `view` stay empty and every tenant request below would be refused.
            let aggregation = ControllerManager::start(cp, &["clusterrole-aggregation"])
                .unwrap_or_else(|e| panic!("{e}"));
            let admin = cp.client().unwrap();
            install_base(&admin).await;
            let a = cp.create_namespace("tenant-a").await.unwrap();
            let b = cp.create_namespace("tenant-b").await.unwrap();
            for (user, role) in [(ALICE, "edit"), (VICTOR, "view"), (ADA, "admin")] {
                bind_in_namespace(&admin, &a, user, role).await;
            }
            for (user, role) in [
                (PLATFORM, CLUSTER_POLICY_ADMIN),
                (READER, "view"),
                (DEPLOYER, "edit"),
            ] {
                bind_cluster_wide(&admin, user, role).await;
            }
            wait_aggregated(&admin, &aggregation).await;
            wait_authorized(cp, &a).await;
            Tenancy {
                a,
                b,
                _aggregation: aggregation,
            }
        })
        .await;
    (cp, t)
}

/// A client acting as user `name` with no groups of its own (as an OIDC user without group
/// claims): the admin client of the test control plane may impersonate anyone.
fn as_user(cp: &ControlPlane, name: &str) -> Client {
    let mut config = cp.config().clone();
    config.auth_info.impersonate = Some(name.into());
    config.auth_info.impersonate_groups = Some(vec!["system:authenticated".into()]);
    Client::try_from(config).unwrap()
}

/// Binds `user` to the built-in ClusterRole `role` in `ns` (the usual tenant grant).
async fn bind_in_namespace(admin: &Client, ns: &str, user: &str, role: &str) {
    let binding: RoleBinding = serde_json::from_value(json!({
        "metadata": {"name": format!("{user}-{role}")},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": role},
        "subjects": [{"apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": user}]
    }))
    .unwrap();
    Api::<RoleBinding>::namespaced(admin.clone(), ns)
        .create(&PostParams::default(), &binding)
        .await
        .unwrap();
}

/// Binds `user` to ClusterRole `role` everywhere, as a platform team binds the cluster-policy
/// role to itself.
async fn bind_cluster_wide(admin: &Client, user: &str, role: &str) {
    let binding: ClusterRoleBinding = serde_json::from_value(json!({
        "metadata": {"name": format!("tenancy-test-{user}")},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": role},
        "subjects": [{"apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": user}]
    }))
    .unwrap();
    Api::<ClusterRoleBinding>::all(admin.clone())
        .patch(
            &format!("tenancy-test-{user}"),
            &PatchParams::apply("tenancy-test").force(),
            &Patch::Apply(&binding),
        )
        .await
        .unwrap();
}

/// Waits until the aggregation controller has copied the tenant rules into the built-in roles
/// (the last verb of each tenant role, in the second group, stands for the rest).
async fn wait_aggregated(admin: &Client, aggregation: &ControllerManager) {
    let roles = &Api::<ClusterRole>::all(admin.clone());
    for (role, verb) in [
        ("view", "watch"),
        ("edit", "deletecollection"),
        ("admin", "deletecollection"),
    ] {
        let what = format!(
            "kube-controller-manager to aggregate {verb} on modelvalidations.{RHTAS} into the \
             built-in {role} role"
        );
        wait_for(&what, Duration::from_secs(60), || async move {
            // A crashed controller-manager fails here with its log, not after a timeout.
            if let Err(e) = aggregation.running() {
                panic!("{e}");
            }
            let r = roles.get(role).await.ok()?;
            grants(&r, RHTAS, "modelvalidations", verb).then_some(())
        })
        .await;
    }
}

/// Waits until the authorizer (which follows roles and bindings through informers) lets each
/// user do what its binding grants, so that no refusal below is only a lag.
async fn wait_authorized(cp: &ControlPlane, a: &str) {
    let dry = PostParams {
        dry_run: true,
        ..Default::default()
    };
    let mv = mv_object(SIGSTORE, "tenancy-probe");
    for user in [ALICE, ADA, DEPLOYER] {
        let api = &mv_api(&as_user(cp, user), a, SIGSTORE);
        let (dry, mv) = (&dry, &mv);
        let what = format!("{user} to be allowed to create ModelValidations in {a}");
        wait_for(&what, Duration::from_secs(30), || async move {
            api.create(dry, mv).await.ok().map(drop)
        })
        .await;
    }
    for user in [VICTOR, READER] {
        let api = &mv_api(&as_user(cp, user), a, SIGSTORE);
        let what = format!("{user} to be allowed to list ModelValidations in {a}");
        wait_for(&what, Duration::from_secs(30), || async move {
            api.list(&ListParams::default()).await.ok().map(drop)
        })
        .await;
    }
    let api = &cmv_api(&as_user(cp, PLATFORM));
    let what = format!("{PLATFORM} to be allowed to read ClusterModelValidations");
    wait_for(&what, Duration::from_secs(30), || async move {
        (status_of(api.get("tenancy-probe").await) != 403).then_some(())
    })
    .await;
}

/// Whether `role` has a rule granting `verb` on `resource` in `group`.
fn grants(role: &ClusterRole, group: &str, resource: &str, verb: &str) -> bool {
    role.rules.iter().flatten().any(|r| {
        r.api_groups.iter().flatten().any(|g| g == group)
            && r.resources.iter().flatten().any(|x| x == resource)
            && r.verbs.iter().any(|v| v == verb)
    })
}

/// Whether `role` has any rule in the operator's groups on `resource` (or on every resource).
fn mentions(role: &ClusterRole, resource: &str) -> bool {
    role.rules.iter().flatten().any(|r| {
        r.api_groups
            .iter()
            .flatten()
            .any(|g| g == SIGSTORE || g == RHTAS || g == "*")
            && r.resources
                .iter()
                .flatten()
                .any(|x| x == resource || x == "*")
    })
}

/// A ModelValidation named `name` of API `group`.
fn mv_object(group: &str, name: &str) -> DynamicObject {
    let manifest = if group == SIGSTORE {
        key_in_policy_mv(name, KEY_PEM)
    } else {
        json!({
            "apiVersion": format!("{RHTAS}/v1alpha1"), "kind": "ModelValidation",
            "metadata": {"name": name},
            "spec": {"model": {"path": "/data/model", "signaturePath": "/data/model/model.sig"},
                     "config": {"privateKeyConfig": {"keyPath": "/keys/key.pub"}}}
        })
    };
    serde_json::from_value(manifest).unwrap()
}

/// ClusterModelValidations, addressed whether or not their CRD is installed yet: the
/// authorizer answers before the API server looks the resource up.
fn cmv_api(client: &Client) -> Api<DynamicObject> {
    let gvk = GroupVersionKind::gvk(SIGSTORE, "v1alpha1", "ClusterModelValidation");
    Api::all_with(
        client.clone(),
        &ApiResource::from_gvk_with_plural(&gvk, "clustermodelvalidations"),
    )
}

/// Whether `deploy/crds` ships the ClusterModelValidation CRD (install_base then applied it).
fn cmv_crd_shipped() -> bool {
    kustomize(&deploy_dir().join("crds"))
        .iter()
        .any(|d| d["spec"]["names"]["kind"] == "ClusterModelValidation")
}

/// The HTTP status of a request's outcome: 200 for success, the API server's code otherwise.
fn status_of<T>(r: Result<T, kube::Error>) -> u16 {
    match r {
        Ok(_) => 200,
        Err(kube::Error::Api(s)) => s.code,
        Err(e) => panic!("not an API answer: {e}"),
    }
}

/// The authorizer's refusal text for `user` doing `verb` on `resource` of `group`, in
/// namespace `ns` or (None) at the cluster scope.
fn refusal(user: &str, verb: &str, resource: &str, group: &str, ns: Option<&str>) -> String {
    let scope = match ns {
        Some(ns) => format!("in the namespace \"{ns}\""),
        None => "at the cluster scope".into(),
    };
    format!(
        "User \"{user}\" cannot {verb} resource \"{resource}\" in API group \"{group}\" {scope}"
    )
}

/// Asserts that `r` is a 403 whose message contains `want`.
#[track_caller]
fn assert_forbidden<T>(r: Result<T, kube::Error>, want: &str) {
    match r {
        Ok(_) => panic!("allowed; expected 403: {want}"),
        Err(kube::Error::Api(s)) => {
            assert_eq!(s.code, 403, "expected 403 ({want}), got: {}", s.message);
            assert!(
                s.message.contains(want),
                "403 message {:?} does not contain {want:?}",
                s.message
            );
        }
        Err(e) => panic!("expected 403 ({want}), got: {e}"),
    }
}

fn dry_post() -> PostParams {
    PostParams {
        dry_run: true,
        ..Default::default()
    }
}

fn merge(value: Value) -> Patch<Value> {
    Patch::Merge(value)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_built_in_roles_carry_the_tenant_rules_and_nothing_more() {
    let (cp, _) = tenancy().await;
    let roles = Api::<ClusterRole>::all(cp.client().unwrap());
    let writes = ["create", "update", "patch", "delete", "deletecollection"];
    let view = roles.get("view").await.unwrap();
    for group in [SIGSTORE, RHTAS] {
        for verb in ["get", "list", "watch"] {
            assert!(
                grants(&view, group, "modelvalidations", verb),
                "view {verb} {group}"
            );
        }
        for verb in writes {
            assert!(
                !grants(&view, group, "modelvalidations", verb),
                "view {verb} {group}"
            );
        }
        for role in ["edit", "admin"] {
            let r = roles.get(role).await.unwrap();
            for verb in ["get", "list", "watch"].into_iter().chain(writes) {
                assert!(
                    grants(&r, group, "modelvalidations", verb),
                    "{role} {verb} {group}"
                );
            }
        }
    }
    for role in ["view", "edit", "admin"] {
        let r = roles.get(role).await.unwrap();
        for resource in [
            "modelvalidations/status",
            "clustermodelvalidations",
            "clustermodelvalidations/status",
        ] {
            assert!(!mentions(&r, resource), "{role} mentions {resource}");
        }
    }
    // The cluster-policy role exists but no built-in role takes it in: it has no aggregation
    // label, and the check above shows none of its rules reached them.
    let platform = roles.get(CLUSTER_POLICY_ADMIN).await.unwrap();
    assert!(grants(
        &platform,
        SIGSTORE,
        "clustermodelvalidations",
        "create"
    ));
    let labels = platform.metadata.labels.unwrap_or_default();
    assert!(
        !labels.keys().any(|k| k.contains("aggregate-to")),
        "{labels:?}"
    );

    // Every object of the manifest is named and labelled as the rest of deploy/base.
    for doc in manifest(&deploy_dir().join("base/tenant-rbac.yaml")) {
        let name = doc["metadata"]["name"].as_str().unwrap();
        assert!(name.starts_with("model-validation-operator-"), "{name}");
        assert_eq!(
            doc["metadata"]["labels"]["app.kubernetes.io/name"], "model-validation-operator",
            "{name}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_editor_manages_model_validations_in_her_namespace_and_nowhere_else() {
    let (cp, t) = tenancy().await;
    let admin = cp.client().unwrap();
    let alice = as_user(cp, ALICE);

    // In tenant A, through the built-in edit role: create, update (patch and replace), delete,
    // in both API groups.
    for group in [SIGSTORE, RHTAS] {
        let api = mv_api(&alice, &t.a, group);
        let name = "alice-policy";
        api.create(&PostParams::default(), &mv_object(group, name))
            .await
            .unwrap_or_else(|e| panic!("alice creates a {group} ModelValidation: {e}"));
        let patched = api
            .patch(
                name,
                &PatchParams::default(),
                &merge(json!({"spec": {"model": {"path": "/data/other"}}})),
            )
            .await
            .unwrap();
        assert_eq!(patched.data["spec"]["model"]["path"], "/data/other");
        let mut replaced = patched.clone();
        replaced.data["spec"]["model"]["path"] = json!("/data/third");
        let replaced = api
            .replace(name, &PostParams::default(), &replaced)
            .await
            .unwrap();
        assert_eq!(replaced.data["spec"]["model"]["path"], "/data/third");
        api.delete(name, &DeleteParams::default()).await.unwrap();
        let gone = mv_api(&admin, &t.a, group).get_opt(name).await.unwrap();
        assert!(gone.is_none(), "{group} {name} was deleted");
    }
    // deletecollection too (granted with delete, as the built-in roles grant it for their own
    // resources).
    let api = mv_api(&alice, &t.a, SIGSTORE);
    let mut labelled = mv_object(SIGSTORE, "alice-batch");
    labelled.metadata.labels = Some([("batch".to_string(), "alice".to_string())].into());
    api.create(&PostParams::default(), &labelled).await.unwrap();
    let batch = ListParams::default().labels("batch=alice");
    api.delete_collection(&DeleteParams::default(), &batch)
        .await
        .unwrap();
    assert!(api.get_opt("alice-batch").await.unwrap().is_none());

    // Tenant B: no binding there, so nothing at all.
    let in_b = mv_api(&alice, &t.b, SIGSTORE);
    let deny = |verb: &str| refusal(ALICE, verb, "modelvalidations", SIGSTORE, Some(&t.b));
    assert_forbidden(
        in_b.create(&PostParams::default(), &mv_object(SIGSTORE, "alice-in-b"))
            .await,
        &deny("create"),
    );
    assert_forbidden(in_b.list(&ListParams::default()).await, &deny("list"));
    // Twin: the same object is valid there, an admin creates it; alice can neither change
    // nor delete it.
    let admin_b = mv_api(&admin, &t.b, SIGSTORE);
    admin_b
        .create(&PostParams::default(), &mv_object(SIGSTORE, "b-policy"))
        .await
        .unwrap();
    assert_forbidden(in_b.get("b-policy").await, &deny("get"));
    assert_forbidden(
        in_b.patch(
            "b-policy",
            &PatchParams::default(),
            &merge(json!({"spec": {"model": {"path": "/x"}}})),
        )
        .await,
        &deny("patch"),
    );
    assert_forbidden(
        in_b.delete("b-policy", &DeleteParams::default()).await,
        &deny("delete"),
    );
    assert!(admin_b.get_opt("b-policy").await.unwrap().is_some());
    admin_b
        .delete("b-policy", &DeleteParams::default())
        .await
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_namespace_admin_manages_model_validations_in_its_namespace_only() {
    let (cp, t) = tenancy().await;
    let ada = as_user(cp, ADA);
    let in_a = mv_api(&ada, &t.a, RHTAS);
    in_a.create(&PostParams::default(), &mv_object(RHTAS, "ada-policy"))
        .await
        .unwrap();
    in_a.delete("ada-policy", &DeleteParams::default())
        .await
        .unwrap();
    assert_forbidden(
        mv_api(&ada, &t.b, RHTAS)
            .create(&PostParams::default(), &mv_object(RHTAS, "ada-policy"))
            .await,
        &refusal(ADA, "create", "modelvalidations", RHTAS, Some(&t.b)),
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_editor_cannot_write_model_validation_status() {
    let (cp, t) = tenancy().await;
    let admin = mv_api(&cp.client().unwrap(), &t.a, SIGSTORE);
    let alice = mv_api(&as_user(cp, ALICE), &t.a, SIGSTORE);
    let name = "status-target";
    alice
        .create(&PostParams::default(), &mv_object(SIGSTORE, name))
        .await
        .unwrap();
    // Twin first: the operator's path (here the admin) writes status through the subresource.
    let forged = json!({"status": {"authMethod": "forged", "verifiedCount": 1000}});
    let real = json!({"status": {"authMethod": "public-key", "verifiedCount": 1}});
    admin
        .patch_status(name, &PatchParams::default(), &merge(real))
        .await
        .unwrap();

    let deny = |verb: &str| refusal(ALICE, verb, "modelvalidations/status", SIGSTORE, Some(&t.a));
    assert_forbidden(
        alice
            .patch_status(name, &PatchParams::default(), &merge(forged.clone()))
            .await,
        &deny("patch"),
    );
    let mut whole = alice.get(name).await.unwrap();
    whole.data["status"] = forged["status"].clone();
    assert_forbidden(
        alice
            .replace_status(name, &PostParams::default(), &whole)
            .await,
        &deny("update"),
    );
    // Through the main resource, which she may patch, a status is dropped: the status
    // subresource makes the API server ignore it there.
    let patched = alice
        .patch(
            name,
            &PatchParams::default(),
            &merge(json!({"metadata": {"labels": {"touched": "yes"}}, "status": forged["status"]})),
        )
        .await
        .unwrap();
    assert_eq!(patched.metadata.labels.unwrap()["touched"], "yes");
    let status = &admin.get(name).await.unwrap().data["status"];
    assert_eq!(status["authMethod"], "public-key", "{status}");
    assert_eq!(status["verifiedCount"], 1, "{status}");
    alice.delete(name, &DeleteParams::default()).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_viewer_reads_model_validations_but_cannot_write_them() {
    let (cp, t) = tenancy().await;
    let admin = cp.client().unwrap();
    let victor = as_user(cp, VICTOR);
    for group in [SIGSTORE, RHTAS] {
        let name = "shared-policy";
        mv_api(&admin, &t.a, group)
            .create(&PostParams::default(), &mv_object(group, name))
            .await
            .unwrap();
        let api = mv_api(&victor, &t.a, group);
        let got = api.get(name).await.unwrap();
        assert_eq!(got.metadata.name.as_deref(), Some(name));
        let listed = api.list(&ListParams::default()).await.unwrap();
        assert!(
            listed
                .items
                .iter()
                .any(|m| m.metadata.name.as_deref() == Some(name)),
            "{group}: victor lists {name}"
        );

        let deny = |verb: &str| refusal(VICTOR, verb, "modelvalidations", group, Some(&t.a));
        assert_forbidden(
            api.create(&PostParams::default(), &mv_object(group, "victor-policy"))
                .await,
            &deny("create"),
        );
        let change = merge(json!({"spec": {"model": {"path": "/data/victor"}}}));
        assert_forbidden(
            api.patch(name, &PatchParams::default(), &change).await,
            &deny("patch"),
        );
        assert_forbidden(
            api.delete(name, &DeleteParams::default()).await,
            &deny("delete"),
        );
        // Twin: the same patch by the editor of the namespace goes through.
        mv_api(&as_user(cp, ALICE), &t.a, group)
            .patch(name, &PatchParams::default(), &change)
            .await
            .unwrap();
        mv_api(&admin, &t.a, group)
            .delete(name, &DeleteParams::default())
            .await
            .unwrap();
    }
    // Another tenant's namespace: not even a read (twin: the list in tenant A above).
    assert_forbidden(
        mv_api(&victor, &t.b, SIGSTORE)
            .list(&ListParams::default())
            .await,
        &refusal(VICTOR, "list", "modelvalidations", SIGSTORE, Some(&t.b)),
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tenants_have_no_rights_on_cluster_policies() {
    let (cp, t) = tenancy().await;
    let deny =
        |user: &str, verb: &str| refusal(user, verb, "clustermodelvalidations", SIGSTORE, None);
    let policy = || {
        serde_json::from_value::<DynamicObject>(json!({
            "apiVersion": format!("{SIGSTORE}/v1alpha1"), "kind": "ClusterModelValidation",
            "metadata": {"name": "tenant-made"}, "spec": {}
        }))
        .unwrap()
    };
    for user in [ALICE, VICTOR, ADA, READER, DEPLOYER] {
        let api = cmv_api(&as_user(cp, user));
        assert_forbidden(api.list(&ListParams::default()).await, &deny(user, "list"));
        assert_forbidden(api.get("org-llms").await, &deny(user, "get"));
        assert_forbidden(
            api.create(&PostParams::default(), &policy()).await,
            &deny(user, "create"),
        );
    }

    // Twins. The cluster-wide bindings are in force: the reader lists ModelValidations of every
    // namespace and the deployer creates one in tenant B, where no tenant user may.
    let everywhere = Api::<DynamicObject>::all_with(
        as_user(cp, READER),
        &ApiResource::from_gvk_with_plural(
            &GroupVersionKind::gvk(SIGSTORE, "v1alpha1", "ModelValidation"),
            "modelvalidations",
        ),
    );
    everywhere.list(&ListParams::default()).await.unwrap();
    let deployed = mv_api(&as_user(cp, DEPLOYER), &t.b, SIGSTORE);
    deployed
        .create(&PostParams::default(), &mv_object(SIGSTORE, "deployed"))
        .await
        .unwrap();
    deployed
        .delete("deployed", &DeleteParams::default())
        .await
        .unwrap();
    // Without the CRD (not yet in deploy/crds) an authorized request is a 404: the
    // refusals above came from authorization, not from a missing resource.
    let served = cmv_crd_shipped();
    let listed = if served { 200 } else { 404 };
    for (who, client) in [
        ("the admin", cp.client().unwrap()),
        (PLATFORM, as_user(cp, PLATFORM)),
    ] {
        let api = cmv_api(&client);
        assert_eq!(
            status_of(api.list(&ListParams::default()).await),
            listed,
            "{who} lists"
        );
        assert_eq!(status_of(api.get("org-llms").await), 404, "{who} gets");
        // A dry run: authorized, then valid (201) or not (422), or not served (404).
        let created = status_of(api.create(&dry_post(), &policy()).await);
        assert!(created != 403, "{who} creates (dry run): {created}");
    }
    // The platform team's role reads cluster-policy status but does not write it: the operator
    // does (twin: its get_status is authorized, a 404 for an absent policy).
    let platform = cmv_api(&as_user(cp, PLATFORM));
    assert_eq!(status_of(platform.get_status("org-llms").await), 404);
    assert_forbidden(
        platform
            .patch_status(
                "org-llms",
                &PatchParams::default(),
                &merge(json!({"status": {}})),
            )
            .await,
        &refusal(
            PLATFORM,
            "patch",
            "clustermodelvalidations/status",
            SIGSTORE,
            None,
        ),
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_editor_cannot_touch_the_operators_secrets() {
    let (cp, t) = tenancy().await;
    let admin = cp.client().unwrap();
    let alice = as_user(cp, ALICE);
    let theirs = Api::<Secret>::namespaced(alice.clone(), OPERATOR_NAMESPACE);
    let deny = |verb: &str| refusal(ALICE, verb, "secrets", "", Some(OPERATOR_NAMESPACE));
    let secret = |name: &str| -> Secret {
        serde_json::from_value(
            json!({"metadata": {"name": name}, "stringData": {"cosign.pub": KEY_PEM}}),
        )
        .unwrap()
    };
    // The webhook's CA (install_base shipped it) and what a cluster policy's secretRef names.
    assert_forbidden(theirs.get(CA_SECRET).await, &deny("get"));
    assert_forbidden(theirs.list(&ListParams::default()).await, &deny("list"));
    // Planting trust material where cluster policies look for it.
    assert_forbidden(
        theirs
            .create(&PostParams::default(), &secret("planted"))
            .await,
        &deny("create"),
    );
    assert!(
        Api::<Secret>::namespaced(admin.clone(), OPERATOR_NAMESPACE)
            .get_opt(CA_SECRET)
            .await
            .unwrap()
            .is_some(),
        "the CA Secret exists: the refusal is not a 404 in disguise"
    );

    // Twin: in her own namespace the built-in edit role lets her read and write Secrets.
    Api::<Secret>::namespaced(admin, &t.a)
        .create(&PostParams::default(), &secret("tenant-key"))
        .await
        .unwrap();
    let own = Api::<Secret>::namespaced(alice, &t.a);
    let got = own.get("tenant-key").await.unwrap();
    assert_eq!(got.data.unwrap()["cosign.pub"].0, KEY_PEM.as_bytes());
    assert!(
        !own.list(&ListParams::default())
            .await
            .unwrap()
            .items
            .is_empty()
    );
    own.create(&PostParams::default(), &secret("alice-key"))
        .await
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_editor_cannot_change_the_admission_configuration() {
    let (cp, _) = tenancy().await;
    let admin = cp.client().unwrap();
    let alice = as_user(cp, ALICE);
    let group = "admissionregistration.k8s.io";
    let mwc = "mutatingwebhookconfigurations";
    // Turning the webhook's failure policy to Ignore would admit labelled pods unverified
    // whenever the operator is down.
    let loosen: Patch<Value> = Patch::Json(
        serde_json::from_value(json!([
            {"op": "replace", "path": "/webhooks/0/failurePolicy", "value": "Ignore"}
        ]))
        .unwrap(),
    );
    let theirs = Api::<MutatingWebhookConfiguration>::all(alice.clone());
    assert_forbidden(
        theirs
            .patch(OWN_WEBHOOK, &PatchParams::default(), &loosen)
            .await,
        &refusal(ALICE, "patch", mwc, group, None),
    );
    assert_forbidden(
        theirs.delete(OWN_WEBHOOK, &DeleteParams::default()).await,
        &refusal(ALICE, "delete", mwc, group, None),
    );
    // Twin: the same patch by a cluster admin is authorized and valid (a dry run: nothing
    // changes).
    let dry = PatchParams {
        dry_run: true,
        ..Default::default()
    };
    let would = Api::<MutatingWebhookConfiguration>::all(admin.clone())
        .patch(OWN_WEBHOOK, &dry, &loosen)
        .await
        .unwrap();
    assert_eq!(
        would.webhooks.unwrap()[0].failure_policy.as_deref(),
        Some("Ignore")
    );

    // The ValidatingAdmissionPolicy that backs the webhook up: a tenant cannot remove it either.
    assert_forbidden(
        Api::<ValidatingAdmissionPolicy>::all(alice)
            .delete(GUARD_POLICY, &DeleteParams::default())
            .await,
        &refusal(ALICE, "delete", "validatingadmissionpolicies", group, None),
    );
    let dry_delete = DeleteParams {
        dry_run: true,
        ..Default::default()
    };
    Api::<ValidatingAdmissionPolicy>::all(admin)
        .delete(GUARD_POLICY, &dry_delete)
        .await
        .unwrap();
}
