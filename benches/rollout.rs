//! Rollout benchmark on the real node (run with `scripts/bench.sh rollout`; not a test).
//!
//! Applies the shop of the real-node tests, drives steady load through the gateway's Service
//! (`PANTHERA_BENCH_RATE` requests per second, default 100, spread over reads and writes of users,
//! catalog and orders: a write is not idempotent, so the gateway may not retry it), then rolls
//! each workload in turn (`kubectl rollout restart`) and prints, per
//! rollout, the requests sent while it ran, the failed ones (a transport error or a 5xx) and the
//! p99 latency, beside the p99 of the steady load before it. The services are run twice: with the
//! drain they ship with, and with `SHUTDOWN_DELAY_SECONDS=0` (closing the listener at SIGTERM, as
//! they did before), so both figures come from one run.

// Measurement tooling built on the tests' helpers: a failed step is a failed run.
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "../tests/common/mod.rs"]
mod common;

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::node::{ADMIN_EMAIL, ADMIN_PASSWORD, RealNode, real_node, real_shop};
use panthera_e2e::{Gateway, Method, order_journey};
use serde_json::{Value, json};

/// One request of the load: when it was sent, how long it took, whether it failed.
#[derive(Clone)]
struct Sample {
    at: Instant,
    latency: Duration,
    /// `METHOD path: status or transport error` of a failed request.
    failure: Option<String>,
}

fn main() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(run());
}

async fn run() {
    let Some(node) = real_node() else {
        eprintln!(
            "rollout bench: no real node (PANTHERA_TEST_REAL_NODE); run scripts/bench.sh rollout"
        );
        std::process::exit(1);
    };
    let rate: u64 = std::env::var("PANTHERA_BENCH_RATE")
        .ok()
        .and_then(|r| r.parse().ok())
        .unwrap_or(100);
    println!("rollout of | requests | failed | p99 during (ms) | p99 steady (ms) | roll (s)");
    for (label, delay) in [("drain 5 s", None), ("no drain", Some("0"))] {
        let ns = node.namespace("bench").await;
        node.shop_secrets(&ns).await;
        let dir = tempfile::tempdir().unwrap();
        let file = real_shop(dir.path(), &ns);
        if let Some(delay) = delay {
            with_service_env(&file, "SHUTDOWN_DELAY_SECONDS", delay);
        }
        let applied = node
            .cluster
            .panthera(&[
                "apply",
                "-f",
                file.to_str().unwrap(),
                "--wait",
                "--timeout",
                "600s",
            ])
            .await;
        assert!(applied.status.success(), "{}", common::stderr(&applied));
        let gateway = Arc::new(Gateway::new(node.service_url(&ns, "shop-gateway").await));
        gateway.wait_answering(Duration::from_secs(30)).await;
        let admin = panthera_e2e::Admin {
            email: ADMIN_EMAIL,
            password: ADMIN_PASSWORD,
        };
        let journey = order_journey(&gateway, &admin, "bench").await;
        let customer = gateway
            .token(&journey.customer_email, panthera_e2e::PASSWORD)
            .await;
        let admin_token = gateway.token(ADMIN_EMAIL, ADMIN_PASSWORD).await;
        // Enough stock that the orders of the run never run out.
        let product = format!("/v1/products/{}", journey.product_id);
        let (status, _) = gateway
            .send(
                Method::PUT,
                &format!("{product}/stock"),
                Some(&admin_token),
                Some(json!({"available": 1_000_000})),
            )
            .await;
        assert!(status.is_success(), "stocking the product: {status}");
        let user = format!("/v1/users/{}", journey.customer_id);
        let routes: Arc<Vec<Request>> = Arc::new(vec![
            (Method::GET, user.clone(), customer.clone(), None),
            (
                Method::PATCH,
                user,
                customer.clone(),
                Some(json!({"lastName": "Rollout"})),
            ),
            (Method::GET, product.clone(), customer.clone(), None),
            (
                Method::PATCH,
                product,
                admin_token,
                Some(json!({"description": "rolled"})),
            ),
            (
                Method::GET,
                format!("/v1/orders/{}", journey.order_id),
                customer.clone(),
                None,
            ),
            (
                Method::POST,
                "/v1/orders".to_string(),
                customer,
                Some(json!({"items": [{"productId": journey.product_id, "quantity": 1}]})),
            ),
        ]);

        for workload in ["users", "catalog", "orders", "gateway"] {
            let samples = Arc::new(Mutex::new(Vec::new()));
            let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
            let load = tokio::spawn(drive(
                Arc::clone(&gateway),
                Arc::clone(&routes),
                rate,
                Arc::clone(&samples),
                Arc::clone(&stop),
            ));
            // Steady load first, then the roll, then until the new pods have settled.
            tokio::time::sleep(Duration::from_secs(10)).await;
            let rolled = Instant::now();
            roll(&node, &ns, workload).await;
            let took = rolled.elapsed();
            tokio::time::sleep(Duration::from_secs(10)).await;
            stop.store(true, std::sync::atomic::Ordering::Release);
            load.await.unwrap();
            let samples = samples.lock().unwrap().clone();
            let (steady, during): (Vec<Sample>, Vec<Sample>) =
                samples.into_iter().partition(|s| s.at < rolled);
            let failures: Vec<&String> = during.iter().filter_map(|s| s.failure.as_ref()).collect();
            println!(
                "{workload} ({label}) | {} | {} | {:.1} | {:.1} | {:.0}",
                during.len(),
                failures.len(),
                p99(&during),
                p99(&steady),
                took.as_secs_f64()
            );
            for failure in failures.iter().take(5) {
                println!("    failed: {failure}");
            }
        }
        let _ = node
            .cluster
            .kubectl(&["delete", "namespace", &ns, "--wait=false"]);
    }
}

/// One request of the mix: method, path, bearer token, JSON body.
type Request = (Method, String, String, Option<Value>);

/// `rate` requests per second over `routes`, each on its own task, until `stop`.
async fn drive(
    gateway: Arc<Gateway>,
    routes: Arc<Vec<Request>>,
    rate: u64,
    samples: Arc<Mutex<Vec<Sample>>>,
    stop: Arc<std::sync::atomic::AtomicBool>,
) {
    let mut tick = tokio::time::interval(Duration::from_micros(1_000_000 / rate.max(1)));
    let mut sent = 0usize;
    let mut tasks = Vec::new();
    while !stop.load(std::sync::atomic::Ordering::Acquire) {
        tick.tick().await;
        let (method, path, token, body) = routes[sent % routes.len()].clone();
        sent += 1;
        let (gateway, samples) = (Arc::clone(&gateway), Arc::clone(&samples));
        tasks.push(tokio::spawn(async move {
            let at = Instant::now();
            let outcome = gateway
                .try_send(method.clone(), &path, Some(&token), body.as_ref())
                .await;
            let failure = match outcome {
                Ok(status) if !status.is_server_error() => None,
                Ok(status) => Some(format!("{method} {path}: {status}")),
                Err(error) => Some(format!("{method} {path}: {error}")),
            };
            samples.lock().unwrap().push(Sample {
                at,
                latency: at.elapsed(),
                failure,
            });
        }));
    }
    for task in tasks {
        let _ = task.await;
    }
}

/// `kubectl rollout restart` of the workload, then its rollout status.
async fn roll(node: &RealNode, namespace: &str, workload: &str) {
    let deployment = format!("deployment/shop-{workload}");
    let restart = node
        .cluster
        .kubectl(&["rollout", "restart", "-n", namespace, &deployment]);
    assert!(restart.status.success(), "{}", common::stderr(&restart));
    let status = tokio::task::spawn_blocking({
        let kubeconfig = node.cluster.kubeconfig.clone();
        let namespace = namespace.to_string();
        move || {
            std::process::Command::new("kubectl")
                .arg("--kubeconfig")
                .arg(kubeconfig)
                .args([
                    "rollout",
                    "status",
                    "-n",
                    &namespace,
                    &deployment,
                    "--timeout",
                    "300s",
                ])
                .output()
                .unwrap()
        }
    })
    .await
    .unwrap();
    assert!(status.status.success(), "{}", common::stderr(&status));
}

fn p99(samples: &[Sample]) -> f64 {
    let mut latencies: Vec<Duration> = samples.iter().map(|s| s.latency).collect();
    if latencies.is_empty() {
        return 0.0;
    }
    latencies.sort();
    let index = (latencies.len() * 99).div_ceil(100).saturating_sub(1);
    latencies[index].as_secs_f64() * 1000.0
}

/// Adds `name=value` to every service's `env` in the platform file.
fn with_service_env(file: &std::path::Path, name: &str, value: &str) {
    let mut shop: Value = serde_json::from_str(&std::fs::read_to_string(file).unwrap()).unwrap();
    for service in shop["spec"]["services"].as_array_mut().unwrap() {
        let mut env = service["env"].as_array().cloned().unwrap_or_default();
        env.push(json!({"name": name, "value": value}));
        service["env"] = json!(env);
    }
    std::fs::write(file, serde_json::to_string_pretty(&shop).unwrap()).unwrap();
}
