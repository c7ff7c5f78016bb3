//! Bodies in and out: reading the request body under a cap, building the `http::Request` the
//! guest sees, and writing the guest's response to the client.

use std::time::Instant;

use bytes::{Bytes, BytesMut};
use http_body::Body as _;
use http_body_util::Full;
use pingora::http::{RequestHeader, ResponseHeader};
use pingora::proxy::Session;

use crate::runtime::{GuestBody, GuestBodyError, InvokeError};

use std::sync::Arc;

use crate::cache::CacheUse;
use crate::registry::Tenant;

use super::cached::CacheFill;
use super::headers::{is_hop_by_hop, request_host};
use super::request_id::{HEADER as REQUEST_ID, RequestId};
use super::respond::GatewayError;

/// Reads the whole request body, refusing it as soon as it passes `limit` bytes (and before
/// reading anything when `Content-Length` already says so).
pub(super) async fn read_capped(
    session: &mut Session,
    limit: u64,
) -> pingora::Result<Result<Bytes, GatewayError>> {
    let declared = session
        .req_header()
        .headers
        .get(http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|len| len > limit) {
        return Ok(Err(GatewayError::RequestTooLarge { limit }));
    }
    let mut body = BytesMut::new();
    while let Some(chunk) = session.read_request_body().await? {
        if body.len() as u64 + chunk.len() as u64 > limit {
            return Ok(Err(GatewayError::RequestTooLarge { limit }));
        }
        if body.is_empty() && session.is_body_done() {
            // The common case: the whole body arrived in one chunk; no copy.
            return Ok(Ok(chunk));
        }
        body.extend_from_slice(&chunk);
    }
    Ok(Ok(body.freeze()))
}

/// The request the guest sees: method, the full original path and query, the headers, the body,
/// and an absolute URI (`http://host/path?query`) so the guest always has an authority.
pub(super) fn to_http_request(
    head: &RequestHeader,
    scheme: http::uri::Scheme,
    body: Bytes,
) -> Result<http::Request<Full<Bytes>>, GatewayError> {
    let authority = request_host(head).unwrap_or("localhost");
    let path_and_query = head
        .uri
        .path_and_query()
        .map(|pq| pq.as_str())
        .unwrap_or("/");
    let uri = http::Uri::builder()
        .scheme(scheme)
        .authority(authority)
        .path_and_query(path_and_query)
        .build()
        .map_err(|e| GatewayError::BadRequest(format!("invalid request target: {e}")))?;
    let mut request = http::Request::new(Full::new(body));
    *request.method_mut() = head.method.clone();
    *request.uri_mut() = uri;
    *request.headers_mut() = head.headers.clone();
    Ok(request)
}

/// How writing a guest's response ended.
#[derive(Debug)]
pub(super) enum Written {
    /// The whole response went out.
    Complete,
    /// The body failed before anything was sent: the client can still get a JSON error.
    FailedBeforeHead(GatewayError),
    /// The body failed after the head went out: the connection must be cut.
    FailedAfterHead(String),
}

type Frame = Option<Result<http_body::Frame<Bytes>, GuestBodyError>>;

/// Polls `body` once for its next frame without waiting: `Some` when a frame (or the end) is
/// already there.
async fn ready_frame(body: &mut GuestBody) -> Option<Frame> {
    std::future::poll_fn(|cx| match std::pin::Pin::new(&mut *body).poll_frame(cx) {
        std::task::Poll::Ready(frame) => std::task::Poll::Ready(Some(frame)),
        std::task::Poll::Pending => std::task::Poll::Ready(None),
    })
    .await
}

/// Why the body stopped: the guest's failure or the request's deadline.
#[derive(Debug)]
enum BodyStop {
    Guest(GuestBodyError),
    Deadline,
}

/// Waits, until `deadline`, for the next data frame, skipping trailers. `Ok(None)` at the end
/// of the body.
async fn next_data(body: &mut GuestBody, deadline: Instant) -> Result<Option<Bytes>, BodyStop> {
    let remaining = deadline.saturating_duration_since(Instant::now());
    match pingora::time::fast_timeout::fast_timeout(remaining, next_frame(body)).await {
        Ok(result) => result.map_err(BodyStop::Guest),
        Err(_elapsed) => Err(BodyStop::Deadline),
    }
}

async fn next_frame(body: &mut GuestBody) -> Result<Option<Bytes>, GuestBodyError> {
    loop {
        match std::future::poll_fn(|cx| std::pin::Pin::new(&mut *body).poll_frame(cx)).await {
            None => return Ok(None),
            Some(Ok(frame)) => {
                if let Ok(data) = frame.into_data() {
                    return Ok(Some(data));
                }
            }
            Some(Err(e)) => return Err(e),
        }
    }
}

fn before_head(stop: BodyStop) -> Written {
    Written::FailedBeforeHead(match stop {
        BodyStop::Deadline => GatewayError::Invoke(InvokeError::Timeout),
        BodyStop::Guest(GuestBodyError::TooLarge { limit }) => {
            GatewayError::ResponseTooLarge { limit }
        }
        BodyStop::Guest(GuestBodyError::Guest(e)) => {
            GatewayError::Invoke(InvokeError::GuestError(e.to_string()))
        }
    })
}

fn after_head(stop: BodyStop) -> Written {
    Written::FailedAfterHead(match stop {
        BodyStop::Deadline => "the function did not finish its response within its timeout".into(),
        BodyStop::Guest(e) => e.to_string(),
    })
}

/// Writes the guest's response, all of it before `deadline`, recording it for `tenant`'s cache
/// when `cache_use` allows. The head waits for the first data: a body that is complete by then
/// goes out in one write with `Content-Length`; anything else streams, chunked on HTTP/1.1 when
/// the guest gave no length.
pub(super) async fn write_guest_response(
    session: &mut Session,
    response: http::Response<GuestBody>,
    request_id: &RequestId,
    deadline: Instant,
    (cache_use, tenant): (CacheUse, &Arc<Tenant>),
) -> pingora::Result<Written> {
    let (parts, mut body) = response.into_parts();
    // Names as the `http` crate has them (lowercase): no second, case-preserving map to fill.
    let mut head = ResponseHeader::build_no_case(parts.status, Some(parts.headers.len() + 3))?;
    for (name, value) in parts.headers.iter() {
        if is_hop_by_hop(name) {
            continue;
        }
        head.append_header(name.clone(), value.clone())?;
    }
    head.insert_header(REQUEST_ID, request_id.as_str())?;
    let mut fill = CacheFill::start(session.req_header(), &mut head, cache_use, tenant)?;
    let mut record = |data: &Bytes| {
        if let Some(fill) = &mut fill {
            fill.push(data);
        }
    };

    let first = match next_data(&mut body, deadline).await {
        Ok(Some(first)) => first,
        Ok(None) => {
            // Stored before the client has it all, so its next request finds it.
            store(fill);
            head.insert_header(http::header::CONTENT_LENGTH, 0)?;
            session.write_response_header(Box::new(head), true).await?;
            return Ok(Written::Complete);
        }
        Err(e) => return Ok(before_head(e)),
    };
    record(&first);
    let second = match ready_frame(&mut body).await {
        Some(None) => {
            // Complete: one write, with its length.
            store(fill);
            head.insert_header(http::header::CONTENT_LENGTH, first.len())?;
            session.write_response_header(Box::new(head), false).await?;
            session.write_response_body(Some(first), true).await?;
            return Ok(Written::Complete);
        }
        Some(Some(Ok(frame))) => frame.into_data().ok(),
        Some(Some(Err(e))) => return Ok(before_head(BodyStop::Guest(e))),
        None => None,
    };

    if head.headers.get(http::header::CONTENT_LENGTH).is_none() && !session.is_http2() {
        head.insert_header(http::header::TRANSFER_ENCODING, "chunked")?;
    }
    session.write_response_header(Box::new(head), false).await?;
    session.write_response_body(Some(first), false).await?;
    if let Some(second) = second {
        record(&second);
        session.write_response_body(Some(second), false).await?;
    }
    loop {
        match next_data(&mut body, deadline).await {
            Ok(Some(data)) => {
                record(&data);
                session.write_response_body(Some(data), false).await?
            }
            Ok(None) => break,
            Err(stop) => return Ok(after_head(stop)),
        }
    }
    store(fill);
    session.write_response_body(None, true).await?;
    Ok(Written::Complete)
}

/// Resolves when the client goes away (closes the connection or resets the HTTP/2 stream)
/// before its response is written; pends forever otherwise. Starts watching only `after` this
/// long.
pub(super) async fn client_gone(session: &mut Session, after: std::time::Duration) {
    pingora::time::fast_timeout::fast_sleep(after).await;
    // With no body left to read this only returns, with an error, when the client closes the
    // connection (HTTP/1.1) or resets the stream (HTTP/2).
    if session.read_body_or_idle(true).await.is_err() {
        return;
    }
    std::future::pending().await
}

/// The response went out whole: into the cache with it, if it was being recorded.
fn store(fill: Option<CacheFill>) {
    if let Some(fill) = fill {
        fill.finish();
    }
}
