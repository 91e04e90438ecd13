//! The OpenAPI document, served at `/openapi.json` and committed as
//! `services/orders/openapi.json` (regenerate with `PANTHERA_UPDATE_OPENAPI=1 cargo test -p
//! panthera-orders --test openapi`).

use axum::Json;
use utoipa::OpenApi;

#[derive(OpenApi)]
#[openapi(
    info(title = "Panthera Orders API", description = "Orders, their state machine (pending -> paid -> shipped | cancelled) and idempotent creation. Lists use the envelope {\"data\": [...], \"meta\": {\"limit\", \"offset\", \"total\"}}; errors are application/problem+json. Events order.created and order.status_changed are published to Kafka through a transactional outbox."),
    paths(
        crate::routes::list_orders,
        crate::routes::create_order,
        crate::routes::get_order,
        crate::routes::pay_order,
        crate::routes::ship_order,
        crate::routes::cancel_order,
    ),
    components(schemas(panthera_kit::FieldError, panthera_kit::PageMeta)),
    tags((name = "orders", description = "Orders and their status"))
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
