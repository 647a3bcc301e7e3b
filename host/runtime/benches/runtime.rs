//! Hot paths of the runtime, for regressions in review:
//! compile, cached load, instantiate+call, instantiate+call+record, and
//! JSON -> WIT conversion; and the recording overhead on a real action
//! (vm.clone: a Python component calling qemu-img twice), recorded against
//! the same run with the recorder writing nothing, recorded with its fsync
//! shared (as a server's workers do), and its replay.
//!
//! `cargo bench -p wasmflow-runtime` (bench/run.sh runs it with the rest).

#[path = "../../../tests/support/mod.rs"]
mod support;

use criterion::{criterion_group, criterion_main, BatchSize, Criterion};
use serde_json::json;
use wasmflow_runtime::{Recording, RunOptions, Runtime};
use wasmflow_store::{Grants, Limits, Mount};

fn runtime_benches(c: &mut Criterion) {
    let home = tempfile::tempdir().unwrap();
    let cache = tempfile::tempdir().unwrap();
    let rt = Runtime::open(home.path(), Some(cache.path())).unwrap();
    let add_path = support::fixture("wat/add.wat");
    let add = rt.load(&add_path).unwrap();
    let tokio = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let input = json!({ "a": 1, "b": 2 });
    let (grants, limits) = (Grants::default(), Limits::default());

    c.bench_function("compile add.wat (uncached)", |b| {
        b.iter_batched(
            || {
                let fresh = tempfile::tempdir().unwrap();
                let rt =
                    Runtime::open(&fresh.path().join("h"), Some(&fresh.path().join("c"))).unwrap();
                (fresh, rt)
            },
            |(_fresh, rt)| rt.load(&add_path).unwrap(),
            BatchSize::PerIteration,
        )
    });
    c.bench_function("load add.wat (cached)", |b| {
        b.iter(|| rt.load(&add_path).unwrap())
    });
    c.bench_function("instantiate+call add", |b| {
        b.iter(|| {
            tokio
                .block_on(rt.execute(&add, &input, &grants, &limits))
                .unwrap()
        })
    });
    c.bench_function("instantiate+call+record add", |b| {
        b.iter(|| {
            tokio
                .block_on(rt.run(&add, input.clone(), Default::default()))
                .unwrap()
        })
    });

    let echo = rt.load(&support::built("tests/fixtures/echo")).unwrap();
    let everything = json!({ "value": {
        "flag": true, "i8v": -1, "u8v": 2, "i16v": -3, "u16v": 4, "i32v": -5, "u32v": 6,
        "i64v": -7, "u64v": 8, "f32v": 1.5, "f64v": 2.5, "letter": "x", "text": "hello",
        "blob": "AAECAw==", "words": ["a", "b", "c"], "pair": [1, "one"], "maybe": 3,
        "color": "green", "perms": ["read"], "shape": { "named": "hex" }, "outcome": { "ok": 1 },
        "nested": [{ "label": "a", "weight": 1 }, { "label": "b", "weight": null }],
    }});
    c.bench_function("json->wit check_input (22-field record)", |b| {
        b.iter(|| echo.check_input(&everything).unwrap())
    });
}

fn recording_overhead(c: &mut Criterion) {
    let home = tempfile::tempdir().unwrap();
    let rt = Runtime::open(home.path(), Some(&support::shared_cache())).unwrap();
    let tokio = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let vm = rt.load(&support::built("actions/vm.clone")).unwrap();
    let disks = tempfile::tempdir().unwrap();
    let template = disks.path().join("base.qcow2");
    let made = std::process::Command::new("qemu-img")
        .args(["create", "-q", "-f", "qcow2"])
        .arg(&template)
        .arg("32M")
        .status()
        .expect("qemu-img is installed (scripts/install-toolchains.sh)");
    assert!(made.success());
    // The guest and the qemu-img it runs are confined to what is granted:
    // the directory of the template and the clones.
    let dir = disks.path().display().to_string();
    let grants = Grants {
        exec: vec!["qemu-img".into()],
        write: vec![Mount {
            host: dir.clone(),
            guest: dir,
        }],
        ..Grants::default()
    };
    let limits = Limits::default();
    // Each clone gets a new name: both variants do the same work. The
    // clone before it is removed first, so every run starts from the same
    // directory: a recorded run snapshots what its write grants hold (each
    // file read and hashed), and a directory filling with clones made each
    // run dearer than the one before.
    let mut n = 0u64;
    let mut spec = || {
        if n > 0 {
            let _ = std::fs::remove_file(disks.path().join(format!("vm{n}.qcow2")));
        }
        n += 1;
        json!({ "spec": { "source": template, "name": format!("vm{n}"), "dir": disks.path(),
                           "cpus": 2, "memory-mb": 2048, "linked": true } })
    };
    let mut group = c.benchmark_group("vm.clone");
    group.sample_size(20);
    group.bench_function("recorder writing nothing", |b| {
        b.iter(|| {
            let out = tokio
                .block_on(rt.execute(&vm, &spec(), &grants, &limits))
                .unwrap();
            assert_eq!(
                out.outcome.status,
                wasmflow_store::Status::Succeeded,
                "{out:?}"
            );
        })
    });
    group.bench_function("recorded", |b| {
        b.iter(|| {
            let options = RunOptions {
                grants: grants.clone(),
                ..RunOptions::default()
            };
            let rec = tokio.block_on(rt.run(&vm, spec(), options)).unwrap();
            assert_eq!(rec.status, wasmflow_store::Status::Succeeded);
        })
    });
    // The same with the record's fsync left to a later flush, as a
    // server's worker does (one fsync shared by every execution that ended
    // meanwhile): what recording costs besides the fsync of a lone run.
    group.bench_function("recorded, flush shared", |b| {
        b.iter(|| {
            let options = RunOptions {
                grants: grants.clone(),
                defer_flush: true,
                ..RunOptions::default()
            };
            let rec = tokio.block_on(rt.run(&vm, spec(), options)).unwrap();
            assert_eq!(rec.status, wasmflow_store::Status::Succeeded);
        })
    });
    // Replay answers every question from the recording: no qemu-img runs.
    let options = RunOptions {
        grants: grants.clone(),
        ..RunOptions::default()
    };
    let recorded = tokio.block_on(rt.run(&vm, spec(), options)).unwrap();
    let recording = Recording::from_store(rt.store(), recorded).unwrap();
    group.bench_function("replayed", |b| {
        b.iter(|| {
            let report = tokio.block_on(rt.replay(&recording, None)).unwrap();
            assert!(report.passed(), "{}", report.verdict);
        })
    });
    group.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(30).measurement_time(std::time::Duration::from_secs(3));
    targets = runtime_benches, recording_overhead
}
criterion_main!(benches);
