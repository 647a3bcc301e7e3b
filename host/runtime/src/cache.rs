//! Compiled components, cached on disk by the sha256 of the component
//! bytes, and which component file has which sha256.
//!
//! The directory name carries a hash of the engine's compilation settings
//! and wasmtime version, so an upgrade never loads stale machine code.
//! Beside the compiled components: `modules/`, the core modules that
//! components share, compiled once (see `shared_modules`); `functions/`,
//! the compiler program's function cache (see `function_cache`); and
//! `files/`, the index that lets a run of an unchanged file skip reading
//! and hashing it (an 18 MB Python component costs more to hash than to
//! instantiate). A file is unchanged when its device, inode, size,
//! modification and change times all are: any write to it moves its
//! change time, which no user can set back.
//!
//! What it must not touch: the store.

use crate::compile::{self, CompileError, CompileEvent, CompileOptions, FunctionCounts};
use crate::{files, shared_modules};
use std::hash::{Hash, Hasher};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::time::Instant;
use wasmflow_store::Digest;
use wasmtime::component::Component;
use wasmtime::{Engine, Module};

pub(crate) struct ComponentCache {
    dir: PathBuf,
}

/// A compiled component and the shared modules it imports, loaded.
pub(crate) struct CompiledComponent {
    pub component: Component,
    /// Each under the name the component imports it by.
    pub modules: Vec<(String, Module)>,
}

/// What identifies one version of a file without reading it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(crate) struct FileKey {
    dev: u64,
    ino: u64,
    size: u64,
    modified: (i64, i64),
    changed: (i64, i64),
}

impl FileKey {
    pub fn of(meta: &std::fs::Metadata) -> Self {
        Self {
            dev: meta.dev(),
            ino: meta.ino(),
            size: meta.size(),
            modified: (meta.mtime(), meta.mtime_nsec()),
            changed: (meta.ctime(), meta.ctime_nsec()),
        }
    }

    fn line(&self, digest: &Digest) -> String {
        format!(
            "{} {}.{} {}.{} {}\n",
            self.size, self.modified.0, self.modified.1, self.changed.0, self.changed.1, digest
        )
    }
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

    fn modules_dir(&self) -> PathBuf {
        self.dir.join("modules")
    }

    fn index_path(&self, key: &FileKey) -> PathBuf {
        self.dir
            .join("files")
            .join(format!("{}-{}", key.dev, key.ino))
    }

    /// The digest of the file version `key`, if it was hashed before.
    pub fn indexed(&self, key: &FileKey) -> Option<Digest> {
        let line = std::fs::read_to_string(self.index_path(key)).ok()?;
        let digest = Digest::parse(line.trim_end().rsplit_once(' ')?.1)?;
        (key.line(&digest) == line).then_some(digest)
    }

    /// Remember that the file version `key` has `digest`. Best effort: a
    /// missing entry costs the next run a hash, never a wrong answer.
    pub fn index(&self, key: &FileKey, digest: &Digest) {
        let path = self.index_path(key);
        let _ = std::fs::create_dir_all(self.dir.join("files"));
        let _ = files::write_whole(&path, key.line(digest).as_bytes());
    }

    fn secret_params_path(&self, digest: &Digest) -> PathBuf {
        self.dir
            .join(format!("{}.secret-params.json", digest.hex()))
    }

    /// Where the component `digest`'s secret parameters are, if found
    /// before (see `inspect::secret_params`).
    pub fn secret_params(&self, digest: &Digest) -> Option<Vec<Vec<String>>> {
        let bytes = std::fs::read(self.secret_params_path(digest)).ok()?;
        serde_json::from_slice(&bytes).ok()
    }

    /// Keep what [`ComponentCache::secret_params`] reads. Best effort: a
    /// missing entry costs the next process a decoding of the component.
    pub fn keep_secret_params(&self, digest: &Digest, paths: &[Vec<String>]) {
        let json = serde_json::to_vec(paths).expect("paths serialize");
        let _ = files::write_whole(&self.secret_params_path(digest), &json);
    }

    /// The compiled form of `digest`, if it is cached and loads, with the
    /// shared modules it imports.
    pub fn compiled(&self, engine: &Engine, digest: &Digest) -> Option<CompiledComponent> {
        let path = self.path(digest);
        if !path.is_file() {
            return None;
        }
        // SAFETY: files in this directory are written only below, with
        // `Engine::precompile_component`'s output for this engine
        // configuration (the directory name pins it), and renamed into
        // place whole.
        let loaded = unsafe { Component::deserialize_file(engine, &path) }
            .map_err(|e| format!("cached artifact unusable: {e:#}"))
            .and_then(|component| self.with_modules(engine, component));
        match loaded {
            Ok(compiled) => Some(compiled),
            Err(why) => {
                tracing::warn!("recompiling {digest}: {why}");
                let _ = std::fs::remove_file(&path);
                None
            }
        }
    }

    fn with_modules(
        &self,
        engine: &Engine,
        component: Component,
    ) -> Result<CompiledComponent, String> {
        let modules = shared_modules::imported(engine, &component, &self.modules_dir())?;
        Ok(CompiledComponent { component, modules })
    }

    /// Load the compiled form of `bytes`, compiling and storing it on a
    /// miss (in the compiler program, under its limits, when `options`
    /// names one).
    pub fn get_or_compile(
        &self,
        engine: &Engine,
        digest: &Digest,
        reference: &str,
        bytes: &[u8],
        options: &CompileOptions,
    ) -> Result<CompiledComponent, CompileError> {
        if let Some(compiled) = self.compiled(engine, digest) {
            return Ok(compiled);
        }
        let path = self.path(digest);
        options.tell(CompileEvent::Started {
            reference: reference.to_owned(),
            bytes: bytes.len() as u64,
        });
        let started = Instant::now();
        let mut functions = FunctionCounts::default();
        let invalid = |e: wasmtime::Error| CompileError::Invalid(format!("{e:#}"));
        let (component, serialized) = match &options.compiler {
            Some(program) => {
                let compiled = compile::in_child(
                    program,
                    &options.limits,
                    bytes,
                    &compile::CacheDirs {
                        functions: self.dir.join("functions"),
                        modules: self.modules_dir(),
                    },
                    &digest.hex(),
                )?;
                functions = compiled.functions;
                let serialized = compiled.code;
                // SAFETY: `Engine::precompile_component`'s output from this
                // very binary (the compiler program is /proc/self/exe), for
                // an engine of the same settings.
                let component =
                    unsafe { Component::deserialize(engine, &serialized) }.map_err(invalid)?;
                (component, serialized)
            }
            None => {
                let (serialized, reused) =
                    shared_modules::compile(engine, bytes, &self.modules_dir()).map_err(invalid)?;
                functions.reused = reused;
                // SAFETY: just compiled, by this engine.
                let component =
                    unsafe { Component::deserialize(engine, &serialized) }.map_err(invalid)?;
                (component, serialized)
            }
        };
        let compiled = self
            .with_modules(engine, component)
            .map_err(CompileError::Invalid)?;
        // A cache we cannot write is a slower run, not a failed one.
        if let Err(e) = files::write_whole(&path, &serialized) {
            tracing::warn!("cannot cache compiled {digest} at {}: {e}", path.display());
        }
        tracing::info!(
            reused = functions.reused,
            compiled = functions.compiled,
            "compiled {reference} ({digest}) in {:.1?}",
            started.elapsed()
        );
        options.tell(CompileEvent::Finished {
            reference: reference.to_owned(),
            elapsed: started.elapsed(),
            functions,
        });
        Ok(compiled)
    }
}
