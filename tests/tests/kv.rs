//! Key-value storage end to end with the `kv-counter` component: tenants' namespaces apart (same
//! keys, different values), persistence across a restart, quota errors, an atomic increment
//! under 200 concurrent requests that ends exact, and the admin calls that list, read and
//! delete a tenant's keys.

mod support;

use atoll_tests::{TestGateway, tenant_wasm};
use serde_json::{Value, json};
use support::{admin_call, get_text};

fn json_of(body: &[u8]) -> Value {
    serde_json::from_slice(body).unwrap_or(Value::Null)
}

/// Tenants `a` and `b` (hosts `a.test`, `b.test`), each counting with `kv-counter` on `/`;
/// returns their tokens.
async fn two_counting_tenants(gateway: &TestGateway) -> (String, String) {
    let operator = gateway.operator_token();
    let put = reqwest::Method::PUT;
    let mut tokens = Vec::new();
    for tenant in ["a", "b"] {
        let spec = json!({"hosts": [format!("{tenant}.test")]}).to_string();
        let path = format!("/v1/tenants/{tenant}");
        let (status, _) =
            admin_call(gateway, put.clone(), &path, &operator, spec.into_bytes()).await;
        assert_eq!(status, 200);
        let path = format!("/v1/tenants/{tenant}/tokens");
        let (_, body) = admin_call(gateway, reqwest::Method::POST, &path, &operator, "").await;
        tokens.push(json_of(&body)["token"].as_str().unwrap().to_owned());
        let path = format!("/v1/tenants/{tenant}/functions/counter?route={tenant}.test/");
        let wasm = std::fs::read(tenant_wasm("kv_counter")).unwrap();
        let (status, body) = admin_call(gateway, put.clone(), &path, &operator, wasm).await;
        assert_eq!(status, 201, "{}", String::from_utf8_lossy(&body));
    }
    (tokens[0].clone(), tokens[1].clone())
}

#[tokio::test]
async fn tenants_keep_their_own_values_for_the_same_keys_and_across_a_restart() {
    let mut gateway = TestGateway::start("tenants: {}\n");
    let (a, b) = two_counting_tenants(&gateway).await;
    for expected in ["1\n", "2\n", "3\n"] {
        assert_eq!(
            get_text(&gateway, "a.test", "/page").await,
            (200, expected.to_owned())
        );
    }
    assert_eq!(
        get_text(&gateway, "b.test", "/page").await,
        (200, "1\n".to_owned())
    );

    // The admin calls see each tenant's own keys, and only with its token.
    let get = reqwest::Method::GET;
    let (status, body) = admin_call(
        &gateway,
        get.clone(),
        "/v1/tenants/a/kv?bucket=visits",
        &a,
        "",
    )
    .await;
    let listing = json_of(&body);
    assert_eq!(status, 200, "{listing}");
    assert_eq!(listing["keys"], json!(["/page"]));
    assert_eq!(listing["usage"]["keys"], 1);
    let (status, value) = admin_call(
        &gateway,
        get.clone(),
        "/v1/tenants/a/kv/visits//page",
        &a,
        "",
    )
    .await;
    assert_eq!((status, value.as_slice()), (200, &b"3"[..]));
    let (status, _) = admin_call(
        &gateway,
        get.clone(),
        "/v1/tenants/a/kv/visits//page",
        &b,
        "",
    )
    .await;
    assert_eq!(status, 403);

    gateway.restart();
    assert_eq!(
        get_text(&gateway, "a.test", "/page").await,
        (200, "4\n".to_owned())
    );
    assert_eq!(
        get_text(&gateway, "b.test", "/page?peek").await,
        (200, "1\n".to_owned())
    );

    // Deleting a key through the API resets it; deleting the tenant deletes its data.
    let delete = reqwest::Method::DELETE;
    let (status, _) = admin_call(
        &gateway,
        delete.clone(),
        "/v1/tenants/a/kv/visits//page",
        &a,
        "",
    )
    .await;
    assert_eq!(status, 204);
    let (status, _) = admin_call(
        &gateway,
        delete.clone(),
        "/v1/tenants/a/kv/visits//page",
        &a,
        "",
    )
    .await;
    assert_eq!(status, 404);
    assert_eq!(
        get_text(&gateway, "a.test", "/page").await,
        (200, "1\n".to_owned())
    );
    let operator = gateway.operator_token();
    let (status, _) = admin_call(&gateway, delete, "/v1/tenants/b", &operator, "").await;
    assert_eq!(status, 204);
    let (status, body) = admin_call(&gateway, get, "/v1/tenants/a/kv", &operator, "").await;
    assert_eq!(
        (status, json_of(&body)["keys"].clone()),
        (200, json!(["visits//page"]))
    );
}

#[tokio::test]
async fn a_quota_refuses_the_write_with_a_clear_error() {
    let gateway = TestGateway::start(
        r#"
kv: {max_keys: 2}
tenants:
  small:
    functions:
      counter: {wasm: "{wasm}/kv_counter.wasm", routes: [/]}
"#,
    );
    assert_eq!(get_text(&gateway, "localhost", "/one").await.0, 200);
    assert_eq!(get_text(&gateway, "localhost", "/two").await.0, 200);
    let (status, body) = get_text(&gateway, "localhost", "/three").await;
    assert_eq!(status, 500, "{body}");
    assert!(body.contains("quota exceeded"), "{body}");
    assert!(body.contains("2 keys"), "{body}");
    // Existing keys still count.
    assert_eq!(
        get_text(&gateway, "localhost", "/one").await,
        (200, "2\n".to_owned())
    );
}

#[tokio::test]
async fn two_hundred_concurrent_increments_end_exact() {
    let gateway = TestGateway::start(
        r#"
tenants:
  busy:
    limits: {concurrency: 200, queue_wait: 10s}
    functions:
      counter: {wasm: "{wasm}/kv_counter.wasm", routes: [/]}
"#,
    );
    let client = reqwest::Client::new();
    let requests = (0..200).map(|_| {
        let request = client.get(gateway.url("/hits")).send();
        async move {
            let response = request.await.unwrap();
            assert_eq!(response.status(), 200);
            response
                .text()
                .await
                .unwrap()
                .trim()
                .parse::<u64>()
                .unwrap()
        }
    });
    let mut seen = futures::future::join_all(requests).await;
    seen.sort_unstable();
    assert_eq!(
        seen,
        (1..=200).collect::<Vec<u64>>(),
        "every increment got its own value"
    );
    assert_eq!(
        get_text(&gateway, "localhost", "/hits?peek").await,
        (200, "200\n".to_owned())
    );
}

#[tokio::test]
async fn json_api_creates_reads_updates_lists_and_deletes_notes() {
    let gateway = TestGateway::start(
        r#"
tenants:
  notes:
    functions:
      api: {wasm: "{wasm}/json_api.wasm", routes: [/notes]}
"#,
    );
    let client = reqwest::Client::new();
    let url = |path: &str| gateway.url(path);
    let created: Value = client
        .post(url("/notes"))
        .body(r#"{"text": "buy milk"}"#)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(created, json!({"id": "1", "text": "buy milk"}));
    let second = client
        .post(url("/notes"))
        .body(r#"{"text": "call ann"}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(second.status(), 201);

    let one: Value = client
        .get(url("/notes/1"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(one["text"], "buy milk");
    let updated = client
        .put(url("/notes/1"))
        .body(r#"{"text": "buy oat milk"}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(updated.status(), 200);
    let list: Value = client
        .get(url("/notes"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        list["notes"],
        json!([{"id": "1", "text": "buy oat milk"}, {"id": "2", "text": "call ann"}])
    );
    assert_eq!(
        client
            .delete(url("/notes/2"))
            .send()
            .await
            .unwrap()
            .status(),
        204
    );
    assert_eq!(
        client.get(url("/notes/2")).send().await.unwrap().status(),
        404
    );
    assert_eq!(
        client
            .put(url("/notes/9"))
            .body("{}")
            .send()
            .await
            .unwrap()
            .status(),
        404
    );
    assert_eq!(
        client
            .post(url("/notes"))
            .body("[1]")
            .send()
            .await
            .unwrap()
            .status(),
        400
    );
}
