//! JWT validation: HS256 with a shared secret, or RS*/PS*/ES* keys from a JWKS.
//!
//! The accepted algorithm follows from the configured key source, never from the token alone:
//! an HS256 gateway accepts only HS256, a JWKS gateway only asymmetric algorithms matching the
//! selected key's type. That rules out `alg: none` and algorithm confusion (for example an
//! HS256 token "signed" with a public RSA key).

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::{Algorithm, DecodingKey, Validation, decode, decode_header};
use serde_json::{Map, Value};

use super::identity::Identity;
use super::jwks::{JwksCache, JwksError};
use crate::config::JwtConfig;
use crate::proxy::Environment;

/// Why a request was not authenticated. Messages are safe to return to clients.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    #[error("missing bearer token")]
    MissingToken,
    #[error("malformed bearer token")]
    MalformedToken,
    #[error("token algorithm is not accepted")]
    AlgorithmNotAccepted,
    #[error("token is signed by an unknown key")]
    UnknownKey,
    #[error("token signature is invalid")]
    InvalidSignature,
    #[error("token has expired")]
    Expired,
    #[error("token is not valid yet")]
    NotYetValid,
    #[error("token issuer is not accepted")]
    InvalidIssuer,
    #[error("token audience is not accepted")]
    InvalidAudience,
    #[error("token lacks required claim `{0}`")]
    MissingClaim(String),
    #[error("token claims are invalid")]
    InvalidClaims,
    #[error("signing keys are not available yet")]
    KeysUnavailable,
}

/// What the gateway keeps from a validated token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifiedToken {
    pub identity: Arc<Identity>,
}

impl VerifiedToken {
    pub fn subject(&self) -> Option<&Arc<str>> {
        self.identity.subject.as_ref()
    }
}

#[derive(Debug, thiserror::Error)]
#[error("failed to configure JWT validation: {0}")]
pub struct JwtSetupError(String);

impl From<JwksError> for JwtSetupError {
    fn from(err: JwksError) -> Self {
        Self(err.to_string())
    }
}

enum KeySource {
    Hs256(DecodingKey),
    Jwks(Arc<JwksCache>),
}

#[derive(Clone)]
struct CachedToken {
    identity: Arc<Identity>,
    verified_at: Instant,
    /// Unix seconds after which the token is no longer accepted (exp + leeway).
    valid_until: u64,
    key_generation: u64,
}

/// Verified tokens are remembered briefly (see [`JwtValidator::verify`]).
const TOKEN_CACHE_ENTRIES: usize = 50_000;
const TOKEN_CACHE_TTL: Duration = Duration::from_secs(60);

pub struct JwtValidator {
    source: KeySource,
    validations: Vec<(Algorithm, Validation)>,
    leeway: u64,
    roles_claim: Box<str>,
    scopes_claim: Box<str>,
    min_refresh_interval: Duration,
    // quick_cache rather than moka here: this lookup is on every protected request, and
    // quick_cache's get is a plain sharded hash lookup without read-side bookkeeping.
    verified: quick_cache::sync::Cache<Box<str>, CachedToken>,
}

/// Claims are kept as a map: which ones hold roles and scopes is configurable.
type Claims = Map<String, Value>;

const ASYMMETRIC: &[Algorithm] = &[
    Algorithm::RS256,
    Algorithm::RS384,
    Algorithm::RS512,
    Algorithm::PS256,
    Algorithm::PS384,
    Algorithm::PS512,
    Algorithm::ES256,
    Algorithm::ES384,
];

impl JwtValidator {
    /// Builds the validator; reads the HS256 secret from its environment variable or starts the
    /// JWKS refresh task (so it must run inside a Tokio runtime for JWKS).
    pub fn from_config(
        config: &JwtConfig,
        environment: &Environment,
        min_refresh_interval: Duration,
    ) -> Result<Self, JwtSetupError> {
        let source = match (&config.jwks_url, &config.hs256_secret_env) {
            (Some(url), _) => KeySource::Jwks(JwksCache::start(url)?),
            (None, Some(env)) => {
                // The value is a secret: only the variable's name may appear in errors.
                let secret = environment.var(env).ok_or_else(|| {
                    JwtSetupError(format!(
                        "environment variable `{env}` (auth.jwt.hs256SecretEnv) is not set"
                    ))
                })?;
                if secret.is_empty() {
                    return Err(JwtSetupError(format!(
                        "environment variable `{env}` (auth.jwt.hs256SecretEnv) is empty"
                    )));
                }
                KeySource::Hs256(DecodingKey::from_secret(secret.as_bytes()))
            }
            (None, None) => {
                return Err(JwtSetupError(
                    "one of jwksUrl and hs256SecretEnv must be set".to_owned(),
                ));
            }
        };
        Ok(Self::new(source, config, min_refresh_interval))
    }

    fn new(source: KeySource, config: &JwtConfig, min_refresh_interval: Duration) -> Self {
        let algorithms: &[Algorithm] = match source {
            KeySource::Hs256(_) => &[Algorithm::HS256],
            KeySource::Jwks(_) => ASYMMETRIC,
        };
        // Built once: a Validation holds several sets that would otherwise be rebuilt per request.
        let validations = algorithms
            .iter()
            .map(|&algorithm| {
                let mut validation = Validation::new(algorithm);
                validation.algorithms = vec![algorithm];
                validation.leeway = config.leeway_seconds;
                validation.validate_exp = true;
                validation.validate_nbf = true;
                validation.set_issuer(&[config.issuer.as_str()]);
                validation.set_audience(&config.audiences);
                validation.set_required_spec_claims(&["exp", "iss", "aud"]);
                (algorithm, validation)
            })
            .collect();
        Self {
            min_refresh_interval,
            source,
            validations,
            leeway: config.leeway_seconds,
            roles_claim: config.roles_claim.as_str().into(),
            scopes_claim: config.scopes_claim.as_str().into(),
            verified: quick_cache::sync::Cache::new(TOKEN_CACHE_ENTRIES),
        }
    }

    /// Whether the validator can verify tokens (JWKS loaded, or HS256).
    pub fn is_ready(&self) -> bool {
        match &self.source {
            KeySource::Hs256(_) => true,
            KeySource::Jwks(jwks) => jwks.is_loaded(),
        }
    }

    fn validation(&self, algorithm: Algorithm) -> Option<&Validation> {
        self.validations
            .iter()
            .find(|(alg, _)| *alg == algorithm)
            .map(|(_, validation)| validation)
    }

    /// Validates a compact JWS token.
    pub async fn verify(&self, token: &str) -> Result<VerifiedToken, AuthError> {
        // Full verification (base64, JSON, signature) costs microseconds even for HS256 and tens
        // of microseconds for RSA; a token verified recently is answered from memory until its
        // own expiry, and only while the key set that verified it is unchanged.
        let generation = match &self.source {
            KeySource::Hs256(_) => 0,
            KeySource::Jwks(jwks) => jwks.generation(),
        };
        if let Some(cached) = self.verified.get(token)
            && cached.key_generation == generation
            && cached.verified_at.elapsed() < TOKEN_CACHE_TTL
            && now_unix() <= cached.valid_until
        {
            return Ok(VerifiedToken {
                identity: cached.identity,
            });
        }
        let claims = match &self.source {
            KeySource::Hs256(key) => {
                let header = decode_header(token).map_err(header_error)?;
                if header.alg != Algorithm::HS256 {
                    return Err(AuthError::AlgorithmNotAccepted);
                }
                self.decode(token, key, Algorithm::HS256)?
            }
            KeySource::Jwks(jwks) => self.verify_with_jwks(token, jwks).await?,
        };
        let identity = Arc::new(Identity::from_claims(
            &claims,
            &self.roles_claim,
            &self.scopes_claim,
        )?);
        if let Some(exp) = claims.get("exp").and_then(Value::as_f64) {
            // `exp` was validated, so it is a finite non-negative number.
            let valid_until = (exp as u64).saturating_add(self.leeway);
            self.verified.insert(
                Box::from(token),
                CachedToken {
                    identity: Arc::clone(&identity),
                    verified_at: Instant::now(),
                    valid_until,
                    key_generation: generation,
                },
            );
        }
        Ok(VerifiedToken { identity })
    }

    async fn verify_with_jwks(&self, token: &str, jwks: &JwksCache) -> Result<Claims, AuthError> {
        let header = decode_header(token).map_err(header_error)?;
        if !ASYMMETRIC.contains(&header.alg) {
            return Err(AuthError::AlgorithmNotAccepted);
        }
        let mut key = jwks.keys().find(header.kid.as_deref(), header.alg);
        if key.is_none() {
            // A new signing key may have been published since the last refresh.
            if let Err(err) = jwks.refresh_if_stale(self.min_refresh_interval).await {
                tracing::warn!(error = %err, "JWKS refresh for an unknown key failed");
            }
            key = jwks.keys().find(header.kid.as_deref(), header.alg);
        }
        let Some(key) = key else {
            return Err(if jwks.is_loaded() {
                AuthError::UnknownKey
            } else {
                AuthError::KeysUnavailable
            });
        };
        if !key.family.accepts(header.alg) || key.algorithm.is_some_and(|alg| alg != header.alg) {
            return Err(AuthError::AlgorithmNotAccepted);
        }
        self.decode(token, &key.key, header.alg)
    }

    fn decode(
        &self,
        token: &str,
        key: &DecodingKey,
        algorithm: Algorithm,
    ) -> Result<Claims, AuthError> {
        let validation = self
            .validation(algorithm)
            .ok_or(AuthError::AlgorithmNotAccepted)?;
        decode::<Claims>(token, key, validation)
            .map(|data| data.claims)
            .map_err(|err| match err.into_kind() {
                ErrorKind::InvalidSignature => AuthError::InvalidSignature,
                ErrorKind::ExpiredSignature => AuthError::Expired,
                ErrorKind::ImmatureSignature => AuthError::NotYetValid,
                ErrorKind::InvalidIssuer => AuthError::InvalidIssuer,
                ErrorKind::InvalidAudience => AuthError::InvalidAudience,
                ErrorKind::MissingRequiredClaim(claim) => AuthError::MissingClaim(claim),
                ErrorKind::InvalidAlgorithm | ErrorKind::InvalidAlgorithmName => {
                    AuthError::AlgorithmNotAccepted
                }
                ErrorKind::InvalidToken
                | ErrorKind::Base64(_)
                | ErrorKind::Utf8(_)
                | ErrorKind::Json(_) => AuthError::MalformedToken,
                _ => AuthError::InvalidClaims,
            })
    }
}

/// `alg: none` and other unknown algorithms fail header parsing, so they are reported as such.
fn header_error(err: jsonwebtoken::errors::Error) -> AuthError {
    match err.kind() {
        ErrorKind::Json(json) if json.to_string().contains("unknown variant") => {
            AuthError::AlgorithmNotAccepted
        }
        ErrorKind::InvalidAlgorithm | ErrorKind::InvalidAlgorithmName => {
            AuthError::AlgorithmNotAccepted
        }
        _ => AuthError::MalformedToken,
    }
}

fn now_unix() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |elapsed| elapsed.as_secs())
}

#[cfg(test)]
mod tests {
    use super::*;
    use jsonwebtoken::{EncodingKey, Header, encode};

    fn validator(secret: &str) -> JwtValidator {
        let config = JwtConfig {
            issuer: "https://issuer".to_owned(),
            audiences: vec!["shop".to_owned()],
            leeway_seconds: 0,
            jwks_url: None,
            hs256_secret_env: Some("UNUSED".to_owned()),
            roles_claim: "roles".to_owned(),
            scopes_claim: "scope".to_owned(),
        };
        JwtValidator::new(
            KeySource::Hs256(DecodingKey::from_secret(secret.as_bytes())),
            &config,
            Duration::ZERO,
        )
    }

    fn token(secret: &str, claims: serde_json::Value) -> String {
        encode(
            &Header::new(Algorithm::HS256),
            &claims,
            &EncodingKey::from_secret(secret.as_bytes()),
        )
        .unwrap()
    }

    #[tokio::test]
    async fn hs256_accepts_valid_and_rejects_wrong_secret() {
        let validator = validator("s3cret");
        let claims = serde_json::json!({
            "sub": "alice", "iss": "https://issuer", "aud": "shop", "exp": now_unix() + 60
        });
        let verified = validator
            .verify(&token("s3cret", claims.clone()))
            .await
            .unwrap();
        assert_eq!(verified.subject().map(|s| &**s), Some("alice"));
        assert_eq!(
            validator.verify(&token("other", claims)).await,
            Err(AuthError::InvalidSignature)
        );
    }

    #[tokio::test]
    async fn garbage_is_malformed() {
        let validator = validator("s3cret");
        for junk in [
            "",
            "a",
            "a.b",
            "a.b.c",
            "....",
            "eyJ.eyJ.x",
            "\u{0}\u{ffff}",
        ] {
            assert!(validator.verify(junk).await.is_err(), "{junk:?}");
        }
    }
}
