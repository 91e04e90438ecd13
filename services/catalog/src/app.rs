//! Wiring: state, router, the Kafka side (outbox relay of product events, consumer of order
//! events, search indexer), and the process's life until graceful shutdown; and the `reindex`
//! subcommand.

use axum::Router;
use panthera_kit::app::Service;
use panthera_kit::health::Readiness;
use panthera_kit::identity::IdentityCheck;
use panthera_kit::inbox::Consumer;
use panthera_kit::kafka;
use panthera_kit::metrics::Metrics;
use panthera_kit::server::{self, HttpLimits};
use sqlx::PgPool;
use sqlx::migrate::Migrator;

use panthera_kit::outbox::Relay;

use crate::cache::{Cache, CacheSetupError};
use crate::config::{Command, Config};
use crate::events::ProductEvents;
use crate::images::{self, Images};
use crate::search::Search;
use crate::search::client::SetupError;
use crate::search::indexer::Indexer;
use crate::search::reindex::{self, EventSource, ReindexError};
use crate::stock_consumer::{CONSUMER_NAME, StockHandler};

pub static MIGRATOR: Migrator = sqlx::migrate!("./migrations");

pub const SERVICE: &str = "catalog";

#[derive(Clone, Debug)]
pub struct AppState {
    pub pool: PgPool,
    pub cache: Cache,
    /// Where product writes record their events (disabled without Kafka).
    pub events: ProductEvents,
    /// OpenSearch, when wired; searches use PostgreSQL without it.
    pub search: Option<Search>,
    /// The bucket of product images, when wired; products have no images without it.
    pub images: Option<Images>,
}

impl AppState {
    /// Without product events, OpenSearch and images.
    pub fn new(pool: PgPool, cache: Cache) -> Self {
        Self {
            pool,
            cache,
            events: ProductEvents::disabled(),
            search: None,
            images: None,
        }
    }
}

pub fn build_app(
    state: AppState,
    metrics: Metrics,
    readiness: Readiness,
    limits: HttpLimits,
    identity: &IdentityCheck,
) -> Router {
    server::app(
        crate::routes::router()
            .with_state(state)
            .layer(identity.layer()),
        metrics,
        readiness,
        limits,
    )
}

#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error(transparent)]
    Service(#[from] panthera_kit::app::Error),
    #[error("preparing the cache")]
    Cache(#[from] CacheSetupError),
    #[error("configuring OpenSearch")]
    Search(#[from] SetupError),
    #[error("configuring product images")]
    Images(#[from] images::SetupError),
    #[error("reindex needs SEARCH_ENDPOINT")]
    NoSearch,
    #[error("reindex needs KAFKA_BROKERS, to replay the writes made during the rebuild")]
    NoKafka,
    #[error("connecting to Kafka")]
    Kafka(#[from] panthera_kit::kafka::KafkaError),
    #[error("rebuilding the search index")]
    Reindex(#[from] ReindexError),
}

/// Serves the API, or runs the subcommand.
pub async fn run(config: Config) -> Result<(), RunError> {
    match config.command {
        Some(Command::Reindex) => run_reindex(config).await,
        None => serve(config).await,
    }
}

/// `panthera-catalog reindex`: one rebuild, then exit (a Kubernetes Job).
async fn run_reindex(config: Config) -> Result<(), RunError> {
    let common = &config.common;
    let search = Search::from_config(&config.search)?.ok_or(RunError::NoSearch)?;
    let brokers = common.brokers();
    if brokers.is_empty() {
        return Err(RunError::NoKafka);
    }
    let service = Service::start(common, SERVICE, &MIGRATOR).await?;
    let client =
        panthera_kit::kafka::connect_with(&brokers, &service.name, &service.kafka_security).await?;
    let source = EventSource {
        client,
        topic: config.product_events_topic.clone(),
    };
    let rebuilt = reindex::rebuild(&service.pool, &search, Some(&source)).await;
    service.pool.close().await;
    let rebuilt = rebuilt?;
    println!(
        "reindexed {} products and {} events into {} (removed: {})",
        rebuilt.products,
        rebuilt.replayed,
        rebuilt.index,
        if rebuilt.removed.is_empty() {
            "none".to_owned()
        } else {
            rebuilt.removed.join(", ")
        }
    );
    Ok(())
}

async fn serve(config: Config) -> Result<(), RunError> {
    let common = &config.common;
    let search = Search::from_config(&config.search)?;
    let images = Images::from_config(&config.images).await?;
    let mut service = Service::start(common, SERVICE, &MIGRATOR).await?;
    match &images {
        Some(images) => tracing::info!(
            bucket = images.bucket(),
            region = images.region(),
            upload_url = images.upload_url(),
            cdn = images.cdn(),
            max_bytes = images.max_bytes(),
            "product images in object storage"
        ),
        None => tracing::info!("S3_BUCKET is not set; products have no images"),
    }
    if let Some(search) = &search {
        search.metrics.register(&service.metrics);
        tracing::info!(
            endpoint = search.client.endpoint(),
            alias = search.alias(),
            "searching products through OpenSearch"
        );
    }

    let cache = match &config.redis_url {
        Some(url) if !url.expose().is_empty() => {
            let cache = Cache::connect(
                url.expose(),
                &config.cache_key_prefix,
                config.cache_ttl_seconds,
            )?;
            let probe = cache.clone();
            service.readiness =
                std::mem::take(&mut service.readiness).with_check("redis", move || {
                    let probe = probe.clone();
                    Box::pin(async move { probe.ping().await })
                });
            cache
        }
        _ => {
            tracing::info!("REDIS_URL is not set; product reads are not cached");
            Cache::disabled()
        }
    };

    let brokers = common.brokers();
    let events = if brokers.is_empty() {
        tracing::info!(
            "KAFKA_BROKERS is not set; order events are not consumed and product events not published"
        );
        if let Some(search) = search.clone() {
            tracing::warn!(
                "SEARCH_ENDPOINT without KAFKA_BROKERS: the search index does not follow product writes"
            );
            let pool = service.pool.clone();
            tokio::spawn(async move {
                if let Err(error) = reindex::ensure(&pool, &search, None).await {
                    let chain = panthera_kit::outbox::error_chain(&error);
                    tracing::error!(error = %chain, "building the search index failed");
                }
            });
        }
        ProductEvents::disabled()
    } else {
        let events = ProductEvents::to_topic(&config.product_events_topic);
        let pool = service.pool.clone();
        let shutdown = service.shutdown.clone();
        let order_topic = config.order_events_topic();
        let product_topic = config.product_events_topic.clone();
        let handler = StockHandler::new(cache.clone(), events.clone());
        let metrics = service.metrics.clone();
        let search = search.clone();
        // One client for the relay, the order events consumer and the indexer.
        let client = kafka::connect_in_background(
            brokers,
            service.kafka_security.clone(),
            service.name.clone(),
            service.shutdown.clone(),
            move |client| async move {
                let relay = Relay::new(pool.clone(), client.clone())
                    .with_metrics(&metrics)
                    .run(shutdown.clone());
                let consumer = Consumer::new(
                    pool.clone(),
                    client.clone(),
                    CONSUMER_NAME,
                    &order_topic,
                    handler,
                )
                .with_metrics(&metrics)
                .run(shutdown.clone());
                let indexer = async {
                    if let Some(search) = search {
                        Indexer::new(pool, client, &product_topic, search)
                            .run(shutdown.clone())
                            .await;
                    }
                };
                tokio::join!(relay, consumer, indexer);
            },
        );
        service.readiness = kafka::readiness_shared(std::mem::take(&mut service.readiness), client);
        events
    };

    let state = AppState {
        pool: service.pool.clone(),
        cache,
        events,
        search,
        images,
    };
    Ok(service
        .serve(common, crate::routes::router().with_state(state))
        .await?)
}
