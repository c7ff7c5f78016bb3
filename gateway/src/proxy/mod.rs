//! The Pingora glue. [`AtollProxy`] implements [`ProxyHttp`] and answers every request from
//! `request_filter`, in this order:
//!
//! 1. **identify**: keep or make the `x-request-id`;
//! 2. **route**: host and path against the current registry snapshot (lock-free);
//! 3. **admit**: the tenant's rate, then a concurrency slot (a short bounded wait);
//! 4. **read**: the request body, refused past the tenant's `request_body` limit while reading;
//! 5. **invoke**: the function, through [`Runtime::invoke`] with `http` crate types; a client
//!    that goes away stops the guest;
//! 6. **respond**: the guest's response streamed out (or written in one go with
//!    `Content-Length` when it is already complete), or the gateway's own JSON error from
//!    [`respond`];
//! 7. **record**: the metrics for the tenant and function.

pub mod request_id;
pub mod respond;

mod body;

use std::sync::Arc;
use std::time::Instant;

use async_trait::async_trait;
use pingora::prelude::*;
use pingora::proxy::{ProxyHttp, Session};

use crate::admission::Rejection;
use crate::metrics::{FunctionMetrics, Metrics};
use crate::registry::{Endpoint, Registry};
use crate::runtime::{GuestObserver, GuestStats, InvokeError, Runtime};

use self::body::Written;
use self::request_id::RequestId;
use self::respond::GatewayError;

/// How long a guest runs before the proxy starts watching for the client going away. Most
/// requests finish well within it, and skipping the watch saves them a socket read.
const CLIENT_WATCH_AFTER: std::time::Duration = std::time::Duration::from_millis(2);

/// The proxy service's logic: routes requests to tenant functions.
pub struct AtollProxy {
    registry: Arc<Registry>,
    runtime: Arc<Runtime>,
    metrics: Metrics,
}

/// How a routed request ended.
enum Outcome {
    /// The guest's response went out with this status.
    Served(u16),
    /// The gateway answers with its own error.
    Refused(GatewayError),
    /// The response failed after its head was sent: the connection is cut.
    Cut(String),
    /// The client went away before the response.
    ClientGone,
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

    /// Steps 3 to 6 for a routed request that arrived at `started`.
    async fn serve(
        &self,
        session: &mut Session,
        endpoint: &Endpoint,
        request_id: &RequestId,
        started: Instant,
    ) -> pingora::Result<Outcome> {
        let tenant = &endpoint.tenant;
        // The wall-clock budget covers everything from here: queueing, reading, the guest and
        // the response body.
        let deadline = started + tenant.limits.timeout;
        let _admitted = match tenant.admission.admit().await {
            Ok(admitted) => admitted,
            Err(Rejection::Rate { retry_after }) => {
                let retry_after = retry_after.as_secs_f64().ceil().max(1.0) as u64;
                return Ok(Outcome::Refused(GatewayError::RateLimited { retry_after }));
            }
            Err(Rejection::Concurrency) => return Ok(Outcome::Refused(GatewayError::OverCapacity)),
        };
        let body = match body::read_capped(session, tenant.limits.request_body.0).await? {
            Ok(body) => body,
            Err(e) => return Ok(Outcome::Refused(e)),
        };
        let request = match body::to_http_request(session.req_header(), body) {
            Ok(request) => request,
            Err(e) => return Ok(Outcome::Refused(e)),
        };
        let invoke = self.runtime.invoke_observed(
            &endpoint.function.image,
            &tenant.invoke_limits,
            request,
            InstanceObserver::new(endpoint.metrics.clone()),
        );
        let remaining = deadline.saturating_duration_since(Instant::now());
        let invocation = tokio::select! {
            result = pingora::time::fast_timeout::fast_timeout(remaining, invoke) => match result {
                Ok(Ok(invocation)) => invocation,
                Ok(Err(e)) => return Ok(Outcome::Refused(e.into())),
                Err(_elapsed) => return Ok(Outcome::Refused(InvokeError::Timeout.into())),
            },
            () = body::client_gone(session, CLIENT_WATCH_AFTER) => return Ok(Outcome::ClientGone),
        };
        let status = invocation.response.status().as_u16();
        Ok(
            match body::write_guest_response(session, invocation.response, request_id, deadline)
                .await?
            {
                Written::Complete => Outcome::Served(status),
                Written::FailedBeforeHead(e) => Outcome::Refused(e),
                Written::FailedAfterHead(why) => Outcome::Cut(why),
            },
        )
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

    fn record_failure(&self, endpoint: &Endpoint, error: &GatewayError, request_id: &RequestId) {
        let tenant = endpoint.tenant.name.as_str();
        let function = endpoint.function.name.as_str();
        tracing::info!(
            request_id = request_id.as_str(),
            tenant,
            function,
            code = error.code(),
            detail = %error.message(),
            "request failed"
        );
        if let Some(reason) = error.trap_reason() {
            self.metrics
                .traps
                .with_label_values(&[tenant, function, reason])
                .inc();
        }
        if let Some(limit) = error.limit() {
            self.metrics
                .limit_rejections
                .with_label_values(&[tenant, limit])
                .inc();
        }
    }
}

/// Counts a guest in `atoll_instances_active` for as long as its task lives, and records its
/// instantiation time, memory peak and execution time when it finishes.
struct InstanceObserver {
    metrics: Arc<FunctionMetrics>,
}

impl InstanceObserver {
    fn new(metrics: Arc<FunctionMetrics>) -> InstanceObserver {
        metrics.active.inc();
        InstanceObserver { metrics }
    }
}

impl GuestObserver for InstanceObserver {
    fn guest_finished(&mut self, stats: &GuestStats) {
        self.metrics
            .instantiation
            .observe(stats.instantiation.as_secs_f64());
        self.metrics.memory_peak.observe(stats.memory_peak as f64);
        self.metrics.execution.inc_by(stats.execution.as_secs_f64());
    }
}

impl Drop for InstanceObserver {
    fn drop(&mut self) {
        self.metrics.active.dec();
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
        drop(snapshot);
        let Some(endpoint) = endpoint else {
            self.write_error(session, &GatewayError::NoRoute, &request_id)
                .await?;
            ctx.request_id = Some(request_id);
            return Ok(true);
        };

        let status = match self.serve(session, &endpoint, &request_id, started).await? {
            Outcome::Served(status) => status,
            Outcome::Refused(error) => {
                self.record_failure(&endpoint, &error, &request_id);
                self.write_error(session, &error, &request_id).await?;
                error.status().as_u16()
            }
            Outcome::Cut(why) => {
                tracing::warn!(
                    request_id = request_id.as_str(),
                    tenant = endpoint.tenant.name.as_str(),
                    function = endpoint.function.name.as_str(),
                    detail = why.as_str(),
                    "response cut short"
                );
                return Error::e_explain(ErrorType::WriteError, why);
            }
            Outcome::ClientGone => {
                tracing::debug!(request_id = request_id.as_str(), "client went away");
                return Error::e_explain(ErrorType::ConnectionClosed, "the client went away");
            }
        };
        endpoint
            .metrics
            .duration
            .observe(started.elapsed().as_secs_f64());
        if status == 200 {
            endpoint.metrics.ok.inc();
        } else {
            let code = http::StatusCode::from_u16(status).unwrap_or(http::StatusCode::BAD_GATEWAY);
            self.metrics
                .requests
                .with_label_values(&[
                    endpoint.tenant.name.as_str(),
                    endpoint.function.name.as_str(),
                    code.as_str(),
                ])
                .inc();
        }
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
