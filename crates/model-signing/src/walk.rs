//! Finding the files of a model: ignore rules, symlink policy, special files.

use std::collections::BTreeSet;
use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use crate::name::ModelPath;

/// Paths ignored at the model root unless git ignoring is switched off.
pub const GIT_PATHS: [&str; 4] = [".git", ".gitattributes", ".github", ".gitignore"];

/// Which files of a model are part of its manifest.
#[derive(Debug, Clone, Default)]
pub struct Selection {
    /// Model-relative paths left out, each with everything under it.
    pub ignore_paths: Vec<ModelPath>,
    /// Leave out [`GIT_PATHS`] at the model root.
    pub ignore_git_paths: bool,
    /// Follow symlinks to files (hashing the target under the link's name). Off: any symlink
    /// met is an error.
    pub allow_symlinks: bool,
}

impl Selection {
    /// True when `path` is left out by an ignore path or the git defaults.
    pub fn is_ignored(&self, path: &ModelPath) -> bool {
        if self.ignore_git_paths
            && path
                .components()
                .first()
                .is_some_and(|c| GIT_PATHS.contains(&c.as_str()))
        {
            return true;
        }
        self.ignore_paths.iter().any(|p| path.starts_with(p))
    }

    /// Every ignore path as recorded in a signature: the user's, plus the git paths when on.
    pub fn recorded_ignore_paths(&self) -> Vec<String> {
        let mut all: BTreeSet<String> = self.ignore_paths.iter().map(|p| p.to_string()).collect();
        if self.ignore_git_paths {
            all.extend(GIT_PATHS.iter().map(|s| s.to_string()));
        }
        all.into_iter().collect()
    }
}

/// Which file a walk found (device and inode): opening the path later must reach this same
/// file, or the file was replaced in between.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FileIdentity {
    /// `st_dev`.
    pub dev: u64,
    /// `st_ino`.
    pub ino: u64,
}

impl FileIdentity {
    /// The identity of the file `meta` describes.
    pub fn of(meta: &fs::Metadata) -> Self {
        FileIdentity {
            dev: meta.dev(),
            ino: meta.ino(),
        }
    }
}

/// One file of the model.
#[derive(Debug, Clone)]
pub struct ModelFile {
    /// Its name in the manifest.
    pub path: ModelPath,
    /// Where to read it. For a followed symlink this is the resolved target, so that the file
    /// can be opened without following symlinks: a link retargeted after the walk is not read.
    pub fs_path: PathBuf,
    /// Its size when it was found.
    pub size: u64,
    /// The file found (the target, for a followed symlink).
    pub identity: FileIdentity,
}

impl ModelFile {
    /// A file found at `fs_path` (already resolved: no symlink as its last component),
    /// described by `meta`.
    fn found(path: ModelPath, fs_path: PathBuf, meta: &fs::Metadata) -> Self {
        ModelFile {
            path,
            fs_path,
            size: meta.len(),
            identity: FileIdentity::of(meta),
        }
    }
}

/// The path of a symlink's final target, with every symlink on the way resolved, so that it
/// can be opened without following symlinks.
fn resolve_link(name: &ModelPath, link: &Path) -> Result<PathBuf, WalkError> {
    fs::canonicalize(link).map_err(|_| WalkError::SpecialFile {
        path: name.to_string(),
        kind: "broken symlink",
    })
}

/// The files found, in no particular order, and what the caller should be told about.
#[derive(Debug, Default)]
pub struct Walk {
    /// Files to hash.
    pub files: Vec<ModelFile>,
    /// Things that are allowed but worth a warning (symlinked directories not followed,
    /// symlinks pointing outside the model).
    pub warnings: Vec<String>,
}

/// Why a model cannot be serialized.
#[derive(Debug, thiserror::Error)]
pub enum WalkError {
    /// The model path does not exist or cannot be read.
    #[error("cannot read model at {path}: {source}")]
    Model {
        /// The model path given.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// A symlink was met and symlinks are not allowed.
    #[error("'{0}' is a symlink and symlinks are not allowed")]
    Symlink(String),
    /// A FIFO, socket, device or broken symlink.
    #[error("'{path}' is a {kind}, not a regular file or directory")]
    SpecialFile {
        /// Model-relative path.
        path: String,
        /// What it is.
        kind: &'static str,
    },
    /// A file name that is not UTF-8 cannot be written into a manifest.
    #[error("'{0}' has a name that is not valid UTF-8")]
    NonUtf8(String),
    /// Reading a directory entry failed.
    #[error("cannot read '{path}': {source}")]
    Io {
        /// Model-relative path.
        path: String,
        /// The cause.
        source: std::io::Error,
    },
}

fn file_kind(ft: &fs::FileType) -> &'static str {
    use std::os::unix::fs::FileTypeExt;
    if ft.is_fifo() {
        "FIFO"
    } else if ft.is_socket() {
        "socket"
    } else if ft.is_block_device() {
        "block device"
    } else if ft.is_char_device() {
        "character device"
    } else {
        "special file"
    }
}

/// Lists the files of the model at `root`.
///
/// `keep` names paths that must not be skipped even when an ignore rule covers them (at
/// verification: the signed files and their directories, so that an ignore path can never hide
/// a signed file from the check).
pub fn walk(root: &Path, sel: &Selection, keep: &BTreeSet<ModelPath>) -> Result<Walk, WalkError> {
    let meta = fs::metadata(root).map_err(|source| WalkError::Model {
        path: root.to_path_buf(),
        source,
    })?;
    let mut out = Walk::default();
    if meta.is_file() {
        // The model path itself may be a symlink (volume mounts often are): it is the path the
        // caller chose, so it is resolved here and the file is then opened without following.
        let fs_path = fs::canonicalize(root).map_err(|source| WalkError::Model {
            path: root.to_path_buf(),
            source,
        })?;
        out.files
            .push(ModelFile::found(ModelPath::root(), fs_path, &meta));
        return Ok(out);
    }
    if !meta.is_dir() {
        return Err(WalkError::SpecialFile {
            path: root.display().to_string(),
            kind: file_kind(&meta.file_type()),
        });
    }
    let canonical_root = fs::canonicalize(root).ok();
    // An explicit stack: a crafted, very deep tree must not overflow ours.
    let mut stack = vec![(ModelPath::root(), root.to_path_buf())];
    while let Some((dir, fs_dir)) = stack.pop() {
        let entries = fs::read_dir(&fs_dir).map_err(|source| WalkError::Io {
            path: dir.to_string(),
            source,
        })?;
        for entry in entries {
            let entry = entry.map_err(|source| WalkError::Io {
                path: dir.to_string(),
                source,
            })?;
            let file_name = entry.file_name();
            let Some(name) = file_name.to_str() else {
                return Err(WalkError::NonUtf8(format!(
                    "{}/{}",
                    dir,
                    file_name.to_string_lossy()
                )));
            };
            let path = dir.join(name);
            if sel.is_ignored(&path) && !keep.contains(&path) {
                continue;
            }
            let fs_path = entry.path();
            let ft = entry.file_type().map_err(|source| WalkError::Io {
                path: path.to_string(),
                source,
            })?;
            if ft.is_dir() {
                stack.push((path, fs_path));
            } else if ft.is_file() {
                // Does not follow symlinks: describes the directory entry itself.
                let meta = entry.metadata().map_err(|source| WalkError::Io {
                    path: path.to_string(),
                    source,
                })?;
                out.files.push(ModelFile::found(path, fs_path, &meta));
            } else if ft.is_symlink() {
                if !sel.allow_symlinks {
                    return Err(WalkError::Symlink(path.to_string()));
                }
                match fs::metadata(&fs_path) {
                    Ok(target) if target.is_file() => {
                        let resolved = resolve_link(&path, &fs_path)?;
                        if let Some(root) = &canonical_root
                            && !resolved.starts_with(root)
                        {
                            out.warnings.push(format!(
                                "symlink '{path}' points outside the model, to {}",
                                resolved.display()
                            ));
                        }
                        out.files.push(ModelFile::found(path, resolved, &target));
                    }
                    Ok(target) if target.is_dir() => {
                        // The peer does not descend into symlinked directories; doing so would
                        // produce manifests it cannot verify. Say so instead of staying silent.
                        out.warnings.push(format!(
                            "symlinked directory '{path}' is not followed: its contents are not covered by the signature"
                        ));
                    }
                    Ok(target) => {
                        return Err(WalkError::SpecialFile {
                            path: path.to_string(),
                            kind: file_kind(&target.file_type()),
                        });
                    }
                    Err(_) => {
                        return Err(WalkError::SpecialFile {
                            path: path.to_string(),
                            kind: "broken symlink",
                        });
                    }
                }
            } else {
                return Err(WalkError::SpecialFile {
                    path: path.to_string(),
                    kind: file_kind(&ft),
                });
            }
        }
    }
    Ok(out)
}

/// Finds the files named in a signature, without walking the rest of the model (for
/// `--ignore_unsigned_files`). Returns the files found and the names that are missing.
///
/// A name reaches its file only through real directories: a symlinked directory on the way is
/// treated as missing, because a walk would never have entered it either.
pub fn resolve_named(
    root: &Path,
    names: &BTreeSet<ModelPath>,
    sel: &Selection,
) -> Result<(Vec<ModelFile>, Vec<ModelPath>), WalkError> {
    let mut files = Vec::new();
    let mut missing = Vec::new();
    'names: for name in names {
        let mut fs_path = root.to_path_buf();
        let parts = name.components();
        for (i, part) in parts.iter().enumerate() {
            fs_path.push(part);
            if i + 1 < parts.len() {
                match fs::symlink_metadata(&fs_path) {
                    Ok(m) if m.is_dir() => {}
                    _ => {
                        missing.push(name.clone());
                        continue 'names;
                    }
                }
            }
        }
        let lmeta = match fs::symlink_metadata(&fs_path) {
            Ok(m) => m,
            Err(_) => {
                missing.push(name.clone());
                continue;
            }
        };
        let is_link = lmeta.file_type().is_symlink();
        let meta = if is_link {
            if !sel.allow_symlinks && !name.is_root() {
                return Err(WalkError::Symlink(name.to_string()));
            }
            match fs::metadata(&fs_path) {
                Ok(m) => m,
                Err(_) => {
                    return Err(WalkError::SpecialFile {
                        path: name.to_string(),
                        kind: "broken symlink",
                    });
                }
            }
        } else {
            lmeta
        };
        if meta.is_file() {
            let fs_path = if is_link {
                resolve_link(name, &fs_path)?
            } else {
                fs_path
            };
            files.push(ModelFile::found(name.clone(), fs_path, &meta));
        } else if meta.is_dir() {
            missing.push(name.clone());
        } else {
            return Err(WalkError::SpecialFile {
                path: name.to_string(),
                kind: file_kind(&meta.file_type()),
            });
        }
    }
    Ok((files, missing))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

    fn names(w: &Walk) -> Vec<String> {
        let mut v: Vec<ModelPath> = w.files.iter().map(|f| f.path.clone()).collect();
        v.sort();
        v.iter().map(|p| p.to_string()).collect()
    }

    fn git_sel() -> Selection {
        Selection {
            ignore_git_paths: true,
            ..Default::default()
        }
    }

    #[test]
    fn ignores_git_paths_only_at_the_root() {
        let d = tempfile::tempdir().unwrap();
        fs::create_dir_all(d.path().join(".git/objects")).unwrap();
        fs::write(d.path().join(".git/HEAD"), "x").unwrap();
        fs::write(d.path().join(".gitattributes"), "x").unwrap();
        fs::create_dir_all(d.path().join("sub/.git")).unwrap();
        fs::write(d.path().join("sub/.git/HEAD"), "x").unwrap();
        fs::write(d.path().join("sub/.gitignore"), "x").unwrap();
        fs::write(d.path().join(".gitmodules"), "x").unwrap();
        fs::create_dir(d.path().join("emptydir")).unwrap();
        let w = walk(d.path(), &git_sel(), &BTreeSet::new()).unwrap();
        assert_eq!(
            names(&w),
            [".gitmodules", "sub/.git/HEAD", "sub/.gitignore"]
        );
        let all = walk(d.path(), &Selection::default(), &BTreeSet::new()).unwrap();
        assert_eq!(all.files.len(), 5);
    }

    #[test]
    fn user_ignores_cover_subtrees_and_keep_overrides() {
        let d = tempfile::tempdir().unwrap();
        fs::create_dir_all(d.path().join("a/b")).unwrap();
        fs::write(d.path().join("a/b/c"), "x").unwrap();
        fs::write(d.path().join("a/bc"), "x").unwrap();
        let sel = Selection {
            ignore_paths: vec![ModelPath::parse("a/b").unwrap()],
            ..Default::default()
        };
        assert_eq!(
            names(&walk(d.path(), &sel, &BTreeSet::new()).unwrap()),
            ["a/bc"]
        );
        let keep: BTreeSet<ModelPath> = ["a", "a/b", "a/b/c"]
            .iter()
            .map(|s| ModelPath::parse(s).unwrap())
            .collect();
        assert_eq!(
            names(&walk(d.path(), &sel, &keep).unwrap()),
            ["a/b/c", "a/bc"]
        );
    }

    #[test]
    fn symlinks_refused_unless_allowed() {
        let d = tempfile::tempdir().unwrap();
        let m = d.path().join("m");
        fs::create_dir_all(m.join("real")).unwrap();
        fs::write(m.join("real/a"), "x").unwrap();
        fs::write(d.path().join("outside"), "y").unwrap();
        symlink("real/a", m.join("link")).unwrap();
        symlink("../outside", m.join("out")).unwrap();
        symlink("real", m.join("linkdir")).unwrap();
        let err = walk(&m, &Selection::default(), &BTreeSet::new()).unwrap_err();
        assert!(matches!(err, WalkError::Symlink(_)), "{err}");
        let sel = Selection {
            allow_symlinks: true,
            ..Default::default()
        };
        let w = walk(&m, &sel, &BTreeSet::new()).unwrap();
        assert_eq!(names(&w), ["link", "out", "real/a"]);
        assert_eq!(w.warnings.len(), 2, "{:?}", w.warnings);
        symlink("nowhere", m.join("broken")).unwrap();
        assert!(matches!(
            walk(&m, &sel, &BTreeSet::new()),
            Err(WalkError::SpecialFile { .. })
        ));
    }

    #[test]
    fn single_file_model_is_named_dot() {
        let d = tempfile::tempdir().unwrap();
        let f = d.path().join("model.bin");
        fs::write(&f, "abc").unwrap();
        let w = walk(&f, &git_sel(), &BTreeSet::new()).unwrap();
        assert_eq!(names(&w), ["."]);
        assert_eq!(w.files[0].size, 3);
    }

    #[test]
    fn fifo_is_an_error() {
        let d = tempfile::tempdir().unwrap();
        let status = std::process::Command::new("mkfifo")
            .arg(d.path().join("pipe"))
            .status()
            .unwrap();
        assert!(status.success());
        let err = walk(d.path(), &Selection::default(), &BTreeSet::new()).unwrap_err();
        assert!(err.to_string().contains("'pipe' is a FIFO"), "{err}");
    }

    #[test]
    fn missing_model_is_an_error() {
        let err = walk(
            Path::new("/nonexistent/model"),
            &Selection::default(),
            &BTreeSet::new(),
        )
        .unwrap_err();
        assert!(
            err.to_string()
                .contains("cannot read model at /nonexistent/model"),
            "{err}"
        );
    }
}
