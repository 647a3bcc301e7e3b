//! Folding journals written by hand: what resuming rebuilds.

use super::*;
use serde_json::json;

fn workflow(yaml: &str) -> Workflow {
    serde_yaml::from_str(yaml).expect("a valid workflow")
}

/// `State::fold` is the whole of resuming: the journal's entries, and
/// nothing else, give the state.
#[test]
fn folding_a_journal_gives_runs_joins_and_the_end() {
    let wf = workflow(
        r#"
version: 1
tasks:
  a: { action: a.wasm, next: [{ do: [b, c] }] }
  b: { action: a.wasm, next: [{ do: d }] }
  c: { action: a.wasm, with-items: [1, 2], next: [{ do: d }] }
  d: { action: a.wasm, join: all }
"#,
    );
    let ids: Vec<ExecutionId> = (0..5).map(|_| ExecutionId::new()).collect();
    let child = |n: u64| ids[n as usize];
    let settle = |run, slot, n: u64, status| Entry::Settle {
        run,
        slot,
        child: Some(child(n)),
        status,
        result: Some(json!(n)),
        error: None,
        retry: false,
    };
    let complete = |run, next: &[&str]| Entry::Complete {
        run,
        status: Status::Succeeded,
        result: None,
        error: None,
        publish: Map::new(),
        next: next.iter().map(|s| s.to_string()).collect(),
        reused_from: None,
        run_on_fail: false,
        next_routes: Vec::new(),
        new_routes: Vec::new(),
    };
    let dispatch = |run, slot, n| Entry::Dispatch {
        run,
        slot,
        attempt: 1,
        child: child(n),
        input: json!({}),
    };
    let mut entries = vec![
        Entry::Begin {
            input: json!({ "x": 1 }),
            ctx: Map::new(),
        },
        dispatch(0, 0, 1),
        settle(0, 0, 1, Status::Succeeded),
        complete(0, &["b", "c"]),
        Entry::Items {
            run: 2,
            items: vec![json!(1), json!(2)],
        },
        dispatch(1, 0, 2),
        dispatch(2, 0, 3),
        dispatch(2, 1, 4),
    ];
    let s = State::fold(&wf, &entries);
    assert_eq!(s.len, entries.len() as u32);
    assert_eq!(s.input, json!({ "x": 1 }));
    let names: Vec<_> = s.runs.iter().map(|r| r.name.as_str()).collect();
    assert_eq!(names, ["a", "b", "c"]);
    assert_eq!(s.runs[2].slots.len(), 2);
    assert!(s.runs[2].slots.iter().all(Slot::is_running));
    assert_eq!(
        s.runs[0].completed.as_ref().map(|o| o.status),
        Some(Status::Succeeded)
    );

    // `d` joins both: one arrival does not start it, the second does.
    entries.extend([settle(1, 0, 2, Status::Succeeded), complete(1, &["d"])]);
    let s = State::fold(&wf, &entries);
    assert_eq!(s.runs.len(), 3, "d waits for c");
    assert_eq!(s.arrivals.get(&("d".to_owned(), 0)), Some(&1));
    entries.extend([
        settle(2, 0, 3, Status::Succeeded),
        settle(2, 1, 4, Status::Succeeded),
        complete(2, &["d"]),
        Entry::End {
            status: Status::Succeeded,
            result: Some(json!({})),
            error: None,
        },
    ]);
    let s = State::fold(&wf, &entries);
    assert_eq!(s.runs.last().map(|r| r.name.as_str()), Some("d"));
    assert_eq!(s.ended.as_ref().map(|e| e.status), Some(Status::Succeeded));
    // Folding is all there is to it: the same entries, the same state.
    assert_eq!(State::fold(&wf, &entries), s);
}

#[test]
fn a_fail_keeps_the_first_failure_and_cancel_is_remembered() {
    let wf = workflow("version: 1\ntasks:\n  a: { action: a.wasm }\n");
    let s = State::fold(
        &wf,
        &[
            Entry::Begin {
                input: json!({}),
                ctx: Map::new(),
            },
            Entry::Fail {
                failure: Failure::new("task-failed", "first"),
            },
            Entry::Fail {
                failure: Failure::new("task-failed", "second"),
            },
            Entry::Cancel,
        ],
    );
    assert_eq!(s.failing.map(|f| f.message), Some("first".into()));
    assert!(s.canceled);
    assert!(s.ended.is_none());
}
