//! What several fuzz targets share: fixture paths, the trust material the verifiers are built
//! with, and splitting an input into several DER certificates.
//!
//! The targets call the crates' public entry points exactly as the verifier, the agent and the
//! webhook do; the invariants they assert (round trips, bounds) are listed in README.md.

use std::path::PathBuf;
use std::time::{Duration, SystemTime};

/// `../shared/fixtures` beside the work tree, or `$MVO_FIXTURES`.
pub fn fixtures() -> PathBuf {
    std::env::var_os("MVO_FIXTURES")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/../../shared/fixtures"
            ))
        })
}

/// A fixture's bytes; a missing fixture stops the fuzzer at start, not in the loop.
pub fn fixture(rel: &str) -> Vec<u8> {
    let p = fixtures().join(rel);
    std::fs::read(&p).unwrap_or_else(|e| panic!("fixture {}: {e} (set MVO_FIXTURES)", p.display()))
}

/// A fixed "now" inside the fixture certificates' validity (2027-05-01, as the engine tests use), so that a crash reproduces.
pub fn now() -> SystemTime {
    SystemTime::UNIX_EPOCH + Duration::from_secs(1_809_129_600)
}

/// Cuts `data` into DER TLVs (at most 16); a piece whose header does not parse takes the rest.
pub fn split_der(mut data: &[u8]) -> Vec<&[u8]> {
    let mut out = Vec::new();
    while !data.is_empty() && out.len() < 16 {
        let n = der_len(data).unwrap_or(data.len()).min(data.len());
        out.push(&data[..n]);
        data = &data[n..];
    }
    out
}

/// The encoded length of the TLV at the start of `d` (single-byte tags, definite lengths).
fn der_len(d: &[u8]) -> Option<usize> {
    let first = *d.get(1)?;
    if first < 0x80 {
        return Some(2 + usize::from(first));
    }
    let k = usize::from(first & 0x7f);
    if k == 0 || k > 4 {
        return None;
    }
    let len = d
        .get(2..2 + k)?
        .iter()
        .fold(0usize, |a, &b| a << 8 | usize::from(b));
    Some(2 + k + len)
}
