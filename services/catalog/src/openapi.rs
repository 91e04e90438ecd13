//! The OpenAPI document, served at `/openapi.json` and committed as
//! `services/catalog/openapi.json` (regenerate with `PANTHERA_UPDATE_OPENAPI=1 cargo test -p
//! panthera-catalog --test openapi`).

use axum::Json;
use utoipa::OpenApi;

#[derive(OpenApi)]
#[openapi(
    info(title = "Panthera Catalog API", description = "Categories, products with search (OpenSearch when wired: typos, prefixes, exact SKU; PostgreSQL full-text search otherwise) and facets, stock levels, product images (uploaded by the client straight to object storage with a presigned POST), and stock reservations for orders. Lists use the envelope {\"data\": [...], \"meta\": {\"limit\", \"offset\", \"total\"}}; errors are application/problem+json."),
    paths(
        crate::routes::list_categories,
        crate::routes::create_category,
        crate::routes::get_category,
        crate::routes::search_products,
        crate::routes::create_product,
        crate::routes::get_product,
        crate::routes::update_product,
        crate::routes::delete_product,
        crate::routes::set_stock,
        crate::routes::create_image_upload,
        crate::routes::attach_image,
        crate::routes::detach_image,
        crate::routes::create_reservation,
        crate::routes::get_reservation,
        crate::routes::release_reservation,
    ),
    components(schemas(panthera_kit::FieldError, panthera_kit::PageMeta, crate::model::ProductPage,
        crate::model::ProductPageMeta, crate::model::Facets, crate::model::CategoryFacet,
        crate::model::PriceRangeFacet)),
    tags(
        (name = "categories"),
        (name = "products"),
        (name = "reservations", description = "Stock held for orders (called by the orders service)"),
    )
)]
pub struct ApiDoc;

pub fn document_json() -> Result<String, serde_json::Error> {
    ApiDoc::openapi().to_pretty_json().map(|mut text| {
        text.push('\n');
        text
    })
}

pub async fn serve() -> Json<utoipa::openapi::OpenApi> {
    Json(ApiDoc::openapi())
}
