//! One order, one trace: the shop on loopback with `spec.observability.tracing` pointing at a
//! real Jaeger (all-in-one, from scripts/test-services.sh) at a sampling ratio of 1, an order
//! placed through the real gateway, and the trace read back from Jaeger's query API: the
//! gateway's spans, orders', the catalog's reservation, the Kafka produce of the order's event
//! and the catalog's consumption of it, all in the one trace.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code

mod common;

use common::{ADMIN_EMAIL, ADMIN_PASSWORD, Shop};
use panthera_e2e::jaeger::Jaeger;
use panthera_e2e::{Method, PASSWORD, StatusCode};
use panthera_kit::testing::service_env;
use serde_json::json;

/// The trace context a client sends with its order: the gateway must not continue it (the
/// rendered `trustClientContext` is false) but link its new trace to it.
const CLIENT_TRACE_ID: &str = "5e1ec7ed0000000000000000c0ffee01";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_order_is_one_trace_from_the_gateway_to_the_kafka_consumer() {
    let Some(otlp) = service_env("PANTHERA_TEST_JAEGER_OTLP") else {
        return;
    };
    let Some(query) = service_env("PANTHERA_TEST_JAEGER_QUERY") else {
        return;
    };
    let Some(shop) = Shop::start_traced(&otlp).await else {
        return;
    };
    let gateway = &shop.gateway;
    let admin_token = gateway.token(ADMIN_EMAIL, ADMIN_PASSWORD).await;
    let email = format!("ada-{}@example.com", shop.run);
    gateway.sign_up("Ada", &email).await;
    let token = gateway.token(&email, PASSWORD).await;
    let (status, product) = gateway
        .send(
            Method::POST,
            "/v1/products",
            Some(&admin_token),
            Some(json!({"sku": format!("LAMP-{}", shop.run), "name": "Lamp", "priceCents": 2500, "stockAvailable": 10})),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{product}");

    // The order, with a client's sampled traceparent.
    let client_traceparent = format!("00-{CLIENT_TRACE_ID}-00000000000000c1-01");
    let (status, _, order) = gateway
        .call(
            Method::POST,
            "/v1/orders",
            Some(&token),
            &[("traceparent", &client_traceparent)],
            Some(json!({"items": [{"productId": product["id"], "quantity": 2}]})),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{order}");

    let jaeger = Jaeger::new(query);
    let names = Names::of(&shop.run);
    // Complete once the consumer's span has arrived too.
    let consumed = format!("process {}", names.order_topic);
    let trace = jaeger
        .find_trace(&names.gateway, "POST /v1/orders", |trace| {
            trace
                .spans
                .iter()
                .any(|s| s["operationName"] == consumed.as_str())
        })
        .await;
    let tree = trace.tree();
    println!(
        "the order's trace {} as Jaeger returns it:\n{tree}",
        trace.id
    );

    // Not the client's trace: a new one, linked to it.
    assert_ne!(trace.id, CLIENT_TRACE_ID);
    let root = trace.root();
    assert_eq!(
        (trace.service(root), root["operationName"].as_str().unwrap()),
        (names.gateway.as_str(), "POST /v1/orders")
    );
    assert!(
        root["references"]
            .as_array()
            .unwrap()
            .iter()
            .any(|r| r["traceID"] == CLIENT_TRACE_ID),
        "the gateway's span does not link to the client's trace: {root}"
    );
    for (key, value) in [
        ("http.request.method", json!("POST")),
        ("http.route", json!("/v1/orders")),
        ("http.response.status_code", json!(201)),
    ] {
        assert_eq!(trace.tag(root, key), Some(&value), "gateway span {key}");
    }
    // Each hop is the child of the one before it.
    let upstream = trace.child(root, &names.gateway, "POST");
    let orders = trace.child(upstream, &names.orders, "POST /v1/orders");
    let reserve = trace.child(orders, &names.orders, "POST /v1/reservations");
    let reservation = trace.child(reserve, &names.catalog, "POST /v1/reservations");
    assert!(
        trace
            .children(reservation)
            .any(|span| trace.tag(span, "db.system") == Some(&json!("postgresql"))),
        "no SQL span under the catalog's reservation"
    );
    let insert_outbox = trace
        .children(orders)
        .find(|span| span["operationName"] == "INSERT outbox")
        .expect("the outbox insert under the order's span");
    assert_eq!(
        trace.tag(insert_outbox, "db.operation"),
        Some(&json!("INSERT"))
    );
    let send = trace.child(
        orders,
        &names.orders,
        &format!("send {}", names.order_topic),
    );
    assert_eq!(
        trace.tag(send, "messaging.system"),
        Some(&json!("kafka")),
        "{send}"
    );
    let process = trace.child(
        send,
        &names.catalog,
        &format!("process {}", names.order_topic),
    );
    assert_eq!(
        trace.tag(process, "messaging.destination.name"),
        Some(&json!(names.order_topic))
    );
    shop.finish().await;
}

/// This run's service and topic names.
struct Names {
    gateway: String,
    orders: String,
    catalog: String,
    order_topic: String,
}

impl Names {
    fn of(run: &str) -> Self {
        Self {
            gateway: format!("gateway-{run}"),
            orders: format!("orders-{run}"),
            catalog: format!("catalog-{run}"),
            order_topic: format!("order-events-{run}"),
        }
    }
}
