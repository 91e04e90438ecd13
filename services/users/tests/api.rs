//! Every endpoint of the users service, through the full router, against a real PostgreSQL.

// Test helpers outside #[test] functions unwrap too: a failure there is a test failure.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::http::{HeaderMap, Method, Request, StatusCode, header};
use http_body_util::BodyExt;
use panthera_kit::health::Readiness;
use panthera_kit::metrics::Metrics;
use panthera_kit::server::HttpLimits;
use panthera_kit::testing::{TestDatabase, identity_check, sign_identity};
use panthera_users::app::MIGRATOR;
use panthera_users::config::JwtConfig;
use panthera_users::token::{Claims, TokenIssuer};
use panthera_users::{AppState, build_app};
use serde_json::{Value, json};
use tower::ServiceExt;

const SECRET: &str = "test-secret-of-at-least-thirty-two-bytes!";
/// Not a stored user: administrators act on others' records.
const ADMIN_ID: &str = "00000000-0000-0000-0000-00000000a0a0";

struct TestApp {
    app: Router,
    db: TestDatabase,
}

impl TestApp {
    async fn new() -> Option<Self> {
        Self::with(true, Some(SECRET)).await
    }

    async fn with(events: bool, secret: Option<&str>) -> Option<Self> {
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

    async fn send(&self, request: Request<Body>) -> (StatusCode, HeaderMap, Value) {
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
    async fn call(&self, method: Method, uri: &str, body: Option<Value>) -> (StatusCode, Value) {
        self.call_as(Some((ADMIN_ID, "admin")), method, uri, body)
            .await
    }

    /// As the caller `(subject, roles)` the gateway vouches for, or with no identity at all.
    async fn call_as(
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

    async fn raw(
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

    async fn create(&self, email: &str) -> Value {
        let (status, body) = self
            .call(Method::POST, "/v1/users", Some(new_user(email)))
            .await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        body
    }

    /// Inserts users directly (hashing is slow in debug builds); `n` users, statuses cycling.
    async fn seed(&self, n: usize) {
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

    async fn finish(self) {
        self.db.drop_database().await.unwrap();
    }
}

/// Verifies a token as the gateway does: HS256 with the shared secret, issuer and audience.
fn decode_claims(token: &str) -> Claims {
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

fn new_user(email: &str) -> Value {
    json!({"firstName": "Ada", "lastName": "Lovelace", "email": email, "password": "correct horse battery"})
}

fn assert_problem(status: StatusCode, body: &Value, expected: StatusCode) {
    assert_eq!(status, expected, "{body}");
    assert_eq!(body["status"], expected.as_u16(), "{body}");
    assert!(
        body["title"].is_string() && body["type"].is_string(),
        "{body}"
    );
}

fn error_fields(body: &Value) -> Vec<String> {
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

/// The service believes only what the gateway signed: the same administrator's headers are 401
/// without the signature, or with one made for another request.
#[tokio::test]
async fn an_identity_the_gateway_did_not_sign_is_refused() {
    let Some(t) = TestApp::new().await else {
        return;
    };
    let admin = |uri: &str| {
        Request::builder()
            .uri(uri)
            .header("x-panthera-subject", ADMIN_ID)
            .header("x-panthera-roles", "admin")
            .body(Body::empty())
            .unwrap()
    };
    let (status, _, body) = t.send(admin("/v1/users")).await;
    assert_problem(status, &body, StatusCode::UNAUTHORIZED);
    let mut signed_elsewhere = admin("/v1/users?limit=1");
    sign_identity(&mut signed_elsewhere);
    let mut moved = admin("/v1/users");
    let signature = signed_elsewhere.headers()["x-panthera-signature"].clone();
    moved
        .headers_mut()
        .insert("x-panthera-signature", signature);
    let (status, _, body) = t.send(moved).await;
    assert_problem(status, &body, StatusCode::UNAUTHORIZED);
    let (status, _, body) = t.send(signed_elsewhere).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    t.finish().await;
}

#[tokio::test]
async fn create_get_update_delete() {
    let Some(t) = TestApp::new().await else {
        return;
    };
    let request = Request::post("/v1/users")
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::from(new_user(" Ada@Example.com ").to_string()))
        .unwrap();
    let (status, headers, created) = t.send(request).await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    let id = created["id"].as_str().unwrap().to_owned();
    assert_eq!(headers[header::LOCATION], format!("/v1/users/{id}"));
    assert!(uuid::Uuid::parse_str(&id).is_ok());
    assert_eq!(created["email"], "ada@example.com");
    assert_eq!(created["firstName"], "Ada");
    assert_eq!(created["lastName"], "Lovelace");
    assert_eq!(created["status"], "active");
    for field in ["createdAt", "updatedAt"] {
        let text = created[field].as_str().unwrap();
        assert!(
            chrono::DateTime::parse_from_rfc3339(text).is_ok(),
            "{field}: {text}"
        );
    }
    let keys: Vec<_> = created.as_object().unwrap().keys().cloned().collect();
    assert!(
        !keys.iter().any(|k| k.to_lowercase().contains("password")),
        "{keys:?}"
    );

    let stored: String = sqlx::query_scalar("SELECT password_hash FROM users WHERE id = $1::uuid")
        .bind(&id)
        .fetch_one(&t.db.pool)
        .await
        .unwrap();
    assert!(stored.starts_with("$argon2id$"), "{stored}");

    let (status, fetched) = t.call(Method::GET, &format!("/v1/users/{id}"), None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(fetched, created);

    let (status, updated) = t
        .call(
            Method::PATCH,
            &format!("/v1/users/{id}"),
            Some(json!({"lastName": "Byron", "status": "inactive"})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{updated}");
    assert_eq!(updated["lastName"], "Byron");
    assert_eq!(updated["firstName"], "Ada");
    assert_eq!(updated["status"], "inactive");
    assert_eq!(updated["createdAt"], created["createdAt"]);
    assert!(updated["updatedAt"].as_str() > created["updatedAt"].as_str());

    let (status, body) = t
        .call(Method::DELETE, &format!("/v1/users/{id}"), None)
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    assert_eq!(body, Value::Null);
    let (status, body) = t.call(Method::GET, &format!("/v1/users/{id}"), None).await;
    assert_problem(status, &body, StatusCode::NOT_FOUND);

    // Each change was recorded for publishing, in order, without the password hash.
    let events: Vec<(String, Value)> =
        sqlx::query_as("SELECT event_type, payload FROM outbox ORDER BY position")
            .fetch_all(&t.db.pool)
            .await
            .unwrap();
    let types: Vec<_> = events.iter().map(|(t, _)| t.as_str()).collect();
    assert_eq!(types, ["user.created", "user.updated", "user.deleted"]);
    assert_eq!(events[0].1["id"], id.as_str());
    assert!(!events.iter().any(|(_, p)| p.to_string().contains("argon2")));
    t.finish().await;
}

#[tokio::test]
async fn list_pages_and_filters() {
    let Some(t) = TestApp::new().await else {
        return;
    };
    t.seed(45).await;

    let (status, body) = t.call(Method::GET, "/v1/users", None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["meta"], json!({"limit": 20, "offset": 0, "total": 45}));
    assert_eq!(body["data"].as_array().unwrap().len(), 20);
    assert_eq!(body["data"][0]["email"], "seed0@example.com");

    let (_, body) = t
        .call(Method::GET, "/v1/users?limit=10&offset=40", None)
        .await;
    assert_eq!(
        body["meta"],
        json!({"limit": 10, "offset": 40, "total": 45})
    );
    let emails: Vec<_> = body["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|u| u["email"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(
        emails,
        (40..45)
            .map(|i| format!("seed{i}@example.com"))
            .collect::<Vec<_>>()
    );

    let (_, body) = t.call(Method::GET, "/v1/users?limit=100", None).await;
    assert_eq!(body["data"].as_array().unwrap().len(), 45);

    // Past the last page the total is still reported.
    let (_, body) = t.call(Method::GET, "/v1/users?offset=100", None).await;
    assert_eq!(body["data"].as_array().unwrap().len(), 0);
    assert_eq!(body["meta"]["total"], 45);
    let (_, body) = t
        .call(Method::GET, "/v1/users?status=pending&offset=100", None)
        .await;
    assert_eq!(body["meta"]["total"], 15);

    let (_, body) = t.call(Method::GET, "/v1/users?status=pending", None).await;
    assert_eq!(body["meta"]["total"], 15);
    assert!(
        body["data"]
            .as_array()
            .unwrap()
            .iter()
            .all(|u| u["status"] == "pending")
    );

    let (_, body) = t
        .call(Method::GET, "/v1/users?email=SEED7%40example.com", None)
        .await;
    assert_eq!(body["meta"]["total"], 1);
    assert_eq!(body["data"][0]["lastName"], "Number7");

    let (_, body) = t
        .call(
            Method::GET,
            "/v1/users?email=seed7%40example.com&status=active",
            None,
        )
        .await;
    assert_eq!(body["meta"]["total"], 0);
    assert_eq!(body["data"], json!([]));

    for (query, field) in [
        ("limit=101", "limit"),
        ("limit=0", "limit"),
        ("offset=-1", "offset"),
        ("limit=abc", "limit"),
        ("status=deleted", "status"),
        ("sort=email", "sort"),
    ] {
        let (status, body) = t
            .call(Method::GET, &format!("/v1/users?{query}"), None)
            .await;
        assert_problem(status, &body, StatusCode::UNPROCESSABLE_ENTITY);
        assert_eq!(error_fields(&body), [field], "{query}: {body}");
    }
    t.finish().await;
}

#[tokio::test]
async fn validation_errors_name_the_fields() {
    let Some(t) = TestApp::new().await else {
        return;
    };
    let cases = [
        (
            json!({"lastName": "L", "email": "a@example.com", "password": "long enough"}),
            vec!["firstName"],
        ),
        (
            json!({"firstName": "A", "lastName": "L", "email": "not-an-email", "password": "long enough"}),
            vec!["email"],
        ),
        (
            json!({"firstName": "A", "lastName": "L", "email": "a@example.com", "password": "short"}),
            vec!["password"],
        ),
        (
            json!({"firstName": " ", "lastName": "L", "email": "bad", "password": "short"}),
            vec!["firstName", "email", "password"],
        ),
        (
            json!({"firstName": "A", "lastName": "L", "email": "a@example.com", "password": "long enough", "status": "banned"}),
            vec!["status"],
        ),
        (
            json!({"firstName": 5, "lastName": "L", "email": "a@example.com", "password": "long enough"}),
            vec!["firstName"],
        ),
        (
            json!({"firstName": "A", "lastName": "L", "email": "a@example.com", "password": "long enough", "role": "admin"}),
            vec!["role"],
        ),
        (
            json!({"firstName": "A".repeat(101), "lastName": "L", "email": "a@example.com", "password": "long enough"}),
            vec!["firstName"],
        ),
    ];
    for (body, fields) in cases {
        let (status, problem) = t.call(Method::POST, "/v1/users", Some(body.clone())).await;
        assert_problem(status, &problem, StatusCode::UNPROCESSABLE_ENTITY);
        assert_eq!(error_fields(&problem), fields, "{body}: {problem}");
    }

    let (status, _, problem) = t
        .raw(
            Method::POST,
            "/v1/users",
            "application/json",
            "{\"firstName\": ",
        )
        .await;
    assert_problem(status, &problem, StatusCode::BAD_REQUEST);
    let (status, headers, problem) = t
        .raw(
            Method::POST,
            "/v1/users",
            "application/json",
            "{\"firstName\": \"A\", ",
        )
        .await;
    assert_problem(status, &problem, StatusCode::BAD_REQUEST);
    assert_eq!(headers[header::CONTENT_TYPE], "application/problem+json");
    let (status, _, problem) = t
        .raw(Method::POST, "/v1/users", "text/plain", "hello")
        .await;
    assert_problem(status, &problem, StatusCode::UNSUPPORTED_MEDIA_TYPE);

    let created = t.create("valid@example.com").await;
    let id = created["id"].as_str().unwrap();
    for (patch, field) in [
        (json!({}), "body"),
        (json!({"email": "nope"}), "email"),
        (json!({"password": "x"}), "password"),
        (json!({"status": "gone"}), "status"),
        (json!({"id": "00000000-0000-0000-0000-000000000000"}), "id"),
    ] {
        let (status, problem) = t
            .call(
                Method::PATCH,
                &format!("/v1/users/{id}"),
                Some(patch.clone()),
            )
            .await;
        assert_problem(status, &problem, StatusCode::UNPROCESSABLE_ENTITY);
        assert_eq!(error_fields(&problem), [field], "{patch}: {problem}");
    }
    let (status, _, problem) = t
        .raw(
            Method::PATCH,
            &format!("/v1/users/{id}"),
            "application/json",
            "nope",
        )
        .await;
    assert_problem(status, &problem, StatusCode::BAD_REQUEST);
    t.finish().await;
}

#[tokio::test]
async fn duplicate_email_conflicts() {
    let Some(t) = TestApp::new().await else {
        return;
    };
    t.create("grace@example.com").await;
    let (status, problem) = t
        .call(
            Method::POST,
            "/v1/users",
            Some(new_user("GRACE@example.com")),
        )
        .await;
    assert_problem(status, &problem, StatusCode::CONFLICT);
    assert!(problem["detail"].as_str().unwrap().contains("email"));

    let other = t.create("hopper@example.com").await;
    let uri = format!("/v1/users/{}", other["id"].as_str().unwrap());
    let (status, problem) = t
        .call(
            Method::PATCH,
            &uri,
            Some(json!({"email": "grace@example.com"})),
        )
        .await;
    assert_problem(status, &problem, StatusCode::CONFLICT);
    let (status, unchanged) = t.call(Method::GET, &uri, None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(unchanged["email"], "hopper@example.com");
    let count: i64 = sqlx::query_scalar("SELECT count(*) FROM users")
        .fetch_one(&t.db.pool)
        .await
        .unwrap();
    assert_eq!(count, 2);
    t.finish().await;
}

#[tokio::test]
async fn unknown_users_and_routes_are_not_found() {
    let Some(t) = TestApp::new().await else {
        return;
    };
    let missing = format!("/v1/users/{}", uuid::Uuid::new_v4());
    for (method, body) in [
        (Method::GET, None),
        (Method::PATCH, Some(json!({"firstName": "X"}))),
        (Method::DELETE, None),
    ] {
        let (status, problem) = t.call(method.clone(), &missing, body).await;
        assert_problem(status, &problem, StatusCode::NOT_FOUND);
        assert_eq!(problem["detail"], "user not found", "{method}");
    }
    let (status, problem) = t.call(Method::GET, "/v1/users/not-a-uuid", None).await;
    assert_problem(status, &problem, StatusCode::NOT_FOUND);
    let (status, problem) = t.call(Method::GET, "/v1/nothing-here", None).await;
    assert_problem(status, &problem, StatusCode::NOT_FOUND);
    t.finish().await;
}

#[tokio::test]
async fn sql_injection_attempts_are_plain_data() {
    let Some(t) = TestApp::new().await else {
        return;
    };
    t.seed(3).await;
    let hostile = "Robert'); DROP TABLE users; --";
    let (status, created) = t
        .call(
            Method::POST,
            "/v1/users",
            Some(json!({"firstName": hostile, "lastName": "' OR '1'='1", "email": "bobby@example.com", "password": "x' OR 1=1 --"})),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    assert_eq!(created["firstName"], hostile);

    for query in [
        "email=%27%20OR%20%271%27%3D%271",
        "email=x%40example.com%27%3B%20DELETE%20FROM%20users%3B%20--",
        "status=active%27%20OR%201%3D1%20--",
        "limit=1%3B%20DROP%20TABLE%20users",
    ] {
        let (status, body) = t
            .call(Method::GET, &format!("/v1/users?{query}"), None)
            .await;
        assert!(
            status == StatusCode::OK && body["meta"]["total"] == 0
                || status == StatusCode::UNPROCESSABLE_ENTITY,
            "{query}: {status} {body}"
        );
    }
    let (status, problem) = t.call(Method::GET, "/v1/users/1%20OR%201%3D1", None).await;
    assert_problem(status, &problem, StatusCode::NOT_FOUND);

    let (_, problem) = t
        .call(
            Method::POST,
            "/v1/auth/token",
            Some(json!({"email": "' OR 1=1 --", "password": "' OR 1=1 --"})),
        )
        .await;
    assert_eq!(problem["status"], 401);

    let count: i64 = sqlx::query_scalar("SELECT count(*) FROM users")
        .fetch_one(&t.db.pool)
        .await
        .unwrap();
    assert_eq!(count, 4, "the table is intact");
    t.finish().await;
}

#[tokio::test]
async fn tokens_for_active_users_only() {
    let Some(t) = TestApp::new().await else {
        return;
    };
    let user = t.create("turing@example.com").await;
    let (status, body) = t
        .call(
            Method::POST,
            "/v1/auth/token",
            Some(json!({"email": "Turing@Example.com", "password": "correct horse battery"})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["tokenType"], "Bearer");
    assert_eq!(body["expiresIn"], 600);
    let token = body["accessToken"].as_str().unwrap();

    // What the gateway does: HS256 with the shared secret, issuer and audience checked.
    let mut validation = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::HS256);
    validation.set_issuer(&["https://auth.shop.example.com"]);
    validation.set_audience(&["shop"]);
    let claims = decode_claims(token);
    assert_eq!(claims.roles, Vec::<String>::new());
    assert_eq!(claims.sub, user["id"].as_str().unwrap());
    assert_eq!(claims.exp - claims.iat, 600);
    assert!(
        jsonwebtoken::decode::<Claims>(
            token,
            &jsonwebtoken::DecodingKey::from_secret(b"another secret"),
            &validation
        )
        .is_err()
    );

    for credentials in [
        json!({"email": "turing@example.com", "password": "wrong password"}),
        json!({"email": "nobody@example.com", "password": "correct horse battery"}),
    ] {
        let (status, problem) = t
            .call(Method::POST, "/v1/auth/token", Some(credentials))
            .await;
        assert_problem(status, &problem, StatusCode::UNAUTHORIZED);
        assert_eq!(
            problem["detail"],
            "authentication failed: invalid credentials"
        );
    }

    let uri = format!("/v1/users/{}", user["id"].as_str().unwrap());
    let (status, _) = t
        .call(Method::PATCH, &uri, Some(json!({"status": "inactive"})))
        .await;
    assert_eq!(status, StatusCode::OK);
    let (status, problem) = t
        .call(
            Method::POST,
            "/v1/auth/token",
            Some(json!({"email": "turing@example.com", "password": "correct horse battery"})),
        )
        .await;
    assert_problem(status, &problem, StatusCode::UNAUTHORIZED);

    let (status, problem) = t
        .call(
            Method::POST,
            "/v1/auth/token",
            Some(json!({"email": "turing@example.com"})),
        )
        .await;
    assert_problem(status, &problem, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(error_fields(&problem), ["password"]);
    t.finish().await;
}

#[tokio::test]
async fn token_endpoint_unavailable_without_secret_and_no_events_without_kafka() {
    let Some(t) = TestApp::with(false, None).await else {
        return;
    };
    t.create("lamarr@example.com").await;
    let (status, problem) = t
        .call(
            Method::POST,
            "/v1/auth/token",
            Some(json!({"email": "lamarr@example.com", "password": "correct horse battery"})),
        )
        .await;
    assert_problem(status, &problem, StatusCode::SERVICE_UNAVAILABLE);
    assert!(
        !problem.to_string().contains("JWT_HS256_SECRET"),
        "{problem}"
    );
    let events: i64 = sqlx::query_scalar("SELECT count(*) FROM outbox")
        .fetch_one(&t.db.pool)
        .await
        .unwrap();
    assert_eq!(events, 0);
    t.finish().await;
}

#[tokio::test]
async fn operational_endpoints() {
    let Some(t) = TestApp::new().await else {
        return;
    };
    let (status, body) = t.call(Method::GET, "/healthz", None).await;
    assert_eq!(
        (status, body["status"].as_str()),
        (StatusCode::OK, Some("ok"))
    );
    let (status, body) = t.call(Method::GET, "/readyz", None).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["checks"]["postgres"], "ok");
    t.call(Method::GET, "/v1/users", None).await;
    let (status, body) = t.call(Method::GET, "/metrics", None).await;
    assert_eq!(status, StatusCode::OK);
    let text = body.as_str().unwrap();
    assert!(text.contains("route=\"/v1/users\""), "{text}");
    let (status, body) = t.call(Method::GET, "/openapi.json", None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        body,
        serde_json::from_str::<Value>(&panthera_users::openapi::document_json().unwrap()).unwrap()
    );

    // Closing the pool is what an unreachable database looks like to the service.
    t.db.pool.close().await;
    let (status, body) = t.call(Method::GET, "/readyz", None).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
    assert_eq!(body["checks"]["postgres"], "unavailable");
    t.finish().await;
}

#[tokio::test]
async fn totals_follow_every_write_and_concurrent_status_changes() {
    let Some(t) = TestApp::new().await else {
        return;
    };
    t.seed(30).await;
    let ids: Vec<String> = sqlx::query_scalar("SELECT id::text FROM users ORDER BY created_at")
        .fetch_all(&t.db.pool)
        .await
        .unwrap();

    // Opposite status changes at the same time must neither deadlock nor miscount.
    let changes = ids.iter().enumerate().map(|(i, id)| {
        let status = ["pending", "active", "inactive"][i % 3];
        let uri = format!("/v1/users/{id}");
        let t = &t;
        async move {
            t.call(Method::PATCH, &uri, Some(json!({"status": status})))
                .await
                .0
        }
    });
    let statuses = futures::future::join_all(changes).await;
    assert!(
        statuses.iter().all(|s| *s == StatusCode::OK),
        "{statuses:?}"
    );
    let (status, _) = t
        .call(Method::DELETE, &format!("/v1/users/{}", ids[0]), None)
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);

    let actual: Vec<(String, i64)> =
        sqlx::query_as("SELECT status, count(*) FROM users GROUP BY status ORDER BY status")
            .fetch_all(&t.db.pool)
            .await
            .unwrap();
    for (status, count) in &actual {
        let (_, body) = t
            .call(
                Method::GET,
                &format!("/v1/users?status={status}&limit=1"),
                None,
            )
            .await;
        assert_eq!(body["meta"]["total"], *count, "{status}");
    }
    let (_, body) = t.call(Method::GET, "/v1/users", None).await;
    assert_eq!(body["meta"]["total"], 29);
    t.finish().await;
}

#[tokio::test]
async fn users_see_and_change_only_themselves_and_admins_everyone() {
    let Some(t) = TestApp::new().await else {
        return;
    };
    let ada = t.create("ada@example.com").await;
    let bob = t.create("bob@example.com").await;
    let (ada_id, bob_id) = (ada["id"].as_str().unwrap(), bob["id"].as_str().unwrap());
    assert_eq!(ada["roles"], json!([]));
    assert_eq!(ada["status"], "active");
    let as_ada = Some((ada_id, ""));
    let bob_uri = format!("/v1/users/{bob_id}");
    let ada_uri = format!("/v1/users/{ada_id}");

    // Without an identity every protected endpoint is 401.
    for (method, uri) in [
        (Method::GET, "/v1/users"),
        (Method::GET, ada_uri.as_str()),
        (Method::DELETE, ada_uri.as_str()),
    ] {
        let (status, body) = t.call_as(None, method, uri, None).await;
        assert_problem(status, &body, StatusCode::UNAUTHORIZED);
    }
    // An ordinary user: listing is admin-only (403); other users look missing (404).
    let (status, body) = t.call_as(as_ada, Method::GET, "/v1/users", None).await;
    assert_problem(status, &body, StatusCode::FORBIDDEN);
    let (status, body) = t.call_as(as_ada, Method::GET, &bob_uri, None).await;
    assert_problem(status, &body, StatusCode::NOT_FOUND);
    let rename = json!({"firstName": "Mallory"});
    let (status, body) = t
        .call_as(as_ada, Method::PATCH, &bob_uri, Some(rename.clone()))
        .await;
    assert_problem(status, &body, StatusCode::NOT_FOUND);
    let (status, body) = t.call_as(as_ada, Method::DELETE, &bob_uri, None).await;
    assert_problem(status, &body, StatusCode::NOT_FOUND);
    // Nor may they raise themselves.
    for patch in [json!({"roles": ["admin"]}), json!({"status": "inactive"})] {
        let (status, body) = t
            .call_as(as_ada, Method::PATCH, &ada_uri, Some(patch))
            .await;
        assert_problem(status, &body, StatusCode::FORBIDDEN);
    }
    let (bob_now,): (String,) = sqlx::query_as("SELECT first_name FROM users WHERE id = $1::uuid")
        .bind(bob_id)
        .fetch_one(&t.db.pool)
        .await
        .unwrap();
    assert_eq!(bob_now, "Ada", "another user's record changed");
    let roles: Vec<String> = sqlx::query_scalar("SELECT roles FROM users WHERE id = $1::uuid")
        .bind(ada_id)
        .fetch_one(&t.db.pool)
        .await
        .unwrap();
    assert!(roles.is_empty());

    // Their own record they read and change.
    let (status, body) = t.call_as(as_ada, Method::GET, &ada_uri, None).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (status, body) = t
        .call_as(as_ada, Method::PATCH, &ada_uri, Some(rename))
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["firstName"], "Mallory");

    // An administrator grants a role; the next token carries it.
    let (status, body) = t
        .call(Method::PATCH, &bob_uri, Some(json!({"roles": ["admin"]})))
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["roles"], json!(["admin"]));
    let (status, body) = t
        .call(
            Method::POST,
            "/v1/auth/token",
            Some(json!({"email": "bob@example.com", "password": "correct horse battery"})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let claims = decode_claims(body["accessToken"].as_str().unwrap());
    assert_eq!(claims.roles, ["admin"]);

    // And a user deletes themselves.
    let (status, _) = t.call_as(as_ada, Method::DELETE, &ada_uri, None).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    t.finish().await;
}

#[tokio::test]
async fn the_first_administrator_is_created_once() {
    let Some(t) = TestApp::new().await else {
        return;
    };
    let pool = &t.db.pool;
    let ensure = |password: &'static str| {
        panthera_users::admin::ensure_first_admin(
            pool,
            Some(" Root@Example.com "),
            Some(password),
            Some("users"),
        )
    };
    assert!(ensure("first password!").await.unwrap());
    // A second start (or replica) changes nothing, not even with another password.
    assert!(!ensure("second password").await.unwrap());
    let rows: Vec<(Vec<String>, String)> =
        sqlx::query_as("SELECT roles, status FROM users WHERE email = 'root@example.com'")
            .fetch_all(pool)
            .await
            .unwrap();
    assert_eq!(rows, [(vec!["admin".to_owned()], "active".to_owned())]);
    let (status, _) = t
        .call_as(
            None,
            Method::POST,
            "/v1/auth/token",
            Some(json!({"email": "root@example.com", "password": "first password!"})),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    // Half a Secret is a configuration error, not a silent no-op.
    let half = panthera_users::admin::ensure_first_admin(pool, Some("x@example.com"), None, None)
        .await
        .unwrap_err();
    assert!(half.to_string().contains("ADMIN_PASSWORD"), "{half}");
    t.finish().await;
}
