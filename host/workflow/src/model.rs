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
    /// The inputs: specs, or Orquesta's names and one-key maps of a name
    /// to its default.
    #[serde(default, deserialize_with = "inputs")]
    pub input: Vec<InputSpec>,
    /// Initial `ctx` values; may use `input`. A map, or Orquesta's list of
    /// one-key maps.
    #[serde(default, deserialize_with = "publish")]
    pub vars: IndexMap<String, Value>,
    /// Default grants of every task (a task's own `grants` replace them).
    #[serde(default)]
    pub grants: Option<GrantSpec>,
    pub tasks: IndexMap<String, Task>,
    /// Whether any expression may call `task_status()`: the statuses it
    /// reads are gathered only then (see `Definition::parse`).
    #[serde(skip)]
    pub reads_task_status: bool,
    /// Orquesta's split tasks outside a cycle: their runs each get a route
    /// of their own (see `Workflow::is_split`; found by `Definition::parse`).
    #[serde(skip)]
    pub splits: std::collections::HashSet<String>,
    /// The workflow's result: each key an expression over `ctx` and `input`
    /// (a map, or Orquesta's list of one-key maps).
    #[serde(default, deserialize_with = "publish")]
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
    /// this file, `pack.action` or `oci://`; Orquesta's inline parameters
    /// after it (`core.echo message=<% ctx(m) %>`) are moved into `input`
    /// by [`Workflow::orquesta_forms`]. A task without one only routes: it
    /// runs `core.noop`.
    #[serde(default = "noop")]
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
    /// Wait this long before the task's first attempt: seconds, a
    /// duration (`30s`), or an expression giving either (Orquesta's
    /// `delay`). A retry waits `retry.delay` instead.
    #[serde(default)]
    pub delay: Option<Value>,
    /// A list, or an expression giving one: the task runs once per item,
    /// with `item` bound to it.
    #[serde(default)]
    pub with_items: Option<Value>,
    /// How many items run at once (default: all).
    #[serde(default)]
    pub concurrency: Option<u32>,
    /// Orquesta's `with`: `"x in <% ... %>"` (names for `item(x)`), an
    /// expression, or `{items, concurrency}`; read into `with_items`,
    /// `item_names` and `concurrency` by [`Workflow::orquesta_forms`].
    #[serde(default, rename = "with")]
    pub with: Option<With>,
    /// The names `with` gave each item (`x, y in <% zip(..) %>`).
    #[serde(skip)]
    pub item_names: Vec<String>,
    /// Wait for inbound transitions before starting: all of them, or N.
    #[serde(default)]
    pub join: Option<Join>,
    #[serde(default)]
    pub next: Vec<Transition>,
}

/// Orquesta's `with`.
#[derive(Clone, Debug, Deserialize)]
#[serde(untagged)]
pub enum With {
    Items(String),
    Spec {
        items: String,
        #[serde(default)]
        concurrency: Option<u32>,
    },
}

fn noop() -> String {
    "core.noop".into()
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Retry {
    /// Attempts after the first.
    pub count: u32,
    /// Wait before the first retry (`1s`, `200ms`; a number is seconds,
    /// as Orquesta writes it).
    #[serde(default, deserialize_with = "seconds")]
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
    /// Taken when this holds; without it, whenever the task completes
    /// (Orquesta's rule), whatever its status.
    #[serde(default)]
    pub when: Option<String>,
    /// Values to set in `ctx`: a map, or a list of one-key maps (Orquesta's
    /// form).
    #[serde(default, deserialize_with = "publish")]
    pub publish: IndexMap<String, Value>,
    /// Tasks to start: one name or a list.
    #[serde(default, rename = "do", deserialize_with = "one_or_many")]
    pub to: Vec<String>,
    /// Orquesta's engine commands among the names of `do`, moved here by
    /// [`Workflow::orquesta_forms`].
    #[serde(skip)]
    pub commands: Vec<Command>,
}

/// Orquesta's engine commands, written in `do` beside task names.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Command {
    /// Nothing more (what a transition without `do` does).
    Continue,
    /// Nothing more, and the task's failure counts as handled.
    Noop,
    /// Fail the workflow.
    Fail,
    /// Run the task again (at most [`Command::RETRIES`] times), at once.
    Retry,
}

impl Command {
    /// How many times `do: retry` runs a task again.
    pub const RETRIES: usize = 3;

    /// The command as `do` names it.
    pub fn name(self) -> &'static str {
        match self {
            Command::Continue => "continue",
            Command::Noop => "noop",
            Command::Fail => "fail",
            Command::Retry => "retry",
        }
    }

    pub fn parse(name: &str) -> Option<Self> {
        Some(match name {
            "continue" => Command::Continue,
            "noop" => Command::Noop,
            "fail" => Command::Fail,
            "retry" => Command::Retry,
            _ => return None,
        })
    }
}

/// A map of names to values, Orquesta's list of one-key maps, or its
/// string of `name=value` assignments.
fn publish<'de, D: Deserializer<'de>>(d: D) -> Result<IndexMap<String, Value>, D::Error> {
    use serde::de::Error;
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Form {
        Map(IndexMap<String, Value>),
        List(Vec<IndexMap<String, Value>>),
        Text(String),
    }
    match Form::deserialize(d) {
        Ok(Form::Map(m)) => Ok(m),
        Ok(Form::List(l)) => Ok(l.into_iter().flatten().collect()),
        Ok(Form::Text(t)) => Ok(assignments(&t)
            .map_err(D::Error::custom)?
            .into_iter()
            .collect()),
        Err(_) => Err(D::Error::custom(
            "expected a map of names to expressions, a list of one-key maps, or name=value pairs",
        )),
    }
}

/// Input specs; or Orquesta's names (`- host`) and one-key maps of a name
/// to its default (`- port: 22`).
fn inputs<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<InputSpec>, D::Error> {
    use serde::de::Error;
    const SPEC: [&str; 5] = ["name", "type", "required", "default", "description"];
    let items = Vec::<Value>::deserialize(d)?;
    items
        .into_iter()
        .map(|item| match item {
            Value::String(name) => Ok(InputSpec::named(name, None)),
            Value::Object(m)
                if m.get("name").is_some_and(Value::is_string)
                    && m.keys().all(|k| SPEC.contains(&k.as_str())) =>
            {
                serde_json::from_value(Value::Object(m)).map_err(D::Error::custom)
            }
            Value::Object(m) if m.len() == 1 => {
                let (name, default) = m.into_iter().next().expect("one key");
                Ok(InputSpec::named(name, Some(default)))
            }
            other => Err(D::Error::custom(format!(
                "an input is a name, a one-key map of a name to its default, or a map with name (and type, required, default, description), not {other}"
            ))),
        })
        .collect()
}

/// A duration as text (`30s`), or a number of seconds.
fn seconds<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    use serde::de::Error;
    match Option::<Value>::deserialize(d)? {
        None => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(Value::Number(n)) if n.as_f64().is_some_and(|f| f >= 0.0) => Ok(Some(format!("{n}s"))),
        Some(other) => Err(D::Error::custom(format!(
            "expected a duration (30s, 2m) or a number of seconds, got {other}"
        ))),
    }
}

impl InputSpec {
    fn named(name: String, default: Option<Value>) -> Self {
        Self {
            name,
            ty: None,
            required: None,
            default,
            description: None,
        }
    }
}

/// `name=value name2=value2`, as Orquesta writes inline action parameters
/// and `publish`: a value runs to the next space outside quotes, brackets,
/// `<% %>` and `{{ }}`; an expression stays text, a quoted value is a
/// string, anything else reads as YAML (`n=3` is a number).
pub fn assignments(text: &str) -> Result<Vec<(String, Value)>, String> {
    let chars: Vec<char> = text.chars().collect();
    let mut out = Vec::new();
    let mut i = 0;
    let at = |i: usize| chars.get(i).copied();
    loop {
        while at(i).is_some_and(char::is_whitespace) {
            i += 1;
        }
        if i >= chars.len() {
            return Ok(out);
        }
        let start = i;
        while at(i).is_some_and(|c| c.is_alphanumeric() || c == '_' || c == '-') {
            i += 1;
        }
        let key: String = chars[start..i].iter().collect();
        if key.is_empty() || at(i) != Some('=') {
            let rest: String = chars[start..].iter().collect();
            return Err(format!("expected name=value at `{rest}`"));
        }
        i += 1;
        let from = i;
        let mut depth = 0i32;
        let mut quote: Option<char> = None;
        while let Some(c) = at(i) {
            let two = (c, at(i + 1).unwrap_or(' '));
            match quote {
                Some(q) if c == q => quote = None,
                Some(_) => {}
                None => match two {
                    ('<', '%') | ('{', '{') => {
                        depth += 1;
                        i += 1;
                    }
                    ('%', '>') | ('}', '}') => {
                        depth -= 1;
                        i += 1;
                    }
                    ('\'', _) | ('"', _) => quote = Some(c),
                    ('[', _) | ('{', _) | ('(', _) => depth += 1,
                    (']', _) | ('}', _) | (')', _) => depth -= 1,
                    _ if c.is_whitespace() && depth <= 0 => break,
                    _ => {}
                },
            }
            i += 1;
        }
        let raw: String = chars[from..i.min(chars.len())].iter().collect();
        let quoted = raw.len() >= 2
            && (raw.starts_with('"') && raw.ends_with('"')
                || raw.starts_with('\'') && raw.ends_with('\''));
        let value = if quoted {
            Value::String(raw[1..raw.len() - 1].to_owned())
        } else if raw.contains("<%") || raw.contains("{{") {
            Value::String(raw)
        } else {
            serde_yaml::from_str::<Value>(&raw).unwrap_or(Value::String(raw))
        };
        out.push((key, value));
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
    /// Read what Orquesta writes in one place into the model's fields:
    /// inline action parameters into `input`, `with` into `with_items`,
    /// `item_names` and `concurrency`. The problems, each with the path of
    /// what is wrong.
    pub fn orquesta_forms(&mut self) -> Vec<(String, String)> {
        let mut problems = Vec::new();
        for (name, task) in &mut self.tasks {
            let at = |field: &str| format!("tasks.{name}.{field}");
            if Command::parse(name).is_some() {
                problems.push((
                    format!("tasks.{name}"),
                    format!("`{name}` is an engine command's name (continue, noop, fail, retry): name the task otherwise"),
                ));
            }
            for t in task.next.iter_mut() {
                t.commands = t.to.iter().filter_map(|n| Command::parse(n)).collect();
                t.to.retain(|n| Command::parse(n).is_none());
            }
            if let Some((action, params)) = task.action.trim().split_once(char::is_whitespace) {
                let action = action.to_owned();
                match assignments(params) {
                    Ok(pairs) => {
                        for (k, v) in pairs {
                            if task.input.contains_key(&k) {
                                problems.push((
                                    at("action"),
                                    format!("`{k}` is given both inline and in input"),
                                ));
                            }
                            task.input.insert(k, v);
                        }
                    }
                    Err(e) => problems.push((at("action"), e)),
                }
                task.action = action;
            }
            let Some(with) = task.with.take() else {
                continue;
            };
            if task.with_items.is_some() {
                problems.push((at("with"), "give `with` or `with-items`, not both".into()));
                continue;
            }
            let (items, concurrency) = match with {
                With::Items(items) => (items, None),
                With::Spec { items, concurrency } => (items, concurrency),
            };
            let (names, expr) = match items.split_once(" in ") {
                Some((names, expr)) if !names.contains("<%") && !names.contains("{{") => {
                    let names: Vec<String> =
                        names.split(',').map(|n| n.trim().to_owned()).collect();
                    if names.iter().any(|n| {
                        n.is_empty() || !n.chars().all(|c| c.is_alphanumeric() || c == '_')
                    }) {
                        problems.push((
                            at("with"),
                            format!("`{items}`: expected NAME in EXPRESSION"),
                        ));
                        continue;
                    }
                    (names, expr.trim().to_owned())
                }
                _ => (Vec::new(), items.trim().to_owned()),
            };
            task.with_items = Some(Value::String(expr));
            task.item_names = names;
            if concurrency.is_some() {
                task.concurrency = concurrency;
            }
        }
        problems
    }

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

    /// Orquesta's split task: reached by more than one transition, and
    /// not a join. Outside a cycle, each arrival runs it on a route of its
    /// own.
    pub fn is_split(&self, task: &str) -> bool {
        self.tasks.get(task).is_some_and(|t| t.join.is_none()) && self.inbound(task) > 1
    }

    /// Whether `task` can lead back to itself.
    pub fn in_cycle(&self, task: &str) -> bool {
        self.tasks.get(task).is_some_and(|t| {
            t.next
                .iter()
                .flat_map(|n| n.to.iter())
                .any(|next| self.reachable_from(next).contains(task))
        })
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

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn orquesta_assignments() {
        let got = assignments(
            r#"message="<% ctx(a) %> and <% item(b) %>" n=3 flag=true list=<% [1, 2] %> s='x y' raw=plain"#,
        )
        .unwrap();
        let got: Vec<(&str, Value)> = got.iter().map(|(k, v)| (k.as_str(), v.clone())).collect();
        assert_eq!(
            got,
            [
                ("message", json!("<% ctx(a) %> and <% item(b) %>")),
                ("n", json!(3)),
                ("flag", json!(true)),
                ("list", json!("<% [1, 2] %>")),
                ("s", json!("x y")),
                ("raw", json!("plain")),
            ]
        );
        assert!(assignments("a=1 oops").unwrap_err().contains("`oops`"));
    }

    #[test]
    fn orquesta_forms_read_into_the_model() {
        let mut wf: Workflow = serde_yaml::from_str(
            r#"
version: 1.0
input: [hosts, {greeting: hello}, {name: typed, type: string}]
vars: [{count: 0}]
tasks:
  route:
    next: [{do: greet}]
  greet:
    action: core.echo message=<% item(h) %>
    with: { items: "h, n in <% zip(ctx(hosts), [1]) %>", concurrency: 2 }
    retry: { count: 2, delay: 5 }
    next:
      - publish: a=<% result() %> b=2
output: [{all: "<% ctx(a) %>"}]
"#,
        )
        .unwrap();
        assert!(wf.orquesta_forms().is_empty());
        let names: Vec<_> = wf
            .input
            .iter()
            .map(|i| (i.name.as_str(), i.default.clone()))
            .collect();
        assert_eq!(
            names,
            [
                ("hosts", None),
                ("greeting", Some(json!("hello"))),
                ("typed", None)
            ]
        );
        assert_eq!(wf.vars["count"], json!(0));
        assert_eq!(wf.tasks["route"].action, "core.noop");
        let greet = &wf.tasks["greet"];
        assert_eq!(greet.action, "core.echo");
        assert_eq!(greet.input["message"], json!("<% item(h) %>"));
        assert_eq!(greet.with_items, Some(json!("<% zip(ctx(hosts), [1]) %>")));
        assert_eq!(greet.item_names, ["h", "n"]);
        assert_eq!(greet.concurrency, Some(2));
        assert_eq!(greet.retry.as_ref().unwrap().delay.as_deref(), Some("5s"));
        assert_eq!(greet.next[0].publish["b"], json!(2));
        assert_eq!(wf.output["all"], json!("<% ctx(a) %>"));
    }

    #[test]
    fn engine_commands_leave_do_for_their_own_list() {
        let mut wf: Workflow = serde_yaml::from_str(
            "version: 1.0\ntasks:\n  a:\n    next: [{do: [b, retry]}, {do: 'fail, b'}]\n  b: {}\n  noop: {}\n",
        )
        .unwrap();
        let problems = wf.orquesta_forms();
        let a = &wf.tasks["a"];
        assert_eq!(
            (a.next[0].to.as_slice(), a.next[0].commands.as_slice()),
            (&["b".to_owned()][..], &[Command::Retry][..])
        );
        assert_eq!(a.next[1].commands, [Command::Fail], "`fail` beside a task");
        let paths: Vec<&str> = problems.iter().map(|(p, _)| p.as_str()).collect();
        assert_eq!(paths, ["tasks.noop"], "{problems:?}");
    }
}
