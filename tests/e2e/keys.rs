//! `wasmflow key` and `/api/v1/keys`: the datastore on both stores. A
//! secret is set and used, then every file of the home (and of the
//! PostgreSQL cluster) is searched for its bytes.

use crate::server::{http_client, serve_home};
use crate::{files_under, s, wat, Home, StoreKind};
use serde_json::{json, Value};
use std::io::Write;
use std::process::Stdio;
use std::time::Duration;

crate::on_both_stores!(
    keys_expire_secrets_stay_encrypted_and_rotate,
    workflows_read_keys_with_kv
);

/// Bytes no other test writes.
pub(crate) fn unique(what: &str) -> String {
    let t = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    format!("{what}-{}-{t}", std::process::id())
}

/// Files under `dir` holding `needle`.
pub(crate) fn holding(dir: &std::path::Path, needle: &str) -> Vec<String> {
    files_under(dir)
        .into_iter()
        .filter(|f| {
            std::fs::read(f)
                .map(|b| b.windows(needle.len()).any(|w| w == needle.as_bytes()))
                .unwrap_or(false)
        })
        .map(|f| f.display().to_string())
        .collect()
}

fn keys_expire_secrets_stay_encrypted_and_rotate(kind: StoreKind) {
    let home = Home::with_store(kind);
    let key = |args: &[&str]| home.run(&[&["key"], args].concat());

    // Plain keys: set, read, list, delete. (One is kept in clear to show
    // the search below finds what is on disk.)
    key(&["set", "system.region", "eu-west"]).ok();
    let plain = unique("plain");
    key(&["set", "user.ann.plain", &plain]).ok();
    assert_eq!(key(&["get", "system.region"]).ok().stdout, "eu-west\n");
    key(&["set", "user.ann.editor", "vim"]).ok();
    let listed = key(&["list", "--json", "--prefix", "system."]).ok().json();
    assert_eq!(listed.as_array().unwrap().len(), 1, "{listed}");
    assert_eq!(listed[0]["name"], "system.region");

    // Names carry a scope; the mistake is named, exit 2.
    key(&["set", "region", "x"])
        .code(2)
        .stderr_has("`region` is not a key name: it starts with a scope");
    key(&["get", "system.nope"])
        .code(2)
        .stderr_has("no key `system.nope`");

    // A TTL is enforced.
    key(&["set", "system.session", "s1", "--ttl", "1s"]).ok();
    assert_eq!(key(&["get", "system.session"]).ok().stdout, "s1\n");
    std::thread::sleep(Duration::from_millis(1300));
    key(&["get", "system.session"])
        .code(2)
        .stderr_has("no key `system.session`");

    // A secret, from stdin: masked unless decrypted, encrypted at rest.
    let secret = unique("hunter2");
    let mut child = home
        .cmd()
        .args(["key", "set", "system.db_password", "-", "--secret"])
        .stdin(Stdio::piped())
        .spawn()
        .unwrap();
    writeln!(child.stdin.take().unwrap(), "{secret}").unwrap();
    assert!(child.wait().unwrap().success());
    assert_eq!(key(&["get", "system.db_password"]).ok().stdout, "***\n");
    assert_eq!(
        key(&["get", "system.db_password", "--decrypt"]).ok().stdout,
        format!("{secret}\n")
    );
    let shown = key(&["get", "system.db_password", "--json"]).ok().json();
    assert_eq!(
        (&shown["value"], &shown["secret"]),
        (&json!("***"), &json!(true))
    );
    let table = key(&["list"]).ok().stdout.clone();
    let row = table
        .lines()
        .find(|l| l.contains("system.db_password"))
        .unwrap();
    assert!(
        row.contains("***") && row.contains("yes") && !table.contains(&secret),
        "{table}"
    );
    use std::os::unix::fs::PermissionsExt;
    let key_file = home.path().join("secret.key");
    let mode = std::fs::metadata(&key_file).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600);

    // A load sets all or nothing, naming the file and the entry.
    let file = home.path().join("keys.yaml");
    std::fs::write(&file, "system.a: 1\nnope: 2\n").unwrap();
    key(&["load", s(&file)])
        .code(2)
        .stderr_has("keys.yaml: `nope` is not a key name");
    key(&["get", "system.a"]).code(2);
    std::fs::write(
        &file,
        format!("system.a: 1\nsystem.b: {{ value: \"{secret}-b\", secret: true }}\n"),
    )
    .unwrap();
    key(&["load", s(&file)]).ok().stderr_has("2 keys set");
    std::fs::remove_file(&file).unwrap();

    // Rotation: a new key, the same secrets.
    let before = std::fs::read(&key_file).unwrap();
    key(&["rotate"]).ok().stderr_has("2 secrets re-encrypted");
    assert_ne!(std::fs::read(&key_file).unwrap(), before);
    assert_eq!(
        key(&["get", "system.b", "--decrypt"]).ok().stdout,
        format!("{secret}-b\n")
    );
    // Without the key the secret cannot be read, and says why.
    let mut c = home.cmd();
    c.args(["key", "get", "system.b", "--decrypt"]).env(
        "WASMFLOW_SECRET_KEY_FILE",
        home.path().join("elsewhere.key"),
    );
    crate::Run::from(c.output().unwrap())
        .code(2)
        .stderr_has("cannot be read");

    // The API: secrets masked, decrypting needs a read-write token.
    let rw = key_token(&home, "ops", false);
    let ro = key_token(&home, "viewer", true);
    let srv = serve_home(&home, &rw, &["--allow-empty"]);
    let (url, http) = (srv.url.clone(), http_client());
    let call = |method: reqwest::Method, path: &str, token: &str, body: Option<Value>| {
        let mut req = http
            .request(method, format!("{url}/api/v1{path}"))
            .bearer_auth(token);
        if let Some(b) = body {
            req = req.json(&b);
        }
        let resp = req.send().unwrap();
        let status = resp.status().as_u16();
        (status, resp.json::<Value>().unwrap_or(Value::Null))
    };
    use reqwest::Method;
    let api_secret = unique("api-secret");
    let (status, v) = call(
        Method::PUT,
        "/keys/system.api",
        &rw,
        Some(json!({"value": api_secret, "secret": true, "ttl": "1h"})),
    );
    assert_eq!((status, &v["value"]), (200, &json!("***")), "{v}");
    let (status, v) = call(Method::GET, "/keys?prefix=system.", &ro, None);
    assert_eq!(status, 200);
    let names: Vec<&str> = v
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        [
            "system.a",
            "system.api",
            "system.b",
            "system.db_password",
            "system.region"
        ]
    );
    assert!(!v.to_string().contains("hunter2"), "{v}");
    assert_eq!(
        call(Method::GET, "/keys/system.api?decrypt=true", &ro, None).0,
        403
    );
    let (status, v) = call(Method::GET, "/keys/system.api?decrypt=true", &rw, None);
    assert_eq!(
        (status, v["value"].as_str()),
        (200, Some(api_secret.as_str()))
    );
    assert_eq!(call(Method::GET, "/keys/system.gone", &rw, None).0, 404);
    let (status, v) = call(Method::PUT, "/keys/oops", &rw, Some(json!({"value": "x"})));
    assert_eq!(status, 422, "{v}");
    assert_eq!(
        call(
            Method::PUT,
            "/keys/system.x",
            &ro,
            Some(json!({"value": "x"}))
        )
        .0,
        403
    );
    // A token is its own user: its `user.NAME.` keys are its alone.
    let mine = json!({"value": "dark"});
    assert_eq!(
        call(Method::PUT, "/keys/user.ops.theme", &rw, Some(mine)).0,
        200
    );
    let (status, v) = call(Method::GET, "/keys/user.ops.theme", &ro, None);
    assert_eq!(status, 403, "{v}");
    assert!(
        v["error"].as_str().unwrap().contains("is user ops's"),
        "{v}"
    );
    let theirs = json!({"value": "x"});
    assert_eq!(
        call(Method::PUT, "/keys/user.viewer.x", &rw, Some(theirs)).0,
        403
    );
    assert_eq!(
        call(Method::DELETE, "/keys/user.ops.theme", &ro, None).0,
        403
    );
    let listed = |token: &str| -> Vec<String> {
        let (_, v) = call(Method::GET, "/keys?prefix=user.", token, None);
        v.as_array()
            .unwrap()
            .iter()
            .map(|k| k["name"].as_str().unwrap().to_owned())
            .collect()
    };
    assert_eq!(listed(&rw), ["user.ops.theme"]);
    assert_eq!(listed(&ro), Vec::<String>::new());
    assert_eq!(
        call(Method::GET, "/keys/user.ops.theme", &rw, None).1["value"],
        "dark"
    );
    assert_eq!(
        call(Method::DELETE, "/keys/user.ops.theme", &rw, None).0,
        204
    );
    // Set while the server runs, seen by the CLI (and the other way).
    assert_eq!(
        key(&["get", "system.api", "--decrypt"]).ok().stdout,
        format!("{api_secret}\n")
    );
    assert_eq!(call(Method::DELETE, "/keys/system.api", &rw, None).0, 204);
    assert_eq!(call(Method::DELETE, "/keys/system.api", &rw, None).0, 404);
    let server_log = srv.log.lock().unwrap().clone();
    drop(srv);
    key(&["delete", "system.region"]).ok();
    key(&["delete", "system.region"]).code(2);

    // No secret's bytes anywhere on disk: the home (store, key files) and,
    // on PostgreSQL, the whole cluster (data and WAL) once checkpointed.
    for needle in [&secret, &api_secret] {
        assert_eq!(
            holding(home.path(), needle),
            Vec::<String>::new(),
            "{needle}"
        );
        assert!(!server_log.contains(needle.as_str()));
    }
    if kind == StoreKind::Sled {
        assert!(
            !holding(home.path(), &plain).is_empty(),
            "the search finds a plain value"
        );
    }
    if let (StoreKind::Postgres, Some(url)) = (kind, &home.store) {
        let cluster = wasmflow_testkit::PgCluster::shared();
        let db = url.rsplit('/').next().unwrap();
        let stored = cluster.psql(db, "SELECT value FROM keys WHERE name = 'system.b'");
        assert!(stored.starts_with("xchacha20poly1305:"), "{stored}");
        cluster.psql(db, "CHECKPOINT");
        assert!(
            !holding(cluster.dir(), &plain).is_empty(),
            "the search finds a plain value"
        );
        for needle in [&secret, &api_secret] {
            assert_eq!(
                holding(cluster.dir(), needle),
                Vec::<String>::new(),
                "{needle}"
            );
        }
    }
}

/// A token made before the server starts (sled: the server holds the home).
/// Shared by the tests that serve a home of their own.
pub(crate) fn key_token(home: &Home, name: &str, read_only: bool) -> String {
    let mut args = vec!["token", "create", "--name", name];
    if read_only {
        args.push("--read-only");
    }
    home.run(&args).ok().stdout.trim().to_owned()
}

const KV_FLOW: &str = r#"
version: 1
input:
  - { name: b, type: u32 }
tasks:
  add:
    action: add.wat
    input: { a: "{{ kv('system.base') | int }}", b: "{{ input.b }}" }
    next: [{ publish: { sum: "{{ result }}" } }]
output: { sum: "{{ ctx.sum }}", region: "{{ kv('system.region') }}" }
"#;

/// The same in Orquesta's YAQL: `kv()`, and st2's `st2kv()`, beside
/// `task_status()`.
const KV_FLOW_YAQL: &str = r#"
version: 1.0
input: [b]
tasks:
  add:
    action: add.wat a=<% int(kv('system.base')) %> b=<% ctx(b) %>
    next: [{ publish: "sum=<% result() %>" }]
output:
  - sum: <% ctx(sum) %>
  - region: <% st2kv('system.region') %>
  - add: <% task_status(add) %>
  - never: <% task_status(nothing) %>
"#;

/// A workflow reads keys with `kv()`; a missing key and a secret are
/// refused, naming the key, and fail the workflow, not the host.
fn workflows_read_keys_with_kv(kind: StoreKind) {
    let home = Home::with_store(kind);
    let dir = tempfile::tempdir().unwrap();
    std::fs::copy(wat("add"), dir.path().join("add.wat")).unwrap();
    let flow = dir.path().join("flow.yaml");
    std::fs::write(&flow, KV_FLOW).unwrap();
    let run = || home.run(&["run", s(&flow), "-p", "b=2", "--json"]);
    home.run(&["key", "set", "system.base", "40"]).ok();
    home.run(&["key", "set", "system.region", "eu-west"]).ok();
    let done = run().ok().json();
    assert_eq!(
        done["result"],
        json!({"sum": 42, "region": "eu-west"}),
        "{done}"
    );
    let yaql = dir.path().join("yaql.yaml");
    std::fs::write(&yaql, KV_FLOW_YAQL).unwrap();
    let done = home
        .run(&["run", s(&yaql), "-p", "b=2", "--json"])
        .ok()
        .json();
    assert_eq!(
        done["result"],
        json!({"sum": 42, "region": "eu-west", "add": "succeeded", "never": "unset"}),
        "{done}"
    );

    home.run(&["key", "delete", "system.base"]).ok();
    let failed = run();
    failed.code(1);
    let failed = failed.json();
    assert!(
        failed
            .to_string()
            .contains("kv(\\\"system.base\\\"): no such key"),
        "{failed}"
    );
    home.run(&["key", "set", "system.base", "1", "--secret"])
        .ok();
    let refused = run();
    refused.code(1);
    assert!(
        refused.json().to_string().contains("it is a secret"),
        "{}",
        refused.stdout
    );
    let refused = home.run(&["run", s(&yaql), "-p", "b=2", "--json"]);
    refused.code(1);
    assert!(
        refused.json().to_string().contains("it is a secret"),
        "{}",
        refused.stdout
    );
}
