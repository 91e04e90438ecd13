//! The `panthera-gateway` binary traced to a real Jaeger (OTLP over HTTP): a request sampling
//! leaves out makes no span and goes upstream with an unsampled `traceparent` of a new trace;
//! a sampled one makes the server and upstream spans, in the trace the upstream is told about,
//! linked to the client's context, never continuing it.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::*;
use http::StatusCode;

const BIN: &str = env!("CARGO_BIN_EXE_panthera-gateway");
/// A client's context, sampled: the gateway must not let it decide or join its trace.
const CLIENT_TRACE: &str = "4bf92f3577b34da6a3ce929d0e0e4736";

fn jaeger() -> Option<(String, String)> {
    let otlp = std::env::var("PANTHERA_TEST_JAEGER_OTLP").ok();
    let query = std::env::var("PANTHERA_TEST_JAEGER_QUERY").ok();
    match (otlp, query) {
        (Some(otlp), Some(query)) if !otlp.is_empty() && !query.is_empty() => Some((otlp, query)),
        _ if std::env::var_os("CI").is_some() => {
            panic!(
                "PANTHERA_TEST_JAEGER_OTLP/_QUERY are not set but CI is: start Jaeger with scripts/test-services.sh"
            )
        }
        _ => {
            eprintln!("skipping: Jaeger is not running (scripts/test-services.sh start)");
            None
        }
    }
}

struct Traced {
    child: Child,
    port: u16,
    service: String,
    _dir: tempfile::TempDir,
}

impl Drop for Traced {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

async fn start(upstream: &TestUpstream, otlp: &str, ratio: &str) -> Traced {
    let (port, admin_port) = (free_port(), free_port());
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("gateway.yaml");
    std::fs::write(
        &path,
        format!(
            "listen: \"127.0.0.1:{port}\"\nadminListen: \"127.0.0.1:{admin_port}\"\nroutes:\n  - {{name: api, pathPrefix: /, upstream: \"{}\", public: true}}\n",
            upstream.url()
        ),
    )
    .unwrap();
    // A name of this run's own, so traces of other runs stay apart.
    let service = format!(
        "gateway-edge-{ratio}-{}",
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos()
    );
    let child = Command::new(BIN)
        .arg("--config")
        .arg(&path)
        .env("OTEL_EXPORTER_OTLP_ENDPOINT", otlp)
        .env("OTEL_SERVICE_NAME", &service)
        .env("OTEL_TRACES_SAMPLER", "parentbased_traceidratio")
        .env("OTEL_TRACES_SAMPLER_ARG", ratio)
        .env("OTEL_BSP_SCHEDULE_DELAY", "100")
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    wait_for_port(admin_port, "gateway").await;
    Traced {
        child,
        port,
        service,
        _dir: dir,
    }
}

/// The `traceparent` the upstream received, split into (trace id, parent id, flags).
async fn traceparent_sent_upstream(gateway: &Traced) -> (String, String, String) {
    let client = format!("00-{CLIENT_TRACE}-00f067aa0ba902b7-01");
    let reply = get(
        &format!("http://127.0.0.1:{}/items", gateway.port),
        &[
            ("traceparent", client.as_str()),
            ("tracestate", "vendor=client"),
        ],
    )
    .await;
    assert_eq!(reply.status, StatusCode::OK);
    let echoed = reply.json();
    assert!(
        echoed["headers"].get("tracestate").is_none(),
        "the client's tracestate went upstream: {echoed}"
    );
    let sent = echoed["headers"]["traceparent"]
        .as_str()
        .unwrap_or_else(|| panic!("no traceparent upstream: {echoed}"));
    let parts: Vec<&str> = sent.split('-').collect();
    assert_eq!(parts.len(), 4, "{sent}");
    assert_eq!(parts[0], "00", "{sent}");
    (
        parts[1].to_owned(),
        parts[2].to_owned(),
        parts[3].to_owned(),
    )
}

/// The traces Jaeger has of `service`, polled until `done` says they are complete or `wait`
/// is over.
async fn traces(
    query: &str,
    service: &str,
    wait: Duration,
    done: impl Fn(&[serde_json::Value]) -> bool,
) -> Vec<serde_json::Value> {
    let deadline = Instant::now() + wait;
    loop {
        let reply = get(
            &format!("{query}/api/traces?service={service}&limit=20"),
            &[],
        )
        .await;
        let found = if reply.status == StatusCode::OK {
            reply.json()["data"].as_array().cloned().unwrap_or_default()
        } else {
            Vec::new()
        };
        if done(&found) || Instant::now() >= deadline {
            return found;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test]
async fn a_request_sampling_leaves_out_makes_no_span_and_goes_upstream_unsampled() {
    let Some((otlp, query)) = jaeger() else {
        return;
    };
    let upstream = TestUpstream::start("api").await;

    // The control: at ratio 1 the spans arrive, so their absence below means something.
    let sampled = start(&upstream, &otlp, "1").await;
    let (trace_id, parent, flags) = traceparent_sent_upstream(&sampled).await;
    assert_eq!(flags, "01");
    assert_ne!(trace_id, CLIENT_TRACE, "the client's trace was continued");
    let found = traces(&query, &sampled.service, Duration::from_secs(15), |t| {
        t.iter()
            .any(|t| t["spans"].as_array().is_some_and(|s| s.len() >= 2))
    })
    .await;
    let trace = found
        .iter()
        .find(|t| t["traceID"] == trace_id.as_str())
        .unwrap_or_else(|| panic!("trace {trace_id} not in Jaeger: {found:?}"));
    let spans = trace["spans"].as_array().unwrap();
    let upstream_span = spans
        .iter()
        .find(|s| s["spanID"] == parent.as_str())
        .unwrap_or_else(|| panic!("the upstream's parent {parent} is not a span: {spans:?}"));
    assert_eq!(upstream_span["operationName"], "GET");
    let server = spans
        .iter()
        .find(|s| s["operationName"] == "GET /")
        .unwrap_or_else(|| panic!("no server span: {spans:?}"));
    let links: Vec<&serde_json::Value> = server["references"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["refType"] == "FOLLOWS_FROM")
        .collect();
    assert!(
        links.iter().any(|r| r["traceID"] == CLIENT_TRACE),
        "the client's context is not linked: {server}"
    );

    // Ratio 0: a new trace, unsampled, and nothing exported.
    let unsampled = start(&upstream, &otlp, "0").await;
    for _ in 0..5 {
        let (trace_id, _, flags) = traceparent_sent_upstream(&unsampled).await;
        assert_eq!(flags, "00", "an unsampled request went upstream sampled");
        assert_ne!(trace_id, CLIENT_TRACE, "the client's trace was continued");
    }
    let found = traces(&query, &unsampled.service, Duration::from_secs(2), |t| {
        !t.is_empty()
    })
    .await;
    assert!(found.is_empty(), "spans of unsampled requests: {found:?}");
}
