//! Engine settings and the epoch ticker.
//!
//! Every function shares one [`wasmtime::Engine`] configured for serving many short-lived
//! instances: the pooling allocator with copy-on-write memory images (instantiation is a few
//! microseconds), async support so guests yield instead of blocking worker threads, and epoch
//! interruption so CPU budgets are enforced by the engine. The settings that made the hot path
//! fast are measured in `docs/benchmarks.md`.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;

use wasmtime::{Config, Enabled, Engine, InstanceAllocationStrategy, PoolingAllocationConfig};

/// How the engine and its instance pool are sized.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RuntimeSettings {
    /// The most instances alive at once, across all tenants. Default 1000.
    pub total_instances: u32,
    /// The largest linear memory any instance may have, in bytes. Default 256 MiB.
    pub max_memory: u64,
    /// How often the epoch advances: the granularity of CPU budgets, and the longest a guest
    /// runs before it yields its worker thread to other requests. Default 1 ms.
    pub epoch_tick: Duration,
    /// How many guests may run past their first tick at once. Long-running guests take turns
    /// on these lanes, so that with one lane fewer than worker threads a worker is always free
    /// for short requests, however many guests spin. Default 1.
    pub long_running_lanes: usize,
}

impl Default for RuntimeSettings {
    fn default() -> Self {
        RuntimeSettings {
            total_instances: 1000,
            max_memory: 256 << 20,
            epoch_tick: Duration::from_millis(1),
            long_running_lanes: 1,
        }
    }
}

/// Bytes of each slot's linear memory kept mapped between instances: resetting them with a
/// page-map scan is cheaper than `madvise` plus page faults on the next request.
const MEMORY_KEEP_RESIDENT: usize = 2 << 20;
/// Bytes of each slot's tables kept resident, for the same reason.
const TABLE_KEEP_RESIDENT: usize = 64 << 10;
/// Core instances a std-built Rust component carries (the main module plus shims), with room.
const CORE_INSTANCES_PER_COMPONENT: u32 = 8;

impl RuntimeSettings {
    pub(crate) fn engine_config(&self) -> Config {
        let total = self.total_instances.max(1);
        let mut pool = PoolingAllocationConfig::new();
        pool.total_component_instances(total)
            .total_core_instances(total.saturating_mul(CORE_INSTANCES_PER_COMPONENT))
            .max_core_instances_per_component(CORE_INSTANCES_PER_COMPONENT * 2)
            .total_memories(total.saturating_mul(2))
            .total_tables(total.saturating_mul(2))
            .total_stacks(total)
            .max_memory_size(usize::try_from(self.max_memory).unwrap_or(usize::MAX))
            .linear_memory_keep_resident(MEMORY_KEEP_RESIDENT)
            .table_keep_resident(TABLE_KEEP_RESIDENT)
            // Falls back to `madvise` on kernels without PAGEMAP_SCAN.
            .pagemap_scan(Enabled::Auto);

        let mut config = Config::new();
        config
            .epoch_interruption(true)
            .memory_init_cow(true)
            .parallel_compilation(true)
            .allocation_strategy(InstanceAllocationStrategy::Pooling(pool));
        config
    }
}

/// A thread that advances the engine's epoch every tick; stopped and joined on drop.
pub(crate) struct EpochTicker {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl EpochTicker {
    pub(crate) fn start(engine: Engine, tick: Duration) -> EpochTicker {
        let stop = Arc::new(AtomicBool::new(false));
        let thread = std::thread::Builder::new()
            .name("atoll-epoch".into())
            .spawn({
                let stop = stop.clone();
                move || {
                    while !stop.load(Ordering::Relaxed) {
                        std::thread::sleep(tick);
                        engine.increment_epoch();
                    }
                }
            })
            .expect("spawning the epoch ticker thread");
        EpochTicker {
            stop,
            thread: Some(thread),
        }
    }
}

impl Drop for EpochTicker {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}
