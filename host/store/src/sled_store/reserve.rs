//! Space kept back so that a store on a full disk can still be read.
//!
//! Opening sled writes (its recovery zeroes a torn tail and writes a
//! snapshot), so on a full file system even `execution list` would fail.
//! Like CockroachDB's emergency ballast, the store keeps a preallocated
//! file beside its data while there is room; when an open fails for want
//! of space, the file is deleted and the open tried again. Writes after it
//! may use that room; when it is gone too they fail with
//! [`StoreError::NoSpace`](crate::StoreError::NoSpace), and what was
//! written before stays. The file is made again at a later open once the
//! file system has room to spare.

use std::path::{Path, PathBuf};

/// Its name inside the store directory (sled ignores files it does not know).
const NAME: &str = "wasmflow.reserve";

/// At most this much, and a sixteenth of the file system at most.
const MAX: u64 = 16 << 20;

pub(crate) struct Reserve {
    path: PathBuf,
}

impl Reserve {
    pub(crate) fn new(dir: &Path) -> Self {
        Self {
            path: dir.join(NAME),
        }
    }

    /// Delete the reserve; whether there was one to delete.
    pub(crate) fn release(&self) -> bool {
        std::fs::remove_file(&self.path).is_ok()
    }

    /// Make the reserve if it is missing and the file system has at least
    /// four times its size free. Best effort: a store without a reserve
    /// works, it only cannot be read when its disk is full.
    pub(crate) fn replenish(&self) {
        if self.path.exists() {
            return;
        }
        let Some((free, total)) = space(self.path.parent().unwrap_or(Path::new("."))) else {
            return;
        };
        let size = MAX.min(total / 16);
        if size == 0 || free < 4 * size {
            return;
        }
        if allocate(&self.path, size).is_err() {
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

/// Free and total bytes of the file system holding `dir`.
fn space(dir: &Path) -> Option<(u64, u64)> {
    use std::os::unix::ffi::OsStrExt;
    let c = std::ffi::CString::new(dir.as_os_str().as_bytes()).ok()?;
    let mut st = std::mem::MaybeUninit::<libc::statvfs>::uninit();
    // SAFETY: `c` is a valid C string and `st` is written by statvfs.
    if unsafe { libc::statvfs(c.as_ptr(), st.as_mut_ptr()) } != 0 {
        return None;
    }
    // SAFETY: statvfs returned 0, so it filled `st`.
    let st = unsafe { st.assume_init() };
    // 64-bit fields on the 64-bit Linux targets wasmflow builds for.
    let frsize = st.f_frsize;
    Some((st.f_bavail * frsize, st.f_blocks * frsize))
}

/// A file of `size` bytes whose blocks are really allocated (a sparse
/// file would keep nothing back).
fn allocate(path: &Path, size: u64) -> std::io::Result<()> {
    use std::os::unix::io::AsRawFd;
    let tmp = path.with_extension("reserve.tmp");
    let f = std::fs::File::create(&tmp)?;
    // SAFETY: a valid open descriptor; offset and length are in range.
    let rc = unsafe { libc::posix_fallocate(f.as_raw_fd(), 0, size as libc::off_t) };
    if rc != 0 {
        drop(f);
        let _ = std::fs::remove_file(&tmp);
        return Err(std::io::Error::from_raw_os_error(rc));
    }
    drop(f);
    std::fs::rename(&tmp, path)
}
