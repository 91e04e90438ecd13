//! Wiring: state, router, background consumer, and the process's life until graceful shutdown.

use axum::Router;
use panthera_kit::app::Service;
use panthera_kit::health::Readiness;
use panthera_kit::identity::IdentityCheck;
use panthera_kit::inbox::Consumer;
use panthera_kit::kafka;
use panthera_kit::metrics::Metrics;
use panthera_kit::server::{self, HttpLimits};
use sqlx::PgPool;
use sqlx::migrate::Migrator;

use crate::cache::{Cache, CacheSetupError};
use crate::config::Config;
use crate::stock_consumer::{CONSUMER_NAME, StockHandler};

pub static MIGRATOR: Migrator = sqlx::migrate!("./migrations");

pub const SERVICE: &str = "catalog";

#[derive(Clone, Debug)]
pub struct AppState {
    pub pool: PgPool,
    pub cache: Cache,
}

pub fn build_app(
    state: AppState,
    metrics: Metrics,
    readiness: Readiness,
    limits: HttpLimits,
    identity: &IdentityCheck,
) -> Router {
    server::app(
        crate::routes::router()
            .with_state(state)
            .layer(identity.layer()),
        metrics,
        readiness,
        limits,
    )
}

#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error(transparent)]
    Service(#[from] panthera_kit::app::Error),
    #[error("preparing the cache")]
    Cache(#[from] CacheSetupError),
}

pub async fn run(config: Config) -> Result<(), RunError> {
    let common = &config.common;
    let mut service = Service::start(common, SERVICE, &MIGRATOR).await?;

    let cache = match &config.redis_url {
        Some(url) if !url.expose().is_empty() => {
            let cache = Cache::connect(
                url.expose(),
                &config.cache_key_prefix,
                config.cache_ttl_seconds,
            )?;
            let probe = cache.clone();
            service.readiness =
                std::mem::take(&mut service.readiness).with_check("redis", move || {
                    let probe = probe.clone();
                    Box::pin(async move { probe.ping().await })
                });
            cache
        }
        _ => {
            tracing::info!("REDIS_URL is not set; product reads are not cached");
            Cache::disabled()
        }
    };

    let brokers = common.brokers();
    if brokers.is_empty() {
        tracing::info!("KAFKA_BROKERS is not set; order events are not consumed");
    } else {
        let consumer_pool = service.pool.clone();
        let consumer_shutdown = service.shutdown.clone();
        let topic = config.order_events_topic();
        let handler = StockHandler::new(cache.clone());
        let consumer_metrics = service.metrics.clone();
        let client = kafka::connect_in_background(
            brokers,
            service.kafka_security.clone(),
            service.name.clone(),
            service.shutdown.clone(),
            move |client| {
                Consumer::new(consumer_pool, client, CONSUMER_NAME, &topic, handler)
                    .with_metrics(&consumer_metrics)
                    .run(consumer_shutdown)
            },
        );
        service.readiness = kafka::readiness_shared(std::mem::take(&mut service.readiness), client);
    }

    let state = AppState {
        pool: service.pool.clone(),
        cache,
    };
    Ok(service
        .serve(common, crate::routes::router().with_state(state))
        .await?)
}
