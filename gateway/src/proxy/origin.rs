//! Requests routed to an origin, which Pingora proxies once `request_filter` has admitted them:
//! the peer (connection pooling is Pingora's, keyed by the peer), the request as the origin
//! gets it, the response on its way back (request id, cache), and how a failed origin becomes
//! a 502 or 504.

use std::net::SocketAddr;
use std::sync::Arc;

use pingora::http::{RequestHeader, ResponseHeader};
use pingora::prelude::HttpPeer;
use pingora::protocols::ALPN;
use pingora::proxy::Session;
use pingora::utils::tls::{WrappedX509, parse_x509};
use pingora::{Error, ErrorType};

use crate::admission::Admitted;
use crate::cache::CacheUse;
use crate::origins::{HostHeader, Origin};
use crate::outbound::OutboundScheme;
use crate::registry::OriginEndpoint;

use super::cached::CacheFill;
use super::headers::request_host;
use super::request_id::{HEADER as REQUEST_ID, RequestId};
use super::respond::GatewayError;

/// An admitted request on its way to an origin.
#[derive(Debug)]
pub(super) struct OriginRequest {
    pub(super) endpoint: OriginEndpoint,
    pub(super) cache_use: CacheUse,
    /// The origin's response being recorded for the cache.
    pub(super) fill: Option<CacheFill>,
    /// The tenant's concurrency slot, held until the request ends.
    _admitted: Admitted,
}

impl OriginRequest {
    pub(super) fn new(
        endpoint: OriginEndpoint,
        cache_use: CacheUse,
        admitted: Admitted,
    ) -> OriginRequest {
        OriginRequest {
            endpoint,
            cache_use,
            fill: None,
            _admitted: admitted,
        }
    }

    /// The peer to send the request to, its address resolved now (and cached by the origin).
    pub(super) async fn peer(&self) -> pingora::Result<Box<HttpPeer>> {
        let origin = &self.endpoint.origin;
        let address = origin.address().await.map_err(|e| {
            Error::because(
                ErrorType::ConnectNoRoute,
                format!("resolving origin {}", origin.spec.url.host),
                e,
            )
        })?;
        Ok(Box::new(peer(origin, address)))
    }

    /// The request as the origin gets it: rewritten from the client's.
    pub(super) fn rewrite_request(
        &self,
        session: &Session,
        upstream: &mut RequestHeader,
        request_id: &RequestId,
    ) -> pingora::Result<()> {
        let client_host = request_host(session.req_header()).map(str::to_owned);
        let client_address = session
            .client_addr()
            .and_then(|a| a.as_inet())
            .map(|a| a.ip().to_string());
        rewrite(
            &self.endpoint.origin,
            upstream,
            client_host.as_deref(),
            client_address,
            request_id,
        )
    }

    /// The origin's response head on its way to the client: the request id, and the cache.
    pub(super) fn on_response(
        &mut self,
        session: &Session,
        response: &mut ResponseHeader,
        request_id: &RequestId,
    ) -> pingora::Result<()> {
        response.insert_header(REQUEST_ID, request_id.as_str())?;
        self.fill = CacheFill::start(
            session.req_header(),
            response,
            self.cache_use,
            &self.endpoint.tenant,
        )?;
        Ok(())
    }

    /// A piece of the origin's response body on its way to the client.
    pub(super) fn on_body(&mut self, body: Option<&bytes::Bytes>, end_of_stream: bool) {
        if let (Some(fill), Some(data)) = (&mut self.fill, body) {
            fill.push(data);
        }
        if end_of_stream && let Some(fill) = self.fill.take() {
            fill.finish();
        }
    }
}

/// The peer for `origin` at `address`: TLS verified against the origin's host name (never an
/// empty SNI, which would skip verification) and its CA file if it has one, with its timeouts.
fn peer(origin: &Origin, address: SocketAddr) -> HttpPeer {
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
fn rewrite(
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
