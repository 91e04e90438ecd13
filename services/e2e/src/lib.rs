//! The shop's end-to-end journey, written once and run wherever a shop answers: through the real
//! binaries on loopback (`tests/`) and through the gateway's Service on a real node (the root
//! crate's `tests/real_pods.rs`).
//!
//! [`Gateway`] is an HTTP client that records every exchange (method, path, status, time), so a
//! test can print what it did; [`order_journey`] is the shop's happy path plus the refusals that
//! must go with it: sign-up, tokens, the administrator stocks a product, a customer orders it,
//! another user is refused, the order is paid and shipped, and the catalog settles the
//! reservation from the orders service's Kafka event.

// Test support: a failed step is a failed test, and the panic says which step.
#![allow(clippy::unwrap_used, clippy::expect_used)]

pub mod jaeger;
pub mod objects;

use std::sync::Mutex;
use std::time::{Duration, Instant};

pub use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

/// Password of the users the journey signs up.
pub const PASSWORD: &str = "correct horse battery";

/// One request through the gateway as the journey saw it.
#[derive(Debug, Clone)]
pub struct Exchange {
    pub method: Method,
    pub path: String,
    pub status: StatusCode,
    pub elapsed: Duration,
}

impl std::fmt::Display for Exchange {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} {} -> {} ({} ms)",
            self.method,
            self.path,
            self.status.as_u16(),
            self.elapsed.as_millis()
        )
    }
}

/// The shop's public entry point: the gateway's base URL.
pub struct Gateway {
    base: String,
    http: reqwest::Client,
    exchanges: Mutex<Vec<Exchange>>,
}

impl Gateway {
    pub fn new(base: impl Into<String>) -> Self {
        Self {
            base: base.into(),
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(30))
                .build()
                .unwrap(),
            exchanges: Mutex::new(Vec::new()),
        }
    }

    pub fn base(&self) -> &str {
        &self.base
    }

    /// Waits until the gateway answers HTTP at all (any status): a Service just created or
    /// re-created may refuse connections until kube-proxy has written its rules.
    pub async fn wait_answering(&self, patience: Duration) {
        let started = Instant::now();
        loop {
            match self.http.get(format!("{}/", self.base)).send().await {
                Ok(_) => return,
                Err(error) => assert!(
                    started.elapsed() < patience,
                    "{} does not answer after {patience:?}: {error}",
                    self.base
                ),
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// One request; `token` as a bearer token, `headers` verbatim. The body is JSON, or `Null`.
    pub async fn call(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        headers: &[(&str, &str)],
        body: Option<Value>,
    ) -> (StatusCode, reqwest::header::HeaderMap, Value) {
        let mut request = self
            .http
            .request(method.clone(), format!("{}{path}", self.base));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        if let Some(body) = body {
            request = request.json(&body);
        }
        let started = Instant::now();
        let response = request
            .send()
            .await
            .unwrap_or_else(|e| panic!("{method} {path}: {e}"));
        let status = response.status();
        let headers = response.headers().clone();
        let bytes = response.bytes().await.unwrap();
        self.exchanges.lock().unwrap().push(Exchange {
            method,
            path: path.to_owned(),
            status,
            elapsed: started.elapsed(),
        });
        let body = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        (status, headers, body)
    }

    /// One request that may fail in transport, unrecorded (load generation): its status, or
    /// why no whole answer came (the transport error and its causes).
    pub async fn try_send(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        body: Option<&Value>,
    ) -> Result<StatusCode, String> {
        let mut request = self.http.request(method, format!("{}{path}", self.base));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        if let Some(body) = body {
            request = request.json(body);
        }
        let response = request.send().await.map_err(|e| causes(&e))?;
        let status = response.status();
        // A body cut off midway is a failure too.
        response.bytes().await.map_err(|e| causes(&e))?;
        Ok(status)
    }

    /// `call` without extra headers, for the status and body.
    pub async fn send(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        let (status, _, body) = self.call(method, path, token, &[], body).await;
        (status, body)
    }

    /// Signs up an `active` user without roles and returns it.
    pub async fn sign_up(&self, first_name: &str, email: &str) -> Value {
        let (status, user) = self
            .send(
                Method::POST,
                "/v1/users",
                None,
                Some(json!({"firstName": first_name, "lastName": "Test", "email": email, "password": PASSWORD})),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "sign-up of {email}: {user}");
        user
    }

    /// A token for `email`.
    pub async fn token(&self, email: &str, password: &str) -> String {
        let (status, body) = self
            .send(
                Method::POST,
                "/v1/auth/token",
                None,
                Some(json!({"email": email, "password": password})),
            )
            .await;
        assert_eq!(status, StatusCode::OK, "token for {email}: {body}");
        body["accessToken"].as_str().unwrap().to_owned()
    }

    /// The exchanges so far, in order.
    pub fn exchanges(&self) -> Vec<Exchange> {
        self.exchanges.lock().unwrap().clone()
    }
}

/// The first administrator's credentials (`spec.services[].adminSecret`).
pub struct Admin<'a> {
    pub email: &'a str,
    pub password: &'a str,
}

/// What the journey made, for the steps a test adds after it.
#[derive(Debug, Clone)]
pub struct Journey {
    pub customer_email: String,
    pub customer_id: String,
    pub product_id: String,
    pub order_id: String,
}

/// The shop's happy path and its refusals, through `gateway`. `tag` keeps the users and the SKU
/// of one run apart from another's on the same shop.
pub async fn order_journey(gateway: &Gateway, admin: &Admin<'_>, tag: &str) -> Journey {
    let admin_token = gateway.token(admin.email, admin.password).await;
    let customer_email = format!("ada-{tag}@example.com");
    let customer = gateway.sign_up("Ada", &customer_email).await;
    let customer_id = customer["id"].as_str().unwrap().to_owned();
    let customer_token = gateway.token(&customer_email, PASSWORD).await;
    let other_email = format!("bob-{tag}@example.com");
    gateway.sign_up("Bob", &other_email).await;
    let other_token = gateway.token(&other_email, PASSWORD).await;

    // The administrator stocks the catalog; anyone reads it.
    let (status, product) = gateway
        .send(
            Method::POST,
            "/v1/products",
            Some(&admin_token),
            Some(json!({"sku": format!("LAMP-{tag}"), "name": "Lamp", "priceCents": 2500, "stockAvailable": 10})),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{product}");
    let product_id = product["id"].as_str().unwrap().to_owned();
    let product_path = format!("/v1/products/{product_id}");

    // The customer orders two: the catalog holds them at once.
    let (status, order) = gateway
        .send(
            Method::POST,
            "/v1/orders",
            Some(&customer_token),
            Some(json!({"items": [{"productId": product_id, "quantity": 2}]})),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{order}");
    assert_eq!(order["customerId"], json!(customer_id));
    let order_id = order["id"].as_str().unwrap().to_owned();
    let (status, read) = gateway.send(Method::GET, &product_path, None, None).await;
    assert_eq!(status, StatusCode::OK, "{read}");
    assert_eq!(read["stock"], json!({"available": 8, "reserved": 2}));

    // Another user: not their order (404, as if it did not exist), not their list, not theirs to
    // stock or to ship.
    let order_path = format!("/v1/orders/{order_id}");
    let refusals = [
        (Method::GET, order_path.clone(), None, StatusCode::NOT_FOUND),
        (
            Method::GET,
            "/v1/users".to_owned(),
            None,
            StatusCode::FORBIDDEN,
        ),
        (
            Method::POST,
            "/v1/products".to_owned(),
            Some(json!({"sku": format!("EVIL-{tag}"), "name": "Evil", "priceCents": 1})),
            StatusCode::FORBIDDEN,
        ),
        (
            Method::POST,
            format!("{order_path}/ship"),
            None,
            StatusCode::FORBIDDEN,
        ),
    ];
    for (method, path, body, expected) in refusals {
        let (status, answer) = gateway
            .send(method.clone(), &path, Some(&other_token), body)
            .await;
        assert_eq!(status, expected, "another user: {method} {path}: {answer}");
    }
    let (status, _) = gateway.send(Method::GET, &order_path, None, None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "no token: the order");

    // The administrator pays and ships; the catalog commits the reservation when it consumes
    // the orders service's `order.status_changed` event from Kafka.
    for action in ["pay", "ship"] {
        let (status, body) = gateway
            .send(
                Method::POST,
                &format!("{order_path}/{action}"),
                Some(&admin_token),
                None,
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{action}: {body}");
    }
    let (status, shipped) = gateway
        .send(Method::GET, &order_path, Some(&customer_token), None)
        .await;
    assert_eq!(
        (status, shipped["status"].clone()),
        (StatusCode::OK, json!("shipped"))
    );
    wait_for_stock(
        gateway,
        &product_path,
        json!({"available": 8, "reserved": 0}),
    )
    .await;

    Journey {
        customer_email,
        customer_id,
        product_id,
        order_id,
    }
}

/// Polls a product until its stock is `expected` (an effect of a consumed event), for a minute.
pub async fn wait_for_stock(gateway: &Gateway, product_path: &str, expected: Value) {
    let started = Instant::now();
    loop {
        let (status, read) = gateway.send(Method::GET, product_path, None, None).await;
        if status == StatusCode::OK && read["stock"] == expected {
            return;
        }
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "the catalog never reached stock {expected}: {status} {read}"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// An error with its sources, `: `-separated (reqwest's own text hides the cause).
fn causes(error: &(dyn std::error::Error + 'static)) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}
