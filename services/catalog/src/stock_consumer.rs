//! Applies the orders service's events to stock: `order.status_changed` to `cancelled` releases
//! the order's reservation, to `shipped` commits it. Other events are acknowledged and ignored.
//!
//! Runs under [`panthera_kit::inbox::Consumer`], which records each event id in the same
//! transaction, so a redelivered event changes nothing.

use futures::future::BoxFuture;
use panthera_kit::inbox::{EventHandler, HandlerError};
use panthera_kit::outbox::EventEnvelope;
use serde::Deserialize;
use sqlx::PgConnection;
use uuid::Uuid;

use crate::cache::Cache;
use crate::events::ProductEvents;
use crate::stock::{self, Settlement};

pub const CONSUMER_NAME: &str = "catalog-stock";
pub const ORDER_STATUS_CHANGED: &str = "order.status_changed";

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct StatusChanged {
    order_id: Uuid,
    to: String,
}

#[derive(Debug, Clone)]
pub struct StockHandler {
    cache: Cache,
    events: ProductEvents,
}

impl StockHandler {
    /// `events`: where the stock changes it makes are published.
    pub fn new(cache: Cache, events: ProductEvents) -> Self {
        Self { cache, events }
    }
}

impl EventHandler for StockHandler {
    fn handle<'a>(
        &'a self,
        tx: &'a mut PgConnection,
        event: &'a EventEnvelope,
    ) -> BoxFuture<'a, Result<(), HandlerError>> {
        Box::pin(async move {
            if event.event_type != ORDER_STATUS_CHANGED {
                return Ok(());
            }
            let change: StatusChanged = serde_json::from_value(event.data.clone())?;
            let settlement = match change.to.as_str() {
                "cancelled" => Settlement::Release,
                "shipped" => Settlement::Commit,
                _ => return Ok(()),
            };
            let products = stock::settle(
                tx,
                &self.events,
                change.order_id,
                settlement,
                Some(event.id),
            )
            .await?;
            tracing::info!(order_id = %change.order_id, ?settlement, products = products.len(), "stock settled");
            // The cache is invalidated in `committed`: before the commit a reader could put the
            // old level back into the cache.
            Ok(())
        })
    }

    fn committed<'a>(&'a self, event: &'a EventEnvelope) -> BoxFuture<'a, ()> {
        Box::pin(async move {
            if event.event_type == ORDER_STATUS_CHANGED && self.cache.enabled() {
                self.cache
                    .invalidate_products(&product_ids(&event.data))
                    .await;
            }
        })
    }
}

/// Product ids listed in an order event's `items`.
fn product_ids(data: &serde_json::Value) -> Vec<Uuid> {
    data["items"]
        .as_array()
        .map(|items| {
            items
                .iter()
                .filter_map(|item| item["productId"].as_str()?.parse().ok())
                .collect()
        })
        .unwrap_or_default()
}
