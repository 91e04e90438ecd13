//! HTTP handlers: categories, products (search, stock) and reservations.
//!
//! Product reads answer with `x-cache: hit|miss` so operators can see the cache work.

use axum::extract::State;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use axum::{Json, Router};
use panthera_kit::error::{Problem, is_unique_violation};
use panthera_kit::{ApiError, ApiJson, ApiPath, ApiQuery, Caller, Page, Paginated, ResultExt};
use uuid::Uuid;

use crate::app::AppState;
use crate::model::{
    Category, CreateCategory, CreateProduct, CreateReservation, PageQuery, Product, ProductQuery,
    Reservation, SetStock, UpdateProduct,
};
use crate::stock::{self, Settlement, StockError};
use crate::store::{self, is_foreign_key_violation};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/v1/categories", get(list_categories).post(create_category))
        .route("/v1/categories/{id}", get(get_category))
        .route("/v1/products", get(search_products).post(create_product))
        .route(
            "/v1/products/{id}",
            get(get_product)
                .patch(update_product)
                .delete(delete_product),
        )
        .route("/v1/products/{id}/stock", put(set_stock))
        .route("/v1/reservations", post(create_reservation))
        .route(
            "/v1/reservations/{order_id}",
            get(get_reservation).delete(release_reservation),
        )
        .route("/openapi.json", get(crate::openapi::serve))
}

/// Scope that lets a non-administrator change the catalog. Reads are public; reservations are
/// the orders service's (it calls the catalog directly, not through the gateway).
pub const WRITE_SCOPE: &str = "catalog:write";

fn with_cache_header(mut response: Response, hit: bool) -> Response {
    response.headers_mut().insert(
        "x-cache",
        HeaderValue::from_static(if hit { "hit" } else { "miss" }),
    );
    response
}

/// List categories by name.
#[utoipa::path(get, path = "/v1/categories", tag = "categories", params(PageQuery),
    responses((status = 200, body = Paginated<Category>),
              (status = 422, body = Problem, content_type = "application/problem+json")))]
pub async fn list_categories(
    State(state): State<AppState>,
    ApiQuery(query): ApiQuery<PageQuery>,
) -> Result<Json<Paginated<Category>>, ApiError> {
    let page = Page::new(query.limit, query.offset).map_err(ApiError::Validation)?;
    let (categories, total) = store::list_categories(&state.pool, page)
        .await
        .or_internal("listing categories")?;
    Ok(Json(Paginated::new(categories, page, total)))
}

/// Create a category.
#[utoipa::path(post, path = "/v1/categories", tag = "categories", request_body = CreateCategory,
    responses((status = 401, description = "No authenticated caller", body = Problem, content_type = "application/problem+json"),
              (status = 403, description = "Needs the admin role or the catalog:write scope", body = Problem, content_type = "application/problem+json"),
              (status = 201, body = Category),
              (status = 400, body = Problem, content_type = "application/problem+json"),
              (status = 409, description = "Slug taken", body = Problem, content_type = "application/problem+json"),
              (status = 422, body = Problem, content_type = "application/problem+json")))]
pub async fn create_category(
    State(state): State<AppState>,
    caller: Caller,
    ApiJson(request): ApiJson<CreateCategory>,
) -> Result<Response, ApiError> {
    caller.require_admin_or_scope(WRITE_SCOPE)?;
    let request = request.validate().map_err(ApiError::Validation)?;
    match store::insert_category(&state.pool, &request).await {
        Ok(category) => {
            let location = format!("/v1/categories/{}", category.id);
            Ok((
                StatusCode::CREATED,
                [(header::LOCATION, location)],
                Json(category),
            )
                .into_response())
        }
        Err(error) if is_unique_violation(&error) => Err(ApiError::Conflict(
            "a category with this slug already exists".to_owned(),
        )),
        Err(error) => Err(ApiError::internal("creating a category", error)),
    }
}

/// Get a category.
#[utoipa::path(get, path = "/v1/categories/{id}", tag = "categories",
    params(("id" = Uuid, Path)),
    responses((status = 200, body = Category),
              (status = 404, body = Problem, content_type = "application/problem+json")))]
pub async fn get_category(
    State(state): State<AppState>,
    ApiPath(id): ApiPath<Uuid>,
) -> Result<Json<Category>, ApiError> {
    store::get_category(&state.pool, id)
        .await
        .or_internal("loading a category")?
        .map(Json)
        .ok_or(ApiError::NotFound("category"))
}

/// Search products: full text (`q`) and filters, in the seed list envelope.
#[utoipa::path(get, path = "/v1/products", tag = "products", params(ProductQuery),
    responses((status = 200, body = Paginated<Product>),
              (status = 422, body = Problem, content_type = "application/problem+json")))]
pub async fn search_products(
    State(state): State<AppState>,
    ApiQuery(query): ApiQuery<ProductQuery>,
) -> Result<Response, ApiError> {
    let query = query.validate().map_err(ApiError::Validation)?;
    let page = Page::new(query.limit, query.offset).map_err(ApiError::Validation)?;
    let normalized = ProductQuery {
        limit: Some(page.limit),
        offset: Some(page.offset),
        ..query
    };
    let key = state.cache.search_key(&normalized).await;
    if let Some(key) = &key
        && let Some(cached) = state.cache.get::<Paginated<Product>>(key).await
    {
        return Ok(with_cache_header(Json(cached).into_response(), true));
    }
    let (products, total) = store::search_products(&state.pool, &normalized, page)
        .await
        .or_internal("searching products")?;
    let result = Paginated::new(products, page, total);
    if let Some(key) = &key {
        state.cache.put(key, &result).await;
    }
    Ok(with_cache_header(Json(result).into_response(), false))
}

/// Create a product.
#[utoipa::path(post, path = "/v1/products", tag = "products", request_body = CreateProduct,
    responses((status = 401, description = "No authenticated caller", body = Problem, content_type = "application/problem+json"),
              (status = 403, description = "Needs the admin role or the catalog:write scope", body = Problem, content_type = "application/problem+json"),
              (status = 201, body = Product),
              (status = 400, body = Problem, content_type = "application/problem+json"),
              (status = 409, description = "SKU taken", body = Problem, content_type = "application/problem+json"),
              (status = 422, body = Problem, content_type = "application/problem+json")))]
pub async fn create_product(
    State(state): State<AppState>,
    caller: Caller,
    ApiJson(request): ApiJson<CreateProduct>,
) -> Result<Response, ApiError> {
    caller.require_admin_or_scope(WRITE_SCOPE)?;
    let request = request.validate().map_err(ApiError::Validation)?;
    let product = match store::insert_product(&state.pool, &request).await {
        Ok(product) => product,
        Err(error) if is_unique_violation(&error) => {
            return Err(ApiError::Conflict(
                "a product with this SKU already exists".to_owned(),
            ));
        }
        Err(error) if is_foreign_key_violation(&error) => {
            return Err(ApiError::field("categoryId", "no such category"));
        }
        Err(error) => return Err(ApiError::internal("creating a product", error)),
    };
    state.cache.invalidate_products(&[product.id]).await;
    let location = format!("/v1/products/{}", product.id);
    Ok((
        StatusCode::CREATED,
        [(header::LOCATION, location)],
        Json(product),
    )
        .into_response())
}

/// Get a product with its stock levels.
#[utoipa::path(get, path = "/v1/products/{id}", tag = "products",
    params(("id" = Uuid, Path)),
    responses((status = 200, body = Product),
              (status = 404, body = Problem, content_type = "application/problem+json")))]
pub async fn get_product(
    State(state): State<AppState>,
    ApiPath(id): ApiPath<Uuid>,
) -> Result<Response, ApiError> {
    let key = state.cache.product_key(id);
    if let Some(product) = state.cache.get::<Product>(&key).await {
        return Ok(with_cache_header(Json(product).into_response(), true));
    }
    let product = store::get_product(&state.pool, id)
        .await
        .or_internal("loading a product")?
        .ok_or(ApiError::NotFound("product"))?;
    state.cache.put(&key, &product).await;
    Ok(with_cache_header(Json(product).into_response(), false))
}

/// Change some fields of a product.
#[utoipa::path(patch, path = "/v1/products/{id}", tag = "products",
    params(("id" = Uuid, Path)), request_body = UpdateProduct,
    responses((status = 401, description = "No authenticated caller", body = Problem, content_type = "application/problem+json"),
              (status = 403, description = "Needs the admin role or the catalog:write scope", body = Problem, content_type = "application/problem+json"),
              (status = 200, body = Product),
              (status = 400, body = Problem, content_type = "application/problem+json"),
              (status = 404, body = Problem, content_type = "application/problem+json"),
              (status = 422, body = Problem, content_type = "application/problem+json")))]
pub async fn update_product(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<Uuid>,
    ApiJson(request): ApiJson<UpdateProduct>,
) -> Result<Json<Product>, ApiError> {
    caller.require_admin_or_scope(WRITE_SCOPE)?;
    let changes = request.validate().map_err(ApiError::Validation)?;
    let product = match store::update_product(&state.pool, id, &changes).await {
        Ok(Some(product)) => product,
        Ok(None) => return Err(ApiError::NotFound("product")),
        Err(error) if is_foreign_key_violation(&error) => {
            return Err(ApiError::field("categoryId", "no such category"));
        }
        Err(error) => return Err(ApiError::internal("updating a product", error)),
    };
    state.cache.invalidate_products(&[id]).await;
    Ok(Json(product))
}

/// Delete a product that no order has reserved.
#[utoipa::path(delete, path = "/v1/products/{id}", tag = "products",
    params(("id" = Uuid, Path)),
    responses((status = 401, description = "No authenticated caller", body = Problem, content_type = "application/problem+json"),
              (status = 403, description = "Needs the admin role or the catalog:write scope", body = Problem, content_type = "application/problem+json"),
              (status = 204),
              (status = 404, body = Problem, content_type = "application/problem+json"),
              (status = 409, description = "Orders refer to the product", body = Problem, content_type = "application/problem+json")))]
pub async fn delete_product(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<Uuid>,
) -> Result<StatusCode, ApiError> {
    caller.require_admin_or_scope(WRITE_SCOPE)?;
    let deleted = match store::delete_product(&state.pool, id).await {
        Ok(deleted) => deleted,
        Err(error) if is_foreign_key_violation(&error) => {
            return Err(ApiError::Conflict(
                "orders refer to this product".to_owned(),
            ));
        }
        Err(error) => return Err(ApiError::internal("deleting a product", error)),
    };
    if !deleted {
        return Err(ApiError::NotFound("product"));
    }
    state.cache.invalidate_products(&[id]).await;
    Ok(StatusCode::NO_CONTENT)
}

/// Set a product's available stock (restocking, inventory counts).
#[utoipa::path(put, path = "/v1/products/{id}/stock", tag = "products",
    params(("id" = Uuid, Path)), request_body = SetStock,
    responses((status = 401, description = "No authenticated caller", body = Problem, content_type = "application/problem+json"),
              (status = 403, description = "Needs the admin role or the catalog:write scope", body = Problem, content_type = "application/problem+json"),
              (status = 200, body = Product),
              (status = 404, body = Problem, content_type = "application/problem+json"),
              (status = 422, body = Problem, content_type = "application/problem+json")))]
pub async fn set_stock(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<Uuid>,
    ApiJson(request): ApiJson<SetStock>,
) -> Result<Json<Product>, ApiError> {
    caller.require_admin_or_scope(WRITE_SCOPE)?;
    if request.available < 0 {
        return Err(ApiError::field("available", "must not be negative"));
    }
    let mut tx = state
        .pool
        .begin()
        .await
        .or_internal("starting a transaction")?;
    let product = store::set_stock(&mut tx, id, request.available)
        .await
        .or_internal("setting stock")?
        .ok_or(ApiError::NotFound("product"))?;
    tx.commit().await.or_internal("committing a stock change")?;
    state.cache.invalidate_products(&[id]).await;
    Ok(Json(product))
}

/// Hold stock for an order: all items or none. Repeating the same request returns the existing
/// reservation with 200.
#[utoipa::path(post, path = "/v1/reservations", tag = "reservations", request_body = CreateReservation,
    responses((status = 201, description = "Reserved", body = Reservation),
              (status = 200, description = "Already reserved by an earlier identical request", body = Reservation),
              (status = 409, description = "Not enough stock, or the order has a different reservation", body = Problem, content_type = "application/problem+json"),
              (status = 422, body = Problem, content_type = "application/problem+json")))]
pub async fn create_reservation(
    State(state): State<AppState>,
    ApiJson(request): ApiJson<CreateReservation>,
) -> Result<Response, ApiError> {
    let request = request.validate().map_err(ApiError::Validation)?;
    match stock::reserve(&state.pool, &request).await {
        Ok((reservation, created)) => {
            if created {
                let ids: Vec<Uuid> = reservation.items.iter().map(|i| i.product_id).collect();
                state.cache.invalidate_products(&ids).await;
            }
            let status = if created {
                StatusCode::CREATED
            } else {
                StatusCode::OK
            };
            Ok((status, Json(reservation)).into_response())
        }
        Err(StockError::UnknownProduct { index, .. }) => Err(ApiError::field(
            format!("items[{index}].productId"),
            "no such product",
        )),
        Err(error @ (StockError::Insufficient { .. } | StockError::Mismatch(_))) => {
            Err(ApiError::Conflict(error.to_string()))
        }
        Err(StockError::Query(error)) => Err(ApiError::internal("reserving stock", error)),
    }
}

/// The reservation of an order.
#[utoipa::path(get, path = "/v1/reservations/{order_id}", tag = "reservations",
    params(("order_id" = Uuid, Path)),
    responses((status = 200, body = Reservation),
              (status = 404, body = Problem, content_type = "application/problem+json")))]
pub async fn get_reservation(
    State(state): State<AppState>,
    ApiPath(order_id): ApiPath<Uuid>,
) -> Result<Json<Reservation>, ApiError> {
    let mut conn = state
        .pool
        .acquire()
        .await
        .or_internal("acquiring a connection")?;
    stock::get(&mut conn, order_id)
        .await
        .or_internal("loading a reservation")?
        .map(Json)
        .ok_or(ApiError::NotFound("reservation"))
}

/// Release a held reservation (the order could not be recorded). Idempotent.
#[utoipa::path(delete, path = "/v1/reservations/{order_id}", tag = "reservations",
    params(("order_id" = Uuid, Path)),
    responses((status = 204), (status = 404, body = Problem, content_type = "application/problem+json")))]
pub async fn release_reservation(
    State(state): State<AppState>,
    ApiPath(order_id): ApiPath<Uuid>,
) -> Result<StatusCode, ApiError> {
    let mut tx = state
        .pool
        .begin()
        .await
        .or_internal("starting a transaction")?;
    if stock::get(&mut tx, order_id)
        .await
        .or_internal("loading a reservation")?
        .is_none()
    {
        return Err(ApiError::NotFound("reservation"));
    }
    let products = stock::settle(&mut tx, order_id, Settlement::Release, None)
        .await
        .or_internal("releasing a reservation")?;
    tx.commit().await.or_internal("committing a release")?;
    state.cache.invalidate_products(&products).await;
    Ok(StatusCode::NO_CONTENT)
}
