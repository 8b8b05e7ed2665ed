//! The registry side of verifying image volumes at admission: resolve each reference to its
//! manifest, fetch the signature referrers (never a layer), and verify them with each policy's
//! authorities; the decision then pins or refuses from these verdicts.
//!
//! Every call of one admission shares one deadline (`--registry-timeout`, inside the webhook's
//! own timeout): a registry that does not answer in time gives [`ImageVerdict::Unreachable`],
//! which refuses the pod with "retry" (fail closed). Successful verifications are cached by
//! (manifest digest, trust key) for `--image-cache-ttl`, at most `--image-cache-size` of them;
//! refusals are not, so a model signed a moment after a refused pod is admitted on the retry.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use model_signing::authorities::AuthoritiesDocument;
use model_signing::oci::authorities::{
    ManifestRefusal, enough_signers, verify_files_with_authorities,
    verify_manifest_with_authorities,
};
use model_signing::oci::credentials::DockerConfig;
use model_signing::oci::registry::{RegistryClient, RegistryError, RegistryOptions, Resolved};
use model_signing::oci::{manifest, modelcar};
use sha2::{Digest, Sha256};

use super::{ImageCheck, ImageTrust, ImageVerdict, Verdicts};

/// Default of `--registry-timeout`: well inside the webhook's 10 s, leaving time to verify and
/// answer.
pub const DEFAULT_REGISTRY_TIMEOUT: Duration = Duration::from_secs(5);
/// Default of `--image-cache-ttl`.
pub const DEFAULT_CACHE_TTL: Duration = Duration::from_secs(600);
/// Default of `--image-cache-size`.
pub const DEFAULT_CACHE_SIZE: usize = 4096;
/// At most this many registry clients (one per distinct set of credentials) are kept.
const MAX_CLIENTS: usize = 64;

/// How the verifier talks to registries and caches what verified.
#[derive(Clone, Debug)]
pub struct VerifierOptions {
    /// The deadline of all registry calls of one admission.
    pub timeout: Duration,
    /// PEM CA certificates trusted for registries besides the system's roots.
    pub extra_ca_pem: Vec<Vec<u8>>,
    /// Plain HTTP to registries (tests only).
    pub plain_http: bool,
    /// How long a verification is reused.
    pub cache_ttl: Duration,
    /// How many verifications are kept.
    pub cache_size: usize,
}

impl Default for VerifierOptions {
    fn default() -> Self {
        VerifierOptions {
            timeout: DEFAULT_REGISTRY_TIMEOUT,
            extra_ca_pem: Vec::new(),
            plain_http: false,
            cache_ttl: DEFAULT_CACHE_TTL,
            cache_size: DEFAULT_CACHE_SIZE,
        }
    }
}

/// What one admission's registry work found, for logs and metrics.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct VerifyStats {
    /// Verdicts answered from the cache.
    pub cached: usize,
    /// Verifications made.
    pub verified: usize,
}

/// The pod's own pull credentials (`--pod-pull-secrets`).
#[derive(Clone, Debug, Default)]
pub struct PodCredentials {
    /// A docker config merged from the pod's pull Secrets.
    pub config: Option<String>,
    /// Why they could not be read, said if the registry refuses anonymous access.
    pub problem: Option<String>,
}

/// One reference, the credentials to read it with, and the trusts to verify it with.
type Group<'c> = (&'c str, Option<&'c str>, Vec<Arc<ImageTrust>>);

/// Verifies image references against registries; shared by every admission.
pub struct ImageVerifier {
    options: VerifierOptions,
    clients: Mutex<HashMap<String, Arc<RegistryClient>>>,
    cache: Mutex<VerifiedCache>,
}

impl ImageVerifier {
    /// A verifier with these options; `Err` when the CA certificates cannot be used.
    pub fn new(options: VerifierOptions) -> Result<ImageVerifier, RegistryError> {
        // Build the anonymous client now, so a bad --registry-ca fails at startup.
        let anonymous = Arc::new(RegistryClient::new(registry_options(
            &options,
            DockerConfig::default(),
        ))?);
        let cache = VerifiedCache::new(options.cache_ttl, options.cache_size);
        Ok(ImageVerifier {
            clients: Mutex::new(HashMap::from([(String::new(), anonymous)])),
            cache: Mutex::new(cache),
            options,
        })
    }

    /// The verdict of every check (each distinct reference resolved once per set of
    /// credentials, so that every policy judges the same manifest), within the deadline.
    /// `pod` are the pod's own pull credentials, used where a policy names no pull Secret.
    pub async fn verify(
        &self,
        checks: &[ImageCheck],
        pod: &PodCredentials,
        deadline: tokio::time::Instant,
    ) -> (Verdicts, VerifyStats) {
        let mut groups: Vec<Group<'_>> = Vec::new();
        for c in checks {
            let creds = c.trust.credentials.as_deref().or(pod.config.as_deref());
            match groups
                .iter_mut()
                .find(|(r, k, _)| *r == c.reference && *k == creds)
            {
                Some((_, _, trusts)) => {
                    if !trusts.iter().any(|t| t.key == c.trust.key) {
                        trusts.push(c.trust.clone());
                    }
                }
                None => groups.push((&c.reference, creds, vec![c.trust.clone()])),
            }
        }
        let secs = self.options.timeout.as_secs_f64();
        let runs = groups.iter().map(|(reference, creds, trusts)| async move {
            let outcome = tokio::time::timeout_at(
                deadline,
                self.verify_reference(reference, *creds, trusts, pod.problem.as_deref()),
            )
            .await;
            let results = outcome.unwrap_or_else(|_| {
                let verdict = ImageVerdict::Unreachable(format!(
                    "the registry did not answer within {secs} s (--registry-timeout); the pod is refused until its model can be verified: retry"
                ));
                (
                    trusts.iter().map(|t| (t.key.clone(), verdict.clone())).collect(),
                    VerifyStats::default(),
                )
            });
            (*reference, results)
        });
        let mut verdicts = Verdicts::default();
        let mut stats = VerifyStats::default();
        for (reference, (results, s)) in futures::future::join_all(runs).await {
            stats.cached += s.cached;
            stats.verified += s.verified;
            for (key, verdict) in results {
                verdicts.insert(reference, &key, verdict);
            }
        }
        (verdicts, stats)
    }

    /// The verdicts for one reference under each trust (all with the same credentials).
    async fn verify_reference(
        &self,
        reference: &str,
        credentials: Option<&str>,
        trusts: &[Arc<ImageTrust>],
        credentials_problem: Option<&str>,
    ) -> (Vec<(String, ImageVerdict)>, VerifyStats) {
        let registry_verdict = |e: &RegistryError| {
            let verdict = registry_verdict(e);
            match (verdict, credentials_problem) {
                (ImageVerdict::Refused(m), Some(p))
                    if matches!(e, RegistryError::Unauthorized { .. }) =>
                {
                    ImageVerdict::Refused(format!("{m} ({p})"))
                }
                (v, _) => v,
            }
        };
        let mut stats = VerifyStats::default();
        let all = |v: ImageVerdict| -> Vec<(String, ImageVerdict)> {
            trusts.iter().map(|t| (t.key.clone(), v.clone())).collect()
        };
        let parsed = match RegistryClient::parse_reference(reference) {
            Ok(r) => r,
            Err(e) => {
                return (
                    all(ImageVerdict::Refused(format!(
                        "{e}: fix the volume's image.reference"
                    ))),
                    stats,
                );
            }
        };
        // A reference pinned by digest that verified recently needs no registry call.
        if let Some(digest) = parsed.digest() {
            let pinned = model_signing::oci::registry::Reference::with_digest(
                parsed.registry().into(),
                parsed.repository().into(),
                digest.into(),
            )
            .whole();
            let mut cache = self.lock_cache();
            if trusts.iter().all(|t| cache.fresh(digest, &t.key)) {
                stats.cached = trusts.len();
                return (all(ImageVerdict::Verified { pinned }), stats);
            }
        }
        let client = match self.client(credentials) {
            Ok(c) => c,
            Err(e) => return (all(ImageVerdict::Refused(e)), stats),
        };
        let resolved = match client.resolve(reference).await {
            Ok(r) => r,
            Err(e) => return (all(registry_verdict(&e)), stats),
        };
        let pinned = resolved.pinned_string();
        let mut out = Vec::new();
        let mut misses = Vec::new();
        {
            let mut cache = self.lock_cache();
            for t in trusts {
                if cache.fresh(&resolved.digest, &t.key) {
                    stats.cached += 1;
                    out.push((
                        t.key.clone(),
                        ImageVerdict::Verified {
                            pinned: pinned.clone(),
                        },
                    ));
                } else {
                    misses.push(t);
                }
            }
        }
        if misses.is_empty() {
            return (out, stats);
        }
        let bundles = match client.bundles(&resolved).await {
            Ok(b) => b,
            Err(e) => {
                let verdict = registry_verdict(&e);
                out.extend(misses.iter().map(|t| (t.key.clone(), verdict.clone())));
                return (out, stats);
            }
        };
        let bundles: Vec<&[u8]> = bundles.iter().map(|b| b.bytes.as_slice()).collect();
        for t in misses {
            stats.verified += 1;
            let verdict = match verify_trust(&client, &resolved, &bundles, t).await {
                Ok(()) => {
                    self.lock_cache().insert(&resolved.digest, &t.key);
                    ImageVerdict::Verified {
                        pinned: pinned.clone(),
                    }
                }
                Err(verdict) => verdict,
            };
            out.push((t.key.clone(), verdict));
        }
        (out, stats)
    }

    /// The client for `credentials` (a docker config), made once per distinct config.
    fn client(&self, credentials: Option<&str>) -> Result<Arc<RegistryClient>, String> {
        let key = credentials
            .map(|c| hex::encode(Sha256::digest(c.as_bytes())))
            .unwrap_or_default();
        let mut clients = self
            .clients
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(c) = clients.get(&key) {
            return Ok(c.clone());
        }
        let config = DockerConfig::parse(
            "spec.images.pullSecret",
            credentials.unwrap_or_default().as_bytes(),
        )
        .map_err(|e| format!("{e}: fix the Secret's .dockerconfigjson"))?;
        let client = RegistryClient::new(registry_options(&self.options, config))
            .map_err(|e| e.to_string())?;
        if clients.len() >= MAX_CLIENTS {
            // Rotated secrets leave old clients behind; start over rather than grow.
            clients.retain(|k, _| k.is_empty());
        }
        let client = Arc::new(client);
        clients.insert(key, client.clone());
        Ok(client)
    }

    /// When the registry work of an admission starting now must be done (`--registry-timeout`).
    pub fn deadline(&self) -> tokio::time::Instant {
        tokio::time::Instant::now() + self.options.timeout
    }

    fn lock_cache(&self) -> std::sync::MutexGuard<'_, VerifiedCache> {
        self.cache
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

fn registry_options(options: &VerifierOptions, credentials: DockerConfig) -> RegistryOptions {
    RegistryOptions {
        credentials,
        extra_ca_pem: options.extra_ca_pem.clone(),
        plain_http: options.plain_http,
        timeout: options.timeout,
    }
}

/// Verifies the bundles of `resolved` with the authorities of `trust`: from the manifest alone
/// for a ModelPack artifact; for a modelcar image (with `spec.images.modelcarRoot`), by
/// streaming its layers once, after the signatures' envelopes have passed.
async fn verify_trust(
    client: &RegistryClient,
    resolved: &Resolved,
    bundles: &[&[u8]],
    trust: &ImageTrust,
) -> Result<(), ImageVerdict> {
    let unusable = |e: &dyn std::fmt::Display| {
        ImageVerdict::Refused(format!("the policy's authorities cannot be used: {e}"))
    };
    let document =
        AuthoritiesDocument::from_json("the policy's authorities", trust.document.as_bytes())
            .map_err(|e| unusable(&e))?;
    let authorities = document
        .build(SystemTime::now())
        .map_err(|e| unusable(&e))?;
    let modelcar = manifest::parse_image(&resolved.manifest)
        .map(|m| modelcar::is_modelcar(&m))
        .unwrap_or(false);
    let refusal = |e: ManifestRefusal| {
        ImageVerdict::Refused(match e {
            ManifestRefusal::Artifact(e) => format!("{e}: {ONLY_MODELPACK}"),
            // A tag signed earlier and moved since looks unsigned: say which manifest it names.
            ManifestRefusal::Unsigned if !resolved.given.contains('@') => format!(
                "{} (the tag names {} now: if it was signed before, it has moved since)",
                ManifestRefusal::Unsigned,
                resolved.digest
            ),
            e => e.to_string(),
        })
    };
    if !modelcar {
        return verify_manifest_with_authorities(
            &resolved.manifest,
            bundles,
            &authorities,
            document.required,
        )
        .map(|_| ())
        .map_err(refusal);
    }
    let Some(root) = &trust.modelcar_root else {
        return Err(ImageVerdict::Refused(
            "it is a modelcar image (tar layers), whose layer digests are not the files' digests: set the policy's spec.images.modelcarRoot to the model's directory in the image (e.g. /models) to verify it by streaming its layers, or push the model as a ModelPack artifact (model-signing oci push)".into(),
        ));
    };
    // No layer is fetched for a model no trusted signer signed.
    enough_signers(bundles, &authorities, document.required).map_err(refusal)?;
    let files = client
        .modelcar_files(resolved, root)
        .await
        .map_err(|e| match e {
            // The image is a modelcar; what is wrong is in it (a link, a path, no files).
            // The engine's words name the CLI's flag; here the field is the policy's.
            RegistryError::Artifact(e) => ImageVerdict::Refused(format!(
                "{} (spec.images.modelcarRoot is {root})",
                e.to_string()
                    .replace("--modelcar-root", "spec.images.modelcarRoot")
            )),
            e => registry_verdict(&e),
        })?;
    verify_files_with_authorities(
        files,
        resolved.digest.clone(),
        bundles,
        &authorities,
        document.required,
    )
    .map(|_| ())
    .map_err(refusal)
}

/// What admission can verify, said when it meets something else.
const ONLY_MODELPACK: &str = "admission verifies ModelPack artifacts with raw layers (model-signing oci push), and modelcar images (tar layers) when the policy sets spec.images.modelcarRoot";

/// A registry failure as a verdict: what a retry can fix is [`ImageVerdict::Unreachable`].
fn registry_verdict(e: &RegistryError) -> ImageVerdict {
    match e {
        RegistryError::Unreachable { .. }
        | RegistryError::Timeout { .. }
        | RegistryError::Protocol { .. }
        | RegistryError::Io { .. } => ImageVerdict::Unreachable(format!(
            "{e}; the pod is refused until its model can be verified: retry when the registry answers"
        )),
        RegistryError::Unauthorized { .. } => ImageVerdict::Refused(format!(
            "{e}: give the operator credentials for this registry: a ClusterModelValidation's spec.images.pullSecret (a kubernetes.io/dockerconfigjson Secret in the operator's namespace), or the pod's imagePullSecrets when the operator runs with --pod-pull-secrets"
        )),
        RegistryError::Tls { .. } => ImageVerdict::Refused(format!(
            "{e}: if the registry uses a private CA, give it to the operator with --registry-ca"
        )),
        RegistryError::NotFound { .. } => {
            ImageVerdict::Refused(format!("{e}: check the volume's image.reference"))
        }
        RegistryError::BadReference { .. } => {
            ImageVerdict::Refused(format!("{e}: fix the volume's image.reference"))
        }
        RegistryError::TooLarge { .. } | RegistryError::Artifact(_) => {
            ImageVerdict::Refused(format!(
                "{e}: only ModelPack artifacts with raw layers (model-signing oci push) are verified at admission"
            ))
        }
    }
}

/// Verifications that succeeded, by (manifest digest, trust key), with when; bounded, oldest
/// first out.
struct VerifiedCache {
    ttl: Duration,
    capacity: usize,
    at: HashMap<(String, String), Instant>,
    order: VecDeque<(String, String)>,
}

impl VerifiedCache {
    fn new(ttl: Duration, capacity: usize) -> VerifiedCache {
        VerifiedCache {
            ttl,
            capacity,
            at: HashMap::new(),
            order: VecDeque::new(),
        }
    }

    /// Whether (digest, key) verified less than the TTL ago; forgets it if longer.
    fn fresh(&mut self, digest: &str, key: &str) -> bool {
        let k = (digest.to_string(), key.to_string());
        match self.at.get(&k) {
            Some(t) if t.elapsed() < self.ttl => true,
            Some(_) => {
                self.at.remove(&k);
                false
            }
            None => false,
        }
    }

    fn insert(&mut self, digest: &str, key: &str) {
        if self.capacity == 0 {
            return;
        }
        let k = (digest.to_string(), key.to_string());
        while self.at.len() >= self.capacity {
            match self.order.pop_front() {
                Some(old) => {
                    self.at.remove(&old);
                }
                None => break,
            }
        }
        if self.at.insert(k.clone(), Instant::now()).is_none() {
            self.order.push_back(k);
        }
        // Entries forgotten by `fresh` leave their place in `order`: compact now and then.
        if self.order.len() > 2 * self.capacity {
            let at = &self.at;
            self.order.retain(|k| at.contains_key(k));
        }
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.at.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cache_is_bounded_and_forgets_after_its_ttl() {
        let mut c = VerifiedCache::new(Duration::from_secs(60), 3);
        for d in ["a", "b", "c", "d"] {
            c.insert(d, "k");
        }
        assert_eq!(c.len(), 3);
        assert!(!c.fresh("a", "k"), "the oldest went first");
        assert!(c.fresh("d", "k"));
        assert!(!c.fresh("d", "other trust"));
        let mut expired = VerifiedCache::new(Duration::ZERO, 3);
        expired.insert("a", "k");
        assert!(!expired.fresh("a", "k"));
        assert_eq!(expired.len(), 0);
        let mut none = VerifiedCache::new(Duration::from_secs(60), 0);
        none.insert("a", "k");
        assert!(!none.fresh("a", "k"));
    }

    #[test]
    fn registry_failures_that_a_retry_can_fix_say_retry() {
        let down = RegistryError::Unreachable {
            registry: "r".into(),
            detail: "connection refused".into(),
        };
        assert!(
            matches!(registry_verdict(&down), ImageVerdict::Unreachable(m) if m.contains("retry"))
        );
        let denied = RegistryError::Unauthorized {
            registry: "r".into(),
            reference: "r/m:v1".into(),
            sent: false,
            helper: None,
        };
        assert!(
            matches!(registry_verdict(&denied), ImageVerdict::Refused(m) if m.contains("spec.images.pullSecret"))
        );
    }
}
