//! JSON <-> WIT: every type kind round-trips through a real guest (the
//! Python `echo` fixture; the end-to-end suite runs a C guest of the same
//! world), and every kind of bad input is named precisely.

#[path = "../../../tests/support/mod.rs"]
mod support;

use serde_json::{json, Value};
use std::sync::OnceLock;
use wasmflow_runtime::{Action, RunOptions, Runtime};
use wasmflow_store::Status;

struct Fixture {
    rt: Runtime,
    echo: Action,
    _home: tempfile::TempDir,
}

fn fixture() -> &'static Fixture {
    static F: OnceLock<Fixture> = OnceLock::new();
    F.get_or_init(|| {
        let home = tempfile::tempdir().unwrap();
        let rt = Runtime::open(home.path(), Some(&support::shared_cache())).unwrap();
        let echo = rt.load(&support::built("tests/fixtures/echo")).unwrap();
        Fixture {
            rt,
            echo,
            _home: home,
        }
    })
}

use support::everything;

/// Run the echo guest on `input` and return its record.
fn run(input: Value) -> wasmflow_store::ExecutionRecord {
    let f = fixture();
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(f.rt.run(&f.echo, input, RunOptions::default()))
        .unwrap()
}

fn echo(value: Value) -> Value {
    let rec = run(json!({ "value": value }));
    assert_eq!(rec.status, Status::Succeeded, "{rec:#?}");
    rec.result.unwrap()
}

#[test]
fn every_kind_round_trips_through_a_guest() {
    let v = everything();
    assert_eq!(echo(v.clone()), v);
}

#[test]
fn other_cases_round_trip_too() {
    let mut v = everything();
    v["maybe"] = Value::Null;
    v["shape"] = json!("point");
    v["outcome"] = json!({ "ok": 42 });
    v["perms"] = json!([]);
    v["blob"] = json!("");
    v["words"] = json!([]);
    v["f64v"] = json!("NaN");
    v["f32v"] = json!("-Infinity");
    assert_eq!(echo(v.clone()), v);
    v["shape"] = json!({ "named": "hex" });
    assert_eq!(echo(v.clone()), v);
}

#[test]
fn snake_case_and_omitted_options_are_accepted_on_input() {
    let mut v = everything();
    let nested = v["nested"].as_array_mut().unwrap();
    nested[1].as_object_mut().unwrap().remove("weight");
    v["color"] = json!("blue_ish");
    let out = echo(v);
    assert_eq!(out["nested"][1]["weight"], Value::Null);
    assert_eq!(out["color"], "blue-ish");
}

#[test]
fn the_actions_err_becomes_the_records_error() {
    let rec = run(json!({ "value": everything(), "extra": "fail" }));
    assert_eq!(rec.status, Status::Failed);
    let e = rec.error.unwrap();
    assert_eq!(
        (e.code.as_str(), e.message.as_str(), e.retryable),
        ("asked-to-fail", "extra was 'fail'", true)
    );
    assert_eq!(e.details, Some(json!({ "why": "test" })));
}

/// Replace the value at `path` (dot-separated keys / indexes) in `everything()`.
fn with(path: &str, new: Value) -> Value {
    let mut v = json!({ "value": everything() });
    let mut cur = &mut v;
    let keys: Vec<&str> = path.split('.').collect();
    for k in &keys[..keys.len() - 1] {
        cur = match k.parse::<usize>() {
            Ok(i) => &mut cur[i],
            Err(_) => &mut cur[*k],
        };
    }
    let last = keys[keys.len() - 1];
    match new {
        Value::Null if last.starts_with('-') => {
            cur.as_object_mut().unwrap().remove(&last[1..]);
        }
        new => match last.parse::<usize>() {
            Ok(i) => cur[i] = new,
            Err(_) => cur[last] = new,
        },
    }
    v
}

#[test]
fn each_kind_of_bad_input_names_path_and_type() {
    let f = fixture();
    let cases: Vec<(Value, &str)> = vec![
        (with("value.flag", json!("yes")), r#"value.flag: expected bool, got "yes""#),
        (with("value.u32v", json!("four")), r#"value.u32v: expected u32, got "four""#),
        (with("value.u8v", json!(256)), "value.u8v: 256 is out of range for u8"),
        (with("value.i8v", json!(-129)), "value.i8v: -129 is out of range for s8"),
        (with("value.u64v", json!(-1)), "value.u64v: -1 is out of range for u64"),
        (with("value.i32v", json!(1.5)), "value.i32v: expected s32, got 1.5"),
        (with("value.f64v", json!(true)), "value.f64v: expected f64, got true"),
        (with("value.letter", json!("ab")), r#"value.letter: expected char, got "ab""#),
        (with("value.text", json!(5)), "value.text: expected string, got 5"),
        (with("value.blob", json!("%%%")), "value.blob: expected base64 for list<u8>: Invalid symbol 37, offset 0."),
        (with("value.words", json!("a")), r#"value.words: expected list<string>, got "a""#),
        (with("value.words.1", json!(2)), "value.words[1]: expected string, got 2"),
        (with("value.pair", json!([1])), "value.pair: expected tuple<u32, string>, got an array of 1 items"),
        (with("value.pair", json!([1, 2])), "value.pair[1]: expected string, got 2"),
        (with("value.maybe", json!("x")), r#"value.maybe: expected u32, got "x""#),
        (with("value.color", json!("purple")), r#"value.color: expected one of "red", "green", "blue-ish", got "purple""#),
        (with("value.perms", json!(["fly"])), r#"value.perms[0]: expected one of "read", "write", "exec", got "fly""#),
        (with("value.shape", json!({ "square": 1 })), r#"value.shape: unknown case `square` of variant { point, circle, named }: expected one of "point", "circle", "named""#),
        (with("value.shape", json!("circle")), r#"value.shape: case `circle` needs a payload of type f64: write {"circle": ...}"#),
        (with("value.shape", json!({ "point": 1 })), "value.shape.point: this case takes no payload"),
        (with("value.outcome", json!(3)), "value.outcome: expected result<u32, string> as {\"ok\": ...} or {\"err\": ...}, got 3"),
        (with("value.outcome", json!({ "ok": "x" })), r#"value.outcome.ok: expected u32, got "x""#),
        (with("value.nested.1.label", json!(null)), "value.nested[1].label: expected string, got null"),
        (with("value.nested.0.-label", Value::Null), "value.nested[0].label: missing field of type string"),
        (with("value.nested.0.colour", json!(1)), "value.nested[0].colour: unknown field (expected one of: label, weight)"),
        (with("value.-flag", Value::Null), "value.flag: missing field of type bool"),
        (json!({ "valeu": 1 }), "valeu: unknown field (expected one of: value, extra)"),
        (json!({}), "value: missing parameter of type record { flag, i8v, u8v, i16v, u16v, i32v, u32v, i64v, u64v, f32v, f64v, letter, text, blob, words, pair, maybe, color, perms, shape, outcome, nested }"),
        (json!([1]), "input: expected a JSON object keyed by parameter name (value, extra), got an array of 1 items"),
    ];
    let mut wrong = Vec::new();
    for (input, want) in cases {
        match f.echo.check_input(&input) {
            Ok(_) => wrong.push(format!("accepted, wanted: {want}")),
            Err(e) if e.to_string() != want => wrong.push(format!("got:  {e}\nwant: {want}")),
            Err(_) => {}
        }
    }
    assert!(wrong.is_empty(), "\n{}", wrong.join("\n"));
}
