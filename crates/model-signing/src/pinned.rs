//! Opening a walked file so that the bytes hashed are those of the file the walk found.
//!
//! A path is only a name: between the walk and the read, someone who can write the model's
//! storage can rename another file over it, make it a symlink, or write into it. So the file is
//! opened without following a symlink, the open handle is checked against the identity (device,
//! inode) and size the walk recorded, every byte is read from that handle, and the handle is
//! looked at again after hashing. Any difference fails closed, naming what changed.

use std::fmt;
use std::fs::{File, Metadata, OpenOptions};
use std::io;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};

use rustix::fs::OFlags;

use crate::walk::{FileIdentity, ModelFile};

/// What happened to a model file between the walk and the end of its hashing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FileChange {
    /// Its name now leads to another file (another device or inode, or not a regular file).
    Replaced,
    /// Its size is not the size the walk found.
    SizeChanged {
        /// Bytes when the model was listed.
        from: u64,
        /// Bytes when it was read.
        to: u64,
    },
    /// It is now a symlink.
    BecameSymlink,
    /// It was written to while it was hashed (its modification time moved).
    ChangedWhileHashed,
}

impl fmt::Display for FileChange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FileChange::Replaced => f.write_str("replaced (another inode)"),
            FileChange::SizeChanged { from, to } => {
                write!(f, "size changed from {from} to {to} bytes")
            }
            FileChange::BecameSymlink => f.write_str("became a symlink"),
            FileChange::ChangedWhileHashed => f.write_str("changed while it was hashed"),
        }
    }
}

/// Why a pinned read failed.
#[derive(Debug)]
pub(crate) enum PinError {
    /// The file could not be opened or read.
    Io(io::Error),
    /// The file is not the one the walk found, or changed while it was read.
    Changed(FileChange),
}

impl From<io::Error> for PinError {
    fn from(e: io::Error) -> Self {
        PinError::Io(e)
    }
}

/// The parts of `fstat` that move when a file's content is written.
#[derive(Debug, PartialEq, Eq)]
struct Stamp {
    size: u64,
    mtime: (i64, i64),
}

impl Stamp {
    fn of(meta: &Metadata) -> Self {
        Stamp {
            size: meta.len(),
            mtime: (meta.mtime(), meta.mtime_nsec()),
        }
    }
}

/// A model file opened and checked to be the file the walk found.
pub(crate) struct PinnedFile<'a> {
    /// The open handle; every byte is read from it.
    pub(crate) file: File,
    found: &'a ModelFile,
    stamp: Stamp,
}

/// Flags for opening a model file. `O_NOFOLLOW`: a symlink put in place of the file is refused,
/// not read through. `O_NONBLOCK`: a FIFO put in its place cannot make the open hang (the
/// identity check then refuses it); it changes nothing for regular files.
fn open_flags() -> i32 {
    (OFlags::NOFOLLOW | OFlags::NONBLOCK).bits().cast_signed()
}

/// Opens `found` without following symlinks and checks that the handle is the file the walk
/// recorded, with the size it recorded.
pub(crate) fn open(found: &ModelFile) -> Result<PinnedFile<'_>, PinError> {
    let file = match OpenOptions::new()
        .read(true)
        .custom_flags(open_flags())
        .open(&found.fs_path)
    {
        Ok(f) => f,
        Err(e) if e.raw_os_error() == Some(rustix::io::Errno::LOOP.raw_os_error()) => {
            // ELOOP also means "too many levels of symlinks" on the way: only a symlink as
            // the last component is a change of this file.
            let now_link =
                std::fs::symlink_metadata(&found.fs_path).is_ok_and(|m| m.file_type().is_symlink());
            return Err(if now_link {
                PinError::Changed(FileChange::BecameSymlink)
            } else {
                PinError::Io(e)
            });
        }
        Err(e) => return Err(PinError::Io(e)),
    };
    let meta = file.metadata()?;
    if !meta.is_file() || FileIdentity::of(&meta) != found.identity {
        return Err(PinError::Changed(FileChange::Replaced));
    }
    if meta.len() != found.size {
        return Err(PinError::Changed(FileChange::SizeChanged {
            from: found.size,
            to: meta.len(),
        }));
    }
    Ok(PinnedFile {
        file,
        found,
        stamp: Stamp::of(&meta),
    })
}

impl PinnedFile<'_> {
    /// After hashing: `read` bytes were read of the `expected` asked for. Checks that all were
    /// read and that the handle's size and modification time did not move meanwhile.
    ///
    /// Modification times have the kernel's timestamp granularity (a clock tick on older
    /// kernels): a write in the same tick as the file's previous write may go unseen here, but
    /// never a change of size or of inode.
    pub(crate) fn finish(&self, read: u64, expected: u64) -> Result<(), PinError> {
        let now = Stamp::of(&self.file.metadata()?);
        if now.size != self.found.size {
            return Err(PinError::Changed(FileChange::SizeChanged {
                from: self.found.size,
                to: now.size,
            }));
        }
        // Fewer bytes than the (unchanged) size: it was cut and grown back meanwhile.
        if read != expected || now != self.stamp {
            return Err(PinError::Changed(FileChange::ChangedWhileHashed));
        }
        Ok(())
    }
}
