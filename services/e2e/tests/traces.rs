//! One order, one trace: the shop on loopback with `spec.observability.tracing` pointing at a
//! real Jaeger (all-in-one, from scripts/test-services.sh) at a sampling ratio of 1, an order
//! placed through the real gateway, and the trace read back from Jaeger's query API: the
//! gateway's spans, orders', the catalog's reservation, the Kafka produce of the order's event
//! and the catalog's consumption of it, all in the one trace.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code

mod common;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use common::{ADMIN_EMAIL, ADMIN_PASSWORD, Shop};
use panthera_e2e::{Method, PASSWORD, StatusCode};
use panthera_kit::testing::service_env;
use serde_json::{Value, json};

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
    let trace = jaeger.order_trace(&names).await;
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

/// Jaeger's query API (`/api/traces`).
struct Jaeger {
    base: String,
    http: reqwest::Client,
}

impl Jaeger {
    fn new(base: String) -> Self {
        Self {
            base,
            http: reqwest::Client::new(),
        }
    }

    async fn get(&self, path_and_query: &str) -> Value {
        let url = format!("{}{path_and_query}", self.base);
        let response = self
            .http
            .get(&url)
            .send()
            .await
            .unwrap_or_else(|e| panic!("GET {url}: {e}"));
        if response.status() == StatusCode::NOT_FOUND {
            return json!({"data": []});
        }
        assert_eq!(response.status(), StatusCode::OK, "GET {url}");
        response.json().await.unwrap()
    }

    /// The trace of the order: the gateway's `POST /v1/orders` root, once its consumer's span
    /// has arrived too (spans reach Jaeger as each service exports them).
    async fn order_trace(&self, names: &Names) -> Trace {
        let started = Instant::now();
        let operation = "POST%20/v1/orders";
        let consumed = format!("process {}", names.order_topic);
        let mut last = Value::Null;
        while started.elapsed() < Duration::from_secs(60) {
            let found = self
                .get(&format!(
                    "/api/traces?service={}&operation={operation}&limit=20&lookback=1h",
                    names.gateway
                ))
                .await;
            for data in found["data"].as_array().into_iter().flatten() {
                let id = data["traceID"].as_str().unwrap_or_default();
                let full = self.get(&format!("/api/traces/{id}")).await;
                let Some(trace) = full["data"].get(0) else {
                    continue;
                };
                let trace = Trace::new(trace.clone());
                if trace
                    .spans
                    .iter()
                    .any(|s| s["operationName"] == consumed.as_str())
                {
                    return trace;
                }
                last = trace.data;
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
        panic!(
            "no trace of {} with the consumer's span `{consumed}` within 60 s; last seen: {last}",
            names.gateway
        );
    }
}

/// One trace as Jaeger's JSON gives it.
struct Trace {
    id: String,
    data: Value,
    spans: Vec<Value>,
    services: BTreeMap<String, String>,
}

impl Trace {
    fn new(data: Value) -> Self {
        let spans = data["spans"].as_array().cloned().unwrap_or_default();
        let services = data["processes"]
            .as_object()
            .into_iter()
            .flatten()
            .map(|(id, process)| {
                (
                    id.clone(),
                    process["serviceName"].as_str().unwrap_or("?").to_owned(),
                )
            })
            .collect();
        Self {
            id: data["traceID"].as_str().unwrap_or_default().to_owned(),
            data,
            spans,
            services,
        }
    }

    fn service(&self, span: &Value) -> &str {
        span["processID"]
            .as_str()
            .and_then(|id| self.services.get(id))
            .map_or("?", String::as_str)
    }

    /// The span's parent in this trace (a CHILD_OF reference to a span of it).
    fn parent_id(span: &Value) -> Option<&str> {
        span["references"]
            .as_array()?
            .iter()
            .find(|r| r["refType"] == "CHILD_OF")
            .and_then(|r| r["spanID"].as_str())
    }

    fn root(&self) -> &Value {
        let roots: Vec<&Value> = self
            .spans
            .iter()
            .filter(|span| {
                Self::parent_id(span)
                    .is_none_or(|parent| !self.spans.iter().any(|other| other["spanID"] == parent))
            })
            .collect();
        assert_eq!(roots.len(), 1, "one root span expected:\n{}", self.tree());
        roots[0]
    }

    fn children<'a>(&'a self, parent: &Value) -> impl Iterator<Item = &'a Value> + 'a {
        let parent = parent["spanID"].as_str().map(str::to_owned);
        self.spans
            .iter()
            .filter(move |span| Self::parent_id(span) == parent.as_deref())
    }

    /// The child of `parent` made by `service` and named `operation`.
    fn child(&self, parent: &Value, service: &str, operation: &str) -> &Value {
        self.children(parent)
            .find(|span| self.service(span) == service && span["operationName"] == operation)
            .unwrap_or_else(|| {
                panic!(
                    "no span `{service}: {operation}` under `{}: {}`:\n{}",
                    self.service(parent),
                    parent["operationName"],
                    self.tree()
                )
            })
    }

    fn tag<'a>(&self, span: &'a Value, key: &str) -> Option<&'a Value> {
        span["tags"]
            .as_array()?
            .iter()
            .find(|tag| tag["key"] == key)
            .map(|tag| &tag["value"])
    }

    /// `service: operation (duration)`, indented under its parent, children by start time.
    fn tree(&self) -> String {
        fn walk(trace: &Trace, span: &Value, depth: usize, out: &mut String) {
            out.push_str(&format!(
                "{}{}: {} ({} µs)\n",
                "  ".repeat(depth),
                trace.service(span),
                span["operationName"].as_str().unwrap_or("?"),
                span["duration"]
            ));
            let mut children: Vec<&Value> = trace.children(span).collect();
            children.sort_by_key(|child| child["startTime"].as_i64().unwrap_or(0));
            for child in children {
                walk(trace, child, depth + 1, out);
            }
        }
        let mut out = String::new();
        let mut roots: Vec<&Value> = self
            .spans
            .iter()
            .filter(|span| {
                Self::parent_id(span)
                    .is_none_or(|parent| !self.spans.iter().any(|other| other["spanID"] == parent))
            })
            .collect();
        roots.sort_by_key(|root| root["startTime"].as_i64().unwrap_or(0));
        for root in roots {
            walk(self, root, 0, &mut out);
        }
        out
    }
}
