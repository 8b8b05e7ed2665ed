//! What goes into an image's single layer: the binary, the shared libraries it loads (taken
//! from this machine's Debian packages, so that no base image is pulled), and the files a
//! non-root user needs. Nothing else: no shell, no package manager.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result, bail};

/// The user and group every image runs as (distroless' `nonroot`).
pub const NONROOT: u32 = 65532;

/// One file or directory of the layer, by its absolute path in the image.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Entry {
    /// A directory with this mode and owner.
    Dir { mode: u32, owner: u32 },
    /// A regular file with this content and mode, owned by root.
    File { content: Vec<u8>, mode: u32 },
    /// A symbolic link to `target` (an absolute path in the image).
    Symlink { target: String },
}

/// The files of an image, ordered by path (and so written in a reproducible order).
#[derive(Debug, Default)]
pub struct RootFs {
    /// Path in the image (absolute, no trailing slash) to entry.
    pub entries: BTreeMap<String, Entry>,
    /// Debian packages the shared libraries came from, with their versions.
    pub packages: BTreeMap<String, String>,
}

impl RootFs {
    /// A root filesystem holding `binary` at `path`, the libraries it needs, `/etc/passwd` and
    /// `/etc/group` naming root and `nonroot` (65532), its home, and `/tmp`.
    pub fn for_binary(binary: &Path, path: &str) -> Result<RootFs> {
        let mut fs = RootFs::default();
        let content =
            std::fs::read(binary).with_context(|| format!("cannot read {}", binary.display()))?;
        fs.file(path, content, 0o755);
        for (in_image, on_host) in shared_libraries(binary)? {
            let content = std::fs::read(&on_host)
                .with_context(|| format!("cannot read {}", on_host.display()))?;
            fs.file(&in_image, content, 0o755);
            if let Some((package, version)) = debian_package(&on_host) {
                fs.packages.insert(package, version);
            }
        }
        let passwd = format!(
            "root:x:0:0:root:/root:/sbin/nologin\nnonroot:x:{NONROOT}:{NONROOT}:nonroot:/home/nonroot:/sbin/nologin\n"
        );
        fs.file("/etc/passwd", passwd.into_bytes(), 0o644);
        let group = format!("root:x:0:\nnonroot:x:{NONROOT}:\n");
        fs.file("/etc/group", group.into_bytes(), 0o644);
        fs.dir("/home/nonroot", 0o700, NONROOT);
        fs.dir("/tmp", 0o1777, 0);
        Ok(fs)
    }

    /// Adds a root-owned file and its missing parent directories (0755, root).
    pub fn file(&mut self, path: &str, content: Vec<u8>, mode: u32) {
        self.parents(path);
        self.entries
            .insert(path.to_string(), Entry::File { content, mode });
    }

    /// Adds a symlink to `target` and its missing parent directories.
    pub fn symlink(&mut self, path: &str, target: &str) {
        self.parents(path);
        self.entries.insert(
            path.to_string(),
            Entry::Symlink {
                target: target.to_string(),
            },
        );
    }

    /// Adds a directory and its missing parents.
    pub fn dir(&mut self, path: &str, mode: u32, owner: u32) {
        self.parents(path);
        self.entries
            .insert(path.to_string(), Entry::Dir { mode, owner });
    }

    fn parents(&mut self, path: &str) {
        let mut parent = Path::new(path).parent();
        while let Some(p) = parent.and_then(Path::to_str).filter(|p| *p != "/") {
            self.entries.entry(p.to_string()).or_insert(Entry::Dir {
                mode: 0o755,
                owner: 0,
            });
            parent = Path::new(p).parent();
        }
    }
}

/// The shared libraries `binary` loads, as (path the dynamic loader looks for, file on this
/// machine), from `ldd`. None for a static binary.
fn shared_libraries(binary: &Path) -> Result<Vec<(String, PathBuf)>> {
    let out = Command::new("ldd")
        .arg(binary)
        .output()
        .context("cannot run ldd (Debian package libc-bin) to find the binary's libraries")?;
    let text = String::from_utf8_lossy(&out.stdout);
    if !out.status.success() {
        // glibc's ldd says so on stderr, other versions on stdout.
        let said = format!("{text}{}", String::from_utf8_lossy(&out.stderr));
        if said.contains("not a dynamic executable") || said.contains("statically linked") {
            return Ok(Vec::new());
        }
        bail!(
            "ldd {} failed: {}",
            binary.display(),
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    parse_ldd(&text)
}

/// Parses `ldd` output: `libc.so.6 => /lib/x86_64-linux-gnu/libc.so.6 (0x…)` and the loader
/// line `/lib64/ld-linux-x86-64.so.2 (0x…)`; the vDSO has no file and is skipped.
pub fn parse_ldd(text: &str) -> Result<Vec<(String, PathBuf)>> {
    let mut libraries = Vec::new();
    for line in text.lines().map(str::trim).filter(|l| !l.is_empty()) {
        if line.contains("statically linked") {
            continue;
        }
        let path = match line.split_once(" => ") {
            Some((_, right)) if right.starts_with("not found") => {
                bail!("a library the binary needs is missing: {line}")
            }
            Some((_, right)) => right.split_whitespace().next(),
            None if line.starts_with('/') => line.split_whitespace().next(),
            None => continue, // linux-vdso.so.1 (0x…)
        };
        let Some(path) = path.filter(|p| p.starts_with('/')) else {
            continue;
        };
        libraries.push((path.to_string(), PathBuf::from(path)));
    }
    Ok(libraries)
}

/// The Debian package owning `file`, and its installed version (`dpkg`), when known.
fn debian_package(file: &Path) -> Option<(String, String)> {
    let canonical = std::fs::canonicalize(file).ok()?;
    let owner = [file, canonical.as_path()].into_iter().find_map(|p| {
        let out = Command::new("dpkg").arg("-S").arg(p).output().ok()?;
        let text = String::from_utf8_lossy(&out.stdout);
        let package = text.split(':').next()?.trim().to_string();
        (out.status.success() && !package.is_empty()).then_some(package)
    })?;
    let out = Command::new("dpkg-query")
        .args(["-W", "-f", "${Version}"])
        .arg(&owner)
        .output()
        .ok()?;
    let version = String::from_utf8_lossy(&out.stdout).trim().to_string();
    (!version.is_empty()).then_some((owner, version))
}
