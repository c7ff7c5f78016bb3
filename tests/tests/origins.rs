//! Origin routes end to end: Pingora proxying a tenant's routes to real origins on loopback,
//! over HTTP and over TLS verified with a CA made in the test, with the path and `Host`
//! rewritten, and 502 or 504 JSON errors when the origin fails.

mod support;

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use atoll_tests::{TestGateway, metric_value};
use serde_json::Value;
use support::{metrics_text, start_origin, start_tls_origin};

fn client() -> reqwest::Client {
    reqwest::Client::builder().http1_only().build().unwrap()
}

/// `web` proxies `/static` to the origin's `/base`, stripping `/static`, with the origin's own
/// `Host`; `raw` proxies `/raw` whole with the client's `Host`; `slow` gives up reading after
/// 300 ms; `gone` points at a port nobody listens on.
fn gateway(origin: SocketAddr, closed_port: u16) -> TestGateway {
    let port = origin.port();
    TestGateway::start(&format!(
        r#"
tenants:
  shop:
    hosts: [localhost]
    origins:
      web: {{url: "http://127.0.0.1:{port}/base", routes: [/static], strip_prefix: /static}}
      raw: {{url: "http://127.0.0.1:{port}", routes: [/raw], host: incoming}}
      slow: {{url: "http://127.0.0.1:{port}", routes: [/hang], read_timeout: 300ms}}
      gone: {{url: "http://127.0.0.1:{closed_port}", routes: [/gone], connect_timeout: 1s}}
"#
    ))
}

/// A port that refuses connections: bound, then released.
fn closed_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap().port()
}

/// Waits, bounded, until `series` reads `value`: an origin request is recorded as it ends,
/// which may be just after the client has its response.
async fn wait_for_metric(gateway: &TestGateway, series: &str, value: f64) {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let text = metrics_text(gateway).await;
        if metric_value(&text, series) == Some(value) {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{series} never read {value}:\n{text}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn an_origin_gets_the_rewritten_path_its_host_and_the_forwarding_headers() {
    let origin = start_origin().await;
    let gateway = gateway(origin, closed_port());
    let response = client()
        .get(gateway.url("/static/css/site.css?v=3"))
        .header("x-custom", "kept")
        .header("x-request-id", "trace-me-123")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["x-from-origin"], "yes");
    assert_eq!(response.headers()["x-request-id"], "trace-me-123");
    let seen: Value = response.json().await.unwrap();
    assert_eq!(seen["path"], "/base/css/site.css");
    assert_eq!(seen["query"], "v=3");
    assert_eq!(seen["host"], format!("127.0.0.1:{}", origin.port()));
    assert_eq!(seen["custom"], "kept");
    assert_eq!(seen["request_id"], "trace-me-123");
    assert_eq!(seen["forwarded_for"], "127.0.0.1");
    let host = gateway.url("").trim_start_matches("http://").to_owned();
    assert_eq!(seen["forwarded_host"], host);

    // The client's Host, for the origin that asks for it; the path whole.
    let seen: Value = client()
        .post(gateway.url("/raw/x"))
        .body("payload")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(seen["method"], "POST");
    assert_eq!(seen["path"], "/raw/x");
    assert_eq!(seen["host"], host);

    wait_for_metric(
        &gateway,
        "atoll_requests_total{code=\"200\",function=\"web\",tenant=\"shop\"}",
        1.0,
    )
    .await;
}

async fn error_of(response: reqwest::Response) -> (u16, String, String) {
    let status = response.status().as_u16();
    let request_id = response.headers()["x-request-id"]
        .to_str()
        .unwrap()
        .to_owned();
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"]["request_id"], request_id.as_str());
    (
        status,
        body["error"]["code"].as_str().unwrap().to_owned(),
        request_id,
    )
}

#[tokio::test]
async fn an_unreachable_origin_is_a_502_and_a_silent_one_a_504() {
    let origin = start_origin().await;
    let gateway = gateway(origin, closed_port());
    let (status, code, _) =
        error_of(client().get(gateway.url("/gone")).send().await.unwrap()).await;
    assert_eq!((status, code.as_str()), (502, "origin_unreachable"));

    let started = Instant::now();
    let (status, code, _) =
        error_of(client().get(gateway.url("/hang")).send().await.unwrap()).await;
    assert_eq!((status, code.as_str()), (504, "origin_timeout"));
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );

    wait_for_metric(
        &gateway,
        "atoll_requests_total{code=\"502\",function=\"gone\",tenant=\"shop\"}",
        1.0,
    )
    .await;
    wait_for_metric(
        &gateway,
        "atoll_requests_total{code=\"504\",function=\"slow\",tenant=\"shop\"}",
        1.0,
    )
    .await;
    // The gateway still serves the healthy origin afterwards.
    let response = client()
        .get(gateway.url("/static/ok"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
}

#[tokio::test]
async fn tls_origins_are_verified_with_their_ca_file_and_refused_without_it() {
    let (origin, ca_pem) = start_tls_origin().await;
    let dir = tempfile::tempdir().unwrap();
    let ca_file = dir.path().join("origin-ca.pem");
    std::fs::write(&ca_file, ca_pem).unwrap();
    let port = origin.port();
    let gateway = TestGateway::start(&format!(
        r#"
tenants:
  secure:
    origins:
      trusted: {{url: "https://127.0.0.1:{port}", routes: [/trusted], ca_file: {ca}}}
      untrusted: {{url: "https://127.0.0.1:{port}", routes: [/untrusted]}}
"#,
        ca = ca_file.display()
    ));
    let response = client()
        .get(gateway.url("/trusted/x"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.text().await.unwrap(), "secure hello");

    let (status, code, _) = error_of(
        client()
            .get(gateway.url("/untrusted/x"))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!((status, code.as_str()), (502, "origin_unreachable"));
}

#[test]
fn a_bad_origin_ca_file_stops_start_up_with_its_key() {
    let dir = tempfile::tempdir().unwrap();
    let ca = dir.path().join("bad.pem");
    std::fs::write(&ca, "no certificate here\n").unwrap();
    let yaml = format!(
        "tenants:\n  t:\n    origins:\n      o: {{url: 'https://origin.example', routes: [/o], ca_file: {}}}\n",
        ca.display()
    );
    let config = atoll_tests::test_config(&yaml, dir.path()).unwrap();
    let error = format!(
        "{:#}",
        atoll_gateway::ServerHandle::start(config).unwrap_err()
    );
    assert!(error.contains("tenants.t.origins.o"), "{error}");
    assert!(error.contains("no certificate"), "{error}");
}
