//! How WIT types and JSON values are named in messages: `list<u32>`,
//! `record { name: string, .. }`, `a string "x"`.

use serde_json::Value;
use std::fmt::Write as _;
use wasmtime::component::Type;

/// The WIT spelling of a type, for messages: `u32`, `list<string>`,
/// `option<record { name, disk }>`.
pub fn type_name(ty: &Type) -> String {
    let mut s = String::new();
    write_type_name(&mut s, ty, 0);
    s
}

fn write_type_name(s: &mut String, ty: &Type, depth: usize) {
    let prim = match ty {
        Type::Bool => "bool",
        Type::S8 => "s8",
        Type::U8 => "u8",
        Type::S16 => "s16",
        Type::U16 => "u16",
        Type::S32 => "s32",
        Type::U32 => "u32",
        Type::S64 => "s64",
        Type::U64 => "u64",
        Type::Float32 => "f32",
        Type::Float64 => "f64",
        Type::Char => "char",
        Type::String => "string",
        Type::ErrorContext => "error-context",
        _ => "",
    };
    if !prim.is_empty() {
        s.push_str(prim);
        return;
    }
    // Nested aggregates are abbreviated so messages stay one line.
    let inner = |s: &mut String, t: &Type| write_type_name(s, t, depth + 1);
    match ty {
        Type::List(l) => {
            s.push_str("list<");
            inner(s, &l.ty());
            s.push('>');
        }
        Type::FixedLengthList(l) => {
            s.push_str("list<");
            inner(s, &l.ty());
            let _ = write!(s, ", {}>", l.len());
        }
        Type::Option(o) => {
            s.push_str("option<");
            inner(s, &o.ty());
            s.push('>');
        }
        Type::Result(r) => {
            s.push_str("result");
            match (r.ok(), r.err()) {
                (None, None) => {}
                (ok, err) => {
                    s.push('<');
                    match ok {
                        Some(t) => inner(s, &t),
                        None => s.push('_'),
                    }
                    if let Some(e) = err {
                        s.push_str(", ");
                        inner(s, &e);
                    }
                    s.push('>');
                }
            }
        }
        Type::Tuple(t) => {
            s.push_str("tuple<");
            for (i, t) in t.types().enumerate() {
                if i > 0 {
                    s.push_str(", ");
                }
                inner(s, &t);
            }
            s.push('>');
        }
        Type::Map(m) => {
            s.push_str("map<");
            inner(s, &m.key());
            s.push_str(", ");
            inner(s, &m.value());
            s.push('>');
        }
        Type::Record(r) if depth < 1 => {
            let names: Vec<_> = r.fields().map(|f| f.name).collect();
            let _ = write!(s, "record {{ {} }}", names.join(", "));
        }
        Type::Record(_) => s.push_str("record"),
        Type::Variant(v) if depth < 1 => {
            let names: Vec<_> = v.cases().map(|c| c.name).collect();
            let _ = write!(s, "variant {{ {} }}", names.join(", "));
        }
        Type::Variant(_) => s.push_str("variant"),
        Type::Enum(e) if depth < 1 => {
            let names: Vec<_> = e.names().collect();
            let _ = write!(s, "enum {{ {} }}", names.join(", "));
        }
        Type::Enum(_) => s.push_str("enum"),
        Type::Flags(f) if depth < 1 => {
            let names: Vec<_> = f.names().collect();
            let _ = write!(s, "flags {{ {} }}", names.join(", "));
        }
        Type::Flags(_) => s.push_str("flags"),
        Type::Own(_) => s.push_str("own<resource>"),
        Type::Borrow(_) => s.push_str("borrow<resource>"),
        Type::Future(_) => s.push_str("future"),
        Type::Stream(_) => s.push_str("stream"),
        _ => unreachable!("primitives handled above"),
    }
}

/// A short description of a JSON value for error messages.
pub fn describe(v: &Value) -> String {
    match v {
        Value::Null => "null".into(),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => n.to_string(),
        Value::String(s) if s.chars().count() > 40 => {
            format!("{:?}", s.chars().take(37).collect::<String>() + "...")
        }
        Value::String(s) => format!("{s:?}"),
        Value::Array(a) => format!("an array of {} items", a.len()),
        Value::Object(_) => "an object".into(),
    }
}

pub(super) fn quoted<'a>(names: impl Iterator<Item = &'a str>) -> String {
    names
        .map(|n| format!("\"{n}\""))
        .collect::<Vec<_>>()
        .join(", ")
}
