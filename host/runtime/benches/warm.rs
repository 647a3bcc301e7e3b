//! Warm actions in one process: instantiate + call + record of a trivial
//! component (add.wat), latency median and p99 on one thread, and actions
//! per second on two threads, with the on-demand allocator and with the
//! pooling allocator, measured in the same run.
//!
//! "Record" here is the server's way: the record written to sled without
//! its own fsync, and one flush shared by every execution that ended in
//! the meantime (group commit, one per 64 actions per thread here). The
//! per-record fsync of a lone `wasmflow run` is the criterion figure
//! `instantiate+call+record add`.
//!
//! `cargo bench -p wasmflow-runtime --bench warm` (bench/run.sh runs it);
//! `-- pooling` or `-- on-demand` runs one allocator (for a profiler).

#[path = "../../../tests/support/mod.rs"]
mod support;

use serde_json::json;
use std::time::{Duration, Instant};
use wasmflow_runtime::{Action, EngineOptions, RunOptions, Runtime};

const SAMPLES: usize = 5_000;
const GROUP: usize = 64;

fn main() {
    // `cargo bench` passes `--bench`; any other argument picks allocators
    // by name (`-- pooling`).
    let only: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with("--"))
        .collect();
    println!("warm instantiate + call + record of add.wat (group-committed records)");
    println!(
        "{:<24} {:>10} {:>10} {:>16}",
        "allocator", "p50 µs", "p99 µs", "2 threads: /s"
    );
    for (name, options) in [
        ("on-demand", EngineOptions::default()),
        (
            "pooling",
            EngineOptions {
                pooling_slots: 64,
                ..Default::default()
            },
        ),
    ] {
        if !only.is_empty() && !only.iter().any(|o| o == name) {
            continue;
        }
        let home = tempfile::tempdir().unwrap();
        let rt = Runtime::open_with(home.path(), Some(&support::shared_cache()), options).unwrap();
        let add = rt.load(&support::fixture("wat/add.wat")).unwrap();
        let (p50, p99) = latency(&rt, &add);
        let per_s = throughput(&rt, &add, 2, Duration::from_secs(3));
        println!(
            "{name:<24} {:>10.1} {:>10.1} {:>16.0}",
            p50.as_secs_f64() * 1e6,
            p99.as_secs_f64() * 1e6,
            per_s
        );
    }
}

fn options() -> RunOptions {
    RunOptions {
        defer_flush: true,
        ..Default::default()
    }
}

fn latency(rt: &Runtime, add: &Action) -> (Duration, Duration) {
    let tokio = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let input = json!({"a": 1, "b": 2});
    let mut times = Vec::with_capacity(SAMPLES);
    for i in 0..SAMPLES + 500 {
        let t = Instant::now();
        let r = tokio
            .block_on(rt.run(add, input.clone(), options()))
            .unwrap();
        if (i + 1) % GROUP == 0 {
            rt.store().flush().unwrap();
        }
        if i >= 500 {
            times.push(t.elapsed());
        }
        assert_eq!(r.result, Some(json!(3)));
    }
    times.sort();
    (times[times.len() / 2], times[times.len() * 99 / 100])
}

fn throughput(rt: &Runtime, add: &Action, threads: usize, span: Duration) -> f64 {
    let start = Instant::now();
    let total: usize = std::thread::scope(|s| {
        let handles: Vec<_> = (0..threads)
            .map(|_| {
                s.spawn(|| {
                    let tokio = tokio::runtime::Builder::new_current_thread()
                        .enable_all()
                        .build()
                        .unwrap();
                    let input = json!({"a": 1, "b": 2});
                    let mut n = 0;
                    while start.elapsed() < span {
                        tokio
                            .block_on(rt.run(add, input.clone(), options()))
                            .unwrap();
                        n += 1;
                        if n % GROUP == 0 {
                            rt.store().flush().unwrap();
                        }
                    }
                    rt.store().flush().unwrap();
                    n
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).sum()
    });
    total as f64 / start.elapsed().as_secs_f64()
}
