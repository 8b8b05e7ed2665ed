//! Self-managed webhook certificates: the CA lives in a Secret of the operator's namespace
//! (shared by all replicas); each replica issues its own serving certificate, re-issues it
//! before expiry and keeps the webhook configuration's caBundle right.
//!
//! The CA is rotated with an overlap, so that no admission fails during a CA change:
//! 1. a replica finds the CA due (a third of its life left, its key removed: the manual
//!    trigger, or longer-lived than `--ca-lifetime`: see [`SelfManaged::maintain`]) and writes a
//!    new one to the Secret, keeping the old certificate as `previous-ca.crt` (one update
//!    guarded by resourceVersion);
//! 2. every replica, on its next check, puts both CAs in the caBundle, and moves its serving
//!    certificate to the new CA only after it has seen the new CA in the caBundle for
//!    [`tls::CA_SETTLE`];
//! 3. the previous CA leaves the caBundle `--ca-overlap` after the rotation (or when it
//!    expires, if sooner).

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use anyhow::{Result, anyhow};
use k8s_openapi::ByteString;
use k8s_openapi::api::core::v1::Secret;
use kube::Client;
use kube::api::{Api, PostParams};

use crate::tls::{self, Ca, Resolver};

/// Secret key of the current CA certificate.
pub const CA_CERT: &str = "ca.crt";
/// Secret key of the current CA private key; removing it makes the next check rotate the CA.
pub const CA_KEY: &str = "ca.key";
/// Secret key of the CA before the last rotation (certificate only).
pub const PREVIOUS_CA_CERT: &str = "previous-ca.crt";
/// Secret key of the time of the last rotation (RFC 3339).
pub const ROTATED_AT: &str = "rotated-at";

/// Where the CA is kept and which names the serving certificate covers.
#[derive(Clone, Debug)]
pub struct SelfManaged {
    /// Operator namespace.
    pub namespace: String,
    /// Secret holding the CAs (see the key constants of this module).
    pub secret_name: String,
    /// DNS names of the serving certificate.
    pub dns_names: Vec<String>,
    /// IP addresses of the serving certificate.
    pub ips: Vec<IpAddr>,
    /// Serving certificate lifetime.
    pub lifetime: Duration,
    /// CA lifetime (`--ca-lifetime`).
    pub ca_lifetime: Duration,
    /// How long the previous CA stays in the caBundle after a rotation (`--ca-overlap`).
    pub ca_overlap: Duration,
}

/// The CAs the Secret holds.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CaSet {
    /// The CA serving certificates are issued from.
    pub current: Ca,
    /// The CA before the last rotation, certificate PEM.
    pub previous: Option<String>,
    /// When the last rotation happened.
    pub rotated_at: Option<SystemTime>,
}

impl CaSet {
    /// The caBundle: the current CA, then the previous one while it is trusted still (less than
    /// `overlap` after the rotation, and not expired). Every replica computes the same bytes
    /// from the same Secret.
    pub fn bundle(&self, now: SystemTime, overlap: Duration) -> String {
        let mut bundle = self.current.cert_pem.clone();
        let in_overlap = self
            .rotated_at
            .and_then(|t| t.checked_add(overlap))
            .is_some_and(|end| now < end);
        if let Some(prev) = &self.previous
            && in_overlap
            && tls::validity(prev).is_ok_and(|(_, end)| now < end)
        {
            if !bundle.ends_with('\n') {
                bundle.push('\n');
            }
            bundle.push_str(prev);
        }
        bundle
    }
}

/// Why the CA in the Secret must be replaced, or `None` when it serves. `cert` and `key` are
/// the stored PEMs, if any; a CA outliving `now + max_lifetime` is due too, when given.
pub fn rotation_due(
    cert: Option<&str>,
    key: Option<&str>,
    now: SystemTime,
    max_lifetime: Option<Duration>,
) -> Option<&'static str> {
    let Some(cert) = cert else {
        return Some("the Secret holds no CA yet");
    };
    let Ok((_, end)) = tls::validity(cert) else {
        return Some("ca.crt is not a PEM certificate");
    };
    let Some(key) = key.and_then(|k| rcgen::KeyPair::from_pem(k).ok()) else {
        return Some("ca.key is missing or invalid");
    };
    if !key_matches(cert, &key) {
        return Some("ca.key does not belong to ca.crt");
    }
    if tls::needs_rotation(cert, now) {
        return Some("less than a third of the CA's life is left");
    }
    // A day of slack: the CA was made a moment before now, with notBefore backdated.
    if max_lifetime.is_some_and(|l| end > now + l + Duration::from_secs(86400)) {
        return Some("the CA lives longer than --ca-lifetime allows");
    }
    None
}

fn key_matches(cert_pem: &str, key: &rcgen::KeyPair) -> bool {
    let Ok((_, pem)) = x509_parser::pem::parse_x509_pem(cert_pem.as_bytes()) else {
        return false;
    };
    let Ok(cert) = pem.parse_x509() else {
        return false;
    };
    cert.public_key().subject_public_key.data.as_ref() == key.public_key_raw()
}

fn text(s: &Secret, k: &str) -> Option<String> {
    let b = s.data.as_ref()?.get(k)?;
    String::from_utf8(b.0.clone())
        .ok()
        .filter(|t| !t.is_empty())
}

fn rfc3339(t: SystemTime) -> String {
    use time::format_description::well_known::Rfc3339;
    time::OffsetDateTime::from(t)
        .format(&Rfc3339)
        .unwrap_or_default()
}

fn parse_rfc3339(s: &str) -> Option<SystemTime> {
    use time::format_description::well_known::Rfc3339;
    time::OffsetDateTime::parse(s, &Rfc3339)
        .ok()
        .map(Into::into)
}

/// The Secret's data for `set`.
fn secret_data(set: &CaSet) -> BTreeMap<String, ByteString> {
    let b = |s: &str| ByteString(s.as_bytes().to_vec());
    let mut data = BTreeMap::from([
        (CA_CERT.to_string(), b(&set.current.cert_pem)),
        (CA_KEY.to_string(), b(&set.current.key_pem)),
    ]);
    if let Some(p) = &set.previous {
        data.insert(PREVIOUS_CA_CERT.into(), b(p));
    }
    if let Some(t) = set.rotated_at {
        data.insert(ROTATED_AT.into(), b(&rfc3339(t)));
    }
    data
}

/// Reads the CAs of `s`, or says why they must be rotated.
fn read_secret(
    s: &Secret,
    now: SystemTime,
    max_lifetime: Option<Duration>,
) -> Result<CaSet, &'static str> {
    let cert = text(s, CA_CERT);
    let key = text(s, CA_KEY);
    if let Some(why) = rotation_due(cert.as_deref(), key.as_deref(), now, max_lifetime) {
        return Err(why);
    }
    Ok(CaSet {
        current: Ca {
            cert_pem: cert.unwrap_or_default(),
            key_pem: key.unwrap_or_default(),
        },
        previous: text(s, PREVIOUS_CA_CERT),
        rotated_at: text(s, ROTATED_AT).as_deref().and_then(parse_rfc3339),
    })
}

fn forbidden(e: &kube::Error) -> bool {
    matches!(e, kube::Error::Api(s) if s.code == 403)
}

impl SelfManaged {
    fn secret_ref(&self) -> String {
        format!("{}/{}", self.namespace, self.secret_name)
    }

    /// An API error on the CA Secret, saying what to apply when RBAC refused it.
    fn secret_error(&self, e: kube::Error, verb: &str) -> anyhow::Error {
        let what = self.secret_ref();
        if forbidden(&e) {
            anyhow!(e).context(format!(
                "the operator may not {verb} the webhook CA Secret {what}: apply the Role of \
                 deploy/base/rbac.yaml (get and update on that Secret name) to its service account"
            ))
        } else {
            anyhow!(e).context(format!("cannot {verb} the webhook CA Secret {what}"))
        }
    }

    /// Reads the CAs from the Secret; rotates the CA when it is due ([`rotation_due`]; a CA
    /// living longer than `--ca-lifetime` only with `shorten`), keeping the old one as the
    /// previous CA. Creates the Secret when it is missing, which needs
    /// broad credentials (local runs, tests): in a cluster, deploy/base ships it empty. Replicas
    /// racing on a write are guarded by resourceVersion; the loser reads the winner's CA.
    pub async fn load_or_rotate(&self, client: &Client, shorten: bool) -> Result<CaSet> {
        let api: Api<Secret> = Api::namespaced(client.clone(), &self.namespace);
        for _ in 0..5 {
            let now = SystemTime::now();
            let stored = api
                .get_opt(&self.secret_name)
                .await
                .map_err(|e| self.secret_error(e, "read"))?;
            let Some(s) = stored else {
                let set = CaSet {
                    current: Ca::generate_for(self.ca_lifetime)?,
                    previous: None,
                    rotated_at: None,
                };
                let secret = Secret {
                    metadata: kube::api::ObjectMeta {
                        name: Some(self.secret_name.clone()),
                        namespace: Some(self.namespace.clone()),
                        ..Default::default()
                    },
                    type_: Some("Opaque".into()),
                    data: Some(secret_data(&set)),
                    ..Default::default()
                };
                match api.create(&PostParams::default(), &secret).await {
                    Ok(_) => return Ok(set),
                    Err(kube::Error::Api(e)) if e.code == 409 => continue,
                    Err(e) if forbidden(&e) => {
                        return Err(anyhow!(e).context(format!(
                            "the webhook CA Secret {} does not exist and the operator may not create \
                             it (deploy/base grants only get and update on it): apply \
                             deploy/base/webhook-ca-secret.yaml, or `kubectl -n {} create secret \
                             generic {}`",
                            self.secret_ref(),
                            self.namespace,
                            self.secret_name
                        )));
                    }
                    Err(e) => {
                        return Err(anyhow!(e).context(format!(
                            "cannot create the webhook CA Secret {} (does the namespace exist?)",
                            self.secret_ref()
                        )));
                    }
                }
            };
            let max_lifetime = shorten.then_some(self.ca_lifetime);
            let why = match read_secret(&s, now, max_lifetime) {
                Ok(set) => return Ok(set),
                Err(why) => why,
            };
            // The old certificate stays trusted through the overlap, if it still is a certificate.
            let previous =
                text(&s, CA_CERT).filter(|c| tls::validity(c).is_ok_and(|(_, end)| end > now));
            let set = CaSet {
                current: Ca::generate_for(self.ca_lifetime)?,
                previous,
                rotated_at: Some(now),
            };
            let mut replacement = s.clone();
            replacement.data = Some(secret_data(&set));
            replacement.string_data = None;
            match api
                .replace(&self.secret_name, &PostParams::default(), &replacement)
                .await
            {
                Ok(_) => {
                    tracing::info!(secret = %self.secret_ref(), reason = why, "webhook CA rotated");
                    return Ok(set);
                }
                Err(kube::Error::Api(e)) if e.code == 409 => continue,
                Err(e) => return Err(self.secret_error(e, "update")),
            }
        }
        Err(anyhow!(
            "the webhook CA Secret {} keeps changing under us; check for another process writing it",
            self.secret_ref()
        ))
    }

    /// The caBundle for `cas` now.
    pub fn ca_bundle(&self, cas: &CaSet) -> String {
        cas.bundle(SystemTime::now(), self.ca_overlap)
    }

    /// Issues a serving certificate from `ca` and returns it as a rustls key plus its PEM.
    pub fn issue(&self, ca: &Ca) -> Result<(Arc<rustls::sign::CertifiedKey>, String)> {
        let serving = ca.issue(&self.dns_names, &self.ips, self.lifetime)?;
        Ok((
            tls::certified_key(&serving.cert_pem, &serving.key_pem)?,
            serving.cert_pem,
        ))
    }

    /// Every `every`: re-reads the CAs (rotating the CA when due), keeps the caBundle of
    /// `webhook_config` right, and keeps the serving certificate fresh and issued by the
    /// current CA. `serving_pem` was issued from `cas.current`. Runs until the process ends.
    ///
    /// A CA living longer than `--ca-lifetime` (one made by a version that knew no rotation) is
    /// replaced only after this replica has run for `--ca-overlap`: during a rolling upgrade,
    /// replicas of the old version put back a caBundle of the old CA alone every check, which
    /// would fail admissions to replicas already serving a new-CA certificate.
    pub async fn maintain(
        self,
        client: Client,
        mut cas: CaSet,
        resolver: Arc<Resolver>,
        mut serving_pem: String,
        webhook_config: Option<String>,
        every: Duration,
    ) {
        let started = Instant::now();
        let mut serving_ca = cas.current.cert_pem.clone();
        // The CA this replica last saw in the caBundle, and since when without a change by us.
        let mut bundle_holds: Option<(String, Instant)> = None;
        loop {
            let shorten = started.elapsed() >= self.ca_overlap;
            match self.load_or_rotate(&client, shorten).await {
                Ok(fresh) => {
                    cas = fresh;
                    if let Some(name) = &webhook_config {
                        let bundle = self.ca_bundle(&cas);
                        // Only after a successful read: a stale CA set must not shrink the bundle.
                        match crate::registration::ensure_ca_bundle(&client, name, &bundle).await {
                            Ok(changed) => {
                                if changed {
                                    tracing::info!(config = %name, "caBundle updated");
                                }
                                let same = bundle_holds
                                    .as_ref()
                                    .is_some_and(|(c, _)| *c == cas.current.cert_pem);
                                // Had we to write it, the API server learns it only now.
                                if changed || !same {
                                    bundle_holds =
                                        Some((cas.current.cert_pem.clone(), Instant::now()));
                                }
                            }
                            Err(e) => {
                                bundle_holds = None;
                                tracing::warn!(error = %e, "cannot check the webhook caBundle")
                            }
                        }
                    }
                }
                Err(e) => {
                    tracing::warn!(error = %format!("{e:#}"), "cannot read the webhook CA; keeping the current one")
                }
            }
            let new_ca = serving_ca != cas.current.cert_pem;
            let trusted = webhook_config.is_none()
                || bundle_holds.as_ref().is_some_and(|(c, since)| {
                    *c == cas.current.cert_pem && since.elapsed() >= tls::CA_SETTLE
                });
            let due = if new_ca {
                trusted
            } else {
                tls::needs_rotation(&serving_pem, SystemTime::now())
            };
            if due {
                match self.issue(&cas.current) {
                    Ok((key, pem)) => {
                        resolver.set(key);
                        serving_pem = pem;
                        serving_ca = cas.current.cert_pem.clone();
                        if new_ca {
                            tracing::info!("webhook serving certificate moved to the new CA");
                        } else {
                            tracing::info!("webhook serving certificate rotated");
                        }
                    }
                    Err(e) => {
                        tracing::error!(error = %e, "cannot rotate the webhook serving certificate")
                    }
                }
            }
            tokio::time::sleep(every).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const YEAR: Duration = Duration::from_secs(365 * 86400);

    fn secret(pairs: &[(&str, &str)]) -> Secret {
        Secret {
            data: Some(
                pairs
                    .iter()
                    .map(|(k, v)| (k.to_string(), ByteString(v.as_bytes().to_vec())))
                    .collect(),
            ),
            ..Default::default()
        }
    }

    #[test]
    fn a_ca_is_rotated_when_due_and_only_then() {
        let now = SystemTime::now();
        let ca = Ca::generate_for(YEAR).unwrap();
        let (c, k) = (Some(ca.cert_pem.as_str()), Some(ca.key_pem.as_str()));
        // Passing twin: a fresh CA of the configured lifetime serves.
        assert_eq!(rotation_due(c, k, now, Some(YEAR)), None);
        assert_eq!(
            rotation_due(c, k, now + Duration::from_secs(250 * 86400), None),
            Some("less than a third of the CA's life is left")
        );
        let month = Duration::from_secs(30 * 86400);
        assert_eq!(
            rotation_due(c, k, now, Some(month)),
            Some("the CA lives longer than --ca-lifetime allows")
        );
        // Not asked to shorten (a replica just started): the long-lived CA serves on.
        assert_eq!(rotation_due(c, k, now, None), None);
        assert_eq!(
            rotation_due(c, None, now, Some(YEAR)),
            Some("ca.key is missing or invalid")
        );
        let other = Ca::generate_for(YEAR).unwrap();
        assert_eq!(
            rotation_due(c, Some(&other.key_pem), now, Some(YEAR)),
            Some("ca.key does not belong to ca.crt")
        );
        assert_eq!(
            rotation_due(None, k, now, Some(YEAR)),
            Some("the Secret holds no CA yet")
        );
        assert_eq!(
            rotation_due(Some("junk"), k, now, Some(YEAR)),
            Some("ca.crt is not a PEM certificate")
        );
    }

    #[test]
    fn the_bundle_keeps_the_previous_ca_for_the_overlap_only() {
        let now = SystemTime::now();
        let old = Ca::generate_for(YEAR).unwrap();
        let new = Ca::generate_for(YEAR).unwrap();
        let set = CaSet {
            current: new.clone(),
            previous: Some(old.cert_pem.clone()),
            rotated_at: Some(now),
        };
        let hour = Duration::from_secs(3600);
        let during = set.bundle(now + Duration::from_secs(60), hour);
        assert!(during.starts_with(&new.cert_pem) && during.contains(&old.cert_pem));
        assert_eq!(during.matches("BEGIN CERTIFICATE").count(), 2);
        assert_eq!(set.bundle(now + hour, hour), new.cert_pem);
        // An expired previous CA leaves at once; so does one with no rotation time.
        let short = Ca::generate_for(Duration::from_secs(60)).unwrap();
        let expired = CaSet {
            previous: Some(short.cert_pem),
            ..set.clone()
        };
        assert_eq!(
            expired.bundle(now + Duration::from_secs(120), hour),
            new.cert_pem
        );
        let undated = CaSet {
            rotated_at: None,
            ..set
        };
        assert_eq!(undated.bundle(now, hour), new.cert_pem);
    }

    #[test]
    fn the_secret_round_trips_and_an_empty_one_is_due() {
        let now = SystemTime::now();
        let set = CaSet {
            current: Ca::generate_for(YEAR).unwrap(),
            previous: Some(Ca::generate_for(YEAR).unwrap().cert_pem),
            rotated_at: Some(parse_rfc3339("2026-01-02T03:04:05Z").unwrap()),
        };
        let s = Secret {
            data: Some(secret_data(&set)),
            ..Default::default()
        };
        assert_eq!(read_secret(&s, now, Some(YEAR)), Ok(set));
        // What deploy/base ships: no data at all.
        assert_eq!(
            read_secret(&Secret::default(), now, Some(YEAR)),
            Err("the Secret holds no CA yet")
        );
        assert_eq!(
            read_secret(&secret(&[(CA_CERT, "")]), now, Some(YEAR)),
            Err("the Secret holds no CA yet")
        );
    }
}
