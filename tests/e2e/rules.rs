//! The event bus's rules from the command line: `rule validate` names
//! each problem with its position (exit 2), `rule test` tells what a rule
//! makes of a payload (exit 0 when it would run its action, 1 when not),
//! `trigger list` shows the types.

use crate::{s, support, Home};
use serde_json::json;

pub(crate) const RULE: &str = r#"name: restart-on-disk-alert
description: Restart a web server whose disk is full.
trigger: { type: wasmflow.webhook, parameters: { name: alerts } }
criteria:
  trigger.body.severity: { type: inside, pattern: [critical, high] }
  trigger.body.host:     { type: regex, pattern: "^web[0-9]+$" }
action:
  ref: keyed
  input: { key: "", var: "", program: "", args: [], text: "restart {{ trigger.body.host }}" }
"#;

#[test]
fn rules_are_validated_with_positions_and_tested_on_payloads() {
    let home = Home::new();
    let dir = tempfile::tempdir().unwrap();
    let rule = dir.path().join("restart.yaml");
    std::fs::write(&rule, RULE).unwrap();
    let actions = dir.path().join("actions");
    std::fs::create_dir(&actions).unwrap();
    std::fs::copy(
        support::built("tests/fixtures/keyed"),
        actions.join("keyed.wasm"),
    )
    .unwrap();

    home.run(&["rule", "validate", s(&rule), "--actions", s(&actions)])
        .ok()
        .stderr_has("restart.yaml: ok (`restart-on-disk-alert`: wasmflow.webhook -> keyed)");

    // Every kind of mistake, each with its file, line and column; exit 2.
    let bad = dir.path().join("bad.yaml");
    std::fs::write(
        &bad,
        RULE.replace("wasmflow.webhook", "wasmflow.webhok")
            .replace("type: regex", "type: regexp")
            .replace("ref: keyed", "ref: kyed")
            .replace(
                "[critical, high] }",
                "[critical, high] }\n  trigger.body.when: { type: td_lt, pattern: soon }",
            ),
    )
    .unwrap();
    let out = home.run(&["rule", "validate", s(&bad), "--actions", s(&actions)]);
    out.code(2);
    for want in [
        "bad.yaml:3:18: trigger.type: unknown trigger type `wasmflow.webhok`",
        "bad.yaml:6:46: criteria.trigger.body.when.pattern: `td_lt` needs a number of seconds",
        "bad.yaml:7:34: criteria.trigger.body.host.type: unknown operator `regexp`",
        "bad.yaml:9:8: action.ref: no action or workflow named `kyed` in the catalog",
    ] {
        out.stderr_has(want);
    }
    // An input the action does not take.
    std::fs::write(&bad, RULE.replace("text:", "txt:")).unwrap();
    home.run(&["rule", "validate", s(&bad), "--actions", s(&actions)])
        .code(2)
        .stderr_has("bad.yaml:9:53: action.input.txt: `keyed` has no input `txt`");

    // st2-rule-tester: held or not, and the input the action would get.
    let payload = dir.path().join("payload.json");
    let send = |body: serde_json::Value| {
        std::fs::write(
            &payload,
            json!({"name": "alerts", "body": body}).to_string(),
        )
        .unwrap();
        home.run(&["rule", "test", s(&rule), "--payload", s(&payload), "--json"])
    };
    let hit = send(json!({"severity": "critical", "host": "web12"}));
    let verdict = hit.ok().json();
    assert_eq!(verdict["decision"], "run");
    assert_eq!(verdict["input"]["text"], "restart web12");
    let miss = send(json!({"severity": "low", "host": "web12"}));
    miss.code(1);
    let verdict = miss.json();
    assert_eq!(verdict["decision"], "criteria-false");
    assert_eq!(
        (&verdict["checks"][0]["held"], &verdict["checks"][1]["held"]),
        (&json!(false), &json!(true))
    );
    let text = home.run(&["rule", "test", s(&rule), "--payload", s(&payload)]);
    text.code(1);
    assert!(
        text.stdout.contains("failed trigger.body.severity inside"),
        "{}",
        text.stdout
    );

    let types = home.run(&["trigger", "list", "--json"]).ok().json();
    let names: Vec<&str> = types
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        [
            "wasmflow.webhook",
            "wasmflow.execution",
            "wasmflow.inquiry",
            "wasmflow.interval",
            "wasmflow.cron",
            "wasmflow.date"
        ]
    );
}
