//! CORS from the `cors` config section, implemented by tower-http's `CorsLayer`.
//!
//! `*` in a list means "any". The config validator rejects wildcards combined with credentials,
//! which tower-http would otherwise panic on.

use std::time::Duration;

use http::{HeaderName, HeaderValue, Method};
use tower_http::cors::{AllowHeaders, AllowMethods, AllowOrigin, Any, CorsLayer};

use crate::config::CorsConfig;

pub fn cors_layer(config: &CorsConfig) -> CorsLayer {
    let wildcard = |values: &[String]| values.iter().any(|value| value == "*");
    let origins = if wildcard(&config.allowed_origins) {
        AllowOrigin::from(Any)
    } else {
        AllowOrigin::list(
            config
                .allowed_origins
                .iter()
                .filter_map(|origin| HeaderValue::from_str(origin).ok()),
        )
    };
    let methods = if wildcard(&config.allowed_methods) {
        AllowMethods::from(Any)
    } else {
        AllowMethods::list(
            config
                .allowed_methods
                .iter()
                .filter_map(|method| Method::from_bytes(method.as_bytes()).ok()),
        )
    };
    let headers = if wildcard(&config.allowed_headers) {
        AllowHeaders::from(Any)
    } else {
        AllowHeaders::list(
            config
                .allowed_headers
                .iter()
                .filter_map(|header| HeaderName::from_bytes(header.as_bytes()).ok()),
        )
    };
    let mut layer = CorsLayer::new()
        .allow_origin(origins)
        .allow_methods(methods)
        .allow_headers(headers)
        .allow_credentials(config.allow_credentials);
    if let Some(seconds) = config.max_age_seconds {
        layer = layer.max_age(Duration::from_secs(seconds));
    }
    layer
}
