//! Encryption in transit against the real servers of `scripts/test-services.sh`: Apache Kafka's
//! SASL_SSL listener (SCRAM-SHA-512) and a PostgreSQL that accepts only TLS with a password, both
//! serving a certificate of the run's own CA. The refusals matter as much as the successes: a
//! client that skipped verification, or sent no credentials, would pass the happy path too.
//!
//! Without the servers these tests fail (they do not skip): `required_env`.

// Test helpers outside #[test] functions unwrap too: a failure there is a test failure.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::str::FromStr;
use std::time::{Duration, Instant};

use chrono::Utc;
use panthera_kit::Secret;
use panthera_kit::db;
use panthera_kit::kafka::{self, SaslCredentials, SaslMechanism, Security, SecurityProtocol};
use panthera_kit::outbox::error_chain;
use panthera_kit::testing::{
    KAFKA_SASL_MECHANISM_VAR, KAFKA_SASL_PASSWORD_VAR, KAFKA_SASL_USERNAME_VAR,
    KAFKA_TLS_BROKERS_VAR, TLS_CA_FILE_VAR, TLS_DATABASE_URL_VAR, TLS_OTHER_CA_FILE_VAR,
    TestDatabase, required_env, unique_name,
};
use rskafka::BackoffConfig;
use rskafka::client::partition::Compression;
use rskafka::record::Record;
use sqlx::postgres::{PgConnectOptions, PgSslMode};
use sqlx::{ConnectOptions, Connection};

fn brokers() -> Vec<String> {
    required_env(KAFKA_TLS_BROKERS_VAR)
        .split(',')
        .map(str::to_owned)
        .collect()
}

fn credentials(password: &str) -> SaslCredentials {
    let mechanism = required_env(KAFKA_SASL_MECHANISM_VAR);
    SaslCredentials {
        mechanism: <SaslMechanism as clap::ValueEnum>::from_str(&mechanism, false).unwrap(),
        username: required_env(KAFKA_SASL_USERNAME_VAR),
        password: Secret::new(password),
    }
}

fn ca() -> PathBuf {
    PathBuf::from(required_env(TLS_CA_FILE_VAR))
}

fn sasl_ssl(ca_file: Option<PathBuf>, password: &str) -> Security {
    Security::new(
        SecurityProtocol::SaslSsl,
        ca_file.as_deref(),
        Some(credentials(password)),
    )
    .unwrap()
}

/// The error of a connection that must not be made, with its whole chain as text.
async fn refused(security: &Security) -> String {
    // The services' builder with a shorter deadline: rskafka nests a connection retry loop in its
    // metadata retry loop, so a refusal surfaces only after several deadlines (40 s with the
    // services' 10 s), and retrying changes nothing here.
    let attempt = kafka::client_builder(&brokers(), "kit-tls-refused", security)
        .backoff_config(BackoffConfig {
            init_backoff: Duration::from_millis(100),
            max_backoff: Duration::from_millis(500),
            base: 2.0,
            deadline: Some(Duration::from_secs(1)),
        })
        .build()
        .await;
    match attempt {
        Ok(_) => panic!("the broker accepted a client it must refuse ({security:?})"),
        Err(error) => {
            let chain = error_chain(&error);
            eprintln!("refused as expected: {chain}");
            chain
        }
    }
}

#[tokio::test]
async fn kafka_over_sasl_ssl_with_scram_produces_and_consumes() {
    let security = sasl_ssl(Some(ca()), &required_env(KAFKA_SASL_PASSWORD_VAR));
    let client = kafka::connect_with(&brokers(), "kit-tls-test", &security)
        .await
        .unwrap();
    let topic = unique_name("kit-tls");
    kafka::ensure_topic(&client, &topic).await.unwrap();
    let partition = kafka::partition(&client, &topic).await.unwrap();
    let record = Record {
        key: Some(b"order-1".to_vec()),
        value: Some(br#"{"type":"order.created"}"#.to_vec()),
        headers: BTreeMap::from([(
            kafka::EVENT_ID_HEADER.to_owned(),
            b"7b0c7d1e-0000-4000-8000-000000000001".to_vec(),
        )]),
        timestamp: Utc::now(),
    };
    let offsets = partition
        .produce(vec![record.clone()], Compression::NoCompression)
        .await
        .unwrap();
    assert_eq!(offsets, vec![0]);
    let (records, high_watermark) = partition
        .fetch_records(0, 1..1_000_000, 1_000)
        .await
        .unwrap();
    assert_eq!(high_watermark, 1);
    assert_eq!(records.len(), 1);
    assert_eq!(records[0].record.key, record.key);
    assert_eq!(records[0].record.value, record.value);
    assert_eq!(records[0].record.headers, record.headers);
    // The readiness check the services run works over the same connection.
    assert!(
        client
            .list_topics()
            .await
            .unwrap()
            .iter()
            .any(|t| t.name == topic)
    );
}

#[tokio::test]
async fn kafka_refuses_a_wrong_scram_password() {
    let error = refused(&sasl_ssl(Some(ca()), "not-the-password")).await;
    // The TLS handshake succeeded; the broker then turned the SCRAM exchange down.
    assert!(error.contains("SaslAuthenticationFailed"), "{error}");
}

#[tokio::test]
async fn kafka_refuses_a_client_that_does_not_trust_the_brokers_ca() {
    // No CA file: the public web PKI roots, which never signed the test CA.
    let error = refused(&sasl_ssl(None, &required_env(KAFKA_SASL_PASSWORD_VAR))).await;
    assert!(error.contains("UnknownIssuer"), "{error}");
    // A CA bundle, but the wrong one.
    let other = PathBuf::from(required_env(TLS_OTHER_CA_FILE_VAR));
    let error = refused(&sasl_ssl(
        Some(other),
        &required_env(KAFKA_SASL_PASSWORD_VAR),
    ))
    .await;
    assert!(error.contains("UnknownIssuer"), "{error}");
}

#[tokio::test]
async fn kafka_sasl_ssl_listener_requires_a_login() {
    let tls_only = Security::new(SecurityProtocol::Ssl, Some(&ca()), None).unwrap();
    refused(&tls_only).await;
    // And a plaintext client does not get through to the TLS port either.
    refused(&Security::plaintext()).await;
}

fn tls_database_options() -> PgConnectOptions {
    PgConnectOptions::from_str(&required_env(TLS_DATABASE_URL_VAR)).unwrap()
}

#[tokio::test]
async fn postgres_verify_full_against_the_test_ca() {
    let url = required_env(TLS_DATABASE_URL_VAR);
    assert!(url.contains("sslmode=verify-full"), "{url}");
    // The services' own path: DATABASE_URL through db::connect.
    let pool = db::connect(&Secret::new(url), 2).await.unwrap();
    let (ssl, version): (bool, String) =
        sqlx::query_as("SELECT ssl, version FROM pg_stat_ssl WHERE pid = pg_backend_pid()")
            .fetch_one(&pool)
            .await
            .unwrap();
    assert!(ssl);
    assert!(version.starts_with("TLSv1."), "{version}");
    pool.close().await;

    // A database made for a test keeps the URL's TLS parameters (the binary tests rely on it).
    let database = TestDatabase::create_on(TLS_DATABASE_URL_VAR, "kit_tls")
        .await
        .unwrap();
    assert!(database.url().contains("sslmode=verify-full"));
    let mut connection = PgConnectOptions::from_str(&database.url())
        .unwrap()
        .connect()
        .await
        .unwrap();
    let name: String = sqlx::query_scalar("SELECT current_database()")
        .fetch_one(&mut connection)
        .await
        .unwrap();
    assert_eq!(name, database.name);
    connection.close().await.unwrap();
    database.drop_database().await.unwrap();
}

#[tokio::test]
async fn postgres_verify_full_refuses_a_wrong_ca() {
    let other = required_env(TLS_OTHER_CA_FILE_VAR);
    let options = tls_database_options().ssl_root_cert(&other);
    let error = options.connect().await.unwrap_err();
    assert!(error.to_string().contains("UnknownIssuer"), "{error}");
    // db::connect gives up at once on a certificate the CA bundle does not vouch for, instead of
    // retrying it for a minute like an unreachable server.
    let started = Instant::now();
    let error = db::connect_with(options, 1).await.unwrap_err();
    assert!(started.elapsed() < Duration::from_secs(10), "{error:?}");
    assert!(error_chain(&error).contains("UnknownIssuer"), "{error:?}");
}

#[tokio::test]
async fn postgres_verify_full_refuses_a_host_the_certificate_does_not_name() {
    let options = tls_database_options();
    let server: SocketAddr = format!("127.0.0.1:{}", options.get_port()).parse().unwrap();
    // 127.0.0.2 reaches the server through a TCP relay, but the certificate names only
    // 127.0.0.1 and localhost.
    let relay = relay_to(server).await;
    let via_relay = options.host("127.0.0.2").port(relay.port());
    // The relay works: `require` (TLS, no certificate check) gets through it. (Not verify-ca:
    // with this rustls, sqlx's verify-ca checks the name too, as its name-skipping verifier
    // matches an error variant rustls no longer returns.)
    let connection = via_relay
        .clone()
        .ssl_mode(PgSslMode::Require)
        .connect()
        .await
        .unwrap();
    connection.close().await.unwrap();
    // verify-full refuses the name.
    let error = via_relay
        .ssl_mode(PgSslMode::VerifyFull)
        .connect()
        .await
        .unwrap_err();
    assert!(error.to_string().contains("not valid for name"), "{error}");
}

#[tokio::test]
async fn postgres_tls_server_refuses_plaintext() {
    // What makes the tests above mean something: this server never talks in clear.
    let error = tls_database_options()
        .ssl_mode(PgSslMode::Disable)
        .connect()
        .await
        .unwrap_err();
    assert!(error.to_string().contains("no encryption"), "{error}");
}

/// Relays every connection made to the returned loopback address on 127.0.0.2 to `server`.
async fn relay_to(server: SocketAddr) -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.2:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((mut inbound, _)) = listener.accept().await {
            tokio::spawn(async move {
                if let Ok(mut outbound) = tokio::net::TcpStream::connect(server).await {
                    let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
                }
            });
        }
    });
    address
}
