//! SQL for orders. Every value is a bind parameter.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use panthera_kit::Page;
use sqlx::{PgConnection, PgPool};
use uuid::Uuid;

use crate::model::{Order, OrderItem};
use crate::status::OrderStatus;

const COLUMNS: &str = "id, customer_id, status, total_cents, currency, created_at, updated_at";

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("database query failed")]
    Query(#[from] sqlx::Error),
    #[error("the database holds an unknown order status {0:?}")]
    UnknownStatus(String),
}

pub type Result<T, E = StoreError> = std::result::Result<T, E>;

#[derive(sqlx::FromRow)]
struct OrderRow {
    id: Uuid,
    customer_id: Uuid,
    status: String,
    total_cents: i64,
    currency: String,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
}

#[derive(sqlx::FromRow)]
struct ItemRow {
    order_id: Uuid,
    product_id: Uuid,
    quantity: i32,
    unit_price_cents: i64,
}

fn assemble(row: OrderRow, items: Vec<OrderItem>) -> Result<Order> {
    Ok(Order {
        status: OrderStatus::parse(&row.status).ok_or(StoreError::UnknownStatus(row.status))?,
        id: row.id,
        customer_id: row.customer_id,
        items,
        total_cents: row.total_cents,
        currency: row.currency,
        created_at: row.created_at,
        updated_at: row.updated_at,
    })
}

async fn items_of(conn: &mut PgConnection, ids: &[Uuid]) -> Result<HashMap<Uuid, Vec<OrderItem>>> {
    let rows: Vec<ItemRow> = sqlx::query_as(
        "SELECT order_id, product_id, quantity, unit_price_cents FROM order_items \
         WHERE order_id = ANY($1) ORDER BY order_id, product_id",
    )
    .bind(ids)
    .fetch_all(conn)
    .await?;
    let mut items: HashMap<Uuid, Vec<OrderItem>> = HashMap::new();
    for row in rows {
        items.entry(row.order_id).or_default().push(OrderItem {
            product_id: row.product_id,
            quantity: row.quantity,
            unit_price_cents: row.unit_price_cents,
        });
    }
    Ok(items)
}

pub struct NewOrder<'a> {
    pub id: Uuid,
    pub customer_id: Uuid,
    pub items: &'a [OrderItem],
    pub total_cents: i64,
    pub currency: &'a str,
    pub idempotency_key: Option<&'a str>,
}

/// Inserts a pending order; a unique violation on the id means a concurrent request with the same
/// idempotency key won.
pub async fn insert(conn: &mut PgConnection, order: &NewOrder<'_>) -> Result<Order> {
    let row: OrderRow = sqlx::query_as(&format!(
        "INSERT INTO orders (id, customer_id, status, total_cents, currency, idempotency_key) \
         VALUES ($1, $2, 'pending', $3, $4, $5) RETURNING {COLUMNS}"
    ))
    .bind(order.id)
    .bind(order.customer_id)
    .bind(order.total_cents)
    .bind(order.currency)
    .bind(order.idempotency_key)
    .fetch_one(&mut *conn)
    .await?;
    for item in order.items {
        sqlx::query(
            "INSERT INTO order_items (order_id, product_id, quantity, unit_price_cents) VALUES ($1, $2, $3, $4)",
        )
        .bind(order.id)
        .bind(item.product_id)
        .bind(item.quantity)
        .bind(item.unit_price_cents)
        .execute(&mut *conn)
        .await?;
    }
    assemble(row, order.items.to_vec())
}

pub async fn get(conn: &mut PgConnection, id: Uuid) -> Result<Option<Order>> {
    fetch_one(conn, id, "").await
}

/// The order, locked until the transaction ends (state changes are serialised per order).
pub async fn get_for_update(conn: &mut PgConnection, id: Uuid) -> Result<Option<Order>> {
    fetch_one(conn, id, " FOR UPDATE").await
}

async fn fetch_one(conn: &mut PgConnection, id: Uuid, lock: &str) -> Result<Option<Order>> {
    let row: Option<OrderRow> =
        sqlx::query_as(&format!("SELECT {COLUMNS} FROM orders WHERE id = $1{lock}"))
            .bind(id)
            .fetch_optional(&mut *conn)
            .await?;
    let Some(row) = row else { return Ok(None) };
    let mut items = items_of(conn, &[id]).await?;
    assemble(row, items.remove(&id).unwrap_or_default()).map(Some)
}

pub struct ListFilter {
    pub status: Option<OrderStatus>,
    pub customer_id: Option<Uuid>,
}

pub async fn list(pool: &PgPool, filter: &ListFilter, page: Page) -> Result<(Vec<Order>, i64)> {
    let mut conn = pool.acquire().await?;
    let status = filter.status.map(OrderStatus::as_str);
    let rows: Vec<OrderRow> = sqlx::query_as(&format!(
        "SELECT {COLUMNS} FROM orders \
         WHERE ($1::text IS NULL OR status = $1) AND ($2::uuid IS NULL OR customer_id = $2) \
         ORDER BY created_at, id LIMIT $3 OFFSET $4"
    ))
    .bind(status)
    .bind(filter.customer_id)
    .bind(page.limit)
    .bind(page.offset)
    .fetch_all(&mut *conn)
    .await?;
    let total: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM orders WHERE ($1::text IS NULL OR status = $1) AND ($2::uuid IS NULL OR customer_id = $2)",
    )
    .bind(status)
    .bind(filter.customer_id)
    .fetch_one(&mut *conn)
    .await?;
    let ids: Vec<Uuid> = rows.iter().map(|row| row.id).collect();
    let mut items = items_of(&mut conn, &ids).await?;
    let orders = rows
        .into_iter()
        .map(|row| {
            let order_items = items.remove(&row.id).unwrap_or_default();
            assemble(row, order_items)
        })
        .collect::<Result<Vec<_>>>()?;
    Ok((orders, total))
}

pub async fn set_status(conn: &mut PgConnection, id: Uuid, status: OrderStatus) -> Result<()> {
    sqlx::query("UPDATE orders SET status = $2, updated_at = now() WHERE id = $1")
        .bind(id)
        .bind(status.as_str())
        .execute(conn)
        .await?;
    Ok(())
}
