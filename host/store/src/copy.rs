//! Moving a store: everything one store holds written into another
//! (`wasmflow store copy`), through the [`Backend`] interface alone, so
//! any backend copies to any other (a sled home to PostgreSQL, and back).
//!
//! What is copied: every blob (referred to or not, so the counts match),
//! every record as it is (the same JSON, read back and compared), each
//! one's events and workflow journal, the queue in its order, and the
//! tokens, and the datastore's keys (secrets as they are stored, so the
//! secret key file must go where the store goes). Nothing in the source
//! is changed. Blobs go first and the
//! records after, so a record in the target never points at a blob it
//! lacks. A copy that stops half-way can be run again into the same
//! target: every write is a replace, and queue entries and tokens already
//! there are kept, not doubled. A target that holds executions the source
//! does not have is refused before anything is written, since mixing two
//! stores is not a move.

use crate::error::StoreError;
use crate::keys::key_book;
use crate::record::{ExecutionId, ExecutionRecord};
use crate::store::{ListFilter, Listing, Location, Store};
use crate::tokens::{token_book, TokenBook};
use serde::Serialize;
use std::collections::HashSet;

/// Records are read and written this many at a time.
const PAGE: usize = 500;

/// What a copy wrote.
#[derive(Debug, Default, Serialize, PartialEq, Eq)]
pub struct CopyReport {
    pub records: usize,
    pub events: usize,
    pub journal_entries: usize,
    pub blobs: usize,
    pub blob_bytes: u64,
    pub queued: usize,
    pub tokens: usize,
    pub keys: usize,
    pub trigger_instances: usize,
    pub enforcements: usize,
}

#[derive(Debug, thiserror::Error)]
pub enum CopyError {
    #[error("--from and --to name the same store ({0})")]
    Same(String),
    #[error(
        "the source {at} holds a record that cannot be read ({id}: {problem}); nothing was \
         copied (`wasmflow store check` lists the damage)"
    )]
    Unreadable {
        at: String,
        id: String,
        problem: String,
    },
    #[error(
        "the target {at} holds {count} execution(s) the source does not have (the first: {first}); \
         nothing was copied: copy into an empty store, or into one an earlier copy from this \
         source left"
    )]
    TargetHasOthers {
        at: String,
        count: usize,
        first: ExecutionId,
    },
    #[error(
        "the target {at} has a token named `{name}` that is not the source's; nothing was copied \
         (revoke one of them first)"
    )]
    TokenClash { at: String, name: String },
    #[error(
        "after the copy, execution {id} in {at} differs from the source's; the target is \
         incomplete: run the copy again"
    )]
    Differs { at: String, id: ExecutionId },
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl CopyError {
    /// Whether the caller can fix it (a wrong or busy target, a damaged
    /// source) rather than a store having failed mid-copy.
    pub fn is_usage(&self) -> bool {
        match self {
            CopyError::Store(e) => e.is_usage(),
            CopyError::Differs { .. } => false,
            _ => true,
        }
    }
}

/// Copy everything the store at `from` holds into the store at `to`
/// (created if it does not exist).
pub fn copy(from: &Location, to: &Location) -> Result<CopyReport, CopyError> {
    if from == to {
        return Err(CopyError::Same(from.to_string()));
    }
    let source = Store::open_at(from)?;
    let target = Store::open_at(to)?;
    let mut report = copy_between((&source, &*token_book(from)?), (&target, &*token_book(to)?))?;
    // Last: a copy run again replaces them, as it does records.
    let keys = key_book(from)?.list("")?;
    report.keys = keys.len();
    key_book(to)?.set_all(keys)?;
    Ok(report)
}

/// [`copy`] between open stores, each with its token book.
pub fn copy_between(
    (from, from_tokens): (&Store, &dyn TokenBook),
    (to, to_tokens): (&Store, &dyn TokenBook),
) -> Result<CopyReport, CopyError> {
    // Everything that can refuse the copy is asked before anything is
    // written.
    let ids = readable_ids(from)?;
    let others: Vec<ExecutionId> = all_ids(to)?
        .into_iter()
        .filter(|id| !ids.contains(id))
        .collect();
    if let Some(&first) = others.first() {
        return Err(CopyError::TargetHasOthers {
            at: to.location(),
            count: others.len(),
            first,
        });
    }
    let tokens = from_tokens.list()?;
    let theirs = to_tokens.list()?;
    for t in &tokens {
        if theirs
            .iter()
            .any(|o| o.name == t.name && o.sha256 != t.sha256)
        {
            return Err(CopyError::TokenClash {
                at: to.location(),
                name: t.name.clone(),
            });
        }
    }

    let mut report = CopyReport::default();
    for digest in from.blobs()? {
        let bytes = from.get_blob(&digest)?.ok_or_else(|| {
            StoreError::Other(format!("blob {digest} went missing during the copy"))
        })?;
        report.blobs += 1;
        report.blob_bytes += bytes.len() as u64;
        if !to.has_blob(&digest)? {
            to.put_blob(&bytes)?;
        }
    }
    each_page(from, |records| {
        for record in records {
            to.put_unflushed(record)?;
            let events = from.events(record.id)?;
            report.events += events.len();
            to.put_events(record.id, &events)?;
            let journal = from.workflow_log(record.id)?;
            report.journal_entries += journal.len();
            if !journal.is_empty() {
                to.append_workflow_log(record.id, 0, &journal, false)?;
            }
            report.records += 1;
        }
        Ok(())
    })?;
    let waiting: HashSet<ExecutionId> = to.queued()?.iter().map(|q| q.id).collect();
    for entry in from.queued()? {
        if !waiting.contains(&entry.id) {
            if let Some(record) = from.get(entry.id)? {
                to.enqueue(&record, &entry.payload)?;
            }
        }
        report.queued += 1;
    }
    // The event bus: every instance with its enforcements.
    for t in from.triggers(false, usize::MAX)? {
        let enforcements = from.enforcements(Some(t.id), usize::MAX)?;
        report.enforcements += enforcements.len();
        to.put_enforcements(&enforcements)?;
        to.put_trigger(&t)?;
        report.trigger_instances += 1;
    }
    to.flush()?;
    for t in tokens {
        if !theirs.iter().any(|o| o.name == t.name) {
            to_tokens.add(t)?;
        }
        report.tokens += 1;
    }

    // Read back: each record as the target holds it is the source's.
    each_page(from, |records| {
        for record in records {
            if to.get(record.id)?.as_ref() != Some(record) {
                return Err(CopyError::Differs {
                    at: to.location(),
                    id: record.id,
                });
            }
        }
        Ok(())
    })?;
    Ok(report)
}

/// Every record of `store`, children too, a page at a time, newest first;
/// an unreadable one is an error naming it.
fn each_page(
    store: &Store,
    mut each: impl FnMut(&[ExecutionRecord]) -> Result<(), CopyError>,
) -> Result<(), CopyError> {
    pages(store, |listing| {
        if let Some(u) = listing.unreadable.first() {
            return Err(CopyError::Unreadable {
                at: store.location(),
                id: u.id.clone(),
                problem: u.problem(),
            });
        }
        each(&listing.records)
    })
}

/// Every scan page of `store` until one holds no readable record.
fn pages(
    store: &Store,
    mut each: impl FnMut(Listing) -> Result<(), CopyError>,
) -> Result<(), CopyError> {
    let mut before = None;
    loop {
        let listing = store.scan(&ListFilter {
            limit: PAGE,
            children: true,
            before,
            ..Default::default()
        })?;
        let last = listing.records.last().map(|r| r.id);
        each(listing)?;
        match last {
            Some(id) => before = Some(id),
            None => return Ok(()),
        }
    }
}

/// The ids of every record in `store`, failing on an unreadable one.
fn readable_ids(store: &Store) -> Result<HashSet<ExecutionId>, CopyError> {
    let mut ids = HashSet::new();
    each_page(store, |records| {
        ids.extend(records.iter().map(|r| r.id));
        Ok(())
    })?;
    Ok(ids)
}

/// The ids of every record in `store`, readable or not (an unreadable one
/// in the target is one the source does not have).
fn all_ids(store: &Store) -> Result<Vec<ExecutionId>, CopyError> {
    let mut ids = Vec::new();
    pages(store, |listing| {
        ids.extend(listing.records.iter().map(|r| r.id));
        ids.extend(
            listing
                .unreadable
                .iter()
                .filter_map(|u| u.id.parse::<ExecutionId>().ok()),
        );
        Ok(())
    })?;
    Ok(ids)
}
