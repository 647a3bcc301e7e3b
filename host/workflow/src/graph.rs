//! A workflow execution as a graph: the tasks and transitions of the
//! workflow it ran (from the copy kept in the store), each task with the
//! state its journal gives it and the times its executions' records
//! give. The web UI draws it; `execution get --tree` lists the same
//! executions without the shape.
//!
//! What it must not touch: layout and drawing (the front end's).

use crate::journal::{State, TaskRun};
use crate::model::Workflow;
use serde::Serialize;
use std::time::SystemTime;
use wasmflow_store::{ExecutionId, ExecutionRecord, Failure};

/// A workflow execution's tasks and transitions.
#[derive(Clone, Debug, Serialize)]
pub struct Graph {
    /// In the order the workflow declares them.
    pub tasks: Vec<TaskNode>,
    pub transitions: Vec<Edge>,
    /// The tasks no transition leads to: where it starts.
    pub start: Vec<String>,
}

/// One task and what its runs say.
#[derive(Clone, Debug, Serialize)]
pub struct TaskNode {
    pub name: String,
    /// The task's `action` as the workflow writes it.
    pub action: String,
    /// How its last run ended (`succeeded`, `failed`, ...), `running`
    /// while an attempt runs, `pending` while one waits (to start, or to
    /// retry), or `not_run` when no transition has led to it.
    pub state: String,
    /// Attempts started, over all its runs and items.
    pub attempts: u32,
    /// Items of its last run, for a task over `with-items`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub items: Option<usize>,
    /// Its last run took an earlier execution's result (`re-run --from`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reused_from: Option<ExecutionId>,
    /// Its latest execution (the one a click opens).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub execution: Option<ExecutionId>,
    #[serde(
        skip_serializing_if = "Option::is_none",
        with = "wasmflow_store::rfc3339_time::option"
    )]
    pub started_at: Option<SystemTime>,
    #[serde(
        skip_serializing_if = "Option::is_none",
        with = "wasmflow_store::rfc3339_time::option"
    )]
    pub ended_at: Option<SystemTime>,
    /// Why its last run failed (also when it failed before any execution
    /// started: a grant denied, an input that did not render).
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
    /// `workflow` in the `state` its journal folds to, with the times of
    /// its task executions (`children`, the execution's direct children).
    pub fn of(workflow: &Workflow, state: &State, children: &[ExecutionRecord]) -> Self {
        let tasks = workflow
            .tasks
            .iter()
            .map(|(name, task)| {
                let runs: Vec<&TaskRun> = state.runs.iter().filter(|r| r.name == *name).collect();
                node(name, &task.action, &runs, children)
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

fn node(name: &str, action: &str, runs: &[&TaskRun], children: &[ExecutionRecord]) -> TaskNode {
    let slots = || runs.iter().flat_map(|r| r.slots().iter());
    let last = runs.last();
    let state = match last {
        None => "not_run".to_owned(),
        Some(r) => match &r.completed {
            Some(o) => o.status.to_string(),
            None if r.slots().iter().any(|s| s.is_running()) => "running".to_owned(),
            None => "pending".to_owned(),
        },
    };
    let error = last.and_then(|r| match &r.completed {
        Some(o) => o.error.clone(),
        None => None,
    });
    let ids: Vec<ExecutionId> = slots().filter_map(|s| s.child).collect();
    let records: Vec<&ExecutionRecord> = children.iter().filter(|c| ids.contains(&c.id)).collect();
    let running = state == "running" || state == "pending";
    TaskNode {
        name: name.to_owned(),
        action: action.to_owned(),
        state,
        // A slot that failed before its first attempt started (a grant
        // denied) still counts as one.
        attempts: slots()
            .map(|s| s.attempt.max(u32::from(s.outcome.is_some())))
            .sum(),
        items: last.and_then(|r| r.items.as_ref().map(Vec::len)),
        reused_from: last.and_then(|r| r.reused_from),
        execution: ids.iter().max().copied(),
        started_at: records.iter().filter_map(|r| r.started_at).min(),
        ended_at: match running {
            true => None,
            false => records.iter().filter_map(|r| r.ended_at).max(),
        },
        error,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::journal::Entry;
    use crate::Definition;
    use serde_json::json;
    use std::path::Path;
    use wasmflow_store::{code, Status};

    const FLOW: &str = "version: 1\ntasks:\n  a:\n    action: a.wasm\n    next: [{ do: [b, c] }, { when: '{{ failed }}', do: d }]\n  b: { action: b.wasm, with-items: [1, 2] }\n  c: { action: c.wasm }\n  d: { action: d.wasm }\n";

    fn settle(
        run: usize,
        slot: usize,
        child: Option<ExecutionId>,
        status: Status,
        retry: bool,
    ) -> Entry {
        Entry::Settle {
            run,
            slot,
            child,
            status,
            result: None,
            error: (status != Status::Succeeded)
                .then(|| Failure::new(code::ACTION, format!("run {run} slot {slot} broke"))),
            retry,
        }
    }

    fn dispatch(run: usize, slot: usize, attempt: u32, child: ExecutionId) -> Entry {
        Entry::Dispatch {
            run,
            slot,
            attempt,
            child,
            input: json!({}),
        }
    }

    fn complete(run: usize, status: Status, next: &[&str]) -> Entry {
        Entry::Complete {
            run,
            status,
            result: None,
            error: (status != Status::Succeeded)
                .then(|| Failure::new(code::ACTION, "an item broke")),
            publish: Default::default(),
            next: next.iter().map(|s| s.to_string()).collect(),
            reused_from: None,
            run_on_fail: false,
            next_routes: Vec::new(),
            new_routes: Vec::new(),
        }
    }

    #[test]
    fn tasks_take_their_state_from_the_journal_and_edges_keep_their_condition() {
        let def = Definition::parse(Path::new("f.yaml"), FLOW.into()).unwrap();
        let wf = &def.workflow;
        let ids: Vec<ExecutionId> = (0..5).map(|_| ExecutionId::new()).collect();
        let mut timed = ExecutionRecord::new_action("a.wasm".into(), "sha256:00".into(), json!({}));
        timed.id = ids[1];
        timed.started_at = Some(SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(7));
        timed.ended_at = Some(SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(9));
        let entries = [
            Entry::Begin {
                input: json!({}),
                ctx: Default::default(),
            },
            // a: failed once, retried, succeeded; b and c start.
            dispatch(0, 0, 1, ids[0]),
            settle(0, 0, Some(ids[0]), Status::Failed, true),
            dispatch(0, 0, 2, ids[1]),
            settle(0, 0, Some(ids[1]), Status::Succeeded, false),
            complete(0, Status::Succeeded, &["b", "c"]),
            // b over two items: one fails.
            Entry::Items {
                run: 1,
                items: vec![json!(1), json!(2)],
            },
            dispatch(1, 0, 1, ids[2]),
            dispatch(1, 1, 1, ids[3]),
            settle(1, 0, Some(ids[2]), Status::Succeeded, false),
            settle(1, 1, Some(ids[3]), Status::Failed, false),
            complete(1, Status::Failed, &[]),
            // c runs.
            dispatch(2, 0, 1, ids[4]),
        ];
        let mut state = State::default();
        for e in &entries {
            state.apply(wf, e);
        }
        let g = Graph::of(wf, &state, &[timed]);
        let got: Vec<(&str, &str, u32)> = g
            .tasks
            .iter()
            .map(|t| (t.name.as_str(), t.state.as_str(), t.attempts))
            .collect();
        assert_eq!(
            got,
            [
                ("a", "succeeded", 2),
                ("b", "failed", 2),
                ("c", "running", 1),
                ("d", "not_run", 0)
            ]
        );
        assert!(g.tasks[0].error.is_none());
        assert_eq!(g.tasks[1].error.as_ref().unwrap().message, "an item broke");
        assert_eq!(g.tasks[1].items, Some(2));
        assert_eq!(g.tasks[0].execution, Some(ids[1]));
        assert_eq!(
            g.tasks[0].started_at,
            Some(SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(7))
        );
        assert!(g.tasks[2].ended_at.is_none());
        assert!(g.tasks[3].execution.is_none());
        assert_eq!(g.start, ["a"]);
        assert_eq!(
            g.transitions,
            [
                Edge {
                    from: "a".into(),
                    to: "b".into(),
                    when: None
                },
                Edge {
                    from: "a".into(),
                    to: "c".into(),
                    when: None
                },
                Edge {
                    from: "a".into(),
                    to: "d".into(),
                    when: Some("{{ failed }}".into())
                },
            ]
        );
    }
}
