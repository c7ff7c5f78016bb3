//! Answers from the response cache: a stored response (or a `304 Not Modified` when the
//! request's `If-None-Match` names its `ETag`) written without running a function or calling
//! an origin, marked `x-cache: HIT` with its `age`.

use http::header;
use pingora::http::ResponseHeader;
use pingora::proxy::Session;

use crate::cache::{CachedResponse, etag_matches};

use super::request_id::{HEADER as REQUEST_ID, RequestId};

/// The header that says whether the cache answered.
pub(super) const X_CACHE: &str = "x-cache";

/// Writes `entry` as the answer to the session's request; returns the status sent.
pub(super) async fn write_hit(
    session: &mut Session,
    entry: &CachedResponse,
    request_id: &RequestId,
) -> pingora::Result<u16> {
    let request = session.req_header();
    let not_modified = match (request.headers.get(header::IF_NONE_MATCH), entry.etag()) {
        (Some(wanted), Some(etag)) => etag_matches(wanted, etag),
        _ => false,
    };
    let head_only = request.method == http::Method::HEAD;
    let status = if not_modified {
        http::StatusCode::NOT_MODIFIED
    } else {
        entry.status
    };
    let mut head = ResponseHeader::build(status, Some(entry.headers.len() + 4))?;
    for (name, value) in &entry.headers {
        head.append_header(name.clone(), value.clone())?;
    }
    head.insert_header(header::AGE, entry.age().as_secs())?;
    head.insert_header(X_CACHE, "HIT")?;
    head.insert_header(REQUEST_ID, request_id.as_str())?;
    if !not_modified {
        head.insert_header(header::CONTENT_LENGTH, entry.body.len())?;
    }
    let body = !(not_modified || head_only || entry.body.is_empty());
    session.write_response_header(Box::new(head), !body).await?;
    if body {
        session
            .write_response_body(Some(entry.body.clone()), true)
            .await?;
    }
    Ok(status.as_u16())
}

/// The headers of a response as the cache keeps them: without the ones that belong to one
/// hop, to one response (`content-length`, set again from the body) or to the gateway.
pub(super) fn headers_to_store(headers: &http::HeaderMap) -> http::HeaderMap {
    let mut kept = http::HeaderMap::with_capacity(headers.len());
    for (name, value) in headers {
        let per_response = matches!(
            name.as_str(),
            "content-length" | "age" | "x-cache" | "x-request-id"
        );
        if !per_response && !super::body::is_hop_by_hop(name) {
            kept.append(name.clone(), value.clone());
        }
    }
    kept
}
