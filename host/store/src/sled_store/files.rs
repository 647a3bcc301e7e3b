//! Large values, in content-addressed files beside the sled database.
//!
//! sled 0.34 writes any log message over a quarter of a segment to a blob
//! file of its own and deletes the file it replaces only when the segment
//! holding the replacement fills up. A one-shot CLI process never gets
//! there, so every large record, event list or component it rewrote left a
//! file behind for ever (60 runs of a Python action: 24 MB). Values over
//! `SledStore::inline_max` are therefore kept here instead,
//! named by their sha256, and sled holds a 33-byte reference (see
//! `store::Reference`): sled's own values stay small enough never to
//! become blob files.
//!
//! A file is written to a temporary name, fsynced, renamed into place, and
//! its directory fsynced before the reference to it is written: a
//! reference that reached the disk always names a complete file. Reads
//! check the sha256. Files no value refers to (a record rewritten, a purge)
//! are deleted by the purge's sweep.

use crate::error::StoreError;
use crate::store::Digest;
use std::io::Write;
use std::path::{Path, PathBuf};

pub(crate) struct Files {
    dir: PathBuf,
    /// The store, named in errors.
    store: PathBuf,
}

impl Files {
    pub(crate) fn new(store: &Path) -> Self {
        Self {
            dir: store.join("files"),
            store: store.to_owned(),
        }
    }

    pub(crate) fn path(&self, digest: &Digest) -> PathBuf {
        let hex = digest.hex();
        self.dir.join(&hex[..2]).join(hex)
    }

    fn io(&self, what: &str, path: &Path, e: std::io::Error) -> StoreError {
        if super::is_no_space(&e) {
            return StoreError::NoSpace {
                path: self.store.clone(),
            };
        }
        StoreError::Other(format!(
            "store {}: cannot {what} {}: {e}",
            self.store.display(),
            path.display()
        ))
    }

    /// The directory `path` goes in, made (durably) if it is not there.
    fn shard_of<'p>(&self, path: &'p Path) -> Result<&'p Path, StoreError> {
        let parent = path.parent().expect("files live in a directory");
        if !parent.is_dir() {
            std::fs::create_dir_all(parent).map_err(|e| self.io("create", parent, e))?;
            sync_dir(&self.dir).map_err(|e| self.io("sync", &self.dir, e))?;
            sync_dir(self.dir.parent().unwrap_or(&self.dir))
                .map_err(|e| self.io("sync", &self.dir, e))?;
        }
        Ok(parent)
    }

    /// Keep `bytes` (durably, see the module doc); storing the same bytes
    /// again is free.
    pub(crate) fn put(&self, bytes: &[u8]) -> Result<Digest, StoreError> {
        let digest = Digest::of(bytes);
        let path = self.path(&digest);
        if std::fs::metadata(&path).is_ok_and(|m| m.len() == bytes.len() as u64) {
            return Ok(digest);
        }
        let parent = self.shard_of(&path)?;
        let tmp = parent.join(format!(
            ".{}.{}.{}",
            digest.hex(),
            std::process::id(),
            TMP.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
        ));
        let written = (|| {
            let mut f = std::fs::File::create(&tmp)?;
            f.write_all(bytes)?;
            f.sync_all()?;
            std::fs::rename(&tmp, &path)?;
            sync_dir(parent)
        })();
        if let Err(e) = written {
            let _ = std::fs::remove_file(&tmp);
            return Err(self.io("write", &path, e));
        }
        Ok(digest)
    }

    /// The bytes named `digest`, checked against it; `None` if there is
    /// no such file.
    pub(crate) fn get(&self, digest: &Digest) -> Result<Option<Vec<u8>>, StoreError> {
        let path = self.path(digest);
        let bytes = match std::fs::read(&path) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(self.io("read", &path, e)),
        };
        if Digest::of(&bytes) != *digest {
            return Err(StoreError::Damaged {
                path: self.store.clone(),
                detail: format!(
                    "{} does not match its sha256 (the file was changed or cut short)",
                    path.display()
                ),
            });
        }
        Ok(Some(bytes))
    }

    /// Give this store the file `digest` of `other` (an archive part
    /// taking a live database's value): a hard link, the same content
    /// without a copy; a copy, checked, where links are refused. Returns
    /// the directory the link went into, which the caller syncs (once for
    /// many links) before anything refers to it.
    pub(crate) fn link_from(
        &self,
        other: &Files,
        digest: &Digest,
    ) -> Result<Option<PathBuf>, StoreError> {
        let path = self.path(digest);
        if path.is_file() {
            return Ok(None);
        }
        let parent = self.shard_of(&path)?;
        match std::fs::hard_link(other.path(digest), &path) {
            Ok(()) => Ok(Some(parent.to_owned())),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(None),
            Err(_) => {
                let bytes = other.get(digest)?.ok_or_else(|| StoreError::Damaged {
                    path: other.store.clone(),
                    detail: format!("file {} is missing", other.path(digest).display()),
                })?;
                self.put(&bytes)?;
                Ok(None)
            }
        }
    }

    pub(crate) fn contains(&self, digest: &Digest) -> bool {
        self.path(digest).is_file()
    }

    /// Every file's digest and size (for the sweep and the check).
    pub(crate) fn list(&self) -> Result<Vec<(Digest, u64, std::time::SystemTime)>, StoreError> {
        let mut out = Vec::new();
        let Ok(shards) = std::fs::read_dir(&self.dir) else {
            return Ok(out);
        };
        for shard in shards.flatten() {
            let Ok(entries) = std::fs::read_dir(shard.path()) else {
                continue;
            };
            for e in entries.flatten() {
                let name = e.file_name();
                let Some(digest) = name
                    .to_str()
                    .and_then(|n| Digest::parse(&format!("sha256:{n}")))
                else {
                    continue; // a temporary file of a write in progress
                };
                let meta = e
                    .metadata()
                    .map_err(|err| self.io("stat", &e.path(), err))?;
                out.push((
                    digest,
                    meta.len(),
                    meta.modified().unwrap_or(std::time::SystemTime::UNIX_EPOCH),
                ));
            }
        }
        Ok(out)
    }

    pub(crate) fn remove(&self, digest: &Digest) -> Result<(), StoreError> {
        let path = self.path(digest);
        match std::fs::remove_file(&path) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(self.io("remove", &path, e)),
        }
    }
}

static TMP: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

fn sync_dir(dir: &Path) -> std::io::Result<()> {
    std::fs::File::open(dir)?.sync_all()
}
