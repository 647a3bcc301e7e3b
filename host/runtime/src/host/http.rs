//! `wasi:http` requests as questions: the send hook checks the net grants,
//! records the response (its body as a blob) live, and answers from the
//! tape in replay, so a replay sends nothing.

use crate::http_replay;
use crate::net::NetPolicy;
use std::future::Future;
use wasmflow_store::{Event, HttpOutcome, LogLevel, Question};
use wasmtime_wasi_http::WasiHttpHooks;

impl WasiHttpHooks for NetPolicy {
    fn send_request(
        &mut self,
        request: ::http::Request<wasmtime_wasi_http::WasiBody>,
        options: Option<wasmtime_wasi_http::RequestOptions>,
        fut: Box<dyn Future<Output = Result<(), wasmtime_wasi_http::Error>> + Send>,
    ) -> Box<
        dyn Future<
                Output = wasmtime_wasi_http::Result<(
                    ::http::Response<wasmtime_wasi_http::WasiBody>,
                    Box<dyn Future<Output = Result<(), wasmtime_wasi_http::Error>> + Send>,
                )>,
            > + Send,
    > {
        _ = fut;
        let method = request.method().to_string();
        let url = request.uri().to_string();
        let question = Question::Http {
            method: method.clone(),
            url: url.clone(),
        };
        let answer = self.world.recorded(&question, |e| match e {
            Event::Http { outcome, .. } => Some(outcome),
            _ => None,
        });
        match answer {
            Ok(None) => {}
            Ok(Some(outcome)) => {
                let world = self.world.clone();
                return Box::new(async move { http_replay::response(outcome, &world) });
            }
            Err(e) => {
                return Box::new(async move {
                    Err(wasmtime_wasi_http::Error::InternalError(Some(
                        e.to_string(),
                    )))
                })
            }
        }
        let uri = request.uri();
        let host = uri.host().unwrap_or_default().to_owned();
        let port = uri
            .port_u16()
            .unwrap_or(if uri.scheme_str() == Some("https") {
                443
            } else {
                80
            });
        if !self.allows_host(&host, port) {
            self.log_book.deny(
                "net",
                &format!("{method} {url}"),
                &format!("not granted; use --allow-net {host}:{port}"),
            );
            self.world.record(Event::Http {
                method,
                url,
                outcome: HttpOutcome::Error(http_replay::DENIED.into()),
            });
            return Box::new(async { Err(wasmtime_wasi_http::Error::HttpRequestDenied) });
        }
        let world = self.world.clone();
        let log_book = self.log_book.clone();
        let limit = self.body_limit;
        Box::new(async move {
            let result = http_replay::send_buffered(request, options, limit).await;
            if let Err(wasmtime_wasi_http::Error::HttpResponseBodySize(_)) = &result {
                // The guest sees only an error code (often shown as a bare
                // network error): say which limit it met.
                log_book.note(
                    LogLevel::Warn,
                    format!(
                        "http: the response body of {method} {url} is over the limit of {} MiB \
                         (16 MiB, or --max-output if larger); the request failed",
                        limit >> 20
                    ),
                );
            }
            if let Some(store) = world.recording_store() {
                let outcome = match &result {
                    Ok((parts, body)) => HttpOutcome::Response {
                        status: parts.status.as_u16(),
                        headers: parts
                            .headers
                            .iter()
                            .map(|(k, v)| {
                                (
                                    k.to_string(),
                                    String::from_utf8_lossy(v.as_bytes()).into_owned(),
                                )
                            })
                            .collect(),
                        body: world.put_payload(&store, body),
                    },
                    Err(e) => HttpOutcome::Error(http_replay::error_name(e)),
                };
                world.record(Event::Http {
                    method,
                    url,
                    outcome,
                });
            }
            let (parts, body) = result?;
            Ok(http_replay::rebuild(parts, body))
        })
    }
}
