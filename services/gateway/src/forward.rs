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
//! - `X-Forwarded-For` and `Forwarded`: a chain is passed on only from a trusted proxy, and only
//!   the header it writes (see [`crate::client_addr`]); X-Forwarded-For is then extended with the
//!   peer's address. From anyone else both are dropped and X-Forwarded-For is the peer alone,
//!   so an address a client made up never reaches the services.
//!
//! - `traceparent` and `tracestate` while the gateway traces: the context of its own upstream
//!   span is sent instead (see [`crate::proxy`] for when it continues the client's).
//!
//! Then the gateway's headers follow: Host, X-Forwarded-Host (unless the client sent one),
//! X-Forwarded-For, X-Forwarded-Proto (unless the client sent one), X-Request-Id, the identity
//! headers of the verified token and their signature (`x-panthera-signature`, made for this
//! request's method and target when signing keys are configured).

use bytes::{BufMut, BytesMut};
use http::header::{self, HeaderMap, HeaderName, HeaderValue};
use panthera_identity::{KeyRing, RequestLine};

use crate::auth::Identity;
use crate::auth::identity::{SIGNATURE_HEADER, is_reserved};
use crate::client_addr::{ClientAddressHeader, X_FORWARDED_FOR};
use panthera_otel::TRACEPARENT;

pub(crate) static X_REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");
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

    /// A value made for this request only (the identity signature); the bytes are a valid
    /// header value.
    fn put_bytes(&mut self, name: &HeaderName, value: &[u8]);

    /// A list-valued header's lines joined and extended by one element, `a, b, item`
    /// (X-Forwarded-For); separate from [`Self::put`] so the byte writer needs no joined copy.
    fn put_list(&mut self, name: &HeaderName, list: &[&HeaderValue], item: &HeaderValue);
}

impl HeaderSink for HeaderMap {
    fn put(&mut self, name: &HeaderName, value: &HeaderValue) {
        self.append(name.clone(), value.clone());
    }

    fn put_bytes(&mut self, name: &HeaderName, value: &[u8]) {
        if let Ok(value) = HeaderValue::from_bytes(value) {
            self.append(name.clone(), value);
        }
    }

    fn put_list(&mut self, name: &HeaderName, list: &[&HeaderValue], item: &HeaderValue) {
        let length = list.iter().map(|value| value.len() + 2).sum::<usize>() + item.len();
        let mut joined = BytesMut::with_capacity(length);
        for value in list {
            joined.put_slice(value.as_bytes());
            joined.put_slice(b", ");
        }
        joined.put_slice(item.as_bytes());
        // Valid values joined by ", " are a valid value; the fallback only keeps the peer.
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
    /// The TCP peer's IP, appended to X-Forwarded-For.
    pub peer_ip: &'a HeaderValue,
    /// The forwarding header whose chain goes upstream: the one a trusted peer writes; `None`
    /// for any other peer, whose chains are dropped.
    pub chain: Option<ClientAddressHeader>,
    /// The verified caller, sent as the identity headers; the client's own are never sent.
    pub identity: Option<&'a Identity>,
    /// Signs the identity headers for the request; `None` sends them unsigned.
    pub identity_keys: Option<&'a KeyRing>,
    /// The gateway's `traceparent`, sent instead of the client's trace context (and with no
    /// `tracestate`); `None` while tracing is off (the client's pass).
    pub trace: Option<&'a HeaderValue>,
}

impl Forwarding<'_> {
    /// Puts the headers that go upstream for `request` (the method and target sent upstream,
    /// which the identity signature covers) into `sink`, in order; returns whether the
    /// client's `Content-Length` was among them.
    pub fn write_to(
        &self,
        sink: &mut impl HeaderSink,
        length: ClientLength,
        request: RequestLine<'_>,
    ) -> bool {
        // Only the first Connection header is read, as both paths always did: names listed in a
        // second one are forwarded.
        let connection = self.headers.get(header::CONNECTION);
        let mut has_length = false;
        let mut original_host = None;
        // Allocates only for a chain that goes upstream (from a trusted proxy).
        let mut forwarded_for: Vec<&HeaderValue> = Vec::new();
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
                "traceparent" | "tracestate" if self.trace.is_some() => continue,
                "host" => {
                    original_host.get_or_insert(value);
                    continue;
                }
                "x-forwarded-for" => {
                    if self.chain == Some(ClientAddressHeader::XForwardedFor) {
                        forwarded_for.push(value);
                    }
                    continue;
                }
                "forwarded" if self.chain != Some(ClientAddressHeader::Forwarded) => continue,
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
        if !forwarded_for.is_empty() && forwarded_for.iter().all(|value| value.to_str().is_ok()) {
            sink.put_list(&X_FORWARDED_FOR, &forwarded_for, self.peer_ip);
        } else {
            sink.put(&X_FORWARDED_FOR, self.peer_ip);
        }
        if !has_forwarded_proto {
            sink.put(&X_FORWARDED_PROTO, &HTTP);
        }
        sink.put(&X_REQUEST_ID, self.request_id);
        if let Some(traceparent) = self.trace {
            sink.put(&TRACEPARENT, traceparent);
        }
        if let Some(identity) = self.identity {
            for (name, value) in &identity.headers {
                sink.put(name, value);
            }
            if let Some(keys) = self.identity_keys {
                // Made per write: a retry on the plain-http path is signed afresh.
                let signature = keys.sign(panthera_identity::unix_now(), request, &identity.signed);
                sink.put_bytes(&SIGNATURE_HEADER, signature.as_bytes());
            }
        }
        has_length
    }

    /// The headers that go upstream for `request` as a map, the client's `Content-Length`
    /// included.
    pub fn to_header_map(&self, request: RequestLine<'_>) -> HeaderMap {
        // The gateway adds five headers, at most four identity headers and their signature.
        let mut headers = HeaderMap::with_capacity(self.headers.len() + 10);
        self.write_to(&mut headers, ClientLength::Keep, request);
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
    static PEER_IP: HeaderValue = HeaderValue::from_static("127.0.0.1");
    pub(crate) const REQUEST: RequestLine<'static> = RequestLine {
        method: "GET",
        target: "/v1/orders/1",
    };

    /// `headers` from an untrusted client at 127.0.0.1, going to `users:8080` as request
    /// `rid-1`, identity unsigned.
    pub(crate) fn forwarding<'a>(
        headers: &'a HeaderMap,
        identity: Option<&'a Identity>,
    ) -> Forwarding<'a> {
        Forwarding {
            headers,
            host: &HOST,
            request_id: &REQUEST_ID,
            peer_ip: &PEER_IP,
            chain: None,
            identity,
            identity_keys: None,
            trace: None,
        }
    }

    fn verified() -> Identity {
        identity(serde_json::json!({
            "sub": "u-1", "roles": ["user", "auditor"], "scope": "a:read", "jti": "t-1"
        }))
    }

    /// What goes upstream, as a map.
    fn forwarded(headers: &HeaderMap, identity: Option<&Identity>) -> HeaderMap {
        forwarding(headers, identity).to_header_map(REQUEST)
    }

    fn values<'a>(headers: &'a HeaderMap, name: &str) -> Vec<&'a str> {
        headers
            .get_all(name)
            .iter()
            .map(|value| value.to_str().unwrap())
            .collect()
    }

    #[test]
    fn the_gateways_trace_context_replaces_the_clients_only_while_tracing() {
        let mut client = HeaderMap::new();
        client.insert(
            "traceparent",
            HeaderValue::from_static("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"),
        );
        client.insert("tracestate", HeaderValue::from_static("vendor=client"));
        // Off: the client's context passes untouched.
        let sent = forwarded(&client, None);
        assert_eq!(
            values(&sent, "traceparent"),
            ["00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"]
        );
        assert_eq!(values(&sent, "tracestate"), ["vendor=client"]);
        // On: only the gateway's, and no tracestate it did not write.
        let gateway =
            HeaderValue::from_static("00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-00");
        let mut traced = forwarding(&client, None);
        traced.trace = Some(&gateway);
        let sent = traced.to_header_map(REQUEST);
        assert_eq!(
            values(&sent, "traceparent"),
            ["00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-00"]
        );
        assert!(values(&sent, "tracestate").is_empty());
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
                    ("forwarded", "for=203.0.113.9"),
                    ("x-request-id", "from-client"),
                ],
                // An untrusted peer's chain is replaced by the peer itself.
                &[
                    ("host", "users:8080"),
                    ("x-forwarded-host", "shop.example.com"),
                    ("x-forwarded-for", "127.0.0.1"),
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
            assert!(!sent.contains_key("forwarded"), "{sent:?}");
        }
    }

    #[test]
    fn a_trusted_proxy_chain_is_extended_and_only_the_header_it_writes_goes() {
        let headers = client_headers(&[
            ("x-forwarded-for", "203.0.113.9"),
            ("x-forwarded-for", "198.51.100.1"),
            ("forwarded", "for=192.0.2.1"),
        ]);
        let mut via_proxy = forwarding(&headers, None);
        via_proxy.chain = Some(ClientAddressHeader::XForwardedFor);
        let sent = via_proxy.to_header_map(REQUEST);
        // Several lines are one list, in order, then the peer.
        assert_eq!(
            values(&sent, "x-forwarded-for"),
            ["203.0.113.9, 198.51.100.1, 127.0.0.1"]
        );
        assert!(!sent.contains_key("forwarded"), "{sent:?}");

        via_proxy.chain = Some(ClientAddressHeader::Forwarded);
        let sent = via_proxy.to_header_map(REQUEST);
        assert_eq!(values(&sent, "forwarded"), ["for=192.0.2.1"]);
        assert_eq!(values(&sent, "x-forwarded-for"), ["127.0.0.1"]);
    }

    #[test]
    fn the_identity_is_signed_for_the_request_it_goes_with() {
        use panthera_identity::{KeyRing, unix_now};
        let keys = KeyRing::parse("forward-test-key-0123456789-0123456789").unwrap();
        let identity = verified();
        let none = HeaderMap::new();
        let mut signed = forwarding(&none, Some(&identity));
        signed.identity_keys = Some(&keys);
        let sent = signed.to_header_map(REQUEST);
        let signature = sent.get("x-panthera-signature").unwrap();
        assert_eq!(
            keys.verify(signature.as_bytes(), unix_now(), REQUEST, &identity.signed),
            Ok(())
        );
        let elsewhere = RequestLine {
            method: "DELETE",
            target: "/v1/orders/1",
        };
        assert!(
            keys.verify(
                signature.as_bytes(),
                unix_now(),
                elsewhere,
                &identity.signed
            )
            .is_err()
        );
        // No identity, no signature; no keys, no signature.
        let mut anonymous = forwarding(&none, None);
        anonymous.identity_keys = Some(&keys);
        assert!(
            !anonymous
                .to_header_map(REQUEST)
                .contains_key("x-panthera-signature")
        );
        assert!(
            !forwarding(&none, Some(&identity))
                .to_header_map(REQUEST)
                .contains_key("x-panthera-signature")
        );
    }

    #[test]
    fn the_client_length_is_kept_unless_restated() {
        let headers = client_headers(&[("content-length", "5")]);
        let forwarding = forwarding(&headers, None);
        let mut kept = HeaderMap::new();
        assert!(forwarding.write_to(&mut kept, ClientLength::Keep, REQUEST));
        assert_eq!(values(&kept, "content-length"), ["5"]);
        let mut restated = HeaderMap::new();
        assert!(!forwarding.write_to(&mut restated, ClientLength::Restate, REQUEST));
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
