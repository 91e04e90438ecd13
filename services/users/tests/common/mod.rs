//! The users service through its full router against a real PostgreSQL: the app, requests as the
//! gateway sends them, and what the tests read back.

#![allow(dead_code)] // each test file uses its own part

pub use std::sync::Arc;

pub use axum::Router;
pub use axum::body::Body;
pub use axum::http::{HeaderMap, Method, Request, StatusCode, header};
pub use http_body_util::BodyExt;
pub use panthera_kit::health::Readiness;
pub use panthera_kit::metrics::Metrics;
pub use panthera_kit::server::HttpLimits;
pub use panthera_kit::testing::{TestDatabase, identity_check, sign_identity};
pub use panthera_users::app::MIGRATOR;
pub use panthera_users::config::JwtConfig;
pub use panthera_users::token::{Claims, TokenIssuer};
pub use panthera_users::{AppState, build_app};
pub use serde_json::{Value, json};
pub use tower::ServiceExt;

pub const SECRET: &str = "test-secret-of-at-least-thirty-two-bytes!";
/// Not a stored user: administrators act on others' records.
pub const ADMIN_ID: &str = "00000000-0000-0000-0000-00000000a0a0";

pub struct TestApp {
    pub app: Router,
    pub db: TestDatabase,
}

impl TestApp {
    pub async fn new() -> Option<Self> {
        Self::with(true, Some(SECRET)).await
    }

    pub async fn with(events: bool, secret: Option<&str>) -> Option<Self> {
        let db = TestDatabase::create("users").await.unwrap()?;
        MIGRATOR.run(&db.pool).await.unwrap();
        let jwt = JwtConfig {
            hs256_secret: secret.map(panthera_kit::Secret::new),
            issuer: Some("https://auth.shop.example.com".into()),
            audience: Some("shop".into()),
            ttl_seconds: 600,
        };
        let state = AppState {
            pool: db.pool.clone(),
            tokens: TokenIssuer::from_config(&jwt).map(Arc::new),
            events_topic: events.then(|| Arc::from("users")),
        };
        let readiness = Readiness::new().with_postgres(db.pool.clone());
        let app = build_app(
            state,
            Metrics::new("users"),
            readiness,
            HttpLimits::default(),
            &identity_check(),
        );
        Some(Self { app, db })
    }

    pub async fn send(&self, request: Request<Body>) -> (StatusCode, HeaderMap, Value) {
        let response = self.app.clone().oneshot(request).await.unwrap();
        let status = response.status();
        let headers = response.headers().clone();
        let bytes = response.into_body().collect().await.unwrap().to_bytes();
        let body = if bytes.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(&bytes)
                .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into_owned()))
        };
        (status, headers, body)
    }

    /// As an administrator (what the gateway would pass for an admin's token).
    pub async fn call(
        &self,
        method: Method,
        uri: &str,
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        self.call_as(Some((ADMIN_ID, "admin")), method, uri, body)
            .await
    }

    /// As the caller `(subject, roles)` the gateway vouches for, or with no identity at all.
    pub async fn call_as(
        &self,
        caller: Option<(&str, &str)>,
        method: Method,
        uri: &str,
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        let mut builder = Request::builder().method(method).uri(uri);
        if let Some((subject, roles)) = caller {
            builder = builder
                .header("x-panthera-subject", subject)
                .header("x-panthera-roles", roles);
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
        let (status, _, body) = self.send(request).await;
        (status, body)
    }

    pub async fn raw(
        &self,
        method: Method,
        uri: &str,
        content_type: &str,
        body: &str,
    ) -> (StatusCode, HeaderMap, Value) {
        let mut request = Request::builder()
            .method(method)
            .uri(uri)
            .header(header::CONTENT_TYPE, content_type)
            .header("x-panthera-subject", ADMIN_ID)
            .header("x-panthera-roles", "admin")
            .body(Body::from(body.to_owned()))
            .unwrap();
        sign_identity(&mut request);
        self.send(request).await
    }

    pub async fn create(&self, email: &str) -> Value {
        let (status, body) = self
            .call(Method::POST, "/v1/users", Some(new_user(email)))
            .await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        body
    }

    /// Inserts users directly (hashing is slow in debug builds); `n` users, statuses cycling.
    pub async fn seed(&self, n: usize) {
        for i in 0..n {
            let status = ["active", "inactive", "pending"][i % 3];
            sqlx::query(
                "INSERT INTO users (id, first_name, last_name, email, status, password_hash, created_at, updated_at) \
                 VALUES ($1, 'Seed', $2, $3, $4, 'x', now() + make_interval(secs => $5), now())",
            )
            .bind(uuid::Uuid::new_v4())
            .bind(format!("Number{i}"))
            .bind(format!("seed{i}@example.com"))
            .bind(status)
            .bind(i as f64)
            .execute(&self.db.pool)
            .await
            .unwrap();
        }
    }

    pub async fn finish(self) {
        self.db.drop_database().await.unwrap();
    }
}

/// Verifies a token as the gateway does: HS256 with the shared secret, issuer and audience.
pub fn decode_claims(token: &str) -> Claims {
    let mut validation = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::HS256);
    validation.set_issuer(&["https://auth.shop.example.com"]);
    validation.set_audience(&["shop"]);
    jsonwebtoken::decode::<Claims>(
        token,
        &jsonwebtoken::DecodingKey::from_secret(SECRET.as_bytes()),
        &validation,
    )
    .unwrap()
    .claims
}

pub fn new_user(email: &str) -> Value {
    json!({"firstName": "Ada", "lastName": "Lovelace", "email": email, "password": "correct horse battery"})
}

pub fn assert_problem(status: StatusCode, body: &Value, expected: StatusCode) {
    assert_eq!(status, expected, "{body}");
    assert_eq!(body["status"], expected.as_u16(), "{body}");
    assert!(
        body["title"].is_string() && body["type"].is_string(),
        "{body}"
    );
}

pub fn error_fields(body: &Value) -> Vec<String> {
    body["errors"]
        .as_array()
        .map(|errors| {
            errors
                .iter()
                .map(|e| e["field"].as_str().unwrap_or_default().to_owned())
                .collect()
        })
        .unwrap_or_default()
}
