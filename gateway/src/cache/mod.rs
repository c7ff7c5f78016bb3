//! The response cache: responses of functions and origins kept in memory, one cache per tenant
//! (so a tenant never receives another's entry, even for the same host and path), each bounded
//! by a size quota with least-recently-used eviction (Pingora's sharded `pingora-lru`: recency
//! per shard, so lookups and fills on different keys rarely share a lock). Keyed by host (port dropped, any case),
//! path and query, and by the values of the request headers the response varies on.
//!
//! [`policy`] decides what may be stored and for how long; the proxy looks up before routing a
//! request to its function or origin (a hit never runs the guest) and fills the cache as a
//! cacheable response streams out.

pub mod policy;

use std::hash::BuildHasher;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use dashmap::DashMap;
use http::{HeaderMap, HeaderName, HeaderValue, StatusCode};

/// Shards of a tenant's LRU: lookups and fills on different keys rarely share a lock.
const SHARDS: usize = 8;

/// Variants (by `Vary`) kept for one URL; the oldest goes when another comes.
const MAX_VARIANTS: usize = 16;

/// Bytes charged per entry besides its body and headers.
const ENTRY_OVERHEAD: usize = 256;

/// How big caches are, gateway-wide.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CacheSettings {
    /// Each tenant's quota, in bytes; 0 turns caching off. Default 64 MiB.
    pub tenant_size: usize,
    /// The largest response body kept. Default 8 MiB.
    pub max_object: usize,
}

impl Default for CacheSettings {
    fn default() -> Self {
        CacheSettings {
            tenant_size: 64 << 20,
            max_object: 8 << 20,
        }
    }
}

/// What a request is looked up by.
#[derive(Debug, Clone, Copy)]
pub struct RequestKey<'a> {
    /// The `Host` (or authority); its port is ignored.
    pub host: &'a str,
    /// The path.
    pub path: &'a str,
    /// The query, if any.
    pub query: Option<&'a str>,
    /// The request's headers, for `Vary`.
    pub headers: &'a HeaderMap,
}

impl RequestKey<'_> {
    fn host(&self) -> String {
        let host = match self.host.rsplit_once(':') {
            Some((host, port)) if port.bytes().all(|b| b.is_ascii_digit()) => host,
            _ => self.host,
        };
        host.to_ascii_lowercase()
    }
}

/// A stored response.
#[derive(Debug)]
pub struct CachedResponse {
    /// Its status.
    pub status: StatusCode,
    /// Its headers, as the function or origin sent them (hop-by-hop ones dropped).
    pub headers: HeaderMap,
    /// Its whole body.
    pub body: Bytes,
    stored: Instant,
    ttl: Duration,
    host: String,
    path: String,
    query: Option<String>,
    /// The request headers it varies on, with the values it was stored for.
    vary: Vec<(HeaderName, Option<HeaderValue>)>,
    id: u64,
    weight: usize,
}

impl CachedResponse {
    /// How long ago it was stored.
    pub fn age(&self) -> Duration {
        self.stored.elapsed()
    }

    fn is_fresh(&self) -> bool {
        self.stored.elapsed() < self.ttl
    }

    /// Its `ETag`, for conditional requests.
    pub fn etag(&self) -> Option<&HeaderValue> {
        self.headers.get(http::header::ETAG)
    }

    fn answers(&self, key: &RequestKey<'_>, host: &str) -> bool {
        self.host == host
            && self.path == key.path
            && self.query.as_deref() == key.query
            && self
                .vary
                .iter()
                .all(|(name, value)| key.headers.get(name) == value.as_ref())
    }
}

/// One tenant's cache.
pub struct TenantCache {
    settings: CacheSettings,
    /// Variants by the hash of host, path and query.
    entries: DashMap<u64, Vec<Arc<CachedResponse>>>,
    /// Recency and weights, by entry id; the data is the entry's primary hash.
    lru: pingora_lru::Lru<u64, SHARDS>,
    hasher: std::collections::hash_map::RandomState,
    next_id: AtomicU64,
}

impl std::fmt::Debug for TenantCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TenantCache")
            .field("entries", &self.lru.len())
            .field("bytes", &self.lru.weight())
            .finish_non_exhaustive()
    }
}

impl TenantCache {
    /// An empty cache bounded by `settings.tenant_size`.
    pub fn new(settings: CacheSettings) -> TenantCache {
        TenantCache {
            settings,
            entries: DashMap::new(),
            lru: pingora_lru::Lru::with_capacity(settings.tenant_size, 16),
            hasher: Default::default(),
            next_id: AtomicU64::new(1),
        }
    }

    fn primary(&self, host: &str, key: &RequestKey<'_>) -> u64 {
        self.hasher.hash_one((host, key.path, key.query))
    }

    /// The fresh response stored for `key`, if any. A stale one is dropped.
    pub fn lookup(&self, key: &RequestKey<'_>) -> Option<Arc<CachedResponse>> {
        let host = key.host();
        let primary = self.primary(&host, key);
        let found = self
            .entries
            .get(&primary)?
            .iter()
            .find(|entry| entry.answers(key, &host))
            .cloned()?;
        if found.is_fresh() {
            self.lru.promote(found.id);
            return Some(found);
        }
        self.remove(primary, found.id);
        None
    }

    /// Whether a body of `len` bytes may be stored at all.
    pub fn accepts(&self, len: usize) -> bool {
        len <= self.settings.max_object && len + ENTRY_OVERHEAD <= self.settings.tenant_size
    }

    /// Stores a response for `key`, fresh for `ttl`, replacing the variant it replaces, and
    /// evicts the least recently used entries past the quota.
    pub fn store(
        &self,
        key: &RequestKey<'_>,
        status: StatusCode,
        headers: HeaderMap,
        body: Bytes,
        ttl: Duration,
    ) {
        if !self.accepts(body.len()) {
            return;
        }
        let host = key.host();
        let primary = self.primary(&host, key);
        let vary = policy::vary_names(&headers)
            .into_iter()
            .map(|name| {
                let value = key.headers.get(&name).cloned();
                (name, value)
            })
            .collect();
        let header_bytes: usize = headers
            .iter()
            .map(|(n, v)| n.as_str().len() + v.len())
            .sum();
        let weight = body.len() + header_bytes + ENTRY_OVERHEAD;
        let entry = Arc::new(CachedResponse {
            status,
            headers,
            body,
            stored: Instant::now(),
            ttl,
            host: host.clone(),
            path: key.path.to_owned(),
            query: key.query.map(str::to_owned),
            vary,
            id: self.next_id.fetch_add(1, Ordering::Relaxed),
            weight,
        });
        let replaced = {
            let mut variants = self.entries.entry(primary).or_default();
            let mut replaced = Vec::new();
            variants.retain(|old| {
                let same = old.vary == entry.vary;
                if same {
                    replaced.push(old.id);
                }
                !same
            });
            if variants.len() >= MAX_VARIANTS {
                replaced.push(variants.remove(0).id);
            }
            variants.push(entry.clone());
            replaced
        };
        for id in replaced {
            self.lru.remove(id);
        }
        self.lru.admit(entry.id, primary, entry.weight);
        for (evicted_primary, _) in self.lru.evict_to_limit() {
            self.drop_evicted(evicted_primary);
        }
    }

    /// Drops the entries of `primary` that the LRU no longer tracks.
    fn drop_evicted(&self, primary: u64) {
        if let Some(mut variants) = self.entries.get_mut(&primary) {
            variants.retain(|entry| self.lru.peek(entry.id));
        }
        self.entries
            .remove_if(&primary, |_, variants| variants.is_empty());
    }

    fn remove(&self, primary: u64, id: u64) {
        self.lru.remove(id);
        if let Some(mut variants) = self.entries.get_mut(&primary) {
            variants.retain(|entry| entry.id != id);
        }
        self.entries
            .remove_if(&primary, |_, variants| variants.is_empty());
    }

    /// Drops every entry whose path is under `prefix` (at a segment boundary: `/static` covers
    /// `/static` and `/static/a`, not `/staticx`), or every entry when `prefix` is `None`.
    /// Returns how many went.
    pub fn purge(&self, prefix: Option<&str>) -> usize {
        let under = |path: &str| match prefix {
            None => true,
            Some(prefix) => match path.strip_prefix(prefix) {
                Some(rest) => prefix.ends_with('/') || rest.is_empty() || rest.starts_with('/'),
                None => false,
            },
        };
        let mut purged = 0;
        self.entries.retain(|_, variants| {
            variants.retain(|entry| {
                let keep = !under(&entry.path);
                if !keep {
                    self.lru.remove(entry.id);
                    purged += 1;
                }
                keep
            });
            !variants.is_empty()
        });
        purged
    }

    /// How many responses are stored.
    pub fn len(&self) -> usize {
        self.lru.len()
    }

    /// Whether nothing is stored.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The bytes charged against the quota.
    pub fn weight(&self) -> usize {
        self.lru.weight()
    }
}

/// How a request may use the cache.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum CacheUse {
    /// Not at all (a `POST`, a `Range` request...).
    #[default]
    Off,
    /// Answered from it, never filling it (`HEAD`: its response has no body to keep).
    Lookup,
    /// Answered from it, and its response stored when cacheable (`GET`).
    LookupAndFill,
}

impl CacheUse {
    /// How a request with this method and these headers may use the cache.
    pub fn of(method: &http::Method, headers: &HeaderMap) -> CacheUse {
        if !policy::is_cacheable_request(method, headers) {
            CacheUse::Off
        } else if method == http::Method::GET {
            CacheUse::LookupAndFill
        } else {
            CacheUse::Lookup
        }
    }
}

/// A response being recorded as it streams out, stored when it ends whole and not too big.
#[derive(Debug)]
pub struct Fill {
    host: String,
    path: String,
    query: Option<String>,
    request_headers: HeaderMap,
    status: StatusCode,
    headers: HeaderMap,
    ttl: Duration,
    body: bytes::BytesMut,
    limit: usize,
    overflowed: bool,
}

impl Fill {
    /// Starts recording the response (`status`, `headers`, fresh for `ttl`) to `key`.
    pub fn new(
        key: &RequestKey<'_>,
        status: StatusCode,
        headers: HeaderMap,
        ttl: Duration,
        limit: usize,
    ) -> Fill {
        Fill {
            host: key.host.to_owned(),
            path: key.path.to_owned(),
            query: key.query.map(str::to_owned),
            request_headers: key.headers.clone(),
            status,
            headers,
            ttl,
            body: bytes::BytesMut::new(),
            limit,
            overflowed: false,
        }
    }

    /// Records a piece of the body; past the size limit the recording is abandoned.
    pub fn push(&mut self, data: &[u8]) {
        if self.overflowed {
            return;
        }
        if self.body.len() + data.len() > self.limit {
            self.overflowed = true;
            self.body = bytes::BytesMut::new();
            return;
        }
        self.body.extend_from_slice(data);
    }

    /// Stores the recorded response in `cache`, unless it grew past the limit.
    pub fn finish(self, cache: &TenantCache) {
        if self.overflowed {
            return;
        }
        let key = RequestKey {
            host: &self.host,
            path: &self.path,
            query: self.query.as_deref(),
            headers: &self.request_headers,
        };
        cache.store(
            &key,
            self.status,
            self.headers,
            self.body.freeze(),
            self.ttl,
        );
    }
}

impl TenantCache {
    /// The largest body worth recording.
    pub fn max_object(&self) -> usize {
        self.settings.max_object
    }
}

/// Whether `If-None-Match` names `etag` (or is `*`), compared weakly.
pub fn etag_matches(if_none_match: &HeaderValue, etag: &HeaderValue) -> bool {
    let weak = |tag: &str| tag.trim().trim_start_matches("W/").to_owned();
    let Ok(etag) = etag.to_str() else {
        return false;
    };
    let etag = weak(etag);
    if_none_match
        .to_str()
        .map(|list| {
            list.split(',')
                .any(|candidate| candidate.trim() == "*" || weak(candidate) == etag)
        })
        .unwrap_or(false)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key<'a>(path: &'a str, headers: &'a HeaderMap) -> RequestKey<'a> {
        RequestKey {
            host: "Shop.Test:8080",
            path,
            query: None,
            headers,
        }
    }

    fn cache(size: usize) -> TenantCache {
        TenantCache::new(CacheSettings {
            tenant_size: size,
            max_object: size,
        })
    }

    const HOUR: Duration = Duration::from_secs(3600);

    #[test]
    fn stores_and_finds_by_host_path_and_query() {
        let cache = cache(1 << 20);
        let none = HeaderMap::new();
        cache.store(
            &key("/a", &none),
            StatusCode::OK,
            HeaderMap::new(),
            "A".into(),
            HOUR,
        );
        let hit = cache.lookup(&RequestKey {
            host: "shop.test",
            ..key("/a", &none)
        });
        assert_eq!(hit.unwrap().body, "A");
        assert!(cache.lookup(&key("/b", &none)).is_none());
        assert!(
            cache
                .lookup(&RequestKey {
                    query: Some("x=1"),
                    ..key("/a", &none)
                })
                .is_none()
        );
        assert!(
            cache
                .lookup(&RequestKey {
                    host: "other.test",
                    ..key("/a", &none)
                })
                .is_none()
        );
    }

    #[test]
    fn stale_entries_are_misses_and_dropped() {
        let cache = cache(1 << 20);
        let none = HeaderMap::new();
        cache.store(
            &key("/a", &none),
            StatusCode::OK,
            HeaderMap::new(),
            "A".into(),
            Duration::from_millis(1),
        );
        std::thread::sleep(Duration::from_millis(5));
        assert!(cache.lookup(&key("/a", &none)).is_none());
        assert!(cache.is_empty());
    }

    #[test]
    fn variants_follow_vary() {
        let cache = cache(1 << 20);
        let mut vary = HeaderMap::new();
        vary.insert(http::header::VARY, "accept-language".parse().unwrap());
        let mut en = HeaderMap::new();
        en.insert("accept-language", "en".parse().unwrap());
        let mut fr = HeaderMap::new();
        fr.insert("accept-language", "fr".parse().unwrap());
        cache.store(
            &key("/a", &en),
            StatusCode::OK,
            vary.clone(),
            "hello".into(),
            HOUR,
        );
        cache.store(
            &key("/a", &fr),
            StatusCode::OK,
            vary,
            "bonjour".into(),
            HOUR,
        );
        assert_eq!(cache.lookup(&key("/a", &en)).unwrap().body, "hello");
        assert_eq!(cache.lookup(&key("/a", &fr)).unwrap().body, "bonjour");
        assert!(cache.lookup(&key("/a", &HeaderMap::new())).is_none());
        assert_eq!(cache.len(), 2);
    }

    #[test]
    fn the_quota_evicts_to_stay_within_it() {
        let quota = 4 * (1000 + ENTRY_OVERHEAD);
        let cache = cache(quota);
        let none = HeaderMap::new();
        let body = Bytes::from(vec![b'x'; 1000]);
        let paths: Vec<String> = (0..12).map(|i| format!("/{i}")).collect();
        for path in &paths {
            cache.store(
                &key(path, &none),
                StatusCode::OK,
                HeaderMap::new(),
                body.clone(),
                HOUR,
            );
            assert!(cache.weight() <= quota);
        }
        // The LRU is sharded (Pingora's `pingora-lru`): recency is kept per shard, and
        // eviction takes the oldest entry of a busy shard.
        assert_eq!(cache.len(), 4);
        let found = paths
            .iter()
            .filter(|p| cache.lookup(&key(p, &none)).is_some())
            .count();
        assert_eq!(found, 4);
        // Too big for the quota: never stored.
        assert!(!cache.accepts(8000));
    }

    #[test]
    fn etags_match_weakly_and_in_lists() {
        let etag = HeaderValue::from_static("\"v1\"");
        for yes in ["\"v1\"", "W/\"v1\"", "\"v0\", \"v1\"", "*"] {
            assert!(
                etag_matches(&HeaderValue::from_str(yes).unwrap(), &etag),
                "{yes}"
            );
        }
        assert!(!etag_matches(&HeaderValue::from_static("\"v2\""), &etag));
    }

    #[test]
    fn fills_past_their_limit_are_dropped() {
        let cache = cache(1 << 20);
        let none = HeaderMap::new();
        let fill = |path: &str, pieces: &[&[u8]]| {
            let mut fill = Fill::new(&key(path, &none), StatusCode::OK, HeaderMap::new(), HOUR, 4);
            for piece in pieces {
                fill.push(piece);
            }
            fill.finish(&cache);
            cache.lookup(&key(path, &none))
        };
        assert!(fill("/big", &[b"abc", b"de"]).is_none());
        assert_eq!(fill("/ok", &[b"ab", b"cd"]).unwrap().body, "abcd");
    }

    #[test]
    fn purge_by_prefix_at_segment_boundaries() {
        let cache = cache(1 << 20);
        let none = HeaderMap::new();
        for path in ["/static/a.css", "/static", "/staticx", "/other"] {
            cache.store(
                &key(path, &none),
                StatusCode::OK,
                HeaderMap::new(),
                "x".into(),
                HOUR,
            );
        }
        assert_eq!(cache.purge(Some("/static")), 2);
        assert!(cache.lookup(&key("/staticx", &none)).is_some());
        assert!(cache.lookup(&key("/static/a.css", &none)).is_none());
        assert_eq!(cache.purge(None), 2);
        assert!(cache.is_empty());
    }
}
