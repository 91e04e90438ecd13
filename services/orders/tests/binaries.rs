//! The real `panthera-orders` binary, configured only through the rendered environment, next to a
//! catalog started through its `run` entry point: an order reserves stock over HTTP, and its
//! cancellation and shipment reach the catalog through the outbox, Kafka and the stock consumer.

// Test helpers outside #[test] functions unwrap too: a failure there is a test failure.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::process::{Command, Stdio};
use std::time::Duration;

use clap::Parser;
use common::signed_headers as signed;
use panthera_kit::testing::{
    IDENTITY_KEYS, KAFKA_BROKERS_VAR, TestDatabase, free_port, service_command, service_env,
    unique_name,
};
use serde_json::{Value, json};
use uuid::Uuid;

const ADMIN: &[(&str, &str)] = &[
    ("x-panthera-subject", "admin-1"),
    ("x-panthera-roles", "admin"),
];

async fn wait_ready(http: &reqwest::Client, base: &str) {
    for _ in 0..150 {
        if let Ok(response) = http.get(format!("{base}/readyz")).send().await
            && response.status() == 200
        {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("{base} did not become ready");
}

async fn stock(http: &reqwest::Client, catalog: &str, product: &str) -> (i64, i64) {
    let body: Value = http
        .get(format!("{catalog}/v1/products/{product}"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    (
        body["stock"]["available"].as_i64().unwrap(),
        body["stock"]["reserved"].as_i64().unwrap(),
    )
}

async fn wait_for_stock(
    http: &reqwest::Client,
    catalog: &str,
    product: &str,
    expected: (i64, i64),
) {
    let mut seen = (0, 0);
    for _ in 0..300 {
        seen = stock(http, catalog, product).await;
        if seen == expected {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("stock stayed at {seen:?}, expected {expected:?}");
}

#[tokio::test]
async fn orders_binary_settles_stock_through_kafka() {
    let Some(brokers) = service_env(KAFKA_BROKERS_VAR) else {
        return;
    };
    let Some(catalog_db) = TestDatabase::create("bin_catalog").await.unwrap() else {
        return;
    };
    let Some(orders_db) = TestDatabase::create("bin_orders").await.unwrap() else {
        return;
    };
    let topic = unique_name("orders-bin");
    let http = reqwest::Client::new();

    let catalog_port = free_port();
    let catalog_config = panthera_catalog::Config::try_parse_from([
        "panthera-catalog",
        "--bind-address",
        "127.0.0.1",
        "--port",
        &catalog_port.to_string(),
        "--database-url",
        &catalog_db.url(),
        "--kafka-brokers",
        &brokers,
        "--order-events-topic",
        &topic,
        "--identity-keys",
        IDENTITY_KEYS,
    ])
    .unwrap();
    let catalog_task = tokio::spawn(panthera_catalog::run(catalog_config));
    let catalog = format!("http://127.0.0.1:{catalog_port}");

    let orders_port = free_port();
    let child = service_command(env!("CARGO_BIN_EXE_panthera-orders"), "orders", orders_port)
        .env("DATABASE_URL", orders_db.url())
        .env("KAFKA_BROKERS", &brokers)
        .env("KAFKA_TOPICS", &topic)
        .env("CATALOG_URL", &catalog)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let orders = format!("http://127.0.0.1:{orders_port}");
    wait_ready(&http, &catalog).await;
    wait_ready(&http, &orders).await;

    let product: Value = http
        .post(format!("{catalog}/v1/products"))
        .headers(signed("POST", "/v1/products", ADMIN))
        .json(&json!({"sku": "BIN-1", "name": "Binary lamp", "priceCents": 1500, "stockAvailable": 10}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let product = product["id"].as_str().unwrap().to_owned();

    let nil = Uuid::nil().to_string();
    let customer = [("x-panthera-subject", nil.as_str())];
    let place = |quantity: i32, key: &'static str| {
        let http = http.clone();
        let orders = orders.clone();
        let product = product.clone();
        async move {
            let response = http
                .post(format!("{orders}/v1/orders"))
                .header("Idempotency-Key", key)
                // What the gateway adds for a user's token.
                .headers(signed("POST", "/v1/orders", &customer))
                .json(&json!({"customerId": Uuid::nil(), "items": [{"productId": product, "quantity": quantity}]}))
                .send()
                .await
                .unwrap();
            assert!(response.status().is_success(), "{}", response.status());
            let order: Value = response.json().await.unwrap();
            order["id"].as_str().unwrap().to_owned()
        }
    };
    let first = place(4, "bin-1").await;
    assert_eq!(place(4, "bin-1").await, first, "a retry is the same order");
    assert_eq!(stock(&http, &catalog, &product).await, (6, 4));
    let response = http
        .post(format!("{orders}/v1/orders/{first}/cancel"))
        .headers(signed(
            "POST",
            &format!("/v1/orders/{first}/cancel"),
            &customer,
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    wait_for_stock(&http, &catalog, &product, (10, 0)).await;

    let second = place(2, "bin-2").await;
    for action in ["pay", "ship"] {
        let response = http
            .post(format!("{orders}/v1/orders/{second}/{action}"))
            .headers(signed(
                "POST",
                &format!("/v1/orders/{second}/{action}"),
                ADMIN,
            ))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
    }
    wait_for_stock(&http, &catalog, &product, (8, 0)).await;
    let metrics = http
        .get(format!("{catalog}/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(metrics.contains("consumer_events_total{"), "{metrics}");
    assert!(metrics.contains("outcome=\"applied\""), "{metrics}");

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
        .expect("orders stopped after SIGTERM")
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let logs = String::from_utf8_lossy(&output.stdout);
    assert!(
        logs.lines()
            .filter(|l| !l.is_empty())
            .all(|l| serde_json::from_str::<Value>(l).is_ok()),
        "{logs}"
    );
    assert!(logs.contains("order created"), "{logs}");

    catalog_task.abort();
    let _ = catalog_task.await;
    orders_db.drop_database().await.unwrap();
    catalog_db.drop_database().await.unwrap();
}
