//! Reservations: stock held for an order, then released (cancelled) or committed (shipped).
//!
//! Products are locked in id order, so concurrent reservations touching the same products cannot
//! deadlock, and the `stock_available >= quantity` condition makes overselling impossible.

use sqlx::{PgConnection, PgPool};
use uuid::Uuid;

use crate::events::ProductEvents;
use crate::model::{CreateReservation, Reservation, ReservedItem};

#[derive(Debug, thiserror::Error)]
pub enum StockError {
    #[error("product {product_id} (item {index}) does not exist")]
    UnknownProduct { index: usize, product_id: Uuid },
    #[error(
        "not enough stock for product {product_id}: {requested} requested, {available} available"
    )]
    Insufficient {
        product_id: Uuid,
        requested: i32,
        available: i32,
    },
    #[error("reservation for order {0} already exists with different items")]
    Mismatch(Uuid),
    #[error("database query failed")]
    Query(#[from] sqlx::Error),
}

#[derive(sqlx::FromRow)]
struct ItemRow {
    product_id: Uuid,
    quantity: i32,
    price_cents: i64,
    currency: String,
    state: String,
}

/// The reservation of an order, if any.
pub async fn get(
    conn: &mut PgConnection,
    order_id: Uuid,
) -> Result<Option<Reservation>, sqlx::Error> {
    let rows: Vec<ItemRow> = sqlx::query_as(
        "SELECT r.product_id, r.quantity, p.price_cents, p.currency, r.state \
         FROM reservations r JOIN products p ON p.id = r.product_id \
         WHERE r.order_id = $1 ORDER BY r.product_id",
    )
    .bind(order_id)
    .fetch_all(conn)
    .await?;
    let Some(state) = rows.first().map(|row| row.state.clone()) else {
        return Ok(None);
    };
    Ok(Some(Reservation {
        order_id,
        state,
        items: rows
            .into_iter()
            .map(|row| ReservedItem {
                product_id: row.product_id,
                quantity: row.quantity,
                unit_price_cents: row.price_cents,
                currency: row.currency,
            })
            .collect(),
    }))
}

/// Reserves every item or none. Repeating a request for the same order returns the existing
/// reservation (`false`: nothing new was reserved), so callers can retry safely. Records
/// `product.stock_changed` for each product in the same transaction.
pub async fn reserve(
    pool: &PgPool,
    events: &ProductEvents,
    request: &CreateReservation,
) -> Result<(Reservation, bool), StockError> {
    let mut tx = pool.begin().await?;
    // Serialises concurrent requests for one order (a retry racing the original).
    sqlx::query("SELECT pg_advisory_xact_lock(hashtext($1::text))")
        .bind(request.order_id)
        .execute(&mut *tx)
        .await?;
    if let Some(existing) = get(&mut tx, request.order_id).await? {
        let mut asked: Vec<(Uuid, i32)> = request
            .items
            .iter()
            .map(|i| (i.product_id, i.quantity))
            .collect();
        asked.sort();
        let held: Vec<(Uuid, i32)> = existing
            .items
            .iter()
            .map(|i| (i.product_id, i.quantity))
            .collect();
        if asked != held {
            return Err(StockError::Mismatch(request.order_id));
        }
        return Ok((existing, false));
    }
    let mut items: Vec<(usize, Uuid, i32)> = request
        .items
        .iter()
        .enumerate()
        .map(|(index, item)| (index, item.product_id, item.quantity))
        .collect();
    items.sort_by_key(|(_, product_id, _)| *product_id);
    let product_ids: Vec<Uuid> = items.iter().map(|(_, id, _)| *id).collect();
    for (index, product_id, quantity) in items {
        let available: Option<i32> =
            sqlx::query_scalar("SELECT stock_available FROM products WHERE id = $1 FOR UPDATE")
                .bind(product_id)
                .fetch_optional(&mut *tx)
                .await?;
        let Some(available) = available else {
            return Err(StockError::UnknownProduct { index, product_id });
        };
        if available < quantity {
            return Err(StockError::Insufficient {
                product_id,
                requested: quantity,
                available,
            });
        }
        sqlx::query(
            "UPDATE products SET stock_available = stock_available - $2, \
             stock_reserved = stock_reserved + $2, updated_at = now(), version = version + 1 \
             WHERE id = $1",
        )
        .bind(product_id)
        .bind(quantity)
        .execute(&mut *tx)
        .await?;
        sqlx::query(
            "INSERT INTO reservations (order_id, product_id, quantity, state) VALUES ($1, $2, $3, 'reserved')",
        )
        .bind(request.order_id)
        .bind(product_id)
        .bind(quantity)
        .execute(&mut *tx)
        .await?;
        sqlx::query(
            "INSERT INTO stock_movements (product_id, delta_available, delta_reserved, reason, order_id) \
             VALUES ($1, $2, $3, 'reserve', $4)",
        )
        .bind(product_id)
        .bind(-quantity)
        .bind(quantity)
        .bind(request.order_id)
        .execute(&mut *tx)
        .await?;
    }
    events.record_stock(&mut tx, &product_ids).await?;
    let reservation = get(&mut tx, request.order_id)
        .await?
        .ok_or(StockError::Mismatch(request.order_id))?;
    tx.commit().await?;
    Ok((reservation, true))
}

/// What ends a reservation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Settlement {
    /// The order was cancelled: units become available again.
    Release,
    /// The order shipped: reserved units leave the warehouse.
    Commit,
}

/// Ends the order's reservation if it is still held; returns the products whose stock changed.
/// Runs in the caller's transaction (the event consumer records the event id in the same one),
/// where it records `product.stock_changed` for each of them.
pub async fn settle(
    conn: &mut PgConnection,
    events: &ProductEvents,
    order_id: Uuid,
    settlement: Settlement,
    event_id: Option<Uuid>,
) -> Result<Vec<Uuid>, sqlx::Error> {
    let (state, reason) = match settlement {
        Settlement::Release => ("released", "release"),
        Settlement::Commit => ("committed", "commit"),
    };
    let held: Vec<(Uuid, i32)> = sqlx::query_as(
        "UPDATE reservations SET state = $2, updated_at = now() \
         WHERE order_id = $1 AND state = 'reserved' RETURNING product_id, quantity",
    )
    .bind(order_id)
    .bind(state)
    .fetch_all(&mut *conn)
    .await?;
    let mut products = Vec::with_capacity(held.len());
    let mut held = held;
    held.sort();
    for (product_id, quantity) in held {
        let delta_available = match settlement {
            Settlement::Release => quantity,
            Settlement::Commit => 0,
        };
        sqlx::query(
            "UPDATE products SET stock_available = stock_available + $2, \
             stock_reserved = stock_reserved - $3, updated_at = now(), version = version + 1 \
             WHERE id = $1",
        )
        .bind(product_id)
        .bind(delta_available)
        .bind(quantity)
        .execute(&mut *conn)
        .await?;
        sqlx::query(
            "INSERT INTO stock_movements (product_id, delta_available, delta_reserved, reason, order_id, event_id) \
             VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(product_id)
        .bind(delta_available)
        .bind(-quantity)
        .bind(reason)
        .bind(order_id)
        .bind(event_id)
        .execute(&mut *conn)
        .await?;
        products.push(product_id);
    }
    events.record_stock(conn, &products).await?;
    Ok(products)
}
