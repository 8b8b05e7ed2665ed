//! One model checked against several authorities, with a rule on how many must vouch for it:
//! any one (key rotation: the old key or the new one), all (co-signing: a model owner and a
//! release team), or at least N.
//!
//! An authority is a verifier (a key, CA certificates or a keyless identity) and the signature
//! file it reads. It vouches for the model when its signature's envelope and signer verify and
//! the files on disk match the manifest that signature carries. Envelopes are checked first (no
//! model I/O); the model is then hashed once per distinct way the passing signatures were made
//! (once when they were made alike), so N authorities cost one pass over the weights, not N.

pub mod document;

use std::collections::BTreeSet;
use std::fmt;
use std::path::Path;

use crate::error::Error;
use crate::manifest::Serialization;
use crate::name::ModelPath;
pub use document::{AuthoritiesDocument, AuthoritySpec, BuiltAuthority, DocumentError};

use crate::verify::{
    EnvelopeVerifier, LocalFiles, VerifyOptions, VerifyReport, check_files, local_files,
    open_signature,
};

/// How many authorities must vouch for the model.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Required {
    /// Any one of them (the default: key rotation, several trusted signers).
    Any,
    /// Every one of them (co-signing).
    All,
    /// At least this many (at least 1).
    AtLeast(usize),
}

impl Required {
    /// How many of `total` authorities must vouch.
    pub fn of(self, total: usize) -> usize {
        match self {
            Required::Any => 1,
            Required::All => total,
            Required::AtLeast(n) => n,
        }
    }

    /// How many of `total` authorities must vouch, when that is from 1 to `total`; `None` for
    /// a rule that no list of that length can meet (including an empty list).
    pub fn need(self, total: usize) -> Option<usize> {
        let need = self.of(total);
        (1..=total).contains(&need).then_some(need)
    }
}

impl fmt::Display for Required {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Required::Any => f.write_str("any"),
            Required::All => f.write_str("all"),
            Required::AtLeast(n) => write!(f, "{n}"),
        }
    }
}

/// One authority: how messages name it, its verifier, and the signature it reads.
pub struct Authority<'a> {
    /// E.g. `authorities[1] (public key from environment variable KEY_2)`.
    pub name: String,
    /// Checks the signature's envelope and signer.
    pub verifier: &'a dyn EnvelopeVerifier,
    /// The signature file's bytes, as read; or why it could not be read, which refuses this
    /// authority only (a co-signer's signature may not exist yet).
    pub signature: Result<&'a [u8], Error>,
}

/// An authority that vouched for the model.
#[derive(Debug)]
pub struct Vouched {
    /// Its name.
    pub name: String,
    /// The verification it made.
    pub report: VerifyReport,
}

/// An authority that did not vouch, and why.
#[derive(Debug)]
pub struct Refused {
    /// Its name.
    pub name: String,
    /// Why (a wrong key, an untrusted chain, a file that differs, ...).
    pub error: Error,
}

/// The outcome when enough authorities vouched.
#[derive(Debug)]
pub struct AuthoritiesReport {
    /// Those that vouched, in the order given.
    pub vouched: Vec<Vouched>,
    /// Those that did not (allowed by the rule), in the order given.
    pub refused: Vec<Refused>,
    /// How many had to vouch.
    pub required: usize,
}

/// Why the model is not verified.
#[derive(Debug, thiserror::Error)]
pub enum AuthoritiesError {
    /// No authority was given: nothing can vouch, and nothing is trusted by default.
    #[error("no authority is given: name at least one key, CA or keyless identity")]
    None,
    /// The rule asks for more (or fewer than one) than there are.
    #[error(
        "the rule asks for {required} authorities to vouch, but {total} are given: ask for 1 to {total}"
    )]
    Unsatisfiable {
        /// What the rule asks for.
        required: usize,
        /// How many authorities there are.
        total: usize,
    },
    /// The model could not be read (the same for every authority, so it is reported once).
    #[error("{0}")]
    Model(Error),
    /// Too few vouched.
    #[error("{}", too_few(*.required, .vouched, .refused))]
    TooFew {
        /// How many had to vouch.
        required: usize,
        /// The names of those that did.
        vouched: Vec<String>,
        /// Those that did not, and why.
        refused: Vec<Refused>,
    },
}

fn too_few(required: usize, vouched: &[String], refused: &[Refused]) -> String {
    let total = vouched.len() + refused.len();
    let mut out = format!(
        "{required} of {total} authorities must vouch for the model, {} did",
        vouched.len()
    );
    if !vouched.is_empty() {
        out.push_str(&format!(" ({})", vouched.join(", ")));
    }
    for r in refused {
        out.push_str(&format!("; {}: {}", r.name, r.error));
    }
    out
}

/// What decides how the model is hashed for a manifest: its serialization and (when only
/// signed files are read) the files it names. Two signatures with the same key share a hash.
#[derive(PartialEq)]
struct HashKey {
    serialization: Serialization,
    names: BTreeSet<ModelPath>,
}

/// Verifies the model at `model` with each authority, and succeeds when at least `required`
/// of them vouch for it.
pub fn verify_with_authorities(
    model: &Path,
    authorities: Vec<Authority<'_>>,
    required: Required,
    opts: &VerifyOptions<'_>,
) -> Result<AuthoritiesReport, AuthoritiesError> {
    let total = authorities.len();
    if total == 0 {
        return Err(AuthoritiesError::None);
    }
    let Some(need) = required.need(total) else {
        return Err(AuthoritiesError::Unsatisfiable {
            required: required.of(total),
            total,
        });
    };
    let mut hashed: Vec<(HashKey, LocalFiles)> = Vec::new();
    let mut vouched = Vec::new();
    let mut refused = Vec::new();
    for authority in authorities {
        let name = authority.name;
        let opened = match authority
            .signature
            .and_then(|bytes| open_signature(bytes, authority.verifier))
        {
            Ok(o) => o,
            Err(error) => {
                refused.push(Refused { name, error });
                continue;
            }
        };
        let key = HashKey {
            serialization: opened.manifest.serialization.clone(),
            names: opened
                .manifest
                .resources
                .iter()
                .map(|r| r.name.path.clone())
                .collect(),
        };
        let at = match hashed.iter().position(|(k, _)| *k == key) {
            Some(i) => i,
            None => {
                let local =
                    local_files(model, &opened.manifest, opts).map_err(AuthoritiesError::Model)?;
                hashed.push((key, local));
                hashed.len() - 1
            }
        };
        match check_files(opened, &hashed[at].1) {
            Ok(report) => vouched.push(Vouched { name, report }),
            Err(error) => refused.push(Refused { name, error }),
        }
    }
    if vouched.len() < need {
        return Err(AuthoritiesError::TooFew {
            required: need,
            vouched: vouched.into_iter().map(|v| v.name).collect(),
            refused,
        });
    }
    Ok(AuthoritiesReport {
        vouched,
        refused,
        required: need,
    })
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use super::*;
    use crate::bundle::Bundle;
    use crate::hashing::HashAlgorithm;
    use crate::keys::PrivateKey;
    use crate::manifest::Method;
    use crate::serialize::HashOptions;
    use crate::sign::{KeySigner, sign_model};
    use crate::verify::{KeyVerifier, VerifiedSigner};
    use crate::walk::Selection;

    use crate::keys::fresh_p256_private_pem as fresh_key;

    fn private(pem: &str) -> PrivateKey {
        PrivateKey::from_pem("k", pem.as_bytes(), None).unwrap()
    }

    /// A model of two files in a temp dir.
    fn model() -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("weights.bin"), vec![7u8; 4096]).unwrap();
        std::fs::write(dir.path().join("config.json"), "{}").unwrap();
        dir
    }

    /// The model signed by `key`, with `method`, as bundle bytes.
    fn signed(model: &Path, key: &str, method: Method) -> Vec<u8> {
        let signer = KeySigner::new(private(key));
        let (bundle, _) = sign_model(
            model,
            &Selection::default(),
            method,
            HashAlgorithm::Sha256,
            &signer,
            &HashOptions::default(),
        )
        .unwrap();
        bundle.to_json().into_bytes()
    }

    /// A key verifier that counts its calls.
    struct Counting(KeyVerifier, AtomicUsize);

    impl EnvelopeVerifier for Counting {
        fn verify_envelope(
            &self,
            bundle: &Bundle,
            raw: &[u8],
            payload: &[u8],
        ) -> crate::error::Result<(VerifiedSigner, Vec<String>)> {
            self.1.fetch_add(1, Ordering::Relaxed);
            self.0.verify_envelope(bundle, raw, payload)
        }
    }

    fn verifier(key: &str, name: &str) -> Counting {
        Counting(
            KeyVerifier::new(private(key).public_key().clone(), name),
            AtomicUsize::new(0),
        )
    }

    fn authority<'a>(name: &str, verifier: &'a Counting, signature: &'a [u8]) -> Authority<'a> {
        Authority {
            name: name.into(),
            verifier,
            signature: Ok(signature),
        }
    }

    fn check(
        model: &Path,
        authorities: &[Authority<'_>],
        required: Required,
    ) -> Result<AuthoritiesReport, AuthoritiesError> {
        let owned = authorities.iter().map(copy).collect();
        verify_with_authorities(model, owned, required, &VerifyOptions::default())
    }

    /// The tests reuse their lists; the signatures in them always read.
    fn copy<'a>(a: &Authority<'a>) -> Authority<'a> {
        Authority {
            name: a.name.clone(),
            verifier: a.verifier,
            signature: Ok(*a.signature.as_ref().unwrap()),
        }
    }

    #[test]
    fn key_rotation_any_of_two_keys_vouches_with_the_new_one_and_says_why_the_old_did_not() {
        let m = model();
        let (old, new) = (fresh_key(), fresh_key());
        let sig = signed(m.path(), &new, Method::Files);
        let (vo, vn) = (verifier(&old, "old.pem"), verifier(&new, "new.pem"));
        let list = [authority("old", &vo, &sig), authority("new", &vn, &sig)];
        let report = check(m.path(), &list, Required::Any).unwrap();
        assert_eq!(report.vouched.len(), 1);
        assert_eq!(report.vouched[0].name, "new");
        assert_eq!(report.refused[0].name, "old");
        assert!(matches!(report.refused[0].error, Error::KeyMismatch(_)));
        // Twin: the same signature with the old key alone is refused, naming the authority.
        let err = check(m.path(), &list[..1], Required::Any).unwrap_err();
        let msg = err.to_string();
        assert!(
            msg.starts_with("1 of 1 authorities must vouch for the model, 0 did; old: "),
            "{msg}"
        );
    }

    #[test]
    fn co_signing_all_needs_every_signature_and_names_the_missing_one() {
        let m = model();
        let (owner, release) = (fresh_key(), fresh_key());
        let by_owner = signed(m.path(), &owner, Method::Files);
        let by_release = signed(m.path(), &release, Method::Files);
        let (vo, vr) = (
            verifier(&owner, "owner.pem"),
            verifier(&release, "release.pem"),
        );
        let both = [
            authority("owner", &vo, &by_owner),
            authority("release", &vr, &by_release),
        ];
        let report = check(m.path(), &both, Required::All).unwrap();
        assert_eq!(report.vouched.len(), 2);
        assert_eq!(report.required, 2);
        // Twin: the release team's signature replaced by the owner's is one short.
        let forged = [
            authority("owner", &vo, &by_owner),
            authority("release", &vr, &by_owner),
        ];
        let msg = check(m.path(), &forged, Required::All)
            .unwrap_err()
            .to_string();
        assert!(
            msg.starts_with(
                "2 of 2 authorities must vouch for the model, 1 did (owner); release: "
            ),
            "{msg}"
        );
        // At least 1 of the same two passes.
        assert!(check(m.path(), &forged, Required::AtLeast(1)).is_ok());
    }

    #[test]
    fn an_unreadable_signature_refuses_only_its_authority() {
        let m = model();
        let (a, b) = (fresh_key(), fresh_key());
        let sa = signed(m.path(), &a, Method::Files);
        let (va, vb) = (verifier(&a, "a.pem"), verifier(&b, "b.pem"));
        let missing = || Authority {
            name: "b".into(),
            verifier: &vb,
            signature: Err(Error::Usage("cannot read /m/b.sig".into())),
        };
        let list = vec![authority("a", &va, &sa), missing()];
        let report =
            verify_with_authorities(m.path(), list, Required::Any, &VerifyOptions::default())
                .unwrap();
        assert_eq!(report.refused[0].name, "b");
        let list = vec![authority("a", &va, &sa), missing()];
        let msg = verify_with_authorities(m.path(), list, Required::All, &VerifyOptions::default())
            .unwrap_err()
            .to_string();
        assert!(msg.ends_with("1 did (a); b: cannot read /m/b.sig"), "{msg}");
    }

    #[test]
    fn a_changed_file_is_refused_by_every_authority_even_with_valid_signatures() {
        let m = model();
        let (a, b) = (fresh_key(), fresh_key());
        let (sa, sb) = (
            signed(m.path(), &a, Method::Files),
            signed(m.path(), &b, Method::Files),
        );
        std::fs::write(m.path().join("config.json"), "{\"layers\": 3}").unwrap();
        let (va, vb) = (verifier(&a, "a.pem"), verifier(&b, "b.pem"));
        let list = [authority("a", &va, &sa), authority("b", &vb, &sb)];
        let err = check(m.path(), &list, Required::Any).unwrap_err();
        let AuthoritiesError::TooFew { refused, .. } = &err else {
            panic!("{err}");
        };
        assert!(
            refused
                .iter()
                .all(|r| matches!(r.error, Error::Mismatch(_)))
        );
        assert!(err.to_string().contains("config.json"), "{err}");
    }

    #[test]
    fn the_model_is_hashed_once_per_distinct_serialization_and_never_for_a_refused_envelope() {
        let m = model();
        let (a, b, stranger) = (fresh_key(), fresh_key(), fresh_key());
        let (sa, sb) = (
            signed(m.path(), &a, Method::Files),
            signed(m.path(), &b, Method::Files),
        );
        let sharded = signed(m.path(), &b, Method::Shards { shard_size: 1024 });
        let (va, vb, vs) = (
            verifier(&a, "a.pem"),
            verifier(&b, "b.pem"),
            verifier(&stranger, "s.pem"),
        );
        let hashed = |list: &[Authority<'_>]| {
            let bytes = AtomicUsize::new(0);
            let progress = |n: u64| {
                bytes.fetch_add(n as usize, Ordering::Relaxed);
            };
            let opts = VerifyOptions {
                hashing: HashOptions {
                    progress: Some(&progress),
                    ..Default::default()
                },
                ..Default::default()
            };
            let owned = list.iter().map(copy).collect();
            verify_with_authorities(m.path(), owned, Required::Any, &opts).unwrap();
            bytes.load(Ordering::Relaxed)
        };
        let model_bytes = 4096 + 2;
        let same = [authority("a", &va, &sa), authority("b", &vb, &sb)];
        assert_eq!(
            hashed(&same),
            model_bytes,
            "two signatures made alike: one pass"
        );
        let mixed = [authority("a", &va, &sa), authority("b", &vb, &sharded)];
        assert_eq!(
            hashed(&mixed),
            2 * model_bytes,
            "files and shards: two passes"
        );
        let with_stranger = [authority("s", &vs, &sa), authority("a", &va, &sa)];
        assert_eq!(hashed(&with_stranger), model_bytes);
        assert_eq!(
            vs.1.load(Ordering::Relaxed),
            1,
            "the stranger's envelope was checked"
        );
    }

    #[test]
    fn rules_that_cannot_be_met_and_empty_lists_are_refused_before_any_work() {
        let m = model();
        let k = fresh_key();
        let sig = signed(m.path(), &k, Method::Files);
        let v = verifier(&k, "k.pem");
        let one = [authority("k", &v, &sig)];
        for (list, rule, wanted) in [
            (&one[..0], Required::Any, "no authority is given"),
            (
                &one[..],
                Required::AtLeast(2),
                "asks for 2 authorities to vouch, but 1 are given",
            ),
            (&one[..], Required::AtLeast(0), "asks for 0 authorities"),
        ] {
            let msg = check(m.path(), list, rule).unwrap_err().to_string();
            assert!(msg.contains(wanted), "{msg}");
        }
        assert_eq!(v.1.load(Ordering::Relaxed), 0);
        assert!(check(m.path(), &one, Required::All).is_ok());
    }
}
