//! API tokens: `wasmflow token create` prints one once and keeps only its
//! sha256 in the store's [`TokenBook`]; the server checks bearer tokens
//! against the book, re-reading it when it changes, so tokens can be
//! created and revoked while a server runs.
//!
//! Tokens are 32 random bytes: a plain sha256 is enough to keep the book
//! from being a list of credentials (no password stretching is needed for
//! secrets this long).

use crate::batch::Batcher;
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::SystemTime;
use wasmflow_store::{StoreError, TokenBook, TokenEntry};

const PREFIX: &str = "wft_";

#[derive(Debug, thiserror::Error)]
pub enum TokenError {
    #[error("a token named `{0}` exists; revoke it first or pick another name")]
    Exists(String),
    #[error("no token is named `{0}`")]
    Unknown(String),
    #[error("a token name is 1-64 letters, digits, `-`, `_` or `.`; got `{0}`")]
    BadName(String),
    #[error("{0}")]
    Store(#[from] StoreError),
    #[error("no randomness for a token: {0}")]
    Random(String),
}

impl TokenError {
    /// All of these are the caller's to fix (exit 2), but a failed book
    /// or no randomness.
    pub fn is_usage(&self) -> bool {
        matches!(
            self,
            TokenError::Exists(_) | TokenError::Unknown(_) | TokenError::BadName(_)
        )
    }
}

/// Make a token named `name`, keep its hash, and return the token.
pub fn create(book: &dyn TokenBook, name: &str, read_only: bool) -> Result<String, TokenError> {
    let valid = !name.is_empty()
        && name.len() <= 64
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
    if !valid {
        return Err(TokenError::BadName(name.to_owned()));
    }
    let mut secret = [0u8; 32];
    getrandom::fill(&mut secret).map_err(|e| TokenError::Random(e.to_string()))?;
    let token = format!("{PREFIX}{}", hex::encode(secret));
    let added = book.add(TokenEntry {
        name: name.to_owned(),
        sha256: hash(&token),
        read_only,
        created_at: SystemTime::now(),
    })?;
    if !added {
        return Err(TokenError::Exists(name.to_owned()));
    }
    Ok(token)
}

pub fn list(book: &dyn TokenBook) -> Result<Vec<TokenEntry>, TokenError> {
    Ok(book.list()?)
}

pub fn revoke(book: &dyn TokenBook, name: &str) -> Result<(), TokenError> {
    if !book.remove(name)? {
        return Err(TokenError::Unknown(name.to_owned()));
    }
    Ok(())
}

fn hash(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

/// Who a request is.
#[derive(Clone, Debug)]
pub struct Caller {
    pub name: String,
    pub read_only: bool,
}

/// The server's view of the token book, re-read when its version
/// changes.
pub struct Tokens {
    book: Arc<dyn TokenBook>,
    cached: Mutex<(Option<String>, HashMap<String, Caller>)>,
    /// The book's version, read once for every request checked at the
    /// same time (a round trip each on a shared store). A request still
    /// waits for a read that starts after it arrived, so a token revoked
    /// before it is refused.
    versions: std::sync::OnceLock<Batcher<(), Option<String>>>,
}

impl Tokens {
    pub fn new(book: Arc<dyn TokenBook>) -> Self {
        Self {
            book,
            cached: Mutex::new((None, HashMap::new())),
            versions: std::sync::OnceLock::new(),
        }
    }

    /// The caller a bearer token belongs to, if any.
    pub async fn check(&self, token: &str) -> Option<Caller> {
        let versions = self.versions.get_or_init(|| {
            let book = self.book.clone();
            Batcher::start(1024, move |asked: Vec<()>| {
                Ok(vec![book.version(); asked.len()])
            })
        });
        // The writer gone: the list is read again (`None` never matches).
        let version = versions.ask(()).await.unwrap_or(None);
        let mut cached = self.cached.lock().expect("not poisoned");
        if cached.0 != version {
            let tokens = self.book.list().unwrap_or_else(|e| {
                tracing::error!("{e}; no token is accepted until it is fixed");
                Vec::new()
            });
            cached.1 = tokens
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
            cached.0 = version;
        }
        // Looked up by hash: comparing hashes leaks nothing about the token.
        cached.1.get(&hash(token)).cloned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn created_tokens_check_and_revoked_ones_do_not() {
        let home = tempfile::tempdir().unwrap();
        let book =
            wasmflow_store::token_book(&wasmflow_store::Location::in_home(home.path())).unwrap();
        let ci = create(&*book, "ci", false).unwrap();
        let ro = create(&*book, "viewer", true).unwrap();
        assert!(ci.starts_with(PREFIX) && ci.len() == PREFIX.len() + 64);
        let stored = std::fs::read_to_string(home.path().join("tokens.json")).unwrap();
        assert!(!stored.contains(&ci), "the token itself is never stored");
        let tokens = Tokens::new(book.clone());
        assert!(!tokens.check(&ci).await.unwrap().read_only);
        assert!(tokens.check(&ro).await.unwrap().read_only);
        assert!(tokens.check("wft_00").await.is_none());
        assert!(matches!(
            create(&*book, "ci", false),
            Err(TokenError::Exists(_))
        ));
        assert!(matches!(
            create(&*book, "no spaces", false),
            Err(TokenError::BadName(_))
        ));
        revoke(&*book, "ci").unwrap();
        assert!(tokens.check(&ci).await.is_none());
        assert_eq!(list(&*book).unwrap().len(), 1);
    }
}
