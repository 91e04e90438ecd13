//! The gateway: routes, authentication and authorization, rate limits, CORS, caching, TLS.

use std::collections::BTreeMap;

use kube::KubeSchema;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::rules::msg;
use super::{AutoscalingSpec, DNS_LABEL, ResourcesSpec};

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
    /// Addresses (CIDRs) of the proxies in front of the gateway, e.g. the ingress controller's
    /// pods: the client address they write in `clientAddressHeader` is believed from them only
    /// (for rate limiting by IP, access logs and the X-Forwarded-For sent to services). Empty:
    /// the connection's peer is the client.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 32))]
    #[schemars(extend("x-kubernetes-list-type" = "set", "items" = {"type": "string", "maxLength": 43, "pattern": CIDR}))]
    pub trusted_proxies: Vec<String>,
    /// The header the trusted proxies write the client's address to.
    #[serde(default)]
    pub client_address_header: ClientAddressHeader,
    /// Where the monitoring that scrapes the gateway's admin port (`/metrics`) runs; the
    /// NetworkPolicy admits nobody else to it. Unset: nobody (the kubelet's probes come from
    /// the node, which NetworkPolicy does not filter).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub monitoring: Option<MonitoringSpec>,
}

/// An IPv4 or IPv6 network with its prefix length (`10.0.0.0/8`, `fd00::/8`); IPv6 without
/// zones or embedded IPv4. Patterns only: CEL's IP functions need Kubernetes 1.31.
pub const CIDR: &str = concat!(
    "^((25[0-5]|2[0-4][0-9]|1[0-9]{2}|[1-9]?[0-9])\\.){3}(25[0-5]|2[0-4][0-9]|1[0-9]{2}|[1-9]?[0-9])",
    "/(3[0-2]|[12]?[0-9])$",
    "|^(",
    "([0-9a-fA-F]{1,4}:){7}[0-9a-fA-F]{1,4}",
    "|([0-9a-fA-F]{1,4}:){1,7}:",
    "|([0-9a-fA-F]{1,4}:){1,6}:[0-9a-fA-F]{1,4}",
    "|([0-9a-fA-F]{1,4}:){1,5}(:[0-9a-fA-F]{1,4}){1,2}",
    "|([0-9a-fA-F]{1,4}:){1,4}(:[0-9a-fA-F]{1,4}){1,3}",
    "|([0-9a-fA-F]{1,4}:){1,3}(:[0-9a-fA-F]{1,4}){1,4}",
    "|([0-9a-fA-F]{1,4}:){1,2}(:[0-9a-fA-F]{1,4}){1,5}",
    "|[0-9a-fA-F]{1,4}:(:[0-9a-fA-F]{1,4}){1,6}",
    "|:((:[0-9a-fA-F]{1,4}){1,7}|:)",
    ")/(12[0-8]|1[01][0-9]|[1-9]?[0-9])$",
);

/// A label key: an optional DNS-subdomain prefix and `/`, then a name of letters, digits, `-`,
/// `_` and `.` that starts and ends alphanumeric.
/// No backslashes, so it goes into a CEL string literal as it is.
pub const LABEL_KEY: &str = "^([a-z0-9]([-a-z0-9]*[a-z0-9])?([.][a-z0-9]([-a-z0-9]*[a-z0-9])?)*/)?[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$";
/// A label value (may be empty).
pub const LABEL_VALUE: &str = "^([A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?)?$";

/// The header trusted proxies write the client's address to.
#[derive(Deserialize, Serialize, Clone, Copy, Debug, Default, PartialEq, Eq, JsonSchema)]
pub enum ClientAddressHeader {
    /// `X-Forwarded-For: client, proxy, ...`: ingress-nginx, Traefik, Envoy, cloud load
    /// balancers.
    #[default]
    #[serde(rename = "X-Forwarded-For")]
    XForwardedFor,
    /// RFC 7239 `Forwarded: for=client, ...`.
    #[serde(rename = "Forwarded")]
    Forwarded,
}

/// Where monitoring runs: pods matching `podSelector` in the namespaces matching
/// `namespaceSelector` (as in a NetworkPolicy peer).
#[derive(KubeSchema, Deserialize, Serialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[x_kube(validation = Rule::new("has(self.namespaceSelector) || has(self.podSelector)").message(msg::MONITORING_NEEDS_SELECTOR))]
pub struct MonitoringSpec {
    /// The monitoring namespaces, e.g. `kubernetes.io/metadata.name: monitoring`; unset: the
    /// platform's namespace.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace_selector: Option<LabelSelectorSpec>,
    /// The monitoring pods, e.g. `app.kubernetes.io/name: prometheus`; unset: every pod of the
    /// selected namespaces.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pod_selector: Option<LabelSelectorSpec>,
}

/// Objects whose labels include all of these.
#[derive(KubeSchema, Deserialize, Serialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct LabelSelectorSpec {
    /// Label key and value pairs; at least one (an empty selector would select everything).
    #[schemars(extend("minProperties" = 1, "maxProperties" = 16, "additionalProperties" = {"type": "string", "maxLength": 63, "pattern": LABEL_VALUE}))]
    #[x_kube(validation = Rule::new(format!("self.all(k, size(k) <= 317 && k.matches('{LABEL_KEY}'))")).message(msg::LABEL_KEY))]
    pub match_labels: BTreeMap<String, String>,
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
    /// Client IP: the connection's peer, or the client a trusted proxy names (`trustedProxies`).
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
