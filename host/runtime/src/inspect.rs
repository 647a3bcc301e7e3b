//! What a component is: its `run` signature as WIT (with doc comments where
//! the component carries them), its input as JSON Schema, and its imports.

use serde_json::{json, Map, Value};
use std::collections::BTreeSet;
use std::fmt::Write as _;
use wit_parser::decoding::{decode, DecodedWasm};
use wit_parser::{
    Docs, Function, Resolve, Type, TypeDefKind, TypeId, TypeOwner, WorldItem, WorldKey,
};

#[derive(Debug, thiserror::Error)]
pub enum InspectError {
    #[error("cannot decode the component's WIT: {0}")]
    Decode(String),
    #[error("the component does not export a `run` function")]
    NoRun,
}

/// A component described for people and for tools.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Inspection {
    /// The world's doc comment, if any.
    pub docs: Option<String>,
    /// The types `run` uses and `run` itself, in WIT.
    pub wit: String,
    /// JSON Schema of the input object (keyed by parameter name).
    pub input_schema: Value,
    /// JSON Schema of the value printed on success.
    pub output_schema: Value,
    /// Imported interfaces, e.g. `wasi:filesystem/types@0.2.9`.
    pub imports: Vec<String>,
}

pub fn inspect(component: &[u8]) -> Result<Inspection, InspectError> {
    let (resolve, world_id) =
        match decode(component).map_err(|e| InspectError::Decode(format!("{e:#}")))? {
            DecodedWasm::Component(r, w) => (r, w),
            DecodedWasm::WitPackage(..) => {
                return Err(InspectError::Decode(
                    "this is a WIT package, not a component".into(),
                ))
            }
        };
    let world = &resolve.worlds[world_id];
    let run = world
        .exports
        .iter()
        .find_map(|(k, item)| match (k, item) {
            (WorldKey::Name(n), WorldItem::Function(f)) if n == "run" => Some(f),
            _ => None,
        })
        .ok_or(InspectError::NoRun)?;

    let imports = world
        .imports
        .iter()
        .filter_map(|(k, item)| match item {
            WorldItem::Interface { .. } => Some(resolve.name_world_key(k)),
            _ => None,
        })
        .collect();

    let printer = Printer { resolve: &resolve };
    let input_schema = printer.input_schema(run);
    let output_schema = match run.result {
        Some(Type::Id(id)) => match &resolve.types[id].kind {
            TypeDefKind::Result(r) => {
                r.ok.map(|t| printer.schema(&t))
                    .unwrap_or(json!({ "type": "null" }))
            }
            _ => printer.schema(&Type::Id(id)),
        },
        Some(t) => printer.schema(&t),
        None => json!({ "type": "null" }),
    };
    Ok(Inspection {
        docs: world.docs.contents.clone(),
        wit: printer.signature(run),
        input_schema,
        output_schema,
        imports,
    })
}

/// Where `run`'s secret parameters are, as paths of JSON names from the
/// input object (`["spec", "password"]`): a parameter named by a
/// `@secret NAME` line of `run`'s doc comment (WIT has no doc comments on
/// parameters), and a record field whose doc comment has a `@secret`
/// line, in the parameters' records (and options of them). Their values
/// are kept sealed in records and masked like every secret; `inspect`
/// marks them `writeOnly` in the input schema.
pub fn secret_params(component: &[u8]) -> Result<Vec<Vec<String>>, InspectError> {
    let (resolve, world_id) =
        match decode(component).map_err(|e| InspectError::Decode(format!("{e:#}")))? {
            DecodedWasm::Component(r, w) => (r, w),
            DecodedWasm::WitPackage(..) => return Ok(Vec::new()),
        };
    let Some(run) = resolve.worlds[world_id]
        .exports
        .iter()
        .find_map(|(k, item)| match (k, item) {
            (WorldKey::Name(n), WorldItem::Function(f)) if n == "run" => Some(f),
            _ => None,
        })
    else {
        return Ok(Vec::new());
    };
    fn fields(
        resolve: &Resolve,
        ty: &Type,
        at: &[String],
        out: &mut Vec<Vec<String>>,
        depth: usize,
    ) {
        let Type::Id(id) = ty else { return };
        if depth > 16 {
            return;
        }
        match &resolve.types[*id].kind {
            TypeDefKind::Record(r) => {
                for f in &r.fields {
                    let path = [at, std::slice::from_ref(&f.name)].concat();
                    if is_secret(&f.docs) {
                        out.push(path);
                    } else {
                        fields(resolve, &f.ty, &path, out, depth + 1);
                    }
                }
            }
            TypeDefKind::Option(t) | TypeDefKind::Type(t) => fields(resolve, t, at, out, depth + 1),
            _ => {}
        }
    }
    let named = secret_names(&run.docs);
    let mut out = Vec::new();
    for p in &run.params {
        if named.contains(&p.name) {
            out.push(vec![p.name.clone()]);
        } else {
            fields(&resolve, &p.ty, std::slice::from_ref(&p.name), &mut out, 0);
        }
    }
    Ok(out)
}

/// The parameters a function's doc comment declares secret: `@secret NAME`
/// lines.
fn secret_names(docs: &Docs) -> Vec<String> {
    docs.contents
        .iter()
        .flat_map(|d| d.lines())
        .filter_map(|l| l.trim().strip_prefix("@secret"))
        .flat_map(|rest| {
            rest.split([' ', ','])
                .filter(|w| !w.is_empty())
                .map(str::to_owned)
        })
        .collect()
}

/// Whether a field's doc comment has a `@secret` line.
fn is_secret(docs: &Docs) -> bool {
    docs.contents
        .iter()
        .flat_map(|d| d.lines())
        .any(|l| l.trim() == "@secret")
}

struct Printer<'a> {
    resolve: &'a Resolve,
}

impl Printer<'_> {
    /// The named types `run` reaches, each once, dependencies first, then `run`.
    fn signature(&self, run: &Function) -> String {
        let mut order = Vec::new();
        let mut seen = BTreeSet::new();
        for p in &run.params {
            self.collect(&p.ty, &mut seen, &mut order);
        }
        if let Some(r) = &run.result {
            self.collect(r, &mut seen, &mut order);
        }
        let mut out = String::new();
        for id in order {
            let before = out.len();
            self.typedef(&mut out, id);
            if out.len() > before {
                out.push('\n');
            }
        }
        docs(&mut out, &run.docs, "");
        let params: Vec<_> = run
            .params
            .iter()
            .map(|p| format!("{}: {}", p.name, self.name(&p.ty)))
            .collect();
        let _ = write!(out, "run: func({})", params.join(", "));
        if let Some(r) = &run.result {
            let _ = write!(out, " -> {}", self.name(r));
        }
        out.push_str(";\n");
        out
    }

    fn collect(&self, ty: &Type, seen: &mut BTreeSet<TypeId>, order: &mut Vec<TypeId>) {
        let Type::Id(id) = ty else { return };
        let def = &self.resolve.types[*id];
        let named = def.name.is_some();
        if named && !seen.insert(*id) {
            return;
        }
        let mut inner = |t: &Type| self.collect(t, seen, order);
        match &def.kind {
            TypeDefKind::Record(r) => r.fields.iter().for_each(|f| inner(&f.ty)),
            TypeDefKind::Variant(v) => v
                .cases
                .iter()
                .filter_map(|c| c.ty.as_ref())
                .for_each(&mut inner),
            TypeDefKind::Tuple(t) => t.types.iter().for_each(&mut inner),
            TypeDefKind::Option(t)
            | TypeDefKind::List(t)
            | TypeDefKind::FixedLengthList(t, _)
            | TypeDefKind::Type(t) => inner(t),
            TypeDefKind::Map(k, v) => {
                inner(k);
                inner(v);
            }
            TypeDefKind::Result(r) => {
                r.ok.iter().for_each(&mut inner);
                r.err.iter().for_each(&mut inner);
            }
            _ => {}
        }
        if named {
            order.push(*id);
        }
    }

    fn typedef(&self, out: &mut String, id: TypeId) {
        let def = &self.resolve.types[id];
        let name = def.name.as_deref().unwrap_or("_");
        // `use iface.{t}` shows up as an alias of the same name; the
        // original definition is printed already.
        if let TypeDefKind::Type(Type::Id(target)) = def.kind {
            if self.resolve.types[target].name.as_deref() == Some(name) {
                return;
            }
        }
        docs(out, &def.docs, "");
        if let TypeOwner::Interface(i) = def.owner {
            if let Some(iface) = self.resolve.interfaces[i].name.as_deref() {
                let pkg = self.resolve.interfaces[i]
                    .package
                    .map(|p| self.resolve.packages[p].name.to_string())
                    .unwrap_or_default();
                let _ = writeln!(out, "// from {pkg}/{iface}");
            }
        }
        match &def.kind {
            TypeDefKind::Record(r) => {
                let _ = writeln!(out, "record {name} {{");
                for f in &r.fields {
                    docs(out, &f.docs, "  ");
                    let _ = writeln!(out, "  {}: {},", f.name, self.name(&f.ty));
                }
                out.push_str("}\n");
            }
            TypeDefKind::Variant(v) => {
                let _ = writeln!(out, "variant {name} {{");
                for c in &v.cases {
                    docs(out, &c.docs, "  ");
                    match &c.ty {
                        Some(t) => {
                            let _ = writeln!(out, "  {}({}),", c.name, self.name(t));
                        }
                        None => {
                            let _ = writeln!(out, "  {},", c.name);
                        }
                    }
                }
                out.push_str("}\n");
            }
            TypeDefKind::Enum(e) => {
                let _ = writeln!(out, "enum {name} {{");
                for c in &e.cases {
                    docs(out, &c.docs, "  ");
                    let _ = writeln!(out, "  {},", c.name);
                }
                out.push_str("}\n");
            }
            TypeDefKind::Flags(f) => {
                let _ = writeln!(out, "flags {name} {{");
                for c in &f.flags {
                    docs(out, &c.docs, "  ");
                    let _ = writeln!(out, "  {},", c.name);
                }
                out.push_str("}\n");
            }
            TypeDefKind::Resource => {
                let _ = writeln!(out, "resource {name};");
            }
            _ => {
                let _ = writeln!(out, "type {name} = {};", self.anonymous(&def.kind));
            }
        }
    }

    fn name(&self, ty: &Type) -> String {
        match ty {
            Type::Bool => "bool".into(),
            Type::U8 => "u8".into(),
            Type::U16 => "u16".into(),
            Type::U32 => "u32".into(),
            Type::U64 => "u64".into(),
            Type::S8 => "s8".into(),
            Type::S16 => "s16".into(),
            Type::S32 => "s32".into(),
            Type::S64 => "s64".into(),
            Type::F32 => "f32".into(),
            Type::F64 => "f64".into(),
            Type::Char => "char".into(),
            Type::String => "string".into(),
            Type::ErrorContext => "error-context".into(),
            Type::Id(id) => {
                let def = &self.resolve.types[*id];
                match &def.name {
                    Some(n) => n.clone(),
                    None => self.anonymous(&def.kind),
                }
            }
        }
    }

    fn anonymous(&self, kind: &TypeDefKind) -> String {
        match kind {
            TypeDefKind::Option(t) => format!("option<{}>", self.name(t)),
            TypeDefKind::List(t) => format!("list<{}>", self.name(t)),
            TypeDefKind::FixedLengthList(t, n) => format!("list<{}, {n}>", self.name(t)),
            TypeDefKind::Map(k, v) => format!("map<{}, {}>", self.name(k), self.name(v)),
            TypeDefKind::Tuple(t) => format!(
                "tuple<{}>",
                t.types
                    .iter()
                    .map(|t| self.name(t))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
            TypeDefKind::Result(r) => match (&r.ok, &r.err) {
                (None, None) => "result".into(),
                (Some(o), None) => format!("result<{}>", self.name(o)),
                (None, Some(e)) => format!("result<_, {}>", self.name(e)),
                (Some(o), Some(e)) => format!("result<{}, {}>", self.name(o), self.name(e)),
            },
            TypeDefKind::Type(t) => self.name(t),
            TypeDefKind::Handle(wit_parser::Handle::Own(id)) => self.name(&Type::Id(*id)),
            TypeDefKind::Handle(wit_parser::Handle::Borrow(id)) => {
                format!("borrow<{}>", self.name(&Type::Id(*id)))
            }
            TypeDefKind::Future(t) => {
                format!("future<{}>", t.map(|t| self.name(&t)).unwrap_or_default())
            }
            TypeDefKind::Stream(t) => {
                format!("stream<{}>", t.map(|t| self.name(&t)).unwrap_or_default())
            }
            _ => "_".into(),
        }
    }

    fn input_schema(&self, run: &Function) -> Value {
        let mut props = Map::new();
        let mut required = Vec::new();
        let secret = secret_names(&run.docs);
        for p in &run.params {
            let mut ps = self.schema(&p.ty);
            if secret.contains(&p.name) {
                ps["writeOnly"] = Value::Bool(true);
            }
            props.insert(p.name.clone(), ps);
            if !self.is_option(&p.ty) {
                required.push(Value::String(p.name.clone()));
            }
        }
        let mut s = json!({
            "$schema": "https://json-schema.org/draft/2020-12/schema",
            "type": "object",
            "properties": props,
            "required": required,
            "additionalProperties": false,
        });
        if let Some(d) = &run.docs.contents {
            s["description"] = Value::String(d.trim().to_owned());
        }
        s
    }

    fn is_option(&self, ty: &Type) -> bool {
        match ty {
            Type::Id(id) => match &self.resolve.types[*id].kind {
                TypeDefKind::Option(_) => true,
                TypeDefKind::Type(t) => self.is_option(t),
                _ => false,
            },
            _ => false,
        }
    }

    /// JSON Schema of a WIT type under wasmflow's JSON mapping.
    fn schema(&self, ty: &Type) -> Value {
        let int =
            |min: i128, max: i128| json!({ "type": "integer", "minimum": min, "maximum": max });
        let mut s = match ty {
            Type::Bool => json!({ "type": "boolean" }),
            Type::U8 => int(0, u8::MAX.into()),
            Type::U16 => int(0, u16::MAX.into()),
            Type::U32 => int(0, u32::MAX.into()),
            Type::U64 => int(0, u64::MAX.into()),
            Type::S8 => int(i8::MIN.into(), i8::MAX.into()),
            Type::S16 => int(i16::MIN.into(), i16::MAX.into()),
            Type::S32 => int(i32::MIN.into(), i32::MAX.into()),
            Type::S64 => int(i64::MIN.into(), i64::MAX.into()),
            Type::F32 | Type::F64 => {
                json!({ "oneOf": [{ "type": "number" }, { "enum": ["NaN", "Infinity", "-Infinity"] }] })
            }
            Type::Char => json!({ "type": "string", "minLength": 1, "maxLength": 1 }),
            Type::String => json!({ "type": "string" }),
            Type::ErrorContext => json!({}),
            Type::Id(id) => return self.schema_def(*id),
        };
        s["x-wit-type"] = Value::String(self.name(ty));
        s
    }

    fn schema_def(&self, id: TypeId) -> Value {
        let def = &self.resolve.types[id];
        let mut s = match &def.kind {
            TypeDefKind::Record(r) => {
                let mut props = Map::new();
                let mut required = Vec::new();
                for f in &r.fields {
                    let mut fs = self.schema(&f.ty);
                    if let Some(d) = &f.docs.contents {
                        fs["description"] = Value::String(d.trim().to_owned());
                    }
                    if is_secret(&f.docs) {
                        fs["writeOnly"] = Value::Bool(true);
                    }
                    props.insert(f.name.clone(), fs);
                    if !self.is_option(&f.ty) {
                        required.push(Value::String(f.name.clone()));
                    }
                }
                json!({ "type": "object", "properties": props, "required": required, "additionalProperties": false })
            }
            TypeDefKind::Enum(e) => {
                json!({ "enum": e.cases.iter().map(|c| c.name.clone()).collect::<Vec<_>>() })
            }
            TypeDefKind::Flags(f) => json!({
                "type": "array", "uniqueItems": true,
                "items": { "enum": f.flags.iter().map(|c| c.name.clone()).collect::<Vec<_>>() }
            }),
            TypeDefKind::Variant(v) => json!({ "oneOf": v.cases.iter().map(|c| match &c.ty {
                None => json!({ "const": c.name }),
                Some(t) => json!({ "type": "object", "properties": { c.name.clone(): self.schema(t) }, "required": [c.name], "additionalProperties": false }),
            }).collect::<Vec<_>>() }),
            TypeDefKind::Option(t) => json!({ "oneOf": [{ "type": "null" }, self.schema(t)] }),
            TypeDefKind::List(Type::U8) => json!({ "type": "string", "contentEncoding": "base64" }),
            TypeDefKind::List(t) => json!({ "type": "array", "items": self.schema(t) }),
            TypeDefKind::FixedLengthList(t, n) => {
                json!({ "type": "array", "items": self.schema(t), "minItems": n, "maxItems": n })
            }
            TypeDefKind::Tuple(t) => json!({
                "type": "array", "prefixItems": t.types.iter().map(|t| self.schema(t)).collect::<Vec<_>>(),
                "minItems": t.types.len(), "maxItems": t.types.len()
            }),
            TypeDefKind::Result(r) => {
                let side = |t: &Option<Type>| {
                    t.as_ref()
                        .map(|t| self.schema(t))
                        .unwrap_or(json!({ "type": "null" }))
                };
                json!({ "oneOf": [
                    { "type": "object", "properties": { "ok": side(&r.ok) }, "required": ["ok"], "additionalProperties": false },
                    { "type": "object", "properties": { "err": side(&r.err) }, "required": ["err"], "additionalProperties": false },
                ] })
            }
            TypeDefKind::Map(_, v) => {
                json!({ "type": "object", "additionalProperties": self.schema(v) })
            }
            TypeDefKind::Type(t) => self.schema(t),
            _ => json!({ "description": "not representable as JSON" }),
        };
        if let Some(d) = &def.docs.contents {
            if s.get("description").is_none() {
                s["description"] = Value::String(d.trim().to_owned());
            }
        }
        s["x-wit-type"] = Value::String(self.name(&Type::Id(id)));
        s
    }
}

fn docs(out: &mut String, docs: &Docs, indent: &str) {
    if let Some(d) = &docs.contents {
        for line in d.trim_end().lines() {
            let _ = writeln!(out, "{indent}/// {line}");
        }
    }
}

/// Append `docs` (an encoded `wit_parser::PackageMetadata`) to a component
/// as its `package-docs` custom section, the way wit-component writes it:
/// what [`inspect`] reads the doc comments from.
pub fn append_package_docs(component: &mut Vec<u8>, docs: &[u8]) {
    let name = wit_parser::PackageMetadata::SECTION_NAME;
    let mut body = Vec::new();
    leb128(&mut body, name.len());
    body.extend_from_slice(name.as_bytes());
    body.extend_from_slice(docs);
    component.push(0); // custom section id
    leb128(component, body.len());
    component.extend_from_slice(&body);
}

fn leb128(out: &mut Vec<u8>, mut n: usize) {
    loop {
        let byte = (n & 0x7f) as u8;
        n >>= 7;
        if n == 0 {
            out.push(byte);
            return;
        }
        out.push(byte | 0x80);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use wit_parser::PackageMetadata;

    /// A component carrying docs in a `package-docs` section, as
    /// wit-component writes it.
    fn documented_add() -> Vec<u8> {
        let mut resolve = Resolve::default();
        let pkg = resolve
            .push_str(
                "docs.wit",
                "package root:component;\n\
                 /// Adds numbers.\n\
                 world root {\n\
                   /// Add `a` and `b`.\n\
                   export run: func(a: u32, b: u32) -> u32;\n\
                 }\n",
            )
            .unwrap();
        let docs = PackageMetadata::extract(&resolve, pkg).encode().unwrap();
        let wat = std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../tests/fixtures/wat/add.wat"
        ))
        .unwrap();
        let mut component = wat::parse_str(&wat).unwrap();
        append_package_docs(&mut component, &docs);
        component
    }

    #[test]
    fn doc_comments_the_component_carries_are_shown() {
        let info = inspect(&documented_add()).unwrap();
        assert_eq!(info.docs.as_deref().map(str::trim), Some("Adds numbers."));
        assert!(
            info.wit
                .contains("/// Add `a` and `b`.\nrun: func(a: u32, b: u32) -> u32;"),
            "{}",
            info.wit
        );
        assert_eq!(info.input_schema["description"], "Add `a` and `b`.");
    }

    #[test]
    fn without_docs_the_signature_is_still_shown() {
        let wat = std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../tests/fixtures/wat/add.wat"
        ))
        .unwrap();
        let info = inspect(&wat::parse_str(&wat).unwrap()).unwrap();
        assert_eq!(info.docs, None);
        assert_eq!(info.wit, "run: func(a: u32, b: u32) -> u32;\n");
        assert_eq!(info.input_schema["required"], serde_json::json!(["a", "b"]));
    }
}
