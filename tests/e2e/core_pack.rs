//! The built-in `core` pack from a fresh home: each action runs by name
//! with nothing installed and is recorded with its digest; `core.local`
//! runs only with `--allow-exec sh` and then only inside the grants; a
//! workflow's tasks use them; a local pack named `core` takes their place;
//! and what wasmflow embeds is what `scripts/build-core.sh` builds from the
//! sources, byte for byte.

use crate::{s, support, wat, Home, Run};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use std::path::{Path, PathBuf};

fn embedded(name: &str) -> std::path::PathBuf {
    support::root().join(format!("host/core/components/{name}.wasm"))
}

/// `text` written as `name` in `dir`, and the record of `wasmflow run` of
/// it with `args` after it (the run must succeed).
fn run_flow(home: &Home, dir: &Path, name: &str, text: &str, args: &[&str]) -> (PathBuf, Value) {
    let flow = dir.join(name);
    std::fs::write(&flow, text).unwrap();
    let mut all = vec!["run", s(&flow)];
    all.extend(args);
    all.push("--json");
    let rec = home.run(&all).ok().json();
    (flow, rec)
}

/// `execution get ID --tree --json`.
fn tree_of(home: &Home, id: &str) -> Value {
    home.run(&["execution", "get", id, "--tree", "--json"])
        .ok()
        .json()
}

fn digest_of(path: &std::path::Path) -> String {
    format!(
        "sha256:{}",
        hex::encode(Sha256::digest(std::fs::read(path).unwrap()))
    )
}

#[test]
fn core_actions_run_from_a_fresh_home() {
    let home = Home::new();
    let rec = home
        .run(&["run", "core.echo", "-p", "message=hi there", "--json"])
        .ok()
        .json();
    assert_eq!(rec["result"], "hi there");
    assert_eq!(
        rec["action"],
        format!("core.echo@{}", env!("CARGO_PKG_VERSION"))
    );
    assert_eq!(rec["component_digest"], digest_of(&embedded("echo")));

    home.run(&["run", "core.noop"]).ok();
    home.run(&["run", "core.error", "-p", "message=disk full"])
        .code(1)
        .stderr_has("[error] disk full");

    let uuid = |home: &Home| home.run(&["run", "core.uuid"]).ok().json();
    let (a, b) = (uuid(&home), uuid(&home));
    // xxxxxxxx-xxxx-4xxx-yxxx-xxxxxxxxxxxx, y one of 8, 9, a, b.
    let text = a.as_str().unwrap();
    let groups: Vec<&str> = text.split('-').collect();
    let lengths: Vec<usize> = groups.iter().map(|g| g.len()).collect();
    assert_eq!(lengths, [8, 4, 4, 4, 12], "{a}");
    assert!(text
        .chars()
        .all(|c| c == '-' || c.is_ascii_hexdigit() && !c.is_ascii_uppercase()));
    assert!(
        groups[2].starts_with('4') && "89ab".contains(&groups[3][..1]),
        "{a}"
    );
    assert_ne!(a, b);

    let paused = home
        .run(&["run", "core.pause", "-p", "max_pause=0.3", "--json"])
        .ok()
        .json();
    let took = |r: &Value, from: &str| {
        let at = |k: &str| humantime::parse_rfc3339(r[k].as_str().unwrap()).unwrap();
        at("ended_at").duration_since(at(from)).unwrap()
    };
    assert!(took(&paused, "started_at").as_millis() >= 300, "{paused}");

    // `inspect` reads it like any action.
    let shown = home.run(&["inspect", "core.local", "--json"]).ok().json();
    assert!(
        shown["wit"].as_str().unwrap().contains("return-code: s32"),
        "{shown}"
    );
    // A server has them too (though alone they are no catalog: it still
    // refuses to start on nothing but them, unless told to).
    let token = home
        .run(&["token", "create", "--name", "ci"])
        .ok()
        .stdout
        .clone();
    home.run(&["serve", "--listen", "127.0.0.1:0"])
        .code(2)
        .stderr_has("--allow-empty");
    let srv = crate::server::serve_home(&home, &token, &["--allow-empty"]);
    let id = srv.start(json!({"action": "core.echo", "input": {"message": "served"}}));
    assert_eq!(srv.wait_done(&id)["result"], "served");
    drop(srv);

    let listed = home.run(&["pack", "list"]).ok().stdout.clone();
    assert!(
        listed.contains("core.local: Run a shell command (sh -c CMD) (needs --allow-exec sh)"),
        "{listed}"
    );
}

#[test]
fn core_local_runs_only_granted_and_confined() {
    let home = Home::new();
    home.run(&["run", "core.local", "-p", "cmd=echo hi"])
        .code(1)
        .stderr_has("[sh-denied]")
        .stderr_has("--allow-exec sh");

    let out = home
        .run(&[
            "run",
            "core.local",
            "-p",
            "cmd=echo out; echo err >&2",
            "--allow-exec",
            "sh",
        ])
        .ok()
        .json();
    assert_eq!(
        out,
        json!({"stdout": "out\n", "stderr": "err\n", "return-code": 0, "succeeded": true, "failed": false})
    );
    // Output that is not UTF-8 is kept, marked.
    let bytes = home
        .run(&[
            "run",
            "core.local",
            "-p",
            r"cmd=printf 'a\377b'",
            "--allow-exec",
            "sh",
        ])
        .ok()
        .json();
    assert_eq!(bytes["stdout"], "a\u{fffd}b");

    // A non-zero exit fails the execution, with what it printed.
    home.run(&[
        "run",
        "core.local",
        "-p",
        "cmd=echo partial; exit 3",
        "--allow-exec",
        "sh",
    ])
    .code(1)
    .stderr_has("[nonzero-exit] sh -c exited with status 3");
    let failed = home.last_record();
    assert_eq!(
        failed["error"]["details"],
        json!({"stdout": "partial\n", "stderr": "", "return_code": 3})
    );

    // The shell reaches only what the execution was granted.
    let outside = tempfile::tempdir().unwrap();
    let secret = outside.path().join("secret.txt");
    std::fs::write(&secret, "topsecret").unwrap();
    let cat = format!("cmd=cat {}", s(&secret));
    let run = home.run(&["run", "core.local", "-p", &cat, "--allow-exec", "sh"]);
    run.code(1).stderr_has("[nonzero-exit]");
    assert!(!run.stdout.contains("topsecret") && !run.stderr.contains("topsecret"));
    let granted = home
        .run(&[
            "run",
            "core.local",
            "-p",
            &cat,
            "--allow-exec",
            "sh",
            "--allow-read",
            s(outside.path()),
        ])
        .ok()
        .json();
    assert_eq!(granted["stdout"], "topsecret");
}

#[test]
fn workflows_use_the_core_pack_and_a_local_core_pack_takes_its_place() {
    let home = Home::new();
    let dir = tempfile::tempdir().unwrap();
    let (_, rec) = run_flow(
        &home,
        dir.path(),
        "greet.yaml",
        r#"version: 1
input:
  - name: who
tasks:
  id:
    action: core.uuid
    next:
      - publish: { id: "{{ result }}" }
        do: say
  say:
    action: core.local
    input: { cmd: "echo hello {{ input.who }}" }
    grants: { exec: [sh] }
    next:
      - publish: { said: "{{ result.stdout | trim }}" }
        do: echo
  echo:
    action: core.echo
    input: { message: "{{ ctx.said }}" }
output:
  said: "{{ ctx.said }}"
  id_length: "{{ ctx.id | length }}"
"#,
        &["-p", "who=ops", "--allow-exec", "sh"],
    );
    assert_eq!(
        rec["result"],
        json!({"said": "hello ops", "id_length": 36}),
        "{rec}"
    );
    let tree = tree_of(&home, rec["id"].as_str().unwrap());
    let actions: Vec<&str> = tree["children"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["action"].as_str().unwrap())
        .collect();
    let v = env!("CARGO_PKG_VERSION");
    assert_eq!(
        actions,
        [
            format!("core.uuid@{v}"),
            format!("core.local@{v}"),
            format!("core.echo@{v}")
        ]
    );

    // A pack named core above the working directory is the one used.
    let mine = tempfile::tempdir().unwrap();
    std::fs::copy(wat("add"), mine.path().join("add.wat")).unwrap();
    std::fs::write(
        mine.path().join("pack.yaml"),
        "name: core\nversion: 9.9.9\nactions:\n  echo: { component: add.wat }\n",
    )
    .unwrap();
    let run = Run::from(
        home.cmd()
            .args(["run", "core.echo", "-p", "a=2", "-p", "b=3"])
            .current_dir(mine.path())
            .output()
            .unwrap(),
    );
    assert_eq!(run.ok().stdout.trim(), "5");
    assert_eq!(home.last_record()["action"], "core.echo@9.9.9");
}

#[test]
fn the_embedded_components_are_the_build_of_their_sources() {
    let out = tempfile::tempdir().unwrap();
    let built = std::process::Command::new("bash")
        .arg(support::root().join("scripts/build-core.sh"))
        .arg(out.path())
        .env("WASMFLOW", env!("CARGO_BIN_EXE_wasmflow"))
        .output()
        .unwrap();
    assert!(
        built.status.success(),
        "scripts/build-core.sh failed:\n{}",
        String::from_utf8_lossy(&built.stderr)
    );
    let sources = std::fs::read_dir(support::root().join("host/core/actions")).unwrap();
    let mut names: Vec<String> = sources
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert!(names.len() >= 6, "{names:?}");
    for name in names {
        assert_eq!(
            digest_of(&out.path().join(format!("{name}.wasm"))),
            digest_of(&embedded(&name)),
            "host/core/components/{name}.wasm is not the build of host/core/actions/{name}: run scripts/build-core.sh"
        );
    }
}

/// YAQL as Orquesta writes it (`<% %>`), in inputs, conditions, publish and
/// output, over the core actions; a function wasmflow lacks is named at
/// validation with its position.
#[test]
fn yaql_expressions_run_on_core_actions() {
    let home = Home::new();
    let dir = tempfile::tempdir().unwrap();
    let (flow, rec) = run_flow(
        &home,
        dir.path(),
        "count.yaml",
        r#"version: 1.0
input:
  - name: who
tasks:
  greet:
    action: core.echo
    input: { message: "<% ctx(who) %>" }
    next:
      - when: <% succeeded() %>
        publish: { said: "<% result() %>" }
        do: count
  count:
    action: core.local
    input: { cmd: "echo <% ctx().said.len() %>" }
    grants: { exec: [sh] }
    next:
      - when: <% succeeded() and result().stdout.trim() = '3' %>
        publish:
          - n: <% int(result().stdout.trim()) %>
          - shout: <% ctx(said).toUpper() + '!' %>
output:
  said: <% ctx().said %>
  n: <% ctx(n) %>
  shout: <% ctx(shout) %>
"#,
        &["-p", "who=ops", "--allow-exec", "sh"],
    );
    assert_eq!(
        rec["result"],
        json!({"said": "ops", "n": 3, "shout": "OPS!"}),
        "{rec}"
    );

    let text = std::fs::read_to_string(&flow).unwrap();
    std::fs::write(&flow, text.replace("toUpper()", "shout()")).unwrap();
    home.run(&["workflow", "validate", s(&flow)])
        .code(2)
        .stderr_has("count.yaml:20:")
        .stderr_has("unknown function shout()");
}

/// YAQL's `random()` draws from a seed of the workflow and the point it is
/// evaluated at: what it decided is in the journal and the task's input,
/// two runs draw differently, and two draws of one expression differ.
#[test]
fn yaql_random_is_drawn_per_workflow_and_kept() {
    let home = Home::new();
    let dir = tempfile::tempdir().unwrap();
    let flow = r#"version: 1.0
tasks:
  pick:
    action: core.echo message=<% str(random(1, 1000000000)) %>
    next:
      - publish:
          - picked: <% int(result()) %>
          - pair: <% list(random(), random()) %>
output:
  - picked: <% ctx(picked) %>
  - pair: <% ctx(pair) %>
"#;
    let (_, a) = run_flow(&home, dir.path(), "dice.yaml", flow, &[]);
    let (_, b) = run_flow(&home, dir.path(), "dice.yaml", flow, &[]);
    let picked = a["result"]["picked"].as_i64().unwrap();
    assert!((1..=1_000_000_000).contains(&picked), "{a}");
    assert_ne!(a["result"]["picked"], b["result"]["picked"]);
    let pair: Vec<f64> = a["result"]["pair"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_f64().unwrap())
        .collect();
    assert!(
        pair.iter().all(|f| (0.0..1.0).contains(f)) && pair[0] != pair[1],
        "{a}"
    );
    // The task was given the number the workflow drew.
    let tree = tree_of(&home, a["id"].as_str().unwrap());
    let task = &tree["children"][0];
    assert_eq!(
        task["input"]["message"],
        json!(picked.to_string()),
        "{tree}"
    );
}

/// A workflow as StackStorm users write it for Orquesta: inputs as names
/// and defaults, vars and output as lists of one-key maps, a routing-only
/// task, inline action parameters, `with` naming its items (one, and two
/// over `zip`) with a concurrency, and `publish` as `name=value` pairs.
#[test]
fn orquesta_forms_run_as_written() {
    let home = Home::new();
    let dir = tempfile::tempdir().unwrap();
    let (flow, rec) = run_flow(
        &home,
        dir.path(),
        "greet.yaml",
        r#"version: 1.0
description: Greet some hosts, as written for Orquesta
input:
  - hosts
  - greeting: hello
vars:
  - seen: 0
tasks:
  start:
    next:
      - do: greet
  greet:
    with:
      items: host in <% ctx(hosts) %>
      concurrency: 1
    action: core.echo message="<% ctx(greeting) %> <% item(host) %>"
    next:
      - when: <% succeeded() %>
        publish: greetings=<% result() %> seen=<% len(result()) %>
        do: pair
  pair:
    with: h, n in <% zip(ctx(hosts), [1, 2, 3]) %>
    action: core.echo message=<% item(h) + '-' + str(item(n)) %>
    next:
      - publish:
          - pairs: <% result() %>
output:
  - greetings: <% ctx(greetings) %>
  - seen: <% ctx(seen) %>
  - pairs: <% ctx(pairs) %>
"#,
        &["-p", r#"hosts=["web1", "web2"]"#],
    );
    home.run(&["workflow", "validate", s(&flow)]).ok();
    assert_eq!(
        rec["result"],
        json!({
            "greetings": ["hello web1", "hello web2"],
            "seen": 2,
            "pairs": ["web1-1", "web2-2"]
        }),
        "{rec}"
    );
    // The routing-only task ran the built-in no-op.
    let tree = tree_of(&home, rec["id"].as_str().unwrap());
    let first = &tree["children"][0];
    assert_eq!(
        (&first["task"], &first["action"]),
        (
            &json!("start"),
            &json!(format!("core.noop@{}", env!("CARGO_PKG_VERSION")))
        ),
        "{tree}"
    );

    // Inline parameters that do not parse are named where they are.
    let text = std::fs::read_to_string(&flow).unwrap();
    std::fs::write(
        &flow,
        text.replace("message=<% item(h)", "message <% item(h)"),
    )
    .unwrap();
    home.run(&["workflow", "validate", s(&flow)])
        .code(2)
        .stderr_has("greet.yaml:23:13: tasks.pair.action")
        .stderr_has("expected name=value");
}

/// Orquesta's engine commands in `do`: `noop` and `continue` handle a
/// failure, `fail` fails the workflow, `retry` runs the task again at once
/// (at most three times).
#[test]
fn engine_commands_in_do() {
    let home = Home::new();
    let dir = tempfile::tempdir().unwrap();
    let on_failure = |command: &str| {
        format!(
            "version: 1.0\ntasks:\n  boom:\n    action: core.error message=bad\n    next:\n      - when: <% failed() %>\n        do: {command}\n"
        )
    };
    // `noop` handles the failure; `continue` leads nowhere, so it stands.
    let (_, rec) = run_flow(&home, dir.path(), "h.yaml", &on_failure("noop"), &[]);
    assert_eq!(rec["status"], "succeeded", "{rec}");
    let flow = dir.path().join("c.yaml");
    std::fs::write(&flow, on_failure("continue")).unwrap();
    home.run(&["run", s(&flow)])
        .code(1)
        .stderr_has("task `boom` failed");

    let flow = dir.path().join("fail.yaml");
    std::fs::write(
        &flow,
        "version: 1.0\ntasks:\n  fine:\n    action: core.noop\n    next:\n      - do: fail\n",
    )
    .unwrap();
    home.run(&["run", s(&flow)])
        .code(1)
        .stderr_has("`fail` in tasks.fine.next[0], after task `fine` (succeeded)");

    // Failing every time: the first run and three more, then it stands.
    let flow = dir.path().join("retry.yaml");
    std::fs::write(&flow, on_failure("retry")).unwrap();
    home.run(&["run", s(&flow)])
        .code(1)
        .stderr_has("task `boom` failed");
    let id = home.last_record()["id"].as_str().unwrap().to_owned();
    let tree = tree_of(&home, &id);
    assert_eq!(tree["children"].as_array().unwrap().len(), 4, "{tree}");

    // Failing twice, then not: retried into success.
    let count = dir.path().join("count");
    std::fs::create_dir_all(&count).unwrap();
    let flaky = format!(
        r#"version: 1.0
tasks:
  flaky:
    action: core.local
    input: {{ cmd: "n=$(cat {d}/n 2>/dev/null || echo 0); n=$((n+1)); echo $n > {d}/n; [ $n -ge 3 ]" }}
    grants: {{ exec: [sh], write: ["{d}"] }}
    next:
      - when: <% failed() %>
        do: retry
"#,
        d = s(&count)
    );
    let (_, rec) = run_flow(
        &home,
        dir.path(),
        "flaky.yaml",
        &flaky,
        &["--allow-exec", "sh", "--allow-write", s(&count)],
    );
    assert_eq!(rec["status"], "succeeded", "{rec}");
    assert_eq!(
        std::fs::read_to_string(count.join("n")).unwrap().trim(),
        "3"
    );
}

/// `core.http` reaches a server only when its host is granted, and its
/// answer is recorded: a replay reproduces it with the server gone.
#[test]
fn core_http_reaches_only_granted_hosts_and_replays() {
    let home = Home::new();
    let mut server = crate::http::TestServer::start("pong");
    let url = format!("url=http://127.0.0.1:{}/ping", server.port);
    home.run(&["run", "core.http", "-p", &url])
        .code(1)
        .stderr_has("[http-error] request denied (not granted: --allow-net)");
    assert_eq!(server.hits.load(std::sync::atomic::Ordering::SeqCst), 0);

    let grant = format!("127.0.0.1:{}", server.port);
    let got = home
        .run(&["run", "core.http", "-p", &url, "--allow-net", &grant])
        .ok()
        .json();
    assert_eq!(
        (&got["status"], &got["body"]),
        (&json!(200), &json!("pong"))
    );
    assert!(
        got["headers"]
            .as_array()
            .unwrap()
            .contains(&json!(["content-type", "text/plain"])),
        "{got}"
    );
    assert_eq!(server.hits.load(std::sync::atomic::Ordering::SeqCst), 1);
    let id = home.last_record()["id"].as_str().unwrap().to_owned();
    server.stop();
    let replay = home.run(&["execution", "replay", &id]);
    replay.ok();
    assert_eq!(home.last_record()["result"], got);
}

/// wasmflow's Orquesta conformance suite (`tests/fixtures/orquesta/`):
/// every spec rehearses as it expects; then a representative set runs for
/// real on the core pack (failures from `core.error` where the specs mock
/// them), each starting the same tasks in the same order and ending the
/// same way. `delay` really waits.
#[test]
fn orquesta_conformance_rehearsed_and_run_for_real() {
    let home = Home::new();
    let suite = support::root().join("tests/fixtures/orquesta");
    let run = home.run(&["workflow", "test", s(&suite.join("tests"))]);
    run.ok();
    assert!(
        run.stdout.contains("31 rehearsal(s): 31 passed, 0 failed"),
        "{}",
        run.stdout
    );

    // (workflow, parameters, tasks in the order they started, status)
    let cases: &[(&str, &[&str], &[&str], &str)] = &[
        ("sequential", &["who=ops"], &["a", "b", "c"], "succeeded"),
        (
            "parallel",
            &[],
            &["alpha", "task10", "task2", "omega"],
            "succeeded",
        ),
        ("decision", &["kind=vm"], &["decide", "vm"], "succeeded"),
        (
            "decision",
            &["kind=lambda"],
            &["decide", "other"],
            "succeeded",
        ),
        (
            "cycle",
            &[],
            &[
                "init", "step", "check", "step", "check", "step", "check", "done",
            ],
            "succeeded",
        ),
        ("commands", &["command=noop"], &["work"], "succeeded"),
        ("commands", &["command=continue"], &["work"], "failed"),
        (
            "commands",
            &["command=fail"],
            &["work", "cleanup"],
            "failed",
        ),
        ("errors", &[], &["work", "report"], "succeeded"),
        ("errors", &["handle=false"], &["work"], "failed"),
        (
            "join_all",
            &[],
            &["start", "left", "right", "together"],
            "succeeded",
        ),
        ("join_count", &[], &["a", "b", "c", "first"], "succeeded"),
        (
            "join_unreachable",
            &[],
            &["start", "left", "right"],
            "failed",
        ),
        ("with_items", &[], &["each", "serial", "pairs"], "succeeded"),
        ("random", &[], &["roll"], "succeeded"),
    ];
    for (name, params, tasks, status) in cases {
        let flow = suite.join(format!("workflows/{name}.yaml"));
        let mut args = vec!["run", s(&flow), "--json"];
        for p in *params {
            args.extend(["-p", p]);
        }
        let out = home.run(&args);
        out.code(if *status == "succeeded" { 0 } else { 1 });
        let rec = out.json();
        assert_eq!(rec["status"], *status, "{name} {params:?}: {rec}");
        let tree = tree_of(&home, rec["id"].as_str().unwrap());
        let mut started: Vec<String> = Vec::new();
        for c in tree["children"].as_array().unwrap() {
            // Items of a with-items run (`each[1]`) are one start.
            let task = c["task"].as_str().unwrap();
            let task = task.split('[').next().unwrap().to_owned();
            if started.last() != Some(&task) || !c["task"].as_str().unwrap().contains('[') {
                started.push(task);
            }
        }
        assert_eq!(started, *tasks, "{name} {params:?}: {tree}");
        if *name == "join_unreachable" {
            assert_eq!(rec["error"]["code"], "unreachable-join", "{rec}");
            assert!(rec["error"]["message"]
                .as_str()
                .unwrap()
                .contains("join task `together` (route 0)"));
        }
    }

    // Splits run concurrently for real, so only what ran is fixed, not
    // the order: the split task and the join after it once per route.
    let flow = suite.join("workflows/split_join.yaml");
    let rec = home.run(&["run", s(&flow), "--json"]).ok().json();
    let tree = tree_of(&home, rec["id"].as_str().unwrap());
    let count = |task: &str| {
        tree["children"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|c| c["task"] == task)
            .count()
    };
    assert_eq!(
        (count("task4"), count("task7"), count("task1")),
        (2, 2, 1),
        "{tree}"
    );

    let start = std::time::Instant::now();
    let flow = suite.join("workflows/delay.yaml");
    let rec = home
        .run(&["run", s(&flow), "-p", "wait=1", "--json"])
        .ok()
        .json();
    assert_eq!(rec["result"], json!({"said": "later"}), "{rec}");
    assert!(start.elapsed() >= std::time::Duration::from_secs(1));
}
