//! Atoll: a multi-tenant WebAssembly edge gateway.
//!
//! A Pingora reverse proxy maps routes to tenant functions (standard `wasi:http/proxy`
//! components) and runs each request in a fresh instance from a pre-compiled pool. The request's
//! walk through the modules, in order:
//!
//! [`proxy`] → [`routes`] (via the [`registry`] snapshot) → [`admission`] → [`runtime`] →
//! response, with
//! [`metrics`] recorded and the access line logged (through the [`log_writer`]) on the way.
//! Functions get there through the [`control`] plane (from the
//! [`config`] file or the [`admin`] API; compiled or loaded from the [`store`]'s artifact cache). [`server`] assembles it all and
//! [`admin`] serves health and metrics. See `docs/architecture.md`.

pub mod admin;
pub mod admission;
pub mod auth;
pub mod cache;
pub mod capabilities;
pub mod config;
pub mod control;
pub mod definition;
#[doc(hidden)]
pub mod fuzz_targets;
pub mod kv;
pub mod log_writer;
pub mod metrics;
pub mod origins;
pub mod outbound;
pub mod path;
pub mod proxy;
pub mod registry;
pub mod routes;
pub mod runtime;
pub mod server;
pub mod store;
pub mod tls;

pub use config::Config;
pub use server::ServerHandle;
