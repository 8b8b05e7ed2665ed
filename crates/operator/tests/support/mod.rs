//! Test support shared by the operator's integration tests: each test file says `mod support;`.
//!
//! - [`Operator`]: the operator binary as a process against a test control plane, tied to the
//!   test process so it never outlives it; [`shared_operator`] is one per test binary;
//! - [`pod`], [`run_verifier`], [`create_mv`], [`events`]…: pods, ModelValidations and Events;
//! - [`write_model`], [`sign`], [`CodeSigningPki`]: models on disk, their signatures, and a
//!   certificate chain generated per run (so no test depends on a date);
//! - [`oci`]: models as OCI artifacts pushed, signed and attached in the test registries, and
//!   pods that mount them as image volumes;
//! - [`TestWebhook`]: the webhook's TLS server in-process, on static [`Policies`];
//! - [`SecondWebhook`]: another mutating webhook registered on the API server next to ours;
//! - [`helm_template`], [`kustomize_build`], [`assert_same_objects`]: the Helm chart rendered
//!   and compared with the kustomize base; [`helm_install`], [`helm_release`],
//!   [`helm_uninstall`]: the chart installed on a test control plane;
//! - re-exports of the workspace-wide helpers of [`test_cluster::support`].
//!
//! Every test binary compiles this module but uses only part of it: what one binary leaves
//! unused is used by another, hence the allow (for items and for re-exports).
#![allow(dead_code, unused_imports)]

mod admission;
pub mod attack;
mod balancer;
mod ca;
mod chart;
mod cluster;
mod models;
pub mod oci;
mod operator;
mod pki;
mod rbac;
mod second_webhook;
mod webhook;

pub use admission::{
    has_verifier, kubeconfig_via, verifier_key, verifier_status, wait_dry_run_admits,
};
pub use balancer::{Backend, Balancer};
pub use ca::remove_ca_key;
pub use chart::{
    HELM_LABELS, assert_same_files, assert_same_objects, by_key, chart_dir, helm_install,
    helm_release, helm_template, helm_uninstall, kustomize_build, normalize, object_key,
    parse_docs, run_tool, stub_crd, success, testbin_tool, yaml_roundtrip,
};
pub use cluster::{
    add_ephemeral, api_message, apply_cmv, cmv_api, create_and_run, create_mv, create_refused,
    create_with_warnings, events, find_event, init_names, init_outcome, key_in_policy_mv,
    label_namespace, mv_api, pod, post_with_warnings, run_pod, run_pod_with, run_verifier,
    updates_cannot_undo_verification,
};
pub use models::{ec_key_signer, fresh_key_signer, sign, signed_model_and_key, write_model};
pub use operator::{
    AGENT_IMAGE, CLUSTER_POLICY_NAMESPACE_LABEL, Operator, OperatorOptions, shared_operator,
};
pub use pki::CodeSigningPki;
pub use rbac::{
    OPERATOR_NAMESPACE, OPERATOR_SA, api_for, apply_doc, deploy_dir, established_and_discovered,
    impersonating, install_base, kustomize, manifest, operator_client,
};
pub use second_webhook::{SecondWebhook, append_op};
pub use test_cluster::support::{
    HttpResponse, agent_binary, fixture, free_port, http_get, http_get_at, metric, wait_for,
};
pub use webhook::{NoPolicies, TestWebhook};
