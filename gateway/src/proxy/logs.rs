//! What the proxy logs about requests: one access line per request (target `atoll::access`),
//! and the lines a guest wrote to stdout and stderr (target `atoll::guest`), each with its
//! request id, tenant and function. Field names are listed in `docs/observability.md`.

use std::time::Duration;

use crate::registry::Endpoint;
use crate::runtime::{GUEST_OUTPUT_LIMIT, GuestOutput, GuestStream};

use super::request_id::RequestId;

/// The tracing target of access lines: filter them with `RUST_LOG=atoll::access=off`.
pub const ACCESS_TARGET: &str = "atoll::access";

/// The tracing target of guest output lines.
pub const GUEST_TARGET: &str = "atoll::guest";

/// The status logged for a request whose client went away before the response (nginx's).
pub const CLIENT_CLOSED_STATUS: u16 = 499;

/// One request, as its access line tells it.
#[derive(Debug, Clone, Copy)]
pub struct AccessRecord<'a> {
    /// The request id, as sent in `x-request-id`.
    pub request_id: &'a str,
    /// The request method.
    pub method: &'a str,
    /// The `Host` (or URI authority), port and all.
    pub host: &'a str,
    /// The path, without the query.
    pub path: &'a str,
    /// The tenant routed to; empty for a 404 `no_route`.
    pub tenant: &'a str,
    /// The function routed to; empty for a 404 `no_route`.
    pub function: &'a str,
    /// The route that matched, as deployed; empty for a 404 `no_route`.
    pub route: &'a str,
    /// The status the client got ([`CLIENT_CLOSED_STATUS`] when it went away first).
    pub status: u16,
    /// From arrival to the end of the response.
    pub duration: Duration,
    /// Creating the guest's instance; zero when the response is not the guest's.
    pub instantiation: Duration,
}

impl AccessRecord<'_> {
    /// Writes the access line.
    pub fn log(&self) {
        tracing::info!(
            target: ACCESS_TARGET,
            request_id = self.request_id,
            method = self.method,
            host = self.host,
            path = self.path,
            tenant = self.tenant,
            function = self.function,
            route = self.route,
            status = self.status,
            duration_us = self.duration.as_micros() as u64,
            instantiation_us = self.instantiation.as_micros() as u64,
            "request"
        );
    }
}

/// Logs what a guest wrote, a line per event, and a warning when some of it was dropped.
pub(super) fn log_guest_output(endpoint: &Endpoint, request_id: &RequestId, output: &GuestOutput) {
    let tenant = endpoint.tenant.name.as_str();
    let function = endpoint.function.name.as_str();
    for stream in [GuestStream::Stdout, GuestStream::Stderr] {
        for line in output.lines(stream) {
            tracing::info!(
                target: GUEST_TARGET,
                request_id = request_id.as_str(),
                tenant,
                function,
                stream = stream.as_str(),
                "{line}"
            );
        }
    }
    if output.dropped_bytes() > 0 {
        tracing::warn!(
            target: GUEST_TARGET,
            request_id = request_id.as_str(),
            tenant,
            function,
            dropped_bytes = output.dropped_bytes(),
            "guest output truncated: only the first {GUEST_OUTPUT_LIMIT} bytes are kept"
        );
    }
}
