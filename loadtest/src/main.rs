//! The `atoll-loadtest` command. `run` drives one bounded load at a URL; `density` deploys N
//! tenants to a running gateway and drives Zipf traffic across them. Both print a Markdown
//! table (and JSON with `--json`).

use std::net::ToSocketAddrs;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use anyhow::Context as _;
use atoll_loadtest::density::{self, Admin, Traffic};
use atoll_loadtest::driver::{self, Load, Picker, Protocol, Target};
use atoll_loadtest::pacing::{Bounds, Pacing};
use atoll_loadtest::plot::{self, DensityPoint};
use atoll_loadtest::probe;
use atoll_loadtest::report::{RunReport, markdown_table};
use atoll_loadtest::spawn::SpawnedGateway;
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
    /// For each tenant count: a fresh gateway, N tenants deployed, Zipf traffic across them.
    /// Writes density.json, density.svg and latency.svg to --out.
    Density(DensityScenarioArgs),
}

#[derive(Debug, clap::Args)]
struct DensityScenarioArgs {
    /// Tenant counts, comma-separated.
    #[arg(long, value_delimiter = ',', default_value = "10,100,1000,10000")]
    tenants: Vec<usize>,
    /// The `atoll` binary to start.
    #[arg(long, default_value = "target/release/atoll")]
    atoll: PathBuf,
    /// The component each tenant gets.
    #[arg(
        long,
        default_value = "tenants/target/wasm32-wasip2/release/hello.wasm"
    )]
    wasm: PathBuf,
    /// Connections.
    #[arg(long, default_value_t = 32)]
    connections: usize,
    /// Load per tenant count: `500ms`, `10s`, `2m`.
    #[arg(long, default_value = "10s", value_parser = parse_duration)]
    duration: Duration,
    /// Pin the gateway to CPU 0 and this process to CPU 1, so figures are per core.
    #[arg(long)]
    pin: bool,
    /// Where the JSON and the charts go.
    #[arg(long, default_value = "loadtest-results")]
    out: PathBuf,
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

/// A progress bar on stderr for a run of `duration`, with the answers so far; drawn only on a
/// terminal, cleared when dropped.
struct Progress {
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Progress {
    fn show(duration: Duration, answered: Arc<AtomicU64>) -> Progress {
        let stop = Arc::new(AtomicBool::new(false));
        let stopped = stop.clone();
        let thread = std::thread::spawn(move || {
            let millis = u64::try_from(duration.as_millis()).unwrap_or(u64::MAX);
            let bar = indicatif::ProgressBar::new(millis);
            bar.set_style(
                indicatif::ProgressStyle::with_template("{bar:40} {elapsed:>4} of {len_s} {msg}")
                    .expect("a valid template")
                    .with_key(
                        "len_s",
                        move |_: &indicatif::ProgressState, w: &mut dyn std::fmt::Write| {
                            let _ = write!(w, "{}s", millis / 1000);
                        },
                    ),
            );
            let started = std::time::Instant::now();
            while !stopped.load(Ordering::Relaxed) {
                let elapsed = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
                bar.set_position(elapsed.min(millis));
                bar.set_message(format!("{} answers", answered.load(Ordering::Relaxed)));
                std::thread::sleep(Duration::from_millis(200));
            }
            bar.finish_and_clear();
        });
        Progress {
            stop,
            thread: Some(thread),
        }
    }
}

impl Drop for Progress {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// `500ms`, `10s` or `2m`.
fn parse_duration(text: &str) -> Result<Duration, String> {
    let (number, unit) = text
        .find(|c: char| !c.is_ascii_digit() && c != '.')
        .map_or((text, ""), |at| text.split_at(at));
    let number: f64 = number
        .parse()
        .map_err(|_| format!("{text:?}: expected a number with ms, s or m"))?;
    let seconds = match unit {
        "ms" => number / 1000.0,
        "s" => number,
        "m" => number * 60.0,
        _ => return Err(format!("{text:?}: the unit must be ms, s or m")),
    };
    Duration::try_from_secs_f64(seconds).map_err(|e| format!("{text:?}: {e}"))
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Run(args) => run(args),
        Command::Density(args) => density(args),
        Command::Scenario(Scenario::Density(args)) => density_scenario(args),
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
    let seconds = outcome.elapsed.as_secs_f64();
    let report = RunReport {
        name: args.name,
        pacing: match pacing {
            Pacing::Open { .. } => "open",
            Pacing::Closed => "closed",
        }
        .to_owned(),
        connections: args.connections,
        target_rate: args.rate,
        seconds,
        ok: outcome.ok,
        errors: outcome.errors,
        requests_per_second: (outcome.ok + outcome.errors) as f64 / seconds.max(1e-9),
        latency: outcome.latencies.summary(),
        rss_bytes: None,
    };
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

fn density_scenario(args: DensityScenarioArgs) -> anyhow::Result<()> {
    anyhow::ensure!(
        args.tenants.iter().all(|&n| n > 0),
        "tenant counts must be at least 1"
    );
    let wasm = bytes::Bytes::from(
        std::fs::read(&args.wasm).with_context(|| format!("reading {}", args.wasm.display()))?,
    );
    if args.pin {
        pin_self(1)?;
    }
    std::fs::create_dir_all(&args.out)
        .with_context(|| format!("creating {}", args.out.display()))?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let mut reports = Vec::new();
    let mut points = Vec::new();
    let mut distributions = Vec::new();
    for &n in &args.tenants {
        let gateway = SpawnedGateway::start(&args.atoll, 1, args.pin.then_some(0))?;
        let admin = Admin::new(&gateway.admin, &gateway.token);
        let rss_before = probe::rss_bytes(gateway.pid())?;
        runtime.block_on(density::deploy_tenants(&admin, n, &wasm))?;
        let rss_deployed = probe::rss_bytes(gateway.pid())?;
        let per_function = rss_deployed.saturating_sub(rss_before) as f64 / n as f64 / 1024.0;
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
        let run = runtime.block_on(density::drive(&admin, traffic))?;
        drop(progress);
        let seconds = run.outcome.elapsed.as_secs_f64();
        let report = RunReport {
            name: format!("density n={n}"),
            pacing: "closed".to_owned(),
            connections: args.connections,
            target_rate: None,
            seconds,
            ok: run.outcome.ok,
            errors: run.outcome.errors,
            requests_per_second: (run.outcome.ok + run.outcome.errors) as f64 / seconds.max(1e-9),
            latency: run.outcome.latencies.summary(),
            rss_bytes: Some(probe::rss_bytes(gateway.pid())?),
        };
        eprintln!(
            "atoll-loadtest: n={n}: RSS growth per idle deployed function {per_function:.1} KiB, \
             instantiation p99 {}",
            run.instantiation_p99
                .map_or_else(|| "n/a".to_owned(), |s| format!("{:.1} µs", s * 1e6))
        );
        points.push(DensityPoint {
            tenants: n as u64,
            requests_per_second: report.requests_per_second,
            p99_ms: report.latency.p99_us as f64 / 1000.0,
        });
        distributions.push((report.name.clone(), run.outcome.latencies.distribution(100)));
        reports.push(report);
    }
    print!("{}", markdown_table(&reports));
    let json = serde_json::to_string_pretty(&reports)?;
    let write = |name: &str, text: &str| {
        let path = args.out.join(name);
        std::fs::write(&path, text).with_context(|| format!("writing {}", path.display()))
    };
    write("density.json", &json)?;
    write("density.svg", &plot::density_chart(&points)?)?;
    write("latency.svg", &plot::latency_chart(&distributions)?)?;
    Ok(())
}

/// Pins this process to `cpu` (Linux), so the load generator and the gateway never share one.
fn pin_self(cpu: usize) -> anyhow::Result<()> {
    let status = std::process::Command::new("taskset")
        .args(["-pc", &cpu.to_string(), &std::process::id().to_string()])
        .stdout(std::process::Stdio::null())
        .status()
        .context("running taskset")?;
    anyhow::ensure!(status.success(), "taskset could not pin the load tester");
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
    let deployed = runtime.block_on(density::deploy_tenants(&admin, args.tenants, &wasm))?;
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
    let seconds = run.outcome.elapsed.as_secs_f64();
    let report = RunReport {
        name: format!("density n={}", args.tenants),
        pacing: "closed".to_owned(),
        connections: args.connections,
        target_rate: None,
        seconds,
        ok: run.outcome.ok,
        errors: run.outcome.errors,
        requests_per_second: (run.outcome.ok + run.outcome.errors) as f64 / seconds.max(1e-9),
        latency: run.outcome.latencies.summary(),
        rss_bytes: args.pid.map(probe::rss_bytes).transpose()?,
    };
    emit(&report, args.json.as_deref())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_take_units() {
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("10s"), Ok(Duration::from_secs(10)));
        assert_eq!(parse_duration("1.5s"), Ok(Duration::from_millis(1500)));
        assert_eq!(parse_duration("2m"), Ok(Duration::from_secs(120)));
        assert!(parse_duration("10").is_err());
        assert!(parse_duration("fast").is_err());
    }
}
