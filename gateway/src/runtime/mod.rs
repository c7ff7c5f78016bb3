//! The WebAssembly runtime: one wasmtime [`Engine`] with the pooling allocator, the linker that
//! gives guests the `wasi:http/proxy` world (plus the `wasi:cli` imports that std-built guests
//! carry, and the host [`capabilities`](crate::capabilities)), compilation of components into
//! ready-to-instantiate [`FunctionImage`]s, and the per-request invocation with its limits.
//!
//! This module speaks `http` crate types only and never imports Pingora, so it can be tested and
//! benchmarked alone (see `gateway/benches/invoke.rs`).
//!
//! - [`engine`]: the engine settings (pooling, copy-on-write images, epoch interruption) and the
//!   epoch ticker thread.
//! - [`guest`]: the per-request store state: WASI contexts, the resource limiter, the CPU budget.
//! - [`invoke`]: one request, from a fresh instance to a streamed response.
//! - [`error`]: how an invocation can fail, told apart for the status mapping in `proxy`.

mod engine;
mod error;
mod guest;
mod invoke;
mod residency;

pub(crate) use residency::reclaim_artifact_pages;

use std::sync::Arc;

use anyhow::anyhow;
use wasmtime::Engine;
use wasmtime::component::{Component, Linker};
use wasmtime_wasi_http::p2::bindings::ProxyPre;

pub use crate::capabilities::Grants;
pub use crate::capabilities::config::ConfigVariables;
pub use crate::capabilities::output::{GUEST_OUTPUT_LIMIT, GuestOutput, GuestStream};

pub use self::engine::RuntimeSettings;
pub use self::error::{InvokeError, LoadError};
pub use self::guest::InvokeLimits;
pub use self::invoke::{GuestBody, GuestBodyError, GuestObserver, GuestStats, Invocation};

use self::engine::EpochTicker;
use self::guest::GuestState;

/// The wasmtime engine, its linker and the epoch ticker, shared by every function.
///
/// Cheap to share behind an [`Arc`]; all methods take `&self`.
pub struct Runtime {
    engine: Engine,
    linker: Linker<GuestState>,
    settings: RuntimeSettings,
    /// Lanes for guests that run past their first tick (see `guest::LongRunningLane`).
    lanes: Arc<tokio::sync::Semaphore>,
    _ticker: EpochTicker,
}

/// A component compiled and pre-linked against the runtime's imports: instantiating it for a
/// request takes microseconds.
#[derive(Clone)]
pub struct FunctionImage {
    pre: ProxyPre<GuestState>,
}

impl std::fmt::Debug for FunctionImage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FunctionImage").finish_non_exhaustive()
    }
}

impl Runtime {
    /// Builds the engine with the pooling allocator sized by `settings`, the linker, and starts
    /// the epoch ticker thread.
    pub fn new(settings: RuntimeSettings) -> anyhow::Result<Arc<Runtime>> {
        let engine = Engine::new(&settings.engine_config())
            .map_err(|e| anyhow!("creating the wasmtime engine: {e:#}"))?;
        let mut linker = Linker::<GuestState>::new(&engine);
        // Guests built for wasm32-wasip2 with std import `wasi:cli/*` and friends beyond the proxy
        // world; they are linked with an empty environment, no preopens and no sockets.
        wasmtime_wasi::p2::add_to_linker_async(&mut linker)
            .map_err(|e| anyhow!("linking wasi: {e:#}"))?;
        wasmtime_wasi_http::p2::add_only_http_to_linker_async(&mut linker)
            .map_err(|e| anyhow!("linking wasi:http: {e:#}"))?;
        // The capabilities with imports of their own: key-value and config variables.
        crate::capabilities::add_to_linker(&mut linker)
            .map_err(|e| anyhow!("linking the host capabilities: {e:#}"))?;
        let ticker = EpochTicker::start(engine.clone(), settings.epoch_tick);
        Ok(Arc::new(Runtime {
            engine,
            linker,
            lanes: Arc::new(tokio::sync::Semaphore::new(
                settings.long_running_lanes.max(1),
            )),
            settings,
            _ticker: ticker,
        }))
    }

    /// The engine, for compiling and loading precompiled artifacts.
    pub fn engine(&self) -> &Engine {
        &self.engine
    }

    /// The settings this runtime was built with.
    pub fn settings(&self) -> &RuntimeSettings {
        &self.settings
    }

    /// Checks that `bytes` is a component and compiles it to native code (the artifact that
    /// `store` caches). Takes tens to hundreds of milliseconds: never call it on the request path.
    pub fn precompile(&self, bytes: &[u8]) -> Result<Vec<u8>, LoadError> {
        LoadError::check_component_header(bytes)?;
        self.engine
            .precompile_component(bytes)
            .map_err(|e| LoadError::Compile(format!("{e:#}")))
    }

    /// Links a compiled component against the runtime's imports and checks that it exports
    /// `wasi:http/incoming-handler`.
    pub fn prepare(&self, component: &Component) -> Result<FunctionImage, LoadError> {
        let instance_pre = self
            .linker
            .instantiate_pre(component)
            .map_err(|e| LoadError::Link(format!("{e:#}")))?;
        let pre =
            ProxyPre::new(instance_pre).map_err(|e| LoadError::NotAProxy(format!("{e:#}")))?;
        Ok(FunctionImage { pre })
    }
}
