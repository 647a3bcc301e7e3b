use super::*;
use serde_json::json;

fn parse(text: &str, known: Option<Known<'_>>) -> Result<Rule, Problems> {
    Rule::parse(
        Path::new("r.yaml"),
        text.to_owned(),
        &trigger::built_in(),
        known,
    )
}

const GOOD: &str = r#"
name: restart-on-disk-alert
trigger: { type: wasmflow.webhook, parameters: { name: alerts } }
criteria:
  trigger.body.severity: { type: inside, pattern: [critical, high] }
  trigger.body.host:     { type: regex, pattern: "^web[0-9]+$" }
action:
  ref: vm.restart
  parameters: { name: "{{ trigger.body.host }}" }
  grants: { exec: [virsh] }
"#;

#[test]
fn a_rule_decides_and_renders_its_input() {
    let rule = parse(GOOD, None).unwrap();
    assert!(rule.enabled);
    let alerts = json!({"name": "alerts"}).as_object().unwrap().clone();
    let other = json!({"name": "deploys"}).as_object().unwrap().clone();
    assert!(rule.listens_to("wasmflow.webhook", &alerts));
    assert!(!rule.listens_to("wasmflow.webhook", &other));
    let exprs = Expressions::new();
    let hit = rule.evaluate(
        &json!({"name": "alerts", "body": {"severity": "high", "host": "web7"}}),
        &exprs,
    );
    assert!(hit.checks.iter().all(|c| c.held));
    match hit.decision {
        Decision::Run { input } => assert_eq!(input, json!({"name": "web7"})),
        other => panic!("{other:?}"),
    }
    let miss = rule.evaluate(
        &json!({"name": "alerts", "body": {"severity": "low", "host": "web7"}}),
        &exprs,
    );
    assert!(matches!(miss.decision, Decision::CriteriaFalse));
    assert_eq!(
        (miss.checks[0].held, &miss.checks[0].operator),
        (false, &"inside".to_owned())
    );
    let bad = rule.evaluate(
        &json!({"name": "alerts", "body": {"severity": "high", "host": "web7x"}}),
        &exprs,
    );
    assert!(matches!(bad.decision, Decision::CriteriaFalse));
}

#[test]
fn problems_are_named_with_their_position() {
    let text = r#"name: r
trigger: { type: wasmflow.webhook, parameters: { name: alerts, nme: x } }
criteria:
  trigger.bdy.severity: { type: equals, pattern: x }
  trigger.body.host: { type: regexx, pattern: x }
  trigger.body.when: { type: regex, pattern: "(" }
  body.x: { type: exists }
action:
  ref: nope
  input: { a: "{{ trigger.body. }}" }
"#;
    let known = |name: &str| (name == "vm.restart").then_some(None);
    let problems = parse(text, Some(&known)).unwrap_err().to_string();
    let lines: Vec<&str> = problems.lines().collect();
    let want = [
        "r.yaml:2:64: trigger.parameters.nme: `wasmflow.webhook` takes no parameter `nme` (it takes: name)",
        "r.yaml:4:3: criteria.trigger.bdy.severity: `wasmflow.webhook` payloads have no `trigger.bdy.severity`",
        "r.yaml:5:30: criteria.trigger.body.host.type: unknown operator `regexx`",
        "r.yaml:6:46: criteria.trigger.body.when.pattern: not a regular expression: unclosed group",
        "r.yaml:7:3: criteria.body.x: a criterion's path starts with `trigger.`",
        "r.yaml:10:15: action.input.a: expression does not parse",
        "r.yaml:9:8: action.ref: no action or workflow named `nope` in the catalog",
    ];
    assert_eq!(lines.len(), want.len(), "{problems}\n----");
    for (line, want) in lines.iter().zip(want) {
        assert!(line.starts_with(want), "{line}\n  wanted {want}");
    }
    let unknown = parse(&GOOD.replace("wasmflow.webhook", "wasmflow.webhok"), None)
        .unwrap_err()
        .to_string();
    assert!(unknown.starts_with("r.yaml:3:18: trigger.type: unknown trigger type `wasmflow.webhok` (one of: wasmflow.webhook,"), "{unknown}");
    let yaml = parse("name: [", None).unwrap_err().to_string();
    assert!(yaml.starts_with("r.yaml:1:"), "{yaml}");
}

#[test]
fn inputs_are_checked_against_the_actions_schema() {
    let schema = json!({"properties": {"name": {}, "force": {}}, "required": ["name", "force"]});
    let known = move |name: &str| (name == "vm.restart").then(|| Some(schema.clone()));
    let problems = parse(GOOD, Some(&known)).unwrap_err().to_string();
    assert!(
        problems.contains("action.input: `vm.restart` needs the input `force`"),
        "{problems}"
    );
    let typed = move |name: &str| {
        (name == "vm.restart").then(|| {
            Some(json!({"properties": {
                "name": {"type": "string"},
                "cpus": {"type": "integer", "minimum": 0, "maximum": 4294967295u64, "x-wit-type": "u32"},
            }}))
        })
    };
    let wrong = GOOD.replace(
        "parameters: { name: \"",
        "parameters: { cpus: four, name: \"",
    );
    let problems = parse(&wrong, Some(&typed)).unwrap_err().to_string();
    assert!(
        problems.contains("action.input.cpus: does not fit the input's WIT type u32"),
        "{problems}"
    );
    let right = GOOD.replace("parameters: { name: \"", "parameters: { cpus: 4, name: \"");
    if let Err(e) = parse(&right, Some(&typed)) {
        panic!("{e}");
    }
    let extra = GOOD.replace(
        "parameters: { name: \"",
        "parameters: { force: true, colour: red, name: \"",
    );
    let problems = parse(&extra, Some(&known)).unwrap_err().to_string();
    assert!(
        problems.contains(
            "action.input.colour: `vm.restart` has no input `colour` (its inputs: name, force)"
        ),
        "{problems}"
    );
}
