//! A TCP connection's input stream, recorded live and played back in
//! replay: each read the guest makes is one `TcpRead` event.

use super::codes::{error_code, error_name};
use crate::world::World;
use base64::Engine as _;
use bytes::Bytes;
use wasmflow_store::{Event, Question, ReadOutcome};
use wasmtime_wasi::p2::bindings::sockets::network::ErrorCode;
use wasmtime_wasi::p2::{DynInputStream, InputStream, Pollable, StreamError, StreamResult};

/// Reads up to this size are kept in the event itself; larger ones are
/// blobs, like HTTP bodies.
const INLINE_READ: usize = 4096;

/// A connection's input stream, live: reads pass through and are recorded.
pub(super) struct RecordedInput {
    pub inner: DynInputStream,
    pub world: World,
    pub connection: u32,
}

impl RecordedInput {
    fn record(&self, read: &StreamResult<Bytes>) {
        let Some(store) = self.world.recording_store() else {
            return;
        };
        let outcome = match read {
            Ok(b) if b.len() > INLINE_READ => {
                if !self.world.count_blob(b.len()) {
                    return;
                }
                ReadOutcome::Blob {
                    digest: self.world.put_payload(&store, b),
                }
            }
            Ok(b) => ReadOutcome::Data {
                bytes: base64::engine::general_purpose::STANDARD
                    .encode(self.world.masker().bytes(b)),
            },
            Err(StreamError::Closed) => ReadOutcome::Closed,
            Err(StreamError::LastOperationFailed(e)) => ReadOutcome::Failed(
                e.downcast_ref::<ErrorCode>()
                    .map(|c| error_name(*c).to_owned())
                    .unwrap_or_else(|| e.to_string()),
            ),
            // A trap ends the execution; there is nothing to answer later.
            Err(StreamError::Trap(_)) => return,
        };
        self.world.record(Event::TcpRead {
            connection: self.connection,
            outcome,
        });
    }
}

#[async_trait::async_trait]
impl Pollable for RecordedInput {
    async fn ready(&mut self) {
        self.inner.ready().await
    }
}

// Each call the guest makes is one event. `skip` reads, so that the bytes
// it passed over are recorded like any others; the blocking calls are
// recorded once, with what the guest finally got, not per wake-up.
#[async_trait::async_trait]
impl InputStream for RecordedInput {
    fn read(&mut self, size: usize) -> StreamResult<Bytes> {
        let r = self.inner.read(size);
        self.record(&r);
        r
    }

    async fn blocking_read(&mut self, size: usize) -> StreamResult<Bytes> {
        let r = self.inner.blocking_read(size).await;
        self.record(&r);
        r
    }

    fn skip(&mut self, size: usize) -> StreamResult<usize> {
        self.read(size).map(|b| b.len())
    }

    async fn blocking_skip(&mut self, size: usize) -> StreamResult<usize> {
        self.blocking_read(size).await.map(|b| b.len())
    }

    async fn cancel(&mut self) {
        self.inner.cancel().await
    }
}

/// A connection's input stream in replay: the recorded reads, in order.
pub(super) struct ReplayedInput {
    pub world: World,
    pub connection: u32,
}

impl ReplayedInput {
    fn next(&self, size: usize) -> StreamResult<Bytes> {
        let question = Question::TcpRead {
            connection: self.connection,
        };
        let recorded = self.world.recorded(&question, |e| match e {
            Event::TcpRead { outcome, .. } => Some(outcome),
            _ => None,
        });
        let outcome = match recorded {
            Ok(Some(outcome)) => outcome,
            Ok(None) => return Err(StreamError::Closed),
            Err(e) => return Err(StreamError::Trap(e)),
        };
        let bytes = match outcome {
            ReadOutcome::Data { bytes } => base64::engine::general_purpose::STANDARD
                .decode(bytes)
                .map_err(|e| StreamError::Trap(wasmtime::format_err!("recorded read: {e}")))?,
            ReadOutcome::Blob { digest } => self.world.recorded_blob(&digest).ok_or_else(|| {
                StreamError::Trap(wasmtime::format_err!("recorded read {digest} is missing"))
            })?,
            ReadOutcome::Closed => return Err(StreamError::Closed),
            ReadOutcome::Failed(e) => {
                return Err(StreamError::LastOperationFailed(match error_code(&e) {
                    Ok(code) => wasmtime::Error::new(code),
                    Err(_) => wasmtime::format_err!("{e}"),
                }))
            }
        };
        if bytes.len() > size {
            // The guest asked for less than it got live: another build.
            return Err(StreamError::Trap(wasmtime::format_err!(
                "replay: the guest read at most {size} bytes from TCP connection {}, \
                 the recorded read returned {}",
                self.connection,
                bytes.len()
            )));
        }
        Ok(bytes.into())
    }
}

#[async_trait::async_trait]
impl Pollable for ReplayedInput {
    async fn ready(&mut self) {}
}

#[async_trait::async_trait]
impl InputStream for ReplayedInput {
    fn read(&mut self, size: usize) -> StreamResult<Bytes> {
        self.next(size)
    }

    async fn blocking_read(&mut self, size: usize) -> StreamResult<Bytes> {
        self.next(size)
    }

    fn skip(&mut self, size: usize) -> StreamResult<usize> {
        self.next(size).map(|b| b.len())
    }

    async fn blocking_skip(&mut self, size: usize) -> StreamResult<usize> {
        self.next(size).map(|b| b.len())
    }
}
