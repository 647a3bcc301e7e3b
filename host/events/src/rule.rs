//! Rules: a trigger, criteria over its payload, and the action to run
//! (st2's rule files, which load here as they are: `action.parameters`
//! is taken for `action.input`).
//!
//! ```yaml
//! name: restart-on-disk-alert
//! enabled: true
//! trigger: { type: wasmflow.webhook, parameters: { name: alerts } }
//! criteria:
//!   trigger.body.severity: { type: inside, pattern: [critical, high] }
//! action:
//!   ref: vm.restart
//!   input: { name: "{{ trigger.body.host }}" }
//!   grants: { exec: [virsh] }
//! ```
//!
//! Loading checks everything a file can get wrong and names each problem
//! with `file:line:column`: the trigger type and its parameters, each
//! criterion's path (against the payload's schema), operator and pattern,
//! the input's templates, and (given a catalog) the action and the input's
//! fields.

use crate::criteria::{lookup, Criterion, CriterionSpec};
use crate::trigger::{self, TriggerType};
use indexmap::IndexMap;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use std::path::{Path, PathBuf};
use wasmflow_workflow::expr::Expressions;
use wasmflow_workflow::model::GrantSpec;
use wasmflow_workflow::source::{join, Problem, Problems, Source};

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RuleSpec {
    name: String,
    #[serde(default)]
    description: Option<String>,
    /// st2's: the pack a rule belongs to (kept, not used).
    #[serde(default)]
    pack: Option<String>,
    #[serde(default = "yes")]
    enabled: bool,
    trigger: TriggerSpec,
    #[serde(default)]
    criteria: IndexMap<String, CriterionSpec>,
    action: ActionSpec,
}

fn yes() -> bool {
    true
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct TriggerSpec {
    #[serde(rename = "type")]
    kind: String,
    #[serde(default)]
    parameters: Map<String, Value>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ActionSpec {
    #[serde(rename = "ref")]
    reference: String,
    #[serde(default, alias = "parameters")]
    input: Map<String, Value>,
    #[serde(default)]
    grants: Option<GrantSpec>,
}

/// A checked rule.
#[derive(Clone, Debug)]
pub struct Rule {
    pub name: String,
    pub description: Option<String>,
    pub enabled: bool,
    pub trigger: String,
    pub parameters: Map<String, Value>,
    pub criteria: Vec<Criterion>,
    /// The action or workflow to run: a catalog name, `pack.action`, or
    /// an `oci://` reference.
    pub action: String,
    /// Templates over `trigger` (the payload).
    pub input: Value,
    pub grants: Option<GrantSpec>,
    pub file: PathBuf,
}

/// What the catalog says of an action a rule names: `None` when there is
/// no such action; else its input's JSON Schema, if known.
pub type Known<'a> = &'a dyn Fn(&str) -> Option<Option<Value>>;

impl Rule {
    /// Read and check the rule file at `path` against the trigger types
    /// `types` and, if given, the catalog `known`.
    pub fn load(
        path: &Path,
        types: &[TriggerType],
        known: Option<Known<'_>>,
    ) -> Result<Rule, Problems> {
        let text = std::fs::read_to_string(path).map_err(|e| {
            Problems(vec![Problem {
                file: path.to_owned(),
                position: Default::default(),
                path: String::new(),
                message: format!("cannot read it: {e}"),
            }])
        })?;
        Self::parse(path, text, types, known)
    }

    /// [`Rule::load`] of text already read.
    pub fn parse(
        path: &Path,
        text: String,
        types: &[TriggerType],
        known: Option<Known<'_>>,
    ) -> Result<Rule, Problems> {
        let src = Source::new(path, text);
        let spec: RuleSpec = serde_yaml::from_str(&src.text).map_err(|e| {
            let position = e
                .location()
                .map(|l| wasmflow_workflow::source::Position {
                    line: l.line(),
                    column: l.column(),
                })
                .unwrap_or_default();
            Problems(vec![Problem {
                file: path.to_owned(),
                position,
                path: String::new(),
                message: e.to_string(),
            }])
        })?;
        let _ = &spec.pack;
        let mut problems = Vec::new();
        let kind = types.iter().find(|t| t.name == spec.trigger.kind);
        match kind {
            None => {
                let names: Vec<&str> = types.iter().map(|t| t.name.as_str()).collect();
                problems.push(src.problem(
                    "trigger.type",
                    format!(
                        "unknown trigger type `{}` (one of: {})",
                        spec.trigger.kind,
                        names.join(", ")
                    ),
                ));
            }
            Some(t) => {
                check_parameters(&src, t, &spec.trigger.parameters, &mut problems);
                if let Some(Err((name, why))) = crate::timer::of(&t.name, &spec.trigger.parameters)
                {
                    problems.push(src.problem(&join("trigger.parameters", &name), why));
                }
            }
        }
        let mut criteria = Vec::new();
        for (key, c) in &spec.criteria {
            let at = join("criteria", key);
            let Some(below) = key
                .strip_prefix("trigger")
                .filter(|r| r.is_empty() || r.starts_with('.'))
            else {
                problems.push(src.key_problem(
                    &at,
                    "a criterion's path starts with `trigger.` (the payload)",
                ));
                continue;
            };
            if let Some(t) = kind {
                if !trigger::has_path(&t.payload, below) {
                    problems.push(
                        src.key_problem(&at, format!("`{}` payloads have no `{key}`", t.name)),
                    );
                    continue;
                }
            }
            match Criterion::new(key, c) {
                Ok(c) => criteria.push(c),
                Err(e) => problems.push(src.problem(&join(&at, &e.at), e.message)),
            }
        }
        let input = Value::Object(spec.action.input.clone());
        if let Err((at, e)) = Expressions::new().check(&input) {
            problems.push(src.problem(
                &format!("action.input{at}"),
                format!("expression does not parse: {e}"),
            ));
        }
        if let Some(g) = &spec.action.grants {
            if let Err(e) = g.parse() {
                problems.push(src.problem("action.grants", e.to_string()));
            }
        }
        if let Some(known) = known {
            check_action(&src, &spec.action, known, &mut problems);
        }
        if !problems.is_empty() {
            return Err(Problems(problems));
        }
        Ok(Rule {
            name: spec.name,
            description: spec.description,
            enabled: spec.enabled,
            trigger: spec.trigger.kind,
            parameters: spec.trigger.parameters,
            criteria,
            action: spec.action.reference,
            input,
            grants: spec.action.grants,
            file: path.to_owned(),
        })
    }

    /// Whether an event of type `kind`, emitted with `parameters` (the
    /// webhook's name, say), is one this rule listens to: the same type,
    /// and each of the rule's parameters equal to the event's.
    pub fn listens_to(&self, kind: &str, parameters: &Map<String, Value>) -> bool {
        // A timer's firing names its rule: only that rule listens.
        let for_rule = parameters
            .get("rule")
            .is_none_or(|r| r.as_str() == Some(&self.name));
        self.trigger == kind
            && for_rule
            && self
                .parameters
                .iter()
                .all(|(k, v)| parameters.get(k) == Some(v))
    }

    /// Test `payload` against the criteria and, when all hold, render the
    /// action's input: what the rule would do, nothing run.
    pub fn evaluate(&self, payload: &Value, exprs: &Expressions) -> Evaluation {
        self.evaluate_as(payload, exprs, self.enabled)
    }

    /// [`Rule::evaluate`], enabled or not as the operator set it since
    /// (`rule enable|disable`) rather than as its file says.
    pub fn evaluate_as(&self, payload: &Value, exprs: &Expressions, enabled: bool) -> Evaluation {
        let checks: Vec<Check> = self
            .criteria
            .iter()
            .map(|c| {
                let below = c.path.strip_prefix("trigger").unwrap_or("");
                let value = lookup(payload, below);
                Check {
                    path: c.path.clone(),
                    operator: c.operator.name().to_owned(),
                    pattern: c.pattern.clone(),
                    value: value.cloned(),
                    held: c.holds(value),
                }
            })
            .collect();
        let decision = if !enabled {
            Decision::Disabled
        } else if checks.iter().any(|c| !c.held) {
            Decision::CriteriaFalse
        } else {
            let mut names = Map::new();
            names.insert("trigger".into(), payload.clone());
            match exprs.render_names(&self.input, &names) {
                Ok(input) => Decision::Run { input },
                Err(e) => Decision::InputError(format!("action.input: {e}")),
            }
        };
        Evaluation {
            rule: self.name.clone(),
            action: self.action.clone(),
            checks,
            decision,
        }
    }
}

fn check_parameters(
    src: &Source,
    t: &TriggerType,
    given: &Map<String, Value>,
    problems: &mut Vec<Problem>,
) {
    let props = t.parameters.get("properties").and_then(Value::as_object);
    for (k, v) in given {
        let at = join("trigger.parameters", k);
        match props.and_then(|p| p.get(k)) {
            None => {
                let names: Vec<&str> = props
                    .map(|p| p.keys().map(String::as_str).collect())
                    .unwrap_or_default();
                problems.push(src.key_problem(
                    &at,
                    format!(
                        "`{}` takes no parameter `{k}` (it takes: {})",
                        t.name,
                        names.join(", ")
                    ),
                ));
            }
            Some(schema) => {
                let fits = match schema.get("type").and_then(Value::as_str) {
                    Some("string") => v.is_string(),
                    _ => match schema.get("enum").and_then(Value::as_array) {
                        Some(cases) => cases.contains(v),
                        None => true,
                    },
                };
                if !fits {
                    problems
                        .push(src.problem(&at, format!("expected {}, got {v}", describe(schema))));
                }
            }
        }
    }
    for r in t
        .parameters
        .get("required")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        if let Some(name) = r.as_str().filter(|n| !given.contains_key(*n)) {
            problems.push(src.problem(
                "trigger",
                format!("`{}` needs the parameter `{name}`", t.name),
            ));
        }
    }
}

fn describe(schema: &Value) -> String {
    match (schema.get("type"), schema.get("enum")) {
        (Some(t), _) => format!("a {}", t.as_str().unwrap_or("value")),
        (_, Some(Value::Array(cases))) => format!(
            "one of {}",
            cases
                .iter()
                .map(Value::to_string)
                .collect::<Vec<_>>()
                .join(", ")
        ),
        _ => "a value".into(),
    }
}

fn check_action(src: &Source, action: &ActionSpec, known: Known<'_>, problems: &mut Vec<Problem>) {
    if action.reference.starts_with("oci://") {
        return;
    }
    let Some(schema) = known(&action.reference) else {
        problems.push(src.problem(
            "action.ref",
            format!(
                "no action or workflow named `{}` in the catalog",
                action.reference
            ),
        ));
        return;
    };
    let Some(schema) = schema else { return };
    let props = schema.get("properties").and_then(Value::as_object);
    for (k, v) in &action.input {
        let snake = k.replace('_', "-");
        let field = props.and_then(|p| p.get(k).or_else(|| p.get(&snake)));
        // A value written as it is (no template) must fit the input's type.
        if let (Some(field), true) = (field, wasmflow_workflow::expr::is_literal(v)) {
            if let Err(why) = fits(field, v) {
                problems.push(src.problem(&join("action.input", k), why));
            }
        }
        let ok = props.is_none() || field.is_some();
        if !ok {
            let names: Vec<&str> = props
                .map(|p| p.keys().map(String::as_str).collect())
                .unwrap_or_default();
            problems.push(src.key_problem(
                &join("action.input", k),
                format!(
                    "`{}` has no input `{k}` (its inputs: {})",
                    action.reference,
                    names.join(", ")
                ),
            ));
        }
    }
    for r in schema
        .get("required")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let Some(name) = r.as_str() else { continue };
        let snake = name.replace('-', "_");
        if !action.input.contains_key(name) && !action.input.contains_key(&snake) {
            problems.push(src.problem(
                "action.input",
                format!("`{}` needs the input `{name}`", action.reference),
            ));
        }
    }
}

/// Whether `value` fits the JSON Schema `schema` of an action's input
/// (from its WIT); the first problem, with its path and the WIT type.
fn fits(schema: &Value, value: &Value) -> Result<(), String> {
    let Ok(validator) = jsonschema::validator_for(schema) else {
        return Ok(());
    };
    let first = validator.iter_errors(value).next();
    match first {
        None => Ok(()),
        Some(e) => {
            let at = e.instance_path().to_string();
            let wit = schema
                .get("x-wit-type")
                .and_then(Value::as_str)
                .unwrap_or("its type");
            Err(format!(
                "does not fit the input's WIT type {wit}{}: {e}",
                if at.is_empty() {
                    String::new()
                } else {
                    format!(" (at {at})")
                }
            ))
        }
    }
}

/// One criterion, tested.
#[derive(Clone, Debug, Serialize)]
pub struct Check {
    pub path: String,
    pub operator: String,
    pub pattern: Value,
    /// The payload's value there (absent: none).
    pub value: Option<Value>,
    pub held: bool,
}

/// What a rule makes of one event.
#[derive(Clone, Debug, Serialize)]
#[serde(tag = "decision", rename_all = "kebab-case")]
pub enum Decision {
    /// Every criterion held: run the action with this input.
    Run {
        input: Value,
    },
    CriteriaFalse,
    Disabled,
    /// The input's templates failed on this payload.
    InputError(String),
}

/// A rule's verdict on one event: each criterion, and the decision.
#[derive(Clone, Debug, Serialize)]
pub struct Evaluation {
    pub rule: String,
    pub action: String,
    pub checks: Vec<Check>,
    #[serde(flatten)]
    pub decision: Decision,
}

/// Every rule file (`.yaml`, `.yml`) in `dir`, checked; the problems of
/// all of them together. Two rules may not share a name.
pub fn load_dir(
    dir: &Path,
    types: &[TriggerType],
    known: Option<Known<'_>>,
) -> Result<Vec<Rule>, Problems> {
    load_files(&files_in(dir)?, types, known)
}

/// The rule files (`.yaml`, `.yml`) of `dir`, by name.
pub fn files_in(dir: &Path) -> Result<Vec<PathBuf>, Problems> {
    wasmflow_registry::pack::yaml_files(dir).map_err(|e| {
        Problems(vec![Problem {
            file: dir.to_owned(),
            position: Default::default(),
            path: String::new(),
            message: format!("cannot read the rules directory: {e}"),
        }])
    })
}

/// [`load_dir`] of these files.
pub fn load_files(
    files: &[PathBuf],
    types: &[TriggerType],
    known: Option<Known<'_>>,
) -> Result<Vec<Rule>, Problems> {
    let mut rules: Vec<Rule> = Vec::new();
    let mut problems = Vec::new();
    for f in files {
        match Rule::load(f, types, known) {
            Ok(r) => {
                if let Some(other) = rules.iter().find(|o| o.name == r.name) {
                    let src = Source::new(f, std::fs::read_to_string(f).unwrap_or_default());
                    problems.push(src.problem(
                        "name",
                        format!(
                            "another rule is named `{}` ({})",
                            r.name,
                            other.file.display()
                        ),
                    ));
                } else {
                    rules.push(r);
                }
            }
            Err(Problems(p)) => problems.extend(p),
        }
    }
    if problems.is_empty() {
        Ok(rules)
    } else {
        Err(Problems(problems))
    }
}

#[cfg(test)]
mod tests;
