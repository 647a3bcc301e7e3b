//! Following an execution from its records, as any reader of the store
//! can (another process, through the holder of an embedded store, or a
//! shared store): each poll says what is new since the last one, the log
//! lines of the execution and of its tasks as their records carry them,
//! each task's end, and the execution's own end.
//!
//! A record carries its log lines once its execution ends (the running
//! process holds them until then), so a workflow is followed task by
//! task; the server's event stream, where the execution runs, is live.
//!
//! Built on the [`Store`] interface alone.

use crate::error::StoreError;
use crate::record::{ExecutionId, ExecutionRecord, LogLine, Status};
use crate::store::Store;
use std::collections::{HashMap, HashSet};

/// Something new about a followed execution.
#[derive(Debug)]
pub enum Followed {
    /// A log line of the execution (`task: None`) or of one of its tasks
    /// (named by its task path, `outer/inner` for a nested workflow's).
    Log { task: Option<String>, line: LogLine },
    /// A task's execution ended.
    TaskEnded { task: String, status: Status },
    /// The execution ended (or paused): its record. Nothing follows.
    End(Box<ExecutionRecord>),
}

/// What one reader has seen of an execution and its tasks.
pub struct Follower {
    root: ExecutionId,
    lines_seen: HashMap<ExecutionId, usize>,
    ended: HashSet<ExecutionId>,
}

impl Follower {
    pub fn new(root: ExecutionId) -> Self {
        Self {
            root,
            lines_seen: HashMap::new(),
            ended: HashSet::new(),
        }
    }

    /// What is new since the last poll, tasks before the execution itself,
    /// each task's lines before its end.
    pub fn poll(&mut self, store: &Store) -> Result<Vec<Followed>, StoreError> {
        let root = store
            .get(self.root)?
            .ok_or_else(|| StoreError::NotFound(self.root.to_string()))?;
        let mut out = Vec::new();
        self.tasks(store, root.id, "", &mut out)?;
        self.lines(&root, None, &mut out);
        // A paused workflow waits for someone: following stops there too.
        if root.is_finished() || root.status == Status::Paused {
            out.push(Followed::End(Box::new(root)));
        }
        Ok(out)
    }

    /// The tasks under `parent`, depth first, oldest first.
    fn tasks(
        &mut self,
        store: &Store,
        parent: ExecutionId,
        prefix: &str,
        out: &mut Vec<Followed>,
    ) -> Result<(), StoreError> {
        for child in store.children(parent)? {
            if self.ended.contains(&child.id) {
                continue;
            }
            let name = format!("{prefix}{}", child.task.as_deref().unwrap_or("task"));
            self.tasks(store, child.id, &format!("{name}/"), out)?;
            self.lines(&child, Some(&name), out);
            if child.is_finished() {
                self.ended.insert(child.id);
                out.push(Followed::TaskEnded {
                    task: name,
                    status: child.status,
                });
            }
        }
        Ok(())
    }

    fn lines(&mut self, record: &ExecutionRecord, task: Option<&str>, out: &mut Vec<Followed>) {
        let seen = self.lines_seen.entry(record.id).or_default();
        for line in record.logs.iter().skip(*seen) {
            out.push(Followed::Log {
                task: task.map(str::to_owned),
                line: line.clone(),
            });
        }
        *seen = record.logs.len().max(*seen);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record::{LogLevel, LogLine};
    use serde_json::json;

    fn line(text: &str) -> LogLine {
        LogLine {
            at_ms: 0,
            level: LogLevel::Info,
            message: text.into(),
            progress: None,
        }
    }

    #[test]
    fn each_line_and_end_is_said_once_tasks_first() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let mut wf = ExecutionRecord::new_action("wf".into(), "sha256:00".into(), json!({}));
        wf.status = Status::Running;
        store.put(&wf).unwrap();
        let mut task = ExecutionRecord::new_action("a".into(), "sha256:00".into(), json!({}));
        task.parent = Some(wf.id);
        task.root = Some(wf.id);
        task.task = Some("first".into());
        task.status = Status::Running;
        store.put(&task).unwrap();

        let mut follower = Follower::new(wf.id);
        assert!(follower.poll(&store).unwrap().is_empty());

        task.logs = vec![line("one"), line("two")];
        task.status = Status::Succeeded;
        store.put(&task).unwrap();
        let said: Vec<String> = follower
            .poll(&store)
            .unwrap()
            .iter()
            .map(|f| match f {
                Followed::Log { task, line } => format!("{task:?} {}", line.message),
                Followed::TaskEnded { task, status } => format!("{task} {status}"),
                Followed::End(r) => format!("end {}", r.status),
            })
            .collect();
        assert_eq!(
            said,
            [
                r#"Some("first") one"#,
                r#"Some("first") two"#,
                "first succeeded"
            ]
        );
        // Nothing again.
        assert!(follower.poll(&store).unwrap().is_empty());

        wf.logs = vec![line("done")];
        wf.status = Status::Failed;
        store.put(&wf).unwrap();
        let last = follower.poll(&store).unwrap();
        assert!(matches!(&last[0], Followed::Log { task: None, line } if line.message == "done"));
        assert!(matches!(&last[1], Followed::End(r) if r.status == Status::Failed));
    }
}
