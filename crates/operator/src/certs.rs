//! Self-managed webhook certificates: the CA lives in a Secret of the operator's namespace
//! (created once, shared by all replicas); each replica issues its own serving certificate,
//! re-issues it before expiry and keeps the webhook configuration's caBundle right.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use anyhow::{Context, Result, anyhow};
use k8s_openapi::api::core::v1::Secret;
use kube::Client;
use kube::api::{Api, PostParams};

use crate::tls::{self, Ca, Resolver};

/// Where the CA is kept and which names the serving certificate covers.
#[derive(Clone, Debug)]
pub struct SelfManaged {
    /// Operator namespace.
    pub namespace: String,
    /// Secret holding `ca.crt` and `ca.key`.
    pub secret_name: String,
    /// DNS names of the serving certificate.
    pub dns_names: Vec<String>,
    /// IP addresses of the serving certificate.
    pub ips: Vec<IpAddr>,
    /// Serving certificate lifetime.
    pub lifetime: Duration,
}

fn ca_from_secret(s: &Secret) -> Option<Ca> {
    let data = s.data.as_ref()?;
    let text = |k: &str| {
        data.get(k)
            .and_then(|b| String::from_utf8(b.0.clone()).ok())
    };
    let ca = Ca {
        cert_pem: text("ca.crt")?,
        key_pem: text("ca.key")?,
    };
    let (_, not_after) = tls::validity(&ca.cert_pem).ok()?;
    (not_after > SystemTime::now() + Duration::from_secs(86400)).then_some(ca)
}

impl SelfManaged {
    /// Reads the CA from the Secret, creating both when missing. Two replicas starting at once
    /// race on the create; the loser reads the winner's CA.
    pub async fn load_or_create_ca(&self, client: &Client) -> Result<Ca> {
        let api: Api<Secret> = Api::namespaced(client.clone(), &self.namespace);
        for _ in 0..5 {
            match api.get_opt(&self.secret_name).await.with_context(|| {
                format!("cannot read Secret {}/{}", self.namespace, self.secret_name)
            })? {
                Some(s) => {
                    if let Some(ca) = ca_from_secret(&s) {
                        return Ok(ca);
                    }
                    // Present but unusable (expiring, edited): replace it, guarded by its version.
                    let ca = Ca::generate()?;
                    let mut replacement = s.clone();
                    replacement.data = Some(secret_data(&ca));
                    replacement.string_data = None;
                    match api
                        .replace(&self.secret_name, &PostParams::default(), &replacement)
                        .await
                    {
                        Ok(_) => return Ok(ca),
                        Err(kube::Error::Api(e)) if e.code == 409 => continue,
                        Err(e) => return Err(e).context("cannot replace the webhook CA Secret"),
                    }
                }
                None => {
                    let ca = Ca::generate()?;
                    let secret = Secret {
                        metadata: kube::api::ObjectMeta {
                            name: Some(self.secret_name.clone()),
                            namespace: Some(self.namespace.clone()),
                            ..Default::default()
                        },
                        type_: Some("Opaque".into()),
                        data: Some(secret_data(&ca)),
                        ..Default::default()
                    };
                    match api.create(&PostParams::default(), &secret).await {
                        Ok(_) => return Ok(ca),
                        Err(kube::Error::Api(e)) if e.code == 409 => continue,
                        Err(e) => return Err(e).with_context(|| format!("cannot create Secret {}/{} for the webhook CA (does the namespace exist?)", self.namespace, self.secret_name)),
                    }
                }
            }
        }
        Err(anyhow!(
            "the webhook CA Secret {}/{} keeps changing under us; check for another process writing it",
            self.namespace,
            self.secret_name
        ))
    }

    /// Issues a serving certificate from `ca` and returns it as a rustls key plus its PEM.
    pub fn issue(&self, ca: &Ca) -> Result<(Arc<rustls::sign::CertifiedKey>, String)> {
        let serving = ca.issue(&self.dns_names, &self.ips, self.lifetime)?;
        Ok((
            tls::certified_key(&serving.cert_pem, &serving.key_pem)?,
            serving.cert_pem,
        ))
    }

    /// Keeps the serving certificate fresh and the caBundle of `webhook_config` right, checking
    /// every `every`. Runs until the process ends.
    pub async fn maintain(
        self,
        client: Client,
        ca: Ca,
        resolver: Arc<Resolver>,
        mut serving_pem: String,
        webhook_config: Option<String>,
        every: Duration,
    ) {
        loop {
            if tls::needs_rotation(&serving_pem, SystemTime::now()) {
                match self.issue(&ca) {
                    Ok((key, pem)) => {
                        resolver.set(key);
                        serving_pem = pem;
                        tracing::info!("webhook serving certificate rotated");
                    }
                    Err(e) => {
                        tracing::error!(error = %e, "cannot rotate the webhook serving certificate")
                    }
                }
            }
            if let Some(name) = &webhook_config {
                // Re-applying the install manifests empties the caBundle; put it back.
                match crate::registration::ensure_ca_bundle(&client, name, &ca.cert_pem).await {
                    Ok(true) => tracing::info!(config = %name, "caBundle updated"),
                    Ok(false) => {}
                    Err(e) => tracing::warn!(error = %e, "cannot check the webhook caBundle"),
                }
            }
            tokio::time::sleep(every).await;
        }
    }
}

fn secret_data(ca: &Ca) -> BTreeMap<String, k8s_openapi::ByteString> {
    BTreeMap::from([
        (
            "ca.crt".to_string(),
            k8s_openapi::ByteString(ca.cert_pem.clone().into_bytes()),
        ),
        (
            "ca.key".to_string(),
            k8s_openapi::ByteString(ca.key_pem.clone().into_bytes()),
        ),
    ])
}
