//! Modelcar image layers as a registry serves them: `oci::modelcar::files` over up to three
//! layers cut from the input (its first byte picks the cuts and which layers are gzip), with
//! the model root `/models`. Never panics; the files it maps stay inside the model root, are
//! named once, and their names parse back as model paths.
#![no_main]

use libfuzzer_sys::fuzz_target;
use model_signing::name::ModelPath;
use model_signing::oci::modelcar::{Compression, files};

fuzz_target!(|data: &[u8]| {
    let Some((&pick, rest)) = data.split_first() else {
        return;
    };
    // Cut the rest into up to three layers at 512-byte boundaries (tar blocks).
    let blocks = rest.len() / 512;
    let a = (usize::from(pick & 0x0f) % (blocks + 1)) * 512;
    let b = (a + usize::from(pick >> 4) * 512).min(rest.len());
    let layers = [&rest[..a], &rest[a..b], &rest[b..]];
    let compression = |i: u8| {
        if pick & (1 << i) != 0 && i < 2 {
            Compression::Gzip
        } else {
            Compression::None
        }
    };
    let Ok(found) = files(
        layers
            .iter()
            .enumerate()
            .filter(|(_, l)| !l.is_empty())
            .map(|(i, l)| (compression(i as u8), *l)),
        "/models",
    ) else {
        return;
    };
    let mut seen = std::collections::BTreeSet::new();
    for r in &found.resources {
        let p = r.name.path.to_string();
        assert!(
            !p.starts_with('/') && !p.split('/').any(|c| c.is_empty() || c == "." || c == "..")
        );
        assert_eq!(ModelPath::parse(&p).unwrap(), r.name.path);
        assert_eq!(r.digest.len(), 32);
        assert!(seen.insert(p));
    }
});
