//! A JWKS document fetched over HTTP(S), cached, refreshed periodically and on unknown key IDs.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant};

use arc_swap::ArcSwap;
use bytes::Bytes;
use http::Uri;
use http_body_util::{BodyExt, Empty, Limited};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use jsonwebtoken::jwk::{AlgorithmParameters, EllipticCurve, Jwk, JwkSet, PublicKeyUse};
use jsonwebtoken::{Algorithm, DecodingKey};

use crate::proxy::{HttpsConnector, build_connector};

/// How often keys are refreshed when nothing asks for it earlier.
pub const REFRESH_INTERVAL: Duration = Duration::from_secs(300);
/// Retry delay after a failed fetch.
const RETRY_INTERVAL: Duration = Duration::from_secs(10);
/// Lower bound between two fetches triggered by unknown key IDs: a client sending random
/// `kid`s must not turn the gateway into a load generator against the identity provider.
pub const MIN_ON_DEMAND_INTERVAL: Duration = Duration::from_secs(10);
const FETCH_TIMEOUT: Duration = Duration::from_secs(5);
const MAX_JWKS_BYTES: usize = 1024 * 1024;

#[derive(Debug, thiserror::Error)]
pub enum JwksError {
    #[error("failed to parse JWKS URL: {0}")]
    Url(String),
    #[error("failed to build the JWKS HTTP client: {0}")]
    Client(String),
    #[error("failed to fetch JWKS from {url}: {reason}")]
    Fetch { url: String, reason: String },
    #[error("failed to fetch JWKS from {url}: HTTP status {status}")]
    Status { url: String, status: u16 },
    #[error("failed to parse JWKS from {url}: {reason}")]
    Parse { url: String, reason: String },
}

/// Which signature family a key belongs to, so a key is never used with another family's algorithm.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyFamily {
    Rsa,
    EcP256,
    EcP384,
}

impl KeyFamily {
    pub fn accepts(self, algorithm: Algorithm) -> bool {
        match self {
            Self::Rsa => matches!(
                algorithm,
                Algorithm::RS256
                    | Algorithm::RS384
                    | Algorithm::RS512
                    | Algorithm::PS256
                    | Algorithm::PS384
                    | Algorithm::PS512
            ),
            Self::EcP256 => algorithm == Algorithm::ES256,
            Self::EcP384 => algorithm == Algorithm::ES384,
        }
    }
}

pub struct VerificationKey {
    pub key: DecodingKey,
    pub family: KeyFamily,
    /// The `alg` the JWK pins, if it names one.
    pub algorithm: Option<Algorithm>,
}

#[derive(Default)]
pub struct KeySet {
    by_kid: HashMap<String, Arc<VerificationKey>>,
    without_kid: Vec<Arc<VerificationKey>>,
}

impl KeySet {
    /// Converts a JWKS document, skipping keys that cannot verify signatures here.
    pub fn from_jwks(set: &JwkSet) -> Self {
        let mut keys = KeySet::default();
        for jwk in &set.keys {
            match verification_key(jwk) {
                Some(key) => match &jwk.common.key_id {
                    Some(kid) => {
                        keys.by_kid.insert(kid.clone(), Arc::new(key));
                    }
                    None => keys.without_kid.push(Arc::new(key)),
                },
                None => tracing::debug!(
                    kid = jwk.common.key_id.as_deref().unwrap_or(""),
                    "skipping JWK that cannot verify signatures"
                ),
            }
        }
        keys
    }

    /// The key for a token header: by `kid`, or the only compatible key when the token has none.
    pub fn find(&self, kid: Option<&str>, algorithm: Algorithm) -> Option<Arc<VerificationKey>> {
        match kid {
            Some(kid) => self.by_kid.get(kid).cloned(),
            None => {
                let mut compatible = self
                    .by_kid
                    .values()
                    .chain(self.without_kid.iter())
                    .filter(|key| key.family.accepts(algorithm));
                let first = compatible.next()?;
                // With several candidates and no kid, picking one would be a guess.
                compatible.next().is_none().then(|| first.clone())
            }
        }
    }

    pub fn len(&self) -> usize {
        self.by_kid.len() + self.without_kid.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

fn verification_key(jwk: &Jwk) -> Option<VerificationKey> {
    if matches!(jwk.common.public_key_use, Some(PublicKeyUse::Encryption)) {
        return None;
    }
    let family = match &jwk.algorithm {
        AlgorithmParameters::RSA(_) => KeyFamily::Rsa,
        AlgorithmParameters::EllipticCurve(ec) => match ec.curve {
            EllipticCurve::P256 => KeyFamily::EcP256,
            EllipticCurve::P384 => KeyFamily::EcP384,
            _ => return None,
        },
        // Symmetric keys in a public JWKS would let anyone who reads it mint tokens.
        AlgorithmParameters::OctetKey(_) | AlgorithmParameters::OctetKeyPair(_) => return None,
    };
    let algorithm = match jwk.common.key_algorithm {
        None => None,
        Some(alg) => Some(alg.to_string().parse::<Algorithm>().ok()?),
    };
    if algorithm.is_some_and(|alg| !family.accepts(alg)) {
        return None;
    }
    let key = DecodingKey::from_jwk(jwk).ok()?;
    Some(VerificationKey {
        key,
        family,
        algorithm,
    })
}

/// Cached keys from a JWKS URL.
pub struct JwksCache {
    url: Uri,
    client: Client<HttpsConnector, Empty<Bytes>>,
    keys: ArcSwap<KeySet>,
    loaded: std::sync::atomic::AtomicBool,
    /// Bumped whenever the key set changes, so verified-token caches can drop stale entries.
    generation: AtomicU64,
    last_fetch: Mutex<Option<Instant>>,
    fetch_lock: tokio::sync::Mutex<()>,
}

impl JwksCache {
    /// Creates the cache and starts its refresh task (which stops when the cache is dropped).
    /// Must be called inside a Tokio runtime.
    pub fn start(url: &str) -> Result<Arc<Self>, JwksError> {
        let url: Uri = url.parse().map_err(|_| JwksError::Url(url.to_owned()))?;
        let connector = build_connector().map_err(|err| JwksError::Client(err.to_string()))?;
        let client = Client::builder(TokioExecutor::new()).build(connector);
        let cache = Arc::new(Self {
            url,
            client,
            keys: ArcSwap::from_pointee(KeySet::default()),
            loaded: std::sync::atomic::AtomicBool::new(false),
            generation: AtomicU64::new(0),
            last_fetch: Mutex::new(None),
            fetch_lock: tokio::sync::Mutex::new(()),
        });
        tokio::spawn(refresh_loop(Arc::downgrade(&cache)));
        Ok(cache)
    }

    /// Whether a key set has been loaded at least once.
    pub fn is_loaded(&self) -> bool {
        self.loaded.load(Ordering::Acquire)
    }

    pub fn generation(&self) -> u64 {
        self.generation.load(Ordering::Acquire)
    }

    pub fn keys(&self) -> arc_swap::Guard<Arc<KeySet>> {
        self.keys.load()
    }

    /// Fetches now unless another fetch ran within `min_interval`; returns whether it fetched.
    pub async fn refresh_if_stale(&self, min_interval: Duration) -> Result<bool, JwksError> {
        let _guard = self.fetch_lock.lock().await;
        let recent = self
            .last_fetch
            .lock()
            .map(|last| last.is_some_and(|at| at.elapsed() < min_interval))
            .unwrap_or(false);
        if recent {
            return Ok(false);
        }
        if let Ok(mut last) = self.last_fetch.lock() {
            *last = Some(Instant::now());
        }
        let set = self.fetch().await?;
        let keys = KeySet::from_jwks(&set);
        tracing::info!(url = %self.url, keys = keys.len(), "loaded JWKS");
        self.keys.store(Arc::new(keys));
        self.generation.fetch_add(1, Ordering::AcqRel);
        self.loaded.store(true, Ordering::Release);
        Ok(true)
    }

    async fn fetch(&self) -> Result<JwkSet, JwksError> {
        let url = self.url.to_string();
        let fetch_error = |reason: String| JwksError::Fetch {
            url: url.clone(),
            reason,
        };
        let request = http::Request::get(self.url.clone())
            .header(http::header::ACCEPT, "application/json")
            .body(Empty::new())
            .map_err(|err| fetch_error(err.to_string()))?;
        let response = tokio::time::timeout(FETCH_TIMEOUT, self.client.request(request))
            .await
            .map_err(|_| fetch_error("timed out".to_owned()))?
            .map_err(|err| fetch_error(err.to_string()))?;
        if !response.status().is_success() {
            return Err(JwksError::Status {
                url,
                status: response.status().as_u16(),
            });
        }
        let body = tokio::time::timeout(
            FETCH_TIMEOUT,
            Limited::new(response.into_body(), MAX_JWKS_BYTES).collect(),
        )
        .await
        .map_err(|_| fetch_error("timed out reading the body".to_owned()))?
        .map_err(|err| fetch_error(err.to_string()))?
        .to_bytes();
        serde_json::from_slice(&body).map_err(|err| JwksError::Parse {
            url,
            reason: err.to_string(),
        })
    }
}

async fn refresh_loop(cache: Weak<JwksCache>) {
    loop {
        let Some(strong) = cache.upgrade() else {
            return;
        };
        let delay = match strong.refresh_if_stale(Duration::ZERO).await {
            Ok(_) => REFRESH_INTERVAL,
            Err(err) => {
                tracing::warn!(error = %err, "JWKS refresh failed; keeping the previous keys");
                RETRY_INTERVAL
            }
        };
        drop(strong);
        tokio::time::sleep(delay).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(json: &str) -> KeySet {
        KeySet::from_jwks(&serde_json::from_str(json).unwrap())
    }

    const RSA_N: &str = "u1SU1LfVLPHCozMxH2Mo4lgOEePzNm0tRgeLezV6ffAt0gunVTLw7onLRnrq0_IzW7yWR7QkrmBL7jTKEn5u-qKhbwKfBstIs-bMY2Zkp18gnTxKLxoS2tFczGkPLPgizskuemMghRniWaoLcyehkd3qqGElvW_VDL5AaWTg0nLVkjRo9z-40RQzuVaE8AkAFmxZzow3x-VJYKdjykkJ0iT9wCS0DRTXu269V264Vf_3jvredZiKRkgwlL9xNAwxXFg0x_XFw005UWVRIkdgcKWTjpBP2dPwVZ4WWC-9aGVd-Gyn1o0CLelf4rEjGoXbAAEgAqeGUxrcIlbjXfbcmw";

    #[test]
    fn skips_symmetric_and_encryption_keys() {
        let keys = set(&format!(
            r#"{{"keys":[
              {{"kty":"oct","kid":"h","k":"c2VjcmV0"}},
              {{"kty":"RSA","kid":"enc","use":"enc","n":"{RSA_N}","e":"AQAB"}},
              {{"kty":"RSA","kid":"sig","use":"sig","alg":"RS256","n":"{RSA_N}","e":"AQAB"}}
            ]}}"#
        ));
        assert_eq!(keys.len(), 1);
        assert!(keys.find(Some("h"), Algorithm::HS256).is_none());
        assert!(keys.find(Some("enc"), Algorithm::RS256).is_none());
        assert!(keys.find(Some("sig"), Algorithm::RS256).is_some());
    }

    #[test]
    fn key_pinned_to_another_family_is_dropped() {
        let keys = set(&format!(
            r#"{{"keys":[{{"kty":"RSA","kid":"x","alg":"ES256","n":"{RSA_N}","e":"AQAB"}}]}}"#
        ));
        assert!(keys.is_empty());
    }

    #[test]
    fn token_without_kid_needs_a_single_compatible_key() {
        let one = set(&format!(
            r#"{{"keys":[{{"kty":"RSA","kid":"a","n":"{RSA_N}","e":"AQAB"}}]}}"#
        ));
        assert!(one.find(None, Algorithm::RS256).is_some());
        assert!(one.find(None, Algorithm::ES256).is_none());
        let two = set(&format!(
            r#"{{"keys":[{{"kty":"RSA","kid":"a","n":"{RSA_N}","e":"AQAB"}},{{"kty":"RSA","kid":"b","n":"{RSA_N}","e":"AQAB"}}]}}"#
        ));
        assert!(two.find(None, Algorithm::RS256).is_none());
    }
}
