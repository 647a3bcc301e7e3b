//! Misbehaving guests fail their own execution with a clear status.

use crate::{s, support, wat, Home};

fn expect<S: AsRef<str>>(home: &Home, args: &[S], status: &str, code: &str, message: &str) {
    let args: Vec<&str> = args.iter().map(AsRef::as_ref).collect();
    let run = home.run(&args);
    run.code(1);
    let rec = home.last_record();
    assert_eq!(rec["status"], status, "{args:?}: {rec:#}");
    assert_eq!(rec["error"]["code"], code, "{args:?}: {rec:#}");
    let got = rec["error"]["message"].as_str().unwrap();
    assert!(
        got.contains(message),
        "{args:?}: message {got:?} lacks {message:?}"
    );
}

#[test]
fn wat_guests_loop_bomb_trap_and_overflow() {
    let home = Home::new();
    let run = |name: &str| {
        ["run", s(&wat(name)), "--timeout", "1s", "--memory", "32MiB"].map(str::to_owned)
    };
    expect(
        &home,
        &run("loop"),
        "timed_out",
        "timeout",
        "longer than its 1s limit",
    );
    expect(
        &home,
        &run("bomb"),
        "failed",
        "memory-limit",
        "memory limit of 33554432 bytes exceeded",
    );
    // Tables past the backstop, declared or grown: memory-limit too.
    for name in ["table", "table-grow"] {
        expect(
            &home,
            &run(name),
            "failed",
            "memory-limit",
            "table limit of 1048576 elements exceeded",
        );
    }
    expect(&home, &run("trap"), "failed", "trap", "unreachable");
    expect(
        &home,
        &run("stack"),
        "failed",
        "stack-overflow",
        "call stack exhausted",
    );
    // The host is fine: a normal action right after succeeds.
    let ok = home.run(&["run", s(&wat("add")), "-p", "a=40", "-p", "b=2"]);
    ok.ok();
    assert_eq!(ok.json(), 42);
}

#[test]
fn python_guest_spins_hogs_shouts_floods_and_crashes() {
    let wasm = support::built("tests/fixtures/hostile");
    let home = Home::new();
    let h = s(&wasm);
    let base = |mode: &str| {
        let mode = format!("mode={mode}");
        [
            "run",
            h,
            "-p",
            &mode,
            "-p",
            "target=",
            "--timeout",
            "3s",
            "--memory",
            "64MiB",
            "--max-output",
            "64KiB",
            "--max-log",
            "64KiB",
        ]
        .map(str::to_owned)
    };
    expect(&home, &base("spin"), "timed_out", "timeout", "3s");
    expect(
        &home,
        &base("hog"),
        "failed",
        "memory-limit",
        "memory limit of 67108864 bytes exceeded",
    );
    expect(
        &home,
        &base("shout"),
        "failed",
        "output-limit",
        "stdout exceeded the output limit of 65536 bytes",
    );
    expect(
        &home,
        &base("flood"),
        "failed",
        "log-limit",
        "log exceeded the limit of 65536 bytes",
    );
    // Every clock read is an answer to record: a guest that never stops
    // asking is stopped at the recording limit, not let fill the host.
    let mut tick = base("tick");
    tick[7] = "60s".into();
    expect(
        &home,
        &tick,
        "failed",
        "recording-limit",
        "recorded more than 64 MiB of answers",
    );
    expect(&home, &base("crash"), "failed", "trap", "unreachable");
    let rec = home.last_record();
    assert!(
        rec["stderr"]
            .as_str()
            .unwrap()
            .contains("crashed on purpose"),
        "the traceback is kept: {}",
        rec["stderr"]
    );

    // Captured output is capped at the limit, not lost.
    let list = home.run(&[
        "execution",
        "list",
        "--status",
        "failed",
        "--json",
        "-n",
        "10",
    ]);
    let shout = list
        .json()
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["error"]["code"] == "output-limit")
        .cloned()
        .unwrap();
    assert_eq!(shout["stdout"].as_str().unwrap().len(), 65536);

    // And the host is fine afterwards.
    home.run(&[
        "run",
        h,
        "-p",
        "mode=env",
        "-p",
        "target=X",
        "--allow-env",
        "X=fine",
    ])
    .ok();
}
