//! `wasmflow new` -> `build` -> `test` -> `push` -> `run oci://`, for Python
//! and JavaScript, with the real componentizers, on fresh homes; replay
//! bundles as tests; what `build` says when a toolchain is missing.

use crate::registry::Registry;
use crate::{s, support, Home, Run};
use std::path::{Path, PathBuf};

/// `wasmflow` with the repository's componentize-js on PATH (as an action
/// developer has it after `npm install`).
fn dev(home: &Home, args: &[&str]) -> Run {
    let path = format!(
        "{}:{}",
        s(&support::root().join("node_modules/.bin")),
        std::env::var("PATH").unwrap_or_default()
    );
    Run::from(home.cmd().args(args).env("PATH", path).output().unwrap())
}

fn scaffold(home: &Home, parent: &Path, name: &str, lang: &str) -> PathBuf {
    let r = dev(home, &["new", name, "--lang", lang, "--dir", s(parent)]);
    r.ok().stderr_has("wasmflow test");
    let dir = PathBuf::from(r.stdout.trim());
    assert_eq!(dir, parent.join(name));
    dir
}

/// The same source built again elsewhere gives the same bytes, and the
/// generated bindings are under target/, not beside the source.
fn reproducible(home: &Home, dir: &Path, wasm: &Path) {
    let elsewhere = tempfile::tempdir().unwrap();
    let copy = elsewhere.path().join(dir.file_name().unwrap());
    let st = std::process::Command::new("cp")
        .arg("-r")
        .arg(dir)
        .arg(&copy)
        .status()
        .unwrap();
    assert!(st.success());
    std::fs::remove_dir_all(copy.join("target")).unwrap();
    // (As a script would: what was built, as JSON.)
    let built = dev(home, &["build", s(&copy), "--json"]);
    let name = wasm.file_name().unwrap();
    let built = built.ok().json();
    assert_eq!(
        built["component"].as_str(),
        Some(s(&copy.join(name))),
        "{built}"
    );
    assert!(
        built["tool"].is_string() && built["seconds"].is_number(),
        "{built}"
    );
    assert!(
        std::fs::read(copy.join(name)).unwrap() == std::fs::read(wasm).unwrap(),
        "two builds of the same source differ"
    );
    assert!(dir.join("target/wasmflow/bindings/action.h").is_file());
    assert!(!dir.join("action.h").exists() && !dir.join(".zig-cache").exists());
}

fn round_trip(lang: &str) {
    let reg = Registry::start(None);
    let work = tempfile::tempdir().unwrap();
    let home = Home::new();
    let name = format!("greet.{lang}");
    let dir = scaffold(&home, work.path(), &name, lang);

    // The scaffold builds and its own tests pass.
    let built = dev(&home, &["build", s(&dir)]);
    built.ok().stderr_has("built ");
    let wasm = dir.join(format!("{name}.wasm"));
    assert_eq!(built.stdout.trim(), s(&wasm));
    if ["c", "cpp", "zig"].contains(&lang) {
        reproducible(&home, &dir, &wasm);
    }
    // The build carries the WIT's doc comments, for inspect and push.
    let shown = home.run(&["inspect", s(&wasm)]);
    shown.ok();
    assert!(
        shown
            .stdout
            .contains("/// Greet someone.\nrun: func(request: request)"),
        "{}",
        shown.stdout
    );
    assert!(
        shown
            .stdout
            .contains("  /// A name; must not be empty.\n  name: string,"),
        "{}",
        shown.stdout
    );
    let t = dev(&home, &["test", s(&dir), "--no-build"]);
    t.ok();
    assert!(t.stdout.contains("case greets ... ok"), "{}", t.stdout);
    assert!(
        t.stdout.contains("case rejects-empty-name ... ok"),
        "{}",
        t.stdout
    );
    assert!(
        t.stdout.contains("test result: ok. 2 passed; 0 failed"),
        "{}",
        t.stdout
    );
    // Testing records nothing in the user's store.
    let listed = home.run(&["execution", "list", "--json"]);
    assert_eq!(listed.json().as_array().map_or(0, |a| a.len()), 0);

    // A case that expects something else fails, naming the difference.
    std::fs::write(
        dir.join("tests/wrong.json"),
        r#"{ "input": { "request": { "name": "Bo", "excited": false } }, "expect": { "message": "Hi, Bo.", "length": 7 } }"#,
    )
    .unwrap();
    let t = dev(&home, &["test", s(&dir), "--no-build"]);
    t.code(1);
    assert!(t.stdout.contains("case wrong ... FAILED"), "{}", t.stdout);
    assert!(
        t.stdout
            .contains(r#"got:      {"message":"Hello, Bo.","length":10}"#),
        "{}",
        t.stdout
    );
    assert!(t.stdout.contains("2 passed; 1 failed"), "{}", t.stdout);
    // The same verdicts for scripts.
    let t = dev(&home, &["test", s(&dir), "--no-build", "--json"]);
    t.code(1);
    let report = t.json();
    assert_eq!(
        (report["passed"].as_u64(), report["failed"].as_u64()),
        (Some(2), Some(1))
    );
    let wrong = report["cases"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == "wrong")
        .unwrap();
    assert_eq!(wrong["passed"], false);
    assert!(
        wrong["detail"].as_str().unwrap().contains("got:"),
        "{wrong}"
    );
    std::fs::remove_file(dir.join("tests/wrong.json")).unwrap();

    // `test` builds first by default...
    std::fs::remove_file(&wasm).unwrap();
    dev(&home, &["test", s(&dir)]).ok().stderr_has("built ");
    assert!(wasm.is_file());
    // ...but not again from the same sources...
    let built_at = std::fs::metadata(&wasm).unwrap().modified().unwrap();
    let again = dev(&home, &["test", s(&dir)]);
    again.ok().stderr_has("is up to date");
    assert!(!again.stderr.contains("built "), "{}", again.stderr);
    assert_eq!(
        std::fs::metadata(&wasm).unwrap().modified().unwrap(),
        built_at
    );
    // ...and again once a source changed (or when asked).
    let world = dir.join("wit/world.wit");
    let text = std::fs::read_to_string(&world).unwrap();
    std::fs::write(&world, format!("{text}// changed\n")).unwrap();
    dev(&home, &["test", s(&dir)]).ok().stderr_has("built ");
    dev(&home, &["test", s(&dir), "--rebuild"])
        .ok()
        .stderr_has("built ");

    // Publish it and run it by reference on another machine (a fresh home).
    let tag = reg.reference(&format!("dev/{name}:0.1.0"));
    let digest = home.run(&["push", s(&wasm), &tag, "--insecure"]);
    digest.ok();
    let elsewhere = Home::new();
    let rec = elsewhere
        .run(&[
            "run",
            &tag,
            "--insecure",
            "-p",
            r#"request={"name":"Ada","excited":true}"#,
            "--json",
        ])
        .ok()
        .json();
    assert_eq!(rec["result"]["message"], "Hello, Ada!");
    assert_eq!(rec["action"], format!("{tag}@{}", digest.stdout.trim()));
    // The description annotation came from those docs.
    let m = reg.manifest(&format!("dev/{name}"), "0.1.0");
    assert_eq!(
        m["annotations"]["org.opencontainers.image.description"],
        format!("{name}: describe what this action does in one sentence.")
    );
}

#[test]
fn python_new_build_test_push_and_run_from_the_registry() {
    round_trip("python");
}

#[test]
fn js_new_build_test_push_and_run_from_the_registry() {
    round_trip("js");
}

#[test]
fn c_new_build_test_push_and_run_from_the_registry() {
    round_trip("c");
}

#[test]
fn cpp_new_build_test_push_and_run_from_the_registry() {
    round_trip("cpp");
}

#[test]
fn zig_new_build_test_push_and_run_from_the_registry() {
    round_trip("zig");
}

#[test]
fn an_exported_failure_is_a_test_that_passes_once_fixed() {
    let work = tempfile::tempdir().unwrap();
    let home = Home::new();
    let dir = scaffold(&home, work.path(), "greet", "python");
    dev(&home, &["build", s(&dir)]).ok();
    let wasm = dir.join("greet.wasm");

    // In production, someone greets nobody, and it fails.
    let failed = home.run(&[
        "run",
        s(&wasm),
        "-p",
        r#"request={"name":"","excited":false}"#,
        "--json",
    ]);
    failed.code(1);
    let id = failed.json()["id"].as_str().unwrap().to_owned();
    let bundle = home.run(&["execution", "export", &id]);
    bundle.ok();
    std::fs::write(dir.join("tests/nobody.wfreplay"), &bundle.stdout).unwrap();

    // As a test, the bundle fails until the action handles it.
    let t = dev(&home, &["test", s(&dir), "--no-build"]);
    t.code(1);
    assert!(
        t.stdout.contains("replay nobody ... FAILED"),
        "{}",
        t.stdout
    );
    assert!(
        t.stdout.contains(
            "still fails against the recorded world: invalid-input: name must not be empty"
        ),
        "{}",
        t.stdout
    );

    // The fix: greet a stranger. The old expectation goes with it.
    let app = std::fs::read_to_string(dir.join("app.py")).unwrap();
    let fixed = app.replace(
        "        if not request.name:\n            raise wf.fail(\"invalid-input\", \"name must not be empty\", field=\"name\")\n",
        "        if not request.name:\n            request.name = \"stranger\"\n",
    );
    assert_ne!(app, fixed, "the template changed; update this test");
    std::fs::write(dir.join("app.py"), fixed).unwrap();
    std::fs::remove_file(dir.join("tests/rejects-empty-name.json")).unwrap();
    let t = dev(&home, &["test", s(&dir)]);
    t.ok();
    assert!(t.stdout.contains("replay nobody ... ok"), "{}", t.stdout);
    assert!(t.stdout.contains("2 passed; 0 failed"), "{}", t.stdout);
}

#[test]
fn build_names_the_missing_toolchain_and_bad_cases_their_line() {
    let work = tempfile::tempdir().unwrap();
    let home = Home::new();
    let empty = tempfile::tempdir().unwrap();
    for (lang, needle) in [
        ("python", "needs componentize-py, which is not installed: pip install componentize-py"),
        ("js", "needs componentize-js, which is not installed: npm install @bytecodealliance/componentize-js"),
        ("rust", "needs cargo, which is not installed"),
        ("c", "needs Zig, which is not installed: pip install ziglang (or put `zig` on PATH)"),
        ("cpp", "needs Zig, which is not installed: pip install ziglang"),
        ("zig", "needs Zig, which is not installed: pip install ziglang"),
    ] {
        let dir = scaffold(&home, work.path(), &format!("x.{lang}"), lang);
        let r = Run::from(
            home.cmd()
                .args(["build", s(&dir)])
                .env("PATH", empty.path())
                .output()
                .unwrap(),
        );
        r.code(2).stderr_has(needle);
        assert!(!dir.join(format!("x.{lang}.wasm")).exists());
    }

    // Names and places.
    home.run(&[
        "new",
        "Bad_Name",
        "--lang",
        "python",
        "--dir",
        s(work.path()),
    ])
    .code(2)
    .stderr_has("not a valid action name");
    home.run(&[
        "new",
        "x.python",
        "--lang",
        "python",
        "--dir",
        s(work.path()),
    ])
    .code(2)
    .stderr_has("already exists");
    home.run(&["build", s(work.path())]).code(2).stderr_has(
        "not an action directory: no app.py, app.js, Cargo.toml, app.c, app.cpp or app.zig",
    );

    // A malformed case stops the run before anything runs, with its line.
    let dir = work.path().join("x.python");
    std::fs::write(
        dir.join("tests/typo.json"),
        "{\n  \"input\": {},\n  \"expected\": 1\n}\n",
    )
    .unwrap();
    std::fs::write(dir.join("x.python.wasm"), b"not yet built").unwrap();
    home.run(&["test", s(&dir), "--no-build"])
        .code(2)
        .stderr_has("tests/typo.json:3:")
        .stderr_has("unknown field `expected`");
}

/// The SDKs' helpers, through real builds: `run` of a granted program, a
/// denial turned into an action error, `fail` with details (Python,
/// JavaScript, and the C SDK from C and from Zig).
#[test]
fn sdk_helpers_run_granted_programs_and_turn_denials_into_errors() {
    let work = tempfile::tempdir().unwrap();
    let home = Home::new();
    let sources = [
        (
            "python",
            "app.py",
            r#"import wit_world
from wit_world import Greeting, Request

import wasmflow_action as wf


class WitWorld(wit_world.WitWorld):
    def run(self, request: Request) -> Greeting:
        wf.progress(1, 2, "echoing")
        out = wf.run("echo", ["hello", request.name])
        message = out.stdout.decode().strip()
        if request.excited:
            wf.run("false", [])
        return Greeting(message, len(message))
"#,
        ),
        (
            "js",
            "app.js",
            r#"import * as wf from "./wasmflow_action.js";

export function run(request) {
  wf.progress(1, 2, "echoing");
  const message = wf.run("echo", ["hello", request.name]).stdout.trim();
  if (request.excited) {
    wf.run("false", []);
  }
  return { message, length: message.length };
}
"#,
        ),
        // The variadic helper, from C.
        (
            "c",
            "app.c",
            r#"#include <string.h>

#include "wasmflow.h"

bool exports_action_run(action_request_t *request, action_greeting_t *ret, action_error_t *err) {
  wasmflow_progress(1, 2, "echoing");
  char *name = wasmflow_cstring(&request->name);
  const bool excited = request->excited;
  action_request_free(request);
  wasmflow_output out;
  const bool ran = wasmflow_run(err, &out, "echo", "hello", name, NULL);
  free(name);
  if (!ran) return false;
  char *message = wasmflow_text(&out.stdout_);
  wasmflow_output_free(&out);
  size_t n = strlen(message);
  while (n > 0 && message[n - 1] == '\n') message[--n] = '\0';
  if (excited) {
    wasmflow_output ignored;
    if (!wasmflow_run(err, &ignored, "false", NULL)) {
      free(message);
      return false;
    }
    wasmflow_output_free(&ignored);
  }
  ret->message.ptr = (uint8_t *)message;
  ret->message.len = n;
  ret->length = (uint32_t)n;
  return true;
}
"#,
        ),
        // The argv helper, from Zig (which calls no C varargs).
        (
            "zig",
            "app.zig",
            r#"const std = @import("std");
const c = @import("wasmflow");

export fn exports_action_run(request: *c.action_request_t, ret: *c.action_greeting_t, err: *c.action_error_t) bool {
    defer c.action_request_free(request);
    c.wasmflow_progress(1, 2, "echoing");
    const name = c.wasmflow_cstring(&request.name);
    defer std.c.free(name);
    const argv = [_][*c]const u8{ "hello", name };
    var out: c.wasmflow_output = undefined;
    if (!c.wasmflow_run_argv(err, &out, "echo", argv.len, &argv, null, 0, true)) return false;
    const text = c.wasmflow_text(&out.stdout_);
    c.wasmflow_output_free(&out);
    var n = std.mem.len(text);
    while (n > 0 and text[n - 1] == '\n') n -= 1;
    if (request.excited) {
        var ignored: c.wasmflow_output = undefined;
        if (!c.wasmflow_run_argv(err, &ignored, "false", 0, null, null, 0, true)) {
            std.c.free(text);
            return false;
        }
        c.wasmflow_output_free(&ignored);
    }
    ret.message = .{ .ptr = text, .len = n };
    ret.length = @intCast(n);
    return true;
}
"#,
        ),
    ];
    for (lang, file, source) in sources {
        let dir = scaffold(&home, work.path(), &format!("echo.{lang}"), lang);
        std::fs::write(dir.join(file), source).unwrap();
        for old in ["greets", "rejects-empty-name"] {
            std::fs::remove_file(dir.join(format!("tests/{old}.json"))).unwrap();
        }
        let case = |name: &str, text: &str| {
            std::fs::write(dir.join(format!("tests/{name}.json")), text).unwrap()
        };
        case(
            "granted",
            r#"{ "input": { "request": { "name": "Ada", "excited": false } }, "grants": { "exec": ["echo"] },
                 "expect": { "message": "hello Ada", "length": 9 } }"#,
        );
        case(
            "denied",
            r#"{ "input": { "request": { "name": "Ada", "excited": false } },
                 "expect_error": { "code": "echo-denied", "retryable": false } }"#,
        );
        case(
            "exit-status",
            r#"{ "input": { "request": { "name": "Ada", "excited": true } }, "grants": { "exec": ["echo", "false"] },
                 "expect_error": { "code": "false-exit", "message": "false exited with status 1: " } }"#,
        );
        let t = dev(&home, &["test", s(&dir)]);
        t.ok();
        assert!(
            t.stdout.contains("3 passed; 0 failed"),
            "{lang}: {}",
            t.stdout
        );
    }
}
