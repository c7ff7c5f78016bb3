//! How a request ended, and the one place that records it. Every path (a function, an origin,
//! a cache hit, an admission refusal, a gateway error, a client that went away, a response cut
//! after its head) ends in one [`Outcome`], which [`Recorder::record`] turns into the request's
//! metrics, its failure event and its access line, from Pingora's `logging` callback, which
//! runs once for every request whatever its path.

use std::time::{Duration, Instant};

use pingora::proxy::Session;

use crate::config::{Observability, Recording};
use crate::metrics::{FunctionMetrics, Metrics};
use crate::registry::Target;

use super::headers::request_host;
use super::logs::{AccessRecord, CLIENT_CLOSED_STATUS};
use super::request_id::RequestId;
use super::respond::GatewayError;

/// The tracing target of the proxy's failure events (`request failed`, `response cut short`),
/// as `docs/observability.md` lists them.
const EVENT_TARGET: &str = "atoll_gateway::proxy";

/// How a request ended.
#[derive(Debug)]
pub(super) enum Outcome {
    /// A whole response went out with this status: a guest's, an origin's or the cache's.
    /// `instantiation` is the time creating the guest's instance (zero for the others).
    Served {
        status: u16,
        instantiation: Duration,
    },
    /// The gateway answered with its own error.
    Refused(GatewayError),
    /// The response failed after its head, with this status, went out: the connection is cut.
    Cut { status: u16, why: String },
    /// Pingora failed the request before anything was routed to answer it (a malformed body,
    /// say) and answered with this status itself.
    Broken { status: u16, why: String },
    /// The client went away before its response.
    ClientGone,
}

impl Outcome {
    /// The status the client got, or [`CLIENT_CLOSED_STATUS`] when it got none.
    pub(super) fn status(&self) -> u16 {
        match self {
            Outcome::Served { status, .. }
            | Outcome::Cut { status, .. }
            | Outcome::Broken { status, .. } => *status,
            Outcome::Refused(error) => error.status().as_u16(),
            Outcome::ClientGone => CLIENT_CLOSED_STATUS,
        }
    }

    fn instantiation(&self) -> Duration {
        match self {
            Outcome::Served { instantiation, .. } => *instantiation,
            _ => Duration::ZERO,
        }
    }
}

/// What the proxy knows of a request from its arrival on: kept in the request's context until
/// it is recorded.
#[derive(Debug)]
pub(super) struct Exchange {
    pub(super) request_id: RequestId,
    pub(super) started: Instant,
    /// What the route leads to; `None` when no route matched.
    pub(super) target: Option<Target>,
}

/// Who answered a routed request, for its metrics and access line: a function, or an origin
/// (whose name stands in the `function` label).
struct Answerer<'a> {
    tenant: &'a str,
    name: &'a str,
    route: &'a str,
    metrics: &'a FunctionMetrics,
}

impl<'a> From<&'a Target> for Answerer<'a> {
    fn from(target: &'a Target) -> Self {
        match target {
            Target::Function(e) => Answerer {
                tenant: &e.tenant.name,
                name: &e.function.name,
                route: &e.route,
                metrics: &e.metrics,
            },
            Target::Origin(o) => Answerer {
                tenant: &o.tenant.name,
                name: &o.origin.name,
                route: &o.route,
                metrics: &o.metrics,
            },
        }
    }
}

/// Records outcomes as `observability` asks: metrics and access lines.
pub(super) struct Recorder {
    metrics: Metrics,
    observability: Observability,
}

impl Recorder {
    pub(super) fn new(metrics: Metrics, observability: Observability) -> Recorder {
        Recorder {
            metrics,
            observability,
        }
    }

    /// Whether per-request metrics are on (guests' own series follow it too).
    pub(super) fn metrics(&self) -> Recording {
        self.observability.metrics
    }

    /// Records how `exchange` ended: its failure event, its metrics and its access line.
    pub(super) fn record(&self, session: &Session, exchange: &Exchange, outcome: &Outcome) {
        let duration = exchange.started.elapsed();
        let answerer = exchange.target.as_ref().map(Answerer::from);
        let status = outcome.status();
        self.log_failure(exchange, answerer.as_ref(), outcome);
        if let Some(answerer) = &answerer {
            self.count(answerer, outcome, status, duration);
        }
        if self.observability.access_log == Recording::On {
            let head = session.req_header();
            let (tenant, function, route) = answerer
                .as_ref()
                .map_or(("", "", ""), |a| (a.tenant, a.name, a.route));
            AccessRecord {
                request_id: exchange.request_id.as_str(),
                method: head.method.as_str(),
                host: request_host(head).unwrap_or_default(),
                path: head.uri.path(),
                tenant,
                function,
                route,
                status,
                duration,
                instantiation: outcome.instantiation(),
            }
            .log();
        }
    }

    /// The request in its function's (or origin's) series: duration, status, and the trap or
    /// limit that stopped it.
    fn count(&self, answerer: &Answerer<'_>, outcome: &Outcome, status: u16, duration: Duration) {
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
        let Outcome::Refused(error) = outcome else {
            return;
        };
        if let Some(reason) = error.trap_reason() {
            self.metrics
                .traps
                .with_label_values(&[answerer.tenant, answerer.name, reason])
                .inc();
        }
        if let Some(limit) = error.limit() {
            self.metrics
                .limit_rejections
                .with_label_values(&[answerer.tenant, limit])
                .inc();
        }
    }

    /// The event that says why a routed request failed.
    fn log_failure(&self, exchange: &Exchange, answerer: Option<&Answerer<'_>>, outcome: &Outcome) {
        let request_id = exchange.request_id.as_str();
        let (tenant, function) = answerer.map_or(("", ""), |a| (a.tenant, a.name));
        match outcome {
            Outcome::Refused(GatewayError::NoRoute) | Outcome::Served { .. } => {}
            Outcome::Refused(error) => tracing::info!(
                target: EVENT_TARGET,
                request_id,
                tenant,
                function,
                code = error.code(),
                detail = %error.detail(),
                "request failed"
            ),
            Outcome::Cut { why, .. } => tracing::warn!(
                target: EVENT_TARGET,
                request_id,
                tenant,
                function,
                detail = why.as_str(),
                "response cut short"
            ),
            Outcome::Broken { status, why } => tracing::info!(
                target: EVENT_TARGET,
                request_id,
                tenant,
                function,
                status,
                detail = why.as_str(),
                "request failed"
            ),
            Outcome::ClientGone => tracing::debug!(
                target: EVENT_TARGET,
                request_id,
                tenant,
                function,
                "the client went away"
            ),
        }
    }
}
