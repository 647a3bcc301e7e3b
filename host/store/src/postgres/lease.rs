//! [`SharedQueue`] for PostgreSQL: a claim is one `UPDATE ... FROM (SELECT
//! ... FOR UPDATE SKIP LOCKED)`, so claimers never wait on each other and
//! never win the same entry; leases and heartbeats are timestamps on the
//! server's clock (`now()`).
//!
//! Claims, renewals and departures commit without waiting for the disk
//! (the backend's unflushed sessions):
//! one lost in a crash of the database leaves its entry claimable again,
//! which is what a crash of its worker does anyway.

use super::PgStore;
use crate::error::StoreError;
use crate::lease::{Cancel, Claimed, Claiming, Endings, Entry, Held, Lease, SharedQueue, Worker};
use crate::record::{ExecutionId, Kind};
use crate::store::Queued;
use std::sync::Arc;
use std::time::{Duration, SystemTime};
use tokio::sync::Notify;

/// The channel every enqueue and release notifies (`NOTIFY`, delivered
/// when its transaction commits), with what arrived: `action`, `workflow`,
/// or nothing said (a release: either).
pub(super) const ARRIVALS: &str = "wasmflow_queue";

/// The channel every dequeue of a workflow's task notifies, with the
/// task's execution id. Only tasks have a waiter; telling every top-level
/// action's end too cost a tenth of the throughput of trivial actions.
pub(super) const ENDED: &str = "wasmflow_ended";

/// Who is told what the listening connection hears.
pub(super) struct Heard {
    /// Arrivals of actions (0) and of workflows (1).
    arrivals: [Arc<Notify>; 2],
    endings: Arc<Endings>,
}

/// A claim for `n` entries: one per slot of `$2`, the rest for no slot
/// (`$2[k]` past its end is NULL). `n` is written into the statement,
/// not passed: a plan made for "as many rows as a parameter says" expects
/// a tenth of the queue and joins it by hashing the whole table; one per
/// `n` (a few: one per number of idle slots) looks up `n` rows by index.
///
/// The rows locked are updated by their address (`ctid`: a TID scan, the
/// sessions forbid sequential ones), not joined back to the queue by
/// `seq`: a plan cached while the queue was nearly empty (as it is when
/// autovacuum analyzes an idle system) joined them by walking the whole
/// queue, and a backlog of thousands then made every claim walk it. The
/// locks keep the addresses: no one else can update a row this statement
/// locked. In `SET`, `q.worker` is the row's worker before the claim (the
/// one a takeover lost).
pub(super) fn claim(n: usize) -> String {
    format!(
        "\
WITH locked AS (
    SELECT ctid, seq, worker AS was, row_number() OVER (ORDER BY seq) AS k FROM (
        SELECT ctid, seq, worker FROM queue
        WHERE (worker IS NULL OR lease_until < now()) AND workflow = $4
        ORDER BY seq LIMIT {n}
        FOR UPDATE SKIP LOCKED
    ) first
), claimed AS (
    UPDATE queue q SET
        worker = $1, slot = ($2::integer[])[(SELECT l.k FROM locked l WHERE l.seq = q.seq)],
        claimed_at = now(),
        lease_until = now() + $3 * interval '1 millisecond',
        claims = q.claims + 1,
        lost = q.lost + (CASE WHEN q.worker IS NULL THEN 0 ELSE 1 END)
    WHERE q.ctid = ANY (ARRAY(SELECT ctid FROM locked))
    RETURNING q.seq, q.id, q.payload, q.claims, q.lost, q.slot
)
SELECT c.seq, c.id, c.payload, c.claims, c.lost, l.was, e.body, c.slot
FROM claimed c JOIN locked l ON l.seq = c.seq
LEFT JOIN executions e ON e.id = c.id ORDER BY c.seq"
    )
}

fn id_of(text: &str) -> Result<ExecutionId, StoreError> {
    text.parse().map_err(|_| StoreError::BadKey)
}

fn millis(d: Duration) -> f64 {
    d.as_millis() as f64
}

impl PgStore {
    /// The listening connection's audience, the connection started on
    /// first use.
    fn heard(&self) -> &Heard {
        self.heard.get_or_init(|| {
            let heard = Heard {
                arrivals: Default::default(),
                endings: Arc::default(),
            };
            let (config, arrivals, endings) = (
                self.config.clone(),
                heard.arrivals.clone(),
                heard.endings.clone(),
            );
            let runtime = self.runtime.as_ref().expect("running until dropped");
            match config.get_ssl_mode() {
                tokio_postgres::config::SslMode::Disable => {
                    runtime.spawn(listen(config, tokio_postgres::NoTls, arrivals, endings))
                }
                _ => runtime.spawn(listen(config, super::tls(), arrivals, endings)),
            };
            heard
        })
    }
}

impl SharedQueue for PgStore {
    fn arrivals(&self, kind: Kind) -> Arc<Notify> {
        self.heard().arrivals[usize::from(kind == Kind::Workflow)].clone()
    }

    fn endings(&self) -> Arc<Endings> {
        self.heard().endings.clone()
    }

    fn holds(&self, id: ExecutionId) -> Result<bool, StoreError> {
        let id = id.to_string();
        self.call(move |client, _| async move {
            let held = client
                .prepare_cached("SELECT 1 FROM queue WHERE id = $1")
                .await?;
            Ok(client.query_opt(&held, &[&id]).await?.is_some())
        })
    }

    fn claim(
        &self,
        worker: &str,
        slots: &[u32],
        ahead: usize,
        lease: Duration,
        kind: Kind,
    ) -> Claiming {
        if slots.is_empty() {
            return Box::pin(async { Ok(Vec::new()) });
        }
        let (worker, lease) = (worker.to_owned(), millis(lease));
        let slots: Vec<i32> = slots.iter().map(|s| *s as i32).collect();
        let workflow = kind == Kind::Workflow;
        let sql = claim(slots.len() + ahead);
        // One statement, atomic on its own.
        let rows = self.call_unflushed_async(move |client, _| async move {
            let claim = client.prepare_cached(&sql).await?;
            let rows = client
                .query(&claim, &[&worker, &slots, &lease, &workflow])
                .await?;
            Ok(rows
                .iter()
                .map(|r| {
                    (
                        r.get::<_, i64>(0),
                        r.get::<_, String>(1),
                        r.get::<_, Vec<u8>>(2),
                        (r.get::<_, i32>(3), r.get::<_, i32>(4)),
                        r.get::<_, Option<String>>(5),
                        r.get::<_, Option<String>>(6),
                        r.get::<_, Option<i32>>(7),
                    )
                })
                .collect::<Vec<_>>())
        });
        Box::pin(async move {
            rows.await?
                .into_iter()
                .map(|(seq, id, payload, (claims, lost), was, body, slot)| {
                    let record = super::backend::decode_joined(&id, body)?;
                    Ok(Claimed {
                        entry: Queued {
                            seq: seq as u64,
                            id: id_of(&id)?,
                            payload,
                        },
                        slot: slot.map(|s| s as u32),
                        claims: claims as u32,
                        lost: lost as u32,
                        lost_by: was,
                        record,
                    })
                })
                .collect()
        })
    }

    fn accept_holding(
        &self,
        entries: &[(&crate::ExecutionRecord, &[u8])],
        slots: &[Option<u32>],
        worker: &str,
        lease: Duration,
    ) -> Result<Vec<u64>, StoreError> {
        let holding = super::backend::Holding {
            worker,
            lease,
            slots,
        };
        self.enqueue_all(entries, true, Some(holding))
    }

    fn claim_one(
        &self,
        worker: &str,
        slot: u32,
        lease: Duration,
        kind: Kind,
    ) -> Result<Option<Claimed>, StoreError> {
        let claiming = self.claim(worker, &[slot], 0, lease, kind);
        let (tx, rx) = std::sync::mpsc::sync_channel(1);
        self.runtime
            .as_ref()
            .expect("running until dropped")
            .spawn(async move {
                let _ = tx.send(claiming.await);
            });
        Ok(rx.recv().map_err(|_| self.stopped())??.pop())
    }

    fn renew(
        &self,
        worker: &str,
        concurrency: u32,
        lease: Duration,
    ) -> Result<Vec<Held>, StoreError> {
        let (worker, concurrency, lease) = (worker.to_owned(), concurrency as i32, millis(lease));
        self.call_unflushed(move |mut client, _| async move {
            let tx = client.transaction().await?;
            tx.execute(
                "INSERT INTO workers (name, started_at, heartbeat, concurrency) \
                 VALUES ($1, now(), now(), $2) ON CONFLICT (name) DO UPDATE SET \
                 heartbeat = now(), concurrency = EXCLUDED.concurrency",
                &[&worker, &concurrency],
            )
            .await?;
            let held = tx
                .query(
                    "UPDATE queue SET lease_until = now() + $2 * interval '1 millisecond' \
                     WHERE worker = $1 RETURNING seq, cancel, pause",
                    &[&worker, &lease],
                )
                .await?;
            tx.commit().await?;
            Ok(held
                .iter()
                .map(|r| Held {
                    seq: r.get::<_, i64>(0) as u64,
                    cancel: r.get(1),
                    pause: r.get(2),
                })
                .collect())
        })
    }

    fn cancel(&self, id: ExecutionId) -> Result<Cancel, StoreError> {
        let id = id.to_string();
        self.call(move |mut client, _| async move {
            let tx = client.transaction().await?;
            let withdrawn = tx
                .execute(
                    "DELETE FROM queue WHERE id = $1 AND (worker IS NULL OR lease_until < now())",
                    &[&id],
                )
                .await?;
            let outcome = if withdrawn > 0 {
                Cancel::Withdrawn
            } else {
                match tx
                    .query_opt(
                        "UPDATE queue SET cancel = true WHERE id = $1 RETURNING worker",
                        &[&id],
                    )
                    .await?
                {
                    Some(row) => Cancel::Requested {
                        worker: row.get::<_, Option<String>>(0).unwrap_or_default(),
                    },
                    None => Cancel::NotQueued,
                }
            };
            tx.commit().await?;
            Ok(outcome)
        })
    }

    fn pause(&self, id: ExecutionId) -> Result<Option<String>, StoreError> {
        let id = id.to_string();
        let row = self.call(move |client, _| async move {
            client
                .query_opt(
                    "UPDATE queue SET pause = true \
                     WHERE id = $1 AND worker IS NOT NULL AND lease_until >= now() \
                     RETURNING worker",
                    &[&id],
                )
                .await
        })?;
        Ok(row.map(|r| r.get::<_, String>(0)))
    }

    fn lead(&self, sweep: &str, worker: &str, lease: Duration) -> Result<bool, StoreError> {
        let (sweep, worker, lease) = (sweep.to_owned(), worker.to_owned(), millis(lease));
        // One statement: the row lock orders racers, and each re-checks
        // the lead once it has the row.
        let won = self.call_unflushed(move |client, _| async move {
            client
                .execute(
                    "INSERT INTO sweeps (name, holder, until) \
                     VALUES ($1, $2, now() + $3 * interval '1 millisecond') \
                     ON CONFLICT (name) DO UPDATE SET holder = EXCLUDED.holder, \
                     until = EXCLUDED.until \
                     WHERE sweeps.holder = EXCLUDED.holder OR sweeps.until < now()",
                    &[&sweep, &worker, &lease],
                )
                .await
        })?;
        Ok(won == 1)
    }

    fn leave(&self, worker: &str) -> Result<(), StoreError> {
        let worker = worker.to_owned();
        self.call(move |mut client, _| async move {
            let tx = client.transaction().await?;
            tx.execute(
                "UPDATE queue SET worker = NULL, slot = NULL, lease_until = NULL \
                 WHERE worker = $1",
                &[&worker],
            )
            .await?;
            tx.execute("DELETE FROM workers WHERE name = $1", &[&worker])
                .await?;
            tx.batch_execute(&format!("NOTIFY {ARRIVALS}")).await?;
            tx.commit().await
        })
    }

    fn claim_trigger(
        &self,
        id: ExecutionId,
        worker: &str,
        lease: Duration,
    ) -> Result<bool, StoreError> {
        let (id, worker, lease) = (id.to_string(), worker.to_owned(), millis(lease));
        // One statement, atomic on its own: the row lock makes racers
        // queue up, and each re-checks the claim once it has the row.
        let won = self.call_unflushed(move |client, _| async move {
            client
                .execute(
                    "UPDATE trigger_instances SET claimed_by = $2, \
                     claimed_until = now() + $3 * interval '1 millisecond' \
                     WHERE id = $1 AND NOT processed \
                     AND (claimed_until IS NULL OR claimed_until < now())",
                    &[&id, &worker, &lease],
                )
                .await
        })?;
        Ok(won == 1)
    }

    fn entries(&self) -> Result<Vec<Entry>, StoreError> {
        let rows = self.call(|client, _| async move {
            let rows = client
                .query(
                    "SELECT q.seq, q.id, q.worker, q.slot, q.claimed_at, q.lease_until < now(), \
                     e.body FROM queue q LEFT JOIN executions e ON e.id = q.id ORDER BY q.seq",
                    &[],
                )
                .await?;
            Ok(rows
                .iter()
                .map(|r| {
                    (
                        r.get::<_, i64>(0),
                        r.get::<_, String>(1),
                        r.get::<_, Option<String>>(2),
                        r.get::<_, Option<i32>>(3),
                        r.get::<_, Option<SystemTime>>(4),
                        r.get::<_, Option<bool>>(5),
                        r.get::<_, Option<String>>(6),
                    )
                })
                .collect::<Vec<_>>())
        })?;
        rows.into_iter()
            .map(|(seq, id, worker, slot, since, expired, body)| {
                Ok(Entry {
                    seq: seq as u64,
                    record: super::backend::decode_joined(&id, body)?,
                    id: id_of(&id)?,
                    lease: worker.map(|worker| Lease {
                        worker,
                        slot: slot.map(|s| s as u32),
                        since: since.unwrap_or(SystemTime::UNIX_EPOCH),
                        expired: expired.unwrap_or(true),
                    }),
                })
            })
            .collect()
    }

    fn workers(&self) -> Result<Vec<Worker>, StoreError> {
        let rows = self.call(|client, _| async move {
            let rows = client
                .query(
                    "SELECT w.name, w.started_at, w.heartbeat, \
                     extract(epoch FROM now() - w.heartbeat)::float8, w.concurrency, \
                     coalesce(array_agg(q.id ORDER BY q.seq) FILTER (WHERE q.id IS NOT NULL), '{}') \
                     FROM workers w LEFT JOIN queue q ON q.worker = w.name \
                     GROUP BY w.name ORDER BY w.name",
                    &[],
                )
                .await?;
            Ok(rows
                .iter()
                .map(|r| {
                    (
                        r.get::<_, String>(0),
                        r.get::<_, SystemTime>(1),
                        r.get::<_, SystemTime>(2),
                        r.get::<_, f64>(3),
                        r.get::<_, i32>(4),
                        r.get::<_, Vec<String>>(5),
                    )
                })
                .collect::<Vec<_>>())
        })?;
        rows.into_iter()
            .map(
                |(name, started_at, heartbeat, silent, concurrency, running)| {
                    Ok(Worker {
                        name,
                        started_at,
                        heartbeat,
                        silent_for: Duration::from_secs_f64(silent.max(0.0)),
                        concurrency: concurrency as u32,
                        running: running
                            .iter()
                            .map(|id| id_of(id))
                            .collect::<Result<_, _>>()?,
                    })
                },
            )
            .collect()
    }
}

/// One notification, as the listening connection heard it.
enum Notice {
    /// On [`ARRIVALS`]: entries of this kind, or None (a release: either).
    Arrived(Option<Kind>),
    /// On [`ENDED`]: the task whose entry left (None if unreadable).
    Ended(Option<ExecutionId>),
}

/// Hold a connection that `LISTEN`s for arrivals and endings: wake every
/// claimer of a kind on its arrival, the waiter of a task on its end; reconnect
/// after a second when it drops (and wake everyone then: what happened
/// meanwhile was not heard).
async fn listen<T>(
    config: tokio_postgres::Config,
    tls: T,
    arrivals: [Arc<Notify>; 2],
    endings: Arc<Endings>,
) where
    T: tokio_postgres::tls::MakeTlsConnect<tokio_postgres::Socket> + Clone + Send + 'static,
    T::Stream: Send + 'static,
{
    use futures_util::StreamExt;
    loop {
        if let Ok((client, mut connection)) = config.connect(tls.clone()).await {
            let (heard, mut hearing) = tokio::sync::mpsc::unbounded_channel();
            let driver = tokio::spawn(async move {
                let mut messages =
                    futures_util::stream::poll_fn(move |cx| connection.poll_message(cx));
                while let Some(Ok(message)) = messages.next().await {
                    if let tokio_postgres::AsyncMessage::Notification(n) = message {
                        let _ = heard.send(match n.channel() == ENDED {
                            true => Notice::Ended(n.payload().parse().ok()),
                            false => Notice::Arrived(match n.payload() {
                                "action" => Some(Kind::Action),
                                "workflow" => Some(Kind::Workflow),
                                _ => None,
                            }),
                        });
                    }
                }
            });
            if client
                .batch_execute(&format!("LISTEN {ARRIVALS}; LISTEN {ENDED}"))
                .await
                .is_ok()
            {
                // Missed while not listening.
                endings.wake_all();
                while let Some(n) = hearing.recv().await {
                    match n {
                        Notice::Arrived(Some(kind)) => {
                            arrivals[usize::from(kind == Kind::Workflow)].notify_waiters()
                        }
                        Notice::Arrived(None) => arrivals.iter().for_each(|a| a.notify_waiters()),
                        Notice::Ended(Some(id)) => endings.ended(id),
                        Notice::Ended(None) => {}
                    }
                }
            }
            driver.abort();
        }
        arrivals.iter().for_each(|a| a.notify_waiters());
        endings.wake_all();
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}
