//! `atoll-loadtest`: measures how many requests and tenants one Atoll node holds.
//!
//! The pieces every scenario shares, each testable alone:
//!
//! - [`admin`]: the gateway's admin API, as the operator;
//! - [`density`]: N tenants deployed through the admin API, and Zipf traffic across them;
//! - [`driver`]: the HTTP/1.1 and h2c load itself, over real connections;
//! - [`latency`]: latencies in an HDR histogram, summarised as p50, p90, p99, p99.9 and max;
//! - [`pacing`]: when each request should start, closed- or open-loop, and the bounds (time and
//!   count) every run stops at; open-loop latencies count from the intended start, so a
//!   stalled server cannot hide its queue (no coordinated omission);
//! - [`plot`]: SVG charts of requests/s and p99 by tenant count, and of latency distributions;
//! - [`probe`]: the gateway's RSS from `/proc` and instantiation quantiles from `/metrics`;
//! - [`zipf`]: which tenant a request goes to, Zipf-distributed like real edge traffic;
//! - [`spawn`]: an `atoll serve` the load tester starts itself, on ephemeral ports;
//! - [`peers`]: nginx and `wasmtime serve`, started the same way, to compare with;
//! - [`scenario`]: the standard scenarios, `hello`, `density`, `noisy-neighbour` and
//!   `deploy-under-load`;
//! - [`report`]: a run's results as JSON and as a Markdown table.

pub mod admin;
pub mod density;
pub mod driver;
pub mod latency;
pub mod pacing;
pub mod peers;
pub mod plot;
pub mod probe;
pub mod report;
pub mod scenario;
pub mod spawn;
pub mod zipf;
