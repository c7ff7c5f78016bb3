//! `echo`: describes the request it received as JSON.

use atoll_sdk::http::{HeaderValue, StatusCode, header};
use atoll_sdk::{Request, Response};
use serde_json::{Map, Value, json};

/// Answers `200 OK` (or the status a `status=N` query asks for, any from 100 to 999),
/// `application/json`, with the request's method, path, query (`null` when absent), headers
/// (lowercase names, every value kept), body (as lossy UTF-8) and body length in bytes.
fn echo(request: Request) -> Result<Response, serde_json::Error> {
    let (parts, body) = request.into_parts();
    let mut headers = Map::new();
    for name in parts.headers.keys() {
        let values = parts.headers.get_all(name).iter().map(lossy).collect();
        headers.insert(name.as_str().to_owned(), Value::Array(values));
    }
    let description = json!({
        "method": parts.method.as_str(),
        "path": parts.uri.path(),
        "query": parts.uri.query(),
        "headers": headers,
        "body": String::from_utf8_lossy(&body),
        "body_len": body.len(),
    });

    let status = parts
        .uri
        .query()
        .unwrap_or_default()
        .split('&')
        .find_map(|pair| pair.strip_prefix("status="))
        .and_then(|code| code.parse::<u16>().ok())
        .and_then(|code| StatusCode::from_u16(code).ok());
    let mut response = Response::new(serde_json::to_vec(&description)?.into());
    if let Some(status) = status {
        *response.status_mut() = status;
    }
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    Ok(response)
}

/// A header value as a JSON string, replacing invalid UTF-8.
fn lossy(value: &HeaderValue) -> Value {
    String::from_utf8_lossy(value.as_bytes()).into()
}

atoll_sdk::export!(echo);
