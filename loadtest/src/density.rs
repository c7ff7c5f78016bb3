//! The `density` scenario's parts: N tenants, each with its own host and a function deployed
//! through the admin API, then Zipf-distributed traffic across all of them.
//!
//! Tenant `i` is `d{i}`, with host `d{i}.density.test` and the function `hello` on
//! `d{i}.density.test/`. Index 0 gets the most traffic.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::AtomicU64;
use std::time::{Duration, Instant};

use bytes::Bytes;

use crate::admin::Admin;
use crate::driver::{self, Load, Outcome, Picker, Protocol, Target};
use crate::pacing::{Bounds, Pacing};
use crate::probe::histogram_quantile;
use crate::zipf::ZipfPicker;

/// The host of density tenant `i`.
pub fn tenant_host(i: usize) -> String {
    format!("d{i}.density.test")
}

/// What the density tenants deploy.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Components {
    /// Every tenant the same bytes, as when many tenants deploy one template.
    Shared,
    /// Each tenant its own build (the same code with its own custom section, so its own
    /// hash): every deploy compiles, and nothing can be shared between tenants.
    Distinct,
}

/// Creates tenants `d0` to `d{n-1}` and deploys `wasm` (or a variant of it per tenant) to
/// each; returns how long it took.
pub async fn deploy_tenants(
    admin: &Admin,
    n: usize,
    wasm: &Bytes,
    components: Components,
) -> anyhow::Result<Duration> {
    let started = Instant::now();
    for i in 0..n {
        let host = tenant_host(i);
        let name = format!("d{i}");
        admin.put_tenant(&name, std::slice::from_ref(&host)).await?;
        let bytes = match components {
            Components::Shared => wasm.clone(),
            Components::Distinct => crate::scenario::variant(wasm, i as u64).into(),
        };
        admin
            .deploy(&name, "hello", &format!("{host}/"), bytes)
            .await?;
    }
    Ok(started.elapsed())
}

/// What a density run measured.
#[derive(Debug, Clone)]
pub struct DensityRun {
    /// The traffic's answers and latencies.
    pub outcome: Outcome,
    /// p99 of `atoll_instantiation_duration_seconds` over every tenant after the run, in
    /// seconds; `None` when the gateway recorded none.
    pub instantiation_p99: Option<f64>,
}

/// How a density run's traffic goes.
#[derive(Debug, Clone)]
pub struct Traffic {
    /// The gateway's proxy listener.
    pub proxy: SocketAddr,
    /// Tenants `d0..d{tenants-1}` share it.
    pub tenants: usize,
    /// Connections.
    pub connections: usize,
    /// Closed or open loop.
    pub pacing: Pacing,
    /// Where it stops.
    pub bounds: Bounds,
    /// Counts answers as they arrive.
    pub answered: Arc<AtomicU64>,
}

/// Zipf traffic (exponent 1) across the tenants.
pub async fn drive(admin: &Admin, traffic: Traffic) -> anyhow::Result<DensityRun> {
    let Traffic {
        proxy,
        tenants: n,
        connections,
        pacing,
        bounds,
        answered,
    } = traffic;
    let targets = (0..n)
        .map(|i| Target {
            host: tenant_host(i),
            path: "/".to_owned(),
        })
        .collect();
    let outcome = driver::run(Load {
        addr: proxy,
        targets: Arc::new(targets),
        picker: Picker::Zipf(ZipfPicker::new(n, 1.0)),
        protocol: Protocol::Http1,
        connections,
        pacing,
        bounds,
        answered,
    })
    .await?;
    let exposition = admin.metrics().await?;
    Ok(DensityRun {
        outcome,
        instantiation_p99: histogram_quantile(
            &exposition,
            "atoll_instantiation_duration_seconds",
            0.99,
        ),
    })
}
