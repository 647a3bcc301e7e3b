//! A typical transition condition in YAQL against the same in Jinja, side
//! by side (issue: YAQL costs no more than Jinja): each evaluated as the
//! scheduler does when a task ends, from its text.

use criterion::{criterion_group, criterion_main, Criterion};
use serde_json::json;
use wasmflow_workflow::expr::{Expressions, Scope};

fn conditions(c: &mut Criterion) {
    let e = Expressions::new();
    let input = json!({"name": "web7", "retries": 3});
    let ctx = json!({"disks": [{"name": "a", "size": 10}, {"name": "b", "size": 20}]});
    let result = json!({"stdout": "ok\n", "code": 0});
    let scope = Scope {
        input: Some(&input),
        ctx: ctx.as_object(),
        result: Some(&result),
        status: Some("succeeded"),
        ..Scope::default()
    };
    let yaql = "<% succeeded() and result().code = 0 and len(ctx().disks) > 1 %>";
    let jinja = "{{ succeeded() and result.code == 0 and ctx.disks | length > 1 }}";
    assert!(e.condition(yaql, scope).unwrap() && e.condition(jinja, scope).unwrap());
    let mut g = c.benchmark_group("when");
    g.bench_function("yaql", |b| b.iter(|| e.condition(yaql, scope).unwrap()));
    g.bench_function("jinja", |b| b.iter(|| e.condition(jinja, scope).unwrap()));
    g.finish();
}

criterion_group!(benches, conditions);
criterion_main!(benches);
