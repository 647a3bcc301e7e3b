//! The shared backend: PostgreSQL, for stores that outgrow one machine.
//!
//! Tables (created and migrated by wasmflow itself, see [`MIGRATIONS`]):
//! `executions` (id, status, parent, action, the record's JSON as text, so
//! a record reads back byte for byte), `events` (one row per answer),
//! `workflow_log`, `blobs` + `blob_chunks` (content-addressed, chunked),
//! `queue` (with each entry's lease: see `lease`), `workers` (their
//! heartbeats), `tokens`, `keys` (the datastore's; secrets as ciphertext),
//! `trigger_instances` and `enforcements` (the event bus's), `sweeps` (who
//! leads each periodic sweep). Ids are ULID text compared in the "C" collation, so
//! id order is time order as in the embedded store.
//!
//! Durability is PostgreSQL's: a write that must be durable commits with
//! `synchronous_commit` on; the writes the interface lets wait for the
//! next flush commit with it off (sessions of a second pool, so each is
//! one statement, not a transaction around a `SET LOCAL`), and
//! [`Backend::flush`] then commits one synchronous write, which makes
//! every earlier commit durable (the WAL is one sequence). Statements are
//! prepared once per connection (`prepare_cached`).
//!
//! The interface is synchronous and its callers may be inside a tokio
//! runtime: every call runs on this backend's own runtime and the calling
//! thread waits on a channel, which blocks like file I/O and never nests
//! runtimes.

mod backend;
mod ended;
mod lease;
#[cfg(test)]
mod tests;
mod upkeep;

use crate::error::StoreError;
use crate::keys::{KeyBook, KeyEntry};
use crate::tokens::{TokenBook, TokenEntry};
use deadpool_postgres::{Manager, ManagerConfig, Pool, RecyclingMethod};
use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

/// The schema, one migration per version, applied in order. A database
/// at a version past the last is refused ([`StoreError::SchemaTooNew`]).
const MIGRATIONS: &[&str] = &[
    r#"
CREATE TABLE executions (
    id text COLLATE "C" PRIMARY KEY,
    status text NOT NULL,
    parent text COLLATE "C",
    action text NOT NULL,
    body text NOT NULL
);
CREATE INDEX executions_by_status ON executions (status, id);
CREATE INDEX executions_by_parent ON executions (parent, id);
CREATE TABLE events (
    id text COLLATE "C" NOT NULL,
    n integer NOT NULL,
    body text NOT NULL,
    PRIMARY KEY (id, n)
);
CREATE TABLE workflow_log (
    id text COLLATE "C" NOT NULL,
    seq integer NOT NULL,
    entry bytea NOT NULL,
    PRIMARY KEY (id, seq)
);
CREATE TABLE blobs (
    digest text PRIMARY KEY,
    size bigint NOT NULL
);
CREATE TABLE blob_chunks (
    digest text NOT NULL REFERENCES blobs ON DELETE CASCADE,
    n integer NOT NULL,
    data bytea NOT NULL,
    PRIMARY KEY (digest, n)
);
CREATE TABLE queue (
    seq bigserial PRIMARY KEY,
    id text COLLATE "C" NOT NULL,
    payload bytea NOT NULL
);
CREATE TABLE tokens (
    name text PRIMARY KEY,
    sha256 text NOT NULL,
    read_only boolean NOT NULL,
    created_at text NOT NULL,
    added bigserial
);
CREATE TABLE flushes (
    id integer PRIMARY KEY,
    at timestamptz NOT NULL
);
"#,
    r#"
ALTER TABLE queue
    ADD COLUMN worker text,
    ADD COLUMN slot integer,
    ADD COLUMN claimed_at timestamptz,
    ADD COLUMN lease_until timestamptz,
    ADD COLUMN claims integer NOT NULL DEFAULT 0,
    ADD COLUMN lost integer NOT NULL DEFAULT 0,
    ADD COLUMN cancel boolean NOT NULL DEFAULT false;
CREATE INDEX queue_by_worker ON queue (worker);
CREATE TABLE workers (
    name text PRIMARY KEY,
    started_at timestamptz NOT NULL,
    heartbeat timestamptz NOT NULL,
    concurrency integer NOT NULL
);
"#,
    r#"
CREATE TABLE keys (
    name text COLLATE "C" PRIMARY KEY,
    value text NOT NULL,
    secret boolean NOT NULL,
    expires_at text,
    updated_at text NOT NULL
);
"#,
    r#"
CREATE TABLE trigger_instances (
    id text COLLATE "C" PRIMARY KEY,
    processed boolean NOT NULL,
    body text NOT NULL
);
CREATE INDEX trigger_instances_unprocessed ON trigger_instances (id) WHERE NOT processed;
CREATE TABLE enforcements (
    instance text COLLATE "C" NOT NULL,
    rule text COLLATE "C" NOT NULL,
    body text NOT NULL,
    PRIMARY KEY (instance, rule)
);
"#,
    // Who took an event a crashed server left half enforced, until when
    // (`SharedQueue::claim_trigger`).
    r#"
ALTER TABLE trigger_instances ADD COLUMN claimed_by text, ADD COLUMN claimed_until timestamptz;
"#,
    // A pause asked for through any process, for the holder's next
    // heartbeat; and who leads each periodic sweep, until when
    // (`SharedQueue::pause`, `SharedQueue::lead`).
    r#"
ALTER TABLE queue ADD COLUMN pause boolean NOT NULL DEFAULT false;
CREATE TABLE sweeps (
    name text PRIMARY KEY,
    holder text NOT NULL,
    until timestamptz NOT NULL
);
"#,
    // Listing top-level executions without walking their tasks' records.
    r#"
CREATE INDEX executions_roots ON executions (id) WHERE parent IS NULL;
CREATE INDEX executions_roots_by_status ON executions (status, id) WHERE parent IS NULL;
"#,
    // Workflows and actions claimed apart (`SharedQueue::claim`): a
    // workflow's tasks are entries of their own, not counted against the
    // capacity of what the queue accepts (`Backend::queue_len`).
    r#"
ALTER TABLE queue ADD COLUMN workflow boolean NOT NULL DEFAULT false,
    ADD COLUMN task boolean NOT NULL DEFAULT false;
UPDATE queue q SET workflow = true FROM executions e
    WHERE e.id = q.id AND e.body::jsonb ->> 'kind' = 'workflow';
"#,
];

/// Blobs are stored in chunks of this size (a row per chunk, so no value
/// nears PostgreSQL's 1 GB field limit and reads stream).
const CHUNK: usize = 1 << 20;

/// A PostgreSQL store. Cheap to share; calls go through two pools.
pub(crate) struct PgStore {
    /// Sessions as the server configures them (`synchronous_commit` on):
    /// a commit here is durable when it returns, and makes every earlier
    /// one durable (the WAL is one sequence).
    pool: Pool,
    /// Sessions with `synchronous_commit` off, for the writes the
    /// interface lets wait for the next flush and for claims: each is one
    /// statement (or one transaction) without waiting for the disk,
    /// planning no sequential scans (see `open`).
    unflushed: Pool,
    runtime: Option<tokio::runtime::Runtime>,
    /// The URL without its password, for messages.
    at: Arc<str>,
    /// A write was committed without waiting for the disk since the last
    /// flush.
    dirty: Arc<AtomicBool>,
    /// To connect the listener for queue arrivals (`lease::listen`).
    config: tokio_postgres::Config,
    /// This handle's row in `flushes` (see `Backend::flush`).
    flush_row: i32,
    /// What the `LISTEN`ing connection hears, once someone asked
    /// ([`crate::SharedQueue::arrivals`], [`crate::SharedQueue::endings`]).
    heard: std::sync::OnceLock<lease::Heard>,
}

impl PgStore {
    /// Connect to `url` (`postgres://USER[:PASSWORD]@HOST[:PORT]/DB`,
    /// libpq's `sslmode` honoured), create or migrate the schema.
    pub fn open(url: &str) -> Result<Self, StoreError> {
        let config: tokio_postgres::Config = url.parse().map_err(|e| StoreError::Open {
            at: redacted(url),
            cause: format!("not a PostgreSQL URL: {e}"),
        })?;
        let at: Arc<str> = shown(&config).into();
        let open = |cause: String| StoreError::Open {
            at: at.to_string(),
            cause,
        };
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("wasmflow-postgres")
            .enable_all()
            .build()
            .map_err(|e| open(format!("starting its I/O threads: {e}")))?;
        let pool = |config: &tokio_postgres::Config| {
            let _entered = runtime.enter();
            let manager = ManagerConfig {
                recycling_method: RecyclingMethod::Fast,
            };
            let manager = match config.get_ssl_mode() {
                tokio_postgres::config::SslMode::Disable => {
                    Manager::from_config(config.clone(), tokio_postgres::NoTls, manager)
                }
                _ => Manager::from_config(config.clone(), tls(), manager),
            };
            Pool::builder(manager)
                .max_size(8)
                .build()
                .map_err(|e| open(e.to_string()))
        };
        // The sessions that claim plan no sequential scan: a claim cached
        // when autovacuum had just analyzed an idle system's emptied queue
        // read the whole backlog of the next burst (bench/RESULTS.md,
        // session 21). Not every session: counting the queue by index
        // costs 100 ms at a backlog, and an end that drops its entries in
        // key order rather than row order deadlocked with a heartbeat
        // renewing the same worker's entries in row order.
        let with = |settings: &str| {
            let mut config = config.clone();
            let options = match config.get_options() {
                Some(theirs) if !theirs.is_empty() => format!("{theirs} {settings}"),
                _ => settings.to_owned(),
            };
            config.options(&options);
            config
        };
        let durable = pool(&config)?;
        let unflushed = pool(&with("-c synchronous_commit=off -c enable_seqscan=off"))?;
        let store = Self {
            pool: durable,
            unflushed,
            runtime: Some(runtime),
            at,
            dirty: Arc::default(),
            config,
            heard: std::sync::OnceLock::new(),
            flush_row: flush_row(),
        };
        store.migrate()?;
        Ok(store)
    }

    pub fn at(&self) -> &str {
        &self.at
    }

    /// Run `work` with a pooled client on this backend's runtime and wait
    /// for it.
    fn call<T, F, Fut>(&self, work: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(deadpool_postgres::Object, Arc<str>) -> Fut + Send + 'static,
        Fut: Future<Output = Result<T, tokio_postgres::Error>> + Send + 'static,
    {
        self.call_on(&self.pool, work)
    }

    /// [`PgStore::call`] in a session that commits without waiting for the
    /// disk: for writes made durable by the next flush, which the caller
    /// notes ([`PgStore::wrote_unflushed`]).
    fn call_unflushed<T, F, Fut>(&self, work: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(deadpool_postgres::Object, Arc<str>) -> Fut + Send + 'static,
        Fut: Future<Output = Result<T, tokio_postgres::Error>> + Send + 'static,
    {
        self.call_on(&self.unflushed, work)
    }

    fn call_on<T, F, Fut>(&self, pool: &Pool, work: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(deadpool_postgres::Object, Arc<str>) -> Fut + Send + 'static,
        Fut: Future<Output = Result<T, tokio_postgres::Error>> + Send + 'static,
    {
        let (tx, rx) = std::sync::mpsc::sync_channel(1);
        let call = with_client(pool.clone(), self.at.clone(), work);
        self.runtime
            .as_ref()
            .expect("running until dropped")
            .spawn(async move {
                let _ = tx.send(call.await);
            });
        rx.recv().map_err(|_| self.stopped())?
    }

    /// [`PgStore::call_unflushed`] for a caller that awaits it (in any
    /// runtime): the work runs on this backend's runtime, the caller's
    /// thread is free meanwhile.
    fn call_unflushed_async<T, F, Fut>(
        &self,
        work: F,
    ) -> impl Future<Output = Result<T, StoreError>> + Send + 'static
    where
        T: Send + 'static,
        F: FnOnce(deadpool_postgres::Object, Arc<str>) -> Fut + Send + 'static,
        Fut: Future<Output = Result<T, tokio_postgres::Error>> + Send + 'static,
    {
        let call = with_client(self.unflushed.clone(), self.at.clone(), work);
        let running = self
            .runtime
            .as_ref()
            .expect("running until dropped")
            .spawn(call);
        let stopped = self.stopped();
        async move { running.await.map_err(|_| stopped)? }
    }

    fn stopped(&self) -> StoreError {
        StoreError::Io {
            at: self.at.to_string(),
            cause: "the database call stopped".into(),
        }
    }

    /// Note a write committed without waiting: the next flush syncs it.
    fn wrote_unflushed(&self) {
        self.dirty.store(true, Ordering::SeqCst);
    }

    /// [`PgStore::call`] for a write that waits for the disk, which makes
    /// every earlier commit durable too. The mark of unflushed writes is
    /// cleared *before* it commits: a write noted after that may have
    /// committed after it, and keeps its mark for the next flush.
    fn durably<T, F, Fut>(&self, work: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(deadpool_postgres::Object, Arc<str>) -> Fut + Send + 'static,
        Fut: Future<Output = Result<T, tokio_postgres::Error>> + Send + 'static,
    {
        let was = self.dirty.swap(false, Ordering::SeqCst);
        let done = self.call(work);
        if done.is_err() && was {
            self.wrote_unflushed();
        }
        done
    }

    /// Create the schema, or bring it up to date, under an advisory lock
    /// (two processes opening a new database at once apply it once).
    fn migrate(&self) -> Result<(), StoreError> {
        let known = MIGRATIONS.len() as i32;
        let found = self.call(move |mut client, _| async move {
            let tx = client.transaction().await?;
            tx.batch_execute(
                "SELECT pg_advisory_xact_lock(7215004); \
                 CREATE TABLE IF NOT EXISTS wasmflow_schema (version integer NOT NULL); \
                 INSERT INTO wasmflow_schema SELECT 0 WHERE NOT EXISTS (SELECT 1 FROM wasmflow_schema);",
            )
            .await?;
            let found: i32 = tx
                .query_one("SELECT version FROM wasmflow_schema", &[])
                .await?
                .get(0);
            if found < known {
                for sql in &MIGRATIONS[found as usize..] {
                    tx.batch_execute(sql).await?;
                }
                tx.execute("UPDATE wasmflow_schema SET version = $1", &[&known])
                    .await?;
            }
            tx.commit().await?;
            Ok(found)
        });
        match found {
            Ok(found) if found > known => Err(StoreError::SchemaTooNew {
                at: self.at.to_string(),
                found,
                known,
            }),
            Ok(_) => Ok(()),
            // The first call is where an unreachable server shows.
            Err(StoreError::Io { at, cause }) => Err(StoreError::Open { at, cause }),
            Err(e) => Err(e),
        }
    }
}

impl Drop for PgStore {
    fn drop(&mut self) {
        // May be dropped inside another runtime: never block here.
        if let Some(rt) = self.runtime.take() {
            rt.shutdown_background();
        }
    }
}

/// `work` with a client of `pool`, its errors told as the store's.
async fn with_client<T, F, Fut>(pool: Pool, at: Arc<str>, work: F) -> Result<T, StoreError>
where
    F: FnOnce(deadpool_postgres::Object, Arc<str>) -> Fut,
    Fut: Future<Output = Result<T, tokio_postgres::Error>>,
{
    match pool.get().await {
        Ok(client) => work(client, at.clone()).await.map_err(|e| io(&at, &e)),
        Err(e) => Err(StoreError::Io {
            at: at.to_string(),
            cause: format!("no connection: {e}"),
        }),
    }
}

/// A number unlikely to be another live handle's: the process id and the
/// time it opened (two alike only share a row, and wait on each other).
fn flush_row() -> i32 {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    (std::process::id().wrapping_mul(2_654_435_761) ^ nanos) as i32
}

/// rustls with the system's roots, as the rest of wasmflow.
fn tls() -> tokio_postgres_rustls::MakeRustlsConnect {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let mut roots = rustls::RootCertStore::empty();
    for cert in rustls_native_certs::load_native_certs().certs {
        let _ = roots.add(cert);
    }
    let config = rustls::ClientConfig::builder()
        .with_root_certificates(roots)
        .with_no_client_auth();
    tokio_postgres_rustls::MakeRustlsConnect::new(config)
}

/// A database error as text: the server's message (and detail) when it
/// sent one.
fn io(at: &str, e: &tokio_postgres::Error) -> StoreError {
    let cause = match e.as_db_error() {
        Some(d) => match d.detail() {
            Some(detail) => format!("{}: {detail}", d.message()),
            None => d.message().to_owned(),
        },
        None => match std::error::Error::source(e) {
            Some(s) => format!("{e}: {s}"),
            None => e.to_string(),
        },
    };
    StoreError::Io {
        at: at.to_owned(),
        cause,
    }
}

/// `postgres://user@host:port/db`, never the password.
fn shown(config: &tokio_postgres::Config) -> String {
    let host = config
        .get_hosts()
        .first()
        .map(|h| match h {
            tokio_postgres::config::Host::Tcp(h) => h.clone(),
            tokio_postgres::config::Host::Unix(p) => p.display().to_string(),
        })
        .unwrap_or_default();
    let port = config.get_ports().first().copied().unwrap_or(5432);
    format!(
        "postgres://{}@{host}:{port}/{}",
        config.get_user().unwrap_or(""),
        config.get_dbname().unwrap_or("")
    )
}

/// A URL that did not parse, without what could be a password.
pub(crate) fn redacted(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(s), Some(a)) if a > s => format!("{}***{}", &url[..s + 3], &url[a..]),
        _ => url.to_owned(),
    }
}

impl TokenBook for PgStore {
    fn list(&self) -> Result<Vec<TokenEntry>, StoreError> {
        let rows = self.call(|client, _| async move {
            client
                .query(
                    "SELECT name, sha256, read_only, created_at FROM tokens ORDER BY added",
                    &[],
                )
                .await
        })?;
        rows.iter()
            .map(|r| {
                let created: String = r.get(3);
                Ok(TokenEntry {
                    name: r.get(0),
                    sha256: r.get(1),
                    read_only: r.get(2),
                    created_at: humantime::parse_rfc3339(&created).map_err(|e| {
                        StoreError::Other(format!(
                            "{}: token {}: {e}",
                            self.at,
                            r.get::<_, String>(0)
                        ))
                    })?,
                })
            })
            .collect()
    }

    fn add(&self, entry: TokenEntry) -> Result<bool, StoreError> {
        let created = humantime::format_rfc3339_seconds(entry.created_at).to_string();
        self.call(move |client, _| async move {
            let n = client
                .execute(
                    "INSERT INTO tokens (name, sha256, read_only, created_at) VALUES ($1, $2, $3, $4) \
                     ON CONFLICT (name) DO NOTHING",
                    &[&entry.name, &entry.sha256, &entry.read_only, &created],
                )
                .await?;
            Ok(n == 1)
        })
    }

    fn remove(&self, name: &str) -> Result<bool, StoreError> {
        let name = name.to_owned();
        self.call(move |client, _| async move {
            Ok(client
                .execute("DELETE FROM tokens WHERE name = $1", &[&name])
                .await?
                == 1)
        })
    }

    /// How many tokens there are and the newest one's number: an add
    /// raises the second, a removal lowers the first.
    fn version(&self) -> Option<String> {
        self.call(|client, _| async move {
            // Asked on every API request: prepared once per connection.
            let version = client
                .prepare_cached("SELECT count(*), coalesce(max(added), 0) FROM tokens")
                .await?;
            let row = client.query_one(&version, &[]).await?;
            Ok(format!("{}/{}", row.get::<_, i64>(0), row.get::<_, i64>(1)))
        })
        .ok()
    }
}

fn key_entry(at: &str, r: &tokio_postgres::Row) -> Result<KeyEntry, StoreError> {
    let name: String = r.get(0);
    let time = |s: &str| {
        humantime::parse_rfc3339_weak(s)
            .map_err(|e| StoreError::Other(format!("{at}: key {name}: {e}")))
    };
    Ok(KeyEntry {
        value: r.get(1),
        secret: r.get(2),
        expires_at: r
            .get::<_, Option<String>>(3)
            .as_deref()
            .map(time)
            .transpose()?,
        updated_at: time(&r.get::<_, String>(4))?,
        name: name.clone(),
    })
}

fn stamp(t: std::time::SystemTime) -> String {
    humantime::format_rfc3339_micros(t).to_string()
}

impl KeyBook for PgStore {
    fn get(&self, name: &str) -> Result<Option<KeyEntry>, StoreError> {
        let name = name.to_owned();
        let row = self.call(move |client, _| async move {
            client
                .query_opt(
                    "SELECT name, value, secret, expires_at, updated_at FROM keys WHERE name = $1",
                    &[&name],
                )
                .await
        })?;
        row.map(|r| key_entry(&self.at, &r)).transpose()
    }

    fn list(&self, prefix: &str) -> Result<Vec<KeyEntry>, StoreError> {
        let prefix = prefix.to_owned();
        let rows = self.call(move |client, _| async move {
            client
                .query(
                    "SELECT name, value, secret, expires_at, updated_at FROM keys \
                     WHERE starts_with(name, $1) ORDER BY name",
                    &[&prefix],
                )
                .await
        })?;
        rows.iter().map(|r| key_entry(&self.at, r)).collect()
    }

    fn set(&self, entry: KeyEntry) -> Result<(), StoreError> {
        self.set_all(vec![entry])
    }

    fn delete(&self, name: &str) -> Result<bool, StoreError> {
        let name = name.to_owned();
        self.call(move |client, _| async move {
            Ok(client
                .execute("DELETE FROM keys WHERE name = $1", &[&name])
                .await?
                == 1)
        })
    }

    fn set_all(&self, entries: Vec<KeyEntry>) -> Result<(), StoreError> {
        self.call(move |mut client, _| async move {
            let tx = client.transaction().await?;
            for e in &entries {
                tx.execute(
                    "INSERT INTO keys (name, value, secret, expires_at, updated_at) \
                     VALUES ($1, $2, $3, $4, $5) ON CONFLICT (name) DO UPDATE SET \
                     value = EXCLUDED.value, secret = EXCLUDED.secret, \
                     expires_at = EXCLUDED.expires_at, updated_at = EXCLUDED.updated_at",
                    &[
                        &e.name,
                        &e.value,
                        &e.secret,
                        &e.expires_at.map(stamp),
                        &stamp(e.updated_at),
                    ],
                )
                .await?;
            }
            tx.commit().await
        })
    }
}
