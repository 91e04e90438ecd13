//! Token-bucket rate limiting per client IP or token subject.
//!
//! Local limiting uses `governor` (GCRA, which admits exactly the same requests as a token bucket
//! of `burst` tokens refilled at `requestsPerSecond`). With `redisUrlEnv` the bucket lives in Redis
//! and is updated atomically by a Lua script (sent with EVALSHA), so every gateway replica shares
//! it; when Redis is unreachable the gateway falls back to its local bucket and logs a warning
//! rather than failing requests or letting them all through.

use std::net::IpAddr;
use std::num::NonZeroU32;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};

use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota};
use redis::aio::ConnectionManager;

use crate::config::{RateLimitConfig, RateLimitKey};
use crate::proxy::Environment;

#[derive(Debug, thiserror::Error)]
pub enum RateLimitError {
    #[error("failed to configure rate limiting: {0}")]
    Config(String),
    #[error("failed to open Redis client for rate limiting: {0}")]
    Redis(#[source] redis::RedisError),
}

/// The identity a bucket belongs to.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum RateKey {
    Ip(IpAddr),
    Subject(Arc<str>),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    Allowed,
    Limited { retry_after: Duration },
}

/// A Redis call slower than this counts as Redis being unavailable.
const REDIS_TIMEOUT: Duration = Duration::from_millis(250);
/// After a Redis failure, stay local this long before trying Redis again.
const REDIS_BACKOFF: Duration = Duration::from_secs(5);
const CLEANUP_INTERVAL: Duration = Duration::from_secs(60);

// Token bucket in a hash {tokens, ts}; time comes from the Redis server so replicas with skewed
// clocks agree. Returns {allowed (0/1), milliseconds until one token is available}.
const TOKEN_BUCKET_LUA: &str = r#"
local rate = tonumber(ARGV[1])
local burst = tonumber(ARGV[2])
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + tonumber(t[2]) / 1000
local state = redis.call('HMGET', KEYS[1], 'tokens', 'ts')
local tokens = tonumber(state[1])
local ts = tonumber(state[2])
if tokens == nil or ts == nil then
  tokens = burst
  ts = now
end
local elapsed = now - ts
if elapsed < 0 then elapsed = 0 end
tokens = math.min(burst, tokens + elapsed * rate / 1000)
local allowed = 0
local wait_ms = 0
if tokens >= 1 then
  tokens = tokens - 1
  allowed = 1
else
  wait_ms = math.ceil((1 - tokens) * 1000 / rate)
end
redis.call('HSET', KEYS[1], 'tokens', string.format('%.17g', tokens), 'ts', string.format('%.17g', now))
redis.call('PEXPIRE', KEYS[1], math.ceil(burst * 1000 / rate) + 1000)
return {allowed, wait_ms}
"#;

pub struct RateLimiter {
    key_kind: RateLimitKey,
    local: Arc<DefaultKeyedRateLimiter<RateKey>>,
    clock: DefaultClock,
    redis: Option<RedisBucket>,
}

struct RedisBucket {
    connection: ConnectionManager,
    script: redis::Script,
    prefix: String,
    rate: f64,
    burst: u32,
    started: Instant,
    /// Milliseconds since `started` until which Redis is skipped (0: healthy).
    skip_until_ms: AtomicU64,
}

impl RateLimiter {
    /// Builds the limiter. `redis_key_prefix` namespaces the shared buckets (tests use a random
    /// one). Must run inside a Tokio runtime (it starts a cleanup task).
    pub fn from_config(
        config: &RateLimitConfig,
        redis_key_prefix: &str,
        environment: &Environment,
    ) -> Result<Self, RateLimitError> {
        let period = Duration::from_secs_f64(1.0 / config.requests_per_second);
        let burst = NonZeroU32::new(config.burst)
            .ok_or_else(|| RateLimitError::Config("rateLimit.burst must be at least 1".into()))?;
        let quota = Quota::with_period(period)
            .ok_or_else(|| {
                RateLimitError::Config("rateLimit.requestsPerSecond is too large".into())
            })?
            .allow_burst(burst);
        let local = Arc::new(DefaultKeyedRateLimiter::keyed(quota));
        tokio::spawn(cleanup_loop(Arc::downgrade(&local)));
        let redis = match &config.redis_url_env {
            None => None,
            Some(env) => {
                // The URL may embed a password: errors name the variable, never its value.
                let url = environment.var(env).ok_or_else(|| {
                    RateLimitError::Config(format!(
                        "environment variable `{env}` (rateLimit.redisUrlEnv) is not set"
                    ))
                })?;
                let client = redis::Client::open(url).map_err(RateLimitError::Redis)?;
                let manager_config = redis::aio::ConnectionManagerConfig::new()
                    .set_connection_timeout(Some(REDIS_TIMEOUT))
                    .set_response_timeout(Some(REDIS_TIMEOUT))
                    .set_number_of_retries(1);
                let connection = ConnectionManager::new_lazy_with_config(client, manager_config)
                    .map_err(RateLimitError::Redis)?;
                Some(RedisBucket {
                    connection,
                    script: redis::Script::new(TOKEN_BUCKET_LUA),
                    prefix: redis_key_prefix.to_owned(),
                    rate: config.requests_per_second,
                    burst: config.burst,
                    started: Instant::now(),
                    skip_until_ms: AtomicU64::new(0),
                })
            }
        };
        Ok(Self {
            key_kind: config.key,
            local,
            clock: DefaultClock::default(),
            redis,
        })
    }

    /// The bucket key for a request: its subject when configured and known, else its IP.
    pub fn key_for(&self, ip: IpAddr, subject: Option<&Arc<str>>) -> RateKey {
        match (self.key_kind, subject) {
            (RateLimitKey::Subject, Some(subject)) => RateKey::Subject(subject.clone()),
            _ => RateKey::Ip(ip),
        }
    }

    pub fn uses_redis(&self) -> bool {
        self.redis.is_some()
    }

    /// Takes one token from `key`'s bucket.
    pub async fn check(&self, key: &RateKey) -> Decision {
        if let Some(redis) = &self.redis
            && let Some(decision) = redis.check(key).await
        {
            return decision;
        }
        self.check_local(key)
    }

    fn check_local(&self, key: &RateKey) -> Decision {
        match self.local.check_key(key) {
            Ok(()) => Decision::Allowed,
            Err(not_until) => Decision::Limited {
                retry_after: not_until.wait_time_from(self.clock.now()),
            },
        }
    }
}

impl RedisBucket {
    fn now_ms(&self) -> u64 {
        u64::try_from(self.started.elapsed().as_millis()).unwrap_or(u64::MAX)
    }

    /// `None` when Redis is unavailable (the caller then limits locally).
    async fn check(&self, key: &RateKey) -> Option<Decision> {
        if self.now_ms() < self.skip_until_ms.load(Ordering::Relaxed) {
            return None;
        }
        let redis_key = match key {
            RateKey::Ip(ip) => format!("{}ip:{ip}", self.prefix),
            RateKey::Subject(subject) => format!("{}sub:{subject}", self.prefix),
        };
        let mut connection = self.connection.clone();
        let mut invocation = self.script.key(redis_key);
        invocation.arg(self.rate).arg(self.burst);
        let result = tokio::time::timeout(
            REDIS_TIMEOUT,
            invocation.invoke_async::<(i64, i64)>(&mut connection),
        )
        .await;
        match result {
            Ok(Ok((allowed, wait_ms))) => {
                self.skip_until_ms.store(0, Ordering::Relaxed);
                Some(if allowed == 1 {
                    Decision::Allowed
                } else {
                    Decision::Limited {
                        retry_after: Duration::from_millis(u64::try_from(wait_ms).unwrap_or(0)),
                    }
                })
            }
            Ok(Err(err)) => {
                self.mark_unavailable(&err.to_string());
                None
            }
            Err(_) => {
                self.mark_unavailable("timed out");
                None
            }
        }
    }

    fn mark_unavailable(&self, reason: &str) {
        let until = self.now_ms() + u64::try_from(REDIS_BACKOFF.as_millis()).unwrap_or(5000);
        let previous = self.skip_until_ms.swap(until, Ordering::Relaxed);
        // One warning per outage window, not one per request.
        if previous == 0 || previous <= self.now_ms() {
            tracing::warn!(
                reason,
                backoff_secs = REDIS_BACKOFF.as_secs(),
                "Redis rate limiting unavailable; falling back to the local token bucket"
            );
        }
    }
}

async fn cleanup_loop(limiter: Weak<DefaultKeyedRateLimiter<RateKey>>) {
    loop {
        tokio::time::sleep(CLEANUP_INTERVAL).await;
        let Some(limiter) = limiter.upgrade() else {
            return;
        };
        // Buckets that are full again carry no state worth keeping.
        limiter.retain_recent();
        limiter.shrink_to_fit();
    }
}

/// `Retry-After` value: whole seconds, rounded up, at least 1.
pub fn retry_after_secs(wait: Duration) -> u64 {
    let secs = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
    secs.max(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(rps: f64, burst: u32) -> RateLimitConfig {
        RateLimitConfig {
            requests_per_second: rps,
            burst,
            key: RateLimitKey::Ip,
            redis_url_env: None,
        }
    }

    #[tokio::test]
    async fn local_bucket_allows_burst_then_limits() {
        let limiter =
            RateLimiter::from_config(&config(1.0, 3), "t:", &Environment::process()).unwrap();
        let key = limiter.key_for(IpAddr::from([10, 0, 0, 1]), None);
        for _ in 0..3 {
            assert_eq!(limiter.check(&key).await, Decision::Allowed);
        }
        match limiter.check(&key).await {
            Decision::Limited { retry_after } => {
                assert!(retry_after <= Duration::from_secs(1), "{retry_after:?}")
            }
            Decision::Allowed => panic!("fourth request should be limited"),
        }
        // Other clients have their own bucket.
        let other = limiter.key_for(IpAddr::from([10, 0, 0, 2]), None);
        assert_eq!(limiter.check(&other).await, Decision::Allowed);
    }

    #[tokio::test]
    async fn a_tls_redis_url_is_accepted_for_elasticache() {
        // backend: aws renders `rediss://` (ElastiCache with in-transit encryption); without the
        // client's TLS support the gateway would refuse to start.
        let mut c = config(10.0, 10);
        c.redis_url_env = Some("REDIS_URL".into());
        let env = Environment::from_pairs([(
            "REDIS_URL",
            "rediss://:secret@master.shop-redis.abc123.use1.cache.amazonaws.com:6379/0",
        )]);
        let limiter = RateLimiter::from_config(&c, "t:", &env);
        assert!(limiter.is_ok(), "{:?}", limiter.err());
    }

    #[test]
    fn retry_after_rounds_up() {
        assert_eq!(retry_after_secs(Duration::from_millis(1)), 1);
        assert_eq!(retry_after_secs(Duration::from_millis(1001)), 2);
        assert_eq!(retry_after_secs(Duration::ZERO), 1);
    }
}
