//! Files, environment and programs are denied unless granted.

use crate::{s, Home, Run};

#[test]
fn files_outside_the_grants_are_invisible() {
    let home = Home::new();
    let dir = tempfile::tempdir().unwrap();
    let secret = dir.path().join("secret.txt");
    std::fs::write(&secret, "s3cret").unwrap();
    let (secret, d) = (s(&secret), s(dir.path()));

    let denied = home.hostile("read-file", secret, &[]);
    denied.code(1).stderr_has("[io] cannot read");
    assert!(!denied.stdout.contains("s3cret"));

    let read = home.hostile("read-file", secret, &["--allow-read", d]);
    assert_eq!(read.ok().json(), "s3cret");

    // A read grant does not allow writing...
    let out = dir.path().join("out.txt");
    home.hostile("write-file", s(&out), &["--allow-read", d])
        .code(1)
        .stderr_has("[io] cannot write");
    assert!(!out.exists());
    // ...a write grant does.
    home.hostile("write-file", s(&out), &["--allow-write", d])
        .ok();
    assert_eq!(
        std::fs::read_to_string(&out).unwrap(),
        "written by hostile\n"
    );

    // A guest path can differ from the host path.
    let mapped = home.hostile(
        "read-file",
        "/data/secret.txt",
        &["--allow-read", &format!("{d}::/data")],
    );
    assert_eq!(mapped.ok().json(), "s3cret");
}

#[test]
fn environment_is_empty_unless_granted() {
    let home = Home::new();
    let with_host_var = |flags: &[&str]| {
        let mut cmd = home.hostile_cmd("env", "WF_TEST_VAR", flags);
        cmd.env("WF_TEST_VAR", "from-host");
        Run::from(cmd.output().unwrap())
    };
    with_host_var(&[])
        .code(1)
        .stderr_has("WF_TEST_VAR is not set");
    assert_eq!(
        with_host_var(&["--allow-env", "WF_TEST_VAR"]).ok().json(),
        "from-host"
    );

    // A value given in clear is a secret: the guest gets it, and what it
    // returns is masked (the mask stands for exactly that value).
    let fixed = home.hostile("env", "A", &["--allow-env", "A=given"]);
    assert_eq!(fixed.ok().json(), "***");
}

#[test]
fn only_granted_programs_run() {
    let home = Home::new();
    let denied = home.hostile("exec", "id", &[]);
    denied
        .code(1)
        .stderr_has("ProcessError_Denied")
        .stderr_has("--allow-exec id");
    let rec = home.last_record();
    assert!(rec["logs"].to_string().contains("denied: exec id"));

    // Granting one program does not grant another.
    home.hostile("exec", "id", &["--allow-exec", "true"])
        .code(1)
        .stderr_has("ProcessError_Denied");
    let ok = home.hostile("exec", "id", &["--allow-exec", "id"]);
    assert!(ok.ok().json().as_str().unwrap().starts_with("uid="));

    // Granted but missing from PATH.
    home.hostile(
        "exec",
        "no-such-tool-wf",
        &["--allow-exec", "no-such-tool-wf"],
    )
    .code(1)
    .stderr_has("ProcessError_NotFound");
}
