//! The workflow language as data: what a YAML workflow file deserializes to.
//!
//! Unknown keys are errors (`deny_unknown_fields`), so a typo is reported
//! with its position instead of being ignored. Values the user writes as
//! Jinja (`"{{ ctx.vm.name }}"`) stay JSON strings here; `expr` evaluates
//! them.

use indexmap::IndexMap;
use serde::{Deserialize, Deserializer};
use serde_json::Value;

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Workflow {
    /// The language version; `1` (or `1.0`) is the only one.
    pub version: Value,
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub description: Option<String>,
    #[serde(default)]
    pub input: Vec<InputSpec>,
    /// Initial `ctx` values; may use `input`.
    #[serde(default)]
    pub vars: IndexMap<String, Value>,
    /// Default grants of every task (a task's own `grants` replace them).
    #[serde(default)]
    pub grants: Option<GrantSpec>,
    pub tasks: IndexMap<String, Task>,
    /// The workflow's result: each key an expression over `ctx` and `input`.
    #[serde(default)]
    pub output: IndexMap<String, Value>,
}

/// One workflow input parameter.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InputSpec {
    pub name: String,
    /// A WIT-like type (`string`, `u32`, `bool`, `list<string>`, ...) or a
    /// JSON Schema type (`integer`, `number`, `object`, `array`, ...).
    #[serde(rename = "type", default)]
    pub ty: Option<String>,
    /// Defaults to true unless a default is given.
    #[serde(default)]
    pub required: Option<bool>,
    #[serde(default)]
    pub default: Option<Value>,
    #[serde(default)]
    pub description: Option<String>,
}

/// Grants as a workflow writes them (strings may be templates:
/// `"{{ input.dir }}"`); the one grant spec of wasmflow.
pub use wasmflow_runtime::grants::GrantSpec;

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct Task {
    /// A component (`.wasm`/`.wat`) or workflow (`.yaml`) path, relative to
    /// this file.
    pub action: String,
    /// The action's input, keyed by parameter name; values may be templates.
    #[serde(default)]
    pub input: IndexMap<String, Value>,
    #[serde(default)]
    pub grants: Option<GrantSpec>,
    /// Wall-time limit of one attempt (`30s`, `2m`).
    #[serde(default)]
    pub timeout: Option<String>,
    #[serde(default)]
    pub retry: Option<Retry>,
    /// A list, or an expression giving one: the task runs once per item,
    /// with `item` bound to it.
    #[serde(default)]
    pub with_items: Option<Value>,
    /// How many items run at once (default: all).
    #[serde(default)]
    pub concurrency: Option<u32>,
    /// Wait for inbound transitions before starting: all of them, or N.
    #[serde(default)]
    pub join: Option<Join>,
    #[serde(default)]
    pub next: Vec<Transition>,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Retry {
    /// Attempts after the first.
    pub count: u32,
    /// Wait before the first retry (`1s`, `200ms`).
    #[serde(default)]
    pub delay: Option<String>,
    /// Each further wait is the previous one times this (default 1).
    #[serde(default)]
    pub backoff: Option<f64>,
    /// Retry only when this holds (over `error`, `result`); default: any
    /// failure.
    #[serde(default)]
    pub when: Option<String>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Join {
    All,
    Count(u32),
}

impl<'de> Deserialize<'de> for Join {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        use serde::de::Error;
        match Value::deserialize(d)? {
            Value::String(s) if s == "all" => Ok(Join::All),
            Value::Number(n) if n.as_u64().is_some_and(|n| n >= 1 && n <= u32::MAX as u64) => {
                Ok(Join::Count(n.as_u64().unwrap_or(1) as u32))
            }
            other => Err(D::Error::custom(format!(
                "expected `all` or a positive number of inbound transitions, got {other}"
            ))),
        }
    }
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Transition {
    /// Taken when this holds; without it, taken when the task succeeded.
    #[serde(default)]
    pub when: Option<String>,
    /// Values to set in `ctx`: a map, or a list of one-key maps (Orquesta's
    /// form).
    #[serde(default, deserialize_with = "publish")]
    pub publish: IndexMap<String, Value>,
    /// Tasks to start: one name or a list.
    #[serde(default, rename = "do", deserialize_with = "one_or_many")]
    pub to: Vec<String>,
}

fn publish<'de, D: Deserializer<'de>>(d: D) -> Result<IndexMap<String, Value>, D::Error> {
    use serde::de::Error;
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Form {
        Map(IndexMap<String, Value>),
        List(Vec<IndexMap<String, Value>>),
    }
    match Form::deserialize(d) {
        Ok(Form::Map(m)) => Ok(m),
        Ok(Form::List(l)) => Ok(l.into_iter().flatten().collect()),
        Err(_) => Err(D::Error::custom(
            "expected a map of names to expressions, or a list of one-key maps",
        )),
    }
}

fn one_or_many<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
    use serde::de::Error;
    match Value::deserialize(d)? {
        // Orquesta also accepts `do: a, b`.
        Value::String(s) => Ok(s
            .split(',')
            .map(|t| t.trim().to_owned())
            .filter(|t| !t.is_empty())
            .collect()),
        Value::Array(items) => items
            .into_iter()
            .map(|v| match v {
                Value::String(s) => Ok(s),
                other => Err(D::Error::custom(format!(
                    "expected a task name, got {other}"
                ))),
            })
            .collect(),
        other => Err(D::Error::custom(format!(
            "expected a task name or a list of them, got {other}"
        ))),
    }
}

impl Workflow {
    /// Tasks that no transition leads to: where the workflow starts.
    pub fn start_tasks(&self) -> Vec<&str> {
        let targets: std::collections::HashSet<&str> = self
            .tasks
            .values()
            .flat_map(|t| t.next.iter().flat_map(|n| n.to.iter().map(String::as_str)))
            .collect();
        self.tasks
            .keys()
            .map(String::as_str)
            .filter(|n| !targets.contains(n))
            .collect()
    }

    /// How many transitions lead to `task` (what `join: all` waits for).
    pub fn inbound(&self, task: &str) -> usize {
        self.tasks
            .values()
            .flat_map(|t| t.next.iter())
            .filter(|n| n.to.iter().any(|d| d == task))
            .count()
    }

    /// The tasks reachable from `from` by transitions, `from` included.
    pub fn reachable_from(&self, from: &str) -> std::collections::BTreeSet<String> {
        let mut seen = std::collections::BTreeSet::new();
        let mut todo = vec![from.to_owned()];
        while let Some(t) = todo.pop() {
            if !seen.insert(t.clone()) {
                continue;
            }
            if let Some(task) = self.tasks.get(&t) {
                for n in &task.next {
                    todo.extend(n.to.iter().cloned());
                }
            }
        }
        seen
    }
}
