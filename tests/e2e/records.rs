//! Every run is recorded; list and get show exactly what went in and out.

use crate::{s, wat, Home};
use serde_json::json;

#[test]
fn list_shows_every_run_newest_first_and_get_returns_it_exactly() {
    let home = Home::new();
    let add = wat("add");
    let mut ids = Vec::new();
    for n in 0..5u32 {
        let run = home.run(&[
            "run",
            s(&add),
            "-p",
            &format!("a={n}"),
            "-p",
            "b=100",
            "--json",
        ]);
        let rec = run.ok().json();
        assert_eq!(rec["result"], 100 + n);
        ids.push(rec["id"].as_str().unwrap().to_owned());
    }
    // One failure, for the status filter.
    home.run(&["run", s(&wat("trap"))]).code(1);

    let list = home.run(&["execution", "list", "--json"]);
    let rows = list.ok().json();
    let rows = rows.as_array().unwrap();
    assert_eq!(rows.len(), 6);
    let listed: Vec<&str> = rows[1..]
        .iter()
        .map(|r| r["id"].as_str().unwrap())
        .collect();
    let mut want: Vec<&str> = ids.iter().map(String::as_str).collect();
    want.reverse();
    assert_eq!(listed, want, "newest first");
    assert_eq!(rows[0]["status"], "failed");

    let two = home.run(&["execution", "list", "-n", "2", "--json"]).json();
    assert_eq!(two.as_array().unwrap().len(), 2);
    let failed = home
        .run(&["execution", "list", "--status", "failed", "--json"])
        .json();
    assert_eq!(failed.as_array().unwrap().len(), 1);
    let ok = home
        .run(&["execution", "list", "--status", "succeeded", "--json"])
        .json();
    assert_eq!(ok.as_array().unwrap().len(), 5);

    for (n, id) in ids.iter().enumerate() {
        let rec = home.run(&["execution", "get", id, "--json"]).json();
        assert_eq!(rec["input"], json!({ "a": n, "b": 100 }));
        assert_eq!(rec["result"], json!(100 + n));
        assert_eq!(rec["status"], "succeeded");
        assert!(rec["component_digest"]
            .as_str()
            .unwrap()
            .starts_with("sha256:"));
        assert!(rec["started_at"].is_string() && rec["ended_at"].is_string());
    }

    // The table, and a get by unique prefix, for people.
    let table = home.run(&["execution", "list"]);
    table.ok();
    assert_eq!(table.stdout.matches("add.wat").count(), 5);
    let first = table.stdout.find(&ids[4]).unwrap();
    let last = table.stdout.find(&ids[0]).unwrap();
    assert!(first < last, "the table is newest first too");
    let detail = home.run(&["execution", "get", &ids[0][..24].to_lowercase(), "--detail"]);
    detail.ok();
    for needle in [
        "status     succeeded",
        "digest     sha256:",
        "grants",
        "none (deny by default)",
        "limits",
        "memory 256MiB",
        "timings",
    ] {
        assert!(
            detail.stdout.contains(needle),
            "detail lacks {needle:?}:\n{}",
            detail.stdout
        );
    }
}

#[test]
fn unknown_ids_and_statuses_are_usage_errors() {
    let home = Home::new();
    home.run(&["execution", "get", "01ARZ3NDEKTSV4RRFFQ69G5FAV"])
        .code(2)
        .stderr_has("no execution matches");
    home.run(&["execution", "list", "--status", "exploded"])
        .code(2)
        .stderr_has("unknown status `exploded`");
}

#[test]
fn reads_work_while_another_process_runs_and_writes_are_refused() {
    let home = Home::new();
    home.run(&["run", s(&wat("add")), "a=1", "b=2"]).ok();
    let add = home.last_record();
    let mut child = home
        .cmd()
        .args(["run", s(&wat("loop")), "--timeout", "4s"])
        .spawn()
        .unwrap();
    // The running process answers reads: its `running` record shows at
    // once, beside the history.
    let started = std::time::Instant::now();
    let listed = loop {
        let r = home.run(&["execution", "list", "--json"]);
        r.ok();
        let listed = r.json();
        if listed.as_array().unwrap().len() == 2 {
            break listed;
        }
        assert!(
            started.elapsed() < std::time::Duration::from_secs(3),
            "{listed}"
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    };
    assert_eq!(listed[0]["status"], "running", "{listed}");
    assert_eq!(listed[1]["id"], add["id"]);
    let running = listed[0]["id"].as_str().unwrap();
    home.run(&["execution", "get", running]).ok();
    let table = home.run(&["execution", "list"]);
    assert!(table.ok().stdout.contains(running), "{}", table.stdout);
    // A bundle carries the component's bytes: a blob, read through the
    // holder too.
    let dir = tempfile::tempdir().unwrap();
    let bundle = dir.path().join("add.wfreplay");
    home.run(&[
        "execution",
        "export",
        add["id"].as_str().unwrap(),
        "-o",
        s(&bundle),
    ])
    .ok();
    let other = Home::new();
    other
        .run(&["execution", "replay", "--bundle", s(&bundle)])
        .ok();
    // Writing needs the store to itself: refused, naming why.
    home.run(&["run", s(&wat("add")), "a=1", "b=2"])
        .code(2)
        .stderr_has("in use by another wasmflow process");
    home.run(&["store", "check"])
        .code(2)
        .stderr_has("in use by another wasmflow process");
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(1));
    let rec = home.last_record();
    assert_eq!(rec["status"], "timed_out");
}

#[test]
fn a_killed_run_leaves_a_usable_store_and_an_interrupted_record() {
    let home = Home::new();
    // Some history first, which must survive.
    home.run(&["run", s(&wat("add")), "-p", "a=1", "-p", "b=1"])
        .ok();
    let mut child = home
        .cmd()
        .args(["run", s(&wat("loop")), "--timeout", "60s"])
        .spawn()
        .unwrap();
    // sled writes the transient `running` record out within its 500 ms
    // flush interval; give it four times that, then kill -9.
    std::thread::sleep(std::time::Duration::from_millis(2000));
    child.kill().unwrap();
    child.wait().unwrap();

    // The next command to open the store records that nobody is running
    // it any more, and says so once.
    let failed = home.run(&["execution", "list", "--status", "failed", "--json"]);
    assert_eq!(
        failed
            .stderr
            .matches("recorded as failed [interrupted]")
            .count(),
        1,
        "{}",
        failed.stderr
    );
    let failed = failed.ok().json();
    assert_eq!(failed.as_array().unwrap().len(), 1, "{failed:#}");
    assert_eq!(failed[0]["action"].as_str().unwrap(), s(&wat("loop")));
    assert_eq!(failed[0]["error"]["code"], "interrupted", "{failed:#}");
    let running = home.run(&["execution", "list", "--status", "running", "--json"]);
    assert_eq!(running.ok().json(), serde_json::json!([]));
    let done = home
        .run(&["execution", "list", "--status", "succeeded", "--json"])
        .json();
    assert_eq!(done.as_array().unwrap().len(), 1, "earlier records survive");
    // The store takes new runs.
    assert_eq!(
        home.run(&["run", s(&wat("add")), "-p", "a=2", "-p", "b=3"])
            .ok()
            .json(),
        5
    );
}
