//! The verifier's resource limits, and the error for input that exceeds one.
//!
//! The operator runs the verifier in a container limited to 256 MiB. Whatever a signature file
//! holds, verification must stay far below that: each limit below bounds one thing an attacker
//! controls, and together they bound the peak memory (docs/security.md, "Verifier bounds",
//! gives the measured figures). Each is well above what a genuine model signature needs.

/// Signature files larger than this are refused before parsing. A 100,000-file model's bundle
/// is about 20 MB.
pub const MAX_BUNDLE_BYTES: u64 = 32 * 1024 * 1024;

/// The largest signed statement (the decoded DSSE payload) that is parsed. The peer writes
/// each resource on five indented lines, about 153 bytes plus its name: 16 MiB hold
/// [`MAX_RESOURCES`] resources with names of 14 bytes on average, or 50,000 with names of 180.
pub const MAX_STATEMENT_BYTES: usize = 16 * 1024 * 1024;

/// The most resources (files or shards) a signed manifest may list; with the v0.2 layout, the
/// most subjects.
pub const MAX_RESOURCES: usize = 100_000;

/// The most resources a keyless (Sigstore) signature may list. `sigstore-verify` parses the
/// statement again into a generic JSON tree, about 1 KiB per resource, before any signature is
/// checked: this keeps that below the bound the others give.
pub const MAX_KEYLESS_RESOURCES: usize = 30_000;

/// The longest resource name, in bytes: a path of up to 4096 bytes (Linux `PATH_MAX`) plus a
/// shard's `:start:end`.
pub const MAX_RESOURCE_NAME_BYTES: usize = 4096 + 42;

/// The most ignore paths a signed manifest may record.
pub const MAX_IGNORE_PATHS: usize = 10_000;

/// The most digests a statement subject may carry (one per algorithm).
pub const MAX_SUBJECT_DIGESTS: usize = 16;

/// The most certificates a signature's chain may carry (leaf included); real ones carry 2 or 3.
pub const MAX_CHAIN_CERTIFICATES: usize = 10;

/// The most signature checks one chain search may make. Each candidate issuer tried (a trusted
/// CA or a certificate of the chain whose subject matches) costs one; without this bound, a
/// chain of certificates sharing a name and a key would make the search try every ordering.
pub const MAX_CHAIN_SIGNATURE_CHECKS: usize = 64;

/// The most transparency log entries a bundle may carry; Sigstore writes one.
pub const MAX_TLOG_ENTRIES: usize = 16;

/// The most RFC 3161 timestamps a bundle may carry.
pub const MAX_TIMESTAMPS: usize = 16;

/// The most signatures a DSSE envelope may carry (model signatures have exactly one).
pub const MAX_ENVELOPE_SIGNATURES: usize = 16;

/// The most hashes an inclusion proof may carry: a log of 2^64 entries needs 64.
pub const MAX_INCLUSION_PROOF_HASHES: usize = 64;

/// Which limit was exceeded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Limit {
    /// [`MAX_BUNDLE_BYTES`].
    BundleBytes,
    /// [`MAX_STATEMENT_BYTES`].
    StatementBytes,
    /// [`MAX_RESOURCES`].
    Resources,
    /// [`MAX_KEYLESS_RESOURCES`].
    KeylessResources,
    /// [`MAX_RESOURCE_NAME_BYTES`].
    ResourceNameBytes,
    /// [`MAX_CHAIN_CERTIFICATES`].
    ChainCertificates,
    /// [`MAX_CHAIN_SIGNATURE_CHECKS`].
    ChainSignatureChecks,
}

impl Limit {
    /// The limit's value.
    pub fn value(self) -> u64 {
        match self {
            Limit::BundleBytes => MAX_BUNDLE_BYTES,
            Limit::StatementBytes => MAX_STATEMENT_BYTES as u64,
            Limit::Resources => MAX_RESOURCES as u64,
            Limit::KeylessResources => MAX_KEYLESS_RESOURCES as u64,
            Limit::ResourceNameBytes => MAX_RESOURCE_NAME_BYTES as u64,
            Limit::ChainCertificates => MAX_CHAIN_CERTIFICATES as u64,
            Limit::ChainSignatureChecks => MAX_CHAIN_SIGNATURE_CHECKS as u64,
        }
    }

    /// The constant's name, for messages and docs.
    pub fn name(self) -> &'static str {
        match self {
            Limit::BundleBytes => "MAX_BUNDLE_BYTES",
            Limit::StatementBytes => "MAX_STATEMENT_BYTES",
            Limit::Resources => "MAX_RESOURCES",
            Limit::KeylessResources => "MAX_KEYLESS_RESOURCES",
            Limit::ResourceNameBytes => "MAX_RESOURCE_NAME_BYTES",
            Limit::ChainCertificates => "MAX_CHAIN_CERTIFICATES",
            Limit::ChainSignatureChecks => "MAX_CHAIN_SIGNATURE_CHECKS",
        }
    }

    /// What is counted, for messages.
    pub fn what(self) -> &'static str {
        match self {
            Limit::BundleBytes => "bytes in the signature file",
            Limit::StatementBytes => "bytes in the signed statement (the DSSE payload)",
            Limit::Resources => "files or shards in the signed manifest",
            Limit::KeylessResources => "files or shards in a keyless (Sigstore) signed manifest",
            Limit::ResourceNameBytes => "bytes in a resource name of the signed manifest",
            Limit::ChainCertificates => "certificates in the signature's chain",
            Limit::ChainSignatureChecks => "issuer signature checks while building the chain",
        }
    }

    /// What the signer (or whoever produced the input) can do about it.
    pub fn remedy(self) -> &'static str {
        match self {
            Limit::BundleBytes
            | Limit::StatementBytes
            | Limit::Resources
            | Limit::KeylessResources => {
                "genuine model signatures are far smaller: check that this is the model's signature, or sign a model this large as several smaller ones"
            }
            Limit::ResourceNameBytes => {
                "no file path is that long: the signature is not a genuine model signature"
            }
            Limit::ChainCertificates | Limit::ChainSignatureChecks => {
                "real chains have 2 or 3 certificates: sign with the leaf and only the intermediates that lead to the trusted CA"
            }
        }
    }
}

/// Input exceeded one of the verifier's limits; it is refused before it can cost more.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("refused: {found} {} exceed the verifier's limit of {} ({}); {}", .limit.what(), .limit.value(), .limit.name(), .limit.remedy())]
pub struct LimitExceeded {
    /// The limit.
    pub limit: Limit,
    /// What was found (or the first count past the limit, when counting stopped there).
    pub found: String,
}

impl LimitExceeded {
    /// `found` past `limit`.
    pub fn new(limit: Limit, found: impl std::fmt::Display) -> Self {
        LimitExceeded {
            limit,
            found: found.to_string(),
        }
    }
}
