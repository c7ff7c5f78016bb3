//! Outbound HTTP from a function: [`fetch`] sends an [`http::Request`] through
//! `wasi:http/outgoing-handler` and waits for the whole response.

use std::fmt;

use bytes::Bytes;
use http::{HeaderMap, Method, StatusCode};
use wasip2::http::outgoing_handler;
use wasip2::http::types::{
    ErrorCode, Fields, IncomingBody, OutgoingBody, OutgoingRequest, Scheme,
};
use wasip2::io::streams::StreamError;

use crate::convert;
use crate::{Request, Response};

/// How many bytes to ask for per `blocking-read` of the response body.
const READ_CHUNK: u64 = 64 * 1024;

/// The most bytes `blocking-write-and-flush` accepts in one call.
const WRITE_CHUNK: usize = 4096;

/// Why a [`fetch`] failed.
#[derive(Debug)]
pub enum FetchError {
    /// The request cannot be sent as written: it needs an absolute `http` or `https` URI, and
    /// its headers must be ones the host accepts.
    Invalid(String),
    /// The host refused or failed the call. Under Atoll a call that the tenant's
    /// `outbound.allow` does not cover, or that would reach a private address, fails with
    /// [`ErrorCode::HttpRequestDenied`] (see [`FetchError::is_denied`]).
    Http(ErrorCode),
    /// The response arrived but reading its body failed.
    Body(String),
}

impl FetchError {
    /// Whether the gateway refused the call by policy.
    pub fn is_denied(&self) -> bool {
        matches!(self, FetchError::Http(ErrorCode::HttpRequestDenied))
    }
}

impl fmt::Display for FetchError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FetchError::Invalid(why) => write!(f, "invalid outbound request: {why}"),
            FetchError::Http(code) => write!(f, "outbound request failed: {code:?}"),
            FetchError::Body(why) => write!(f, "reading the outbound response failed: {why}"),
        }
    }
}

impl std::error::Error for FetchError {}

/// Sends `request` (its URI absolute: `https://api.example.com/path?query`) and returns the
/// response with its whole body. Blocks the function until the response has arrived.
///
/// ```no_run
/// use atoll_sdk::{Request, Response, fetch};
///
/// fn handler(_req: Request) -> Result<Response, atoll_sdk::FetchError> {
///     let origin = atoll_sdk::http::Request::get("https://api.example.com/status")
///         .body(atoll_sdk::Bytes::new())
///         .expect("a valid request");
///     fetch(origin)
/// }
/// # fn main() {}
/// ```
pub fn fetch(request: Request) -> Result<Response, FetchError> {
    let (parts, body) = request.into_parts();
    let scheme = match parts.uri.scheme_str() {
        Some("https") => Scheme::Https,
        Some("http") => Scheme::Http,
        _ => return Err(FetchError::Invalid("the URI needs an http or https scheme".into())),
    };
    let authority = parts
        .uri
        .authority()
        .ok_or_else(|| FetchError::Invalid("the URI needs a host".into()))?;

    let headers = Fields::new();
    for (name, value) in &parts.headers {
        headers
            .append(name.as_str(), value.as_bytes())
            .map_err(|e| FetchError::Invalid(format!("header {name}: {e:?}")))?;
    }
    let outgoing = OutgoingRequest::new(headers);
    let invalid = |what: &str| FetchError::Invalid(format!("the host refused the {what}"));
    outgoing
        .set_method(&wasi_method(&parts.method))
        .map_err(|()| invalid("method"))?;
    outgoing
        .set_scheme(Some(&scheme))
        .map_err(|()| invalid("scheme"))?;
    outgoing
        .set_authority(Some(authority.as_str()))
        .map_err(|()| invalid("authority"))?;
    let path = parts.uri.path_and_query().map_or("/", |p| p.as_str());
    outgoing
        .set_path_with_query(Some(path))
        .map_err(|()| invalid("path"))?;
    let Ok(outgoing_body) = outgoing.body() else {
        unreachable!("the body of a new outgoing-request is always available");
    };

    let pending = outgoing_handler::handle(outgoing, None).map_err(FetchError::Http)?;
    write_body(&outgoing_body, &body)?;
    OutgoingBody::finish(outgoing_body, None).map_err(FetchError::Http)?;

    pending.subscribe().block();
    let incoming = match pending.get() {
        Some(Ok(Ok(incoming))) => incoming,
        Some(Ok(Err(code))) => return Err(FetchError::Http(code)),
        Some(Err(())) | None => {
            return Err(FetchError::Body("the response was already taken".into()));
        }
    };
    let status = StatusCode::from_u16(incoming.status())
        .map_err(|_| FetchError::Body(format!("invalid status {}", incoming.status())))?;
    let headers: HeaderMap = convert::headers(incoming.headers().entries())
        .map_err(|e| FetchError::Body(e.to_string()))?;
    let body = incoming
        .consume()
        .map_err(|()| FetchError::Body("the body was already taken".into()))?;
    let bytes = read_body(&body)?;
    drop(IncomingBody::finish(body));
    drop(incoming);

    let mut response = Response::new(bytes);
    *response.status_mut() = status;
    *response.headers_mut() = headers;
    Ok(response)
}

fn wasi_method(method: &Method) -> wasip2::http::types::Method {
    use wasip2::http::types::Method as M;
    match *method {
        Method::GET => M::Get,
        Method::HEAD => M::Head,
        Method::POST => M::Post,
        Method::PUT => M::Put,
        Method::DELETE => M::Delete,
        Method::CONNECT => M::Connect,
        Method::OPTIONS => M::Options,
        Method::TRACE => M::Trace,
        Method::PATCH => M::Patch,
        ref other => M::Other(other.as_str().to_owned()),
    }
}

fn write_body(body: &OutgoingBody, bytes: &[u8]) -> Result<(), FetchError> {
    if bytes.is_empty() {
        return Ok(());
    }
    let stream = body
        .write()
        .map_err(|()| FetchError::Invalid("the request body stream was already taken".into()))?;
    for chunk in bytes.chunks(WRITE_CHUNK) {
        stream.blocking_write_and_flush(chunk).map_err(|e| match e {
            StreamError::Closed => FetchError::Invalid("the request body stream closed".into()),
            StreamError::LastOperationFailed(e) => FetchError::Invalid(e.to_debug_string()),
        })?;
    }
    Ok(())
}

fn read_body(body: &IncomingBody) -> Result<Bytes, FetchError> {
    let stream = body
        .stream()
        .map_err(|()| FetchError::Body("the body stream was already taken".into()))?;
    let mut bytes = Vec::new();
    loop {
        match stream.blocking_read(READ_CHUNK) {
            Ok(chunk) => bytes.extend_from_slice(&chunk),
            Err(StreamError::Closed) => break,
            Err(StreamError::LastOperationFailed(e)) => {
                return Err(FetchError::Body(e.to_debug_string()));
            }
        }
    }
    Ok(bytes.into())
}
