//! In-process cost of serving `hello`: the time to instantiate it from its pre-linked image, and
//! the whole invocation (fresh store and instance, `handle`, response head and body collected),
//! on one thread, with the gateway's engine settings. Prints p50, p90 and p99.
//!
//! `cargo bench -p atoll-gateway --bench invoke` (after `make tenants`); figures are quoted in
//! `docs/benchmarks.md`.

use std::path::Path;
use std::time::{Duration, Instant};

use atoll_gateway::runtime::{InvokeLimits, Runtime, RuntimeSettings};
use atoll_gateway::store::ArtifactCache;
use http_body_util::{BodyExt as _, Empty};

const WARMUP: usize = 2_000;
const SAMPLES: usize = 50_000;

fn main() {
    let wasm = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../tenants/target/wasm32-wasip2/release/hello.wasm");
    let bytes = std::fs::read(&wasm).unwrap_or_else(|e| {
        panic!(
            "{}: {e}; build the tenants first (`make tenants`)",
            wasm.display()
        )
    });
    let runtime = Runtime::new(RuntimeSettings::default()).expect("runtime");
    let data_dir = tempfile::tempdir().expect("temp dir");
    let artifacts = ArtifactCache::new(data_dir.path(), runtime.engine());
    let version = atoll_gateway::store::content_hash(&bytes);
    let (component, _) = artifacts
        .load_or_compile(&runtime, &version, &bytes)
        .expect("compile hello");
    let image = runtime.prepare(&component).expect("link hello");
    let limits = InvokeLimits::default();

    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("tokio");
    let mut instantiate = Vec::with_capacity(SAMPLES);
    let mut whole = Vec::with_capacity(SAMPLES);
    rt.block_on(async {
        for i in 0..WARMUP + SAMPLES {
            let request = http::Request::get("http://localhost/hello")
                .body(Empty::<bytes::Bytes>::new())
                .expect("request");
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
}

fn report(name: &str, samples: &mut [Duration]) {
    samples.sort_unstable();
    let pick = |q: f64| samples[((samples.len() - 1) as f64 * q) as usize];
    println!(
        "{name:<24} n={} p50={:>8.2?} p90={:>8.2?} p99={:>8.2?}",
        samples.len(),
        pick(0.50),
        pick(0.90),
        pick(0.99)
    );
}
