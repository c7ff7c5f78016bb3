//! Host capabilities: what a guest can reach beyond its own memory. Each is one module of the
//! same shape, a [`Capability`]:
//!
//! - its **grant**, what it is set up with from the tenant's and the function's settings
//!   (cheap to clone: the proxy hands the grants of the version it serves to every request);
//! - its **state** for one request, [`prepare`](Capability::prepare)d from the grant and kept
//!   in the guest's store;
//! - its imports, when it has its own, added once to the runtime's linker by
//!   [`add_to_linker`].
//!
//! | module | guest interface | grant | per-request state |
//! |---|---|---|---|
//! | [`outbound`] | `wasi:http/outgoing-handler` | the tenant's policy | its call count |
//! | [`kv`] | `wasi:keyvalue` | the tenant's namespace | the namespace |
//! | [`config`] | `wasi:config/store` | the function's variables | the variables |
//! | [`output`] | `wasi:cli/stdout`, `stderr` | nothing | a bounded capture |
//!
//! Adding one (a SQL store, a queue) means a module here and a field in [`Grants`] and
//! [`States`].

pub mod config;
pub mod kv;
pub mod outbound;
pub mod output;

use wasmtime::component::{Linker, ResourceTable};

use self::config::Config;
use self::kv::KeyValue;
use self::outbound::Outbound;
use self::output::Output;

/// One host capability.
pub trait Capability {
    /// What it is set up with when a version is loaded.
    type Grant: Clone + Send + Sync + 'static;
    /// Its state for one request, in the guest's store.
    type State: Send + 'static;

    /// The state one request starts with.
    fn prepare(grant: &Self::Grant) -> Self::State;
}

/// What a function's guests may use: every capability's grant.
#[derive(Clone, Default)]
pub struct Grants {
    /// Outbound HTTP: the tenant's policy, or none (every call denied).
    pub outbound: <Outbound as Capability>::Grant,
    /// Key-value storage: the tenant's namespace, or none (access denied).
    pub kv: <KeyValue as Capability>::Grant,
    /// Config variables: the function's.
    pub config: <Config as Capability>::Grant,
}

impl std::fmt::Debug for Grants {
    /// Never the config values: they may be secrets.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Grants")
            .field("outbound", &self.outbound.is_some())
            .field("kv", &self.kv.is_some())
            .finish_non_exhaustive()
    }
}

/// One request's capabilities, in its guest's store.
pub struct States {
    /// Outbound HTTP calls, and how many were made.
    pub outbound: <Outbound as Capability>::State,
    /// The key-value namespace.
    pub kv: <KeyValue as Capability>::State,
    /// The config variables.
    pub config: <Config as Capability>::State,
    /// The stdout and stderr capture.
    pub output: <Output as Capability>::State,
}

impl Grants {
    /// Every capability's state for one request.
    pub fn prepare(&self) -> States {
        States {
            outbound: Outbound::prepare(&self.outbound),
            kv: KeyValue::prepare(&self.kv),
            config: Config::prepare(&self.config),
            output: Output::prepare(&()),
        }
    }
}

/// A store's state that holds capabilities: its resource table and its [`States`].
pub trait HostState: Send + 'static {
    /// The resource table and the capabilities' states.
    fn capabilities(&mut self) -> (&mut ResourceTable, &mut States);
}

/// Adds the imports of the capabilities that have their own (`wasi:keyvalue`,
/// `wasi:config/store`) to `linker`. Outbound HTTP and output capture hook into the
/// `wasi:http` and WASI contexts the runtime links.
pub fn add_to_linker<T: HostState>(linker: &mut Linker<T>) -> wasmtime::Result<()> {
    kv::add_to_linker(linker, |state: &mut T| {
        let (table, states) = state.capabilities();
        kv::KvView {
            table,
            kv: states.kv.as_deref(),
        }
    })?;
    config::add_to_linker(linker)?;
    Ok(())
}
