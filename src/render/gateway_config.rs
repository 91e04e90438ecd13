//! The gateway's configuration file (`gateway.yaml` in its ConfigMap), as specified in
//! docs/contracts.md. It names environment variables for secrets, never the secrets themselves.

use serde::Serialize;

use super::context::Names;
use crate::api::{ClientAddressHeader, GatewaySpec, RateLimitKey, ServiceSpec};

/// Environment variable holding the HS256 key in the gateway container.
pub const HS256_ENV: &str = "JWT_HS256_SECRET";
/// Environment variable holding the Redis URL in the gateway container.
pub const REDIS_ENV: &str = "REDIS_URL";
/// Environment variable holding the identity signing keys, in the gateway and every service.
pub const IDENTITY_KEYS_ENV: &str = "IDENTITY_KEYS";

#[derive(Serialize, Debug)]
#[serde(rename_all = "camelCase")]
pub struct GatewayConfig {
    listen: String,
    admin_listen: String,
    max_body_bytes: u64,
    upstream_timeout_ms: u64,
    routes: Vec<Route>,
    #[serde(skip_serializing_if = "Option::is_none")]
    auth: Option<Auth>,
    #[serde(skip_serializing_if = "Option::is_none")]
    rate_limit: Option<RateLimit>,
    #[serde(skip_serializing_if = "Option::is_none")]
    cors: Option<Cors>,
    #[serde(skip_serializing_if = "Option::is_none")]
    cache: Option<Cache>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    trusted_proxies: Vec<String>,
    client_address_header: &'static str,
    identity: Identity,
    #[serde(skip_serializing_if = "Option::is_none")]
    tracing: Option<Tracing>,
}

#[derive(Serialize, Debug)]
#[serde(rename_all = "camelCase")]
struct Tracing {
    trust_client_context: bool,
}

impl GatewayConfig {
    /// What the gateway does with a client's trace context while it traces
    /// (`spec.observability.tracing.trustClientContext`).
    pub fn with_tracing(mut self, trust_client_context: bool) -> Self {
        self.tracing = Some(Tracing {
            trust_client_context,
        });
        self
    }
}

#[derive(Serialize, Debug)]
#[serde(rename_all = "camelCase")]
struct Identity {
    signing_keys_env: &'static str,
}

#[derive(Serialize, Debug)]
#[serde(rename_all = "camelCase")]
struct Route {
    name: String,
    path_prefix: String,
    upstream: String,
    public: bool,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    rules: Vec<Rule>,
    strip_prefix: bool,
    retries: i32,
    timeout_ms: u64,
}

#[derive(Serialize, Debug)]
#[serde(rename_all = "camelCase")]
struct Rule {
    methods: Vec<&'static str>,
    public: bool,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    roles: Vec<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    scopes: Vec<String>,
}

#[derive(Serialize, Debug)]
struct Auth {
    jwt: Jwt,
}

#[derive(Serialize, Debug)]
#[serde(rename_all = "camelCase")]
struct Jwt {
    issuer: String,
    audiences: Vec<String>,
    leeway_seconds: i32,
    #[serde(skip_serializing_if = "Option::is_none")]
    jwks_url: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    hs256_secret_env: Option<String>,
    roles_claim: String,
    scopes_claim: String,
}

#[derive(Serialize, Debug)]
#[serde(rename_all = "camelCase")]
struct RateLimit {
    requests_per_second: i32,
    burst: i32,
    key: RateLimitKey,
    #[serde(skip_serializing_if = "Option::is_none")]
    redis_url_env: Option<String>,
}

#[derive(Serialize, Debug)]
#[serde(rename_all = "camelCase")]
struct Cors {
    allowed_origins: Vec<String>,
    allowed_methods: Vec<String>,
    allowed_headers: Vec<String>,
    allow_credentials: bool,
    max_age_seconds: i32,
}

#[derive(Serialize, Debug)]
#[serde(rename_all = "camelCase")]
struct Cache {
    enabled: bool,
    max_entries: i32,
}

/// Build the configuration of the gateway of a platform.
pub fn build(
    gw: &GatewaySpec,
    names: &Names,
    services: &[ServiceSpec],
    shared_limit: bool,
) -> GatewayConfig {
    let routes = gw
        .routes
        .iter()
        .map(|r| {
            let port = services
                .iter()
                .find(|s| s.name == r.service)
                .map_or(8080, |s| s.port);
            Route {
                // Unique per route (the gateway labels metrics with it and refuses duplicates);
                // several prefixes may lead to one service.
                name: format!("{}{}", r.service, r.path_prefix),
                path_prefix: r.path_prefix.clone(),
                upstream: format!("http://{}:{port}", names.service(&r.service)),
                public: r.public,
                rules: r
                    .rules
                    .iter()
                    .map(|rule| Rule {
                        methods: rule.methods.iter().map(|m| m.as_str()).collect(),
                        public: rule.public,
                        roles: rule.roles.clone(),
                        scopes: rule.scopes.clone(),
                    })
                    .collect(),
                strip_prefix: r.strip_prefix,
                retries: r.retries,
                timeout_ms: u64::try_from(r.timeout_seconds).unwrap_or(15) * 1000,
            }
        })
        .collect();
    GatewayConfig {
        listen: "0.0.0.0:8080".into(),
        admin_listen: "0.0.0.0:9090".into(),
        max_body_bytes: 1024 * 1024,
        upstream_timeout_ms: 15_000,
        routes,
        auth: gw.auth.as_ref().map(|a| Auth {
            jwt: Jwt {
                issuer: a.jwt.issuer.clone(),
                audiences: a.jwt.audiences.clone(),
                leeway_seconds: a.jwt.leeway_seconds,
                jwks_url: a.jwt.jwks_url.clone(),
                hs256_secret_env: a
                    .jwt
                    .hs256_secret_ref
                    .as_ref()
                    .map(|_| HS256_ENV.to_string()),
                roles_claim: a.jwt.roles_claim.clone(),
                scopes_claim: a.jwt.scopes_claim.clone(),
            },
        }),
        rate_limit: gw.rate_limit.as_ref().map(|r| RateLimit {
            requests_per_second: r.requests_per_second,
            burst: r.burst.unwrap_or(r.requests_per_second.saturating_mul(2)),
            key: r.key,
            redis_url_env: (r.shared && shared_limit).then(|| REDIS_ENV.to_string()),
        }),
        cors: gw.cors.as_ref().map(|c| Cors {
            allowed_origins: c.allowed_origins.clone(),
            allowed_methods: c.allowed_methods.clone(),
            allowed_headers: c.allowed_headers.clone(),
            allow_credentials: c.allow_credentials,
            max_age_seconds: c.max_age_seconds,
        }),
        cache: gw.cache.enabled.then_some(Cache {
            enabled: true,
            max_entries: gw.cache.max_entries,
        }),
        trusted_proxies: gw.trusted_proxies.clone(),
        client_address_header: match gw.client_address_header {
            ClientAddressHeader::XForwardedFor => "x-forwarded-for",
            ClientAddressHeader::Forwarded => "forwarded",
        },
        // The services believe only identities signed with the platform's identity Secret.
        identity: Identity {
            signing_keys_env: IDENTITY_KEYS_ENV,
        },
        tracing: None,
    }
}
