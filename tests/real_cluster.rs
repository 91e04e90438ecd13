//! The real `panthera` binary against a real control plane (kube-apiserver, controller-manager,
//! scheduler, etcd, kwok), as started by `scripts/test.sh`. Writes are counted from the API
//! server's audit log. Each test works in namespaces of its own.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code

mod common;

use std::collections::BTreeSet;
use std::process::Output;
use std::time::{Duration, Instant};

use common::cluster::{RealCluster, Request, edited_in, example_in, real_cluster};
use common::{stderr, stdout};
use k8s_openapi::api::apps::v1::{Deployment, StatefulSet};
use k8s_openapi::api::core::v1::{PersistentVolumeClaim, Secret};
use kube::api::{Api, ListParams};

fn lines_with(o: &Output, prefix: &str) -> BTreeSet<String> {
    stdout(o)
        .lines()
        .filter_map(|l| l.strip_prefix(prefix))
        .map(str::to_string)
        .collect()
}

fn ok(o: &Output) {
    assert!(o.status.success(), "{}{}", stdout(o), stderr(o));
}

/// Writes by `admin` (the CLI's user) as `verb resource/name`.
fn described(writes: &[Request]) -> Vec<String> {
    writes.iter().map(ToString::to_string).collect()
}

/// The Secrets a user creates before the shop can run (the JWT key, the gateway's certificate,
/// the first administrator): exactly what `plan` and `apply` check for.
async fn shop_secrets(cluster: &RealCluster, namespace: &str) {
    let mut platform = panthera::load::load_file(&common::example("shop")).unwrap();
    platform.metadata.namespace = Some(namespace.to_string());
    common::provide_secrets(&cluster.client().await, &platform).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_shop_converges_under_restricted_pod_security_and_reapplies_with_zero_writes() {
    let Some(cluster) = real_cluster() else {
        return;
    };
    let ns = cluster.namespace("shop").await;
    // Every pod the shop runs must pass the restricted Pod Security Standard: the API server
    // refuses to create any that does not, and the workloads would never become ready.
    ok(&cluster.kubectl(&[
        "label",
        "namespace",
        &ns,
        "pod-security.kubernetes.io/enforce=restricted",
    ]));
    shop_secrets(&cluster, &ns).await;
    let dir = tempfile::tempdir().unwrap();
    let shop = example_in(dir.path(), "shop", &ns);
    let shop = shop.to_str().unwrap();

    let first = cluster
        .panthera(&["apply", "-f", shop, "--wait", "--timeout", "240s"])
        .await;
    ok(&first);
    assert_eq!(
        lines_with(&first, "created ").len(),
        // With its four dashboards and its bucket in the cluster (the object server's Secret,
        // two NetworkPolicies, Service, StatefulSet; the bucket's Secret and setup Job); no
        // ServiceMonitor or PrometheusRule: the test control plane does not serve
        // monitoring.coreos.com/v1.
        58,
        "{}",
        stdout(&first)
    );

    let mark = cluster.mark();
    let second = cluster.panthera(&["apply", "-f", shop, "--wait"]).await;
    ok(&second);
    let writes = cluster.writes(mark, &ns).await;
    assert!(
        writes.is_empty(),
        "a re-apply on a real server writes nothing: {:#?}",
        described(&writes)
    );
    assert!(
        stdout(&second).contains("0 created, 0 changed, 58 unchanged"),
        "{}",
        stdout(&second)
    );
    let clean = cluster.panthera(&["plan", "-f", shop, "--exit-code"]).await;
    assert_eq!(clean.status.code(), Some(0), "{}", stdout(&clean));

    // One replica more: planned as exactly that change, applied with one write.
    let text = std::fs::read_to_string(shop).unwrap();
    let scaled = edited_in(dir.path(), "scaled", &ns, &text, |t| {
        t.replacen(
            "      replicas: 2\n      database: users",
            "      replicas: 3\n      database: users",
            1,
        )
    });
    let scaled = scaled.to_str().unwrap();
    let plan = cluster
        .panthera(&["plan", "-f", scaled, "--exit-code"])
        .await;
    assert_eq!(plan.status.code(), Some(2), "{}", stderr(&plan));
    let text = stdout(&plan);
    assert!(
        text.contains("~ Deployment/shop-users (service/users)")
            && text.contains("+  replicas: 3")
            && text.contains("-  replicas: 2")
            && text.contains("Plan: 0 to add, 1 to change, 0 to prune, 57 unchanged."),
        "{text}"
    );
    let mark = cluster.mark();
    ok(&cluster.panthera(&["apply", "-f", scaled]).await);
    let writes = cluster.writes(mark, &ns).await;
    assert_eq!(
        described(&writes),
        vec!["admin patch deployments/shop-users -> 200".to_string()]
    );
}

/// Quantities the server re-prints (`1000m` is stored as `1`, `0.5` as `500m`, `1024Mi` as
/// `1Gi`) must not make every apply a change.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn quantities_in_any_spelling_reapply_with_zero_writes_and_a_clean_plan() {
    let Some(cluster) = real_cluster() else {
        return;
    };
    let ns = cluster.namespace("quantities").await;
    let dir = tempfile::tempdir().unwrap();
    let text = std::fs::read_to_string(common::example("minimal")).unwrap();
    let file = edited_in(dir.path(), "quantities", &ns, &text, |t| {
        t.replace(
            "      replicas: 1\n",
            "      replicas: 1\n      resources:\n        requests: {cpu: \"0.5\", memory: 1024Mi}\n        limits: {cpu: 1000m, memory: 2048Mi}\n",
        )
    });
    let file = file.to_str().unwrap();
    ok(&cluster
        .panthera(&["apply", "-f", file, "--wait", "--timeout", "180s"])
        .await);
    let deployments: Api<Deployment> = Api::namespaced(cluster.client().await, &ns);
    let stored = deployments.get("demo-users").await.unwrap();
    let resources =
        serde_json::to_value(&stored.spec.unwrap().template.spec.unwrap().containers[0].resources)
            .unwrap();
    assert_eq!(
        resources,
        serde_json::json!({"requests": {"cpu": "500m", "memory": "1Gi"}, "limits": {"cpu": "1", "memory": "2Gi"}}),
        "the server's canonical form"
    );

    let mark = cluster.mark();
    ok(&cluster.panthera(&["apply", "-f", file]).await);
    let writes = cluster.writes(mark, &ns).await;
    assert!(writes.is_empty(), "{:#?}", described(&writes));
    let plan = cluster.panthera(&["plan", "-f", file, "--exit-code"]).await;
    assert_eq!(
        plan.status.code(),
        Some(0),
        "{}{}",
        stdout(&plan),
        stderr(&plan)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prune_deletes_exactly_a_removed_service_and_destroy_keeps_the_data() {
    let Some(cluster) = real_cluster() else {
        return;
    };
    let ns = cluster.namespace("prune").await;
    shop_secrets(&cluster, &ns).await;
    let dir = tempfile::tempdir().unwrap();
    let shop = example_in(dir.path(), "shop", &ns);
    ok(&cluster
        .panthera(&[
            "apply",
            "-f",
            shop.to_str().unwrap(),
            "--wait",
            "--timeout",
            "240s",
        ])
        .await);

    let text = std::fs::read_to_string(&shop).unwrap();
    let without_orders = edited_in(dir.path(), "no-orders", &ns, &text, |t| {
        let t = t.replace(
            "      - pathPrefix: /v1/orders\n        service: orders\n",
            "",
        );
        let start = t.find("    - name: orders\n      kind: orders").unwrap();
        let end = t[start..].find("  databases:").unwrap() + start;
        format!("{}{}", &t[..start], &t[end..])
    });
    let mark = cluster.mark();
    let o = cluster
        .panthera(&["apply", "-f", without_orders.to_str().unwrap(), "--prune"])
        .await;
    ok(&o);
    let expected: BTreeSet<String> = [
        "ServiceAccount",
        "NetworkPolicy",
        "Service",
        "Deployment",
        "PodDisruptionBudget",
    ]
    .iter()
    .map(|k| format!("{k}/shop-orders"))
    .collect();
    assert_eq!(lines_with(&o, "pruned "), expected);
    let deletes: BTreeSet<String> = cluster
        .writes(mark, &ns)
        .await
        .into_iter()
        .filter(|r| r.user == "admin" && r.verb == "delete")
        .map(|r| format!("{}/{}", r.resource, r.name))
        .collect();
    assert_eq!(
        deletes,
        [
            "serviceaccounts",
            "networkpolicies",
            "services",
            "deployments",
            "poddisruptionbudgets"
        ]
        .iter()
        .map(|r| format!("{r}/shop-orders"))
        .collect::<BTreeSet<_>>()
    );

    let client = cluster.client().await;
    let claims: Api<PersistentVolumeClaim> = Api::namespaced(client.clone(), &ns);
    let claims_before = claims
        .list(&ListParams::default())
        .await
        .unwrap()
        .items
        .len();
    assert!(claims_before >= 3, "the StatefulSet controller made claims");
    ok(&cluster
        .panthera(&["destroy", "-f", shop.to_str().unwrap(), "--yes"])
        .await);
    let secrets: Api<Secret> = Api::namespaced(client.clone(), &ns);
    let kept: BTreeSet<String> = secrets
        .list(&ListParams::default())
        .await
        .unwrap()
        .items
        .into_iter()
        .filter_map(|s| s.metadata.name)
        .collect();
    for secret in [
        "shop-db-users",
        "shop-db-orders",
        "shop-redis",
        "shop-kafka",
    ] {
        assert!(kept.contains(secret), "{secret} kept: {kept:?}");
    }
    let sets: Api<StatefulSet> = Api::namespaced(client.clone(), &ns);
    assert!(
        sets.list(&ListParams::default())
            .await
            .unwrap()
            .items
            .is_empty()
    );
    assert_eq!(
        claims
            .list(&ListParams::default())
            .await
            .unwrap()
            .items
            .len(),
        claims_before,
        "destroy keeps every volume claim by default"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn foreign_objects_and_other_field_managers_are_refused_before_any_write() {
    let Some(cluster) = real_cluster() else {
        return;
    };
    let ns = cluster.namespace("foreign").await;
    let dir = tempfile::tempdir().unwrap();
    let minimal = example_in(dir.path(), "minimal", &ns);
    let minimal = minimal.to_str().unwrap();

    // An object with a name Panthera wants, made by someone else: refused, nothing written.
    ok(&cluster.kubectl(&["create", "serviceaccount", "demo-users", "-n", &ns]));
    let mark = cluster.mark();
    let o = cluster.panthera(&["apply", "-f", minimal]).await;
    assert_eq!(o.status.code(), Some(1));
    assert!(
        stderr(&o)
            .contains("ServiceAccount/demo-users already exists and is not part of platform demo"),
        "{}",
        stderr(&o)
    );
    let writes = cluster.writes(mark, &ns).await;
    assert!(writes.is_empty(), "{:#?}", described(&writes));
    ok(&cluster.kubectl(&["delete", "serviceaccount", "demo-users", "-n", &ns]));
    ok(&cluster.panthera(&["apply", "-f", minimal]).await);

    // Another manager takes the replica count by server-side apply: Panthera's apply is a
    // conflict the server reports, and --force-conflicts takes the field back.
    let other = dir.path().join("other.yaml");
    std::fs::write(
        &other,
        format!(
            "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: demo-users\n  namespace: {ns}\nspec:\n  replicas: 3\n"
        ),
    )
    .unwrap();
    ok(&cluster.kubectl(&[
        "apply",
        "--server-side",
        "--field-manager=autoscaler",
        "--force-conflicts",
        "-f",
        other.to_str().unwrap(),
    ]));
    let o = cluster.panthera(&["apply", "-f", minimal]).await;
    assert_eq!(o.status.code(), Some(1), "{}", stdout(&o));
    assert!(
        stderr(&o).contains("Deployment/demo-users: fields are owned by another field manager")
            && stderr(&o).contains("autoscaler")
            && stderr(&o).contains("--force-conflicts"),
        "{}",
        stderr(&o)
    );
    ok(&cluster
        .panthera(&["apply", "-f", minimal, "--force-conflicts"])
        .await);
    let deployments: Api<Deployment> = Api::namespaced(cluster.client().await, &ns);
    let replicas = deployments
        .get("demo-users")
        .await
        .unwrap()
        .spec
        .unwrap()
        .replicas;
    assert_eq!(replicas, Some(1));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pod_that_cannot_pull_its_image_fails_the_wait_fast_naming_it() {
    let Some(cluster) = real_cluster() else {
        return;
    };
    let ns = cluster.namespace("pullfail").await;
    let dir = tempfile::tempdir().unwrap();
    let text = std::fs::read_to_string(common::example("minimal")).unwrap();
    // kwok holds a pod with this annotation in ImagePullBackOff, as a kubelet would.
    let file = edited_in(dir.path(), "pullfail", &ns, &text, |t| {
        t + "  overrides:\n    - kind: Deployment\n      name: demo-users\n      patch:\n        spec:\n          template:\n            metadata:\n              annotations:\n                panthera.dev/test-fail: image-pull\n"
    });
    let started = Instant::now();
    let o = cluster
        .panthera(&[
            "apply",
            "-f",
            file.to_str().unwrap(),
            "--wait",
            "--timeout",
            "180s",
        ])
        .await;
    assert_eq!(o.status.code(), Some(1), "{}", stdout(&o));
    let err = stderr(&o);
    assert!(
        err.contains("service/users is stalled") && err.contains("ImagePullBackOff"),
        "{err}"
    );
    assert!(
        started.elapsed() < Duration::from_secs(90),
        "failed fast, not at the deadline: {:?}",
        started.elapsed()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreachable_server_is_reported_with_what_to_check() {
    let Some(cluster) = real_cluster() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let text = std::fs::read_to_string(&cluster.kubeconfig).unwrap();
    let server = text
        .lines()
        .find_map(|l| l.trim().strip_prefix("server: "))
        .unwrap()
        .to_string();
    let dead = dir.path().join("dead.kubeconfig");
    std::fs::write(&dead, text.replace(&server, "https://127.0.0.1:9")).unwrap();
    let started = Instant::now();
    let o = cluster
        .panthera_as(
            &dead,
            &["status", "-f", common::example("minimal").to_str().unwrap()],
        )
        .await;
    assert_eq!(o.status.code(), Some(1));
    assert!(
        stderr(&o).contains("cannot reach the Kubernetes API"),
        "{}",
        stderr(&o)
    );
    assert!(started.elapsed() < Duration::from_secs(15));
}

/// The CRD as `panthera crd` prints it is accepted by the API server (its CEL rules within the
/// server's cost budget, every fieldPath resolvable), and the server enforces its rules with
/// the same messages `panthera validate` gives.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_api_server_accepts_the_crd_and_enforces_its_rules() {
    use kube::api::PostParams;
    use panthera::api::PantheraPlatform;
    let Some(cluster) = real_cluster() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let crd_file = dir.path().join("crd.yaml");
    let crd_yaml = panthera::api::crd_yaml().unwrap();
    std::fs::write(&crd_file, &crd_yaml).unwrap();
    ok(&cluster.kubectl(&[
        "apply",
        "--server-side",
        "--field-manager=panthera",
        "-f",
        crd_file.to_str().unwrap(),
    ]));
    ok(&cluster.kubectl(&[
        "wait",
        "--for=condition=Established",
        "crd/pantheraplatforms.panthera.dev",
        "--timeout=60s",
    ]));
    let ns = cluster.namespace("crd").await;
    let platforms: Api<PantheraPlatform> = Api::namespaced(cluster.client().await, &ns);
    let mut platform = panthera::load::load_file(&common::example("minimal")).unwrap();
    platform.metadata.namespace = Some(ns.clone());
    platform.spec.services[0].database = Some("nowhere".into());
    let err = platforms
        .create(&PostParams::default(), &platform)
        .await
        .unwrap_err();
    let kube::Error::Api(status) = err else {
        panic!("{err:?}")
    };
    assert_eq!(status.code, 422);
    assert!(
        status
            .message
            .contains(panthera::api::rules::msg::DATABASE_EXISTS),
        "{}",
        status.message
    );
    let mut long = panthera::load::load_file(&common::example("minimal")).unwrap();
    long.metadata.namespace = Some(ns.clone());
    long.metadata.name = Some("a".repeat(25));
    let err = platforms
        .create(&PostParams::default(), &long)
        .await
        .unwrap_err();
    assert!(
        err.to_string()
            .contains(panthera::api::rules::msg::NAME_LENGTH),
        "{err}"
    );
    platform.spec.services[0].database = Some("users".into());
    platforms
        .create(&PostParams::default(), &platform)
        .await
        .unwrap();
}
