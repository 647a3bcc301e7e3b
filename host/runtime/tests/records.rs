//! When an execution's record shows `running`: a guest still computing
//! after the short grace is visible as `running` (by id and in the status
//! index) while it runs, and its final record replaces that state in both.

#[path = "../../../tests/support/mod.rs"]
mod support;

use std::time::{Duration, Instant};
use wasmflow_runtime::{RunOptions, Runtime};
use wasmflow_store::{ExecutionId, Limits, Lineage, ListFilter, Status};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_long_execution_shows_running_then_its_outcome() {
    let home = tempfile::tempdir().unwrap();
    let rt = Runtime::open(home.path(), Some(&support::shared_cache())).unwrap();
    let spin = rt.load(&support::fixture("wat/loop.wat")).unwrap();
    let id = ExecutionId::new();
    let options = RunOptions {
        lineage: Lineage {
            id: Some(id),
            ..Lineage::default()
        },
        limits: Limits {
            timeout_ms: 1500,
            ..Limits::default()
        },
        ..Default::default()
    };
    let running = {
        let rt = rt.clone();
        tokio::spawn(async move { rt.run(&spin, serde_json::json!({}), options).await })
    };

    let by_status = |status| {
        rt.store()
            .list(&ListFilter {
                status: Some(status),
                ..Default::default()
            })
            .unwrap()
            .iter()
            .any(|r| r.id == id)
    };
    let start = Instant::now();
    loop {
        if let Some(r) = rt.store().get(id).unwrap() {
            assert_eq!(r.status, Status::Running, "{r:?}");
            assert!(r.started_at.is_some());
            break;
        }
        assert!(
            start.elapsed() < Duration::from_millis(1000),
            "no `running` record within a second of the start"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    assert!(by_status(Status::Running));

    let record = running.await.unwrap().unwrap();
    assert_eq!(record.status, Status::TimedOut);
    assert_eq!(
        rt.store().get(id).unwrap().unwrap().status,
        Status::TimedOut
    );
    assert!(
        !by_status(Status::Running),
        "the `running` index entry is gone"
    );
    assert!(by_status(Status::TimedOut));
}
