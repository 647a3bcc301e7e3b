//! `push`, `pull` and `run oci://` against a real OCI registry: Debian's
//! `docker-registry` (distribution 2.8), started on a loopback port with a
//! temporary storage directory.

use crate::{s, wat, Home, Run};
use serde_json::{json, Value};
use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub(crate) struct Registry {
    child: Child,
    dir: tempfile::TempDir,
    addr: String,
}

impl Registry {
    /// Start a registry; with `user`, it asks for basic auth (htpasswd).
    pub(crate) fn start(user: Option<(&str, &str)>) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let addr = format!("127.0.0.1:{port}");
        let mut config = format!(
            "version: 0.1\nlog:\n  level: warn\nstorage:\n  filesystem:\n    rootdirectory: {}\nhttp:\n  addr: {addr}\n",
            s(&dir.path().join("data"))
        );
        if let Some((u, p)) = user {
            let out = Command::new("htpasswd")
                .args(["-Bbn", u, p])
                .output()
                .expect("htpasswd (apache2-utils) is installed by .ci/run");
            assert!(out.status.success());
            let file = dir.path().join("htpasswd");
            std::fs::write(&file, out.stdout).unwrap();
            config += &format!(
                "auth:\n  htpasswd:\n    realm: wasmflow-tests\n    path: {}\n",
                s(&file)
            );
        }
        let cfg = dir.path().join("config.yml");
        std::fs::write(&cfg, config).unwrap();
        let log = std::fs::File::create(dir.path().join("registry.log")).unwrap();
        let child = Command::new("docker-registry")
            .arg("serve")
            .arg(&cfg)
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("docker-registry (Debian package) is installed by .ci/run");
        let reg = Self { child, dir, addr };
        let start = Instant::now();
        while reg.get("/v2/", "").is_none() {
            assert!(
                start.elapsed() < Duration::from_secs(20),
                "the registry did not start: {}",
                std::fs::read_to_string(reg.dir.path().join("registry.log")).unwrap_or_default()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        reg
    }

    pub(crate) fn reference(&self, repo_tag: &str) -> String {
        format!("oci://{}/{repo_tag}", self.addr)
    }

    /// A plain HTTP GET: (status, headers, body).
    fn get(&self, path: &str, accept: &str) -> Option<(u16, String, Vec<u8>)> {
        let mut conn = TcpStream::connect(&self.addr).ok()?;
        write!(
            conn,
            "GET {path} HTTP/1.0\r\nHost: {}\r\nAccept: {accept}\r\n\r\n",
            self.addr
        )
        .ok()?;
        let mut raw = Vec::new();
        conn.read_to_end(&mut raw).ok()?;
        let split = raw.windows(4).position(|w| w == b"\r\n\r\n")?;
        let head = String::from_utf8_lossy(&raw[..split]).into_owned();
        let status = head.split_whitespace().nth(1)?.parse().ok()?;
        Some((status, head, raw[split + 4..].to_vec()))
    }

    pub(crate) fn manifest(&self, repo: &str, tag: &str) -> Value {
        let (status, _, body) = self
            .get(
                &format!("/v2/{repo}/manifests/{tag}"),
                "application/vnd.oci.image.manifest.v1+json",
            )
            .unwrap();
        assert_eq!(status, 200);
        serde_json::from_slice(&body).unwrap()
    }

    fn blob_file(&self, digest: &str) -> PathBuf {
        let hex = digest.strip_prefix("sha256:").unwrap();
        self.dir
            .path()
            .join("data/docker/registry/v2/blobs/sha256")
            .join(&hex[..2])
            .join(hex)
            .join("data")
    }
}

impl Drop for Registry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn push(home: &Home, component: &Path, reference: &str) -> String {
    let r = home.run(&["push", s(component), reference, "--insecure"]);
    r.ok().stderr_has("pushed ");
    r.stdout.trim().to_owned()
}

#[test]
fn push_pull_and_run_by_tag_and_by_digest() {
    let reg = Registry::start(None);
    let home = Home::new();
    let add = wat("add");
    let tag = reg.reference("tests/add:1.0.0");
    let digest = push(&home, &add, &tag);
    assert!(digest.starts_with("sha256:"), "{digest}");
    // The same bytes again, under another tag and later: the same artifact.
    assert_eq!(push(&home, &add, &reg.reference("tests/add:again")), digest);

    // The artifact is in the Wasm OCI layout, and the layer is the component.
    let local = home
        .run(&["run", s(&add), "-p", "a=1", "-p", "b=2", "--json"])
        .json();
    let m = reg.manifest("tests/add", "1.0.0");
    assert_eq!(m["mediaType"], "application/vnd.oci.image.manifest.v1+json");
    assert_eq!(
        m["config"]["mediaType"],
        "application/vnd.wasm.config.v0+json"
    );
    assert_eq!(m["layers"].as_array().unwrap().len(), 1);
    assert_eq!(m["layers"][0]["mediaType"], "application/wasm");
    assert_eq!(m["layers"][0]["digest"], local["component_digest"]);
    assert!(
        m["annotations"]["dev.wasmflow.signature"]
            .as_str()
            .unwrap()
            .contains("run: func(a: u32, b: u32) -> u32"),
        "{m}"
    );
    let layer = m["layers"][0]["digest"].as_str().unwrap();
    let (status, _, bytes) = reg
        .get(&format!("/v2/tests/add/blobs/{layer}"), "*/*")
        .unwrap();
    assert_eq!(status, 200);
    assert_eq!(&bytes[..4], b"\0asm");
    let (_, _, config) = reg
        .get(
            &format!(
                "/v2/tests/add/blobs/{}",
                m["config"]["digest"].as_str().unwrap()
            ),
            "*/*",
        )
        .unwrap();
    let config: Value = serde_json::from_slice(&config).unwrap();
    assert_eq!(config["architecture"], "wasm");
    assert_eq!(config["os"], "wasip2");

    // Run by tag in a fresh home: pulled on first use, the digest recorded.
    let fresh = Home::new();
    let rec = fresh
        .run(&[
            "run",
            &tag,
            "-p",
            "a=40",
            "-p",
            "b=2",
            "--insecure",
            "--json",
        ])
        .ok()
        .json();
    assert_eq!(rec["result"], 42);
    assert_eq!(rec["action"], format!("{tag}@{digest}"));
    assert_eq!(rec["component_digest"], local["component_digest"]);

    // Pinned by digest, in another fresh home.
    let pinned = format!("oci://{}/tests/add@{digest}", reg.addr);
    let other = Home::new();
    let rec = other
        .run(&[
            "run",
            &pinned,
            "-p",
            "a=1",
            "-p",
            "b=1",
            "--insecure",
            "--json",
        ])
        .ok()
        .json();
    assert_eq!(rec["result"], 2);

    // A server runs a reference too, as `run` does: pulled, pinned in the
    // record, nothing granted unless asked.
    let served = Home::new();
    let token = served
        .run(&["token", "create", "--name", "ci"])
        .ok()
        .stdout
        .clone();
    let srv = crate::server::serve_home(&served, &token, &["--allow-empty", "--insecure"]);
    let id = srv.start(json!({"action": tag, "input": {"a": 20, "b": 3}}));
    let done = srv.wait_done(&id);
    assert_eq!(
        (&done["result"], &done["status"]),
        (&json!(23), &json!("succeeded")),
        "{done}"
    );
    assert_eq!(done["action"], format!("{tag}@{digest}"));
    let (status, _) = srv.post(
        "/api/v1/executions",
        json!({"action": reg.reference("tests/nothing:1")}),
    );
    assert_eq!(status, 422);
    drop(srv);

    // `pull -o` writes the component out, byte for byte.
    let out = fresh.path().join("add.wasm");
    fresh.run(&["pull", &tag, "--insecure", "-o", s(&out)]).ok();
    let bytes = std::fs::read(&out).unwrap();
    assert_eq!(&bytes[..4], b"\0asm");
    let local_rec = fresh
        .run(&["run", s(&out), "-p", "a=2", "-p", "b=2", "--json"])
        .ok()
        .json();
    assert_eq!(local_rec["component_digest"], local["component_digest"]);

    // Runs from the cache afterwards: the registry can be gone.
    drop(reg);
    fresh
        .run(&["run", &tag, "-p", "a=1", "-p", "b=1", "--insecure"])
        .ok();
}

#[test]
fn a_new_version_under_the_same_tag_leaves_the_old_digest_runnable() {
    let reg = Registry::start(None);
    let home = Home::new();
    let tag = reg.reference("tests/thing:stable");
    let old = push(&home, &wat("add"), &tag);
    let new = push(&home, &wat("trap"), &tag);
    assert_ne!(old, new);
    let user = Home::new();
    // The tag now names the new build (which traps)...
    user.run(&["pull", &tag, "--insecure"]).ok();
    user.run(&["run", &tag, "--insecure", "--json"]).code(1);
    // ...and the old digest still runs the old one.
    let pinned = format!("oci://{}/tests/thing@{old}", reg.addr);
    let rec = user
        .run(&[
            "run",
            &pinned,
            "-p",
            "a=2",
            "-p",
            "b=3",
            "--insecure",
            "--json",
        ])
        .ok()
        .json();
    assert_eq!(rec["result"], 5);
}

#[test]
fn a_tampered_blob_is_rejected_and_not_cached() {
    let reg = Registry::start(None);
    let home = Home::new();
    let tag = reg.reference("tests/add:1");
    push(&home, &wat("add"), &tag);
    let m = reg.manifest("tests/add", "1");
    let file = reg.blob_file(m["layers"][0]["digest"].as_str().unwrap());
    let mut bytes = std::fs::read(&file).unwrap();
    let last = bytes.len() - 1;
    bytes[last] ^= 0xff;
    std::fs::write(&file, bytes).unwrap();

    let user = Home::new();
    user.run(&["pull", &tag, "--insecure"])
        .code(2)
        .stderr_has("the component layer does not match its digest");
    user.run(&["run", &tag, "--insecure"]).code(2);
    let cached = user.path().join("oci/blobs/sha256");
    let n = std::fs::read_dir(&cached).map(|d| d.count()).unwrap_or(0);
    assert_eq!(n, 0, "nothing was cached");
}

#[test]
fn missing_tags_bad_references_and_insecure_remote_hosts_are_usage_errors() {
    let reg = Registry::start(None);
    let home = Home::new();
    push(&home, &wat("add"), &reg.reference("tests/add:1"));
    home.run(&["pull", &reg.reference("tests/add:nope"), "--insecure"])
        .code(2)
        .stderr_has("no such tag or digest");
    home.run(&["run", "oci://nowhere/Bad:1"])
        .code(2)
        .stderr_has("is not an OCI reference");
    home.run(&[
        "push",
        s(&wat("add")),
        "oci://example.com/x/y:1",
        "--insecure",
    ])
    .code(2)
    .stderr_has("--insecure (plain HTTP) is only allowed for loopback registries");
    // A plain-HTTP registry on this machine reached without --insecure: the
    // error says which flag, once.
    let plain = home.run(&["push", s(&wat("add")), &reg.reference("tests/add:2")]);
    plain
        .code(2)
        .stderr_has("if it serves plain HTTP, add --insecure");
    assert_eq!(plain.stderr.lines().count(), 1, "{}", plain.stderr);
    home.run(&["run", &reg.reference("tests/add:1"), "a=1", "b=1"])
        .code(2)
        .stderr_has("add --insecure");
    home.run(&[
        "push",
        s(&wat("add")),
        &reg.reference("tests/add@sha256:00"),
    ])
    .code(2);
}

#[test]
fn a_registry_with_htpasswd_refuses_wrong_credentials() {
    let reg = Registry::start(Some(("ci", "s3cret")));
    let home = Home::new();
    let tag = reg.reference("tests/add:1");
    let push_as = |password: &str| {
        let mut c = home.cmd();
        c.args([
            "push",
            s(&wat("add")),
            &tag,
            "--insecure",
            "--username",
            "ci",
            "--password-stdin",
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
        let mut child = c.spawn().unwrap();
        child
            .stdin
            .take()
            .unwrap()
            .write_all(format!("{password}\n").as_bytes())
            .unwrap();
        crate::Run::from(child.wait_with_output().unwrap())
    };
    push_as("wrong")
        .code(2)
        .stderr_has("the registry refused the credentials");
    push_as("s3cret").ok();
    // Anonymous pulls are refused too; with the password in the
    // environment, `run` gets in.
    home.run(&["pull", &tag, "--insecure"])
        .code(2)
        .stderr_has("refused the credentials");
    let mut c = home.cmd();
    c.args(["run", &tag, "-p", "a=1", "-p", "b=2", "--insecure"])
        .env("WASMFLOW_REGISTRY_USERNAME", "ci")
        .env("WASMFLOW_REGISTRY_PASSWORD", "s3cret");
    let r = crate::Run::from(c.output().unwrap());
    assert_eq!(r.ok().stdout.trim(), "3");
}

#[test]
fn workflow_tasks_run_oci_actions_pinned_in_their_records() {
    let reg = Registry::start(None);
    let home = Home::new();
    let tag = reg.reference("tests/add:1");
    let digest = push(&home, &wat("add"), &tag);
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("sum.yaml");
    std::fs::write(
        &file,
        format!(
            r#"version: 1
input:
  - {{ name: x, type: u32 }}
tasks:
  first:
    action: {tag}
    input: {{ a: "{{{{ input.x }}}}", b: 1 }}
    next:
      - publish: {{ y: "{{{{ result }}}}" }}
        do: second
  second:
    action: {tag}
    input: {{ a: "{{{{ ctx.y }}}}", b: 40 }}
    next:
      - publish: {{ z: "{{{{ result }}}}" }}
output:
  z: "{{{{ ctx.z }}}}"
"#
        ),
    )
    .unwrap();

    // Validation fetches the component and checks literal input against
    // its WIT; a wrong type is reported at its position.
    let user = Home::new();
    user.run(&["workflow", "validate", s(&file), "--insecure"])
        .ok();
    let bad = dir.path().join("bad.yaml");
    std::fs::write(
        &bad,
        format!(
            "version: 1\ntasks:\n  only:\n    action: {tag}\n    input: {{ a: \"one\", b: 1 }}\n"
        ),
    )
    .unwrap();
    user.run(&["workflow", "validate", s(&bad), "--insecure"])
        .code(2)
        .stderr_has("bad.yaml:5:")
        .stderr_has("tasks.only.input.a");

    let rec = user
        .run(&["run", s(&file), "-p", "x=1", "--insecure", "--json"])
        .ok()
        .json();
    assert_eq!(rec["result"], json!({ "z": 42 }));
    let tree = user.tree(rec["id"].as_str().unwrap());
    let children = tree["children"].as_array().unwrap();
    assert_eq!(children.len(), 2);
    for child in children {
        assert_eq!(child["action"], format!("{tag}@{digest}"), "{child}");
    }
}

/// A pack under development: pack.yaml beside its components and a
/// workflow that names its actions as `math.add`.
fn math_pack(dir: &Path) -> PathBuf {
    let pack = dir.join("math");
    std::fs::create_dir_all(pack.join("flows")).unwrap();
    std::fs::copy(wat("add"), pack.join("add.wat")).unwrap();
    std::fs::write(
        pack.join("pack.yaml"),
        r#"name: math
version: 1.0.0
description: Arithmetic for the tests
actions:
  add:
    component: add.wat
    description: Add two numbers
workflows:
  add-twice: flows/add-twice.yaml
"#,
    )
    .unwrap();
    std::fs::write(
        pack.join("flows/add-twice.yaml"),
        r#"version: 1
input:
  - { name: x, type: u32 }
tasks:
  one:
    action: math.add
    input: { a: "{{ input.x }}", b: 1 }
    next:
      - publish: { y: "{{ result }}" }
        do: two
  two:
    action: math.add
    input: { a: "{{ ctx.y }}", b: 1 }
    next:
      - publish: { z: "{{ result }}" }
output:
  z: "{{ ctx.z }}"
"#,
    )
    .unwrap();
    pack
}

#[test]
fn packs_publish_install_and_run_their_actions_and_workflows_by_name() {
    let reg = Registry::start(None);
    let work = tempfile::tempdir().unwrap();
    let pack = math_pack(work.path());
    let author = Home::new();

    // While developing: the workflow finds `math.add` in the pack above it.
    let flow = pack.join("flows/add-twice.yaml");
    let rec = author
        .run(&["run", s(&flow), "-p", "x=1", "--json"])
        .ok()
        .json();
    assert_eq!(rec["result"], json!({ "z": 3 }));

    let index = reg.reference("tests/math:1.0.0");
    let pushed = author.run(&["pack", "push", s(&pack), &index, "--insecure"]);
    pushed.ok().stderr_has("pushed math.add as oci://");
    let digest = pushed.stdout.trim().to_owned();
    // Each action is a Wasm artifact beside the index.
    let m = reg.manifest("tests/math.add", "1.0.0");
    assert_eq!(m["layers"][0]["mediaType"], "application/wasm");
    let idx = reg.manifest("tests/math", "1.0.0");
    assert_eq!(
        idx["config"]["mediaType"],
        "application/vnd.wasmflow.pack.v1+json"
    );
    assert_eq!(
        idx["layers"][0]["mediaType"],
        "application/vnd.wasmflow.workflow.v1+yaml"
    );
    assert_eq!(
        idx["mediaType"],
        "application/vnd.oci.image.manifest.v1+json"
    );
    // The index pins each action beside itself, by digest, with no
    // registry host in it: a copy on a mirror finds the mirror's.
    let config = std::fs::read(reg.blob_file(idx["config"]["digest"].as_str().unwrap())).unwrap();
    let config: serde_json::Value = serde_json::from_slice(&config).unwrap();
    let add = config["actions"]["add"]["component"].as_str().unwrap();
    assert!(add.starts_with("math.add@sha256:"), "{config}");

    // Somewhere else: install it, and run by name from any directory.
    let user = Home::new();
    let pinned = format!("oci://{}/tests/math@{digest}", reg.addr);
    user.run(&["pack", "pull", &pinned, "--insecure"]).ok();
    let action = reg.reference("tests/math.add:1.0.0");
    let by_reference = user
        .run(&["inspect", &action, "--insecure", "--json"])
        .ok()
        .json();
    assert!(by_reference["digest"]
        .as_str()
        .unwrap()
        .starts_with("sha256:"));
    drop(reg); // installed means no registry is needed any more
    let listed = user.run(&["pack", "list"]);
    listed.ok();
    assert!(listed.stdout.contains("math 1.0.0"), "{}", listed.stdout);
    assert!(
        listed.stdout.contains("action   math.add: Add two numbers"),
        "{}",
        listed.stdout
    );
    assert!(
        listed.stdout.contains("workflow math.add-twice"),
        "{}",
        listed.stdout
    );
    let elsewhere = tempfile::tempdir().unwrap();
    let run = |args: &[&str]| {
        Run::from(
            user.cmd()
                .args(args)
                .current_dir(elsewhere.path())
                .output()
                .unwrap(),
        )
    };
    assert_eq!(
        run(&["run", "math.add", "-p", "a=2", "-p", "b=3"])
            .ok()
            .stdout
            .trim(),
        "5"
    );
    // Its record names it as the user did, with the pack's version.
    assert_eq!(user.last_record()["action"], "math.add@1.0.0");
    assert_eq!(
        user.run(&["execution", "list", "--json", "--action", "math.add@1.0.0"])
            .ok()
            .ids()
            .len(),
        1
    );
    let rec = run(&["run", "math.add-twice", "-p", "x=10", "--json"])
        .ok()
        .json();
    assert_eq!(rec["result"], json!({ "z": 12 }));
    // A pack's workflow and its tasks' pack actions, by name and version;
    // the workflow's file is its source, and who ran it is recorded.
    assert_eq!(rec["action"], "math.add-twice@1.0.0", "{rec}");
    assert!(
        rec["source"]
            .as_str()
            .unwrap()
            .ends_with("flows/add-twice.yaml"),
        "{rec}"
    );
    assert!(rec["started_by"]["user"].is_string(), "{rec}");
    let id = rec["id"].as_str().unwrap();
    let tree = user
        .run(&["execution", "get", id, "--tree", "--json"])
        .ok()
        .json();
    let tasks = tree["children"].as_array().unwrap();
    assert!(!tasks.is_empty(), "{tree}");
    for task in tasks {
        assert_eq!(task["action"], "math.add@1.0.0", "{task}");
    }
    // `serve` finds the installed pack's items (no --actions needed) and
    // records them the same way.
    let token = user
        .run(&["token", "create", "--name", "ops"])
        .ok()
        .stdout
        .clone();
    let srv = crate::server::serve_home(&user, &token, &[]);
    let (status, v) = srv.post(
        "/api/v1/executions",
        json!({"action": "math.add", "input": {"a": 1, "b": 2}}),
    );
    assert_eq!(status, 202, "{v}\n{}", srv.log.lock().unwrap());
    let id = v["id"].as_str().unwrap().to_owned();
    // Read through the CLI against the server, as a user would.
    let done = loop {
        let r = user
            .run(&[
                "execution",
                "get",
                &id,
                "--json",
                "--server",
                &srv.url,
                "--token",
                token.trim(),
            ])
            .ok()
            .json();
        if r["status"] != "pending" && r["status"] != "running" {
            break r;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    };
    assert_eq!(done["result"], 3, "{done}");
    assert_eq!(done["action"], "math.add@1.0.0", "{done}");
    assert_eq!(done["started_by"], json!({"token": "ops"}));
    drop(srv);
    // `inspect` takes the names `run` takes: a pack's action (and an
    // oci:// reference, above).
    let shown = run(&["inspect", "math.add", "--json"]).ok().json();
    // Named, versioned, and where it was found.
    assert_eq!(
        (&shown["name"], &shown["version"]),
        (&json!("math.add"), &json!("1.0.0")),
        "{shown}"
    );
    assert!(
        shown["from"].as_str().unwrap().contains("packs/math/"),
        "{shown}"
    );
    let text = run(&["action", "get", "math.add"]).ok().stdout.clone();
    assert!(
        text.starts_with("math.add  sha256:") && text.contains("\nversion  1.0.0\n"),
        "{text}"
    );
    // An oci:// reference comes from its pinned digest.
    assert!(
        by_reference["from"].as_str().unwrap().contains("@sha256:"),
        "{by_reference}"
    );
    assert!(
        shown["wit"].as_str().unwrap().contains("run: func"),
        "{shown}"
    );
    run(&["run", "math.nope"])
        .code(2)
        .stderr_has("pack `math` has no action or workflow `nope` (it has: add, add-twice)");
    run(&["run", "geometry.area"])
        .code(2)
        .stderr_has("no pack `geometry`");
}

#[test]
fn bad_packs_are_refused_with_their_position() {
    let work = tempfile::tempdir().unwrap();
    let pack = math_pack(work.path());
    let home = Home::new();
    let index = "oci://127.0.0.1:9/tests/math:1";

    // A workflow that names a component by path would break once installed.
    let flow = pack.join("flows/add-twice.yaml");
    let text = std::fs::read_to_string(&flow).unwrap();
    std::fs::write(
        &flow,
        text.replacen("action: math.add", "action: ../add.wat", 1),
    )
    .unwrap();
    home.run(&["pack", "push", s(&pack), index, "--insecure"])
        .code(2)
        .stderr_has("add-twice.yaml:6:13: tasks.one.action: `../add.wat` is a path");

    std::fs::write(&flow, text).unwrap();

    // A rule on a trigger type neither wasmflow nor a pack declares.
    std::fs::create_dir_all(pack.join("rules")).unwrap();
    std::fs::write(
        pack.join("rules/on-alert.yaml"),
        "name: on-alert\ntrigger: { type: math.overflow }\naction: { ref: math.add }\n",
    )
    .unwrap();
    home.run(&["pack", "push", s(&pack), index, "--insecure"])
        .code(2)
        .stderr_has("on-alert.yaml:2:")
        .stderr_has("math.overflow");

    // Unknown keys and missing files in pack.yaml.
    std::fs::write(
        pack.join("pack.yaml"),
        "name: math\nversion: 1.0.0\nactoins: {}\n",
    )
    .unwrap();
    home.run(&["pack", "push", s(&pack), index, "--insecure"])
        .code(2)
        .stderr_has("pack.yaml:3:1: unknown field `actoins`");
    std::fs::write(
        pack.join("pack.yaml"),
        "name: math\nversion: 1.0.0\nactions:\n  sub: { component: sub.wasm }\n",
    )
    .unwrap();
    home.run(&["pack", "push", s(&pack), index, "--insecure"])
        .code(2)
        .stderr_has("actions.sub.component:")
        .stderr_has("sub.wasm does not exist");
}
