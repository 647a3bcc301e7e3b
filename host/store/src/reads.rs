//! Reading an embedded store that another process holds.
//!
//! sled lets one process open a store. Without more, `execution list`
//! fails while a `wasmflow run` of a long workflow (or `serve`) holds the
//! home, exactly when a user wants to look. So the process that holds an
//! embedded store answers reads for others: it listens on a Unix socket
//! in the store directory ([`SOCKET`], mode 0600: only this user), and a
//! reader that finds the store locked opens it through that socket
//! instead ([`Store::through_holder`]). The reader's handle,
//! [`ThroughHolder`], implements the read operations of [`Backend`] by
//! asking the holder, which answers from its own open store; every
//! write is refused with [`StoreError::Locked`] (the holder is the one
//! writer), so only commands that read are given such a handle.
//!
//! Protocol: one JSON request per line, one JSON answer per line
//! (`{"ok": value}` or `{"err": error}`); bytes as base64.
//!
//! The socket file is removed when the holder closes the store; one left
//! by a killed holder is replaced by the next one to open the store (it
//! holds the lock, so no one else can be serving), and a reader that
//! cannot connect gets the locked error it got before this existed.
//!
//! What it must not touch: any write path of the holder's store. The
//! service only calls read operations, and holds the store weakly: it
//! never keeps a store open that its owner closed.
//!
//! [`Store::through_holder`]: crate::Store::through_holder

use crate::error::StoreError;
use crate::event::Event;
use crate::record::{ExecutionId, ExecutionRecord};
use crate::store::{Backend, Digest, ListFilter, Listing, Queued, Unreadable};
use crate::{CheckReport, PurgeFilter, PurgeReport};
use base64::Engine as _;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::HashSet;
use std::io::{BufRead, BufReader, Write};
use std::os::fd::AsRawFd;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

/// The socket's name in the store directory.
pub const SOCKET: &str = "reads.sock";

/// A reader that stops asking for this long is dropped (a stuck client
/// never holds a thread of the holder for ever).
const IDLE: Duration = Duration::from_secs(60);

/// A holder starts answering reads this long after it opened the store: a
/// short run (most `wasmflow run`s end within it) never makes the socket,
/// and a reader that comes meanwhile waits for it (see `Store::open_to_read`).
const GRACE: Duration = Duration::from_millis(100);

/// How long a reader waits for one answer: the holder may be busy, and a
/// blob (a component) may be tens of megabytes.
const ANSWER: Duration = Duration::from_secs(120);

#[derive(Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
enum Request {
    Location,
    Get {
        id: ExecutionId,
    },
    FindPrefix {
        prefix: String,
    },
    Scan {
        filter: ListFilter,
    },
    Children {
        id: ExecutionId,
    },
    Len,
    Queued,
    QueueLen,
    Events {
        id: ExecutionId,
    },
    WorkflowLog {
        id: ExecutionId,
    },
    HasBlob {
        digest: String,
    },
    GetBlob {
        digest: String,
    },
    Blobs,
    Trigger {
        id: ExecutionId,
    },
    Triggers {
        unprocessed: bool,
        limit: usize,
    },
    Enforcements {
        instance: Option<ExecutionId>,
        limit: usize,
    },
}

/// An error as it crosses the socket: the kinds a reader's caller acts on
/// keep their kind, the rest their message.
#[derive(Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
enum WireError {
    NotFound(String),
    Ambiguous { prefix: String, count: usize },
    Other(String),
}

impl From<StoreError> for WireError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::NotFound(s) => WireError::NotFound(s),
            StoreError::Ambiguous { prefix, count } => WireError::Ambiguous { prefix, count },
            e => WireError::Other(e.to_string()),
        }
    }
}

impl From<WireError> for StoreError {
    fn from(e: WireError) -> Self {
        match e {
            WireError::NotFound(s) => StoreError::NotFound(s),
            WireError::Ambiguous { prefix, count } => StoreError::Ambiguous { prefix, count },
            WireError::Other(s) => StoreError::Other(s),
        }
    }
}

#[derive(Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
enum Answer {
    Ok(Value),
    Err(WireError),
}

/// A scan's result on the wire: unreadable records by id and problem.
#[derive(Serialize, Deserialize)]
struct WireListing {
    records: Vec<ExecutionRecord>,
    unreadable: Vec<(String, String)>,
}

#[derive(Serialize, Deserialize)]
struct WireQueued {
    seq: u64,
    id: ExecutionId,
    payload: String,
}

fn b64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

fn unb64(text: &str) -> Result<Vec<u8>, StoreError> {
    base64::engine::general_purpose::STANDARD
        .decode(text)
        .map_err(|e| StoreError::Other(format!("a reply from the store's holder: {e}")))
}

fn digest(text: &str) -> Result<Digest, StoreError> {
    Digest::parse(text).ok_or_else(|| StoreError::Other(format!("not a digest: {text}")))
}

/// The holder's side: answers reads of its store on [`SOCKET`] until
/// dropped (the store closes).
pub(crate) struct ReadService {
    socket: PathBuf,
    stop: Arc<AtomicBool>,
    /// The bound listener, shared so that closing can wake its accept
    /// through the descriptor: the socket file may be gone or another
    /// holder's by then (the home deleted or moved while it was open).
    listening: Arc<Mutex<Option<Listening>>>,
    accept: Option<std::thread::JoinHandle<()>>,
}

/// The listener and the socket file it made (device, inode): only that
/// file is removed at close, never one another holder made at the path.
struct Listening {
    listener: Arc<UnixListener>,
    file: (u64, u64),
}

impl ReadService {
    /// Serve reads of `store` at `dir/`[`SOCKET`]. The caller holds the
    /// store's lock, so a socket file already there is a dead holder's.
    /// The socket is made on the service's own thread, off the opener's
    /// path, after [`GRACE`] (a short `wasmflow run` should not pay for
    /// it); one that cannot be made (a path too long for a Unix socket)
    /// leaves reads refused, as before.
    pub(crate) fn start(dir: &Path, store: Weak<dyn Backend>) -> Option<Self> {
        let socket = dir.join(SOCKET);
        let stop = Arc::new(AtomicBool::new(false));
        let listening = Arc::new(Mutex::new(None));
        let (path, stopping, shared) = (socket.clone(), stop.clone(), listening.clone());
        let accept = std::thread::Builder::new()
            .name("wasmflow-reads".into())
            .spawn(move || {
                let deadline = std::time::Instant::now() + GRACE;
                while !stopping.load(Ordering::Acquire) {
                    match deadline.checked_duration_since(std::time::Instant::now()) {
                        Some(left) => std::thread::park_timeout(left),
                        None => break,
                    }
                }
                if stopping.load(Ordering::Acquire) {
                    return;
                }
                let _ = std::fs::remove_file(&path);
                let listener = match UnixListener::bind(&path) {
                    Ok(l) => Arc::new(l),
                    Err(e) => {
                        tracing::debug!("not serving reads at {}: {e}", path.display());
                        return;
                    }
                };
                let _ = std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600));
                let file = std::fs::metadata(&path).map_or((0, 0), |m| (m.dev(), m.ino()));
                {
                    // Published and checked under one lock: a stop either
                    // sees this listener (and wakes its accept) or came
                    // before, and the check here sees it.
                    let mut shared = shared.lock().unwrap_or_else(|e| e.into_inner());
                    if stopping.load(Ordering::Acquire) {
                        // Closed while binding: the file is this one's.
                        let _ = std::fs::remove_file(&path);
                        return;
                    }
                    *shared = Some(Listening {
                        listener: listener.clone(),
                        file,
                    });
                }
                while !stopping.load(Ordering::Acquire) {
                    let Ok((conn, _)) = listener.accept() else {
                        continue;
                    };
                    if stopping.load(Ordering::Acquire) {
                        break;
                    }
                    let store = store.clone();
                    let _ = std::thread::Builder::new()
                        .name("wasmflow-reader".into())
                        .spawn(move || serve(conn, &store));
                }
            })
            .ok()?;
        Some(Self {
            socket,
            stop,
            listening,
            accept: Some(accept),
        })
    }
}

impl Drop for ReadService {
    fn drop(&mut self) {
        let listening = {
            let shared = self.listening.lock().unwrap_or_else(|e| e.into_inner());
            self.stop.store(true, Ordering::Release);
            shared.as_ref().map(|l| (l.listener.clone(), l.file))
        };
        // Wake the accept loop so it sees the flag: shutting the listening
        // socket down ends a blocked accept (Linux), whatever became of
        // the socket file. Not bound yet: it sees the flag when it is; in
        // its grace: the unpark below.
        if let Some((listener, _)) = &listening {
            // SAFETY: shutdown(2) on a descriptor `listener` keeps open.
            unsafe { libc::shutdown(listener.as_raw_fd(), libc::SHUT_RDWR) };
        }
        if let Some(t) = self.accept.take() {
            t.thread().unpark();
            let _ = t.join();
        }
        let ours = std::fs::metadata(&self.socket).map(|m| (m.dev(), m.ino()));
        if let (Some((_, file)), Ok(found)) = (listening, ours) {
            if file == found {
                let _ = std::fs::remove_file(&self.socket);
            }
        }
    }
}

/// Answer one reader's requests until it hangs up or goes quiet.
fn serve(conn: UnixStream, store: &Weak<dyn Backend>) {
    let _ = conn.set_read_timeout(Some(IDLE));
    let Ok(mut out) = conn.try_clone() else {
        return;
    };
    for line in BufReader::new(conn).lines() {
        let Ok(line) = line else { return };
        let answer = match serde_json::from_str::<Request>(&line) {
            Ok(request) => match store.upgrade() {
                Some(store) => match answer(&*store, request) {
                    Ok(v) => Answer::Ok(v),
                    Err(e) => Answer::Err(e.into()),
                },
                None => Answer::Err(WireError::Other("the store is closing".into())),
            },
            Err(e) => Answer::Err(WireError::Other(format!("a request it cannot read: {e}"))),
        };
        let mut text = serde_json::to_vec(&answer).expect("answers serialize");
        text.push(b'\n');
        if out.write_all(&text).is_err() {
            return;
        }
    }
}

fn answer(store: &dyn Backend, request: Request) -> Result<Value, StoreError> {
    let json = |v: serde_json::Result<Value>| v.map_err(|e| StoreError::Other(e.to_string()));
    match request {
        Request::Location => Ok(Value::String(store.location())),
        Request::Get { id } => json(serde_json::to_value(store.get(id)?)),
        Request::FindPrefix { prefix } => json(serde_json::to_value(store.find_prefix(&prefix)?)),
        Request::Scan { filter } => {
            let listing = store.scan(&filter)?;
            json(serde_json::to_value(WireListing {
                records: listing.records,
                unreadable: listing
                    .unreadable
                    .iter()
                    .map(|u| (u.id.clone(), u.problem()))
                    .collect(),
            }))
        }
        Request::Children { id } => json(serde_json::to_value(store.children(id)?)),
        Request::Len => Ok(store.len()?.into()),
        Request::Queued => json(serde_json::to_value(
            store
                .queued()?
                .into_iter()
                .map(|q| WireQueued {
                    seq: q.seq,
                    id: q.id,
                    payload: b64(&q.payload),
                })
                .collect::<Vec<_>>(),
        )),
        Request::QueueLen => Ok(store.queue_len()?.into()),
        Request::Events { id } => json(serde_json::to_value(store.events(id)?)),
        Request::WorkflowLog { id } => Ok(store
            .workflow_log(id)?
            .iter()
            .map(|e| Value::String(b64(e)))
            .collect()),
        Request::HasBlob { digest: d } => Ok(store.has_blob(&digest(&d)?)?.into()),
        Request::GetBlob { digest: d } => Ok(store
            .get_blob(&digest(&d)?)?
            .map(|b| Value::String(b64(&b)))
            .unwrap_or(Value::Null)),
        Request::Blobs => Ok(store
            .blobs()?
            .iter()
            .map(|d| Value::String(d.to_string()))
            .collect()),
        Request::Trigger { id } => json(serde_json::to_value(store.trigger(id)?)),
        Request::Triggers { unprocessed, limit } => {
            json(serde_json::to_value(store.triggers(unprocessed, limit)?))
        }
        Request::Enforcements { instance, limit } => {
            json(serde_json::to_value(store.enforcements(instance, limit)?))
        }
    }
}

/// A reader's handle on a store another process holds: reads are asked
/// of the holder, writes refused ([`StoreError::Locked`]).
pub(crate) struct ThroughHolder {
    dir: PathBuf,
    location: String,
    conn: Mutex<(BufReader<UnixStream>, UnixStream)>,
}

impl ThroughHolder {
    /// Connect to the holder of the store in `dir`; `None` when nothing
    /// answers there (no holder serves reads).
    pub(crate) fn connect(dir: &Path) -> Option<Self> {
        let conn = UnixStream::connect(dir.join(SOCKET)).ok()?;
        conn.set_read_timeout(Some(ANSWER)).ok()?;
        let writer = conn.try_clone().ok()?;
        let mut held = Self {
            dir: dir.to_owned(),
            location: String::new(),
            conn: Mutex::new((BufReader::new(conn), writer)),
        };
        held.location = serde_json::from_value(held.ask(&Request::Location).ok()?).ok()?;
        Some(held)
    }

    fn ask(&self, request: &Request) -> Result<Value, StoreError> {
        let lost = |e: std::io::Error| StoreError::Io {
            at: self.dir.display().to_string(),
            cause: format!("asking the process that holds the store: {e}"),
        };
        let mut conn = self.conn.lock().unwrap_or_else(|e| e.into_inner());
        let (reader, writer) = &mut *conn;
        let mut text = serde_json::to_vec(request).expect("requests serialize");
        text.push(b'\n');
        writer.write_all(&text).map_err(lost)?;
        let mut line = String::new();
        if reader.read_line(&mut line).map_err(lost)? == 0 {
            return Err(lost(std::io::ErrorKind::UnexpectedEof.into()));
        }
        match serde_json::from_str::<Answer>(&line) {
            Ok(Answer::Ok(v)) => Ok(v),
            Ok(Answer::Err(e)) => Err(e.into()),
            Err(e) => Err(StoreError::Other(format!(
                "a reply from the store's holder it cannot read: {e}"
            ))),
        }
    }

    fn ask_as<T: serde::de::DeserializeOwned>(&self, request: &Request) -> Result<T, StoreError> {
        serde_json::from_value(self.ask(request)?).map_err(|e| {
            StoreError::Other(format!(
                "a reply from the store's holder it cannot read: {e}"
            ))
        })
    }

    fn refused(&self) -> StoreError {
        StoreError::Locked {
            path: self.dir.clone(),
        }
    }
}

impl Backend for ThroughHolder {
    fn location(&self) -> String {
        self.location.clone()
    }

    fn put(&self, _: &ExecutionRecord) -> Result<(), StoreError> {
        Err(self.refused())
    }

    fn put_unflushed(&self, _: &ExecutionRecord) -> Result<(), StoreError> {
        Err(self.refused())
    }

    fn flush(&self) -> Result<(), StoreError> {
        // Nothing was written through this handle.
        Ok(())
    }

    fn get(&self, id: ExecutionId) -> Result<Option<ExecutionRecord>, StoreError> {
        self.ask_as(&Request::Get { id })
    }

    fn find_prefix(&self, prefix: &str) -> Result<ExecutionRecord, StoreError> {
        self.ask_as(&Request::FindPrefix {
            prefix: prefix.to_owned(),
        })
    }

    fn scan(&self, filter: &ListFilter) -> Result<Listing, StoreError> {
        let wire: WireListing = self.ask_as(&Request::Scan {
            filter: filter.clone(),
        })?;
        Ok(Listing {
            records: wire.records,
            unreadable: wire
                .unreadable
                .into_iter()
                .map(|(id, problem)| Unreadable {
                    id,
                    error: StoreError::Other(problem),
                })
                .collect(),
        })
    }

    fn children(&self, id: ExecutionId) -> Result<Vec<ExecutionRecord>, StoreError> {
        self.ask_as(&Request::Children { id })
    }

    fn len(&self) -> Result<usize, StoreError> {
        self.ask_as(&Request::Len)
    }

    fn enqueue(&self, _: &ExecutionRecord, _: &[u8]) -> Result<u64, StoreError> {
        Err(self.refused())
    }

    fn queued(&self) -> Result<Vec<Queued>, StoreError> {
        let wire: Vec<WireQueued> = self.ask_as(&Request::Queued)?;
        wire.into_iter()
            .map(|q| {
                Ok(Queued {
                    seq: q.seq,
                    id: q.id,
                    payload: unb64(&q.payload)?,
                })
            })
            .collect()
    }

    fn dequeue(&self, _: u64) -> Result<(), StoreError> {
        Err(self.refused())
    }

    fn queue_len(&self) -> Result<usize, StoreError> {
        self.ask_as(&Request::QueueLen)
    }

    fn put_events(&self, _: ExecutionId, _: &[Event]) -> Result<(), StoreError> {
        Err(self.refused())
    }

    fn events(&self, id: ExecutionId) -> Result<Vec<Event>, StoreError> {
        self.ask_as(&Request::Events { id })
    }

    fn append_workflow_log(
        &self,
        _: ExecutionId,
        _: u32,
        _: &[Vec<u8>],
        _: bool,
    ) -> Result<(), StoreError> {
        Err(self.refused())
    }

    fn workflow_log(&self, id: ExecutionId) -> Result<Vec<Vec<u8>>, StoreError> {
        let wire: Vec<String> = self.ask_as(&Request::WorkflowLog { id })?;
        wire.iter().map(|e| unb64(e)).collect()
    }

    fn put_trigger(&self, _: &crate::TriggerInstance) -> Result<(), StoreError> {
        Err(self.refused())
    }

    fn put_trigger_new(&self, _: &crate::TriggerInstance) -> Result<bool, StoreError> {
        Err(self.refused())
    }

    fn trigger(&self, id: ExecutionId) -> Result<Option<crate::TriggerInstance>, StoreError> {
        self.ask_as(&Request::Trigger { id })
    }

    fn triggers(
        &self,
        unprocessed: bool,
        limit: usize,
    ) -> Result<Vec<crate::TriggerInstance>, StoreError> {
        self.ask_as(&Request::Triggers { unprocessed, limit })
    }

    fn put_enforcements(&self, _: &[crate::Enforcement]) -> Result<(), StoreError> {
        Err(self.refused())
    }

    fn purge_triggers(
        &self,
        _: std::time::SystemTime,
        _: bool,
    ) -> Result<(usize, usize), StoreError> {
        Err(self.refused())
    }

    fn enforcements(
        &self,
        instance: Option<ExecutionId>,
        limit: usize,
    ) -> Result<Vec<crate::Enforcement>, StoreError> {
        self.ask_as(&Request::Enforcements { instance, limit })
    }

    fn put_blob(&self, _: &[u8]) -> Result<Digest, StoreError> {
        Err(self.refused())
    }

    fn has_blob(&self, digest: &Digest) -> Result<bool, StoreError> {
        self.ask_as(&Request::HasBlob {
            digest: digest.to_string(),
        })
    }

    fn get_blob(&self, digest: &Digest) -> Result<Option<Vec<u8>>, StoreError> {
        let wire: Option<String> = self.ask_as(&Request::GetBlob {
            digest: digest.to_string(),
        })?;
        wire.map(|b| unb64(&b)).transpose()
    }

    fn blobs(&self) -> Result<Vec<Digest>, StoreError> {
        let wire: Vec<String> = self.ask_as(&Request::Blobs)?;
        wire.iter().map(|d| digest(d)).collect()
    }

    fn check(&self) -> Result<CheckReport, StoreError> {
        // A check reads every file of the store, which the holder may be
        // writing: it needs the store to itself.
        Err(self.refused())
    }

    fn purge(&self, _: &PurgeFilter, _: &HashSet<String>) -> Result<PurgeReport, StoreError> {
        Err(self.refused())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Store;
    use serde_json::json;

    /// Writes to the holder's own store, reads through its socket: the
    /// backend contract, with every read crossing the wire.
    struct Split {
        writer: Store,
        reader: ThroughHolder,
    }

    impl Backend for Split {
        fn location(&self) -> String {
            self.reader.location()
        }
        fn put(&self, r: &ExecutionRecord) -> Result<(), StoreError> {
            self.writer.put(r)
        }
        fn put_unflushed(&self, r: &ExecutionRecord) -> Result<(), StoreError> {
            self.writer.put_unflushed(r)
        }
        fn flush(&self) -> Result<(), StoreError> {
            self.writer.flush()
        }
        fn get(&self, id: ExecutionId) -> Result<Option<ExecutionRecord>, StoreError> {
            self.reader.get(id)
        }
        fn find_prefix(&self, prefix: &str) -> Result<ExecutionRecord, StoreError> {
            self.reader.find_prefix(prefix)
        }
        fn scan(&self, filter: &ListFilter) -> Result<Listing, StoreError> {
            self.reader.scan(filter)
        }
        fn children(&self, id: ExecutionId) -> Result<Vec<ExecutionRecord>, StoreError> {
            self.reader.children(id)
        }
        fn len(&self) -> Result<usize, StoreError> {
            self.reader.len()
        }
        fn enqueue(&self, r: &ExecutionRecord, payload: &[u8]) -> Result<u64, StoreError> {
            self.writer.enqueue(r, payload)
        }
        fn queued(&self) -> Result<Vec<Queued>, StoreError> {
            self.reader.queued()
        }
        fn dequeue(&self, seq: u64) -> Result<(), StoreError> {
            self.writer.dequeue(seq)
        }
        fn queue_len(&self) -> Result<usize, StoreError> {
            self.reader.queue_len()
        }
        fn put_events(&self, id: ExecutionId, events: &[Event]) -> Result<(), StoreError> {
            self.writer.put_events(id, events)
        }
        fn events(&self, id: ExecutionId) -> Result<Vec<Event>, StoreError> {
            self.reader.events(id)
        }
        fn append_workflow_log(
            &self,
            id: ExecutionId,
            seq: u32,
            entries: &[Vec<u8>],
            flush: bool,
        ) -> Result<(), StoreError> {
            self.writer.append_workflow_log(id, seq, entries, flush)
        }
        fn workflow_log(&self, id: ExecutionId) -> Result<Vec<Vec<u8>>, StoreError> {
            self.reader.workflow_log(id)
        }
        fn put_blob(&self, bytes: &[u8]) -> Result<Digest, StoreError> {
            self.writer.put_blob(bytes)
        }
        fn has_blob(&self, digest: &Digest) -> Result<bool, StoreError> {
            self.reader.has_blob(digest)
        }
        fn get_blob(&self, digest: &Digest) -> Result<Option<Vec<u8>>, StoreError> {
            self.reader.get_blob(digest)
        }
        fn blobs(&self) -> Result<Vec<Digest>, StoreError> {
            self.reader.blobs()
        }
        fn put_trigger(&self, t: &crate::TriggerInstance) -> Result<(), StoreError> {
            self.writer.put_trigger(t)
        }
        fn put_trigger_new(&self, t: &crate::TriggerInstance) -> Result<bool, StoreError> {
            self.writer.put_trigger_new(t)
        }
        fn trigger(&self, id: ExecutionId) -> Result<Option<crate::TriggerInstance>, StoreError> {
            self.reader.trigger(id)
        }
        fn triggers(
            &self,
            u: bool,
            limit: usize,
        ) -> Result<Vec<crate::TriggerInstance>, StoreError> {
            self.reader.triggers(u, limit)
        }
        fn put_enforcements(&self, e: &[crate::Enforcement]) -> Result<(), StoreError> {
            self.writer.put_enforcements(e)
        }
        fn purge_triggers(
            &self,
            before: std::time::SystemTime,
            dry: bool,
        ) -> Result<(usize, usize), StoreError> {
            self.writer.purge_triggers(before, dry)
        }
        fn enforcements(
            &self,
            i: Option<ExecutionId>,
            limit: usize,
        ) -> Result<Vec<crate::Enforcement>, StoreError> {
            self.reader.enforcements(i, limit)
        }
        fn check(&self) -> Result<CheckReport, StoreError> {
            self.writer.check()
        }
        fn purge(
            &self,
            filter: &PurgeFilter,
            in_use: &HashSet<String>,
        ) -> Result<PurgeReport, StoreError> {
            self.writer.purge(filter, in_use)
        }
    }

    /// The store in `dir`, serving reads (once this process's last handle
    /// on it let go).
    fn holder(dir: &Path) -> Store {
        let store = Store::new(crate::sled_store::reopen(dir));
        store.serve_reads();
        store
    }

    #[test]
    fn reads_through_the_holder_meet_the_contract() {
        let dirs = std::cell::RefCell::new(Vec::new());
        crate::contract::all(&|| {
            let dir = tempfile::tempdir().unwrap();
            let path = dir.path().to_owned();
            dirs.borrow_mut().push(dir);
            Box::new(move || {
                let writer = holder(&path);
                let reader = connect(&path);
                Store::new(Split { writer, reader })
            })
        });
    }

    #[test]
    fn a_reader_cannot_write_and_the_socket_goes_with_the_store() {
        let dir = tempfile::tempdir().unwrap();
        let store = holder(dir.path());
        let record = ExecutionRecord::new_action("a".into(), "sha256:00".into(), json!({}));
        store.put(&record).unwrap();
        let reader = through(dir.path());
        assert_eq!(reader.get(record.id).unwrap().unwrap().id, record.id);
        assert!(matches!(
            reader.find("ZZZZ"),
            Err(StoreError::NotFound(p)) if p == "ZZZZ"
        ));
        for refused in [
            reader.put(&record),
            reader.put_events(record.id, &[]),
            reader.put_blob(b"x").map(drop),
            reader.check().map(drop),
        ] {
            assert!(
                matches!(refused, Err(StoreError::Locked { .. })),
                "{refused:?}"
            );
        }
        // A second reader at once, while the first holds its connection.
        let second = through(dir.path());
        assert_eq!(second.len().unwrap(), 1);
        assert_eq!(
            std::fs::metadata(dir.path().join(SOCKET))
                .unwrap()
                .permissions()
                .mode()
                & 0o777,
            0o600
        );
        drop(store);
        assert!(!dir.path().join(SOCKET).exists());
        assert!(ThroughHolder::connect(dir.path()).is_none());
        // Asked after the holder closed: an error, not a hang.
        assert!(reader.len().is_err());
    }

    #[test]
    fn a_holder_that_closes_within_its_grace_makes_no_socket() {
        let dir = tempfile::tempdir().unwrap();
        drop(holder(dir.path()));
        std::thread::sleep(GRACE * 2);
        assert!(!dir.path().join(SOCKET).exists());
    }

    /// The home deleted or moved while a holder serves it (found when a
    /// `serve` whose home was deleted never exited): closing must not
    /// depend on the socket file, and must not remove a file at that path
    /// it did not make.
    #[test]
    fn a_holder_closes_whatever_became_of_its_socket_file() {
        let dir = tempfile::tempdir().unwrap();
        let store = holder(dir.path());
        drop(connect(dir.path()));
        let socket = dir.path().join(SOCKET);
        std::fs::remove_file(&socket).unwrap();
        std::fs::write(&socket, "someone else's").unwrap();
        let (done, closed) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            drop(store);
            let _ = done.send(());
        });
        closed
            .recv_timeout(Duration::from_secs(20))
            .expect("closing the store hangs once its socket file is gone");
        assert_eq!(std::fs::read_to_string(&socket).unwrap(), "someone else's");
    }

    /// A reader's connection to the holder of the store in `dir`, once it
    /// answers (after its grace).
    fn connect(dir: &Path) -> ThroughHolder {
        for _ in 0..200 {
            if let Some(held) = ThroughHolder::connect(dir) {
                return held;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        panic!("the holder of {} does not answer", dir.display());
    }

    /// A reader's handle on the store in `dir`.
    fn through(dir: &Path) -> Store {
        Store::new(connect(dir))
    }
}
