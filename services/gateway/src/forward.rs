//! What a request carries upstream and what a response carries back: the forwarding policy both
//! upstream transports (the plain-http client in [`crate::upstream`] and hyper-util's for https)
//! apply, so that a header is never dropped or forged on one path and not the other.
//!
//! Going upstream, the client's headers pass in order except:
//! - hop-by-hop headers and those `Connection` names: they describe the client's connection only
//!   (RFC 9110 §7.6.1);
//! - `Transfer-Encoding`: the body is re-framed by whichever transport sends it;
//! - `X-Request-Id`: the gateway's (possibly the client's, validated) is sent instead;
//! - `x-panthera-*`: only the gateway speaks for the caller's identity (see
//!   [`crate::auth::identity`]); a client could otherwise forge them;
//! - `Host`: the upstream gets its own authority, and the client's moves to X-Forwarded-Host;
//! - `X-Forwarded-For`: the client's list is extended with the peer's address.
//!
//! Then the gateway's headers follow: Host, X-Forwarded-Host (unless the client sent one),
//! X-Forwarded-For, X-Forwarded-Proto (unless the client sent one), X-Request-Id and the identity
//! headers of the verified token.

use bytes::{BufMut, BytesMut};
use http::header::{self, HeaderMap, HeaderName, HeaderValue};

use crate::auth::Identity;
use crate::auth::identity::is_reserved;

pub(crate) static X_REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");
static X_FORWARDED_FOR: HeaderName = HeaderName::from_static("x-forwarded-for");
static X_FORWARDED_PROTO: HeaderName = HeaderName::from_static("x-forwarded-proto");
static X_FORWARDED_HOST: HeaderName = HeaderName::from_static("x-forwarded-host");
/// X-Forwarded-Proto when the client sent none: the gateway's listener speaks plain http (TLS
/// ends in front of it).
static HTTP: HeaderValue = HeaderValue::from_static("http");

/// Headers that describe one connection only (RFC 9110 §7.6.1), besides those a `Connection`
/// header names; lowercase, as `HeaderName::as_str` gives them.
pub(crate) const HOP_BY_HOP: [&str; 8] = [
    "connection",
    "keep-alive",
    "proxy-connection",
    "proxy-authenticate",
    "proxy-authorization",
    "te",
    "trailer",
    "upgrade",
];

pub(crate) fn is_hop_by_hop(name: &str) -> bool {
    HOP_BY_HOP.contains(&name)
}

/// Whether a `Connection` header value names `name` (a lowercase header name).
pub(crate) fn connection_lists(connection: &[u8], name: &str) -> bool {
    connection
        .split(|&b| b == b',')
        .any(|token| token.trim_ascii().eq_ignore_ascii_case(name.as_bytes()))
}

/// Where the forwarded headers go: the plain-http client writes them straight into the request
/// head, the https path into the `HeaderMap` hyper's client sends.
pub trait HeaderSink {
    fn put(&mut self, name: &HeaderName, value: &HeaderValue);

    /// A list-valued header extended by one element, `list, item` (X-Forwarded-For); separate
    /// from [`Self::put`] so the byte writer needs no joined copy.
    fn put_list(&mut self, name: &HeaderName, list: &HeaderValue, item: &HeaderValue);
}

impl HeaderSink for HeaderMap {
    fn put(&mut self, name: &HeaderName, value: &HeaderValue) {
        self.append(name.clone(), value.clone());
    }

    fn put_list(&mut self, name: &HeaderName, list: &HeaderValue, item: &HeaderValue) {
        let mut joined = BytesMut::with_capacity(list.len() + 2 + item.len());
        joined.put_slice(list.as_bytes());
        joined.put_slice(b", ");
        joined.put_slice(item.as_bytes());
        // Two valid values joined by ", " are a valid value; the fallback only keeps the peer.
        match HeaderValue::from_maybe_shared(joined.freeze()) {
            Ok(value) => self.append(name.clone(), value),
            Err(_) => self.append(name.clone(), item.clone()),
        };
    }
}

/// What happens to the client's `Content-Length`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClientLength {
    /// Forwarded: the body goes upstream as the client framed it.
    Keep,
    /// Left out: the body was buffered and the transport states its real length itself.
    Restate,
}

/// One request's forwarding inputs: the client's headers and what the gateway adds.
#[derive(Debug, Clone, Copy)]
pub struct Forwarding<'a> {
    /// The client's headers, unmodified: filtering them while writing saves a handful of
    /// header-map updates per request on the plain-http path.
    pub headers: &'a HeaderMap,
    /// `Host` sent upstream: the upstream's authority, precomputed per route so it is not
    /// formatted per request. The client's goes to X-Forwarded-Host.
    pub host: &'a HeaderValue,
    pub request_id: &'a HeaderValue,
    /// The client's IP, appended to X-Forwarded-For.
    pub client_ip: &'a HeaderValue,
    /// The verified caller, sent as the identity headers; the client's own are never sent.
    pub identity: Option<&'a Identity>,
}

impl Forwarding<'_> {
    /// Puts the headers that go upstream into `sink`, in order; returns whether the client's
    /// `Content-Length` was among them.
    pub fn write_to(&self, sink: &mut impl HeaderSink, length: ClientLength) -> bool {
        // Only the first Connection header is read, as both paths always did: names listed in a
        // second one are forwarded.
        let connection = self.headers.get(header::CONNECTION);
        let mut has_length = false;
        let mut original_host = None;
        let mut forwarded_for = None;
        let mut has_forwarded_host = false;
        let mut has_forwarded_proto = false;
        for (name, value) in self.headers {
            match name.as_str() {
                // The body is re-framed by the transport, and the request ID is the one the
                // gateway settled on.
                other if is_hop_by_hop(other) => continue,
                "transfer-encoding" | "x-request-id" => continue,
                // Only the gateway speaks for the caller's identity (see auth::identity).
                other if is_reserved(other) => continue,
                "host" => {
                    original_host.get_or_insert(value);
                    continue;
                }
                "x-forwarded-for" => {
                    forwarded_for.get_or_insert(value);
                    continue;
                }
                "x-forwarded-host" => has_forwarded_host = true,
                "x-forwarded-proto" => has_forwarded_proto = true,
                "content-length" => {
                    if length == ClientLength::Restate {
                        continue;
                    }
                    has_length = true;
                }
                other => {
                    if connection
                        .is_some_and(|connection| connection_lists(connection.as_bytes(), other))
                    {
                        continue;
                    }
                }
            }
            sink.put(name, value);
        }
        sink.put(&header::HOST, self.host);
        if let Some(host) = original_host
            && !has_forwarded_host
        {
            sink.put(&X_FORWARDED_HOST, host);
        }
        // A list that is not visible ASCII cannot be extended faithfully, so only the peer goes.
        match forwarded_for.filter(|value| value.to_str().is_ok()) {
            Some(existing) => sink.put_list(&X_FORWARDED_FOR, existing, self.client_ip),
            None => sink.put(&X_FORWARDED_FOR, self.client_ip),
        }
        if !has_forwarded_proto {
            sink.put(&X_FORWARDED_PROTO, &HTTP);
        }
        sink.put(&X_REQUEST_ID, self.request_id);
        for (name, value) in self.identity.iter().flat_map(|id| id.headers.iter()) {
            sink.put(name, value);
        }
        has_length
    }

    /// The headers that go upstream as a map, the client's `Content-Length` included.
    pub fn to_header_map(&self) -> HeaderMap {
        // The gateway adds five headers and at most four identity headers.
        let mut headers = HeaderMap::with_capacity(self.headers.len() + 9);
        self.write_to(&mut headers, ClientLength::Keep);
        headers
    }
}

/// Removes the hop-by-hop headers of a response from an https upstream, including those its
/// `Connection` header names. `Transfer-Encoding` stays: hyper frames the downstream body by it.
/// (The plain-http client drops them while parsing the response head.)
pub fn strip_response_hop_by_hop(headers: &mut HeaderMap) {
    // Most responses carry none of them: one scan of the names (cheap pointer comparisons for
    // standard headers) avoids a dozen hashed removals on every response.
    if !headers.keys().any(|name| is_hop_by_hop(name.as_str())) {
        return;
    }
    if let Some(connection) = headers.get(header::CONNECTION) {
        let named: Vec<HeaderName> = connection
            .to_str()
            .unwrap_or("")
            .split(',')
            .filter_map(|name| HeaderName::from_bytes(name.trim().as_bytes()).ok())
            .collect();
        for name in named {
            headers.remove(name);
        }
    }
    for name in HOP_BY_HOP {
        headers.remove(name);
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A client's request headers, in order.
    pub(crate) fn client_headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut headers = HeaderMap::new();
        for &(name, value) in pairs {
            headers.append(
                HeaderName::from_static(name),
                HeaderValue::from_static(value),
            );
        }
        headers
    }

    /// The identity verified claims give, as the JWT validator builds it.
    pub(crate) fn identity(claims: serde_json::Value) -> Identity {
        Identity::from_claims(claims.as_object().unwrap(), "roles", "scope").unwrap()
    }

    static HOST: HeaderValue = HeaderValue::from_static("users:8080");
    static REQUEST_ID: HeaderValue = HeaderValue::from_static("rid-1");
    static CLIENT_IP: HeaderValue = HeaderValue::from_static("127.0.0.1");

    /// `headers` from a client at 127.0.0.1, going to `users:8080` as request `rid-1`.
    pub(crate) fn forwarding<'a>(
        headers: &'a HeaderMap,
        identity: Option<&'a Identity>,
    ) -> Forwarding<'a> {
        Forwarding {
            headers,
            host: &HOST,
            request_id: &REQUEST_ID,
            client_ip: &CLIENT_IP,
            identity,
        }
    }

    fn verified() -> Identity {
        identity(serde_json::json!({
            "sub": "u-1", "roles": ["user", "auditor"], "scope": "a:read", "jti": "t-1"
        }))
    }

    /// What goes upstream, as a map.
    fn forwarded(headers: &HeaderMap, identity: Option<&Identity>) -> HeaderMap {
        forwarding(headers, identity).to_header_map()
    }

    fn values<'a>(headers: &'a HeaderMap, name: &str) -> Vec<&'a str> {
        headers
            .get_all(name)
            .iter()
            .map(|value| value.to_str().unwrap())
            .collect()
    }

    #[test]
    fn a_forged_identity_never_goes_upstream() {
        let headers = client_headers(&[
            ("x-panthera-subject", "forged"),
            ("x-panthera-roles", "admin"),
            ("x-panthera-anything-else", "1"),
            ("accept", "*/*"),
        ]);
        // Without a verified token (a public route) no identity header goes at all.
        let anonymous = forwarded(&headers, None);
        assert!(
            anonymous.keys().all(|name| !is_reserved(name.as_str())),
            "{anonymous:?}"
        );
        assert_eq!(values(&anonymous, "accept"), ["*/*"]);

        // With one, only the gateway's values go, once each.
        let identity = verified();
        let verified = forwarded(&headers, Some(&identity));
        assert_eq!(values(&verified, "x-panthera-subject"), ["u-1"]);
        assert_eq!(values(&verified, "x-panthera-roles"), ["user auditor"]);
        assert!(!verified.contains_key("x-panthera-anything-else"));
    }

    #[test]
    fn identity_headers_come_from_the_verified_claims() {
        let identity = verified();
        let headers = forwarded(&HeaderMap::new(), Some(&identity));
        let sent: Vec<(&str, &str)> = headers
            .iter()
            .filter(|(name, _)| is_reserved(name.as_str()))
            .map(|(name, value)| (name.as_str(), value.to_str().unwrap()))
            .collect();
        assert_eq!(
            sent,
            [
                ("x-panthera-subject", "u-1"),
                ("x-panthera-roles", "user auditor"),
                ("x-panthera-scopes", "a:read"),
                ("x-panthera-token-id", "t-1"),
            ]
        );
    }

    #[test]
    fn hop_by_hop_headers_are_dropped() {
        let headers = client_headers(&[
            ("connection", "keep-alive, X-Drop-Me"),
            ("keep-alive", "timeout=5"),
            ("proxy-connection", "keep-alive"),
            ("proxy-authorization", "Basic eA=="),
            ("te", "trailers"),
            ("trailer", "x-sum"),
            ("upgrade", "websocket"),
            ("transfer-encoding", "chunked"),
            ("x-drop-me", "secret"),
            ("authorization", "Bearer t"),
            ("accept", "*/*"),
        ]);
        let sent = forwarded(&headers, None);
        for name in HOP_BY_HOP.iter().chain(&["transfer-encoding", "x-drop-me"]) {
            assert!(!sent.contains_key(*name), "{name} forwarded");
        }
        assert_eq!(values(&sent, "authorization"), ["Bearer t"]);
        assert_eq!(values(&sent, "accept"), ["*/*"]);
    }

    #[test]
    fn adds_forwarding_headers_and_the_request_id() {
        type Headers<'a> = &'a [(&'a str, &'a str)];
        let cases: [(Headers, Headers); 2] = [
            (
                &[
                    ("host", "shop.example.com"),
                    ("x-forwarded-for", "203.0.113.9"),
                    ("x-forwarded-for", "198.51.100.1"),
                    ("x-request-id", "from-client"),
                ],
                // The first list is extended, as the plain-http path always did.
                &[
                    ("host", "users:8080"),
                    ("x-forwarded-host", "shop.example.com"),
                    ("x-forwarded-for", "203.0.113.9, 127.0.0.1"),
                    ("x-forwarded-proto", "http"),
                    ("x-request-id", "rid-1"),
                ],
            ),
            (
                // What a proxy in front of the gateway already said is kept.
                &[
                    ("host", "internal"),
                    ("x-forwarded-host", "shop.example.com"),
                    ("x-forwarded-proto", "https"),
                ],
                &[
                    ("x-forwarded-host", "shop.example.com"),
                    ("x-forwarded-proto", "https"),
                    ("x-forwarded-for", "127.0.0.1"),
                ],
            ),
        ];
        for (client, expected) in cases {
            let sent = forwarded(&client_headers(client), None);
            for &(name, value) in expected {
                assert_eq!(values(&sent, name), [value], "{client:?}");
            }
        }
    }

    #[test]
    fn the_client_length_is_kept_unless_restated() {
        let headers = client_headers(&[("content-length", "5")]);
        let forwarding = forwarding(&headers, None);
        let mut kept = HeaderMap::new();
        assert!(forwarding.write_to(&mut kept, ClientLength::Keep));
        assert_eq!(values(&kept, "content-length"), ["5"]);
        let mut restated = HeaderMap::new();
        assert!(!forwarding.write_to(&mut restated, ClientLength::Restate));
        assert!(!restated.contains_key("content-length"));
    }

    #[test]
    fn strips_hop_by_hop_response_headers() {
        let mut headers = client_headers(&[
            ("connection", "x-secret, keep-alive"),
            ("x-secret", "1"),
            ("keep-alive", "timeout=5"),
            ("transfer-encoding", "chunked"),
            ("x-kept", "2"),
        ]);
        strip_response_hop_by_hop(&mut headers);
        let names: Vec<&str> = headers.keys().map(HeaderName::as_str).collect();
        assert_eq!(names, ["transfer-encoding", "x-kept"]);
    }
}
