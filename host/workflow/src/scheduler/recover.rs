//! After a restart: what the journal says was running is settled from
//! its record, resumed (a nested workflow) or started again.

use super::decide::failure;
use super::driver::{Done, Driver};
use crate::definition::ActionRef;
use crate::WorkflowError;
use serde_json::Value;
use std::time::Instant;
use wasmflow_store::{code, ExecutionId, ExecutionRecord, Failure, Kind, Lineage, Outcome, Status};

impl Driver {
    /// After a restart: settle attempts whose action finished before the
    /// host stopped, resume nested workflows, start the rest again.
    pub(super) async fn recover(&mut self) -> Result<(), WorkflowError> {
        let store = self.sched.runtime().store().clone();
        let mut restart = Vec::new();
        for (run, r) in self.state.runs.iter().enumerate() {
            for (slot, s) in r.slots().iter().enumerate() {
                if s.is_running() {
                    restart.push((
                        run,
                        slot,
                        s.child.expect("running slots have a child"),
                        s.input.clone(),
                    ));
                }
            }
        }
        for (run, slot, child, input) in restart {
            let rec = store.get(child)?;
            match rec {
                Some(rec) if rec.is_finished() => {
                    self.settle(Done::recorded(run, slot, &rec))?;
                }
                // Still waiting for its answer: it stays open.
                Some(rec) if crate::inquiry::is_open(&rec) => {}
                Some(rec) if rec.kind == Kind::Workflow => self.resume_nested(run, slot, child),
                // Queued for any worker and still there: it runs (or is
                // taken over) wherever it is, so the workflow waits for it,
                // whoever resumes it (a worker, or `wasmflow resume`):
                // starting it here too would run it twice.
                Some(_) if self.queued(child) => self.attach(run, slot, child),
                other => {
                    // The action was running when the host stopped: its
                    // record says so (made from the journal when the task
                    // had not written one yet), and the task starts again.
                    let input = input.unwrap_or(Value::Null);
                    let mut rec = match other {
                        Some(rec) => rec,
                        None => self.lost_attempt(run, slot, child, input.clone()).await,
                    };
                    let replacement = "interrupted: the host stopped while it ran; the workflow started the task again";
                    rec.fail(Status::Failed, Failure::new(code::INTERRUPTED, replacement));
                    store.put_unflushed(&rec)?;
                    self.start_slot(run, slot, Some(input))?;
                }
            }
        }
        Ok(())
    }

    /// Resume nested workflow `child` (interrupted, or paused on its
    /// inquiries) as the job of `run`'s `slot`.
    pub(super) fn resume_nested(&mut self, run: usize, slot: usize, child: ExecutionId) {
        let sched = self.sched.clone();
        let cancel = self.req.cancel.child_token();
        let observer = self.req.observer.clone();
        self.follow(run, slot, child, async move {
            match Box::pin(sched.resume_boxed(child, cancel, observer)).await {
                Ok(rec) => rec.outcome(),
                Err(e) => Outcome::failed(failure(code::RESUME, &e.to_string())),
            }
        });
    }

    /// As the job of `run`'s `slot`: `child`'s end, as `outcome` says.
    fn follow(
        &mut self,
        run: usize,
        slot: usize,
        child: ExecutionId,
        outcome: impl std::future::Future<Output = Outcome> + Send + 'static,
    ) {
        self.jobs.spawn(async move {
            let started = Instant::now();
            let outcome = outcome.await;
            Done {
                run,
                slot,
                child: Some(child),
                outcome,
                elapsed: started.elapsed(),
            }
        });
    }

    /// Whether `child` has an entry in a shared store's queue.
    fn queued(&self, child: ExecutionId) -> bool {
        let store = self.sched.runtime().store();
        store.shared_queue().is_some_and(|q| {
            q.holds(child).unwrap_or_else(|e| {
                // Not known to be queued: started again, as after a crash.
                tracing::warn!("asking whether task execution {child} is queued: {e}");
                false
            })
        })
    }

    /// Wait, as the job of `run`'s `slot`, for task execution `child`,
    /// queued by an earlier holder of this workflow.
    fn attach(&mut self, run: usize, slot: usize, child: ExecutionId) {
        let store = self.sched.runtime().store().clone();
        let cancel = self.req.cancel.child_token();
        self.follow(run, slot, child, async move {
            match super::remote::wait(&store, child, &cancel).await {
                Ok(rec) => rec.outcome(),
                Err(e) => Outcome::failed(failure(code::ACTION, &e)),
            }
        });
    }

    /// The record of an attempt that was dispatched (the journal says so)
    /// but had not written its own record when the host stopped.
    async fn lost_attempt(
        &self,
        run: usize,
        slot: usize,
        child: ExecutionId,
        input: Value,
    ) -> ExecutionRecord {
        let r = &self.state.runs[run];
        let task = self.task(&r.name);
        let loaded = match self.def.action_ref(task) {
            Ok(a @ (ActionRef::Component(_) | ActionRef::Oci(_))) => self.sched.load(&a).await.ok(),
            _ => None,
        };
        let (action, digest) = match loaded {
            Some(a) => (a.reference.clone(), a.digest.to_string()),
            None => (task.action.clone(), String::new()),
        };
        let mut rec = ExecutionRecord::new_action(action, digest, input);
        let task_name = match &r.items {
            Some(_) => format!("{}[{slot}]", r.name),
            None => r.name.clone(),
        };
        Lineage::child_of(&self.record, child, task_name).apply(&mut rec);
        rec.grants = self
            .task_grants(task, r.items.as_ref().map(|i| &i[slot]))
            .unwrap_or_default();
        rec.limits = self.req.limits;
        rec.attempt = r.slots()[slot].attempt.max(1);
        rec.status = Status::Running;
        rec
    }
}
