//! DSSE envelopes (`dsseEnvelope` of a bundle): decoding the payload and the one signature,
//! pre-authentication encoding (DSSE v1 and the v0.2.0 variant) and ECDSA verification with
//! keys on every supported curve. An envelope that parses must serialize and parse back to the
//! same JSON, and PAE must frame the payload exactly.
#![no_main]

use std::sync::LazyLock;

use libfuzzer_sys::fuzz_target;
use model_signing::bundle::Envelope;
use model_signing::dsse::{pae, pae_compat};
use model_signing::keys::PublicKey;
use model_validation_operator_fuzz::fixture;

static KEYS: LazyLock<Vec<PublicKey>> = LazyLock::new(|| {
    [
        "peer-samples/ec-p256.pub.pem",
        "peer-samples/keys/p384.pub",
        "peer-samples/keys/p521.pub",
    ]
    .iter()
    .map(|p| PublicKey::from_pem(p, &fixture(p)).unwrap())
    .collect()
});

fuzz_target!(|data: &[u8]| {
    let keys = &*KEYS;
    let Ok(env) = serde_json::from_slice::<Envelope>(data) else {
        return;
    };
    let json = serde_json::to_string(&env).unwrap();
    let again: Envelope = serde_json::from_str(&json).expect("an envelope we wrote parses");
    assert_eq!(
        serde_json::to_string(&again).unwrap(),
        json,
        "envelope JSON round trip"
    );
    let (Ok(payload), Ok(sig)) = (env.payload_bytes(), env.single_signature()) else {
        return;
    };
    let framed = pae(&env.payload_type, &payload);
    let header = format!(
        "DSSEv1 {} {} {} ",
        env.payload_type.len(),
        env.payload_type,
        payload.len()
    );
    assert!(framed.starts_with(header.as_bytes()) && framed.ends_with(&payload));
    assert_eq!(framed.len(), header.len() + payload.len());
    let compat = pae_compat(&env.payload_type, &payload);
    for key in keys {
        let _ = key.verify(&framed, &sig);
        let _ = key.verify(&compat, &sig);
        let _ = key.verify_sha256(&compat, &sig);
    }
});
