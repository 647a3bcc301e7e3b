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
