//! Nothing a tenant sends, and nothing found in the data directory, can stop the gateway from
//! starting: a refused change is never journaled (validate, build, persist, publish, in that
//! order), and a stored function that cannot be served at start-up is quarantined while
//! everything else serves.

mod support;

use atoll_gateway::store::ComponentStore;
use atoll_gateway::store::state::{Change, FunctionRecord, StateStore, TenantRecord};
use atoll_tests::{TestGateway, metric_value, tenant_wasm};
use reqwest::Method;
use serde_json::{Value, json};
use support::{admin_json, get_text, metrics_text};

/// A config tenant with a function and an origin route, on `shared.test`; the API tenant
/// `acme` made in the tests may route `acme.test` and `shared.test` too.
const CONFIG: &str = r#"
tenants:
  static:
    hosts: [static.test]
    functions:
      hello: {wasm: "{wasm}/hello.wasm", routes: [static.test/hello]}
    origins:
      web: {url: "http://127.0.0.1:9", routes: [static.test/web]}
"#;

async fn make_acme(gateway: &TestGateway) -> String {
    let operator = gateway.operator_token();
    let (status, body) = admin_json(
        gateway,
        Method::PUT,
        "/v1/tenants/acme",
        &operator,
        json!({"hosts": ["acme.test", "static.test"]}).to_string(),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let (status, body) = admin_json(
        gateway,
        Method::POST,
        "/v1/tenants/acme/tokens",
        &operator,
        "",
    )
    .await;
    assert_eq!(status, 201, "{body}");
    body["token"].as_str().unwrap().to_owned()
}

async fn deploy(gateway: &TestGateway, token: &str, path_and_query: &str) -> (u16, Value) {
    let bytes = std::fs::read(tenant_wasm("hello")).unwrap();
    admin_json(gateway, Method::PUT, path_and_query, token, bytes).await
}

fn journal_lines(gateway: &TestGateway) -> usize {
    std::fs::read_to_string(gateway.data_dir().join("state.journal"))
        .unwrap_or_default()
        .lines()
        .count()
}

#[test]
fn a_refused_deploy_is_never_journaled_and_a_restart_serves_everyone() {
    let mut gateway = TestGateway::start(CONFIG);
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        let token = make_acme(&gateway).await;
        let (status, body) = deploy(
            &gateway,
            &token,
            "/v1/tenants/acme/functions/app?route=acme.test/app",
        )
        .await;
        assert_eq!(status, 201, "{body}");
        let journaled = journal_lines(&gateway);

        // The same route twice in one request (`/a` and `/a/` are one route).
        let (status, body) = deploy(
            &gateway,
            &token,
            "/v1/tenants/acme/functions/dup?route=acme.test/a&route=acme.test/a/",
        )
        .await;
        assert_eq!(status, 409, "{body}");
        assert_eq!(body["error"]["code"], "conflict");
        // A route held by the config tenant's origin, and one held by its function.
        for route in ["static.test/web", "static.test/hello"] {
            let (status, body) = deploy(
                &gateway,
                &token,
                &format!("/v1/tenants/acme/functions/clash?route={route}"),
            )
            .await;
            assert_eq!(status, 409, "{route}: {body}");
            assert!(
                body["error"]["message"]
                    .as_str()
                    .unwrap()
                    .contains("already taken"),
                "{body}"
            );
        }
        // Another of the tenant's own functions' routes.
        let (status, body) = deploy(
            &gateway,
            &token,
            "/v1/tenants/acme/functions/other?route=acme.test/app",
        )
        .await;
        assert_eq!(status, 409, "{body}");
        assert_eq!(
            journal_lines(&gateway),
            journaled,
            "nothing refused reached the journal"
        );
        let (status, body) = admin_json(
            &gateway,
            Method::GET,
            "/v1/tenants/acme/functions",
            &token,
            "",
        )
        .await;
        assert_eq!(status, 200);
        let names: Vec<&String> = body["functions"].as_object().unwrap().keys().collect();
        assert_eq!(names, ["app"], "{body}");
    });

    gateway.restart();

    runtime.block_on(async {
        assert_eq!(get_text(&gateway, "acme.test", "/app").await.0, 200);
        assert_eq!(get_text(&gateway, "static.test", "/hello").await.0, 200);
        assert_eq!(
            metric_value(&metrics_text(&gateway).await, "atoll_quarantined_functions"),
            Some(0.0)
        );
    });
}

/// Writes, as a crash or a hand edit could leave it, a state in which API tenants `acme` and
/// `beta` both route `clash.test/x`, `acme` also serves `acme.test/ok`, and `beta`'s
/// function `lost` names a component that is not there.
fn write_conflicting_state(data_dir: &std::path::Path) {
    let version = ComponentStore::new(data_dir)
        .put(&std::fs::read(tenant_wasm("hello")).unwrap())
        .unwrap();
    let (mut store, mut state) = StateStore::open(data_dir).unwrap();
    let tenant = |functions: Vec<(&str, &str, Vec<&str>)>| TenantRecord {
        hosts: vec!["clash.test".into(), "acme.test".into(), "beta.test".into()],
        functions: functions
            .into_iter()
            .map(|(name, version, routes)| {
                let routes = routes.into_iter().map(String::from).collect();
                (
                    name.to_owned(),
                    FunctionRecord::new(version.to_owned(), routes),
                )
            })
            .collect(),
        ..TenantRecord::default()
    };
    let changes = [
        (
            "acme",
            tenant(vec![
                ("first", &version, vec!["clash.test/x"]),
                ("ok", &version, vec!["acme.test/ok"]),
            ]),
        ),
        (
            "beta",
            tenant(vec![
                ("second", &version, vec!["clash.test/x"]),
                ("lost", &"0".repeat(64), vec!["beta.test/lost"]),
                ("fine", &version, vec!["beta.test/fine"]),
            ]),
        ),
    ];
    for (name, record) in changes {
        let change = Change::PutTenant {
            name: name.to_owned(),
            record: Box::new(record),
        };
        store.record(&mut state, change).unwrap();
    }
}

#[test]
fn a_stored_conflict_is_quarantined_and_everything_else_serves() {
    let mut gateway = TestGateway::start(CONFIG);
    gateway.restart_after(write_conflicting_state);
    let operator = gateway.operator_token();
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        // Everything that can be served is.
        assert_eq!(get_text(&gateway, "static.test", "/hello").await.0, 200);
        assert_eq!(get_text(&gateway, "clash.test", "/x").await.0, 200);
        assert_eq!(get_text(&gateway, "acme.test", "/ok").await.0, 200);
        assert_eq!(get_text(&gateway, "beta.test", "/fine").await.0, 200);
        assert_eq!(get_text(&gateway, "beta.test", "/lost").await.0, 404);

        let metrics = metrics_text(&gateway).await;
        assert_eq!(
            metric_value(&metrics, "atoll_quarantined_functions"),
            Some(2.0),
            "beta's `second` (route taken) and `lost` (no component)"
        );
        let ready: Value = reqwest::get(gateway.admin_url("/readyz"))
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(ready["quarantined"], 2, "{ready}");
        assert!(
            ready.get("tenant").is_none() && !ready.to_string().contains("beta"),
            "/readyz names no tenant: {ready}"
        );

        let (status, body) =
            admin_json(&gateway, Method::GET, "/v1/quarantine", &operator, "").await;
        assert_eq!(status, 200, "{body}");
        let items = body["quarantined"].as_array().unwrap();
        assert_eq!(items.len(), 2, "{body}");
        assert!(
            items.iter().any(|i| i["function"] == "second"
                && i["reason"].as_str().unwrap().contains("already taken")),
            "{body}"
        );
        assert!(items.iter().any(|i| i["function"] == "lost"), "{body}");
        let (status, _) = admin_json(&gateway, Method::GET, "/v1/quarantine", "nope", "").await;
        assert_eq!(status, 401, "the list is the operator's");

        // The tenant's view shows it, so the operator can fix or delete it.
        let (status, body) = admin_json(
            &gateway,
            Method::GET,
            "/v1/tenants/beta/functions",
            &operator,
            "",
        )
        .await;
        assert_eq!(status, 200, "{body}");
        let functions = &body["functions"];
        assert!(functions["second"]["quarantined"].is_string(), "{body}");
        assert!(functions["fine"].get("quarantined").is_none(), "{body}");

        // Fixing: redeploy `second` on a free route; delete `lost`.
        let (status, body) = deploy(
            &gateway,
            &operator,
            "/v1/tenants/beta/functions/second?route=beta.test/second",
        )
        .await;
        assert_eq!(status, 201, "{body}");
        assert_eq!(get_text(&gateway, "beta.test", "/second").await.0, 200);
        let (status, body) = admin_json(
            &gateway,
            Method::DELETE,
            "/v1/tenants/beta/functions/lost",
            &operator,
            "",
        )
        .await;
        assert_eq!(status, 204, "{body}");
        let metrics = metrics_text(&gateway).await;
        assert_eq!(
            metric_value(&metrics, "atoll_quarantined_functions"),
            Some(0.0)
        );
        let (_, body) = admin_json(&gateway, Method::GET, "/v1/quarantine", &operator, "").await;
        assert_eq!(body["quarantined"], json!([]), "{body}");
    });

    // Fixed for good: a restart quarantines nothing.
    gateway.restart();
    runtime.block_on(async {
        assert_eq!(get_text(&gateway, "beta.test", "/second").await.0, 200);
        assert_eq!(
            metric_value(&metrics_text(&gateway).await, "atoll_quarantined_functions"),
            Some(0.0)
        );
    });
}

#[tokio::test]
async fn the_data_directory_is_readable_by_the_gateways_user_only() {
    use std::os::unix::fs::PermissionsExt as _;
    let gateway = TestGateway::start(CONFIG);
    let token = make_acme(&gateway).await;
    let hello = std::fs::read(tenant_wasm("hello")).unwrap();
    let (status, _) = support::admin_call(
        &gateway,
        Method::PUT,
        "/v1/tenants/acme/functions/f?route=acme.test/f",
        &token,
        hello,
    )
    .await;
    assert_eq!(status, 201);
    let mode =
        |path: &std::path::Path| std::fs::metadata(path).unwrap().permissions().mode() & 0o777;
    let data = gateway.data_dir();
    assert_eq!(mode(data), 0o700, "data_dir");
    let mut checked = 0;
    let mut dirs = vec![data.to_path_buf()];
    while let Some(dir) = dirs.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                assert_eq!(mode(&path), 0o700, "{}", path.display());
                dirs.push(path);
            } else {
                assert_eq!(mode(&path), 0o600, "{}", path.display());
                checked += 1;
            }
        }
    }
    assert!(
        checked >= 4,
        "state, journal, kv, token and the component: {checked}"
    );
}
