//! A workflow execution as a graph: the tasks and transitions of the
//! workflow it ran (from the copy kept in the store), each task with what
//! its executions say so far. The web UI draws it; `execution get --tree`
//! lists the same executions without the shape.
//!
//! What it must not touch: layout and drawing (the front end's), the
//! journal (the task records say what a viewer needs: status, attempts,
//! times, errors).

use crate::model::Workflow;
use serde::Serialize;
use std::time::SystemTime;
use wasmflow_store::{ExecutionId, ExecutionRecord, Failure, Status};

/// A workflow execution's tasks and transitions.
#[derive(Clone, Debug, Serialize)]
pub struct Graph {
    /// In the order the workflow declares them.
    pub tasks: Vec<TaskNode>,
    pub transitions: Vec<Edge>,
    /// The tasks no transition leads to: where it starts.
    pub start: Vec<String>,
}

/// One task and what its executions say.
#[derive(Clone, Debug, Serialize)]
pub struct TaskNode {
    pub name: String,
    /// The task's `action` as the workflow writes it.
    pub action: String,
    /// The task's state: a record's status, or `not_run` when nothing ran
    /// for it (yet, or because no transition led there). A task over
    /// items is failed if an item's last attempt failed, running while
    /// one runs.
    pub state: String,
    /// Executions started for it: retries and items each count.
    pub attempts: u32,
    /// Items, for a task over `with-items`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub items: Option<usize>,
    /// Its latest execution (the one a click opens).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub execution: Option<ExecutionId>,
    #[serde(skip_serializing_if = "Option::is_none", with = "time_opt")]
    pub started_at: Option<SystemTime>,
    #[serde(skip_serializing_if = "Option::is_none", with = "time_opt")]
    pub ended_at: Option<SystemTime>,
    /// Why its latest failed execution failed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<Failure>,
}

/// A transition from one task to another.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Edge {
    pub from: String,
    pub to: String,
    /// Its condition, as written; none: taken when the task succeeded.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub when: Option<String>,
}

impl Graph {
    /// `workflow` with the state its task executions (`children`, the
    /// workflow execution's direct children) give it.
    pub fn of(workflow: &Workflow, children: &[ExecutionRecord]) -> Self {
        let tasks = workflow
            .tasks
            .iter()
            .map(|(name, task)| {
                let mine: Vec<&ExecutionRecord> = children
                    .iter()
                    .filter(|c| c.task.as_deref().is_some_and(|t| task_of(t) == name))
                    .collect();
                node(name, &task.action, &mine, task.with_items.is_some())
            })
            .collect();
        let transitions = workflow
            .tasks
            .iter()
            .flat_map(|(from, task)| {
                task.next.iter().flat_map(move |t| {
                    t.to.iter().map(move |to| Edge {
                        from: from.clone(),
                        to: to.clone(),
                        when: t.when.clone(),
                    })
                })
            })
            .collect();
        Graph {
            tasks,
            transitions,
            start: workflow
                .start_tasks()
                .into_iter()
                .map(str::to_owned)
                .collect(),
        }
    }
}

/// `name` of a child's `task` field (`name`, or `name[i]` for an item).
fn task_of(task: &str) -> &str {
    task.split_once('[').map_or(task, |(name, _)| name)
}

fn node(name: &str, action: &str, runs: &[&ExecutionRecord], over_items: bool) -> TaskNode {
    // The last attempt of each slot (an item, or the task itself) decides.
    let mut last: Vec<&ExecutionRecord> = Vec::new();
    for r in runs {
        match last.iter_mut().find(|l| l.task == r.task) {
            Some(l) if (l.attempt, l.id) < (r.attempt, r.id) => *l = r,
            Some(_) => {}
            None => last.push(r),
        }
    }
    let state = if last.is_empty() {
        "not_run".to_owned()
    } else if let Some(r) = last.iter().find(|r| !r.is_finished()) {
        r.status.to_string()
    } else {
        last.iter()
            .map(|r| r.status)
            .find(|s| *s != Status::Succeeded)
            .unwrap_or(Status::Succeeded)
            .to_string()
    };
    let latest = runs.iter().max_by_key(|r| r.id);
    let error = runs
        .iter()
        .filter(|r| r.error.is_some())
        .max_by_key(|r| r.id)
        .filter(|_| state != "succeeded")
        .and_then(|r| r.error.clone());
    TaskNode {
        name: name.to_owned(),
        action: action.to_owned(),
        state,
        attempts: runs.len() as u32,
        items: over_items.then_some(last.len()),
        execution: latest.map(|r| r.id),
        started_at: runs.iter().filter_map(|r| r.started_at).min(),
        ended_at: match last.iter().all(|r| r.is_finished()) {
            true => runs.iter().filter_map(|r| r.ended_at).max(),
            false => None,
        },
        error,
    }
}

/// Times as records write them (RFC 3339).
mod time_opt {
    use serde::Serializer;
    use std::time::SystemTime;

    pub fn serialize<S: Serializer>(t: &Option<SystemTime>, s: S) -> Result<S::Ok, S::Error> {
        match t {
            Some(t) => s.serialize_str(&humantime::format_rfc3339_micros(*t).to_string()),
            None => s.serialize_none(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Definition;
    use serde_json::json;
    use std::path::Path;
    use wasmflow_store::{code, Lineage, Outcome};

    const FLOW: &str = "version: 1\ntasks:\n  a:\n    action: a.wasm\n    next: [{ do: [b, c] }, { when: '{{ failed }}', do: d }]\n  b: { action: b.wasm, with-items: [1, 2] }\n  c: { action: c.wasm }\n  d: { action: d.wasm }\n";

    fn child(parent: &ExecutionRecord, task: &str, attempt: u32, status: Status) -> ExecutionRecord {
        let mut r = ExecutionRecord::new_action(format!("{task}.wasm"), "sha256:00".into(), json!({}));
        Lineage::child_of(parent, ExecutionId::new(), task.into()).apply(&mut r);
        r.attempt = attempt;
        r.started_at = Some(r.created_at);
        match status {
            Status::Running => r.status = status,
            Status::Succeeded => r.end(Outcome::succeeded(None)),
            s => r.fail(s, Failure::new(code::ACTION, format!("{task} broke"))),
        }
        r
    }

    #[test]
    fn tasks_take_the_state_of_their_last_attempts_and_edges_keep_their_condition() {
        let def = Definition::parse(Path::new("f.yaml"), FLOW.into()).unwrap();
        let wf = ExecutionRecord::new_workflow("f".into(), "sha256:01".into(), json!({}));
        let children = vec![
            child(&wf, "a", 1, Status::Failed),
            child(&wf, "a", 2, Status::Succeeded),
            child(&wf, "b[0]", 1, Status::Succeeded),
            child(&wf, "b[1]", 1, Status::Failed),
            child(&wf, "c", 1, Status::Running),
        ];
        let g = Graph::of(&def.workflow, &children);
        let state: Vec<(&str, &str, u32)> = g
            .tasks
            .iter()
            .map(|t| (t.name.as_str(), t.state.as_str(), t.attempts))
            .collect();
        assert_eq!(
            state,
            [
                ("a", "succeeded", 2),
                ("b", "failed", 2),
                ("c", "running", 1),
                ("d", "not_run", 0)
            ]
        );
        // A retried success shows no error; an item's failure does.
        assert!(g.tasks[0].error.is_none());
        assert_eq!(g.tasks[1].error.as_ref().unwrap().message, "b[1] broke");
        assert_eq!(g.tasks[1].items, Some(2));
        assert_eq!(g.tasks[0].execution, Some(children[1].id));
        assert!(g.tasks[2].ended_at.is_none());
        assert!(g.tasks[3].execution.is_none());
        assert_eq!(g.start, ["a"]);
        assert_eq!(
            g.transitions,
            [
                Edge { from: "a".into(), to: "b".into(), when: None },
                Edge { from: "a".into(), to: "c".into(), when: None },
                Edge { from: "a".into(), to: "d".into(), when: Some("{{ failed }}".into()) },
            ]
        );
    }
}
