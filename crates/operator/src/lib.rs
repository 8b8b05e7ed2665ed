//! model-validation-operator: the `ModelValidation` API, the pod admission webhook that injects
//! the verification init container, its TLS, and the operator's wiring.
#![forbid(unsafe_code)]
#![cfg_attr(not(test), warn(clippy::unwrap_used, clippy::expect_used))]

pub mod admin;
pub mod agent;
pub mod bootstrap;
pub mod cache;
pub mod certs;
pub mod controller;
pub mod crd;
pub mod events;
pub mod metrics;
pub mod names;
pub mod registration;
pub mod text;
pub mod tls;
pub mod webhook;

#[cfg(test)]
mod test_support;
