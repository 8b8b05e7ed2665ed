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
    format!(
        "DSSEV1 {} {} {} {}",
        payload_type.len(),
        payload_type,
        payload.len(),
        python_bytes_repr(payload)
    )
    .into_bytes()
}

/// `repr(b)` for a Python `bytes` value.
fn python_bytes_repr(b: &[u8]) -> String {
    // Python picks double quotes only when the bytes contain ' and no ".
    let quote = if b.contains(&b'\'') && !b.contains(&b'"') {
        '"'
    } else {
        '\''
    };
    let mut s = String::with_capacity(b.len() + 3);
    s.push('b');
    s.push(quote);
    for &c in b {
        match c {
            b'\\' => s.push_str("\\\\"),
            b'\t' => s.push_str("\\t"),
            b'\n' => s.push_str("\\n"),
            b'\r' => s.push_str("\\r"),
            c if c as char == quote => {
                s.push('\\');
                s.push(quote);
            }
            0x20..=0x7e => s.push(c as char),
            c => s.push_str(&format!("\\x{c:02x}")),
        }
    }
    s.push(quote);
    s
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
    }
}
