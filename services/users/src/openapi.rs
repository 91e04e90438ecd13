//! The OpenAPI document, served at `/openapi.json` and committed as `services/users/openapi.json`
//! (a test fails when they differ; regenerate with `PANTHERA_UPDATE_OPENAPI=1 cargo test -p
//! panthera-users --test openapi`).

use axum::Json;
use utoipa::OpenApi;

#[derive(OpenApi)]
#[openapi(
    info(title = "Panthera Users API", description = "User management and token issuing. Lists use the envelope {\"data\": [...], \"meta\": {\"limit\", \"offset\", \"total\"}}; errors are application/problem+json."),
    paths(
        crate::routes::list_users,
        crate::routes::create_user,
        crate::routes::get_user,
        crate::routes::update_user,
        crate::routes::delete_user,
        crate::routes::issue_token,
    ),
    components(schemas(panthera_kit::FieldError, panthera_kit::PageMeta)),
    tags(
        (name = "users", description = "User management"),
        (name = "auth", description = "Access tokens for the gateway"),
    )
)]
pub struct ApiDoc;

pub fn document() -> utoipa::openapi::OpenApi {
    ApiDoc::openapi()
}

/// The committed form: pretty JSON with a trailing newline.
pub fn document_json() -> Result<String, serde_json::Error> {
    document().to_pretty_json().map(|mut text| {
        text.push('\n');
        text
    })
}

pub async fn serve() -> Json<utoipa::openapi::OpenApi> {
    Json(document())
}
