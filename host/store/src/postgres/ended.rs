//! The ends of executions as one statement: events replaced, final
//! records written, finished queue entries dropped (their waiters told)
//! and, for a flush, a row of this handle's committed so the commit waits
//! for the disk. Every write of that kind ([`Backend::put_events`],
//! [`Backend::put_ended`], [`Backend::dequeue`], [`Backend::flush`],
//! [`Backend::flush_ended`]) is this statement with some arrays empty:
//! one round trip whatever it carries, one plan per connection.
//!
//! [`Backend::put_events`]: crate::store::Backend::put_events
//! [`Backend::put_ended`]: crate::store::Backend::put_ended
//! [`Backend::dequeue`]: crate::store::Backend::dequeue
//! [`Backend::flush`]: crate::store::Backend::flush
//! [`Backend::flush_ended`]: crate::store::Backend::flush_ended

use super::backend::Rows;
use super::PgStore;
use crate::error::StoreError;
use crate::record::{ExecutionId, ExecutionRecord};
use crate::Event;

/// $1 the flush row (NULL: none), $2 entries to drop, $3-$5 events (id,
/// n, body), $6-$7 whose events are replaced and how many they are now,
/// $8-$12 records.
///
/// The stale rows are found one id at a time through the primary key (the
/// `LATERAL ... OFFSET 0` cannot be flattened into a join) and deleted by
/// row address. Written as a join, it was planned as a hash join over a
/// sequential scan of every event of every execution until autovacuum
/// first analyzed the table: 5 ms per statement at 40,000 events, growing
/// with the history (`bench/pg_statements.py`, auto_explain).
///
/// The delete by address is gated on there being any (`cardinality(..) >
/// 0`, a one-time filter): a plan cached while `events` was small deletes
/// by a sequential scan with a `ctid` filter, and kept doing so for every
/// end as the table grew (8.2 million rows read over 20,000 executions).
/// Only a later attempt writing fewer events than an earlier one has
/// stale rows, and only it may still meet that scan.
static WRITE: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| {
    format!(
        "WITH written AS (\
             INSERT INTO events (id, n, body) \
             SELECT * FROM unnest($3::text[], $4::integer[], $5::text[]) \
             ON CONFLICT (id, n) DO UPDATE SET body = EXCLUDED.body), \
         old AS (SELECT ARRAY(\
             SELECT s.ctid FROM unnest($6::text[], $7::integer[]) AS c(id, count) \
             CROSS JOIN LATERAL (\
                 SELECT e.ctid FROM events e WHERE e.id = c.id AND e.n >= c.count OFFSET 0\
             ) s) AS rows), \
         stale AS (\
             DELETE FROM events WHERE ctid = ANY ((SELECT rows FROM old)::tid[]) \
             AND cardinality((SELECT rows FROM old)) > 0), \
         record AS (\
             INSERT INTO executions (id, status, parent, action, body) \
             SELECT * FROM unnest($8::text[], $9::text[], $10::text[], $11::text[], $12::text[]) \
             {}), \
         gone AS (DELETE FROM queue WHERE seq = ANY($2::bigint[]) RETURNING id, task), \
         flushed AS (\
             INSERT INTO flushes SELECT $1::integer, now() WHERE $1 IS NOT NULL \
             ON CONFLICT (id) DO UPDATE SET at = now()) \
         SELECT pg_notify('{}', id) FROM gone WHERE task",
        super::backend::replacing!(),
        super::lease::ENDED
    )
});

/// One [`WRITE`]'s columns.
#[derive(Default)]
pub(super) struct Ends {
    flush_row: Option<i32>,
    seqs: Vec<i64>,
    event_ids: Vec<String>,
    event_ns: Vec<i32>,
    event_bodies: Vec<String>,
    replaced: Vec<String>,
    counts: Vec<i32>,
    records: Rows,
}

impl Ends {
    /// Replace `id`'s events with `events`. An id once per statement
    /// (one row may be touched once).
    pub(super) fn events(&mut self, id: ExecutionId, events: &[Event]) -> &mut Self {
        let id = id.to_string();
        for (n, event) in events.iter().enumerate() {
            self.event_ids.push(id.clone());
            self.event_ns.push(n as i32);
            self.event_bodies
                .push(serde_json::to_string(event).expect("events always serialize"));
        }
        self.replaced.push(id);
        self.counts.push(events.len() as i32);
        self
    }

    /// Write `record` (after its events, in the same statement). An id
    /// once per statement.
    pub(super) fn record(&mut self, record: &ExecutionRecord) -> &mut Self {
        self.records.push(record);
        self
    }

    /// Drop these queue entries.
    pub(super) fn dequeue(&mut self, seqs: &[u64]) -> &mut Self {
        self.seqs.extend(seqs.iter().map(|s| *s as i64));
        self
    }

    /// Commit `row` of `flushes` too: the commit then waits for the disk
    /// however little else it writes.
    pub(super) fn flush_row(&mut self, row: i32) -> &mut Self {
        self.flush_row = Some(row);
        self
    }

    /// Write it all in one statement: durably (with every earlier commit)
    /// or with the next flush.
    pub(super) fn write(self, store: &PgStore, durable: bool) -> Result<(), StoreError> {
        let write = move |client: deadpool_postgres::Object, _| async move {
            let write = client.prepare_cached(&WRITE).await?;
            client
                .execute(
                    &write,
                    &[
                        &self.flush_row,
                        &self.seqs,
                        &self.event_ids,
                        &self.event_ns,
                        &self.event_bodies,
                        &self.replaced,
                        &self.counts,
                        &self.records.ids,
                        &self.records.statuses,
                        &self.records.parents,
                        &self.records.actions,
                        &self.records.bodies,
                    ],
                )
                .await
                .map(drop)
        };
        if durable {
            store.durably(write)
        } else {
            store.call_unflushed(write)?;
            store.wrote_unflushed();
            Ok(())
        }
    }
}
