//! Sigstore trust roots: the embedded public-good roots (production and staging, as shipped by
//! `sigstore-trust-root`), a ClientTrustConfig file (`--trust_config`) or a plain
//! `trusted_root.json` (`--trusted_root`). Nothing is fetched: no TUF, no network.

use std::path::Path;

use sigstore_trust_root::{
    SIGSTORE_PRODUCTION_TRUSTED_ROOT, SIGSTORE_STAGING_TRUSTED_ROOT, TrustedRoot,
};

use super::error::{SigstoreError, TrustFile};

/// `mediaType` of a ClientTrustConfig.
pub const CLIENT_TRUST_CONFIG_MEDIA_TYPE: &str =
    "application/vnd.dev.sigstore.clienttrustconfig.v0.1+json";
/// Prefix of every trusted-root `mediaType` (`…trustedroot+json;version=0.1`, `…trustedroot.v0.2+json`).
pub const TRUSTED_ROOT_MEDIA_TYPE_PREFIX: &str = "application/vnd.dev.sigstore.trustedroot";
/// The `sigstore-trust-root` release whose embedded roots are compiled in.
pub const EMBEDDED_ROOTS_VERSION: &str = "sigstore-trust-root 0.15.1";
/// Trust files larger than this are refused (real ones are a few KiB).
const MAX_TRUST_FILE_BYTES: u64 = 4 * 1024 * 1024;

/// A trusted root and where it came from.
#[derive(Debug, Clone)]
pub struct SigstoreTrust {
    root: TrustedRoot,
    name: String,
}

fn trust_err(name: &str, detail: impl std::fmt::Display) -> SigstoreError {
    SigstoreError::TrustRoot {
        name: name.to_string(),
        detail: detail.to_string(),
    }
}

impl SigstoreTrust {
    /// The embedded Sigstore public-good production root.
    pub fn production() -> Result<Self, SigstoreError> {
        Self::embedded("production", SIGSTORE_PRODUCTION_TRUSTED_ROOT)
    }

    /// The embedded Sigstore public-good staging root (`--use_staging`).
    pub fn staging() -> Result<Self, SigstoreError> {
        Self::embedded("staging", SIGSTORE_STAGING_TRUSTED_ROOT)
    }

    fn embedded(which: &str, json: &str) -> Result<Self, SigstoreError> {
        let name = format!("embedded Sigstore {which} root ({EMBEDDED_ROOTS_VERSION})");
        let root = TrustedRoot::from_json(json).map_err(|e| trust_err(&name, e))?;
        Self::checked(root, name)
    }

    /// A plain `trusted_root.json`.
    pub fn from_trusted_root_json(name: &str, json: &str) -> Result<Self, SigstoreError> {
        let v: serde_json::Value = serde_json::from_str(json)
            .map_err(|e| trust_err(name, format!("not valid JSON ({e})")))?;
        match v.get("mediaType").and_then(|m| m.as_str()) {
            Some(CLIENT_TRUST_CONFIG_MEDIA_TYPE) => Err(SigstoreError::WrongTrustFile {
                name: name.to_string(),
                found: TrustFile::ClientTrustConfig,
            }),
            Some(m) if m.starts_with(TRUSTED_ROOT_MEDIA_TYPE_PREFIX) => Self::from_value(name, v),
            Some(m) => Err(trust_err(
                name,
                format!(
                    "mediaType {m:?} is not a Sigstore trusted root ({TRUSTED_ROOT_MEDIA_TYPE_PREFIX}...)"
                ),
            )),
            None => Err(trust_err(
                name,
                "no mediaType: this is not a Sigstore trusted_root.json",
            )),
        }
    }

    /// A ClientTrustConfig (`trustedRoot` plus a signing config, which verification ignores).
    pub fn from_trust_config_json(name: &str, json: &str) -> Result<Self, SigstoreError> {
        let v: serde_json::Value = serde_json::from_str(json)
            .map_err(|e| trust_err(name, format!("not valid JSON ({e})")))?;
        match v.get("mediaType").and_then(|m| m.as_str()) {
            Some(CLIENT_TRUST_CONFIG_MEDIA_TYPE) => {}
            Some(m) if m.starts_with(TRUSTED_ROOT_MEDIA_TYPE_PREFIX) => {
                return Err(SigstoreError::WrongTrustFile {
                    name: name.to_string(),
                    found: TrustFile::TrustedRoot,
                });
            }
            other => {
                return Err(trust_err(
                    name,
                    format!(
                        "mediaType {:?} is not {CLIENT_TRUST_CONFIG_MEDIA_TYPE:?}",
                        other.unwrap_or("(none)")
                    ),
                ));
            }
        }
        let root = v
            .get("trustedRoot")
            .or_else(|| v.get("trusted_root"))
            .cloned()
            .ok_or_else(|| trust_err(name, "the ClientTrustConfig has no trustedRoot"))?;
        Self::from_value(name, root)
    }

    /// Reads `--trust_config FILE`.
    pub fn trust_config_file(path: &Path) -> Result<Self, SigstoreError> {
        let name = path.display().to_string();
        Self::from_trust_config_json(&name, &read_small(path)?)
    }

    /// Reads `--trusted_root FILE`.
    pub fn trusted_root_file(path: &Path) -> Result<Self, SigstoreError> {
        let name = path.display().to_string();
        Self::from_trusted_root_json(&name, &read_small(path)?)
    }

    fn from_value(name: &str, v: serde_json::Value) -> Result<Self, SigstoreError> {
        let root: TrustedRoot = serde_json::from_value(v)
            .map_err(|e| trust_err(name, format!("not a valid Sigstore trusted root ({e})")))?;
        Self::checked(root, name.to_string())
    }

    fn checked(root: TrustedRoot, name: String) -> Result<Self, SigstoreError> {
        if root.certificate_authorities.is_empty() {
            return Err(trust_err(
                &name,
                "it lists no certificate authority (Fulcio): no keyless signature could verify",
            ));
        }
        if root.tlogs.is_empty() {
            return Err(trust_err(
                &name,
                "it lists no transparency log (Rekor) key: no keyless signature could verify",
            ));
        }
        if root.ctlogs.is_empty() {
            return Err(trust_err(
                &name,
                "it lists no certificate transparency log key: no certificate's SCT could verify",
            ));
        }
        Ok(SigstoreTrust { root, name })
    }

    /// The parsed root.
    pub fn root(&self) -> &TrustedRoot {
        &self.root
    }

    /// Where it came from (the embedded root's name, or the file path).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The Rekor log of the trusted root with this key id: `base URL (key id hex)`.
    pub fn describe_log(&self, key_id: &[u8]) -> String {
        let hex_id = hex::encode(key_id);
        match self
            .root
            .tlogs
            .iter()
            .find(|t| t.log_id.key_id.as_bytes() == key_id)
        {
            Some(t) => format!("{} key {hex_id}", t.base_url),
            None => format!("unknown log key {hex_id}"),
        }
    }
}

fn read_small(path: &Path) -> Result<String, SigstoreError> {
    use std::io::Read;
    let name = path.display().to_string();
    let file =
        std::fs::File::open(path).map_err(|e| trust_err(&name, format!("cannot read ({e})")))?;
    let mut s = String::new();
    file.take(MAX_TRUST_FILE_BYTES + 1)
        .read_to_string(&mut s)
        .map_err(|e| trust_err(&name, format!("cannot read as UTF-8 text ({e})")))?;
    if s.len() as u64 > MAX_TRUST_FILE_BYTES {
        return Err(trust_err(
            &name,
            format!("larger than {MAX_TRUST_FILE_BYTES} bytes: not a trust root"),
        ));
    }
    Ok(s)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn embedded_roots_load() {
        let p = SigstoreTrust::production().unwrap();
        assert!(p.name().contains("production"));
        assert!(
            p.root()
                .tlogs
                .iter()
                .any(|t| t.base_url == "https://rekor.sigstore.dev")
        );
        let s = SigstoreTrust::staging().unwrap();
        assert!(
            s.root()
                .tlogs
                .iter()
                .any(|t| t.base_url == "https://rekor.sigstage.dev")
        );
    }

    #[test]
    fn trust_config_and_trusted_root_are_not_confused() {
        let root = SIGSTORE_PRODUCTION_TRUSTED_ROOT;
        let e = SigstoreTrust::from_trust_config_json("r.json", root).unwrap_err();
        assert!(
            matches!(
                e,
                SigstoreError::WrongTrustFile {
                    found: TrustFile::TrustedRoot,
                    ..
                }
            ),
            "{e}"
        );
        assert!(SigstoreTrust::from_trusted_root_json("r.json", root).is_ok());

        let cfg = format!(
            r#"{{"mediaType":"{CLIENT_TRUST_CONFIG_MEDIA_TYPE}","trustedRoot":{root},"signing_config":{{}}}}"#
        );
        assert!(SigstoreTrust::from_trust_config_json("c.json", &cfg).is_ok());
        let e = SigstoreTrust::from_trusted_root_json("c.json", &cfg).unwrap_err();
        assert!(
            matches!(
                e,
                SigstoreError::WrongTrustFile {
                    found: TrustFile::ClientTrustConfig,
                    ..
                }
            ),
            "{e}"
        );
    }

    #[test]
    fn bad_trust_files_are_clear_errors() {
        for (json, want) in [
            ("", "not valid JSON"),
            ("{}", "no mediaType"),
            (r#"{"mediaType":"x"}"#, "is not a Sigstore trusted root"),
            (
                r#"{"mediaType":"application/vnd.dev.sigstore.trustedroot+json;version=0.1"}"#,
                "no certificate authority",
            ),
        ] {
            let e = SigstoreTrust::from_trusted_root_json("t.json", json).unwrap_err();
            assert!(e.to_string().contains(want), "{json}: {e}");
        }
        let e = SigstoreTrust::from_trust_config_json(
            "c.json",
            &format!(r#"{{"mediaType":"{CLIENT_TRUST_CONFIG_MEDIA_TYPE}"}}"#),
        )
        .unwrap_err();
        assert!(e.to_string().contains("no trustedRoot"), "{e}");
    }
}
