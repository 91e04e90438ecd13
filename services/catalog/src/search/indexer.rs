//! Follows the product events on Kafka into the search index.
//!
//! Each round, under a PostgreSQL advisory lock (one replica indexes at a time, the others stand
//! by), it reads the stored offset, fetches a batch, writes it with one `_bulk` at the events'
//! versions (`version_type=external`), and stores the next offset. Delivery is at least once (a
//! crash after the `_bulk` and before the offset replays the batch) and the external versions
//! make every replay a no-op, so the index converges to the newest version of each product
//! whatever the order of arrival. No per-event bookkeeping in PostgreSQL: one small upsert per
//! batch, which keeps the indexer off the database that takes the orders.
//!
//! Writes go to the alias with `require_alias`: when the index is lost, the alias goes with it,
//! and the indexer rebuilds it ([`super::reindex::ensure`]) rather than letting OpenSearch create
//! an index with guessed field types.

use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use panthera_kit::inbox::{retry_wait, store_offset, stored_offset};
use panthera_kit::kafka::KafkaError;
use panthera_kit::outbox::{EventEnvelope, error_chain};
use rskafka::client::Client;
use rskafka::client::error::{Error as RsKafkaError, ProtocolError};
use rskafka::client::partition::{OffsetAt, PartitionClient};
use rskafka::record::RecordAndOffset;
use sqlx::PgPool;
use tokio_util::sync::CancellationToken;

use super::Search;
use super::client::SearchError;
use super::document::bulk_lines;
use super::reindex::{self, EventSource};
use crate::events::{
    PRODUCT_CHANGED, PRODUCT_CREATED, PRODUCT_DELETED, PRODUCT_STOCK_CHANGED, ProductEvent,
};

/// Longest a fetch waits on the broker for new records when the topic is idle; records already
/// there come back at once.
const MAX_WAIT: Duration = Duration::from_millis(250);
/// Largest fetch, in bytes.
const MAX_FETCH_BYTES: i32 = 4_000_000;

#[derive(Debug, thiserror::Error)]
pub enum IndexerError {
    #[error("reading or storing the search indexer's offset")]
    Database(#[source] sqlx::Error),
    #[error("opening the product events topic")]
    Kafka(#[source] KafkaError),
    #[error(transparent)]
    Fetch(#[from] FetchError),
    #[error(transparent)]
    Search(#[from] SearchError),
    #[error("rebuilding the lost search index")]
    Reindex(#[source] Box<reindex::ReindexError>),
}

#[derive(Debug, thiserror::Error)]
#[error("fetching product events from {topic}")]
pub struct FetchError {
    pub topic: String,
    #[source]
    pub source: RsKafkaError,
}

/// The consumer name of the indexer of `alias` in `consumer_offsets`: a new alias starts over.
pub fn consumer_name(alias: &str) -> String {
    format!("catalog-search:{alias}")
}

/// The product event a record carries; `None` for records of other types or unreadable ones.
pub fn decode(record: &RecordAndOffset) -> Option<(EventEnvelope, ProductEvent)> {
    let value = record.record.value.as_deref()?;
    let envelope: EventEnvelope = serde_json::from_slice(value).ok()?;
    if ![
        PRODUCT_CREATED,
        PRODUCT_CHANGED,
        PRODUCT_STOCK_CHANGED,
        PRODUCT_DELETED,
    ]
    .contains(&envelope.event_type.as_str())
    {
        return None;
    }
    let event: ProductEvent = serde_json::from_value(envelope.data.clone()).ok()?;
    Some((envelope, event))
}

/// Fetches from `offset`; an offset retention has passed restarts at the earliest one left.
/// Returns the records, the offset they start from, and the high watermark.
pub async fn fetch(
    partition: &PartitionClient,
    topic: &str,
    offset: i64,
    max_wait: Duration,
) -> Result<(Vec<RecordAndOffset>, i64, i64), FetchError> {
    let wait = i32::try_from(max_wait.as_millis()).unwrap_or(i32::MAX);
    let wrap = |source| FetchError {
        topic: topic.to_owned(),
        source,
    };
    match partition
        .fetch_records(offset, 1..MAX_FETCH_BYTES, wait)
        .await
    {
        Ok((records, high_watermark)) => Ok((records, offset, high_watermark)),
        Err(RsKafkaError::ServerError {
            protocol_error: ProtocolError::OffsetOutOfRange,
            ..
        }) => {
            let earliest = partition
                .get_offset(OffsetAt::Earliest)
                .await
                .map_err(wrap)?;
            tracing::error!(
                topic,
                offset,
                earliest,
                "product events lost to retention; continuing from the earliest left (run reindex)"
            );
            let (records, high_watermark) = partition
                .fetch_records(earliest, 1..MAX_FETCH_BYTES, wait)
                .await
                .map_err(wrap)?;
            Ok((records, earliest, high_watermark))
        }
        Err(source) => Err(wrap(source)),
    }
}

/// The product events among `records` (Kafka may hand back records before the asked offset,
/// from the start of their batch: those are skipped).
pub fn events_from(records: &[RecordAndOffset], from: i64) -> Vec<(EventEnvelope, ProductEvent)> {
    records
        .iter()
        .filter(|record| record.offset >= from)
        .filter_map(|record| {
            let decoded = decode(record);
            if decoded.is_none() {
                tracing::warn!(
                    offset = record.offset,
                    "record on the product topic that is no product event skipped"
                );
            }
            decoded
        })
        .collect()
}

pub struct Indexer {
    pool: PgPool,
    source: EventSource,
    search: Search,
    name: String,
    partition: Option<PartitionClient>,
}

impl std::fmt::Debug for Indexer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Indexer")
            .field("name", &self.name)
            .field("topic", &self.source.topic)
            .finish_non_exhaustive()
    }
}

impl Indexer {
    pub fn new(pool: PgPool, kafka: Arc<Client>, topic: &str, search: Search) -> Self {
        let name = consumer_name(search.alias());
        Self {
            pool,
            source: EventSource {
                client: kafka,
                topic: topic.to_owned(),
            },
            search,
            name,
            partition: None,
        }
    }

    async fn partition(&mut self) -> Result<&PartitionClient, IndexerError> {
        if self.partition.is_none() {
            self.partition = Some(self.source.partition().await.map_err(IndexerError::Kafka)?);
        }
        self.partition.as_ref().ok_or_else(|| {
            IndexerError::Kafka(KafkaError::Partition {
                topic: self.source.topic.clone(),
                source: RsKafkaError::InvalidResponse("partition client vanished".to_owned()),
            })
        })
    }

    /// One round; returns the number of events fetched (0 when idle or another replica indexes).
    pub async fn poll_once(&mut self) -> Result<usize, IndexerError> {
        let mut tx = self.pool.begin().await.map_err(IndexerError::Database)?;
        let locked: bool = sqlx::query_scalar("SELECT pg_try_advisory_xact_lock(hashtext($1))")
            .bind(&self.name)
            .fetch_one(&mut *tx)
            .await
            .map_err(IndexerError::Database)?;
        if !locked {
            drop(tx);
            tokio::time::sleep(MAX_WAIT).await;
            return Ok(0);
        }
        let stored = stored_offset(&mut tx, &self.name, &self.source.topic)
            .await
            .map_err(IndexerError::Database)?;
        let topic = self.source.topic.clone();
        let partition = self.partition().await?;
        let offset = match stored {
            Some(offset) => offset,
            // A new indexer starts at the beginning; the versions make old events harmless.
            None => partition
                .get_offset(OffsetAt::Earliest)
                .await
                .map_err(|source| FetchError {
                    topic: topic.clone(),
                    source,
                })?,
        };
        let (records, from, _) = fetch(partition, &topic, offset, MAX_WAIT).await?;
        let Some(next) = records.iter().map(|r| r.offset + 1).max() else {
            return Ok(0);
        };
        let events = events_from(&records, from);
        if !events.is_empty() {
            let lines = bulk_lines(events.iter().map(|(_, event)| event));
            let summary = self
                .search
                .client
                .bulk(self.search.alias(), lines, true)
                .await?;
            let metrics = &self.search.metrics;
            metrics.indexed.inc_by(summary.applied as u64);
            metrics.stale.inc_by(summary.stale as u64);
            let now = Utc::now();
            for (envelope, _) in &events {
                let lag = (now - envelope.occurred_at).num_microseconds().unwrap_or(0);
                #[allow(clippy::cast_precision_loss)]
                metrics.index_lag.observe(lag.max(0) as f64 / 1e6);
            }
        }
        store_offset(&mut tx, &self.name, &topic, next.max(from))
            .await
            .map_err(IndexerError::Database)?;
        tx.commit().await.map_err(IndexerError::Database)?;
        Ok(events.len())
    }

    /// Rebuilds the index when its alias is missing (first start, or the index was lost).
    pub async fn ensure_index(&self) -> Result<(), IndexerError> {
        reindex::ensure(&self.pool, &self.search, Some(&self.source))
            .await
            .map(|_| ())
            .map_err(|e| IndexerError::Reindex(Box::new(e)))
    }

    /// Indexes until `shutdown`; failures are logged and retried with backoff.
    pub async fn run(mut self, shutdown: CancellationToken) {
        let mut failures: u32 = 0;
        let mut check_index = true;
        loop {
            let round = async {
                if check_index {
                    self.ensure_index().await?;
                }
                self.poll_once().await
            };
            let result = tokio::select! {
                () = shutdown.cancelled() => return,
                result = round => result,
            };
            let wait = match result {
                Ok(_) => {
                    failures = 0;
                    check_index = false;
                    Duration::ZERO
                }
                Err(error) => {
                    failures = failures.saturating_add(1);
                    check_index = matches!(
                        error,
                        IndexerError::Search(SearchError::AliasMissing { .. })
                            | IndexerError::Reindex(_)
                    );
                    let wait = retry_wait(failures);
                    tracing::warn!(error = %error_chain(&error), ?wait, "search indexer failed; retrying");
                    if matches!(error, IndexerError::Fetch(_) | IndexerError::Kafka(_)) {
                        self.partition = None;
                    }
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
