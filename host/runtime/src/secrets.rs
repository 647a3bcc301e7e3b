//! Secrets in an execution: where their values come from, and keeping
//! them out of everything that is kept.
//!
//! A secret reaches a run as a reference (`((secret:KEY))`, `((sealed:..))`,
//! see `wasmflow_datastore::reference`) in its input or its env grants, or
//! through `wasmflow:action/keys`. [`Secrets`] (one per runtime) finds the
//! values: a `--secret NAME=VALUE` given for a replay first, then the
//! datastore. Each value handed out is added to the execution's [`Masker`],
//! which replaces it with `***` in its result, error, logs (also as they
//! are streamed), captured output, and recorded answers; the tape keeps a
//! secret's sha256, never its value.
//!
//! A leaf over the datastore: it knows no sandbox and no host interface.

use serde_json::Value;
use sha2::{Digest as _, Sha256};
use std::borrow::Cow;
use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock, RwLock};
use wasmflow_datastore::reference::{self, Reference};
use wasmflow_datastore::{Datastore, DatastoreError, MASK};
use wasmflow_store::{Event, Grants, LogLine};

/// Why a secret could not be given.
#[derive(Debug, thiserror::Error)]
pub enum SecretError {
    #[error(
        "key `{name}` is not granted to this execution (grant it with --allow-key {name}, \
         or a pattern such as --allow-key 'system.*')"
    )]
    NotGranted { name: String },
    #[error(
        "secret `{name}` is not in this store (expired, deleted, or set on another machine): \
         set it with `wasmflow key set {name} - --secret`, or give it with --secret {name}=VALUE"
    )]
    Missing { name: String },
    #[error("key `{name}` is referenced, but this process has no datastore")]
    NoDatastore { name: String },
    #[error(
        "the value of `{name}` was given in clear and sealed under another secret key \
         (another machine's, or one rotated away): give it with --secret {name}=VALUE"
    )]
    Unsealable { name: String },
    #[error(
        "secret `{name}` is not the one the execution was recorded with (its sha256 differs): \
         set it back, or give the recorded value with --secret {name}=VALUE"
    )]
    Changed { name: String },
    #[error("{name}: {source}")]
    Datastore {
        name: String,
        #[source]
        source: DatastoreError,
    },
}

/// Where a runtime's executions get secret values from.
#[derive(Default)]
pub(crate) struct Secrets {
    keys: OnceLock<Datastore>,
    /// Values given for this process (`replay --secret NAME=VALUE`), by
    /// key name or, for a sealed env value, by variable name.
    given: RwLock<HashMap<String, String>>,
}

impl Secrets {
    pub fn use_keys(&self, keys: Datastore) {
        // The first datastore stays: a runtime has one store.
        let _ = self.keys.set(keys);
    }

    pub fn keys(&self) -> Option<&Datastore> {
        self.keys.get()
    }

    pub fn give(&self, values: HashMap<String, String>) {
        self.given
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .extend(values);
    }

    fn given(&self, name: &str) -> Option<String> {
        let given = self.given.read().unwrap_or_else(|e| e.into_inner());
        given.get(name).cloned()
    }

    /// A key's value and whether it is a secret; `None` when there is no
    /// such key.
    pub fn key(&self, name: &str) -> Result<Option<(String, bool)>, SecretError> {
        if let Some(v) = self.given(name) {
            return Ok(Some((v, true)));
        }
        let keys = self.keys.get().ok_or_else(|| SecretError::NoDatastore {
            name: name.to_owned(),
        })?;
        keys.value(name).map_err(|source| SecretError::Datastore {
            name: name.to_owned(),
            source,
        })
    }

    fn secret(&self, name: &str) -> Result<String, SecretError> {
        self.key(name)?
            .map(|(v, _)| v)
            .ok_or_else(|| SecretError::Missing {
                name: name.to_owned(),
            })
    }

    fn unseal(&self, ciphertext: &str, known_as: &str) -> Result<String, SecretError> {
        if let Some(v) = self.given(known_as) {
            return Ok(v);
        }
        let keys = self.keys.get().ok_or_else(|| SecretError::Unsealable {
            name: known_as.to_owned(),
        })?;
        keys.unseal(ciphertext).map_err(|e| match e {
            DatastoreError::Unsealable { .. } | DatastoreError::SecretKey { .. } => {
                SecretError::Unsealable {
                    name: known_as.to_owned(),
                }
            }
            source => SecretError::Datastore {
                name: known_as.to_owned(),
                source,
            },
        })
    }

    /// `text` with every reference replaced by its value, each value added
    /// to `masker`. A key must be `allowed`; a sealed value is known as
    /// `known_as` to `--secret`.
    pub fn resolve(
        &self,
        text: &str,
        allowed: &dyn Fn(&str) -> bool,
        known_as: &str,
        masker: &Masker,
    ) -> Result<String, SecretError> {
        let found = reference::find(text);
        if found.is_empty() {
            return Ok(text.to_owned());
        }
        let mut out = String::with_capacity(text.len());
        let mut at = 0;
        for (range, r) in found {
            out.push_str(&text[at..range.start]);
            let value = match r {
                Reference::Key(name) => {
                    if !allowed(name) {
                        return Err(SecretError::NotGranted {
                            name: name.to_owned(),
                        });
                    }
                    self.secret(name)?
                }
                Reference::Sealed(ct) => self.unseal(ct, known_as)?,
            };
            masker.add(&value);
            out.push_str(&value);
            at = range.end;
        }
        out.push_str(&text[at..]);
        Ok(out)
    }

    /// Every string of `input` resolved (see [`Secrets::resolve`]); the
    /// error names the JSON path.
    pub fn resolve_input(
        &self,
        input: &Value,
        grants: &Grants,
        masker: &Masker,
    ) -> Result<Value, (String, SecretError)> {
        fn walk(
            s: &Secrets,
            v: &Value,
            path: &mut String,
            grants: &Grants,
            masker: &Masker,
        ) -> Result<Value, (String, SecretError)> {
            Ok(match v {
                Value::String(text) => Value::String(
                    s.resolve(text, &|n| reference::granted(&grants.keys, n), path, masker)
                        .map_err(|e| (path.clone(), e))?,
                ),
                Value::Array(items) => {
                    let mut out = Vec::with_capacity(items.len());
                    for (i, item) in items.iter().enumerate() {
                        let len = path.len();
                        path.push_str(&format!("[{i}]"));
                        out.push(walk(s, item, path, grants, masker)?);
                        path.truncate(len);
                    }
                    Value::Array(out)
                }
                Value::Object(m) => {
                    let mut out = serde_json::Map::with_capacity(m.len());
                    for (k, item) in m {
                        let len = path.len();
                        if !path.is_empty() {
                            path.push('.');
                        }
                        path.push_str(k);
                        out.insert(k.clone(), walk(s, item, path, grants, masker)?);
                        path.truncate(len);
                    }
                    Value::Object(out)
                }
                other => other.clone(),
            })
        }
        if !holds_reference(input) {
            return Ok(input.clone());
        }
        walk(self, input, &mut String::new(), grants, masker)
    }

    /// `grants` with every env value given in clear sealed, so that no
    /// record keeps it; unchanged without a datastore (nothing is kept
    /// then either) or when there is nothing to seal.
    pub fn seal(&self, grants: &mut Grants) -> Result<(), SecretError> {
        let Some(keys) = self.keys.get() else {
            return Ok(());
        };
        for env in &mut grants.env {
            if let Some(v) = env.value.as_mut().filter(|v| !reference::holds(v)) {
                *v = keys.seal(v).map_err(|source| SecretError::Datastore {
                    name: env.name.clone(),
                    source,
                })?;
            }
        }
        Ok(())
    }
}

impl Secrets {
    /// The string values at `paths` in `input` sealed (names matched as
    /// written or in snake_case, as input is); the error names the path.
    /// Unchanged without a datastore.
    pub fn seal_paths(
        &self,
        input: &mut Value,
        paths: &[Vec<String>],
    ) -> Result<(), (String, SecretError)> {
        let Some(keys) = self.keys.get() else {
            return Ok(());
        };
        for path in paths {
            let mut at = Some(&mut *input);
            for name in path {
                at = at.and_then(|v| v.as_object_mut()).and_then(|m| {
                    let key = if m.contains_key(name) {
                        name.clone()
                    } else {
                        name.replace('-', "_")
                    };
                    m.get_mut(&key)
                });
            }
            if let Some(Value::String(v)) = at {
                if !reference::holds(v) {
                    *v = keys.seal(v).map_err(|source| {
                        let at = path.join(".");
                        (at.clone(), SecretError::Datastore { name: at, source })
                    })?;
                }
            }
        }
        Ok(())
    }
}

/// The JSON paths (`spec.password`) of `input`'s strings that hold a
/// sealed value: the names `--secret` gives them again by.
pub(crate) fn sealed_paths(input: &Value) -> Vec<String> {
    fn walk(v: &Value, path: &str, out: &mut Vec<String>) {
        match v {
            Value::String(s) => {
                let sealed = reference::find(s)
                    .iter()
                    .any(|(_, r)| matches!(r, Reference::Sealed(_)));
                if sealed {
                    out.push(path.to_owned());
                }
            }
            Value::Array(items) => {
                for (i, item) in items.iter().enumerate() {
                    walk(item, &format!("{path}[{i}]"), out);
                }
            }
            Value::Object(m) => {
                for (k, item) in m {
                    let at = if path.is_empty() {
                        k.clone()
                    } else {
                        format!("{path}.{k}")
                    };
                    walk(item, &at, out);
                }
            }
            _ => {}
        }
    }
    let mut out = Vec::new();
    walk(input, "", &mut out);
    out
}

fn holds_reference(v: &Value) -> bool {
    match v {
        Value::String(s) => s.contains("(("),
        Value::Array(items) => items.iter().any(holds_reference),
        Value::Object(m) => m.values().any(holds_reference),
        _ => false,
    }
}

/// The sha256 of a secret's value, hex: what a tape keeps of it.
pub(crate) fn digest(value: &str) -> String {
    hex::encode(Sha256::digest(value.as_bytes()))
}

/// The secret values one execution was given; everything it leaves behind
/// passes through here. Cheap to clone (shared).
#[derive(Clone, Default)]
pub(crate) struct Masker(Arc<Mutex<Vec<String>>>);

impl Masker {
    /// Mask `value` from now on. Empty values mask nothing.
    pub fn add(&self, value: &str) {
        if value.is_empty() {
            return;
        }
        let mut values = self.0.lock().unwrap_or_else(|e| e.into_inner());
        if !values.iter().any(|v| v == value) {
            values.push(value.to_owned());
            // Longest first, so a secret that contains another is masked
            // whole.
            values.sort_by_key(|v| std::cmp::Reverse(v.len()));
        }
    }

    fn values(&self) -> Vec<String> {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    pub fn text<'a>(&self, s: &'a str) -> Cow<'a, str> {
        let values = self.values();
        if !values.iter().any(|v| s.contains(v.as_str())) {
            return Cow::Borrowed(s);
        }
        let mut out = s.to_owned();
        for v in &values {
            if out.contains(v.as_str()) {
                out = out.replace(v.as_str(), MASK);
            }
        }
        Cow::Owned(out)
    }

    pub fn bytes<'a>(&self, b: &'a [u8]) -> Cow<'a, [u8]> {
        let values = self.values();
        let hit = |hay: &[u8], v: &[u8]| hay.windows(v.len()).position(|w| w == v);
        if !values.iter().any(|v| hit(b, v.as_bytes()).is_some()) {
            return Cow::Borrowed(b);
        }
        let mut out = b.to_vec();
        for v in &values {
            let v = v.as_bytes();
            let mut masked = Vec::with_capacity(out.len());
            let mut rest = &out[..];
            while let Some(i) = hit(rest, v) {
                masked.extend_from_slice(&rest[..i]);
                masked.extend_from_slice(MASK.as_bytes());
                rest = &rest[i + v.len()..];
            }
            masked.extend_from_slice(rest);
            out = masked;
        }
        Cow::Owned(out)
    }

    /// Every string (and object key) of `v` masked in place.
    pub fn json(&self, v: &mut Value) {
        if self.is_empty() {
            return;
        }
        match v {
            Value::String(s) => {
                if let Cow::Owned(m) = self.text(s) {
                    *s = m;
                }
            }
            Value::Array(items) => items.iter_mut().for_each(|i| self.json(i)),
            Value::Object(m) => {
                let old = std::mem::take(m);
                for (k, mut item) in old {
                    self.json(&mut item);
                    m.insert(self.text(&k).into_owned(), item);
                }
            }
            _ => {}
        }
    }

    pub fn line(&self, line: &LogLine) -> LogLine {
        LogLine {
            message: self.text(&line.message).into_owned(),
            ..line.clone()
        }
    }

    /// A recorded answer with every inline string masked (payloads kept
    /// as blobs are masked as they are stored).
    pub fn event(&self, event: Event) -> Event {
        if self.is_empty() {
            return event;
        }
        let mut v = serde_json::to_value(&event).expect("events serialize");
        self.json(&mut v);
        serde_json::from_value(v).unwrap_or(event)
    }

    pub fn is_empty(&self) -> bool {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn every_copy_is_masked_longest_first() {
        let m = Masker::default();
        m.add("hunter2");
        m.add("hunter2-extended");
        m.add("");
        assert_eq!(m.text("a hunter2 b hunter2-extended"), "a *** b ***");
        assert_eq!(&*m.bytes(b"xhunter2hunter2"), b"x******");
        let mut v = json!({"hunter2": ["x hunter2", 1], "k": "plain"});
        m.json(&mut v);
        assert_eq!(v, json!({"***": ["x ***", 1], "k": "plain"}));
        assert!(matches!(m.text("nothing here"), Cow::Borrowed(_)));
    }

    #[test]
    fn references_need_a_grant_and_a_value() {
        let s = Secrets::default();
        s.give([("system.db".to_owned(), "pw".to_owned())].into());
        let m = Masker::default();
        let mut grants = Grants::default();
        let input = json!({"dsn": "u:((secret:system.db))@h", "n": 1});
        let (path, err) = s.resolve_input(&input, &grants, &m).unwrap_err();
        assert_eq!(path, "dsn");
        assert!(matches!(err, SecretError::NotGranted { .. }), "{err}");
        grants.keys.push("system.*".into());
        let out = s.resolve_input(&input, &grants, &m).unwrap();
        assert_eq!(out, json!({"dsn": "u:pw@h", "n": 1}));
        assert_eq!(m.text("pw"), "***");
        let (_, err) = s
            .resolve_input(&json!(["((secret:system.other))"]), &grants, &m)
            .unwrap_err();
        assert!(matches!(err, SecretError::NoDatastore { .. }), "{err}");
    }
}
