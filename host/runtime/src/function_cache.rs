//! Compiled functions shared between components: Cranelift's incremental
//! compilation cache, kept on disk beside the compiled components.
//!
//! Two Python actions of one componentize-py version carry the same
//! CPython; the second one's compilation should not compile it again.
//! Cranelift keys each function by its body (not by where it sits in its
//! module), so a compilation asks this cache for every function and
//! compiles only the ones it has never seen. Only the compiler program
//! (see `compile`) opens it: a run that finds its component compiled never
//! reads it.
//!
//! On disk: one pack per compilation that compiled something new,
//! `functions/<name>.pack`, written whole and renamed into place, ending
//! with the sha256 of what comes before it. A pack that does not check is
//! deleted, never trusted: its contents become machine code. The packs are
//! bounded in total ([`MAX_BYTES`]); the oldest go first.
//!
//! What it must not touch: the compiled components (`cache`), the store.

use std::borrow::Cow;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use wasmtime::CacheStore;

const MAGIC: &[u8] = b"wasmflow-functions 1\n";

/// Packs past this total are deleted, oldest first (one CPython's
/// functions take ~60 MiB).
pub(crate) const MAX_BYTES: u64 = 1 << 30;

type Entries = HashMap<Vec<u8>, Vec<u8>>;

#[derive(Debug)]
pub(crate) struct FunctionCache {
    dir: PathBuf,
    /// Every pack's entries, read when the cache was opened.
    known: Entries,
    /// What this compilation compiled that no pack had.
    added: Mutex<Entries>,
}

impl FunctionCache {
    /// Read every pack in `dir` (created if missing). Unreadable packs are
    /// deleted; a cache that cannot be read at all is an empty one (a
    /// slower compilation, not a failed one).
    pub fn open(dir: &Path) -> Self {
        let _ = std::fs::create_dir_all(dir);
        let mut known = Entries::new();
        for (path, _, _) in packs(dir) {
            let parsed = std::fs::read(&path).ok().and_then(|b| parse(&b));
            match parsed {
                Some(entries) => known.extend(entries),
                None => {
                    let _ = std::fs::remove_file(&path);
                }
            }
        }
        Self {
            dir: dir.to_owned(),
            known,
            added: Mutex::new(Entries::new()),
        }
    }

    /// How many functions the packs held when opened.
    #[cfg(test)]
    fn len(&self) -> usize {
        self.known.len()
    }

    /// Write what this compilation added as the pack `name`, then bound
    /// the packs' total size. Returns how many functions it wrote.
    pub fn save(&self, name: &str) -> std::io::Result<usize> {
        let added = std::mem::take(&mut *self.added.lock().unwrap_or_else(|e| e.into_inner()));
        if added.is_empty() {
            return Ok(0);
        }
        let mut out = MAGIC.to_vec();
        for (k, v) in &added {
            out.extend_from_slice(&(k.len() as u32).to_le_bytes());
            out.extend_from_slice(&(v.len() as u32).to_le_bytes());
            out.extend_from_slice(k);
            out.extend_from_slice(v);
        }
        let sum = wasmflow_store::Digest::of(&out);
        out.extend_from_slice(&sum.0);
        let path = self.dir.join(format!("{name}.pack"));
        crate::files::write_whole(&path, &out)?;
        bound(&self.dir, MAX_BYTES);
        Ok(added.len())
    }
}

impl CacheStore for FunctionCache {
    fn get(&self, key: &[u8]) -> Option<Cow<'_, [u8]>> {
        if let Some(v) = self.known.get(key) {
            return Some(Cow::Borrowed(v));
        }
        let added = self.added.lock().unwrap_or_else(|e| e.into_inner());
        added.get(key).map(|v| Cow::Owned(v.clone()))
    }

    fn insert(&self, key: &[u8], value: Vec<u8>) -> bool {
        if !self.known.contains_key(key) {
            let mut added = self.added.lock().unwrap_or_else(|e| e.into_inner());
            added.insert(key.to_vec(), value);
        }
        true
    }
}

/// The packs in `dir`: path, size, modification time.
fn packs(dir: &Path) -> Vec<(PathBuf, u64, std::time::SystemTime)> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    entries
        .flatten()
        .filter(|e| e.path().extension().is_some_and(|x| x == "pack"))
        .filter_map(|e| {
            let meta = e.metadata().ok()?;
            Some((e.path(), meta.len(), meta.modified().ok()?))
        })
        .collect()
}

/// A pack's entries, or `None` when it is not one whole pack.
fn parse(bytes: &[u8]) -> Option<Entries> {
    let body_len = bytes.len().checked_sub(32)?;
    let (body, sum) = bytes.split_at(body_len);
    if wasmflow_store::Digest::of(body).0 != sum {
        return None;
    }
    let mut rest = body.strip_prefix(MAGIC)?;
    let mut out = Entries::new();
    while !rest.is_empty() {
        let word = |b: &[u8]| Some(u32::from_le_bytes(b.get(..4)?.try_into().ok()?) as usize);
        let (k, v) = (word(rest)?, word(rest.get(4..)?)?);
        let entry = rest.get(8..8usize.checked_add(k)?.checked_add(v)?)?;
        out.insert(entry[..k].to_vec(), entry[k..].to_vec());
        rest = &rest[8 + k + v..];
    }
    Some(out)
}

/// Delete the oldest packs until the rest fit in `max` bytes.
fn bound(dir: &Path, max: u64) {
    let mut packs = packs(dir);
    packs.sort_by_key(|(_, _, modified)| std::cmp::Reverse(*modified));
    let mut total = 0u64;
    for (path, size, _) in packs {
        total += size;
        if total > max {
            let _ = std::fs::remove_file(path);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_saved_pack_is_read_back_and_a_damaged_one_is_dropped() {
        let dir = tempfile::tempdir().unwrap();
        let cache = FunctionCache::open(dir.path());
        assert_eq!(cache.len(), 0);
        assert!(cache.get(b"f").is_none());
        cache.insert(b"f", b"code of f".to_vec());
        cache.insert(b"g", b"code of g".to_vec());
        assert_eq!(cache.get(b"f").as_deref(), Some(&b"code of f"[..]));
        assert_eq!(cache.save("one").unwrap(), 2);
        // Nothing new: no second pack.
        assert_eq!(cache.save("two").unwrap(), 0);

        let again = FunctionCache::open(dir.path());
        assert_eq!(again.len(), 2);
        assert_eq!(again.get(b"g").as_deref(), Some(&b"code of g"[..]));
        // Known functions are not written again.
        again.insert(b"g", b"code of g".to_vec());
        assert_eq!(again.save("three").unwrap(), 0);

        // One flipped byte in the code: the pack is deleted, not used.
        let pack = dir.path().join("one.pack");
        let mut bytes = std::fs::read(&pack).unwrap();
        let at = bytes.len() - 40;
        bytes[at] ^= 1;
        std::fs::write(&pack, bytes).unwrap();
        let damaged = FunctionCache::open(dir.path());
        assert_eq!(damaged.len(), 0);
        assert!(!pack.exists());
    }

    #[test]
    fn the_oldest_packs_go_past_the_bound() {
        let dir = tempfile::tempdir().unwrap();
        for (i, name) in ["old", "mid", "new"].iter().enumerate() {
            let cache = FunctionCache::open(dir.path());
            cache.insert(name.as_bytes(), vec![i as u8; 1000]);
            cache.save(name).unwrap();
            // Distinct modification times, oldest first.
            let t =
                std::time::SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(1 + i as u64);
            let f = std::fs::File::options()
                .write(true)
                .open(dir.path().join(format!("{name}.pack")))
                .unwrap();
            f.set_modified(t).unwrap();
        }
        bound(dir.path(), 2500);
        let left: Vec<_> = packs(dir.path())
            .into_iter()
            .map(|(p, _, _)| p.file_stem().unwrap().to_string_lossy().into_owned())
            .collect();
        assert_eq!(left.len(), 2, "{left:?}");
        assert!(!left.contains(&"old".to_string()), "{left:?}");
    }
}
