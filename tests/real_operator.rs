//! The real `panthera operator` process on a real control plane, running as its ServiceAccount
//! on nothing but the RBAC that `panthera install` grants. Writes and their order are read from
//! the API server's audit log. Each test installs its own operator watching its own namespace.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code

mod common;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use common::cluster::{RealCluster, real_cluster};
use common::operator::{Operator, children, planned, ready_at_generation, wait_for};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::coordination::v1::Lease;
use kube::api::{Api, DeleteParams, Patch, PatchParams, PostParams};
use panthera::api::{ComponentKind, ConditionStatus, PantheraPlatform};
use serde_json::json;

const TIMEOUT: Duration = Duration::from_secs(180);

fn shop(namespace: &str) -> PantheraPlatform {
    let mut p = panthera::load::load_file(&common::example("shop")).unwrap();
    p.metadata.namespace = Some(namespace.into());
    p
}

fn minimal(namespace: &str) -> PantheraPlatform {
    let mut p = panthera::load::load_file(&common::example("minimal")).unwrap();
    p.metadata.namespace = Some(namespace.into());
    p
}

/// `panthera install` of an operator in `{namespace}-system` that watches `namespace` only,
/// and a kubeconfig of its ServiceAccount.
async fn install(cluster: &RealCluster, dir: &Path, namespace: &str) -> (String, PathBuf) {
    let system = format!("{namespace}-system");
    let o = cluster
        .panthera(&[
            "install",
            "-n",
            &system,
            "--watch-namespace",
            namespace,
            "--replicas",
            "1",
        ])
        .await;
    assert!(o.status.success(), "{}", common::stderr(&o));
    let kubeconfig = cluster.service_account_kubeconfig(dir, &system, "panthera-operator");
    (system, kubeconfig)
}

async fn wait_until<F, Fut>(what: &str, logs: impl Fn() -> String, check: F)
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let started = Instant::now();
    while !check().await {
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "{what} did not happen:\n{}",
            logs()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_operator_on_its_installed_rbac_reconciles_restores_drift_and_tears_down_in_order() {
    let Some(cluster) = real_cluster() else {
        return;
    };
    let ns = cluster.namespace("op").await;
    let dir = tempfile::tempdir().unwrap();
    let (system, kubeconfig) = install(&cluster, dir.path(), &ns).await;
    let user = format!("system:serviceaccount:{system}:panthera-operator");
    let operator = Operator::start_as(
        &kubeconfig,
        &[
            "--lease-namespace",
            &system,
            "--watch-namespace",
            &ns,
            "--resync",
            "3s",
        ],
        &[],
    );
    let logs = || operator.logs();
    let admin = cluster.client().await;
    let platforms: Api<PantheraPlatform> = Api::namespaced(admin.clone(), &ns);
    let platform = shop(&ns);
    common::provide_secrets(&admin, &platform).await;
    platforms
        .create(&PostParams::default(), &platform)
        .await
        .unwrap();

    // The status contract at generation 1.
    let ready = wait_for(
        &admin,
        &ns,
        "shop",
        "Ready",
        TIMEOUT,
        logs,
        ready_at_generation,
    )
    .await;
    let status = ready.status.clone().unwrap();
    assert_eq!(status.observed_generation, Some(1));
    for (type_, want) in [
        ("Ready", ConditionStatus::True),
        ("Reconciling", ConditionStatus::False),
        ("Stalled", ConditionStatus::False),
    ] {
        let c = status.conditions.iter().find(|c| c.type_ == type_).unwrap();
        assert_eq!(c.status, want, "{type_}: {c:?}");
        assert_eq!(c.observed_generation, Some(1));
        assert!(c.last_transition_time.is_some());
    }
    // 10: with the object server and the bucket in the cluster, each reported as its own.
    assert_eq!(status.components.len(), 10, "{:#?}", status.components);
    assert!(status.components.iter().all(|c| c.ready));
    let kinds: Vec<ComponentKind> = status.components.iter().map(|c| c.kind).collect();
    assert!(kinds.contains(&ComponentKind::Objects) && kinds.contains(&ComponentKind::Bucket));
    assert_eq!(children(&admin, &ns, "shop").await, planned(&platform));

    // Resyncs every 3 s find nothing to do and write nothing (canonical quantities, defaults).
    let mark = cluster.mark();
    tokio::time::sleep(Duration::from_secs(8)).await;
    let writes: Vec<String> = cluster
        .writes_by(mark, &ns, &user)
        .await
        .iter()
        .map(ToString::to_string)
        .collect();
    assert!(writes.is_empty(), "a no-op resync wrote: {writes:#?}");

    // Drift is put back: a deleted Deployment, and a replica count edited by hand.
    let deployments: Api<Deployment> = Api::namespaced(admin.clone(), &ns);
    deployments
        .delete("shop-users", &DeleteParams::default())
        .await
        .unwrap();
    wait_until("shop-users comes back", logs, || async {
        deployments
            .get_opt("shop-users")
            .await
            .unwrap()
            .is_some_and(|d| d.metadata.deletion_timestamp.is_none())
    })
    .await;
    deployments
        .patch(
            "shop-catalog",
            &PatchParams::default(),
            &Patch::Merge(
                json!({"spec": {"template": {"spec": {"terminationGracePeriodSeconds": 7}}}}),
            ),
        )
        .await
        .unwrap();
    wait_until("the hand edit is reverted", logs, || async {
        deployments
            .get("shop-catalog")
            .await
            .unwrap()
            .spec
            .unwrap()
            .template
            .spec
            .unwrap()
            .termination_grace_period_seconds
            != Some(7)
    })
    .await;

    // A spec change: generation 2 observed, the child changed.
    platforms
        .patch(
            "shop",
            &PatchParams::default(),
            &Patch::Json::<()>(
                serde_json::from_value(
                    json!([{"op": "replace", "path": "/spec/services/0/replicas", "value": 3}]),
                )
                .unwrap(),
            ),
        )
        .await
        .unwrap();
    wait_for(
        &admin,
        &ns,
        "shop",
        "Ready at generation 2",
        TIMEOUT,
        logs,
        |p| p.metadata.generation == Some(2) && ready_at_generation(p),
    )
    .await;
    assert_eq!(
        deployments
            .get("shop-users")
            .await
            .unwrap()
            .spec
            .unwrap()
            .replicas,
        Some(3)
    );

    // Deletion: the finalizer tears down the gateway, then the services, then the stores.
    let mark = cluster.mark();
    platforms
        .delete("shop", &DeleteParams::default())
        .await
        .unwrap();
    wait_until("the platform is gone", logs, || async {
        platforms.get_opt("shop").await.unwrap().is_none()
    })
    .await;
    let deletes: Vec<String> = cluster
        .writes_by(mark, &ns, &user)
        .await
        .into_iter()
        .filter(|r| r.verb == "delete")
        .filter(|r| r.resource == "deployments" || r.resource == "statefulsets")
        .map(|r| r.name)
        .collect();
    let position = |name: &str| {
        deletes
            .iter()
            .position(|n| n == name)
            .unwrap_or_else(|| panic!("{name} not deleted: {deletes:?}"))
    };
    assert!(
        position("shop-gateway") < position("shop-users"),
        "{deletes:?}"
    );
    for service in ["shop-users", "shop-catalog", "shop-orders"] {
        assert!(position(service) < position("shop-db-users"), "{deletes:?}");
    }
    let left = children(&admin, &ns, "shop").await;
    assert!(
        left.iter().all(|id| id.starts_with("Secret/")),
        "only data Secrets may stay: {left:?}"
    );
    assert!(
        !logs().contains("is forbidden: User"),
        "the API server refused the operator something:\n{}",
        logs()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_operator_replicas_elect_one_leader_and_the_other_takes_over() {
    let Some(cluster) = real_cluster() else {
        return;
    };
    let ns = cluster.namespace("lead").await;
    let dir = tempfile::tempdir().unwrap();
    let (system, kubeconfig) = install(&cluster, dir.path(), &ns).await;
    let args = [
        "--lease-namespace",
        &system,
        "--watch-namespace",
        &ns,
        "--lease-duration",
        "3s",
    ];
    let mut leader = Operator::start_as(&kubeconfig, &args, &[]);
    let started = Instant::now();
    while leader.metric("panthera_operator_leader") != Some(1.0) {
        assert!(started.elapsed() < TIMEOUT, "no leader:\n{}", leader.logs());
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let follower = Operator::start_as(&kubeconfig, &args, &[]);
    let started = Instant::now();
    while follower.metric("panthera_operator_leader").is_none() {
        assert!(started.elapsed() < TIMEOUT, "{}", follower.logs());
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(follower.metric("panthera_operator_leader"), Some(0.0));

    let admin = cluster.client().await;
    let platforms: Api<PantheraPlatform> = Api::namespaced(admin.clone(), &ns);
    platforms
        .create(&PostParams::default(), &minimal(&ns))
        .await
        .unwrap();
    wait_for(
        &admin,
        &ns,
        "demo",
        "Ready",
        TIMEOUT,
        || leader.logs(),
        ready_at_generation,
    )
    .await;
    assert_eq!(follower.metric("panthera_operator_reconciles_total"), None);

    // SIGKILL: the lease is not released; the follower leads once it expires.
    leader.child.kill().unwrap();
    leader.child.wait().unwrap();
    platforms
        .patch(
            "demo",
            &PatchParams::default(),
            &Patch::Json::<()>(
                serde_json::from_value(
                    json!([{"op": "replace", "path": "/spec/services/0/replicas", "value": 2}]),
                )
                .unwrap(),
            ),
        )
        .await
        .unwrap();
    wait_for(
        &admin,
        &ns,
        "demo",
        "Ready at generation 2",
        TIMEOUT,
        || follower.logs(),
        |p| p.metadata.generation == Some(2) && ready_at_generation(p),
    )
    .await;
    assert_eq!(follower.metric("panthera_operator_leader"), Some(1.0));
    let leases: Api<Lease> = Api::namespaced(admin, &system);
    let holder = leases
        .get("panthera-operator")
        .await
        .unwrap()
        .spec
        .and_then(|s| s.holder_identity)
        .unwrap_or_default();
    assert!(!holder.is_empty(), "the new leader holds the Lease");
}
