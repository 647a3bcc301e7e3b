//! The embedded store: sled, with large values in files beside it.
//!
//! Trees and keys (big-endian so scans come out in time order):
//! - `executions`: ULID (16 bytes) -> JSON record
//! - `by_status`: status byte + ULID -> ()
//! - `events`: ULID + sequence (u32) -> JSON array of events
//! - `blobs`: sha256 (32 bytes) -> bytes
//! - `children`: parent ULID + child ULID -> ()
//! - `roots`, `roots_by_status`: ULID, and status byte + ULID, of the
//!   top-level executions only (`execution list` without `--all` reads
//!   these, not every task record); built once for a store made before
//!   them (`index_roots`)
//! - `workflow_log`: workflow ULID + sequence (u32) -> JSON transition (the
//!   scheduler's journal; opaque here)
//! - `queue`: sequence (u64) -> ULID + payload (a server's accepted
//!   executions until they end; the payload is opaque here)
//!
//! Values over a small limit are files beside sled (`files`), sled holding
//! a reference. Finished history moves out of these trees into the
//! archive's parts, sled databases of the same layout opened only when a
//! read reaches them (`archive`); an open whose file has grown with that
//! churn rewrites it first (`compact`). `check` reads everything back,
//! `purge` deletes old trees and what only they used, `reserve` keeps room
//! to read a store on a full disk. It must not patch sled's recovery,
//! flush or fsync path (vendor/PATCHES.md). Nothing outside this module
//! knows it is sled: the rest of the crate and of wasmflow use
//! [`crate::Backend`].

mod archive;
#[cfg(test)]
mod archive_tests;
mod backend;
mod bus;
mod check;
mod compact;
mod files;
mod purge;
mod reserve;
#[cfg(test)]
mod tests;

/// Open the store in `dir`, which this process may have had open a
/// moment ago (tests): sled drops its file lock when its last IO thread
/// lets go of the database, a little after the `Db` itself is dropped.
#[cfg(test)]
pub(crate) fn reopen(dir: &Path) -> SledStore {
    for _ in 0..500 {
        match SledStore::open(dir) {
            Err(StoreError::Locked { .. }) => {
                std::thread::sleep(std::time::Duration::from_millis(10))
            }
            other => return other.unwrap(),
        }
    }
    panic!("{} stayed locked for 5 s", dir.display());
}

use crate::error::StoreError;
use crate::record::{ExecutionId, ExecutionRecord, Status};
use crate::store::Digest;
use files::Files;
use reserve::Reserve;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// sled's own default. Stores made before values moved to files used 64
/// KiB and keep it (see `segment_size`).
const SEGMENT_SIZE: usize = 512 << 10;

/// sled's page cache, at most (its default is 1 GiB: a server's memory
/// grew with every execution it ran until it got there). Reads past it
/// come from the OS's page cache.
const CACHE_CAPACITY: u64 = 32 << 20;

/// An archive part's page cache: parts are read rarely, and several may
/// be open at once.
const PART_CACHE_CAPACITY: u64 = 4 << 20;

/// The default tree's key of the live database's record count (what
/// [`SledStore::archive_finished`] compares with its bound), written
/// with each flush. A count, not a constraint: records a crash or an
/// unflushed exit left uncounted only move the next archiving by as many.
const LIVE_RECORDS: &[u8] = b"live-records";

/// The largest value kept in sled itself; larger ones are files (see
/// `files.rs`). sled writes a message over a quarter of a segment to a
/// blob file of its own, and a leaf page holds up to 17 values: at 1/128
/// of the segment (4 KiB at 512 KiB) no page comes near that.
fn inline_max(segment_size: usize) -> usize {
    segment_size / 128
}

/// What sled holds for a value kept in a file: this byte, then the file's
/// sha256. JSON values (records, events, journal entries) never start with
/// 0xFF (it is not UTF-8).
const REFERENCE: u8 = 0xFF;

/// In the `blobs` tree (key: the content's sha256) the value of a blob kept
/// in a file is this one byte. A blob whose content is that byte has the
/// key sha256 of it, which tells the two apart.
pub(super) const IN_FILE: &[u8] = &[REFERENCE];

/// The segment size is fixed when a store is created (sled refuses another
/// one later), so an existing store keeps the size it was made with.
fn segment_size(dir: &Path) -> usize {
    std::fs::read(dir.join("conf"))
        .ok()
        .and_then(|conf| {
            String::from_utf8_lossy(&conf)
                .lines()
                .find_map(|l| l.strip_prefix("segment_size: ")?.trim().parse().ok())
        })
        .unwrap_or(SEGMENT_SIZE)
}

/// The execution store. Cheap to clone; all clones share one database.
#[derive(Clone)]
pub struct SledStore {
    /// Answering other processes' reads while this one holds the store
    /// (see `reads`). First, so it stops before the database closes.
    reads: Arc<std::sync::OnceLock<Option<crate::reads::ReadService>>>,
    pub(crate) path: Arc<PathBuf>,
    pub(crate) files: Arc<Files>,
    pub(crate) inline_max: usize,
    pub(crate) db: sled::Db,
    pub(crate) executions: sled::Tree,
    pub(crate) by_status: sled::Tree,
    pub(crate) events: sled::Tree,
    pub(crate) blobs: sled::Tree,
    pub(crate) children: sled::Tree,
    pub(crate) roots: sled::Tree,
    pub(crate) roots_by_status: sled::Tree,
    pub(crate) workflow_log: sled::Tree,
    pub(crate) queue: sled::Tree,
    /// The event bus (see `bus`): instances by id, the ids of those not
    /// yet processed, enforcements by instance id and rule name.
    pub(crate) triggers: sled::Tree,
    pub(crate) unprocessed: sled::Tree,
    pub(crate) enforcements: sled::Tree,
    /// Where finished history goes (see `archive`); `None` in a part.
    pub(crate) archive: Option<Arc<archive::Archive>>,
    /// Records added to (or, negative, deleted from) the live database
    /// since the count was last written (see `count_live`).
    uncounted: Arc<std::sync::atomic::AtomicI64>,
}

/// What a sled error means for the store at `path`.
pub(crate) fn classify(path: &Path, source: sled::Error) -> StoreError {
    let path = path.to_owned();
    match &source {
        sled::Error::Io(e) if is_no_space(e) => StoreError::NoSpace { path },
        sled::Error::Corruption { at, .. } => StoreError::Damaged {
            path,
            detail: match at {
                Some(at) => format!("sled found corrupted data at {at:?}"),
                None => "sled found corrupted data in its log or snapshot".into(),
            },
        },
        // A file sled needs (one of its blob files) is gone.
        sled::Error::Io(e) if e.kind() == std::io::ErrorKind::NotFound => StoreError::Damaged {
            path,
            detail: format!("a file of the store is missing ({e})"),
        },
        _ => StoreError::Io {
            at: path.display().to_string(),
            cause: source.to_string(),
        },
    }
}

/// sled writes a snapshot to `snap.LSN.generating` and renames it when it
/// is complete; an open interrupted in between (a full disk, `kill -9`)
/// leaves the unfinished file, which sled 0.34 then takes for the newest
/// snapshot and refuses as corrupt. Such a file is never a snapshot (the
/// rename is what makes one): drop it, and sled recovers from the last
/// complete snapshot and its log, as it would have before the attempt.
fn remove_unfinished_snapshots(dir: &Path) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for e in entries.flatten() {
        let name = e.file_name();
        let name = name.to_string_lossy();
        if name.starts_with("snap.") && name.ends_with(".generating") {
            let _ = std::fs::remove_file(e.path());
        }
    }
}

/// Whether an I/O error is the file system being full (sled's writes and
/// the value files alike).
pub(crate) fn is_no_space(e: &std::io::Error) -> bool {
    e.raw_os_error() == Some(libc::ENOSPC) || e.kind() == std::io::ErrorKind::StorageFull
}

/// sled results in this store's terms (the error names the store's path).
pub(crate) trait At<T> {
    fn at(self, store: &SledStore) -> Result<T, StoreError>;
}

impl<T> At<T> for sled::Result<T> {
    fn at(self, store: &SledStore) -> Result<T, StoreError> {
        self.map_err(|e| classify(&store.path, e))
    }
}

/// Run `f`, turning a panic inside sled (it panics on some damaged files
/// instead of returning an error) into [`StoreError::Damaged`]. The default
/// panic message is kept off stderr: the error is reported once, by the
/// caller.
pub(crate) fn no_panic<T>(
    path: &Path,
    f: impl FnOnce() -> Result<T, StoreError>,
) -> Result<T, StoreError> {
    let quiet = QuietPanics::new();
    let out = std::panic::catch_unwind(std::panic::AssertUnwindSafe(f));
    drop(quiet);
    out.unwrap_or_else(|panic| {
        let what = panic
            .downcast_ref::<String>()
            .cloned()
            .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
            .unwrap_or_else(|| "sled stopped on an unreadable file".into());
        Err(StoreError::Damaged {
            path: path.to_owned(),
            detail: format!("sled could not read its files ({what})"),
        })
    })
}

/// While alive, panics on this thread print nothing (they are caught and
/// reported as errors). Other threads keep the previous hook's output.
struct QuietPanics;

thread_local! {
    static QUIET: std::cell::Cell<u32> = const { std::cell::Cell::new(0) };
}

impl QuietPanics {
    fn new() -> Self {
        static HOOK: std::sync::Once = std::sync::Once::new();
        HOOK.call_once(|| {
            let previous = std::panic::take_hook();
            std::panic::set_hook(Box::new(move |info| {
                if QUIET.with(|q| q.get()) == 0 {
                    previous(info);
                }
            }));
        });
        QUIET.with(|q| q.set(q.get() + 1));
        QuietPanics
    }
}

impl Drop for QuietPanics {
    fn drop(&mut self) {
        QUIET.with(|q| q.set(q.get() - 1));
    }
}

impl SledStore {
    /// Open (creating if needed) the store in `dir`.
    ///
    /// A damaged store is an error naming it ([`StoreError::Damaged`]),
    /// never a panic; a store in use by another process is
    /// [`StoreError::Locked`].
    pub fn open(dir: &Path) -> Result<Self, StoreError> {
        std::fs::create_dir_all(dir).map_err(|e| StoreError::Open {
            at: dir.display().to_string(),
            cause: e.to_string(),
        })?;
        let _opening = compact::OpenLock::take(dir)?;
        compact::finish(dir)?;
        let store = Self::open_live(dir)?;
        if !compact::due(&store)? {
            return Ok(store);
        }
        let started = std::time::Instant::now();
        let rebuilt = compact::rebuild(store);
        compact::finish(dir)?;
        let store = Self::open_live(dir)?;
        match rebuilt {
            Ok(()) => tracing::debug!(
                "compacted the store in {} in {:?}",
                dir.display(),
                started.elapsed()
            ),
            // The old database is as it was: use it, and try again once
            // it has grown as much again.
            Err(e) => {
                tracing::warn!("could not compact the store in {}: {e}", dir.display());
                compact::postpone(&store)?;
            }
        }
        Ok(store)
    }

    /// [`SledStore::open`] once nothing is left to compact or exchange.
    fn open_live(dir: &Path) -> Result<Self, StoreError> {
        let reserve = Reserve::new(dir);
        let store = match no_panic(dir, || Self::open_sled(dir, true)) {
            // The disk is full: give back the space kept for this, so the
            // store can at least be read.
            Err(StoreError::NoSpace { .. }) if reserve.release() => {
                tracing::warn!(
                    "the disk holding {} is full: released the space wasmflow keeps back so the \
                     store can be read; free some space",
                    dir.display()
                );
                no_panic(dir, || Self::open_sled(dir, true))?
            }
            other => other?,
        };
        reserve.replenish();
        store.index_roots()?;
        store.count_records_once()?;
        Ok(store)
    }

    /// A store written before the live database kept its record count:
    /// count, once.
    fn count_records_once(&self) -> Result<(), StoreError> {
        if self.db.get(LIVE_RECORDS).at(self)?.is_none() {
            let n = self.executions.len() as u64;
            self.db.insert(LIVE_RECORDS, &n.to_be_bytes()).at(self)?;
        }
        Ok(())
    }

    /// Records in the live database (not its archive).
    pub(crate) fn live_records(&self) -> Result<usize, StoreError> {
        let saved = self.stored_count(LIVE_RECORDS)?;
        let unsaved = self.uncounted.load(std::sync::atomic::Ordering::Relaxed);
        Ok(saved.saturating_add_signed(unsaved) as usize)
    }

    /// The number the default tree holds under `key` (big-endian), 0 if
    /// none.
    pub(crate) fn stored_count(&self, key: &[u8]) -> Result<u64, StoreError> {
        Ok(self
            .db
            .get(key)
            .at(self)?
            .and_then(|v| <[u8; 8]>::try_from(v.as_ref()).ok())
            .map_or(0, u64::from_be_bytes))
    }

    /// Add `delta` to the live record count: in memory, written with the
    /// next flush (one write per flush, not one per record: the count's
    /// key is one sled page every writer would update).
    pub(crate) fn count_live(&self, delta: i64) {
        self.uncounted
            .fetch_add(delta, std::sync::atomic::Ordering::Relaxed);
    }

    /// Flush every write so far to disk, the record count's with them.
    pub(crate) fn flush_db(&self) -> Result<(), StoreError> {
        let delta = self.uncounted.swap(0, std::sync::atomic::Ordering::Relaxed);
        if delta != 0 {
            let added = self.db.update_and_fetch(LIVE_RECORDS, |old| {
                let n = old
                    .and_then(|v| <[u8; 8]>::try_from(v).ok())
                    .map_or(0, u64::from_be_bytes);
                Some(n.saturating_add_signed(delta).to_be_bytes().to_vec())
            });
            if let Err(e) = added {
                self.count_live(delta);
                return Err(classify(&self.path, e));
            }
        }
        self.db.flush().at(self)?;
        Ok(())
    }

    /// A store written before the top-level index: build it, once (every
    /// record read), and mark it built. Later writes keep it.
    fn index_roots(&self) -> Result<(), StoreError> {
        const BUILT: &[u8] = b"roots-indexed";
        if self.db.get(BUILT).at(self)?.is_some() {
            return Ok(());
        }
        for item in self.executions.iter() {
            let (key, value) = item.at(self)?;
            // An unreadable record is `check`'s to report; it is not listed.
            let Ok(rec) = self.decode(&key, &value) else {
                continue;
            };
            if rec.parent.is_none() {
                let key = rec.id.key();
                self.roots.insert(key, &[]).at(self)?;
                self.roots_by_status
                    .insert(status_key(rec.status, &key), &[])
                    .at(self)?;
            }
        }
        self.db.insert(BUILT, &[]).at(self)?;
        self.flush_db()?;
        Ok(())
    }

    /// sled's database in `dir`: the live one (with its archive), or a
    /// part of an archive.
    pub(crate) fn open_sled(dir: &Path, live: bool) -> Result<Self, StoreError> {
        remove_unfinished_snapshots(dir);
        let segment_size = segment_size(dir);
        let db = sled::Config::new()
            .path(dir)
            .segment_size(segment_size)
            .cache_capacity(match live {
                true => CACHE_CAPACITY,
                false => PART_CACHE_CAPACITY,
            })
            // A part is written only by moves, which flush it themselves:
            // no flusher thread of its own.
            .flush_every_ms(live.then_some(500))
            .open()
            .map_err(|source| match &source {
                // sled reports the advisory lock held by another process as
                // an I/O error wrapping WouldBlock.
                sled::Error::Io(e)
                    if e.kind() == std::io::ErrorKind::WouldBlock
                        || e.to_string().contains("could not acquire lock") =>
                {
                    StoreError::Locked {
                        path: dir.to_owned(),
                    }
                }
                _ => classify(dir, source),
            })?;
        let tree = |name: &str| db.open_tree(name).map_err(|e| classify(dir, e));
        Ok(Self {
            executions: tree("executions")?,
            by_status: tree("by_status")?,
            events: tree("events")?,
            blobs: tree("blobs")?,
            children: tree("children")?,
            roots: tree("roots")?,
            roots_by_status: tree("roots_by_status")?,
            workflow_log: tree("workflow_log")?,
            queue: tree("queue")?,
            triggers: tree("triggers")?,
            unprocessed: tree("unprocessed_triggers")?,
            enforcements: tree("enforcements")?,
            path: Arc::new(dir.to_owned()),
            files: Arc::new(Files::new(dir)),
            inline_max: inline_max(segment_size),
            archive: match live {
                true => Some(Arc::new(archive::Archive::new(dir)?)),
                false => None,
            },
            uncounted: Default::default(),
            db,
            reads: Default::default(),
        })
    }

    /// Answer other processes' reads of this store for as long as it is
    /// open (`execution list` while a run holds the home). Once.
    pub(crate) fn start_read_service(self: Arc<Self>) {
        let reads = self.reads.clone();
        reads.get_or_init(|| {
            let me: std::sync::Weak<dyn crate::Backend> = Arc::downgrade(&self) as _;
            crate::reads::ReadService::start(&self.path, me)
        });
    }

    /// What to give sled for `bytes`: the bytes, or a reference to the
    /// file they were written to (durably, before this returns).
    pub(crate) fn stored(&self, bytes: Vec<u8>) -> Result<Vec<u8>, StoreError> {
        if bytes.len() <= self.inline_max {
            return Ok(bytes);
        }
        let digest = self.files.put(&bytes)?;
        let mut r = Vec::with_capacity(33);
        r.push(REFERENCE);
        r.extend_from_slice(&digest.0);
        Ok(r)
    }

    /// The file a value in sled refers to, if it is a reference.
    pub(crate) fn reference(value: &[u8]) -> Option<Digest> {
        match value {
            [REFERENCE, rest @ ..] if rest.len() == 32 => {
                Some(Digest(rest.try_into().expect("32 bytes")))
            }
            _ => None,
        }
    }

    /// The bytes a value in sled stands for: itself, or its file's content.
    pub(crate) fn resolve<'a>(
        &self,
        value: &'a [u8],
    ) -> Result<std::borrow::Cow<'a, [u8]>, StoreError> {
        match Self::reference(value) {
            None => Ok(std::borrow::Cow::Borrowed(value)),
            Some(digest) => match self.files.get(&digest)? {
                Some(bytes) => Ok(std::borrow::Cow::Owned(bytes)),
                None => Err(StoreError::Damaged {
                    path: self.path.to_path_buf(),
                    detail: format!("file {} is missing", self.files.path(&digest).display()),
                }),
            },
        }
    }

    /// A record from its key and sled value.
    pub(crate) fn decode(&self, key: &[u8], value: &[u8]) -> Result<ExecutionRecord, StoreError> {
        decode(key, &self.resolve(value)?)
    }

    /// [`SledStore::decode`] for a reader of one record: a value file that
    /// is gone or changed is named with the record it held.
    pub(crate) fn decode_named(
        &self,
        key: &[u8],
        value: &[u8],
    ) -> Result<ExecutionRecord, StoreError> {
        self.decode(key, value).map_err(|e| match e {
            StoreError::Damaged { path, detail } => StoreError::Damaged {
                path,
                detail: format!("execution record {}: {detail}", key_text(key)),
            },
            e => e,
        })
    }

    /// One record write, without a sled transaction (a multi-tree
    /// transaction cost several times the write itself). Entries that
    /// point at the record go in first, so a crash or a concurrent writer
    /// leaves at most a stale pointer, which readers check against the
    /// record (`list` by status) or drop (`queued` without a record);
    /// never a record its queue entry or status index misses.
    fn write(
        &self,
        record: &ExecutionRecord,
        queue_entry: Option<(u64, Vec<u8>)>,
    ) -> Result<(), StoreError> {
        let key = record.id.key();
        let bytes = self.stored(serde_json::to_vec(record).expect("records always serialize"))?;
        if let Some((seq, entry)) = queue_entry {
            self.queue.insert(seq.to_be_bytes(), entry).at(self)?;
        }
        if let Some(parent) = record.parent {
            self.children
                .insert(pair_key(&parent.key(), &key), &[])
                .at(self)?;
        }
        let top = record.parent.is_none();
        self.by_status
            .insert(status_key(record.status, &key), &[])
            .at(self)?;
        if top {
            self.roots.insert(key, &[]).at(self)?;
            self.roots_by_status
                .insert(status_key(record.status, &key), &[])
                .at(self)?;
        }
        let Some(old) = self.executions.insert(key, bytes).at(self)? else {
            self.count_live(1);
            return Ok(());
        };
        // Only the status is needed to drop the old index entries (a
        // stale one is harmless if the old file cannot be read).
        let old = self.resolve(&old).unwrap_or_default();
        if let Ok(old) = serde_json::from_slice::<StatusOnly>(&old) {
            if old.status != record.status {
                self.by_status
                    .remove(status_key(old.status, &key))
                    .at(self)?;
                if top {
                    self.roots_by_status
                        .remove(status_key(old.status, &key))
                        .at(self)?;
                }
            }
        }
        Ok(())
    }

    /// Whether the `blobs` value `v` under `digest` says "in a file".
    pub(crate) fn blob_in_file(digest: &Digest, v: &[u8]) -> bool {
        v == IN_FILE && *digest != Digest::of(IN_FILE)
    }
}

#[derive(serde::Deserialize)]
struct StatusOnly {
    status: Status,
}

pub(crate) fn status_key(status: Status, key: &[u8; 16]) -> [u8; 17] {
    let mut out = [0u8; 17];
    out[0] = status.tag();
    out[1..].copy_from_slice(key);
    out
}

pub(crate) fn pair_key(a: &[u8; 16], b: &[u8; 16]) -> [u8; 32] {
    let mut out = [0u8; 32];
    out[..16].copy_from_slice(a);
    out[16..].copy_from_slice(b);
    out
}

pub(crate) fn seq_key(id: &[u8; 16], seq: u32) -> [u8; 20] {
    let mut out = [0u8; 20];
    out[..16].copy_from_slice(id);
    out[16..].copy_from_slice(&seq.to_be_bytes());
    out
}

/// One `events` entry's events. Entries are JSON arrays; stores written
/// before events were grouped hold one JSON object per entry.
fn event_entry(id: ExecutionId, key: &[u8], value: &[u8]) -> Result<Vec<crate::Event>, StoreError> {
    check::parse_events(value).map_err(|cause| StoreError::Corrupt {
        key: format!(
            "{id} event {}",
            u32::from_be_bytes(key[16..20].try_into().unwrap_or([0; 4]))
        ),
        cause,
    })
}

pub(crate) fn decode(key: &[u8], bytes: &[u8]) -> Result<ExecutionRecord, StoreError> {
    serde_json::from_slice(bytes).map_err(|cause| StoreError::Corrupt {
        key: key_text(key),
        cause,
    })
}

/// A record's key as its id (or hex, when it is not one).
pub(crate) fn key_text(key: &[u8]) -> String {
    ExecutionId::from_key(key)
        .map(|id| id.to_string())
        .unwrap_or_else(|| hex::encode(key))
}
