//! Product search through OpenSearch, when `SEARCH_ENDPOINT` is set.
//!
//! - [`indexer`] follows the product events on Kafka into the index behind the alias;
//! - [`reindex`] rebuilds that index from PostgreSQL and swaps the alias, without downtime;
//! - [`query`] answers `GET /v1/products` with relevance and facets;
//! - when OpenSearch fails, searches are answered by PostgreSQL's full-text search (counted in
//!   `catalog_search_fallbacks_total`) and OpenSearch is left alone for [`BREAKER_OPEN`].

pub mod client;
pub mod document;
pub mod indexer;
pub mod query;
pub mod reindex;

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Duration;

use panthera_kit::Page;
use panthera_kit::metrics::Metrics;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};

use crate::config::SearchConfig;
use crate::model::{ProductPage, ProductQuery};
use client::{Connection, SearchClient, SearchError, SetupError};

/// After a failed search, how long searches go straight to PostgreSQL: a node that is down or
/// slow then costs one timeout per period rather than one per request.
pub const BREAKER_OPEN: Duration = Duration::from_secs(2);

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct BackendLabels {
    pub backend: &'static str,
}

/// The search metrics, registered once and shared by the API, the indexer and the rebuild.
#[derive(Debug, Clone)]
pub struct SearchMetrics {
    /// Searches answered, by backend (`opensearch`, `postgres`).
    pub searches: Family<BackendLabels, Counter>,
    /// Searches OpenSearch could not answer, answered by PostgreSQL.
    pub fallbacks: Counter,
    /// Events written to the index, and those refused as older than the indexed version.
    pub indexed: Counter,
    pub stale: Counter,
    /// From the product write (the event's time) to the index acknowledging it; findable one
    /// refresh later (`document::REFRESH_INTERVAL`).
    pub index_lag: Histogram,
}

impl Default for SearchMetrics {
    fn default() -> Self {
        Self {
            searches: Family::default(),
            fallbacks: Counter::default(),
            indexed: Counter::default(),
            stale: Counter::default(),
            // 10 ms .. ~160 s
            index_lag: Histogram::new(exponential_buckets(0.01, 2.0, 15)),
        }
    }
}

impl SearchMetrics {
    pub fn register(&self, metrics: &Metrics) {
        metrics.register(
            "catalog_searches",
            "Product searches answered, by backend",
            self.searches.clone(),
        );
        metrics.register(
            "catalog_search_fallbacks",
            "Product searches OpenSearch failed, answered from PostgreSQL",
            self.fallbacks.clone(),
        );
        metrics.register(
            "catalog_search_indexed_events",
            "Product events written to the search index",
            self.indexed.clone(),
        );
        metrics.register(
            "catalog_search_stale_events",
            "Product events the search index refused as older than what it holds",
            self.stale.clone(),
        );
        metrics.register(
            "catalog_search_index_lag_seconds",
            "Time from a product write to the search index acknowledging it",
            self.index_lag.clone(),
        );
    }
}

/// The OpenSearch side of the catalog: the client, the alias, and the metrics.
#[derive(Debug, Clone)]
pub struct Search {
    pub client: SearchClient,
    alias: Arc<str>,
    timeout: Duration,
    /// Unix milliseconds until which searches skip OpenSearch (0: never failed).
    open_until: Arc<AtomicI64>,
    pub metrics: SearchMetrics,
}

impl Search {
    /// `None` when `SEARCH_ENDPOINT` is unset.
    pub fn from_config(config: &SearchConfig) -> Result<Option<Self>, SetupError> {
        let Some(endpoint) = config.endpoint() else {
            return Ok(None);
        };
        if !client::valid_alias(&config.search_index) {
            return Err(SetupError::Alias(config.search_index.clone()));
        }
        let client = SearchClient::new(&Connection {
            endpoint,
            username: config.username(),
            password: config.password(),
            ca_file: config.ca_file(),
        })?;
        Ok(Some(Self::new(
            client,
            &config.search_index,
            Duration::from_millis(config.search_timeout_ms.max(1)),
        )))
    }

    pub fn new(client: SearchClient, alias: &str, timeout: Duration) -> Self {
        Self {
            client,
            alias: Arc::from(alias),
            timeout,
            open_until: Arc::new(AtomicI64::new(0)),
            metrics: SearchMetrics::default(),
        }
    }

    pub fn alias(&self) -> &str {
        &self.alias
    }

    /// A page of products matching `query` (validated), with facets.
    pub async fn products(
        &self,
        query: &ProductQuery,
        page: Page,
    ) -> Result<ProductPage, SearchError> {
        let now = chrono::Utc::now().timestamp_millis();
        if self.open_until.load(Ordering::Relaxed) > now {
            return Err(SearchError::CircuitOpen);
        }
        let result = self
            .client
            .search(&self.alias, &query::search_body(query, page), self.timeout)
            .await
            .and_then(|body| {
                query::read_answer(body).map_err(|source| SearchError::Decode {
                    action: format!("reading the search answer of {}", self.alias),
                    source,
                })
            });
        match result {
            Ok((products, total, facets)) => Ok(ProductPage::new(products, page, total, facets)),
            Err(error) => {
                let until = now + i64::try_from(BREAKER_OPEN.as_millis()).unwrap_or(i64::MAX);
                self.open_until.store(until, Ordering::Relaxed);
                Err(error)
            }
        }
    }

    pub fn count_search(&self, backend: &'static str) {
        self.metrics
            .searches
            .get_or_create(&BackendLabels { backend })
            .inc();
    }
}
