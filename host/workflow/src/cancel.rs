//! Canceling and pausing a workflow execution, from any process that
//! shares its home.
//!
//! Only one process opens a store, so `wasmflow execution cancel` (or
//! `pause`) cannot reach into the process running the execution: it
//! leaves a request file named by the id (or an id prefix) in
//! `HOME/cancel` (or `HOME/pause`), which the running process polls for
//! ([`Requests::watch`]). When nothing runs the execution (the store
//! opens), it is settled in the store directly: [`cancel_tree`] so
//! `resume` leaves it alone, [`pause_stopped`] so it waits for
//! `execution resume`.
//!
//! What it must not touch: the scheduler's state; it only cancels the
//! token the scheduler was given (or appends `Pause` to a journal nothing
//! is writing).

use std::path::PathBuf;
use std::time::Duration;
use tokio_util::sync::CancellationToken;
use wasmflow_store::{code, ExecutionId, ExecutionRecord, Failure, Status, Store, StoreError};

/// How often a running process looks for a request.
const POLL: Duration = Duration::from_millis(200);

/// The cancel (or pause) requests of one home.
#[derive(Clone, Debug)]
pub struct Requests {
    dir: PathBuf,
}

impl Requests {
    /// The cancel requests under `home` (`WASMFLOW_HOME`).
    pub fn cancels(home: &std::path::Path) -> Self {
        Self {
            dir: home.join("cancel"),
        }
    }

    /// The pause requests under `home`.
    pub fn pauses(home: &std::path::Path) -> Self {
        Self {
            dir: home.join("pause"),
        }
    }

    /// Ask the process running `id` (an id or a prefix of one) to cancel
    /// (pause) it.
    pub fn request(&self, id: &str) -> std::io::Result<()> {
        std::fs::create_dir_all(&self.dir)?;
        std::fs::write(self.dir.join(id.to_ascii_uppercase()), b"")
    }

    /// Cancel `token` when a request for `id` appears (the request is
    /// consumed): what the token stands for (a cancel, a pause) happens. Runs on the current tokio runtime until then.
    pub fn watch(&self, id: ExecutionId, token: CancellationToken) {
        let dir = self.dir.clone();
        tokio::spawn(async move {
            let me = id.to_string();
            loop {
                tokio::time::sleep(POLL).await;
                if token.is_cancelled() {
                    return;
                }
                let Ok(entries) = std::fs::read_dir(&dir) else {
                    continue;
                };
                for e in entries.flatten() {
                    let name = e.file_name().to_string_lossy().to_ascii_uppercase();
                    if !name.is_empty() && me.starts_with(&name) {
                        let _ = std::fs::remove_file(e.path());
                        token.cancel();
                        return;
                    }
                }
            }
        });
    }
}

/// Record `record` and its unfinished descendants as canceled (nothing
/// runs them: an interrupted execution). Returns how many.
pub fn cancel_tree(store: &Store, mut record: ExecutionRecord) -> Result<usize, StoreError> {
    let mut n = 0;
    for c in store.children(record.id)? {
        if !c.is_finished() {
            n += cancel_tree(store, c)?;
        }
    }
    record.fail(
        Status::Canceled,
        Failure::new(code::CANCELED, "canceled with `wasmflow execution cancel`"),
    );
    store.put(&record)?;
    Ok(n + 1)
}

/// Pause a workflow execution nothing runs (interrupted while running):
/// `Pause` in its journal and `paused` in its record, so `resume` leaves
/// it for `execution resume`.
pub fn pause_stopped(store: &Store, mut record: ExecutionRecord) -> Result<(), StoreError> {
    let seq = store.workflow_log(record.id)?.len() as u32;
    let entry = serde_json::to_vec(&crate::journal::Entry::Pause).expect("entries serialize");
    store.append_workflow_log(record.id, seq, &[entry], true)?;
    record.status = Status::Paused;
    store.put(&record)
}
