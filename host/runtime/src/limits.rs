//! The memory budget of one execution, and how limits are named in
//! messages.

use std::time::Duration;
use wasmtime::ResourceLimiter;

/// `30s`, or `300ms` when not whole seconds: how limits are named in
/// messages.
pub(crate) fn humanize(d: Duration) -> String {
    if d.as_millis().is_multiple_of(1000) {
        format!("{}s", d.as_secs())
    } else {
        format!("{}ms", d.as_millis())
    }
}

/// Caps the linear memory of all of a component's memories together.
///
/// Growing past the budget traps (rather than making `memory.grow` return
/// -1), so a memory bomb always ends its execution with a clear reason even
/// when the guest's allocator would have swallowed the failure.
pub(crate) struct MemoryBudget {
    limit: usize,
    used: usize,
    pub exceeded: bool,
}

#[derive(Debug, thiserror::Error)]
#[error("memory limit of {limit} bytes exceeded (the guest asked for {wanted} bytes)")]
pub(crate) struct MemoryLimitExceeded {
    pub limit: usize,
    pub wanted: usize,
}

/// A table past [`MAX_TABLE_ELEMENTS`], declared or grown: like memory,
/// it ends the execution (code `memory-limit`) rather than failing
/// quietly or as a host error.
#[derive(Debug, thiserror::Error)]
#[error("table limit of {limit} elements exceeded (the guest asked for {wanted})")]
pub(crate) struct TableLimitExceeded {
    pub limit: usize,
    pub wanted: usize,
}

/// Tables hold function references, not data; this is only a backstop.
const MAX_TABLE_ELEMENTS: usize = 1 << 20;

impl MemoryBudget {
    pub fn new(limit: u64) -> Self {
        Self {
            limit: usize::try_from(limit).unwrap_or(usize::MAX),
            used: 0,
            exceeded: false,
        }
    }
}

impl ResourceLimiter for MemoryBudget {
    fn memory_growing(
        &mut self,
        current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        let wanted = self.used + desired.saturating_sub(current);
        if wanted > self.limit {
            self.exceeded = true;
            return Err(wasmtime::Error::new(MemoryLimitExceeded {
                limit: self.limit,
                wanted,
            }));
        }
        self.used = wanted;
        Ok(true)
    }

    fn table_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        if desired > MAX_TABLE_ELEMENTS {
            return Err(wasmtime::Error::new(TableLimitExceeded {
                limit: MAX_TABLE_ELEMENTS,
                wanted: desired,
            }));
        }
        Ok(true)
    }
}
