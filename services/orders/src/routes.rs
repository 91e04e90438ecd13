//! HTTP handlers of `/v1/orders`.

use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use panthera_kit::error::{Problem, is_unique_violation};
use panthera_kit::{ApiError, ApiJson, ApiPath, ApiQuery, Caller, Page, Paginated, ResultExt};
use uuid::Uuid;

use crate::app::AppState;
use crate::catalog::{CatalogError, Reservation};
use crate::events;
use crate::model::{CreateOrder, ListOrdersQuery, Order, OrderItem};
use crate::status::Action;
use crate::store::{self, StoreError};

pub const IDEMPOTENCY_KEY: &str = "idempotency-key";
/// Set on a response that repeats the result of an earlier request with the same key.
pub const IDEMPOTENT_REPLAYED: &str = "idempotent-replayed";

/// Scope that lets a non-administrator (a fulfilment system) pay and ship any order.
pub const FULFIL_SCOPE: &str = "orders:fulfil";

/// Administrators and fulfilment clients act on every order; customers on their own only.
fn acts_on_all(caller: &Caller) -> bool {
    caller.is_admin() || caller.has_scope(FULFIL_SCOPE)
}

/// The caller as a customer id: users' tokens carry the user id as subject.
fn customer_of(caller: &Caller) -> Result<Uuid, ApiError> {
    caller.subject.parse().map_err(|_| {
        ApiError::Forbidden("only customers (user tokens) place and list their orders")
    })
}

/// Namespace of order ids derived from idempotency keys (UUIDv5).
const ORDER_ID_NAMESPACE: Uuid = Uuid::from_u128(0x6f72_6465_7273_4000_8000_7061_6e74_6872);

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/v1/orders", get(list_orders).post(create_order))
        .route("/v1/orders/{id}", get(get_order))
        .route("/v1/orders/{id}/pay", post(pay_order))
        .route("/v1/orders/{id}/ship", post(ship_order))
        .route("/v1/orders/{id}/cancel", post(cancel_order))
        .route("/openapi.json", get(crate::openapi::serve))
}

fn idempotency_key(headers: &HeaderMap) -> Result<Option<String>, ApiError> {
    let Some(value) = headers.get(IDEMPOTENCY_KEY) else {
        return Ok(None);
    };
    let key = value
        .to_str()
        .ok()
        .map(str::trim)
        .filter(|k| (1..=255).contains(&k.len()) && k.chars().all(|c| c.is_ascii_graphic()))
        .ok_or_else(|| {
            ApiError::field(
                "Idempotency-Key",
                "must be 1 to 255 printable ASCII characters",
            )
        })?;
    Ok(Some(key.to_owned()))
}

/// One key names one order of one customer: the id is derived from both, so a retry reserves and
/// records the same order instead of a second one, even after a crash in between.
fn order_id_for(customer_id: Uuid, key: Option<&str>) -> Uuid {
    match key {
        Some(key) => Uuid::new_v5(
            &ORDER_ID_NAMESPACE,
            format!("{customer_id}:{key}").as_bytes(),
        ),
        None => Uuid::new_v4(),
    }
}

fn same_request(order: &Order, request: &CreateOrder) -> bool {
    let mut held: Vec<(Uuid, i32)> = order
        .items
        .iter()
        .map(|i| (i.product_id, i.quantity))
        .collect();
    let mut asked: Vec<(Uuid, i32)> = request
        .items
        .iter()
        .map(|i| (i.product_id, i.quantity))
        .collect();
    held.sort_unstable();
    asked.sort_unstable();
    Some(order.customer_id) == request.customer_id && held == asked
}

fn replay(order: Order, request: &CreateOrder) -> Result<Response, ApiError> {
    if !same_request(&order, request) {
        return Err(ApiError::Conflict(
            "the Idempotency-Key was already used for a different order".to_owned(),
        ));
    }
    let mut response = (StatusCode::OK, Json(order)).into_response();
    response
        .headers_mut()
        .insert(IDEMPOTENT_REPLAYED, HeaderValue::from_static("true"));
    Ok(response)
}

fn catalog_error(error: CatalogError) -> ApiError {
    match error {
        CatalogError::Rejected(detail) => ApiError::Conflict(detail),
        CatalogError::InvalidItems(errors) if !errors.is_empty() => ApiError::Validation(errors),
        CatalogError::InvalidItems(_) => ApiError::field("items", "the catalog rejected the items"),
        CatalogError::NotConfigured => ApiError::Unavailable(error.to_string()),
        CatalogError::Unreachable(_) | CatalogError::Unexpected(_) => {
            ApiError::Unavailable(panthera_kit::outbox::error_chain(&error))
        }
    }
}

/// Prices the reserved items; all must share one currency.
fn priced(reservation: &Reservation) -> Result<(Vec<OrderItem>, i64, String), ApiError> {
    let currency = reservation
        .items
        .first()
        .map(|item| item.currency.clone())
        .ok_or_else(|| ApiError::field("items", "must contain at least one item"))?;
    if reservation
        .items
        .iter()
        .any(|item| item.currency != currency)
    {
        return Err(ApiError::field(
            "items",
            "must all be priced in one currency",
        ));
    }
    let mut total: i64 = 0;
    let mut items = Vec::with_capacity(reservation.items.len());
    for item in &reservation.items {
        total = i64::from(item.quantity)
            .checked_mul(item.unit_price_cents)
            .and_then(|line| total.checked_add(line))
            .ok_or_else(|| ApiError::field("items", "the order total is too large"))?;
        items.push(OrderItem {
            product_id: item.product_id,
            quantity: item.quantity,
            unit_price_cents: item.unit_price_cents,
        });
    }
    items.sort_by_key(|item| item.product_id);
    Ok((items, total, currency))
}

/// Place an order: reserves the items at the catalog, then records the order and its
/// `order.created` event in one transaction.
#[utoipa::path(
    post, path = "/v1/orders", tag = "orders",
    request_body = CreateOrder,
    params(("Idempotency-Key" = Option<String>, Header, description = "Makes retries safe: the same key and body return the same order")),
    responses(
        (status = 201, description = "Created", body = Order),
        (status = 200, description = "Replay of an earlier request with the same Idempotency-Key", body = Order),
        (status = 400, description = "Malformed JSON", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "No authenticated caller", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "customerId is not the caller's", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "Not enough stock, or the key was used for another order", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Invalid fields", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "The catalog is unreachable", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn create_order(
    State(state): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    ApiJson(request): ApiJson<CreateOrder>,
) -> Result<Response, ApiError> {
    let key = idempotency_key(&headers)?;
    let mut request = request;
    // The customer is whoever the token says; only an administrator orders for someone else.
    let customer = match request.customer_id {
        Some(asked) if caller.is_admin() => asked,
        Some(asked) if asked != customer_of(&caller)? => {
            return Err(ApiError::Forbidden(
                "customerId must be the caller's own id",
            ));
        }
        _ => customer_of(&caller)?,
    };
    request.customer_id = Some(customer);
    let request = request.validate().map_err(ApiError::Validation)?;
    let order_id = order_id_for(customer, key.as_deref());

    if key.is_some() {
        let mut conn = state
            .pool
            .acquire()
            .await
            .or_internal("acquiring a connection")?;
        if let Some(existing) = store::get(&mut conn, order_id)
            .await
            .map_err(|e| ApiError::internal("loading an order", e))?
        {
            return replay(existing, &request);
        }
    }

    let reservation = state
        .catalog
        .reserve(order_id, &request.items)
        .await
        .map_err(catalog_error)?;
    let recorded = record_order(&state, order_id, customer, key.as_deref(), &reservation).await;
    match recorded {
        Ok(order) => {
            tracing::info!(order_id = %order.id, total_cents = order.total_cents, "order created");
            let location = format!("/v1/orders/{}", order.id);
            Ok((
                StatusCode::CREATED,
                [(header::LOCATION, location)],
                Json(order),
            )
                .into_response())
        }
        Err(Recorded::Raced) => {
            // A concurrent request with the same key recorded the order first; the reservation
            // is the same one (same order id), so there is nothing to undo.
            let mut conn = state
                .pool
                .acquire()
                .await
                .or_internal("acquiring a connection")?;
            let existing = store::get(&mut conn, order_id)
                .await
                .map_err(|e| ApiError::internal("loading an order", e))?
                .ok_or_else(|| {
                    ApiError::Conflict("the order is being created by another request".to_owned())
                })?;
            replay(existing, &request)
        }
        Err(Recorded::Failed(error)) => {
            if let Err(release) = state.catalog.release(order_id).await {
                tracing::error!(%order_id, error = %panthera_kit::outbox::error_chain(&release), "could not release the reservation of an unrecorded order");
            }
            Err(error)
        }
    }
}

enum Recorded {
    Raced,
    Failed(ApiError),
}

async fn record_order(
    state: &AppState,
    order_id: Uuid,
    customer_id: Uuid,
    key: Option<&str>,
    reservation: &Reservation,
) -> Result<Order, Recorded> {
    let (items, total_cents, currency) = priced(reservation).map_err(Recorded::Failed)?;
    let mut tx = state
        .pool
        .begin()
        .await
        .or_internal("starting a transaction")
        .map_err(Recorded::Failed)?;
    let new = store::NewOrder {
        id: order_id,
        customer_id,
        items: &items,
        total_cents,
        currency: &currency,
        idempotency_key: key,
    };
    let order = match store::insert(&mut tx, &new).await {
        Ok(order) => order,
        Err(StoreError::Query(error)) if is_unique_violation(&error) => {
            return Err(Recorded::Raced);
        }
        Err(error) => {
            return Err(Recorded::Failed(ApiError::internal(
                "recording an order",
                error,
            )));
        }
    };
    if let Some(topic) = &state.events_topic {
        events::created(&mut tx, topic, &order)
            .await
            .or_internal("recording the order.created event")
            .map_err(Recorded::Failed)?;
    }
    match tx.commit().await {
        Ok(()) => Ok(order),
        Err(error) if is_unique_violation(&error) => Err(Recorded::Raced),
        Err(error) => Err(Recorded::Failed(ApiError::internal(
            "committing an order",
            error,
        ))),
    }
}

/// List orders, oldest first, in the seed envelope: a customer's own, or anyone's for an
/// administrator or fulfilment client.
#[utoipa::path(
    get, path = "/v1/orders", tag = "orders",
    params(ListOrdersQuery),
    responses(
        (status = 200, description = "A page of orders", body = Paginated<Order>),
        (status = 401, description = "No authenticated caller", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "customerId names another customer", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Invalid query parameter", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn list_orders(
    State(state): State<AppState>,
    caller: Caller,
    ApiQuery(query): ApiQuery<ListOrdersQuery>,
) -> Result<Json<Paginated<Order>>, ApiError> {
    let page = Page::new(query.limit, query.offset).map_err(ApiError::Validation)?;
    let customer_id = if acts_on_all(&caller) {
        query.customer_id
    } else {
        let own = customer_of(&caller)?;
        if query.customer_id.is_some_and(|asked| asked != own) {
            return Err(ApiError::Forbidden("customers list only their own orders"));
        }
        Some(own)
    };
    let filter = store::ListFilter {
        status: query.status,
        customer_id,
    };
    let (orders, total) = store::list(&state.pool, &filter, page)
        .await
        .map_err(|e| ApiError::internal("listing orders", e))?;
    Ok(Json(Paginated::new(orders, page, total)))
}

/// Get an order.
#[utoipa::path(
    get, path = "/v1/orders/{id}", tag = "orders",
    params(("id" = Uuid, Path, description = "Order id")),
    responses(
        (status = 200, description = "The order", body = Order),
        (status = 401, description = "No authenticated caller", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such order, or another customer's", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn get_order(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<Uuid>,
) -> Result<Json<Order>, ApiError> {
    let mut conn = state
        .pool
        .acquire()
        .await
        .or_internal("acquiring a connection")?;
    store::get(&mut conn, id)
        .await
        .map_err(|e| ApiError::internal("loading an order", e))?
        .filter(|order| may_see(&caller, order))
        .map(Json)
        .ok_or(ApiError::NotFound("order"))
}

/// Another customer's order looks like a missing one, so order ids cannot be probed.
fn may_see(caller: &Caller, order: &Order) -> bool {
    acts_on_all(caller) || caller.subject == order.customer_id.to_string()
}

async fn transition(
    state: &AppState,
    caller: &Caller,
    id: Uuid,
    action: Action,
) -> Result<Json<Order>, ApiError> {
    if action != Action::Cancel && !acts_on_all(caller) {
        return Err(ApiError::Forbidden(
            "paying and shipping orders needs the administrator role or the orders:fulfil scope",
        ));
    }
    let mut tx = state
        .pool
        .begin()
        .await
        .or_internal("starting a transaction")?;
    let current = store::get_for_update(&mut tx, id)
        .await
        .map_err(|e| ApiError::internal("loading an order", e))?
        .filter(|order| may_see(caller, order))
        .ok_or(ApiError::NotFound("order"))?;
    let from = current.status;
    let to = action.target();
    // A customer may take back an order nobody has acted on yet; after payment it is the
    // shop's decision.
    if !acts_on_all(caller) && from != crate::status::OrderStatus::Pending {
        return Err(ApiError::Forbidden(
            "customers cancel only their own pending orders",
        ));
    }
    if !from.can_become(to) {
        return Err(ApiError::Conflict(format!(
            "cannot {} an order that is {}",
            action.verb(),
            from.as_str()
        )));
    }
    store::set_status(&mut tx, id, to)
        .await
        .map_err(|e| ApiError::internal("changing an order's status", e))?;
    let order = store::get(&mut tx, id)
        .await
        .map_err(|e| ApiError::internal("loading an order", e))?
        .ok_or(ApiError::NotFound("order"))?;
    if let Some(topic) = &state.events_topic {
        events::status_changed(&mut tx, topic, &order, from)
            .await
            .or_internal("recording the order.status_changed event")?;
    }
    tx.commit()
        .await
        .or_internal("committing a status change")?;
    tracing::info!(order_id = %id, from = from.as_str(), to = to.as_str(), "order status changed");
    Ok(Json(order))
}

/// Mark a pending order paid.
#[utoipa::path(post, path = "/v1/orders/{id}/pay", tag = "orders",
    params(("id" = Uuid, Path, description = "Order id")),
    responses((status = 200, body = Order),
              (status = 401, description = "No authenticated caller", body = Problem, content_type = "application/problem+json"),
              (status = 403, description = "The caller may not take this action", body = Problem, content_type = "application/problem+json"),
              (status = 404, body = Problem, content_type = "application/problem+json"),
              (status = 409, description = "Not allowed from the current status", body = Problem, content_type = "application/problem+json")))]
pub async fn pay_order(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<Uuid>,
) -> Result<Json<Order>, ApiError> {
    transition(&state, &caller, id, Action::Pay).await
}

/// Ship a paid order; its reserved stock is committed by the catalog.
#[utoipa::path(post, path = "/v1/orders/{id}/ship", tag = "orders",
    params(("id" = Uuid, Path, description = "Order id")),
    responses((status = 200, body = Order),
              (status = 401, description = "No authenticated caller", body = Problem, content_type = "application/problem+json"),
              (status = 403, description = "The caller may not take this action", body = Problem, content_type = "application/problem+json"),
              (status = 404, body = Problem, content_type = "application/problem+json"),
              (status = 409, description = "Not allowed from the current status", body = Problem, content_type = "application/problem+json")))]
pub async fn ship_order(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<Uuid>,
) -> Result<Json<Order>, ApiError> {
    transition(&state, &caller, id, Action::Ship).await
}

/// Cancel a pending or paid order; its reserved stock is released by the catalog.
#[utoipa::path(post, path = "/v1/orders/{id}/cancel", tag = "orders",
    params(("id" = Uuid, Path, description = "Order id")),
    responses((status = 200, body = Order),
              (status = 401, description = "No authenticated caller", body = Problem, content_type = "application/problem+json"),
              (status = 403, description = "The caller may not take this action", body = Problem, content_type = "application/problem+json"),
              (status = 404, body = Problem, content_type = "application/problem+json"),
              (status = 409, description = "Not allowed from the current status", body = Problem, content_type = "application/problem+json")))]
pub async fn cancel_order(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<Uuid>,
) -> Result<Json<Order>, ApiError> {
    transition(&state, &caller, id, Action::Cancel).await
}

#[cfg(test)]
mod tests {
    use super::*;
    use panthera_kit::FieldError;

    #[test]
    fn order_ids_follow_the_key_and_customer() {
        let customer = Uuid::new_v4();
        assert_eq!(
            order_id_for(customer, Some("k1")),
            order_id_for(customer, Some("k1"))
        );
        assert_ne!(
            order_id_for(customer, Some("k1")),
            order_id_for(customer, Some("k2"))
        );
        assert_ne!(
            order_id_for(customer, Some("k1")),
            order_id_for(Uuid::new_v4(), Some("k1"))
        );
        assert_ne!(order_id_for(customer, None), order_id_for(customer, None));
    }

    #[test]
    fn idempotency_keys_are_checked() {
        let mut headers = HeaderMap::new();
        assert_eq!(idempotency_key(&headers).unwrap(), None);
        headers.insert(IDEMPOTENCY_KEY, HeaderValue::from_static("abc-123"));
        assert_eq!(
            idempotency_key(&headers).unwrap().as_deref(),
            Some("abc-123")
        );
        headers.insert(IDEMPOTENCY_KEY, HeaderValue::from_static(""));
        let error = idempotency_key(&headers).unwrap_err();
        assert!(
            matches!(error, ApiError::Validation(ref errors) if errors == &[FieldError::new("Idempotency-Key", "must be 1 to 255 printable ASCII characters")])
        );
    }
}
