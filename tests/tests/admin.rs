//! The admin API end to end: authentication and token scoping, tenants, deploys with their
//! validation errors, versions and rollback, deletes, and persistence across restarts.

use atoll_tests::{TestGateway, tenant_wasm};
use serde_json::{Value, json};

const CONFIG: &str = r#"
max_upload: 1MiB
keep_versions: 3
tenants:
  static:
    hosts: [static.test]
    functions:
      hello: {wasm: "{wasm}/hello.wasm", routes: [static.test/]}
"#;

struct Admin<'g> {
    gateway: &'g TestGateway,
    client: reqwest::Client,
}

impl<'g> Admin<'g> {
    fn new(gateway: &'g TestGateway) -> Admin<'g> {
        Admin {
            gateway,
            client: reqwest::Client::new(),
        }
    }

    async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        token: Option<&str>,
        body: Option<reqwest::Body>,
    ) -> (u16, Value) {
        let mut request = self.client.request(method, self.gateway.admin_url(path));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        if let Some(body) = body {
            request = request.body(body);
        }
        let response = request.send().await.unwrap();
        let status = response.status().as_u16();
        let text = response.text().await.unwrap();
        let value = if text.is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&text).unwrap_or_else(|_| panic!("not JSON: {text}"))
        };
        (status, value)
    }

    async fn put_json(&self, path: &str, token: &str, body: Value) -> (u16, Value) {
        self.call(
            reqwest::Method::PUT,
            path,
            Some(token),
            Some(body.to_string().into()),
        )
        .await
    }

    async fn deploy(&self, path: &str, token: &str, component: &str) -> (u16, Value) {
        let bytes = std::fs::read(tenant_wasm(component)).unwrap();
        self.call(reqwest::Method::PUT, path, Some(token), Some(bytes.into()))
            .await
    }

    async fn get(&self, path: &str, token: Option<&str>) -> (u16, Value) {
        self.call(reqwest::Method::GET, path, token, None).await
    }
}

async fn proxy_get(gateway: &TestGateway, host: &str, path: &str) -> (u16, String) {
    let response = reqwest::Client::new()
        .get(gateway.url(path))
        .header("host", host)
        .send()
        .await
        .unwrap();
    (response.status().as_u16(), response.text().await.unwrap())
}

fn sha256_of(component: &str) -> String {
    atoll_gateway::store::content_hash(&std::fs::read(tenant_wasm(component)).unwrap())
}

/// Creates tenants `acme` and `beta` and returns their tokens.
async fn two_tenants(admin: &Admin<'_>, operator: &str) -> (String, String) {
    for (name, host) in [("acme", "acme.test"), ("beta", "beta.test")] {
        let (status, body) = admin
            .put_json(
                &format!("/v1/tenants/{name}"),
                operator,
                json!({"hosts": [host, format!("*.{host}")], "limits": {"memory": "32MiB"}}),
            )
            .await;
        assert_eq!(status, 200, "{body}");
    }
    let mut tokens = Vec::new();
    for name in ["acme", "beta"] {
        let (status, body) = admin
            .call(
                reqwest::Method::POST,
                &format!("/v1/tenants/{name}/tokens"),
                Some(operator),
                None,
            )
            .await;
        assert_eq!(status, 201, "{body}");
        tokens.push(body["token"].as_str().unwrap().to_owned());
    }
    (tokens[0].clone(), tokens[1].clone())
}

#[tokio::test]
async fn tokens_are_required_and_scoped_to_their_tenant() {
    let gateway = TestGateway::start(CONFIG);
    let admin = Admin::new(&gateway);
    let operator = gateway.operator_token();
    assert_eq!(admin.get("/v1/tenants", None).await.0, 401);
    let (status, body) = admin.get("/v1/tenants", Some("wrong")).await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (401, Some("unauthenticated"))
    );

    let (acme, beta) = two_tenants(&admin, &operator).await;
    assert_eq!(
        admin.get("/v1/tenants", Some(&acme)).await.0,
        403,
        "operator only"
    );
    assert_eq!(admin.get("/v1/tenants/acme", Some(&acme)).await.0, 200);
    assert_eq!(admin.get("/v1/tenants/beta", Some(&acme)).await.0, 403);
    assert_eq!(
        admin.get("/v1/tenants/beta/functions", Some(&acme)).await.0,
        403
    );

    let (status, _) = admin
        .deploy(
            "/v1/tenants/beta/functions/x?route=beta.test/x",
            &acme,
            "hello",
        )
        .await;
    assert_eq!(status, 403, "acme cannot deploy to beta");
    let (status, body) = admin
        .deploy(
            "/v1/tenants/acme/functions/x?route=beta.test/x",
            &acme,
            "hello",
        )
        .await;
    assert_eq!(status, 403, "acme cannot route beta's host: {body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("not in tenant `acme`'s hosts")
    );
    let (status, _) = admin
        .deploy("/v1/tenants/acme/functions/x?route=%2Fx", &acme, "hello")
        .await;
    assert_eq!(status, 403, "host-less routes need the operator");
    let (status, _) = admin
        .deploy(
            "/v1/tenants/beta/functions/b?route=beta.test/b",
            &beta,
            "hello",
        )
        .await;
    assert_eq!(status, 201);
    for (method, path) in [
        (
            reqwest::Method::POST,
            "/v1/tenants/beta/functions/b/rollback",
        ),
        (reqwest::Method::DELETE, "/v1/tenants/beta/functions/b"),
        (reqwest::Method::DELETE, "/v1/tenants/beta"),
        (reqwest::Method::POST, "/v1/tenants/beta/tokens"),
    ] {
        let (status, _) = admin.call(method.clone(), path, Some(&acme), None).await;
        assert_eq!(status, 403, "{method} {path}");
    }
    // beta's function is untouched.
    assert_eq!(proxy_get(&gateway, "beta.test", "/b").await.0, 200);
}

#[tokio::test]
async fn deploy_serve_redeploy_roll_back_and_delete() {
    let gateway = TestGateway::start(CONFIG);
    let admin = Admin::new(&gateway);
    let operator = gateway.operator_token();
    let (acme, _) = two_tenants(&admin, &operator).await;

    let (status, body) = admin
        .deploy(
            "/v1/tenants/acme/functions/site?route=acme.test/site&route=*.acme.test/",
            &acme,
            "hello",
        )
        .await;
    assert_eq!(status, 201, "{body}");
    assert_eq!(body["version"], sha256_of("hello"));
    assert!(body["compile_ms"].as_f64().is_some());
    assert_eq!(
        proxy_get(&gateway, "acme.test", "/site/x").await,
        (200, "Hello from Atoll!\n".into())
    );
    assert_eq!(proxy_get(&gateway, "www.acme.test", "/").await.0, 200);

    // A new version replaces the old one on the same routes (no ?route: routes are kept).
    let (status, body) = admin
        .deploy("/v1/tenants/acme/functions/site", &acme, "echo")
        .await;
    assert_eq!(status, 201, "{body}");
    assert_eq!(
        body["versions"],
        json!([sha256_of("hello"), sha256_of("echo")])
    );
    let (status, text) = proxy_get(&gateway, "acme.test", "/site").await;
    assert_eq!(status, 200);
    assert!(text.contains("\"path\":\"/site\""), "{text}");

    let (status, view) = admin
        .get("/v1/tenants/acme/functions/site", Some(&acme))
        .await;
    assert_eq!(status, 200);
    assert_eq!(view["version"], sha256_of("echo"));
    assert_eq!(view["routes"], json!(["acme.test/site", "*.acme.test/"]));

    // Roll back to the previous version, then forward to a named one.
    let (status, view) = admin
        .call(
            reqwest::Method::POST,
            "/v1/tenants/acme/functions/site/rollback",
            Some(&acme),
            Some("{}".into()),
        )
        .await;
    assert_eq!(
        (status, view["version"].clone()),
        (200, json!(sha256_of("hello")))
    );
    assert_eq!(
        proxy_get(&gateway, "acme.test", "/site").await.1,
        "Hello from Atoll!\n"
    );
    let body = json!({"version": sha256_of("echo")}).to_string();
    let (status, view) = admin
        .call(
            reqwest::Method::POST,
            "/v1/tenants/acme/functions/site/rollback",
            Some(&acme),
            Some(body.into()),
        )
        .await;
    assert_eq!(
        (status, view["version"].clone()),
        (200, json!(sha256_of("echo")))
    );
    let body = json!({"version": "00".repeat(32)}).to_string();
    let (status, _) = admin
        .call(
            reqwest::Method::POST,
            "/v1/tenants/acme/functions/site/rollback",
            Some(&acme),
            Some(body.into()),
        )
        .await;
    assert_eq!(status, 404);

    let (status, list) = admin.get("/v1/tenants/acme/functions", Some(&acme)).await;
    assert_eq!(status, 200);
    assert!(list["functions"]["site"].is_object());

    let (status, _) = admin
        .call(
            reqwest::Method::DELETE,
            "/v1/tenants/acme/functions/site",
            Some(&acme),
            None,
        )
        .await;
    assert_eq!(status, 204);
    assert_eq!(proxy_get(&gateway, "acme.test", "/site").await.0, 404);
    assert_eq!(
        admin
            .get("/v1/tenants/acme/functions/site", Some(&acme))
            .await
            .0,
        404
    );

    let (status, _) = admin
        .call(
            reqwest::Method::DELETE,
            "/v1/tenants/acme",
            Some(&operator),
            None,
        )
        .await;
    assert_eq!(status, 204);
    assert_eq!(admin.get("/v1/tenants/acme", Some(&operator)).await.0, 404);
    assert_eq!(
        admin.get("/v1/tenants/acme", Some(&acme)).await.0,
        401,
        "its tokens are gone"
    );
}

#[tokio::test]
async fn bad_uploads_and_conflicts_are_refused_and_nothing_is_disturbed() {
    let gateway = TestGateway::start(CONFIG);
    let admin = Admin::new(&gateway);
    let operator = gateway.operator_token();
    let (acme, beta) = two_tenants(&admin, &operator).await;
    let (status, _) = admin
        .deploy(
            "/v1/tenants/acme/functions/app?route=acme.test/app",
            &acme,
            "hello",
        )
        .await;
    assert_eq!(status, 201);

    let hello = std::fs::read(tenant_wasm("hello")).unwrap();
    let echo = std::fs::read(tenant_wasm("echo")).unwrap();
    let app = "/v1/tenants/acme/functions/app";
    let cases: Vec<(&str, Vec<u8>, u16, &str)> = vec![
        (
            app,
            b"not wasm at all".to_vec(),
            400,
            "not a WebAssembly binary",
        ),
        (
            app,
            vec![0, 0x61, 0x73, 0x6d, 1, 0, 0, 0],
            400,
            "core WebAssembly module",
        ),
        (
            app,
            vec![0, 0x61, 0x73, 0x6d, 0x0d, 0, 1, 0, 0xff],
            400,
            "invalid component",
        ),
        (app, vec![0; 2 << 20], 413, "larger than the limit"),
        (
            "/v1/tenants/acme/functions/Bad_Name",
            hello.clone(),
            400,
            "must match",
        ),
        (
            "/v1/tenants/acme/functions/app2?route=acme.test/app",
            echo.clone(),
            409,
            "already taken",
        ),
        (
            "/v1/tenants/acme/functions/app2?route=acme.test/a%3Fb",
            echo,
            400,
            "query",
        ),
        (
            "/v1/tenants/nobody/functions/app",
            hello.clone(),
            403,
            "another tenant",
        ),
        (
            "/v1/tenants/static/functions/app",
            hello.clone(),
            403,
            "another tenant",
        ),
    ];
    for (path, body, expected, message) in cases {
        let (status, error) = admin
            .call(reqwest::Method::PUT, path, Some(&acme), Some(body.into()))
            .await;
        assert_eq!(status, expected, "{path}: {error}");
        let text = error["error"]["message"].as_str().unwrap_or_default();
        assert!(text.contains(message), "{path}: {text}");
    }
    // The operator hits the config-defined tenant's read-only rule and a missing tenant.
    let (status, _) = admin
        .call(
            reqwest::Method::PUT,
            "/v1/tenants/static/functions/x",
            Some(&operator),
            Some(hello.clone().into()),
        )
        .await;
    assert_eq!(status, 409);
    let (status, _) = admin
        .call(
            reqwest::Method::PUT,
            "/v1/tenants/nobody/functions/x",
            Some(&operator),
            Some(hello.into()),
        )
        .await;
    assert_eq!(status, 404);
    let (status, _) = admin
        .put_json("/v1/tenants/Bad", &operator, json!({}))
        .await;
    assert_eq!(status, 400);
    let (status, body) = admin
        .put_json(
            "/v1/tenants/big",
            &operator,
            json!({"limits": {"memory": "1GiB"}}),
        )
        .await;
    assert_eq!(status, 400, "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("pool.max_memory")
    );
    let (status, _) = admin
        .put_json("/v1/tenants/odd", &operator, json!({"hostz": []}))
        .await;
    assert_eq!(status, 400, "unknown keys are refused");
    let (status, _) = admin
        .call(
            reqwest::Method::PUT,
            "/v1/tenants/odd",
            Some(&operator),
            Some("{not json".into()),
        )
        .await;
    assert_eq!(status, 400);

    // What was deployed still serves, at the same version.
    assert_eq!(
        proxy_get(&gateway, "acme.test", "/app").await,
        (200, "Hello from Atoll!\n".into())
    );
    let (_, view) = admin
        .get("/v1/tenants/acme/functions/app", Some(&beta))
        .await;
    assert_eq!(view["error"]["code"], "forbidden");
    let (_, view) = admin
        .get("/v1/tenants/acme/functions/app", Some(&acme))
        .await;
    assert_eq!(view["versions"], json!([sha256_of("hello")]));
}

#[test]
fn deploys_survive_a_restart_exactly() {
    let mut gateway = TestGateway::start(CONFIG);
    let operator = gateway.operator_token();
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let (acme, version) = runtime.block_on(async {
        let admin = Admin::new(&gateway);
        let (acme, _) = two_tenants(&admin, &operator).await;
        admin
            .deploy(
                "/v1/tenants/acme/functions/app?route=acme.test/app",
                &acme,
                "hello",
            )
            .await;
        let (status, body) = admin
            .deploy("/v1/tenants/acme/functions/app", &acme, "echo")
            .await;
        assert_eq!(status, 201);
        (acme, body["version"].clone())
    });

    gateway.restart();

    runtime.block_on(async {
        let admin = Admin::new(&gateway);
        assert_eq!(
            gateway.operator_token(),
            operator,
            "the operator token is reused"
        );
        let (status, view) = admin
            .get("/v1/tenants/acme/functions/app", Some(&acme))
            .await;
        assert_eq!(status, 200, "the tenant token still works: {view}");
        assert_eq!(view["version"], version);
        assert_eq!(
            view["versions"],
            json!([sha256_of("hello"), sha256_of("echo")])
        );
        let (status, text) = proxy_get(&gateway, "acme.test", "/app").await;
        assert_eq!(status, 200);
        assert!(text.contains("\"path\":\"/app\""), "{text}");
        assert_eq!(
            proxy_get(&gateway, "static.test", "/").await.0,
            200,
            "config tenants too"
        );
    });
}

#[test]
fn a_corrupt_state_file_stops_the_start_with_a_clear_report() {
    let mut gateway = TestGateway::start(CONFIG);
    let operator = gateway.operator_token();
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        let admin = Admin::new(&gateway);
        two_tenants(&admin, &operator).await;
    });
    gateway.stop();
    // Four changes so far: two tenants made, a token for each. They are in the journal.
    let journal = gateway.data_dir().join("state.journal");
    let text = std::fs::read_to_string(&journal).unwrap();
    assert_eq!(text.lines().count(), 4, "{text}");

    // An edited change with changes after it is corruption: the start stops.
    std::fs::write(&journal, text.replacen("acme.test", "evil.test", 1)).unwrap();
    let error = gateway.try_start_again().unwrap_err();
    let message = format!("{error:#}");
    assert!(
        message.contains("state.journal is corrupt") && message.contains("checksum mismatch"),
        "{message}"
    );

    // A last change cut short (a crash while appending, never acknowledged) is dropped: the
    // gateway starts with the three before it, and a temporary file left by a crash is cleaned
    // up, not read.
    std::fs::write(&journal, &text[..text.len() - 10]).unwrap();
    std::fs::write(gateway.data_dir().join(".state.json.42.atoll-tmp"), b"torn").unwrap();
    gateway.try_start_again().unwrap();
    assert!(!gateway.data_dir().join(".state.json.42.atoll-tmp").exists());
    let kept = std::fs::read_to_string(&journal).unwrap();
    assert_eq!(kept.lines().count(), 3, "the torn line is cut off");
    let operator = gateway.operator_token();
    runtime.block_on(async {
        let admin = Admin::new(&gateway);
        let (status, body) = admin
            .call(
                reqwest::Method::GET,
                "/v1/tenants/beta",
                Some(&operator),
                None,
            )
            .await;
        assert_eq!(status, 200, "{body}");
    });
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fifty_deploys_and_rollbacks_under_load_fail_no_request() {
    let gateway = TestGateway::start(CONFIG);
    let admin = Admin::new(&gateway);
    let operator = gateway.operator_token();
    let (acme, _) = two_tenants(&admin, &operator).await;
    let (status, _) = admin
        .deploy(
            "/v1/tenants/acme/functions/app?route=acme.test/app",
            &acme,
            "hello",
        )
        .await;
    assert_eq!(status, 201);

    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let mut load = Vec::new();
    for _ in 0..4 {
        let (url, stop) = (gateway.url("/app"), stop.clone());
        load.push(tokio::spawn(async move {
            let client = reqwest::Client::new();
            let (mut ok, mut failed) = (0u32, Vec::new());
            let until = std::time::Instant::now() + std::time::Duration::from_secs(60);
            while !stop.load(std::sync::atomic::Ordering::Relaxed)
                && std::time::Instant::now() < until
            {
                let response = client.get(&url).header("host", "acme.test").send().await;
                match response {
                    Ok(r) if r.status() == 200 => {
                        let text = r.text().await.unwrap_or_default();
                        // Either version answers whole: hello's text or echo's JSON.
                        if text == "Hello from Atoll!\n" || text.starts_with('{') {
                            ok += 1;
                        } else {
                            failed.push(text);
                        }
                    }
                    Ok(r) => failed.push(format!("status {}", r.status())),
                    Err(e) => failed.push(e.to_string()),
                }
            }
            (ok, failed)
        }));
    }
    for round in 0..25 {
        let component = if round % 2 == 0 { "echo" } else { "hello" };
        let (status, body) = admin
            .deploy("/v1/tenants/acme/functions/app", &acme, component)
            .await;
        assert_eq!(status, 201, "deploy {round}: {body}");
        let (status, body) = admin
            .call(
                reqwest::Method::POST,
                "/v1/tenants/acme/functions/app/rollback",
                Some(&acme),
                Some("{}".into()),
            )
            .await;
        assert_eq!(status, 200, "rollback {round}: {body}");
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let mut served = 0;
    for task in load {
        let (ok, failed) = task.await.unwrap();
        assert!(
            failed.is_empty(),
            "failed requests during the swaps: {failed:?}"
        );
        served += ok;
    }
    assert!(served > 50, "the load ran alongside the swaps: {served}");
}
