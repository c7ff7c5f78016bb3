//! In-process costs, with the gateway's engine settings:
//!
//! - serving `hello` on one thread: the time to instantiate it from its pre-linked image, and
//!   the whole invocation (fresh store and instance, `handle`, response head and body
//!   collected);
//! - how long after its `cpu_time` (50 ms) an infinite loop (`spin`) is stopped;
//! - `hello`'s latency on a two-worker runtime alone and next to four spinning guests.
//!
//! Prints p50, p90 and p99 of each.
//!
//! `cargo bench -p atoll-gateway --bench invoke` (after `make tenants`); figures are quoted in
//! `docs/benchmarks.md`.

use std::path::Path;
use std::time::{Duration, Instant};

use atoll_gateway::runtime::{FunctionImage, InvokeLimits, Runtime, RuntimeSettings};
use atoll_gateway::store::ArtifactCache;
use http_body_util::{BodyExt as _, Empty};

const WARMUP: usize = 2_000;
const SAMPLES: usize = 50_000;

fn load(runtime: &Runtime, artifacts: &ArtifactCache, name: &str) -> FunctionImage {
    let wasm = Path::new(env!("CARGO_MANIFEST_DIR")).join(format!(
        "../tenants/target/wasm32-wasip2/release/{name}.wasm"
    ));
    let bytes = std::fs::read(&wasm).unwrap_or_else(|e| {
        panic!(
            "{}: {e}; build the tenants first (`make tenants`)",
            wasm.display()
        )
    });
    let version = atoll_gateway::store::content_hash(&bytes);
    let (component, _) = artifacts
        .load_or_compile(runtime, &version, &bytes)
        .expect("compile");
    runtime.prepare(&component).expect("link")
}

fn main() {
    let runtime = Runtime::new(RuntimeSettings::default()).expect("runtime");
    let data_dir = tempfile::tempdir().expect("temp dir");
    let artifacts = ArtifactCache::new(data_dir.path(), runtime.engine());
    let image = load(&runtime, &artifacts, "hello");
    let spin = load(&runtime, &artifacts, "spin");
    let limits = InvokeLimits::default();

    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("tokio");
    let mut instantiate = Vec::with_capacity(SAMPLES);
    let mut whole = Vec::with_capacity(SAMPLES);
    rt.block_on(async {
        for i in 0..WARMUP + SAMPLES {
            let request = get("/hello");
            let started = Instant::now();
            let invocation = runtime
                .invoke(&image, &limits, request)
                .await
                .expect("hello answers");
            let body = invocation
                .response
                .into_body()
                .collect()
                .await
                .expect("body")
                .to_bytes();
            let elapsed = started.elapsed();
            assert_eq!(&body[..], b"Hello from Atoll!\n");
            if i >= WARMUP {
                instantiate.push(invocation.instantiation);
                whole.push(elapsed);
            }
        }
    });
    report("instantiate hello", &mut instantiate);
    report("invoke hello (whole)", &mut whole);

    // How long past its 50 ms budget a spinning guest runs.
    let mut overrun = Vec::new();
    rt.block_on(async {
        for _ in 0..20 {
            let started = Instant::now();
            let error = runtime
                .invoke(&spin, &limits, get("/spin"))
                .await
                .expect_err("spin never answers");
            assert_eq!(error, atoll_gateway::runtime::InvokeError::CpuLimit);
            overrun.push(started.elapsed().saturating_sub(limits.cpu_time));
        }
    });
    report("spin stopped after cpu_time +", &mut overrun);

    // hello's latency on two workers, alone and next to four spinners.
    let workers = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("tokio");
    let runtime = std::sync::Arc::new(runtime);
    for spinners in [0, 4] {
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let mut noise = Vec::new();
        for _ in 0..spinners {
            let (runtime, spin, stop, limits) =
                (runtime.clone(), spin.clone(), stop.clone(), limits.clone());
            noise.push(workers.spawn(async move {
                while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                    let _ = runtime.invoke(&spin, &limits, get("/spin")).await;
                }
            }));
        }
        let mut latencies = Vec::with_capacity(2_000);
        workers.block_on(async {
            for _ in 0..2_000 {
                let started = Instant::now();
                let invocation = workers
                    .spawn({
                        let (runtime, image, limits) =
                            (runtime.clone(), image.clone(), limits.clone());
                        async move {
                            let invocation = runtime.invoke(&image, &limits, get("/")).await;
                            invocation
                                .expect("hello")
                                .response
                                .into_body()
                                .collect()
                                .await
                        }
                    })
                    .await
                    .expect("join");
                assert!(invocation.is_ok());
                latencies.push(started.elapsed());
            }
        });
        stop.store(true, std::sync::atomic::Ordering::Relaxed);
        for task in noise {
            workers.block_on(task).expect("spinner");
        }
        report(
            &format!("hello next to {spinners} spinners"),
            &mut latencies,
        );
    }
}

fn get(path: &str) -> http::Request<Empty<bytes::Bytes>> {
    http::Request::get(format!("http://localhost{path}"))
        .body(Empty::new())
        .expect("request")
}

fn report(name: &str, samples: &mut [Duration]) {
    samples.sort_unstable();
    let pick = |q: f64| samples[((samples.len() - 1) as f64 * q) as usize];
    println!(
        "{name:<30} n={} p50={:>8.2?} p90={:>8.2?} p99={:>8.2?}",
        samples.len(),
        pick(0.50),
        pick(0.90),
        pick(0.99)
    );
}
