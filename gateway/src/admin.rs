//! The admin listener: liveness, readiness and Prometheus metrics, served by an axum router.
//!
//! `GET /healthz` answers as soon as the listener is up; `GET /readyz` once the proxy is
//! serving; `GET /metrics` renders every family of [`Metrics`].

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;

use crate::metrics::Metrics;

/// What the admin handlers share.
#[derive(Debug, Clone)]
pub struct AdminState {
    /// The gateway's metrics.
    pub metrics: Metrics,
    /// Set once the proxy listener is serving.
    pub ready: Arc<AtomicBool>,
}

/// The admin API's router.
pub fn router(state: AdminState) -> Router {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .fallback(not_found)
        .with_state(state)
}

async fn healthz() -> Response {
    (
        StatusCode::OK,
        axum::Json(serde_json::json!({"status": "ok"})),
    )
        .into_response()
}

async fn readyz(State(state): State<AdminState>) -> Response {
    if state.ready.load(Ordering::Acquire) {
        (
            StatusCode::OK,
            axum::Json(serde_json::json!({"status": "ready"})),
        )
            .into_response()
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

/// An admin error in the contract's JSON shape.
fn error(status: StatusCode, code: &str, message: &str) -> Response {
    let body = serde_json::json!({"error": {"code": code, "message": message}});
    (status, axum::Json(body)).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::body::Body;
    use axum::http::Request;
    use tower::ServiceExt as _;

    fn state(ready: bool) -> AdminState {
        AdminState {
            metrics: Metrics::new(),
            ready: Arc::new(AtomicBool::new(ready)),
        }
    }

    async fn get_status(state: AdminState, path: &str) -> StatusCode {
        let request = Request::get(path).body(Body::empty()).unwrap();
        router(state).oneshot(request).await.unwrap().status()
    }

    #[tokio::test]
    async fn health_and_readiness() {
        assert_eq!(get_status(state(false), "/healthz").await, StatusCode::OK);
        assert_eq!(
            get_status(state(false), "/readyz").await,
            StatusCode::SERVICE_UNAVAILABLE
        );
        assert_eq!(get_status(state(true), "/readyz").await, StatusCode::OK);
        assert_eq!(
            get_status(state(true), "/nope").await,
            StatusCode::NOT_FOUND
        );
    }

    #[tokio::test]
    async fn metrics_are_prometheus_text() {
        let state = state(true);
        state.metrics.functions_loaded.set(3);
        let request = Request::get("/metrics").body(Body::empty()).unwrap();
        let response = router(state).oneshot(request).await.unwrap();
        let body = axum::body::to_bytes(response.into_body(), 1 << 20)
            .await
            .unwrap();
        let text = String::from_utf8(body.to_vec()).unwrap();
        assert!(text.contains("atoll_functions_loaded 3"), "{text}");
    }
}
