//! What can go wrong in a store, in terms a caller can act on.

use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error(
        "the store at {path} is in use by another wasmflow process (sled allows one process at a time); \
         stop it, or point WASMFLOW_HOME elsewhere; if it is `wasmflow serve`, talk to it \
         with --server URL (or WASMFLOW_SERVER)"
    )]
    Locked { path: PathBuf },
    // The cause is part of the message, not a `source`: printed once.
    // `at` is the store's location as `Backend::location` gives it (a
    // directory, or a database URL without its password).
    #[error("cannot open the store at {at}: {cause}")]
    Open { at: String, cause: String },
    /// The database holds a schema newer than this wasmflow knows: it was
    /// migrated by a newer wasmflow, and nothing is read or written.
    #[error(
        "the store at {at} has schema version {found}, newer than this wasmflow knows \
         ({known}); nothing was changed: upgrade wasmflow to use it"
    )]
    SchemaTooNew { at: String, found: i32, known: i32 },
    /// The store's files are not what sled wrote: truncated, overwritten,
    /// a blob file gone. Nothing is repaired or dropped silently.
    #[error(
        "the store at {path} is damaged: {detail}; nothing was changed \
         (`wasmflow store check` lists what is readable)"
    )]
    Damaged { path: PathBuf, detail: String },
    #[error(
        "no space left on the device holding the store at {path}: the write was not made \
         (everything written before it is kept); free some space and try again"
    )]
    NoSpace { path: PathBuf },
    #[error("store I/O error at {at}: {cause}")]
    Io { at: String, cause: String },
    #[error("execution record {key} is corrupt: {cause}")]
    Corrupt {
        key: String,
        cause: serde_json::Error,
    },
    #[error("no execution matches `{0}`")]
    NotFound(String),
    #[error("`{prefix}` matches {count} executions; give more of the id")]
    Ambiguous { prefix: String, count: usize },
    #[error("a queue entry has a malformed key or value")]
    BadKey,
    #[error("{0}")]
    Other(String),
}

impl StoreError {
    /// Whether the caller can fix it (a wrong id, a store in use or out of
    /// reach) rather than the store having failed: exit status 2, not 1.
    pub fn is_usage(&self) -> bool {
        matches!(
            self,
            StoreError::NotFound(_)
                | StoreError::Ambiguous { .. }
                | StoreError::Locked { .. }
                | StoreError::Open { .. }
                | StoreError::SchemaTooNew { .. }
                | StoreError::Damaged { .. }
                | StoreError::NoSpace { .. }
        )
    }
}
