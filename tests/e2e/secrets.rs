//! Secrets never leak (#21): a secret reaches an action every way there
//! is (`wasmflow:action/keys`, `--secret-env` for the guest and for a
//! granted program, a workflow's `secret()`, a reference in an API
//! request's input) and a value is given in clear (`--allow-env
//! NAME=VALUE`); the action prints, logs and returns all of it. Then
//! their bytes are searched for in the whole home (and PostgreSQL
//! cluster), an exported bundle, every API answer and the server's log.
//! Replay with the secrets, without them, and on another machine with
//! `--secret`.

use crate::keys::{holding, key_token, unique};
use crate::server::serve_home;
use crate::{s, support, Home, StoreKind};
use serde_json::{json, Value};
use std::io::Write;
use std::process::Stdio;

crate::on_both_stores!(secrets_never_leak);

/// `wasmflow run keyed.wasm` with these parameters and flags.
fn keyed(home: &Home, params: &[(&str, &str)], flags: &[&str]) -> crate::Run {
    let wasm = support::built("tests/fixtures/keyed");
    let mut args = vec!["run".to_owned(), s(&wasm).to_owned()];
    let defaults = [
        ("key", ""),
        ("var", ""),
        ("program", ""),
        ("args", "[]"),
        ("text", ""),
    ];
    for (name, default) in defaults {
        let value = params
            .iter()
            .find(|(n, _)| *n == name)
            .map_or(default, |(_, v)| v);
        args.extend(["-p".to_owned(), format!("{name}={value}")]);
    }
    for (name, value) in params
        .iter()
        .filter(|(n, _)| !defaults.iter().any(|(d, _)| d == n))
    {
        args.extend(["-p".to_owned(), format!("{name}={value}")]);
    }
    args.extend(flags.iter().map(|f| f.to_string()));
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    home.run(&args)
}

fn set_secret(home: &Home, name: &str, value: &str) {
    let mut child = home
        .cmd()
        .args(["key", "set", name, "-", "--secret"])
        .stdin(Stdio::piped())
        .spawn()
        .unwrap();
    writeln!(child.stdin.take().unwrap(), "{value}").unwrap();
    assert!(child.wait().unwrap().success());
}

const WORKFLOW: &str = r#"
version: 1
tasks:
  connect:
    action: KEYED
    input:
      key: ""
      var: ""
      program: ""
      args: []
      text: 'postgres://app:{{ secret("system.db") }}@db/app'
    next:
      - publish:
          said: "{{ result }}"
output:
  said: "{{ ctx.said }}"
"#;

fn secrets_never_leak(kind: StoreKind) {
    let home = Home::with_store(kind);
    let secret = unique("s3cret");
    let literal = unique("lit3ral");
    let api_literal = unique("api-lit3ral");
    let param = unique("p4ram");
    let api_param = unique("api-p4ram");
    set_secret(&home, "system.db", &secret);
    home.run(&["key", "set", "system.region", "eu-west"]).ok();
    let needles = [&secret, &literal, &api_literal, &param, &api_param];

    // Through the keys interface, and as an environment variable of the
    // guest and of the program it runs: every copy masked.
    let got = keyed(
        &home,
        &[
            ("key", "system.db"),
            ("var", "DB"),
            ("program", "sh"),
            ("args", r#"["-c", "echo $DB"]"#),
            ("text", "hi"),
        ],
        &[
            "--allow-exec",
            "sh",
            "--secret-env",
            "DB=system.db",
            "--allow-key",
            "system.*",
        ],
    );
    got.ok();
    assert_eq!(got.stdout, "\"key=*** env=*** program=*** text=hi\"\n");
    let by_keys = home.last_record();
    assert_eq!(by_keys["stdout"], "key=*** env=*** program=*** text=hi\n");
    assert_eq!(
        by_keys["logs"][0]["message"],
        "key=*** env=*** program=*** text=hi"
    );
    assert_eq!(by_keys["grants"]["env"][0]["value"], "((secret:system.db))");

    // Deny by default: without --allow-key the guest is refused (and told
    // what to grant); a plain key is read as it is.
    keyed(&home, &[("key", "system.db")], &[])
        .code(1)
        .stderr_has("not granted to this execution (grant it with --allow-key system.db)");
    let plain = keyed(
        &home,
        &[("key", "system.region")],
        &["--allow-key", "system.region"],
    );
    assert_eq!(plain.ok().stdout, "\"key=eu-west text=\"\n");

    // A value given in clear is kept sealed, and masked.
    let env = format!("TOK={literal}");
    let got = keyed(&home, &[("var", "TOK")], &["--allow-env", &env]);
    assert_eq!(got.ok().stdout, "\"env=*** text=\"\n");
    let by_env = home.last_record();
    let sealed = by_env["grants"]["env"][0]["value"].as_str().unwrap();
    assert!(
        sealed.starts_with("((sealed:xchacha20poly1305:"),
        "{sealed}"
    );

    // A parameter declared `@secret`: marked in the schema, sealed in the
    // record, masked.
    let wasm = support::built("tests/fixtures/keyed");
    let schema = home.run(&["inspect", s(&wasm), "--json"]).ok().json();
    let password = &schema["input_schema"]["properties"]["password"];
    assert_eq!(password["writeOnly"], true, "{schema}");
    assert!(schema["input_schema"]["properties"]["text"]
        .get("writeOnly")
        .is_none());
    let got = keyed(&home, &[("text", "t"), ("password", &param)], &[]);
    assert_eq!(got.ok().stdout, "\"text=t password=***\"\n");
    let by_param = home.last_record();
    let kept = by_param["input"]["password"].as_str().unwrap();
    assert!(kept.starts_with("((sealed:"), "{kept}");
    let replayed = home
        .run(&["execution", "replay", by_param["id"].as_str().unwrap()])
        .ok()
        .stdout
        .clone();
    assert!(replayed.contains("reproduced"), "{replayed}");

    // A workflow's secret(): only with the operator's grant; the task's
    // input keeps the reference, its result the mask.
    let flow = home.path().join("connect.yaml");
    let keyed_wasm = support::built("tests/fixtures/keyed");
    std::fs::write(&flow, WORKFLOW.replace("KEYED", s(&keyed_wasm))).unwrap();
    home.run(&["run", s(&flow)]).code(1).stderr_has(
        "reads secret(\"system.db\"), which the operator did not grant (add --allow-key system.db",
    );
    let out = home
        .run(&["run", s(&flow), "--allow-key", "system.db"])
        .ok()
        .json();
    assert_eq!(out["said"], "text=postgres://app:***@db/app");
    let wf = home.last_record();
    let tree = home.tree(wf["id"].as_str().unwrap());
    assert!(tree.to_string().contains("((secret:system.db))"), "{tree}");

    // Replay gets the secrets again and reproduces; without them it
    // refuses before anything runs, naming what is missing.
    for rec in [&by_keys, &by_env] {
        let id = rec["id"].as_str().unwrap();
        let replayed = home.run(&["execution", "replay", id]).ok().stdout.clone();
        assert!(replayed.contains("reproduced"), "{replayed}");
    }
    let id = by_keys["id"].as_str().unwrap();
    let bundle = home.path().join("bundle.json");
    home.run(&["execution", "export", id, "-o", s(&bundle)])
        .ok()
        .stderr_has("--secret NAME=VALUE for system.db");
    let exported: Value = serde_json::from_slice(&std::fs::read(&bundle).unwrap()).unwrap();
    assert_eq!(exported["secrets"], json!(["system.db"]));
    home.run(&["key", "delete", "system.db"]).ok();
    home.run(&["execution", "replay", id])
        .code(2)
        .stderr_has("secret `system.db` is not in this store");
    set_secret(&home, "system.db", &format!("{secret}-changed"));
    home.run(&["execution", "replay", id])
        .code(2)
        .stderr_has("secret `system.db` is not the one the execution was recorded with");
    set_secret(&home, "system.db", &secret);
    home.run(&["key", "rotate"]).ok();
    let replayed = home.run(&["execution", "replay", id]).ok().stdout.clone();
    assert!(replayed.contains("reproduced"), "{replayed}");
    // A sealed value is sealed under the key rotated away: given again.
    let env_id = by_env["id"].as_str().unwrap();
    home.run(&["execution", "replay", env_id])
        .code(2)
        .stderr_has("give it with --secret TOK=VALUE");
    let given = format!("TOK={literal}");
    home.run(&["execution", "replay", env_id, "--secret", &given])
        .ok();

    // Another machine: the bundle replays with --secret, and only so.
    let other = Home::new();
    other
        .run(&["execution", "replay", "--bundle", s(&bundle)])
        .code(2)
        .stderr_has("--secret system.db=VALUE");
    let given = format!("system.db={secret}");
    let there = other
        .run(&[
            "execution",
            "replay",
            "--bundle",
            s(&bundle),
            "--secret",
            &given,
        ])
        .ok()
        .stdout
        .clone();
    assert!(there.contains("reproduced"), "{there}");

    // The server: a reference in an API request's input, a value given in
    // clear in its grants; the answers and the log hold neither.
    let token = key_token(&home, "ops", false);
    let actions = home.path().join("actions");
    std::fs::create_dir_all(&actions).unwrap();
    std::fs::copy(&keyed_wasm, actions.join("keyed.wasm")).unwrap();
    let srv = serve_home(
        &home,
        &token,
        &[
            "--actions",
            s(&actions),
            "--allow-key",
            "system.*",
            "--allow-env",
            "TOK",
        ],
    );
    let id = srv.start(json!({
        "action": "keyed",
        "input": {"key": "", "var": "TOK", "program": "", "args": [],
                  "text": "pw=((secret:system.db))", "password": api_param},
        "grants": {"key": ["system.db"], "env": [format!("TOK={api_literal}")]},
    }));
    let done = srv.wait_done(&id);
    assert_eq!(done["status"], "succeeded", "{done}");
    assert_eq!(done["result"], "env=*** text=pw=*** password=***");
    assert!(done["input"]["password"]
        .as_str()
        .unwrap()
        .starts_with("((sealed:"));
    let (status, denied) = srv.post(
        "/api/v1/executions",
        json!({"action": "keyed", "input": {"key": "", "var": "", "program": "", "args": [],
               "text": "((secret:system.db))"}}),
    );
    assert_eq!(status, 202, "{denied}");
    let denied = srv.wait_done(denied["id"].as_str().unwrap());
    assert_eq!(denied["status"], "failed", "{denied}");
    let (_, replay) = srv.post(&format!("/api/v1/executions/{id}/replay"), json!({}));
    let mut answers = vec![
        srv.get("/api/v1/executions?limit=50"),
        srv.get(&format!("/api/v1/executions/{id}")),
        srv.get(&format!(
            "/api/v1/executions/{}",
            by_keys["id"].as_str().unwrap()
        )),
        srv.get(&format!(
            "/api/v1/executions/{}",
            wf["id"].as_str().unwrap()
        )),
        srv.get(&format!(
            "/api/v1/executions/{}/graph",
            wf["id"].as_str().unwrap()
        )),
        srv.get("/api/v1/keys"),
        replay.clone(),
    ];
    let logs = srv.call(
        "GET",
        &format!("/api/v1/executions/{id}/logs"),
        Some(&srv.token),
        None,
    );
    answers.push(logs.1);
    let html = srv.call("GET", "/", None, None).1;
    answers.push(html);
    let server_log = srv.log.lock().unwrap().clone();
    drop(srv);
    let answers = serde_json::to_string(&answers).unwrap();
    assert!(
        answers.contains("text=pw=***"),
        "the search sees the answers"
    );

    // Nowhere: not on disk (home, and the PostgreSQL cluster once
    // checkpointed), not in the bundle, the answers or the server's log.
    let bundle_text = std::fs::read_to_string(&bundle).unwrap();
    for needle in needles {
        assert_eq!(
            holding(home.path(), needle),
            Vec::<String>::new(),
            "{needle}"
        );
        assert_eq!(
            holding(other.path(), needle),
            Vec::<String>::new(),
            "{needle}"
        );
        assert!(
            !bundle_text.contains(needle.as_str()),
            "{needle} in the bundle"
        );
        assert!(
            !answers.contains(needle.as_str()),
            "{needle} in an API answer"
        );
        assert!(
            !server_log.contains(needle.as_str()),
            "{needle} in the server's log"
        );
    }
    if let (StoreKind::Postgres, Some(url)) = (kind, &home.store) {
        let cluster = wasmflow_testkit::PgCluster::shared();
        let db = url.rsplit('/').next().unwrap();
        cluster.psql(db, "CHECKPOINT");
        for needle in needles {
            assert_eq!(
                holding(cluster.dir(), needle),
                Vec::<String>::new(),
                "{needle}"
            );
        }
    }
}
