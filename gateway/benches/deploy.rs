//! The deploy path, end to end on a real in-process gateway:
//!
//! - **upload to live**: from the start of `PUT /v1/tenants/{t}/functions/{f}` with a new
//!   component (new bytes: compiled from scratch) to the first 200 from its route;
//! - **restart to ready**: with `FUNCTIONS` deployed functions, from `ServerHandle::start` to
//!   the proxy accepting (every artifact loaded from the cache, nothing compiled).
//!
//! `cargo bench -p atoll-gateway --bench deploy` (after `make tenants`). `FUNCTIONS` defaults to
//! 1000; set `ATOLL_BENCH_FUNCTIONS` to change it.

use std::path::Path;
use std::time::{Duration, Instant};

use atoll_gateway::{Config, ServerHandle};

/// `hello` with a custom section holding `n`: the same code under a new hash.
fn variant(hello: &[u8], n: usize) -> Vec<u8> {
    let name = b"atoll-bench";
    let payload = n.to_le_bytes();
    let size = 1 + name.len() + payload.len();
    let mut bytes = hello.to_vec();
    bytes.push(0); // custom section
    bytes.push(u8::try_from(size).expect("small"));
    bytes.push(u8::try_from(name.len()).expect("small"));
    bytes.extend_from_slice(name);
    bytes.extend_from_slice(&payload);
    bytes
}

fn config(data_dir: &Path) -> Config {
    let yaml = format!(
        "listen: {{http: 127.0.0.1:0, admin: 127.0.0.1:0}}\ndata_dir: {}\nkeep_versions: 2\n",
        data_dir.display()
    );
    Config::parse(&yaml, None).expect("config")
}

fn report(name: &str, samples: &mut [Duration]) {
    samples.sort_unstable();
    let pick = |q: f64| samples[((samples.len() - 1) as f64 * q) as usize];
    println!(
        "{name:<34} n={} p50={:>9.2?} p90={:>9.2?} max={:>9.2?}",
        samples.len(),
        pick(0.5),
        pick(0.9),
        samples[samples.len() - 1]
    );
}

fn main() {
    let functions: usize = std::env::var("ATOLL_BENCH_FUNCTIONS")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(1000);
    let hello = std::fs::read(
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../tenants/target/wasm32-wasip2/release/hello.wasm"),
    )
    .expect("hello.wasm: run `make tenants`");
    let data = tempfile::tempdir().expect("temp dir");
    let gateway = ServerHandle::start(config(data.path())).expect("start");
    let operator = std::fs::read_to_string(data.path().join("admin.token")).expect("token");
    let operator = operator.trim().to_owned();
    let admin = format!("http://{}", gateway.admin_addr());
    let proxy = format!("http://{}", gateway.http_addr());
    let runtime = tokio::runtime::Runtime::new().expect("tokio");
    let client = reqwest::Client::new();

    let mut live = Vec::new();
    runtime.block_on(async {
        let status = client
            .put(format!("{admin}/v1/tenants/bench"))
            .bearer_auth(&operator)
            .body(r#"{"hosts": ["bench.test"]}"#)
            .send()
            .await
            .expect("tenant")
            .status();
        assert_eq!(status, 200);
        for n in 0..functions {
            let started = Instant::now();
            let response = client
                .put(format!(
                    "{admin}/v1/tenants/bench/functions/f{n}?route=bench.test/f{n}"
                ))
                .bearer_auth(&operator)
                .body(variant(&hello, n))
                .send()
                .await
                .expect("deploy");
            assert_eq!(
                response.status(),
                201,
                "{}",
                response.text().await.unwrap_or_default()
            );
            loop {
                let served = client
                    .get(format!("{proxy}/f{n}"))
                    .header("host", "bench.test")
                    .send()
                    .await
                    .expect("proxy");
                if served.status() == 200 {
                    break;
                }
            }
            live.push(started.elapsed());
            if (n + 1) % 100 == 0 {
                eprintln!("deployed {} functions", n + 1);
            }
        }
    });
    report("upload to first 200 (compiling)", &mut live);

    gateway.stop();
    let started = Instant::now();
    let restarted = ServerHandle::start(config(data.path())).expect("restart");
    let ready = started.elapsed();
    println!("restart to ready with {functions} functions: {ready:.2?}");
    let text = restarted.metrics().render();
    let cached = text
        .lines()
        .find(|l| l.starts_with("atoll_artifacts_total{source=\"cached\"}"))
        .unwrap_or("none");
    println!("  {cached}");
}
