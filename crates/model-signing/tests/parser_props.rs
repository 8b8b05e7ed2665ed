//! Property tests: no input makes the parsers panic, and valid names round-trip.

mod support;

use std::sync::LazyLock;

use model_signing::bundle::Bundle;
use model_signing::name::{ModelPath, ResourceName};
use model_signing::statement;
use proptest::prelude::*;

/// A real bundle written by the peer.
static SAMPLE: LazyLock<String> = LazyLock::new(|| {
    std::fs::read_to_string(support::fixture("peer-samples/api-shards-sha256-4096.sig")).unwrap()
});

proptest! {
    #![proptest_config(ProptestConfig { cases: 2000, ..ProptestConfig::default() })]

    #[test]
    fn bundle_parser_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..2048)) {
        if let Ok(b) = Bundle::from_slice(&bytes)
            && let Ok(e) = b.envelope()
        {
            let _ = e.single_signature();
            if let Ok(p) = e.payload_bytes() {
                let _ = statement::parse(&p);
            }
        }
    }

    #[test]
    fn mutated_real_bundles_never_panic(flips in proptest::collection::vec((0usize..SAMPLE.len(), any::<u8>()), 1..8)) {
        let mut bytes = SAMPLE.as_bytes().to_vec();
        for (i, b) in flips {
            bytes[i] = b;
        }
        if let Ok(b) = Bundle::from_slice(&bytes)
            && let Ok(p) = b.envelope().and_then(|e| e.payload_bytes())
        {
            let _ = statement::parse(&p);
        }
    }

    #[test]
    fn mutated_statements_never_panic(flips in proptest::collection::vec((0usize..2259, any::<u8>()), 1..8)) {
        let b = Bundle::from_slice(SAMPLE.as_bytes()).unwrap();
        let mut p = b.envelope().unwrap().payload_bytes().unwrap();
        for (i, byte) in flips {
            let i = i % p.len();
            p[i] = byte;
        }
        let _ = statement::parse(&p);
    }

    #[test]
    fn resource_names_parse_or_refuse(s in ".{0,40}") {
        if let Ok(n) = ResourceName::parse_file(&s) {
            prop_assert_eq!(n.to_string(), s.clone());
            prop_assert!(!s.starts_with('/') && !s.split('/').any(|c| c == ".."));
        }
        let _ = ResourceName::parse_shard(&s);
    }

    #[test]
    fn valid_paths_round_trip(parts in proptest::collection::vec("[a-zA-Z0-9_.-]{1,8}", 1..5)) {
        prop_assume!(parts.iter().all(|p| p != "." && p != ".."));
        let s = parts.join("/");
        let p = ModelPath::parse(&s).unwrap();
        prop_assert_eq!(p.to_string(), s.clone());
        let shard = ResourceName::parse_shard(&format!("{s}:0:10")).unwrap();
        prop_assert_eq!(shard.to_string(), format!("{s}:0:10"));
    }
}
