//! The gateway configuration file (`gateway.yaml`), as specified in `docs/contracts.md`.
//!
//! Parsing is strict: unknown fields are rejected with the field's path (for example
//! `routes[1].pathPrefx`) so that a renderer/gateway mismatch fails loudly instead of being
//! silently ignored. [`GatewayConfig::validate`] checks everything that would otherwise fail
//! (or panic inside a library) when the runtime state is built.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use http::{HeaderName, HeaderValue, Method, Uri};
use serde::Deserialize;

pub use crate::client_addr::ClientAddressHeader;
use crate::client_addr::{Cidr, MAX_TRUSTED_PROXIES};

/// Errors raised while loading or validating the configuration file.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("failed to read gateway config {path}: {source}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("failed to parse gateway config at `{location}`: {message}")]
    Parse { location: String, message: String },
    #[error("invalid gateway config at `{field}`: {reason}")]
    Invalid { field: String, reason: String },
}

pub type Result<T, E = ConfigError> = std::result::Result<T, E>;

fn invalid(field: impl Into<String>, reason: impl Into<String>) -> ConfigError {
    ConfigError::Invalid {
        field: field.into(),
        reason: reason.into(),
    }
}

/// Root of `gateway.yaml`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct GatewayConfig {
    /// Proxy listener.
    #[serde(default = "default_listen")]
    pub listen: String,
    /// Admin listener: `/metrics`, `/healthz`, `/readyz`.
    #[serde(default = "default_admin_listen")]
    pub admin_listen: String,
    /// Largest request body forwarded upstream; larger bodies get 413.
    #[serde(default = "default_max_body_bytes")]
    pub max_body_bytes: u64,
    /// Time allowed for an upstream to return response headers, unless the route overrides it.
    #[serde(default = "default_upstream_timeout_ms")]
    pub upstream_timeout_ms: u64,
    pub routes: Vec<RouteConfig>,
    #[serde(default)]
    pub auth: Option<AuthConfig>,
    #[serde(default)]
    pub rate_limit: Option<RateLimitConfig>,
    #[serde(default)]
    pub cors: Option<CorsConfig>,
    #[serde(default)]
    pub cache: Option<CacheConfig>,
    /// Peers (CIDRs) whose `clientAddressHeader` is believed: the ingress controller in front
    /// of the gateway. Empty: the TCP peer is the client and forwarding headers are replaced.
    #[serde(default)]
    pub trusted_proxies: Vec<String>,
    /// The header trusted proxies write the client's address to.
    #[serde(default)]
    pub client_address_header: ClientAddressHeader,
    /// Signing of the identity headers sent upstream (see `panthera_identity`).
    #[serde(default)]
    pub identity: Option<IdentityConfig>,
    /// What the gateway does with a client's trace context (export itself is configured by
    /// the `OTEL_*` variables).
    #[serde(default)]
    pub tracing: TracingConfig,
}

/// The client's `traceparent` when tracing is on.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct TracingConfig {
    /// `true`: continue the client's trace, sampled as the client decided (a client of the
    /// platform's own, or a trusted edge). `false` (default): a new trace whose root span
    /// links to the client's, so no client forces sampling or joins a trace of its choosing.
    #[serde(default)]
    pub trust_client_context: bool,
}

/// How the gateway vouches for the identity it sends upstream.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct IdentityConfig {
    /// Environment variable holding the keys, comma-separated; the first signs
    /// (`IDENTITY_KEYS`, from the platform's identity Secret).
    pub signing_keys_env: String,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RouteConfig {
    pub name: String,
    pub path_prefix: String,
    pub upstream: String,
    /// `false`: a valid JWT is required when `auth.jwt` is set.
    #[serde(default)]
    pub public: bool,
    #[serde(default)]
    pub strip_prefix: bool,
    /// Extra attempts after a failed one, for idempotent methods only.
    #[serde(default)]
    pub retries: u32,
    #[serde(default)]
    pub timeout_ms: Option<u64>,
    /// Per-method access rules; a method no rule lists follows `public`.
    #[serde(default)]
    pub rules: Vec<MethodRuleConfig>,
}

/// Who may call some methods of a route.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct MethodRuleConfig {
    /// HTTP methods (upper case) the rule applies to; a method may appear in one rule per route.
    pub methods: Vec<String>,
    /// `true`: no token needed (identity headers are still stripped).
    #[serde(default)]
    pub public: bool,
    /// A valid token must carry at least one of these roles or one of `scopes`; with both lists
    /// empty any valid token is enough.
    #[serde(default)]
    pub roles: Vec<String>,
    #[serde(default)]
    pub scopes: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct AuthConfig {
    #[serde(default)]
    pub jwt: Option<JwtConfig>,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct JwtConfig {
    pub issuer: String,
    pub audiences: Vec<String>,
    #[serde(default = "default_leeway_seconds")]
    pub leeway_seconds: u64,
    #[serde(default)]
    pub jwks_url: Option<String>,
    #[serde(default)]
    pub hs256_secret_env: Option<String>,
    /// Claim holding the token's roles: an array of strings or a space-separated string.
    #[serde(default = "default_roles_claim")]
    pub roles_claim: String,
    /// Claim holding the token's scopes: a space-separated string (`scope`) or an array (`scp`).
    #[serde(default = "default_scopes_claim")]
    pub scopes_claim: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RateLimitKey {
    Ip,
    Subject,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RateLimitConfig {
    pub requests_per_second: f64,
    pub burst: u32,
    #[serde(default = "default_rate_limit_key")]
    pub key: RateLimitKey,
    #[serde(default)]
    pub redis_url_env: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CorsConfig {
    pub allowed_origins: Vec<String>,
    #[serde(default = "default_cors_methods")]
    pub allowed_methods: Vec<String>,
    #[serde(default)]
    pub allowed_headers: Vec<String>,
    #[serde(default)]
    pub allow_credentials: bool,
    #[serde(default)]
    pub max_age_seconds: Option<u64>,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CacheConfig {
    #[serde(default = "default_true")]
    pub enabled: bool,
    #[serde(default = "default_cache_max_entries")]
    pub max_entries: u64,
}

fn default_listen() -> String {
    "0.0.0.0:8080".to_owned()
}
fn default_admin_listen() -> String {
    "0.0.0.0:9090".to_owned()
}
fn default_max_body_bytes() -> u64 {
    1024 * 1024
}
fn default_upstream_timeout_ms() -> u64 {
    15_000
}
fn default_leeway_seconds() -> u64 {
    30
}
fn default_roles_claim() -> String {
    "roles".to_owned()
}
fn default_scopes_claim() -> String {
    "scope".to_owned()
}
fn default_rate_limit_key() -> RateLimitKey {
    RateLimitKey::Ip
}
fn default_cors_methods() -> Vec<String> {
    ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]
        .into_iter()
        .map(str::to_owned)
        .collect()
}
fn default_true() -> bool {
    true
}
fn default_cache_max_entries() -> u64 {
    10_000
}

/// Retries beyond this only pile load on an upstream that is already failing.
pub const MAX_RETRIES: u32 = 5;

impl GatewayConfig {
    /// Reads, parses and validates the file at `path`.
    pub fn load(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_owned(),
            source,
        })?;
        Self::from_yaml(&text)
    }

    /// Parses and validates YAML text.
    pub fn from_yaml(text: &str) -> Result<Self> {
        let deserializer = serde_yaml::Deserializer::from_str(text);
        let config: GatewayConfig =
            serde_path_to_error::deserialize(deserializer).map_err(|err| {
                let location = err.path().to_string();
                ConfigError::Parse {
                    location: if location == "." {
                        "(root)".to_owned()
                    } else {
                        location
                    },
                    message: err.into_inner().to_string(),
                }
            })?;
        config.validate()?;
        Ok(config)
    }

    pub fn listen_addr(&self) -> Result<SocketAddr> {
        self.listen.parse().map_err(|_| {
            invalid(
                "listen",
                format!("`{}` is not an IP:port address", self.listen),
            )
        })
    }

    pub fn admin_listen_addr(&self) -> Result<SocketAddr> {
        self.admin_listen.parse().map_err(|_| {
            invalid(
                "adminListen",
                format!("`{}` is not an IP:port address", self.admin_listen),
            )
        })
    }

    /// Checks every constraint the runtime relies on; the runtime assumes a validated config.
    pub fn validate(&self) -> Result<()> {
        self.listen_addr()?;
        self.admin_listen_addr()?;
        if self.max_body_bytes == 0 {
            return Err(invalid("maxBodyBytes", "must be greater than 0"));
        }
        if self.upstream_timeout_ms == 0 {
            return Err(invalid("upstreamTimeoutMs", "must be greater than 0"));
        }
        let mut names = std::collections::HashSet::new();
        let mut prefixes = std::collections::HashSet::new();
        for (index, route) in self.routes.iter().enumerate() {
            let at = |field: &str| format!("routes[{index}].{field}");
            if route.name.trim().is_empty() {
                return Err(invalid(at("name"), "must not be empty"));
            }
            if !names.insert(route.name.as_str()) {
                return Err(invalid(
                    at("name"),
                    format!("duplicate route name `{}`", route.name),
                ));
            }
            if !route.path_prefix.starts_with('/') {
                return Err(invalid(at("pathPrefix"), "must start with `/`"));
            }
            if route.path_prefix.contains(['?', '#', ' ']) {
                return Err(invalid(
                    at("pathPrefix"),
                    "must be a plain path without query, fragment or spaces",
                ));
            }
            if !prefixes.insert(normalize_prefix(&route.path_prefix)) {
                return Err(invalid(
                    at("pathPrefix"),
                    format!("duplicate pathPrefix `{}`", route.path_prefix),
                ));
            }
            parse_upstream(&route.upstream).map_err(|reason| invalid(at("upstream"), reason))?;
            if route.retries > MAX_RETRIES {
                return Err(invalid(
                    at("retries"),
                    format!("must be at most {MAX_RETRIES}"),
                ));
            }
            if route.timeout_ms == Some(0) {
                return Err(invalid(at("timeoutMs"), "must be greater than 0"));
            }
            route.validate_rules(index, self.jwt().is_some())?;
        }
        if let Some(jwt) = self.auth.as_ref().and_then(|auth| auth.jwt.as_ref()) {
            jwt.validate()?;
        }
        if let Some(rate) = &self.rate_limit {
            if !(rate.requests_per_second.is_finite() && rate.requests_per_second > 0.0) {
                return Err(invalid(
                    "rateLimit.requestsPerSecond",
                    "must be a number greater than 0",
                ));
            }
            // Below one request per ~day the token-bucket period overflows nothing but is useless.
            if rate.requests_per_second < 1e-5 {
                return Err(invalid("rateLimit.requestsPerSecond", "is too small"));
            }
            if rate.burst == 0 {
                return Err(invalid("rateLimit.burst", "must be at least 1"));
            }
            if rate.redis_url_env.as_deref().is_some_and(str::is_empty) {
                return Err(invalid("rateLimit.redisUrlEnv", "must not be empty"));
            }
        }
        if let Some(cors) = &self.cors {
            cors.validate()?;
        }
        if let Some(cache) = &self.cache
            && cache.enabled
            && cache.max_entries == 0
        {
            return Err(invalid("cache.maxEntries", "must be at least 1"));
        }
        self.trusted_proxies()?;
        if self
            .identity
            .as_ref()
            .is_some_and(|identity| identity.signing_keys_env.is_empty())
        {
            return Err(invalid("identity.signingKeysEnv", "must not be empty"));
        }
        Ok(())
    }

    /// The parsed `trustedProxies`.
    pub fn trusted_proxies(&self) -> Result<Vec<Cidr>> {
        if self.trusted_proxies.len() > MAX_TRUSTED_PROXIES {
            return Err(invalid(
                "trustedProxies",
                format!("must list at most {MAX_TRUSTED_PROXIES} networks"),
            ));
        }
        self.trusted_proxies
            .iter()
            .enumerate()
            .map(|(index, cidr)| {
                Cidr::parse(cidr)
                    .map_err(|reason| invalid(format!("trustedProxies[{index}]"), reason))
            })
            .collect()
    }

    /// The configured JWT settings, if any.
    pub fn jwt(&self) -> Option<&JwtConfig> {
        self.auth.as_ref().and_then(|auth| auth.jwt.as_ref())
    }
}

impl RouteConfig {
    fn validate_rules(&self, route: usize, has_jwt: bool) -> Result<()> {
        let mut seen: Vec<&str> = Vec::new();
        for (index, rule) in self.rules.iter().enumerate() {
            let at = |field: &str| format!("routes[{route}].rules[{index}].{field}");
            if rule.methods.is_empty() {
                return Err(invalid(at("methods"), "must list at least one method"));
            }
            for method in &rule.methods {
                // Upper case only: HTTP methods are case-sensitive and `get` is not GET.
                if method.is_empty()
                    || !method.bytes().all(|b| b.is_ascii_uppercase())
                    || Method::from_bytes(method.as_bytes()).is_err()
                {
                    return Err(invalid(
                        at("methods"),
                        format!("`{method}` is not an upper-case HTTP method"),
                    ));
                }
                if seen.contains(&method.as_str()) {
                    return Err(invalid(
                        at("methods"),
                        format!("`{method}` is already covered by another rule of this route"),
                    ));
                }
                seen.push(method);
            }
            let requires = !(rule.roles.is_empty() && rule.scopes.is_empty());
            if rule.public && requires {
                return Err(invalid(
                    at("public"),
                    "a public rule cannot require roles or scopes",
                ));
            }
            // Without a validator the requirement could never be checked: refuse rather than
            // let every caller through.
            if requires && !has_jwt {
                return Err(invalid(
                    at("roles"),
                    "roles and scopes need `auth.jwt` to be configured",
                ));
            }
            for (field, values) in [("roles", &rule.roles), ("scopes", &rule.scopes)] {
                if values
                    .iter()
                    .any(|value| value.is_empty() || value.contains(char::is_whitespace))
                {
                    return Err(invalid(at(field), "entries must be non-empty words"));
                }
            }
        }
        Ok(())
    }
}

impl JwtConfig {
    fn validate(&self) -> Result<()> {
        if self.issuer.is_empty() {
            return Err(invalid("auth.jwt.issuer", "must not be empty"));
        }
        if self.audiences.is_empty() {
            return Err(invalid(
                "auth.jwt.audiences",
                "must list at least one audience",
            ));
        }
        match (&self.jwks_url, &self.hs256_secret_env) {
            (Some(_), Some(_)) | (None, None) => Err(invalid(
                "auth.jwt",
                "exactly one of `jwksUrl` and `hs256SecretEnv` must be set",
            )),
            (Some(url), None) => {
                let uri: Uri = url
                    .parse()
                    .map_err(|_| invalid("auth.jwt.jwksUrl", "is not a valid URL"))?;
                match uri.scheme_str() {
                    Some("http" | "https") if uri.authority().is_some() => Ok(()),
                    _ => Err(invalid(
                        "auth.jwt.jwksUrl",
                        "must be an absolute http:// or https:// URL",
                    )),
                }
            }
            (None, Some(env)) if env.is_empty() => {
                Err(invalid("auth.jwt.hs256SecretEnv", "must not be empty"))
            }
            (None, Some(_)) => Ok(()),
        }?;
        if self.roles_claim.is_empty() {
            return Err(invalid("auth.jwt.rolesClaim", "must not be empty"));
        }
        if self.scopes_claim.is_empty() {
            return Err(invalid("auth.jwt.scopesClaim", "must not be empty"));
        }
        Ok(())
    }
}

impl CorsConfig {
    fn validate(&self) -> Result<()> {
        let wildcard = |values: &[String]| values.iter().any(|value| value == "*");
        for (index, origin) in self.allowed_origins.iter().enumerate() {
            if origin != "*" && HeaderValue::from_str(origin).is_err() {
                return Err(invalid(
                    format!("cors.allowedOrigins[{index}]"),
                    "is not a valid origin",
                ));
            }
        }
        for (index, method) in self.allowed_methods.iter().enumerate() {
            if method != "*" && Method::from_bytes(method.as_bytes()).is_err() {
                return Err(invalid(
                    format!("cors.allowedMethods[{index}]"),
                    format!("`{method}` is not an HTTP method"),
                ));
            }
        }
        for (index, header) in self.allowed_headers.iter().enumerate() {
            if header != "*" && HeaderName::from_bytes(header.as_bytes()).is_err() {
                return Err(invalid(
                    format!("cors.allowedHeaders[{index}]"),
                    format!("`{header}` is not a header name"),
                ));
            }
        }
        // The CORS spec forbids wildcards together with credentials (browsers ignore the
        // response), and tower-http panics on that combination, so it is rejected here.
        if self.allow_credentials
            && (wildcard(&self.allowed_origins)
                || wildcard(&self.allowed_methods)
                || wildcard(&self.allowed_headers))
        {
            return Err(invalid(
                "cors.allowCredentials",
                "cannot be true when an allowed origin, method or header is `*`",
            ));
        }
        Ok(())
    }
}

/// Trailing slashes do not change what a prefix matches (matching is per path segment).
pub(crate) fn normalize_prefix(prefix: &str) -> &str {
    let trimmed = prefix.trim_end_matches('/');
    if trimmed.is_empty() { "/" } else { trimmed }
}

/// Splits an upstream URL into scheme, authority and base path; rejects anything else.
pub(crate) fn parse_upstream(
    upstream: &str,
) -> std::result::Result<(http::uri::Scheme, http::uri::Authority, String), String> {
    let uri: Uri = upstream
        .parse()
        .map_err(|_| format!("`{upstream}` is not a valid URL"))?;
    let scheme = match uri.scheme_str() {
        Some("http" | "https") => uri.scheme().cloned(),
        _ => None,
    }
    .ok_or_else(|| format!("`{upstream}` must start with http:// or https://"))?;
    let authority = uri
        .authority()
        .cloned()
        .ok_or_else(|| format!("`{upstream}` has no host"))?;
    if uri.query().is_some() {
        return Err(format!("`{upstream}` must not have a query"));
    }
    // Credentials would be forwarded in Host and could end up in logs; the contract has none.
    if authority.as_str().contains('@') {
        return Err("must not contain credentials".to_owned());
    }
    let base_path = uri.path().trim_end_matches('/').to_owned();
    Ok((scheme, authority, base_path))
}

#[cfg(test)]
mod tests {
    use super::*;

    const FULL: &str = r#"
listen: "0.0.0.0:8080"
adminListen: "0.0.0.0:9090"
maxBodyBytes: 1048576
upstreamTimeoutMs: 15000
routes:
  - name: users
    pathPrefix: /v1/users
    upstream: http://shop-users:8080
    public: false
    stripPrefix: false
    retries: 1
    timeoutMs: 15000
  - name: auth
    pathPrefix: /v1/auth
    upstream: http://shop-users:8080
    public: true
auth:
  jwt:
    issuer: https://auth.shop.example.com
    audiences: [shop]
    leewaySeconds: 30
    hs256SecretEnv: JWT_HS256_SECRET
rateLimit:
  requestsPerSecond: 100
  burst: 200
  key: ip
  redisUrlEnv: REDIS_URL
cors:
  allowedOrigins: ["https://shop.example.com"]
  allowedMethods: [GET, POST, PUT, PATCH, DELETE, OPTIONS]
  allowedHeaders: [authorization, content-type]
  allowCredentials: false
  maxAgeSeconds: 600
cache:
  enabled: true
  maxEntries: 10000
trustedProxies: ["10.0.0.0/8", "fd00::/8"]
clientAddressHeader: x-forwarded-for
identity:
  signingKeysEnv: IDENTITY_KEYS
tracing:
  trustClientContext: true
"#;

    #[test]
    fn parses_the_contract_example() {
        let config = GatewayConfig::from_yaml(FULL).unwrap();
        assert_eq!(config.routes.len(), 2);
        assert_eq!(config.routes[0].retries, 1);
        assert!(config.routes[1].public);
        let jwt = config.jwt().unwrap();
        assert_eq!(jwt.hs256_secret_env.as_deref(), Some("JWT_HS256_SECRET"));
        assert_eq!(config.trusted_proxies().unwrap().len(), 2);
        assert_eq!(config.rate_limit.unwrap().key, RateLimitKey::Ip);
        assert_eq!(config.cache.unwrap().max_entries, 10_000);
        assert_eq!(
            config.client_address_header,
            ClientAddressHeader::XForwardedFor
        );
        assert_eq!(config.identity.unwrap().signing_keys_env, "IDENTITY_KEYS");
        assert!(config.tracing.trust_client_context);
        // A client's trace context is not trusted unless the file says so.
        let minimal = GatewayConfig::from_yaml(
            "routes:\n  - name: a\n    pathPrefix: /a\n    upstream: http://a:8080\n",
        )
        .unwrap();
        assert!(!minimal.tracing.trust_client_context);
    }

    #[test]
    fn trusted_proxies_and_identity_are_validated_with_their_path() {
        for (from, to, field) in [
            ("\"fd00::/8\"", "\"fd00::\"", "trustedProxies[1]"),
            ("\"10.0.0.0/8\"", "\"10.0.0.0/33\"", "trustedProxies[0]"),
            (
                "signingKeysEnv: IDENTITY_KEYS",
                "signingKeysEnv: \"\"",
                "identity.signingKeysEnv",
            ),
            ("x-forwarded-for", "x-real-ip", "clientAddressHeader"),
        ] {
            let err = GatewayConfig::from_yaml(&FULL.replace(from, to))
                .unwrap_err()
                .to_string();
            assert!(err.contains(field), "{err}");
        }
        let many = (0..33)
            .map(|i| format!("\"10.{i}.0.0/16\""))
            .collect::<Vec<_>>()
            .join(", ");
        let text = FULL.replace("\"10.0.0.0/8\", \"fd00::/8\"", &many);
        let err = GatewayConfig::from_yaml(&text).unwrap_err().to_string();
        assert!(err.contains("at most 32"), "{err}");
    }

    #[test]
    fn unknown_field_names_field_and_location() {
        let text = FULL.replace("stripPrefix: false", "stripPrefx: false");
        let err = GatewayConfig::from_yaml(&text).unwrap_err().to_string();
        assert!(err.contains("stripPrefx"), "{err}");
        assert!(err.contains("routes[0]"), "{err}");
    }

    #[test]
    fn unknown_top_level_field_is_rejected() {
        let err = GatewayConfig::from_yaml("routes: []\nlisten2: x\n")
            .unwrap_err()
            .to_string();
        assert!(err.contains("listen2"), "{err}");
    }

    #[test]
    fn both_jwt_key_sources_are_rejected() {
        let text = FULL.replace(
            "hs256SecretEnv: JWT_HS256_SECRET",
            "hs256SecretEnv: JWT_HS256_SECRET\n    jwksUrl: https://x/jwks.json",
        );
        let err = GatewayConfig::from_yaml(&text).unwrap_err().to_string();
        assert!(err.contains("auth.jwt"), "{err}");
    }

    #[test]
    fn wildcard_with_credentials_is_rejected() {
        let text = FULL
            .replace("[\"https://shop.example.com\"]", "[\"*\"]")
            .replace("allowCredentials: false", "allowCredentials: true");
        let err = GatewayConfig::from_yaml(&text).unwrap_err().to_string();
        assert!(err.contains("cors.allowCredentials"), "{err}");
    }

    #[test]
    fn bad_upstream_and_prefix_are_rejected() {
        let err = GatewayConfig::from_yaml(
            "routes:\n  - {name: a, pathPrefix: /a, upstream: 'ftp://x'}\n",
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("routes[0].upstream"), "{err}");
        let err = GatewayConfig::from_yaml(
            "routes:\n  - {name: a, pathPrefix: a, upstream: 'http://x'}\n",
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("routes[0].pathPrefix"), "{err}");
    }

    #[test]
    fn defaults_apply() {
        let config = GatewayConfig::from_yaml("routes: []\n").unwrap();
        assert_eq!(config.listen, "0.0.0.0:8080");
        assert_eq!(config.max_body_bytes, 1024 * 1024);
        assert!(config.auth.is_none());
    }
}
