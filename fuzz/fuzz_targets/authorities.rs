//! The authorities document (`authorities::AuthoritiesDocument`: what `verify authorities
//! --policy` reads and the operator renders for its agent). A document that parses serializes to
//! JSON that parses to the same document; one that builds yields exactly one verifier per
//! authority, named in order, and never more than `MAX_AUTHORITIES`.
#![no_main]

use std::time::SystemTime;

use libfuzzer_sys::fuzz_target;
use model_signing::authorities::AuthoritiesDocument;
use model_signing::authorities::document::MAX_AUTHORITIES;

fuzz_target!(|data: &[u8]| {
    let Ok(doc) = AuthoritiesDocument::from_json("fuzz", data) else {
        return;
    };
    let json = serde_json::to_vec(&doc).expect("a parsed document serializes");
    let again = AuthoritiesDocument::from_json("again", &json).expect("its JSON parses");
    assert_eq!(again, doc, "document round trip");
    if let Ok(built) = doc.build(SystemTime::UNIX_EPOCH) {
        assert_eq!(built.len(), doc.authorities.len());
        assert!(built.len() <= MAX_AUTHORITIES);
        for (i, (b, spec)) in built.iter().zip(&doc.authorities).enumerate() {
            let default = format!("authorities[{i}]");
            assert_eq!(&b.name, spec.name.as_ref().unwrap_or(&default));
        }
    }
});
