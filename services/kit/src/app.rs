//! What every service does between its configuration and its router: logs, signal handling,
//! the database and its migrations, metrics, the outbox relay, and serving until shutdown.

use std::sync::Arc;

use axum::Router;
use sqlx::PgPool;
use sqlx::migrate::Migrator;
use tokio_util::sync::CancellationToken;

use crate::config::CommonConfig;
use crate::health::Readiness;
use crate::identity::{self, IdentityCheck};
use crate::metrics::Metrics;
use crate::outbox::Relay;
use crate::server::{self, HttpLimits};
use crate::{db, kafka, telemetry};

/// Why a service could not start or stopped serving.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("preparing the database")]
    Database(#[from] db::DbError),
    #[error("the database schema (DATABASE_SCHEMA or SERVICE_NAME): {0}")]
    Schema(String),
    #[error("Kafka settings")]
    Kafka(#[from] kafka::SecurityError),
    #[error("caller identity settings")]
    Identity(#[from] identity::IdentityConfigError),
    #[error("listening on {address}")]
    Listen {
        address: std::net::SocketAddr,
        #[source]
        source: std::io::Error,
    },
    #[error("serving HTTP")]
    Serve(#[source] std::io::Error),
}

/// A started service: migrated database, readiness checks, metrics, and the shutdown signal.
pub struct Service {
    pub name: String,
    pub shutdown: CancellationToken,
    pub pool: PgPool,
    pub readiness: Readiness,
    pub metrics: Metrics,
    /// TLS/SASL of the Kafka connection (`KAFKA_SECURITY_PROTOCOL` and the keys beside it).
    pub kafka_security: kafka::Security,
    /// Which caller identities are believed (`IDENTITY_KEYS`); applied to the API by `serve`.
    pub identity: IdentityCheck,
}

impl Service {
    /// Logs, signals, database pool and migrations; `default_name` when `SERVICE_NAME` is unset.
    pub async fn start(
        common: &CommonConfig,
        default_name: &str,
        migrator: &'static Migrator,
    ) -> Result<Self, Error> {
        let name = common.service_name_or(default_name).to_owned();
        telemetry::init(common.log_format, &name);
        telemetry::install_tls_provider();
        // Checked before anything connects: a wrong setting stops the start with its name.
        let kafka_security = common.kafka_security()?;
        let identity = common.identity_check()?;
        identity.log();
        let schema = common
            .database_schema_or(default_name)
            .map_err(Error::Schema)?;
        let shutdown = CancellationToken::new();
        server::cancel_on_signal(shutdown.clone());
        let (pool, schema) = db::open(
            &common.database_url,
            common.database_max_connections,
            &schema,
            migrator,
        )
        .await?;
        tracing::info!(%schema, "database migrated");
        let readiness = Readiness::new().with_postgres(pool.clone());
        let metrics = Metrics::new(&name);
        metrics.register_pool(pool.clone());
        Ok(Self {
            name,
            shutdown,
            pool,
            readiness,
            metrics,
            kafka_security,
            identity,
        })
    }

    /// Publish the outbox to the first `KAFKA_TOPICS` entry (`default_topic` when there is none),
    /// connecting in the background so HTTP is up first. `None` when Kafka is not configured.
    pub fn start_outbox_relay(
        &mut self,
        common: &CommonConfig,
        default_topic: &str,
    ) -> Option<Arc<str>> {
        let brokers = common.brokers();
        if brokers.is_empty() {
            return None;
        }
        let topic = common
            .topics()
            .into_iter()
            .next()
            .unwrap_or_else(|| default_topic.to_owned());
        let (pool, metrics, shutdown) = (
            self.pool.clone(),
            self.metrics.clone(),
            self.shutdown.clone(),
        );
        let client = kafka::connect_in_background(
            brokers,
            self.kafka_security.clone(),
            self.name.clone(),
            self.shutdown.clone(),
            move |client| {
                Relay::new(pool, client)
                    .with_metrics(&metrics)
                    .run(shutdown)
            },
        );
        self.readiness = kafka::readiness_shared(std::mem::take(&mut self.readiness), client);
        Some(Arc::from(topic))
    }

    /// Serve `api` (already given its state) with the operational endpoints until shutdown, then
    /// close the pool.
    pub async fn serve(self, common: &CommonConfig, api: Router) -> Result<(), Error> {
        let limits = HttpLimits {
            max_body_bytes: common.max_body_bytes,
            request_timeout: common.request_timeout(),
        };
        let readiness = self.readiness.clone();
        let api = api.layer(self.identity.layer());
        let app = server::app(api, self.metrics, self.readiness, limits);
        let address = common.listen_address();
        let listener = tokio::net::TcpListener::bind(address)
            .await
            .map_err(|source| Error::Listen { address, source })?;
        tracing::info!(%address, service = self.name, "listening");
        let served = server::serve_draining(
            listener,
            app,
            self.shutdown.clone(),
            readiness,
            common.drain(),
        )
        .await;
        self.shutdown.cancel();
        self.pool.close().await;
        telemetry::shutdown();
        served.map_err(Error::Serve)
    }
}
