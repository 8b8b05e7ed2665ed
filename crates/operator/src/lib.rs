//! model-validation-operator: the `ModelValidation` API, the pod admission webhook that injects
//! the verification init container, its TLS, and the operator's wiring.
#![forbid(unsafe_code)]

pub mod cache;
pub mod certs;
pub mod controller;
pub mod crd;
pub mod metrics;
pub mod registration;
pub mod tls;
pub mod webhook;
