//! Everything the templates need, computed once in Rust: names, labels, images, environment,
//! NetworkPolicy rules. Templates only lay objects out, so an override template cannot get the
//! topology wrong by accident.

use std::collections::BTreeMap;

use serde_json::{Value, json};
use sha2::{Digest, Sha256};

mod monitoring;
mod objects;
mod stores;
mod tracing;

pub use monitoring::{GRAFANA_DASHBOARD_LABEL, POD_TARGET_LABELS};
pub use objects::OBJECTS_IMAGE;

use super::gateway_config;
use super::secrets::SecretValues;
use crate::api::{
    Backend, BucketSpec, CA_BUNDLE_DIR, ComponentKind, DatabaseSpec, DeletionPolicy,
    GATEWAY_ADMIN_PORT, GATEWAY_PORT, GatewaySpec, KAFKA_CONTROLLER_PORT, KAFKA_PORT,
    KafkaClientAuthentication, KafkaSpec, LABEL_COMPONENT, LABEL_INSTANCE, LABEL_MANAGED_BY,
    LABEL_NAME, LABEL_PART_OF, LABEL_PLATFORM, LABEL_PLATFORM_COMPONENT, MANAGER, MSK_SCRAM_PORT,
    MSK_TLS_PORT, OBJECTS_PORT, POSTGRES_PORT, PantheraPlatform, REDIS_PORT, RedisSpec,
    ResourcesSpec, SEARCH_PORT, SearchSpec, ServiceKind, ServiceSpec,
};

/// Key of the identity Secret: the comma-separated keys, the first of which signs.
const IDENTITY_SECRET_KEY: &str = "keys";
/// UID of the distroless `nonroot` user the Panthera images run as.
const PANTHERA_UID: i64 = 65532;
/// UID of the `postgres` / `redis` users in the official images.
const DATA_UID: i64 = 999;
/// UID of `appuser` in the apache/kafka image.
const KAFKA_UID: i64 = 1000;
/// UID of `opensearch` in the opensearchproject/opensearch image.
const SEARCH_UID: i64 = 1000;
/// The user the object server runs as: the official versitygw image runs as root, which the
/// restricted Pod Security Standard forbids, and the static binary needs no passwd entry.
const OBJECTS_UID: i64 = 65532;

/// A component to render: its kind (which names its templates folder) and the values for it.
pub struct ComponentContext {
    pub name: String,
    pub kind: ComponentKind,
    pub backend: Backend,
    pub values: Value,
}

impl ComponentContext {
    fn new(kind: ComponentKind, name: impl Into<String>, backend: Backend, values: Value) -> Self {
        Self {
            name: name.into(),
            kind,
            backend,
            values,
        }
    }

    /// The templates folder: each kind's is named after it.
    pub fn folder(&self) -> &'static str {
        self.kind.as_str()
    }
}

/// Names of things derived from the platform name; one place so the renderer, the engine and the
/// services agree.
#[derive(Clone, Debug)]
pub struct Names {
    pub platform: String,
    pub namespace: String,
}

impl Names {
    pub fn gateway(&self) -> String {
        format!("{}-gateway", self.platform)
    }
    pub fn service(&self, service: &str) -> String {
        format!("{}-{service}", self.platform)
    }
    pub fn database(&self, database: &str) -> String {
        format!("{}-db-{database}", self.platform)
    }
    pub fn redis(&self) -> String {
        format!("{}-redis", self.platform)
    }
    pub fn kafka(&self) -> String {
        format!("{}-kafka", self.platform)
    }
    pub fn search(&self) -> String {
        format!("{}-search", self.platform)
    }
    /// The S3-compatible server of the cluster buckets, and its Secret (root key, accounts).
    pub fn objects(&self) -> String {
        format!("{}-objects", self.platform)
    }
    /// Connection Secret of a database (same keys for every backend).
    pub fn database_secret(&self, database: &str) -> String {
        self.database(database)
    }
    pub fn redis_secret(&self) -> String {
        self.redis()
    }
    pub fn kafka_secret(&self) -> String {
        self.kafka()
    }
    pub fn search_secret(&self) -> String {
        self.search()
    }
    /// The connection Secret of the bucket `name` of `spec.buckets`.
    pub fn bucket_secret(&self, name: &str) -> String {
        format!("{}-bucket-{name}", self.platform)
    }
    /// The ConfigMap with the CA bundle of the platform's AWS data stores (key `ca-bundle.pem`),
    /// which the user provides.
    pub fn ca_bundle(&self) -> String {
        format!("{}-ca-bundle", self.platform)
    }
    /// The Secret with the keys the gateway signs caller identities with and the services
    /// verify them with (key `keys`); generated once, rotated by hand.
    pub fn identity_secret(&self) -> String {
        format!("{}-identity", self.platform)
    }
    fn svc_host(&self, service: &str) -> String {
        format!("{service}.{}.svc", self.namespace)
    }
}

/// Builds the contexts of every component of a platform, in apply order.
pub struct ContextBuilder<'a> {
    platform: &'a PantheraPlatform,
    names: Names,
    secrets: &'a dyn SecretValues,
}

impl<'a> ContextBuilder<'a> {
    pub fn new(
        platform: &'a PantheraPlatform,
        names: Names,
        secrets: &'a dyn SecretValues,
    ) -> Self {
        Self {
            platform,
            names,
            secrets,
        }
    }

    fn spec(&self) -> &crate::api::PantheraPlatformSpec {
        &self.platform.spec
    }

    /// Values shared by every template.
    pub fn platform_values(&self) -> Value {
        let spec = self.spec();
        json!({
            "name": self.names.platform,
            "namespace": self.names.namespace,
            "labels": self.labels(None),
            "selector": { LABEL_PLATFORM: self.names.platform },
            "networkPolicy": spec.network_policy.enabled,
            "identity": self.identity_secret(),
            "prometheus": self.prometheus_values(),
        })
    }

    /// The identity Secret (name and `keys`), when the platform has a gateway to sign with it:
    /// a platform-wide object, so it exists before the services that read it start.
    fn identity_secret(&self) -> Value {
        if self.spec().gateway.is_none() {
            return json!(false);
        }
        let name = self.names.identity_secret();
        // A platform-wide object, labelled as such (component `platform`).
        let mut labels = self.labels(None);
        for (key, value) in [
            (LABEL_COMPONENT, "platform"),
            (LABEL_PLATFORM_COMPONENT, "platform"),
            (LABEL_INSTANCE, name.as_str()),
            (LABEL_NAME, "panthera-identity"),
        ] {
            labels.insert(key.to_string(), value.to_string());
        }
        json!({
            "name": name,
            "labels": labels,
            "keys": self.secrets.value(&name, IDENTITY_SECRET_KEY),
        })
    }

    /// `IDENTITY_KEYS` from the identity Secret, for the gateway and every service; nothing
    /// without a gateway (no identity is then believed).
    fn identity_env(&self) -> Option<Value> {
        self.spec().gateway.as_ref().map(|_| {
            secret_env(
                gateway_config::IDENTITY_KEYS_ENV,
                &self.names.identity_secret(),
                IDENTITY_SECRET_KEY,
            )
        })
    }

    /// Labels of a child; `component` = (kind, component name, instance, app name).
    fn labels(
        &self,
        component: Option<(ComponentKind, &str, &str, &str)>,
    ) -> BTreeMap<String, String> {
        let mut labels = BTreeMap::new();
        labels.insert(LABEL_PART_OF.to_string(), self.names.platform.clone());
        labels.insert(LABEL_MANAGED_BY.to_string(), MANAGER.to_string());
        labels.insert(LABEL_PLATFORM.to_string(), self.names.platform.clone());
        if let Some((kind, component, instance, app)) = component {
            labels.insert(LABEL_COMPONENT.to_string(), kind.as_str().to_string());
            labels.insert(LABEL_PLATFORM_COMPONENT.to_string(), component.to_string());
            labels.insert(LABEL_INSTANCE.to_string(), instance.to_string());
            labels.insert(LABEL_NAME.to_string(), app.to_string());
        }
        labels
    }

    /// A monitoring object's labels: the component's, plus the ones the Prometheus selects by.
    fn monitor_labels(&self, mut labels: BTreeMap<String, String>) -> BTreeMap<String, String> {
        if let Some(p) = self.prometheus_spec() {
            labels.extend(p.labels.clone());
        }
        labels
    }

    fn selector(&self, instance: &str, app: &str) -> Value {
        json!({ LABEL_INSTANCE: instance, LABEL_NAME: app, LABEL_PLATFORM: self.names.platform })
    }

    fn pod_selector(&self, kind: ComponentKind, component: &str) -> Value {
        json!({
            LABEL_PLATFORM: self.names.platform,
            LABEL_COMPONENT: kind.as_str(),
            LABEL_PLATFORM_COMPONENT: component,
        })
    }

    /// All components in apply order: data stores, then services, then the gateway.
    pub fn components(&self) -> Result<Vec<ComponentContext>, String> {
        let spec = self.spec();
        let mut out = Vec::new();
        for db in &spec.databases {
            out.push(self.postgres(db));
        }
        if let Some(redis) = &spec.redis {
            out.push(self.redis(redis));
        }
        if let Some(kafka) = &spec.kafka {
            out.push(self.kafka(kafka));
        }
        if let Some(search) = &spec.search {
            out.push(self.search(search));
        }
        // The server first: the buckets' setup Jobs talk to it.
        if spec.buckets.iter().any(|b| b.backend == Backend::Cluster) {
            out.push(self.objects());
        }
        for bucket in &spec.buckets {
            out.push(self.bucket(bucket));
        }
        for svc in &spec.services {
            out.push(self.service(svc));
        }
        if spec.gateway.is_some() {
            out.push(self.gateway()?);
        }
        // The edge renders no object: the AWS reconciler makes it, status reports it.
        if spec.edge.is_some() {
            let kind = ComponentKind::Edge;
            let edge =
                ComponentContext::new(kind, kind.as_str().to_string(), Backend::Aws, json!({}));
            out.push(edge);
        }
        Ok(out)
    }

    fn service(&self, svc: &ServiceSpec) -> ComponentContext {
        let spec = self.spec();
        let name = self.names.service(&svc.name);
        let app = match svc.kind {
            ServiceKind::Custom => svc.name.clone(),
            kind => format!("panthera-{}", kind.as_str()),
        };
        let image = svc.image.clone().unwrap_or_else(|| {
            format!(
                "{}/panthera-{}:{}",
                spec.image_registry,
                svc.kind.as_str(),
                spec.release
            )
        });
        let port = svc.port;
        let mut env = vec![
            json!({"name": "PORT", "value": port.to_string()}),
            json!({"name": "SERVICE_NAME", "value": svc.name}),
            json!({"name": "LOG_FORMAT", "value": "json"}),
        ];
        if !svc.env.iter().any(|e| e.name == "RUST_LOG") {
            env.push(json!({"name": "RUST_LOG", "value": "info"}));
        }
        let mut egress = Vec::new();
        // RDS URLs verify the server against the CA bundle mounted from this ConfigMap.
        let mut aws_database = false;
        if let Some(db) = &svc.database {
            env.push(secret_env(
                "DATABASE_URL",
                &self.names.database_secret(db),
                "url",
            ));
            if let Some(d) = spec.databases.iter().find(|d| &d.name == db) {
                egress.push(self.egress_to(d.backend, ComponentKind::Postgres, db, POSTGRES_PORT));
                aws_database |= d.backend == Backend::Aws;
            }
        }
        if svc.cache {
            env.push(secret_env("REDIS_URL", &self.names.redis_secret(), "url"));
            if let Some(r) = &spec.redis {
                egress.push(self.egress_to(r.backend, ComponentKind::Redis, "redis", REDIS_PORT));
            }
        }
        if svc.search {
            let secret = self.names.search_secret();
            env.push(secret_env("SEARCH_ENDPOINT", &secret, "endpoint"));
            env.push(secret_env("SEARCH_USERNAME", &secret, "username"));
            env.push(secret_env("SEARCH_PASSWORD", &secret, "password"));
            if let Some(search) = &spec.search {
                // An OpenSearch Service domain answers HTTPS on 443.
                let port = match search.backend {
                    Backend::Cluster => SEARCH_PORT,
                    Backend::Aws => crate::api::AWS_HTTPS_PORT,
                };
                egress.push(self.egress_to(search.backend, ComponentKind::Search, "search", port));
            }
        }
        for bucket in spec
            .buckets
            .iter()
            .filter(|b| svc.buckets.contains(&b.name))
        {
            let secret = self.names.bucket_secret(&bucket.name);
            for (var, key) in [
                ("S3_BUCKET", "bucket"),
                ("S3_REGION", "region"),
                ("S3_ENDPOINT", "endpoint"),
                ("S3_FORCE_PATH_STYLE", "forcePathStyle"),
                ("S3_ACCESS_KEY_ID", "accessKeyId"),
                ("S3_SECRET_ACCESS_KEY", "secretAccessKey"),
            ] {
                env.push(secret_env(var, &secret, key));
            }
            // In the cluster every bucket is on the one object server.
            egress.push(match bucket.backend {
                Backend::Cluster => self.egress_to(
                    bucket.backend,
                    ComponentKind::Objects,
                    "objects",
                    OBJECTS_PORT,
                ),
                Backend::Aws => self.egress_to(
                    bucket.backend,
                    ComponentKind::Bucket,
                    &bucket.name,
                    crate::api::AWS_HTTPS_PORT,
                ),
            });
        }
        if !svc.topics.is_empty() {
            env.push(secret_env(
                "KAFKA_BROKERS",
                &self.names.kafka_secret(),
                "bootstrapServers",
            ));
            env.push(json!({"name": "KAFKA_TOPICS", "value": svc.topics.join(",")}));
            if let Some(k) = &spec.kafka {
                let port = match (k.backend, k.client_authentication()) {
                    (Backend::Cluster, _) => KAFKA_PORT,
                    (Backend::Aws, KafkaClientAuthentication::Scram) => MSK_SCRAM_PORT,
                    (Backend::Aws, KafkaClientAuthentication::Unauthenticated) => MSK_TLS_PORT,
                };
                egress.push(self.egress_to(k.backend, ComponentKind::Kafka, "kafka", port));
                if k.backend == Backend::Aws {
                    // MSK's listeners are TLS only; the Secret says which one and the login.
                    let secret = self.names.kafka_secret();
                    for (var, key) in [
                        ("KAFKA_SECURITY_PROTOCOL", "securityProtocol"),
                        ("KAFKA_SASL_MECHANISM", "saslMechanism"),
                        ("KAFKA_SASL_USERNAME", "username"),
                        ("KAFKA_SASL_PASSWORD", "password"),
                    ] {
                        env.push(secret_env(var, &secret, key));
                    }
                }
            }
        }
        if let Some(jwt) = spec
            .gateway
            .as_ref()
            .and_then(|g| g.auth.as_ref())
            .map(|a| &a.jwt)
        {
            env.push(json!({"name": "JWT_ISSUER", "value": jwt.issuer}));
            if let Some(aud) = jwt.audiences.first() {
                env.push(json!({"name": "JWT_AUDIENCE", "value": aud}));
            }
            if let (ServiceKind::Users, Some(r)) = (svc.kind, &jwt.hs256_secret_ref) {
                env.push(secret_env("JWT_HS256_SECRET", &r.name, &r.key));
            }
        }
        env.extend(self.identity_env());
        if let (ServiceKind::Users, Some(secret)) = (svc.kind, &svc.admin_secret) {
            // The first administrator (services/users/src/admin.rs); created once if absent.
            env.push(secret_env("ADMIN_EMAIL", secret, "email"));
            env.push(secret_env("ADMIN_PASSWORD", secret, "password"));
        }
        if svc.kind == ServiceKind::Orders
            && let Some(catalog) = spec
                .services
                .iter()
                .find(|s| s.kind == ServiceKind::Catalog)
        {
            env.push(json!({
                "name": "CATALOG_URL",
                "value": format!("http://{}:{}", self.names.service(&catalog.name), catalog.port),
            }));
            egress.push(json!({
                    "to": [{"podSelector": {"matchLabels": self.pod_selector(ComponentKind::Service, &catalog.name)}}],
                    "ports": [{"protocol": "TCP", "port": catalog.port}],
                }));
        }
        env.extend(self.tracing_env(&svc.name));
        egress.extend(self.tracing_egress());
        for e in &svc.env {
            env.push(json!({"name": e.name, "value": e.value}));
        }
        let mut ingress = Vec::new();
        let routed = spec
            .gateway
            .as_ref()
            .is_some_and(|g| g.routes.iter().any(|r| r.service == svc.name));
        if routed {
            ingress.push(json!({
                "from": [{"podSelector": {"matchLabels": self.pod_selector(ComponentKind::Gateway, "gateway")}}],
                "ports": [{"protocol": "TCP", "port": port}],
            }));
        }
        // Prometheus scrapes /metrics on the service's port, from where the gateway's admin
        // port admits it (spec.gateway.monitoring).
        if self.prometheus_spec().is_some()
            && let Some(peer) = spec
                .gateway
                .as_ref()
                .and_then(|g| g.monitoring.as_ref())
                .map(monitoring_peer)
        {
            ingress.push(json!({
                "from": [peer],
                "ports": [{"protocol": "TCP", "port": port}],
            }));
        }
        if svc.kind == ServiceKind::Catalog {
            let callers: Vec<&ServiceSpec> = spec
                .services
                .iter()
                .filter(|s| s.kind == ServiceKind::Orders)
                .collect();
            ingress.extend(self.allow_from_services(&callers, port as u16));
        }
        let values = json!({
            "name": name,
            "service": svc.name,
            "kind": svc.kind.as_str(),
            "labels": self.labels(Some((ComponentKind::Service, &svc.name, &name, &app))),
            "monitorLabels": self.monitor_labels(self.labels(Some((ComponentKind::Service, &svc.name, &name, &app)))),
            "selector": self.selector(&name, &app),
            "image": image,
            "roleArn": svc.aws_role_arn,
            "replicas": svc.replicas,
            "autoscaling": svc.autoscaling,
            "port": port,
            "uid": PANTHERA_UID,
            "env": env,
            "caBundle": if aws_database {
                json!({"name": self.names.ca_bundle(), "dir": CA_BUNDLE_DIR})
            } else {
                json!(false)
            },
            "resources": resources(&svc.resources, ("100m", "128Mi"), ("1", "512Mi")),
            "ingress": ingress,
            "egress": egress,
            "podSelector": self.pod_selector(ComponentKind::Service, &svc.name),
        });
        ComponentContext::new(ComponentKind::Service, &svc.name, Backend::Cluster, values)
    }

    fn gateway_uses_redis(&self) -> bool {
        self.spec()
            .gateway
            .as_ref()
            .and_then(|g| g.rate_limit.as_ref())
            .is_some_and(|r| r.shared)
    }

    fn gateway(&self) -> Result<ComponentContext, String> {
        let spec = self.spec();
        let Some(gw) = &spec.gateway else {
            return Err("gateway is not configured".into());
        };
        let name = self.names.gateway();
        let app = "panthera-gateway";
        let config =
            gateway_config::build(gw, &self.names, &spec.services, self.gateway_uses_redis());
        let config = match self.tracing_spec() {
            Some(tracing) => config.with_tracing(tracing.trust_client_context),
            None => config,
        };
        let config_yaml = serde_yaml::to_string(&config)
            .map_err(|e| format!("cannot serialize the gateway configuration: {e}"))?;
        let mut env = Vec::new();
        let mut egress = Vec::new();
        if let Some(jwt) = gw.auth.as_ref().map(|a| &a.jwt) {
            if let Some(r) = &jwt.hs256_secret_ref {
                env.push(secret_env(gateway_config::HS256_ENV, &r.name, &r.key));
            }
            if jwt.jwks_url.is_some() {
                // The JWKS host is outside the cluster and its address unknown: HTTPS anywhere.
                egress.push(json!({"to": [{"ipBlock": {"cidr": "0.0.0.0/0"}}], "ports": [{"protocol": "TCP", "port": 443}]}));
            }
        }
        env.extend(self.identity_env());
        if self.gateway_uses_redis() {
            env.push(secret_env(
                gateway_config::REDIS_ENV,
                &self.names.redis_secret(),
                "url",
            ));
            if let Some(r) = &spec.redis {
                egress.push(self.egress_to(r.backend, ComponentKind::Redis, "redis", REDIS_PORT));
            }
        }
        let mut routed: Vec<&ServiceSpec> = Vec::new();
        for route in &gw.routes {
            if let Some(svc) = spec.services.iter().find(|s| s.name == route.service)
                && !routed.iter().any(|s| s.name == svc.name)
            {
                routed.push(svc);
            }
        }
        env.extend(self.tracing_env("gateway"));
        egress.extend(self.tracing_egress());
        for svc in routed {
            egress.push(json!({
                "to": [{"podSelector": {"matchLabels": self.pod_selector(ComponentKind::Service, &svc.name)}}],
                "ports": [{"protocol": "TCP", "port": svc.port}],
            }));
        }
        let values = json!({
            "name": name,
            "labels": self.labels(Some((ComponentKind::Gateway, "gateway", &name, app))),
            "monitorLabels": self.monitor_labels(self.labels(Some((ComponentKind::Gateway, "gateway", &name, app)))),
            "selector": self.selector(&name, app),
            "image": format!("{}/panthera-gateway:{}", spec.image_registry, spec.release),
            "replicas": gw.replicas,
            "autoscaling": gw.autoscaling,
            "port": GATEWAY_PORT,
            "adminPort": GATEWAY_ADMIN_PORT,
            "uid": PANTHERA_UID,
            "env": env,
            "config": config_yaml,
            "configChecksum": short_hash(&config_yaml),
            "host": gw.host,
            "tlsSecret": gw.tls.as_ref().map(|t| t.secret_name.clone()),
            "ingressClassName": gw.ingress_class_name,
            "resources": resources(&gw.resources, ("200m", "128Mi"), ("2", "512Mi")),
            "ingress": self.gateway_ingress(gw),
            "egress": egress,
            "podSelector": self.pod_selector(ComponentKind::Gateway, "gateway"),
        });
        Ok(ComponentContext::new(
            ComponentKind::Gateway,
            "gateway",
            Backend::Cluster,
            values,
        ))
    }

    /// The gateway's ingress: the proxy port from anywhere (the cluster's ingress controller,
    /// wherever it runs), the admin port (metrics) only from where monitoring runs.
    fn gateway_ingress(&self, gw: &GatewaySpec) -> Vec<Value> {
        let mut ingress = vec![json!({"ports": [{"protocol": "TCP", "port": GATEWAY_PORT}]})];
        if let Some(monitoring) = &gw.monitoring {
            ingress.push(json!({
                "from": [monitoring_peer(monitoring)],
                "ports": [{"protocol": "TCP", "port": GATEWAY_ADMIN_PORT}],
            }));
        }
        ingress
    }

    /// Ingress rule admitting `clients` (services) on `port`; empty when there are none.
    fn allow_from_services(&self, clients: &[&ServiceSpec], port: u16) -> Vec<Value> {
        if clients.is_empty() {
            return Vec::new();
        }
        let from: Vec<Value> = clients
            .iter()
            .map(|s| json!({"podSelector": {"matchLabels": self.pod_selector(ComponentKind::Service, &s.name)}}))
            .collect();
        vec![json!({"from": from, "ports": [{"protocol": "TCP", "port": port}]})]
    }

    /// Egress rule to a data store: its pods in the cluster, or the port anywhere for AWS (the
    /// managed endpoint's addresses are not known to the cluster).
    fn egress_to(
        &self,
        backend: Backend,
        kind: ComponentKind,
        component: &str,
        port: u16,
    ) -> Value {
        match backend {
            Backend::Cluster => json!({
                "to": [{"podSelector": {"matchLabels": self.pod_selector(kind, component)}}],
                "ports": [{"protocol": "TCP", "port": port}],
            }),
            Backend::Aws => json!({
                "to": [{"ipBlock": {"cidr": "0.0.0.0/0"}}],
                "ports": [{"protocol": "TCP", "port": port}],
            }),
        }
    }
}

/// The NetworkPolicy peer of where monitoring runs.
fn monitoring_peer(monitoring: &crate::api::MonitoringSpec) -> Value {
    let mut peer = serde_json::Map::new();
    if let Some(namespaces) = &monitoring.namespace_selector {
        peer.insert(
            "namespaceSelector".into(),
            json!({"matchLabels": namespaces.match_labels}),
        );
    }
    if let Some(pods) = &monitoring.pod_selector {
        peer.insert(
            "podSelector".into(),
            json!({"matchLabels": pods.match_labels}),
        );
    }
    Value::Object(peer)
}

fn secret_env(name: &str, secret: &str, key: &str) -> Value {
    json!({"name": name, "valueFrom": {"secretKeyRef": {"name": secret, "key": key}}})
}

/// Requests and limits with per-component defaults for what the spec leaves out.
fn resources(spec: &ResourcesSpec, requests: (&str, &str), limits: (&str, &str)) -> Value {
    let pick = |v: Option<&String>, d: &str| v.cloned().unwrap_or_else(|| d.to_string());
    let req = spec.requests.as_ref();
    let lim = spec.limits.as_ref();
    json!({
        "requests": {
            "cpu": pick(req.and_then(|r| r.cpu.as_ref()), requests.0),
            "memory": pick(req.and_then(|r| r.memory.as_ref()), requests.1),
        },
        "limits": {
            "cpu": pick(lim.and_then(|r| r.cpu.as_ref()), limits.0),
            "memory": pick(lim.and_then(|r| r.memory.as_ref()), limits.1),
        },
    })
}

/// First 8 hex digits of SHA-256: names a Job by its content (Jobs are immutable).
pub fn short_hash(text: &str) -> String {
    let digest = Sha256::digest(text.as_bytes());
    digest.iter().take(4).map(|b| format!("{b:02x}")).collect()
}
