//! End to end: orders are placed and settled; the outbox relay crashes after the broker took the
//! events and before it marked them; after a restart every event is on Kafka twice, and the
//! catalog's stock consumer still applies each exactly once.

// Test helpers outside #[test] functions unwrap too: a failure there is a test failure.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::sync::Arc;
use std::time::Duration;

use axum::http::{Method, StatusCode};
use common::{Env, order_body};
use panthera_catalog::cache::Cache;
use panthera_catalog::stock_consumer::{CONSUMER_NAME, StockHandler};
use panthera_kit::inbox::Consumer;
use panthera_kit::kafka;
use panthera_kit::outbox::Relay;
use panthera_kit::testing::{KAFKA_BROKERS_VAR, service_env, unique_name};
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

#[tokio::test]
async fn relay_crash_between_publish_and_mark_settles_stock_exactly_once() {
    let Some(brokers) = service_env(KAFKA_BROKERS_VAR) else {
        return;
    };
    let topic = unique_name("orders");
    let Some(env) = Env::new(Some(&topic)).await else {
        return;
    };
    env.migrate().await;
    let brokers: Vec<String> = brokers.split(',').map(str::to_owned).collect();
    let client = kafka::connect(&brokers, "orders-test").await.unwrap();

    let tent = env.product("TENT", 25_000, 100).await;
    let mut orders = Vec::new();
    for _ in 0..8 {
        let (status, order) = env
            .call(
                Method::POST,
                "/v1/orders",
                Some(order_body(Uuid::new_v4(), &[(tent, 2)])),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{order}");
        orders.push(order["id"].as_str().unwrap().to_owned());
    }
    assert_eq!(env.stock(tent).await, (84, 16));
    for id in &orders[..3] {
        for action in ["pay", "ship"] {
            let (status, _) = env
                .call(Method::POST, &format!("/v1/orders/{id}/{action}"), None)
                .await;
            assert_eq!(status, StatusCode::OK);
        }
    }
    for id in &orders[3..] {
        let (status, _) = env
            .call(Method::POST, &format!("/v1/orders/{id}/cancel"), None)
            .await;
        assert_eq!(status, StatusCode::OK);
    }
    // 8 created + 3 paid + 3 shipped + 5 cancelled; stock is settled only by the consumer.
    const EVENTS: usize = 19;
    assert_eq!(env.stock(tent).await, (84, 16));

    let published = Arc::new(Notify::new());
    let crashing = Relay::new(env.orders_db.pool.clone(), Arc::clone(&client))
        .stall_after_publish(Arc::clone(&published));
    let task = tokio::spawn(crashing.run(CancellationToken::new()));
    tokio::time::timeout(Duration::from_secs(30), published.notified())
        .await
        .expect("the relay published");
    task.abort();
    let _ = task.await;
    let unmarked: i64 =
        sqlx::query_scalar("SELECT count(*) FROM outbox WHERE published_at IS NULL")
            .fetch_one(&env.orders_db.pool)
            .await
            .unwrap();
    assert_eq!(unmarked as usize, EVENTS);

    let shutdown = CancellationToken::new();
    let relay = tokio::spawn(
        Relay::new(env.orders_db.pool.clone(), Arc::clone(&client))
            .poll_interval(Duration::from_millis(50))
            .run(shutdown.clone()),
    );

    let mut consumer = Consumer::new(
        env.catalog_db.pool.clone(),
        Arc::clone(&client),
        CONSUMER_NAME,
        &topic,
        StockHandler::new(
            Cache::disabled(),
            panthera_catalog::events::ProductEvents::disabled(),
        ),
    )
    .max_wait(Duration::from_millis(100));
    let (mut applied, mut duplicates) = (0, 0);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    while applied + duplicates < 2 * EVENTS && tokio::time::Instant::now() < deadline {
        let outcome = consumer.poll_once().await.unwrap();
        applied += outcome.applied;
        duplicates += outcome.duplicates;
        assert_eq!(outcome.undecodable, 0);
    }
    shutdown.cancel();
    relay.await.unwrap();

    assert_eq!(
        (applied, duplicates),
        (EVENTS, EVENTS),
        "each event arrived twice and was applied once"
    );
    let unmarked: i64 =
        sqlx::query_scalar("SELECT count(*) FROM outbox WHERE published_at IS NULL")
            .fetch_one(&env.orders_db.pool)
            .await
            .unwrap();
    assert_eq!(unmarked, 0);
    // 3 shipped orders took 6 units away; 5 cancelled orders gave 10 back.
    assert_eq!(env.stock(tent).await, (94, 0));
    let movements: Vec<(String, i64)> = sqlx::query_as(
        "SELECT reason, count(*) FROM stock_movements GROUP BY reason ORDER BY reason",
    )
    .fetch_all(&env.catalog_db.pool)
    .await
    .unwrap();
    assert_eq!(
        movements,
        [
            ("commit".to_owned(), 3),
            ("release".to_owned(), 5),
            ("reserve".to_owned(), 8)
        ]
    );
    let processed: i64 = sqlx::query_scalar("SELECT count(*) FROM processed_events")
        .fetch_one(&env.catalog_db.pool)
        .await
        .unwrap();
    assert_eq!(processed as usize, EVENTS);
    env.finish().await;
}
