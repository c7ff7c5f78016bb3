//! The admin listener, an axum router: liveness, readiness and metrics for anyone, and the
//! authenticated deploy API under `/v1` (see `docs/api.md`).
//!
//! Handlers authenticate through the extractors [`Operator`], [`ForTenant`] and [`ForFunction`], call the
//! [`ControlPlane`], and turn its errors into the contract's JSON in one place,
//! [`AdminError`]'s `IntoResponse`.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use axum::Router;
use axum::body::Body;
use axum::extract::{FromRequestParts, Path, RawQuery, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use serde_json::json;

use crate::auth::{Access, Caller, OperatorToken};
use crate::control::{ControlError, ControlPlane, TenantSpec};
use crate::metrics::Metrics;

/// What the admin handlers share.
#[derive(Clone)]
pub struct AdminState {
    /// The gateway's metrics.
    pub metrics: Metrics,
    /// Set once the proxy listener is serving.
    pub ready: Arc<AtomicBool>,
    /// Where changes go.
    pub control: Arc<ControlPlane>,
    /// The operator token.
    pub operator: Arc<OperatorToken>,
}

/// The admin API's router.
pub fn router(state: AdminState) -> Router {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .route("/v1/tenants", get(list_tenants))
        .route("/v1/quarantine", get(list_quarantined))
        .route(
            "/v1/tenants/{tenant}",
            put(put_tenant).get(get_tenant).delete(delete_tenant),
        )
        .route("/v1/tenants/{tenant}/tokens", post(create_token))
        .route("/v1/tenants/{tenant}/functions", get(list_functions))
        .route(
            "/v1/tenants/{tenant}/functions/{function}",
            put(deploy).get(get_function).delete(delete_function),
        )
        .route(
            "/v1/tenants/{tenant}/functions/{function}/rollback",
            post(rollback),
        )
        .route("/v1/tenants/{tenant}/cache/purge", post(purge_cache))
        .route("/v1/tenants/{tenant}/kv", get(list_kv))
        .route(
            "/v1/tenants/{tenant}/kv/{bucket}/{*key}",
            get(get_kv).delete(delete_kv),
        )
        .route(
            "/v1/tenants/{tenant}/functions/{function}/config",
            put(put_config).get(get_config),
        )
        .fallback(not_found)
        .with_state(state)
}

/// An admin API failure: its status, `error.code` and message.
#[derive(Debug)]
pub enum AdminError {
    /// No token, or an unknown one (401).
    Unauthenticated,
    /// Another tenant's token, or an operator-only call (403).
    Forbidden(String),
    /// The body is larger than allowed (413).
    TooLarge(u64),
    /// Malformed JSON or query (400).
    BadRequest(String),
    /// The control plane refused the change.
    Control(ControlError),
}

impl AdminError {
    /// The `result` label of `atoll_deployments_total` for a deploy that failed this way.
    fn result(&self) -> &'static str {
        match self {
            AdminError::TooLarge(_) => "too_large",
            AdminError::Control(ControlError::Invalid { .. }) | AdminError::BadRequest(_) => {
                "invalid"
            }
            AdminError::Control(ControlError::Forbidden(_)) | AdminError::Forbidden(_) => {
                "forbidden"
            }
            AdminError::Control(ControlError::NotFound(_)) => "not_found",
            AdminError::Control(ControlError::Conflict(_)) => "conflict",
            AdminError::Unauthenticated | AdminError::Control(ControlError::Storage(_)) => "error",
        }
    }
}

impl From<ControlError> for AdminError {
    fn from(e: ControlError) -> Self {
        AdminError::Control(e)
    }
}

impl IntoResponse for AdminError {
    fn into_response(self) -> Response {
        // These are answered before the request body is read: tell the client this
        // connection will not carry another request rather than leave it guessing.
        let unread_body = matches!(
            self,
            AdminError::Unauthenticated | AdminError::Forbidden(_) | AdminError::TooLarge(_)
        );
        let (status, code, message) = match self {
            AdminError::Unauthenticated => (
                StatusCode::UNAUTHORIZED,
                "unauthenticated",
                "send `Authorization: Bearer TOKEN` with the operator's token or a tenant token"
                    .to_owned(),
            ),
            AdminError::Forbidden(why) => (StatusCode::FORBIDDEN, "forbidden", why),
            AdminError::TooLarge(limit) => (
                StatusCode::PAYLOAD_TOO_LARGE,
                "too_large",
                format!("the body is larger than the limit of {limit} bytes"),
            ),
            AdminError::BadRequest(why) => (StatusCode::BAD_REQUEST, "bad_request", why),
            AdminError::Control(e) => match e {
                ControlError::Invalid { code, message } => (StatusCode::BAD_REQUEST, code, message),
                ControlError::Forbidden(why) => (StatusCode::FORBIDDEN, "forbidden", why),
                ControlError::NotFound(why) => (StatusCode::NOT_FOUND, "not_found", why),
                ControlError::Conflict(why) => (StatusCode::CONFLICT, "conflict", why),
                ControlError::Storage(why) => {
                    tracing::error!(error = why.as_str(), "admin change failed in storage");
                    (StatusCode::INTERNAL_SERVER_ERROR, "storage_error", why)
                }
            },
        };
        let mut response = error(status, code, &message);
        if unread_body {
            response.headers_mut().insert(
                header::CONNECTION,
                axum::http::HeaderValue::from_static("close"),
            );
        }
        response
    }
}

/// An error in the contract's JSON shape.
fn error(status: StatusCode, code: &str, message: &str) -> Response {
    let body = json!({"error": {"code": code, "message": message}});
    (status, axum::Json(body)).into_response()
}

/// Who is calling, from the `Authorization: Bearer` header.
async fn authenticate(state: &AdminState, headers: &HeaderMap) -> Result<Caller, AdminError> {
    let token = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .ok_or(AdminError::Unauthenticated)?;
    state
        .control
        .identify(token, &state.operator)
        .await
        .ok_or(AdminError::Unauthenticated)
}

/// An operator-only call: the request carries the operator's token (401 without a known
/// token, 403 with a tenant's).
pub struct Operator;

impl FromRequestParts<AdminState> for Operator {
    type Rejection = AdminError;

    async fn from_request_parts(parts: &mut Parts, state: &AdminState) -> Result<Self, AdminError> {
        match authenticate(state, &parts.headers).await? {
            Caller::Operator => Ok(Operator),
            Caller::Tenant(_) => Err(AdminError::Forbidden(
                "this call needs the operator token".to_owned(),
            )),
        }
    }
}

/// A call about the tenant the path names (`/v1/tenants/{tenant}/...`), by the operator or
/// that tenant's own token (401 without a known token, 403 with another tenant's).
pub struct ForTenant {
    /// Who is calling.
    pub caller: Caller,
    /// The tenant the path names.
    pub tenant: String,
}

/// A path parameter of the route.
async fn path_param(
    parts: &mut Parts,
    state: &AdminState,
    name: &str,
) -> Result<String, AdminError> {
    let Path(mut params) = Path::<BTreeMap<String, String>>::from_request_parts(parts, state)
        .await
        .map_err(|e| AdminError::BadRequest(e.body_text()))?;
    params
        .remove(name)
        .ok_or_else(|| AdminError::BadRequest(format!("no {name} in the path")))
}

impl FromRequestParts<AdminState> for ForTenant {
    type Rejection = AdminError;

    async fn from_request_parts(parts: &mut Parts, state: &AdminState) -> Result<Self, AdminError> {
        let tenant = path_param(parts, state, "tenant").await?;
        let caller = authenticate(state, &parts.headers).await?;
        match caller.access(&tenant) {
            Access::Allowed => Ok(ForTenant { caller, tenant }),
            Access::Forbidden => Err(AdminError::Forbidden(
                "this token belongs to another tenant".to_owned(),
            )),
        }
    }
}

/// A call about the function the path names (`/v1/tenants/{tenant}/functions/{function}/...`),
/// by the operator or the tenant's own token.
pub struct ForFunction {
    /// The tenant the path names.
    pub tenant: String,
    /// The function the path names.
    pub function: String,
}

impl FromRequestParts<AdminState> for ForFunction {
    type Rejection = AdminError;

    async fn from_request_parts(parts: &mut Parts, state: &AdminState) -> Result<Self, AdminError> {
        let ForTenant { tenant, .. } = ForTenant::from_request_parts(parts, state).await?;
        let function = path_param(parts, state, "function").await?;
        Ok(ForFunction { tenant, function })
    }
}

/// How much of a refused body is read and thrown away, as a multiple of its limit, so that the
/// client, still sending, gets the error response instead of a reset connection.
const DRAIN_FACTOR: u64 = 4;

/// Reads a body of at most `limit` bytes. A larger one is drained (up to four times the
/// limit) and refused with 413.
async fn read_body(body: Body, limit: u64) -> Result<bytes::Bytes, AdminError> {
    use http_body_util::BodyExt as _;
    let mut body = body;
    let mut collected = bytes::BytesMut::new();
    let mut seen: u64 = 0;
    while let Some(frame) = body.frame().await {
        let Ok(frame) = frame else {
            return Err(AdminError::BadRequest(
                "the request body broke off".to_owned(),
            ));
        };
        let Ok(data) = frame.into_data() else {
            continue;
        };
        seen += data.len() as u64;
        if seen > limit.saturating_mul(DRAIN_FACTOR) {
            break;
        }
        if seen <= limit {
            collected.extend_from_slice(&data);
        }
    }
    if seen > limit {
        return Err(AdminError::TooLarge(limit));
    }
    Ok(collected.freeze())
}

/// Throws away what is left of a body refused before reading (bounded by `limit`), so the
/// client gets the error response rather than a reset connection.
async fn drain(body: Body, limit: u64) {
    let _ = read_body(body, limit).await;
}

/// Largest JSON body the API reads.
const MAX_JSON: u64 = 1 << 20;

fn parse_json<T: serde::de::DeserializeOwned>(bytes: &[u8]) -> Result<T, AdminError> {
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return serde_json::from_slice(b"{}").map_err(|e| AdminError::BadRequest(e.to_string()));
    }
    serde_json::from_slice(bytes).map_err(|e| AdminError::BadRequest(format!("invalid JSON: {e}")))
}

async fn healthz() -> Response {
    (StatusCode::OK, axum::Json(json!({"status": "ok"}))).into_response()
}

async fn readyz(State(state): State<AdminState>) -> Response {
    if state.ready.load(Ordering::Acquire) {
        // Only the count: which tenants and why is the operator's to read (/v1/quarantine).
        let quarantined = state.control.quarantined().await.len();
        let body = if quarantined == 0 {
            json!({"status": "ready"})
        } else {
            json!({
                "status": "ready",
                "quarantined": quarantined,
                "detail": "some stored tenants or functions could not be loaded and are not served; see GET /v1/quarantine",
            })
        };
        (StatusCode::OK, axum::Json(body)).into_response()
    } else {
        error(
            StatusCode::SERVICE_UNAVAILABLE,
            "not_ready",
            "the gateway is starting; try again shortly",
        )
    }
}

async fn metrics(State(state): State<AdminState>) -> Response {
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        state.metrics.render(),
    )
        .into_response()
}

async fn not_found() -> Response {
    error(
        StatusCode::NOT_FOUND,
        "not_found",
        "no such admin endpoint; see docs/api.md",
    )
}

/// What start-up could not load: operator only (it names tenants).
async fn list_quarantined(
    _: Operator,
    State(state): State<AdminState>,
) -> Result<Response, AdminError> {
    let quarantined = state.control.quarantined().await;
    Ok(axum::Json(json!({ "quarantined": quarantined })).into_response())
}

async fn list_tenants(
    _: Operator,
    State(state): State<AdminState>,
) -> Result<Response, AdminError> {
    let tenants: BTreeMap<String, TenantSpec> = state.control.tenants().await;
    Ok(axum::Json(json!({ "tenants": tenants })).into_response())
}

async fn put_tenant(
    _: Operator,
    State(state): State<AdminState>,
    Path(tenant): Path<String>,
    body: Body,
) -> Result<Response, AdminError> {
    let spec: TenantSpec = parse_json(&read_body(body, MAX_JSON).await?)?;
    let spec = state.control.put_tenant(&tenant, spec).await?;
    Ok(axum::Json(json!({ "name": tenant, "tenant": spec })).into_response())
}

async fn get_tenant(
    ForTenant { tenant, .. }: ForTenant,
    State(state): State<AdminState>,
) -> Result<Response, AdminError> {
    let spec = state.control.tenant(&tenant).await?;
    Ok(axum::Json(json!({ "name": tenant, "tenant": spec })).into_response())
}

async fn delete_tenant(
    _: Operator,
    State(state): State<AdminState>,
    Path(tenant): Path<String>,
) -> Result<Response, AdminError> {
    state.control.delete_tenant(&tenant).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

async fn create_token(
    _: Operator,
    State(state): State<AdminState>,
    Path(tenant): Path<String>,
) -> Result<Response, AdminError> {
    let token = state.control.create_token(&tenant).await?;
    Ok((StatusCode::CREATED, axum::Json(json!({ "token": token }))).into_response())
}

/// The `route` values of a query string (`?route=/a&route=b.test/c`), percent-decoded.
fn routes_from_query(query: Option<&str>) -> Vec<String> {
    form_urlencoded::parse(query.unwrap_or_default().as_bytes())
        .filter(|(key, _)| key == "route")
        .map(|(_, value)| value.into_owned())
        .collect()
}

async fn deploy(
    access: Result<ForTenant, AdminError>,
    State(state): State<AdminState>,
    Path((tenant, function)): Path<(String, String)>,
    RawQuery(query): RawQuery,
    body: Body,
) -> Result<Response, AdminError> {
    let caller = match access {
        Ok(access) => access.caller,
        Err(e) => {
            // Read (never kept) so the client, still sending, gets the refusal.
            drain(body, state.control.max_upload()).await;
            return Err(e);
        }
    };
    let outcome = async {
        let bytes = read_body(body, state.control.max_upload()).await?;
        let routes = routes_from_query(query.as_deref());
        Ok::<_, AdminError>(
            state
                .control
                .deploy(&caller, &tenant, &function, routes, bytes)
                .await?,
        )
    }
    .await;
    let result = outcome.as_ref().map_or_else(AdminError::result, |_| "ok");
    if state.control.has_tenant(&tenant).await {
        state
            .metrics
            .deployments
            .with_label_values(&[tenant.as_str(), result])
            .inc();
    }
    Ok((StatusCode::CREATED, axum::Json(outcome?)).into_response())
}

async fn list_functions(
    ForTenant { tenant, .. }: ForTenant,
    State(state): State<AdminState>,
) -> Result<Response, AdminError> {
    let functions = state.control.functions(&tenant).await?;
    Ok(axum::Json(json!({ "functions": functions })).into_response())
}

async fn get_function(
    ForFunction { tenant, function }: ForFunction,
    State(state): State<AdminState>,
) -> Result<Response, AdminError> {
    let view = state.control.function(&tenant, &function).await?;
    Ok(axum::Json(view).into_response())
}

#[derive(serde::Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RollbackRequest {
    version: Option<String>,
}

async fn rollback(
    ForFunction { tenant, function }: ForFunction,
    State(state): State<AdminState>,
    body: Body,
) -> Result<Response, AdminError> {
    let request: RollbackRequest = parse_json(&read_body(body, MAX_JSON).await?)?;
    let view = state
        .control
        .rollback(&tenant, &function, request.version)
        .await?;
    Ok(axum::Json(view).into_response())
}

#[derive(serde::Deserialize)]
struct KvListQuery {
    bucket: Option<String>,
    cursor: Option<u64>,
}

async fn list_kv(
    ForTenant { tenant, .. }: ForTenant,
    State(state): State<AdminState>,
    axum::extract::Query(query): axum::extract::Query<KvListQuery>,
) -> Result<Response, AdminError> {
    let page = state
        .control
        .kv_keys(&tenant, query.bucket, query.cursor.unwrap_or(0))
        .await?;
    Ok(axum::Json(json!({
        "keys": page.keys,
        "cursor": page.cursor,
        "usage": {"keys": page.usage.keys, "bytes": page.usage.bytes},
    }))
    .into_response())
}

async fn get_kv(
    ForTenant { tenant, .. }: ForTenant,
    State(state): State<AdminState>,
    Path((_, bucket, key)): Path<(String, String, String)>,
) -> Result<Response, AdminError> {
    let value = state.control.kv_get(&tenant, bucket, key).await?;
    Ok(([(header::CONTENT_TYPE, "application/octet-stream")], value).into_response())
}

async fn delete_kv(
    ForTenant { tenant, .. }: ForTenant,
    State(state): State<AdminState>,
    Path((_, bucket, key)): Path<(String, String, String)>,
) -> Result<Response, AdminError> {
    state.control.kv_delete(&tenant, bucket, key).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

async fn put_config(
    ForFunction { tenant, function }: ForFunction,
    State(state): State<AdminState>,
    body: Body,
) -> Result<Response, AdminError> {
    let config: std::collections::BTreeMap<String, String> =
        parse_json(&read_body(body, MAX_CONFIG_BODY).await?)?;
    let names = state.control.set_config(&tenant, &function, config).await?;
    Ok(axum::Json(json!({ "names": names })).into_response())
}

async fn get_config(
    ForFunction { tenant, function }: ForFunction,
    State(state): State<AdminState>,
) -> Result<Response, AdminError> {
    let names = state.control.config_names(&tenant, &function).await?;
    Ok(axum::Json(json!({ "names": names })).into_response())
}

/// The largest config body: every variable at its largest.
const MAX_CONFIG_BODY: u64 = 2 << 20;

#[derive(serde::Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct PurgeRequest {
    /// Only paths under this prefix; everything when absent.
    prefix: Option<String>,
}

async fn purge_cache(
    ForTenant { tenant, .. }: ForTenant,
    State(state): State<AdminState>,
    body: Body,
) -> Result<Response, AdminError> {
    let request: PurgeRequest = parse_json(&read_body(body, MAX_JSON).await?)?;
    if let Some(prefix) = &request.prefix
        && !prefix.starts_with('/')
    {
        return Err(AdminError::BadRequest(format!(
            "prefix `{prefix}` must start with `/`"
        )));
    }
    let purged = state
        .control
        .purge_cache(&tenant, request.prefix.as_deref())?;
    Ok(axum::Json(serde_json::json!({ "purged": purged })).into_response())
}

async fn delete_function(
    ForFunction { tenant, function }: ForFunction,
    State(state): State<AdminState>,
) -> Result<Response, AdminError> {
    state.control.delete_function(&tenant, &function).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

#[cfg(test)]
mod tests {
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
}
