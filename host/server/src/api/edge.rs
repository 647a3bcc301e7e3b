//! The API's edges: a request body read under its size limit and with
//! its JSON errors named ([`Body`]), and every failure turned into a
//! status code with `{"error": "..."}` ([`ApiError`]).

use crate::queue::AcceptError;
use crate::wire::ErrorBody;
use axum::extract::Request;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Deserialize;
use serde_json::Value;

/// An error answer.
#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub message: String,
}

impl ApiError {
    pub fn new(status: StatusCode, message: impl Into<String>) -> Self {
        Self {
            status,
            message: message.into(),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut r = (
            self.status,
            Json(ErrorBody {
                error: self.message,
            }),
        )
            .into_response();
        if self.status == StatusCode::UNAUTHORIZED {
            r.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                header::HeaderValue::from_static("Bearer"),
            );
        }
        r
    }
}

/// Run `f` (store or file work) off the async workers; its error becomes
/// the answer's.
pub async fn blocking<T, E>(
    f: impl FnOnce() -> Result<T, E> + Send + 'static,
) -> Result<T, ApiError>
where
    T: Send + 'static,
    E: Into<ApiError> + Send + 'static,
{
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?
        .map_err(Into::into)
}

impl From<wasmflow_workflow::inquiry::InquiryError> for ApiError {
    fn from(e: wasmflow_workflow::inquiry::InquiryError) -> Self {
        use wasmflow_workflow::inquiry::InquiryError as E;
        let status = match e {
            E::Store(e) => return e.into(),
            E::NotAnInquiry(_) => StatusCode::NOT_FOUND,
            E::NotPending { .. } | E::Expired(_) => StatusCode::CONFLICT,
            E::NotYours { .. } => StatusCode::FORBIDDEN,
            E::Invalid(_) | E::BadSchema(_) => StatusCode::UNPROCESSABLE_ENTITY,
        };
        Self::new(status, e.to_string())
    }
}

impl From<wasmflow_datastore::DatastoreError> for ApiError {
    fn from(e: wasmflow_datastore::DatastoreError) -> Self {
        use wasmflow_datastore::DatastoreError as E;
        match e {
            E::Store(e) => e.into(),
            // The server's secret key cannot open it: the operator's to fix.
            E::Undecryptable { .. } | E::Unsealable { .. } | E::SecretKey { .. } => {
                Self::new(StatusCode::CONFLICT, e.to_string())
            }
            E::BadName { .. } | E::BadLoad(_) => {
                Self::new(StatusCode::UNPROCESSABLE_ENTITY, e.to_string())
            }
        }
    }
}

impl From<wasmflow_store::StoreError> for ApiError {
    fn from(e: wasmflow_store::StoreError) -> Self {
        use wasmflow_store::StoreError as E;
        let status = match e {
            E::NotFound(_) => StatusCode::NOT_FOUND,
            E::Ambiguous { .. } => StatusCode::UNPROCESSABLE_ENTITY,
            _ => StatusCode::INTERNAL_SERVER_ERROR,
        };
        Self::new(status, e.to_string())
    }
}

impl From<AcceptError> for ApiError {
    fn from(e: AcceptError) -> Self {
        match e {
            AcceptError::Full(_) => Self::new(StatusCode::TOO_MANY_REQUESTS, e.to_string()),
            AcceptError::Store(e) => e.into(),
        }
    }
}

pub(super) type ApiResult<T> = Result<T, ApiError>;

/// axum's default request body limit (`DefaultBodyLimit`), which the API
/// keeps.
const BODY_LIMIT: usize = 2 << 20;

/// A JSON body whose rejection is one of ours (a JSON error body, 400 for
/// malformed JSON, 422 for the wrong shape) instead of axum's plain text.
pub struct Body<T>(pub T);

impl<S, T> axum::extract::FromRequest<S> for Body<T>
where
    T: serde::de::DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let bytes = axum::body::Bytes::from_request(req, state)
            .await
            .map_err(|e| {
                // A body over axum's limit is 413, not a malformed request.
                let status = e.status();
                let message = if status == StatusCode::PAYLOAD_TOO_LARGE {
                    format!(
                        "request body over the API's limit of {} MiB",
                        BODY_LIMIT >> 20
                    )
                } else {
                    e.body_text()
                };
                ApiError::new(status, message)
            })?;
        if bytes.is_empty() {
            return serde_json::from_slice(b"{}").map(Body).map_err(|e| {
                ApiError::new(
                    StatusCode::UNPROCESSABLE_ENTITY,
                    format!("request body: {e}"),
                )
            });
        }
        let mut de = serde_json::Deserializer::from_slice(&bytes);
        let value: Value = Value::deserialize(&mut de).map_err(|e| {
            ApiError::new(
                StatusCode::BAD_REQUEST,
                format!(
                    "request body is not JSON (line {} column {}): {e}",
                    e.line(),
                    e.column()
                ),
            )
        })?;
        serde_json::from_value(value).map(Body).map_err(|e| {
            ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                format!("request body: {e}"),
            )
        })
    }
}
