//! Kafka connectivity through rskafka: client, topic creation, partition handles, readiness.
//!
//! Panthera's topics have one partition: every event of a topic is totally ordered, which is what
//! the outbox relay and the consumers rely on. Producing and consuming address partition 0.

use std::sync::Arc;
use std::time::Duration;

use rskafka::BackoffConfig;
use rskafka::client::error::{Error as RsKafkaError, ProtocolError};
use rskafka::client::partition::{PartitionClient, UnknownTopicHandling};
use rskafka::client::{Client, ClientBuilder};

/// Header carrying the event's UUID; consumers deduplicate on it.
pub const EVENT_ID_HEADER: &str = "event-id";
/// Header carrying the event's type, e.g. `order.created`.
pub const EVENT_TYPE_HEADER: &str = "event-type";
/// The single partition of Panthera's topics.
pub const PARTITION: i32 = 0;

#[derive(Debug, thiserror::Error)]
pub enum KafkaError {
    #[error("connecting to Kafka brokers {brokers:?}")]
    Connect {
        brokers: Vec<String>,
        #[source]
        source: RsKafkaError,
    },
    #[error("creating Kafka topic {topic}")]
    CreateTopic {
        topic: String,
        #[source]
        source: RsKafkaError,
    },
    #[error("opening partition {PARTITION} of Kafka topic {topic}")]
    Partition {
        topic: String,
        #[source]
        source: RsKafkaError,
    },
}

pub type Result<T, E = KafkaError> = std::result::Result<T, E>;

fn backoff() -> BackoffConfig {
    // rskafka retries forever by default; a bounded deadline turns an unreachable broker into an
    // error the caller can log and retry on its own schedule.
    BackoffConfig {
        init_backoff: Duration::from_millis(100),
        max_backoff: Duration::from_secs(2),
        base: 2.0,
        deadline: Some(Duration::from_secs(10)),
    }
}

pub async fn connect(brokers: &[String], client_id: &str) -> Result<Arc<Client>> {
    ClientBuilder::new(brokers.to_vec())
        .client_id(client_id.to_owned())
        .backoff_config(backoff())
        .build()
        .await
        .map(Arc::new)
        .map_err(|source| KafkaError::Connect {
            brokers: brokers.to_vec(),
            source,
        })
}

/// Creates the topic with one partition unless it exists.
pub async fn ensure_topic(client: &Client, topic: &str) -> Result<()> {
    let wrap = |source| KafkaError::CreateTopic {
        topic: topic.to_owned(),
        source,
    };
    let controller = client.controller_client().map_err(wrap)?;
    match controller.create_topic(topic, 1, 1, 5_000).await {
        Ok(()) => Ok(()),
        Err(RsKafkaError::ServerError {
            protocol_error: ProtocolError::TopicAlreadyExists,
            ..
        }) => Ok(()),
        Err(source) => Err(wrap(source)),
    }
}

pub async fn partition(client: &Client, topic: &str) -> Result<PartitionClient> {
    client
        .partition_client(topic.to_owned(), PARTITION, UnknownTopicHandling::Retry)
        .await
        .map_err(|source| KafkaError::Partition {
            topic: topic.to_owned(),
            source,
        })
}

/// Adds a `kafka` readiness check (a metadata request to the brokers).
pub fn readiness(
    readiness: crate::health::Readiness,
    client: Arc<Client>,
) -> crate::health::Readiness {
    readiness.with_check("kafka", move || {
        let client = Arc::clone(&client);
        Box::pin(async move {
            client
                .list_topics()
                .await
                .map(|_| ())
                .map_err(|e| e.to_string())
        })
    })
}

/// The Kafka client once connected. Services start serving HTTP without waiting for the broker
/// (so liveness probes pass), connect in the background and report `kafka` unready until then.
pub type SharedClient = Arc<std::sync::OnceLock<Arc<Client>>>;

/// Connects with retries until it succeeds or `shutdown` is cancelled, then runs `then`.
pub fn connect_in_background<F, Fut>(
    brokers: Vec<String>,
    client_id: String,
    shutdown: tokio_util::sync::CancellationToken,
    then: F,
) -> SharedClient
where
    F: FnOnce(Arc<Client>) -> Fut + Send + 'static,
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    let shared: SharedClient = Arc::default();
    let cell = Arc::clone(&shared);
    tokio::spawn(async move {
        let mut delay = Duration::from_millis(500);
        let client = loop {
            let attempt = tokio::select! {
                () = shutdown.cancelled() => return,
                attempt = connect(&brokers, &client_id) => attempt,
            };
            match attempt {
                Ok(client) => break client,
                Err(error) => {
                    tracing::warn!(error = %crate::outbox::error_chain(&error), ?delay, "Kafka not reachable yet; retrying");
                    tokio::select! {
                        () = shutdown.cancelled() => return,
                        () = tokio::time::sleep(delay) => {}
                    }
                    delay = (delay * 2).min(Duration::from_secs(10));
                }
            }
        };
        tracing::info!(?brokers, "connected to Kafka");
        let _ = cell.set(Arc::clone(&client));
        then(client).await;
    });
    shared
}

/// Adds a `kafka` readiness check on a client that may not be connected yet.
pub fn readiness_shared(
    readiness: crate::health::Readiness,
    shared: SharedClient,
) -> crate::health::Readiness {
    readiness.with_check("kafka", move || {
        let client = shared.get().cloned();
        Box::pin(async move {
            match client {
                Some(client) => client
                    .list_topics()
                    .await
                    .map(|_| ())
                    .map_err(|e| e.to_string()),
                None => Err("not connected yet".to_owned()),
            }
        })
    })
}
