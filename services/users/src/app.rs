//! Wiring: state, router, and the process's life from start to graceful shutdown.

use std::sync::Arc;

use axum::Router;
use panthera_kit::app::Service;
use panthera_kit::health::Readiness;
use panthera_kit::identity::IdentityCheck;
use panthera_kit::metrics::Metrics;
use panthera_kit::server::{self, HttpLimits};
use sqlx::PgPool;
use sqlx::migrate::Migrator;

use crate::config::Config;
use crate::events;
use crate::token::TokenIssuer;

pub static MIGRATOR: Migrator = sqlx::migrate!("./migrations");

pub const SERVICE: &str = "users";

#[derive(Clone, Debug)]
pub struct AppState {
    pub pool: PgPool,
    /// `None`: `/v1/auth/token` answers 503.
    pub tokens: Option<Arc<TokenIssuer>>,
    /// Topic of this service's events; `None` when Kafka is not configured (no events recorded).
    pub events_topic: Option<Arc<str>>,
}

/// The API with operational endpoints and middleware; `identity` decides which callers are
/// believed (as `Service::serve` does with `IDENTITY_KEYS`).
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
    #[error("creating the first administrator")]
    Admin(#[from] crate::admin::AdminError),
}

pub async fn run(config: Config) -> Result<(), RunError> {
    let common = &config.common;
    let mut service = Service::start(common, SERVICE, &MIGRATOR).await?;
    let events_topic = service.start_outbox_relay(common, events::DEFAULT_TOPIC);
    if events_topic.is_none() {
        tracing::info!("KAFKA_BROKERS is not set; user events are not published");
    }
    crate::admin::ensure_first_admin(
        &service.pool,
        config
            .admin
            .email
            .as_deref()
            .filter(|email| !email.is_empty()),
        config
            .admin
            .password
            .as_ref()
            .map(panthera_kit::Secret::expose)
            .filter(|password| !password.is_empty()),
        events_topic.as_deref(),
    )
    .await?;
    let tokens = TokenIssuer::from_config(&config.jwt).map(Arc::new);
    if tokens.is_none() {
        tracing::warn!("JWT_HS256_SECRET is not set; /v1/auth/token answers 503");
    }
    let state = AppState {
        pool: service.pool.clone(),
        tokens,
        events_topic,
    };
    Ok(service
        .serve(common, crate::routes::router().with_state(state))
        .await?)
}
