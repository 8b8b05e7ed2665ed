//! A real OCI registry for tests: go-containerregistry's `crane registry serve` (built by
//! `hack/testbin/build.sh` from `hack/testbin/registry`), in memory, on a free loopback port,
//! plain HTTP. Its request log (one line per request: method, path, status) is kept, so a test
//! can check which blobs a client fetched. Stopped when dropped; if the test process dies, the
//! kernel stops it (`setpriv --pdeathsig`).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use crate::Error;
use crate::process::{Guard, tied_command};

/// A running registry.
pub struct Registry {
    _server: Guard,
    addr: SocketAddr,
    log: PathBuf,
    _dir: tempfile::TempDir,
}

impl Registry {
    /// Starts a registry with its log in a temp dir; returns once it answers `GET /v2/`.
    pub fn start() -> Result<Registry, Error> {
        let crane = crate::testbin_dir().join("crane");
        if !crane.is_file() {
            return Err(Error::BinaryMissing {
                name: "crane",
                path: crane,
            });
        }
        let dir = tempfile::tempdir().map_err(Error::io("creating the registry's temp dir"))?;
        let log = dir.path().join("registry.log");
        let port = crate::control_plane::free_port()?;
        let addr = SocketAddr::from(([127, 0, 0, 1], port));
        let mut cmd = tied_command(&crane, "KILL");
        cmd.args(["registry", "serve", "--address", &addr.to_string()]);
        let server = Guard::start("crane registry serve", cmd, &log)?;
        let deadline = Instant::now() + Duration::from_secs(20);
        while crate::support::http_get_at(addr, "/v2/").is_none() {
            if Instant::now() > deadline {
                return Err(Error::not_ready(
                    format!("the registry on {addr} did not answer within 20 s"),
                    &log,
                    20,
                    Some(format!("mvo-registry-{}.log", std::process::id())),
                ));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        Ok(Registry {
            _server: server,
            addr,
            log,
            _dir: dir,
        })
    }

    /// `127.0.0.1:PORT`, the host part of image references (`127.0.0.1:PORT/repo:tag`).
    pub fn host(&self) -> String {
        self.addr.to_string()
    }

    /// The requests served so far, in order (`GET /v2/repo/blobs/sha256:… 200`, …): the log's
    /// lines without their date and time, requests only.
    pub fn requests(&self) -> Vec<String> {
        const METHODS: [&str; 6] = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE"];
        std::fs::read_to_string(&self.log)
            .unwrap_or_default()
            .lines()
            .filter_map(|l| l.splitn(3, ' ').nth(2))
            .filter(|rest| METHODS.iter().any(|m| rest.starts_with(&format!("{m} /"))))
            .map(str::to_string)
            .collect()
    }
}
