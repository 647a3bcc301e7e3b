//! Secret references: how a value that must not be kept in clear is
//! written where it is used (a task's input, an env grant, a record).
//!
//! `((secret:NAME))` stands for the datastore key `NAME`; `((sealed:CT))`
//! for a value given in clear (an `--allow-env NAME=VALUE`), encrypted
//! under the secret key. The runtime puts the value in place just before
//! a guest or a granted program gets it; records, journals and the API
//! keep the reference.

use std::ops::Range;

const KEY_OPEN: &str = "((secret:";
const SEALED_OPEN: &str = "((sealed:";
const CLOSE: &str = "))";

/// What one reference stands for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Reference<'a> {
    /// A datastore key, by name.
    Key(&'a str),
    /// A value sealed under the secret key (the ciphertext).
    Sealed(&'a str),
}

/// The reference to the key `name`.
pub fn to_key(name: &str) -> String {
    format!("{KEY_OPEN}{name}{CLOSE}")
}

pub(crate) fn to_sealed(ciphertext: &str) -> String {
    format!("{SEALED_OPEN}{ciphertext}{CLOSE}")
}

/// Every reference in `text`, with where it is, in order.
pub fn find(text: &str) -> Vec<(Range<usize>, Reference<'_>)> {
    let mut out = Vec::new();
    let mut at = 0;
    while let Some(i) = text[at..].find("((") {
        let start = at + i;
        let rest = &text[start..];
        let (open, sealed) = if rest.starts_with(KEY_OPEN) {
            (KEY_OPEN, false)
        } else if rest.starts_with(SEALED_OPEN) {
            (SEALED_OPEN, true)
        } else {
            at = start + 2;
            continue;
        };
        let body = &rest[open.len()..];
        match body.find(CLOSE) {
            Some(len) if len > 0 && !body[..len].contains("((") => {
                let end = start + open.len() + len + CLOSE.len();
                let inner = &body[..len];
                let r = match sealed {
                    true => Reference::Sealed(inner),
                    false => Reference::Key(inner),
                };
                out.push((start..end, r));
                at = end;
            }
            _ => at = start + 2,
        }
    }
    out
}

/// Whether `text` holds a reference at all.
pub fn holds(text: &str) -> bool {
    !find(text).is_empty()
}

/// The key names referenced anywhere in a JSON value.
pub fn key_names(value: &serde_json::Value) -> Vec<String> {
    let mut names = Vec::new();
    walk(value, &mut |s| {
        for (_, r) in find(s) {
            if let Reference::Key(name) = r {
                if !names.iter().any(|n| n == name) {
                    names.push(name.to_owned());
                }
            }
        }
    });
    names
}

fn walk(value: &serde_json::Value, f: &mut impl FnMut(&str)) {
    match value {
        serde_json::Value::String(s) => f(s),
        serde_json::Value::Array(items) => items.iter().for_each(|v| walk(v, f)),
        serde_json::Value::Object(m) => m.values().for_each(|v| walk(v, f)),
        _ => {}
    }
}

/// Whether any of the key grants `patterns` lets the key `name` be read.
pub fn granted(patterns: &[String], name: &str) -> bool {
    patterns.iter().any(|p| matches(p, name))
}

/// Whether the key `name` matches the grant `pattern`: `*` stands for any
/// run of characters (dots included), anything else for itself.
pub fn matches(pattern: &str, name: &str) -> bool {
    let (p, n) = (pattern.as_bytes(), name.as_bytes());
    // Iterative glob match with backtracking to the last `*`.
    let (mut i, mut j, mut star, mut mark) = (0, 0, None, 0);
    while j < n.len() {
        if i < p.len() && p[i] == b'*' {
            star = Some(i);
            mark = j;
            i += 1;
        } else if i < p.len() && p[i] == n[j] {
            i += 1;
            j += 1;
        } else if let Some(s) = star {
            i = s + 1;
            mark += 1;
            j = mark;
        } else {
            return false;
        }
    }
    p[i..].iter().all(|&c| c == b'*')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn references_are_found_in_place() {
        let s = format!(
            "postgres://u:{}@h/{}",
            to_key("system.db"),
            to_sealed("xc:1:2")
        );
        let found = find(&s);
        assert_eq!(found.len(), 2);
        assert_eq!(found[0].1, Reference::Key("system.db"));
        assert_eq!(&s[found[0].0.clone()], "((secret:system.db))");
        assert_eq!(found[1].1, Reference::Sealed("xc:1:2"));
        assert!(find("((secret:)) ((other:x)) ((secret:a").is_empty());
        assert_eq!(
            key_names(&serde_json::json!({"a": [to_key("system.x")], "b": to_key("system.x")})),
            ["system.x"]
        );
    }

    #[test]
    fn patterns() {
        assert!(matches("system.vm.*", "system.vm.password"));
        assert!(matches("system.*", "system.vm.*"));
        assert!(matches("system.db", "system.db"));
        assert!(!matches("system.db", "system.db2"));
        assert!(!matches("system.vm.*", "system.vmx"));
        assert!(matches("*", "user.ann.x"));
        assert!(matches("user.*.token", "user.ann.token"));
        assert!(!matches("user.*.token", "user.ann.tokens"));
    }
}
