//! Criteria: StackStorm's operators over a trigger's payload.
//!
//! A rule's `criteria` maps a payload path (`trigger.body.severity`) to a
//! test (`{type: inside, pattern: [critical, high]}`); a rule matches when
//! every test holds. Each operator (and its short alias) means what it
//! means in st2, over JSON values:
//!
//! | operator | alias | holds when the value ... |
//! |---|---|---|
//! | `equals` | `eq` | equals the pattern (numbers by value: `1` equals `1.0`) |
//! | `nequals` | `neq` | does not (a missing value does not) |
//! | `iequals` | `ieq` | is a string equal to the pattern ignoring case |
//! | `lessthan` | `lt` | is less than the pattern (numbers, or strings) |
//! | `greaterthan` | `gt` | is greater |
//! | `matchwildcard` | | is a string matching the shell pattern (`*`, `?`, `[a-z]`) |
//! | `regex` | | is a string the regular expression finds a match in |
//! | `iregex` | | the same, ignoring case |
//! | `matchregex` | | is a string the regular expression matches from its start (`.` matches newlines) |
//! | `contains` | | is a string containing the pattern, or a list with it as an item |
//! | `icontains` | | is a string containing it ignoring case |
//! | `ncontains` | | is a string or list that does not contain it |
//! | `incontains` | | is a string that does not contain it ignoring case |
//! | `startswith`, `endswith` | | is a string starting (ending) with the pattern |
//! | `istartswith`, `iendswith` | | the same ignoring case |
//! | `timediff_lt` | `td_lt` | is an RFC 3339 time less than `pattern` seconds ago |
//! | `timediff_gt` | `td_gt` | is one more than `pattern` seconds ago |
//! | `exists` | | is present (and not null) |
//! | `nexists` | | is absent (or null) |
//! | `inside` | `in` | is an item of the pattern (a list), or a substring of it (a string) |
//! | `ninside` | `nin` | is not |
//! | `search` | | is a list whose items match the nested criteria over `item.` paths: `condition: any` (some item) or `all` (every item) |
//!
//! A value of the wrong kind (a number for `startswith`) makes a test
//! false, never an error: payloads are other people's JSON.

use regex::{Regex, RegexBuilder};
use serde_json::Value;
use std::time::{Duration, SystemTime};

/// An operator, as named in a rule (aliases folded).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Operator {
    Equals,
    NEquals,
    IEquals,
    LessThan,
    GreaterThan,
    MatchWildcard,
    Regex,
    IRegex,
    MatchRegex,
    Contains,
    IContains,
    NContains,
    INContains,
    StartsWith,
    IStartsWith,
    EndsWith,
    IEndsWith,
    TimeDiffLt,
    TimeDiffGt,
    Exists,
    NExists,
    Inside,
    NInside,
    Search,
}

/// Every name an operator goes by, with its meaning.
pub const OPERATORS: &[(&str, Operator)] = &[
    ("equals", Operator::Equals),
    ("eq", Operator::Equals),
    ("nequals", Operator::NEquals),
    ("neq", Operator::NEquals),
    ("iequals", Operator::IEquals),
    ("ieq", Operator::IEquals),
    ("lessthan", Operator::LessThan),
    ("lt", Operator::LessThan),
    ("greaterthan", Operator::GreaterThan),
    ("gt", Operator::GreaterThan),
    ("matchwildcard", Operator::MatchWildcard),
    ("regex", Operator::Regex),
    ("iregex", Operator::IRegex),
    ("matchregex", Operator::MatchRegex),
    ("contains", Operator::Contains),
    ("icontains", Operator::IContains),
    ("ncontains", Operator::NContains),
    ("incontains", Operator::INContains),
    ("startswith", Operator::StartsWith),
    ("istartswith", Operator::IStartsWith),
    ("endswith", Operator::EndsWith),
    ("iendswith", Operator::IEndsWith),
    ("timediff_lt", Operator::TimeDiffLt),
    ("td_lt", Operator::TimeDiffLt),
    ("timediff_gt", Operator::TimeDiffGt),
    ("td_gt", Operator::TimeDiffGt),
    ("exists", Operator::Exists),
    ("nexists", Operator::NExists),
    ("inside", Operator::Inside),
    ("in", Operator::Inside),
    ("ninside", Operator::NInside),
    ("nin", Operator::NInside),
    ("search", Operator::Search),
];

impl Operator {
    /// Its name (the long one, where it has an alias).
    pub fn name(self) -> &'static str {
        OPERATORS
            .iter()
            .find(|(_, o)| *o == self)
            .map(|(n, _)| *n)
            .expect("every operator has a name")
    }

    /// The operator named `name` (any case, as st2 takes them).
    pub fn named(name: &str) -> Option<Self> {
        let name = name.to_ascii_lowercase();
        OPERATORS.iter().find(|(n, _)| *n == name).map(|(_, o)| *o)
    }
}

/// One test of a rule's criteria, checked and compiled.
#[derive(Clone, Debug)]
pub struct Criterion {
    /// The payload path as written (`trigger.body.host`).
    pub path: String,
    pub operator: Operator,
    pub pattern: Value,
    matcher: Matcher,
}

#[derive(Clone, Debug)]
enum Matcher {
    Plain,
    Regex(Regex),
    /// `search`: every item's tests, and whether all items must pass.
    Search {
        all: bool,
        tests: Vec<Criterion>,
    },
}

/// How a criterion is written in a rule: `{type, pattern, condition}`.
#[derive(Clone, Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CriterionSpec {
    #[serde(rename = "type")]
    pub operator: String,
    #[serde(default)]
    pub pattern: Value,
    /// `search` only: `any` or `all`.
    #[serde(default)]
    pub condition: Option<String>,
}

/// A criterion that cannot be used, and why; `at` is the part of it
/// (`type`, `pattern`, a nested path) relative to the criterion.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BadCriterion {
    pub at: String,
    pub message: String,
}

fn bad(at: &str, message: impl Into<String>) -> BadCriterion {
    BadCriterion {
        at: at.to_owned(),
        message: message.into(),
    }
}

impl Criterion {
    /// Check and compile `spec` for the payload path `path`.
    pub fn new(path: &str, spec: &CriterionSpec) -> Result<Self, BadCriterion> {
        let operator = Operator::named(&spec.operator).ok_or_else(|| {
            let names: Vec<&str> = OPERATORS.iter().map(|(n, _)| *n).collect();
            bad(
                "type",
                format!(
                    "unknown operator `{}` (one of: {})",
                    spec.operator,
                    names.join(", ")
                ),
            )
        })?;
        let p = &spec.pattern;
        let needs = |what: &str| bad("pattern", format!("`{}` needs {what}", spec.operator));
        if spec.condition.is_some() && operator != Operator::Search {
            return Err(bad("condition", "only `search` takes a condition"));
        }
        let matcher = match operator {
            Operator::Regex | Operator::IRegex | Operator::MatchRegex => {
                let text = p.as_str().ok_or_else(|| needs("a regular expression"))?;
                let source = match operator {
                    Operator::MatchRegex => format!("\\A(?:{text})"),
                    _ => text.to_owned(),
                };
                let re = RegexBuilder::new(&source)
                    .case_insensitive(operator == Operator::IRegex)
                    .dot_matches_new_line(operator == Operator::MatchRegex)
                    .size_limit(1 << 20)
                    .build()
                    .map_err(|e| {
                        bad(
                            "pattern",
                            format!("not a regular expression: {}", one_line(&e)),
                        )
                    })?;
                Matcher::Regex(re)
            }
            Operator::MatchWildcard => {
                let text = p.as_str().ok_or_else(|| needs("a shell pattern"))?;
                Matcher::Regex(wildcard(text).map_err(|m| bad("pattern", m))?)
            }
            Operator::TimeDiffLt | Operator::TimeDiffGt => {
                if !p.as_f64().is_some_and(|s| s >= 0.0) {
                    return Err(needs("a number of seconds"));
                }
                Matcher::Plain
            }
            Operator::Inside | Operator::NInside => {
                if !(p.is_array() || p.is_string()) {
                    return Err(needs("a list (or a string)"));
                }
                Matcher::Plain
            }
            Operator::Search => {
                let all = match spec.condition.as_deref() {
                    Some("any") => false,
                    Some("all") => true,
                    Some(other) => {
                        return Err(bad(
                            "condition",
                            format!("`{other}`: a search's condition is `any` or `all`"),
                        ))
                    }
                    None => {
                        return Err(bad("condition", "a search needs `condition: any` or `all`"))
                    }
                };
                let map = p
                    .as_object()
                    .filter(|m| !m.is_empty())
                    .ok_or_else(|| needs("a map of `item.` paths to criteria"))?;
                let mut tests = Vec::new();
                for (path, spec) in map {
                    let at = format!("pattern.{path}");
                    if !(path == "item" || path.starts_with("item.")) {
                        return Err(bad(&at, "a search's paths start with `item.`"));
                    }
                    let spec: CriterionSpec = serde_json::from_value(spec.clone())
                        .map_err(|e| bad(&at, format!("expected {{type, pattern}}: {e}")))?;
                    let test = Criterion::new(path, &spec).map_err(|e| BadCriterion {
                        at: format!("{at}.{}", e.at),
                        message: e.message,
                    })?;
                    tests.push(test);
                }
                Matcher::Search { all, tests }
            }
            Operator::Exists | Operator::NExists => Matcher::Plain,
            _ => {
                if p.is_null() {
                    return Err(needs("a pattern"));
                }
                Matcher::Plain
            }
        };
        Ok(Self {
            path: path.to_owned(),
            operator,
            pattern: spec.pattern.clone(),
            matcher,
        })
    }

    /// Whether the test holds for `value` (the payload's value at the
    /// path; `None` when absent).
    pub fn holds(&self, value: Option<&Value>) -> bool {
        use Operator as O;
        let value = value.filter(|v| !v.is_null());
        let p = &self.pattern;
        let text = value.and_then(Value::as_str);
        let ptext = p.as_str();
        let both = || text.zip(ptext);
        let lower = |s: &str| s.to_lowercase();
        match self.operator {
            O::Exists => value.is_some(),
            O::NExists => value.is_none(),
            O::Equals => value.is_some_and(|v| same(v, p)),
            O::NEquals => !value.is_some_and(|v| same(v, p)),
            O::IEquals => both().is_some_and(|(v, p)| lower(v) == lower(p)),
            O::LessThan => value.and_then(|v| order(v, p)).is_some_and(|o| o.is_lt()),
            O::GreaterThan => value.and_then(|v| order(v, p)).is_some_and(|o| o.is_gt()),
            O::Regex | O::IRegex | O::MatchRegex | O::MatchWildcard => match &self.matcher {
                Matcher::Regex(re) => text.is_some_and(|v| re.is_match(v)),
                _ => false,
            },
            O::Contains => contains(value, p),
            O::IContains => both().is_some_and(|(v, p)| lower(v).contains(&lower(p))),
            O::NContains => {
                value.is_some_and(|v| v.is_string() || v.is_array()) && !contains(value, p)
            }
            O::INContains => both().is_some_and(|(v, p)| !lower(v).contains(&lower(p))),
            O::StartsWith => both().is_some_and(|(v, p)| v.starts_with(p)),
            O::IStartsWith => both().is_some_and(|(v, p)| lower(v).starts_with(&lower(p))),
            O::EndsWith => both().is_some_and(|(v, p)| v.ends_with(p)),
            O::IEndsWith => both().is_some_and(|(v, p)| lower(v).ends_with(&lower(p))),
            O::TimeDiffLt | O::TimeDiffGt => {
                let (Some(age), Some(limit)) = (text.and_then(age), p.as_f64()) else {
                    return false;
                };
                let age = age.as_secs_f64();
                match self.operator {
                    O::TimeDiffLt => age < limit,
                    _ => age > limit,
                }
            }
            O::Inside => value.is_some_and(|v| inside(v, p)),
            O::NInside => value.is_some_and(|v| !inside(v, p)),
            O::Search => {
                let (Some(Value::Array(items)), Matcher::Search { all, tests }) =
                    (value, &self.matcher)
                else {
                    return false;
                };
                let item_holds = |item: &Value| {
                    tests
                        .iter()
                        .all(|t| t.holds(lookup(item, t.path.strip_prefix("item").unwrap_or(""))))
                };
                if *all {
                    items.iter().all(item_holds)
                } else {
                    items.iter().any(item_holds)
                }
            }
        }
    }
}

/// The value at a dotted path below `root` (`.body.hosts.0`; a leading
/// dot optional), `None` when there is none.
pub fn lookup<'a>(root: &'a Value, path: &str) -> Option<&'a Value> {
    let mut at = root;
    for word in path.split('.').filter(|w| !w.is_empty()) {
        at = match at {
            Value::Object(m) => m.get(word)?,
            Value::Array(items) => items.get(word.parse::<usize>().ok()?)?,
            _ => return None,
        };
    }
    Some(at)
}

/// JSON equality, numbers by value.
fn same(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => x.as_f64() == y.as_f64(),
        _ => a == b,
    }
}

fn order(a: &Value, b: &Value) -> Option<std::cmp::Ordering> {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => x.as_f64()?.partial_cmp(&y.as_f64()?),
        (Value::String(x), Value::String(y)) => Some(x.cmp(y)),
        _ => None,
    }
}

fn contains(value: Option<&Value>, p: &Value) -> bool {
    match (value, p) {
        (Some(Value::String(v)), Value::String(p)) => v.contains(p.as_str()),
        (Some(Value::Array(items)), p) => items.iter().any(|i| same(i, p)),
        _ => false,
    }
}

fn inside(v: &Value, p: &Value) -> bool {
    match (v, p) {
        (v, Value::Array(items)) => items.iter().any(|i| same(v, i)),
        (Value::String(v), Value::String(p)) => p.contains(v.as_str()),
        _ => false,
    }
}

/// How long ago an RFC 3339 time was (zero for a future one).
fn age(time: &str) -> Option<Duration> {
    let t = humantime::parse_rfc3339_weak(time).ok()?;
    Some(SystemTime::now().duration_since(t).unwrap_or_default())
}

/// The regex crate's message without its drawing of where (a problem is
/// one line, and names its position itself).
fn one_line(e: &regex::Error) -> String {
    let text = e.to_string();
    let last = text
        .lines()
        .rev()
        .find(|l| !l.trim().is_empty())
        .unwrap_or("");
    last.trim().trim_start_matches("error: ").to_owned()
}

/// A shell pattern as an anchored regular expression.
fn wildcard(pattern: &str) -> Result<Regex, String> {
    let mut re = String::from("\\A");
    let mut chars = pattern.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '*' => re.push_str(".*"),
            '?' => re.push('.'),
            '[' => {
                let mut class = String::new();
                let mut closed = false;
                if chars.peek() == Some(&'!') {
                    chars.next();
                    class.push('^');
                }
                for c in chars.by_ref() {
                    if c == ']' && !class.is_empty() && class != "^" {
                        closed = true;
                        break;
                    }
                    if c == '\\' || c == '[' {
                        class.push('\\');
                    }
                    class.push(c);
                }
                if !closed {
                    return Err(format!("`{pattern}`: a `[` without its `]`"));
                }
                re.push('[');
                re.push_str(&class);
                re.push(']');
            }
            c => re.push_str(&regex::escape(&c.to_string())),
        }
    }
    re.push_str("\\z");
    RegexBuilder::new(&re)
        .dot_matches_new_line(true)
        .build()
        .map_err(|e| format!("`{pattern}`: {}", one_line(&e)))
}

#[cfg(test)]
mod tests;
