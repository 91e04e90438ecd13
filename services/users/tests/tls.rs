//! The `panthera-users` binary on encrypted connections only, as on AWS: PostgreSQL with
//! `sslmode=verify-full` against a CA bundle the platform names, Kafka over SASL_SSL with
//! SCRAM-SHA-512 (MSK's SCRAM listener). The servers of `scripts/test-services.sh` accept
//! nothing else, so a service that fell back to plaintext, or skipped the login, never gets ready.
//!
//! Without the servers this test fails (it does not skip): `required_env`.

// Test helpers outside #[test] functions unwrap too: a failure there is a test failure.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use panthera_kit::Secret;
use panthera_kit::kafka::{self, SaslCredentials, SaslMechanism, Security, SecurityProtocol};
use panthera_kit::testing::{
    KAFKA_SASL_MECHANISM_VAR, KAFKA_SASL_PASSWORD_VAR, KAFKA_SASL_USERNAME_VAR,
    KAFKA_TLS_BROKERS_VAR, TLS_CA_FILE_VAR, TLS_DATABASE_URL_VAR, TestDatabase, free_port,
    required_env, service_command, unique_name,
};
use serde_json::{Value, json};

#[tokio::test]
async fn binary_reaches_postgres_and_kafka_over_tls_only() {
    let brokers = required_env(KAFKA_TLS_BROKERS_VAR);
    let ca_file = required_env(TLS_CA_FILE_VAR);
    let mechanism = required_env(KAFKA_SASL_MECHANISM_VAR);
    let username = required_env(KAFKA_SASL_USERNAME_VAR);
    let password = required_env(KAFKA_SASL_PASSWORD_VAR);
    let db = TestDatabase::create_on(TLS_DATABASE_URL_VAR, "users_tls")
        .await
        .unwrap();
    let url = db.url();
    assert!(url.contains("sslmode=verify-full") && url.contains("sslrootcert="));
    let port = free_port();
    let topic = unique_name("users-tls-events");
    let child = service_command(env!("CARGO_BIN_EXE_panthera-users"), "users", port)
        .env("DATABASE_URL", &url)
        .env("KAFKA_BROKERS", &brokers)
        .env("KAFKA_TOPICS", &topic)
        .env("KAFKA_SECURITY_PROTOCOL", "SASL_SSL")
        .env("KAFKA_SASL_MECHANISM", &mechanism)
        .env("KAFKA_SASL_USERNAME", &username)
        .env("KAFKA_SASL_PASSWORD", &password)
        .env("KAFKA_CA_FILE", &ca_file)
        .env("JWT_ISSUER", "https://auth.shop.example.com")
        .env("JWT_AUDIENCE", "shop")
        .env("JWT_HS256_SECRET", "tls-test-secret-0123456789abcdef0123")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let base = format!("http://127.0.0.1:{port}");
    let http = reqwest::Client::new();

    let mut checks = Value::Null;
    for _ in 0..300 {
        if let Ok(response) = http.get(format!("{base}/readyz")).send().await
            && let Ok(body) = response.json::<Value>().await
        {
            checks = body["checks"].clone();
            if checks == json!({"postgres": "ok", "kafka": "ok"}) {
                break;
            }
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(
        checks,
        json!({"postgres": "ok", "kafka": "ok"}),
        "readiness"
    );

    // Every connection of the service to its database is TLS (the server would refuse any other,
    // this shows the service's pool is among them).
    let (connections, encrypted): (i64, i64) = sqlx::query_as(
        "SELECT count(*), count(*) FILTER (WHERE s.ssl) FROM pg_stat_activity a \
         JOIN pg_stat_ssl s USING (pid) WHERE a.datname = $1 AND a.pid <> pg_backend_pid()",
    )
    .bind(&db.name)
    .fetch_one(&db.pool)
    .await
    .unwrap();
    assert!(
        connections > 0 && connections == encrypted,
        "{connections} {encrypted}"
    );

    let response = http
        .post(format!("{base}/v1/users"))
        .json(&json!({"firstName": "Grace", "lastName": "Hopper", "email": "gh@example.com", "password": "very secret password"}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 201);
    let user: Value = response.json().await.unwrap();

    // The relay published user.created over SASL_SSL; read it back the same way.
    let security = Security::new(
        SecurityProtocol::SaslSsl,
        Some(Path::new(&ca_file)),
        Some(SaslCredentials {
            mechanism: <SaslMechanism as clap::ValueEnum>::from_str(&mechanism, false).unwrap(),
            username,
            password: Secret::new(password.clone()),
        }),
    )
    .unwrap();
    let brokers: Vec<String> = brokers.split(',').map(str::to_owned).collect();
    let client = kafka::connect_with(&brokers, "users-tls-test", &security)
        .await
        .unwrap();
    let partition = kafka::partition(&client, &topic).await.unwrap();
    let mut event = None;
    for _ in 0..100 {
        let (records, _) = partition.fetch_records(0, 1..1_000_000, 200).await.unwrap();
        if let Some(record) = records.first() {
            event = Some(
                serde_json::from_slice::<Value>(record.record.value.as_deref().unwrap()).unwrap(),
            );
            break;
        }
    }
    let event = event.expect("user.created was published");
    assert_eq!(event["type"], "user.created");
    assert_eq!(event["data"]["id"], user["id"]);

    let pid = child.id().unwrap().to_string();
    assert!(
        Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .unwrap()
            .success()
    );
    let output = tokio::time::timeout(Duration::from_secs(30), child.wait_with_output())
        .await
        .expect("the binary stopped after SIGTERM")
        .unwrap();
    assert!(output.status.success(), "exit status {:?}", output.status);
    let logs = String::from_utf8_lossy(&output.stdout);
    assert!(logs.contains("SaslSsl"), "{logs}");
    let stderr = String::from_utf8_lossy(&output.stderr);
    for secret in [password.as_str(), password_of(&url)] {
        assert!(!secret.is_empty());
        assert!(
            !logs.contains(secret) && !stderr.contains(secret),
            "the log leaks a password"
        );
    }
    db.drop_database().await.unwrap();
}

/// The password in a `postgres://user:password@host/...` URL.
fn password_of(url: &str) -> &str {
    let credentials = url
        .split_once("://")
        .and_then(|(_, rest)| rest.split_once('@'))
        .map_or("", |(credentials, _)| credentials);
    credentials.split_once(':').map_or("", |(_, p)| p)
}
