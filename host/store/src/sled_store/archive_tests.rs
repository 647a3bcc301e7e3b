//! The archive's tests: finished history moves out of the live database,
//! every read still finds it, a move interrupted anywhere loses nothing,
//! and a purge reaches into the parts.

use super::*;
use crate::store::ListFilter;
use crate::{Backend, Event, Outcome, PurgeFilter};
use serde_json::json;
use std::collections::HashSet;
use std::time::{Duration, SystemTime};

/// The store in `dir` with a live bound of `max` records.
fn open(dir: &Path, max: usize) -> SledStore {
    let mut store = reopen(dir);
    store.archive = Some(Arc::new(archive::Archive::with_max(dir, max)));
    store
}

/// A record that ended a minute ago (settled, so it may move).
fn ended(mut record: ExecutionRecord) -> ExecutionRecord {
    record.end(Outcome::succeeded(Some(json!(record.action.clone()))));
    // `now()` is what a record can hold (whole microseconds).
    record.ended_at = record.ended_at.map(|t| t - Duration::from_secs(60));
    record
}

/// `record` as if made a minute ago: its id holds the time it was made,
/// and a move passes over executions made within the settling time.
fn aged(mut record: ExecutionRecord) -> ExecutionRecord {
    let id = record.id.0;
    record.id = ExecutionId(ulid::Ulid::from_parts(
        id.timestamp_ms() - 60_000,
        id.random(),
    ));
    record
}

/// What one execution holds besides its record.
#[derive(Debug, PartialEq)]
struct Held {
    record: ExecutionRecord,
    events: Vec<Event>,
    journal: Vec<Vec<u8>>,
}

struct History {
    all: Vec<Held>,
    /// The workflow with tasks, and its tasks.
    workflow: ExecutionId,
    tasks: Vec<ExecutionId>,
    /// A top-level execution that has not ended: it never moves.
    running: ExecutionId,
    /// The component only the archived history names.
    old_component: Digest,
}

/// 30 actions (every third with events large enough to be a file), a
/// workflow with three tasks and a journal, then one still running.
fn fill(store: &SledStore) -> History {
    let old_component = store.put_blob(b"an old component").unwrap();
    let mut all = Vec::new();
    for n in 0..30 {
        let record = ended(aged(ExecutionRecord::new_action(
            format!("a{n}"),
            old_component.to_string(),
            json!({ "n": n }),
        )));
        let events: Vec<Event> = match n % 3 {
            0 => (0..400)
                .map(|i| Event::MonotonicClock { nanoseconds: i })
                .collect(),
            _ => vec![Event::MonotonicClock { nanoseconds: n }],
        };
        store.put_ended(&record, &events, true).unwrap();
        all.push(Held {
            record,
            events,
            journal: Vec::new(),
        });
    }
    let root = aged(ExecutionRecord::new_workflow(
        "wf".into(),
        old_component.to_string(),
        json!({}),
    ));
    let mut tasks = Vec::new();
    for t in 0..3 {
        let mut task = aged(ExecutionRecord::new_action(
            format!("t{t}"),
            String::new(),
            json!({}),
        ));
        task.parent = Some(root.id);
        task.root = Some(root.id);
        let task = ended(task);
        store.put(&task).unwrap();
        tasks.push(task.id);
        all.push(Held {
            record: task,
            events: Vec::new(),
            journal: Vec::new(),
        });
    }
    let journal: Vec<Vec<u8>> = (0..5)
        .map(|i| format!("{{\"step\":{i},\"pad\":\"{}\"}}", "x".repeat(i * 2000)).into_bytes())
        .collect();
    store
        .append_workflow_log(root.id, 0, &journal, true)
        .unwrap();
    let root = ended(root);
    store.put(&root).unwrap();
    let workflow = root.id;
    all.push(Held {
        record: root,
        events: Vec::new(),
        journal,
    });
    let running = ExecutionRecord::new_action("late".into(), String::new(), json!({}));
    store.put(&running).unwrap();
    let id = running.id;
    all.push(Held {
        record: running,
        events: Vec::new(),
        journal: Vec::new(),
    });
    History {
        all,
        workflow,
        tasks,
        running: id,
        old_component,
    }
}

/// Every execution written into the live database again, as a move
/// interrupted before its live deletes leaves it.
fn write_again(store: &SledStore, history: &History) {
    for held in &history.all {
        store.put_ended(&held.record, &held.events, false).unwrap();
        if !held.journal.is_empty() {
            store
                .append_workflow_log(held.record.id, 0, &held.journal, false)
                .unwrap();
        }
    }
}

fn move_all(store: &SledStore) -> usize {
    let mut moved = 0;
    loop {
        match store.archive_finished().unwrap() {
            0 => return moved,
            n => moved += n,
        }
    }
}

/// Every read of the interface finds each execution as it was written.
/// `exact`: no execution is in two places (a move interrupted before its
/// live deletes counts those twice until the next move).
fn assert_reads(store: &SledStore, history: &History, when: &str, exact: bool) {
    for held in &history.all {
        let id = held.record.id;
        assert_eq!(
            store.get(id).unwrap().as_ref(),
            Some(&held.record),
            "{when}: get {id}"
        );
        assert_eq!(
            store.events(id).unwrap(),
            held.events,
            "{when}: events of {id}"
        );
        assert_eq!(
            store.workflow_log(id).unwrap(),
            held.journal,
            "{when}: journal of {id}"
        );
        assert_eq!(store.find_prefix(&id.to_string()).unwrap().id, id, "{when}");
    }
    let children: Vec<ExecutionId> = store
        .children(history.workflow)
        .unwrap()
        .iter()
        .map(|r| r.id)
        .collect();
    let mut tasks = history.tasks.clone();
    tasks.sort();
    assert_eq!(children, tasks, "{when}: children");
    if exact {
        assert_eq!(store.len().unwrap(), history.all.len(), "{when}: len");
    }

    // Listings, newest first, a page at a time, top-level or all.
    for all in [false, true] {
        let mut expected: Vec<ExecutionId> = history
            .all
            .iter()
            .filter(|h| all || h.record.parent.is_none())
            .map(|h| h.record.id)
            .collect();
        expected.sort_by_key(|id| std::cmp::Reverse(*id));
        let mut listed = Vec::new();
        let mut before = None;
        loop {
            let page = store
                .scan(&ListFilter {
                    limit: 7,
                    children: all,
                    before,
                    ..Default::default()
                })
                .unwrap();
            assert!(page.unreadable.is_empty(), "{when}");
            let Some(last) = page.records.last() else {
                break;
            };
            before = Some(last.id);
            listed.extend(page.records.iter().map(|r| r.id));
        }
        assert_eq!(listed, expected, "{when}: listing (tasks too: {all})");
        let succeeded = store
            .scan(&ListFilter {
                status: Some(Status::Succeeded),
                limit: 1000,
                children: all,
                ..Default::default()
            })
            .unwrap();
        assert_eq!(
            succeeded.records.len(),
            expected.len() - 1,
            "{when}: by status"
        );
    }
    let report = store.check().unwrap();
    assert!(report.is_clean(), "{when}: {:?}", report.damaged);
    if exact {
        assert_eq!(report.records, history.all.len(), "{when}: check");
    }
}

#[test]
fn finished_history_moves_out_and_every_read_still_finds_it() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path(), 8);
    let history = fill(&store);
    assert_reads(&store, &history, "before the move", true);
    let moved = move_all(&store);
    assert_eq!(moved, history.all.len() - store.live_records().unwrap());
    assert!(moved >= history.all.len() - 8, "moved {moved}");
    assert!(store.live_records().unwrap() <= 8);
    // The one still running stays live; the oldest went to a part.
    assert!(store.get_here(history.running).unwrap().is_some());
    assert!(store.get_here(history.all[0].record.id).unwrap().is_none());
    let parts = store.archive.as_ref().unwrap().parts().unwrap();
    assert!(parts.len() >= 3, "parts of at most 4 records: {parts:?}");
    // Large values moved as links: the part has the file the record names.
    assert_reads(&store, &history, "after the move", true);
    drop(store);
    let store = open(dir.path(), 8);
    assert_reads(&store, &history, "reopened", true);
    // The live database's record count is kept across opens.
    assert_eq!(store.live_records().unwrap(), store.executions.len());
}

#[test]
fn a_move_interrupted_anywhere_loses_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path(), 8);
    let history = fill(&store);
    move_all(&store);
    // A crash after the parts and the catalog were written, before the
    // live deletes: every execution in both places.
    write_again(&store, &history);
    store.flush().unwrap();
    assert_reads(&store, &history, "in both places", false);
    move_all(&store);
    assert_reads(&store, &history, "moved again", true);
    // A crash after a part was written, before the catalog named it: the
    // next move takes the same part again.
    let catalog = dir.path().join("archive/catalog.json");
    std::fs::remove_file(&catalog).unwrap();
    drop(store);
    let store = open(dir.path(), 8);
    write_again(&store, &history);
    move_all(&store);
    assert_reads(
        &store,
        &history,
        "moved into parts the catalog had lost",
        true,
    );
}

#[test]
fn a_purge_reaches_into_the_archive_and_keeps_what_live_records_name() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path(), 8);
    let history = fill(&store);
    let live_component = store.put_blob(b"a component still in use").unwrap();
    move_all(&store);
    let before = SystemTime::now() + Duration::from_millis(10);
    std::thread::sleep(Duration::from_millis(20));
    let recent = ended(ExecutionRecord::new_action(
        "recent".into(),
        live_component.to_string(),
        json!({}),
    ));
    store.put(&recent).unwrap();
    let filter = |dry_run| PurgeFilter {
        before,
        statuses: Vec::new(),
        action: None,
        dry_run,
        writers_running: false,
    };
    let dry = store.purge(&filter(true), &HashSet::new()).unwrap();
    // Every finished top-level execution (31: 30 actions and the
    // workflow, its 3 tasks with it); not the one still running.
    assert_eq!((dry.executions, dry.descendants), (31, 3));
    let real = store.purge(&filter(false), &HashSet::new()).unwrap();
    assert_eq!(
        (real.executions, real.descendants, real.blobs),
        (dry.executions, dry.descendants, dry.blobs)
    );
    assert_eq!(real.blobs, 1, "the old component goes with the history");
    assert!(!store.has_blob(&history.old_component).unwrap());
    assert!(store.has_blob(&live_component).unwrap());
    for held in &history.all {
        let kept = held.record.id == history.running;
        assert_eq!(store.get(held.record.id).unwrap().is_some(), kept);
    }
    assert_eq!(store.len().unwrap(), 2);
    let report = store.check().unwrap();
    assert!(report.is_clean(), "{:?}", report.damaged);
    assert_eq!(report.unreferenced_files, 0);
}
