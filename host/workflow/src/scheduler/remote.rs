//! A task's attempt run by whichever worker claims it: on a store many
//! processes share, a scheduler made with [`Scheduler::queuing_tasks`]
//! writes the attempt's pending record as a queue entry of its own and
//! waits for its record to end, so a fan-out spreads over every worker.
//!
//! The workflow stays with the one process that holds its own entry: its
//! transitions are decided and journaled there alone, so tasks ending at
//! once on different workers never race on them. What runs the task
//! (claim, lease, takeover after a lost worker, cancel) is the queue's and
//! the worker's, as for any queued action.

use super::decide::failure;
use super::Scheduler;
use std::time::Duration;
use tokio_util::sync::CancellationToken;
use wasmflow_runtime::{Action, RunOptions};
use wasmflow_store::{code, ExecutionId, ExecutionRecord, Failure, Outcome, Status, Store};

/// How often a waiting workflow reads its task's record even unwoken: the
/// end of a task canceled or purged out of the queue notifies nobody.
const RECHECK: Duration = Duration::from_secs(2);

const NOT_SHARED: &str =
    "tasks are queued only on a shared store, under the id their workflow gave";

/// Queue an attempt of `action` with `input` under `options` (its id is
/// `options.lineage.id`), and wait for it to end. Checked here first, as
/// a run in this process would be: bad input fails the attempt without a
/// record.
pub(super) async fn run(
    sched: &Scheduler,
    action: &Action,
    mut input: serde_json::Value,
    options: RunOptions,
) -> (Option<ExecutionId>, Outcome) {
    let rt = sched.runtime();
    if let Err(e) = action.check_input(&input) {
        return (
            None,
            Outcome::failed(failure(code::INVALID_INPUT, &e.to_string())),
        );
    }
    let (Some(queue), Some(id)) = (rt.store().shared_queue(), options.lineage.id) else {
        return (None, Outcome::failed(failure(code::ACTION, NOT_SHARED)));
    };
    // Watching before it is queued: its end cannot come first.
    let watch = queue.endings().watch(id);
    let queued = (|| {
        rt.seal_input(action, &mut input)
            .map_err(|e| e.to_string())?;
        let mut record =
            ExecutionRecord::new_action(action.reference.clone(), action.digest.to_string(), input);
        options.lineage.clone().apply(&mut record);
        record.grants = options.grants.clone();
        rt.seal(&mut record.grants).map_err(|e| e.to_string())?;
        record.limits = options.limits;
        record.attempt = options.attempt.max(1);
        // Whoever claims it loads the component from the store.
        rt.keep_component(action).map_err(|e| e.to_string())?;
        rt.store()
            .enqueue(&record, b"{}")
            .map_err(|e| e.to_string())?;
        Ok::<_, String>(())
    })();
    if let Err(e) = queued {
        return (None, Outcome::failed(failure(code::ACTION, &e)));
    }
    let cancel = options.cancel.unwrap_or_default();
    match waiting(rt.store(), id, &cancel, watch, false).await {
        Ok(record) => (Some(id), record.outcome()),
        Err(e) => (Some(id), Outcome::failed(failure(code::ACTION, &e))),
    }
}

/// Wait until queued execution `id` has ended, and return its record.
/// `cancel` asks whoever holds it to stop (one still waiting leaves the
/// queue and is recorded canceled here).
pub(super) async fn wait(
    store: &Store,
    id: ExecutionId,
    cancel: &CancellationToken,
) -> Result<ExecutionRecord, String> {
    let queue = store.shared_queue().ok_or(NOT_SHARED)?;
    waiting(store, id, cancel, queue.endings().watch(id), true).await
}

/// [`wait`] with `watch` on `id` already set up; `look` first, or only
/// once woken (it was queued just now).
async fn waiting(
    store: &Store,
    id: ExecutionId,
    cancel: &CancellationToken,
    watch: wasmflow_store::Watch,
    mut look: bool,
) -> Result<ExecutionRecord, String> {
    let queue = store.shared_queue().ok_or(NOT_SHARED)?;
    let mut asked = false;
    loop {
        if look {
            match store.get(id) {
                Ok(Some(r)) if r.is_finished() => return Ok(r),
                Ok(Some(_)) => {}
                Ok(None) => return Err(format!("the record of task execution {id} is gone")),
                Err(e) => tracing::warn!("reading task execution {id}: {e}"),
            }
        }
        look = true;
        tokio::select! {
            () = watch.woken() => {}
            () = tokio::time::sleep(RECHECK) => {}
            () = cancel.cancelled(), if !asked => {
                asked = true;
                if queue.cancel(id).map_err(|e| e.to_string())? == wasmflow_store::Cancel::Withdrawn {
                    return withdrawn(store, id);
                }
            }
        }
    }
}

/// Task execution `id` left the queue before any worker took it: its
/// record says it was canceled.
fn withdrawn(store: &Store, id: ExecutionId) -> Result<ExecutionRecord, String> {
    let mut r = store
        .get(id)
        .map_err(|e| e.to_string())?
        .ok_or_else(|| format!("the record of task execution {id} is gone"))?;
    r.fail(
        Status::Canceled,
        Failure::new(code::CANCELED, "canceled before a worker took it"),
    );
    store.put(&r).map_err(|e| e.to_string())?;
    Ok(r)
}
