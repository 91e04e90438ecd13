//! Wiring: state, router, background consumer, and the process's life until graceful shutdown.

use axum::Router;
use panthera_kit::health::Readiness;
use panthera_kit::inbox::Consumer;
use panthera_kit::metrics::Metrics;
use panthera_kit::server::{self, HttpLimits};
use panthera_kit::{db, kafka, telemetry};
use sqlx::PgPool;
use sqlx::migrate::Migrator;
use tokio_util::sync::CancellationToken;

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
) -> Router {
    server::app(
        crate::routes::router().with_state(state),
        metrics,
        readiness,
        limits,
    )
}

#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error("preparing the database")]
    Database(#[from] db::DbError),
    #[error("preparing the cache")]
    Cache(#[from] CacheSetupError),
    #[error("listening on {address}")]
    Listen {
        address: std::net::SocketAddr,
        #[source]
        source: std::io::Error,
    },
    #[error("serving HTTP")]
    Serve(#[source] std::io::Error),
}

pub async fn run(config: Config) -> Result<(), RunError> {
    let common = &config.common;
    telemetry::init(common.log_format);
    telemetry::install_tls_provider();
    let service = common.service_name_or(SERVICE).to_owned();
    let shutdown = CancellationToken::new();
    server::cancel_on_signal(shutdown.clone());

    let pool = db::connect(&common.database_url, common.database_max_connections).await?;
    db::migrate(&pool, &MIGRATOR).await?;
    let mut readiness = Readiness::new().with_postgres(pool.clone());
    let metrics = Metrics::new(&service);

    let cache = match &config.redis_url {
        Some(url) if !url.expose().is_empty() => {
            let cache = Cache::connect(
                url.expose(),
                &config.cache_key_prefix,
                config.cache_ttl_seconds,
            )?;
            let probe = cache.clone();
            readiness = readiness.with_check("redis", move || {
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
        let consumer_pool = pool.clone();
        let consumer_shutdown = shutdown.clone();
        let topic = config.order_events_topic();
        let handler = StockHandler::new(cache.clone());
        let consumer_metrics = metrics.clone();
        let client = kafka::connect_in_background(
            brokers,
            service.clone(),
            shutdown.clone(),
            move |client| {
                Consumer::new(consumer_pool, client, CONSUMER_NAME, &topic, handler)
                    .with_metrics(&consumer_metrics)
                    .run(consumer_shutdown)
            },
        );
        readiness = kafka::readiness_shared(readiness, client);
    }

    let state = AppState {
        pool: pool.clone(),
        cache,
    };
    let limits = HttpLimits {
        max_body_bytes: common.max_body_bytes,
        request_timeout: common.request_timeout(),
    };
    let app = build_app(state, metrics, readiness, limits);
    let address = common.listen_address();
    let listener = tokio::net::TcpListener::bind(address)
        .await
        .map_err(|source| RunError::Listen { address, source })?;
    tracing::info!(%address, service, "listening");
    let served = server::serve(listener, app, shutdown.clone(), common.shutdown_grace()).await;
    shutdown.cancel();
    pool.close().await;
    served.map_err(RunError::Serve)
}
