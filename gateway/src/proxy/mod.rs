//! The Pingora glue. [`AtollProxy`] implements [`ProxyHttp`]; a request walks:
//!
//! 1. **identify** (`request_filter`): keep or make the `x-request-id`;
//! 2. **route**: the path normalised ([`crate::path`]; 400 `bad_request` when it climbs above
//!    `/` or holds an encoded `/`), then host and path against the current registry snapshot
//!    (lock-free);
//! 3. **answer**, by what the route leads to:
//!    - the tenant's cache, when it holds a fresh response ([`cached`]);
//!    - a function ([`function`]): the rate, the body read under its cap, a concurrency slot,
//!      then the guest invoked with `http` crate types and its response written;
//!    - an origin ([`origin`]): admit, then Pingora proxies it (`upstream_peer`,
//!      `upstream_request_filter`, `response_filter`, `response_body_filter`);
//!    - nothing: 404 `no_route`.
//!
//!    Refusals and failures are the gateway's own JSON errors from [`respond`].
//! 4. **record** (`logging`, which Pingora calls once for every request): the [`Outcome`] the
//!    path ended in becomes the metrics and the access line, in [`outcome`] and nowhere else.
//!
//! What a guest writes to stdout and stderr is logged with its request id when its task ends.

pub mod logs;
pub mod request_id;
pub mod respond;

mod body;
mod cached;
mod function;
mod headers;
mod origin;
mod outcome;

use std::borrow::Cow;
use std::sync::Arc;
use std::time::Instant;

use async_trait::async_trait;
use pingora::prelude::*;
use pingora::proxy::{FailToProxy, ProxyHttp, Session};

use crate::cache::CacheUse;
use crate::config::Observability;
use crate::metrics::Metrics;
use crate::path::PathError;
use crate::registry::{Registry, Target};
use crate::runtime::Runtime;

use self::headers::request_host;
use self::origin::OriginRequest;
use self::outcome::{Exchange, Outcome, Recorder};
use self::request_id::RequestId;
use self::respond::GatewayError;

/// The proxy service's logic: routes requests to tenant functions and origins.
pub struct AtollProxy {
    registry: Arc<Registry>,
    runtime: Arc<Runtime>,
    recorder: Recorder,
}

/// Per-request state Pingora carries between callbacks.
#[derive(Debug, Default)]
pub struct RequestCtx {
    /// Set as the request arrives.
    exchange: Option<Exchange>,
    /// How the request ended, once it has; `None` while an origin's response streams.
    outcome: Option<Outcome>,
    /// Set for a request admitted to an origin, which Pingora proxies after `request_filter`.
    origin: Option<OriginRequest>,
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
            recorder: Recorder::new(metrics, observability),
        }
    }

    /// Answers a request whose route led to `target`, unless it is an origin's to answer:
    /// then `Ok(None)`, with the admitted request in `origin`.
    async fn answer(
        &self,
        session: &mut Session,
        exchange: &Exchange,
        origin: &mut Option<OriginRequest>,
    ) -> Result<Option<Outcome>> {
        let Some(target) = &exchange.target else {
            return Ok(Some(Outcome::Refused(GatewayError::NoRoute)));
        };
        let cache_use = {
            let head = session.req_header();
            CacheUse::of(&head.method, &head.headers)
        };
        if cache_use != CacheUse::Off
            && let Some(status) =
                cached::answer(session, target.tenant(), &exchange.request_id).await?
        {
            return Ok(Some(Outcome::Served {
                status,
                instantiation: std::time::Duration::ZERO,
            }));
        }
        match target {
            Target::Function(endpoint) => function::serve(
                &self.runtime,
                self.recorder.metrics(),
                session,
                endpoint,
                (&exchange.request_id, exchange.started),
                cache_use,
            )
            .await
            .map(Some),
            Target::Origin(endpoint) => match endpoint.tenant.admission.admit().await {
                Ok(admitted) => {
                    *origin = Some(OriginRequest::new(endpoint.clone(), cache_use, admitted));
                    Ok(None)
                }
                Err(rejection) => Ok(Some(Outcome::Refused(rejection.into()))),
            },
        }
    }
}

/// Normalises the request's path in place ([`crate::path`]), so that routing, the function
/// and the origin all see the one spelling; a path that cannot be normalised is refused.
fn normalize_path(head: &mut RequestHeader) -> std::result::Result<(), PathError> {
    let normal = match crate::path::normalize(head.uri.path())? {
        Cow::Borrowed(_) => return Ok(()),
        Cow::Owned(normal) => normal,
    };
    let path_and_query = match head.uri.query() {
        Some(query) => format!("{normal}?{query}"),
        None => normal,
    };
    let mut parts = head.uri.clone().into_parts();
    parts.path_and_query =
        Some(http::uri::PathAndQuery::try_from(path_and_query).map_err(|_| PathError::Invalid)?);
    // Never routed by one spelling and served by another: a URI that cannot be rebuilt is
    // refused.
    let uri = http::Uri::from_parts(parts).map_err(|_| PathError::Invalid)?;
    head.set_uri(uri);
    Ok(())
}

/// Writes the gateway's JSON error for `error`.
async fn write_error(
    session: &mut Session,
    error: &GatewayError,
    request_id: &RequestId,
) -> Result<()> {
    let (head, body) = error.to_response(request_id)?;
    session.write_response_header(Box::new(head), false).await?;
    session.write_response_body(Some(body), true).await
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
        let normalized = normalize_path(session.req_header_mut());
        let target = match normalized {
            Ok(()) => {
                let head = session.req_header();
                self.registry
                    .snapshot()
                    .route(request_host(head), head.uri.path())
                    .cloned()
            }
            Err(_) => None,
        };
        let exchange = ctx.exchange.insert(Exchange {
            request_id,
            started,
            target,
        });
        let answered = match normalized {
            Ok(()) => self.answer(session, exchange, &mut ctx.origin).await?,
            Err(e) => Some(Outcome::Refused(GatewayError::BadRequest(format!(
                "{e}: send the path without it"
            )))),
        };
        let Some(outcome) = answered else {
            return Ok(false); // Pingora proxies it to the origin
        };
        let request_id = &exchange.request_id;
        let outcome = match outcome {
            Outcome::Refused(error) => match write_error(session, &error, request_id).await {
                Ok(()) => Outcome::Refused(error),
                Err(e) => {
                    ctx.outcome = Some(Outcome::ClientGone);
                    return Err(e);
                }
            },
            Outcome::Cut { status, why } => {
                let error = Error::explain(ErrorType::WriteError, why.clone());
                ctx.outcome = Some(Outcome::Cut { status, why });
                return Err(error);
            }
            Outcome::ClientGone => {
                ctx.outcome = Some(Outcome::ClientGone);
                return Error::e_explain(ErrorType::ConnectionClosed, "the client went away");
            }
            served @ (Outcome::Served { .. } | Outcome::Broken { .. }) => served,
        };
        ctx.outcome = Some(outcome);
        Ok(true)
    }

    async fn upstream_peer(
        &self,
        _session: &mut Session,
        ctx: &mut RequestCtx,
    ) -> Result<Box<HttpPeer>> {
        match &ctx.origin {
            Some(request) => request.peer().await,
            // Every other request is answered in `request_filter` and never gets here.
            None => Error::e_explain(ErrorType::InternalError, "no upstream for this request"),
        }
    }

    async fn upstream_request_filter(
        &self,
        session: &mut Session,
        upstream_request: &mut RequestHeader,
        ctx: &mut RequestCtx,
    ) -> Result<()> {
        match (&ctx.origin, &ctx.exchange) {
            (Some(request), Some(exchange)) => {
                request.rewrite_request(session, upstream_request, &exchange.request_id)
            }
            _ => Ok(()),
        }
    }

    async fn response_filter(
        &self,
        session: &mut Session,
        upstream_response: &mut ResponseHeader,
        ctx: &mut RequestCtx,
    ) -> Result<()> {
        match (&mut ctx.origin, &ctx.exchange) {
            (Some(request), Some(exchange)) => {
                request.on_response(session, upstream_response, &exchange.request_id)
            }
            _ => Ok(()),
        }
    }

    fn response_body_filter(
        &self,
        _session: &mut Session,
        body: &mut Option<bytes::Bytes>,
        end_of_stream: bool,
        ctx: &mut RequestCtx,
    ) -> Result<Option<std::time::Duration>> {
        if let Some(request) = &mut ctx.origin {
            request.on_body(body.as_ref(), end_of_stream);
        }
        Ok(None)
    }

    async fn fail_to_proxy(
        &self,
        session: &mut Session,
        e: &Error,
        ctx: &mut RequestCtx,
    ) -> FailToProxy {
        let error_code = if ctx.outcome.is_some() {
            // The path already knows how it ended; nothing more goes to the client.
            0
        } else if let Some(head) = session.response_written() {
            // The head is out: all that is left is to cut the connection.
            ctx.outcome = Some(Outcome::Cut {
                status: head.status.as_u16(),
                why: e.to_string(),
            });
            0
        } else if let (Some(_), Some(exchange)) = (&ctx.origin, &ctx.exchange) {
            let error = origin::failure(e);
            let code = error.status().as_u16();
            ctx.outcome = Some(
                match write_error(session, &error, &exchange.request_id).await {
                    Ok(()) => Outcome::Refused(error),
                    Err(_) => Outcome::ClientGone,
                },
            );
            code
        } else {
            let code = pingora_failure_status(e);
            if code == 0 {
                ctx.outcome = Some(Outcome::ClientGone);
            } else {
                ctx.outcome = Some(Outcome::Broken {
                    status: code,
                    why: e.to_string(),
                });
                if let Err(write) = session.respond_error(code).await {
                    tracing::debug!(error = %write, "writing an error response failed");
                }
            }
            code
        };
        FailToProxy {
            error_code,
            can_reuse_downstream: false,
        }
    }

    async fn logging(&self, session: &mut Session, _e: Option<&Error>, ctx: &mut RequestCtx) {
        let Some(exchange) = &ctx.exchange else {
            return; // refused by Pingora before `request_filter`
        };
        // Only a proxied origin response ends without an outcome of its own.
        let outcome = ctx
            .outcome
            .take()
            .unwrap_or_else(|| match session.response_written() {
                Some(head) => Outcome::Served {
                    status: head.status.as_u16(),
                    instantiation: std::time::Duration::ZERO,
                },
                None => Outcome::ClientGone,
            });
        self.recorder.record(session, exchange, &outcome);
    }
}

/// The status Pingora's own failures get, 0 when the client is gone and gets nothing.
fn pingora_failure_status(e: &Error) -> u16 {
    match e.etype() {
        ErrorType::HTTPStatus(code) => *code,
        _ => match e.esource() {
            ErrorSource::Upstream => 502,
            ErrorSource::Downstream => match e.etype() {
                ErrorType::WriteError | ErrorType::ReadError | ErrorType::ConnectionClosed => 0,
                _ => 400,
            },
            ErrorSource::Internal | ErrorSource::Unset => 500,
        },
    }
}
