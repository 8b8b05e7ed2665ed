//! Text limits for what the operator writes into API objects (status fields, Event notes).

/// At most `max` bytes of `s`, cut at a character boundary, with `…` when cut.
pub fn truncate(s: &str, max: usize) -> String {
    if s.len() <= max {
        return s.to_string();
    }
    let mut end = max.saturating_sub('…'.len_utf8());
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &s[..end])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn truncation_is_on_a_char_boundary() {
        assert_eq!(truncate("abc", 10), "abc");
        let s = "é".repeat(100);
        let out = truncate(&s, 11);
        assert!(out.len() <= 11 && out.ends_with('…'), "{out}");
    }
}
