//! Durable execution records for wasmflow.
//!
//! This crate owns the store's interface ([`Backend`], and the [`Store`]
//! handle on one), its embedded backend (sled) and the data model of what
//! ran: [`ExecutionRecord`], its [`Status`], the [`Grants`] and [`Limits`]
//! it ran under, and content-addressed blobs. It knows nothing of wasmtime,
//! workflows or the CLI: the runtime fills records in, front ends read
//! them. Outside this crate nothing knows which backend is behind a
//! [`Store`].
//!
//! Where things live:
//! - `store`: the interface every backend implements ([`Backend`]) and the
//!   handle the rest of wasmflow holds ([`Store`]); `error`: [`StoreError`];
//! - `postgres`: the shared backend (PostgreSQL; schema and migrations,
//!   the queue, tokens), for stores many processes use at once;
//! - `sled_store`: the embedded backend (sled; its trees, files beside it,
//!   its check and purge);
//! - `record`, `event`, `failure`, `lineage`: what is stored, the same for
//!   every backend (their serde form is the stored JSON);
//! - `lease`: the queue's leases and workers' heartbeats, for a store many
//!   processes share ([`SharedQueue`]);
//! - `tokens`: where API tokens' hashes are kept ([`TokenBook`]; beside
//!   the store, not in it: they change while a server holds the store);
//!   `keys`: the datastore's keys, kept the same way ([`KeyBook`]);
//! - `recovery`, `bundle`, `upkeep`, `copy`: what is built on the interface
//!   alone (interrupted actions, replay bundles, check and purge reports,
//!   retention, moving a store to another backend).

mod bundle;
mod bus;
pub mod contract;
mod copy;
mod error;
mod event;
mod failure;
mod follow;
mod keys;
mod lease;
mod lineage;
mod postgres;
pub mod private_file;
mod reads;
mod record;
mod recovery;
mod sled_store;
mod store;
mod tokens;
mod upkeep;

pub use bundle::{BundleError, ReplayBundle, BUNDLE_FORMAT, BUNDLE_VERSION};
pub use bus::{Enforcement, EnforcementOutcome, TriggerInstance};
pub use event::{
    ConnectOutcome, Datagram, Event, HttpOutcome, KeyOutcome, LookupOutcome, ProcessOutcome,
    Question, ReadOutcome, ReceiveOutcome, SecretUse, SendOutcome,
};

pub use copy::{copy, copy_between, CopyError, CopyReport};
pub use error::StoreError;
pub use failure::code;
pub use follow::{Followed, Follower};
pub use keys::{key_book, KeyBook, KeyEntry};
pub use lease::{
    Cancel, Claimed, Claiming, Endings, Entry, Held, Lease, SharedQueue, Watch, Worker,
};
pub use lineage::Lineage;
pub use record::humantime_serde_compat as rfc3339_time;
pub use record::{
    now, EnvGrant, ExecutionId, ExecutionRecord, Failure, Grants, Kind, Limits, LogLevel, LogLine,
    Mount, NetGrant, Outcome, Progress, StartedBy, Status,
};
pub use store::{
    parse_instant, Backend, Digest, ListFilter, Listing, Location, Opened, Queued, Store,
    Unreadable, LOCK_PATIENCE,
};
pub use tokens::{token_book, TokenBook, TokenEntry};
pub use upkeep::{CheckReport, Damage, PurgeFilter, PurgeReport, Retention};
