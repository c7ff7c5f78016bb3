//! The `density` scenario's parts: N tenants, each with its own host and a function deployed
//! through the admin API, then Zipf-distributed traffic across all of them.
//!
//! Tenant `i` is `d{i}`, with host `d{i}.density.test` and the function `hello` on
//! `d{i}.density.test/`. Index 0 gets the most traffic.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::AtomicU64;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use bytes::Bytes;

use crate::driver::{self, Load, Outcome, Picker, Protocol, Target};
use crate::pacing::{Bounds, Pacing};
use crate::probe::histogram_quantile;
use crate::zipf::ZipfPicker;

/// The gateway's admin API, as the operator.
#[derive(Debug, Clone)]
pub struct Admin {
    base: String,
    token: String,
    client: reqwest::Client,
}

impl Admin {
    /// The admin API at `base` (`http://127.0.0.1:8081`) with the operator `token`.
    pub fn new(base: &str, token: &str) -> Admin {
        Admin {
            base: base.trim_end_matches('/').to_owned(),
            token: token.to_owned(),
            client: reqwest::Client::new(),
        }
    }

    async fn check(response: reqwest::Response, what: &str) -> anyhow::Result<()> {
        let status = response.status();
        if status.is_success() {
            return Ok(());
        }
        let body = response.text().await.unwrap_or_default();
        anyhow::bail!("{what}: {status}: {body}")
    }

    /// Creates or updates tenant `name` routing `hosts`.
    pub async fn put_tenant(&self, name: &str, hosts: &[String]) -> anyhow::Result<()> {
        let response = self
            .client
            .put(format!("{}/v1/tenants/{name}", self.base))
            .bearer_auth(&self.token)
            .json(&serde_json::json!({ "hosts": hosts }))
            .send()
            .await
            .with_context(|| format!("reaching the admin API at {}", self.base))?;
        Self::check(response, &format!("creating tenant {name}")).await
    }

    /// Deploys `wasm` as `tenant`'s `function` on `route`.
    pub async fn deploy(
        &self,
        tenant: &str,
        function: &str,
        route: &str,
        wasm: Bytes,
    ) -> anyhow::Result<()> {
        let response = self
            .client
            .put(format!(
                "{}/v1/tenants/{tenant}/functions/{function}",
                self.base
            ))
            .query(&[("route", route)])
            .bearer_auth(&self.token)
            .header(http::header::CONTENT_TYPE, "application/wasm")
            .body(wasm)
            .send()
            .await
            .with_context(|| format!("reaching the admin API at {}", self.base))?;
        Self::check(response, &format!("deploying {tenant}/{function}")).await
    }

    /// The Prometheus exposition on `/metrics`.
    pub async fn metrics(&self) -> anyhow::Result<String> {
        Ok(self
            .client
            .get(format!("{}/metrics", self.base))
            .send()
            .await?
            .error_for_status()?
            .text()
            .await?)
    }
}

/// The host of density tenant `i`.
pub fn tenant_host(i: usize) -> String {
    format!("d{i}.density.test")
}

/// Creates tenants `d0` to `d{n-1}` and deploys `wasm` to each; returns how long it took.
pub async fn deploy_tenants(admin: &Admin, n: usize, wasm: &Bytes) -> anyhow::Result<Duration> {
    let started = Instant::now();
    for i in 0..n {
        let host = tenant_host(i);
        let name = format!("d{i}");
        admin.put_tenant(&name, std::slice::from_ref(&host)).await?;
        admin
            .deploy(&name, "hello", &format!("{host}/"), wasm.clone())
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
