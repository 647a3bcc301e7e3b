//! Runs workflows: dispatches tasks on tokio as their transitions allow,
//! each as a child execution, and journals every transition in the store
//! before anything that depends on it starts.
//!
//! Here: the public API (start, resume, read a journal). The layers under
//! it, each using only those below: `driver` (one execution's event loop
//! and its journal writes), `job` (starting one attempt), `recover` (what
//! a restart finds running), `decide` (pure decisions: a run's outcome,
//! transitions, retries), and `crate::journal` (the entries and the state
//! they fold to).

// Expression failures travel as the `Failure` they are journaled as; they
// are rare, and boxing them would only add noise to every `?`.
#![allow(clippy::result_large_err)]

mod decide;
mod driver;
mod job;
mod recover;
mod remote;

use driver::Driver;

use crate::components::{Components, NoRegistry};
use crate::definition::{ActionRef, Definition};
use crate::expr::Expressions;
use crate::journal::{Entry, State};
use crate::WorkflowError;
use serde_json::Value;
use std::collections::BTreeSet;
use std::future::Future;
use std::path::Path;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;
use wasmflow_runtime::LoadedFrom;
use wasmflow_runtime::{Action, CancellationToken, Runtime};
use wasmflow_store::{now, ExecutionId, ExecutionRecord, Grants, Kind, Limits, Lineage, Status};

/// Told what the scheduler does, for progress displays.
pub trait Observer: Send + Sync {
    fn task_started(&self, workflow: &str, task: &str, item: Option<usize>);
    fn task_finished(&self, workflow: &str, task: &str, status: Status, elapsed: Duration);
}

/// What to run, under which grants, and where the execution sits.
#[derive(Clone)]
pub struct Request {
    pub definition: Arc<Definition>,
    /// How its record names it (a catalog's or pack's name); by default
    /// the workflow file's path.
    pub name: Option<String>,
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
    /// Cancelled to pause the workflow: no task starts after it, running
    /// ones finish, and the run returns a `paused` record (see
    /// [`Scheduler::resume_paused`]).
    pub pause: CancellationToken,
    pub observer: Option<Arc<dyn Observer>>,
    /// Told the execution's id once its record is on disk (a front end
    /// prints it then, never before: an id it prints can be looked up).
    pub recorded: Option<Arc<dyn Fn(ExecutionId) + Send + Sync>>,
    /// A rehearsal (`wasmflow workflow test`): no action runs, each task
    /// takes its mock's outcome.
    pub rehearsal: Option<Arc<crate::rehearsal::Rehearsal>>,
}

impl Request {
    pub fn new(definition: Arc<Definition>, input: Value) -> Self {
        Self {
            definition,
            name: None,
            input,
            grants: Grants::default(),
            limits: Limits::default(),
            lineage: Lineage::default(),
            from: None,
            cancel: CancellationToken::new(),
            pause: CancellationToken::new(),
            observer: None,
            recorded: None,
            rehearsal: None,
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
    /// Where `oci://` task actions come from.
    components: Arc<dyn Components>,
    /// Task actions go to the store's shared queue, for any worker (see
    /// `remote`), instead of running in this process.
    queue_tasks: bool,
}

type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send>>;

impl Scheduler {
    pub fn new(runtime: Runtime) -> Self {
        Self::with_components(runtime, Arc::new(NoRegistry))
    }

    /// A scheduler that runs `oci://` task actions from `components`.
    /// Expressions read the runtime's datastore (`kv()`, `secret()`; see
    /// [`Runtime::use_keys`]).
    pub fn with_components(runtime: Runtime, components: Arc<dyn Components>) -> Self {
        Self {
            inner: Arc::new(Inner {
                exprs: Expressions::with_keys(runtime.keys().cloned()),
                runtime,
                components,
                queue_tasks: false,
            }),
        }
    }

    /// This scheduler queues its workflows' action tasks on the store's
    /// shared queue, for whichever worker claims them, instead of running
    /// them itself (nested workflows still run here). For the workers of
    /// a store many processes share; elsewhere it changes nothing.
    pub fn queuing_tasks(mut self) -> Self {
        let queue = self.inner.runtime.store().shared_queue().is_some();
        Arc::get_mut(&mut self.inner)
            .expect("set before the scheduler is shared")
            .queue_tasks = queue;
        self
    }

    /// Whether task actions go to the shared queue ([`Scheduler::queuing_tasks`]).
    fn queues_tasks(&self) -> bool {
        self.inner.queue_tasks
    }

    /// The expression engine its workflows are rendered with (`kv()` and
    /// `secret()` reading the runtime's datastore): one per process, for
    /// the event bus's rules too.
    pub fn expressions(&self) -> &Expressions {
        &self.inner.exprs
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
        let path = def.source.path.display().to_string();
        let mut record = ExecutionRecord::new_workflow(
            req.name.clone().unwrap_or_else(|| path.clone()),
            digest.to_string(),
            input.clone(),
        );
        record.source = Some(path);
        req.lineage.clone().apply(&mut record);
        record.grants = req.grants.clone();
        // Values given in clear are kept sealed (the tasks get the
        // operator's grants as they are, and seal them in their records).
        self.runtime().seal(&mut record.grants)?;
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
        pause: CancellationToken,
        observer: Option<Arc<dyn Observer>>,
    ) -> Result<ExecutionRecord, WorkflowError> {
        self.go_on(id, cancel, pause, observer, false).await
    }

    /// Go on with a paused workflow execution: `Resume` in its journal,
    /// `running` again, its tasks starting where they stopped; `pause`
    /// pauses it again.
    pub async fn resume_paused(
        &self,
        id: ExecutionId,
        cancel: CancellationToken,
        pause: CancellationToken,
        observer: Option<Arc<dyn Observer>>,
    ) -> Result<ExecutionRecord, WorkflowError> {
        self.go_on(id, cancel, pause, observer, true).await
    }

    async fn go_on(
        &self,
        id: ExecutionId,
        cancel: CancellationToken,
        pause: CancellationToken,
        observer: Option<Arc<dyn Observer>>,
        unpause: bool,
    ) -> Result<ExecutionRecord, WorkflowError> {
        let store = self.runtime().store();
        let record = store
            .get(id)?
            .ok_or_else(|| WorkflowError::NotFound(id.to_string()))?;
        if record.kind != Kind::Workflow {
            return Err(WorkflowError::NotAWorkflow(id.to_string()));
        }
        let not_paused = || WorkflowError::NotPaused {
            id: id.to_string(),
            status: record.status,
        };
        if unpause && record.status != Status::Paused {
            return Err(not_paused());
        }
        if record.is_finished() {
            return Ok(record);
        }
        // A nested workflow paused on its inquiries goes on when its
        // parent resumes it (only questions pause a nested one).
        let unpause = unpause || record.status == Status::Paused && record.parent.is_some();
        if !unpause && record.status == Status::Paused {
            return Err(not_paused());
        }
        let def = Arc::new(self.recorded_definition(&record)?);
        let entries = self.journal(id)?;
        let req = Request {
            grants: record.grants.clone(),
            limits: record.limits,
            lineage: Lineage::of(&record),
            cancel,
            pause,
            observer,
            name: Some(record.action.clone()),
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
        if unpause {
            if driver.state.paused {
                driver.write(&[Entry::Resume], true)?;
            }
            driver.record.status = Status::Running;
            store.put(&driver.record)?;
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
        Definition::parse(Path::new(record.source_path()), text).map_err(WorkflowError::Problems)
    }

    /// A workflow execution as a graph: its recorded workflow, in the
    /// state its journal folds to, with its task records' times.
    pub fn graph(&self, record: &ExecutionRecord) -> Result<crate::graph::Graph, WorkflowError> {
        let def = self.recorded_definition(record)?;
        let state = State::fold(&def.workflow, &self.journal(record.id)?);
        let children = self.runtime().store().children(record.id)?;
        Ok(crate::graph::Graph::of(&def.workflow, &state, &children))
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

    /// A task's component, loaded once per runtime (keyed by its path or
    /// its `oci://` reference; see [`Runtime::loaded`]).
    async fn load(&self, action: &ActionRef) -> Result<Action, String> {
        let rt = &self.inner.runtime;
        let from = match action {
            ActionRef::Component(p) | ActionRef::Workflow(p) => LoadedFrom::Path(p.clone()),
            ActionRef::Oci(r) => LoadedFrom::Reference(r.clone()),
            ActionRef::Pack(name) => {
                return Err(format!("{name}: packs are resolved before loading"))
            }
            ActionRef::Ask => return Err("core.ask is answered by a person, not run".into()),
        };
        if let Some(a) = rt.loaded(&from) {
            return Ok(a);
        }
        let loaded = match &from {
            LoadedFrom::Reference(r) => {
                let (pinned, bytes) = self.inner.components.oci(r).await?;
                rt.load_bytes(&pinned, bytes)
            }
            LoadedFrom::Path(p) => rt.load(p),
            LoadedFrom::Digest(_) => unreachable!("not named by a task"),
        };
        let action = loaded.map_err(|e| e.to_string())?;
        rt.remember(from, &action);
        Ok(action)
    }
}

/// What `re-run --from` keeps from the earlier execution.
struct Reuse {
    /// TASK and everything after it: these run live.
    pub(super) rerun: BTreeSet<String>,
    pub(super) state: State,
}

impl Scheduler {
    fn resume_boxed(
        &self,
        id: ExecutionId,
        cancel: CancellationToken,
        observer: Option<Arc<dyn Observer>>,
    ) -> BoxFuture<Result<ExecutionRecord, WorkflowError>> {
        let me = self.clone();
        // A nested workflow is a task of its parent: it runs to its end
        // when the parent pauses.
        let pause = CancellationToken::new();
        Box::pin(async move { me.resume(id, cancel, pause, observer).await })
    }

    fn run_boxed(&self, req: Request) -> BoxFuture<Result<ExecutionRecord, WorkflowError>> {
        let me = self.clone();
        Box::pin(async move { me.run(req).await })
    }
}
