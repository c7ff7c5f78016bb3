//! `ab-split`: A/B testing at the edge. A visitor with an `ab=a` or `ab=b` cookie keeps their
//! variant; a new visitor is assigned one at random and gets the cookie. The response says
//! which variant it is, varies on `Cookie` and is never cached by shared caches.

use std::collections::hash_map::RandomState;
use std::hash::BuildHasher;

use atoll_sdk::http::{HeaderValue, header};
use atoll_sdk::{Request, Response};

/// The variant named by the request's `ab` cookie, if any.
fn variant_from_cookie(request: &Request) -> Option<char> {
    request
        .headers()
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .find_map(|pair| match pair.trim().split_once('=') {
            Some(("ab", "a")) => Some('a'),
            Some(("ab", "b")) => Some('b'),
            _ => None,
        })
}

fn split(request: Request) -> Response {
    let (variant, assigned) = match variant_from_cookie(&request) {
        Some(variant) => (variant, false),
        None => {
            let coin = RandomState::new().hash_one(request.uri().path()) & 1;
            (if coin == 0 { 'a' } else { 'b' }, true)
        }
    };
    let mut response = Response::new(format!("variant {variant}\n").into());
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("text/plain; charset=utf-8"));
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("private, no-store"));
    headers.insert(header::VARY, HeaderValue::from_static("cookie"));
    if let Ok(value) = HeaderValue::from_str(&variant.to_string()) {
        headers.insert("x-variant", value);
    }
    if assigned {
        let cookie = format!("ab={variant}; Path=/; Max-Age=2592000; SameSite=Lax");
        if let Ok(value) = HeaderValue::from_str(&cookie) {
            headers.insert(header::SET_COOKIE, value);
        }
    }
    response
}

atoll_sdk::export!(split);
