//! `/api/v1/inquiries`: the questions `core.ask` tasks wait on. An answer
//! is checked against the question's schema (422 naming the JSON path),
//! recorded with who gave it (the token's name), and a workflow paused on
//! it is queued to go on.

use super::edge::{blocking, Body};
use super::{find, ApiResult, AppState};
use crate::queue::Payload;
use crate::tokens::Caller;
use crate::wire::{ErrorBody, Respond};
use crate::worker::App;
use axum::extract::{Extension, Path, State};
use axum::Json;
use serde_json::Value;
use std::sync::Arc;
use wasmflow_store::{ExecutionId, ExecutionRecord, StartedBy, Status};
use wasmflow_workflow::inquiry::{self, view, InquiryError};

#[utoipa::path(get, path = "/api/v1/inquiries", tag = "inquiries",
    responses((status = 200, description = "Inquiries waiting for an answer, oldest first \
        (those past their ttl expire now)", body = Vec<Object>),
        (status = 401, body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn list_inquiries(State(app): State<AppState>) -> ApiResult<Json<Vec<Value>>> {
    let store = app.rt.store().clone();
    let open = blocking(move || inquiry::pending(&store)).await?;
    Ok(Json(open.iter().map(view).collect()))
}

#[utoipa::path(get, path = "/api/v1/inquiries/{id}", tag = "inquiries",
    params(("id" = String, Path, description = "Inquiry id or a unique prefix")),
    responses((status = 200, body = Object), (status = 401, body = ErrorBody),
        (status = 404, body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn get_inquiry(
    State(app): State<AppState>,
    Path(id): Path<String>,
) -> ApiResult<Json<Value>> {
    let r = find(&app, &id)?;
    if r.action != inquiry::ASK {
        return Err(InquiryError::NotAnInquiry(r.id.to_string()).into());
    }
    Ok(Json(view(&r)))
}

#[utoipa::path(post, path = "/api/v1/inquiries/{id}/respond", tag = "inquiries",
    params(("id" = String, Path, description = "Inquiry id or a unique prefix")),
    request_body = Respond,
    responses((status = 200, description = "Answered; its workflow goes on", body = Object),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody), (status = 409, body = ErrorBody),
        (status = 422, body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn respond(
    State(app): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
    Body(req): Body<Respond>,
) -> ApiResult<Json<Value>> {
    let store = app.rt.store().clone();
    let by = StartedBy::Token(caller.name);
    let answered = blocking(move || inquiry::respond(&store, &id, req.response, &by)).await?;
    go_on(&app, &answered).await?;
    Ok(Json(view(&answered)))
}

/// Queue the workflow an ended inquiry belongs to (the outermost, when it
/// is nested: see `inquiry::waiting_on`) once it is paused. A
/// workflow still running takes the answer itself when its running tasks
/// end; one that was just pausing as the answer came is watched for a
/// moment and queued when it has paused.
pub async fn go_on(app: &Arc<App>, inquiry: &ExecutionRecord) -> ApiResult<()> {
    let (store, asked) = (app.rt.store().clone(), inquiry.clone());
    let Some(parent) =
        blocking(move || inquiry::waiting_on(&store, &asked).map(|w| w.map(|w| w.id))).await?
    else {
        return Ok(());
    };
    if resume_if_paused(app, parent).await? {
        return Ok(());
    }
    let app = app.clone();
    tokio::spawn(async move {
        for _ in 0..50 {
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
            match resume_if_paused(&app, parent).await {
                Ok(false) => {}
                Ok(true) => return,
                Err(e) => {
                    tracing::warn!("resuming {parent} after its inquiry: {}", e.message);
                    return;
                }
            }
        }
    });
    Ok(())
}

/// Queue `id` to go on if it is paused and not queued; whether it was (or
/// is past waiting: ended, or gone).
async fn resume_if_paused(app: &App, id: ExecutionId) -> ApiResult<bool> {
    let Some(workflow) = app.rt.store().get(id)? else {
        return Ok(true);
    };
    match workflow.status {
        Status::Paused if app.queue.entry(id).is_none() => {
            let payload = Payload {
                resume: true,
                ..Payload::default()
            };
            app.submit(&workflow, payload).await?;
            Ok(true)
        }
        Status::Running | Status::Pending => Ok(false),
        _ => Ok(true),
    }
}
