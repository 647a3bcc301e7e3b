//! Granted directories, held by handle.
//!
//! A grant is checked on its canonical path (`grants::parse_mount`, and
//! the workflow's and server's "within the operator's grant" check) and
//! then used three ways: preopened for the guest, given to Landlock for
//! the programs it starts, snapshotted for replay. Opening it by name for
//! each use would let a rename or a symbolic link swapped in after the
//! check lead outside. So each grant is opened once per execution, with
//! `openat2(RESOLVE_NO_SYMLINKS)` on its canonical path (which has no
//! symbolic links): the directory held is the one at the path the check
//! saw, or the open fails, naming the path. Every use derives from that
//! descriptor: the guest's preopen reopens it through `/proc/self/fd`,
//! Landlock takes the descriptor, the snapshot walks it with `openat`.
//!
//! What it must not touch: the recording and the store (that is `setup`'s).

use std::ffi::{CString, OsStr};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

#[derive(Debug, thiserror::Error)]
#[error("cannot open granted directory {path}: {cause}{hint}")]
pub struct GrantOpenError {
    pub path: String,
    pub cause: std::io::Error,
    hint: &'static str,
}

/// One granted directory of one execution.
#[derive(Debug)]
pub(crate) struct GrantedDir {
    /// Where it was opened from (for messages).
    pub host: String,
    fd: OwnedFd,
}

impl GrantedDir {
    /// Open the directory at `path` (absolute and canonical) without
    /// following any symbolic link on the way.
    pub fn open(path: &Path) -> Result<Self, GrantOpenError> {
        let fail = |cause: std::io::Error| {
            let hint = match cause.raw_os_error() {
                Some(libc::ELOOP) => {
                    " (a part of it is a symbolic link now; a grant is held as the real directory that was checked)"
                }
                Some(libc::ENOTDIR) => " (it is not a directory now)",
                _ => "",
            };
            GrantOpenError {
                path: path.display().to_string(),
                cause,
                hint,
            }
        };
        let c = CString::new(path.as_os_str().as_bytes())
            .map_err(|_| fail(std::io::ErrorKind::InvalidInput.into()))?;
        // SAFETY: open_how is plain integers; all zero is its default.
        let mut how: libc::open_how = unsafe { std::mem::zeroed() };
        how.flags = (libc::O_RDONLY | libc::O_DIRECTORY | libc::O_CLOEXEC) as u64;
        how.resolve = libc::RESOLVE_NO_SYMLINKS | libc::RESOLVE_NO_MAGICLINKS;
        // SAFETY: a NUL-terminated path, an open_how of the size passed.
        let fd = unsafe {
            libc::syscall(
                libc::SYS_openat2,
                libc::AT_FDCWD,
                c.as_ptr(),
                &how as *const libc::open_how,
                std::mem::size_of::<libc::open_how>(),
            )
        };
        if fd < 0 {
            return Err(fail(std::io::Error::last_os_error()));
        }
        Ok(Self {
            host: path.display().to_string(),
            // SAFETY: openat2 returned a new descriptor we now own.
            fd: unsafe { OwnedFd::from_raw_fd(fd as i32) },
        })
    }

    /// A path that names exactly this directory, whatever has been renamed
    /// or swapped since it was opened.
    pub fn path(&self) -> PathBuf {
        proc_path(self.fd.as_fd())
    }

    pub fn fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }
}

/// `/proc/self/fd/N`: opening it reopens the object `fd` refers to.
pub(crate) fn proc_path(fd: BorrowedFd<'_>) -> PathBuf {
    PathBuf::from(format!("/proc/self/fd/{}", fd.as_raw_fd()))
}

/// `openat(dir, name)` without following a symbolic link, never blocking
/// on a FIFO, never taking a terminal.
pub(crate) fn open_at(dir: BorrowedFd<'_>, name: &OsStr, flags: i32) -> std::io::Result<OwnedFd> {
    let c = CString::new(name.as_bytes()).map_err(|_| std::io::ErrorKind::InvalidInput)?;
    let flags = flags
        | libc::O_RDONLY
        | libc::O_NOFOLLOW
        | libc::O_CLOEXEC
        | libc::O_NOCTTY
        | libc::O_NONBLOCK;
    // SAFETY: a valid directory descriptor and a NUL-terminated name.
    let fd = unsafe { libc::openat(dir.as_raw_fd(), c.as_ptr(), flags) };
    if fd < 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: openat returned a new descriptor we now own.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_grant_swapped_for_a_symbolic_link_is_not_opened() {
        let root = tempfile::tempdir().unwrap();
        let root = root.path().canonicalize().unwrap();
        let sub = root.join("sub");
        std::fs::create_dir(&sub).unwrap();
        let held = GrantedDir::open(&sub).unwrap();
        std::fs::write(sub.join("f"), "x").unwrap();

        // Swapped after the open: the handle still names the checked
        // directory (now at its new name), and a fresh open refuses.
        std::fs::rename(&sub, root.join("moved")).unwrap();
        std::os::unix::fs::symlink("/etc", &sub).unwrap();
        assert!(held.path().join("f").is_file());
        assert!(!held.path().join("passwd").exists());
        let e = GrantedDir::open(&sub).unwrap_err();
        assert_eq!(e.cause.raw_os_error(), Some(libc::ELOOP), "{e}");
        assert!(e.to_string().contains(&*sub.to_string_lossy()), "{e}");
    }
}
