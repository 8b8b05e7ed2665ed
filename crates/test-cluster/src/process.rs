//! Child processes that cannot outlive the process that started them.
//!
//! Dropping a [`Guard`] kills its process. That covers normal returns and
//! panics, but not a shared control plane held in a `static` (statics are never
//! dropped) nor a test binary killed outright. For those, every server runs
//! under `setpriv --pdeathsig KILL`, so the kernel kills it when its parent
//! goes away, and a small shell watchdog (under `--pdeathsig TERM`) removes
//! the temp dir.
//!
//! The death signal fires when the *thread* that forked the child exits, not
//! the process. Test threads come and go, so all children are forked by one
//! dedicated thread that lives as long as the process.

use std::path::Path;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::OnceLock;
use std::sync::mpsc;
use std::time::Duration;

use crate::Error;

type Request = (Command, mpsc::Sender<std::io::Result<Child>>);

fn spawner() -> &'static mpsc::Sender<Request> {
    static SPAWNER: OnceLock<mpsc::Sender<Request>> = OnceLock::new();
    SPAWNER.get_or_init(|| {
        let (tx, rx) = mpsc::channel::<Request>();
        std::thread::Builder::new()
            .name("test-cluster-spawner".into())
            .spawn(move || {
                for (mut cmd, reply) in rx {
                    let _ = reply.send(cmd.spawn());
                }
                // The sender lives in a static, so the loop never ends and
                // this thread (the children's "parent") lives until exit.
            })
            .expect("spawning the test-cluster spawner thread");
        tx
    })
}

/// Builds a command that runs `program` and gets `signal` when this process
/// exits. Falls back to a plain command where `setpriv` is missing.
pub(crate) fn tied_command(program: &Path, signal: &str) -> Command {
    if Path::new("/usr/bin/setpriv").exists() {
        let mut cmd = Command::new("/usr/bin/setpriv");
        cmd.arg("--pdeathsig").arg(signal).arg("--").arg(program);
        cmd
    } else {
        Command::new(program)
    }
}

/// Spawns `cmd` from the long-lived spawner thread (see the module docs).
pub(crate) fn spawn(cmd: Command) -> std::io::Result<Child> {
    let (tx, rx) = mpsc::channel();
    spawner()
        .send((cmd, tx))
        .map_err(|_| std::io::Error::other("the spawner thread is gone"))?;
    rx.recv()
        .map_err(|_| std::io::Error::other("the spawner thread is gone"))?
}

/// A running child process that is killed when dropped.
#[derive(Debug)]
pub(crate) struct Guard {
    name: String,
    child: Option<Child>,
}

impl Guard {
    /// Starts `cmd` with stdout and stderr appended to `log`.
    pub fn start(name: &str, mut cmd: Command, log: &Path) -> Result<Self, Error> {
        let out = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(log)
            .map_err(Error::io(format!("opening {}", log.display())))?;
        let err = out
            .try_clone()
            .map_err(Error::io(format!("opening {}", log.display())))?;
        cmd.stdin(Stdio::null()).stdout(out).stderr(err);
        let child = spawn(cmd).map_err(Error::io(format!("starting {name}")))?;
        Ok(Guard {
            name: name.to_string(),
            child: Some(child),
        })
    }

    /// A guard of no process yet (its place in a struct, until the process starts).
    pub fn none(name: &str) -> Self {
        Guard {
            name: name.to_string(),
            child: None,
        }
    }

    /// The process id.
    pub fn pid(&self) -> u32 {
        self.child.as_ref().map(Child::id).unwrap_or(0)
    }

    /// `Some(status)` once the process has exited.
    pub fn exited(&mut self) -> Option<ExitStatus> {
        self.child
            .as_mut()
            .and_then(|c| c.try_wait().ok().flatten())
    }

    /// Kills the process and reaps it, so no zombie is left behind.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            if child.try_wait().ok().flatten().is_none() {
                let _ = child.kill();
            }
            // SIGKILL cannot be ignored, so this returns promptly.
            let _ = child.wait();
        }
    }

    /// Sends SIGTERM, waits up to `grace`, then kills.
    pub fn terminate(&mut self, grace: Duration) {
        if let Some(child) = self.child.as_mut() {
            if let Some(pid) = rustix::process::Pid::from_raw(child.id() as i32) {
                let _ = rustix::process::kill_process(pid, rustix::process::Signal::TERM);
            }
            let deadline = std::time::Instant::now() + grace;
            while std::time::Instant::now() < deadline {
                if child.try_wait().ok().flatten().is_some() {
                    break;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
        }
        self.kill();
    }

    /// The name given at start, for messages.
    pub fn name(&self) -> &str {
        &self.name
    }
}

impl Drop for Guard {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Starts a watchdog that removes `dir` when this process exits without
/// dropping its owner (the drop path removes it itself).
pub(crate) fn dir_watchdog(dir: &Path) -> Result<Guard, Error> {
    watchdog("temp dir watchdog", r#"rm -rf -- "$0""#, dir)
}

/// Starts a shell that runs `on_death` (shell code in which `$0` is `arg`) when this process
/// exits: the kernel sends it SIGTERM then (`--pdeathsig TERM`).
pub(crate) fn watchdog(name: &str, on_death: &str, arg: &Path) -> Result<Guard, Error> {
    // `sleep & wait` rather than a bare `sleep`: sh runs a trap only between
    // commands, and `wait` returns as soon as the signal arrives.
    let mut cmd = tied_command(Path::new("/bin/sh"), "TERM");
    cmd.arg("-c")
        .arg(format!(
            "trap '{on_death}; exit 0' TERM; while :; do sleep 5 & wait $!; done"
        ))
        .arg(arg);
    cmd.stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    let child = spawn(cmd).map_err(Error::io(format!("starting the {name}")))?;
    Ok(Guard {
        name: name.into(),
        child: Some(child),
    })
}
