//! The data stores' contexts: PostgreSQL, Redis and Kafka, as StatefulSets in the cluster or as
//! the connection details of their AWS counterparts.

use serde_json::{Value, json};

use super::*;

/// What the StatefulSet templates of every data store read alike.
pub(super) struct Workload<'a> {
    pub(super) kind: ComponentKind,
    /// Its name in the spec: the database's, or `redis`, `kafka`.
    pub(super) component: &'a str,
    /// The StatefulSet's name.
    pub(super) name: &'a str,
    pub(super) image: String,
    /// The user the image runs as.
    pub(super) uid: i64,
    pub(super) port: u16,
    pub(super) deletion_policy: DeletionPolicy,
    pub(super) resources: Value,
    /// The store's own StorageClass, if it names one.
    pub(super) storage_class: Option<&'a str>,
}

impl ContextBuilder<'_> {
    /// A data store's values: what all of them have, then its own.
    pub(super) fn workload(&self, base: Workload<'_>, own: Value) -> Value {
        let app = base.kind.as_str();
        let mut values = json!({
            "name": base.name,
            "labels": self.labels(Some((base.kind, base.component, base.name, app))),
            "selector": self.selector(base.name, app),
            "image": base.image,
            "uid": base.uid,
            "port": base.port,
            "pvcRetention": pvc_retention(base.deletion_policy),
            "deletionPolicy": base.deletion_policy,
            "resources": base.resources,
            "podSelector": self.pod_selector(base.kind, base.component),
            // The store's class, else the platform's; none leaves it to the cluster's default.
            "storageClassName": base.storage_class.or(self.spec().storage_class_name.as_deref()),
        });
        if let (Some(values), Value::Object(own)) = (values.as_object_mut(), own) {
            values.extend(own);
        }
        values
    }

    pub(super) fn postgres(&self, db: &DatabaseSpec) -> ComponentContext {
        let name = self.names.database(&db.name);
        let secret = self.names.database_secret(&db.name);
        let username = db.name.replace('-', "_");
        let host = match db.backend {
            Backend::Cluster => self.names.svc_host(&name),
            Backend::Aws => String::new(),
        };
        let password = self.secrets.value(&secret, "password");
        let url = format!(
            "postgres://{username}:{password}@{host}:{POSTGRES_PORT}/{database}",
            database = username
        );
        let clients: Vec<&ServiceSpec> = self
            .spec()
            .services
            .iter()
            .filter(|s| s.database.as_deref() == Some(&db.name))
            .collect();
        let base = Workload {
            kind: ComponentKind::Postgres,
            component: &db.name,
            name: &name,
            image: format!("docker.io/library/postgres:{}", db.version.as_str()),
            uid: DATA_UID,
            port: POSTGRES_PORT,
            deletion_policy: db.deletion_policy,
            resources: resources(&db.resources, ("250m", "256Mi"), ("2", "1Gi")),
            storage_class: db.storage_class_name.as_deref(),
        };
        let values = self.workload(
            base,
            json!({
                "database": db.name,
                "headless": format!("{name}-headless"),
                "storage": db.storage,
                "secret": {
                    "name": secret,
                    "data": {
                        "host": host, "port": POSTGRES_PORT.to_string(), "username": username,
                        "password": password, "database": username, "url": url,
                    },
                },
                "ingress": self.allow_from_services(&clients, POSTGRES_PORT),
            }),
        );
        ComponentContext::new(ComponentKind::Postgres, &db.name, db.backend, values)
    }

    pub(super) fn redis(&self, redis: &RedisSpec) -> ComponentContext {
        let name = self.names.redis();
        let secret = self.names.redis_secret();
        let password = self.secrets.value(&secret, "password");
        let host = match redis.backend {
            Backend::Cluster => self.names.svc_host(&name),
            Backend::Aws => String::new(),
        };
        let clients: Vec<&ServiceSpec> = self.spec().services.iter().filter(|s| s.cache).collect();
        let mut ingress = self.allow_from_services(&clients, REDIS_PORT);
        if self.gateway_uses_redis() {
            ingress.push(json!({
                "from": [{"podSelector": {"matchLabels": self.pod_selector(ComponentKind::Gateway, "gateway")}}],
                "ports": [{"protocol": "TCP", "port": REDIS_PORT}],
            }));
        }
        let base = Workload {
            kind: ComponentKind::Redis,
            component: "redis",
            name: &name,
            image: format!("docker.io/library/redis:{}", redis.version),
            uid: DATA_UID,
            port: REDIS_PORT,
            deletion_policy: redis.deletion_policy,
            resources: resources(&redis.resources, ("100m", "128Mi"), ("1", "512Mi")),
            storage_class: redis.storage_class_name.as_deref(),
        };
        let values = self.workload(
            base,
            json!({
                "storage": redis.storage,
                "secret": {
                    "name": secret,
                    "data": {
                        "host": host, "port": REDIS_PORT.to_string(), "password": password,
                        "url": format!("redis://:{password}@{host}:{REDIS_PORT}/0"),
                    },
                },
                "ingress": ingress,
            }),
        );
        ComponentContext::new(ComponentKind::Redis, "redis", redis.backend, values)
    }

    pub(super) fn kafka(&self, kafka: &KafkaSpec) -> ComponentContext {
        let name = self.names.kafka();
        let headless = format!("{name}-headless");
        let ns = &self.names.namespace;
        let voters: Vec<String> = (0..kafka.brokers)
            .map(|i| format!("{i}@{name}-{i}.{headless}.{ns}.svc:{KAFKA_CONTROLLER_PORT}"))
            .collect();
        let bootstrap = match kafka.backend {
            Backend::Cluster => format!("{}:{KAFKA_PORT}", self.names.svc_host(&name)),
            Backend::Aws => String::new(),
        };
        let topics_json = serde_json::to_string(&kafka.topics).unwrap_or_default();
        let topics_hash = short_hash(&topics_json);
        let script = topics_script(kafka, &bootstrap);
        let replication = kafka.brokers.min(3);
        let clients: Vec<&ServiceSpec> = self
            .spec()
            .services
            .iter()
            .filter(|s| !s.topics.is_empty())
            .collect();
        let mut ingress = self.allow_from_services(&clients, KAFKA_PORT);
        ingress.push(json!({
            "from": [
                {"podSelector": {"matchLabels": self.pod_selector(ComponentKind::Kafka, "kafka")}},
                {"podSelector": {"matchLabels": {LABEL_PLATFORM: self.names.platform, LABEL_COMPONENT: "kafka-topics"}}},
            ],
            "ports": [{"protocol": "TCP", "port": KAFKA_PORT}, {"protocol": "TCP", "port": KAFKA_CONTROLLER_PORT}],
        }));
        let mut job_labels =
            self.labels(Some((ComponentKind::Kafka, "kafka", &name, "kafka-topics")));
        job_labels.insert(LABEL_COMPONENT.to_string(), "kafka-topics".to_string());
        let base = Workload {
            kind: ComponentKind::Kafka,
            component: "kafka",
            name: &name,
            image: format!("docker.io/apache/kafka:{}", kafka.version),
            uid: KAFKA_UID,
            port: KAFKA_PORT,
            deletion_policy: kafka.deletion_policy,
            resources: resources(&kafka.resources, ("500m", "1Gi"), ("2", "2Gi")),
            storage_class: kafka.storage_class_name.as_deref(),
        };
        let values = self.workload(base, json!({
            "headless": headless,
            "brokers": kafka.brokers,
            "storage": kafka.storage,
            "controllerPort": KAFKA_CONTROLLER_PORT,
            "clusterId": cluster_id(&self.names),
            "voters": voters.join(","),
            "replication": replication,
            "minIsr": kafka.brokers.min(2),
            "secret": {
                "name": self.names.kafka_secret(),
                "data": { "bootstrapServers": bootstrap, "url": bootstrap },
            },
            "topics": {
                "present": !kafka.topics.is_empty(),
                "job": format!("{name}-topics-{topics_hash}"),
                "labels": job_labels,
                "script": script,
            },
            "ingress": ingress,
            "topicsPodSelector": {LABEL_PLATFORM: self.names.platform, LABEL_COMPONENT: "kafka-topics"},
        }));
        ComponentContext::new(ComponentKind::Kafka, "kafka", kafka.backend, values)
    }
}

impl ContextBuilder<'_> {
    pub(super) fn search(&self, search: &SearchSpec) -> ComponentContext {
        let name = self.names.search();
        let clients: Vec<&ServiceSpec> = self.spec().services.iter().filter(|s| s.search).collect();
        let resources = resources(&search.resources, ("500m", "1Gi"), ("2", "2Gi"));
        let heap = heap_mib(resources["limits"]["memory"].as_str().unwrap_or_default());
        let base = Workload {
            kind: ComponentKind::Search,
            component: "search",
            name: &name,
            image: format!("docker.io/opensearchproject/opensearch:{}", search.version),
            uid: SEARCH_UID,
            port: SEARCH_PORT,
            deletion_policy: search.deletion_policy,
            resources,
            storage_class: search.storage_class_name.as_deref(),
        };
        // The same keys whatever the backend; in the cluster the node has no security plugin
        // (see templates/search/statefulset.yaml), so no login: the NetworkPolicy admits only
        // the services with `search: true`.
        let endpoint = format!("http://{}:{SEARCH_PORT}", self.names.svc_host(&name));
        let values = self.workload(
            base,
            json!({
                "storage": search.storage,
                "javaOpts": format!("-Xms{heap}m -Xmx{heap}m"),
                "secret": {
                    "name": self.names.search_secret(),
                    "data": {"endpoint": endpoint, "username": "", "password": ""},
                },
                "ingress": self.allow_from_services(&clients, SEARCH_PORT),
            }),
        );
        ComponentContext::new(ComponentKind::Search, "search", search.backend, values)
    }
}

/// The JVM heap for a memory limit: half of it (the rest is Lucene's file cache and the JVM's
/// own), at least 256 MiB; 512 MiB when the limit is not a plain binary or decimal size.
fn heap_mib(limit: &str) -> u64 {
    let digits = limit.trim_end_matches(|c: char| c.is_ascii_alphabetic());
    let unit = &limit[digits.len()..];
    let Ok(amount) = digits.parse::<u64>() else {
        return 512;
    };
    let mib = match unit {
        "Gi" => amount.saturating_mul(1024),
        "Mi" => amount,
        "G" => amount.saturating_mul(1_000_000_000) / (1 << 20),
        "M" => amount.saturating_mul(1_000_000) / (1 << 20),
        "" => amount / (1 << 20),
        _ => return 512,
    };
    (mib / 2).max(256)
}

/// StatefulSet PVC retention for a deletion policy: only `Delete` lets volumes go with the set.
pub(super) fn pvc_retention(policy: DeletionPolicy) -> Value {
    let when_deleted = match policy {
        DeletionPolicy::Delete => "Delete",
        DeletionPolicy::Snapshot | DeletionPolicy::Retain => "Retain",
    };
    json!({"whenDeleted": when_deleted, "whenScaled": "Retain"})
}

/// Stable KRaft cluster id (22 chars, base64url of 16 bytes) derived from namespace/name, so a
/// re-render never changes it.
pub(super) fn cluster_id(names: &Names) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let digest = Sha256::digest(format!("{}/{}", names.namespace, names.platform).as_bytes());
    let mut bits: u128 = 0;
    for b in digest.iter().take(16) {
        bits = (bits << 8) | u128::from(*b);
    }
    (0..22)
        .map(|i| {
            let shift = 128_i32 - 6 * (i + 1);
            let index = if shift >= 0 {
                (bits >> shift) & 63
            } else {
                (bits << -shift) & 63
            };
            char::from(ALPHABET[index as usize])
        })
        .collect()
}

/// Shell script of the topic Job: create missing topics, grow partitions, set retention.
pub(super) fn topics_script(kafka: &KafkaSpec, bootstrap: &str) -> String {
    let mut script = String::from("set -eu\n");
    script.push_str(&format!("BOOTSTRAP={bootstrap}\nK=/opt/kafka/bin\n"));
    for (name, t) in &kafka.topics {
        let retention_ms: i64 = if t.retention_hours < 0 {
            -1
        } else {
            i64::from(t.retention_hours) * 3_600_000
        };
        script.push_str(&format!(
            "$K/kafka-topics.sh --bootstrap-server \"$BOOTSTRAP\" --create --if-not-exists --topic '{name}' --partitions {p} --replication-factor {r} --config retention.ms={retention_ms}\n\
             $K/kafka-topics.sh --bootstrap-server \"$BOOTSTRAP\" --alter --topic '{name}' --partitions {p} 2>/dev/null || true\n\
             $K/kafka-configs.sh --bootstrap-server \"$BOOTSTRAP\" --alter --entity-type topics --entity-name '{name}' --add-config retention.ms={retention_ms}\n",
            p = t.partitions,
            r = t.replication_factor,
        ));
    }
    script
}
