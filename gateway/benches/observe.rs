//! What the request path's observability costs per request, in-process and single-threaded:
//!
//! - one access line through the subscriber `atoll serve` installs (JSON, `info`, the batched
//!   writer into a file), counting the CPU time of every thread, the log writer's included;
//! - the metric updates of one served request (instances gauge up and down, the 200 counter,
//!   the duration, instantiation and memory histograms, the execution counter).
//!
//! Compare the figures with a request's whole CPU cost from `scripts/bench-observability.sh`.
//!
//! `cargo bench -p atoll-gateway --bench observe`; figures are quoted in
//! `docs/observability.md`.

use std::hint::black_box;
use std::time::{Duration, Instant};

use atoll_gateway::log_writer::{self, LogFormat};
use atoll_gateway::metrics::Metrics;
use atoll_gateway::proxy::logs::AccessRecord;
use tracing_subscriber::EnvFilter;

const LINES: u32 = 500_000;
const REQUESTS: u32 = 2_000_000;

/// User plus system CPU time of this process so far (all threads).
fn process_cpu() -> Duration {
    let stat = std::fs::read_to_string("/proc/self/stat").expect("/proc/self/stat");
    // Fields after the command name, which is in parentheses and may hold spaces.
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .unwrap()
        .1
        .split_whitespace()
        .collect();
    let ticks: u64 = fields[11].parse::<u64>().unwrap() + fields[12].parse::<u64>().unwrap();
    // Linux reports in USER_HZ, 100 per second on every mainstream configuration.
    Duration::from_millis(ticks * 10)
}

fn main() {
    let dir = tempfile::tempdir().expect("temp dir");
    let file = std::fs::File::create(dir.path().join("access.log")).expect("log file");
    let guard = log_writer::install(LogFormat::Json, EnvFilter::new("info"), file, false);

    let ids: Vec<String> = (0..1024u128)
        .map(|i| {
            format!(
                "{:032x}",
                i.wrapping_mul(0x9e37_79b9_7f4a_7c15_f39c_c060_5ced_c834)
            )
        })
        .collect();
    let cpu = process_cpu();
    let wall = Instant::now();
    for i in 0..LINES {
        AccessRecord {
            request_id: &ids[i as usize % ids.len()],
            method: "GET",
            host: "acme.example.com",
            path: "/hello",
            tenant: "acme",
            function: "hello",
            route: "acme.example.com/hello",
            status: 200,
            duration: Duration::from_micros(48 + u64::from(i % 7)),
            instantiation: Duration::from_micros(4),
        }
        .log();
    }
    drop(guard); // every line written before the clock stops
    let access_cpu = (process_cpu() - cpu) / LINES;
    let access_wall = wall.elapsed() / LINES;
    let written = std::fs::read_to_string(dir.path().join("access.log"))
        .expect("log file")
        .lines()
        .count();
    assert_eq!(written, LINES as usize, "every line written");

    let metrics = Metrics::new();
    let function = metrics.for_function("acme", "hello");
    let started = Instant::now();
    for i in 0..REQUESTS {
        let seconds = black_box(f64::from(i % 100) * 1e-6);
        function.active.inc();
        function.instantiation.observe(seconds);
        function.memory_peak.observe(1_114_112.0);
        function.execution.inc_by(seconds);
        function.active.dec();
        function.duration.observe(seconds * 10.0);
        function.ok.inc();
    }
    let metrics_cost = started.elapsed() / REQUESTS;

    println!("| per request | cost |");
    println!("|---|---|");
    println!(
        "| access line, JSON, batched writer to a file (CPU of all threads) | {:.2} µs |",
        access_cpu.as_secs_f64() * 1e6
    );
    println!(
        "| access line, wall time on the logging thread | {:.2} µs |",
        access_wall.as_secs_f64() * 1e6
    );
    println!(
        "| metric updates of a served request | {:.3} µs |",
        metrics_cost.as_secs_f64() * 1e6
    );
}
