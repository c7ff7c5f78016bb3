//! Metrics after a scripted mix of traffic across two tenants: exact counter values per tenant
//! and function, and series removed with what they describe.

use std::time::{Duration, Instant};

use atoll_tests::{TestGateway, metric_value, tenant_wasm};

const TENANTS: &str = r#"
tenants:
  a:
    hosts: [a.test]
    limits: {cpu_time: 20ms}
    functions:
      hello: {wasm: "{wasm}/hello.wasm", routes: [a.test/hello]}
      trap: {wasm: "{wasm}/trap.wasm", routes: [a.test/trap]}
      spin: {wasm: "{wasm}/spin.wasm", routes: [a.test/spin]}
  b:
    hosts: [b.test]
    limits: {request_body: 16B}
    functions:
      echo: {wasm: "{wasm}/echo.wasm", routes: [b.test/echo]}
      hello: {wasm: "{wasm}/hello.wasm", routes: [b.test/hello]}
"#;

async fn hit(gateway: &TestGateway, host: &str, path: &str, body: &str, times: usize) -> u16 {
    let client = reqwest::Client::new();
    let mut status = 0;
    for _ in 0..times {
        status = client
            .post(gateway.url(path))
            .header("host", host)
            .body(body.to_owned())
            .send()
            .await
            .unwrap()
            .status()
            .as_u16();
    }
    status
}

/// The metrics once `ready` holds for them: counters are recorded just after a response is
/// written and guests report when their task ends, so a test waits (bounded) for both.
async fn metrics_when(gateway: &TestGateway, ready: impl Fn(&str) -> bool) -> String {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let text = gateway.handle().metrics().render();
        if ready(&text) {
            return text;
        }
        assert!(
            Instant::now() < deadline,
            "the metrics never settled:\n{text}"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

fn value(text: &str, series: &str) -> f64 {
    metric_value(text, series).unwrap_or_else(|| panic!("no series {series} in:\n{text}"))
}

#[tokio::test]
async fn counters_are_exact_per_tenant_and_function() {
    let gateway = TestGateway::start(TENANTS);
    assert_eq!(hit(&gateway, "a.test", "/hello", "", 3).await, 200);
    assert_eq!(hit(&gateway, "a.test", "/trap", "", 2).await, 500);
    assert_eq!(hit(&gateway, "a.test", "/spin", "", 1).await, 503);
    assert_eq!(
        hit(&gateway, "b.test", "/echo", &"x".repeat(100), 2).await,
        413
    );
    assert_eq!(hit(&gateway, "b.test", "/hello", "", 1).await, 200);
    assert_eq!(hit(&gateway, "c.test", "/nowhere", "", 4).await, 404);

    // Guests report when their task ends; wait for the last one, bounded.
    let deadline = Instant::now() + Duration::from_secs(10);
    let text = loop {
        let text = gateway.handle().metrics().render();
        if metric_value(&text, r#"atoll_instances_active{tenant="a"}"#) == Some(0.0)
            && metric_value(
                &text,
                r#"atoll_instantiation_duration_seconds_count{tenant="a"}"#,
            ) == Some(6.0)
        {
            break text;
        }
        assert!(Instant::now() < deadline, "guests never finished:\n{text}");
        tokio::time::sleep(Duration::from_millis(5)).await;
    };

    let requests = |tenant: &str, function: &str, code: u16| {
        value(
            &text,
            &format!(
                r#"atoll_requests_total{{code="{code}",function="{function}",tenant="{tenant}"}}"#
            ),
        )
    };
    assert_eq!(requests("a", "hello", 200), 3.0);
    assert_eq!(requests("a", "trap", 500), 2.0);
    assert_eq!(requests("a", "spin", 503), 1.0);
    assert_eq!(requests("b", "echo", 413), 2.0);
    assert_eq!(requests("b", "hello", 200), 1.0);
    assert_eq!(requests("b", "echo", 200), 0.0);
    assert!(
        !text.contains("c.test") && !text.contains("nowhere"),
        "no labels for unrouted requests"
    );

    assert_eq!(
        value(
            &text,
            r#"atoll_wasm_traps_total{function="trap",reason="trap",tenant="a"}"#
        ),
        2.0
    );
    assert_eq!(
        value(
            &text,
            r#"atoll_wasm_traps_total{function="spin",reason="cpu",tenant="a"}"#
        ),
        1.0
    );
    assert_eq!(
        value(
            &text,
            r#"atoll_limit_rejections_total{limit="cpu",tenant="a"}"#
        ),
        1.0
    );
    assert_eq!(
        value(
            &text,
            r#"atoll_limit_rejections_total{limit="request_body",tenant="b"}"#
        ),
        2.0
    );
    assert_eq!(
        value(
            &text,
            r#"atoll_request_duration_seconds_count{function="hello",tenant="a"}"#
        ),
        3.0
    );
    assert_eq!(
        value(
            &text,
            r#"atoll_instantiation_duration_seconds_count{tenant="b"}"#
        ),
        1.0
    );
    assert_eq!(
        value(&text, r#"atoll_wasm_memory_peak_bytes_count{tenant="a"}"#),
        6.0
    );
    assert!(
        value(
            &text,
            r#"atoll_execution_seconds_total{function="spin",tenant="a"}"#
        ) >= 0.02
    );
    assert!(
        value(
            &text,
            r#"atoll_execution_seconds_total{function="hello",tenant="a"}"#
        ) > 0.0
    );
    assert_eq!(value(&text, "atoll_functions_loaded"), 5.0);
}

#[tokio::test]
async fn deploys_are_counted_and_deleted_functions_leave_no_series() {
    let gateway = TestGateway::start(TENANTS);
    let operator = gateway.operator_token();
    let client = reqwest::Client::new();
    let admin = |path: &str| gateway.admin_url(path);
    let status = client
        .put(admin("/v1/tenants/c"))
        .bearer_auth(&operator)
        .body(r#"{"hosts": ["c.test"]}"#)
        .send()
        .await
        .unwrap()
        .status();
    assert_eq!(status, 200);
    let hello = std::fs::read(tenant_wasm("hello")).unwrap();
    let ok = client
        .put(admin("/v1/tenants/c/functions/x?route=c.test/x"))
        .bearer_auth(&operator)
        .body(hello)
        .send()
        .await
        .unwrap();
    assert_eq!(ok.status(), 201);
    let bad = client
        .put(admin("/v1/tenants/c/functions/y"))
        .bearer_auth(&operator)
        .body("not wasm")
        .send()
        .await
        .unwrap();
    assert_eq!(bad.status(), 400);
    assert_eq!(hit(&gateway, "c.test", "/x", "", 2).await, 200);

    let text = metrics_when(&gateway, |text| {
        metric_value(
            text,
            r#"atoll_requests_total{code="200",function="x",tenant="c"}"#,
        ) == Some(2.0)
    })
    .await;
    assert_eq!(
        value(&text, r#"atoll_deployments_total{result="ok",tenant="c"}"#),
        1.0
    );
    assert_eq!(
        value(
            &text,
            r#"atoll_deployments_total{result="invalid",tenant="c"}"#
        ),
        1.0
    );
    assert_eq!(
        value(
            &text,
            r#"atoll_requests_total{code="200",function="x",tenant="c"}"#
        ),
        2.0
    );
    assert_eq!(value(&text, "atoll_functions_loaded"), 6.0);

    let deleted = client
        .delete(admin("/v1/tenants/c/functions/x"))
        .bearer_auth(&operator)
        .send()
        .await
        .unwrap();
    assert_eq!(deleted.status(), 204);
    let text = gateway.handle().metrics().render();
    assert!(!text.contains(r#"function="x""#), "{text}");
    assert_eq!(value(&text, "atoll_functions_loaded"), 5.0);

    let deleted = client
        .delete(admin("/v1/tenants/c"))
        .bearer_auth(&operator)
        .send()
        .await
        .unwrap();
    assert_eq!(deleted.status(), 204);
    let text = gateway.handle().metrics().render();
    assert!(!text.contains(r#"tenant="c""#), "{text}");
}
