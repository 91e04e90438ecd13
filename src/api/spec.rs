//! Desired state of a platform: `spec` of `PantheraPlatform`.
//!
//! Bounds (`maxItems`, `maxLength`) are not decoration: the API server estimates the cost of every
//! CEL rule from them and refuses a CRD whose rules could be too expensive.

use std::collections::BTreeMap;

use kube::{CustomResource, KubeSchema};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::rules::msg;
use super::{
    BucketSpec, DatabaseSpec, EdgeSpec, GatewaySpec, KafkaSpec, ObjectStoreSpec, ObservabilitySpec,
    PantheraPlatformStatus, RedisSpec, SearchSpec,
};

/// Regex for a DNS-1123 label (Kubernetes object names built from it stay valid).
pub const DNS_LABEL: &str = "^[a-z]([-a-z0-9]*[a-z0-9])?$";
/// Regex for a storage size: 1Mi-9999Gi or 1Ti-99Ti; anything larger is a typo, not a plan.
pub const STORAGE_SIZE: &str = "^([1-9][0-9]{0,3}(Mi|Gi)|[1-9][0-9]?Ti)$";
/// Regex for a StorageClass name (a DNS-1123 subdomain).
pub const STORAGE_CLASS: &str =
    "^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$";
/// Regex for a CPU quantity (`500m`, `2`, `0.5`).
pub const CPU_QUANTITY: &str = "^([1-9][0-9]{0,5}m|[0-9]{1,3}(\\.[0-9]{1,3})?)$";
/// Regex for a memory quantity (`256Mi`, `2Gi`).
pub const MEMORY_QUANTITY: &str = "^[1-9][0-9]{0,5}(Ki|Mi|Gi)$";

/// A platform: gateway, services, databases, Redis and Kafka, reconciled as one unit.
#[derive(CustomResource, KubeSchema, Deserialize, Serialize, Clone, Debug, PartialEq)]
#[kube(
    group = "panthera.dev",
    version = "v1alpha1",
    kind = "PantheraPlatform",
    plural = "pantheraplatforms",
    singular = "pantheraplatform",
    shortname = "pp",
    category = "panthera",
    namespaced,
    status = "PantheraPlatformStatus",
    printcolumn = r#"{"name":"Ready","type":"string","jsonPath":".status.conditions[?(@.type==\"Ready\")].status"}"#,
    printcolumn = r#"{"name":"Gateway","type":"string","jsonPath":".status.gatewayEndpoint"}"#,
    printcolumn = r#"{"name":"Age","type":"date","jsonPath":".metadata.creationTimestamp"}"#,
    // No fieldPath: a CRD schema does not describe metadata, and the API server refuses a
    // fieldPath it cannot resolve.
    validation = Rule::new("size(self.metadata.name) <= 24").message(msg::NAME_LENGTH)
)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
// Not here: "every route names a service". Over up to 1,000 routes and 1,000 services the API
// server estimates its worst case at twice its per-rule CEL budget and refuses the whole CRD;
// `validate` checks it natively, and the operator reports a violation as Stalled/InvalidSpec.
#[x_kube(
    validation = Rule::new("self.services.all(s, !has(s.database) || self.databases.exists(d, d.name == s.database))").message(msg::DATABASE_EXISTS).field_path(".services"),
    validation = Rule::new("self.services.all(s, !s.cache || has(self.redis))").message(msg::CACHE_NEEDS_REDIS).field_path(".services"),
    validation = Rule::new("self.services.all(s, !has(s.search) || !s.search || has(self.search))").message(msg::SEARCH_NEEDS_SPEC).field_path(".services"),
    validation = Rule::new("self.services.all(s, size(s.topics) == 0 || (has(self.kafka) && s.topics.all(t, t in self.kafka.topics)))").message(msg::TOPIC_EXISTS).field_path(".services"),
    validation = Rule::new("!has(self.gateway) || !has(self.gateway.rateLimit) || !self.gateway.rateLimit.shared || has(self.redis)").message(msg::SHARED_LIMIT_NEEDS_REDIS).field_path(".gateway.rateLimit.shared"),
    validation = Rule::new("has(self.aws) || (self.databases.all(d, d.backend != 'aws') && (!has(self.redis) || self.redis.backend != 'aws') && (!has(self.kafka) || self.kafka.backend != 'aws') && (!has(self.search) || self.search.backend != 'aws') && (!has(self.buckets) || self.buckets.all(b, b.backend != 'aws')))").message(msg::AWS_NEEDS_SPEC).field_path(".aws"),
    validation = Rule::new("!has(self.edge) || has(self.aws)").message(msg::EDGE_NEEDS_AWS).field_path(".edge"),
    validation = Rule::new("!has(self.edge) || (has(self.gateway) && has(self.gateway.host))").message(msg::EDGE_NEEDS_GATEWAY_HOST).field_path(".edge"),
    validation = Rule::new("!has(self.edge) || !has(self.edge.staticAssets) || (has(self.buckets) && self.buckets.exists(b, b.name == self.edge.staticAssets.bucket && b.backend == 'aws'))").message(msg::EDGE_ASSETS_BUCKET).field_path(".edge.staticAssets.bucket"),
    validation = Rule::new("!has(self.aws) || !has(self.kafka) || self.kafka.backend != 'aws' || self.kafka.brokers % size(self.aws.subnetIds) == 0").message(msg::MSK_BROKERS_PER_SUBNET).field_path(".kafka.brokers"),
    validation = Rule::new("!has(self.aws) || !has(self.search) || self.search.backend != 'aws' || !has(self.search.availabilityZones) || size(self.aws.subnetIds) >= self.search.availabilityZones").message(msg::SEARCH_SUBNET_PER_ZONE).field_path(".search.availabilityZones"),
)]
pub struct PantheraPlatformSpec {
    /// Tag of the Panthera images (gateway and the built-in services).
    #[serde(default = "default_release")]
    #[schemars(
        length(min = 1, max = 128),
        regex(pattern = "^[A-Za-z0-9_][A-Za-z0-9_.-]*$")
    )]
    pub release: String,
    /// Registry and path prefix of the Panthera images.
    #[serde(default = "default_image_registry")]
    #[schemars(length(min = 1, max = 200))]
    pub image_registry: String,
    /// Stop reconciling: nothing is created, changed or deleted while true.
    #[serde(default)]
    pub paused: bool,
    /// Default-deny NetworkPolicies with the allows the topology needs.
    #[serde(default)]
    pub network_policy: NetworkPolicySpec,
    /// StorageClass of the data stores' volumes (cluster backend) that name none themselves;
    /// unset: the cluster's default class. A volume's class cannot change once it exists.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 253), regex(pattern = STORAGE_CLASS))]
    pub storage_class_name: Option<String>,
    /// The API gateway in front of the services.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gateway: Option<GatewaySpec>,
    /// The platform's microservices.
    #[serde(default)]
    #[schemars(length(max = 1000))]
    #[schemars(extend("x-kubernetes-list-type" = "map", "x-kubernetes-list-map-keys" = ["name"]))]
    pub services: Vec<ServiceSpec>,
    /// PostgreSQL databases.
    #[serde(default)]
    #[schemars(length(max = 50))]
    #[schemars(extend("x-kubernetes-list-type" = "map", "x-kubernetes-list-map-keys" = ["name"]))]
    pub databases: Vec<DatabaseSpec>,
    /// Redis, for service caches and the gateway's shared rate limit.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub redis: Option<RedisSpec>,
    /// Kafka, for service events.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kafka: Option<KafkaSpec>,
    /// OpenSearch, for the services that search (`services[].search`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub search: Option<SearchSpec>,
    /// Object storage buckets, for the services that name them (`services[].buckets`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 10))]
    #[schemars(extend("x-kubernetes-list-type" = "map", "x-kubernetes-list-map-keys" = ["name"]))]
    pub buckets: Vec<BucketSpec>,
    /// The S3-compatible server in the cluster that serves the `backend: cluster` buckets:
    /// its volume and resources. Read only when a bucket is in the cluster.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub object_store: Option<ObjectStoreSpec>,
    /// CloudFront and AWS WAF in front of the gateway (AWS; needs `spec.aws` and
    /// `gateway.host`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub edge: Option<EdgeSpec>,
    /// Where data stores with `backend: aws` run: region, subnets and security groups. Required
    /// when any data store uses the aws backend.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub aws: Option<AwsSpec>,
    /// Metrics, alerts and dashboards for the platform's monitoring stack.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observability: Option<ObservabilitySpec>,
    /// JSON merge patches applied to rendered objects: the escape hatch for what the spec does not model.
    #[serde(default)]
    #[schemars(length(max = 200))]
    pub overrides: Vec<OverrideSpec>,
}

fn default_release() -> String {
    env!("CARGO_PKG_VERSION").to_string()
}

fn default_image_registry() -> String {
    "ghcr.io/panthera-dev".to_string()
}

/// Switch for the platform's NetworkPolicies.
#[derive(Deserialize, Serialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct NetworkPolicySpec {
    /// Render default-deny NetworkPolicies plus explicit allows.
    #[serde(default = "default_true")]
    pub enabled: bool,
}

impl Default for NetworkPolicySpec {
    fn default() -> Self {
        Self { enabled: true }
    }
}

fn default_true() -> bool {
    true
}

/// CPU and memory for a container; defaults are set per component.
#[derive(Deserialize, Serialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ResourcesSpec {
    /// What the scheduler reserves.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub requests: Option<ResourceAmounts>,
    /// The ceiling.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limits: Option<ResourceAmounts>,
}

/// An amount of CPU and memory.
#[derive(Deserialize, Serialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ResourceAmounts {
    /// CPU, e.g. `250m` or `1`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = CPU_QUANTITY))]
    pub cpu: Option<String>,
    /// Memory, e.g. `256Mi`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = MEMORY_QUANTITY))]
    pub memory: Option<String>,
}

/// AWS network placement of the platform's managed data stores (RDS, ElastiCache, MSK,
/// OpenSearch Service).
/// Credentials come from the standard AWS chain (environment, profile, IRSA, instance role),
/// never from the spec.
#[derive(Deserialize, Serialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct AwsSpec {
    /// AWS region, e.g. `eu-west-1`; defaults to the standard configuration (`AWS_REGION`, profile).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 32), regex(pattern = "^[a-z]{2}(-[a-z]+)+-[0-9]$"))]
    pub region: Option<String>,
    /// Subnets (in at least two availability zones) for the RDS and ElastiCache subnet groups and
    /// the MSK brokers; MSK needs `kafka.brokers` to be a multiple of their number. An
    /// OpenSearch Service domain takes the first `search.availabilityZones` of them (one per
    /// zone, so those must be in different zones).
    #[schemars(length(min = 2, max = 16))]
    #[schemars(extend("x-kubernetes-list-type" = "set", "items" = {"type": "string", "maxLength": 32, "pattern": "^subnet-[0-9a-f]{8,17}$"}))]
    pub subnet_ids: Vec<String>,
    /// VPC security groups attached to the data stores (they must allow the cluster's nodes).
    #[serde(default)]
    #[schemars(length(max = 5))]
    #[schemars(extend("x-kubernetes-list-type" = "set", "items" = {"type": "string", "maxLength": 32, "pattern": "^sg-[0-9a-f]{8,17}$"}))]
    pub security_group_ids: Vec<String>,
}

/// Horizontal Pod Autoscaler settings.
#[derive(KubeSchema, Deserialize, Serialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[x_kube(validation = Rule::new("self.minReplicas <= self.maxReplicas").message(msg::MIN_LE_MAX))]
pub struct AutoscalingSpec {
    /// Lower bound of replicas.
    #[serde(default = "default_min_replicas")]
    #[schemars(range(min = 1, max = 100))]
    pub min_replicas: i32,
    /// Upper bound of replicas.
    #[schemars(range(min = 1, max = 100))]
    pub max_replicas: i32,
    /// Average CPU utilisation the autoscaler aims for, in percent of requests.
    #[serde(default = "default_target_cpu")]
    #[schemars(range(min = 10, max = 100))]
    pub target_cpu_utilization_percentage: i32,
}

fn default_min_replicas() -> i32 {
    1
}

fn default_target_cpu() -> i32 {
    75
}

/// What a service is: one of the built-in services or your own image.
#[derive(
    Deserialize, Serialize, Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, JsonSchema,
)]
#[serde(rename_all = "camelCase")]
pub enum ServiceKind {
    /// User management API (panthera-users).
    Users,
    /// Product catalog (panthera-catalog).
    Catalog,
    /// Order processing (panthera-orders).
    Orders,
    /// Your own image (`image` required).
    Custom,
}

impl ServiceKind {
    /// Lowercase name used in image names and labels.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Users => "users",
            Self::Catalog => "catalog",
            Self::Orders => "orders",
            Self::Custom => "custom",
        }
    }
}

/// A microservice of the platform.
#[derive(KubeSchema, Deserialize, Serialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[x_kube(validation = Rule::new("self.kind != 'custom' || has(self.image)").message(msg::CUSTOM_NEEDS_IMAGE).field_path(".image"))]
#[x_kube(validation = Rule::new("!has(self.adminSecret) || self.kind == 'users'").message(msg::ADMIN_SECRET_USERS_ONLY).field_path(".adminSecret"))]
pub struct ServiceSpec {
    /// DNS-1123 label, unique in the platform.
    #[schemars(length(min = 1, max = 30), regex(pattern = DNS_LABEL))]
    pub name: String,
    /// Built-in service or custom.
    pub kind: ServiceKind,
    /// Image; defaults to `{imageRegistry}/panthera-{kind}:{release}`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 512))]
    pub image: Option<String>,
    /// Replicas when autoscaling is off.
    #[serde(default = "default_service_replicas")]
    #[schemars(range(min = 0, max = 100))]
    pub replicas: i32,
    /// Autoscaling; replaces `replicas`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub autoscaling: Option<AutoscalingSpec>,
    /// Container resources.
    #[serde(default)]
    pub resources: ResourcesSpec,
    /// Container port (HTTP, also serves /metrics, /healthz, /readyz).
    #[serde(default = "default_service_port")]
    #[schemars(range(min = 1024, max = 65535))]
    pub port: i32,
    /// Extra environment variables.
    #[serde(default)]
    #[schemars(length(max = 100))]
    #[schemars(extend("x-kubernetes-list-type" = "map", "x-kubernetes-list-map-keys" = ["name"]))]
    pub env: Vec<EnvVarSpec>,
    /// Name of the database in spec.databases this service uses.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 24), regex(pattern = DNS_LABEL))]
    pub database: Option<String>,
    /// Use the platform's Redis as a cache.
    #[serde(default)]
    pub cache: bool,
    /// The IAM role the service's pods use on AWS (IRSA: the annotation
    /// `eks.amazonaws.com/role-arn` on its ServiceAccount), e.g. one allowed its bucket only.
    /// With EKS Pod Identity, leave it unset and associate the role with the ServiceAccount
    /// `{platform}-{service}`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(
        pattern = r"^arn:aws[a-z-]*:iam::[0-9]{12}:role/[A-Za-z0-9+=,.@_/-]{1,512}$"
    ))]
    pub aws_role_arn: Option<String>,
    /// Use the platform's search engine (spec.search): the connection in `SEARCH_ENDPOINT`,
    /// `SEARCH_USERNAME` and `SEARCH_PASSWORD`, and a network path to it.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub search: bool,
    /// The bucket (of `spec.buckets`) the service stores files in: its connection in `S3_*`
    /// (`S3_BUCKET`, `S3_REGION`, `S3_ENDPOINT`, `S3_FORCE_PATH_STYLE`, `S3_ACCESS_KEY_ID`,
    /// `S3_SECRET_ACCESS_KEY`), and a network path to it. One bucket per service for now.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 1))]
    #[schemars(extend("x-kubernetes-list-type" = "set", "items" = {"type": "string", "maxLength": 30}))]
    pub buckets: Vec<String>,
    /// Kafka topics (from spec.kafka.topics) the service produces to or consumes from.
    #[serde(default)]
    #[schemars(length(max = 8))]
    #[schemars(extend("x-kubernetes-list-type" = "set", "items" = {"type": "string", "minLength": 1, "maxLength": 100, "pattern": "^[a-zA-Z0-9._-]+$"}))]
    pub topics: Vec<String>,
    /// kind users only: Secret (keys `email`, `password`) of the first administrator, created
    /// at start-up when no user has that e-mail.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(
        length(min = 1, max = 253),
        regex(pattern = "^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$")
    )]
    pub admin_secret: Option<String>,
}

fn default_service_replicas() -> i32 {
    2
}

fn default_service_port() -> i32 {
    8080
}

/// A literal environment variable.
#[derive(KubeSchema, Deserialize, Serialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[x_kube(validation = Rule::new("!(self.name in ['PORT', 'SERVICE_NAME', 'DATABASE_URL', 'REDIS_URL', 'KAFKA_BROKERS', 'KAFKA_TOPICS', 'JWT_HS256_SECRET', 'CATALOG_URL', 'IDENTITY_KEYS', 'IDENTITY_VERIFY', 'SEARCH_ENDPOINT', 'SEARCH_USERNAME', 'SEARCH_PASSWORD', 'S3_BUCKET', 'S3_REGION', 'S3_ENDPOINT', 'S3_FORCE_PATH_STYLE', 'S3_ACCESS_KEY_ID', 'S3_SECRET_ACCESS_KEY'])").message(msg::RESERVED_ENV).field_path(".name"))]
pub struct EnvVarSpec {
    /// Variable name.
    #[schemars(
        length(min = 1, max = 128),
        regex(pattern = "^[A-Za-z_][A-Za-z0-9_]*$")
    )]
    pub name: String,
    /// Value (not for secrets: use a Secret and an override).
    #[serde(default)]
    #[schemars(length(max = 4096))]
    pub value: String,
}

/// A JSON merge patch (RFC 7386) applied to one rendered object.
#[derive(Deserialize, Serialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct OverrideSpec {
    /// Kind of the rendered object, e.g. `Deployment`.
    #[schemars(length(min = 1, max = 63), regex(pattern = "^[A-Z][A-Za-z0-9]*$"))]
    pub kind: String,
    /// Name of the rendered object, e.g. `shop-users`.
    #[schemars(length(min = 1, max = 253))]
    pub name: String,
    /// The merge patch.
    #[schemars(schema_with = "preserve_unknown_object")]
    pub patch: serde_json::Map<String, serde_json::Value>,
}

fn preserve_unknown_object(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
    schemars::json_schema!({
        "type": "object",
        "x-kubernetes-preserve-unknown-fields": true,
    })
}

/// Labels every child carries; `BTreeMap` keeps rendered output byte-stable.
pub type Labels = BTreeMap<String, String>;

/// What a component of a platform is; used in labels, plans and status.
#[derive(
    Deserialize, Serialize, Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, JsonSchema,
)]
#[serde(rename_all = "camelCase")]
pub enum ComponentKind {
    Gateway,
    Service,
    Postgres,
    Redis,
    Kafka,
    Search,
    Bucket,
    /// The S3-compatible server in the cluster that holds the `backend: cluster` buckets.
    Objects,
    /// CloudFront and WAF in front of the gateway (AWS only).
    Edge,
}

impl ComponentKind {
    /// Lowercase name used in labels and output.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Gateway => "gateway",
            Self::Service => "service",
            Self::Postgres => "postgres",
            Self::Redis => "redis",
            Self::Kafka => "kafka",
            Self::Search => "search",
            Self::Bucket => "bucket",
            Self::Objects => "objects",
            Self::Edge => "edge",
        }
    }
}
