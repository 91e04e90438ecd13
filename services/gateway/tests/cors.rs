//! CORS preflight and actual requests, per the `cors` config section.
// Test helpers outside #[test] functions: a failed setup step should abort the test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::*;
use http::{Method, StatusCode};

fn yaml(upstream: &str) -> String {
    format!(
        r#"
routes:
  - {{name: api, pathPrefix: /, upstream: "{upstream}"}}
auth:
  jwt:
    issuer: https://issuer
    audiences: [shop]
    hs256SecretEnv: SECRET
cors:
  allowedOrigins: ["https://shop.example.com"]
  allowedMethods: [GET, POST, DELETE]
  allowedHeaders: [authorization, content-type]
  allowCredentials: true
  maxAgeSeconds: 600
"#
    )
}

#[tokio::test]
async fn preflight_is_answered_by_the_gateway() {
    let upstream = TestUpstream::start("api").await;
    let gw = start_gateway(&yaml(&upstream.url()), &[("SECRET", "s")]).await;
    let url = format!("http://{}/v1/things", gw.proxy_addr);

    // Preflights carry no token; they must not be rejected by auth nor reach the upstream.
    let reply = send(
        Method::OPTIONS,
        &url,
        &[
            ("origin", "https://shop.example.com"),
            ("access-control-request-method", "DELETE"),
            ("access-control-request-headers", "authorization"),
        ],
        "",
    )
    .await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(
        reply.header("access-control-allow-origin"),
        Some("https://shop.example.com")
    );
    assert_eq!(
        reply.header("access-control-allow-credentials"),
        Some("true")
    );
    assert_eq!(reply.header("access-control-max-age"), Some("600"));
    let methods = reply.header("access-control-allow-methods").unwrap();
    assert!(
        methods.contains("DELETE") && !methods.contains("PUT"),
        "{methods}"
    );
    let headers = reply.header("access-control-allow-headers").unwrap();
    assert!(headers.contains("authorization"), "{headers}");
    assert_eq!(upstream.count(), 0);

    // A foreign origin gets no allow-origin header.
    let foreign = send(
        Method::OPTIONS,
        &url,
        &[
            ("origin", "https://evil.example.com"),
            ("access-control-request-method", "GET"),
        ],
        "",
    )
    .await;
    assert!(foreign.header("access-control-allow-origin").is_none());
    assert_eq!(upstream.count(), 0);
    gw.shutdown().await;
}

#[tokio::test]
async fn actual_requests_carry_cors_headers_even_when_rejected() {
    let upstream = TestUpstream::start("api").await;
    let gw = start_gateway(&yaml(&upstream.url()), &[("SECRET", "s")]).await;
    let url = format!("http://{}/v1/things", gw.proxy_addr);
    // The browser must be able to read the 401, so CORS headers wrap auth failures too.
    let reply = get(&url, &[("origin", "https://shop.example.com")]).await;
    assert_eq!(reply.status, StatusCode::UNAUTHORIZED);
    assert_eq!(
        reply.header("access-control-allow-origin"),
        Some("https://shop.example.com")
    );
    assert!(reply.header("vary").unwrap_or("").contains("origin"));
    gw.shutdown().await;
}
