//! The proxy end to end: real components from `tenants/`, a real gateway on ephemeral ports,
//! real HTTP/1.1 and h2c clients.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::sync::OnceLock;

use atoll_tests::{DEMO_TENANTS, TestGateway};
use serde_json::Value;

/// One gateway shared by the tests of this file (they only read).
fn gateway() -> &'static TestGateway {
    static GATEWAY: OnceLock<TestGateway> = OnceLock::new();
    GATEWAY.get_or_init(|| TestGateway::start(DEMO_TENANTS))
}

fn client() -> reqwest::Client {
    reqwest::Client::builder().http1_only().build().unwrap()
}

async fn error_json(response: reqwest::Response) -> (u16, String, Value) {
    let status = response.status().as_u16();
    let request_id = response.headers()["x-request-id"]
        .to_str()
        .unwrap()
        .to_owned();
    assert_eq!(response.headers()["content-type"], "application/json");
    let body: Value = response.json().await.unwrap();
    (status, request_id, body)
}

#[tokio::test]
async fn hello_answers_with_its_text_a_length_and_a_request_id() {
    let response = client().get(gateway().url("/hello")).send().await.unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["content-length"], "18");
    assert_eq!(response.headers()["x-request-id"].len(), 32);
    assert_eq!(response.text().await.unwrap(), "Hello from Atoll!\n");
}

#[tokio::test]
async fn echo_sees_method_full_path_query_headers_and_body() {
    let response = client()
        .post(gateway().url("/echo/deeper/path?x=1&y=two"))
        .header("x-custom", "one")
        .header("content-type", "text/plain")
        .body("hello body")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let echo: Value = response.json().await.unwrap();
    assert_eq!(echo["method"], "POST");
    // No route prefix is stripped: the guest sees the original path and query.
    assert_eq!(echo["path"], "/echo/deeper/path");
    assert_eq!(echo["query"], "x=1&y=two");
    assert_eq!(echo["headers"]["x-custom"][0], "one");
    assert_eq!(echo["headers"]["content-type"][0], "text/plain");
    assert_eq!(echo["body"], "hello body");
    assert_eq!(echo["body_len"], 10);
}

#[tokio::test]
async fn other_methods_and_multi_valued_headers_reach_the_guest() {
    let response = client()
        .request(reqwest::Method::PUT, gateway().url("/echo"))
        .header("x-multi", "a")
        .header("x-multi", "b")
        .send()
        .await
        .unwrap();
    let echo: Value = response.json().await.unwrap();
    assert_eq!(echo["method"], "PUT");
    assert_eq!(echo["query"], Value::Null);
    assert_eq!(echo["headers"]["x-multi"], serde_json::json!(["a", "b"]));
}

#[tokio::test]
async fn a_large_body_goes_in_and_comes_back_whole() {
    let body: String = (0..200_000)
        .map(|i| char::from(b'a' + (i % 26) as u8))
        .collect();
    let response = client()
        .post(gateway().url("/echo"))
        .body(body.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let echo: Value = response.json().await.unwrap();
    assert_eq!(echo["body_len"], 200_000);
    assert_eq!(echo["body"], body);
}

#[tokio::test]
async fn a_sane_incoming_request_id_is_kept_and_an_odd_one_replaced() {
    let kept = client()
        .get(gateway().url("/hello"))
        .header("x-request-id", "trace-abc_123")
        .send()
        .await
        .unwrap();
    assert_eq!(kept.headers()["x-request-id"], "trace-abc_123");
    let replaced = client()
        .get(gateway().url("/hello"))
        .header("x-request-id", "has spaces and \"quotes\"")
        .send()
        .await
        .unwrap();
    assert_eq!(replaced.headers()["x-request-id"].len(), 32);
}

#[tokio::test]
async fn no_route_is_a_404_json_error() {
    for path in ["/nothing-here", "/hellox", "/"] {
        let response = client().get(gateway().url(path)).send().await.unwrap();
        let (status, request_id, body) = error_json(response).await;
        assert_eq!(status, 404, "{path}");
        assert_eq!(body["error"]["code"], "no_route");
        assert_eq!(body["error"]["request_id"], request_id);
    }
}

#[tokio::test]
async fn route_prefixes_match_at_segment_boundaries() {
    for path in ["/hello", "/hello/", "/hello/world", "/hello?x=1"] {
        let response = client().get(gateway().url(path)).send().await.unwrap();
        assert_eq!(response.status(), 200, "{path}");
    }
}

#[tokio::test]
async fn a_panicking_guest_is_a_500_function_trap() {
    let response = client().get(gateway().url("/trap")).send().await.unwrap();
    let (status, request_id, body) = error_json(response).await;
    assert_eq!(status, 500);
    assert_eq!(body["error"]["code"], "function_trap");
    assert_eq!(body["error"]["request_id"], request_id);
    // The gateway keeps serving after a trap.
    let after = client().get(gateway().url("/hello")).send().await.unwrap();
    assert_eq!(after.status(), 200);
}

#[tokio::test]
async fn a_guest_that_sets_no_response_is_a_502_function_error() {
    let response = client()
        .get(gateway().url("/noresponse"))
        .send()
        .await
        .unwrap();
    let (status, _, body) = error_json(response).await;
    assert_eq!(status, 502);
    assert_eq!(body["error"]["code"], "function_error");
}

#[tokio::test]
async fn two_hundred_parallel_requests_over_keep_alive_connections() {
    let client = reqwest::Client::builder()
        .http1_only()
        .pool_max_idle_per_host(32)
        .build()
        .unwrap();
    let requests = (0..200).map(|i| {
        let client = client.clone();
        let url = gateway().url(&format!("/echo/{i}?n={i}"));
        async move {
            let response = client.get(url).send().await.unwrap();
            assert_eq!(response.status(), 200);
            let echo: Value = response.json().await.unwrap();
            (i, echo)
        }
    });
    let answers = futures::future::join_all(requests).await;
    assert_eq!(answers.len(), 200);
    for (i, echo) in answers {
        assert_eq!(echo["path"], format!("/echo/{i}"));
        assert_eq!(echo["query"], format!("n={i}"));
    }
}

/// Reads one HTTP/1.1 response (head and body, by Content-Length or chunked) from `reader`.
fn read_response(reader: &mut BufReader<TcpStream>) -> (String, Vec<u8>) {
    let mut head = String::new();
    loop {
        let mut line = String::new();
        reader.read_line(&mut line).unwrap();
        if line == "\r\n" || line.is_empty() {
            break;
        }
        head.push_str(&line);
    }
    let header = |name: &str| {
        head.lines().find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.eq_ignore_ascii_case(name).then(|| v.trim().to_owned())
        })
    };
    let mut body = Vec::new();
    if let Some(len) = header("content-length") {
        body.resize(len.parse().unwrap(), 0);
        reader.read_exact(&mut body).unwrap();
    } else {
        assert_eq!(
            header("transfer-encoding").as_deref(),
            Some("chunked"),
            "{head}"
        );
        loop {
            let mut size = String::new();
            reader.read_line(&mut size).unwrap();
            let size = usize::from_str_radix(size.trim(), 16).unwrap();
            let mut chunk = vec![0; size + 2];
            reader.read_exact(&mut chunk).unwrap();
            if size == 0 {
                break;
            }
            body.extend_from_slice(&chunk[..size]);
        }
    }
    (head, body)
}

#[test]
fn one_connection_serves_many_requests_including_errors() {
    let stream = TcpStream::connect(gateway().handle().http_addr()).unwrap();
    stream
        .set_read_timeout(Some(std::time::Duration::from_secs(10)))
        .unwrap();
    let mut writer = stream.try_clone().unwrap();
    let mut reader = BufReader::new(stream);
    let large = "z".repeat(300_000);
    for round in 0..3 {
        for (request, expect_status, expect_body) in [
            (
                "GET /hello HTTP/1.1\r\nHost: localhost\r\n\r\n".to_owned(),
                "200",
                Some("Hello from Atoll!\n".to_owned()),
            ),
            (
                "GET /missing HTTP/1.1\r\nHost: localhost\r\n\r\n".to_owned(),
                "404",
                None,
            ),
            (
                "GET /trap HTTP/1.1\r\nHost: localhost\r\n\r\n".to_owned(),
                "500",
                None,
            ),
            (
                format!(
                    "POST /echo HTTP/1.1\r\nHost: localhost\r\nContent-Length: {}\r\n\r\n{large}",
                    large.len()
                ),
                "200",
                None,
            ),
        ] {
            writer.write_all(request.as_bytes()).unwrap();
            let (head, body) = read_response(&mut reader);
            assert!(
                head.starts_with(&format!("HTTP/1.1 {expect_status}")),
                "round {round}: {head}"
            );
            assert!(
                !head.to_ascii_lowercase().contains("connection: close"),
                "{head}"
            );
            if let Some(expected) = expect_body {
                assert_eq!(String::from_utf8(body).unwrap(), expected);
            } else if expect_status == "200" {
                let echo: Value = serde_json::from_slice(&body).unwrap();
                assert_eq!(echo["body_len"], 300_000);
            }
        }
    }
}

#[tokio::test]
async fn h2c_with_prior_knowledge() {
    let client = reqwest::Client::builder()
        .http2_prior_knowledge()
        .build()
        .unwrap();
    let requests = (0..20).map(|i| {
        let client = client.clone();
        async move {
            let response = client
                .post(gateway().url(&format!("/echo?i={i}")))
                .body(format!("body {i}"))
                .send()
                .await
                .unwrap();
            assert_eq!(response.version(), http::Version::HTTP_2);
            assert_eq!(response.status(), 200);
            assert!(response.headers().contains_key("x-request-id"));
            let echo: Value = response.json().await.unwrap();
            assert_eq!(echo["body"], format!("body {i}"));
        }
    });
    futures::future::join_all(requests).await;
    let missing = client.get(gateway().url("/missing")).send().await.unwrap();
    assert_eq!(missing.version(), http::Version::HTTP_2);
    assert_eq!(missing.status(), 404);
}

#[tokio::test]
async fn health_readiness_and_metrics_on_the_admin_listener() {
    let client = client();
    let healthz = client
        .get(gateway().admin_url("/healthz"))
        .send()
        .await
        .unwrap();
    assert_eq!(healthz.status(), 200);
    let readyz = client
        .get(gateway().admin_url("/readyz"))
        .send()
        .await
        .unwrap();
    assert_eq!(readyz.status(), 200);
    client.get(gateway().url("/hello")).send().await.unwrap();
    // The counter is recorded just after the response is written: wait for it, bounded.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    let text = loop {
        let text = client
            .get(gateway().admin_url("/metrics"))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        let served = atoll_tests::metric_value(
            &text,
            r#"atoll_requests_total{code="200",function="hello",tenant="demo"}"#,
        )
        .unwrap_or(0.0);
        if served >= 1.0 {
            break text;
        }
        assert!(std::time::Instant::now() < deadline, "{text}");
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    };
    assert_eq!(
        atoll_tests::metric_value(&text, "atoll_functions_loaded"),
        Some(4.0)
    );
}
