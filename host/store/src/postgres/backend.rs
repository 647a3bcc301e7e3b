//! [`Backend`] for PostgreSQL: each operation of the interface as SQL.

use super::ended::Ends;
use super::{PgStore, CHUNK};
use crate::error::StoreError;
use crate::record::{ExecutionId, ExecutionRecord};
use crate::store::{Backend, Digest, ListFilter, Listing, Queued, Unreadable};
use crate::{CheckReport, Event, PurgeFilter, PurgeReport};
use std::collections::HashSet;
use tokio_postgres::types::ToSql;

/// The columns a record is written as.
struct Row {
    id: String,
    status: String,
    parent: Option<String>,
    action: String,
    body: String,
}

impl Row {
    fn of(record: &ExecutionRecord) -> Self {
        Self {
            id: record.id.to_string(),
            status: record.status.as_str().to_owned(),
            parent: record.parent.map(|p| p.to_string()),
            action: record.action.clone(),
            body: serde_json::to_string(record).expect("records always serialize"),
        }
    }
}

/// Records as columns, one element per record: what a statement writing
/// many at once (`unnest`) takes.
#[derive(Default)]
pub(super) struct Rows {
    pub ids: Vec<String>,
    pub statuses: Vec<String>,
    pub parents: Vec<Option<String>>,
    pub actions: Vec<String>,
    pub bodies: Vec<String>,
}

impl Rows {
    pub(super) fn push(&mut self, record: &ExecutionRecord) {
        let row = Row::of(record);
        self.ids.push(row.id);
        self.statuses.push(row.status);
        self.parents.push(row.parent);
        self.actions.push(row.action);
        self.bodies.push(row.body);
    }
}

/// What writing a record over an earlier one replaces: everything.
macro_rules! replacing {
    () => {
        "ON CONFLICT (id) DO UPDATE SET status = EXCLUDED.status, parent = EXCLUDED.parent, \
         action = EXCLUDED.action, body = EXCLUDED.body"
    };
}
pub(super) use replacing;

const UPSERT: &str = concat!(
    "INSERT INTO executions (id, status, parent, action, body) VALUES ($1, $2, $3, $4, $5) ",
    replacing!()
);

/// Queue entries and their records (arrays of the columns, one element
/// per execution), and the arrival told (at commit, once per kind). An
/// entry with a slot ($9) is held from the start by worker $10 for $11
/// ms, as a claim would hold it, and tells no one: its worker has it.
static ENQUEUE: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| {
    format!(
        "WITH entry AS (\
             INSERT INTO queue (id, payload, workflow, task, worker, slot, claimed_at, \
                                lease_until, claims) \
             SELECT u.id, u.payload, u.workflow, u.task, \
                 CASE WHEN u.slot IS NOT NULL THEN $10::text END, u.slot, \
                 CASE WHEN u.slot IS NOT NULL THEN now() END, \
                 CASE WHEN u.slot IS NOT NULL \
                     THEN now() + $11::float8 * interval '1 millisecond' END, \
                 CASE WHEN u.slot IS NOT NULL THEN 1 ELSE 0 END \
             FROM unnest($1::text[], $2::bytea[], $3::boolean[], $4::boolean[], \
                         $9::integer[]) AS u(id, payload, workflow, task, slot) \
             RETURNING seq, id, workflow, worker), \
         record AS (\
             INSERT INTO executions (id, status, parent, action, body) \
             SELECT * FROM unnest($1::text[], $5::text[], $6::text[], $7::text[], $8::text[]) {}) \
         SELECT seq, id, CASE WHEN worker IS NULL THEN \
             pg_notify('{}', CASE WHEN workflow THEN 'workflow' ELSE 'action' END) END \
         FROM entry",
        replacing!(),
        super::lease::ARRIVALS
    )
});

/// Who holds the entries an accept writes held: a worker, for how long,
/// and each entry's slot (None: not held).
pub(super) struct Holding<'a> {
    pub worker: &'a str,
    pub lease: std::time::Duration,
    pub slots: &'a [Option<u32>],
}

pub(super) fn decode(id: &str, body: &str) -> Result<ExecutionRecord, StoreError> {
    serde_json::from_str(body).map_err(|cause| StoreError::Corrupt {
        key: id.to_owned(),
        cause,
    })
}

/// The record read beside a queue entry (a `LEFT JOIN`: none when it is
/// gone).
pub(super) fn decode_joined(
    id: &str,
    body: Option<String>,
) -> Result<Option<Box<ExecutionRecord>>, StoreError> {
    body.map(|body| decode(id, &body).map(Box::new)).transpose()
}

impl PgStore {
    /// Write one record, durably or not.
    fn write(&self, record: &ExecutionRecord, durable: bool) -> Result<(), StoreError> {
        let row = Row::of(record);
        // One statement, its own transaction.
        let upsert = move |client: deadpool_postgres::Object, _| async move {
            let upsert = client.prepare_cached(UPSERT).await?;
            client
                .execute(
                    &upsert,
                    &[&row.id, &row.status, &row.parent, &row.action, &row.body],
                )
                .await
        };
        if durable {
            self.durably(upsert)?;
        } else {
            self.call_unflushed(upsert)?;
            self.wrote_unflushed();
        }
        Ok(())
    }

    /// Queue entries and their records in one statement, durably (every
    /// earlier write with them) or with the next flush.
    pub(super) fn enqueue_all(
        &self,
        entries: &[(&ExecutionRecord, &[u8])],
        durable: bool,
        holding: Option<Holding>,
    ) -> Result<Vec<u64>, StoreError> {
        let slots: Vec<Option<i32>> = match &holding {
            Some(h) => h.slots.iter().map(|s| s.map(|s| s as i32)).collect(),
            None => vec![None; entries.len()],
        };
        let worker = holding.as_ref().map(|h| h.worker.to_owned());
        let lease = holding.as_ref().map(|h| h.lease.as_millis() as f64);
        let mut records = Rows::default();
        for (record, _) in entries {
            records.push(record);
        }
        let ids = records.ids.clone();
        let payloads: Vec<Vec<u8>> = entries.iter().map(|(_, p)| p.to_vec()).collect();
        let workflows: Vec<bool> = entries
            .iter()
            .map(|(r, _)| r.kind == crate::Kind::Workflow)
            .collect();
        let tasks: Vec<bool> = entries.iter().map(|(r, _)| r.parent.is_some()).collect();
        let enqueue = move |client: deadpool_postgres::Object, _| async move {
            let enqueue = client.prepare_cached(&ENQUEUE).await?;
            let r = &records;
            let rows = client
                .query(
                    &enqueue,
                    &[
                        &r.ids,
                        &payloads,
                        &workflows,
                        &tasks,
                        &r.statuses,
                        &r.parents,
                        &r.actions,
                        &r.bodies,
                        &slots,
                        &worker,
                        &lease,
                    ],
                )
                .await?;
            Ok(rows
                .iter()
                .map(|r| (r.get::<_, String>(1), r.get::<_, i64>(0) as u64))
                .collect::<std::collections::HashMap<_, _>>())
        };
        let seqs = if durable {
            self.durably(enqueue)?
        } else {
            let seqs = self.call_unflushed(enqueue)?;
            self.wrote_unflushed();
            seqs
        };
        ids.iter()
            .map(|id| {
                seqs.get(id).copied().ok_or_else(|| StoreError::Io {
                    at: self.at().to_owned(),
                    cause: format!("execution {id} was not queued"),
                })
            })
            .collect()
    }

    /// Records from a query whose columns are (id, body).
    fn records(
        &self,
        sql: &'static str,
        params: Vec<Box<dyn ToSql + Send + Sync>>,
    ) -> Result<Vec<(String, String)>, StoreError> {
        self.call(move |client, _| async move {
            let refs: Vec<&(dyn ToSql + Sync)> = params
                .iter()
                .map(|p| p.as_ref() as &(dyn ToSql + Sync))
                .collect();
            let sql = client.prepare_cached(sql).await?;
            let rows = client.query(&sql, &refs).await?;
            Ok(rows.iter().map(|r| (r.get(0), r.get(1))).collect())
        })
    }
}

impl Backend for PgStore {
    fn location(&self) -> String {
        self.at().to_owned()
    }

    fn put(&self, record: &ExecutionRecord) -> Result<(), StoreError> {
        self.write(record, true)
    }

    fn put_unflushed(&self, record: &ExecutionRecord) -> Result<(), StoreError> {
        self.write(record, false)
    }

    /// One synchronous commit makes every earlier one durable.
    fn flush(&self) -> Result<(), StoreError> {
        self.flush_ended(&[], &[])
    }

    /// One statement and one synchronous commit: the drops become durable
    /// with the records written ahead of them (the WAL is one sequence),
    /// never before.
    fn flush_ended(
        &self,
        ended: &[(&ExecutionRecord, &[Event])],
        seqs: &[u64],
    ) -> Result<(), StoreError> {
        if ended.is_empty()
            && seqs.is_empty()
            && !self.dirty.load(std::sync::atomic::Ordering::SeqCst)
        {
            return Ok(());
        }
        let mut ends = Ends::default();
        // One row may be touched once per statement: an execution ended
        // twice in a batch is written as it ended last.
        let mut seen = HashSet::new();
        for (record, events) in ended.iter().rev() {
            if seen.insert(record.id) {
                ends.events(record.id, events).record(record);
            }
        }
        // A row of this handle's own: handles in other processes flushing
        // at the same time do not wait on each other's row lock (and so on
        // each other's disk sync).
        ends.dequeue(seqs).flush_row(self.flush_row);
        ends.write(self, true)
    }

    fn get(&self, id: ExecutionId) -> Result<Option<ExecutionRecord>, StoreError> {
        let rows = self.records(
            "SELECT id, body FROM executions WHERE id = $1",
            vec![Box::new(id.to_string())],
        )?;
        rows.first().map(|(id, body)| decode(id, body)).transpose()
    }

    fn find_prefix(&self, wanted: &str) -> Result<ExecutionRecord, StoreError> {
        let not_found = || StoreError::NotFound(wanted.to_owned());
        // ULID text: only these characters can match; anything else (a
        // `%`, say) matches nothing.
        if wanted.is_empty() || !wanted.bytes().all(|b| b.is_ascii_alphanumeric()) {
            return Err(not_found());
        }
        let (count, first) = self.call({
            let pattern = format!("{wanted}%");
            move |client, _| async move {
                let rows = client
                    .query(
                        "SELECT id, body, count(*) OVER () FROM executions WHERE id LIKE $1 \
                         ORDER BY id LIMIT 1",
                        &[&pattern],
                    )
                    .await?;
                Ok(match rows.first() {
                    Some(r) => (
                        r.get::<_, i64>(2) as usize,
                        Some((r.get::<_, String>(0), r.get::<_, String>(1))),
                    ),
                    None => (0, None),
                })
            }
        })?;
        match (count, first) {
            (1, Some((id, body))) => decode(&id, &body),
            (0, _) | (_, None) => Err(not_found()),
            (count, _) => Err(StoreError::Ambiguous {
                prefix: wanted.to_owned(),
                count,
            }),
        }
    }

    fn scan(&self, filter: &ListFilter) -> Result<Listing, StoreError> {
        let status = filter.status.map(|s| s.as_str().to_owned());
        let before = filter.before.map(|b| b.to_string());
        // Top-level only is its own statement, so the planner can use
        // the partial indexes of top-level records (migration 7).
        let sql = match filter.children {
            true => {
                "SELECT id, body FROM executions \
                 WHERE ($1::text IS NULL OR status = $1) \
                   AND ($2::text IS NULL OR id < $2) \
                   AND ($3::text IS NULL OR action = $3) \
                 ORDER BY id DESC LIMIT $4"
            }
            false => {
                "SELECT id, body FROM executions \
                 WHERE parent IS NULL \
                   AND ($1::text IS NULL OR status = $1) \
                   AND ($2::text IS NULL OR id < $2) \
                   AND ($3::text IS NULL OR action = $3) \
                 ORDER BY id DESC LIMIT $4"
            }
        };
        let rows = self.records(
            sql,
            vec![
                Box::new(status),
                Box::new(before),
                Box::new(filter.action.clone()),
                Box::new(filter.limit.min(i64::MAX as usize) as i64),
            ],
        )?;
        let mut out = Listing::default();
        for (id, body) in rows {
            match decode(&id, &body) {
                Ok(r) => out.records.push(r),
                Err(error) => out.unreadable.push(Unreadable { id, error }),
            }
        }
        Ok(out)
    }

    fn children(&self, id: ExecutionId) -> Result<Vec<ExecutionRecord>, StoreError> {
        self.records(
            "SELECT id, body FROM executions WHERE parent = $1 ORDER BY id",
            vec![Box::new(id.to_string())],
        )?
        .iter()
        .map(|(id, body)| decode(id, body))
        .collect()
    }

    fn len(&self) -> Result<usize, StoreError> {
        self.call(|client, _| async move {
            let n: i64 = client
                .query_one("SELECT count(*) FROM executions", &[])
                .await?
                .get(0);
            Ok(n as usize)
        })
    }

    /// The entry and the record in one statement (atomic on its own, one
    /// round trip: an accept's latency is mostly round trips), committed
    /// without waiting: durable with the next flush.
    fn enqueue(&self, record: &ExecutionRecord, payload: &[u8]) -> Result<u64, StoreError> {
        Ok(self.enqueue_all(&[(record, payload)], false, None)?[0])
    }

    /// Every entry and record in one statement and one synchronous commit.
    fn accept(&self, entries: &[(&ExecutionRecord, &[u8])]) -> Result<Vec<u64>, StoreError> {
        self.enqueue_all(entries, true, None)
    }

    fn queued(&self) -> Result<Vec<Queued>, StoreError> {
        let rows = self.call(|client, _| async move {
            let rows = client
                .query("SELECT seq, id, payload FROM queue ORDER BY seq", &[])
                .await?;
            Ok(rows
                .iter()
                .map(|r| (r.get::<_, i64>(0), r.get::<_, String>(1), r.get(2)))
                .collect::<Vec<(i64, String, Vec<u8>)>>())
        })?;
        rows.into_iter()
            .map(|(seq, id, payload)| {
                Ok(Queued {
                    seq: seq as u64,
                    id: id.parse().map_err(|_| StoreError::BadKey)?,
                    payload,
                })
            })
            .collect()
    }

    /// Whoever waits for it (the workflow that queued a task) hears at
    /// commit.
    fn dequeue(&self, seq: u64) -> Result<(), StoreError> {
        let mut ends = Ends::default();
        ends.dequeue(&[seq]);
        ends.write(self, false)
    }

    fn queue_len(&self) -> Result<usize, StoreError> {
        self.call(|client, _| async move {
            let n: i64 = client
                .query_one("SELECT count(*) FROM queue WHERE NOT task", &[])
                .await?
                .get(0);
            Ok(n as usize)
        })
    }

    fn shared_queue(&self) -> Option<&dyn crate::SharedQueue> {
        Some(self)
    }

    /// Durable with the next durable write (its record's, which follows).
    fn put_events(&self, id: ExecutionId, events: &[Event]) -> Result<(), StoreError> {
        let mut ends = Ends::default();
        ends.events(id, events);
        ends.write(self, false)
    }

    /// One statement, one round trip: the events and the record commit
    /// together.
    fn put_ended(
        &self,
        record: &ExecutionRecord,
        events: &[Event],
        durable: bool,
    ) -> Result<(), StoreError> {
        let mut ends = Ends::default();
        ends.events(record.id, events).record(record);
        ends.write(self, durable)
    }

    fn events(&self, id: ExecutionId) -> Result<Vec<Event>, StoreError> {
        let key = id.to_string();
        let rows = self.call(move |client, _| async move {
            let rows = client
                .query("SELECT body FROM events WHERE id = $1 ORDER BY n", &[&key])
                .await?;
            Ok(rows.iter().map(|r| r.get(0)).collect::<Vec<String>>())
        })?;
        rows.iter()
            .map(|b| {
                serde_json::from_str(b).map_err(|cause| StoreError::Corrupt {
                    key: format!("events of {id}"),
                    cause,
                })
            })
            .collect()
    }

    fn append_workflow_log(
        &self,
        id: ExecutionId,
        seq: u32,
        entries: &[Vec<u8>],
        flush: bool,
    ) -> Result<(), StoreError> {
        let id = id.to_string();
        let entries = entries.to_vec();
        let append = move |mut client: deadpool_postgres::Object, _| async move {
            let tx = client.transaction().await?;
            let insert = tx
                .prepare_cached(
                    "INSERT INTO workflow_log (id, seq, entry) VALUES ($1, $2, $3) \
                     ON CONFLICT (id, seq) DO UPDATE SET entry = EXCLUDED.entry",
                )
                .await?;
            for (i, entry) in entries.iter().enumerate() {
                let n = (seq as i64 + i as i64) as i32;
                tx.execute(&insert, &[&id, &n, entry]).await?;
            }
            tx.commit().await
        };
        if flush {
            self.durably(append)?;
        } else {
            self.call_unflushed(append)?;
            self.wrote_unflushed();
        }
        Ok(())
    }

    fn put_trigger(&self, instance: &crate::TriggerInstance) -> Result<(), StoreError> {
        let id = instance.id.to_string();
        let processed = instance.processed;
        let body = serde_json::to_string(instance).expect("trigger instances serialize");
        self.call(move |client, _| async move {
            client
                .execute(
                    "INSERT INTO trigger_instances (id, processed, body) VALUES ($1, $2, $3) \
                     ON CONFLICT (id) DO UPDATE SET processed = $2, body = $3",
                    &[&id, &processed, &body],
                )
                .await
                .map(drop)
        })
    }

    fn put_trigger_new(&self, instance: &crate::TriggerInstance) -> Result<bool, StoreError> {
        let id = instance.id.to_string();
        let processed = instance.processed;
        let body = serde_json::to_string(instance).expect("trigger instances serialize");
        self.call(move |client, _| async move {
            let n = client
                .execute(
                    "INSERT INTO trigger_instances (id, processed, body) VALUES ($1, $2, $3) \
                     ON CONFLICT (id) DO NOTHING",
                    &[&id, &processed, &body],
                )
                .await?;
            Ok(n == 1)
        })
    }

    fn trigger(&self, id: ExecutionId) -> Result<Option<crate::TriggerInstance>, StoreError> {
        let id = id.to_string();
        let body: Option<String> = self.call(move |client, _| async move {
            let row = client
                .query_opt("SELECT body FROM trigger_instances WHERE id = $1", &[&id])
                .await?;
            Ok(row.map(|r| r.get(0)))
        })?;
        body.map(|b| bus_json(&b, "trigger instance")).transpose()
    }

    fn triggers(
        &self,
        unprocessed: bool,
        limit: usize,
    ) -> Result<Vec<crate::TriggerInstance>, StoreError> {
        let limit = limit.min(i64::MAX as usize) as i64;
        let bodies: Vec<String> = self.call(move |client, _| async move {
            let sql = if unprocessed {
                "SELECT body FROM trigger_instances WHERE NOT processed ORDER BY id LIMIT $1"
            } else {
                "SELECT body FROM trigger_instances ORDER BY id DESC LIMIT $1"
            };
            let rows = client.query(sql, &[&limit]).await?;
            Ok(rows.iter().map(|r| r.get(0)).collect())
        })?;
        bodies
            .iter()
            .map(|b| bus_json(b, "trigger instance"))
            .collect()
    }

    fn purge_triggers(
        &self,
        before: std::time::SystemTime,
        dry_run: bool,
    ) -> Result<(usize, usize), StoreError> {
        let cutoff = ExecutionId::first_at(before).to_string();
        self.call(move |mut client, _| async move {
            let tx = client.transaction().await?;
            let old = "SELECT id FROM trigger_instances WHERE processed AND id < $1";
            let counted = tx
                .query_one(
                    &format!(
                        "SELECT (SELECT count(*) FROM ({old}) t), \
                         (SELECT count(*) FROM enforcements WHERE instance IN ({old}))"
                    ),
                    &[&cutoff],
                )
                .await?;
            let (instances, enforcements): (i64, i64) = (counted.get(0), counted.get(1));
            if !dry_run {
                tx.execute(
                    &format!("DELETE FROM enforcements WHERE instance IN ({old})"),
                    &[&cutoff],
                )
                .await?;
                tx.execute(
                    "DELETE FROM trigger_instances WHERE processed AND id < $1",
                    &[&cutoff],
                )
                .await?;
            }
            tx.commit().await?;
            Ok((instances as usize, enforcements as usize))
        })
    }

    /// One transaction: one commit (one WAL flush) for an event's rules.
    fn put_enforcements(&self, enforcements: &[crate::Enforcement]) -> Result<(), StoreError> {
        let rows: Vec<(String, String, String)> = enforcements
            .iter()
            .map(|e| {
                let body = serde_json::to_string(e).expect("enforcements serialize");
                (e.instance.to_string(), e.rule.clone(), body)
            })
            .collect();
        self.call(move |mut client, _| async move {
            let tx = client.transaction().await?;
            let insert = tx
                .prepare_cached(
                    "INSERT INTO enforcements (instance, rule, body) VALUES ($1, $2, $3) \
                     ON CONFLICT (instance, rule) DO UPDATE SET body = $3",
                )
                .await?;
            for (instance, rule, body) in &rows {
                tx.execute(&insert, &[instance, rule, body]).await?;
            }
            tx.commit().await
        })
    }

    fn enforcements(
        &self,
        instance: Option<ExecutionId>,
        limit: usize,
    ) -> Result<Vec<crate::Enforcement>, StoreError> {
        let instance = instance.map(|i| i.to_string());
        let limit = limit.min(i64::MAX as usize) as i64;
        let bodies: Vec<String> = self.call(move |client, _| async move {
            let rows = match instance {
                Some(i) => {
                    client
                        .query(
                            "SELECT body FROM enforcements WHERE instance = $1 ORDER BY rule",
                            &[&i],
                        )
                        .await?
                }
                None => client
                    .query(
                        "SELECT body FROM enforcements ORDER BY instance DESC, rule DESC LIMIT $1",
                        &[&limit],
                    )
                    .await?,
            };
            Ok(rows.iter().map(|r| r.get(0)).collect())
        })?;
        bodies.iter().map(|b| bus_json(b, "enforcement")).collect()
    }

    fn workflow_log(&self, id: ExecutionId) -> Result<Vec<Vec<u8>>, StoreError> {
        let id = id.to_string();
        self.call(move |client, _| async move {
            let rows = client
                .query(
                    "SELECT entry FROM workflow_log WHERE id = $1 ORDER BY seq",
                    &[&id],
                )
                .await?;
            Ok(rows.iter().map(|r| r.get(0)).collect())
        })
    }

    /// Content-addressed: the same bytes twice are one row (and the
    /// second write changes nothing). Durable when this returns: a record
    /// pointing at it may be written next.
    fn put_blob(&self, bytes: &[u8]) -> Result<Digest, StoreError> {
        let digest = Digest::of(bytes);
        let key = digest.to_string();
        let bytes = bytes.to_vec();
        self.call(move |mut client, _| async move {
            let tx = client.transaction().await?;
            let new = tx
                .execute(
                    "INSERT INTO blobs (digest, size) VALUES ($1, $2) ON CONFLICT DO NOTHING",
                    &[&key, &(bytes.len() as i64)],
                )
                .await?;
            if new == 1 {
                let insert = tx
                    .prepare("INSERT INTO blob_chunks (digest, n, data) VALUES ($1, $2, $3)")
                    .await?;
                for (n, chunk) in bytes.chunks(CHUNK).enumerate() {
                    tx.execute(&insert, &[&key, &(n as i32), &chunk]).await?;
                }
            }
            tx.commit().await
        })?;
        Ok(digest)
    }

    fn has_blob(&self, digest: &Digest) -> Result<bool, StoreError> {
        let key = digest.to_string();
        self.call(move |client, _| async move {
            Ok(client
                .query_opt("SELECT 1 FROM blobs WHERE digest = $1", &[&key])
                .await?
                .is_some())
        })
    }

    fn get_blob(&self, digest: &Digest) -> Result<Option<Vec<u8>>, StoreError> {
        let key = digest.to_string();
        self.call(move |client, _| async move {
            let Some(blob) = client
                .query_opt("SELECT size FROM blobs WHERE digest = $1", &[&key])
                .await?
            else {
                return Ok(None);
            };
            let size: i64 = blob.get(0);
            let mut out = Vec::with_capacity(size.max(0) as usize);
            for row in client
                .query(
                    "SELECT data FROM blob_chunks WHERE digest = $1 ORDER BY n",
                    &[&key],
                )
                .await?
            {
                out.extend_from_slice(row.get::<_, &[u8]>(0));
            }
            Ok(Some(out))
        })
    }

    fn blobs(&self) -> Result<Vec<Digest>, StoreError> {
        let keys = self.call(|client, _| async move {
            let rows = client
                .query("SELECT digest FROM blobs ORDER BY digest", &[])
                .await?;
            Ok(rows.iter().map(|r| r.get(0)).collect::<Vec<String>>())
        })?;
        keys.iter()
            .map(|k| Digest::parse(k).ok_or(StoreError::BadKey))
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
}

/// A stored trigger instance or enforcement, read back.
fn bus_json<T: serde::de::DeserializeOwned>(body: &str, what: &str) -> Result<T, StoreError> {
    serde_json::from_str(body)
        .map_err(|e| StoreError::Other(format!("a stored {what} is not readable: {e}")))
}
