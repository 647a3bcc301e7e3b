//! The scheduler's decisions that depend on nothing but what they are
//! given: a run's outcome from its slots, where a finished task's
//! transitions lead, whether an attempt is retried and after how long.
//! The driver applies them; they are tested here without a runtime.

use crate::definition::duration;
use crate::expr::{Expressions, Scope};
use crate::journal::{State, TaskRun};
use crate::model::{Command, Task};
use serde_json::{Map, Value};
use std::time::Duration;
use wasmflow_store::{code, ExecutionId, Failure, Outcome, Status};

/// What a finished task's transitions decided.
#[derive(Debug, Default, PartialEq)]
pub(super) struct Transitions {
    /// Values the taken transitions publish to `ctx`, in order.
    pub publish: Map<String, Value>,
    /// Tasks they lead to.
    pub next: Vec<String>,
    /// Each of `next`'s transition as Orquesta names it: `TASK__tN`, N
    /// counting the task's transitions to the same task before it.
    pub via: Vec<String>,
    /// Whether a taken transition leads anywhere: to a task, or to `noop`
    /// (Orquesta's rule: a failed task none leads on from fails the
    /// workflow; publishing alone, or `continue`, does not handle it).
    pub leads: bool,
    /// The engine commands the taken transitions name, in order: a
    /// rehearsal's task sequence lists them.
    pub commands: Vec<Command>,
    /// A taken transition says `fail`: where.
    pub fail: Option<String>,
}

/// A run's outcome from its slots: a with-items run succeeds when every
/// item did, and its result is the items' results in order.
pub(super) fn run_outcome(r: &TaskRun) -> Outcome {
    if r.items.is_none() {
        return r.slots()[0].outcome.clone().unwrap_or(Outcome {
            status: Status::Failed,
            result: None,
            error: None,
        });
    }
    let results: Vec<Value> = r
        .slots()
        .iter()
        .map(|s| {
            s.outcome
                .as_ref()
                .and_then(|o| o.result.clone())
                .unwrap_or(Value::Null)
        })
        .collect();
    let failed = r.slots().iter().enumerate().find_map(|(i, s)| {
        let o = s.outcome.as_ref()?;
        (o.status != Status::Succeeded && !s.retry).then(|| (i, o.clone()))
    });
    match failed {
        None => Outcome::succeeded(Some(Value::Array(results))),
        Some((i, o)) => {
            let mut error = o
                .error
                .unwrap_or_else(|| failure(code::FAILED, "the item failed"));
            error.message = format!("item {i}: {}", error.message);
            Outcome {
                status: o.status,
                result: Some(Value::Array(results)),
                error: Some(error),
            }
        }
    }
}

/// `error` as expressions see it (`null` without one).
fn error_value(outcome: &Outcome) -> Value {
    outcome
        .error
        .as_ref()
        .map(|e| serde_json::to_value(e).unwrap_or_default())
        .unwrap_or(Value::Null)
}

/// The scope of an expression about an ended attempt or run.
fn outcome_scope<'a>(
    input: &'a Value,
    ctx: &'a Map<String, Value>,
    outcome: &'a Outcome,
    error: &'a Value,
    tasks: Option<&'a Map<String, Value>>,
    seed: [u8; 32],
) -> Scope<'a> {
    const NULL: &Value = &Value::Null;
    Scope {
        input: Some(input),
        ctx: Some(ctx),
        result: Some(outcome.result.as_ref().unwrap_or(NULL)),
        error: Some(error),
        item: None,
        item_names: &[],
        status: Some(outcome.status.as_str()),
        tasks,
        seed: Some(seed),
    }
}

/// What YAQL's `random()` draws from where an expression is evaluated:
/// the workflow, the journal's length at that point, the run and slot,
/// and which of their expressions. A resumed or replayed workflow that
/// evaluates it again draws the same numbers.
pub(super) fn seed(
    workflow: ExecutionId,
    at: u32,
    run: usize,
    slot: usize,
    what: Seed,
) -> [u8; 32] {
    let mut seed = [0u8; 32];
    seed[..16].copy_from_slice(&workflow.0 .0.to_be_bytes());
    seed[16..20].copy_from_slice(&at.to_be_bytes());
    seed[20..24].copy_from_slice(&(run as u32).to_be_bytes());
    seed[24..28].copy_from_slice(&(slot as u32).to_be_bytes());
    seed[28] = what as u8;
    seed
}

/// Which expressions of a run a seed is for.
#[derive(Clone, Copy)]
pub(super) enum Seed {
    Input = 1,
    Transitions = 2,
    Retry = 3,
    Output = 4,
    Items = 5,
}

/// Where an expression about a finished run is evaluated: `random()`'s
/// seed, and whether the workflow reads `task_status()` at all.
#[derive(Clone, Copy)]
pub(super) struct Evaluation {
    pub seed: [u8; 32],
    pub task_statuses: bool,
}

/// `task_status()`'s view, when the workflow reads it: the workflow's
/// tasks, with `name` as its finished run left it.
fn statuses(
    state: &State,
    name: &str,
    outcome: &Outcome,
    at: Evaluation,
) -> Option<Map<String, Value>> {
    at.task_statuses.then(|| {
        let mut tasks = state.task_statuses();
        let status = Value::String(outcome.status.as_str().to_owned());
        tasks.insert(name.to_owned(), status);
        tasks
    })
}

/// Evaluate task `name`'s transitions in order: every one whose `when`
/// holds (without one: always) publishes and leads on; a later transition
/// sees what an earlier one published.
pub(super) fn transitions(
    exprs: &Expressions,
    name: &str,
    task: &Task,
    outcome: &Outcome,
    state: &State,
    eval: Evaluation,
) -> Result<Transitions, Failure> {
    let error = error_value(outcome);
    let tasks = statuses(state, name, outcome, eval);
    let mut ctx = state.ctx.clone();
    let mut out = Transitions::default();
    for (i, t) in task.next.iter().enumerate() {
        let at = format!("tasks.{name}.next[{i}]");
        // Orquesta's rule: a transition without `when` is taken whenever
        // the task completes, whatever its status.
        let scope = outcome_scope(
            &state.input,
            &ctx,
            outcome,
            &error,
            tasks.as_ref(),
            eval.seed,
        );
        let go = match &t.when {
            None => true,
            Some(w) => exprs
                .condition(w, scope)
                .map_err(|e| expression_failure(&format!("{at}.when"), &e))?,
        };
        if !go {
            continue;
        }
        out.leads |= !t.to.is_empty() || t.commands.contains(&Command::Noop);
        out.commands.extend(t.commands.iter().copied());
        let mut published = Vec::new();
        for (k, v) in &t.publish {
            let value = exprs
                .render(v, scope)
                .map_err(|e| expression_failure(&format!("{at}.publish.{k}"), &e))?;
            published.push((k.clone(), value));
        }
        for (k, v) in published {
            ctx.insert(k.clone(), v.clone());
            out.publish.insert(k, v);
        }
        for to in &t.to {
            let earlier = task.next[..i].iter().filter(|e| e.to.contains(to)).count();
            out.via.push(format!("{name}__t{earlier}"));
        }
        out.next.extend(t.to.iter().cloned());
        if t.commands.contains(&Command::Fail) {
            out.fail.get_or_insert(at);
        }
    }
    Ok(out)
}

/// Whether `attempt` (1 is the first) of `task`, which ended with
/// `outcome`, is followed by another.
pub(super) fn should_retry(
    exprs: &Expressions,
    name: &str,
    task: &Task,
    attempt: u32,
    outcome: &Outcome,
    state: &State,
    at: Evaluation,
) -> bool {
    if matches!(outcome.status, Status::Succeeded | Status::Canceled) {
        return false;
    }
    let Some(retry) = &task.retry else {
        return false;
    };
    if attempt > retry.count {
        return false;
    }
    match &retry.when {
        None => true,
        Some(w) => {
            let error = error_value(outcome);
            let tasks = statuses(state, name, outcome, at);
            // A `when` that cannot be evaluated does not retry; the
            // failure stands as it is.
            exprs
                .condition(
                    w,
                    outcome_scope(
                        &state.input,
                        &state.ctx,
                        outcome,
                        &error,
                        tasks.as_ref(),
                        at.seed,
                    ),
                )
                .unwrap_or(false)
        }
    }
}

pub(super) fn failure(code: &str, message: &str) -> Failure {
    Failure::new(code, message)
}

pub(super) fn expression_failure(at: &str, e: &str) -> Failure {
    failure(code::EXPRESSION, &format!("{at}: {e}"))
}

/// The wait before a task's first attempt (`delay`), evaluated in `scope`.
pub(super) fn task_delay(
    exprs: &Expressions,
    task: &Task,
    scope: Scope<'_>,
) -> Result<Duration, String> {
    let Some(delay) = &task.delay else {
        return Ok(Duration::ZERO);
    };
    match exprs.render(delay, scope)? {
        Value::Number(n) => n
            .as_f64()
            .filter(|s| s.is_finite() && *s >= 0.0)
            .map(Duration::from_secs_f64)
            .ok_or_else(|| format!("{n} is not a number of seconds")),
        Value::String(s) => match s.trim().parse::<f64>() {
            Ok(secs) if secs.is_finite() && secs >= 0.0 => Ok(Duration::from_secs_f64(secs)),
            _ => duration(&s).map_err(|e| format!("`{s}`: {e}")),
        },
        other => Err(format!("{other} is not a number of seconds or a duration")),
    }
}

/// The wait before `attempt` (2 is the first retry): `delay`, times
/// `backoff` for each retry after the first.
pub(super) fn retry_delay(task: &Task, attempt: u32) -> Duration {
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

#[cfg(test)]
mod tests;
