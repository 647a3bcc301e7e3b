//! Pulled components, content-addressed: `blobs/sha256/<hex>` holds the
//! bytes (written only after their digest checked out), and
//! `refs/<registry>/<repository>/<tag>.json` remembers which manifest and
//! layer a tag resolved to, so later runs need no registry at all.

use crate::{OciRef, RegistryError};
use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};
use std::path::{Path, PathBuf};

pub struct Cache {
    root: PathBuf,
}

/// A component in the cache.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Cached {
    /// The manifest digest the reference resolved to.
    pub manifest_digest: String,
    /// The component's sha256 (its layer digest).
    pub layer_digest: String,
    #[serde(skip)]
    pub path: PathBuf,
    /// The component's bytes, already checked against `layer_digest`.
    #[serde(skip)]
    pub bytes: Vec<u8>,
}

impl Cached {
    /// The reference pinned to what it resolved to, for records.
    pub fn pinned(&self, r: &OciRef) -> OciRef {
        r.pinned(&self.manifest_digest)
    }
}

impl Cache {
    pub fn new(root: &Path) -> Self {
        Self {
            root: root.to_owned(),
        }
    }

    fn blob_path(&self, digest: &str) -> PathBuf {
        let hex = digest.strip_prefix("sha256:").unwrap_or(digest);
        self.root.join("blobs/sha256").join(hex)
    }

    fn ref_path(&self, r: &OciRef) -> PathBuf {
        let name = match (&r.digest, &r.tag) {
            (Some(d), _) => d.replace(':', "-"),
            (None, Some(t)) => format!("tag-{t}"),
            (None, None) => "none".into(),
        };
        self.root
            .join("refs")
            .join(r.registry.replace(':', "_"))
            .join(&r.repository)
            .join(format!("{name}.json"))
    }

    /// What `r` resolved to before, if its component is still cached and
    /// intact.
    pub fn lookup(&self, r: &OciRef) -> Result<Option<Cached>, RegistryError> {
        let path = self.ref_path(r);
        let Ok(text) = std::fs::read(&path) else {
            return Ok(None);
        };
        let Ok(mut cached) = serde_json::from_slice::<Cached>(&text) else {
            return Ok(None);
        };
        let blob = self.blob_path(&cached.layer_digest);
        // The bytes are checked again on use: a cache is not a trust root.
        match std::fs::read(&blob) {
            Ok(bytes) if digest(&bytes) == cached.layer_digest => {
                cached.path = blob;
                cached.bytes = bytes;
                Ok(Some(cached))
            }
            _ => Ok(None),
        }
    }

    /// Keep verified bytes and what `r` resolved to (also under the pinned
    /// digest, so `@sha256:` references hit the cache too).
    pub(crate) fn store(
        &self,
        r: &OciRef,
        manifest_digest: &str,
        layer_digest: &str,
        bytes: Vec<u8>,
    ) -> Result<Cached, RegistryError> {
        let blob = self.blob_path(layer_digest);
        let dir = blob.parent().expect("blob paths have a parent");
        std::fs::create_dir_all(dir).map_err(RegistryError::cache(dir))?;
        // Write then rename: a half-written blob is never visible.
        let tmp = blob.with_extension("partial");
        std::fs::write(&tmp, &bytes).map_err(RegistryError::cache(&tmp))?;
        std::fs::rename(&tmp, &blob).map_err(RegistryError::cache(&blob))?;
        let cached = Cached {
            manifest_digest: manifest_digest.to_owned(),
            layer_digest: layer_digest.to_owned(),
            path: blob,
            bytes,
        };
        let text = serde_json::to_vec(&cached).expect("cache entries serialize");
        for reference in [r.clone(), r.pinned(manifest_digest)] {
            let path = self.ref_path(&reference);
            let dir = path.parent().expect("ref paths have a parent");
            std::fs::create_dir_all(dir).map_err(RegistryError::cache(dir))?;
            std::fs::write(&path, &text).map_err(RegistryError::cache(&path))?;
        }
        Ok(cached)
    }
}

fn digest(bytes: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(bytes)))
}
