//! `-p path.to.key=value`: override one field of the input, typed by WIT.
//!
//! The value is read according to the WIT type at the path: for strings,
//! chars and enums the text is taken as is (`-p spec.name=web01`); for
//! everything else it is JSON (`-p spec.cpus=4`, `-p spec.tags='["a"]'`).
//! Typing mistakes surface later, in the input check, with the JSON path.

use crate::action::Action;
use crate::value::InputError;
use serde_json::{Map, Value};
use wasmtime::component::Type;

/// How an override's text becomes a value at its path.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Reading {
    /// As it is (`-p name=web01`): strings, chars, enums.
    Text,
    /// As JSON (`-p cpus=4`, `-p tags='["a"]'`), falling back to the text.
    Json,
}

/// The walker every `-p` goes through, for actions and workflows alike:
/// split `PATH=VALUE`, ask `reading` how the value at the dotted PATH is
/// read (or why PATH names nothing), and set it in `input`, creating
/// intermediate objects as needed (a non-object on the way is replaced).
pub fn assign(
    input: &mut Value,
    assignment: &str,
    reading: impl FnOnce(&[&str]) -> Result<Reading, String>,
) -> Result<(), InputError> {
    let bad = |path: &str, problem: String| InputError {
        path: path.to_owned(),
        problem,
    };
    let (path, raw) = assignment
        .split_once('=')
        .ok_or_else(|| bad(assignment, "expected -p PATH=VALUE".into()))?;
    let keys: Vec<&str> = path.split('.').collect();
    if keys.iter().any(|k| k.is_empty()) {
        return Err(bad(path, "empty key in dotted path".into()));
    }
    let value = match reading(&keys).map_err(|problem| bad(path, problem))? {
        Reading::Text => Value::String(raw.to_owned()),
        Reading::Json => {
            serde_json::from_str(raw).unwrap_or_else(|_| Value::String(raw.to_owned()))
        }
    };
    if !input.is_object() {
        *input = Value::Object(Map::new());
    }
    let mut cur = input;
    for key in &keys[..keys.len() - 1] {
        let obj = cur.as_object_mut().expect("walked only through objects");
        let next = obj
            .entry(key.to_string())
            .or_insert_with(|| Value::Object(Map::new()));
        if !next.is_object() {
            *next = Value::Object(Map::new());
        }
        cur = next;
    }
    cur.as_object_mut()
        .expect("walked only through objects")
        .insert(keys[keys.len() - 1].to_owned(), value);
    Ok(())
}

/// Apply `key=value` to an action's `input`, typed by its WIT.
pub fn apply(action: &Action, input: &mut Value, assignment: &str) -> Result<(), InputError> {
    assign(input, assignment, |keys| {
        let ty = type_at(action, keys).ok_or_else(|| {
            format!(
                "no such parameter or field (parameters: {})",
                action.param_names().join(", ")
            )
        })?;
        Ok(if takes_text(&ty) {
            Reading::Text
        } else {
            Reading::Json
        })
    })
}

fn takes_text(ty: &Type) -> bool {
    match ty {
        Type::String | Type::Char | Type::Enum(_) => true,
        Type::Option(o) => takes_text(&o.ty()),
        _ => false,
    }
}

/// The WIT type at a dotted path through parameters and record fields
/// (options are looked through).
fn type_at(action: &Action, keys: &[&str]) -> Option<Type> {
    let norm = |s: &str| s.replace('_', "-");
    let (_, mut ty) = action
        .signature
        .params
        .iter()
        .find(|(n, _)| *n == norm(keys[0]))?
        .clone();
    for key in &keys[1..] {
        while let Type::Option(o) = &ty {
            ty = o.ty();
        }
        let Type::Record(r) = &ty else { return None };
        let field = r.fields().find(|f| f.name == norm(key)).map(|f| f.ty);
        ty = field?;
    }
    Some(ty)
}
