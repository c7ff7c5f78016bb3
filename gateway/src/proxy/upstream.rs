//! Requests routed to an origin: the Pingora peer (connection pooling is Pingora's, keyed by
//! the peer), the request as the origin gets it, and how a failed origin becomes a 502 or 504.

use std::net::SocketAddr;
use std::sync::Arc;

use pingora::http::RequestHeader;
use pingora::prelude::HttpPeer;
use pingora::protocols::ALPN;
use pingora::utils::tls::{WrappedX509, parse_x509};
use pingora::{Error, ErrorType};

use crate::origins::{HostHeader, Origin};
use crate::outbound::OutboundScheme;

use super::request_id::{HEADER as REQUEST_ID, RequestId};
use super::respond::GatewayError;

/// The peer for `origin` at `address`: TLS verified against the origin's host name (never an
/// empty SNI, which would skip verification) and its CA file if it has one, with its timeouts.
pub(super) fn peer(origin: &Origin, address: SocketAddr) -> HttpPeer {
    let url = &origin.spec.url;
    let tls = url.scheme == OutboundScheme::Https;
    let mut peer = HttpPeer::new(address, tls, url.host.clone());
    let options = &mut peer.options;
    options.connection_timeout = Some(origin.spec.connect_timeout);
    options.total_connection_timeout = Some(origin.spec.connect_timeout);
    options.read_timeout = Some(origin.spec.read_timeout);
    options.write_timeout = Some(origin.spec.read_timeout);
    options.idle_timeout = Some(std::time::Duration::from_secs(60));
    options.verify_cert = true;
    options.verify_hostname = true;
    if tls {
        // HTTP/2 to origins that offer it, HTTP/1.1 to the rest.
        options.alpn = ALPN::H2H1;
    }
    if let Some(ca) = &origin.ca {
        let certificates: Vec<WrappedX509> = ca
            .iter()
            .map(|der| WrappedX509::new(der.clone(), parse_x509))
            .collect();
        options.ca = Some(Arc::from(certificates.into_boxed_slice()));
    }
    peer
}

/// Rewrites the request for the origin: its path, its `Host`, the forwarding headers and the
/// request id.
pub(super) fn rewrite(
    origin: &Origin,
    request: &mut RequestHeader,
    client_host: Option<&str>,
    client_address: Option<String>,
    request_id: &RequestId,
) -> pingora::Result<()> {
    let target = origin.rewrite(request.uri.path(), request.uri.query());
    let uri = target
        .parse::<http::Uri>()
        .map_err(|e| Error::because(ErrorType::InvalidHTTPHeader, "rewriting the path", e))?;
    request.set_uri(uri);
    let host = match &origin.spec.host_header {
        HostHeader::Origin => origin.spec.url.authority(),
        HostHeader::Incoming => client_host.unwrap_or_default().to_owned(),
        HostHeader::Fixed(host) => host.clone(),
    };
    request.insert_header(http::header::HOST, host)?;
    if let Some(client_host) = client_host {
        request.insert_header("x-forwarded-host", client_host)?;
    }
    if let Some(address) = client_address {
        let forwarded_for = match request
            .headers
            .get("x-forwarded-for")
            .and_then(|v| v.to_str().ok())
        {
            Some(earlier) => format!("{earlier}, {address}"),
            None => address,
        };
        request.insert_header("x-forwarded-for", forwarded_for)?;
    }
    request.insert_header(REQUEST_ID, request_id.as_str())?;
    Ok(())
}

/// The gateway's answer when proxying to an origin failed.
pub(super) fn failure(error: &Error) -> GatewayError {
    use ErrorType::*;
    let detail = error.to_string();
    match error.etype() {
        ConnectTimedout | ReadTimedout | WriteTimedout => GatewayError::OriginTimeout(detail),
        _ => GatewayError::OriginUnreachable(detail),
    }
}
