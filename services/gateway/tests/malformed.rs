//! No panic on malformed input: property tests over raw HTTP requests (paths, headers, bodies),
//! config text and tokens. Panics inside connection tasks would be swallowed by tokio, so a panic
//! hook counts them and the tests assert the count stays zero.
// Test helpers outside #[test] functions: a failed setup step should abort the test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use common::*;
use panthera_gateway::GatewayConfig;
use proptest::prelude::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

static PANICS: AtomicUsize = AtomicUsize::new(0);

fn count_panics() {
    let previous = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        PANICS.fetch_add(1, Ordering::SeqCst);
        previous(info);
    }));
}

/// Sends raw bytes and returns the status line's code, if any response came back.
async fn raw(addr: std::net::SocketAddr, bytes: &[u8]) -> Option<u16> {
    let mut stream = tokio::net::TcpStream::connect(addr).await.ok()?;
    stream.write_all(bytes).await.ok()?;
    let _ = stream.shutdown().await;
    let mut response = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(5), stream.read_to_end(&mut response)).await;
    let text = String::from_utf8_lossy(&response);
    text.strip_prefix("HTTP/1.1 ")?.get(..3)?.parse().ok()
}

fn header_name() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("authorization".to_owned()),
        Just("content-length".to_owned()),
        Just("transfer-encoding".to_owned()),
        Just("connection".to_owned()),
        Just("x-request-id".to_owned()),
        Just("x-forwarded-for".to_owned()),
        Just("host".to_owned()),
        Just("origin".to_owned()),
        Just("cache-control".to_owned()),
        "[a-zA-Z0-9!#$%&'*+.^_`|~-]{1,20}",
        "[\\x00-\\xff]{0,10}",
    ]
}

fn header_value() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("Bearer ".to_owned()),
        Just("Bearer a.b.c".to_owned()),
        Just("Bearer eyJhbGciOiJub25lIn0.e30.".to_owned()),
        Just("-1".to_owned()),
        Just("99999999999999999999999".to_owned()),
        Just("chunked".to_owned()),
        Just("close, x-a".to_owned()),
        "[ -~]{0,40}",
        "[\\x00-\\xff]{0,20}",
    ]
}

fn path() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("/".to_owned()),
        Just("*".to_owned()),
        Just("/v1/api/../../etc/passwd".to_owned()),
        Just("http://evil.example.com/v1/api".to_owned()),
        Just("/v1/api?%zz=%".to_owned()),
        "/v1/api[ -~]{0,60}",
        "/[\\x21-\\x7e]{0,60}",
        "[\\x00-\\xff]{0,30}",
    ]
}

fn method() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("GET".to_owned()),
        Just("POST".to_owned()),
        Just("PUT".to_owned()),
        Just("OPTIONS".to_owned()),
        Just("CONNECT".to_owned()),
        "[A-Z]{1,12}",
        "[\\x00-\\xff]{0,8}",
    ]
}

fn request() -> impl Strategy<Value = Vec<u8>> {
    (
        method(),
        path(),
        prop_oneof![
            Just("HTTP/1.1"),
            Just("HTTP/1.0"),
            Just("HTTP/2.0"),
            Just("HTTP/9")
        ],
        proptest::collection::vec((header_name(), header_value()), 0..8),
        proptest::collection::vec(any::<u8>(), 0..64),
    )
        .prop_map(|(method, path, version, headers, body)| {
            let mut bytes = format!("{method} {path} {version}\r\n").into_bytes();
            for (name, value) in headers {
                bytes.extend_from_slice(name.as_bytes());
                bytes.extend_from_slice(b": ");
                bytes.extend_from_slice(value.as_bytes());
                bytes.extend_from_slice(b"\r\n");
            }
            bytes.extend_from_slice(b"\r\n");
            bytes.extend_from_slice(&body);
            bytes
        })
}

#[test]
fn malformed_requests_never_panic_the_gateway() {
    count_panics();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let (gw, upstream_count) = runtime.block_on(async {
        let upstream = TestUpstream::start("api").await;
        let yaml = format!(
            r#"
maxBodyBytes: 32
routes:
  - {{name: api, pathPrefix: /v1/api, upstream: "{}", retries: 1}}
auth:
  jwt: {{issuer: https://i, audiences: [a], hs256SecretEnv: S}}
rateLimit: {{requestsPerSecond: 100000, burst: 100000}}
cors: {{allowedOrigins: ["*"], allowedHeaders: ["*"]}}
cache: {{enabled: true, maxEntries: 10}}
"#,
            upstream.url()
        );
        let gw = start_gateway(&yaml, &[("S", "secret")]).await;
        (gw, upstream.requests.clone())
    });
    let addr = gw.proxy_addr;
    let mut runner = proptest::test_runner::TestRunner::new(ProptestConfig {
        cases: 300,
        ..ProptestConfig::default()
    });
    runner
        .run(&request(), |bytes| {
            let status = runtime.block_on(raw(addr, &bytes));
            if let Some(status) = status {
                // The gateway itself never answers 5xx to a malformed request except when the
                // upstream is involved (502/504 are upstream failures, not crashes).
                prop_assert!(
                    status != 500,
                    "500 for {:?}",
                    String::from_utf8_lossy(&bytes)
                );
            }
            Ok(())
        })
        .unwrap();
    assert_eq!(
        PANICS.load(Ordering::SeqCst),
        0,
        "a request handler panicked"
    );
    // Still healthy and still proxying.
    runtime.block_on(async {
        let health = get(&format!("http://{}/healthz", gw.admin_addr), &[]).await;
        assert_eq!(health.status, http::StatusCode::OK);
        let before = upstream_count.load(Ordering::SeqCst);
        let reply = get(&format!("http://{addr}/v1/api/ok"), &[]).await;
        assert_eq!(reply.status, http::StatusCode::UNAUTHORIZED);
        assert_eq!(upstream_count.load(Ordering::SeqCst), before);
        gw.shutdown().await;
    });
}

proptest! {
    #[test]
    fn config_parser_never_panics(text in "[ -~\\n]{0,200}") {
        let _ = GatewayConfig::from_yaml(&text);
    }

    #[test]
    fn config_parser_never_panics_on_near_valid_yaml(
        prefix in "[ -~]{0,20}",
        upstream in "[ -~]{0,30}",
        rps in proptest::num::f64::ANY,
        burst in any::<u32>(),
    ) {
        let text = format!(
            "routes:\n  - {{name: a, pathPrefix: \"/{prefix}\", upstream: \"{upstream}\"}}\nrateLimit: {{requestsPerSecond: {rps}, burst: {burst}}}\n"
        );
        if let Ok(config) = GatewayConfig::from_yaml(&text) {
            // Whatever validates must also build.
            prop_assert!(panthera_gateway::routing::RouteTable::from_config(&config).is_ok());
        }
    }

    #[test]
    fn route_lookup_and_rewrite_never_panic(path in "[\\x00-\\x7f]{0,80}", query in proptest::option::of("[ -~]{0,20}")) {
        let config = GatewayConfig::from_yaml(
            "routes:\n  - {name: a, pathPrefix: /a/, upstream: 'http://x/base', stripPrefix: true}\n  - {name: r, pathPrefix: /, upstream: 'http://y'}\n",
        ).unwrap();
        let table = panthera_gateway::routing::RouteTable::from_config(&config).unwrap();
        if let Some(route) = table.find(&path) {
            let _ = route.upstream_path_and_query(&path, query.as_deref());
        }
    }

    #[test]
    fn bearer_parsing_never_panics(value in "[\\x00-\\xff]{0,100}") {
        let mut headers = http::HeaderMap::new();
        if let Ok(value) = http::HeaderValue::from_bytes(value.as_bytes()) {
            headers.insert(http::header::AUTHORIZATION, value);
        }
        let _ = panthera_gateway::auth::bearer_token(&headers);
    }
}
