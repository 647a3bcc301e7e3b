//! `wasmflow store check`: walk every tree, decode every record, event and
//! journal entry, verify every blob against its sha256, and say exactly
//! what is damaged, by id. Read-only: nothing is repaired or dropped.

use super::{no_panic, At, SledStore};
use crate::bundle::payloads;
use crate::error::StoreError;
use crate::record::{ExecutionId, ExecutionRecord};
use crate::store::Digest;
use crate::{CheckReport, Event};
use std::collections::HashSet;

impl SledStore {
    /// Check everything in the store. A panic inside sled on a damaged
    /// file is reported as [`StoreError::Damaged`], like at open.
    pub(super) fn check_all(&self) -> Result<CheckReport, StoreError> {
        no_panic(&self.path.clone(), || self.check_inner())
    }

    fn check_inner(&self) -> Result<CheckReport, StoreError> {
        let mut report = CheckReport::default();
        let blobs = self.check_blobs(&mut report)?;
        self.check_contents(&mut report, &blobs)?;
        if let Some(archive) = &self.archive {
            for part in archive.parts()?.iter() {
                let store = archive.open(part.seq)?;
                no_panic(&store.path.clone(), || {
                    store.check_contents(&mut report, &blobs)
                })?;
            }
        }
        Ok(report)
    }

    /// Records, events, journals, indexes and files of this database (the
    /// live one or a part); `blobs` are the live database's good blobs.
    fn check_contents(
        &self,
        report: &mut CheckReport,
        blobs: &HashSet<String>,
    ) -> Result<(), StoreError> {
        let ids = self.check_records(report, blobs)?;
        self.check_events(report, blobs)?;
        self.check_journals(report)?;
        self.check_indexes(report, &ids)?;
        let referenced = self.file_references()?;
        report.unreferenced_files += self
            .files
            .list()?
            .iter()
            .filter(|(d, ..)| !referenced.contains(d))
            .count();
        Ok(())
    }

    /// Every blob hashes to its key; returns the digests that do.
    fn check_blobs(&self, report: &mut CheckReport) -> Result<HashSet<String>, StoreError> {
        let mut good = HashSet::new();
        walk(&self.blobs, "blobs", report, |report, key, value| {
            report.blobs += 1;
            let Ok(d) = <[u8; 32]>::try_from(key.as_ref()).map(Digest) else {
                return report.damage(
                    format!("blob key {}", hex::encode(&key)),
                    "not a sha256 digest",
                );
            };
            let name = d.to_string();
            if SledStore::blob_in_file(&d, &value) {
                match self.files.get(&d) {
                    Ok(Some(bytes)) => {
                        report.blob_bytes += bytes.len() as u64;
                        good.insert(name);
                    }
                    Ok(None) => report.damage(
                        format!("blob {name}"),
                        format!("its file {} is missing", self.files.path(&d).display()),
                    ),
                    Err(e) => report.damage(format!("blob {name}"), e.to_string()),
                }
            } else if Digest::of(&value).to_string() == name {
                report.blob_bytes += value.len() as u64;
                good.insert(name);
            } else {
                report.damage(
                    format!("blob {name}"),
                    format!("content ({} bytes) does not match its digest", value.len()),
                );
            }
        });
        Ok(good)
    }

    fn check_records(
        &self,
        report: &mut CheckReport,
        blobs: &HashSet<String>,
    ) -> Result<HashSet<ExecutionId>, StoreError> {
        let mut ids = HashSet::new();
        walk(
            &self.executions,
            "executions",
            report,
            |report, key, value| {
                report.records += 1;
                let Some(id) = ExecutionId::from_key(&key) else {
                    report.damage(format!("record key {}", hex::encode(&key)), "not an id");
                    return;
                };
                ids.insert(id);
                let value = match self.resolve(&value) {
                    Ok(v) => v,
                    Err(e) => return report.damage(format!("record {id}"), e.to_string()),
                };
                let record: ExecutionRecord = match serde_json::from_slice(&value) {
                    Ok(r) => r,
                    Err(e) => {
                        return report
                            .damage(format!("record {id}"), format!("unreadable JSON: {e}"))
                    }
                };
                if record.id != id {
                    report.damage(
                        format!("record {id}"),
                        format!("holds the record of {}", record.id),
                    );
                }
                let component = &record.component_digest;
                if !component.is_empty() && !blobs.contains(component) {
                    report.damage(
                        format!("record {id}"),
                        format!(
                            "its component or workflow file {component} is missing from the blobs"
                        ),
                    );
                }
            },
        );
        Ok(ids)
    }

    fn check_events(
        &self,
        report: &mut CheckReport,
        blobs: &HashSet<String>,
    ) -> Result<(), StoreError> {
        walk(&self.events, "events", report, |report, key, value| {
            report.event_entries += 1;
            let owner = owner(&key);
            let value = match self.resolve(&value) {
                Ok(v) => v,
                Err(e) => return report.damage(format!("events of {owner}"), e.to_string()),
            };
            let events: Vec<Event> = match parse_events(&value) {
                Ok(e) => e,
                Err(e) => {
                    return report.damage(
                        format!("events of {owner}"),
                        format!("unreadable JSON: {e}"),
                    )
                }
            };
            // The component is checked with the record; here the payloads.
            for digest in payloads(&events) {
                if !blobs.contains(&digest) {
                    report.damage(
                        format!("events of {owner}"),
                        format!("recorded payload {digest} is missing from the blobs"),
                    );
                }
            }
        });
        Ok(())
    }

    fn check_journals(&self, report: &mut CheckReport) -> Result<(), StoreError> {
        walk(
            &self.workflow_log,
            "workflow journals",
            report,
            |report, key, value| {
                report.journal_entries += 1;
                let owner = owner(&key);
                match self.resolve(&value) {
                    Err(e) => report.damage(format!("journal of {owner}"), e.to_string()),
                    Ok(v) if serde_json::from_slice::<serde_json::Value>(&v).is_err() => {
                        report.damage(format!("journal of {owner}"), "an entry is not JSON")
                    }
                    Ok(_) => {}
                }
            },
        );
        Ok(())
    }

    /// Index entries pointing at no record are stale (a write order that
    /// puts pointers first leaves them), not damage.
    fn check_indexes(
        &self,
        report: &mut CheckReport,
        ids: &HashSet<ExecutionId>,
    ) -> Result<(), StoreError> {
        for tree in [&self.by_status, &self.roots_by_status] {
            for item in tree.iter() {
                let (key, _) = item.at(self)?;
                if ExecutionId::from_key(&key[1..]).is_none_or(|id| !ids.contains(&id)) {
                    report.stale += 1;
                }
            }
        }
        for item in self.roots.iter() {
            let (key, _) = item.at(self)?;
            if ExecutionId::from_key(&key).is_none_or(|id| !ids.contains(&id)) {
                report.stale += 1;
            }
        }
        for item in self.children.iter() {
            let (key, _) = item.at(self)?;
            if ExecutionId::from_key(&key[16..]).is_none_or(|id| !ids.contains(&id)) {
                report.stale += 1;
            }
        }
        Ok(())
    }
}

/// Call `f` with every entry of `tree` that can be read; an unreadable one
/// is damage and ends the walk (sled cannot step past it).
fn walk(
    tree: &sled::Tree,
    name: &str,
    report: &mut CheckReport,
    mut f: impl FnMut(&mut CheckReport, sled::IVec, sled::IVec),
) {
    for item in tree.iter() {
        match item {
            Ok((k, v)) => f(report, k, v),
            Err(e) => return report.damage(name, format!("cannot read further: {e}")),
        }
    }
}

/// The execution a key of `events` or `workflow_log` belongs to.
fn owner(key: &[u8]) -> String {
    ExecutionId::from_key(&key[..16.min(key.len())])
        .map(|id| id.to_string())
        .unwrap_or_else(|| hex::encode(key))
}

/// An `events` entry: a JSON array, or one event (older stores).
pub(crate) fn parse_events(value: &[u8]) -> Result<Vec<Event>, serde_json::Error> {
    if value.first() == Some(&b'[') {
        serde_json::from_slice(value)
    } else {
        serde_json::from_slice(value).map(|e| vec![e])
    }
}
