//! Config variables through `wasi:config/store`: string values set per function at deploy
//! time (`functions.<f>.config`, or `PUT .../config`), read-only for the guest. Values may be
//! secrets: they are never logged or shown by the admin API.

use std::sync::Arc;

use wasmtime::component::Linker;
use wasmtime_wasi_config::WasiConfig;

use super::{Capability, HostState};

/// A function's config variables.
pub use wasmtime_wasi_config::WasiConfigVariables as ConfigVariables;

/// Config variables.
pub struct Config;

impl Capability for Config {
    /// The function's variables.
    type Grant = Arc<ConfigVariables>;
    type State = Arc<ConfigVariables>;

    fn prepare(grant: &Self::Grant) -> Self::State {
        grant.clone()
    }
}

/// Adds `wasi:config/store` to `linker`.
pub(super) fn add_to_linker<T: HostState>(linker: &mut Linker<T>) -> wasmtime::Result<()> {
    wasmtime_wasi_config::add_to_linker(linker, |state: &mut T| {
        WasiConfig::from(&*state.capabilities().1.config)
    })
}
