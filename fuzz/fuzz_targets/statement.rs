//! The signed in-toto statement (`statement::parse`, what the verifier trusts after the
//! signature check). A statement that parses must be rebuilt by `statement::build` into one
//! that parses to the same serialization, name and resources (sorted as the signer writes them).
#![no_main]

use libfuzzer_sys::fuzz_target;
use model_signing::manifest::sort_resources;
use model_signing::statement;

fuzz_target!(|data: &[u8]| {
    let Ok(m) = statement::parse(data) else {
        return;
    };
    assert!(!m.resources.is_empty());
    let mut sorted = m.resources.clone();
    sort_resources(&mut sorted);
    let built = statement::build(&m.model_name, &m.serialization, &sorted);
    let again = statement::parse(&built).expect("a statement we built parses");
    assert_eq!(
        again.serialization, m.serialization,
        "serialization round trip"
    );
    assert_eq!(again.resources, sorted, "resources round trip");
    assert_eq!(again.model_name, m.model_name, "name round trip");
    assert!(!again.legacy_v01);
});
