//! Durable execution records for wasmflow.
//!
//! This crate owns the on-disk store (sled) and the data model of what ran:
//! [`ExecutionRecord`], its [`Status`], the [`Grants`] and [`Limits`] it ran
//! under, and content-addressed blobs. It knows nothing of wasmtime,
//! workflows or the CLI: the runtime fills records in, front ends read them.
//!
//! Trees and keys (big-endian so scans come out in time order):
//! - `executions`: ULID (16 bytes) -> JSON record
//! - `by_status`: status byte + ULID -> ()
//! - `events`: ULID + sequence (u32) -> JSON event
//! - `blobs`: sha256 (32 bytes) -> bytes
//! - `children`: parent ULID + child ULID -> ()
//! - `workflow_log`: workflow ULID + sequence (u32) -> JSON transition (the
//!   scheduler's journal; opaque here)
//! - `queue`: sequence (u64) -> ULID + payload (a server's accepted
//!   executions until they end; the payload is opaque here)
//!
//! Values over a small limit are files beside sled (`files`), sled holding
//! a reference. `check` reads everything back, `purge` deletes old trees
//! and what only they used, `recovery` settles what a stopped process left
//! running, `reserve` keeps room to read a store on a full disk. It must
//! not patch sled's recovery, flush or fsync path (vendor/PATCHES.md).

mod bundle;
mod check;
mod event;
mod failure;
mod files;
mod lineage;
mod purge;
mod record;
mod recovery;
mod reserve;
mod store;

pub use bundle::{BundleError, ReplayBundle, BUNDLE_FORMAT, BUNDLE_VERSION};
pub use event::{
    ConnectOutcome, Datagram, Event, HttpOutcome, LookupOutcome, ProcessOutcome, Question,
    ReadOutcome, ReceiveOutcome, SendOutcome,
};

pub use check::{CheckReport, Damage};
pub use failure::code;
pub use lineage::Lineage;
pub use purge::{PurgeFilter, PurgeReport, Retention};
pub use record::{
    now, EnvGrant, ExecutionId, ExecutionRecord, Failure, Grants, Kind, Limits, LogLevel, LogLine,
    Mount, NetGrant, Progress, Status,
};
pub use store::{Digest, ListFilter, Queued, Store, StoreError};
