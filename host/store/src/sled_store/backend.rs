//! [`Backend`] for sled: each operation of the interface on the trees.

use super::{event_entry, key_text, seq_key, status_key, At, SledStore, IN_FILE};
use crate::error::StoreError;
use crate::record::{ExecutionId, ExecutionRecord, Status};
use crate::store::{Backend, Digest, ListFilter, Listing, Queued, Unreadable};
use crate::{CheckReport, Event, PurgeFilter, PurgeReport};
use std::collections::HashSet;

impl Backend for SledStore {
    fn location(&self) -> String {
        self.path.display().to_string()
    }

    /// Insert or update a record, keeping the status index in step, and
    /// flush: a record that was written is on disk when this returns.
    fn put(&self, record: &ExecutionRecord) -> Result<(), StoreError> {
        self.put_unflushed(record)?;
        self.flush_db()?;
        Ok(())
    }

    /// Like [`Backend::put`] without waiting for the disk: for states that
    /// nothing depends on (an execution's transient `running`). sled writes
    /// it out within its flush interval, or with the next [`Backend::put`].
    fn put_unflushed(&self, record: &ExecutionRecord) -> Result<(), StoreError> {
        self.write(record, None)
    }

    /// Accept an execution: its queue entry, then its (pending) record (a
    /// crash in between leaves an entry without a record, which `queued`'s
    /// callers drop). Not flushed: callers batch many accepts into one
    /// [`SledStore::flush`] before answering.
    fn enqueue(&self, record: &ExecutionRecord, payload: &[u8]) -> Result<u64, StoreError> {
        let seq = self.db.generate_id().at(self)?;
        let mut entry = Vec::with_capacity(16 + payload.len());
        entry.extend_from_slice(&record.id.key());
        entry.extend_from_slice(payload);
        self.write(record, Some((seq, entry)))?;
        Ok(seq)
    }

    /// The queue, oldest first.
    fn queued(&self) -> Result<Vec<Queued>, StoreError> {
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
    fn dequeue(&self, seq: u64) -> Result<(), StoreError> {
        self.queue.remove(seq.to_be_bytes()).at(self)?;
        Ok(())
    }

    /// Entries in the queue (pending and running).
    fn queue_len(&self) -> Result<usize, StoreError> {
        Ok(self.queue.len())
    }

    /// The live database's record, else the archive's.
    fn get(&self, id: ExecutionId) -> Result<Option<ExecutionRecord>, StoreError> {
        if let Some(record) = self.get_here(id)? {
            return Ok(Some(record));
        }
        for part in self.parts_holding(id)? {
            if let Some(record) = part.get_here(id)? {
                return Ok(Some(record));
            }
        }
        Ok(None)
    }

    fn find_prefix(&self, wanted: &str) -> Result<ExecutionRecord, StoreError> {
        let not_found = || StoreError::NotFound(wanted.to_owned());
        // ULID text order is key order: the matches lie between the prefix
        // padded with the smallest digit and with the largest.
        let Ok(first) = format!("{wanted:0<26}").parse::<ExecutionId>() else {
            return Err(not_found());
        };
        let last = format!("{wanted:Z<26}")
            .parse::<ExecutionId>()
            .unwrap_or(ExecutionId(ulid::Ulid::from(u128::MAX)));
        let mut ids = self.ids_with_prefix(wanted, first)?;
        if let Some(archive) = &self.archive {
            for part in archive.parts()?.iter() {
                if part.min <= last && first <= part.max {
                    ids.extend(archive.open(part.seq)?.ids_with_prefix(wanted, first)?);
                }
            }
        }
        ids.sort();
        ids.dedup();
        match ids[..] {
            [] => Err(not_found()),
            [id] => self.get(id)?.ok_or_else(not_found),
            _ => Err(StoreError::Ambiguous {
                prefix: wanted.to_owned(),
                count: ids.len(),
            }),
        }
    }

    /// Executions, newest first: the live database's, and the archive's
    /// parts that may hold some of the newest `limit`.
    fn scan(&self, filter: &ListFilter) -> Result<Listing, StoreError> {
        let mut listing = self.scan_here(filter)?;
        let Some(archive) = &self.archive else {
            return Ok(listing);
        };
        let mut parts = Vec::clone(&*archive.parts()?);
        if parts.is_empty() {
            return Ok(listing);
        }
        let newest = |p: &crate::sled_store::archive::Part| match filter.children {
            true => p.max,
            false => p.newest_root,
        };
        parts.sort_by_key(|p| std::cmp::Reverse(newest(p)));
        // Parts' listings wait in `more` until they could fill a page (a
        // merge sorts what it is given: once per page, not once per part).
        let mut more: Vec<Listing> = Vec::new();
        let mut waiting = 0;
        for part in parts {
            if filter.before.is_some_and(|b| part.min >= b)
                || filter.status.is_some_and(|s| !part.may_have(s))
            {
                continue;
            }
            if waiting > 0 && listing.records.len() + waiting >= filter.limit {
                more.insert(0, listing);
                listing = Listing::merged(std::mem::take(&mut more), filter.limit, None);
                waiting = 0;
            }
            // Full, and all of it newer than anything in this part (or
            // any after it: they come newest first).
            let full = listing.records.len() >= filter.limit;
            if full && listing.records.last().is_some_and(|r| r.id > newest(&part)) {
                break;
            }
            let found = archive.open(part.seq)?.scan_here(filter)?;
            waiting += found.records.len();
            more.push(found);
        }
        more.insert(0, listing);
        Ok(Listing::merged(more, filter.limit, None))
    }

    /// Flush every write so far to disk.
    fn flush(&self) -> Result<(), StoreError> {
        self.flush_db()?;
        Ok(())
    }

    /// The executions whose parent is `id`, oldest first (a tree moves
    /// whole, so they are where it is).
    fn children(&self, id: ExecutionId) -> Result<Vec<ExecutionRecord>, StoreError> {
        let mut out = self.children_here(id)?;
        for part in self.parts_holding(id)? {
            out.extend(part.children_here(id)?);
        }
        out.sort_by_key(|r| r.id);
        out.dedup_by_key(|r| r.id);
        Ok(out)
    }

    /// Append entries to a workflow's journal at `seq`, `seq + 1`, ...;
    /// with `flush`, they are on disk when this returns (and so is every
    /// earlier write: sled's log is sequential).
    fn append_workflow_log(
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
            self.flush_db()?;
        }
        Ok(())
    }

    /// A workflow's journal, in order: the archive's entries, and the live
    /// database's over them (one written as its workflow moved).
    fn workflow_log(&self, id: ExecutionId) -> Result<Vec<Vec<u8>>, StoreError> {
        let mut entries = std::collections::BTreeMap::new();
        for part in self.parts_holding(id)?.iter().rev() {
            entries.extend(part.workflow_log_here(id)?);
        }
        entries.extend(self.workflow_log_here(id)?);
        Ok(entries.into_values().collect())
    }

    fn put_trigger(&self, instance: &crate::TriggerInstance) -> Result<(), StoreError> {
        self.put_trigger_instance(instance)
    }

    fn put_trigger_new(&self, instance: &crate::TriggerInstance) -> Result<bool, StoreError> {
        self.put_trigger_instance_new(instance)
    }

    fn trigger(&self, id: ExecutionId) -> Result<Option<crate::TriggerInstance>, StoreError> {
        self.trigger_instance(id)
    }

    fn triggers(
        &self,
        unprocessed: bool,
        limit: usize,
    ) -> Result<Vec<crate::TriggerInstance>, StoreError> {
        self.trigger_instances(unprocessed, limit)
    }

    fn put_enforcements(&self, enforcements: &[crate::Enforcement]) -> Result<(), StoreError> {
        self.put_enforcements_of(enforcements)
    }

    fn purge_triggers(
        &self,
        before: std::time::SystemTime,
        dry_run: bool,
    ) -> Result<(usize, usize), StoreError> {
        self.purge_trigger_instances(before, dry_run)
    }

    fn enforcements(
        &self,
        instance: Option<ExecutionId>,
        limit: usize,
    ) -> Result<Vec<crate::Enforcement>, StoreError> {
        self.enforcements_of(instance, limit)
    }

    /// Number of executions in the store, archived ones included.
    fn len(&self) -> Result<usize, StoreError> {
        let archived: usize = match &self.archive {
            Some(archive) => archive.parts()?.iter().map(|p| p.records).sum(),
            None => 0,
        };
        Ok(self.executions.len() + archived)
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
    fn put_events(&self, id: ExecutionId, events: &[Event]) -> Result<(), StoreError> {
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
    fn events(&self, id: ExecutionId) -> Result<Vec<Event>, StoreError> {
        let here = self.events_here(id)?;
        if !here.is_empty() {
            return Ok(here);
        }
        for part in self.parts_holding(id)? {
            let there = part.events_here(id)?;
            if !there.is_empty() {
                return Ok(there);
            }
        }
        Ok(here)
    }

    /// Store bytes under their sha256; storing the same bytes twice is free.
    fn put_blob(&self, bytes: &[u8]) -> Result<Digest, StoreError> {
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
    fn has_blob(&self, digest: &Digest) -> Result<bool, StoreError> {
        Ok(match self.blobs.get(digest.0).at(self)? {
            None => false,
            Some(v) if Self::blob_in_file(digest, &v) => self.files.contains(digest),
            Some(_) => true,
        })
    }

    fn get_blob(&self, digest: &Digest) -> Result<Option<Vec<u8>>, StoreError> {
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

    fn blobs(&self) -> Result<Vec<Digest>, StoreError> {
        self.blobs
            .iter()
            .keys()
            .map(|k| {
                let k = k.at(self)?;
                let digest: [u8; 32] = k.as_ref().try_into().map_err(|_| StoreError::BadKey)?;
                Ok(Digest(digest))
            })
            .collect()
    }

    fn check(&self) -> Result<CheckReport, StoreError> {
        self.check_all()
    }

    fn purge(
        &self,
        filter: &PurgeFilter,
        in_use: &HashSet<String>,
    ) -> Result<PurgeReport, StoreError> {
        self.purge_selected(filter, in_use)
    }

    fn serve_reads(self: std::sync::Arc<Self>) {
        self.start_read_service();
    }

    fn archive_finished(&self) -> Result<usize, StoreError> {
        SledStore::archive_finished(self)
    }
}

/// Reads of one database: the live one or a part of its archive.
impl SledStore {
    pub(crate) fn get_here(&self, id: ExecutionId) -> Result<Option<ExecutionRecord>, StoreError> {
        self.executions
            .get(id.key())
            .at(self)?
            .map(|bytes| self.decode_named(&id.key(), &bytes))
            .transpose()
    }

    /// The ids here that start with `wanted` (`first` is the smallest id
    /// that could).
    fn ids_with_prefix(
        &self,
        wanted: &str,
        first: ExecutionId,
    ) -> Result<Vec<ExecutionId>, StoreError> {
        let mut out = Vec::new();
        for key in self.executions.range(first.key()..).keys() {
            match ExecutionId::from_key(&key.at(self)?) {
                Some(id) if id.to_string().starts_with(wanted) => out.push(id),
                _ => break,
            }
        }
        Ok(out)
    }

    /// The records, newest first, of this database alone.
    pub(crate) fn scan_here(&self, filter: &ListFilter) -> Result<Listing, StoreError> {
        let mut out = Listing::default();
        let wanted = |rec: &ExecutionRecord| {
            (filter.children || rec.parent.is_none())
                && filter.action.as_ref().is_none_or(|a| &rec.action == a)
        };
        // One record that cannot be read is named and passed over; an
        // error of sled itself ends the scan.
        let take = |out: &mut Listing, key: &[u8], value: &[u8], status: Option<Status>| match self
            .decode(key, value)
        {
            Ok(rec) if status.is_none_or(|s| rec.status == s) && wanted(&rec) => {
                out.records.push(rec)
            }
            Ok(_) => {}
            Err(error) => out.unreadable.push(Unreadable {
                id: key_text(key),
                error,
            }),
        };
        match filter.status {
            None => {
                // Top-level only: their own index (keys alone, the record
                // read from `executions`), not every task record.
                let index = match filter.children {
                    true => &self.executions,
                    false => &self.roots,
                };
                let range = match filter.before {
                    Some(b) => index.range(..b.key()),
                    None => index.iter(),
                };
                for item in range.rev() {
                    if out.records.len() >= filter.limit {
                        break;
                    }
                    let (key, value) = item.at(self)?;
                    let value = match filter.children {
                        true => Some(value),
                        false => self.executions.get(&key).at(self)?,
                    };
                    if let Some(value) = value {
                        take(&mut out, &key, &value, None);
                    }
                }
            }
            Some(status) => {
                let start = [status.tag()];
                let end = match filter.before {
                    Some(b) => status_key(status, &b.key()).to_vec(),
                    None => vec![status.tag() + 1],
                };
                let index = match filter.children {
                    true => &self.by_status,
                    false => &self.roots_by_status,
                };
                for item in index.range(&start[..]..&end[..]).rev() {
                    if out.records.len() >= filter.limit {
                        break;
                    }
                    let (key, _) = item.at(self)?;
                    // A stale entry (see `write`) names a record that moved
                    // on to another status, or none: skipped.
                    if let Some(value) = self.executions.get(&key[1..]).at(self)? {
                        take(&mut out, &key[1..], &value, Some(status));
                    }
                }
            }
        }
        Ok(out)
    }

    /// The executions whose parent is `id` in this database, oldest first.
    fn children_here(&self, id: ExecutionId) -> Result<Vec<ExecutionRecord>, StoreError> {
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

    /// A workflow's journal entries in this database, by key.
    fn workflow_log_here(&self, id: ExecutionId) -> Result<Vec<(sled::IVec, Vec<u8>)>, StoreError> {
        self.workflow_log
            .scan_prefix(id.key())
            .map(|item| {
                let (k, v) = item.at(self)?;
                Ok((k, self.resolve(&v)?.into_owned()))
            })
            .collect()
    }

    /// The answers an execution received, as this database holds them.
    fn events_here(&self, id: ExecutionId) -> Result<Vec<Event>, StoreError> {
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
}
