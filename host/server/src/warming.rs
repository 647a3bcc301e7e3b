//! The server's address while it starts: compiling a catalog of Python
//! actions on a cold cache takes minutes, and an orchestrator probing
//! `/healthz` in that time must hear "starting", not nothing (a refused
//! connection reads as dead, and gets the process restarted, for ever).
//!
//! [`front`] answers every request: with the API once it is set, before
//! that `/healthz` with `{"status": "warming"}` (200) and everything else
//! with 503 and `Retry-After`.
//!
//! What it must not touch: the API itself (`router`), the catalog.

use crate::api::ApiError;
use crate::wire::Health;
use axum::extract::Request;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::{Json, Router};
use std::sync::{Arc, OnceLock};
use tower::ServiceExt;

/// How long a client is told to wait before asking again.
const RETRY_AFTER_SECONDS: &str = "5";

/// The router for the server's address: `api` once it is set.
pub(crate) fn front(api: Arc<OnceLock<Router>>) -> Router {
    Router::new().fallback(move |request: Request| {
        let api = api.clone();
        async move {
            match api.get() {
                Some(router) => match router.clone().oneshot(request).await {
                    Ok(response) => response,
                    Err(never) => match never {},
                },
                None => warming(&request),
            }
        }
    })
}

fn warming(request: &Request) -> Response {
    if request.uri().path() == "/healthz" {
        return Json(Health {
            status: "warming".into(),
            pending: 0,
            running: 0,
            draining: false,
        })
        .into_response();
    }
    let mut response = ApiError::new(
        StatusCode::SERVICE_UNAVAILABLE,
        "the server is starting: it is compiling its actions (GET /healthz says `warming` \
         until it serves)",
    )
    .into_response();
    response.headers_mut().insert(
        header::RETRY_AFTER,
        header::HeaderValue::from_static(RETRY_AFTER_SECONDS),
    );
    response
}
