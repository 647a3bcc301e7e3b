//! A workflow execution's journal: every state transition, in order, as it
//! is written to the store; and the state that folding it gives.
//!
//! The scheduler decides a transition, appends it (durably before it starts
//! anything that depends on it), then applies it. After a crash the same
//! fold rebuilds the state, so resuming is the live code path from there:
//! nothing is inferred that was not written.

use crate::model::{Join, Workflow};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use std::collections::{BTreeSet, HashMap};
use wasmflow_store::{ExecutionId, Failure, Outcome, Status};

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "entry", rename_all = "snake_case")]
pub enum Entry {
    /// The workflow started with this (checked) input and initial `ctx`.
    Begin {
        input: Value,
        ctx: Map<String, Value>,
    },
    /// A with-items task's items, evaluated once.
    Items { run: usize, items: Vec<Value> },
    /// An attempt of a slot (the task, or one item of it) was handed to an
    /// action as execution `child`, with this rendered input.
    Dispatch {
        run: usize,
        slot: usize,
        attempt: u32,
        child: ExecutionId,
        input: Value,
    },
    /// An attempt ended; `retry` when another attempt will follow.
    Settle {
        run: usize,
        slot: usize,
        child: Option<ExecutionId>,
        status: Status,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        result: Option<Value>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        error: Option<Failure>,
        retry: bool,
    },
    /// A run of a task finished; its transitions published these values and
    /// led to these tasks.
    Complete {
        run: usize,
        status: Status,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        result: Option<Value>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        error: Option<Failure>,
        publish: Map<String, Value>,
        next: Vec<String>,
        /// The run reused the result of this run of an earlier execution
        /// (`re-run --from`) instead of running.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        reused_from: Option<ExecutionId>,
        /// A transition said `fail`: the tasks this starts run even though
        /// the workflow is failing (then nothing more starts).
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        run_on_fail: bool,
        /// The route of each of `next` (Orquesta's splits; absent: the
        /// completed run's own), and the routes this completion made, in
        /// order, appended to the workflow's.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        next_routes: Vec<usize>,
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        new_routes: Vec<Vec<String>>,
    },
    /// The workflow will fail: no more tasks start, except those started
    /// to run on it; running ones finish.
    Fail { failure: Failure },
    /// Canceled: running actions are stopped, nothing more starts.
    Cancel,
    /// Paused: nothing more starts; running actions finish.
    Pause,
    /// Resumed after a pause: tasks start again.
    Resume,
    /// The workflow ended.
    End {
        status: Status,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        result: Option<Value>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        error: Option<Failure>,
    },
}

/// One attempt-able unit: a task, or one item of a with-items task.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Slot {
    pub attempt: u32,
    /// The execution of the current attempt, once dispatched.
    pub child: Option<ExecutionId>,
    pub input: Option<Value>,
    /// Set when the current attempt has ended.
    pub outcome: Option<Outcome>,
    /// The current attempt ended and another will follow.
    pub retry: bool,
}

impl Slot {
    pub fn is_running(&self) -> bool {
        self.child.is_some() && self.outcome.is_none()
    }

    /// Ended with no retry to come.
    pub fn is_done(&self) -> bool {
        self.outcome.is_some() && !self.retry
    }

    /// Ended, not in success, with no retry to come.
    pub fn has_failed(&self) -> bool {
        self.is_done()
            && self
                .outcome
                .as_ref()
                .is_some_and(|o| o.status != Status::Succeeded)
    }

    /// Never started, or waiting for its next attempt.
    pub fn is_idle(&self) -> bool {
        (self.child.is_none() && self.outcome.is_none()) || self.retry
    }
}

/// One run of a task (a task runs again each time a transition leads to it,
/// unless it joins).
#[derive(Clone, Debug, PartialEq)]
pub struct TaskRun {
    pub name: String,
    /// For with-items tasks, once evaluated.
    pub items: Option<Vec<Value>>,
    /// Changed only through `set_slot`/`set_slots`, which keep `tally`.
    slots: Vec<Slot>,
    tally: Tally,
    pub completed: Option<Outcome>,
    pub reused_from: Option<ExecutionId>,
    /// Started by a transition that also said `fail`: it runs although
    /// the workflow is failing.
    pub run_on_fail: bool,
    /// Its route (an index into `State::routes`).
    pub route: usize,
}

/// Where a slot stands, for the tally.
#[derive(Clone, Copy, PartialEq)]
enum Standing {
    /// Never dispatched nor settled.
    Fresh,
    Running,
    /// Ended; another attempt will follow.
    Retrying,
    Succeeded,
    Failed,
}

impl Standing {
    fn of(s: &Slot) -> Self {
        match &s.outcome {
            None if s.child.is_some() => Standing::Running,
            None => Standing::Fresh,
            Some(_) if s.retry => Standing::Retrying,
            Some(o) if o.status == Status::Succeeded => Standing::Succeeded,
            Some(_) => Standing::Failed,
        }
    }
}

/// A run's slots counted by standing, kept as each slot changes, so what
/// the scheduler asks on every wake-up (how many run, has one failed, is
/// the run settled, which slot starts next) costs the same at 100,000
/// items as at 10: walking the slots each time made a fan-out's per-item
/// cost grow with its size.
#[derive(Clone, Debug, Default, PartialEq)]
struct Tally {
    running: usize,
    /// Succeeded or failed, with no retry to come.
    done: usize,
    failed: usize,
    /// Slots waiting for their next attempt.
    retrying: BTreeSet<usize>,
    /// The lowest fresh slot (or the slot count): a slot never becomes
    /// fresh again, so this only moves up.
    fresh_from: usize,
    /// A slot was handed to an action (a slot's child is never unset).
    dispatched: bool,
}

impl Tally {
    fn count(&mut self, slot: usize, standing: Standing, add: bool) {
        let n = |c: &mut usize| {
            if add {
                *c += 1
            } else {
                *c -= 1
            }
        };
        match standing {
            Standing::Fresh => {}
            Standing::Running => n(&mut self.running),
            Standing::Retrying if add => {
                self.retrying.insert(slot);
            }
            Standing::Retrying => {
                self.retrying.remove(&slot);
            }
            Standing::Succeeded => n(&mut self.done),
            Standing::Failed => {
                n(&mut self.done);
                n(&mut self.failed);
            }
        }
    }
}

impl TaskRun {
    fn new(name: &str, with_items: bool) -> Self {
        // A with-items run gets its slots with its items.
        let slots = if with_items {
            Vec::new()
        } else {
            vec![Slot::default()]
        };
        Self::with_slots(name, None, slots)
    }

    /// A run of `name` whose slots stand as given (not yet completed).
    pub fn with_slots(name: &str, items: Option<Vec<Value>>, slots: Vec<Slot>) -> Self {
        let mut run = Self {
            name: name.to_owned(),
            items,
            slots: Vec::new(),
            tally: Tally::default(),
            completed: None,
            reused_from: None,
            run_on_fail: false,
            route: 0,
        };
        run.set_slots(slots);
        run
    }

    pub fn slots(&self) -> &[Slot] {
        &self.slots
    }

    fn set_slots(&mut self, slots: Vec<Slot>) {
        self.slots = slots;
        self.tally = Tally::default();
        for (i, s) in self.slots.iter().enumerate() {
            self.tally.count(i, Standing::of(s), true);
            self.tally.dispatched |= s.child.is_some();
        }
        self.advance_fresh();
    }

    /// Change slot `slot`, keeping the tally.
    fn set_slot(&mut self, slot: usize, change: impl FnOnce(&mut Slot)) {
        let s = &mut self.slots[slot];
        let before = Standing::of(s);
        change(s);
        let after = Standing::of(s);
        self.tally.dispatched |= s.child.is_some();
        self.tally.count(slot, before, false);
        self.tally.count(slot, after, true);
        self.advance_fresh();
    }

    fn advance_fresh(&mut self) {
        let t = &mut self.tally;
        while self
            .slots
            .get(t.fresh_from)
            .is_some_and(|s| Standing::of(s) != Standing::Fresh)
        {
            t.fresh_from += 1;
        }
    }

    pub fn running(&self) -> usize {
        self.tally.running
    }

    /// Whether any slot was handed to an action.
    pub fn was_dispatched(&self) -> bool {
        self.tally.dispatched
    }

    /// The lowest idle slot (never started, or waiting for its next
    /// attempt) at or after `from`.
    pub fn next_idle(&self, from: usize) -> Option<usize> {
        let retrying = self.tally.retrying.range(from..).next().copied();
        // Slots normally start in order, so this finds the first fresh
        // one at once; it skips any started out of order.
        let fresh = (from.max(self.tally.fresh_from)..self.slots.len())
            .find(|&i| Standing::of(&self.slots[i]) == Standing::Fresh);
        match (retrying, fresh) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// Whether every slot has ended, or one failed for good and none still
    /// runs (a failed item stops the rest from starting).
    pub fn is_settled(&self, with_items: bool) -> bool {
        if with_items && self.items.is_none() {
            return false;
        }
        let all_done = self.tally.done == self.slots.len();
        all_done || (self.has_failed_slot() && self.running() == 0)
    }

    pub fn has_failed_slot(&self) -> bool {
        self.tally.failed > 0
    }
}

/// The state a journal folds to.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct State {
    pub input: Value,
    pub ctx: Map<String, Value>,
    pub runs: Vec<TaskRun>,
    /// Transitions that reached each joining task, on each route.
    pub arrivals: HashMap<(String, usize), u32>,
    /// Orquesta's routes: each the transitions into split tasks that led
    /// to it (`task__t0`); route 0, the first, is `[]`.
    pub routes: Vec<Vec<String>>,
    pub failing: Option<Failure>,
    pub canceled: bool,
    /// Paused and not resumed since.
    pub paused: bool,
    pub ended: Option<Outcome>,
    /// Entries applied so far (the next entry's sequence number).
    pub len: u32,
}

impl State {
    /// Each task's status as `task_status(NAME)` reads it: its latest
    /// run's outcome once that run completed, `running` while any of its
    /// slots runs, `pending` before that; a task that never ran is absent
    /// (`unset`, as Orquesta says).
    pub fn task_statuses(&self) -> Map<String, Value> {
        let mut out = Map::new();
        for r in &self.runs {
            let status = match &r.completed {
                Some(o) => o.status.as_str(),
                None if r.was_dispatched() => "running",
                None => "pending",
            };
            out.insert(r.name.clone(), Value::String(status.to_owned()));
        }
        out
    }

    /// Apply one entry. `wf` decides how transitions start runs (joins).
    pub fn apply(&mut self, wf: &Workflow, entry: &Entry) {
        self.len += 1;
        match entry {
            Entry::Begin { input, ctx } => {
                self.input = input.clone();
                self.ctx = ctx.clone();
                self.routes = vec![Vec::new()];
                for t in wf.start_tasks() {
                    self.start(wf, t, 0);
                }
            }
            Entry::Items { run, items } => {
                let r = &mut self.runs[*run];
                r.items = Some(items.clone());
                r.set_slots(vec![Slot::default(); items.len()]);
            }
            Entry::Dispatch {
                run,
                slot,
                attempt,
                child,
                input,
            } => {
                self.runs[*run].set_slot(*slot, |s| {
                    s.attempt = *attempt;
                    s.child = Some(*child);
                    s.input = Some(input.clone());
                    s.outcome = None;
                    s.retry = false;
                });
            }
            Entry::Settle {
                run,
                slot,
                child,
                status,
                result,
                error,
                retry,
            } => {
                self.runs[*run].set_slot(*slot, |s| {
                    if child.is_some() {
                        s.child = *child;
                    }
                    s.outcome = Some(Outcome {
                        status: *status,
                        result: result.clone(),
                        error: error.clone(),
                    });
                    s.retry = *retry;
                });
            }
            Entry::Complete {
                run,
                status,
                result,
                error,
                publish,
                next,
                reused_from,
                run_on_fail,
                next_routes,
                new_routes,
            } => {
                let own = self.runs[*run].route;
                let r = &mut self.runs[*run];
                r.completed = Some(Outcome {
                    status: *status,
                    result: result.clone(),
                    error: error.clone(),
                });
                r.reused_from = *reused_from;
                for (k, v) in publish {
                    self.ctx.insert(k.clone(), v.clone());
                }
                self.routes.extend(new_routes.iter().cloned());
                let before = self.runs.len();
                for (i, t) in next.iter().enumerate() {
                    self.arrive(wf, t, next_routes.get(i).copied().unwrap_or(own));
                }
                for r in &mut self.runs[before..] {
                    r.run_on_fail = *run_on_fail;
                }
            }
            Entry::Fail { failure } => {
                if self.failing.is_none() {
                    self.failing = Some(failure.clone());
                }
            }
            Entry::Cancel => self.canceled = true,
            Entry::Pause => self.paused = true,
            Entry::Resume => self.paused = false,
            Entry::End {
                status,
                result,
                error,
            } => {
                self.ended = Some(Outcome {
                    status: *status,
                    result: result.clone(),
                    error: error.clone(),
                })
            }
        }
    }

    fn start(&mut self, wf: &Workflow, name: &str, route: usize) {
        let with_items = wf.tasks.get(name).is_some_and(|t| t.with_items.is_some());
        let mut run = TaskRun::new(name, with_items);
        run.route = route;
        self.runs.push(run);
    }

    fn arrive(&mut self, wf: &Workflow, name: &str, route: usize) {
        let Some(task) = wf.tasks.get(name) else {
            return;
        };
        let needed = match task.join {
            None => 1,
            Some(Join::All) => wf.inbound(name) as u32,
            Some(Join::Count(n)) => n,
        };
        let key = (name.to_owned(), route);
        let count = self.arrivals.entry(key.clone()).or_insert(0);
        *count += 1;
        if *count == needed {
            self.start(wf, name, route);
        }
        // With `join: N` of more inbound transitions, later arrivals are
        // ignored: the task has already run once for this join (route).
        if task.join.is_none() {
            self.arrivals.remove(&key);
        }
    }

    /// How many runs of `name` came before run `run` (its occurrence).
    pub fn occurrence(&self, run: usize) -> usize {
        let name = &self.runs[run].name;
        self.runs[..run].iter().filter(|r| &r.name == name).count()
    }

    /// Fold a whole journal.
    pub fn fold(wf: &Workflow, entries: &[Entry]) -> Self {
        let mut s = State::default();
        for e in entries {
            s.apply(wf, e);
        }
        s
    }
}

#[cfg(test)]
mod tests;
