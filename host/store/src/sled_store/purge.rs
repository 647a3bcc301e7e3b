//! Retention: `wasmflow execution purge` and `serve --retain` delete old
//! executions with everything that is theirs (status index and children
//! entries, events, workflow journal) and the blobs no remaining execution
//! refers to.
//!
//! A workflow tree goes whole or not at all: a purge takes top-level
//! executions that ended, and only when every execution below them ended
//! too, so it never breaks a tree that is still running.

use super::check::parse_events;
use super::{pair_key, status_key, At, SledStore};
use crate::bundle::referenced;
use crate::error::StoreError;
use crate::record::{ExecutionId, ExecutionRecord};
use crate::store::{Backend, Digest};
use crate::{PurgeFilter, PurgeReport};
use std::collections::{BTreeSet, HashSet};
use std::time::SystemTime;

impl SledStore {
    /// Delete what `filter` selects, in the live database and the
    /// archive's parts old enough to hold some. Blobs in `in_use`
    /// (components a running process holds) are kept even when no record
    /// names them.
    pub(super) fn purge_selected(
        &self,
        filter: &PurgeFilter,
        in_use: &HashSet<String>,
    ) -> Result<PurgeReport, StoreError> {
        // Not while a move links files into a part (a part's sweep would
        // take a file whose reference is not written yet).
        let _moves = self.archive.as_ref().map(|a| a.hold_moves());
        let mut report = PurgeReport {
            dry_run: filter.dry_run,
            ..Default::default()
        };
        let mut doomed: Vec<ExecutionRecord> = Vec::new();
        let mut candidates: BTreeSet<String> = BTreeSet::new();
        self.purge_trees(filter, &mut report, &mut doomed, &mut candidates)?;
        let bound = filter.bound();
        if let Some(archive) = &self.archive {
            for part in archive.parts()?.iter().filter(|p| p.min < bound) {
                let store = archive.open(part.seq)?;
                let mut gone = Vec::new();
                store.purge_trees(filter, &mut report, &mut gone, &mut candidates)?;
                if !filter.dry_run && !gone.is_empty() {
                    store.flush()?;
                    let (files, bytes) = store.sweep_files(std::time::Duration::ZERO)?;
                    report.files += files;
                    report.bytes += bytes;
                    archive.save(crate::sled_store::archive::Part {
                        records: store.executions.len(),
                        ..part.clone()
                    })?;
                }
                doomed.extend(gone);
            }
        }
        if !candidates.is_empty() {
            let mut kept = self.referenced_blobs(&doomed)?;
            if let Some(archive) = &self.archive {
                for part in archive.parts()?.iter() {
                    kept.extend(archive.open(part.seq)?.referenced_blobs(&doomed)?);
                }
            }
            for digest in candidates {
                if kept.contains(&digest) || in_use.contains(&digest) {
                    continue;
                }
                let Some(d) = Digest::parse(&digest) else {
                    continue;
                };
                let value = if filter.dry_run {
                    self.blobs.get(d.0).at(self)?
                } else {
                    self.blobs.remove(d.0).at(self)?
                };
                if let Some(v) = value {
                    report.blobs += 1;
                    if !SledStore::blob_in_file(&d, &v) {
                        report.bytes += v.len() as u64;
                    } else if filter.dry_run {
                        // The sweep below counts it when it is deleted.
                        report.bytes +=
                            std::fs::metadata(self.files.path(&d)).map_or(0, |m| m.len());
                    }
                }
            }
        }
        // A server's retention sweeps files only when it deleted something
        // (the sweep reads every value); an explicit purge always does.
        if !filter.dry_run && (report.executions > 0 || !filter.writers_running) {
            // The references are gone from the disk before their files.
            self.flush()?;
            let grace = if filter.writers_running {
                std::time::Duration::from_secs(60)
            } else {
                std::time::Duration::ZERO
            };
            let (files, bytes) = self.sweep_files(grace)?;
            report.files += files;
            report.bytes += bytes;
        }
        Ok(report)
    }

    /// Delete the trees `filter` selects in this database (the live one
    /// or a part), adding them to `doomed` and the blobs they named to
    /// `candidates`.
    fn purge_trees(
        &self,
        filter: &PurgeFilter,
        report: &mut PurgeReport,
        doomed: &mut Vec<ExecutionRecord>,
        candidates: &mut BTreeSet<String>,
    ) -> Result<(), StoreError> {
        let first = doomed.len();
        let bound = filter.bound().key();
        for item in self.executions.range(..bound) {
            let (key, value) = item.at(self)?;
            let record = self.decode(&key, &value)?;
            crate::upkeep::doom(self, filter, record, report, doomed)?;
        }
        for record in &doomed[first..] {
            let events = self.events(record.id)?;
            candidates.extend(referenced(record, &events));
            report.bytes += self.delete_execution(record, filter.dry_run, report)?;
        }
        Ok(())
    }

    /// Delete the files no value refers to (older than `grace`); returns
    /// how many and their bytes.
    pub(crate) fn sweep_files(
        &self,
        grace: std::time::Duration,
    ) -> Result<(usize, u64), StoreError> {
        let files = self.files.list()?;
        if files.is_empty() {
            return Ok((0, 0));
        }
        let referenced = self.file_references()?;
        let cutoff = SystemTime::now()
            .checked_sub(grace)
            .unwrap_or(SystemTime::UNIX_EPOCH);
        let (mut n, mut bytes) = (0, 0);
        for (digest, size, modified) in files {
            if referenced.contains(&digest) || modified > cutoff {
                continue;
            }
            self.files.remove(&digest)?;
            n += 1;
            bytes += size;
        }
        Ok((n, bytes))
    }

    /// Every file a value in sled refers to.
    pub(crate) fn file_references(&self) -> Result<HashSet<Digest>, StoreError> {
        let mut out = HashSet::new();
        for tree in [&self.executions, &self.events, &self.workflow_log] {
            for item in tree.iter() {
                let (_, v) = item.at(self)?;
                if let Some(d) = SledStore::reference(&v) {
                    out.insert(d);
                }
            }
        }
        for item in self.blobs.iter() {
            let (k, v) = item.at(self)?;
            if let Ok(key) = <[u8; 32]>::try_from(k.as_ref()) {
                let d = Digest(key);
                if SledStore::blob_in_file(&d, &v) {
                    out.insert(d);
                }
            }
        }
        Ok(out)
    }

    /// Delete one execution's entries; the record itself last, so an
    /// interrupted purge leaves a record that the next purge finds again.
    pub(super) fn delete_execution(
        &self,
        record: &ExecutionRecord,
        dry_run: bool,
        report: &mut PurgeReport,
    ) -> Result<u64, StoreError> {
        let key = record.id.key();
        let mut bytes = 0u64;
        for item in self.events.scan_prefix(key) {
            let (k, v) = item.at(self)?;
            report.event_entries += 1;
            bytes += v.len() as u64; // a file's bytes are counted when it is swept
            if !dry_run {
                self.events.remove(k).at(self)?;
            }
        }
        for item in self.workflow_log.scan_prefix(key) {
            let (k, v) = item.at(self)?;
            report.journal_entries += 1;
            bytes += v.len() as u64;
            if !dry_run {
                self.workflow_log.remove(k).at(self)?;
            }
        }
        if let Some(v) = self.executions.get(key).at(self)? {
            bytes += v.len() as u64;
        }
        if dry_run {
            return Ok(bytes);
        }
        for item in self.children.scan_prefix(key) {
            let (k, _) = item.at(self)?;
            self.children.remove(k).at(self)?;
        }
        if let Some(parent) = record.parent {
            self.children
                .remove(pair_key(&parent.key(), &key))
                .at(self)?;
        }
        self.by_status
            .remove(status_key(record.status, &key))
            .at(self)?;
        if record.parent.is_none() {
            self.roots.remove(key).at(self)?;
            self.roots_by_status
                .remove(status_key(record.status, &key))
                .at(self)?;
        }
        if self.executions.remove(key).at(self)?.is_some() && self.archive.is_some() {
            self.count_live(-1);
        }
        Ok(bytes)
    }

    /// Every blob a remaining execution refers to (its component or
    /// workflow file, its events' payloads).
    pub(super) fn referenced_blobs(
        &self,
        doomed: &[ExecutionRecord],
    ) -> Result<HashSet<String>, StoreError> {
        let gone: HashSet<ExecutionId> = doomed.iter().map(|r| r.id).collect();
        let mut out = HashSet::new();
        for item in self.executions.iter() {
            let (key, value) = item.at(self)?;
            let record = self.decode(&key, &value)?;
            if gone.contains(&record.id) {
                continue; // a dry run still sees them
            }
            out.insert(record.component_digest);
        }
        for item in self.events.iter() {
            let (key, value) = item.at(self)?;
            if ExecutionId::from_key(&key[..16]).is_some_and(|id| gone.contains(&id)) {
                continue;
            }
            if let Ok(events) = parse_events(&self.resolve(&value)?) {
                out.extend(crate::bundle::payloads(&events));
            }
        }
        Ok(out)
    }
}
