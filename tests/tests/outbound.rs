//! Guests' outbound HTTP end to end: the `edge-proxy` component fetching a real origin on
//! loopback through the gateway, under each tenant's `outbound.allow`, the SSRF check, the
//! per-request cap and the timeouts, with every call counted in
//! `atoll_outbound_requests_total`.

use std::net::SocketAddr;
use std::time::Duration;

mod support;

use atoll_tests::{TestGateway, metric_value};
use serde_json::Value;
use support::{metrics_text, start_origin, start_tls_origin};

/// Three tenants mounting `edge-proxy` on their own path: `named` allows the origin by its
/// address, `byname` only by the name `localhost` (which resolves to loopback), `none` allows
/// nothing. `gateway_outbound` is the top-level `outbound:` section.
fn start_gateway(origin: SocketAddr, gateway_outbound: &str) -> TestGateway {
    let port = origin.port();
    TestGateway::start(&format!(
        r#"
outbound: {gateway_outbound}
tenants:
  named:
    outbound: {{allow: ["http://127.0.0.1:{port}", "https://*.example.com"]}}
    functions:
      edge: {{wasm: "{{wasm}}/edge_proxy.wasm", routes: [/named]}}
  byname:
    outbound: {{allow: ["http://localhost:{port}"]}}
    functions:
      edge: {{wasm: "{{wasm}}/edge_proxy.wasm", routes: [/byname]}}
  none:
    functions:
      edge: {{wasm: "{{wasm}}/edge_proxy.wasm", routes: [/none]}}
"#
    ))
}

async fn get(
    gateway: &TestGateway,
    path: &str,
    origin: &str,
) -> (u16, String, reqwest::header::HeaderMap) {
    let response = reqwest::Client::new()
        .get(gateway.url(path))
        .header("x-origin", origin)
        .header("x-custom", "kept")
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    (status, response.text().await.unwrap(), headers)
}

async fn outbound_count(gateway: &TestGateway, tenant: &str, result: &str) -> f64 {
    let text = metrics_text(gateway).await;
    metric_value(
        &text,
        &format!("atoll_outbound_requests_total{{result=\"{result}\",tenant=\"{tenant}\"}}"),
    )
    .unwrap_or(0.0)
}

#[tokio::test]
async fn an_allowed_origin_is_fetched_with_the_rewritten_request() {
    let origin = start_origin().await;
    let gateway = start_gateway(origin, "{}");
    let (status, body, headers) = get(
        &gateway,
        "/named/items/7?color=blue",
        &format!("http://127.0.0.1:{}", origin.port()),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(headers["x-edge"], "atoll");
    assert_eq!(headers["x-from-origin"], "yes");
    let seen: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(seen["method"], "GET");
    assert_eq!(seen["path"], "/items/7");
    assert_eq!(seen["query"], "color=blue");
    assert_eq!(seen["host"], format!("127.0.0.1:{}", origin.port()));
    assert_eq!(seen["custom"], "kept");
    assert_eq!(seen["origin_header"], Value::Null);
    assert!(
        seen["forwarded_host"]
            .as_str()
            .unwrap()
            .starts_with("127.0.0.1:")
    );
    assert_eq!(outbound_count(&gateway, "named", "ok").await, 1.0);
    assert_eq!(outbound_count(&gateway, "named", "denied").await, 0.0);
}

#[tokio::test]
async fn calls_outside_the_allowlist_fail_in_the_guest_with_http_request_denied() {
    let origin = start_origin().await;
    let gateway = start_gateway(origin, "{}");
    let port = origin.port();
    // Another port of the same address, another scheme, a tenant without an allowlist.
    for (path, target) in [
        (
            "/named/x",
            format!("http://127.0.0.1:{}", port.wrapping_add(1).max(1)),
        ),
        ("/named/x", format!("https://127.0.0.1:{port}")),
        ("/none/x", format!("http://127.0.0.1:{port}")),
    ] {
        let (status, body, _) = get(&gateway, path, &target).await;
        assert_eq!(status, 502, "{path} {target}: {body}");
        assert!(
            body.contains("HttpRequestDenied"),
            "{path} {target}: {body}"
        );
    }
    assert_eq!(outbound_count(&gateway, "named", "denied").await, 2.0);
    assert_eq!(outbound_count(&gateway, "none", "denied").await, 1.0);
    assert_eq!(outbound_count(&gateway, "named", "ok").await, 0.0);
}

#[tokio::test]
async fn a_name_that_resolves_to_loopback_is_denied_even_when_allowed() {
    let origin = start_origin().await;
    let gateway = start_gateway(origin, "{}");
    let port = origin.port();
    // `localhost` is in byname's allowlist, but it resolves to 127.0.0.1: no SSRF by name.
    let (status, body, _) = get(&gateway, "/byname/x", &format!("http://localhost:{port}")).await;
    assert_eq!(status, 502, "{body}");
    assert!(body.contains("HttpRequestDenied"), "{body}");
    // Nor by address: byname never named 127.0.0.1.
    let (status, body, _) = get(&gateway, "/byname/x", &format!("http://127.0.0.1:{port}")).await;
    assert_eq!(status, 502, "{body}");
    assert!(body.contains("HttpRequestDenied"), "{body}");
    assert_eq!(outbound_count(&gateway, "byname", "denied").await, 2.0);
}

#[tokio::test]
async fn a_silent_origin_fails_the_call_at_the_first_byte_timeout() {
    let origin = start_origin().await;
    let gateway = start_gateway(origin, "{first_byte_timeout: 300ms}");
    let started = std::time::Instant::now();
    let (status, body, _) = get(
        &gateway,
        "/named/hang",
        &format!("http://127.0.0.1:{}", origin.port()),
    )
    .await;
    assert_eq!(status, 502, "{body}");
    assert!(body.contains("ConnectionReadTimeout"), "{body}");
    // Well before the tenant's 10 s wall-clock timeout.
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(outbound_count(&gateway, "named", "error").await, 1.0);
}

#[tokio::test]
async fn calls_past_the_per_request_cap_are_denied() {
    let origin = start_origin().await;
    let gateway = start_gateway(origin, "{max_requests: 0}");
    let (status, body, _) = get(
        &gateway,
        "/named/x",
        &format!("http://127.0.0.1:{}", origin.port()),
    )
    .await;
    assert_eq!(status, 502, "{body}");
    assert!(body.contains("HttpRequestDenied"), "{body}");
    assert_eq!(outbound_count(&gateway, "named", "denied").await, 1.0);
}

#[test]
fn a_ca_file_that_holds_no_certificate_stops_start_up_with_its_name() {
    let dir = tempfile::tempdir().unwrap();
    let ca = dir.path().join("ca.pem");
    std::fs::write(&ca, "not a certificate\n").unwrap();
    let yaml = format!("outbound: {{ca_file: {}}}\ntenants: {{}}\n", ca.display());
    let config = atoll_tests::test_config(&yaml, dir.path()).unwrap();
    let error = format!(
        "{:#}",
        atoll_gateway::ServerHandle::start(config).unwrap_err()
    );
    assert!(error.contains("outbound.ca_file"), "{error}");
    assert!(error.contains("ca.pem"), "{error}");
}

#[tokio::test]
async fn https_origins_are_verified_against_the_roots_and_the_ca_file() {
    let (origin, ca_pem) = start_tls_origin().await;
    let dir = tempfile::tempdir().unwrap();
    let ca_file = dir.path().join("test-ca.pem");
    std::fs::write(&ca_file, ca_pem).unwrap();
    let tenants = |gateway_outbound: &str| {
        format!(
            r#"
outbound: {gateway_outbound}
tenants:
  secure:
    outbound: {{allow: ["https://127.0.0.1:{port}"]}}
    functions:
      edge: {{wasm: "{{wasm}}/edge_proxy.wasm", routes: [/secure]}}
"#,
            port = origin.port()
        )
    };
    let target = format!("https://127.0.0.1:{}", origin.port());

    // Trusting the test CA: the certificate for 127.0.0.1 verifies.
    let trusting = TestGateway::start(&tenants(&format!("{{ca_file: {}}}", ca_file.display())));
    let (status, body, headers) = get(&trusting, "/secure/x", &target).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body, "secure hello");
    assert_eq!(headers["x-edge"], "atoll");
    assert_eq!(outbound_count(&trusting, "secure", "ok").await, 1.0);

    // With the Mozilla roots alone, the same origin is refused.
    let default_roots = TestGateway::start(&tenants("{}"));
    let (status, body, _) = get(&default_roots, "/secure/x", &target).await;
    assert_eq!(status, 502, "{body}");
    assert!(body.contains("TlsCertificateError"), "{body}");
    assert_eq!(outbound_count(&default_roots, "secure", "error").await, 1.0);
}
