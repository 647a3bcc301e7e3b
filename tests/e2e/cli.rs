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
    assert_eq!(cached.len(), 1, "one compiled artifact: {cached:?}");
    let modified = cached[0].metadata().unwrap().modified().unwrap();
    let warm = run();
    assert_eq!(
        cached[0].metadata().unwrap().modified().unwrap(),
        modified,
        "not recompiled"
    );
    // Compiling an 18 MB Python component takes seconds; loading it does not.
    assert!(warm < cold, "warm {warm:?} vs cold {cold:?}");
}
