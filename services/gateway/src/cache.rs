//! Shared response cache for GET requests, following the upstream's `Cache-Control`.
//!
//! Deliberately conservative (RFC 9111 shared-cache rules, no heuristics): a response is stored
//! only with an explicit positive `s-maxage`/`max-age`, never with `no-store`, `no-cache`,
//! `private`, `Set-Cookie` or `Vary`, and responses to requests carrying `Authorization` only when
//! the upstream marks them `public` or gives `s-maxage`.

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::{HeaderMap, HeaderValue, StatusCode, header};
use moka::Expiry;

use crate::config::CacheConfig;

/// Larger bodies are streamed through instead of being buffered for the cache.
pub const MAX_CACHEABLE_BODY: u64 = 1024 * 1024;
/// Upper bound on how long an entry is kept, whatever the upstream says (absurd `max-age`
/// values must not turn into instants the clock cannot represent).
pub const MAX_TTL_SECS: u64 = 24 * 60 * 60;

#[derive(Debug)]
pub struct CachedResponse {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Bytes,
    pub stored_at: Instant,
    /// Age the upstream reported when the response was stored.
    pub initial_age: Duration,
    pub ttl: Duration,
}

impl CachedResponse {
    /// Current `Age` in seconds.
    pub fn age_secs(&self) -> u64 {
        (self.initial_age + self.stored_at.elapsed()).as_secs()
    }
}

struct PerEntryTtl;

impl Expiry<String, Arc<CachedResponse>> for PerEntryTtl {
    fn expire_after_create(
        &self,
        _key: &String,
        value: &Arc<CachedResponse>,
        _created_at: Instant,
    ) -> Option<Duration> {
        Some(value.ttl)
    }
}

pub struct ResponseCache {
    entries: moka::sync::Cache<String, Arc<CachedResponse>>,
}

impl ResponseCache {
    pub fn from_config(config: &CacheConfig) -> Option<Self> {
        config.enabled.then(|| Self {
            entries: moka::sync::Cache::builder()
                .max_capacity(config.max_entries)
                .expire_after(PerEntryTtl)
                .build(),
        })
    }

    /// Cache key: route, then path and query (the route fixes the upstream).
    pub fn key(route: &str, path_and_query: &str) -> String {
        let mut key = String::with_capacity(route.len() + 1 + path_and_query.len());
        key.push_str(route);
        key.push('\n');
        key.push_str(path_and_query);
        key
    }

    pub fn get(&self, key: &str) -> Option<Arc<CachedResponse>> {
        self.entries.get(key)
    }

    pub fn insert(&self, key: String, response: CachedResponse) {
        self.entries.insert(key, Arc::new(response));
    }

    pub fn entry_count(&self) -> u64 {
        self.entries.run_pending_tasks();
        self.entries.entry_count()
    }
}

/// Make a response `private` for the caches after the gateway: `public`, `s-maxage` and
/// `proxy-revalidate` go, the directives for the client's own cache (`max-age`, `no-store`, ...)
/// stay.
pub fn mark_private(headers: &mut HeaderMap) {
    // Most responses carry no Cache-Control: no allocation on that path.
    if !headers.contains_key(header::CACHE_CONTROL) {
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("private"));
        return;
    }
    let kept: Vec<String> = headers
        .get_all(header::CACHE_CONTROL)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(str::trim)
        .filter(|d| {
            let name = d.split('=').next().unwrap_or_default().trim();
            !d.is_empty()
                && !["public", "private", "s-maxage", "proxy-revalidate"]
                    .iter()
                    .any(|n| name.eq_ignore_ascii_case(n))
        })
        .map(str::to_string)
        .collect();
    let value = std::iter::once("private".to_string())
        .chain(kept)
        .collect::<Vec<_>>()
        .join(", ");
    let value = HeaderValue::from_str(&value).unwrap_or(HeaderValue::from_static("private"));
    headers.insert(header::CACHE_CONTROL, value);
}

/// Whether the request allows answering from (or storing into) the cache.
pub fn request_allows_cache(headers: &HeaderMap) -> bool {
    !headers
        .get_all(header::CACHE_CONTROL)
        .iter()
        .any(|value| directives(value).any(|(name, _)| name == "no-cache" || name == "no-store"))
        && !headers
            .get(header::PRAGMA)
            .is_some_and(|value| value.as_bytes().eq_ignore_ascii_case(b"no-cache"))
}

/// How long a response may be served from the shared cache, or `None` if it must not be stored.
pub fn response_ttl(
    status: StatusCode,
    headers: &HeaderMap,
    request_has_authorization: bool,
) -> Option<Duration> {
    if !matches!(
        status.as_u16(),
        200 | 203 | 204 | 300 | 301 | 308 | 404 | 410
    ) {
        return None;
    }
    if headers.contains_key(header::SET_COOKIE) || headers.contains_key(header::VARY) {
        return None;
    }
    let mut max_age = None;
    let mut shared_max_age = None;
    let mut public = false;
    for value in headers.get_all(header::CACHE_CONTROL) {
        for (name, argument) in directives(value) {
            match name.as_str() {
                "no-store" | "no-cache" | "private" => return None,
                "public" => public = true,
                "max-age" => max_age = argument.and_then(|a| a.parse::<u64>().ok()),
                "s-maxage" => shared_max_age = argument.and_then(|a| a.parse::<u64>().ok()),
                _ => {}
            }
        }
    }
    if request_has_authorization && !public && shared_max_age.is_none() {
        return None;
    }
    let lifetime = shared_max_age.or(max_age)?;
    let age = headers
        .get(header::AGE)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.trim().parse::<u64>().ok())
        .unwrap_or(0);
    let remaining = lifetime.checked_sub(age)?;
    (remaining > 0).then(|| Duration::from_secs(remaining.min(MAX_TTL_SECS)))
}

/// Directives of one `Cache-Control` value, names lowercased, quotes stripped from arguments.
fn directives(value: &HeaderValue) -> impl Iterator<Item = (String, Option<String>)> + '_ {
    value
        .to_str()
        .unwrap_or("")
        .split(',')
        .filter_map(|directive| {
            let directive = directive.trim();
            if directive.is_empty() {
                return None;
            }
            Some(match directive.split_once('=') {
                Some((name, argument)) => (
                    name.trim().to_ascii_lowercase(),
                    Some(argument.trim().trim_matches('"').to_owned()),
                ),
                None => (directive.to_ascii_lowercase(), None),
            })
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.append(*name, HeaderValue::from_static(value));
        }
        map
    }

    #[test]
    fn a_private_response_keeps_only_what_the_client_may_cache() {
        let mut h = headers(&[("cache-control", "public, max-age=60, s-maxage=300")]);
        mark_private(&mut h);
        assert_eq!(h[header::CACHE_CONTROL], "private, max-age=60");
        let mut none = headers(&[]);
        mark_private(&mut none);
        assert_eq!(none[header::CACHE_CONTROL], "private");
        let mut stored = headers(&[("cache-control", "no-store"), ("cache-control", "Private")]);
        mark_private(&mut stored);
        assert_eq!(stored[header::CACHE_CONTROL], "private, no-store");
        // Nothing shared may keep it any more, the gateway's own cache included.
        assert_eq!(response_ttl(StatusCode::OK, &h, true), None);
    }

    #[test]
    fn ttl_follows_cache_control() {
        let ok = StatusCode::OK;
        assert_eq!(
            response_ttl(ok, &headers(&[("cache-control", "max-age=60")]), false),
            Some(Duration::from_secs(60))
        );
        assert_eq!(
            response_ttl(
                ok,
                &headers(&[("cache-control", "max-age=60, s-maxage=10")]),
                false
            ),
            Some(Duration::from_secs(10))
        );
        assert_eq!(
            response_ttl(
                ok,
                &headers(&[("cache-control", "max-age=60"), ("age", "50")]),
                false
            ),
            Some(Duration::from_secs(10))
        );
        for denied in [
            "no-store",
            "private, max-age=60",
            "no-cache, max-age=5",
            "max-age=0",
        ] {
            assert_eq!(
                response_ttl(ok, &headers(&[("cache-control", denied)]), false),
                None,
                "{denied}"
            );
        }
        assert_eq!(response_ttl(ok, &headers(&[]), false), None);
        assert_eq!(
            response_ttl(
                ok,
                &headers(&[("cache-control", "max-age=18446744073709551615")]),
                false
            ),
            Some(Duration::from_secs(MAX_TTL_SECS))
        );
        assert_eq!(
            response_ttl(
                ok,
                &headers(&[("cache-control", "max-age=60"), ("set-cookie", "a=b")]),
                false
            ),
            None
        );
        assert_eq!(
            response_ttl(
                StatusCode::INTERNAL_SERVER_ERROR,
                &headers(&[("cache-control", "max-age=60")]),
                false
            ),
            None
        );
    }

    #[test]
    fn authorized_requests_need_public_or_s_maxage() {
        let ok = StatusCode::OK;
        assert_eq!(
            response_ttl(ok, &headers(&[("cache-control", "max-age=60")]), true),
            None
        );
        assert!(
            response_ttl(
                ok,
                &headers(&[("cache-control", "public, max-age=60")]),
                true
            )
            .is_some()
        );
    }

    #[test]
    fn request_no_cache_bypasses() {
        assert!(request_allows_cache(&headers(&[])));
        assert!(!request_allows_cache(&headers(&[(
            "cache-control",
            "no-cache"
        )])));
        assert!(!request_allows_cache(&headers(&[("pragma", "no-cache")])));
    }
}
