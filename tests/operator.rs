//! The real `panthera operator` process against kube-sim: readiness, drift, pause, teardown,
//! invalid specs, leader election, SIGKILL at random points and API faults.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code

mod common;

use common::operator::{
    Operator, children, crd, create, delete_and_wait_gone, install_crd, minimal, namespace,
    planned, ready_at_generation, shop, sim, wait_for,
};

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use k8s_openapi::api::apps::v1::{Deployment, StatefulSet};
use k8s_openapi::api::core::v1::Secret;
use kube::api::{Api, DeleteParams, DynamicObject, ListParams, Patch, PatchParams, PostParams};
use kube::core::ApiResource;
use kube_sim::FaultKind;
use panthera::api::{ConditionStatus, PantheraPlatform, PantheraPlatformStatus};
use serde_json::{Value, json};

const TIMEOUT: Duration = Duration::from_secs(30);

/// Names of the objects `api` lists now (none when the list fails).
async fn names<K>(api: &Api<K>) -> BTreeSet<String>
where
    K: kube::Resource + Clone + serde::de::DeserializeOwned + std::fmt::Debug,
{
    api.list(&ListParams::default())
        .await
        .map(|l| {
            l.items
                .into_iter()
                .filter_map(|o| o.meta().name.clone())
                .collect()
        })
        .unwrap_or_default()
}

/// JSON-patch (RFC 6902) a platform: precise edits that leave the rest of the spec alone.
async fn json_patch(api: &Api<PantheraPlatform>, name: &str, ops: Value) {
    let patch: Patch<()> = Patch::Json(serde_json::from_value(ops).unwrap());
    api.patch(name, &PatchParams::default(), &patch)
        .await
        .unwrap();
}

/// Merge-patch a platform (metadata such as the pause annotation).
async fn merge_patch(api: &Api<PantheraPlatform>, name: &str, patch: Value) {
    api.patch(name, &PatchParams::default(), &Patch::Merge(patch))
        .await
        .unwrap();
}

fn condition(status: &PantheraPlatformStatus, type_: &str) -> Option<(ConditionStatus, String)> {
    status
        .conditions
        .iter()
        .find(|c| c.type_ == type_)
        .map(|c| (c.status, format!("{}: {}", c.reason, c.message)))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_user_secret_is_stalled_with_the_command_and_nothing_is_written() {
    let sim = sim().await;
    let client = sim.client().unwrap();
    install_crd(&client, &crd()).await;
    namespace(&client, "shop").await;
    // Secrets are not watched: the next periodic resync (2 s here) sees them created.
    let operator = Operator::start(&sim, &["--no-leader-elect", "--resync", "2s"]);
    let logs = || operator.logs();
    // The platform without the Secrets the user provides (not `create`, which adds them).
    let platforms: Api<PantheraPlatform> = Api::namespaced(client.clone(), "shop");
    platforms
        .create(&PostParams::default(), &shop("shop"))
        .await
        .unwrap();
    let stalled = wait_for(&client, "shop", "shop", "Stalled", TIMEOUT, logs, |p| {
        p.status
            .as_ref()
            .and_then(|s| condition(s, "Stalled"))
            .is_some_and(|(s, _)| s == ConditionStatus::True)
    })
    .await;
    let (_, message) = condition(stalled.status.as_ref().unwrap(), "Stalled").unwrap();
    assert!(
        message.starts_with("SecretMissing")
            && message.contains("kubectl -n shop create secret generic shop-jwt"),
        "{message}"
    );
    let deployments: Api<k8s_openapi::api::apps::v1::Deployment> =
        Api::namespaced(client.clone(), "shop");
    assert!(
        names(&deployments).await.is_empty(),
        "nothing is applied before the Secrets exist"
    );
    // Once the user creates them, the platform converges.
    common::provide_secrets(&client, &shop("shop")).await;
    wait_for(
        &client,
        "shop",
        "shop",
        "Ready",
        TIMEOUT,
        logs,
        ready_at_generation,
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reconciles_to_ready_corrects_drift_pauses_and_tears_down_in_order() {
    let sim = sim().await;
    let client = sim.client().unwrap();
    install_crd(&client, &crd()).await;
    namespace(&client, "shop").await;
    let operator = Operator::start(&sim, &["--no-leader-elect", "--resync", "2s"]);
    let logs = || operator.logs();
    let platforms: Api<PantheraPlatform> = Api::namespaced(client.clone(), "shop");

    // Create: Ready=True at the observed generation, every child labelled and planned.
    let platform = shop("shop");
    create(&client, &platform).await;
    let ready = wait_for(
        &client,
        "shop",
        "shop",
        "Ready",
        TIMEOUT,
        logs,
        ready_at_generation,
    )
    .await;
    let status = ready.status.clone().unwrap();
    assert_eq!(status.observed_generation, Some(1));
    assert_eq!(
        condition(&status, "Stalled").unwrap().0,
        ConditionStatus::False
    );
    assert_eq!(
        condition(&status, "Reconciling").unwrap().0,
        ConditionStatus::False
    );
    // 10: with the object server and its bucket, reached at the server's Service.
    assert_eq!(status.components.len(), 10, "{:#?}", status.components);
    let bucket = status
        .components
        .iter()
        .find(|c| c.kind == panthera::api::ComponentKind::Bucket)
        .unwrap();
    assert_eq!(
        (bucket.name.as_str(), bucket.endpoint.as_deref()),
        ("images", Some("shop-objects.shop.svc:7070"))
    );
    assert!(
        status
            .components
            .iter()
            .all(|c| c.ready && c.endpoint.is_some())
    );
    assert_eq!(
        ready.metadata.finalizers.clone().unwrap_or_default(),
        vec![panthera::operator::FINALIZER.to_string()]
    );
    assert_eq!(children(&client, "shop", "shop").await, planned(&platform));
    let secret_text = serde_json::to_string(&status).unwrap();
    assert!(
        !secret_text.to_lowercase().contains("password"),
        "{secret_text}"
    );

    // The Argo CD health check reads this status as Healthy.
    if let Some(health) = common::argocd_health(&serde_json::to_value(&ready).unwrap()) {
        assert_eq!(health.0, "Healthy", "{health:?}");
    }

    // A workload that cannot start makes the platform Stalled (Argo CD: Degraded), naming it;
    // once it recovers the platform is Ready again.
    sim.fail_workload(
        "shop",
        "Deployment",
        "shop-orders",
        "ImagePullBackOff",
        "Back-off pulling image",
    );
    let stalled = wait_for(&client, "shop", "shop", "Stalled", TIMEOUT, logs, |p| {
        p.status
            .as_ref()
            .and_then(|s| condition(s, "Stalled"))
            .is_some_and(|(s, _)| s == ConditionStatus::True)
    })
    .await;
    let (_, message) = condition(stalled.status.as_ref().unwrap(), "Stalled").unwrap();
    assert!(
        message.starts_with("WorkloadStalled") && message.contains("Deployment/shop-orders"),
        "{message}"
    );
    if let Some(health) = common::argocd_health(&serde_json::to_value(&stalled).unwrap()) {
        assert_eq!(health.0, "Degraded", "{health:?}");
    }
    sim.recover_workload("shop", "Deployment", "shop-orders");
    wait_for(
        &client,
        "shop",
        "shop",
        "Ready again",
        TIMEOUT,
        logs,
        ready_at_generation,
    )
    .await;

    // Periodic resyncs (every 2 s here) find nothing to do and write nothing.
    let reconciles_before = operator
        .metric("panthera_operator_reconciles_total")
        .unwrap();
    sim.reset_counters();
    // Two resyncs take 4 s; a loaded machine may take longer to run them, never forever.
    let deadline = Instant::now() + Duration::from_secs(30);
    tokio::time::sleep(Duration::from_secs(5)).await;
    while operator
        .metric("panthera_operator_reconciles_total")
        .unwrap()
        < reconciles_before + 2.0
        && Instant::now() < deadline
    {
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    let counts = sim.counters();
    assert!(
        operator
            .metric("panthera_operator_reconciles_total")
            .unwrap()
            >= reconciles_before + 2.0,
        "no resync happened in 30 s"
    );
    assert_eq!(counts.writes(), 0, "a no-op resync wrote: {:#?}", counts.by);

    // A change touches only the affected child.
    sim.reset_counters();
    json_patch(
        &platforms,
        "shop",
        json!([{"op": "replace", "path": "/spec/services/0/replicas", "value": 4}]),
    )
    .await;
    let changed = wait_for(
        &client,
        "shop",
        "shop",
        "Ready at generation 2",
        TIMEOUT,
        logs,
        |p| p.metadata.generation == Some(2) && ready_at_generation(p),
    )
    .await;
    let counts = sim.counters();
    let child_writes: u64 = counts
        .by
        .iter()
        .filter(|((verb, resource, manager), _)| {
            manager == "panthera" && verb == "apply" && !resource.starts_with("pantheraplatforms")
        })
        .map(|(_, n)| n)
        .sum();
    assert_eq!(child_writes, 1, "{:#?}", counts.by);
    assert_eq!(counts.get("apply", "deployments"), 1, "{:#?}", counts.by);
    let deployments: Api<Deployment> = Api::namespaced(client.clone(), "shop");
    let users = deployments.get("shop-users").await.unwrap();
    assert_eq!(users.spec.unwrap().replicas, Some(4));
    assert_eq!(changed.status.unwrap().observed_generation, Some(2));

    // Someone deletes a child: it is back within seconds.
    deployments
        .delete("shop-catalog", &DeleteParams::default())
        .await
        .unwrap();
    let started = Instant::now();
    while deployments.get_opt("shop-catalog").await.unwrap().is_none() {
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "not restored:\n{}",
            logs()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // Someone edits a child: the edit is reverted.
    deployments
        .patch(
            "shop-orders",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"replicas": 9}})),
        )
        .await
        .unwrap();
    let started = Instant::now();
    while deployments
        .get("shop-orders")
        .await
        .unwrap()
        .spec
        .unwrap()
        .replicas
        != Some(3)
    {
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "not reverted:\n{}",
            logs()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    // Pause: a spec change and a deleted child are left alone.
    merge_patch(
        &platforms,
        "shop",
        json!({"metadata": {"annotations": {"panthera.dev/paused": "true"}}}),
    )
    .await;
    wait_for(&client, "shop", "shop", "paused", TIMEOUT, logs, |p| {
        p.status
            .as_ref()
            .and_then(|s| condition(s, "Reconciling"))
            .is_some_and(|(_, m)| m.starts_with("Paused"))
    })
    .await;
    sim.reset_counters();
    json_patch(
        &platforms,
        "shop",
        json!([{"op": "replace", "path": "/spec/services/0/replicas", "value": 2}]),
    )
    .await;
    deployments
        .delete("shop-catalog", &DeleteParams::default())
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_secs(3)).await;
    let counts = sim.counters();
    assert_eq!(
        counts.by_manager("panthera"),
        0,
        "paused but wrote: {:#?}",
        counts.by
    );
    assert!(deployments.get_opt("shop-catalog").await.unwrap().is_none());
    // Unpause: both are reconciled.
    merge_patch(
        &platforms,
        "shop",
        json!({"metadata": {"annotations": {"panthera.dev/paused": null}}}),
    )
    .await;
    wait_for(
        &client,
        "shop",
        "shop",
        "Ready after unpause",
        TIMEOUT,
        logs,
        |p| {
            ready_at_generation(p)
                && p.status
                    .as_ref()
                    .and_then(|s| condition(s, "Reconciling"))
                    .is_some_and(|(_, m)| !m.starts_with("Paused"))
        },
    )
    .await;
    assert!(deployments.get_opt("shop-catalog").await.unwrap().is_some());
    assert_eq!(
        deployments
            .get("shop-users")
            .await
            .unwrap()
            .spec
            .unwrap()
            .replicas,
        Some(2)
    );

    // Delete: the gateway goes before the services, the services before the data stores; the
    // connection Secrets (data) stay, as deletionPolicy Snapshot (the default) says.
    let order = std::sync::Arc::new(std::sync::Mutex::new(Vec::<String>::new()));
    let recorder = {
        let order = order.clone();
        let deployments = deployments.clone();
        let statefulsets: Api<StatefulSet> = Api::namespaced(client.clone(), "shop");
        tokio::spawn(async move {
            let mut seen = BTreeSet::new();
            loop {
                let d = names(&deployments).await;
                let s = names(&statefulsets).await;
                let now: BTreeSet<String> = d.union(&s).cloned().collect();
                for gone in seen.difference(&now) {
                    order.lock().unwrap().push(gone.clone());
                }
                seen = now;
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        })
    };
    tokio::time::sleep(Duration::from_millis(100)).await;
    delete_and_wait_gone(&platforms, "shop", logs).await;
    tokio::time::sleep(Duration::from_millis(100)).await;
    recorder.abort();
    let order = order.lock().unwrap().clone();
    let position = |name: &str| order.iter().position(|n| n == name).unwrap_or(usize::MAX);
    assert!(
        position("shop-gateway") < position("shop-users"),
        "{order:?}"
    );
    assert!(
        position("shop-users") <= position("shop-db-users"),
        "{order:?}"
    );
    let left = children(&client, "shop", "shop").await;
    let secrets: BTreeSet<String> = left
        .iter()
        .filter(|id| id.starts_with("Secret/"))
        .cloned()
        .collect();
    assert_eq!(left, secrets, "only data Secrets may stay: {left:?}");
    let secret_api: Api<Secret> = Api::namespaced(client.clone(), "shop");
    assert!(secret_api.get_opt("shop-db-users").await.unwrap().is_some());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invalid_and_malformed_platforms_stall_without_a_retry_storm_or_breaking_the_watch() {
    let sim = sim().await;
    let client = sim.client().unwrap();
    // A CRD that lets anything into spec, like a newer CRD version this operator predates:
    // a malformed object reaches the watch and must not break it.
    let mut loose = serde_json::to_value(crd()).unwrap();
    loose["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"] =
        json!({"type": "object", "x-kubernetes-preserve-unknown-fields": true});
    loose["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
        .as_object_mut()
        .unwrap()
        .remove("x-kubernetes-validations");
    install_crd(&client, &serde_json::from_value(loose).unwrap()).await;
    namespace(&client, "bad").await;
    namespace(&client, "good").await;

    let raw: Api<DynamicObject> = Api::namespaced_with(
        client.clone(),
        "bad",
        &ApiResource::erase::<PantheraPlatform>(&()),
    );
    // Malformed: does not deserialize at all.
    raw.create(
        &PostParams::default(),
        &serde_json::from_value(json!({
            "apiVersion": "panthera.dev/v1alpha1", "kind": "PantheraPlatform",
            "metadata": {"name": "malformed", "namespace": "bad"},
            "spec": {"services": "not a list"},
        }))
        .unwrap(),
    )
    .await
    .unwrap();
    // Invalid: deserializes, but a service names a database that does not exist.
    let mut invalid = serde_json::to_value(minimal("invalid", "bad")).unwrap();
    invalid["spec"]["services"][0]["database"] = json!("nope");
    raw.create(
        &PostParams::default(),
        &serde_json::from_value(invalid).unwrap(),
    )
    .await
    .unwrap();

    let operator = Operator::start(&sim, &["--no-leader-elect"]);
    let logs = || operator.logs();
    create(&client, &minimal("fine", "good")).await;
    wait_for(
        &client,
        "good",
        "fine",
        "Ready",
        TIMEOUT,
        logs,
        ready_at_generation,
    )
    .await;

    let stalled = |p: &PantheraPlatform| {
        p.status
            .as_ref()
            .and_then(|s| condition(s, "Stalled"))
            .is_some_and(|(s, _)| s == ConditionStatus::True)
    };
    let malformed = raw.get("malformed").await;
    assert!(malformed.is_ok());
    // The malformed object cannot be read as a PantheraPlatform; read its status raw.
    let started = Instant::now();
    loop {
        let o = raw.get("malformed").await.unwrap();
        let message = o.data.pointer("/status/conditions").and_then(|c| {
            c.as_array()?
                .iter()
                .find(|c| c["type"] == "Stalled" && c["status"] == "True")
                .and_then(|c| c["message"].as_str().map(str::to_string))
        });
        if let Some(message) = message {
            assert!(
                message.contains("does not match PantheraPlatform"),
                "{message}"
            );
            break;
        }
        assert!(
            started.elapsed() < TIMEOUT,
            "malformed not Stalled:\n{}",
            logs()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let invalid = wait_for(&client, "bad", "invalid", "Stalled", TIMEOUT, logs, stalled).await;
    let (_, message) = condition(invalid.status.as_ref().unwrap(), "Stalled").unwrap();
    assert!(message.contains("spec.services[0].database"), "{message}");
    assert!(message.contains("InvalidSpec"), "{message}");

    // No retry storm: while nothing changes, the operator sends nothing about them.
    tokio::time::sleep(Duration::from_millis(500)).await;
    sim.reset_counters();
    tokio::time::sleep(Duration::from_secs(4)).await;
    let counts = sim.counters();
    assert!(counts.total() <= 2, "requests while idle: {:#?}", counts.by);
    // A Warning event says why, once.
    let events: Api<DynamicObject> = Api::namespaced_with(
        client.clone(),
        "bad",
        &ApiResource::from_gvk_with_plural(
            &kube::core::GroupVersionKind::gvk("events.k8s.io", "v1", "Event"),
            "events",
        ),
    );
    let warnings: Vec<Value> = events
        .list(&ListParams::default())
        .await
        .unwrap()
        .items
        .into_iter()
        .map(|e| serde_json::to_value(e).unwrap())
        .filter(|e| e["type"] == "Warning")
        .collect();
    assert_eq!(warnings.len(), 2, "{warnings:#?}\n{}", logs());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_replicas_elect_one_leader_and_fail_over_when_it_is_killed() {
    let sim = sim().await;
    let client = sim.client().unwrap();
    install_crd(&client, &crd()).await;
    namespace(&client, "demo").await;
    let lease = ["--lease-duration", "3s"];
    let mut leader = Operator::start(&sim, &lease);
    let started = Instant::now();
    while leader.metric("panthera_operator_leader") != Some(1.0) {
        assert!(started.elapsed() < TIMEOUT, "no leader:\n{}", leader.logs());
        std::thread::sleep(Duration::from_millis(100));
    }
    let follower = Operator::start(&sim, &lease);
    let started = Instant::now();
    while follower.metric("panthera_operator_leader").is_none() {
        assert!(started.elapsed() < TIMEOUT, "{}", follower.logs());
        std::thread::sleep(Duration::from_millis(100));
    }
    std::thread::sleep(Duration::from_secs(1));
    assert_eq!(follower.metric("panthera_operator_leader"), Some(0.0));
    create(&client, &minimal("demo", "demo")).await;
    wait_for(
        &client,
        "demo",
        "demo",
        "Ready",
        TIMEOUT,
        || leader.logs(),
        ready_at_generation,
    )
    .await;
    // Only the leader reconciles.
    assert_eq!(follower.metric("panthera_operator_reconciles_total"), None);
    assert!(leader.metric("panthera_operator_reconciles_total").unwrap() >= 1.0);

    // SIGKILL the leader: it cannot release the lease; the follower takes over once it expires.
    let killed = Instant::now();
    leader.child.kill().unwrap();
    leader.child.wait().unwrap();
    let platforms: Api<PantheraPlatform> = Api::namespaced(client.clone(), "demo");
    json_patch(
        &platforms,
        "demo",
        json!([{"op": "replace", "path": "/spec/services/0/replicas", "value": 2}]),
    )
    .await;
    wait_for(
        &client,
        "demo",
        "demo",
        "Ready at generation 2",
        TIMEOUT,
        || follower.logs(),
        |p| p.metadata.generation == Some(2) && ready_at_generation(p),
    )
    .await;
    eprintln!("failover took {:?}", killed.elapsed());
    assert_eq!(follower.metric("panthera_operator_leader"), Some(1.0));

    // SIGTERM: the leader releases the lease and exits cleanly; a new replica leads at once.
    follower.sigterm();
    let mut follower = follower;
    let status = follower
        .wait_exit(Duration::from_secs(10))
        .expect("exits on SIGTERM");
    assert!(status.success(), "{status:?}\n{}", follower.logs());
    // Released, not left to expire: no holder.
    let leases: Api<k8s_openapi::api::coordination::v1::Lease> =
        Api::namespaced(client.clone(), "default");
    let released = leases.get("panthera-operator").await.unwrap();
    let holder = released
        .spec
        .and_then(|s| s.holder_identity)
        .unwrap_or_default();
    assert!(holder.is_empty(), "lease still held by {holder}");
    let next = Operator::start(&sim, &lease);
    let started = Instant::now();
    while next.metric("panthera_operator_leader") != Some(1.0) {
        assert!(started.elapsed() < TIMEOUT, "{}", next.logs());
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_at_random_points_then_restart_converges_without_duplicates_or_orphans() {
    let sim = sim().await;
    let client = sim.client().unwrap();
    install_crd(&client, &crd()).await;
    namespace(&client, "shop").await;
    let mut platform = shop("shop");
    create(&client, &platform).await;
    let platforms: Api<PantheraPlatform> = Api::namespaced(client.clone(), "shop");
    // Kill the operator at spread-out points of its work, changing the spec in between
    // (adding and removing a service, so that prune is interrupted too).
    let mut seed: u64 = 0x9e37_79b9_7f4a_7c15;
    for round in 0..6 {
        let operator = Operator::start(&sim, &["--no-leader-elect"]);
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        let delay = Duration::from_millis(150 + seed % 900);
        tokio::time::sleep(delay).await;
        drop(operator); // SIGKILL
        // Even rounds add a service (no route to it), odd rounds remove it again.
        let edit = if round % 2 == 0 {
            json!([{"op": "add", "path": "/spec/services/-", "value":
                {"name": "search", "kind": "catalog", "database": "orders", "replicas": 1 + round}}])
        } else {
            json!([{"op": "remove", "path": "/spec/services/3"},
                   {"op": "replace", "path": "/spec/services/0/replicas", "value": round}])
        };
        json_patch(&platforms, "shop", edit).await;
    }
    let operator = Operator::start(&sim, &["--no-leader-elect"]);
    let done = wait_for(
        &client,
        "shop",
        "shop",
        "Ready",
        TIMEOUT,
        || operator.logs(),
        |p| p.metadata.generation == Some(7) && ready_at_generation(p),
    )
    .await;
    platform.spec = done.spec.clone();
    // Exactly the planned children: none twice (names are deterministic), none left over.
    assert_eq!(children(&client, "shop", "shop").await, planned(&platform));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn twenty_percent_api_errors_and_watch_drops_still_converge() {
    let sim = sim().await;
    let client = sim.client().unwrap();
    install_crd(&client, &crd()).await;
    let names = ["p1", "p2", "p3"];
    for name in names {
        namespace(&client, name).await;
        create(&client, &minimal(name, name)).await;
    }
    sim.faults()
        .set_error_rate(None, None, 0.2, FaultKind::Internal500);
    sim.faults()
        .drop_watches_every(Some(Duration::from_millis(700)));
    let operator = Operator::start(&sim, &["--no-leader-elect"]);
    for name in names {
        wait_for(
            &client,
            name,
            name,
            "Ready under faults",
            // Convergence, not speed, is the claim: generous for a loaded CI machine.
            Duration::from_secs(150),
            || operator.logs(),
            ready_at_generation,
        )
        .await;
    }
    sim.faults().clear();
    if std::env::var_os("PANTHERA_TEST_DEBUG").is_some() {
        eprintln!("{}", operator.logs());
    }
    for name in names {
        assert_eq!(
            children(&client, name, name).await,
            planned(&minimal(name, name))
        );
    }
    // The faults did reach the operator (its client logs each failed request).
    assert!(
        operator.logs().contains("500 Internal Server Error"),
        "no injected fault reached the operator"
    );
}
