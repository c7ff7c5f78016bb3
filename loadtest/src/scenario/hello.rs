//! `scenario hello`: one function, `hello`, through Atoll with a fresh instance per request,
//! next to its peers in the same run on the same machine: `wasmtime serve` running the same
//! component, and nginx answering the same text from its config (the ceiling). With `--pin`
//! every server runs on CPU 0 and the load tester on CPU 1, so figures are per core.
//!
//! It reports Atoll's requests/s as a ratio of each peer's, against the targets of issue 6:
//! at least 3.5× `wasmtime serve`, at least 0.32× nginx, p99 under 1.5 ms. A peer that is not
//! installed is reported as skipped, never silently left out.

use std::time::Duration;

use serde::Serialize;

use super::{Common, drive_with_progress, runtime};
use crate::admin::Admin;
use crate::driver::Load;
use crate::pacing::{Pacing, parse_duration};
use crate::peers::Peer;
use crate::plot;
use crate::probe;
use crate::report::{RunReport, markdown_table};
use crate::spawn::SpawnedGateway;

/// What `hello` answers; nginx answers the same.
const HELLO_BODY: &str = "Hello from Atoll!\n";
/// The target: Atoll's `hello` at least this many times `wasmtime serve`'s requests/s.
const TARGET_VS_WASMTIME: f64 = 3.5;
/// The target: Atoll's `hello` at least this share of nginx's requests/s.
const TARGET_VS_NGINX: f64 = 0.32;
/// The target: Atoll's p99, in milliseconds, at 32 connections.
const TARGET_P99_MS: f64 = 1.5;

/// `scenario hello`'s options.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The binary, the component, pinning and the output folder.
    #[command(flatten)]
    pub common: Common,
    /// The nginx program (a path, or a name on PATH).
    #[arg(long, default_value = "nginx")]
    pub nginx: String,
    /// The wasmtime program (a path, or a name on PATH or in ~/.cargo/bin).
    #[arg(long, default_value = "wasmtime")]
    pub wasmtime: String,
    /// Connections.
    #[arg(long, default_value_t = 32)]
    pub connections: usize,
    /// Load per server: `500ms`, `10s`, `2m`.
    #[arg(long, default_value = "10s", value_parser = parse_duration)]
    pub duration: Duration,
}

/// The servers compared.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Server {
    Atoll,
    WasmtimeServe,
    Nginx,
}

impl Server {
    fn label(self) -> &'static str {
        match self {
            Server::Atoll => "Atoll hello (fresh instance per request)",
            Server::WasmtimeServe => "wasmtime serve hello",
            Server::Nginx => "nginx static",
        }
    }
}

/// A server that could not be measured, and why.
#[derive(Debug, Clone, Serialize)]
struct Skipped {
    server: &'static str,
    why: String,
}

/// Atoll against one peer.
#[derive(Debug, Clone, Serialize)]
struct Ratio {
    peer: &'static str,
    /// Atoll's requests/s over the peer's.
    ratio: f64,
    target: f64,
    met: bool,
}

/// The whole report, as `hello.json` holds it.
#[derive(Debug, Serialize)]
struct HelloReport {
    runs: Vec<RunReport>,
    skipped: Vec<Skipped>,
    ratios: Vec<Ratio>,
    p99_target_ms: f64,
    p99_met: Option<bool>,
}

/// Runs the scenario.
pub fn run(args: Args) -> anyhow::Result<()> {
    let (wasm, out) = args.common.prepare()?;
    let runtime = runtime()?;
    let cpu = args.common.server_cpu();
    let mut runs = Vec::new();
    let mut distributions = Vec::new();
    let mut skipped = Vec::new();
    for server in [Server::Atoll, Server::WasmtimeServe, Server::Nginx] {
        let measured = match server {
            // Atoll not starting is a failure of the scenario, never a skip.
            Server::Atoll => runtime.block_on(measure_atoll(&args, &wasm, cpu))?,
            Server::WasmtimeServe | Server::Nginx => {
                let peer = match server {
                    Server::Nginx => Peer::nginx(&args.nginx, HELLO_BODY, cpu),
                    _ => Peer::wasmtime_serve(&args.wasmtime, &args.common.wasm, cpu),
                };
                match peer {
                    Ok(peer) => {
                        let host = peer.addr.to_string();
                        let mut measured =
                            runtime.block_on(measure(&args, server, peer.addr, &host))?;
                        measured.report.rss_bytes = probe::rss_bytes(peer.pid()).ok();
                        measured
                    }
                    Err(why) => {
                        eprintln!("atoll-loadtest: {} skipped: {why}", server.label());
                        skipped.push(Skipped {
                            server: server.label(),
                            why: why.to_string(),
                        });
                        continue;
                    }
                }
            }
        };
        distributions.push((server.label().to_owned(), measured.distribution));
        runs.push((server, measured.report));
    }
    let report = summarize(runs, skipped);
    print!("{}", markdown_table(&report.runs));
    for ratio in &report.ratios {
        println!(
            "Atoll ÷ {}: {:.2} (target ≥ {:.2}: {})",
            ratio.peer,
            ratio.ratio,
            ratio.target,
            if ratio.met { "met" } else { "missed" }
        );
    }
    if let Some(met) = report.p99_met {
        println!(
            "Atoll p99 at {} connections: target under {TARGET_P99_MS} ms: {}",
            args.connections,
            if met { "met" } else { "missed" }
        );
    }
    for skip in &report.skipped {
        println!("{}: skipped: {}", skip.server, skip.why);
    }
    out.write("hello.json", &serde_json::to_string_pretty(&report)?)?;
    out.write("hello-latency.svg", &plot::latency_chart(&distributions)?)?;
    Ok(())
}

/// One server's run: its report and its latency distribution, for the chart.
struct Measured {
    report: RunReport,
    distribution: Vec<(u64, f64)>,
}

/// A fresh gateway with `hello` deployed on `hello.test/`, loaded.
async fn measure_atoll(args: &Args, wasm: &[u8], cpu: Option<usize>) -> anyhow::Result<Measured> {
    let gateway = SpawnedGateway::start(&args.common.atoll, 1, cpu)?;
    let admin = Admin::new(&gateway.admin, &gateway.token);
    admin
        .put_tenant("hello", &["hello.test".to_owned()])
        .await?;
    admin
        .deploy("hello", "hello", "hello.test/", wasm.to_vec().into())
        .await?;
    let mut measured = measure(args, Server::Atoll, gateway.proxy, "hello.test").await?;
    measured.report.rss_bytes = probe::rss_bytes(gateway.pid()).ok();
    Ok(measured)
}

async fn measure(
    args: &Args,
    server: Server,
    addr: std::net::SocketAddr,
    host: &str,
) -> anyhow::Result<Measured> {
    let outcome = drive_with_progress(Load::one_host(
        addr,
        host,
        args.connections,
        Pacing::Closed,
        args.duration,
    ))
    .await?;
    if let Some(failure) = &outcome.first_failure {
        eprintln!(
            "atoll-loadtest: {}: a request failed: {failure}",
            server.label()
        );
    }
    Ok(Measured {
        report: RunReport::new(server.label(), Pacing::Closed, args.connections, &outcome),
        distribution: outcome.latencies.distribution(100),
    })
}

fn summarize(runs: Vec<(Server, RunReport)>, skipped: Vec<Skipped>) -> HelloReport {
    let rps = |which: Server| {
        runs.iter()
            .find(|(s, _)| *s == which)
            .map(|(_, r)| r.requests_per_second)
    };
    let mut ratios = Vec::new();
    if let Some(atoll) = rps(Server::Atoll) {
        for (peer, target) in [
            (Server::WasmtimeServe, TARGET_VS_WASMTIME),
            (Server::Nginx, TARGET_VS_NGINX),
        ] {
            if let Some(theirs) = rps(peer).filter(|r| *r > 0.0) {
                let ratio = atoll / theirs;
                ratios.push(Ratio {
                    peer: peer.label(),
                    ratio,
                    target,
                    met: ratio >= target,
                });
            }
        }
    }
    let p99_met = runs
        .iter()
        .find(|(s, _)| *s == Server::Atoll)
        .map(|(_, r)| (r.latency.p99_us as f64 / 1000.0) < TARGET_P99_MS);
    HelloReport {
        runs: runs.into_iter().map(|(_, r)| r).collect(),
        skipped,
        ratios,
        p99_target_ms: TARGET_P99_MS,
        p99_met,
    }
}
