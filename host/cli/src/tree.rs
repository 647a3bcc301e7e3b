//! `execution get ID --tree`: an execution with its child executions.

use crate::print;
use serde_json::Value;
use wasmflow_store::{ExecutionRecord, Kind, Store, StoreError};

pub struct Node {
    pub record: ExecutionRecord,
    pub children: Vec<Node>,
}

impl Node {
    pub fn build(store: &Store, record: ExecutionRecord) -> Result<Self, StoreError> {
        let children = store
            .children(record.id)?
            .into_iter()
            .map(|c| Node::build(store, c))
            .collect::<Result<_, _>>()?;
        Ok(Node { record, children })
    }

    /// A tree as `to_json` (or the API's `?tree=true`) writes it.
    pub fn from_json(mut v: Value) -> Result<Self, serde_json::Error> {
        let children = match v.as_object_mut().and_then(|m| m.remove("children")) {
            Some(Value::Array(c)) => c
                .into_iter()
                .map(Node::from_json)
                .collect::<Result<_, _>>()?,
            _ => Vec::new(),
        };
        Ok(Node {
            record: serde_json::from_value(v)?,
            children,
        })
    }

    /// The record as JSON with a `children` array, recursively.
    pub fn to_json(&self) -> Value {
        let mut v = serde_json::to_value(&self.record).expect("records serialize");
        if let Value::Object(m) = &mut v {
            m.insert(
                "children".into(),
                Value::Array(self.children.iter().map(Node::to_json).collect()),
            );
        }
        v
    }

    pub fn print(&self) {
        let mut rows = Vec::new();
        self.rows("", "", &mut rows);
        let width = rows.iter().map(|r| r[0].chars().count()).max().unwrap_or(0);
        let status_w = rows.iter().map(|r| r[1].len()).max().unwrap_or(0);
        let took_w = rows.iter().map(|r| r[2].len()).max().unwrap_or(0);
        for r in rows {
            let pad = width - r[0].chars().count();
            println!(
                "{}{}  {:<status_w$}  {:>took_w$}  {}  {}",
                r[0],
                " ".repeat(pad),
                r[1],
                r[2],
                r[3],
                r[4]
            );
        }
    }

    fn rows(&self, lead: &str, child_lead: &str, out: &mut Vec<[String; 5]>) {
        let r = &self.record;
        let name = match (&r.task, r.kind) {
            (Some(t), _) => t.clone(),
            (None, Kind::Workflow) => "workflow".into(),
            (None, Kind::Action) => "action".into(),
        };
        out.push([
            format!("{lead}{name}"),
            r.status.to_string(),
            r.elapsed()
                .map(print::elapsed)
                .unwrap_or_else(|| "-".into()),
            r.id.to_string(),
            r.action.clone(),
        ]);
        let n = self.children.len();
        for (i, c) in self.children.iter().enumerate() {
            let last = i + 1 == n;
            let (l, cl) = if last {
                ("└─ ", "   ")
            } else {
                ("├─ ", "│  ")
            };
            c.rows(
                &format!("{child_lead}{l}"),
                &format!("{child_lead}{cl}"),
                out,
            );
        }
    }
}
