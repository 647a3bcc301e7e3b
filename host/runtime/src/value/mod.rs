//! JSON <-> component values, driven by the WIT types read from the component.
//!
//! One mapping, used for input and output alike (see README "JSON <-> WIT"):
//! record -> object (kebab-case keys; snake_case accepted on input),
//! list -> array, `list<u8>` -> base64 string, tuple -> array,
//! option -> `null` or the value, enum -> string, flags -> array of strings,
//! variant -> `{"case": payload}` or `"case"` when it has no payload,
//! result -> `{"ok": v}` / `{"err": e}`, integers -> range-checked numbers,
//! floats -> numbers (`"NaN"`, `"Infinity"`, `"-Infinity"` for the rest),
//! char -> one-character string, map -> object (string keys) or `[[k, v], ..]`.

use base64::Engine as _;
use serde_json::{Map, Number, Value};
use std::fmt;
use wasmtime::component::{Type, Val};

mod names;

use names::quoted;
pub use names::{describe, type_name};

/// A JSON value that does not fit the WIT type expected at `path`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{path}: {problem}")]
pub struct InputError {
    /// Where in the input, e.g. `spec.disks[2].size`.
    pub path: String,
    pub problem: String,
}

impl InputError {
    fn expected(path: &Path, ty: &Type, got: &Value) -> Self {
        Self::new(
            path,
            format!("expected {}, got {}", type_name(ty), describe(got)),
        )
    }

    fn new(path: &Path, problem: impl Into<String>) -> Self {
        Self {
            path: path.to_string(),
            problem: problem.into(),
        }
    }
}

/// A JSON path as it is walked, printed like `spec.disks[2].size`.
#[derive(Clone, Debug, Default)]
pub struct Path(Vec<Segment>);

#[derive(Clone, Debug)]
enum Segment {
    Key(String),
    Index(usize),
}

impl Path {
    pub fn root(name: &str) -> Self {
        Path(vec![Segment::Key(name.to_owned())])
    }

    fn key(&self, k: &str) -> Self {
        let mut p = self.clone();
        p.0.push(Segment::Key(k.to_owned()));
        p
    }

    fn index(&self, i: usize) -> Self {
        let mut p = self.clone();
        p.0.push(Segment::Index(i));
        p
    }
}

impl fmt::Display for Path {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0.is_empty() {
            return f.write_str("input");
        }
        for (i, seg) in self.0.iter().enumerate() {
            match seg {
                Segment::Key(k) if i == 0 => f.write_str(k)?,
                Segment::Key(k) => write!(f, ".{k}")?,
                Segment::Index(n) => write!(f, "[{n}]")?,
            }
        }
        Ok(())
    }
}

/// Convert `json` to a value of type `ty`.
pub fn json_to_val(ty: &Type, json: &Value, path: &Path) -> Result<Val, InputError> {
    let mismatch = || InputError::expected(path, ty, json);
    Ok(match ty {
        Type::Bool => Val::Bool(json.as_bool().ok_or_else(mismatch)?),
        Type::S8 => Val::S8(int(json, ty, path)?),
        Type::U8 => Val::U8(int(json, ty, path)?),
        Type::S16 => Val::S16(int(json, ty, path)?),
        Type::U16 => Val::U16(int(json, ty, path)?),
        Type::S32 => Val::S32(int(json, ty, path)?),
        Type::U32 => Val::U32(int(json, ty, path)?),
        Type::S64 => Val::S64(int(json, ty, path)?),
        Type::U64 => Val::U64(int(json, ty, path)?),
        Type::Float32 => Val::Float32(float(json, ty, path)? as f32),
        Type::Float64 => Val::Float64(float(json, ty, path)?),
        Type::Char => {
            let s = json.as_str().ok_or_else(mismatch)?;
            let mut chars = s.chars();
            match (chars.next(), chars.next()) {
                (Some(c), None) => Val::Char(c),
                _ => return Err(mismatch()),
            }
        }
        Type::String => Val::String(json.as_str().ok_or_else(mismatch)?.to_owned()),
        Type::List(list) => {
            let elem = list.ty();
            if matches!(elem, Type::U8) {
                if let Value::String(s) = json {
                    let bytes = base64::engine::general_purpose::STANDARD
                        .decode(s)
                        .map_err(|e| {
                            InputError::new(path, format!("expected base64 for list<u8>: {e}"))
                        })?;
                    return Ok(Val::List(bytes.into_iter().map(Val::U8).collect()));
                }
            }
            let items = json.as_array().ok_or_else(mismatch)?;
            Val::List(
                items
                    .iter()
                    .enumerate()
                    .map(|(i, v)| json_to_val(&elem, v, &path.index(i)))
                    .collect::<Result<_, _>>()?,
            )
        }
        Type::FixedLengthList(list) => {
            let items = json.as_array().ok_or_else(mismatch)?;
            if items.len() != list.len() as usize {
                return Err(InputError::new(
                    path,
                    format!("expected {} items, got {}", list.len(), items.len()),
                ));
            }
            let elem = list.ty();
            Val::FixedLengthList(
                items
                    .iter()
                    .enumerate()
                    .map(|(i, v)| json_to_val(&elem, v, &path.index(i)))
                    .collect::<Result<_, _>>()?,
            )
        }
        Type::Record(record) => {
            let obj = json.as_object().ok_or_else(mismatch)?;
            let fields: Vec<_> = record.fields().map(|f| (f.name.to_owned(), f.ty)).collect();
            Val::Record(named_values(&fields, obj, path, "field")?)
        }
        Type::Tuple(tuple) => {
            let items = json.as_array().ok_or_else(mismatch)?;
            let types: Vec<_> = tuple.types().collect();
            if items.len() != types.len() {
                return Err(mismatch());
            }
            Val::Tuple(
                types
                    .iter()
                    .zip(items)
                    .enumerate()
                    .map(|(i, (t, v))| json_to_val(t, v, &path.index(i)))
                    .collect::<Result<_, _>>()?,
            )
        }
        Type::Variant(variant) => {
            let cases: Vec<_> = variant.cases().map(|c| (c.name.to_owned(), c.ty)).collect();
            let (name, payload) = single_case(json, path, ty)?;
            let Some((case, case_ty)) = cases.iter().find(|(n, _)| *n == name) else {
                return Err(InputError::new(
                    path,
                    format!(
                        "unknown case `{name}` of {}: expected one of {}",
                        type_name(ty),
                        quoted(cases.iter().map(|(n, _)| n.as_str()))
                    ),
                ));
            };
            let payload = match (case_ty, payload) {
                (None, None | Some(Value::Null)) => None,
                (None, Some(_)) => {
                    return Err(InputError::new(
                        &path.key(case),
                        "this case takes no payload",
                    ))
                }
                (Some(t), Some(v)) => Some(Box::new(json_to_val(t, v, &path.key(case))?)),
                (Some(t), None) => {
                    return Err(InputError::new(
                        path,
                        format!(
                            "case `{case}` needs a payload of type {}: write {{\"{case}\": ...}}",
                            type_name(t)
                        ),
                    ))
                }
            };
            Val::Variant(case.clone(), payload)
        }
        Type::Enum(en) => {
            let s = json.as_str().ok_or_else(mismatch)?;
            let names: Vec<_> = en.names().collect();
            let found = names
                .iter()
                .find(|n| **n == s || n.replace('-', "_") == s)
                .ok_or_else(|| {
                    InputError::new(
                        path,
                        format!(
                            "expected one of {}, got {}",
                            quoted(names.iter().copied()),
                            describe(json)
                        ),
                    )
                })?;
            Val::Enum((*found).to_owned())
        }
        Type::Option(opt) => match json {
            Value::Null => Val::Option(None),
            v => Val::Option(Some(Box::new(json_to_val(&opt.ty(), v, path)?))),
        },
        Type::Result(res) => {
            let obj = json.as_object().filter(|o| o.len() == 1).ok_or_else(|| {
                InputError::new(
                    path,
                    format!(
                        "expected {} as {{\"ok\": ...}} or {{\"err\": ...}}, got {}",
                        type_name(ty),
                        describe(json)
                    ),
                )
            })?;
            let (key, v) = obj.iter().next().expect("one entry");
            let side = |t: Option<Type>, p: &Path| -> Result<Option<Box<Val>>, InputError> {
                match (t, v) {
                    (None, Value::Null) => Ok(None),
                    (None, _) => Err(InputError::new(p, "expected null (no payload)")),
                    (Some(t), v) => Ok(Some(Box::new(json_to_val(&t, v, p)?))),
                }
            };
            match key.as_str() {
                "ok" => Val::Result(Ok(side(res.ok(), &path.key("ok"))?)),
                "err" => Val::Result(Err(side(res.err(), &path.key("err"))?)),
                _ => return Err(mismatch()),
            }
        }
        Type::Flags(flags) => {
            let items = json.as_array().ok_or_else(mismatch)?;
            let names: Vec<_> = flags.names().collect();
            let mut out = Vec::new();
            for (i, item) in items.iter().enumerate() {
                let s = item.as_str().filter(|s| names.contains(s)).ok_or_else(|| {
                    InputError::new(
                        &path.index(i),
                        format!(
                            "expected one of {}, got {}",
                            quoted(names.iter().copied()),
                            describe(item)
                        ),
                    )
                })?;
                if !out.iter().any(|o| o == s) {
                    out.push(s.to_owned());
                }
            }
            Val::Flags(out)
        }
        Type::Map(map) => {
            let (kty, vty) = (map.key(), map.value());
            match json {
                Value::Object(obj) if matches!(kty, Type::String) => Val::Map(
                    obj.iter()
                        .map(|(k, v)| {
                            Ok((Val::String(k.clone()), json_to_val(&vty, v, &path.key(k))?))
                        })
                        .collect::<Result<_, InputError>>()?,
                ),
                Value::Array(pairs) => Val::Map(
                    pairs
                        .iter()
                        .enumerate()
                        .map(|(i, pair)| {
                            let p = path.index(i);
                            match pair.as_array().map(Vec::as_slice) {
                                Some([k, v]) => Ok((
                                    json_to_val(&kty, k, &p.index(0))?,
                                    json_to_val(&vty, v, &p.index(1))?,
                                )),
                                _ => Err(InputError::new(
                                    &p,
                                    format!("expected a [key, value] pair, got {}", describe(pair)),
                                )),
                            }
                        })
                        .collect::<Result<_, _>>()?,
                ),
                _ => return Err(mismatch()),
            }
        }
        Type::Own(_) | Type::Borrow(_) | Type::Future(_) | Type::Stream(_) | Type::ErrorContext => {
            return Err(InputError::new(
                path,
                format!("{} cannot be given as JSON input", type_name(ty)),
            ))
        }
    })
}

/// Convert a value of type `ty` to JSON.
pub fn val_to_json(ty: &Type, val: &Val) -> Value {
    match (ty, val) {
        (_, Val::Bool(b)) => Value::Bool(*b),
        (_, Val::S8(n)) => (*n).into(),
        (_, Val::U8(n)) => (*n).into(),
        (_, Val::S16(n)) => (*n).into(),
        (_, Val::U16(n)) => (*n).into(),
        (_, Val::S32(n)) => (*n).into(),
        (_, Val::U32(n)) => (*n).into(),
        (_, Val::S64(n)) => (*n).into(),
        (_, Val::U64(n)) => (*n).into(),
        (_, Val::Float32(f)) => float_to_json(f64::from(*f)),
        (_, Val::Float64(f)) => float_to_json(*f),
        (_, Val::Char(c)) => Value::String(c.to_string()),
        (_, Val::String(s)) => Value::String(s.clone()),
        (Type::List(list), Val::List(items)) => {
            let elem = list.ty();
            if matches!(elem, Type::U8) {
                let bytes: Vec<u8> = items
                    .iter()
                    .map(|v| match v {
                        Val::U8(b) => *b,
                        _ => 0,
                    })
                    .collect();
                return Value::String(base64::engine::general_purpose::STANDARD.encode(bytes));
            }
            Value::Array(items.iter().map(|v| val_to_json(&elem, v)).collect())
        }
        (Type::FixedLengthList(list), Val::FixedLengthList(items)) => {
            let elem = list.ty();
            Value::Array(items.iter().map(|v| val_to_json(&elem, v)).collect())
        }
        (Type::Record(record), Val::Record(fields)) => {
            let types: Vec<_> = record.fields().map(|f| f.ty).collect();
            Value::Object(
                fields
                    .iter()
                    .zip(types)
                    .map(|((name, v), t)| (name.clone(), val_to_json(&t, v)))
                    .collect(),
            )
        }
        (Type::Tuple(tuple), Val::Tuple(items)) => Value::Array(
            tuple
                .types()
                .zip(items)
                .map(|(t, v)| val_to_json(&t, v))
                .collect(),
        ),
        (Type::Variant(variant), Val::Variant(case, payload)) => match payload {
            None => Value::String(case.clone()),
            Some(p) => {
                let t = variant
                    .cases()
                    .find(|c| c.name == case)
                    .and_then(|c| c.ty)
                    .expect("a value's case exists in its type");
                let mut obj = Map::new();
                obj.insert(case.clone(), val_to_json(&t, p));
                Value::Object(obj)
            }
        },
        (_, Val::Enum(name)) => Value::String(name.clone()),
        (Type::Option(opt), Val::Option(v)) => match v {
            None => Value::Null,
            Some(v) => val_to_json(&opt.ty(), v),
        },
        (Type::Result(res), Val::Result(r)) => {
            let (key, t, v) = match r {
                Ok(v) => ("ok", res.ok(), v),
                Err(v) => ("err", res.err(), v),
            };
            let payload = match (t, v) {
                (Some(t), Some(v)) => val_to_json(&t, v),
                _ => Value::Null,
            };
            let mut obj = Map::new();
            obj.insert(key.to_owned(), payload);
            Value::Object(obj)
        }
        (_, Val::Flags(names)) => Value::Array(names.iter().cloned().map(Value::String).collect()),
        (Type::Map(map), Val::Map(pairs)) => {
            let (kty, vty) = (map.key(), map.value());
            if matches!(kty, Type::String) {
                Value::Object(
                    pairs
                        .iter()
                        .map(|(k, v)| match k {
                            Val::String(k) => (k.clone(), val_to_json(&vty, v)),
                            _ => unreachable!("string-keyed map"),
                        })
                        .collect(),
                )
            } else {
                Value::Array(
                    pairs
                        .iter()
                        .map(|(k, v)| {
                            Value::Array(vec![val_to_json(&kty, k), val_to_json(&vty, v)])
                        })
                        .collect(),
                )
            }
        }
        // Resources, futures and streams have no JSON form; say what they were.
        (ty, _) => Value::String(format!("<{}>", type_name(ty))),
    }
}

/// Integers must be JSON numbers without a fraction, within the type's range.
fn int<T: TryFrom<i64> + TryFrom<u64>>(
    json: &Value,
    ty: &Type,
    path: &Path,
) -> Result<T, InputError> {
    let out_of_range = || {
        InputError::new(
            path,
            format!("{} is out of range for {}", describe(json), type_name(ty)),
        )
    };
    match json {
        Value::Number(n) => {
            if let Some(u) = n.as_u64() {
                T::try_from(u).map_err(|_| out_of_range())
            } else if let Some(i) = n.as_i64() {
                T::try_from(i).map_err(|_| out_of_range())
            } else {
                Err(InputError::expected(path, ty, json))
            }
        }
        _ => Err(InputError::expected(path, ty, json)),
    }
}

fn float(json: &Value, ty: &Type, path: &Path) -> Result<f64, InputError> {
    match json {
        Value::Number(n) => Ok(n.as_f64().expect("serde_json numbers convert to f64")),
        Value::String(s) if s == "NaN" => Ok(f64::NAN),
        Value::String(s) if s == "Infinity" => Ok(f64::INFINITY),
        Value::String(s) if s == "-Infinity" => Ok(f64::NEG_INFINITY),
        _ => Err(InputError::expected(path, ty, json)),
    }
}

fn float_to_json(f: f64) -> Value {
    match Number::from_f64(f) {
        Some(n) => Value::Number(n),
        None if f.is_nan() => Value::String("NaN".into()),
        None if f > 0.0 => Value::String("Infinity".into()),
        None => Value::String("-Infinity".into()),
    }
}

/// A field by its kebab-case WIT name, or the snake_case spelling of it.
fn lookup<'a>(obj: &'a Map<String, Value>, name: &str) -> Option<&'a Value> {
    obj.get(name).or_else(|| obj.get(&name.replace('-', "_")))
}

/// The values of `fields` read from `obj`, as a record's fields or a
/// function's parameters are: by kebab-case name or its snake_case spelling,
/// a missing `option` is `none`, and a key that names nothing is an error.
/// `what` names an entry in messages ("field", "parameter").
pub(crate) fn named_values(
    fields: &[(String, Type)],
    obj: &Map<String, Value>,
    path: &Path,
    what: &str,
) -> Result<Vec<(String, Val)>, InputError> {
    check_keys(obj, fields.iter().map(|(n, _)| n.as_str()), path)?;
    fields
        .iter()
        .map(|(name, ty)| {
            let val = match lookup(obj, name) {
                Some(v) => json_to_val(ty, v, &path.key(name))?,
                None if matches!(ty, Type::Option(_)) => Val::Option(None),
                None => {
                    return Err(InputError::new(
                        &path.key(name),
                        format!("missing {what} of type {}", type_name(ty)),
                    ))
                }
            };
            Ok((name.clone(), val))
        })
        .collect()
}

/// Check what is known of `json` before it is complete: values for which
/// `is_open` holds (say, a template filled in at run time) are skipped, but
/// a record written out field by field is still checked key by key, so a
/// typo or a wrong literal is caught early.
pub fn check_known(
    ty: &Type,
    json: &Value,
    path: &Path,
    is_open: &dyn Fn(&Value) -> bool,
) -> Result<(), InputError> {
    if !is_open(json) {
        return json_to_val(ty, json, path).map(drop);
    }
    if let (Type::Record(record), Value::Object(obj)) = (ty, json) {
        let fields: Vec<_> = record.fields().map(|f| (f.name.to_owned(), f.ty)).collect();
        return check_known_fields(&fields, obj, path, is_open, "field");
    }
    Ok(())
}

/// [`check_known`] for named values (a record's fields, `run`'s parameters).
pub(crate) fn check_known_fields(
    fields: &[(String, Type)],
    obj: &Map<String, Value>,
    path: &Path,
    is_open: &dyn Fn(&Value) -> bool,
    what: &str,
) -> Result<(), InputError> {
    check_keys(obj, fields.iter().map(|(n, _)| n.as_str()), path)?;
    for (name, ty) in fields {
        match lookup(obj, name) {
            Some(v) => check_known(ty, v, &path.key(name), is_open)?,
            None if matches!(ty, Type::Option(_)) => {}
            None => {
                return Err(InputError::new(
                    &path.key(name),
                    format!("missing {what} of type {}", type_name(ty)),
                ))
            }
        }
    }
    Ok(())
}

/// Reject keys that name no field: a typo must not be silently dropped.
fn check_keys<'a>(
    obj: &Map<String, Value>,
    fields: impl Iterator<Item = &'a str> + Clone,
    path: &Path,
) -> Result<(), InputError> {
    for key in obj.keys() {
        let known = fields
            .clone()
            .any(|f| f == key || f.replace('-', "_") == *key);
        if !known {
            let expected: Vec<_> = fields.clone().collect();
            return Err(InputError::new(
                &path.key(key),
                format!("unknown field (expected one of: {})", expected.join(", ")),
            ));
        }
    }
    Ok(())
}

/// `"case"` or `{"case": payload}`.
fn single_case<'a>(
    json: &'a Value,
    path: &Path,
    ty: &Type,
) -> Result<(String, Option<&'a Value>), InputError> {
    match json {
        Value::String(s) => Ok((s.clone(), None)),
        Value::Object(o) if o.len() == 1 => {
            let (k, v) = o.iter().next().expect("one entry");
            Ok((k.clone(), Some(v)))
        }
        _ => Err(InputError::new(
            path,
            format!(
                "expected {} as \"case\" or {{\"case\": payload}}, got {}",
                type_name(ty),
                describe(json)
            ),
        )),
    }
}
