//! Routes: the `HOST/PATH` syntax, host patterns, and the [`RouteTable`] matcher.
//!
//! A route is `HOST/PATH` or `/PATH`. HOST is exact (`api.example.com`), a wildcard
//! (`*.example.com`: one or more labels in front, never the bare suffix), or absent (any host);
//! hosts are case-insensitive and a port in the `Host` header is ignored. PATH is a prefix that
//! matches at segment boundaries (`/api` matches `/api`, `/api/`, `/api/x`, never `/apix`).
//!
//! Precedence: the exact host, then wildcards (longest suffix first), then host-less routes;
//! within each, the longest path. A tier with no matching path falls through to the next.
//!
//! Allocation-free on lookup. The table is persistent (`imbl`'s hash array mapped trie): a
//! clone shares everything, and [`RouteTable::insert`] or [`RouteTable::remove`] on the clone
//! copies only the path from the root to the changed host, so publishing a change costs the size
//! of the change, not of the table, however many tenants it holds.

use std::fmt;
use std::str::FromStr;

/// Longest route accepted, in bytes.
const MAX_ROUTE_LEN: usize = 1024;
/// Longest host name (RFC 1035).
const MAX_HOST_LEN: usize = 253;
/// Longest label of a host name.
const MAX_LABEL_LEN: usize = 63;

/// Why a route or host pattern is not valid. Every message quotes the bad value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RouteError {
    /// The route is empty.
    #[error("a route cannot be empty")]
    Empty,
    /// The route is longer than 1024 bytes.
    #[error("route `{0}…` is longer than {MAX_ROUTE_LEN} bytes")]
    TooLong(String),
    /// The route has no `/` to start its path.
    #[error("route `{0}` has no path: write `HOST/PATH` or `/PATH`")]
    NoPath(String),
    /// The host is not a valid host name or wildcard.
    #[error("host `{host}` is not valid: {why}")]
    Host {
        /// The host as written.
        host: String,
        /// What is wrong with it.
        why: &'static str,
    },
    /// The path contains something a route path may not.
    #[error("path `{path}` is not valid: {why}")]
    Path {
        /// The path as written.
        path: String,
        /// What is wrong with it.
        why: &'static str,
    },
}

/// Which hosts a route or a tenant covers.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum HostPattern {
    /// Any host: a host-less route.
    Any,
    /// Exactly this host (lowercase).
    Exact(String),
    /// One or more labels in front of this suffix (lowercase, without the `*.`).
    Wildcard(String),
}

impl HostPattern {
    /// Parses `api.example.com` or `*.example.com`. Host-less (`Any`) comes only from a route
    /// without a host.
    pub fn parse(s: &str) -> Result<HostPattern, RouteError> {
        let bad = |why| RouteError::Host {
            host: s.to_owned(),
            why,
        };
        let lower = s.to_ascii_lowercase();
        let (wildcard, name) = match lower.strip_prefix("*.") {
            Some(rest) => (true, rest),
            None => (false, lower.as_str()),
        };
        if name.is_empty() {
            return Err(bad("it is empty"));
        }
        if name.len() > MAX_HOST_LEN {
            return Err(bad("it is longer than 253 bytes"));
        }
        if name.contains('*') {
            return Err(bad(
                "`*` may only stand alone as the first label, as in `*.example.com`",
            ));
        }
        for label in name.split('.') {
            if label.is_empty() {
                return Err(bad("it has an empty label"));
            }
            if label.len() > MAX_LABEL_LEN {
                return Err(bad("a label is longer than 63 bytes"));
            }
            if !label
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
            {
                return Err(bad("only letters, digits, `-` and `.` are allowed"));
            }
        }
        Ok(if wildcard {
            HostPattern::Wildcard(name.to_owned())
        } else {
            HostPattern::Exact(name.to_owned())
        })
    }

    /// Whether `host` (without its port, any case) is one of this pattern's hosts.
    pub fn matches_host(&self, host: &str) -> bool {
        match self {
            HostPattern::Any => true,
            HostPattern::Exact(name) => host.eq_ignore_ascii_case(name),
            HostPattern::Wildcard(suffix) => wildcard_matches(suffix, host),
        }
    }

    /// Whether every host of `other` is also a host of `self`: a tenant whose hosts cover a
    /// route's host may claim that route.
    pub fn covers(&self, other: &HostPattern) -> bool {
        match (self, other) {
            (HostPattern::Any, _) => true,
            (_, HostPattern::Any) => false,
            (HostPattern::Exact(a), HostPattern::Exact(b)) => a == b,
            (HostPattern::Exact(_), HostPattern::Wildcard(_)) => false,
            (HostPattern::Wildcard(s), HostPattern::Exact(host)) => wildcard_matches(s, host),
            (HostPattern::Wildcard(s), HostPattern::Wildcard(t)) => {
                t == s || wildcard_matches(s, t)
            }
        }
    }
}

impl fmt::Display for HostPattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            HostPattern::Any => f.write_str("*"),
            HostPattern::Exact(name) => f.write_str(name),
            HostPattern::Wildcard(suffix) => write!(f, "*.{suffix}"),
        }
    }
}

/// `host` ends with `.suffix` and has at least one label before it.
fn wildcard_matches(suffix: &str, host: &str) -> bool {
    host.len() > suffix.len() + 1
        && host.as_bytes()[host.len() - suffix.len() - 1] == b'.'
        && host[host.len() - suffix.len()..].eq_ignore_ascii_case(suffix)
}

/// A parsed, normalised route.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Route {
    host: HostPattern,
    path: String,
}

impl Route {
    /// Parses `HOST/PATH` or `/PATH`.
    pub fn parse(s: &str) -> Result<Route, RouteError> {
        if s.is_empty() {
            return Err(RouteError::Empty);
        }
        if s.len() > MAX_ROUTE_LEN {
            let cut = (0..=64).rev().find(|&i| s.is_char_boundary(i)).unwrap_or(0);
            return Err(RouteError::TooLong(s[..cut].to_owned()));
        }
        let Some(slash) = s.find('/') else {
            return Err(RouteError::NoPath(s.to_owned()));
        };
        let (host, path) = s.split_at(slash);
        let host = if host.is_empty() {
            HostPattern::Any
        } else {
            HostPattern::parse(host)?
        };
        Ok(Route {
            host,
            path: normalise_path(path)?,
        })
    }

    /// The route's host pattern.
    pub fn host(&self) -> &HostPattern {
        &self.host
    }

    /// The route's path prefix, normalised (no trailing `/` except for the root).
    pub fn path(&self) -> &str {
        &self.path
    }
}

fn normalise_path(path: &str) -> Result<String, RouteError> {
    let bad = |why| RouteError::Path {
        path: path.to_owned(),
        why,
    };
    if path.contains(['?', '#']) {
        return Err(bad("a route path has no query or fragment"));
    }
    if path
        .bytes()
        .any(|b| b.is_ascii_whitespace() || b.is_ascii_control())
    {
        return Err(bad("it contains white space or control characters"));
    }
    let trimmed = path
        .strip_suffix('/')
        .filter(|p| !p.is_empty())
        .unwrap_or(path);
    if trimmed.len() > 1 && trimmed[1..].split('/').any(|seg| seg.is_empty()) {
        return Err(bad("it contains an empty segment (`//`)"));
    }
    if trimmed.split('/').any(|seg| seg == "." || seg == "..") {
        return Err(bad("it contains a `.` or `..` segment"));
    }
    Ok(trimmed.to_owned())
}

impl fmt::Display for Route {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.host {
            HostPattern::Any => f.write_str(&self.path),
            host => write!(f, "{host}{}", self.path),
        }
    }
}

impl FromStr for Route {
    type Err = RouteError;

    fn from_str(s: &str) -> Result<Route, RouteError> {
        Route::parse(s)
    }
}

/// A route that is already in the table.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("route `{route}` is already taken")]
pub struct RouteConflict {
    /// The route that was inserted twice.
    pub route: Route,
}

/// Routes of one host tier, longest path first.
#[derive(Debug, Clone)]
struct PathList<T> {
    entries: Vec<(Route, T)>,
}

impl<T> Default for PathList<T> {
    fn default() -> Self {
        PathList {
            entries: Vec::new(),
        }
    }
}

impl<T> PathList<T> {
    /// Adds `route` before every shorter path; the same path twice is a conflict.
    fn insert(&mut self, route: Route, value: T) -> Result<(), RouteConflict> {
        if self.entries.iter().any(|(r, _)| r.path == route.path) {
            return Err(RouteConflict { route });
        }
        let at = self
            .entries
            .iter()
            .position(|(r, _)| r.path.len() < route.path.len())
            .unwrap_or(self.entries.len());
        self.entries.insert(at, (route, value));
        Ok(())
    }

    fn remove(&mut self, path: &str) -> Option<T> {
        let at = self.entries.iter().position(|(r, _)| r.path == path)?;
        Some(self.entries.remove(at).1)
    }

    fn lookup(&self, path: &str) -> Option<&T> {
        self.entries
            .iter()
            .find(|(route, _)| path_matches(&route.path, path))
            .map(|(_, value)| value)
    }
}

/// `prefix` matches `path` at a segment boundary.
fn path_matches(prefix: &str, path: &str) -> bool {
    if prefix == "/" {
        return true;
    }
    match path.strip_prefix(prefix) {
        Some(rest) => rest.is_empty() || rest.starts_with('/'),
        None => false,
    }
}

/// A route table: cheap to clone, changed one route at a time.
#[derive(Debug, Clone)]
pub struct RouteTable<T: Clone> {
    exact: imbl::HashMap<String, PathList<T>>,
    /// Wildcard suffixes, longest first.
    wildcard: Vec<(String, PathList<T>)>,
    any: PathList<T>,
    len: usize,
}

impl<T: Clone> Default for RouteTable<T> {
    fn default() -> Self {
        RouteTable {
            exact: imbl::HashMap::new(),
            wildcard: Vec::new(),
            any: PathList::default(),
            len: 0,
        }
    }
}

impl<T: Clone> RouteTable<T> {
    /// An empty table.
    pub fn new() -> RouteTable<T> {
        RouteTable::default()
    }

    /// Adds `route`; the same canonical route twice is a conflict, and leaves the table as it
    /// was.
    pub fn insert(&mut self, route: Route, value: T) -> Result<(), RouteConflict> {
        match &route.host {
            HostPattern::Any => self.any.insert(route, value)?,
            HostPattern::Exact(name) => {
                let name = name.clone();
                self.exact.entry(name).or_default().insert(route, value)?;
            }
            HostPattern::Wildcard(suffix) => {
                let at = match self.wildcard.iter().position(|(s, _)| s == suffix) {
                    Some(at) => at,
                    None => {
                        // Longest suffix first, so the most specific wildcard wins.
                        let at = self
                            .wildcard
                            .iter()
                            .position(|(s, _)| s.len() < suffix.len())
                            .unwrap_or(self.wildcard.len());
                        self.wildcard
                            .insert(at, (suffix.clone(), PathList::default()));
                        at
                    }
                };
                let inserted = self.wildcard[at].1.insert(route, value);
                if self.wildcard[at].1.entries.is_empty() {
                    self.wildcard.remove(at);
                }
                inserted?;
            }
        }
        self.len += 1;
        Ok(())
    }

    /// Removes `route` (exactly as inserted, in canonical form) and returns its value.
    pub fn remove(&mut self, route: &Route) -> Option<T> {
        let removed = match &route.host {
            HostPattern::Any => self.any.remove(&route.path),
            HostPattern::Exact(name) => {
                let list = self.exact.get_mut(name)?;
                let removed = list.remove(&route.path);
                if list.entries.is_empty() {
                    self.exact.remove(name);
                }
                removed
            }
            HostPattern::Wildcard(suffix) => {
                let at = self.wildcard.iter().position(|(s, _)| s == suffix)?;
                let removed = self.wildcard[at].1.remove(&route.path);
                if self.wildcard[at].1.entries.is_empty() {
                    self.wildcard.remove(at);
                }
                removed
            }
        };
        if removed.is_some() {
            self.len -= 1;
        }
        removed
    }

    /// The value of the best route for a request's `host` (straight from the `Host` header or
    /// URI authority: any case, port and all; `None` matches only host-less routes) and `path`
    /// (without the query). Allocation-free.
    pub fn lookup(&self, host: Option<&str>, path: &str) -> Option<&T> {
        let mut buffer = [0u8; MAX_HOST_LEN];
        let host = host.and_then(|h| lowercase_host(h, &mut buffer));
        if let Some(host) = host {
            if let Some(value) = self.exact.get(host).and_then(|list| list.lookup(path)) {
                return Some(value);
            }
            for (suffix, list) in &self.wildcard {
                if wildcard_matches(suffix, host)
                    && let Some(value) = list.lookup(path)
                {
                    return Some(value);
                }
            }
        }
        self.any.lookup(path)
    }

    /// How many routes the table holds.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether the table holds no route.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Every route and its value, in no particular order.
    pub fn iter(&self) -> impl Iterator<Item = (&Route, &T)> {
        self.exact
            .values()
            .chain(self.wildcard.iter().map(|(_, list)| list))
            .chain(std::iter::once(&self.any))
            .flat_map(|list| list.entries.iter().map(|(route, value)| (route, value)))
    }
}

/// Strips the port (and IPv6 brackets' port) from `host` and lowercases it into `buffer`.
/// `None` when the host is longer than any valid host name.
fn lowercase_host<'b>(host: &str, buffer: &'b mut [u8; MAX_HOST_LEN]) -> Option<&'b str> {
    let host = if let Some(end) = host.strip_prefix('[').and_then(|h| h.find(']')) {
        &host[..end + 2]
    } else {
        host.rsplit_once(':').map_or(host, |(name, _port)| name)
    };
    let host = host.strip_suffix('.').unwrap_or(host);
    if host.len() > MAX_HOST_LEN {
        return None;
    }
    let out = &mut buffer[..host.len()];
    out.copy_from_slice(host.as_bytes());
    out.make_ascii_lowercase();
    std::str::from_utf8(out).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table(routes: &[&str]) -> RouteTable<String> {
        let mut table = RouteTable::new();
        for route in routes {
            table
                .insert(Route::parse(route).unwrap(), (*route).to_owned())
                .unwrap();
        }
        table
    }

    fn hit<'t>(table: &'t RouteTable<String>, host: Option<&str>, path: &str) -> Option<&'t str> {
        table.lookup(host, path).map(String::as_str)
    }

    #[test]
    fn exact_host() {
        let t = table(&["api.example.com/v1"]);
        assert_eq!(
            hit(&t, Some("api.example.com"), "/v1"),
            Some("api.example.com/v1")
        );
        assert_eq!(hit(&t, Some("www.example.com"), "/v1"), None);
        assert_eq!(hit(&t, None, "/v1"), None);
    }

    #[test]
    fn wildcard_matches_one_or_more_labels_never_the_bare_suffix() {
        let t = table(&["*.example.com/"]);
        assert!(hit(&t, Some("a.example.com"), "/").is_some());
        assert!(hit(&t, Some("a.b.example.com"), "/x").is_some());
        assert_eq!(hit(&t, Some("example.com"), "/"), None);
        assert_eq!(hit(&t, Some("badexample.com"), "/"), None);
        assert_eq!(hit(&t, Some(".example.com"), "/"), None);
    }

    #[test]
    fn host_less_routes_match_any_host_and_no_host() {
        let t = table(&["/hello"]);
        assert!(hit(&t, Some("anything.test"), "/hello").is_some());
        assert!(hit(&t, None, "/hello").is_some());
    }

    #[test]
    fn paths_match_at_segment_boundaries() {
        let t = table(&["/api"]);
        for path in ["/api", "/api/", "/api/x", "/api/x/y"] {
            assert!(hit(&t, None, path).is_some(), "{path}");
        }
        for path in ["/apix", "/ap", "/", "/x/api"] {
            assert_eq!(hit(&t, None, path), None, "{path}");
        }
    }

    #[test]
    fn the_root_matches_every_path() {
        let t = table(&["/"]);
        for path in ["/", "/a", "/a/b/c"] {
            assert!(hit(&t, None, path).is_some(), "{path}");
        }
    }

    #[test]
    fn precedence_exact_then_wildcard_then_host_less() {
        let t = table(&[
            "/",
            "*.example.com/",
            "*.api.example.com/",
            "api.example.com/",
        ]);
        assert_eq!(
            hit(&t, Some("api.example.com"), "/x"),
            Some("api.example.com/")
        );
        assert_eq!(
            hit(&t, Some("v1.api.example.com"), "/x"),
            Some("*.api.example.com/")
        );
        assert_eq!(
            hit(&t, Some("www.example.com"), "/x"),
            Some("*.example.com/")
        );
        assert_eq!(hit(&t, Some("other.test"), "/x"), Some("/"));
    }

    #[test]
    fn longest_path_wins_within_a_host() {
        let t = table(&["/a", "/a/b", "/a/b/c", "/"]);
        assert_eq!(hit(&t, None, "/a/b/c/d"), Some("/a/b/c"));
        assert_eq!(hit(&t, None, "/a/b"), Some("/a/b"));
        assert_eq!(hit(&t, None, "/a/bc"), Some("/a"));
        assert_eq!(hit(&t, None, "/z"), Some("/"));
    }

    #[test]
    fn a_host_without_a_matching_path_falls_through() {
        let t = table(&["api.example.com/v1", "*.example.com/v2", "/v3"]);
        assert_eq!(
            hit(&t, Some("api.example.com"), "/v2"),
            Some("*.example.com/v2")
        );
        assert_eq!(hit(&t, Some("api.example.com"), "/v3"), Some("/v3"));
        assert_eq!(hit(&t, Some("api.example.com"), "/v4"), None);
    }

    #[test]
    fn hosts_are_case_insensitive_paths_are_not() {
        let t = table(&["API.Example.com/Path"]);
        assert!(hit(&t, Some("api.EXAMPLE.com"), "/Path").is_some());
        assert_eq!(hit(&t, Some("api.example.com"), "/path"), None);
        assert_eq!(
            Route::parse("API.Example.com/Path").unwrap().to_string(),
            "api.example.com/Path"
        );
    }

    #[test]
    fn a_port_in_the_host_is_ignored() {
        let t = table(&["example.com/", "*.example.com/w"]);
        assert!(hit(&t, Some("Example.COM:8080"), "/").is_some());
        assert!(hit(&t, Some("a.example.com:443"), "/w").is_some());
        assert!(hit(&t, Some("example.com."), "/").is_some(), "trailing dot");
    }

    #[test]
    fn ipv6_literals_keep_their_colons() {
        let t = table(&["/"]);
        assert!(hit(&t, Some("[::1]:8080"), "/").is_some());
        let mut buffer = [0u8; MAX_HOST_LEN];
        assert_eq!(lowercase_host("[::1]:8080", &mut buffer), Some("[::1]"));
        assert_eq!(lowercase_host("[::1]", &mut buffer), Some("[::1]"));
    }

    #[test]
    fn overlong_hosts_only_match_host_less_routes() {
        let t = table(&["/", "a.example/x"]);
        let long = format!("{}.example", "a".repeat(300));
        assert_eq!(hit(&t, Some(&long), "/x"), Some("/"));
    }

    #[test]
    fn the_same_route_twice_is_a_conflict() {
        let mut t = RouteTable::new();
        t.insert(Route::parse("/a").unwrap(), 1).unwrap();
        let conflict = t.insert(Route::parse("/a/").unwrap(), 2).unwrap_err();
        assert_eq!(conflict.to_string(), "route `/a` is already taken");
        t.insert(Route::parse("x.test/a").unwrap(), 3).unwrap();
        t.insert(Route::parse("*.x.test/a").unwrap(), 4).unwrap();
        assert!(t.insert(Route::parse("X.TEST/a").unwrap(), 5).is_err());
        assert!(t.insert(Route::parse("*.x.test/a/").unwrap(), 6).is_err());
        assert_eq!(t.len(), 3);
        assert_eq!(t.iter().count(), 3);
        assert_eq!(
            t.lookup(Some("x.test"), "/a"),
            Some(&3),
            "conflicts change nothing"
        );
    }

    #[test]
    fn removing_a_route_uncovers_the_next_best_and_leaves_clones_alone() {
        let mut before = table(&["x.test/a", "x.test/a/b", "*.test/a/b", "/a"]);
        let mut after = before.clone();
        assert_eq!(
            after
                .remove(&Route::parse("x.test/a/b").unwrap())
                .as_deref(),
            Some("x.test/a/b")
        );
        assert_eq!(after.remove(&Route::parse("x.test/a/b").unwrap()), None);
        assert_eq!(hit(&after, Some("x.test"), "/a/b"), Some("x.test/a"));
        assert_eq!(hit(&before, Some("x.test"), "/a/b"), Some("x.test/a/b"));
        after.remove(&Route::parse("x.test/a").unwrap());
        assert_eq!(hit(&after, Some("x.test"), "/a/b"), Some("*.test/a/b"));
        after.remove(&Route::parse("*.test/a/b").unwrap());
        assert_eq!(hit(&after, Some("x.test"), "/a/b"), Some("/a"));
        assert_eq!((after.len(), before.len()), (1, 4));
        before
            .insert(Route::parse("y.test/").unwrap(), "y".into())
            .unwrap();
        assert_eq!(hit(&after, Some("y.test"), "/a"), Some("/a"));
        assert_eq!(hit(&before, Some("y.test"), "/a"), Some("y"));
    }

    #[test]
    fn syntax_errors_quote_the_bad_value() {
        let cases = [
            ("", "empty"),
            ("example.com", "has no path"),
            ("exa mple.com/x", "not valid"),
            ("a.*.com/x", "`*` may only"),
            ("*/x", "`*` may only"),
            ("a..b/x", "empty label"),
            ("ex_ample.com/x", "only letters"),
            ("/a?b", "query"),
            ("/a#b", "query or fragment"),
            ("/a b", "white space"),
            ("/a//b", "empty segment"),
            ("/a/../b", "`..`"),
            ("/./b", "`.`"),
        ];
        for (route, expected) in cases {
            let error = Route::parse(route).unwrap_err().to_string();
            assert!(error.contains(expected), "{route:?}: {error}");
        }
        let long = format!("/{}", "a".repeat(MAX_ROUTE_LEN));
        assert!(matches!(Route::parse(&long), Err(RouteError::TooLong(_))));
        let label = format!("{}.com/x", "a".repeat(64));
        assert!(Route::parse(&label).unwrap_err().to_string().contains("63"));
    }

    #[test]
    fn display_round_trips() {
        for route in ["/", "/a", "a.test/b/c", "*.a.test/", "*.a.test/x"] {
            let parsed: Route = route.parse().unwrap();
            assert_eq!(parsed.to_string(), route);
            assert_eq!(Route::parse(&parsed.to_string()).unwrap(), parsed);
        }
        assert_eq!(Route::parse("/a/").unwrap().to_string(), "/a");
    }

    #[test]
    fn covers() {
        let p = |s| HostPattern::parse(s).unwrap();
        assert!(p("a.test").covers(&p("a.test")));
        assert!(!p("a.test").covers(&p("b.test")));
        assert!(!p("a.test").covers(&p("*.a.test")));
        assert!(p("*.a.test").covers(&p("x.a.test")));
        assert!(p("*.a.test").covers(&p("y.x.a.test")));
        assert!(!p("*.a.test").covers(&p("a.test")));
        assert!(p("*.a.test").covers(&p("*.a.test")));
        assert!(p("*.a.test").covers(&p("*.x.a.test")));
        assert!(!p("*.x.a.test").covers(&p("*.a.test")));
        assert!(HostPattern::Any.covers(&p("a.test")));
        assert!(!p("*.a.test").covers(&HostPattern::Any));
        assert!(p("*.a.test").matches_host("B.A.TEST"));
    }
}
