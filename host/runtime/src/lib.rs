//! Runs wasmflow actions.
//!
//! This crate owns the wasmtime engine, the compiled-component cache, the
//! JSON <-> WIT mapping, the sandbox built from grants, the limits, and the
//! writing of one [`ExecutionRecord`] per run. It knows nothing of workflows
//! or of how results are printed: the workflow scheduler and the CLI call
//! [`Runtime::load`] and [`Runtime::run`] ([`Loader`] alone where no store
//! is needed).
//!
//! Its modules are layered, every edge pointing down:
//! - leaves: `world` (recording and replay: every answer that could differ
//!   between two runs goes through `World::recorded`), `log_book`,
//!   `bindings` (the generated `wasmflow:action` traits), `limits`,
//!   `output`, `net` (the net grants as a policy), `granted`, `confine`,
//!   `program` (running a granted program), `setup` (answers fixed at
//!   start), `http_replay`;
//! - `sandbox`: the per-execution `T` of the wasmtime store, built from
//!   the grants;
//! - `host/`: one file per host interface (log, process, files, http,
//!   sockets/{tcp,udp,lookup}), each a wrapper over the sandbox;
//! - `linker`, then `action` (a loaded component), `run` and `replay`.

mod action;
mod bindings;
mod cache;
pub mod compile;
pub mod confine;
mod engine;
mod files;
mod function_cache;
mod granted;
pub mod grants;
mod host;
mod http_replay;
pub mod inspect;
mod limits;
mod linker;
mod log_book;
mod net;
mod output;
pub mod overrides;
mod program;
mod replay;
mod run;
mod sandbox;
mod secrets;
mod setup;
mod shared_modules;
pub mod value;
pub(crate) mod world;

pub use action::{Action, RunSignature};
pub use compile::{CompileEvent, CompileLimits, CompileOptions, CompileProgress, FunctionCounts};
pub use engine::EngineOptions;
pub use granted::GrantOpenError;
pub use grants::GrantError;
pub use log_book::LogWatcher;
pub use replay::{secrets_needed, Recording, ReplayReport, Verdict};
pub use run::{Ended, Produced, RunOptions};
pub use secrets::SecretError;
pub use tokio_util::sync::CancellationToken;
pub use value::InputError;
pub use wasmflow_store as store;
pub use world::Divergence;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use wasmflow_store::{ExecutionRecord, Location, Store, StoreError};

/// Why a run could not start. Once an action is running, its failures are
/// written to its [`ExecutionRecord`] instead.
#[derive(Debug, thiserror::Error)]
pub enum RuntimeError {
    #[error("cannot read {path}: {source}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path} is not a valid WebAssembly component: {message}")]
    InvalidComponent { path: String, message: String },
    #[error(
        "{path} does not export a `run` function (an action's world must `export run: func(...)`)"
    )]
    NoRunExport { path: String },
    #[error("{path}: {message} (compile-limit)")]
    CompileLimit { path: String, message: String },
    #[error("{path} cannot be linked: {message}")]
    Unlinkable { path: String, message: String },
    #[error("invalid input: {0}")]
    Input(#[from] InputError),
    #[error("invalid grant: {0}")]
    Grant(#[from] GrantError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("{path} changed while it was in use (it no longer holds {digest}): run again")]
    Changed { path: PathBuf, digest: String },
    #[error("{what} is not in the store")]
    MissingBlob { what: String },
    /// A secret the run references cannot be given (`at`: where).
    #[error("{at}{source}")]
    Secret {
        at: String,
        #[source]
        source: SecretError,
    },
    #[error(
        "the replay needs secrets this machine cannot give as they were recorded:\n  - {}",
        .0.join("\n  - ")
    )]
    ReplaySecrets(Vec<String>),
    #[error("cannot set up the runtime in {path}: {message}")]
    Setup { path: PathBuf, message: String },
}

impl RuntimeError {
    /// Whether the error is the caller's (bad file, input or grant) rather
    /// than the host's: the CLI maps these to exit status 2.
    pub fn is_usage(&self) -> bool {
        match self {
            RuntimeError::Store(e) => e.is_usage(),
            RuntimeError::Setup { .. } => false,
            _ => true,
        }
    }
}

/// Compiles (or loads from the cache) and links components. Shared by
/// every run; usable without a store, e.g. to inspect a component.
pub struct Loader {
    engine: wasmtime::Engine,
    linker: wasmtime::component::Linker<sandbox::Sandbox>,
    cache: cache::ComponentCache,
    compile: CompileOptions,
    /// Files loaded by this loader, by version: a workflow's 40 tasks of
    /// one component load it once.
    files: std::sync::Mutex<std::collections::HashMap<cache::FileKey, Action>>,
}

impl Loader {
    /// Compiled components live in `home/cache` unless `cache_dir` puts
    /// them elsewhere (several homes can share one cache).
    pub fn open(home: &Path, cache_dir: Option<&Path>) -> Result<Self, RuntimeError> {
        Self::open_with(home, cache_dir, EngineOptions::default())
    }

    /// [`Loader::open`] with engine options (the pooling allocator).
    pub fn open_with(
        home: &Path,
        cache_dir: Option<&Path>,
        options: EngineOptions,
    ) -> Result<Self, RuntimeError> {
        let setup = |message: String| RuntimeError::Setup {
            path: home.to_owned(),
            message,
        };
        let engine = engine::new_engine(&options).map_err(|e| setup(format!("{e:#}")))?;
        let linker = linker::linker(&engine).map_err(|e| setup(format!("{e:#}")))?;
        let cache_root = cache_dir
            .map(Path::to_owned)
            .unwrap_or_else(|| home.join("cache"));
        let cache = cache::ComponentCache::new(&cache_root, &engine)
            .map_err(|e| setup(format!("component cache: {e}")))?;
        Ok(Self {
            engine,
            linker,
            cache,
            compile: options.compile,
            files: Default::default(),
        })
    }

    /// Read, compile (or load from the cache) and link a component file.
    /// `.wat` text is accepted and converted to binary first.
    pub fn load(&self, path: &Path) -> Result<Action, RuntimeError> {
        let read = |source| RuntimeError::Read {
            path: path.to_owned(),
            source,
        };
        // Not read at all when over the size limit.
        let meta = std::fs::metadata(path).map_err(read)?;
        compile::check_size(&self.compile.limits, meta.len()).map_err(|e| {
            RuntimeError::CompileLimit {
                path: path.display().to_string(),
                message: e.0,
            }
        })?;
        let reference = path.display().to_string();
        let key = cache::FileKey::of(&meta);
        let files = || self.files.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(known) = files().get(&key) {
            let mut action = known.clone();
            action.reference = reference;
            return Ok(action);
        }
        let action = self.load_file(path, &reference, &key)?;
        files().insert(key, action.clone());
        Ok(action)
    }

    fn load_file(
        &self,
        path: &Path,
        reference: &str,
        key: &cache::FileKey,
    ) -> Result<Action, RuntimeError> {
        // An unchanged file whose compiled form is cached: neither read
        // nor hashed (its bytes are read if the store needs them).
        if let Some(digest) = self.cache.indexed(key) {
            if let Some(action) =
                self.link_compiled(reference, digest, action::Bytes::in_file(path))
            {
                return action;
            }
        }
        let bytes = std::fs::read(path).map_err(|source| RuntimeError::Read {
            path: path.to_owned(),
            source,
        })?;
        let action = self.load_bytes(reference, bytes)?;
        // Indexed only if the file did not change while it was read.
        if std::fs::metadata(path).is_ok_and(|m| cache::FileKey::of(&m) == *key) {
            self.cache.index(key, &action.digest);
        }
        Ok(action)
    }

    /// The component of `digest` if its compiled form is in the cache,
    /// linked without its bytes, which `blobs` gives when first asked for.
    pub(crate) fn load_compiled(
        &self,
        reference: &str,
        digest: &str,
        blobs: &world::Blobs,
    ) -> Option<Action> {
        let digest = wasmflow_store::Digest::parse(digest)?;
        let bytes = action::Bytes::Kept(Arc::new((blobs.clone(), Default::default())));
        self.link_compiled(reference, digest, bytes)?.ok()
    }

    /// `digest`'s compiled form from the cache, linked, its bytes where
    /// `bytes` says; None when the cache does not hold it.
    fn link_compiled(
        &self,
        reference: &str,
        digest: wasmflow_store::Digest,
        bytes: action::Bytes,
    ) -> Option<Result<Action, RuntimeError>> {
        let compiled = self.cache.compiled(&self.engine, &digest)?;
        Some(action::link(
            &self.engine,
            &self.linker,
            reference,
            digest,
            bytes,
            &compiled,
        ))
    }

    /// Like [`Loader::load`], for bytes from elsewhere (a registry, a blob).
    pub fn load_bytes(&self, reference: &str, bytes: Vec<u8>) -> Result<Action, RuntimeError> {
        action::load(
            &self.engine,
            &self.linker,
            &self.cache,
            &self.compile,
            reference,
            bytes,
        )
    }
}

/// Where an action's secret parameters are: paths of JSON names from its
/// input object.
pub type SecretParams = Arc<Vec<Vec<String>>>;

/// What named a loaded action: the key of [`Runtime::loaded`].
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum LoadedFrom {
    /// A component (or workflow) file.
    Path(PathBuf),
    /// An `oci://` reference as written.
    Reference(String),
    /// A component digest (the component of a recorded execution).
    Digest(String),
}

/// The loader and the store, shared by every run.
#[derive(Clone)]
pub struct Runtime {
    inner: Arc<Inner>,
}

struct Inner {
    loader: Loader,
    store: Store,
    /// Components known to be in the store's blobs, so a warm execution
    /// does not ask sled again every time.
    stored_components: std::sync::Mutex<std::collections::HashSet<wasmflow_store::Digest>>,
    /// Actions loaded once for everyone holding this runtime (the
    /// scheduler's tasks, the server's re-runs), by what named them.
    loaded: std::sync::Mutex<std::collections::HashMap<LoadedFrom, Action>>,
    /// Where secret values come from.
    secrets: Arc<secrets::Secrets>,
    /// Where each component's secret parameters are, by digest.
    secret_params:
        std::sync::Mutex<std::collections::HashMap<wasmflow_store::Digest, SecretParams>>,
    _ticker: engine::EpochTicker,
}

impl Runtime {
    /// Open the runtime rooted at `home` (`WASMFLOW_HOME`): the store lives
    /// in `home/store`; see [`Loader::open`] for compiled components.
    pub fn open(home: &Path, cache_dir: Option<&Path>) -> Result<Self, RuntimeError> {
        Self::open_with(home, cache_dir, EngineOptions::default())
    }

    /// [`Runtime::open`] with engine options (the pooling allocator).
    pub fn open_with(
        home: &Path,
        cache_dir: Option<&Path>,
        options: EngineOptions,
    ) -> Result<Self, RuntimeError> {
        Self::open_at(Location::in_home(home), home, cache_dir, options)
    }

    /// [`Runtime::open_with`] on the store at `store` instead of `home`'s.
    pub fn open_at(
        store: Location,
        home: &Path,
        cache_dir: Option<&Path>,
        options: EngineOptions,
    ) -> Result<Self, RuntimeError> {
        // Opening the store is mostly I/O and building the engine and
        // linker is all CPU: overlap them, it is most of a short CLI run.
        // A process with a runtime writes, and may hold an embedded store
        // for long: it serves other processes' reads meanwhile.
        let opening = std::thread::spawn(move || {
            let store = Store::open_waiting(&store)?;
            store.serve_reads();
            Ok::<_, wasmflow_store::StoreError>(store)
        });
        let loader = Loader::open_with(home, cache_dir, options);
        let store = opening.join().expect("opening the store does not panic")?;
        let loader = loader?;
        let ticker = engine::EpochTicker::start(&loader.engine);
        Ok(Self {
            inner: Arc::new(Inner {
                loader,
                store,
                stored_components: Default::default(),
                loaded: Default::default(),
                secrets: Default::default(),
                secret_params: Default::default(),
                _ticker: ticker,
            }),
        })
    }

    pub fn store(&self) -> &Store {
        &self.inner.store
    }

    /// Keep `action`'s component in the store's blobs (once per component
    /// and runtime), so a replay never depends on the file still being
    /// where it was.
    pub fn keep_component(&self, action: &Action) -> Result<(), RuntimeError> {
        let mut known = self
            .inner
            .stored_components
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        if !known.contains(&action.digest) {
            if !self.store().has_blob(&action.digest)? {
                self.store().put_blob(&action.bytes()?)?;
            }
            known.insert(action.digest.clone());
        }
        Ok(())
    }

    /// The components this runtime has kept in the store (see
    /// [`Runtime::keep_component`]): a purge in this process must not
    /// delete them, since the runtime does not ask the store again.
    pub fn components_in_use(&self) -> std::collections::HashSet<String> {
        self.inner
            .stored_components
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
            .map(|d| d.to_string())
            .collect()
    }

    /// Read keys and secrets from `keys` (the datastore of this runtime's
    /// store): without one, an execution that references a key fails
    /// saying so, and env values given in clear are not sealed.
    pub fn use_keys(&self, keys: wasmflow_datastore::Datastore) {
        self.inner.secrets.use_keys(keys);
    }

    /// The datastore given by [`Runtime::use_keys`].
    pub fn keys(&self) -> Option<&wasmflow_datastore::Datastore> {
        self.inner.secrets.keys()
    }

    /// Secret values given for this process (`--secret NAME=VALUE` of a
    /// replay of a bundle from another machine): they take the place of
    /// the datastore's (by key name) and of values sealed elsewhere (by
    /// variable name).
    pub fn give_secrets(&self, values: std::collections::HashMap<String, String>) {
        self.inner.secrets.give(values);
    }

    /// Seal every env value of `grants` given in clear (see
    /// [`Runtime::use_keys`]): what a record keeps instead of the value.
    pub fn seal(&self, grants: &mut wasmflow_store::Grants) -> Result<(), RuntimeError> {
        self.inner
            .secrets
            .seal(grants)
            .map_err(|source| RuntimeError::Secret {
                at: String::new(),
                source,
            })
    }

    /// Where `action`'s secret parameters are (see
    /// [`inspect::secret_params`]): found once per component, and kept
    /// beside its compiled form so that a later process need not decode
    /// the component again.
    pub fn secret_params(&self, action: &Action) -> Result<SecretParams, RuntimeError> {
        let known = |m: &std::collections::HashMap<_, SecretParams>| m.get(&action.digest).cloned();
        let lock = || {
            self.inner
                .secret_params
                .lock()
                .unwrap_or_else(|e| e.into_inner())
        };
        if let Some(p) = known(&lock()) {
            return Ok(p);
        }
        let cache = &self.inner.loader.cache;
        let paths = match cache.secret_params(&action.digest) {
            Some(p) => p,
            None => {
                let paths = inspect::secret_params(&action.bytes()?).map_err(|e| {
                    RuntimeError::InvalidComponent {
                        path: action.reference.clone(),
                        message: e.to_string(),
                    }
                })?;
                cache.keep_secret_params(&action.digest, &paths);
                paths
            }
        };
        let paths = Arc::new(paths);
        lock().insert(action.digest.clone(), paths.clone());
        Ok(paths)
    }

    /// `input` with the values of `action`'s secret parameters (`@secret`)
    /// sealed, as a record keeps them (see [`Runtime::use_keys`]).
    pub fn seal_input(
        &self,
        action: &Action,
        input: &mut serde_json::Value,
    ) -> Result<(), RuntimeError> {
        let paths = self.secret_params(action)?;
        if paths.is_empty() {
            return Ok(());
        }
        self.inner
            .secrets
            .seal_paths(input, &paths)
            .map_err(|(at, source)| RuntimeError::Secret {
                at: format!("input {at}: "),
                source,
            })
    }

    pub(crate) fn secrets(&self) -> &Arc<secrets::Secrets> {
        &self.inner.secrets
    }

    pub fn loader(&self) -> &Loader {
        &self.inner.loader
    }

    /// The action loaded earlier from `from` by anyone holding this
    /// runtime ([`Runtime::remember`]).
    pub fn loaded(&self, from: &LoadedFrom) -> Option<Action> {
        let loaded = self.inner.loaded.lock().unwrap_or_else(|e| e.into_inner());
        loaded.get(from).cloned()
    }

    /// Keep `action` as loaded from `from`, for the runtime's lifetime.
    /// Loading is the caller's (it may need a fetch or a blob first) and
    /// happens outside any lock: a compilation may take minutes.
    pub fn remember(&self, from: LoadedFrom, action: &Action) {
        let mut loaded = self.inner.loaded.lock().unwrap_or_else(|e| e.into_inner());
        loaded.insert(from, action.clone());
    }

    /// See [`Loader::load`].
    pub fn load(&self, path: &Path) -> Result<Action, RuntimeError> {
        self.inner.loader.load(path)
    }

    /// See [`Loader::load_bytes`].
    pub fn load_bytes(&self, reference: &str, bytes: Vec<u8>) -> Result<Action, RuntimeError> {
        self.inner.loader.load_bytes(reference, bytes)
    }

    /// Run `action` with `input`, record the execution, and return its record.
    ///
    /// Input is checked against the action's WIT types before anything is
    /// instantiated; an [`InputError`] leaves no record behind. Everything
    /// after that (traps, timeouts, limits, the action's own `err`) ends up
    /// in the returned record's status.
    pub async fn run(
        &self,
        action: &Action,
        input: serde_json::Value,
        options: RunOptions,
    ) -> Result<ExecutionRecord, RuntimeError> {
        run::run(self, action, input, options).await
    }

    /// [`Runtime::run`] whose end is the caller's to write: the final
    /// record and its events are returned, not stored (`defer_flush` does
    /// not apply). A server writes the ends of many executions at once
    /// ([`wasmflow_store::Backend::flush_ended`]); nobody may hear that the
    /// execution ended before it is written.
    pub async fn run_unwritten(
        &self,
        action: &Action,
        input: serde_json::Value,
        options: RunOptions,
    ) -> Result<Ended, RuntimeError> {
        run::run_unwritten(self, action, input, options).await
    }

    /// Like [`Runtime::run`] without recording anything: check the input,
    /// instantiate, call, and return what happened. For dry runs, tests of
    /// actions, and measuring the sandbox itself.
    pub async fn execute(
        &self,
        action: &Action,
        input: &serde_json::Value,
        grants: &wasmflow_store::Grants,
        limits: &wasmflow_store::Limits,
    ) -> Result<Produced, InputError> {
        let params = action.check_input(input)?;
        Ok(run::execute(
            self,
            action,
            params,
            grants,
            limits,
            world::World::unrecorded(),
            crate::run::Control::default(),
        )
        .await)
    }

    pub(crate) fn engine(&self) -> &wasmtime::Engine {
        &self.inner.loader.engine
    }
}
