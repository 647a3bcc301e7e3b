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
    assert_eq!(s.runs[2].slots().len(), 2);
    assert!(s.runs[2].slots().iter().all(Slot::is_running));
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

/// The tally a run keeps as entries apply says what walking its slots
/// says, whatever order they start, retry and end in; and the next idle
/// slot is the lowest one, a retry before a fresh one after it.
#[test]
fn a_runs_tally_agrees_with_its_slots_through_retries_and_out_of_order_starts() {
    let wf = workflow(
        r#"
version: 1
tasks:
  fan: { action: a.wasm, with-items: [0, 1, 2, 3, 4, 5] }
"#,
    );
    let dispatch = |slot, attempt| Entry::Dispatch {
        run: 0,
        slot,
        attempt,
        child: ExecutionId::new(),
        input: json!({}),
    };
    let settle = |slot, status, retry| Entry::Settle {
        run: 0,
        slot,
        child: None,
        status,
        result: None,
        error: None,
        retry,
    };
    let entries = [
        Entry::Begin {
            input: json!({}),
            ctx: Map::new(),
        },
        Entry::Items {
            run: 0,
            items: (0..6).map(|i| json!(i)).collect(),
        },
        dispatch(0, 1),
        dispatch(3, 1),
        settle(0, Status::Failed, true),
        dispatch(1, 1),
        settle(3, Status::Succeeded, false),
        // Settled before any attempt (its grants did not render).
        settle(4, Status::Failed, false),
        dispatch(0, 2),
        settle(1, Status::Failed, true),
    ];
    let mut state = State::default();
    let recount = |r: &TaskRun| {
        let s = r.slots();
        (
            s.iter().filter(|s| s.is_running()).count(),
            s.iter().any(Slot::has_failed),
            s.iter().all(Slot::is_done),
            s.iter().position(Slot::is_idle),
            s.iter().any(|s| s.child.is_some()),
        )
    };
    for e in &entries {
        state.apply(&wf, e);
        let Some(r) = state.runs.first().filter(|r| r.items.is_some()) else {
            continue;
        };
        let all_done = r.is_settled(true) && !r.has_failed_slot();
        let tally = (
            r.running(),
            r.has_failed_slot(),
            all_done,
            r.next_idle(0),
            r.was_dispatched(),
        );
        assert_eq!(tally, recount(r), "after {e:?}");
    }
    let r = &state.runs[0];
    // Slot 1 waits to retry; 2 and 5 never started; 4 failed for good.
    assert_eq!(r.next_idle(0), Some(1));
    assert_eq!(r.next_idle(2), Some(2));
    assert_eq!(r.next_idle(3), Some(5));
    assert_eq!(r.next_idle(6), None);
    assert!(
        r.has_failed_slot() && !r.is_settled(true),
        "slot 0 still runs"
    );
    assert_eq!(
        *r,
        TaskRun::with_slots("fan", r.items.clone(), r.slots().to_vec())
    );
}
