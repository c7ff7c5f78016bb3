//! The response cache on the proxy's side: answering from it (a stored response, or a
//! `304 Not Modified` when the request's `If-None-Match` names its `ETag`, marked
//! `x-cache: HIT` with its `age`), and filling it from a response as it streams out, the one
//! way both guests' and origins' responses are stored.

use std::sync::Arc;

use http::header;
use pingora::http::{RequestHeader, ResponseHeader};
use pingora::proxy::Session;

use crate::cache::{CacheUse, CachedResponse, Fill, RequestKey, etag_matches, policy};
use crate::registry::Tenant;

use super::headers::{is_hop_by_hop, request_host};
use super::request_id::{HEADER as REQUEST_ID, RequestId};

/// The header that says whether the cache answered.
const X_CACHE: &str = "x-cache";

/// The cache key of a request.
fn key(head: &RequestHeader) -> RequestKey<'_> {
    RequestKey {
        host: request_host(head).unwrap_or_default(),
        path: head.uri.path(),
        query: head.uri.query(),
        headers: &head.headers,
    }
}

/// Answers the session's request from `tenant`'s cache when it holds a fresh response for it;
/// returns the status sent, or `None` (nothing written) when it holds none.
pub(super) async fn answer(
    session: &mut Session,
    tenant: &Tenant,
    request_id: &RequestId,
) -> pingora::Result<Option<u16>> {
    let Some(cache) = tenant.cache() else {
        return Ok(None);
    };
    let Some(entry) = cache.lookup(&key(session.req_header())) else {
        return Ok(None);
    };
    write_hit(session, &entry, request_id).await.map(Some)
}

/// Writes `entry` as the answer to the session's request; returns the status sent.
async fn write_hit(
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
    let mut head = ResponseHeader::build_no_case(status, Some(entry.headers.len() + 4))?;
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

/// A response on its way to the client, recorded for its tenant's cache.
#[derive(Debug)]
pub(super) struct CacheFill {
    fill: Fill,
    tenant: Arc<Tenant>,
}

impl CacheFill {
    /// Marks `response` (about to go out for `request`) as a cache miss when the request may use
    /// the cache, and starts recording it when it is worth keeping.
    pub(super) fn start(
        request: &RequestHeader,
        response: &mut ResponseHeader,
        cache_use: CacheUse,
        tenant: &Arc<Tenant>,
    ) -> pingora::Result<Option<CacheFill>> {
        if cache_use == CacheUse::Off {
            return Ok(None);
        }
        response.insert_header(X_CACHE, "MISS")?;
        if cache_use != CacheUse::LookupAndFill {
            return Ok(None);
        }
        let authorized = request.headers.contains_key(header::AUTHORIZATION);
        let Some(ttl) = policy::freshness(response.status, &response.headers, authorized) else {
            return Ok(None);
        };
        let Some(cache) = tenant.cache_to_fill() else {
            return Ok(None);
        };
        let fill = Fill::new(
            &key(request),
            response.status,
            headers_to_store(&response.headers),
            ttl,
            cache.max_object(),
        );
        Ok(Some(CacheFill {
            fill,
            tenant: tenant.clone(),
        }))
    }

    /// Records a piece of the body.
    pub(super) fn push(&mut self, data: &[u8]) {
        self.fill.push(data);
    }

    /// The response ended whole: stores it.
    pub(super) fn finish(self) {
        if let Some(cache) = self.tenant.cache() {
            self.fill.finish(cache);
        }
    }
}

/// The headers of a response as the cache keeps them: without the ones that belong to one
/// hop, to one response (`content-length`, set again from the body) or to the gateway.
fn headers_to_store(headers: &http::HeaderMap) -> http::HeaderMap {
    let mut kept = http::HeaderMap::with_capacity(headers.len());
    for (name, value) in headers {
        let per_response = matches!(
            name.as_str(),
            "content-length" | "age" | "x-cache" | "x-request-id"
        );
        if !per_response && !is_hop_by_hop(name) {
            kept.append(name.clone(), value.clone());
        }
    }
    kept
}
