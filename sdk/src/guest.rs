//! The bridge between the `wasi:http/incoming-handler` export and a handler.
//!
//! [`handle`] reads the whole incoming request (not its body when it cannot
//! have one: see [`convert::bodiless`]), calls the handler and streams its
//! response back through the `response-outparam`.

use std::fmt;
use std::io::Write as _;

use bytes::Bytes;
use http::StatusCode;
use wasip2::http::types::{
    Fields, IncomingRequest, OutgoingBody, OutgoingResponse, ResponseOutparam,
};
use wasip2::io::streams::StreamError;

use crate::convert::{self, BadRequest};
use crate::response::{IntoResponse, text};
use crate::{Request, Response};

/// How many bytes to ask for per `blocking-read` of the request body.
const READ_CHUNK: u64 = 64 * 1024;

/// The most bytes `blocking-write-and-flush` accepts in one call.
const WRITE_CHUNK: usize = 4096;

/// Serves one request: converts it, runs `handler` and sends the response.
///
/// Called by the code that [`export!`](crate::export) generates.
pub fn handle<F, R>(handler: F, request: IncomingRequest, response_out: ResponseOutparam)
where
    F: FnOnce(Request) -> R,
    R: IntoResponse,
{
    let response = match read_request(request) {
        Ok(request) => handler(request).into_response(),
        Err(err) => {
            log(format_args!("bad request: {err}"));
            text(StatusCode::BAD_REQUEST, format!("bad request: {err}\n"))
        }
    };
    send_response(response, response_out);
}

/// Writes a diagnostic line to the component's stderr, ignoring failures.
pub(crate) fn log(message: fmt::Arguments<'_>) {
    let _ = writeln!(std::io::stderr(), "atoll-sdk: {message}");
}

fn read_request(incoming: IncomingRequest) -> Result<Request, BadRequest> {
    let method = convert::method(incoming.method())?;
    let uri = convert::uri(
        incoming.scheme(),
        incoming.authority(),
        incoming.path_with_query(),
    )?;
    // `headers` is a child resource: it must be dropped before the request.
    let headers = convert::headers(incoming.headers().entries())?;
    // A request that cannot carry a body is not read: no stream, no poll, no host calls.
    let body = if convert::bodiless(&method, &headers) {
        Bytes::new()
    } else {
        read_body(&incoming)?
    };

    let mut request = Request::new(body);
    *request.method_mut() = method;
    *request.uri_mut() = uri;
    *request.headers_mut() = headers;
    Ok(request)
}

fn read_body(incoming: &IncomingRequest) -> Result<Bytes, BadRequest> {
    let body = incoming
        .consume()
        .map_err(|()| BadRequest::new("request body was already consumed"))?;
    let stream = body
        .stream()
        .map_err(|()| BadRequest::new("request body stream was already taken"))?;
    let mut bytes = Vec::new();
    loop {
        match stream.blocking_read(READ_CHUNK) {
            Ok(chunk) if bytes.is_empty() => bytes = chunk,
            Ok(chunk) => bytes.extend_from_slice(&chunk),
            Err(StreamError::Closed) => break,
            Err(StreamError::LastOperationFailed(err)) => {
                return Err(BadRequest::new(format!(
                    "reading request body failed: {}",
                    err.to_debug_string()
                )));
            }
        }
    }
    // Child resources go first: the stream, then the body.
    drop(stream);
    drop(body);
    Ok(bytes.into())
}

fn send_response(response: Response, response_out: ResponseOutparam) {
    let (parts, body) = response.into_parts();

    // One host call for every header, rather than one per header.
    let entries: Vec<(String, Vec<u8>)> = parts
        .headers
        .iter()
        .map(|(name, value)| (name.as_str().to_owned(), value.as_bytes().to_vec()))
        .collect();
    let headers = Fields::from_list(&entries).unwrap_or_else(|_| {
        // One of them is refused (a forbidden name, say): add them one by one and drop only it.
        let headers = Fields::new();
        for (name, value) in &parts.headers {
            if let Err(err) = headers.append(name.as_str(), value.as_bytes()) {
                log(format_args!("dropped response header {name}: {err}"));
            }
        }
        headers
    });
    let outgoing = OutgoingResponse::new(headers);
    // A new response is 200 already: one host call fewer for most responses.
    if parts.status != StatusCode::OK && outgoing.set_status_code(parts.status.as_u16()).is_err() {
        log(format_args!("invalid status {}, sending 500", parts.status));
        let _ = outgoing.set_status_code(StatusCode::INTERNAL_SERVER_ERROR.as_u16());
    }
    let Ok(outgoing_body) = outgoing.body() else {
        unreachable!("the body of a new outgoing-response is always available");
    };
    ResponseOutparam::set(response_out, Ok(outgoing));

    // Dropping the body without `finish` tells the host the response is
    // incomplete, which is right when the write failed half-way.
    match write_body(&outgoing_body, &body) {
        Ok(()) => {
            if let Err(err) = OutgoingBody::finish(outgoing_body, None) {
                log(format_args!("finishing response body failed: {err}"));
            }
        }
        Err(err) => log(format_args!("writing response body failed: {err}")),
    }
}

fn write_body(outgoing_body: &OutgoingBody, bytes: &[u8]) -> Result<(), String> {
    let stream = outgoing_body
        .write()
        .map_err(|()| "response body stream was already taken".to_owned())?;
    for chunk in bytes.chunks(WRITE_CHUNK) {
        stream
            .blocking_write_and_flush(chunk)
            .map_err(|err| match err {
                StreamError::Closed => "stream closed".to_owned(),
                StreamError::LastOperationFailed(err) => err.to_debug_string(),
            })?;
    }
    Ok(())
}
