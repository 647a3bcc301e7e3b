//! Compiled components, cached on disk by the sha256 of the component bytes.
//!
//! The directory name carries a hash of the engine's compilation settings
//! and wasmtime version, so an upgrade never loads stale machine code.

use crate::compile::{self, CompileError, CompileOptions};
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

    /// Load the compiled form of `bytes`, compiling and storing it on a
    /// miss (in the compiler program, under its limits, when `options`
    /// names one).
    pub fn get_or_compile(
        &self,
        engine: &Engine,
        digest: &Digest,
        bytes: &[u8],
        options: &CompileOptions,
    ) -> Result<Component, CompileError> {
        let path = self.path(digest);
        if path.is_file() {
            // SAFETY: files in this directory are written only below, with
            // `Component::serialize`'s output for this engine configuration
            // (the directory name pins it), and renamed into place whole.
            match unsafe { Component::deserialize_file(engine, &path) } {
                Ok(c) => return Ok(c),
                Err(e) => {
                    tracing::warn!("recompiling {digest}: cached artifact unusable: {e:#}");
                    let _ = std::fs::remove_file(&path);
                }
            }
        }
        let invalid = |e: wasmtime::Error| CompileError::Invalid(format!("{e:#}"));
        let (component, serialized) = match &options.compiler {
            Some(program) => {
                let serialized = compile::in_child(program, &options.limits, bytes)?;
                // SAFETY: `Component::serialize`'s output from this very
                // binary (the compiler program is /proc/self/exe), for an
                // engine of the same settings.
                let component =
                    unsafe { Component::deserialize(engine, &serialized) }.map_err(invalid)?;
                (component, serialized)
            }
            None => {
                let component = Component::new(engine, bytes).map_err(invalid)?;
                let serialized = component.serialize().map_err(invalid)?;
                (component, serialized)
            }
        };
        // A cache we cannot write is a slower run, not a failed one.
        if let Err(e) = self.write(&path, &serialized) {
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
