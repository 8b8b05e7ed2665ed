//! Hash algorithms a manifest may use, and their streaming state.

use std::fmt;
use std::str::FromStr;

use sha2::Digest as _;

/// A hash algorithm for resource digests. The root digest is always SHA-256.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum HashAlgorithm {
    /// SHA-256 (the default), 32-byte digests.
    Sha256,
    /// BLAKE2b-512, 64-byte digests. Recorded as `blake2b` (the peer's API calls it `blake2`).
    Blake2b,
    /// BLAKE3, 32-byte digests.
    Blake3,
}

impl HashAlgorithm {
    /// The name recorded in `hash_type` and in a files-method resource's `algorithm`.
    pub fn name(self) -> &'static str {
        match self {
            HashAlgorithm::Sha256 => "sha256",
            HashAlgorithm::Blake2b => "blake2b",
            HashAlgorithm::Blake3 => "blake3",
        }
    }

    /// Length of a digest in bytes.
    pub fn digest_len(self) -> usize {
        match self {
            HashAlgorithm::Sha256 | HashAlgorithm::Blake3 => 32,
            HashAlgorithm::Blake2b => 64,
        }
    }

    /// A fresh streaming hasher.
    pub fn hasher(self) -> Hasher {
        match self {
            HashAlgorithm::Sha256 => Hasher::Sha256(sha2::Sha256::new()),
            HashAlgorithm::Blake2b => Hasher::Blake2b(Box::default()),
            HashAlgorithm::Blake3 => Hasher::Blake3(Box::default()),
        }
    }
}

impl fmt::Display for HashAlgorithm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// The error of parsing an unknown hash algorithm name.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown hash algorithm {0:?}: use sha256, blake2b or blake3")]
pub struct UnknownHashAlgorithm(pub String);

impl FromStr for HashAlgorithm {
    type Err = UnknownHashAlgorithm;

    /// Accepts the recorded names and `blake2`, the peer's API spelling of `blake2b`.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "sha256" => Ok(HashAlgorithm::Sha256),
            "blake2b" | "blake2" => Ok(HashAlgorithm::Blake2b),
            "blake3" => Ok(HashAlgorithm::Blake3),
            other => Err(UnknownHashAlgorithm(other.to_string())),
        }
    }
}

/// Streaming state of one digest computation.
pub enum Hasher {
    /// SHA-256 (uses SHA-NI when the CPU has it).
    Sha256(sha2::Sha256),
    /// BLAKE2b-512.
    Blake2b(Box<blake2::Blake2b512>),
    /// BLAKE3.
    Blake3(Box<blake3::Hasher>),
}

impl Hasher {
    /// Feeds bytes.
    pub fn update(&mut self, data: &[u8]) {
        match self {
            Hasher::Sha256(h) => h.update(data),
            Hasher::Blake2b(h) => h.update(data),
            Hasher::Blake3(h) => {
                h.update(data);
            }
        }
    }

    /// The final digest.
    pub fn finish(self) -> Vec<u8> {
        match self {
            Hasher::Sha256(h) => h.finalize().to_vec(),
            Hasher::Blake2b(h) => h.finalize().to_vec(),
            Hasher::Blake3(h) => h.finalize().as_bytes().to_vec(),
        }
    }
}

/// SHA-256 of a byte string.
pub fn sha256(data: &[u8]) -> [u8; 32] {
    sha2::Sha256::digest(data).into()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hex_of(alg: HashAlgorithm, data: &[u8]) -> String {
        let mut h = alg.hasher();
        h.update(data);
        hex::encode(h.finish())
    }

    #[test]
    fn known_answers() {
        assert_eq!(
            hex_of(HashAlgorithm::Sha256, b""),
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
        assert_eq!(
            hex_of(HashAlgorithm::Blake3, b""),
            "af1349b9f5f9a1a6a0404dea36dcc9499bcb25c9adc112b7cc9a93cae41f3262"
        );
        assert!(hex_of(HashAlgorithm::Blake2b, b"").starts_with("786a02f742015903"));
        assert_eq!(hex_of(HashAlgorithm::Blake2b, b"").len(), 128);
    }

    #[test]
    fn names_round_trip() {
        for alg in [
            HashAlgorithm::Sha256,
            HashAlgorithm::Blake2b,
            HashAlgorithm::Blake3,
        ] {
            assert_eq!(alg.name().parse::<HashAlgorithm>().unwrap(), alg);
        }
        assert_eq!(
            "blake2".parse::<HashAlgorithm>().unwrap(),
            HashAlgorithm::Blake2b
        );
        assert!("md5".parse::<HashAlgorithm>().is_err());
    }
}
