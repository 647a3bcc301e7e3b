//! Compaction of the live database: a fresh copy when its file has grown.
//!
//! sled 0.34 gives back the room in its file only at the file's end.
//! Segments freed in the middle stay, and every open overwrites each free
//! segment with markers and fsyncs them (its recovery, which is not
//! patched: vendor/PATCHES.md). The live database churns: moves to the
//! archive delete from it, and a server's bursts outrun the moves. So its
//! file grew with the history that went through it, and every command
//! paid for that: 19 MB at 10,000 executions, 40 MB at 100,000 and 60 MB
//! at 1,000,000, with 1, 16 and 32 free segments (512 KiB each) zeroed by
//! every `execution list` (bench/RESULTS.md, session 27).
//!
//! So an open whose file has grown well past its size after the last
//! compaction ([`due`]) first rebuilds the database ([`rebuild`]): every
//! tree is copied into a new database in `compact.new/`, read back and
//! compared entry by entry, and flushed; its files are fsynced; a marker
//! (`compact.swap`, naming the files to exchange) is written durably; and
//! then the new files replace sled's old ones ([`finish`]). A crash before
//! the marker leaves the old database as it was (the next open deletes
//! `compact.new/`); a crash after it is finished by the next open before
//! sled is opened, so sled only ever opens the old database or the new
//! one, whole. Every open holds `open.lock` until it is done, so no other
//! process opens sled in the middle of an exchange. Value files (`files/`)
//! and the archive are not sled's, and stay where they are.
//!
//! Only sled's public API and renames are used; nothing here touches its
//! recovery, flush or fsync path.

use super::{classify, At, SledStore};
use crate::error::StoreError;
use serde::{Deserialize, Serialize};
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// The new database's directory, inside the store's.
const WORK: &str = "compact.new";

/// The marker: present from the moment the new database is complete and
/// durable until its files have replaced the old ones.
const MARKER: &str = "compact.swap";

/// Held by every open of the store (see the module doc).
const OPEN_LOCK: &str = "open.lock";

/// The default tree's key of the file's size right after the last
/// compaction (or when the store was first opened with this code).
const BASE: &[u8] = b"compacted-size";

/// The growth over that size that is worth a compaction: half the size,
/// and at least this much. A compaction copies the live database (10,000
/// records at most, see `archive::LIVE_MAX`); the growth costs every open.
const MIN_SLACK: u64 = 8 << 20;

/// What the marker names: the old database's snapshots, to be deleted,
/// and the new database's files and directories, to be moved into place.
#[derive(Serialize, Deserialize)]
struct Exchange {
    old_snapshots: Vec<String>,
    new_entries: Vec<String>,
}

/// `open.lock`, held (an advisory lock) while alive.
pub(super) struct OpenLock(#[allow(dead_code)] std::fs::File);

impl OpenLock {
    /// Take it, or [`StoreError::Locked`] while another process opens or
    /// compacts the store.
    pub(super) fn take(dir: &Path) -> Result<Self, StoreError> {
        let path = dir.join(OPEN_LOCK);
        let file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .map_err(|e| io(&path, "open", e))?;
        // SAFETY: flock on a descriptor this function owns.
        if unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) } != 0 {
            let e = std::io::Error::last_os_error();
            if e.kind() == std::io::ErrorKind::WouldBlock {
                return Err(StoreError::Locked {
                    path: dir.to_owned(),
                });
            }
            return Err(io(&path, "lock", e));
        }
        Ok(Self(file))
    }
}

fn io(path: &Path, what: &str, e: std::io::Error) -> StoreError {
    if super::is_no_space(&e) {
        return StoreError::NoSpace {
            path: path.to_owned(),
        };
    }
    StoreError::Io {
        at: path.display().to_string(),
        cause: format!("cannot {what}: {e}"),
    }
}

/// Finish an exchange a crash interrupted (the marker is there), or drop
/// the work of a compaction interrupted before it (no marker). Call with
/// [`OpenLock`] held, before sled opens `dir`.
pub(super) fn finish(dir: &Path) -> Result<(), StoreError> {
    let marker = dir.join(MARKER);
    let work = dir.join(WORK);
    let exchange = match std::fs::read(&marker) {
        Ok(bytes) => {
            serde_json::from_slice::<Exchange>(&bytes).map_err(|e| StoreError::Damaged {
                path: marker.clone(),
                detail: format!("the compaction marker is unreadable: {e}"),
            })?
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return remove_dir(&work, "remove an unfinished compaction");
        }
        Err(e) => return Err(io(&marker, "read", e)),
    };
    // Every step can be taken again after a crash in the middle of it.
    for name in &exchange.old_snapshots {
        if exchange.new_entries.contains(name) {
            continue; // replaced by the rename below
        }
        match std::fs::remove_file(dir.join(name)) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                return Err(io(&dir.join(name), "remove the old snapshot", e))
            }
            _ => {}
        }
    }
    for name in &exchange.new_entries {
        let from = work.join(name);
        let to = dir.join(name);
        match std::fs::symlink_metadata(&from) {
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue, // moved already
            Err(e) => return Err(io(&from, "read", e)),
            Ok(meta) if meta.is_dir() => remove_dir(&to, "remove the old directory")?,
            Ok(_) => {}
        }
        std::fs::rename(&from, &to)
            .map_err(|e| io(&to, "move the compacted file into place", e))?;
    }
    sync_dir(dir)?;
    remove_dir(&work, "remove")?;
    std::fs::remove_file(&marker).map_err(|e| io(&marker, "remove", e))?;
    sync_dir(dir)
}

/// Remove the directory `dir` and what it holds, if it is there.
fn remove_dir(dir: &Path, what: &str) -> Result<(), StoreError> {
    match std::fs::remove_dir_all(dir) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(io(dir, what, e)),
        _ => Ok(()),
    }
}

fn sync_dir(dir: &Path) -> Result<(), StoreError> {
    std::fs::File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| io(dir, "sync", e))
}

/// `WASMFLOW_COMPACT_SLACK` (bytes), if set: the growth that makes a
/// compaction due, instead of [`MIN_SLACK`] or half the size (0: every
/// open compacts, for tests).
fn slack_override(dir: &Path) -> Result<Option<u64>, StoreError> {
    match std::env::var("WASMFLOW_COMPACT_SLACK") {
        Err(_) => Ok(None),
        Ok(v) => v
            .trim()
            .parse::<u64>()
            .map(Some)
            .map_err(|_| StoreError::Open {
                at: dir.display().to_string(),
                cause: format!("WASMFLOW_COMPACT_SLACK={v:?} is not a number of bytes"),
            }),
    }
}

/// Whether the live database's file has grown enough past its size after
/// the last compaction to be compacted now. Never while the queue holds
/// entries: their keys come from sled's id generator, which starts again
/// in a new database. A store that has no size on record (made before
/// compactions) is compacted once it is over [`MIN_SLACK`].
pub(super) fn due(store: &SledStore) -> Result<bool, StoreError> {
    due_with(store, slack_override(&store.path)?)
}

/// [`due`], with the growth that makes a compaction due given (`None`:
/// half the size, [`MIN_SLACK`] at least).
fn due_with(store: &SledStore, slack: Option<u64>) -> Result<bool, StoreError> {
    let dir = store.path.as_path();
    let size = db_size(dir)?;
    let base = store.stored_count(BASE)?;
    let slack = slack.unwrap_or((base / 2).max(MIN_SLACK));
    // (sled may also have given back the file's end since: no growth.)
    let grown = size.saturating_sub(base);
    Ok(grown >= slack && store.queue.is_empty() && room_for(dir, size))
}

/// After a compaction that failed: wait for as much growth again before
/// the next try, rather than copying at every open.
pub(super) fn postpone(store: &SledStore) -> Result<(), StoreError> {
    let size = db_size(&store.path)?;
    store.db.insert(BASE, &size.to_be_bytes()).at(store)?;
    Ok(())
}

/// The size of the sled database file in `dir`.
fn db_size(dir: &Path) -> Result<u64, StoreError> {
    let db_file = dir.join("db");
    Ok(std::fs::metadata(&db_file)
        .map_err(|e| io(&db_file, "read", e))?
        .len())
}

/// Whether the file system holding `dir` has room for a copy of `size`
/// bytes and some to spare.
fn room_for(dir: &Path, size: u64) -> bool {
    let Ok(path) = std::ffi::CString::new(dir.as_os_str().as_encoded_bytes()) else {
        return false;
    };
    // SAFETY: statvfs fills the struct it is given; the path is a C string.
    let mut st: libc::statvfs = unsafe { std::mem::zeroed() };
    if unsafe { libc::statvfs(path.as_ptr(), &mut st) } != 0 {
        return false;
    }
    let free = (st.f_bavail as u64).saturating_mul(st.f_frsize as u64);
    free > size.saturating_mul(2).saturating_add(64 << 20)
}

/// Copy `store` (the live database, opened by this process alone) into a
/// new database, compare, flush and sync it, and write the marker; the
/// store is closed on return. Whatever this returns, [`finish`] runs next,
/// before sled opens the store again: it exchanges the files if the marker
/// was written, and drops the copy if not (an error before the marker
/// leaves the old database as it was).
pub(super) fn rebuild(store: SledStore) -> Result<(), StoreError> {
    let dir = store.path.to_path_buf();
    let work = dir.join(WORK);
    let copied = super::no_panic(&dir, || copy(&store, &work));
    drop(store);
    copied?;
    // sled's threads let go of a database a little after it is dropped;
    // its files move only once both have.
    wait_unlocked(&dir.join("db"))?;
    wait_unlocked(&work.join("db"))?;
    sync_tree(&work)?;
    let exchange = Exchange {
        old_snapshots: names(&dir, |n| n.starts_with("snap."))?,
        new_entries: names(&work, |_| true)?,
    };
    crate::private_file::replace(
        &dir.join(MARKER),
        &serde_json::to_vec(&exchange).expect("the marker always serializes"),
    )
    .map_err(|e| io(&dir.join(MARKER), "write", e))
}

/// Every tree of `store` into a new database at `work`, compared, with the
/// new size on record, flushed.
fn copy(store: &SledStore, work: &Path) -> Result<(), StoreError> {
    let segment = super::segment_size(&store.path);
    let new = sled::Config::new()
        .path(work)
        .segment_size(segment)
        .cache_capacity(super::PART_CACHE_CAPACITY)
        .flush_every_ms(None)
        .open()
        .map_err(|e| classify(work, e))?;
    let to = |e| classify(work, e);
    let names = store.db.tree_names();
    for name in &names {
        let from = store.db.open_tree(name).at(store)?;
        let into = new.open_tree(name).map_err(to)?;
        for kv in from.iter() {
            let (k, v) = kv.at(store)?;
            into.insert(k, v).map_err(to)?;
        }
    }
    new.flush().map_err(to)?;
    // Read back what was written and compare it with the original, entry
    // by entry: the old database goes only for an exact copy.
    for name in &names {
        let from = store.db.open_tree(name).at(store)?;
        let into = new.open_tree(name).map_err(to)?;
        let mut copy = into.iter();
        for kv in from.iter() {
            let (k, v) = kv.at(store)?;
            match copy.next().transpose().map_err(to)? {
                Some((ck, cv)) if ck == k && cv == v => {}
                _ => return Err(mismatch(work, name)),
            }
        }
        if copy.next().is_some() {
            return Err(mismatch(work, name));
        }
    }
    // The size sled's next open gives the file: it fills the last
    // segment out.
    let segment = segment as u64;
    let size = db_size(work)?.div_ceil(segment) * segment;
    new.insert(BASE, &size.to_be_bytes()).map_err(to)?;
    new.flush().map_err(to)?;
    Ok(())
}

fn mismatch(work: &Path, tree: &[u8]) -> StoreError {
    StoreError::Damaged {
        path: work.to_owned(),
        detail: format!(
            "the compacted copy of tree {:?} differs from the original",
            String::from_utf8_lossy(tree)
        ),
    }
}

/// Wait until no process holds sled's lock on `db` (this one's sled
/// threads, a moment after the database was dropped), for 5 s at most.
fn wait_unlocked(db: &Path) -> Result<(), StoreError> {
    let file = match std::fs::File::open(db) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(io(db, "open", e)),
    };
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        // SAFETY: flock on a descriptor this function owns; closing it
        // releases the lock.
        if unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) } == 0 {
            return Ok(());
        }
        if Instant::now() >= deadline {
            return Err(StoreError::Locked {
                path: db.to_owned(),
            });
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// fsync every file under `dir`, and the directories themselves.
fn sync_tree(dir: &Path) -> Result<(), StoreError> {
    for entry in std::fs::read_dir(dir).map_err(|e| io(dir, "read", e))? {
        let path: PathBuf = entry.map_err(|e| io(dir, "read", e))?.path();
        if path.is_dir() {
            sync_tree(&path)?;
        } else {
            std::fs::File::open(&path)
                .and_then(|f| f.sync_all())
                .map_err(|e| io(&path, "sync", e))?;
        }
    }
    sync_dir(dir)
}

/// The names of the entries of `dir` that `keep` says yes to.
fn names(dir: &Path, keep: impl Fn(&str) -> bool) -> Result<Vec<String>, StoreError> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(|e| io(dir, "read", e))? {
        let name = entry.map_err(|e| io(dir, "read", e))?.file_name();
        let name = name.to_string_lossy().into_owned();
        if keep(&name) {
            out.push(name);
        }
    }
    out.sort();
    Ok(out)
}

#[cfg(test)]
mod tests {
    //! A compaction keeps every entry of every tree, and one interrupted
    //! anywhere loses nothing.

    use super::*;
    use crate::record::ExecutionRecord;
    use crate::{Backend, Event, Outcome};
    use serde_json::json;

    type Dump = Vec<(Vec<u8>, Vec<(Vec<u8>, Vec<u8>)>)>;

    /// Every tree's entries, but the compaction's own size record.
    fn dump(store: &SledStore) -> Dump {
        let mut names = store.db.tree_names();
        names.sort();
        names
            .into_iter()
            .map(|name| {
                let tree = store.db.open_tree(&name).unwrap();
                let entries = tree
                    .iter()
                    .map(|kv| kv.unwrap())
                    .filter(|(k, _)| k != BASE)
                    .map(|(k, v)| (k.to_vec(), v.to_vec()))
                    .collect();
                (name.to_vec(), entries)
            })
            .collect()
    }

    /// 3,000 ended executions with events, then the first 2,000 deleted
    /// (as a move to the archive deletes them), a blob and a token-like
    /// default-tree entry: a database with room to give back.
    fn churned(dir: &Path) -> Dump {
        let store = super::super::reopen(dir);
        store.put_blob(b"a component").unwrap();
        let mut records = Vec::new();
        for n in 0..3000 {
            let mut record = ExecutionRecord::new_action(
                format!("a{n}"),
                "sha256:00".into(),
                json!({ "n": n, "pad": "x".repeat(600) }),
            );
            record.end(Outcome::succeeded(Some(json!(n))));
            let events = vec![Event::MonotonicClock { nanoseconds: n }];
            store.put_ended(&record, &events, false).unwrap();
            records.push(record);
        }
        let mut report = crate::PurgeReport::default();
        for record in &records[..2000] {
            store.delete_execution(record, false, &mut report).unwrap();
        }
        store.flush().unwrap();
        let before = dump(&store);
        assert!(before.iter().any(|(_, entries)| entries.len() == 1000));
        // The default tree (the live record count, the index flags) is
        // one of the trees copied and compared.
        assert!(before
            .iter()
            .any(|(name, entries)| name == b"__sled__default" && !entries.is_empty()));
        before
    }

    #[test]
    fn a_compaction_keeps_every_entry_and_gives_back_the_room() {
        let dir = tempfile::tempdir().unwrap();
        let before = churned(dir.path());
        let grown = db_size(dir.path()).unwrap();
        let store = super::super::reopen(dir.path());
        assert!(due_with(&store, Some(0)).unwrap(), "a grown store is due");
        rebuild(store).unwrap();
        finish(dir.path()).unwrap();
        assert!(!dir.path().join(MARKER).exists());
        assert!(!dir.path().join(WORK).exists());
        let store = super::super::reopen(dir.path());
        assert_eq!(dump(&store), before);
        let compacted = db_size(dir.path()).unwrap();
        assert!(
            compacted < grown / 2,
            "{compacted} bytes after compaction, {grown} before"
        );
        // Its size is on record: not due again until it grows.
        assert!(!due_with(&store, None).unwrap());
        // Still a store: it takes writes and reads them back.
        let more = ExecutionRecord::new_action("more".into(), String::new(), json!({}));
        store.put(&more).unwrap();
        drop(store);
        let store = super::super::reopen(dir.path());
        assert_eq!(store.get(more.id).unwrap().unwrap().action, "more");
    }

    #[test]
    fn an_exchange_interrupted_anywhere_is_finished_by_the_next_open() {
        // Interrupted after the marker, after each step of the exchange.
        for done in 0..4 {
            let dir = tempfile::tempdir().unwrap();
            let before = churned(dir.path());
            rebuild(super::super::reopen(dir.path())).unwrap();
            let exchange: Exchange =
                serde_json::from_slice(&std::fs::read(dir.path().join(MARKER)).unwrap()).unwrap();
            assert!(exchange.new_entries.contains(&"db".to_string()));
            if done >= 1 {
                for snap in &exchange.old_snapshots {
                    std::fs::remove_file(dir.path().join(snap)).unwrap();
                }
            }
            if done >= 2 {
                let work = dir.path().join(WORK);
                std::fs::rename(work.join("db"), dir.path().join("db")).unwrap();
            }
            if done >= 3 {
                std::fs::remove_dir_all(dir.path().join(WORK)).unwrap_or_default();
                std::fs::create_dir(dir.path().join(WORK)).unwrap();
            }
            let store = super::super::reopen(dir.path());
            assert_eq!(dump(&store), before, "interrupted after step {done}");
            assert!(!dir.path().join(MARKER).exists());
        }
    }

    #[test]
    fn a_compaction_interrupted_before_its_marker_leaves_the_old_database() {
        let dir = tempfile::tempdir().unwrap();
        let before = churned(dir.path());
        let store = super::super::reopen(dir.path());
        // Half a copy: the new database, without the marker.
        copy(&store, &dir.path().join(WORK)).unwrap();
        drop(store);
        let store = super::super::reopen(dir.path());
        assert!(!dir.path().join(WORK).exists());
        assert_eq!(dump(&store), before);
    }

    #[test]
    fn a_store_with_queued_executions_is_not_compacted() {
        let dir = tempfile::tempdir().unwrap();
        churned(dir.path());
        let store = super::super::reopen(dir.path());
        let queued = ExecutionRecord::new_action("q".into(), String::new(), json!({}));
        store.enqueue(&queued, b"{}").unwrap();
        assert!(!due_with(&store, Some(0)).unwrap());
        let q = store.queued().unwrap();
        store.dequeue(q[0].seq).unwrap();
        assert!(due_with(&store, Some(0)).unwrap());
    }

    #[test]
    fn no_other_open_while_one_opens() {
        let dir = tempfile::tempdir().unwrap();
        let held = OpenLock::take(dir.path()).unwrap();
        assert!(matches!(
            SledStore::open(dir.path()),
            Err(StoreError::Locked { .. })
        ));
        drop(held);
        SledStore::open(dir.path()).unwrap();
    }
}
