//! Compiled components, cached on disk by the sha256 of the component bytes.
//!
//! The directory name carries a hash of the engine's compilation settings
//! and wasmtime version, so an upgrade never loads stale machine code.

use std::hash::{Hash, Hasher};
use std::path::{Path, PathBuf};
use wasmflow_store::Digest;
use wasmtime::component::Component;
use wasmtime::Engine;

pub(crate) struct ComponentCache {
    dir: PathBuf,
}

impl ComponentCache {
    pub fn new(root: &Path, engine: &Engine) -> std::io::Result<Self> {
        let mut h = std::collections::hash_map::DefaultHasher::new();
        engine.precompile_compatibility_hash().hash(&mut h);
        let dir = root.join(format!("{:016x}", h.finish()));
        std::fs::create_dir_all(&dir)?;
        Ok(Self { dir })
    }

    fn path(&self, digest: &Digest) -> PathBuf {
        self.dir.join(format!("{}.cwasm", digest.hex()))
    }

    /// Load the compiled form of `bytes`, compiling and storing it on a miss.
    pub fn get_or_compile(
        &self,
        engine: &Engine,
        digest: &Digest,
        bytes: &[u8],
    ) -> wasmtime::Result<Component> {
        let path = self.path(digest);
        if path.is_file() {
            // SAFETY: files in this directory are written only by
            // `Component::serialize` below, for this engine configuration
            // (the directory name pins it), and renamed into place whole.
            match unsafe { Component::deserialize_file(engine, &path) } {
                Ok(c) => return Ok(c),
                Err(e) => {
                    tracing::warn!("recompiling {digest}: cached artifact unusable: {e:#}");
                    let _ = std::fs::remove_file(&path);
                }
            }
        }
        let component = Component::new(engine, bytes)?;
        // A cache we cannot write is a slower run, not a failed one.
        if let Err(e) = self.write(&path, &component.serialize()?) {
            tracing::warn!("cannot cache compiled {digest} at {}: {e}", path.display());
        }
        Ok(component)
    }

    fn write(&self, path: &Path, bytes: &[u8]) -> std::io::Result<()> {
        let tmp = path.with_extension(format!("tmp{}", std::process::id()));
        std::fs::write(&tmp, bytes)?;
        std::fs::rename(&tmp, path)
    }
}
