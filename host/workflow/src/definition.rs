//! Reading a workflow file and checking it before anything runs.
//!
//! Every problem found is reported, each with file, line and column: YAML
//! that does not fit the language (serde_yaml), unknown tasks in `do`, tasks
//! no start task leads to (an unreachable cycle), expressions that do not
//! parse, bad types and durations, and, where the action is a component on
//! disk, input that does not fit its WIT parameters.

use crate::components::{resolve_pack, Components};
use crate::expr::{is_literal, Expressions};
use crate::model::{Join, Task, Workflow};
use crate::source::{index, join, Problem, Problems, Source};
use crate::types::InputType;
use serde_json::Value;
use std::collections::HashSet;
use std::future::Future;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::time::Duration;
use wasmflow_runtime::overrides::{self, Reading};
use wasmflow_runtime::Loader;

/// A parsed workflow file whose structure has been checked.
#[derive(Clone, Debug)]
pub struct Definition {
    pub source: Source,
    pub workflow: Workflow,
    /// Where relative action paths resolve from: the file's directory.
    pub dir: PathBuf,
}

/// What a task's `action` names.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ActionRef {
    Component(PathBuf),
    Workflow(PathBuf),
    /// An `oci://` reference, fetched through [`Components`].
    Oci(String),
    /// `pack.item`: an action or workflow of a pack, found through
    /// [`Components`].
    Pack(String),
    /// `core.ask`: a question for a person (see [`crate::inquiry`]).
    Ask,
}

/// Whether `s` reads as `pack.item`.
fn is_pack_name(s: &str) -> bool {
    let word = |w: &str| {
        w.starts_with(|c: char| c.is_ascii_lowercase())
            && w.bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
    };
    s.split_once('.').is_some_and(|(p, i)| word(p) && word(i))
}

/// Whether a path names a workflow file rather than a component.
pub fn is_workflow_path(path: &Path) -> bool {
    matches!(
        path.extension().and_then(|e| e.to_str()),
        Some("yaml" | "yml")
    )
}

impl Definition {
    /// Read and check `path` (structure and expressions; see [`check`] for
    /// the actions' types).
    pub fn load(path: &Path) -> Result<Self, Problems> {
        let text = std::fs::read_to_string(path).map_err(|e| {
            Problems(vec![Problem {
                file: path.to_owned(),
                position: Default::default(),
                path: String::new(),
                message: format!("cannot read the workflow: {e}"),
            }])
        })?;
        Self::parse(path, text)
    }

    pub fn parse(path: &Path, text: String) -> Result<Self, Problems> {
        let source = Source::new(path, text);
        let mut workflow: Workflow = serde_yaml::from_str(&source.text).map_err(|e| {
            let position = e
                .location()
                .map(|l| crate::source::Position {
                    line: l.line(),
                    column: l.column(),
                })
                .unwrap_or_default();
            let message = without_location(&e.to_string());
            Problems(vec![Problem {
                file: path.to_owned(),
                position,
                path: String::new(),
                message,
            }])
        })?;
        workflow.reads_task_status = source.text.contains("task_status");
        let forms: Vec<Problem> = workflow
            .orquesta_forms()
            .into_iter()
            .map(|(at, message)| source.problem(&at, message))
            .collect();
        if !forms.is_empty() {
            return Err(Problems(forms));
        }
        workflow.splits = workflow
            .tasks
            .keys()
            .filter(|t| workflow.is_split(t) && !workflow.in_cycle(t))
            .cloned()
            .collect();
        let dir = path
            .parent()
            .map(Path::to_owned)
            .filter(|p| !p.as_os_str().is_empty())
            .unwrap_or_else(|| PathBuf::from("."));
        let def = Definition {
            source,
            workflow,
            dir,
        };
        let problems = def.structure_problems(&Expressions::new());
        if problems.is_empty() {
            Ok(def)
        } else {
            Err(Problems(problems))
        }
    }

    /// The workflow's name: its `name`, else the file name.
    pub fn name(&self) -> String {
        self.workflow.name.clone().unwrap_or_else(|| {
            self.source
                .path
                .file_stem()
                .map(|s| s.to_string_lossy().into_owned())
                .unwrap_or_else(|| "workflow".into())
        })
    }

    pub fn action_ref(&self, task: &Task) -> Result<ActionRef, String> {
        let a = task.action.trim();
        if a.starts_with("oci://") {
            return Ok(ActionRef::Oci(a.to_owned()));
        }
        if crate::inquiry::is_ask(a) {
            return Ok(ActionRef::Ask);
        }
        let p = Path::new(a);
        let has_ext = p
            .extension()
            .is_some_and(|e| matches!(e.to_str(), Some("wasm" | "wat" | "yaml" | "yml")));
        if !has_ext {
            if is_pack_name(a) {
                return Ok(ActionRef::Pack(a.to_owned()));
            }
            return Err(format!(
                "`{a}` is not a component (.wasm, .wat) or workflow (.yaml) path, an oci:// reference, or pack.action"
            ));
        }
        let full = normalize(&self.dir.join(p));
        Ok(if is_workflow_path(p) {
            ActionRef::Workflow(full)
        } else {
            ActionRef::Component(full)
        })
    }

    /// Declared input types, by name.
    pub fn input_types(&self) -> Vec<(String, InputType)> {
        self.workflow
            .input
            .iter()
            .map(|i| {
                let ty =
                    i.ty.as_deref()
                        .map(InputType::parse)
                        .and_then(Result::ok)
                        .unwrap_or(InputType::Any);
                (i.name.clone(), ty)
            })
            .collect()
    }

    /// Fill in defaults and check `input` against the declared types.
    /// Errors name the JSON path; unknown keys are errors.
    pub fn check_input(&self, input: &Value) -> Result<Value, String> {
        let Some(obj) = input.as_object() else {
            return Err(format!(
                "input: expected a JSON object keyed by input name, got {input}"
            ));
        };
        let names: Vec<&str> = self
            .workflow
            .input
            .iter()
            .map(|i| i.name.as_str())
            .collect();
        for k in obj.keys() {
            if !names.contains(&k.as_str()) {
                return Err(format!(
                    "{k}: unknown input (the workflow takes: {})",
                    if names.is_empty() {
                        "nothing".to_owned()
                    } else {
                        names.join(", ")
                    }
                ));
            }
        }
        let mut out = serde_json::Map::new();
        for (spec, (_, ty)) in self.workflow.input.iter().zip(self.input_types()) {
            let value = match (obj.get(&spec.name), &spec.default) {
                (Some(v), _) => v.clone(),
                (None, Some(d)) => d.clone(),
                (None, None) if spec.required == Some(false) => Value::Null,
                (None, None) => {
                    return Err(format!(
                        "{}: missing input of type {}",
                        spec.name,
                        ty.name()
                    ))
                }
            };
            if !(value.is_null() && spec.required == Some(false)) {
                ty.check(&value, &spec.name)?;
            }
            out.insert(spec.name.clone(), value);
        }
        Ok(Value::Object(out))
    }

    fn structure_problems(&self, exprs: &Expressions) -> Vec<Problem> {
        let src = &self.source;
        let wf = &self.workflow;
        let mut out = Vec::new();
        let ok_version = match &wf.version {
            Value::Number(n) => n.as_f64() == Some(1.0),
            Value::String(s) => s == "1" || s == "1.0",
            _ => false,
        };
        if !ok_version {
            out.push(src.problem(
                "version",
                format!(
                    "unsupported version {} (this wasmflow reads version 1)",
                    wf.version
                ),
            ));
        }
        let mut seen = HashSet::new();
        for (i, spec) in wf.input.iter().enumerate() {
            let at = index("input", i);
            if !seen.insert(spec.name.as_str()) {
                out.push(src.problem(
                    &join(&at, "name"),
                    format!("input `{}` is declared twice", spec.name),
                ));
            }
            if let Some(ty) = &spec.ty {
                match InputType::parse(ty) {
                    Err(e) => out.push(src.problem(&join(&at, "type"), e)),
                    Ok(t) => {
                        if let Some(d) = &spec.default {
                            if let Err(e) = t.check(d, "default") {
                                out.push(src.problem(&join(&at, "default"), e));
                            }
                        }
                    }
                }
            }
        }
        let expr = |path: String, v: &Value, out: &mut Vec<Problem>| {
            if let Err((at, e)) = exprs.check(v) {
                out.push(src.problem(
                    &format!("{path}{at}"),
                    format!("expression does not parse: {e}"),
                ));
            }
        };
        for (k, v) in &wf.vars {
            expr(join("vars", k), v, &mut out);
        }
        for (k, v) in &wf.output {
            expr(join("output", k), v, &mut out);
        }
        if let Some(g) = &wf.grants {
            for (kind, list) in g.lists() {
                expr(
                    join("grants", kind),
                    &serde_json::to_value(list).unwrap_or_default(),
                    &mut out,
                );
            }
        }
        if wf.tasks.is_empty() {
            out.push(src.problem("tasks", "a workflow needs at least one task"));
        }
        for (name, task) in &wf.tasks {
            let at = join("tasks", name);
            if let Err(e) = self.action_ref(task) {
                out.push(src.problem(&join(&at, "action"), e));
            }
            for (k, v) in &task.input {
                expr(join(&join(&at, "input"), k), v, &mut out);
            }
            if let Some(items) = &task.with_items {
                expr(join(&at, "with-items"), items, &mut out);
                if !matches!(items, Value::String(_) | Value::Array(_)) {
                    out.push(src.problem(
                        &join(&at, "with-items"),
                        "expected a list or an expression giving one",
                    ));
                }
            }
            if task.concurrency == Some(0) {
                out.push(src.problem(&join(&at, "concurrency"), "concurrency must be at least 1"));
            }
            if task.concurrency.is_some() && task.with_items.is_none() {
                out.push(src.problem(
                    &join(&at, "concurrency"),
                    "concurrency only applies with `with-items`",
                ));
            }
            if let Some(g) = &task.grants {
                for (kind, list) in g.lists() {
                    let path = join(&join(&at, "grants"), kind);
                    expr(
                        path,
                        &serde_json::to_value(list).unwrap_or_default(),
                        &mut out,
                    );
                }
            }
            if let Some(t) = &task.timeout {
                if let Err(e) = duration(t) {
                    out.push(src.problem(&join(&at, "timeout"), e));
                }
            }
            match &task.delay {
                Some(Value::String(d)) if !d.contains("{{") && !d.contains("<%") => {
                    if let (Err(_), Err(e)) = (d.trim().parse::<f64>(), duration(d)) {
                        out.push(src.problem(&join(&at, "delay"), e));
                    }
                }
                Some(d @ Value::String(_)) => expr(join(&at, "delay"), d, &mut out),
                Some(Value::Number(n)) if n.as_f64().is_some_and(|s| s >= 0.0) => {}
                Some(other) => out.push(src.problem(
                    &join(&at, "delay"),
                    format!("expected seconds, a duration or an expression, got {other}"),
                )),
                None => {}
            }
            if let Some(r) = &task.retry {
                let rp = join(&at, "retry");
                if let Some(d) = &r.delay {
                    if let Err(e) = duration(d) {
                        out.push(src.problem(&join(&rp, "delay"), e));
                    }
                }
                if r.backoff.is_some_and(|b| !(b >= 1.0 && b.is_finite())) {
                    out.push(src.problem(&join(&rp, "backoff"), "backoff must be a number >= 1"));
                }
                if let Some(w) = &r.when {
                    if let Err(e) = exprs.check_condition(w) {
                        out.push(src.problem(
                            &join(&rp, "when"),
                            format!("expression does not parse: {e}"),
                        ));
                    }
                }
            }
            if let Some(Join::Count(n)) = task.join {
                let inbound = wf.inbound(name);
                if n as usize > inbound {
                    out.push(src.problem(
                        &join(&at, "join"),
                        format!("joins {n} transitions but only {inbound} lead here"),
                    ));
                }
            }
            for (i, t) in task.next.iter().enumerate() {
                let tp = index(&join(&at, "next"), i);
                if let Some(w) = &t.when {
                    if let Err(e) = exprs.check_condition(w) {
                        out.push(src.problem(
                            &join(&tp, "when"),
                            format!("expression does not parse: {e}"),
                        ));
                    }
                }
                for (k, v) in &t.publish {
                    expr(join(&join(&tp, "publish"), k), v, &mut out);
                }
                for (j, target) in t.to.iter().enumerate() {
                    if !wf.tasks.contains_key(target) {
                        let known: Vec<&str> = wf.tasks.keys().map(String::as_str).collect();
                        // `do: a` is a scalar, `do: [a, b]` a list.
                        let path = if src.position(&index(&join(&tp, "do"), j))
                            == src.position(&join(&tp, "do"))
                        {
                            join(&tp, "do")
                        } else {
                            index(&join(&tp, "do"), j)
                        };
                        out.push(src.problem(
                            &path,
                            format!("unknown task `{target}` (tasks are: {})", known.join(", ")),
                        ));
                    }
                }
            }
        }
        out.extend(self.reachability_problems());
        out
    }

    /// Tasks that can never run: no start task leads to them (they sit in a
    /// cycle nothing enters, or only such a cycle leads to them).
    fn reachability_problems(&self) -> Vec<Problem> {
        let wf = &self.workflow;
        if wf.tasks.is_empty() {
            return Vec::new();
        }
        let starts = wf.start_tasks();
        if starts.is_empty() {
            let first = wf.tasks.keys().next().map(String::as_str).unwrap_or("");
            return vec![self.source.key_problem(
                &join("tasks", first),
                "no task to start from: every task is the target of a transition, so the cycle they form can never be entered",
            )];
        }
        let mut reached = HashSet::new();
        for s in &starts {
            reached.extend(wf.reachable_from(s));
        }
        wf.tasks
            .keys()
            .filter(|t| !reached.contains(*t))
            .map(|t| {
                let from: Vec<&str> = wf
                    .tasks
                    .iter()
                    .filter(|(_, task)| task.next.iter().any(|n| n.to.contains(t)))
                    .map(|(n, _)| n.as_str())
                    .collect();
                self.source.key_problem(
                    &join("tasks", t),
                    format!(
                        "task `{t}` can never run: only {} lead{} to it, in a cycle that no start task ({}) enters",
                        from.iter().map(|f| format!("`{f}`")).collect::<Vec<_>>().join(", "),
                        if from.len() == 1 { "s" } else { "" },
                        starts.join(", ")
                    ),
                )
            })
            .collect()
    }
}

/// Check the whole workflow, actions included: components are loaded (and
/// so compiled into the cache) to check task input against their WIT, and
/// nested workflows are checked in turn. Returns every problem found.
///
/// Async because an `oci://` action may have to be pulled first.
pub async fn check(def: &Definition, loader: &Loader, components: &dyn Components) -> Vec<Problem> {
    let mut stack = vec![canonical(&def.source.path)];
    check_actions(def, loader, components, &mut stack).await
}

fn canonical(p: &Path) -> PathBuf {
    p.canonicalize().unwrap_or_else(|_| p.to_owned())
}

/// Boxed: it recurses into nested workflows.
fn check_actions<'a>(
    def: &'a Definition,
    loader: &'a Loader,
    components: &'a dyn Components,
    stack: &'a mut Vec<PathBuf>,
) -> Pin<Box<dyn Future<Output = Vec<Problem>> + Send + 'a>> {
    Box::pin(async move {
        let src = &def.source;
        let mut out = Vec::new();
        for (name, task) in &def.workflow.tasks {
            let at = join("tasks", name);
            let action_at = join(&at, "action");
            let action = match def.action_ref(task) {
                Ok(ActionRef::Pack(name)) => match resolve_pack(components, &name, &def.dir) {
                    Ok((a, _)) => Ok(a),
                    Err(e) => {
                        out.push(src.problem(&action_at, e));
                        continue;
                    }
                },
                other => other,
            };
            match action {
                Err(_) => {} // reported by the structure check
                Ok(ActionRef::Pack(_)) => unreachable!("resolved above"),
                Ok(ActionRef::Workflow(path)) => {
                    let c = canonical(&path);
                    if stack.contains(&c) {
                        out.push(src.problem(
                            &action_at,
                            format!(
                                "{} includes itself (through nested workflows)",
                                path.display()
                            ),
                        ));
                        continue;
                    }
                    match Definition::load(&path) {
                        Err(p) => out.push(src.problem(
                            &action_at,
                            format!("the nested workflow has problems:\n{p}"),
                        )),
                        Ok(child) => {
                            stack.push(c);
                            let nested = check_actions(&child, loader, components, stack).await;
                            stack.pop();
                            if !nested.is_empty() {
                                out.push(src.problem(
                                    &action_at,
                                    format!(
                                        "the nested workflow has problems:\n{}",
                                        Problems(nested)
                                    ),
                                ));
                            }
                            // Literal input can be checked against the nested
                            // workflow's declared input.
                            check_workflow_input(def, &child, task, &at, &mut out);
                        }
                    }
                }
                Ok(ActionRef::Component(path)) => {
                    if !path.exists() {
                        out.push(
                            src.problem(&action_at, format!("{} does not exist", path.display())),
                        );
                        continue;
                    }
                    match loader.load(&path) {
                        Err(e) => out.push(src.problem(&action_at, e.to_string())),
                        Ok(action) => check_literal_input(def, &action, task, &at, &mut out),
                    }
                }
                Ok(ActionRef::Ask) => {
                    // The question, when it is written out (templates are
                    // known only when the task runs).
                    let question = Value::Object(
                        task.input
                            .iter()
                            .map(|(k, v)| (k.clone(), v.clone()))
                            .collect(),
                    );
                    if is_literal(&question) {
                        if let Err(e) = crate::inquiry::check_question(&question) {
                            out.push(src.problem(&join(&at, "input"), e));
                        }
                    }
                }
                Ok(ActionRef::Oci(reference)) => {
                    let loaded = components
                        .oci(&reference)
                        .await
                        .and_then(|(pinned, bytes)| {
                            loader.load_bytes(&pinned, bytes).map_err(|e| e.to_string())
                        });
                    match loaded {
                        Err(e) => out.push(src.problem(&action_at, e)),
                        Ok(action) => check_literal_input(def, &action, task, &at, &mut out),
                    }
                }
            }
        }
        out
    })
}

/// The task's literal input against the action's WIT (expressions are
/// only known when the task runs).
fn check_literal_input(
    def: &Definition,
    action: &wasmflow_runtime::Action,
    task: &Task,
    at: &str,
    out: &mut Vec<Problem>,
) {
    let input: serde_json::Map<String, Value> = task
        .input
        .iter()
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    if let Err(e) = action.check_known_input(&input, &|v| !is_literal(v)) {
        let path = join(&join(at, "input"), &e.path);
        out.push(def.source.problem(
            &path,
            format!("does not fit {}'s WIT: {}", task.action, e.problem),
        ));
    }
}

fn check_workflow_input(
    parent: &Definition,
    child: &Definition,
    task: &Task,
    at: &str,
    out: &mut Vec<Problem>,
) {
    let names: Vec<String> = child
        .workflow
        .input
        .iter()
        .map(|i| i.name.clone())
        .collect();
    for k in task.input.keys() {
        if !names.contains(k) {
            out.push(parent.source.problem(
                &join(&join(at, "input"), k),
                format!(
                    "the nested workflow takes no input `{k}` (it takes: {})",
                    names.join(", ")
                ),
            ));
        }
    }
}

/// `a/./b/../c` -> `a/c`, without touching the file system (so records
/// show the path a user would write).
fn normalize(p: &Path) -> PathBuf {
    use std::path::Component;
    let mut out = PathBuf::new();
    for c in p.components() {
        match c {
            Component::CurDir => {}
            Component::ParentDir => {
                let up = matches!(out.components().next_back(), Some(Component::Normal(_)));
                if up {
                    out.pop();
                } else {
                    out.push("..");
                }
            }
            other => out.push(other),
        }
    }
    out
}

/// serde_yaml's message without its " at line L column C" (the position
/// is shown up front).
pub(crate) fn without_location(msg: &str) -> String {
    let Some(start) = msg.find(" at line ") else {
        return msg.to_owned();
    };
    let rest = &msg[start + " at line ".len()..];
    let after_column = rest.find("column ").map(|c| {
        let digits = rest[c + 7..]
            .find(|ch: char| !ch.is_ascii_digit())
            .unwrap_or(rest.len() - c - 7);
        start + " at line ".len() + c + 7 + digits
    });
    match after_column {
        Some(end) => format!("{}{}", &msg[..start], &msg[end..]),
        None => msg[..start].to_owned(),
    }
}

/// `30s`, `2m`, `500ms`.
pub fn duration(s: &str) -> Result<Duration, String> {
    humantime::parse_duration(s.trim())
        .map_err(|e| format!("`{s}` is not a duration ({e}); write e.g. 30s, 2m, 500ms"))
}

impl Definition {
    /// Apply `-p path=value` to a workflow input (through the walker
    /// actions use): the value is read as the declared type wants (a
    /// `string` input takes the text as it is; others parse it as JSON,
    /// falling back to the text).
    pub fn apply_override(&self, input: &mut Value, assignment: &str) -> Result<(), String> {
        let types = self.input_types();
        overrides::assign(input, assignment, |keys| {
            let Some((_, ty)) = types.iter().find(|(n, _)| n == keys[0]) else {
                let names: Vec<&str> = types.iter().map(|(n, _)| n.as_str()).collect();
                return Err(format!(
                    "unknown input (the workflow takes: {})",
                    names.join(", ")
                ));
            };
            Ok(if keys.len() == 1 && *ty == InputType::String {
                Reading::Text
            } else {
                Reading::Json
            })
        })
        .map_err(|e| e.to_string())
    }
}
