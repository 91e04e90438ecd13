//! PostgreSQL pool and embedded migrations, run at start before the listener opens.
//!
//! Each service keeps its tables, and sqlx's migration ledger, in a schema of its own
//! (`DATABASE_SCHEMA`, by default the service's name), so that two services can share one
//! database: with one ledger in `public`, the second service to start found the first one's
//! migration 1 and refused to run with "was previously applied but has been modified".

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
    #[error("preparing the schema {schema:?}")]
    Schema {
        schema: String,
        #[source]
        source: sqlx::Error,
    },
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

/// A PostgreSQL schema name a service may own: a lower-case identifier or DNS label, quoted
/// whenever it is used in SQL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SchemaName(String);

impl SchemaName {
    /// The schema of databases created before services had schemas of their own.
    pub fn public() -> Self {
        Self("public".to_owned())
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// `"name"`, for SQL and `search_path`: a DNS label's hyphens need the quotes.
    fn quoted(&self) -> String {
        format!("\"{}\"", self.0)
    }
}

impl std::str::FromStr for SchemaName {
    type Err = String;

    fn from_str(name: &str) -> Result<Self, Self::Err> {
        let mut chars = name.chars();
        let valid_start = chars
            .next()
            .is_some_and(|c| c.is_ascii_lowercase() || c == '_');
        let valid_rest =
            chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == '-');
        // 63 bytes is PostgreSQL's identifier limit; longer names are silently truncated.
        if valid_start && valid_rest && name.len() <= 63 && !name.starts_with("pg_") {
            Ok(Self(name.to_owned()))
        } else {
            Err(format!(
                "{name:?} is not a schema name: expected 1 to 63 of a-z, 0-9, '_' and '-', starting with a letter or '_', not 'pg_'"
            ))
        }
    }
}

impl std::fmt::Display for SchemaName {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// Connects, settles the service's schema, then returns a pool whose connections all use it,
/// migrated.
///
/// The schema is `wanted`, created when missing, except for a database laid out before schemas:
/// when `public` already holds this service's own migration ledger (the same first migration),
/// the service stays there, so an upgrade never strands its data.
pub async fn open(
    url: &Secret,
    max_connections: u32,
    wanted: &SchemaName,
    migrator: &Migrator,
) -> Result<(PgPool, SchemaName)> {
    let options = PgConnectOptions::from_str(url.expose()).map_err(DbError::Url)?;
    let bootstrap = connect_with(options.clone(), 1).await?;
    let schema = settle_schema(&bootstrap, wanted, migrator)
        .await
        .map_err(|source| DbError::Schema {
            schema: wanted.to_string(),
            source,
        });
    bootstrap.close().await;
    let schema = schema?;
    let pool = connect_with(
        options.options([("search_path", schema.quoted())]),
        max_connections,
    )
    .await?;
    migrate(&pool, migrator).await?;
    Ok((pool, schema))
}

/// Key of the advisory lock that serialises schema creation between replicas starting together
/// (two concurrent `CREATE SCHEMA IF NOT EXISTS` can both pass the check and one then fails).
const SCHEMA_LOCK: i64 = 0x7061_6e74_6865_7261; // "panthera"

async fn settle_schema(
    pool: &PgPool,
    wanted: &SchemaName,
    migrator: &Migrator,
) -> Result<SchemaName, sqlx::Error> {
    if owns_public_ledger(pool, migrator).await? {
        tracing::info!(
            schema = "public",
            "keeping the service's tables in the public schema, where an earlier version created them"
        );
        return Ok(SchemaName::public());
    }
    let mut tx = pool.begin().await?;
    sqlx::query("SELECT pg_advisory_xact_lock($1)")
        .bind(SCHEMA_LOCK)
        .execute(&mut *tx)
        .await?;
    sqlx::query(&format!("CREATE SCHEMA IF NOT EXISTS {}", wanted.quoted()))
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;
    Ok(wanted.clone())
}

/// Whether `public._sqlx_migrations` records this migrator's first migration, checksum and all.
async fn owns_public_ledger(pool: &PgPool, migrator: &Migrator) -> Result<bool, sqlx::Error> {
    let Some(first) = migrator.iter().find(|m| m.migration_type.is_up_migration()) else {
        return Ok(false);
    };
    let ledger: Option<String> =
        sqlx::query_scalar("SELECT to_regclass('public._sqlx_migrations')::text")
            .fetch_one(pool)
            .await?;
    if ledger.is_none() {
        return Ok(false);
    }
    let checksum: Option<Vec<u8>> =
        sqlx::query_scalar("SELECT checksum FROM public._sqlx_migrations WHERE version = $1")
            .bind(first.version)
            .fetch_optional(pool)
            .await?;
    Ok(checksum.is_some_and(|c| c == first.checksum.as_ref()))
}

/// Applies the service's embedded migrations; sqlx serialises concurrent replicas with an
/// advisory lock.
pub async fn migrate(pool: &PgPool, migrator: &Migrator) -> Result<()> {
    migrator.run(pool).await.map_err(DbError::Migrate)
}
