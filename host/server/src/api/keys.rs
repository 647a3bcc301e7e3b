//! `/api/v1/keys`: the datastore over HTTP. Secrets are masked in every
//! answer but `GET /keys/{name}?decrypt=true`, which a read-only token may
//! not ask. A token is its own user: `user.NAME.` keys are token `NAME`'s
//! alone (listed, read and changed by it only); `system.` keys are
//! everyone's.

use super::edge::{blocking, ApiError, Body};
use super::{ApiResult, AppState};
use crate::tokens::Caller;
use crate::wire::{ErrorBody, KeyQuery, SetKey};
use axum::extract::{Extension, Path, Query, State};
use axum::http::StatusCode;
use axum::Json;
use wasmflow_datastore::{Datastore, Key};

/// The runtime's datastore (`Runtime::use_keys`): the one its executions
/// and workflows read.
fn datastore(app: &crate::worker::App) -> ApiResult<&Datastore> {
    app.rt
        .keys()
        .ok_or_else(|| ApiError::new(StatusCode::NOT_FOUND, "this server has no datastore"))
}

/// The user a `user.USER.NAME` key belongs to; None for a shared key.
fn owner(name: &str) -> Option<&str> {
    name.strip_prefix("user.")?.split('.').next()
}

/// Refused unless `name` is shared or the caller's own.
fn may_touch(caller: &Caller, name: &str) -> ApiResult<()> {
    match owner(name) {
        Some(user) if user != caller.name => Err(ApiError::new(
            StatusCode::FORBIDDEN,
            format!(
                "key `{name}` is user {user}'s: token `{}` may only use its own `user.{}.` keys and `system.` ones",
                caller.name, caller.name
            ),
        )),
        _ => Ok(()),
    }
}

fn no_key(name: &str) -> ApiError {
    ApiError::new(
        StatusCode::NOT_FOUND,
        format!("no key `{name}` (expired, or never set)"),
    )
}

#[utoipa::path(get, path = "/api/v1/keys", tag = "keys", params(KeyQuery),
    responses((status = 200, description = "Keys by name, secrets masked", body = Vec<Object>),
        (status = 401, body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn list_keys(
    State(app): State<AppState>,
    Extension(caller): Extension<Caller>,
    Query(q): Query<KeyQuery>,
) -> ApiResult<Json<Vec<Key>>> {
    let ds = datastore(&app)?.clone();
    let prefix = q.prefix.unwrap_or_default();
    let mut keys = blocking(move || ds.list(&prefix)).await?;
    keys.retain(|k| owner(&k.name).is_none_or(|user| user == caller.name));
    Ok(Json(keys))
}

#[utoipa::path(get, path = "/api/v1/keys/{name}", tag = "keys",
    params(("name" = String, Path, description = "`system.NAME` or `user.USER.NAME`"), KeyQuery),
    responses((status = 200, body = Object), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn get_key(
    State(app): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(name): Path<String>,
    Query(q): Query<KeyQuery>,
) -> ApiResult<Json<Key>> {
    may_touch(&caller, &name)?;
    let decrypt = q.decrypt.unwrap_or(false);
    if decrypt && caller.read_only {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            format!(
                "token `{}` is read-only: it may not decrypt secrets",
                caller.name
            ),
        ));
    }
    let ds = datastore(&app)?.clone();
    let n = name.clone();
    blocking(move || ds.get(&n, decrypt))
        .await?
        .map(Json)
        .ok_or_else(|| no_key(&name))
}

#[utoipa::path(put, path = "/api/v1/keys/{name}", tag = "keys",
    params(("name" = String, Path, description = "`system.NAME` or `user.USER.NAME`")),
    request_body = SetKey,
    responses((status = 200, description = "The key as set (a secret masked)", body = Object),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 422, body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn set_key(
    State(app): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(name): Path<String>,
    Body(req): Body<SetKey>,
) -> ApiResult<Json<Key>> {
    may_touch(&caller, &name)?;
    let ttl = req
        .ttl
        .as_deref()
        .map(|t| {
            humantime::parse_duration(t).map_err(|e| {
                ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, format!("ttl {t}: {e}"))
            })
        })
        .transpose()?;
    let ds = datastore(&app)?.clone();
    let n = name.clone();
    blocking(move || {
        ds.set(&n, &req.value, req.secret, ttl)?;
        ds.get(&n, false)
    })
    .await?
    .map(Json)
    .ok_or_else(|| no_key(&name))
}

#[utoipa::path(delete, path = "/api/v1/keys/{name}", tag = "keys",
    params(("name" = String, Path, description = "`system.NAME` or `user.USER.NAME`")),
    responses((status = 204, description = "Deleted"), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn delete_key(
    State(app): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(name): Path<String>,
) -> ApiResult<StatusCode> {
    may_touch(&caller, &name)?;
    let ds = datastore(&app)?.clone();
    let n = name.clone();
    match blocking(move || ds.delete(&n)).await? {
        true => Ok(StatusCode::NO_CONTENT),
        false => Err(no_key(&name)),
    }
}
