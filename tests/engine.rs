//! The real `panthera` binary against kube-sim (the Kubernetes API simulator) over HTTP.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code

mod common;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Output;
use std::time::{Duration, Instant};

use common::{example, stderr, stdout};
use kube_sim::{FaultKind, KubeSim};

/// A cluster where the user has created the shop's Secrets (HS256 key, TLS, first admin).
async fn sim() -> KubeSim {
    let sim = bare_sim().await;
    let shop = panthera::load::load_file(&example("shop")).unwrap();
    common::provide_secrets(&sim.client().unwrap(), &shop).await;
    sim
}

async fn bare_sim() -> KubeSim {
    KubeSim::builder()
        .ready_delay(Duration::from_millis(50))
        .start()
        .await
        .expect("kube-sim starts")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn missing_user_secrets_stop_plan_and_apply_before_any_write() {
    let sim = bare_sim().await;
    let shop = example("shop");
    let shop = shop.to_str().unwrap();
    for command in ["plan", "apply"] {
        let o = panthera(&sim, &[command, "-f", shop]).await;
        assert!(!o.status.success(), "{command}: {}", stdout(&o));
        let err = stderr(&o);
        assert!(
            err.contains("kubectl -n shop create secret generic shop-jwt --from-literal=secret="),
            "{command}: {err}"
        );
        assert!(err.contains("create secret tls shop-api-tls"), "{err}");
        assert!(err.contains("create secret generic shop-admin"), "{err}");
    }
    assert_eq!(
        sim.counters().writes(),
        0,
        "nothing may be written: {:?}",
        sim.counters()
    );

    // A Secret without its key is refused too, naming the key.
    let client = sim.client().unwrap();
    let platform = panthera::load::load_file(&example("shop")).unwrap();
    common::provide_secrets(&client, &platform).await;
    let secrets: kube::Api<k8s_openapi::api::core::v1::Secret> =
        kube::Api::namespaced(client.clone(), "shop");
    secrets
        .delete("shop-jwt", &Default::default())
        .await
        .unwrap();
    secrets
        .create(
            &Default::default(),
            &serde_json::from_value(serde_json::json!({
                "metadata": {"name": "shop-jwt"},
                "stringData": {"other": "x"},
            }))
            .unwrap(),
        )
        .await
        .unwrap();
    sim.reset_counters();
    let o = panthera(&sim, &["apply", "-f", shop]).await;
    assert!(!o.status.success());
    assert!(
        stderr(&o).contains(
            "Secret shop-jwt (the gateway's HS256 token key) has no (or an empty) key secret"
        ),
        "{}",
        stderr(&o)
    );
    assert_eq!(sim.counters().writes(), 0, "{:?}", sim.counters());
}

/// Run the binary off the async runtime (the simulator serves on it meanwhile).
async fn panthera(sim: &KubeSim, args: &[&str]) -> Output {
    let mut all: Vec<String> = args.iter().map(|s| s.to_string()).collect();
    all.push("--kubeconfig".into());
    all.push(sim.kubeconfig_path().display().to_string());
    tokio::task::spawn_blocking(move || {
        common::bin()
            .args(&all)
            .env_remove("KUBECONFIG")
            .output()
            .unwrap()
    })
    .await
    .unwrap()
}

fn lines_with(o: &Output, prefix: &str) -> BTreeSet<String> {
    stdout(o)
        .lines()
        .filter_map(|l| l.strip_prefix(prefix))
        .map(str::to_string)
        .collect()
}

/// The shop example with `edit` applied to its text, in a temp file.
fn shop_variant(dir: &Path, name: &str, edit: impl Fn(String) -> String) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(
        &path,
        edit(std::fs::read_to_string(example("shop")).unwrap()),
    )
    .unwrap();
    path
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn apply_converges_reapplies_with_zero_writes_and_changes_only_what_changed() {
    let sim = sim().await;
    let shop = example("shop");
    let shop = shop.to_str().unwrap();

    let first = panthera(&sim, &["apply", "-f", shop, "--wait", "--timeout", "60s"]).await;
    assert!(
        first.status.success(),
        "{}{}",
        stdout(&first),
        stderr(&first)
    );
    let created = lines_with(&first, "created ");
    // 58: the shop's objects with its four dashboards and its bucket in the cluster (the object
    // server's Secret, two NetworkPolicies, Service and StatefulSet; the bucket's Secret and
    // setup Job), without the ServiceMonitors and the PrometheusRule (the cluster does not serve
    // monitoring.coreos.com/v1).
    assert_eq!(created.len(), 58, "{created:?}");
    assert!(
        stdout(&first).contains("gateway"),
        "final table: {}",
        stdout(&first)
    );

    sim.reset_counters();
    let second = panthera(&sim, &["apply", "-f", shop, "--wait"]).await;
    assert!(second.status.success(), "{}", stderr(&second));
    assert_eq!(
        sim.counters().writes(),
        0,
        "a re-apply writes nothing: {:?}",
        sim.counters()
    );
    assert!(
        stdout(&second).contains("0 created, 0 changed, 58 unchanged"),
        "{}",
        stdout(&second)
    );

    let dir = tempfile::tempdir().unwrap();
    let scaled = shop_variant(dir.path(), "scaled.yaml", |t| {
        t.replacen(
            "      replicas: 2\n      database: users",
            "      replicas: 3\n      database: users",
            1,
        )
    });
    let plan = panthera(
        &sim,
        &["plan", "-f", scaled.to_str().unwrap(), "--exit-code"],
    )
    .await;
    assert_eq!(plan.status.code(), Some(2), "{}", stderr(&plan));
    let text = stdout(&plan);
    assert!(
        text.contains("~ Deployment/shop-users (service/users)")
            && text.contains("+  replicas: 3")
            && text.contains("-  replicas: 2"),
        "{text}"
    );
    assert!(
        text.contains("Plan: 0 to add, 1 to change, 0 to prune, 57 unchanged."),
        "{text}"
    );
    // The shop asks for Prometheus; this cluster has no Prometheus operator, and plan says so.
    assert!(
        text.contains("Note: the cluster does not serve monitoring.coreos.com/v1")
            && text.contains("ServiceMonitor/shop-gateway")
            && text.contains("PrometheusRule/shop"),
        "{text}"
    );
    let unchanged_plan = panthera(&sim, &["plan", "-f", shop, "--exit-code"]).await;
    assert_eq!(
        unchanged_plan.status.code(),
        Some(0),
        "{}",
        stdout(&unchanged_plan)
    );

    sim.reset_counters();
    let third = panthera(&sim, &["apply", "-f", scaled.to_str().unwrap()]).await;
    assert!(third.status.success(), "{}", stderr(&third));
    assert_eq!(
        lines_with(&third, "changed "),
        BTreeSet::from(["Deployment/shop-users".to_string()])
    );
    assert_eq!(sim.counters().writes(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn removing_a_service_prunes_exactly_its_objects_and_destroy_keeps_data() {
    let sim = sim().await;
    let shop = example("shop");
    assert!(
        panthera(&sim, &["apply", "-f", shop.to_str().unwrap()])
            .await
            .status
            .success()
    );

    let dir = tempfile::tempdir().unwrap();
    let without_orders = shop_variant(dir.path(), "no-orders.yaml", |t| {
        let t = t.replace(
            "      - pathPrefix: /v1/orders\n        service: orders\n",
            "",
        );
        let start = t.find("    - name: orders\n      kind: orders").unwrap();
        let end = t[start..].find("  databases:").unwrap() + start;
        format!("{}{}", &t[..start], &t[end..])
    });
    let plan = panthera(
        &sim,
        &[
            "plan",
            "-f",
            without_orders.to_str().unwrap(),
            "--prune",
            "-o",
            "json",
        ],
    )
    .await;
    assert!(plan.status.success(), "{}", stderr(&plan));
    let o = panthera(
        &sim,
        &["apply", "-f", without_orders.to_str().unwrap(), "--prune"],
    )
    .await;
    assert!(o.status.success(), "{}", stderr(&o));
    let pruned = lines_with(&o, "pruned ");
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
    assert_eq!(pruned, expected);
    let plan: serde_json::Value = serde_json::from_slice(&plan.stdout).unwrap();
    assert_eq!(plan["summary"]["prune"], 5);

    let destroy = panthera(&sim, &["destroy", "-f", shop.to_str().unwrap(), "--yes"]).await;
    assert!(destroy.status.success(), "{}", stderr(&destroy));
    let client = sim.client().unwrap();
    let secrets: kube::Api<k8s_openapi::api::core::v1::Secret> =
        kube::Api::namespaced(client.clone(), "shop");
    let kept: BTreeSet<String> = secrets
        .list(&Default::default())
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
        assert!(
            kept.contains(secret),
            "{secret} keeps the data reachable: {kept:?}"
        );
    }
    let sets: kube::Api<k8s_openapi::api::apps::v1::StatefulSet> =
        kube::Api::namespaced(client.clone(), "shop");
    assert!(
        sets.list(&Default::default())
            .await
            .unwrap()
            .items
            .is_empty()
    );
    let deployments: kube::Api<k8s_openapi::api::apps::v1::Deployment> =
        kube::Api::namespaced(client, "shop");
    assert!(
        deployments
            .list(&Default::default())
            .await
            .unwrap()
            .items
            .is_empty()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_image_pull_failure_fails_fast_naming_the_component() {
    let sim = sim().await;
    sim.fail_workload(
        "shop",
        "Deployment",
        "shop-catalog",
        "ImagePullBackOff",
        "Back-off pulling image \"ghcr.io/panthera-dev/panthera-catalog:0.1.0\"",
    );
    let started = Instant::now();
    let o = panthera(
        &sim,
        &[
            "apply",
            "-f",
            example("shop").to_str().unwrap(),
            "--wait",
            "--timeout",
            "120s",
        ],
    )
    .await;
    assert_eq!(o.status.code(), Some(1));
    let err = stderr(&o);
    assert!(
        err.contains("service/catalog is stalled") && err.contains("ImagePullBackOff"),
        "{err}"
    );
    assert!(
        started.elapsed() < Duration::from_secs(30),
        "failed fast, not at the deadline: {:?}",
        started.elapsed()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn twenty_percent_api_errors_still_converge() {
    let sim = sim().await;
    sim.faults()
        .set_error_rate(None, None, 0.2, FaultKind::Internal500);
    let o = panthera(
        &sim,
        &[
            "apply",
            "-f",
            example("shop").to_str().unwrap(),
            "--wait",
            "--timeout",
            "120s",
        ],
    )
    .await;
    assert!(o.status.success(), "{}{}", stdout(&o), stderr(&o));
    sim.faults().clear();
    sim.reset_counters();
    let again = panthera(&sim, &["apply", "-f", example("shop").to_str().unwrap()]).await;
    assert!(again.status.success());
    assert_eq!(
        sim.counters().writes(),
        0,
        "converged: nothing left to write"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unreachable_cluster_and_foreign_objects_are_reported_clearly() {
    let sim = sim().await;
    // An object with a name Panthera wants, created by someone else.
    let client = sim.client().unwrap();
    let namespaces: kube::Api<k8s_openapi::api::core::v1::Namespace> =
        kube::Api::all(client.clone());
    namespaces
        .create(
            &Default::default(),
            &serde_json::from_value(serde_json::json!({"metadata": {"name": "demo"}})).unwrap(),
        )
        .await
        .unwrap();
    let cms: kube::Api<k8s_openapi::api::core::v1::ServiceAccount> =
        kube::Api::namespaced(client, "demo");
    cms.create(
        &Default::default(),
        &serde_json::from_value(serde_json::json!({"metadata": {"name": "demo-users"}})).unwrap(),
    )
    .await
    .unwrap();
    let o = panthera(&sim, &["apply", "-f", example("minimal").to_str().unwrap()]).await;
    assert_eq!(o.status.code(), Some(1));
    assert!(
        stderr(&o)
            .contains("ServiceAccount/demo-users already exists and is not part of platform demo"),
        "{}",
        stderr(&o)
    );

    // Nothing listens there: reported quickly, with what to check.
    let dir = tempfile::tempdir().unwrap();
    let config = std::fs::read_to_string(sim.kubeconfig_path())
        .unwrap()
        .replace(sim.url(), "http://127.0.0.1:9");
    let dead = dir.path().join("dead.kubeconfig");
    std::fs::write(&dead, config).unwrap();
    let started = Instant::now();
    let o = tokio::task::spawn_blocking(move || {
        common::bin()
            .args([
                "status",
                "-f",
                example("minimal").to_str().unwrap(),
                "--kubeconfig",
                dead.to_str().unwrap(),
            ])
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    assert_eq!(o.status.code(), Some(1));
    assert!(
        stderr(&o).contains("cannot reach the Kubernetes API"),
        "{}",
        stderr(&o)
    );
    assert!(
        started.elapsed() < Duration::from_secs(15),
        "{:?}",
        started.elapsed()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn via_operator_applies_only_the_resource_and_follows_its_status() {
    use kube::api::{Api, Patch, PatchParams, PostParams};
    use panthera::api::{Condition, ConditionStatus, PantheraPlatform, PantheraPlatformStatus};

    let sim = sim().await;
    let client = sim.client().unwrap();
    let crd: k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition =
        serde_yaml::from_str(&panthera::api::crd_yaml().unwrap()).unwrap();
    let crds: Api<k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition> = Api::all(client.clone());
    crds.create(&PostParams::default(), &crd).await.unwrap();
    let namespaces: Api<k8s_openapi::api::core::v1::Namespace> = Api::all(client.clone());
    namespaces
        .create(
            &PostParams::default(),
            &serde_json::from_value(serde_json::json!({"metadata": {"name": "demo"}})).unwrap(),
        )
        .await
        .unwrap();

    // Play the operator: once the resource appears, report it Ready for its generation.
    let operator = {
        let api: Api<PantheraPlatform> = Api::namespaced(client.clone(), "demo");
        tokio::spawn(async move {
            loop {
                if let Ok(Some(p)) = api.get_opt("demo").await {
                    let generation = p.metadata.generation;
                    let status = PantheraPlatformStatus {
                        observed_generation: generation,
                        conditions: vec![Condition {
                            type_: "Ready".into(),
                            status: ConditionStatus::True,
                            reason: "Reconciled".into(),
                            message: "all components ready".into(),
                            last_transition_time: None,
                            observed_generation: generation,
                        }],
                        ..Default::default()
                    };
                    let patch = serde_json::json!({"apiVersion": "panthera.dev/v1alpha1", "kind": "PantheraPlatform", "status": status});
                    api.patch_status(
                        "demo",
                        &PatchParams::apply("test-operator").force(),
                        &Patch::Apply(&patch),
                    )
                    .await
                    .unwrap();
                    return;
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        })
    };
    sim.reset_counters();
    let o = panthera(
        &sim,
        &[
            "apply",
            "-f",
            example("minimal").to_str().unwrap(),
            "--via-operator",
            "--wait",
            "--timeout",
            "30s",
        ],
    )
    .await;
    assert!(o.status.success(), "{}{}", stdout(&o), stderr(&o));
    assert!(
        stdout(&o).contains("Ready: all components ready"),
        "{}",
        stdout(&o)
    );
    operator.await.unwrap();
    let deployments: Api<k8s_openapi::api::apps::v1::Deployment> = Api::namespaced(client, "demo");
    assert!(
        deployments
            .list(&Default::default())
            .await
            .unwrap()
            .items
            .is_empty(),
        "only the resource is applied"
    );
}

/// A server older than the oldest supported Kubernetes is refused on connect, naming its
/// version, the minimum and what it lacks, before any other request.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_older_than_supported_is_refused_naming_what_it_lacks() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    let requests = std::sync::Arc::new(std::sync::Mutex::new(Vec::<String>::new()));
    let seen = requests.clone();
    tokio::spawn(async move {
        loop {
            let Ok((mut stream, _)) = listener.accept().await else {
                return;
            };
            let mut buffer = vec![0; 4096];
            let n = stream.read(&mut buffer).await.unwrap_or(0);
            let head = String::from_utf8_lossy(&buffer[..n]).into_owned();
            seen.lock()
                .unwrap()
                .push(head.lines().next().unwrap_or_default().to_string());
            let body = r#"{"major":"1","minor":"20","gitVersion":"v1.20.2","gitCommit":"","gitTreeState":"clean","buildDate":"","goVersion":"","compiler":"gc","platform":"linux/amd64"}"#;
            let _ = stream
                .write_all(
                    format!(
                        "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                        body.len()
                    )
                    .as_bytes(),
                )
                .await;
        }
    });
    let dir = tempfile::tempdir().unwrap();
    let kubeconfig = dir.path().join("old.kubeconfig");
    std::fs::write(
        &kubeconfig,
        format!(
            "apiVersion: v1\nkind: Config\nclusters:\n- name: old\n  cluster:\n    server: http://{address}\nusers:\n- name: u\n  user:\n    token: t\ncontexts:\n- name: old\n  context:\n    cluster: old\n    user: u\ncurrent-context: old\n"
        ),
    )
    .unwrap();
    let o = tokio::task::spawn_blocking(move || {
        common::bin()
            .args([
                "apply",
                "-f",
                example("minimal").to_str().unwrap(),
                "--kubeconfig",
                kubeconfig.to_str().unwrap(),
            ])
            .env_remove("KUBECONFIG")
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    assert_eq!(o.status.code(), Some(1), "{}", stdout(&o));
    let err = stderr(&o);
    assert!(
        err.contains("Kubernetes v1.20.2")
            && err.contains("needs v1.29 or newer")
            && err.contains("autoscaling/v2 HorizontalPodAutoscaler (1.23)"),
        "{err}"
    );
    assert_eq!(
        *requests.lock().unwrap(),
        vec!["GET /version HTTP/1.1".to_string()],
        "nothing but the version was asked"
    );
}

/// The same regression as `tests/real_cluster.rs` runs on the real server: quantities written
/// `1000m`, `0.5`, `1024Mi` are applied in the server's canonical form and re-apply with no write.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn quantities_in_any_spelling_reapply_with_zero_writes() {
    let sim = sim().await;
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("quantities.yaml");
    std::fs::write(
        &file,
        std::fs::read_to_string(example("minimal")).unwrap().replace(
            "      replicas: 1\n",
            "      replicas: 1\n      resources:\n        requests: {cpu: \"0.5\", memory: 1024Mi}\n        limits: {cpu: 1000m, memory: 2048Mi}\n",
        ),
    )
    .unwrap();
    let file = file.to_str().unwrap();
    let first = panthera(&sim, &["apply", "-f", file]).await;
    assert!(first.status.success(), "{}", stderr(&first));
    let deployments: kube::Api<k8s_openapi::api::apps::v1::Deployment> =
        kube::Api::namespaced(sim.client().unwrap(), "demo");
    let container = &deployments
        .get("demo-users")
        .await
        .unwrap()
        .spec
        .unwrap()
        .template
        .spec
        .unwrap()
        .containers[0];
    assert_eq!(
        serde_json::to_value(&container.resources).unwrap(),
        serde_json::json!({"requests": {"cpu": "500m", "memory": "1Gi"}, "limits": {"cpu": "1", "memory": "2Gi"}})
    );
    sim.reset_counters();
    let again = panthera(&sim, &["apply", "-f", file]).await;
    assert!(again.status.success(), "{}", stderr(&again));
    assert_eq!(sim.counters().writes(), 0, "{:?}", sim.counters());
    let plan = panthera(&sim, &["plan", "-f", file, "--exit-code"]).await;
    assert_eq!(plan.status.code(), Some(0), "{}", stdout(&plan));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_store_version_change_a_roll_cannot_carry_is_refused_by_plan_and_apply() {
    let sim = sim().await;
    let shop = example("shop");
    let first = panthera(&sim, &["apply", "-f", shop.to_str().unwrap()]).await;
    assert!(first.status.success(), "{}", stderr(&first));

    // PostgreSQL 16 -> 17: a 17 server cannot open a 16 data directory.
    let dir = tempfile::tempdir().unwrap();
    let major = shop_variant(dir.path(), "major.yaml", |t| {
        t.replacen(
            "    - name: users\n      version: \"16\"",
            "    - name: users\n      version: \"17\"",
            1,
        )
    });
    sim.reset_counters();
    for command in ["plan", "apply"] {
        let o = panthera(&sim, &[command, "-f", major.to_str().unwrap()]).await;
        assert_eq!(o.status.code(), Some(1), "{command}: {}", stdout(&o));
        let err = stderr(&o);
        assert!(
            err.contains("postgres/users: PostgreSQL 16 -> 17 is refused")
                && err.contains("add a database with version \"17\" under another name"),
            "{command}: {err}"
        );
    }
    assert_eq!(sim.counters().writes(), 0, "{:?}", sim.counters());

    // Redis 7.2 -> 7.4 rolls; back to 7.0 is refused.
    let newer = shop_variant(dir.path(), "redis-newer.yaml", |t| {
        t.replacen("version: \"7.2\"", "version: \"7.4\"", 1)
    });
    let plan = panthera(&sim, &["plan", "-f", newer.to_str().unwrap()]).await;
    assert!(plan.status.success(), "{}", stderr(&plan));
    assert!(
        stdout(&plan).contains("~ StatefulSet/shop-redis"),
        "{}",
        stdout(&plan)
    );
    let older = shop_variant(dir.path(), "redis-older.yaml", |t| {
        t.replacen("version: \"7.2\"", "version: \"7.0\"", 1)
    });
    let plan = panthera(&sim, &["plan", "-f", older.to_str().unwrap()]).await;
    assert_eq!(plan.status.code(), Some(1), "{}", stdout(&plan));
    assert!(
        stderr(&plan).contains("redis: Redis 7.2 -> 7.0 is refused"),
        "{}",
        stderr(&plan)
    );
}
