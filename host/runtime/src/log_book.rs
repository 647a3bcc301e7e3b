//! The log lines one execution leaves behind: the guest's `log` calls,
//! denials and the host's notes, under the guest's log budget. A leaf,
//! shared by the sandbox, its set-up and the hooks that run outside the
//! store.

use std::sync::{Arc, Mutex};
use std::time::Instant;
use wasmflow_store::{LogLevel, LogLine, Progress};

/// Something that wants an execution's log lines as they happen.
#[derive(Clone)]
pub struct LogWatcher(pub Arc<dyn Fn(&LogLine) + Send + Sync>);

impl std::fmt::Debug for LogWatcher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("LogWatcher")
    }
}

/// The log lines one execution's host calls leave behind (the guest's
/// `log` calls, denials, notes), shared with the hooks that run outside
/// the store (socket checks, HTTP sends). Not `workflow::journal`, which
/// holds a workflow's transitions.
#[derive(Default)]
pub(crate) struct LogBook {
    pub logs: Vec<LogLine>,
    pub log_bytes: usize,
}

#[derive(Clone)]
pub(crate) struct SharedLogBook {
    inner: Arc<Mutex<LogBook>>,
    started: Instant,
    log_limit: usize,
    watcher: Option<LogWatcher>,
}

/// A guest that logs past its budget is stopped: unbounded logging is as
/// hostile as unbounded printing.
#[derive(Debug, thiserror::Error)]
#[error("log exceeded the limit of {limit} bytes")]
pub(crate) struct LogLimitExceeded {
    pub limit: usize,
}

impl SharedLogBook {
    pub fn new(log_limit: usize, watcher: Option<LogWatcher>) -> Self {
        Self {
            inner: Arc::default(),
            started: Instant::now(),
            log_limit,
            watcher,
        }
    }

    fn line(&self, level: LogLevel, message: String, progress: Option<Progress>) -> LogLine {
        LogLine {
            at_ms: self.started.elapsed().as_millis() as u64,
            level,
            message,
            progress,
        }
    }

    fn append(&self, log_book: &mut LogBook, line: LogLine) {
        if let Some(w) = &self.watcher {
            (w.0)(&line);
        }
        log_book.logs.push(line);
    }

    pub fn push(
        &self,
        level: LogLevel,
        message: String,
        progress: Option<Progress>,
    ) -> Result<(), LogLimitExceeded> {
        let mut j = self.inner.lock().unwrap();
        j.log_bytes += message.len();
        if j.log_bytes > self.log_limit {
            return Err(LogLimitExceeded {
                limit: self.log_limit,
            });
        }
        let line = self.line(level, message, progress);
        self.append(&mut j, line);
        Ok(())
    }

    /// Denials are always written, even past the log budget: the record
    /// must say what was refused.
    pub fn deny(&self, capability: &str, target: &str, hint: &str) {
        self.note(
            LogLevel::Warn,
            format!("denied: {capability} {target} ({hint})"),
        );
    }

    /// A line from the host about the execution (not counted against the
    /// guest's log budget).
    pub fn note(&self, level: LogLevel, message: String) {
        let line = self.line(level, message, None);
        self.append(&mut self.inner.lock().unwrap(), line);
    }

    pub fn take(&self) -> Vec<LogLine> {
        std::mem::take(&mut self.inner.lock().unwrap().logs)
    }
}
