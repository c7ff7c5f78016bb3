//! `scenario density`: for each tenant count N, a fresh gateway, N tenants each with its own
//! host and `hello` deployed through the admin API, then Zipf-distributed traffic across all of
//! them. Reports requests/s, latencies, the gateway's RSS, RSS growth per idle deployed
//! function and the instantiation p99; writes `density.json`, `density.svg` (requests/s and p99
//! by tenant count) and `latency.svg`.

use std::sync::Arc;
use std::sync::atomic::AtomicU64;
use std::time::Duration;

use super::{Common, Progress, runtime};
use crate::admin::Admin;
use crate::density::{self, Components, Traffic};
use crate::pacing::{Bounds, Pacing, parse_duration};
use crate::plot::{self, DensityPoint};
use crate::probe;
use crate::report::{RunReport, markdown_table};
use crate::spawn::SpawnedGateway;

/// `scenario density`'s options.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The binary, the component, pinning and the output folder.
    #[command(flatten)]
    pub common: Common,
    /// Tenant counts, comma-separated.
    #[arg(long, value_delimiter = ',', default_value = "10,100,1000,10000")]
    pub tenants: Vec<usize>,
    /// Connections.
    #[arg(long, default_value_t = 32)]
    pub connections: usize,
    /// Load per tenant count: `500ms`, `10s`, `2m`.
    #[arg(long, default_value = "10s", value_parser = parse_duration)]
    pub duration: Duration,
    /// Whether the tenants deploy the same component, or each its own build of it (a custom
    /// section apart: the same code under its own hash, compiled and loaded separately).
    #[arg(long, value_enum, default_value_t = Components::Distinct)]
    pub components: Components,
}

/// One tenant count's results, as `density.json` holds them.
#[derive(Debug, Clone, serde::Serialize)]
pub struct DensityResult {
    /// Tenants deployed and loaded.
    pub tenants: usize,
    /// Whether they share one component or each has its own.
    pub components: Components,
    /// Seconds to create every tenant and deploy its function.
    pub deploy_seconds: f64,
    /// The gateway's RSS growth from start to all deployed, over the tenant count, in KiB.
    pub rss_growth_per_function_kib: f64,
    /// That growth by kind (anonymous, file, shared memory), in bytes, over all tenants.
    pub rss_growth: probe::Resident,
    /// p99 of `atoll_instantiation_duration_seconds` after the load, in microseconds.
    pub instantiation_p99_us: Option<f64>,
    /// The load's results.
    pub run: RunReport,
}

/// Runs the scenario.
pub fn run(args: Args) -> anyhow::Result<()> {
    anyhow::ensure!(
        args.tenants.iter().all(|&n| n > 0),
        "tenant counts must be at least 1"
    );
    let (wasm, out) = args.common.prepare()?;
    let wasm = bytes::Bytes::from(wasm);
    let runtime = runtime()?;
    let mut results = Vec::new();
    let mut distributions = Vec::new();
    for &n in &args.tenants {
        let gateway = SpawnedGateway::start(&args.common.atoll, 1, args.common.server_cpu())?;
        let admin = Admin::new(&gateway.admin, &gateway.token);
        let before = probe::resident(gateway.pid())?;
        let deployed =
            runtime.block_on(density::deploy_tenants(&admin, n, &wasm, args.components))?;
        let growth = probe::resident(gateway.pid())?.growth_since(&before);
        let per_function = growth.total as f64 / n as f64 / 1024.0;
        let kib = |bytes: u64| bytes as f64 / n as f64 / 1024.0;
        eprintln!(
            "atoll-loadtest: n={n}: deployed in {:.1} s, RSS growth per idle deployed function \
             {per_function:.1} KiB (anonymous {:.1}, file {:.1}, shmem {:.1})",
            deployed.as_secs_f64(),
            kib(growth.anonymous),
            kib(growth.file),
            kib(growth.shmem),
        );
        let answered = Arc::new(AtomicU64::new(0));
        let traffic = Traffic {
            proxy: gateway.proxy,
            tenants: n,
            connections: args.connections,
            pacing: Pacing::Closed,
            bounds: Bounds {
                duration: args.duration,
                max_requests: u64::MAX,
            },
            answered: answered.clone(),
        };
        let progress = Progress::show(args.duration, answered);
        let density_run = runtime.block_on(density::drive(&admin, traffic))?;
        drop(progress);
        let mut report = RunReport::new(
            format!("density n={n}"),
            Pacing::Closed,
            args.connections,
            &density_run.outcome,
        );
        report.rss_bytes = Some(probe::rss_bytes(gateway.pid())?);
        eprintln!(
            "atoll-loadtest: n={n}: instantiation p99 {}",
            density_run
                .instantiation_p99
                .map_or_else(|| "n/a".to_owned(), |s| format!("{:.1} µs", s * 1e6))
        );
        distributions.push((
            report.name.clone(),
            density_run.outcome.latencies.distribution(100),
        ));
        results.push(DensityResult {
            tenants: n,
            components: args.components,
            deploy_seconds: deployed.as_secs_f64(),
            rss_growth_per_function_kib: per_function,
            rss_growth: growth,
            instantiation_p99_us: density_run.instantiation_p99.map(|s| s * 1e6),
            run: report,
        });
    }
    let reports: Vec<RunReport> = results.iter().map(|r| r.run.clone()).collect();
    print!("{}", markdown_table(&reports));
    let points: Vec<DensityPoint> = results
        .iter()
        .map(|r| DensityPoint {
            tenants: r.tenants as u64,
            requests_per_second: r.run.requests_per_second,
            p99_ms: r.run.latency.p99_us as f64 / 1000.0,
        })
        .collect();
    out.write("density.json", &serde_json::to_string_pretty(&results)?)?;
    out.write("density.svg", &plot::density_chart(&points)?)?;
    out.write("latency.svg", &plot::latency_chart(&distributions)?)?;
    Ok(())
}
