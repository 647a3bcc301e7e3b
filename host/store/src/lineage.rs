//! Where an execution sits among others, as one value: the id it was
//! named before it started, the workflow run and task it is part of, what
//! it re-runs, when it was accepted and who runs it. Front ends and the
//! scheduler make a [`Lineage`] and hand it on; the record it ends up in
//! gets every field at once ([`Lineage::apply`]), so no copy forgets one.
//!
//! What it must not touch: storage; the record keeps these fields as they
//! always were (the stored JSON does not change).

use crate::record::{ExecutionId, ExecutionRecord, StartedBy};
use std::time::SystemTime;

#[derive(Clone, Debug, Default, PartialEq)]
pub struct Lineage {
    /// Use this id (named before it started: a scheduler's child, an
    /// accepted record); otherwise a new one.
    pub id: Option<ExecutionId>,
    /// The workflow execution it runs in.
    pub parent: Option<ExecutionId>,
    /// The top of that tree.
    pub root: Option<ExecutionId>,
    /// The workflow task it runs for (`name`, or `name[i]` for an item).
    pub task: Option<String>,
    pub rerun_of: Option<ExecutionId>,
    /// When it was accepted, if before it started (a server's queue).
    pub created_at: Option<SystemTime>,
    /// Who runs it (`server/0`).
    pub worker: Option<String>,
    /// Who or what started it (top-level executions).
    pub started_by: Option<StartedBy>,
}

impl Lineage {
    /// An accepted record's own lineage, to run it under its own id.
    pub fn of(record: &ExecutionRecord) -> Self {
        Self {
            id: Some(record.id),
            parent: record.parent,
            root: record.root,
            task: record.task.clone(),
            rerun_of: record.rerun_of,
            created_at: Some(record.created_at),
            worker: record.worker.clone(),
            started_by: record.started_by.clone(),
        }
    }

    /// Task `task` of the workflow execution `parent`, named `id`.
    pub fn child_of(parent: &ExecutionRecord, id: ExecutionId, task: String) -> Self {
        Self {
            id: Some(id),
            parent: Some(parent.id),
            root: Some(parent.root.unwrap_or(parent.id)),
            task: Some(task),
            ..Self::default()
        }
    }

    /// A re-run of `original`: a new execution of its own (top level,
    /// listed like any other), linked to it by `rerun_of`.
    pub fn rerun_of(original: &ExecutionRecord) -> Self {
        Self {
            rerun_of: Some(original.id),
            ..Self::default()
        }
    }

    /// Give `record` this lineage: every field, those not given cleared
    /// (the id and `created_at` kept as made when not given).
    pub fn apply(self, record: &mut ExecutionRecord) {
        if let Some(id) = self.id {
            record.id = id;
        }
        if let Some(at) = self.created_at {
            record.created_at = at;
        }
        record.parent = self.parent;
        record.root = self.root;
        record.task = self.task;
        record.rerun_of = self.rerun_of;
        record.worker = self.worker;
        record.started_by = self.started_by;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn record() -> ExecutionRecord {
        ExecutionRecord::new_action("a".into(), "sha256:x".into(), json!({}))
    }

    #[test]
    fn children_name_their_tree_and_reruns_stand_alone() {
        let top = record();
        let mut child = record();
        let id = ExecutionId::new();
        Lineage::child_of(&top, id, "t[1]".into()).apply(&mut child);
        assert_eq!(
            (child.id, child.parent, child.root),
            (id, Some(top.id), Some(top.id))
        );
        assert_eq!(child.task.as_deref(), Some("t[1]"));

        // A grandchild's root is the top, not its parent.
        let mut grandchild = record();
        Lineage::child_of(&child, ExecutionId::new(), "u".into()).apply(&mut grandchild);
        assert_eq!(grandchild.root, Some(top.id));

        // A re-run of a task is an execution of its own, linked back.
        let mut again = record();
        let made = again.id;
        Lineage::rerun_of(&child).apply(&mut again);
        assert_eq!(again.id, made);
        assert_eq!(
            (again.parent, again.root, again.task.as_deref()),
            (None, None, None)
        );
        assert_eq!(again.rerun_of, Some(child.id));

        // An accepted record runs under its own lineage.
        let mut run = record();
        Lineage::of(&child).apply(&mut run);
        assert_eq!(Lineage::of(&run), Lineage::of(&child));
    }
}
