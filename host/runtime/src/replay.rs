//! Replaying a recorded execution against the world it recorded.
//!
//! The same component digest (or another build, with `--component`), the
//! same input and grants; every clock read, random draw, HTTP response,
//! program result, environment and granted file comes from the recording.
//! The verdict is one of: reproduced, diverged at an event, or a
//! different result.

use crate::action::Action;
use crate::run::{begin, conclude, execute};
use crate::world::{Blobs, Divergence, World};
use crate::{Runtime, RuntimeError};
use serde::Serialize;
use serde_json::{json, Value};
use std::sync::Arc;
use wasmflow_store::{
    Event, ExecutionRecord, LogLevel, LogLine, Outcome, ReplayBundle, Status, Store,
};

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
    /// Whether another build than the recorded one ran.
    pub other_component: bool,
}

impl ReplayReport {
    /// With the recorded component the question is "does it reproduce?";
    /// with another build, "does this build pass against the recorded
    /// world?" (so a bundle plus a fix is a regression test).
    pub fn passed(&self) -> bool {
        if self.other_component {
            !matches!(self.verdict, Verdict::Diverged(_)) && self.record.status == Status::Succeeded
        } else {
            self.verdict.is_reproduced()
        }
    }
}

impl Runtime {
    /// The component a recording ran, from its recorded bytes.
    pub fn load_recorded(&self, rec: &Recording) -> Result<Action, RuntimeError> {
        self.load_component_of(&rec.record, &rec.blobs)
    }

    /// The component an execution in this store ran, from the store.
    pub fn load_executed(&self, record: &ExecutionRecord) -> Result<Action, RuntimeError> {
        self.load_component_of(record, &Blobs::Store(self.store().clone()))
    }

    fn load_component_of(
        &self,
        record: &ExecutionRecord,
        blobs: &Blobs,
    ) -> Result<Action, RuntimeError> {
        let digest = &record.component_digest;
        let bytes = blobs.get(digest).ok_or_else(|| RuntimeError::MissingBlob {
            what: format!("component {digest} of execution {}", record.id),
        })?;
        self.load_bytes(&record.action, bytes)
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

        let record = begin(self, action, original.input.clone(), |r| {
            r.grants = original.grants.clone();
            r.limits = original.limits;
            r.replay_of = Some(original.id);
            r.status = Status::Running;
        })?;
        // Shown while it runs (a replay is not on the hot path).
        self.store().put_unflushed(&record)?;
        let started = std::time::Instant::now();
        let world = World::replay(rec.events.clone(), rec.blobs.clone());
        let mut produced = execute(
            self,
            action,
            params,
            &original.grants,
            &original.limits,
            world.clone(),
            crate::run::Control::default(),
        )
        .await;
        let verdict = match world.finish() {
            Some(d) => Verdict::Diverged(d),
            None => compare(original, &produced.outcome),
        };
        produced.logs.push(LogLine {
            at_ms: started.elapsed().as_millis() as u64,
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
        let record = conclude(self, record, produced)?;
        Ok(ReplayReport {
            verdict,
            record,
            other_component: component.is_some(),
        })
    }
}

/// What must match for a reproduction: status, result, and the error's
/// code, message and retryability (not its trace, which names addresses).
fn ending(outcome: &Outcome) -> Value {
    let Outcome {
        status,
        result,
        error,
    } = outcome;
    json!({
        "status": status,
        "result": result,
        "error": error.as_ref().map(|e| json!({ "code": e.code, "message": e.message, "retryable": e.retryable })),
    })
}

fn compare(original: &ExecutionRecord, outcome: &Outcome) -> Verdict {
    let recorded = ending(&original.outcome());
    let replayed = ending(outcome);
    if recorded == replayed {
        Verdict::Reproduced {
            status: outcome.status,
        }
    } else {
        Verdict::DifferentResult { recorded, replayed }
    }
}
