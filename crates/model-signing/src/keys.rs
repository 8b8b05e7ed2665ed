//! EC keys (P-256, P-384, P-521) in PEM: loading, signing, verifying, and the key hint.

use aws_lc_rs::encoding::AsDer;
use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{self, EcdsaKeyPair, KeyPair, UnparsedPublicKey};
use const_oid::ObjectIdentifier;
use der::{Decode, Encode};

use crate::hashing::sha256;

const ID_EC_PUBLIC_KEY: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.10045.2.1");
const P256: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.10045.3.1.7");
const P384: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.132.0.34");
const P521: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.132.0.35");

/// Why a key cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    /// No PEM block of a usable kind.
    #[error("{what}: no {expected} PEM block found")]
    NoPem {
        /// Which input.
        what: String,
        /// The label looked for.
        expected: &'static str,
    },
    /// Not an EC key on P-256, P-384 or P-521.
    #[error("{what}: {found} keys are not supported; use an EC key on P-256, P-384 or P-521")]
    Unsupported {
        /// Which input.
        what: String,
        /// What it is.
        found: String,
    },
    /// An encrypted key without a password, or a wrong password.
    #[error("{0}")]
    Password(String),
    /// The crypto library could not sign (no usable random source).
    #[error("ECDSA signing failed: the system's random source is not usable")]
    Sign,
    /// An encrypted key and no password given.
    #[error("{0} is encrypted")]
    Encrypted(String),
    /// Bad DER inside the PEM.
    #[error("{what}: malformed key ({detail})")]
    Malformed {
        /// Which input.
        what: String,
        /// The parser's message.
        detail: String,
    },
}

/// The curves model-signing allows, each with its hash.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Curve {
    /// P-256 with SHA-256.
    P256,
    /// P-384 with SHA-384.
    P384,
    /// P-521 with SHA-512.
    P521,
}

impl Curve {
    fn from_oid(what: &str, oid: Option<ObjectIdentifier>) -> Result<Self, KeyError> {
        match oid {
            Some(P256) => Ok(Curve::P256),
            Some(P384) => Ok(Curve::P384),
            Some(P521) => Ok(Curve::P521),
            Some(o) if o == ObjectIdentifier::new_unwrap("1.3.132.0.10") => {
                Err(KeyError::Unsupported {
                    what: what.into(),
                    found: "secp256k1".into(),
                })
            }
            Some(o) => Err(KeyError::Unsupported {
                what: what.into(),
                found: format!("EC curve {o}"),
            }),
            None => Err(KeyError::Unsupported {
                what: what.into(),
                found: "EC keys without a named curve".into(),
            }),
        }
    }

    fn signing(self) -> &'static signature::EcdsaSigningAlgorithm {
        match self {
            Curve::P256 => &signature::ECDSA_P256_SHA256_ASN1_SIGNING,
            Curve::P384 => &signature::ECDSA_P384_SHA384_ASN1_SIGNING,
            Curve::P521 => &signature::ECDSA_P521_SHA512_ASN1_SIGNING,
        }
    }

    fn verifying(self) -> &'static signature::EcdsaVerificationAlgorithm {
        match self {
            Curve::P256 => &signature::ECDSA_P256_SHA256_ASN1,
            Curve::P384 => &signature::ECDSA_P384_SHA384_ASN1,
            Curve::P521 => &signature::ECDSA_P521_SHA512_ASN1,
        }
    }

    /// v0.2.0 signed certificates with SHA-256 whatever the curve.
    fn verifying_sha256(self) -> &'static signature::EcdsaVerificationAlgorithm {
        match self {
            Curve::P256 => &signature::ECDSA_P256_SHA256_ASN1,
            Curve::P384 => &signature::ECDSA_P384_SHA256_ASN1,
            Curve::P521 => &signature::ECDSA_P521_SHA256_ASN1,
        }
    }

    /// Name, e.g. `P-256`.
    pub fn name(self) -> &'static str {
        match self {
            Curve::P256 => "P-256",
            Curve::P384 => "P-384",
            Curve::P521 => "P-521",
        }
    }
}

/// One PEM block.
pub struct PemBlock {
    /// The label after `BEGIN `.
    pub label: String,
    /// Whether it had RFC 1421 headers (`Proc-Type: 4,ENCRYPTED`).
    pub has_headers: bool,
    /// Decoded body.
    pub der: Vec<u8>,
}

/// Every PEM block in `text`, skipping any text around them (openssl writes dumps before).
pub fn pem_blocks(text: &[u8]) -> Vec<PemBlock> {
    let text = String::from_utf8_lossy(text);
    let mut out = Vec::new();
    let mut rest: &str = &text;
    while let Some(begin) = rest.find("-----BEGIN ") {
        let after = &rest[begin + 11..];
        let Some(label_end) = after.find("-----") else {
            break;
        };
        let label = after[..label_end].to_string();
        let body_start = &after[label_end + 5..];
        let end_marker = format!("-----END {label}-----");
        let Some(end) = body_start.find(&end_marker) else {
            break;
        };
        let body = &body_start[..end];
        let has_headers = body.contains(':');
        let b64: String = body
            .lines()
            .filter(|l| !l.contains(':'))
            .flat_map(|l| l.chars())
            .filter(|c| !c.is_whitespace())
            .collect();
        if let Ok(der) = crate::bundle::decode_base64("PEM", &b64) {
            out.push(PemBlock {
                label,
                has_headers,
                der,
            });
        }
        rest = &body_start[end + end_marker.len()..];
    }
    out
}

/// Encodes DER as PEM with 64-character lines, as Python's `cryptography` writes it.
pub fn to_pem(label: &str, der: &[u8]) -> String {
    let b64 = crate::bundle::encode_base64(der);
    let mut s = format!("-----BEGIN {label}-----\n");
    for chunk in b64.as_bytes().chunks(64) {
        // Base64 is ASCII, so the conversion is lossless.
        s.push_str(&String::from_utf8_lossy(chunk));
        s.push('\n');
    }
    s.push_str(&format!("-----END {label}-----\n"));
    s
}

/// An EC public key.
#[derive(Debug, Clone)]
pub struct PublicKey {
    curve: Curve,
    point: Vec<u8>,
    spki_der: Vec<u8>,
}

impl PublicKey {
    /// Reads a `PUBLIC KEY` (SubjectPublicKeyInfo) PEM.
    pub fn from_pem(what: &str, pem: &[u8]) -> Result<Self, KeyError> {
        let block = pem_blocks(pem)
            .into_iter()
            .find(|b| b.label == "PUBLIC KEY")
            .ok_or_else(|| KeyError::NoPem {
                what: what.into(),
                expected: "PUBLIC KEY",
            })?;
        Self::from_spki_der(what, &block.der)
    }

    /// Reads a DER SubjectPublicKeyInfo.
    pub fn from_spki_der(what: &str, der: &[u8]) -> Result<Self, KeyError> {
        let spki =
            spki::SubjectPublicKeyInfoRef::from_der(der).map_err(|e| KeyError::Malformed {
                what: what.into(),
                detail: e.to_string(),
            })?;
        if spki.algorithm.oid != ID_EC_PUBLIC_KEY {
            return Err(KeyError::Unsupported {
                what: what.into(),
                found: algorithm_name(spki.algorithm.oid),
            });
        }
        let curve_oid = spki
            .algorithm
            .parameters
            .and_then(|p| p.decode_as::<ObjectIdentifier>().ok());
        let curve = Curve::from_oid(what, curve_oid)?;
        let point = spki.subject_public_key.raw_bytes().to_vec();
        Ok(PublicKey {
            curve,
            point,
            spki_der: der.to_vec(),
        })
    }

    /// The curve.
    pub fn curve(&self) -> Curve {
        self.curve
    }

    /// The DER SubjectPublicKeyInfo.
    pub fn spki_der(&self) -> &[u8] {
        &self.spki_der
    }

    /// `hex(sha256(PEM SubjectPublicKeyInfo))`: what the peer writes in `publicKey.hint`.
    pub fn hint(&self) -> String {
        hex::encode(sha256(to_pem("PUBLIC KEY", &self.spki_der).as_bytes()))
    }

    /// Checks a DER ECDSA signature made with the curve's hash.
    pub fn verify(&self, message: &[u8], sig: &[u8]) -> bool {
        UnparsedPublicKey::new(self.curve.verifying(), &self.point)
            .verify(message, sig)
            .is_ok()
    }

    /// Checks a DER ECDSA signature made with SHA-256 whatever the curve (v0.2.0 certificates).
    pub fn verify_sha256(&self, message: &[u8], sig: &[u8]) -> bool {
        UnparsedPublicKey::new(self.curve.verifying_sha256(), &self.point)
            .verify(message, sig)
            .is_ok()
    }
}

impl PartialEq for PublicKey {
    fn eq(&self, other: &Self) -> bool {
        self.curve == other.curve && self.point == other.point
    }
}

fn algorithm_name(oid: ObjectIdentifier) -> String {
    match oid.to_string().as_str() {
        "1.2.840.113549.1.1.1" => "RSA".into(),
        "1.3.101.112" => "Ed25519".into(),
        "1.3.101.113" => "Ed448".into(),
        other => format!("algorithm {other}"),
    }
}

/// An EC private key.
pub struct PrivateKey {
    pair: EcdsaKeyPair,
    public: PublicKey,
}

impl PrivateKey {
    /// Reads an `EC PRIVATE KEY` (SEC1), `PRIVATE KEY` (PKCS#8) or `ENCRYPTED PRIVATE KEY`
    /// (PKCS#8, PBES2) PEM. `password` is needed for the last.
    pub fn from_pem(what: &str, pem: &[u8], password: Option<&[u8]>) -> Result<Self, KeyError> {
        let blocks = pem_blocks(pem);
        let block = blocks
            .iter()
            .find(|b| {
                matches!(
                    b.label.as_str(),
                    "EC PRIVATE KEY" | "PRIVATE KEY" | "ENCRYPTED PRIVATE KEY"
                )
            })
            .ok_or_else(
                || match blocks.iter().find(|b| b.label.ends_with("PRIVATE KEY")) {
                    Some(b) => KeyError::Unsupported {
                        what: what.into(),
                        found: b.label.trim_end_matches(" PRIVATE KEY").to_string(),
                    },
                    None => KeyError::NoPem {
                        what: what.into(),
                        expected: "PRIVATE KEY",
                    },
                },
            )?;
        let malformed = |e: &dyn std::fmt::Display| KeyError::Malformed {
            what: what.into(),
            detail: e.to_string(),
        };
        let (curve, der) = match block.label.as_str() {
            "EC PRIVATE KEY" => {
                if block.has_headers {
                    return Err(KeyError::Password(format!(
                        "{what}: legacy OpenSSL-encrypted EC keys are not supported; convert it with `openssl pkcs8 -topk8 -v2 aes-256-cbc`"
                    )));
                }
                let key = sec1::EcPrivateKey::from_der(&block.der).map_err(|e| malformed(&e))?;
                let oid = key.parameters.and_then(|p| p.named_curve());
                (Curve::from_oid(what, oid)?, block.der.clone())
            }
            "PRIVATE KEY" => (pkcs8_curve(what, &block.der)?, block.der.clone()),
            _ => {
                let Some(password) = password else {
                    return Err(KeyError::Encrypted(what.to_string()));
                };
                let enc = pkcs8::EncryptedPrivateKeyInfo::from_der(&block.der)
                    .map_err(|e| malformed(&e))?;
                let doc = enc
                    .decrypt(password)
                    .map_err(|_| KeyError::Password(format!("{what}: cannot decrypt the key: wrong password, or an unsupported encryption scheme (PBES2 with PBKDF2 or scrypt and AES is supported)")))?;
                let der = doc.as_bytes().to_vec();
                (pkcs8_curve(what, &der)?, der)
            }
        };
        let pair =
            EcdsaKeyPair::from_private_key_der(curve.signing(), &der).map_err(|e| malformed(&e))?;
        let spki = pair.public_key().as_der().map_err(|e| malformed(&e))?;
        let public = PublicKey::from_spki_der(what, spki.as_ref())?;
        Ok(PrivateKey { pair, public })
    }

    /// Its public key.
    pub fn public_key(&self) -> &PublicKey {
        &self.public
    }

    /// A DER ECDSA signature over `message` with the curve's hash.
    pub fn sign(&self, message: &[u8]) -> Result<Vec<u8>, KeyError> {
        // With a key that loaded, this fails only if the system's random source does.
        let sig = self
            .pair
            .sign(&SystemRandom::new(), message)
            .map_err(|_| KeyError::Sign)?;
        Ok(sig.as_ref().to_vec())
    }
}

fn pkcs8_curve(what: &str, der: &[u8]) -> Result<Curve, KeyError> {
    let info = pkcs8::PrivateKeyInfo::from_der(der).map_err(|e| KeyError::Malformed {
        what: what.into(),
        detail: e.to_string(),
    })?;
    if info.algorithm.oid != ID_EC_PUBLIC_KEY {
        return Err(KeyError::Unsupported {
            what: what.into(),
            found: algorithm_name(info.algorithm.oid),
        });
    }
    let oid = info
        .algorithm
        .parameters
        .and_then(|p| p.decode_as::<ObjectIdentifier>().ok());
    Curve::from_oid(what, oid)
}

/// Re-encodes an SPKI (used by tests and by certificate handling).
pub fn spki_of_certificate(cert: &x509_cert::Certificate) -> Result<Vec<u8>, der::Error> {
    cert.tbs_certificate.subject_public_key_info.to_der()
}

/// A new P-256 private key as PKCS#8 PEM, for the crate's unit tests.
#[cfg(test)]
pub(crate) fn fresh_p256_private_pem() -> String {
    let doc = EcdsaKeyPair::generate_pkcs8(
        &signature::ECDSA_P256_SHA256_ASN1_SIGNING,
        &SystemRandom::new(),
    )
    .expect("generating a P-256 key");
    to_pem("PRIVATE KEY", doc.as_ref())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pem_blocks_skip_text_and_find_all() {
        let text = b"junk\n-----BEGIN A-----\naGk=\n-----END A-----\nmore\n-----BEGIN B-----\nYQ==\n-----END B-----\n";
        let blocks = pem_blocks(text);
        assert_eq!(blocks.len(), 2);
        assert_eq!(blocks[0].label, "A");
        assert_eq!(blocks[0].der, b"hi");
        assert_eq!(blocks[1].der, b"a");
    }

    #[test]
    fn sign_and_verify_round_trip_on_every_curve() {
        for (alg, curve) in [
            (&signature::ECDSA_P256_SHA256_ASN1_SIGNING, Curve::P256),
            (&signature::ECDSA_P384_SHA384_ASN1_SIGNING, Curve::P384),
            (&signature::ECDSA_P521_SHA512_ASN1_SIGNING, Curve::P521),
        ] {
            let doc = EcdsaKeyPair::generate_pkcs8(alg, &SystemRandom::new()).unwrap();
            let key =
                PrivateKey::from_pem("k", to_pem("PRIVATE KEY", doc.as_ref()).as_bytes(), None)
                    .unwrap();
            assert_eq!(key.public_key().curve(), curve);
            let sig = key.sign(b"msg").unwrap();
            assert!(key.public_key().verify(b"msg", &sig));
            assert!(!key.public_key().verify(b"msh", &sig));
        }
    }

    #[test]
    fn missing_pem_is_explained() {
        let err = PrivateKey::from_pem("key.pem", b"hello", None)
            .err()
            .unwrap();
        assert_eq!(err.to_string(), "key.pem: no PRIVATE KEY PEM block found");
        let err = PrivateKey::from_pem(
            "key.pem",
            b"-----BEGIN RSA PRIVATE KEY-----\nYQ==\n-----END RSA PRIVATE KEY-----\n",
            None,
        )
        .err()
        .unwrap();
        assert!(
            err.to_string().contains("RSA keys are not supported"),
            "{err}"
        );
    }
}
