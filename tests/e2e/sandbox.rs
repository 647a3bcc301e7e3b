//! Files, environment and programs are denied unless granted.

use crate::{s, support, Home};

#[test]
fn files_outside_the_grants_are_invisible() {
    let wasm = support::built("tests/fixtures/hostile");
    let home = Home::new();
    let dir = tempfile::tempdir().unwrap();
    let secret = dir.path().join("secret.txt");
    std::fs::write(&secret, "s3cret").unwrap();
    let h = s(&wasm);
    let target = format!("target={}", s(&secret));

    let denied = home.run(&["run", h, "-p", "mode=read-file", "-p", &target]);
    denied.code(1).stderr_has("[io] cannot read");
    assert!(!denied.stdout.contains("s3cret"));

    let read = home.run(&[
        "run",
        h,
        "-p",
        "mode=read-file",
        "-p",
        &target,
        "--allow-read",
        s(dir.path()),
    ]);
    assert_eq!(read.ok().json(), "s3cret");

    // A read grant does not allow writing...
    let out = dir.path().join("out.txt");
    let wtarget = format!("target={}", s(&out));
    home.run(&[
        "run",
        h,
        "-p",
        "mode=write-file",
        "-p",
        &wtarget,
        "--allow-read",
        s(dir.path()),
    ])
    .code(1)
    .stderr_has("[io] cannot write");
    assert!(!out.exists());
    // ...a write grant does.
    home.run(&[
        "run",
        h,
        "-p",
        "mode=write-file",
        "-p",
        &wtarget,
        "--allow-write",
        s(dir.path()),
    ])
    .ok();
    assert_eq!(
        std::fs::read_to_string(&out).unwrap(),
        "written by hostile\n"
    );

    // A guest path can differ from the host path.
    let mapped = home.run(&[
        "run",
        h,
        "-p",
        "mode=read-file",
        "-p",
        "target=/data/secret.txt",
        "--allow-read",
        &format!("{}::/data", s(dir.path())),
    ]);
    assert_eq!(mapped.ok().json(), "s3cret");
}

#[test]
fn environment_is_empty_unless_granted() {
    let wasm = support::built("tests/fixtures/hostile");
    let home = Home::new();
    let h = s(&wasm);
    let mut cmd = home.cmd();
    cmd.env("WF_TEST_VAR", "from-host").args([
        "run",
        h,
        "-p",
        "mode=env",
        "-p",
        "target=WF_TEST_VAR",
    ]);
    let denied = crate::Run::from(cmd.output().unwrap());
    denied.code(1).stderr_has("WF_TEST_VAR is not set");

    let mut cmd = home.cmd();
    cmd.env("WF_TEST_VAR", "from-host").args([
        "run",
        h,
        "-p",
        "mode=env",
        "-p",
        "target=WF_TEST_VAR",
        "--allow-env",
        "WF_TEST_VAR",
    ]);
    assert_eq!(
        crate::Run::from(cmd.output().unwrap()).ok().json(),
        "from-host"
    );

    let fixed = home.run(&[
        "run",
        h,
        "-p",
        "mode=env",
        "-p",
        "target=A",
        "--allow-env",
        "A=given",
    ]);
    assert_eq!(fixed.ok().json(), "given");
}

#[test]
fn only_granted_programs_run() {
    let wasm = support::built("tests/fixtures/hostile");
    let home = Home::new();
    let h = s(&wasm);
    let denied = home.run(&["run", h, "-p", "mode=exec", "-p", "target=id"]);
    denied
        .code(1)
        .stderr_has("ProcessError_Denied")
        .stderr_has("--allow-exec id");
    let rec = home.last_record();
    assert!(rec["logs"].to_string().contains("denied: exec id"));

    // Granting one program does not grant another.
    home.run(&[
        "run",
        h,
        "-p",
        "mode=exec",
        "-p",
        "target=id",
        "--allow-exec",
        "true",
    ])
    .code(1)
    .stderr_has("ProcessError_Denied");
    let ok = home.run(&[
        "run",
        h,
        "-p",
        "mode=exec",
        "-p",
        "target=id",
        "--allow-exec",
        "id",
    ]);
    assert!(ok.ok().json().as_str().unwrap().starts_with("uid="));

    // Granted but missing from PATH.
    home.run(&[
        "run",
        h,
        "-p",
        "mode=exec",
        "-p",
        "target=no-such-tool-wf",
        "--allow-exec",
        "no-such-tool-wf",
    ])
    .code(1)
    .stderr_has("ProcessError_NotFound");
}
