//! The OpenSSF Model Signing (OMS v1.0) engine.
//!
//! A model (a directory or a single file) is serialized into a *manifest*: one digest per file
//! (or per shard of a file). The manifest is wrapped in an in-toto statement, signed as a DSSE
//! envelope and shipped as a Sigstore bundle (the `model.sig` file). This crate reads and writes
//! exactly what the Python `model-signing` package (1.1.1 and every earlier released format)
//! reads and writes, and is stricter where that package is lax: certificates must be valid now,
//! nothing is trusted by default, and the manifest is rebuilt with the serialization recorded in
//! the signature.
//!
//! The main entry points are [`sign::sign_model`] and [`verify::verify_model`]; [`serialize`]
//! computes a manifest on its own (for `digest`), and [`bundle`] parses signature files.
//!
//! [`oci`] signs and verifies models stored as OCI artifacts (CNCF ModelPack) from their
//! registry manifest alone; with the `registry` feature, [`oci::registry`] talks to registries.
//!
//! Nothing here depends on Kubernetes.
//!
//! Errors ([`Error`]) are typed and carry data (a wrong method says which method the signature was
//! made with, a refused symlink its path); no message names a command-line flag or a
//! configuration field. Callers word the fix: the CLI as its flags, the operator's agent as
//! ModelValidation fields.
#![forbid(unsafe_code)]
#![cfg_attr(not(test), warn(clippy::unwrap_used, clippy::expect_used))]

pub mod authorities;
pub mod bundle;
pub mod dsse;
pub mod error;
pub mod hashing;
pub mod keys;
pub mod limits;
pub mod manifest;
pub mod name;
pub mod oci;
pub mod pinned;
pub mod serialize;
pub mod sign;
pub mod sigstore;
pub mod statement;
pub mod verify;
pub mod walk;
pub mod x509;

pub use error::{Error, Result};
