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
//! 7. **record**: the metrics for the tenant and function, and the access line ([`logs`]).
//!
//! What a guest writes to stdout and stderr is logged with its request id when its task ends.

pub mod logs;
pub mod request_id;
pub mod respond;

mod body;
mod cached;
mod upstream;

use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use pingora::prelude::*;
use pingora::proxy::{FailToProxy, ProxyHttp, Session};

use crate::admission::Admitted;
use crate::cache::{CacheUse, Fill, RequestKey, policy};
use crate::config::{Observability, Recording};
use crate::metrics::{FunctionMetrics, Metrics};
use crate::registry::{Endpoint, OriginEndpoint, Registry, Target};
use crate::runtime::{GuestObserver, GuestOutput, GuestStats, InvokeError, Runtime};

use self::body::Written;
use self::logs::AccessRecord;
use self::request_id::RequestId;
use self::respond::GatewayError;

/// How long a guest runs before the proxy starts watching for the client going away. Most
/// requests finish well within it, and skipping the watch saves them a socket read.
const CLIENT_WATCH_AFTER: Duration = Duration::from_millis(2);

/// The proxy service's logic: routes requests to tenant functions.
pub struct AtollProxy {
    registry: Arc<Registry>,
    runtime: Arc<Runtime>,
    metrics: Metrics,
    observability: Observability,
}

/// How a routed request ended.
enum Outcome {
    /// The guest's response went out with this status.
    Served {
        status: u16,
        instantiation: Duration,
    },
    /// The gateway answers with its own error.
    Refused(GatewayError),
    /// The response failed after its head, with this status, was sent: the connection is cut.
    Cut { status: u16, why: String },
    /// The client went away before the response.
    ClientGone,
}

impl AtollProxy {
    /// A proxy serving whatever `registry` holds, on `runtime`, recording what `observability`
    /// asks for.
    pub fn new(
        registry: Arc<Registry>,
        runtime: Arc<Runtime>,
        metrics: Metrics,
        observability: Observability,
    ) -> AtollProxy {
        AtollProxy {
            registry,
            runtime,
            metrics,
            observability,
        }
    }

    /// Steps 3 to 6 for a routed request that arrived at `started`.
    async fn serve(
        &self,
        session: &mut Session,
        endpoint: &Endpoint,
        request_id: &RequestId,
        started: Instant,
        cache_use: CacheUse,
    ) -> pingora::Result<Outcome> {
        let tenant = &endpoint.tenant;
        // The wall-clock budget covers everything from here: queueing, reading, the guest and
        // the response body.
        let deadline = started + tenant.limits.timeout;
        let _admitted = match tenant.admission.admit().await {
            Ok(admitted) => admitted,
            Err(rejection) => return Ok(Outcome::Refused(rejection.into())),
        };
        let body = match body::read_capped(session, tenant.limits.request_body.0).await? {
            Ok(body) => body,
            Err(e) => return Ok(Outcome::Refused(e)),
        };
        // What the guest sees as the scheme: how the client reached the gateway.
        let tls = session
            .digest()
            .is_some_and(|digest| digest.ssl_digest.is_some());
        let scheme = if tls {
            http::uri::Scheme::HTTPS
        } else {
            http::uri::Scheme::HTTP
        };
        let request = match body::to_http_request(session.req_header(), scheme, body) {
            Ok(request) => request,
            Err(e) => return Ok(Outcome::Refused(e)),
        };
        let invoke = self.runtime.invoke_observed(
            &endpoint.function.image,
            &tenant.invoke_limits,
            &endpoint.function.config,
            request,
            InstanceObserver::new(endpoint, request_id, self.observability.metrics),
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
        let instantiation = invocation.instantiation;
        Ok(
            match body::write_guest_response(
                session,
                invocation.response,
                request_id,
                deadline,
                (cache_use, tenant),
            )
            .await?
            {
                Written::Complete => Outcome::Served {
                    status,
                    instantiation,
                },
                Written::FailedBeforeHead(e) => Outcome::Refused(e),
                Written::FailedAfterHead(why) => Outcome::Cut { status, why },
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

    /// The request's duration and status in its function's (or origin's) metrics.
    fn record_request(&self, answerer: Answerer<'_>, status: u16, duration: Duration) {
        if self.observability.metrics == Recording::Off {
            return;
        }
        answerer.metrics.duration.observe(duration.as_secs_f64());
        if status == 200 {
            answerer.metrics.ok.inc();
        } else {
            let code = http::StatusCode::from_u16(status).unwrap_or(http::StatusCode::BAD_GATEWAY);
            self.metrics
                .requests
                .with_label_values(&[answerer.tenant, answerer.name, code.as_str()])
                .inc();
        }
    }

    /// The request's access line: `(status, instantiation time)` and how long it took.
    fn log_access(
        &self,
        session: &Session,
        request_id: &RequestId,
        answerer: Option<Answerer<'_>>,
        (status, instantiation): (u16, Duration),
        duration: Duration,
    ) {
        if self.observability.access_log == Recording::Off {
            return;
        }
        let head = session.req_header();
        let (tenant, function, route) = match answerer {
            Some(a) => (a.tenant, a.name, a.route),
            None => ("", "", ""),
        };
        AccessRecord {
            request_id: request_id.as_str(),
            method: head.method.as_str(),
            host: request_host(head).unwrap_or_default(),
            path: head.uri.path(),
            tenant,
            function,
            route,
            status,
            duration,
            instantiation,
        }
        .log();
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
        if self.observability.metrics == Recording::Off {
            return;
        }
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

/// Who answered a routed request, for its metrics and access line: a function, or an origin
/// (whose name stands in the `function` label).
#[derive(Clone, Copy)]
struct Answerer<'a> {
    tenant: &'a str,
    name: &'a str,
    route: &'a str,
    metrics: &'a FunctionMetrics,
}

impl<'a> From<&'a Endpoint> for Answerer<'a> {
    fn from(e: &'a Endpoint) -> Self {
        Answerer {
            tenant: &e.tenant.name,
            name: &e.function.name,
            route: &e.route,
            metrics: &e.metrics,
        }
    }
}

impl<'a> From<&'a OriginEndpoint> for Answerer<'a> {
    fn from(o: &'a OriginEndpoint) -> Self {
        Answerer {
            tenant: &o.tenant.name,
            name: &o.origin.name,
            route: &o.route,
            metrics: &o.metrics,
        }
    }
}

/// Counts a guest in `atoll_instances_active` for as long as its task lives, records its
/// instantiation time, memory peak and execution time when it finishes, and logs what it wrote.
struct InstanceObserver {
    endpoint: Endpoint,
    request_id: RequestId,
    metrics: Recording,
}

impl InstanceObserver {
    fn new(endpoint: &Endpoint, request_id: &RequestId, metrics: Recording) -> InstanceObserver {
        if metrics == Recording::On {
            endpoint.metrics.active.inc();
        }
        InstanceObserver {
            endpoint: endpoint.clone(),
            request_id: request_id.clone(),
            metrics,
        }
    }
}

impl GuestObserver for InstanceObserver {
    fn guest_finished(&mut self, stats: &GuestStats) {
        if self.metrics == Recording::Off {
            return;
        }
        let metrics = &self.endpoint.metrics;
        metrics
            .instantiation
            .observe(stats.instantiation.as_secs_f64());
        metrics.memory_peak.observe(stats.memory_peak as f64);
        metrics.execution.inc_by(stats.execution.as_secs_f64());
    }

    fn guest_output(&mut self, output: GuestOutput) {
        logs::log_guest_output(&self.endpoint, &self.request_id, &output);
    }
}

impl Drop for InstanceObserver {
    fn drop(&mut self) {
        if self.metrics == Recording::On {
            self.endpoint.metrics.active.dec();
        }
    }
}

/// The request's host: the URI's authority, or else the `Host` header (port and all).
fn request_host(head: &pingora::http::RequestHeader) -> Option<&str> {
    head.uri.authority().map(|a| a.as_str()).or_else(|| {
        head.headers
            .get(http::header::HOST)
            .and_then(|v| v.to_str().ok())
    })
}

/// Per-request state Pingora carries between callbacks.
#[derive(Debug, Default)]
pub struct RequestCtx {
    request_id: Option<RequestId>,
    /// Set for a request routed to an origin, which Pingora proxies after `request_filter`.
    origin: Option<OriginRequest>,
    /// How the request may use the cache.
    cache_use: CacheUse,
    /// The origin's response being recorded for the cache.
    fill: Option<Fill>,
}

/// A request on its way to an origin.
#[derive(Debug)]
struct OriginRequest {
    endpoint: OriginEndpoint,
    started: Instant,
    /// The tenant's concurrency slot, held until the request ends.
    _admitted: Admitted,
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
        let target = {
            let head = session.req_header();
            snapshot.route(request_host(head), head.uri.path()).cloned()
        };
        drop(snapshot);
        let cache_use = {
            let head = session.req_header();
            CacheUse::of(&head.method, &head.headers)
        };
        if cache_use != CacheUse::Off
            && let Some(target) = &target
            && self
                .answer_from_cache(session, target, &request_id, started)
                .await?
        {
            ctx.request_id = Some(request_id);
            return Ok(true);
        }
        let endpoint = match target {
            Some(Target::Function(endpoint)) => Some(endpoint),
            Some(Target::Origin(origin)) => {
                ctx.cache_use = cache_use;
                return self
                    .admit_to_origin(session, ctx, origin, request_id, started)
                    .await;
            }
            None => None,
        };
        let (status, instantiation) = match &endpoint {
            None => {
                self.write_error(session, &GatewayError::NoRoute, &request_id)
                    .await?;
                (GatewayError::NoRoute.status().as_u16(), Duration::ZERO)
            }
            Some(endpoint) => match self
                .serve(session, endpoint, &request_id, started, cache_use)
                .await?
            {
                Outcome::Served {
                    status,
                    instantiation,
                } => (status, instantiation),
                Outcome::Refused(error) => {
                    self.record_failure(endpoint, &error, &request_id);
                    self.write_error(session, &error, &request_id).await?;
                    (error.status().as_u16(), Duration::ZERO)
                }
                Outcome::Cut { status, why } => {
                    tracing::warn!(
                        request_id = request_id.as_str(),
                        tenant = endpoint.tenant.name.as_str(),
                        function = endpoint.function.name.as_str(),
                        detail = why.as_str(),
                        "response cut short"
                    );
                    let served = (status, Duration::ZERO);
                    let duration = started.elapsed();
                    let answerer = Some(endpoint.into());
                    self.log_access(session, &request_id, answerer, served, duration);
                    return Error::e_explain(ErrorType::WriteError, why);
                }
                Outcome::ClientGone => {
                    let served = (logs::CLIENT_CLOSED_STATUS, Duration::ZERO);
                    let duration = started.elapsed();
                    let answerer = Some(endpoint.into());
                    self.log_access(session, &request_id, answerer, served, duration);
                    return Error::e_explain(ErrorType::ConnectionClosed, "the client went away");
                }
            },
        };
        let duration = started.elapsed();
        if let Some(endpoint) = &endpoint {
            self.record_request(endpoint.into(), status, duration);
        }
        self.log_access(
            session,
            &request_id,
            endpoint.as_ref().map(Answerer::from),
            (status, instantiation),
            duration,
        );
        ctx.request_id = Some(request_id);
        Ok(true)
    }

    async fn upstream_peer(
        &self,
        _session: &mut Session,
        ctx: &mut RequestCtx,
    ) -> Result<Box<HttpPeer>> {
        let Some(request) = &ctx.origin else {
            // Function requests are answered in `request_filter` and never get here.
            return Error::e_explain(ErrorType::InternalError, "no upstream for this request");
        };
        let origin = &request.endpoint.origin;
        let address = origin.address().await.map_err(|e| {
            Error::because(
                ErrorType::ConnectNoRoute,
                format!("resolving origin {}", origin.spec.url.host),
                e,
            )
        })?;
        Ok(Box::new(upstream::peer(origin, address)))
    }

    async fn upstream_request_filter(
        &self,
        session: &mut Session,
        upstream_request: &mut RequestHeader,
        ctx: &mut RequestCtx,
    ) -> Result<()> {
        let (Some(request), Some(request_id)) = (&ctx.origin, &ctx.request_id) else {
            return Ok(());
        };
        let client_host = request_host(session.req_header()).map(str::to_owned);
        let client_address = session
            .client_addr()
            .and_then(|a| a.as_inet())
            .map(|a| a.ip().to_string());
        upstream::rewrite(
            &request.endpoint.origin,
            upstream_request,
            client_host.as_deref(),
            client_address,
            request_id,
        )
    }

    async fn response_filter(
        &self,
        session: &mut Session,
        upstream_response: &mut ResponseHeader,
        ctx: &mut RequestCtx,
    ) -> Result<()> {
        let (Some(request), Some(request_id)) = (&ctx.origin, &ctx.request_id) else {
            return Ok(());
        };
        upstream_response.insert_header(request_id::HEADER, request_id.as_str())?;
        if ctx.cache_use == CacheUse::Off {
            return Ok(());
        }
        upstream_response.insert_header(cached::X_CACHE, "MISS")?;
        let head = session.req_header();
        let authorized = head.headers.contains_key(http::header::AUTHORIZATION);
        if ctx.cache_use == CacheUse::LookupAndFill
            && let Some(ttl) = policy::freshness(
                upstream_response.status,
                &upstream_response.headers,
                authorized,
            )
            && let Some(cache) = request.endpoint.tenant.cache_to_fill()
        {
            let key = RequestKey {
                host: request_host(head).unwrap_or_default(),
                path: head.uri.path(),
                query: head.uri.query(),
                headers: &head.headers,
            };
            ctx.fill = Some(Fill::new(
                &key,
                upstream_response.status,
                cached::headers_to_store(&upstream_response.headers),
                ttl,
                cache.max_object(),
            ));
        }
        Ok(())
    }

    fn response_body_filter(
        &self,
        _session: &mut Session,
        body: &mut Option<bytes::Bytes>,
        end_of_stream: bool,
        ctx: &mut RequestCtx,
    ) -> Result<Option<Duration>> {
        if let Some(fill) = &mut ctx.fill {
            if let Some(data) = body {
                fill.push(data);
            }
            if end_of_stream
                && let (Some(fill), Some(request)) = (ctx.fill.take(), &ctx.origin)
                && let Some(cache) = request.endpoint.tenant.cache()
            {
                fill.finish(cache);
            }
        }
        Ok(None)
    }

    async fn fail_to_proxy(
        &self,
        session: &mut Session,
        e: &Error,
        ctx: &mut RequestCtx,
    ) -> FailToProxy {
        let (Some(request), Some(request_id)) = (&ctx.origin, &ctx.request_id) else {
            return default_failure(session, e).await;
        };
        let error = upstream::failure(e);
        let origin = &request.endpoint;
        tracing::warn!(
            request_id = request_id.as_str(),
            tenant = origin.tenant.name.as_str(),
            origin = origin.origin.name.as_str(),
            code = error.code(),
            detail = %e,
            "origin request failed"
        );
        if session.response_written().is_some() {
            // The head is out: all that is left is to cut the connection.
            return FailToProxy {
                error_code: 0,
                can_reuse_downstream: false,
            };
        }
        let code = error.status().as_u16();
        if let Err(write) = self.write_error(session, &error, request_id).await {
            tracing::debug!(error = %write, "writing the origin error failed");
        }
        FailToProxy {
            error_code: code,
            can_reuse_downstream: false,
        }
    }

    async fn logging(&self, session: &mut Session, _e: Option<&Error>, ctx: &mut RequestCtx) {
        let (Some(request), Some(request_id)) = (&ctx.origin, &ctx.request_id) else {
            return; // function requests are recorded in `request_filter`
        };
        let status = session
            .response_written()
            .map_or(logs::CLIENT_CLOSED_STATUS, |r| r.status.as_u16());
        let duration = request.started.elapsed();
        let answerer = Answerer::from(&request.endpoint);
        self.record_request(answerer, status, duration);
        self.log_access(
            session,
            request_id,
            Some(answerer),
            (status, Duration::ZERO),
            duration,
        );
    }
}

/// What Pingora does with a failure outside origin requests: a bare error response with the
/// status the error carries, unless the client is gone.
async fn default_failure(session: &mut Session, e: &Error) -> FailToProxy {
    let code = match e.etype() {
        ErrorType::HTTPStatus(code) => *code,
        _ => match e.esource() {
            ErrorSource::Upstream => 502,
            ErrorSource::Downstream => match e.etype() {
                ErrorType::WriteError | ErrorType::ReadError | ErrorType::ConnectionClosed => 0,
                _ => 400,
            },
            ErrorSource::Internal | ErrorSource::Unset => 500,
        },
    };
    if code > 0
        && let Err(write) = session.respond_error(code).await
    {
        tracing::debug!(error = %write, "writing an error response failed");
    }
    FailToProxy {
        error_code: code,
        can_reuse_downstream: false,
    }
}

impl AtollProxy {
    /// Answers from the target's tenant's cache when it holds a fresh response for the request;
    /// `Ok(false)` when it does not.
    async fn answer_from_cache(
        &self,
        session: &mut Session,
        target: &Target,
        request_id: &RequestId,
        started: Instant,
    ) -> Result<bool> {
        let Some(cache) = target.tenant().cache() else {
            return Ok(false);
        };
        let entry = {
            let head = session.req_header();
            cache.lookup(&RequestKey {
                host: request_host(head).unwrap_or_default(),
                path: head.uri.path(),
                query: head.uri.query(),
                headers: &head.headers,
            })
        };
        let Some(entry) = entry else {
            return Ok(false);
        };
        let status = cached::write_hit(session, &entry, request_id).await?;
        let duration = started.elapsed();
        let answerer = match target {
            Target::Function(endpoint) => Answerer::from(endpoint),
            Target::Origin(endpoint) => Answerer::from(endpoint),
        };
        self.record_request(answerer, status, duration);
        self.log_access(
            session,
            request_id,
            Some(answerer),
            (status, Duration::ZERO),
            duration,
        );
        Ok(true)
    }

    /// Admits a request for an origin under its tenant's rate and concurrency, and leaves it to
    /// Pingora to proxy (`Ok(false)`); a refused one is answered here.
    async fn admit_to_origin(
        &self,
        session: &mut Session,
        ctx: &mut RequestCtx,
        endpoint: OriginEndpoint,
        request_id: RequestId,
        started: Instant,
    ) -> Result<bool> {
        let refused = match endpoint.tenant.admission.admit().await {
            Ok(admitted) => {
                ctx.origin = Some(OriginRequest {
                    endpoint,
                    started,
                    _admitted: admitted,
                });
                ctx.request_id = Some(request_id);
                return Ok(false);
            }
            Err(rejection) => GatewayError::from(rejection),
        };
        if self.observability.metrics == Recording::On
            && let Some(limit) = refused.limit()
        {
            self.metrics
                .limit_rejections
                .with_label_values(&[endpoint.tenant.name.as_str(), limit])
                .inc();
        }
        self.write_error(session, &refused, &request_id).await?;
        let status = refused.status().as_u16();
        let duration = started.elapsed();
        let answerer = Answerer::from(&endpoint);
        self.record_request(answerer, status, duration);
        self.log_access(
            session,
            &request_id,
            Some(answerer),
            (status, Duration::ZERO),
            duration,
        );
        ctx.request_id = Some(request_id);
        Ok(true)
    }
}
