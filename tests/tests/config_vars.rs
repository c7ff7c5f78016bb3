//! Functions' config variables (`wasi:config/store`) end to end: set in the config file or
//! through the admin API, read by the `edge-proxy` component (its `origin`), kept across
//! restarts, listed by name only.

mod support;

use atoll_tests::TestGateway;
use serde_json::{Value, json};
use support::{admin_json, get_text, start_origin};

#[tokio::test]
async fn config_file_variables_reach_the_guest() {
    let origin = start_origin().await;
    let port = origin.port();
    let gateway = TestGateway::start(&format!(
        r#"
tenants:
  shop:
    outbound: {{allow: ["http://127.0.0.1:{port}"]}}
    functions:
      edge:
        wasm: "{{wasm}}/edge_proxy.wasm"
        routes: [/edge]
        config: {{origin: "http://127.0.0.1:{port}", unused: "x"}}
"#
    ));
    let (status, body) = get_text(&gateway, "localhost", "/edge/items?q=1").await;
    assert_eq!(status, 200, "{body}");
    let seen: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(seen["path"], "/items");
    assert_eq!(seen["query"], "q=1");
}

#[tokio::test]
async fn api_variables_are_set_listed_by_name_and_kept_across_restarts() {
    let origin = start_origin().await;
    let port = origin.port();
    let mut gateway = TestGateway::start("tenants: {}\n");
    let operator = gateway.operator_token();
    let put = reqwest::Method::PUT;
    for tenant in ["shop", "other"] {
        let spec = json!({
            "hosts": [format!("{tenant}.test")],
            "outbound": {"allow": [format!("http://127.0.0.1:{port}")]},
        });
        let (status, body) = admin_json(
            &gateway,
            put.clone(),
            &format!("/v1/tenants/{tenant}"),
            &operator,
            spec.to_string(),
        )
        .await;
        assert_eq!(status, 200, "{body}");
    }
    let (_, token) = admin_json(
        &gateway,
        reqwest::Method::POST,
        "/v1/tenants/other/tokens",
        &operator,
        "",
    )
    .await;
    let other = token["token"].as_str().unwrap().to_owned();
    let wasm = std::fs::read(atoll_tests::tenant_wasm("edge_proxy")).unwrap();
    let response = reqwest::Client::new()
        .put(gateway.admin_url("/v1/tenants/shop/functions/edge?route=shop.test/edge"))
        .bearer_auth(&operator)
        .body(wasm)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 201);

    // Without its origin the function says so.
    let (status, body) = get_text(&gateway, "shop.test", "/edge/x").await;
    assert_eq!(status, 400, "{body}");
    assert!(body.contains("origin"), "{body}");

    let config_path = "/v1/tenants/shop/functions/edge/config";
    let variables = json!({"origin": format!("http://127.0.0.1:{port}"), "api_key": "s3cr3t"});
    let (status, body) = admin_json(
        &gateway,
        put.clone(),
        config_path,
        &operator,
        variables.to_string(),
    )
    .await;
    assert_eq!(
        (status, body.clone()),
        (200, json!({"names": ["api_key", "origin"]})),
        "{body}"
    );
    let (status, body) = get_text(&gateway, "shop.test", "/edge/items").await;
    assert_eq!(status, 200, "{body}");

    // Names only, never values; another tenant's token may neither read nor write them.
    let (status, body) =
        admin_json(&gateway, reqwest::Method::GET, config_path, &operator, "").await;
    assert_eq!(
        (status, body.to_string().contains("s3cr3t")),
        (200, false),
        "{body}"
    );
    let (status, _) = admin_json(&gateway, reqwest::Method::GET, config_path, &other, "").await;
    assert_eq!(status, 403);
    let (status, _) = admin_json(&gateway, put.clone(), config_path, &other, "{}").await;
    assert_eq!(status, 403);

    // Bad names are refused and change nothing.
    let (status, body) = admin_json(
        &gateway,
        put.clone(),
        config_path,
        &operator,
        json!({"bad name": "x"}).to_string(),
    )
    .await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (400, Some("invalid_config")),
        "{body}"
    );
    let (status, body) = admin_json(&gateway, put.clone(), config_path, &operator, "[1, 2]").await;
    assert_eq!(status, 400, "{body}");
    let (status, _) = get_text(&gateway, "shop.test", "/edge/items").await;
    assert_eq!(status, 200);

    gateway.restart();
    let (status, body) = get_text(&gateway, "shop.test", "/edge/items").await;
    assert_eq!(status, 200, "after a restart: {body}");

    // Emptying the variables takes effect at once.
    let (status, _) = admin_json(&gateway, put, config_path, &operator, "{}").await;
    assert_eq!(status, 200);
    let (status, _) = get_text(&gateway, "shop.test", "/edge/items").await;
    assert_eq!(status, 400);
}
