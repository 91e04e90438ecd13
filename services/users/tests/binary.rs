//! The `panthera-users` binary as a rendered platform runs it: configured only through the
//! environment of `docs/contracts.md`, migrating its database at start, ready when PostgreSQL and
//! Kafka answer, publishing `user.created`, logging JSON without secrets, and stopping cleanly on
//! SIGTERM.

// Test helpers outside #[test] functions unwrap too: a failure there is a test failure.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::process::{Command, Stdio};
use std::time::Duration;

use panthera_kit::kafka;
use panthera_kit::testing::{
    KAFKA_BROKERS_VAR, TestDatabase, free_port, service_command, service_env, unique_name,
};
use serde_json::{Value, json};

const SECRET: &str = "binary-test-secret-0123456789abcdef";
const PASSWORD: &str = "very secret password";

#[tokio::test]
async fn binary_runs_from_the_rendered_environment() {
    let Some(brokers) = service_env(KAFKA_BROKERS_VAR) else {
        return;
    };
    let Some(db) = TestDatabase::create("users_bin").await.unwrap() else {
        return;
    };
    let port = free_port();
    let topic = unique_name("users-events");
    let child = service_command(env!("CARGO_BIN_EXE_panthera-users"), "users", port)
        .env("DATABASE_URL", db.url())
        .env("KAFKA_BROKERS", &brokers)
        .env("KAFKA_TOPICS", &topic)
        .env("JWT_ISSUER", "https://auth.shop.example.com")
        .env("JWT_AUDIENCE", "shop")
        .env("JWT_HS256_SECRET", SECRET)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let base = format!("http://127.0.0.1:{port}");
    let http = reqwest::Client::new();

    let mut ready = false;
    for _ in 0..150 {
        if let Ok(response) = http.get(format!("{base}/readyz")).send().await
            && response.status() == 200
        {
            let body: Value = response.json().await.unwrap();
            assert_eq!(body["checks"], json!({"postgres": "ok", "kafka": "ok"}));
            ready = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(ready, "the binary became ready");

    let response = http
        .post(format!("{base}/v1/users"))
        .json(&json!({"firstName": "Katherine", "lastName": "Johnson", "email": "kj@example.com", "password": PASSWORD}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 201);
    let user: Value = response.json().await.unwrap();
    let response = http
        .post(format!("{base}/v1/auth/token"))
        .json(&json!({"email": "kj@example.com", "password": PASSWORD}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let metrics = http
        .get(format!("{base}/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(metrics.contains("route=\"/v1/users\""), "{metrics}");

    // The relay publishes user.created to the configured topic.
    let client = kafka::connect(
        &brokers.split(',').map(str::to_owned).collect::<Vec<_>>(),
        "users-binary-test",
    )
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
    assert!(!event.to_string().contains("argon2"));
    let metrics = http
        .get(format!("{base}/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics.contains("outbox_events_published_total"),
        "{metrics}"
    );

    let pid = child.id().unwrap().to_string();
    let killed = Command::new("kill").args(["-TERM", &pid]).status().unwrap();
    assert!(killed.success());
    let output = tokio::time::timeout(Duration::from_secs(30), child.wait_with_output())
        .await
        .expect("the binary stopped after SIGTERM")
        .unwrap();
    assert!(output.status.success(), "exit status {:?}", output.status);
    let logs = String::from_utf8_lossy(&output.stdout);
    let lines: Vec<&str> = logs
        .lines()
        .filter(|line| !line.trim().is_empty())
        .collect();
    assert!(lines.len() >= 3, "{logs}");
    for line in &lines {
        let entry: Value =
            serde_json::from_str(line).unwrap_or_else(|_| panic!("not a JSON log line: {line}"));
        assert!(entry["level"].is_string(), "{line}");
    }
    assert!(logs.contains("user created"), "{logs}");
    assert!(logs.contains("shutdown requested"), "{logs}");
    for secret in [PASSWORD, SECRET, "argon2"] {
        assert!(!logs.contains(secret), "the log leaks {secret}");
        assert!(!String::from_utf8_lossy(&output.stderr).contains(secret));
    }
    db.drop_database().await.unwrap();
}
