//! Check and purge on PostgreSQL: what `store check` and `execution purge`
//! (and `serve --retain`) do, as the embedded store does them.

use super::backend::decode;
use super::PgStore;
use crate::bundle::{payloads, referenced};
use crate::error::StoreError;
use crate::record::ExecutionRecord;
use crate::store::{Backend, Digest};
use crate::{CheckReport, Event, PurgeFilter, PurgeReport};
use std::collections::{BTreeSet, HashSet};

impl PgStore {
    /// Every `(id, body)` of a table with those columns.
    fn all(&self, sql: &'static str) -> Result<Vec<(String, String)>, StoreError> {
        self.call(move |client, _| async move {
            let rows = client.query(sql, &[]).await?;
            Ok(rows.iter().map(|r| (r.get(0), r.get(1))).collect())
        })
    }

    /// Read everything back: records and events parse, every blob's
    /// chunks add up to its size and its digest.
    pub(super) fn check_all(&self) -> Result<CheckReport, StoreError> {
        let mut report = CheckReport::default();
        for (id, body) in self.all("SELECT id, body FROM executions ORDER BY id")? {
            report.records += 1;
            if let Err(e) = decode(&id, &body) {
                report.damage(format!("record {id}"), e.to_string());
            }
        }
        for (id, body) in self.all("SELECT id, body FROM events ORDER BY id, n")? {
            report.event_entries += 1;
            if let Err(e) = serde_json::from_str::<Event>(&body) {
                report.damage(format!("events of {id}"), e.to_string());
            }
        }
        report.journal_entries = self.count("SELECT count(*) FROM workflow_log")?;
        let blobs = self.call(|client, _| async move {
            let rows = client.query("SELECT digest, size FROM blobs", &[]).await?;
            Ok(rows
                .iter()
                .map(|r| (r.get::<_, String>(0), r.get::<_, i64>(1)))
                .collect::<Vec<_>>())
        })?;
        for (digest, size) in blobs {
            report.blobs += 1;
            report.blob_bytes += size.max(0) as u64;
            let item = format!("blob {digest}");
            let Some(d) = Digest::parse(&digest) else {
                report.damage(item, "not a sha256 digest");
                continue;
            };
            match self.get_blob(&d)? {
                None => report.damage(item, "gone while checking"),
                Some(b) if b.len() as i64 != size => {
                    report.damage(item, format!("{} bytes of its {size} are stored", b.len()))
                }
                Some(b) if Digest::of(&b) != d => {
                    report.damage(item, "its content does not match its digest")
                }
                Some(_) => {}
            }
        }
        Ok(report)
    }

    fn count(&self, sql: &'static str) -> Result<usize, StoreError> {
        self.call(move |client, _| async move {
            let n: i64 = client.query_one(sql, &[]).await?.get(0);
            Ok(n as usize)
        })
    }

    /// Delete what `filter` selects (whole ended trees), with the blobs
    /// nothing else refers to; blobs in `in_use` are kept.
    pub(super) fn purge_selected(
        &self,
        filter: &PurgeFilter,
        in_use: &HashSet<String>,
    ) -> Result<PurgeReport, StoreError> {
        let mut report = PurgeReport {
            dry_run: filter.dry_run,
            ..Default::default()
        };
        let bound = filter.bound().to_string();
        let top = self.call(move |client, _| async move {
            let rows = client
                .query(
                    "SELECT id, body FROM executions WHERE parent IS NULL AND id < $1 ORDER BY id",
                    &[&bound],
                )
                .await?;
            Ok(rows
                .iter()
                .map(|r| (r.get::<_, String>(0), r.get::<_, String>(1)))
                .collect::<Vec<_>>())
        })?;
        let mut doomed: Vec<ExecutionRecord> = Vec::new();
        for (id, body) in top {
            let record = decode(&id, &body)?;
            crate::upkeep::doom(self, filter, record, &mut report, &mut doomed)?;
        }
        if doomed.is_empty() {
            return Ok(report);
        }
        let mut candidates: BTreeSet<String> = BTreeSet::new();
        for record in &doomed {
            candidates.extend(referenced(record, &self.events(record.id)?));
        }
        let ids: Vec<String> = doomed.iter().map(|r| r.id.to_string()).collect();
        let dry_run = filter.dry_run;
        let (events, journal, bytes) = self.call(move |mut client, _| async move {
            let tx = client.transaction().await?;
            let sizes = tx
                .query_one(
                    "SELECT \
                       (SELECT count(*) FROM events WHERE id = ANY($1)), \
                       (SELECT count(*) FROM workflow_log WHERE id = ANY($1)), \
                       (SELECT coalesce(sum(length(body)), 0) FROM events WHERE id = ANY($1)) \
                     + (SELECT coalesce(sum(length(entry)), 0) FROM workflow_log WHERE id = ANY($1)) \
                     + (SELECT coalesce(sum(length(body)), 0) FROM executions WHERE id = ANY($1))",
                    &[&ids],
                )
                .await?;
            let counted = (
                sizes.get::<_, i64>(0),
                sizes.get::<_, i64>(1),
                sizes.get::<_, i64>(2),
            );
            if !dry_run {
                for sql in [
                    "DELETE FROM events WHERE id = ANY($1)",
                    "DELETE FROM workflow_log WHERE id = ANY($1)",
                    "DELETE FROM executions WHERE id = ANY($1)",
                ] {
                    tx.execute(sql, &[&ids]).await?;
                }
            }
            tx.commit().await?;
            Ok(counted)
        })?;
        report.event_entries += events as usize;
        report.journal_entries += journal as usize;
        report.bytes += bytes as u64;
        let kept = self.referenced_blobs(&doomed)?;
        let gone: Vec<String> = candidates
            .into_iter()
            .filter(|d| !kept.contains(d) && !in_use.contains(d))
            .collect();
        let (blobs, blob_bytes) = self.call(move |client, _| async move {
            let row = client
                .query_one(
                    "SELECT count(*), coalesce(sum(size), 0)::bigint FROM blobs WHERE digest = ANY($1)",
                    &[&gone],
                )
                .await?;
            if !dry_run {
                client
                    .execute("DELETE FROM blobs WHERE digest = ANY($1)", &[&gone])
                    .await?;
            }
            Ok((row.get::<_, i64>(0), row.get::<_, i64>(1)))
        })?;
        report.blobs += blobs as usize;
        report.bytes += blob_bytes as u64;
        Ok(report)
    }

    /// Every blob a remaining execution refers to (its component or
    /// workflow file, its events' payloads).
    fn referenced_blobs(&self, doomed: &[ExecutionRecord]) -> Result<HashSet<String>, StoreError> {
        let gone: HashSet<String> = doomed.iter().map(|r| r.id.to_string()).collect();
        let mut out = HashSet::new();
        for (id, body) in self.all("SELECT id, body FROM executions")? {
            if gone.contains(&id) {
                continue; // a dry run still sees them
            }
            out.insert(decode(&id, &body)?.component_digest);
        }
        for (id, body) in self.all("SELECT id, body FROM events")? {
            if gone.contains(&id) {
                continue;
            }
            if let Ok(event) = serde_json::from_str::<Event>(&body) {
                out.extend(payloads(std::slice::from_ref(&event)));
            }
        }
        Ok(out)
    }
}
