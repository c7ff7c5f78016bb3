//! The `atoll-loadtest` command. `run` drives one bounded load at a URL; `density` deploys N
//! tenants to a running gateway and drives Zipf traffic across them; `scenario NAME` runs a
//! standard scenario against servers it starts itself ([`atoll_loadtest::scenario`]). Each
//! prints a Markdown table and writes JSON.

use std::net::ToSocketAddrs;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::AtomicU64;
use std::time::Duration;

use anyhow::Context as _;
use atoll_loadtest::admin::Admin;
use atoll_loadtest::density::{self, Components, Traffic};
use atoll_loadtest::driver::{self, Load, Picker, Protocol, Target};
use atoll_loadtest::pacing::{Bounds, Pacing, parse_duration};
use atoll_loadtest::probe;
use atoll_loadtest::report::{RunReport, markdown_table};
use atoll_loadtest::scenario::{self, Progress};
use clap::{Parser, Subcommand};

/// Load tester for Atoll: closed- and open-loop HTTP load with HDR latency histograms.
#[derive(Debug, Parser)]
#[command(name = "atoll-loadtest", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Drive one bounded load at a URL.
    Run(RunArgs),
    /// Deploy N tenants with their own hosts to a running gateway through its admin API, then
    /// drive Zipf-distributed traffic across all of them.
    Density(DensityArgs),
    /// Run a standard scenario against a gateway this command starts itself.
    #[command(subcommand)]
    Scenario(Scenario),
}

#[derive(Debug, Subcommand)]
enum Scenario {
    /// `hello` through Atoll next to `wasmtime serve` and nginx, same run, same machine.
    /// Writes hello.json and hello-latency.svg to --out.
    Hello(scenario::hello::Args),
    /// For each tenant count: a fresh gateway, N tenants deployed, Zipf traffic across them.
    /// Writes density.json, density.svg and latency.svg to --out.
    Density(scenario::density::Args),
    /// A tenant's latency alone and next to a neighbour burning its CPU budget. Writes
    /// noisy-neighbour.json and noisy-neighbour-latency.svg to --out.
    NoisyNeighbour(scenario::noisy::Args),
    /// A tenant's latency alone and while its function is redeployed under load. Writes
    /// deploy-under-load.json and deploy-under-load-latency.svg to --out.
    DeployUnderLoad(scenario::deploys::Args),
}

#[derive(Debug, clap::Args)]
struct DensityArgs {
    /// The gateway's admin API.
    #[arg(long, default_value = "http://127.0.0.1:8081")]
    admin: String,
    /// The operator token.
    #[arg(long, env = "ATOLL_ADMIN_TOKEN", hide_env_values = true)]
    token: String,
    /// The gateway's proxy listener.
    #[arg(long, default_value = "127.0.0.1:8080")]
    proxy: std::net::SocketAddr,
    /// How many tenants to deploy and load.
    #[arg(long, default_value_t = 100)]
    tenants: usize,
    /// The component each tenant gets.
    #[arg(long)]
    wasm: PathBuf,
    /// Connections.
    #[arg(long, default_value_t = 32)]
    connections: usize,
    /// How long to send for: `500ms`, `10s`, `2m`.
    #[arg(long, default_value = "10s", value_parser = parse_duration)]
    duration: Duration,
    /// Whether the tenants share one component or each deploys its own build of it.
    #[arg(long, value_enum, default_value_t = Components::Distinct)]
    components: Components,
    /// The gateway's process id, to report its resident set.
    #[arg(long)]
    pid: Option<u32>,
    /// Write the report as JSON to this file too.
    #[arg(long)]
    json: Option<PathBuf>,
}

#[derive(Debug, clap::Args)]
struct RunArgs {
    /// The URL to load, e.g. http://127.0.0.1:8080/hello.
    url: http::Uri,
    /// The Host header to send (default: the URL's host and port).
    #[arg(long)]
    host: Option<String>,
    /// Connections (HTTP/1.1) or streams (h2c).
    #[arg(long, default_value_t = 32)]
    connections: usize,
    /// How long to send for: `500ms`, `10s`, `2m`.
    #[arg(long, default_value = "10s", value_parser = parse_duration)]
    duration: Duration,
    /// The most requests to send.
    #[arg(long, default_value_t = 10_000_000)]
    requests: u64,
    /// Open loop at this many requests per second; without it, closed loop.
    #[arg(long)]
    rate: Option<f64>,
    /// HTTP/1.1 keep-alive or h2c.
    #[arg(long, value_enum, default_value_t = Protocol::Http1)]
    protocol: Protocol,
    /// Write the report as JSON to this file too.
    #[arg(long)]
    json: Option<PathBuf>,
    /// The run's name in the report.
    #[arg(long, default_value = "run")]
    name: String,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Run(args) => run(args),
        Command::Density(args) => density(args),
        Command::Scenario(Scenario::Hello(args)) => scenario::hello::run(args),
        Command::Scenario(Scenario::Density(args)) => scenario::density::run(args),
        Command::Scenario(Scenario::NoisyNeighbour(args)) => scenario::noisy::run(args),
        Command::Scenario(Scenario::DeployUnderLoad(args)) => scenario::deploys::run(args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("atoll-loadtest: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn run(args: RunArgs) -> anyhow::Result<()> {
    let authority = args
        .url
        .authority()
        .context("the URL needs a host, e.g. http://127.0.0.1:8080/hello")?;
    anyhow::ensure!(
        args.url.scheme_str().unwrap_or("http") == "http",
        "only http:// URLs (HTTP/1.1 or h2c)"
    );
    let addr = (authority.host(), authority.port_u16().unwrap_or(80))
        .to_socket_addrs()?
        .next()
        .with_context(|| format!("{authority} resolves to no address"))?;
    if let Some(rate) = args.rate {
        anyhow::ensure!(rate.is_finite() && rate > 0.0, "--rate must be above 0");
    }
    let target = Target {
        host: args.host.clone().unwrap_or_else(|| authority.to_string()),
        path: args
            .url
            .path_and_query()
            .map_or("/", |p| p.as_str())
            .to_owned(),
    };
    let pacing = match args.rate {
        Some(rate) => Pacing::Open { rate },
        None => Pacing::Closed,
    };
    let answered = Arc::new(AtomicU64::new(0));
    let load = Load {
        answered: answered.clone(),
        addr,
        targets: Arc::new(vec![target]),
        picker: Picker::First,
        protocol: args.protocol,
        connections: args.connections,
        pacing,
        bounds: Bounds {
            duration: args.duration,
            max_requests: args.requests,
        },
    };
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let progress = Progress::show(args.duration, answered);
    let outcome = runtime.block_on(driver::run(load))?;
    drop(progress);
    if let Some(failure) = &outcome.first_failure {
        eprintln!("atoll-loadtest: some requests failed; the first: {failure}");
    }
    let report = RunReport::new(args.name, pacing, args.connections, &outcome);
    emit(&report, args.json.as_deref())
}

/// Prints `report` as a table and writes its JSON to `json`, if given.
fn emit(report: &RunReport, json: Option<&std::path::Path>) -> anyhow::Result<()> {
    print!("{}", markdown_table(std::slice::from_ref(report)));
    if let Some(path) = json {
        std::fs::write(path, report.to_json())
            .with_context(|| format!("writing {}", path.display()))?;
    }
    Ok(())
}

fn density(args: DensityArgs) -> anyhow::Result<()> {
    anyhow::ensure!(args.tenants > 0, "--tenants must be at least 1");
    let wasm = bytes::Bytes::from(
        std::fs::read(&args.wasm).with_context(|| format!("reading {}", args.wasm.display()))?,
    );
    let admin = Admin::new(&args.admin, &args.token);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let rss_before = args.pid.map(probe::rss_bytes).transpose()?;
    let deployed = runtime.block_on(density::deploy_tenants(
        &admin,
        args.tenants,
        &wasm,
        args.components,
    ))?;
    let rss_deployed = args.pid.map(probe::rss_bytes).transpose()?;
    eprintln!(
        "atoll-loadtest: {} tenants deployed in {:.1} s",
        args.tenants,
        deployed.as_secs_f64()
    );
    if let (Some(before), Some(after)) = (rss_before, rss_deployed) {
        let growth = after.saturating_sub(before) as f64 / args.tenants as f64 / 1024.0;
        eprintln!("atoll-loadtest: RSS growth per idle deployed function: {growth:.1} KiB");
    }
    let bounds = Bounds {
        duration: args.duration,
        max_requests: u64::MAX,
    };
    let answered = Arc::new(AtomicU64::new(0));
    let traffic = Traffic {
        proxy: args.proxy,
        tenants: args.tenants,
        connections: args.connections,
        pacing: Pacing::Closed,
        bounds,
        answered: answered.clone(),
    };
    let progress = Progress::show(args.duration, answered);
    let run = runtime.block_on(density::drive(&admin, traffic))?;
    drop(progress);
    if let Some(p99) = run.instantiation_p99 {
        eprintln!("atoll-loadtest: instantiation p99 {:.1} µs", p99 * 1e6);
    }
    let mut report = RunReport::new(
        format!("density n={}", args.tenants),
        Pacing::Closed,
        args.connections,
        &run.outcome,
    );
    report.rss_bytes = args.pid.map(probe::rss_bytes).transpose()?;
    emit(&report, args.json.as_deref())
}
