//! Wiring: state, router, outbox relay, and the process's life until graceful shutdown.

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use panthera_kit::health::Readiness;
use panthera_kit::metrics::Metrics;
use panthera_kit::outbox::Relay;
use panthera_kit::server::{self, HttpLimits};
use panthera_kit::{db, kafka, telemetry};
use sqlx::PgPool;
use sqlx::migrate::Migrator;
use tokio_util::sync::CancellationToken;

use crate::catalog::CatalogClient;
use crate::config::Config;
use crate::events;

pub static MIGRATOR: Migrator = sqlx::migrate!("./migrations");

pub const SERVICE: &str = "orders";

#[derive(Clone, Debug)]
pub struct AppState {
    pub pool: PgPool,
    pub catalog: CatalogClient,
    /// Topic of this service's events; `None` when Kafka is not configured.
    pub events_topic: Option<Arc<str>>,
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
    #[error("building the catalog client")]
    CatalogClient(#[source] reqwest::Error),
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

    let brokers = common.brokers();
    let events_topic: Option<Arc<str>> = if brokers.is_empty() {
        tracing::warn!(
            "KAFKA_BROKERS is not set; order events are not published and the catalog will not settle stock"
        );
        None
    } else {
        let topic = common
            .topics()
            .into_iter()
            .next()
            .unwrap_or_else(|| events::DEFAULT_TOPIC.to_owned());
        let relay_pool = pool.clone();
        let relay_metrics = metrics.clone();
        let relay_shutdown = shutdown.clone();
        let client = kafka::connect_in_background(
            brokers,
            service.clone(),
            shutdown.clone(),
            move |client| {
                Relay::new(relay_pool, client)
                    .with_metrics(&relay_metrics)
                    .run(relay_shutdown)
            },
        );
        readiness = kafka::readiness_shared(readiness, client);
        Some(Arc::from(topic))
    };

    if config.catalog_url.is_none() {
        tracing::warn!("CATALOG_URL is not set; creating orders answers 503");
    }
    let catalog = CatalogClient::new(
        config.catalog_url.clone(),
        Duration::from_millis(config.catalog_timeout_ms),
    )
    .map_err(RunError::CatalogClient)?;
    let state = AppState {
        pool: pool.clone(),
        catalog,
        events_topic,
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
