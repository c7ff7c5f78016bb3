//! The admin API's handlers without sockets: the router over a real control plane, called
//! with tower's `oneshot`.

use super::*;

use axum::http::Request;
use tower::ServiceExt as _;

use crate::config::Config;
use crate::registry::{Registry, Snapshot};
use crate::runtime::{Runtime, RuntimeSettings};

/// The admin router over a real control plane in a temporary data directory, and the
/// operator's token; no socket.
struct Admin {
    router: Router,
    operator: String,
    _data: tempfile::TempDir,
}

impl Admin {
    fn new() -> Admin {
        let data = tempfile::tempdir().unwrap();
        let config = Config::parse(
            &format!(
                "data_dir: {}\npool: {{total_instances: 64}}\n",
                data.path().display()
            ),
            None,
        )
        .unwrap();
        let runtime = Runtime::new(RuntimeSettings {
            total_instances: 64,
            ..RuntimeSettings::default()
        })
        .unwrap();
        let metrics = Metrics::new();
        let registry = Arc::new(Registry::new(Snapshot::empty()));
        let control = ControlPlane::start(config, runtime, metrics.clone(), registry).unwrap();
        let operator = "operator-secret-token".to_owned();
        let (token, _) = OperatorToken::load(data.path(), Some(operator.clone())).unwrap();
        let router = router(AdminState {
            metrics,
            ready: Arc::new(AtomicBool::new(true)),
            control: Arc::new(control),
            operator: Arc::new(token),
        });
        Admin {
            router,
            operator,
            _data: data,
        }
    }

    /// Sends `method path` with `token` and `body`; the status and the JSON body (`null`
    /// when there is none).
    async fn call(
        &self,
        method: &str,
        path: &str,
        token: Option<&str>,
        body: impl Into<Body>,
    ) -> (u16, serde_json::Value) {
        let mut request = Request::builder().method(method).uri(path);
        if let Some(token) = token {
            request = request.header(header::AUTHORIZATION, format!("Bearer {token}"));
        }
        let response = self
            .router
            .clone()
            .oneshot(request.body(body.into()).unwrap())
            .await
            .unwrap();
        let status = response.status().as_u16();
        let bytes = axum::body::to_bytes(response.into_body(), usize::MAX)
            .await
            .unwrap();
        let json = serde_json::from_slice(&bytes).unwrap_or(serde_json::Value::Null);
        (status, json)
    }

    async fn tenant_token(&self, tenant: &str) -> String {
        let body = r#"{"hosts": ["HOST.test"]}"#.replace("HOST", tenant);
        let path = format!("/v1/tenants/{tenant}");
        let (status, _) = self.call("PUT", &path, Some(&self.operator), body).await;
        assert_eq!(status, 200);
        let path = format!("/v1/tenants/{tenant}/tokens");
        let (status, json) = self.call("POST", &path, Some(&self.operator), "").await;
        assert_eq!(status, 201, "{json}");
        json["token"].as_str().unwrap().to_owned()
    }
}

fn code(json: &serde_json::Value) -> &str {
    json["error"]["code"].as_str().unwrap_or_default()
}

#[tokio::test]
async fn every_v1_call_needs_a_known_token() {
    let admin = Admin::new();
    for (method, path) in [
        ("GET", "/v1/tenants"),
        ("GET", "/v1/quarantine"),
        ("PUT", "/v1/tenants/acme"),
        ("GET", "/v1/tenants/acme/functions"),
        ("PUT", "/v1/tenants/acme/functions/f"),
        ("GET", "/v1/tenants/acme/kv"),
        ("POST", "/v1/tenants/acme/cache/purge"),
    ] {
        let (status, json) = admin.call(method, path, None, "").await;
        assert_eq!(
            (status, code(&json)),
            (401, "unauthenticated"),
            "{method} {path}"
        );
        let (status, _) = admin.call(method, path, Some("made-up"), "").await;
        assert_eq!(status, 401, "{method} {path} with an unknown token");
    }
    let (status, _) = admin.call("GET", "/healthz", None, "").await;
    assert_eq!(status, 200, "health needs no token");
}

#[tokio::test]
async fn a_tenant_token_reaches_its_own_tenant_only() {
    let admin = Admin::new();
    let acme = admin.tenant_token("acme").await;
    admin.tenant_token("globex").await;
    let (status, _) = admin
        .call("GET", "/v1/tenants/acme/functions", Some(&acme), "")
        .await;
    assert_eq!(status, 200);
    for (method, path) in [
        ("GET", "/v1/tenants/globex"),
        ("GET", "/v1/tenants/globex/functions"),
        ("GET", "/v1/tenants/globex/kv"),
        ("GET", "/v1/tenants/globex/kv/b/k"),
        ("PUT", "/v1/tenants/globex/functions/f"),
    ] {
        let (status, json) = admin.call(method, path, Some(&acme), "").await;
        assert_eq!((status, code(&json)), (403, "forbidden"), "{method} {path}");
    }
    for (method, path) in [
        ("GET", "/v1/tenants"),
        ("PUT", "/v1/tenants/acme"),
        ("POST", "/v1/tenants/acme/tokens"),
        ("DELETE", "/v1/tenants/acme"),
    ] {
        let (status, _) = admin.call(method, path, Some(&acme), "").await;
        assert_eq!(status, 403, "{method} {path} is the operator's");
    }
}

#[tokio::test]
async fn bad_definitions_get_their_fields_code() {
    let admin = Admin::new();
    let operator = Some(admin.operator.as_str());
    let cases = [
        ("/v1/tenants/Acme", "{}", "invalid_name"),
        (
            "/v1/tenants/acme",
            r#"{"hosts": ["bad host"]}"#,
            "invalid_host",
        ),
        (
            "/v1/tenants/acme",
            r#"{"limits": {"memory": "999GiB"}}"#,
            "invalid_limit",
        ),
        (
            "/v1/tenants/acme",
            r#"{"outbound": {"allow": ["nope"]}}"#,
            "invalid_outbound",
        ),
        ("/v1/tenants/acme", r#"{"hostz": []}"#, "bad_request"),
        ("/v1/tenants/acme", "{not json", "bad_request"),
    ];
    for (path, body, expected) in cases {
        let (status, json) = admin.call("PUT", path, operator, body).await;
        assert_eq!((status, code(&json)), (400, expected), "{body}: {json}");
    }
    let (status, json) = admin.call("GET", "/v1/tenants", operator, "").await;
    assert_eq!(status, 200);
    assert_eq!(
        json["tenants"],
        serde_json::json!({}),
        "nothing was created"
    );
}

#[tokio::test]
async fn deploys_are_checked_before_anything_is_stored() {
    let admin = Admin::new();
    let acme = admin.tenant_token("acme").await;
    let (status, json) = admin
        .call(
            "PUT",
            "/v1/tenants/acme/functions/f",
            Some(&acme),
            "not wasm",
        )
        .await;
    assert_eq!((status, code(&json)), (400, "invalid_component"), "{json}");
    let hello = std::fs::read(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../tenants/target/wasm32-wasip2/release/hello.wasm"
    ))
    .expect("make tenants builds hello.wasm");
    let foreign = "/v1/tenants/acme/functions/f?route=globex.test/x";
    let (status, json) = admin.call("PUT", foreign, Some(&acme), hello.clone()).await;
    assert_eq!((status, code(&json)), (403, "forbidden"), "{json}");
    let hostless = "/v1/tenants/acme/functions/f?route=/x";
    let (status, _) = admin
        .call("PUT", hostless, Some(&acme), hello.clone())
        .await;
    assert_eq!(status, 403, "host-less routes are the operator's");
    let twice = "/v1/tenants/acme/functions/f?route=acme.test/a&route=acme.test/a/";
    let (status, json) = admin.call("PUT", twice, Some(&acme), hello.clone()).await;
    assert_eq!((status, code(&json)), (409, "conflict"), "{json}");
    let (status, json) = admin
        .call("GET", "/v1/tenants/acme/functions", Some(&acme), "")
        .await;
    assert_eq!(status, 200);
    assert_eq!(
        json["functions"],
        serde_json::json!({}),
        "nothing was stored"
    );
    let good = "/v1/tenants/acme/functions/f?route=acme.test/a";
    let (status, json) = admin.call("PUT", good, Some(&acme), hello).await;
    assert_eq!(status, 201, "{json}");
}

#[tokio::test]
async fn tokens_are_listed_without_secrets_and_revoked_at_once() {
    let admin = Admin::new();
    let first = admin.tenant_token("acme").await;
    let operator = Some(admin.operator.as_str());
    let (status, json) = admin
        .call("POST", "/v1/tenants/acme/tokens", operator, "")
        .await;
    assert_eq!(status, 201);
    let second = json["token"].as_str().unwrap().to_owned();
    let (status, _) = admin
        .call("GET", "/v1/tenants/acme/functions", Some(&first), "")
        .await;
    assert_eq!(status, 200);
    let (status, json) = admin
        .call("GET", "/v1/tenants/acme/tokens", Some(&second), "")
        .await;
    assert_eq!(status, 200);
    let tokens = json["tokens"].as_array().unwrap();
    assert_eq!(tokens.len(), 2);
    let text = json.to_string();
    assert!(
        !text.contains(&first[4..]) && !text.contains(&second[4..]),
        "{text}"
    );
    assert!(
        tokens.iter().all(|t| t["created"].as_u64().is_some()),
        "{text}"
    );
    assert!(
        tokens
            .iter()
            .filter(|t| t["last_used"].as_u64().is_some())
            .count()
            >= 1,
        "{text}"
    );
    // Revoke the first (by its id: the one used before the second was made).
    let id = tokens[0]["id"].as_str().unwrap();
    let path = format!("/v1/tenants/acme/tokens/{id}");
    let (status, _) = admin.call("DELETE", &path, Some(&second), "").await;
    assert_eq!(status, 204);
    let (status, _) = admin
        .call("GET", "/v1/tenants/acme/functions", Some(&first), "")
        .await;
    assert_eq!(status, 401, "a revoked token is refused at once");
    let (status, _) = admin
        .call("GET", "/v1/tenants/acme/functions", Some(&second), "")
        .await;
    assert_eq!(status, 200, "the other still works");
    let (status, _) = admin.call("DELETE", &path, operator, "").await;
    assert_eq!(status, 404);
    // Another tenant may neither list nor revoke acme's.
    let globex = admin.tenant_token("globex").await;
    let (status, _) = admin
        .call("GET", "/v1/tenants/acme/tokens", Some(&globex), "")
        .await;
    assert_eq!(status, 403);
}

#[tokio::test]
async fn an_environment_operator_token_is_not_rotated_and_tenants_never_rotate_it() {
    let admin = Admin::new();
    let acme = admin.tenant_token("acme").await;
    let (status, _) = admin
        .call("POST", "/v1/admin/token/rotate", Some(&acme), "")
        .await;
    assert_eq!(status, 403, "a tenant token may not rotate the operator's");
    let (status, json) = admin.call("POST", "/v1/admin/token/rotate", None, "").await;
    assert_eq!(status, 401, "{json}");
    // This gateway's token is ATOLL_ADMIN_TOKEN's: the environment is the operator's to change.
    let (status, json) = admin
        .call("POST", "/v1/admin/token/rotate", Some(&admin.operator), "")
        .await;
    assert_eq!(status, 409, "{json}");
    assert!(
        json["error"]["message"]
            .as_str()
            .unwrap()
            .contains("ATOLL_ADMIN_TOKEN"),
        "{json}"
    );
    let (status, _) = admin
        .call("GET", "/v1/tenants", Some(&admin.operator), "")
        .await;
    assert_eq!(status, 200, "the token still works");
}

#[tokio::test]
async fn key_value_calls_go_through_the_control_plane() {
    let admin = Admin::new();
    let acme = admin.tenant_token("acme").await;
    let (status, json) = admin
        .call("GET", "/v1/tenants/acme/kv", Some(&acme), "")
        .await;
    assert_eq!(status, 200);
    assert_eq!(json["keys"], serde_json::json!([]));
    let (status, _) = admin
        .call("GET", "/v1/tenants/acme/kv/b/missing", Some(&acme), "")
        .await;
    assert_eq!(status, 404);
    let (status, _) = admin
        .call("DELETE", "/v1/tenants/acme/kv/b/missing", Some(&acme), "")
        .await;
    assert_eq!(status, 404);
    let operator = Some(admin.operator.as_str());
    let (status, _) = admin
        .call("GET", "/v1/tenants/nobody/kv", operator, "")
        .await;
    assert_eq!(status, 404);
    let (status, json) = admin
        .call("GET", "/v1/tenants/acme/kv?bucket=", Some(&acme), "")
        .await;
    assert_eq!((status, code(&json)), (400, "bad_request"), "{json}");
}

#[test]
fn routes_come_from_repeated_query_keys() {
    assert_eq!(
        routes_from_query(Some("route=%2Fa&x=1&route=b.test%2Fc&route=*.d.test/e")),
        vec!["/a", "b.test/c", "*.d.test/e"]
    );
    assert!(routes_from_query(None).is_empty());
}
