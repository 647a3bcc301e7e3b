//! Captured stdout/stderr with a hard size limit.
//!
//! Unlike wasmtime-wasi's `MemoryOutputPipe`, going over the limit traps the
//! guest with a message that names the limit, so an action that prints
//! gigabytes fails its own execution clearly instead of looping on a closed
//! stream.

use bytes::{Bytes, BytesMut};
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use wasmtime_wasi::cli::{IsTerminal, StdoutStream};
use wasmtime_wasi::p2::{OutputStream, Pollable, StreamError};

#[derive(Clone)]
pub(crate) struct CapturedOutput {
    name: &'static str,
    limit: usize,
    buffer: Arc<Mutex<BytesMut>>,
    exceeded: Arc<AtomicBool>,
}

/// The message of the trap raised when a stream goes over its limit.
#[derive(Debug, thiserror::Error)]
#[error("{stream} exceeded the output limit of {limit} bytes")]
pub(crate) struct OutputLimitExceeded {
    pub stream: &'static str,
    pub limit: usize,
}

impl CapturedOutput {
    pub fn new(name: &'static str, limit: usize) -> Self {
        Self {
            name,
            limit,
            buffer: Arc::default(),
            exceeded: Arc::default(),
        }
    }

    pub fn contents(&self) -> Bytes {
        self.buffer.lock().unwrap().clone().freeze()
    }

    pub fn exceeded(&self) -> bool {
        self.exceeded.load(Ordering::Relaxed)
    }

    pub fn limit_message(&self) -> String {
        OutputLimitExceeded {
            stream: self.name,
            limit: self.limit,
        }
        .to_string()
    }

    fn over_limit(&self) -> StreamError {
        self.exceeded.store(true, Ordering::Relaxed);
        StreamError::Trap(wasmtime::Error::new(OutputLimitExceeded {
            stream: self.name,
            limit: self.limit,
        }))
    }
}

#[wasmtime_wasi::async_trait]
impl OutputStream for CapturedOutput {
    fn write(&mut self, bytes: Bytes) -> Result<(), StreamError> {
        let mut buf = self.buffer.lock().unwrap();
        if bytes.len() > self.limit - buf.len() {
            let room = self.limit - buf.len();
            buf.extend_from_slice(&bytes[..room]);
            drop(buf);
            return Err(self.over_limit());
        }
        buf.extend_from_slice(&bytes);
        Ok(())
    }

    fn flush(&mut self) -> Result<(), StreamError> {
        Ok(())
    }

    fn check_write(&mut self) -> Result<usize, StreamError> {
        let used = self.buffer.lock().unwrap().len();
        if used >= self.limit {
            return Err(self.over_limit());
        }
        Ok(self.limit - used)
    }
}

#[wasmtime_wasi::async_trait]
impl Pollable for CapturedOutput {
    async fn ready(&mut self) {}
}

impl tokio::io::AsyncWrite for CapturedOutput {
    fn poll_write(
        self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        let mut buffer = self.buffer.lock().unwrap();
        if buffer.len() + buf.len() > self.limit {
            drop(buffer);
            self.exceeded.store(true, Ordering::Relaxed);
            return Poll::Ready(Err(std::io::Error::other(OutputLimitExceeded {
                stream: self.name,
                limit: self.limit,
            })));
        }
        buffer.extend_from_slice(buf);
        Poll::Ready(Ok(buf.len()))
    }

    fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}

impl IsTerminal for CapturedOutput {
    fn is_terminal(&self) -> bool {
        false
    }
}

impl StdoutStream for CapturedOutput {
    fn p2_stream(&self) -> Box<dyn OutputStream> {
        Box::new(self.clone())
    }

    fn async_stream(&self) -> Box<dyn tokio::io::AsyncWrite + Send + Sync> {
        Box::new(self.clone())
    }
}
