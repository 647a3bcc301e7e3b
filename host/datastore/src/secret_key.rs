//! The secret key: 32 random bytes, hex, in a file of mode 0600 that is
//! made on first use and never enters the store; XChaCha20-Poly1305 with
//! it. A ciphertext is `xchacha20poly1305:NONCE:CIPHERTEXT` (hex; a fresh
//! 24-byte nonce each time), the key name its associated data.
//!
//! Rotation writes the next key to `FILE.next` before any secret is
//! re-encrypted, and renames it over `FILE` after all are: while `.next`
//! exists, a secret decrypts under either key, so a crash at any point
//! loses none.

use crate::DatastoreError;
use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use std::path::{Path, PathBuf};
use wasmflow_store::private_file;

const SCHEME: &str = "xchacha20poly1305";

#[derive(Clone, Debug)]
pub struct SecretKey {
    path: PathBuf,
}

/// One key's bytes, ready to use.
pub(crate) struct Cipher(XChaCha20Poly1305);

impl SecretKey {
    pub fn at(path: PathBuf) -> Self {
        Self { path }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    fn next_path(&self) -> PathBuf {
        let mut p = self.path.clone().into_os_string();
        p.push(".next");
        PathBuf::from(p)
    }

    fn error(&self, message: impl std::fmt::Display) -> DatastoreError {
        DatastoreError::SecretKey {
            path: self.path.clone(),
            message: message.to_string(),
        }
    }

    /// The key in `path`, if the file exists.
    fn read(&self, path: &Path) -> Result<Option<Cipher>, DatastoreError> {
        let text = match std::fs::read_to_string(path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(self.error(e)),
        };
        let bytes = hex::decode(text.trim())
            .ok()
            .filter(|b| b.len() == 32)
            .ok_or_else(|| {
                self.error(format!(
                    "{} does not hold a key (64 hex digits)",
                    path.display()
                ))
            })?;
        Ok(Some(Cipher(
            XChaCha20Poly1305::new_from_slice(&bytes).expect("32 bytes make a key"),
        )))
    }

    /// Write a new random key to `path` (0600, fsynced) unless one is
    /// there: a concurrent first use keeps whichever key landed first.
    fn create(&self, path: &Path, replace: bool) -> Result<(), DatastoreError> {
        let err = |e: std::io::Error| self.error(e);
        let mut key = [0u8; 32];
        getrandom::fill(&mut key).map_err(|e| self.error(e))?;
        // This process's own temporary name: two first uses may race.
        let tmp = path.with_extension(format!("tmp{}", std::process::id()));
        private_file::write_new(&tmp, format!("{}\n", hex::encode(key)).as_bytes()).map_err(err)?;
        let placed = match replace {
            true => std::fs::rename(&tmp, path),
            // A link fails if the name exists: never two first keys.
            false => std::fs::hard_link(&tmp, path).or_else(|e| match e.kind() {
                std::io::ErrorKind::AlreadyExists => Ok(()),
                _ => Err(e),
            }),
        };
        let _ = std::fs::remove_file(&tmp);
        placed.map_err(err)?;
        private_file::sync_dir(path).map_err(err)
    }

    /// The current key, made now if there is none (setting a secret).
    fn current_or_new(&self) -> Result<Cipher, DatastoreError> {
        if let Some(c) = self.read(&self.path)? {
            return Ok(c);
        }
        self.create(&self.path, false)?;
        self.read(&self.path)?
            .ok_or_else(|| self.error("vanished just after it was made"))
    }

    /// Encrypt `clear` as the value of `name`: under the rotation's next
    /// key while one is under way, so nothing set meanwhile is left under
    /// the key about to go.
    pub(crate) fn encrypt(&self, name: &str, clear: &str) -> Result<String, DatastoreError> {
        match self.read(&self.next_path())? {
            Some(next) => next.encrypt(name, clear),
            None => self.current_or_new()?.encrypt(name, clear),
        }
    }

    /// Decrypt `name`'s stored value (under the current key, or the next
    /// one while a rotation is under way).
    pub(crate) fn decrypt(&self, name: &str, stored: &str) -> Result<String, DatastoreError> {
        let undecryptable = || DatastoreError::Undecryptable {
            name: name.to_owned(),
            path: self.path.clone(),
        };
        let keys = [self.read(&self.path)?, self.read(&self.next_path())?];
        if keys.iter().all(Option::is_none) {
            return Err(self.error(format!(
                "does not exist, so secret `{name}` cannot be read (secrets were set with a \
                 key this machine does not have: copy it here, or point WASMFLOW_SECRET_KEY_FILE at it)"
            )));
        }
        keys.iter()
            .flatten()
            .find_map(|k| k.decrypt(name, stored))
            .ok_or_else(undecryptable)
    }

    /// Write the next key beside the current one (or keep the one an
    /// interrupted rotation left); it encrypts from now on.
    pub(crate) fn begin_rotation(&self) -> Result<Cipher, DatastoreError> {
        let next = self.next_path();
        if self.read(&next)?.is_none() {
            self.create(&next, true)?;
        }
        self.read(&next)?
            .ok_or_else(|| self.error("the next key vanished just after it was made"))
    }

    /// The next key becomes the key.
    pub(crate) fn finish_rotation(&self) -> Result<(), DatastoreError> {
        let err = |e: std::io::Error| self.error(e);
        std::fs::rename(self.next_path(), &self.path).map_err(err)?;
        private_file::sync_dir(&self.path).map_err(err)
    }
}

impl Cipher {
    pub(crate) fn encrypt(&self, name: &str, clear: &str) -> Result<String, DatastoreError> {
        let mut nonce = [0u8; 24];
        getrandom::fill(&mut nonce).map_err(|e| DatastoreError::SecretKey {
            path: PathBuf::new(),
            message: format!("no random nonce: {e}"),
        })?;
        let sealed = self
            .0
            .encrypt(
                XNonce::from_slice(&nonce),
                Payload {
                    msg: clear.as_bytes(),
                    aad: name.as_bytes(),
                },
            )
            .expect("encryption of a bounded message does not fail");
        Ok(format!(
            "{SCHEME}:{}:{}",
            hex::encode(nonce),
            hex::encode(sealed)
        ))
    }

    fn decrypt(&self, name: &str, stored: &str) -> Option<String> {
        let mut parts = stored.splitn(3, ':');
        if parts.next()? != SCHEME {
            return None;
        }
        let nonce = hex::decode(parts.next()?).ok().filter(|n| n.len() == 24)?;
        let sealed = hex::decode(parts.next()?).ok()?;
        let clear = self
            .0
            .decrypt(
                XNonce::from_slice(&nonce),
                Payload {
                    msg: &sealed,
                    aad: name.as_bytes(),
                },
            )
            .ok()?;
        String::from_utf8(clear).ok()
    }
}
