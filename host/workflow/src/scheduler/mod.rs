//! Runs workflows: dispatches tasks on tokio as their transitions allow,
//! each as a child execution, and journals every transition in the store
//! before anything that depends on it starts.

// Expression failures travel as the `Failure` they are journaled as; they
// are rare, and boxing them would only add noise to every `?`.
#![allow(clippy::result_large_err)]

use crate::definition::{duration, resolve_pack, ActionRef, Components, Definition, NoRegistry};
use crate::expr::{Expressions, Scope};
use crate::journal::{Entry, Slot, SlotOutcome, State};
use crate::model::Task;
use crate::{grants, WorkflowError};
use serde_json::{json, Value};
use std::collections::{BTreeSet, HashMap};
use std::future::Future;
use std::path::Path;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::task::JoinSet;
use wasmflow_runtime::{Action, CancellationToken, RunOptions, Runtime, RuntimeError};
use wasmflow_store::{
    code, now, ExecutionId, ExecutionRecord, Failure, Grants, Kind, Limits, Lineage, Status,
};

/// Told what the scheduler does, for progress displays.
pub trait Observer: Send + Sync {
    fn task_started(&self, workflow: &str, task: &str, item: Option<usize>);
    fn task_finished(&self, workflow: &str, task: &str, status: Status, elapsed: Duration);
}

/// What to run, under which grants, and where the execution sits.
#[derive(Clone)]
pub struct Request {
    pub definition: Arc<Definition>,
    /// The workflow's input (checked and defaulted by the scheduler).
    pub input: Value,
    /// The operator's grants: the most any task may get.
    pub grants: Grants,
    /// Limits of each task; a task's `timeout` replaces the wall time.
    pub limits: Limits,
    /// Its id, parent, task, ... (see [`Lineage`]).
    pub lineage: Lineage,
    /// `re-run --from TASK`: reuse the recorded results of that execution's
    /// tasks that do not follow TASK.
    pub from: Option<(ExecutionId, String)>,
    pub cancel: CancellationToken,
    pub observer: Option<Arc<dyn Observer>>,
    /// Told the execution's id once its record is on disk (a front end
    /// prints it then, never before: an id it prints can be looked up).
    pub recorded: Option<Arc<dyn Fn(ExecutionId) + Send + Sync>>,
}

impl Request {
    pub fn new(definition: Arc<Definition>, input: Value) -> Self {
        Self {
            definition,
            input,
            grants: Grants::default(),
            limits: Limits::default(),
            lineage: Lineage::default(),
            from: None,
            cancel: CancellationToken::new(),
            observer: None,
            recorded: None,
        }
    }
}

/// Runs workflows against one runtime. Cheap to clone.
#[derive(Clone)]
pub struct Scheduler {
    inner: Arc<Inner>,
}

struct Inner {
    runtime: Runtime,
    exprs: Expressions,
    /// Components are loaded once per scheduler.
    actions: Mutex<HashMap<String, Action>>,
    /// Where `oci://` task actions come from.
    components: Arc<dyn Components>,
}

type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send>>;

impl Scheduler {
    pub fn new(runtime: Runtime) -> Self {
        Self::with_components(runtime, Arc::new(NoRegistry))
    }

    /// A scheduler that runs `oci://` task actions from `components`.
    pub fn with_components(runtime: Runtime, components: Arc<dyn Components>) -> Self {
        Self {
            inner: Arc::new(Inner {
                runtime,
                exprs: Expressions::new(),
                actions: Mutex::new(HashMap::new()),
                components,
            }),
        }
    }

    pub fn runtime(&self) -> &Runtime {
        &self.inner.runtime
    }

    /// Start a workflow and run it to its end. Bad input is an error and
    /// leaves no record; everything after that is in the returned record.
    pub async fn run(&self, req: Request) -> Result<ExecutionRecord, WorkflowError> {
        let def = req.definition.clone();
        let input = def.check_input(&req.input).map_err(WorkflowError::Input)?;
        let reuse = match &req.from {
            Some((old, task)) => Some(self.reuse_plan(*old, task)?),
            None => None,
        };
        let store = self.runtime().store();
        let digest = store.put_blob(def.source.text.as_bytes())?;
        let mut record = ExecutionRecord::new_workflow(
            def.source.path.display().to_string(),
            digest.to_string(),
            input.clone(),
        );
        req.lineage.clone().apply(&mut record);
        record.grants = req.grants.clone();
        record.limits = req.limits;
        record.status = Status::Running;
        record.started_at = Some(now());
        store.put(&record)?;
        if let Some(recorded) = &req.recorded {
            recorded(record.id);
        }

        let mut driver = Driver::new(self.clone(), def, record, req, reuse);
        let ctx = match driver.initial_ctx(&input) {
            Ok(ctx) => ctx,
            Err(failure) => {
                driver.write(&[Entry::Fail { failure }], false)?;
                return driver.finish();
            }
        };
        driver.write(&[Entry::Begin { input, ctx }], true)?;
        driver.drive().await
    }

    /// Continue an interrupted workflow execution from its journal.
    pub async fn resume(
        &self,
        id: ExecutionId,
        cancel: CancellationToken,
        observer: Option<Arc<dyn Observer>>,
    ) -> Result<ExecutionRecord, WorkflowError> {
        let store = self.runtime().store();
        let record = store
            .get(id)?
            .ok_or_else(|| WorkflowError::NotFound(id.to_string()))?;
        if record.kind != Kind::Workflow {
            return Err(WorkflowError::NotAWorkflow(id.to_string()));
        }
        if record.is_finished() {
            return Ok(record);
        }
        let def = Arc::new(self.recorded_definition(&record)?);
        let entries = self.journal(id)?;
        let req = Request {
            grants: record.grants.clone(),
            limits: record.limits,
            lineage: Lineage::of(&record),
            cancel,
            observer,
            ..Request::new(def.clone(), record.input.clone())
        };
        let mut driver = Driver::new(self.clone(), def.clone(), record, req, None);
        for e in &entries {
            driver.state.apply(&def.workflow, e);
        }
        if entries.is_empty() {
            // Killed between the record and its first entry.
            let input = driver.record.input.clone();
            match driver.initial_ctx(&input) {
                Ok(ctx) => driver.write(&[Entry::Begin { input, ctx }], true)?,
                Err(failure) => driver.write(&[Entry::Fail { failure }], false)?,
            }
        }
        if driver.state.ended.is_some() {
            return driver.finish();
        }
        driver.recover().await?;
        driver.drive().await
    }

    /// The workflow a record ran, from the copy kept in the store.
    pub fn recorded_definition(
        &self,
        record: &ExecutionRecord,
    ) -> Result<Definition, WorkflowError> {
        let bytes = self
            .runtime()
            .store()
            .get_blob_str(&record.component_digest)?
            .ok_or_else(|| WorkflowError::MissingSource(record.id.to_string()))?;
        let text = String::from_utf8_lossy(&bytes).into_owned();
        Definition::parse(Path::new(&record.action), text).map_err(WorkflowError::Problems)
    }

    /// A workflow execution's journal.
    pub fn journal(&self, id: ExecutionId) -> Result<Vec<Entry>, WorkflowError> {
        self.runtime()
            .store()
            .workflow_log(id)?
            .iter()
            .enumerate()
            .map(|(i, bytes)| {
                serde_json::from_slice(bytes).map_err(|e| WorkflowError::CorruptJournal {
                    id: id.to_string(),
                    entry: i,
                    message: e.to_string(),
                })
            })
            .collect()
    }

    /// Every workflow execution left running by a process that stopped,
    /// outermost first (nested ones are resumed by their parents).
    pub fn interrupted(&self) -> Result<Vec<ExecutionRecord>, WorkflowError> {
        let store = self.runtime().store();
        let filter = wasmflow_store::ListFilter {
            status: Some(Status::Running),
            limit: usize::MAX,
            children: false,
            ..Default::default()
        };
        let mut out: Vec<_> = store
            .list(&filter)?
            .into_iter()
            .filter(|r| r.kind == Kind::Workflow)
            .collect();
        out.reverse();
        Ok(out)
    }

    fn reuse_plan(&self, old: ExecutionId, task: &str) -> Result<Reuse, WorkflowError> {
        let record = self
            .runtime()
            .store()
            .get(old)?
            .ok_or_else(|| WorkflowError::NotFound(old.to_string()))?;
        let def = self.recorded_definition(&record)?;
        if !def.workflow.tasks.contains_key(task) {
            let known: Vec<&str> = def.workflow.tasks.keys().map(String::as_str).collect();
            return Err(WorkflowError::UnknownTask {
                task: task.to_owned(),
                known: known.join(", "),
            });
        }
        let state = State::fold(&def.workflow, &self.journal(old)?);
        Ok(Reuse {
            rerun: def.workflow.reachable_from(task),
            state,
        })
    }

    /// A task's component, loaded once per scheduler (keyed by its path or
    /// its `oci://` reference).
    fn load(&self, action: &ActionRef) -> Result<Action, String> {
        let key = match action {
            ActionRef::Component(p) | ActionRef::Workflow(p) => p.display().to_string(),
            ActionRef::Oci(r) | ActionRef::Pack(r) => r.clone(),
        };
        if let Some(a) = self.inner.actions.lock().expect("not poisoned").get(&key) {
            return Ok(a.clone());
        }
        let loaded = match action {
            ActionRef::Oci(r) => {
                let (pinned, bytes) = self.inner.components.oci(r)?;
                self.inner.runtime.load_bytes(&pinned, bytes)
            }
            ActionRef::Component(p) | ActionRef::Workflow(p) => self.inner.runtime.load(p),
            ActionRef::Pack(name) => {
                return Err(format!("{name}: packs are resolved before loading"))
            }
        };
        let action = loaded.map_err(|e| e.to_string())?;
        self.inner
            .actions
            .lock()
            .expect("not poisoned")
            .insert(key, action.clone());
        Ok(action)
    }
}

/// What `re-run --from` keeps from the earlier execution.
struct Reuse {
    /// TASK and everything after it: these run live.
    rerun: BTreeSet<String>,
    state: State,
}

/// One attempt finished.
struct Done {
    run: usize,
    slot: usize,
    child: Option<ExecutionId>,
    outcome: SlotOutcome,
    elapsed: Duration,
}

/// Drives one workflow execution.
struct Driver {
    sched: Scheduler,
    def: Arc<Definition>,
    record: ExecutionRecord,
    req: Request,
    state: State,
    reuse: Option<Reuse>,
    reused: HashMap<usize, ExecutionId>,
    jobs: JoinSet<Done>,
    /// Dispatched attempts waiting for their journal entries to reach the
    /// disk (see `launch`).
    ready: Vec<(usize, usize, Job)>,
    unflushed: bool,
}

impl Driver {
    fn new(
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

    fn exprs(&self) -> &Expressions {
        &self.sched.inner.exprs
    }

    fn name(&self) -> String {
        self.def.name()
    }

    /// `vars`, evaluated over the input, in order (each sees the earlier).
    fn initial_ctx(&self, input: &Value) -> Result<serde_json::Map<String, Value>, Failure> {
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
    fn write(&mut self, entries: &[Entry], flush: bool) -> Result<(), WorkflowError> {
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

    fn stopping(&self) -> bool {
        self.state.failing.is_some() || self.state.canceled
    }

    async fn drive(mut self) -> Result<ExecutionRecord, WorkflowError> {
        loop {
            self.complete_settled()?;
            if !self.stopping() {
                self.dispatch()?;
                // Settled runs may have been completed by dispatch (reuse,
                // empty items): go round again before waiting.
                if self.has_settled_incomplete() {
                    continue;
                }
            }
            self.launch()?;
            if self.jobs.is_empty() {
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

    fn has_settled_incomplete(&self) -> bool {
        self.state
            .runs
            .iter()
            .any(|r| r.completed.is_none() && r.is_settled(self.with_items(&r.name)))
    }

    fn task(&self, name: &str) -> &Task {
        &self.def.workflow.tasks[name]
    }

    fn with_items(&self, name: &str) -> bool {
        self.def
            .workflow
            .tasks
            .get(name)
            .is_some_and(|t| t.with_items.is_some())
    }

    /// Complete every run whose slots have all ended: evaluate its
    /// transitions, publish, start what they lead to.
    fn complete_settled(&mut self) -> Result<(), WorkflowError> {
        loop {
            let Some(run) = (0..self.state.runs.len()).find(|&i| {
                let r = &self.state.runs[i];
                r.completed.is_none() && r.is_settled(self.with_items(&r.name))
            }) else {
                return Ok(());
            };
            let outcome = self.run_outcome(run);
            self.conclude(run, outcome)?;
        }
    }

    /// A run's outcome from its slots: a with-items run succeeds when every
    /// item did, and its result is the items' results in order.
    fn run_outcome(&self, run: usize) -> SlotOutcome {
        let r = &self.state.runs[run];
        if r.items.is_none() {
            return r.slots[0].outcome.clone().unwrap_or(SlotOutcome {
                status: Status::Failed,
                result: None,
                error: None,
            });
        }
        let results: Vec<Value> = r
            .slots
            .iter()
            .map(|s| {
                s.outcome
                    .as_ref()
                    .and_then(|o| o.result.clone())
                    .unwrap_or(Value::Null)
            })
            .collect();
        let failed = r.slots.iter().enumerate().find_map(|(i, s)| {
            let o = s.outcome.as_ref()?;
            (o.status != Status::Succeeded && !s.retry).then(|| (i, o.clone()))
        });
        match failed {
            None => SlotOutcome {
                status: Status::Succeeded,
                result: Some(Value::Array(results)),
                error: None,
            },
            Some((i, o)) => {
                let mut error = o
                    .error
                    .unwrap_or_else(|| failure(code::FAILED, "the item failed"));
                error.message = format!("item {i}: {}", error.message);
                SlotOutcome {
                    status: o.status,
                    result: Some(Value::Array(results)),
                    error: Some(error),
                }
            }
        }
    }

    /// Write a run's completion with what its transitions decide.
    fn conclude(&mut self, run: usize, outcome: SlotOutcome) -> Result<(), WorkflowError> {
        let name = self.state.runs[run].name.clone();
        let reused_from = self.reused.get(&run).copied();
        let mut entries = Vec::new();
        let mut publish = serde_json::Map::new();
        let mut next = Vec::new();
        if !self.state.canceled {
            match self.transitions(&name, &outcome) {
                Ok((p, n, taken)) => {
                    publish = p;
                    next = n;
                    if outcome.status != Status::Succeeded && !taken {
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
            },
        );
        self.write(&entries, true)
    }

    /// Evaluate a finished task's transitions in order: every one whose
    /// `when` holds (default: the task succeeded) publishes and leads on.
    #[allow(clippy::type_complexity)]
    fn transitions(
        &self,
        name: &str,
        outcome: &SlotOutcome,
    ) -> Result<(serde_json::Map<String, Value>, Vec<String>, bool), Failure> {
        let task = self.task(name);
        let error = outcome
            .error
            .as_ref()
            .map(|e| serde_json::to_value(e).unwrap_or_default());
        let null = Value::Null;
        let mut ctx = self.state.ctx.clone();
        let mut publish = serde_json::Map::new();
        let mut next = Vec::new();
        let mut taken = false;
        for (i, t) in task.next.iter().enumerate() {
            let at = format!("tasks.{name}.next[{i}]");
            let scope = Scope {
                input: Some(&self.state.input),
                ctx: Some(&ctx),
                result: Some(outcome.result.as_ref().unwrap_or(&null)),
                error: Some(error.as_ref().unwrap_or(&null)),
                item: None,
                status: Some(outcome.status.as_str()),
            };
            let go = match &t.when {
                None => outcome.status == Status::Succeeded,
                Some(w) => self
                    .exprs()
                    .condition(w, scope)
                    .map_err(|e| expression_failure(&format!("{at}.when"), &e))?,
            };
            if !go {
                continue;
            }
            taken = true;
            let mut published = Vec::new();
            for (k, v) in &t.publish {
                let value = self
                    .exprs()
                    .render(v, scope)
                    .map_err(|e| expression_failure(&format!("{at}.publish.{k}"), &e))?;
                published.push((k.clone(), value));
            }
            for (k, v) in published {
                ctx.insert(k.clone(), v.clone());
                publish.insert(k, v);
            }
            next.extend(t.to.iter().cloned());
        }
        Ok((publish, next, taken))
    }

    /// Start every slot that may start now.
    fn dispatch(&mut self) -> Result<(), WorkflowError> {
        // Runs are added while this walks them (a reused run's transitions
        // start the next ones): the bound is re-read each time round.
        let mut run = 0;
        while run < self.state.runs.len() {
            let this = run;
            run += 1;
            let run = this;
            if self.stopping() {
                return Ok(());
            }
            if self.state.runs[run].completed.is_some() {
                continue;
            }
            let name = self.state.runs[run].name.clone();
            if self.try_reuse(run)? {
                continue;
            }
            let task = self.task(&name).clone();
            if let (Some(items), None) = (&task.with_items, &self.state.runs[run].items) {
                let scope = Scope {
                    input: Some(&self.state.input),
                    ctx: Some(&self.state.ctx),
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
                        self.conclude(run, failed(f))?;
                        continue;
                    }
                    Err(e) => {
                        let f = expression_failure(&format!("tasks.{name}.with-items"), &e);
                        self.conclude(run, failed(f))?;
                        continue;
                    }
                }
            }
            let limit = task.concurrency.map(|c| c as usize).unwrap_or(usize::MAX);
            for slot in 0..self.state.runs[run].slots.len() {
                let r = &self.state.runs[run];
                if r.running() >= limit || r.has_failed_slot() {
                    break;
                }
                if !r.slots[slot].is_idle() {
                    continue;
                }
                self.start_slot(run, slot, None)?;
            }
        }
        Ok(())
    }

    /// With `re-run --from`, a run of a task before TASK takes the earlier
    /// execution's outcome of the same run (same task, same occurrence).
    fn try_reuse(&mut self, run: usize) -> Result<bool, WorkflowError> {
        let Some(reuse) = &self.reuse else {
            return Ok(false);
        };
        let name = &self.state.runs[run].name;
        if reuse.rerun.contains(name)
            || self.state.runs[run].slots.iter().any(|s| s.child.is_some())
        {
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
        for (slot, s) in old.slots.iter().enumerate() {
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
        if let Some(child) = old.slots.iter().find_map(|s| s.child) {
            self.reused.insert(run, child);
        }
        self.write(&entries, false)?;
        let outcome = old.completed.clone().expect("filtered on completed");
        self.conclude(run, outcome)?;
        Ok(true)
    }

    /// Render a slot's input and grants and hand it to an action. `restart`
    /// is the input of an attempt that was running when the host stopped.
    fn start_slot(
        &mut self,
        run: usize,
        slot: usize,
        restart: Option<Value>,
    ) -> Result<(), WorkflowError> {
        let r = &self.state.runs[run];
        let name = r.name.clone();
        let task = self.task(&name).clone();
        let item = r.items.as_ref().map(|items| items[slot].clone());
        let s: &Slot = &r.slots[slot];
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
                let scope = Scope {
                    input: Some(&self.state.input),
                    ctx: Some(&self.state.ctx),
                    item: item.as_ref(),
                    ..Scope::default()
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
        let grants = match self.task_grants(&task, item.as_ref()) {
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
            Duration::ZERO
        };
        let child = ExecutionId::new();
        // On disk before the action starts (see `launch`), with the entries
        // it depends on: after a crash the journal names every attempt
        // that may have run, so none is lost from the records.
        self.write(
            &[Entry::Dispatch {
                run,
                slot,
                attempt,
                child,
                input: input.clone(),
            }],
            false,
        )?;
        let action = match self.def.action_ref(&task).and_then(|a| match a {
            ActionRef::Pack(name) => {
                resolve_pack(&*self.sched.inner.components, &name, &self.def.dir)
            }
            other => Ok(other),
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

    /// Start the attempts dispatched since the last launch, once their
    /// `Dispatch` entries are on disk: one fsync for a whole wave.
    fn launch(&mut self) -> Result<(), WorkflowError> {
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
    fn settle_now(&mut self, run: usize, slot: usize, f: Failure) -> Result<(), WorkflowError> {
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
    fn task_grants(&self, task: &Task, item: Option<&Value>) -> Result<Grants, String> {
        let Some(spec) = task.grants.as_ref().or(self.def.workflow.grants.as_ref()) else {
            return Ok(Grants::default());
        };
        let scope = Scope {
            input: Some(&self.state.input),
            ctx: Some(&self.state.ctx),
            item,
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
    fn settle(&mut self, done: Done) -> Result<(), WorkflowError> {
        let Done {
            run,
            slot,
            child,
            outcome,
            elapsed,
        } = done;
        let name = self.state.runs[run].name.clone();
        let attempt = self.state.runs[run].slots[slot].attempt;
        let retry = !self.stopping() && self.should_retry(&name, attempt, &outcome);
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

    fn should_retry(&self, name: &str, attempt: u32, outcome: &SlotOutcome) -> bool {
        if matches!(outcome.status, Status::Succeeded | Status::Canceled) {
            return false;
        }
        let Some(retry) = &self.task(name).retry else {
            return false;
        };
        if attempt > retry.count {
            return false;
        }
        match &retry.when {
            None => true,
            Some(w) => {
                let error = outcome
                    .error
                    .as_ref()
                    .map(|e| serde_json::to_value(e).unwrap_or_default());
                let null = Value::Null;
                let scope = Scope {
                    input: Some(&self.state.input),
                    ctx: Some(&self.state.ctx),
                    result: Some(outcome.result.as_ref().unwrap_or(&null)),
                    error: Some(error.as_ref().unwrap_or(&null)),
                    item: None,
                    status: Some(outcome.status.as_str()),
                };
                // A `when` that cannot be evaluated does not retry; the
                // failure stands as it is.
                self.exprs().condition(w, scope).unwrap_or(false)
            }
        }
    }

    /// After a restart: settle attempts whose action finished before the
    /// host stopped, resume nested workflows, start the rest again.
    async fn recover(&mut self) -> Result<(), WorkflowError> {
        let store = self.sched.runtime().store().clone();
        let mut restart = Vec::new();
        for (run, r) in self.state.runs.iter().enumerate() {
            for (slot, s) in r.slots.iter().enumerate() {
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
                    let outcome = SlotOutcome {
                        status: rec.status,
                        result: rec.result.clone(),
                        error: rec.error.clone(),
                    };
                    self.settle(Done {
                        run,
                        slot,
                        child: Some(child),
                        outcome,
                        elapsed: rec.elapsed().unwrap_or_default(),
                    })?;
                }
                Some(rec) if rec.kind == Kind::Workflow => {
                    let sched = self.sched.clone();
                    let cancel = self.req.cancel.child_token();
                    let observer = self.req.observer.clone();
                    self.jobs.spawn(async move {
                        let started = Instant::now();
                        let outcome =
                            match Box::pin(sched.resume_boxed(child, cancel, observer)).await {
                                Ok(rec) => outcome_of(&rec),
                                Err(e) => failed(failure(code::RESUME, &e.to_string())),
                            };
                        Done {
                            run,
                            slot,
                            child: Some(child),
                            outcome,
                            elapsed: started.elapsed(),
                        }
                    });
                }
                other => {
                    // The action was running when the host stopped: its
                    // record says so (made from the journal when the task
                    // had not written one yet), and the task starts again.
                    let input = input.unwrap_or(Value::Null);
                    let mut rec = match other {
                        Some(rec) => rec,
                        None => self.lost_attempt(run, slot, child, input.clone()),
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

    /// The record of an attempt that was dispatched (the journal says so)
    /// but had not written its own record when the host stopped.
    fn lost_attempt(
        &self,
        run: usize,
        slot: usize,
        child: ExecutionId,
        input: Value,
    ) -> ExecutionRecord {
        let r = &self.state.runs[run];
        let task = self.task(&r.name);
        let loaded = self
            .def
            .action_ref(task)
            .ok()
            .filter(|a| matches!(a, ActionRef::Component(_) | ActionRef::Oci(_)))
            .and_then(|a| self.sched.load(&a).ok());
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
        rec.attempt = r.slots[slot].attempt.max(1);
        rec.status = Status::Running;
        rec
    }

    /// Write the end, update the workflow's record, and return it.
    fn finish(mut self) -> Result<ExecutionRecord, WorkflowError> {
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
        let (status, result, error) = self.state.ended.clone().expect("just ended");
        self.record.end(status, result, error);
        self.sched.runtime().store().put(&self.record)?;
        Ok(self.record)
    }

    fn output(&self) -> Result<Value, Failure> {
        let mut out = serde_json::Map::new();
        for (k, v) in &self.def.workflow.output {
            let scope = Scope {
                input: Some(&self.state.input),
                ctx: Some(&self.state.ctx),
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

impl Scheduler {
    fn resume_boxed(
        &self,
        id: ExecutionId,
        cancel: CancellationToken,
        observer: Option<Arc<dyn Observer>>,
    ) -> BoxFuture<Result<ExecutionRecord, WorkflowError>> {
        let me = self.clone();
        Box::pin(async move { me.resume(id, cancel, observer).await })
    }

    fn run_boxed(&self, req: Request) -> BoxFuture<Result<ExecutionRecord, WorkflowError>> {
        let me = self.clone();
        Box::pin(async move { me.run(req).await })
    }
}

/// One attempt of one slot, away from the driver.
struct Job {
    sched: Scheduler,
    action: ActionRef,
    input: Value,
    options: RunOptions,
    observer: Option<Arc<dyn Observer>>,
    delay: Duration,
}

impl Job {
    async fn run(self) -> (Option<ExecutionId>, SlotOutcome) {
        let cancel = self.options.cancel.clone().unwrap_or_default();
        if !self.delay.is_zero() {
            tokio::select! {
                () = tokio::time::sleep(self.delay) => {}
                () = cancel.cancelled() => {
                    return (None, SlotOutcome {
                        status: Status::Canceled,
                        result: None,
                        error: Some(failure(code::CANCELED, "canceled while waiting to retry")),
                    });
                }
            }
        }
        let child = self.options.lineage.id;
        match &self.action {
            // Resolved to a component or workflow before the job starts.
            ActionRef::Component(_) | ActionRef::Oci(_) | ActionRef::Pack(_) => {
                let action = match self.sched.load(&self.action) {
                    Ok(a) => a,
                    Err(e) => return (None, failed(failure(code::ACTION, &e))),
                };
                match self
                    .sched
                    .runtime()
                    .run(&action, self.input, self.options)
                    .await
                {
                    Ok(rec) => (child, outcome_of(&rec)),
                    Err(RuntimeError::Input(e)) => {
                        (None, failed(failure(code::INVALID_INPUT, &e.to_string())))
                    }
                    Err(e) => (None, failed(failure(code::ACTION, &e.to_string()))),
                }
            }
            ActionRef::Workflow(path) => {
                let def = match Definition::load(path) {
                    Ok(d) => Arc::new(d),
                    Err(p) => return (None, failed(failure(code::WORKFLOW, &p.to_string()))),
                };
                let o = self.options;
                let req = Request {
                    grants: o.grants,
                    limits: o.limits,
                    lineage: o.lineage,
                    cancel,
                    observer: self.observer,
                    ..Request::new(def, self.input)
                };
                match self.sched.run_boxed(req).await {
                    Ok(rec) => (child, outcome_of(&rec)),
                    Err(WorkflowError::Input(e)) => {
                        (None, failed(failure(code::INVALID_INPUT, &e)))
                    }
                    Err(e) => (None, failed(failure(code::WORKFLOW, &e.to_string()))),
                }
            }
        }
    }
}

fn outcome_of(rec: &ExecutionRecord) -> SlotOutcome {
    SlotOutcome {
        status: rec.status,
        result: rec.result.clone(),
        error: rec.error.clone(),
    }
}

fn failed(f: Failure) -> SlotOutcome {
    SlotOutcome {
        status: Status::Failed,
        result: None,
        error: Some(f),
    }
}

fn failure(code: &str, message: &str) -> Failure {
    Failure::new(code, message)
}

fn expression_failure(at: &str, e: &str) -> Failure {
    failure(code::EXPRESSION, &format!("{at}: {e}"))
}

/// The wait before `attempt` (2 is the first retry): `delay`, times
/// `backoff` for each retry after the first.
fn retry_delay(task: &Task, attempt: u32) -> Duration {
    let Some(r) = &task.retry else {
        return Duration::ZERO;
    };
    let base = r
        .delay
        .as_deref()
        .and_then(|d| duration(d).ok())
        .unwrap_or(Duration::ZERO);
    let factor = r
        .backoff
        .unwrap_or(1.0)
        .powi(attempt.saturating_sub(2) as i32);
    base.mul_f64(factor)
}
