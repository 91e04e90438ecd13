//! Events published through the outbox, keyed by order id:
//! - `order.created`: `{orderId, customerId, status, items, totalCents, currency}`
//! - `order.status_changed`: `{orderId, customerId, from, to, items}`

use panthera_kit::outbox::{self, OutgoingEvent};
use serde_json::json;
use sqlx::PgConnection;

use crate::model::Order;
use crate::status::OrderStatus;

pub const ORDER_CREATED: &str = "order.created";
pub const ORDER_STATUS_CHANGED: &str = "order.status_changed";
/// Used when `KAFKA_TOPICS` is empty.
pub const DEFAULT_TOPIC: &str = "orders";

pub async fn created(
    conn: &mut PgConnection,
    topic: &str,
    order: &Order,
) -> Result<(), sqlx::Error> {
    let data = json!({
        "orderId": order.id,
        "customerId": order.customer_id,
        "status": order.status,
        "items": order.items,
        "totalCents": order.total_cents,
        "currency": order.currency,
    });
    enqueue(conn, topic, ORDER_CREATED, order, data).await
}

pub async fn status_changed(
    conn: &mut PgConnection,
    topic: &str,
    order: &Order,
    from: OrderStatus,
) -> Result<(), sqlx::Error> {
    let data = json!({
        "orderId": order.id,
        "customerId": order.customer_id,
        "from": from,
        "to": order.status,
        "items": order.items,
    });
    enqueue(conn, topic, ORDER_STATUS_CHANGED, order, data).await
}

async fn enqueue(
    conn: &mut PgConnection,
    topic: &str,
    event_type: &str,
    order: &Order,
    data: serde_json::Value,
) -> Result<(), sqlx::Error> {
    outbox::enqueue(
        conn,
        &OutgoingEvent {
            topic: topic.to_owned(),
            key: order.id.to_string(),
            event_type: event_type.to_owned(),
            data,
        },
    )
    .await
    .map(|_| ())
}
