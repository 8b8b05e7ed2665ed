//! Registry IO for models as OCI artifacts, with oci-client (feature `registry`).
//!
//! It lives in the engine crate, behind a feature, so that both the CLI and the operator's
//! webhook use the same calls without Kubernetes and without depending on the CLI crate. The
//! CLI turns it on, so the agent binary injected into pods links it too, but starts no runtime
//! and opens no connection unless an `oci` command runs.
//!
//! What it does: resolve a reference to its manifest (one `GET` of the manifest), push a
//! directory as a ModelPack artifact, attach a bundle as an OCI 1.1 referrer (keeping the
//! referrers tag schema on registries without the referrers API), and fetch the bundles
//! attached to a manifest. Verifying needs only the manifest, the referrers list, the referrer
//! manifests and the bundle blobs: never a layer.
//!
//! Bounds: every operation has a deadline ([`RegistryOptions::timeout`]; blob uploads get it per
//! request instead, as their size is the user's). Bundles are read as a stream and refused past
//! [`MAX_BUNDLE_BYTES`]; referrers past [`MAX_REFERRERS`] are not read. Manifests and referrer
//! lists are refused past [`MAX_MANIFEST_BYTES`], but only once received: oci-client 0.18's
//! `pull_manifest_raw` and `pull_referrers` buffer the whole response body (reqwest `bytes()`),
//! with no size limit of their own, so a hostile registry can make this process buffer what it
//! sends before the deadline stops it.
//!
//! oci-client 0.18 does not keep the referrers tag schema when pushing a referrer (it reads it
//! when listing): [`RegistryClient::attach_bundle`] does, when the listing does not show the
//! new referrer.

use std::path::{Path, PathBuf};
use std::time::Duration;

use futures::StreamExt as _;
use oci_client::Client;
/// An image reference (`registry/repository:tag`, `…@sha256:…`), as oci-client parses it.
pub use oci_client::Reference;
use oci_client::client::{Certificate, CertificateEncoding, ClientConfig, ClientProtocol};
use oci_client::errors::OciDistributionError;
use oci_client::manifest::OciDescriptor;
use oci_client::secrets::RegistryAuth;
use tokio::io::AsyncReadExt as _;

use super::credentials::{DockerConfig, Lookup};
use super::manifest::{self, Descriptor};
use super::modelcar::{self, Modelcar};
use super::modelpack::{ArtifactFiles, Packed};
use super::referrer::{self, ANNOTATION_PREDICATE_TYPE};
use super::{
    ArtifactError, BUNDLE_ARTIFACT_TYPE, IMAGE_INDEX_MEDIA_TYPE, IMAGE_MANIFEST_MEDIA_TYPE,
    MAX_MANIFEST_BYTES, sha256_digest,
};
use crate::limits::MAX_BUNDLE_BYTES;
use crate::name::ModelPath;
use crate::statement::PREDICATE_TYPE;

/// The most bundle referrers of one manifest that are read: a model has one signature, or a
/// few (co-signers, rotations); more are someone filling the list.
pub const MAX_REFERRERS: usize = 16;

/// The default deadline of one registry operation.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);

/// Bytes read from a file per upload chunk.
const UPLOAD_CHUNK: usize = 4 * 1024 * 1024;

/// How to talk to registries.
#[derive(Debug, Clone)]
pub struct RegistryOptions {
    /// Credentials by registry (a docker `config.json`; empty: anonymous everywhere).
    pub credentials: DockerConfig,
    /// PEM CA certificates trusted besides the system's roots.
    pub extra_ca_pem: Vec<Vec<u8>>,
    /// Talk plain HTTP instead of HTTPS (loopback and test registries; never chosen silently).
    pub plain_http: bool,
    /// Deadline of each operation (and of each request of an upload).
    pub timeout: Duration,
}

impl Default for RegistryOptions {
    fn default() -> Self {
        RegistryOptions {
            credentials: DockerConfig::default(),
            extra_ca_pem: Vec::new(),
            plain_http: false,
            timeout: DEFAULT_TIMEOUT,
        }
    }
}

/// Why a registry operation failed. Messages name the registry and what was asked; callers add
/// how to fix it in their own terms (flags, policy fields).
#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    /// Not an image reference.
    #[error("{reference:?} is not a valid image reference: {detail}")]
    BadReference {
        /// As given.
        reference: String,
        /// Why.
        detail: String,
    },
    /// The registry refused the request for lack of (valid) credentials.
    #[error("{registry} refused access to {reference}: {}", match (.sent, .helper) {
        (true, _) => "the credentials sent were not accepted".to_string(),
        (false, Some(h)) => format!("no credentials were sent (the docker config names the credential helper {h:?}, which is not supported)"),
        (false, None) => "no credentials were sent (none are configured for this registry)".to_string(),
    })]
    Unauthorized {
        /// The registry host.
        registry: String,
        /// The reference asked for.
        reference: String,
        /// Whether credentials were sent.
        sent: bool,
        /// The credential helper the config names for this registry, if any.
        helper: Option<String>,
    },
    /// No trusted TLS connection (unknown CA, wrong name, or the registry speaks plain HTTP).
    #[error("no trusted TLS connection to {registry}: {detail}")]
    Tls {
        /// The registry host.
        registry: String,
        /// The cause.
        detail: String,
    },
    /// The registry could not be reached.
    #[error("cannot reach {registry}: {detail}")]
    Unreachable {
        /// The registry host.
        registry: String,
        /// The cause.
        detail: String,
    },
    /// An operation ran past its deadline.
    #[error("{what} at {registry} took longer than {secs} s")]
    Timeout {
        /// The registry host.
        registry: String,
        /// What was asked.
        what: String,
        /// The deadline.
        secs: u64,
    },
    /// The repository, tag or digest does not exist.
    #[error("{reference} was not found")]
    NotFound {
        /// The reference asked for.
        reference: String,
    },
    /// A response larger than its bound.
    #[error("{what} has {size} bytes, more than the limit of {limit}")]
    TooLarge {
        /// What was read.
        what: String,
        /// Its size (or the first count past the limit).
        size: u64,
        /// The bound.
        limit: u64,
    },
    /// Any other refusal or a malformed answer.
    #[error("{what} at {registry} failed: {detail}")]
    Protocol {
        /// The registry host.
        registry: String,
        /// What was asked.
        what: String,
        /// The registry's answer.
        detail: String,
    },
    /// The manifest is not a model this engine can map, or a referrer is malformed.
    #[error(transparent)]
    Artifact(#[from] ArtifactError),
    /// A model file could not be read for upload.
    #[error("cannot read {path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
}

impl RegistryError {
    /// A short, stable label for metrics and JSON output.
    pub fn kind(&self) -> &'static str {
        match self {
            RegistryError::BadReference { .. } => "usage",
            RegistryError::Unauthorized { .. } => "registry_unauthorized",
            RegistryError::Tls { .. } => "registry_tls",
            RegistryError::Unreachable { .. } => "registry_unreachable",
            RegistryError::Timeout { .. } => "registry_timeout",
            RegistryError::NotFound { .. } => "not_found",
            RegistryError::TooLarge { .. } => "too_large",
            RegistryError::Protocol { .. } => "registry",
            RegistryError::Artifact(_) => "invalid_artifact",
            RegistryError::Io { .. } => "model_unreadable",
        }
    }
}

/// A reference resolved to its manifest.
#[derive(Debug, Clone)]
pub struct Resolved {
    /// The reference as given.
    pub given: String,
    /// `registry/repository@sha256:…`: what to pin.
    pub pinned: Reference,
    /// `sha256:…` of [`Resolved::manifest`].
    pub digest: String,
    /// The manifest bytes, as served (and checked against the digest).
    pub manifest: Vec<u8>,
}

impl Resolved {
    /// `registry/repository@sha256:…`.
    pub fn pinned_string(&self) -> String {
        self.pinned.whole()
    }
}

/// A bundle attached to a manifest.
#[derive(Debug, Clone)]
pub struct FetchedBundle {
    /// The referrer manifest's digest.
    pub referrer: String,
    /// The bundle bytes (checked against their digest).
    pub bytes: Vec<u8>,
}

/// A bundle attached by [`RegistryClient::attach_bundle`].
#[derive(Debug, Clone)]
pub struct Attached {
    /// The referrer manifest's digest.
    pub referrer: String,
    /// True when the referrers tag schema index was written (the registry did not list the
    /// referrer by its subject).
    pub tag_schema: bool,
}

/// oci-client's descriptor for fetching the blob `layer` describes.
fn oci_descriptor(layer: &Descriptor) -> OciDescriptor {
    OciDescriptor {
        media_type: layer.media_type.clone(),
        digest: layer.digest.clone(),
        size: i64::try_from(layer.size).unwrap_or(i64::MAX),
        ..OciDescriptor::default()
    }
}

/// A layer's bytes as they arrive, read by the (blocking) tar reader on another thread.
struct ChannelReader {
    rx: tokio::sync::mpsc::Receiver<bytes::Bytes>,
    current: bytes::Bytes,
}

impl std::io::Read for ChannelReader {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        while self.current.is_empty() {
            match self.rx.blocking_recv() {
                Some(chunk) => self.current = chunk,
                None => return Ok(0),
            }
        }
        let n = buf.len().min(self.current.len());
        buf[..n].copy_from_slice(&self.current.split_to(n));
        Ok(n)
    }
}

/// A client of OCI registries.
pub struct RegistryClient {
    client: Client,
    /// The same, with chunked uploads: the one way oci-client 0.18 uploads an empty blob (its
    /// monolithic upload refuses empty data).
    chunked: Client,
    options: RegistryOptions,
}

/// The reference a manifest is PUT to by digest. oci-client 0.18 panics when a registry answers
/// a manifest PUT to a digest reference without `Location` (its workaround for registries that
/// omit it strips the *tag* from the URL and `expect`s it there); the same URL from a
/// reference whose "tag" is the digest takes the workaround's path without panicking.
fn put_by_digest(r: &Reference, digest: &str) -> Reference {
    Reference::with_tag(r.registry().into(), r.repository().into(), digest.into())
}

/// The chain of an error's causes, for classification and messages.
fn chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut parts = vec![e.to_string()];
    let mut cur = e.source();
    while let Some(c) = cur {
        let text = c.to_string();
        if !parts.iter().any(|p| p.contains(&text)) {
            parts.push(text);
        }
        cur = c.source();
    }
    parts.join(": ")
}

impl RegistryClient {
    /// A client with these options.
    pub fn new(options: RegistryOptions) -> Result<Self, RegistryError> {
        let config = |monolithic: bool| ClientConfig {
            protocol: if options.plain_http {
                ClientProtocol::Http
            } else {
                ClientProtocol::Https
            },
            extra_root_certificates: options
                .extra_ca_pem
                .iter()
                .map(|pem| Certificate {
                    encoding: CertificateEncoding::Pem,
                    data: pem.clone(),
                })
                .collect(),
            // One PUT per blob (streamed for files): every registry takes it, while chunked
            // uploads fail on some (go-containerregistry's answers a PATCH without Location).
            use_monolithic_push: monolithic,
            connect_timeout: Some(options.timeout),
            read_timeout: Some(options.timeout),
            ..ClientConfig::default()
        };
        // `Client::new` falls back to a default client on a bad config; a bad CA must fail.
        let build = |monolithic| {
            Client::try_from(config(monolithic)).map_err(|e| RegistryError::Tls {
                registry: "any registry".into(),
                detail: format!("cannot use the CA certificates given: {}", chain(&e)),
            })
        };
        Ok(RegistryClient {
            client: build(true)?,
            chunked: build(false)?,
            options,
        })
    }

    /// Parses an image reference (`registry/repository:tag`, `…@sha256:…`).
    pub fn parse_reference(reference: &str) -> Result<Reference, RegistryError> {
        reference
            .parse()
            .map_err(|e: oci_client::ParseError| RegistryError::BadReference {
                reference: reference.into(),
                detail: e.to_string(),
            })
    }

    /// Registers the configured credentials of `r`'s registry with the client, and says what
    /// was found (for messages: whether credentials were sent, or only a helper names them).
    /// oci-client asks `GET /v2/` for an auth challenge before a request whose credentials (or
    /// anonymity) it has no token for yet: with anonymous access, before every request.
    async fn authorize(&self, r: &Reference) -> Lookup {
        let lookup = self.options.credentials.lookup(r.resolve_registry());
        if let Lookup::Basic(b) = &lookup {
            let auth = RegistryAuth::Basic(b.username.clone(), b.password.clone());
            for c in [&self.client, &self.chunked] {
                c.store_auth_if_needed(r.resolve_registry(), &auth).await;
            }
        }
        lookup
    }

    fn auth_of(lookup: &Lookup) -> RegistryAuth {
        match lookup {
            Lookup::Basic(b) => RegistryAuth::Basic(b.username.clone(), b.password.clone()),
            _ => RegistryAuth::Anonymous,
        }
    }

    /// Turns an oci-client error into ours.
    fn classify(
        &self,
        e: OciDistributionError,
        r: &Reference,
        lookup: &Lookup,
        what: &str,
    ) -> RegistryError {
        let registry = r.resolve_registry().to_string();
        let unauthorized = || RegistryError::Unauthorized {
            registry: registry.clone(),
            reference: r.whole(),
            sent: matches!(lookup, Lookup::Basic(_)),
            helper: match lookup {
                Lookup::Helper(h) => Some(h.clone()),
                _ => None,
            },
        };
        match &e {
            OciDistributionError::UnauthorizedError { .. }
            | OciDistributionError::AuthenticationFailure(_) => unauthorized(),
            OciDistributionError::ServerError { code: 401, .. } => unauthorized(),
            OciDistributionError::ServerError { code: 404, .. }
            | OciDistributionError::ImageManifestNotFoundError(_) => RegistryError::NotFound {
                reference: r.whole(),
            },
            OciDistributionError::RegistryError { envelope, .. }
                if envelope.errors.iter().any(|x| {
                    matches!(
                        x.code,
                        oci_client::errors::OciErrorCode::ManifestUnknown
                            | oci_client::errors::OciErrorCode::NameUnknown
                            | oci_client::errors::OciErrorCode::BlobUnknown
                    )
                }) =>
            {
                RegistryError::NotFound {
                    reference: r.whole(),
                }
            }
            OciDistributionError::RegistryError { envelope, .. }
                if envelope.errors.iter().any(|x| {
                    matches!(
                        x.code,
                        oci_client::errors::OciErrorCode::Unauthorized
                            | oci_client::errors::OciErrorCode::Denied
                    )
                }) =>
            {
                unauthorized()
            }
            OciDistributionError::RequestError(re)
                if re
                    .status()
                    .is_some_and(|s| s.as_u16() == 401 || s.as_u16() == 403) =>
            {
                unauthorized()
            }
            OciDistributionError::RequestError(re)
                if re.status().is_some_and(|s| s.as_u16() == 404) =>
            {
                RegistryError::NotFound {
                    reference: r.whole(),
                }
            }
            OciDistributionError::RequestError(re) => {
                let detail = chain(re);
                let lower = detail.to_ascii_lowercase();
                if re.is_timeout() {
                    RegistryError::Timeout {
                        registry,
                        what: what.into(),
                        secs: self.options.timeout.as_secs(),
                    }
                } else if lower.contains("certificate")
                    || lower.contains("tls")
                    || lower.contains("invalidcontenttype")
                    || lower.contains("corrupt message")
                {
                    RegistryError::Tls { registry, detail }
                } else {
                    RegistryError::Unreachable { registry, detail }
                }
            }
            _ => RegistryError::Protocol {
                registry,
                what: what.into(),
                detail: chain(&e),
            },
        }
    }

    /// Runs `fut` under the operation deadline.
    async fn deadline<T>(
        &self,
        r: &Reference,
        what: &str,
        fut: impl std::future::Future<Output = Result<T, RegistryError>>,
    ) -> Result<T, RegistryError> {
        tokio::time::timeout(self.options.timeout, fut)
            .await
            .unwrap_or_else(|_| {
                Err(RegistryError::Timeout {
                    registry: r.resolve_registry().into(),
                    what: what.into(),
                    secs: self.options.timeout.as_secs(),
                })
            })
    }

    /// Resolves `reference` to its manifest: one `GET` of the manifest (the digest checked
    /// against the body, and against the reference's digest if it has one).
    pub async fn resolve(&self, reference: &str) -> Result<Resolved, RegistryError> {
        let r = Self::parse_reference(reference)?;
        let lookup = self.authorize(&r).await;
        let what = format!("reading the manifest of {}", r.whole());
        let (body, digest) = self
            .deadline(&r, &what, async {
                self.client
                    .pull_manifest_raw(
                        &r,
                        &Self::auth_of(&lookup),
                        &[
                            IMAGE_MANIFEST_MEDIA_TYPE,
                            IMAGE_INDEX_MEDIA_TYPE,
                            "application/vnd.docker.distribution.manifest.v2+json",
                            "application/vnd.docker.distribution.manifest.list.v2+json",
                        ],
                    )
                    .await
                    .map_err(|e| self.classify(e, &r, &lookup, &what))
            })
            .await?;
        if body.len() > MAX_MANIFEST_BYTES {
            return Err(RegistryError::TooLarge {
                what: format!("the manifest of {}", r.whole()),
                size: body.len() as u64,
                limit: MAX_MANIFEST_BYTES as u64,
            });
        }
        // oci-client checked the body against the registry's digest header; this is the digest
        // of what we hold, whatever the header said.
        let ours = sha256_digest(&body);
        if digest != ours {
            return Err(RegistryError::Protocol {
                registry: r.resolve_registry().into(),
                what,
                detail: format!("the registry names the manifest {digest}, its bytes are {ours}"),
            });
        }
        Ok(Resolved {
            given: reference.into(),
            pinned: Reference::with_digest(
                r.registry().into(),
                r.repository().into(),
                ours.clone(),
            ),
            digest: ours,
            manifest: body.to_vec(),
        })
    }

    /// Uploads the blobs of `packed` (each layer read from `source(path)`, e.g. the file the
    /// walk found, a symlink's target included) and its config, then the manifest under
    /// `reference`'s tag; returns it resolved. Blobs the repository already has are not sent
    /// again; the registry checks each blob's digest, so a file changed since it was hashed is
    /// refused.
    pub async fn push_model(
        &self,
        reference: &str,
        packed: &Packed,
        source: &(dyn Fn(&ModelPath) -> PathBuf + Sync),
    ) -> Result<Resolved, RegistryError> {
        let r = Self::parse_reference(reference)?;
        if r.digest().is_some() {
            return Err(RegistryError::BadReference {
                reference: reference.into(),
                detail: "a model is pushed to a tag (registry/repository:tag); its digest is the manifest's".into(),
            });
        }
        let lookup = self.authorize(&r).await;
        for (layer, path) in &packed.layers {
            let file = source(path);
            let what = format!("uploading {path}");
            self.push_file(&r, &lookup, &what, &file, layer).await?;
        }
        let what = "uploading the config".to_string();
        let config_digest = sha256_digest(&packed.config);
        self.push_bytes(&r, &lookup, &what, &packed.config, &config_digest)
            .await?;
        let what = format!("pushing the manifest to {}", r.whole());
        self.deadline(&r, &what, async {
            self.client
                .push_manifest_raw(
                    &r,
                    packed.manifest.clone(),
                    http::HeaderValue::from_static(IMAGE_MANIFEST_MEDIA_TYPE),
                )
                .await
                .map_err(|e| self.classify(e, &r, &lookup, &what))
        })
        .await?;
        Ok(Resolved {
            given: reference.into(),
            pinned: Reference::with_digest(
                r.registry().into(),
                r.repository().into(),
                packed.manifest_digest.clone(),
            ),
            digest: packed.manifest_digest.clone(),
            manifest: packed.manifest.clone(),
        })
    }

    /// Uploads small bytes as a blob, unless the repository has it.
    async fn push_bytes(
        &self,
        r: &Reference,
        lookup: &Lookup,
        what: &str,
        bytes: &[u8],
        digest: &str,
    ) -> Result<(), RegistryError> {
        self.deadline(r, what, async {
            if self
                .client
                .blob_exists(r, digest)
                .await
                .map_err(|e| self.classify(e, r, lookup, what))?
            {
                return Ok(());
            }
            let client = if bytes.is_empty() {
                &self.chunked
            } else {
                &self.client
            };
            let pushed = client.push_blob(r, bytes.to_vec(), digest).await;
            self.committed(r, lookup, what, digest, pushed).await
        })
        .await
    }

    /// The result of a blob upload. go-containerregistry's registry answers a completed
    /// upload with 201 and no `Location`, which the distribution spec requires and oci-client
    /// 0.18 insists on: that answer counts as done once the registry has the blob.
    async fn committed(
        &self,
        r: &Reference,
        lookup: &Lookup,
        what: &str,
        digest: &str,
        pushed: Result<String, OciDistributionError>,
    ) -> Result<(), RegistryError> {
        match pushed {
            Ok(_) => Ok(()),
            Err(OciDistributionError::RegistryNoLocationError)
                if self.client.blob_exists(r, digest).await.unwrap_or(false) =>
            {
                Ok(())
            }
            Err(e) => Err(self.classify(e, r, lookup, what)),
        }
    }

    /// Uploads one file as a blob (streamed in chunks), unless the repository has it.
    async fn push_file(
        &self,
        r: &Reference,
        lookup: &Lookup,
        what: &str,
        file: &Path,
        layer: &Descriptor,
    ) -> Result<(), RegistryError> {
        let exists = self
            .deadline(r, what, async {
                self.client
                    .blob_exists(r, &layer.digest)
                    .await
                    .map_err(|e| self.classify(e, r, lookup, what))
            })
            .await?;
        if exists {
            return Ok(());
        }
        if layer.size == 0 {
            // A stream of no chunks is refused by chunked uploads; the empty blob goes whole.
            return self.push_bytes(r, lookup, what, &[], &layer.digest).await;
        }
        let io = |source| RegistryError::Io {
            path: file.to_path_buf(),
            source,
        };
        let f = tokio::fs::File::open(file).await.map_err(io)?;
        let chunks = futures::stream::unfold(Some(f), |f| async move {
            let mut f = f?;
            let mut buf = vec![0u8; UPLOAD_CHUNK];
            match f.read(&mut buf).await {
                Ok(0) => None,
                Ok(n) => {
                    buf.truncate(n);
                    Some((Ok(bytes::Bytes::from(buf)), Some(f)))
                }
                Err(e) => Some((Err(OciDistributionError::IoError(e)), None)),
            }
        });
        // No operation deadline: the size is the user's. Each request has the read and connect
        // timeouts.
        let pushed = self
            .client
            .push_blob_stream(r, chunks.boxed(), &layer.digest, Some(layer.size))
            .await;
        self.committed(r, lookup, what, &layer.digest, pushed).await
    }

    /// Attaches `bundle` to the manifest `subject` as an OCI 1.1 referrer; when the registry
    /// does not list it by its subject afterwards (no referrers API), adds it to the referrers
    /// tag schema index.
    pub async fn attach_bundle(
        &self,
        subject: &Resolved,
        bundle: &[u8],
    ) -> Result<Attached, RegistryError> {
        let r = &subject.pinned;
        let lookup = self.authorize(r).await;
        let made =
            referrer::bundle_referrer(referrer::manifest_descriptor(&subject.manifest), bundle);
        let what = "uploading the signature".to_string();
        self.push_bytes(
            r,
            &lookup,
            &what,
            referrer::EMPTY_CONFIG,
            &made.config.digest,
        )
        .await?;
        self.push_bytes(r, &lookup, &what, bundle, &made.bundle.digest)
            .await?;
        let at = put_by_digest(r, &made.digest);
        let what = format!(
            "pushing the signature's referrer manifest to {}@{}",
            r.repository(),
            made.digest
        );
        self.deadline(r, &what, async {
            self.client
                .push_manifest_raw(
                    &at,
                    made.manifest.clone(),
                    http::HeaderValue::from_static(IMAGE_MANIFEST_MEDIA_TYPE),
                )
                .await
                .map_err(|e| self.classify(e, &at, &lookup, &what))
        })
        .await?;
        let listed = self.referrers(subject, &lookup).await?;
        if listed.iter().any(|d| d.digest == made.digest) {
            return Ok(Attached {
                referrer: made.digest,
                tag_schema: false,
            });
        }
        // The referrers tag schema (distribution spec, "Pushing Manifests with Subject"): read
        // the index under the tag, add the referrer, write it back.
        let tag = Reference::with_tag(
            r.registry().into(),
            r.repository().into(),
            referrer::tag_schema_tag(&subject.digest),
        );
        let what = format!("updating the referrers tag {}", tag.whole());
        let current = self
            .deadline(r, &what, async {
                match self
                    .client
                    .pull_manifest_raw(&tag, &Self::auth_of(&lookup), &[IMAGE_INDEX_MEDIA_TYPE])
                    .await
                {
                    Ok((body, _)) => Ok(Some(body.to_vec())),
                    Err(e) => match self.classify(e, &tag, &lookup, &what) {
                        RegistryError::NotFound { .. } => Ok(None),
                        other => Err(other),
                    },
                }
            })
            .await?;
        let index = referrer::tag_schema_add(current.as_deref(), made.index_entry())?;
        self.deadline(r, &what, async {
            self.client
                .push_manifest_raw(
                    &tag,
                    index,
                    http::HeaderValue::from_static(IMAGE_INDEX_MEDIA_TYPE),
                )
                .await
                .map_err(|e| self.classify(e, &tag, &lookup, &what))
        })
        .await?;
        Ok(Attached {
            referrer: made.digest,
            tag_schema: true,
        })
    }

    /// The bundle referrers of `subject` (referrers API, or the tag schema on 404), model
    /// signatures first, at most [`MAX_REFERRERS`].
    async fn referrers(
        &self,
        subject: &Resolved,
        lookup: &Lookup,
    ) -> Result<Vec<Descriptor>, RegistryError> {
        let r = &subject.pinned;
        let what = format!("listing the signatures of {}", r.whole());
        let index = self
            .deadline(r, &what, async {
                self.client
                    .pull_referrers(r, Some(BUNDLE_ARTIFACT_TYPE))
                    .await
                    .map_err(|e| self.classify(e, r, lookup, &what))
            })
            .await?;
        let mut list: Vec<Descriptor> = index
            .manifests
            .into_iter()
            .filter(|d| d.artifact_type.as_deref() == Some(BUNDLE_ARTIFACT_TYPE))
            .map(|d| Descriptor {
                media_type: d.media_type,
                digest: d.digest,
                size: u64::try_from(d.size).unwrap_or(u64::MAX),
                artifact_type: d.artifact_type,
                annotations: d.annotations.unwrap_or_default().into_iter().collect(),
            })
            .collect();
        // Model signatures first; other Sigstore bundles (image signatures, attestations) of
        // the same manifest after them.
        list.sort_by_key(|d| {
            d.annotations
                .get(ANNOTATION_PREDICATE_TYPE)
                .map(String::as_str)
                != Some(PREDICATE_TYPE)
        });
        list.truncate(MAX_REFERRERS);
        Ok(list)
    }

    /// The bundles attached to `subject` as referrers: each referrer manifest must name
    /// `subject` and hold one bundle layer of at most [`MAX_BUNDLE_BYTES`]; others are skipped.
    /// Reads the referrers list, the referrer manifests and the bundle blobs, never a layer of
    /// the model.
    pub async fn bundles(&self, subject: &Resolved) -> Result<Vec<FetchedBundle>, RegistryError> {
        let r = &subject.pinned;
        let lookup = self.authorize(r).await;
        let mut out = Vec::new();
        for d in self.referrers(subject, &lookup).await? {
            if d.size > MAX_MANIFEST_BYTES as u64 {
                continue;
            }
            let at = Reference::with_digest(r.registry().into(), r.repository().into(), d.digest);
            let what = format!("reading the signature referrer {}", at.whole());
            let (body, _) = self
                .deadline(r, &what, async {
                    self.client
                        .pull_manifest_raw(
                            &at,
                            &Self::auth_of(&lookup),
                            &[IMAGE_MANIFEST_MEDIA_TYPE],
                        )
                        .await
                        .map_err(|e| self.classify(e, &at, &lookup, &what))
                })
                .await?;
            let Ok(m) = manifest::parse(&body) else {
                continue;
            };
            let Some(layer) = referrer::bundle_layer(&m, &subject.digest) else {
                continue;
            };
            if layer.size > MAX_BUNDLE_BYTES {
                return Err(RegistryError::TooLarge {
                    what: format!("the signature in {}", at.whole()),
                    size: layer.size,
                    limit: MAX_BUNDLE_BYTES,
                });
            }
            let what = format!("reading the signature blob of {}", at.whole());
            let bytes = self
                .deadline(r, &what, self.read_blob(r, &lookup, &what, &layer))
                .await?;
            out.push(FetchedBundle {
                referrer: at.digest().unwrap_or_default().to_string(),
                bytes,
            });
        }
        Ok(out)
    }

    /// Reads a blob of at most `layer.size` (≤ [`MAX_BUNDLE_BYTES`]) bytes as a stream,
    /// stopping past the bound, and checks its digest.
    async fn read_blob(
        &self,
        r: &Reference,
        lookup: &Lookup,
        what: &str,
        layer: &Descriptor,
    ) -> Result<Vec<u8>, RegistryError> {
        let desc = oci_descriptor(layer);
        let mut stream = self
            .client
            .pull_blob_stream(r, &desc)
            .await
            .map_err(|e| self.classify(e, r, lookup, what))?;
        let limit = layer.size.min(MAX_BUNDLE_BYTES);
        let mut bytes = Vec::new();
        while let Some(chunk) = stream.next().await {
            let chunk = chunk.map_err(|e| RegistryError::Protocol {
                registry: r.resolve_registry().into(),
                what: what.into(),
                detail: e.to_string(),
            })?;
            if (bytes.len() + chunk.len()) as u64 > limit {
                return Err(RegistryError::TooLarge {
                    what: what.into(),
                    size: (bytes.len() + chunk.len()) as u64,
                    limit,
                });
            }
            bytes.extend_from_slice(&chunk);
        }
        if sha256_digest(&bytes) != layer.digest {
            return Err(RegistryError::Protocol {
                registry: r.resolve_registry().into(),
                what: what.into(),
                detail: format!("the blob's bytes are not {}", layer.digest),
            });
        }
        Ok(bytes)
    }

    /// The files under `root` of the modelcar image `subject` (tar layers, plain or gzip):
    /// each layer blob is fetched once, in manifest order, and streamed into the tar reader
    /// ([`modelcar::Modelcar`], on a blocking thread) while its bytes are hashed, so nothing is
    /// written to disk and no file is held whole. A layer whose bytes are not its manifest
    /// digest, or more than its manifest size, is refused, whatever the tar reader made of it:
    /// the registry cannot substitute content.
    ///
    /// No operation deadline covers a layer (its size is the image's); each request has the
    /// read and connect timeouts.
    pub async fn modelcar_files(
        &self,
        subject: &Resolved,
        root: &str,
    ) -> Result<ArtifactFiles, RegistryError> {
        let r = &subject.pinned;
        let parsed = manifest::parse_image(&subject.manifest)?;
        let layers = modelcar::layers(&parsed)?;
        let mut car = Modelcar::new(root).map_err(ArtifactError::from)?;
        let lookup = self.authorize(r).await;
        let registry = r.resolve_registry().to_string();
        for (index, (compression, layer)) in layers.into_iter().enumerate() {
            let what = format!("reading layer {index} ({}) of {}", layer.digest, r.whole());
            let protocol = |detail: String| RegistryError::Protocol {
                registry: registry.clone(),
                what: what.clone(),
                detail,
            };
            let Some(want) = layer.digest.strip_prefix("sha256:") else {
                return Err(protocol(format!(
                    "the layer digest {} is not sha256",
                    layer.digest
                )));
            };
            let desc = oci_descriptor(&layer);
            let mut stream = self
                .deadline(r, &what, async {
                    self.client
                        .pull_blob_stream(r, &desc)
                        .await
                        .map_err(|e| self.classify(e, r, &lookup, &what))
                })
                .await?;
            let (tx, rx) = tokio::sync::mpsc::channel::<bytes::Bytes>(16);
            let reader = ChannelReader {
                rx,
                current: bytes::Bytes::new(),
            };
            let mut state = car;
            let worker = tokio::task::spawn_blocking(move || {
                let result = state.add_layer(compression, reader);
                (state, result)
            });
            let mut hasher = <sha2::Sha256 as sha2::Digest>::new();
            let mut received = 0u64;
            let mut feeding = true;
            let mut failed = None;
            while let Some(chunk) = stream.next().await {
                let chunk = match chunk {
                    Ok(c) => c,
                    Err(e) => {
                        failed = Some(protocol(e.to_string()));
                        break;
                    }
                };
                received += chunk.len() as u64;
                if received > layer.size {
                    failed = Some(RegistryError::TooLarge {
                        what: what.clone(),
                        size: received,
                        limit: layer.size,
                    });
                    break;
                }
                sha2::Digest::update(&mut hasher, &chunk);
                // The tar reader stops at the end-of-archive (or at a refusal): the rest is
                // still hashed.
                if feeding && tx.send(chunk).await.is_err() {
                    feeding = false;
                }
            }
            drop(tx);
            let (back, added) = worker
                .await
                .map_err(|e| protocol(format!("the layer reader stopped: {e}")))?;
            if let Some(e) = failed {
                return Err(e);
            }
            let got = hex::encode(sha2::Digest::finalize(hasher));
            if got != want || received != layer.size {
                return Err(protocol(format!(
                    "the blob's bytes ({received} bytes, sha256:{got}) are not {} ({} bytes)",
                    layer.digest, layer.size
                )));
            }
            added.map_err(ArtifactError::from)?;
            car = back;
        }
        Ok(car.finish().map_err(ArtifactError::from)?)
    }
}
