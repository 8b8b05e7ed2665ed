//! The Sigstore-owned parts of a bundle (`sigstore_rekor.proto`, `sigstore_common.proto`,
//! `sigstore_bundle.proto`), parsed only to hold them to the protobuf JSON mapping: the
//! keyless verifier re-reads them with `sigstore-types`, which checks their meaning.

use serde::Serialize;

use super::message::{Bounded, Int64, proto_message};
use crate::limits::{MAX_INCLUSION_PROOF_HASHES, MAX_TIMESTAMPS};

proto_message! {
    /// One transparency log entry (`TransparencyLogEntry`).
    #[derive(Debug, Clone, Serialize)]
    pub struct TlogEntry {
        /// The entry's index in the log.
        #[serde(skip_serializing_if = "Option::is_none")]
        optional pub log_index: Option<Int64> = "logIndex" | "log_index",
        /// Which log.
        #[serde(skip_serializing_if = "Option::is_none")]
        optional pub log_id: Option<LogId> = "logId" | "log_id",
        /// The entry's type.
        #[serde(skip_serializing_if = "Option::is_none")]
        optional pub kind_version: Option<KindVersion> = "kindVersion" | "kind_version",
        /// When the log integrated it (seconds since the epoch).
        #[serde(skip_serializing_if = "Option::is_none")]
        optional pub integrated_time: Option<Int64> = "integratedTime" | "integrated_time",
        /// The log's signed entry timestamp.
        #[serde(skip_serializing_if = "Option::is_none")]
        optional pub inclusion_promise: Option<InclusionPromise> =
            "inclusionPromise" | "inclusion_promise",
        /// The Merkle inclusion proof.
        #[serde(skip_serializing_if = "Option::is_none")]
        optional pub inclusion_proof: Option<InclusionProof> =
            "inclusionProof" | "inclusion_proof",
        /// Base64 of the entry body.
        #[serde(skip_serializing_if = "Option::is_none")]
        optional pub canonicalized_body: Option<String> =
            "canonicalizedBody" | "canonicalized_body",
    }
}

proto_message! {
    /// `LogId`.
    #[derive(Debug, Clone, Serialize)]
    pub struct LogId {
        /// Base64 of the log key's id.
        required pub key_id: String = "keyId" | "key_id",
    }
}

proto_message! {
    /// `KindVersion`.
    #[derive(Debug, Clone, Serialize)]
    pub struct KindVersion {
        /// e.g. `dsse`.
        required pub kind: String = "kind",
        /// e.g. `0.0.1`.
        required pub version: String = "version",
    }
}

proto_message! {
    /// `InclusionPromise`.
    #[derive(Debug, Clone, Serialize)]
    pub struct InclusionPromise {
        /// Base64 of the SET.
        required pub signed_entry_timestamp: String =
            "signedEntryTimestamp" | "signed_entry_timestamp",
    }
}

proto_message! {
    /// `InclusionProof`.
    #[derive(Debug, Clone, Serialize)]
    pub struct InclusionProof {
        /// The entry's index in the tree.
        #[serde(skip_serializing_if = "Option::is_none")]
        optional pub log_index: Option<Int64> = "logIndex" | "log_index",
        /// Base64 of the tree's root hash.
        #[serde(skip_serializing_if = "Option::is_none")]
        optional pub root_hash: Option<String> = "rootHash" | "root_hash",
        /// The tree's size.
        #[serde(skip_serializing_if = "Option::is_none")]
        optional pub tree_size: Option<Int64> = "treeSize" | "tree_size",
        /// The audit path (base64 hashes); a tree of 2^64 leaves needs 64.
        optional pub hashes: Vec<String> = "hashes"
            as Bounded<String, MAX_INCLUSION_PROOF_HASHES>,
        /// The signed checkpoint.
        #[serde(skip_serializing_if = "Option::is_none")]
        optional pub checkpoint: Option<Checkpoint> = "checkpoint",
    }
}

proto_message! {
    /// `Checkpoint`.
    #[derive(Debug, Clone, Serialize)]
    pub struct Checkpoint {
        /// The signed note.
        required pub envelope: String = "envelope",
    }
}

proto_message! {
    /// `TimestampVerificationData`.
    #[derive(Debug, Clone, Serialize)]
    pub struct TimestampVerificationData {
        /// RFC 3161 timestamp tokens.
        optional pub rfc3161_timestamps: Vec<Rfc3161Timestamp> = "rfc3161Timestamps" | "rfc3161_timestamps"
            as Bounded<Rfc3161Timestamp, MAX_TIMESTAMPS>,
    }
}

proto_message! {
    /// `RFC3161SignedTimestamp`.
    #[derive(Debug, Clone, Serialize)]
    pub struct Rfc3161Timestamp {
        /// Base64 of the DER token.
        required pub signed_timestamp: String = "signedTimestamp" | "signed_timestamp",
    }
}

proto_message! {
    /// `MessageSignature`: a signature over a digest, the other content of a Sigstore bundle.
    #[derive(Debug, Clone, Serialize)]
    pub struct MessageSignature {
        /// The signed digest.
        #[serde(skip_serializing_if = "Option::is_none")]
        optional pub message_digest: Option<HashOutput> = "messageDigest" | "message_digest",
        /// Base64 of the signature.
        required pub signature: String = "signature",
    }
}

proto_message! {
    /// `HashOutput`.
    #[derive(Debug, Clone, Serialize)]
    pub struct HashOutput {
        /// e.g. `SHA2_256`.
        required pub algorithm: String = "algorithm",
        /// Base64 of the digest.
        required pub digest: String = "digest",
    }
}
