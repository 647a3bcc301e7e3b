//! `wasmflow serve`: the HTTP API, the durable queue and its workers,
//! webhooks, API tokens, Prometheus metrics and the web UI, in one process.
//!
//! This crate owns everything between an HTTP request and a call on the
//! runtime or the scheduler. It must not run guests itself (the runtime
//! does), interpret workflows (the scheduler does), or print: the CLI
//! starts it with [`serve`] and reports what it returns. [`client`] is the
//! other side, for the CLI's `--server`; both speak [`wire`]'s types.

pub mod api;
pub mod catalog;
pub mod client;
pub mod environ;
pub mod live;
mod metrics;
pub mod queue;
pub mod tokens;
mod ui;
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
pub use worker::App;

/// How `wasmflow serve` was asked to run.
#[derive(Clone, Debug)]
pub struct ServeConfig {
    pub listen: SocketAddr,
    pub workers: usize,
    /// Components and workflows the server runs, by file stem.
    pub actions: Option<PathBuf>,
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
    #[error("serving HTTP: {0}")]
    Http(std::io::Error),
}

impl ServerError {
    /// Whether the operator can fix it (a bad file or address): exit 2.
    pub fn is_usage(&self) -> bool {
        matches!(
            self,
            ServerError::Catalog(_) | ServerError::Webhooks(_) | ServerError::Listen { .. }
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

/// What happened at shutdown.
#[derive(Debug, Default)]
pub struct ShutdownReport {
    /// Executions still running at the deadline, left to resume on the
    /// next start.
    pub interrupted: usize,
    /// Accepted executions that had not started.
    pub pending: usize,
}

/// Told when the server is ready: its address, how many actions it knows,
/// how many queued executions it took up again.
pub struct Ready {
    pub addr: SocketAddr,
    pub actions: usize,
    pub restored: usize,
}

/// Serve until SIGTERM or SIGINT, then shut down gracefully.
pub async fn serve(
    rt: Runtime,
    components: Arc<dyn Components>,
    config: ServeConfig,
    ready: impl FnOnce(Ready),
) -> Result<ShutdownReport, ServerError> {
    let sched = Scheduler::with_components(rt.clone(), components.clone());
    let catalog = match &config.actions {
        Some(dir) => catalog::Catalog::load(dir, &rt, &*components).await?,
        None => catalog::Catalog::default(),
    };
    let webhooks = match &config.webhooks {
        Some(hooks) => {
            hooks.check_targets(&|name| catalog.get(name).is_some())?;
            hooks.clone()
        }
        None => Arc::default(),
    };
    let queue = queue::Queue::new(rt.store().clone(), config.queue_capacity, config.workers);
    let restored = queue.restore(sched.interrupted()?)?;
    let app = Arc::new(App::new(
        rt,
        sched,
        catalog,
        queue,
        tokens::Tokens::new(config.tokens.clone()),
        webhooks,
        config.grants.clone(),
        config.limits,
    ));
    for (id, _) in app.queue.entries() {
        app.live.open(id);
    }
    app.update_depth();

    let listener = tokio::net::TcpListener::bind(config.listen)
        .await
        .map_err(|source| ServerError::Listen {
            addr: config.listen,
            source,
        })?;
    let addr = listener.local_addr().map_err(ServerError::Http)?;

    let stop_workers = CancellationToken::new();
    let mut workers = JoinSet::new();
    for n in 0..config.workers.max(1) {
        workers.spawn(worker::work(app.clone(), n, stop_workers.clone()));
    }

    let retention = (!config.retention.is_empty()).then(|| {
        tokio::spawn(retain(
            app.clone(),
            config.retention.clone(),
            config.retain_every,
        ))
    });

    let stop_http = CancellationToken::new();
    let http = {
        let stop = stop_http.clone();
        let router = router(app.clone());
        tokio::spawn(async move {
            axum::serve(listener, router)
                .with_graceful_shutdown(async move { stop.cancelled().await })
                .await
        })
    };
    ready(Ready {
        addr,
        actions: app.catalog.len(),
        restored,
    });

    shutdown_signal().await;
    tracing::info!("shutting down: no new work; waiting for running executions");
    app.draining.store(true, Ordering::SeqCst);
    stop_workers.cancel();
    let deadline = tokio::time::sleep(config.shutdown_timeout);
    tokio::pin!(deadline);
    loop {
        tokio::select! {
            joined = workers.join_next() => if joined.is_none() { break },
            _ = &mut deadline => {
                // Dropping a running guest's future stops it at its next
                // epoch tick or host call.
                workers.abort_all();
                while workers.join_next().await.is_some() {}
                break;
            }
        }
    }
    if let Some(r) = retention {
        r.abort();
    }
    let report = leave_for_next_start(&app)?;
    stop_http.cancel();
    // Followers of still-open log streams would hold the server open.
    let _ = tokio::time::timeout(Duration::from_secs(2), http).await;
    app.rt.store().flush()?;
    Ok(report)
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
                        message: "interrupted by server shutdown; runs again from the start \
                                  when the server restarts"
                            .into(),
                        progress: None,
                    });
                    store.put_unflushed(&r)?;
                }
            }
        }
    }
    store.flush()?;
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
        .route("/executions/{id}/cancel", post(api::cancel_execution))
        .route("/executions/{id}/re-run", post(api::rerun_execution))
        .route("/executions/{id}/replay", post(api::replay_execution))
        .route("/actions", get(api::list_actions))
        .route("/actions/{name}", get(api::get_action))
        .route("/queue", get(api::queue))
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
