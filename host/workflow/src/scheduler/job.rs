//! Starting one attempt of a slot: its input and grants rendered, its
//! dispatch journaled, and the [`Job`] that runs it away from the driver.

use super::decide::{expression_failure, failure, retry_delay, task_delay, Seed};
use super::driver::{Done, Driver};
use super::{Observer, Request, Scheduler};
use crate::components::resolve_pack;
use crate::definition::{duration, ActionRef, Definition};
use crate::expr::Scope;
use crate::inquiry;
use crate::journal::{Entry, Slot};
use crate::model::Task;
use crate::WorkflowError;
use serde_json::Value;
use std::sync::Arc;
use std::time::Duration;
use wasmflow_runtime::{RunOptions, RuntimeError};
use wasmflow_store::{code, ExecutionId, Lineage, Outcome, Status};

impl Driver {
    /// Render a slot's input and grants and hand it to an action. `restart`
    /// is the input of an attempt that was running when the host stopped.
    /// The names a task's own expressions see (its input, its `delay`).
    fn task_scope<'a>(
        &'a self,
        task: &'a Task,
        item: Option<&'a Value>,
        tasks: Option<&'a serde_json::Map<String, Value>>,
    ) -> Scope<'a> {
        Scope {
            input: Some(&self.state.input),
            ctx: Some(&self.state.ctx),
            item,
            item_names: &task.item_names,
            tasks,
            ..Scope::default()
        }
    }

    /// Journal an attempt of `run`'s `slot` given `input`: its execution id.
    fn journal_attempt(
        &mut self,
        run: usize,
        slot: usize,
        attempt: u32,
        input: Value,
    ) -> Result<ExecutionId, WorkflowError> {
        let child = ExecutionId::new();
        let entry = Entry::Dispatch {
            run,
            slot,
            attempt,
            child,
            input,
        };
        self.write(&[entry], false)?;
        Ok(child)
    }

    pub(super) fn start_slot(
        &mut self,
        run: usize,
        slot: usize,
        restart: Option<Value>,
    ) -> Result<(), WorkflowError> {
        let r = &self.state.runs[run];
        let name = r.name.clone();
        let task = self.task(&name).clone();
        let item = r.items.as_ref().map(|items| items[slot].clone());
        let s: &Slot = &r.slots()[slot];
        let attempt = match (&restart, s.retry) {
            // Started again after the host stopped while it ran: a new
            // attempt, so the records show the work was started twice.
            (Some(_), _) => s.attempt + 1,
            (None, true) => s.attempt + 1,
            (None, false) => 1,
        };
        let input = match restart {
            Some(input) => input,
            None => {
                let tasks = self.task_statuses();
                let scope = Scope {
                    seed: Some(self.seed(run, slot, Seed::Input)),
                    ..self.task_scope(&task, item.as_ref(), tasks.as_ref())
                };
                let raw = Value::Object(
                    task.input
                        .iter()
                        .map(|(k, v)| (k.clone(), v.clone()))
                        .collect(),
                );
                match self.exprs().render(&raw, scope) {
                    Ok(v) => v,
                    Err(e) => {
                        let f = expression_failure(&format!("tasks.{name}.input"), &e);
                        return self.settle_now(run, slot, f);
                    }
                }
            }
        };
        // A rehearsal runs nothing: the task's mock (or success with
        // `null`) is its outcome, at once.
        if let Some(rehearsal) = self.req.rehearsal.clone() {
            // A run starts once in the sequence, whatever its retries.
            if slot == 0 && attempt == 1 {
                rehearsal.started(&name);
            }
            let (status, result, error) = rehearsal.outcome(&name, item.as_ref().map(|_| slot));
            // Journaled like a real attempt (its input, its number), so a
            // retry counts from it; no record is made for `child`.
            self.journal_attempt(run, slot, attempt, input)?;
            return self.settle(Done {
                run,
                slot,
                child: None,
                outcome: Outcome {
                    status,
                    result,
                    error,
                },
                elapsed: Duration::ZERO,
            });
        }
        let grants = match self
            .task_grants(&task, item.as_ref())
            .and_then(|g| crate::grants::with_referenced_keys(g, &input, &self.req.grants))
        {
            Ok(g) => g,
            Err(e) => {
                let f = failure(code::GRANT_DENIED, &format!("task `{name}` {e}"));
                return self.settle_now(run, slot, f);
            }
        };
        let mut limits = self.req.limits;
        if let Some(t) = &task.timeout {
            if let Ok(d) = duration(t) {
                limits.timeout_ms = d.as_millis() as u64;
            }
        }
        let delay = if attempt > 1 {
            retry_delay(&task, attempt)
        } else {
            let tasks = self.task_statuses();
            let scope = self.task_scope(&task, item.as_ref(), tasks.as_ref());
            match task_delay(self.exprs(), &task, scope) {
                Ok(d) => d,
                Err(e) => {
                    let f = expression_failure(&format!("tasks.{name}.delay"), &e);
                    return self.settle_now(run, slot, f);
                }
            }
        };
        // On disk before the action starts (see `launch`), with the entries
        // it depends on: after a crash the journal names every attempt
        // that may have run, so none is lost from the records.
        let child = self.journal_attempt(run, slot, attempt, input.clone())?;
        if inquiry::is_ask(&task.action) {
            return self.ask(run, slot, child, item.is_some(), input);
        }
        let (action, named) = match self.def.action_ref(&task).and_then(|a| match a {
            ActionRef::Pack(name) => {
                resolve_pack(&*self.sched.inner.components, &name, &self.def.dir)
                    .map(|(a, named)| (a, Some(named)))
            }
            other => Ok((other, None)),
        }) {
            Ok(a) => a,
            Err(e) => {
                return self.settle_now(run, slot, failure(code::ACTION, &e));
            }
        };
        if let Some(o) = &self.req.observer {
            o.task_started(&self.name(), &name, item.as_ref().map(|_| slot));
        }
        let job = Job {
            sched: self.sched.clone(),
            action,
            named,
            input,
            options: RunOptions {
                grants,
                limits,
                lineage: Lineage::child_of(
                    &self.record,
                    child,
                    match &item {
                        Some(_) => format!("{name}[{slot}]"),
                        None => name,
                    },
                ),
                cancel: Some(self.req.cancel.child_token()),
                // Flushed with the journal entry that settles it, before
                // the scheduler dispatches or waits again: one fsync per
                // step, not two. A crash before that flush runs the task
                // again, as one during the task would.
                defer_flush: true,
                attempt,
                ..RunOptions::default()
            },
            observer: self.req.observer.clone(),
            delay,
        };
        self.ready.push((run, slot, job));
        Ok(())
    }
}

impl Driver {
    /// A `core.ask` slot: its inquiry's record, open, and no job: the
    /// slot stays running until the inquiry is answered or expires
    /// (`answered`).
    fn ask(
        &mut self,
        run: usize,
        slot: usize,
        child: ExecutionId,
        over_items: bool,
        question: Value,
    ) -> Result<(), WorkflowError> {
        let name = self.state.runs[run].name.clone();
        if let Err(e) = inquiry::check_question(&question) {
            let f = failure(code::INQUIRY, &format!("tasks.{name}.input: {e}"));
            return self.settle_now(run, slot, f);
        }
        let task = match over_items {
            true => format!("{name}[{slot}]"),
            false => name.clone(),
        };
        let record = inquiry::open(&self.record, child, task, question);
        // Flushed, with the Dispatch before it: after a crash the journal
        // and the inquiry agree.
        self.sched.runtime().store().put(&record)?;
        self.unflushed = false;
        if let Some(o) = &self.req.observer {
            o.task_started(&self.name(), &name, over_items.then_some(slot));
        }
        Ok(())
    }
}

/// One attempt of one slot, away from the driver.
pub(super) struct Job {
    sched: Scheduler,
    action: ActionRef,
    /// How the task's record names what ran, when not by its file: a
    /// pack's `pack.item@version`.
    named: Option<String>,
    input: Value,
    options: RunOptions,
    observer: Option<Arc<dyn Observer>>,
    delay: Duration,
}

impl Job {
    pub(super) async fn run(self) -> (Option<ExecutionId>, Outcome) {
        let cancel = self.options.cancel.clone().unwrap_or_default();
        if !self.delay.is_zero() {
            tokio::select! {
                () = tokio::time::sleep(self.delay) => {}
                () = cancel.cancelled() => {
                    let why = failure(code::CANCELED, "canceled while waiting to start (delay or retry delay)");
                    return (None, Outcome::stopped(Status::Canceled, why));
                }
            }
        }
        let child = self.options.lineage.id;
        match &self.action {
            // Resolved to a component or workflow before the job starts.
            // (`core.ask` never becomes a job: see `ask`.)
            ActionRef::Component(_) | ActionRef::Oci(_) | ActionRef::Pack(_) | ActionRef::Ask => {
                let mut action = match self.sched.load(&self.action).await {
                    Ok(a) => a,
                    Err(e) => return (None, Outcome::failed(failure(code::ACTION, &e))),
                };
                if let Some(name) = self.named {
                    action.reference = name;
                }
                if self.sched.queues_tasks() {
                    return super::remote::run(&self.sched, &action, self.input, self.options)
                        .await;
                }
                match self
                    .sched
                    .runtime()
                    .run(&action, self.input, self.options)
                    .await
                {
                    Ok(rec) => (child, rec.outcome()),
                    Err(RuntimeError::Input(e)) => (
                        None,
                        Outcome::failed(failure(code::INVALID_INPUT, &e.to_string())),
                    ),
                    Err(e) => (None, Outcome::failed(failure(code::ACTION, &e.to_string()))),
                }
            }
            ActionRef::Workflow(path) => {
                let def = match Definition::load(path) {
                    Ok(d) => Arc::new(d),
                    Err(p) => {
                        return (
                            None,
                            Outcome::failed(failure(code::WORKFLOW, &p.to_string())),
                        )
                    }
                };
                let o = self.options;
                let req = Request {
                    grants: o.grants,
                    limits: o.limits,
                    lineage: o.lineage,
                    cancel,
                    observer: self.observer,
                    name: self.named,
                    ..Request::new(def, self.input)
                };
                match self.sched.run_boxed(req).await {
                    Ok(rec) => (child, rec.outcome()),
                    Err(WorkflowError::Input(e)) => {
                        (None, Outcome::failed(failure(code::INVALID_INPUT, &e)))
                    }
                    Err(e) => (
                        None,
                        Outcome::failed(failure(code::WORKFLOW, &e.to_string())),
                    ),
                }
            }
        }
    }
}
