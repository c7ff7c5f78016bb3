//! Hostile clients, tenants and guests (issue 15): each attack against the real gateway on
//! loopback, bounded in count and time, and what must hold while it runs: the victim tenant
//! keeps answering, nothing leaks across tenants, no spelling of a path slips past a route.

mod support;

use std::time::{Duration, Instant};

use atoll_tests::{TestGateway, metric_value};
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const VICTIM: &str = r#"
tenants:
  victim:
    hosts: [victim.test]
    limits: {concurrency: 8, timeout: 2s, cpu_time: 1s}
    functions:
      echo: {wasm: "{wasm}/echo.wasm", routes: [victim.test/, /victim]}
      big: {wasm: "{wasm}/bigbody.wasm", routes: [victim.test/big]}
"#;

/// The proxy's address, `127.0.0.1:port`.
fn proxy(gateway: &TestGateway) -> String {
    gateway
        .url("")
        .trim_start_matches("http://")
        .trim_end_matches('/')
        .to_owned()
}

/// `GET /` to the victim, `n` times one after another; the statuses.
async fn victim_statuses(gateway: &TestGateway, n: usize) -> Vec<u16> {
    let client = reqwest::Client::new();
    let mut statuses = Vec::new();
    for _ in 0..n {
        let status = client
            .get(gateway.url("/"))
            .header("host", "victim.test")
            .timeout(Duration::from_secs(5))
            .send()
            .await
            .map_or(0, |r| r.status().as_u16());
        statuses.push(status);
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    statuses
}

/// A client that announces a 100,000-byte body and then sends one byte every `every`, until
/// `until`; returns what the gateway answered, if anything.
async fn trickle(address: String, every: Duration, until: Instant) -> String {
    let mut stream = TcpStream::connect(&address).await.unwrap();
    let head = "POST / HTTP/1.1\r\nhost: victim.test\r\ncontent-length: 100000\r\n\r\n";
    stream.write_all(head.as_bytes()).await.unwrap();
    let mut answer = Vec::new();
    let mut buffer = [0u8; 4096];
    while Instant::now() < until {
        tokio::select! {
            read = stream.read(&mut buffer) => match read {
                Ok(0) | Err(_) => break,
                Ok(n) => answer.extend_from_slice(&buffer[..n]),
            },
            () = tokio::time::sleep(every) => {
                if stream.write_all(b"x").await.is_err() {
                    break;
                }
            }
        }
    }
    String::from_utf8_lossy(&answer).into_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn slow_uploads_over_http1_never_take_the_tenants_slots() {
    let gateway = TestGateway::start(VICTIM);
    let until = Instant::now() + Duration::from_secs(4);
    let slow: Vec<_> = (0..70)
        .map(|_| tokio::spawn(trickle(proxy(&gateway), Duration::from_millis(500), until)))
        .collect();
    tokio::time::sleep(Duration::from_millis(300)).await;
    let statuses = victim_statuses(&gateway, 20).await;
    assert!(
        statuses.iter().all(|s| *s == 200),
        "the victim answers throughout: {statuses:?}"
    );
    for client in slow {
        let answer = client.await.unwrap();
        assert!(
            answer.starts_with("HTTP/1.1 504"),
            "a trickling upload is cut off at the tenant's timeout: {answer:?}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn slow_uploads_over_h2c_never_take_the_tenants_slots() {
    let gateway = TestGateway::start(VICTIM);
    let client = reqwest::Client::builder()
        .http2_prior_knowledge()
        .build()
        .unwrap();
    let slow: Vec<_> = (0..30)
        .map(|_| {
            // Over h2 the host is the `:authority`: the tenant's host-less route.
            let request = client
                .post(gateway.url("/victim"))
                .body(reqwest::Body::wrap_stream(futures::stream::unfold(
                    0,
                    |sent| async move {
                        if sent >= 8 {
                            return None;
                        }
                        tokio::time::sleep(Duration::from_millis(500)).await;
                        Some((Ok::<_, std::io::Error>(vec![b'x']), sent + 1))
                    },
                )));
            tokio::spawn(async move {
                request
                    .send()
                    .await
                    .map_or(0, |response| response.status().as_u16())
            })
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(300)).await;
    let statuses = victim_statuses(&gateway, 20).await;
    assert!(
        statuses.iter().all(|s| *s == 200),
        "the victim answers throughout: {statuses:?}"
    );
    for upload in slow {
        let status = upload.await.unwrap();
        assert!(
            status == 504 || status == 0,
            "a trickling upload never reaches a guest: {status}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn clients_that_never_read_are_cut_off_at_the_timeout() {
    let gateway = TestGateway::start(VICTIM);
    let mut readers = Vec::new();
    for _ in 0..6 {
        let mut stream = TcpStream::connect(proxy(&gateway)).await.unwrap();
        let head = "GET /big?mib=64 HTTP/1.1\r\nhost: victim.test\r\n\r\n";
        stream.write_all(head.as_bytes()).await.unwrap();
        readers.push(stream);
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    let statuses = victim_statuses(&gateway, 10).await;
    assert!(statuses.iter().all(|s| *s == 200), "{statuses:?}");
    // Past the 2 s timeout the stalled responses are cut and their sockets closed: what the
    // kernel still had queued drains, then nothing more comes (the end of a closed socket's
    // queue may or may not arrive as a FIN), well short of 64 MiB.
    tokio::time::sleep(Duration::from_secs(2)).await;
    for mut stream in readers {
        let mut received = 0usize;
        let mut buffer = vec![0u8; 1 << 16];
        loop {
            match tokio::time::timeout(Duration::from_secs(2), stream.read(&mut buffer)).await {
                Ok(Ok(0)) | Ok(Err(_)) | Err(_) => break,
                Ok(Ok(n)) => received += n,
            }
        }
        assert!(received < 32 << 20, "cut short: {received} bytes");
    }
    let series = r#"atoll_requests_total{code="200",function="big",tenant="victim"}"#;
    let text = metrics_when(&gateway, |text| metric_value(text, series) == Some(6.0)).await;
    assert_eq!(
        metric_value(&text, series),
        Some(6.0),
        "each cut is recorded: {text}"
    );
    // And every instance is gone again.
    let series = r#"atoll_instances_active{tenant="victim"}"#;
    let text = metrics_when(&gateway, |text| metric_value(text, series) == Some(0.0)).await;
    assert_eq!(metric_value(&text, series), Some(0.0), "{text}");
}

const PATHS: &str = r#"
tenants:
  site:
    hosts: [site.test]
    functions:
      public: {wasm: "{wasm}/echo.wasm", routes: [site.test/]}
      admin: {wasm: "{wasm}/hello.wasm", routes: [site.test/admin]}
    origins:
      files: {url: "http://ORIGIN/base", routes: [site.test/files], strip_prefix: /files}
"#;

/// `GET path` to `site.test`, sent byte for byte as written (an HTTP client library would
/// resolve the dots itself); the status and the body.
async fn get(gateway: &TestGateway, path: &str) -> (u16, String) {
    let mut stream = TcpStream::connect(proxy(gateway)).await.unwrap();
    let head = format!("GET {path} HTTP/1.1\r\nhost: site.test\r\nconnection: close\r\n\r\n");
    stream.write_all(head.as_bytes()).await.unwrap();
    let mut response = Vec::new();
    tokio::time::timeout(Duration::from_secs(10), stream.read_to_end(&mut response))
        .await
        .expect("the gateway answers and closes")
        .unwrap();
    let response = String::from_utf8_lossy(&response).into_owned();
    let (head, body) = response.split_once("\r\n\r\n").expect("a whole response");
    let status = head[9..12].parse().expect("a status line");
    (status, body.to_owned())
}

/// The metrics once `ready` holds for them: a request is counted just after its response is
/// written, so a test waits (bounded) for the count.
async fn metrics_when(gateway: &TestGateway, ready: impl Fn(&str) -> bool) -> String {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let text = gateway.handle().metrics().render();
        if ready(&text) || Instant::now() > deadline {
            return text;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

#[tokio::test]
async fn every_spelling_of_a_path_reaches_the_route_that_covers_it() {
    let origin = support::start_origin().await;
    let gateway = TestGateway::start(&PATHS.replace("ORIGIN", &origin.to_string()));
    let (status, admin) = get(&gateway, "/admin").await;
    assert_eq!(status, 200);
    assert!(admin.contains("Hello from Atoll!"), "{admin}");
    for spelling in [
        "//admin",
        "/x/../admin",
        "/./admin",
        "/x/%2e%2e/admin",
        "/x/%2E%2E/admin",
        "/%61dmin",
        "/public/..//admin",
    ] {
        let (status, body) = get(&gateway, spelling).await;
        assert_eq!(status, 200, "{spelling}: {body}");
        assert!(
            body.contains("Hello from Atoll!"),
            "{spelling} reaches admin: {body}"
        );
    }
    // The function receives the normalised path.
    let (status, body) = get(&gateway, "/a//b/./c/../d?q=1").await;
    assert_eq!(status, 200);
    let seen: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(seen["path"], "/a/b/d");
    assert_eq!(seen["query"], "q=1");
    // So does the origin, and `..` never climbs out of its base path.
    let (status, body) = get(&gateway, "/files/css/../js//app.js").await;
    assert_eq!(status, 200, "{body}");
    let seen: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(seen["path"], "/base/js/app.js");
    let (status, body) = get(&gateway, "/files/..%2f..%2fetc").await;
    assert_eq!(status, 400, "{body}");
    for refused in [
        "/..",
        "/../admin",
        "/%2e%2e/admin",
        "/admin%2fx",
        "/files/%2E%2E/%2E%2E/x",
    ] {
        let (status, body) = get(&gateway, refused).await;
        assert_eq!(status, 400, "{refused}: {body}");
        let error: Value = serde_json::from_str(&body).unwrap();
        assert_eq!(error["error"]["code"], "bad_request", "{refused}");
    }
}

#[tokio::test]
async fn a_guest_status_outside_100_to_599_is_a_502() {
    let gateway = TestGateway::start(PATHS.replace("ORIGIN", "127.0.0.1:1").as_str());
    let (status, _) = get(&gateway, "/x?status=418").await;
    assert_eq!(status, 418, "a real status passes");
    for odd in ["600", "700", "999"] {
        let (status, body) = get(&gateway, &format!("/x?status={odd}")).await;
        assert_eq!(status, 502, "{odd}: {body}");
        let error: Value = serde_json::from_str(&body).unwrap();
        assert_eq!(error["error"]["code"], "function_error");
    }
    let text = gateway.handle().metrics().render();
    assert!(
        !text.contains(r#"code="700""#),
        "never a metric label: {text}"
    );
    assert_eq!(
        metric_value(
            &text,
            r#"atoll_requests_total{code="502",function="public",tenant="site"}"#
        ),
        Some(3.0)
    );
}

/// This process's resident memory, in bytes.
fn rss() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let kib: u64 = status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap();
    kib << 10
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn unauthenticated_uploads_are_refused_without_being_read() {
    let gateway = TestGateway::start(VICTIM);
    // One 50 MiB body, shared by every upload (cloning `Bytes` copies nothing).
    let upload = bytes::Bytes::from(vec![0u8; 50 << 20]);
    let client = reqwest::Client::new();
    let before = rss();
    let started = Instant::now();
    let uploads: Vec<_> = (0..20)
        .map(|i| {
            let request = client
                .put(gateway.admin_url(&format!("/v1/tenants/victim/functions/f{i}")))
                .header("authorization", "Bearer not-a-token")
                .body(upload.clone());
            tokio::spawn(async move {
                match request.send().await {
                    Ok(response) => response.status().as_u16(),
                    // The gateway stopped reading and closed: refused all the same.
                    Err(e) => {
                        assert!(!e.is_timeout(), "{e}");
                        0
                    }
                }
            })
        })
        .collect();
    let mut statuses = Vec::new();
    for upload in uploads {
        statuses.push(upload.await.unwrap());
    }
    let took = started.elapsed();
    let grew = rss().saturating_sub(before);
    assert!(
        statuses.iter().filter(|s| **s == 401).count() >= 10,
        "refused with 401: {statuses:?}"
    );
    assert!(
        statuses.iter().all(|s| *s == 401 || *s == 0),
        "{statuses:?}"
    );
    assert!(took < Duration::from_secs(10), "refused quickly: {took:?}");
    assert!(
        grew < 20 << 20,
        "the gateway kept none of it: RSS grew {grew} bytes"
    );
}

const KV_NEIGHBOURS: &str = r#"
tenants:
  writer:
    hosts: [writer.test]
    limits: {concurrency: 64}
    functions:
      count: {wasm: "{wasm}/kv_counter.wasm", routes: [writer.test/]}
  reader:
    hosts: [reader.test]
    functions:
      count: {wasm: "{wasm}/kv_counter.wasm", routes: [reader.test/]}
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_tenant_hammering_kv_writes_leaves_anothers_reads_fast() {
    let gateway = TestGateway::start(KV_NEIGHBOURS);
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let writers: Vec<_> = (0..48)
        .map(|i| {
            let (url, stop) = (gateway.url(&format!("/k{}", i % 8)), stop.clone());
            tokio::spawn(async move {
                let client = reqwest::Client::new();
                let until = Instant::now() + Duration::from_secs(20);
                let mut written = 0u32;
                while !stop.load(std::sync::atomic::Ordering::Relaxed) && Instant::now() < until {
                    let response = client.get(&url).header("host", "writer.test").send().await;
                    if response.is_ok_and(|r| r.status() == 200) {
                        written += 1;
                    }
                }
                written
            })
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(300)).await;
    let client = reqwest::Client::new();
    let mut slowest = Duration::ZERO;
    for _ in 0..40 {
        let started = Instant::now();
        let response = client
            .get(gateway.url("/page?peek"))
            .header("host", "reader.test")
            .timeout(Duration::from_secs(5))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
        slowest = slowest.max(started.elapsed());
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let mut written = 0;
    for writer in writers {
        written += writer.await.unwrap();
    }
    assert!(written > 40, "the writer did hammer: {written} writes");
    // A generous bound, far above a read's cost, that a reader queued behind the writer's
    // backlog would pass.
    assert!(slowest < Duration::from_secs(1), "slowest read {slowest:?}");
}

const LANES: &str = r#"
tenants:
  dozer:
    hosts: [dozer.test]
    limits: {cpu_time: 1s, timeout: 10s}
    functions:
      sleepy: {wasm: "{wasm}/sleepy.wasm", routes: [dozer.test/]}
  worker:
    hosts: [worker.test]
    limits: {cpu_time: 500ms, timeout: 3s}
    functions:
      sleepy: {wasm: "{wasm}/sleepy.wasm", routes: [worker.test/]}
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_guest_waiting_in_a_host_call_gives_its_lane_back() {
    // Two proxy threads: one long-running lane. Four guests compute past two ticks (so they
    // hold the lane), then sleep 4 s; another tenant's guest that computes 50 ms must still
    // finish within its 3 s timeout.
    let gateway = TestGateway::start(LANES);
    let client = reqwest::Client::new();
    let dozers: Vec<_> = (0..4)
        .map(|_| {
            let request = client
                .get(gateway.url("/?spin=10&ms=4000"))
                .header("host", "dozer.test");
            tokio::spawn(async move { request.send().await.map(|r| r.status().as_u16()) })
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(300)).await;
    for _ in 0..3 {
        let response = client
            .get(gateway.url("/?spin=50&ms=0"))
            .header("host", "worker.test")
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200, "the worker's guest gets a lane");
    }
    for dozer in dozers {
        assert_eq!(dozer.await.unwrap().unwrap(), 200);
    }
}

#[tokio::test]
async fn per_tenant_caps_refuse_past_their_limit() {
    use reqwest::Method;
    let gateway = TestGateway::start("");
    let operator = gateway.operator_token();
    let tenant = br#"{"hosts": ["capped.test"],
        "limits": {"functions": 2, "routes": 3, "config_bytes": "64B", "tokens": 2}}"#;
    let (status, _) = support::admin_call(
        &gateway,
        Method::PUT,
        "/v1/tenants/capped",
        &operator,
        tenant.to_vec(),
    )
    .await;
    assert_eq!(status, 200);
    let hello = std::fs::read(atoll_tests::tenant_wasm("hello")).unwrap();
    let code = |body: &[u8]| -> String {
        let json: Value = serde_json::from_slice(body).unwrap_or_default();
        json["error"]["code"]
            .as_str()
            .unwrap_or_default()
            .to_owned()
    };

    // Functions: two fit, the third is refused; redeploying one that exists is not a new one.
    for (f, route) in [("a", "capped.test/a"), ("b", "capped.test/b")] {
        let path = format!("/v1/tenants/capped/functions/{f}?route={route}");
        let (status, body) =
            support::admin_call(&gateway, Method::PUT, &path, &operator, hello.clone()).await;
        assert_eq!(status, 201, "{}", String::from_utf8_lossy(&body));
    }
    let path = "/v1/tenants/capped/functions/c?route=capped.test/c";
    let (status, body) =
        support::admin_call(&gateway, Method::PUT, path, &operator, hello.clone()).await;
    assert_eq!((status, code(&body).as_str()), (409, "quota_exceeded"));
    assert!(String::from_utf8_lossy(&body).contains("limits.functions"));
    // Routes: three in all.
    let path = "/v1/tenants/capped/functions/b?route=capped.test/b&route=capped.test/b2&route=capped.test/b3";
    let (status, body) =
        support::admin_call(&gateway, Method::PUT, path, &operator, hello.clone()).await;
    assert_eq!((status, code(&body).as_str()), (409, "quota_exceeded"));
    // Config bytes: names and values together.
    let small = br#"{"k": "v"}"#.to_vec();
    let path = "/v1/tenants/capped/functions/a/config";
    assert_eq!(
        support::admin_call(&gateway, Method::PUT, path, &operator, small)
            .await
            .0,
        200
    );
    let big = format!(r#"{{"key": "{}"}}"#, "x".repeat(64)).into_bytes();
    let (status, body) = support::admin_call(&gateway, Method::PUT, path, &operator, big).await;
    assert_eq!((status, code(&body).as_str()), (409, "quota_exceeded"));
    // Tokens: two.
    for expected in [201, 201, 409] {
        let path = "/v1/tenants/capped/tokens";
        let (status, _) =
            support::admin_call(&gateway, Method::POST, path, &operator, vec![]).await;
        assert_eq!(status, expected);
    }
    // Nothing refused was kept.
    let (status, body) = support::admin_call(
        &gateway,
        Method::GET,
        "/v1/tenants/capped/functions",
        &operator,
        vec![],
    )
    .await;
    assert_eq!(status, 200);
    let functions: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(functions["functions"].as_object().unwrap().len(), 2);
    assert_eq!(
        functions["functions"]["b"]["routes"],
        serde_json::json!(["capped.test/b"])
    );
}

const GREEDY: &str = r#"
tenants:
  greedy:
    hosts: [greedy.test]
    limits: {cpu_time: 2s, timeout: 10s}
    functions:
      greedy: {wasm: "{wasm}/greedy.wasm", routes: [greedy.test/]}
"#;

#[tokio::test]
async fn what_the_host_allocates_for_a_guest_is_bounded() {
    let gateway = TestGateway::start(GREEDY);
    let ask = |what: &'static str| {
        reqwest::Client::new()
            .get(gateway.url(&format!("/?{what}")))
            .header("host", "greedy.test")
            .send()
    };
    // Resources: refused (or the guest stopped) at the table's bound, far below 50,000.
    let response = ask("resources").await.unwrap();
    let status = response.status().as_u16();
    let text = response.text().await.unwrap();
    if status == 200 {
        let held: usize = text.trim_start_matches("resources=").parse().unwrap();
        assert!(held < 10_000, "{text}");
    } else {
        assert_eq!(status, 500, "the guest trapped at the bound: {text}");
    }
    // A header value past the fields bound is refused, or stops the guest.
    let response = ask("fields").await.unwrap();
    let status = response.status().as_u16();
    let text = response.text().await.unwrap();
    assert!(
        (status, text.as_str()) == (200, "fields=refused")
            || (status == 500 && text.contains("exceeds limit")),
        "{status} {text}"
    );
    // 8 MiB of random bytes in one call is more than the host hands out.
    let status = ask("random").await.unwrap().status().as_u16();
    assert_eq!(status, 500, "the guest is stopped");
    // And the tenant still serves.
    let response = ask("resources").await.unwrap();
    assert!(response.status() == 200 || response.status() == 500);
}
