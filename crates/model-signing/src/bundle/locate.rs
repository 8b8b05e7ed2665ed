//! Where in a JSON document a parse error happened, as a field path
//! (`verificationMaterial.tlogEntries[0]`).
//!
//! serde_json reports a line and column only; this re-reads the document up to that point with
//! a flat scanner (no recursion, a stack of at most [`MAX_TRACKED_DEPTH`] frames), so locating an
//! error in hostile input costs no more than the parse that failed.

use super::message::{ALLOWED_MARKER, quote_name};

/// Deeper nesting is counted but not named (serde_json refuses past 128 levels anyway).
const MAX_TRACKED_DEPTH: usize = 64;

enum Frame {
    /// In an object; `key` is the last key read, `in_value` once its `:` was seen.
    Object { key: Option<String>, in_value: bool },
    /// In an array, at element `index`.
    Array { index: usize },
}

/// One step of a path.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Step {
    /// An object member.
    Key(String),
    /// An array element.
    Index(usize),
}

/// The path of the value being read at byte `offset`. The last step is the key just read when
/// `offset` lies between a key and its value (where an unknown field is reported).
pub(crate) fn path_at(json: &[u8], offset: usize) -> Vec<Step> {
    let end = offset.min(json.len());
    let mut stack: Vec<Frame> = Vec::new();
    let mut untracked = 0usize;
    let mut i = 0;
    while i < end {
        match json[i] {
            open @ (b'{' | b'[') => {
                if stack.len() < MAX_TRACKED_DEPTH {
                    stack.push(if open == b'{' {
                        Frame::Object {
                            key: None,
                            in_value: false,
                        }
                    } else {
                        Frame::Array { index: 0 }
                    });
                } else {
                    untracked += 1;
                }
            }
            b'}' | b']' => {
                if untracked > 0 {
                    untracked -= 1;
                } else {
                    stack.pop();
                }
            }
            b',' if untracked == 0 => match stack.last_mut() {
                Some(Frame::Object { in_value, .. }) => *in_value = false,
                Some(Frame::Array { index }) => *index += 1,
                None => {}
            },
            b':' if untracked == 0 => {
                if let Some(Frame::Object { in_value, .. }) = stack.last_mut() {
                    *in_value = true;
                }
            }
            b'"' => {
                let close = string_end(json, i + 1);
                if untracked == 0
                    && let Some(Frame::Object { key, in_value }) = stack.last_mut()
                    && !*in_value
                {
                    *key = Some(decode_key(&json[i..(close + 1).min(json.len())]));
                }
                i = close;
            }
            _ => {}
        }
        i += 1;
    }
    stack
        .into_iter()
        .filter_map(|f| match f {
            Frame::Object { key: Some(k), .. } => Some(Step::Key(k)),
            Frame::Object { key: None, .. } => None,
            Frame::Array { index } => Some(Step::Index(index)),
        })
        .collect()
}

/// The index of the closing quote of the string whose contents start at `start` (or the end).
fn string_end(json: &[u8], start: usize) -> usize {
    let mut i = start;
    while i < json.len() {
        match json[i] {
            b'\\' => i += 2,
            b'"' => return i,
            _ => i += 1,
        }
    }
    json.len()
}

fn decode_key(quoted: &[u8]) -> String {
    serde_json::from_slice::<String>(quoted)
        .unwrap_or_else(|_| String::from_utf8_lossy(quoted).into_owned())
}

/// `a.b[0].c`, or `the top level` for an empty path.
pub(crate) fn render(path: &[Step]) -> String {
    if path.is_empty() {
        return "the top level".into();
    }
    let mut out = String::new();
    for step in path {
        match step {
            Step::Key(k) if is_plain(k) => {
                if !out.is_empty() {
                    out.push('.');
                }
                out.push_str(k);
            }
            Step::Key(k) => out.push_str(&format!("[{}]", quote_name(k))),
            Step::Index(i) => out.push_str(&format!("[{i}]")),
        }
    }
    out
}

fn is_plain(k: &str) -> bool {
    !k.is_empty() && k.len() <= 64 && k.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
}

/// serde_json's error message with its line/column replaced by the field path: `unknown field
/// "foo" at verificationMaterial.tlogEntries[0]; fields allowed there: ...`, or `invalid type:
/// ... at mediaType (line 1, column 15)`.
pub(crate) fn describe(json: &[u8], err: &serde_json::Error) -> String {
    let full = err.to_string();
    let (line, column) = (err.line(), err.column());
    let message = full
        .strip_suffix(&format!(" at line {line} column {column}"))
        .unwrap_or(&full);
    if line == 0 {
        return message.to_string();
    }
    let mut path = path_at(json, offset_of(json, line, column));
    let position = format!("line {line}, column {column}");
    match message.split_once(ALLOWED_MARKER) {
        Some((head, allowed)) => {
            // The last step is the unknown key itself: report the object holding it.
            if matches!(path.last(), Some(Step::Key(_))) {
                path.pop();
            }
            format!(
                "{head} at {} ({position}){ALLOWED_MARKER}{allowed}",
                render(&path)
            )
        }
        None => {
            // serde_json reports a value of the wrong type just inside it: an array refused
            // as a whole is not its first element.
            if message.starts_with("invalid type: sequence")
                && matches!(path.last(), Some(Step::Index(0)))
            {
                path.pop();
            }
            format!("{message} at {} ({position})", render(&path))
        }
    }
}

/// The byte offset of serde_json's 1-based line and column (bytes from the line's start).
fn offset_of(json: &[u8], line: usize, column: usize) -> usize {
    let line_start = if line <= 1 {
        0
    } else {
        json.iter()
            .enumerate()
            .filter(|&(_, &b)| b == b'\n')
            .nth(line - 2)
            .map_or(json.len(), |(i, _)| i + 1)
    };
    line_start + column
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(json: &str, needle: &str) -> String {
        let off = json.find(needle).unwrap() + needle.len();
        render(&path_at(json.as_bytes(), off))
    }

    #[test]
    fn paths_follow_keys_and_indices() {
        let j = r#"{"a": {"b": [1, {"c\"x": 2}, {"d": [ [], {"e": 3}]}]}}"#;
        assert_eq!(at(j, r#""a""#), "a");
        assert_eq!(at(j, r#"{"c\"x""#), r#"a.b[1]["c\"x"]"#);
        assert_eq!(at(j, r#""e""#), "a.b[2].d[1].e");
        assert_eq!(render(&path_at(j.as_bytes(), 0)), "the top level");
    }

    #[test]
    fn errors_name_the_field() {
        #[derive(Debug, serde::Deserialize)]
        #[allow(dead_code)]
        struct T {
            a: Vec<u32>,
            b: String,
        }
        let json = b"{\"a\": [1, 2],\n \"b\": [3]}";
        let err = serde_json::from_slice::<T>(json).unwrap_err();
        assert_eq!(
            describe(json, &err),
            "invalid type: sequence, expected a string at b (line 2, column 6)"
        );
        let json = b"{\"a\": [1, \"x\"], \"b\": \"\"}";
        let err = serde_json::from_slice::<T>(json).unwrap_err();
        assert!(
            describe(json, &err).contains(" at a[1] "),
            "{}",
            describe(json, &err)
        );
    }

    #[test]
    fn deep_nesting_is_counted_not_tracked() {
        let deep = format!(
            "{{\"x\": {}1{}, \"y\"",
            "[".repeat(100_000),
            "]".repeat(100_000)
        );
        assert_eq!(render(&path_at(deep.as_bytes(), deep.len())), "y");
    }
}
