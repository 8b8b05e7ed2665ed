//! Turning one container of a Pod into a local command line.
//!
//! With a private mount namespace (`unshare --mount`, needs root or
//! CAP_SYS_ADMIN) each volume is bind-mounted at its `mountPath`, read-only
//! when the mount says so, and the container's `terminationMessagePath` is a
//! bind mount of a file in the pod's run dir, as a kubelet does it. The
//! namespace is private, so none of these mounts is visible on the host.
//! Mount points that do not exist on the host (an empty dir or file) are
//! created for the run and removed again when no container uses them.
//!
//! Without that privilege ([`Isolation::PathMapping`]) nothing is mounted:
//! every argument, environment value and the working dir that starts with a
//! `mountPath` is rewritten to the host path behind it, and the termination
//! message path likewise. Read-only mounts are then *not* enforced.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Mutex, OnceLock};

use k8s_openapi::api::core::v1::Container;

use super::images::ImageMap;

/// How containers see their volumes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Isolation {
    /// A private mount namespace if this process may create one, else
    /// [`Isolation::PathMapping`].
    Auto,
    /// Bind mounts in a private mount namespace (read-only enforced).
    MountNamespace,
    /// Rewrite paths in args, env and working dir (read-only not enforced).
    PathMapping,
}

impl Isolation {
    /// Resolves [`Isolation::Auto`] by trying `unshare --mount` once.
    pub fn effective(self) -> Isolation {
        static CAN_UNSHARE: OnceLock<bool> = OnceLock::new();
        match self {
            Isolation::Auto => {
                let ok = *CAN_UNSHARE.get_or_init(|| {
                    Command::new("unshare")
                        .args(["--mount", "--propagation", "private", "true"])
                        .status()
                        .is_ok_and(|s| s.success())
                });
                if ok {
                    Isolation::MountNamespace
                } else {
                    Isolation::PathMapping
                }
            }
            other => other,
        }
    }
}

/// The default `PATH` inside containers, as in most images.
const CONTAINER_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// A container ready to be spawned.
pub(crate) struct Prepared {
    pub command: Command,
    /// The host file the container's termination message lands in.
    pub termination_file: PathBuf,
    /// stdout and stderr of the container.
    pub log_file: PathBuf,
    /// Mount points created for this container; released when dropped.
    pub _mount_points: Vec<MountPointLease>,
}

/// One volume mount, resolved to its host path.
struct Mount {
    host: PathBuf,
    target: PathBuf,
    read_only: bool,
}

/// Prepares `container`'s command. `volumes` maps volume names to host paths.
pub(crate) fn prepare(
    container: &Container,
    pod_name: &str,
    volumes: &BTreeMap<String, PathBuf>,
    images: &ImageMap,
    run_dir: &Path,
    isolation: Isolation,
) -> Result<Prepared, String> {
    let argv = argv(container, images)?;
    let mut mounts = Vec::new();
    for vm in container.volume_mounts.as_deref().unwrap_or_default() {
        let host = volumes.get(&vm.name).ok_or_else(|| {
            format!(
                "volume mount {:?}: no volume of that name, or its type is not supported \
                 by the pod runner (only hostPath and emptyDir are)",
                vm.name
            )
        })?;
        let host = match vm.sub_path.as_deref() {
            Some(sub) if !sub.is_empty() => host.join(sub),
            _ => host.clone(),
        };
        mounts.push(Mount {
            host,
            target: PathBuf::from(&vm.mount_path),
            read_only: vm.read_only.unwrap_or(false),
        });
    }

    let termination_file = run_dir.join(format!("{}.termination-log", container.name));
    let log_file = run_dir.join(format!("{}.log", container.name));
    std::fs::write(&termination_file, b"")
        .map_err(|e| format!("creating {}: {e}", termination_file.display()))?;
    let termination_path = PathBuf::from(
        container
            .termination_message_path
            .as_deref()
            .unwrap_or("/dev/termination-log"),
    );

    let mut env: Vec<(String, String)> = vec![
        ("PATH".into(), CONTAINER_PATH.into()),
        ("HOSTNAME".into(), pod_name.into()),
    ];
    for var in container.env.as_deref().unwrap_or_default() {
        // valueFrom (secrets, field refs) would need more of a kubelet than
        // this project uses; such variables are left out.
        if let Some(value) = &var.value {
            env.push((var.name.clone(), value.clone()));
        }
    }
    let working_dir = container.working_dir.clone();

    let mut leases = Vec::new();
    let mut command = match isolation.effective() {
        Isolation::MountNamespace | Isolation::Auto => {
            let mut script = String::from(
                "fail() { printf 'pod runner: %s\\n' \"$1\" >&2; printf 'pod runner: %s\\n' \"$1\" > \"$MVO_TERMINATION_FILE\"; exit 128; }\n",
            );
            for m in &mounts {
                leases.extend(ensure_mount_point(&m.target, m.host.is_dir())?);
                let (src, dst) = (quote(&m.host), quote(&m.target));
                script.push_str(&format!(
                    "mount --bind {src} {dst} || fail {}\n",
                    quote_str(&format!(
                        "bind mount of {} at {} failed",
                        m.host.display(),
                        m.target.display()
                    ))
                ));
                if m.read_only {
                    script.push_str(&format!(
                        "mount -o remount,bind,ro {dst} || fail {}\n",
                        quote_str(&format!(
                            "remounting {} read-only failed",
                            m.target.display()
                        ))
                    ));
                }
            }
            leases.extend(ensure_mount_point(&termination_path, false)?);
            script.push_str(&format!(
                "mount --bind \"$MVO_TERMINATION_FILE\" {} || fail 'mounting the termination message file failed'\n",
                quote(&termination_path)
            ));
            if let Some(dir) = &working_dir {
                script.push_str(&format!(
                    "cd {} || fail 'workingDir does not exist'\n",
                    quote_str(dir)
                ));
            }
            script.push_str("unset MVO_TERMINATION_FILE\nexec \"$@\"\n");
            let mut cmd = crate::process::tied_command(Path::new("/usr/bin/unshare"), "KILL");
            cmd.args(["--mount", "--propagation", "private", "--", "/bin/sh", "-c"])
                .arg(script)
                .arg("sh")
                .args(&argv);
            cmd.env_clear()
                .env("MVO_TERMINATION_FILE", &termination_file)
                .envs(env);
            cmd
        }
        Isolation::PathMapping => {
            let mut table: Vec<(PathBuf, PathBuf)> = mounts
                .iter()
                .map(|m| (m.target.clone(), m.host.clone()))
                .collect();
            table.push((termination_path.clone(), termination_file.clone()));
            let argv: Vec<String> = argv.iter().map(|a| map_path(a, &table)).collect();
            let mut cmd = crate::process::tied_command(Path::new(&argv[0]), "KILL");
            cmd.args(&argv[1..]);
            cmd.env_clear().envs(env.into_iter().map(|(k, v)| {
                let v = map_path(&v, &table);
                (k, v)
            }));
            if let Some(dir) = &working_dir {
                cmd.current_dir(map_path(dir, &table));
            }
            cmd
        }
    };
    if working_dir.is_none() {
        command.current_dir("/");
    }
    Ok(Prepared {
        command,
        termination_file,
        log_file,
        _mount_points: leases,
    })
}

/// The command line: the container's `command` (or the image's entrypoint)
/// followed by its `args`.
///
/// A mapped image's binary replaces `command[0]` when the names match (the
/// image's `/usr/local/bin/model-signing` is our `target/release/model-signing`);
/// any other `command` runs as given on the host, e.g. `/bin/sh`.
fn argv(container: &Container, images: &ImageMap) -> Result<Vec<String>, String> {
    let image = container.image.as_deref().unwrap_or_default();
    let entrypoint = images.resolve(image);
    let command = container.command.clone().unwrap_or_default();
    let mut argv: Vec<String> = match (command.split_first(), entrypoint) {
        (Some((first, rest)), Some(bin)) if Path::new(first).file_name() == bin.file_name() => {
            std::iter::once(bin.display().to_string())
                .chain(rest.iter().cloned())
                .collect()
        }
        (Some(_), _) => command,
        (None, Some(bin)) => vec![bin.display().to_string()],
        (None, None) => {
            return Err(format!(
                "image {image:?} has no local binary and the container has no command: \
                 map it with MVO_POD_RUNNER_IMAGES=\"{image}=/path/to/binary\""
            ));
        }
    };
    if let Some(bin) = entrypoint
        && argv[0] == bin.display().to_string()
        && !bin.is_file()
    {
        return Err(format!(
            "image {image:?} maps to {}, which does not exist: build it first \
             (for the verifier: `cargo build --release`)",
            bin.display()
        ));
    }
    argv.extend(container.args.clone().unwrap_or_default());
    Ok(argv)
}

/// Rewrites `value` if it is, or starts with, a mapped container path.
pub(crate) fn map_path(value: &str, table: &[(PathBuf, PathBuf)]) -> String {
    // Longest container path first, so /a/b wins over /a.
    let mut sorted: Vec<&(PathBuf, PathBuf)> = table.iter().collect();
    sorted.sort_by_key(|(c, _)| std::cmp::Reverse(c.as_os_str().len()));
    for (container, host) in sorted {
        let c = container.to_string_lossy();
        if value == c {
            return host.display().to_string();
        }
        if let Some(rest) = value.strip_prefix(&format!("{}/", c.trim_end_matches('/'))) {
            return host.join(rest).display().to_string();
        }
    }
    value.to_string()
}

fn quote(path: &Path) -> String {
    quote_str(&path.to_string_lossy())
}

/// Single-quotes `s` for sh.
fn quote_str(s: &str) -> String {
    format!("'{}'", s.replace('\'', r"'\''"))
}

/// Mount points the runner created on the host, with how many containers use
/// each; removed when the count drops to zero.
fn registry() -> &'static Mutex<HashMap<PathBuf, usize>> {
    static CREATED: OnceLock<Mutex<HashMap<PathBuf, usize>>> = OnceLock::new();
    CREATED.get_or_init(Default::default)
}

/// A created mount point (dir or empty file) in use by one container.
pub(crate) struct MountPointLease {
    path: PathBuf,
}

impl Drop for MountPointLease {
    fn drop(&mut self) {
        let mut created = registry().lock().unwrap_or_else(|e| e.into_inner());
        if let Some(count) = created.get_mut(&self.path) {
            *count -= 1;
            if *count == 0 {
                created.remove(&self.path);
                // Only ever empty: a dir is removed only if empty, a file
                // only if it is the empty placeholder we made.
                if self.path.is_dir() {
                    let _ = std::fs::remove_dir(&self.path);
                } else if std::fs::metadata(&self.path).is_ok_and(|m| m.len() == 0) {
                    let _ = std::fs::remove_file(&self.path);
                }
            }
        }
    }
}

/// Makes sure `target` exists (a dir, or a file when `!dir`), creating what
/// is missing. Returns leases deepest first, so dropping them in order
/// removes children before parents.
fn ensure_mount_point(target: &Path, dir: bool) -> Result<Vec<MountPointLease>, String> {
    let mut created = registry().lock().unwrap_or_else(|e| e.into_inner());
    let mut missing = Vec::new();
    let mut p = Some(target);
    while let Some(path) = p {
        if created.contains_key(path) || !path.exists() {
            missing.push(path.to_path_buf());
            p = path.parent();
        } else {
            break;
        }
    }
    let mut leases = Vec::new();
    // Create from the top down, lease from the bottom up.
    for path in missing.iter().rev() {
        if !created.contains_key(path) {
            let is_leaf_file = !dir && path == target;
            let result = if is_leaf_file {
                std::fs::write(path, b"")
            } else {
                std::fs::create_dir(path)
            };
            result.map_err(|e| {
                format!(
                    "creating the mount point {} failed: {e} (run the pod runner as root, \
                     or use Isolation::PathMapping)",
                    path.display()
                )
            })?;
        }
        *created.entry(path.clone()).or_insert(0) += 1;
        leases.push(MountPointLease { path: path.clone() });
    }
    leases.reverse();
    Ok(leases)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn maps_paths_by_longest_prefix() {
        let table = vec![
            (PathBuf::from("/models"), PathBuf::from("/host/m")),
            (PathBuf::from("/models/sig"), PathBuf::from("/host/s")),
        ];
        assert_eq!(map_path("/models", &table), "/host/m");
        assert_eq!(map_path("/models/a/b", &table), "/host/m/a/b");
        assert_eq!(map_path("/models/sig/x", &table), "/host/s/x");
        assert_eq!(map_path("/modelsx", &table), "/modelsx");
        assert_eq!(map_path("--flag", &table), "--flag");
    }

    #[test]
    fn quotes_for_sh() {
        assert_eq!(quote_str("it's"), r"'it'\''s'");
    }

    #[test]
    fn argv_uses_the_mapped_binary_for_the_image() {
        let images = ImageMap::new().with("verifier", "/bin/true");
        let c: Container = serde_json::from_value(serde_json::json!({
            "name": "v", "image": "verifier:1",
            "command": ["/usr/local/bin/true"], "args": ["a"]
        }))
        .unwrap();
        assert_eq!(argv(&c, &images).unwrap(), ["/bin/true", "a"]);
        let c: Container = serde_json::from_value(serde_json::json!({
            "name": "v", "image": "verifier", "args": ["b"]
        }))
        .unwrap();
        assert_eq!(argv(&c, &images).unwrap(), ["/bin/true", "b"]);
        let c: Container = serde_json::from_value(serde_json::json!({
            "name": "v", "image": "busybox", "command": ["/bin/sh", "-c", "x"]
        }))
        .unwrap();
        assert_eq!(argv(&c, &images).unwrap(), ["/bin/sh", "-c", "x"]);
        let c: Container = serde_json::from_value(serde_json::json!({
            "name": "v", "image": "busybox"
        }))
        .unwrap();
        assert!(
            argv(&c, &images)
                .unwrap_err()
                .contains("MVO_POD_RUNNER_IMAGES")
        );
    }

    #[test]
    fn created_mount_points_are_removed_after_use() {
        let base = tempfile::tempdir().unwrap();
        let target = base.path().join("a/b/c");
        let first = ensure_mount_point(&target, true).unwrap();
        let second = ensure_mount_point(&target, true).unwrap();
        assert!(target.is_dir());
        drop(first);
        assert!(target.is_dir(), "still used by the second container");
        drop(second);
        assert!(!base.path().join("a").exists());
    }
}
