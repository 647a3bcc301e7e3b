//! The event bus through the real server, on both stores: a webhook call
//! becomes a trigger instance, a rule turns it into an execution (another
//! rule's criteria keep it from doing so), the end of that execution is an
//! event a second rule chains on; and a `kill -9` after the instance was
//! written, or after the enforcement was, leaves exactly one execution per
//! match once the server is started again.

use crate::rules::RULE;
use crate::server::{serve_home_env, Server};
use crate::{s, support, wat, Home, StoreKind};
use serde_json::{json, Value};
use std::time::{Duration, Instant};

crate::on_both_stores!(
    webhook_rule_action_and_chained_rule,
    a_crash_between_steps_starts_each_execution_once,
    timers_fire_on_time_and_catch_up_as_asked,
    a_packs_trigger_type_is_emitted_through_the_api,
    a_sensor_component_emits_events_a_rule_runs_on,
    an_open_inquiry_is_an_event
);

const SECRET: &str = "a-webhook-secret-of-some-length";

const CHAINED: &str = r#"name: add-after-restart
trigger: { type: wasmflow.execution, parameters: { action: keyed, status: succeeded } }
action:
  ref: add
  input: { a: 1, b: 2 }
"#;

/// A home with `keyed` and `add` to run, the `alerts` webhook (it names no
/// action: the rules decide), the rules, and a token.
struct Bus {
    home: Home,
    token: String,
    args: Vec<String>,
}

impl Bus {
    fn new(kind: StoreKind) -> Self {
        Self::with_rules(kind, &[("restart.yaml", RULE), ("chained.yaml", CHAINED)])
    }

    fn with_rules(kind: StoreKind, files: &[(&str, &str)]) -> Self {
        let home = Home::with_store(kind);
        let dir = home.path().to_owned();
        let actions = dir.join("actions");
        std::fs::create_dir_all(&actions).unwrap();
        std::fs::copy(
            support::built("tests/fixtures/keyed"),
            actions.join("keyed.wasm"),
        )
        .unwrap();
        std::fs::copy(wat("add"), actions.join("add.wat")).unwrap();
        let rules = dir.join("rules");
        std::fs::create_dir_all(&rules).unwrap();
        for (name, text) in files {
            std::fs::write(rules.join(name), text).unwrap();
        }
        let hooks = dir.join("hooks.yaml");
        std::fs::write(&hooks, "alerts:\n  secret_env: WF_ALERTS_SECRET\n").unwrap();
        let token = crate::keys::key_token(&home, "ops", false);
        let args = vec![
            "--actions".into(),
            s(&actions).to_owned(),
            "--rules".into(),
            s(&rules).to_owned(),
            "--webhooks".into(),
            s(&hooks).to_owned(),
        ];
        Self { home, token, args }
    }

    fn serve(&self, crash_at: Option<&str>) -> Server {
        let args: Vec<&str> = self.args.iter().map(String::as_str).collect();
        let mut env = vec![("WF_ALERTS_SECRET", SECRET)];
        if let Some(step) = crash_at {
            env.push(("WASMFLOW_CRASH_AT", step));
        }
        serve_home_env(&self.home, &self.token, &args, &env)
    }
}

/// The trigger instance a webhook call (or an emit) was recorded as.
fn instance_of(resp: reqwest::blocking::Response) -> String {
    let v = resp.json::<Value>().unwrap();
    v["trigger_instance"].as_str().unwrap().to_owned()
}

/// `wasmflow --server URL --token T ARGS...`.
fn remote(bus: &Bus, srv: &Server, args: &[&str]) -> crate::Run {
    let mut c = bus.home.cmd();
    c.args(["--server", &srv.url, "--token", &bus.token])
        .args(args);
    crate::Run::from(c.output().unwrap())
}

fn alert(srv: &Server, body: Value) -> reqwest::Result<reqwest::blocking::Response> {
    crate::server::http_client()
        .post(format!("{}/api/v1/webhooks/alerts", srv.url))
        .header("X-Wasmflow-Webhook-Secret", SECRET)
        .json(&body)
        .send()
}

/// Poll `f` until it gives `Some`, for up to a minute.
fn eventually<T>(what: &str, mut f: impl FnMut() -> Option<T>) -> T {
    let start = Instant::now();
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(start.elapsed() < Duration::from_secs(60), "{what}: never");
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn webhook_rule_action_and_chained_rule(kind: StoreKind) {
    let bus = Bus::new(kind);
    let srv = bus.serve(None);
    let rules = srv.get("/api/v1/rules");
    assert_eq!(rules.as_array().unwrap().len(), 2, "{rules}");

    let resp = alert(&srv, json!({"severity": "critical", "host": "web7"})).unwrap();
    assert_eq!(resp.status().as_u16(), 202);
    let instance = instance_of(resp);
    let seen = srv.get(&format!("/api/v1/trigger-instances/{instance}"));
    assert_eq!(seen["instance"]["payload"]["body"]["host"], "web7");
    assert_eq!(seen["instance"]["processed"], true);
    let e = &seen["enforcements"][0];
    assert_eq!(
        (&e["rule"], &e["outcome"]),
        (&json!("restart-on-disk-alert"), &json!("started"))
    );
    let id = e["execution"].as_str().unwrap().to_owned();
    let done = srv.wait_done(&id);
    assert_eq!(done["status"], "succeeded", "{done}");
    assert_eq!(done["result"], "text=restart web7");
    assert_eq!(
        done["started_by"],
        json!({"rule": {"rule": "restart-on-disk-alert", "trigger": instance}})
    );

    // Its end is an event: the chained rule runs `add`.
    let chained = eventually("the chained rule's execution", || {
        let all = srv.get("/api/v1/rule-enforcements?limit=100");
        let id = all
            .as_array()?
            .iter()
            .find(|e| e["rule"] == "add-after-restart")
            .and_then(|e| e["execution"].as_str().map(str::to_owned))?;
        // An enforcement is written before the run it names is submitted.
        let path = format!("/api/v1/executions/{id}");
        (srv.call("GET", &path, Some(&bus.token), None).0 == 200).then_some(id)
    });
    let added = srv.wait_done(&chained);
    assert_eq!(
        (&added["status"], &added["result"]),
        (&json!("succeeded"), &json!(3))
    );

    // Criteria that do not hold: an enforcement saying so, no execution.
    let quiet = instance_of(alert(&srv, json!({"severity": "low", "host": "web7"})).unwrap());
    let seen = srv.get(&format!("/api/v1/trigger-instances/{quiet}"));
    let e = &seen["enforcements"][0];
    assert_eq!(e["outcome"], "criteria-false", "{seen}");
    assert!(
        e["message"]
            .as_str()
            .unwrap()
            .contains("trigger.body.severity inside"),
        "{e}"
    );
    assert!(e.get("execution").is_none());

    // Disabled from the command line: an event gets a `disabled`
    // enforcement and starts nothing, also after a restart; enabled again,
    // it runs.
    let said = remote(&bus, &srv, &["rule", "disable", "restart-on-disk-alert"])
        .ok()
        .stdout
        .clone();
    assert!(said.contains("disabled"), "{said}");
    let listed = remote(&bus, &srv, &["rule", "list", "--json"]).ok().json();
    let mine = listed
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["name"] == "restart-on-disk-alert");
    assert_eq!(mine.unwrap()["enabled"], false, "{listed}");
    let srv = {
        drop(srv);
        bus.serve(None)
    };
    let off = instance_of(alert(&srv, json!({"severity": "high", "host": "web8"})).unwrap());
    let seen = srv.get(&format!("/api/v1/trigger-instances/{off}"));
    assert_eq!(seen["enforcements"][0]["outcome"], "disabled", "{seen}");
    remote(&bus, &srv, &["rule", "enable", "restart-on-disk-alert"]).ok();
    let on = instance_of(alert(&srv, json!({"severity": "high", "host": "web9"})).unwrap());
    let seen = srv.get(&format!("/api/v1/trigger-instances/{on}"));
    assert_eq!(seen["enforcements"][0]["outcome"], "started", "{seen}");
    bus.home
        .run(&["rule", "list"])
        .code(2)
        .stderr_has("--server URL");
    // Let it settle before the kill: that run's end is an event the chained
    // rule starts `add` on, and an event still to enforce is work a purge
    // keeps (see below).
    eventually("every event enforced and every run ended", || {
        let events = srv.get("/api/v1/trigger-instances?limit=100");
        let page = srv.get("/api/v1/executions?limit=100");
        let runs = page["executions"].as_array().or(page.as_array())?;
        let adds = runs.iter().filter(|r| r["action"] == "add").count();
        let settled = events.as_array()?.iter().all(|i| i["processed"] == true)
            && adds == 2
            && runs
                .iter()
                .all(|r| !matches!(r["status"].as_str(), Some("queued" | "running")));
        settled.then_some(())
    });
    drop(srv);

    // The CLI reads the same.
    let listed = bus
        .home
        .run(&["trigger-instance", "list", "--json"])
        .ok()
        .json();
    assert!(listed.as_array().unwrap().len() >= 3, "{listed}");
    let got = bus
        .home
        .run(&["trigger-instance", "get", &instance])
        .ok()
        .stdout
        .clone();
    assert!(
        got.contains(&format!(
            "rule restart-on-disk-alert: started execution {id}"
        )),
        "{got}"
    );
    let shown = bus.home.run(&["execution", "get", &id]).ok().stdout.clone();
    assert!(shown.contains("rule restart-on-disk-alert"), "{shown}");

    // Purged with the executions: every processed event and its
    // enforcements.
    let purged = bus
        .home
        .run(&["execution", "purge", "--before", "0s", "--json"])
        .ok()
        .json();
    assert!(
        purged["trigger_instances"].as_u64().unwrap() >= 5,
        "{purged}"
    );
    assert!(purged["enforcements"].as_u64().unwrap() >= 5, "{purged}");
    let left = bus
        .home
        .run(&["trigger-instance", "list", "--json"])
        .ok()
        .json();
    assert_eq!(left, json!([]));
}

fn a_crash_between_steps_starts_each_execution_once(kind: StoreKind) {
    // One rule: an execution's end must not be an event here, or the
    // server armed to crash would crash enforcing it as it starts.
    let mut bus = Bus::with_rules(kind, &[("restart.yaml", RULE)]);
    // On a shared store a starting server takes only events older than
    // this for a crashed server's.
    bus.args.extend(["--abandoned-after".into(), "1s".into()]);
    for (n, step) in ["trigger-written", "enforcement-written"]
        .into_iter()
        .enumerate()
    {
        let host = format!("web{n}");
        let mut srv = bus.serve(Some(step));
        // The server kills itself mid-request.
        let _ = alert(&srv, json!({"severity": "high", "host": host}));
        let status = srv.child.wait().unwrap();
        use std::os::unix::process::ExitStatusExt;
        assert_eq!(status.signal(), Some(9), "killed at {step}");
        drop(srv);
        std::thread::sleep(Duration::from_millis(1100));

        let srv = bus.serve(None);
        let instance = eventually("the instance, processed after the restart", || {
            let all = srv.get("/api/v1/trigger-instances?limit=100");
            all.as_array()?
                .iter()
                .find(|t| t["payload"]["body"]["host"] == json!(host) && t["processed"] == true)
                .map(|t| t["id"].as_str().unwrap().to_owned())
        });
        let seen = srv.get(&format!("/api/v1/trigger-instances/{instance}"));
        let e = &seen["enforcements"][0];
        assert_eq!(e["outcome"], "started", "{seen}");
        let id = e["execution"].as_str().unwrap().to_owned();
        assert_eq!(srv.wait_done(&id)["result"], format!("text=restart {host}"));
        // Exactly one execution for the match.
        let text = format!("restart {host}");
        let page = srv.get("/api/v1/executions?limit=200");
        let runs = page["executions"]
            .as_array()
            .or(page.as_array())
            .unwrap()
            .iter()
            .filter(|r| r["input"]["text"] == json!(text))
            .count();
        assert_eq!(runs, 1, "after a crash at {step}: {page}");
    }
}

/// On a store servers share, the live ones take over the event of one
/// that died mid-event: enforced once, with no restart, although two of
/// them look for such events every half second.
#[test]
fn live_servers_take_over_a_dead_servers_event_once() {
    let mut bus = Bus::with_rules(StoreKind::Postgres, &[("restart.yaml", RULE)]);
    bus.args.extend(["--abandoned-after".into(), "1s".into()]);
    let live = [bus.serve(None), bus.serve(None)];
    for (n, step) in ["trigger-written", "enforcement-written"]
        .into_iter()
        .enumerate()
    {
        let host = format!("web{n}");
        let mut dying = bus.serve(Some(step));
        let _ = alert(&dying, json!({"severity": "high", "host": host}));
        let status = dying.child.wait().unwrap();
        use std::os::unix::process::ExitStatusExt;
        assert_eq!(status.signal(), Some(9), "killed at {step}");
        drop(dying);

        let text = format!("restart {host}");
        let runs = |srv: &Server| {
            let page = srv.get("/api/v1/executions?limit=200");
            page["executions"]
                .as_array()
                .unwrap()
                .iter()
                .filter(|r| r["input"]["text"] == json!(text))
                .map(|r| r["id"].as_str().unwrap().to_owned())
                .collect::<Vec<_>>()
        };
        let id = eventually("a live server taking the event over", || {
            runs(&live[0]).pop()
        });
        assert_eq!(
            live[0].wait_done(&id)["result"],
            format!("text=restart {host}")
        );
        // Some more sweeps of both: nobody starts it again.
        std::thread::sleep(Duration::from_millis(1500));
        assert_eq!(runs(&live[1]), vec![id.clone()], "after a crash at {step}");
        let events = live[1].get("/api/v1/trigger-instances?limit=100");
        let event = events
            .as_array()
            .unwrap()
            .iter()
            .find(|t| t["payload"]["body"]["host"] == json!(host))
            .unwrap();
        assert_eq!(event["processed"], true, "{event}");
    }
    let said: String = live.iter().map(|s| s.log.lock().unwrap().clone()).collect();
    assert_eq!(
        said.matches("an event another server left").count(),
        2,
        "{said}"
    );
}

fn timer(name: &str, parameters: &str) -> String {
    format!(
        "name: {name}\ntrigger: {{ type: wasmflow.interval, parameters: {{ {parameters} }} }}\n\
         action: {{ ref: add, input: {{ a: 1, b: 2 }} }}\n"
    )
}

/// Each rule's firings: (scheduled, fired) in milliseconds since the epoch,
/// oldest first, and how many were made up (`missed`).
fn firings(srv: &Server, rule: &str) -> Vec<(u64, u64)> {
    firings_missed(srv, rule).0
}

fn firings_missed(srv: &Server, rule: &str) -> (Vec<(u64, u64)>, usize) {
    let ms = |v: &Value| {
        humantime::parse_rfc3339_weak(v.as_str().unwrap())
            .unwrap()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_millis() as u64
    };
    let all = srv.get("/api/v1/trigger-instances?limit=1000");
    let mine: Vec<&Value> = all
        .as_array()
        .unwrap()
        .iter()
        .filter(|t| t["parameters"]["rule"] == json!(rule))
        .collect();
    let mut out: Vec<(u64, u64)> = mine
        .iter()
        .map(|t| {
            (
                ms(&t["payload"]["scheduled_at"]),
                ms(&t["payload"]["fired_at"]),
            )
        })
        .collect();
    out.sort();
    let missed = mine
        .iter()
        .filter(|t| t["payload"]["missed"] == true)
        .count();
    (out, missed)
}

fn timers_fire_on_time_and_catch_up_as_asked(kind: StoreKind) {
    let cron = "name: even-seconds\ntrigger: { type: wasmflow.cron, parameters: { expression: \"*/2 * * * * *\", timezone: Europe/Paris } }\naction: { ref: add, input: { a: 2, b: 2 } }\n";
    let bus = Bus::with_rules(
        kind,
        &[
            ("skip.yaml", &timer("every-second-skip", "every: 1s")),
            (
                "once.yaml",
                &timer("every-second-once", "every: 1s, catchup: once"),
            ),
            (
                "all.yaml",
                &timer("every-second-all", "every: 1s, catchup: all"),
            ),
            ("cron.yaml", cron),
        ],
    );
    let srv = bus.serve(None);
    std::thread::sleep(Duration::from_millis(3500));
    // At least 3 firings a second apart, each on time, each starting `add`.
    let before = firings(&srv, "every-second-skip");
    assert!(before.len() >= 3, "{before:?}");
    for pair in before.windows(2) {
        assert_eq!(pair[1].0 - pair[0].0, 1000, "{before:?}");
    }
    for (scheduled, fired) in &before {
        assert_eq!(scheduled % 1000, 0);
        // On time (the bound leaves room for a loaded test machine).
        assert!(fired - scheduled < 2000, "late: {before:?}");
    }
    let even = firings(&srv, "even-seconds");
    assert!(
        !even.is_empty() && even.iter().all(|(s, _)| (s / 1000) % 2 == 0),
        "{even:?}"
    );
    let ran = srv.get("/api/v1/rule-enforcements?limit=1000");
    let started = ran
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["outcome"] == "started")
        .count();
    assert!(started >= 9, "{ran}");
    let (code, _) = srv.terminate();
    assert_eq!(code, 0);

    // Down for three seconds: the missed firings as each rule asks.
    std::thread::sleep(Duration::from_millis(3000));
    let srv = bus.serve(None);
    std::thread::sleep(Duration::from_millis(1500));
    let gaps = |f: &[(u64, u64)]| f.windows(2).filter(|p| p[1].0 - p[0].0 > 1000).count();
    let (skip, made_up) = firings_missed(&srv, "every-second-skip");
    assert_eq!((gaps(&skip), made_up), (1, 0), "skip: {skip:?}");
    let (once, made_up) = firings_missed(&srv, "every-second-once");
    assert_eq!((gaps(&once), made_up), (1, 1), "once: {once:?}");
    let (all, made_up) = firings_missed(&srv, "every-second-all");
    assert_eq!(gaps(&all), 0, "all: {all:?}");
    assert!(made_up >= 2, "all: {all:?}");
    // No firing twice, and each started its execution once.
    let ids = srv.get("/api/v1/trigger-instances?limit=1000");
    let mut seen = std::collections::HashSet::new();
    for t in ids.as_array().unwrap() {
        let key = (
            t["parameters"]["rule"].to_string(),
            t["payload"]["scheduled_at"].to_string(),
        );
        assert!(seen.insert(key), "fired twice: {t}");
    }
}

const DISK_RULE: &str = r#"name: disk-nearly-full
trigger: { type: monitor.disk-alert }
criteria:
  trigger.used: { type: gt, pattern: 90 }
action:
  ref: keyed
  input: { key: "", var: "", program: "", args: [], text: "clean {{ trigger.host }}" }
"#;

fn a_packs_trigger_type_is_emitted_through_the_api(kind: StoreKind) {
    // A pack that declares a trigger type (installed as `pack pull` leaves
    // one), written before the rules that use it are checked.
    let bus = Bus::with_rules(kind, &[]);
    let pack = bus.home.path().join("packs/monitor");
    std::fs::create_dir_all(&pack).unwrap();
    std::fs::write(
        pack.join("pack.yaml"),
        "name: monitor\nversion: 1.0.0\ntriggers:\n  disk-alert:\n    description: A disk is filling up\n    payload:\n      type: object\n      properties: { host: { type: string }, used: { type: integer } }\n      required: [host, used]\n",
    )
    .unwrap();
    std::fs::write(bus.home.path().join("rules/disk.yaml"), DISK_RULE).unwrap();
    let types = bus.home.run(&["trigger", "list", "--json"]).ok().json();
    let disk = types
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["name"] == "monitor.disk-alert");
    assert_eq!(
        disk.unwrap()["payload"]["required"],
        json!(["host", "used"]),
        "{types}"
    );

    let srv = bus.serve(None);
    let emit = |kind: &str, payload: Value| srv.post(&format!("/api/v1/triggers/{kind}"), payload);
    let (status, v) = emit("monitor.disk-alert", json!({"host": "db1", "used": 95}));
    assert_eq!(status, 202, "{v}");
    let instance = v["trigger_instance"].as_str().unwrap().to_owned();
    let seen = srv.get(&format!("/api/v1/trigger-instances/{instance}"));
    let id = seen["enforcements"][0]["execution"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(srv.wait_done(&id)["result"], "text=clean db1");
    // Checked against the type's schema, with the path; unknown types and
    // wasmflow's own are refused.
    let (status, v) = emit("monitor.disk-alert", json!({"host": "db1", "used": "lots"}));
    assert_eq!(status, 422, "{v}");
    assert!(v["error"].as_str().unwrap().contains("/used"), "{v}");
    assert_eq!(emit("monitor.nope", json!({})).0, 404);
    assert_eq!(emit("wasmflow.webhook", json!({})).0, 422);

    // From the command line, through the server.
    let payload = bus.home.path().join("alert.json");
    std::fs::write(&payload, r#"{"host": "db2", "used": 99}"#).unwrap();
    let out = remote(
        &bus,
        &srv,
        &[
            "trigger",
            "emit",
            "monitor.disk-alert",
            "--payload",
            s(&payload),
        ],
    );
    let emitted = out.ok().stdout.trim().to_owned();
    let seen = srv.get(&format!("/api/v1/trigger-instances/{emitted}"));
    assert_eq!(seen["instance"]["payload"]["host"], "db2");
    bus.home
        .run(&[
            "trigger",
            "emit",
            "monitor.disk-alert",
            "--payload",
            s(&payload),
        ])
        .code(2)
        .stderr_has("--server URL");
}

const NEW_FILE_RULE: &str = r#"name: greet-new-files
trigger: { type: watch.file-created }
action:
  ref: keyed
  input: { key: "", var: "", program: "", args: [], text: "new {{ trigger.name }}" }
"#;

/// A sensor built from source (`tests/fixtures/watch`, Python) in a pack
/// published to a registry and installed from it, with its trigger type
/// and its rule: it polls a granted directory; each new file is an event
/// the rule turns into an execution; its polls are executions, replayable.
fn a_sensor_component_emits_events_a_rule_runs_on(kind: StoreKind) {
    let bus = Bus::with_rules(kind, &[]);
    let watched = bus.home.path().join("inbox");
    std::fs::create_dir_all(&watched).unwrap();
    // The rule comes with the pack, in its rules/.
    let work = tempfile::tempdir().unwrap();
    let pack = work.path().join("watch");
    std::fs::create_dir_all(pack.join("rules")).unwrap();
    std::fs::write(pack.join("rules/greet.yaml"), NEW_FILE_RULE).unwrap();
    std::fs::copy(
        support::built("tests/fixtures/watch"),
        pack.join("watch.wasm"),
    )
    .unwrap();
    std::fs::write(
        pack.join("pack.yaml"),
        format!(
            "name: watch\nversion: 1.0.0\n\
             triggers:\n  file-created:\n    payload: {{ type: object, properties: {{ name: {{ type: string }} }}, required: [name] }}\n\
             sensors:\n  inbox:\n    component: watch.wasm\n    interval: 500ms\n    grants: {{ read: [{dir}], env: [WATCH_DIR] }}\n",
            dir = s(&watched)
        ),
    )
    .unwrap();
    // A second rule runs a published action by its oci:// reference.
    let reg = crate::registry::Registry::start(None);
    let add = reg.reference("tests/add:1.0.0");
    bus.home
        .run(&["push", s(&wat("add")), &add, "--insecure"])
        .ok();
    std::fs::write(
        pack.join("rules/count.yaml"),
        format!("name: count-new-files\ntrigger: {{ type: watch.file-created }}\naction: {{ ref: \"{add}\", input: {{ a: 1, b: 2 }} }}\n"),
    )
    .unwrap();
    let index = reg.reference("tests/watch:1.0.0");
    bus.home
        .run(&["pack", "push", s(&pack), &index, "--insecure"])
        .ok()
        .stderr_has("pushed sensor watch.inbox as oci://")
        .stderr_has("(1 trigger type, 1 sensor, 2 rules)");
    drop(work);
    bus.home
        .run(&["pack", "pull", &index, "--insecure"])
        .ok()
        .stderr_has("1 trigger type, 1 sensor, 2 rules");
    let listed = bus.home.run(&["pack", "list"]).ok().stdout.clone();
    for line in [
        "trigger  watch.file-created",
        "sensor   watch.inbox (every 500ms)",
        "rule     rules/greet.yaml",
    ] {
        assert!(listed.contains(line), "{listed}");
    }
    let args: Vec<&str> = bus.args.iter().map(String::as_str).collect();
    let mut args = args.clone();
    let dir = s(&watched).to_owned();
    args.extend([
        "--allow-read",
        &dir,
        "--allow-env",
        "WATCH_DIR",
        "--insecure",
    ]);
    let srv = serve_home_env(
        &bus.home,
        &bus.token,
        &args,
        &[("WF_ALERTS_SECRET", SECRET), ("WATCH_DIR", &dir)],
    );
    std::thread::sleep(Duration::from_millis(700));
    std::fs::write(watched.join("report.txt"), "quarterly").unwrap();
    let id = eventually("an execution for the new file", || {
        let page = srv.get("/api/v1/executions?limit=200");
        page["executions"]
            .as_array()?
            .iter()
            .find(|r| r["input"]["text"] == "new report.txt")
            .and_then(|r| r["id"].as_str().map(str::to_owned))
    });
    let done = srv.wait_done(&id);
    assert_eq!(done["result"], "text=new report.txt", "{done}");
    // Its polls are executions, started by the sensor, replayable.
    let polls = srv.get("/api/v1/executions?limit=200&action=watch.inbox@1.0.0");
    let polls = polls["executions"].as_array().unwrap();
    assert!(polls.len() >= 2, "{polls:?}");
    assert_eq!(polls[0]["started_by"], json!({"sensor": "watch.inbox"}));
    let found = polls
        .iter()
        .find(|p| {
            p["result"]["events"]
                .as_array()
                .is_some_and(|e| !e.is_empty())
        })
        .expect("the poll that saw the file");
    let (status, replay) = srv.post(
        &format!(
            "/api/v1/executions/{}/replay",
            found["id"].as_str().unwrap()
        ),
        json!({}),
    );
    assert_eq!((status, &replay["passed"]), (200, &json!(true)), "{replay}");
    // The file is new once: one execution.
    std::thread::sleep(Duration::from_millis(1200));
    let page = srv.get("/api/v1/executions?limit=200");
    let runs = page["executions"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["input"]["text"] == "new report.txt")
        .count();
    assert_eq!(runs, 1);
    // The other rule's: the published action, recorded pinned to its digest.
    let page = srv.get("/api/v1/executions?limit=200&status=succeeded");
    let pulled: Vec<&Value> = page["executions"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["started_by"]["rule"]["rule"] == "count-new-files")
        .collect();
    assert_eq!(pulled.len(), 1, "{page}");
    assert_eq!(pulled[0]["result"], 3);
    let action = pulled[0]["action"].as_str().unwrap();
    assert!(
        action.starts_with(&format!("{add}@sha256:")),
        "{}",
        pulled[0]
    );
    drop(reg);
}

const ASKING: &str = r#"version: 1
tasks:
  approve:
    action: core.ask
    input: { schema: { type: object, properties: { ok: { type: boolean } }, required: [ok] }, route: ops }
    next: [{ do: add }]
  add:
    action: add.wat
    input: { a: 1, b: 1 }
"#;

const TELL_OPS: &str = r#"name: tell-ops
trigger: { type: wasmflow.inquiry, parameters: { route: ops } }
action:
  ref: keyed
  input: { key: "", var: "", program: "", args: [], text: "answer {{ trigger.id }} for {{ trigger.task }}" }
"#;

/// A workflow waiting on a person is an event (`wasmflow.inquiry`), once
/// per inquiry: a rule can tell whoever answers.
fn an_open_inquiry_is_an_event(kind: StoreKind) {
    let bus = Bus::with_rules(kind, &[("tell.yaml", TELL_OPS)]);
    std::fs::write(bus.home.path().join("actions/asking.yaml"), ASKING).unwrap();
    let srv = bus.serve(None);
    let wf = srv.start(json!({"action": "asking"}));
    srv.wait_status(&wf, &["paused"]);
    let open = srv.get("/api/v1/inquiries");
    let inquiry = open[0]["id"].as_str().unwrap().to_owned();
    let seen = eventually("the inquiry as an event", || {
        let (status, v) = srv.call(
            "GET",
            &format!("/api/v1/trigger-instances/{inquiry}"),
            Some(&srv.token),
            None,
        );
        (status == 200 && v["instance"]["processed"] == true).then_some(v)
    });
    assert_eq!(seen["instance"]["type"], "wasmflow.inquiry");
    let id = seen["enforcements"][0]["execution"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(
        srv.wait_done(&id)["result"],
        format!("text=answer {inquiry} for approve")
    );
}
