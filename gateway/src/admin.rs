//! The admin listener, an axum router: liveness, readiness and metrics for anyone, and the
//! authenticated deploy API under `/v1` (see `docs/api.md`).
//!
//! Every handler authenticates with [`authenticate`], calls the [`ControlPlane`], and turns
//! its errors into the contract's JSON in one place, [`AdminError`]'s `IntoResponse`.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use axum::Router;
use axum::body::Body;
use axum::extract::{Path, RawQuery, State};
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

/// The caller, who must be the operator.
async fn operator(state: &AdminState, headers: &HeaderMap) -> Result<(), AdminError> {
    match authenticate(state, headers).await? {
        Caller::Operator => Ok(()),
        Caller::Tenant(_) => Err(AdminError::Forbidden(
            "this call needs the operator token".to_owned(),
        )),
    }
}

/// The caller, who must be the operator or `tenant`'s own token.
async fn operator_or_tenant(
    state: &AdminState,
    headers: &HeaderMap,
    tenant: &str,
) -> Result<Caller, AdminError> {
    let caller = authenticate(state, headers).await?;
    match caller.access(tenant) {
        Access::Allowed => Ok(caller),
        Access::Forbidden => Err(AdminError::Forbidden(
            "this token belongs to another tenant".to_owned(),
        )),
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
    State(state): State<AdminState>,
    headers: HeaderMap,
) -> Result<Response, AdminError> {
    operator(&state, &headers).await?;
    let quarantined = state.control.quarantined().await;
    Ok(axum::Json(json!({ "quarantined": quarantined })).into_response())
}

async fn list_tenants(
    State(state): State<AdminState>,
    headers: HeaderMap,
) -> Result<Response, AdminError> {
    operator(&state, &headers).await?;
    let tenants: BTreeMap<String, TenantSpec> = state.control.tenants().await;
    Ok(axum::Json(json!({ "tenants": tenants })).into_response())
}

async fn put_tenant(
    State(state): State<AdminState>,
    Path(tenant): Path<String>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, AdminError> {
    operator(&state, &headers).await?;
    let spec: TenantSpec = parse_json(&read_body(body, MAX_JSON).await?)?;
    let spec = state.control.put_tenant(&tenant, spec).await?;
    Ok(axum::Json(json!({ "name": tenant, "tenant": spec })).into_response())
}

async fn get_tenant(
    State(state): State<AdminState>,
    Path(tenant): Path<String>,
    headers: HeaderMap,
) -> Result<Response, AdminError> {
    operator_or_tenant(&state, &headers, &tenant).await?;
    let spec = state.control.tenant(&tenant).await?;
    Ok(axum::Json(json!({ "name": tenant, "tenant": spec })).into_response())
}

async fn delete_tenant(
    State(state): State<AdminState>,
    Path(tenant): Path<String>,
    headers: HeaderMap,
) -> Result<Response, AdminError> {
    operator(&state, &headers).await?;
    state.control.delete_tenant(&tenant).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

async fn create_token(
    State(state): State<AdminState>,
    Path(tenant): Path<String>,
    headers: HeaderMap,
) -> Result<Response, AdminError> {
    operator(&state, &headers).await?;
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
    State(state): State<AdminState>,
    Path((tenant, function)): Path<(String, String)>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, AdminError> {
    let caller = match operator_or_tenant(&state, &headers, &tenant).await {
        Ok(caller) => caller,
        Err(e) => {
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
    let result = match &outcome {
        Ok(_) => "ok",
        Err(AdminError::TooLarge(_)) => "too_large",
        Err(AdminError::Control(ControlError::Invalid { .. }) | AdminError::BadRequest(_)) => {
            "invalid"
        }
        Err(AdminError::Control(ControlError::Forbidden(_)) | AdminError::Forbidden(_)) => {
            "forbidden"
        }
        Err(AdminError::Control(ControlError::NotFound(_))) => "not_found",
        Err(AdminError::Control(ControlError::Conflict(_))) => "conflict",
        Err(_) => "error",
    };
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
    State(state): State<AdminState>,
    Path(tenant): Path<String>,
    headers: HeaderMap,
) -> Result<Response, AdminError> {
    operator_or_tenant(&state, &headers, &tenant).await?;
    let functions = state.control.functions(&tenant).await?;
    Ok(axum::Json(json!({ "functions": functions })).into_response())
}

async fn get_function(
    State(state): State<AdminState>,
    Path((tenant, function)): Path<(String, String)>,
    headers: HeaderMap,
) -> Result<Response, AdminError> {
    operator_or_tenant(&state, &headers, &tenant).await?;
    let view = state.control.function(&tenant, &function).await?;
    Ok(axum::Json(view).into_response())
}

#[derive(serde::Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RollbackRequest {
    version: Option<String>,
}

async fn rollback(
    State(state): State<AdminState>,
    Path((tenant, function)): Path<(String, String)>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, AdminError> {
    operator_or_tenant(&state, &headers, &tenant).await?;
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

/// The tenant's key-value data, after checking the caller and that the tenant exists.
async fn tenant_kv(
    state: &AdminState,
    headers: &HeaderMap,
    tenant: &str,
) -> Result<crate::kv::TenantKv, AdminError> {
    operator_or_tenant(state, headers, tenant).await?;
    if !state.control.has_tenant(tenant).await {
        return Err(AdminError::Control(crate::control::ControlError::NotFound(
            format!("no tenant `{tenant}`"),
        )));
    }
    Ok(state.control.kv(tenant))
}

fn kv_error(e: crate::kv::KvError) -> AdminError {
    match e {
        crate::kv::KvError::Invalid(why) => AdminError::BadRequest(why),
        other => AdminError::Control(crate::control::ControlError::Storage(other.to_string())),
    }
}

async fn list_kv(
    State(state): State<AdminState>,
    Path(tenant): Path<String>,
    axum::extract::Query(query): axum::extract::Query<KvListQuery>,
    headers: HeaderMap,
) -> Result<Response, AdminError> {
    let kv = tenant_kv(&state, &headers, &tenant).await?;
    if let Some(bucket) = &query.bucket {
        crate::kv::store::check_bucket(bucket).map_err(kv_error)?;
    }
    let cursor = query.cursor.unwrap_or(0);
    let (keys, next, usage) = kv
        .run(move |store, tenant| {
            let (keys, next) = store.list_keys(tenant, query.bucket.as_deref(), cursor)?;
            Ok((keys, next, store.usage(tenant)?))
        })
        .await
        .map_err(kv_error)?;
    Ok(axum::Json(json!({
        "keys": keys,
        "cursor": next,
        "usage": {"keys": usage.keys, "bytes": usage.bytes},
    }))
    .into_response())
}

async fn get_kv(
    State(state): State<AdminState>,
    Path((tenant, bucket, key)): Path<(String, String, String)>,
    headers: HeaderMap,
) -> Result<Response, AdminError> {
    let kv = tenant_kv(&state, &headers, &tenant).await?;
    let value = kv
        .run(move |store, tenant| store.get(tenant, &bucket, &key))
        .await
        .map_err(kv_error)?;
    match value {
        Some(value) => Ok((
            [(axum::http::header::CONTENT_TYPE, "application/octet-stream")],
            value,
        )
            .into_response()),
        None => Err(AdminError::Control(crate::control::ControlError::NotFound(
            "no such key".into(),
        ))),
    }
}

async fn delete_kv(
    State(state): State<AdminState>,
    Path((tenant, bucket, key)): Path<(String, String, String)>,
    headers: HeaderMap,
) -> Result<Response, AdminError> {
    let kv = tenant_kv(&state, &headers, &tenant).await?;
    let removed = kv
        .run(move |store, tenant| store.delete_many(tenant, &bucket, &[key]))
        .await
        .map_err(kv_error)?;
    if removed == 0 {
        return Err(AdminError::Control(crate::control::ControlError::NotFound(
            "no such key".into(),
        )));
    }
    Ok(StatusCode::NO_CONTENT.into_response())
}

async fn put_config(
    State(state): State<AdminState>,
    Path((tenant, function)): Path<(String, String)>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, AdminError> {
    operator_or_tenant(&state, &headers, &tenant).await?;
    let config: std::collections::BTreeMap<String, String> =
        parse_json(&read_body(body, MAX_CONFIG_BODY).await?)?;
    let names = state.control.set_config(&tenant, &function, config).await?;
    Ok(axum::Json(json!({ "names": names })).into_response())
}

async fn get_config(
    State(state): State<AdminState>,
    Path((tenant, function)): Path<(String, String)>,
    headers: HeaderMap,
) -> Result<Response, AdminError> {
    operator_or_tenant(&state, &headers, &tenant).await?;
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
    State(state): State<AdminState>,
    Path(tenant): Path<String>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, AdminError> {
    operator_or_tenant(&state, &headers, &tenant).await?;
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
    State(state): State<AdminState>,
    Path((tenant, function)): Path<(String, String)>,
    headers: HeaderMap,
) -> Result<Response, AdminError> {
    operator_or_tenant(&state, &headers, &tenant).await?;
    state.control.delete_function(&tenant, &function).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes_come_from_repeated_query_keys() {
        assert_eq!(
            routes_from_query(Some("route=%2Fa&x=1&route=b.test%2Fc&route=*.d.test/e")),
            vec!["/a", "b.test/c", "*.d.test/e"]
        );
        assert!(routes_from_query(None).is_empty());
    }
}
