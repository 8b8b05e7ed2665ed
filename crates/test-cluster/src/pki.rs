//! The control plane's PKI, generated in memory with rcgen.
//!
//! One CA signs the API server's serving certificate and the admin client
//! certificate (organisation `system:masters`, so RBAC lets it do anything);
//! a separate key pair signs service-account tokens. All keys are ECDSA P-256:
//! fast to generate, and accepted by kube-apiserver for every use here.

use std::net::{IpAddr, Ipv4Addr};
use std::path::{Path, PathBuf};

use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DnType, ExtendedKeyUsagePurpose, IsCa,
    KeyPair, KeyUsagePurpose, PKCS_ECDSA_P256_SHA256, SanType,
};

use crate::Error;

/// PEM-encoded material for one control plane.
pub(crate) struct Pki {
    pub ca_cert: String,
    pub serving_cert: String,
    pub serving_key: String,
    pub admin_cert: String,
    pub admin_key: String,
    pub sa_public: String,
    pub sa_private: String,
}

/// Where [`Pki::write`] put the files kube-apiserver reads.
pub(crate) struct PkiFiles {
    pub ca_cert: PathBuf,
    pub serving_cert: PathBuf,
    pub serving_key: PathBuf,
    pub sa_public: PathBuf,
    pub sa_private: PathBuf,
    pub admin_cert: PathBuf,
    pub admin_key: PathBuf,
}

impl Pki {
    /// Generates a fresh CA, serving and client certificates, and SA keys.
    pub fn generate() -> Result<Self, Error> {
        let ca = new_ca("mvo-test-cluster-ca")?;

        // The names a client inside or outside the "cluster" may use; the
        // first service IP of --service-cluster-ip-range is `kubernetes`.
        let mut serving = CertificateParams::new(vec![
            "localhost".to_string(),
            "kubernetes".to_string(),
            "kubernetes.default".to_string(),
            "kubernetes.default.svc".to_string(),
            "kubernetes.default.svc.cluster.local".to_string(),
        ])?;
        serving
            .subject_alt_names
            .push(SanType::IpAddress(IpAddr::V4(Ipv4Addr::LOCALHOST)));
        serving
            .subject_alt_names
            .push(SanType::IpAddress(IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1))));
        serving
            .distinguished_name
            .push(DnType::CommonName, "kube-apiserver");
        serving.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        let serving_key = new_key()?;
        let serving_cert = serving.signed_by(&serving_key, &ca)?;

        let mut admin = CertificateParams::new(Vec::<String>::new())?;
        admin
            .distinguished_name
            .push(DnType::CommonName, "mvo-admin");
        admin
            .distinguished_name
            .push(DnType::OrganizationName, "system:masters");
        admin.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
        let admin_key = new_key()?;
        let admin_cert = admin.signed_by(&admin_key, &ca)?;

        let sa = new_key()?;

        Ok(Pki {
            ca_cert: ca.pem(),
            serving_cert: serving_cert.pem(),
            serving_key: serving_key.serialize_pem(),
            admin_cert: admin_cert.pem(),
            admin_key: admin_key.serialize_pem(),
            sa_public: sa.public_key_pem(),
            sa_private: sa.serialize_pem(),
        })
    }

    /// Writes what kube-apiserver needs into `dir` (private keys mode 0600).
    pub fn write(&self, dir: &Path) -> Result<PkiFiles, Error> {
        std::fs::create_dir_all(dir).map_err(Error::io(format!("creating {}", dir.display())))?;
        let files = PkiFiles {
            ca_cert: dir.join("ca.crt"),
            serving_cert: dir.join("apiserver.crt"),
            serving_key: dir.join("apiserver.key"),
            sa_public: dir.join("sa.pub"),
            sa_private: dir.join("sa.key"),
            admin_cert: dir.join("admin.crt"),
            admin_key: dir.join("admin.key"),
        };
        write_file(&files.ca_cert, &self.ca_cert, 0o644)?;
        write_file(&files.serving_cert, &self.serving_cert, 0o644)?;
        write_file(&files.serving_key, &self.serving_key, 0o600)?;
        write_file(&files.sa_public, &self.sa_public, 0o644)?;
        write_file(&files.sa_private, &self.sa_private, 0o600)?;
        // The API server's client certificate towards kubelets (logs, exec) on a real node.
        write_file(&files.admin_cert, &self.admin_cert, 0o644)?;
        write_file(&files.admin_key, &self.admin_key, 0o600)?;
        Ok(files)
    }
}

/// A CA and a serving certificate it signed for a server on loopback, PEM-encoded.
pub(crate) struct LoopbackTls {
    pub ca_cert: String,
    pub cert: String,
    pub key: String,
}

impl LoopbackTls {
    /// A fresh CA named `name` and its serving certificate for `127.0.0.1` and `localhost` (the
    /// names a client on this machine uses), for a test server other than the API server.
    pub fn generate(name: &str) -> Result<Self, Error> {
        let ca = new_ca(&format!("{name}-ca"))?;
        let mut serving = CertificateParams::new(vec!["localhost".to_string()])?;
        serving
            .subject_alt_names
            .push(SanType::IpAddress(IpAddr::V4(Ipv4Addr::LOCALHOST)));
        serving.distinguished_name.push(DnType::CommonName, name);
        serving.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        let key = new_key()?;
        let cert = serving.signed_by(&key, &ca)?;
        Ok(LoopbackTls {
            ca_cert: ca.pem(),
            cert: cert.pem(),
            key: key.serialize_pem(),
        })
    }
}

/// A self-signed CA that may sign anything (no path length limit).
fn new_ca(common_name: &str) -> Result<CertifiedIssuer<'static, KeyPair>, Error> {
    let mut ca_params = CertificateParams::new(Vec::<String>::new())?;
    ca_params
        .distinguished_name
        .push(DnType::CommonName, common_name);
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    Ok(CertifiedIssuer::self_signed(ca_params, new_key()?)?)
}

fn new_key() -> Result<KeyPair, Error> {
    Ok(KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256)?)
}

pub(crate) fn write_file(path: &Path, contents: &str, mode: u32) -> Result<(), Error> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(mode)
        .open(path)
        .map_err(Error::io(format!("writing {}", path.display())))?;
    f.write_all(contents.as_bytes())
        .map_err(Error::io(format!("writing {}", path.display())))
}
