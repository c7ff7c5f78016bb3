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
use axum::extract::{Path, RawQuery, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use serde_json::json;

use crate::auth::OperatorToken;
use crate::control::{ControlError, ControlPlane, TenantSpec};
use crate::metrics::Metrics;

mod access;
mod backup_stream;
pub mod listener;

pub use self::access::{ForFunction, ForTenant, Operator};

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
        .route("/v1/admin/token/rotate", post(rotate_operator_token))
        .route("/v1/admin/backup", get(backup))
        .route(
            "/v1/tenants/{tenant}",
            put(put_tenant).get(get_tenant).delete(delete_tenant),
        )
        .route(
            "/v1/tenants/{tenant}/tokens",
            post(create_token).get(list_tokens),
        )
        .route(
            "/v1/tenants/{tenant}/tokens/{id}",
            axum::routing::delete(revoke_token),
        )
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
            AdminError::BadRequest(_) => "invalid",
            AdminError::Forbidden(_) => "forbidden",
            AdminError::Unauthenticated => "error",
            AdminError::Control(e) => e.deploy_result(),
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
            AdminError::Control(e) => {
                if let ControlError::Storage(why) | ControlError::StorageFull(why) = &e {
                    tracing::error!(error = why.as_str(), "admin change failed in storage");
                }
                (e.status(), e.code(), e.to_string())
            }
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

/// How much of a refused body is read and thrown away, as a multiple of its limit, so that the
/// client, still sending, gets the error response instead of a reset connection.
const DRAIN_FACTOR: u64 = 4;

/// The most of an unauthenticated upload that is read (and thrown away) before the 401.
const UNAUTHENTICATED_DRAIN: u64 = 1 << 20;

/// Reads a body of at most `limit` bytes, within [`listener::BODY_TIMEOUT`]. A larger one is
/// refused with 413 once it passes the limit, or at once when its declared length says so. What
/// a client is still sending is drained, never kept, up to four times the limit, so that it reads
/// the 413 instead of a broken pipe; a body declared larger than that is not read at all.
async fn read_body(body: Body, limit: u64) -> Result<bytes::Bytes, AdminError> {
    use http_body::Body as _;
    let declared = body.size_hint().lower();
    if declared > limit {
        let drain_limit = limit.saturating_mul(DRAIN_FACTOR);
        if declared <= drain_limit {
            drain(body, drain_limit).await;
        }
        return Err(AdminError::TooLarge(limit));
    }
    match tokio::time::timeout(listener::BODY_TIMEOUT, collect(body, limit)).await {
        Ok(collected) => collected,
        Err(_elapsed) => Err(AdminError::BadRequest(format!(
            "the request body did not arrive within {} s",
            listener::BODY_TIMEOUT.as_secs()
        ))),
    }
}

async fn collect(mut body: Body, limit: u64) -> Result<bytes::Bytes, AdminError> {
    use http_body_util::BodyExt as _;
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
        if seen > limit {
            drain(body, limit.saturating_mul(DRAIN_FACTOR)).await;
            return Err(AdminError::TooLarge(limit));
        }
        collected.extend_from_slice(&data);
    }
    Ok(collected.freeze())
}

/// Reads and throws away at most `limit` bytes of what is left of a refused body (within the
/// body timeout), so the client gets the error response rather than a reset connection.
async fn drain(mut body: Body, limit: u64) {
    use http_body_util::BodyExt as _;
    let discard = async {
        let mut seen: u64 = 0;
        while let Some(Ok(frame)) = body.frame().await {
            if let Ok(data) = frame.into_data() {
                seen += data.len() as u64;
                if seen > limit {
                    return;
                }
            }
        }
    };
    let _ = tokio::time::timeout(listener::BODY_TIMEOUT, discard).await;
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
    Ok((StatusCode::CREATED, axum::Json(token)).into_response())
}

async fn rotate_operator_token(
    _: Operator,
    State(state): State<AdminState>,
) -> Result<Response, AdminError> {
    let operator = state.operator.clone();
    let token = tokio::task::spawn_blocking(move || operator.rotate())
        .await
        .map_err(|e| ControlError::Storage(format!("rotating the operator token: {e}")))?
        .map_err(ControlError::from)?;
    Ok(axum::Json(json!({ "token": token })).into_response())
}

/// A backup archive of the gateway's data as of now ([`crate::store::backup`]), streamed as
/// it is written. An archive cut short by an error ends the connection without its manifest,
/// so it can never be restored by mistake.
async fn backup(_: Operator, State(state): State<AdminState>) -> Result<Response, AdminError> {
    let source = state.control.backup_source().await?;
    let (tx, rx) = tokio::sync::mpsc::channel(4);
    tokio::task::spawn_blocking(move || {
        let mut out = backup_stream::ChunkWriter::new(tx.clone());
        let written = crate::store::backup::write_archive(source, &mut out)
            .and_then(|manifest| out.finish().map(|()| manifest));
        match written {
            Ok(manifest) => tracing::info!(
                tenants = manifest.tenants,
                components = manifest.components.len(),
                kv_keys = manifest.kv_keys,
                "backup taken"
            ),
            Err(error) => {
                tracing::error!(%error, "backup failed");
                let _ = tx.blocking_send(Err(error));
            }
        }
    });
    Ok((
        [
            (http::header::CONTENT_TYPE, "application/x-tar"),
            (
                http::header::CONTENT_DISPOSITION,
                "attachment; filename=\"atoll-backup.tar\"",
            ),
        ],
        Body::new(backup_stream::ChannelBody { rx }),
    )
        .into_response())
}

async fn list_tokens(
    ForTenant { tenant, .. }: ForTenant,
    State(state): State<AdminState>,
) -> Result<Response, AdminError> {
    let tokens = state.control.tokens(&tenant).await?;
    Ok(axum::Json(json!({ "tokens": tokens })).into_response())
}

async fn revoke_token(
    ForTenant { tenant, .. }: ForTenant,
    State(state): State<AdminState>,
    Path((_, id)): Path<(String, String)>,
) -> Result<Response, AdminError> {
    state.control.revoke_token(&tenant, &id).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
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
            // Read, never kept, so the client still sending gets the refusal: a little of an
            // unauthenticated upload, up to the upload limit for a known token.
            let drained = match e {
                AdminError::Unauthenticated => UNAUTHENTICATED_DRAIN,
                _ => state.control.max_upload(),
            };
            drain(body, drained).await;
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
mod tests;
