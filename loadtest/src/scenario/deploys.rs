//! `scenario deploy-under-load`: what deploying costs the traffic. Tenant `live` serves `hello`,
//! loaded open-loop at a fixed rate (latency counted from each request's due time), first alone,
//! then while its own function is redeployed again and again, each time a new version (the same
//! code with its own custom section, so every deploy compiles). Every request must be answered
//! 200 across the switches; reports the traffic's latencies in both phases and how long each
//! deploy took, upload to answer.

use std::time::{Duration, Instant};

use serde::Serialize;

use super::{Common, runtime, variant};
use crate::admin::Admin;
use crate::driver::{self, Load};
use crate::latency::{Latencies, LatencySummary};
use crate::pacing::{Pacing, parse_duration};
use crate::plot;
use crate::report::{RunReport, markdown_table};
use crate::spawn::SpawnedGateway;

/// `scenario deploy-under-load`'s options.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The binary, the component, pinning and the output folder.
    #[command(flatten)]
    pub common: Common,
    /// The traffic's open-loop rate, requests per second.
    #[arg(long, default_value_t = 1000.0)]
    pub rate: f64,
    /// Connections the traffic may use.
    #[arg(long, default_value_t = 16)]
    pub connections: usize,
    /// The most deploys during the second phase (it also ends with --duration).
    #[arg(long, default_value_t = 50)]
    pub deploys: u64,
    /// Each phase's length: `500ms`, `10s`, `2m`.
    #[arg(long, default_value = "10s", value_parser = parse_duration)]
    pub duration: Duration,
    /// The gateway's proxy threads.
    #[arg(long, default_value_t = 1)]
    pub threads: usize,
}

/// What `deploy-under-load.json` holds.
#[derive(Debug, Serialize)]
struct DeployReport {
    traffic_alone: RunReport,
    traffic_during_deploys: RunReport,
    deploys: u64,
    /// Upload to answer, each deploy compiling a new version.
    deploy_latency: LatencySummary,
}

/// Runs the scenario.
pub fn run(args: Args) -> anyhow::Result<()> {
    anyhow::ensure!(
        args.rate.is_finite() && args.rate > 0.0,
        "--rate must be above 0"
    );
    anyhow::ensure!(args.deploys > 0, "--deploys must be at least 1");
    let (wasm, out) = args.common.prepare()?;
    let runtime = runtime()?;
    let gateway =
        SpawnedGateway::start(&args.common.atoll, args.threads, args.common.server_cpu())?;
    let admin = Admin::new(&gateway.admin, &gateway.token);
    runtime.block_on(async {
        admin.put_tenant("live", &["live.test".to_owned()]).await?;
        admin
            .deploy("live", "hello", "live.test/", wasm.clone().into())
            .await
    })?;

    let pacing = Pacing::Open { rate: args.rate };
    let traffic = Load::one_host(
        gateway.proxy,
        "live.test",
        args.connections,
        pacing,
        args.duration,
    );
    eprintln!("atoll-loadtest: traffic alone, {:?}", args.duration);
    let alone = runtime.block_on(super::drive_with_progress(traffic.clone()))?;
    eprintln!(
        "atoll-loadtest: traffic while redeploying, {:?} or {} deploys",
        args.duration, args.deploys
    );
    let (during, deploy_latencies) = runtime.block_on(async {
        let deploying = async {
            let started = Instant::now();
            let mut latencies = Latencies::new();
            for n in 1..=args.deploys {
                if started.elapsed() >= args.duration {
                    break;
                }
                let sent = Instant::now();
                admin
                    .deploy("live", "hello", "live.test/", variant(&wasm, n).into())
                    .await?;
                latencies.record(sent.elapsed());
            }
            anyhow::Ok(latencies)
        };
        tokio::join!(driver::run(traffic.clone()), deploying)
    });
    let (during, deploy_latencies) = (during?, deploy_latencies?);

    let report = DeployReport {
        traffic_alone: RunReport::new("traffic alone", pacing, args.connections, &alone),
        traffic_during_deploys: RunReport::new(
            "traffic during deploys",
            pacing,
            args.connections,
            &during,
        ),
        deploys: deploy_latencies.count(),
        deploy_latency: deploy_latencies.summary(),
    };
    print!(
        "{}",
        markdown_table(&[
            report.traffic_alone.clone(),
            report.traffic_during_deploys.clone()
        ])
    );
    let ms = |us: u64| us as f64 / 1000.0;
    println!(
        "{} deploys, upload to answer: p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms; traffic errors during deploys: {}",
        report.deploys,
        ms(report.deploy_latency.p50_us),
        ms(report.deploy_latency.p99_us),
        ms(report.deploy_latency.max_us),
        report.traffic_during_deploys.errors,
    );
    out.write(
        "deploy-under-load.json",
        &serde_json::to_string_pretty(&report)?,
    )?;
    out.write(
        "deploy-under-load-latency.svg",
        &plot::latency_chart(&[
            (
                "traffic alone".to_owned(),
                alone.latencies.distribution(100),
            ),
            (
                "traffic during deploys".to_owned(),
                during.latencies.distribution(100),
            ),
        ])?,
    )?;
    Ok(())
}
