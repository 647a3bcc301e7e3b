//! Replaying a recorded execution against the world it recorded.
//!
//! The same component digest (or another build, with `--component`), the
//! same input and grants; every clock read, random draw, HTTP response,
//! program result, environment and granted file comes from the recording.
//! The verdict is one of: reproduced, diverged at an event, or a
//! different result.

use crate::action::Action;
use crate::run::{begin, conclude, execute, resolved_params};
use crate::secrets::{digest, Masker, SecretError};
use crate::world::{Blobs, Divergence, World};
use crate::{Runtime, RuntimeError};
use serde::Serialize;
use serde_json::{json, Value};
use std::sync::Arc;
use wasmflow_datastore::reference::{self, Reference};
use wasmflow_store::{
    Event, ExecutionRecord, KeyOutcome, LogLevel, LogLine, Outcome, ReplayBundle, Status, Store,
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
        // Compiled before (the cache is by digest): neither read nor hashed
        // again; its bytes are fetched only if something asks for them.
        if let Some(action) = self
            .inner
            .loader
            .load_compiled(&record.action, digest, blobs)
        {
            return Ok(action);
        }
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
        check_secrets(self, rec)?;
        let masker = Masker::default();
        let params = resolved_params(self, action, &original.input, &original.grants, &masker)?;

        let record = begin(self, action, original.input.clone(), |r| {
            r.grants = original.grants.clone();
            r.limits = original.limits;
            r.replay_of = Some(original.id);
            r.status = Status::Running;
        })?;
        // Shown while it runs (a replay is not on the hot path).
        self.store().put_unflushed(&record)?;
        let started = std::time::Instant::now();
        let world = World::replay(rec.events.clone(), rec.blobs.clone()).masking(masker);
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

/// A secret a recording was given, as a replay finds it again, with its
/// recorded sha256.
enum Given<'a> {
    /// The env grant `var`, whose value holds references.
    Env { var: &'a str, value: &'a str },
    /// A key read through `wasmflow:action/keys`.
    Key(&'a str),
}

fn given<'a>(record: &'a ExecutionRecord, events: &'a [Event]) -> Vec<(Given<'a>, &'a str)> {
    let mut out = Vec::new();
    for e in events {
        match e {
            Event::Environment { secrets, .. } => {
                for u in secrets {
                    let value = record
                        .grants
                        .env
                        .iter()
                        .find(|g| g.name == u.name)
                        .and_then(|g| g.value.as_deref())
                        .unwrap_or_default();
                    let var = u.name.as_str();
                    out.push((Given::Env { var, value }, u.sha256.as_str()));
                }
            }
            Event::Key {
                name,
                outcome: KeyOutcome::Secret(sha256),
            } => out.push((Given::Key(name), sha256.as_str())),
            _ => {}
        }
    }
    out
}

/// The secrets a replay of `record` (with its recorded `events`) needs
/// given again, by the name `--secret NAME=VALUE` takes: key names, the
/// variable of an env value given in clear and the path of a secret
/// parameter (both sealed under the secret key of the machine that ran
/// it).
pub fn secrets_needed(record: &ExecutionRecord, events: &[Event]) -> Vec<String> {
    let mut names = reference::key_names(&record.input);
    names.extend(crate::secrets::sealed_paths(&record.input));
    for (g, _) in given(record, events) {
        let more = match g {
            Given::Env { var, value } => reference::find(value)
                .into_iter()
                .map(|(_, r)| match r {
                    Reference::Key(k) => k.to_owned(),
                    Reference::Sealed(_) => var.to_owned(),
                })
                .collect(),
            Given::Key(name) => vec![name.to_owned()],
        };
        for n in more {
            if !names.contains(&n) {
                names.push(n);
            }
        }
    }
    names
}

/// Refuse, before anything runs, a replay whose secrets cannot be given
/// again as they were recorded (missing here, or changed since).
fn check_secrets(rt: &Runtime, rec: &Recording) -> Result<(), RuntimeError> {
    let secrets = rt.secrets();
    let scratch = Masker::default();
    let mut problems = Vec::new();
    for (g, sha256) in given(&rec.record, &rec.events) {
        let (name, got) = match g {
            Given::Env { var, value } => (
                var,
                secrets.resolve(value, &|_| true, var, &scratch).map(Some),
            ),
            Given::Key(name) => (name, secrets.key(name).map(|k| k.map(|(v, _)| v))),
        };
        let name = name.to_owned();
        match got {
            Ok(Some(v)) if digest(&v) == sha256 => {}
            Ok(Some(_)) => problems.push(SecretError::Changed { name }.to_string()),
            Ok(None) => problems.push(SecretError::Missing { name }.to_string()),
            Err(e) => problems.push(e.to_string()),
        }
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(RuntimeError::ReplaySecrets(problems))
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
