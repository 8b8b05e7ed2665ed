//! DSSE pre-authentication encoding (PAE), including the v0.2.0 compatibility variant.

/// The payload type of every model-signing envelope.
pub const IN_TOTO_PAYLOAD_TYPE: &str = "application/vnd.in-toto+json";

/// `"DSSEv1" SP len(type) SP type SP len(payload) SP payload`, as DSSE v1.0 defines it.
pub fn pae(payload_type: &str, payload: &[u8]) -> Vec<u8> {
    let mut out = format!(
        "DSSEv1 {} {} {} ",
        payload_type.len(),
        payload_type,
        payload.len()
    )
    .into_bytes();
    out.extend_from_slice(payload);
    out
}

/// The encoding model-signing v0.2.0 signed by mistake: `DSSEV1` and the payload written as
/// Python's `repr()` of a `bytes` object (`b'...'`). Only used to verify v0.2.0 signatures.
pub fn pae_compat(payload_type: &str, payload: &[u8]) -> Vec<u8> {
    pae_compat_bounded(payload_type, payload, usize::MAX).unwrap_or_default()
}

/// [`pae_compat`], or `None` when the encoding would exceed `max_len` bytes: the repr of binary
/// bytes is four times their length, and no genuine v0.2.0 signature is that large.
pub fn pae_compat_bounded(payload_type: &str, payload: &[u8], max_len: usize) -> Option<Vec<u8>> {
    let quote = repr_quote(payload);
    let head = format!(
        "DSSEV1 {} {} {} ",
        payload_type.len(),
        payload_type,
        payload.len()
    );
    let body_len: usize = 3 + payload
        .iter()
        .map(|&c| repr_byte(c, quote).len())
        .sum::<usize>();
    if head.len() + body_len > max_len {
        return None;
    }
    let mut out = Vec::with_capacity(head.len() + body_len);
    out.extend_from_slice(head.as_bytes());
    out.push(b'b');
    out.push(quote);
    for &c in payload {
        out.extend_from_slice(&repr_byte(c, quote));
    }
    out.push(quote);
    Some(out)
}

/// Python picks double quotes only when the bytes contain ' and no ".
fn repr_quote(b: &[u8]) -> u8 {
    if b.contains(&b'\'') && !b.contains(&b'"') {
        b'"'
    } else {
        b'\''
    }
}

/// One byte as `repr()` writes it inside `quote`s.
fn repr_byte(c: u8, quote: u8) -> ReprByte {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    match c {
        b'\\' => ReprByte::two(b'\\', b'\\'),
        b'\t' => ReprByte::two(b'\\', b't'),
        b'\n' => ReprByte::two(b'\\', b'n'),
        b'\r' => ReprByte::two(b'\\', b'r'),
        c if c == quote => ReprByte::two(b'\\', quote),
        0x20..=0x7e => ReprByte {
            bytes: [c, 0, 0, 0],
            len: 1,
        },
        c => ReprByte {
            bytes: [
                b'\\',
                b'x',
                HEX[usize::from(c >> 4)],
                HEX[usize::from(c & 15)],
            ],
            len: 4,
        },
    }
}

/// Up to four bytes of a repr, without allocating.
struct ReprByte {
    bytes: [u8; 4],
    len: usize,
}

impl ReprByte {
    fn two(a: u8, b: u8) -> Self {
        ReprByte {
            bytes: [a, b, 0, 0],
            len: 2,
        }
    }

    fn len(&self) -> usize {
        self.len
    }
}

impl std::ops::Deref for ReprByte {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        &self.bytes[..self.len]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pae_matches_the_dsse_spec_example() {
        assert_eq!(
            pae("http://example.com/HelloWorld", b"hello world"),
            b"DSSEv1 29 http://example.com/HelloWorld 11 hello world".to_vec()
        );
    }

    #[test]
    fn compat_uses_python_repr() {
        assert_eq!(
            pae_compat("t", b"a'\"\n\xff\\"),
            b"DSSEV1 1 t 6 b'a\\'\"\\n\\xff\\\\'".to_vec()
        );
        assert_eq!(pae_compat("t", b"it's"), b"DSSEV1 1 t 4 b\"it's\"".to_vec());
        // Binary bytes take four each: bounded.
        assert_eq!(pae_compat_bounded("t", &[0u8; 30], 100), None);
        assert_eq!(
            pae_compat_bounded("t", &[0u8; 30], 200).unwrap().len(),
            "DSSEV1 1 t 30 ".len() + 3 + 120
        );
    }
}
