//! The driver of one workflow execution: its event loop (complete what
//! settled, dispatch what may start, wait for an attempt or a cancel) and
//! every journal write. Decisions come from `decide`, attempts from `job`,
//! a restart's catching up from `recover`.

use super::decide::{self, expression_failure, failure, Seed};
use super::job::Job;
use super::{Request, Reuse, Scheduler};
use crate::definition::Definition;
use crate::expr::{Expressions, Scope};
use crate::inquiry;
use crate::journal::{Entry, State};
use crate::model::{Command, Task};
use crate::{grants, WorkflowError};
use serde_json::{json, Value};
use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::task::JoinSet;
use wasmflow_store::{code, ExecutionId, ExecutionRecord, Failure, Grants, Outcome, Status};

/// One attempt finished.
pub(super) struct Done {
    pub(super) run: usize,
    pub(super) slot: usize,
    pub(super) child: Option<ExecutionId>,
    pub(super) outcome: Outcome,
    pub(super) elapsed: Duration,
}

impl Done {
    /// Slot `slot` of run `run` ended as `rec`, its execution's record,
    /// says (found ended in the store: after a restart, or an inquiry).
    pub(super) fn recorded(run: usize, slot: usize, rec: &ExecutionRecord) -> Self {
        Done {
            run,
            slot,
            child: Some(rec.id),
            outcome: rec.outcome(),
            elapsed: rec.elapsed().unwrap_or_default(),
        }
    }
}

/// Drives one workflow execution.
pub(super) struct Driver {
    pub(super) sched: Scheduler,
    pub(super) def: Arc<Definition>,
    pub(super) record: ExecutionRecord,
    pub(super) req: Request,
    pub(super) state: State,
    pub(super) reuse: Option<Reuse>,
    pub(super) reused: HashMap<usize, ExecutionId>,
    pub(super) jobs: JoinSet<Done>,
    /// Dispatched attempts waiting for their journal entries to reach the
    /// disk (see `launch`).
    pub(super) ready: Vec<(usize, usize, Job)>,
    pub(super) unflushed: bool,
}

impl Driver {
    pub(super) fn new(
        sched: Scheduler,
        def: Arc<Definition>,
        record: ExecutionRecord,
        req: Request,
        reuse: Option<Reuse>,
    ) -> Self {
        Self {
            sched,
            def,
            record,
            req,
            state: State::default(),
            reuse,
            reused: HashMap::new(),
            jobs: JoinSet::new(),
            ready: Vec::new(),
            unflushed: false,
        }
    }

    pub(super) fn exprs(&self) -> &Expressions {
        &self.sched.inner.exprs
    }

    pub(super) fn name(&self) -> String {
        self.def.name()
    }

    /// `vars`, evaluated over the input, in order (each sees the earlier).
    pub(super) fn initial_ctx(
        &self,
        input: &Value,
    ) -> Result<serde_json::Map<String, Value>, Failure> {
        let mut ctx = serde_json::Map::new();
        for (k, v) in &self.def.workflow.vars {
            let scope = Scope {
                input: Some(input),
                ctx: Some(&ctx),
                ..Scope::default()
            };
            let value = self
                .exprs()
                .render(v, scope)
                .map_err(|e| expression_failure(&format!("vars.{k}"), &e))?;
            ctx.insert(k.clone(), value);
        }
        Ok(ctx)
    }

    /// Append entries to the journal and apply them.
    pub(super) fn write(&mut self, entries: &[Entry], flush: bool) -> Result<(), WorkflowError> {
        // A rehearsal's store is thrown away when it ends: nothing in it
        // has to survive a crash.
        let flush = flush && self.req.rehearsal.is_none();
        let bytes: Vec<Vec<u8>> = entries
            .iter()
            .map(|e| serde_json::to_vec(e).expect("entries always serialize"))
            .collect();
        self.sched.runtime().store().append_workflow_log(
            self.record.id,
            self.state.len,
            &bytes,
            flush,
        )?;
        self.unflushed = !flush;
        for e in entries {
            self.state.apply(&self.def.workflow, e);
        }
        Ok(())
    }

    /// A rehearsal runs no action, so a loop its mocks never end would
    /// spin (and fill its scratch store) without bound: past this many
    /// task runs it fails, saying so.
    fn bound_rehearsal(&mut self) -> Result<(), WorkflowError> {
        const RUNS: usize = 10_000;
        if self.req.rehearsal.is_none() || self.stopping() || self.state.runs.len() <= RUNS {
            return Ok(());
        }
        let f = failure(
            code::REHEARSAL_BOUND,
            &format!(
                "the rehearsal stopped after {RUNS} task runs: does a loop never end with these mocks?"
            ),
        );
        self.write(&[Entry::Fail { failure: f }], false)
    }

    /// `random()`'s seed for expressions of `run`'s `slot` evaluated now.
    pub(super) fn seed(&self, run: usize, slot: usize, what: Seed) -> [u8; 32] {
        decide::seed(self.record.id, self.state.len, run, slot, what)
    }

    /// Where expressions about `run`'s `slot` are evaluated now.
    pub(super) fn evaluation(&self, run: usize, slot: usize, what: Seed) -> decide::Evaluation {
        decide::Evaluation {
            seed: self.seed(run, slot, what),
            task_statuses: self.def.workflow.reads_task_status,
        }
    }

    /// `task_status()`'s view now, when the workflow reads it.
    pub(super) fn task_statuses(&self) -> Option<serde_json::Map<String, Value>> {
        self.def
            .workflow
            .reads_task_status
            .then(|| self.state.task_statuses())
    }

    pub(super) fn stopping(&self) -> bool {
        self.state.failing.is_some() || self.state.canceled
    }

    pub(super) async fn drive(mut self) -> Result<ExecutionRecord, WorkflowError> {
        loop {
            self.take_pause()?;
            self.complete_settled()?;
            self.bound_rehearsal()?;
            if !self.state.paused {
                let before = self.state.len;
                self.dispatch()?;
                // Settled runs may have been completed by dispatch (reuse,
                // empty items): go round again before waiting. A rehearsal
                // settles each attempt as it starts, so a retry is an idle
                // slot again: go round while that makes progress.
                if self.has_settled_incomplete()
                    || self.req.rehearsal.is_some() && self.state.len != before
                {
                    continue;
                }
            }
            self.launch()?;
            if self.jobs.is_empty() {
                // Nothing runs but open inquiries: one answered (or
                // expired) meanwhile lets the workflow go on.
                if self.answered()? {
                    continue;
                }
                break;
            }
            // Tasks' records are written without their own fsync (see
            // `start_slot`); what settled must be on disk before the
            // scheduler waits, whether or not a dispatch flushed it.
            if self.unflushed {
                self.sched.runtime().store().flush()?;
                self.unflushed = false;
            }
            let cancel = self.req.cancel.clone();
            let pause = self.req.pause.clone();
            tokio::select! {
                // The cancel first: a task stopped by it may already have
                // ended, and its `canceled` outcome must find the workflow
                // canceled, not settle first as a failure.
                biased;
                () = cancel.cancelled(), if !self.state.canceled => {
                    // Running actions see the same token (children of it)
                    // and stop; their records say `canceled`.
                    self.write(&[Entry::Cancel], true)?;
                }
                // Noted at the top of the loop; nothing else changes here.
                () = pause.cancelled(), if !self.state.paused && !self.stopping() => {}
                done = self.jobs.join_next() => {
                    if let Some(done) = done {
                        let done = done.map_err(|e| WorkflowError::Join(e.to_string()))?;
                        self.settle(done)?;
                        // Take every other attempt that has ended too, so
                        // one flush before the next dispatch covers them all.
                        while let Some(done) = self.jobs.try_join_next() {
                            let done = done.map_err(|e| WorkflowError::Join(e.to_string()))?;
                            self.settle(done)?;
                        }
                    }
                }
            }
        }
        self.finish()
    }

    /// The slots that wait for an inquiry (running, with no job: only an
    /// inquiry's slot runs when the jobs are done), by execution id.
    fn open_inquiries(&self) -> Vec<(usize, usize, ExecutionId)> {
        let mut out = Vec::new();
        for (run, r) in self.state.runs.iter().enumerate() {
            for (slot, s) in r.slots().iter().enumerate() {
                if let (true, Some(child)) = (s.is_running(), s.child) {
                    out.push((run, slot, child));
                }
            }
        }
        out
    }

    /// Settle every open inquiry whose record has ended (answered, or
    /// canceled) or that is past its ttl (expired now), and resume every
    /// paused nested workflow one of whose own inquiries did; whether any
    /// was.
    pub(super) fn answered(&mut self) -> Result<bool, WorkflowError> {
        let store = self.sched.runtime().store().clone();
        let mut settled = false;
        for (run, slot, child) in self.open_inquiries() {
            let rec = match store.get(child)? {
                Some(rec) if rec.is_finished() => rec,
                Some(rec) if inquiry::is_open(&rec) && inquiry::is_due(&rec) => {
                    inquiry::expire(&store, rec)?
                }
                Some(rec) if inquiry::is_waiting_workflow(&rec) && inquiry::news(&store, &rec)? => {
                    self.resume_nested(run, slot, child);
                    settled = true;
                    continue;
                }
                _ => continue,
            };
            self.settle(Done::recorded(run, slot, &rec))?;
            settled = true;
        }
        Ok(settled)
    }

    /// A pause asked for and not yet in the journal: write it, so no task
    /// starts after it (a restart finds the workflow still pausing).
    fn take_pause(&mut self) -> Result<(), WorkflowError> {
        if self.req.pause.is_cancelled() && !self.state.paused && !self.stopping() {
            self.write(&[Entry::Pause], true)?;
        }
        Ok(())
    }

    pub(super) fn has_settled_incomplete(&self) -> bool {
        self.state
            .runs
            .iter()
            .any(|r| r.completed.is_none() && r.is_settled(self.with_items(&r.name)))
    }

    pub(super) fn task(&self, name: &str) -> &Task {
        &self.def.workflow.tasks[name]
    }

    pub(super) fn with_items(&self, name: &str) -> bool {
        self.def
            .workflow
            .tasks
            .get(name)
            .is_some_and(|t| t.with_items.is_some())
    }

    /// Complete every run whose slots have all ended: evaluate its
    /// transitions, publish, start what they lead to.
    pub(super) fn complete_settled(&mut self) -> Result<(), WorkflowError> {
        loop {
            // Several settled at once complete in a wave's order.
            let runs = &self.state.runs;
            let Some(run) = (0..runs.len())
                .filter(|&i| {
                    let r = &runs[i];
                    r.completed.is_none() && r.is_settled(self.with_items(&r.name))
                })
                .min_by(|&a, &b| {
                    (&runs[a].name, runs[a].route).cmp(&(&runs[b].name, runs[b].route))
                })
            else {
                return Ok(());
            };
            let outcome = decide::run_outcome(&self.state.runs[run]);
            self.conclude(run, outcome)?;
        }
    }

    /// Write a run's completion with what its transitions decide.
    pub(super) fn conclude(&mut self, run: usize, outcome: Outcome) -> Result<(), WorkflowError> {
        let name = self.state.runs[run].name.clone();
        let reused_from = self.reused.get(&run).copied();
        let mut entries = Vec::new();
        let mut publish = serde_json::Map::new();
        let mut next = Vec::new();
        let mut run_on_fail = false;
        let (mut next_routes, mut new_routes) = (Vec::new(), Vec::new());
        if !self.state.canceled {
            let at = self.evaluation(run, 0, Seed::Transitions);
            match decide::transitions(
                self.exprs(),
                &name,
                self.task(&name),
                &outcome,
                &self.state,
                at,
            ) {
                Ok(t) => {
                    publish = t.publish;
                    next = t.next;
                    // `do: retry`: the task once more, at most RETRIES
                    // times; past them its failure stands unhandled.
                    let runs = self.state.runs.iter().filter(|r| r.name == name).count();
                    let retried = t.commands.contains(&Command::Retry) && runs <= Command::RETRIES;
                    (next_routes, new_routes) = self.routes_of(run, &next, &t.via);
                    if retried {
                        // On its own route again.
                        next.push(name.clone());
                        next_routes.push(self.state.runs[run].route);
                    }
                    let handled = t.leads || retried;
                    if let Some(r) = &self.req.rehearsal {
                        // Orquesta lists the engine commands a task leads
                        // to in its task sequence, as they are taken.
                        for c in &t.commands {
                            r.started(c.name());
                        }
                        r.concluded(&name, next.is_empty());
                    }
                    if let Some(at) = &t.fail {
                        // The tasks this completion starts still run
                        // (Orquesta's remediation before failing).
                        run_on_fail = true;
                        let mut f = failure(
                            code::TASK_FAILED,
                            &format!("`fail` in {at}, after task `{name}` ({})", outcome.status),
                        );
                        f.details = Some(json!({ "failed_on": name, "error": outcome.error }));
                        entries.push(Entry::Fail { failure: f });
                    } else if outcome.status != Status::Succeeded && !handled {
                        let why = outcome
                            .error
                            .as_ref()
                            .map(|e| format!("{} ({})", e.message, e.code))
                            .unwrap_or_else(|| outcome.status.to_string());
                        let mut f =
                            failure(code::TASK_FAILED, &format!("task `{name}` failed: {why}"));
                        f.details = Some(json!({ "failed_on": name, "error": outcome.error }));
                        entries.push(Entry::Fail { failure: f });
                    }
                }
                Err(f) => entries.push(Entry::Fail { failure: f }),
            }
        }
        entries.insert(
            0,
            Entry::Complete {
                run,
                status: outcome.status,
                result: outcome.result,
                error: outcome.error,
                publish,
                next,
                reused_from,
                run_on_fail,
                next_routes,
                new_routes,
            },
        );
        // Not flushed here: nothing starts on it before `launch` flushes
        // (with the `Dispatch` entries of what it leads to), and the loop
        // flushes before it waits or ends. A crash before then loses it
        // with the settle before it, and a restart decides it again from
        // the task's record: one fsync per step of a chain, not two.
        self.write(&entries, false)
    }

    /// Start every slot that may start now: a wave, in Orquesta's order
    /// (by task name, then route, then by when the run was made). While the workflow
    /// fails, only the runs started to run on its failure go on.
    pub(super) fn dispatch(&mut self) -> Result<(), WorkflowError> {
        // Runs are added while this walks them (a reused run's transitions
        // start the next ones): those are a wave of their own, after.
        let mut from = 0;
        while from < self.state.runs.len() {
            let mut wave: Vec<usize> = (from..self.state.runs.len())
                .filter(|&r| self.state.runs[r].completed.is_none())
                .collect();
            from = self.state.runs.len();
            let runs = &self.state.runs;
            wave.sort_by(|&a, &b| {
                (&runs[a].name, runs[a].route).cmp(&(&runs[b].name, runs[b].route))
            });
            for run in wave {
                self.dispatch_run(run)?;
            }
        }
        Ok(())
    }

    fn dispatch_run(&mut self, run: usize) -> Result<(), WorkflowError> {
        let r = &self.state.runs[run];
        let may = !self.stopping() || r.run_on_fail && !self.state.canceled;
        if !may || r.completed.is_some() {
            return Ok(());
        }
        let name = r.name.clone();
        if self.try_reuse(run)? {
            return Ok(());
        }
        let task = self.task(&name).clone();
        if let (Some(items), None) = (&task.with_items, &self.state.runs[run].items) {
            let scope = Scope {
                input: Some(&self.state.input),
                ctx: Some(&self.state.ctx),
                seed: Some(self.seed(run, 0, Seed::Items)),
                ..Scope::default()
            };
            match self.exprs().render(items, scope) {
                Ok(Value::Array(items)) => {
                    self.write(&[Entry::Items { run, items }], false)?;
                }
                Ok(other) => {
                    let f = failure(
                        code::EXPRESSION,
                        &format!("tasks.{name}.with-items: expected a list, got {other}"),
                    );
                    return self.conclude(run, Outcome::failed(f));
                }
                Err(e) => {
                    let f = expression_failure(&format!("tasks.{name}.with-items"), &e);
                    return self.conclude(run, Outcome::failed(f));
                }
            }
        }
        self.start_idle_slots(run, task.concurrency)
    }

    /// Start the idle slots of `run`, in order, up to the task's
    /// concurrency; none once one has failed for good. Each slot is
    /// looked at once per wake-up (a rehearsal's retry is idle again at
    /// once, and waits for the next), and the run's tally answers the
    /// rest, so a wake-up costs the slots it starts, not the run's size.
    fn start_idle_slots(
        &mut self,
        run: usize,
        concurrency: Option<u32>,
    ) -> Result<(), WorkflowError> {
        let limit = concurrency.map(|c| c as usize).unwrap_or(usize::MAX);
        let mut from = 0;
        loop {
            let r = &self.state.runs[run];
            if r.running() >= limit || r.has_failed_slot() {
                return Ok(());
            }
            let Some(slot) = r.next_idle(from) else {
                return Ok(());
            };
            self.start_slot(run, slot, None)?;
            from = slot + 1;
        }
    }

    /// With `re-run --from`, a run of a task before TASK takes the earlier
    /// execution's outcome of the same run (same task, same occurrence).
    pub(super) fn try_reuse(&mut self, run: usize) -> Result<bool, WorkflowError> {
        let Some(reuse) = &self.reuse else {
            return Ok(false);
        };
        let name = &self.state.runs[run].name;
        if reuse.rerun.contains(name) || self.state.runs[run].was_dispatched() {
            return Ok(false);
        }
        let occurrence = self.state.occurrence(run);
        let Some(old) = reuse
            .state
            .runs
            .iter()
            .filter(|r| &r.name == name)
            .nth(occurrence)
            .filter(|r| r.completed.is_some())
            .cloned()
        else {
            return Ok(false);
        };
        let mut entries = Vec::new();
        if let Some(items) = &old.items {
            entries.push(Entry::Items {
                run,
                items: items.clone(),
            });
        }
        for (slot, s) in old.slots().iter().enumerate() {
            if let Some(o) = &s.outcome {
                entries.push(Entry::Settle {
                    run,
                    slot,
                    child: s.child,
                    status: o.status,
                    result: o.result.clone(),
                    error: o.error.clone(),
                    retry: false,
                });
            }
        }
        if let Some(child) = old.slots().iter().find_map(|s| s.child) {
            self.reused.insert(run, child);
        }
        self.write(&entries, false)?;
        let outcome = old.completed.clone().expect("filtered on completed");
        self.conclude(run, outcome)?;
        Ok(true)
    }

    /// Start the attempts dispatched since the last launch, once their
    /// `Dispatch` entries are on disk: one fsync for a whole wave.
    pub(super) fn launch(&mut self) -> Result<(), WorkflowError> {
        if self.ready.is_empty() {
            return Ok(());
        }
        if self.unflushed {
            self.sched.runtime().store().flush()?;
            self.unflushed = false;
        }
        for (run, slot, job) in self.ready.drain(..) {
            self.jobs.spawn(async move {
                let started = Instant::now();
                let (child, outcome) = job.run().await;
                Done {
                    run,
                    slot,
                    child,
                    outcome,
                    elapsed: started.elapsed(),
                }
            });
        }
        Ok(())
    }

    /// A slot that fails before any action runs (its input or grants).
    pub(super) fn settle_now(
        &mut self,
        run: usize,
        slot: usize,
        f: Failure,
    ) -> Result<(), WorkflowError> {
        self.write(
            &[Entry::Settle {
                run,
                slot,
                child: None,
                status: Status::Failed,
                result: None,
                error: Some(f),
                retry: false,
            }],
            false,
        )
    }

    /// The task's own grants, or the workflow's, rendered and bounded by
    /// the operator's.
    pub(super) fn task_grants(&self, task: &Task, item: Option<&Value>) -> Result<Grants, String> {
        let Some(spec) = task.grants.as_ref().or(self.def.workflow.grants.as_ref()) else {
            return Ok(Grants::default());
        };
        let scope = Scope {
            input: Some(&self.state.input),
            ctx: Some(&self.state.ctx),
            item,
            item_names: &task.item_names,
            ..Scope::default()
        };
        let rendered = self
            .exprs()
            .render(&serde_json::to_value(spec).unwrap_or_default(), scope)
            .map_err(|e| format!("grants: {e}"))?;
        let spec: crate::model::GrantSpec = serde_json::from_value(rendered)
            .map_err(|_| "grants: every entry must render to a string".to_owned())?;
        let asked = grants::parse(&spec)?;
        grants::bound(asked, &self.req.grants)
    }

    /// An attempt ended: record it, and whether it will be retried.
    pub(super) fn settle(&mut self, done: Done) -> Result<(), WorkflowError> {
        let Done {
            run,
            slot,
            child,
            outcome,
            elapsed,
        } = done;
        // A nested workflow that paused waits for its inquiries: its slot
        // stays open, like an inquiry's, and the workflow pauses too when
        // nothing else can run (see `answered` for how it goes on).
        if outcome.status == Status::Paused {
            return Ok(());
        }
        let name = self.state.runs[run].name.clone();
        let attempt = self.state.runs[run].slots()[slot].attempt;
        let retry = !self.stopping()
            && decide::should_retry(
                self.exprs(),
                &name,
                self.task(&name),
                attempt,
                &outcome,
                &self.state,
                self.evaluation(run, slot, Seed::Retry),
            );
        if let Some(o) = &self.req.observer {
            o.task_finished(&self.name(), &name, outcome.status, elapsed);
        }
        self.write(
            &[Entry::Settle {
                run,
                slot,
                child,
                status: outcome.status,
                result: outcome.result,
                error: outcome.error,
                retry,
            }],
            false,
        )
    }

    /// Write the end, update the workflow's record, and return it; a
    /// paused workflow with tasks still to run is recorded `paused`
    /// instead, its journal left open for `resume`.
    pub(super) fn finish(mut self) -> Result<ExecutionRecord, WorkflowError> {
        let waiting = self.state.runs.iter().any(|r| r.completed.is_none());
        let asking = !self.open_inquiries().is_empty();
        if self.state.ended.is_none()
            && (self.state.paused || asking)
            && !self.stopping()
            && waiting
        {
            self.record.status = Status::Paused;
            self.sched.runtime().store().put(&self.record)?;
            return Ok(self.record);
        }
        // Ending (canceled, failed) with inquiries open: nobody will
        // answer them now.
        let store = self.sched.runtime().store().clone();
        for (_, _, child) in self.open_inquiries() {
            match store.get(child)? {
                Some(mut rec) if inquiry::is_open(&rec) => {
                    rec.fail(
                        Status::Canceled,
                        failure(code::CANCELED, "the workflow ended before it was answered"),
                    );
                    store.put_unflushed(&rec)?;
                }
                // A nested workflow waiting for its own: it ends too.
                Some(rec) if inquiry::is_waiting_workflow(&rec) => {
                    crate::cancel::cancel_tree(&store, rec)?;
                }
                _ => {}
            }
        }
        if self.state.ended.is_none() && !self.stopping() {
            if let Some(f) = self.unreachable_join() {
                self.write(&[Entry::Fail { failure: f }], false)?;
            }
        }
        if self.state.ended.is_none() {
            let end = if self.state.canceled {
                Entry::End {
                    status: Status::Canceled,
                    result: None,
                    error: Some(failure(code::CANCELED, "the workflow was canceled")),
                }
            } else if let Some(f) = self.state.failing.clone() {
                Entry::End {
                    status: Status::Failed,
                    result: None,
                    error: Some(f),
                }
            } else {
                match self.output() {
                    Ok(out) => Entry::End {
                        status: Status::Succeeded,
                        result: Some(out),
                        error: None,
                    },
                    Err(f) => Entry::End {
                        status: Status::Failed,
                        result: None,
                        error: Some(f),
                    },
                }
            };
            self.write(&[end], false)?;
        }
        let ended = self.state.ended.clone().expect("just ended");
        self.record.end(ended);
        self.sched.runtime().store().put(&self.record)?;
        Ok(self.record)
    }

    /// The route each of `next` runs on, reached from `run` by `via`:
    /// the run's own, or, for a split task outside a cycle, the run's
    /// route and the transition (a route made now if it is new, returned
    /// second, to be appended in order).
    fn routes_of(
        &self,
        run: usize,
        next: &[String],
        via: &[String],
    ) -> (Vec<usize>, Vec<Vec<String>>) {
        let wf = &self.def.workflow;
        let own = self.state.runs[run].route;
        let mut made: Vec<Vec<String>> = Vec::new();
        let routes = next
            .iter()
            .zip(via)
            .map(|(to, via)| {
                if !wf.splits.contains(to) {
                    return own;
                }
                let mut details = self.state.routes.get(own).cloned().unwrap_or_default();
                if !details.contains(via) {
                    details.push(via.clone());
                }
                let known = self
                    .state
                    .routes
                    .iter()
                    .chain(&made)
                    .position(|r| *r == details);
                known.unwrap_or_else(|| {
                    made.push(details);
                    self.state.routes.len() + made.len() - 1
                })
            })
            .collect();
        (routes, made)
    }

    /// A join some of whose inbound transitions arrived, not enough, when
    /// nothing else can run: it never will (Orquesta fails the workflow).
    fn unreachable_join(&self) -> Option<Failure> {
        let wf = &self.def.workflow;
        let mut arrivals: Vec<_> = self.state.arrivals.iter().collect();
        arrivals.sort();
        let ((name, route), arrived, needed) =
            arrivals.into_iter().find_map(|((name, route), &n)| {
                let needed = match wf.tasks.get(name)?.join? {
                    crate::model::Join::All => wf.inbound(name) as u32,
                    crate::model::Join::Count(c) => c,
                };
                (n > 0 && n < needed).then(|| ((name.clone(), *route), n, needed))
            })?;
        let mut f = failure(
            code::UNREACHABLE_JOIN,
            &format!(
                "the join task `{name}` (route {route}) is partially satisfied ({arrived} of \
                 {needed} inbound transitions arrived) but can no longer be reached"
            ),
        );
        f.details = Some(json!({"task": name, "route": route}));
        Some(f)
    }

    pub(super) fn output(&self) -> Result<Value, Failure> {
        let mut out = serde_json::Map::new();
        let tasks = self.task_statuses();
        for (k, v) in &self.def.workflow.output {
            let scope = Scope {
                input: Some(&self.state.input),
                ctx: Some(&self.state.ctx),
                tasks: tasks.as_ref(),
                seed: Some(self.seed(0, 0, Seed::Output)),
                ..Scope::default()
            };
            let value = self
                .exprs()
                .render(v, scope)
                .map_err(|e| expression_failure(&format!("output.{k}"), &e))?;
            out.insert(k.clone(), value);
        }
        Ok(Value::Object(out))
    }
}
