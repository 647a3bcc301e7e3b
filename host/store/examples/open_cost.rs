//! How long opening the store takes as it grows, for the CLI's start-up.
//! `cargo run --release -p wasmflow-store --example open_cost`
use serde_json::json;
use wasmflow_store::{ExecutionRecord, Status, Store};

fn main() {
    if let Some(existing) = std::env::args().nth(1) {
        for _ in 0..5 {
            let t = std::time::Instant::now();
            let store = Store::open(std::path::Path::new(&existing)).unwrap();
            let opened = t.elapsed();
            let t = std::time::Instant::now();
            drop(store);
            println!("{existing}: open {opened:?} close {:?}", t.elapsed());
        }
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    for round in 0..6 {
        {
            let store = Store::open(dir.path()).unwrap();
            for i in 0..100 {
                let mut r = ExecutionRecord::new_action(
                    "a.wasm".into(),
                    "sha256:00".into(),
                    json!({ "i": i }),
                );
                store.put(&r).unwrap();
                r.status = Status::Succeeded;
                r.result = Some(json!(i));
                store.put(&r).unwrap();
            }
        }
        let mut times = Vec::new();
        for _ in 0..5 {
            let t = std::time::Instant::now();
            let store = Store::open(dir.path()).unwrap();
            times.push(t.elapsed());
            drop(store);
        }
        times.sort();
        println!(
            "{:>5} records: open {:?} (median of 5)",
            (round + 1) * 100,
            times[2]
        );
    }
}
