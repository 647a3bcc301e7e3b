//! The decisions on hand-made states: no runtime, no store.

use super::*;
use crate::journal::Slot;
use crate::model::Workflow;
use serde_json::json;

fn workflow(yaml: &str) -> Workflow {
    serde_yaml::from_str(yaml).expect("a valid workflow")
}

fn task<'a>(wf: &'a Workflow, name: &str) -> &'a Task {
    &wf.tasks[name]
}

fn ok(result: Value) -> Outcome {
    Outcome::succeeded(Some(result))
}

fn err(code: &str, message: &str) -> Outcome {
    Outcome::failed(Failure::new(code, message))
}

fn ended(outcome: Outcome, retry: bool) -> Slot {
    Slot {
        attempt: 1,
        child: None,
        input: None,
        outcome: Some(outcome),
        retry,
    }
}

fn run(items: Option<Vec<Value>>, slots: Vec<Slot>) -> TaskRun {
    TaskRun::with_slots("t", items, slots)
}

#[test]
fn a_plain_run_takes_its_slots_outcome_and_a_missing_one_is_a_failure() {
    let r = run(None, vec![ended(ok(json!(7)), false)]);
    assert_eq!(run_outcome(&r), ok(json!(7)));
    let never = run(None, vec![Slot::default()]);
    assert_eq!(run_outcome(&never).status, Status::Failed);
}

#[test]
fn a_with_items_run_succeeds_only_when_every_item_did() {
    let items = Some(vec![json!(1), json!(2), json!(3)]);
    let all = run(
        items.clone(),
        vec![
            ended(ok(json!("a")), false),
            ended(ok(json!("b")), false),
            ended(ok(json!("c")), false),
        ],
    );
    assert_eq!(run_outcome(&all), ok(json!(["a", "b", "c"])));

    // Item 1 failed for good: the run fails with its error, named by
    // index, and keeps the other items' results in place.
    let one = run(
        items.clone(),
        vec![
            ended(ok(json!("a")), false),
            ended(err("timeout", "too slow"), false),
            ended(ok(json!("c")), false),
        ],
    );
    let o = run_outcome(&one);
    assert_eq!(o.status, Status::Failed);
    assert_eq!(o.result, Some(json!(["a", null, "c"])));
    let e = o.error.unwrap();
    assert_eq!(
        (e.code.as_str(), e.message.as_str()),
        ("timeout", "item 1: too slow")
    );

    // A failure that will be retried is not the run's failure.
    let retrying = run(
        items,
        vec![
            ended(ok(json!("a")), false),
            ended(err("timeout", "too slow"), true),
            ended(ok(json!("c")), false),
        ],
    );
    assert_eq!(run_outcome(&retrying).status, Status::Succeeded);
}

const BRANCHES: &str = r#"
version: 1
tasks:
  t:
    action: a.wasm
    next:
      - publish: { first: "{{ result }}" }
        do: [on-success]
      - when: "{{ failed() }}"
        publish: { why: "{{ error.code }}" }
        do: on-failure
      - when: "{{ ctx.first is defined and ctx.first == 2 }}"
        publish: { saw: "{{ ctx.first }}" }
        do: [sees-published]
  on-success: { action: a.wasm }
  on-failure: { action: a.wasm }
  sees-published: { action: a.wasm }
"#;

#[test]
fn transitions_without_when_lead_on_and_see_earlier_publishes() {
    let wf = workflow(BRANCHES);
    let exprs = Expressions::new();
    let state = State::default();
    let t = transitions(
        &exprs,
        "t",
        task(&wf, "t"),
        &ok(json!(2)),
        &state,
        Evaluation {
            seed: [0; 32],
            task_statuses: false,
        },
    )
    .unwrap();
    assert!(t.leads);
    assert_eq!(t.next, vec!["on-success", "sees-published"]);
    assert_eq!(
        t.publish,
        json!({ "first": 2, "saw": 2 })
            .as_object()
            .cloned()
            .unwrap()
    );
    // What was published is returned, not written into the state.
    assert!(state.ctx.is_empty());
}

#[test]
fn a_failure_takes_the_transitions_without_when_and_those_that_ask_for_it() {
    let wf = workflow(BRANCHES);
    let exprs = Expressions::new();
    let failed = |wf: &Workflow| {
        transitions(
            &exprs,
            "t",
            task(wf, "t"),
            &err("timeout", "too slow"),
            &State::default(),
            Evaluation {
                seed: [0; 32],
                task_statuses: false,
            },
        )
        .unwrap()
    };
    let t = failed(&wf);
    assert!(t.leads);
    // Orquesta's rule: without `when`, taken on any completion.
    assert_eq!(t.next, vec!["on-success", "on-failure"]);
    assert_eq!(t.publish["why"], json!("timeout"));
    assert_eq!(t.publish["first"], json!(null));

    // A transition that only publishes, or says `continue`, leads nowhere:
    // the failure stands. `noop` handles it.
    for (next, leads) in [
        ("[{ publish: { a: 1 } }]", false),
        ("[{ do: continue }]", false),
        ("[{ do: noop }]", true),
        ("[{ do: u }]", true),
    ] {
        let mut plain = workflow(&format!(
            "version: 1\ntasks:\n  t:\n    action: a.wasm\n    next: {next}\n  u: {{ action: a.wasm }}\n"
        ));
        assert!(plain.orquesta_forms().is_empty());
        assert_eq!(failed(&plain).leads, leads, "{next}");
    }
}

#[test]
fn a_transition_that_cannot_be_evaluated_names_where_it_is() {
    let wf = workflow(
        "version: 1\ntasks:\n  t:\n    action: a.wasm\n    next:\n      - when: \"{{ nosuch.name }}\"\n        do: t\n",
    );
    let f = transitions(
        &Expressions::new(),
        "t",
        task(&wf, "t"),
        &ok(json!(1)),
        &State::default(),
        Evaluation {
            seed: [0; 32],
            task_statuses: false,
        },
    )
    .unwrap_err();
    assert_eq!(f.code, code::EXPRESSION);
    assert!(
        f.message.starts_with("tasks.t.next[0].when: "),
        "{}",
        f.message
    );
}

#[test]
fn retries_follow_count_and_when_never_success_or_cancel() {
    let wf = workflow(
        r#"
version: 1
tasks:
  any: { action: a.wasm, retry: { count: 2 } }
  timeouts: { action: a.wasm, retry: { count: 5, when: "{{ error.code == 'timeout' }}" } }
  broken: { action: a.wasm, retry: { count: 5, when: "{{ nosuch.thing }}" } }
  none: { action: a.wasm }
"#,
    );
    let exprs = Expressions::new();
    let s = State::default();
    let fail = err("timeout", "slow");
    let yes = |name: &str, attempt, o: &Outcome| {
        should_retry(
            &exprs,
            name,
            task(&wf, name),
            attempt,
            o,
            &s,
            Evaluation {
                seed: [0; 32],
                task_statuses: false,
            },
        )
    };
    // `count` is the attempts after the first.
    assert!(yes("any", 1, &fail));
    assert!(yes("any", 2, &fail));
    assert!(!yes("any", 3, &fail));
    assert!(!yes("any", 1, &ok(json!(1))));
    let canceled = Outcome {
        status: Status::Canceled,
        ..fail.clone()
    };
    assert!(!yes("any", 1, &canceled));
    assert!(yes("timeouts", 1, &fail));
    assert!(!yes("timeouts", 1, &err("invalid-input", "no")));
    // A `when` that cannot be evaluated leaves the failure standing.
    assert!(!yes("broken", 1, &fail));
    assert!(!yes("none", 1, &fail));
}

#[test]
fn retry_delays_grow_by_the_backoff_from_the_second_retry() {
    let wf = workflow(
        "version: 1\ntasks:\n  t: { action: a.wasm, retry: { count: 4, delay: 100ms, backoff: 3 } }\n  u: { action: a.wasm }\n",
    );
    let t = task(&wf, "t");
    assert_eq!(retry_delay(t, 2), Duration::from_millis(100));
    assert_eq!(retry_delay(t, 3), Duration::from_millis(300));
    assert_eq!(retry_delay(t, 4), Duration::from_millis(900));
    assert_eq!(retry_delay(task(&wf, "u"), 2), Duration::ZERO);
}
