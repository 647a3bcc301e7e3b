//! Shared by the end-to-end and runtime tests: build real actions from
//! source (once per test process, and only when the source is newer than
//! the component), and share one compiled-component cache between tests.

#![allow(dead_code)]

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Mutex;
use std::time::SystemTime;

pub fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .unwrap()
}

/// One compiled-component cache for every test: a Python component is
/// ~18 MB and compiling it once is enough.
pub fn shared_cache() -> PathBuf {
    root().join("target/test-component-cache")
}

static BUILT: Mutex<Option<HashSet<PathBuf>>> = Mutex::new(None);

/// The component built from `dir` (relative to the repo root), building it
/// with its `build.sh` if it is missing or older than its sources.
pub fn built(dir: &str) -> PathBuf {
    let dir = root().join(dir);
    let name = dir.file_name().unwrap().to_str().unwrap().to_owned();
    let wasm = dir.join(format!("{name}.wasm"));
    let mut guard = BUILT.lock().unwrap_or_else(|e| e.into_inner());
    let done = guard.get_or_insert_with(HashSet::new);
    if done.contains(&dir) {
        return wasm;
    }
    if stale(&dir, &wasm) {
        let mut build = Command::new(dir.join("build.sh"));
        // A C action's build.sh runs `wasmflow build`: this test binary's
        // own wasmflow when there is one (in the end-to-end suite).
        if let Some(bin) = option_env!("CARGO_BIN_EXE_wasmflow") {
            build.env("WASMFLOW", bin);
        }
        let out = build
            .output()
            .unwrap_or_else(|e| panic!("cannot run {}/build.sh: {e}", dir.display()));
        assert!(
            out.status.success(),
            "building {} failed (scripts/install-toolchains.sh installs the toolchains):\n{}\n{}",
            dir.display(),
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    done.insert(dir);
    wasm
}

fn stale(dir: &Path, wasm: &Path) -> bool {
    let Ok(built) = wasm.metadata().and_then(|m| m.modified()) else {
        return true;
    };
    let mut newest = SystemTime::UNIX_EPOCH;
    let sources = [
        "app.py",
        "app.js",
        "app.c",
        "wasmflow.c",
        "wasmflow.h",
        "wit/world.wit",
    ];
    for src in sources {
        if let Ok(t) = dir.join(src).metadata().and_then(|m| m.modified()) {
            newest = newest.max(t);
        }
    }
    if let Ok(t) = root()
        .join("wit/action.wit")
        .metadata()
        .and_then(|m| m.modified())
    {
        newest = newest.max(t);
    }
    newest > built
}

/// A value of the `echo` fixture's `everything` record: every WIT type
/// kind, each at an edge of its range.
pub fn everything() -> serde_json::Value {
    serde_json::json!({
        "flag": true,
        "i8v": -128, "u8v": 255, "i16v": -32768, "u16v": 65535,
        "i32v": -2147483648i64, "u32v": 4294967295u64,
        "i64v": i64::MIN, "u64v": u64::MAX,
        "f32v": 1.5, "f64v": -0.25,
        "letter": "λ",
        "text": "hello, wörld",
        "blob": "AAEC/w==",
        "words": ["a", "b", ""],
        "pair": [7, "seven"],
        "maybe": 3,
        "color": "blue-ish",
        "perms": ["read", "exec"],
        "shape": { "circle": 2.5 },
        "outcome": { "err": "nope" },
        "nested": [ { "label": "x", "weight": 1 }, { "label": "y", "weight": null } ],
    })
}

pub fn fixture(rel: &str) -> PathBuf {
    root().join("tests/fixtures").join(rel)
}
