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

/// `store copy` moves a sled home into PostgreSQL and back: the same
/// records (the same JSON), trees, journals, blobs and tokens; a second
/// copy doubles nothing; a target with executions of its own is refused.
#[test]
fn store_copy_moves_a_home_to_postgres_and_back() {
    let b = Bench::new();
    let wf = b.file("chain.yaml", CHAIN);
    b.run(&wf, &["-p", "start=10"]).ok();
    let sled = &b.home;
    sled.run(&["run", s(&wat("add")), "-p", "a=2", "-p", "b=40"])
        .ok();
    sled.run(&["run", s(&wat("trap"))]).code(1);
    sled.run(&["token", "create", "--name", "ci"]).ok();
    sled.run(&["key", "set", "system.db", "pw", "--secret"])
        .ok();

    let pg = Home::on_postgres();
    let url = pg.store.clone().unwrap();
    let copied = sled
        .run(&["store", "copy", "--to", &url, "--json"])
        .ok()
        .json();
    assert_eq!(copied["records"], 7, "{copied}");
    assert_eq!(copied["tokens"], 1, "{copied}");
    // Keys too, secrets as stored: the home's secret key still opens them.
    assert_eq!(copied["keys"], 1, "{copied}");
    let mut c = pg.cmd();
    c.args(["key", "get", "system.db", "--decrypt"])
        .env("WASMFLOW_SECRET_KEY_FILE", sled.path().join("secret.key"));
    assert_eq!(crate::Run::from(c.output().unwrap()).ok().stdout, "pw\n");
    assert!(copied["journal_entries"].as_u64().unwrap() > 0, "{copied}");
    same_store(sled, &pg);

    // And back, from the URL into a new home directory.
    let back = Home::default();
    let dir = back.path().join("moved");
    sled.run(&["store", "copy", "--from", &url, "--to", s(&dir)])
        .ok()
        .stderr_has("copied 7 record(s)");
    let moved = Home {
        dir: crate::TempHome::At(dir),
        store: None,
    };
    same_store(sled, &moved);
    // What the copy holds replays, blobs and events and all.
    let add = moved
        .run(&["execution", "list", "--json"])
        .ok()
        .json()
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["action"].as_str().unwrap().contains("add"))
        .map(|r| r["id"].as_str().unwrap().to_owned())
        .unwrap();
    moved.run(&["execution", "replay", &add]).ok();

    // Again: nothing doubled.
    let again = sled
        .run(&["store", "copy", "--to", &url, "--json"])
        .ok()
        .json();
    assert_eq!(again, copied);
    same_store(sled, &pg);

    // A store with its own executions is not a target.
    pg.run(&["run", s(&wat("add")), "-p", "a=1", "-p", "b=1"])
        .ok();
    sled.run(&["store", "copy", "--to", &url])
        .code(2)
        .stderr_has("holds 1 execution(s) the source does not have");
    sled.run(&["store", "copy", "--to", s(sled.path())])
        .code(2)
        .stderr_has("name the same store");
}

/// `a` and `b` show the same executions, trees and tokens, byte for byte.
fn same_store(a: &Home, b: &Home) {
    let list = |h: &Home| stdout(h, &["execution", "list", "--all", "-n", "1000", "--json"]);
    let rows = list(a);
    assert_eq!(list(b), rows);
    for row in serde_json::from_str::<serde_json::Value>(&rows)
        .unwrap()
        .as_array()
        .unwrap()
    {
        let id = row["id"].as_str().unwrap();
        let get = |h: &Home| stdout(h, &["execution", "get", id, "--json"]);
        assert_eq!(get(b), get(a), "execution {id}");
    }
    let counts = |h: &Home| {
        let r = h.run(&["store", "check", "--json"]).ok().json();
        (
            r["records"].clone(),
            r["journal_entries"].clone(),
            r["blobs"].clone(),
            r["blob_bytes"].clone(),
        )
    };
    assert_eq!(counts(b), counts(a));
    let tokens = |h: &Home| stdout(h, &["token", "list"]);
    assert_eq!(tokens(b), tokens(a));
}

/// What `args` print on stdout in `home`, after they succeeded.
fn stdout(home: &Home, args: &[&str]) -> String {
    let run = home.run(args);
    run.ok();
    run.stdout
}
