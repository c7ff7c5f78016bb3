//! The response cache end to end, with the `cached` component and a loopback origin: misses and
//! hits (a hit never runs the guest), expiry, `Vary`, what is never stored, `ETag` → 304, purge
//! under the tenant's token, and isolation between tenants.

mod support;

use std::time::{Duration, Instant};

use atoll_tests::{TestGateway, metric_value, tenant_wasm};
use reqwest::header::HeaderMap;
use serde_json::{Value, json};
use support::{ORIGIN_REQUESTS, admin_call, admin_json, metrics_text, start_origin};

const TENANTS: &str = r#"
tenants:
  shop:
    hosts: [shop.test]
    functions:
      cached: {wasm: "{wasm}/cached.wasm", routes: [shop.test/c]}
      split: {wasm: "{wasm}/ab_split.wasm", routes: [shop.test/ab]}
"#;

struct Reply {
    status: u16,
    headers: HeaderMap,
    body: String,
}

impl Reply {
    fn x_cache(&self) -> &str {
        self.headers
            .get("x-cache")
            .map_or("", |v| v.to_str().unwrap())
    }

    fn id(&self) -> String {
        let value: Value = serde_json::from_str(&self.body).unwrap();
        value["id"].as_str().unwrap().to_owned()
    }
}

async fn get(gateway: &TestGateway, host: &str, path: &str, headers: &[(&str, &str)]) -> Reply {
    let mut request = reqwest::Client::new()
        .get(gateway.url(path))
        .header("host", host);
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    let response = request.send().await.unwrap();
    Reply {
        status: response.status().as_u16(),
        headers: response.headers().clone(),
        body: response.text().await.unwrap(),
    }
}

async fn instantiations(gateway: &TestGateway, tenant: &str) -> f64 {
    let text = metrics_text(gateway).await;
    metric_value(
        &text,
        &format!("atoll_instantiation_duration_seconds_count{{tenant=\"{tenant}\"}}"),
    )
    .unwrap_or(0.0)
}

#[tokio::test]
async fn a_miss_fills_the_cache_and_a_hit_never_runs_the_guest() {
    let gateway = TestGateway::start(TENANTS);
    let miss = get(&gateway, "shop.test", "/c/page?max-age=60", &[]).await;
    assert_eq!((miss.status, miss.x_cache()), (200, "MISS"));
    // The miss's guest records its instantiation as its task ends, maybe just after the
    // response: wait for it, bounded.
    let deadline = Instant::now() + Duration::from_secs(10);
    while instantiations(&gateway, "shop").await < 1.0 {
        assert!(
            Instant::now() < deadline,
            "the miss never recorded its instantiation"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let ran = instantiations(&gateway, "shop").await;

    let hit = get(&gateway, "shop.test", "/c/page?max-age=60", &[]).await;
    assert_eq!((hit.status, hit.x_cache()), (200, "HIT"));
    assert_eq!(hit.id(), miss.id());
    assert!(hit.headers.contains_key("age"));
    assert_eq!(hit.headers["content-type"], "application/json");
    assert_eq!(hit.headers["x-request-id"].len(), 32);
    assert_ne!(hit.headers["x-request-id"], miss.headers["x-request-id"]);
    assert_eq!(
        instantiations(&gateway, "shop").await,
        ran,
        "a hit ran the guest"
    );

    // Another query, another host spelling with a port: the key is host, path and query.
    let other = get(&gateway, "shop.test", "/c/page?max-age=60&x=1", &[]).await;
    assert_eq!(other.x_cache(), "MISS");
    let with_port = get(&gateway, "SHOP.test:80", "/c/page?max-age=60", &[]).await;
    assert_eq!((with_port.x_cache(), with_port.id()), ("HIT", miss.id()));
}

#[tokio::test]
async fn entries_expire_at_their_max_age() {
    let gateway = TestGateway::start(TENANTS);
    let first = get(&gateway, "shop.test", "/c/short?max-age=1", &[]).await;
    assert_eq!(first.x_cache(), "MISS");
    assert_eq!(
        get(&gateway, "shop.test", "/c/short?max-age=1", &[])
            .await
            .x_cache(),
        "HIT"
    );
    // Poll until the entry is stale (about 1 s), bounded.
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let reply = get(&gateway, "shop.test", "/c/short?max-age=1", &[]).await;
        if reply.x_cache() == "MISS" {
            assert_ne!(reply.id(), first.id());
            break;
        }
        assert!(Instant::now() < deadline, "the entry never expired");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn what_may_not_be_stored_is_never_served_from_the_cache() {
    let gateway = TestGateway::start(TENANTS);
    for path in [
        "/c/a?cc=no-store",
        "/c/b?cc=private%2C%20max-age=60",
        "/c/c?cc=no-cache",
        "/c/d?cookie=1",
        "/c/e?vary=*",
    ] {
        let first = get(&gateway, "shop.test", path, &[]).await;
        let second = get(&gateway, "shop.test", path, &[]).await;
        assert_eq!(first.x_cache(), "MISS", "{path}");
        assert_eq!(second.x_cache(), "MISS", "{path}");
        assert_ne!(first.id(), second.id(), "{path}");
    }
    // A request with Authorization is not answered with a shared copy unless it is public.
    let first = get(
        &gateway,
        "shop.test",
        "/c/f?cc=max-age=60",
        &[("authorization", "Bearer x")],
    )
    .await;
    let second = get(
        &gateway,
        "shop.test",
        "/c/f?cc=max-age=60",
        &[("authorization", "Bearer x")],
    )
    .await;
    assert_ne!(first.id(), second.id());
    // Nor POSTs.
    let post = reqwest::Client::new()
        .post(gateway.url("/c/page"))
        .header("host", "shop.test")
        .send()
        .await
        .unwrap();
    assert!(post.headers().get("x-cache").is_none());
    // The A/B split is private: every visitor gets their own answer.
    let a = get(&gateway, "shop.test", "/ab", &[("cookie", "ab=a")]).await;
    let b = get(&gateway, "shop.test", "/ab", &[("cookie", "ab=b")]).await;
    assert_eq!((a.body.as_str(), a.x_cache()), ("variant a\n", "MISS"));
    assert_eq!((b.body.as_str(), b.x_cache()), ("variant b\n", "MISS"));
    let new = get(&gateway, "shop.test", "/ab", &[]).await;
    assert!(
        new.headers["set-cookie"]
            .to_str()
            .unwrap()
            .starts_with("ab=")
    );
}

#[tokio::test]
async fn vary_keeps_a_variant_per_header_value() {
    let gateway = TestGateway::start(TENANTS);
    let path = "/c/v?vary=accept-language";
    let en = get(&gateway, "shop.test", path, &[("accept-language", "en")]).await;
    let fr = get(&gateway, "shop.test", path, &[("accept-language", "fr")]).await;
    assert_eq!((en.x_cache(), fr.x_cache()), ("MISS", "MISS"));
    let en_again = get(&gateway, "shop.test", path, &[("accept-language", "en")]).await;
    let fr_again = get(&gateway, "shop.test", path, &[("accept-language", "fr")]).await;
    assert_eq!((en_again.x_cache(), en_again.id()), ("HIT", en.id()));
    assert_eq!((fr_again.x_cache(), fr_again.id()), ("HIT", fr.id()));
    let value: Value = serde_json::from_str(&fr_again.body).unwrap();
    assert_eq!(value["varied"], "fr");
    let none = get(&gateway, "shop.test", path, &[]).await;
    assert_eq!(none.x_cache(), "MISS");
}

#[tokio::test]
async fn if_none_match_on_a_hit_is_a_304_without_a_body() {
    let gateway = TestGateway::start(TENANTS);
    let path = "/c/etag?etag=abc";
    get(&gateway, "shop.test", path, &[]).await;
    let not_modified = get(&gateway, "shop.test", path, &[("if-none-match", "\"abc\"")]).await;
    assert_eq!((not_modified.status, not_modified.x_cache()), (304, "HIT"));
    assert_eq!(not_modified.headers["etag"], "\"abc\"");
    assert!(not_modified.body.is_empty());
    let changed = get(&gateway, "shop.test", path, &[("if-none-match", "\"old\"")]).await;
    assert_eq!((changed.status, changed.x_cache()), (200, "HIT"));
}

/// Purges shop's cache with `token` and `body`.
async fn purge(gateway: &TestGateway, token: &str, body: Value) -> (u16, Value) {
    let path = "/v1/tenants/shop/cache/purge";
    admin_json(
        gateway,
        reqwest::Method::POST,
        path,
        token,
        body.to_string(),
    )
    .await
}

#[tokio::test]
async fn purge_under_the_tenants_token_by_prefix_or_whole() {
    let gateway = TestGateway::start("tenants: {}\n");
    let operator = gateway.operator_token();
    let mut tokens = Vec::new();
    for tenant in ["shop", "other"] {
        let path = format!("/v1/tenants/{tenant}");
        let hosts = json!({"hosts": [format!("{tenant}.test")]}).to_string();
        let (status, _) = admin_json(&gateway, reqwest::Method::PUT, &path, &operator, hosts).await;
        assert_eq!(status, 200);
        let path = format!("/v1/tenants/{tenant}/tokens");
        let (status, body) =
            admin_json(&gateway, reqwest::Method::POST, &path, &operator, "").await;
        assert_eq!(status, 201, "{body}");
        tokens.push(body["token"].as_str().unwrap().to_owned());
    }
    let (shop, other) = (tokens[0].clone(), tokens[1].clone());
    let wasm = std::fs::read(tenant_wasm("cached")).unwrap();
    let deploy = "/v1/tenants/shop/functions/cached?route=shop.test/c";
    let (status, body) = admin_json(&gateway, reqwest::Method::PUT, deploy, &shop, wasm).await;
    assert_eq!(status, 201, "{body}");

    for path in ["/c/static/a", "/c/static/b", "/c/page"] {
        get(&gateway, "shop.test", path, &[]).await;
        assert_eq!(get(&gateway, "shop.test", path, &[]).await.x_cache(), "HIT");
    }
    // Another tenant's token may not purge shop's cache.
    let (status, _) = purge(&gateway, &other, json!({})).await;
    assert_eq!(status, 403);
    let (status, body) = purge(&gateway, &shop, json!({"prefix": "/c/static"})).await;
    assert_eq!((status, body["purged"].as_u64()), (200, Some(2)));
    assert_eq!(
        get(&gateway, "shop.test", "/c/static/a", &[])
            .await
            .x_cache(),
        "MISS"
    );
    assert_eq!(
        get(&gateway, "shop.test", "/c/page", &[]).await.x_cache(),
        "HIT"
    );
    let (status, body) = purge(&gateway, &shop, json!({})).await;
    assert_eq!((status, body["purged"].as_u64()), (200, Some(2)));
    assert_eq!(
        get(&gateway, "shop.test", "/c/page", &[]).await.x_cache(),
        "MISS"
    );
    let (status, _) = purge(&gateway, &shop, json!({"prefix": "no-slash"})).await;
    assert_eq!(status, 400);
    // The operator may purge too; an empty body means everything.
    let (status, _) = admin_json(
        &gateway,
        reqwest::Method::POST,
        "/v1/tenants/shop/cache/purge",
        &operator,
        "",
    )
    .await;
    assert_eq!(status, 200);
}

#[tokio::test]
async fn a_tenant_never_receives_another_tenants_entry_for_the_same_host_and_path() {
    let gateway = TestGateway::start("tenants: {}\n");
    let operator = gateway.operator_token();
    let put = reqwest::Method::PUT;
    for tenant in ["first", "second"] {
        let spec = json!({"hosts": ["same.test"]}).to_string();
        let path = format!("/v1/tenants/{tenant}");
        let (status, _) = admin_call(&gateway, put.clone(), &path, &operator, spec).await;
        assert_eq!(status, 200);
    }
    let cached = std::fs::read(tenant_wasm("cached")).unwrap();
    let deploy = |tenant: &str| format!("/v1/tenants/{tenant}/functions/page?route=same.test/page");
    let (status, _) = admin_call(
        &gateway,
        put.clone(),
        &deploy("first"),
        &operator,
        cached.clone(),
    )
    .await;
    assert_eq!(status, 201);
    let first = get(&gateway, "same.test", "/page", &[]).await;
    assert_eq!(
        get(&gateway, "same.test", "/page", &[]).await.x_cache(),
        "HIT"
    );

    // The route moves to the other tenant: same host, same path, its own (empty) cache.
    let path = "/v1/tenants/first/functions/page";
    let (status, _) = admin_call(&gateway, reqwest::Method::DELETE, path, &operator, "").await;
    assert_eq!(status, 204);
    let (status, _) = admin_call(&gateway, put, &deploy("second"), &operator, cached).await;
    assert_eq!(status, 201);
    let second = get(&gateway, "same.test", "/page", &[]).await;
    assert_eq!(second.x_cache(), "MISS");
    assert_ne!(second.id(), first.id());
}

#[tokio::test]
async fn origin_responses_are_cached_and_hits_do_not_reach_the_origin() {
    let origin = start_origin().await;
    let gateway = TestGateway::start(&format!(
        r#"
tenants:
  shop:
    origins:
      web: {{url: "http://127.0.0.1:{}", routes: [/cacheable, /plain]}}
"#,
        origin.port()
    ));
    let first = get(&gateway, "localhost", "/cacheable/x", &[]).await;
    assert_eq!((first.status, first.x_cache()), (200, "MISS"));
    let before = ORIGIN_REQUESTS.load(std::sync::atomic::Ordering::SeqCst);
    let hit = get(&gateway, "localhost", "/cacheable/x", &[]).await;
    assert_eq!((hit.status, hit.x_cache()), (200, "HIT"));
    assert_eq!(hit.body, first.body);
    assert_eq!(hit.headers["x-from-origin"], "yes");
    assert_eq!(
        ORIGIN_REQUESTS.load(std::sync::atomic::Ordering::SeqCst),
        before
    );
    // Without Cache-Control the origin is asked every time.
    let plain = get(&gateway, "localhost", "/plain/x", &[]).await;
    let again = get(&gateway, "localhost", "/plain/x", &[]).await;
    assert_eq!((plain.x_cache(), again.x_cache()), ("MISS", "MISS"));
}
