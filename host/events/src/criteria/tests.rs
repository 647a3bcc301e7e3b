//! Every operator and alias, with a case that holds and one that does not.

use super::*;
use serde_json::json;

fn test(op: &str, pattern: Value) -> Criterion {
    let spec = CriterionSpec {
        operator: op.to_owned(),
        pattern,
        condition: None,
    };
    Criterion::new("trigger.x", &spec).unwrap_or_else(|e| panic!("{op}: {e:?}"))
}

fn ago(secs: u64) -> String {
    humantime::format_rfc3339_seconds(SystemTime::now() - Duration::from_secs(secs)).to_string()
}

#[test]
fn every_operator_holds_and_fails() {
    // (operator, pattern, a value it holds for, a value it does not)
    let table: Vec<(&str, Value, Value, Option<Value>)> = vec![
        ("equals", json!("web1"), json!("web1"), Some(json!("web2"))),
        ("eq", json!(3), json!(3.0), Some(json!("3"))),
        ("nequals", json!("a"), json!("b"), Some(json!("a"))),
        ("neq", json!(1), json!(2), Some(json!(1))),
        (
            "iequals",
            json!("WatchEvent"),
            json!("watchevent"),
            Some(json!("watch")),
        ),
        ("ieq", json!("A"), json!("a"), Some(json!(1))),
        ("lessthan", json!(10), json!(9.5), Some(json!(10))),
        ("lt", json!("b"), json!("a"), Some(json!("c"))),
        ("greaterthan", json!(10), json!(11), Some(json!(10))),
        ("gt", json!(0), json!(1), Some(json!("1"))),
        (
            "matchwildcard",
            json!("web-[0-9]*.example.?om"),
            json!("web-1x.example.com"),
            Some(json!("db-1.example.com")),
        ),
        (
            "regex",
            json!("^web[0-9]+$"),
            json!("web12"),
            Some(json!("web")),
        ),
        ("iregex", json!("^WEB"), json!("web1"), Some(json!("db1"))),
        (
            "matchregex",
            json!("a.c"),
            json!("a\nc and more"),
            Some(json!("xa\nc")),
        ),
        (
            "contains",
            json!("disk"),
            json!("disk full"),
            Some(json!("cpu")),
        ),
        (
            "contains",
            json!("b"),
            json!(["a", "b"]),
            Some(json!(["a"])),
        ),
        (
            "icontains",
            json!("DISK"),
            json!("disk full"),
            Some(json!("cpu")),
        ),
        (
            "ncontains",
            json!("disk"),
            json!("cpu hot"),
            Some(json!("disk full")),
        ),
        (
            "incontains",
            json!("DISK"),
            json!("cpu"),
            Some(json!("Disk full")),
        ),
        (
            "startswith",
            json!("web"),
            json!("web1"),
            Some(json!("Web1")),
        ),
        (
            "istartswith",
            json!("WEB"),
            json!("web1"),
            Some(json!("db1")),
        ),
        (
            "endswith",
            json!(".com"),
            json!("a.com"),
            Some(json!("a.COM")),
        ),
        (
            "iendswith",
            json!(".COM"),
            json!("a.com"),
            Some(json!("a.org")),
        ),
        (
            "timediff_lt",
            json!(60),
            json!(ago(5)),
            Some(json!(ago(600))),
        ),
        ("td_lt", json!(60), json!(ago(1)), Some(json!("not a time"))),
        (
            "timediff_gt",
            json!(60),
            json!(ago(600)),
            Some(json!(ago(5))),
        ),
        ("td_gt", json!(60), json!(ago(3600)), Some(json!(ago(0)))),
        ("exists", Value::Null, json!(0), None),
        ("nexists", Value::Null, json!(null), Some(json!(false))),
        (
            "inside",
            json!(["critical", "high"]),
            json!("high"),
            Some(json!("low")),
        ),
        (
            "in",
            json!("critical,high"),
            json!("high"),
            Some(json!("low")),
        ),
        (
            "ninside",
            json!(["critical", "high"]),
            json!("low"),
            Some(json!("critical")),
        ),
        ("nin", json!([1, 2]), json!(3), Some(json!(2.0))),
    ];
    for (op, pattern, yes, no) in table {
        let t = test(op, pattern.clone());
        assert!(t.holds(Some(&yes)), "{op} {pattern} should hold for {yes}");
        match no {
            Some(no) => assert!(
                !t.holds(Some(&no)),
                "{op} {pattern} should not hold for {no}"
            ),
            // exists: an absent value is the false case.
            None => assert!(!t.holds(None), "{op} should not hold for an absent value"),
        }
    }
    // Absent values: only nexists and nequals hold.
    assert!(test("nexists", Value::Null).holds(None));
    assert!(test("nequals", json!("x")).holds(None));
    assert!(!test("equals", json!("x")).holds(None));
    assert!(!test("ncontains", json!("x")).holds(None));
    // Every name in the table of operators has a case above.
    for (name, _) in OPERATORS {
        assert!(Operator::named(&name.to_uppercase()).is_some());
    }
}

#[test]
fn search_matches_any_or_all_items() {
    let spec = |condition: &str| CriterionSpec {
        operator: "search".into(),
        condition: Some(condition.into()),
        pattern: json!({
            "item.field_name": {"type": "equals", "pattern": "Status"},
            "item.to_value": {"type": "iequals", "pattern": "approved"},
        }),
    };
    let fields = json!([
        {"field_name": "Status", "to_value": "Approved"},
        {"field_name": "Owner", "to_value": "ann"},
    ]);
    let any = Criterion::new("trigger.fields", &spec("any")).unwrap();
    let all = Criterion::new("trigger.fields", &spec("all")).unwrap();
    assert!(any.holds(Some(&fields)));
    assert!(!all.holds(Some(&fields)));
    assert!(all.holds(Some(
        &json!([{"field_name": "Status", "to_value": "APPROVED"}])
    )));
    assert!(!any.holds(Some(&json!("not a list"))));
}

#[test]
fn bad_criteria_say_what_and_where() {
    let err = |op: &str, pattern: Value, condition: Option<&str>| {
        Criterion::new(
            "trigger.x",
            &CriterionSpec {
                operator: op.into(),
                pattern,
                condition: condition.map(Into::into),
            },
        )
        .unwrap_err()
    };
    let e = err("equalz", json!(1), None);
    assert_eq!(e.at, "type");
    assert!(
        e.message
            .starts_with("unknown operator `equalz` (one of: equals, eq,"),
        "{}",
        e.message
    );
    let e = err("regex", json!("(unclosed"), None);
    assert_eq!(e.at, "pattern");
    assert!(
        e.message.contains("not a regular expression"),
        "{}",
        e.message
    );
    assert_eq!(err("matchwildcard", json!("web[0-9"), None).at, "pattern");
    assert_eq!(
        err("td_lt", json!("soon"), None).message,
        "`td_lt` needs a number of seconds"
    );
    assert_eq!(err("inside", json!(3), None).at, "pattern");
    assert_eq!(err("equals", Value::Null, None).at, "pattern");
    assert_eq!(err("equals", json!(1), Some("any")).at, "condition");
    assert_eq!(
        err(
            "search",
            json!({"item.a": {"type": "eq", "pattern": 1}}),
            None
        )
        .at,
        "condition"
    );
    let e = err(
        "search",
        json!({"item.a": {"type": "nope", "pattern": 1}}),
        Some("any"),
    );
    assert_eq!(e.at, "pattern.item.a.type");
    let e = err(
        "search",
        json!({"trigger.a": {"type": "eq", "pattern": 1}}),
        Some("all"),
    );
    assert_eq!(e.at, "pattern.trigger.a");
}

#[test]
fn lookups_follow_maps_and_lists() {
    let v = json!({"body": {"hosts": ["a", {"name": "b"}]}});
    assert_eq!(lookup(&v, ".body.hosts.1.name"), Some(&json!("b")));
    assert_eq!(lookup(&v, "body.hosts.0"), Some(&json!("a")));
    assert_eq!(lookup(&v, "body.nope"), None);
    assert_eq!(lookup(&v, "body.hosts.x"), None);
    assert_eq!(lookup(&v, ""), Some(&v));
}
