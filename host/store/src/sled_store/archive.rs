//! The archive: finished history, moved out of the live database.
//!
//! sled 0.34 reads its whole page table when it opens a database, and a
//! leaf page holds at most 17 entries, so every command of a home paid for
//! the whole history (`execution list` took 13 ms at 10,000 executions and
//! 412 ms at 1,000,000). The live database therefore keeps what is recent
//! and what is unfinished: once it holds more than `live_max` records, the
//! oldest top-level executions whose whole tree ended (a tree moves whole,
//! as a purge takes it) move into *parts*, sled databases of about
//! `live_max / 2` records each under `archive/`. A part is opened only when
//! a read reaches past the live database; `archive/catalog.json` names
//! each part with the lowest and highest id it holds.
//!
//! A move is ordered so that a crash loses nothing: the trees are written
//! into the part and flushed, the catalog is replaced (written whole,
//! fsynced, renamed), and only then are the trees deleted from the live
//! database, each execution's events, journal and index entries before
//! its record and a tree's root last, as a purge deletes them. A crash in
//! between leaves a tree in both places with the same bytes: readers take
//! the live copy, and the next move moves what is left of it again.
//!
//! Blobs (components, recorded payloads) stay in the live database. A part
//! holds records, events, journals and their indexes, and its own files
//! for large values (hard links to the live database's). Only the process
//! holding the live database opens its parts (other processes ask it, see
//! `reads`), so a part's lock is never contended between processes.
//! Nothing here touches sled's recovery, flush or fsync path.

use super::{pair_key, status_key, At, SledStore};
use crate::error::StoreError;
use crate::record::{ExecutionId, ExecutionRecord, Status};
use crate::store::Backend;
use serde::{Deserialize, Serialize};
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// How many records the live database keeps before moving finished
/// history out (`WASMFLOW_LIVE_RECORDS` changes it).
pub(crate) const LIVE_MAX: usize = 10_000;

/// A tree moves only this long after its root ended: a workflow's last
/// writes (its journal's end, a server's queue entry) follow its record
/// within moments, and belong with it.
const SETTLED: Duration = Duration::from_secs(2);

/// Parts kept open at once; reads of older history open others in turn.
const OPEN_PARTS: usize = 4;

/// The catalog's file name, in `archive/`.
const CATALOG: &str = "catalog.json";

/// One part of the archive, as the catalog names it.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub(crate) struct Part {
    /// Its directory's name under `archive/` (six digits).
    pub seq: u32,
    /// The lowest and highest id of any record in it.
    pub min: ExecutionId,
    pub max: ExecutionId,
    /// The highest id of a top-level record in it (what a listing of
    /// top-level executions compares with).
    pub newest_root: ExecutionId,
    /// Records in it.
    pub records: usize,
    /// The statuses its records have (all terminal: only ended trees
    /// move), so that a listing by status opens only the parts that have
    /// it, and one by a status no part has (`running`: what a start-up
    /// looks for) none.
    pub statuses: Vec<Status>,
}

impl Part {
    pub(crate) fn may_hold(&self, id: ExecutionId) -> bool {
        self.min <= id && id <= self.max
    }

    pub(crate) fn may_have(&self, status: Status) -> bool {
        self.statuses.contains(&status)
    }
}

#[derive(Default, Serialize, Deserialize)]
struct Catalog {
    parts: Vec<Part>,
}

/// The archive of one live database (none for a part itself).
pub(crate) struct Archive {
    dir: PathBuf,
    /// The most records the live database keeps; a part holds about half.
    pub(crate) live_max: usize,
    /// The catalog, read on first use; this process is the only writer.
    catalog: Mutex<Option<Arc<Vec<Part>>>>,
    /// Parts open now, the most recently used last.
    open: Mutex<Vec<(u32, Arc<SledStore>)>>,
    /// One move at a time.
    moving: Mutex<()>,
}

impl Archive {
    pub(crate) fn new(store: &Path) -> Result<Self, StoreError> {
        Ok(Self::with_max(store, live_max(store)?))
    }

    /// With a bound of `live_max` records.
    pub(crate) fn with_max(store: &Path, live_max: usize) -> Self {
        Self {
            dir: store.join("archive"),
            live_max,
            catalog: Mutex::new(None),
            open: Mutex::new(Vec::new()),
            moving: Mutex::new(()),
        }
    }

    /// Keep moves out while the guard lives (a purge).
    pub(crate) fn hold_moves(&self) -> std::sync::MutexGuard<'_, ()> {
        lock(&self.moving)
    }

    /// The most records one move takes (trees are not split).
    fn batch(&self) -> usize {
        (self.live_max / 4).max(1)
    }

    fn part_max(&self) -> usize {
        (self.live_max / 2).max(1)
    }

    fn io(&self, what: &str, e: std::io::Error) -> StoreError {
        if super::is_no_space(&e) {
            return StoreError::NoSpace {
                path: self.dir.clone(),
            };
        }
        StoreError::Io {
            at: self.dir.join(CATALOG).display().to_string(),
            cause: format!("cannot {what}: {e}"),
        }
    }

    /// The parts, oldest first.
    pub(crate) fn parts(&self) -> Result<Arc<Vec<Part>>, StoreError> {
        let mut catalog = lock(&self.catalog);
        if catalog.is_none() {
            let path = self.dir.join(CATALOG);
            let parts = match std::fs::read(&path) {
                Ok(bytes) => {
                    serde_json::from_slice::<Catalog>(&bytes)
                        .map_err(|e| StoreError::Damaged {
                            path: path.clone(),
                            detail: format!("the archive's catalog is unreadable: {e}"),
                        })?
                        .parts
                }
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
                Err(e) => return Err(self.io("read the archive's catalog", e)),
            };
            *catalog = Some(Arc::new(parts));
        }
        Ok(catalog.clone().unwrap_or_default())
    }

    /// Record `part` in the catalog (replacing the entry of the same seq),
    /// durably.
    pub(crate) fn save(&self, part: Part) -> Result<(), StoreError> {
        let mut parts = Vec::clone(&*self.parts()?);
        match parts.iter_mut().find(|p| p.seq == part.seq) {
            Some(p) => *p = part,
            None => parts.push(part),
        }
        let bytes = serde_json::to_vec_pretty(&Catalog {
            parts: parts.clone(),
        })
        .expect("the catalog always serializes");
        crate::private_file::replace(&self.dir.join(CATALOG), &bytes)
            .map_err(|e| self.io("write the archive's catalog", e))?;
        *lock(&self.catalog) = Some(Arc::new(parts));
        Ok(())
    }

    /// Part `seq`, opened if it is not open already.
    pub(crate) fn open(&self, seq: u32) -> Result<Arc<SledStore>, StoreError> {
        let mut open = lock(&self.open);
        if let Some(i) = open.iter().position(|(s, _)| *s == seq) {
            let entry = open.remove(i);
            let part = entry.1.clone();
            open.push(entry);
            return Ok(part);
        }
        // Close the least recently used parts nobody is reading.
        while open.len() >= OPEN_PARTS {
            match open.iter().position(|(_, p)| Arc::strong_count(p) == 1) {
                Some(i) => drop(open.remove(i)),
                None => break,
            }
        }
        let part = Arc::new(self.open_part(seq)?);
        open.push((seq, part.clone()));
        Ok(part)
    }

    /// A part closed a moment ago keeps its lock until sled's threads let
    /// go of it: wait for that, not longer.
    fn open_part(&self, seq: u32) -> Result<SledStore, StoreError> {
        let dir = self.dir.join(format!("{seq:06}"));
        let deadline = std::time::Instant::now() + Duration::from_secs(5);
        loop {
            match super::no_panic(&dir, || SledStore::open_sled(&dir, false)) {
                Err(StoreError::Locked { .. }) if std::time::Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(10))
                }
                other => return other,
            }
        }
    }

    /// A part's directory made anew: one the catalog does not name holds
    /// only what a move interrupted before its catalog save wrote, all of
    /// it still in the live database. (Kept when this process has it open:
    /// its own failed move, rewritten by the next.)
    fn new_part(&self, seq: u32) -> Result<u32, StoreError> {
        let dir = self.dir.join(format!("{seq:06}"));
        let open = lock(&self.open).iter().any(|(s, _)| *s == seq);
        if !open && dir.exists() {
            std::fs::remove_dir_all(&dir).map_err(|e| self.io("clear an unfinished part", e))?;
        }
        Ok(seq)
    }

    /// The part to move more into: the newest, while it has room, else a
    /// new one.
    fn part_to_fill(&self) -> Result<(Part, Arc<SledStore>), StoreError> {
        let parts = self.parts()?;
        let part = match parts.last() {
            Some(p) if p.records < self.part_max() => p.clone(),
            last => Part {
                seq: self.new_part(last.map_or(0, |p| p.seq + 1))?,
                min: ExecutionId(ulid::Ulid::from(u128::MAX)),
                max: ExecutionId(ulid::Ulid::nil()),
                newest_root: ExecutionId(ulid::Ulid::nil()),
                records: 0,
                statuses: Vec::new(),
            },
        };
        let store = self.open(part.seq)?;
        Ok((part, store))
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// `WASMFLOW_LIVE_RECORDS`, or [`LIVE_MAX`] (for the store at `store`).
fn live_max(store: &Path) -> Result<usize, StoreError> {
    match std::env::var("WASMFLOW_LIVE_RECORDS") {
        Err(_) => Ok(LIVE_MAX),
        Ok(v) => v
            .trim()
            .parse::<usize>()
            .ok()
            .filter(|n| *n >= 2)
            .ok_or_else(|| StoreError::Open {
                at: store.display().to_string(),
                cause: format!(
                    "WASMFLOW_LIVE_RECORDS={v:?} is not a number of records (2 or more)"
                ),
            }),
    }
}

impl SledStore {
    /// The parts of this store's archive that may hold `id`, newest first.
    pub(crate) fn parts_holding(&self, id: ExecutionId) -> Result<Vec<Arc<SledStore>>, StoreError> {
        let Some(archive) = &self.archive else {
            return Ok(Vec::new());
        };
        let mut out = Vec::new();
        for part in archive.parts()?.iter().rev().filter(|p| p.may_hold(id)) {
            out.push(archive.open(part.seq)?);
        }
        Ok(out)
    }

    /// Move finished history out of the live database while it holds more
    /// than its bound: down to three quarters of it, a quarter of it at
    /// most (a tree is not split, so one tree may go over); returns how
    /// many records moved. See the module doc for the order of writes.
    pub(crate) fn archive_finished(&self) -> Result<usize, StoreError> {
        let Some(archive) = &self.archive else {
            return Ok(0);
        };
        let _one = archive.hold_moves();
        let live = self.live_records()?;
        if live <= archive.live_max {
            return Ok(0);
        }
        let want = (live - archive.live_max * 3 / 4).min(archive.batch());
        let mut fresh = Vec::new();
        let mut moved = 0;
        for tree in self.oldest_finished_trees(want)? {
            // A part already holds it (a move interrupted before its live
            // deletes): written there again, the same bytes, so that no
            // execution is counted in two parts.
            match self.part_holding_root(archive, tree[0].id)? {
                Some((part, store)) => moved += self.move_trees(archive, part, &store, &[tree])?,
                None => fresh.push(tree),
            }
        }
        let mut fresh = fresh.into_iter().peekable();
        while fresh.peek().is_some() {
            let (part, store) = archive.part_to_fill()?;
            let room = archive.part_max().saturating_sub(part.records);
            let mut batch = Vec::new();
            let mut n = 0;
            while let Some(tree) = fresh.peek() {
                if !batch.is_empty() && n + tree.len() > room {
                    break;
                }
                n += tree.len();
                batch.extend(fresh.next());
            }
            moved += self.move_trees(archive, part, &store, &batch)?;
        }
        Ok(moved)
    }

    /// The cataloged part holding the record `root`, if one does.
    fn part_holding_root(
        &self,
        archive: &Archive,
        root: ExecutionId,
    ) -> Result<Option<(Part, Arc<SledStore>)>, StoreError> {
        for part in archive.parts()?.iter().rev() {
            if part.may_hold(root) {
                let store = archive.open(part.seq)?;
                if store.executions.contains_key(root.key()).at(&store)? {
                    return Ok(Some((part.clone(), store)));
                }
            }
        }
        Ok(None)
    }

    /// Move `trees` into `part` (its catalog entry, and its database):
    /// written there and flushed, the catalog saved, then deleted here.
    /// Returns the records moved.
    fn move_trees(
        &self,
        archive: &Archive,
        mut part: Part,
        store: &SledStore,
        trees: &[Vec<ExecutionRecord>],
    ) -> Result<usize, StoreError> {
        let mut dirs = BTreeSet::new();
        for record in trees.iter().flatten() {
            self.copy_execution(store, record, &mut dirs)?;
            part.min = part.min.min(record.id);
            part.max = part.max.max(record.id);
            if record.parent.is_none() {
                part.newest_root = part.newest_root.max(record.id);
            }
            if !part.may_have(record.status) {
                part.statuses.push(record.status);
            }
        }
        for dir in dirs {
            std::fs::File::open(&dir)
                .and_then(|d| d.sync_all())
                .map_err(|e| archive.io("sync the archive's files", e))?;
        }
        store.flush()?;
        part.records = store.executions.len();
        archive.save(part)?;
        let mut report = crate::PurgeReport::default();
        for tree in trees {
            // Tasks before the workflow above them: an interrupted delete
            // leaves the root, which the next move finds again.
            for record in tree.iter().rev() {
                self.delete_execution(record, false, &mut report)?;
            }
        }
        self.flush()?;
        Ok(trees.iter().map(Vec::len).sum())
    }

    /// The oldest top-level executions whose whole tree ended (settled),
    /// each with its tree, until they hold `want` records.
    fn oldest_finished_trees(&self, want: usize) -> Result<Vec<Vec<ExecutionRecord>>, StoreError> {
        let settled = std::time::SystemTime::now()
            .checked_sub(SETTLED)
            .unwrap_or(std::time::UNIX_EPOCH);
        // An id holds the time it was made, and an execution ends after
        // it starts: from the first root made after `settled` on, none has
        // settled (a run over the bound with nothing to move would
        // otherwise read every root).
        let settled_ms = settled
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as u64);
        let mut out = Vec::new();
        let mut n = 0;
        for item in self.roots.iter() {
            let (key, _) = item.at(self)?;
            if ExecutionId::from_key(&key).is_some_and(|id| id.0.timestamp_ms() > settled_ms) {
                break;
            }
            let Some(value) = self.executions.get(&key).at(self)? else {
                continue; // a stale entry
            };
            // One that cannot be read stays where `check` reports it.
            let Ok(root) = self.decode(&key, &value) else {
                continue;
            };
            if !root.is_finished() || root.ended_at.is_none_or(|t| t > settled) {
                continue;
            }
            if let Some(tree) = crate::upkeep::finished_tree(self, root)? {
                n += tree.len();
                out.push(tree);
                if n >= want {
                    break;
                }
            }
        }
        Ok(out)
    }

    /// Write one execution's record, index entries, events and journal
    /// into `part` as they are here (a large value's file is linked into
    /// the part's files; its directory is added to `dirs`, to be synced).
    fn copy_execution(
        &self,
        part: &SledStore,
        record: &ExecutionRecord,
        dirs: &mut BTreeSet<PathBuf>,
    ) -> Result<(), StoreError> {
        let key = record.id.key();
        let Some(value) = self.executions.get(key).at(self)? else {
            return Ok(()); // moved before a crash; the part has it
        };
        let carry = |value: sled::IVec, dirs: &mut BTreeSet<PathBuf>| {
            if let Some(digest) = SledStore::reference(&value) {
                dirs.extend(part.files.link_from(&self.files, &digest)?);
            }
            Ok::<_, StoreError>(value)
        };
        for item in self.events.scan_prefix(key) {
            let (k, v) = item.at(self)?;
            part.events.insert(k, carry(v, dirs)?).at(part)?;
        }
        for item in self.workflow_log.scan_prefix(key) {
            let (k, v) = item.at(self)?;
            part.workflow_log.insert(k, carry(v, dirs)?).at(part)?;
        }
        if let Some(parent) = record.parent {
            part.children
                .insert(pair_key(&parent.key(), &key), &[])
                .at(part)?;
        }
        part.by_status
            .insert(status_key(record.status, &key), &[])
            .at(part)?;
        if record.parent.is_none() {
            part.roots.insert(key, &[]).at(part)?;
            part.roots_by_status
                .insert(status_key(record.status, &key), &[])
                .at(part)?;
        }
        part.executions.insert(key, carry(value, dirs)?).at(part)?;
        Ok(())
    }
}
