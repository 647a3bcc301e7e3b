//! `core.ask`: a workflow waits for a person's answer, durably. From the
//! CLI on both stores, and through the API across a `kill -9`.

use crate::server::Site;
use crate::{s, wat, Home, StoreKind};
use serde_json::json;
use std::time::{Duration, Instant};

crate::on_both_stores!(an_inquiry_pauses_its_workflow_until_it_is_answered);

/// Ask for `n`, then add 1 to it; `TTL` is the question's ttl.
const ASK: &str = r#"
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
    next: [{ publish: { n: "{{ result.n }}" }, do: add }]
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
