//! Property tests of the parsers the fuzz targets (fuzz/) cover, beside parser_props.rs
//! (which has never-panics on bundle and statement bytes and the name round trips): round trips
//! through the writers (bundle JSON, statement, PEM), no panic on DSSE envelopes, PEM and DER,
//! and refusal of what the formats forbid (a statement whose digests do not add up or whose
//! names leave the model root, a certificate whose signed part was changed). Unknown bundle
//! fields are covered by strict_bundle.rs.

mod support;

use std::sync::LazyLock;

use model_signing::bundle::{Bundle, Envelope};
use model_signing::dsse::{pae, pae_compat};
use model_signing::hashing::HashAlgorithm;
use model_signing::keys::{PublicKey, pem_blocks, to_pem};
use model_signing::manifest::{Method, Resource, Serialization, sort_resources};
use model_signing::name::ResourceName;
use model_signing::statement::{self, StatementError};
use model_signing::x509::{Certificate, verify_chain};
use proptest::prelude::*;

fn read(rel: &str) -> Vec<u8> {
    std::fs::read(support::fixture(rel)).unwrap()
}

/// Real bundles of each method: key, certificate chain, Sigstore.
static BUNDLES: LazyLock<Vec<Vec<u8>>> = LazyLock::new(|| {
    [
        "peer-samples/key-p256.model.sig",
        "peer-samples/cert-p256.model.sig",
        "model-signing-spec/test-vectors/v1.0/valid/sigstore.bundle.json",
    ]
    .iter()
    .map(|p| read(p))
    .collect()
});

/// The peer's leaf, intermediate and root (leaf-ku-eku verifies under them at fixture time).
static PKI: LazyLock<[Certificate; 3]> = LazyLock::new(|| {
    let one = |rel: &str| {
        Certificate::all_from_pem(rel, &read(rel))
            .unwrap()
            .remove(0)
    };
    [
        one("peer-samples/pki/leaf-ku-eku.cert.pem"),
        one("peer-samples/pki/int-ca.cert.pem"),
        one("peer-samples/pki/root-ca.cert.pem"),
    ]
});

fn hash() -> impl Strategy<Value = HashAlgorithm> {
    prop::sample::select(vec![
        HashAlgorithm::Sha256,
        HashAlgorithm::Blake2b,
        HashAlgorithm::Blake3,
    ])
}

/// A serialization and its sorted, unique resources, as a signer would produce them.
fn manifest() -> impl Strategy<Value = (Serialization, Vec<Resource>)> {
    let method = prop_oneof![
        Just(Method::Files),
        (1u64..=u64::MAX).prop_map(|shard_size| Method::Shards { shard_size }),
    ];
    let names = prop::collection::btree_set("[a-zA-Z0-9_.-]{1,6}(/[a-zA-Z0-9_-]{1,6}){0,2}", 1..6);
    (
        method,
        hash(),
        any::<bool>(),
        prop::collection::vec("[a-z]{1,5}(/[a-z]{1,5})?", 0..3),
        names,
        any::<u8>(),
    )
        .prop_filter_map(
            "names must be paths, none a directory of another",
            |(method, hash, allow_symlinks, ignore_paths, names, fill)| {
                let names: Vec<&String> = names.iter().collect();
                let clash = names.iter().any(|a| {
                    a.split('/').any(|c| c == "." || c == "..")
                        || names.iter().any(|b| b.starts_with(&format!("{a}/")))
                });
                if clash {
                    return None;
                }
                let mut resources: Vec<Resource> = names
                    .iter()
                    .enumerate()
                    .map(|(i, n)| Resource {
                        name: match method {
                            Method::Files => ResourceName::parse_file(n).unwrap(),
                            Method::Shards { .. } => {
                                ResourceName::parse_shard(&format!("{n}:0:{}", i + 1)).unwrap()
                            }
                        },
                        digest: vec![fill.wrapping_add(i as u8); hash.digest_len()],
                    })
                    .collect();
                sort_resources(&mut resources);
                let s = Serialization {
                    method,
                    hash,
                    allow_symlinks,
                    ignore_paths,
                };
                Some((s, resources))
            },
        )
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 500, ..ProptestConfig::default() })]

    /// What `statement::build` writes, `statement::parse` reads back to the same manifest.
    #[test]
    fn statements_round_trip((s, resources) in manifest(), name in "\\PC{0,20}") {
        let parsed = statement::parse(&statement::build(&name, &s, &resources)).unwrap();
        prop_assert_eq!(&parsed.serialization, &s);
        prop_assert_eq!(&parsed.resources, &resources);
        prop_assert_eq!(&parsed.model_name, &name);
        prop_assert!(!parsed.legacy_v01);
    }

    /// A statement whose subject digest is not the root of its resources, or whose resource
    /// digest has the wrong length for its algorithm, is refused.
    #[test]
    fn inconsistent_statements_are_refused((s, resources) in manifest(), at in any::<prop::sample::Index>(), bit in 0u8..8) {
        let built = statement::build("m", &s, &resources);
        let mut v: serde_json::Value = serde_json::from_slice(&built).unwrap();
        let root = v["subject"][0]["digest"]["sha256"].as_str().unwrap().to_string();
        let mut raw = hex::decode(&root).unwrap();
        let j = at.index(raw.len());
        raw[j] ^= 1 << bit;
        v["subject"][0]["digest"]["sha256"] = hex::encode(raw).into();
        let err = statement::parse(&serde_json::to_vec(&v).unwrap()).unwrap_err();
        prop_assert!(matches!(err, StatementError::RootDigest { .. }), "{err}");

        let mut v: serde_json::Value = serde_json::from_slice(&built).unwrap();
        let i = at.index(resources.len());
        let digest = v["predicate"]["resources"][i]["digest"].as_str().unwrap().to_string();
        v["predicate"]["resources"][i]["digest"] = format!("{digest}00").into();
        let err = statement::parse(&serde_json::to_vec(&v).unwrap()).unwrap_err();
        prop_assert!(matches!(err, StatementError::Malformed(_)), "{err}");
    }

    /// A resource name that leaves the model root is refused whatever else the statement says.
    #[test]
    fn traversal_names_are_refused((s, resources) in manifest(), bad in prop::sample::select(vec!["..", "../x", "a/../../x", "/etc/passwd", "a//b", "./a"])) {
        let built = statement::build("m", &s, &resources);
        let mut v: serde_json::Value = serde_json::from_slice(&built).unwrap();
        let name = match s.method {
            Method::Files => bad.to_string(),
            Method::Shards { .. } => format!("{bad}:0:1"),
        };
        v["predicate"]["resources"][0]["name"] = name.into();
        let err = statement::parse(&serde_json::to_vec(&v).unwrap()).unwrap_err();
        prop_assert!(matches!(err, StatementError::BadName(_)), "{err}");
    }

    /// A bundle that parses writes JSON that parses back to the same JSON, whatever its
    /// strings hold.
    #[test]
    fn bundles_round_trip(which in 0usize..3, media in "\\PC{0,30}", payload in "\\PC{0,40}", sig in "\\PC{0,20}", keyid in prop::option::of("\\PC{0,8}")) {
        let mut b = Bundle::from_slice(&BUNDLES[which]).unwrap();
        b.media_type = media;
        let env = b.dsse_envelope.as_mut().unwrap();
        env.payload = payload;
        env.signatures[0].sig = sig;
        env.signatures[0].keyid = keyid;
        let json = b.to_json();
        let again = Bundle::from_slice(json.as_bytes()).unwrap();
        prop_assert_eq!(again.to_json(), json);
    }

    /// DSSE envelopes of any content never panic, and PAE frames the payload exactly.
    #[test]
    fn envelopes_never_panic(payload_type in "\\PC{0,30}", payload in "[A-Za-z0-9+/=]{0,64}", sigs in prop::collection::vec("[A-Za-z0-9+/=]{0,12}", 0..3)) {
        let json = serde_json::json!({
            "payload": payload, "payloadType": payload_type,
            "signatures": sigs.iter().map(|s| serde_json::json!({"sig": s})).collect::<Vec<_>>(),
        });
        let env: Envelope = serde_json::from_value(json).unwrap();
        let _ = env.single_signature();
        if let Ok(p) = env.payload_bytes() {
            let framed = pae(&env.payload_type, &p);
            let header = format!("DSSEv1 {} {} {} ", env.payload_type.len(), env.payload_type, p.len());
            prop_assert_eq!(&framed[..header.len()], header.as_bytes());
            prop_assert_eq!(&framed[header.len()..], &p[..]);
            prop_assert!(pae_compat(&env.payload_type, &p).starts_with(b"DSSEV1 "));
        }
    }

    /// Any block `to_pem` writes, `pem_blocks` reads back; arbitrary text never panics.
    #[test]
    fn pem_round_trips(label in "[A-Z0-9 :\n]{0,20}", der in prop::collection::vec(any::<u8>(), 0..200), junk in prop::collection::vec(any::<u8>(), 0..200)) {
        let blocks = pem_blocks(to_pem(&label, &der).as_bytes());
        prop_assert_eq!(blocks.len(), 1);
        prop_assert_eq!(&blocks[0].label, &label);
        prop_assert_eq!(&blocks[0].der, &der);
        let _ = pem_blocks(&junk);
        let _ = PublicKey::from_pem("k", &junk);
        let _ = Certificate::all_from_pem("c", &junk);
    }

    /// Certificates with bytes changed never panic the parser, and one whose signed part
    /// (tbsCertificate) changed is never accepted in a chain; the unchanged chain is (twin).
    #[test]
    fn tampered_certificates_are_refused(which in 0usize..2, at in any::<prop::sample::Index>(), bit in 0u8..8) {
        let [leaf, inter, root] = &*PKI;
        let now = support::fixture_time();
        prop_assert!(verify_chain(leaf, std::slice::from_ref(inter), std::slice::from_ref(root), now).is_ok());
        let target = [leaf, inter][which];
        let der = target.der();
        // Certificate ::= SEQUENCE { tbsCertificate, ... }: both headers are 4 bytes here.
        prop_assert_eq!(&der[..2], &[0x30, 0x82]);
        let tbs_len = 4 + usize::from(u16::from_be_bytes([der[6], der[7]]));
        let i = 4 + at.index(tbs_len);
        let mut bad = der.to_vec();
        bad[i] ^= 1 << bit;
        let Ok(bad) = Certificate::from_der("tampered", &bad) else { return Ok(()) };
        let _ = (bad.subject(), bad.issuer(), bad.validity(), bad.public_key(), bad.san());
        let result = if which == 0 {
            verify_chain(&bad, std::slice::from_ref(inter), std::slice::from_ref(root), now).map(|_| ())
        } else {
            verify_chain(leaf, std::slice::from_ref(&bad), std::slice::from_ref(root), now).map(|_| ())
        };
        prop_assert!(result.is_err(), "byte {i} of certificate {which} changed and still accepted");
    }

    /// Real public keys load again from their own re-encoding, with the same hint.
    #[test]
    fn public_keys_round_trip(which in prop::sample::select(vec!["peer-samples/ec-p256.pub.pem", "peer-samples/keys/p384.pub", "peer-samples/keys/p521.pub"]), at in any::<prop::sample::Index>(), byte in any::<u8>()) {
        let key = PublicKey::from_pem(which, &read(which)).unwrap();
        let again = PublicKey::from_pem("again", to_pem("PUBLIC KEY", key.spki_der()).as_bytes()).unwrap();
        prop_assert!(again == key);
        prop_assert_eq!(again.hint(), key.hint());
        let mut der = key.spki_der().to_vec();
        let i = at.index(der.len());
        der[i] = byte;
        let _ = PublicKey::from_spki_der("mutated", &der);
    }
}

#[test]
fn real_bundles_parse_and_round_trip() {
    for raw in BUNDLES.iter() {
        let b = Bundle::from_slice(raw).unwrap();
        let json = b.to_json();
        assert_eq!(Bundle::from_slice(json.as_bytes()).unwrap().to_json(), json);
    }
}
