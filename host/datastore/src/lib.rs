//! The datastore: named keys that actions and workflows read (StackStorm's
//! `st2 key`), some of them secrets kept encrypted at rest.
//!
//! This crate owns what a key is: its name and scope (`system.region`,
//! `user.ann.token`), its expiry (a TTL), and, for a secret, its encryption
//! with XChaCha20-Poly1305 under the secret key in a file of its own
//! (`$WASMFLOW_HOME/secret.key`, mode 0600; the key never enters the store),
//! the key's name bound in as associated data so a ciphertext moved to
//! another name does not decrypt; and rotating that key. Storage is the
//! store's [`KeyBook`] (a file beside the embedded store, a table in
//! PostgreSQL). It prints nothing and reads no environment: front ends
//! say where the secret key is.

pub mod reference;
mod secret_key;

use serde::Serialize;
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime};
use wasmflow_store::{KeyBook, KeyEntry, StoreError};

pub use secret_key::SecretKey;

/// The associated data of sealed values: no key has this name.
const SEALED: &str = "((sealed))";

/// The names of wasmflow's own settings start so (no key's can: a key's
/// name starts with a scope).
const OWN: &str = "wasmflow.";

/// What a secret's value is shown as.
pub const MASK: &str = "***";

#[derive(Debug, thiserror::Error)]
pub enum DatastoreError {
    #[error("`{name}` is not a key name: {why}")]
    BadName { name: String, why: String },
    #[error("{0}")]
    BadLoad(String),
    #[error("the secret key {path}: {message}")]
    SecretKey { path: PathBuf, message: String },
    #[error(
        "secret `{name}` does not decrypt under {path}: it was encrypted under another \
         secret key (another machine's, or one rotated away), or its stored value was changed"
    )]
    Undecryptable { name: String, path: PathBuf },
    #[error(
        "a value sealed under another secret key (another machine's, or one rotated away) \
         does not unseal under {path}"
    )]
    Unsealable { path: PathBuf },
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl DatastoreError {
    /// The caller's mistake (exit 2), not the machine's.
    pub fn is_usage(&self) -> bool {
        !matches!(self, DatastoreError::Store(e) if !e.is_usage())
    }
}

/// A key as shown: a secret's value masked unless revealed.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Key {
    pub name: String,
    pub value: String,
    pub secret: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<String>,
    pub updated_at: String,
}

/// The keys of one store, with the secret key that opens its secrets.
#[derive(Clone, Debug)]
pub struct Datastore {
    book: Arc<dyn KeyBook>,
    key: SecretKey,
}

impl Datastore {
    /// The keys in `book`; secrets under the key in `secret_key_file`
    /// (made on the first secret set).
    pub fn new(book: Arc<dyn KeyBook>, secret_key_file: PathBuf) -> Self {
        Self {
            book,
            key: SecretKey::at(secret_key_file),
        }
    }

    pub fn secret_key_path(&self) -> &Path {
        self.key.path()
    }

    /// Set `name` to `value` (a secret: encrypted), for `ttl` if given.
    pub fn set(
        &self,
        name: &str,
        value: &str,
        secret: bool,
        ttl: Option<Duration>,
    ) -> Result<(), DatastoreError> {
        let entry = self.entry(name, value, secret, ttl)?;
        Ok(self.book.set(entry)?)
    }

    fn entry(
        &self,
        name: &str,
        value: &str,
        secret: bool,
        ttl: Option<Duration>,
    ) -> Result<KeyEntry, DatastoreError> {
        check_name(name)?;
        let now = wasmflow_store::now();
        let value = match secret {
            true => self.key.encrypt(name, value)?,
            false => value.to_owned(),
        };
        Ok(KeyEntry {
            name: name.to_owned(),
            value,
            secret,
            expires_at: ttl.map(|t| now + t),
            updated_at: now,
        })
    }

    /// The key `name` (absent once expired), its value masked if it is a
    /// secret unless `reveal`.
    pub fn get(&self, name: &str, reveal: bool) -> Result<Option<Key>, DatastoreError> {
        check_name(name)?;
        let Some(entry) = self.live(name)? else {
            return Ok(None);
        };
        let value = match (entry.secret, reveal) {
            (true, true) => self.key.decrypt(name, &entry.value)?,
            (true, false) => MASK.to_owned(),
            (false, _) => entry.value.clone(),
        };
        Ok(Some(shown(&entry, value)))
    }

    /// The value of `name` in clear, for use (a workflow's `kv()` and
    /// `secret()`); `None` when it does not exist or expired.
    pub fn value(&self, name: &str) -> Result<Option<(String, bool)>, DatastoreError> {
        Ok(self.get(name, true)?.map(|k| (k.value, k.secret)))
    }

    /// `clear` sealed under the secret key, as a reference
    /// (`((sealed:...))`) that [`Datastore::unseal`] opens: for a value given
    /// in clear that must not be stored so (`--allow-env NAME=VALUE`).
    pub fn seal(&self, clear: &str) -> Result<String, DatastoreError> {
        Ok(reference::to_sealed(&self.key.encrypt(SEALED, clear)?))
    }

    /// The value a `((sealed:CIPHERTEXT))` reference stands for.
    pub fn unseal(&self, ciphertext: &str) -> Result<String, DatastoreError> {
        self.key.decrypt(SEALED, ciphertext).map_err(|e| match e {
            DatastoreError::Undecryptable { path, .. } => DatastoreError::Unsealable { path },
            other => other,
        })
    }

    fn live(&self, name: &str) -> Result<Option<KeyEntry>, DatastoreError> {
        let Some(entry) = self.book.get(name)? else {
            return Ok(None);
        };
        if expired(&entry) {
            // Gone for every reader; removing it is housekeeping.
            let _ = self.book.delete(name);
            return Ok(None);
        }
        Ok(Some(entry))
    }

    /// Every live key whose name starts with `prefix`, by name, secrets
    /// masked.
    pub fn list(&self, prefix: &str) -> Result<Vec<Key>, DatastoreError> {
        Ok(self
            .book
            .list(prefix)?
            .iter()
            .filter(|e| !expired(e) && !e.name.starts_with(OWN))
            .map(|e| {
                let value = if e.secret {
                    MASK.to_owned()
                } else {
                    e.value.clone()
                };
                shown(e, value)
            })
            .collect())
    }

    /// One of wasmflow's own settings (`wasmflow.NAME`, kept beside the
    /// keys so that every process on the store sees them, never listed
    /// with them): a rule's enabled state, say.
    pub fn setting(&self, name: &str) -> Result<Option<String>, DatastoreError> {
        Ok(self.book.get(&format!("{OWN}{name}"))?.map(|e| e.value))
    }

    /// Keep one of wasmflow's own settings (see [`Datastore::setting`]).
    pub fn set_setting(&self, name: &str, value: &str) -> Result<(), DatastoreError> {
        Ok(self.book.set(KeyEntry {
            name: format!("{OWN}{name}"),
            value: value.to_owned(),
            secret: false,
            expires_at: None,
            updated_at: wasmflow_store::now(),
        })?)
    }

    /// Forget `name`; `false` if there was no such (live) key.
    pub fn delete(&self, name: &str) -> Result<bool, DatastoreError> {
        check_name(name)?;
        let live = self.live(name)?.is_some();
        Ok(self.book.delete(name)? && live)
    }

    /// Set every key of a map at once (`key load`): `name: value`, or
    /// `name: {value: ..., secret: true, ttl: 1h}`. Nothing is set unless
    /// every entry is good; the count set.
    pub fn load(&self, map: &Value) -> Result<usize, DatastoreError> {
        let Value::Object(map) = map else {
            return Err(DatastoreError::BadLoad(
                "expected a map of key names to values".into(),
            ));
        };
        let bad = |name: &str, why: String| DatastoreError::BadLoad(format!("{name}: {why}"));
        let mut entries = Vec::new();
        for (name, v) in map {
            let (value, secret, ttl) = match v {
                Value::Object(o) => {
                    for k in o.keys() {
                        if !matches!(k.as_str(), "value" | "secret" | "ttl") {
                            return Err(bad(name, format!("unknown field `{k}` (value, secret, ttl)")));
                        }
                    }
                    let value = o
                        .get("value")
                        .ok_or_else(|| bad(name, "no `value`".into()))?;
                    let secret = match o.get("secret") {
                        None => false,
                        Some(Value::Bool(b)) => *b,
                        Some(other) => return Err(bad(name, format!("secret: expected true or false, got {other}"))),
                    };
                    let ttl = match o.get("ttl") {
                        None | Some(Value::Null) => None,
                        Some(Value::String(t)) => Some(
                            humantime::parse_duration(t)
                                .map_err(|e| bad(name, format!("ttl: {e}")))?,
                        ),
                        Some(other) => return Err(bad(name, format!("ttl: expected a duration like 1h, got {other}"))),
                    };
                    (scalar(value).ok_or_else(|| bad(name, format!("value: expected a string, number or boolean, got {value}")))?, secret, ttl)
                }
                other => (
                    scalar(other).ok_or_else(|| bad(name, format!("expected a string, number or boolean, or {{value, secret, ttl}}, got {other}")))?,
                    false,
                    None,
                ),
            };
            entries.push(self.entry(name, &value, secret, ttl)?);
        }
        let n = entries.len();
        self.book.set_all(entries)?;
        Ok(n)
    }

    /// [`Datastore::load`] of a YAML (or JSON) document.
    pub fn load_text(&self, text: &str) -> Result<usize, DatastoreError> {
        // serde_yaml's message names the line and column.
        let map: Value =
            serde_yaml::from_str(text).map_err(|e| DatastoreError::BadLoad(e.to_string()))?;
        self.load(&map)
    }

    /// Re-encrypt every secret under a new secret key, which then replaces
    /// the old one; the number of secrets re-encrypted.
    ///
    /// Crash-safe: the new key is written beside the old one first, and
    /// secrets decrypt under either until the new key takes the old one's
    /// place, after every secret was rewritten in one step.
    pub fn rotate(&self) -> Result<usize, DatastoreError> {
        let next = self.key.begin_rotation()?;
        let mut entries = Vec::new();
        for e in self.book.list("")?.into_iter().filter(|e| e.secret) {
            let clear = self.key.decrypt(&e.name, &e.value)?;
            entries.push(KeyEntry {
                value: next.encrypt(&e.name, &clear)?,
                ..e
            });
        }
        let n = entries.len();
        self.book.set_all(entries)?;
        self.key.finish_rotation()?;
        Ok(n)
    }
}

fn expired(e: &KeyEntry) -> bool {
    e.expires_at.is_some_and(|t| t <= SystemTime::now())
}

fn shown(e: &KeyEntry, value: String) -> Key {
    Key {
        name: e.name.clone(),
        value,
        secret: e.secret,
        expires_at: e
            .expires_at
            .map(|t| humantime::format_rfc3339_seconds(t).to_string()),
        updated_at: humantime::format_rfc3339_seconds(e.updated_at).to_string(),
    }
}

fn scalar(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

/// `system.NAME...` (shared) or `user.USER.NAME...` (one user's): dot-
/// separated words of letters, digits, `_` and `-`.
pub fn check_name(name: &str) -> Result<(), DatastoreError> {
    let bad = |why: &str| {
        Err(DatastoreError::BadName {
            name: name.to_owned(),
            why: why.to_owned(),
        })
    };
    if name.len() > 255 {
        return bad("longer than 255 bytes");
    }
    let words: Vec<&str> = name.split('.').collect();
    let word_ok = |w: &&str| {
        !w.is_empty()
            && w.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
    };
    if !words.iter().all(word_ok) {
        return bad("words are letters, digits, `_` and `-`, separated by single dots");
    }
    match words.as_slice() {
        ["system", _, ..] => Ok(()),
        ["user", _, _, ..] => Ok(()),
        ["user", ..] => bad("a user's key is `user.USER.NAME`"),
        _ => bad("it starts with a scope: `system.` (shared) or `user.USER.` (one user's)"),
    }
}

#[cfg(test)]
mod tests;
