//! Requests routed to a function: counted against the tenant's rate, the body read under its
//! cap, then a concurrency slot taken (so a client that trickles its body never holds one),
//! the guest invoked with `http` crate types (a client that goes away stops it), and its
//! response written out, all within the tenant's wall-clock `timeout`: a client that reads its
//! response too slowly is cut off at the deadline like a guest that writes too slowly. The slot
//! is held until the guest's instance is gone, not only until its response is written.

use std::time::{Duration, Instant};

use pingora::proxy::Session;
use pingora::time::fast_timeout::fast_timeout;

use crate::admission::Admitted;
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
    if let Err(rejection) = tenant.admission.check_rate() {
        return Ok(Outcome::Refused(rejection.into()));
    }
    let read = body::read_capped(session, tenant.limits.request_body.0);
    let body = match fast_timeout(remaining(deadline), read).await {
        Ok(read) => match read? {
            Ok(body) => body,
            Err(e) => return Ok(Outcome::Refused(e)),
        },
        Err(_elapsed) => return Ok(Outcome::Refused(InvokeError::Timeout.into())),
    };
    let admitted = match tenant.admission.acquire().await {
        Ok(admitted) => admitted,
        Err(rejection) => return Ok(Outcome::Refused(rejection.into())),
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
        InstanceObserver::new(endpoint, request_id, metrics, admitted),
    );
    let invocation = tokio::select! {
        result = fast_timeout(remaining(deadline), invoke) => match result {
            Ok(Ok(invocation)) => invocation,
            Ok(Err(e)) => return Ok(Outcome::Refused(e.into())),
            Err(_elapsed) => return Ok(Outcome::Refused(InvokeError::Timeout.into())),
        },
        () = body::client_gone(session, CLIENT_WATCH_AFTER) => return Ok(Outcome::ClientGone),
    };
    let status = invocation.response.status().as_u16();
    if !(100..=599).contains(&status) {
        return Ok(Outcome::Refused(
            InvokeError::GuestError(format!("status {status} is not an HTTP status")).into(),
        ));
    }
    let instantiation = invocation.instantiation;
    let write = body::write_guest_response(
        session,
        invocation.response,
        request_id,
        deadline,
        (cache_use, tenant),
    );
    // The deadline covers the writes too: a client that stops reading is cut off.
    let written = match fast_timeout(remaining(deadline), write).await {
        Ok(written) => written?,
        Err(_elapsed) if session.response_written().is_some() => Written::FailedAfterHead(
            "the client did not read its response within the timeout".into(),
        ),
        Err(_elapsed) => Written::FailedBeforeHead(InvokeError::Timeout.into()),
    };
    Ok(match written {
        Written::Complete => Outcome::Served {
            status,
            instantiation,
        },
        Written::FailedBeforeHead(e) => Outcome::Refused(e),
        Written::FailedAfterHead(why) => Outcome::Cut { status, why },
    })
}

/// What is left of the time until `deadline`.
fn remaining(deadline: Instant) -> Duration {
    deadline.saturating_duration_since(Instant::now())
}

/// Holds the guest's concurrency slot and counts it in `atoll_instances_active` for as long as
/// its task lives, records its instantiation time, memory peak and execution time when it
/// finishes, and logs what it wrote.
struct InstanceObserver {
    endpoint: Endpoint,
    request_id: RequestId,
    metrics: Recording,
    _admitted: Admitted,
}

impl InstanceObserver {
    fn new(
        endpoint: &Endpoint,
        request_id: &RequestId,
        metrics: Recording,
        admitted: Admitted,
    ) -> InstanceObserver {
        if metrics == Recording::On {
            endpoint.metrics.active.inc();
        }
        InstanceObserver {
            endpoint: endpoint.clone(),
            request_id: request_id.clone(),
            metrics,
            _admitted: admitted,
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
