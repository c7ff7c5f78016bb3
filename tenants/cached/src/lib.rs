//! `cached`: a response that says how the edge may cache it. Each response carries a fresh
//! `id`, so a client can tell a cached copy (same id) from a new one.
//!
//! Query parameters:
//! - `max-age=N`: `Cache-Control: public, max-age=N` (the default, with 60);
//! - `cc=...`: this `Cache-Control` instead (`no-store`, `private, max-age=60`...);
//! - `vary=NAME`: `Vary: NAME`, and the request's value of NAME in the body;
//! - `cookie=1`: a `Set-Cookie`, which makes the response uncacheable;
//! - `etag=TAG`: `ETag: "TAG"` (default `"v1"`).

use std::collections::hash_map::RandomState;
use std::hash::BuildHasher;
use std::time::{SystemTime, UNIX_EPOCH};

use atoll_sdk::http::{HeaderName, HeaderValue, header};
use atoll_sdk::{Request, Response};
use serde_json::json;

fn cached(request: Request) -> Result<Response, String> {
    let query: Vec<(String, String)> = request
        .uri()
        .query()
        .unwrap_or_default()
        .split('&')
        .filter(|pair| !pair.is_empty())
        .map(|pair| match pair.split_once('=') {
            Some((k, v)) => (k.to_owned(), v.replace("%20", " ").replace("%2C", ",")),
            None => (pair.to_owned(), String::new()),
        })
        .collect();
    let param = |name: &str| {
        query
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    };
    let cache_control = match (param("cc"), param("max-age")) {
        (Some(cc), _) => cc.to_owned(),
        (None, Some(age)) => format!("public, max-age={age}"),
        (None, None) => "public, max-age=60".to_owned(),
    };
    let vary = param("vary").map(str::to_ascii_lowercase);
    let varied_value = vary.as_deref().and_then(|name| {
        request
            .headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    });
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64);
    let id = RandomState::new().hash_one(nanos);
    let body = json!({
        "id": id.to_string(),
        "path": request.uri().path(),
        "varied": varied_value,
    });

    let mut response = Response::new(body.to_string().into());
    let headers = response.headers_mut();
    let value = |v: &str| HeaderValue::from_str(v).map_err(|e| format!("bad header value {v:?}: {e}"));
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    headers.insert(header::CACHE_CONTROL, value(&cache_control)?);
    headers.insert(header::ETAG, value(&format!("\"{}\"", param("etag").unwrap_or("v1")))?);
    if let Some(name) = vary {
        let name = HeaderName::from_bytes(name.as_bytes()).map_err(|e| e.to_string())?;
        headers.insert(header::VARY, value(name.as_str())?);
    }
    if param("cookie").is_some() {
        headers.insert(header::SET_COOKIE, HeaderValue::from_static("session=abc; Path=/"));
    }
    Ok(response)
}

atoll_sdk::export!(cached);
