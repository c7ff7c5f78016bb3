//! Bodies in and out: reading the request body under a cap, building the `http::Request` the
//! guest sees, and writing the guest's response to the client.

use bytes::{Bytes, BytesMut};
use http_body::Body as _;
use http_body_util::Full;
use pingora::http::{RequestHeader, ResponseHeader};
use pingora::proxy::Session;

use crate::runtime::GuestBody;

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
    body: Bytes,
) -> Result<http::Request<Full<Bytes>>, GatewayError> {
    let authority = head
        .uri
        .authority()
        .map(|a| a.as_str())
        .or_else(|| {
            head.headers
                .get(http::header::HOST)
                .and_then(|v| v.to_str().ok())
        })
        .unwrap_or("localhost");
    let path_and_query = head
        .uri
        .path_and_query()
        .map(|pq| pq.as_str())
        .unwrap_or("/");
    let uri = http::Uri::builder()
        .scheme("http")
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

/// Polls `body` once for its next frame without waiting: `Some` when a frame (or the end) is
/// already there.
async fn ready_frame(
    body: &mut GuestBody,
) -> Option<Option<Result<http_body::Frame<Bytes>, crate::runtime::GuestBodyError>>> {
    std::future::poll_fn(|cx| match std::pin::Pin::new(&mut *body).poll_frame(cx) {
        std::task::Poll::Ready(frame) => std::task::Poll::Ready(Some(frame)),
        std::task::Poll::Pending => std::task::Poll::Ready(None),
    })
    .await
}

/// Waits for the next data frame, skipping trailers. `Ok(None)` at the end of the body.
async fn next_data(body: &mut GuestBody) -> pingora::Result<Option<Bytes>> {
    loop {
        match std::future::poll_fn(|cx| std::pin::Pin::new(&mut *body).poll_frame(cx)).await {
            None => return Ok(None),
            Some(Ok(frame)) => {
                if let Ok(data) = frame.into_data() {
                    return Ok(Some(data));
                }
            }
            Some(Err(e)) => return Err(body_error(e)),
        }
    }
}

fn body_error(e: crate::runtime::GuestBodyError) -> Box<pingora::Error> {
    pingora::Error::explain(
        pingora::ErrorType::WriteError,
        format!("the function's response body failed: {e:?}"),
    )
}

/// Writes the guest's response. A body that is already complete when the head arrives goes out
/// in one write with `Content-Length`; anything else streams, chunked on HTTP/1.1 when the guest
/// gave no length.
pub(super) async fn write_guest_response(
    session: &mut Session,
    response: http::Response<GuestBody>,
    request_id: &RequestId,
) -> pingora::Result<()> {
    let (parts, mut body) = response.into_parts();
    let mut head = ResponseHeader::build(parts.status, Some(parts.headers.len() + 2))?;
    for (name, value) in parts.headers.iter() {
        if is_hop_by_hop(name) {
            continue;
        }
        head.append_header(name.clone(), value.clone())?;
    }
    head.insert_header(REQUEST_ID, request_id.as_str())?;

    let first = next_data(&mut body).await?;
    let Some(first) = first else {
        head.insert_header(http::header::CONTENT_LENGTH, 0)?;
        return session.write_response_header(Box::new(head), true).await;
    };
    let second = match ready_frame(&mut body).await {
        Some(None) => {
            // Complete: one write, with its length.
            head.insert_header(http::header::CONTENT_LENGTH, first.len())?;
            session.write_response_header(Box::new(head), false).await?;
            return session.write_response_body(Some(first), true).await;
        }
        Some(Some(Ok(frame))) => frame.into_data().ok(),
        Some(Some(Err(e))) => return Err(body_error(e)),
        None => None,
    };

    if head.headers.get(http::header::CONTENT_LENGTH).is_none() && !session.is_http2() {
        head.insert_header(http::header::TRANSFER_ENCODING, "chunked")?;
    }
    session.write_response_header(Box::new(head), false).await?;
    session.write_response_body(Some(first), false).await?;
    if let Some(second) = second {
        session.write_response_body(Some(second), false).await?;
    }
    while let Some(data) = next_data(&mut body).await? {
        session.write_response_body(Some(data), false).await?;
    }
    session.write_response_body(None, true).await
}

/// Connection-level headers that belong to one hop: the gateway sets its own.
fn is_hop_by_hop(name: &http::HeaderName) -> bool {
    matches!(
        name.as_str(),
        "connection" | "keep-alive" | "transfer-encoding" | "upgrade" | "proxy-connection" | "te"
    )
}
