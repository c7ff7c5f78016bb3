//! Pure conversions from `wasi:http` request parts to [`http`] types.
//!
//! Nothing here calls into the host, so these helpers are unit-tested natively.

use std::fmt;

use http::uri::{PathAndQuery, Scheme};
use http::{HeaderMap, HeaderName, HeaderValue, Method, Uri};
use wasip2::http::types as wasi;

/// Why a request from the host could not be turned into a [`crate::Request`].
#[derive(Debug)]
pub(crate) struct BadRequest(String);

impl BadRequest {
    pub(crate) fn new(message: impl Into<String>) -> Self {
        Self(message.into())
    }
}

impl fmt::Display for BadRequest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Converts a `wasi:http` method, including extension methods.
pub(crate) fn method(method: wasi::Method) -> Result<Method, BadRequest> {
    Ok(match method {
        wasi::Method::Get => Method::GET,
        wasi::Method::Head => Method::HEAD,
        wasi::Method::Post => Method::POST,
        wasi::Method::Put => Method::PUT,
        wasi::Method::Delete => Method::DELETE,
        wasi::Method::Connect => Method::CONNECT,
        wasi::Method::Options => Method::OPTIONS,
        wasi::Method::Trace => Method::TRACE,
        wasi::Method::Patch => Method::PATCH,
        wasi::Method::Other(other) => Method::from_bytes(other.as_bytes())
            .map_err(|_| BadRequest::new(format!("invalid method {other:?}")))?,
    })
}

/// Builds the request URI.
///
/// The URI is absolute when the host reports both a scheme and an authority
/// that parse; otherwise it is left relative (path and query only). A missing
/// path becomes `/`.
pub(crate) fn uri(
    scheme: Option<wasi::Scheme>,
    authority: Option<String>,
    path_with_query: Option<String>,
) -> Result<Uri, BadRequest> {
    let path_and_query = match path_with_query.as_deref() {
        None | Some("") => PathAndQuery::from_static("/"),
        Some(raw) => raw
            .parse::<PathAndQuery>()
            .map_err(|err| BadRequest::new(format!("invalid request target {raw:?}: {err}")))?,
    };
    if let (Some(scheme), Some(authority)) = (scheme, authority) {
        let scheme = match scheme {
            wasi::Scheme::Http => Ok(Scheme::HTTP),
            wasi::Scheme::Https => Ok(Scheme::HTTPS),
            wasi::Scheme::Other(other) => other.parse(),
        };
        let absolute = scheme.map_err(http::Error::from).and_then(|scheme| {
            Uri::builder()
                .scheme(scheme)
                .authority(authority)
                .path_and_query(path_and_query.clone())
                .build()
        });
        if let Ok(uri) = absolute {
            return Ok(uri);
        }
    }
    Ok(Uri::from(path_and_query))
}

/// Converts header entries, keeping repeated names as separate values.
pub(crate) fn headers(entries: Vec<(String, Vec<u8>)>) -> Result<HeaderMap, BadRequest> {
    let mut headers = HeaderMap::with_capacity(entries.len());
    for (name, value) in entries {
        let name = HeaderName::from_bytes(name.as_bytes())
            .map_err(|_| BadRequest::new(format!("invalid header name {name:?}")))?;
        let value = HeaderValue::from_bytes(&value)
            .map_err(|_| BadRequest::new(format!("invalid value for header {name}")))?;
        headers.append(name, value);
    }
    Ok(headers)
}

/// Whether a request can carry no body, so reading it would only cost host calls: it says
/// `content-length: 0`, or it is a `GET` or `HEAD` that declares no length and no
/// `transfer-encoding` (content in those has no meaning, RFC 9110 §9.3.1–2).
pub(crate) fn bodiless(method: &Method, headers: &HeaderMap) -> bool {
    if let Some(length) = headers.get(http::header::CONTENT_LENGTH) {
        return length.as_bytes() == b"0";
    }
    (method == Method::GET || method == Method::HEAD)
        && !headers.contains_key(http::header::TRANSFER_ENCODING)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_requests_that_cannot_carry_a_body_skip_reading_it() {
        let with = |pairs: &[(&str, &str)]| {
            let mut map = HeaderMap::new();
            for (name, value) in pairs {
                map.append(
                    HeaderName::from_bytes(name.as_bytes()).unwrap(),
                    HeaderValue::from_str(value).unwrap(),
                );
            }
            map
        };
        assert!(bodiless(&Method::GET, &with(&[])));
        assert!(bodiless(&Method::HEAD, &with(&[("accept", "*/*")])));
        assert!(bodiless(&Method::POST, &with(&[("content-length", "0")])));
        assert!(
            !bodiless(&Method::POST, &with(&[])),
            "a POST may stream a body"
        );
        assert!(!bodiless(&Method::GET, &with(&[("content-length", "5")])));
        assert!(!bodiless(
            &Method::GET,
            &with(&[("transfer-encoding", "chunked")])
        ));
    }

    fn s(value: &str) -> Option<String> {
        Some(value.to_owned())
    }

    #[test]
    fn standard_and_extension_methods() {
        assert_eq!(method(wasi::Method::Get).unwrap(), Method::GET);
        assert_eq!(method(wasi::Method::Patch).unwrap(), Method::PATCH);
        assert_eq!(
            method(wasi::Method::Other("PURGE".into()))
                .unwrap()
                .as_str(),
            "PURGE"
        );
        assert!(method(wasi::Method::Other("BAD METHOD".into())).is_err());
    }

    #[test]
    fn absolute_uri_when_scheme_and_authority_are_known() {
        let uri = uri(
            Some(wasi::Scheme::Https),
            s("example.com:8443"),
            s("/a/b?x=1&y=2"),
        )
        .unwrap();
        assert_eq!(uri.to_string(), "https://example.com:8443/a/b?x=1&y=2");
        assert_eq!(uri.path(), "/a/b");
        assert_eq!(uri.query(), Some("x=1&y=2"));
    }

    #[test]
    fn other_scheme_is_kept() {
        let uri = uri(Some(wasi::Scheme::Other("ws".into())), s("h"), s("/")).unwrap();
        assert_eq!(uri.scheme_str(), Some("ws"));
    }

    #[test]
    fn relative_uri_without_authority() {
        let uri = uri(Some(wasi::Scheme::Http), None, s("/p?q")).unwrap();
        assert_eq!(uri.to_string(), "/p?q");
        assert_eq!(uri.authority(), None);
    }

    #[test]
    fn relative_uri_when_authority_is_invalid() {
        let uri = uri(Some(wasi::Scheme::Http), s("bad host"), s("/p")).unwrap();
        assert_eq!(uri.to_string(), "/p");
    }

    #[test]
    fn missing_path_is_root() {
        assert_eq!(uri(None, None, None).unwrap().path(), "/");
        assert_eq!(uri(None, None, s("")).unwrap().path(), "/");
    }

    #[test]
    fn invalid_path_is_rejected() {
        assert!(uri(None, None, s("/a b")).is_err());
    }

    #[test]
    fn repeated_headers_are_kept_in_order() {
        let headers = headers(vec![
            ("Accept".into(), b"text/html".to_vec()),
            ("x-multi".into(), b"1".to_vec()),
            ("X-Multi".into(), b"2".to_vec()),
        ])
        .unwrap();
        assert_eq!(headers.len(), 3);
        assert_eq!(headers["accept"], "text/html");
        let multi: Vec<_> = headers.get_all("x-multi").iter().collect();
        assert_eq!(multi, ["1", "2"]);
    }

    #[test]
    fn invalid_headers_are_rejected() {
        assert!(headers(vec![("bad name".into(), b"v".to_vec())]).is_err());
        assert!(headers(vec![("name".into(), b"a\nb".to_vec())]).is_err());
    }
}
