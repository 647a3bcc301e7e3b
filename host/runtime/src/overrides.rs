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

/// Apply `key=value` to `input`, creating intermediate objects as needed.
pub fn apply(action: &Action, input: &mut Value, assignment: &str) -> Result<(), InputError> {
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
    let ty = type_at(action, &keys).ok_or_else(|| {
        bad(
            path,
            format!(
                "no such parameter or field (parameters: {})",
                action.param_names().join(", ")
            ),
        )
    })?;
    let value = if takes_text(&ty) {
        Value::String(raw.to_owned())
    } else {
        serde_json::from_str(raw).unwrap_or_else(|_| Value::String(raw.to_owned()))
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
