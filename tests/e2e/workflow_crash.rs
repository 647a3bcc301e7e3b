//! Durability: a workflow process killed with SIGKILL at several points is
//! resumed without running any completed task again, to the same output;
//! cancel stops a running workflow (Ctrl-C or `execution cancel`).

use crate::s;
use crate::workflow::{children, Bench};
use serde_json::{json, Value};
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

const SLOW: &str = r#"
version: 1
name: slow
input: [{ name: dir, type: string }]
grants: { write: ["{{ input.dir }}"] }
tasks:
  a:
    action: STEP
    input: { req: { name: a, dir: "{{ input.dir }}", value: 1, sleep-ms: 600 } }
    next: [{ publish: { a: "{{ result.value }}" }, do: b }]
  b:
    action: STEP
    input: { req: { name: b, dir: "{{ input.dir }}", value: "{{ ctx.a }}", sleep-ms: 600 } }
    next: [{ publish: { b: "{{ result.value }}" }, do: c }]
  c:
    action: STEP
    input: { req: { name: c, dir: "{{ input.dir }}", value: "{{ ctx.b }}", sleep-ms: 600 } }
    next: [{ publish: { c: "{{ result.value }}" } }]
output: { a: "{{ ctx.a }}", c: "{{ ctx.c }}" }
"#;

fn spawn(b: &Bench, wf: &Path) -> Child {
    b.home
        .cmd()
        .args(["run", s(wf), "-p", &format!("dir={}", s(&b.marks))])
        .args(["--allow-write", s(&b.marks), "--json"])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

fn wait_for(what: &str, mut cond: impl FnMut() -> bool) {
    let start = Instant::now();
    while !cond() {
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "timed out waiting for {what}"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// The workflow's execution id, read from the `started` line on stderr.
fn started_id(child: &mut Child) -> String {
    let stderr = child.stderr.take().unwrap();
    let mut lines = BufReader::new(stderr).lines();
    let line = lines
        .find_map(|l| l.ok().filter(|l| l.starts_with("workflow execution ")))
        .expect("a started line");
    // Keep draining so the child never blocks on a full pipe.
    std::thread::spawn(move || for _ in lines {});
    line.split_whitespace().nth(2).unwrap().to_owned()
}

#[test]
fn a_workflow_killed_at_any_point_resumes_without_rerunning_completed_tasks() {
    let reference = Bench::new();
    let wf = reference.file("slow.yaml", SLOW);
    let want = reference.run(&wf, &[]).ok().json()["result"].clone();
    assert_eq!(want, json!({"a": 2, "c": 4}));

    // Before any task, during a, during b (a done), during c (a, b done),
    // and just after b's marker appears plus most of its sleep.
    let points: &[(&str, Option<&str>, u64)] = &[
        ("before", None, 0),
        ("during a", Some("a"), 150),
        ("during b", Some("b"), 150),
        ("end of b", Some("b"), 550),
        ("during c", Some("c"), 150),
    ];
    for (label, marker, delay_ms) in points {
        let b = Bench::new();
        let wf = b.file("slow.yaml", SLOW);
        let mut child = spawn(&b, &wf);
        let id = started_id(&mut child);
        if let Some(m) = marker {
            wait_for(&format!("{m} to start ({label})"), || b.runs(m) > 0);
        }
        std::thread::sleep(Duration::from_millis(*delay_ms));
        child.kill().unwrap(); // SIGKILL
        child.wait().unwrap();

        // Killed before the workflow's record was written: nothing ran,
        // nothing is left behind.
        let found = b.home.run(&["execution", "get", &id, "--json"]);
        if found.code == 2 {
            assert_eq!(
                *label, "before",
                "the record exists once a task has started"
            );
            found.stderr_has("no execution matches");
            b.home.run(&["resume"]).ok().stderr_has("nothing to resume");
            assert_eq!(b.runs("a"), 0);
            continue;
        }
        // What the store says had completed when the process died.
        let tree = b.tree(&id);
        assert_eq!(
            tree["status"], "running",
            "{label}: the workflow was interrupted"
        );
        let completed: Vec<String> = children(&tree)
            .iter()
            .filter(|c| c["status"] == "succeeded")
            .map(|c| c["task"].as_str().unwrap().to_owned())
            .collect();

        let resumed = b.home.run(&["resume", "--json"]);
        let records = resumed.ok().json();
        assert_eq!(records[0]["id"], json!(id), "{label}");
        assert_eq!(
            records[0]["result"], want,
            "{label}: same output as an uninterrupted run"
        );
        for t in ["a", "b", "c"] {
            let n = b.runs(t);
            if completed.iter().any(|c| c == t) {
                assert_eq!(n, 1, "{label}: completed task {t} ran again");
            } else {
                assert!((1..=2).contains(&n), "{label}: task {t} ran {n} times");
            }
        }
        // A task that was running was recorded as interrupted and run anew.
        let after = b.tree(&id);
        for c in children(&after) {
            if c["status"] == "failed" {
                assert_eq!(c["error"]["code"], "interrupted", "{label}: {c}");
            }
        }
        // Nothing is left to resume.
        b.home.run(&["resume"]).ok().stderr_has("nothing to resume");
    }
}

#[test]
fn ctrl_c_cancels_the_running_action_and_records_canceled() {
    let b = Bench::new();
    let wf = b.file("slow.yaml", SLOW);
    let mut child = spawn(&b, &wf);
    let id = started_id(&mut child);
    wait_for("a to start", || b.runs("a") > 0);
    let started = Instant::now();
    let kill = std::process::Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(kill.success());
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(1));
    assert!(started.elapsed() < Duration::from_millis(2000));
    let tree = b.tree(&id);
    assert_eq!(tree["status"], "canceled", "{tree}");
    let kids = children(&tree);
    assert_eq!(kids.len(), 1, "nothing started after the cancel");
    assert_eq!(kids[0]["status"], "canceled");
    assert_eq!(b.runs("b"), 0);
}

#[test]
fn execution_cancel_stops_a_workflow_run_by_another_process() {
    let b = Bench::new();
    let wf = b.file("slow.yaml", SLOW);
    let mut child = spawn(&b, &wf);
    let id = started_id(&mut child);
    wait_for("b to start", || b.runs("b") > 0);
    b.home
        .run(&["execution", "cancel", &id])
        .ok()
        .stderr_has("cancel requested");
    assert_eq!(child.wait().unwrap().code(), Some(1));
    let tree = b.tree(&id);
    assert_eq!(tree["status"], "canceled");
    let status: Vec<&str> = children(&tree)
        .iter()
        .map(|c| c["status"].as_str().unwrap())
        .collect();
    assert_eq!(status, ["succeeded", "canceled"]);
    assert_eq!(b.runs("c"), 0);

    // An interrupted workflow (its process killed) is canceled in the store,
    // and `resume` leaves it alone.
    let mut child = spawn(&b, &wf);
    let id = started_id(&mut child);
    wait_for("a to start", || b.runs("a") > 1);
    child.kill().unwrap();
    child.wait().unwrap();
    b.home.run(&["execution", "cancel", &id[..20]]).ok();
    let tree: Value = b.tree(&id);
    assert_eq!(tree["status"], "canceled");
    b.home.run(&["resume"]).ok().stderr_has("nothing to resume");
    b.home
        .run(&["execution", "cancel", &id])
        .code(2)
        .stderr_has("already ended (canceled)");
}

/// `execution pause` from another process: the running task finishes, none
/// starts after it, the workflow is `paused` and its process ends;
/// `execution resume` goes on from there, and the result is the one an
/// unpaused run gives. A workflow nothing runs pauses in the store.
#[test]
fn a_paused_workflow_starts_no_task_until_it_is_resumed() {
    let b = Bench::new();
    let wf = b.file("slow.yaml", SLOW);
    let mut child = spawn(&b, &wf);
    let id = started_id(&mut child);
    wait_for("a to start", || b.runs("a") > 0);
    b.home
        .run(&["execution", "pause", &id])
        .ok()
        .stderr_has("pause requested");
    assert_eq!(child.wait().unwrap().code(), Some(1));
    let tree = b.tree(&id);
    assert_eq!(tree["status"], "paused", "{tree}");
    let kids = children(&tree);
    assert_eq!(kids.len(), 1, "nothing started after the pause: {tree}");
    assert_eq!(kids[0]["status"], "succeeded");
    assert_eq!(b.runs("b"), 0);
    // Following it stops where it paused.
    b.home
        .run(&["execution", "logs", &id, "-f"])
        .code(1)
        .stderr_has("paused");
    // `resume` (of interrupted workflows) leaves it alone; it pauses once.
    b.home.run(&["resume"]).ok().stderr_has("nothing to resume");
    b.home
        .run(&["execution", "pause", &id])
        .code(2)
        .stderr_has("is paused: only a running workflow pauses");
    let listed = b
        .home
        .run(&["execution", "list", "--status", "paused", "--json"]);
    assert_eq!(listed.ok().ids(), std::slice::from_ref(&id));

    // On from where it stopped, to the result an unpaused run gives.
    let done = b
        .home
        .run(&["execution", "resume", &id, "--json"])
        .ok()
        .json();
    assert_eq!(done["status"], "succeeded", "{done}");
    assert_eq!(done["result"], json!({"a": 2, "c": 4}));
    assert_eq!((b.runs("a"), b.runs("b"), b.runs("c")), (1, 1, 1));
    b.home
        .run(&["execution", "resume", &id])
        .code(2)
        .stderr_has("is succeeded, not paused");

    // Its process killed mid-task, a workflow pauses in the store, and
    // resumes with the interrupted task run again.
    let mut child = spawn(&b, &wf);
    let id = started_id(&mut child);
    wait_for("a to start", || b.runs("a") > 1);
    child.kill().unwrap();
    child.wait().unwrap();
    b.home
        .run(&["execution", "pause", &id])
        .ok()
        .stderr_has("nothing was running it");
    b.home.run(&["resume"]).ok().stderr_has("nothing to resume");
    let done = b
        .home
        .run(&["execution", "resume", &id, "--json"])
        .ok()
        .json();
    assert_eq!(done["result"], json!({"a": 2, "c": 4}), "{done}");
}

/// A task killed mid-run is in the records afterwards as `interrupted`,
/// whether or not it had written its own record; the task's second start
/// says `attempt: 2`. A purge leaves the interrupted tree alone.
#[test]
fn a_killed_task_is_recorded_interrupted_and_its_rerun_is_attempt_2() {
    for round in 0..3 {
        let b = Bench::new();
        let wf = b.file("slow.yaml", SLOW);
        let mut child = spawn(&b, &wf);
        let id = started_id(&mut child);
        wait_for("b to start", || b.runs("b") > 0);
        // Right after the guest's first step: its record may not be
        // written yet; the journal knows it started.
        std::thread::sleep(Duration::from_millis(round * 40));
        child.kill().unwrap();
        child.wait().unwrap();

        let purge = b
            .home
            .run(&["execution", "purge", "--before", "0s", "--json"]);
        assert_eq!(purge.ok().json()["executions"], 0, "a running tree stays");

        b.home.run(&["resume"]).ok();
        let tree = b.tree(&id);
        assert_eq!(tree["status"], "succeeded", "{tree}");
        let bs: Vec<&Value> = children(&tree)
            .into_iter()
            .filter(|c| c["task"] == "b")
            .collect();
        assert_eq!(bs.len(), 2, "round {round}: b twice: {tree}");
        assert_eq!(bs[0]["status"], "failed", "round {round}: {}", bs[0]);
        assert_eq!(
            bs[0]["error"]["code"], "interrupted",
            "round {round}: {}",
            bs[0]
        );
        assert!(
            bs[0].get("attempt").is_none(),
            "the first attempt is 1: {}",
            bs[0]
        );
        assert_eq!(bs[1]["status"], "succeeded", "{}", bs[1]);
        assert_eq!(bs[1]["attempt"], 2, "round {round}: {}", bs[1]);
        assert_eq!(b.runs("b"), 2, "at least once: b's action started twice");

        let purge = b
            .home
            .run(&["execution", "purge", "--before", "0s", "--json"]);
        let report = purge.ok().json();
        assert_eq!(report["executions"], 1, "{report}");
        assert_eq!(report["descendants"], 4, "a, b twice, c: {report}");
    }
}

/// An input the workflow rejects records nothing and prints no id.
#[test]
fn a_rejected_workflow_input_prints_no_id() {
    let b = Bench::new();
    let wf = b.file(
        "typed.yaml",
        "version: 1\nname: typed\ninput: [{ name: seconds, type: s64 }]\ntasks:\n  a:\n    action: STEP\n    input: { req: { name: a } }\n",
    );
    let r = b.home.run(&["run", s(&wf), "-p", "seconds=four"]);
    r.code(2);
    assert!(!r.stderr.contains("started"), "{}", r.stderr);
    let list = b.home.run(&["execution", "list", "--json"]);
    assert_eq!(list.ok().json(), json!([]));
}
