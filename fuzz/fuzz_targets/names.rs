//! Resource names from a manifest, one per line: model paths, file and shard names (the
//! statement's `resources[].name` and `ignore_paths`), sorting as the signer sorts, the root
//! digest, and comparing manifests. Accepted names never leave the model root, print back as
//! they were written (shard offsets up to leading zeros), and `compare` finds what differs.
#![no_main]

use libfuzzer_sys::fuzz_target;
use model_signing::manifest::{Resource, compare, root_digest, sort_resources};
use model_signing::name::{ModelPath, ResourceName};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let mut resources = Vec::new();
    for (i, line) in text.split('\n').enumerate() {
        if let Ok(p) = ModelPath::parse(line) {
            assert_eq!(p.to_string(), line);
            assert!(
                p.components()
                    .iter()
                    .all(|c| !c.is_empty() && c != "." && c != ".." && !c.contains('/'))
            );
            assert_eq!(ModelPath::parse(&p.to_string()).as_ref(), Ok(&p));
        }
        if let Ok(n) = ResourceName::parse_file(line) {
            assert_eq!(n.to_string(), line);
            resources.push(Resource {
                name: n,
                digest: vec![i as u8; 32],
            });
        }
        if let Ok(n) = ResourceName::parse_shard(line) {
            let r = n.shard.expect("a shard name has a range");
            assert!(r.start < r.end);
            assert_eq!(ResourceName::parse_shard(&n.to_string()).as_ref(), Ok(&n));
            resources.push(Resource {
                name: n,
                digest: vec![i as u8; 32],
            });
        }
    }
    let _ = root_digest(&resources);
    sort_resources(&mut resources);
    assert!(resources.windows(2).all(|w| w[0].name <= w[1].name));
    assert!(compare(&resources, &resources, "sha256").is_empty());
    if let Some((first, rest)) = resources.split_first() {
        let m = compare(&resources, rest, "sha256");
        let gone = rest.iter().all(|r| r.name.path != first.name.path);
        assert_eq!(m.missing.contains(&first.name.path.to_string()), gone);
    }
});
