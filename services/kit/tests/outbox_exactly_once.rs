//! The outbox relay is killed between the broker's acknowledgement and marking the rows published;
//! after a restart the events are on the topic twice, and the consumer still applies each once.

// Test helpers outside #[test] functions unwrap too: a failure there is a test failure.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;
use std::time::Duration;

use futures::future::BoxFuture;
use panthera_kit::inbox::{Consumer, EventHandler, HandlerError};
use panthera_kit::kafka;
use panthera_kit::outbox::{self, EventEnvelope, OutgoingEvent, Relay};
use panthera_kit::testing::{KAFKA_BROKERS_VAR, TestDatabase, service_env, unique_name};
use sqlx::PgConnection;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

const SCHEMA: &str = r#"
CREATE TABLE outbox (
    position     BIGSERIAL PRIMARY KEY,
    event_id     UUID NOT NULL UNIQUE,
    topic        TEXT NOT NULL,
    key          TEXT NOT NULL,
    event_type   TEXT NOT NULL,
    payload      JSONB NOT NULL,
    created_at   TIMESTAMPTZ NOT NULL DEFAULT now(),
    published_at TIMESTAMPTZ,
    traceparent  TEXT
);
CREATE TABLE processed_events (
    consumer     TEXT NOT NULL,
    event_id     UUID NOT NULL,
    processed_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (consumer, event_id)
);
CREATE TABLE consumer_offsets (
    consumer    TEXT NOT NULL,
    topic       TEXT NOT NULL,
    next_offset BIGINT NOT NULL,
    PRIMARY KEY (consumer, topic)
);
-- No unique constraint on purpose: a duplicate application would show as a second row.
CREATE TABLE applied (event_id UUID NOT NULL, seq INT NOT NULL);
"#;

struct RecordApplied;

impl EventHandler for RecordApplied {
    fn handle<'a>(
        &'a self,
        tx: &'a mut PgConnection,
        event: &'a EventEnvelope,
    ) -> BoxFuture<'a, Result<(), HandlerError>> {
        Box::pin(async move {
            let seq = event.data["seq"].as_i64().ok_or("event without seq")?;
            sqlx::query("INSERT INTO applied (event_id, seq) VALUES ($1, $2)")
                .bind(event.id)
                .bind(i32::try_from(seq)?)
                .execute(&mut *tx)
                .await?;
            Ok(())
        })
    }
}

#[tokio::test]
async fn relay_crash_between_publish_and_mark_applies_each_event_once() {
    let Some(brokers) = service_env(KAFKA_BROKERS_VAR) else {
        return;
    };
    let Some(db) = TestDatabase::create("kit_outbox").await.unwrap() else {
        return;
    };
    sqlx::raw_sql(SCHEMA).execute(&db.pool).await.unwrap();
    let brokers: Vec<String> = brokers.split(',').map(str::to_owned).collect();
    let client = kafka::connect(&brokers, "kit-test").await.unwrap();
    let topic = unique_name("kit-outbox");
    const EVENTS: i64 = 10;

    let mut tx = db.pool.begin().await.unwrap();
    for seq in 0..EVENTS {
        let event = OutgoingEvent {
            topic: topic.clone(),
            key: format!("aggregate-{}", seq % 3),
            event_type: "test.happened".to_owned(),
            data: serde_json::json!({"seq": seq}),
        };
        outbox::enqueue(&mut tx, &event).await.unwrap();
    }
    tx.commit().await.unwrap();
    let backlog = outbox::backlog(&db.pool).await.unwrap();
    assert_eq!(backlog.events, EVENTS);
    assert!(backlog.oldest_seconds >= 0.0, "{backlog:?}");

    // First relay: publishes, then is killed before it can mark the rows.
    let published = Arc::new(Notify::new());
    let relay = Relay::new(db.pool.clone(), Arc::clone(&client))
        .stall_after_publish(Arc::clone(&published));
    let task = tokio::spawn(relay.run(CancellationToken::new()));
    tokio::time::timeout(Duration::from_secs(30), published.notified())
        .await
        .expect("the relay published the batch");
    task.abort();
    let _ = task.await;
    let unpublished: i64 =
        sqlx::query_scalar("SELECT count(*) FROM outbox WHERE published_at IS NULL")
            .fetch_one(&db.pool)
            .await
            .unwrap();
    assert_eq!(unpublished, EVENTS, "the crash left the rows unmarked");

    // Restarted relay publishes the same rows again and marks them.
    let mut relay = Relay::new(db.pool.clone(), Arc::clone(&client));
    assert_eq!(relay.publish_pending().await.unwrap(), EVENTS as usize);
    assert_eq!(relay.publish_pending().await.unwrap(), 0);
    let metrics = panthera_kit::metrics::Metrics::new("kit-test");
    let relay = relay.with_metrics(&metrics);
    let drained = relay.sample_backlog().await.unwrap();
    assert_eq!((drained.events, drained.oldest_seconds), (0, 0.0));
    let text = metrics.encode().unwrap();
    assert!(
        text.contains("outbox_unpublished_events{service=\"kit-test\"} 0"),
        "{text}"
    );

    // Count what is on the topic by reading it: every record, duplicates included, which the
    // partition's offsets alone would not tell.
    let partition = kafka::partition(&client, &topic).await.unwrap();
    let mut on_topic = std::collections::BTreeMap::new();
    let mut next = 0;
    loop {
        let (records, _) = partition
            .fetch_records(next, 1..1_000_000, 100)
            .await
            .unwrap();
        let Some(last) = records.last().map(|r| r.offset) else {
            break;
        };
        for record in records {
            on_topic.insert(
                record.offset,
                record.record.headers[kafka::EVENT_ID_HEADER].clone(),
            );
        }
        next = last + 1;
    }
    assert_eq!(
        on_topic.len() as i64,
        2 * EVENTS,
        "every event is on the topic twice"
    );
    let distinct: std::collections::HashSet<_> = on_topic.values().collect();
    assert_eq!(distinct.len() as i64, EVENTS);

    let mut consumer = Consumer::new(
        db.pool.clone(),
        Arc::clone(&client),
        "kit-test",
        &topic,
        RecordApplied,
    )
    .max_wait(Duration::from_millis(100))
    .with_metrics(&metrics);
    let mut applied = 0;
    let mut duplicates = 0;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while applied + duplicates < 2 * EVENTS as usize && tokio::time::Instant::now() < deadline {
        let outcome = consumer.poll_once().await.unwrap();
        applied += outcome.applied;
        duplicates += outcome.duplicates;
        assert_eq!(outcome.undecodable, 0);
    }
    assert_eq!((applied, duplicates), (EVENTS as usize, EVENTS as usize));
    assert_eq!(consumer.lag(), 0, "every record on the topic was fetched");
    assert!(
        metrics.encode().unwrap().contains("consumer_lag_records{"),
        "the lag is exported"
    );

    let rows: Vec<(i64, i64)> =
        sqlx::query_as("SELECT count(*), count(DISTINCT seq)::bigint FROM applied")
            .fetch_all(&db.pool)
            .await
            .unwrap();
    assert_eq!(rows, vec![(EVENTS, EVENTS)]);

    // Events come out in the order they were written.
    let seqs: Vec<i32> = sqlx::query_scalar(
        "SELECT a.seq FROM applied a JOIN processed_events p ON p.event_id = a.event_id \
         ORDER BY p.processed_at, a.seq",
    )
    .fetch_all(&db.pool)
    .await
    .unwrap();
    assert_eq!(seqs, (0..EVENTS as i32).collect::<Vec<_>>());

    // A restarted consumer resumes after the stored offset and applies nothing again.
    let mut restarted = Consumer::new(
        db.pool.clone(),
        Arc::clone(&client),
        "kit-test",
        &topic,
        RecordApplied,
    )
    .max_wait(Duration::from_millis(100));
    let outcome = restarted.poll_once().await.unwrap();
    assert_eq!(outcome.applied + outcome.duplicates, 0);

    db.drop_database().await.unwrap();
}
