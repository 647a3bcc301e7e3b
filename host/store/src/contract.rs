//! What every backend must do, written once as checks over a [`Store`]:
//! each backend's tests run them all ([`all`]) against a fresh, empty
//! store of their kind. `open` opens that same store again (after the
//! previous handle was dropped), so the checks can ask what survives.
//! A check panics with what differed.

use crate::{
    Digest, Event, ExecutionRecord, Kind, ListFilter, PurgeFilter, PurgeReport, Status, Store,
    StoreError, TokenBook,
};
use serde_json::json;
use std::collections::HashSet;
use std::time::{Duration, SystemTime};

/// Every check, each on a store of its own (`fresh` makes one and returns
/// its opener).
pub fn all(fresh: &dyn Fn() -> Box<dyn Fn() -> Store>) {
    list_is_newest_first_and_filters_by_status(&*fresh());
    the_queue_keeps_accept_order_and_survives_reopening(&*fresh());
    accepts_and_ends_are_written_in_batches(&*fresh());
    status_change_moves_the_index_entry(&*fresh());
    find_by_unique_prefix(&*fresh());
    records_survive_reopen(&*fresh());
    events_are_kept_in_order_and_replaced_by_a_later_attempt(&*fresh());
    children_are_indexed_and_hidden_from_the_default_list(&*fresh());
    workflow_log_appends_in_order(&*fresh());
    blobs_are_content_addressed(&*fresh());
    large_values_read_back(&*fresh());
    purge_takes_whole_ended_trees_and_only_their_blobs(&*fresh());
    check_is_clean_after_ordinary_writes(&*fresh());
    trigger_instances_and_enforcements_are_kept(&*fresh());
}

/// The event bus's records: instances newest first, the unprocessed ones
/// oldest first until processed, one enforcement per instance and rule.
pub fn trigger_instances_and_enforcements_are_kept(open: &dyn Fn() -> Store) {
    use crate::{Enforcement, EnforcementOutcome, ExecutionId, TriggerInstance};
    let store = open();
    let instance = |n: u64| TriggerInstance {
        id: ExecutionId::new(),
        kind: "wasmflow.webhook".into(),
        parameters: json!({"name": "alerts"}).as_object().unwrap().clone(),
        payload: json!({"n": n}),
        received_at: crate::now(),
        processed: false,
    };
    let (a, b, c) = (instance(1), instance(2), instance(3));
    for t in [&a, &b, &c] {
        store.put_trigger(t).unwrap();
    }
    let ids = |all: Vec<TriggerInstance>| all.into_iter().map(|t| t.id).collect::<Vec<_>>();
    assert_eq!(ids(store.triggers(false, 2).unwrap()), [c.id, b.id]);
    let open_ones = ids(store.triggers(true, 10).unwrap());
    assert_eq!(open_ones, [a.id, b.id, c.id]);
    store
        .put_trigger(&TriggerInstance {
            processed: true,
            ..b.clone()
        })
        .unwrap();
    let open_ones = ids(store.triggers(true, 10).unwrap());
    assert_eq!(open_ones, [a.id, c.id]);
    assert!(store.trigger(b.id).unwrap().unwrap().processed);
    // A firing every server may reach is kept once.
    let firing = instance(4);
    assert!(store.put_trigger_new(&firing).unwrap());
    assert!(!store
        .put_trigger_new(&TriggerInstance {
            payload: json!("other"),
            ..firing.clone()
        })
        .unwrap());
    assert_eq!(
        store.trigger(firing.id).unwrap().unwrap().payload,
        json!({"n": 4})
    );
    store
        .put_trigger(&TriggerInstance {
            processed: true,
            ..firing.clone()
        })
        .unwrap();
    assert_eq!(store.trigger(ExecutionId::new()).unwrap(), None);

    let enforcement = |rule: &str, outcome| Enforcement {
        instance: a.id,
        rule: rule.into(),
        outcome,
        execution: None,
        message: None,
        at: crate::now(),
    };
    store
        .put_enforcements(&[enforcement("r2", EnforcementOutcome::CriteriaFalse)])
        .unwrap();
    let mut started = enforcement("r1", EnforcementOutcome::Started);
    started.execution = Some(ExecutionId::new());
    store
        .put_enforcements(std::slice::from_ref(&started))
        .unwrap();
    // Written again (a restart finishing the work): still one per rule.
    store
        .put_enforcements(std::slice::from_ref(&started))
        .unwrap();
    let of_a = store.enforcements(Some(a.id), 100).unwrap();
    assert_eq!(
        of_a.iter().map(|e| e.rule.as_str()).collect::<Vec<_>>(),
        ["r1", "r2"]
    );
    assert_eq!(of_a[0], started);
    assert!(store.enforcements(Some(b.id), 100).unwrap().is_empty());
    assert_eq!(store.enforcements(None, 1).unwrap().len(), 1);
    drop(store);
    // Durable: there after reopening.
    let store = open();
    assert_eq!(store.enforcements(Some(a.id), 100).unwrap().len(), 2);
    assert_eq!(store.triggers(true, 10).unwrap().len(), 2);

    // Purged: the processed ones, with their enforcements; work still to
    // do stays.
    let mut done_a = store.trigger(a.id).unwrap().unwrap();
    done_a.processed = true;
    store.put_trigger(&done_a).unwrap();
    let later = crate::now() + std::time::Duration::from_secs(1);
    assert_eq!(store.purge_triggers(later, true).unwrap(), (3, 2));
    assert_eq!(store.triggers(false, 10).unwrap().len(), 4);
    assert_eq!(store.purge_triggers(later, false).unwrap(), (3, 2));
    assert_eq!(ids(store.triggers(false, 10).unwrap()), [c.id]);
    assert!(store.enforcements(Some(a.id), 100).unwrap().is_empty());
    assert_eq!(store.purge_triggers(later, false).unwrap(), (0, 0));
}

/// The entries `worker` holds, oldest first, each with its slot.
fn held_by(queue: &dyn crate::SharedQueue, worker: &str) -> Vec<(crate::ExecutionId, Option<u32>)> {
    queue
        .entries()
        .unwrap()
        .into_iter()
        .filter_map(|e| {
            let lease = e.lease?;
            (lease.worker == worker).then_some((e.id, lease.slot))
        })
        .collect()
}

fn record(n: u64) -> ExecutionRecord {
    ExecutionRecord::new_action(format!("a{n}"), "sha256:00".into(), json!({ "n": n }))
}

pub fn list_is_newest_first_and_filters_by_status(open: &dyn Fn() -> Store) {
    let store = open();
    let mut ids = Vec::new();
    for n in 0..5 {
        let mut r = record(n);
        r.status = if n % 2 == 0 {
            Status::Succeeded
        } else {
            Status::Failed
        };
        store.put(&r).unwrap();
        ids.push(r.id);
        std::thread::sleep(std::time::Duration::from_millis(2));
    }
    let all = store
        .list(&ListFilter {
            status: None,
            limit: 10,
            children: false,
            ..Default::default()
        })
        .unwrap();
    let got: Vec<_> = all.iter().map(|r| r.id).collect();
    let mut want = ids.clone();
    want.reverse();
    assert_eq!(got, want);

    let failed = store
        .list(&ListFilter {
            status: Some(Status::Failed),
            limit: 10,
            children: false,
            ..Default::default()
        })
        .unwrap();
    assert_eq!(
        failed.iter().map(|r| r.id).collect::<Vec<_>>(),
        vec![ids[3], ids[1]]
    );

    let two = store
        .list(&ListFilter {
            status: None,
            limit: 2,
            children: false,
            ..Default::default()
        })
        .unwrap();
    assert_eq!(two.len(), 2);

    // Paging: older than the last of a page, with and without a status.
    let older = store
        .list(&ListFilter {
            before: Some(two[1].id),
            limit: 10,
            ..Default::default()
        })
        .unwrap();
    assert_eq!(older.iter().map(|r| r.id).collect::<Vec<_>>(), want[2..]);
    let older_failed = store
        .list(&ListFilter {
            status: Some(Status::Failed),
            before: Some(ids[3]),
            ..Default::default()
        })
        .unwrap();
    assert_eq!(
        older_failed.iter().map(|r| r.id).collect::<Vec<_>>(),
        vec![ids[1]]
    );
    let none = store
        .list(&ListFilter {
            action: Some("no-such-action".into()),
            ..Default::default()
        })
        .unwrap();
    assert!(none.is_empty());
}

pub fn the_queue_keeps_accept_order_and_survives_reopening(open: &dyn Fn() -> Store) {
    let ids: Vec<_> = {
        let store = open();
        let ids: Vec<_> = (0..3)
            .map(|i| {
                let mut r = ExecutionRecord::new_action(
                    format!("a{i}"),
                    "sha256:00".into(),
                    serde_json::json!({}),
                );
                r.status = Status::Pending;
                store.enqueue(&r, format!("p{i}").as_bytes()).unwrap();
                r.id
            })
            .collect();
        store.flush().unwrap();
        ids
    };
    let store = open();
    let queued = store.queued().unwrap();
    assert_eq!(queued.iter().map(|q| q.id).collect::<Vec<_>>(), ids);
    assert_eq!(queued[1].payload, b"p1");
    assert_eq!(store.get(ids[0]).unwrap().unwrap().status, Status::Pending);
    store.dequeue(queued[0].seq).unwrap();
    assert_eq!(store.queue_len().unwrap(), 2);
    assert_eq!(store.queued().unwrap()[0].id, ids[1]);
}

pub fn accepts_and_ends_are_written_in_batches(open: &dyn Fn() -> Store) {
    let ev = |n| Event::MonotonicClock { nanoseconds: n };
    let (ended, kept) = {
        let store = open();
        let pending: Vec<_> = (0..3)
            .map(|i| {
                let mut r = record(10 + i);
                r.status = Status::Pending;
                r
            })
            .collect();
        let entries: Vec<_> = pending.iter().map(|r| (r, &b"{}"[..])).collect();
        let seqs = store.accept(&entries).unwrap();
        assert_eq!(seqs.len(), 3);
        assert!(seqs[0] < seqs[1] && seqs[1] < seqs[2], "{seqs:?}");
        // An earlier attempt's events, more of them than the last one's.
        store
            .put_events(pending[0].id, &[ev(1), ev(2), ev(3)])
            .unwrap();
        let mut ended: Vec<_> = pending[..2].to_vec();
        for r in &mut ended {
            r.status = Status::Succeeded;
        }
        let first_events = [ev(4)];
        let batch: Vec<(&ExecutionRecord, &[Event])> =
            vec![(&ended[0], &first_events), (&ended[1], &[])];
        store.flush_ended(&batch, &seqs[..2]).unwrap();
        (ended, pending[2].clone())
    };
    let store = open();
    assert_eq!(store.get(ended[0].id).unwrap().as_ref(), Some(&ended[0]));
    assert_eq!(store.get(ended[1].id).unwrap().as_ref(), Some(&ended[1]));
    assert_eq!(store.events(ended[0].id).unwrap(), vec![ev(4)]);
    assert_eq!(store.get(kept.id).unwrap(), Some(kept.clone()));
    let queued = store.queued().unwrap();
    assert_eq!(queued.iter().map(|q| q.id).collect::<Vec<_>>(), [kept.id]);
}

pub fn status_change_moves_the_index_entry(open: &dyn Fn() -> Store) {
    let store = open();
    let mut r = record(1);
    r.status = Status::Running;
    store.put(&r).unwrap();
    r.status = Status::Succeeded;
    store.put(&r).unwrap();
    let running = store
        .list(&ListFilter {
            status: Some(Status::Running),
            limit: 10,
            children: false,
            ..Default::default()
        })
        .unwrap();
    assert!(running.is_empty());
    let done = store
        .list(&ListFilter {
            status: Some(Status::Succeeded),
            limit: 10,
            children: false,
            ..Default::default()
        })
        .unwrap();
    assert_eq!(done, vec![r]);
}

pub fn find_by_unique_prefix(open: &dyn Fn() -> Store) {
    let store = open();
    let r = record(1);
    store.put(&r).unwrap();
    let id = r.id.to_string();
    assert_eq!(store.find(&id).unwrap().id, r.id);
    assert_eq!(store.find(&id[..20].to_lowercase()).unwrap().id, r.id);
    assert!(matches!(store.find("ZZZZ"), Err(StoreError::NotFound(_))));
    let r2 = record(2);
    store.put(&r2).unwrap();
    // Both share the timestamp's leading characters.
    assert!(matches!(
        store.find(&id[..2]),
        Err(StoreError::Ambiguous { count: 2, .. })
    ));
}

pub fn records_survive_reopen(open: &dyn Fn() -> Store) {
    let r = record(7);
    {
        let store = open();
        store.put(&r).unwrap();
    }
    let store = open();
    assert_eq!(store.get(r.id).unwrap(), Some(r));
}

pub fn events_are_kept_in_order_and_replaced_by_a_later_attempt(open: &dyn Fn() -> Store) {
    let store = open();
    let a = record(1);
    let b = record(2);
    let ev = |n| Event::MonotonicClock { nanoseconds: n };
    store.put_events(a.id, &[ev(1), ev(2)]).unwrap();
    store.put_events(b.id, &[ev(9)]).unwrap();
    assert_eq!(store.events(a.id).unwrap(), vec![ev(1), ev(2)]);
    assert_eq!(store.events(b.id).unwrap(), vec![ev(9)]);
    store.put_events(a.id, &[ev(3)]).unwrap();
    assert_eq!(store.events(a.id).unwrap(), vec![ev(3)]);
    store.put_events(a.id, &[]).unwrap();
    assert_eq!(store.events(a.id).unwrap(), vec![]);
    assert_eq!(store.events(b.id).unwrap(), vec![ev(9)]);

    // An ended execution's events and record written together, over a
    // longer earlier attempt's events.
    store.put_events(a.id, &[ev(4), ev(5), ev(6)]).unwrap();
    let mut ended = a.clone();
    ended.status = Status::Succeeded;
    store.put_ended(&ended, &[ev(7), ev(8)], false).unwrap();
    store.flush().unwrap();
    assert_eq!(store.events(a.id).unwrap(), vec![ev(7), ev(8)]);
    assert_eq!(store.get(a.id).unwrap(), Some(ended.clone()));
    store.put_ended(&ended, &[], true).unwrap();
    assert_eq!(store.events(a.id).unwrap(), vec![]);
    assert_eq!(store.events(b.id).unwrap(), vec![ev(9)]);
}

pub fn children_are_indexed_and_hidden_from_the_default_list(open: &dyn Fn() -> Store) {
    let store = open();
    let parent = record(1);
    store.put(&parent).unwrap();
    let mut kids = Vec::new();
    for n in 2..4 {
        let mut c = record(n);
        c.parent = Some(parent.id);
        store.put(&c).unwrap();
        kids.push(c.id);
    }
    let got: Vec<_> = store
        .children(parent.id)
        .unwrap()
        .iter()
        .map(|r| r.id)
        .collect();
    assert_eq!(got, kids);
    let roots = store.list(&ListFilter::default()).unwrap();
    assert_eq!(
        roots.iter().map(|r| r.id).collect::<Vec<_>>(),
        vec![parent.id]
    );
    let all = store
        .list(&ListFilter {
            children: true,
            ..ListFilter::default()
        })
        .unwrap();
    assert_eq!(all.len(), 3);

    // Top-level listings by status, and a page of them, never show a
    // task, however many tasks come after the top-level records; a
    // status change moves a top-level record between statuses.
    for n in 10..60 {
        let mut c = record(n);
        c.parent = Some(parent.id);
        store.put(&c).unwrap();
    }
    let mut running = record(100);
    store.put(&running).unwrap();
    let top = |status: Option<Status>, limit: usize| -> Vec<crate::ExecutionId> {
        let filter = ListFilter {
            status,
            limit,
            ..ListFilter::default()
        };
        store.list(&filter).unwrap().iter().map(|r| r.id).collect()
    };
    assert_eq!(top(None, 2), [running.id, parent.id]);
    assert_eq!(top(Some(running.status), 5), [running.id, parent.id]);
    running.status = Status::Succeeded;
    store.put(&running).unwrap();
    assert_eq!(top(Some(Status::Succeeded), 5), [running.id]);
    assert_eq!(top(Some(Status::Pending), 5), [parent.id]);
}

pub fn workflow_log_appends_in_order(open: &dyn Fn() -> Store) {
    let store = open();
    let a = record(1).id;
    store
        .append_workflow_log(a, 0, &[b"x".to_vec(), b"y".to_vec()], false)
        .unwrap();
    store
        .append_workflow_log(a, 2, &[b"z".to_vec()], true)
        .unwrap();
    assert_eq!(
        store.workflow_log(a).unwrap(),
        vec![b"x".to_vec(), b"y".to_vec(), b"z".to_vec()]
    );
    assert!(store.workflow_log(record(2).id).unwrap().is_empty());
}

pub fn blobs_are_content_addressed(open: &dyn Fn() -> Store) {
    let store = open();
    let a = store.put_blob(b"hello").unwrap();
    let b = store.put_blob(b"hello").unwrap();
    assert_eq!(a, b);
    assert!(store.has_blob(&a).unwrap());
    assert!(!store.has_blob(&Digest::of(b"other")).unwrap());
    assert_eq!(
        a.to_string(),
        "sha256:2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824"
    );
    assert_eq!(store.get_blob(&a).unwrap().as_deref(), Some(&b"hello"[..]));
    assert_eq!(Digest::parse(&a.to_string()), Some(a.clone()));
    assert_eq!(
        store.get_blob_str(&a.to_string()).unwrap().as_deref(),
        Some(&b"hello"[..])
    );
    assert_eq!(Digest::parse("sha256:zz"), None);
    let w = store.put_blob(b"world").unwrap();
    let mut want = vec![a, w];
    want.sort_by_key(|d| d.0);
    assert_eq!(
        store.blobs().unwrap(),
        want,
        "every blob once, in digest order"
    );
}

/// Values far over any page or row size come back byte for byte.
pub fn large_values_read_back(open: &dyn Fn() -> Store) {
    let store = open();
    let big = vec![7u8; 300_000];
    let digest = store.put_blob(&big).unwrap();
    let mut r = record(1);
    r.stdout = "x".repeat(100_000);
    r.component_digest = digest.to_string();
    store.put(&r).unwrap();
    let entry = format!("{{\"big\":\"{}\"}}", "y".repeat(9000)).into_bytes();
    store
        .append_workflow_log(r.id, 0, std::slice::from_ref(&entry), true)
        .unwrap();
    drop(store);
    let store = open();
    assert_eq!(store.get(r.id).unwrap(), Some(r.clone()));
    assert_eq!(store.get_blob(&digest).unwrap(), Some(big));
    assert_eq!(store.workflow_log(r.id).unwrap(), vec![entry]);
}

/// A purge takes an ended top-level execution with its children, events
/// and journal, and the blobs only they used; a blob another record (or
/// `in_use`) names stays, and so does everything newer or still running.
pub fn purge_takes_whole_ended_trees_and_only_their_blobs(open: &dyn Fn() -> Store) {
    let store = open();
    let shared = store.put_blob(b"shared component").unwrap();
    let own = store.put_blob(b"only the old tree's").unwrap();
    let held = store.put_blob(b"held by a running process").unwrap();
    let ended = |n, digest: &Digest| {
        let mut r = record(n);
        r.status = Status::Succeeded;
        r.component_digest = digest.to_string();
        r
    };
    let old = ended(1, &own);
    let mut child = ended(2, &shared);
    child.parent = Some(old.id);
    let running = {
        let mut r = record(3);
        r.status = Status::Running;
        r
    };
    let unused_but_held = ended(4, &held);
    for r in [&old, &child, &running, &unused_but_held] {
        store.put(r).unwrap();
    }
    store
        .put_events(old.id, &[Event::MonotonicClock { nanoseconds: 1 }])
        .unwrap();
    store
        .append_workflow_log(old.id, 0, &[b"{}".to_vec()], true)
        .unwrap();
    std::thread::sleep(Duration::from_millis(5));
    let newer = ended(5, &shared);
    store.put(&newer).unwrap();

    let filter = |dry_run| PurgeFilter {
        before: SystemTime::now() - Duration::from_millis(2),
        statuses: vec![],
        action: Some(old.action.clone()),
        dry_run,
        writers_running: false,
    };
    let in_use: HashSet<String> = [held.to_string()].into();
    let dry = store.purge(&filter(true), &in_use).unwrap();
    assert_eq!((dry.executions, dry.descendants), (1, 1), "{dry:?}");
    assert!(
        store.get(old.id).unwrap().is_some(),
        "a dry run deletes nothing"
    );

    let report: PurgeReport = store.purge(&filter(false), &in_use).unwrap();
    assert_eq!(
        (report.executions, report.descendants),
        (1, 1),
        "{report:?}"
    );
    assert_eq!(report.blobs, 1, "{report:?}");
    assert_eq!(store.get(old.id).unwrap(), None);
    assert_eq!(store.get(child.id).unwrap(), None);
    assert!(store.children(old.id).unwrap().is_empty());
    assert!(store.events(old.id).unwrap().is_empty());
    assert!(store.workflow_log(old.id).unwrap().is_empty());
    assert!(!store.has_blob(&own).unwrap());
    assert!(store.has_blob(&shared).unwrap(), "the newer record uses it");
    assert!(store.has_blob(&held).unwrap(), "in use");
    assert_eq!(store.get(running.id).unwrap(), Some(running));
    assert_eq!(store.get(newer.id).unwrap(), Some(newer));
    assert_eq!(store.len().unwrap(), 3);
}

/// What ordinary writes leave behind reads back clean, counted.
pub fn check_is_clean_after_ordinary_writes(open: &dyn Fn() -> Store) {
    let store = open();
    assert!(store.is_empty().unwrap());
    let digest = store.put_blob(b"component").unwrap();
    let mut parent = record(1);
    parent.component_digest = digest.to_string();
    store.put(&parent).unwrap();
    let mut child = record(2);
    child.parent = Some(parent.id);
    child.component_digest = digest.to_string();
    store.put(&child).unwrap();
    child.status = Status::Succeeded;
    store.put(&child).unwrap();
    store
        .put_events(child.id, &[Event::MonotonicClock { nanoseconds: 1 }])
        .unwrap();
    store
        .append_workflow_log(parent.id, 0, &[b"{}".to_vec(), b"{}".to_vec()], true)
        .unwrap();
    let report = store.check().unwrap();
    assert!(report.is_clean(), "{report:?}");
    assert_eq!(report.records, 2, "{report:?}");
    assert_eq!(report.blobs, 1, "{report:?}");
    assert_eq!(report.journal_entries, 2, "{report:?}");
    assert_eq!(store.len().unwrap(), 2);
    assert!(store.missing_blobs(&parent).unwrap().is_empty());
}

/// What every [`crate::TokenBook`] does, on an empty one: names are
/// unique, removal is by name, the version changes with every change, and
/// entries read back equal.
pub fn token_book(book: &dyn crate::TokenBook) {
    use crate::TokenEntry;
    let entry = |name: &str, read_only| TokenEntry {
        name: name.into(),
        sha256: format!("{:064x}", name.len()),
        read_only,
        // Whole seconds: what RFC 3339 text keeps.
        created_at: SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000),
    };
    assert!(book.list().unwrap().is_empty());
    let v0 = book.version();
    assert!(book.add(entry("ci", false)).unwrap());
    let v1 = book.version();
    assert_ne!(v0, v1, "adding a token changes the version");
    assert!(book.add(entry("viewer", true)).unwrap());
    assert!(
        !book.add(entry("ci", true)).unwrap(),
        "a taken name is refused"
    );
    assert_eq!(
        book.list().unwrap(),
        vec![entry("ci", false), entry("viewer", true)]
    );
    let v2 = book.version();
    assert!(book.remove("ci").unwrap());
    assert!(!book.remove("ci").unwrap(), "a removed token is gone");
    assert_ne!(book.version(), v2, "removing a token changes the version");
    assert_eq!(book.list().unwrap(), vec![entry("viewer", true)]);
}

/// `store copy` between any two backends: `a` (empty) is filled with one
/// of everything a store holds, copied into `b` (empty) and `b` into `c`
/// (empty); each copy holds what `a` does, read the same way. A second
/// copy into the same target doubles nothing, and a target holding an
/// execution of its own is refused before anything is written.
pub fn copy_moves_everything(
    a: (&Store, &dyn TokenBook),
    b: (&Store, &dyn TokenBook),
    c: (&Store, &dyn TokenBook),
) {
    let store = a.0;
    let small = store.put_blob(b"component").unwrap();
    let big = store.put_blob(&vec![3u8; 300_000]).unwrap();
    let _loose = store.put_blob(b"nothing refers to this").unwrap();
    let mut parent = record(1);
    parent.component_digest = small.to_string();
    parent.status = Status::Succeeded;
    parent.stdout = "y".repeat(50_000);
    store.put(&parent).unwrap();
    let mut child = record(2);
    child.parent = Some(parent.id);
    child.component_digest = big.to_string();
    store.put(&child).unwrap();
    store
        .put_events(child.id, &[Event::MonotonicClock { nanoseconds: 7 }])
        .unwrap();
    store
        .append_workflow_log(parent.id, 0, &[b"{\"a\":1}".to_vec(), b"{}".to_vec()], true)
        .unwrap();
    let mut waiting = record(3);
    waiting.component_digest = small.to_string();
    store.enqueue(&waiting, b"{\"from\":\"t\"}").unwrap();
    store.flush().unwrap();
    a.1.add(crate::TokenEntry {
        name: "ci".into(),
        sha256: "ab".repeat(32),
        read_only: true,
        created_at: SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000),
    })
    .unwrap();

    let report = crate::copy_between(a, b).unwrap();
    assert_eq!(
        (report.records, report.events, report.journal_entries),
        (3, 1, 2),
        "{report:?}"
    );
    assert_eq!((report.blobs, report.queued, report.tokens), (3, 1, 1));
    crate::copy_between(b, c).unwrap();
    for (to, tokens) in [b, c] {
        same_contents(store, to);
        assert_eq!(tokens.list().unwrap(), a.1.list().unwrap());
    }

    // Again into the same target: nothing doubled.
    let again = crate::copy_between(a, b).unwrap();
    assert_eq!(again, report);
    same_contents(store, b.0);
    assert_eq!(b.1.list().unwrap().len(), 1);

    // A target with an execution of its own is refused, and left alone.
    let own = record(9);
    c.0.put(&own).unwrap();
    let err = crate::copy_between(a, c).unwrap_err();
    assert!(
        matches!(err, crate::CopyError::TargetHasOthers { count: 1, first, .. } if first == own.id),
        "{err}"
    );
    assert_eq!(c.0.len().unwrap(), 4);
}

/// Everything `a` holds, `b` holds the same.
fn same_contents(a: &Store, b: &Store) {
    let all = ListFilter {
        limit: 100,
        children: true,
        ..Default::default()
    };
    let records = a.list(&all).unwrap();
    assert_eq!(b.list(&all).unwrap(), records);
    for r in &records {
        assert_eq!(
            serde_json::to_string(&b.get(r.id).unwrap()).unwrap(),
            serde_json::to_string(&Some(r)).unwrap()
        );
        assert_eq!(b.events(r.id).unwrap(), a.events(r.id).unwrap());
        assert_eq!(b.workflow_log(r.id).unwrap(), a.workflow_log(r.id).unwrap());
        assert_eq!(b.children(r.id).unwrap(), a.children(r.id).unwrap());
    }
    assert_eq!(b.blobs().unwrap(), a.blobs().unwrap());
    for d in a.blobs().unwrap() {
        assert_eq!(b.get_blob(&d).unwrap(), a.get_blob(&d).unwrap());
    }
    let queue = |s: &Store| -> Vec<_> {
        s.queued()
            .unwrap()
            .into_iter()
            .map(|q| (q.id, q.payload))
            .collect()
    };
    assert_eq!(queue(b), queue(a));
    let (ca, cb) = (a.check().unwrap(), b.check().unwrap());
    assert!(cb.is_clean(), "{cb:?}");
    assert_eq!(
        (ca.records, ca.journal_entries, ca.blobs, ca.blob_bytes),
        (cb.records, cb.journal_entries, cb.blobs, cb.blob_bytes)
    );
}

/// An asynchronous call of the interface, waited for.
fn waited<T>(call: impl std::future::Future<Output = T>) -> T {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a runtime")
        .block_on(call)
}

/// What a store with leases does ([`crate::SharedQueue`]): claims oldest
/// first, one winner per entry however many race, an expired lease taken
/// over and counted, renewals telling a holder what it lost, a worker
/// that leaves releasing its entries at once.
pub fn shared_queue(open: &dyn Fn() -> Store) {
    let store = open();
    let queue = store.shared_queue().expect("a shared store");
    let long = Duration::from_secs(30);
    let ids: Vec<_> = (1..=3)
        .map(|n| {
            let r = record(n);
            store.enqueue(&r, b"{}").unwrap();
            r.id
        })
        .collect();
    store.flush().unwrap();
    let first = queue
        .claim_one("w1", 0, long, Kind::Action)
        .unwrap()
        .unwrap();
    assert_eq!((first.entry.id, first.claims, first.lost), (ids[0], 1, 0));
    assert_eq!(first.lost_by, None);
    let second = queue
        .claim_one("w2", 0, long, Kind::Action)
        .unwrap()
        .unwrap();
    assert_eq!(second.entry.id, ids[1], "oldest first");
    let short = queue
        .claim_one("w3", 0, Duration::from_millis(1), Kind::Action)
        .unwrap()
        .unwrap();
    assert_eq!(short.entry.id, ids[2]);
    std::thread::sleep(Duration::from_millis(50));
    let taken = queue
        .claim_one("w1", 1, long, Kind::Action)
        .unwrap()
        .expect("expired: taken over");
    assert_eq!((taken.entry.id, taken.claims, taken.lost), (ids[2], 2, 1));
    assert_eq!(taken.lost_by.as_deref(), Some("w3"));
    assert!(
        queue
            .claim_one("w4", 0, long, Kind::Action)
            .unwrap()
            .is_none(),
        "all held"
    );

    let mut held = queue.renew("w1", 2, long).unwrap();
    held.sort();
    let seqs: Vec<u64> = held.iter().map(|h| h.seq).collect();
    assert_eq!(seqs, vec![first.entry.seq, taken.entry.seq]);
    assert!(held.iter().all(|h| !h.cancel));
    assert!(queue.renew("w3", 1, long).unwrap().is_empty(), "w3 lost it");
    let entries = queue.entries().unwrap();
    assert!(
        entries
            .iter()
            .all(|e| e.record.as_ref().is_some_and(|r| r.id == e.id)),
        "each entry with its record"
    );
    let holders: Vec<_> = entries
        .iter()
        .map(|e| e.lease.as_ref().map(|l| (l.worker.as_str(), l.slot)))
        .collect();
    assert_eq!(
        holders,
        vec![
            Some(("w1", Some(0))),
            Some(("w2", Some(0))),
            Some(("w1", Some(1)))
        ]
    );
    let workers = queue.workers().unwrap();
    let names: Vec<_> = workers.iter().map(|w| w.name.as_str()).collect();
    assert_eq!(names, vec!["w1", "w3"], "w2 has sent no heartbeat");
    assert_eq!(workers[0].running, vec![ids[0], ids[2]]);
    assert_eq!(workers[0].concurrency, 2);
    assert!(workers[0].silent_for < Duration::from_secs(5));

    // Cancel: a held entry is marked for its holder's next heartbeat; one
    // nobody holds leaves the queue; one not queued is said to be so.
    assert_eq!(
        queue.cancel(ids[2]).unwrap(),
        crate::Cancel::Requested {
            worker: "w1".into()
        }
    );
    let held = queue.renew("w1", 2, long).unwrap();
    assert_eq!(
        held.iter()
            .filter(|h| h.cancel)
            .map(|h| h.seq)
            .collect::<Vec<_>>(),
        vec![taken.entry.seq]
    );
    // Pause: the same, for a workflow; nothing to pause where nobody
    // holds the entry.
    assert_eq!(queue.pause(first.entry.id).unwrap().as_deref(), Some("w1"));
    let held = queue.renew("w1", 2, long).unwrap();
    let paused: Vec<u64> = held.iter().filter(|h| h.pause).map(|h| h.seq).collect();
    assert_eq!(paused, vec![first.entry.seq]);
    let late = record(4);
    store.enqueue(&late, b"{}").unwrap();
    assert_eq!(queue.pause(late.id).unwrap(), None);
    assert_eq!(queue.cancel(late.id).unwrap(), crate::Cancel::Withdrawn);
    assert_eq!(queue.cancel(late.id).unwrap(), crate::Cancel::NotQueued);

    // Leaving lets go at once, and is not a lost attempt.
    queue.leave("w1").unwrap();
    let again = queue
        .claim_one("w2", 1, long, Kind::Action)
        .unwrap()
        .unwrap();
    assert_eq!((again.entry.id, again.claims, again.lost), (ids[0], 2, 0));
    assert_eq!(again.lost_by, None);
    assert_eq!(queue.workers().unwrap().len(), 1);
    assert!(queue.holds(again.entry.id).unwrap());
    // A workflow's task: its waiter (the workflow) hears it leave the
    // queue, from any process. Top-level executions have no such waiter.
    let mut task = record(8);
    task.parent = Some(ids[1]);
    let task_seq = store.enqueue(&task, b"{}").unwrap();
    store.flush().unwrap();
    let endings = queue.endings();
    let watch = endings.watch(task.id);
    std::thread::sleep(Duration::from_millis(300)); // the listener connects
    let elsewhere = open();
    elsewhere.dequeue(again.entry.seq).unwrap();
    elsewhere.dequeue(task_seq).unwrap();
    tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .unwrap()
        .block_on(async {
            tokio::time::timeout(Duration::from_secs(10), watch.woken())
                .await
                .expect("woken by the dequeue")
        });
    assert!(!queue.holds(again.entry.id).unwrap());
    assert_eq!(queue.entries().unwrap().len(), 2);

    // An idle worker hears of a new entry of its kind from any process,
    // and not of the other kind's.
    let arrivals = queue.arrivals(Kind::Action);
    let flows = queue.arrivals(Kind::Workflow);
    std::thread::sleep(Duration::from_millis(300)); // the listener connects
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .unwrap();
    let fifth = record(5);
    rt.block_on(async {
        let (heard, flow_heard) = (arrivals.notified(), flows.notified());
        tokio::pin!(heard, flow_heard);
        heard.as_mut().enable();
        flow_heard.as_mut().enable();
        open().enqueue(&fifth, b"{}").unwrap();
        tokio::time::timeout(Duration::from_secs(10), heard)
            .await
            .expect("woken by the enqueue");
        // Notifications arrive in commit order: one the action's commit
        // sent the workflow waiters would be here by now.
        assert!(
            tokio::time::timeout(Duration::from_millis(200), flow_heard)
                .await
                .is_err(),
            "an action's arrival woke the workers waiting for workflows"
        );
    });
    assert_eq!(queue.cancel(fifth.id).unwrap(), crate::Cancel::Withdrawn);

    // Many claimers at once: every entry claimed exactly once, the one
    // w1 let go of among them, the one w2 holds not.
    for n in 0..200 {
        store.enqueue(&record(100 + n), b"{}").unwrap();
    }
    store.flush().unwrap();
    let won = std::sync::Mutex::new(Vec::new());
    std::thread::scope(|s| {
        for w in 0..4 {
            let (store, won) = (&store, &won);
            s.spawn(move || {
                let queue = store.shared_queue().unwrap();
                // Racers claiming for one slot and for several at a time.
                let slots: Vec<u32> = (0..=w).collect();
                loop {
                    let claimed =
                        waited(queue.claim(&format!("racer{w}"), &slots, 0, long, Kind::Action))
                            .unwrap();
                    if claimed.is_empty() {
                        break;
                    }
                    assert!(claimed.len() <= slots.len());
                    let mut won = won.lock().unwrap();
                    won.extend(claimed.iter().map(|c| c.entry.id));
                }
            });
        }
    });
    let mut won = won.into_inner().unwrap();
    let before = won.len();
    won.sort();
    won.dedup();
    assert_eq!(before, won.len(), "an entry claimed twice");
    assert_eq!(won.len(), 201);
    assert!(won.contains(&ids[2]) && !won.contains(&ids[1]));

    // Several slots at once: the oldest entries, the oldest for the
    // first slot named, as many as there are.
    let batch: Vec<_> = (0..3).map(|n| record(400 + n)).collect();
    for r in &batch {
        store.enqueue(r, b"{}").unwrap();
    }
    store.flush().unwrap();
    let claimed = waited(queue.claim("w6", &[7, 3], 0, long, Kind::Action)).unwrap();
    let got: Vec<_> = claimed.iter().map(|c| (c.entry.id, c.slot)).collect();
    assert_eq!(got, [(batch[0].id, Some(7)), (batch[1].id, Some(3))]);
    let rest = waited(queue.claim("w6", &[1, 2, 4], 5, long, Kind::Action)).unwrap();
    let got: Vec<_> = rest.iter().map(|c| (c.entry.id, c.slot)).collect();
    assert_eq!(got, [(batch[2].id, Some(1))]);
    let held = held_by(queue, "w6");
    assert_eq!(held.len(), 3);
    assert!(held.contains(&(batch[1].id, Some(3))), "{held:?}");
    for c in claimed.iter().chain(&rest) {
        store.dequeue(c.entry.seq).unwrap();
    }

    // Claimed ahead: after one entry per slot, up to `ahead` more, oldest
    // first, held by the worker for no slot yet.
    let batch: Vec<_> = (0..4).map(|n| record(500 + n)).collect();
    for r in &batch {
        store.enqueue(r, b"{}").unwrap();
    }
    store.flush().unwrap();
    let claimed = waited(queue.claim("w7", &[2], 2, long, Kind::Action)).unwrap();
    let got: Vec<_> = claimed.iter().map(|c| (c.entry.id, c.slot)).collect();
    assert_eq!(
        got,
        [
            (batch[0].id, Some(2)),
            (batch[1].id, None),
            (batch[2].id, None)
        ]
    );
    let held = held_by(queue, "w7");
    assert_eq!(
        held,
        [
            (batch[0].id, Some(2)),
            (batch[1].id, None),
            (batch[2].id, None)
        ]
    );
    let last = waited(queue.claim("w8", &[0], 3, long, Kind::Action)).unwrap();
    assert_eq!(last.len(), 1, "one left");
    for c in claimed.iter().chain(&last) {
        store.dequeue(c.entry.seq).unwrap();
    }

    // An accept may hold entries from the start, for slots of the worker
    // accepting them: held as a claim holds them, renewed with its other
    // leases, and no claim takes them.
    let (kept, left) = (record(600), record(601));
    let seqs = queue
        .accept_holding(
            &[(&kept, b"{}"), (&left, b"{}")],
            &[Some(3), None],
            "w9",
            long,
        )
        .unwrap();
    assert_eq!(seqs.len(), 2);
    assert!(
        store.get(kept.id).unwrap().is_some(),
        "its record is written"
    );
    let leases: Vec<_> = queue
        .entries()
        .unwrap()
        .into_iter()
        .filter(|e| e.id == kept.id || e.id == left.id)
        .map(|e| e.lease.map(|l| (l.worker, l.slot)))
        .collect();
    assert_eq!(leases, [Some(("w9".to_owned(), Some(3))), None]);
    let renewed: Vec<u64> = queue
        .renew("w9", 4, long)
        .unwrap()
        .iter()
        .map(|h| h.seq)
        .collect();
    assert_eq!(renewed, [seqs[0]]);
    let others = waited(queue.claim("w10", &[0, 1], 0, long, Kind::Action)).unwrap();
    let got: Vec<_> = others.iter().map(|c| c.entry.id).collect();
    assert_eq!(got, [left.id]);
    for seq in seqs {
        store.dequeue(seq).unwrap();
    }

    // Workflows and actions are claimed apart (every action is held now).
    let mut flow = record(6);
    flow.kind = Kind::Workflow;
    store.enqueue(&flow, b"{}").unwrap();
    assert!(queue
        .claim_one("w5", 0, long, Kind::Action)
        .unwrap()
        .is_none());
    let c = queue
        .claim_one("w5", 0, long, Kind::Workflow)
        .unwrap()
        .unwrap();
    assert_eq!(c.entry.id, flow.id);
    store.dequeue(c.entry.seq).unwrap();

    // An event a crashed server left: one racer takes it; another takes it
    // once that claim ran out; nobody once it is processed.
    let event = crate::TriggerInstance {
        id: crate::ExecutionId::new(),
        kind: "wasmflow.webhook".into(),
        parameters: Default::default(),
        payload: json!({}),
        received_at: crate::now(),
        processed: false,
    };
    store.put_trigger(&event).unwrap();
    let takers = std::sync::atomic::AtomicUsize::new(0);
    std::thread::scope(|s| {
        for w in 0..4 {
            let (store, takers, id) = (&store, &takers, event.id);
            s.spawn(move || {
                let queue = store.shared_queue().unwrap();
                let short = Duration::from_millis(300);
                if queue
                    .claim_trigger(id, &format!("racer{w}"), short)
                    .unwrap()
                {
                    takers.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                }
            });
        }
    });
    assert_eq!(takers.into_inner(), 1, "an event claimed twice");
    assert!(!queue.claim_trigger(event.id, "late", long).unwrap());
    std::thread::sleep(Duration::from_millis(400));
    assert!(queue.claim_trigger(event.id, "late", long).unwrap());
    let done = crate::TriggerInstance {
        processed: true,
        ..event
    };
    store.put_trigger(&done).unwrap();
    std::thread::sleep(Duration::from_millis(10));
    assert!(!queue
        .claim_trigger(done.id, "later", Duration::ZERO)
        .unwrap());

    // A sweep: one leader of many racers; it keeps the lead by renewing,
    // and another takes it once it ran out.
    let leaders = std::sync::atomic::AtomicUsize::new(0);
    std::thread::scope(|s| {
        for w in 0..4 {
            let (store, leaders) = (&store, &leaders);
            s.spawn(move || {
                let queue = store.shared_queue().unwrap();
                let short = Duration::from_millis(300);
                if queue.lead("expiry", &format!("racer{w}"), short).unwrap() {
                    leaders.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                }
            });
        }
    });
    assert_eq!(leaders.into_inner(), 1, "two leaders of one sweep");
    let leader = (0..4)
        .map(|w| format!("racer{w}"))
        .find(|w| queue.lead("expiry", w, Duration::from_millis(300)).unwrap())
        .expect("the leader renews its lead");
    assert!(!queue.lead("expiry", "late", long).unwrap());
    assert!(
        queue.lead("other", "late", long).unwrap(),
        "each sweep its own"
    );
    std::thread::sleep(Duration::from_millis(400));
    assert!(queue.lead("expiry", "late", long).unwrap());
    assert!(!queue.lead("expiry", &leader, long).unwrap());
}
