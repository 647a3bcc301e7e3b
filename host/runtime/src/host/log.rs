//! `wasmflow:action/log`: the guest's log lines and progress, under its
//! log budget.

use crate::bindings::wasmflow::action::{log, types};
use crate::sandbox::Sandbox;
use wasmflow_store::{LogLevel, Progress};

impl types::Host for Sandbox {}

impl log::Host for Sandbox {
    fn write(&mut self, level: log::Level, message: String) -> wasmtime::Result<()> {
        let level = match level {
            log::Level::Trace => LogLevel::Trace,
            log::Level::Debug => LogLevel::Debug,
            log::Level::Info => LogLevel::Info,
            log::Level::Warn => LogLevel::Warn,
            log::Level::Error => LogLevel::Error,
        };
        self.log_book
            .push(level, message, None)
            .map_err(wasmtime::Error::new)
    }

    fn progress(&mut self, done: u64, total: u64, message: String) -> wasmtime::Result<()> {
        self.log_book
            .push(LogLevel::Info, message, Some(Progress { done, total }))
            .map_err(wasmtime::Error::new)
    }
}
