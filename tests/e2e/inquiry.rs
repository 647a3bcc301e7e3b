//! `core.ask`: a workflow waits for a person's answer, durably. From the
//! CLI on both stores, and through the API across a `kill -9`.

use crate::server::Site;
use crate::{s, wat, Home, StoreKind};
use serde_json::{json, Value};
use std::time::{Duration, Instant};

crate::on_both_stores!(an_inquiry_pauses_its_workflow_until_it_is_answered);

/// Ask for `n`, then add 1 to it; `TTL` is the question's ttl.
pub(crate) const ASK: &str = r#"
version: 1
tasks:
  approve:
    action: core.ask
    input:
      schema:
        type: object
        properties: { n: { type: integer }, why: { type: string } }
        required: [n]
      ttl: TTL
      route: ops
    next: [{ when: "{{ succeeded() }}", publish: { n: "{{ result.n }}" }, do: add }]
  add:
    action: ADD
    input: { a: "{{ ctx.n }}", b: 1 }
    next: [{ publish: { sum: "{{ result }}" } }]
output: { sum: "{{ ctx.sum }}" }
"#;

fn flow(dir: &std::path::Path, ttl: &str) -> std::path::PathBuf {
    let path = dir.join(format!("ask-{}.yaml", ttl.replace(' ', "")));
    let text = ASK.replace("TTL", ttl).replace("ADD", s(&wat("add")));
    std::fs::write(&path, text).unwrap();
    path
}

fn an_inquiry_pauses_its_workflow_until_it_is_answered(kind: StoreKind) {
    let home = Home::with_store(kind);
    let dir = tempfile::tempdir().unwrap();
    let wf = flow(dir.path(), "1h");

    // A question that is not one is found by validate, with its position.
    let bad = dir.path().join("bad.yaml");
    std::fs::write(
        &bad,
        ASK.replace("TTL", "1h")
            .replace("ADD", s(&wat("add")))
            .replace("type: object", "type: 7"),
    )
    .unwrap();
    home.run(&["workflow", "validate", s(&bad)])
        .code(2)
        .stderr_has("tasks.approve.input: schema:");

    let paused = home.run(&["run", s(&wf), "--json"]);
    paused.code(1).stderr_has("paused");
    let id = paused.json()["id"].as_str().unwrap().to_owned();
    assert_eq!(home.tree(&id)["status"], "paused");
    let open = home.run(&["inquiry", "list", "--json"]).ok().json();
    assert_eq!(open.as_array().unwrap().len(), 1, "{open}");
    assert_eq!(
        (&open[0]["route"], &open[0]["workflow"]),
        (&json!("ops"), &json!(id))
    );
    let inquiry = open[0]["id"].as_str().unwrap().to_owned();

    // A wrong answer is refused with its path; nothing changes.
    home.run(&["inquiry", "respond", &inquiry, "-p", "n=many"])
        .code(2)
        .stderr_has(r#"/n: "many" is not of type "integer""#);
    home.run(&["inquiry", "respond", &inquiry, "-p", "why=no n"])
        .code(2)
        .stderr_has("\"n\" is a required property");
    // The answer: the workflow goes on here, the task's result is it.
    let done = home
        .run(&[
            "inquiry", "respond", &inquiry, "-p", "n=41", "-p", "why=ok", "--json",
        ])
        .ok()
        .json();
    assert_eq!(done["status"], "succeeded", "{done}");
    assert_eq!(done["result"], json!({"sum": 42}));
    let answered = home
        .run(&["inquiry", "get", &inquiry, "--json"])
        .ok()
        .json();
    assert_eq!(answered["response"], json!({"n": 41, "why": "ok"}));
    let record = home
        .run(&["execution", "get", &inquiry, "--json"])
        .ok()
        .json();
    assert!(
        record["logs"][0]["message"]
            .as_str()
            .unwrap()
            .starts_with("answered by user "),
        "{record}"
    );
    home.run(&["inquiry", "respond", &inquiry, "-p", "n=1"])
        .code(2)
        .stderr_has("is succeeded: it was answered");

    // Unanswered past its ttl: the task fails with inquiry-timeout.
    let short = flow(dir.path(), "1s");
    let paused = home.run(&["run", s(&short), "--json"]);
    paused.code(1);
    let id = paused.json()["id"].as_str().unwrap().to_owned();
    std::thread::sleep(Duration::from_millis(1300));
    let open = home.run(&["inquiry", "list", "--json"]).ok().json();
    assert_eq!(open, json!([]), "expired on the way");
    let failed = home.run(&["execution", "resume", &id, "--json"]);
    failed.code(1);
    let failed = failed.json();
    assert_eq!(failed["status"], "failed");
    assert!(failed.to_string().contains("inquiry-timeout"), "{failed}");

    // Only the users it names may answer.
    let only = dir.path().join("only.yaml");
    let text = ASK
        .replace("TTL", "1h")
        .replace("ADD", s(&wat("add")))
        .replace("route: ops", "route: ops\n      users: [carol]");
    std::fs::write(&only, text).unwrap();
    home.run(&["run", s(&only)]).code(1);
    let open = home.run(&["inquiry", "list", "--json"]).ok().json();
    let asked = open[0]["id"].as_str().unwrap().to_owned();
    assert_eq!(open[0]["users"], json!(["carol"]));
    let respond_as = |user: &str| {
        let mut c = home.cmd();
        c.args(["inquiry", "respond", &asked, "-p", "n=1", "--json"])
            .env("USER", user);
        crate::Run::from(c.output().unwrap())
    };
    respond_as("mallory")
        .code(2)
        .stderr_has("is for carol only, not user mallory");
    assert_eq!(respond_as("carol").ok().json()["result"], json!({"sum": 2}));
}

/// Through the API: answered by a token (recorded as such) after the
/// server was killed with -9 while the workflow waited; a wrong answer is
/// a 422 naming the path; an unanswered one expires on the server's own.
#[test]
fn an_inquiry_is_answered_through_the_api_across_a_kill_9() {
    let site = Site::new();
    std::fs::write(
        site.actions.join("ask.yaml"),
        ASK.replace("TTL", "1h").replace("ADD", "add.wat"),
    )
    .unwrap();
    std::fs::write(
        site.actions.join("hurry.yaml"),
        ASK.replace("TTL", "1s").replace("ADD", "add.wat"),
    )
    .unwrap();
    let srv = site.serve(&[]);
    let id = srv.start(json!({"action": "ask"}));
    srv.wait_status(&id, &["paused"]);
    let open = srv.get("/api/v1/inquiries");
    assert_eq!(open.as_array().unwrap().len(), 1, "{open}");
    let inquiry = open[0]["id"].as_str().unwrap().to_owned();
    drop(srv); // kill -9

    let srv = site.serve(&[]);
    assert_eq!(
        srv.get(&format!("/api/v1/inquiries/{inquiry}"))["status"],
        "pending"
    );
    let respond = |body| srv.post(&format!("/api/v1/inquiries/{inquiry}/respond"), body);
    let (status, v) = respond(json!({"response": {"n": "x"}}));
    assert_eq!(status, 422, "{v}");
    assert!(v["error"].as_str().unwrap().contains("/n:"), "{v}");
    let (status, v) = respond(json!({"response": {"n": 9}}));
    assert_eq!(status, 200, "{v}");
    let done = srv.wait_done(&id);
    assert_eq!(
        (&done["status"], &done["result"]),
        (&json!("succeeded"), &json!({"sum": 10})),
        "{done}"
    );
    let answered = srv.get(&format!("/api/v1/executions/{inquiry}"));
    assert_eq!(answered["logs"][0]["message"], "answered by token ci");
    assert_eq!(respond(json!({"response": {"n": 9}})).0, 409);

    // Nobody answers: the server expires it and the workflow fails.
    let id = srv.start(json!({"action": "hurry"}));
    let at = Instant::now();
    let done = srv.wait_done(&id);
    assert!(at.elapsed() < Duration::from_secs(30));
    assert_eq!(done["status"], "failed", "{done}");
    assert!(done.to_string().contains("inquiry-timeout"), "{done}");
}

/// A nested workflow that asks (`inner.yaml`), in a workflow that adds 1
/// to the answer and, beside it, runs a slow step (`SLOW` ms).
const INNER: &str = r#"
version: 1
tasks:
  approve:
    action: core.ask
    input:
      schema: { type: object, properties: { n: { type: integer } }, required: [n] }
      ttl: TTL
    next: [{ when: "{{ succeeded() }}", publish: { n: "{{ result.n }}" } }]
output: { n: "{{ ctx.n }}" }
"#;

const OUTER: &str = r#"
version: 1
input: [{ name: dir, type: string, default: "." }]
tasks:
  ask:
    action: inner.yaml
    next: [{ when: "{{ succeeded() }}", publish: { n: "{{ result.n }}" }, do: add }]
  add:
    action: ADD
    input: { a: "{{ ctx.n }}", b: 1 }
    next: [{ publish: { sum: "{{ result }}" } }]
  slow:
    action: STEP
    input: { req: { name: slow, dir: "{{ input.dir }}", value: 1, sleep-ms: SLOW } }
    grants: { write: ["{{ input.dir }}"] }
output: { sum: "{{ ctx.sum }}" }
"#;

fn nested(
    dir: &std::path::Path,
    ttl: &str,
    add: &str,
    step: &str,
    slow_ms: u32,
) -> std::path::PathBuf {
    std::fs::write(dir.join("inner.yaml"), INNER.replace("TTL", ttl)).unwrap();
    let outer = dir.join("outer.yaml");
    let text = OUTER
        .replace("ADD", add)
        .replace("STEP", step)
        .replace("SLOW", &slow_ms.to_string());
    std::fs::write(&outer, text).unwrap();
    outer
}

crate::on_both_stores!(a_nested_workflows_inquiry_pauses_and_resumes_the_outermost);

/// `core.ask` in a nested workflow: both workflows pause; the answer goes
/// on with the outermost, which resumes the nested one; unanswered past
/// its ttl, the nested task fails and so does the outer; a paused outer
/// canceled takes its nested workflow and question with it.
fn a_nested_workflows_inquiry_pauses_and_resumes_the_outermost(kind: StoreKind) {
    let home = Home::with_store(kind);
    let dir = tempfile::tempdir().unwrap();
    let marks = tempfile::tempdir().unwrap();
    let step = crate::support::built("tests/fixtures/step");
    let run_outer = |ttl: &str| {
        let outer = nested(dir.path(), ttl, s(&wat("add")), s(&step), 0);
        let paused = home.run(&[
            "run",
            s(&outer),
            "-p",
            &format!("dir={}", s(marks.path())),
            "--allow-write",
            s(marks.path()),
            "--json",
        ]);
        paused.code(1).stderr_has("paused");
        paused.json()["id"].as_str().unwrap().to_owned()
    };
    let id = run_outer("1h");
    let tree = home.tree(&id);
    assert_eq!(tree["status"], "paused", "{tree}");
    let inner = tree["children"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["task"] == "ask")
        .unwrap();
    assert_eq!(inner["status"], "paused", "{tree}");
    let open = home.run(&["inquiry", "list", "--json"]).ok().json();
    assert_eq!(open[0]["workflow"], inner["id"], "{open}");
    let asked = open[0]["id"].as_str().unwrap().to_owned();
    let done = home
        .run(&["inquiry", "respond", &asked, "-p", "n=41", "--json"])
        .ok()
        .json();
    assert_eq!(
        (&done["id"], &done["status"]),
        (&json!(id), &json!("succeeded")),
        "{done}"
    );
    assert_eq!(done["result"], json!({"sum": 42}));

    let id = run_outer("1s");
    std::thread::sleep(Duration::from_millis(1300));
    let failed = home.run(&["execution", "resume", &id, "--json"]);
    failed.code(1);
    let failed = failed.json();
    assert_eq!(failed["status"], "failed", "{failed}");
    assert!(failed.to_string().contains("inquiry-timeout"), "{failed}");

    let id = run_outer("1h");
    home.run(&["execution", "cancel", &id]).ok();
    let tree = home.tree(&id);
    let statuses: Vec<&Value> = tree["children"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["task"] == "ask")
        .flat_map(|c| [&c["status"], &c["children"][0]["status"]])
        .collect();
    assert_eq!(statuses, [&json!("canceled"), &json!("canceled")], "{tree}");
    assert_eq!(
        home.run(&["inquiry", "list", "--json"]).ok().json(),
        json!([])
    );
}

/// Through the API while the outer workflow still runs another branch:
/// the answer reaches the nested workflow when that branch ends.
#[test]
fn a_nested_inquiry_answered_while_a_branch_runs_goes_on_through_the_api() {
    let site = Site::new();
    let step = site.actions.join("step.wasm");
    nested(&site.actions, "1h", "add.wat", s(&step), 3000);
    let srv = site.serve(&[]);
    let id = srv.start(json!({
        "action": "outer",
        "input": {"dir": s(&site.marks)},
        "grants": {"write": [s(&site.marks)]},
    }));
    let at = Instant::now();
    let asked = loop {
        let open = srv.get("/api/v1/inquiries");
        if let Some(q) = open.as_array().unwrap().first() {
            break q["id"].as_str().unwrap().to_owned();
        }
        assert!(at.elapsed() < Duration::from_secs(30), "never asked");
        std::thread::sleep(Duration::from_millis(20));
    };
    assert_eq!(
        srv.get(&format!("/api/v1/executions/{id}"))["status"],
        "running"
    );
    let (status, v) = srv.post(
        &format!("/api/v1/inquiries/{asked}/respond"),
        json!({"response": {"n": 1}}),
    );
    assert_eq!(status, 200, "{v}");
    let done = srv.wait_done(&id);
    assert_eq!(
        (&done["status"], &done["result"]),
        (&json!("succeeded"), &json!({"sum": 2})),
        "{done}"
    );
}
