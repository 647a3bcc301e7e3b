//! One execution: check input, record `running`, instantiate in a fresh
//! sandbox, call `run` under the limits, record the outcome.

use crate::action::Action;
use crate::engine::EPOCH_TICK;
use crate::limits::{humanize, MemoryLimitExceeded, TableLimitExceeded};
use crate::log_book::{LogLimitExceeded, LogWatcher};
use crate::output::OutputLimitExceeded;
use crate::sandbox::Sandbox;
use crate::secrets::Masker;
use crate::value::val_to_json;
use crate::world::{RecordingLimitExceeded, World};
use crate::{Runtime, RuntimeError};
use serde_json::{json, Value};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio_util::sync::CancellationToken;
use wasmflow_store::{
    code, now, ExecutionRecord, Failure, Grants, Limits, Lineage, Outcome, Status,
};
use wasmtime::component::{Type, Val};
use wasmtime::{Trap, UpdateDeadline};

/// Raised into a guest whose execution was cancelled.
#[derive(Debug)]
pub(crate) struct Canceled;

impl std::fmt::Display for Canceled {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("the execution was canceled")
    }
}

impl std::error::Error for Canceled {}

/// How to run: the grants and limits, and where the execution sits.
#[derive(Clone, Debug, Default)]
pub struct RunOptions {
    pub grants: Grants,
    pub limits: Limits,
    /// Its id, parent, task, ... (a scheduler names its children before
    /// they start, so it can find them after a crash).
    pub lineage: Lineage,
    /// Cancelling it stops the guest (at the next epoch tick, or in the
    /// host call it waits in) and records `canceled`.
    pub cancel: Option<CancellationToken>,
    /// Called with each log line as the action writes it (the record gets
    /// them all at the end either way).
    pub watch_logs: Option<LogWatcher>,
    /// Write the final record without waiting for the disk: the caller
    /// flushes the store before it relies on it (a server shares one fsync
    /// among every execution that ended meanwhile).
    pub defer_flush: bool,
    /// Which start of this work it is (0 or 1: the first).
    pub attempt: u32,
    /// Lines the host puts before the action's own in its record: why
    /// this attempt started (its worker was lost, say).
    pub notes: Vec<wasmflow_store::LogLine>,
}

/// An execution that ends within this is written once, at its end, and
/// never shows as `running`; one that takes longer is written `running`
/// when this has passed or at its first log line, whichever comes first.
/// Two record writes were most of a trivial action's cost, and nothing can
/// watch a `running` state that lasts a millisecond: the write was not
/// flushed either, so a crash in that window lost it just the same.
const SHOW_RUNNING_AFTER: Duration = Duration::from_millis(2);

/// An execution that ended, not yet written: its final record and the
/// answers it received ([`Runtime::run_unwritten`]).
#[derive(Debug)]
pub struct Ended {
    pub record: ExecutionRecord,
    pub events: Vec<wasmflow_store::Event>,
}

pub(crate) async fn run(
    rt: &Runtime,
    action: &Action,
    input: Value,
    options: RunOptions,
) -> Result<ExecutionRecord, RuntimeError> {
    let durable = !options.defer_flush;
    let ended = run_unwritten(rt, action, input, options).await?;
    rt.store()
        .put_ended(&ended.record, &ended.events, durable)?;
    Ok(ended.record)
}

pub(crate) async fn run_unwritten(
    rt: &Runtime,
    action: &Action,
    input: Value,
    mut options: RunOptions,
) -> Result<Ended, RuntimeError> {
    let mut input = input;
    rt.seal_input(action, &mut input)?;
    let masker = Masker::default();
    let params = resolved_params(rt, action, &input, &options.grants, &masker)?;
    let notes = std::mem::take(&mut options.notes);
    let record = begin(rt, action, input, |r| {
        options.lineage.apply(r);
        r.grants = options.grants;
        r.limits = options.limits;
        r.attempt = options.attempt.max(1);
    })?;
    let (grants, limits) = (record.grants.clone(), record.limits);
    let running = Arc::new(ShowRunning {
        store: rt.store().clone(),
        record: Mutex::new(Some(record)),
    });
    let watch_logs = options.watch_logs.map(|watcher| {
        let running = running.clone();
        LogWatcher(Arc::new(move |line: &wasmflow_store::LogLine| {
            running.show();
            (watcher.0)(line)
        }))
    });
    let world = World::live(rt.store().clone()).masking(masker);
    let execution = execute(
        rt,
        action,
        params,
        &grants,
        &limits,
        world.clone(),
        Control {
            watch_logs,
            cancel: options.cancel,
        },
    );
    tokio::pin!(execution);
    let outcome = match tokio::time::timeout(SHOW_RUNNING_AFTER, &mut execution).await {
        Ok(outcome) => outcome,
        Err(_) => {
            running.show();
            execution.await
        }
    };
    let record = running.finish();
    let mut record = finish(record, outcome);
    record.logs.splice(0..0, notes);
    Ok(Ended {
        record,
        events: world.take_recorded(),
    })
}

/// The `running` record of an execution, written at most once and never
/// after the execution ended (see [`SHOW_RUNNING_AFTER`]).
struct ShowRunning {
    store: wasmflow_store::Store,
    /// `None` once the execution ended.
    record: Mutex<Option<ExecutionRecord>>,
}

impl ShowRunning {
    fn show(&self) {
        let mut slot = self.record.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(record) = slot.as_mut() {
            if record.status != Status::Running {
                record.status = Status::Running;
                // Not flushed: nothing depends on this state, and the
                // outcome is. A failed write only hides the state.
                if let Err(e) = self.store.put_unflushed(record) {
                    tracing::warn!(id = %record.id, "cannot record `running`: {e}");
                }
            }
        }
    }

    /// The record, taken back when the execution ended.
    fn finish(&self) -> ExecutionRecord {
        let mut slot = self.record.lock().unwrap_or_else(|e| e.into_inner());
        slot.take().expect("an execution ends once")
    }
}

/// A new record of `action` about to start (`link` fills in grants, limits
/// and relations), with the component kept in the store. Not written: the
/// caller decides when it shows as `running`.
pub(crate) fn begin(
    rt: &Runtime,
    action: &Action,
    input: Value,
    link: impl FnOnce(&mut ExecutionRecord),
) -> Result<ExecutionRecord, RuntimeError> {
    let mut record =
        ExecutionRecord::new_action(action.reference.clone(), action.digest.to_string(), input);
    link(&mut record);
    rt.seal(&mut record.grants)?;
    record.started_at = Some(now());
    rt.keep_component(action)?;
    Ok(record)
}

/// The parameters of a run of `action` with `input`, its secret
/// references resolved (within `grants`) and their values added to
/// `masker`. An input error names the reference, never a value: the input
/// is checked as written first.
pub(crate) fn resolved_params(
    rt: &Runtime,
    action: &Action,
    input: &Value,
    grants: &Grants,
    masker: &Masker,
) -> Result<Vec<Val>, RuntimeError> {
    let written = action.check_input(input)?;
    let resolved = rt
        .secrets()
        .resolve_input(input, grants, masker)
        .map_err(|(at, source)| RuntimeError::Secret {
            at: match at.as_str() {
                "" => "input: ".to_owned(),
                at => format!("input {at}: "),
            },
            source,
        })?;
    if masker.is_empty() {
        return Ok(written);
    }
    Ok(action.check_input(&resolved)?)
}

/// Write what the execution produced into its record, flushed.
pub(crate) fn conclude(
    rt: &Runtime,
    record: ExecutionRecord,
    produced: Produced,
) -> Result<ExecutionRecord, RuntimeError> {
    let record = finish(record, produced);
    rt.store().put(&record)?;
    Ok(record)
}

/// The record with what the execution produced.
fn finish(mut record: ExecutionRecord, produced: Produced) -> ExecutionRecord {
    record.stdout = produced.stdout;
    record.stderr = produced.stderr;
    record.logs = produced.logs;
    record.end(produced.outcome);
    record
}

/// How the caller follows and steers one execution.
#[derive(Default)]
pub(crate) struct Control {
    pub watch_logs: Option<LogWatcher>,
    pub cancel: Option<CancellationToken>,
}

/// What one call of `run` produced, before it is recorded: how it ended
/// and what it wrote.
#[derive(Debug, Clone)]
pub struct Produced {
    pub outcome: Outcome,
    pub stdout: String,
    pub stderr: String,
    pub logs: Vec<wasmflow_store::LogLine>,
}

/// Instantiate `action` in a fresh sandbox and call `run` under the limits.
/// Touches no store: recording is the caller's business.
pub(crate) async fn execute(
    rt: &Runtime,
    action: &Action,
    params: Vec<Val>,
    grants: &Grants,
    limits: &Limits,
    world: World,
    control: Control,
) -> Produced {
    let Control { watch_logs, cancel } = control;
    let name = action_name(&action.reference);
    let masker = world.masker().clone();
    let sandbox = match Sandbox::new(&name, grants, limits, world, watch_logs, rt.secrets()) {
        Ok(s) => s,
        Err(e) => {
            return Produced {
                outcome: Outcome::failed(failure(code::SANDBOX, format!("{e:#}"))),
                stdout: String::new(),
                stderr: String::new(),
                logs: Vec::new(),
            }
        }
    };
    let mut store = wasmtime::Store::new(rt.engine(), sandbox);
    store.limiter(|s| &mut s.memory);
    let timeout = Duration::from_millis(limits.timeout_ms);
    // Every tick the guest computes through, check the wall clock and the
    // cancel token, and yield so other executions on this thread progress.
    let deadline = std::time::Instant::now() + timeout;
    let token = cancel.clone();
    store.set_epoch_deadline(1);
    store.epoch_deadline_callback(move |cx| {
        if token.as_ref().is_some_and(|t| t.is_cancelled()) {
            return Err(Canceled.into());
        }
        if cx.data().world().over_limit() {
            return Err(RecordingLimitExceeded.into());
        }
        if std::time::Instant::now() >= deadline {
            return Ok(UpdateDeadline::Interrupt);
        }
        Ok(UpdateDeadline::Yield(1))
    });

    let call = async {
        let instance = action.pre.instantiate_async(&mut store).await?;
        let func = instance
            .get_func(&mut store, action.run_export)
            .ok_or_else(|| wasmtime::format_err!("the instance has no `run` export"))?;
        let mut results = vec![Val::Bool(false); func.ty(&store).results().len()];
        func.call_async(&mut store, &params, &mut results).await?;
        wasmtime::Result::Ok(results)
    };
    // Epoch interruption stops a guest that computes; this stops one that
    // waits in a host call (a sleep, a slow socket) past its time or after
    // a cancel.
    let canceled = async {
        match &cancel {
            Some(t) => t.cancelled().await,
            None => std::future::pending().await,
        }
    };
    let outcome = tokio::select! {
        r = tokio::time::timeout(timeout + 2 * EPOCH_TICK, call) => r.map_err(|_| Stopped::Timeout),
        () = canceled => Err(Stopped::Canceled),
    };

    let ended = match outcome {
        Err(Stopped::Timeout) => Outcome::stopped(Status::TimedOut, timed_out(timeout)),
        Err(Stopped::Canceled) => canceled_outcome(),
        Ok(Err(e)) => classify_trap(&e, store.data(), timeout),
        Ok(Ok(results)) => outcome_of(action.signature.result.as_ref(), results.first()),
    };
    // Past the recording limit the guest is stopped at the next tick (the
    // trap it gets is kept as the trace), or has finished in between: its
    // recording is incomplete either way, and it fails the same way.
    let ended = if store.data().world().over_limit() && ended.status != Status::Canceled {
        let mut f = failure(code::RECORDING_LIMIT, RecordingLimitExceeded.to_string());
        f.details = ended.error.and_then(|e| e.details);
        Outcome::failed(f)
    } else {
        ended
    };

    let data = store.data();
    Produced {
        outcome: ended,
        stdout: String::from_utf8_lossy(&data.stdout.contents()).into_owned(),
        stderr: String::from_utf8_lossy(&data.stderr.contents()).into_owned(),
        logs: data.log_book.take(),
    }
    .masked(&masker)
}

impl Produced {
    /// With every secret the execution was given masked.
    fn masked(mut self, masker: &Masker) -> Self {
        if masker.is_empty() {
            return self;
        }
        self.stdout = masker.text(&self.stdout).into_owned();
        self.stderr = masker.text(&self.stderr).into_owned();
        for line in &mut self.logs {
            *line = masker.line(line);
        }
        if let Some(r) = &mut self.outcome.result {
            masker.json(r);
        }
        if let Some(e) = &mut self.outcome.error {
            e.message = masker.text(&e.message).into_owned();
            e.code = masker.text(&e.code).into_owned();
            if let Some(d) = &mut e.details {
                masker.json(d);
            }
        }
        self
    }
}

/// Why the host stopped waiting for a guest.
enum Stopped {
    Timeout,
    Canceled,
}

fn canceled_outcome() -> Outcome {
    Outcome::stopped(
        Status::Canceled,
        failure(code::CANCELED, Canceled.to_string()),
    )
}

/// The file name without directories and the `.wasm` extension: what the
/// guest sees as `argv[0]`.
fn action_name(reference: &str) -> String {
    let base = reference.rsplit('/').next().unwrap_or(reference);
    base.strip_suffix(".wasm")
        .or_else(|| base.strip_suffix(".wat"))
        .unwrap_or(base)
        .to_owned()
}

fn failure(code: &str, message: String) -> Failure {
    Failure::new(code, message)
}

fn timed_out(timeout: Duration) -> Failure {
    Failure::new(
        code::TIMEOUT,
        format!("the action ran longer than its {} limit", humanize(timeout)),
    )
}

/// Name what stopped the guest: a limit, the clock, or a trap of its own.
fn classify_trap(e: &wasmtime::Error, sandbox: &Sandbox, timeout: Duration) -> Outcome {
    let trace = format!("{e:?}");
    let with_trace = |mut f: Failure| {
        f.details = Some(json!({ "trace": trace }));
        f
    };
    if e.downcast_ref::<Canceled>().is_some() {
        return canceled_outcome();
    }
    if let Some(d) = e.downcast_ref::<crate::world::Divergence>() {
        return Outcome::failed(failure(code::REPLAY_DIVERGENCE, d.to_string()));
    }
    if let Some(m) = e.downcast_ref::<MemoryLimitExceeded>() {
        return Outcome::failed(with_trace(failure(code::MEMORY_LIMIT, m.to_string())));
    }
    if let Some(t) = e.downcast_ref::<TableLimitExceeded>() {
        return Outcome::failed(with_trace(failure(code::MEMORY_LIMIT, t.to_string())));
    }
    if sandbox.memory.exceeded {
        let msg = format!("memory limit exceeded: {}", e.root_cause());
        return Outcome::failed(with_trace(failure(code::MEMORY_LIMIT, msg)));
    }
    if let Some(o) = e.downcast_ref::<OutputLimitExceeded>() {
        return Outcome::failed(with_trace(failure(code::OUTPUT_LIMIT, o.to_string())));
    }
    for stream in [&sandbox.stdout, &sandbox.stderr] {
        if stream.exceeded() {
            let msg = format!(
                "{} (the guest stopped with: {})",
                stream.limit_message(),
                e.root_cause()
            );
            return Outcome::failed(with_trace(failure(code::OUTPUT_LIMIT, msg)));
        }
    }
    if let Some(u) = e.downcast_ref::<crate::program::Refused>() {
        return Outcome::failed(failure(code::UNCONFINED, u.to_string()));
    }
    if let Some(l) = e.downcast_ref::<LogLimitExceeded>() {
        return Outcome::failed(with_trace(failure(code::LOG_LIMIT, l.to_string())));
    }
    if e.downcast_ref::<Trap>() == Some(&Trap::Interrupt) {
        return Outcome::stopped(Status::TimedOut, timed_out(timeout));
    }
    let code = match e.downcast_ref::<Trap>() {
        Some(Trap::StackOverflow) => code::STACK_OVERFLOW,
        Some(_) => code::TRAP,
        None => code::HOST_ERROR,
    };
    Outcome::failed(with_trace(failure(code, e.root_cause().to_string())))
}

/// Map `run`'s return value to the record: `result<T, E>` decides success
/// by its case; any other return type is a success carrying the value.
fn outcome_of(ty: Option<&Type>, val: Option<&Val>) -> Outcome {
    let (Some(ty), Some(val)) = (ty, val) else {
        return Outcome::succeeded(Some(Value::Null));
    };
    match (ty, val) {
        (Type::Result(rt), Val::Result(r)) => match r {
            Ok(v) => {
                let json = match (rt.ok(), v) {
                    (Some(t), Some(v)) => val_to_json(&t, v),
                    _ => Value::Null,
                };
                Outcome::succeeded(Some(json))
            }
            Err(v) => {
                let json = match (rt.err(), v) {
                    (Some(t), Some(v)) => val_to_json(&t, v),
                    _ => Value::Null,
                };
                Outcome::failed(action_failure(json))
            }
        },
        (ty, v) => Outcome::succeeded(Some(val_to_json(ty, v))),
    }
}

/// An action's `err` payload as a [`Failure`]: the `wasmflow:action/types`
/// `error` record maps field for field; any other type is kept as details.
fn action_failure(err: Value) -> Failure {
    if let Some(obj) = err.as_object() {
        if let (Some(code), Some(message)) = (
            obj.get("code").and_then(Value::as_str),
            obj.get("message").and_then(Value::as_str),
        ) {
            let details = obj.get("details").and_then(|d| match d {
                Value::Null => None,
                // `details` is JSON text in WIT; show it as JSON when it is.
                Value::String(s) => {
                    Some(serde_json::from_str(s).unwrap_or_else(|_| Value::String(s.clone())))
                }
                other => Some(other.clone()),
            });
            return Failure {
                code: code.to_owned(),
                message: message.to_owned(),
                retryable: obj
                    .get("retryable")
                    .and_then(Value::as_bool)
                    .unwrap_or(false),
                details,
            };
        }
    }
    let message = match &err {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    };
    Failure::new(code::ACTION_ERROR, message).with_details(err)
}
