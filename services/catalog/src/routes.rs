//! HTTP handlers: categories, products (search, stock, images) and reservations.
//!
//! Product reads answer with `x-cache: hit|miss` so operators can see the cache work. Products
//! are cached and indexed with their image's key only; its URL is made at each answer
//! ([`with_image_urls`]), as presigned URLs expire.

use axum::extract::State;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use axum::{Json, Router};
use panthera_kit::error::{Problem, is_unique_violation};
use panthera_kit::{ApiError, ApiJson, ApiPath, ApiQuery, Caller, Page, Paginated, ResultExt};
use uuid::Uuid;

use crate::app::AppState;
use crate::events::{PRODUCT_CHANGED, PRODUCT_CREATED, PRODUCT_STOCK_CHANGED};
use crate::images::{self, Images};
use crate::model::{
    AttachImage, Category, CreateCategory, CreateImageUpload, CreateProduct, CreateReservation,
    ImageUpload, PageQuery, Product, ProductPage, ProductQuery, Reservation, SetStock,
    UpdateProduct,
};
use crate::search::client::SearchError;
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
        .route("/v1/products/{id}/image-uploads", post(create_image_upload))
        .route(
            "/v1/products/{id}/image",
            put(attach_image).delete(detach_image),
        )
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

/// Sets the `imageUrl` of the products that have an image (nothing without a bucket).
async fn with_image_urls(state: &AppState, products: &mut [Product]) {
    if let Some(images) = &state.images {
        images.fill_urls(products).await;
    }
}

async fn with_image_url(state: &AppState, mut product: Product) -> Product {
    with_image_urls(state, std::slice::from_mut(&mut product)).await;
    product
}

fn images_of(state: &AppState) -> Result<&Images, ApiError> {
    state.images.as_ref().ok_or_else(|| {
        ApiError::Unavailable("product images are off: S3_BUCKET is not set".to_owned())
    })
}

/// Which backend answered a search: `opensearch` or `postgres`.
pub const SEARCH_BACKEND_HEADER: &str = "x-search-backend";

fn with_backend(mut response: Response, backend: &'static str) -> Response {
    response
        .headers_mut()
        .insert(SEARCH_BACKEND_HEADER, HeaderValue::from_static(backend));
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

/// Search products: full text (`q`) and filters, in the seed list envelope, with facets in
/// `meta.facets`.
///
/// With OpenSearch wired (`SEARCH_ENDPOINT`), `q` matches the name (weighted 3x) and the
/// description with typos forgiven (one from 3 letters, two from 6), the SKU exactly (any case,
/// first), and name prefixes as typed; products show up in searches about a second after a write
/// (the index follows the product events). When OpenSearch cannot answer, and without it,
/// PostgreSQL's full-text search answers (web search syntax, no typos or prefixes). The
/// `x-search-backend` header says which one did.
#[utoipa::path(get, path = "/v1/products", tag = "products", params(ProductQuery),
    responses((status = 200, body = ProductPage,
               headers(("x-search-backend" = String, description = "opensearch or postgres"))),
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
    // OpenSearch answers are not cached: the index follows writes within a second, and the
    // cache's invalidation happens at the write, before the index has it.
    if let Some(search) = &state.search {
        match search.products(&normalized, page).await {
            Ok(mut result) => {
                search.count_search("opensearch");
                with_image_urls(&state, &mut result.data).await;
                return Ok(with_backend(Json(result).into_response(), "opensearch"));
            }
            Err(error) => {
                search.metrics.fallbacks.inc();
                if !matches!(error, SearchError::CircuitOpen) {
                    let chain = panthera_kit::outbox::error_chain(&error);
                    tracing::warn!(error = %chain, "searching through OpenSearch failed; answering from PostgreSQL");
                }
            }
        }
    }
    let key = state.cache.search_key(&normalized).await;
    if let Some(key) = &key
        && let Some(mut cached) = state.cache.get::<ProductPage>(key).await
    {
        with_image_urls(&state, &mut cached.data).await;
        return Ok(with_backend(
            with_cache_header(Json(cached).into_response(), true),
            "postgres",
        ));
    }
    let (products, total) = store::search_products(&state.pool, &normalized, page)
        .await
        .or_internal("searching products")?;
    let facets = store::search_facets(&state.pool, &normalized)
        .await
        .or_internal("counting search facets")?;
    let mut result = ProductPage::new(products, page, total, facets);
    if let Some(key) = &key {
        state.cache.put(key, &result).await;
    }
    with_image_urls(&state, &mut result.data).await;
    if let Some(search) = &state.search {
        search.count_search("postgres");
    }
    Ok(with_backend(
        with_cache_header(Json(result).into_response(), false),
        "postgres",
    ))
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
    let mut tx = state
        .pool
        .begin()
        .await
        .or_internal("starting a transaction")?;
    let product = match store::insert_product(&mut tx, &request).await {
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
    state
        .events
        .record(&mut tx, PRODUCT_CREATED, product.id)
        .await
        .or_internal("recording a product event")?;
    tx.commit().await.or_internal("committing a new product")?;
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
        let product = with_image_url(&state, product).await;
        return Ok(with_cache_header(Json(product).into_response(), true));
    }
    let product = store::get_product(&state.pool, id)
        .await
        .or_internal("loading a product")?
        .ok_or(ApiError::NotFound("product"))?;
    state.cache.put(&key, &product).await;
    let product = with_image_url(&state, product).await;
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
    let mut tx = state
        .pool
        .begin()
        .await
        .or_internal("starting a transaction")?;
    let product = match store::update_product(&mut tx, id, &changes).await {
        Ok(Some(product)) => product,
        Ok(None) => return Err(ApiError::NotFound("product")),
        Err(error) if is_foreign_key_violation(&error) => {
            return Err(ApiError::field("categoryId", "no such category"));
        }
        Err(error) => return Err(ApiError::internal("updating a product", error)),
    };
    state
        .events
        .record(&mut tx, PRODUCT_CHANGED, id)
        .await
        .or_internal("recording a product event")?;
    tx.commit()
        .await
        .or_internal("committing a product change")?;
    state.cache.invalidate_products(&[id]).await;
    Ok(Json(with_image_url(&state, product).await))
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
    let mut tx = state
        .pool
        .begin()
        .await
        .or_internal("starting a transaction")?;
    let deleted = match store::delete_product(&mut tx, id).await {
        Ok(deleted) => deleted,
        Err(error) if is_foreign_key_violation(&error) => {
            return Err(ApiError::Conflict(
                "orders refer to this product".to_owned(),
            ));
        }
        Err(error) => return Err(ApiError::internal("deleting a product", error)),
    };
    let Some(last_version) = deleted else {
        return Err(ApiError::NotFound("product"));
    };
    state
        .events
        .record_deleted(&mut tx, id, last_version)
        .await
        .or_internal("recording a product event")?;
    tx.commit()
        .await
        .or_internal("committing a product deletion")?;
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
    state
        .events
        .record(&mut tx, PRODUCT_STOCK_CHANGED, id)
        .await
        .or_internal("recording a product event")?;
    tx.commit().await.or_internal("committing a stock change")?;
    state.cache.invalidate_products(&[id]).await;
    Ok(Json(with_image_url(&state, product).await))
}

/// Get a form to upload the product's image with, straight to object storage (a presigned POST).
///
/// Post `fields` and then the file, as the last field `file`, as `multipart/form-data` to `url`
/// within 10 minutes; then attach `key` with `PUT /v1/products/{id}/image`. The storage refuses
/// a file larger than `maxBytes` (400 `EntityTooLarge`) and any other key or Content-Type (403).
#[utoipa::path(post, path = "/v1/products/{id}/image-uploads", tag = "products",
    params(("id" = Uuid, Path)), request_body = CreateImageUpload,
    responses((status = 401, description = "No authenticated caller", body = Problem, content_type = "application/problem+json"),
              (status = 403, description = "Needs the admin role or the catalog:write scope", body = Problem, content_type = "application/problem+json"),
              (status = 201, body = ImageUpload),
              (status = 400, body = Problem, content_type = "application/problem+json"),
              (status = 404, body = Problem, content_type = "application/problem+json"),
              (status = 422, description = "Not image/jpeg, image/png or image/webp", body = Problem, content_type = "application/problem+json"),
              (status = 503, description = "No bucket is configured (S3_BUCKET)", body = Problem, content_type = "application/problem+json")))]
pub async fn create_image_upload(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<Uuid>,
    ApiJson(request): ApiJson<CreateImageUpload>,
) -> Result<Response, ApiError> {
    caller.require_admin_or_scope(WRITE_SCOPE)?;
    let images = images_of(&state)?;
    let content_type = request
        .validate(&images::CONTENT_TYPES)
        .map_err(ApiError::Validation)?;
    if !store::product_exists(&state.pool, id)
        .await
        .or_internal("loading a product")?
    {
        return Err(ApiError::NotFound("product"));
    }
    let upload = images
        .upload(id, &content_type)
        .await
        .or_internal("signing an image upload")?;
    Ok((StatusCode::CREATED, Json(upload)).into_response())
}

/// Attach an uploaded image to the product (replacing its image, if any).
///
/// The key must be one issued for this product by `POST /v1/products/{id}/image-uploads`, and the
/// object must be there, of an allowed type and size. The previous image's object, if any, stays
/// in the bucket.
#[utoipa::path(put, path = "/v1/products/{id}/image", tag = "products",
    params(("id" = Uuid, Path)), request_body = AttachImage,
    responses((status = 401, description = "No authenticated caller", body = Problem, content_type = "application/problem+json"),
              (status = 403, description = "Needs the admin role or the catalog:write scope", body = Problem, content_type = "application/problem+json"),
              (status = 200, body = Product),
              (status = 400, body = Problem, content_type = "application/problem+json"),
              (status = 404, body = Problem, content_type = "application/problem+json"),
              (status = 422, description = "A key of another product, nothing uploaded under it, or an object of another type or size", body = Problem, content_type = "application/problem+json"),
              (status = 503, description = "No bucket is configured (S3_BUCKET)", body = Problem, content_type = "application/problem+json")))]
pub async fn attach_image(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<Uuid>,
    ApiJson(request): ApiJson<AttachImage>,
) -> Result<Json<Product>, ApiError> {
    caller.require_admin_or_scope(WRITE_SCOPE)?;
    let images = images_of(&state)?;
    if !store::product_exists(&state.pool, id)
        .await
        .or_internal("loading a product")?
    {
        return Err(ApiError::NotFound("product"));
    }
    let key = request.key.trim();
    if !images::issued_for(key, id) {
        return Err(ApiError::field(
            "key",
            "must be a key issued for this product by POST /v1/products/{id}/image-uploads",
        ));
    }
    let object = images
        .head(key)
        .await
        .or_internal("checking an uploaded image")?
        .ok_or_else(|| ApiError::field("key", "nothing has been uploaded under this key"))?;
    if let Some(refusal) = images.refusal(&object) {
        return Err(ApiError::field("key", refusal));
    }
    let product = change_image(&state, id, Some(key)).await?;
    Ok(Json(with_image_url(&state, product).await))
}

/// Remove the product's image. The object stays in the bucket (delete it there, or let a
/// lifecycle rule do so); the product answers without an image at once.
#[utoipa::path(delete, path = "/v1/products/{id}/image", tag = "products",
    params(("id" = Uuid, Path)),
    responses((status = 401, description = "No authenticated caller", body = Problem, content_type = "application/problem+json"),
              (status = 403, description = "Needs the admin role or the catalog:write scope", body = Problem, content_type = "application/problem+json"),
              (status = 200, body = Product),
              (status = 404, body = Problem, content_type = "application/problem+json")))]
pub async fn detach_image(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<Uuid>,
) -> Result<Json<Product>, ApiError> {
    caller.require_admin_or_scope(WRITE_SCOPE)?;
    Ok(Json(change_image(&state, id, None).await?))
}

/// Sets or clears the image key as the other product writes change a product: a new version and
/// a `product.changed` event in the same transaction (so the search index follows), then the
/// cache entry dropped. Nothing changes, and nothing is recorded, when the key is already so.
async fn change_image(state: &AppState, id: Uuid, key: Option<&str>) -> Result<Product, ApiError> {
    let mut tx = state
        .pool
        .begin()
        .await
        .or_internal("starting a transaction")?;
    let (product, changed) = store::set_image(&mut tx, id, key)
        .await
        .or_internal("changing a product's image")?
        .ok_or(ApiError::NotFound("product"))?;
    if changed {
        state
            .events
            .record(&mut tx, PRODUCT_CHANGED, id)
            .await
            .or_internal("recording a product event")?;
    }
    tx.commit()
        .await
        .or_internal("committing a product's image")?;
    if changed {
        state.cache.invalidate_products(&[id]).await;
    }
    Ok(product)
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
    match stock::reserve(&state.pool, &state.events, &request).await {
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
    let products = stock::settle(&mut tx, &state.events, order_id, Settlement::Release, None)
        .await
        .or_internal("releasing a reservation")?;
    tx.commit().await.or_internal("committing a release")?;
    state.cache.invalidate_products(&products).await;
    Ok(StatusCode::NO_CONTENT)
}
