//! Jinja expressions (minijinja) over a workflow's values.
//!
//! A string that is exactly one `{{ expression }}` evaluates to the
//! expression's value with its type (a number stays a number, a map a map),
//! as Orquesta does; any other string with `{{`/`{%` renders as text.
//! Conditions (`when`) may be written with or without the braces.
//! Undefined names are errors, so a typo does not quietly become "".

use minijinja::{Environment, State, UndefinedBehavior};
use serde_json::{Map, Value};
use wasmflow_datastore::Datastore;

/// The names an expression can use.
#[derive(Clone, Copy, Default)]
pub struct Scope<'a> {
    pub input: Option<&'a Value>,
    pub ctx: Option<&'a Map<String, Value>>,
    pub result: Option<&'a Value>,
    pub error: Option<&'a Value>,
    pub item: Option<&'a Value>,
    /// The finished task's status, for `succeeded()` and `failed()`.
    pub status: Option<&'a str>,
}

impl Scope<'_> {
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
        minijinja::Value::from_serialize(&m)
    }
}

const STATUS: &str = "__task_status";

/// The expression engine: one per process, shared by every workflow.
pub struct Expressions {
    env: Environment<'static>,
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
        let secret_keys = keys.clone();
        env.add_function("kv", move |name: String| kv(keys.as_ref(), &name));
        env.add_function("secret", move |name: String| {
            secret(secret_keys.as_ref(), &name)
        });
        Self { env }
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
        if let Some(expr) = single_expression(s) {
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
        self.env
            .compile_expression(condition_text(cond))
            .map(drop)
            .map_err(describe)
    }

    /// Evaluate every template in `value`.
    pub fn render(&self, value: &Value, scope: Scope<'_>) -> Result<Value, String> {
        let vars = scope.to_value();
        self.render_with(value, &vars)
    }

    /// Evaluate every template in `value` with `names` as its variables:
    /// for templates outside a workflow (a webhook mapping its request).
    pub fn render_names(&self, value: &Value, names: &Map<String, Value>) -> Result<Value, String> {
        self.render_with(value, &minijinja::Value::from_serialize(names))
    }

    fn render_with(&self, value: &Value, vars: &minijinja::Value) -> Result<Value, String> {
        Ok(match value {
            Value::String(s) => {
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
    s.contains("{{") || s.contains("{%")
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
        assert!(e.check_condition("succeeded(").is_err());
        let (at, _) = e.check(&json!({"a": ["ok", "{{ 1 + }}"]})).unwrap_err();
        assert_eq!(at, ".a[1]");
    }
}
