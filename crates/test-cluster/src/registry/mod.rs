//! Real OCI registries for tests, built by `hack/testbin/build.sh` from Go modules, each on a
//! free loopback port with its storage and log in a temp dir:
//!
//! - [`Kind::Referrers`]: `oci-registry`, go-containerregistry's registry with the OCI 1.1
//!   referrers API on (`hack/testbin/registry/oci-registry`), in memory.
//! - [`Kind::Distribution`]: `distribution-registry`, distribution v3 (the registry behind
//!   Docker Hub's and many self-hosted ones), which has no referrers API: its
//!   `GET /v2/<repo>/referrers/<digest>` is a plain-text `404 page not found`, so clients must
//!   use the referrers tag schema. Filesystem storage.
//!
//! Either can serve HTTPS with a certificate from a CA made for it ([`Builder::tls`]; clients
//! trust [`Registry::ca_pem`]) and require HTTP basic auth ([`Builder::basic_auth`]; 401 with a
//! `WWW-Authenticate: Basic` challenge otherwise).
//!
//! Each registry's request log (one line per request: method, path with query, status) is kept,
//! so a test can check which blobs a client fetched: [`Registry::requests`]. A registry is
//! stopped when dropped; if the test process dies, the kernel stops it (`setpriv --pdeathsig`).

mod config;
mod log;

use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::Error;
use crate::pki::{LoopbackTls, write_file};
use crate::process::{Guard, tied_command};

/// Which registry to run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Kind {
    /// go-containerregistry's registry with the referrers API (`oci-registry`).
    #[default]
    Referrers,
    /// distribution v3, without the referrers API (`distribution-registry`).
    Distribution,
}

impl Kind {
    /// The test tool's name in [`crate::testbin_dir`].
    pub fn binary(self) -> &'static str {
        match self {
            Kind::Referrers => "oci-registry",
            Kind::Distribution => "distribution-registry",
        }
    }

    /// Whether it serves `GET /v2/<repo>/referrers/<digest>`.
    pub fn serves_referrers(self) -> bool {
        self == Kind::Referrers
    }
}

/// The user name and password a registry started with [`Builder::basic_auth`] requires.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Credentials {
    /// The user name.
    pub username: String,
    /// The password.
    pub password: String,
}

/// How to start a [`Registry`]: [`Registry::builder`], then [`Builder::start`].
#[derive(Debug, Clone, Default)]
#[must_use]
pub struct Builder {
    kind: Kind,
    tls: bool,
    credentials: Option<Credentials>,
}

impl Builder {
    /// Which registry (default [`Kind::Referrers`]).
    pub fn kind(mut self, kind: Kind) -> Self {
        self.kind = kind;
        self
    }

    /// Serve HTTPS only, with a certificate for `127.0.0.1` and `localhost` signed by a CA made
    /// for this registry ([`Registry::ca_pem`]). Default: plain HTTP.
    pub fn tls(mut self, on: bool) -> Self {
        self.tls = on;
        self
    }

    /// Require HTTP basic auth with these credentials on every request, `/v2/` included.
    pub fn basic_auth(mut self, username: &str, password: &str) -> Self {
        self.credentials = Some(Credentials {
            username: username.into(),
            password: password.into(),
        });
        self
    }

    /// Starts the registry; returns once it accepts connections.
    pub fn start(self) -> Result<Registry, Error> {
        let binary = crate::testbin_dir().join(self.kind.binary());
        if !binary.is_file() {
            return Err(Error::BinaryMissing {
                name: self.kind.binary(),
                path: binary,
            });
        }
        let dir = tempfile::tempdir().map_err(Error::io("creating the registry's temp dir"))?;
        // A registry held in a `static` is never dropped: the watchdog removes its storage
        // when the test process exits.
        let watchdog = crate::process::dir_watchdog(dir.path())?;
        let log = dir.path().join("registry.log");
        let port = crate::control_plane::free_port()?;
        let addr = SocketAddr::from(([127, 0, 0, 1], port));

        let tls = if self.tls {
            let pki = LoopbackTls::generate("mvo-test-registry")?;
            let files = config::TlsFiles {
                ca: dir.path().join("ca.crt"),
                cert: dir.path().join("tls.crt"),
                key: dir.path().join("tls.key"),
            };
            write_file(&files.ca, &pki.ca_cert, 0o644)?;
            write_file(&files.cert, &pki.cert, 0o644)?;
            write_file(&files.key, &pki.key, 0o600)?;
            Some((pki.ca_cert, files))
        } else {
            None
        };
        let settings = config::Settings {
            dir: dir.path(),
            addr,
            tls: tls.as_ref().map(|(_, files)| files),
            credentials: self.credentials.as_ref(),
        };
        let args = match self.kind {
            Kind::Referrers => config::oci_registry_args(&settings)?,
            Kind::Distribution => config::distribution_args(&settings)?,
        };
        let mut cmd = tied_command(&binary, "KILL");
        cmd.args(args);
        let mut server = Guard::start(self.kind.binary(), cmd, &log)?;
        wait_until_listening(&mut server, addr, &log)?;
        let (ca_pem, ca_file) = match tls {
            Some((pem, files)) => (Some(pem), Some(files.ca)),
            None => (None, None),
        };
        Ok(Registry {
            _server: server,
            kind: self.kind,
            addr,
            log,
            ca_pem,
            ca_file,
            credentials: self.credentials,
            _watchdog: watchdog,
            _dir: dir,
        })
    }
}

/// Waits up to 20 s for `addr` to accept a connection. Both registries bind their port only
/// once their configuration is loaded, so a connection means ready; an HTTP probe would add a
/// line to the request log the tests read (and needs TLS and credentials).
fn wait_until_listening(server: &mut Guard, addr: SocketAddr, log: &Path) -> Result<(), Error> {
    let keep_as = Some(format!("mvo-{}-{}.log", server.name(), std::process::id()));
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        if let Some(status) = server.exited() {
            let what = format!("{} exited with {status} before listening", server.name());
            return Err(Error::not_ready(what, log, 20, keep_as));
        }
        if TcpStream::connect_timeout(&addr, Duration::from_secs(1)).is_ok() {
            return Ok(());
        }
        if Instant::now() > deadline {
            let what = format!("{} on {addr} did not listen within 20 s", server.name());
            return Err(Error::not_ready(what, log, 20, keep_as));
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// A running registry.
pub struct Registry {
    // Declared first so that it is dropped (killed) before the temp dir goes.
    _server: Guard,
    kind: Kind,
    addr: SocketAddr,
    log: PathBuf,
    ca_pem: Option<String>,
    ca_file: Option<PathBuf>,
    credentials: Option<Credentials>,
    _watchdog: Guard,
    _dir: tempfile::TempDir,
}

impl Registry {
    /// A plain-HTTP registry with the referrers API and no auth (the default [`Builder`]).
    pub fn start() -> Result<Registry, Error> {
        Registry::builder().start()
    }

    /// How to start one of another kind, with TLS or auth.
    pub fn builder() -> Builder {
        Builder::default()
    }

    /// Which registry this is.
    pub fn kind(&self) -> Kind {
        self.kind
    }

    /// `127.0.0.1:PORT`, the host part of image references (`127.0.0.1:PORT/repo:tag`).
    pub fn host(&self) -> String {
        self.addr.to_string()
    }

    /// `http://127.0.0.1:PORT` or `https://127.0.0.1:PORT`, to which API paths are appended.
    pub fn base_url(&self) -> String {
        let scheme = if self.ca_pem.is_some() {
            "https"
        } else {
            "http"
        };
        format!("{scheme}://{}", self.addr)
    }

    /// The PEM certificate of the CA that signed the registry's serving certificate, when it
    /// serves HTTPS: what a client must trust.
    pub fn ca_pem(&self) -> Option<&str> {
        self.ca_pem.as_deref()
    }

    /// [`Registry::ca_pem`] as a file, for tools that read one (`SSL_CERT_FILE`, `--cacert`).
    pub fn ca_file(&self) -> Option<&Path> {
        self.ca_file.as_deref()
    }

    /// The credentials it requires, when it requires basic auth.
    pub fn credentials(&self) -> Option<&Credentials> {
        self.credentials.as_ref()
    }

    /// The requests served so far, in order, each as `METHOD URI STATUS`
    /// (`GET /v2/repo/blobs/sha256:… 200`), whichever registry this is.
    ///
    /// A registry writes a request's line when it has handled it; `oci-registry` writes it
    /// before the response's first byte, distribution once the handler returns, which may be
    /// just after a small response reached the client: poll briefly when checking the very last
    /// request on distribution.
    pub fn requests(&self) -> Vec<String> {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let parse = match self.kind {
            Kind::Referrers => log::oci_registry_line,
            Kind::Distribution => log::access_log_line,
        };
        text.lines().filter_map(parse).collect()
    }

    /// The registry's whole log (requests and its own messages), for failure messages.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}
