//! The types a workflow's `input` may declare: WIT-like names (`string`,
//! `u32`, `bool`, `list<string>`, `option<u64>`) or JSON Schema's
//! (`string`, `integer`, `number`, `boolean`, `array`, `object`), plus
//! `any`.

use serde_json::Value;

#[derive(Clone, Debug, PartialEq)]
pub enum InputType {
    Any,
    String,
    Bool,
    /// An integer within `min..=max`.
    Int {
        name: &'static str,
        min: i128,
        max: i128,
    },
    Number,
    List(Box<InputType>),
    Option(Box<InputType>),
    Object,
}

impl InputType {
    pub fn parse(s: &str) -> Result<Self, String> {
        let s = s.trim();
        if let Some(inner) = generic(s, "list") {
            return Ok(InputType::List(Box::new(Self::parse(inner)?)));
        }
        if let Some(inner) = generic(s, "option") {
            return Ok(InputType::Option(Box::new(Self::parse(inner)?)));
        }
        let int = |name, min: i128, max: i128| InputType::Int { name, min, max };
        Ok(match s {
            "any" => InputType::Any,
            "string" => InputType::String,
            "bool" | "boolean" => InputType::Bool,
            "u8" => int("u8", 0, u8::MAX as i128),
            "u16" => int("u16", 0, u16::MAX as i128),
            "u32" => int("u32", 0, u32::MAX as i128),
            "u64" => int("u64", 0, u64::MAX as i128),
            "s8" => int("s8", i8::MIN as i128, i8::MAX as i128),
            "s16" => int("s16", i16::MIN as i128, i16::MAX as i128),
            "s32" => int("s32", i32::MIN as i128, i32::MAX as i128),
            "s64" | "integer" => int("s64", i64::MIN as i128, i64::MAX as i128),
            "f32" | "f64" | "number" => InputType::Number,
            "array" => InputType::List(Box::new(InputType::Any)),
            "object" | "record" => InputType::Object,
            other => {
                return Err(format!(
                    "unknown type `{other}` (expected a WIT type such as string, u32, bool, \
                     list<string>, option<u64>, or a JSON Schema type: integer, number, boolean, \
                     array, object; or any)"
                ))
            }
        })
    }

    /// Check `v`, naming the JSON path of the first mismatch.
    pub fn check(&self, v: &Value, path: &str) -> Result<(), String> {
        let bad = || format!("{path}: expected {}, got {}", self.name(), describe(v));
        match self {
            InputType::Any => Ok(()),
            InputType::String => v.is_string().then_some(()).ok_or_else(bad),
            InputType::Bool => v.is_boolean().then_some(()).ok_or_else(bad),
            InputType::Number => v.is_number().then_some(()).ok_or_else(bad),
            InputType::Object => v.is_object().then_some(()).ok_or_else(bad),
            InputType::Int { min, max, .. } => {
                let n = v
                    .as_i64()
                    .map(i128::from)
                    .or_else(|| v.as_u64().map(i128::from))
                    .ok_or_else(bad)?;
                (*min..=*max).contains(&n).then_some(()).ok_or_else(bad)
            }
            InputType::List(inner) => {
                let items = v.as_array().ok_or_else(bad)?;
                for (i, item) in items.iter().enumerate() {
                    inner.check(item, &format!("{path}[{i}]"))?;
                }
                Ok(())
            }
            InputType::Option(inner) => match v {
                Value::Null => Ok(()),
                v => inner.check(v, path),
            },
        }
    }

    pub fn name(&self) -> String {
        match self {
            InputType::Any => "any value".into(),
            InputType::String => "string".into(),
            InputType::Bool => "bool".into(),
            InputType::Number => "number".into(),
            InputType::Object => "object".into(),
            InputType::Int { name, .. } => (*name).into(),
            InputType::List(t) => format!("list<{}>", t.name()),
            InputType::Option(t) => format!("option<{}>", t.name()),
        }
    }
}

fn generic<'a>(s: &'a str, name: &str) -> Option<&'a str> {
    s.strip_prefix(name)?
        .trim_start()
        .strip_prefix('<')?
        .strip_suffix('>')
}

fn describe(v: &Value) -> String {
    match v {
        Value::Null => "null".into(),
        Value::String(s) => format!("{s:?}"),
        Value::Array(_) => "an array".into(),
        Value::Object(_) => "an object".into(),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn wit_and_json_schema_names() {
        let t = InputType::parse("list<u32>").unwrap();
        assert!(t.check(&json!([1, 2]), "disks").is_ok());
        assert_eq!(
            t.check(&json!([1, -2]), "disks").unwrap_err(),
            "disks[1]: expected u32, got -2"
        );
        assert!(InputType::parse("integer")
            .unwrap()
            .check(&json!("4"), "n")
            .is_err());
        assert!(InputType::parse("option<string>")
            .unwrap()
            .check(&json!(null), "s")
            .is_ok());
        assert!(InputType::parse("strng").is_err());
    }
}
