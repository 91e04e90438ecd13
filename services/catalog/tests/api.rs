//! The catalog's endpoints through the full router, on a real PostgreSQL and Redis.

// Test helpers outside #[test] functions unwrap too: a failure there is a test failure.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::http::{HeaderMap, Method, Request, StatusCode, header};
use futures::future::join_all;
use http_body_util::BodyExt;
use panthera_catalog::cache::Cache;
use panthera_catalog::events::ProductEvents;
use panthera_catalog::stock_consumer::StockHandler;
use panthera_catalog::{AppState, app::MIGRATOR, build_app};
use panthera_kit::health::Readiness;
use panthera_kit::inbox::EventHandler;
use panthera_kit::metrics::Metrics;
use panthera_kit::outbox::EventEnvelope;
use panthera_kit::server::HttpLimits;
use panthera_kit::testing::{
    REDIS_URL_VAR, TestDatabase, identity_check, service_env, sign_identity, unique_name,
};
use serde_json::{Value, json};
use tower::ServiceExt;

struct TestApp {
    app: Router,
    db: TestDatabase,
    cache: Cache,
    prefix: String,
}

impl TestApp {
    /// With a Redis cache under a key prefix of its own; `None` when a service is missing.
    async fn new() -> Option<Self> {
        let redis_url = service_env(REDIS_URL_VAR)?;
        let db = TestDatabase::create("catalog").await.unwrap()?;
        MIGRATOR.run(&db.pool).await.unwrap();
        let prefix = format!("{}:", unique_name("catalog"));
        let cache = Cache::connect(&redis_url, &prefix, 60).unwrap();
        let state = AppState::new(db.pool.clone(), cache.clone());
        let app = build_app(
            state,
            Metrics::new("catalog"),
            Readiness::new(),
            HttpLimits::default(),
            &identity_check(),
        );
        Some(Self {
            app,
            db,
            cache,
            prefix,
        })
    }

    /// As an administrator (the gateway's identity headers for an admin's token).
    async fn send(
        &self,
        method: Method,
        uri: &str,
        body: Option<Value>,
    ) -> (StatusCode, HeaderMap, Value) {
        self.send_as(
            &[
                ("x-panthera-subject", "admin-1"),
                ("x-panthera-roles", "admin"),
            ],
            method,
            uri,
            body,
        )
        .await
    }

    async fn send_as(
        &self,
        identity: &[(&str, &str)],
        method: Method,
        uri: &str,
        body: Option<Value>,
    ) -> (StatusCode, HeaderMap, Value) {
        let mut builder = Request::builder().method(method).uri(uri);
        for (name, value) in identity {
            builder = builder.header(*name, *value);
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
        let response = self.app.clone().oneshot(request).await.unwrap();
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

    async fn call(&self, method: Method, uri: &str, body: Option<Value>) -> (StatusCode, Value) {
        let (status, _, body) = self.send(method, uri, body).await;
        (status, body)
    }

    async fn product(
        &self,
        sku: &str,
        name: &str,
        description: &str,
        price: i64,
        stock: i32,
        category: Option<&str>,
    ) -> Value {
        let (status, body) = self
            .call(
                Method::POST,
                "/v1/products",
                Some(json!({"sku": sku, "name": name, "description": description, "priceCents": price,
                            "stockAvailable": stock, "categoryId": category})),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        body
    }

    async fn redis_keys(&self) -> Vec<String> {
        let client = redis::Client::open(std::env::var(REDIS_URL_VAR).unwrap()).unwrap();
        let mut connection = client.get_multiplexed_async_connection().await.unwrap();
        redis::cmd("KEYS")
            .arg(format!("{}*", self.prefix))
            .query_async(&mut connection)
            .await
            .unwrap()
    }

    async fn finish(self) {
        self.db.drop_database().await.unwrap();
    }
}

fn fields(body: &Value) -> Vec<String> {
    body["errors"]
        .as_array()
        .map(|e| {
            e.iter()
                .map(|e| e["field"].as_str().unwrap().to_owned())
                .collect()
        })
        .unwrap_or_default()
}

fn id(value: &Value) -> String {
    value["id"].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn categories() {
    let Some(t) = TestApp::new().await else {
        return;
    };
    let (status, shoes) = t
        .call(
            Method::POST,
            "/v1/categories",
            Some(json!({"name": "Shoes", "slug": "shoes"})),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{shoes}");
    t.call(
        Method::POST,
        "/v1/categories",
        Some(json!({"name": "Hats", "slug": "hats"})),
    )
    .await;
    let (status, body) = t
        .call(
            Method::POST,
            "/v1/categories",
            Some(json!({"name": "Other shoes", "slug": "shoes"})),
        )
        .await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    let (status, body) = t
        .call(
            Method::POST,
            "/v1/categories",
            Some(json!({"name": "", "slug": "Not A Slug"})),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(fields(&body), ["name", "slug"]);
    let (status, body) = t.call(Method::GET, "/v1/categories", None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["meta"], json!({"limit": 20, "offset": 0, "total": 2}));
    assert_eq!(body["data"][0]["slug"], "hats");
    let (status, body) = t
        .call(Method::GET, &format!("/v1/categories/{}", id(&shoes)), None)
        .await;
    assert_eq!((status, body), (StatusCode::OK, shoes));
    let (status, _) = t
        .call(
            Method::GET,
            &format!("/v1/categories/{}", uuid::Uuid::new_v4()),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    t.finish().await;
}

#[tokio::test]
async fn product_lifecycle_and_validation() {
    let Some(t) = TestApp::new().await else {
        return;
    };
    let product = t
        .product("SKU-1", "Trail runner", "A light shoe", 8999, 5, None)
        .await;
    assert_eq!(product["stock"], json!({"available": 5, "reserved": 0}));
    assert_eq!(product["currency"], "USD");
    let uri = format!("/v1/products/{}", id(&product));

    let (status, body) = t
        .call(
            Method::POST,
            "/v1/products",
            Some(json!({"sku": "SKU-1", "name": "Copy", "priceCents": 1})),
        )
        .await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    let (status, body) = t
        .call(Method::POST, "/v1/products", Some(json!({"sku": "SKU-2", "name": "X", "priceCents": 1, "categoryId": uuid::Uuid::new_v4()})))
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(fields(&body), ["categoryId"]);
    let (status, body) = t
        .call(Method::POST, "/v1/products", Some(json!({"sku": " ", "name": "X", "priceCents": -1, "currency": "dollars", "stockAvailable": -3})))
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(
        fields(&body),
        ["sku", "priceCents", "currency", "stockAvailable"]
    );
    let (status, body) = t
        .call(
            Method::POST,
            "/v1/products",
            Some(json!({"sku": "S", "name": "X"})),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(fields(&body), ["priceCents"]);

    let (status, updated) = t
        .call(
            Method::PATCH,
            &uri,
            Some(json!({"priceCents": 7999, "name": "Trail runner 2"})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{updated}");
    assert_eq!(updated["priceCents"], 7999);
    let (status, body) = t.call(Method::PATCH, &uri, Some(json!({}))).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(fields(&body), ["body"]);

    let (status, stocked) = t
        .call(
            Method::PUT,
            &format!("{uri}/stock"),
            Some(json!({"available": 12})),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(stocked["stock"]["available"], 12);
    let (status, body) = t
        .call(
            Method::PUT,
            &format!("{uri}/stock"),
            Some(json!({"available": -1})),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(fields(&body), ["available"]);

    let (status, _) = t.call(Method::DELETE, &uri, None).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, body) = t.call(Method::GET, &uri, None).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
    let (status, _) = t.call(Method::DELETE, &uri, None).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    t.finish().await;
}

#[tokio::test]
async fn full_text_search_and_filters() {
    let Some(t) = TestApp::new().await else {
        return;
    };
    let (_, shoes) = t
        .call(
            Method::POST,
            "/v1/categories",
            Some(json!({"name": "Shoes", "slug": "shoes"})),
        )
        .await;
    let shoes_id = id(&shoes);
    t.product(
        "RUN-1",
        "Running shoe",
        "Cushioned shoe for long runs",
        12000,
        3,
        Some(&shoes_id),
    )
    .await;
    t.product(
        "RUN-2",
        "Trail shoe",
        "Grippy sole for running on trails",
        9000,
        0,
        Some(&shoes_id),
    )
    .await;
    t.product("HAT-1", "Sun hat", "Wide brim, packable", 2500, 10, None)
        .await;
    t.product(
        "MUG-1",
        "Camp mug",
        "Enamel mug; not for running",
        1500,
        7,
        None,
    )
    .await;

    let tr = &t;
    let search = |query: &str| {
        let query = query.to_owned();
        async move {
            let (status, body) = tr
                .call(Method::GET, &format!("/v1/products?{query}"), None)
                .await;
            assert_eq!(status, StatusCode::OK, "{query}: {body}");
            let skus: Vec<String> = body["data"]
                .as_array()
                .unwrap()
                .iter()
                .map(|p| p["sku"].as_str().unwrap().to_owned())
                .collect();
            (skus, body["meta"]["total"].as_i64().unwrap())
        }
    };
    // Stemming: "runs"/"running" match "run"; the name (weight A) ranks above the description.
    let (skus, total) = search("q=run").await;
    assert_eq!(total, 3);
    assert_eq!(skus[0], "RUN-1");
    let (skus, _) = search("q=running%20-mug").await;
    assert!(
        !skus.contains(&"MUG-1".to_owned()) && skus.contains(&"RUN-2".to_owned()),
        "{skus:?}"
    );
    assert_eq!(search("q=%22sun%20hat%22").await.0, ["HAT-1"]);
    assert_eq!(search(&format!("categoryId={shoes_id}")).await.1, 2);
    assert_eq!(search("q=shoe&inStock=true").await.0, ["RUN-1"]);
    assert_eq!(
        search("minPriceCents=2000&maxPriceCents=10000").await.0,
        ["RUN-2", "HAT-1"]
    );
    assert_eq!(
        search("limit=2&offset=2").await,
        (vec!["HAT-1".to_owned(), "MUG-1".to_owned()], 4)
    );
    assert_eq!(search("q=nothing-matches-this").await, (vec![], 0));

    // Hostile input is only ever a search term.
    for query in [
        "q=%27%3B%20DROP%20TABLE%20products%3B%20--",
        "q=%27%20OR%201%3D1%20--",
        "q=%21%21%28%28%3A%2A%7C%26",
    ] {
        let (skus, total) = search(query).await;
        assert!(total <= 4 && skus.len() as i64 == total, "{query}");
    }
    let count: i64 = sqlx::query_scalar("SELECT count(*) FROM products")
        .fetch_one(&t.db.pool)
        .await
        .unwrap();
    assert_eq!(count, 4);

    for (query, field) in [
        ("limit=500", "limit"),
        ("minPriceCents=10&maxPriceCents=5", "minPriceCents"),
        ("inStock=maybe", "inStock"),
        ("categoryId=abc", "categoryId"),
    ] {
        let (status, body) = t
            .call(Method::GET, &format!("/v1/products?{query}"), None)
            .await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{query}");
        assert_eq!(fields(&body), [field], "{query}");
    }
    t.finish().await;
}

#[tokio::test]
async fn reads_are_cached_and_writes_invalidate() {
    let Some(t) = TestApp::new().await else {
        return;
    };
    assert!(t.cache.enabled());
    let product = t
        .product("C-1", "Cached lamp", "Bright", 1000, 4, None)
        .await;
    let uri = format!("/v1/products/{}", id(&product));

    let (_, headers, first) = t.send(Method::GET, &uri, None).await;
    assert_eq!(headers["x-cache"], "miss");
    let (_, headers, second) = t.send(Method::GET, &uri, None).await;
    assert_eq!(headers["x-cache"], "hit");
    assert_eq!(first, second);
    assert!(
        t.redis_keys()
            .await
            .contains(&format!("{}product:{}", t.prefix, id(&product)))
    );

    // Bypass the API to prove the hit came from Redis, not the database.
    sqlx::query("UPDATE products SET name = 'Changed behind the cache' WHERE sku = 'C-1'")
        .execute(&t.db.pool)
        .await
        .unwrap();
    let (_, _, cached) = t.send(Method::GET, &uri, None).await;
    assert_eq!(cached["name"], "Cached lamp");

    let (_, headers, _) = t.send(Method::GET, "/v1/products?q=bright", None).await;
    assert_eq!(headers["x-cache"], "miss");
    let (_, headers, _) = t.send(Method::GET, "/v1/products?q=bright", None).await;
    assert_eq!(headers["x-cache"], "hit");

    let (status, _) = t
        .call(Method::PATCH, &uri, Some(json!({"priceCents": 1200})))
        .await;
    assert_eq!(status, StatusCode::OK);
    let (_, headers, fresh) = t.send(Method::GET, &uri, None).await;
    assert_eq!(headers["x-cache"], "miss");
    assert_eq!(fresh["priceCents"], 1200);
    assert_eq!(fresh["name"], "Changed behind the cache");
    let (_, headers, list) = t.send(Method::GET, "/v1/products?q=bright", None).await;
    assert_eq!(headers["x-cache"], "miss");
    assert_eq!(list["data"][0]["priceCents"], 1200);

    // Reserving changes stock, so it invalidates too.
    let order = uuid::Uuid::new_v4();
    let (status, _) = t
        .call(
            Method::POST,
            "/v1/reservations",
            Some(json!({"orderId": order, "items": [{"productId": id(&product), "quantity": 3}]})),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED);
    let (_, headers, fresh) = t.send(Method::GET, &uri, None).await;
    assert_eq!(headers["x-cache"], "miss");
    assert_eq!(fresh["stock"], json!({"available": 1, "reserved": 3}));
    t.finish().await;
}

#[tokio::test]
async fn reservations_are_atomic_idempotent_and_never_oversell() {
    let Some(t) = TestApp::new().await else {
        return;
    };
    let a = id(&t.product("A", "Alpha", "", 500, 10, None).await);
    let b = id(&t.product("B", "Beta", "", 250, 2, None).await);
    let tr = &t;
    let stock = |product: String| async move {
        let (_, body) = tr
            .call(Method::GET, &format!("/v1/products/{product}"), None)
            .await;
        (
            body["stock"]["available"].as_i64().unwrap(),
            body["stock"]["reserved"].as_i64().unwrap(),
        )
    };

    let order = uuid::Uuid::new_v4();
    let request = json!({"orderId": order, "items": [{"productId": a, "quantity": 3}, {"productId": b, "quantity": 2}]});
    let (status, reservation) = t
        .call(Method::POST, "/v1/reservations", Some(request.clone()))
        .await;
    assert_eq!(status, StatusCode::CREATED, "{reservation}");
    assert_eq!(reservation["state"], "reserved");
    let prices: i64 = reservation["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["unitPriceCents"].as_i64().unwrap() * i["quantity"].as_i64().unwrap())
        .sum();
    assert_eq!(prices, 3 * 500 + 2 * 250);
    assert_eq!(stock(a.clone()).await, (7, 3));
    assert_eq!(stock(b.clone()).await, (0, 2));

    let (status, again) = t
        .call(Method::POST, "/v1/reservations", Some(request))
        .await;
    assert_eq!((status, &again), (StatusCode::OK, &reservation));
    assert_eq!(stock(a.clone()).await, (7, 3));
    let (status, _) = t
        .call(
            Method::POST,
            "/v1/reservations",
            Some(json!({"orderId": order, "items": [{"productId": a, "quantity": 1}]})),
        )
        .await;
    assert_eq!(status, StatusCode::CONFLICT);

    // All or nothing: B is sold out, so A is not touched either.
    let (status, body) = t
        .call(Method::POST, "/v1/reservations", Some(json!({"orderId": uuid::Uuid::new_v4(), "items": [{"productId": a, "quantity": 1}, {"productId": b, "quantity": 1}]})))
        .await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    assert_eq!(stock(a.clone()).await, (7, 3));

    let (status, body) = t
        .call(Method::POST, "/v1/reservations", Some(json!({"orderId": uuid::Uuid::new_v4(), "items": [{"productId": a, "quantity": 1}, {"productId": uuid::Uuid::new_v4(), "quantity": 1}]})))
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(fields(&body), ["items[1].productId"]);
    let (status, body) = t
        .call(Method::POST, "/v1/reservations", Some(json!({"orderId": uuid::Uuid::new_v4(), "items": [{"productId": a, "quantity": 0}, {"productId": a, "quantity": 1}]})))
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(fields(&body), ["items[0].quantity", "items[1].productId"]);
    let (status, body) = t
        .call(
            Method::POST,
            "/v1/reservations",
            Some(json!({"orderId": uuid::Uuid::new_v4(), "items": []})),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(fields(&body), ["items"]);

    // 20 buyers race for the 7 remaining units of A.
    let attempts = (0..20).map(|_| {
        let body =
            json!({"orderId": uuid::Uuid::new_v4(), "items": [{"productId": a, "quantity": 1}]});
        async move {
            tr.call(Method::POST, "/v1/reservations", Some(body))
                .await
                .0
        }
    });
    let statuses = join_all(attempts).await;
    assert_eq!(
        statuses
            .iter()
            .filter(|s| **s == StatusCode::CREATED)
            .count(),
        7
    );
    assert_eq!(
        statuses
            .iter()
            .filter(|s| **s == StatusCode::CONFLICT)
            .count(),
        13
    );
    assert_eq!(stock(a.clone()).await, (0, 10));

    // Releasing returns the units; doing it twice changes nothing more.
    let (status, _) = t
        .call(Method::DELETE, &format!("/v1/reservations/{order}"), None)
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, _) = t
        .call(Method::DELETE, &format!("/v1/reservations/{order}"), None)
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    assert_eq!(stock(a.clone()).await, (3, 7));
    assert_eq!(stock(b.clone()).await, (2, 0));
    let (status, body) = t
        .call(Method::GET, &format!("/v1/reservations/{order}"), None)
        .await;
    assert_eq!(
        (status, body["state"].as_str()),
        (StatusCode::OK, Some("released"))
    );
    let (status, _) = t
        .call(
            Method::DELETE,
            &format!("/v1/reservations/{}", uuid::Uuid::new_v4()),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    // A product with reservations cannot be deleted.
    let (status, _) = t
        .call(Method::DELETE, &format!("/v1/products/{a}"), None)
        .await;
    assert_eq!(status, StatusCode::CONFLICT);
    t.finish().await;
}

#[tokio::test]
async fn order_events_settle_reservations() {
    let Some(t) = TestApp::new().await else {
        return;
    };
    let a = id(&t.product("S-1", "Stocked", "", 100, 10, None).await);
    let mut orders = Vec::new();
    for quantity in [2, 3] {
        let order = uuid::Uuid::new_v4();
        let (status, _) = t
            .call(
                Method::POST,
                "/v1/reservations",
                Some(json!({"orderId": order, "items": [{"productId": a, "quantity": quantity}]})),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED);
        orders.push(order);
    }
    let handler = Arc::new(StockHandler::new(
        t.cache.clone(),
        ProductEvents::disabled(),
    ));
    let event = |order: uuid::Uuid, to: &str| EventEnvelope {
        id: uuid::Uuid::new_v4(),
        event_type: "order.status_changed".to_owned(),
        occurred_at: chrono::Utc::now(),
        data: json!({"orderId": order, "from": "paid", "to": to, "items": [{"productId": a, "quantity": 1}]}),
    };
    for (order, to) in [(orders[0], "shipped"), (orders[1], "cancelled")] {
        let envelope = event(order, to);
        let mut tx = t.db.pool.begin().await.unwrap();
        handler.handle(&mut tx, &envelope).await.unwrap();
        tx.commit().await.unwrap();
        handler.committed(&envelope).await;
    }
    let (_, body) = t
        .call(Method::GET, &format!("/v1/products/{a}"), None)
        .await;
    // Shipped: 2 units left the warehouse; cancelled: 3 units are available again.
    assert_eq!(body["stock"], json!({"available": 8, "reserved": 0}));
    let reasons: Vec<String> = sqlx::query_scalar(
        "SELECT reason FROM stock_movements WHERE product_id = $1::uuid ORDER BY id",
    )
    .bind(&a)
    .fetch_all(&t.db.pool)
    .await
    .unwrap();
    assert_eq!(reasons, ["reserve", "reserve", "commit", "release"]);

    // Events of other types or unknown statuses change nothing.
    let mut other = event(orders[0], "paid");
    let mut tx = t.db.pool.begin().await.unwrap();
    handler.handle(&mut tx, &other).await.unwrap();
    other.event_type = "order.created".to_owned();
    handler.handle(&mut tx, &other).await.unwrap();
    tx.commit().await.unwrap();
    let movements: i64 = sqlx::query_scalar("SELECT count(*) FROM stock_movements")
        .fetch_one(&t.db.pool)
        .await
        .unwrap();
    assert_eq!(movements, 4);
    t.finish().await;
}

#[tokio::test]
async fn reads_are_public_and_writes_need_the_admin_role_or_the_scope() {
    let Some(t) = TestApp::new().await else {
        return;
    };
    let product = t.product("AUTHZ-1", "Lamp", "", 1_000, 5, None).await;
    let id = product["id"].as_str().unwrap();
    let uri = format!("/v1/products/{id}");
    let stock_uri = format!("/v1/products/{id}/stock");
    let writes = [
        (
            Method::POST,
            "/v1/products".to_owned(),
            Some(json!({"sku": "X-1", "name": "X", "priceCents": 1})),
        ),
        (
            Method::POST,
            "/v1/categories".to_owned(),
            Some(json!({"name": "X", "slug": "x"})),
        ),
        (Method::PATCH, uri.clone(), Some(json!({"name": "Stolen"}))),
        (
            Method::PUT,
            stock_uri.clone(),
            Some(json!({"available": 0})),
        ),
        (Method::DELETE, uri.clone(), None),
    ];
    let user = [
        ("x-panthera-subject", "u-1"),
        ("x-panthera-roles", "user"),
        ("x-panthera-scopes", "catalog:read"),
    ];
    for (identity, expected) in [
        (&[][..], StatusCode::UNAUTHORIZED),
        (&user[..], StatusCode::FORBIDDEN),
    ] {
        for (method, uri, body) in &writes {
            let (status, _, problem) = t.send_as(identity, method.clone(), uri, body.clone()).await;
            assert_eq!(status, expected, "{method} {uri}: {problem}");
        }
    }
    let (status, _, fetched) = t.send_as(&[], Method::GET, &uri, None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(fetched["name"], "Lamp");
    assert_eq!(fetched["stock"]["available"], 5);
    let products: i64 = sqlx::query_scalar("SELECT count(*) FROM products")
        .fetch_one(&t.db.pool)
        .await
        .unwrap();
    assert_eq!(products, 1);

    // The scope alone is enough.
    let writer = [
        ("x-panthera-subject", "svc-1"),
        ("x-panthera-scopes", "catalog:write"),
    ];
    let (status, _, body) = t
        .send_as(
            &writer,
            Method::PUT,
            &stock_uri,
            Some(json!({"available": 7})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["stock"]["available"], 7);
    t.finish().await;
}
