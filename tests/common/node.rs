//! The real node that `scripts/test.sh` starts beside the control plane (kubelet, containerd,
//! runc, the CNI bridge, kube-proxy, cluster DNS), where pods really run from the images
//! `scripts/images.sh` builds.
//!
//! The node is tainted, so the KWOK tier's pods never land on it; a namespace made by
//! [`RealNode::namespace`] carries the annotations of the `PodNodeSelector` and
//! `PodTolerationRestriction` admission plugins, which put every pod of that namespace on the real
//! node without changing what Panthera renders.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::{Namespace, Pod, Secret, Service};
use kube::api::{Api, ListParams, PostParams};
use serde_json::{Value, json};

use super::cluster::{RealCluster, real_cluster};

/// Label the node script puts on the real node, and the taint that keeps other pods off it.
const NODE_SELECTOR: &str = "panthera.dev/node=real";
const TAINT_KEY: &str = "panthera.dev/real-node";

/// The first administrator of the platforms the real-node tests run.
pub const ADMIN_EMAIL: &str = "admin@shop.example.com";
pub const ADMIN_PASSWORD: &str = "real node admin password";
/// The catalog's upload limit on the real node: small, so the oversize upload is small too.
pub const IMAGE_MAX_BYTES: usize = 64 * 1024;

/// The real node of `PANTHERA_TEST_REAL_NODE`. Missing in CI is a failure; elsewhere the test is
/// skipped with a notice.
pub fn real_node() -> Option<RealNode> {
    let cluster = real_cluster()?;
    match std::env::var("PANTHERA_TEST_REAL_NODE") {
        Ok(name) if !name.is_empty() => Some(RealNode { cluster, name }),
        _ => {
            assert!(
                std::env::var_os("CI").is_none(),
                "PANTHERA_TEST_REAL_NODE is not set: scripts/test.sh starts the real node"
            );
            eprintln!("skipping: no real node (PANTHERA_TEST_REAL_NODE)");
            None
        }
    }
}

pub struct RealNode {
    pub cluster: RealCluster,
    pub name: String,
}

impl RealNode {
    /// A namespace of its own whose pods run on the real node, under Pod Security
    /// `enforce=restricted`.
    pub async fn namespace(&self, prefix: &str) -> String {
        let name = format!("{prefix}-{}", &super::cluster::uuid_like()[..8]);
        let api: Api<Namespace> = Api::all(self.cluster.client().await);
        let tolerations = json!([{"key": TAINT_KEY, "operator": "Exists", "effect": "NoSchedule"}]);
        api.create(
            &PostParams::default(),
            &serde_json::from_value(json!({"metadata": {
                "name": name,
                "labels": {"pod-security.kubernetes.io/enforce": "restricted"},
                "annotations": {
                    "scheduler.alpha.kubernetes.io/node-selector": NODE_SELECTOR,
                    "scheduler.alpha.kubernetes.io/defaultTolerations": tolerations.to_string(),
                },
            }}))
            .unwrap(),
        )
        .await
        .unwrap();
        name
    }

    /// The Secrets a user creates before the shop runs, with values the real binaries accept:
    /// the gateway's HS256 key, the first administrator, the Ingress certificate.
    pub async fn shop_secrets(&self, namespace: &str) {
        let secrets: Api<Secret> = Api::namespaced(self.cluster.client().await, namespace);
        let key: String = (0..48)
            .map(|i| char::from(b'a' + u8::try_from((i * 7 + 3) % 26).unwrap()))
            .collect();
        for secret in [
            json!({"metadata": {"name": "shop-jwt"}, "stringData": {"secret": key}}),
            json!({"metadata": {"name": "shop-admin"},
                   "stringData": {"email": ADMIN_EMAIL, "password": ADMIN_PASSWORD}}),
            // Only the Ingress reads it, and no ingress controller runs here.
            json!({"metadata": {"name": "shop-api-tls"}, "type": "kubernetes.io/tls",
                   "stringData": {"tls.crt": "unused", "tls.key": "unused"}}),
        ] {
            secrets
                .create(
                    &PostParams::default(),
                    &serde_json::from_value(secret).unwrap(),
                )
                .await
                .unwrap();
        }
    }

    /// `http://{clusterIP}:{port}` of a Service: kube-proxy routes it from this machine too.
    pub async fn service_url(&self, namespace: &str, name: &str) -> String {
        let services: Api<Service> = Api::namespaced(self.cluster.client().await, namespace);
        let service = services.get(name).await.unwrap();
        let spec = service.spec.unwrap();
        let port = spec.ports.unwrap()[0].port;
        format!("http://{}:{port}", spec.cluster_ip.unwrap())
    }

    pub async fn pods(&self, namespace: &str) -> Vec<Pod> {
        let pods: Api<Pod> = Api::namespaced(self.cluster.client().await, namespace);
        pods.list(&ListParams::default()).await.unwrap().items
    }

    /// Waits until `pod` exists with a new uid (not `old_uid`) and is Ready.
    pub async fn wait_pod_replaced(&self, namespace: &str, pod: &str, old_uid: &str) -> Duration {
        let pods: Api<Pod> = Api::namespaced(self.cluster.client().await, namespace);
        let started = Instant::now();
        loop {
            if let Some(p) = pods.get_opt(pod).await.unwrap()
                && p.metadata.uid.as_deref() != Some(old_uid)
                && is_ready(&p)
            {
                return started.elapsed();
            }
            assert!(
                started.elapsed() < Duration::from_secs(180),
                "{pod} did not come back Ready"
            );
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    }
}

pub fn is_ready(pod: &Pod) -> bool {
    pod.status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .is_some_and(|c| c.iter().any(|c| c.type_ == "Ready" && c.status == "True"))
}

/// The node each pod runs on, by pod name.
pub fn nodes_of(pods: &[Pod]) -> BTreeMap<String, String> {
    pods.iter()
        .map(|p| {
            (
                p.metadata.name.clone().unwrap_or_default(),
                p.spec
                    .as_ref()
                    .and_then(|s| s.node_name.clone())
                    .unwrap_or_default(),
            )
        })
        .collect()
}

/// Per component (`app.kubernetes.io/instance` label, else the pod name), the time from
/// `since` until its last pod became Ready.
pub fn ready_after(pods: &[Pod], since: std::time::SystemTime) -> BTreeMap<String, f64> {
    let since = since
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs_f64();
    let mut out: BTreeMap<String, f64> = BTreeMap::new();
    for pod in pods {
        let labels = pod.metadata.labels.clone().unwrap_or_default();
        // A Job's pod is done, not ready: the topics Job counts by its completion elsewhere.
        if labels
            .get("app.kubernetes.io/component")
            .map(String::as_str)
            == Some("kafka-topics")
        {
            continue;
        }
        let component = labels
            .get("app.kubernetes.io/instance")
            .cloned()
            .unwrap_or_else(|| pod.metadata.name.clone().unwrap_or_default());
        let ready = pod
            .status
            .as_ref()
            .and_then(|s| s.conditions.as_ref())
            .and_then(|c| c.iter().find(|c| c.type_ == "Ready" && c.status == "True"))
            .and_then(|c| c.last_transition_time.as_ref())
            // The API keeps whole seconds: the figure is good to about a second.
            .map(|t| t.0.as_second() as f64 - since);
        if let Some(seconds) = ready {
            let entry = out.entry(component).or_insert(seconds);
            *entry = entry.max(seconds);
        }
    }
    out
}

/// Restarts per container, `pod/container` -> count.
pub fn restarts(pods: &[Pod]) -> BTreeMap<String, i32> {
    pods.iter()
        .flat_map(|p| {
            let name = p.metadata.name.clone().unwrap_or_default();
            p.status
                .as_ref()
                .and_then(|s| s.container_statuses.clone())
                .unwrap_or_default()
                .into_iter()
                .map(move |c| (format!("{name}/{}", c.name), c.restart_count))
        })
        .collect()
}

/// `examples/shop.yaml` as a user runs it on this node: moved to `namespace`, the data stores at
/// the versions their images contain (PostgreSQL 15 and Redis 7.0 from Debian, Apache Kafka 4.1.2),
/// one Kafka broker, a small image upload limit, and CPU requests small enough for the shop's pods to fit on two cores.
pub fn real_shop(dir: &Path, namespace: &str) -> PathBuf {
    let text = std::fs::read_to_string(super::example("shop")).unwrap();
    let mut shop: Value = serde_yaml::from_str(&text).unwrap();
    shop["metadata"]["namespace"] = json!(namespace);
    let spec = &mut shop["spec"];
    let small = json!({"requests": {"cpu": "20m"}});
    for database in spec["databases"].as_array_mut().unwrap() {
        database["version"] = json!("15");
        database["resources"] = small.clone();
    }
    spec["redis"]["version"] = json!("7.0");
    spec["redis"]["resources"] = small.clone();
    let kafka = &mut spec["kafka"];
    kafka["version"] = json!("4.1.2");
    kafka["brokers"] = json!(1);
    kafka["resources"] = small.clone();
    for topic in kafka["topics"].as_object_mut().unwrap().values_mut() {
        topic["replicationFactor"] = json!(1);
    }
    for service in spec["services"].as_array_mut().unwrap() {
        service["resources"] = small.clone();
        if service["name"] == "catalog" {
            service["env"] =
                json!([{"name": "IMAGE_MAX_BYTES", "value": IMAGE_MAX_BYTES.to_string()}]);
        }
    }
    spec["objectStore"]["resources"] = small.clone();
    spec["gateway"]["resources"] = small;
    // JSON, which is YAML too: kubectl reads YAML 1.1, where an unquoted `off` or `yes` that a
    // YAML 1.2 writer leaves bare would turn into a boolean.
    let path = dir.join(format!("shop-{namespace}.yaml"));
    std::fs::write(&path, serde_json::to_string_pretty(&shop).unwrap()).unwrap();
    path
}
