//! Origins: routes that Pingora proxies to a tenant's own server instead of running a
//! function. An origin is a URL (`https://origin.example:8443/base`), a `Host` policy, an
//! optional path prefix to strip, timeouts and, for `https`, the CA to verify it with.
//!
//! This module parses and holds them and rewrites the request for them; the proxy connects
//! (`proxy::origin`).

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::sync::Arc;

use arc_swap::ArcSwapOption;
use std::time::{Duration, Instant};

use crate::outbound::OutboundScheme;

/// Where an origin is: scheme, host, port and a base path that prefixes every request path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OriginUrl {
    /// `http` or `https`.
    pub scheme: OutboundScheme,
    /// The host name (lowercase) or IP address, without brackets.
    pub host: String,
    /// The port, the scheme's default when the URL has none.
    pub port: u16,
    /// The base path without a trailing `/` (empty for none).
    pub base_path: String,
}

impl OriginUrl {
    /// Parses `http(s)://host[:port][/base]`; the error says what is wrong.
    pub fn parse(url: &str) -> Result<OriginUrl, String> {
        let uri: http::Uri = url
            .parse()
            .map_err(|e| format!("`{url}` is not a URL: {e}"))?;
        let scheme = match uri.scheme_str() {
            Some("https") => OutboundScheme::Https,
            Some("http") => OutboundScheme::Http,
            _ => {
                return Err(format!(
                    "`{url}`: write http://HOST[:PORT][/PATH] or https://…"
                ));
            }
        };
        let authority = uri
            .authority()
            .ok_or_else(|| format!("`{url}` has no host"))?;
        if authority.as_str().contains('@') {
            return Err(format!("`{url}`: user information is not allowed"));
        }
        if uri.query().is_some() {
            return Err(format!("`{url}`: a query is not allowed"));
        }
        let host = authority
            .host()
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_ascii_lowercase();
        if host.is_empty() {
            return Err(format!("`{url}` has no host"));
        }
        let port = authority.port_u16().unwrap_or(scheme.default_port());
        if port == 0 {
            return Err(format!("`{url}`: port 0 is not a port"));
        }
        Ok(OriginUrl {
            scheme,
            host,
            port,
            base_path: uri.path().trim_end_matches('/').to_owned(),
        })
    }

    /// The `Host` header value that names the origin: `host`, or `host:port` off the default.
    pub fn authority(&self) -> String {
        let host = match self.host.parse::<IpAddr>() {
            Ok(IpAddr::V6(v6)) => format!("[{v6}]"),
            _ => self.host.clone(),
        };
        if self.port == self.scheme.default_port() {
            host
        } else {
            format!("{host}:{}", self.port)
        }
    }
}

/// The `Host` header the origin gets.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HostHeader {
    /// The origin's own host (the default): what virtual-hosted origins and CDNs expect.
    Origin,
    /// The client's `Host`, as it arrived.
    Incoming,
    /// This value.
    Fixed(String),
}

impl HostHeader {
    /// Parses `origin`, `incoming`, or a host name to send as is.
    pub fn parse(text: &str) -> Result<HostHeader, String> {
        match text {
            "origin" => Ok(HostHeader::Origin),
            "incoming" => Ok(HostHeader::Incoming),
            other if !other.is_empty() && http::HeaderValue::from_str(other).is_ok() => {
                Ok(HostHeader::Fixed(other.to_owned()))
            }
            other => Err(format!(
                "host `{other}`: write `origin`, `incoming` or the host name to send"
            )),
        }
    }
}

/// An origin as configured.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OriginSpec {
    /// Where it is.
    pub url: OriginUrl,
    /// The `Host` it gets.
    pub host_header: HostHeader,
    /// A prefix removed from the request path before the base path is put in front; usually the
    /// route's path. `None` keeps the path whole.
    pub strip_prefix: Option<String>,
    /// Connecting, TLS included. Default 5 s.
    pub connect_timeout: Duration,
    /// Waiting for each read from the origin (the response head, then each body read). Default
    /// 30 s.
    pub read_timeout: Duration,
    /// PEM certificates that, instead of the system's roots, verify an `https` origin.
    pub ca_file: Option<PathBuf>,
}

/// How long a resolved origin address is reused before resolving again.
const RESOLVED_FOR: Duration = Duration::from_secs(30);

/// An origin being served: its spec, its name and its resolved address.
#[derive(Debug)]
pub struct Origin {
    /// The origin's name, unique within its tenant (and apart from its functions' names).
    pub name: String,
    /// What it is.
    pub spec: OriginSpec,
    /// The CA certificates of `spec.ca_file`, DER, checked at load.
    pub ca: Option<Vec<Vec<u8>>>,
    /// The address last resolved, and when; read without a lock on every request.
    resolved: ArcSwapOption<(Instant, SocketAddr)>,
}

impl Origin {
    /// An origin named `name`; reads and checks `spec.ca_file`.
    pub fn new(name: &str, spec: OriginSpec) -> Result<Origin, String> {
        let ca = match &spec.ca_file {
            None => None,
            Some(path) => {
                let mut checked = rustls::RootCertStore::empty();
                let certificates = crate::tls::add_roots(path, &mut checked)?;
                Some(certificates.into_iter().map(|c| c.to_vec()).collect())
            }
        };
        Ok(Origin {
            name: name.to_owned(),
            spec,
            ca,
            resolved: ArcSwapOption::empty(),
        })
    }

    /// The path and query to send: the strip prefix removed (at a segment boundary), the base
    /// path put in front.
    pub fn rewrite(&self, path: &str, query: Option<&str>) -> String {
        let rest = match &self.spec.strip_prefix {
            Some(prefix) => match path.strip_prefix(prefix.trim_end_matches('/')) {
                Some(rest) if rest.is_empty() || rest.starts_with('/') => rest,
                _ => path,
            },
            None => path,
        };
        let rest = if rest.is_empty() { "/" } else { rest };
        let mut target = format!("{}{rest}", self.spec.url.base_path);
        if let Some(query) = query {
            target.push('?');
            target.push_str(query);
        }
        target
    }

    /// The origin's address: an IP as written, or the name resolved (reused for 30 s).
    pub async fn address(&self) -> std::io::Result<SocketAddr> {
        let url = &self.spec.url;
        if let Ok(ip) = url.host.parse::<IpAddr>() {
            return Ok(SocketAddr::new(ip, url.port));
        }
        if let Some(resolved) = self.resolved.load().as_deref()
            && resolved.0.elapsed() < RESOLVED_FOR
        {
            return Ok(resolved.1);
        }
        let address = tokio::net::lookup_host((url.host.as_str(), url.port))
            .await?
            .next()
            .ok_or_else(|| {
                std::io::Error::new(
                    std::io::ErrorKind::NotFound,
                    format!("{} has no address", url.host),
                )
            })?;
        self.resolved
            .store(Some(Arc::new((Instant::now(), address))));
        Ok(address)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(url: &str, strip: Option<&str>) -> OriginSpec {
        OriginSpec {
            url: OriginUrl::parse(url).unwrap(),
            host_header: HostHeader::Origin,
            strip_prefix: strip.map(str::to_owned),
            connect_timeout: Duration::from_secs(5),
            read_timeout: Duration::from_secs(30),
            ca_file: None,
        }
    }

    #[test]
    fn urls_parse_with_default_ports_and_base_paths() {
        let url = OriginUrl::parse("https://Origin.Example/base/").unwrap();
        assert_eq!(url.scheme, OutboundScheme::Https);
        assert_eq!(url.host, "origin.example");
        assert_eq!(url.port, 443);
        assert_eq!(url.base_path, "/base");
        assert_eq!(url.authority(), "origin.example");
        let url = OriginUrl::parse("http://[::1]:8080").unwrap();
        assert_eq!((url.host.as_str(), url.port), ("::1", 8080));
        assert_eq!(url.authority(), "[::1]:8080");
        for bad in [
            "origin.example",
            "ftp://origin.example",
            "https://u:p@origin.example",
            "https://origin.example/?q=1",
            "https://origin.example:0",
        ] {
            assert!(OriginUrl::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn paths_are_rewritten_at_segment_boundaries() {
        let origin = Origin::new("o", spec("https://o.example/v2", Some("/static"))).unwrap();
        assert_eq!(origin.rewrite("/static/a.css", None), "/v2/a.css");
        assert_eq!(origin.rewrite("/static", Some("x=1")), "/v2/?x=1");
        assert_eq!(origin.rewrite("/staticx/a", None), "/v2/staticx/a");
        let plain = Origin::new("o", spec("http://o.example", None)).unwrap();
        assert_eq!(plain.rewrite("/a/b", Some("q")), "/a/b?q");
    }

    #[test]
    fn host_policies_parse() {
        assert_eq!(HostHeader::parse("origin"), Ok(HostHeader::Origin));
        assert_eq!(HostHeader::parse("incoming"), Ok(HostHeader::Incoming));
        assert_eq!(
            HostHeader::parse("www.example.com"),
            Ok(HostHeader::Fixed("www.example.com".into()))
        );
        assert!(HostHeader::parse("").is_err());
        assert!(HostHeader::parse("bad\nhost").is_err());
    }
}
