//! The sled database: executions, their status index, and blobs.

use crate::files::Files;
use crate::record::{ExecutionId, ExecutionRecord, Status};
use crate::reserve::Reserve;
use sha2::{Digest as _, Sha256};
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error(
        "the store at {path} is in use by another wasmflow process (sled allows one process at a time); \
         stop it, or point WASMFLOW_HOME elsewhere; if it is `wasmflow serve`, talk to it \
         with --server URL (or WASMFLOW_SERVER)"
    )]
    Locked { path: PathBuf },
    // The cause is part of the message, not a `source`: printed once.
    #[error("cannot open the store at {path}: {cause}")]
    Open { path: PathBuf, cause: sled::Error },
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
    #[error("store I/O error at {path}: {cause}")]
    Io { path: PathBuf, cause: sled::Error },
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

/// sled's own default. Stores made before values moved to files used 64
/// KiB and keep it (see `segment_size`).
const SEGMENT_SIZE: usize = 512 << 10;

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
const IN_FILE: &[u8] = &[REFERENCE];

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
                | StoreError::Damaged { .. }
                | StoreError::NoSpace { .. }
        )
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
#[derive(Clone, Debug)]
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

/// The execution store. Cheap to clone; all clones share one database.
#[derive(Clone)]
pub struct Store {
    pub(crate) path: Arc<PathBuf>,
    pub(crate) files: Arc<Files>,
    pub(crate) inline_max: usize,
    pub(crate) db: sled::Db,
    pub(crate) executions: sled::Tree,
    pub(crate) by_status: sled::Tree,
    pub(crate) events: sled::Tree,
    pub(crate) blobs: sled::Tree,
    pub(crate) children: sled::Tree,
    pub(crate) workflow_log: sled::Tree,
    pub(crate) queue: sled::Tree,
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
            path,
            cause: source,
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
    fn at(self, store: &Store) -> Result<T, StoreError>;
}

impl<T> At<T> for sled::Result<T> {
    fn at(self, store: &Store) -> Result<T, StoreError> {
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

impl Store {
    /// Open (creating if needed) the store in `dir`.
    ///
    /// A damaged store is an error naming it ([`StoreError::Damaged`]),
    /// never a panic; a store in use by another process is
    /// [`StoreError::Locked`].
    pub fn open(dir: &Path) -> Result<Self, StoreError> {
        std::fs::create_dir_all(dir).map_err(|e| StoreError::Open {
            path: dir.to_owned(),
            cause: e.into(),
        })?;
        let reserve = Reserve::new(dir);
        let store = match no_panic(dir, || Self::open_sled(dir)) {
            // The disk is full: give back the space kept for this, so the
            // store can at least be read.
            Err(StoreError::NoSpace { .. }) if reserve.release() => {
                tracing::warn!(
                    "the disk holding {} is full: released the space wasmflow keeps back so the \
                     store can be read; free some space",
                    dir.display()
                );
                no_panic(dir, || Self::open_sled(dir))?
            }
            other => other?,
        };
        reserve.replenish();
        Ok(store)
    }

    fn open_sled(dir: &Path) -> Result<Self, StoreError> {
        remove_unfinished_snapshots(dir);
        let segment_size = segment_size(dir);
        let db = sled::Config::new()
            .path(dir)
            .segment_size(segment_size)
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
            workflow_log: tree("workflow_log")?,
            queue: tree("queue")?,
            path: Arc::new(dir.to_owned()),
            files: Arc::new(Files::new(dir)),
            inline_max: inline_max(segment_size),
            db,
        })
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

    /// The directory the store lives in.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Insert or update a record, keeping the status index in step, and
    /// flush: a record that was written is on disk when this returns.
    pub fn put(&self, record: &ExecutionRecord) -> Result<(), StoreError> {
        self.put_unflushed(record)?;
        self.db.flush().at(self)?;
        Ok(())
    }

    /// Like [`Store::put`] without waiting for the disk: for states that
    /// nothing depends on (an execution's transient `running`). sled writes
    /// it out within its flush interval, or with the next [`Store::put`].
    pub fn put_unflushed(&self, record: &ExecutionRecord) -> Result<(), StoreError> {
        self.write(record, None)
    }

    /// Accept an execution: its queue entry, then its (pending) record (a
    /// crash in between leaves an entry without a record, which `queued`'s
    /// callers drop). Not flushed: callers batch many accepts into one
    /// [`Store::flush`] before answering.
    pub fn enqueue(&self, record: &ExecutionRecord, payload: &[u8]) -> Result<u64, StoreError> {
        let seq = self.db.generate_id().at(self)?;
        let mut entry = Vec::with_capacity(16 + payload.len());
        entry.extend_from_slice(&record.id.key());
        entry.extend_from_slice(payload);
        self.write(record, Some((seq, entry)))?;
        Ok(seq)
    }

    /// The queue, oldest first.
    pub fn queued(&self) -> Result<Vec<Queued>, StoreError> {
        let mut out = Vec::new();
        for item in self.queue.iter() {
            let (k, v) = item.at(self)?;
            let seq = u64::from_be_bytes(k.as_ref().try_into().map_err(|_| StoreError::BadKey)?);
            let id = ExecutionId::from_key(&v[..16.min(v.len())]).ok_or(StoreError::BadKey)?;
            out.push(Queued {
                seq,
                id,
                payload: v[16..].to_vec(),
            });
        }
        Ok(out)
    }

    /// Drop a finished entry from the queue. Not flushed: an entry that
    /// survives a crash names a record that is already final, and is
    /// dropped again on the next start.
    pub fn dequeue(&self, seq: u64) -> Result<(), StoreError> {
        self.queue.remove(seq.to_be_bytes()).at(self)?;
        Ok(())
    }

    /// Entries in the queue (pending and running).
    pub fn queue_len(&self) -> usize {
        self.queue.len()
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
        self.by_status
            .insert(status_key(record.status, &key), &[])
            .at(self)?;
        if let Some(old) = self.executions.insert(key, bytes).at(self)? {
            // Only the status is needed to drop the old index entry (a
            // stale one is harmless if the old file cannot be read).
            let old = self.resolve(&old).unwrap_or_default();
            if let Ok(old) = serde_json::from_slice::<StatusOnly>(&old) {
                if old.status != record.status {
                    self.by_status
                        .remove(status_key(old.status, &key))
                        .at(self)?;
                }
            }
        }
        Ok(())
    }

    pub fn get(&self, id: ExecutionId) -> Result<Option<ExecutionRecord>, StoreError> {
        self.executions
            .get(id.key())
            .at(self)?
            .map(|bytes| self.decode(&id.key(), &bytes))
            .transpose()
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
        // ULID text order is key order: the matches start at the prefix
        // padded with the smallest digit and are contiguous from there.
        let Ok(first) = format!("{wanted:0<26}").parse::<ExecutionId>() else {
            return Err(StoreError::NotFound(id_or_prefix.to_owned()));
        };
        let mut found = None;
        let mut count = 0;
        for item in self.executions.range(first.key()..) {
            let (key, value) = item.at(self)?;
            match ExecutionId::from_key(&key) {
                Some(id) if id.to_string().starts_with(&wanted) => {
                    count += 1;
                    found = Some((key, value));
                }
                _ => break,
            }
        }
        match (count, found) {
            (1, Some((key, value))) => self.decode(&key, &value),
            (0, _) | (_, None) => Err(StoreError::NotFound(id_or_prefix.to_owned())),
            (count, _) => Err(StoreError::Ambiguous {
                prefix: id_or_prefix.to_owned(),
                count,
            }),
        }
    }

    /// Executions, newest first.
    pub fn list(&self, filter: &ListFilter) -> Result<Vec<ExecutionRecord>, StoreError> {
        let mut out = Vec::new();
        let wanted = |rec: &ExecutionRecord| {
            (filter.children || rec.parent.is_none())
                && filter.action.as_ref().is_none_or(|a| &rec.action == a)
        };
        match filter.status {
            None => {
                let range = match filter.before {
                    Some(b) => self.executions.range(..b.key()),
                    None => self.executions.iter(),
                };
                for item in range.rev() {
                    if out.len() >= filter.limit {
                        break;
                    }
                    let (key, value) = item.at(self)?;
                    let rec = self.decode(&key, &value)?;
                    if wanted(&rec) {
                        out.push(rec);
                    }
                }
            }
            Some(status) => {
                let start = [status.tag()];
                let end = match filter.before {
                    Some(b) => status_key(status, &b.key()).to_vec(),
                    None => vec![status.tag() + 1],
                };
                for item in self.by_status.range(&start[..]..&end[..]).rev() {
                    if out.len() >= filter.limit {
                        break;
                    }
                    let (key, _) = item.at(self)?;
                    if let Some(id) = ExecutionId::from_key(&key[1..]) {
                        if let Some(rec) = self.get(id)? {
                            // A stale entry (see `write`) is skipped.
                            if rec.status == status && wanted(&rec) {
                                out.push(rec);
                            }
                        }
                    }
                }
            }
        }
        Ok(out)
    }

    /// Flush every write so far to disk.
    pub fn flush(&self) -> Result<(), StoreError> {
        self.db.flush().at(self)?;
        Ok(())
    }

    /// The executions whose parent is `id`, oldest first.
    pub fn children(&self, id: ExecutionId) -> Result<Vec<ExecutionRecord>, StoreError> {
        let mut out = Vec::new();
        for item in self.children.scan_prefix(id.key()) {
            let (k, _) = item.at(self)?;
            if let Some(child) = ExecutionId::from_key(&k[16..]) {
                if let Some(rec) = self.get(child)? {
                    out.push(rec);
                }
            }
        }
        Ok(out)
    }

    /// Append entries to a workflow's journal at `seq`, `seq + 1`, ...;
    /// with `flush`, they are on disk when this returns (and so is every
    /// earlier write: sled's log is sequential).
    pub fn append_workflow_log(
        &self,
        id: ExecutionId,
        seq: u32,
        entries: &[Vec<u8>],
        flush: bool,
    ) -> Result<(), StoreError> {
        if let [entry] = entries {
            // One entry is atomic as a plain insert. A sled batch costs two
            // extra log-buffer writes (it rolls the buffer, then seals its
            // manifest in one of its own) and takes sled's global write
            // lock: most journal writes are single entries.
            let entry = self.stored(entry.clone())?;
            self.workflow_log
                .insert(&seq_key(&id.key(), seq)[..], entry)
                .at(self)?;
        } else {
            let mut batch = sled::Batch::default();
            for (i, e) in entries.iter().enumerate() {
                let e = self.stored(e.clone())?;
                batch.insert(&seq_key(&id.key(), seq + i as u32)[..], e);
            }
            self.workflow_log.apply_batch(batch).at(self)?;
        }
        if flush {
            self.db.flush().at(self)?;
        }
        Ok(())
    }

    /// A workflow's journal, in order.
    pub fn workflow_log(&self, id: ExecutionId) -> Result<Vec<Vec<u8>>, StoreError> {
        self.workflow_log
            .scan_prefix(id.key())
            .map(|item| Ok(self.resolve(&item.at(self)?.1)?.into_owned()))
            .collect()
    }

    /// Number of executions in the store.
    pub fn len(&self) -> usize {
        self.executions.len()
    }

    pub fn is_empty(&self) -> bool {
        self.executions.is_empty()
    }

    /// Store the answers an execution received, in order, replacing any
    /// stored for it before: an execution started over under the same id
    /// (a server's queue after a crash) keeps only its last attempt's, the
    /// ones its record's outcome came from.
    ///
    /// One sled write: the events go in as one JSON array under the
    /// execution's id and sequence number 0. (A batch of one key per event,
    /// after a scan for the last one, cost more than the rest of a trivial
    /// action's recording; stores written that way still read, see
    /// `events`.)
    pub fn put_events(&self, id: ExecutionId, events: &[crate::Event]) -> Result<(), StoreError> {
        let key = seq_key(&id.key(), 0);
        if events.is_empty() {
            self.events.remove(key).at(self)?;
            return Ok(());
        }
        let value = self.stored(serde_json::to_vec(events).expect("events always serialize"))?;
        self.events.insert(key, value).at(self)?;
        Ok(())
    }

    /// The answers an execution received, in the order the guest asked.
    pub fn events(&self, id: ExecutionId) -> Result<Vec<crate::Event>, StoreError> {
        let mut out = Vec::new();
        for item in self.events.scan_prefix(id.key()) {
            let (k, v) = item.at(self)?;
            let v = self.resolve(&v)?;
            if v.first() == Some(&b'[') {
                // Written whole by `put_events`: any entries after it are
                // one-event entries of an attempt it replaced.
                return event_entry(id, &k, &v);
            }
            out.extend(event_entry(id, &k, &v)?);
        }
        Ok(out)
    }

    /// Store bytes under their sha256; storing the same bytes twice is free.
    pub fn put_blob(&self, bytes: &[u8]) -> Result<Digest, StoreError> {
        let digest = Digest::of(bytes);
        if !self.has_blob(&digest)? {
            if bytes.len() > self.inline_max {
                self.files.put(bytes)?;
                self.blobs.insert(digest.0, IN_FILE).at(self)?;
            } else {
                self.blobs.insert(digest.0, bytes).at(self)?;
            }
        }
        Ok(digest)
    }

    /// Whether a blob is stored, without reading it.
    pub fn has_blob(&self, digest: &Digest) -> Result<bool, StoreError> {
        Ok(match self.blobs.get(digest.0).at(self)? {
            None => false,
            Some(v) if Self::blob_in_file(digest, &v) => self.files.contains(digest),
            Some(_) => true,
        })
    }

    /// Whether the `blobs` value `v` under `digest` says "in a file".
    pub(crate) fn blob_in_file(digest: &Digest, v: &[u8]) -> bool {
        v == IN_FILE && *digest != Digest::of(IN_FILE)
    }

    pub fn get_blob(&self, digest: &Digest) -> Result<Option<Vec<u8>>, StoreError> {
        match self.blobs.get(digest.0).at(self)? {
            None => Ok(None),
            Some(v) if Self::blob_in_file(digest, &v) => match self.files.get(digest)? {
                Some(bytes) => Ok(Some(bytes)),
                None => Err(StoreError::Damaged {
                    path: self.path.to_path_buf(),
                    detail: format!(
                        "blob {digest} is missing its file {}",
                        self.files.path(digest).display()
                    ),
                }),
            },
            Some(v) => Ok(Some(v.to_vec())),
        }
    }

    /// A blob by its `sha256:<hex>` text form.
    pub fn get_blob_str(&self, digest: &str) -> Result<Option<Vec<u8>>, StoreError> {
        match Digest::parse(digest) {
            Some(d) => self.get_blob(&d),
            None => Ok(None),
        }
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
    crate::check::parse_events(value).map_err(|cause| StoreError::Corrupt {
        key: format!(
            "{id} event {}",
            u32::from_be_bytes(key[16..20].try_into().unwrap_or([0; 4]))
        ),
        cause,
    })
}

pub(crate) fn decode(key: &[u8], bytes: &[u8]) -> Result<ExecutionRecord, StoreError> {
    serde_json::from_slice(bytes).map_err(|cause| StoreError::Corrupt {
        key: ExecutionId::from_key(key)
            .map(|id| id.to_string())
            .unwrap_or_else(|| hex::encode(key)),
        cause,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// Open the store in `dir`, which this process may have had open a
    /// moment ago: sled drops its file lock when its last IO thread lets go
    /// of the database, a little after the `Db` itself is dropped.
    fn reopen(dir: &Path) -> Store {
        for _ in 0..500 {
            match Store::open(dir) {
                Err(StoreError::Locked { .. }) => {
                    std::thread::sleep(std::time::Duration::from_millis(10))
                }
                other => return other.unwrap(),
            }
        }
        panic!("{} stayed locked for 5 s", dir.display());
    }

    fn record(n: u64) -> ExecutionRecord {
        ExecutionRecord::new_action(format!("a{n}"), "sha256:00".into(), json!({ "n": n }))
    }

    #[test]
    fn list_is_newest_first_and_filters_by_status() {
        let dir = tempfile::tempdir().unwrap();
        let store = reopen(dir.path());
        let mut ids = Vec::new();
        for n in 0..5 {
            let mut r = record(n);
            r.status = if n % 2 == 0 {
                Status::Succeeded
            } else {
                Status::Failed
            };
            store.put(&r).unwrap();
            ids.push(r.id);
            std::thread::sleep(std::time::Duration::from_millis(2));
        }
        let all = store
            .list(&ListFilter {
                status: None,
                limit: 10,
                children: false,
                ..Default::default()
            })
            .unwrap();
        let got: Vec<_> = all.iter().map(|r| r.id).collect();
        let mut want = ids.clone();
        want.reverse();
        assert_eq!(got, want);

        let failed = store
            .list(&ListFilter {
                status: Some(Status::Failed),
                limit: 10,
                children: false,
                ..Default::default()
            })
            .unwrap();
        assert_eq!(
            failed.iter().map(|r| r.id).collect::<Vec<_>>(),
            vec![ids[3], ids[1]]
        );

        let two = store
            .list(&ListFilter {
                status: None,
                limit: 2,
                children: false,
                ..Default::default()
            })
            .unwrap();
        assert_eq!(two.len(), 2);

        // Paging: older than the last of a page, with and without a status.
        let older = store
            .list(&ListFilter {
                before: Some(two[1].id),
                limit: 10,
                ..Default::default()
            })
            .unwrap();
        assert_eq!(older.iter().map(|r| r.id).collect::<Vec<_>>(), want[2..]);
        let older_failed = store
            .list(&ListFilter {
                status: Some(Status::Failed),
                before: Some(ids[3]),
                ..Default::default()
            })
            .unwrap();
        assert_eq!(
            older_failed.iter().map(|r| r.id).collect::<Vec<_>>(),
            vec![ids[1]]
        );
        let none = store
            .list(&ListFilter {
                action: Some("no-such-action".into()),
                ..Default::default()
            })
            .unwrap();
        assert!(none.is_empty());
    }

    #[test]
    fn the_queue_keeps_accept_order_and_survives_reopening() {
        let dir = tempfile::tempdir().unwrap();
        let ids: Vec<_> = {
            let store = reopen(dir.path());
            let ids: Vec<_> = (0..3)
                .map(|i| {
                    let mut r = ExecutionRecord::new_action(
                        format!("a{i}"),
                        "sha256:00".into(),
                        serde_json::json!({}),
                    );
                    r.status = Status::Pending;
                    store.enqueue(&r, format!("p{i}").as_bytes()).unwrap();
                    r.id
                })
                .collect();
            store.flush().unwrap();
            ids
        };
        let store = reopen(dir.path());
        let queued = store.queued().unwrap();
        assert_eq!(queued.iter().map(|q| q.id).collect::<Vec<_>>(), ids);
        assert_eq!(queued[1].payload, b"p1");
        assert_eq!(store.get(ids[0]).unwrap().unwrap().status, Status::Pending);
        store.dequeue(queued[0].seq).unwrap();
        assert_eq!(store.queue_len(), 2);
        assert_eq!(store.queued().unwrap()[0].id, ids[1]);
    }

    #[test]
    fn status_change_moves_the_index_entry() {
        let dir = tempfile::tempdir().unwrap();
        let store = reopen(dir.path());
        let mut r = record(1);
        r.status = Status::Running;
        store.put(&r).unwrap();
        r.status = Status::Succeeded;
        store.put(&r).unwrap();
        let running = store
            .list(&ListFilter {
                status: Some(Status::Running),
                limit: 10,
                children: false,
                ..Default::default()
            })
            .unwrap();
        assert!(running.is_empty());
        let done = store
            .list(&ListFilter {
                status: Some(Status::Succeeded),
                limit: 10,
                children: false,
                ..Default::default()
            })
            .unwrap();
        assert_eq!(done, vec![r]);
    }

    #[test]
    fn find_by_unique_prefix() {
        let dir = tempfile::tempdir().unwrap();
        let store = reopen(dir.path());
        let r = record(1);
        store.put(&r).unwrap();
        let id = r.id.to_string();
        assert_eq!(store.find(&id).unwrap().id, r.id);
        assert_eq!(store.find(&id[..20].to_lowercase()).unwrap().id, r.id);
        assert!(matches!(store.find("ZZZZ"), Err(StoreError::NotFound(_))));
        let r2 = record(2);
        store.put(&r2).unwrap();
        // Both share the timestamp's leading characters.
        assert!(matches!(
            store.find(&id[..2]),
            Err(StoreError::Ambiguous { count: 2, .. })
        ));
    }

    #[test]
    fn records_survive_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let r = record(7);
        {
            let store = reopen(dir.path());
            store.put(&r).unwrap();
        }
        let store = reopen(dir.path());
        assert_eq!(store.get(r.id).unwrap(), Some(r));
    }

    /// A CLI opens the store once per command, with segments freed and
    /// reused in between (vendor/PATCHES.md: a recovery shortcut lost
    /// records exactly here): every record and blob is read back at every
    /// open.
    #[test]
    fn many_short_opens_keep_everything() {
        let dir = tempfile::tempdir().unwrap();
        let mut kept: Vec<(ExecutionRecord, Vec<Digest>)> = Vec::new();
        let mut first = record(0);
        let opens = 60;
        for i in 0..opens {
            let store = reopen(dir.path());
            // Everything written so far is there.
            if i > 0 {
                assert_eq!(store.get(first.id).unwrap().as_ref(), Some(&first));
            }
            for (n, (r, digests)) in kept.iter().enumerate() {
                assert_eq!(
                    store.get(r.id).unwrap().as_ref(),
                    Some(r),
                    "record {n}, open {i}"
                );
                for (k, digest) in digests.iter().enumerate() {
                    let bytes = store.get_blob(digest).unwrap().unwrap();
                    assert_eq!(bytes, blob(n, k), "blob {n}.{k}, open {i}");
                }
            }
            // A new record and 120 KiB of small blobs (small values stay in
            // the log), and a rewrite of the first record, so that old
            // segments empty out and are reused.
            let r = record(i);
            store.put(&r).unwrap();
            first.input = json!({ "rewritten": i });
            store.put(&first).unwrap();
            let digests = (0..60)
                .map(|k| store.put_blob(&blob(i as usize, k)).unwrap())
                .collect();
            kept.push((r, digests));
            store.flush().unwrap();
            drop(store);
        }
    }

    /// 2 KiB that differ for every (n, k): equal blobs are stored once.
    fn blob(n: usize, k: usize) -> Vec<u8> {
        let mut x = (n as u64) << 32 | k as u64 | 1;
        (0..2 << 10)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                x as u8
            })
            .collect()
    }

    #[test]
    fn events_are_kept_in_order_and_replaced_by_a_later_attempt() {
        use crate::Event;
        let dir = tempfile::tempdir().unwrap();
        let store = reopen(dir.path());
        let a = record(1);
        let b = record(2);
        let ev = |n| Event::MonotonicClock { nanoseconds: n };
        store.put_events(a.id, &[ev(1), ev(2)]).unwrap();
        store.put_events(b.id, &[ev(9)]).unwrap();
        assert_eq!(store.events(a.id).unwrap(), vec![ev(1), ev(2)]);
        assert_eq!(store.events(b.id).unwrap(), vec![ev(9)]);
        store.put_events(a.id, &[ev(3)]).unwrap();
        assert_eq!(store.events(a.id).unwrap(), vec![ev(3)]);
        store.put_events(a.id, &[]).unwrap();
        assert_eq!(store.events(a.id).unwrap(), vec![]);
        assert_eq!(store.events(b.id).unwrap(), vec![ev(9)]);
    }

    #[test]
    fn events_stored_one_per_entry_still_read() {
        use crate::Event;
        let dir = tempfile::tempdir().unwrap();
        let store = reopen(dir.path());
        let a = record(1);
        let ev = |n| Event::MonotonicClock { nanoseconds: n };
        // The layout of stores written before events were grouped.
        for (i, e) in [ev(1), ev(2), ev(3)].iter().enumerate() {
            let key = seq_key(&a.id.key(), i as u32);
            store
                .events
                .insert(key, serde_json::to_vec(e).unwrap())
                .unwrap();
        }
        assert_eq!(store.events(a.id).unwrap(), vec![ev(1), ev(2), ev(3)]);
        // A later attempt under the same id replaces them all.
        store.put_events(a.id, &[ev(4)]).unwrap();
        assert_eq!(store.events(a.id).unwrap(), vec![ev(4)]);
    }

    #[test]
    fn a_store_keeps_the_segment_size_it_was_created_with() {
        let dir = tempfile::tempdir().unwrap();
        {
            // As created by a build that used 64 KiB segments.
            let db = sled::Config::new()
                .path(dir.path())
                .segment_size(64 << 10)
                .open()
                .unwrap();
            db.flush().unwrap();
        }
        let store = reopen(dir.path());
        store.put(&record(1)).unwrap();
        let fresh = tempfile::tempdir().unwrap();
        Store::open(fresh.path()).unwrap();
        assert_eq!(segment_size(fresh.path()), SEGMENT_SIZE);
        assert_eq!(segment_size(dir.path()), 64 << 10);
    }

    #[test]
    fn children_are_indexed_and_hidden_from_the_default_list() {
        let dir = tempfile::tempdir().unwrap();
        let store = reopen(dir.path());
        let parent = record(1);
        store.put(&parent).unwrap();
        let mut kids = Vec::new();
        for n in 2..4 {
            let mut c = record(n);
            c.parent = Some(parent.id);
            store.put(&c).unwrap();
            kids.push(c.id);
        }
        let got: Vec<_> = store
            .children(parent.id)
            .unwrap()
            .iter()
            .map(|r| r.id)
            .collect();
        assert_eq!(got, kids);
        let roots = store.list(&ListFilter::default()).unwrap();
        assert_eq!(
            roots.iter().map(|r| r.id).collect::<Vec<_>>(),
            vec![parent.id]
        );
        let all = store
            .list(&ListFilter {
                children: true,
                ..ListFilter::default()
            })
            .unwrap();
        assert_eq!(all.len(), 3);
    }

    #[test]
    fn workflow_log_appends_in_order() {
        let dir = tempfile::tempdir().unwrap();
        let store = reopen(dir.path());
        let a = record(1).id;
        store
            .append_workflow_log(a, 0, &[b"x".to_vec(), b"y".to_vec()], false)
            .unwrap();
        store
            .append_workflow_log(a, 2, &[b"z".to_vec()], true)
            .unwrap();
        assert_eq!(
            store.workflow_log(a).unwrap(),
            vec![b"x".to_vec(), b"y".to_vec(), b"z".to_vec()]
        );
        assert!(store.workflow_log(record(2).id).unwrap().is_empty());
    }

    #[test]
    fn large_values_are_files_and_read_back() {
        let dir = tempfile::tempdir().unwrap();
        let store = reopen(dir.path());
        let big = vec![7u8; 300_000];
        let digest = store.put_blob(&big).unwrap();
        let mut r = record(1);
        r.stdout = "x".repeat(100_000);
        r.component_digest = digest.to_string();
        store.put(&r).unwrap();
        store
            .append_workflow_log(
                r.id,
                0,
                &[format!("{{\"big\":\"{}\"}}", "y".repeat(9000)).into_bytes()],
                true,
            )
            .unwrap();
        drop(store);
        let store = reopen(dir.path());
        assert_eq!(store.get(r.id).unwrap(), Some(r.clone()));
        assert_eq!(store.get_blob(&digest).unwrap(), Some(big));
        assert_eq!(store.workflow_log(r.id).unwrap()[0].len(), 9000 + 10);
        // sled holds references only: no blob files of its own.
        assert!(
            std::fs::read_dir(dir.path().join("blobs")).map_or(true, |mut d| d.next().is_none())
        );
        let report = store.check().unwrap();
        assert!(report.is_clean(), "{report:?}");
        // A file changed behind the store's back is damage, by id.
        let file = store
            .files
            .path(&Digest::of(&serde_json::to_vec(&r).unwrap()));
        std::fs::write(&file, b"{}").unwrap();
        let report = store.check().unwrap();
        assert_eq!(report.damaged.len(), 1, "{report:?}");
        assert_eq!(report.damaged[0].item, format!("record {}", r.id));
        assert!(matches!(store.get(r.id), Err(StoreError::Damaged { .. })));
    }

    #[test]
    fn large_values_stored_inline_by_older_builds_still_read() {
        let dir = tempfile::tempdir().unwrap();
        let mut r = record(1);
        r.stdout = "z".repeat(50_000);
        {
            // As an older build wrote it: 64 KiB segments, the value in sled.
            let db = sled::Config::new()
                .path(dir.path())
                .segment_size(64 << 10)
                .open()
                .unwrap();
            db.open_tree("executions")
                .unwrap()
                .insert(r.id.key(), serde_json::to_vec(&r).unwrap())
                .unwrap();
            db.flush().unwrap();
        }
        let store = reopen(dir.path());
        assert_eq!(store.get(r.id).unwrap(), Some(r));
    }

    #[test]
    fn blobs_are_content_addressed() {
        let dir = tempfile::tempdir().unwrap();
        let store = reopen(dir.path());
        let a = store.put_blob(b"hello").unwrap();
        let b = store.put_blob(b"hello").unwrap();
        assert_eq!(a, b);
        assert!(store.has_blob(&a).unwrap());
        assert!(!store.has_blob(&Digest::of(b"other")).unwrap());
        assert_eq!(
            a.to_string(),
            "sha256:2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824"
        );
        assert_eq!(store.get_blob(&a).unwrap().as_deref(), Some(&b"hello"[..]));
        assert_eq!(Digest::parse(&a.to_string()), Some(a.clone()));
        assert_eq!(
            store.get_blob_str(&a.to_string()).unwrap().as_deref(),
            Some(&b"hello"[..])
        );
        assert_eq!(Digest::parse("sha256:zz"), None);
    }
}
