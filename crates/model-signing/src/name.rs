//! Resource names: model-relative POSIX paths, optionally with a shard range.
//!
//! Names come from signatures written by anybody, so parsing is strict: a name that is absolute,
//! contains `..`, `.` or empty components, or a NUL byte is rejected before it can touch the file
//! system. Ordering follows the peer (`pathlib.PurePosixPath` compares path *components*, so
//! `a/b` sorts before `a-b/c`).

use std::cmp::Ordering;
use std::fmt;

/// A validated path relative to the model root. Zero components is the model root itself,
/// written `.` (the name of a single-file model's only resource).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ModelPath {
    components: Vec<String>,
}

/// Why a name from a signature (or a user-given ignore path) is not acceptable.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NameError {
    /// The name is empty.
    #[error("empty path")]
    Empty,
    /// The name starts with `/`.
    #[error("{0:?} is absolute; names must be relative to the model root")]
    Absolute(String),
    /// The name has a `..` component.
    #[error("{0:?} contains '..' and would leave the model root")]
    Traversal(String),
    /// The name has `.` or empty components (`a/./b`, `a//b`, `a/`).
    #[error("{0:?} is not a normalized path (it has '.' or empty components)")]
    NotNormalized(String),
    /// The name contains a NUL byte.
    #[error("{0:?} contains a NUL byte")]
    Nul(String),
    /// A shard name is not `path:start:end` with `start < end`.
    #[error("{0:?} is not a shard name of the form path:start:end with start < end")]
    BadShard(String),
}

impl ModelPath {
    /// The model root (`.`).
    pub fn root() -> Self {
        ModelPath {
            components: Vec::new(),
        }
    }

    /// Parses a POSIX relative path as written in a manifest. `.` is the root.
    pub fn parse(s: &str) -> Result<Self, NameError> {
        if s.is_empty() {
            return Err(NameError::Empty);
        }
        if s.contains('\0') {
            return Err(NameError::Nul(s.to_string()));
        }
        if s == "." {
            return Ok(Self::root());
        }
        if s.starts_with('/') {
            return Err(NameError::Absolute(s.to_string()));
        }
        let mut components = Vec::new();
        for part in s.split('/') {
            match part {
                ".." => return Err(NameError::Traversal(s.to_string())),
                "" | "." => return Err(NameError::NotNormalized(s.to_string())),
                p => components.push(p.to_string()),
            }
        }
        Ok(ModelPath { components })
    }

    /// The path components; empty for the root.
    pub fn components(&self) -> &[String] {
        &self.components
    }

    /// True for the model root (`.`).
    pub fn is_root(&self) -> bool {
        self.components.is_empty()
    }

    /// True when `self` equals `prefix` or lies below it.
    pub fn starts_with(&self, prefix: &ModelPath) -> bool {
        self.components.len() >= prefix.components.len()
            && self.components[..prefix.components.len()] == prefix.components[..]
    }

    /// A child path.
    pub fn join(&self, component: &str) -> ModelPath {
        let mut components = self.components.clone();
        components.push(component.to_string());
        ModelPath { components }
    }

    /// The path as a relative `std::path::PathBuf` (empty for the root).
    pub fn to_path_buf(&self) -> std::path::PathBuf {
        self.components.iter().collect()
    }
}

impl fmt::Display for ModelPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.components.is_empty() {
            f.write_str(".")
        } else {
            f.write_str(&self.components.join("/"))
        }
    }
}

impl Ord for ModelPath {
    fn cmp(&self, other: &Self) -> Ordering {
        // Component-wise, like PurePosixPath; str's Ord is code-point order, like Python's.
        self.components.cmp(&other.components)
    }
}

impl PartialOrd for ModelPath {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

/// A byte range `[start, end)` of a file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ShardRange {
    /// First byte, inclusive.
    pub start: u64,
    /// Last byte, exclusive.
    pub end: u64,
}

/// The name of one manifest resource: a file, or a shard of a file.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ResourceName {
    /// The file.
    pub path: ModelPath,
    /// The byte range, for the shards method.
    pub shard: Option<ShardRange>,
}

impl ResourceName {
    /// Parses a files-method name (`path`).
    pub fn parse_file(s: &str) -> Result<Self, NameError> {
        Ok(ResourceName {
            path: ModelPath::parse(s)?,
            shard: None,
        })
    }

    /// Parses a shards-method name (`path:start:end`).
    pub fn parse_shard(s: &str) -> Result<Self, NameError> {
        let bad = || NameError::BadShard(s.to_string());
        let mut parts = s.rsplitn(3, ':');
        let end = parts.next().ok_or_else(bad)?;
        let start = parts.next().ok_or_else(bad)?;
        let path = parts.next().ok_or_else(bad)?;
        let parse_offset = |v: &str| -> Result<u64, NameError> {
            if v.is_empty() || !v.bytes().all(|b| b.is_ascii_digit()) {
                return Err(bad());
            }
            v.parse().map_err(|_| bad())
        };
        let (start, end) = (parse_offset(start)?, parse_offset(end)?);
        if start >= end {
            return Err(bad());
        }
        Ok(ResourceName {
            path: ModelPath::parse(path)?,
            shard: Some(ShardRange { start, end }),
        })
    }
}

impl fmt::Display for ResourceName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.shard {
            None => write!(f, "{}", self.path),
            Some(r) => write!(f, "{}:{}:{}", self.path, r.start, r.end),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rejects_escaping_names() {
        for bad in [
            "",
            "/etc/passwd",
            "../x",
            "a/../../x",
            "a//b",
            "a/./b",
            "a/",
            "./a",
            "a\0b",
        ] {
            assert!(ModelPath::parse(bad).is_err(), "{bad:?} accepted");
        }
        assert!(ModelPath::parse(".").unwrap().is_root());
        assert_eq!(ModelPath::parse("a/b.c").unwrap().to_string(), "a/b.c");
    }

    #[test]
    fn orders_like_pure_posix_path() {
        // Measured with model-signing 1.1.1 (model-signing-format.md section 1.6).
        let mut names: Vec<ModelPath> = ["é.txt", "a0", "a.txt", "a-b/c", "a/b", "B.txt"]
            .iter()
            .map(|s| ModelPath::parse(s).unwrap())
            .collect();
        names.sort();
        let sorted: Vec<String> = names.iter().map(|n| n.to_string()).collect();
        assert_eq!(sorted, ["B.txt", "a/b", "a-b/c", "a.txt", "a0", "é.txt"]);
    }

    #[test]
    fn shards_sort_numerically() {
        let mut names: Vec<ResourceName> = ["f:24:25", "f:4:8", "f:0:4", "e:8:9"]
            .iter()
            .map(|s| ResourceName::parse_shard(s).unwrap())
            .collect();
        names.sort();
        let sorted: Vec<String> = names.iter().map(|n| n.to_string()).collect();
        assert_eq!(sorted, ["e:8:9", "f:0:4", "f:4:8", "f:24:25"]);
    }

    #[test]
    fn shard_names_are_strict() {
        assert_eq!(
            ResourceName::parse_shard(".:0:8").unwrap().to_string(),
            ".:0:8"
        );
        for bad in [
            "f:1", "f:x:2", "f:2:2", "f:3:2", "f:-1:2", "/f:0:1", "../f:0:1", "f:+1:2",
        ] {
            assert!(ResourceName::parse_shard(bad).is_err(), "{bad:?} accepted");
        }
    }
}
