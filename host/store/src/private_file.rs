//! Small files only this user may read, kept beside a store (API tokens,
//! datastore keys, the secret key), each replaced whole: written to a
//! temporary file of mode 0600, fsynced, renamed over the old one, and
//! the directory fsynced, so a reader sees the old file or the new one,
//! never half of one, and a crash loses neither.

use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

/// Write `bytes` to `tmp` (created or truncated, mode 0600) and fsync it.
pub fn write_new(tmp: &Path, bytes: &[u8]) -> std::io::Result<()> {
    if let Some(dir) = tmp.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(tmp)?;
    f.write_all(bytes)?;
    f.sync_all()
}

/// Replace `path` with `bytes` (see the module doc).
pub fn replace(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(".tmp");
    let tmp = std::path::PathBuf::from(tmp);
    write_new(&tmp, bytes)?;
    std::fs::rename(&tmp, path)?;
    sync_dir(path)
}

/// fsync the directory holding `path`, so a rename into it is durable.
pub fn sync_dir(path: &Path) -> std::io::Result<()> {
    match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => std::fs::File::open(dir)?.sync_all(),
        _ => Ok(()),
    }
}
