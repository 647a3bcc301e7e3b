//! Replay reproduces a failure bit for bit from its recorded world; other
//! builds run against that world; bundles carry it to another home.

use crate::http::TestServer;
use crate::{s, support, Home};
use serde_json::{json, Value};
use std::path::PathBuf;

/// The world the flaky fixture lives in: an HTTP server, a program (a copy
/// of `date`, so it can be removed), and a state file.
struct World {
    dir: tempfile::TempDir,
    server: TestServer,
}

impl World {
    fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("bin")).unwrap();
        std::fs::create_dir_all(dir.path().join("data")).unwrap();
        std::fs::copy("/bin/date", dir.path().join("bin/stamp")).unwrap();
        std::fs::write(dir.path().join("data/state.txt"), "broken\n").unwrap();
        Self {
            dir,
            server: TestServer::start("status: degraded"),
        }
    }

    fn program(&self) -> PathBuf {
        self.dir.path().join("bin/stamp")
    }

    fn args(&self, wasm: &std::path::Path) -> Vec<String> {
        let d = self.dir.path();
        [
            "run".into(),
            s(wasm).into(),
            "-p".into(),
            format!("probe.authority=127.0.0.1:{}", self.server.port),
            "-p".into(),
            format!("probe.program={}", s(&self.program())),
            "-p".into(),
            format!("probe.file={}", s(&d.join("data/state.txt"))),
            "--allow-net".into(),
            format!("127.0.0.1:{}", self.server.port),
            "--allow-exec".into(),
            s(&self.program()).into(),
            "--allow-read".into(),
            s(&d.join("data")).into(),
        ]
        .to_vec()
    }

    /// Change every answer the world would give now.
    fn change_everything(&mut self) {
        self.server.stop();
        std::fs::remove_file(self.program()).unwrap();
        std::fs::write(self.dir.path().join("data/state.txt"), "healthy\n").unwrap();
    }
}

fn run_failing(home: &Home, world: &World) -> Value {
    let wasm = support::built("tests/fixtures/flaky");
    let args = world.args(&wasm);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    home.run(&args).code(1).stderr_has("[unhealthy]");
    assert_eq!(
        world.server.hits.load(std::sync::atomic::Ordering::SeqCst),
        1
    );
    home.last_record()
}

fn variant(name: &str) -> PathBuf {
    support::built("tests/fixtures/flaky").with_file_name(format!("{name}.wasm"))
}

#[test]
fn replay_reproduces_the_identical_error_from_the_recorded_world() {
    let home = Home::new();
    let mut world = World::new();
    let original = run_failing(&home, &world);
    let id = original["id"].as_str().unwrap();
    world.change_everything();

    let replay = home.run(&["execution", "replay", id]);
    replay.ok();
    assert_eq!(replay.stdout.trim(), "reproduced: identical error");
    let rec = home.last_record();
    assert_eq!(rec["replay_of"], id);
    assert_eq!(rec["error"]["code"], "unhealthy");
    assert_eq!(rec["error"]["message"], original["error"]["message"]);
    // The replay touched neither the world nor the file.
    assert_eq!(
        std::fs::read_to_string(world.dir.path().join("data/state.txt")).unwrap(),
        "healthy\n"
    );

    // Live, the same run now behaves differently: the world did change.
    let wasm = support::built("tests/fixtures/flaky");
    let args = world.args(&wasm);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    home.run(&args).code(1).stderr_has("[http]");
}

#[test]
fn another_url_diverges_at_the_http_event_naming_both_urls() {
    let home = Home::new();
    let mut world = World::new();
    let original = run_failing(&home, &world);
    let id = original["id"].as_str().unwrap();
    let port = world.server.port;
    world.change_everything();

    let bundle: Value = home.run(&["execution", "export", id]).json();
    let http_event = bundle["events"]
        .as_array()
        .unwrap()
        .iter()
        .position(|e| e["kind"] == "http")
        .unwrap()
        + 1;

    let other = variant("flaky-other-url");
    let replay = home.run(&["execution", "replay", id, "--component", s(&other)]);
    replay.code(1);
    assert_eq!(
        replay.stdout.trim(),
        format!(
            "diverged at event {http_event}: guest asked HTTP GET http://127.0.0.1:{port}/other, \
             recorded HTTP GET http://127.0.0.1:{port}/status"
        )
    );
}

#[test]
fn another_file_diverges_at_the_open_naming_both_paths() {
    let home = Home::new();
    let mut world = World::new();
    let original = run_failing(&home, &world);
    let id = original["id"].as_str().unwrap();
    world.change_everything();
    let bundle: Value = home.run(&["execution", "export", id]).json();
    let open = bundle["events"]
        .as_array()
        .unwrap()
        .iter()
        .position(|e| e["kind"] == "file-open")
        .unwrap()
        + 1;

    let replay = home.run(&[
        "execution",
        "replay",
        id,
        "--component",
        s(&variant("flaky-other-file")),
    ]);
    replay.code(1);
    assert_eq!(
        replay.stdout.trim(),
        format!(
            "diverged at event {open}: guest asked open state.txt.old, recorded open state.txt"
        )
    );
}

#[test]
fn a_fixed_build_passes_against_the_recorded_world() {
    let home = Home::new();
    let mut world = World::new();
    let original = run_failing(&home, &world);
    let id = original["id"].as_str().unwrap();
    world.change_everything();

    let fixed = variant("flaky-fixed");
    let replay = home.run(&[
        "execution",
        "replay",
        id,
        "--component",
        s(&fixed),
        "--json",
    ]);
    replay.ok();
    let out = replay.json();
    assert_eq!(out["verdict"]["verdict"], "different-result");
    assert_eq!(out["record"]["status"], "succeeded");
    // It saw exactly what the failed run saw.
    assert_eq!(out["record"]["result"], original["error"]["message"]);
}

#[test]
fn a_bundle_replays_in_a_fresh_home() {
    let home = Home::new();
    let mut world = World::new();
    let original = run_failing(&home, &world);
    let id = original["id"].as_str().unwrap();
    world.change_everything();
    let case = world.dir.path().join("case.wfreplay");
    home.run(&["execution", "export", id, "-o", s(&case)]).ok();

    let fresh = Home::new();
    let replay = fresh.run(&["execution", "replay", "--bundle", s(&case)]);
    replay.ok();
    assert_eq!(replay.stdout.trim(), "reproduced: identical error");
    let rec = fresh.last_record();
    assert_eq!(rec["replay_of"], id);
    assert_eq!(rec["error"]["message"], original["error"]["message"]);
    // The bundle also drives a fixed build, as a regression test would.
    fresh
        .run(&[
            "execution",
            "replay",
            "--bundle",
            s(&case),
            "--component",
            s(&variant("flaky-fixed")),
        ])
        .ok();
}

#[test]
fn rerun_overrides_exactly_one_field_and_keeps_the_grants() {
    let home = Home::new();
    let world = World::new();
    let original = run_failing(&home, &world);
    let id = original["id"].as_str().unwrap();
    let other_file = world.dir.path().join("data/other.txt");
    std::fs::write(&other_file, "healthy\n").unwrap();

    let rerun = home.run(&[
        "execution",
        "re-run",
        id,
        "-p",
        &format!("probe.file={}", s(&other_file)),
        "--json",
    ]);
    rerun.ok();
    let rec = rerun.json();
    assert_eq!(rec["rerun_of"], id);
    assert_eq!(rec["grants"], original["grants"]);
    assert_eq!(rec["limits"], original["limits"]);
    assert_eq!(rec["component_digest"], original["component_digest"]);
    let mut expected_input = original["input"].clone();
    expected_input["probe"]["file"] = Value::String(s(&other_file).into());
    assert_eq!(rec["input"], expected_input);
    assert_eq!(rec["status"], "succeeded");

    let shown = home.run(&["execution", "get", rec["id"].as_str().unwrap()]);
    assert!(
        shown.ok().stdout.contains(&format!("rerun of   {id}")),
        "{}",
        shown.stdout
    );
}

/// The most common failure, a missing grant, is fixed by a re-run that
/// adds it; the recorded grants are kept beside it.
#[test]
fn rerun_with_the_missing_grant_succeeds() {
    let home = Home::new();
    let world = World::new();
    let wasm = support::built("tests/fixtures/flaky");
    let program = world.program();
    let mut args = world.args(&wasm);
    // The first run forgets `--allow-exec PROGRAM`.
    let at = args.iter().position(|a| a == "--allow-exec").unwrap();
    args.drain(at..at + 2);
    let healthy = world.dir.path().join("data/healthy.txt");
    std::fs::write(&healthy, "healthy\n").unwrap();
    args.extend(["-p".into(), format!("probe.file={}", s(&healthy))]);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    home.run(&args).code(1).stderr_has("[exec]");
    let original = home.last_record();
    let id = original["id"].as_str().unwrap();
    assert!(original["grants"].get("exec").is_none(), "{original}");

    let rerun = home.run(&[
        "execution",
        "re-run",
        id,
        "--allow-exec",
        s(&program),
        "--json",
    ]);
    let rec = rerun.ok().json();
    assert_eq!(rec["status"], "succeeded", "{rec}");
    assert_eq!(rec["rerun_of"], id);
    assert_eq!(rec["grants"]["exec"], json!([s(&program)]));
    assert_eq!(rec["grants"]["net"], original["grants"]["net"]);
    assert_eq!(rec["grants"]["read"], original["grants"]["read"]);
    // A grant flag that does not parse is refused before anything runs.
    home.run(&["execution", "re-run", id, "--allow-read", "/no/such/dir"])
        .code(2)
        .stderr_has("--allow-read /no/such/dir");
}

#[test]
fn bad_replay_input_is_a_usage_error_and_changes_nothing() {
    let home = Home::new();
    let world = World::new();
    let original = run_failing(&home, &world);
    let id = original["id"].as_str().unwrap();
    let count = || {
        home.run(&["execution", "list", "--json", "-n", "100"])
            .json()
            .as_array()
            .unwrap()
            .len()
    };
    let before = count();

    home.run(&["execution", "replay", "01ARZ3NDEKTSV4RRFFQ69G5FAV"])
        .code(2)
        .stderr_has("no execution matches");
    home.run(&["execution", "re-run", "01ARZ3NDEKTSV4RRFFQ69G5FAV"])
        .code(2)
        .stderr_has("no execution matches");
    home.run(&["execution", "export", "01ARZ3NDEKTSV4RRFFQ69G5FAV"])
        .code(2);

    let dir = tempfile::tempdir().unwrap();
    let corrupt = dir.path().join("corrupt.wfreplay");
    std::fs::write(
        &corrupt,
        "{ \"format\": \"wasmflow-replay-bundle\", \"version\": 1, \"record\": ",
    )
    .unwrap();
    home.run(&["execution", "replay", "--bundle", s(&corrupt)])
        .code(2)
        .stderr_has("not a replay bundle: line 1 column");

    let case = dir.path().join("case.wfreplay");
    home.run(&["execution", "export", id, "-o", s(&case)]).ok();
    let mut bundle: Value = serde_json::from_str(&std::fs::read_to_string(&case).unwrap()).unwrap();

    let mut newer = bundle.clone();
    newer["version"] = 2.into();
    let newer_path = dir.path().join("newer.wfreplay");
    std::fs::write(&newer_path, newer.to_string()).unwrap();
    home.run(&["execution", "replay", "--bundle", s(&newer_path)])
        .code(2)
        .stderr_has("bundle format version 2 is newer than this wasmflow reads (up to 1)");

    // A blob whose content does not match its digest.
    let blobs = bundle["blobs"].as_object_mut().unwrap();
    let key = blobs
        .keys()
        .find(|k| **k != original["component_digest"])
        .unwrap()
        .clone();
    blobs.insert(key.clone(), Value::String("dGFtcGVyZWQ=".into()));
    let tampered = dir.path().join("tampered.wfreplay");
    std::fs::write(&tampered, bundle.to_string()).unwrap();
    home.run(&["execution", "replay", "--bundle", s(&tampered)])
        .code(2)
        .stderr_has(&format!("bundle blob {key} does not match its content"));

    assert_eq!(count(), before, "nothing was recorded");
}

#[test]
fn big_files_are_left_out_of_snapshots_and_the_record_says_so() {
    let home = Home::new();
    let dir = tempfile::tempdir().unwrap();
    let small = dir.path().join("small.txt");
    std::fs::write(&small, "small").unwrap();
    std::fs::write(dir.path().join("disk.img"), vec![0u8; 9 << 20]).unwrap();
    let run = home.hostile("read-file", s(&small), &["--allow-read", s(dir.path())]);
    assert_eq!(run.ok().json(), "small");
    let rec = home.last_record();
    assert!(
        rec["logs"].to_string().contains("is partial"),
        "{}",
        rec["logs"]
    );

    let id = rec["id"].as_str().unwrap();
    let bundle: Value = home.run(&["execution", "export", id]).json();
    let snapshot = bundle["events"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["kind"] == "directory")
        .unwrap();
    assert_eq!(snapshot["complete"], false);
    let files: Vec<&str> = snapshot["files"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f[0].as_str().unwrap())
        .collect();
    assert_eq!(files, ["small.txt"]);

    std::fs::write(&small, "changed").unwrap();
    let replay = home.run(&["execution", "replay", id]);
    assert_eq!(replay.ok().stdout.trim(), "reproduced: identical result");
}
