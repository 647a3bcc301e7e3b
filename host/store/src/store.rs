//! The store's interface: what the rest of wasmflow may ask of a store
//! ([`Backend`]), and the handle every other crate holds ([`Store`]).
//!
//! A backend keeps records (by id, by status, by parent), the answers each
//! execution received (events), workflow journals, a server's queue and
//! content-addressed blobs, and can check and purge itself. Everything
//! built from those operations alone (finding a record by a prefix of
//! its id after a full-id lookup, marking interrupted actions, replay
//! bundles, missing blobs) is written once, on [`Store`], for every
//! backend. sled (`sled_store`) is the one backend today; a second one
//! implements [`Backend`], passes [`crate::contract::all`], and adds a
//! [`Location`] variant that [`Store::open_at`] opens; nothing outside this
//! crate changes but the front ends' way of naming it (`--store URL`).
//!
//! Calls are synchronous and may block on I/O: async callers run them as
//! they run file I/O (`spawn_blocking` or `block_in_place`).

use crate::error::StoreError;
use crate::event::Event;
use crate::record::{ExecutionId, ExecutionRecord, Status};
use crate::{CheckReport, PurgeFilter, PurgeReport};
use sha2::{Digest as _, Sha256};
use std::collections::HashSet;
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// What a store does. Every method is one operation a caller relies on;
/// the durability each promises is part of its contract, as written on it.
///
/// Writes that point at a record (its status index, its queue entry, its
/// parent's children) must never be missing for a record that was
/// written: a reader checks or drops a stale pointer, it cannot find a
/// lost one.
pub trait Backend: Send + Sync {
    /// Where the store is, for messages: a directory or a URL.
    fn location(&self) -> String;

    // Records.

    /// Insert or update a record, keeping its status index and its
    /// parent's children in step; durable when this returns.
    fn put(&self, record: &ExecutionRecord) -> Result<(), StoreError>;
    /// Like [`Backend::put`], durable with the next flush or durable write
    /// instead of before returning: for states nothing depends on (an
    /// execution's transient `running`).
    fn put_unflushed(&self, record: &ExecutionRecord) -> Result<(), StoreError>;
    /// Make every write so far durable.
    fn flush(&self) -> Result<(), StoreError>;
    fn get(&self, id: ExecutionId) -> Result<Option<ExecutionRecord>, StoreError>;
    /// The one execution whose id (as text, upper case) starts with
    /// `prefix`: [`StoreError::NotFound`] for none,
    /// [`StoreError::Ambiguous`] with the count for more than one.
    fn find_prefix(&self, prefix: &str) -> Result<ExecutionRecord, StoreError>;
    /// Executions, newest first, up to `filter.limit` readable ones; a
    /// record that cannot be read is named in the listing, not an error
    /// (see [`Store::list`] for the strict form).
    fn scan(&self, filter: &ListFilter) -> Result<Listing, StoreError>;
    /// The executions whose parent is `id`, oldest first.
    fn children(&self, id: ExecutionId) -> Result<Vec<ExecutionRecord>, StoreError>;
    /// Number of executions in the store.
    fn len(&self) -> Result<usize, StoreError>;
    fn is_empty(&self) -> Result<bool, StoreError> {
        Ok(self.len()? == 0)
    }

    // The server's queue.

    /// Accept an execution: its queue entry and its (pending) record,
    /// the entry first. Durable with the next [`Backend::flush`]: callers
    /// batch many accepts into one flush before answering. Returns the
    /// entry's position.
    fn enqueue(&self, record: &ExecutionRecord, payload: &[u8]) -> Result<u64, StoreError>;
    /// Accept executions at once: [`Backend::enqueue`] for each, then a
    /// flush, so all are durable when this returns. Their entries'
    /// positions, in order. A backend where each write is a round trip
    /// makes it one.
    fn accept(&self, entries: &[(&ExecutionRecord, &[u8])]) -> Result<Vec<u64>, StoreError> {
        let seqs = entries
            .iter()
            .map(|(record, payload)| self.enqueue(record, payload))
            .collect::<Result<Vec<_>, _>>()?;
        self.flush()?;
        Ok(seqs)
    }
    /// The queue, oldest first.
    fn queued(&self) -> Result<Vec<Queued>, StoreError>;
    /// Drop a finished entry (not flushed: an entry that survives a crash
    /// names a record that is already final, and is dropped again).
    fn dequeue(&self, seq: u64) -> Result<(), StoreError>;
    /// Write ended executions ([`Backend::put_ended`]), make every write
    /// so far durable ([`Backend::flush`]), then drop these entries, whose
    /// records are final ([`Backend::dequeue`]). A backend whose writes
    /// become durable in the order they were made may do it all in one
    /// write, as long as no drop is durable before the records written
    /// ahead of it.
    fn flush_ended(
        &self,
        ended: &[(&ExecutionRecord, &[Event])],
        seqs: &[u64],
    ) -> Result<(), StoreError> {
        for (record, events) in ended {
            self.put_ended(record, events, false)?;
        }
        self.flush()?;
        seqs.iter().try_for_each(|seq| self.dequeue(*seq))
    }
    /// Entries in the queue (pending and running), not counting a shared
    /// queue's workflow tasks (see [`crate::SharedQueue::claim`]): what a
    /// queue's capacity bounds.
    fn queue_len(&self) -> Result<usize, StoreError>;
    /// The queue's leases, when many processes share this store and take
    /// work from it ([`crate::SharedQueue`]); `None` for a store with one
    /// opener, whose entries that process alone runs.
    fn shared_queue(&self) -> Option<&dyn crate::SharedQueue> {
        None
    }

    // What executions received.

    /// Store the answers an execution received, in order, replacing any
    /// stored for it before: an execution started over under the same id
    /// keeps only its last attempt's.
    fn put_events(&self, id: ExecutionId, events: &[Event]) -> Result<(), StoreError>;
    /// An ended execution: its answers ([`Backend::put_events`]), then
    /// its record, durably ([`Backend::put`]) or with the next flush
    /// ([`Backend::put_unflushed`]). A backend where each write is a round
    /// trip makes it one.
    fn put_ended(
        &self,
        record: &ExecutionRecord,
        events: &[Event],
        durable: bool,
    ) -> Result<(), StoreError> {
        self.put_events(record.id, events)?;
        match durable {
            true => self.put(record),
            false => self.put_unflushed(record),
        }
    }
    /// The answers an execution received, in the order the guest asked.
    fn events(&self, id: ExecutionId) -> Result<Vec<Event>, StoreError>;

    // Workflow journals (opaque entries, the scheduler's).

    /// Append entries to a workflow's journal at `seq`, `seq + 1`, ...;
    /// with `flush`, they and every earlier write are durable when this
    /// returns.
    fn append_workflow_log(
        &self,
        id: ExecutionId,
        seq: u32,
        entries: &[Vec<u8>],
        flush: bool,
    ) -> Result<(), StoreError>;
    /// A workflow's journal, in order.
    fn workflow_log(&self, id: ExecutionId) -> Result<Vec<Vec<u8>>, StoreError>;

    // The event bus.

    /// Keep a trigger instance, or mark it processed; durable when this
    /// returns (an instance is written before any rule sees it).
    fn put_trigger(&self, instance: &crate::TriggerInstance) -> Result<(), StoreError>;
    /// Keep a trigger instance unless one of its id is kept already (a
    /// timer's firing, which several servers may reach at once); durable
    /// when this returns; whether this call kept it.
    fn put_trigger_new(&self, instance: &crate::TriggerInstance) -> Result<bool, StoreError>;
    fn trigger(&self, id: ExecutionId) -> Result<Option<crate::TriggerInstance>, StoreError>;
    /// Trigger instances, newest first, up to `limit`; with `unprocessed`,
    /// only those some rule may still have to enforce, oldest first.
    fn triggers(
        &self,
        unprocessed: bool,
        limit: usize,
    ) -> Result<Vec<crate::TriggerInstance>, StoreError>;
    /// Keep enforcements (one per instance and rule: a second replaces
    /// the first), all durable when this returns.
    fn put_enforcements(&self, enforcements: &[crate::Enforcement]) -> Result<(), StoreError>;
    /// Delete the processed trigger instances received before `before`,
    /// with their enforcements (`execution purge`, `serve --retain`); the
    /// counts of each (what would go, with `dry_run`). Unprocessed ones
    /// are work still to do and stay.
    fn purge_triggers(
        &self,
        before: std::time::SystemTime,
        dry_run: bool,
    ) -> Result<(usize, usize), StoreError>;
    /// The enforcements of `instance`, by rule; without one, every
    /// enforcement, newest instance first, up to `limit`.
    fn enforcements(
        &self,
        instance: Option<ExecutionId>,
        limit: usize,
    ) -> Result<Vec<crate::Enforcement>, StoreError>;

    // Blobs.

    /// Store bytes under their sha256; storing the same bytes twice is free.
    fn put_blob(&self, bytes: &[u8]) -> Result<Digest, StoreError>;
    /// Whether a blob is stored, without reading it.
    fn has_blob(&self, digest: &Digest) -> Result<bool, StoreError>;
    fn get_blob(&self, digest: &Digest) -> Result<Option<Vec<u8>>, StoreError>;
    /// Every stored blob's digest, in digest order (`store copy` moves
    /// them all, referred to or not, so that counts match).
    fn blobs(&self) -> Result<Vec<Digest>, StoreError>;

    // Upkeep.

    /// Read everything back and say what is damaged, by id. Read-only.
    fn check(&self) -> Result<CheckReport, StoreError>;
    /// Delete what `filter` selects, whole workflow trees only, with the
    /// blobs nothing else refers to; blobs in `in_use` are kept.
    fn purge(
        &self,
        filter: &PurgeFilter,
        in_use: &HashSet<String>,
    ) -> Result<PurgeReport, StoreError>;
    /// Move a batch of finished history (whole ended trees, oldest first)
    /// out of the way of every command, when the store keeps more than its
    /// bound where each command looks; returns how many records moved
    /// (call again while it is not 0). Reads still find them. The embedded
    /// store would otherwise open its whole history in every command; by
    /// default nothing moves.
    fn archive_finished(&self) -> Result<usize, StoreError> {
        Ok(0)
    }

    // Other processes.

    /// Answer other processes' reads while this store is open, when only
    /// one process can open it (see `reads`); by default nothing.
    fn serve_reads(self: Arc<Self>) {}
}

/// What a scan found: the readable records, and the ones that are not.
#[derive(Debug, Default)]
pub struct Listing {
    pub records: Vec<ExecutionRecord>,
    pub unreadable: Vec<Unreadable>,
}

impl Listing {
    /// Several listings of one store (one per status asked for) as one:
    /// newest first, each execution once, none created before `since`,
    /// `limit` at most. Exact when each listing is the newest `limit` of
    /// its kind: the newest of a union are among the newest of each part,
    /// and `since` cuts every newest-first list at one point.
    pub fn merged(
        listings: Vec<Listing>,
        limit: usize,
        since: Option<std::time::SystemTime>,
    ) -> Listing {
        let mut out = Listing::default();
        for listing in listings {
            out.records.extend(listing.records);
            out.unreadable.extend(listing.unreadable);
        }
        out.records.sort_by_key(|r| std::cmp::Reverse(r.id));
        out.records.dedup_by_key(|r| r.id);
        if let Some(since) = since {
            out.records.retain(|r| r.created_at >= since);
        }
        out.records.truncate(limit);
        out
    }
}

/// A point in time as people write one for `--since`, `--before` or the
/// API's `since`/`until`: an age (`30d`: that long ago) or an RFC 3339 time.
pub fn parse_instant(s: &str) -> Result<std::time::SystemTime, String> {
    if let Ok(t) = humantime::parse_rfc3339_weak(s) {
        return Ok(t);
    }
    let age = humantime::parse_duration(s).map_err(|_| {
        "expected an age like 30d or 12h, or a time like 2026-11-01T00:00:00Z".to_owned()
    })?;
    Ok(std::time::SystemTime::now()
        .checked_sub(age)
        .unwrap_or(std::time::SystemTime::UNIX_EPOCH))
}

/// A record a scan passed over: its id (or key) and why.
#[derive(Debug)]
pub struct Unreadable {
    pub id: String,
    pub error: StoreError,
}

impl Unreadable {
    /// What is wrong with it, without the store-wide advice its error
    /// carries (a listing gives that once).
    pub fn problem(&self) -> String {
        match &self.error {
            StoreError::Damaged { detail, .. } => detail.clone(),
            StoreError::Corrupt { cause, .. } => format!("not a record ({cause})"),
            e => e.to_string(),
        }
    }
}

/// Where a store is: what a front end names to open one.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Location {
    /// The embedded store in this directory (sled).
    Dir(PathBuf),
    /// A PostgreSQL database: `postgres://USER[:PASSWORD]@HOST[:PORT]/DB`.
    Postgres(String),
}

impl Location {
    /// A wasmflow home's own store: `HOME/store`.
    pub fn in_home(home: &Path) -> Self {
        Location::Dir(home.join("store"))
    }

    /// What `--store` (or `WASMFLOW_STORE`) names: a `postgres://` or
    /// `postgresql://` URL, else a directory.
    pub fn parse(s: &str) -> Self {
        if s.starts_with("postgres://") || s.starts_with("postgresql://") {
            Location::Postgres(s.to_owned())
        } else {
            Location::Dir(PathBuf::from(s))
        }
    }

    /// What `store copy` names as either end: a `postgres://` URL, a
    /// store directory (one sled made), or a wasmflow home (its store is
    /// `DIR/store`, its tokens beside it). A directory that does not hold
    /// a store yet is taken as a home.
    pub fn home_or_store(s: &str) -> Self {
        match Self::parse(s) {
            Location::Dir(dir) if !dir.join("store").is_dir() && dir.join("conf").is_file() => {
                Location::Dir(dir)
            }
            Location::Dir(dir) => Self::in_home(&dir),
            url => url,
        }
    }

    /// Whether only one process at a time opens it (the embedded store):
    /// an execution left `running` there has nobody to finish it. On a
    /// shared store only an expired lease says so ([`crate::SharedQueue`]).
    pub fn is_exclusive(&self) -> bool {
        matches!(self, Location::Dir(_))
    }
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Location::Dir(dir) => write!(f, "{}", dir.display()),
            Location::Postgres(url) => f.write_str(&crate::postgres::redacted(url)),
        }
    }
}

/// How long a process waits for an embedded store that another process
/// holds, before saying it is [`StoreError::Locked`].
pub const LOCK_PATIENCE: std::time::Duration = std::time::Duration::from_secs(1);
const LOCK_RETRY: std::time::Duration = std::time::Duration::from_millis(20);

/// A store opened to be read ([`Store::open_to_read`]).
pub enum Opened {
    /// This process opened it.
    Own(Store),
    /// Another process holds it and answers this one's reads.
    ThroughHolder(Store),
}

impl Opened {
    pub fn store(&self) -> &Store {
        match self {
            Opened::Own(s) | Opened::ThroughHolder(s) => s,
        }
    }
}

/// The execution store: a handle on one [`Backend`]. Cheap to clone; all
/// clones share one store. The backend's operations are called through
/// it (`store.get(id)`); what is built from them is here.
#[derive(Clone)]
pub struct Store(Arc<dyn Backend>);

impl std::ops::Deref for Store {
    type Target = dyn Backend;

    fn deref(&self) -> &Self::Target {
        &*self.0
    }
}

impl Store {
    /// Open (creating if needed) the store at `location`.
    pub fn open_at(location: &Location) -> Result<Self, StoreError> {
        match location {
            Location::Dir(dir) => Self::open(dir),
            Location::Postgres(url) => Ok(Self::new(crate::postgres::PgStore::open(url)?)),
        }
    }

    /// Open (creating if needed) the embedded store in `dir` (sled).
    ///
    /// A damaged store is an error naming it ([`StoreError::Damaged`]),
    /// never a panic; a store in use by another process is
    /// [`StoreError::Locked`].
    pub fn open(dir: &Path) -> Result<Self, StoreError> {
        Ok(Self::new(crate::sled_store::SledStore::open(dir)?))
    }

    /// [`Store::open_at`] for a process that writes: an embedded store
    /// that another process holds for a moment (a reader: `execution
    /// list` takes the lock for milliseconds) is waited for, up to
    /// [`LOCK_PATIENCE`]; one held longer is [`StoreError::Locked`].
    pub fn open_waiting(location: &Location) -> Result<Self, StoreError> {
        Self::open_patiently(location, |store| store, |_| None)
    }

    /// Open the store at `location` to read it. An embedded store that
    /// another process holds is read through that process when it serves
    /// reads ([`Store::serve_reads`]): every read works, every write is
    /// refused as [`StoreError::Locked`]. A holder that does not serve
    /// (another reader, for a moment) is waited for, as in
    /// [`Store::open_waiting`].
    pub fn open_to_read(location: &Location) -> Result<Opened, StoreError> {
        Self::open_patiently(location, Opened::Own, |dir| {
            let held = crate::reads::ThroughHolder::connect(dir)?;
            Some(Opened::ThroughHolder(Self::new(held)))
        })
    }

    /// Open `location` as `opened` says; while another process holds it,
    /// take what `held` makes of that, or try again until
    /// [`LOCK_PATIENCE`] has passed.
    fn open_patiently<T>(
        location: &Location,
        opened: impl Fn(Self) -> T,
        held: impl Fn(&Path) -> Option<T>,
    ) -> Result<T, StoreError> {
        let deadline = std::time::Instant::now() + LOCK_PATIENCE;
        loop {
            match Self::open_at(location) {
                Err(StoreError::Locked { path }) => {
                    if let Some(t) = held(&path) {
                        return Ok(t);
                    }
                    if std::time::Instant::now() >= deadline {
                        return Err(StoreError::Locked { path });
                    }
                    std::thread::sleep(LOCK_RETRY);
                }
                result => return result.map(opened),
            }
        }
    }

    /// Answer other processes' reads of this store while this handle (or
    /// a clone) is open: for processes that hold an embedded store for
    /// long (a run, `serve`), so that `execution list` works meanwhile.
    /// Nothing for a store many processes open anyway.
    pub fn serve_reads(&self) {
        self.0.clone().serve_reads();
    }

    /// A handle on `backend`.
    pub fn new(backend: impl Backend + 'static) -> Self {
        Store(Arc::new(backend))
    }

    /// Find one execution by its full id or a unique prefix of it
    /// (case-insensitive, as ULIDs are).
    pub fn find(&self, id_or_prefix: &str) -> Result<ExecutionRecord, StoreError> {
        if let Ok(id) = id_or_prefix.parse::<ExecutionId>() {
            return self
                .get(id)?
                .ok_or_else(|| StoreError::NotFound(id_or_prefix.to_owned()));
        }
        let wanted = id_or_prefix.to_ascii_uppercase();
        if wanted.is_empty() || wanted.len() > 26 {
            return Err(StoreError::NotFound(id_or_prefix.to_owned()));
        }
        self.find_prefix(&wanted).map_err(|e| match e {
            // Named as the caller wrote it.
            StoreError::NotFound(_) => StoreError::NotFound(id_or_prefix.to_owned()),
            StoreError::Ambiguous { count, .. } => StoreError::Ambiguous {
                prefix: id_or_prefix.to_owned(),
                count,
            },
            e => e,
        })
    }

    /// Executions, newest first; any record that cannot be read is an
    /// error (the first one's). Front ends that show a list use
    /// [`Backend::scan`] and name the unreadable ones instead.
    pub fn list(&self, filter: &ListFilter) -> Result<Vec<ExecutionRecord>, StoreError> {
        let listing = self.scan(filter)?;
        match listing.unreadable.into_iter().next() {
            Some(u) => Err(u.error),
            None => Ok(listing.records),
        }
    }

    /// A blob by its `sha256:<hex>` text form.
    pub fn get_blob_str(&self, digest: &str) -> Result<Option<Vec<u8>>, StoreError> {
        match Digest::parse(digest) {
            Some(d) => self.get_blob(&d),
            None => Ok(None),
        }
    }

    /// The blobs `record` refers to (its component or workflow file, its
    /// events' payloads) that the store does not hold.
    pub fn missing_blobs(&self, record: &ExecutionRecord) -> Result<Vec<String>, StoreError> {
        let events = self.events(record.id)?;
        let mut out = Vec::new();
        for digest in crate::bundle::referenced(record, &events) {
            let held = match Digest::parse(&digest) {
                Some(d) => self.has_blob(&d)?,
                None => false,
            };
            if !held && !digest.is_empty() {
                out.push(digest);
            }
        }
        Ok(out)
    }
}

/// A `sha256:<hex>` content digest.
#[derive(Clone, PartialEq, Eq, Hash, Debug)]
pub struct Digest(pub [u8; 32]);

impl Digest {
    pub fn of(bytes: &[u8]) -> Self {
        Digest(Sha256::digest(bytes).into())
    }

    pub fn hex(&self) -> String {
        hex::encode(self.0)
    }

    /// Parse `sha256:<64 hex digits>`.
    pub fn parse(s: &str) -> Option<Self> {
        let hex = s.strip_prefix("sha256:")?;
        let mut out = [0u8; 32];
        hex::decode_to_slice(hex, &mut out).ok()?;
        Some(Digest(out))
    }
}

impl fmt::Display for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "sha256:{}", self.hex())
    }
}

/// Which executions `list` returns.
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
pub struct ListFilter {
    pub status: Option<Status>,
    pub limit: usize,
    /// Also list executions that ran as a workflow's tasks.
    pub children: bool,
    /// Only executions older than this one (paging: pass the last id of
    /// the previous page).
    pub before: Option<ExecutionId>,
    /// Only executions of this action or workflow (its `action` field).
    pub action: Option<String>,
}

impl Default for ListFilter {
    fn default() -> Self {
        Self {
            status: None,
            limit: 20,
            children: false,
            before: None,
            action: None,
        }
    }
}

/// An accepted execution waiting for (or held by) a server worker.
#[derive(Clone, Debug)]
pub struct Queued {
    /// Position in the queue: entries are taken in this order.
    pub seq: u64,
    pub id: ExecutionId,
    /// What the front end needs besides the record (opaque here).
    pub payload: Vec<u8>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{Duration, SystemTime};

    #[test]
    fn merged_listings_are_newest_first_once_within_since_and_limit() {
        let record = |n: u64| {
            let mut r = ExecutionRecord::new_action(
                format!("a{n}"),
                "sha256:00".into(),
                serde_json::json!({}),
            );
            r.created_at = SystemTime::UNIX_EPOCH + Duration::from_secs(1000 + n);
            r
        };
        // ids in creation order, as ULIDs are.
        let rs: Vec<ExecutionRecord> = (0..5).map(record).collect();
        let listing = |ns: &[usize]| Listing {
            records: ns.iter().rev().map(|&n| rs[n].clone()).collect(),
            unreadable: Vec::new(),
        };
        let names = |l: Listing| {
            l.records
                .iter()
                .map(|r| r.action.clone())
                .collect::<Vec<_>>()
        };
        let merged = Listing::merged(vec![listing(&[0, 2, 4]), listing(&[1, 2, 3])], 10, None);
        assert_eq!(names(merged), ["a4", "a3", "a2", "a1", "a0"]);
        let limited = Listing::merged(vec![listing(&[0, 2, 4]), listing(&[1, 3])], 2, None);
        assert_eq!(names(limited), ["a4", "a3"]);
        let since = SystemTime::UNIX_EPOCH + Duration::from_secs(1002);
        let recent = Listing::merged(vec![listing(&[0, 2, 4]), listing(&[1, 3])], 10, Some(since));
        assert_eq!(names(recent), ["a4", "a3", "a2"]);
    }
}
