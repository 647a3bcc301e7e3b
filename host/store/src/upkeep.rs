//! What checking and purging a store report, and retention: the same for
//! every backend (each backend does the walking).

use crate::error::StoreError;
use crate::record::{ExecutionId, ExecutionRecord, Status};
use crate::store::{Backend, Store};
use serde::Serialize;
use std::collections::HashSet;
use std::time::SystemTime;

/// What a check found.
#[derive(Debug, Default, Serialize)]
pub struct CheckReport {
    pub records: usize,
    pub event_entries: usize,
    pub journal_entries: usize,
    pub blobs: usize,
    pub blob_bytes: u64,
    /// Damage: data that cannot be read back as it was written.
    pub damaged: Vec<Damage>,
    /// Harmless leftovers of an interrupted write (an index entry whose
    /// record moved on): readers skip them.
    pub stale: usize,
    /// Files of large values that nothing refers to any more (a record
    /// rewritten since): the next purge deletes them.
    pub unreferenced_files: usize,
}

/// One damaged item.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Damage {
    /// What it is: `record 01J...`, `blob sha256:...`, `events of 01J...`.
    pub item: String,
    pub problem: String,
}

impl CheckReport {
    pub fn is_clean(&self) -> bool {
        self.damaged.is_empty()
    }

    pub(crate) fn damage(&mut self, item: impl Into<String>, problem: impl Into<String>) {
        self.damaged.push(Damage {
            item: item.into(),
            problem: problem.into(),
        });
    }
}

/// Which executions a purge deletes.
#[derive(Clone, Debug)]
pub struct PurgeFilter {
    /// Executions created before this time.
    pub before: SystemTime,
    /// Only top-level executions with one of these statuses (all ended
    /// statuses when empty).
    pub statuses: Vec<Status>,
    /// Only executions of this action or workflow (its `action` field).
    pub action: Option<String>,
    /// Count what would go, delete nothing.
    pub dry_run: bool,
    /// Other threads of this process may be writing (a server's workers):
    /// a file younger than a minute may be one whose reference is not
    /// written yet, and is left for a later purge.
    pub writers_running: bool,
}

impl PurgeFilter {
    /// Whether `record` is one a purge takes (with its tree): top level,
    /// ended, older than `before`, of a wanted status and action.
    pub fn selects(&self, record: &ExecutionRecord) -> bool {
        record.parent.is_none()
            && record.is_finished()
            && record.created_at < self.before
            && (self.statuses.is_empty() || self.statuses.contains(&record.status))
            && self.action.as_ref().is_none_or(|a| &record.action == a)
    }

    /// The smallest id created at `before`: ULIDs sort by creation time,
    /// so nothing at or past it is old enough and a purge scans below it.
    pub(crate) fn bound(&self) -> ExecutionId {
        let ms = self
            .before
            .duration_since(SystemTime::UNIX_EPOCH)
            .unwrap_or_default()
            .as_millis() as u64;
        ExecutionId(ulid::Ulid::from_parts(ms, 0))
    }
}

/// Add `record`'s tree to `doomed`, counted in `report`, when `filter`
/// selects it and the whole tree ended (a purge's choice, every backend's).
pub(crate) fn doom(
    backend: &dyn Backend,
    filter: &PurgeFilter,
    record: ExecutionRecord,
    report: &mut PurgeReport,
    doomed: &mut Vec<ExecutionRecord>,
) -> Result<(), StoreError> {
    if !filter.selects(&record) {
        return Ok(());
    }
    if let Some(tree) = finished_tree(backend, record)? {
        report.executions += 1;
        report.descendants += tree.len() - 1;
        doomed.extend(tree);
    }
    Ok(())
}

/// `root` and every execution below it, when all of them ended (a purge
/// never breaks a tree that is still running); the same walk for every
/// backend.
pub(crate) fn finished_tree(
    backend: &dyn Backend,
    root: ExecutionRecord,
) -> Result<Option<Vec<ExecutionRecord>>, StoreError> {
    let mut out = vec![root];
    let mut i = 0;
    while i < out.len() {
        for child in backend.children(out[i].id)? {
            if !child.is_finished() {
                return Ok(None);
            }
            out.push(child);
        }
        i += 1;
    }
    Ok(Some(out))
}

/// What a purge deleted (or, dry, would delete).
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct PurgeReport {
    /// Top-level executions (each with its whole tree).
    pub executions: usize,
    /// Executions deleted with them (workflow tasks, nested workflows).
    pub descendants: usize,
    pub event_entries: usize,
    pub journal_entries: usize,
    pub blobs: usize,
    /// Files of large values deleted (no value refers to them any more).
    pub files: usize,
    /// Bytes of the values deleted (records, events, journals, blobs) and
    /// of the files.
    pub bytes: u64,
    /// The event bus's processed trigger instances, and their rules'
    /// enforcements (a purge of every status and action only).
    pub trigger_instances: usize,
    pub enforcements: usize,
    pub dry_run: bool,
}

/// How long ended executions are kept (`serve --retain`): one age for
/// every status, and ages for single statuses that override it.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Retention {
    pub all: Option<std::time::Duration>,
    pub by_status: Vec<(Status, std::time::Duration)>,
}

impl Retention {
    pub fn is_empty(&self) -> bool {
        self.all.is_none() && self.by_status.is_empty()
    }

    /// The age kept for `status`, if any is set.
    pub fn age(&self, status: Status) -> Option<std::time::Duration> {
        self.by_status
            .iter()
            .find(|(s, _)| *s == status)
            .map(|(_, age)| *age)
            .or(self.all)
    }

    /// Purge, for every ended status with an age, what is older than it.
    pub fn apply(
        &self,
        store: &Store,
        in_use: &HashSet<String>,
    ) -> Result<PurgeReport, StoreError> {
        let now = SystemTime::now();
        let mut total = PurgeReport::default();
        for status in Status::ALL.into_iter().filter(|s| s.is_terminal()) {
            let Some(age) = self.age(status) else {
                continue;
            };
            let filter = PurgeFilter {
                before: now.checked_sub(age).unwrap_or(SystemTime::UNIX_EPOCH),
                statuses: vec![status],
                action: None,
                dry_run: false,
                writers_running: true,
            };
            total.add(&store.purge(&filter, in_use)?);
        }
        // Events are kept as long as the longest-kept executions they
        // may have started.
        let longest = self.by_status.iter().map(|(_, a)| *a).chain(self.all).max();
        if let Some(age) = longest {
            let before = now.checked_sub(age).unwrap_or(SystemTime::UNIX_EPOCH);
            let (instances, enforcements) = store.purge_triggers(before, false)?;
            total.trigger_instances += instances;
            total.enforcements += enforcements;
        }
        Ok(total)
    }
}

impl PurgeReport {
    fn add(&mut self, other: &PurgeReport) {
        self.executions += other.executions;
        self.descendants += other.descendants;
        self.event_entries += other.event_entries;
        self.journal_entries += other.journal_entries;
        self.blobs += other.blobs;
        self.files += other.files;
        self.bytes += other.bytes;
        self.trigger_instances += other.trigger_instances;
        self.enforcements += other.enforcements;
    }

    pub fn is_empty(&self) -> bool {
        self.executions == 0 && self.blobs == 0 && self.files == 0
    }
}
