//! Expressions over a workflow's values: Jinja (minijinja), and YAQL
//! (`<% ... %>`, see `yaql`) as Orquesta writes them.
//!
//! A string that is exactly one `{{ expression }}` or `<% expression %>`
//! evaluates to the expression's value with its type (a number stays a
//! number, a map a map), as Orquesta does; any other string with
//! `{{`/`{%` renders as Jinja text, one with `<% %>` has each replaced by
//! its value as text. Conditions (`when`) may be written with or without
//! the braces. Undefined names are errors, so a typo does not quietly
//! become "".

use crate::yaql;
use minijinja::{Environment, State, UndefinedBehavior};
use serde_json::{Map, Value};
use std::cell::OnceCell;
use wasmflow_datastore::Datastore;

/// The names an expression can use.
#[derive(Clone, Copy, Default)]
pub struct Scope<'a> {
    pub input: Option<&'a Value>,
    pub ctx: Option<&'a Map<String, Value>>,
    pub result: Option<&'a Value>,
    pub error: Option<&'a Value>,
    pub item: Option<&'a Value>,
    /// What Orquesta's `with: x, y in ...` named each item's parts, for
    /// YAQL's `item(x)`.
    pub item_names: &'a [String],
    /// The finished task's status, for `succeeded()` and `failed()`.
    pub status: Option<&'a str>,
    /// Each task's status, for `task_status(NAME)` (see
    /// `State::task_statuses`).
    pub tasks: Option<&'a Map<String, Value>>,
    /// YAQL `random()`'s seed (see `yaql::Names::seed`).
    pub seed: Option<[u8; 32]>,
}

impl Scope<'_> {
    /// The names as YAQL sees them: `ctx()` holds the inputs, then the
    /// variables and published values (Orquesta's one context).
    fn yaql(self, lent: &yaql::Lent) -> yaql::Names {
        let mut ctx = self
            .input
            .and_then(Value::as_object)
            .cloned()
            .unwrap_or_default();
        if let Some(c) = self.ctx {
            ctx.extend(c.clone());
        }
        yaql::Names {
            ctx,
            result: self.result.or(self.error).cloned(),
            item: self.item.cloned(),
            item_names: self.item_names.to_vec(),
            status: self.status.map(str::to_owned),
            tasks: self.tasks.cloned().unwrap_or_default(),
            seed: self.seed,
            lent: Some(lent.clone()),
            ..Default::default()
        }
    }

    fn to_value(self) -> minijinja::Value {
        let mut m = Map::new();
        let mut put = |k: &str, v: Option<&Value>| {
            if let Some(v) = v {
                m.insert(k.to_owned(), v.clone());
            }
        };
        put("input", self.input);
        put("result", self.result);
        put("error", self.error);
        put("item", self.item);
        if let Some(ctx) = self.ctx {
            m.insert("ctx".into(), Value::Object(ctx.clone()));
        }
        if let Some(s) = self.status {
            m.insert(STATUS.into(), Value::String(s.to_owned()));
        }
        if let Some(t) = self.tasks {
            m.insert(TASKS.into(), Value::Object(t.clone()));
        }
        minijinja::Value::from_serialize(&m)
    }
}

const STATUS: &str = "__task_status";
const TASKS: &str = "__task_statuses";

/// The expression engine: one per process, shared by every workflow.
pub struct Expressions {
    env: Environment<'static>,
    /// YAQL's way to the same `kv()` and `secret()` as Jinja's.
    lent: yaql::Lent,
}

impl Default for Expressions {
    fn default() -> Self {
        Self::new()
    }
}

impl Expressions {
    pub fn new() -> Self {
        Self::with_keys(None)
    }

    /// With `kv(NAME)` reading the datastore's keys (without one, every
    /// `kv()` is an error saying so), and `secret(NAME)` standing for a
    /// secret's value.
    pub fn with_keys(keys: Option<Datastore>) -> Self {
        let mut env = Environment::new();
        env.set_undefined_behavior(UndefinedBehavior::Strict);
        env.add_function("succeeded", |state: &State| status_is(state, "succeeded"));
        env.add_function("failed", |state: &State| !status_is(state, "succeeded"));
        env.add_function("completed", |state: &State| state.lookup(STATUS).is_some());
        env.add_function("task_status", |state: &State, name: String| {
            state
                .lookup(TASKS)
                .and_then(|t| t.get_attr(&name).ok())
                .filter(|s| !s.is_undefined())
                .map(|s| s.to_string())
                .unwrap_or_else(|| "unset".into())
        });
        let (jinja_kv, jinja_secret) = (keys.clone(), keys.clone());
        env.add_function("kv", move |name: String| kv(jinja_kv.as_ref(), &name));
        env.add_function("secret", move |name: String| {
            secret(jinja_secret.as_ref(), &name)
        });
        let lent = yaql::Lent(std::sync::Arc::new(move |f: &str, args: &[Value]| {
            lend(keys.as_ref(), f, args)
        }));
        Self { env, lent }
    }

    /// Check that every template in `value` parses; the error names where
    /// in `value` (`.spec.name`, `[2]`) the first bad one is.
    pub fn check(&self, value: &Value) -> Result<(), (String, String)> {
        match value {
            Value::String(s) => self.check_str(s).map_err(|e| (String::new(), e)),
            Value::Array(items) => items
                .iter()
                .enumerate()
                .try_for_each(|(i, v)| self.check(v).map_err(|(at, e)| (format!("[{i}]{at}"), e))),
            Value::Object(m) => m
                .iter()
                .try_for_each(|(k, v)| self.check(v).map_err(|(at, e)| (format!(".{k}{at}"), e))),
            _ => Ok(()),
        }
    }

    fn check_str(&self, s: &str) -> Result<(), String> {
        if is_yaql(s) {
            yaql_parts(s)?.iter().try_for_each(|part| match part {
                Part::Text(_) => Ok(()),
                Part::Expr(e) => yaql::check(e),
            })
        } else if let Some(expr) = single_expression(s) {
            self.env
                .compile_expression(expr)
                .map(drop)
                .map_err(describe)
        } else if is_template(s) {
            self.env.template_from_str(s).map(drop).map_err(describe)
        } else {
            Ok(())
        }
    }

    /// Check that a condition parses.
    pub fn check_condition(&self, cond: &str) -> Result<(), String> {
        if is_yaql(cond) {
            return yaql::check(yaql_condition(cond));
        }
        self.env
            .compile_expression(condition_text(cond))
            .map(drop)
            .map_err(describe)
    }

    /// Evaluate every template in `value`.
    pub fn render(&self, value: &Value, scope: Scope<'_>) -> Result<Value, String> {
        let vars = Vars {
            jinja: scope.to_value(),
            yaql: OnceCell::new(),
            scope: Some(scope),
            names: None,
        };
        self.render_with(value, &vars)
    }

    /// Evaluate every template in `value` with `names` as its variables:
    /// for templates outside a workflow (a webhook mapping its request).
    pub fn render_names(&self, value: &Value, names: &Map<String, Value>) -> Result<Value, String> {
        let vars = Vars {
            jinja: minijinja::Value::from_serialize(names),
            yaql: OnceCell::new(),
            scope: None,
            names: Some(names),
        };
        self.render_with(value, &vars)
    }

    fn render_with(&self, value: &Value, vars: &Vars<'_>) -> Result<Value, String> {
        Ok(match value {
            Value::String(s) if is_yaql(s) => {
                let names = vars.yaql(&self.lent);
                match yaql_parts(s)?.as_slice() {
                    [Part::Expr(e)] => yaql::evaluate(e, names)?,
                    parts => Value::String(
                        parts
                            .iter()
                            .map(|p| match p {
                                Part::Text(t) => Ok((*t).to_owned()),
                                Part::Expr(e) => yaql::evaluate(e, names).map(|v| yaql::text(&v)),
                            })
                            .collect::<Result<String, String>>()?,
                    ),
                }
            }
            Value::String(s) => {
                let vars = &vars.jinja;
                if let Some(expr) = single_expression(s) {
                    let compiled = self.env.compile_expression(expr).map_err(describe)?;
                    let v = compiled.eval(vars).map_err(describe)?;
                    if v.is_undefined() {
                        return Err(format!("`{}` is undefined", expr.trim()));
                    }
                    serde_json::to_value(&v).map_err(|e| e.to_string())?
                } else if is_template(s) {
                    Value::String(self.env.render_str(s, vars).map_err(describe)?)
                } else {
                    value.clone()
                }
            }
            Value::Array(items) => Value::Array(
                items
                    .iter()
                    .map(|v| self.render_with(v, vars))
                    .collect::<Result<_, _>>()?,
            ),
            Value::Object(m) => Value::Object(
                m.iter()
                    .map(|(k, v)| Ok((k.clone(), self.render_with(v, vars)?)))
                    .collect::<Result<_, String>>()?,
            ),
            other => other.clone(),
        })
    }

    /// Evaluate a condition to true or false (Jinja truthiness).
    pub fn condition(&self, cond: &str, scope: Scope<'_>) -> Result<bool, String> {
        if is_yaql(cond) {
            let v = yaql::evaluate(yaql_condition(cond), &scope.yaql(&self.lent))?;
            return Ok(yaql::truthy(&v));
        }
        let compiled = self
            .env
            .compile_expression(condition_text(cond))
            .map_err(describe)?;
        let v = compiled.eval(scope.to_value()).map_err(describe)?;
        Ok(v.is_true())
    }
}

/// A key's value, when it is now (a workflow's task input is journaled
/// once rendered, so a resumed workflow does not read it again). Secrets
/// are not read this way: their values would reach the task's record.
fn kv(keys: Option<&Datastore>, name: &str) -> Result<String, minijinja::Error> {
    use minijinja::{Error, ErrorKind};
    let fail = |m: String| Error::new(ErrorKind::InvalidOperation, m);
    let keys = keys.ok_or_else(|| fail(format!("kv(\"{name}\"): no datastore here")))?;
    match keys.value(name) {
        Ok(Some((_, true))) => Err(fail(format!(
            "kv(\"{name}\"): it is a secret, and kv() would put its value in records: use secret(\"{name}\")"
        ))),
        Ok(Some((value, false))) => Ok(value),
        Ok(None) => Err(fail(format!(
            "kv(\"{name}\"): no such key (expired, or never set)"
        ))),
        Err(e) => Err(fail(format!("kv(\"{name}\"): {e}"))),
    }
}

/// `secret(NAME)`: a reference to the key, never its value, so that the
/// journal and the task's record keep only the reference; the runtime puts
/// the value in place as the action starts (the task is granted the key
/// if the operator granted it) and masks it in everything the task
/// leaves behind.
fn secret(keys: Option<&Datastore>, name: &str) -> Result<String, minijinja::Error> {
    use minijinja::{Error, ErrorKind};
    let fail = |m: String| Error::new(ErrorKind::InvalidOperation, m);
    wasmflow_datastore::check_name(name).map_err(|e| fail(format!("secret(\"{name}\"): {e}")))?;
    if let Some(keys) = keys {
        match keys.get(name, false) {
            Ok(Some(_)) => {}
            Ok(None) => {
                return Err(fail(format!(
                    "secret(\"{name}\"): no such key (expired, or never set)"
                )))
            }
            Err(e) => return Err(fail(format!("secret(\"{name}\"): {e}"))),
        }
    }
    Ok(wasmflow_datastore::reference::to_key(name))
}

/// YAQL's `kv(NAME)` and `secret(NAME)`, the same as Jinja's, and st2's
/// `st2kv(NAME, decrypt => true)`: a plain key's value, or a secret's
/// reference when asked to decrypt (its value is put in place only as the
/// action starts, as with `secret()`).
fn lend(keys: Option<&Datastore>, f: &str, args: &[Value]) -> Option<Result<Value, String>> {
    let name = |i: usize| match args.get(i) {
        Some(Value::String(n)) => Ok(n.as_str()),
        Some(other) => Err(format!(
            "{f}(): the key's name must be a string, not {other}"
        )),
        None => Err(format!("{f}() takes the key's name")),
    };
    let text = |r: Result<String, minijinja::Error>| {
        r.map(Value::String)
            .map_err(|e| e.detail().unwrap_or("").to_owned())
    };
    Some(match f {
        "kv" => name(0).and_then(|n| text(kv(keys, n))),
        "secret" => name(0).and_then(|n| text(secret(keys, n))),
        "st2kv" => name(0).and_then(|n| {
            let decrypt = args
                .get(1)
                .and_then(|o| o.get("decrypt").or(Some(o)))
                .is_some_and(|d| d == &Value::Bool(true));
            let is_secret = keys
                // Whether it is one, not its value: a secret is not opened here.
                .map(|k| k.get(n, false).map(|key| key.is_some_and(|key| key.secret)))
                .transpose()
                .map_err(|e| format!("st2kv(\"{n}\"): {e}"))?
                .unwrap_or(false);
            match (is_secret, decrypt) {
                (true, true) => text(secret(keys, n)),
                (true, false) => Err(format!(
                    "st2kv(\"{n}\"): it is a secret: say st2kv('{n}', decrypt => true) (its value reaches only the action)"
                )),
                (false, _) => text(kv(keys, n)),
            }
        }),
        _ => return None,
    })
}

fn status_is(state: &State, want: &str) -> bool {
    state
        .lookup(STATUS)
        .and_then(|v| v.as_str().map(|s| s == want))
        .unwrap_or(false)
}

/// `"{{ x }}"` -> `Some(" x ")`: the whole string is one expression.
fn single_expression(s: &str) -> Option<&str> {
    let inner = s.trim().strip_prefix("{{")?.strip_suffix("}}")?;
    (!inner.contains("{{") && !inner.contains("}}")).then_some(inner)
}

fn is_template(s: &str) -> bool {
    s.contains("{{") || s.contains("{%") || is_yaql(s)
}

fn is_yaql(s: &str) -> bool {
    s.contains("<%")
}

/// The variables of one rendering: Jinja's, and YAQL's made when a YAQL
/// string first needs them.
struct Vars<'a> {
    jinja: minijinja::Value,
    yaql: OnceCell<yaql::Names>,
    scope: Option<Scope<'a>>,
    names: Option<&'a Map<String, Value>>,
}

impl Vars<'_> {
    fn yaql(&self, lent: &yaql::Lent) -> &yaql::Names {
        self.yaql.get_or_init(|| match (self.scope, self.names) {
            (Some(scope), _) => scope.yaql(lent),
            (None, names) => yaql::Names {
                ctx: names.cloned().unwrap_or_default(),
                lent: Some(lent.clone()),
                ..Default::default()
            },
        })
    }
}

/// A piece of a string with `<% %>` in it.
enum Part<'a> {
    Text(&'a str),
    Expr(&'a str),
}

/// `"vm-<% ctx().n %>"` -> text `vm-`, expression ` ctx().n `.
fn yaql_parts(s: &str) -> Result<Vec<Part<'_>>, String> {
    let mut parts = Vec::new();
    let mut rest = s;
    // A whole-string expression may have spaces around it.
    if let Some(inner) = s
        .trim()
        .strip_prefix("<%")
        .and_then(|r| r.strip_suffix("%>"))
    {
        if !inner.contains("<%") && !inner.contains("%>") {
            return Ok(vec![Part::Expr(inner)]);
        }
    }
    while let Some(open) = rest.find("<%") {
        if open > 0 {
            parts.push(Part::Text(&rest[..open]));
        }
        let after = &rest[open + 2..];
        let close = after
            .find("%>")
            .ok_or_else(|| format!("`<%` without its `%>` in `{s}`"))?;
        parts.push(Part::Expr(&after[..close]));
        rest = &after[close + 2..];
    }
    if !rest.is_empty() {
        parts.push(Part::Text(rest));
    }
    Ok(parts)
}

/// A condition's YAQL: `<% succeeded() %>`, or the bare expression.
fn yaql_condition(cond: &str) -> &str {
    cond.trim()
        .strip_prefix("<%")
        .and_then(|r| r.strip_suffix("%>"))
        .unwrap_or(cond)
}

fn condition_text(cond: &str) -> &str {
    single_expression(cond).unwrap_or(cond)
}

/// minijinja's message without its template-name noise.
fn describe(e: minijinja::Error) -> String {
    let mut msg = e.kind().to_string();
    if let Some(detail) = e.detail() {
        msg = format!("{msg}: {detail}");
    }
    msg
}

/// Whether a string holds an expression at all (a literal needs no scope).
pub fn is_literal(value: &Value) -> bool {
    match value {
        Value::String(s) => !is_template(s),
        Value::Array(items) => items.iter().all(is_literal),
        Value::Object(m) => m.values().all(is_literal),
        _ => true,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn whole_expressions_keep_their_type_and_text_renders() {
        let e = Expressions::new();
        let input = json!({"n": 3, "name": "web"});
        let ctx = json!({"disks": ["a", "b"]});
        let scope = Scope {
            input: Some(&input),
            ctx: ctx.as_object(),
            ..Scope::default()
        };
        let out = e
            .render(
                &json!({"n": "{{ input.n + 1 }}", "d": "{{ ctx.disks }}", "s": "vm-{{ input.name }}", "lit": 5}),
                scope,
            )
            .unwrap();
        assert_eq!(
            out,
            json!({"n": 4, "d": ["a", "b"], "s": "vm-web", "lit": 5})
        );
    }

    #[test]
    fn undefined_names_are_errors() {
        let e = Expressions::new();
        let input = json!({});
        let scope = Scope {
            input: Some(&input),
            ..Scope::default()
        };
        let err = e.render(&json!("{{ input.nope }}"), scope).unwrap_err();
        assert!(err.contains("undefined"), "{err}");
        let err = e
            .render(&json!("x-{{ input.nope.deeper }}"), scope)
            .unwrap_err();
        assert!(err.contains("undefined"), "{err}");
    }

    #[test]
    fn yaql_beside_jinja() {
        let e = Expressions::new();
        let input = json!({"name": "web"});
        let ctx = json!({"disks": ["a", "b"]});
        let result = json!({"stdout": "ok"});
        let scope = Scope {
            input: Some(&input),
            ctx: ctx.as_object(),
            result: Some(&result),
            status: Some("succeeded"),
            ..Scope::default()
        };
        let out = e
            .render(
                &json!({
                    "n": "<% ctx().disks.len() %>",
                    "s": "vm-<% ctx(name) %>-<% ctx().disks[1] %>",
                    "j": "{{ ctx.disks | length }}",
                    "r": " <% result().stdout %> "
                }),
                scope,
            )
            .unwrap();
        assert_eq!(out, json!({"n": 2, "s": "vm-web-b", "j": 2, "r": "ok"}));
        assert!(e
            .condition("<% succeeded() and ctx(name) = 'web' %>", scope)
            .unwrap());
        assert!(!e.condition("<% failed() %>", scope).unwrap());
        let (at, err) = e.check(&json!({"a": "<% ctx().x.nope() %>"})).unwrap_err();
        assert_eq!(at, ".a");
        assert!(err.contains("unknown function nope()"), "{err}");
        assert!(e.check_condition("<% ctx( %>").is_err());
        assert!(e
            .render(&json!("<% ctx(absent) %>"), scope)
            .unwrap_err()
            .contains("absent"));
    }

    #[test]
    fn conditions_see_the_task_status() {
        let e = Expressions::new();
        let result = json!({"ok": true});
        let scope = Scope {
            result: Some(&result),
            status: Some("succeeded"),
            ..Scope::default()
        };
        assert!(e.condition("{{ succeeded() }}", scope).unwrap());
        assert!(e.condition("succeeded() and result.ok", scope).unwrap());
        assert!(!e.condition("failed()", scope).unwrap());
        assert!(e.condition("completed()", scope).unwrap());
        let tasks = json!({"build": "failed"}).as_object().unwrap().clone();
        let scope = Scope {
            tasks: Some(&tasks),
            ..scope
        };
        for cond in [
            "task_status('build') == 'failed'",
            "task_status('lint') == 'unset'",
            "<% task_status(build) = failed and task_status(lint) = unset %>",
        ] {
            assert!(e.condition(cond, scope).unwrap(), "{cond}");
        }
        assert!(e.check_condition("succeeded(").is_err());
        let (at, _) = e.check(&json!({"a": ["ok", "{{ 1 + }}"]})).unwrap_err();
        assert_eq!(at, ".a[1]");
    }
}
