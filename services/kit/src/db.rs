//! PostgreSQL pool and embedded migrations, run at start before the listener opens.

use std::str::FromStr;
use std::time::Duration;

use sqlx::PgPool;
use sqlx::migrate::Migrator;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};

use crate::secret::Secret;

/// How long start-up waits for PostgreSQL (it may start after the service in a fresh platform).
const CONNECT_PATIENCE: Duration = Duration::from_secs(60);

#[derive(Debug, thiserror::Error)]
pub enum DbError {
    #[error("parsing the database URL (DATABASE_URL)")]
    Url(#[source] sqlx::Error),
    #[error("connecting to PostgreSQL")]
    Connect(#[source] sqlx::Error),
    #[error("running database migrations")]
    Migrate(#[source] sqlx::migrate::MigrateError),
}

pub type Result<T, E = DbError> = std::result::Result<T, E>;

pub fn pool_options(max_connections: u32) -> PgPoolOptions {
    PgPoolOptions::new()
        .max_connections(max_connections)
        .acquire_timeout(Duration::from_secs(5))
}

/// Connects, retrying with backoff for up to a minute.
///
/// The URL may ask for TLS the libpq way: `?sslmode=verify-full&sslrootcert=/path/ca.pem` checks
/// the server's certificate against that CA bundle and its name against the URL's host (the
/// variables `PGSSLMODE` and `PGSSLROOTCERT` do the same when the URL does not say).
pub async fn connect(url: &Secret, max_connections: u32) -> Result<PgPool> {
    let options = PgConnectOptions::from_str(url.expose()).map_err(DbError::Url)?;
    connect_with(options, max_connections).await
}

pub async fn connect_with(options: PgConnectOptions, max_connections: u32) -> Result<PgPool> {
    let started = tokio::time::Instant::now();
    let mut delay = Duration::from_millis(200);
    loop {
        match pool_options(max_connections)
            .connect_with(options.clone())
            .await
        {
            Ok(pool) => return Ok(pool),
            Err(error) if !is_permanent(&error) && started.elapsed() < CONNECT_PATIENCE => {
                tracing::warn!(%error, ?delay, "PostgreSQL not reachable yet; retrying");
                tokio::time::sleep(delay).await;
                delay = (delay * 2).min(Duration::from_secs(5));
            }
            Err(error) => return Err(DbError::Connect(error)),
        }
    }
}

/// Errors that waiting cannot cure: a certificate the CA bundle does not vouch for (or that names
/// another host), an unreadable CA file, a malformed setting. A server that is starting up
/// answers with refused connections or closed sockets instead, which are retried.
fn is_permanent(error: &sqlx::Error) -> bool {
    match error {
        sqlx::Error::Tls(_) | sqlx::Error::Configuration(_) => true,
        // rustls reports a failed handshake (certificate, name, protocol) as an I/O error of
        // kind InvalidData carrying its own error.
        sqlx::Error::Io(io) => io
            .get_ref()
            .is_some_and(|inner| inner.downcast_ref::<rustls::Error>().is_some()),
        _ => false,
    }
}

/// Applies the service's embedded migrations; sqlx serialises concurrent replicas with an
/// advisory lock.
pub async fn migrate(pool: &PgPool, migrator: &Migrator) -> Result<()> {
    migrator.run(pool).await.map_err(DbError::Migrate)
}
