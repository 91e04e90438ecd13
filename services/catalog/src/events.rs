//! Product events, written to the outbox in the transaction of the change and published by the
//! kit's relay to `PRODUCT_EVENTS_TOPIC`, keyed by product id:
//! - `product.created`, `product.changed`, `product.stock_changed`: `{productId, version, product,
//!   category}`, the product as the API shows it (with its `imageKey`; `imageUrl` is null, a URL
//!   being made per read) and its category's `{id, slug, name}` (or null), everything the search
//!   index needs, so the indexer never reads the database; attaching or removing an image is a
//!   `product.changed`;
//! - `product.deleted`: `{productId, version}`.
//!
//! `version` grows with every change of the product (the `version` column), and the delete's is
//! one past the last: consumers keep the highest version they saw and drop anything older, which
//! makes replays and late deliveries harmless.

use std::sync::Arc;

use panthera_kit::outbox::{self, OutgoingEvent};
use serde::{Deserialize, Serialize};
use sqlx::PgConnection;
use uuid::Uuid;

use crate::model::Product;
use crate::store;

pub const PRODUCT_CREATED: &str = "product.created";
pub const PRODUCT_CHANGED: &str = "product.changed";
pub const PRODUCT_STOCK_CHANGED: &str = "product.stock_changed";
pub const PRODUCT_DELETED: &str = "product.deleted";

/// The category of a product, as the search index keeps it beside the product.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CategoryRef {
    pub id: Uuid,
    pub slug: String,
    pub name: String,
}

/// `data` of every product event; `product` is `None` in `product.deleted`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ProductEvent {
    pub product_id: Uuid,
    pub version: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub product: Option<Product>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub category: Option<CategoryRef>,
}

/// Where product events go; disabled when Kafka is not configured, so that the outbox does not
/// fill with events no relay publishes.
#[derive(Debug, Clone, Default)]
pub struct ProductEvents {
    topic: Option<Arc<str>>,
}

impl ProductEvents {
    pub fn disabled() -> Self {
        Self::default()
    }

    pub fn to_topic(topic: &str) -> Self {
        Self {
            topic: Some(Arc::from(topic)),
        }
    }

    pub fn topic(&self) -> Option<&str> {
        self.topic.as_deref()
    }

    /// Records `event_type` with the product as it is now in `conn`'s transaction, which must
    /// hold the product's row (just written, so locked until the commit).
    pub async fn record(
        &self,
        conn: &mut PgConnection,
        event_type: &str,
        product_id: Uuid,
    ) -> Result<(), sqlx::Error> {
        let Some(topic) = &self.topic else {
            return Ok(());
        };
        let Some(event) = store::product_event(&mut *conn, product_id).await? else {
            return Ok(());
        };
        enqueue(conn, topic, event_type, &event).await
    }

    /// Records `product.stock_changed` for each product.
    pub async fn record_stock(
        &self,
        conn: &mut PgConnection,
        product_ids: &[Uuid],
    ) -> Result<(), sqlx::Error> {
        for id in product_ids {
            self.record(conn, PRODUCT_STOCK_CHANGED, *id).await?;
        }
        Ok(())
    }

    /// Records `product.deleted`; `last_version` is the version of the deleted row.
    pub async fn record_deleted(
        &self,
        conn: &mut PgConnection,
        product_id: Uuid,
        last_version: i64,
    ) -> Result<(), sqlx::Error> {
        let Some(topic) = &self.topic else {
            return Ok(());
        };
        let event = ProductEvent {
            product_id,
            version: last_version + 1,
            product: None,
            category: None,
        };
        enqueue(conn, topic, PRODUCT_DELETED, &event).await
    }
}

async fn enqueue(
    conn: &mut PgConnection,
    topic: &str,
    event_type: &str,
    event: &ProductEvent,
) -> Result<(), sqlx::Error> {
    let data = serde_json::to_value(event).map_err(|e| sqlx::Error::Encode(Box::new(e)))?;
    outbox::enqueue(
        conn,
        &OutgoingEvent {
            topic: topic.to_owned(),
            key: event.product_id.to_string(),
            event_type: event_type.to_owned(),
            data,
        },
    )
    .await
    .map(|_| ())
}
