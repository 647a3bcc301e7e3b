//! Actions in C: the example `disk.checksum` (built from source by its
//! build.sh, i.e. `wasmflow build` with Zig) run alone with its grant
//! denied and granted, and the `echo` fixture's every-type world through a
//! C guest (a second, independent guest for the JSON <-> WIT mapping).

use crate::{s, support, Home};
use serde_json::{json, Value};
use std::path::Path;
use std::process::Command;

/// What coreutils says the file's SHA-256 is: the peer the C action is
/// checked against.
pub fn sha256sum(path: &Path) -> String {
    let out = Command::new("sha256sum").arg(path).output().unwrap();
    assert!(out.status.success());
    String::from_utf8(out.stdout).unwrap()[..64].to_owned()
}

#[test]
fn disk_checksum_streams_a_granted_file_and_is_denied_the_rest() {
    let wasm = support::built("actions/disk.checksum");
    let home = Home::new();
    let tmp = tempfile::tempdir().unwrap();
    // 3.5 MiB that are not all alike, so block boundaries and the final
    // partial block are all exercised.
    let file = tmp.path().join("template.img");
    let bytes: Vec<u8> = (0..3_670_019u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    std::fs::write(&file, &bytes).unwrap();
    let want = sha256sum(&file);

    // `wasmflow run` of the action on `path`, its directory `granted`.
    let checksum = |path: &Path, expect: Option<&str>, granted: Option<&Path>| {
        let spec = format!(
            "spec={}",
            json!({ "path": path, "progress-mib": 1, "expect": expect })
        );
        let mut args = vec!["run", s(&wasm), "-p", &spec, "--json"];
        if let Some(dir) = granted {
            args.extend(["--allow-read", s(dir)]);
        }
        home.run(&args)
    };

    // Granted: the digest coreutils computes, the size, and progress.
    let rec = checksum(&file, None, Some(tmp.path())).ok().json();
    assert_eq!(rec["result"]["sha256"], want);
    assert_eq!(rec["result"]["size-bytes"], bytes.len());
    let shown = home
        .run(&["execution", "get", rec["id"].as_str().unwrap(), "--detail"])
        .ok()
        .stdout
        .clone();
    for line in [
        "[1048576/3670019] 1 MiB read",
        "[3145728/3670019] 3 MiB read",
    ] {
        assert!(shown.contains(line), "{line} in {shown}");
    }
    assert!(shown.contains(&format!("sha256 {want}")), "{shown}");

    // The expected digest holds; another fails the execution.
    checksum(&file, Some(&want.to_uppercase()), Some(tmp.path())).ok();
    let rec = checksum(&file, Some(&"0".repeat(64)), Some(tmp.path()))
        .code(1)
        .json();
    assert_eq!(rec["error"]["code"], "checksum-mismatch");

    // Not granted: the sandbox does not let it open the file, and the
    // action says so (its directory is not there for it at all).
    let rec = checksum(&file, None, None).code(1).json();
    assert_eq!(rec["error"]["code"], "denied", "{rec}");
    assert_eq!(
        rec["error"]["message"],
        format!(
            "cannot open {}: its directory is not granted (--allow-read DIR)",
            file.display()
        )
    );
    // A grant of another directory does not reach it either, nor a path
    // that climbs out of that one into this.
    let other = tempfile::tempdir().unwrap();
    let climbing = other
        .path()
        .join("..")
        .join(tmp.path().file_name().unwrap())
        .join("template.img");
    for path in [&file, &climbing] {
        let rec = checksum(path, None, Some(other.path())).code(1).json();
        assert_eq!(rec["error"]["code"], "denied", "{rec}");
    }
}

/// The echo world, built from `tests/fixtures/echo/c/app.c` in a project
/// made by `wasmflow new --lang c`.
fn c_echo(home: &Home, work: &Path) -> std::path::PathBuf {
    let dir = work.join("echo-c");
    home.run(&["new", "echo-c", "--lang", "c", "--dir", s(work)])
        .ok();
    let fixture = support::fixture("echo");
    std::fs::copy(fixture.join("wit/world.wit"), dir.join("wit/world.wit")).unwrap();
    std::fs::copy(fixture.join("c/app.c"), dir.join("app.c")).unwrap();
    for case in ["greets", "rejects-empty-name"] {
        std::fs::remove_file(dir.join(format!("tests/{case}.json"))).unwrap();
    }
    let built = home.run(&["build", s(&dir)]);
    built.ok();
    dir.join("echo-c.wasm")
}

#[test]
fn every_wit_type_round_trips_through_a_c_guest() {
    let home = Home::new();
    let work = tempfile::tempdir().unwrap();
    let wasm = c_echo(&home, work.path());
    let echo = |value: &Value, extra: Value| {
        let input = work.path().join("input.json");
        std::fs::write(
            &input,
            json!({ "value": value, "extra": extra }).to_string(),
        )
        .unwrap();
        home.run(&["run", s(&wasm), "--input", s(&input), "--json"])
    };

    let v = support::everything();
    let rec = echo(&v, Value::Null);
    rec.ok();
    assert_eq!(rec.json()["result"], v);

    // The other cases of each option, variant, result and list.
    let mut other = v.clone();
    other["maybe"] = Value::Null;
    other["shape"] = json!({ "named": "hex" });
    other["outcome"] = json!({ "ok": 42 });
    other["perms"] = json!([]);
    other["blob"] = json!("");
    other["words"] = json!([]);
    other["nested"] = json!([]);
    other["f64v"] = json!("NaN");
    other["f32v"] = json!("-Infinity");
    let rec = echo(&other, Value::Null);
    rec.ok();
    assert_eq!(rec.json()["result"], other);
    other["shape"] = json!("point");
    assert_eq!(echo(&other, Value::Null).json()["result"], other);

    // The err case, with its details, as the Python guest gives it.
    let rec = echo(&v, json!("fail"));
    rec.code(1);
    let e = &rec.json()["error"];
    assert_eq!(
        (&e["code"], &e["message"], &e["retryable"], &e["details"]),
        (
            &json!("asked-to-fail"),
            &json!("extra was 'fail'"),
            &json!(true),
            &json!({ "why": "test" })
        )
    );

    // And a bad input is refused by the host before the guest runs, naming
    // the path and the WIT type.
    let mut bad = v.clone();
    bad["nested"][1]["weight"] = json!(70000);
    echo(&bad, Value::Null)
        .code(2)
        .stderr_has("value.nested[1].weight: 70000 is out of range for u16");
}
