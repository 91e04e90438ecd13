//! The client's real address, for rate limiting, access logs and the `X-Forwarded-For` sent
//! upstream.
//!
//! Behind an ingress controller every request comes from the controller's address, so the TCP
//! peer alone would put all clients in one rate-limit bucket. The controller says who its client
//! was in `X-Forwarded-For` (or RFC 7239 `Forwarded`), but so can anyone else: the header is
//! believed only from a peer in `trustedProxies`, and only the header the configuration names
//! (`clientAddressHeader`), since a proxy that writes one passes the other through as the client
//! sent it. The list is walked from the right, skipping trusted addresses; the first untrusted
//! one is the client (nginx's `real_ip_recursive on`). An entry that is not an address (garbage,
//! `unknown`, an obfuscated identifier) stops the walk at the last trusted hop before it: the
//! client never chooses the address it is limited by.

use std::net::IpAddr;

use http::HeaderMap;
use http::header::{FORWARDED, HeaderName};
use serde::Deserialize;

pub(crate) static X_FORWARDED_FOR: HeaderName = HeaderName::from_static("x-forwarded-for");

/// At most this many trusted proxies (each one is a comparison per request from a proxy).
pub const MAX_TRUSTED_PROXIES: usize = 32;
/// Entries walked at most; a longer chain stops at the last trusted hop reached.
const MAX_HOPS: usize = 64;

/// The header trusted proxies write the client's address to.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ClientAddressHeader {
    /// `X-Forwarded-For: client, proxy1, proxy2` (ingress-nginx, Traefik, Envoy, cloud load
    /// balancers).
    #[default]
    XForwardedFor,
    /// RFC 7239 `Forwarded: for=client, for="[2001:db8::1]:443"`.
    Forwarded,
}

/// An IP network, e.g. `10.0.0.0/8` or `fd00::/8`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cidr {
    network: IpAddr,
    prefix: u8,
}

impl Cidr {
    /// Parses `address/prefix`; host bits are ignored (`10.1.2.3/8` is `10.0.0.0/8`).
    pub fn parse(text: &str) -> Result<Self, String> {
        let (address, prefix) = text
            .split_once('/')
            .ok_or_else(|| format!("`{text}` is not a CIDR (address/prefix length)"))?;
        let network: IpAddr = address
            .parse()
            .map_err(|_| format!("`{address}` is not an IPv4 or IPv6 address"))?;
        let max = if network.is_ipv4() { 32 } else { 128 };
        let prefix: u8 = prefix
            .parse()
            .ok()
            .filter(|p| *p <= max)
            .ok_or_else(|| format!("`{prefix}` is not a prefix length from 0 to {max}"))?;
        Ok(Self {
            network: mask(network, prefix),
            prefix,
        })
    }

    pub fn contains(&self, address: IpAddr) -> bool {
        // An IPv4 client of a dual-stack listener shows as ::ffff:a.b.c.d.
        let address = address.to_canonical();
        address.is_ipv4() == self.network.is_ipv4() && mask(address, self.prefix) == self.network
    }
}

fn mask(address: IpAddr, prefix: u8) -> IpAddr {
    match address {
        IpAddr::V4(v4) => {
            let bits = u32::from(v4);
            let mask = u32::MAX.checked_shl(32 - u32::from(prefix)).unwrap_or(0);
            IpAddr::V4((bits & mask).into())
        }
        IpAddr::V6(v6) => {
            let bits = u128::from(v6);
            let mask = u128::MAX.checked_shl(128 - u32::from(prefix)).unwrap_or(0);
            IpAddr::V6((bits & mask).into())
        }
    }
}

/// Where a request's client address comes from.
#[derive(Debug, Clone, Default)]
pub struct ClientAddressPolicy {
    trusted: Box<[Cidr]>,
    header: ClientAddressHeader,
}

/// Who sent a request, as far as the gateway can tell.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClientAddress {
    /// The client: the TCP peer, or what a trusted peer says.
    pub ip: IpAddr,
    /// The peer is a trusted proxy: its forwarding header goes upstream (extended), where an
    /// untrusted peer's is replaced.
    pub via_trusted_proxy: bool,
}

impl ClientAddressPolicy {
    pub fn new(trusted: Vec<Cidr>, header: ClientAddressHeader) -> Self {
        Self {
            trusted: trusted.into_boxed_slice(),
            header,
        }
    }

    pub fn header(&self) -> ClientAddressHeader {
        self.header
    }

    fn is_trusted(&self, address: IpAddr) -> bool {
        self.trusted.iter().any(|cidr| cidr.contains(address))
    }

    /// The client of a request `peer` sent with `headers`.
    pub fn resolve(&self, peer: IpAddr, headers: &HeaderMap) -> ClientAddress {
        let untrusted = ClientAddress {
            ip: peer,
            via_trusted_proxy: false,
        };
        // No trusted proxies (the default): one branch per request.
        if self.trusted.is_empty() || !self.is_trusted(peer) {
            return untrusted;
        }
        let mut client = peer;
        let mut walk = |entry: &str| -> bool {
            match parse_entry(entry) {
                Some(address) => {
                    client = address;
                    self.is_trusted(address)
                }
                None => false,
            }
        };
        match self.header {
            ClientAddressHeader::XForwardedFor => {
                walk_right_to_left(headers, &X_FORWARDED_FOR, |element| walk(element));
            }
            ClientAddressHeader::Forwarded => {
                walk_right_to_left(headers, &FORWARDED, |element| {
                    walk(forwarded_for(element).unwrap_or(""))
                });
            }
        }
        ClientAddress {
            ip: client,
            via_trusted_proxy: true,
        }
    }
}

/// Calls `step` on each comma-separated element of every `name` header, last first, while it
/// returns true and at most [`MAX_HOPS`] times. Several header lines are one list in order
/// (RFC 9110 §5.3).
fn walk_right_to_left(headers: &HeaderMap, name: &HeaderName, mut step: impl FnMut(&str) -> bool) {
    let values: Vec<&str> = headers
        .get_all(name)
        .iter()
        .map(|value| value.to_str().unwrap_or(""))
        .collect();
    let mut hops = 0;
    for value in values.iter().rev() {
        for element in value.rsplit(',') {
            hops += 1;
            if hops > MAX_HOPS || !step(element.trim()) {
                return;
            }
        }
    }
}

/// The `for=` parameter of one `Forwarded` element (`for=1.2.3.4;proto=https`).
fn forwarded_for(element: &str) -> Option<&str> {
    element.split(';').find_map(|pair| {
        let (name, value) = pair.split_once('=')?;
        name.trim()
            .eq_ignore_ascii_case("for")
            .then(|| value.trim().trim_matches('"'))
    })
}

/// An address as proxies write it: `1.2.3.4`, `1.2.3.4:5678`, `2001:db8::1`, `[2001:db8::1]`,
/// `[2001:db8::1]:443`. Anything else is not an address.
fn parse_entry(entry: &str) -> Option<IpAddr> {
    if let Ok(address) = entry.parse::<IpAddr>() {
        return Some(address.to_canonical());
    }
    if let Some(rest) = entry.strip_prefix('[') {
        let (address, port) = rest.split_once(']')?;
        if !(port.is_empty() || port.strip_prefix(':').is_some_and(is_port)) {
            return None;
        }
        return address
            .parse::<std::net::Ipv6Addr>()
            .ok()
            .map(|v6| IpAddr::V6(v6).to_canonical());
    }
    let (address, port) = entry.rsplit_once(':')?;
    is_port(port)
        .then(|| address.parse::<std::net::Ipv4Addr>().ok())
        .flatten()
        .map(IpAddr::V4)
}

fn is_port(text: &str) -> bool {
    !text.is_empty() && text.len() <= 5 && text.bytes().all(|b| b.is_ascii_digit())
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap()
    }

    fn headers(name: &'static str, values: &[&'static str]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for value in values {
            map.append(
                HeaderName::from_static(name),
                HeaderValue::from_static(value),
            );
        }
        map
    }

    fn policy(cidrs: &[&str], header: ClientAddressHeader) -> ClientAddressPolicy {
        ClientAddressPolicy::new(
            cidrs.iter().map(|c| Cidr::parse(c).unwrap()).collect(),
            header,
        )
    }

    #[test]
    fn cidrs_parse_and_match() {
        let net = Cidr::parse("10.1.2.3/8").unwrap();
        assert!(net.contains(ip("10.255.0.1")));
        assert!(net.contains(ip("::ffff:10.0.0.1")));
        assert!(!net.contains(ip("11.0.0.1")));
        assert!(!net.contains(ip("::a00:1")));
        let v6 = Cidr::parse("fd00::/8").unwrap();
        assert!(v6.contains(ip("fd12::1")));
        assert!(!v6.contains(ip("fe80::1")));
        assert!(Cidr::parse("0.0.0.0/0").unwrap().contains(ip("1.2.3.4")));
        assert!(Cidr::parse("1.2.3.4/32").unwrap().contains(ip("1.2.3.4")));
        for bad in [
            "10.0.0.0",
            "10.0.0.0/33",
            "fd00::/129",
            "10.0.0/8",
            "x/8",
            "10.0.0.0/-1",
        ] {
            assert!(Cidr::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn an_untrusted_peer_is_the_client_whatever_it_says() {
        let p = policy(&["10.0.0.0/8"], ClientAddressHeader::XForwardedFor);
        let h = headers("x-forwarded-for", &["203.0.113.7"]);
        let resolved = p.resolve(ip("198.51.100.1"), &h);
        assert_eq!(resolved.ip, ip("198.51.100.1"));
        assert!(!resolved.via_trusted_proxy);
        let none = ClientAddressPolicy::default().resolve(ip("10.0.0.1"), &h);
        assert_eq!(none.ip, ip("10.0.0.1"));
    }

    #[test]
    fn the_rightmost_untrusted_address_is_the_client() {
        let p = policy(&["10.0.0.0/8"], ClientAddressHeader::XForwardedFor);
        let cases: [(&[&'static str], &str); 8] = [
            // The client spoofs a left entry; the ingress appended the real one.
            (&["1.1.1.1, 203.0.113.7"], "203.0.113.7"),
            (&["1.1.1.1, 203.0.113.7, 10.0.0.9"], "203.0.113.7"),
            // Several lines are one list.
            (&["1.1.1.1", "203.0.113.7, 10.0.0.9"], "203.0.113.7"),
            (&["203.0.113.7:4711"], "203.0.113.7"),
            (&["[2001:db8::7]:443"], "2001:db8::7"),
            // Nothing untrusted: the leftmost trusted address.
            (&["10.0.0.8, 10.0.0.9"], "10.0.0.8"),
            // Garbage stops at the last trusted hop.
            (&["203.0.113.7, nonsense, 10.0.0.9"], "10.0.0.9"),
            // No header: the peer.
            (&[], "10.0.0.1"),
        ];
        for (values, expected) in cases {
            let resolved = p.resolve(ip("10.0.0.1"), &headers("x-forwarded-for", values));
            assert_eq!(resolved.ip, ip(expected), "{values:?}");
            assert!(resolved.via_trusted_proxy);
        }
        // The header not configured is never read.
        let forwarded = headers("forwarded", &["for=203.0.113.7"]);
        assert_eq!(p.resolve(ip("10.0.0.1"), &forwarded).ip, ip("10.0.0.1"));
    }

    #[test]
    fn forwarded_for_parameters_are_read_when_configured() {
        let p = policy(&["10.0.0.0/8"], ClientAddressHeader::Forwarded);
        let cases: [(&'static str, &str); 5] = [
            ("for=203.0.113.7;proto=https, for=10.0.0.9", "203.0.113.7"),
            ("For=\"[2001:db8::7]:4711\"", "2001:db8::7"),
            (
                "proto=https;for=\"203.0.113.7:80\";by=10.0.0.1",
                "203.0.113.7",
            ),
            ("for=unknown, for=10.0.0.9", "10.0.0.9"),
            ("for=_hidden", "10.0.0.1"),
        ];
        for (value, expected) in cases {
            let resolved = p.resolve(ip("10.0.0.1"), &headers("forwarded", &[value]));
            assert_eq!(resolved.ip, ip(expected), "{value}");
        }
        let xff = headers("x-forwarded-for", &["203.0.113.7"]);
        assert_eq!(p.resolve(ip("10.0.0.1"), &xff).ip, ip("10.0.0.1"));
    }

    #[test]
    fn long_chains_stop_at_the_bound() {
        let p = policy(&["10.0.0.0/8"], ClientAddressHeader::XForwardedFor);
        let chain = std::iter::once("203.0.113.7")
            .chain(std::iter::repeat_n("10.0.0.9", MAX_HOPS))
            .collect::<Vec<_>>()
            .join(", ");
        let mut map = HeaderMap::new();
        map.insert(&X_FORWARDED_FOR, HeaderValue::from_str(&chain).unwrap());
        assert_eq!(p.resolve(ip("10.0.0.1"), &map).ip, ip("10.0.0.9"));
    }
}
