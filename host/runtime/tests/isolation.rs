//! A misbehaving guest fails its own execution; the next one in the same
//! host process runs normally.

#[path = "../../../tests/support/mod.rs"]
mod support;

use serde_json::json;
use wasmflow_runtime::{RunOptions, Runtime};
use wasmflow_store::{Limits, Status};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_guests_do_not_hurt_the_host() {
    let home = tempfile::tempdir().unwrap();
    let rt = Runtime::open(home.path(), Some(&support::shared_cache())).unwrap();
    let add = rt.load(&support::fixture("wat/add.wat")).unwrap();
    let hostile = rt.load(&support::built("tests/fixtures/hostile")).unwrap();
    let limits = Limits {
        memory_bytes: 64 << 20,
        timeout_ms: 1500,
        output_bytes: 64 << 10,
        log_bytes: 64 << 10,
    };
    let opts = RunOptions {
        limits,
        ..Default::default()
    };

    let cases = [
        (
            rt.load(&support::fixture("wat/loop.wat")).unwrap(),
            json!({}),
            Status::TimedOut,
            "timeout",
        ),
        (
            rt.load(&support::fixture("wat/bomb.wat")).unwrap(),
            json!({}),
            Status::Failed,
            "memory-limit",
        ),
        (
            rt.load(&support::fixture("wat/trap.wat")).unwrap(),
            json!({}),
            Status::Failed,
            "trap",
        ),
        (
            rt.load(&support::fixture("wat/stack.wat")).unwrap(),
            json!({}),
            Status::Failed,
            "stack-overflow",
        ),
        (
            hostile.clone(),
            json!({ "mode": "spin", "target": "" }),
            Status::TimedOut,
            "timeout",
        ),
        (
            hostile.clone(),
            json!({ "mode": "hog", "target": "" }),
            Status::Failed,
            "memory-limit",
        ),
        (
            hostile.clone(),
            json!({ "mode": "shout", "target": "" }),
            Status::Failed,
            "output-limit",
        ),
        (
            hostile.clone(),
            json!({ "mode": "flood", "target": "" }),
            Status::Failed,
            "log-limit",
        ),
        (
            hostile.clone(),
            json!({ "mode": "read-file", "target": "/etc/passwd" }),
            Status::Failed,
            "io",
        ),
        (
            hostile.clone(),
            json!({ "mode": "exec", "target": "sh" }),
            Status::Failed,
            "exec",
        ),
    ];
    for (action, input, status, code) in cases {
        let rec = rt.run(&action, input.clone(), opts.clone()).await.unwrap();
        assert_eq!(rec.status, status, "{input}: {rec:#?}");
        assert_eq!(rec.error.as_ref().unwrap().code, code, "{input}");
        // Right after, in the same process and engine, a normal action works.
        let ok = rt
            .run(&add, json!({ "a": 2, "b": 3 }), opts.clone())
            .await
            .unwrap();
        assert_eq!(ok.status, Status::Succeeded, "after {input}");
        assert_eq!(ok.result, Some(json!(5)));
    }

    // Concurrent executions are isolated from each other too.
    let spin = rt.run(
        &hostile,
        json!({ "mode": "spin", "target": "" }),
        opts.clone(),
    );
    let fine = async {
        let mut n = 0;
        for _ in 0..20 {
            let r = rt
                .run(&add, json!({ "a": 1, "b": 1 }), opts.clone())
                .await
                .unwrap();
            n += (r.status == Status::Succeeded) as u32;
        }
        n
    };
    let (spun, n) = tokio::join!(spin, fine);
    assert_eq!(spun.unwrap().status, Status::TimedOut);
    assert_eq!(n, 20);
    assert_eq!(rt.store().len().unwrap(), 2 * 10 + 21);
}
