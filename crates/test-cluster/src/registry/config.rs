//! How each registry is told its address, TLS files, credentials and storage: flags and an auth
//! file for `oci-registry`, a YAML configuration and a bcrypt htpasswd file for distribution.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use super::Credentials;
use crate::Error;
use crate::pki::write_file;

/// Where the CA, the serving certificate and its key were written.
pub(super) struct TlsFiles {
    pub ca: PathBuf,
    pub cert: PathBuf,
    pub key: PathBuf,
}

/// What a registry is started with.
pub(super) struct Settings<'a> {
    /// The registry's temp dir: configuration, storage, secrets.
    pub dir: &'a Path,
    pub addr: SocketAddr,
    pub tls: Option<&'a TlsFiles>,
    pub credentials: Option<&'a Credentials>,
}

/// `oci-registry`'s arguments; the credentials go to a file, not to the command line, where
/// every process could read them.
pub(super) fn oci_registry_args(s: &Settings<'_>) -> Result<Vec<String>, Error> {
    let mut args = vec!["--address".to_string(), s.addr.to_string()];
    if let Some(tls) = s.tls {
        args.extend(["--tls-cert".into(), path_arg(&tls.cert)]);
        args.extend(["--tls-key".into(), path_arg(&tls.key)]);
    }
    if let Some(c) = s.credentials {
        let file = s.dir.join("auth");
        write_file(&file, &format!("{}:{}\n", c.username, c.password), 0o600)?;
        args.extend(["--auth-file".into(), path_arg(&file)]);
    }
    Ok(args)
}

/// `distribution-registry serve CONFIG`, with the configuration (and the htpasswd file) written
/// to the temp dir.
pub(super) fn distribution_args(s: &Settings<'_>) -> Result<Vec<String>, Error> {
    let htpasswd = match s.credentials {
        Some(c) => {
            let file = s.dir.join("htpasswd");
            write_file(&file, &htpasswd_line(c)?, 0o600)?;
            Some(file)
        }
        None => None,
    };
    let config = s.dir.join("config.yml");
    let yaml = distribution_yaml(s, htpasswd.as_deref());
    write_file(&config, &yaml, 0o600)?;
    Ok(vec!["serve".into(), path_arg(&config)])
}

/// distribution's only htpasswd format is bcrypt. Cost 4, the least bcrypt allows: the registry
/// checks the hash on every request, and these credentials guard nothing.
fn htpasswd_line(c: &Credentials) -> Result<String, Error> {
    let hash = bcrypt::hash(&c.password, 4).map_err(|e| Error::Io {
        context: "hashing the registry password".into(),
        source: std::io::Error::other(e),
    })?;
    Ok(format!("{}:{hash}\n", c.username))
}

/// The configuration (reference: distribution's docs/content/about/configuration.md): storage
/// in the temp dir; the access log, one line per request, on stdout (which goes to the log the
/// [`super::Registry`] reads); a fixed upload secret (else it warns on every start); no upload
/// purging (a test never lives long enough); the debug server off.
fn distribution_yaml(s: &Settings<'_>, htpasswd: Option<&Path>) -> String {
    let mut yaml = format!(
        "version: 0.1
log:
  level: info
  formatter: text
  accesslog:
    disabled: false
storage:
  filesystem:
    rootdirectory: {storage}
  delete:
    enabled: true
  maintenance:
    uploadpurging:
      enabled: false
http:
  addr: {addr}
  secret: mvo-test-registry
",
        storage = quoted(s.dir.join("storage")),
        addr = quoted(s.addr.to_string()),
    );
    if let Some(tls) = s.tls {
        yaml += &format!(
            "  tls:\n    certificate: {}\n    key: {}\n",
            quoted(&tls.cert),
            quoted(&tls.key)
        );
    }
    if let Some(path) = htpasswd {
        yaml += &format!(
            "auth:\n  htpasswd:\n    realm: mvo-test-registry\n    path: {}\n",
            quoted(path)
        );
    }
    yaml
}

/// A YAML double-quoted scalar: a JSON string is one, whatever the path holds.
fn quoted(value: impl AsRef<Path>) -> String {
    serde_json::to_string(&value.as_ref().to_string_lossy()).expect("a string serializes")
}

fn path_arg(path: &Path) -> String {
    path.to_string_lossy().into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings<'a>(
        dir: &'a Path,
        tls: Option<&'a TlsFiles>,
        c: Option<&'a Credentials>,
    ) -> Settings<'a> {
        Settings {
            dir,
            addr: SocketAddr::from(([127, 0, 0, 1], 5000)),
            tls,
            credentials: c,
        }
    }

    #[test]
    fn plain_distribution_config_has_no_tls_and_no_auth() {
        let yaml = distribution_yaml(&settings(Path::new("/t"), None, None), None);
        assert!(yaml.contains("  addr: \"127.0.0.1:5000\"\n"), "{yaml}");
        assert!(yaml.contains("rootdirectory: \"/t/storage\"\n"), "{yaml}");
        assert!(!yaml.contains("tls:") && !yaml.contains("auth:"), "{yaml}");
    }

    #[test]
    fn tls_and_auth_sections_name_the_files() {
        let tls = TlsFiles {
            ca: "/t/ca.crt".into(),
            cert: "/t/tls.crt".into(),
            key: "/t/tls.key".into(),
        };
        let yaml = distribution_yaml(
            &settings(Path::new("/t"), Some(&tls), None),
            Some(Path::new("/t/htpasswd")),
        );
        assert!(
            yaml.contains("  tls:\n    certificate: \"/t/tls.crt\"\n    key: \"/t/tls.key\"\n"),
            "{yaml}"
        );
        assert!(
            yaml.ends_with(
                "auth:\n  htpasswd:\n    realm: mvo-test-registry\n    path: \"/t/htpasswd\"\n"
            ),
            "{yaml}"
        );
    }

    #[test]
    fn htpasswd_line_is_a_bcrypt_hash_of_the_password() {
        let c = Credentials {
            username: "alice".into(),
            password: "s3cret".into(),
        };
        let line = htpasswd_line(&c).unwrap();
        let (user, hash) = line.trim_end().split_once(':').unwrap();
        assert_eq!(user, "alice");
        assert!(hash.starts_with("$2"), "{hash}");
        assert!(bcrypt::verify("s3cret", hash).unwrap());
        assert!(!bcrypt::verify("wrong", hash).unwrap());
    }

    #[test]
    fn quoting_escapes_what_yaml_would_read_otherwise() {
        assert_eq!(quoted("/a b/\"c\"#d"), r##""/a b/\"c\"#d""##);
    }
}
