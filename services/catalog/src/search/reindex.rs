//! Rebuilds the search index from PostgreSQL, then swaps the alias to it: no downtime (searches
//! use the old index until the atomic swap; with no index at all they are answered by
//! PostgreSQL) and no lost write.
//!
//! Why no write is lost. The rebuild first notes the end (high watermark) `H` of the product
//! topic, then reads the products in pages. A product write that commits after `H` was noted is
//! published after it, at an offset `>= H` (the relay only reads committed rows); a write
//! committed before its product's page was read is in the page. So the pages plus the events
//! from `H` onwards hold every write, and the rebuild replays those events into the new index
//! before the swap. Events the live indexer sends to the old index while that replay finishes
//! are replayed once more after the swap, up to the end of the topic at that moment; whatever
//! comes later the live indexer writes to the alias, now the new index. Everything is written at
//! the product's version with `version_type=external`, so the order of the page writes, the
//! replays and the live indexer does not matter: the newest version wins, a delete (a
//! tombstone) included.
//!
//! One rebuild at a time per alias: a PostgreSQL advisory lock serialises the Job, the replicas'
//! startup checks and the indexer's recovery from a lost index.

use std::sync::Arc;

use panthera_kit::kafka::{self, KafkaError};
use rskafka::client::Client;
use rskafka::client::partition::{OffsetAt, PartitionClient};
use serde_json::json;
use sqlx::{Connection, PgConnection, PgPool};
use std::time::Duration;

use super::Search;
use super::client::SearchError;
use super::document::{
    REFRESH_INTERVAL, added_properties, bulk_lines, index_body, is_index_of, new_index_name,
};
use super::indexer::{FetchError, events_from, fetch};
use crate::store;

/// Products per page read from PostgreSQL and per `_bulk` request.
const PAGE: i64 = 500;

/// The product events topic on Kafka.
#[derive(Clone)]
pub struct EventSource {
    pub client: Arc<Client>,
    pub topic: String,
}

impl EventSource {
    pub async fn partition(&self) -> Result<PartitionClient, KafkaError> {
        kafka::ensure_topic(&self.client, &self.topic).await?;
        kafka::partition(&self.client, &self.topic).await
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ReindexError {
    #[error("taking the search rebuild lock")]
    Lock(#[source] sqlx::Error),
    #[error("reading products from PostgreSQL")]
    Read(#[source] sqlx::Error),
    #[error(transparent)]
    Search(#[from] SearchError),
    #[error("opening the product events topic")]
    Kafka(#[source] KafkaError),
    #[error("reading the end of {topic}")]
    Watermark {
        topic: String,
        #[source]
        source: rskafka::client::error::Error,
    },
    #[error(transparent)]
    Fetch(#[from] FetchError),
}

/// What a rebuild did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rebuilt {
    pub index: String,
    /// Products read from PostgreSQL.
    pub products: usize,
    /// Events replayed from the topic (before and after the swap).
    pub replayed: usize,
    /// The indices removed: the old one and any left by an interrupted rebuild.
    pub removed: Vec<String>,
}

/// Rebuilds when the alias does not exist (first start, lost index); `None` when it does, after
/// adding the fields added to the mapping since the index was made ([`added_properties`]).
pub async fn ensure(
    pool: &PgPool,
    search: &Search,
    source: Option<&EventSource>,
) -> Result<Option<Rebuilt>, ReindexError> {
    let alias = search.alias();
    if !search.client.alias_indices(alias).await?.is_empty() {
        search
            .client
            .put_mapping(alias, &json!({"properties": added_properties()}))
            .await?;
        return Ok(None);
    }
    tracing::warn!(alias, "the search index does not exist; rebuilding it");
    run(pool, search, source, true).await
}

/// Rebuilds into a new index and swaps the alias to it.
pub async fn rebuild(
    pool: &PgPool,
    search: &Search,
    source: Option<&EventSource>,
) -> Result<Rebuilt, ReindexError> {
    match run(pool, search, source, false).await? {
        Some(rebuilt) => Ok(rebuilt),
        // `run` returns `None` only when asked to rebuild a missing index.
        None => Err(ReindexError::Search(SearchError::AliasMissing {
            action: "rebuilding".to_owned(),
            alias: search.alias().to_owned(),
        })),
    }
}

async fn run(
    pool: &PgPool,
    search: &Search,
    source: Option<&EventSource>,
    only_if_missing: bool,
) -> Result<Option<Rebuilt>, ReindexError> {
    let alias = search.alias();
    let client = &search.client;
    // A connection of its own, out of the pool: the session lock dies with it, error or not.
    let mut lock = pool.acquire().await.map_err(ReindexError::Lock)?.detach();
    sqlx::query("SELECT pg_advisory_lock(hashtext($1))")
        .bind(format!("catalog-search-rebuild:{alias}"))
        .execute(&mut lock)
        .await
        .map_err(ReindexError::Lock)?;
    let result = locked(pool, search, source, only_if_missing).await;
    close(lock).await;
    let rebuilt = result?;
    if let Some(rebuilt) = &rebuilt {
        tracing::info!(
            alias,
            index = rebuilt.index,
            products = rebuilt.products,
            replayed = rebuilt.replayed,
            removed = ?rebuilt.removed,
            endpoint = client.endpoint(),
            "search index rebuilt"
        );
    }
    Ok(rebuilt)
}

async fn close(connection: PgConnection) {
    if let Err(error) = connection.close().await {
        tracing::debug!(%error, "closing the rebuild lock's connection");
    }
}

async fn locked(
    pool: &PgPool,
    search: &Search,
    source: Option<&EventSource>,
    only_if_missing: bool,
) -> Result<Option<Rebuilt>, ReindexError> {
    let alias = search.alias();
    let client = &search.client;
    let before = client.alias_indices(alias).await?;
    if only_if_missing && !before.is_empty() {
        return Ok(None);
    }
    let partition = match source {
        Some(source) => Some((
            source.partition().await.map_err(ReindexError::Kafka)?,
            source.topic.as_str(),
        )),
        None => {
            tracing::warn!(
                "KAFKA_BROKERS is not set: the rebuild reads PostgreSQL only, and nothing keeps the index up to date after it"
            );
            None
        }
    };
    // Before the first page is read: see the module's documentation.
    let start = match &partition {
        Some((partition, topic)) => Some(high_watermark(partition, topic).await?),
        None => None,
    };

    let index = new_index_name(alias);
    client.create_index(&index, &index_body("-1")).await?;
    let loaded = load(pool, search, &index, partition.as_ref(), start).await;
    let (products, mut replayed, mut next) = match loaded {
        Ok(loaded) => loaded,
        Err(error) => {
            // Best effort: a leftover is removed by the next rebuild anyway.
            let _ = client.delete_index(&index).await;
            return Err(error);
        }
    };

    let mut actions: Vec<_> = before
        .iter()
        .map(|old| json!({"remove": {"index": old, "alias": alias}}))
        .collect();
    actions.push(json!({"add": {"index": index, "alias": alias}}));
    client
        .update_aliases(
            &format!("swapping the alias {alias} to {index}"),
            json!(actions),
        )
        .await?;

    if let (Some((partition, topic)), Some(from)) = (&partition, next) {
        let (after, count) = replay(search, partition, topic, &index, from).await?;
        replayed += count;
        next = Some(after);
        client.refresh(&index).await?;
    }
    tracing::debug!(?next, "rebuild replayed the topic");

    let mut removed = Vec::new();
    let mut stale: Vec<String> = client
        .indices_with_prefix(&format!("{alias}-v"))
        .await?
        .into_iter()
        .filter(|name| is_index_of(alias, name))
        .chain(before)
        .filter(|name| *name != index)
        .collect();
    stale.sort();
    stale.dedup();
    for old in stale {
        client.delete_index(&old).await?;
        removed.push(old);
    }
    Ok(Some(Rebuilt {
        index,
        products,
        replayed,
        removed,
    }))
}

/// Pages of PostgreSQL, then the events since `start`, then searchable settings. Returns the
/// products read, the events replayed, and the offset after them.
async fn load(
    pool: &PgPool,
    search: &Search,
    index: &str,
    partition: Option<&(PartitionClient, &str)>,
    start: Option<i64>,
) -> Result<(usize, usize, Option<i64>), ReindexError> {
    let client = &search.client;
    let mut after = None;
    let mut products = 0;
    loop {
        let page = store::product_events_after(pool, after, PAGE)
            .await
            .map_err(ReindexError::Read)?;
        let Some(last) = page.last() else { break };
        after = Some(last.product_id);
        products += page.len();
        client.bulk(index, bulk_lines(&page), false).await?;
    }
    let mut replayed = 0;
    let mut next = start;
    if let (Some((partition, topic)), Some(from)) = (partition, start) {
        let (after, count) = replay(search, partition, topic, index, from).await?;
        replayed = count;
        next = Some(after);
    }
    client
        .put_settings(
            index,
            &json!({"index": {"refresh_interval": REFRESH_INTERVAL}}),
        )
        .await?;
    client.refresh(index).await?;
    Ok((products, replayed, next))
}

async fn high_watermark(partition: &PartitionClient, topic: &str) -> Result<i64, ReindexError> {
    partition
        .get_offset(OffsetAt::Latest)
        .await
        .map_err(|source| ReindexError::Watermark {
            topic: topic.to_owned(),
            source,
        })
}

/// Writes the events from `from` to the end of the topic (as of now) into `index`; returns the
/// offset after them and how many there were.
async fn replay(
    search: &Search,
    partition: &PartitionClient,
    topic: &str,
    index: &str,
    from: i64,
) -> Result<(i64, usize), ReindexError> {
    let end = high_watermark(partition, topic).await?;
    let mut offset = from;
    let mut count = 0;
    while offset < end {
        let (records, start, _) =
            fetch(partition, topic, offset, Duration::from_millis(100)).await?;
        let Some(next) = records.iter().map(|r| r.offset + 1).max() else {
            break;
        };
        let events = events_from(&records, start);
        if !events.is_empty() {
            count += events.len();
            search
                .client
                .bulk(index, bulk_lines(events.iter().map(|(_, e)| e)), false)
                .await?;
        }
        offset = next.max(start);
    }
    Ok((offset, count))
}
