//! Webhook TLS: a CA kept in a Secret (shared by every replica, so the caBundle is stable), a
//! serving certificate issued by each replica for itself and re-issued before it expires, and
//! hot swapping so that a rotation never fails a request. Alternatively, a certificate
//! directory (cert-manager) re-read whenever its files change.

use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use anyhow::{Context, Result, anyhow};
use arc_swap::ArcSwap;
use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose, SanType,
};
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;

/// Default lifetime of the self-managed CA (`--ca-lifetime`); it is rotated when a third of
/// it is left, the old one staying in the caBundle for an overlap (see `certs`).
pub const CA_LIFETIME: Duration = Duration::from_secs(365 * 86400);
/// How long a replica waits, after it has seen a new CA in the caBundle, before it serves a
/// certificate of that CA: the API server reads webhook configurations through an informer,
/// so it trusts the new bundle a moment after the write.
pub const CA_SETTLE: Duration = Duration::from_secs(3);
/// Lifetime of a serving certificate; it is re-issued when a third of it is left.
pub const SERVING_LIFETIME: Duration = Duration::from_secs(90 * 86400);

/// A CA certificate and its key, PEM.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Ca {
    /// Certificate.
    pub cert_pem: String,
    /// Private key.
    pub key_pem: String,
}

/// A serving certificate and key, PEM.
#[derive(Clone, Debug)]
pub struct Serving {
    /// Certificate chain (leaf first).
    pub cert_pem: String,
    /// Private key.
    pub key_pem: String,
}

fn now() -> time::OffsetDateTime {
    time::OffsetDateTime::now_utc()
}

fn span(d: Duration) -> time::Duration {
    time::Duration::seconds(d.as_secs() as i64)
}

/// Backdated a little: clocks in a cluster are never perfectly in step.
fn not_before_now() -> time::OffsetDateTime {
    now() - time::Duration::minutes(5)
}

impl Ca {
    /// A new self-signed CA living [`CA_LIFETIME`].
    pub fn generate() -> Result<Self> {
        Self::generate_for(CA_LIFETIME)
    }

    /// A new self-signed CA living `lifetime`.
    pub fn generate_for(lifetime: Duration) -> Result<Self> {
        let mut params = CertificateParams::new(Vec::<String>::new())?;
        params
            .distinguished_name
            .push(DnType::CommonName, "model-validation-operator webhook CA");
        params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
        params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        params.not_before = not_before_now();
        params.not_after = now() + span(lifetime);
        let key = KeyPair::generate()?;
        let cert = params.self_signed(&key)?;
        Ok(Ca {
            cert_pem: cert.pem(),
            key_pem: key.serialize_pem(),
        })
    }

    /// Issues a serving certificate for `dns_names` and `ips`, living `lifetime` but never
    /// beyond the CA.
    pub fn issue(
        &self,
        dns_names: &[String],
        ips: &[IpAddr],
        lifetime: Duration,
    ) -> Result<Serving> {
        let ca_key = KeyPair::from_pem(&self.key_pem)
            .context("the stored webhook CA key is not valid PEM")?;
        let issuer = Issuer::from_ca_cert_pem(&self.cert_pem, ca_key)
            .context("the stored webhook CA certificate is not valid")?;
        let mut params = CertificateParams::new(dns_names.to_vec())?;
        for ip in ips {
            params.subject_alt_names.push(SanType::IpAddress(*ip));
        }
        params.distinguished_name.push(
            DnType::CommonName,
            dns_names
                .first()
                .cloned()
                .unwrap_or_else(|| "model-validation-webhook".into()),
        );
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        params.not_before = not_before_now();
        let (_, ca_end) = validity(&self.cert_pem)?;
        let ca_end = time::OffsetDateTime::from(ca_end);
        params.not_after = (now() + span(lifetime)).min(ca_end);
        let key = KeyPair::generate()?;
        let cert = params.signed_by(&key, &issuer)?;
        Ok(Serving {
            cert_pem: cert.pem(),
            key_pem: key.serialize_pem(),
        })
    }
}

/// notBefore and notAfter of the first certificate in a PEM.
pub fn validity(cert_pem: &str) -> Result<(SystemTime, SystemTime)> {
    let (_, pem) = x509_parser::pem::parse_x509_pem(cert_pem.as_bytes())
        .map_err(|e| anyhow!("not a PEM certificate: {e}"))?;
    let cert = pem
        .parse_x509()
        .map_err(|e| anyhow!("not an X.509 certificate: {e}"))?;
    let v = cert.validity();
    let t = |ts: i64| SystemTime::UNIX_EPOCH + Duration::from_secs(ts.max(0) as u64);
    Ok((t(v.not_before.timestamp()), t(v.not_after.timestamp())))
}

/// True when less than a third of the certificate's lifetime is left (or it cannot be read).
pub fn needs_rotation(cert_pem: &str, now: SystemTime) -> bool {
    let Ok((start, end)) = validity(cert_pem) else {
        return true;
    };
    let lifetime = end.duration_since(start).unwrap_or_default();
    let left = end.duration_since(now).unwrap_or_default();
    left < lifetime / 3
}

/// Builds a rustls key from PEM.
pub fn certified_key(cert_pem: &str, key_pem: &str) -> Result<Arc<CertifiedKey>> {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(cert_pem.as_bytes())
        .collect::<Result<_, _>>()
        .context("invalid certificate PEM")?;
    if certs.is_empty() {
        return Err(anyhow!("no certificate in the PEM"));
    }
    let key =
        PrivateKeyDer::from_pem_slice(key_pem.as_bytes()).context("invalid private key PEM")?;
    let signing = rustls::crypto::aws_lc_rs::sign::any_supported_type(&key)
        .context("unsupported private key type")?;
    Ok(Arc::new(CertifiedKey::new(certs, signing)))
}

/// Serves whatever certificate is current; swapping it affects only new handshakes.
#[derive(Debug)]
pub struct Resolver {
    current: ArcSwap<CertifiedKey>,
    expiry: Option<prometheus_client::metrics::gauge::Gauge<i64>>,
}

/// notAfter of a key's leaf certificate, unix seconds.
pub fn not_after(key: &CertifiedKey) -> Option<i64> {
    let leaf = key.cert.first()?;
    let (_, cert) = x509_parser::parse_x509_certificate(leaf.as_ref()).ok()?;
    Some(cert.validity().not_after.timestamp())
}

impl Resolver {
    /// Starts with `key`.
    pub fn new(key: Arc<CertifiedKey>) -> Arc<Self> {
        Arc::new(Resolver {
            current: ArcSwap::new(key),
            expiry: None,
        })
    }

    /// Starts with `key` and keeps `gauge` at the current certificate's notAfter.
    pub fn with_expiry_gauge(
        key: Arc<CertifiedKey>,
        gauge: prometheus_client::metrics::gauge::Gauge<i64>,
    ) -> Arc<Self> {
        if let Some(t) = not_after(&key) {
            gauge.set(t);
        }
        Arc::new(Resolver {
            current: ArcSwap::new(key),
            expiry: Some(gauge),
        })
    }

    /// Replaces the certificate.
    pub fn set(&self, key: Arc<CertifiedKey>) {
        if let (Some(g), Some(t)) = (&self.expiry, not_after(&key)) {
            g.set(t);
        }
        self.current.store(key);
    }
}

impl ResolvesServerCert for Resolver {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(self.current.load_full())
    }
}

/// The rustls server config for the webhook (HTTP/1.1 and h2 via ALPN).
pub fn server_config(resolver: Arc<Resolver>) -> Result<rustls::ServerConfig> {
    let mut cfg = rustls::ServerConfig::builder()
        .with_no_client_auth()
        .with_cert_resolver(resolver);
    cfg.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(cfg)
}

/// A certificate directory (`tls.crt`, `tls.key`), as cert-manager mounts it.
pub struct CertDir {
    dir: PathBuf,
    last: Option<(String, String)>,
}

impl CertDir {
    /// Watches `dir`.
    pub fn new(dir: &Path) -> Self {
        CertDir {
            dir: dir.to_path_buf(),
            last: None,
        }
    }

    /// Reads the files; returns a new key when they changed since the last call. Secret volumes
    /// swap a symlink, so the content is compared, not modification times.
    pub fn poll(&mut self) -> Result<Option<Arc<CertifiedKey>>> {
        let read = |name: &str| {
            std::fs::read_to_string(self.dir.join(name)).with_context(|| {
                format!(
                    "cannot read {} in the certificate directory {}",
                    name,
                    self.dir.display()
                )
            })
        };
        let pair = (read("tls.crt")?, read("tls.key")?);
        if self.last.as_ref() == Some(&pair) {
            return Ok(None);
        }
        let key = certified_key(&pair.0, &pair.1)?;
        self.last = Some(pair);
        Ok(Some(key))
    }

    /// Re-reads the directory every `every` and swaps a changed certificate into `resolver`,
    /// keeping the current one when the directory cannot be read. Runs until the process ends
    /// (a cert-manager rotation must reach a long-running replica); the counterpart of
    /// `certs::SelfManaged::maintain`.
    pub async fn maintain(mut self, resolver: Arc<Resolver>, every: Duration) {
        loop {
            tokio::time::sleep(every).await;
            match self.poll() {
                Ok(Some(k)) => {
                    resolver.set(k);
                    tracing::info!("serving certificate reloaded from the certificate directory");
                }
                Ok(None) => {}
                Err(e) => {
                    tracing::warn!(error = %e, "cannot reload the certificate directory; keeping the current certificate")
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ca_issues_serving_certs_that_rotate_at_a_third() {
        let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
        let ca = Ca::generate().unwrap();
        let s = ca
            .issue(
                &["svc.ns.svc".into()],
                &["127.0.0.1".parse().unwrap()],
                SERVING_LIFETIME,
            )
            .unwrap();
        certified_key(&s.cert_pem, &s.key_pem).unwrap();
        let now = SystemTime::now();
        assert!(!needs_rotation(&s.cert_pem, now));
        assert!(needs_rotation(
            &s.cert_pem,
            now + Duration::from_secs(61 * 86400)
        ));
        assert!(needs_rotation("garbage", now));
        let (_, ca_end) = validity(&ca.cert_pem).unwrap();
        assert!(ca_end > now + Duration::from_secs(364 * 86400));
        assert!(
            ca_end < now + Duration::from_secs(366 * 86400),
            "a year, not ten"
        );
    }

    #[test]
    fn serving_certs_never_outlive_their_ca() {
        let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
        let ca = Ca::generate_for(Duration::from_secs(3600)).unwrap();
        let s = ca.issue(&["a".into()], &[], SERVING_LIFETIME).unwrap();
        let (_, ca_end) = validity(&ca.cert_pem).unwrap();
        let (_, end) = validity(&s.cert_pem).unwrap();
        assert_eq!(end, ca_end);
        // Twin: a CA outliving the serving lifetime leaves the lifetime as asked.
        let long = Ca::generate().unwrap();
        let s = long.issue(&["a".into()], &[], SERVING_LIFETIME).unwrap();
        let (start, end) = validity(&s.cert_pem).unwrap();
        let lived = end.duration_since(start).unwrap();
        assert!(lived > SERVING_LIFETIME && lived < SERVING_LIFETIME + Duration::from_secs(600));
    }

    #[test]
    fn cert_dir_reloads_only_on_change() {
        let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
        let d = tempfile::tempdir().unwrap();
        let ca = Ca::generate().unwrap();
        let write = |s: &Serving| {
            std::fs::write(d.path().join("tls.crt"), &s.cert_pem).unwrap();
            std::fs::write(d.path().join("tls.key"), &s.key_pem).unwrap();
        };
        let mut dir = CertDir::new(d.path());
        assert!(dir.poll().is_err(), "missing files are an error");
        write(&ca.issue(&["a".into()], &[], SERVING_LIFETIME).unwrap());
        assert!(dir.poll().unwrap().is_some());
        assert!(dir.poll().unwrap().is_none());
        write(&ca.issue(&["a".into()], &[], SERVING_LIFETIME).unwrap());
        assert!(dir.poll().unwrap().is_some());
    }
}
