//! The example gallery end to end: components written without atoll-sdk (`raw-wasip2` on the
//! `wasip2` crate's bindings, `wstd-hello` on `wstd`), and `redirect`, `jwt-check` and
//! `markdown` configured through their config variables.

use atoll_tests::TestGateway;
use serde_json::{Value, json};

const TENANTS: &str = r#"
tenants:
  gallery:
    functions:
      raw: {wasm: "{wasm}/raw_wasip2.wasm", routes: [/raw]}
      wstd: {wasm: "{wasm}/wstd-hello.wasm", routes: [/wstd]}
      redirect:
        wasm: "{wasm}/redirect.wasm"
        routes: [/r]
        config: {rules: "path /r/old /new 301\nheader user-agent Mobile https://m.example.com 302"}
      jwt:
        wasm: "{wasm}/jwt_check.wasm"
        routes: [/api]
        config: {jwt_secret: "edge-secret"}
      markdown: {wasm: "{wasm}/markdown.wasm", routes: [/md]}
"#;

fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

#[tokio::test]
async fn components_not_built_with_the_sdk_run_too() {
    let gateway = TestGateway::start(TENANTS);
    let raw = client()
        .get(gateway.url("/raw/x?y=1"))
        .send()
        .await
        .unwrap();
    assert_eq!(raw.status(), 200);
    assert_eq!(
        raw.text().await.unwrap(),
        "Hello from raw wasip2 at /raw/x?y=1\n"
    );
    let wstd = client().get(gateway.url("/wstd/z")).send().await.unwrap();
    assert_eq!(wstd.status(), 200);
    assert_eq!(wstd.text().await.unwrap(), "Hello from wstd at /wstd/z\n");
}

#[tokio::test]
async fn redirect_follows_its_rules_by_path_and_by_header() {
    let gateway = TestGateway::start(TENANTS);
    let moved = client()
        .get(gateway.url("/r/old/a?x=1"))
        .send()
        .await
        .unwrap();
    assert_eq!(moved.status(), 301);
    assert_eq!(moved.headers()["location"], "/new/a?x=1");
    let mobile = client()
        .get(gateway.url("/r/page"))
        .header("user-agent", "Mobile Safari")
        .send()
        .await
        .unwrap();
    assert_eq!(mobile.status(), 302);
    assert_eq!(mobile.headers()["location"], "https://m.example.com/r/page");
    let none = client()
        .get(gateway.url("/r/elsewhere"))
        .send()
        .await
        .unwrap();
    assert_eq!(none.status(), 404);
}

/// An HS256 JWT of `claims` signed with `secret`.
fn jwt(claims: Value, secret: &[u8]) -> String {
    fn base64url(bytes: &[u8]) -> String {
        const ALPHABET: &[u8; 64] =
            b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
        let mut out = String::new();
        for chunk in bytes.chunks(3) {
            let n =
                chunk.iter().fold(0u32, |n, b| (n << 8) | u32::from(*b)) << (8 * (3 - chunk.len()));
            for i in 0..=chunk.len() {
                out.push(ALPHABET[((n >> (18 - 6 * i)) & 63) as usize] as char);
            }
        }
        out
    }
    let head = base64url(json!({"alg": "HS256", "typ": "JWT"}).to_string().as_bytes());
    let body = base64url(claims.to_string().as_bytes());
    let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, secret);
    let signature = ring::hmac::sign(&key, format!("{head}.{body}").as_bytes());
    format!("{head}.{body}.{}", base64url(signature.as_ref()))
}

#[tokio::test]
async fn jwt_check_admits_good_tokens_and_refuses_the_rest() {
    let gateway = TestGateway::start(TENANTS);
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let call = |token: Option<String>| {
        let mut request = client().get(gateway.url("/api/me"));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        async move {
            let response = request.send().await.unwrap();
            let status = response.status().as_u16();
            (status, response.json::<Value>().await.unwrap())
        }
    };
    let good = jwt(json!({"sub": "ann", "exp": now + 600}), b"edge-secret");
    let (status, body) = call(Some(good)).await;
    assert_eq!(
        (status, body["subject"].as_str()),
        (200, Some("ann")),
        "{body}"
    );

    for (token, reason) in [
        (None, "no bearer token"),
        (
            Some(jwt(json!({"sub": "ann", "exp": now + 600}), b"wrong")),
            "signature",
        ),
        (
            Some(jwt(json!({"sub": "ann", "exp": now - 1}), b"edge-secret")),
            "expired",
        ),
        (Some("not.a-token".to_owned()), "not a JWT"),
    ] {
        let (status, body) = call(token).await;
        assert_eq!(status, 401, "{body}");
        assert!(body["error"].as_str().unwrap().contains(reason), "{body}");
    }
}

#[tokio::test]
async fn markdown_renders_posts_and_queries_and_escapes_html() {
    let gateway = TestGateway::start(TENANTS);
    let posted = client()
        .post(gateway.url("/md"))
        .body("# Title\n\nSome *text* and <script>alert(1)</script>")
        .send()
        .await
        .unwrap();
    assert_eq!(posted.status(), 200);
    assert_eq!(posted.headers()["content-type"], "text/html; charset=utf-8");
    let html = posted.text().await.unwrap();
    assert!(html.contains("<h1>Title</h1>"), "{html}");
    assert!(html.contains("<em>text</em>"), "{html}");
    assert!(!html.contains("<script>"), "{html}");
    let queried = client()
        .get(gateway.url("/md?text=**bold**+words"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert_eq!(queried, "<p><strong>bold</strong> words</p>\n");
}
