//! The shop on a real node: `panthera apply --wait` until every pod is Running and Ready by its
//! own probes, under Pod Security `enforce=restricted`, from images built by `scripts/images.sh`;
//! then the shop's journey through the gateway's Service (every hop a real pod over Service DNS),
//! a product image uploaded to the bucket in the cluster with a form the catalog signs,
//! the PostgreSQL pod killed and brought back, `destroy` keeping the data, and the same platform
//! through the operator. Started by `scripts/test.sh` (control plane, node, images).

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code

mod common;

use std::process::Output;
use std::time::{Duration, Instant, SystemTime};

use common::node::{
    ADMIN_EMAIL, ADMIN_PASSWORD, RealNode, nodes_of, ready_after, real_node, real_shop, restarts,
};
use common::{stderr, stdout};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{Namespace, Pod};
use kube::api::{Api, DeleteParams};
use panthera::api::PantheraPlatform;
use panthera_e2e::{Admin, Gateway, Method, StatusCode, order_journey};

/// One shop at a time: two on two cores would measure contention, not Panthera.
static ONE_SHOP: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// Deletes the namespaces, so the next test has the node to itself.
async fn clean_up(node: &RealNode, namespaces: &[&str]) {
    let api: Api<Namespace> = Api::all(node.cluster.client().await);
    for namespace in namespaces {
        let _ = api.delete(namespace, &DeleteParams::default()).await;
    }
}

fn ok(what: &str, o: &Output) {
    assert!(o.status.success(), "{what}: {}{}", stdout(o), stderr(o));
}

/// What a user would look at when a platform does not come up: each pod's phase and container
/// states, the last words of a restarted container and the log tail of one that is not ready,
/// and the namespace's warning events.
fn explain_pods(node: &RealNode, namespace: &str, pods: &[Pod]) {
    for pod in pods {
        let name = pod.metadata.name.clone().unwrap_or_default();
        let status = pod.status.clone().unwrap_or_default();
        eprintln!("{name}: {:?}", status.phase);
        for container in status.container_statuses.unwrap_or_default() {
            eprintln!(
                "  {}: ready {}, restarts {}, state {:?}",
                container.name, container.ready, container.restart_count, container.state
            );
            let tail = |previous: bool| {
                let mut args = vec!["logs", "-n", namespace, &name, "-c", &container.name];
                if previous {
                    args.push("--previous");
                }
                args.extend(["--tail", "30"]);
                let logs = node.cluster.kubectl(&args);
                eprintln!(
                    "  {}{}:\n{}",
                    container.name,
                    if previous { " (previous)" } else { "" },
                    stdout(&logs)
                );
            };
            if container.restart_count > 0 {
                tail(true);
            }
            if !container.ready {
                tail(false);
            }
        }
    }
    let events = node.cluster.kubectl(&[
        "get",
        "events",
        "-n",
        namespace,
        "--field-selector",
        "type=Warning",
        "--sort-by",
        ".lastTimestamp",
    ]);
    eprintln!("warning events in {namespace}:\n{}", stdout(&events));
}

/// `apply --wait`, timed; prints the per-component figures.
async fn apply(node: &RealNode, file: &str, namespace: &str) -> Duration {
    let started = (Instant::now(), SystemTime::now());
    let applied = node
        .cluster
        .panthera(&["apply", "-f", file, "--wait", "--timeout", "600s"])
        .await;
    let took = started.0.elapsed();
    let pods = node.pods(namespace).await;
    if !applied.status.success() {
        explain_pods(node, namespace, &pods);
    }
    ok("apply --wait", &applied);
    eprintln!("apply --wait: {:.1} s", took.as_secs_f64());
    for (component, seconds) in ready_after(&pods, started.1) {
        eprintln!("  {component}: Ready {seconds:.0} s after apply");
    }
    took
}

/// Every pod of the namespace is on the real node and, but for finished Jobs, Running and Ready.
fn assert_all_ready_on(node: &RealNode, pods: &[Pod]) {
    assert!(!pods.is_empty());
    for (pod, on) in nodes_of(pods) {
        assert_eq!(on, node.name, "{pod} runs on {on}");
    }
    for pod in pods {
        let phase = pod.status.as_ref().and_then(|s| s.phase.clone());
        if phase.as_deref() == Some("Succeeded") {
            continue;
        }
        assert!(
            phase.as_deref() == Some("Running") && common::node::is_ready(pod),
            "{:?} is {phase:?}, not Ready: {:?}",
            pod.metadata.name,
            pod.status
        );
    }
}

/// Named `real_node::...`: `scripts/test.sh` runs these beside the rest of the suite.
mod real_node {
    use super::*;

    /// Each probe failure mode the day-2 issue found, on the real node.
    mod probes;

    /// The catalog's images in the bucket in the cluster.
    mod images;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_shop_runs_on_a_real_node_from_apply_to_a_shipped_order() {
        let Some(node) = real_node() else {
            return;
        };
        let _one = ONE_SHOP.lock().await;
        let ns = node.namespace("shop").await;
        node.shop_secrets(&ns).await;
        let dir = tempfile::tempdir().unwrap();
        let file = real_shop(dir.path(), &ns);
        let file = file.to_str().unwrap();

        apply(&node, file, &ns).await;
        let pods = node.pods(&ns).await;
        assert_all_ready_on(&node, &pods);

        // The journey, through the gateway's ClusterIP; every hop behind it is a pod over Service DNS.
        let gateway = Gateway::new(node.service_url(&ns, "shop-gateway").await);
        gateway.wait_answering(Duration::from_secs(30)).await;
        let admin = Admin {
            email: ADMIN_EMAIL,
            password: ADMIN_PASSWORD,
        };
        let journey = order_journey(&gateway, &admin, "real").await;
        let started = Instant::now();
        let admin_token = gateway.token(ADMIN_EMAIL, ADMIN_PASSWORD).await;
        images::a_product_image_goes_through_the_cluster_bucket(
            &node,
            &ns,
            &gateway,
            &admin_token,
            &journey.product_id,
        )
        .await;
        eprintln!(
            "a product image through the cluster bucket in {:.1} s",
            started.elapsed().as_secs_f64()
        );
        for exchange in gateway.exchanges() {
            eprintln!("  {exchange}");
        }

        // An attacker in the cluster, where nothing enforces NetworkPolicy (this node's bridge
        // does not): forged identity headers straight to the users Service, around the
        // gateway, are refused, the customer's record stays unread.
        let users = Gateway::new(node.service_url(&ns, "shop-users").await);
        let (status, _, body) = users
            .call(
                Method::GET,
                &format!("/v1/users/{}", journey.customer_id),
                None,
                &[
                    ("x-panthera-subject", "attacker"),
                    ("x-panthera-roles", "admin"),
                    ("x-panthera-scopes", ""),
                ],
                None,
            )
            .await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");
        assert!(body.get("email").is_none(), "{body}");

        // Kill the database that catalog and orders share: the StatefulSet brings it back on its
        // volume, and the services recover without a restart of their own.
        let before = restarts(&node.pods(&ns).await);
        let pods: Api<Pod> = Api::namespaced(node.cluster.client().await, &ns);
        let victim = pods.get("shop-db-orders-0").await.unwrap();
        pods.delete("shop-db-orders-0", &DeleteParams::default())
            .await
            .unwrap();
        let back = node
            .wait_pod_replaced(
                &ns,
                "shop-db-orders-0",
                victim.metadata.uid.as_deref().unwrap(),
            )
            .await;
        eprintln!(
            "PostgreSQL pod back and Ready in {:.1} s",
            back.as_secs_f64()
        );
        let customer = gateway
            .token(&journey.customer_email, panthera_e2e::PASSWORD)
            .await;
        let order_path = format!("/v1/orders/{}", journey.order_id);
        let started = Instant::now();
        let (status, order) = loop {
            let (status, order) = gateway
                .send(Method::GET, &order_path, Some(&customer), None)
                .await;
            if status == StatusCode::OK || started.elapsed() > Duration::from_secs(90) {
                break (status, order);
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        };
        assert_eq!(
            (status, order["status"].as_str()),
            (StatusCode::OK, Some("shipped"))
        );
        eprintln!(
            "the order read back {:.1} s after the database was Ready",
            started.elapsed().as_secs_f64()
        );
        // Pods that were there before (the HPA may add some meanwhile) have not restarted.
        let after = restarts(&node.pods(&ns).await);
        for (container, count) in &before {
            if container.starts_with("shop-db-orders-0/") {
                continue;
            }
            assert_eq!(
                after.get(container),
                Some(count),
                "{container} restarted (or went away) while the database was away"
            );
        }

        // `destroy` keeps the data by default: applied again, the customer is still there.
        ok(
            "destroy",
            &node
                .cluster
                .panthera(&["destroy", "shop", "-n", &ns, "--yes"])
                .await,
        );
        apply(&node, file, &ns).await;
        assert_all_ready_on(&node, &node.pods(&ns).await);
        let gateway = Gateway::new(node.service_url(&ns, "shop-gateway").await);
        gateway.wait_answering(Duration::from_secs(30)).await;
        let token = gateway
            .token(&journey.customer_email, panthera_e2e::PASSWORD)
            .await;
        let (status, me) = gateway
            .send(
                Method::GET,
                &format!("/v1/users/{}", journey.customer_id),
                Some(&token),
                None,
            )
            .await;
        assert_eq!(
            (status, me["email"].as_str()),
            (StatusCode::OK, Some(journey.customer_email.as_str()))
        );
        clean_up(&node, &[&ns]).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_operator_runs_in_a_pod_and_brings_the_shop_to_ready() {
        let Some(node) = real_node() else {
            return;
        };
        let _one = ONE_SHOP.lock().await;
        let ns = node.namespace("shop-op").await;
        let system = node.namespace("shop-op-system").await;
        let installed = node
            .cluster
            .panthera(&[
                "install",
                "-n",
                &system,
                "--watch-namespace",
                &ns,
                "--replicas",
                "1",
            ])
            .await;
        ok("install", &installed);
        node.shop_secrets(&ns).await;
        let dir = tempfile::tempdir().unwrap();
        let file = real_shop(dir.path(), &ns);

        // The CR as a GitOps controller would apply it.
        let started = Instant::now();
        ok(
            "kubectl apply",
            &node
                .cluster
                .kubectl(&["apply", "--server-side", "-f", file.to_str().unwrap()]),
        );
        let platforms: Api<PantheraPlatform> = Api::namespaced(node.cluster.client().await, &ns);
        loop {
            let platform = platforms.get("shop").await.unwrap();
            let generation = platform.metadata.generation;
            let status = platform.status.clone().unwrap_or_default();
            let ready = status
                .conditions
                .iter()
                .any(|c| c.type_ == "Ready" && c.status == panthera::api::ConditionStatus::True);
            if ready && status.observed_generation == generation {
                break;
            }
            if started.elapsed() > Duration::from_secs(600) {
                explain_pods(&node, &ns, &node.pods(&ns).await);
                let operator = node.cluster.kubectl(&[
                    "logs",
                    "-n",
                    &system,
                    "deployment/panthera-operator",
                    "--tail",
                    "40",
                ]);
                panic!(
                    "the shop never became Ready through the operator: {:?}\n{}",
                    platform.status,
                    stdout(&operator)
                );
            }
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
        eprintln!(
            "through the operator: Ready with a current observedGeneration in {:.1} s",
            started.elapsed().as_secs_f64()
        );
        // The operator itself runs in a pod on the node, and so does every pod of the shop.
        let operators: Api<Deployment> = Api::namespaced(node.cluster.client().await, &system);
        let operator = operators.get("panthera-operator").await.unwrap();
        assert_eq!(operator.status.and_then(|s| s.ready_replicas), Some(1));
        assert_all_ready_on(&node, &node.pods(&system).await);
        assert_all_ready_on(&node, &node.pods(&ns).await);

        // The gateway answers through its Service.
        let gateway = Gateway::new(node.service_url(&ns, "shop-gateway").await);
        gateway.wait_answering(Duration::from_secs(30)).await;
        gateway.token(ADMIN_EMAIL, ADMIN_PASSWORD).await;

        // Deleting the CR tears the platform down through the operator's finalizer.
        let deleted = node.cluster.kubectl(&[
            "delete",
            "pantheraplatform",
            "shop",
            "-n",
            &ns,
            "--wait",
            "--timeout",
            "300s",
        ]);
        ok("kubectl delete", &deleted);
        clean_up(&node, &[&ns, &system]).await;
    }
}
