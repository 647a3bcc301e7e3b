//! Inquiries: a workflow task `action: core.ask` asks a person for an
//! answer (StackStorm's `core.ask`). Its execution is the inquiry: a child
//! record in `pending`, its input the question (`schema`, `ttl`, `route`,
//! `users`), its result the answer. While one is open the workflow's
//! other branches run on; when nothing else can run, the workflow is
//! recorded `paused` and its process lets it go. [`respond`] checks an
//! answer against the schema and ends the inquiry; the workflow then goes
//! on from its journal (`Scheduler::resume_paused`), where the task's
//! result is the answer. An inquiry past its `ttl` fails its task with
//! `inquiry-timeout` ([`expire`]).
//!
//! What it must not touch: the journal (the scheduler settles the task
//! from the inquiry's record, as it does any task whose record ended while
//! nothing watched it).

use serde_json::{json, Value};
use std::time::{Duration, SystemTime};
use wasmflow_store::{
    code, now, ExecutionId, ExecutionRecord, Failure, Kind, Lineage, ListFilter, LogLevel, LogLine,
    Outcome, StartedBy, Status, Store, StoreError,
};

/// The built-in action a task names to ask.
pub const ASK: &str = "core.ask";

#[derive(Debug, thiserror::Error)]
pub enum InquiryError {
    #[error("execution {0} is not an inquiry (a `core.ask` task's execution)")]
    NotAnInquiry(String),
    #[error("inquiry {id} is {status}: it was answered, expired or canceled")]
    NotPending { id: String, status: Status },
    #[error("inquiry {0} expired before it was answered; its task failed with `inquiry-timeout`")]
    Expired(String),
    #[error("inquiry {id} is for {users} only, not {who}")]
    NotYours {
        id: String,
        who: String,
        users: String,
    },
    #[error("the response does not fit the inquiry's schema: {0}")]
    Invalid(String),
    #[error("the inquiry's schema is not a JSON Schema: {0}")]
    BadSchema(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl InquiryError {
    /// The caller's mistake (exit 2): all but the store's failures.
    pub fn is_usage(&self) -> bool {
        match self {
            InquiryError::Store(e) => e.is_usage(),
            _ => true,
        }
    }
}

/// Whether a task's `action` is the built-in `core.ask`.
pub fn is_ask(action: &str) -> bool {
    action.trim() == ASK
}

/// Check a question (a `core.ask` task's rendered input): `schema` a
/// JSON Schema, `ttl` a duration, `route` a string, `users` a list of
/// names. The message names the field.
pub fn check_question(input: &Value) -> Result<(), String> {
    let Value::Object(m) = input else {
        return Err("expected a map with `schema`".into());
    };
    for k in m.keys() {
        if !matches!(k.as_str(), "schema" | "ttl" | "route" | "users") {
            return Err(format!("unknown field `{k}` (schema, ttl, route, users)"));
        }
    }
    let schema = m
        .get("schema")
        .ok_or("`schema` is required: the answer's JSON Schema")?;
    compile(schema).map_err(|e| format!("schema: {e}"))?;
    if let Some(ttl) = m.get("ttl") {
        ttl_of(ttl).map_err(|e| format!("ttl: {e}"))?;
    }
    match m.get("route") {
        None | Some(Value::String(_)) => {}
        Some(other) => return Err(format!("route: expected a string, got {other}")),
    }
    match m.get("users") {
        None => {}
        Some(Value::Array(u)) if u.iter().all(Value::is_string) => {}
        Some(other) => return Err(format!("users: expected a list of names, got {other}")),
    }
    Ok(())
}

fn compile(schema: &Value) -> Result<jsonschema::Validator, String> {
    jsonschema::validator_for(schema).map_err(|e| e.to_string())
}

fn ttl_of(v: &Value) -> Result<Duration, String> {
    match v {
        Value::String(s) => humantime::parse_duration(s).map_err(|e| e.to_string()),
        Value::Number(n) => n
            .as_u64()
            .map(Duration::from_secs)
            .ok_or_else(|| format!("expected seconds or a duration like 1h, got {n}")),
        other => Err(format!("expected a duration like 1h, got {other}")),
    }
}

/// The open inquiry of task `task` of `workflow`, execution `id`.
pub fn open(
    workflow: &ExecutionRecord,
    id: ExecutionId,
    task: String,
    question: Value,
) -> ExecutionRecord {
    let mut r = ExecutionRecord::new_action(ASK.into(), String::new(), question);
    Lineage::child_of(workflow, id, task).apply(&mut r);
    r.status = Status::Pending;
    r.started_at = Some(now());
    r
}

/// When an inquiry stops waiting, if it has a `ttl`.
pub fn expires_at(r: &ExecutionRecord) -> Option<SystemTime> {
    let ttl = ttl_of(r.input.get("ttl")?).ok()?;
    Some(r.started_at.unwrap_or(r.created_at) + ttl)
}

/// An inquiry as front ends show it: its question, where it stands, its
/// answer.
pub fn view(r: &ExecutionRecord) -> Value {
    json!({
        "id": r.id,
        "workflow": r.parent,
        "task": r.task,
        "status": r.status,
        "schema": r.input.get("schema"),
        "route": r.input.get("route"),
        "users": r.input.get("users"),
        "expires_at": expires_at(r).map(|t| humantime::format_rfc3339_seconds(t).to_string()),
        "response": r.result,
    })
}

/// Whether `r` is an inquiry still waiting for its answer.
pub fn is_open(r: &ExecutionRecord) -> bool {
    r.kind == Kind::Action && r.action == ASK && r.status == Status::Pending
}

/// Every inquiry waiting for an answer, oldest first; those past their
/// `ttl` are expired on the way (see [`expire`]).
pub fn pending(store: &Store) -> Result<Vec<ExecutionRecord>, StoreError> {
    let filter = ListFilter {
        status: Some(Status::Pending),
        children: true,
        action: Some(ASK.into()),
        limit: usize::MAX,
        ..Default::default()
    };
    let mut open = Vec::new();
    for r in store.list(&filter)?.into_iter().filter(is_open) {
        match is_due(&r) {
            true => {
                expire(store, r)?;
            }
            false => open.push(r),
        }
    }
    open.reverse();
    Ok(open)
}

/// Expire the open inquiries past their `ttl` that paused workflows wait
/// on; the ones expired now (their workflows go on, to fail the task). A
/// running workflow expires its own when its running tasks end, so this
/// reads the few paused workflows' children, not every pending record (a
/// server calls it every second, whatever its queue holds).
pub fn expire_due(store: &Store) -> Result<Vec<ExecutionRecord>, StoreError> {
    let filter = ListFilter {
        status: Some(Status::Paused),
        children: true,
        limit: usize::MAX,
        ..Default::default()
    };
    let mut expired = Vec::new();
    for workflow in store.list(&filter)? {
        for r in store.children(workflow.id)? {
            if is_open(&r) && is_due(&r) {
                expired.push(expire(store, r)?);
            }
        }
    }
    Ok(expired)
}

/// Whether `r` is a nested workflow waiting for inquiries: paused (its
/// parent runs it to its end when the parent itself pauses, so a nested
/// workflow is paused only by questions).
pub fn is_waiting_workflow(r: &ExecutionRecord) -> bool {
    r.kind == Kind::Workflow && r.status == Status::Paused && r.parent.is_some()
}

/// Whether paused workflow `w` has news: an inquiry of it (or of a
/// nested workflow waiting within it) answered, canceled or past its ttl
/// that its journal has not settled yet. Its parent then resumes it.
pub fn news(store: &Store, w: &ExecutionRecord) -> Result<bool, StoreError> {
    let settled: std::collections::HashSet<ExecutionId> = store
        .workflow_log(w.id)?
        .iter()
        .filter_map(|bytes| match serde_json::from_slice(bytes) {
            Ok(crate::journal::Entry::Settle { child, .. }) => child,
            _ => None,
        })
        .collect();
    for c in store.children(w.id)? {
        let ended = c.action == ASK && (c.is_finished() || is_open(&c) && is_due(&c));
        if ended && !settled.contains(&c.id) || is_waiting_workflow(&c) && news(store, &c)? {
            return Ok(true);
        }
    }
    Ok(false)
}

/// The workflow that goes on once `inquiry` is answered: its own, or,
/// when that is nested, the outermost of its unfinished ancestors (a
/// nested workflow is resumed by its parent). Paused: resume it; running:
/// its driver takes the answer when its running tasks end.
pub fn waiting_on(
    store: &Store,
    inquiry: &ExecutionRecord,
) -> Result<Option<ExecutionRecord>, StoreError> {
    let Some(mut w) = inquiry.parent.map(|p| store.get(p)).transpose()?.flatten() else {
        return Ok(None);
    };
    while let Some(parent) = w.parent.map(|p| store.get(p)).transpose()?.flatten() {
        if parent.is_finished() {
            break;
        }
        w = parent;
    }
    Ok(Some(w))
}

/// Past its `ttl`.
pub fn is_due(r: &ExecutionRecord) -> bool {
    expires_at(r).is_some_and(|t| t <= SystemTime::now())
}

/// Fail an inquiry past its `ttl` with `inquiry-timeout`.
pub fn expire(store: &Store, mut r: ExecutionRecord) -> Result<ExecutionRecord, StoreError> {
    r.fail(
        Status::Failed,
        Failure::new(
            code::INQUIRY_TIMEOUT,
            "nobody answered the inquiry within its ttl",
        ),
    );
    store.put(&r)?;
    Ok(r)
}

/// Answer inquiry `id` (an id or a unique prefix) with `response`,
/// checked against its schema; the answered record, whose `parent` is the
/// workflow to resume.
pub fn respond(
    store: &Store,
    id: &str,
    response: Value,
    by: &StartedBy,
) -> Result<ExecutionRecord, InquiryError> {
    let mut r = store.find(id)?;
    if r.kind != Kind::Action || r.action != ASK {
        return Err(InquiryError::NotAnInquiry(r.id.to_string()));
    }
    if r.status != Status::Pending {
        return Err(InquiryError::NotPending {
            id: r.id.to_string(),
            status: r.status,
        });
    }
    if is_due(&r) {
        let id = r.id.to_string();
        expire(store, r)?;
        return Err(InquiryError::Expired(id));
    }
    // `users`: who may answer, by user name (the CLI) or token name (the
    // API). Anyone, without it.
    let users: Vec<&str> = r
        .input
        .get("users")
        .and_then(Value::as_array)
        .map(|u| u.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    let name = match by {
        StartedBy::User(n) | StartedBy::Token(n) | StartedBy::Webhook(n) | StartedBy::Sensor(n) => {
            n.as_str()
        }
        StartedBy::Rule { rule, .. } => rule.as_str(),
    };
    if !users.is_empty() && !users.contains(&name) {
        return Err(InquiryError::NotYours {
            id: r.id.to_string(),
            who: by.to_string(),
            users: users.join(", "),
        });
    }
    let schema = r.input.get("schema").cloned().unwrap_or(json!({}));
    let validator = compile(&schema).map_err(InquiryError::BadSchema)?;
    let problems: Vec<String> = validator
        .iter_errors(&response)
        .map(|e| {
            let at = e.instance_path().to_string();
            format!("{}: {e}", if at.is_empty() { "/".into() } else { at })
        })
        .collect();
    if !problems.is_empty() {
        return Err(InquiryError::Invalid(problems.join("; ")));
    }
    r.logs.push(LogLine {
        at_ms: 0,
        level: LogLevel::Info,
        message: format!("answered by {by}"),
        progress: None,
    });
    r.end(Outcome::succeeded(Some(response)));
    store.put(&r)?;
    Ok(r)
}
