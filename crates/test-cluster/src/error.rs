//! Errors that say what went wrong and what to do next.

use std::path::PathBuf;

/// Why the local control plane could not be started or used.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A test tool binary is missing or not executable.
    #[error("{name} not found at {}: run `make testbin` (builds the test tools from hack/testbin, several minutes the first time)", path.display())]
    BinaryMissing {
        /// `etcd`, `kube-apiserver`, `crane`, ….
        name: &'static str,
        /// Where it was expected.
        path: PathBuf,
    },
    /// A program the real node needs is missing.
    #[error("the real node needs {}: {fix}", path.display())]
    NodeProgramMissing {
        /// Where it was expected.
        path: PathBuf,
        /// How to get it.
        fix: String,
    },
    /// Generating the certificates or keys failed.
    #[error("generating the control plane's PKI failed: {0}")]
    Pki(#[from] rcgen::Error),
    /// A process could not be spawned or a file could not be written.
    #[error("{context}: {source}")]
    Io {
        /// What was being done.
        context: String,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// A server exited or did not become ready in time.
    #[error("{what}; last lines of {}:\n{log_tail}", log.display())]
    NotReady {
        /// What happened, e.g. "kube-apiserver exited with status 1".
        what: String,
        /// The server's log file (kept for inspection).
        log: PathBuf,
        /// The end of that log.
        log_tail: String,
    },
    /// Building a client from the generated kubeconfig failed.
    #[error("building a client for the local control plane failed: {0}")]
    Client(String),
    /// A call to the API server failed.
    #[error("API call failed: {0}")]
    Kube(#[from] kube::Error),
}

impl Error {
    /// [`Error::NotReady`] with the last `lines` lines of `log`. A log in a directory that will
    /// be removed is first copied to `keep_as` in the temp dir, and that copy is named.
    pub(crate) fn not_ready(
        what: String,
        log: &std::path::Path,
        lines: usize,
        keep_as: Option<String>,
    ) -> Error {
        let text = std::fs::read_to_string(log).unwrap_or_default();
        let all: Vec<&str> = text.lines().collect();
        let log_tail = all[all.len().saturating_sub(lines)..].join("\n");
        let log = match keep_as {
            Some(name) => {
                let kept = std::env::temp_dir().join(name);
                let _ = std::fs::copy(log, &kept);
                kept
            }
            None => log.to_path_buf(),
        };
        Error::NotReady {
            what,
            log,
            log_tail,
        }
    }

    pub(crate) fn io(context: impl Into<String>) -> impl FnOnce(std::io::Error) -> Error {
        let context = context.into();
        move |source| Error::Io { context, source }
    }
}
