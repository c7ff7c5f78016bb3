//! The bodies of the `cargo fuzz` targets in `fuzz/` (`make fuzz` runs each for a bounded
//! time), kept here so that `make test` replays their seed corpora through the same code
//! (`gateway/tests/fuzz_corpus.rs`). Each takes arbitrary bytes and panics only on a bug: a
//! crash, or a property that must hold for every input.

use http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode};

use crate::config::{Config, Limits, LimitsSpec, PoolConfig};
use crate::definition::TenantDefinition;
use crate::routes::{Route, RouteTable};

/// The configuration parser: any text parses or is refused with an error, never a panic.
pub fn config(data: &[u8]) {
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = Config::parse(text, None);
    }
}

/// Path normalisation and routing: a normalised path is normal (normalising it again changes
/// nothing, and no `//`, `.` or `..` segment is left), and routing it never panics.
pub fn path(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let (routes, path) = text.split_once('\n').unwrap_or(("/a\nb.test/c", text));
    if let Ok(normal) = crate::path::normalize(path) {
        let again = crate::path::normalize(&normal).expect("a normal path stays valid");
        assert_eq!(again, normal, "normalising is idempotent");
        if let Some(rest) = normal.strip_prefix('/') {
            let segments: Vec<&str> = rest.split('/').collect();
            for (i, segment) in segments.iter().enumerate() {
                let last = i + 1 == segments.len();
                assert!(
                    (last || !segment.is_empty()) && *segment != "." && *segment != "..",
                    "{path:?} normalised to {normal:?}"
                );
            }
        }
        let mut table = RouteTable::new();
        for (i, line) in routes.split(['\n', ' ']).enumerate() {
            if let Ok(route) = Route::parse(line) {
                let _ = table.insert(route, i);
            }
        }
        let _ = table.lookup(Some("b.test"), &normal);
        let _ = table.lookup(None, &normal);
    }
}

/// The admin API's JSON bodies: a tenant definition parses and is checked, or is refused.
pub fn admin_bodies(data: &[u8]) {
    #[derive(serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Tenant {
        #[serde(default)]
        hosts: Vec<String>,
        #[serde(default)]
        limits: LimitsSpec,
        #[serde(default)]
        allow: Vec<String>,
    }
    if let Ok(tenant) = serde_json::from_slice::<Tenant>(data) {
        let _ = TenantDefinition::check(
            "fuzz",
            &tenant.hosts,
            &tenant.limits,
            &tenant.allow,
            (&Limits::default(), &PoolConfig::default()),
        );
    }
    let _ = serde_json::from_slice::<std::collections::BTreeMap<String, String>>(data)
        .map(|variables| crate::definition::check_config_variables(&variables));
}

/// `Cache-Control`, `Vary` and the rest of the cache policy: any response headers give a
/// freshness or none, never a panic.
pub fn cache_control(data: &[u8]) {
    let mut headers = HeaderMap::new();
    for line in data.split(|b| *b == b'\n') {
        let Some(colon) = line.iter().position(|b| *b == b':') else {
            continue;
        };
        let (Ok(name), Ok(value)) = (
            HeaderName::from_bytes(&line[..colon]),
            HeaderValue::from_bytes(&line[colon + 1..]),
        ) else {
            continue;
        };
        headers.append(name, value);
    }
    for status in [
        StatusCode::OK,
        StatusCode::NOT_FOUND,
        StatusCode::MOVED_PERMANENTLY,
    ] {
        let _ = crate::cache::policy::freshness(status, &headers, false);
        let _ = crate::cache::policy::freshness(status, &headers, true);
    }
    let _ = crate::cache::policy::vary_names(&headers);
    let _ = crate::cache::policy::is_cacheable_request(&Method::GET, &headers);
}
