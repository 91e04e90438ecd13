//! Probes that tell the truth, on the real node: each failure mode the day-2 issue found, brought
//! about for real against the manifests `panthera render` gives, with the probe a previous
//! rendering had run beside the rendered one, to show the difference is the fix's.
//!
//! - PostgreSQL's first initialization slower than the liveness budget (15 s × 6 = 90 s before
//!   the startup probe) is not killed halfway;
//! - PostgreSQL without its application database, and Redis with another password than the
//!   platform's, are not Ready (`pg_isready` and a bare `redis-cli ping` say they are);
//! - a database that answers in more than a second does not make a service unready (the kubelet's
//!   default probe timeout was 1 s; the service's own check allows 2).
//!
//! The platforms are applied with kubectl from `panthera render --show-secrets`, so a test may
//! change what a user cannot (an init script that sleeps) and leave the rest as rendered.

use std::path::Path;

use k8s_openapi::api::core::v1::Pod;
use kube::api::Api;
use serde_json::{Value, json};

use super::*;

/// Longer than the 90 s the liveness probe gave a PostgreSQL that had no startup probe.
const SLOW_INIT_SECONDS: u64 = 100;

/// A platform of the given parts only: `database` PostgreSQL 15 `users`, `redis` Redis 7.0,
/// `service` the users service on that database; small CPU requests, as on the shop.
fn probe_platform(dir: &Path, namespace: &str, parts: &[&str]) -> std::path::PathBuf {
    let small = json!({"requests": {"cpu": "20m"}});
    let mut spec = serde_json::Map::new();
    if parts.contains(&"database") {
        spec.insert(
            "databases".into(),
            json!([{"name": "users", "version": "15", "storage": "1Gi", "resources": small}]),
        );
    }
    if parts.contains(&"redis") {
        spec.insert(
            "redis".into(),
            json!({"version": "7.0", "storage": "1Gi", "resources": small}),
        );
    }
    if parts.contains(&"service") {
        spec.insert(
            "services".into(),
            json!([{"name": "users", "kind": "users", "replicas": 1, "database": "users",
                    "resources": small}]),
        );
    }
    let platform = json!({
        "apiVersion": "panthera.dev/v1alpha1",
        "kind": "PantheraPlatform",
        "metadata": {"name": "probe", "namespace": namespace},
        "spec": spec,
    });
    let path = dir.join("platform.json");
    std::fs::write(&path, platform.to_string()).unwrap();
    path
}

/// The objects `panthera render --show-secrets` gives for the platform file.
fn render(platform: &Path) -> Vec<Value> {
    let rendered = common::run(&[
        "render",
        "-f",
        platform.to_str().unwrap(),
        "-o",
        "json",
        "--show-secrets",
    ]);
    ok("render", &rendered);
    let list: Value = serde_json::from_str(&stdout(&rendered)).unwrap();
    list["items"].as_array().unwrap().clone()
}

/// `kubectl apply` of the objects, through a file in `dir`.
fn kubectl_apply(node: &RealNode, dir: &Path, objects: &[Value]) {
    let file = dir.join(format!("apply-{}.json", common::cluster::uuid_like()));
    let list = json!({"apiVersion": "v1", "kind": "List", "items": objects});
    std::fs::write(&file, list.to_string()).unwrap();
    let applied = node
        .cluster
        .kubectl(&["apply", "--server-side", "-f", file.to_str().unwrap()]);
    ok("kubectl apply", &applied);
}

/// `sh -c script` in the pod's first container, as the container's user.
fn exec(node: &RealNode, namespace: &str, pod: &str, script: &str) -> Output {
    node.cluster
        .kubectl(&["exec", "-n", namespace, pod, "--", "sh", "-c", script])
}

async fn pod(node: &RealNode, namespace: &str, name: &str) -> Option<Pod> {
    let pods: Api<Pod> = Api::namespaced(node.cluster.client().await, namespace);
    pods.get_opt(name).await.unwrap()
}

/// Waits until the pod's Ready condition is `ready`; how long that took.
async fn wait_ready(
    node: &RealNode,
    namespace: &str,
    name: &str,
    ready: bool,
    within: Duration,
) -> Duration {
    let started = Instant::now();
    loop {
        if pod(node, namespace, name)
            .await
            .is_some_and(|p| common::node::is_ready(&p) == ready)
        {
            return started.elapsed();
        }
        assert!(
            started.elapsed() < within,
            "{name} not {} within {within:?}: {:?}",
            if ready { "Ready" } else { "unready" },
            pod(node, namespace, name).await.and_then(|p| p.status)
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

fn restart_count(pod: &Pod) -> i32 {
    restarts(std::slice::from_ref(pod)).values().sum()
}

/// The first initialization runs an init script that sleeps past the old liveness budget:
/// the pod is Ready once, never restarted, with its application database; while it
/// initializes, the command the old liveness probe ran fails (it would have been killed).
/// Then the application database is dropped: `pg_isready` (the old readiness probe) still
/// answers 0, the rendered probe makes the pod unready.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_survives_a_slow_first_start_and_is_ready_only_with_its_database() {
    let Some(node) = real_node() else {
        return;
    };
    let ns = node.namespace("probe-pg").await;
    let dir = tempfile::tempdir().unwrap();
    let platform = probe_platform(dir.path(), &ns, &["database"]);
    let mut objects = render(&platform);
    objects.insert(
        0,
        json!({"apiVersion": "v1", "kind": "ConfigMap",
               "metadata": {"name": "slow-init", "namespace": ns},
               "data": {"slow.sh": format!("sleep {SLOW_INIT_SECONDS}\n")}}),
    );
    let statefulset = objects
        .iter_mut()
        .find(|o| o["kind"] == "StatefulSet")
        .unwrap();
    let template = &mut statefulset["spec"]["template"]["spec"];
    template["volumes"]
        .as_array_mut()
        .unwrap()
        .push(json!({"name": "slow-init", "configMap": {"name": "slow-init"}}));
    template["containers"][0]["volumeMounts"]
        .as_array_mut()
        .unwrap()
        .push(json!({"name": "slow-init", "mountPath": "/docker-entrypoint-initdb.d"}));
    let started = Instant::now();
    kubectl_apply(&node, dir.path(), &objects);

    let name = "probe-db-users-0";
    let old_liveness = "pg_isready -h 127.0.0.1 -U \"$POSTGRES_USER\" -d \"$POSTGRES_DB\"";
    let mut old_liveness_failed = false;
    loop {
        let p = pod(&node, &ns, name).await;
        if p.as_ref().is_some_and(common::node::is_ready) {
            break;
        }
        let running = p
            .as_ref()
            .and_then(|p| p.status.as_ref())
            .and_then(|s| s.phase.as_deref())
            == Some("Running");
        if running && started.elapsed() > Duration::from_secs(30) && !old_liveness_failed {
            old_liveness_failed = !exec(&node, &ns, name, old_liveness).status.success();
        }
        assert!(
            started.elapsed() < Duration::from_secs(SLOW_INIT_SECONDS + 180),
            "{name} not Ready: {:?}",
            p.and_then(|p| p.status)
        );
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    let took = started.elapsed();
    eprintln!("PostgreSQL Ready {:.0} s after apply", took.as_secs_f64());
    assert!(
        took > Duration::from_secs(SLOW_INIT_SECONDS),
        "Ready after {took:?}: the init script did not run"
    );
    assert!(
        old_liveness_failed,
        "pg_isready answered during the first initialization: the old liveness probe would pass"
    );
    let p = pod(&node, &ns, name).await.unwrap();
    assert_eq!(restart_count(&p), 0, "a slow first start was killed");
    // A kill the kubelet has decided on may still be under way (the entrypoint ignores SIGTERM,
    // so it waits out the grace period): its liveness failures are in the events already.
    let liveness: Vec<String> = probe_failures(&node, &ns, name)
        .into_iter()
        .filter(|e| e.contains("Liveness"))
        .collect();
    assert!(
        liveness.is_empty(),
        "liveness failed while initializing: {liveness:?}"
    );
    let query = "PGPASSWORD=\"$POSTGRES_PASSWORD\" psql -X -h 127.0.0.1 -U \"$POSTGRES_USER\" \
                 -d \"$POSTGRES_DB\" -tAc 'SELECT current_database()'";
    let answer = exec(&node, &ns, name, query);
    ok("query the application database", &answer);
    assert_eq!(stdout(&answer).trim(), "users");

    // A first initialization cut short leaves a data directory without the application
    // database; dropping it is the same state.
    let drop = "PGPASSWORD=\"$POSTGRES_PASSWORD\" psql -X -h 127.0.0.1 -U \"$POSTGRES_USER\" \
                -d postgres -c \"DROP DATABASE \\\"$POSTGRES_DB\\\" WITH (FORCE)\"";
    ok(
        "drop the application database",
        &exec(&node, &ns, name, drop),
    );
    assert!(
        exec(&node, &ns, name, old_liveness).status.success(),
        "pg_isready refused a server without the database: the old probe was not fooled"
    );
    let unready = wait_ready(&node, &ns, name, false, Duration::from_secs(60)).await;
    eprintln!(
        "PostgreSQL unready {:.0} s after its database went",
        unready.as_secs_f64()
    );
    assert_eq!(
        restart_count(&pod(&node, &ns, name).await.unwrap()),
        0,
        "liveness killed a server that is alive"
    );
    clean_up(&node, &[&ns]).await;
}

/// Redis whose password is not the platform's any more (what a client of the platform sees as
/// NOAUTH or WRONGPASS) is unready; a bare `redis-cli ping`, the old probe, exits 0 on NOAUTH.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_is_ready_only_for_the_platforms_password() {
    let Some(node) = real_node() else {
        return;
    };
    let ns = node.namespace("probe-redis").await;
    let dir = tempfile::tempdir().unwrap();
    let platform = probe_platform(dir.path(), &ns, &["redis"]);
    kubectl_apply(&node, dir.path(), &render(&platform));
    let name = "probe-redis-0";
    wait_ready(&node, &ns, name, true, Duration::from_secs(180)).await;

    let old_probe = exec(
        &node,
        &ns,
        name,
        "unset REDISCLI_AUTH; redis-cli -h 127.0.0.1 ping",
    );
    assert!(old_probe.status.success(), "{}", stderr(&old_probe));
    assert!(
        stdout(&old_probe).contains("NOAUTH"),
        "{}",
        stdout(&old_probe)
    );

    let change = exec(
        &node,
        &ns,
        name,
        "redis-cli -h 127.0.0.1 CONFIG SET requirepass not-the-platforms",
    );
    ok("change the password", &change);
    assert_eq!(stdout(&change).trim(), "OK");
    let unready = wait_ready(&node, &ns, name, false, Duration::from_secs(45)).await;
    eprintln!(
        "Redis unready {:.0} s after its password changed",
        unready.as_secs_f64()
    );
    // Put back before the liveness probe (4 × 15 s) restarts it: Ready again, never restarted.
    let back = exec(
        &node,
        &ns,
        name,
        "REDISCLI_AUTH=not-the-platforms redis-cli -h 127.0.0.1 CONFIG SET requirepass \
         \"$REDIS_PASSWORD\"",
    );
    ok("restore the password", &back);
    wait_ready(&node, &ns, name, true, Duration::from_secs(45)).await;
    assert_eq!(restart_count(&pod(&node, &ns, name).await.unwrap()), 0);
    clean_up(&node, &[&ns]).await;
}

/// A TCP relay in the PostgreSQL container (Perl, which the image has for postgresql-common)
/// on port 5433 to the server. While /tmp/slow exists it holds back 1.2 s a connection's first
/// client write and the first after a pause (a new query; the round trips that follow at once,
/// such as a statement's execution after its preparation, pass): a database that answers every query in about 1.2 s,
/// as a loaded or distant one does. (The node has no netem qdisc to delay the link instead.)
const SLOW_RELAY: &str = r#"
use IO::Socket::INET;
$SIG{CHLD} = 'IGNORE';
my $listener = IO::Socket::INET->new(LocalAddr => '0.0.0.0:5433', Listen => 64, ReuseAddr => 1)
    or die "listen: $!";
while (my $client = $listener->accept) {
    my $server = IO::Socket::INET->new(PeerAddr => '127.0.0.1:5432') or do { close $client; next };
    for my $way ([$client, $server, 1], [$server, $client, 0]) {
        next if fork;
        my ($from, $to, $held) = @$way;
        my ($chunk, $first) = ('', 1);
        while (1) {
            my $bits = '';
            vec($bits, fileno($from), 1) = 1;
            my $idle = !select(my $ready = $bits, undef, undef, 0.3) || $first;
            $first = 0;
            last unless sysread($from, $chunk, 65536);
            select(undef, undef, undef, 1.2) if $held && $idle && -e '/tmp/slow';
            syswrite($to, $chunk) or last;
        }
        shutdown($to, 1);
        exit 0;
    }
    close $client;
    close $server;
}
"#;

/// The users service reaches its database through [`SLOW_RELAY`]; made slow for 30 s, every
/// `/readyz` takes over a second, longer than the kubelet's default 1 s probe timeout the
/// probe had, and the pod stays Ready throughout under the rendered probe.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_database_does_not_make_a_service_unready() {
    let Some(node) = real_node() else {
        return;
    };
    // Timing measured on two cores: not beside a shop starting.
    let _one = ONE_SHOP.lock().await;
    let ns = node.namespace("probe-slow").await;
    let dir = tempfile::tempdir().unwrap();
    let platform = probe_platform(dir.path(), &ns, &["database", "service"]);
    let mut objects = render(&platform);
    // The service's connection goes through the relay: a Service for its port, and the
    // connection Secret's URL pointing there.
    let secret = objects
        .iter_mut()
        .find(|o| o["kind"] == "Secret" && o["metadata"]["name"] == "probe-db-users")
        .unwrap();
    let url = secret["stringData"]["url"].as_str().unwrap().to_owned();
    let relayed = url
        .replace("@probe-db-users.", "@probe-db-slow.")
        .replace(":5432/", ":5433/");
    assert_ne!(url, relayed);
    secret["stringData"]["url"] = json!(relayed);
    let mut relay_service = objects
        .iter()
        .find(|o| o["kind"] == "Service" && o["metadata"]["name"] == "probe-db-users")
        .unwrap()
        .clone();
    relay_service["metadata"]["name"] = json!("probe-db-slow");
    relay_service["spec"]["ports"] = json!([{"name": "relay", "port": 5433, "targetPort": 5433}]);
    objects.push(relay_service);
    // The service starts once its database is up, not into a crash-loop back-off.
    let (deployments, stores): (Vec<Value>, Vec<Value>) =
        objects.into_iter().partition(|o| o["kind"] == "Deployment");
    kubectl_apply(&node, dir.path(), &stores);
    let database = "probe-db-users-0";
    wait_ready(&node, &ns, database, true, Duration::from_secs(180)).await;
    let start_relay = format!(
        "cat >/tmp/relay.pl <<'EOF'\n{SLOW_RELAY}\nEOF\nnohup perl /tmp/relay.pl >/tmp/relay.log 2>&1 &"
    );
    ok("start the relay", &exec(&node, &ns, database, &start_relay));
    kubectl_apply(&node, dir.path(), &deployments);
    let started = Instant::now();
    let service = loop {
        let pods = node.pods(&ns).await;
        if let Some(p) = pods.iter().find(|p| {
            p.metadata
                .name
                .as_deref()
                .is_some_and(|n| n.starts_with("probe-users-"))
                && common::node::is_ready(p)
        }) {
            break p.clone();
        }
        assert!(
            started.elapsed() < Duration::from_secs(180),
            "the users service is not Ready: {:?}",
            pods.iter().map(|p| &p.status).collect::<Vec<_>>()
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    };
    let service_name = service.metadata.name.clone().unwrap();
    // The pod's own address, as the kubelet probes it.
    let direct = Gateway::new(format!(
        "http://{}:8080",
        service.status.as_ref().unwrap().pod_ip.as_ref().unwrap()
    ));

    ok(
        "slow the database",
        &exec(&node, &ns, database, "touch /tmp/slow"),
    );
    let slow_for = Duration::from_secs(30);
    let started = Instant::now();
    let mut took = Vec::new();
    while started.elapsed() < slow_for {
        let sent = Instant::now();
        let (status, body) = direct.send(Method::GET, "/readyz", None, None).await;
        took.push(sent.elapsed());
        assert_eq!(status, StatusCode::OK, "{body}");
        let p = pod(&node, &ns, &service_name).await.unwrap();
        assert!(
            common::node::is_ready(&p),
            "the service went unready {:.0} s into a slow database",
            started.elapsed().as_secs_f64()
        );
        // A pause, as between the kubelet's probes: the relay holds a query after one.
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    // A query that follows another on the same connection within 0.3 s passes the relay
    // unheld (the kubelet's probe and this loop share the service's pool): most, not all, are
    // slow.
    let slow = took.iter().filter(|t| **t > Duration::from_secs(1)).count();
    eprintln!(
        "/readyz over the old 1 s probe timeout during the slow database: {slow} of {}",
        took.len()
    );
    assert!(
        slow * 4 >= took.len() * 3,
        "/readyz mostly answered within the old 1 s probe timeout ({took:?}): the database was not slow"
    );
    assert_eq!(
        restart_count(&pod(&node, &ns, &service_name).await.unwrap()),
        0
    );
    let failed = probe_failures(&node, &ns, &service_name);
    assert!(failed.is_empty(), "probes failed: {failed:?}");
    clean_up(&node, &[&ns]).await;
}

/// The kubelet's `Unhealthy` events of a pod: each failed probe, with the kubelet's words.
fn probe_failures(node: &RealNode, namespace: &str, pod: &str) -> Vec<String> {
    let events = node.cluster.kubectl(&[
        "get",
        "events",
        "-n",
        namespace,
        "--field-selector",
        &format!("involvedObject.name={pod},reason=Unhealthy"),
        "-o",
        "json",
    ]);
    ok("list events", &events);
    let events: Value = serde_json::from_str(&stdout(&events)).unwrap();
    events["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| format!("{} x{}", e["message"], e["count"]))
        .collect()
}
