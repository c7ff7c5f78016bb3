//! The state a guest's [`wasmtime::Store`] carries for one request: the WASI and `wasi:http`
//! contexts, the memory limiter, the CPU budget, and the host [`capabilities`](crate::capabilities)'
//! states.
//!
//! Guests get an empty environment, no arguments, no preopened directories and no sockets:
//! only what the `wasi:http/proxy` world promises, plus clocks and random numbers, and the
//! capabilities their function was granted. Their stdout and stderr go to the request's output
//! capture; outbound HTTP goes through the tenant's policy.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use wasmtime::ResourceLimiter;
use wasmtime::component::ResourceTable;
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};
use wasmtime_wasi_http::{WasiHttpCtx, WasiHttpCtxView, WasiHttpView};

use crate::capabilities::output::GuestStream;
use crate::capabilities::{HostState, States};

/// The limits one invocation runs under, taken from its tenant's configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InvokeLimits {
    /// The most linear memory the instance may grow to, in bytes.
    pub memory: u64,
    /// CPU time the guest may spend, measured in epoch ticks of the runtime.
    pub cpu_time: Duration,
    /// The most response-body bytes the guest may send.
    pub response_body: u64,
}

impl Default for InvokeLimits {
    /// The defaults of `limits:` and `response_body` in the configuration.
    fn default() -> Self {
        let limits = crate::config::Limits::default();
        InvokeLimits {
            memory: limits.memory.0,
            cpu_time: limits.cpu_time,
            response_body: crate::config::DEFAULT_RESPONSE_BODY,
        }
    }
}

/// The most resources (streams, pollables, fields, buckets...) one guest may hold at once;
/// past it the call that would make one more fails. Wasmtime's default is 1,000,000.
pub const MAX_RESOURCES: usize = 10_000;

/// The most bytes one `fields` resource (a set of headers the guest builds) may hold, in
/// memory: wasmtime's default of 128 KiB counts the map's own overhead, so this allows about
/// 32 KiB of headers on the wire, as much as Pingora accepts from clients.
pub const MAX_FIELDS_SIZE: usize = 64 << 10;

/// The most random bytes one `get-random-bytes` call may ask for (wasmtime's default: 64 MiB).
pub const MAX_RANDOM_SIZE: u64 = 1 << 20;

/// What stopped a guest, when a limit did. Read after the guest's call returns an error.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) enum LimitHit {
    /// No limit was crossed: any error is the guest's own.
    #[default]
    None,
    /// The guest tried to grow its memory past its limit.
    Memory,
    /// The guest ran out of CPU budget.
    Cpu,
}

/// Per-request store data.
pub(crate) struct GuestState {
    pub(crate) table: ResourceTable,
    wasi: WasiCtx,
    http: WasiHttpCtx,
    pub(crate) memory: MemoryLimiter,
    pub(crate) cpu: CpuBudget,
    lane: LongRunningLane,
    /// What the guest may use beyond its memory.
    capabilities: States,
}

impl GuestState {
    pub(crate) fn new(
        limits: &InvokeLimits,
        epoch_tick: Duration,
        lanes: &Arc<Semaphore>,
        capabilities: States,
    ) -> GuestState {
        let mut table = ResourceTable::new();
        table.set_max_capacity(MAX_RESOURCES);
        let mut http = WasiHttpCtx::new();
        http.set_field_size_limit(MAX_FIELDS_SIZE);
        GuestState {
            table,
            wasi: WasiCtx::builder()
                .stdout(capabilities.output.stream(GuestStream::Stdout))
                .stderr(capabilities.output.stream(GuestStream::Stderr))
                .max_random_size(MAX_RANDOM_SIZE)
                .build(),
            http,
            memory: MemoryLimiter::new(limits.memory),
            cpu: CpuBudget::new(limits.cpu_time, epoch_tick),
            lane: LongRunningLane {
                lanes: lanes.clone(),
                held: Arc::new(Mutex::new(None)),
            },
            capabilities,
        }
    }

    /// Called at every epoch deadline: charges the tick and yields the worker thread. From its
    /// second tick on (the first may be a short request that straddled a tick), the guest is
    /// long-running and waits for a long-running lane before going on.
    pub(crate) fn on_tick(&mut self) -> wasmtime::Result<wasmtime::UpdateDeadline> {
        self.cpu.charge()?;
        if self.cpu.used_ticks < 2 {
            return Ok(wasmtime::UpdateDeadline::Yield(1));
        }
        // A long-running guest also hands its core to the operating system at every tick: when
        // the proxy's threads share cores (pinned, or more threads than cores), a worker that
        // has a short request to serve gets the core now rather than at the end of the
        // kernel's time slice. One syscall a millisecond, for long-running guests only.
        std::thread::yield_now();
        Ok(wasmtime::UpdateDeadline::YieldCustom(
            1,
            Box::pin(self.lane.take_turn()),
        ))
    }

    /// A handle that gives the guest's lane back while it waits.
    pub(crate) fn lane_release(&self) -> LaneRelease {
        LaneRelease(self.lane.held.clone())
    }

    /// Which limit, if any, stopped the guest.
    pub(crate) fn limit_hit(&self) -> LimitHit {
        if self.memory.exceeded {
            LimitHit::Memory
        } else if self.cpu.exceeded {
            LimitHit::Cpu
        } else {
            LimitHit::None
        }
    }
}

impl HostState for GuestState {
    fn capabilities(&mut self) -> (&mut ResourceTable, &mut States) {
        (&mut self.table, &mut self.capabilities)
    }
}

impl WasiView for GuestState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

impl WasiHttpView for GuestState {
    fn http(&mut self) -> WasiHttpCtxView<'_> {
        WasiHttpCtxView {
            ctx: &mut self.http,
            table: &mut self.table,
            hooks: &mut self.capabilities.outbound,
        }
    }
}

/// Caps what one instance holds, all of its linear memories and tables together (a component
/// may have several core instances, each with its own), and remembers the peak and whether
/// the cap was hit (a failed grow traps the guest; the trap itself does not say why).
#[derive(Debug)]
pub(crate) struct MemoryLimiter {
    limit: usize,
    /// Bytes of every memory and table of the instance now.
    used: usize,
    pub(crate) peak: usize,
    pub(crate) exceeded: bool,
}

/// Table elements any one table may grow to.
const MAX_TABLE_ELEMENTS: usize = 1_000_000;

/// What one table element is counted as: a pointer-sized reference.
const TABLE_ELEMENT_BYTES: usize = std::mem::size_of::<usize>();

impl MemoryLimiter {
    fn new(limit: u64) -> MemoryLimiter {
        MemoryLimiter {
            limit: usize::try_from(limit).unwrap_or(usize::MAX),
            used: 0,
            peak: 0,
            exceeded: false,
        }
    }

    /// Grows the instance's total by `from` → `to` bytes of one memory or table, unless that
    /// would pass the limit.
    fn grow(&mut self, from: usize, to: usize) -> bool {
        let next = self.used.saturating_add(to.saturating_sub(from));
        if next > self.limit {
            self.exceeded = true;
            return false;
        }
        self.used = next;
        self.peak = self.peak.max(next);
        true
    }
}

impl ResourceLimiter for MemoryLimiter {
    fn memory_growing(
        &mut self,
        current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        if !self.grow(current, desired) {
            wasmtime::bail!(
                "memory limit exceeded: the instance would hold {} bytes, its limit is {}",
                self.used.saturating_add(desired.saturating_sub(current)),
                self.limit
            );
        }
        Ok(true)
    }

    fn table_growing(
        &mut self,
        current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        if desired > MAX_TABLE_ELEMENTS {
            return Ok(false);
        }
        Ok(self.grow(
            current.saturating_mul(TABLE_ELEMENT_BYTES),
            desired.saturating_mul(TABLE_ELEMENT_BYTES),
        ))
    }
}

/// Counts the epoch ticks a guest runs through. Each tick the guest is interrupted, yields to
/// the executor (so it never holds a worker thread other tenants need) and is charged one tick;
/// past its budget it is stopped.
#[derive(Debug)]
pub(crate) struct CpuBudget {
    budget_ticks: u64,
    used_ticks: u64,
    pub(crate) exceeded: bool,
}

impl CpuBudget {
    fn new(cpu_time: Duration, tick: Duration) -> CpuBudget {
        let tick = tick.as_nanos().max(1);
        let budget_ticks = cpu_time.as_nanos().div_ceil(tick).max(1);
        CpuBudget {
            budget_ticks: u64::try_from(budget_ticks).unwrap_or(u64::MAX),
            used_ticks: 0,
            exceeded: false,
        }
    }

    /// Charges one tick; an error stops the guest once the budget is spent.
    fn charge(&mut self) -> wasmtime::Result<()> {
        self.used_ticks += 1;
        if self.used_ticks > self.budget_ticks {
            self.exceeded = true;
            wasmtime::bail!("cpu time limit exceeded");
        }
        Ok(())
    }
}

/// A guest's place among the long-running guests. A guest that reaches its first epoch tick
/// has run for a while; from then on it runs only while it holds one of the runtime's few
/// lanes, handing it back at every tick. Short requests never touch the lanes, and the workers
/// that no lane occupies stay free for them.
#[derive(Debug)]
struct LongRunningLane {
    lanes: Arc<Semaphore>,
    held: Arc<Mutex<Option<OwnedSemaphorePermit>>>,
}

/// A handle on a guest's lane, to give it back while the guest waits.
#[derive(Debug, Clone)]
pub(crate) struct LaneRelease(Arc<Mutex<Option<OwnedSemaphorePermit>>>);

impl LaneRelease {
    /// Gives the lane back, if the guest holds one: it is waiting in a host call (a clock, an
    /// outbound fetch, a key-value call), not computing. It queues for a lane again at its
    /// next tick.
    pub(crate) fn release(&self) {
        if let Ok(mut held) = self.0.try_lock() {
            held.take();
        }
    }
}

impl LongRunningLane {
    /// Gives the lane back (if held), lets other tasks run, and queues for a lane again.
    fn take_turn(&self) -> impl Future<Output = ()> + Send + 'static {
        let held = self.held.clone();
        let lanes = self.lanes.clone();
        held.lock().expect("not poisoned").take();
        async move {
            tokio::task::yield_now().await;
            if let Ok(permit) = lanes.acquire_owned().await {
                *held.lock().expect("not poisoned") = Some(permit);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_limit_covers_every_memory_and_table_of_an_instance() {
        let mut limiter = MemoryLimiter::new(10 << 20);
        // Two memories of 4 MiB each fit; a third does not, though each alone would.
        assert!(limiter.memory_growing(0, 4 << 20, None).unwrap());
        assert!(limiter.memory_growing(0, 4 << 20, None).unwrap());
        assert!(limiter.memory_growing(0, 4 << 20, None).is_err());
        assert!(limiter.exceeded);
        // Growing one of them counts only the growth.
        let mut limiter = MemoryLimiter::new(10 << 20);
        assert!(limiter.memory_growing(0, 4 << 20, None).unwrap());
        assert!(limiter.memory_growing(4 << 20, 8 << 20, None).unwrap());
        assert_eq!(limiter.peak, 8 << 20);
        // Tables count too.
        assert!(
            !limiter
                .table_growing(0, (3 << 20) / TABLE_ELEMENT_BYTES, None)
                .unwrap()
        );
        assert!(limiter.table_growing(0, 1000, None).unwrap());
        assert!(
            !limiter
                .table_growing(0, MAX_TABLE_ELEMENTS + 1, None)
                .unwrap()
        );
    }
}
