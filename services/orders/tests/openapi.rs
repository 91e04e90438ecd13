//! The committed `openapi.json` must be what the code generates.
//! Regenerate: `PANTHERA_UPDATE_OPENAPI=1 cargo test -p panthera-orders --test openapi`.

// Test helpers outside #[test] functions unwrap too: a failure there is a test failure.
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[test]
fn committed_openapi_matches_the_code() {
    let generated = panthera_orders::openapi::document_json().unwrap();
    let document = panthera_kit::testing::assert_openapi_committed(
        env!("CARGO_MANIFEST_DIR"),
        "panthera-orders",
        &generated,
    );
    for path in [
        "/v1/orders",
        "/v1/orders/{id}",
        "/v1/orders/{id}/pay",
        "/v1/orders/{id}/ship",
        "/v1/orders/{id}/cancel",
    ] {
        assert!(document["paths"][path].is_object(), "{path} is documented");
    }
}
