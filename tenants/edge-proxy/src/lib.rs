//! `edge-proxy`: a function in front of an origin. It rewrites the request (drops the first
//! path segment, the route it is mounted on, and adds `x-forwarded-host`), fetches the origin through `wasi:http/outgoing-handler`,
//! and answers with the origin's response plus `x-edge: atoll`.
//!
//! The origin is the function's config variable `origin` (`https://api.example.com`), or, when
//! it is not set, the request's `x-origin` header, so one build serves any origin the tenant's
//! `outbound.allow` lets it reach; the gateway refuses the rest (`502` here, with the reason).

use atoll_sdk::http::{HeaderValue, StatusCode, header};
use atoll_sdk::{Bytes, Request, Response, fetch};

/// Headers that belong to one hop and are not forwarded.
const HOP_BY_HOP: [&str; 8] = [
    "connection",
    "keep-alive",
    "proxy-connection",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
    "host",
];

fn edge(request: Request) -> Response {
    let configured = atoll_sdk::config::get("origin").ok().flatten();
    let Some(origin) = configured
        .or_else(|| {
            let header = request.headers().get("x-origin")?;
            header.to_str().ok().map(str::to_owned)
        })
        .map(|o| o.trim_end_matches('/').to_owned())
    else {
        return plain(
            StatusCode::BAD_REQUEST,
            "set the config variable `origin`, or send x-origin\n".into(),
        );
    };
    // `/edge/items/1` goes to `/items/1` on the origin.
    let path = request.uri().path();
    let rest = match path.trim_start_matches('/').split_once('/') {
        Some((_mount, rest)) => format!("/{rest}"),
        None => "/".to_owned(),
    };
    let query = request.uri().query().map(|q| format!("?{q}")).unwrap_or_default();
    let target = format!("{origin}{rest}{query}");

    // The host the client asked for: `Host`, or the authority the gateway reports.
    let host = request
        .headers()
        .get(header::HOST)
        .cloned()
        .or_else(|| {
            let authority = request.uri().authority()?;
            HeaderValue::from_str(authority.as_str()).ok()
        })
        .unwrap_or(HeaderValue::from_static(""));
    let (parts, body) = request.into_parts();
    let mut upstream = atoll_sdk::http::Request::builder()
        .method(parts.method)
        .uri(target.as_str());
    for (name, value) in &parts.headers {
        if !HOP_BY_HOP.contains(&name.as_str()) && name != "x-origin" {
            upstream = upstream.header(name, value);
        }
    }
    let upstream = match upstream.header("x-forwarded-host", host).body(body) {
        Ok(upstream) => upstream,
        Err(e) => return plain(StatusCode::BAD_REQUEST, format!("bad origin {target}: {e}\n")),
    };
    match fetch(upstream) {
        Ok(mut response) => {
            for name in HOP_BY_HOP {
                response.headers_mut().remove(name);
            }
            response
                .headers_mut()
                .insert("x-edge", HeaderValue::from_static("atoll"));
            response
        }
        Err(e) => plain(StatusCode::BAD_GATEWAY, format!("{e}\n")),
    }
}

fn plain(status: StatusCode, body: String) -> Response {
    let mut response = Response::new(Bytes::from(body));
    *response.status_mut() = status;
    response
        .headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static("text/plain; charset=utf-8"));
    response
}

atoll_sdk::export!(edge);
