//! Replaying a recorded execution against the world it recorded.
//!
//! The same component digest (or another build, with `--component`), the
//! same input and grants; every clock read, random draw, HTTP response,
//! program result, environment and granted file comes from the recording.
//! The verdict is one of: reproduced, diverged at an event, or a
//! different result.

use crate::action::Action;
use crate::run::{execute, Outcome};
use crate::world::{Blobs, Divergence, World};
use crate::{Runtime, RuntimeError};
use serde::Serialize;
use serde_json::{json, Value};
use std::sync::Arc;
use wasmflow_store::{now, Event, ExecutionRecord, LogLevel, LogLine, ReplayBundle, Status, Store};

/// A recorded execution and the answers it received, from a store or a
/// bundle.
pub struct Recording {
    pub record: ExecutionRecord,
    pub events: Vec<Event>,
    blobs: Blobs,
}

impl Recording {
    pub fn from_store(store: &Store, record: ExecutionRecord) -> Result<Self, RuntimeError> {
        let events = store.events(record.id)?;
        Ok(Self {
            record,
            events,
            blobs: Blobs::Store(store.clone()),
        })
    }

    pub fn from_bundle(bundle: ReplayBundle) -> Self {
        let bundle = Arc::new(bundle);
        Self {
            record: bundle.record.clone(),
            events: bundle.events.clone(),
            blobs: Blobs::Bundle(bundle),
        }
    }
}

/// How a replay compares with its recording.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(tag = "verdict", rename_all = "kebab-case")]
pub enum Verdict {
    /// Same status and the same result, or the same error.
    Reproduced { status: Status },
    /// The guest asked a different question (or none) at some event.
    Diverged(Divergence),
    /// Same questions, different ending.
    DifferentResult { recorded: Value, replayed: Value },
}

impl Verdict {
    pub fn is_reproduced(&self) -> bool {
        matches!(self, Verdict::Reproduced { .. })
    }
}

impl std::fmt::Display for Verdict {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Verdict::Reproduced {
                status: Status::Succeeded,
            } => f.write_str("reproduced: identical result"),
            Verdict::Reproduced { .. } => f.write_str("reproduced: identical error"),
            Verdict::Diverged(d) => d.fmt(f),
            Verdict::DifferentResult { recorded, replayed } => write!(
                f,
                "different result:\n  recorded: {recorded}\n  replayed: {replayed}"
            ),
        }
    }
}

pub struct ReplayReport {
    pub verdict: Verdict,
    /// The replay's own execution record (`replay_of` the original).
    pub record: ExecutionRecord,
}

impl Runtime {
    /// The component a recording ran, from its recorded bytes.
    pub fn load_recorded(&self, rec: &Recording) -> Result<Action, RuntimeError> {
        let digest = &rec.record.component_digest;
        let bytes = rec
            .blobs
            .get(digest)
            .ok_or_else(|| RuntimeError::MissingBlob {
                what: format!("component {digest} of execution {}", rec.record.id),
            })?;
        self.load_bytes(&rec.record.action, bytes)
    }

    /// Replay `rec` with its own component, or with `component` (another
    /// build of the action) against the same recorded world. The replay is
    /// recorded as an execution with `replay_of`.
    pub async fn replay(
        &self,
        rec: &Recording,
        component: Option<&Action>,
    ) -> Result<ReplayReport, RuntimeError> {
        let recorded_action;
        let action = match component {
            Some(a) => a,
            None => {
                recorded_action = self.load_recorded(rec)?;
                &recorded_action
            }
        };
        let original = &rec.record;
        let params = action.check_input(&original.input)?;

        let mut record = ExecutionRecord::new_action(
            action.reference.clone(),
            action.digest.to_string(),
            original.input.clone(),
        );
        record.grants = original.grants.clone();
        record.limits = original.limits;
        record.replay_of = Some(original.id);
        record.status = Status::Running;
        record.started_at = Some(now());
        if !self.store().has_blob(&action.digest)? {
            self.store().put_blob(&action.bytes)?;
        }
        self.store().put(&record)?;

        let world = World::replay(rec.events.clone(), rec.blobs.clone());
        let outcome = execute(
            self,
            action,
            params,
            &original.grants,
            &original.limits,
            world.clone(),
            None,
        )
        .await;
        let verdict = match world.finish() {
            Some(d) => Verdict::Diverged(d),
            None => compare(original, &outcome),
        };

        record.stdout = outcome.stdout;
        record.stderr = outcome.stderr;
        record.logs = outcome.logs;
        record.logs.push(LogLine {
            at_ms: record
                .started_at
                .and_then(|s| now().duration_since(s).ok())
                .map_or(0, |d| d.as_millis() as u64),
            level: if verdict.is_reproduced() {
                LogLevel::Info
            } else {
                LogLevel::Warn
            },
            message: format!(
                "replay of {}: {}",
                original.id,
                verdict.to_string().lines().next().unwrap_or("")
            ),
            progress: None,
        });
        record.status = outcome.status;
        record.result = outcome.result;
        record.error = outcome.error;
        record.ended_at = Some(now());
        self.store().put(&record)?;
        Ok(ReplayReport { verdict, record })
    }
}

/// What must match for a reproduction: status, result, and the error's
/// code, message and retryability (not its trace, which names addresses).
fn ending(
    status: Status,
    result: &Option<Value>,
    error: &Option<wasmflow_store::Failure>,
) -> Value {
    json!({
        "status": status,
        "result": result,
        "error": error.as_ref().map(|e| json!({ "code": e.code, "message": e.message, "retryable": e.retryable })),
    })
}

fn compare(original: &ExecutionRecord, outcome: &Outcome) -> Verdict {
    let recorded = ending(original.status, &original.result, &original.error);
    let replayed = ending(outcome.status, &outcome.result, &outcome.error);
    if recorded == replayed {
        Verdict::Reproduced {
            status: outcome.status,
        }
    } else {
        Verdict::DifferentResult { recorded, replayed }
    }
}
