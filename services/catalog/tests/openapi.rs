//! The committed `openapi.json` must be what the code generates.
//! Regenerate: `PANTHERA_UPDATE_OPENAPI=1 cargo test -p panthera-catalog --test openapi`.

// Test helpers outside #[test] functions unwrap too: a failure there is a test failure.
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[test]
fn committed_openapi_matches_the_code() {
    let generated = panthera_catalog::openapi::document_json().unwrap();
    let document = panthera_kit::testing::assert_openapi_committed(
        env!("CARGO_MANIFEST_DIR"),
        "panthera-catalog",
        &generated,
    );
    for path in [
        "/v1/products",
        "/v1/products/{id}",
        "/v1/products/{id}/stock",
        "/v1/products/{id}/image-uploads",
        "/v1/products/{id}/image",
        "/v1/categories",
        "/v1/reservations",
        "/v1/reservations/{order_id}",
    ] {
        assert!(document["paths"][path].is_object(), "{path} is documented");
    }
}
