//! `wasmflow serve`: the HTTP API, the durable queue and its workers,
//! webhooks, API tokens, Prometheus metrics and the web UI, in one process.
//!
//! This crate owns everything between an HTTP request and a call on the
//! runtime or the scheduler. It must not run guests itself (the runtime
//! does), interpret workflows (the scheduler does), or print: the CLI
//! starts it with [`serve`] and reports what it returns. [`client`] is the
//! other side, for the CLI's `--server`; both speak [`wire`]'s types.

pub mod api;
mod batch;
mod bus;
pub mod catalog;
pub mod client;
pub mod environ;
pub mod live;
mod metrics;
pub mod queue;
mod sensors;
mod shared;
pub mod tokens;
mod ui;
mod warming;
pub mod webhooks;
pub mod wire;
mod worker;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;
use wasmflow_runtime::Runtime;
use wasmflow_store::{Grants, Kind, Limits, Status};
use wasmflow_workflow::{Components, Scheduler};

pub use api::ApiDoc;
pub use shared::{default_name, Leasing};
pub use worker::App;

/// How `wasmflow serve` was asked to run.
#[derive(Clone, Debug)]
pub struct ServeConfig {
    pub listen: SocketAddr,
    pub workers: usize,
    /// Components and workflows the server runs, by file stem.
    pub actions: Option<PathBuf>,
    /// Where packs are installed: their items are served as `pack.item`.
    pub packs: Option<PathBuf>,
    /// Serve even when `actions` names nothing to run (an API over the
    /// history only); otherwise an empty catalog is refused at start.
    pub allow_empty: bool,
    /// The webhooks, read (with their secrets) before the server started
    /// ([`webhooks::Webhooks::read`]); their targets are checked against
    /// the catalog at start.
    pub webhooks: Option<Arc<webhooks::Webhooks>>,
    /// Executions accepted but not ended, at most.
    pub queue_capacity: usize,
    /// How long running executions get to end after SIGTERM.
    pub shutdown_timeout: Duration,
    /// The most an execution may be granted.
    pub grants: Grants,
    pub limits: Limits,
    /// Where the API tokens are kept (the store's [`TokenBook`]).
    pub tokens: Arc<dyn wasmflow_store::TokenBook>,
    /// How long ended executions are kept (empty: for ever).
    pub retention: wasmflow_store::Retention,
    /// How often retention looks for what to delete.
    pub retain_every: Duration,
    /// On a shared store: this process's name and lease settings.
    pub leasing: Leasing,
    /// The event bus's rules (every `.yaml`/`.yml` file there), checked
    /// against the catalog at start.
    pub rules: Option<PathBuf>,
    /// On a shared store: how old an unprocessed trigger instance must be
    /// for a server to take it for abandoned by a crashed one (a live
    /// server processes one in milliseconds); servers look for such every
    /// half this.
    pub abandoned_after: Duration,
}

/// How `wasmflow worker` was asked to run: on a shared store, `concurrency`
/// executions at a time, no HTTP.
#[derive(Clone, Debug)]
pub struct WorkConfig {
    pub concurrency: usize,
    pub shutdown_timeout: Duration,
    pub leasing: Leasing,
}

#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    #[error(transparent)]
    Catalog(#[from] catalog::CatalogError),
    #[error(transparent)]
    Webhooks(#[from] webhooks::WebhookConfigError),
    #[error("cannot listen on {addr}: {source}")]
    Listen {
        addr: SocketAddr,
        #[source]
        source: std::io::Error,
    },
    #[error(transparent)]
    Store(#[from] wasmflow_store::StoreError),
    #[error(transparent)]
    Workflow(#[from] wasmflow_workflow::WorkflowError),
    #[error(
        "{0} needs a store many processes share (--store postgres://...); the embedded store \
         has one opener, whose own workers run its queue"
    )]
    NotShared(&'static str),
    #[error(
        "{0}: nothing to serve (no .wasm, .wat or .yaml files, nor NAME/NAME.wasm \
         directories); --allow-empty serves the API without actions"
    )]
    EmptyCatalog(String),
    #[error("serving HTTP: {0}")]
    Http(std::io::Error),
    #[error("{0}")]
    EventBus(String),
}

impl ServerError {
    /// Whether the operator can fix it (a bad file or address): exit 2.
    pub fn is_usage(&self) -> bool {
        matches!(
            self,
            ServerError::Catalog(_)
                | ServerError::Webhooks(_)
                | ServerError::Listen { .. }
                | ServerError::NotShared(_)
                | ServerError::EmptyCatalog(_)
                | ServerError::EventBus(_)
        ) || matches!(self, ServerError::Store(e) if e.is_usage())
    }
}

/// `--retain`: purge what is older than the policy's ages, every `every`,
/// beside the workers. A purge takes whole ended trees only, and keeps the
/// blobs of the components this server runs.
async fn retain(app: Arc<App>, policy: wasmflow_store::Retention, every: Duration) {
    loop {
        let (store, in_use) = (app.rt.store().clone(), app.rt.components_in_use());
        let policy = policy.clone();
        match tokio::task::spawn_blocking(move || policy.apply(&store, &in_use)).await {
            Ok(Ok(report)) if !report.is_empty() => tracing::info!(
                executions = report.executions,
                tasks = report.descendants,
                blobs = report.blobs,
                bytes = report.bytes,
                "retention deleted old executions"
            ),
            Ok(Ok(_)) => {}
            Ok(Err(e)) => tracing::warn!("retention: {e}"),
            Err(e) => tracing::warn!("retention stopped: {e}"),
        }
        tokio::time::sleep(every).await;
    }
}

/// Every second, and at once again while there is more: finished history
/// past the embedded store's bound moves out of the way of every command
/// (`Backend::archive_finished`; a shared store has nothing to move).
///
/// On one thread of its own until the server drains (`serve` joins it),
/// not on the runtime's blocking pool: a move allocates and frees as much
/// as it copies, and glibc keeps what a thread frees in that thread's
/// arena. Spread over whichever pool threads ran each move, it stayed
/// there: the server's memory was 132-175 MiB from 100,000 executions on,
/// against 133-146 MiB from one thread (bench/server_memory.py,
/// bench/RESULTS.md session 26).
fn archive_finished(app: &Arc<App>) -> Option<std::thread::JoinHandle<()>> {
    if app.rt.store().shared_queue().is_some() {
        return None; // a shared store: nothing to move
    }
    let app = Arc::downgrade(app);
    let mover = move || loop {
        let Some(app) = app.upgrade().filter(|a| !a.draining.load(Ordering::SeqCst)) else {
            return;
        };
        // A panic fails this move (a move is crash-safe at any point), not
        // the mover: the next one starts over.
        let moved = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            app.rt.store().archive_finished()
        }));
        drop(app);
        match moved {
            Ok(Ok(0)) => {}
            Ok(Ok(n)) => {
                tracing::debug!(records = n, "moved finished history to the archive");
                // Hand back the pages the move freed: without it the
                // server's memory grew with every move (253 MiB after
                // 300,000 executions, session 25).
                #[cfg(target_env = "gnu")]
                // SAFETY: malloc_trim only returns free pages.
                unsafe {
                    libc::malloc_trim(0);
                }
                continue;
            }
            Ok(Err(e)) => tracing::warn!("moving finished history to the archive: {e}"),
            Err(_) => tracing::warn!("moving finished history to the archive panicked"),
        }
        std::thread::park_timeout(Duration::from_secs(1));
    };
    match std::thread::Builder::new()
        .name("wasmflow-archive".into())
        .spawn(mover)
    {
        Ok(handle) => Some(handle),
        Err(e) => {
            tracing::warn!("moving finished history: no thread for it: {e}");
            None
        }
    }
}

/// Every second: inquiries past their ttl fail (`inquiry-timeout`) and
/// their workflows go on to handle it. On a shared store one process
/// does it, the one that leads the sweep (several would each queue the
/// same workflow); another takes the lead when its holder stops renewing
/// it for a lease.
async fn expire_inquiries(app: Arc<App>) {
    loop {
        tokio::time::sleep(Duration::from_secs(1)).await;
        let store = app.rt.store().clone();
        let leasing = app.queue.leasing().cloned();
        let expired = tokio::task::spawn_blocking(move || {
            if let (Some(queue), Some(me)) = (store.shared_queue(), leasing) {
                if !queue.lead("inquiry-expiry", &me.name, me.lease)? {
                    return Ok(Vec::new());
                }
            }
            wasmflow_workflow::inquiry::expire_due(&store)
        })
        .await;
        match expired {
            Ok(Ok(expired)) => {
                for r in expired {
                    if let Err(e) = api::inquiries::go_on(&app, &r).await {
                        tracing::warn!("inquiry {}: {}", r.id, e.message);
                    }
                }
            }
            Ok(Err(e)) => tracing::warn!("expiring inquiries: {e}"),
            Err(e) => tracing::warn!("expiring inquiries stopped: {e}"),
        }
    }
}

/// What happened at shutdown.
#[derive(Debug, Default)]
pub struct ShutdownReport {
    /// Executions still running at the deadline, left to resume on the
    /// next start.
    pub interrupted: usize,
    /// Accepted executions that had not started.
    pub pending: usize,
}

/// Told when the server is ready: its address, the actions and workflows
/// it serves (by name), how many queued executions it took up again.
pub struct Ready {
    pub addr: SocketAddr,
    pub actions: Vec<String>,
    pub restored: usize,
}

/// Serve until SIGTERM or SIGINT, then shut down gracefully. The address
/// answers from the start (`listening`): `/healthz` says `warming` while
/// the catalog compiles, everything else 503, until `ready`.
pub async fn serve(
    rt: Runtime,
    components: Arc<dyn Components>,
    config: ServeConfig,
    listening: impl FnOnce(SocketAddr),
    ready: impl FnOnce(Ready),
) -> Result<ShutdownReport, ServerError> {
    // What the operator can fix, before anything is compiled.
    let shared = rt.store().shared_queue().is_some();
    if config.workers == 0 && !shared {
        return Err(ServerError::NotShared("serve --workers 0"));
    }
    let listener = tokio::net::TcpListener::bind(config.listen)
        .await
        .map_err(|source| ServerError::Listen {
            addr: config.listen,
            source,
        })?;
    let addr = listener.local_addr().map_err(ServerError::Http)?;
    let api = Arc::new(std::sync::OnceLock::new());
    let stop_http = CancellationToken::new();
    let http = {
        let stop = stop_http.clone();
        let front = warming::front(api.clone());
        tokio::spawn(async move {
            axum::serve(listener, front)
                .with_graceful_shutdown(async move { stop.cancelled().await })
                .await
        })
    };
    // A start that fails stops answering with it.
    let _unbind = stop_http.clone().drop_guard();
    listening(addr);
    // Keys and secrets: the runtime's datastore (`Runtime::use_keys`),
    // which `/api/v1/keys`, the workflows and the rules read too.
    let sched = Scheduler::with_components(rt.clone(), components.clone()).queuing_tasks();
    let catalog = catalog::Catalog::load(
        config.actions.as_deref(),
        config.packs.as_deref(),
        &rt,
        &*components,
    )
    .await?;
    // The built-in core pack is always there: a catalog of nothing else is
    // a wrong --actions directory all the same.
    let built_in = config
        .packs
        .as_deref()
        .map(wasmflow_registry::pack::built_in_dir);
    let own = catalog
        .entries()
        .filter(|e| !built_in.as_ref().is_some_and(|b| e.path.starts_with(b)))
        .count();
    if own == 0 && !config.allow_empty {
        return Err(ServerError::EmptyCatalog(match &config.actions {
            Some(dir) => dir.display().to_string(),
            None => "no --actions directory".to_owned(),
        }));
    }
    let webhooks = match &config.webhooks {
        Some(hooks) => {
            hooks.check_targets(&|name| catalog.get(name).is_some())?;
            hooks.clone()
        }
        None => Arc::default(),
    };
    let trigger_types = wasmflow_events::trigger::all(config.packs.as_deref());
    let rules = bus::load(
        config.rules.as_deref(),
        config.packs.as_deref(),
        &catalog,
        &trigger_types,
    )
    .map_err(ServerError::EventBus)?;
    let queue = queue::Queue::new(
        rt.store().clone(),
        config.queue_capacity,
        config.workers,
        config.leasing.clone(),
    );
    // On a shared store the running workflows may be other processes':
    // leases put back the work of a dead one, not a start-up scan.
    let interrupted = if queue.is_shared() {
        Vec::new()
    } else {
        sched.interrupted()?
    };
    let restored = queue.restore(interrupted)?;
    let mut app = App::new(
        rt,
        sched,
        catalog,
        queue,
        tokens::Tokens::new(config.tokens.clone()),
        webhooks,
        config.grants.clone(),
        config.limits,
    );
    app.components = Some(components.clone());
    app.rules = rules;
    app.trigger_types = trigger_types;
    bus::load_rule_states(&app);
    let app = Arc::new(app);
    for (id, _) in app.queue.entries() {
        app.live.open(id);
    }
    app.update_depth();

    let workforce = Workforce::start(&app, config.workers);
    // What a crash left between an event and its rules' executions.
    match bus::recover(&app, config.abandoned_after).await {
        Ok(0) => {}
        Ok(n) => tracing::info!("enforced the rules on {n} trigger instance(s) left by a crash"),
        Err(e) => tracing::error!("enforcing the rules left by a crash: {}", e.message),
    }
    bus::sweep_abandoned(&app, config.abandoned_after);
    bus::start_timers(&app);
    match sensors::start(&app, config.packs.as_deref()) {
        Ok(0) => {}
        Ok(n) => tracing::info!("polling {n} sensor(s)"),
        Err(e) => return Err(ServerError::EventBus(e)),
    }

    let retention = (!config.retention.is_empty()).then(|| {
        tokio::spawn(retain(
            app.clone(),
            config.retention.clone(),
            config.retain_every,
        ))
    });

    tokio::spawn(expire_inquiries(app.clone()));
    let mover = archive_finished(&app);

    let _ = api.set(router(app.clone()));
    ready(Ready {
        addr,
        actions: app.catalog.entries().map(|e| e.name.clone()).collect(),
        restored,
    });

    shutdown_signal().await;
    tracing::info!("shutting down: no new work; waiting for running executions");
    app.draining.store(true, Ordering::SeqCst);
    if let Some(r) = retention {
        r.abort();
    }
    let report = workforce.stop(&app, config.shutdown_timeout).await?;
    stop_http.cancel();
    // Followers of still-open log streams would hold the server open.
    let _ = tokio::time::timeout(Duration::from_secs(2), http).await;
    // A move under way ends before the store's last flush.
    if let Some(mover) = mover {
        mover.thread().unpark();
        let _ = tokio::task::spawn_blocking(move || mover.join()).await;
    }
    app.rt.store().flush()?;
    Ok(report)
}

/// Run only work, no HTTP (`wasmflow worker`): claim executions from a
/// shared store's queue, `concurrency` at a time, until SIGTERM or SIGINT;
/// then let the running ones end (up to the shutdown timeout) and leave.
pub async fn work(
    rt: Runtime,
    components: Arc<dyn Components>,
    tokens: Arc<dyn wasmflow_store::TokenBook>,
    config: WorkConfig,
    ready: impl FnOnce(&str),
) -> Result<ShutdownReport, ServerError> {
    if rt.store().shared_queue().is_none() {
        return Err(ServerError::NotShared("wasmflow worker"));
    }
    let sched = Scheduler::with_components(rt.clone(), components).queuing_tasks();
    let queue = queue::Queue::new(
        rt.store().clone(),
        0,
        config.concurrency,
        config.leasing.clone(),
    );
    let app = Arc::new(App::new(
        rt,
        sched,
        catalog::Catalog::default(),
        queue,
        tokens::Tokens::new(tokens),
        Arc::default(),
        Grants::default(),
        Limits::default(),
    ));
    let workforce = Workforce::start(&app, config.concurrency);
    ready(&config.leasing.name);
    shutdown_signal().await;
    tracing::info!("shutting down: no new work; waiting for running executions");
    workforce.stop(&app, config.shutdown_timeout).await
}

/// On a shared store, how many workflows a process drives at once per
/// action slot: a workflow mostly waits for its tasks (entries any
/// process runs), so it costs little here; a bound keeps one process from
/// claiming every workflow, which would all wait out its lease if it died.
const WORKFLOWS_PER_SLOT: usize = 4;

/// This process's workers and, on a shared store, its heartbeat.
struct Workforce {
    workers: JoinSet<()>,
    stop: CancellationToken,
    heartbeat: Option<tokio::task::JoinHandle<()>>,
    stop_heartbeat: CancellationToken,
}

impl Workforce {
    /// `n` workers; on an embedded store at least one, since nobody else
    /// runs its queue.
    fn start(app: &Arc<App>, n: usize) -> Self {
        let leasing = app.queue.leasing().cloned();
        let n = if leasing.is_some() { n } else { n.max(1) };
        let stop = CancellationToken::new();
        let mut workers = JoinSet::new();
        for slot in 0..n {
            workers.spawn(worker::work(app.clone(), slot, stop.clone()));
        }
        if leasing.is_some() && n > 0 {
            workers.spawn(worker::drive(
                app.clone(),
                n,
                n * WORKFLOWS_PER_SLOT,
                stop.clone(),
            ));
        }
        let stop_heartbeat = CancellationToken::new();
        let heartbeat = leasing.map(|leasing| {
            tokio::spawn(shared::heartbeat(
                app.clone(),
                leasing,
                n as u32,
                stop_heartbeat.clone(),
            ))
        });
        Self {
            workers,
            stop,
            heartbeat,
            stop_heartbeat,
        }
    }

    /// Take no more work, give what runs `timeout` to end, and leave the
    /// rest for whoever starts next (or, on a shared store, for any other
    /// worker at once).
    async fn stop(mut self, app: &App, timeout: Duration) -> Result<ShutdownReport, ServerError> {
        self.stop.cancel();
        let deadline = tokio::time::sleep(timeout);
        tokio::pin!(deadline);
        loop {
            tokio::select! {
                joined = self.workers.join_next() => if joined.is_none() { break },
                _ = &mut deadline => {
                    // Dropping a running guest's future stops it at its next
                    // epoch tick or host call.
                    self.workers.abort_all();
                    while self.workers.join_next().await.is_some() {}
                    break;
                }
            }
        }
        app.queue.settle().await;
        let report = leave_for_next_start(app)?;
        if let Some(heartbeat) = self.heartbeat {
            self.stop_heartbeat.cancel();
            let _ = heartbeat.await;
            let leasing = app.queue.leasing().expect("a shared store's heartbeat");
            app.rt
                .store()
                .shared_queue()
                .expect("a shared store")
                .leave(&leasing.name)?;
        }
        Ok(report)
    }
}

/// Executions still held at shutdown stay in the queue for the next start;
/// interrupted actions go back to `pending` (they start over), interrupted
/// workflows stay `running` (they resume from their journals).
fn leave_for_next_start(app: &App) -> Result<ShutdownReport, ServerError> {
    let mut report = ShutdownReport::default();
    let store = app.rt.store();
    for (id, entry) in app.queue.entries() {
        match entry.state {
            queue::EntryState::Pending => report.pending += 1,
            queue::EntryState::Running { .. } => {
                let Some(mut r) = store.get(id)? else {
                    continue;
                };
                // Ended, its record waiting for the final flush below.
                if r.is_finished() {
                    continue;
                }
                report.interrupted += 1;
                if entry.kind == Kind::Action {
                    r.status = Status::Pending;
                    r.started_at = None;
                    r.logs.push(wasmflow_store::LogLine {
                        at_ms: 0,
                        level: wasmflow_store::LogLevel::Warn,
                        message: if app.queue.leasing().is_some() {
                            "interrupted by server shutdown; runs again from the start \
                             on the next worker to claim it"
                        } else {
                            "interrupted by server shutdown; runs again from the start \
                             when the server restarts"
                        }
                        .into(),
                        progress: None,
                    });
                    store.put_unflushed(&r)?;
                }
            }
        }
    }
    store.flush()?;
    if let Some(queue) = store.shared_queue() {
        // What waits is the shared queue's, not this process's.
        report.pending = queue
            .entries()?
            .iter()
            .filter(|e| e.lease.as_ref().is_none_or(|l| l.expired))
            .count();
    }
    Ok(report)
}

async fn shutdown_signal() {
    use tokio::signal::unix::{signal, SignalKind};
    let mut term = signal(SignalKind::terminate()).expect("installing a SIGTERM handler");
    tokio::select! {
        _ = term.recv() => {},
        _ = tokio::signal::ctrl_c() => {},
    }
}

/// The whole HTTP surface.
pub fn router(app: Arc<App>) -> axum::Router {
    use axum::routing::{get, post};
    let authed = axum::Router::new()
        .route(
            "/executions",
            get(api::list_executions).post(api::create_execution),
        )
        .route("/executions/{id}", get(api::get_execution))
        .route("/executions/{id}/logs", get(api::execution_logs))
        .route("/executions/{id}/graph", get(api::execution_graph))
        .route("/executions/{id}/cancel", post(api::cancel_execution))
        .route("/executions/{id}/pause", post(api::pause_execution))
        .route("/executions/{id}/resume", post(api::resume_execution))
        .route("/executions/{id}/re-run", post(api::rerun_execution))
        .route("/executions/{id}/replay", post(api::replay_execution))
        .route("/actions", get(api::list_actions))
        .route("/actions/{name}", get(api::get_action))
        .route("/inquiries", get(api::inquiries::list_inquiries))
        .route("/inquiries/{id}", get(api::inquiries::get_inquiry))
        .route("/inquiries/{id}/respond", post(api::inquiries::respond))
        .route("/rules", get(api::events::list_rules))
        .route("/rules/{name}", get(api::events::get_rule))
        .route("/rules/{name}/enable", post(api::events::enable_rule))
        .route("/rules/{name}/disable", post(api::events::disable_rule))
        .route(
            "/trigger-instances",
            get(api::events::list_trigger_instances),
        )
        .route(
            "/trigger-instances/{id}",
            get(api::events::get_trigger_instance),
        )
        .route("/rule-enforcements", get(api::events::list_enforcements))
        .route("/triggers/{type}", post(api::events::emit_trigger))
        .route("/keys", get(api::keys::list_keys))
        .route(
            "/keys/{name}",
            get(api::keys::get_key)
                .put(api::keys::set_key)
                .delete(api::keys::delete_key),
        )
        .route("/queue", get(api::queue))
        .route("/workers", get(api::workers))
        .route_layer(axum::middleware::from_fn_with_state(
            app.clone(),
            api::authenticate,
        ));
    let open = axum::Router::new()
        .route("/webhooks/{name}", post(api::webhook))
        .route("/openapi.json", get(api::openapi_json));
    axum::Router::new()
        .nest("/api/v1", authed.merge(open))
        .route("/healthz", get(api::healthz))
        .route("/metrics", get(api::metrics))
        .merge(ui::routes())
        .fallback(|| async {
            api::ApiError::new(axum::http::StatusCode::NOT_FOUND, "no such endpoint")
        })
        .with_state(app)
}
