//! Tenant limits end to end: each limit's status and error code, and a noisy neighbour that
//! never starves another tenant. Components are the misbehaving tenants from `tenants/`.

use std::time::{Duration, Instant};

use atoll_tests::{TestGateway, metric_value};
use serde_json::Value;

const LIMITED: &str = r#"
response_body: 2KiB
tenants:
  tight:
    hosts: [tight.test]
    limits: {memory: 16MiB, cpu_time: 50ms, timeout: 300ms, concurrency: 1, queue_wait: 50ms, request_body: 1KiB}
    functions:
      hog: {wasm: "{wasm}/hog.wasm", routes: [tight.test/hog]}
      spin: {wasm: "{wasm}/spin.wasm", routes: [tight.test/spin]}
      sleepy: {wasm: "{wasm}/sleepy.wasm", routes: [tight.test/sleepy]}
      echo: {wasm: "{wasm}/echo.wasm", routes: [tight.test/echo]}
      bigbody: {wasm: "{wasm}/bigbody.wasm", routes: [tight.test/bigbody]}
  rated:
    hosts: [rated.test]
    limits: {rate: 5}
    functions:
      hello: {wasm: "{wasm}/hello.wasm", routes: [rated.test/]}
"#;

fn client() -> reqwest::Client {
    reqwest::Client::builder().http1_only().build().unwrap()
}

/// Sends `GET path` with `Host: host` and returns the status, the `retry-after` header and
/// the JSON error code (if the body is a gateway error).
async fn call(
    gateway: &TestGateway,
    host: &str,
    path: &str,
    body: Option<Vec<u8>>,
) -> (u16, Option<String>, Option<String>) {
    let builder = match body {
        Some(body) => client().post(gateway.url(path)).body(body),
        None => client().get(gateway.url(path)),
    };
    let response = builder.header("host", host).send().await.unwrap();
    let status = response.status().as_u16();
    let retry_after = response
        .headers()
        .get("retry-after")
        .map(|v| v.to_str().unwrap().to_owned());
    let code = response
        .json::<Value>()
        .await
        .ok()
        .and_then(|v| v["error"]["code"].as_str().map(str::to_owned));
    (status, retry_after, code)
}

fn metrics(gateway: &TestGateway) -> String {
    gateway.handle().metrics().render()
}

#[tokio::test]
async fn memory_past_the_limit_is_a_503_and_under_it_works() {
    let gateway = TestGateway::start(LIMITED);
    let (status, _, code) = call(&gateway, "tight.test", "/hog", None).await;
    assert_eq!(
        (status, code.as_deref()),
        (503, Some("memory_limit_exceeded"))
    );
    let (status, _, _) = call(&gateway, "tight.test", "/hog?mib=4", None).await;
    assert_eq!(status, 200, "4 MiB fits in 16 MiB");
    let text = metrics(&gateway);
    assert_eq!(
        metric_value(
            &text,
            r#"atoll_wasm_traps_total{function="hog",reason="memory",tenant="tight"}"#
        ),
        Some(1.0)
    );
    assert_eq!(
        metric_value(
            &text,
            r#"atoll_limit_rejections_total{limit="memory",tenant="tight"}"#
        ),
        Some(1.0)
    );
}

#[tokio::test]
async fn an_infinite_loop_is_stopped_at_its_cpu_time() {
    let gateway = TestGateway::start(LIMITED);
    let started = Instant::now();
    let (status, _, code) = call(&gateway, "tight.test", "/spin", None).await;
    let elapsed = started.elapsed();
    assert_eq!((status, code.as_deref()), (503, Some("cpu_limit_exceeded")));
    // 50 ms of CPU in 10 ms ticks; the precise figure is in the benchmarks, this only checks
    // that the loop was stopped by its budget and not by the 300 ms timeout.
    assert!(elapsed < Duration::from_millis(280), "{elapsed:?}");
}

#[tokio::test]
async fn waiting_past_the_timeout_is_a_504_and_frees_the_instance() {
    let gateway = TestGateway::start(LIMITED);
    let started = Instant::now();
    let (status, _, code) = call(&gateway, "tight.test", "/sleepy?ms=5000", None).await;
    assert_eq!((status, code.as_deref()), (504, Some("timeout")));
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "{:?}",
        started.elapsed()
    );
    // Concurrency is 1: the next request is admitted only once the timed-out one let go.
    let (status, _, _) = call(&gateway, "tight.test", "/sleepy?ms=1", None).await;
    assert_eq!(status, 200);
}

#[tokio::test]
async fn a_full_tenant_is_a_503_over_capacity_with_retry_after() {
    let gateway = TestGateway::start(LIMITED);
    let slow = tokio::spawn({
        let url = gateway.url("/sleepy?ms=250");
        async move {
            client()
                .get(url)
                .header("host", "tight.test")
                .send()
                .await
                .unwrap()
                .status()
        }
    });
    let tenant = gateway.handle().registry().snapshot().tenants["tight"].clone();
    let deadline = Instant::now() + Duration::from_secs(10);
    while tenant.admission.active() == 0 {
        assert!(Instant::now() < deadline, "the slow request never started");
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    let (status, retry_after, code) = call(&gateway, "tight.test", "/echo", None).await;
    assert_eq!((status, code.as_deref()), (503, Some("over_capacity")));
    assert_eq!(retry_after.as_deref(), Some("1"));
    assert_eq!(slow.await.unwrap(), 200);
    let text = metrics(&gateway);
    assert_eq!(
        metric_value(
            &text,
            r#"atoll_limit_rejections_total{limit="concurrency",tenant="tight"}"#
        ),
        Some(1.0)
    );
}

#[tokio::test]
async fn over_the_rate_is_a_429_with_retry_after() {
    let gateway = TestGateway::start(LIMITED);
    let mut statuses = Vec::new();
    let mut retry_after = None;
    for _ in 0..8 {
        let (status, retry, code) = call(&gateway, "rated.test", "/", None).await;
        if status == 429 {
            assert_eq!(code.as_deref(), Some("rate_limited"));
            retry_after = retry;
        }
        statuses.push(status);
    }
    // A burst of one second's worth (5) passes; the test's 8 requests take far less than the
    // 200 ms the limiter would need to earn 3 more.
    assert_eq!(
        statuses.iter().filter(|s| **s == 200).count(),
        5,
        "{statuses:?}"
    );
    assert_eq!(
        statuses.iter().filter(|s| **s == 429).count(),
        3,
        "{statuses:?}"
    );
    assert_eq!(retry_after.as_deref(), Some("1"));
}

#[tokio::test]
async fn a_body_over_the_limit_is_a_413_with_or_without_a_length() {
    let gateway = TestGateway::start(LIMITED);
    let (status, _, code) = call(&gateway, "tight.test", "/echo", Some(vec![b'a'; 2048])).await;
    assert_eq!((status, code.as_deref()), (413, Some("request_too_large")));
    let (status, _, _) = call(&gateway, "tight.test", "/echo", Some(vec![b'a'; 1024])).await;
    assert_eq!(status, 200, "exactly the limit is fine");

    // Chunked, so the gateway only learns the size while reading.
    let chunks = futures::stream::iter(
        (0..4).map(|_| Ok::<_, std::io::Error>(bytes::Bytes::from(vec![b'b'; 512]))),
    );
    let response = client()
        .post(gateway.url("/echo"))
        .header("host", "tight.test")
        .body(reqwest::Body::wrap_stream(chunks))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 413);
}

#[tokio::test]
async fn a_response_over_the_gateway_cap_is_a_502() {
    let gateway = TestGateway::start(LIMITED);
    // bigbody writes 4 KiB chunks; the cap is 2 KiB, so the first chunk is already too much.
    let (status, _, code) = call(&gateway, "tight.test", "/bigbody?mib=1", None).await;
    assert_eq!((status, code.as_deref()), (502, Some("response_too_large")));
}

// A generous CPU budget: streaming 3 MiB from a debug build on a busy CI machine must be cut
// by the response cap this test is about, never by `cpu_time`.
const STREAMING: &str = r#"
response_body: 1MiB
tenants:
  stream:
    hosts: [stream.test]
    limits: {cpu_time: 5s}
    functions:
      bigbody: {wasm: "{wasm}/bigbody.wasm", routes: [stream.test/]}
"#;

#[tokio::test]
async fn a_stream_is_cut_when_it_passes_the_cap_and_flows_under_it() {
    let gateway = TestGateway::start(STREAMING);
    let under = client()
        .get(gateway.url("/?mib=1"))
        .header("host", "stream.test")
        .send()
        .await
        .unwrap();
    assert_eq!(under.status(), 200);
    assert_eq!(under.bytes().await.unwrap().len(), 1 << 20);

    let over = client()
        .get(gateway.url("/?mib=3"))
        .header("host", "stream.test")
        .send()
        .await
        .unwrap();
    assert_eq!(
        over.status(),
        200,
        "the head went out before the cap was reached"
    );
    assert!(over.bytes().await.is_err(), "the body must not end cleanly");
}

const NEIGHBOURS: &str = r#"
tenants:
  noisy:
    hosts: [noisy.test]
    limits: {memory: 16MiB, cpu_time: 30ms, concurrency: 4, queue_wait: 10ms}
    functions:
      spin: {wasm: "{wasm}/spin.wasm", routes: [noisy.test/spin]}
      hog: {wasm: "{wasm}/hog.wasm", routes: [noisy.test/hog]}
  quiet:
    hosts: [quiet.test]
    functions:
      hello: {wasm: "{wasm}/hello.wasm", routes: [quiet.test/]}
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_noisy_neighbour_never_starves_another_tenant() {
    let gateway = TestGateway::start(NEIGHBOURS);
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let mut noise = Vec::new();
    for i in 0..10 {
        let path = if i % 2 == 0 { "/spin" } else { "/hog" };
        let url = gateway.url(path);
        let stop = stop.clone();
        noise.push(tokio::spawn(async move {
            let client = client();
            let mut sent = 0u32;
            // Bounded in count and time.
            let until = Instant::now() + Duration::from_secs(20);
            while !stop.load(std::sync::atomic::Ordering::Relaxed) && Instant::now() < until {
                let status = client
                    .get(&url)
                    .header("host", "noisy.test")
                    .send()
                    .await
                    .unwrap()
                    .status()
                    .as_u16();
                assert!(matches!(status, 503), "noise got {status}");
                sent += 1;
            }
            sent
        }));
    }
    let quiet = client();
    for i in 0..200 {
        let response = quiet
            .get(gateway.url(&format!("/?i={i}")))
            .header("host", "quiet.test")
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200, "quiet request {i}");
        assert_eq!(response.text().await.unwrap(), "Hello from Atoll!\n");
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let mut noisy_requests = 0;
    for task in noise {
        noisy_requests += task.await.unwrap();
    }
    assert!(
        noisy_requests >= 10,
        "the neighbour was busy: {noisy_requests}"
    );
    let text = metrics(&gateway);
    assert!(
        metric_value(
            &text,
            r#"atoll_wasm_traps_total{function="spin",reason="cpu",tenant="noisy"}"#
        )
        .unwrap_or(0.0)
            >= 1.0,
        "{text}"
    );
}
