//! The Pingora glue. [`AtollProxy`] implements [`ProxyHttp`] and answers every request from
//! `request_filter`, in this order:
//!
//! 1. **identify**: keep or make the `x-request-id`;
//! 2. **route**: host and path against the current registry snapshot (lock-free);
//! 3. **read**: the request body, refused past the tenant's `request_body` limit while reading;
//! 4. **invoke**: the function, through [`Runtime::invoke`] with `http` crate types;
//! 5. **respond**: the guest's response streamed out (or written in one go with
//!    `Content-Length` when it is already complete), or the gateway's own JSON error from
//!    [`respond`];
//! 6. **record**: the metrics for the tenant and function.

pub mod request_id;
pub mod respond;

mod body;

use std::sync::Arc;
use std::time::Instant;

use async_trait::async_trait;
use pingora::prelude::*;
use pingora::proxy::{ProxyHttp, Session};

use crate::metrics::Metrics;
use crate::registry::{Endpoint, Registry};
use crate::runtime::Runtime;

use self::request_id::RequestId;
use self::respond::GatewayError;

/// The proxy service's logic: routes requests to tenant functions.
pub struct AtollProxy {
    registry: Arc<Registry>,
    runtime: Arc<Runtime>,
    metrics: Metrics,
}

impl AtollProxy {
    /// A proxy serving whatever `registry` holds, on `runtime`.
    pub fn new(registry: Arc<Registry>, runtime: Arc<Runtime>, metrics: Metrics) -> AtollProxy {
        AtollProxy {
            registry,
            runtime,
            metrics,
        }
    }

    /// Steps 3 to 5 for a routed request: the body, the guest, the response.
    async fn serve(
        &self,
        session: &mut Session,
        endpoint: &Endpoint,
        request_id: &RequestId,
    ) -> pingora::Result<Result<u16, GatewayError>> {
        let limit = endpoint.tenant.limits.request_body.0;
        let body = match body::read_capped(session, limit).await? {
            Ok(body) => body,
            Err(e) => return Ok(Err(e)),
        };
        let request = match body::to_http_request(session.req_header(), body) {
            Ok(request) => request,
            Err(e) => return Ok(Err(e)),
        };
        let invocation = match self
            .runtime
            .invoke(
                &endpoint.function.image,
                &endpoint.tenant.invoke_limits,
                request,
            )
            .await
        {
            Ok(invocation) => invocation,
            Err(e) => return Ok(Err(e.into())),
        };
        self.metrics
            .instantiation
            .with_label_values(&[endpoint.tenant.name.as_str()])
            .observe(invocation.instantiation.as_secs_f64());
        let status = invocation.response.status().as_u16();
        body::write_guest_response(session, invocation.response, request_id).await?;
        Ok(Ok(status))
    }

    async fn write_error(
        &self,
        session: &mut Session,
        error: &GatewayError,
        request_id: &RequestId,
    ) -> pingora::Result<()> {
        let (head, body) = error.to_response(request_id)?;
        session.write_response_header(Box::new(head), false).await?;
        session.write_response_body(Some(body), true).await
    }
}

/// Per-request state Pingora carries between callbacks.
#[derive(Debug, Default)]
pub struct RequestCtx {
    request_id: Option<RequestId>,
}

#[async_trait]
impl ProxyHttp for AtollProxy {
    type CTX = RequestCtx;

    fn new_ctx(&self) -> RequestCtx {
        RequestCtx::default()
    }

    async fn request_filter(&self, session: &mut Session, ctx: &mut RequestCtx) -> Result<bool> {
        let started = Instant::now();
        let request_id =
            RequestId::from_incoming(session.req_header().headers.get(request_id::HEADER));
        let snapshot = self.registry.snapshot();
        let endpoint = {
            let head = session.req_header();
            let host = head.uri.authority().map(|a| a.as_str()).or_else(|| {
                head.headers
                    .get(http::header::HOST)
                    .and_then(|v| v.to_str().ok())
            });
            snapshot.route(host, head.uri.path()).cloned()
        };
        let Some(endpoint) = endpoint else {
            self.write_error(session, &GatewayError::NoRoute, &request_id)
                .await?;
            ctx.request_id = Some(request_id);
            return Ok(true);
        };

        let outcome = self.serve(session, &endpoint, &request_id).await?;
        let status = match &outcome {
            Ok(status) => *status,
            Err(error) => {
                tracing::info!(
                    request_id = request_id.as_str(),
                    tenant = endpoint.tenant.name.as_str(),
                    function = endpoint.function.name.as_str(),
                    code = error.code(),
                    detail = %error.message(),
                    "request failed"
                );
                if let Some(reason) = error.trap_reason() {
                    self.metrics
                        .traps
                        .with_label_values(&[
                            endpoint.tenant.name.as_str(),
                            endpoint.function.name.as_str(),
                            reason,
                        ])
                        .inc();
                }
                self.write_error(session, error, &request_id).await?;
                error.status().as_u16()
            }
        };
        let labels = [
            endpoint.tenant.name.as_str(),
            endpoint.function.name.as_str(),
        ];
        self.metrics
            .request_duration
            .with_label_values(&labels)
            .observe(started.elapsed().as_secs_f64());
        let code = http::StatusCode::from_u16(status).unwrap_or(http::StatusCode::BAD_GATEWAY);
        self.metrics
            .requests
            .with_label_values(&[labels[0], labels[1], code.as_str()])
            .inc();
        ctx.request_id = Some(request_id);
        Ok(true)
    }

    async fn upstream_peer(
        &self,
        _session: &mut Session,
        _ctx: &mut RequestCtx,
    ) -> Result<Box<HttpPeer>> {
        // Every request is answered in `request_filter`; nothing is proxied upstream yet.
        Error::e_explain(
            ErrorType::InternalError,
            "no upstream: requests are served by functions",
        )
    }
}
