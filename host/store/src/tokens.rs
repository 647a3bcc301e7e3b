//! Where a store's API tokens are kept: [`TokenBook`], and its file form
//! for the embedded store. Only the hashes are kept, never a token; making
//! and checking tokens is the server's (`wasmflow_server::tokens`).
//!
//! Not on [`crate::Backend`]: sled allows one opener, and tokens are
//! created and revoked while a server holds the store. A file beside the
//! store (one machine) or a table (a shared database) can be written by
//! anyone who may, while the server runs.

use crate::error::StoreError;
use crate::store::Location;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::SystemTime;

/// One token as kept: its name and sha256, never the token itself.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TokenEntry {
    pub name: String,
    pub sha256: String,
    #[serde(default)]
    pub read_only: bool,
    #[serde(with = "rfc3339")]
    pub created_at: SystemTime,
}

/// The tokens of one store.
pub trait TokenBook: Send + Sync {
    /// Every token, oldest first.
    fn list(&self) -> Result<Vec<TokenEntry>, StoreError>;

    /// Keep `entry`; `false` (and nothing changed) if its name is taken.
    fn add(&self, entry: TokenEntry) -> Result<bool, StoreError>;

    /// Forget the token named `name`; `false` if there is none.
    fn remove(&self, name: &str) -> Result<bool, StoreError>;

    /// Something that changes whenever the tokens do, cheap to ask: a
    /// reader caches [`TokenBook::list`] until it changes (`None`: there
    /// are none yet).
    fn version(&self) -> Option<String>;
}

impl std::fmt::Debug for dyn TokenBook {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TokenBook")
    }
}

/// The token book of the store at `location`.
pub fn token_book(location: &Location) -> Result<Arc<dyn TokenBook>, StoreError> {
    match location {
        Location::Dir(dir) => Ok(Arc::new(TokenFile::beside(dir))),
        Location::Postgres(url) => Ok(Arc::new(crate::postgres::PgStore::open(url)?)),
    }
}

/// The embedded store's tokens: `tokens.json` beside the store's
/// directory (`HOME/tokens.json` for a home's `HOME/store`), a
/// [`crate::private_file`].
struct TokenFile {
    path: PathBuf,
}

#[derive(Default, Serialize, Deserialize)]
struct Tokens {
    tokens: Vec<TokenEntry>,
}

impl TokenFile {
    fn beside(store_dir: &Path) -> Self {
        let dir = store_dir.parent().unwrap_or(store_dir);
        Self {
            path: dir.join("tokens.json"),
        }
    }

    fn error(&self, message: impl std::fmt::Display) -> StoreError {
        StoreError::Other(format!("{}: {message}", self.path.display()))
    }

    fn read(&self) -> Result<Tokens, StoreError> {
        match std::fs::read(&self.path) {
            Ok(bytes) => serde_json::from_slice(&bytes)
                .map_err(|e| self.error(format_args!("line {}: {e}", e.line()))),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Tokens::default()),
            Err(e) => Err(self.error(e)),
        }
    }

    fn write(&self, tokens: &Tokens) -> Result<(), StoreError> {
        let text = serde_json::to_vec_pretty(tokens).expect("token files serialize");
        crate::private_file::replace(&self.path, &text).map_err(|e| self.error(e))
    }
}

impl TokenBook for TokenFile {
    fn list(&self) -> Result<Vec<TokenEntry>, StoreError> {
        Ok(self.read()?.tokens)
    }

    fn add(&self, entry: TokenEntry) -> Result<bool, StoreError> {
        let mut tokens = self.read()?;
        if tokens.tokens.iter().any(|t| t.name == entry.name) {
            return Ok(false);
        }
        tokens.tokens.push(entry);
        self.write(&tokens)?;
        Ok(true)
    }

    fn remove(&self, name: &str) -> Result<bool, StoreError> {
        let mut tokens = self.read()?;
        let before = tokens.tokens.len();
        tokens.tokens.retain(|t| t.name != name);
        if tokens.tokens.len() == before {
            return Ok(false);
        }
        self.write(&tokens)?;
        Ok(true)
    }

    /// The file's mtime and inode: a rename changes the inode even within
    /// the mtime's granularity.
    fn version(&self) -> Option<String> {
        use std::os::unix::fs::MetadataExt;
        let m = std::fs::metadata(&self.path).ok()?;
        let mtime = m.modified().ok()?;
        Some(format!("{mtime:?}/{}", m.ino()))
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
