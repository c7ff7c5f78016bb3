//! A tenant's outbound allowlist: the `scheme://host[:port]` patterns its functions may call.
//!
//! A pattern names a scheme (`http` or `https`), a host and an optional port (the scheme's
//! default when absent). The host is a name (`api.example.com`), a wildcard over one or more
//! labels (`*.example.com`), or an IP address (`10.0.0.5`, `[fd00::1]`). Only a pattern that
//! names an address lets a function reach a private, loopback or link-local address, and only
//! that one; names never do, whatever they resolve to (see [`super::address`]).

use std::net::IpAddr;

use crate::routes::HostPattern;

/// The URL schemes a function may call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OutboundScheme {
    /// Plain HTTP.
    Http,
    /// HTTP over TLS, verified against the gateway's roots.
    Https,
}

impl OutboundScheme {
    /// The port a URL without one means.
    pub fn default_port(self) -> u16 {
        match self {
            OutboundScheme::Http => 80,
            OutboundScheme::Https => 443,
        }
    }

    fn as_str(self) -> &'static str {
        match self {
            OutboundScheme::Http => "http",
            OutboundScheme::Https => "https",
        }
    }
}

/// The host part of a pattern.
#[derive(Debug, Clone, PartialEq, Eq)]
enum HostMatch {
    /// A host name, exact or wildcard.
    Name(HostPattern),
    /// An address, written as such.
    Address(IpAddr),
}

/// One allowed origin.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OriginPattern {
    scheme: OutboundScheme,
    host: HostMatch,
    port: u16,
}

/// Which addresses a call that matched the allowlist may connect to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AddressPermit {
    /// Public addresses only: the pattern named a host.
    PublicOnly,
    /// This address, public or not: the pattern named it.
    Exactly(IpAddr),
}

impl OriginPattern {
    /// Parses `http(s)://host[:port]`; the error says what is wrong and how to write it.
    pub fn parse(origin: &str) -> Result<OriginPattern, String> {
        let (scheme, rest) = if let Some(rest) = origin.strip_prefix("https://") {
            (OutboundScheme::Https, rest)
        } else if let Some(rest) = origin.strip_prefix("http://") {
            (OutboundScheme::Http, rest)
        } else {
            return Err("write `http://HOST[:PORT]` or `https://HOST[:PORT]`".into());
        };
        if rest.contains('/') || rest.contains('?') || rest.contains('@') {
            return Err(
                "an origin has no path, query or user: write `scheme://host[:port]`".into(),
            );
        }
        let (host, port) = split_host_port(rest)?;
        let port = match port {
            Some(port) => port
                .parse::<u16>()
                .ok()
                .filter(|&p| p != 0)
                .ok_or_else(|| format!("port `{port}` is not a number from 1 to 65535"))?,
            None => scheme.default_port(),
        };
        let host = match parse_address(host) {
            Some(address) => HostMatch::Address(address),
            None if host.starts_with('[') => {
                return Err(format!("`{host}` is not an IPv6 address"));
            }
            None => HostMatch::Name(HostPattern::parse(host).map_err(|e| e.to_string())?),
        };
        Ok(OriginPattern { scheme, host, port })
    }

    fn matches(&self, scheme: OutboundScheme, host: &Host, port: u16) -> Option<AddressPermit> {
        if self.scheme != scheme || self.port != port {
            return None;
        }
        match (&self.host, host) {
            (HostMatch::Name(pattern), Host::Name(name)) => pattern
                .matches_host(name)
                .then_some(AddressPermit::PublicOnly),
            (HostMatch::Address(allowed), Host::Address(address)) => {
                (allowed == address).then_some(AddressPermit::Exactly(*address))
            }
            _ => None,
        }
    }
}

impl std::fmt::Display for OriginPattern {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let scheme = self.scheme.as_str();
        match &self.host {
            HostMatch::Name(HostPattern::Wildcard(suffix)) => write!(f, "{scheme}://*.{suffix}")?,
            HostMatch::Name(HostPattern::Exact(name)) => write!(f, "{scheme}://{name}")?,
            HostMatch::Name(HostPattern::Any) => write!(f, "{scheme}://*")?,
            HostMatch::Address(IpAddr::V4(v4)) => write!(f, "{scheme}://{v4}")?,
            HostMatch::Address(IpAddr::V6(v6)) => write!(f, "{scheme}://[{v6}]")?,
        }
        write!(f, ":{}", self.port)
    }
}

/// The host a call is for: a name to resolve, or an address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Host {
    /// A host name (lowercase).
    Name(String),
    /// An IP address written in the URL.
    Address(IpAddr),
}

impl Host {
    /// The host of a URL's authority (`example.com`, `10.0.0.1`, `[::1]`).
    pub fn parse(host: &str) -> Host {
        match parse_address(host) {
            Some(address) => Host::Address(address),
            None => Host::Name(host.to_ascii_lowercase()),
        }
    }
}

/// A tenant's allowlist. Empty: every call is denied.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AllowList {
    patterns: Vec<OriginPattern>,
}

impl AllowList {
    /// Parses every pattern; the error names the first bad one.
    pub fn parse<S: AsRef<str>>(origins: &[S]) -> Result<AllowList, String> {
        let patterns = origins
            .iter()
            .map(|o| {
                OriginPattern::parse(o.as_ref()).map_err(|why| format!("`{}`: {why}", o.as_ref()))
            })
            .collect::<Result<_, _>>()?;
        Ok(AllowList { patterns })
    }

    /// What a call to `scheme://host:port` may connect to, or `None` when no pattern allows it.
    /// A pattern naming the address wins over one naming a host.
    pub fn permit(&self, scheme: OutboundScheme, host: &Host, port: u16) -> Option<AddressPermit> {
        let mut permit = None;
        for pattern in &self.patterns {
            match pattern.matches(scheme, host, port) {
                Some(exact @ AddressPermit::Exactly(_)) => return Some(exact),
                Some(public) => permit = Some(public),
                None => {}
            }
        }
        permit
    }

    /// Whether the list allows nothing.
    pub fn is_empty(&self) -> bool {
        self.patterns.is_empty()
    }
}

/// `host[:port]`, with IPv6 addresses in brackets.
fn split_host_port(authority: &str) -> Result<(&str, Option<&str>), String> {
    if authority.starts_with('[') {
        let end = authority
            .find(']')
            .ok_or("an IPv6 address needs its closing `]`")?;
        let (host, rest) = authority.split_at(end + 1);
        return match rest.strip_prefix(':') {
            Some(port) => Ok((host, Some(port))),
            None if rest.is_empty() => Ok((host, None)),
            None => Err(format!("unexpected `{rest}` after `{host}`")),
        };
    }
    Ok(match authority.rsplit_once(':') {
        Some((host, port)) => (host, Some(port)),
        None => (authority, None),
    })
}

/// An IPv4 address, or an IPv6 address in brackets.
fn parse_address(host: &str) -> Option<IpAddr> {
    match host.strip_prefix('[').and_then(|h| h.strip_suffix(']')) {
        Some(v6) => v6.parse::<std::net::Ipv6Addr>().ok().map(IpAddr::V6),
        None => host.parse::<std::net::Ipv4Addr>().ok().map(IpAddr::V4),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn list(origins: &[&str]) -> AllowList {
        AllowList::parse(origins).unwrap()
    }

    fn name(host: &str) -> Host {
        Host::parse(host)
    }

    #[test]
    fn exact_names_match_scheme_host_and_default_port() {
        let allow = list(&["https://api.example.com"]);
        let https = OutboundScheme::Https;
        assert_eq!(
            allow.permit(https, &name("api.example.com"), 443),
            Some(AddressPermit::PublicOnly)
        );
        assert_eq!(
            allow.permit(https, &name("API.Example.com"), 443),
            Some(AddressPermit::PublicOnly)
        );
        assert_eq!(allow.permit(https, &name("api.example.com"), 8443), None);
        assert_eq!(
            allow.permit(OutboundScheme::Http, &name("api.example.com"), 80),
            None
        );
        assert_eq!(allow.permit(https, &name("example.com"), 443), None);
        assert_eq!(
            allow.permit(https, &name("api.example.com.evil.net"), 443),
            None
        );
    }

    #[test]
    fn wildcards_cover_one_or_more_labels_only() {
        let allow = list(&["http://*.example.com:8080"]);
        let http = OutboundScheme::Http;
        assert!(allow.permit(http, &name("a.example.com"), 8080).is_some());
        assert!(allow.permit(http, &name("a.b.example.com"), 8080).is_some());
        assert!(allow.permit(http, &name("example.com"), 8080).is_none());
        assert!(allow.permit(http, &name("badexample.com"), 8080).is_none());
    }

    #[test]
    fn only_a_pattern_naming_an_address_permits_that_address() {
        let allow = list(&[
            "http://127.0.0.1:9000",
            "http://[::1]:9000",
            "http://*.internal:9000",
        ]);
        let http = OutboundScheme::Http;
        let loopback: IpAddr = "127.0.0.1".parse().unwrap();
        assert_eq!(
            allow.permit(http, &name("127.0.0.1"), 9000),
            Some(AddressPermit::Exactly(loopback))
        );
        assert_eq!(
            allow.permit(http, &name("[::1]"), 9000),
            Some(AddressPermit::Exactly("::1".parse().unwrap()))
        );
        assert_eq!(allow.permit(http, &name("127.0.0.2"), 9000), None);
        assert_eq!(
            allow.permit(http, &name("db.internal"), 9000),
            Some(AddressPermit::PublicOnly)
        );
    }

    #[test]
    fn bad_patterns_are_refused_with_a_reason() {
        for (bad, why) in [
            ("api.example.com", "write `http://"),
            ("ftp://example.com", "write `http://"),
            ("https://example.com/path", "no path"),
            ("https://user@example.com", "no path, query or user"),
            ("https://example.com:0", "from 1 to 65535"),
            ("https://example.com:99999", "from 1 to 65535"),
            ("https://exa mple.com", "only letters"),
            ("https://[::1", "closing"),
            ("https://[nope]", "not an IPv6 address"),
            ("https://a.*.com", "`*`"),
        ] {
            let err = OriginPattern::parse(bad).unwrap_err();
            assert!(err.contains(why), "{bad}: {err}");
        }
        let err = AllowList::parse(&["https://ok.example", "nope"]).unwrap_err();
        assert!(err.starts_with("`nope`"), "{err}");
    }

    #[test]
    fn patterns_display_as_written_with_their_port() {
        assert_eq!(
            OriginPattern::parse("https://*.Example.com")
                .unwrap()
                .to_string(),
            "https://*.example.com:443"
        );
        assert_eq!(
            OriginPattern::parse("http://[fd00::1]:81")
                .unwrap()
                .to_string(),
            "http://[fd00::1]:81"
        );
    }
}
