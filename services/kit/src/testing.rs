//! Helpers for tests that use the real services started by `scripts/test-services.sh`.
//!
//! A missing service skips the test with a notice, except when `CI` is set: then the test fails,
//! so a misconfigured pipeline cannot pass by skipping everything. The encryption-in-transit
//! tests use [`required_env`] instead and always fail without their servers.

use std::str::FromStr;

use sqlx::postgres::PgConnectOptions;
use sqlx::{ConnectOptions, Connection, PgPool};

pub const DATABASE_URL_VAR: &str = "PANTHERA_TEST_DATABASE_URL";
pub const REDIS_URL_VAR: &str = "PANTHERA_TEST_REDIS_URL";
pub const KAFKA_BROKERS_VAR: &str = "PANTHERA_TEST_KAFKA_BROKERS";
/// One OpenSearch node (`http://127.0.0.1:port`, no security plugin); tests use indices and
/// aliases of their own.
pub const OPENSEARCH_URL_VAR: &str = "PANTHERA_TEST_OPENSEARCH_URL";
/// The CA that signed the certificate of the TLS servers below (PEM).
pub const TLS_CA_FILE_VAR: &str = "PANTHERA_TEST_TLS_CA_FILE";
/// A CA that signed nothing the servers present: a client trusting only it must be refused.
pub const TLS_OTHER_CA_FILE_VAR: &str = "PANTHERA_TEST_TLS_OTHER_CA_FILE";
/// PostgreSQL that accepts only TLS with a password; the URL carries
/// `sslmode=verify-full&sslrootcert=<the CA>`.
pub const TLS_DATABASE_URL_VAR: &str = "PANTHERA_TEST_TLS_DATABASE_URL";
/// Apache Kafka's SASL_SSL listener and the SCRAM login it knows.
pub const KAFKA_TLS_BROKERS_VAR: &str = "PANTHERA_TEST_KAFKA_TLS_BROKERS";
pub const KAFKA_SASL_MECHANISM_VAR: &str = "PANTHERA_TEST_KAFKA_SASL_MECHANISM";
pub const KAFKA_SASL_USERNAME_VAR: &str = "PANTHERA_TEST_KAFKA_SASL_USERNAME";
pub const KAFKA_SASL_PASSWORD_VAR: &str = "PANTHERA_TEST_KAFKA_SASL_PASSWORD";

/// The value of a test-service variable, or `None` (after a skip notice) when it is unset.
///
/// # Panics
/// When the variable is unset and `CI` is set.
pub fn service_env(var: &str) -> Option<String> {
    match std::env::var(var) {
        Ok(value) if !value.trim().is_empty() => Some(value),
        _ if std::env::var_os("CI").is_some() => panic!(
            "{var} is not set but CI is: start the test services with \
             `bash scripts/test-services.sh start` and source /tmp/panthera-test/env.sh"
        ),
        _ => {
            eprintln!("skipping: {var} is not set (run scripts/test-services.sh start)");
            None
        }
    }
}

/// The value of a test-service variable; a test that calls this fails without it, CI or not.
///
/// # Panics
/// When the variable is unset or empty.
pub fn required_env(var: &str) -> String {
    match std::env::var(var) {
        Ok(value) if !value.trim().is_empty() => value,
        _ => panic!(
            "{var} is not set: start the test services with `bash scripts/test-services.sh start` \
             and source $PANTHERA_TEST_DIR/env.sh (default /tmp/panthera-test/env.sh)"
        ),
    }
}

/// A name that no parallel test will pick, e.g. `users_3f2a...`.
pub fn unique_name(prefix: &str) -> String {
    format!("{prefix}_{}", uuid::Uuid::new_v4().simple())
}

/// A fresh database created for one test, on the server of `PANTHERA_TEST_DATABASE_URL` (or of
/// another URL variable, with [`TestDatabase::create_on`]).
#[derive(Debug)]
pub struct TestDatabase {
    pub pool: PgPool,
    pub name: String,
    pub options: PgConnectOptions,
    admin: PgConnectOptions,
    admin_url: String,
}

impl TestDatabase {
    /// `Ok(None)` when the test should be skipped.
    pub async fn create(prefix: &str) -> Result<Option<Self>, sqlx::Error> {
        let Some(url) = service_env(DATABASE_URL_VAR) else {
            return Ok(None);
        };
        Self::create_at(&url, prefix).await.map(Some)
    }

    /// On the server of the URL in `var`, which the test requires (see [`required_env`]).
    pub async fn create_on(var: &str, prefix: &str) -> Result<Self, sqlx::Error> {
        Self::create_at(&required_env(var), prefix).await
    }

    async fn create_at(url: &str, prefix: &str) -> Result<Self, sqlx::Error> {
        let admin = PgConnectOptions::from_str(url)?;
        let name = unique_name(prefix);
        let mut connection = admin.connect().await?;
        // The name is generated above from [a-z0-9_] only, so quoting it is enough.
        sqlx::query(&format!("CREATE DATABASE \"{name}\""))
            .execute(&mut connection)
            .await?;
        connection.close().await?;
        let options = admin.clone().database(&name);
        let pool = crate::db::pool_options(8)
            .connect_with(options.clone())
            .await?;
        Ok(Self {
            pool,
            name,
            options,
            admin,
            admin_url: url.to_owned(),
        })
    }

    /// A `postgres://` URL of the test database, for code that takes a URL: the server's URL
    /// with the database replaced, so a password and TLS parameters (`sslmode`, `sslrootcert`)
    /// carry over.
    pub fn url(&self) -> String {
        with_database(&self.admin_url, &self.name)
    }

    /// Drops the database; tests call it at the end so runs do not pile up databases.
    pub async fn drop_database(self) -> Result<(), sqlx::Error> {
        self.pool.close().await;
        let mut connection = self.admin.connect().await?;
        sqlx::query(&format!(
            "DROP DATABASE IF EXISTS \"{}\" WITH (FORCE)",
            self.name
        ))
        .execute(&mut connection)
        .await?;
        connection.close().await
    }
}

/// `url` with its path (the database) replaced by `database`, query kept.
fn with_database(url: &str, database: &str) -> String {
    let (base, query) = match url.split_once('?') {
        Some((base, query)) => (base, Some(query)),
        None => (url, None),
    };
    let authority = base.find("://").map_or(0, |i| i + 3);
    let base = match base[authority..].find('/') {
        Some(slash) => &base[..authority + slash],
        None => base,
    };
    match query {
        Some(query) => format!("{base}/{database}?{query}"),
        None => format!("{base}/{database}"),
    }
}

/// The identity keys (`IDENTITY_KEYS`) the tests run services with, as a platform's Secret
/// would hold them.
pub const IDENTITY_KEYS: &str = "panthera-test-identity-key-0123456789abcdef";

/// The check a service configured with [`IDENTITY_KEYS`] applies.
///
/// # Panics
/// Never: the test keys are valid.
pub fn identity_check() -> crate::identity::IdentityCheck {
    match panthera_identity::KeyRing::parse(IDENTITY_KEYS) {
        Ok(keys) => crate::identity::IdentityCheck::signed(keys),
        Err(error) => panic!("the test identity keys are refused: {error}"),
    }
}

/// The `x-panthera-signature` the gateway would send with `identity` (header name, value pairs;
/// the identity headers among them are signed) on `method target`, signed with `keys` now.
///
/// # Panics
/// When `keys` is not a valid `IDENTITY_KEYS` value.
pub fn identity_signature(
    keys: &str,
    method: &str,
    target: &str,
    identity: &[(&str, &str)],
) -> String {
    use crate::identity::{ROLES_HEADER, SCOPES_HEADER, SUBJECT_HEADER, TOKEN_ID_HEADER};
    let keys = panthera_identity::KeyRing::parse(keys)
        .unwrap_or_else(|error| panic!("IDENTITY_KEYS for the test: {error}"));
    let value = |name: &str| {
        identity
            .iter()
            .find(|(header, _)| header.eq_ignore_ascii_case(name))
            .map_or(&b""[..], |(_, value)| value.as_bytes())
    };
    let fields = panthera_identity::IdentityFields::new(
        value(SUBJECT_HEADER),
        value(ROLES_HEADER),
        value(SCOPES_HEADER),
        value(TOKEN_ID_HEADER),
    );
    let request = panthera_identity::RequestLine { method, target };
    keys.sign(panthera_identity::unix_now(), request, &fields)
        .as_str()
        .to_owned()
}

/// `identity` (header name, value pairs) followed by the signature the gateway would add for
/// `method target`, made with [`IDENTITY_KEYS`]: the headers of a caller for a service started
/// with [`service_command`].
pub fn signed_identity(
    method: &str,
    target: &str,
    identity: &[(&str, &str)],
) -> Vec<(String, String)> {
    let signature = identity_signature(IDENTITY_KEYS, method, target, identity);
    identity
        .iter()
        .map(|(name, value)| ((*name).to_owned(), (*value).to_owned()))
        .chain([(crate::identity::SIGNATURE_HEADER.to_owned(), signature)])
        .collect()
}

/// Signs the identity headers of `request` with [`IDENTITY_KEYS`], as the gateway does; a
/// request without `x-panthera-subject` is left as it is.
///
/// # Panics
/// Never for a request whose identity headers are text.
pub fn sign_identity<B>(request: &mut http::Request<B>) {
    use crate::identity::{SIGNATURE_HEADER, SUBJECT_HEADER};
    if !request.headers().contains_key(SUBJECT_HEADER) {
        return;
    }
    let identity: Vec<(&str, &str)> = request
        .headers()
        .iter()
        .filter_map(|(name, value)| Some((name.as_str(), value.to_str().ok()?)))
        .collect();
    let target = request
        .uri()
        .path_and_query()
        .map_or("/", http::uri::PathAndQuery::as_str);
    let signature = identity_signature(IDENTITY_KEYS, request.method().as_str(), target, &identity);
    match http::HeaderValue::from_str(&signature) {
        Ok(value) => {
            request.headers_mut().insert(SIGNATURE_HEADER, value);
        }
        Err(error) => panic!("a signature is a header value: {error}"),
    }
}

/// A loopback port free at the time of the call, for a child process to listen on.
///
/// # Panics
/// When the OS has no free port to give.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .unwrap_or_else(|e| panic!("no free loopback port: {e}"))
}

/// A service binary started the way the rendered Deployment starts it: a clean environment with
/// the variables every service reads (docs/contracts.md; `IDENTITY_KEYS` is [`IDENTITY_KEYS`],
/// so sign identities with [`identity_signature`]), listening on `port` on loopback. Add the
/// service's own variables before spawning.
pub fn service_command(program: &str, service: &str, port: u16) -> tokio::process::Command {
    let mut command = tokio::process::Command::new(program);
    command
        .env_clear()
        .env("PORT", port.to_string())
        .env("BIND_ADDRESS", "127.0.0.1")
        .env("SERVICE_NAME", service)
        .env("LOG_FORMAT", "json")
        .env("RUST_LOG", "info")
        .env(panthera_identity::KEYS_ENV, IDENTITY_KEYS);
    command
}

/// Fails when the committed OpenAPI document of `package` (`<manifest_dir>/openapi.json`) is not
/// `generated`; with `PANTHERA_UPDATE_OPENAPI` set, rewrites it first. Returns the parsed document.
///
/// # Panics
/// When the document is stale or not JSON.
pub fn assert_openapi_committed(
    manifest_dir: &str,
    package: &str,
    generated: &str,
) -> serde_json::Value {
    let path = std::path::Path::new(manifest_dir).join("openapi.json");
    if std::env::var_os("PANTHERA_UPDATE_OPENAPI").is_some() {
        std::fs::write(&path, generated)
            .unwrap_or_else(|e| panic!("cannot write {}: {e}", path.display()));
    }
    let committed = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        committed == generated,
        "{} is out of date; regenerate it with PANTHERA_UPDATE_OPENAPI=1 cargo test -p {package} --test openapi",
        path.display()
    );
    serde_json::from_str(generated)
        .unwrap_or_else(|e| panic!("the generated document is not JSON: {e}"))
}

#[cfg(test)]
mod tests {
    use super::with_database;

    #[test]
    fn with_database_keeps_credentials_and_parameters() {
        assert_eq!(
            with_database("postgres://postgres@127.0.0.1:25432/postgres", "t_1"),
            "postgres://postgres@127.0.0.1:25432/t_1"
        );
        assert_eq!(
            with_database(
                "postgres://u:p@127.0.0.1:25433/postgres?sslmode=verify-full&sslrootcert=/tmp/ca.pem",
                "t_2"
            ),
            "postgres://u:p@127.0.0.1:25433/t_2?sslmode=verify-full&sslrootcert=/tmp/ca.pem"
        );
        assert_eq!(
            with_database("postgres://h:1?sslmode=require", "t_3"),
            "postgres://h:1/t_3?sslmode=require"
        );
    }
}
