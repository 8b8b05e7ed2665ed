//! The in-toto statement a signature carries: parsing the signed bytes as they are (never
//! re-serialized), checking them, and writing new ones.

use std::collections::{BTreeMap, HashSet};

use serde::Serialize;

use crate::bundle::message::{Bounded, BoundedMap, proto_message};
use crate::limits::{
    Limit, LimitExceeded, MAX_IGNORE_PATHS, MAX_RESOURCE_NAME_BYTES, MAX_RESOURCES,
    MAX_STATEMENT_BYTES, MAX_SUBJECT_DIGESTS,
};

use crate::hashing::HashAlgorithm;
use crate::manifest::{Method, Resource, Serialization, root_digest, sort_resources};
use crate::name::{ModelPath, ResourceName};

/// in-toto Statement v1.
pub const STATEMENT_TYPE: &str = "https://in-toto.io/Statement/v1";
/// The OMS v1.0 predicate.
pub const PREDICATE_TYPE: &str = "https://model_signing/signature/v1.0";
/// The v0.2.0 predicate (one subject per file), still accepted for verification.
pub const PREDICATE_TYPE_COMPAT: &str = "https://model_signing/Digests/v0.1";

/// Why a statement is not acceptable.
#[derive(Debug, thiserror::Error)]
pub enum StatementError {
    /// Not JSON of the right shape.
    #[error("the signed statement is malformed: {0}")]
    Malformed(String),
    /// `_type` is not in-toto Statement v1.
    #[error("the signed statement has _type {0:?}, expected {STATEMENT_TYPE:?}")]
    WrongType(String),
    /// Unknown predicate.
    #[error(
        "the signed statement has predicateType {0:?}, expected {PREDICATE_TYPE:?}: this is not a model signature"
    )]
    WrongPredicate(String),
    /// Not exactly one subject.
    #[error("the signed statement has {0} subjects; a model signature has exactly one")]
    SubjectCount(usize),
    /// The subject's digest is not the root digest of the listed resources.
    #[error(
        "the signed manifest is inconsistent: its root digest is {claimed} but its resources hash to {actual}"
    )]
    RootDigest {
        /// What the subject says.
        claimed: String,
        /// What the resources give.
        actual: String,
    },
    /// No resources.
    #[error("the signed manifest lists no files; an empty model cannot be verified")]
    Empty,
    /// A resource name that would leave the model root, or is otherwise invalid.
    #[error("the signed manifest has an invalid resource name: {0}")]
    BadName(#[from] crate::name::NameError),
    /// The same resource twice.
    #[error("the signed manifest lists {0:?} twice")]
    Duplicate(String),
    /// The statement exceeds one of the verifier's limits.
    #[error(transparent)]
    Limit(#[from] LimitExceeded),
}

fn malformed(msg: impl Into<String>) -> StatementError {
    StatementError::Malformed(msg.into())
}

/// What a verified signature says about the model.
#[derive(Debug, Clone)]
pub struct SignedManifest {
    /// The subject name (informational only; never compared).
    pub model_name: String,
    /// How the model was serialized.
    pub serialization: Serialization,
    /// The signed resources, in the listed order.
    pub resources: Vec<Resource>,
    /// True for the v0.2.0 `Digests/v0.1` layout.
    pub legacy_v01: bool,
}

// The statement follows the in-toto rule ("consumers MUST ignore unrecognized fields", which
// model-signing 1.1.1 also applies to its predicate), except `serialization`: it says how to
// rebuild the manifest, and a field there that this verifier does not know is a hashing rule it
// cannot apply, so it is refused (as the OMS predicate schema's `additionalProperties: false`).
// Ignored values are skipped by serde_json without recursion, and every list is bounded.

proto_message! {
    unknown_fields: ignore;
    #[derive(Serialize)]
    struct RawStatement {
        required type_: String = "_type",
        optional subject: Vec<RawSubject> = "subject" as Bounded<RawSubject, MAX_RESOURCES>,
        required predicate_type: String = "predicateType",
        optional predicate: Option<RawPredicate> = "predicate",
    }
}

proto_message! {
    unknown_fields: ignore;
    #[derive(Serialize)]
    struct RawSubject {
        optional name: String = "name",
        optional digest: BTreeMap<String, String> = "digest"
            as BoundedMap<MAX_SUBJECT_DIGESTS>,
    }
}

proto_message! {
    unknown_fields: ignore;
    #[derive(Serialize)]
    struct RawPredicate {
        optional serialization: Option<RawSerialization> = "serialization",
        optional resources: Vec<RawResource> = "resources"
            as Bounded<RawResource, MAX_RESOURCES>,
    }
}

proto_message! {
    #[derive(Serialize)]
    struct RawSerialization {
        required method: String = "method",
        required hash_type: String = "hash_type",
        optional allow_symlinks: bool = "allow_symlinks",
        optional ignore_paths: Vec<String> = "ignore_paths"
            as Bounded<String, MAX_IGNORE_PATHS>,
        optional shard_size: Option<serde_json::Number> = "shard_size",
    }
}

proto_message! {
    unknown_fields: ignore;
    #[derive(Serialize)]
    struct RawResource {
        required name: String = "name",
        required algorithm: String = "algorithm",
        required digest: String = "digest",
    }
}

fn parse_digest(
    hex_digest: &str,
    alg: HashAlgorithm,
    what: &str,
) -> Result<Vec<u8>, StatementError> {
    let bytes =
        hex::decode(hex_digest).map_err(|_| malformed(format!("digest of {what:?} is not hex")))?;
    if bytes.len() != alg.digest_len() {
        return Err(malformed(format!(
            "digest of {what:?} has {} bytes, {alg} digests have {}",
            bytes.len(),
            alg.digest_len()
        )));
    }
    Ok(bytes)
}

/// `shard_size` as the peer writes it: an integer, or an integral float (`1000000000.0`).
fn parse_shard_size(n: &serde_json::Number) -> Result<u64, StatementError> {
    let bad = || {
        malformed(format!(
            "shard_size {n} is not a positive whole number of bytes"
        ))
    };
    let v = match n.as_u64() {
        Some(v) => v,
        None => {
            let f = n.as_f64().ok_or_else(bad)?;
            if !(f.is_finite() && f >= 1.0 && f.fract() == 0.0 && f <= 9.007_199_254_740_992e15) {
                return Err(bad());
            }
            f as u64
        }
    };
    if v == 0 { Err(bad()) } else { Ok(v) }
}

/// Parses and checks the signed statement bytes.
pub fn parse(payload: &[u8]) -> Result<SignedManifest, StatementError> {
    if payload.len() > MAX_STATEMENT_BYTES {
        return Err(LimitExceeded::new(Limit::StatementBytes, payload.len()).into());
    }
    let raw: RawStatement = serde_json::from_slice(payload).map_err(|e| {
        if e.to_string()
            .contains(&format!("more than {MAX_RESOURCES} entries"))
        {
            StatementError::Limit(LimitExceeded::new(
                Limit::Resources,
                format!("more than {MAX_RESOURCES}"),
            ))
        } else {
            malformed(e.to_string())
        }
    })?;
    if raw.type_ != STATEMENT_TYPE {
        return Err(StatementError::WrongType(raw.type_));
    }
    match raw.predicate_type.as_str() {
        PREDICATE_TYPE => parse_v1(raw),
        PREDICATE_TYPE_COMPAT => parse_v01(raw),
        _ => Err(StatementError::WrongPredicate(raw.predicate_type)),
    }
}

fn check_name_length(name: &str) -> Result<(), StatementError> {
    if name.len() > MAX_RESOURCE_NAME_BYTES {
        return Err(LimitExceeded::new(
            Limit::ResourceNameBytes,
            format!(
                "{} (in a name starting {:?})",
                name.len(),
                name.chars().take(40).collect::<String>()
            ),
        )
        .into());
    }
    Ok(())
}

fn check_unique(resources: &[Resource]) -> Result<(), StatementError> {
    let mut seen = HashSet::new();
    for r in resources {
        if !seen.insert(&r.name) {
            return Err(StatementError::Duplicate(r.name.to_string()));
        }
    }
    // A file cannot also be a directory of another resource ("a" and "a/b"), and a single-file
    // model (".") has only itself.
    let mut paths: Vec<&ModelPath> = resources.iter().map(|r| &r.name.path).collect();
    paths.sort();
    paths.dedup();
    for pair in paths.windows(2) {
        if pair[1].starts_with(pair[0]) {
            return Err(malformed(format!(
                "{:?} is listed as a file and as a directory of {:?}",
                pair[0].to_string(),
                pair[1].to_string()
            )));
        }
    }
    Ok(())
}

fn parse_v1(raw: RawStatement) -> Result<SignedManifest, StatementError> {
    let subject = match raw.subject.as_slice() {
        [one] => one,
        other => return Err(StatementError::SubjectCount(other.len())),
    };
    let predicate = raw
        .predicate
        .ok_or_else(|| malformed("the statement has no predicate"))?;
    let s = predicate
        .serialization
        .ok_or_else(|| malformed("predicate: missing field `serialization`"))?;
    let raw_resources = predicate.resources;
    let hash: HashAlgorithm = s
        .hash_type
        .parse()
        .map_err(|e: crate::hashing::UnknownHashAlgorithm| malformed(e.to_string()))?;
    let method = match s.method.as_str() {
        "files" => Method::Files,
        "shards" => {
            let size = s
                .shard_size
                .as_ref()
                .ok_or_else(|| malformed("shards serialization without shard_size"))?;
            Method::Shards {
                shard_size: parse_shard_size(size)?,
            }
        }
        other => return Err(malformed(format!("unknown serialization method {other:?}"))),
    };
    for p in &s.ignore_paths {
        ModelPath::parse(p).map_err(|e| malformed(format!("ignore path: {e}")))?;
    }
    let serialization = Serialization {
        method,
        hash,
        allow_symlinks: s.allow_symlinks,
        ignore_paths: s.ignore_paths,
    };
    let expected_alg = serialization.resource_algorithm();
    let mut resources = Vec::with_capacity(raw_resources.len());
    for r in raw_resources {
        check_name_length(&r.name)?;
        if r.algorithm != expected_alg {
            return Err(malformed(format!(
                "resource {:?} uses algorithm {:?}, the serialization says {expected_alg:?}",
                r.name, r.algorithm
            )));
        }
        let name = match method {
            Method::Files => ResourceName::parse_file(&r.name)?,
            Method::Shards { .. } => ResourceName::parse_shard(&r.name)?,
        };
        let digest = parse_digest(&r.digest, hash, &r.name)?;
        resources.push(Resource { name, digest });
    }
    if resources.is_empty() {
        return Err(StatementError::Empty);
    }
    check_unique(&resources)?;
    let claimed = subject
        .digest
        .get("sha256")
        .ok_or_else(|| malformed("the subject has no sha256 digest"))?;
    let actual = hex::encode(root_digest(&resources));
    if !claimed.eq_ignore_ascii_case(&actual) {
        return Err(StatementError::RootDigest {
            claimed: claimed.clone(),
            actual,
        });
    }
    Ok(SignedManifest {
        model_name: subject.name.clone(),
        serialization,
        resources,
        legacy_v01: false,
    })
}

fn parse_v01(raw: RawStatement) -> Result<SignedManifest, StatementError> {
    let mut resources = Vec::with_capacity(raw.subject.len());
    for s in &raw.subject {
        check_name_length(&s.name)?;
        let hex_digest = s
            .digest
            .get("sha256")
            .ok_or_else(|| malformed(format!("subject {:?} has no sha256 digest", s.name)))?;
        resources.push(Resource {
            name: ResourceName::parse_file(&s.name)?,
            digest: parse_digest(hex_digest, HashAlgorithm::Sha256, &s.name)?,
        });
    }
    if resources.is_empty() {
        return Err(StatementError::Empty);
    }
    check_unique(&resources)?;
    sort_resources(&mut resources);
    Ok(SignedManifest {
        model_name: "compat-undefined-not-present".into(),
        serialization: Serialization {
            method: Method::Files,
            hash: HashAlgorithm::Sha256,
            allow_symlinks: false,
            ignore_paths: Vec::new(),
        },
        resources,
        legacy_v01: true,
    })
}

#[derive(Serialize)]
struct OutStatement<'a> {
    #[serde(rename = "_type")]
    type_: &'a str,
    subject: [OutSubject<'a>; 1],
    #[serde(rename = "predicateType")]
    predicate_type: &'a str,
    predicate: OutPredicate<'a>,
}

#[derive(Serialize)]
struct OutSubject<'a> {
    name: &'a str,
    digest: OutDigest,
}

#[derive(Serialize)]
struct OutDigest {
    sha256: String,
}

#[derive(Serialize)]
struct OutPredicate<'a> {
    serialization: OutSerialization<'a>,
    resources: Vec<OutResource>,
}

#[derive(Serialize)]
struct OutSerialization<'a> {
    method: &'a str,
    hash_type: &'a str,
    allow_symlinks: bool,
    #[serde(skip_serializing_if = "<[String]>::is_empty")]
    ignore_paths: &'a [String],
    #[serde(skip_serializing_if = "Option::is_none")]
    shard_size: Option<u64>,
}

#[derive(Serialize)]
struct OutResource {
    name: String,
    algorithm: String,
    digest: String,
}

/// Writes the statement for a manifest (resources must already be sorted).
// serde_json fails only on a map with non-string keys or a failing `Serialize` impl; the
// statement is derived structs of strings, numbers and vectors, so its `expect` cannot fire.
#[allow(clippy::expect_used)]
pub fn build(model_name: &str, serialization: &Serialization, resources: &[Resource]) -> Vec<u8> {
    let algorithm = serialization.resource_algorithm();
    let statement = OutStatement {
        type_: STATEMENT_TYPE,
        subject: [OutSubject {
            name: model_name,
            digest: OutDigest {
                sha256: hex::encode(root_digest(resources)),
            },
        }],
        predicate_type: PREDICATE_TYPE,
        predicate: OutPredicate {
            serialization: OutSerialization {
                method: serialization.method.name(),
                hash_type: serialization.hash.name(),
                allow_symlinks: serialization.allow_symlinks,
                ignore_paths: &serialization.ignore_paths,
                shard_size: match serialization.method {
                    Method::Files => None,
                    Method::Shards { shard_size } => Some(shard_size),
                },
            },
            resources: resources
                .iter()
                .map(|r| OutResource {
                    name: r.name.to_string(),
                    algorithm: algorithm.clone(),
                    digest: hex::encode(&r.digest),
                })
                .collect(),
        },
    };
    serde_json::to_vec_pretty(&statement).expect("statement serialization cannot fail")
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::Value;

    fn statement(predicate_type: &str, subjects: Value, predicate: Value) -> Vec<u8> {
        serde_json::to_vec(&serde_json::json!({"_type": STATEMENT_TYPE, "subject": subjects, "predicateType": predicate_type, "predicate": predicate})).unwrap()
    }

    fn predicate(resources: Value) -> Value {
        serde_json::json!({"serialization": {"method": "files", "hash_type": "sha256", "allow_symlinks": false}, "resources": resources})
    }

    const D: &str = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

    fn one_file(name: &str) -> Vec<u8> {
        let res = vec![Resource {
            name: ResourceName::parse_file("a").unwrap(),
            digest: hex::decode(D).unwrap(),
        }];
        let root = hex::encode(root_digest(&res));
        statement(
            PREDICATE_TYPE,
            serde_json::json!([{"name": "m", "digest": {"sha256": root}}]),
            predicate(serde_json::json!([{"name": name, "algorithm": "sha256", "digest": D}])),
        )
    }

    #[test]
    fn round_trip() {
        let s = Serialization {
            method: Method::Shards { shard_size: 4096 },
            hash: HashAlgorithm::Blake2b,
            allow_symlinks: true,
            ignore_paths: vec!["x".into()],
        };
        let res = vec![Resource {
            name: ResourceName::parse_shard("a:0:3").unwrap(),
            digest: vec![1; 64],
        }];
        let parsed = parse(&build("model", &s, &res)).unwrap();
        assert_eq!(parsed.serialization, s);
        assert_eq!(parsed.resources, res);
    }

    #[test]
    fn traversal_names_are_refused() {
        assert!(parse(&one_file("a")).is_ok());
        for bad in ["../etc/passwd", "/etc/passwd", "a/../../b"] {
            let err = parse(&one_file(bad)).unwrap_err();
            assert!(
                matches!(
                    err,
                    StatementError::BadName(_) | StatementError::RootDigest { .. }
                ),
                "{bad}: {err}"
            );
            assert!(
                err.to_string().contains("invalid resource name"),
                "{bad}: {err}"
            );
        }
    }

    #[test]
    fn structural_errors() {
        let two = statement(
            PREDICATE_TYPE,
            serde_json::json!([{"name": "a", "digest": {"sha256": D}}, {"name": "b", "digest": {"sha256": D}}]),
            predicate(serde_json::json!([])),
        );
        assert!(matches!(parse(&two), Err(StatementError::SubjectCount(2))));
        let wrong = statement(
            "https://example.com/wrong",
            serde_json::json!([]),
            Value::Null,
        );
        assert!(matches!(
            parse(&wrong),
            Err(StatementError::WrongPredicate(_))
        ));
        let empty = statement(
            PREDICATE_TYPE,
            serde_json::json!([{"name": "a", "digest": {"sha256": D}}]),
            predicate(serde_json::json!([])),
        );
        assert!(matches!(parse(&empty), Err(StatementError::Empty)));
        let bad_root = statement(
            PREDICATE_TYPE,
            serde_json::json!([{"name": "a", "digest": {"sha256": D}}]),
            predicate(serde_json::json!([{"name": "a", "algorithm": "sha256", "digest": D}])),
        );
        assert!(matches!(
            parse(&bad_root),
            Err(StatementError::RootDigest { .. })
        ));
        assert!(matches!(parse(b"{"), Err(StatementError::Malformed(_))));
    }

    #[test]
    fn float_shard_sizes_are_read() {
        assert_eq!(
            parse_shard_size(&serde_json::from_str("1000000000.0").unwrap()).unwrap(),
            1_000_000_000
        );
        for bad in ["0", "-1", "4096.5", "1e300"] {
            assert!(
                parse_shard_size(&serde_json::from_str(bad).unwrap()).is_err(),
                "{bad}"
            );
        }
    }
}
