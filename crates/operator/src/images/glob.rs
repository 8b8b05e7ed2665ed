//! Image-reference patterns, as policy-controller writes them: `*` matches within one path
//! segment, `**` across segments, anything else literally. A pattern is matched against a
//! reference's repository (`registry/path`), never its tag or digest: a tag is a moving name,
//! and admission pins what verified by digest anyway.
//!
//! Matching is linear in the pattern times the repository (a set of reachable positions per
//! token), so a hostile pattern or reference cannot make admission slow.

/// A compiled pattern.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Glob {
    pattern: String,
    tokens: Vec<Token>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum Token {
    Literal(Vec<u8>),
    /// `*`: any run of characters without `/`.
    Segment,
    /// `**`: any run of characters.
    Any,
}

/// Why a pattern cannot be used.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum GlobError {
    /// Empty.
    #[error(
        "the pattern is empty: write a repository pattern such as registry.example.com/models/**"
    )]
    Empty,
    /// Names a tag or a digest, which a repository never has.
    #[error(
        "{0:?} names a tag or digest, but patterns match repositories (registry/path): drop the {1}"
    )]
    NotARepository(String, &'static str),
}

impl Glob {
    /// Compiles `pattern`.
    pub fn new(pattern: &str) -> Result<Glob, GlobError> {
        if pattern.is_empty() {
            return Err(GlobError::Empty);
        }
        if pattern.contains('@') {
            return Err(GlobError::NotARepository(pattern.into(), "@digest"));
        }
        // A ':' in the first segment is a registry's port; after it, a tag.
        if pattern
            .split_once('/')
            .is_some_and(|(_, rest)| rest.contains(':'))
        {
            return Err(GlobError::NotARepository(pattern.into(), ":tag"));
        }
        let mut tokens = Vec::new();
        let bytes = pattern.as_bytes();
        let mut i = 0;
        while i < bytes.len() {
            if bytes[i] == b'*' {
                let double = bytes.get(i + 1) == Some(&b'*');
                i += if double { 2 } else { 1 };
                // `***` and more mean the same as `**`.
                while bytes.get(i) == Some(&b'*') {
                    i += 1;
                }
                let token = if double { Token::Any } else { Token::Segment };
                match tokens.last_mut() {
                    Some(Token::Any) => {}
                    Some(last @ Token::Segment) if token == Token::Any => *last = Token::Any,
                    Some(Token::Segment) => {}
                    _ => tokens.push(token),
                }
            } else {
                let start = i;
                while i < bytes.len() && bytes[i] != b'*' {
                    i += 1;
                }
                tokens.push(Token::Literal(bytes[start..i].to_vec()));
            }
        }
        Ok(Glob {
            pattern: pattern.into(),
            tokens,
        })
    }

    /// The pattern as written.
    pub fn as_str(&self) -> &str {
        &self.pattern
    }

    /// Whether `repository` (`registry/path`) matches the whole pattern.
    pub fn matches(&self, repository: &str) -> bool {
        let s = repository.as_bytes();
        // reach[j]: the tokens so far can match s[..j].
        let mut reach = vec![false; s.len() + 1];
        reach[0] = true;
        for token in &self.tokens {
            let mut next = vec![false; s.len() + 1];
            match token {
                Token::Literal(lit) => {
                    for j in 0..=s.len() {
                        if reach[j] && s[j..].starts_with(lit) {
                            next[j + lit.len()] = true;
                        }
                    }
                }
                Token::Segment => {
                    let mut open = false;
                    for j in 0..=s.len() {
                        if j > 0 && s[j - 1] == b'/' {
                            open = false;
                        }
                        open |= reach[j];
                        next[j] = open;
                    }
                }
                Token::Any => {
                    let mut open = false;
                    for j in 0..=s.len() {
                        open |= reach[j];
                        next[j] = open;
                    }
                }
            }
            reach = next;
        }
        reach[s.len()]
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn m(p: &str, s: &str) -> bool {
        Glob::new(p).unwrap().matches(s)
    }

    #[test]
    fn star_stays_in_its_segment_and_double_star_crosses() {
        assert!(m(
            "registry.example.com/models/*",
            "registry.example.com/models/llm"
        ));
        assert!(!m(
            "registry.example.com/models/*",
            "registry.example.com/models/team/llm"
        ));
        assert!(m(
            "registry.example.com/models/**",
            "registry.example.com/models/team/llm"
        ));
        assert!(m(
            "registry.example.com/models/**",
            "registry.example.com/models/llm"
        ));
        assert!(!m(
            "registry.example.com/models/**",
            "registry.example.com/other/llm"
        ));
        assert!(m("*.example.com/models/*", "eu.example.com/models/llm"));
        assert!(!m(
            "*.example.com/models/*",
            "evil.com/x.example.com/models/llm"
        ));
        assert!(m("127.0.0.1:5000/models/llm", "127.0.0.1:5000/models/llm"));
        assert!(!m(
            "127.0.0.1:5000/models/llm",
            "127.0.0.1:5000/models/llm2"
        ));
        assert!(m("**", "anything/at/all"));
        assert!(m("docker.io/library/*", "docker.io/library/busybox"));
    }

    #[test]
    fn a_prefix_is_not_a_match() {
        assert!(!m(
            "registry.example.com/models",
            "registry.example.com/models/llm"
        ));
        assert!(!m(
            "registry.example.com/mod*",
            "registry.example.com/models/llm"
        ));
        assert!(!m("example.com/*", "registry.example.com/models"));
    }

    #[test]
    fn tags_and_digests_are_refused_with_the_fix() {
        let e = Glob::new("registry.example.com/models/llm:v1").unwrap_err();
        assert!(e.to_string().contains("drop the :tag"), "{e}");
        let e = Glob::new("registry.example.com/models/llm@sha256:00").unwrap_err();
        assert!(e.to_string().contains("drop the @digest"), "{e}");
        assert!(Glob::new("localhost:5000/models/*").is_ok());
        assert_eq!(Glob::new(""), Err(GlobError::Empty));
    }

    /// A reference matcher written the slow, obvious way: backtracking.
    fn naive(p: &[u8], s: &[u8]) -> bool {
        match p.first() {
            None => s.is_empty(),
            Some(b'*') if p.get(1) == Some(&b'*') => (0..=s.len()).any(|k| naive(&p[2..], &s[k..])),
            Some(b'*') => (0..=s.len())
                .take_while(|&k| k == 0 || s[k - 1] != b'/')
                .any(|k| naive(&p[1..], &s[k..])),
            Some(c) => s.first() == Some(c) && naive(&p[1..], &s[1..]),
        }
    }

    proptest! {
        #[test]
        fn agrees_with_backtracking(p in "[ab/*]{1,8}", s in "[ab/]{0,10}") {
            let g = Glob::new(&p).unwrap();
            prop_assert_eq!(g.matches(&s), naive(p.as_bytes(), s.as_bytes()));
        }

        #[test]
        // Backtracking would take exponential time here; the reachable-set matcher is linear.
        fn hostile_inputs_are_answered(stars in 1usize..200, len in 0usize..600) {
            let p = "*a".repeat(stars) + "**b";
            let s = "a".repeat(len);
            prop_assert!(!Glob::new(&p).unwrap().matches(&s));
        }
    }
}
