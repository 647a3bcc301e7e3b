//! Evaluating YAQL over JSON values, with Orquesta's functions (`ctx()`,
//! `result()`, `item()`, `succeeded()`, `failed()`, `completed()`) and the
//! YAQL functions workflows use. Values are Python's in spirit: `and`/`or`
//! give one of their operands, truthiness is Python's (`0`, `""`, `[]`,
//! `{}`, `null` and `false` are false), a missing key reads as `null`.
//!
//! What it must not do: parse, or know where an expression came from.

use super::parse::{Arg, Expr, Op};
use serde_json::{Map, Number, Value};
use std::collections::HashMap;
use std::sync::Arc;

/// Functions the host lends expressions (the datastore's `kv()`,
/// `secret()`): called with a name and its evaluated arguments (named
/// ones as a last map); `None` for a name it does not lend.
#[derive(Clone)]
pub struct Lent(pub Arc<LentFn>);

/// A lent function: its name and arguments, its value or an error; `None`
/// for a name not lent.
pub type LentFn = dyn Fn(&str, &[Value]) -> Option<Result<Value, String>> + Send + Sync;

impl std::fmt::Debug for Lent {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Lent(..)")
    }
}

/// What an expression can see.
#[derive(Clone, Debug, Default)]
pub struct Names {
    /// `ctx()`: the workflow's inputs, variables and published values.
    pub ctx: Map<String, Value>,
    pub result: Option<Value>,
    pub item: Option<Value>,
    /// The names `with: x, y in ...` gave an item's parts.
    pub item_names: Vec<String>,
    /// The finished task's status, for `succeeded()`, `failed()` and
    /// `completed()`.
    pub status: Option<String>,
    /// Each task's status, for `task_status(NAME)`.
    pub tasks: Map<String, Value>,
    /// The host's functions: `kv()`, `secret()`, `st2kv()`.
    pub lent: Option<Lent>,
    /// `random()`'s seed: the workflow's and the point in its journal the
    /// expression is evaluated at, so the same evaluation draws the same
    /// numbers (the journal keeps what they decided). None: no `random()`.
    pub seed: Option<[u8; 32]>,
    /// Draws made so far with `seed`: each its own ChaCha stream.
    pub draws: std::cell::Cell<u64>,
}

impl Names {
    /// The next number of `seed`'s sequence, uniform in [0, 1).
    fn draw(&self) -> Result<f64, EvalError> {
        use rand_chacha::rand_core::{RngCore, SeedableRng};
        let seed = self.seed.ok_or_else(|| {
            fail("random() is only for workflows: their journal keeps what it decided")
        })?;
        let mut rng = rand_chacha::ChaCha8Rng::from_seed(seed);
        rng.set_stream(self.draws.get());
        self.draws.set(self.draws.get() + 1);
        // 53 random bits: every double in [0, 1) a step of 2^-53 apart.
        Ok((rng.next_u64() >> 11) as f64 / (1u64 << 53) as f64)
    }
}

/// The functions the host lends (see [`Lent`]).
pub const LENT: &[&str] = &["kv", "secret", "st2kv"];

/// An evaluation error, with the character it is at when it is a call's.
#[derive(Clone, Debug, PartialEq)]
pub struct EvalError {
    pub at: Option<usize>,
    pub message: String,
}

type Out = Result<Value, EvalError>;

fn fail(message: impl Into<String>) -> EvalError {
    EvalError {
        at: None,
        message: message.into(),
    }
}

/// Every function `call` knows, for checking an expression before it runs.
pub const FUNCTIONS: &[&str] = &[
    "ctx",
    "result",
    "item",
    "succeeded",
    "failed",
    "completed",
    "task_status",
    "random",
    "kv",
    "secret",
    "st2kv",
    "len",
    "str",
    "int",
    "float",
    "bool",
    "list",
    "dict",
    "zip",
    "keys",
    "values",
    "format",
    "concat",
    "join",
    "regex",
    "matches",
    "let",
    "switch",
    "select",
    "where",
    "first",
    "last",
    "distinct",
    "sum",
    "min",
    "max",
    "split",
    "replace",
    "trim",
    "toUpper",
    "toLower",
    "startsWith",
    "endsWith",
    "isEmpty",
];

/// The scope of one evaluation: the names, `$`, and `let`'s variables.
#[derive(Clone)]
struct Frame<'a> {
    names: &'a Names,
    /// `$`; `None` while it is the workflow's context.
    root: Option<Value>,
    vars: HashMap<String, Value>,
}

/// Evaluate `expr`; `$` is the workflow's context.
pub fn evaluate(expr: &Expr, names: &Names) -> Out {
    let frame = Frame {
        names,
        root: None,
        vars: HashMap::new(),
    };
    frame.eval(expr)
}

/// Python's truthiness.
pub fn truthy(v: &Value) -> bool {
    match v {
        Value::Null => false,
        Value::Bool(b) => *b,
        Value::Number(n) => n.as_f64() != Some(0.0),
        Value::String(s) => !s.is_empty(),
        Value::Array(a) => !a.is_empty(),
        Value::Object(m) => !m.is_empty(),
    }
}

/// A value as text: a string as it is, anything else as JSON.
pub fn text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

fn num(f: f64) -> Out {
    if f.fract() == 0.0 && f.abs() < 9.0e15 {
        Ok(Value::from(f as i64))
    } else {
        Number::from_f64(f)
            .map(Value::Number)
            .ok_or_else(|| fail(format!("{f} is not a number JSON can hold")))
    }
}

fn as_f64(v: &Value, what: &str) -> Result<f64, EvalError> {
    v.as_f64()
        .ok_or_else(|| fail(format!("{what}: expected a number, got {v}")))
}

fn equal(a: &Value, b: &Value) -> bool {
    match (a.as_f64(), b.as_f64()) {
        (Some(x), Some(y)) if a.is_number() && b.is_number() => x == y,
        _ => a == b,
    }
}

fn compare(op: Op, a: &Value, b: &Value) -> Out {
    let ord = match (a, b) {
        (Value::Number(_), Value::Number(_)) => {
            as_f64(a, "compare")?.partial_cmp(&as_f64(b, "compare")?)
        }
        (Value::String(x), Value::String(y)) => Some(x.cmp(y)),
        _ => None,
    }
    .ok_or_else(|| fail(format!("cannot compare {a} with {b}")))?;
    use std::cmp::Ordering::*;
    Ok(Value::Bool(match op {
        Op::Lt => ord == Less,
        Op::Gt => ord == Greater,
        Op::Le => ord != Greater,
        _ => ord != Less,
    }))
}

impl Frame<'_> {
    fn eval(&self, e: &Expr) -> Out {
        match e {
            Expr::Literal(v) => Ok(v.clone()),
            Expr::Root => Ok(self
                .root
                .clone()
                .unwrap_or_else(|| Value::Object(self.names.ctx.clone()))),
            Expr::Var(name) => {
                self.vars.get(name).cloned().ok_or_else(|| {
                    fail(format!("`${name}` is not defined (let(...) defines names)"))
                })
            }
            Expr::Word(w) => Ok(Value::String(w.clone())),
            // `ctx().x` and `$.x` read the key without copying the context.
            Expr::Member(target, name) if self.is_context(target) => {
                Ok(self.names.ctx.get(name).cloned().unwrap_or(Value::Null))
            }
            Expr::Member(target, name) => Ok(match self.eval(target)? {
                Value::Object(m) => m.get(name).cloned().unwrap_or(Value::Null),
                Value::Null => {
                    return Err(fail(format!("`.{name}` of null")));
                }
                other => return Err(fail(format!("`.{name}` of {other}, which has no keys"))),
            }),
            Expr::Index(target, index) => {
                let (t, i) = (self.eval(target)?, self.eval(index)?);
                match (&t, &i) {
                    (Value::Array(items), Value::Number(n)) => {
                        let n = n
                            .as_i64()
                            .ok_or_else(|| fail(format!("index {i} is not an integer")))?;
                        let at = if n < 0 { items.len() as i64 + n } else { n };
                        items
                            .get(usize::try_from(at).unwrap_or(usize::MAX))
                            .cloned()
                            .ok_or_else(|| {
                                fail(format!(
                                    "index {n} is past the end of a list of {}",
                                    items.len()
                                ))
                            })
                    }
                    (Value::Object(m), Value::String(k)) => {
                        Ok(m.get(k).cloned().unwrap_or(Value::Null))
                    }
                    _ => Err(fail(format!("cannot index {t} with {i}"))),
                }
            }
            Expr::Not(inner) => Ok(Value::Bool(!truthy(&self.eval(inner)?))),
            Expr::Neg(inner) => num(-as_f64(&self.eval(inner)?, "-")?),
            Expr::Binary(op, l, r) => self.binary(*op, l, r),
            Expr::Then(l, r) => self.then(l, r),
            Expr::List(items) => Ok(Value::Array(
                items
                    .iter()
                    .map(|i| self.eval(i))
                    .collect::<Result<_, _>>()?,
            )),
            Expr::Dict(pairs) => {
                let mut m = Map::new();
                for (k, v) in pairs {
                    m.insert(text(&self.eval(k)?), self.eval(v)?);
                }
                Ok(Value::Object(m))
            }
            Expr::Call {
                name,
                target,
                args,
                at,
            } => self.call(name, target.as_deref(), args).map_err(|mut e| {
                e.at.get_or_insert(*at);
                e
            }),
        }
    }

    /// Whether `e` is the whole workflow context: `ctx()`, or `$` outside
    /// `select`, `where` and `->`.
    fn is_context(&self, e: &Expr) -> bool {
        match e {
            Expr::Root => self.root.is_none(),
            Expr::Call {
                name,
                target: None,
                args,
                ..
            } => name == "ctx" && args.is_empty(),
            _ => false,
        }
    }

    fn binary(&self, op: Op, l: &Expr, r: &Expr) -> Out {
        let a = self.eval(l)?;
        match op {
            Op::And => return if truthy(&a) { self.eval(r) } else { Ok(a) },
            Op::Or => return if truthy(&a) { Ok(a) } else { self.eval(r) },
            _ => {}
        }
        let b = self.eval(r)?;
        match op {
            Op::Eq => Ok(Value::Bool(equal(&a, &b))),
            Op::Ne => Ok(Value::Bool(!equal(&a, &b))),
            Op::Lt | Op::Gt | Op::Le | Op::Ge => compare(op, &a, &b),
            Op::In => Ok(Value::Bool(match &b {
                Value::Array(items) => items.iter().any(|i| equal(i, &a)),
                Value::Object(m) => m.contains_key(&text(&a)),
                Value::String(s) => s.contains(&text(&a)),
                other => {
                    return Err(fail(format!(
                        "`in` {other}: expected a list, a dict or a string"
                    )))
                }
            })),
            Op::Add => match (&a, &b) {
                (Value::Number(_), Value::Number(_)) => num(as_f64(&a, "+")? + as_f64(&b, "+")?),
                (Value::String(x), Value::String(y)) => Ok(Value::String(format!("{x}{y}"))),
                (Value::Array(x), Value::Array(y)) => {
                    Ok(Value::Array([x.clone(), y.clone()].concat()))
                }
                (Value::Object(x), Value::Object(y)) => {
                    let mut m = x.clone();
                    m.extend(y.clone());
                    Ok(Value::Object(m))
                }
                _ => Err(fail(format!("cannot add {a} and {b}"))),
            },
            Op::Sub => num(as_f64(&a, "-")? - as_f64(&b, "-")?),
            Op::Mul => num(as_f64(&a, "*")? * as_f64(&b, "*")?),
            Op::Div => {
                let d = as_f64(&b, "/")?;
                if d == 0.0 {
                    return Err(fail("division by zero"));
                }
                num(as_f64(&a, "/")? / d)
            }
            Op::Mod => {
                let d = as_f64(&b, "mod")?;
                if d == 0.0 {
                    return Err(fail("mod by zero"));
                }
                num(as_f64(&a, "mod")?.rem_euclid(d))
            }
            Op::And | Op::Or => unreachable!("decided above"),
        }
    }

    /// `a -> b`: after `let(..)`, `b` sees its names; otherwise `$` is `a`.
    fn then(&self, l: &Expr, r: &Expr) -> Out {
        let mut next = self.clone();
        match l {
            Expr::Call {
                name,
                target: None,
                args,
                ..
            } if name == "let" => {
                for (i, arg) in args.iter().enumerate() {
                    match arg {
                        Arg::Named(n, v) => next.vars.insert(n.clone(), self.eval(v)?),
                        Arg::Positional(v) => next.vars.insert((i + 1).to_string(), self.eval(v)?),
                        Arg::Pair(..) => return Err(fail("let(...) takes name => value")),
                    };
                }
            }
            other => next.root = Some(self.eval(other)?),
        }
        next.eval(r)
    }

    /// `f` over each item of `list`, with `$` the item.
    fn each(&self, list: &Value, f: &Expr, what: &str) -> Result<Vec<(Value, Value)>, EvalError> {
        let Value::Array(items) = list else {
            return Err(fail(format!("{what}: expected a list, got {list}")));
        };
        items
            .iter()
            .map(|item| {
                let mut inner = self.clone();
                inner.root = Some(item.clone());
                Ok((item.clone(), inner.eval(f)?))
            })
            .collect()
    }

    fn call(&self, name: &str, target: Option<&Expr>, args: &[Arg]) -> Out {
        // A method call's target is the first argument.
        let mut exprs: Vec<&Expr> = target.into_iter().collect();
        let mut named: Vec<(&str, &Expr)> = Vec::new();
        let mut pairs: Vec<(&Expr, &Expr)> = Vec::new();
        for a in args {
            match a {
                Arg::Positional(e) => exprs.push(e),
                Arg::Named(n, e) => named.push((n, e)),
                Arg::Pair(k, v) => pairs.push((k, v)),
            }
        }
        let values = || {
            exprs
                .iter()
                .map(|e| self.eval(e))
                .collect::<Result<Vec<_>, _>>()
        };
        let arity = |n: std::ops::RangeInclusive<usize>| {
            if n.contains(&exprs.len()) {
                Ok(())
            } else {
                Err(fail(format!(
                    "{name}() takes {} argument(s), got {}",
                    if n.start() == n.end() {
                        n.start().to_string()
                    } else {
                        format!("{} to {}", n.start(), n.end())
                    },
                    exprs.len()
                )))
            }
        };
        let status = self.names.status.as_deref();
        match name {
            "ctx" => {
                arity(0..=1)?;
                match exprs.first() {
                    None => Ok(Value::Object(self.names.ctx.clone())),
                    Some(e) => {
                        let key = text(&self.eval(e)?);
                        self.names.ctx.get(&key).cloned().ok_or_else(|| {
                            fail(format!(
                                "ctx({key}): no input, variable or published value `{key}`"
                            ))
                        })
                    }
                }
            }
            "result" => {
                arity(0..=0)?;
                Ok(self.names.result.clone().unwrap_or(Value::Null))
            }
            "item" => {
                arity(0..=1)?;
                let item = self
                    .names
                    .item
                    .clone()
                    .ok_or_else(|| fail("item() outside a with-items task"))?;
                let names = &self.names.item_names;
                let key = exprs
                    .first()
                    .map(|e| self.eval(e).map(|k| text(&k)))
                    .transpose()?;
                match (names.as_slice(), key) {
                    ([] | [_], None) => Ok(item),
                    ([one], Some(k)) if *one == k => Ok(item),
                    ([], Some(k)) => item
                        .get(&k)
                        .cloned()
                        .ok_or_else(|| fail(format!("item({k}): the item has no `{k}`"))),
                    (names, key) => {
                        // `x, y in <% zip(..) %>`: each item a list, by position.
                        let parts = item
                            .as_array()
                            .filter(|p| p.len() == names.len())
                            .ok_or_else(|| {
                                fail(format!(
                                    "the item {item} does not have the {} parts `with` names",
                                    names.len()
                                ))
                            })?;
                        match key {
                            None => Ok(Value::Object(
                                names.iter().cloned().zip(parts.iter().cloned()).collect(),
                            )),
                            Some(k) => names
                                .iter()
                                .position(|n| *n == k)
                                .map(|i| parts[i].clone())
                                .ok_or_else(|| {
                                    fail(format!("item({k}): `with` names {}", names.join(", ")))
                                }),
                        }
                    }
                }
            }
            "succeeded" => Ok(Value::Bool(status == Some("succeeded"))),
            "failed" => Ok(Value::Bool(status.is_some_and(|s| s != "succeeded"))),
            "completed" => Ok(Value::Bool(status.is_some())),
            "task_status" => {
                arity(1..=1)?;
                let task = text(&self.eval(exprs[0])?);
                Ok(self
                    .names
                    .tasks
                    .get(&task)
                    .cloned()
                    .unwrap_or_else(|| Value::String("unset".into())))
            }
            "random" => match values()?.as_slice() {
                [] => num(self.names.draw()?),
                [lo, hi] => {
                    // YAQL's random(from, to): an integer in [from, to].
                    let (lo, hi) = (as_f64(lo, "random()")?, as_f64(hi, "random()")?);
                    if lo.fract() != 0.0 || hi.fract() != 0.0 || hi < lo {
                        return Err(fail(format!(
                            "random({lo}, {hi}): expected two integers, the first no greater"
                        )));
                    }
                    num(lo + (self.names.draw()? * (hi - lo + 1.0)).floor())
                }
                other => Err(fail(format!(
                    "random() takes no argument or two (from, to), got {}",
                    other.len()
                ))),
            },
            _ if LENT.contains(&name) => {
                let mut args = values()?;
                if !named.is_empty() {
                    let mut m = Map::new();
                    for (n, e) in &named {
                        m.insert((*n).to_owned(), self.eval(e)?);
                    }
                    args.push(Value::Object(m));
                }
                let lent = self
                    .names
                    .lent
                    .as_ref()
                    .ok_or_else(|| fail(format!("{name}(): no datastore here")))?;
                match (lent.0)(name, &args) {
                    Some(out) => out.map_err(fail),
                    None => Err(fail(format!("{name}(): no datastore here"))),
                }
            }
            "len" => {
                arity(1..=1)?;
                let v = self.eval(exprs[0])?;
                Ok(Value::from(match &v {
                    Value::String(s) => s.chars().count(),
                    Value::Array(a) => a.len(),
                    Value::Object(m) => m.len(),
                    other => return Err(fail(format!("len() of {other}"))),
                }))
            }
            "str" => {
                arity(1..=1)?;
                Ok(Value::String(text(&self.eval(exprs[0])?)))
            }
            "int" => {
                arity(1..=1)?;
                match self.eval(exprs[0])? {
                    Value::String(s) => s
                        .trim()
                        .parse::<i64>()
                        .map(Value::from)
                        .map_err(|_| fail(format!("int({s:?}): not an integer"))),
                    Value::Bool(b) => Ok(Value::from(b as i64)),
                    Value::Null => Ok(Value::from(0)),
                    v => Ok(Value::from(as_f64(&v, "int()")?.trunc() as i64)),
                }
            }
            "float" => {
                arity(1..=1)?;
                let f = match self.eval(exprs[0])? {
                    Value::String(s) => s
                        .trim()
                        .parse::<f64>()
                        .map_err(|_| fail(format!("float({s:?}): not a number")))?,
                    v => as_f64(&v, "float()")?,
                };
                Number::from_f64(f)
                    .map(Value::Number)
                    .ok_or_else(|| fail("float(): not finite"))
            }
            "bool" => {
                arity(1..=1)?;
                Ok(Value::Bool(truthy(&self.eval(exprs[0])?)))
            }
            "list" => Ok(Value::Array(values()?)),
            "dict" => {
                let mut m = Map::new();
                for v in values()? {
                    match v {
                        Value::Array(kv) if kv.len() == 2 => {
                            m.insert(text(&kv[0]), kv[1].clone());
                        }
                        Value::Object(o) => m.extend(o),
                        other => {
                            return Err(fail(format!("dict(): {other} is not a [key, value] pair")))
                        }
                    }
                }
                for (n, e) in &named {
                    m.insert((*n).to_owned(), self.eval(e)?);
                }
                for (k, v) in &pairs {
                    m.insert(text(&self.eval(k)?), self.eval(v)?);
                }
                Ok(Value::Object(m))
            }
            "zip" => {
                let lists = values()?;
                let lists: Vec<&Vec<Value>> = lists
                    .iter()
                    .map(|l| {
                        l.as_array()
                            .ok_or_else(|| fail(format!("zip(): {l} is not a list")))
                    })
                    .collect::<Result<_, _>>()?;
                let n = lists.iter().map(|l| l.len()).min().unwrap_or(0);
                Ok(Value::Array(
                    (0..n)
                        .map(|i| Value::Array(lists.iter().map(|l| l[i].clone()).collect()))
                        .collect(),
                ))
            }
            "keys" | "values" => {
                arity(1..=1)?;
                let Value::Object(m) = self.eval(exprs[0])? else {
                    return Err(fail(format!("{name}(): expected a dict")));
                };
                Ok(Value::Array(if name == "keys" {
                    m.keys().map(|k| Value::String(k.clone())).collect()
                } else {
                    m.values().cloned().collect()
                }))
            }
            "format" => {
                let mut vals = values()?;
                if vals.is_empty() {
                    return Err(fail("format() needs a format string"));
                }
                let fmt = text(&vals.remove(0));
                let mut names = Map::new();
                for (n, e) in &named {
                    names.insert((*n).to_owned(), self.eval(e)?);
                }
                format(&fmt, &vals, &names).map(Value::String)
            }
            "concat" => Ok(Value::String(values()?.iter().map(text).collect())),
            "join" => {
                arity(2..=2)?;
                let v = values()?;
                // `list.join(sep)` and `join(sep, list)` alike.
                let (list, sep) = match (&v[0], &v[1]) {
                    (Value::Array(l), s) => (l, text(s)),
                    (s, Value::Array(l)) => (l, text(s)),
                    _ => return Err(fail("join(): expected a list and a separator")),
                };
                Ok(Value::String(
                    list.iter().map(text).collect::<Vec<_>>().join(&sep),
                ))
            }
            "regex" => {
                arity(1..=1)?;
                let pattern = text(&self.eval(exprs[0])?);
                regex::Regex::new(&pattern)
                    .map_err(|e| fail(format!("regex({pattern:?}): {e}")))?;
                Ok(serde_json::json!({ REGEX: pattern }))
            }
            "matches" => {
                arity(2..=2)?;
                let v = values()?;
                // `regex(p).matches(s)` and `s.matches(p)`.
                let (pattern, subject) = match v[0].get(REGEX) {
                    Some(p) => (text(p), text(&v[1])),
                    None => (text(&v[1]), text(&v[0])),
                };
                let re = regex::Regex::new(&pattern)
                    .map_err(|e| fail(format!("matches({pattern:?}): {e}")))?;
                Ok(Value::Bool(re.is_match(&subject)))
            }
            "let" => Err(fail("let(...) is used as let(name => value) -> expression")),
            "switch" => {
                for (cond, value) in &pairs {
                    if truthy(&self.eval(cond)?) {
                        return self.eval(value);
                    }
                }
                Ok(Value::Null)
            }
            "select" | "where" => {
                arity(2..=2)?;
                let list = self.eval(exprs[0])?;
                let each = self.each(&list, exprs[1], name)?;
                Ok(Value::Array(if name == "select" {
                    each.into_iter().map(|(_, v)| v).collect()
                } else {
                    each.into_iter()
                        .filter(|(_, v)| truthy(v))
                        .map(|(i, _)| i)
                        .collect()
                }))
            }
            "first" | "last" => {
                arity(1..=2)?;
                let v = values()?;
                let Value::Array(items) = &v[0] else {
                    return Err(fail(format!("{name}(): expected a list")));
                };
                let found = if name == "first" {
                    items.first()
                } else {
                    items.last()
                };
                found
                    .cloned()
                    .or_else(|| v.get(1).cloned())
                    .ok_or_else(|| fail(format!("{name}() of an empty list")))
            }
            "distinct" => {
                arity(1..=1)?;
                let Value::Array(items) = self.eval(exprs[0])? else {
                    return Err(fail("distinct(): expected a list"));
                };
                let mut out: Vec<Value> = Vec::new();
                for i in items {
                    if !out.iter().any(|o| equal(o, &i)) {
                        out.push(i);
                    }
                }
                Ok(Value::Array(out))
            }
            "sum" | "min" | "max" => {
                arity(1..=1)?;
                let Value::Array(items) = self.eval(exprs[0])? else {
                    return Err(fail(format!("{name}(): expected a list")));
                };
                let nums = items
                    .iter()
                    .map(|i| as_f64(i, name))
                    .collect::<Result<Vec<_>, _>>()?;
                match name {
                    "sum" => num(nums.iter().sum()),
                    _ if nums.is_empty() => Err(fail(format!("{name}() of an empty list"))),
                    "min" => num(nums.iter().copied().fold(f64::INFINITY, f64::min)),
                    _ => num(nums.iter().copied().fold(f64::NEG_INFINITY, f64::max)),
                }
            }
            "split" | "replace" | "trim" | "toUpper" | "toLower" | "startsWith" | "endsWith" => {
                let v = values()?;
                let s = v
                    .first()
                    .map(text)
                    .ok_or_else(|| fail(format!("{name}() needs a string")))?;
                let arg = |i: usize| {
                    v.get(i)
                        .map(text)
                        .ok_or_else(|| fail(format!("{name}() takes {i} more argument(s)")))
                };
                Ok(match name {
                    "split" => Value::Array(
                        s.split(arg(1)?.as_str())
                            .map(|p| Value::String(p.into()))
                            .collect(),
                    ),
                    "replace" => Value::String(s.replace(arg(1)?.as_str(), &arg(2)?)),
                    "trim" => Value::String(s.trim().into()),
                    "toUpper" => Value::String(s.to_uppercase()),
                    "toLower" => Value::String(s.to_lowercase()),
                    "startsWith" => Value::Bool(s.starts_with(arg(1)?.as_str())),
                    _ => Value::Bool(s.ends_with(arg(1)?.as_str())),
                })
            }
            "isEmpty" => {
                arity(1..=1)?;
                Ok(Value::Bool(!truthy(&self.eval(exprs[0])?)))
            }
            other => Err(fail(format!("unknown function {other}()"))),
        }
    }
}

/// How `regex(..)` is carried to `.matches(..)`.
const REGEX: &str = "__yaql_regex";

/// Python's `str.format` for `{}`, `{0}` and `{name}` (`{{`/`}}` escape).
fn format(fmt: &str, args: &[Value], names: &Map<String, Value>) -> Result<String, EvalError> {
    let mut out = String::new();
    let mut next = 0;
    let mut chars = fmt.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '{' if chars.peek() == Some(&'{') => {
                chars.next();
                out.push('{');
            }
            '}' if chars.peek() == Some(&'}') => {
                chars.next();
                out.push('}');
            }
            '{' => {
                let field: String = chars.by_ref().take_while(|c| *c != '}').collect();
                let value = if field.is_empty() {
                    next += 1;
                    args.get(next - 1)
                } else if let Ok(i) = field.parse::<usize>() {
                    args.get(i)
                } else {
                    names.get(&field)
                };
                out += &text(
                    value.ok_or_else(|| fail(format!("format(): no value for {{{field}}}")))?,
                );
            }
            c => out.push(c),
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::super::parse::parse;
    use super::*;
    use serde_json::json;

    fn names() -> Names {
        Names {
            ctx: json!({"name": "web", "n": 3, "disks": [{"name": "a", "size": 10}, {"name": "b", "size": 20}], "tags": {"env": "prod"}})
                .as_object()
                .unwrap()
                .clone(),
            result: Some(json!({"stdout": "ok\n", "code": 0})),
            item: Some(json!({"host": "h1"})),
            item_names: Vec::new(),
            status: Some("succeeded".into()),
            tasks: json!({"build": "succeeded", "deploy": "running"})
                .as_object()
                .unwrap()
                .clone(),
            lent: None,
            seed: None,
            draws: Default::default(),
        }
    }

    #[test]
    fn random_draws_follow_the_seed_and_stay_in_range() {
        let mut n = names();
        let e = |e: &str, n: &Names| evaluate(&parse(e).unwrap(), n);
        assert!(e("random()", &n)
            .unwrap_err()
            .message
            .contains("only for workflows"));
        n.seed = Some([7; 32]);
        let draws = |n: &Names| {
            (0..200)
                .map(|_| e("random(1, 6)", n).unwrap().as_i64().unwrap())
                .collect::<Vec<_>>()
        };
        let first = draws(&n);
        assert!(first.iter().all(|d| (1..=6).contains(d)), "{first:?}");
        assert_eq!(
            (1..=6).filter(|d| first.contains(d)).count(),
            6,
            "{first:?}"
        );
        // The same seed from the start: the same numbers; another: others.
        n.draws.set(0);
        assert_eq!(draws(&n), first);
        n.seed = Some([8; 32]);
        n.draws.set(0);
        assert_ne!(draws(&n), first);
        let f = e("random()", &n).unwrap().as_f64().unwrap();
        assert!((0.0..1.0).contains(&f), "{f}");
        assert!(e("random(3, 1)", &n).is_err());
    }

    #[test]
    fn task_status_reads_every_task_and_unset_for_one_never_run() {
        let n = names();
        let eval = |e: &str| evaluate(&parse(e).unwrap(), &n).unwrap();
        assert_eq!(eval("task_status(build)"), json!("succeeded"));
        assert_eq!(eval("task_status('deploy') = 'running'"), json!(true));
        assert_eq!(eval("task_status(cleanup)"), json!("unset"));
    }

    #[test]
    fn lent_functions_get_their_evaluated_arguments_and_named_ones_last() {
        let mut n = names();
        let e = |e: &str, n: &Names| evaluate(&parse(e).unwrap(), n);
        assert_eq!(
            e("kv('system.x')", &n).unwrap_err().message,
            "kv(): no datastore here"
        );
        n.lent = Some(Lent(Arc::new(|f: &str, args: &[Value]| {
            (f != "secret").then(|| Ok(json!([f, args])))
        })));
        assert_eq!(
            e("st2kv(concat('system.', ctx(name)), decrypt => true)", &n).unwrap(),
            json!(["st2kv", ["system.web", {"decrypt": true}]])
        );
        assert!(e("secret(x)", &n)
            .unwrap_err()
            .message
            .contains("no datastore"));
    }

    fn eval(text: &str) -> Value {
        evaluate(&parse(text).unwrap(), &names()).unwrap_or_else(|e| panic!("{text}: {e:?}"))
    }

    #[test]
    fn orquesta_functions_and_operators() {
        for (expr, want) in [
            ("ctx().name", json!("web")),
            ("ctx(name)", json!("web")),
            ("ctx('n') + 1", json!(4)),
            ("$.n * 2", json!(6)),
            ("result().stdout", json!("ok\n")),
            ("item(host)", json!("h1")),
            ("item().host = 'h1'", json!(true)),
            ("succeeded() and not failed()", json!(true)),
            ("completed()", json!(true)),
            ("ctx().n >= 3 and ctx().n != 4", json!(true)),
            ("'prod' in ctx().tags.values()", json!(true)),
            ("env in ctx().tags", json!(true)),
            ("'eb' in ctx().name", json!(true)),
            ("1 in [1, 2]", json!(true)),
            ("7 mod 3", json!(1)),
            ("7 / 2", json!(3.5)),
            ("-ctx().n", json!(-3)),
            ("'vm-' + ctx().name", json!("vm-web")),
            ("ctx().missing", json!(null)),
            ("ctx().missing or 'default'", json!("default")),
            ("ctx().disks[-1].name", json!("b")),
            ("ctx().disks.select($.name)", json!(["a", "b"])),
            (
                "ctx().disks.where($.size > 15).select($.name)",
                json!(["b"]),
            ),
            ("ctx().disks.select($.size).sum()", json!(30)),
            ("len(ctx().disks)", json!(2)),
            ("ctx().name.len()", json!(3)),
            ("str(5) + str(true)", json!("5true")),
            ("int('42') + float('0.5')", json!(42.5)),
            ("bool([])", json!(false)),
            ("list(1, 'a')", json!([1, "a"])),
            ("dict(a => 1, b => 2)", json!({"a": 1, "b": 2})),
            ("{a => 1}", json!({"a": 1})),
            ("zip([1, 2, 3], ['a', 'b'])", json!([[1, "a"], [2, "b"]])),
            ("keys(ctx().tags)", json!(["env"])),
            (
                "format('{0}-{1}-{x}', ctx().name, 2, x => 'y')",
                json!("web-2-y"),
            ),
            ("format('{}/{}', 'a', 'b')", json!("a/b")),
            ("concat('a', 1, 'b')", json!("a1b")),
            ("join(ctx().disks.select($.name), ',')", json!("a,b")),
            ("ctx().disks.select($.name).join('+')", json!("a+b")),
            ("regex('^w.b$').matches(ctx().name)", json!(true)),
            ("ctx().name.matches('x')", json!(false)),
            ("let(x => 2, y => 3) -> $x * $y", json!(6)),
            ("ctx().disks -> len($)", json!(2)),
            (
                "switch(ctx().n > 5 => 'big', ctx().n > 1 => 'mid', true => 'small')",
                json!("mid"),
            ),
            ("'a,b'.split(',')", json!(["a", "b"])),
            ("result().stdout.trim().toUpper()", json!("OK")),
            ("ctx().name.startsWith('w')", json!(true)),
            ("[3, 1, 3].distinct()", json!([3, 1])),
            ("[3, 1].max()", json!(3)),
        ] {
            assert_eq!(eval(expr), want, "{expr}");
        }
    }

    #[test]
    fn errors_say_what_and_where() {
        let err = |text: &str| evaluate(&parse(text).unwrap(), &names()).unwrap_err();
        let e = err("ctx(nope)");
        assert_eq!(e.at, Some(0));
        assert!(
            e.message
                .contains("no input, variable or published value `nope`"),
            "{e:?}"
        );
        assert!(err("1 + 'a'").message.contains("cannot add"));
        assert!(err("$x").message.contains("`$x` is not defined"));
        assert_eq!(err("1 + nothing(2)").at, Some(4));
    }
}
