//! The orders API against real PostgreSQL databases and a real catalog over HTTP.

// Test helpers outside #[test] functions unwrap too: a failure there is a test failure.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use axum::http::{Method, StatusCode, header};
use common::{Env, fields, order_body};
use futures::future::join_all;
use panthera_orders::routes::FULFIL_SCOPE;
use serde_json::{Value, json};
use uuid::Uuid;

async fn env() -> Option<Env> {
    let env = Env::new(Some("orders")).await?;
    env.migrate().await;
    Some(env)
}

async fn outbox_types(env: &Env) -> Vec<String> {
    sqlx::query_scalar("SELECT event_type FROM outbox ORDER BY position")
        .fetch_all(&env.orders_db.pool)
        .await
        .unwrap()
}

#[tokio::test]
async fn create_read_and_list_orders() {
    let Some(env) = env().await else { return };
    let boots = env.product("BOOT", 12_000, 5).await;
    let socks = env.product("SOCK", 900, 50).await;
    let customer = Uuid::new_v4();

    let (status, headers, order) = env
        .send(
            Method::POST,
            "/v1/orders",
            Some(order_body(customer, &[(boots, 1), (socks, 3)])),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{order}");
    let id = order["id"].as_str().unwrap().to_owned();
    assert_eq!(headers[header::LOCATION], format!("/v1/orders/{id}"));
    assert_eq!(order["status"], "pending");
    assert_eq!(order["totalCents"], 12_000 + 3 * 900);
    assert_eq!(order["currency"], "USD");
    assert_eq!(order["items"].as_array().unwrap().len(), 2);
    assert!(
        order["items"]
            .as_array()
            .unwrap()
            .iter()
            .any(|i| i["unitPriceCents"] == 900 && i["quantity"] == 3)
    );
    assert_eq!(env.stock(boots).await, (4, 1));
    assert_eq!(env.stock(socks).await, (47, 3));

    let (status, fetched) = env
        .call(Method::GET, &format!("/v1/orders/{id}"), None)
        .await;
    assert_eq!((status, &fetched), (StatusCode::OK, &order));

    let other_customer = Uuid::new_v4();
    env.send(
        Method::POST,
        "/v1/orders",
        Some(order_body(other_customer, &[(socks, 1)])),
        None,
    )
    .await;
    let (status, list) = env.call(Method::GET, "/v1/orders", None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(list["meta"], json!({"limit": 20, "offset": 0, "total": 2}));
    assert_eq!(list["data"][0], order);
    let (_, list) = env
        .call(
            Method::GET,
            &format!("/v1/orders?customerId={other_customer}"),
            None,
        )
        .await;
    assert_eq!(list["meta"]["total"], 1);
    assert_eq!(list["data"][0]["customerId"], other_customer.to_string());
    let (_, list) = env.call(Method::GET, "/v1/orders?status=paid", None).await;
    assert_eq!(list["meta"]["total"], 0);
    let (_, list) = env
        .call(Method::GET, "/v1/orders?limit=1&offset=1", None)
        .await;
    assert_eq!(list["data"].as_array().unwrap().len(), 1);
    assert_eq!(list["data"][0]["customerId"], other_customer.to_string());

    let payload: Value = sqlx::query_scalar("SELECT payload FROM outbox WHERE key = $1")
        .bind(&id)
        .fetch_one(&env.orders_db.pool)
        .await
        .unwrap();
    assert_eq!(payload["orderId"], id.as_str());
    assert_eq!(payload["totalCents"], order["totalCents"]);
    assert_eq!(outbox_types(&env).await, ["order.created", "order.created"]);
    env.finish().await;
}

#[tokio::test]
async fn idempotency_key_makes_creation_safe_to_retry() {
    let Some(env) = env().await else { return };
    let lamp = env.product("LAMP", 4_000, 10).await;
    let customer = Uuid::new_v4();
    let body = order_body(customer, &[(lamp, 2)]);

    let (status, _, first) = env
        .send(
            Method::POST,
            "/v1/orders",
            Some(body.clone()),
            Some("checkout-1"),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{first}");
    let (status, headers, again) = env
        .send(
            Method::POST,
            "/v1/orders",
            Some(body.clone()),
            Some("checkout-1"),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(headers["idempotent-replayed"], "true");
    assert_eq!(again, first);
    assert_eq!(env.stock(lamp).await, (8, 2), "reserved once");

    let (status, _, problem) = env
        .send(
            Method::POST,
            "/v1/orders",
            Some(order_body(customer, &[(lamp, 3)])),
            Some("checkout-1"),
        )
        .await;
    assert_eq!(status, StatusCode::CONFLICT, "{problem}");

    // The same key from another customer is another order.
    let (status, _, other) = env
        .send(
            Method::POST,
            "/v1/orders",
            Some(order_body(Uuid::new_v4(), &[(lamp, 1)])),
            Some("checkout-1"),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED);
    assert_ne!(other["id"], first["id"]);

    // Eight concurrent retries of one checkout produce one order and one reservation.
    let racing = order_body(customer, &[(lamp, 1)]);
    let results = join_all((0..8).map(|_| {
        env.send(
            Method::POST,
            "/v1/orders",
            Some(racing.clone()),
            Some("checkout-2"),
        )
    }))
    .await;
    let ids: std::collections::HashSet<_> = results
        .iter()
        .map(|(_, _, body)| body["id"].clone())
        .collect();
    assert_eq!(ids.len(), 1, "{results:?}");
    assert!(
        results
            .iter()
            .all(|(status, _, _)| *status == StatusCode::CREATED || *status == StatusCode::OK)
    );
    assert_eq!(
        results
            .iter()
            .filter(|(status, _, _)| *status == StatusCode::CREATED)
            .count(),
        1
    );
    assert_eq!(env.stock(lamp).await, (6, 4));
    let orders: i64 = sqlx::query_scalar("SELECT count(*) FROM orders")
        .fetch_one(&env.orders_db.pool)
        .await
        .unwrap();
    assert_eq!(orders, 3);

    let (status, _, problem) = env
        .send(
            Method::POST,
            "/v1/orders",
            Some(racing),
            Some(&"k".repeat(300)),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(fields(&problem), ["Idempotency-Key"]);
    env.finish().await;
}

#[tokio::test]
async fn stock_and_validation_errors() {
    let Some(env) = env().await else { return };
    let rare = env.product("RARE", 100_000, 1).await;
    let customer = Uuid::new_v4();

    let (status, problem) = env
        .call(
            Method::POST,
            "/v1/orders",
            Some(order_body(customer, &[(rare, 2)])),
        )
        .await;
    assert_eq!(status, StatusCode::CONFLICT, "{problem}");
    assert!(
        problem["detail"]
            .as_str()
            .unwrap()
            .contains("not enough stock"),
        "{problem}"
    );
    assert_eq!(env.stock(rare).await, (1, 0));

    let (status, problem) = env
        .call(
            Method::POST,
            "/v1/orders",
            Some(order_body(customer, &[(rare, 1), (Uuid::new_v4(), 1)])),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{problem}");
    assert_eq!(fields(&problem), ["items[1].productId"]);
    assert_eq!(env.stock(rare).await, (1, 0));

    let cases = [
        (json!({"customerId": customer, "items": []}), vec!["items"]),
        (
            order_body(customer, &[(rare, 0)]),
            vec!["items[0].quantity"],
        ),
        (
            order_body(customer, &[(rare, 1), (rare, 1)]),
            vec!["items[1].productId"],
        ),
        (
            json!({"customerId": "not-a-uuid", "items": []}),
            vec!["customerId"],
        ),
        (
            json!({"customerId": customer, "items": [{"productId": rare, "quantity": "two"}]}),
            vec!["items[0].quantity"],
        ),
    ];
    for (body, expected) in cases {
        let (status, problem) = env
            .call(Method::POST, "/v1/orders", Some(body.clone()))
            .await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
        assert_eq!(fields(&problem), expected, "{body}: {problem}");
    }
    for (query, field) in [
        ("limit=101", "limit"),
        ("status=lost", "status"),
        ("customerId=1%27%20OR%20%271%27%3D%271", "customerId"),
    ] {
        let (status, problem) = env
            .call(Method::GET, &format!("/v1/orders?{query}"), None)
            .await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{query}");
        assert_eq!(fields(&problem), [field]);
    }
    let orders: i64 = sqlx::query_scalar("SELECT count(*) FROM orders")
        .fetch_one(&env.orders_db.pool)
        .await
        .unwrap();
    assert_eq!(orders, 0);
    env.finish().await;
}

#[tokio::test]
async fn malformed_json_is_a_bad_request() {
    let Some(env) = env().await else { return };
    let mut request = axum::http::Request::post("/v1/orders")
        .header(header::CONTENT_TYPE, "application/json")
        .header("x-panthera-subject", common::ADMIN.0)
        .body(axum::body::Body::from("{\"customerId\": "))
        .unwrap();
    panthera_kit::testing::sign_identity(&mut request);
    let response = tower::ServiceExt::oneshot(env.orders.clone(), request)
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    assert_eq!(
        response.headers()[header::CONTENT_TYPE],
        "application/problem+json"
    );
    env.finish().await;
}

#[tokio::test]
async fn state_machine() {
    let Some(env) = env().await else { return };
    let kettle = env.product("KETTLE", 3_000, 10).await;
    let create = || {
        env.call(
            Method::POST,
            "/v1/orders",
            Some(order_body(Uuid::new_v4(), &[(kettle, 1)])),
        )
    };
    let (_, first) = create().await;
    let first = first["id"].as_str().unwrap().to_owned();
    let (_, second) = create().await;
    let second = second["id"].as_str().unwrap().to_owned();

    let env_ref = &env;
    let step = |id: String, action: &'static str| async move {
        let (status, body) = env_ref
            .call(Method::POST, &format!("/v1/orders/{id}/{action}"), None)
            .await;
        (status, body)
    };
    let (status, body) = step(first.clone(), "ship").await;
    assert_eq!(status, StatusCode::CONFLICT);
    assert_eq!(
        body["detail"],
        "conflict: cannot ship an order that is pending"
    );
    let (status, body) = step(first.clone(), "pay").await;
    assert_eq!(
        (status, body["status"].as_str()),
        (StatusCode::OK, Some("paid"))
    );
    assert_eq!(step(first.clone(), "pay").await.0, StatusCode::CONFLICT);
    let (status, body) = step(first.clone(), "ship").await;
    assert_eq!(
        (status, body["status"].as_str()),
        (StatusCode::OK, Some("shipped"))
    );
    assert_eq!(step(first.clone(), "cancel").await.0, StatusCode::CONFLICT);
    assert_eq!(step(first.clone(), "ship").await.0, StatusCode::CONFLICT);

    let (status, body) = step(second.clone(), "cancel").await;
    assert_eq!(
        (status, body["status"].as_str()),
        (StatusCode::OK, Some("cancelled"))
    );
    assert_eq!(step(second.clone(), "pay").await.0, StatusCode::CONFLICT);

    let (status, _) = step(Uuid::new_v4().to_string(), "pay").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, _) = env
        .call(Method::GET, &format!("/v1/orders/{}", Uuid::new_v4()), None)
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, _) = env.call(Method::GET, "/v1/orders/42", None).await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    let changes: Vec<(String, Value)> = sqlx::query_as(
        "SELECT key, payload FROM outbox WHERE event_type = 'order.status_changed' ORDER BY position",
    )
    .fetch_all(&env.orders_db.pool)
    .await
    .unwrap();
    let steps: Vec<(String, String, String)> = changes
        .iter()
        .map(|(key, p)| {
            (
                key.clone(),
                p["from"].as_str().unwrap().to_owned(),
                p["to"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    assert_eq!(
        steps,
        [
            (first.clone(), "pending".into(), "paid".into()),
            (first.clone(), "paid".into(), "shipped".into()),
            (second.clone(), "pending".into(), "cancelled".into()),
        ]
    );
    let (_, list) = env
        .call(Method::GET, "/v1/orders?status=shipped", None)
        .await;
    assert_eq!(list["meta"]["total"], 1);
    env.finish().await;
}

#[tokio::test]
async fn unreachable_catalog_is_unavailable() {
    let Some(env) = env().await else { return };
    // A port nothing listens on, and no catalog configured at all.
    for url in [Some("http://127.0.0.1:9".to_owned()), None] {
        let app = Env::orders_app(&env.orders_db, url, Some("orders"));
        let (status, _, problem) = common::send(
            &app,
            Method::POST,
            "/v1/orders",
            Some(order_body(Uuid::new_v4(), &[(Uuid::new_v4(), 1)])),
            None,
        )
        .await;
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{problem}");
        assert!(!problem.to_string().contains("127.0.0.1"), "{problem}");
    }
    let orders: i64 = sqlx::query_scalar("SELECT count(*) FROM orders")
        .fetch_one(&env.orders_db.pool)
        .await
        .unwrap();
    assert_eq!(orders, 0);
    env.finish().await;
}

#[tokio::test]
async fn customers_see_and_cancel_only_their_own_orders() {
    let Some(env) = env().await else { return };
    let lamp = env.product("LAMP", 2_500, 10).await;
    let (ada, bob) = (Uuid::new_v4(), Uuid::new_v4());
    let (ada_s, bob_s) = (ada.to_string(), bob.to_string());
    let as_ada = Some((ada_s.as_str(), ""));
    let as_bob = Some((bob_s.as_str(), "user"));
    let items = json!([{"productId": lamp, "quantity": 1}]);

    // No identity: 401, nothing reserved.
    let (status, _) = env
        .call_as(
            None,
            Method::POST,
            "/v1/orders",
            Some(json!({"items": items})),
        )
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    // The customer is the caller: no customerId needed, and another one is 403.
    let (status, order) = env
        .call_as(
            as_ada,
            Method::POST,
            "/v1/orders",
            Some(json!({"items": items})),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{order}");
    assert_eq!(order["customerId"], ada_s);
    let (status, body) = env
        .call_as(
            as_bob,
            Method::POST,
            "/v1/orders",
            Some(order_body(ada, &[(lamp, 1)])),
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    assert_eq!(
        env.stock(lamp).await,
        (9, 1),
        "a refused order reserved stock"
    );

    // Bob cannot list, read, cancel, pay or ship Ada's order.
    let id = order["id"].as_str().unwrap();
    let (status, _) = env
        .call_as(
            as_bob,
            Method::GET,
            &format!("/v1/orders?customerId={ada}"),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, list) = env.call_as(as_bob, Method::GET, "/v1/orders", None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(list["meta"]["total"], 0, "{list}");
    for (method, uri) in [
        (Method::GET, format!("/v1/orders/{id}")),
        (Method::POST, format!("/v1/orders/{id}/cancel")),
    ] {
        let (status, _) = env.call_as(as_bob, method, &uri, None).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{uri}");
    }
    // Paying and shipping are the shop's: 403 even for the order's own customer.
    for action in ["pay", "ship"] {
        let (status, _) = env
            .call_as(
                as_ada,
                Method::POST,
                &format!("/v1/orders/{id}/{action}"),
                None,
            )
            .await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{action}");
    }
    let (status, list) = env.call_as(as_ada, Method::GET, "/v1/orders", None).await;
    assert_eq!(
        (status, list["meta"]["total"].clone()),
        (StatusCode::OK, json!(1))
    );
    let statuses: Vec<String> = sqlx::query_scalar("SELECT status FROM orders")
        .fetch_all(&env.orders_db.pool)
        .await
        .unwrap();
    assert_eq!(statuses, ["pending"]);

    // A fulfilment client pays; after that the customer can no longer cancel.
    let (status, _, paid) = common::send_as(
        &env.orders,
        None,
        Method::POST,
        &format!("/v1/orders/{id}/pay"),
        None,
        None,
    )
    .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{paid}");
    let mut request = axum::http::Request::post(format!("/v1/orders/{id}/pay"))
        .header("x-panthera-subject", "fulfilment-system")
        .header("x-panthera-scopes", FULFIL_SCOPE)
        .body(axum::body::Body::empty())
        .unwrap();
    panthera_kit::testing::sign_identity(&mut request);
    let response = tower::ServiceExt::oneshot(env.orders.clone(), request)
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let (status, _) = env
        .call_as(
            as_ada,
            Method::POST,
            &format!("/v1/orders/{id}/cancel"),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);

    // A second, pending order Ada cancels herself.
    let (_, second) = env
        .call_as(
            as_ada,
            Method::POST,
            "/v1/orders",
            Some(json!({"items": items})),
        )
        .await;
    let second = second["id"].as_str().unwrap();
    let (status, cancelled) = env
        .call_as(
            as_ada,
            Method::POST,
            &format!("/v1/orders/{second}/cancel"),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{cancelled}");
    assert_eq!(cancelled["status"], "cancelled");
    env.finish().await;
}
