//! The client's real address behind trusted proxies: rate-limit buckets, the X-Forwarded-For
//! sent upstream, and what an untrusted peer's forwarding headers are worth (nothing).
// Test helpers outside #[test] functions: a failed setup step should abort the test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::*;
use http::StatusCode;
use panthera_gateway::RunningGateway;

/// A gateway in front of `upstream` with a bucket of 2 requests (refilled every 100 s), which
/// believes forwarding headers from `trusted` in `header`.
async fn gateway(upstream: &TestUpstream, trusted: &str, header: &str) -> RunningGateway {
    let yaml = format!(
        "routes:\n  - {{name: api, pathPrefix: /, upstream: \"{}\", public: true}}\n\
         rateLimit: {{requestsPerSecond: 0.01, burst: 2, key: ip}}\n\
         trustedProxies: [{trusted}]\nclientAddressHeader: {header}\n",
        upstream.url()
    );
    start_gateway(&yaml, &[]).await
}

/// The statuses of `n` requests with `headers`.
async fn statuses(gw: &RunningGateway, headers: &[(&str, &str)], n: usize) -> Vec<StatusCode> {
    let mut out = Vec::new();
    for _ in 0..n {
        out.push(
            get(&format!("http://{}/x", gw.proxy_addr), headers)
                .await
                .status,
        );
    }
    out
}

const OK: StatusCode = StatusCode::OK;
const LIMITED: StatusCode = StatusCode::TOO_MANY_REQUESTS;

#[tokio::test]
async fn clients_behind_a_trusted_proxy_get_buckets_of_their_own() {
    let upstream = TestUpstream::start("api").await;
    // The test client at 127.0.0.1 plays the ingress controller.
    let gw = gateway(&upstream, "127.0.0.1/32", "x-forwarded-for").await;
    let alice = [("x-forwarded-for", "203.0.113.1")];
    let bob = [("x-forwarded-for", "198.51.100.1, 203.0.113.2")];
    assert_eq!(statuses(&gw, &alice, 3).await, [OK, OK, LIMITED]);
    // Bob shares the proxy's address, not Alice's bucket (the TCP peer would be one key).
    assert_eq!(statuses(&gw, &bob, 3).await, [OK, OK, LIMITED]);

    // Upstream, the proxy's chain is extended with the proxy itself.
    let reply = get(
        &format!("http://{}/x", gw.proxy_addr),
        &[("x-forwarded-for", "192.0.2.9")],
    )
    .await;
    assert_eq!(reply.status, OK);
    assert_eq!(
        reply.json()["headers"]["x-forwarded-for"],
        "192.0.2.9, 127.0.0.1"
    );
    gw.shutdown().await;
}

#[tokio::test]
async fn an_untrusted_peer_cannot_choose_its_address() {
    let upstream = TestUpstream::start("api").await;
    // Trusted proxies elsewhere: the test client at 127.0.0.1 is just a client.
    let gw = gateway(&upstream, "10.0.0.0/8", "x-forwarded-for").await;
    let mut statuses = Vec::new();
    for spoofed in ["203.0.113.1", "203.0.113.2", "203.0.113.3"] {
        let headers = [("x-forwarded-for", spoofed), ("forwarded", "for=192.0.2.1")];
        let reply = get(&format!("http://{}/x", gw.proxy_addr), &headers).await;
        statuses.push(reply.status);
        if reply.status == OK {
            let sent = &reply.json()["headers"];
            // Replaced, not extended; and the other header is dropped too.
            assert_eq!(sent["x-forwarded-for"], "127.0.0.1");
            assert!(sent.get("forwarded").is_none(), "{sent}");
        }
    }
    // One bucket, whatever the header says.
    assert_eq!(statuses, [OK, OK, LIMITED]);
    gw.shutdown().await;
}

#[tokio::test]
async fn the_forwarded_header_is_read_when_the_proxy_writes_it() {
    let upstream = TestUpstream::start("api").await;
    let gw = gateway(&upstream, "127.0.0.1/32", "forwarded").await;
    let alice = [("forwarded", "for=203.0.113.1;proto=https")];
    // An X-Forwarded-For next to it is what the client sent through the proxy: ignored.
    let bob = [
        ("forwarded", "for=\"[2001:db8::2]:4711\""),
        ("x-forwarded-for", "203.0.113.1"),
    ];
    assert_eq!(statuses(&gw, &alice, 3).await, [OK, OK, LIMITED]);
    assert_eq!(statuses(&gw, &bob, 2).await, [OK, OK]);
    let reply = get(
        &format!("http://{}/x", gw.proxy_addr),
        &[
            ("forwarded", "for=192.0.2.9"),
            ("x-forwarded-for", "192.0.2.10"),
        ],
    )
    .await;
    let sent = &reply.json()["headers"];
    assert_eq!(sent["forwarded"], "for=192.0.2.9");
    assert_eq!(sent["x-forwarded-for"], "127.0.0.1");
    gw.shutdown().await;
}
