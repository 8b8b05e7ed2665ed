//! The two real registries the OCI artifact tests use (test_cluster::registry), each plain and
//! with TLS and basic auth, driven over HTTP as the OCI distribution spec describes, no mock:
//!
//! - an OCI 1.1 artifact and a referrer of it (a Sigstore bundle artifact with a `subject`) push
//!   to both and are served back byte for byte;
//! - the referrers kind lists the referrer under its subject with its artifact type, filters by
//!   artifact type and acknowledges the subject on push (`OCI-Subject`); distribution answers the
//!   referrers API with 404 and no `OCI-Subject`, and takes the referrers tag schema instead;
//! - with auth on, a request without credentials or with a wrong password gets 401 and a
//!   `WWW-Authenticate: Basic` challenge, one with the credentials gets through;
//! - with TLS on, a client that trusts only the system's roots is refused, one that trusts the
//!   registry's CA gets through, and plain HTTP gets nothing from the registry;
//! - each registry's own request log lists the requests made, with their status, and names a
//!   blob fetch only when one was made (what the artifact tests rely on to prove that verifying
//!   fetched no layer).

use reqwest::StatusCode;
use reqwest::blocking::{Client, RequestBuilder, Response};
use reqwest::header::{CONTENT_TYPE, HeaderMap, LOCATION, WWW_AUTHENTICATE};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use test_cluster::registry::{Kind, Registry};

const MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
const INDEX: &str = "application/vnd.oci.image.index.v1+json";
const EMPTY: &str = "application/vnd.oci.empty.v1+json";
const BUNDLE: &str = "application/vnd.dev.sigstore.bundle.v0.3+json";
const MODEL: &str = "application/vnd.example.model.v1";
const REPO: &str = "models/tiny";

fn digest(bytes: &[u8]) -> String {
    format!("sha256:{}", hex(&Sha256::digest(bytes)))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn json_of(response: Response) -> Value {
    serde_json::from_slice(&response.bytes().unwrap()).unwrap()
}

fn descriptor(media_type: &str, bytes: &[u8]) -> Value {
    json!({"mediaType": media_type, "digest": digest(bytes), "size": bytes.len()})
}

/// A client of one registry: its base URL, whom it trusts, whether it sends the credentials.
struct Api<'a> {
    registry: &'a Registry,
    client: Client,
    auth: bool,
}

impl<'a> Api<'a> {
    /// Trusts the registry's CA only (when it has one) and sends its credentials (when it has
    /// some).
    fn new(registry: &'a Registry) -> Self {
        let mut builder = Client::builder();
        if let Some(pem) = registry.ca_pem() {
            let ca = reqwest::Certificate::from_pem(pem.as_bytes()).unwrap();
            builder = builder.tls_certs_only([ca]);
        }
        Api {
            registry,
            client: builder.build().unwrap(),
            auth: true,
        }
    }

    fn without_credentials(mut self) -> Self {
        self.auth = false;
        self
    }

    fn url(&self, path: &str) -> String {
        if path.starts_with("http") {
            path.to_string()
        } else {
            format!("{}{path}", self.registry.base_url())
        }
    }

    fn request(&self, method: reqwest::Method, path: &str) -> RequestBuilder {
        let req = self.client.request(method, self.url(path));
        match (self.auth, self.registry.credentials()) {
            (true, Some(c)) => req.basic_auth(&c.username, Some(&c.password)),
            _ => req,
        }
    }

    fn get(&self, path: &str) -> Response {
        self.request(reqwest::Method::GET, path).send().unwrap()
    }

    /// Pushes a blob in two steps (POST, then PUT with the digest), which every registry takes.
    fn push_blob(&self, bytes: &[u8]) -> String {
        let d = digest(bytes);
        let started = self
            .request(reqwest::Method::POST, &format!("/v2/{REPO}/blobs/uploads/"))
            .send()
            .unwrap();
        assert_eq!(started.status(), StatusCode::ACCEPTED, "{}", self.log());
        // distribution answers an absolute URL with a query of its own, the other a path.
        let location = started.headers()[LOCATION].to_str().unwrap().to_string();
        let sep = if location.contains('?') { '&' } else { '?' };
        let put = self
            .request(reqwest::Method::PUT, &format!("{location}{sep}digest={d}"))
            .header(CONTENT_TYPE, "application/octet-stream")
            .body(bytes.to_vec())
            .send()
            .unwrap();
        assert_eq!(put.status(), StatusCode::CREATED, "{}", self.log());
        d
    }

    /// Pushes a manifest under `reference` (a tag or its digest); returns the response headers.
    fn push_manifest(&self, reference: &str, media_type: &str, bytes: &[u8]) -> HeaderMap {
        let put = self
            .request(
                reqwest::Method::PUT,
                &format!("/v2/{REPO}/manifests/{reference}"),
            )
            .header(CONTENT_TYPE, media_type)
            .body(bytes.to_vec())
            .send()
            .unwrap();
        assert_eq!(put.status(), StatusCode::CREATED, "{}", self.log());
        assert_eq!(
            put.headers()["docker-content-digest"].to_str().unwrap(),
            digest(bytes),
            "the registry names the manifest by the digest of the bytes sent"
        );
        put.headers().clone()
    }

    fn log(&self) -> String {
        format!("registry log:\n{}", self.registry.log())
    }
}

/// An artifact (one layer, empty config) and a Sigstore bundle artifact that refers to it.
struct Pushed {
    subject: Vec<u8>,
    referrer: Vec<u8>,
    layer: String,
    referrer_push: HeaderMap,
}

fn push_artifact_and_referrer(api: &Api<'_>) -> Pushed {
    let empty = b"{}";
    let layer_bytes = b"tiny model weights";
    let bundle_bytes = br#"{"mediaType":"application/vnd.dev.sigstore.bundle.v0.3+json"}"#;
    api.push_blob(empty);
    let layer = api.push_blob(layer_bytes);
    api.push_blob(bundle_bytes);

    let subject = serde_json::to_vec(&json!({
        "schemaVersion": 2,
        "mediaType": MANIFEST,
        "artifactType": MODEL,
        "config": descriptor(EMPTY, empty),
        "layers": [descriptor("application/octet-stream", layer_bytes)],
    }))
    .unwrap();
    api.push_manifest("v1", MANIFEST, &subject);

    let referrer = serde_json::to_vec(&json!({
        "schemaVersion": 2,
        "mediaType": MANIFEST,
        "artifactType": BUNDLE,
        "config": descriptor(EMPTY, empty),
        "layers": [descriptor(BUNDLE, bundle_bytes)],
        "subject": descriptor(MANIFEST, &subject),
        "annotations": {"org.opencontainers.image.created": "2026-01-01T00:00:00Z"},
    }))
    .unwrap();
    let referrer_push = api.push_manifest(&digest(&referrer), MANIFEST, &referrer);
    Pushed {
        subject,
        referrer,
        layer,
        referrer_push,
    }
}

/// What both kinds do alike, plain or not: push, read back, and the request log.
fn pushes_and_logs(registry: &Registry) -> Pushed {
    let api = Api::new(registry);
    let pushed = push_artifact_and_referrer(&api);

    for (reference, bytes) in [
        ("v1".to_string(), &pushed.subject),
        (digest(&pushed.subject), &pushed.subject),
        (digest(&pushed.referrer), &pushed.referrer),
    ] {
        let got = api
            .request(
                reqwest::Method::GET,
                &format!("/v2/{REPO}/manifests/{reference}"),
            )
            .header("accept", MANIFEST)
            .send()
            .unwrap();
        assert_eq!(got.status(), StatusCode::OK, "{reference}: {}", api.log());
        assert_eq!(got.headers()[CONTENT_TYPE], MANIFEST, "{reference}");
        assert_eq!(&got.bytes().unwrap()[..], &bytes[..], "{reference}");
    }

    // The log has every push with its status, and no blob fetch: none was made.
    let blob_get = format!("GET /v2/{REPO}/blobs/");
    let requests = wait_for_requests(registry, |r| {
        r.contains(&format!("PUT /v2/{REPO}/manifests/v1 201"))
            && r.contains(&format!(
                "PUT /v2/{REPO}/manifests/{} 201",
                digest(&pushed.referrer)
            ))
            && r.contains(&format!(
                "GET /v2/{REPO}/manifests/{} 200",
                digest(&pushed.referrer)
            ))
    });
    assert_eq!(
        requests
            .iter()
            .filter(|r| r.starts_with(&format!("POST /v2/{REPO}/blobs/uploads/ 202")))
            .count(),
        3,
        "three uploads started: {requests:#?}"
    );
    assert_eq!(
        requests
            .iter()
            .filter(|r| r.starts_with("PUT /v2/")
                && r.contains("digest=sha256:")
                && r.ends_with(" 201"))
            .count(),
        3,
        "three uploads completed: {requests:#?}"
    );
    assert!(
        !requests.iter().any(|r| r.starts_with(&blob_get)),
        "no blob was fetched, yet the log says so: {requests:#?}"
    );

    // Fetching the layer shows in the log: the check above could fail.
    let layer = api.get(&format!("/v2/{REPO}/blobs/{}", pushed.layer));
    assert_eq!(layer.status(), StatusCode::OK, "{}", api.log());
    assert_eq!(&layer.bytes().unwrap()[..], b"tiny model weights");
    let want = format!("GET /v2/{REPO}/blobs/{} 200", pushed.layer);
    wait_for_requests(registry, |r| r.contains(&want));
    pushed
}

/// The request log once `done` holds for it; a registry may write a line just after the
/// response left (distribution's access log does), so this polls for up to 5 s.
fn wait_for_requests(registry: &Registry, done: impl Fn(&Vec<String>) -> bool) -> Vec<String> {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    loop {
        let requests = registry.requests();
        if done(&requests) {
            return requests;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the request log never showed what was asked: {requests:#?}"
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
}

/// The referrers API lists the referrer, with its artifact type, and filters by it.
fn referrers_api_lists(registry: &Registry, pushed: &Pushed) {
    let api = Api::new(registry);
    let subject = digest(&pushed.subject);
    let referrer = digest(&pushed.referrer);
    assert_eq!(
        pushed.referrer_push["oci-subject"].to_str().unwrap(),
        subject,
        "the push of a manifest with a subject is acknowledged with OCI-Subject"
    );

    let list = api.get(&format!("/v2/{REPO}/referrers/{subject}"));
    assert_eq!(list.status(), StatusCode::OK, "{}", api.log());
    assert_eq!(list.headers()[CONTENT_TYPE], INDEX);
    let index = json_of(list);
    assert_eq!(index["mediaType"], INDEX, "{index}");
    assert_eq!(
        index["manifests"],
        json!([{
            "mediaType": MANIFEST,
            "digest": referrer,
            "size": pushed.referrer.len(),
            "artifactType": BUNDLE,
            "annotations": {"org.opencontainers.image.created": "2026-01-01T00:00:00Z"},
        }]),
        "the referrer, with its own artifactType (not its config's media type)"
    );

    // `+` in a query is a space unless escaped.
    let filtered = api.get(&format!(
        "/v2/{REPO}/referrers/{subject}?artifactType={}",
        BUNDLE.replace('+', "%2B")
    ));
    assert_eq!(filtered.headers()["oci-filters-applied"], "artifactType");
    let index = json_of(filtered);
    assert_eq!(
        index["manifests"][0]["digest"],
        referrer.as_str(),
        "{index}"
    );
    let other = api.get(&format!(
        "/v2/{REPO}/referrers/{subject}?artifactType=application/vnd.example.other"
    ));
    let index = json_of(other);
    assert_eq!(index["manifests"], json!([]), "filtered out: {index}");

    // The referrer itself has no referrers: an empty list, not an error.
    let none = json_of(api.get(&format!("/v2/{REPO}/referrers/{referrer}")));
    assert_eq!(none["manifests"], json!([]), "{none}");
    let r = wait_for_requests(registry, |r| {
        r.contains(&format!("GET /v2/{REPO}/referrers/{subject} 200"))
    });
    assert!(!r.is_empty());
}

/// distribution has no referrers API: 404, no OCI-Subject on push, so a client keeps the list
/// in the referrers tag schema (`sha256-<hex>`), which distribution stores like any index.
fn no_referrers_api(registry: &Registry, pushed: &Pushed) {
    let api = Api::new(registry);
    let subject = digest(&pushed.subject);
    assert!(
        !pushed.referrer_push.contains_key("oci-subject"),
        "distribution acknowledges no subject: {:?}",
        pushed.referrer_push
    );
    let referrers = api.get(&format!("/v2/{REPO}/referrers/{subject}"));
    assert_eq!(referrers.status(), StatusCode::NOT_FOUND, "{}", api.log());
    // Not an OCI error either: the route does not exist (its router's plain-text 404).
    assert_eq!(referrers.text().unwrap().trim(), "404 page not found");

    let tag = subject.replace(':', "-");
    let index = serde_json::to_vec(&json!({
        "schemaVersion": 2,
        "mediaType": INDEX,
        "manifests": [{
            "mediaType": MANIFEST,
            "digest": digest(&pushed.referrer),
            "size": pushed.referrer.len(),
            "artifactType": BUNDLE,
        }],
    }))
    .unwrap();
    api.push_manifest(&tag, INDEX, &index);
    let got = api
        .request(reqwest::Method::GET, &format!("/v2/{REPO}/manifests/{tag}"))
        .header("accept", INDEX)
        .send()
        .unwrap();
    assert_eq!(got.status(), StatusCode::OK, "{}", api.log());
    assert_eq!(&got.bytes().unwrap()[..], &index[..]);
    wait_for_requests(registry, |r| {
        r.contains(&format!("GET /v2/{REPO}/referrers/{subject} 404"))
    });
}

/// Without credentials (or with a wrong password) 401 and a Basic challenge, logged; with them
/// the same request succeeds.
fn requires_basic_auth(registry: &Registry) {
    let anonymous = Api::new(registry).without_credentials();
    for path in ["/v2/", &format!("/v2/{REPO}/manifests/v1")] {
        let denied = anonymous.get(path);
        assert_eq!(denied.status(), StatusCode::UNAUTHORIZED, "{path}");
        let challenge = denied.headers()[WWW_AUTHENTICATE].to_str().unwrap();
        assert!(
            challenge.starts_with("Basic realm="),
            "{path}: challenge {challenge}"
        );
    }
    let creds = registry.credentials().unwrap();
    let wrong = anonymous
        .request(reqwest::Method::GET, "/v2/")
        .basic_auth(&creds.username, Some("not-the-password"))
        .send()
        .unwrap();
    assert_eq!(wrong.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(Api::new(registry).get("/v2/").status(), StatusCode::OK);
    wait_for_requests(registry, |r| {
        r.contains(&"GET /v2/ 401".to_string())
            && r.contains(&format!("GET /v2/{REPO}/manifests/v1 401"))
            && r.contains(&"GET /v2/ 200".to_string())
    });
}

/// Reachable with the CA only: a client trusting the system's roots is refused by its own TLS
/// check, plain HTTP gets the Go server's 400 and no registry answer.
fn requires_the_ca(registry: &Registry) {
    assert!(registry.base_url().starts_with("https://"));
    assert!(registry.ca_file().unwrap().is_file());
    let system_roots = Client::builder().build().unwrap();
    let err = system_roots
        .get(format!("{}/v2/", registry.base_url()))
        .send()
        .expect_err("the registry's certificate is not signed by a system root");
    let chain = error_chain(&err);
    assert!(
        chain.contains("UnknownIssuer") || chain.contains("certificate"),
        "a certificate error, not another failure: {chain}"
    );
    let plain = system_roots
        .get(format!("http://{}/v2/", registry.host()))
        .send()
        .unwrap();
    assert_eq!(plain.status(), StatusCode::BAD_REQUEST);
    assert!(
        plain.text().unwrap().contains("HTTPS server"),
        "the TLS listener's answer to plain HTTP"
    );
}

fn error_chain(err: &dyn std::error::Error) -> String {
    let mut out = err.to_string();
    let mut source = err.source();
    while let Some(e) = source {
        out += &format!(": {e}");
        source = e.source();
    }
    out
}

/// A plain registry answers plain HTTP without credentials, and no TLS.
fn plain_and_open(registry: &Registry) {
    assert!(registry.ca_pem().is_none() && registry.credentials().is_none());
    let open = Api::new(registry).without_credentials().get("/v2/");
    assert_eq!(open.status(), StatusCode::OK);
    let tls = Client::builder()
        .build()
        .unwrap()
        .get(format!("https://{}/v2/", registry.host()))
        .send();
    assert!(tls.is_err(), "a plain registry speaks no TLS");
}

fn secure(kind: Kind) -> Registry {
    Registry::builder()
        .kind(kind)
        .tls(true)
        .basic_auth("mvo", "pa55:word")
        .start()
        .unwrap()
}

#[test]
fn referrers_registry_plain() {
    let registry = Registry::builder().kind(Kind::Referrers).start().unwrap();
    plain_and_open(&registry);
    let pushed = pushes_and_logs(&registry);
    referrers_api_lists(&registry, &pushed);
}

#[test]
fn referrers_registry_with_tls_and_auth() {
    let registry = secure(Kind::Referrers);
    requires_the_ca(&registry);
    requires_basic_auth(&registry);
    let pushed = pushes_and_logs(&registry);
    referrers_api_lists(&registry, &pushed);
}

#[test]
fn distribution_plain() {
    let registry = Registry::builder()
        .kind(Kind::Distribution)
        .start()
        .unwrap();
    plain_and_open(&registry);
    let pushed = pushes_and_logs(&registry);
    no_referrers_api(&registry, &pushed);
}

#[test]
fn distribution_with_tls_and_auth() {
    let registry = secure(Kind::Distribution);
    requires_the_ca(&registry);
    requires_basic_auth(&registry);
    let pushed = pushes_and_logs(&registry);
    no_referrers_api(&registry, &pushed);
}

/// `Registry::start()`, what the image tests use, is the referrers kind, plain and open.
#[test]
fn default_registry_is_plain_with_referrers() {
    let registry = Registry::start().unwrap();
    assert_eq!(registry.kind(), Kind::Referrers);
    assert!(Kind::Referrers.serves_referrers() && !Kind::Distribution.serves_referrers());
    plain_and_open(&registry);
}
