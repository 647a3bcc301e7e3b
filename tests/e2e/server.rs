//! `wasmflow serve`: the real server process on a loopback port, driven
//! over HTTP (and by the CLI's --server); restarts with SIGKILL and
//! SIGTERM really kill it. Most of the suite runs on both stores
//! (`name::sled`, `name::postgres`); the rest is about sled's one-opener
//! lock, or about the browser and the server's environment, which no
//! backend changes.

use crate::{s, support, Home, StoreKind};
use serde_json::{json, Value};
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// A directory of actions for a server: `add` (WAT), `step` (Python),
/// `chain` (a workflow of steps), and a webhook file.
pub struct Site {
    pub home: Home,
    pub actions: PathBuf,
    pub marks: PathBuf,
    pub token: String,
    pub read_only: String,
}

pub const HOOK_SECRET: &str = "s3cret-for-the-deploy-hook";

const CHAIN: &str = r#"
version: 1
description: Two steps, the second after the first.
input:
  - { name: dir, type: string, description: where the steps leave marker files }
  - { name: start, type: s64, default: 1 }
grants: { write: ["{{ input.dir }}"] }
tasks:
  first:
    action: step.wasm
    input: { req: { name: first, dir: "{{ input.dir }}", value: "{{ input.start }}", sleep-ms: 200 } }
    next: [{ when: "{{ succeeded() }}", publish: { first: "{{ result.value }}" }, do: second }]
  second:
    action: step.wasm
    input: { req: { name: second, dir: "{{ input.dir }}", value: "{{ ctx.first }}" } }
    next: [{ publish: { second: "{{ result.value }}" } }]
output: { value: "{{ ctx.second }}" }
"#;

impl Site {
    pub fn new() -> Self {
        Self::on(StoreKind::Sled)
    }

    /// A site whose store is of `kind`.
    pub fn on(kind: StoreKind) -> Self {
        let home = Home::with_store(kind);
        let actions = home.path().join("actions");
        let marks = home.path().join("marks");
        std::fs::create_dir_all(&actions).unwrap();
        std::fs::create_dir_all(&marks).unwrap();
        std::fs::copy(support::fixture("wat/add.wat"), actions.join("add.wat")).unwrap();
        std::fs::copy(
            support::built("tests/fixtures/step"),
            actions.join("step.wasm"),
        )
        .unwrap();
        std::fs::write(actions.join("chain.yaml"), CHAIN).unwrap();
        std::fs::write(
            home.path().join("hooks.yaml"),
            "deploy:\n  action: add\n  input: { a: \"{{ body.n }}\", b: 100 }\n  secret_env: WF_HOOK\n",
        )
        .unwrap();
        let token = home
            .run(&["token", "create", "--name", "ci"])
            .ok()
            .stdout
            .trim()
            .to_owned();
        let read_only = home
            .run(&["token", "create", "--name", "viewer", "--read-only"])
            .ok()
            .stdout
            .trim()
            .to_owned();
        Self {
            home,
            actions,
            marks,
            token,
            read_only,
        }
    }

    pub fn serve(&self, extra: &[&str]) -> Server {
        let mut child = self
            .home
            .cmd()
            .args(["serve", "--listen", "127.0.0.1:0", "--actions"])
            .arg(&self.actions)
            .args(["--webhooks", s(&self.home.path().join("hooks.yaml"))])
            .args(["--allow-write", s(&self.marks)])
            // On a shared store a killed server's work waits for its lease
            // to run out: a short one, so the tests wait seconds.
            .args(
                if self.home.store.is_some() && !extra.contains(&"--lease") {
                    &["--lease", "3s", "--heartbeat", "500ms"][..]
                } else {
                    &[][..]
                },
            )
            .args(extra)
            .env("WF_HOOK", HOOK_SECRET)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let (line, log) = started(&mut child, "serving ");
        let url = url_in(&line, "serving ");
        Server {
            child,
            url,
            token: self.token.clone(),
            log,
            http: http_client(),
        }
    }
}

/// `wasmflow serve --listen 127.0.0.1:0 ARGS...` on `home`, called with
/// `token` (made before: the server holds a sled home).
pub fn serve_home(home: &Home, token: &str, args: &[&str]) -> Server {
    serve_home_env(home, token, args, &[])
}

/// [`serve_home`] with these environment variables set.
pub fn serve_home_env(home: &Home, token: &str, args: &[&str], env: &[(&str, &str)]) -> Server {
    let mut child = home
        .cmd()
        .args(["serve", "--listen", "127.0.0.1:0"])
        .args(args)
        .envs(env.iter().copied())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let (line, log) = started(&mut child, "serving ");
    Server {
        child,
        url: url_in(&line, "serving "),
        token: token.trim().to_owned(),
        log,
        http: http_client(),
    }
}

/// Read `child`'s stderr until a line containing `marker` (the process
/// is ready), then keep collecting it in the background. The line, and
/// the log so far and to come.
pub fn started(child: &mut Child, marker: &str) -> (String, Arc<Mutex<String>>) {
    let log = Arc::new(Mutex::new(String::new()));
    let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
    let mut ready = None;
    for line in lines.by_ref() {
        let line = line.unwrap();
        log.lock().unwrap().push_str(&format!("{line}\n"));
        if line.contains(marker) {
            ready = Some(line);
            break;
        }
    }
    let ready =
        ready.unwrap_or_else(|| panic!("the process did not start:\n{}", log.lock().unwrap()));
    let sink = log.clone();
    std::thread::spawn(move || {
        for l in lines.map_while(Result::ok) {
            sink.lock().unwrap().push_str(&format!("{l}\n"));
        }
    });
    (ready, log)
}

/// The server's address in its line `... MARKER http://ADDR ...` (a colon
/// right after it is the sentence's, not the address's).
pub fn url_in(line: &str, marker: &str) -> String {
    line.split(marker)
        .nth(1)
        .and_then(|rest| rest.split_whitespace().next())
        .unwrap_or_else(|| panic!("no address after {marker:?} in {line:?}"))
        .trim_end_matches(':')
        .to_owned()
}

/// Wait until a process's captured stderr (`started`'s log) holds
/// `needle`; fail with the log past `within`.
pub fn wait_for_line(log: &Arc<Mutex<String>>, needle: &str, within: Duration) {
    let since = Instant::now();
    while !log.lock().unwrap().contains(needle) {
        assert!(since.elapsed() < within, "{}", log.lock().unwrap());
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// An HTTP client for the tests. reqwest is built without a TLS crypto
/// provider of its own (as in wasmflow), so the test process installs one.
pub fn http_client() -> reqwest::blocking::Client {
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::blocking::Client::builder()
        .timeout(Duration::from_secs(60))
        .build()
        .unwrap()
}

pub struct Server {
    pub child: Child,
    pub url: String,
    pub token: String,
    pub log: Arc<Mutex<String>>,
    http: reqwest::blocking::Client,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Server {
    pub fn call(
        &self,
        method: &str,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> (u16, Value) {
        let url = format!("{}{path}", self.url);
        let mut req = match method {
            "GET" => self.http.get(&url),
            "POST" => self.http.post(&url),
            other => panic!("{other}"),
        };
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        if let Some(b) = body {
            req = req.json(&b);
        }
        let resp = req.send().unwrap();
        let status = resp.status().as_u16();
        let text = resp.text().unwrap();
        let v = serde_json::from_str(&text).unwrap_or(Value::String(text));
        (status, v)
    }

    pub fn get(&self, path: &str) -> Value {
        let (status, v) = self.call("GET", path, Some(&self.token), None);
        assert_eq!(status, 200, "GET {path}: {v}");
        v
    }

    pub fn post(&self, path: &str, body: Value) -> (u16, Value) {
        self.call("POST", path, Some(&self.token), Some(body))
    }

    /// POST an execution; its id (asserting 202).
    pub fn start(&self, body: Value) -> String {
        let (status, v) = self.post("/api/v1/executions", body.clone());
        assert_eq!(status, 202, "POST {body}: {v}");
        v["id"].as_str().unwrap().to_owned()
    }

    pub fn wait_status(&self, id: &str, want: &[&str]) -> Value {
        let start = Instant::now();
        loop {
            let r = self.get(&format!("/api/v1/executions/{id}"));
            if want.contains(&r["status"].as_str().unwrap()) {
                return r;
            }
            assert!(
                start.elapsed() < Duration::from_secs(90),
                "{id} never became {want:?}: {r}\nserver log:\n{}",
                self.log.lock().unwrap()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    pub fn wait_done(&self, id: &str) -> Value {
        self.wait_status(id, &["succeeded", "failed", "timed_out", "canceled"])
    }

    fn signal(&self, sig: &str) {
        let ok = std::process::Command::new("kill")
            .args([sig, &self.child.id().to_string()])
            .status()
            .unwrap()
            .success();
        assert!(ok);
    }

    /// SIGTERM, and the server's exit status and stderr.
    pub fn terminate(mut self) -> (i32, String) {
        self.signal("-TERM");
        let status = self.child.wait().unwrap();
        // Let the drain thread catch the last lines.
        std::thread::sleep(Duration::from_millis(100));
        (
            status.code().unwrap_or(-1),
            self.log.lock().unwrap().clone(),
        )
    }
}

// The server's contract holds whichever store is behind it.
crate::on_both_stores!(
    the_api_runs_lists_pages_filters_and_describes,
    tokens_and_grants_guard_every_call,
    logs_follow_a_running_execution_and_cancel_rerun_replay_work,
    a_full_queue_answers_429,
    a_killed_server_finishes_every_accepted_execution_exactly_once,
    sigterm_drains_and_the_rest_resume_on_the_next_start,
    a_bounded_load_is_accepted_and_every_execution_runs,
    retention_deletes_old_executions_while_serving
);

fn step(marks: &Path, name: &str, sleep_ms: u64) -> Value {
    json!({
        "action": "step",
        "input": {"req": {"name": name, "dir": s(marks), "sleep-ms": sleep_ms}},
        "grants": {"write": [s(marks)]},
    })
}

fn markers(marks: &Path, prefix: &str) -> usize {
    std::fs::read_dir(marks)
        .unwrap()
        .filter(|e| {
            e.as_ref()
                .unwrap()
                .file_name()
                .to_string_lossy()
                .starts_with(prefix)
        })
        .count()
}

fn the_api_runs_lists_pages_filters_and_describes(kind: StoreKind) {
    let site = Site::on(kind);
    let srv = site.serve(&["--workers", "2"]);
    let health = srv.call("GET", "/healthz", None, None);
    assert_eq!(health.0, 200);
    assert_eq!(health.1["status"], "ok");

    // Five runs of `add`, and one failing input.
    let ids: Vec<String> = (0..5)
        .map(|i| srv.start(json!({"action": "add", "input": {"a": i, "b": 1}})))
        .collect();
    for (i, id) in ids.iter().enumerate() {
        let r = srv.wait_done(id);
        assert_eq!(r["status"], "succeeded", "{r}");
        assert_eq!(r["result"], json!(i + 1));
        assert_eq!(r["name"], "add");
        // `server/SLOT`; on a shared store `PROCESS/SLOT`.
        let worker = r["worker"].as_str().unwrap();
        let (process, _) = worker.rsplit_once('/').unwrap();
        assert!(
            kind == StoreKind::Postgres || process == "server",
            "{worker}"
        );
    }

    // Paging: newest first, two at a time, `next_before` until the end.
    let mut seen = Vec::new();
    let mut before = String::new();
    loop {
        let page = srv.get(&format!(
            "/api/v1/executions?limit=2&action=add&before={before}"
        ));
        for e in page["executions"].as_array().unwrap() {
            seen.push(e["id"].as_str().unwrap().to_owned());
        }
        match page["next_before"].as_str() {
            Some(b) => before = b.to_owned(),
            None => break,
        }
    }
    let mut newest_first = ids.clone();
    newest_first.reverse();
    assert_eq!(seen, newest_first);
    let ok = srv.get("/api/v1/executions?status=succeeded&limit=100");
    assert_eq!(ok["executions"].as_array().unwrap().len(), 5);
    let failed = srv.get("/api/v1/executions?status=failed");
    assert!(failed["executions"].as_array().unwrap().is_empty());

    // 422s name what was wrong.
    let (status, v) = srv.post(
        "/api/v1/executions",
        json!({"action": "add", "input": {"a": "x", "b": 1}}),
    );
    assert_eq!(status, 422, "{v}");
    let msg = v["error"].as_str().unwrap();
    assert!(msg.contains("a") && msg.contains("u32"), "{msg}");
    assert_eq!(
        srv.call(
            "GET",
            "/api/v1/executions?status=bogus",
            Some(&srv.token),
            None
        )
        .0,
        422
    );
    assert_eq!(
        srv.call("GET", "/api/v1/executions?limit=0", Some(&srv.token), None)
            .0,
        422
    );
    let (status, v) = srv.post("/api/v1/executions", json!({"action": "add", "inptu": {}}));
    assert_eq!(status, 422, "unknown body fields are refused: {v}");
    // 404s.
    assert_eq!(
        srv.call(
            "GET",
            "/api/v1/executions/01M8EZZZZZZZZZZZZZZZZZZZZZ",
            Some(&srv.token),
            None
        )
        .0,
        404
    );
    assert_eq!(
        srv.post("/api/v1/executions", json!({"action": "nope"})).0,
        404
    );
    assert_eq!(
        srv.call("GET", "/api/v1/actions/nope", Some(&srv.token), None)
            .0,
        404
    );

    // Actions: signature and JSON Schema from the WIT; the workflow's input.
    let actions = srv.get("/api/v1/actions");
    let names: Vec<_> = actions
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        [
            "add",
            "chain",
            "core.echo",
            "core.error",
            "core.http",
            "core.local",
            "core.noop",
            "core.pause",
            "core.uuid",
            "step"
        ]
    );
    let add = srv.get("/api/v1/actions/add");
    assert!(add["signature"]
        .as_str()
        .unwrap()
        .contains("run: func(a: u32, b: u32) -> u32"));
    assert_eq!(add["input_schema"]["properties"]["a"]["type"], "integer");
    let chain = srv.get("/api/v1/actions/chain");
    assert_eq!(chain["kind"], "workflow");
    assert_eq!(chain["input_schema"]["required"], json!(["dir"]));
    assert_eq!(chain["docs"], "Two steps, the second after the first.");

    // A workflow, and its tree.
    let wf = srv.start(json!({"action": "chain", "input": {"dir": s(&site.marks), "start": 5}}));
    let r = srv.wait_done(&wf);
    assert_eq!(r["status"], "succeeded", "{r}");
    assert_eq!(r["result"]["value"], 7);
    assert_eq!(r["name"], "chain");
    // Recorded as the catalog names it, its file beside; and who asked.
    assert_eq!(r["action"], "chain", "{r}");
    assert!(
        r["source"]
            .as_str()
            .unwrap()
            .ends_with("/actions/chain.yaml"),
        "{r}"
    );
    assert_eq!(r["started_by"], json!({"token": "ci"}));
    let tree = srv.get(&format!("/api/v1/executions/{wf}?tree=true"));
    let tasks: Vec<_> = tree["children"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["task"].as_str().unwrap())
        .collect();
    assert_eq!(tasks, ["first", "second"]);
    // Its graph: the workflow's tasks with their state, and transitions.
    let graph = srv.get(&format!("/api/v1/executions/{wf}/graph"));
    let nodes: Vec<(&str, &str, u64)> = graph["tasks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| {
            (
                t["name"].as_str().unwrap(),
                t["state"].as_str().unwrap(),
                t["attempts"].as_u64().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        nodes,
        [("first", "succeeded", 1), ("second", "succeeded", 1)],
        "{graph}"
    );
    assert_eq!(graph["tasks"][1]["execution"], tree["children"][1]["id"]);
    assert_eq!(
        graph["transitions"],
        json!([{"from": "first", "to": "second", "when": "{{ succeeded() }}"}])
    );
    assert_eq!(graph["start"], json!(["first"]));
    let (status, v) = srv.call(
        "GET",
        &format!("/api/v1/executions/{}/graph", ids[0]),
        Some(&srv.token),
        None,
    );
    assert_eq!(status, 422, "an action has no graph: {v}");
    // A time range: ages or RFC 3339 times, checked.
    let count = |q: &str| {
        srv.get(&format!("/api/v1/executions?limit=100&{q}"))["executions"]
            .as_array()
            .unwrap()
            .len()
    };
    assert_eq!(count("since=1h"), 6);
    assert_eq!(count("since=2999-01-01T00:00:00Z"), 0);
    assert_eq!(count("until=2000-01-01T00:00:00Z"), 0);
    assert_eq!(count("until=2999-01-01T00:00:00Z&since=1h"), 6);
    // Several statuses at once.
    assert_eq!(count("status=failed,succeeded"), 6);
    assert_eq!(count("status=failed,canceled"), 0);
    let (status, v) = srv.call(
        "GET",
        "/api/v1/executions?since=yesterday-ish",
        Some(&srv.token),
        None,
    );
    assert_eq!(status, 422, "{v}");
    assert!(
        v["error"]
            .as_str()
            .unwrap()
            .starts_with("since yesterday-ish: expected an age"),
        "{v}"
    );
    let by_name = srv.get("/api/v1/executions?action=chain");
    assert_eq!(by_name["executions"][0]["id"], wf.as_str());
    // Re-run from a task: what ran before it is reused, the rest runs live.
    let (status, v) = srv.post(
        &format!("/api/v1/executions/{wf}/re-run"),
        json!({"from": "second"}),
    );
    assert_eq!(status, 202, "{v}");
    let again = srv.wait_done(v["id"].as_str().unwrap());
    assert_eq!(again["status"], "succeeded", "{again}");
    assert_eq!(again["rerun_of"], wf.as_str());
    assert_eq!(again["result"]["value"], 7);
    assert_eq!(
        markers(&site.marks, "first."),
        1,
        "`first` was reused, not run again"
    );
    assert_eq!(markers(&site.marks, "second."), 2);
    let (status, v) = srv.post(
        &format!("/api/v1/executions/{wf}/re-run"),
        json!({"from": "nope"}),
    );
    assert_eq!(status, 422, "{v}");

    // Metrics and the OpenAPI document (generated from the handlers).
    let metrics = srv.call("GET", "/metrics", None, None).1;
    let metrics = metrics.as_str().unwrap();
    assert!(
        metrics.contains("wasmflow_executions_accepted_total 7"),
        "{metrics}"
    );
    assert!(
        metrics.contains("wasmflow_executions_ended_total{status=\"succeeded\"} 7"),
        "{metrics}"
    );
    assert!(
        metrics.contains("wasmflow_execution_duration_seconds_count{action=\"add\"} 5"),
        "{metrics}"
    );
    let doc = srv.call("GET", "/api/v1/openapi.json", None, None).1;
    for path in [
        "/api/v1/executions",
        "/api/v1/executions/{id}/logs",
        "/api/v1/executions/{id}/re-run",
        "/api/v1/executions/{id}/replay",
        "/api/v1/queue",
        "/api/v1/webhooks/{name}",
        "/api/v1/actions/{name}",
    ] {
        assert!(doc["paths"].get(path).is_some(), "OpenAPI lacks {path}");
    }
    assert_eq!(
        doc["components"]["securitySchemes"]["bearer"]["scheme"],
        "bearer"
    );
}

fn tokens_and_grants_guard_every_call(kind: StoreKind) {
    let site = Site::on(kind);
    let srv = site.serve(&["--workers", "1"]);
    let add = json!({"action": "add", "input": {"a": 1, "b": 2}});
    let (status, v) = srv.call("POST", "/api/v1/executions", None, Some(add.clone()));
    assert_eq!(status, 401, "{v}");
    let (status, _) = srv.call(
        "POST",
        "/api/v1/executions",
        Some("wft_wrong"),
        Some(add.clone()),
    );
    assert_eq!(status, 401);
    assert_eq!(srv.call("GET", "/api/v1/queue", None, None).0, 401);
    // Read-only: reads, never runs.
    assert_eq!(
        srv.call("GET", "/api/v1/executions", Some(&site.read_only), None)
            .0,
        200
    );
    let (status, v) = srv.call(
        "POST",
        "/api/v1/executions",
        Some(&site.read_only),
        Some(add.clone()),
    );
    assert_eq!(status, 403, "{v}");
    assert!(v["error"].as_str().unwrap().contains("read-only"));
    // Nothing of the refused calls ran.
    assert!(srv.get("/api/v1/executions")["executions"]
        .as_array()
        .unwrap()
        .is_empty());

    // Grants beyond the server's: 403, naming the grant.
    let (status, v) = srv.post(
        "/api/v1/executions",
        json!({"action": "step", "input": {"req": {"name": "x", "dir": "/etc"}}, "grants": {"write": ["/etc"]}}),
    );
    assert_eq!(status, 403, "{v}");
    assert!(v["error"].as_str().unwrap().contains("/etc"), "{v}");
    // Without the grant the action runs, and is denied the directory.
    let id = srv
        .start(json!({"action": "step", "input": {"req": {"name": "x", "dir": s(&site.marks)}}}));
    let r = srv.wait_done(&id);
    assert_eq!(r["status"], "failed", "{r}");
    assert_eq!(markers(&site.marks, "x."), 0);
    // With it, it writes its marker.
    let id = srv.start(step(&site.marks, "y", 0));
    assert_eq!(srv.wait_done(&id)["status"], "succeeded");
    assert_eq!(markers(&site.marks, "y."), 1);

    // A revoked token stops working at once, server still running.
    site.home.run(&["token", "revoke", "viewer"]).ok();
    assert_eq!(
        srv.call("GET", "/api/v1/executions", Some(&site.read_only), None)
            .0,
        401
    );

    // Webhooks: their own secret, no API token.
    let body = br#"{"n": 23}"#.to_vec();
    let sig = wasmflow_server::webhooks::sign(HOOK_SECRET.as_bytes(), &body);
    let hook = |sig: &str| {
        http_client()
            .post(format!("{}/api/v1/webhooks/deploy", srv.url))
            .header("X-Hub-Signature-256", sig)
            .body(body.clone())
            .send()
            .unwrap()
    };
    let resp = hook(&sig);
    assert_eq!(resp.status().as_u16(), 202);
    let id = resp.json::<Value>().unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let r = srv.wait_done(&id);
    assert_eq!(r["input"], json!({"a": 23, "b": 100}));
    assert_eq!(r["result"], 123);
    assert_eq!(r["started_by"], json!({"webhook": "deploy"}));
    let forged = wasmflow_server::webhooks::sign(b"not the secret at all", &body);
    assert_eq!(hook(&forged).status().as_u16(), 401);
    assert_eq!(hook("").status().as_u16(), 401);
    let (status, _) = srv.call("POST", "/api/v1/webhooks/nope", None, Some(json!({})));
    assert_eq!(status, 404);
}

fn logs_follow_a_running_execution_and_cancel_rerun_replay_work(kind: StoreKind) {
    let site = Site::on(kind);
    let srv = site.serve(&["--workers", "2"]);

    // SSE: lines arrive while the step runs, then `end`.
    let id = srv.start(step(&site.marks, "slow", 1200));
    let resp = http_client()
        .get(format!("{}/api/v1/executions/{id}/logs", srv.url))
        .bearer_auth(&srv.token)
        .send()
        .unwrap();
    assert_eq!(resp.status().as_u16(), 200);
    assert!(resp.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/event-stream"));
    let mut events = Vec::new();
    let mut status_at_first_log = None;
    let mut event = String::new();
    for line in BufReader::new(resp).lines() {
        let line = line.unwrap();
        if let Some(e) = line.strip_prefix("event: ") {
            event = e.to_owned();
        } else if let Some(d) = line.strip_prefix("data: ") {
            let data: Value = serde_json::from_str(d).unwrap();
            if event == "log" && status_at_first_log.is_none() {
                status_at_first_log =
                    Some(srv.get(&format!("/api/v1/executions/{id}"))["status"].clone());
            }
            events.push((event.clone(), data));
            if event == "end" {
                break;
            }
        }
    }
    assert_eq!(
        status_at_first_log,
        Some(json!("running")),
        "the stream was live"
    );
    let logs: Vec<_> = events
        .iter()
        .filter(|(e, _)| e == "log")
        .map(|(_, d)| d["message"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(logs.first().unwrap(), "slow: waiting 1200 ms");
    assert_eq!(logs.last().unwrap(), "slow: done waiting");
    assert_eq!(logs.len(), 6, "{logs:?}");
    assert_eq!(events.last().unwrap().1["status"], "succeeded");
    // Following an ended execution replays its lines from the record.
    let again = http_client()
        .get(format!("{}/api/v1/executions/{id}/logs", srv.url))
        .bearer_auth(&srv.token)
        .send()
        .unwrap()
        .text()
        .unwrap();
    assert_eq!(again.matches("event: log").count(), 6);
    assert!(again.contains("event: end"));

    // The queue shows who runs where, and for how long.
    let long = srv.start(step(&site.marks, "long", 20_000));
    srv.wait_status(&long, &["running"]);
    let q = srv.get("/api/v1/queue");
    let running = q["running"].as_array().unwrap();
    assert_eq!(running.len(), 1, "{q}");
    assert_eq!(running[0]["id"], long.as_str());
    assert!(running[0]["worker"].is_u64());
    assert!(running[0]["running_ms"].is_u64());
    // Cancel it: canceled well before its 20 s, and cancel again is 409.
    let t = Instant::now();
    let (status, _) = srv.post(&format!("/api/v1/executions/{long}/cancel"), json!({}));
    assert_eq!(status, 202);
    assert_eq!(srv.wait_done(&long)["status"], "canceled");
    assert!(t.elapsed() < Duration::from_secs(10));
    assert_eq!(
        srv.post(&format!("/api/v1/executions/{long}/cancel"), json!({}))
            .0,
        409
    );

    // Re-run with an override: exactly that field changes, grants stay.
    let first = srv.start(step(&site.marks, "rr", 0));
    srv.wait_done(&first);
    let (status, v) = srv.post(
        &format!("/api/v1/executions/{first}/re-run"),
        json!({"params": ["req.value=41"]}),
    );
    assert_eq!(status, 202, "{v}");
    let again = srv.wait_done(v["id"].as_str().unwrap());
    let orig = srv.get(&format!("/api/v1/executions/{first}"));
    assert_eq!(again["rerun_of"], first.as_str());
    assert_eq!(again["grants"], orig["grants"]);
    let mut expected = orig["input"].clone();
    expected["req"]["value"] = json!(41);
    assert_eq!(again["input"], expected);
    assert_eq!(again["result"]["value"], 42);
    let (status, v) = srv.post(
        &format!("/api/v1/executions/{first}/re-run"),
        json!({"params": ["req.value=x"]}),
    );
    assert_eq!(status, 422, "{v}");

    // Replay: reproduced from the recording, recorded with replay_of.
    let (status, v) = srv.post(&format!("/api/v1/executions/{first}/replay"), json!({}));
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["verdict"], "reproduced: identical result");
    assert_eq!(v["passed"], true);
    assert_eq!(v["record"]["replay_of"], first.as_str());
}

fn a_full_queue_answers_429(kind: StoreKind) {
    let site = Site::on(kind);
    let srv = site.serve(&["--workers", "1", "--queue-capacity", "2"]);
    let a = srv.start(step(&site.marks, "a", 20_000));
    let b = srv.start(step(&site.marks, "b", 20_000));
    let (status, v) = srv.post("/api/v1/executions", step(&site.marks, "c", 0));
    assert_eq!(status, 429, "{v}");
    assert!(v["error"].as_str().unwrap().contains("queue is full"));
    let q = srv.get("/api/v1/queue");
    assert_eq!(
        q["pending"].as_array().unwrap().len() + q["running"].as_array().unwrap().len(),
        2
    );
    // Canceling the pending one makes room.
    srv.wait_status(&a, &["running"]);
    assert_eq!(
        srv.post(&format!("/api/v1/executions/{b}/cancel"), json!({}))
            .0,
        202
    );
    assert_eq!(srv.wait_done(&b)["status"], "canceled");
    srv.start(json!({"action": "add", "input": {"a": 1, "b": 1}}));
    let metrics = srv.call("GET", "/metrics", None, None).1;
    assert!(metrics
        .as_str()
        .unwrap()
        .contains("wasmflow_executions_rejected_queue_full_total 1"));
}

fn a_killed_server_finishes_every_accepted_execution_exactly_once(kind: StoreKind) {
    let site = Site::on(kind);
    let srv = site.serve(&["--workers", "2"]);
    let ids: Vec<String> = (0..50)
        .map(|i| srv.start(step(&site.marks, &format!("k{i:02}"), 100)))
        .collect();
    drop(srv); // SIGKILL, with most of the 50 still waiting.
    let srv = site.serve(&["--workers", "2"]);
    assert!(
        srv.log
            .lock()
            .unwrap()
            .contains("queued execution(s) taken up"),
        "{}",
        srv.log.lock().unwrap()
    );
    for id in &ids {
        assert_eq!(srv.wait_done(id)["status"], "succeeded");
    }
    // One record each, none extra; the queue is empty.
    let all = srv.get("/api/v1/executions?limit=500&all=true");
    let records = all["executions"].as_array().unwrap();
    assert_eq!(records.len(), 50);
    // The queue lets an entry go once its record is on disk, a moment
    // after the record reads as ended.
    let start = Instant::now();
    loop {
        let q = srv.get("/api/v1/queue");
        let empty = q["pending"].as_array().unwrap().is_empty()
            && q["running"].as_array().unwrap().is_empty();
        if empty {
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "the queue keeps {q}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    // Each ran to completion once; at most the two that were running when
    // the process died had started before (and start over, as a new guest).
    let total = markers(&site.marks, "k");
    assert!((50..=52).contains(&total), "{total} marker files");
}

fn sigterm_drains_and_the_rest_resume_on_the_next_start(kind: StoreKind) {
    let site = Site::on(kind);
    let srv = site.serve(&["--workers", "1", "--shutdown-timeout", "300ms"]);
    let long = srv.start(step(&site.marks, "long", 3000));
    let next = srv.start(step(&site.marks, "next", 0));
    srv.wait_status(&long, &["running"]);
    let (code, log) = srv.terminate();
    assert_eq!(code, 0, "{log}");
    assert!(
        log.contains("1 running execution(s) interrupted and 1 pending"),
        "{log}"
    );
    // Recorded as interrupted; both run on the next start.
    let r = site
        .home
        .run(&["execution", "get", &long, "--json"])
        .ok()
        .json();
    assert_eq!(r["status"], "pending");
    assert!(r["logs"]
        .to_string()
        .contains("interrupted by server shutdown"));
    let srv = site.serve(&["--workers", "1"]);
    assert_eq!(srv.wait_done(&long)["status"], "succeeded");
    assert_eq!(srv.wait_done(&next)["status"], "succeeded");
    // A generous deadline lets the running one finish instead.
    let quick = srv.start(step(&site.marks, "quick", 800));
    srv.wait_status(&quick, &["running"]);
    let (code, log) = srv.terminate();
    assert_eq!(code, 0);
    assert!(log.contains("0 running execution(s) interrupted"), "{log}");
    let r = site
        .home
        .run(&["execution", "get", &quick, "--json"])
        .ok()
        .json();
    assert_eq!(r["status"], "succeeded");
}

#[test]
fn the_cli_talks_to_a_server_and_explains_the_locked_store() {
    let site = Site::new();
    let srv = site.serve(&["--workers", "2"]);
    let remote = |args: &[&str]| {
        let mut c = site.home.cmd();
        c.args(["--server", &srv.url])
            .env("WASMFLOW_TOKEN", &site.token)
            .args(args);
        crate::Run::from(c.output().unwrap())
    };
    let run = remote(&["run", "add", "-p", "a=20", "-p", "b=22"]);
    assert_eq!(run.ok().stdout.trim(), "42");
    run.stderr_has("queued on");
    let run = remote(&["run", "add", "-p", "a=nope"]);
    run.code(2).stderr_has("u32");
    let list = remote(&["execution", "list", "--json"]).ok().json();
    assert_eq!(list.as_array().unwrap().len(), 1);
    let filtered = remote(&[
        "execution",
        "list",
        "--json",
        "--status",
        "failed,succeeded",
        "--since",
        "1h",
    ]);
    assert_eq!(filtered.ok().ids().len(), 1);
    let id = list[0]["id"].as_str().unwrap().to_owned();
    let got = remote(&["execution", "get", &id, "--json"]).ok().json();
    assert_eq!(got["result"], 42);
    let rerun = remote(&["execution", "re-run", &id, "-p", "b=0"]);
    assert_eq!(rerun.ok().stdout.trim(), "20");
    // A re-run may add grants, within the server's own.
    let granted = remote(&[
        "execution",
        "re-run",
        &id,
        "--allow-write",
        s(&site.marks),
        "--json",
    ]);
    let granted = granted.ok().json();
    assert_eq!(
        granted["grants"]["write"][0]["host"],
        s(&site.marks),
        "{granted}"
    );
    remote(&["execution", "re-run", &id, "--allow-exec", "qemu-img"])
        .code(2)
        .stderr_has("grants beyond what this server allows");
    remote(&["execution", "replay", &id]).ok();
    // The server's catalog, listed and described.
    let actions = remote(&["action", "list", "--json"]).ok().json();
    let names: Vec<&str> = actions
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["name"].as_str().unwrap())
        .collect();
    assert!(
        names.contains(&"add") && names.contains(&"chain"),
        "{actions}"
    );
    let add = remote(&["action", "get", "add", "--json"]).ok().json();
    assert_eq!(add["input_schema"]["type"], "object", "{add}");
    // --async: queued, its id printed, followed to its end.
    let queued = remote(&["run", "add", "a=1", "b=1", "--async"]);
    let queued_id = queued.ok().stdout.trim().to_owned();
    remote(&["execution", "tail", &queued_id])
        .ok()
        .stderr_has(&format!("execution {queued_id} succeeded"));
    let wf = remote(&["run", "chain", "-p", &format!("dir={}", s(&site.marks))]);
    assert_eq!(wf.ok().json()["value"], 3);
    let wf_id = remote(&["execution", "list", "--json", "-n", "1"])
        .ok()
        .json()[0]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let tree = remote(&["execution", "get", &wf_id, "--tree"])
        .ok()
        .stdout
        .clone();
    assert!(tree.contains("first") && tree.contains("second"), "{tree}");
    // Without --server, the store is the server's: reads are answered by
    // the server process, the same records as through the API...
    let local = site.home.run(&["execution", "list", "--json", "-n", "100"]);
    let remote_list = remote(&["execution", "list", "--json", "-n", "100"]);
    assert_eq!(local.ok().ids(), remote_list.ok().ids());
    site.home.run(&["execution", "get", &wf_id, "--tree"]).ok();
    // Following through the server: an ended workflow's end, at once.
    remote(&["execution", "tail", &wf_id])
        .ok()
        .stderr_has(&format!("execution {wf_id} succeeded"));
    remote(&["execution", "logs", &id]).ok();
    // ...and a write says how to reach it.
    site.home
        .run(&["run", s(&site.actions.join("add.wat")), "a=1", "b=1"])
        .code(2)
        .stderr_has("--server URL");
    // Without a token: 401 explained, exit 2.
    let mut c = site.home.cmd();
    c.args(["--server", &srv.url, "execution", "list"])
        .env_remove("WASMFLOW_TOKEN");
    crate::Run::from(c.output().unwrap())
        .code(2)
        .stderr_has("401");
}

#[test]
fn the_web_ui_reruns_with_an_edited_parameter_in_chromium() {
    let site = Site::new();
    // A name longer than any screen is wide: the pages must still fit.
    let long = "provision-a-virtual-machine-from-the-golden-template-and-attach-its-data-disks";
    std::fs::copy(
        support::fixture("wat/add.wat"),
        site.actions.join(format!("{long}.wat")),
    )
    .unwrap();
    // A workflow waiting for an answer, for the Inquiries page.
    std::fs::write(
        site.actions.join("ask.yaml"),
        "version: 1\ntasks:\n  ask:\n    action: core.ask\n    input: { schema: { type: object, properties: { n: { type: integer } }, required: [n] } }\n    next: [{ publish: { n: \"{{ result.n }}\" }, do: add }]\n  add:\n    action: add.wat\n    input: { a: \"{{ ctx.n }}\", b: 1 }\n    next: [{ publish: { sum: \"{{ result }}\" } }]\noutput: { sum: \"{{ ctx.sum }}\" }\n",
    )
    .unwrap();
    // An action that echoes what it is given, for a secret's execution.
    std::fs::copy(
        support::built("tests/fixtures/keyed"),
        site.actions.join("keyed.wasm"),
    )
    .unwrap();
    // A rule that runs after each `chain`, for the Rules and Events pages.
    let rules = site.home.path().join("rules");
    std::fs::create_dir_all(&rules).unwrap();
    std::fs::write(
        rules.join("add.yaml"),
        "name: after-chain\ndescription: A word after every chain.\ntrigger: { type: wasmflow.execution, parameters: { action: chain, status: succeeded } }\naction: { ref: keyed, input: { key: \"\", var: \"\", program: \"\", args: [], text: \"after {{ trigger.action }}\" } }\n",
    )
    .unwrap();
    let srv = site.serve(&[
        "--workers",
        "2",
        "--allow-key",
        "system.*",
        "--rules",
        s(&rules),
    ]);
    let asking = srv.start(json!({"action": "ask"}));
    srv.wait_status(&asking, &["paused"]);
    let named = srv.start(json!({"action": long, "input": {"a": 1, "b": 2}}));
    assert_eq!(srv.wait_done(&named)["status"], "succeeded");
    let original = srv.start(json!({"action": "chain", "input": {"dir": s(&site.marks)}}));
    assert_eq!(srv.wait_done(&original)["status"], "succeeded");
    // Keys for the Keys page, set while the server runs.
    site.home
        .run(&["key", "set", "system.region", "eu-west"])
        .ok();
    site.home
        .run(&["key", "set", "system.db_password", "hunter2-ui", "--secret"])
        .ok();
    // An execution given the secret, which prints and returns it.
    let secretive = srv.start(json!({
        "action": "keyed",
        "input": {"key": "system.db_password", "var": "", "program": "", "args": [],
                  "text": "pw=((secret:system.db_password))"},
        "grants": {"key": ["system.db_password"]},
    }));
    assert_eq!(srv.wait_done(&secretive)["result"], "key=*** text=pw=***");
    // Screenshots are kept as the test's artifacts.
    let out = support::root().join("target/ui-screenshots");
    let run = crate::Run::from(
        std::process::Command::new("node")
            .arg(support::root().join("tests/browser/ui.mjs"))
            .args([&srv.url, &site.token, &original, s(&out), &secretive])
            .output()
            .unwrap(),
    );
    run.ok();
    let id = run.stdout.trim();
    let r = srv.get(&format!("/api/v1/executions/{id}"));
    assert_eq!(r["rerun_of"], original.as_str());
    assert_eq!(r["status"], "succeeded");
    assert_eq!(r["input"]["start"], 20);
    assert_eq!(r["result"]["value"], 22);
    // Answered in the browser: the workflow went on with the answer.
    let asked = srv.get(&format!("/api/v1/executions/{asking}"));
    assert_eq!(
        (&asked["status"], &asked["result"]),
        (&json!("succeeded"), &json!({"sum": 6}))
    );
    for shot in [
        "sign-in-refused.png",
        "executions.png",
        "execution-tree.png",
        "execution-graph.png",
        "actions.png",
        "keys.png",
        "inquiries.png",
        "rules.png",
        "events.png",
        "executions-phone.png",
    ] {
        let png = std::fs::read(out.join(shot)).unwrap();
        assert!(png.len() > 2000 && png.starts_with(b"\x89PNG"), "{shot}");
    }
}

/// `ab` (ApacheBench, beside htpasswd in apache2-utils) from a second
/// process: a fixed number of POSTs over keep-alive connections.
pub fn ab(url: &str, token: &str, body: &Path, n: usize, concurrency: usize) -> String {
    let out = std::process::Command::new("ab")
        .args([
            "-q",
            "-k",
            "-n",
            &n.to_string(),
            "-c",
            &concurrency.to_string(),
        ])
        .args(["-p", s(body), "-T", "application/json"])
        .args(["-H", &format!("Authorization: Bearer {token}")])
        .arg(format!("{url}/api/v1/executions"))
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "ab failed: {text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    text
}

fn a_bounded_load_is_accepted_and_every_execution_runs(kind: StoreKind) {
    let site = Site::on(kind);
    let srv = site.serve(&["--workers", "2"]);
    let body = site.home.path().join("add.json");
    std::fs::write(&body, r#"{"action": "add", "input": {"a": 1, "b": 2}}"#).unwrap();
    let report = ab(&srv.url, &site.token, &body, 1000, 8);
    assert!(report.contains("Complete requests:      1000"), "{report}");
    assert!(report.contains("Failed requests:        0"), "{report}");
    assert!(!report.contains("Non-2xx responses"), "{report}");
    // Every accepted execution runs, once.
    let start = Instant::now();
    loop {
        let q = srv.get("/api/v1/queue");
        if q["pending"].as_array().unwrap().is_empty()
            && q["running"].as_array().unwrap().is_empty()
        {
            break;
        }
        assert!(start.elapsed() < Duration::from_secs(120), "{q}");
        std::thread::sleep(Duration::from_millis(50));
    }
    let ok = srv.get("/api/v1/executions?status=succeeded&limit=500");
    assert_eq!(ok["executions"].as_array().unwrap().len(), 500);
    let metrics = srv.call("GET", "/metrics", None, None).1;
    let metrics = metrics.as_str().unwrap();
    assert!(
        metrics.contains("wasmflow_executions_accepted_total 1000"),
        "{metrics}"
    );
    assert!(
        metrics.contains("wasmflow_executions_ended_total{status=\"succeeded\"} 1000"),
        "{metrics}"
    );
}

/// `serve --retain`: executions older than the age go while the server
/// serves (whole workflow trees, not a running one), younger ones stay.
fn retention_deletes_old_executions_while_serving(kind: StoreKind) {
    let site = Site::on(kind);
    let server = site.serve(&["--retain", "2s", "--retain-every", "200ms"]);
    let old = server.start(json!({"action": "add", "input": {"a": 1, "b": 2}}));
    server.wait_done(&old);
    let dir = s(&site.marks).to_owned();
    let wf = server.start(json!({"action": "chain", "input": {"dir": dir}}));
    let tree = server.wait_done(&wf);
    assert_eq!(tree["status"], "succeeded", "{tree}");
    let start = Instant::now();
    loop {
        let (status, _) = server.call(
            "GET",
            &format!("/api/v1/executions/{old}"),
            Some(&server.token),
            None,
        );
        let (wf_status, _) = server.call(
            "GET",
            &format!("/api/v1/executions/{wf}"),
            Some(&server.token),
            None,
        );
        if status == 404 && wf_status == 404 {
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "retention did not delete them:\n{}",
            server.log.lock().unwrap()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    // A new execution after the sweep runs (its component kept) and stays
    // until it is old enough.
    let young = server.start(json!({"action": "add", "input": {"a": 2, "b": 2}}));
    assert_eq!(server.wait_done(&young)["result"], 4);
    assert_eq!(
        server.get(&format!("/api/v1/executions/{young}"))["status"],
        "succeeded"
    );
    let all = server.get("/api/v1/executions?all=true");
    assert!(
        all["executions"]
            .as_array()
            .unwrap()
            .iter()
            .all(|e| e["id"] != json!(wf) && e["parent"] != json!(wf)),
        "the workflow's tasks went with it: {all}"
    );
}

/// A server past its live bound moves finished history to the archive
/// while it serves (on its mover thread): every execution still answers
/// through the API from wherever it is, SIGTERM stops the mover with the
/// server, and the home is whole and clean afterwards.
#[test]
fn a_server_moves_finished_history_to_the_archive_while_serving() {
    let site = Site::new();
    let actions = s(&site.actions).to_owned();
    let server = serve_home_env(
        &site.home,
        &site.token,
        &["--actions", &actions],
        &[("WASMFLOW_LIVE_RECORDS", "20")],
    );
    let ids: Vec<(String, i64)> = (0..60)
        .map(|i| {
            let id = server.start(json!({"action": "add", "input": {"a": i, "b": 1}}));
            (id, i + 1)
        })
        .collect();
    for (id, sum) in &ids {
        assert_eq!(server.wait_done(id)["result"], *sum);
    }
    // Once they ended 2 s ago: all but the bound's 20 (moves stop at it).
    let start = Instant::now();
    while site.home.archived_records() < 40 {
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "{} of 60 archived; server log:\n{}",
            site.home.archived_records(),
            server.log.lock().unwrap()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    for (id, sum) in &ids {
        let r = server.get(&format!("/api/v1/executions/{id}"));
        assert_eq!(
            (&r["status"], &r["result"]),
            (&json!("succeeded"), &json!(sum))
        );
    }
    let (code, log) = server.terminate();
    assert_eq!(code, 0, "{log}");
    let listed = site.home.run(&["execution", "list", "-n", "100", "--json"]);
    let listed: Vec<Value> = serde_json::from_str(&listed.ok().stdout).unwrap();
    let mut got: Vec<&str> = listed.iter().map(|e| e["id"].as_str().unwrap()).collect();
    let mut want: Vec<&str> = ids.iter().map(|(id, _)| id.as_str()).collect();
    got.sort();
    want.sort();
    assert_eq!(got, want);
    let check = site.home.run(&["store", "check"]);
    assert_eq!(check.code, 0, "{}", check.stdout);
}

#[test]
fn the_server_forgets_the_secrets_it_read_from_its_environment() {
    let site = Site::new();
    let password = "registry-password-that-must-not-linger";
    let mut child = site
        .home
        .cmd()
        .args(["serve", "--listen", "127.0.0.1:0", "--actions"])
        .arg(&site.actions)
        .args(["--webhooks", s(&site.home.path().join("hooks.yaml"))])
        .env("WF_HOOK", HOOK_SECRET)
        .env("WASMFLOW_REGISTRY_PASSWORD", password)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
    let url = lines
        .by_ref()
        .map_while(Result::ok)
        .find_map(|l| l.contains("serving ").then(|| url_in(&l, "serving ")))
        .expect("the server started");
    // What the kernel shows of its environment (as root: the process is
    // not dumpable) no longer holds either secret.
    let environ = std::fs::read(format!("/proc/{}/environ", child.id())).unwrap();
    let environ = String::from_utf8_lossy(&environ);
    assert!(environ.contains("WASMFLOW_HOME="), "{environ}");
    assert!(!environ.contains(HOOK_SECRET), "{environ}");
    assert!(!environ.contains(password), "{environ}");
    // It still has the webhook secret it read: a call with it is accepted.
    let resp = http_client()
        .post(format!("{url}/api/v1/webhooks/deploy"))
        .header("x-wasmflow-webhook-secret", HOOK_SECRET)
        .json(&json!({"n": 1}))
        .send()
        .unwrap();
    assert_eq!(resp.status().as_u16(), 202, "{:?}", resp.text());

    // A body over the API's limit is 413 (too large), not 400 (malformed).
    let response = post_raw(&url, &site.token, 50 << 20);
    assert!(response.starts_with("HTTP/1.1 413"), "{response}");
    assert!(
        response.contains("over the API's limit of 2 MiB"),
        "{response}"
    );
    let _ = child.kill();
    let _ = child.wait();
}

/// POST a JSON body of `len` bytes over a plain socket, reading the
/// response while the body is still being written: the server answers
/// 413 and closes as soon as the body passes its limit, which an HTTP
/// client writing the whole body first reports as a broken pipe.
fn post_raw(url: &str, token: &str, len: usize) -> String {
    use std::io::{Read, Write};
    let addr = url.trim_start_matches("http://");
    let mut stream = std::net::TcpStream::connect(addr).unwrap();
    write!(
        stream,
        "POST /api/v1/executions HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {token}\r\n\
         Content-Type: application/json\r\nContent-Length: {len}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut writer = stream.try_clone().unwrap();
    let sender = std::thread::spawn(move || {
        let chunk = vec![b' '; 64 << 10];
        let mut left = len;
        while left > 0 {
            let n = left.min(chunk.len());
            if writer.write_all(&chunk[..n]).is_err() {
                break;
            }
            left -= n;
        }
    });
    let mut response = Vec::new();
    let mut buf = [0u8; 4096];
    // Data that arrived before a reset is still read; the reset ends it.
    while let Ok(n) = stream.read(&mut buf) {
        if n == 0 {
            break;
        }
        response.extend_from_slice(&buf[..n]);
    }
    let _ = stream.shutdown(std::net::Shutdown::Both);
    sender.join().unwrap();
    String::from_utf8_lossy(&response).into_owned()
}

/// `serve --actions DIR` finds action directories one level down (as
/// `wasmflow new` and `build` lay them out: `DIR/NAME/NAME.wasm`), says
/// what it serves, and refuses a directory with nothing to serve unless
/// told `--allow-empty`.
#[test]
fn serve_finds_built_action_directories_and_refuses_an_empty_catalog() {
    let home = Home::new();
    let actions = home.path().join("actions");
    std::fs::create_dir_all(actions.join("step")).unwrap();
    std::fs::copy(
        support::built("tests/fixtures/step"),
        actions.join("step/step.wasm"),
    )
    .unwrap();
    // An action's source directory with nothing built yet, and a stray file.
    std::fs::create_dir_all(actions.join("unbuilt/wit")).unwrap();
    std::fs::write(actions.join("README.md"), "notes").unwrap();
    let serve = |dir: &Path, extra: &[&str]| {
        let mut c = home.cmd();
        c.args(["serve", "--listen", "127.0.0.1:0", "--actions"])
            .arg(dir)
            .args(extra)
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        c
    };
    let mut child = serve(&actions, &[]).spawn().unwrap();
    let (line, log) = started(&mut child, "serving ");
    // The directory's one action, and the built-in core pack's seven.
    assert!(line.contains("(8 action(s)"), "{line}");
    // The names follow the ready line.
    wait_for_line(
        &log,
        "actions: core.echo, core.error, core.http, core.local, core.noop, core.pause, core.uuid, step\n",
        Duration::from_secs(10),
    );
    let _ = child.kill();
    let _ = child.wait();

    let empty = home.path().join("empty");
    std::fs::create_dir_all(&empty).unwrap();
    let out = serve(&empty, &[]).output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains(&format!("{}: nothing to serve", empty.display())),
        "{stderr}"
    );
    let mut child = serve(&empty, &["--allow-empty"]).spawn().unwrap();
    let (line, _) = started(&mut child, "serving ");
    assert!(
        line.contains("(7 action(s)"),
        "only the core pack's: {line}"
    );
    let _ = child.kill();
    let _ = child.wait();
}

/// `execution tail` follows a workflow that another process runs in the
/// same home (reading through it), task by task, to its end; `logs`
/// prints what the records hold.
#[test]
fn tail_follows_a_workflow_another_process_runs() {
    let site = Site::new();
    // Beside step.wasm, which it names.
    let flow = site.actions.join("slow.yaml");
    std::fs::write(&flow, CHAIN.replace("sleep-ms: 200", "sleep-ms: 1500")).unwrap();
    let mut child = site
        .home
        .cmd()
        .arg("run")
        .arg(&flow)
        .args(["-p", &format!("dir={}", s(&site.marks))])
        .args(["--allow-write", s(&site.marks)])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let started = Instant::now();
    let id = loop {
        let listed = site.home.run(&["execution", "list", "--json"]);
        if listed.code == 0 {
            if let Some(r) = listed.json().as_array().and_then(|a| a.first().cloned()) {
                break r["id"].as_str().unwrap().to_owned();
            }
        }
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "{}",
            listed.stderr
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    let tail = site.home.run(&["execution", "tail", &id]);
    tail.ok().stderr_has("task first succeeded");
    tail.stderr_has("task second succeeded");
    tail.stderr_has(&format!("execution {id} succeeded"));
    assert!(
        tail.stdout.contains("[first] first: waiting 1500 ms")
            && tail.stdout.contains("[first] first: done waiting"),
        "{}",
        tail.stdout
    );
    assert!(child.wait().unwrap().success());
    // Once ended: the same lines, without waiting.
    let logs = site.home.run(&["execution", "logs", &id]);
    assert_eq!(logs.ok().stdout, tail.stdout);
    site.home
        .run(&["execution", "tail", "01ARZ3NDEKTSV4RRFFQ69G5FAV"])
        .code(2);
}

/// While `serve` compiles its catalog (a Python action into an empty
/// cache: seconds), its address answers: `/healthz` says `warming`, the
/// API 503 with Retry-After; then it serves.
#[test]
fn serve_answers_healthz_while_its_catalog_compiles() {
    let home = Home::new();
    let actions = home.path().join("actions");
    std::fs::create_dir_all(&actions).unwrap();
    std::fs::copy(
        support::built("tests/fixtures/step"),
        actions.join("step.wasm"),
    )
    .unwrap();
    let cold = tempfile::tempdir().unwrap();
    let mut child = home
        .cmd()
        .args(["--cache-dir", s(cold.path())])
        .args(["serve", "--listen", "127.0.0.1:0", "--actions"])
        .arg(&actions)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let (line, log) = started(&mut child, "listening on ");
    let url = url_in(&line, "listening on ");
    let http = http_client();
    let health: Value = http
        .get(format!("{url}/healthz"))
        .send()
        .unwrap()
        .json()
        .unwrap();
    assert_eq!(health["status"], "warming", "{health}");
    let early = http.get(format!("{url}/api/v1/actions")).send().unwrap();
    assert_eq!(early.status().as_u16(), 503);
    assert_eq!(early.headers()["retry-after"], "5");
    wait_for_line(&log, "serving ", Duration::from_secs(300));
    let health: Value = http
        .get(format!("{url}/healthz"))
        .send()
        .unwrap()
        .json()
        .unwrap();
    assert_eq!(health["status"], "ok", "{health}");
    let _ = child.kill();
    let _ = child.wait();
}

pub(crate) const PAUSABLE: &str = r#"
version: 1
input: [{ name: dir, type: string }]
grants: { write: ["{{ input.dir }}"] }
tasks:
  pa:
    action: step.wasm
    input: { req: { name: pa, dir: "{{ input.dir }}", value: 1, sleep-ms: 800 } }
    next: [{ publish: { a: "{{ result.value }}" }, do: pb }]
  pb:
    action: step.wasm
    input: { req: { name: pb, dir: "{{ input.dir }}", value: "{{ ctx.a }}" } }
    next: [{ publish: { b: "{{ result.value }}" } }]
output: { b: "{{ ctx.b }}" }
"#;

/// Pause and resume through the API: the running task finishes, none
/// starts until resume, and the workflow ends as it would have; a paused
/// workflow cancels; an action does not pause.
#[test]
fn a_workflow_pauses_and_resumes_through_the_api() {
    let site = Site::new();
    std::fs::write(site.actions.join("pausable.yaml"), PAUSABLE).unwrap();
    let srv = site.serve(&["--workers", "2"]);
    let input = json!({"action": "pausable", "input": {"dir": s(&site.marks)}});
    let start_and_pause = || {
        let before = markers(&site.marks, "pa.");
        let id = srv.start(input.clone());
        let at = Instant::now();
        while markers(&site.marks, "pa.") == before {
            assert!(at.elapsed() < Duration::from_secs(60), "pa never started");
            std::thread::sleep(Duration::from_millis(10));
        }
        let (status, v) = srv.post(&format!("/api/v1/executions/{id}/pause"), json!({}));
        assert_eq!(status, 202, "{v}");
        assert_eq!(srv.wait_status(&id, &["paused"])["status"], "paused");
        id
    };
    let id = start_and_pause();
    assert_eq!(
        markers(&site.marks, "pb."),
        0,
        "nothing starts while paused"
    );
    let graph = srv.get(&format!("/api/v1/executions/{id}/graph"));
    assert_eq!(graph["tasks"][0]["state"], "succeeded", "{graph}");
    assert_eq!(graph["tasks"][1]["state"], "pending", "{graph}");
    let (status, v) = srv.post(&format!("/api/v1/executions/{id}/pause"), json!({}));
    assert_eq!(status, 409, "{v}");
    let (status, v) = srv.post(&format!("/api/v1/executions/{id}/resume"), json!({}));
    assert_eq!(status, 202, "{v}");
    let done = srv.wait_done(&id);
    assert_eq!(done["status"], "succeeded", "{done}");
    assert_eq!(done["result"], json!({"b": 3}));
    assert_eq!(markers(&site.marks, "pa."), 1);
    assert_eq!(markers(&site.marks, "pb."), 1);
    let (status, _) = srv.post(&format!("/api/v1/executions/{id}/resume"), json!({}));
    assert_eq!(status, 409);

    // A paused workflow is canceled where it stands.
    let id = start_and_pause();
    let (status, v) = srv.post(&format!("/api/v1/executions/{id}/cancel"), json!({}));
    assert_eq!(status, 202, "{v}");
    assert_eq!(srv.wait_done(&id)["status"], "canceled");
    assert_eq!(markers(&site.marks, "pb."), 1);

    // Only workflows pause.
    let add = srv.start(json!({"action": "add", "input": {"a": 1, "b": 2}}));
    srv.wait_done(&add);
    let (status, v) = srv.post(&format!("/api/v1/executions/{add}/pause"), json!({}));
    assert_eq!(status, 422, "{v}");
}
