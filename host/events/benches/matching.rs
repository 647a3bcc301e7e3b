//! One trigger instance against 1,000 rules of mixed operators (the
//! issue's target: under 1 ms): which rules listen, which criteria hold,
//! and the inputs of those that match (one in ten), rendered.
//!
//! `bench/rule_matching.sh` runs this beside the same work in Python (the
//! language StackStorm's rules engine is written in) over the same rules.

use criterion::{criterion_group, criterion_main, Criterion};
use serde_json::json;
use std::path::Path;
use wasmflow_events::{trigger, Decision, Rule};
use wasmflow_workflow::expr::Expressions;

/// Rule `i` of the mix: the same shapes `bench/rule_matching.py` builds.
pub fn rule_text(i: usize) -> String {
    let (op, pattern) = match i % 10 {
        0 => ("equals", format!("\"web{i}\"")),
        1 => ("regex", format!("\"^web{i}$\"")),
        2 => ("inside", "[critical, high]".to_owned()),
        3 => ("startswith", format!("\"db{i}\"")),
        4 => ("matchwildcard", format!("\"web{i}-*\"")),
        5 => ("greaterthan", format!("{}", 1000 + i)),
        6 => ("icontains", format!("\"DISK{i}\"")),
        7 => ("nequals", "\"web7\"".to_owned()),
        8 => ("exists", "null".to_owned()),
        _ => ("iequals", format!("\"WEB{i}\"")),
    };
    let path = match i % 10 {
        2 => "trigger.body.severity",
        5 => "trigger.body.used",
        6 => "trigger.body.message",
        8 => "trigger.body.host",
        _ => "trigger.body.host",
    };
    // One rule in ten also needs the disk to be nearly full: those match.
    format!(
        "name: r{i}\ntrigger: {{ type: wasmflow.webhook, parameters: {{ name: alerts }} }}\n\
         criteria:\n  {path}: {{ type: {op}, pattern: {pattern} }}\n\
         action: {{ ref: vm.restart, input: {{ name: \"{{{{ trigger.body.host }}}}\", rule: {i} }} }}\n"
    )
}

fn rules(n: usize) -> Vec<Rule> {
    let types = trigger::built_in();
    (0..n)
        .map(|i| {
            Rule::parse(Path::new("bench.yaml"), rule_text(i), &types, None).expect("a good rule")
        })
        .collect()
}

fn matching(c: &mut Criterion) {
    let rules = rules(1000);
    let exprs = Expressions::new();
    let params = json!({"name": "alerts"}).as_object().unwrap().clone();
    let payload = json!({"name": "alerts", "body": {"host": "web7", "severity": "low", "used": 5, "message": "disk 7 at 91%"}});
    c.bench_function("one instance against 1000 rules", |b| {
        b.iter(|| {
            rules
                .iter()
                .filter(|r| r.listens_to("wasmflow.webhook", &params))
                .map(|r| r.evaluate(&payload, &exprs))
                .filter(|v| matches!(v.decision, Decision::Run { .. }))
                .count()
        })
    });
}

criterion_group!(benches, matching);
criterion_main!(benches);
