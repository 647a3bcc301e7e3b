//! The server's shared state and its workers: each worker takes the next
//! accepted execution from the queue, runs it (an action through the
//! runtime, a workflow through the scheduler, resuming it if a previous
//! process was interrupted), tells followers what happens, and takes it
//! out of the queue once its record is final.

use crate::catalog::Catalog;
use crate::live::{Live, LiveEvent};
use crate::metrics::Metrics;
use crate::queue::{AcceptError, Payload, Queue, Ticket};
use crate::tokens::Tokens;
use crate::webhooks::Webhooks;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::{Duration, SystemTime};
use tokio_util::sync::CancellationToken;
use wasmflow_runtime::LoadedFrom;
use wasmflow_runtime::{Action, LogWatcher, RunOptions, Runtime};
use wasmflow_store::{
    code, ExecutionId, ExecutionRecord, Failure, Grants, Kind, Limits, Lineage, Status,
};
use wasmflow_workflow::{Observer, Request, Scheduler};

/// Everything a request handler or a worker needs.
pub struct App {
    pub rt: Runtime,
    pub sched: Scheduler,
    pub catalog: Catalog,
    pub queue: Queue,
    pub tokens: Tokens,
    pub webhooks: Arc<Webhooks>,
    pub metrics: Metrics,
    pub live: Arc<Live>,
    /// The most any execution may be granted (the `serve` flags).
    pub grants: Grants,
    pub limits: Limits,
    /// Set on SIGTERM: no new work is accepted.
    pub draining: AtomicBool,
    /// Where `oci://` references asked for by the API come from.
    pub components: Option<Arc<dyn wasmflow_workflow::Components>>,
    /// The event bus's rules (`serve --rules DIR`).
    pub rules: Vec<wasmflow_events::Rule>,
    /// The trigger types: built in, and declared by the installed packs.
    pub trigger_types: Vec<wasmflow_events::TriggerType>,
    /// Rules enabled or disabled by the operator since (`rule
    /// enable|disable`), by name: kept as settings of the datastore.
    pub rule_states: std::sync::RwLock<std::collections::HashMap<String, bool>>,
}

impl App {
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        rt: Runtime,
        sched: Scheduler,
        catalog: Catalog,
        queue: Queue,
        tokens: Tokens,
        webhooks: Arc<Webhooks>,
        grants: Grants,
        limits: Limits,
    ) -> Self {
        Self {
            rt,
            sched,
            catalog,
            queue,
            tokens,
            webhooks,
            metrics: Metrics::default(),
            live: Arc::default(),
            grants,
            limits,
            draining: AtomicBool::new(false),
            components: None,
            rules: Vec::new(),
            trigger_types: wasmflow_events::trigger::built_in(),
            rule_states: Default::default(),
        }
    }

    /// Whether `rule` is enabled: as the operator last set it, else as
    /// its file says.
    pub fn rule_enabled(&self, rule: &wasmflow_events::Rule) -> bool {
        let states = self.rule_states.read().unwrap_or_else(|e| e.into_inner());
        states.get(&rule.name).copied().unwrap_or(rule.enabled)
    }

    /// The action a record runs: from the catalog when it is one of its
    /// components, else from the store by digest (loaded once).
    pub fn action_of(&self, record: &ExecutionRecord) -> Result<Action, String> {
        let mut action = self.component_of(record)?;
        // Found by its digest, named as the record is: an `oci://`
        // reference to a component the catalog also serves under another
        // name keeps its reference.
        action.reference.clone_from(&record.action);
        Ok(action)
    }

    fn component_of(&self, record: &ExecutionRecord) -> Result<Action, String> {
        if let Some(a) = self.catalog.action_by_digest(&record.component_digest) {
            return Ok(a.clone());
        }
        let from = LoadedFrom::Digest(record.component_digest.clone());
        if let Some(a) = self.rt.loaded(&from) {
            return Ok(a);
        }
        // A compilation may take up to the compile limit: not under the
        // lock, and with this async worker thread handed over meanwhile.
        let a = blocking(|| self.rt.load_executed(record)).map_err(|e| e.to_string())?;
        self.rt.remember(from, &a);
        Ok(a)
    }

    pub fn update_depth(&self) {
        let (pending, running) = self.queue.depth();
        self.metrics.queue_depth(pending, running);
    }

    /// Accept a pending record into the queue. Its live channel opens
    /// first, so followers miss nothing a fast worker says. On a shared
    /// store the process that claims it opens one instead (followers
    /// elsewhere read its record when it ends). Env values given in clear,
    /// and an action's secret parameters, are sealed before it is written
    /// (see `Runtime::seal`).
    pub async fn submit(
        &self,
        record: &ExecutionRecord,
        payload: Payload,
    ) -> Result<(), AcceptError> {
        let mut sealed = record.clone();
        let unsealable = |e: String| AcceptError::Store(wasmflow_store::StoreError::Other(e));
        self.rt
            .seal(&mut sealed.grants)
            .map_err(|e| unsealable(e.to_string()))?;
        if record.kind == wasmflow_store::Kind::Action {
            let action = self.action_of(record).map_err(unsealable)?;
            self.rt
                .seal_input(&action, &mut sealed.input)
                .map_err(|e| unsealable(e.to_string()))?;
        }
        let record = &sealed;
        let shared = self.queue.leasing().is_some();
        if !shared {
            self.live.open(record.id);
        }
        match self.queue.accept(record, payload).await {
            Ok(()) => {
                self.metrics.accepted();
                self.update_depth();
                Ok(())
            }
            Err(e) => {
                self.live.forget(record.id);
                if matches!(e, AcceptError::Full(_)) {
                    self.metrics.rejected_full();
                }
                Err(e)
            }
        }
    }
}

/// Take tickets until `stop`; a ticket taken is run to its end. On a
/// shared store the slot takes actions only (workflows go to `drive`).
pub async fn work(app: Arc<App>, worker: usize, stop: CancellationToken) {
    loop {
        let ticket = tokio::select! {
            biased;
            _ = stop.cancelled() => return,
            ticket = app.queue.next(worker, Kind::Action) => ticket,
        };
        let Some(ticket) = ticket else { return };
        run_ticket(&app, worker, ticket).await;
    }
}

/// On a shared store: claim workflows until `stop`, up to `max` at a
/// time, each driven on a task of its own and shown in the queue view as
/// slot `first + k`. A workflow spends its time waiting for its tasks,
/// which are queue entries any process's action slots run: a workflow
/// holding an action slot would leave none for its tasks.
pub async fn drive(app: Arc<App>, first: usize, max: usize, stop: CancellationToken) {
    let free = Arc::new(std::sync::Mutex::new(
        (first..first + max).rev().collect::<Vec<_>>(),
    ));
    let permits = Arc::new(tokio::sync::Semaphore::new(max));
    let mut driving = tokio::task::JoinSet::new();
    loop {
        let permit = tokio::select! {
            biased;
            _ = stop.cancelled() => break,
            p = permits.clone().acquire_owned() => p.expect("never closed"),
        };
        let slot = free
            .lock()
            .expect("not poisoned")
            .pop()
            .expect("a slot per permit");
        let ticket = tokio::select! {
            biased;
            _ = stop.cancelled() => break,
            ticket = app.queue.next(slot, Kind::Workflow) => ticket,
        };
        let Some(ticket) = ticket else { break };
        let (app, free) = (app.clone(), free.clone());
        driving.spawn(async move {
            run_ticket(&app, slot, ticket).await;
            free.lock().expect("not poisoned").push(slot);
            drop(permit);
        });
        // Reap the ended ones as we go.
        while driving.try_join_next().is_some() {}
    }
    while driving.join_next().await.is_some() {}
}

async fn run_ticket(app: &Arc<App>, worker: usize, mut ticket: Ticket) {
    let store = app.rt.store();
    let claimed = ticket.record.take().map(|r| Ok(Some(*r)));
    let record = match claimed.unwrap_or_else(|| store.get(ticket.id)) {
        Ok(Some(r)) if !r.is_finished() => r,
        Ok(_) => {
            // Canceled while it waited (or its record is gone).
            app.queue.done(&ticket);
            app.update_depth();
            return;
        }
        Err(e) => {
            tracing::error!("reading {}: {e}", ticket.id);
            return;
        }
    };
    if app.queue.leasing().is_some() {
        app.live.open(ticket.id);
    }
    let Some(entry) = app.queue.start(ticket.id, worker) else {
        app.live.forget(ticket.id);
        app.queue.done(&ticket);
        return;
    };
    let record = match taken_over(app, &ticket, record) {
        Ok(record) => record,
        Err(record) => {
            // Lost with its worker too often: it ends here.
            finish(app, ticket, record.action.clone(), *record, None, None);
            return;
        }
    };
    app.update_depth();
    app.metrics.started(
        SystemTime::now()
            .duration_since(record.created_at)
            .unwrap_or(Duration::ZERO),
    );
    let name = app
        .catalog
        .name_of_digest(&record.component_digest)
        .unwrap_or(&record.action)
        .to_owned();
    let id = record.id;
    let asked_to_cancel = entry.cancel.clone();
    let run = async {
        match record.kind {
            // An action's end is written by `finish` with others'; a
            // workflow writes its own.
            Kind::Action => run_action(app, worker, record.clone(), entry.cancel)
                .await
                .map(|ended| (ended.record, Some(ended.events))),
            Kind::Workflow => {
                let tokens = (entry.cancel, entry.pause);
                run_workflow(app, record.clone(), entry.payload, tokens)
                    .await
                    .map(|record| (record, None))
            }
        }
    };
    let outcome = tokio::select! {
        outcome = run => outcome,
        () = entry.lost.cancelled() => {
            // Dropped where it stands (a guest at its next epoch tick or
            // host call; a workflow's jobs with it): nothing more is
            // written from here.
            app.live.forget(id);
            app.queue.let_go(&ticket);
            app.update_depth();
            return;
        }
    };
    let (finished, events) = match outcome {
        Ok(ran) => ran,
        Err(message) => {
            let mut r = store.get(id).ok().flatten().unwrap_or(record);
            r.fail(Status::Failed, Failure::new(code::SERVER, message));
            if let Err(e) = store.put_unflushed(&r) {
                tracing::error!("recording the failure of {id}: {e}");
                return;
            }
            (r, None)
        }
    };
    finish(app, ticket, name, finished, events, Some(asked_to_cancel));
}

/// The record is final but maybe not written (an action's: `events` is
/// then what it received) or not on disk yet. The worker moves on; the
/// execution ends for everyone else (followers, the queue, the metrics)
/// once a shared flush has written it and has it on disk. `cancel` is
/// the token a cancel request of it reached while it ran.
fn finish(
    app: &Arc<App>,
    ticket: Ticket,
    name: String,
    finished: ExecutionRecord,
    events: Option<Vec<wasmflow_store::Event>>,
    cancel: Option<CancellationToken>,
) {
    let id = finished.id;
    let ended = events.map(|events| wasmflow_runtime::Ended {
        record: finished.clone(),
        events,
    });
    let task_app = app.clone();
    app.queue.ending(async move {
        let app = task_app;
        if let Err(e) = app.queue.finished(&ticket, ended).await {
            tracing::error!("flushing the record of {id}: {e}");
            return;
        }
        let finished = cancel_if_asked(&app, finished, cancel.as_ref());
        // A workflow's task (queued by its workflow on a shared store)
        // counts and triggers as its workflow's part, as it does where the
        // workflow runs its tasks itself.
        if finished.parent.is_none() {
            app.metrics
                .ended(&name, finished.status.as_str(), finished.elapsed());
            crate::bus::execution_ended(&app, &finished, &name);
            crate::bus::inquiries_opened(&app, &finished);
        }
        app.live.end(id, finished.status);
        app.update_depth();
    });
}

/// A workflow that paused while a cancel request reached its queue entry
/// (after its loop last looked at the token) is canceled now, where it
/// stands, as `cancel` does to a paused workflow it finds out of the
/// queue: its entry is gone by now, so a later request takes that path,
/// and none is lost between the two.
fn cancel_if_asked(
    app: &App,
    finished: ExecutionRecord,
    cancel: Option<&CancellationToken>,
) -> ExecutionRecord {
    if finished.status != Status::Paused || !cancel.is_some_and(|c| c.is_cancelled()) {
        return finished;
    }
    let store = app.rt.store();
    let id = finished.id;
    blocking(|| match store.get(id) {
        // Not resumed meanwhile (a resume queues it again, running).
        Ok(Some(paused)) if paused.status == Status::Paused => {
            match wasmflow_workflow::cancel::cancel_tree(store, paused) {
                Ok(_) => store.get(id).ok().flatten().unwrap_or(finished),
                Err(e) => {
                    tracing::error!("canceling paused workflow {id}: {e}");
                    finished
                }
            }
        }
        _ => finished,
    })
}

/// A claim that takes over from a lost worker (its lease ran out): say
/// so in the record, which then starts over (an action, as its next
/// attempt) or resumes from its journal (a workflow). After
/// `max_lost` lost holders it fails with `worker-lost` instead (`Err`,
/// the failed record, not yet flushed).
fn taken_over(
    app: &App,
    ticket: &Ticket,
    mut record: ExecutionRecord,
) -> Result<ExecutionRecord, Box<ExecutionRecord>> {
    let (Some(lost_by), Some(leasing)) = (&ticket.lost_by, app.queue.leasing()) else {
        return Ok(record);
    };
    let store = app.rt.store();
    if ticket.lost >= leasing.max_lost {
        let message = format!(
            "its worker was lost {} times (the last: {lost_by}, whose lease ran out); not started again",
            ticket.lost
        );
        tracing::warn!("execution {}: {message}", record.id);
        record.fail(Status::Failed, Failure::new(code::WORKER_LOST, message));
        if let Err(e) = store.put_unflushed(&record) {
            tracing::error!("recording the failure of {}: {e}", record.id);
        }
        return Err(Box::new(record));
    }
    let next = match record.kind {
        Kind::Action => "starts over",
        Kind::Workflow => "resumes from its journal",
    };
    let message = format!(
        "worker {lost_by} was lost (its lease ran out); {} takes over and the execution {next}",
        leasing.name
    );
    tracing::warn!("execution {}: {message}", record.id);
    record.logs.push(wasmflow_store::LogLine {
        at_ms: 0,
        level: wasmflow_store::LogLevel::Warn,
        message,
        progress: None,
    });
    if let Err(e) = store.put_unflushed(&record) {
        tracing::error!("recording the takeover of {}: {e}", record.id);
    }
    Ok(record)
}

async fn run_action(
    app: &App,
    worker: usize,
    record: ExecutionRecord,
    cancel: CancellationToken,
) -> Result<wasmflow_runtime::Ended, String> {
    let action = app.action_of(&record)?;
    let (live, id) = (app.live.clone(), record.id);
    let live = LogWatcher(Arc::new(move |line| {
        live.say(id, LiveEvent::Log(line.clone()))
    }));
    // Started before (a server stopped or was killed while it ran): this
    // is its next attempt, under the same id.
    let attempt = record.attempt + u32::from(record.started_at.is_some());
    let lineage = Lineage {
        worker: Some(match app.queue.leasing() {
            Some(leasing) => format!("{}/{worker}", leasing.name),
            None => format!("server/{worker}"),
        }),
        ..Lineage::of(&record)
    };
    let options = RunOptions {
        attempt,
        grants: record.grants,
        limits: record.limits,
        lineage,
        cancel: Some(cancel),
        watch_logs: Some(live),
        // A takeover's note (see `taken_over`): the one line of an earlier
        // attempt the new record keeps.
        notes: record.logs,
        // Its end is written by `finish`, with whatever else ended
        // meanwhile (`run_unwritten`).
        ..RunOptions::default()
    };
    app.rt
        .run_unwritten(&action, record.input, options)
        .await
        .map_err(|e| e.to_string())
}

async fn run_workflow(
    app: &App,
    record: ExecutionRecord,
    payload: Payload,
    (cancel, pause): (CancellationToken, CancellationToken),
) -> Result<ExecutionRecord, String> {
    let observer: Arc<dyn Observer> = Arc::new(LiveTasks {
        id: record.id,
        live: app.live.clone(),
    });
    if record.status == Status::Paused {
        if !payload.resume {
            // Queued before it paused (a restart found the entry): it
            // waits for `resume`.
            return Ok(record);
        }
        return app
            .sched
            .resume_paused(record.id, cancel, pause, Some(observer))
            .await
            .map_err(|e| e.to_string());
    }
    if record.status == Status::Running {
        // A previous server (or `wasmflow run`) was interrupted in it.
        return app
            .sched
            .resume(record.id, cancel, pause, Some(observer))
            .await
            .map_err(|e| e.to_string());
    }
    let def = app
        .sched
        .recorded_definition(&record)
        .map_err(|e| e.to_string())?;
    let mut req = Request::new(Arc::new(def), record.input.clone());
    req.name = Some(record.action.clone());
    req.lineage = Lineage::of(&record);
    req.grants = record.grants.clone();
    req.limits = record.limits;
    req.from = match (record.rerun_of, payload.from) {
        (Some(old), Some(task)) => Some((old, task)),
        _ => None,
    };
    req.cancel = cancel;
    req.pause = pause;
    req.observer = Some(observer);
    app.sched.run(req).await.map_err(|e| e.to_string())
}

/// A workflow's tasks starting and ending, for its followers.
struct LiveTasks {
    id: ExecutionId,
    live: Arc<Live>,
}

impl Observer for LiveTasks {
    fn task_started(&self, _workflow: &str, task: &str, item: Option<usize>) {
        self.live.say(
            self.id,
            LiveEvent::TaskStarted {
                task: task.to_owned(),
                item,
            },
        );
    }

    fn task_finished(&self, _workflow: &str, task: &str, status: Status, elapsed: Duration) {
        self.live.say(
            self.id,
            LiveEvent::TaskFinished {
                task: task.to_owned(),
                status,
                elapsed_ms: elapsed.as_millis() as u64,
            },
        );
    }
}

/// Run `f`, which may block for long, without stalling the other tasks of
/// this async worker thread (where the runtime can move them).
fn blocking<T>(f: impl FnOnce() -> T) -> T {
    match tokio::runtime::Handle::try_current() {
        Ok(h) if h.runtime_flavor() == tokio::runtime::RuntimeFlavor::MultiThread => {
            tokio::task::block_in_place(f)
        }
        _ => f(),
    }
}
