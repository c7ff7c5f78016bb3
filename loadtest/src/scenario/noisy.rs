//! `scenario noisy-neighbour`: how much a tenant feels its neighbour. Tenant `victim` serves
//! `hello`, loaded open-loop at a fixed rate (latency counted from each request's due time)
//! alone, then again next to the neighbour (`--neighbour`):
//!
//! - `spin` (the default): tenant `noisy` serves `spin`, which burns CPU until the gateway
//!   stops it at its `cpu_time` limit, hammered closed-loop;
//! - `slow-clients`: `--slow-clients` connections to the victim itself, with no credentials,
//!   each announcing a 100,000-byte body and sending one byte a second (reconnecting when the
//!   gateway cuts them off).
//!
//! Reports both, and the ratio of the victim's p99 with the neighbour to its p99 alone
//! (target: within 2×; every victim request answered 200).

use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context as _;
use serde::Serialize;

use super::{Common, runtime};
use crate::admin::Admin;
use crate::driver::{self, Load};
use crate::pacing::{Pacing, parse_duration};
use crate::plot;
use crate::report::{RunReport, markdown_table};
use crate::spawn::SpawnedGateway;

/// `scenario noisy-neighbour`'s options.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The binary, the component, pinning and the output folder.
    #[command(flatten)]
    pub common: Common,
    /// The neighbour's component: one that burns CPU.
    #[arg(long, default_value = "tenants/target/wasm32-wasip2/release/spin.wasm")]
    pub noisy_wasm: PathBuf,
    /// The neighbour's `cpu_time` limit, as the admin API takes it.
    #[arg(long, default_value = "20ms")]
    pub noisy_cpu_time: String,
    /// The victim's open-loop rate, requests per second.
    #[arg(long, default_value_t = 500.0)]
    pub rate: f64,
    /// Connections the victim's requests may use.
    #[arg(long, default_value_t = 16)]
    pub connections: usize,
    /// Connections hammering the neighbour.
    #[arg(long, default_value_t = 16)]
    pub noisy_connections: usize,
    /// Each phase's length: `500ms`, `10s`, `2m`.
    #[arg(long, default_value = "10s", value_parser = parse_duration)]
    pub duration: Duration,
    /// The gateway's proxy threads (with one, nothing can keep a thread free for the victim).
    #[arg(long, default_value_t = 2)]
    pub threads: usize,
    /// What the neighbour is.
    #[arg(long, value_enum, default_value_t = Neighbour::Spin)]
    pub neighbour: Neighbour,
    /// With `--neighbour slow-clients`: how many trickling connections.
    #[arg(long, default_value_t = 70)]
    pub slow_clients: usize,
}

/// The neighbour the victim runs next to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Neighbour {
    /// Another tenant's guest burning its CPU budget, hammered closed-loop.
    Spin,
    /// Clients trickling request bodies to the victim itself, a byte a second.
    SlowClients,
}

/// What `noisy-neighbour.json` holds.
#[derive(Debug, Serialize)]
struct NoisyReport {
    victim_alone: RunReport,
    victim_with_neighbour: RunReport,
    /// The neighbour's own load, with `spin`; its errors are its CPU limit doing its job.
    neighbour: Option<RunReport>,
    /// The trickling connections, with `slow-clients`.
    slow_clients: Option<usize>,
    /// Victim p99 with the neighbour ÷ alone.
    p99_ratio: f64,
    p99_ratio_target: f64,
}

/// The most the victim's p99 may grow next to the neighbour.
const TARGET_P99_RATIO: f64 = 2.0;

/// Runs the scenario.
pub fn run(args: Args) -> anyhow::Result<()> {
    anyhow::ensure!(
        args.rate.is_finite() && args.rate > 0.0,
        "--rate must be above 0"
    );
    let spin = std::fs::read(&args.noisy_wasm)
        .with_context(|| format!("reading {}", args.noisy_wasm.display()))?;
    let (hello, out) = args.common.prepare()?;
    let runtime = runtime()?;
    let gateway =
        SpawnedGateway::start(&args.common.atoll, args.threads, args.common.server_cpu())?;
    let admin = Admin::new(&gateway.admin, &gateway.token);
    runtime.block_on(async {
        admin
            .put_tenant("victim", &["victim.test".to_owned()])
            .await?;
        admin
            .deploy("victim", "hello", "victim.test/", hello.into())
            .await?;
        admin
            .put_tenant_spec(
                "noisy",
                &serde_json::json!({
                    "hosts": ["noisy.test"],
                    "limits": {"cpu_time": args.noisy_cpu_time},
                }),
            )
            .await?;
        admin
            .deploy("noisy", "spin", "noisy.test/", spin.into())
            .await
    })?;

    let victim = Load::one_host(
        gateway.proxy,
        "victim.test",
        args.connections,
        Pacing::Open { rate: args.rate },
        args.duration,
    );
    let neighbour = Load::one_host(
        gateway.proxy,
        "noisy.test",
        args.noisy_connections,
        Pacing::Closed,
        args.duration,
    );

    eprintln!("atoll-loadtest: the victim alone, {:?}", args.duration);
    let alone = runtime.block_on(super::drive_with_progress(victim.clone()))?;
    eprintln!(
        "atoll-loadtest: the victim next to its neighbour, {:?}",
        args.duration
    );
    let (with, noisy) = runtime.block_on(async {
        match args.neighbour {
            Neighbour::Spin => {
                let (with, noisy) = tokio::join!(
                    super::drive_with_progress(victim.clone()),
                    driver::run(neighbour.clone())
                );
                Ok::<_, anyhow::Error>((with?, Some(noisy?)))
            }
            Neighbour::SlowClients => {
                let until = tokio::time::Instant::now() + args.duration;
                let trickles: Vec<_> = (0..args.slow_clients)
                    .map(|_| tokio::spawn(trickle(gateway.proxy, until)))
                    .collect();
                let with = super::drive_with_progress(victim.clone()).await?;
                for trickle in trickles {
                    let _ = trickle.await;
                }
                Ok((with, None))
            }
        }
    })?;

    let pacing = Pacing::Open { rate: args.rate };
    let report = NoisyReport {
        victim_alone: RunReport::new("victim alone", pacing, args.connections, &alone),
        victim_with_neighbour: RunReport::new(
            "victim next to the neighbour",
            pacing,
            args.connections,
            &with,
        ),
        neighbour: noisy.as_ref().map(|noisy| {
            RunReport::new(
                "neighbour (spin, at its cpu_time limit)",
                Pacing::Closed,
                args.noisy_connections,
                noisy,
            )
        }),
        slow_clients: (args.neighbour == Neighbour::SlowClients).then_some(args.slow_clients),
        p99_ratio: with.latencies.quantile_us(0.99) as f64
            / alone.latencies.quantile_us(0.99).max(1) as f64,
        p99_ratio_target: TARGET_P99_RATIO,
    };
    let mut rows = vec![
        report.victim_alone.clone(),
        report.victim_with_neighbour.clone(),
    ];
    rows.extend(report.neighbour.clone());
    print!("{}", markdown_table(&rows));
    println!(
        "victim p99 next to the neighbour ÷ alone: {:.2} (target ≤ {TARGET_P99_RATIO}: {}); victim errors: {}",
        report.p99_ratio,
        if report.p99_ratio <= TARGET_P99_RATIO {
            "met"
        } else {
            "missed"
        },
        report.victim_with_neighbour.errors,
    );
    out.write(
        "noisy-neighbour.json",
        &serde_json::to_string_pretty(&report)?,
    )?;
    out.write(
        "noisy-neighbour-latency.svg",
        &plot::latency_chart(&[
            ("victim alone".to_owned(), alone.latencies.distribution(100)),
            (
                "victim next to the neighbour".to_owned(),
                with.latencies.distribution(100),
            ),
        ])?,
    )?;
    Ok(())
}

/// One slow client after another until `until`: each announces a 100,000-byte body to the
/// victim and sends one byte a second, until the gateway answers or cuts it off.
async fn trickle(proxy: std::net::SocketAddr, until: tokio::time::Instant) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    while tokio::time::Instant::now() < until {
        let Ok(mut stream) = tokio::net::TcpStream::connect(proxy).await else {
            tokio::time::sleep(Duration::from_millis(100)).await;
            continue;
        };
        let head = "POST / HTTP/1.1\r\nhost: victim.test\r\ncontent-length: 100000\r\n\r\n";
        if stream.write_all(head.as_bytes()).await.is_err() {
            continue;
        }
        let mut buffer = [0u8; 1024];
        loop {
            tokio::select! {
                // Answered (a 504 at the tenant's timeout) or cut off: the next one.
                _ = stream.read(&mut buffer) => break,
                () = tokio::time::sleep(Duration::from_secs(1)) => {
                    if stream.write_all(b"x").await.is_err() {
                        break;
                    }
                }
                () = tokio::time::sleep_until(until) => return,
            }
        }
    }
}
