//! The shared wasmtime engine and the epoch ticker that enforces wall time.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;
use wasmtime::{Config, Engine};

/// How often the epoch advances; timeouts are rounded up to this.
pub(crate) const EPOCH_TICK: Duration = Duration::from_millis(10);

/// Bytes of each pooled memory and table reset in place between instances.
const KEEP_RESIDENT: usize = 64 << 10;

/// How the engine compiles components and allocates instances.
#[derive(Clone, Debug, Default)]
pub struct EngineOptions {
    /// Pre-reserve slots for this many instances (memories, tables,
    /// stacks) and reuse them, instead of mapping fresh memory for every
    /// instantiation; 0 leaves the on-demand allocator. Each slot reserves
    /// address space for the largest memory a guest may have.
    pub pooling_slots: u32,
    /// Where and within what bounds components are compiled.
    pub compile: crate::CompileOptions,
}

pub(crate) fn new_engine(options: &EngineOptions) -> wasmtime::Result<Engine> {
    new_engine_with(options, None)
}

/// [`new_engine`] whose compilations reuse (and add to) `functions`, the
/// incremental compilation cache. It changes no machine code: what it
/// compiles loads in every engine of [`new_engine`].
pub(crate) fn new_engine_with(
    options: &EngineOptions,
    functions: Option<Arc<dyn wasmtime::CacheStore>>,
) -> wasmtime::Result<Engine> {
    let mut config = Config::new();
    if let Some(functions) = functions {
        config.enable_incremental_compilation(functions)?;
    }
    if options.pooling_slots > 0 {
        let n = options.pooling_slots;
        let mut pool = wasmtime::PoolingAllocationConfig::default();
        pool.total_component_instances(n)
            .total_core_instances(n * 4)
            .total_memories(n * 4)
            .total_tables(n * 4)
            .total_stacks(n)
            .max_memory_size(1 << 30)
            // Reset a slot's first pages with memset rather than madvise:
            // madvise on a busy multi-threaded host costs a TLB shootdown
            // on every core per instance, more than the memset.
            .linear_memory_keep_resident(KEEP_RESIDENT)
            .table_keep_resident(KEEP_RESIDENT);
        config.allocation_strategy(wasmtime::InstanceAllocationStrategy::Pooling(pool));
    }
    config
        .wasm_component_model(true)
        .epoch_interruption(true)
        // Guests get 1 MiB of wasm stack; the fiber they run on gets room
        // beyond that for host frames, so deep recursion traps cleanly.
        .max_wasm_stack(1 << 20)
        .async_stack_size(4 << 20)
        .cranelift_opt_level(wasmtime::OptLevel::Speed)
        .parallel_compilation(true);
    Engine::new(&config)
}

/// Advances the engine's epoch every [`EPOCH_TICK`] until dropped.
pub(crate) struct EpochTicker {
    stop: Arc<AtomicBool>,
}

impl EpochTicker {
    pub fn start(engine: &Engine) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let engine = engine.weak();
        let flag = stop.clone();
        std::thread::Builder::new()
            .name("wasmflow-epoch".into())
            .spawn(move || {
                while !flag.load(Ordering::Relaxed) {
                    std::thread::sleep(EPOCH_TICK);
                    match engine.upgrade() {
                        Some(e) => e.increment_epoch(),
                        None => break,
                    }
                }
            })
            .expect("spawning the epoch thread");
        Self { stop }
    }
}

impl Drop for EpochTicker {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use wasmtime::{Instance, Module, Store};

    /// `ref.func` takes a function's code pointers from what the vendored
    /// wasmtime keeps per module and per instance (vendor/PATCHES.md):
    /// each funcref must still call the function it names, in every
    /// instance of every store, pooled or not, the first time and again.
    #[test]
    fn funcrefs_call_the_functions_they_name_in_every_instance() {
        let wat = r#"(module
            (type $t (func (result i32)))
            (table 4 funcref)
            (elem declare func $a $b $c $d)
            (func $a (result i32) i32.const 11)
            (func $b (result i32) i32.const 22)
            (func $c (result i32) i32.const 33)
            (func $d (result i32) i32.const 44)
            (func (export "fill")
              (table.set (i32.const 0) (ref.func $d))
              (table.set (i32.const 1) (ref.func $c))
              (table.set (i32.const 2) (ref.func $b))
              (table.set (i32.const 3) (ref.func $a)))
            (func (export "call") (param i32) (result i32)
              (call_indirect (type $t) (local.get 0))))"#;
        for pooling_slots in [0, 4] {
            let options = EngineOptions {
                pooling_slots,
                ..EngineOptions::default()
            };
            let engine = new_engine(&options).unwrap();
            let module = Module::new(&engine, wat).unwrap();
            for _store in 0..2 {
                let mut store = Store::new(&engine, ());
                store.set_epoch_deadline(1);
                for _instance in 0..2 {
                    let instance = Instance::new(&mut store, &module, &[]).unwrap();
                    let fill = instance
                        .get_typed_func::<(), ()>(&mut store, "fill")
                        .unwrap();
                    let call = instance
                        .get_typed_func::<i32, i32>(&mut store, "call")
                        .unwrap();
                    for _again in 0..2 {
                        fill.call(&mut store, ()).unwrap();
                        let got: Vec<i32> =
                            (0..4).map(|i| call.call(&mut store, i).unwrap()).collect();
                        assert_eq!(got, [44, 33, 22, 11], "pooling slots {pooling_slots}");
                    }
                }
            }
        }
    }
}
