//! `/api/v1/rules`, `/api/v1/trigger-instances`, `/api/v1/triggers/{type}` and
//! `/api/v1/rule-enforcements`: the event bus's rules, what happened, and
//! what each rule did about it.

use super::edge::ApiResult;
use super::AppState;
use super::{blocking, draining, ApiError, Body};
use crate::wire::ErrorBody;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::Json;
use serde::Deserialize;
use serde_json::{json, Value};
use wasmflow_store::ExecutionId;

#[derive(Debug, Deserialize, utoipa::IntoParams)]
pub struct Limit {
    /// At most this many, newest first (default 50).
    limit: Option<usize>,
}

#[utoipa::path(get, path = "/api/v1/rules", tag = "events",
    responses((status = 200, description = "The rules this server enforces", body = Vec<Object>),
        (status = 401, body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn list_rules(State(app): State<AppState>) -> Json<Vec<Value>> {
    Json(app.rules.iter().map(|r| rule_view(&app, r)).collect())
}

fn rule_view(app: &crate::worker::App, r: &wasmflow_events::Rule) -> Value {
    json!({
        "name": r.name,
        "description": r.description,
        "enabled": app.rule_enabled(r),
        "trigger": {"type": r.trigger, "parameters": r.parameters},
        "criteria": r.criteria.iter().map(|c| json!({"path": c.path, "type": c.operator.name(), "pattern": c.pattern})).collect::<Vec<_>>(),
        "action": r.action,
        "input": r.input,
        "file": r.file,
    })
}

fn rule_named<'a>(
    app: &'a crate::worker::App,
    name: &str,
) -> Result<&'a wasmflow_events::Rule, ApiError> {
    app.rules.iter().find(|r| r.name == name).ok_or_else(|| {
        ApiError::new(
            StatusCode::NOT_FOUND,
            format!("no rule `{name}` (GET /api/v1/rules lists them)"),
        )
    })
}

#[utoipa::path(get, path = "/api/v1/rules/{name}", tag = "events",
    params(("name" = String, Path, description = "Rule name")),
    responses((status = 200, description = "The rule: trigger, criteria, action, input", body = Object),
        (status = 401, body = ErrorBody), (status = 404, body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn get_rule(
    State(app): State<AppState>,
    Path(name): Path<String>,
) -> ApiResult<Json<Value>> {
    Ok(Json(rule_view(&app, rule_named(&app, &name)?)))
}

#[utoipa::path(post, path = "/api/v1/rules/{name}/enable", tag = "events",
    params(("name" = String, Path, description = "Rule name")),
    responses((status = 200, description = "Enabled, for every server on this store", body = Object),
        (status = 401, body = ErrorBody), (status = 404, body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn enable_rule(
    State(app): State<AppState>,
    Path(name): Path<String>,
) -> ApiResult<Json<Value>> {
    crate::bus::set_rule_enabled(&app, &name, true)?;
    Ok(Json(rule_view(&app, rule_named(&app, &name)?)))
}

#[utoipa::path(post, path = "/api/v1/rules/{name}/disable", tag = "events",
    params(("name" = String, Path, description = "Rule name")),
    responses((status = 200, description = "Disabled: its events get `disabled` enforcements", body = Object),
        (status = 401, body = ErrorBody), (status = 404, body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn disable_rule(
    State(app): State<AppState>,
    Path(name): Path<String>,
) -> ApiResult<Json<Value>> {
    crate::bus::set_rule_enabled(&app, &name, false)?;
    Ok(Json(rule_view(&app, rule_named(&app, &name)?)))
}

#[utoipa::path(get, path = "/api/v1/trigger-instances", tag = "events", params(Limit),
    responses((status = 200, description = "Events, newest first", body = Vec<Object>),
        (status = 401, body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn list_trigger_instances(
    State(app): State<AppState>,
    Query(q): Query<Limit>,
) -> ApiResult<Json<Value>> {
    let store = app.rt.store().clone();
    let limit = q.limit.unwrap_or(50);
    let found = blocking(move || store.triggers(false, limit)).await?;
    Ok(Json(json!(found)))
}

#[utoipa::path(get, path = "/api/v1/trigger-instances/{id}", tag = "events",
    params(("id" = String, Path, description = "Trigger instance id")),
    responses((status = 200, description = "The event and its rules' enforcements", body = Object),
        (status = 401, body = ErrorBody), (status = 404, body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn get_trigger_instance(
    State(app): State<AppState>,
    Path(id): Path<String>,
) -> ApiResult<Json<Value>> {
    let id: ExecutionId = id
        .parse()
        .map_err(|_| ApiError::new(StatusCode::NOT_FOUND, format!("no trigger instance {id}")))?;
    let store = app.rt.store().clone();
    let (instance, enforcements) = blocking(move || {
        Ok::<_, wasmflow_store::StoreError>((
            store.trigger(id)?,
            store.enforcements(Some(id), usize::MAX)?,
        ))
    })
    .await?;
    let instance = instance
        .ok_or_else(|| ApiError::new(StatusCode::NOT_FOUND, format!("no trigger instance {id}")))?;
    Ok(Json(
        json!({"instance": instance, "enforcements": enforcements}),
    ))
}

#[utoipa::path(get, path = "/api/v1/rule-enforcements", tag = "events", params(Limit),
    responses((status = 200, description = "What rules did, newest event first", body = Vec<Object>),
        (status = 401, body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn list_enforcements(
    State(app): State<AppState>,
    Query(q): Query<Limit>,
) -> ApiResult<Json<Value>> {
    let store = app.rt.store().clone();
    let limit = q.limit.unwrap_or(50);
    let found = blocking(move || store.enforcements(None, limit)).await?;
    Ok(Json(json!(found)))
}

#[utoipa::path(post, path = "/api/v1/triggers/{type}", tag = "events",
    params(("type" = String, Path, description = "A trigger type a pack declares (`PACK.NAME`)")),
    request_body(content = Object, description = "The event's payload, checked against the type's schema"),
    responses((status = 202, description = "Recorded; the rules listening to it enforced", body = Object),
        (status = 401, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 422, body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn emit_trigger(
    State(app): State<AppState>,
    Path(kind): Path<String>,
    Body(payload): Body<Value>,
) -> ApiResult<impl IntoResponse> {
    draining(&app)?;
    let t = app
        .trigger_types
        .iter()
        .find(|t| t.name == kind)
        .ok_or_else(|| {
            ApiError::new(
                StatusCode::NOT_FOUND,
                format!("no trigger type `{kind}` (wasmflow trigger list shows them)"),
            )
        })?;
    if !wasmflow_events::trigger::is_custom(&kind) {
        return Err(ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            format!("`{kind}` events are wasmflow's own; a pack declares the types one emits"),
        ));
    }
    wasmflow_events::trigger::check_payload(t, &payload).map_err(|e| {
        ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            format!("the payload does not fit `{kind}`: {e}"),
        )
    })?;
    let instance = crate::bus::emit(&app, &kind, serde_json::Map::new(), payload).await?;
    Ok((
        StatusCode::ACCEPTED,
        Json(json!({"trigger_instance": instance.id.to_string()})),
    ))
}
