//! A store written by an older wasmflow is read back identically: the
//! fixture `tests/fixtures/stores/66d2ddf` was made by the binary of commit
//! 66d2ddf (sled with its own blob files and 64 KiB segments, before value
//! files beside sled), with the records as that binary printed them. Every
//! record reads back equal, the tree and the events too (a replay of each
//! action reproduces), and `store check` finds nothing wrong.

use crate::{support, Home};
use serde_json::Value;
use std::path::Path;

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        let target = to.join(e.file_name());
        if e.file_type().unwrap().is_dir() {
            copy_dir(&e.path(), &target);
        } else {
            std::fs::copy(e.path(), &target).unwrap();
        }
    }
}

#[test]
fn a_store_written_by_66d2ddf_reads_back_identically() {
    let fixture = support::fixture("stores/66d2ddf");
    let home = Home::new();
    // A copy: opening a sled store writes to it.
    copy_dir(&fixture.join("store"), &home.path().join("store"));
    let expected: Vec<Value> =
        serde_json::from_slice(&std::fs::read(fixture.join("records.json")).unwrap()).unwrap();
    assert!(expected.len() >= 4, "the fixture has its records");

    for want in &expected {
        let id = want["id"].as_str().unwrap();
        let got = home.run(&["execution", "get", id, "--json"]).ok().json();
        assert_eq!(&got, want, "{id} reads back differently");
    }
    let all = home
        .run(&["execution", "list", "--all", "--json"])
        .ok()
        .json();
    assert_eq!(all.as_array().unwrap().len(), expected.len());

    // Events and blobs: each action execution replays to the same end.
    for want in expected.iter().filter(|r| r["kind"] == "action") {
        let id = want["id"].as_str().unwrap();
        let r = home.run(&["execution", "replay", id]);
        r.ok();
        assert!(
            r.stdout.starts_with("reproduced: identical"),
            "{id}: {}",
            r.stdout
        );
    }
    let check = home.run(&["store", "check", "--json"]);
    check.ok();
}
