//! Header helpers every answer path shares: the request's host, and which headers belong to
//! one hop only.

use pingora::http::RequestHeader;

/// The request's host: the URI's authority, or else the `Host` header (port and all).
pub(super) fn request_host(head: &RequestHeader) -> Option<&str> {
    head.uri.authority().map(|a| a.as_str()).or_else(|| {
        head.headers
            .get(http::header::HOST)
            .and_then(|v| v.to_str().ok())
    })
}

/// Connection-level headers that belong to one hop: the gateway sets its own.
pub(super) fn is_hop_by_hop(name: &http::HeaderName) -> bool {
    matches!(
        name.as_str(),
        "connection" | "keep-alive" | "transfer-encoding" | "upgrade" | "proxy-connection" | "te"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_uri_authority_wins_over_the_host_header() {
        let mut head = RequestHeader::build("GET", b"/x", None).unwrap();
        head.set_uri(http::Uri::from_static("http://a.test:8080/x"));
        head.insert_header("host", "b.test").unwrap();
        assert_eq!(request_host(&head), Some("a.test:8080"));
        let mut head = RequestHeader::build("GET", b"/x", None).unwrap();
        assert_eq!(request_host(&head), None);
        head.insert_header("host", "b.test").unwrap();
        assert_eq!(request_host(&head), Some("b.test"));
    }

    #[test]
    fn only_connection_headers_are_hop_by_hop() {
        for name in ["connection", "transfer-encoding", "te", "upgrade"] {
            assert!(
                is_hop_by_hop(&http::HeaderName::from_static(name)),
                "{name}"
            );
        }
        for name in ["content-type", "cache-control", "x-request-id"] {
            assert!(
                !is_hop_by_hop(&http::HeaderName::from_static(name)),
                "{name}"
            );
        }
    }
}
