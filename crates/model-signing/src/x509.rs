//! X.509 for the certificate method: parsing PEM/DER certificates and validating a signing
//! certificate's chain to CA roots the user names.
//!
//! This is a small path validator of our own because the general ones reject what the peer's
//! certificates legitimately contain (webpki refuses an end-entity certificate marked `CA:TRUE`,
//! as upstream's golden leaf is). It checks, at the current time: every signature in the path;
//! validity periods; issuers are CAs (`basicConstraints CA:TRUE`, `keyCertSign` when keyUsage is
//! present, path length); and refuses unknown critical extensions and name constraints (which
//! it does not implement) instead of ignoring them.

use std::time::{Duration, SystemTime};

use aws_lc_rs::signature::{self, UnparsedPublicKey, VerificationAlgorithm};
use const_oid::ObjectIdentifier;
use der::{Decode, Encode, Reader};
use x509_cert::ext::pkix::{BasicConstraints, ExtendedKeyUsage, KeyUsage, SubjectAltName};

use crate::keys::{PublicKey, pem_blocks};
use crate::limits::{Limit, LimitExceeded, MAX_CHAIN_CERTIFICATES, MAX_CHAIN_SIGNATURE_CHECKS};

const BASIC_CONSTRAINTS: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.5.29.19");
const KEY_USAGE: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.5.29.15");
const EXT_KEY_USAGE: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.5.29.37");
const SUBJECT_ALT_NAME: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.5.29.17");
const NAME_CONSTRAINTS: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.5.29.30");
const CERTIFICATE_POLICIES: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.5.29.32");
const CODE_SIGNING: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.6.1.5.5.7.3.3");
const ID_EC_PUBLIC_KEY: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.10045.2.1");
const RSA_ENCRYPTION: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.1.1");
const P256: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.10045.3.1.7");
const P384: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.132.0.34");
const P521: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.132.0.35");

/// The longest chain we build; real ones have 2 or 3 certificates.
const MAX_DEPTH: usize = 8;

/// Why a certificate or chain is not acceptable.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CertError {
    /// Not a parseable certificate.
    #[error("{what}: not a valid X.509 certificate ({detail})")]
    Malformed {
        /// Which certificate.
        what: String,
        /// The parser's message.
        detail: String,
    },
    /// No CERTIFICATE block in a PEM file.
    #[error("{0}: no CERTIFICATE PEM block found")]
    NoCertificates(String),
    /// Past notAfter.
    #[error(
        "certificate '{subject}' expired at {not_after} (unix time); it cannot be trusted any more: re-sign with a valid certificate"
    )]
    Expired {
        /// Its subject.
        subject: String,
        /// Its notAfter, seconds since the epoch.
        not_after: u64,
    },
    /// Before notBefore.
    #[error(
        "certificate '{subject}' is not valid before {not_before} (unix time); check the clock, or wait until it is valid"
    )]
    NotYetValid {
        /// Its subject.
        subject: String,
        /// Its notBefore, seconds since the epoch.
        not_before: u64,
    },
    /// No path to a given root.
    #[error(
        "certificate '{subject}' was issued by '{issuer}', which is not one of the trusted CAs and not in the signature's chain"
    )]
    UnknownIssuer {
        /// The certificate whose issuer was not found.
        subject: String,
        /// Its issuer.
        issuer: String,
    },
    /// A certificate's signature does not verify with its issuer's key.
    #[error("the signature on certificate '{subject}' does not verify with the key of '{issuer}'")]
    BadSignature {
        /// The certificate.
        subject: String,
        /// The issuer tried.
        issuer: String,
    },
    /// An issuer that is not a CA.
    #[error(
        "certificate '{0}' issues other certificates but is not a CA (basicConstraints CA:TRUE, keyUsage keyCertSign)"
    )]
    NotCa(String),
    /// Path length constraint exceeded.
    #[error(
        "certificate '{0}' allows fewer intermediate CAs below it than this chain has (pathLenConstraint)"
    )]
    PathLength(String),
    /// An extension we do not process is marked critical.
    #[error(
        "certificate '{subject}' has critical extension {oid}, which this verifier does not support; refusing it"
    )]
    UnsupportedCritical {
        /// The certificate.
        subject: String,
        /// The extension.
        oid: String,
    },
    /// Signature algorithm or key type we cannot check.
    #[error(
        "certificate '{subject}': unsupported signature algorithm {algorithm} with this issuer key"
    )]
    UnsupportedAlgorithm {
        /// The certificate.
        subject: String,
        /// The algorithm OID.
        algorithm: String,
    },
    /// The leaf cannot sign.
    #[error(
        "signing certificate '{0}' cannot be used for signing: it needs keyUsage digitalSignature or extendedKeyUsage codeSigning"
    )]
    NotForSigning(String),
    /// Chain longer than [`MAX_DEPTH`].
    #[error("no chain of at most {MAX_DEPTH} certificates leads to a trusted CA")]
    TooDeep,
    /// The chain, or the search for a path through it, exceeds one of the verifier's limits.
    #[error(transparent)]
    Limit(#[from] LimitExceeded),
}

#[derive(Clone, Copy)]
enum PssHash {
    Sha256,
    Sha384,
    Sha512,
}

/// A parsed certificate with its DER.
#[derive(Debug, Clone)]
pub struct Certificate {
    der: Vec<u8>,
    tbs_raw: std::ops::Range<usize>,
    cert: x509_cert::Certificate,
}

impl PartialEq for Certificate {
    fn eq(&self, other: &Self) -> bool {
        self.der == other.der
    }
}

fn unix(t: SystemTime) -> u64 {
    t.duration_since(SystemTime::UNIX_EPOCH)
        .unwrap_or(Duration::ZERO)
        .as_secs()
}

impl Certificate {
    /// Parses DER.
    pub fn from_der(what: &str, der: &[u8]) -> Result<Self, CertError> {
        let malformed = |e: der::Error| CertError::Malformed {
            what: what.into(),
            detail: e.to_string(),
        };
        let cert = x509_cert::Certificate::from_der(der).map_err(malformed)?;
        // The signature covers the TBS bytes exactly as encoded: find them, never re-encode.
        let mut reader = der::SliceReader::new(der).map_err(malformed)?;
        let outer = der::Header::decode(&mut reader).map_err(malformed)?;
        let start = u32::from(reader.position()) as usize;
        let tbs = reader.tlv_bytes().map_err(malformed)?;
        let _ = outer;
        Ok(Certificate {
            der: der.to_vec(),
            tbs_raw: start..start + tbs.len(),
            cert,
        })
    }

    /// Every certificate in a PEM file (text around the blocks is skipped).
    pub fn all_from_pem(what: &str, pem: &[u8]) -> Result<Vec<Self>, CertError> {
        let certs: Vec<Self> = pem_blocks(pem)
            .iter()
            .filter(|b| b.label == "CERTIFICATE")
            .map(|b| Self::from_der(what, &b.der))
            .collect::<Result<_, _>>()?;
        if certs.is_empty() {
            return Err(CertError::NoCertificates(what.into()));
        }
        Ok(certs)
    }

    /// The DER encoding.
    pub fn der(&self) -> &[u8] {
        &self.der
    }

    /// The subject, RFC 4514.
    pub fn subject(&self) -> String {
        self.cert.tbs_certificate.subject.to_string()
    }

    /// The issuer, RFC 4514.
    pub fn issuer(&self) -> String {
        self.cert.tbs_certificate.issuer.to_string()
    }

    fn subject_der(&self) -> Vec<u8> {
        self.cert
            .tbs_certificate
            .subject
            .to_der()
            .unwrap_or_default()
    }

    fn issuer_der(&self) -> Vec<u8> {
        self.cert
            .tbs_certificate
            .issuer
            .to_der()
            .unwrap_or_default()
    }

    /// notBefore and notAfter.
    pub fn validity(&self) -> (SystemTime, SystemTime) {
        let v = &self.cert.tbs_certificate.validity;
        (v.not_before.to_system_time(), v.not_after.to_system_time())
    }

    /// The subject public key, if it is an EC key model-signing can use.
    pub fn public_key(&self) -> Result<PublicKey, crate::keys::KeyError> {
        let spki = self
            .cert
            .tbs_certificate
            .subject_public_key_info
            .to_der()
            .map_err(|e| crate::keys::KeyError::Malformed {
                what: "certificate key".into(),
                detail: e.to_string(),
            })?;
        PublicKey::from_spki_der(
            &format!("the key of certificate '{}'", self.subject()),
            &spki,
        )
    }

    /// Subject alternative names as text (`email:…`, `URI:…`, `DNS:…`).
    pub fn san(&self) -> Vec<String> {
        use x509_cert::ext::pkix::name::GeneralName;
        let Some(ext) = self.extension(SUBJECT_ALT_NAME) else {
            return Vec::new();
        };
        let Ok(san) = SubjectAltName::from_der(ext.extn_value.as_bytes()) else {
            return Vec::new();
        };
        san.0
            .iter()
            .filter_map(|n| match n {
                GeneralName::Rfc822Name(s) => Some(format!("email:{}", s.as_str())),
                GeneralName::UniformResourceIdentifier(s) => Some(format!("URI:{}", s.as_str())),
                GeneralName::DnsName(s) => Some(format!("DNS:{}", s.as_str())),
                _ => None,
            })
            .collect()
    }

    fn extension(&self, oid: ObjectIdentifier) -> Option<&x509_cert::ext::Extension> {
        self.cert
            .tbs_certificate
            .extensions
            .as_ref()?
            .iter()
            .find(|e| e.extn_id == oid)
    }

    fn basic_constraints(&self) -> Option<BasicConstraints> {
        BasicConstraints::from_der(self.extension(BASIC_CONSTRAINTS)?.extn_value.as_bytes()).ok()
    }

    fn key_usage(&self) -> Option<KeyUsage> {
        KeyUsage::from_der(self.extension(KEY_USAGE)?.extn_value.as_bytes()).ok()
    }

    fn has_code_signing_eku(&self) -> bool {
        self.extension(EXT_KEY_USAGE)
            .and_then(|e| ExtendedKeyUsage::from_der(e.extn_value.as_bytes()).ok())
            .is_some_and(|eku| eku.0.contains(&CODE_SIGNING))
    }

    fn check_critical_extensions(&self) -> Result<(), CertError> {
        for ext in self.cert.tbs_certificate.extensions.iter().flatten() {
            let known = [
                BASIC_CONSTRAINTS,
                KEY_USAGE,
                EXT_KEY_USAGE,
                SUBJECT_ALT_NAME,
                CERTIFICATE_POLICIES,
            ];
            if ext.critical && !known.contains(&ext.extn_id) || ext.extn_id == NAME_CONSTRAINTS {
                return Err(CertError::UnsupportedCritical {
                    subject: self.subject(),
                    oid: ext.extn_id.to_string(),
                });
            }
        }
        Ok(())
    }

    fn check_time(&self, now: SystemTime) -> Result<(), CertError> {
        let (not_before, not_after) = self.validity();
        if now < not_before {
            return Err(CertError::NotYetValid {
                subject: self.subject(),
                not_before: unix(not_before),
            });
        }
        if now > not_after {
            return Err(CertError::Expired {
                subject: self.subject(),
                not_after: unix(not_after),
            });
        }
        Ok(())
    }

    /// Checks that `issuer`'s key made this certificate's signature.
    fn check_signed_by(&self, issuer: &Certificate) -> Result<(), CertError> {
        let spki = &issuer.cert.tbs_certificate.subject_public_key_info;
        let sig_alg = self.cert.signature_algorithm.oid.to_string();
        let curve = spki
            .algorithm
            .parameters
            .as_ref()
            .and_then(|p| p.decode_as::<ObjectIdentifier>().ok());
        let alg: &'static dyn VerificationAlgorithm =
            match (spki.algorithm.oid, curve, sig_alg.as_str()) {
                (RSA_ENCRYPTION, _, "1.2.840.113549.1.1.11") => {
                    &signature::RSA_PKCS1_2048_8192_SHA256
                }
                (RSA_ENCRYPTION, _, "1.2.840.113549.1.1.12") => {
                    &signature::RSA_PKCS1_2048_8192_SHA384
                }
                (RSA_ENCRYPTION, _, "1.2.840.113549.1.1.13") => {
                    &signature::RSA_PKCS1_2048_8192_SHA512
                }
                (RSA_ENCRYPTION, _, "1.2.840.113549.1.1.10") => match self.pss_hash() {
                    Some(PssHash::Sha256) => &signature::RSA_PSS_2048_8192_SHA256,
                    Some(PssHash::Sha384) => &signature::RSA_PSS_2048_8192_SHA384,
                    Some(PssHash::Sha512) => &signature::RSA_PSS_2048_8192_SHA512,
                    None => {
                        return Err(CertError::UnsupportedAlgorithm {
                            subject: self.subject(),
                            algorithm: "RSASSA-PSS with SHA-1 or unknown parameters".into(),
                        });
                    }
                },
                (ID_EC_PUBLIC_KEY, Some(P256), "1.2.840.10045.4.3.2") => {
                    &signature::ECDSA_P256_SHA256_ASN1
                }
                (ID_EC_PUBLIC_KEY, Some(P256), "1.2.840.10045.4.3.3") => {
                    &signature::ECDSA_P256_SHA384_ASN1
                }
                (ID_EC_PUBLIC_KEY, Some(P384), "1.2.840.10045.4.3.2") => {
                    &signature::ECDSA_P384_SHA256_ASN1
                }
                (ID_EC_PUBLIC_KEY, Some(P384), "1.2.840.10045.4.3.3") => {
                    &signature::ECDSA_P384_SHA384_ASN1
                }
                (ID_EC_PUBLIC_KEY, Some(P384), "1.2.840.10045.4.3.4") => {
                    &signature::ECDSA_P384_SHA512_ASN1
                }
                (ID_EC_PUBLIC_KEY, Some(P521), "1.2.840.10045.4.3.2") => {
                    &signature::ECDSA_P521_SHA256_ASN1
                }
                (ID_EC_PUBLIC_KEY, Some(P521), "1.2.840.10045.4.3.3") => {
                    &signature::ECDSA_P521_SHA384_ASN1
                }
                (ID_EC_PUBLIC_KEY, Some(P521), "1.2.840.10045.4.3.4") => {
                    &signature::ECDSA_P521_SHA512_ASN1
                }
                _ => {
                    return Err(CertError::UnsupportedAlgorithm {
                        subject: self.subject(),
                        algorithm: sig_alg,
                    });
                }
            };
        let key = UnparsedPublicKey::new(alg, spki.subject_public_key.raw_bytes());
        key.verify(
            &self.der[self.tbs_raw.clone()],
            self.cert.signature.raw_bytes(),
        )
        .map_err(|_| CertError::BadSignature {
            subject: self.subject(),
            issuer: issuer.subject(),
        })
    }

    /// The hash of an RSASSA-PSS signature, from its parameters. aws-lc-rs then requires MGF1
    /// with the same hash and a salt as long as the hash, so any other combination fails the
    /// signature check (closed), never passes it.
    fn pss_hash(&self) -> Option<PssHash> {
        let params = self
            .cert
            .signature_algorithm
            .parameters
            .as_ref()?
            .to_der()
            .ok()?;
        // RSASSA-PSS-params: its first OID is hashAlgorithm (absent means SHA-1: unsupported).
        let oids: [(&[u8], PssHash); 3] = [
            (
                &[
                    0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x01,
                ],
                PssHash::Sha256,
            ),
            (
                &[
                    0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x02,
                ],
                PssHash::Sha384,
            ),
            (
                &[
                    0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x03,
                ],
                PssHash::Sha512,
            ),
        ];
        let first_oid = params.windows(2).position(|w| w == [0x06, 0x09])?;
        oids.iter()
            .find(|(oid, _)| params[first_oid..].starts_with(oid))
            .map(|(_, h)| *h)
    }

    /// Checks that this certificate may issue a chain with `cas_below` intermediate CAs under it.
    fn check_can_issue(&self, cas_below: usize, is_anchor: bool) -> Result<(), CertError> {
        match self.basic_constraints() {
            Some(bc) if bc.ca => {
                if bc
                    .path_len_constraint
                    .is_some_and(|max| cas_below > usize::from(max))
                {
                    return Err(CertError::PathLength(self.subject()));
                }
            }
            // A version-1 root has no extensions at all; OpenSSL trusts those as anchors.
            None if is_anchor && self.cert.tbs_certificate.extensions.is_none() => {}
            _ => return Err(CertError::NotCa(self.subject())),
        }
        if self.key_usage().is_some_and(|ku| !ku.key_cert_sign()) {
            return Err(CertError::NotCa(self.subject()));
        }
        Ok(())
    }
}

/// Validates `leaf` against `anchors` (trusted roots or intermediates the user named) with
/// `intermediates` from the signature, at `now`. Returns the path, leaf first, anchor last.
///
/// The search is bounded: at most [`MAX_CHAIN_CERTIFICATES`] certificates from the signature,
/// paths of at most [`MAX_DEPTH`], and at most [`MAX_CHAIN_SIGNATURE_CHECKS`] candidate issuers
/// tried in all (trusted CAs included), whatever the certificates' names and keys.
pub fn verify_chain<'a>(
    leaf: &'a Certificate,
    intermediates: &'a [Certificate],
    anchors: &'a [Certificate],
    now: SystemTime,
) -> Result<Vec<&'a Certificate>, CertError> {
    if intermediates.len() + 1 > MAX_CHAIN_CERTIFICATES {
        return Err(LimitExceeded::new(Limit::ChainCertificates, intermediates.len() + 1).into());
    }
    leaf.check_critical_extensions()?;
    leaf.check_time(now)?;
    let mut path = vec![leaf];
    let mut search = Search {
        intermediates,
        anchors,
        now,
        checks_left: MAX_CHAIN_SIGNATURE_CHECKS,
    };
    search.extend(leaf, &mut path)?;
    let signer =
        leaf.key_usage().is_some_and(|ku| ku.digital_signature()) || leaf.has_code_signing_eku();
    if !signer {
        return Err(CertError::NotForSigning(leaf.subject()));
    }
    Ok(path)
}

/// One chain search: the candidates and what is left of its budget.
struct Search<'a> {
    intermediates: &'a [Certificate],
    anchors: &'a [Certificate],
    now: SystemTime,
    checks_left: usize,
}

impl<'a> Search<'a> {
    /// Extends `path`, whose last certificate is `current`, to a trusted anchor.
    fn extend(
        &mut self,
        current: &'a Certificate,
        path: &mut Vec<&'a Certificate>,
    ) -> Result<(), CertError> {
        if self.anchors.contains(current) {
            return Ok(());
        }
        if path.len() > MAX_DEPTH {
            return Err(CertError::TooDeep);
        }
        let issuer_name = current.issuer_der();
        let mut error = CertError::UnknownIssuer {
            subject: current.subject(),
            issuer: current.issuer(),
        };
        let cas_below = path.len() - 1;
        let (anchors, intermediates) = (self.anchors, self.intermediates);
        // Trusted anchors first: the shortest path wins.
        for (candidate, is_anchor) in anchors
            .iter()
            .map(|c| (c, true))
            .chain(intermediates.iter().map(|c| (c, false)))
        {
            if candidate.subject_der() != issuer_name || path.contains(&candidate) {
                continue;
            }
            // Every signature check counts, so certificates sharing a name and a key cannot
            // make the search try every ordering of them.
            self.checks_left = self.checks_left.checked_sub(1).ok_or_else(|| {
                LimitExceeded::new(
                    Limit::ChainSignatureChecks,
                    format!("more than {MAX_CHAIN_SIGNATURE_CHECKS}"),
                )
            })?;
            let attempt = current
                .check_signed_by(candidate)
                .and_then(|()| candidate.check_critical_extensions())
                .and_then(|()| candidate.check_time(self.now))
                .and_then(|()| candidate.check_can_issue(cas_below, is_anchor));
            match attempt {
                Ok(()) if is_anchor => {
                    path.push(candidate);
                    return Ok(());
                }
                Ok(()) => {
                    path.push(candidate);
                    match self.extend(candidate, path) {
                        Ok(()) => return Ok(()),
                        Err(e @ CertError::Limit(_)) => return Err(e),
                        Err(e) => {
                            path.pop();
                            error = e;
                        }
                    }
                }
                Err(e) => error = e,
            }
        }
        Err(error)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../../shared/fixtures");

    fn load(rel: &str) -> Vec<Certificate> {
        let p = format!("{FIXTURES}/{rel}");
        Certificate::all_from_pem(&p, &std::fs::read(&p).unwrap()).unwrap()
    }

    fn at(y: i64) -> SystemTime {
        SystemTime::UNIX_EPOCH
            + Duration::from_secs(((y - 1970) * 365 * 86400 + 200 * 86400) as u64)
    }

    #[test]
    fn upstream_rsa_chain_with_ca_true_leaf() {
        let leaf =
            &load("model-transparency/scripts/tests/keys/certificate/signing-key-cert.pem")[0];
        let inter = load("model-transparency/scripts/tests/keys/certificate/int-ca-cert.pem");
        let root = load("model-transparency/scripts/tests/keys/certificate/ca-cert.pem");
        let path = verify_chain(leaf, &inter, &root, at(2027)).unwrap();
        assert_eq!(path.len(), 3);
        // The intermediate alone is not a trusted anchor here... but naming it trusts it.
        assert!(verify_chain(leaf, &[], &inter, at(2027)).is_ok());
        let err = verify_chain(leaf, &[], &root, at(2027)).unwrap_err();
        assert!(matches!(err, CertError::UnknownIssuer { .. }), "{err}");
        let err = verify_chain(leaf, &inter, &root, at(2040)).unwrap_err();
        assert!(matches!(err, CertError::Expired { .. }), "{err}");
    }

    #[test]
    fn peer_pki_usages() {
        let inter = load("peer-samples/pki/int-ca.cert.pem");
        let root = load("peer-samples/pki/root-ca.cert.pem");
        let now = at(2027);
        for ok in ["leaf-ku-eku", "leaf-eku-only", "leaf-tls"] {
            let leaf = &load(&format!("peer-samples/pki/{ok}.cert.pem"))[0];
            verify_chain(leaf, &inter, &root, now).unwrap_or_else(|e| panic!("{ok}: {e}"));
        }
        for bad in ["leaf-noku", "leaf-wrongku"] {
            let leaf = &load(&format!("peer-samples/pki/{bad}.cert.pem"))[0];
            let err = verify_chain(leaf, &inter, &root, now).unwrap_err();
            assert!(matches!(err, CertError::NotForSigning(_)), "{bad}: {err}");
        }
        let old_root = load("peer-samples/pki/old-root.cert.pem");
        let expired = &load("peer-samples/pki/leaf-expired.cert.pem")[0];
        assert!(matches!(
            verify_chain(expired, &[], &old_root, now),
            Err(CertError::Expired { .. })
        ));
        let future = &load("peer-samples/pki/leaf-future.cert.pem")[0];
        assert!(matches!(
            verify_chain(future, &[], &old_root, now),
            Err(CertError::NotYetValid { .. })
        ));
        let leaf = &load("peer-samples/pki/leaf-ku-eku.cert.pem")[0];
        assert!(verify_chain(leaf, &inter, &old_root, now).is_err());
    }

    /// Nine CA certificates sharing one name and one key each verify as the issuer of every
    /// other: without a budget the search would try every ordering of them (9!/1 paths).
    #[test]
    fn the_chain_search_is_bounded() {
        use rcgen::{
            BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair, KeyUsagePurpose,
            PKCS_ECDSA_P256_SHA256,
        };
        let key = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256).unwrap();
        let ca_params = |serial: u64| {
            let mut p = CertificateParams::default();
            p.distinguished_name.push(DnType::CommonName, "loop CA");
            p.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
            p.key_usages = vec![KeyUsagePurpose::KeyCertSign];
            p.serial_number = Some(serial.into());
            p
        };
        let issuer_params = ca_params(0);
        let issuer = Issuer::from_params(&issuer_params, &key);
        let parse = |der: &[u8]| Certificate::from_der("t", der).unwrap();
        let loops: Vec<Certificate> = (1..=9)
            .map(|i| parse(ca_params(i).signed_by(&key, &issuer).unwrap().der()))
            .collect();
        let mut leaf_params = CertificateParams::default();
        leaf_params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        let leaf = parse(leaf_params.signed_by(&key, &issuer).unwrap().der());
        let other_key = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256).unwrap();
        let mut root_params = ca_params(100);
        root_params.distinguished_name = rcgen::DistinguishedName::new();
        root_params
            .distinguished_name
            .push(DnType::CommonName, "unrelated root");
        let root = parse(root_params.self_signed(&other_key).unwrap().der());
        let now = SystemTime::now();
        let err = verify_chain(&leaf, &loops, std::slice::from_ref(&root), now).unwrap_err();
        assert!(
            matches!(
                err,
                CertError::Limit(LimitExceeded {
                    limit: Limit::ChainSignatureChecks,
                    ..
                })
            ),
            "{err}"
        );
        assert!(
            err.to_string().contains("MAX_CHAIN_SIGNATURE_CHECKS"),
            "{err}"
        );
        // The twin: the same certificates under the loop CA as a trusted anchor verify at once.
        let path = verify_chain(&leaf, &loops, &loops[..1], now).unwrap();
        assert_eq!(path.len(), 2);
        // Too many certificates are refused before any is tried.
        let many = vec![root.clone(); MAX_CHAIN_CERTIFICATES];
        let err = verify_chain(&leaf, &many, &[root], now).unwrap_err();
        assert!(err.to_string().contains("MAX_CHAIN_CERTIFICATES"), "{err}");
    }

    #[test]
    fn tampered_certificate_fails_its_signature() {
        let root = load("peer-samples/pki/root-ca.cert.pem");
        let inter = &load("peer-samples/pki/int-ca.cert.pem")[0];
        let mut der = inter.der().to_vec();
        // Flip a byte inside the validity period's encoding region of the TBS.
        let i = inter.tbs_raw.start + 40;
        der[i] ^= 1;
        if let Ok(bad) = Certificate::from_der("x", &der) {
            let leaf = &load("peer-samples/pki/leaf-ku-eku.cert.pem")[0];
            assert!(verify_chain(leaf, &[bad], &root, at(2027)).is_err());
        }
    }
}
