//! model-validation-operator: the `ModelValidation` API, the pod admission webhook that injects
//! the verification init container, its TLS, the status controller and metrics.
//!
//! Where things are decided:
//! - [`crd`]: the API types; [`crd::ValidationConfig::method`] is the one place that decides the
//!   verification method, [`crd::ModelValidationSpec::file_paths`] the files the verifier reads.
//! - [`webhook::decide`]: the pure admission decision, a [`webhook::Decision`];
//!   [`webhook::server`] renders it, counts it and records refusals as Events ([`events`]).
//! - [`agent::Invocation`]: the typed operator→agent contract that renders the injected
//!   container's `model-signing` arguments.
//! - [`scope`] and [`authorities`]: which cluster policies govern a pod, and a cluster policy's
//!   authorities as the document its verifier reads.
//! - [`names`]: every label, annotation, container name and the field manager.
//! - [`controller`]: ModelValidation status, verification Events and metrics, under a Lease.
//! - [`admin`], [`certs`], [`tls`], [`cache`], [`registration`], [`bootstrap`]: the edges
//!   (HTTP, certificates, watch caches, webhook registration, local setup); the binary's
//!   `args.rs` wires them under one shutdown token.
#![forbid(unsafe_code)]
#![cfg_attr(not(test), warn(clippy::unwrap_used, clippy::expect_used))]

pub mod admin;
pub mod agent;
pub mod authorities;
pub mod bootstrap;
pub mod cache;
pub mod certs;
pub mod cluster_policy;
pub mod controller;
pub mod crd;
pub mod events;
pub mod images;
pub mod metrics;
pub mod names;
pub mod registration;
pub mod scope;
pub mod text;
pub mod tls;
pub mod webhook;

#[cfg(test)]
mod test_support;
