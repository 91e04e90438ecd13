//! Wiring: state, router, outbox relay, and the process's life until graceful shutdown.

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use panthera_kit::app::Service;
use panthera_kit::health::Readiness;
use panthera_kit::identity::IdentityCheck;
use panthera_kit::metrics::Metrics;
use panthera_kit::server::{self, HttpLimits};
use sqlx::PgPool;
use sqlx::migrate::Migrator;

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
    #[error("building the catalog client")]
    CatalogClient(#[source] reqwest::Error),
}

pub async fn run(config: Config) -> Result<(), RunError> {
    let common = &config.common;
    let mut service = Service::start(common, SERVICE, &MIGRATOR).await?;
    let events_topic = service.start_outbox_relay(common, events::DEFAULT_TOPIC);
    if events_topic.is_none() {
        tracing::warn!(
            "KAFKA_BROKERS is not set; order events are not published and the catalog will not settle stock"
        );
    }
    if config.catalog_url.is_none() {
        tracing::warn!("CATALOG_URL is not set; creating orders answers 503");
    }
    let catalog = CatalogClient::new(
        config.catalog_url.clone(),
        Duration::from_millis(config.catalog_timeout_ms),
    )
    .map_err(RunError::CatalogClient)?;
    let state = AppState {
        pool: service.pool.clone(),
        catalog,
        events_topic,
    };
    Ok(service
        .serve(common, crate::routes::router().with_state(state))
        .await?)
}
