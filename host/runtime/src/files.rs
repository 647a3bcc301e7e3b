//! Cache files written whole: a reader finds the old file or the new one,
//! never a part (a process killed mid-write leaves only a temporary file).
//!
//! What it must not touch: what the files hold, or the store (whose
//! records are made durable by the store itself).

use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};

/// Write `bytes` to a temporary file beside `path`, then rename it there.
/// The temporary file's name is this process's and this write's own, so
/// that two threads writing one file (two compilations of one shared
/// module) never write into the same temporary file.
pub(crate) fn write_whole(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    static WRITES: AtomicU64 = AtomicU64::new(0);
    let n = WRITES.fetch_add(1, Ordering::Relaxed);
    let tmp = path.with_extension(format!("tmp{}-{n}", std::process::id()));
    std::fs::write(&tmp, bytes)?;
    std::fs::rename(&tmp, path)
}
