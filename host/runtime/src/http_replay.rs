//! Outgoing HTTP, buffered so it can be recorded, and rebuilt from the
//! recording in replay.

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use wasmflow_store::HttpOutcome;
use wasmtime_wasi_http::{Error, RequestOptions, WasiBody};

use crate::world::World;

/// How a request refused by the grants is recorded.
pub(crate) const DENIED: &str = "HttpRequestDenied";

type Response = (
    http::Response<WasiBody>,
    Box<dyn std::future::Future<Output = Result<(), Error>> + Send>,
);

/// Send `request` and read the whole response body (up to `limit` bytes).
pub(crate) async fn send_buffered(
    request: http::Request<WasiBody>,
    options: Option<RequestOptions>,
    limit: usize,
) -> Result<(http::response::Parts, Bytes), Error> {
    let (response, io) = wasmtime_wasi_http::default_send_request(request, options).await?;
    // The connection is driven by `io`; run it while the body is read.
    let driver = tokio::spawn(io);
    let (parts, body) = response.into_parts();
    let collected = http_body_util::Limited::new(body, limit).collect().await;
    driver.abort();
    match collected {
        Ok(c) => Ok((parts, c.to_bytes())),
        Err(e) => match e.downcast::<Error>() {
            Ok(e) => Err(*e),
            Err(_) => Err(Error::HttpResponseBodySize(Some(limit as u64))),
        },
    }
}

/// A response with an already-read body, as wasi-http expects it.
pub(crate) fn rebuild(parts: http::response::Parts, body: Bytes) -> Response {
    let body = Full::new(body)
        .map_err(|never| match never {})
        .boxed_unsync();
    (
        http::Response::from_parts(parts, body),
        Box::new(async { Ok(()) }),
    )
}

/// The recorded answer to a request, as the guest got it live.
pub(crate) fn response(outcome: HttpOutcome, world: &World) -> Result<Response, Error> {
    match outcome {
        HttpOutcome::Response {
            status,
            headers,
            body,
        } => {
            let bytes = world.recorded_blob(&body).ok_or_else(|| {
                Error::InternalError(Some(format!("recorded body {body} is missing")))
            })?;
            let mut builder = http::Response::builder().status(status);
            for (k, v) in headers {
                builder = builder.header(k, v);
            }
            let response = builder
                .body(())
                .map_err(|e| Error::InternalError(Some(format!("recorded response: {e}"))))?;
            let (parts, ()) = response.into_parts();
            Ok(rebuild(parts, Bytes::from(bytes)))
        }
        HttpOutcome::Error(name) => Err(error_from_name(&name)),
    }
}

/// Errors are recorded by kind, so replay hands the guest the same kind.
pub(crate) fn error_name(e: &Error) -> String {
    match e {
        Error::HttpRequestDenied => DENIED.into(),
        Error::Connect(_) | Error::ConnectionRefused => "ConnectionRefused".into(),
        Error::ConnectionTimeout => "ConnectionTimeout".into(),
        Error::DnsTimeout => "DnsTimeout".into(),
        Error::HttpResponseBodySize(n) => format!("HttpResponseBodySize({})", n.unwrap_or(0)),
        other => format!("{other:?}"),
    }
}

fn error_from_name(name: &str) -> Error {
    match name {
        DENIED => Error::HttpRequestDenied,
        "ConnectionRefused" => Error::ConnectionRefused,
        "ConnectionTimeout" => Error::ConnectionTimeout,
        "DnsTimeout" => Error::DnsTimeout,
        other => Error::InternalError(Some(other.to_owned())),
    }
}
