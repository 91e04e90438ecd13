//! Consuming events exactly once in effect: the event id is recorded in the consumer's database in
//! the same transaction as the change the event causes, together with the next offset to read.
//! A redelivered event (the relay published it twice, or the consumer crashed before committing)
//! finds its id already recorded and is skipped.
//!
//! The consumer's migrations must create:
//!
//! ```sql
//! CREATE TABLE processed_events (
//!     consumer     TEXT NOT NULL,
//!     event_id     UUID NOT NULL,
//!     processed_at TIMESTAMPTZ NOT NULL DEFAULT now(),
//!     PRIMARY KEY (consumer, event_id)
//! );
//! CREATE TABLE consumer_offsets (
//!     consumer    TEXT NOT NULL,
//!     topic       TEXT NOT NULL,
//!     next_offset BIGINT NOT NULL,
//!     PRIMARY KEY (consumer, topic)
//! );
//! ```

use std::sync::Arc;
use std::time::Duration;

use futures::future::BoxFuture;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use rskafka::client::Client;
use rskafka::client::error::{Error as RsKafkaError, ProtocolError};
use rskafka::client::partition::{OffsetAt, PartitionClient};
use rskafka::record::RecordAndOffset;
use sqlx::{PgConnection, PgPool};
use tokio_util::sync::CancellationToken;
use tracing::Instrument;
use uuid::Uuid;

use crate::kafka::{self, EVENT_ID_HEADER, KafkaError};
use crate::outbox::{EventEnvelope, error_chain};

pub type HandlerError = Box<dyn std::error::Error + Send + Sync>;

/// Applies one event inside the consumer's transaction.
pub trait EventHandler: Send + Sync + 'static {
    fn handle<'a>(
        &'a self,
        tx: &'a mut PgConnection,
        event: &'a EventEnvelope,
    ) -> BoxFuture<'a, Result<(), HandlerError>>;

    /// Runs after the transaction of an applied event committed (e.g. to invalidate caches).
    fn committed<'a>(&'a self, _event: &'a EventEnvelope) -> BoxFuture<'a, ()> {
        Box::pin(async {})
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ConsumerError {
    #[error("connecting to the consumer's topic")]
    Kafka(#[source] KafkaError),
    #[error("fetching records from Kafka topic {topic}")]
    Fetch {
        topic: String,
        #[source]
        source: RsKafkaError,
    },
    #[error("reading or writing consumer state in the database")]
    Database(#[source] sqlx::Error),
    #[error("handling event {event_id} ({event_type})")]
    Handler {
        event_id: Uuid,
        event_type: String,
        #[source]
        source: HandlerError,
    },
}

/// What one poll did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct PollOutcome {
    pub applied: usize,
    pub duplicates: usize,
    pub undecodable: usize,
}

pub struct Consumer<H> {
    pool: PgPool,
    client: Arc<Client>,
    name: String,
    topic: String,
    handler: H,
    partition: Option<PartitionClient>,
    max_wait_ms: i32,
    events: Family<EventOutcomeLabels, Counter>,
    lag: Family<TopicLabels, Gauge>,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct EventOutcomeLabels {
    outcome: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct TopicLabels {
    topic: String,
}

impl<H> std::fmt::Debug for Consumer<H> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Consumer")
            .field("name", &self.name)
            .field("topic", &self.topic)
            .finish_non_exhaustive()
    }
}

impl<H: EventHandler> Consumer<H> {
    /// `name` identifies this consumer's offsets and processed ids.
    pub fn new(pool: PgPool, client: Arc<Client>, name: &str, topic: &str, handler: H) -> Self {
        Self {
            pool,
            client,
            name: name.to_owned(),
            topic: topic.to_owned(),
            handler,
            partition: None,
            max_wait_ms: 500,
            events: Family::default(),
            lag: Family::default(),
        }
    }

    /// Exports `consumer_events_total{outcome="applied|duplicate|undecodable"}` and
    /// `consumer_lag_records{topic}`.
    pub fn with_metrics(self, metrics: &crate::metrics::Metrics) -> Self {
        metrics.register(
            "consumer_events",
            "Events read by the consumer, by outcome",
            self.events.clone(),
        );
        metrics.register(
            "consumer_lag_records",
            "Records on the topic after the last one fetched (the partition's high watermark minus the next offset), as of the last fetch",
            self.lag.clone(),
        );
        self
    }

    /// The lag measured by the last fetch.
    pub fn lag(&self) -> i64 {
        self.lag
            .get_or_create(&TopicLabels {
                topic: self.topic.clone(),
            })
            .get()
    }

    fn count(&self, outcome: &'static str) {
        self.events
            .get_or_create(&EventOutcomeLabels { outcome })
            .inc();
    }

    /// Longest time a fetch waits on the broker for new records.
    pub fn max_wait(mut self, wait: Duration) -> Self {
        self.max_wait_ms = i32::try_from(wait.as_millis()).unwrap_or(i32::MAX);
        self
    }

    async fn partition(&mut self) -> Result<&PartitionClient, ConsumerError> {
        if self.partition.is_none() {
            kafka::ensure_topic(&self.client, &self.topic)
                .await
                .map_err(ConsumerError::Kafka)?;
            self.partition = Some(
                kafka::partition(&self.client, &self.topic)
                    .await
                    .map_err(ConsumerError::Kafka)?,
            );
        }
        self.partition.as_ref().ok_or_else(|| {
            ConsumerError::Kafka(KafkaError::Partition {
                topic: self.topic.clone(),
                source: RsKafkaError::InvalidResponse("partition client vanished".to_owned()),
            })
        })
    }

    async fn next_offset(&mut self) -> Result<i64, ConsumerError> {
        let mut conn = self.pool.acquire().await.map_err(ConsumerError::Database)?;
        let stored = stored_offset(&mut conn, &self.name, &self.topic)
            .await
            .map_err(ConsumerError::Database)?;
        match stored {
            Some(offset) => Ok(offset),
            // A new consumer starts at the beginning so that nothing published before its first
            // start is missed.
            None => self.earliest().await,
        }
    }

    async fn earliest(&mut self) -> Result<i64, ConsumerError> {
        let topic = self.topic.clone();
        self.partition()
            .await?
            .get_offset(OffsetAt::Earliest)
            .await
            .map_err(|source| ConsumerError::Fetch { topic, source })
    }

    /// Fetches one batch and applies it, one transaction per record.
    pub async fn poll_once(&mut self) -> Result<PollOutcome, ConsumerError> {
        let offset = self.next_offset().await?;
        let max_wait_ms = self.max_wait_ms;
        let topic = self.topic.clone();
        let fetched = self
            .partition()
            .await?
            .fetch_records(offset, 1..4_000_000, max_wait_ms)
            .await;
        let records = match fetched {
            Ok((records, high_watermark)) => {
                // Set at each fetch, before applying: a consumer stuck on a record it cannot
                // apply fetches it again and again, and its lag keeps growing with the topic.
                let next = records.last().map_or(offset, |r| r.offset + 1);
                self.lag
                    .get_or_create(&TopicLabels {
                        topic: self.topic.clone(),
                    })
                    .set((high_watermark - next).max(0));
                records
            }
            Err(RsKafkaError::ServerError {
                protocol_error: ProtocolError::OffsetOutOfRange,
                ..
            }) => {
                // Retention removed what we had not read yet; continue from what is left.
                let earliest = self.earliest().await?;
                tracing::error!(
                    topic,
                    offset,
                    earliest,
                    "consumer offset out of range; skipping ahead"
                );
                self.store_offset_only(earliest).await?;
                return Ok(PollOutcome::default());
            }
            Err(source) => return Err(ConsumerError::Fetch { topic, source }),
        };
        let mut outcome = PollOutcome::default();
        let count = records.len();
        for (index, record) in records.into_iter().enumerate() {
            // Until the whole fetch is applied, the stored position stays where this fetch began:
            // tansu (and any broker answering from batch boundaries) drops records when asked
            // for an offset inside a batch, so a restart must refetch from a boundary. Records
            // applied before a crash are then skipped by their event id.
            let resume_at = if index + 1 == count {
                record.offset + 1
            } else {
                offset
            };
            // The producer's span is the parent: one trace from the request to this consumer.
            let span = crate::spans::kafka_process(
                &self.topic,
                &self.name,
                record
                    .record
                    .headers
                    .iter()
                    .map(|(name, value)| (name.as_str(), value.as_slice())),
            );
            self.apply(record, resume_at, &mut outcome)
                .instrument(span)
                .await?;
        }
        Ok(outcome)
    }

    async fn apply(
        &self,
        record: RecordAndOffset,
        resume_at: i64,
        outcome: &mut PollOutcome,
    ) -> Result<(), ConsumerError> {
        let mut tx = self.pool.begin().await.map_err(ConsumerError::Database)?;
        let mut applied = None;
        match decode(&record) {
            Some(envelope) => {
                let inserted = sqlx::query(
                    "INSERT INTO processed_events (consumer, event_id) VALUES ($1, $2) \
                     ON CONFLICT DO NOTHING",
                )
                .bind(&self.name)
                .bind(envelope.id)
                .execute(&mut *tx)
                .await
                .map_err(ConsumerError::Database)?
                .rows_affected();
                if inserted == 1 {
                    self.handler
                        .handle(&mut tx, &envelope)
                        .await
                        .map_err(|source| ConsumerError::Handler {
                            event_id: envelope.id,
                            event_type: envelope.event_type.clone(),
                            source,
                        })?;
                    outcome.applied += 1;
                    self.count("applied");
                    applied = Some(envelope);
                } else {
                    tracing::debug!(event_id = %envelope.id, "duplicate event skipped");
                    outcome.duplicates += 1;
                    self.count("duplicate");
                }
            }
            None => {
                // A record we cannot read will not become readable by retrying; skip it loudly
                // rather than block the topic.
                tracing::error!(
                    topic = self.topic,
                    offset = record.offset,
                    "undecodable record skipped"
                );
                outcome.undecodable += 1;
                self.count("undecodable");
            }
        }
        store_offset(&mut tx, &self.name, &self.topic, resume_at)
            .await
            .map_err(ConsumerError::Database)?;
        tx.commit().await.map_err(ConsumerError::Database)?;
        if let Some(envelope) = applied {
            self.handler.committed(&envelope).await;
        }
        Ok(())
    }

    async fn store_offset_only(&self, offset: i64) -> Result<(), ConsumerError> {
        let mut conn = self.pool.acquire().await.map_err(ConsumerError::Database)?;
        store_offset(&mut conn, &self.name, &self.topic, offset)
            .await
            .map_err(ConsumerError::Database)
    }

    /// Consumes until `shutdown` is cancelled; failures are logged and retried with backoff.
    pub async fn run(mut self, shutdown: CancellationToken) {
        let mut failures: u32 = 0;
        loop {
            let result = tokio::select! {
                () = shutdown.cancelled() => return,
                result = self.poll_once() => result,
            };
            let wait = match result {
                Ok(_) => {
                    failures = 0;
                    Duration::ZERO
                }
                Err(error) => {
                    failures = failures.saturating_add(1);
                    let wait = retry_wait(failures);
                    tracing::warn!(consumer = self.name, error = %error_chain(&error), ?wait, "consumer failed; retrying");
                    self.partition = None;
                    wait
                }
            };
            if !wait.is_zero() {
                tokio::select! {
                    () = shutdown.cancelled() => return,
                    () = tokio::time::sleep(wait) => {}
                }
            }
        }
    }
}

/// How long a consumer loop waits after its `failures`-th failure in a row: 400 ms doubling up to
/// about 13 s.
pub fn retry_wait(failures: u32) -> Duration {
    Duration::from_millis(200 * 2u64.pow(failures.min(6)))
}

/// The offset `consumer` resumes `topic` at, from `consumer_offsets`; `None` before its first
/// commit.
pub async fn stored_offset(
    conn: &mut PgConnection,
    consumer: &str,
    topic: &str,
) -> Result<Option<i64>, sqlx::Error> {
    sqlx::query_scalar(
        "SELECT next_offset FROM consumer_offsets WHERE consumer = $1 AND topic = $2",
    )
    .bind(consumer)
    .bind(topic)
    .fetch_optional(conn)
    .await
}

/// Records in `consumer_offsets` that `consumer` resumes `topic` at `offset` (in the caller's
/// transaction, with what it did with the records before it).
pub async fn store_offset(
    conn: &mut PgConnection,
    consumer: &str,
    topic: &str,
    offset: i64,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO consumer_offsets (consumer, topic, next_offset) VALUES ($1, $2, $3) \
         ON CONFLICT (consumer, topic) DO UPDATE SET next_offset = EXCLUDED.next_offset",
    )
    .bind(consumer)
    .bind(topic)
    .bind(offset)
    .execute(conn)
    .await
    .map(|_| ())
}

fn decode(record: &RecordAndOffset) -> Option<EventEnvelope> {
    let value = record.record.value.as_deref()?;
    let envelope: EventEnvelope = serde_json::from_slice(value).ok()?;
    // The header is authoritative when present; a mismatch means a corrupted record.
    if let Some(header) = record.record.headers.get(EVENT_ID_HEADER) {
        let id = std::str::from_utf8(header).ok()?.parse::<Uuid>().ok()?;
        if id != envelope.id {
            return None;
        }
    }
    Some(envelope)
}
