//! Desired state of a platform: `spec` of `PantheraPlatform`.
//!
//! Bounds (`maxItems`, `maxLength`) are not decoration: the API server estimates the cost of every
//! CEL rule from them and refuses a CRD whose rules could be too expensive.

use std::collections::BTreeMap;

use kube::{CustomResource, KubeSchema};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::PantheraPlatformStatus;
use super::rules::msg;

/// Regex for a DNS-1123 label (Kubernetes object names built from it stay valid).
pub const DNS_LABEL: &str = "^[a-z]([-a-z0-9]*[a-z0-9])?$";
/// Regex for a storage size: 1Mi-9999Gi or 1Ti-99Ti; anything larger is a typo, not a plan.
pub const STORAGE_SIZE: &str = "^([1-9][0-9]{0,3}(Mi|Gi)|[1-9][0-9]?Ti)$";
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
    validation = Rule::new("self.services.all(s, size(s.topics) == 0 || (has(self.kafka) && s.topics.all(t, t in self.kafka.topics)))").message(msg::TOPIC_EXISTS).field_path(".services"),
    validation = Rule::new("!has(self.gateway) || !has(self.gateway.rateLimit) || !self.gateway.rateLimit.shared || has(self.redis)").message(msg::SHARED_LIMIT_NEEDS_REDIS).field_path(".gateway.rateLimit.shared"),
    validation = Rule::new("has(self.aws) || (self.databases.all(d, d.backend != 'aws') && (!has(self.redis) || self.redis.backend != 'aws') && (!has(self.kafka) || self.kafka.backend != 'aws'))").message(msg::AWS_NEEDS_SPEC).field_path(".aws"),
    validation = Rule::new("!has(self.aws) || !has(self.kafka) || self.kafka.backend != 'aws' || self.kafka.brokers % size(self.aws.subnetIds) == 0").message(msg::MSK_BROKERS_PER_SUBNET).field_path(".kafka.brokers"),
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
    /// Where data stores with `backend: aws` run: region, subnets and security groups. Required
    /// when any data store uses the aws backend.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub aws: Option<AwsSpec>,
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

/// AWS network placement of the platform's managed data stores (RDS, ElastiCache, MSK).
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
    /// the MSK brokers; MSK needs `kafka.brokers` to be a multiple of their number.
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

/// The API gateway.
#[derive(KubeSchema, Deserialize, Serialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[x_kube(validation = Rule::new("!has(self.tls) || has(self.host)").message(msg::TLS_NEEDS_HOST).field_path(".tls"))]
#[x_kube(validation = Rule::new("has(self.auth) || self.routes.all(r, !has(r.rules) || r.rules.all(x, !has(x.roles) && !has(x.scopes)))").message(msg::ROLES_NEED_JWT).field_path(".routes"))]
pub struct GatewaySpec {
    /// Replicas when autoscaling is off.
    #[serde(default = "default_gateway_replicas")]
    #[schemars(range(min = 0, max = 100))]
    pub replicas: i32,
    /// Autoscaling; replaces `replicas`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub autoscaling: Option<AutoscalingSpec>,
    /// External host name served by the Ingress.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(
        length(max = 253),
        regex(pattern = "^([a-z0-9]([-a-z0-9]*[a-z0-9])?\\.)*[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
    )]
    pub host: Option<String>,
    /// IngressClass of the Ingress; the cluster default when unset.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 63), regex(pattern = DNS_LABEL))]
    pub ingress_class_name: Option<String>,
    /// TLS certificate for `host`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls: Option<TlsSpec>,
    /// Token validation.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auth: Option<AuthSpec>,
    /// Request rate limit.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rate_limit: Option<RateLimitSpec>,
    /// Cross-origin resource sharing.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cors: Option<CorsSpec>,
    /// Caching of GET responses that the upstream marks cacheable.
    #[serde(default)]
    pub cache: CacheSpec,
    /// Container resources.
    #[serde(default)]
    pub resources: ResourcesSpec,
    /// Path-prefix routes to services; the longest prefix wins.
    #[serde(default)]
    #[schemars(length(max = 1000))]
    #[schemars(extend("x-kubernetes-list-type" = "map", "x-kubernetes-list-map-keys" = ["pathPrefix"]))]
    pub routes: Vec<RouteSpec>,
}

fn default_gateway_replicas() -> i32 {
    2
}

/// A TLS Secret reference.
#[derive(Deserialize, Serialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct TlsSpec {
    /// Secret of type kubernetes.io/tls in the platform's namespace.
    #[schemars(
        length(min = 1, max = 253),
        regex(pattern = "^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$")
    )]
    pub secret_name: String,
}

/// Authentication at the gateway.
#[derive(Deserialize, Serialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct AuthSpec {
    /// JWT bearer tokens.
    pub jwt: JwtSpec,
}

/// JWT validation.
#[derive(KubeSchema, Deserialize, Serialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[x_kube(validation = Rule::new("has(self.jwksUrl) != has(self.hs256SecretRef)").message(msg::ONE_KEY_SOURCE))]
pub struct JwtSpec {
    /// Expected `iss` claim.
    #[schemars(length(min = 1, max = 512))]
    pub issuer: String,
    /// Accepted `aud` values; at least one.
    #[schemars(length(min = 1, max = 16))]
    pub audiences: Vec<String>,
    /// JWKS document with the public keys (RS256/ES256).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 2048), regex(pattern = "^https?://"))]
    pub jwks_url: Option<String>,
    /// Secret holding the HS256 shared key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hs256_secret_ref: Option<SecretKeyRef>,
    /// Clock skew tolerated on `exp`/`nbf`.
    #[serde(default = "default_leeway")]
    #[schemars(range(min = 0, max = 300))]
    pub leeway_seconds: i32,
    /// Claim with the token's roles (an array, or a space-separated string).
    #[serde(default = "default_roles_claim")]
    #[schemars(length(min = 1, max = 128))]
    pub roles_claim: String,
    /// Claim with the token's scopes: `scope` (space-separated) or `scp` (an array).
    #[serde(default = "default_scopes_claim")]
    #[schemars(length(min = 1, max = 128))]
    pub scopes_claim: String,
}

fn default_roles_claim() -> String {
    "roles".to_owned()
}

fn default_scopes_claim() -> String {
    "scope".to_owned()
}

fn default_leeway() -> i32 {
    30
}

/// A key of a Secret in the platform's namespace.
#[derive(Deserialize, Serialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SecretKeyRef {
    /// Secret name.
    #[schemars(
        length(min = 1, max = 253),
        regex(pattern = "^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$")
    )]
    pub name: String,
    /// Key in the Secret.
    #[schemars(length(min = 1, max = 253), regex(pattern = "^[-._a-zA-Z0-9]+$"))]
    pub key: String,
}

/// Token-bucket rate limit.
#[derive(Deserialize, Serialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RateLimitSpec {
    /// Sustained requests per second per key.
    #[schemars(range(min = 1, max = 1000000))]
    pub requests_per_second: i32,
    /// Bucket size; defaults to twice the rate.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = 10000000))]
    pub burst: Option<i32>,
    /// What a bucket is kept per.
    #[serde(default)]
    pub key: RateLimitKey,
    /// Share buckets between replicas through Redis (needs spec.redis).
    #[serde(default)]
    pub shared: bool,
}

/// Rate-limit key.
#[derive(Deserialize, Serialize, Clone, Copy, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub enum RateLimitKey {
    /// Client IP (first `X-Forwarded-For` hop set by the ingress).
    #[default]
    Ip,
    /// The token's `sub` claim.
    Subject,
}

/// CORS policy.
#[derive(Deserialize, Serialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CorsSpec {
    /// Allowed origins (`https://app.example.com`), or `*`.
    #[schemars(length(min = 1, max = 64))]
    pub allowed_origins: Vec<String>,
    /// Allowed methods.
    #[serde(default = "default_cors_methods")]
    #[schemars(length(max = 16))]
    pub allowed_methods: Vec<String>,
    /// Allowed request headers.
    #[serde(default = "default_cors_headers")]
    #[schemars(length(max = 64))]
    pub allowed_headers: Vec<String>,
    /// Allow cookies and credentials (not with `*` origins).
    #[serde(default)]
    pub allow_credentials: bool,
    /// How long browsers may cache a preflight answer.
    #[serde(default = "default_cors_max_age")]
    #[schemars(range(min = 0, max = 86400))]
    pub max_age_seconds: i32,
}

fn default_cors_methods() -> Vec<String> {
    ["GET", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]
        .map(String::from)
        .to_vec()
}

fn default_cors_headers() -> Vec<String> {
    ["authorization", "content-type"].map(String::from).to_vec()
}

fn default_cors_max_age() -> i32 {
    600
}

/// Gateway response cache.
#[derive(Deserialize, Serialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CacheSpec {
    /// Cache GET responses that the upstream marks cacheable.
    #[serde(default)]
    pub enabled: bool,
    /// Entries kept per replica.
    #[serde(default = "default_cache_entries")]
    #[schemars(range(min = 1, max = 1000000))]
    pub max_entries: i32,
}

impl Default for CacheSpec {
    fn default() -> Self {
        Self {
            enabled: false,
            max_entries: default_cache_entries(),
        }
    }
}

fn default_cache_entries() -> i32 {
    10000
}

/// A gateway route.
#[derive(KubeSchema, Deserialize, Serialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[x_kube(validation = Rule::new("!has(self.rules) || self.rules.all(a, a.methods.all(m, self.rules.filter(b, m in b.methods).size() == 1))").message(msg::METHOD_IN_ONE_RULE).field_path(".rules"))]
pub struct RouteSpec {
    /// Request path prefix, e.g. `/v1/users`; no trailing or doubled `/`, so that prefixes the
    /// gateway would treat as one (`/a` and `/a/`) cannot both be listed.
    #[schemars(
        length(min = 1, max = 256),
        regex(pattern = "^/([A-Za-z0-9._~!$&'()*+,;=:@%-]+(/[A-Za-z0-9._~!$&'()*+,;=:@%-]+)*)?$")
    )]
    pub path_prefix: String,
    /// Name of the service in spec.services.
    #[schemars(length(min = 1, max = 30), regex(pattern = DNS_LABEL))]
    pub service: String,
    /// No token needed (for the methods no rule lists).
    #[serde(default)]
    pub public: bool,
    /// Who may call which methods; a method no rule lists follows `public`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    // Seven methods, each in one rule at most: seven rules at most. The bound also keeps the
    // one-rule-per-method CEL rule within the API server's cost budget (at 8 it was 1.14x over).
    #[schemars(length(max = 7))]
    pub rules: Vec<RouteRuleSpec>,
    /// Remove the prefix before forwarding.
    #[serde(default)]
    pub strip_prefix: bool,
    /// Upstream timeout.
    #[serde(default = "default_route_timeout")]
    #[schemars(range(min = 1, max = 600))]
    pub timeout_seconds: i32,
    /// Retries of idempotent requests.
    #[serde(default = "default_route_retries")]
    #[schemars(range(min = 0, max = 5))]
    pub retries: i32,
}

/// Access to some methods of a route.
#[derive(KubeSchema, Deserialize, Serialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[x_kube(validation = Rule::new("!self.public || (!has(self.roles) && !has(self.scopes))").message(msg::PUBLIC_RULE_NO_ROLES))]
pub struct RouteRuleSpec {
    /// Methods the rule applies to; each in one rule of the route at most.
    #[schemars(length(min = 1, max = 7))]
    #[schemars(extend("x-kubernetes-list-type" = "set"))]
    pub methods: Vec<HttpMethod>,
    /// No token needed.
    #[serde(default)]
    pub public: bool,
    /// A token with one of these roles passes (or one of `scopes`); neither set: any valid
    /// token. Omit rather than list none (an empty list is refused, so "set" means "not empty").
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(min = 1, max = 16))]
    #[schemars(extend("items" = {"type": "string", "minLength": 1, "maxLength": 128, "pattern": "^[!-~]+$"}))]
    pub roles: Vec<String>,
    /// A token with one of these scopes passes (or one of `roles`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(min = 1, max = 16))]
    #[schemars(extend("items" = {"type": "string", "minLength": 1, "maxLength": 128, "pattern": "^[!-~]+$"}))]
    pub scopes: Vec<String>,
}

/// An HTTP method a route rule names.
#[derive(Deserialize, Serialize, Clone, Copy, Debug, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "UPPERCASE")]
pub enum HttpMethod {
    Get,
    Head,
    Post,
    Put,
    Patch,
    Delete,
    Options,
}

impl HttpMethod {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Get => "GET",
            Self::Head => "HEAD",
            Self::Post => "POST",
            Self::Put => "PUT",
            Self::Patch => "PATCH",
            Self::Delete => "DELETE",
            Self::Options => "OPTIONS",
        }
    }
}

fn default_route_timeout() -> i32 {
    15
}

fn default_route_retries() -> i32 {
    1
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
#[x_kube(validation = Rule::new("!(self.name in ['PORT', 'SERVICE_NAME', 'DATABASE_URL', 'REDIS_URL', 'KAFKA_BROKERS', 'KAFKA_TOPICS', 'JWT_HS256_SECRET', 'CATALOG_URL'])").message(msg::RESERVED_ENV).field_path(".name"))]
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

/// Where a data store runs.
#[derive(
    Deserialize, Serialize, Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, JsonSchema,
)]
#[serde(rename_all = "camelCase")]
pub enum Backend {
    /// A StatefulSet in the platform's namespace.
    #[default]
    Cluster,
    /// An AWS managed service (RDS, ElastiCache, MSK).
    Aws,
}

impl Backend {
    /// Lowercase name used in labels and output.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Cluster => "cluster",
            Self::Aws => "aws",
        }
    }
}

/// What happens to a data store's data when it is removed from the spec or the platform is deleted.
#[derive(Deserialize, Serialize, Clone, Copy, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "PascalCase")]
pub enum DeletionPolicy {
    /// Keep a final snapshot (aws) / keep the volumes (cluster), then remove the store.
    #[default]
    Snapshot,
    /// Leave the data and the store's volumes or AWS resource in place.
    Retain,
    /// Delete the data.
    Delete,
}

/// A PostgreSQL database.
#[derive(KubeSchema, Deserialize, Serialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[x_kube(
    validation = Rule::new("self.backend == oldSelf.backend").message(msg::DATABASE_BACKEND_IMMUTABLE).field_path(".backend"),
    validation = Rule::new("self.backend != 'cluster' || self.storage == oldSelf.storage").message(msg::DATABASE_STORAGE_IMMUTABLE).field_path(".storage"),
    validation = Rule::new("self.backend != 'cluster' || self.version == oldSelf.version").message(msg::DATABASE_VERSION_IMMUTABLE).field_path(".version"),
    validation = Rule::new("!has(self.existingIdentifier) || self.backend == 'aws'").message(msg::EXISTING_NEEDS_AWS).field_path(".existingIdentifier"),
)]
pub struct DatabaseSpec {
    /// DNS-1123 label, unique in the platform; also the database name.
    #[schemars(length(min = 1, max = 24), regex(pattern = DNS_LABEL))]
    pub name: String,
    /// Where it runs.
    #[serde(default)]
    pub backend: Backend,
    /// PostgreSQL major version.
    #[serde(default = "default_postgres_version")]
    pub version: PostgresVersion,
    /// Volume size (cluster) or allocated storage (aws).
    #[serde(default = "default_database_storage")]
    // maxLength bounds the cost the API server estimates for the CEL rules comparing it.
    #[schemars(regex(pattern = STORAGE_SIZE), length(max = 8))]
    pub storage: String,
    /// RDS instance class (aws backend).
    #[serde(default = "default_instance_class")]
    #[schemars(length(max = 64), regex(pattern = "^db\\.[a-z0-9]+\\.[a-z0-9]+$"))]
    pub instance_class: String,
    /// Adopt an existing RDS DB instance of this name (aws backend): Panthera tags it as its own and
    /// manages it from then on. Without it, Panthera never touches a resource it did not create.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 63), regex(pattern = "^[a-zA-Z][a-zA-Z0-9-]*$"))]
    pub existing_identifier: Option<String>,
    /// What happens to the data on removal.
    #[serde(default)]
    pub deletion_policy: DeletionPolicy,
    /// Container resources (cluster backend).
    #[serde(default)]
    pub resources: ResourcesSpec,
}

/// Supported PostgreSQL major versions.
#[derive(Deserialize, Serialize, Clone, Copy, Debug, PartialEq, Eq, JsonSchema)]
pub enum PostgresVersion {
    #[serde(rename = "15")]
    V15,
    #[serde(rename = "16")]
    V16,
    #[serde(rename = "17")]
    V17,
}

impl PostgresVersion {
    /// The major version as written in image tags.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::V15 => "15",
            Self::V16 => "16",
            Self::V17 => "17",
        }
    }
}

fn default_postgres_version() -> PostgresVersion {
    PostgresVersion::V16
}

fn default_database_storage() -> String {
    "10Gi".to_string()
}

fn default_instance_class() -> String {
    "db.t4g.micro".to_string()
}

/// Redis.
#[derive(KubeSchema, Deserialize, Serialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[x_kube(
    validation = Rule::new("self.backend == oldSelf.backend").message(msg::BACKEND_IMMUTABLE).field_path(".backend"),
    validation = Rule::new("!has(self.existingIdentifier) || self.backend == 'aws'").message(msg::EXISTING_NEEDS_AWS).field_path(".existingIdentifier"),
)]
pub struct RedisSpec {
    /// Where it runs.
    #[serde(default)]
    pub backend: Backend,
    /// Redis version (image tag / ElastiCache engine version).
    #[serde(default = "default_redis_version")]
    #[schemars(regex(pattern = "^[0-9]+\\.[0-9]+$"))]
    pub version: String,
    /// Volume size (cluster backend).
    #[serde(default = "default_redis_storage")]
    // maxLength bounds the cost the API server estimates for the CEL rules comparing it.
    #[schemars(regex(pattern = STORAGE_SIZE), length(max = 8))]
    pub storage: String,
    /// ElastiCache node type (aws backend).
    #[serde(default = "default_redis_node_type")]
    #[schemars(length(max = 64), regex(pattern = "^cache\\.[a-z0-9]+\\.[a-z0-9]+$"))]
    pub node_type: String,
    /// Adopt an existing ElastiCache replication group of this name (aws backend): Panthera tags it as its own and
    /// manages it from then on. Without it, Panthera never touches a resource it did not create.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 40), regex(pattern = "^[a-zA-Z][a-zA-Z0-9-]*$"))]
    pub existing_identifier: Option<String>,
    /// What happens to the data on removal.
    #[serde(default)]
    pub deletion_policy: DeletionPolicy,
    /// Container resources (cluster backend).
    #[serde(default)]
    pub resources: ResourcesSpec,
}

fn default_redis_version() -> String {
    "7.2".to_string()
}

fn default_redis_storage() -> String {
    "1Gi".to_string()
}

fn default_redis_node_type() -> String {
    "cache.t4g.micro".to_string()
}

/// Kafka (KRaft).
#[derive(KubeSchema, Deserialize, Serialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[x_kube(
    validation = Rule::new("self.topics.all(t, self.topics[t].replicationFactor <= self.brokers)").message(msg::REPLICATION_LE_BROKERS).field_path(".topics"),
    validation = Rule::new("self.backend == oldSelf.backend").message(msg::BACKEND_IMMUTABLE).field_path(".backend"),
    validation = Rule::new("!has(self.existingIdentifier) || self.backend == 'aws'").message(msg::EXISTING_NEEDS_AWS).field_path(".existingIdentifier"),
)]
pub struct KafkaSpec {
    /// Where it runs.
    #[serde(default)]
    pub backend: Backend,
    /// Number of brokers (combined broker+controller nodes in the cluster backend).
    #[serde(default = "default_kafka_brokers")]
    #[schemars(range(min = 1, max = 15))]
    pub brokers: i32,
    /// Kafka version.
    #[serde(default = "default_kafka_version")]
    #[schemars(regex(pattern = "^[0-9]+\\.[0-9]+\\.[0-9]+$"))]
    pub version: String,
    /// Volume size per broker.
    #[serde(default = "default_kafka_storage")]
    // maxLength bounds the cost the API server estimates for the CEL rules comparing it.
    #[schemars(regex(pattern = STORAGE_SIZE), length(max = 8))]
    pub storage: String,
    /// MSK broker instance type (aws backend).
    #[serde(default = "default_kafka_instance_type")]
    #[schemars(length(max = 64), regex(pattern = "^kafka\\.[a-z0-9]+\\.[a-z0-9]+$"))]
    pub instance_type: String,
    /// Adopt an existing MSK cluster of this name (aws backend): Panthera tags it as its own and
    /// manages it from then on. Without it, Panthera never touches a resource it did not create.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(
        length(min = 1, max = 64),
        regex(pattern = "^[a-zA-Z0-9][a-zA-Z0-9-]*$")
    )]
    pub existing_identifier: Option<String>,
    /// What happens to the data on removal.
    #[serde(default)]
    pub deletion_policy: DeletionPolicy,
    /// Topics created and kept in shape, by name. A map rather than a list so that "a service's
    /// topic must exist" is a key lookup: the API server refuses CEL rules whose estimated cost
    /// (services x topics x kafka topics) is too high.
    #[serde(default)]
    #[schemars(extend("maxProperties" = 50))]
    #[x_kube(validation = Rule::new("self.all(k, size(k) <= 100 && k.matches('^[a-zA-Z0-9._-]+$'))").message(msg::TOPIC_NAME))]
    pub topics: BTreeMap<String, KafkaTopicSpec>,
    /// Container resources (cluster backend).
    #[serde(default)]
    pub resources: ResourcesSpec,
}

fn default_kafka_brokers() -> i32 {
    3
}

fn default_kafka_version() -> String {
    "3.9.0".to_string()
}

fn default_kafka_storage() -> String {
    "20Gi".to_string()
}

fn default_kafka_instance_type() -> String {
    "kafka.t3.small".to_string()
}

/// A Kafka topic.
#[derive(KubeSchema, Deserialize, Serialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[x_kube(validation = Rule::new("self.partitions >= oldSelf.partitions").message(msg::PARTITIONS_NOT_DECREASED).field_path(".partitions"))]
pub struct KafkaTopicSpec {
    /// Partitions.
    #[serde(default = "default_partitions")]
    #[schemars(range(min = 1, max = 1000))]
    pub partitions: i32,
    /// Copies of each partition.
    #[serde(default = "default_replication")]
    #[schemars(range(min = 1, max = 15))]
    pub replication_factor: i32,
    /// Retention in hours; -1 keeps forever.
    #[serde(default = "default_retention")]
    #[schemars(range(min = -1, max = 87600))]
    pub retention_hours: i32,
}

fn default_partitions() -> i32 {
    3
}

fn default_replication() -> i32 {
    3
}

fn default_retention() -> i32 {
    168
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
        }
    }
}
