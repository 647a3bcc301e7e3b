//! The CLI on a PostgreSQL store (`--store postgres://...` or
//! `WASMFLOW_STORE`): runs, workflows, listing, re-runs, replays and
//! tokens go to the database and nothing to the home's sled store. Each
//! test has a database of its own in this binary's private cluster.

use crate::workflow::{Bench, CHAIN};
use crate::{s, wat, Home};
use serde_json::json;

#[test]
fn runs_are_recorded_in_the_database_and_read_back_exactly() {
    let home = Home::on_postgres();
    let add = wat("add");
    let rec = home
        .run(&["run", s(&add), "-p", "a=2", "-p", "b=40", "--json"])
        .ok()
        .json();
    assert_eq!(rec["result"], 42);
    let id = rec["id"].as_str().unwrap();
    home.run(&["run", s(&wat("trap"))]).code(1);
    let list = home.run(&["execution", "list", "--json"]).ok().json();
    let rows = list.as_array().unwrap();
    assert_eq!(rows.len(), 2);
    assert_eq!(rows[0]["status"], "failed", "newest first");
    assert_eq!(rows[1]["id"], rec["id"]);
    let got = home.run(&["execution", "get", id, "--json"]).ok().json();
    assert_eq!(got, rec, "read back as it was written");
    // A prefix finds it, as on sled.
    let got = home
        .run(&["execution", "get", &id[..20], "--json"])
        .ok()
        .json();
    assert_eq!(got["id"], rec["id"]);
    // The home holds no store of its own.
    assert!(!home.path().join("store").exists());
    // Re-run and replay work from what the database holds.
    let again = home.run(&["execution", "re-run", id, "--json"]).ok().json();
    assert_eq!(again["result"], 42);
    assert_eq!(again["rerun_of"], rec["id"]);
    home.run(&["execution", "replay", id]).ok();
    // The same database from another home sees the same executions.
    let other = Home {
        store: home.store.clone(),
        ..Home::default()
    };
    let mine = home.run(&["execution", "list", "--json"]).ok().json();
    let theirs = other.run(&["execution", "list", "--json"]).ok().json();
    assert!(mine.as_array().unwrap().len() >= 3);
    assert_eq!(theirs, mine);
}

#[test]
fn a_workflow_runs_with_its_journal_and_children_in_the_database() {
    let mut b = Bench::new();
    b.home = Home::on_postgres();
    let wf = b.file("chain.yaml", CHAIN);
    let rec = b.run(&wf, &["-p", "start=10"]).ok().json();
    assert_eq!(
        rec["result"],
        json!({"a": 11, "d": 1114, "big": true, "summary": "a=11 d=1114"})
    );
    let tree = b.tree(rec["id"].as_str().unwrap());
    assert_eq!(crate::workflow::children(&tree).len(), 4);
    let all = b.home.run(&["execution", "list", "--all", "--json"]).json();
    assert_eq!(all.as_array().unwrap().len(), 5);
    b.home.run(&["store", "check"]).ok();
}

#[test]
fn tokens_are_kept_in_the_database() {
    let home = Home::on_postgres();
    let created = home.run(&["token", "create", "--name", "ci"]);
    let token = created.ok().stdout.trim().to_owned();
    assert!(token.starts_with("wft_"), "{token}");
    home.run(&["token", "create", "--name", "ci"])
        .code(2)
        .stderr_has("a token named `ci` exists");
    let list = home.run(&["token", "list"]);
    assert!(list.ok().stdout.contains("ci"));
    assert!(!home.path().join("tokens.json").exists());
    home.run(&["token", "revoke", "ci"]).ok();
}

#[test]
fn an_unreachable_database_is_a_usage_error_naming_it() {
    let home = Home {
        store: Some("postgres://someone:hunter2@127.0.0.1:1/nothing".into()),
        ..Home::default()
    };
    let run = home.run(&["execution", "list"]);
    run.code(2)
        .stderr_has("cannot open the store at postgres://someone@127.0.0.1:1/nothing");
    assert!(!run.stderr.contains("hunter2"));
}
