//! Registry credentials from a docker `config.json` (what `docker login`, `podman login
//! --authfile` and `crane auth login` write), read without running anything.
//!
//! Supported: `auths.<registry>.auth` (base64 of `user:password`) and
//! `auths.<registry>.username`/`password`. Not supported: credential helpers (`credsStore`,
//! `credHelpers`, which run a program) and identity tokens; a registry that is configured only
//! through one of those is reported as such ([`Lookup::Helper`]), so that the caller can say
//! why no credentials were sent.

use std::collections::BTreeMap;
use std::path::PathBuf;

use base64::Engine as _;
use serde::Deserialize;

/// Config files larger than this are refused (real ones are a few KiB).
pub const MAX_CONFIG_BYTES: usize = 1024 * 1024;

/// Why a config file cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum CredentialsError {
    /// Not JSON of the docker config shape.
    #[error("{path} is not a docker config.json: {detail}")]
    Malformed {
        /// The file.
        path: String,
        /// What is wrong.
        detail: String,
    },
    /// Larger than [`MAX_CONFIG_BYTES`].
    #[error(
        "{path} has {size} bytes, more than the limit of {MAX_CONFIG_BYTES} for a docker config.json"
    )]
    TooLarge {
        /// The file.
        path: String,
        /// Its size.
        size: usize,
    },
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase")]
struct RawConfig {
    #[serde(default)]
    auths: BTreeMap<String, RawAuth>,
    #[serde(default)]
    creds_store: Option<String>,
    #[serde(default)]
    cred_helpers: BTreeMap<String, String>,
}

#[derive(Deserialize, Default)]
struct RawAuth {
    #[serde(default)]
    auth: Option<String>,
    #[serde(default)]
    username: Option<String>,
    #[serde(default)]
    password: Option<String>,
}

/// A user name and password for HTTP basic auth (or a registry's token service).
#[derive(Clone, PartialEq, Eq)]
pub struct Basic {
    /// The user name.
    pub username: String,
    /// The password.
    pub password: String,
}

impl std::fmt::Debug for Basic {
    // Never print the password.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Basic({:?}, <redacted>)", self.username)
    }
}

/// What a config says about one registry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Lookup {
    /// Credentials to send.
    Basic(Basic),
    /// Only a credential helper (`docker-credential-<name>`) knows them: not supported.
    Helper(String),
    /// Nothing: access anonymously.
    None,
}

/// A parsed docker config, and where it came from (for messages).
#[derive(Debug, Clone, Default)]
pub struct DockerConfig {
    /// The file it was read from (empty when none).
    pub source: String,
    auths: BTreeMap<String, Basic>,
    creds_store: Option<String>,
    cred_helpers: BTreeMap<String, String>,
}

/// `https://index.docker.io/v1/` and `registry.example:5000/some/path` name their host.
fn host_of(key: &str) -> String {
    let rest = key
        .strip_prefix("https://")
        .or_else(|| key.strip_prefix("http://"))
        .unwrap_or(key);
    let host = rest.split('/').next().unwrap_or(rest).to_ascii_lowercase();
    // Docker Hub is written in several ways; oci-client resolves `docker.io` references to
    // `index.docker.io`.
    match host.as_str() {
        "docker.io" | "registry-1.docker.io" => "index.docker.io".into(),
        _ => host,
    }
}

impl DockerConfig {
    /// Parses a config file's bytes; `source` names it in messages.
    pub fn parse(source: &str, bytes: &[u8]) -> Result<DockerConfig, CredentialsError> {
        if bytes.len() > MAX_CONFIG_BYTES {
            return Err(CredentialsError::TooLarge {
                path: source.into(),
                size: bytes.len(),
            });
        }
        let malformed = |detail: String| CredentialsError::Malformed {
            path: source.into(),
            detail,
        };
        let raw: RawConfig = serde_json::from_slice(bytes).map_err(|e| malformed(e.to_string()))?;
        let mut auths = BTreeMap::new();
        for (key, entry) in raw.auths {
            let basic = match (entry.auth, entry.username, entry.password) {
                (Some(auth), _, _) if !auth.is_empty() => {
                    let decoded = base64::engine::general_purpose::STANDARD
                        .decode(auth.trim())
                        .map_err(|_| malformed(format!("auths.{key:?}.auth is not base64")))?;
                    let text = String::from_utf8(decoded)
                        .map_err(|_| malformed(format!("auths.{key:?}.auth is not UTF-8")))?;
                    let (u, p) = text.split_once(':').ok_or_else(|| {
                        malformed(format!("auths.{key:?}.auth is not base64 of user:password"))
                    })?;
                    Basic {
                        username: u.into(),
                        password: p.into(),
                    }
                }
                (_, Some(username), Some(password)) => Basic { username, password },
                // An entry with neither (e.g. left by a credential helper's login): nothing.
                _ => continue,
            };
            auths.insert(host_of(&key), basic);
        }
        Ok(DockerConfig {
            source: source.into(),
            auths,
            creds_store: raw.creds_store.filter(|s| !s.is_empty()),
            cred_helpers: raw
                .cred_helpers
                .into_iter()
                .map(|(k, v)| (host_of(&k), v))
                .collect(),
        })
    }

    /// What the config holds for `registry` (a host, with its port if any).
    pub fn lookup(&self, registry: &str) -> Lookup {
        let host = host_of(registry);
        if let Some(b) = self.auths.get(&host) {
            return Lookup::Basic(b.clone());
        }
        if let Some(h) = self.cred_helpers.get(&host) {
            return Lookup::Helper(h.clone());
        }
        match &self.creds_store {
            Some(s) => Lookup::Helper(s.clone()),
            None => Lookup::None,
        }
    }

    /// Where docker looks: `$DOCKER_CONFIG/config.json`, else `$HOME/.docker/config.json`.
    pub fn default_path() -> Option<PathBuf> {
        if let Some(dir) = std::env::var_os("DOCKER_CONFIG").filter(|d| !d.is_empty()) {
            return Some(PathBuf::from(dir).join("config.json"));
        }
        std::env::var_os("HOME")
            .filter(|h| !h.is_empty())
            .map(|h| PathBuf::from(h).join(".docker/config.json"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn b64(s: &str) -> String {
        base64::engine::general_purpose::STANDARD.encode(s)
    }

    #[test]
    fn finds_basic_credentials_by_host_in_every_spelling() {
        let json = format!(
            r#"{{"auths":{{"https://index.docker.io/v1/":{{"auth":"{}"}},"127.0.0.1:5000":{{"auth":"{}"}},"r.example":{{"username":"u","password":"p:w"}}}}}}"#,
            b64("hub:pw"),
            b64("me:s3:cret")
        );
        let c = DockerConfig::parse("c.json", json.as_bytes()).unwrap();
        let basic = |u: &str, p: &str| {
            Lookup::Basic(Basic {
                username: u.into(),
                password: p.into(),
            })
        };
        assert_eq!(c.lookup("127.0.0.1:5000"), basic("me", "s3:cret"));
        assert_eq!(c.lookup("index.docker.io"), basic("hub", "pw"));
        assert_eq!(c.lookup("docker.io"), basic("hub", "pw"));
        assert_eq!(c.lookup("R.example"), basic("u", "p:w"));
        // Twin: another port is another registry.
        assert_eq!(c.lookup("127.0.0.1:5001"), Lookup::None);
        assert!(!format!("{:?}", c.lookup("r.example")).contains("p:w"));
    }

    #[test]
    fn reports_helpers_and_refuses_malformed_files() {
        let c = DockerConfig::parse(
            "c",
            br#"{"credsStore":"desktop","credHelpers":{"gcr.io":"gcloud"}}"#,
        )
        .unwrap();
        assert_eq!(c.lookup("gcr.io"), Lookup::Helper("gcloud".into()));
        assert_eq!(c.lookup("other.io"), Lookup::Helper("desktop".into()));
        let e = DockerConfig::parse("c", br#"{"auths":{"x":{"auth":"%%%"}}}"#).unwrap_err();
        assert!(e.to_string().contains("is not base64"), "{e}");
        let e = DockerConfig::parse("c", b"[").unwrap_err();
        assert!(
            e.to_string().starts_with("c is not a docker config.json"),
            "{e}"
        );
        assert!(DockerConfig::parse("c", b"{}").is_ok());
    }
}
