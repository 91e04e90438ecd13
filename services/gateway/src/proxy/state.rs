//! What the gateway builds from one configuration file, and the knobs that come from elsewhere.

use std::sync::Arc;
use std::time::Duration;

use panthera_identity::KeyRing;
use tower_http::cors::CorsLayer;

use super::{ProxyError, Result};
use crate::auth::JwtValidator;
use crate::cache::ResponseCache;
use crate::client_addr::ClientAddressPolicy;
use crate::config::{CacheConfig, GatewayConfig, RateLimitConfig};
use crate::cors::cors_layer;
use crate::ratelimit::RateLimiter;
use crate::routing::RouteTable;

/// Where variables named by the config (`hs256SecretEnv`, `redisUrlEnv`, `signingKeysEnv`) are
/// looked up:
/// the process environment, or a fixed map (tests, which may not mutate the process env).
#[derive(Clone)]
pub struct Environment(Arc<EnvLookup>);

type EnvLookup = dyn Fn(&str) -> Option<String> + Send + Sync;

impl Environment {
    pub fn process() -> Self {
        Self(Arc::new(|name| std::env::var(name).ok()))
    }

    pub fn from_pairs<I, K, V>(pairs: I) -> Self
    where
        I: IntoIterator<Item = (K, V)>,
        K: Into<String>,
        V: Into<String>,
    {
        let map: std::collections::HashMap<String, String> = pairs
            .into_iter()
            .map(|(name, value)| (name.into(), value.into()))
            .collect();
        Self(Arc::new(move |name| map.get(name).cloned()))
    }

    pub fn var(&self, name: &str) -> Option<String> {
        (self.0)(name)
    }
}

impl std::fmt::Debug for Environment {
    // Values may be secrets, so they are never printed.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Environment(..)")
    }
}

/// Knobs that are not part of the configuration file.
#[derive(Debug, Clone)]
pub struct GatewayOptions {
    /// Prefix of the Redis keys holding shared rate-limit buckets.
    pub redis_key_prefix: String,
    /// Emit one JSON access-log event per request (target `panthera_gateway::access`).
    pub access_log: bool,
    pub environment: Environment,
    /// Minimum time between JWKS fetches triggered by tokens with an unknown key ID.
    pub jwks_min_refresh_interval: Duration,
}

impl Default for GatewayOptions {
    fn default() -> Self {
        Self {
            redis_key_prefix: "panthera:gateway:ratelimit:".to_owned(),
            access_log: true,
            environment: Environment::process(),
            jwks_min_refresh_interval: crate::auth::jwks::MIN_ON_DEMAND_INTERVAL,
        }
    }
}

/// Everything derived from one configuration file.
pub struct GatewayState {
    pub config: GatewayConfig,
    pub(super) routes: RouteTable,
    pub(super) jwt: Option<Arc<JwtValidator>>,
    pub(super) rate_limiter: Option<Arc<RateLimiter>>,
    pub(super) cors: Option<CorsLayer>,
    pub(super) cache: Option<Arc<ResponseCache>>,
    pub(super) client_address: ClientAddressPolicy,
    /// Signs the identity headers sent upstream; `None`: they go unsigned.
    pub(super) identity_keys: Option<Arc<KeyRing>>,
}

impl GatewayState {
    /// Builds runtime state, reusing the rate limiter and cache of `previous` when their sections
    /// did not change (so a reload does not reset buckets or drop cached responses).
    pub(super) fn build(
        config: GatewayConfig,
        previous: Option<&GatewayState>,
        options: &GatewayOptions,
    ) -> Result<Self> {
        let routes = RouteTable::from_config_reusing(&config, previous.map(|prev| &prev.routes))?;
        let jwt = match config.jwt() {
            None => None,
            Some(jwt_config) => match previous {
                Some(prev) if prev.config.jwt() == Some(jwt_config) && prev.jwt.is_some() => {
                    prev.jwt.clone()
                }
                _ => Some(Arc::new(JwtValidator::from_config(
                    jwt_config,
                    &options.environment,
                    options.jwks_min_refresh_interval,
                )?)),
            },
        };
        let rate_limiter = match &config.rate_limit {
            None => None,
            Some(rate) => {
                reuse_if_same(previous, rate, |p| (&p.config.rate_limit, &p.rate_limiter))
                    .map(Ok)
                    .unwrap_or_else(|| {
                        RateLimiter::from_config(
                            rate,
                            &options.redis_key_prefix,
                            &options.environment,
                        )
                        .map(Arc::new)
                    })
                    .map(Some)?
            }
        };
        let cache = match &config.cache {
            None => None,
            Some(cache_config) => reuse_cache(previous, &config, cache_config)
                .or_else(|| ResponseCache::from_config(cache_config).map(Arc::new)),
        };
        let cors = config.cors.as_ref().map(cors_layer);
        let client_address =
            ClientAddressPolicy::new(config.trusted_proxies()?, config.client_address_header);
        let identity_keys = match &config.identity {
            None => None,
            Some(identity) => Some(Arc::new(identity_keys(
                &identity.signing_keys_env,
                &options.environment,
            )?)),
        };
        Ok(Self {
            config,
            routes,
            jwt,
            rate_limiter,
            cors,
            cache,
            client_address,
            identity_keys,
        })
    }

    /// Whether everything needed to serve requests is loaded (JWKS fetched when configured).
    pub fn is_ready(&self) -> bool {
        self.jwt.as_ref().is_none_or(|jwt| jwt.is_ready())
    }
}

/// The signing keys from the variable `env` names; errors name the variable, never its value.
fn identity_keys(env: &str, environment: &Environment) -> Result<KeyRing> {
    let text = environment
        .var(env)
        .ok_or_else(|| ProxyError::IdentityKeys {
            env: env.to_owned(),
            reason: "the variable is not set".to_owned(),
        })?;
    KeyRing::parse(&text).map_err(|err| ProxyError::IdentityKeys {
        env: env.to_owned(),
        reason: err.to_string(),
    })
}

fn reuse_if_same<'a>(
    previous: Option<&'a GatewayState>,
    section: &RateLimitConfig,
    select: impl Fn(&'a GatewayState) -> (&'a Option<RateLimitConfig>, &'a Option<Arc<RateLimiter>>),
) -> Option<Arc<RateLimiter>> {
    let (old_section, old_limiter) = select(previous?);
    (old_section.as_ref() == Some(section)).then(|| old_limiter.clone())?
}

fn reuse_cache(
    previous: Option<&GatewayState>,
    config: &GatewayConfig,
    section: &CacheConfig,
) -> Option<Arc<ResponseCache>> {
    let previous = previous?;
    // Routes may now point elsewhere, so cached responses survive only an identical route table.
    (previous.config.cache.as_ref() == Some(section) && previous.config.routes == config.routes)
        .then(|| previous.cache.clone())?
}
