//! Transactional outbox: a service writes its events into the `outbox` table in the same
//! transaction as the state change, and the [`Relay`] publishes them to Kafka afterwards.
//!
//! Delivery is at least once: the relay marks rows published only after the broker acknowledged
//! them, so a crash in between publishes them again. Every record carries the event's UUID
//! ([`EVENT_ID_HEADER`](crate::kafka::EVENT_ID_HEADER)), and consumers (see [`crate::inbox`]) apply
//! each id once, which makes the effect exactly once.
//!
//! Each service's migrations must create the table:
//!
//! ```sql
//! CREATE TABLE outbox (
//!     position     BIGSERIAL PRIMARY KEY,
//!     event_id     UUID NOT NULL UNIQUE,
//!     topic        TEXT NOT NULL,
//!     key          TEXT NOT NULL,
//!     event_type   TEXT NOT NULL,
//!     payload      JSONB NOT NULL,
//!     created_at   TIMESTAMPTZ NOT NULL DEFAULT now(),
//!     published_at TIMESTAMPTZ,
//!     traceparent  TEXT
//! );
//! CREATE INDEX outbox_unpublished ON outbox (position) WHERE published_at IS NULL;
//! ```

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::AtomicU64;
use std::time::Duration;

use chrono::{DateTime, Utc};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::gauge::Gauge;
use rskafka::client::Client;
use rskafka::client::partition::{Compression, PartitionClient};
use rskafka::record::Record;
use serde::{Deserialize, Serialize};
use sqlx::{PgConnection, PgPool};
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use crate::kafka::{self, EVENT_ID_HEADER, EVENT_TYPE_HEADER, KafkaError};

/// Only one relay per database publishes at a time, so rows leave in `position` order even with
/// several replicas. (Arbitrary constant: ASCII "pnthrobx".)
const RELAY_LOCK_KEY: i64 = 0x706e_7468_726f_6278;

/// How often the relay measures the backlog: a count over the partial index of unpublished rows,
/// cheap, but not worth doing on every 200 ms poll.
const BACKLOG_SAMPLE_INTERVAL: Duration = Duration::from_secs(5);

/// The events still waiting in the outbox.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Backlog {
    /// Unpublished rows.
    pub events: i64,
    /// Age of the oldest unpublished row, 0 when there is none.
    pub oldest_seconds: f64,
}

/// Measures the backlog of the outbox in `pool`'s schema.
pub async fn backlog(pool: &PgPool) -> Result<Backlog, sqlx::Error> {
    let (events, oldest_seconds): (i64, f64) = sqlx::query_as(
        "SELECT count(*), \
         COALESCE(EXTRACT(EPOCH FROM now() - min(created_at)), 0)::float8 \
         FROM outbox WHERE published_at IS NULL",
    )
    .fetch_one(pool)
    .await?;
    Ok(Backlog {
        events,
        oldest_seconds: oldest_seconds.max(0.0),
    })
}

/// An event to record in the outbox.
#[derive(Debug, Clone)]
pub struct OutgoingEvent {
    pub topic: String,
    /// Aggregate id (e.g. the order id); becomes the Kafka record key.
    pub key: String,
    /// e.g. `order.created`.
    pub event_type: String,
    pub data: serde_json::Value,
}

/// The JSON value of every published record.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct EventEnvelope {
    pub id: Uuid,
    #[serde(rename = "type")]
    pub event_type: String,
    pub occurred_at: DateTime<Utc>,
    pub data: serde_json::Value,
}

/// Writes `event` into the outbox within the caller's transaction; returns the event id.
pub async fn enqueue(conn: &mut PgConnection, event: &OutgoingEvent) -> Result<Uuid, sqlx::Error> {
    let id = Uuid::new_v4();
    sqlx::query(
        "INSERT INTO outbox (event_id, topic, key, event_type, payload, traceparent) \
         VALUES ($1, $2, $3, $4, $5, $6)",
    )
    .bind(id)
    .bind(&event.topic)
    .bind(&event.key)
    .bind(&event.event_type)
    .bind(&event.data)
    .bind(crate::spans::current_traceparent())
    .execute(conn)
    .await?;
    Ok(id)
}

#[derive(Debug, thiserror::Error)]
pub enum RelayError {
    #[error("reading unpublished events from the outbox")]
    Read(#[source] sqlx::Error),
    #[error("marking events as published in the outbox")]
    Mark(#[source] sqlx::Error),
    #[error("encoding an outbox event")]
    Encode(#[source] serde_json::Error),
    #[error("preparing Kafka topic")]
    Topic(#[source] KafkaError),
    #[error("publishing {count} events to Kafka topic {topic}")]
    Publish {
        topic: String,
        count: usize,
        #[source]
        source: rskafka::client::error::Error,
    },
}

#[derive(sqlx::FromRow)]
struct OutboxRow {
    position: i64,
    event_id: Uuid,
    topic: String,
    key: String,
    event_type: String,
    payload: serde_json::Value,
    created_at: DateTime<Utc>,
    traceparent: Option<String>,
}

impl OutboxRow {
    /// The Kafka record, with `traceparent` in its headers when `span` (the produce span) is
    /// recorded.
    fn into_record(self, span: Option<&tracing::Span>) -> Result<Record, serde_json::Error> {
        let envelope = EventEnvelope {
            id: self.event_id,
            event_type: self.event_type.clone(),
            occurred_at: self.created_at,
            data: self.payload,
        };
        let trace = span
            .map(panthera_otel::context_pairs)
            .unwrap_or_default()
            .into_iter()
            .map(|(name, value)| (name, value.into_bytes()));
        Ok(Record {
            key: Some(self.key.into_bytes()),
            value: Some(serde_json::to_vec(&envelope)?),
            headers: [
                (
                    EVENT_ID_HEADER.to_owned(),
                    self.event_id.to_string().into_bytes(),
                ),
                (EVENT_TYPE_HEADER.to_owned(), self.event_type.into_bytes()),
            ]
            .into_iter()
            .chain(trace)
            .collect(),
            timestamp: self.created_at,
        })
    }
}

/// Publishes outbox rows in order and marks them published.
pub struct Relay {
    pool: PgPool,
    client: Arc<Client>,
    partitions: HashMap<String, PartitionClient>,
    batch_size: i64,
    poll_interval: Duration,
    retention: Duration,
    stall_after_publish: Option<Arc<Notify>>,
    published: Counter,
    failures: Counter,
    unpublished: Gauge,
    oldest_unpublished: Gauge<f64, AtomicU64>,
}

impl std::fmt::Debug for Relay {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Relay")
            .field("batch_size", &self.batch_size)
            .field("poll_interval", &self.poll_interval)
            .finish_non_exhaustive()
    }
}

impl Relay {
    pub fn new(pool: PgPool, client: Arc<Client>) -> Self {
        Self {
            pool,
            client,
            partitions: HashMap::new(),
            batch_size: 100,
            poll_interval: Duration::from_millis(200),
            retention: Duration::from_secs(7 * 24 * 3600),
            stall_after_publish: None,
            published: Counter::default(),
            failures: Counter::default(),
            unpublished: Gauge::default(),
            oldest_unpublished: Gauge::default(),
        }
    }

    pub fn batch_size(mut self, batch_size: i64) -> Self {
        self.batch_size = batch_size.max(1);
        self
    }

    pub fn poll_interval(mut self, interval: Duration) -> Self {
        self.poll_interval = interval;
        self
    }

    /// How long published rows are kept (for audits and replays) before they are deleted.
    pub fn retention(mut self, retention: Duration) -> Self {
        self.retention = retention;
        self
    }

    /// Exports `outbox_events_published_total`, `outbox_relay_failures_total`, and the backlog
    /// measured every few seconds: `outbox_unpublished_events` and
    /// `outbox_oldest_unpublished_age_seconds`.
    pub fn with_metrics(self, metrics: &crate::metrics::Metrics) -> Self {
        metrics.register(
            "outbox_unpublished_events",
            "Events in the outbox not yet published to Kafka",
            self.unpublished.clone(),
        );
        metrics.register(
            "outbox_oldest_unpublished_age_seconds",
            "Age of the oldest event in the outbox not yet published to Kafka (0: none)",
            self.oldest_unpublished.clone(),
        );
        metrics.register(
            "outbox_events_published",
            "Events the outbox relay published to Kafka",
            self.published.clone(),
        );
        metrics.register(
            "outbox_relay_failures",
            "Failed outbox relay rounds (retried)",
            self.failures.clone(),
        );
        self
    }

    /// Fault injection for crash tests: after the broker acknowledged a batch and before the rows
    /// are marked, notify `signal` and hang, so the test can kill the relay at exactly that point.
    #[doc(hidden)]
    pub fn stall_after_publish(mut self, signal: Arc<Notify>) -> Self {
        self.stall_after_publish = Some(signal);
        self
    }

    async fn partition_for(&mut self, topic: &str) -> Result<&PartitionClient, RelayError> {
        if !self.partitions.contains_key(topic) {
            kafka::ensure_topic(&self.client, topic)
                .await
                .map_err(RelayError::Topic)?;
            let partition = kafka::partition(&self.client, topic)
                .await
                .map_err(RelayError::Topic)?;
            self.partitions.insert(topic.to_owned(), partition);
        }
        self.partitions.get(topic).ok_or_else(|| {
            RelayError::Topic(KafkaError::Partition {
                topic: topic.to_owned(),
                source: rskafka::client::error::Error::InvalidResponse(
                    "partition client vanished".to_owned(),
                ),
            })
        })
    }

    /// Publishes one batch; returns how many events were published (0 when another relay holds
    /// the lock or nothing is pending).
    pub async fn publish_pending(&mut self) -> Result<usize, RelayError> {
        let mut tx = self.pool.begin().await.map_err(RelayError::Read)?;
        let locked: bool = sqlx::query_scalar("SELECT pg_try_advisory_xact_lock($1)")
            .bind(RELAY_LOCK_KEY)
            .fetch_one(&mut *tx)
            .await
            .map_err(RelayError::Read)?;
        if !locked {
            return Ok(0);
        }
        let rows: Vec<OutboxRow> = sqlx::query_as(
            "SELECT position, event_id, topic, key, event_type, payload, created_at, traceparent \
             FROM outbox WHERE published_at IS NULL ORDER BY position LIMIT $1",
        )
        .bind(self.batch_size)
        .fetch_all(&mut *tx)
        .await
        .map_err(RelayError::Read)?;
        if rows.is_empty() {
            return Ok(0);
        }
        let positions: Vec<i64> = rows.iter().map(|row| row.position).collect();

        // Consecutive rows of one topic go in one produce request; topics keep their row order.
        let mut runs: Vec<(String, Vec<Record>)> = Vec::new();
        // One producer span per traced event, open until the broker acknowledged it; the
        // consumer's span is its child through the record's traceparent header.
        let mut produce_spans = Vec::new();
        for row in rows {
            let topic = row.topic.clone();
            let span = crate::spans::kafka_produce(&topic, row.traceparent.as_deref());
            let record = row.into_record(span.as_ref()).map_err(RelayError::Encode)?;
            produce_spans.extend(span);
            match runs.last_mut() {
                Some((last, records)) if *last == topic => records.push(record),
                _ => runs.push((topic, vec![record])),
            }
        }
        for (topic, records) in runs {
            let count = records.len();
            let partition = self.partition_for(&topic).await?;
            partition
                .produce(records, Compression::NoCompression)
                .await
                .map_err(|source| RelayError::Publish {
                    topic: topic.clone(),
                    count,
                    source,
                })?;
        }

        drop(produce_spans);

        if let Some(signal) = &self.stall_after_publish {
            signal.notify_one();
            std::future::pending::<()>().await;
        }

        sqlx::query("UPDATE outbox SET published_at = now() WHERE position = ANY($1)")
            .bind(&positions)
            .execute(&mut *tx)
            .await
            .map_err(RelayError::Mark)?;
        tx.commit().await.map_err(RelayError::Mark)?;
        self.published.inc_by(positions.len() as u64);
        Ok(positions.len())
    }

    async fn delete_expired(&self) -> Result<u64, sqlx::Error> {
        let seconds = i64::try_from(self.retention.as_secs()).unwrap_or(i64::MAX);
        sqlx::query(
            "DELETE FROM outbox WHERE published_at IS NOT NULL \
             AND published_at < now() - make_interval(secs => $1::double precision)",
        )
        .bind(seconds as f64)
        .execute(&self.pool)
        .await
        .map(|done| done.rows_affected())
    }

    /// Measures the backlog into the relay's gauges.
    pub async fn sample_backlog(&self) -> Result<Backlog, sqlx::Error> {
        let measured = backlog(&self.pool).await?;
        self.unpublished.set(measured.events);
        self.oldest_unpublished.set(measured.oldest_seconds);
        Ok(measured)
    }

    /// Publishes until `shutdown` is cancelled; errors are logged and retried with backoff.
    pub async fn run(mut self, shutdown: CancellationToken) {
        let mut failures: u32 = 0;
        let mut last_cleanup = tokio::time::Instant::now();
        let mut last_sample: Option<tokio::time::Instant> = None;
        loop {
            // Before publishing: a relay whose every round fails still reports the backlog
            // growing behind it.
            if last_sample.is_none_or(|at| at.elapsed() >= BACKLOG_SAMPLE_INTERVAL) {
                last_sample = Some(tokio::time::Instant::now());
                if let Err(error) = self.sample_backlog().await {
                    tracing::warn!(%error, "measuring the outbox backlog failed");
                }
            }
            let wait = match self.publish_pending().await {
                Ok(published) => {
                    failures = 0;
                    if published > 0 {
                        tracing::debug!(published, "outbox events published");
                    }
                    if published as i64 >= self.batch_size {
                        Duration::ZERO
                    } else {
                        self.poll_interval
                    }
                }
                Err(error) => {
                    failures = failures.saturating_add(1);
                    self.failures.inc();
                    let wait = Duration::from_millis(200 * 2u64.pow(failures.min(6)));
                    tracing::warn!(error = %error_chain(&error), ?wait, "outbox relay failed; retrying");
                    self.partitions.clear();
                    wait
                }
            };
            if last_cleanup.elapsed() > Duration::from_secs(600) {
                last_cleanup = tokio::time::Instant::now();
                if let Err(error) = self.delete_expired().await {
                    tracing::warn!(%error, "deleting old outbox rows failed");
                }
            }
            tokio::select! {
                () = shutdown.cancelled() => return,
                () = tokio::time::sleep(wait) => {}
            }
        }
    }
}

/// `error: cause: cause` for logs.
pub fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}
