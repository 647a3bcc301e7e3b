//! Many processes on one PostgreSQL store: `serve --workers 0` only
//! serves, `wasmflow worker`s claim the work under leases. Workers are
//! really killed with SIGKILL; another takes their work over once the
//! lease runs out (short leases here, so the tests take seconds).

use crate::server::{started, Server, Site};
use crate::{s, Home, StoreKind};
use serde_json::{json, Value};
use std::collections::{BTreeMap, BTreeSet};
use std::process::{Child, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Lease settings short enough for a test to wait out.
const FAST: &[&str] = &["--lease", "1500ms", "--heartbeat", "200ms"];

/// A `wasmflow worker` process.
struct Worker {
    child: Child,
    log: Arc<Mutex<String>>,
}

impl Drop for Worker {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Worker {
    fn start(site: &Site, name: &str, extra: &[&str]) -> Self {
        let mut child = site
            .home
            .cmd()
            .args(["worker", "--name", name])
            .args(if extra.contains(&"--concurrency") {
                &[][..]
            } else {
                &["--concurrency", "2"][..]
            })
            .args(FAST)
            .args(extra)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let (_, log) = started(&mut child, &format!("wasmflow worker {name} running"));
        Self { child, log }
    }

    /// SIGKILL, and wait until it is gone.
    fn kill(mut self) {
        self.child.kill().unwrap();
        self.child.wait().unwrap();
    }
}

fn api_only(site: &Site) -> Server {
    let mut args = vec!["--workers", "0", "--name", "api"];
    args.extend_from_slice(FAST);
    site.serve(&args)
}

fn step(site: &Site, name: &str, sleep_ms: u64) -> Value {
    json!({
        "action": "step",
        "input": {"req": {"name": name, "dir": s(&site.marks), "sleep-ms": sleep_ms}},
        "grants": {"write": [s(&site.marks)]},
    })
}

fn markers(site: &Site, name: &str) -> usize {
    std::fs::read_dir(&site.marks)
        .unwrap()
        .filter(|e| {
            let file = e.as_ref().unwrap().file_name();
            let file = file.to_string_lossy();
            file.rsplit_once('.').map(|(stem, _)| stem) == Some(name)
        })
        .count()
}

/// Wait until `id` runs on a worker process; that process's name.
fn running_on(srv: &Server, id: &str) -> String {
    let start = Instant::now();
    loop {
        let q = srv.get("/api/v1/queue");
        if let Some(item) = q["running"]
            .as_array()
            .unwrap()
            .iter()
            .find(|i| i["id"] == id)
        {
            return item["process"].as_str().unwrap().to_owned();
        }
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "{id} never ran: {q}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// The SSE events of `id`'s log stream, up to `end`.
fn follow(srv: &Server, id: &str) -> Vec<(String, Value)> {
    use std::io::BufRead;
    let resp = crate::server::http_client()
        .get(format!("{}/api/v1/executions/{id}/logs", srv.url))
        .bearer_auth(&srv.token)
        .send()
        .unwrap();
    assert_eq!(resp.status().as_u16(), 200);
    let (mut events, mut event) = (Vec::new(), String::new());
    for line in std::io::BufReader::new(resp).lines() {
        let line = line.unwrap();
        if let Some(e) = line.strip_prefix("event: ") {
            event = e.to_owned();
        } else if let Some(d) = line.strip_prefix("data: ") {
            events.push((event.clone(), serde_json::from_str(d).unwrap()));
            if event == "end" {
                break;
            }
        }
    }
    events
}

/// Wait until the step `name` of execution `id` runs its guest (its
/// record says `running` and its marker file is there), past loading.
fn guest_started(srv: &Server, site: &Site, id: &str, name: &str) {
    srv.wait_status(id, &["running"]);
    let start = Instant::now();
    while markers(site, name) == 0 {
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "{name} never started"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// `fan.yaml`: the `step` action over `items`, two at a time, each
/// sleeping `sleep_ms` and leaving the marker `itemN`.
fn write_fan_of_steps(site: &Site, sleep_ms: u64) {
    let fan = r#"
version: 1
input:
  - { name: dir, type: string }
  - { name: items, type: "list<s64>" }
grants: { write: ["{{ input.dir }}"] }
tasks:
  each:
    action: step.wasm
    with-items: "{{ input.items }}"
    concurrency: 2
    input: { req: { name: "item{{ item }}", dir: "{{ input.dir }}", sleep-ms: SLEEP } }
"#;
    let fan = fan.replace("SLEEP", &sleep_ms.to_string());
    std::fs::write(site.actions.join("fan.yaml"), fan).unwrap();
}

/// The task records of workflow execution `id`, as `execution get --tree`
/// gives them.
fn children(site: &Site, id: &str) -> Vec<Value> {
    let tree = site
        .home
        .run(&["execution", "get", id, "--tree", "--json"])
        .ok()
        .json();
    tree["children"].as_array().cloned().unwrap_or_default()
}

#[test]
fn one_api_and_three_workers_run_a_thousand_executions_exactly_once() {
    let site = Site::on(StoreKind::Postgres);
    // 930 WAT actions, 50 Python steps, 10 workflows of two steps each,
    // 10 workflows fanning out over 20 items each (their tasks spread
    // over the workers).
    let fan = r#"
version: 1
input:
  - { name: start, type: s64 }
output:
  sums: "{{ ctx.sums }}"
tasks:
  each:
    action: add.wat
    with-items: "{{ range(input.start, input.start + 20) | list }}"
    input: { a: "{{ item }}", b: 1 }
    next:
      - publish: { sums: "{{ result }}" }
"#;
    std::fs::write(site.actions.join("fan.yaml"), fan).unwrap();
    let srv = api_only(&site);
    let workers: Vec<_> = ["w1", "w2", "w3"]
        .iter()
        .map(|n| Worker::start(&site, n, &[]))
        .collect();
    let mut adds = BTreeMap::new();
    let mut steps = Vec::new();
    let mut flows = Vec::new();
    let mut fans = Vec::new();
    let mut seen = BTreeSet::new();
    for n in 0..1000u64 {
        if n % 100 == 0 {
            let body = json!({"action": "chain", "input": {"dir": s(&site.marks), "start": n}});
            flows.push((n, srv.start(body)));
        } else if n % 100 == 50 {
            fans.push((
                n,
                srv.start(json!({"action": "fan", "input": {"start": n}})),
            ));
        } else if n % 20 == 1 {
            steps.push((
                format!("s{n}"),
                srv.start(step(&site, &format!("s{n}"), 50)),
            ));
        } else {
            let id = srv.start(json!({"action": "add", "input": {"a": n, "b": 1}}));
            adds.insert(id, n + 1);
        }
        if n % 50 == 0 {
            // While it runs, the queue view shows which process runs what.
            for item in srv.get("/api/v1/queue")["running"].as_array().unwrap() {
                seen.insert(item["process"].as_str().unwrap().to_owned());
            }
        }
    }
    let mut ran_on = BTreeMap::<String, usize>::new();
    for (id, sum) in &adds {
        let r = srv.wait_done(id);
        assert_eq!(r["status"], "succeeded", "{r}");
        assert_eq!(r["result"], *sum, "{r}");
        assert_eq!(r["attempt"].as_u64().unwrap_or(1), 1, "started once: {r}");
        let worker = r["worker"].as_str().unwrap();
        *ran_on
            .entry(worker.split('/').next().unwrap().to_owned())
            .or_default() += 1;
    }
    for (name, id) in &steps {
        let r = srv.wait_done(id);
        assert_eq!(r["status"], "succeeded", "{r}");
        assert_eq!(markers(&site, name), 1, "{name} ran once");
    }
    for (n, id) in &flows {
        let r = srv.wait_done(id);
        assert_eq!(r["status"], "succeeded", "{r}");
        // first: n + 1; second: n + 2.
        assert_eq!(r["result"], json!({"value": n + 2}), "{r}");
    }
    for (n, id) in &fans {
        let r = srv.wait_done(id);
        assert_eq!(r["status"], "succeeded", "{r}");
        let sums: Vec<u64> = (*n..n + 20).map(|i| i + 1).collect();
        assert_eq!(r["result"]["sums"], json!(sums), "{r}");
        let children = children(&site, id);
        assert_eq!(children.len(), 20, "each item once: {children:?}");
        for c in &children {
            let worker = c["worker"].as_str().unwrap().split('/').next().unwrap();
            assert!(["w1", "w2", "w3"].contains(&worker), "{c}");
            assert_eq!(c["attempt"].as_u64().unwrap_or(1), 1, "{c}");
        }
    }
    assert_eq!(markers(&site, "first"), flows.len());
    assert_eq!(markers(&site, "second"), flows.len());
    let names: BTreeSet<_> = ran_on.keys().cloned().collect();
    assert_eq!(
        names,
        ["w1", "w2", "w3"].iter().map(|s| s.to_string()).collect(),
        "every worker took work: {ran_on:?}"
    );
    assert!(!seen.is_empty(), "the queue view showed running work");
    assert!(seen.iter().all(|p| names.contains(p)), "{seen:?}");
    // Every worker is listed, by the API and the CLI, with nothing left.
    let listed = srv.get("/api/v1/workers");
    let listed: BTreeSet<_> = listed
        .as_array()
        .unwrap()
        .iter()
        .map(|w| w["name"].as_str().unwrap().to_owned())
        .collect();
    assert!(names.is_subset(&listed), "{listed:?}");
    let cli = site.home.run(&["worker", "list"]);
    for n in &names {
        assert!(cli.ok().stdout.contains(n.as_str()), "{}", cli.stdout);
    }
    let json = site.home.run(&["worker", "list", "--json"]).ok().json();
    let alive: BTreeSet<_> = json
        .as_array()
        .unwrap()
        .iter()
        .filter(|w| w["alive"] == true)
        .map(|w| w["name"].as_str().unwrap().to_owned())
        .collect();
    assert!(names.is_subset(&alive), "{json}");
    let q = srv.get("/api/v1/queue");
    assert!(q["pending"].as_array().unwrap().is_empty(), "{q}");
    for w in &workers {
        let log = w.log.lock().unwrap();
        assert!(!log.contains("panicked") && !log.contains("ERROR"), "{log}");
    }
}

#[test]
fn a_killed_workers_action_is_taken_over_after_its_lease_and_counted() {
    let site = Site::on(StoreKind::Postgres);
    let srv = api_only(&site);
    let first = Worker::start(&site, "doomed", &[]);
    let id = srv.start(step(&site, "slow", 4000));
    assert_eq!(running_on(&srv, &id), "doomed");
    guest_started(&srv, &site, &id, "slow");
    let killed = Instant::now();
    first.kill();
    let _second = Worker::start(&site, "heir", &[]);
    // Followed from the API process, which runs nothing: the lines and
    // the end arrive once the record has them.
    let events = follow(&srv, &id);
    let took = killed.elapsed();
    let r = srv.wait_done(&id);
    assert_eq!(
        events.last().unwrap(),
        &("end".into(), json!({"event": "end", "status": "succeeded"}))
    );
    assert!(
        events
            .iter()
            .any(|(e, d)| e == "log" && d["message"] == "slow: done waiting"),
        "{events:?}"
    );
    assert_eq!(r["status"], "succeeded", "{r}");
    assert_eq!(r["attempt"], 2, "{r}");
    assert!(r["worker"].as_str().unwrap().starts_with("heir/"), "{r}");
    assert!(
        r["logs"].to_string().contains("worker doomed was lost"),
        "{r}"
    );
    // The killed attempt had started (its marker), the second ran it all.
    assert_eq!(markers(&site, "slow"), 2);
    assert_eq!(r["result"]["runs"], 2, "{r}");
    // Lease 1.5 s, then the 4 s step again.
    assert!(took < Duration::from_secs(30), "{took:?}");
    eprintln!("takeover: ended {took:?} after the kill");
}

#[test]
fn a_killed_workers_fan_out_resumes_without_rerunning_finished_items() {
    let site = Site::on(StoreKind::Postgres);
    write_fan_of_steps(&site, 600);
    let srv = api_only(&site);
    let first = Worker::start(&site, "doomed", &[]);
    let id = srv.start(json!({"action": "fan", "input": {"dir": s(&site.marks), "items": [0, 1, 2, 3, 4, 5, 6, 7]}}));
    // Let a few items finish, then kill the worker mid-fan-out.
    let start = Instant::now();
    let finished_before = loop {
        let tasks = children(&site, &id);
        let done: Vec<String> = tasks
            .iter()
            .filter(|c| c["status"] == "succeeded")
            .map(|c| c["input"]["req"]["name"].as_str().unwrap().to_owned())
            .collect();
        if done.len() >= 3 {
            break done;
        }
        assert!(start.elapsed() < Duration::from_secs(60), "{tasks:?}");
        std::thread::sleep(Duration::from_millis(20));
    };
    first.kill();
    let _second = Worker::start(&site, "heir", &[]);
    let r = srv.wait_done(&id);
    assert_eq!(r["status"], "succeeded", "{r}");
    let children = children(&site, &id);
    for n in 0..8 {
        let name = format!("item{n}");
        let runs = markers(&site, &name);
        if finished_before.contains(&name) {
            assert_eq!(runs, 1, "{name} had finished and ran again");
        } else {
            assert!((1..=2).contains(&runs), "{name}: {runs} runs");
        }
        // One success per item. An item that ran on the killed worker was
        // taken over under the same id (its attempt counted); one the
        // workflow had journaled but not yet queued when its worker died
        // is recorded `interrupted` and started again.
        let mine: Vec<_> = children
            .iter()
            .filter(|c| c["input"]["req"]["name"] == name.as_str())
            .collect();
        let won: Vec<_> = mine.iter().filter(|c| c["status"] == "succeeded").collect();
        assert_eq!(won.len(), 1, "{name}: {mine:?}");
        if runs == 2 {
            assert!(
                won[0]["attempt"].as_u64().unwrap_or(1) >= 2 || mine.len() == 2,
                "{name}: {mine:?}"
            );
        }
        assert!(
            mine.iter()
                .all(|c| c["status"] == "succeeded" || c["error"]["code"] == "interrupted"),
            "{name}: {mine:?}"
        );
    }
}

/// A worker stalled (SIGSTOP) past its lease while it drives a fan-out:
/// another takes the workflow and its tasks over; when the stalled one
/// wakes it stops its copies without a word, canceling nothing of the new
/// holder's, and every item ends succeeded.
#[test]
fn a_stalled_worker_that_wakes_up_cancels_nothing_of_its_successors() {
    let site = Site::on(StoreKind::Postgres);
    write_fan_of_steps(&site, 400);
    let srv = api_only(&site);
    let stalled = Worker::start(&site, "stalled", &[]);
    let id = srv.start(
        json!({"action": "fan", "input": {"dir": s(&site.marks), "items": [0, 1, 2, 3, 4, 5]}}),
    );
    guest_started(&srv, &site, &id, "item0");
    let signal = |sig: &str| {
        let pid = stalled.child.id().to_string();
        assert!(std::process::Command::new("kill")
            .args([sig, &pid])
            .status()
            .unwrap()
            .success());
    };
    signal("-STOP");
    let _heir = Worker::start(&site, "heir", &[]);
    // Past the lease (1.5 s): the heir holds the workflow and its tasks.
    let start = Instant::now();
    while running_on(&srv, &id) != "heir" {
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "never taken over"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    signal("-CONT");
    let r = srv.wait_done(&id);
    assert_eq!(r["status"], "succeeded", "{r}");
    for c in children(&site, &id) {
        assert_ne!(c["status"], "canceled", "{c}");
    }
    for n in 0..6 {
        let runs = markers(&site, &format!("item{n}"));
        assert!((1..=2).contains(&runs), "item{n}: {runs}");
    }
    let log = stalled.log.lock().unwrap().clone();
    assert!(
        log.contains("another took it over; stopping it here"),
        "{log}"
    );
}

/// A workflow's tasks are queue entries of their own: two branches of 50
/// items each spread over three worker processes, and the join after
/// them, decided where the workflow runs while items end at once on
/// different workers, fires exactly once.
#[test]
fn a_fan_in_over_three_workers_joins_once() {
    let site = Site::on(StoreKind::Postgres);
    let fan_in = r#"
version: 1
input:
  - { name: dir, type: string }
  - { name: items, type: "list<s64>" }
grants: { write: ["{{ input.dir }}"] }
tasks:
  left:
    action: step.wasm
    with-items: "{{ input.items }}"
    input: { req: { name: "left{{ item }}", dir: "{{ input.dir }}", sleep-ms: 20 } }
    next: [ { when: "{{ succeeded() }}", do: joined } ]
  right:
    action: step.wasm
    with-items: "{{ input.items }}"
    input: { req: { name: "right{{ item }}", dir: "{{ input.dir }}", sleep-ms: 20 } }
    next: [ { when: "{{ succeeded() }}", do: joined } ]
  joined:
    join: all
    action: step.wasm
    input: { req: { name: "joined", dir: "{{ input.dir }}", sleep-ms: 0 } }
"#;
    std::fs::write(site.actions.join("fan_in.yaml"), fan_in).unwrap();
    let srv = api_only(&site);
    let _workers: Vec<_> = ["w1", "w2", "w3"]
        .iter()
        .map(|n| Worker::start(&site, n, &[]))
        .collect();
    let items: Vec<u64> = (0..50).collect();
    let id =
        srv.start(json!({"action": "fan_in", "input": {"dir": s(&site.marks), "items": items}}));
    // While it runs, the queue view shows its tasks on the workers.
    let mut seen = BTreeSet::new();
    let start = Instant::now();
    while seen.len() < 2 && start.elapsed() < Duration::from_secs(60) {
        for item in srv.get("/api/v1/queue")["running"].as_array().unwrap() {
            if item["id"] != id.as_str() {
                // A task, shown with its workflow.
                assert_eq!(item["parent"], id.as_str(), "{item}");
                assert!(item["task"].as_str().is_some(), "{item}");
                seen.insert(item["process"].as_str().unwrap().to_owned());
            }
        }
    }
    let r = srv.wait_done(&id);
    assert_eq!(r["status"], "succeeded", "{r}");
    assert!(seen.len() >= 2, "tasks ran on one process only: {seen:?}");
    assert_eq!(markers(&site, "joined"), 1, "the join fired once");
    for n in 0..50 {
        for side in ["left", "right"] {
            assert_eq!(markers(&site, &format!("{side}{n}")), 1, "{side}{n}");
        }
    }
    let children = children(&site, &id);
    assert_eq!(children.len(), 101, "{children:?}");
    let joins = children.iter().filter(|c| c["task"] == "joined").count();
    assert_eq!(joins, 1, "one record of the join");
    let ran_on: BTreeSet<_> = children
        .iter()
        .map(|c| {
            c["worker"]
                .as_str()
                .unwrap()
                .split('/')
                .next()
                .unwrap()
                .to_owned()
        })
        .collect();
    assert!(ran_on.len() >= 2, "every task on one worker: {ran_on:?}");
    eprintln!("fan-in: tasks ran on {ran_on:?}");
}

#[test]
fn an_execution_whose_workers_keep_dying_fails_as_worker_lost() {
    let site = Site::on(StoreKind::Postgres);
    let srv = api_only(&site);
    let first = Worker::start(&site, "doomed", &[]);
    let id = srv.start(step(&site, "deadly", 5000));
    running_on(&srv, &id);
    guest_started(&srv, &site, &id, "deadly");
    first.kill();
    let _second = Worker::start(&site, "judge", &["--max-lost", "1"]);
    let r = srv.wait_done(&id);
    assert_eq!(r["status"], "failed", "{r}");
    assert_eq!(r["error"]["code"], "worker-lost", "{r}");
    assert!(
        r["error"]["message"].as_str().unwrap().contains("doomed"),
        "{r}"
    );
    assert_eq!(markers(&site, "deadly"), 1, "not started again");
}

#[test]
fn cancel_reaches_a_worker_in_another_process() {
    let site = Site::on(StoreKind::Postgres);
    let srv = api_only(&site);
    let _w = Worker::start(&site, "w1", &["--concurrency", "1"]);
    let long = srv.start(step(&site, "long", 20_000));
    running_on(&srv, &long);
    // Waiting behind it: withdrawn from the shared queue.
    let waiting = srv.start(step(&site, "waiting", 0));
    let (code, _) = srv.post(&format!("/api/v1/executions/{waiting}/cancel"), json!({}));
    assert_eq!(code, 202);
    let (code, _) = srv.post(&format!("/api/v1/executions/{long}/cancel"), json!({}));
    assert_eq!(code, 202);
    let start = Instant::now();
    assert_eq!(srv.wait_done(&long)["status"], "canceled");
    assert!(start.elapsed() < Duration::from_secs(10));
    let r = srv.wait_done(&waiting);
    assert_eq!(r["status"], "canceled", "{r}");
    assert_eq!(markers(&site, "waiting"), 0);
}

#[test]
fn after_every_process_is_killed_one_new_one_finishes_everything() {
    let site = Site::on(StoreKind::Postgres);
    let mut args = vec!["--workers", "2", "--name", "a"];
    args.extend_from_slice(FAST);
    let srv = site.serve(&args);
    let workers: Vec<_> = ["w1", "w2"]
        .iter()
        .map(|n| Worker::start(&site, n, &[]))
        .collect();
    let ids: Vec<String> = (0..40)
        .map(|n| srv.start(step(&site, &format!("k{n}"), 300)))
        .collect();
    std::thread::sleep(Duration::from_millis(500));
    drop(srv); // SIGKILL
    for w in workers {
        w.kill();
    }
    let mut args = vec!["--workers", "2", "--name", "b"];
    args.extend_from_slice(FAST);
    let srv = site.serve(&args);
    for id in &ids {
        assert_eq!(srv.wait_done(id)["status"], "succeeded");
    }
    for n in 0..40 {
        let runs = markers(&site, &format!("k{n}"));
        assert!((1..=2).contains(&runs), "k{n}: {runs}");
    }
}

#[test]
fn a_store_with_one_opener_has_no_worker_processes() {
    let home = Home::new();
    home.run(&["worker", "--concurrency", "1"])
        .code(2)
        .stderr_has("wasmflow worker needs a store many processes share");
    home.run(&["serve", "--workers", "0"])
        .code(2)
        .stderr_has("serve --workers 0 needs a store many processes share");
    home.run(&["worker", "list"])
        .code(2)
        .stderr_has("needs a shared store");
    home.run(&["worker", "--heartbeat", "30s", "--lease", "10s"])
        .code(2)
        .stderr_has("--heartbeat 30s must be shorter than --lease 10s");
}

/// Pause reaches the worker that runs a workflow through an API process
/// that does not run it (the worker hears at its next heartbeat): the
/// running task finishes, none starts until resume. And with two API
/// processes, an unanswered inquiry is expired by the one leading that
/// sweep, and the workflow goes on, on the worker, to fail its task.
#[test]
fn pause_and_inquiry_expiry_reach_across_processes() {
    let site = Site::on(StoreKind::Postgres);
    std::fs::write(site.actions.join("pausable.yaml"), crate::server::PAUSABLE).unwrap();
    let ask = crate::inquiry::ASK
        .replace("TTL", "1s")
        .replace("ADD", "add.wat");
    std::fs::write(site.actions.join("ask.yaml"), ask).unwrap();
    let srv = api_only(&site);
    let _w = Worker::start(&site, "w1", &[]);
    let id = srv.start(json!({
        "action": "pausable",
        "input": {"dir": s(&site.marks)},
        "grants": {"write": [s(&site.marks)]},
    }));
    guest_started(&srv, &site, &id, "pa");
    let (code, v) = srv.post(&format!("/api/v1/executions/{id}/pause"), json!({}));
    assert_eq!(code, 202, "{v}");
    assert_eq!(srv.wait_status(&id, &["paused"])["status"], "paused");
    assert_eq!(markers(&site, "pb"), 0, "nothing starts while paused");
    let (code, v) = srv.post(&format!("/api/v1/executions/{id}/resume"), json!({}));
    assert_eq!(code, 202, "{v}");
    let done = srv.wait_done(&id);
    assert_eq!(done["status"], "succeeded", "{done}");
    assert_eq!((markers(&site, "pa"), markers(&site, "pb")), (1, 1));

    // The second API process leads nothing yet: the first holds the lead.
    let second = site.serve(&["--workers", "0", "--name", "api2"]);
    let asked = second.start(json!({"action": "ask"}));
    assert_eq!(srv.wait_status(&asked, &["paused"])["status"], "paused");
    let start = Instant::now();
    let failed = srv.wait_done(&asked);
    assert_eq!(failed["status"], "failed", "{failed}");
    assert!(failed.to_string().contains("inquiry-timeout"), "{failed}");
    assert!(start.elapsed() < Duration::from_secs(20));
}
