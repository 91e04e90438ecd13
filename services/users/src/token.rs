//! HS256 access tokens in the form the gateway's `auth.jwt` verifies (`iss`, `aud`, `exp`).

use std::time::Duration;

use chrono::Utc;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::config::JwtConfig;
use crate::model::User;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Claims {
    /// The user's id.
    pub sub: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub iss: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub aud: Option<String>,
    pub iat: i64,
    pub nbf: i64,
    pub exp: i64,
    /// Unique token id.
    pub jti: String,
    pub email: String,
    /// The user's roles, which the gateway's rules and the services read (`auth.jwt.rolesClaim`).
    pub roles: Vec<String>,
}

pub struct TokenIssuer {
    key: EncodingKey,
    issuer: Option<String>,
    audience: Option<String>,
    ttl: Duration,
}

impl std::fmt::Debug for TokenIssuer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenIssuer")
            .field("issuer", &self.issuer)
            .field("audience", &self.audience)
            .field("ttl", &self.ttl)
            .finish_non_exhaustive()
    }
}

impl TokenIssuer {
    /// `None` when no signing secret is configured.
    pub fn from_config(config: &JwtConfig) -> Option<Self> {
        let secret = config.hs256_secret.as_ref()?.expose();
        if secret.is_empty() {
            return None;
        }
        if secret.len() < 32 {
            tracing::warn!("JWT_HS256_SECRET is shorter than 32 bytes; use a longer random secret");
        }
        Some(Self {
            key: EncodingKey::from_secret(secret.as_bytes()),
            issuer: config.issuer.clone().filter(|s| !s.is_empty()),
            audience: config.audience.clone().filter(|s| !s.is_empty()),
            ttl: Duration::from_secs(config.ttl_seconds.max(1)),
        })
    }

    pub fn ttl(&self) -> Duration {
        self.ttl
    }

    pub fn issue(&self, user: &User) -> Result<String, jsonwebtoken::errors::Error> {
        let now = Utc::now().timestamp();
        let claims = Claims {
            sub: user.id.to_string(),
            iss: self.issuer.clone(),
            aud: self.audience.clone(),
            iat: now,
            nbf: now,
            exp: now.saturating_add(i64::try_from(self.ttl.as_secs()).unwrap_or(i64::MAX)),
            jti: Uuid::new_v4().to_string(),
            email: user.email.clone(),
            roles: user.roles.clone(),
        };
        jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, &self.key)
    }
}
