//! The `x-panthera-signature` header: `v1;kid=<key id>;t=<unix seconds>;sig=<base64url>`, an
//! HMAC-SHA256 over the identity, the request line and the time.

use std::sync::OnceLock;
use std::time::{SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::Mac;

use crate::keys::{HmacSha256, Key, KeyId, KeyRing};

/// The header the gateway adds next to the identity headers.
pub const SIGNATURE_HEADER: &str = "x-panthera-signature";
/// How far a signature's time may be from the verifier's clock, either way. Clocks of a
/// cluster's nodes agree within a second or so (NTP); a request that spent longer than this
/// between signing and checking (timeouts are 15 s by default) is refused as stale.
pub const MAX_SKEW_SECONDS: u64 = 60;

const VERSION: &[u8] = b"v1";
/// Separates this MAC's inputs from anything else a shared key might ever sign.
const DOMAIN: &[u8] = b"panthera-identity-v1\0";
const TAG_LEN: usize = 32;
/// SHA-256's block size: the identity part of the input is padded to it.
const BLOCK: usize = 64;
/// base64url of 32 bytes, without padding.
const TAG_B64_LEN: usize = 43;

/// Why a signature was not accepted. None of them names a key or the expected signature.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Rejection {
    #[error("the identity is not signed")]
    Missing,
    #[error("the identity signature is malformed")]
    Malformed,
    #[error("the identity is signed with key {id}, which is not among this service's keys")]
    UnknownKey { id: String },
    #[error(
        "the identity signature is {age} s away from this service's clock (at most {MAX_SKEW_SECONDS} s)"
    )]
    Stale { age: u64 },
    #[error("the identity signature does not match the identity and the request")]
    Mismatch,
}

/// The identity headers' values, encoded once: the gateway keeps it with the verified token,
/// a service builds it from the headers it received. An absent header counts as empty.
///
/// The identity comes first in the MAC's input, padded to whole hash blocks, so the keyed hash
/// state after it is kept here (per signing key) and each request hashes only its own part.
#[derive(Clone)]
pub struct IdentityFields {
    /// [`DOMAIN`], the four fields, zeros up to a multiple of the hash's block size.
    prefix: Box<[u8]>,
    /// The signing key's state after `prefix`, made on first use.
    keyed: OnceLock<(KeyId, HmacSha256)>,
}

impl IdentityFields {
    pub fn new(subject: &[u8], roles: &[u8], scopes: &[u8], token_id: &[u8]) -> Self {
        let mut prefix = Vec::with_capacity(
            DOMAIN.len() + 16 + subject.len() + roles.len() + scopes.len() + token_id.len() + 64,
        );
        prefix.extend_from_slice(DOMAIN);
        for field in [subject, roles, scopes, token_id] {
            push_field(&mut prefix, field);
        }
        prefix.resize(prefix.len().div_ceil(BLOCK) * BLOCK, 0);
        Self {
            prefix: prefix.into_boxed_slice(),
            keyed: OnceLock::new(),
        }
    }

    /// `key`'s hash state after the identity: from the cache when it was made with this key.
    fn keyed(&self, key: &Key) -> HmacSha256 {
        let hash = |key: &Key| {
            let mut mac = key.mac.clone();
            mac.update(&self.prefix);
            mac
        };
        match self.keyed.get() {
            Some((id, mac)) if *id == key.id => mac.clone(),
            Some(_) => hash(key),
            None => {
                let mac = hash(key);
                // Only the first key used is kept: the gateway signs with one key at a time.
                let _ = self.keyed.set((key.id, mac.clone()));
                mac
            }
        }
    }
}

impl std::fmt::Debug for IdentityFields {
    // The cached state stands for the key: it never prints.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IdentityFields")
            .field("prefix_len", &self.prefix.len())
            .finish_non_exhaustive()
    }
}

impl PartialEq for IdentityFields {
    fn eq(&self, other: &Self) -> bool {
        self.prefix == other.prefix
    }
}

impl Eq for IdentityFields {}

/// What binds a signature to one request besides the identity.
#[derive(Debug, Clone, Copy)]
pub struct RequestLine<'a> {
    pub method: &'a str,
    /// The request target as sent on the request line: path and query (`/v1/users?limit=5`).
    pub target: &'a str,
}

/// A field as its length (4 bytes, big-endian) and its bytes: no value can be read as another
/// field, whatever bytes it holds. (Header values are far below 4 GiB; a longer one would be
/// cut to its first 4 GiB, which no request carries.)
fn push_field(out: &mut Vec<u8>, bytes: &[u8]) {
    let len = u32::try_from(bytes.len()).unwrap_or(u32::MAX);
    out.extend_from_slice(&len.to_be_bytes());
    out.extend_from_slice(&bytes[..len as usize]);
}

/// The MAC of `identity` on `request` at `time`, before finalizing: the cached identity state,
/// then the time and the request line.
fn mac(key: &Key, time: u64, request: RequestLine<'_>, identity: &IdentityFields) -> HmacSha256 {
    let mut mac = identity.keyed(key);
    let (method, target) = (request.method.as_bytes(), request.target.as_bytes());
    // One update for the usual short request line (each update has a fixed cost).
    let mut line = [0u8; 128];
    let len = 8 + 4 + method.len() + 4 + target.len();
    if len <= line.len() {
        let mut at = 0;
        for piece in [
            &time.to_be_bytes()[..],
            &(method.len() as u32).to_be_bytes(),
            method,
            &(target.len() as u32).to_be_bytes(),
            target,
        ] {
            line[at..at + piece.len()].copy_from_slice(piece);
            at += piece.len();
        }
        mac.update(&line[..len]);
    } else {
        let mut long = Vec::with_capacity(len);
        long.extend_from_slice(&time.to_be_bytes());
        push_field(&mut long, method);
        push_field(&mut long, target);
        mac.update(&long);
    }
    mac
}

/// A signature header value, on the stack (the gateway makes one per request).
#[derive(Clone, Copy)]
pub struct Signature {
    bytes: [u8; 96],
    len: usize,
}

impl Signature {
    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes[..self.len]
    }

    pub fn as_str(&self) -> &str {
        // Written from ASCII pieces only.
        std::str::from_utf8(self.as_bytes()).unwrap_or("")
    }

    fn push(&mut self, bytes: &[u8]) {
        self.bytes[self.len..self.len + bytes.len()].copy_from_slice(bytes);
        self.len += bytes.len();
    }
}

impl std::fmt::Debug for Signature {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Seconds since the Unix epoch (0 for a clock before it).
pub fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

impl KeyRing {
    /// The signature of `identity` on `request` at `time` (Unix seconds), with the first key.
    pub fn sign(
        &self,
        time: u64,
        request: RequestLine<'_>,
        identity: &IdentityFields,
    ) -> Signature {
        let key = self.signing();
        let tag = mac(key, time, request, identity).finalize().into_bytes();
        let mut out = Signature {
            bytes: [0; 96],
            len: 0,
        };
        out.push(VERSION);
        out.push(b";kid=");
        out.push(key.id.as_bytes());
        out.push(b";t=");
        let mut digits = [0u8; 20];
        let mut start = digits.len();
        let mut rest = time;
        loop {
            start -= 1;
            digits[start] = b'0' + (rest % 10) as u8;
            rest /= 10;
            if rest == 0 {
                break;
            }
        }
        out.push(&digits[start..]);
        out.push(b";sig=");
        let mut encoded = [0u8; TAG_B64_LEN];
        // 32 bytes are always 43 characters: the buffer is exact.
        let written = URL_SAFE_NO_PAD.encode_slice(tag, &mut encoded).unwrap_or(0);
        out.push(&encoded[..written]);
        out
    }

    /// Accepts `header` when one of the keys made it for `identity` on `request` within
    /// [`MAX_SKEW_SECONDS`] of `now`. The comparison is constant-time.
    pub fn verify(
        &self,
        header: &[u8],
        now: u64,
        request: RequestLine<'_>,
        identity: &IdentityFields,
    ) -> Result<(), Rejection> {
        let parsed = Parsed::from(header).ok_or(Rejection::Malformed)?;
        let key = self
            .find(parsed.key_id)
            .ok_or_else(|| Rejection::UnknownKey {
                id: String::from_utf8_lossy(parsed.key_id).into_owned(),
            })?;
        let age = now.abs_diff(parsed.time);
        if age > MAX_SKEW_SECONDS {
            return Err(Rejection::Stale { age });
        }
        // `verify_slice` compares in constant time.
        mac(key, parsed.time, request, identity)
            .verify_slice(&parsed.tag)
            .map_err(|_| Rejection::Mismatch)
    }
}

/// The parts of a signature header; anything but exactly the format written by
/// [`KeyRing::sign`] is malformed.
struct Parsed<'a> {
    key_id: &'a [u8],
    time: u64,
    tag: [u8; TAG_LEN],
}

impl<'a> Parsed<'a> {
    fn from(header: &'a [u8]) -> Option<Self> {
        let mut parts = header.split(|&b| b == b';');
        if parts.next()? != VERSION {
            return None;
        }
        let key_id = parts.next()?.strip_prefix(b"kid=")?;
        let time = parts.next()?.strip_prefix(b"t=")?;
        let sig = parts.next()?.strip_prefix(b"sig=")?;
        if parts.next().is_some()
            || key_id.is_empty()
            || time.is_empty()
            || time.len() > 20
            || !time.iter().all(u8::is_ascii_digit)
            || sig.len() != TAG_B64_LEN
        {
            return None;
        }
        let time = std::str::from_utf8(time).ok()?.parse().ok()?;
        let mut decoded = [0u8; 48];
        let len = URL_SAFE_NO_PAD.decode_slice(sig, &mut decoded).ok()?;
        let tag = decoded.get(..len)?.try_into().ok()?;
        Some(Self { key_id, time, tag })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const OLD: &str = "old-key-0123456789-0123456789-0123456789";
    const NEW: &str = "new-key-0123456789-0123456789-0123456789";
    const NOW: u64 = 1_767_225_600;

    fn identity() -> IdentityFields {
        IdentityFields::new(b"u-1", b"user", b"orders:read", b"t-1")
    }

    fn line(method: &'static str, target: &'static str) -> RequestLine<'static> {
        RequestLine { method, target }
    }

    fn ring(keys: &str) -> KeyRing {
        KeyRing::parse(keys).unwrap()
    }

    #[test]
    fn a_signature_verifies_for_its_request_and_identity_only() {
        let keys = ring(OLD);
        let request = line("GET", "/v1/orders/1?x=1");
        let signature = keys.sign(NOW, request, &identity());
        assert_eq!(
            keys.verify(signature.as_bytes(), NOW, request, &identity()),
            Ok(())
        );

        let other_identities = [
            IdentityFields::new(b"u-2", b"user", b"orders:read", b"t-1"),
            IdentityFields::new(b"u-1", b"user admin", b"orders:read", b"t-1"),
            IdentityFields::new(b"u-1", b"user", b"orders:read orders:fulfil", b"t-1"),
            IdentityFields::new(b"u-1", b"user", b"orders:read", b""),
            // The same bytes split otherwise between fields.
            IdentityFields::new(b"u-1user", b"", b"orders:read", b"t-1"),
        ];
        for other in other_identities {
            assert_eq!(
                keys.verify(signature.as_bytes(), NOW, request, &other),
                Err(Rejection::Mismatch),
                "{other:?}"
            );
        }
        for other in [
            line("DELETE", "/v1/orders/1?x=1"),
            line("GET", "/v1/orders/2?x=1"),
            line("GET", "/v1/orders/1?x=2"),
            line("GET", "/v1/orders/1"),
        ] {
            assert_eq!(
                keys.verify(signature.as_bytes(), NOW, other, &identity()),
                Err(Rejection::Mismatch),
                "{other:?}"
            );
        }
    }

    #[test]
    fn the_format_is_pinned() {
        // Gateway and services may run different releases during a roll: the wire format must
        // not change without a new version.
        let signature = ring(OLD).sign(NOW, line("GET", "/v1/users"), &identity());
        let text = signature.as_str();
        let id = ring(OLD).signing_id().to_string();
        assert!(
            text.starts_with(&format!("v1;kid={id};t={NOW};sig=")),
            "{text}"
        );
        assert_eq!(text.len(), "v1;kid=;t=;sig=".len() + 12 + 10 + 43);
        assert_eq!(text, PINNED, "the signature format changed");
    }

    /// Computed independently (Python's hmac over the documented input, docs/contracts.md).
    const PINNED: &str =
        "v1;kid=c7e6820be266;t=1767225600;sig=byULp48x2SOFYywArSy7VJbdXrhy5BkXZfbM86AuW9A";

    #[test]
    fn the_time_must_be_within_the_skew() {
        let keys = ring(OLD);
        let request = line("GET", "/v1/users");
        let signature = keys.sign(NOW, request, &identity());
        for now in [NOW - MAX_SKEW_SECONDS, NOW + MAX_SKEW_SECONDS] {
            assert_eq!(
                keys.verify(signature.as_bytes(), now, request, &identity()),
                Ok(())
            );
        }
        for now in [NOW - MAX_SKEW_SECONDS - 1, NOW + MAX_SKEW_SECONDS + 1] {
            assert_eq!(
                keys.verify(signature.as_bytes(), now, request, &identity()),
                Err(Rejection::Stale {
                    age: MAX_SKEW_SECONDS + 1
                })
            );
        }
        // A later time written into a captured signature breaks the MAC.
        let moved = signature
            .as_str()
            .replace(&format!("t={NOW}"), &format!("t={}", NOW + 100));
        assert_eq!(
            keys.verify(moved.as_bytes(), NOW + 100, request, &identity()),
            Err(Rejection::Mismatch)
        );
    }

    #[test]
    fn keys_rotate_without_a_moment_of_refusal() {
        let request = line("POST", "/v1/orders");
        let step0 = ring(OLD);
        let step1 = ring(&format!("{OLD},{NEW}"));
        let step2 = ring(&format!("{NEW},{OLD}"));
        let step3 = ring(NEW);
        // During each roll, gateways of two adjacent steps sign and services of two adjacent
        // steps verify: every combination must pass.
        for (a, b) in [(&step0, &step1), (&step1, &step2), (&step2, &step3)] {
            for signer in [a, b] {
                let signature = signer.sign(NOW, request, &identity());
                for verifier in [a, b] {
                    assert_eq!(
                        verifier.verify(signature.as_bytes(), NOW, request, &identity()),
                        Ok(())
                    );
                }
            }
        }
        let signature = step0.sign(NOW, request, &identity());
        assert!(matches!(
            step3.verify(signature.as_bytes(), NOW, request, &identity()),
            Err(Rejection::UnknownKey { .. })
        ));
    }

    #[test]
    fn the_cached_identity_state_belongs_to_one_key() {
        // One IdentityFields (as the gateway caches it with a token) used with two keys: each
        // signature is the one a fresh computation gives.
        let cached = identity();
        let request = line("GET", "/v1/users");
        let (old, new) = (ring(OLD), ring(NEW));
        let by_old = old.sign(NOW, request, &cached);
        let by_new = new.sign(NOW, request, &cached);
        assert_eq!(
            by_old.as_str(),
            old.sign(NOW, request, &identity()).as_str()
        );
        assert_eq!(
            by_new.as_str(),
            new.sign(NOW, request, &identity()).as_str()
        );
        assert_eq!(new.verify(by_new.as_bytes(), NOW, request, &cached), Ok(()));
        assert!(
            new.verify(by_old.as_bytes(), NOW, request, &cached)
                .is_err()
        );
        let debug = format!("{cached:?}");
        assert!(!debug.contains("u-1"), "{debug}");
    }

    #[test]
    fn anything_but_the_exact_format_is_malformed() {
        let keys = ring(OLD);
        let request = line("GET", "/");
        let good = keys.sign(NOW, request, &identity()).as_str().to_owned();
        let id = keys.signing_id().to_string();
        let sig = good.rsplit_once("sig=").unwrap().1.to_owned();
        let cases = [
            String::new(),
            "v1".to_owned(),
            good.replace("v1;", "v2;"),
            format!("{good};extra=1"),
            format!("v1;t={NOW};kid={id};sig={sig}"),
            good.replace(&format!("t={NOW}"), "t=-5"),
            good.replace(&format!("t={NOW}"), "t="),
            good.replace(&format!("t={NOW}"), "t=99999999999999999999999"),
            good.replace(&sig, &sig[1..]),
            good.replace(&sig, &format!("{}=", &sig[1..])),
            good.replace(&sig, &format!("{sig}A")),
            good.replace("kid=", "kid=;"),
        ];
        for case in cases {
            assert!(
                matches!(
                    keys.verify(case.as_bytes(), NOW, request, &identity()),
                    Err(Rejection::Malformed | Rejection::UnknownKey { .. })
                ),
                "{case}"
            );
        }
        let wrong_key = ring(NEW).sign(NOW, request, &identity());
        assert!(matches!(
            keys.verify(wrong_key.as_bytes(), NOW, request, &identity()),
            Err(Rejection::UnknownKey { .. })
        ));
    }
}
