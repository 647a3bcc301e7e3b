//! An action or a workflow: what a front end starts, re-runs or, later,
//! triggers from an event. Applying `-p` overrides, checking the input and
//! writing the pending record of an execution are here once, so the CLI,
//! the server and the event bus prepare an execution the same way.
//!
//! What it must not touch: grants and limits (the front end decides them
//! against its operator's) and the queue or the scheduler (it only makes
//! the record that goes into them).

use crate::Definition;
use serde_json::{Map, Value};
use std::sync::Arc;
use wasmflow_runtime::{overrides, Action};
use wasmflow_store::{ExecutionRecord, Lineage, Status};

/// Something that runs as one execution.
#[derive(Clone)]
pub enum Runnable {
    Action(Action),
    Workflow(Arc<Definition>),
}

/// Why an execution could not be prepared: the caller's input, never the
/// store or the host.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum PrepareError {
    /// A `-p` override that names nothing or does not parse.
    #[error("{param}: {message}")]
    Param { param: String, message: String },
    /// The input does not fit the action's WIT or the workflow's types.
    #[error("invalid input: {0}")]
    Input(String),
    /// `--from TASK` (`from`) that does not apply.
    #[error("{0}")]
    From(String),
}

impl Runnable {
    /// Apply `key=value` overrides in order, typed by the action's WIT or
    /// the workflow's declared input (one walker: `overrides::assign`).
    pub fn apply_params(&self, input: &mut Value, params: &[String]) -> Result<(), PrepareError> {
        for p in params {
            let applied = match self {
                Runnable::Action(action) => {
                    overrides::apply(action, input, p).map_err(|e| e.to_string())
                }
                Runnable::Workflow(def) => def.apply_override(input, p),
            };
            applied.map_err(|message| PrepareError::Param {
                param: p.clone(),
                message,
            })?;
        }
        Ok(())
    }

    /// The input as it will run: checked against the action's WIT, or the
    /// workflow's declared types with their defaults filled in.
    pub fn check_input(&self, input: Value) -> Result<Value, PrepareError> {
        match self {
            Runnable::Action(action) => {
                action
                    .check_input(&input)
                    .map_err(|e| PrepareError::Input(e.to_string()))?;
                Ok(input)
            }
            Runnable::Workflow(def) => def.check_input(&input).map_err(PrepareError::Input),
        }
    }

    /// The pending record of a new execution of it, named `action` (a
    /// workflow's file is its `source`), of the
    /// component or workflow text with `digest`: `params` applied to
    /// `input`, the result checked. Grants and limits are the caller's.
    pub fn prepare(
        &self,
        action: String,
        digest: String,
        mut input: Value,
        params: &[String],
    ) -> Result<ExecutionRecord, PrepareError> {
        self.apply_params(&mut input, params)?;
        let input = self.check_input(input)?;
        let mut record = match self {
            Runnable::Action(_) => ExecutionRecord::new_action(action, digest, input),
            Runnable::Workflow(def) => {
                let mut r = ExecutionRecord::new_workflow(action, digest, input);
                r.source = Some(def.source.path.display().to_string());
                r
            }
        };
        record.status = Status::Pending;
        Ok(record)
    }

    /// The pending record of a re-run of `original` (an execution of this):
    /// its input with `fields` replaced and `params` applied, its grants
    /// and limits, as a new top-level execution (`rerun_of` the original).
    /// `from` (workflows: reuse the results of the tasks before it) must
    /// name a task of the workflow.
    pub fn rerun(
        &self,
        original: &ExecutionRecord,
        fields: Option<Map<String, Value>>,
        params: &[String],
        from: Option<&str>,
    ) -> Result<ExecutionRecord, PrepareError> {
        match (self, from) {
            (Runnable::Action(_), Some(_)) => {
                return Err(PrepareError::From(format!(
                    "it applies to workflow executions; {} ran the action {}",
                    original.id, original.action
                )))
            }
            (Runnable::Workflow(def), Some(task)) if !def.workflow.tasks.contains_key(task) => {
                return Err(PrepareError::From(format!(
                    "the workflow has no task `{task}`"
                )))
            }
            _ => {}
        }
        let mut input = original.input.clone();
        if let (Some(fields), Value::Object(m)) = (fields, &mut input) {
            m.extend(fields);
        }
        let mut record = self.prepare(
            original.action.clone(),
            original.component_digest.clone(),
            input,
            params,
        )?;
        Lineage::rerun_of(original).apply(&mut record);
        record.grants = original.grants.clone();
        record.limits = original.limits;
        Ok(record)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use std::path::Path;
    use wasmflow_store::Kind;

    fn workflow() -> Runnable {
        let text = "version: 1\ninput:\n  - { name: host, type: string }\n  - { name: cpus, type: u32, default: 2 }\ntasks:\n  a: { action: a.wasm }\n";
        Runnable::Workflow(Arc::new(
            Definition::parse(Path::new("wf.yaml"), text.into()).unwrap(),
        ))
    }

    #[test]
    fn a_prepared_workflow_has_its_params_typed_and_its_defaults() {
        let r = workflow()
            .prepare(
                "wf.yaml".into(),
                "sha256:00".into(),
                json!({}),
                &["host=web01".into(), "cpus=4".into()],
            )
            .unwrap();
        assert_eq!((r.kind, r.status), (Kind::Workflow, Status::Pending));
        assert_eq!(r.input, json!({ "host": "web01", "cpus": 4 }));
        let defaulted = workflow()
            .prepare(
                "wf.yaml".into(),
                "sha256:00".into(),
                json!({ "host": "h" }),
                &[],
            )
            .unwrap();
        assert_eq!(defaulted.input["cpus"], 2);
    }

    #[test]
    fn bad_params_and_input_are_named() {
        let e = workflow()
            .prepare(
                "wf.yaml".into(),
                String::new(),
                json!({}),
                &["nope=1".into()],
            )
            .unwrap_err();
        assert!(
            matches!(&e, PrepareError::Param { param, message } if param == "nope=1" && message.contains("unknown input")),
            "{e:?}"
        );
        let e = workflow()
            .prepare("wf.yaml".into(), String::new(), json!({ "cpus": 1 }), &[])
            .unwrap_err();
        assert!(matches!(e, PrepareError::Input(_)), "{e:?}");
    }

    #[test]
    fn a_rerun_keeps_grants_and_limits_and_stands_alone() {
        let mut original = workflow()
            .prepare(
                "wf.yaml".into(),
                "sha256:00".into(),
                json!({ "host": "a" }),
                &[],
            )
            .unwrap();
        original.parent = Some(wasmflow_store::ExecutionId::new());
        original.limits.timeout_ms = 1234;
        original.grants.exec = vec!["virsh".into()];
        let fields = json!({ "host": "b" }).as_object().cloned();
        let r = workflow()
            .rerun(&original, fields, &["cpus=8".into()], Some("a"))
            .unwrap();
        assert_ne!(r.id, original.id);
        assert_eq!(r.rerun_of, Some(original.id));
        assert_eq!(r.parent, None, "a re-run is a top-level execution");
        assert_eq!(r.input, json!({ "host": "b", "cpus": 8 }));
        assert_eq!(
            (r.limits.timeout_ms, &r.grants.exec),
            (1234, &original.grants.exec)
        );
        let e = workflow()
            .rerun(&original, None, &[], Some("no-such-task"))
            .unwrap_err();
        assert_eq!(
            e,
            PrepareError::From("the workflow has no task `no-such-task`".into())
        );
    }
}
