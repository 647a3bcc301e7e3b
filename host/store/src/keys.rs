//! Where a store's datastore keys are kept: [`KeyBook`], and its file form
//! for the embedded store. What a key's value means (clear text, or a
//! secret's ciphertext), names, expiry and encryption are the datastore's
//! (`wasmflow-datastore`): this keeps entries and never sees a secret in
//! clear.
//!
//! Not on [`crate::Backend`], for the reason tokens are not: keys are set
//! while a server holds the embedded store. A file beside the store (one
//! machine) or a table (a shared database) can be written by anyone who
//! may, while the server runs.

use crate::error::StoreError;
use crate::store::Location;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::SystemTime;

/// One key as kept.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeyEntry {
    pub name: String,
    /// The value; for a secret, its ciphertext as the datastore wrote it.
    pub value: String,
    #[serde(default)]
    pub secret: bool,
    /// When it stops existing (a TTL), if ever.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        with = "crate::rfc3339_time::option"
    )]
    pub expires_at: Option<SystemTime>,
    #[serde(with = "crate::rfc3339_time")]
    pub updated_at: SystemTime,
}

/// The keys of one store.
pub trait KeyBook: Send + Sync {
    fn get(&self, name: &str) -> Result<Option<KeyEntry>, StoreError>;

    /// Every key whose name starts with `prefix`, by name.
    fn list(&self, prefix: &str) -> Result<Vec<KeyEntry>, StoreError>;

    /// Keep `entry`, replacing a key of its name.
    fn set(&self, entry: KeyEntry) -> Result<(), StoreError>;

    /// Forget the key `name`; `false` if there is none.
    fn delete(&self, name: &str) -> Result<bool, StoreError>;

    /// Replace these keys' values all at once or not at all (a key
    /// rotation re-encrypts every secret).
    fn set_all(&self, entries: Vec<KeyEntry>) -> Result<(), StoreError>;
}

impl std::fmt::Debug for dyn KeyBook {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("KeyBook")
    }
}

/// The key book of the store at `location`.
pub fn key_book(location: &Location) -> Result<Arc<dyn KeyBook>, StoreError> {
    match location {
        Location::Dir(dir) => Ok(Arc::new(KeyFile::beside(dir))),
        Location::Postgres(url) => Ok(Arc::new(Connecting {
            url: url.clone(),
            store: std::sync::OnceLock::new(),
        })),
    }
}

/// PostgreSQL's keys, connected to on first use: every process with a
/// runtime holds a key book, and most never read a key.
struct Connecting {
    url: String,
    store: std::sync::OnceLock<crate::postgres::PgStore>,
}

impl Connecting {
    fn book(&self) -> Result<&crate::postgres::PgStore, StoreError> {
        if let Some(s) = self.store.get() {
            return Ok(s);
        }
        let opened = crate::postgres::PgStore::open(&self.url)?;
        // Two first uses at once: one connection stays, the other goes.
        Ok(self.store.get_or_init(|| opened))
    }
}

impl KeyBook for Connecting {
    fn get(&self, name: &str) -> Result<Option<KeyEntry>, StoreError> {
        self.book()?.get(name)
    }
    fn list(&self, prefix: &str) -> Result<Vec<KeyEntry>, StoreError> {
        self.book()?.list(prefix)
    }
    fn set(&self, entry: KeyEntry) -> Result<(), StoreError> {
        self.book()?.set(entry)
    }
    fn delete(&self, name: &str) -> Result<bool, StoreError> {
        self.book()?.delete(name)
    }
    fn set_all(&self, entries: Vec<KeyEntry>) -> Result<(), StoreError> {
        self.book()?.set_all(entries)
    }
}

/// The embedded store's keys: `keys.json` beside the store's directory, a
/// [`crate::private_file`]; writers take `keys.lock` (flock) around their
/// read-modify-write, so two `key set`s never lose one.
struct KeyFile {
    path: PathBuf,
    lock: PathBuf,
}

#[derive(Default, Serialize, Deserialize)]
struct Keys {
    keys: BTreeMap<String, KeyEntry>,
}

impl KeyFile {
    fn beside(store_dir: &Path) -> Self {
        let dir = store_dir.parent().unwrap_or(store_dir);
        Self {
            path: dir.join("keys.json"),
            lock: dir.join("keys.lock"),
        }
    }

    fn error(&self, message: impl std::fmt::Display) -> StoreError {
        StoreError::Other(format!("{}: {message}", self.path.display()))
    }

    fn read(&self) -> Result<Keys, StoreError> {
        match std::fs::read(&self.path) {
            Ok(bytes) => serde_json::from_slice(&bytes)
                .map_err(|e| self.error(format_args!("line {}: {e}", e.line()))),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Keys::default()),
            Err(e) => Err(self.error(e)),
        }
    }

    /// Change the file under its lock.
    fn change<T>(&self, f: impl FnOnce(&mut Keys) -> T) -> Result<T, StoreError> {
        use std::os::unix::fs::OpenOptionsExt;
        use std::os::unix::io::AsRawFd;
        let err = |e: std::io::Error| self.error(e);
        if let Some(dir) = self.path.parent() {
            std::fs::create_dir_all(dir).map_err(err)?;
        }
        let lock = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(false)
            .mode(0o600)
            .open(&self.lock)
            .map_err(err)?;
        // SAFETY: flock on a descriptor this function owns; released when
        // `lock` is closed.
        if unsafe { libc::flock(lock.as_raw_fd(), libc::LOCK_EX) } != 0 {
            return Err(err(std::io::Error::last_os_error()));
        }
        let mut keys = self.read()?;
        let out = f(&mut keys);
        self.write(&keys)?;
        Ok(out)
    }

    fn write(&self, keys: &Keys) -> Result<(), StoreError> {
        let text = serde_json::to_vec_pretty(keys).expect("key files serialize");
        crate::private_file::replace(&self.path, &text).map_err(|e| self.error(e))
    }
}

impl KeyBook for KeyFile {
    fn get(&self, name: &str) -> Result<Option<KeyEntry>, StoreError> {
        Ok(self.read()?.keys.remove(name))
    }

    fn list(&self, prefix: &str) -> Result<Vec<KeyEntry>, StoreError> {
        Ok(self
            .read()?
            .keys
            .into_values()
            .filter(|k| k.name.starts_with(prefix))
            .collect())
    }

    fn set(&self, entry: KeyEntry) -> Result<(), StoreError> {
        self.change(|keys| {
            keys.keys.insert(entry.name.clone(), entry);
        })
    }

    fn delete(&self, name: &str) -> Result<bool, StoreError> {
        self.change(|keys| keys.keys.remove(name).is_some())
    }

    fn set_all(&self, entries: Vec<KeyEntry>) -> Result<(), StoreError> {
        // One file, one rename: all or nothing.
        self.change(|keys| {
            for e in entries {
                keys.keys.insert(e.name.clone(), e);
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(name: &str, value: &str) -> KeyEntry {
        KeyEntry {
            name: name.into(),
            value: value.into(),
            secret: false,
            expires_at: None,
            updated_at: crate::now(),
        }
    }

    #[test]
    fn the_file_keeps_keys_by_name_and_concurrent_sets_lose_none() {
        let dir = tempfile::tempdir().unwrap();
        let book = Arc::new(KeyFile::beside(&dir.path().join("store")));
        assert_eq!(book.get("system.a").unwrap(), None);
        let threads: Vec<_> = (0..8)
            .map(|i| {
                let book = book.clone();
                std::thread::spawn(move || {
                    book.set(entry(&format!("system.k{i}"), &i.to_string()))
                        .unwrap()
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        assert_eq!(book.list("system.").unwrap().len(), 8);
        book.set(entry("user.ann.x", "1")).unwrap();
        assert_eq!(book.list("user.").unwrap().len(), 1);
        assert_eq!(book.get("system.k3").unwrap().unwrap().value, "3");
        assert!(book.delete("system.k3").unwrap());
        assert!(!book.delete("system.k3").unwrap());
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(dir.path().join("keys.json"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
    }
}
