//! Read-through Redis cache for product reads.
//!
//! Single products live under `{prefix}product:{id}`; search results under
//! `{prefix}products:{generation}:{query}`. A write deletes the product's key and bumps the
//! generation, which orphans every cached search at once (they expire by TTL). Redis trouble never
//! fails a request: the cache is skipped and the error logged.

use std::sync::Arc;
use std::time::Duration;

use panthera_kit::spans;
use redis::AsyncCommands;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use serde::Serialize;
use serde::de::DeserializeOwned;
use tracing::Instrument;
use uuid::Uuid;

#[derive(Clone)]
pub struct Cache {
    connection: Option<ConnectionManager>,
    prefix: Arc<str>,
    ttl_seconds: u64,
}

impl std::fmt::Debug for Cache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Cache")
            .field("enabled", &self.connection.is_some())
            .field("prefix", &self.prefix)
            .finish_non_exhaustive()
    }
}

#[derive(Debug, thiserror::Error)]
#[error("configuring the Redis client (REDIS_URL)")]
pub struct CacheSetupError(#[source] redis::RedisError);

impl Cache {
    pub fn disabled() -> Self {
        Self {
            connection: None,
            prefix: Arc::from(""),
            ttl_seconds: 0,
        }
    }

    /// Connects lazily: the service starts even when Redis is not up yet.
    pub fn connect(url: &str, prefix: &str, ttl_seconds: u64) -> Result<Self, CacheSetupError> {
        let client = redis::Client::open(url).map_err(CacheSetupError)?;
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(Duration::from_millis(500)))
            .set_response_timeout(Some(Duration::from_millis(250)))
            .set_number_of_retries(1);
        let connection =
            ConnectionManager::new_lazy_with_config(client, config).map_err(CacheSetupError)?;
        Ok(Self {
            connection: Some(connection),
            prefix: Arc::from(prefix),
            ttl_seconds: ttl_seconds.max(1),
        })
    }

    pub fn enabled(&self) -> bool {
        self.connection.is_some()
    }

    pub fn product_key(&self, id: Uuid) -> String {
        format!("{}product:{id}", self.prefix)
    }

    fn generation_key(&self) -> String {
        format!("{}products:generation", self.prefix)
    }

    pub async fn get<T: DeserializeOwned>(&self, key: &str) -> Option<T> {
        let mut connection = self.connection.clone()?;
        match connection
            .get::<_, Option<Vec<u8>>>(key)
            .instrument(spans::redis("GET"))
            .await
        {
            Ok(Some(bytes)) => serde_json::from_slice(&bytes).ok(),
            Ok(None) => None,
            Err(error) => {
                tracing::warn!(%error, "cache read failed; using the database");
                None
            }
        }
    }

    pub async fn put<T: Serialize>(&self, key: &str, value: &T) {
        let Some(mut connection) = self.connection.clone() else {
            return;
        };
        let Ok(bytes) = serde_json::to_vec(value) else {
            return;
        };
        if let Err(error) = connection
            .set_ex::<_, _, ()>(key, bytes, self.ttl_seconds)
            .instrument(spans::redis("SETEX"))
            .await
        {
            tracing::warn!(%error, "cache write failed");
        }
    }

    /// Key of a cached search; `None` when the cache is off or unreachable.
    pub async fn search_key<Q: Serialize>(&self, query: &Q) -> Option<String> {
        let mut connection = self.connection.clone()?;
        let generation: i64 = match connection
            .get::<_, Option<i64>>(self.generation_key())
            .instrument(spans::redis("GET"))
            .await
        {
            Ok(generation) => generation.unwrap_or(0),
            Err(error) => {
                tracing::warn!(%error, "cache read failed; using the database");
                return None;
            }
        };
        let query = serde_json::to_string(query).ok()?;
        Some(format!("{}products:{generation}:{query}", self.prefix))
    }

    /// Called after a write to products has committed.
    pub async fn invalidate_products(&self, ids: &[Uuid]) {
        let Some(mut connection) = self.connection.clone() else {
            return;
        };
        let mut pipe = redis::pipe();
        for id in ids {
            pipe.del(self.product_key(*id)).ignore();
        }
        pipe.incr(self.generation_key(), 1).ignore();
        if let Err(error) = pipe
            .query_async::<()>(&mut connection)
            .instrument(spans::redis("MULTI"))
            .await
        {
            // Stale entries expire by TTL; nothing else can be done here.
            tracing::warn!(%error, "cache invalidation failed");
        }
    }

    /// Readiness check; only used when a cache is configured.
    pub async fn ping(&self) -> Result<(), String> {
        let Some(mut connection) = self.connection.clone() else {
            return Ok(());
        };
        redis::cmd("PING")
            .query_async::<String>(&mut connection)
            .await
            .map(|_| ())
            .map_err(|e| e.to_string())
    }
}
