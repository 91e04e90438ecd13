//! The operator's traces: the real `panthera operator` against kube-sim with
//! `OTEL_EXPORTER_OTLP_ENDPOINT` pointing at the test Jaeger, over each OTLP protocol
//! (HTTP/protobuf and gRPC); one reconcile of a platform is one trace, its root named
//! `reconcile` with the platform, the pipeline's steps (docs/pipeline.md) its children.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code

mod common;

use std::time::Duration;

use common::operator::{Operator, crd, install_crd, namespace, ready_at_generation, wait_for};
use kube::api::{Api, PostParams};
use kube_sim::KubeSim;
use panthera::api::PantheraPlatform;
use panthera_e2e::jaeger::Jaeger;
use serde_json::json;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reconcile_is_one_trace_with_the_pipelines_steps() {
    let Some(otlp) = common::service("PANTHERA_TEST_JAEGER_OTLP") else {
        return;
    };
    reconcile_is_one_trace(&otlp, "http/protobuf").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reconcile_is_one_trace_over_otlp_grpc() {
    let Some(otlp) = common::service("PANTHERA_TEST_JAEGER_OTLP_GRPC") else {
        return;
    };
    reconcile_is_one_trace(&otlp, "grpc").await;
}

async fn reconcile_is_one_trace(otlp: &str, protocol: &str) {
    let Some(query) = common::service("PANTHERA_TEST_JAEGER_QUERY") else {
        return;
    };
    let sim = KubeSim::builder()
        .ready_delay(Duration::from_millis(100))
        .start()
        .await
        .expect("kube-sim starts");
    let client = sim.client().unwrap();
    install_crd(&client, &crd()).await;
    namespace(&client, "traced").await;
    // A name of this run's own, so traces of other runs stay apart.
    let service = format!(
        "panthera-operator-{}",
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos()
    );
    let operator = Operator::start_with_env(
        &sim,
        &["--no-leader-elect"],
        &[
            ("OTEL_EXPORTER_OTLP_ENDPOINT", otlp),
            ("OTEL_EXPORTER_OTLP_PROTOCOL", protocol),
            ("OTEL_SERVICE_NAME", service.as_str()),
            ("OTEL_BSP_SCHEDULE_DELAY", "100"),
        ],
    );
    let mut platform = panthera::load::load_file(&common::example("minimal")).unwrap();
    platform.metadata.name = Some("traced".into());
    platform.metadata.namespace = Some("traced".into());
    common::provide_secrets(&client, &platform).await;
    Api::<PantheraPlatform>::namespaced(client.clone(), "traced")
        .create(&PostParams::default(), &platform)
        .await
        .unwrap();
    wait_for(
        &client,
        "traced",
        "traced",
        "Ready",
        Duration::from_secs(30),
        || operator.logs(),
        ready_at_generation,
    )
    .await;

    // The reconcile that applied the platform: it has the write step.
    let trace = Jaeger::new(query)
        .find_trace(&service, "reconcile", |trace| {
            trace.spans.iter().any(|s| s["operationName"] == "apply")
        })
        .await;
    println!(
        "a reconcile's trace as Jaeger returns it ({protocol}):\n{}",
        trace.tree()
    );
    let root = trace.root();
    assert_eq!(root["operationName"], "reconcile");
    assert_eq!(trace.tag(root, "panthera.platform"), Some(&json!("traced")));
    assert_eq!(
        trace.tag(root, "k8s.namespace.name"),
        Some(&json!("traced"))
    );
    let mut children: Vec<_> = trace.children(root).collect();
    children.sort_by_key(|s| s["startTime"].as_i64().unwrap_or(0));
    let steps: Vec<&str> = children
        .iter()
        .filter_map(|s| s["operationName"].as_str())
        .collect();
    // Each phase's writes are a step of their own, named by the phase.
    assert!(
        children
            .iter()
            .filter(|s| s["operationName"] == "apply")
            .all(|s| trace.tag(s, "panthera.phase").is_some()),
        "an apply step without its phase: {children:?}"
    );
    for step in [
        "dereference",
        "preflight",
        "render",
        "decide",
        "apply",
        "report",
    ] {
        assert!(steps.contains(&step), "no `{step}` step in {steps:?}");
    }
    let position = |step: &str| steps.iter().position(|s| *s == step).unwrap();
    assert!(
        position("dereference") < position("render") && position("render") < position("decide"),
        "steps out of order: {steps:?}"
    );
}
