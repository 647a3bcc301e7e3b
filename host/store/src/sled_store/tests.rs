//! The sled store's own tests: what it keeps across opens, and how it lays values out.

use super::*;
use crate::Backend;
use serde_json::json;

/// The checks every backend passes, on sled.
#[test]
fn sled_meets_the_contract() {
    let dirs = std::cell::RefCell::new(Vec::new());
    crate::contract::all(&|| {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().to_owned();
        dirs.borrow_mut().push(dir);
        Box::new(move || crate::Store::new(reopen(&path)))
    });
}

/// The embedded store's token file meets the token contract.
#[test]
fn the_token_file_meets_the_contract() {
    let home = tempfile::tempdir().unwrap();
    let book = crate::token_book(&crate::Location::in_home(home.path())).unwrap();
    crate::contract::token_book(&*book);
    assert!(home.path().join("tokens.json").exists());
}

fn record(n: u64) -> ExecutionRecord {
    ExecutionRecord::new_action(format!("a{n}"), "sha256:00".into(), json!({ "n": n }))
}

/// A CLI opens the store once per command, with segments freed and
/// reused in between (vendor/PATCHES.md: a recovery shortcut lost
/// records exactly here): every record and blob is read back at every
/// open.
#[test]
fn many_short_opens_keep_everything() {
    let dir = tempfile::tempdir().unwrap();
    let mut kept: Vec<(ExecutionRecord, Vec<Digest>)> = Vec::new();
    let mut first = record(0);
    let opens = 60;
    for i in 0..opens {
        let store = reopen(dir.path());
        // Everything written so far is there.
        if i > 0 {
            assert_eq!(store.get(first.id).unwrap().as_ref(), Some(&first));
        }
        for (n, (r, digests)) in kept.iter().enumerate() {
            assert_eq!(
                store.get(r.id).unwrap().as_ref(),
                Some(r),
                "record {n}, open {i}"
            );
            for (k, digest) in digests.iter().enumerate() {
                let bytes = store.get_blob(digest).unwrap().unwrap();
                assert_eq!(bytes, blob(n, k), "blob {n}.{k}, open {i}");
            }
        }
        // A new record and 120 KiB of small blobs (small values stay in
        // the log), and a rewrite of the first record, so that old
        // segments empty out and are reused.
        let r = record(i);
        store.put(&r).unwrap();
        first.input = json!({ "rewritten": i });
        store.put(&first).unwrap();
        let digests = (0..60)
            .map(|k| store.put_blob(&blob(i as usize, k)).unwrap())
            .collect();
        kept.push((r, digests));
        store.flush().unwrap();
        drop(store);
    }
}

/// 2 KiB that differ for every (n, k): equal blobs are stored once.
fn blob(n: usize, k: usize) -> Vec<u8> {
    let mut x = (n as u64) << 32 | k as u64 | 1;
    (0..2 << 10)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

#[test]
fn events_stored_one_per_entry_still_read() {
    use crate::Event;
    let dir = tempfile::tempdir().unwrap();
    let store = reopen(dir.path());
    let a = record(1);
    let ev = |n| Event::MonotonicClock { nanoseconds: n };
    // The layout of stores written before events were grouped.
    for (i, e) in [ev(1), ev(2), ev(3)].iter().enumerate() {
        let key = seq_key(&a.id.key(), i as u32);
        store
            .events
            .insert(key, serde_json::to_vec(e).unwrap())
            .unwrap();
    }
    assert_eq!(store.events(a.id).unwrap(), vec![ev(1), ev(2), ev(3)]);
    // A later attempt under the same id replaces them all.
    store.put_events(a.id, &[ev(4)]).unwrap();
    assert_eq!(store.events(a.id).unwrap(), vec![ev(4)]);
}

#[test]
fn a_store_keeps_the_segment_size_it_was_created_with() {
    let dir = tempfile::tempdir().unwrap();
    {
        // As created by a build that used 64 KiB segments.
        let db = sled::Config::new()
            .path(dir.path())
            .segment_size(64 << 10)
            .open()
            .unwrap();
        db.flush().unwrap();
    }
    let store = reopen(dir.path());
    store.put(&record(1)).unwrap();
    let fresh = tempfile::tempdir().unwrap();
    SledStore::open(fresh.path()).unwrap();
    assert_eq!(segment_size(fresh.path()), SEGMENT_SIZE);
    assert_eq!(segment_size(dir.path()), 64 << 10);
}

#[test]
fn large_values_are_files_and_read_back() {
    let dir = tempfile::tempdir().unwrap();
    let store = reopen(dir.path());
    let big = vec![7u8; 300_000];
    let digest = store.put_blob(&big).unwrap();
    let mut r = record(1);
    r.stdout = "x".repeat(100_000);
    r.component_digest = digest.to_string();
    store.put(&r).unwrap();
    store
        .append_workflow_log(
            r.id,
            0,
            &[format!("{{\"big\":\"{}\"}}", "y".repeat(9000)).into_bytes()],
            true,
        )
        .unwrap();
    drop(store);
    let store = reopen(dir.path());
    assert_eq!(store.get(r.id).unwrap(), Some(r.clone()));
    assert_eq!(store.get_blob(&digest).unwrap(), Some(big));
    assert_eq!(store.workflow_log(r.id).unwrap()[0].len(), 9000 + 10);
    // sled holds references only: no blob files of its own.
    assert!(std::fs::read_dir(dir.path().join("blobs")).map_or(true, |mut d| d.next().is_none()));
    let report = store.check().unwrap();
    assert!(report.is_clean(), "{report:?}");
    // A file changed behind the store's back is damage, by id.
    let file = store
        .files
        .path(&Digest::of(&serde_json::to_vec(&r).unwrap()));
    std::fs::write(&file, b"{}").unwrap();
    let report = store.check().unwrap();
    assert_eq!(report.damaged.len(), 1, "{report:?}");
    assert_eq!(report.damaged[0].item, format!("record {}", r.id));
    assert!(matches!(store.get(r.id), Err(StoreError::Damaged { .. })));
}

#[test]
fn large_values_stored_inline_by_older_builds_still_read() {
    let dir = tempfile::tempdir().unwrap();
    let mut r = record(1);
    r.stdout = "z".repeat(50_000);
    {
        // As an older build wrote it: 64 KiB segments, the value in sled.
        let db = sled::Config::new()
            .path(dir.path())
            .segment_size(64 << 10)
            .open()
            .unwrap();
        db.open_tree("executions")
            .unwrap()
            .insert(r.id.key(), serde_json::to_vec(&r).unwrap())
            .unwrap();
        db.flush().unwrap();
    }
    let store = reopen(dir.path());
    assert_eq!(store.get(r.id).unwrap(), Some(r));
}

/// A store written before the top-level index gets it built at its next
/// open, once: its top-level listing is as complete as a new store's.
#[test]
fn a_store_from_before_the_top_level_index_is_indexed_at_open() {
    let dir = tempfile::tempdir().unwrap();
    let (top, task) = (record(1), {
        let mut r = record(2);
        r.parent = Some(ExecutionId::new());
        r
    });
    {
        let store = reopen(dir.path());
        store.write(&top, None).unwrap();
        store.write(&task, None).unwrap();
        // As such a store was: no index, no mark.
        store.roots.clear().unwrap();
        store.roots_by_status.clear().unwrap();
        store.db.remove(b"roots-indexed").unwrap();
        store.db.flush().unwrap();
    }
    let store = crate::Store::new(reopen(dir.path()));
    let listed = store.list(&crate::ListFilter::default()).unwrap();
    assert_eq!(listed.iter().map(|r| r.id).collect::<Vec<_>>(), [top.id]);
    let by_status = crate::ListFilter {
        status: Some(top.status),
        ..Default::default()
    };
    assert_eq!(store.list(&by_status).unwrap().len(), 1);
}
