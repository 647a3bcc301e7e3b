//! API tokens: `wasmflow token create` prints one once and keeps only its
//! sha256 in `$WASMFLOW_HOME/tokens.json`; the server checks bearer tokens
//! against that file, re-reading it when it changes, so tokens can be
//! created and revoked while a server runs (the store is the server's).
//!
//! Tokens are 32 random bytes: a plain sha256 is enough to keep the file
//! from being a list of credentials (no password stretching is needed for
//! secrets this long).

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::SystemTime;

const PREFIX: &str = "wft_";

#[derive(Debug, thiserror::Error)]
pub enum TokenError {
    #[error("a token named `{0}` exists; revoke it first or pick another name")]
    Exists(String),
    #[error("no token is named `{0}`")]
    Unknown(String),
    #[error("a token name is 1-64 letters, digits, `-`, `_` or `.`; got `{0}`")]
    BadName(String),
    #[error("{path}: {message}")]
    File { path: PathBuf, message: String },
}

impl TokenError {
    /// All of these are the caller's to fix (exit 2), but a broken file.
    pub fn is_usage(&self) -> bool {
        !matches!(self, TokenError::File { .. })
    }
}

/// One token as stored: never the token itself.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct TokenEntry {
    pub name: String,
    pub sha256: String,
    #[serde(default)]
    pub read_only: bool,
    #[serde(with = "rfc3339")]
    pub created_at: SystemTime,
}

#[derive(Default, Serialize, Deserialize)]
struct TokenFile {
    tokens: Vec<TokenEntry>,
}

pub fn tokens_path(home: &Path) -> PathBuf {
    home.join("tokens.json")
}

/// Make a token named `name`, store its hash, and return the token.
pub fn create(home: &Path, name: &str, read_only: bool) -> Result<String, TokenError> {
    let valid = !name.is_empty()
        && name.len() <= 64
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
    if !valid {
        return Err(TokenError::BadName(name.to_owned()));
    }
    let path = tokens_path(home);
    let mut file = read(&path)?;
    if file.tokens.iter().any(|t| t.name == name) {
        return Err(TokenError::Exists(name.to_owned()));
    }
    let mut secret = [0u8; 32];
    getrandom::fill(&mut secret).map_err(|e| TokenError::File {
        path: path.clone(),
        message: format!("no randomness for a token: {e}"),
    })?;
    let token = format!("{PREFIX}{}", hex::encode(secret));
    file.tokens.push(TokenEntry {
        name: name.to_owned(),
        sha256: hash(&token),
        read_only,
        created_at: SystemTime::now(),
    });
    write(&path, &file)?;
    Ok(token)
}

pub fn list(home: &Path) -> Result<Vec<TokenEntry>, TokenError> {
    Ok(read(&tokens_path(home))?.tokens)
}

pub fn revoke(home: &Path, name: &str) -> Result<(), TokenError> {
    let path = tokens_path(home);
    let mut file = read(&path)?;
    let before = file.tokens.len();
    file.tokens.retain(|t| t.name != name);
    if file.tokens.len() == before {
        return Err(TokenError::Unknown(name.to_owned()));
    }
    write(&path, &file)
}

fn hash(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

fn read(path: &Path) -> Result<TokenFile, TokenError> {
    match std::fs::read(path) {
        Ok(bytes) => serde_json::from_slice(&bytes).map_err(|e| TokenError::File {
            path: path.to_owned(),
            message: format!("line {}: {e}", e.line()),
        }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(TokenFile::default()),
        Err(e) => Err(TokenError::File {
            path: path.to_owned(),
            message: e.to_string(),
        }),
    }
}

/// Written to a temporary file and renamed: a server reading it never sees
/// half a file.
fn write(path: &Path, file: &TokenFile) -> Result<(), TokenError> {
    let err = |e: std::io::Error| TokenError::File {
        path: path.to_owned(),
        message: e.to_string(),
    };
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(err)?;
    }
    let tmp = path.with_extension("json.tmp");
    let text = serde_json::to_vec_pretty(file).expect("token files serialize");
    {
        use std::io::Write;
        use std::os::unix::fs::OpenOptionsExt;
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(&tmp)
            .map_err(err)?;
        f.write_all(&text)
            .and_then(|()| f.sync_all())
            .map_err(err)?;
    }
    std::fs::rename(&tmp, path).map_err(err)
}

/// Who a request is.
#[derive(Clone, Debug)]
pub struct Caller {
    pub name: String,
    pub read_only: bool,
}

/// A file's (mtime, inode).
type FileVersion = (SystemTime, u64);

/// The server's view of the token file, reloaded when its mtime changes.
pub struct Tokens {
    path: PathBuf,
    /// The file's (mtime, inode) when read: a rename changes the inode
    /// even within the mtime's granularity.
    cached: Mutex<(Option<FileVersion>, HashMap<String, Caller>)>,
}

impl Tokens {
    pub fn new(home: &Path) -> Self {
        Self {
            path: tokens_path(home),
            cached: Mutex::new((None, HashMap::new())),
        }
    }

    /// The caller a bearer token belongs to, if any.
    pub fn check(&self, token: &str) -> Option<Caller> {
        use std::os::unix::fs::MetadataExt;
        let mtime = std::fs::metadata(&self.path)
            .and_then(|m| Ok((m.modified()?, m.ino())))
            .ok();
        let mut cached = self.cached.lock().expect("not poisoned");
        if cached.0 != mtime {
            let file = read(&self.path).unwrap_or_else(|e| {
                tracing::error!("{e}; no token is accepted until it is fixed");
                TokenFile::default()
            });
            cached.1 = file
                .tokens
                .into_iter()
                .map(|t| {
                    (
                        t.sha256,
                        Caller {
                            name: t.name,
                            read_only: t.read_only,
                        },
                    )
                })
                .collect();
            cached.0 = mtime;
        }
        // Looked up by hash: comparing hashes leaks nothing about the token.
        cached.1.get(&hash(token)).cloned()
    }
}

/// `SystemTime` as RFC 3339 text, like the execution records.
mod rfc3339 {
    use serde::{Deserialize, Deserializer, Serializer};
    use std::time::SystemTime;

    pub fn serialize<S: Serializer>(t: &SystemTime, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&humantime::format_rfc3339_seconds(*t).to_string())
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<SystemTime, D::Error> {
        let s = String::deserialize(d)?;
        humantime::parse_rfc3339(&s).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn created_tokens_check_and_revoked_ones_do_not() {
        let home = tempfile::tempdir().unwrap();
        let ci = create(home.path(), "ci", false).unwrap();
        let ro = create(home.path(), "viewer", true).unwrap();
        assert!(ci.starts_with(PREFIX) && ci.len() == PREFIX.len() + 64);
        let stored = std::fs::read_to_string(tokens_path(home.path())).unwrap();
        assert!(!stored.contains(&ci), "the token itself is never stored");
        let tokens = Tokens::new(home.path());
        assert!(!tokens.check(&ci).unwrap().read_only);
        assert!(tokens.check(&ro).unwrap().read_only);
        assert!(tokens.check("wft_00").is_none());
        assert!(matches!(
            create(home.path(), "ci", false),
            Err(TokenError::Exists(_))
        ));
        assert!(matches!(
            create(home.path(), "no spaces", false),
            Err(TokenError::BadName(_))
        ));
        revoke(home.path(), "ci").unwrap();
        assert!(tokens.check(&ci).is_none());
        assert_eq!(list(home.path()).unwrap().len(), 1);
    }
}
