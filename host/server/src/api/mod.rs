//! The HTTP API under `/api/v1`, `/healthz` and `/metrics`. Handlers turn
//! requests into calls on the queue, the store and the runtime, and their
//! errors into status codes with a JSON body `{"error": "..."}`:
//! 401 no or unknown token, 403 read-only token writing or grants beyond
//! the server's, 404 unknown execution or action, 409 a state that does
//! not allow it, 422 input that does not fit the action's types, 429 queue
//! full, 503 shutting down.

use crate::catalog::ActionDescription;
use crate::live::LiveEvent;
use crate::queue::{Payload, QueueView, WorkerView};
use crate::tokens::Caller;
use crate::wire::{
    Accepted, ActionSummary, CreateExecution, ErrorBody, ExecutionPage, GetQuery, GrantRequest,
    Health, ListQuery, ReRun, ReplayResult,
};
use crate::worker::App;
use axum::extract::{Extension, Path, Query, Request, State};
use axum::http::{header, HeaderMap, Method, StatusCode};
use axum::middleware::Next;
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use axum::Json;
use futures_util::stream::{self, Stream, StreamExt};
use serde_json::{json, Map, Value};
use std::convert::Infallible;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use utoipa::OpenApi;
use wasmflow_runtime::Recording;
use wasmflow_store::{
    code, ExecutionId, ExecutionRecord, Failure, Grants, Kind, ListFilter, Listing, StartedBy,
    Status,
};
use wasmflow_workflow::grants;
use wasmflow_workflow::graph::Graph;
use wasmflow_workflow::model::GrantSpec;
use wasmflow_workflow::{PrepareError, Runnable};

pub type AppState = Arc<App>;

mod edge;
pub mod events;
pub mod inquiries;
pub mod keys;
use edge::ApiResult;
pub use edge::{blocking, ApiError, Body};

/// Every `/api/v1` call but webhooks and the OpenAPI document.
pub async fn authenticate(State(app): State<AppState>, mut req: Request, next: Next) -> Response {
    let token = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim);
    let Some(token) = token else {
        return ApiError::new(
            StatusCode::UNAUTHORIZED,
            "missing `Authorization: Bearer TOKEN` (make one with `wasmflow token create`)",
        )
        .into_response();
    };
    let Some(caller) = app.tokens.check(token).await else {
        return ApiError::new(StatusCode::UNAUTHORIZED, "unknown or revoked token").into_response();
    };
    if caller.read_only && req.method() != Method::GET {
        return ApiError::new(
            StatusCode::FORBIDDEN,
            format!("token `{}` is read-only", caller.name),
        )
        .into_response();
    }
    // Handlers that start work record who asked.
    req.extensions_mut().insert(caller);
    next.run(req).await
}

/// A request the runnable refused: 422, named as the API names fields.
fn prepare_error(e: PrepareError) -> ApiError {
    let message = match e {
        PrepareError::Param { .. } => format!("params: {e}"),
        PrepareError::From(m) => format!("from: {m}"),
        PrepareError::Input(_) => e.to_string(),
    };
    ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, message)
}

fn draining(app: &App) -> ApiResult<()> {
    if app.draining.load(Ordering::SeqCst) {
        return Err(ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "the server is shutting down and takes no new work",
        ));
    }
    Ok(())
}

fn accepted(record: &ExecutionRecord) -> (StatusCode, Json<Accepted>) {
    (
        StatusCode::ACCEPTED,
        Json(Accepted {
            id: record.id.to_string(),
            status: record.status.to_string(),
            url: format!("/api/v1/executions/{}", record.id),
        }),
    )
}

/// A request's grants, parsed (422 naming what does not parse).
fn parse_grants(spec: &GrantSpec) -> ApiResult<Grants> {
    grants::parse(spec)
        .map_err(|e| ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, format!("grants: {e}")))
}

/// `asked` within this server's grants (403 naming the first beyond them).
fn bounded(app: &App, asked: Grants) -> ApiResult<Grants> {
    grants::bound(asked, &app.grants).map_err(|e| {
        // The operator here is whoever started `wasmflow serve`.
        ApiError::new(
            StatusCode::FORBIDDEN,
            format!("grants beyond what this server allows: the request {e}"),
        )
    })
}

/// Check and queue a new execution of a catalog entry (or an `oci://`
/// reference it does not have), started `by`.
pub async fn start(
    app: &App,
    name: &str,
    input: Value,
    params: &[String],
    grants: Option<GrantSpec>,
    by: StartedBy,
) -> ApiResult<ExecutionRecord> {
    draining(app)?;
    start_as(app, name, input, params, grants, by, None).await
}

/// [`start`] under a given id, as the event bus starts what an
/// enforcement named before (so that a restart finds it), draining or not.
pub async fn start_as(
    app: &App,
    name: &str,
    input: Value,
    params: &[String],
    grants: Option<GrantSpec>,
    by: StartedBy,
    id: Option<ExecutionId>,
) -> ApiResult<ExecutionRecord> {
    if name.starts_with("oci://") && app.catalog.get(name).is_none() {
        return start_reference(app, name, input, params, grants, by, id).await;
    }
    start_entry(app, name, input, params, grants, by, id).await
}

async fn start_entry(
    app: &App,
    name: &str,
    input: Value,
    params: &[String],
    grants: Option<GrantSpec>,
    by: StartedBy,
    id: Option<ExecutionId>,
) -> ApiResult<ExecutionRecord> {
    let entry = app.catalog.get(name).ok_or_else(|| {
        ApiError::new(
            StatusCode::NOT_FOUND,
            format!("no action or workflow named `{name}` (GET /api/v1/actions lists them)"),
        )
    })?;
    let asked = match (&grants, &entry.target) {
        (Some(spec), _) => parse_grants(spec)?,
        (None, Runnable::Action(_)) => Default::default(),
        (None, Runnable::Workflow(_)) => app.grants.clone(),
    };
    let grants = bounded(app, asked)?;
    // Named as the catalog names it; a workflow's file is its `source`.
    let mut record = entry
        .target
        .prepare(
            entry.recorded_as.clone(),
            entry.description.digest.clone(),
            input,
            params,
        )
        .map_err(prepare_error)?;
    if let Some(id) = id {
        record.id = id;
    }
    record.started_by = Some(by);
    record.grants = grants;
    record.limits = app.limits;
    app.submit(&record, Payload::default()).await?;
    Ok(record)
}

/// An `oci://` reference, as `run` takes one: pulled (verified, cached),
/// recorded as the reference pinned to its digest, run under the grants
/// asked for (nothing by default) within the server's.
async fn start_reference(
    app: &App,
    reference: &str,
    input: Value,
    params: &[String],
    grants: Option<GrantSpec>,
    by: StartedBy,
    id: Option<ExecutionId>,
) -> ApiResult<ExecutionRecord> {
    let components = app.components.as_ref().ok_or_else(|| {
        ApiError::new(
            StatusCode::NOT_FOUND,
            "this server runs no oci:// references",
        )
    })?;
    let (pinned, bytes) = components
        .oci(reference)
        .await
        .map_err(|e| ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, e))?;
    let rt = app.rt.clone();
    let action = tokio::task::spawn_blocking(move || {
        let action = rt.load_bytes(&pinned, bytes)?;
        // Kept in the store, so the worker (and a re-run) finds it there.
        rt.keep_component(&action)?;
        Ok::<_, wasmflow_runtime::RuntimeError>(action)
    })
    .await
    .map_err(|e| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?
    .map_err(|e| {
        ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            format!("{reference}: {e}"),
        )
    })?;
    let asked = grants
        .as_ref()
        .map(parse_grants)
        .transpose()?
        .unwrap_or_default();
    let mut record = Runnable::Action(action.clone())
        .prepare(
            action.reference.clone(),
            action.digest.to_string(),
            input,
            params,
        )
        .map_err(prepare_error)?;
    if let Some(id) = id {
        record.id = id;
    }
    record.grants = bounded(app, asked)?;
    record.limits = app.limits;
    record.started_by = Some(by);
    app.submit(&record, Payload::default()).await?;
    Ok(record)
}

#[utoipa::path(post, path = "/api/v1/executions", tag = "executions",
    request_body = CreateExecution,
    responses(
        (status = 202, description = "Accepted into the queue", body = Accepted),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody), (status = 422, body = ErrorBody),
        (status = 429, body = ErrorBody), (status = 503, body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn create_execution(
    State(app): State<AppState>,
    Extension(caller): Extension<Caller>,
    Body(req): Body<CreateExecution>,
) -> ApiResult<impl IntoResponse> {
    let input = req.input.unwrap_or_else(|| Value::Object(Map::new()));
    let by = StartedBy::Token(caller.name);
    let record = start(&app, &req.action, input, &req.params, req.grants, by).await?;
    Ok(accepted(&record))
}

/// A record as the API shows it: the stored record, plus `name`, the
/// catalog name of what it ran when the server knows it.
fn view(app: &App, record: &ExecutionRecord) -> Value {
    let mut v = serde_json::to_value(record).expect("records serialize");
    if let Value::Object(m) = &mut v {
        let name = app
            .catalog
            .name_of_digest(&record.component_digest)
            .map(str::to_owned);
        m.insert("name".into(), json!(name));
    }
    v
}

#[utoipa::path(get, path = "/api/v1/executions", tag = "executions", params(ListQuery),
    responses((status = 200, body = ExecutionPage), (status = 401, body = ErrorBody),
        (status = 422, body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn list_executions(
    State(app): State<AppState>,
    Query(q): Query<ListQuery>,
) -> ApiResult<Json<ExecutionPage>> {
    let bad = |m: String| ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, m);
    // Several statuses: one indexed scan each, merged newest first.
    let mut statuses = q
        .status
        .as_deref()
        .unwrap_or_default()
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|s| {
            s.parse::<Status>()
                .map(Some)
                .map_err(|e| bad(format!("status: {e}")))
        })
        .collect::<ApiResult<Vec<_>>>()?;
    if statuses.is_empty() {
        statuses.push(None);
    }
    let limit = q.limit.unwrap_or(50);
    if !(1..=500).contains(&limit) {
        return Err(bad(format!("limit: {limit} is not within 1-500")));
    }
    let instant = |name: &str, v: &Option<String>| {
        v.as_deref()
            .filter(|s| !s.is_empty())
            .map(|t| wasmflow_store::parse_instant(t).map_err(|e| bad(format!("{name} {t}: {e}"))))
            .transpose()
    };
    let (since, until) = (instant("since", &q.since)?, instant("until", &q.until)?);
    let before = q
        .before
        .as_deref()
        .filter(|s| !s.is_empty())
        .map(|b| {
            b.parse::<ExecutionId>()
                .map_err(|_| bad(format!("before: `{b}` is not an execution id")))
        })
        .transpose()?;
    // Ids sort by creation time: the end of a time range is an id.
    let before = match (before, until.map(ExecutionId::first_at)) {
        (Some(b), Some(u)) => Some(b.min(u)),
        (b, u) => b.or(u),
    };
    // Records name a pack's items with their version; the API filters by
    // catalog name.
    let action = q.action.as_deref().filter(|s| !s.is_empty()).map(|name| {
        app.catalog
            .get(name)
            .map_or_else(|| name.to_owned(), |e| e.recorded_as.clone())
    });
    let store = app.rt.store().clone();
    let listing = tokio::task::spawn_blocking(move || {
        let listings = statuses
            .into_iter()
            .map(|status| {
                store.scan(&ListFilter {
                    status,
                    limit: limit + 1,
                    children: q.all.unwrap_or(false),
                    before,
                    action: action.clone(),
                })
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok::<_, wasmflow_store::StoreError>(Listing::merged(listings, limit + 1, None))
    })
    .await
    .map_err(|e| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))??;
    let mut records = listing.records;
    let mut more = records.len() > limit;
    // Newest first: the first one older than `since` ends the range.
    if let Some(cut) = since.and_then(|t| records.iter().position(|r| r.created_at < t)) {
        more &= cut > limit;
        records.truncate(cut);
    }
    let page: Vec<_> = records.into_iter().take(limit).collect();
    let next_before = more
        .then(|| page.last().map(|r| r.id.to_string()))
        .flatten();
    Ok(Json(ExecutionPage {
        executions: page.iter().map(|r| view(&app, r)).collect(),
        next_before,
        unreadable: listing
            .unreadable
            .iter()
            .map(|u| format!("{} ({})", u.id, u.problem()))
            .collect(),
    }))
}

fn find(app: &App, id: &str) -> ApiResult<ExecutionRecord> {
    Ok(app.rt.store().find(id)?)
}

fn tree(app: &App, record: &ExecutionRecord) -> ApiResult<Value> {
    let mut v = view(app, record);
    let children = app
        .rt
        .store()
        .children(record.id)?
        .iter()
        .map(|c| tree(app, c))
        .collect::<ApiResult<Vec<_>>>()?;
    if let Value::Object(m) = &mut v {
        m.insert("children".into(), Value::Array(children));
    }
    Ok(v)
}

#[utoipa::path(get, path = "/api/v1/executions/{id}", tag = "executions",
    params(("id" = String, Path, description = "Execution id or a unique prefix"), GetQuery),
    responses((status = 200, description = "The execution record", body = Object),
        (status = 401, body = ErrorBody), (status = 404, body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn get_execution(
    State(app): State<AppState>,
    Path(id): Path<String>,
    Query(q): Query<GetQuery>,
) -> ApiResult<Json<Value>> {
    let record = find(&app, &id)?;
    Ok(Json(if q.tree.unwrap_or(false) {
        tree(&app, &record)?
    } else {
        view(&app, &record)
    }))
}

#[utoipa::path(get, path = "/api/v1/executions/{id}/graph", tag = "executions",
    params(("id" = String, Path, description = "A workflow execution's id or a unique prefix")),
    responses((status = 200, description = "The workflow's tasks (each with its state, attempts, \
        times, latest execution and error) and transitions", body = Object),
        (status = 401, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 422, body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn execution_graph(
    State(app): State<AppState>,
    Path(id): Path<String>,
) -> ApiResult<Json<Graph>> {
    let record = find(&app, &id)?;
    if record.kind != Kind::Workflow {
        return Err(ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            format!(
                "{} ran an action, not a workflow: it has no graph",
                record.id
            ),
        ));
    }
    app.sched
        .graph(&record)
        .map(Json)
        .map_err(|e| ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, e.to_string()))
}

fn sse_event(e: &LiveEvent) -> Event {
    let data = match e {
        LiveEvent::Log(line) => serde_json::to_string(line),
        other => serde_json::to_string(other),
    }
    .expect("events serialize");
    Event::default().event(e.name()).data(data)
}

#[utoipa::path(get, path = "/api/v1/executions/{id}/logs", tag = "executions",
    params(("id" = String, Path, description = "Execution id or a unique prefix")),
    responses((status = 200, description = "Server-sent events: `log` (a log line), \
        `task` (a workflow task started or finished) and, last, `end` ({\"status\"}). \
        Follows a pending or running execution to its end.", content_type = "text/event-stream"),
        (status = 401, body = ErrorBody), (status = 404, body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn execution_logs(
    State(app): State<AppState>,
    Path(id): Path<String>,
) -> ApiResult<Sse<impl Stream<Item = Result<Event, Infallible>>>> {
    let record = find(&app, &id)?;
    let following = match app.live.follow(record.id) {
        None if app.queue.leasing().is_some() && !record.is_finished() => {
            claimed_here(&app, record.id).await
        }
        following => following,
    };
    let stream: std::pin::Pin<Box<dyn Stream<Item = LiveEvent> + Send>> = match following {
        Some((said, rx)) => {
            let ended = said.iter().any(|e| matches!(e, LiveEvent::End { .. }));
            let rest = stream::unfold((rx, ended), |(mut rx, ended)| async move {
                if ended {
                    return None;
                }
                loop {
                    match rx.recv().await {
                        Ok(e) => {
                            let end = matches!(e, LiveEvent::End { .. });
                            return Some((e, (rx, end)));
                        }
                        // A slow follower misses lines, not the end.
                        Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => continue,
                        Err(tokio::sync::broadcast::error::RecvError::Closed) => return None,
                    }
                }
            });
            Box::pin(stream::iter(said).chain(rest))
        }
        None => {
            // Not followed live (ended, or a workflow's task): its
            // record has every line once it ends; wait for that.
            let store = app.rt.store().clone();
            let id = record.id;
            let ended = stream::once(async move {
                loop {
                    match store.get(id) {
                        Ok(Some(r)) if r.is_finished() => return r,
                        Ok(Some(_)) => {
                            tokio::time::sleep(std::time::Duration::from_millis(200)).await
                        }
                        _ => return record,
                    }
                }
            });
            Box::pin(ended.flat_map(|r| {
                let mut events: Vec<_> = r.logs.iter().cloned().map(LiveEvent::Log).collect();
                events.push(LiveEvent::End { status: r.status });
                stream::iter(events)
            }))
        }
    };
    Ok(Sse::new(stream.map(|e| Ok(sse_event(&e)))).keep_alive(KeepAlive::default()))
}

/// On a shared store an execution's live channel opens where it is
/// claimed: wait until this process claims it (then follow it live) or it
/// ends (then its record has every line).
async fn claimed_here(
    app: &App,
    id: wasmflow_store::ExecutionId,
) -> Option<crate::live::Following> {
    loop {
        if let Some(following) = app.live.follow(id) {
            return Some(following);
        }
        match app.rt.store().get(id) {
            Ok(Some(r)) if !r.is_finished() => {}
            _ => return None,
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}

#[utoipa::path(post, path = "/api/v1/executions/{id}/cancel", tag = "executions",
    params(("id" = String, Path, description = "Execution id or a unique prefix")),
    responses((status = 202, description = "Canceled, or being canceled", body = Accepted),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn cancel_execution(
    State(app): State<AppState>,
    Path(id): Path<String>,
) -> ApiResult<impl IntoResponse> {
    let mut record = find(&app, &id)?;
    if record.is_finished() {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            format!("execution {} already ended ({})", record.id, record.status),
        ));
    }
    if app.queue.withdraw(record.id).is_some() {
        never_started(&app, &mut record)?;
        app.update_depth();
        return Ok(accepted(&record));
    }
    if let Some(entry) = app.queue.entry(record.id) {
        entry.cancel.cancel();
        return Ok(accepted(&record));
    }
    if record.status == Status::Paused {
        // Nothing runs a paused workflow: settle it and its tree here.
        let (store, paused) = (app.rt.store().clone(), record.clone());
        edge::blocking(move || wasmflow_workflow::cancel::cancel_tree(&store, paused)).await?;
        return Ok(accepted(&record));
    }
    // On a shared store another process may hold it, or nobody yet.
    match app.queue.cancel_shared(record.id)? {
        wasmflow_store::Cancel::Withdrawn => {
            never_started(&app, &mut record)?;
            Ok(accepted(&record))
        }
        // Its worker stops it at its next heartbeat.
        wasmflow_store::Cancel::Requested { .. } => Ok(accepted(&record)),
        wasmflow_store::Cancel::NotQueued => Err(ApiError::new(
            StatusCode::CONFLICT,
            format!(
                "execution {} is {} but not in this server's queue (a workflow task is \
                 canceled with its workflow)",
                record.id, record.status
            ),
        )),
    }
}

#[utoipa::path(post, path = "/api/v1/executions/{id}/pause", tag = "executions",
    params(("id" = String, Path, description = "A running workflow execution's id or a unique prefix")),
    responses((status = 202, description = "Pausing: no task starts now, running ones finish, \
        then it is `paused`", body = Accepted),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody), (status = 409, body = ErrorBody),
        (status = 422, body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn pause_execution(
    State(app): State<AppState>,
    Path(id): Path<String>,
) -> ApiResult<impl IntoResponse> {
    let record = find(&app, &id)?;
    if record.kind != Kind::Workflow {
        return Err(ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            format!(
                "{} ran an action: only workflows pause (cancel stops an action)",
                record.id
            ),
        ));
    }
    if record.status != Status::Running {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            format!(
                "workflow execution {} is {}: only a running workflow pauses",
                record.id, record.status
            ),
        ));
    }
    if let Some(entry) = app.queue.entry(record.id) {
        entry.pause.cancel();
        return Ok(accepted(&record));
    }
    // On a shared store another process may run it: its heartbeat hears.
    match app.queue.pause_shared(record.id)? {
        Some(_) => Ok(accepted(&record)),
        None => Err(ApiError::new(
            StatusCode::CONFLICT,
            format!(
                "workflow execution {} is running but no server process runs it from the \
                 queue (a `wasmflow run` pauses through `wasmflow execution pause`)",
                record.id
            ),
        )),
    }
}

#[utoipa::path(post, path = "/api/v1/executions/{id}/resume", tag = "executions",
    params(("id" = String, Path, description = "A paused workflow execution's id or a unique prefix")),
    responses((status = 202, description = "Queued to go on from where it paused", body = Accepted),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody), (status = 409, body = ErrorBody),
        (status = 429, body = ErrorBody), (status = 503, body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn resume_execution(
    State(app): State<AppState>,
    Path(id): Path<String>,
) -> ApiResult<impl IntoResponse> {
    draining(&app)?;
    let record = find(&app, &id)?;
    if record.status != Status::Paused {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            format!("execution {} is {}, not paused", record.id, record.status),
        ));
    }
    let payload = Payload {
        resume: true,
        ..Payload::default()
    };
    app.submit(&record, payload).await?;
    Ok(accepted(&record))
}

/// Record a withdrawn execution as canceled before it started.
fn never_started(app: &App, record: &mut ExecutionRecord) -> ApiResult<()> {
    record.fail(
        Status::Canceled,
        Failure::new(code::CANCELED, "canceled before it started"),
    );
    app.rt.store().put(record)?;
    app.live.end(record.id, Status::Canceled);
    app.metrics.ended(&record.action, "canceled", None);
    Ok(())
}

#[utoipa::path(post, path = "/api/v1/executions/{id}/re-run", tag = "executions",
    params(("id" = String, Path, description = "Execution id or a unique prefix")),
    request_body = ReRun,
    responses((status = 202, body = Accepted), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 422, body = ErrorBody), (status = 429, body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn rerun_execution(
    State(app): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
    Body(req): Body<ReRun>,
) -> ApiResult<impl IntoResponse> {
    draining(&app)?;
    let original = find(&app, &id)?;
    let unprocessable = |m: String| ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, m);
    let runnable = match original.kind {
        Kind::Action => Runnable::Action(app.action_of(&original).map_err(unprocessable)?),
        Kind::Workflow => Runnable::Workflow(Arc::new(
            app.sched
                .recorded_definition(&original)
                .map_err(|e| unprocessable(e.to_string()))?,
        )),
    };
    let mut record = runnable
        .rerun(&original, req.input, &req.params, req.from.as_deref())
        .map_err(prepare_error)?;
    record.started_by = Some(StartedBy::Token(caller.name));
    if let Some(spec) = &req.grants {
        record.grants = bounded(&app, grants::extend(&record.grants, parse_grants(spec)?))?;
    }
    let payload = Payload {
        from: req.from,
        ..Payload::default()
    };
    app.submit(&record, payload).await?;
    Ok(accepted(&record))
}

#[utoipa::path(post, path = "/api/v1/executions/{id}/replay", tag = "executions",
    params(("id" = String, Path, description = "Execution id or a unique prefix")),
    responses((status = 200, body = ReplayResult), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn replay_execution(
    State(app): State<AppState>,
    Path(id): Path<String>,
) -> ApiResult<Json<ReplayResult>> {
    draining(&app)?;
    let record = find(&app, &id)?;
    if record.kind == Kind::Workflow {
        return Err(ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            format!(
                "{} is a workflow execution; replay one of its tasks' executions \
                 (GET /api/v1/executions/{}?tree=true lists them)",
                record.id, record.id
            ),
        ));
    }
    if !record.is_finished() {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            format!("execution {} has not ended ({})", record.id, record.status),
        ));
    }
    let recording = Recording::from_store(app.rt.store(), record)
        .map_err(|e| ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, e.to_string()))?;
    let report = app
        .rt
        .replay(&recording, None)
        .await
        .map_err(|e| ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, e.to_string()))?;
    Ok(Json(ReplayResult {
        verdict: report.verdict.to_string(),
        detail: serde_json::to_value(&report.verdict).expect("verdicts serialize"),
        passed: report.passed(),
        record: view(&app, &report.record),
    }))
}

#[utoipa::path(get, path = "/api/v1/actions", tag = "actions",
    responses((status = 200, body = Vec<ActionSummary>), (status = 401, body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn list_actions(State(app): State<AppState>) -> Json<Vec<ActionSummary>> {
    Json(
        app.catalog
            .entries()
            .map(|e| ActionSummary {
                name: e.name.clone(),
                kind: e.description.kind.clone(),
                signature: e.description.signature.clone(),
                docs: e.description.docs.clone(),
            })
            .collect(),
    )
}

#[utoipa::path(get, path = "/api/v1/actions/{name}", tag = "actions",
    params(("name" = String, Path, description = "Catalog name, e.g. `vm.clone`")),
    responses((status = 200, body = ActionDescription), (status = 401, body = ErrorBody),
        (status = 404, body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn get_action(
    State(app): State<AppState>,
    Path(name): Path<String>,
) -> ApiResult<Json<ActionDescription>> {
    app.catalog
        .get(&name)
        .map(|e| Json(e.description.clone()))
        .ok_or_else(|| {
            ApiError::new(
                StatusCode::NOT_FOUND,
                format!("no action or workflow named `{name}`"),
            )
        })
}

#[utoipa::path(get, path = "/api/v1/queue", tag = "queue",
    responses((status = 200, body = QueueView), (status = 401, body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn queue(State(app): State<AppState>) -> ApiResult<Json<QueueView>> {
    Ok(Json(app.queue.view()?))
}

#[utoipa::path(get, path = "/api/v1/workers", tag = "queue",
    responses((status = 200, body = [WorkerView]), (status = 401, body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn workers(State(app): State<AppState>) -> ApiResult<Json<Vec<WorkerView>>> {
    Ok(Json(app.queue.workers_view()?))
}

#[utoipa::path(post, path = "/api/v1/webhooks/{name}", tag = "webhooks",
    params(("name" = String, Path, description = "Webhook name from the webhooks file"),
        ("X-Hub-Signature-256" = Option<String>, Header, description = "sha256=HEX: HMAC-SHA256 of the body under the webhook's secret"),
        ("X-Wasmflow-Webhook-Secret" = Option<String>, Header, description = "The secret itself, for callers that cannot sign")),
    request_body(content = Object, description = "Any JSON; the webhook's input mapping reads it as `body`"),
    responses((status = 202, body = Accepted), (status = 401, body = ErrorBody),
        (status = 404, body = ErrorBody), (status = 422, body = ErrorBody),
        (status = 429, body = ErrorBody)))]
pub async fn webhook(
    State(app): State<AppState>,
    Path(name): Path<String>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> ApiResult<impl IntoResponse> {
    use crate::webhooks::WebhookError as W;
    let header = |n: &str| headers.get(n).and_then(|v| v.to_str().ok());
    let refused = |e: W| {
        let status = match e {
            W::Unknown(_) => StatusCode::NOT_FOUND,
            W::Unauthorized => StatusCode::UNAUTHORIZED,
            W::Body(_) => StatusCode::BAD_REQUEST,
            W::Mapping(_) => StatusCode::UNPROCESSABLE_ENTITY,
        };
        ApiError::new(status, e.to_string())
    };
    let (hook, body) = app
        .webhooks
        .call(
            &name,
            &body,
            header("x-hub-signature-256"),
            header("x-wasmflow-webhook-secret"),
        )
        .map_err(refused)?;
    draining(&app)?;
    // Its own action first (checked before the event is kept, so a bad
    // call leaves nothing behind), then the event for the rules.
    let input = match &hook.action {
        Some(_) => Some(app.webhooks.input(hook, &body).map_err(refused)?),
        None => None,
    };
    let mut parameters = Map::new();
    parameters.insert("name".into(), Value::String(name.clone()));
    let instance = if crate::bus::wanted(&app, wasmflow_events::trigger::WEBHOOK, &parameters) {
        let payload = json!({"name": name, "body": body});
        Some(crate::bus::emit(&app, wasmflow_events::trigger::WEBHOOK, parameters, payload).await?)
    } else {
        None
    };
    match (&hook.action, input) {
        (Some(action), Some(input)) => {
            let by = StartedBy::Webhook(name.clone());
            let record = start(&app, action, input, &[], hook.grants.clone(), by).await?;
            Ok(accepted(&record).into_response())
        }
        _ => {
            let Some(instance) = instance else {
                return Err(ApiError::new(
                    StatusCode::UNPROCESSABLE_ENTITY,
                    format!("webhook `{name}` names no action and no rule listens to it"),
                ));
            };
            Ok((
                StatusCode::ACCEPTED,
                Json(json!({"trigger_instance": instance.id.to_string()})),
            )
                .into_response())
        }
    }
}

#[utoipa::path(get, path = "/healthz", tag = "server",
    responses((status = 200, body = Health)))]
pub async fn healthz(State(app): State<AppState>) -> Json<Health> {
    let (pending, running) = app.queue.depth();
    Json(Health {
        status: "ok".into(),
        pending,
        running,
        draining: app.draining.load(Ordering::SeqCst),
    })
}

#[utoipa::path(get, path = "/metrics", tag = "server",
    responses((status = 200, description = "Prometheus text format", content_type = "text/plain")))]
pub async fn metrics(State(app): State<AppState>) -> impl IntoResponse {
    (
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        app.metrics.encode(),
    )
}

pub async fn openapi_json() -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "application/json")],
        ApiDoc::openapi()
            .to_pretty_json()
            .expect("the OpenAPI document serializes"),
    )
}

struct BearerAuth;

impl utoipa::Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
        if let Some(c) = openapi.components.as_mut() {
            c.add_security_scheme(
                "bearer",
                SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
            );
        }
    }
}

#[derive(OpenApi)]
#[openapi(
    info(title = "wasmflow", description = "Run WebAssembly actions and workflows: queue, records, logs, replay."),
    paths(create_execution, list_executions, get_execution, execution_graph, execution_logs,
        cancel_execution, pause_execution, resume_execution,
        rerun_execution, replay_execution, list_actions, get_action, queue, workers, webhook, healthz,
        metrics, keys::list_keys, keys::get_key, keys::set_key, keys::delete_key,
        inquiries::list_inquiries, inquiries::get_inquiry, inquiries::respond,
        events::list_rules, events::get_rule, events::enable_rule, events::disable_rule,
        events::list_trigger_instances, events::get_trigger_instance,
        events::list_enforcements, events::emit_trigger),
    components(schemas(CreateExecution, GrantRequest, Accepted, ExecutionPage, ReRun, ReplayResult,
        crate::wire::SetKey, crate::wire::Respond,
        ActionSummary, ActionDescription, QueueView, crate::queue::QueueItem, WorkerView, Health,
        ErrorBody)),
    modifiers(&BearerAuth)
)]
pub struct ApiDoc;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_grant_schema_matches_the_grant_spec() {
        let schema =
            serde_json::to_value(<GrantRequest as utoipa::PartialSchema>::schema()).unwrap();
        let mut documented: Vec<&String> =
            schema["properties"].as_object().unwrap().keys().collect();
        documented.sort();
        let spec = serde_json::to_value(GrantSpec::default()).unwrap();
        let mut real: Vec<&String> = spec.as_object().unwrap().keys().collect();
        real.sort();
        assert_eq!(documented, real);
    }
}
