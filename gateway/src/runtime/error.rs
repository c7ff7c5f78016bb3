//! How loading a component and invoking a function can fail.
//!
//! The variants are told apart because callers answer them differently: `proxy` maps each
//! [`InvokeError`] to its status and error code in one place, `admin` maps each [`LoadError`] to
//! a 400 whose message says what is wrong with the upload.

/// Why a component could not be turned into a function.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// The bytes do not start with the WebAssembly magic number.
    #[error("not a WebAssembly binary: it does not start with `\\0asm`")]
    NotWasm,
    /// A core module where a component was expected.
    #[error(
        "a core WebAssembly module, not a component: build for `wasm32-wasip2` or wrap it with `wasm-tools component new`"
    )]
    NotAComponent,
    /// The component failed validation or compilation.
    #[error("invalid component: {0}")]
    Compile(String),
    /// The component imports something the gateway does not provide.
    #[error("the component imports something Atoll does not provide: {0}")]
    Link(String),
    /// The component does not export `wasi:http/incoming-handler`.
    #[error(
        "the component does not export `wasi:http/incoming-handler` (the wasi:http/proxy world): {0}"
    )]
    NotAProxy(String),
}

/// The first eight bytes of a component: magic, then the component-model version and layer.
const COMPONENT_PREAMBLE: [u8; 8] = [0x00, 0x61, 0x73, 0x6d, 0x0d, 0x00, 0x01, 0x00];

impl LoadError {
    /// Tells a component from a core module or from something that is not Wasm at all, so the
    /// error says which, before the compiler gives a less direct message.
    pub(crate) fn check_component_header(bytes: &[u8]) -> Result<(), LoadError> {
        if bytes.len() < 8 || bytes[..4] != COMPONENT_PREAMBLE[..4] {
            return Err(LoadError::NotWasm);
        }
        if bytes[4..8] == [0x01, 0x00, 0x00, 0x00] {
            return Err(LoadError::NotAComponent);
        }
        Ok(())
    }
}

/// Why an invocation produced no response.
#[derive(Debug, thiserror::Error, Clone, PartialEq, Eq)]
pub enum InvokeError {
    /// The guest trapped or panicked.
    #[error("the function trapped: {0}")]
    Trap(String),
    /// The guest used up its CPU budget.
    #[error("the function ran past its cpu_time limit")]
    CpuLimit,
    /// The guest tried to grow its memory past its limit.
    #[error("the function grew past its memory limit")]
    MemoryLimit,
    /// The request ran past its wall-clock timeout (set by the caller: see
    /// [`Runtime::invoke`](super::Runtime::invoke)).
    #[error("the function did not answer within its timeout")]
    Timeout,
    /// The guest returned without setting a response.
    #[error("the function returned without setting a response")]
    NoResponse,
    /// The guest answered with a `wasi:http` error code instead of a response.
    #[error("the function answered with an error: {0}")]
    GuestError(String),
    /// Every instance slot of the pool is in use.
    #[error("no free instance slot in the pool")]
    PoolExhausted,
    /// Instantiation failed for another reason (for example a trap in a start function).
    #[error("instantiating the function failed: {0}")]
    Instantiate(String),
}
