//! The gateway's signature over the identity it sends to the platform's services.
//!
//! The gateway verifies a caller's token and passes the caller on in `x-panthera-*` headers
//! (`docs/contracts.md`). A service must not believe those headers from whoever reaches it: a
//! NetworkPolicy is only a request to the network plugin, and many plugins do not enforce it. So
//! the gateway adds `x-panthera-signature`, an HMAC-SHA256 made with a key only the gateway and
//! the services hold, over:
//!
//! - the identity headers' values (subject, roles, scopes, token id),
//! - the request's method and target (path and query as sent), so a signature cannot be moved
//!   onto another request,
//! - the time of signing, so a captured signature expires: services accept it within
//!   [`MAX_SKEW_SECONDS`] of their own clock.
//!
//! A signature can be replayed on the same method and target within that window (there is no
//! nonce store); doing so needs a request captured inside the cluster, which would carry the
//! caller's bearer token anyway.
//!
//! Keys ([`KeyRing`], the `IDENTITY_KEYS` variable) are listed comma-separated; the first signs
//! and every one verifies, which is how keys rotate without downtime: add the new key second,
//! roll; move it first, roll; remove the old one, roll.

mod keys;
mod signature;

pub use keys::{KEYS_ENV, KeyError, KeyId, KeyRing, MAX_KEYS, MIN_KEY_BYTES};
pub use signature::{
    IdentityFields, MAX_SKEW_SECONDS, Rejection, RequestLine, SIGNATURE_HEADER, Signature, unix_now,
};
