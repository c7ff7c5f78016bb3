//! Requests routed to a function: admitted under the tenant's rate and concurrency, the body
//! read under its cap, the guest invoked with `http` crate types (a client that goes away stops
//! it), and its response written out, all within the tenant's wall-clock `timeout`.

use std::time::{Duration, Instant};

use pingora::proxy::Session;

use crate::cache::CacheUse;
use crate::config::Recording;
use crate::registry::Endpoint;
use crate::runtime::{GuestObserver, GuestOutput, GuestStats, InvokeError, Runtime};

use super::body::{self, Written};
use super::logs;
use super::outcome::Outcome;
use super::request_id::RequestId;

/// How long a guest runs before the proxy starts watching for the client going away. Most
/// requests finish well within it, and skipping the watch saves them a socket read.
const CLIENT_WATCH_AFTER: Duration = Duration::from_millis(2);

/// Serves a request that arrived at `started` with `endpoint`'s function. An `Err` is a failure
/// to talk to the client.
pub(super) async fn serve(
    runtime: &Runtime,
    metrics: Recording,
    session: &mut Session,
    endpoint: &Endpoint,
    (request_id, started): (&RequestId, Instant),
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
    let invoke = runtime.invoke_observed(
        &endpoint.function.image,
        &tenant.invoke_limits,
        &endpoint.grants,
        request,
        InstanceObserver::new(endpoint, request_id, metrics),
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
    let written = body::write_guest_response(
        session,
        invocation.response,
        request_id,
        deadline,
        (cache_use, tenant),
    )
    .await?;
    Ok(match written {
        Written::Complete => Outcome::Served {
            status,
            instantiation,
        },
        Written::FailedBeforeHead(e) => Outcome::Refused(e),
        Written::FailedAfterHead(why) => Outcome::Cut { status, why },
    })
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
