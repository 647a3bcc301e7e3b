//! Rehearsals, Orquesta's workflow tests: a workflow run by the real
//! scheduler where no action runs. Each task takes the result its mock
//! gives (`mock_action_executions`), or succeeds with `null`; then what the
//! run did (the tasks in the order they started, the status, the output,
//! the errors, the tasks it ended on) is compared with what the spec
//! expects. Specs use Orquesta's field names, so StackStorm users'
//! existing tests run.
//!
//! It owns the spec, the mocks and the comparison; running is the
//! scheduler's ([`crate::Request::rehearsal`]), and where the run is kept
//! (a store of its own, thrown away) is the caller's.

use serde::Deserialize;
use serde_json::{Map, Value};
use std::collections::HashMap;
use std::sync::Mutex;
use wasmflow_store::{ExecutionRecord, Failure, Status};

/// One rehearsal, as a YAML or JSON file holds it.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Spec {
    /// The workflow file, relative to the spec.
    pub workflow: String,
    #[serde(default)]
    pub inputs: Map<String, Value>,
    #[serde(default)]
    pub mock_action_executions: Vec<Mock>,
    #[serde(default)]
    pub expected_task_sequence: Option<Vec<String>>,
    /// Orquesta's routes; wasmflow has one route, `[[]]`.
    #[serde(default)]
    pub expected_routes: Option<Value>,
    #[serde(default)]
    pub expected_workflow_status: Option<String>,
    #[serde(default)]
    pub expected_output: Option<Value>,
    #[serde(default)]
    pub expected_errors: Option<Vec<Value>>,
    #[serde(default)]
    pub expected_term_tasks: Option<Vec<String>>,
}

/// What a task's run gives, in place of running its action.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Mock {
    pub task_id: String,
    /// Which run of the task, counting from 0 in the order the tasks
    /// started (any when absent).
    #[serde(default)]
    pub seq_id: Option<usize>,
    /// Which item of a with-items task (every item when absent).
    #[serde(default)]
    pub item_id: Option<usize>,
    /// For how many runs of the task it holds (all when absent).
    #[serde(default)]
    pub num_iter: Option<usize>,
    #[serde(default = "succeeded")]
    pub status: String,
    #[serde(default)]
    pub result: Value,
}

fn succeeded() -> String {
    "succeeded".into()
}

/// The mocks of one rehearsal, and the tasks as they start.
#[derive(Debug, Default)]
pub struct Rehearsal {
    mocks: Vec<Mock>,
    state: Mutex<Seen>,
}

#[derive(Debug, Default)]
struct Seen {
    /// Task names in the order their runs started.
    sequence: Vec<String>,
    /// Times each mock was used, by index.
    used: HashMap<usize, usize>,
    /// Runs that led nowhere, by task: where the workflow ended.
    term: Vec<String>,
}

impl Rehearsal {
    pub fn new(mocks: Vec<Mock>) -> Self {
        Self {
            mocks,
            state: Mutex::default(),
        }
    }

    /// Task `task` starts a run (its first item, or its only one).
    pub fn started(&self, task: &str) {
        let mut s = self.state.lock().unwrap_or_else(|e| e.into_inner());
        s.sequence.push(task.to_owned());
    }

    /// What the current run of `task` (item `item` of it) ends with: its
    /// mock's status and result, or success with `null`.
    pub fn outcome(
        &self,
        task: &str,
        item: Option<usize>,
    ) -> (Status, Option<Value>, Option<Failure>) {
        let mut s = self.state.lock().unwrap_or_else(|e| e.into_inner());
        let seq = s.sequence.iter().rposition(|t| t == task).unwrap_or(0);
        let found = self.mocks.iter().enumerate().find(|(i, m)| {
            m.task_id == task
                && m.seq_id.is_none_or(|q| q == seq)
                && (m.item_id.is_none() || m.item_id == item)
                && m.num_iter
                    .is_none_or(|n| s.used.get(i).copied().unwrap_or(0) < n)
        });
        let Some((i, mock)) = found else {
            return (Status::Succeeded, Some(Value::Null), None);
        };
        // A with-items run uses its mock once, however many items.
        if item.is_none_or(|i| i == 0) || mock.item_id.is_some() {
            *s.used.entry(i).or_default() += 1;
        }
        let status = status_named(&mock.status).unwrap_or(Status::Succeeded);
        if status == Status::Succeeded {
            return (status, Some(mock.result.clone()), None);
        }
        let mut f = Failure::new("mocked", format!("task `{task}` {} (mocked)", mock.status));
        f.details = Some(mock.result.clone());
        (status, Some(mock.result.clone()), Some(f))
    }

    /// A run of `task` ended; `last`: its transitions started nothing.
    pub fn concluded(&self, task: &str, last: bool) {
        if last {
            let mut s = self.state.lock().unwrap_or_else(|e| e.into_inner());
            s.term.push(task.to_owned());
        }
    }

    /// The tasks whose runs started nothing more (Orquesta's "term tasks").
    pub fn term_tasks(&self) -> Vec<String> {
        self.state
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .term
            .clone()
    }

    /// The task names in the order their runs started.
    pub fn sequence(&self) -> Vec<String> {
        self.state
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .sequence
            .clone()
    }
}

/// A status as Orquesta or wasmflow names it: `expired`/`timeout` is
/// wasmflow's `timed_out`, `abandoned` (its worker lost) is `failed`.
fn status_named(name: &str) -> Option<Status> {
    Some(match name {
        "succeeded" => Status::Succeeded,
        "failed" | "abandoned" => Status::Failed,
        "timeout" | "timed_out" | "expired" => Status::TimedOut,
        "canceled" | "cancelled" => Status::Canceled,
        "paused" => Status::Paused,
        "running" => Status::Running,
        "pending" => Status::Pending,
        _ => return None,
    })
}

/// How the run differs from what the spec expects: one line each, none
/// when it passes.
pub fn compare(
    spec: &Spec,
    record: &ExecutionRecord,
    sequence: &[String],
    term: &[String],
    routes: &[Vec<String>],
) -> Vec<String> {
    let mut out = Vec::new();
    let status = record.status.to_string();
    if let Some(want) = &spec.expected_task_sequence {
        if want != sequence {
            out.push(format!(
                "task sequence: expected [{}], got [{}]",
                want.join(", "),
                sequence.join(", ")
            ));
        }
    }
    if let Some(want) = &spec.expected_routes {
        let got = serde_json::json!(routes);
        if *want != got {
            out.push(format!("routes: expected {want}, got {got}"));
        }
    }
    let want_status = spec
        .expected_workflow_status
        .clone()
        .unwrap_or_else(|| "succeeded".into());
    // Orquesta's names for wasmflow's statuses count as them.
    if status_named(&want_status) != Some(record.status) {
        out.push(format!("status: expected {want_status}, got {status}"));
    }
    if let Some(want) = &spec.expected_output {
        let got = record.result.clone().unwrap_or(Value::Null);
        if *want != got {
            out.push(format!("output: expected {want}, got {got}"));
        }
    }
    if let Some(want) = &spec.expected_errors {
        let got: Vec<Value> = record
            .error
            .iter()
            .map(|e| {
                // Orquesta's fields beside wasmflow's code: the task the
                // error is about, and its route (one here).
                let mut v =
                    serde_json::json!({"type": "error", "code": e.code, "message": e.message});
                let details = e.details.as_ref();
                let task = details.and_then(|d| d.get("failed_on").or_else(|| d.get("task")));
                if let Some(task) = task {
                    v["task_id"] = task.clone();
                    v["route"] = 0.into();
                }
                v
            })
            .collect();
        let matches = want.len() == got.len()
            && want.iter().zip(&got).all(|(w, g)| match w {
                Value::Object(m) => m.iter().all(|(k, v)| g.get(k) == Some(v)),
                Value::String(s) => g["message"]
                    .as_str()
                    .is_some_and(|m| m.contains(s.as_str())),
                _ => false,
            });
        if !matches {
            out.push(format!(
                "errors: expected {}, got {}",
                Value::Array(want.clone()),
                Value::Array(got)
            ));
        }
    }
    if let Some(want) = &spec.expected_term_tasks {
        let (mut w, mut g) = (want.clone(), term.to_vec());
        w.sort();
        g.sort();
        if w != g {
            out.push(format!(
                "term tasks: expected [{}], got [{}]",
                w.join(", "),
                g.join(", ")
            ));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn mock(task: &str, status: &str, result: Value) -> Mock {
        Mock {
            task_id: task.into(),
            seq_id: None,
            item_id: None,
            num_iter: None,
            status: status.into(),
            result,
        }
    }

    #[test]
    fn mocks_apply_in_order_and_by_iteration() {
        let r = Rehearsal::new(vec![
            Mock {
                num_iter: Some(1),
                ..mock("a", "failed", json!({"stderr": "boom"}))
            },
            mock("a", "succeeded", json!(2)),
        ]);
        r.started("a");
        let (status, _, error) = r.outcome("a", None);
        assert_eq!(status, Status::Failed);
        assert_eq!(error.unwrap().details, Some(json!({"stderr": "boom"})));
        r.started("a");
        assert_eq!(r.outcome("a", None).1, Some(json!(2)));
        r.started("b");
        assert_eq!(
            r.outcome("b", None),
            (Status::Succeeded, Some(Value::Null), None)
        );
        assert_eq!(r.sequence(), ["a", "a", "b"]);
    }
}

/// A spec file (YAML, or JSON), read and checked; a problem names the file
/// and the position.
pub fn load(path: &std::path::Path) -> Result<Spec, String> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("{}: cannot read: {e}", path.display()))?;
    serde_yaml::from_str(&text).map_err(|e| {
        let at = e
            .location()
            .map(|l| format!(":{}:{}", l.line(), l.column()))
            .unwrap_or_default();
        format!(
            "{}{at}: {}",
            path.display(),
            crate::definition::without_location(&e.to_string())
        )
    })
}

/// What one rehearsal did, and how it differs from its spec.
#[derive(Debug)]
pub struct Report {
    pub status: Status,
    pub sequence: Vec<String>,
    /// One line per difference; none when it passed.
    pub differences: Vec<String>,
}

impl Report {
    pub fn passed(&self) -> bool {
        self.differences.is_empty()
    }
}

/// Rehearse `spec` (read from `file`, its workflow relative to it) with
/// `sched`, whose store keeps the run: give it one of its own.
pub async fn rehearse(
    sched: &crate::Scheduler,
    file: &std::path::Path,
    spec: &Spec,
) -> Result<Report, String> {
    let dir = file.parent().unwrap_or(std::path::Path::new("."));
    let path = dir.join(&spec.workflow);
    let def = std::sync::Arc::new(crate::Definition::load(&path).map_err(|p| p.to_string())?);
    let rehearsal = std::sync::Arc::new(Rehearsal::new(spec.mock_action_executions.clone()));
    let mut req = crate::Request::new(def.clone(), Value::Object(spec.inputs.clone()));
    req.rehearsal = Some(rehearsal.clone());
    let record = sched.run(req).await.map_err(|e| e.to_string())?;
    let sequence = rehearsal.sequence();
    // The routes the splits made, as the journal keeps them (`[[]]`, the
    // one route, when the workflow ended before it began).
    let journal = sched.journal(record.id).map_err(|e| e.to_string())?;
    let mut routes = crate::journal::State::fold(&def.workflow, &journal).routes;
    if routes.is_empty() {
        routes.push(Vec::new());
    }
    let differences = compare(spec, &record, &sequence, &rehearsal.term_tasks(), &routes);
    Ok(Report {
        status: record.status,
        sequence,
        differences,
    })
}
