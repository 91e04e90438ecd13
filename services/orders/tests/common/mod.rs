//! An orders service (through `oneshot`) wired to a real catalog served on 127.0.0.1:0, each on a
//! database of its own.

// Test helpers outside #[test] functions unwrap too: a failure there is a test failure.
#![allow(clippy::unwrap_used, clippy::expect_used)]
#![allow(dead_code)]

use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::http::{HeaderMap, Method, Request, StatusCode, header};
use http_body_util::BodyExt;
use panthera_kit::health::Readiness;
use panthera_kit::metrics::Metrics;
use panthera_kit::server::{self, HttpLimits};
use panthera_kit::testing::{TestDatabase, identity_check, sign_identity, signed_identity};
use panthera_orders::catalog::CatalogClient;
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;
use tower::ServiceExt;
use uuid::Uuid;

pub struct Env {
    pub orders: Router,
    pub orders_db: TestDatabase,
    pub catalog_db: TestDatabase,
    pub catalog_url: String,
    pub http: reqwest::Client,
    shutdown: CancellationToken,
}

impl Env {
    /// `None` when PostgreSQL is not available (the test is skipped).
    pub async fn new(events_topic: Option<&str>) -> Option<Self> {
        let catalog_db = TestDatabase::create("orders_catalog").await.unwrap()?;
        panthera_catalog::app::MIGRATOR
            .run(&catalog_db.pool)
            .await
            .unwrap();
        let catalog = panthera_catalog::build_app(
            panthera_catalog::AppState::new(
                catalog_db.pool.clone(),
                panthera_catalog::cache::Cache::disabled(),
            ),
            Metrics::new("catalog"),
            Readiness::new(),
            HttpLimits::default(),
            &identity_check(),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let catalog_url = format!("http://{}", listener.local_addr().unwrap());
        let shutdown = CancellationToken::new();
        tokio::spawn(server::serve(
            listener,
            catalog,
            shutdown.clone(),
            Duration::from_secs(1),
        ));

        let orders_db = TestDatabase::create("orders").await.unwrap()?;
        let orders = Self::orders_app(&orders_db, Some(catalog_url.clone()), events_topic);
        Some(Self {
            orders,
            orders_db,
            catalog_db,
            catalog_url,
            http: reqwest::Client::new(),
            shutdown,
        })
    }

    pub fn orders_app(
        db: &TestDatabase,
        catalog_url: Option<String>,
        events_topic: Option<&str>,
    ) -> Router {
        let state = panthera_orders::AppState {
            pool: db.pool.clone(),
            catalog: CatalogClient::new(catalog_url, Duration::from_secs(3)).unwrap(),
            events_topic: events_topic.map(std::sync::Arc::from),
        };
        panthera_orders::build_app(
            state,
            Metrics::new("orders"),
            Readiness::new(),
            HttpLimits::default(),
            &identity_check(),
        )
    }

    pub async fn migrate(&self) {
        panthera_orders::app::MIGRATOR
            .run(&self.orders_db.pool)
            .await
            .unwrap();
    }

    pub async fn product(&self, sku: &str, price_cents: i64, stock: i32) -> Uuid {
        let response = self
            .http
            .post(format!("{}/v1/products", self.catalog_url))
            // Catalog writes need the admin role (the gateway would forward it, signed).
            .headers(admin_headers("POST", "/v1/products"))
            .json(&json!({"sku": sku, "name": sku, "priceCents": price_cents, "stockAvailable": stock}))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), reqwest::StatusCode::CREATED);
        let body: Value = response.json().await.unwrap();
        body["id"].as_str().unwrap().parse().unwrap()
    }

    /// (available, reserved) as the catalog reports them.
    pub async fn stock(&self, product: Uuid) -> (i64, i64) {
        let body: Value = self
            .http
            .get(format!("{}/v1/products/{product}", self.catalog_url))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        (
            body["stock"]["available"].as_i64().unwrap(),
            body["stock"]["reserved"].as_i64().unwrap(),
        )
    }

    pub async fn send(
        &self,
        method: Method,
        uri: &str,
        body: Option<Value>,
        key: Option<&str>,
    ) -> (StatusCode, HeaderMap, Value) {
        send(&self.orders, method, uri, body, key).await
    }

    pub async fn call_as(
        &self,
        caller: Option<(&str, &str)>,
        method: Method,
        uri: &str,
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        let (status, _, body) = send_as(&self.orders, caller, method, uri, body, None).await;
        (status, body)
    }

    pub async fn call(
        &self,
        method: Method,
        uri: &str,
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        let (status, _, body) = self.send(method, uri, body, None).await;
        (status, body)
    }

    pub async fn finish(self) {
        self.shutdown.cancel();
        self.orders_db.drop_database().await.unwrap();
        self.catalog_db.drop_database().await.unwrap();
    }
}

/// An administrator, as the gateway would vouch for one (not a customer of any order).
pub const ADMIN: (&str, &str) = ("00000000-0000-0000-0000-00000000a0a0", "admin");

/// As an administrator; see [`send_as`].
pub async fn send(
    app: &Router,
    method: Method,
    uri: &str,
    body: Option<Value>,
    key: Option<&str>,
) -> (StatusCode, HeaderMap, Value) {
    send_as(app, Some(ADMIN), method, uri, body, key).await
}

/// As the caller `(subject, roles)` in the gateway's identity headers, or with none.
pub async fn send_as(
    app: &Router,
    caller: Option<(&str, &str)>,
    method: Method,
    uri: &str,
    body: Option<Value>,
    key: Option<&str>,
) -> (StatusCode, HeaderMap, Value) {
    let mut builder = Request::builder().method(method).uri(uri);
    if let Some((subject, roles)) = caller {
        builder = builder
            .header("x-panthera-subject", subject)
            .header("x-panthera-roles", roles);
    }
    if let Some(key) = key {
        builder = builder.header("idempotency-key", key);
    }
    let mut request = match body {
        Some(body) => builder
            .header(header::CONTENT_TYPE, "application/json")
            .body(Body::from(body.to_string())),
        None => builder.body(Body::empty()),
    }
    .unwrap();
    // What the gateway adds to the identity it vouches for.
    sign_identity(&mut request);
    let response = app.clone().oneshot(request).await.unwrap();
    let status = response.status();
    let headers = response.headers().clone();
    let bytes = response.into_body().collect().await.unwrap().to_bytes();
    let body = if bytes.is_empty() {
        Value::Null
    } else {
        serde_json::from_slice(&bytes).unwrap()
    };
    (status, headers, body)
}

pub fn order_body(customer: Uuid, items: &[(Uuid, i32)]) -> Value {
    json!({
        "customerId": customer,
        "items": items.iter().map(|(product, quantity)| json!({"productId": product, "quantity": quantity})).collect::<Vec<_>>(),
    })
}

pub fn fields(body: &Value) -> Vec<String> {
    body["errors"]
        .as_array()
        .map(|e| {
            e.iter()
                .map(|e| e["field"].as_str().unwrap().to_owned())
                .collect()
        })
        .unwrap_or_default()
}

/// An administrator's identity headers for `method target`, signed as the gateway signs them.
pub fn admin_headers(method: &str, target: &str) -> reqwest::header::HeaderMap {
    signed_headers(
        method,
        target,
        &[
            ("x-panthera-subject", "admin-1"),
            ("x-panthera-roles", "admin"),
        ],
    )
}

/// `identity` (header name, value pairs) with the gateway's signature for `method target`.
pub fn signed_headers(
    method: &str,
    target: &str,
    identity: &[(&str, &str)],
) -> reqwest::header::HeaderMap {
    signed_identity(method, target, identity)
        .into_iter()
        .map(|(name, value)| {
            (
                reqwest::header::HeaderName::try_from(name).unwrap(),
                reqwest::header::HeaderValue::try_from(value).unwrap(),
            )
        })
        .collect()
}
