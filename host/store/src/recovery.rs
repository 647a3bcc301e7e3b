//! What a stopped process left behind: action executions it was running.
//!
//! Only one process opens a sled store at a time, so an action execution
//! still `running` when the store is opened has no process left to finish
//! it. (A shared store needs leases instead: a backend that allows more
//! than one process must not call this on open.) Workflow tasks are settled by the workflow's resume (it starts them
//! again); executions in a server's queue by the server's next start.

use crate::error::StoreError;
use crate::failure::{code, Failure};
use crate::record::{ExecutionRecord, Kind, Status};
use crate::store::{ListFilter, Store};
use std::collections::HashSet;

impl Store {
    /// Record as `failed` with code `interrupted` every top-level action
    /// execution left `running` that no queue entry will start again.
    /// Returns how many were marked.
    pub fn mark_interrupted_actions(&self) -> Result<usize, StoreError> {
        let running = self.list(&ListFilter {
            status: Some(Status::Running),
            limit: usize::MAX,
            children: false,
            ..Default::default()
        })?;
        if running.is_empty() {
            return Ok(0);
        }
        let queued: HashSet<_> = self.queued()?.into_iter().map(|q| q.id).collect();
        let mut n = 0;
        for r in running {
            if r.kind == Kind::Action && !queued.contains(&r.id) {
                self.put(&interrupted(r))?;
                n += 1;
            }
        }
        Ok(n)
    }
}

fn interrupted(mut r: ExecutionRecord) -> ExecutionRecord {
    let message = format!(
        "the wasmflow process running it stopped (attempt {}); it was not finished",
        r.attempt
    );
    r.fail(Status::Failed, Failure::new(code::INTERRUPTED, message));
    r
}
