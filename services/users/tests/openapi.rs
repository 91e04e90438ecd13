//! The committed `openapi.json` must be what the code generates.
//! Regenerate: `PANTHERA_UPDATE_OPENAPI=1 cargo test -p panthera-users --test openapi`.

// Test helpers outside #[test] functions unwrap too: a failure there is a test failure.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::PathBuf;

#[test]
fn committed_openapi_matches_the_code() {
    let generated = panthera_users::openapi::document_json().unwrap();
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("openapi.json");
    if std::env::var_os("PANTHERA_UPDATE_OPENAPI").is_some() {
        std::fs::write(&path, &generated).unwrap();
    }
    let committed = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        committed == generated,
        "{} is out of date; regenerate it with PANTHERA_UPDATE_OPENAPI=1 cargo test -p panthera-users --test openapi",
        path.display()
    );
    let document: serde_json::Value = serde_json::from_str(&generated).unwrap();
    for path in ["/v1/users", "/v1/users/{id}", "/v1/auth/token"] {
        assert!(document["paths"][path].is_object(), "{path} is documented");
    }
}
