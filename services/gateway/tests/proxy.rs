//! Routing, forwarding headers, body limits, upstream failures, retries, caching, admin and reload.
// Test helpers outside #[test] functions: a failed setup step should abort the test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::{Duration, Instant};

use common::*;
use http::{Method, StatusCode};

fn routes(users: &str, orders: &str) -> String {
    format!(
        r#"
maxBodyBytes: 1024
upstreamTimeoutMs: 2000
routes:
  - {{name: users, pathPrefix: /v1/users, upstream: "{users}"}}
  - {{name: users-admin, pathPrefix: /v1/users/admin, upstream: "{orders}", stripPrefix: true}}
  - {{name: orders, pathPrefix: /v1/orders/, upstream: "{orders}/api"}}
"#
    )
}

#[tokio::test]
async fn routes_by_longest_segment_prefix() {
    let users = TestUpstream::start("users").await;
    let orders = TestUpstream::start("orders").await;
    let gw = start_gateway(&routes(&users.url(), &orders.url()), &[]).await;
    let base = format!("http://{}", gw.proxy_addr);

    let reply = get(&format!("{base}/v1/users/42?x=1"), &[]).await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(reply.json()["upstream"], "users");
    assert_eq!(reply.json()["path"], "/v1/users/42?x=1");

    let reply = get(&format!("{base}/v1/users/admin/stats?y=2"), &[]).await;
    assert_eq!(reply.json()["upstream"], "orders");
    assert_eq!(reply.json()["path"], "/stats?y=2", "prefix stripped");

    let reply = get(&format!("{base}/v1/orders/7"), &[]).await;
    assert_eq!(
        reply.json()["path"],
        "/api/v1/orders/7",
        "upstream base path prepended"
    );

    let reply = get(&format!("{base}/v1/usersettings"), &[]).await;
    assert_eq!(
        reply.status,
        StatusCode::NOT_FOUND,
        "segment boundary respected"
    );
    let reply = get(&format!("{base}/"), &[]).await;
    assert_eq!(reply.status, StatusCode::NOT_FOUND);
    gw.shutdown().await;
}

#[tokio::test]
async fn forwards_headers_and_request_ids() {
    let users = TestUpstream::start("users").await;
    let gw = start_gateway(&routes(&users.url(), &users.url()), &[]).await;
    let base = format!("http://{}", gw.proxy_addr);

    let reply = get(
        &format!("{base}/v1/users"),
        &[
            ("host", "shop.example.com"),
            ("x-forwarded-for", "203.0.113.9"),
            ("connection", "keep-alive, x-drop-me"),
            ("x-drop-me", "secret"),
            ("x-request-id", "req-abc"),
        ],
    )
    .await;
    let headers = &reply.json()["headers"];
    // The peer is no trusted proxy: the address it claims to forward for is dropped.
    assert_eq!(headers["x-forwarded-for"], "127.0.0.1");
    assert_eq!(headers["x-forwarded-host"], "shop.example.com");
    assert_eq!(headers["x-forwarded-proto"], "http");
    assert_eq!(headers["host"], users.addr.to_string());
    assert_eq!(headers["x-request-id"], "req-abc");
    assert!(
        headers.get("x-drop-me").is_none(),
        "hop-by-hop header forwarded"
    );
    assert_eq!(reply.header("x-request-id"), Some("req-abc"));

    let first = get(&format!("{base}/v1/users"), &[]).await;
    let second = get(&format!("{base}/v1/users"), &[]).await;
    let id1 = first.header("x-request-id").unwrap().to_owned();
    let id2 = second.header("x-request-id").unwrap().to_owned();
    assert!(!id1.is_empty());
    assert_ne!(id1, id2);
    assert_eq!(first.json()["headers"]["x-request-id"], id1.as_str());

    let hop = get(&format!("{base}/v1/users/hop"), &[]).await;
    assert!(
        hop.header("x-secret-hop").is_none(),
        "upstream hop-by-hop header leaked"
    );
    gw.shutdown().await;
}

#[tokio::test]
async fn enforces_body_limit() {
    let users = TestUpstream::start("users").await;
    let gw = start_gateway(&routes(&users.url(), &users.url()), &[]).await;
    let url = format!("http://{}/v1/users", gw.proxy_addr);
    let ok = send(Method::POST, &url, &[], vec![b'a'; 1024]).await;
    assert_eq!(ok.status, StatusCode::OK);
    assert_eq!(ok.json()["body_len"], 1024);
    let too_big = send(Method::POST, &url, &[], vec![b'a'; 1025]).await;
    assert_eq!(too_big.status, StatusCode::PAYLOAD_TOO_LARGE);
    gw.shutdown().await;
}

#[tokio::test]
async fn upstream_down_gives_502_quickly() {
    let dead = closed_port().await;
    let yaml = format!(
        "routes:\n  - {{name: dead, pathPrefix: /, upstream: \"http://{dead}\", retries: 2}}\n"
    );
    let gw = start_gateway(&yaml, &[]).await;
    let started = Instant::now();
    let reply = get(&format!("http://{}/x", gw.proxy_addr), &[]).await;
    assert_eq!(reply.status, StatusCode::BAD_GATEWAY);
    assert!(
        started.elapsed() < Duration::from_secs(1),
        "took {:?}",
        started.elapsed()
    );
    assert_eq!(reply.json()["status"], 502);
    gw.shutdown().await;
}

#[tokio::test]
async fn slow_upstream_gives_504_at_the_route_timeout() {
    let users = TestUpstream::start("users").await;
    let yaml = format!(
        "upstreamTimeoutMs: 10000\nroutes:\n  - {{name: slow, pathPrefix: /, upstream: \"{}\", timeoutMs: 200}}\n",
        users.url()
    );
    let gw = start_gateway(&yaml, &[]).await;
    let started = Instant::now();
    let reply = get(&format!("http://{}/slow", gw.proxy_addr), &[]).await;
    assert_eq!(reply.status, StatusCode::GATEWAY_TIMEOUT);
    let elapsed = started.elapsed();
    assert!(
        elapsed >= Duration::from_millis(200) && elapsed < Duration::from_secs(2),
        "{elapsed:?}"
    );
    gw.shutdown().await;
}

#[tokio::test]
async fn retries_idempotent_requests_only() {
    let flaky = FlakyUpstream::start(1).await;
    let yaml = format!(
        "routes:\n  - {{name: flaky, pathPrefix: /, upstream: \"http://{}\", retries: 1}}\n",
        flaky.addr
    );
    let gw = start_gateway(&yaml, &[]).await;
    let url = format!("http://{}/thing", gw.proxy_addr);
    let reply = send(Method::PUT, &url, &[], "payload").await;
    assert_eq!(reply.status, StatusCode::OK, "idempotent PUT retried");
    assert_eq!(&reply.body[..], b"ok");
    assert_eq!(flaky.count(), 2);

    let flaky = FlakyUpstream::start(1).await;
    let yaml = format!(
        "routes:\n  - {{name: flaky, pathPrefix: /, upstream: \"http://{}\", retries: 1}}\n",
        flaky.addr
    );
    let gw2 = start_gateway(&yaml, &[]).await;
    let reply = send(
        Method::POST,
        &format!("http://{}/thing", gw2.proxy_addr),
        &[],
        "x",
    )
    .await;
    assert_eq!(
        reply.status,
        StatusCode::BAD_GATEWAY,
        "POST must not be retried"
    );
    assert_eq!(flaky.count(), 1);
    gw.shutdown().await;
    gw2.shutdown().await;
}

/// An upstream that refuses the first connection (a pod that closed its listener while the
/// Service still sent it traffic): the request was not sent, so even a POST goes to the next
/// connection, once.
#[tokio::test]
async fn a_refused_connection_is_dialled_again_for_every_method() {
    let port = closed_port().await;
    let yaml = format!(
        "routes:\n  - {{name: users, pathPrefix: /, upstream: \"http://{port}\", retries: 0}}\n"
    );
    let gw = start_gateway(&yaml, &[]).await;
    let url = format!("http://{}/orders", gw.proxy_addr);
    let listening = tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(10)).await;
        TestUpstream::start_on("users", port).await
    });
    let reply = send(Method::POST, &url, &[], "order").await;
    let users = listening.await.unwrap();
    assert_eq!(reply.status, StatusCode::OK, "{:?}", reply.body);
    assert_eq!(reply.json()["method"], "POST");
    assert_eq!(users.count(), 1, "the POST was sent once");
    gw.shutdown().await;
}

#[tokio::test]
async fn caches_get_responses_the_upstream_allows() {
    let users = TestUpstream::start("users").await;
    let yaml = format!(
        "routes:\n  - {{name: users, pathPrefix: /, upstream: \"{}\"}}\ncache: {{enabled: true, maxEntries: 100}}\n",
        users.url()
    );
    let gw = start_gateway(&yaml, &[]).await;
    let base = format!("http://{}", gw.proxy_addr);

    let first = get(&format!("{base}/cacheable"), &[]).await;
    let second = get(&format!("{base}/cacheable"), &[]).await;
    assert_eq!(first.header("x-cache"), Some("MISS"));
    assert_eq!(second.header("x-cache"), Some("HIT"));
    assert_eq!(first.body, second.body);
    assert!(second.header("age").is_some());
    assert_eq!(users.count(), 1);

    // Different query: different entry.
    get(&format!("{base}/cacheable?page=2"), &[]).await;
    assert_eq!(users.count(), 2);
    // Client asks for a fresh copy.
    get(
        &format!("{base}/cacheable"),
        &[("cache-control", "no-cache")],
    )
    .await;
    assert_eq!(users.count(), 3);
    // no-store and uncacheable methods go upstream every time.
    get(&format!("{base}/nostore"), &[]).await;
    get(&format!("{base}/nostore"), &[]).await;
    send(Method::POST, &format!("{base}/cacheable"), &[], "x").await;
    assert_eq!(users.count(), 6);
    gw.shutdown().await;
}

#[tokio::test]
async fn an_authorized_response_leaves_private_so_no_cdn_keeps_it() {
    let users = TestUpstream::start("users").await;
    let yaml = format!(
        "routes:\n  - {{name: users, pathPrefix: /, upstream: \"{}\"}}\ncache: {{enabled: true, maxEntries: 100}}\n",
        users.url()
    );
    let gw = start_gateway(&yaml, &[]).await;
    let url = format!("http://{}/cacheable", gw.proxy_addr);
    // The upstream says `public, max-age=60` to both.
    let anonymous = get(&url, &[]).await;
    assert_eq!(
        anonymous.header("cache-control"),
        Some("public, max-age=60")
    );
    let token = [("authorization", "Bearer a.b.c")];
    let authorized = get(&url, &token).await;
    assert_eq!(
        authorized.header("cache-control"),
        Some("private, max-age=60")
    );
    // Served from the gateway's cache, still private to the caches after it.
    let again = get(&url, &token).await;
    assert_eq!(again.header("x-cache"), Some("HIT"));
    assert_eq!(again.header("cache-control"), Some("private, max-age=60"));
    gw.shutdown().await;
}

#[tokio::test]
async fn admin_endpoints_and_metrics() {
    let users = TestUpstream::start("users").await;
    let gw = start_gateway(&routes(&users.url(), &users.url()), &[]).await;
    get(&format!("http://{}/v1/users/1", gw.proxy_addr), &[]).await;
    get(&format!("http://{}/nowhere", gw.proxy_addr), &[]).await;
    let admin = format!("http://{}", gw.admin_addr);
    assert_eq!(
        get(&format!("{admin}/healthz"), &[]).await.status,
        StatusCode::OK
    );
    assert_eq!(
        get(&format!("{admin}/readyz"), &[]).await.status,
        StatusCode::OK
    );
    let metrics = get(&format!("{admin}/metrics"), &[]).await;
    let text = String::from_utf8(metrics.body.to_vec()).unwrap();
    assert!(
        text.contains(r#"gateway_requests_total{route="users",method="GET",status="200"} 1"#),
        "{text}"
    );
    assert!(
        text.contains(r#"route="unmatched",method="GET",status="404""#),
        "{text}"
    );
    assert!(
        text.contains(r#"gateway_request_duration_seconds_bucket{le="#)
            || text.contains("gateway_request_duration_seconds_bucket{"),
        "{text}"
    );
    assert!(text.contains(r#"route="users",status="200""#), "{text}");
    gw.shutdown().await;
}

#[tokio::test]
async fn reload_swaps_routes_and_keeps_serving() {
    let users = TestUpstream::start("users").await;
    let orders = TestUpstream::start("orders").await;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("gateway.yaml");
    let write = |upstream: &str| {
        std::fs::write(
            &path,
            format!(
                "listen: \"127.0.0.1:0\"\nadminListen: \"127.0.0.1:0\"\nroutes:\n  - {{name: api, pathPrefix: /, upstream: \"{upstream}\"}}\n"
            ),
        )
        .unwrap()
    };
    let _ = tracing_subscriber::fmt().with_test_writer().try_init();
    write(&users.url());
    let config = panthera_gateway::GatewayConfig::load(&path).unwrap();
    let mut gw = panthera_gateway::RunningGateway::start(config, Default::default())
        .await
        .unwrap();
    gw.watch_config(path.clone(), Duration::from_millis(50));
    let url = format!("http://{}/x", gw.proxy_addr);
    assert_eq!(get(&url, &[]).await.json()["upstream"], "users");

    write(&orders.url());
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        if get(&url, &[]).await.json()["upstream"] == "orders" {
            break;
        }
        assert!(Instant::now() < deadline, "reload not applied");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // An invalid file keeps the last good configuration.
    std::fs::write(&path, "routes: [ {name: x, pathPrefix: nope} ]\n").unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(get(&url, &[]).await.json()["upstream"], "orders");
    let metrics = get(&format!("http://{}/metrics", gw.admin_addr), &[]).await;
    let text = String::from_utf8(metrics.body.to_vec()).unwrap();
    assert!(
        text.contains(r#"gateway_config_reloads_total{result="error"}"#),
        "{text}"
    );
    gw.shutdown().await;
}

#[tokio::test]
async fn graceful_shutdown_finishes_in_flight_requests() {
    let users = TestUpstream::start("users").await;
    let yaml = format!(
        "routes:\n  - {{name: api, pathPrefix: /, upstream: \"{}\"}}\n",
        users.url()
    );
    let gw = start_gateway(&yaml, &[]).await;
    let url = format!("http://{}/slow", gw.proxy_addr);
    let in_flight = tokio::spawn(async move { get(&url, &[]).await.status });
    tokio::time::sleep(Duration::from_millis(300)).await;
    let proxy_addr = gw.proxy_addr;
    gw.shutdown().await;
    assert_eq!(in_flight.await.unwrap(), StatusCode::OK);
    assert!(
        tokio::net::TcpStream::connect(proxy_addr).await.is_err(),
        "still accepting"
    );
}
