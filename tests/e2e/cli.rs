//! Usage and input errors: exit 2, a message that says where, nothing recorded.

use crate::{s, support, wat, Home};

#[test]
fn bad_input_files_name_file_line_and_column() {
    let home = Home::new();
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("bad.json");
    std::fs::write(&bad, "{\n  \"a\": 1,\n  \"b\": oops\n}").unwrap();
    home.run(&["run", s(&wat("add")), "--input", s(&bad)])
        .code(2)
        .stderr_has(&format!("{}:3:8: invalid JSON", s(&bad)));
    home.run(&["run", s(&wat("add")), "--input", "/no/such.json"])
        .code(2)
        .stderr_has("cannot read input file /no/such.json");
    assert!(
        !home.path().join("store").exists()
            || home.run(&["execution", "list", "--json"]).json() == serde_json::json!([])
    );
}

#[test]
fn input_type_errors_are_caught_before_running() {
    let home = Home::new();
    let add = wat("add");
    home.run(&["run", s(&add), "-p", "a=1"])
        .code(2)
        .stderr_has("b: missing parameter of type u32");
    home.run(&["run", s(&add), "-p", "a=-1", "-p", "b=1"])
        .code(2)
        .stderr_has("a: -1 is out of range for u32");
    home.run(&["run", s(&add), "-p", "a=1.5", "-p", "b=1"])
        .code(2)
        .stderr_has("a: expected u32, got 1.5");
    home.run(&["run", s(&add), "-p", "a=1", "-p", "b=1", "-p", "c=1"])
        .code(2)
        .stderr_has("c: no such parameter");
    // Nothing ran, nothing was recorded.
    assert_eq!(
        home.run(&["execution", "list", "--json"]).json(),
        serde_json::json!([])
    );
}

#[test]
fn bad_flags_are_usage_errors() {
    let home = Home::new();
    let add = wat("add");
    let add = s(&add);
    home.run(&["run", add, "--timeout", "soon"])
        .code(2)
        .stderr_has("--timeout soon");
    home.run(&["run", add, "--memory", "lots"])
        .code(2)
        .stderr_has("--memory lots");
    home.run(&["run", add, "--allow-read", "/no/such/dir"])
        .code(2)
        .stderr_has("--allow-read /no/such/dir");
    home.run(&["run", add, "--allow-net", "http://example.com/"])
        .code(2)
        .stderr_has("--allow-net");
    home.run(&["run", add, "--allow-exec", "bin/sh"])
        .code(2)
        .stderr_has("--allow-exec bin/sh");
    home.run(&["frobnicate"]).code(2);
}

#[test]
fn second_run_uses_the_compiled_cache() {
    let wasm = support::built("tests/fixtures/hostile");
    let home = Home::new();
    let cache = tempfile::tempdir().unwrap();
    let run = || {
        let mut c = home.cmd();
        c.env("WASMFLOW_CACHE_DIR", cache.path()).args([
            "run",
            s(&wasm),
            "-p",
            "mode=env",
            "-p",
            "target=A",
            "--allow-env",
            "A=1",
        ]);
        let t = std::time::Instant::now();
        let r = crate::Run::from(c.output().unwrap());
        r.ok();
        t.elapsed()
    };
    let cold = run();
    let cached: Vec<_> = crate::files_under(cache.path())
        .into_iter()
        .filter(|p| p.extension().is_some_and(|e| e == "cwasm"))
        .collect();
    // The component's own, and CPython's module, kept apart to be shared.
    let (modules, own): (Vec<_>, Vec<_>) = cached
        .iter()
        .partition(|p| p.parent().is_some_and(|d| d.ends_with("modules")));
    assert_eq!(own.len(), 1, "one compiled component: {cached:?}");
    assert_eq!(modules.len(), 1, "one shared module: {cached:?}");
    let modified = |p: &std::path::Path| p.metadata().unwrap().modified().unwrap();
    let before: Vec<_> = cached.iter().map(|p| modified(p)).collect();
    let warm = run();
    let after: Vec<_> = cached.iter().map(|p| modified(p)).collect();
    assert_eq!(after, before, "not recompiled");
    // Compiling an 18 MB Python component takes seconds; loading it does not.
    assert!(warm < cold, "warm {warm:?} vs cold {cold:?}");
}

#[test]
fn run_takes_fields_as_key_value_after_the_action() {
    let home = Home::new();
    let add = wat("add");
    home.run(&["run", s(&add), "a=5", "b=3"]).ok();
    assert_eq!(home.last_record()["result"], 8);
    // `-p` comes after the positional fields, so it wins.
    let r = home.run(&["run", s(&add), "a=5", "b=3", "-p", "b=4"]);
    assert_eq!(r.ok().stdout.trim(), "9");
    // Not a field: named, nothing run.
    home.run(&["run", s(&add), "a=5", "b"])
        .code(2)
        .stderr_has("b");
    assert_eq!(
        home.run(&["execution", "list", "--json"])
            .json()
            .as_array()
            .map(Vec::len),
        Some(2)
    );
}

#[test]
fn completions_are_generated_for_each_shell() {
    let home = Home::new();
    let bash = home.run(&["completions", "bash"]);
    bash.ok();
    for word in ["execution", "replay", "--allow-exec", "completions"] {
        assert!(bash.stdout.contains(word), "bash completion lacks {word}");
    }
    // It is a script bash accepts.
    let dir = tempfile::tempdir().unwrap();
    let script = dir.path().join("wasmflow.bash");
    std::fs::write(&script, &bash.stdout).unwrap();
    let st = std::process::Command::new("bash")
        .arg("-n")
        .arg(&script)
        .status()
        .unwrap();
    assert!(st.success(), "bash -n rejects the completion script");
    for shell in ["zsh", "fish"] {
        let r = home.run(&["completions", shell]);
        assert!(r.ok().stdout.contains("wasmflow"), "{shell}: {}", r.stdout);
    }
    home.run(&["completions", "tcsh"]).code(2);
}

#[test]
fn errors_are_printed_once() {
    let home = Home::new();
    let r = home.run(&["run", s(&wat("add")), "-p", "a=four", "-p", "b=1"]);
    r.code(2);
    assert_eq!(r.stderr.matches("expected u32").count(), 1, "{}", r.stderr);
    let r = home.run(&["run", "/no/such.wasm"]);
    r.code(2);
    assert_eq!(r.stderr.matches("No such file").count(), 1, "{}", r.stderr);
    assert_eq!(r.stderr.lines().count(), 1, "{}", r.stderr);
}

/// `execution list` at 80 columns: whole ids, every line within the
/// width, an error column only on wider terminals or with `--wide`.
#[test]
fn execution_list_fits_the_terminal_and_keeps_ids_whole() {
    let home = Home::new();
    // A long action name: what gets cut to fit, never the id.
    let dir = tempfile::tempdir().unwrap();
    let long = dir
        .path()
        .join("a-rather-long-action-name-that-no-terminal-fits-whole.wat");
    std::fs::copy(wat("add"), &long).unwrap();
    home.run(&["run", s(&long), "a=1", "b=2"]).ok();
    home.run(&["run", s(&wat("trap"))]).code(1);
    let ids = home.run(&["execution", "list", "--json"]).ids();
    assert_eq!(ids.len(), 2);
    let at = |columns: &str, extra: &[&str]| {
        let mut c = home.cmd();
        c.env("COLUMNS", columns)
            .args(["execution", "list"])
            .args(extra);
        let r = crate::Run::from(c.output().unwrap());
        r.ok();
        r.stdout
    };
    let narrow = at("80", &[]);
    for line in narrow.lines() {
        assert!(line.chars().count() <= 80, "wider than 80:\n{narrow}");
    }
    for id in &ids {
        assert!(
            narrow.lines().any(|l| l.contains(id.as_str())),
            "{id} not whole on one line:\n{narrow}"
        );
    }
    assert!(narrow.contains("ago"), "relative start times:\n{narrow}");
    assert!(!narrow.contains("ERROR"), "{narrow}");
    assert!(
        !narrow.contains("no-terminal-fits-whole"),
        "the action is cut:\n{narrow}"
    );
    let roomy = at("160", &[]);
    assert!(
        roomy.contains("ERROR") && roomy.contains("[trap]"),
        "{roomy}"
    );
    let wide = at("80", &["--wide"]);
    assert!(wide.contains("WORKER") && wide.contains("[trap]"), "{wide}");
    assert!(
        wide.contains("no-terminal-fits-whole"),
        "--wide cuts nothing:\n{wide}"
    );
    // Several statuses, a time bound.
    let listed = |args: &[&str]| {
        let mut all = vec!["execution", "list", "--json"];
        all.extend_from_slice(args);
        home.run(&all).ok().ids()
    };
    assert_eq!(listed(&["--status", "succeeded,failed"]), ids);
    assert_eq!(
        listed(&["--status", "failed", "--status", "succeeded"]),
        ids
    );
    assert_eq!(listed(&["--status", "failed"]), ids[..1]);
    assert_eq!(listed(&["--since", "1h"]), ids);
    assert_eq!(
        listed(&["--since", "1h", "--status", "failed", "-n", "1"]),
        ids[..1]
    );
    assert!(listed(&["--since", "2999-01-01T00:00:00Z"]).is_empty());
    home.run(&["execution", "list", "--status", "done"])
        .code(2)
        .stderr_has("--status");
    home.run(&["execution", "list", "--since", "lately"])
        .code(2)
        .stderr_has("--since lately");
    // And only one action's executions, when asked.
    let trap = home.run(&["execution", "list", "--json", "--action", s(&wat("trap"))]);
    assert_eq!(trap.ok().json().as_array().map(Vec::len), Some(1));
}

/// `run --async` returns once the execution is recorded, with its id; it
/// runs on in a process of its own, which `execution tail` follows.
#[test]
fn run_async_returns_the_id_and_runs_on_in_the_background() {
    let home = Home::new();
    let started = home.run(&["run", s(&wat("add")), "a=1", "b=2", "--async"]);
    started.ok().stderr_has("runs in the background");
    let id = started.stdout.trim().to_owned();
    let tail = home.run(&["execution", "tail", &id]);
    tail.ok().stderr_has(&format!("execution {id} succeeded"));
    let got = home.run(&["execution", "get", &id, "--json"]).json();
    assert_eq!(got["result"], 3);

    // A long one is still running when `run --async` is back.
    let slow = home.run(&["run", s(&wat("loop")), "--timeout", "3s", "--async"]);
    let id = slow.ok().stdout.trim().to_owned();
    let got = home.run(&["execution", "get", &id, "--json"]).json();
    assert_eq!(got["status"], "running", "{got}");
    home.run(&["execution", "tail", &id])
        .code(1)
        .stderr_has("timed_out");

    // What would not start says so, as in the foreground, and records nothing.
    home.run(&["run", s(&wat("add")), "a=nope", "b=1", "--async"])
        .code(2)
        .stderr_has("expected u32");
    assert_eq!(home.run(&["execution", "list", "--json"]).ids().len(), 2);
}

/// A re-run can replace recorded limits (a run that timed out, given
/// longer); the rest of the record's limits are kept.
#[test]
fn rerun_replaces_the_limits_it_is_given() {
    let home = Home::new();
    home.run(&[
        "run",
        s(&wat("loop")),
        "--timeout",
        "500ms",
        "--memory",
        "64MiB",
    ])
    .code(1)
    .stderr_has("timed_out");
    let id = home.last_record()["id"].as_str().unwrap().to_owned();
    let again = home.run(&["execution", "re-run", &id, "--timeout", "1s", "--json"]);
    let rec = again.code(1).json();
    assert_eq!(rec["limits"]["timeout_ms"], 1000, "{rec}");
    assert_eq!(rec["limits"]["memory_bytes"], 64 << 20, "{rec}");
    assert_eq!(rec["status"], "timed_out");
    home.run(&["execution", "re-run", &id, "--timeout", "soon"])
        .code(2)
        .stderr_has("--timeout soon");
}

/// `action list` shows what `run NAME` finds from here (files, built
/// action directories, installed packs), `action get` describes one as
/// `inspect` does, and a built action directory runs by its name.
#[test]
fn action_list_and_get_find_what_run_finds() {
    let home = Home::new();
    let dir = tempfile::tempdir().unwrap();
    std::fs::copy(wat("add"), dir.path().join("add.wat")).unwrap();
    std::fs::write(dir.path().join("flow.yaml"), "version: 1\ntasks: {}\n").unwrap();
    std::fs::create_dir_all(dir.path().join("calc")).unwrap();
    std::fs::copy(
        support::built("tests/fixtures/step"),
        dir.path().join("calc/calc.wasm"),
    )
    .unwrap();
    std::fs::create_dir_all(dir.path().join("notes")).unwrap();
    let in_dir = |args: &[&str]| {
        crate::Run::from(
            home.cmd()
                .args(args)
                .current_dir(dir.path())
                .output()
                .unwrap(),
        )
    };
    let listed = in_dir(&["action", "list", "--json"]).ok().json();
    let names: Vec<(&str, &str)> = listed
        .as_array()
        .unwrap()
        .iter()
        .map(|a| (a["name"].as_str().unwrap(), a["kind"].as_str().unwrap()))
        .collect();
    // Those here, then the packs': the built-in core pack's.
    assert_eq!(
        names[..4],
        [
            ("add", "action"),
            ("calc", "action"),
            ("flow", "workflow"),
            ("core.echo", "action")
        ]
    );
    assert_eq!(names.len(), 10, "{names:?}");
    let table = in_dir(&["action", "list"]);
    assert!(table.ok().stdout.contains("calc"), "{}", table.stdout);
    // The directory's component, by the directory's name.
    let described = in_dir(&["action", "get", "calc", "--json"]).ok().json();
    assert!(
        described["wit"].as_str().unwrap().contains("run: func"),
        "{described}"
    );
    in_dir(&["action", "get", "nothing-here"]).code(2);
}
