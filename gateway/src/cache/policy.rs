//! Whether, and for how long, a response may be kept by a shared cache (RFC 9111, the parts an
//! edge needs): `s-maxage`, else `max-age`, or `public` with one of them; never `private`,
//! `no-store`, `no-cache`, `Vary: *` or a response that sets a cookie; only for `GET` and
//! `HEAD`, and only statuses that are cacheable by default.

use std::time::Duration;

use http::{HeaderMap, Method, StatusCode, header};

/// Whether requests with this method may be answered from the cache (and fill it).
pub fn is_cacheable_request(method: &Method, headers: &HeaderMap) -> bool {
    (method == Method::GET || method == Method::HEAD) && !headers.contains_key(header::RANGE)
}

/// How long a response may be served from the cache, or `None` when it may not be stored.
/// `authorized`: the request carried `Authorization`, which only `public` or `s-maxage`
/// overrides.
pub fn freshness(status: StatusCode, headers: &HeaderMap, authorized: bool) -> Option<Duration> {
    if !matches!(
        status.as_u16(),
        200 | 203 | 204 | 300 | 301 | 308 | 404 | 410
    ) {
        return None;
    }
    if headers.contains_key(header::SET_COOKIE) {
        return None;
    }
    if headers
        .get_all(header::VARY)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .any(|v| v.split(',').any(|name| name.trim() == "*"))
    {
        return None;
    }
    let mut directives = CacheControl::default();
    for value in headers.get_all(header::CACHE_CONTROL) {
        if let Ok(value) = value.to_str() {
            directives.read(value);
        }
    }
    if directives.private || directives.no_store || directives.no_cache {
        return None;
    }
    if authorized && !directives.public && directives.s_maxage.is_none() {
        return None;
    }
    let seconds = directives.s_maxage.or(directives.max_age)?;
    (seconds > 0).then(|| Duration::from_secs(seconds))
}

/// The directives of `Cache-Control` that matter here.
#[derive(Debug, Default)]
struct CacheControl {
    public: bool,
    private: bool,
    no_store: bool,
    no_cache: bool,
    max_age: Option<u64>,
    s_maxage: Option<u64>,
}

impl CacheControl {
    fn read(&mut self, value: &str) {
        for directive in value.split(',') {
            let (name, argument) = match directive.split_once('=') {
                Some((name, argument)) => (name.trim(), Some(argument.trim().trim_matches('"'))),
                None => (directive.trim(), None),
            };
            let seconds = || argument.and_then(|a| a.parse::<u64>().ok());
            match name.to_ascii_lowercase().as_str() {
                "public" => self.public = true,
                "private" => self.private = true,
                "no-store" => self.no_store = true,
                "no-cache" => self.no_cache = true,
                // A malformed age makes the response stale: not stored.
                "max-age" => self.max_age = Some(seconds().unwrap_or(0)),
                "s-maxage" => self.s_maxage = Some(seconds().unwrap_or(0)),
                _ => {}
            }
        }
    }
}

/// The request header names a response varies on (lowercase), from its `Vary` headers.
pub fn vary_names(headers: &HeaderMap) -> Vec<http::HeaderName> {
    let mut names: Vec<http::HeaderName> = headers
        .get_all(header::VARY)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .filter_map(|name| http::HeaderName::from_bytes(name.trim().as_bytes()).ok())
        .collect();
    names.sort_by(|a, b| a.as_str().cmp(b.as_str()));
    names.dedup();
    names
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.append(
                http::HeaderName::from_bytes(name.as_bytes()).unwrap(),
                value.parse().unwrap(),
            );
        }
        map
    }

    fn fresh(pairs: &[(&str, &str)]) -> Option<u64> {
        freshness(StatusCode::OK, &headers(pairs), false).map(|d| d.as_secs())
    }

    #[test]
    fn ages_come_from_s_maxage_then_max_age() {
        assert_eq!(fresh(&[("cache-control", "public, max-age=60")]), Some(60));
        assert_eq!(
            fresh(&[("cache-control", "max-age=60, s-maxage=300")]),
            Some(300)
        );
        assert_eq!(fresh(&[("cache-control", "max-age=\"30\"")]), Some(30));
        assert_eq!(fresh(&[("cache-control", "public")]), None);
        assert_eq!(fresh(&[]), None);
        assert_eq!(fresh(&[("cache-control", "max-age=0")]), None);
        assert_eq!(fresh(&[("cache-control", "max-age=soon")]), None);
    }

    #[test]
    fn private_no_store_cookies_and_vary_star_are_never_stored() {
        for pairs in [
            &[("cache-control", "private, max-age=60")][..],
            &[("cache-control", "no-store, max-age=60")],
            &[("cache-control", "no-cache, max-age=60")],
            &[("cache-control", "max-age=60"), ("set-cookie", "a=b")],
            &[("cache-control", "max-age=60"), ("vary", "accept, *")],
        ] {
            assert_eq!(fresh(pairs), None, "{pairs:?}");
        }
    }

    #[test]
    fn statuses_methods_and_authorization() {
        let h = headers(&[("cache-control", "max-age=60")]);
        assert!(freshness(StatusCode::NOT_FOUND, &h, false).is_some());
        assert!(freshness(StatusCode::INTERNAL_SERVER_ERROR, &h, false).is_none());
        assert!(freshness(StatusCode::PARTIAL_CONTENT, &h, false).is_none());
        assert!(freshness(StatusCode::OK, &h, true).is_none());
        let public = headers(&[("cache-control", "public, max-age=60")]);
        assert!(freshness(StatusCode::OK, &public, true).is_some());
        assert!(is_cacheable_request(&Method::GET, &HeaderMap::new()));
        assert!(is_cacheable_request(&Method::HEAD, &HeaderMap::new()));
        assert!(!is_cacheable_request(&Method::POST, &HeaderMap::new()));
        assert!(!is_cacheable_request(
            &Method::GET,
            &headers(&[("range", "bytes=0-1")])
        ));
    }

    #[test]
    fn vary_names_are_lowercase_sorted_and_unique() {
        let h = headers(&[("vary", "Accept-Encoding, accept"), ("vary", "accept")]);
        let names: Vec<_> = vary_names(&h)
            .iter()
            .map(|n| n.as_str().to_owned())
            .collect();
        assert_eq!(names, ["accept", "accept-encoding"]);
    }
}
